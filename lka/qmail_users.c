/*
 * qmail-users(5), qmail-getpw(8) and virtualdomains: which user is in
 * charge of a local address.  The files are administrator data but are
 * parsed as hostile input all the same: every field is bounded and
 * checked, and a malformed line fails the whole file with its line number
 * (a half-read users/assign would hand addresses to the wrong user).
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailaddr.h"
#include "qmail_users.h"
#include "textline.h"
#include "sqmail.h"

/* A counted key for bsearch: a prefix of a local part, lowered. */
struct qmail_key {
	const char	*s;
	size_t		 n;
};

static int
qmail_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static void
qmail_lowercpy(char *dst, const char *src, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		dst[i] = qmail_lower((unsigned char)src[i]);
	dst[n] = '\0';
}

/* Printable ASCII other than space: what a key or an extension may hold. */
static int
qmail_graph(const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

/* An account name from users/assign: printable, no path or field syntax. */
static int
qmail_username_ok(const char *s, size_t n)
{
	if (n == 0 || n > SQ_USER_MAX || s[0] == '-' || s[0] == '.')
		return 0;
	if (!qmail_graph(s, n))
		return 0;
	return memchr(s, '/', n) == NULL && memchr(s, ':', n) == NULL;
}

/*
 * A home directory: absolute, bounded, no control byte, no empty, "." or
 * ".." component (a trailing '/' is fine).  Octets above 0x7f pass: home
 * directories are file names, not mail addresses.
 */
static int
qmail_home_ok(const char *s, size_t n)
{
	size_t	 i, c;

	if (n == 0 || n > QMAIL_HOME_MAX || s[0] != '/')
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == ':')
			return 0;
	/* Each component starts after a '/'. */
	for (i = 1; i < n; i = c + 1) {
		for (c = i; c < n && s[c] != '/'; c++)
			;
		if (c == i) {
			if (c == n)
				break;		/* "/", or a trailing '/' */
			return 0;		/* "//" */
		}
		if ((c - i == 1 && s[i] == '.') ||
		    (c - i == 2 && s[i] == '.' && s[i + 1] == '.'))
			return 0;
		if (c == n)
			break;
	}
	return 1;
}

