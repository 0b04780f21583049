/*
 * libFuzzer target for lka/qmail_users.c.  The input is one octet n, a
 * local part of n % 160 octets (optionally "local@domain"), and the rest,
 * which is parsed both as users/assign and as virtualdomains.  What
 * parses is checked (sorted unique lowered keys, fields within their
 * rules, every key found again), the local part is looked up in both and
 * through qmail_getpw with a passwd made up from the input, and every
 * result is checked against the rules the header promises.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lka/qmail_users.h"
#include "mailaddr.h"
#include "sqmail.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static uint32_t	 fuzz_seed;

static int
fuzz_has_upper(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			return 1;
	return 0;
}

/* The checks qmail_users.c makes of a home directory, done again. */
static void
fuzz_check_home(const char *h)
{
	size_t	 n = strlen(h), i;

	if (n == 0 || n > QMAIL_HOME_MAX || h[0] != '/')
		abort();
	if (strstr(h, "//") != NULL || strstr(h, "/./") != NULL ||
	    strstr(h, "/../") != NULL)
		abort();
	if ((n >= 2 && strcmp(h + n - 2, "/.") == 0) ||
	    (n >= 3 && strcmp(h + n - 3, "/..") == 0))
		abort();
	for (i = 0; i < n; i++)
		if ((unsigned char)h[i] < 0x20 || h[i] == 0x7f || h[i] == ':')
			abort();
}

static void
fuzz_check_user(const struct qmail_user *u)
{
	if (u->user[0] == '\0' || u->uid == 0)
		abort();
	fuzz_check_home(u->home);
	if (strcmp(u->dash, "") != 0 && strcmp(u->dash, "-") != 0)
		abort();
	if (strlen(u->ext) > QMAIL_EXT_MAX)
		abort();
}

/* What qmail_assign_lookup must find, by a linear scan. */
static const struct qmail_assign_ent *
fuzz_assign_ref(const struct qmail_assign *qa, const char *local,
    size_t *restoff)
{
	const struct qmail_assign_ent	*best = NULL;
	char				 low[QMAIL_FIELD_MAX + 1];
	size_t				 i, n = strlen(local), kl;

	for (i = 0; i < n; i++)
		low[i] = (local[i] >= 'A' && local[i] <= 'Z') ?
		    local[i] - 'A' + 'a' : local[i];
	low[n] = '\0';
	for (i = 0; i < qa->nexact; i++)
		if (strcmp(qa->exact[i].local, low) == 0) {
			*restoff = n;
			return &qa->exact[i];
		}
	for (i = 0; i < qa->nwild; i++) {
		kl = strlen(qa->wild[i].local);
		if (kl <= n && strncmp(qa->wild[i].local, low, kl) == 0 &&
		    (best == NULL || kl > strlen(best->local)))
			best = &qa->wild[i];
	}
	if (best != NULL)
		*restoff = strlen(best->local);
	return best;
}

