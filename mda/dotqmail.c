/*
 * .qmail files: which one controls an address, what its lines say, the
 * environment of a program line and the meaning of its exit code.  Pure
 * functions over bounded buffers; the agent does the I/O.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dotqmail.h"
#include "textline.h"
#include "mailaddr.h"
#include "sqmail.h"

#define DOTQMAIL_MAP_NONE	0
#define DOTQMAIL_MAP_NL		1	/* '\n' -> '_' (DTLINE, RPLINE) */
#define DOTQMAIL_MAP_WS		2	/* ' ', '\t', '\n' -> '-' (UFLINE) */

static int
dotqmail_dash_ok(const char *dash)
{
	return dash[0] == '\0' || (dash[0] == '-' && dash[1] == '\0');
}

/* One component we may open: no '/', no control octet, not too long. */
static int
dotqmail_name_ok(const char *s, size_t n)
{
	size_t	 i;

	if (n == 0 || n > DOTQMAIL_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] == '/' || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* name = ".qmail" dash safe[0, n) suffix; 1 when usable, else 0. */
static int
dotqmail_name(char *name, size_t namelen, const char *dash,
    const char *safe, size_t n, const char *suffix)
{
	int	 r;

	if (namelen == 0)
		return 0;
	r = snprintf(name, namelen, ".qmail%s%.*s%s", dash, (int)n, safe,
	    suffix);
	if (r < 0 || (size_t)r >= namelen || !dotqmail_name_ok(name, r)) {
		name[0] = '\0';
		return 0;
	}
	return 1;
}

int
dotqmail_iter_init(struct dotqmail_iter *it, const char *dash,
    const char *ext)
{
	size_t	 i;

	memset(it, 0, sizeof(*it));
	it->state = 2;
	if (dash == NULL || ext == NULL || !dotqmail_dash_ok(dash))
		return -1;
	it->extlen = strnlen(ext, DOTQMAIL_EXT_MAX + 1);
	if (it->extlen > DOTQMAIL_EXT_MAX)
		return -1;
	it->ext = ext;
	for (i = 0; i < it->extlen; i++) {
		if (ext[i] >= 'A' && ext[i] <= 'Z')
			it->safe[i] = ext[i] - 'A' + 'a';
		else if (ext[i] == '.')
			it->safe[i] = ':';
		else
			it->safe[i] = ext[i];
	}
	it->safe[it->extlen] = '\0';
	(void)strlcpy(it->dash, dash, sizeof(it->dash));
	it->pos = it->extlen;
	it->state = 0;
	return 0;
}

int
dotqmail_iter_next(struct dotqmail_iter *it, char *name, size_t namelen,
    const char **dflt)
{
	size_t	 i;

	*dflt = NULL;
	if (it->state == 0) {
		it->state = it->dash[0] != '\0' ? 1 : 2;
		it->exactdef = it->extlen >= 7 &&
		    memcmp(it->safe + it->extlen - 7, "default", 7) == 0;
		if (dotqmail_name(name, namelen, it->dash, it->safe,
		    it->extlen, "")) {
			if (it->exactdef)
				*dflt = it->ext + it->extlen - 7;
			return 1;
		}
	}
	while (it->state == 1) {
		i = it->pos;
		if (i == 0)
			it->state = 2;
		else
			it->pos = i - 1;
		if (i > 0 && it->safe[i - 1] != '-')
			continue;
		/* ext "x-default": .qmail-x-default was the exact name. */
		if (it->exactdef && i + 7 == it->extlen)
			continue;
		if (dotqmail_name(name, namelen, it->dash, it->safe, i,
		    "default")) {
			*dflt = it->ext + i;
			return 1;
		}
	}
	if (namelen > 0)
		name[0] = '\0';
	return 0;
}

int
dotqmail_none_found(const char *dash)
{
	return dash[0] == '\0' ? SQ_OK : SQ_PERMFAIL;
}

int
dotqmail_owner_names(const char *dash, const char *ext, char *owner,
    size_t ownerlen, char *ownerdef, size_t ownerdeflen)
{
	struct dotqmail_iter	 it;

	if (ownerlen > 0)
		owner[0] = '\0';
	if (ownerdeflen > 0)
		ownerdef[0] = '\0';
	if (dotqmail_iter_init(&it, dash, ext) == -1)
		return -1;
	if (!dotqmail_name(owner, ownerlen, it.dash, it.safe, it.extlen,
	    "-owner") ||
	    !dotqmail_name(ownerdef, ownerdeflen, it.dash, it.safe, it.extlen,
	    "-owner-default")) {
		if (ownerlen > 0)
			owner[0] = '\0';
		return -1;
	}
	return 0;
}

int
dotqmail_newsender(const char *sender, const char *local, const char *host,
    int owner, int ownerdef, char *out, size_t outlen)
{
	size_t	 ln;
	int	 r, quoted;

	if (outlen == 0)
		return -1;
	if (sender[0] == '\0' || strcmp(sender, "#@[]") == 0 || !owner) {
		if (strlcpy(out, sender, outlen) >= outlen)
			goto toolong;
		return 0;
	}
	/* A quoted local part gets the suffix inside its quotes. */
	ln = strlen(local);
	quoted = ln >= 2 && local[0] == '"' && local[ln - 1] == '"';
	if (quoted)
		ln--;
	r = snprintf(out, outlen, "%.*s-owner%s%s@%s%s", (int)ln, local,
	    ownerdef ? "-" : "", quoted ? "\"" : "", host,
	    ownerdef ? "-@[]" : "");
	if (r < 0 || (size_t)r >= outlen)
		goto toolong;
	return 0;
 toolong:
	out[0] = '\0';
	return -1;
}

/* A forward's address: a mailbox, or a bare dot-string local part. */
static int
dotqmail_addr_ok(const char *s, size_t n)
{
	struct mailaddr	 a;

	if (n == 0)
		return 0;
	if (memchr(s, '@', n) == NULL)
		return n <= SQ_LOCALPART_MAX && mailaddr_is_dotstring(s, n);
	return mailaddr_parse(s, n, &a) == 0;
}

void
dotqmail_free(struct dotqmail *dq)
{
	if (dq == NULL)
		return;
	free(dq->instr);
	free(dq->mem);
	free(dq);
}

int
dotqmail_parse(const char *buf, size_t len, int forwardonly,
    struct dotqmail **out, size_t *errline, const char **errstr)
{
	struct dotqmail		*dq;
	struct dotqmail_instr	*ni;
	enum dotqmail_type	 type;
	const char		*s, *arg;
	size_t			 pos, n, line, wpos, cap, alen;
	int			 status = SQ_TEMPFAIL, nl;

	*out = NULL;
	*errline = 0;
	*errstr = NULL;
	if (len > DOTQMAIL_FILE_MAX) {
		*errstr = "file too large";
		return SQ_TEMPFAIL;
	}
	if ((dq = calloc(1, sizeof(*dq))) == NULL ||
	    (dq->mem = malloc(len + 1)) == NULL) {
		free(dq);
		*errstr = "out of memory";
		return SQ_TEMPFAIL;
	}
	if (len == 0) {
		dq->empty = 1;
		*out = dq;
		return SQ_OK;
	}
	wpos = 0;
	cap = 0;
	line = 0;
	for (pos = 0; pos < len; ) {
		if (++line > DOTQMAIL_LINES_MAX) {
			*errstr = "too many lines";
			goto fail;
		}
		n = text_line_next(buf, len, &pos, &s, &nl);
		if (text_line_check(s, n, DOTQMAIL_LINE_MAX, 1, errstr) == -1)
			goto fail;
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n == 0) {
			if (line == 1) {
				*errstr = "first line is blank";
				goto fail;
			}
			continue;
		}
		arg = s;
		alen = n;
		switch (s[0]) {
		case '#':
			continue;
		case '+':
			if (n == 5 && memcmp(s, "+list", 5) == 0)
				forwardonly = 1;
			continue;
		case '.':
		case '/':
			type = s[n - 1] == '/' ? DOTQMAIL_MAILDIR :
			    DOTQMAIL_MBOX;
			if (forwardonly) {
				*errstr = "file delivery in a forward-only "
				    ".qmail (execute bit or +list)";
				goto fail;
			}
			dq->nfile++;
			break;
		case '|':
			type = DOTQMAIL_PROGRAM;
			if (forwardonly) {
				*errstr = "program delivery in a forward-only "
				    ".qmail (execute bit or +list)";
				goto fail;
			}
			arg++;
			alen--;
			dq->nprogram++;
			break;
		case '&':
			arg++;
			alen--;
			/* FALLTHROUGH */
		default:
			type = DOTQMAIL_FORWARD;
			if (!dotqmail_addr_ok(arg, alen)) {
				*errstr = "forward to an invalid address";
				status = SQ_PERMFAIL;
				goto fail;
			}
			dq->nforward++;
			break;
		}
		if (dq->ninstr == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			if (cap > DOTQMAIL_LINES_MAX)
				cap = DOTQMAIL_LINES_MAX;
			if ((ni = reallocarray(dq->instr, cap,
			    sizeof(*ni))) == NULL) {
				*errstr = "out of memory";
				goto fail;
			}
			dq->instr = ni;
		}
		/* At most n + 1 octets of this line's n + 1 (with its LF). */
		memcpy(dq->mem + wpos, arg, alen);
		dq->mem[wpos + alen] = '\0';
		dq->instr[dq->ninstr].type = type;
		dq->instr[dq->ninstr].arg = dq->mem + wpos;
		dq->instr[dq->ninstr].line = line;
		dq->ninstr++;
		wpos += alen + 1;
	}
	*out = dq;
	return SQ_OK;
 fail:
	*errline = line;
	dotqmail_free(dq);
	return status;
}