/* A uid or gid: 1 to 10 decimal digits, below (uid_t)-1. */
static int
qmail_id(const char *s, size_t n, uint32_t *out)
{
	uint64_t	 v = 0;
	size_t		 i;

	if (n == 0 || n > 10)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v >= UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/*
 * One line of users/assign, without its LF.  Checks it and appends its
 * fields to mem at *wpos (at most n octets: eight separators become five
 * NULs).  Returns 0 with e filled, or -1 with *errstr.
 */
static int
qmail_assign_line(const char *s, size_t n, char *mem, size_t *wpos,
    struct qmail_assign_ent *e, const char **errstr)
{
	const char	*f[7];
	size_t		 flen[7], i, k, start;
	uint32_t	 id;

	if (n == 0) {
		*errstr = "blank line";
		return -1;
	}
	if (text_line_check(s, n, QMAIL_ASSIGN_LINE_MAX, 0, errstr) == -1)
		return -1;
	if (s[0] != '=' && s[0] != '+') {
		*errstr = "line does not start with '=' or '+'";
		return -1;
	}
	for (k = 0, start = 1, i = 1; i < n && k < 7; i++) {
		if (s[i] != ':')
			continue;
		f[k] = s + start;
		flen[k] = i - start;
		k++;
		start = i + 1;
	}
	if (k < 7) {
		*errstr = "too few fields (seven, each ended by ':')";
		return -1;
	}
	if (i != n) {
		*errstr = "data after the seventh ':'";
		return -1;
	}

	if (flen[0] > QMAIL_FIELD_MAX || !qmail_graph(f[0], flen[0])) {
		*errstr = "bad local part (printable ASCII, at most 128 "
		    "octets)";
		return -1;
	}
	if (!qmail_username_ok(f[1], flen[1])) {
		*errstr = "bad user name";
		return -1;
	}
	if (qmail_id(f[2], flen[2], &id) == -1) {
		*errstr = "bad uid";
		return -1;
	}
	if (id == 0) {
		*errstr = "uid 0: no delivery runs as root";
		return -1;
	}
	e->uid = id;
	if (qmail_id(f[3], flen[3], &id) == -1) {
		*errstr = "bad gid";
		return -1;
	}
	e->gid = id;
	if (!qmail_home_ok(f[4], flen[4])) {
		*errstr = "bad home directory (absolute, no empty, \".\" or "
		    "\"..\" component)";
		return -1;
	}
	if (flen[5] > 1 || (flen[5] == 1 && f[5][0] != '-')) {
		*errstr = "dash is neither empty nor \"-\"";
		return -1;
	}
	if (flen[6] > QMAIL_FIELD_MAX || !qmail_graph(f[6], flen[6])) {
		*errstr = "bad extension (printable ASCII, at most 128 "
		    "octets)";
		return -1;
	}

	e->local = mem + *wpos;
	qmail_lowercpy(mem + *wpos, f[0], flen[0]);
	*wpos += flen[0] + 1;
	e->user = mem + *wpos;
	memcpy(mem + *wpos, f[1], flen[1]);
	mem[*wpos + flen[1]] = '\0';
	*wpos += flen[1] + 1;
	e->home = mem + *wpos;
	memcpy(mem + *wpos, f[4], flen[4]);
	mem[*wpos + flen[4]] = '\0';
	*wpos += flen[4] + 1;
	e->dash = mem + *wpos;
	memcpy(mem + *wpos, f[5], flen[5]);
	mem[*wpos + flen[5]] = '\0';
	*wpos += flen[5] + 1;
	e->ext = mem + *wpos;
	memcpy(mem + *wpos, f[6], flen[6]);
	mem[*wpos + flen[6]] = '\0';
	*wpos += flen[6] + 1;
	return 0;
}

static int
qmail_assign_cmp(const void *a, const void *b)
{
	const struct qmail_assign_ent	*ea = a, *eb = b;
	int				 r;

	if ((r = strcmp(ea->local, eb->local)) != 0)
		return r;
	if (ea->line != eb->line)
		return ea->line < eb->line ? -1 : 1;
	return 0;
}

static int
qmail_assign_keycmp(const void *k, const void *e)
{
	const struct qmail_key		*key = k;
	const struct qmail_assign_ent	*ent = e;
	int				 r;

	/* key->s holds no NUL in its first n octets. */
	if ((r = strncmp(key->s, ent->local, key->n)) != 0)
		return r;
	return ent->local[key->n] == '\0' ? 0 : -1;
}

/* Sort by key and keep the first line of each key; the lowest dropped. */
static size_t
qmail_assign_unique(struct qmail_assign_ent *ents, size_t n, size_t *dupline)
{
	size_t	 i, j;

	if (n > 1)
		qsort(ents, n, sizeof(*ents), qmail_assign_cmp);
	for (i = 0, j = 0; i < n; i++) {
		if (j > 0 && strcmp(ents[j - 1].local, ents[i].local) == 0) {
			if (*dupline == 0 || ents[i].line < *dupline)
				*dupline = ents[i].line;
			continue;
		}
		ents[j++] = ents[i];
	}
	return j;
}

/* Append e to *arr (*n entries, *cap allocated); -1 when out of memory. */
static int
qmail_assign_push(struct qmail_assign_ent **arr, size_t *n, size_t *cap,
    const struct qmail_assign_ent *e)
{
	struct qmail_assign_ent	*na;
	size_t			 ncap;

	if (*n == *cap) {
		ncap = *cap == 0 ? 64 : *cap * 2;
		if (ncap > QMAIL_ASSIGN_ENTRIES_MAX)
			ncap = QMAIL_ASSIGN_ENTRIES_MAX;
		if ((na = reallocarray(*arr, ncap, sizeof(*na))) == NULL)
			return -1;
		*arr = na;
		*cap = ncap;
	}
	(*arr)[(*n)++] = *e;
	return 0;
}

void
qmail_assign_free(struct qmail_assign *qa)
{
	if (qa == NULL)
		return;
	free(qa->exact);
	free(qa->wild);
	free(qa->mem);
	free(qa);
}

int
qmail_assign_parse(const char *buf, size_t len, struct qmail_assign **out,
    size_t *errline, const char **errstr)
{
	struct qmail_assign	*qa;
	struct qmail_assign_ent	 e;
	const char		*s;
	size_t			 pos, n, line, wpos, capx, capw;
	int			 ended = 0, nl;

	*out = NULL;
	*errline = 0;
	*errstr = NULL;
	if (len > QMAIL_ASSIGN_FILE_MAX) {
		*errstr = "file too large";
		return -1;
	}
	if ((qa = calloc(1, sizeof(*qa))) == NULL ||
	    (qa->mem = malloc(len + 1)) == NULL) {
		free(qa);
		*errstr = "out of memory";
		return -1;
	}
	wpos = 0;
	capx = capw = 0;
	line = 0;
	for (pos = 0; pos < len; ) {
		line++;
		n = text_line_next(buf, len, &pos, &s, &nl);
		if (n == 1 && s[0] == '.') {
			ended = 1;
			break;
		}
		if (!nl) {
			*errstr = "last line has no newline";
			goto fail;
		}
		memset(&e, 0, sizeof(e));
		if (qmail_assign_line(s, n, qa->mem, &wpos, &e, errstr) == -1)
			goto fail;
		e.line = line;
		if (qa->nexact + qa->nwild == QMAIL_ASSIGN_ENTRIES_MAX) {
			*errstr = "too many assignments";
			goto fail;
		}
		if (s[0] == '=' ? qmail_assign_push(&qa->exact, &qa->nexact,
		    &capx, &e) : qmail_assign_push(&qa->wild, &qa->nwild,
		    &capw, &e)) {
			*errstr = "out of memory";
			goto fail;
		}
	}
	if (!ended) {
		line++;
		*errstr = "missing the final \".\" line";
		goto fail;
	}
	if (pos < len) {
		line++;
		*errstr = "data after the final \".\" line";
		goto fail;
	}
	qa->nexact = qmail_assign_unique(qa->exact, qa->nexact, &qa->dupline);
	qa->nwild = qmail_assign_unique(qa->wild, qa->nwild, &qa->dupline);
	*out = qa;
	return 0;
 fail:
	*errline = line;
	qmail_assign_free(qa);
	return -1;
}

/* Fill out from e; ext is e->ext followed by rest.  A qmail_res. */
static int
qmail_assign_fill(const struct qmail_assign_ent *e, const char *rest,
    struct qmail_user *out)
{
	if (strlcpy(out->user, e->user, sizeof(out->user)) >=
	    sizeof(out->user) ||
	    strlcpy(out->home, e->home, sizeof(out->home)) >=
	    sizeof(out->home) ||
	    strlcpy(out->dash, e->dash, sizeof(out->dash)) >=
	    sizeof(out->dash) ||
	    strlcpy(out->ext, e->ext, sizeof(out->ext)) >= sizeof(out->ext) ||
	    strlcat(out->ext, rest, sizeof(out->ext)) >= sizeof(out->ext)) {
		memset(out, 0, sizeof(*out));
		return QMAIL_BAD;
	}
	out->uid = e->uid;
	out->gid = e->gid;
	return QMAIL_FOUND;
}

int
qmail_assign_lookup(const struct qmail_assign *qa, const char *local,
    struct qmail_user *out)
{
	const struct qmail_assign_ent	*e;
	struct qmail_key		 key;
	char				 low[QMAIL_FIELD_MAX + 1];
	size_t				 n, l;

	memset(out, 0, sizeof(*out));
	n = strnlen(local, QMAIL_FIELD_MAX + 1);
	if (n == 0 || n > QMAIL_FIELD_MAX)
		return QMAIL_BAD;
	qmail_lowercpy(low, local, n);
	key.s = low;
	key.n = n;
	if (qa->nexact > 0 && (e = bsearch(&key, qa->exact, qa->nexact,
	    sizeof(*e), qmail_assign_keycmp)) != NULL)
		return qmail_assign_fill(e, "", out);
	if (qa->nwild == 0)
		return QMAIL_NONE;
	/* The longest loc first, down to the empty one ("+:"). */
	for (l = n + 1; l-- > 0;) {
		key.n = l;
		if ((e = bsearch(&key, qa->wild, qa->nwild, sizeof(*e),
		    qmail_assign_keycmp)) != NULL)
			return qmail_assign_fill(e, local + l, out);
	}
	return QMAIL_NONE;
}

/*
 * A name we ask passwd about: 1..SQ_USER_MAX octets of [a-z0-9._-], not
 * starting with '-' or '.'.  qmail asks about anything; a name service
 * (LDAP, SQL) behind getpwnam need not be as robust as files.
 */
static int
qmail_pwname_ok(const char *s, size_t n)
{
	size_t	 i;

	if (n == 0 || n > SQ_USER_MAX || s[0] == '-' || s[0] == '.')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

static int
qmail_ignored(const struct qmail_getpw_ops *ops, const char *name)
{
	const char *const	*p;

	if (ops->ignore == NULL)
		return 0;
	for (p = ops->ignore; *p != NULL; p++)
		if (strcmp(*p, name) == 0)
			return 1;
	return 0;
}

int
qmail_pwname(const struct qmail_getpw_ops *ops, const char *s, size_t n,
    char name[SQ_USER_MAX + 1])
{
	if (n == 0 || n > SQ_USER_MAX)
		return 0;
	qmail_lowercpy(name, s, n);
	return qmail_pwname_ok(name, n) && !qmail_ignored(ops, name);
}

/*
 * Whether name is a user qmail-getpw would deliver to: QMAIL_FOUND with
 * *pw filled, QMAIL_NONE, or QMAIL_TEMP.  What the callbacks return is
 * checked like any other input.
 */
static int
qmail_pw_user(const struct qmail_getpw_ops *ops, const char *name,
    struct qmail_pw *pw)
{
	uid_t	 owner;
	int	 r;

	memset(pw, 0, sizeof(*pw));
	if ((r = ops->getpw(ops->arg, name, pw)) == -1)
		return QMAIL_TEMP;
	if (r != 1)
		return QMAIL_NONE;
	if (memchr(pw->name, '\0', sizeof(pw->name)) == NULL ||
	    memchr(pw->home, '\0', sizeof(pw->home)) == NULL)
		return QMAIL_NONE;
	/* A name service that folds case must not hand out "Joe". */
	if (strcmp(pw->name, name) != 0)
		return QMAIL_NONE;
	if (pw->uid == 0)
		return QMAIL_NONE;
	if (!qmail_home_ok(pw->home, strlen(pw->home)))
		return QMAIL_NONE;
	if ((r = ops->owner(ops->arg, pw->home, &owner)) == -1)
		return QMAIL_TEMP;
	if (r != 1 || owner != pw->uid)
		return QMAIL_NONE;
	return QMAIL_FOUND;
}

static void
qmail_pw_fill(const struct qmail_pw *pw, const char *dash, const char *ext,
    struct qmail_user *out)
{
	/* All bounded by their sources: name and home fit, ext <= 128. */
	(void)strlcpy(out->user, pw->name, sizeof(out->user));
	(void)strlcpy(out->home, pw->home, sizeof(out->home));
	(void)strlcpy(out->dash, dash, sizeof(out->dash));
	(void)strlcpy(out->ext, ext, sizeof(out->ext));
	out->uid = pw->uid;
	out->gid = pw->gid;
}

int
qmail_getpw(const struct qmail_getpw_ops *ops, const char *local,
    struct qmail_user *out)
{
	struct qmail_pw	 pw;
	char		 name[SQ_USER_MAX + 1];
	size_t		 n, i;
	int		 brk, r;

	memset(out, 0, sizeof(*out));
	brk = ops->brk != 0 ? ops->brk : QMAIL_BREAK_DEFAULT;
	n = strnlen(local, QMAIL_FIELD_MAX + 1);
	if (n == 0 || n > QMAIL_FIELD_MAX)
		return QMAIL_BAD;
	/*
	 * All of local, then each prefix ending before a break, longest
	 * first.
	 */
	for (i = n + 1; i-- > 0;) {
		if (i < n && (unsigned char)local[i] != brk)
			continue;
		if (i == 0 || i > SQ_USER_MAX)
			continue;
		if (!qmail_pwname(ops, local, i, name))
			continue;
		if ((r = qmail_pw_user(ops, name, &pw)) == QMAIL_TEMP)
			return QMAIL_TEMP;
		if (r == QMAIL_FOUND) {
			qmail_pw_fill(&pw, i < n ? "-" : "",
			    i < n ? local + i + 1 : "", out);
			return QMAIL_FOUND;
		}
	}
	if (ops->alias == NULL)
		return QMAIL_NONE;
	if (qmail_pw_user(ops, ops->alias, &pw) != QMAIL_FOUND)
		return QMAIL_TEMP;
	qmail_pw_fill(&pw, "-", local, out);
	return QMAIL_FOUND;
}

int
qmail_getpw_sys(void *arg, const char *name, struct qmail_pw *pw)
{
	struct passwd	*p;

	errno = 0;
	if ((p = getpwnam(name)) == NULL) {
		switch (errno) {
		case 0:
		case ENOENT:
		case ESRCH:
		case EBADF:
		case EPERM:
			return 0;
		default:
			return -1;
		}
	}
	if (strlcpy(pw->name, p->pw_name, sizeof(pw->name)) >=
	    sizeof(pw->name) ||
	    strlcpy(pw->home, p->pw_dir, sizeof(pw->home)) >=
	    sizeof(pw->home))
		return 0;
	pw->uid = p->pw_uid;
	pw->gid = p->pw_gid;
	return 1;
}

int
qmail_owner_sys(void *arg, const char *path, uid_t *uid)
{
	struct stat	 st;

	if (stat(path, &st) == -1) {
		switch (errno) {
		case ENOENT:
		case ENOTDIR:
		case EACCES:
		case EPERM:
		case ELOOP:
		case ENAMETOOLONG:
			return 0;
		default:
			return -1;
		}
	}
	if (!S_ISDIR(st.st_mode))
		return 0;
	*uid = st.st_uid;
	return 1;
}

/* A domain in virtualdomains: labels of [A-Za-z0-9_-] joined by dots. */
static int
qmail_vdom_domain_ok(const char *s, size_t n)
{
	size_t	 i, label = 0;

	if (n == 0 || n > SQ_DOMAIN_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		    s[i] == '_'))
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0;
}

static int
qmail_vdom_key_ok(const char *s, size_t n)
{
	const char	*at;

	if (n == 0)
		return 1;			/* the catch-all */
	if (s[0] == '.')
		return qmail_vdom_domain_ok(s + 1, n - 1);
	if ((at = memchr(s, '@', n)) != NULL)
		return at > s && (size_t)(at - s) <= SQ_LOCALPART_MAX &&
		    mailaddr_is_dotstring(s, at - s) &&
		    qmail_vdom_domain_ok(at + 1, n - (at - s) - 1);
	return qmail_vdom_domain_ok(s, n);
}

int
qmail_vdoms_parse(const char *buf, size_t len, struct table_file **out,
    size_t *errline, const char **errstr)
{
	struct table_file	*vd;
	struct table_file_ent	*ne;
	const char		*s, *colon;
	size_t			 pos, n, line, wpos, cap, k, p;
	int			 nl;

	*out = NULL;
	*errline = 0;
	*errstr = NULL;
	if (len > QMAIL_VDOMS_FILE_MAX) {
		*errstr = "file too large";
		return -1;
	}
	if ((vd = calloc(1, sizeof(*vd))) == NULL ||
	    (vd->mem = malloc(len + 1)) == NULL) {
		free(vd);
		*errstr = "out of memory";
		return -1;
	}
	wpos = 0;
	cap = 0;
	line = 0;
	for (pos = 0; pos < len; ) {
		line++;
		n = text_line_next(buf, len, &pos, &s, &nl);
		if (text_line_check(s, n, QMAIL_VDOMS_LINE_MAX, 1,
		    errstr) == -1)
			goto fail;
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n == 0 || s[0] == '#')
			continue;
		if (s[0] == ' ' || s[0] == '\t') {
			*errstr = "line starts with white space";
			goto fail;
		}
		if ((colon = memchr(s, ':', n)) == NULL) {
			*errstr = "no ':' in line";
			goto fail;
		}
		k = colon - s;
		p = n - k - 1;
		if (!qmail_vdom_key_ok(s, k)) {
			*errstr = "bad key (domain, .domain, user@domain or "
			    "empty)";
			goto fail;
		}
		if (p > QMAIL_FIELD_MAX ||
		    (p > 0 && !mailaddr_is_dotstring(colon + 1, p))) {
			*errstr = "bad prefix (a dot-string of at most 128 "
			    "octets, or empty)";
			goto fail;
		}
		if (vd->nents == QMAIL_VDOMS_ENTRIES_MAX) {
			*errstr = "too many entries";
			goto fail;
		}
		if (vd->nents == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			if (cap > QMAIL_VDOMS_ENTRIES_MAX)
				cap = QMAIL_VDOMS_ENTRIES_MAX;
			if ((ne = reallocarray(vd->ents, cap,
			    sizeof(*ne))) == NULL) {
				*errstr = "out of memory";
				goto fail;
			}
			vd->ents = ne;
		}
		/* "key NUL prefix NUL": n + 1 octets of this line's n + 1. */
		vd->ents[vd->nents].key = vd->mem + wpos;
		qmail_lowercpy(vd->mem + wpos, s, k);
		wpos += k + 1;
		vd->ents[vd->nents].val = vd->mem + wpos;
		memcpy(vd->mem + wpos, colon + 1, p);
		vd->mem[wpos + p] = '\0';
		wpos += p + 1;
		vd->ents[vd->nents].line = line;
		vd->nents++;
	}
	/* As qmail's constmap: the last line of a key wins. */
	table_file_sort(vd, 1);
	*out = vd;
	return 0;
 fail:
	*errline = line;
	table_file_free(vd);
	return -1;
}

