/*
 * Recipient resolution: where one RCPT TO goes.
 *
 * A domain with no domain block is remote, and only a client that may
 * relay gets it.  A local domain's local part is checked for syntax that
 * could reach a path, then looked up in the domain's aliases (expanded
 * recursively), its recipients table, and finally mapped to the user who
 * owns the mailbox: the domain's user, its users table, or qmail's rules
 * (lka_user_qmail(): virtualdomains, users/assign, passwd with the break
 * character, the alias user; a uid 0 account is never delivered to as
 * itself).  Nothing here treats '%', '!' or a quoted '@' as routing: a
 * local part is only ever a key.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aliases.h"
#include "config.h"
#include "lka.h"
#include "log.h"
#include "mailaddr.h"
#include "qmail_users.h"
#include "sqmail.h"
#include "table.h"

enum lka_res {
	LKA_R_OK,		/* one or more destinations added */
	LKA_R_TEMP,
	LKA_R_PERM,
	LKA_R_NONE		/* an alias already being expanded: nothing */
};

#define LKA_ALIAS_USER	"nobody"	/* runs alias programs by default */

#define LKA_F_RELAY	0x01	/* a remote domain is fine */
#define LKA_F_ALIAS	0x02	/* reached through an alias (admin data) */
#define LKA_F_NOALIAS	0x04	/* an alias naming itself: skip the aliases */

struct lka_expand {
	struct sqconf	*conf;
	char		 orig[SQ_ADDR_MAX];	/* as given at RCPT */
	struct dest	*out;
	size_t		 nout;
	size_t		 maxout;
	char		(*seen)[SQ_ADDR_MAX];	/* aliases expanded so far */
	size_t		 nseen;
	size_t		 seencap;
	int		 overflow;	/* too many destinations or aliases */
	int		 nomem;
};

static enum lka_res	lka_resolve1(struct lka_expand *,
			    const struct mailaddr *, const char *, int, int,
			    char *, size_t);

static void
lka_lower(char *dst, const char *src, size_t dstlen)
{
	size_t	 i;

	for (i = 0; i + 1 < dstlen && src[i] != '\0'; i++)
		dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ?
		    src[i] - 'A' + 'a' : src[i];
	dst[i] = '\0';
}

/* A full reply line for addr; printable ASCII only. */
static void
lka_reply(char *reply, size_t len, const char *codes, const char *addr,
    const char *text)
{
	size_t	 i;

	if (len == 0)
		return;
	(void)snprintf(reply, len, "%s <%s>: %s", codes, addr, text);
	for (i = 0; reply[i] != '\0'; i++)
		if ((unsigned char)reply[i] < 0x20 ||
		    (unsigned char)reply[i] > 0x7e)
			reply[i] = '?';
}

/*
 * A local part we look up at all: no path separator, no control byte,
 * nothing that is or starts a dot path, no quoted '@'.  A quoted local
 * part is judged by its content.
 */
static int
lka_localpart_ok(const char *u)
{
	char		 buf[SQ_LOCALPART_MAX + 1];
	size_t		 i, n = 0;

	if (u[0] == '"') {
		for (i = 1; u[i] != '\0' && u[i] != '"'; i++) {
			if (u[i] == '\\' && u[i + 1] != '\0')
				i++;
			if (n + 1 >= sizeof(buf))
				return 0;
			buf[n++] = u[i];
		}
		buf[n] = '\0';
		if (u[i] != '"' || u[i + 1] != '\0')
			return 0;
		u = buf;
	}
	if (u[0] == '\0' || u[0] == '.' || strstr(u, "..") != NULL)
		return 0;
	for (i = 0; u[i] != '\0'; i++)
		if ((unsigned char)u[i] < 0x20 || u[i] == 0x7f ||
		    u[i] == '/' || u[i] == '@')
			return 0;
	return 1;
}

/* A user name from a users table: printable, no path or field syntax. */
static int
lka_username_ok(const char *s)
{
	const unsigned char	*p;

	if (s[0] == '\0' || s[0] == '-' || s[0] == '.')
		return 0;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == '/' || *p == ':')
			return 0;
	return 1;
}