void
dotqmail_env_init(struct dotqmail_env *env)
{
	memset(env->envp, 0, sizeof(env->envp));
	env->n = 0;
	env->used = 0;
	env->start = 0;
	env->error = 0;
	env->buf[0] = '\0';
}

static int
dotqmail_env_name_ok(const char *name)
{
	size_t	 i;

	if (name[0] == '\0' || (name[0] >= '0' && name[0] <= '9'))
		return 0;
	for (i = 0; name[i] != '\0'; i++)
		if (!((name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return 0;
	return 1;
}

/* Append n octets of s to the variable being written, mapped. */
static void
dotqmail_env_cat(struct dotqmail_env *env, const char *s, size_t n, int map)
{
	size_t	 i;
	char	 c;

	if (env->error)
		return;
	/* One octet stays free for the NUL. */
	if (n >= sizeof(env->buf) - env->used) {
		env->error = 1;
		return;
	}
	for (i = 0; i < n; i++) {
		c = s[i];
		if (map == DOTQMAIL_MAP_NL && c == '\n')
			c = '_';
		else if (map == DOTQMAIL_MAP_WS &&
		    (c == ' ' || c == '\t' || c == '\n'))
			c = '-';
		env->buf[env->used++] = c;
	}
}

static void
dotqmail_env_str(struct dotqmail_env *env, const char *s, int map)
{
	dotqmail_env_cat(env, s, strlen(s), map);
}

static void
dotqmail_env_begin(struct dotqmail_env *env, const char *name)
{
	size_t	 i, nlen;

	if (env->error)
		return;
	if (!dotqmail_env_name_ok(name) || env->n >= DOTQMAIL_ENV_MAX) {
		env->error = 1;
		return;
	}
	nlen = strlen(name);
	for (i = 0; i < env->n; i++)
		if (strncmp(env->envp[i], name, nlen) == 0 &&
		    env->envp[i][nlen] == '=') {
			env->error = 1;
			return;
		}
	env->start = env->used;
	dotqmail_env_cat(env, name, nlen, DOTQMAIL_MAP_NONE);
	dotqmail_env_cat(env, "=", 1, DOTQMAIL_MAP_NONE);
}

static void
dotqmail_env_end(struct dotqmail_env *env)
{
	if (env->error)
		return;
	env->buf[env->used++] = '\0';	/* room kept by dotqmail_env_cat */
	env->envp[env->n++] = env->buf + env->start;
	env->envp[env->n] = NULL;
}

static void
dotqmail_env_put(struct dotqmail_env *env, const char *name, const char *s,
    size_t n)
{
	dotqmail_env_begin(env, name);
	dotqmail_env_cat(env, s, n, DOTQMAIL_MAP_NONE);
	dotqmail_env_end(env);
}

int
dotqmail_env_add(struct dotqmail_env *env, const char *name,
    const char *value)
{
	if (name == NULL || value == NULL)
		env->error = 1;
	else
		dotqmail_env_put(env, name, value, strlen(value));
	return env->error ? -1 : 0;
}

/*
 * Append addr unquoted: a local part in RFC 5321 quotes loses them and
 * its backslashes; anything else (the rest, or text that is not a
 * well-formed quoted string) goes as it is.
 */
static void
dotqmail_env_unquoted(struct dotqmail_env *env, const char *addr, int map)
{
	const char	*p;
	char		 c;

	if (addr[0] == '"') {
		/* Check first that the quoted string ends. */
		for (p = addr + 1; *p != '\0' && *p != '"'; p++)
			if (*p == '\\' && p[1] != '\0')
				p++;
		if (*p == '"') {
			for (p = addr + 1; *p != '"'; p++) {
				if (*p == '\\')
					p++;
				c = *p;
				dotqmail_env_cat(env, &c, 1, map);
			}
			addr = p + 1;
		}
	}
	dotqmail_env_str(env, addr, map);
}

/* "Thu Jan  1 00:00:00 1970\n" in UTC, without the locale. */
static void
dotqmail_date(time_t t, char *buf, size_t len)
{
	static const char	*days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
				    "Fri", "Sat" };
	static const char	*months[] = { "Jan", "Feb", "Mar", "Apr",
				    "May", "Jun", "Jul", "Aug", "Sep", "Oct",
				    "Nov", "Dec" };
	struct tm		 tm;
	int			 r;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 ||
	    tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_year < -1900 ||
	    tm.tm_year > 9999 - 1900)
		goto epoch;
	r = snprintf(buf, len, "%s %s %2d %02d:%02d:%02d %d\n",
	    days[tm.tm_wday], months[tm.tm_mon], tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
	if (r > 0 && (size_t)r < len)
		return;
 epoch:
	(void)strlcpy(buf, "Thu Jan  1 00:00:00 1970\n", len);
}

/* Whether s is non-NULL and at most max octets long. */
static int
dotqmail_bounded(const char *s, size_t max)
{
	return s != NULL && strnlen(s, max + 1) <= max;
}

int
dotqmail_env_build(struct dotqmail_env *env, const struct dotqmail_envin *in)
{
	const char	*newsender, *x, *dot;
	char		 date[64];
	size_t		 hlen;
	int		 k;

	newsender = in->newsender != NULL ? in->newsender : in->sender;
	if (!dotqmail_bounded(in->sender, SQ_ADDR_MAX - 1) ||
	    !dotqmail_bounded(newsender, SQ_ADDR_MAX - 1) ||
	    !dotqmail_bounded(in->local, SQ_LOCALPART_MAX) ||
	    !dotqmail_bounded(in->host, SQ_DOMAIN_MAX) ||
	    !dotqmail_bounded(in->user, SQ_USER_MAX) ||
	    !dotqmail_bounded(in->home, DOTQMAIL_HOME_MAX) ||
	    !dotqmail_bounded(in->ext, DOTQMAIL_EXT_MAX) ||
	    (in->dflt != NULL && !dotqmail_bounded(in->dflt,
	    DOTQMAIL_EXT_MAX))) {
		env->error = 1;
		return -1;
	}

	dotqmail_env_begin(env, "SENDER");
	dotqmail_env_unquoted(env, in->sender, DOTQMAIL_MAP_NONE);
	dotqmail_env_end(env);
	dotqmail_env_begin(env, "NEWSENDER");
	dotqmail_env_unquoted(env, newsender, DOTQMAIL_MAP_NONE);
	dotqmail_env_end(env);
	dotqmail_env_begin(env, "RECIPIENT");
	dotqmail_env_unquoted(env, in->local, DOTQMAIL_MAP_NONE);
	dotqmail_env_str(env, "@", DOTQMAIL_MAP_NONE);
	dotqmail_env_str(env, in->host, DOTQMAIL_MAP_NONE);
	dotqmail_env_end(env);
	dotqmail_env_put(env, "USER", in->user, strlen(in->user));
	dotqmail_env_put(env, "HOME", in->home, strlen(in->home));
	dotqmail_env_put(env, "HOST", in->host, strlen(in->host));
	/* HOST2..4: each drops the last dot-component of the one before. */
	hlen = strlen(in->host);
	for (k = 2; k <= 4; k++) {
		if ((dot = memrchr(in->host, '.', hlen)) != NULL)
			hlen = dot - in->host;
		dotqmail_env_put(env, k == 2 ? "HOST2" : k == 3 ? "HOST3" :
		    "HOST4", in->host, hlen);
	}
	dotqmail_env_begin(env, "LOCAL");
	dotqmail_env_unquoted(env, in->local, DOTQMAIL_MAP_NONE);
	dotqmail_env_end(env);
	dotqmail_env_put(env, "EXT", in->ext, strlen(in->ext));
	/* EXT2..4: each is the one before after its first '-'. */
	x = in->ext;
	for (k = 2; k <= 4; k++) {
		x += strcspn(x, "-");
		if (*x != '\0')
			x++;
		dotqmail_env_put(env, k == 2 ? "EXT2" : k == 3 ? "EXT3" :
		    "EXT4", x, strlen(x));
	}
	if (in->dflt != NULL)
		dotqmail_env_put(env, "DEFAULT", in->dflt, strlen(in->dflt));

	dotqmail_env_begin(env, "DTLINE");
	dotqmail_env_str(env, "Delivered-To: ", DOTQMAIL_MAP_NONE);
	dotqmail_env_unquoted(env, in->local, DOTQMAIL_MAP_NL);
	dotqmail_env_str(env, "@", DOTQMAIL_MAP_NONE);
	dotqmail_env_str(env, in->host, DOTQMAIL_MAP_NL);
	dotqmail_env_str(env, "\n", DOTQMAIL_MAP_NONE);
	dotqmail_env_end(env);

	dotqmail_env_begin(env, "RPLINE");
	dotqmail_env_str(env, "Return-Path: <", DOTQMAIL_MAP_NONE);
	dotqmail_env_str(env, in->sender, DOTQMAIL_MAP_NL);
	dotqmail_env_str(env, ">\n", DOTQMAIL_MAP_NONE);
	dotqmail_env_end(env);

	dotqmail_date(in->date, date, sizeof(date));
	dotqmail_env_begin(env, "UFLINE");
	dotqmail_env_str(env, "From ", DOTQMAIL_MAP_NONE);
	if (in->sender[0] == '\0')
		dotqmail_env_str(env, "MAILER-DAEMON", DOTQMAIL_MAP_NONE);
	else
		dotqmail_env_unquoted(env, in->sender, DOTQMAIL_MAP_WS);
	dotqmail_env_str(env, " ", DOTQMAIL_MAP_NONE);
	dotqmail_env_str(env, date, DOTQMAIL_MAP_NONE);
	dotqmail_env_end(env);

	return env->error ? -1 : 0;
}

enum dotqmail_exit
dotqmail_exit_code(int code)
{
	switch (code) {
	case 0:
		return DOTQMAIL_EXIT_OK;
	case 99:
		return DOTQMAIL_EXIT_STOP;
	case 100:
	case 64:
	case 65:
	case 70:
	case 76:
	case 77:
	case 78:
	case 112:
		return DOTQMAIL_EXIT_PERM;
	default:
		return DOTQMAIL_EXIT_TEMP;
	}
}

enum dotqmail_exit
dotqmail_exit_status(int wstatus)
{
	if (WIFEXITED(wstatus))
		return dotqmail_exit_code(WEXITSTATUS(wstatus));
	return DOTQMAIL_EXIT_TEMP;
}