const char *
qmail_vdoms_match(const struct table_file *vd, const char *local,
    const char *domain)
{
	char		 key[SQ_LOCALPART_MAX + 1 + SQ_DOMAIN_MAX + 1];
	const char	*p, *dom;
	size_t		 ln, dn, i;

	ln = strnlen(local, SQ_LOCALPART_MAX + 1);
	dn = strnlen(domain, SQ_DOMAIN_MAX + 1);
	if (ln > SQ_LOCALPART_MAX || dn > SQ_DOMAIN_MAX || dn == 0)
		return NULL;
	qmail_lowercpy(key, local, ln);
	key[ln] = '@';
	qmail_lowercpy(key + ln + 1, domain, dn);
	dom = key + ln + 1;

	if ((p = table_file_get(vd, key)) != NULL ||
	    (p = table_file_get(vd, dom)) != NULL)
		return p;
	for (i = 0; i < dn; i++)
		if (dom[i] == '.' && (p = table_file_get(vd, dom + i)) != NULL)
			return p;
	return table_file_get(vd, "");
}

int
qmail_vdoms_lookup(const struct table_file *vd, const char *local,
    const char *domain, char *out, size_t outlen)
{
	const char	*prefix;
	size_t		 pn, ln;

	if (outlen == 0)
		return QMAIL_BAD;
	out[0] = '\0';
	if ((prefix = qmail_vdoms_match(vd, local, domain)) == NULL ||
	    prefix[0] == '\0')
		return QMAIL_NONE;
	pn = strlen(prefix);
	ln = strlen(local);
	if (pn + 1 + ln > SQ_LOCALPART_MAX || pn + 1 + ln >= outlen)
		return QMAIL_BAD;
	memcpy(out, prefix, pn);
	out[pn] = '-';
	memcpy(out + pn + 1, local, ln + 1);
	return QMAIL_FOUND;
}