/* "451 4.3.0" for addr: a lookup failed, the client tries again. */
static enum lka_res
lka_temp(char *reply, size_t replylen, const char *addr)
{
	lka_reply(reply, replylen, "451 4.3.0", addr,
	    "temporary lookup failure");
	return LKA_R_TEMP;
}

/* "550 5.1.1" for addr: nobody here by that name. */
static enum lka_res
lka_unknown(char *reply, size_t replylen, const char *addr)
{
	lka_reply(reply, replylen, "550 5.1.1", addr, "no such user here");
	return LKA_R_PERM;
}

/* 1: addr was seen already; 0: now it is; -1: out of room. */
static int
lka_seen(struct lka_expand *x, const char *addr)
{
	char	(*n)[SQ_ADDR_MAX];
	size_t	 i, cap;

	for (i = 0; i < x->nseen; i++)
		if (strcmp(x->seen[i], addr) == 0)
			return 1;
	if (x->nseen == LKA_ALIAS_SEEN_MAX) {
		x->overflow = 1;
		return -1;
	}
	if (x->nseen == x->seencap) {
		cap = x->seencap == 0 ? 16 : x->seencap * 2;
		if ((n = reallocarray(x->seen, cap, sizeof(*n))) == NULL) {
			x->nomem = 1;
			return -1;
		}
		x->seen = n;
		x->seencap = cap;
	}
	(void)strlcpy(x->seen[x->nseen++], addr, SQ_ADDR_MAX);
	return 0;
}

static enum lka_res
lka_add_dest(struct lka_expand *x, const struct dest *d)
{
	size_t	 i;

	for (i = 0; i < x->nout; i++)
		if (x->out[i].type == d->type &&
		    x->out[i].method == d->method &&
		    strcmp(x->out[i].addr, d->addr) == 0 &&
		    strcmp(x->out[i].mailbox, d->mailbox) == 0)
			return LKA_R_OK;
	if (x->nout == x->maxout) {
		x->overflow = 1;
		return LKA_R_PERM;
	}
	x->out[x->nout++] = *d;
	return LKA_R_OK;
}

/*
 * One alias target: "a@b", "<a@b>", or a bare local part (same domain).
 * Returns 0 with t and text set, -1 when it does not parse.
 */
static int
lka_alias_target(const char *s, size_t len, const char *domain,
    struct mailaddr *t, char *text, size_t textlen)
{
	char	 buf[SQ_ADDR_MAX + 2];
	int	 n;

	while (len > 0 && (s[0] == ' ' || s[0] == '\t')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len >= 2 && s[0] == '<' && s[len - 1] == '>') {
		s++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(buf))
		return -1;
	if (memchr(s, '@', len) == NULL) {
		n = snprintf(buf, sizeof(buf), "%.*s@%s", (int)len, s, domain);
		if (n < 0 || (size_t)n >= sizeof(buf))
			return -1;
		if (mailaddr_parse(buf, n, t) == -1)
			return -1;
	} else if (mailaddr_parse(s, len, t) == -1)
		return -1;
	return mailaddr_to_text(t, text, textlen);
}

/*
 * The account that carries out an alias table's program, file and
 * :include: targets: the owner of the table's source when that is not
 * root (whoever may edit it may run as themselves anyway), else the
 * table's "user", else nobody.  Never uid 0.  1 with user set, 0 when
 * there is none (logged), -1 on a temporary failure.
 */