static void
fuzz_assign(const struct qmail_assign *qa, const char *local)
{
	const struct qmail_assign_ent	*e, *ref;
	struct qmail_user		 u;
	char				 ext[2 * QMAIL_EXT_MAX + 2];
	size_t				 i, k, ll, restoff = 0;
	int				 r;

	for (k = 0; k < 2; k++) {
		e = k == 0 ? qa->exact : qa->wild;
		for (i = 0; i < (k == 0 ? qa->nexact : qa->nwild); i++) {
			if (fuzz_has_upper(e[i].local) ||
			    strlen(e[i].local) > QMAIL_FIELD_MAX ||
			    strlen(e[i].ext) > QMAIL_FIELD_MAX ||
			    e[i].uid == 0 || e[i].user[0] == '\0')
				abort();
			if (i > 0 && strcmp(e[i - 1].local, e[i].local) >= 0)
				abort();
			fuzz_check_home(e[i].home);
			if (strcmp(e[i].dash, "") != 0 &&
			    strcmp(e[i].dash, "-") != 0)
				abort();
			/* Every simple key is found again, as itself. */
			if (k == 0 && e[i].local[0] != '\0') {
				if (qmail_assign_lookup(qa, e[i].local, &u) !=
				    QMAIL_FOUND || strcmp(u.user, e[i].user) ||
				    strcmp(u.ext, e[i].ext) ||
				    u.uid != e[i].uid)
					abort();
			}
		}
	}
	r = qmail_assign_lookup(qa, local, &u);
	ll = strlen(local);
	if (ll == 0 || ll > QMAIL_FIELD_MAX) {
		if (r != QMAIL_BAD || u.user[0] != '\0')
			abort();
		return;
	}
	ref = fuzz_assign_ref(qa, local, &restoff);
	switch (r) {
	case QMAIL_FOUND:
		fuzz_check_user(&u);
		if (ref == NULL || strcmp(u.user, ref->user) != 0 ||
		    u.uid != ref->uid || u.gid != ref->gid ||
		    strcmp(u.home, ref->home) != 0)
			abort();
		(void)strlcpy(ext, ref->ext, sizeof(ext));
		(void)strlcat(ext, local + restoff, sizeof(ext));
		if (strcmp(u.ext, ext) != 0)
			abort();
		break;
	case QMAIL_NONE:
		if (ref != NULL || u.user[0] != '\0')
			abort();
		break;
	default:
		abort();
	}
}

/* A passwd made up from the input: some names exist, some homes fit. */
static uint32_t
fuzz_hash(const char *s)
{
	uint32_t	 h = 5381 ^ fuzz_seed;

	for (; *s != '\0'; s++)
		h = h * 33 + (unsigned char)*s;
	return h;
}

static int
fuzz_getpw(void *arg, const char *name, struct qmail_pw *pw)
{
	const char	*alias = arg;
	const char	*p;
	uint32_t	 h;

	/* Only the alias name may break the rule for names we ask about. */
	if (alias == NULL || strcmp(name, alias) != 0) {
		if (name[0] == '\0' || name[0] == '-' || name[0] == '.' ||
		    strlen(name) > SQ_USER_MAX)
			abort();
		for (p = name; *p != '\0'; p++)
			if (!((*p >= 'a' && *p <= 'z') ||
			    (*p >= '0' && *p <= '9') || *p == '.' ||
			    *p == '_' || *p == '-'))
				abort();
	}
	h = fuzz_hash(name);
	switch (h % 5) {
	case 0:
		return 0;
	case 1:
		if ((h >> 8) % 7 == 0)
			return -1;
		break;
	default:
		break;
	}
	(void)strlcpy(pw->name, (h >> 4) % 11 == 0 ? "Other" : name,
	    sizeof(pw->name));
	pw->uid = (h >> 12) % 3 == 0 ? 0 : 1000 + h % 1000;
	pw->gid = 100;
	(void)strlcpy(pw->home, (h >> 16) % 13 == 0 ? "/x/../y" : "/home/u",
	    sizeof(pw->home));
	return 1;
}

static int
fuzz_owner(void *arg, const char *path, uid_t *uid)
{
	uint32_t	 h = fuzz_hash(path);

	if (h % 17 == 0)
		return -1;
	if (h % 3 == 0)
		return 0;
	*uid = 1000 + fuzz_seed % 1000;
	return 1;
}

static void
fuzz_getpw_check(const char *local)
{
	static const char *const	 ignore[] = { "root", "joe", NULL };
	struct qmail_getpw_ops		 ops;
	struct qmail_user		 u;
	size_t				 ll, el;
	int				 r;

	memset(&ops, 0, sizeof(ops));
	ops.getpw = fuzz_getpw;
	ops.owner = fuzz_owner;
	ops.brk = fuzz_seed % 4 == 0 ? '+' : 0;
	ops.alias = fuzz_seed % 3 == 0 ? NULL : QMAIL_ALIAS_USER;
	ops.arg = (void *)ops.alias;
	ops.ignore = ignore;
	r = qmail_getpw(&ops, local, &u);
	ll = strlen(local);
	switch (r) {
	case QMAIL_FOUND:
		fuzz_check_user(&u);
		if (strcmp(u.user, "root") == 0 || strcmp(u.user, "joe") == 0)
			abort();
		el = strlen(u.ext);
		if (el > ll || strcmp(u.ext, local + ll - el) != 0)
			abort();
		if (u.dash[0] == '\0' && el != 0)
			abort();
		break;
	case QMAIL_NONE:
		if (ops.alias != NULL)
			abort();
		/* FALLTHROUGH */
	case QMAIL_TEMP:
	case QMAIL_BAD:
		if (u.user[0] != '\0')
			abort();
		break;
	default:
		abort();
	}
}