int
qmail_assign_allows(const struct qmail_assign *qa, const char *user,
    uid_t uid, gid_t gid, const char *home)
{
	const struct qmail_assign_ent	*e;
	size_t				 i;

	if (qa == NULL || uid == 0)
		return 0;
	for (i = 0; i < qa->nexact + qa->nwild; i++) {
		e = i < qa->nexact ? &qa->exact[i] :
		    &qa->wild[i - qa->nexact];
		if (e->uid == uid && e->gid == gid &&
		    strcmp(e->user, user) == 0 && strcmp(e->home, home) == 0)
			return 1;
	}
	return 0;
}

int
qmail_assign_load(const char *path, struct qmail_assign **out, char *err,
    size_t errlen)
{
	const char	*what;
	char		*buf;
	size_t		 len, line;
	int		 r;

	*out = NULL;
	if (text_file_read(path, QMAIL_ASSIGN_FILE_MAX, &buf, &len, err,
	    errlen) == -1)
		return -1;
	r = qmail_assign_parse(buf, len, out, &line, &what);
	free(buf);
	if (r == -1)
		return text_parse_fail(err, errlen, path, line, what);
	return 0;
}

int
qmail_vdoms_load(const char *path, struct table_file **out, char *err,
    size_t errlen)
{
	const char	*what;
	char		*buf;
	size_t		 len, line;
	int		 r;

	*out = NULL;
	if (text_file_read(path, QMAIL_VDOMS_FILE_MAX, &buf, &len, err,
	    errlen) == -1)
		return -1;
	r = qmail_vdoms_parse(buf, len, out, &line, &what);
	free(buf);
	if (r == -1)
		return text_parse_fail(err, errlen, path, line, what);
	return 0;
}