static int
lka_alias_account(struct table *t, char *user, size_t userlen)
{
	struct passwd	*pw;
	const char	*name;
	uid_t		 uid;

	if (table_owner(t, &uid) == -1) {
		log_warnx("table %s: cannot tell who owns it", t->name);
		return -1;
	}
	errno = 0;
	if (uid != 0) {
		if ((pw = getpwuid(uid)) == NULL) {
			if (errno != 0 && errno != ENOENT && errno != ESRCH) {
				log_warn("getpwuid %u", (unsigned)uid);
				return -1;
			}
			log_warnx("table %s: its owner (uid %u) has no passwd "
			    "entry", t->name, (unsigned)uid);
			return 0;
		}
	} else {
		name = t->user[0] != '\0' ? t->user : LKA_ALIAS_USER;
		if ((pw = getpwnam(name)) == NULL) {
			if (errno != 0 && errno != ENOENT && errno != ESRCH) {
				log_warn("getpwnam \"%s\"", name);
				return -1;
			}
			log_warnx("table %s: no user \"%s\" to run its "
			    "program and file targets", t->name, name);
			return 0;
		}
	}
	if (pw->pw_uid == 0) {
		log_warnx("table %s: program and file targets never run as "
		    "root (user %s)", t->name, pw->pw_name);
		return 0;
	}
	if (strlcpy(user, pw->pw_name, userlen) >= userlen) {
		log_warnx("user \"%s\": name too long", pw->pw_name);
		return 0;
	}
	return 1;
}

/*
 * A program, file or :include: target of the alias self (ll@ld): a local
 * destination at the alias's own address, carried out by the agent of
 * the table's account.
 */
static enum lka_res
lka_alias_special(struct lka_expand *x, const char *self, const char *ld,
    const struct alias_target *at, char *reply, size_t replylen)
{
	struct domain	*d;
	struct dest	 dst;

	memset(&dst, 0, sizeof(dst));
	dst.type = DEST_LOCAL;
	switch (at->type) {
	case ALIAS_PROGRAM:
		dst.method = MBOX_PROGRAM;
		break;
	case ALIAS_FILE:
		dst.method = MBOX_FILE;
		break;
	case ALIAS_INCLUDE:
		dst.method = MBOX_INCLUDE;
		break;
	default:
		fatalx("lka_alias_special: type %d", (int)at->type);
	}
	if ((d = config_domain(x->conf, ld)) == NULL || d->aliases == NULL)
		fatalx("lka_alias_special: %s: no alias table", ld);
	switch (lka_alias_account(d->aliases, dst.user, sizeof(dst.user))) {
	case -1:
		goto temp;
	case 0:
		lka_reply(reply, replylen, "550 5.7.1", self, "no account to "
		    "deliver to programs and files");
		return LKA_R_PERM;
	}
	if (strlcpy(dst.addr, self, sizeof(dst.addr)) >= sizeof(dst.addr) ||
	    strlcpy(dst.orig, x->orig, sizeof(dst.orig)) >= sizeof(dst.orig))
		goto temp;
	if (strlcpy(dst.mailbox, at->arg, sizeof(dst.mailbox)) >=
	    sizeof(dst.mailbox)) {
		lka_reply(reply, replylen, "550 5.1.3", self, "alias target "
		    "too long");
		return LKA_R_PERM;
	}
	return lka_add_dest(x, &dst);
 temp:
	return lka_temp(reply, replylen, self);
}

/*
 * The targets of an alias value.  A value that does not parse as a whole
 * (a file table written before aliases(5) syntax) is read item by item
 * between commas, and the items that do not parse are dropped; *nbad
 * counts them.
 */
static int
lka_alias_targets(const char *self, const char *val,
    struct alias_targets *tl, size_t *nbad)
{
	const char	*p, *e, *errstr;
	size_t		 n;

	*nbad = 0;
	tl->n = tl->used = 0;
	if (aliases_targets(val, strlen(val), tl, &errstr) == 0)
		return 0;
	tl->n = tl->used = 0;
	for (p = val; *p != '\0'; p = *e == ',' ? e + 1 : e) {
		if ((e = strchr(p, ',')) == NULL)
			e = p + strlen(p);
		n = tl->n;
		if (aliases_targets(p, e - p, tl, &errstr) == -1) {
			log_warnx("alias %s: bad target \"%.*s\" (%s), "
			    "skipped", self, (int)(e - p), p, errstr);
			tl->n = n;
			(*nbad)++;
		}
	}
	return 0;
}