static void
fuzz_vdoms(const struct table_file *vd, const char *local,
    const char *domain)
{
	char		 out[SQ_LOCALPART_MAX + 1];
	const char	*p;
	size_t		 i, j, pn;
	int		 r;

	for (i = 0; i < vd->nents; i++) {
		if (fuzz_has_upper(vd->ents[i].key))
			abort();
		if (i > 0 && strcmp(vd->ents[i - 1].key, vd->ents[i].key) >= 0)
			abort();
		if (strlen(vd->ents[i].val) > QMAIL_FIELD_MAX ||
		    (vd->ents[i].val[0] != '\0' &&
		    !mailaddr_is_dotstring(vd->ents[i].val,
		    strlen(vd->ents[i].val))))
			abort();
		/* A domain key is found for its domain, unless x@domain is. */
		if (vd->ents[i].key[0] != '\0' && vd->ents[i].key[0] != '.' &&
		    strchr(vd->ents[i].key, '@') == NULL) {
			p = qmail_vdoms_match(vd, "x", vd->ents[i].key);
			for (j = 0; j < vd->nents; j++)
				if (strncmp(vd->ents[j].key, "x@", 2) == 0 &&
				    strcmp(vd->ents[j].key + 2,
				    vd->ents[i].key) == 0)
					break;
			if (p == NULL || (j == vd->nents &&
			    p != vd->ents[i].val))
				abort();
		}
	}
	memset(out, 'z', sizeof(out));
	r = qmail_vdoms_lookup(vd, local, domain, out, sizeof(out));
	p = qmail_vdoms_match(vd, local, domain);
	switch (r) {
	case QMAIL_FOUND:
		if (p == NULL || p[0] == '\0')
			abort();
		pn = strlen(p);
		if (strlen(out) > SQ_LOCALPART_MAX ||
		    strncmp(out, p, pn) != 0 || out[pn] != '-' ||
		    strcmp(out + pn + 1, local) != 0)
			abort();
		break;
	case QMAIL_NONE:
		if (out[0] != '\0' || (p != NULL && p[0] != '\0'))
			abort();
		break;
	case QMAIL_BAD:
		if (out[0] != '\0' || p == NULL || p[0] == '\0')
			abort();
		break;
	default:
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qmail_assign	*qa;
	struct table_file	*vd;
	const char		*errstr, *buf;
	char			 local[256], *at, *domain;
	size_t			 n, len, errline;

	if (size < 1)
		return 0;
	n = data[0] % 160;
	if (n > size - 1)
		n = size - 1;
	memcpy(local, data + 1, n);
	local[n] = '\0';
	buf = (const char *)data + 1 + n;
	len = size - 1 - n;
	fuzz_seed = n * 2654435761u + (uint32_t)len;
	domain = (char *)"example.org";
	if ((at = strrchr(local, '@')) != NULL) {
		*at = '\0';
		domain = at + 1;
	}

	if (qmail_assign_parse(buf, len, &qa, &errline, &errstr) == 0) {
		if (qa == NULL || errstr != NULL)
			abort();
		fuzz_assign(qa, local);
		qmail_assign_free(qa);
	} else if (qa != NULL || errstr == NULL)
		abort();

	if (qmail_vdoms_parse(buf, len, &vd, &errline, &errstr) == 0) {
		if (vd == NULL || errstr != NULL)
			abort();
		fuzz_vdoms(vd, local, domain);
		table_file_free(vd);
	} else if (vd != NULL || errstr == NULL)
		abort();

	fuzz_getpw_check(local);
	return 0;
}