/*
 * Expand the alias ll@ld (value val) into x.  Each target is resolved
 * again with relaying allowed; a target that fails permanently is skipped
 * (logged) as long as another one succeeds; a temporary failure of any
 * target fails the whole recipient temporarily, so that none is lost.
 */
static enum lka_res
lka_alias(struct lka_expand *x, const char *ll, const char *ld,
    const char *atext, const char *val, int depth, char *reply,
    size_t replylen)
{
	struct alias_targets	*tl;
	const struct alias_target *at;
	struct mailaddr	 t;
	char		 self[SQ_ADDR_MAX], ttext[SQ_ADDR_MAX + 16];
	char		 treply[SQ_REPLY_MAX], tlow[SQ_LOCALPART_MAX + 1];
	size_t		 nitems = 0, nok = 0, nperm = 0, k;
	int		 flags;
	enum lka_res	 r;

	(void)snprintf(self, sizeof(self), "%s@%s", ll, ld);
	if (depth >= LKA_ALIAS_DEPTH) {
		log_warnx("alias %s: nested more than %d deep, not expanded",
		    self, LKA_ALIAS_DEPTH);
		lka_reply(reply, replylen, "550 5.4.6", atext,
		    "aliases nested too deep");
		return LKA_R_PERM;
	}
	switch (lka_seen(x, self)) {
	case 1:
		log_debug("alias %s: loop, stopped", self);
		return LKA_R_NONE;
	case -1:
		if (x->nomem) {
			return lka_temp(reply, replylen, atext);
		}
		return LKA_R_PERM;
	}

	if ((tl = malloc(sizeof(*tl))) == NULL) {
		log_warn("alias %s", self);
		x->nomem = 1;
		return lka_temp(reply, replylen, atext);
	}
	(void)lka_alias_targets(self, val, tl, &nperm);
	nitems = nperm + tl->n;
	for (k = 0; k < tl->n; k++) {
		at = &tl->t[k];
		if (at->type != ALIAS_ADDR) {
			r = lka_alias_special(x, self, ld, at, treply,
			    sizeof(treply));
			if (x->overflow) {
				free(tl);
				return LKA_R_PERM;
			}
			ttext[0] = '\0';
			(void)snprintf(ttext, sizeof(ttext), "%s %.200s",
			    aliases_type_name(at->type), at->arg);
			goto result;
		}
		if (lka_alias_target(at->arg, strlen(at->arg), ld, &t, ttext,
		    sizeof(ttext)) == -1) {
			log_warnx("alias %s: bad target \"%s\", skipped",
			    self, at->arg);
			nperm++;
			continue;
		}
		flags = LKA_F_RELAY | LKA_F_ALIAS;
		lka_lower(tlow, t.user, sizeof(tlow));
		if (strcmp(tlow, ll) == 0 && strcmp(t.domain, ld) == 0)
			flags |= LKA_F_NOALIAS;
		r = lka_resolve1(x, &t, ttext, depth + 1, flags, treply,
		    sizeof(treply));
		if (x->overflow) {
			free(tl);
			return LKA_R_PERM;
		}
 result:
		switch (r) {
		case LKA_R_OK:
			nok++;
			break;
		case LKA_R_TEMP:
			log_warnx("alias %s: target %s: %s", self, ttext,
			    treply);
			free(tl);
			return lka_temp(reply, replylen, atext);
		case LKA_R_PERM:
			log_info("alias %s: target %s skipped: %s", self,
			    ttext, treply);
			nperm++;
			break;
		case LKA_R_NONE:
			break;
		}
	}
	free(tl);
	if (nok > 0)
		return LKA_R_OK;
	if (nperm == 0 && nitems > 0)
		return LKA_R_NONE;
	if (nitems == 0)
		log_warnx("alias %s: no targets", self);
	lka_reply(reply, replylen, "550 5.1.1", atext,
	    "alias has no deliverable destination");
	return LKA_R_PERM;
}

/*
 * qmail's files, as lka_qmail_load() last read them.  A file that is
 * named but could not be read or parsed leaves its "bad" flag set, and
 * every lookup that needs it fails temporarily until a reload reads it.
 */
int	(*lka_qmail_getpw)(void *, const char *, struct qmail_pw *) =
	    qmail_getpw_sys;
int	(*lka_qmail_owner)(void *, const char *, uid_t *) = qmail_owner_sys;

static struct qmail_assign	*lka_assign;
static struct table_file	*lka_vdoms;
static int			 lka_assign_bad, lka_vdoms_bad;

int
lka_qmail_load(struct sqconf *c)
{
	char	 err[PATH_MAX + 128];
	int	 failed = 0;

	qmail_assign_free(lka_assign);
	lka_assign = NULL;
	lka_assign_bad = 0;
	if (lka_vdoms != NULL)
		table_file_free(lka_vdoms);
	lka_vdoms = NULL;
	lka_vdoms_bad = 0;
	if (c->qmail_assign[0] != '\0' &&
	    qmail_assign_load(c->qmail_assign, &lka_assign, err,
	    sizeof(err)) == -1) {
		log_warnx("lka: qmail assign: %s; local deliveries fail "
		    "temporarily", err);
		lka_assign_bad = 1;
		failed++;
	} else if (lka_assign != NULL && lka_assign->dupline != 0)
		log_warnx("lka: qmail assign %s: line %zu repeats a key; the "
		    "first one counts", c->qmail_assign, lka_assign->dupline);
	if (c->qmail_vdoms[0] != '\0' &&
	    qmail_vdoms_load(c->qmail_vdoms, &lka_vdoms, err,
	    sizeof(err)) == -1) {
		log_warnx("lka: qmail virtualdomains: %s; local deliveries "
		    "fail temporarily", err);
		lka_vdoms_bad = 1;
		failed++;
	}
	return failed;
}

/*
 * The content of a local part as qmail keeps it: a quoted string without
 * its quotes and escapes.  -1 when it does not fit.
 */
static int
lka_unquote(const char *u, char *buf, size_t len)
{
	size_t	 i, n = 0;

	if (u[0] != '"')
		return strlcpy(buf, u, len) < len ? 0 : -1;
	for (i = 1; u[i] != '\0' && u[i] != '"'; i++) {
		if (u[i] == '\\' && u[i + 1] != '\0')
			i++;
		if (n + 1 >= len)
			return -1;
		buf[n++] = u[i];
	}
	buf[n] = '\0';
	return 0;
}

/* A local part qmail's rules may hand on: printable, no path syntax. */
static int
lka_qlocal_ok(const char *s)
{
	const unsigned char	*p;

	if (s[0] == '\0' || s[0] == '.' || strstr(s, "..") != NULL)
		return 0;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p >= 0x7f || *p == '/')
			return 0;
	return 1;
}

static void
lka_dest_qmail(struct dest *dst, const struct qmail_user *qu)
{
	/* Bounded alike: struct qmail_user's fields fit struct dest's. */
	(void)strlcpy(dst->user, qu->user, sizeof(dst->user));
	dst->uid = qu->uid;
	dst->gid = qu->gid;
	(void)strlcpy(dst->home, qu->home, sizeof(dst->home));
	dst->dotqmail = 1;
	(void)strlcpy(dst->dash, qu->dash, sizeof(dst->dash));
	(void)strlcpy(dst->ext, qu->ext, sizeof(dst->ext));
}

/*
 * qmail's rules for local (as given, unquoted) in a domain without a
 * user or users table: users/assign, then a uid 0 account (held, or the
 * alias user's), then passwd with the break character and the alias
 * user (qmail-getpw).  Fills dst's user and identity.
 */
static enum lka_res
lka_user_qmail(struct sqconf *c, const char *local, const char *atext,
    struct dest *dst, char *reply, size_t replylen)
{
	struct qmail_getpw_ops	 ops;
	struct qmail_user	 qu;
	struct qmail_pw		 pw;
	char			 name[SQ_USER_MAX + 1];

	memset(&ops, 0, sizeof(ops));
	ops.getpw = lka_qmail_getpw;
	ops.owner = lka_qmail_owner;
	ops.brk = c->qmail_break != 0 ? c->qmail_break : QMAIL_BREAK_DEFAULT;
	ops.alias = c->qmail_alias[0] != '\0' ? c->qmail_alias : NULL;
	ops.ignore = (const char *const *)c->qmail_ignore;

	if (c->qmail_assign[0] != '\0') {
		if (lka_assign_bad)
			goto temp;
		switch (qmail_assign_lookup(lka_assign, local, &qu)) {
		case QMAIL_FOUND:
			lka_dest_qmail(dst, &qu);
			return LKA_R_OK;
		case QMAIL_BAD:
			goto unknown;
		default:
			break;
		}
	}

	/*
	 * A uid 0 account named by all of local gets no delivery as
	 * itself: the alias user's .qmail-NAME takes it, or it is held
	 * (the agent is never forked: mda sees uid 0 and defers).  An
	 * ignored name is just not a user.
	 */
	if (qmail_pwname(&ops, local, strlen(local), name)) {
		memset(&pw, 0, sizeof(pw));
		switch (lka_qmail_getpw(NULL, name, &pw)) {
		case -1:
			log_warn("getpwnam \"%s\"", name);
			goto temp;
		case 1:
			if (pw.uid != 0 || c->qmail_alias[0] != '\0')
				break;
			if (pw.home[0] != '/')
				goto unknown;
			memset(&qu, 0, sizeof(qu));
			(void)strlcpy(qu.user, pw.name, sizeof(qu.user));
			qu.uid = 0;
			qu.gid = pw.gid;
			(void)strlcpy(qu.home, pw.home, sizeof(qu.home));
			log_info("%s: %s has uid 0: accepted, held until an "
			    "alias for %s is added", atext, name, name);
			lka_dest_qmail(dst, &qu);
			return LKA_R_OK;
		}
	}

	switch (qmail_getpw(&ops, local, &qu)) {
	case QMAIL_FOUND:
		lka_dest_qmail(dst, &qu);
		return LKA_R_OK;
	case QMAIL_TEMP:
		if (ops.alias != NULL)
			log_warnx("%s: temporary failure looking up its user "
			    "(passwd, or the alias user %s)", atext,
			    ops.alias);
		else
			log_warnx("%s: temporary failure looking up its "
			    "user", atext);
		goto temp;
	default:
		goto unknown;
	}
 unknown:
	return lka_unknown(reply, replylen, atext);
 temp:
	return lka_temp(reply, replylen, atext);
}

/*
 * The account that owns the mailbox of a (lowered in la) in d; a result,
 * dst's user (and for qmail's rules its identity, and for a virtual
 * domain its address) set on OK.
 */
static enum lka_res
lka_user(struct lka_expand *x, struct domain *d, const struct mailaddr *a,
    const struct mailaddr *la, const char *atext, struct dest *dst,
    char *reply, size_t replylen)
{
	struct sqconf	*c = x->conf;
	char		 local[SQ_LOCALPART_MAX + 1];
	char		 vlocal[SQ_LOCALPART_MAX + 1];
	struct mailaddr	 va;
	const char	*pfx;
	int		 r;

	if (d->user[0] != '\0') {
		if (strlcpy(dst->user, d->user, sizeof(dst->user)) >=
		    sizeof(dst->user))
			goto temp;
		return LKA_R_OK;
	}
	if (d->users != NULL) {
		if ((r = table_lookup(d->users, la->user, dst->user,
		    sizeof(dst->user))) == -1)
			goto temp;
		if (r == 0)
			goto unknown;
		if (!lka_username_ok(dst->user)) {
			log_warnx("table %s: \"%s\" maps to a bad user name",
			    d->users->name, la->user);
			dst->user[0] = '\0';
			goto temp;
		}
		return LKA_R_OK;
	}

	if (lka_unquote(a->user, local, sizeof(local)) == -1 ||
	    !lka_qlocal_ok(local))
		goto unknown;
	/*
	 * virtualdomains first, as qmail-send: x@virt becomes prefix-x@virt
	 * (the '-' literal), and that is the address delivered to.
	 */
	if (c->qmail_vdoms[0] != '\0') {
		if (lka_vdoms_bad)
			goto temp;
		pfx = qmail_vdoms_match(lka_vdoms, local, la->domain);
		if (pfx != NULL && pfx[0] != '\0') {
			switch (qmail_vdoms_lookup(lka_vdoms, local,
			    la->domain, vlocal, sizeof(vlocal))) {
			case QMAIL_FOUND:
				break;
			default:
				goto unknown;
			}
			if (!lka_qlocal_ok(vlocal))
				goto unknown;
			lka_lower(va.user, vlocal, sizeof(va.user));
			(void)strlcpy(va.domain, la->domain,
			    sizeof(va.domain));
			if (mailaddr_to_text(&va, dst->addr,
			    sizeof(dst->addr)) == -1)
				goto unknown;
			(void)strlcpy(local, vlocal, sizeof(local));
		}
	}
	return lka_user_qmail(c, local, atext, dst, reply, replylen);
 unknown:
	return lka_unknown(reply, replylen, atext);
 temp:
	return lka_temp(reply, replylen, atext);
}

/* Resolve a (printed as atext) into x; depth counts aliases above it. */
static enum lka_res
lka_resolve1(struct lka_expand *x, const struct mailaddr *a,
    const char *atext, int depth, int flags, char *reply, size_t replylen)
{
	struct domain	*d;
	struct mailaddr	 la;
	struct dest	 dst;
	char		 val[TABLE_LINE_MAX + 1];
	enum lka_res	 res;
	int		 r;

	if (a->domain[0] == '\0') {
		lka_reply(reply, replylen, "550 5.1.3", atext,
		    "bad recipient address syntax");
		return LKA_R_PERM;
	}
	lka_lower(la.domain, a->domain, sizeof(la.domain));
	lka_lower(la.user, a->user, sizeof(la.user));

	memset(&dst, 0, sizeof(dst));
	if (strlcpy(dst.orig, x->orig, sizeof(dst.orig)) >= sizeof(dst.orig))
		goto temp;

	/*
	 * Remote: no domain block, or one with a route or a tls policy.  A
	 * routed domain is one we relay for, from anyone; the default route
	 * ("*") and a block with only a tls policy carry only what the client
	 * may relay anyway.
	 */
	d = config_domain(x->conf, la.domain);
	if (d == NULL || d->remote) {
		if ((d == NULL || strcmp(d->name, "*") == 0 ||
		    d->route_host[0] == '\0') && !(flags & LKA_F_RELAY)) {
			lka_reply(reply, replylen, "554 5.7.1", atext,
			    "relay access denied");
			return LKA_R_PERM;
		}
		dst.type = DEST_REMOTE;
		if (mailaddr_to_text(a, dst.addr, sizeof(dst.addr)) == -1)
			goto temp;
		return lka_add_dest(x, &dst);
	}

	if (!lka_localpart_ok(a->user)) {
		lka_reply(reply, replylen, "550 5.1.3", atext,
		    "bad recipient address syntax");
		return LKA_R_PERM;
	}

	if (d->aliases != NULL && !(flags & LKA_F_NOALIAS)) {
		if ((r = table_lookup(d->aliases, la.user, val,
		    sizeof(val))) == -1)
			goto temp;
		if (r == 1)
			return lka_alias(x, la.user, la.domain, atext, val,
			    depth, reply, replylen);
	}

	if (d->recipients != NULL) {
		if ((r = table_lookup(d->recipients, la.user, val,
		    sizeof(val))) == -1)
			goto temp;
		if (r == 0)
			return lka_unknown(reply, replylen, atext);
	}

	if ((res = lka_user(x, d, a, &la, atext, &dst, reply,
	    replylen)) != LKA_R_OK)
		return res;

	dst.type = DEST_LOCAL;
	/* dst.addr is set already when a virtual domain rewrote it. */
	if ((dst.addr[0] == '\0' &&
	    mailaddr_to_text(&la, dst.addr, sizeof(dst.addr)) == -1) ||
	    strlcpy(dst.mailbox, d->mailbox, sizeof(dst.mailbox)) >=
	    sizeof(dst.mailbox))
		goto temp;
	dst.method = d->method != MBOX_NONE ? d->method : MBOX_MAILDIR;
	return lka_add_dest(x, &dst);
 temp:
	return lka_temp(reply, replylen, atext);
}

int
lka_resolve(struct sqconf *c, const struct mailaddr *rcpt, int may_relay,
    const struct sockaddr *client, struct dest *out, size_t *nout,
    size_t maxout, char *reply, size_t replylen)
{
	struct lka_expand	 x;
	struct mailaddr		 a;
	enum lka_res		 r;
	int			 flags = 0;

	*nout = 0;
	if (replylen > 0)
		reply[0] = '\0';
	memset(&x, 0, sizeof(x));
	x.conf = c;
	x.out = out;
	x.maxout = maxout;
	if (mailaddr_to_text(rcpt, x.orig, sizeof(x.orig)) == -1) {
		lka_reply(reply, replylen, "550 5.1.3", "",
		    "bad recipient address syntax");
		return SQ_PERMFAIL;
	}

	a = *rcpt;
	if (a.domain[0] == '\0' && strcasecmp(a.user, "postmaster") == 0) {
		/*
		 * RFC 5321 4.5.1: <postmaster> must be accepted.  It goes
		 * to the configured postmaster address, wherever that is.
		 */
		if (mailaddr_parse(c->postmaster, strlen(c->postmaster),
		    &a) == -1 || a.domain[0] == '\0') {
			log_warnx("postmaster address \"%s\" is not usable",
			    c->postmaster);
			lka_reply(reply, replylen, "451 4.3.0", x.orig,
			    "temporary lookup failure");
			return SQ_TEMPFAIL;
		}
		flags |= LKA_F_RELAY;
	}
	if (may_relay || (client != NULL && config_relay_allowed(c, client)))
		flags |= LKA_F_RELAY;

	r = lka_resolve1(&x, &a, x.orig, 0, flags, reply, replylen);
	free(x.seen);
	if (x.overflow) {
		log_warnx("%s: expands to more than %zu destinations or %d "
		    "aliases", x.orig, maxout, LKA_ALIAS_SEEN_MAX);
		lka_reply(reply, replylen, "550 5.5.3", x.orig,
		    "too many destinations");
		return SQ_PERMFAIL;
	}
	switch (r) {
	case LKA_R_OK:
		if (x.nout == 0)
			fatalx("lka_resolve: %s: no destination", x.orig);
		*nout = x.nout;
		if (replylen > 0)
			reply[0] = '\0';
		return SQ_OK;
	case LKA_R_NONE:
		log_warnx("%s: alias loop without a destination", x.orig);
		lka_reply(reply, replylen, "550 5.4.6", x.orig,
		    "alias loop");
		return SQ_PERMFAIL;
	case LKA_R_TEMP:
		return SQ_TEMPFAIL;
	case LKA_R_PERM:
		break;
	}
	return SQ_PERMFAIL;
}

int
lka_check_sender(struct sqconf *c, const struct mailaddr *sender,
    const struct sockaddr *client, char *reply, size_t replylen)
{
	const unsigned char	*p;

	if (replylen > 0)
		reply[0] = '\0';
	for (p = (const unsigned char *)sender->user; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			goto bad;
	for (p = (const unsigned char *)sender->domain; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			goto bad;
	/* Later issues: badmailfrom, SPF, DNS checks of the domain. */
	return SQ_OK;
 bad:
	lka_reply(reply, replylen, "553 5.1.7", "?",
	    "bad sender address syntax");
	return SQ_PERMFAIL;
}
