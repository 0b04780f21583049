/*
 * aliases(5) parser: see aliases.h.  Nothing here opens a file: newaliases
 * (lka/table_aliases.c) reads the source and writes the database, lka
 * reads values back with aliases_targets(), and the delivery agent reads
 * :include: files a line at a time with it.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aliases.h"
#include "mailaddr.h"

#define INCLUDE_PREFIX	":include:"

static int
al_space(char c)
{
	return c == ' ' || c == '\t';
}

/* A control octet we refuse anywhere: everything below space but tab. */
static int
al_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

const char *
aliases_type_name(enum alias_type t)
{
	switch (t) {
	case ALIAS_ADDR:
		return "address";
	case ALIAS_PROGRAM:
		return "program";
	case ALIAS_FILE:
		return "file";
	case ALIAS_INCLUDE:
		return "include";
	}
	return "?";
}

static int
al_store(struct alias_targets *out, enum alias_type type, const char *a,
    size_t alen, const char **errstr)
{
	if (out->n >= ALIASES_TARGETS_MAX) {
		*errstr = "too many targets";
		return -1;
	}
	/* A queue envelope holds no control octet: a tab neither. */
	if (memchr(a, '\t', alen) != NULL) {
		*errstr = "tab inside a target";
		return -1;
	}
	if (out->used + alen + 1 > sizeof(out->buf)) {
		*errstr = "targets too long";
		return -1;
	}
	memcpy(out->buf + out->used, a, alen);
	out->buf[out->used + alen] = '\0';
	out->t[out->n].type = type;
	out->t[out->n].arg = out->buf + out->used;
	out->used += alen + 1;
	out->n++;
	return 0;
}

/*
 * Classify the target text t (tlen octets, unquoted, trimmed) and store
 * it in out.
 */
static int
al_target(const char *t, size_t tlen, struct alias_targets *out,
    const char **errstr)
{
	struct mailaddr	 ma;
	enum alias_type	 type;
	const char	*a = t;
	size_t		 alen = tlen;

	if (out->n >= ALIASES_TARGETS_MAX) {
		*errstr = "too many targets";
		return -1;
	}
	if (tlen > ALIASES_TARGET_MAX) {
		*errstr = "target too long";
		return -1;
	}
	if (t[0] == '|') {
		type = ALIAS_PROGRAM;
		a++;
		alen--;
		while (alen > 0 && al_space(*a)) {
			a++;
			alen--;
		}
		if (alen == 0) {
			*errstr = "program target without a command";
			return -1;
		}
	} else if (t[0] == '/') {
		type = ALIAS_FILE;
	} else if (tlen >= sizeof(INCLUDE_PREFIX) - 1 &&
	    strncasecmp(t, INCLUDE_PREFIX, sizeof(INCLUDE_PREFIX) - 1) == 0) {
		type = ALIAS_INCLUDE;
		a += sizeof(INCLUDE_PREFIX) - 1;
		alen -= sizeof(INCLUDE_PREFIX) - 1;
		while (alen > 0 && al_space(*a)) {
			a++;
			alen--;
		}
		if (alen == 0 || a[0] != '/') {
			*errstr = ":include: needs an absolute path";
			return -1;
		}
	} else {
		type = ALIAS_ADDR;
		if (alen >= 2 && a[0] == '<' && a[alen - 1] == '>') {
			a++;
			alen -= 2;
		}
		if (alen == 0) {
			*errstr = "empty address";
			return -1;
		}
		if (memchr(a, '@', alen) != NULL) {
			if (mailaddr_parse(a, alen, &ma) == -1) {
				*errstr = "bad address";
				return -1;
			}
		} else if (alen > SQ_LOCALPART_MAX ||
		    !mailaddr_is_dotstring(a, alen)) {
			*errstr = "bad local name";
			return -1;
		}
	}
	return al_store(out, type, a, alen, errstr);
}

int
aliases_targets(const char *s, size_t len, struct alias_targets *out,
    const char **errstr)
{
	struct mailaddr	 ma;
	char		 tmp[ALIASES_TARGET_MAX + 1];
	size_t		 i = 0, start, end, n;

	*errstr = NULL;
	for (i = 0; i < len; i++)
		if (al_ctl((unsigned char)s[i])) {
			*errstr = "control character";
			return -1;
		}
	i = 0;
	while (i < len) {
		while (i < len && al_space(s[i]))
			i++;
		if (i == len)
			break;
		if (s[i] == ',') {
			i++;
			continue;
		}
		if (s[i] == '"') {
			start = i;
			n = 0;
			for (i++; i < len && s[i] != '"'; i++) {
				if (s[i] == '\\' && i + 1 < len)
					i++;
				if (n == sizeof(tmp) - 1) {
					*errstr = "target too long";
					return -1;
				}
				tmp[n++] = s[i];
			}
			if (i == len) {
				*errstr = "unterminated quote";
				return -1;
			}
			i++;
			if (i < len && s[i] == '@') {
				/* "local part"@domain: an address as written */
				while (i < len && s[i] != ',')
					i++;
				end = i;
				while (end > start && al_space(s[end - 1]))
					end--;
				if (end - start > ALIASES_TARGET_MAX) {
					*errstr = "target too long";
					return -1;
				}
				memcpy(tmp, s + start, end - start);
				n = end - start;
				tmp[n] = '\0';
				if (mailaddr_parse(tmp, n, &ma) == -1) {
					*errstr = "bad address";
					return -1;
				}
				if (al_store(out, ALIAS_ADDR, tmp, n,
				    errstr) == -1)
					return -1;
				continue;
			}
			while (i < len && al_space(s[i]))
				i++;
			if (i < len && s[i] != ',') {
				*errstr = "text after a quoted target";
				return -1;
			}
			/* trimmed inside the quotes too */
			start = 0;
			while (start < n && al_space(tmp[start]))
				start++;
			while (n > start && al_space(tmp[n - 1]))
				n--;
			if (n == start) {
				*errstr = "empty quoted target";
				return -1;
			}
			if (al_target(tmp + start, n - start, out, errstr) == -1)
				return -1;
			continue;
		}
		start = i;
		while (i < len && s[i] != ',')
			i++;
		end = i;
		while (end > start && al_space(s[end - 1]))
			end--;
		if (al_target(s + start, end - start, out, errstr) == -1)
			return -1;
	}
	return 0;
}

/*
 * Append target t to the value being built in v (vlen octets used of
 * vmax), quoted when a reader would otherwise split or trim it.
 */
static int
al_encode(const struct alias_target *t, char *v, size_t *vlen, size_t vmax)
{
	const char	*pre = "", *post = "", *a = t->arg, *p;
	size_t		 n = *vlen;
	int		 quote = 0;

	switch (t->type) {
	case ALIAS_PROGRAM:
		pre = "|";
		break;
	case ALIAS_INCLUDE:
		pre = INCLUDE_PREFIX;
		break;
	case ALIAS_ADDR:
		/*
		 * A local name such as "|" or "/x" (atext allows both) would
		 * read back as a program or a file: it goes in angle brackets.
		 */
		if (a[0] == '|' || a[0] == '/' || strncasecmp(a,
		    INCLUDE_PREFIX, sizeof(INCLUDE_PREFIX) - 1) == 0) {
			pre = "<";
			post = ">";
		}
		break;
	default:
		break;
	}
	if (t->type != ALIAS_ADDR || a[0] == '"')
		for (p = a; *p != '\0'; p++)
			if (*p == ',' || *p == '"' || *p == '\\' ||
			    al_space(*p))
				quote = 1;
	if (t->type == ALIAS_ADDR && a[0] == '"')
		quote = 0;	/* "a b"@x reads back as written */
#define PUT(c) do {				\
	if (n + 1 >= vmax)			\
		return -1;			\
	v[n++] = (c);				\
} while (0)
	if (n > 0) {
		PUT(',');
		PUT(' ');
	}
	if (quote)
		PUT('"');
	for (p = pre; *p != '\0'; p++)
		PUT(*p);
	for (p = a; *p != '\0'; p++) {
		if (quote && (*p == '"' || *p == '\\'))
			PUT('\\');
		PUT(*p);
	}
	for (p = post; *p != '\0'; p++)
		PUT(*p);
	if (quote)
		PUT('"');
#undef PUT
	v[n] = '\0';
	*vlen = n;
	return 0;
}

/*
 * The key of a name: a dot-string lowercased, or a quoted string in the
 * stored form lka looks up (unquoted when its content is a dot-string).
 */
static int
al_key(const char *s, size_t len, char *key, size_t keylen,
    const char **errstr)
{
	struct mailaddr	 ma;
	char		 buf[SQ_LOCALPART_MAX + 8];
	size_t		 i;

	if (len == 0) {
		*errstr = "empty alias name";
		return -1;
	}
	if (s[0] == '"') {
		if (len + 3 > sizeof(buf)) {
			*errstr = "alias name too long";
			return -1;
		}
		memcpy(buf, s, len);
		memcpy(buf + len, "@x", 3);
		if (mailaddr_parse(buf, len + 2, &ma) == -1) {
			*errstr = "bad quoted alias name";
			return -1;
		}
		s = ma.user;
		len = strlen(ma.user);
	} else if (memchr(s, '@', len) != NULL) {
		*errstr = "an alias name is a local part, without '@'";
		return -1;
	} else if (!mailaddr_is_dotstring(s, len)) {
		*errstr = "bad alias name";
		return -1;
	}
	if (len > SQ_LOCALPART_MAX || len >= keylen) {
		*errstr = "alias name too long";
		return -1;
	}
	for (i = 0; i < len; i++)
		key[i] = (s[i] >= 'A' && s[i] <= 'Z') ? s[i] - 'A' + 'a' :
		    s[i];
	key[len] = '\0';
	return 0;
}

static void
al_err(struct aliases_err *err, size_t line, const char *what)
{
	err->line = line;
	(void)strlcpy(err->msg, what, sizeof(err->msg));
}

static int
al_cmp(const void *a, const void *b)
{
	const struct aliases_ent *x = a, *y = b;
	int	 r;

	if ((r = strcmp(x->key, y->key)) != 0)
		return r;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* One logical entry (lines joined): name ':' targets. */
static int
al_entry(struct aliases *al, size_t *cap, const char *e, size_t elen,
    size_t line, struct alias_targets *tl, struct aliases_err *err)
{
	struct aliases_ent	*ne;
	char			 key[SQ_LOCALPART_MAX + 1];
	char			 val[ALIASES_VALUE_MAX + 1];
	const char		*errstr;
	size_t			 i = 0, nend, vlen = 0, k;

	if (e[0] == '"') {
		for (i = 1; i < elen && e[i] != '"'; i++)
			if (e[i] == '\\' && i + 1 < elen)
				i++;
		if (i == elen) {
			al_err(err, line, "unterminated quote in the name");
			return -1;
		}
		i++;
		nend = i;
		while (i < elen && al_space(e[i]))
			i++;
	} else {
		while (i < elen && e[i] != ':' && !al_space(e[i]))
			i++;
		nend = i;
		while (i < elen && al_space(e[i]))
			i++;
	}
	if (i == elen || e[i] != ':') {
		al_err(err, line, "missing ':' after the alias name");
		return -1;
	}
	if (al_key(e, nend, key, sizeof(key), &errstr) == -1) {
		al_err(err, line, errstr);
		return -1;
	}
	i++;
	tl->n = tl->used = 0;
	if (aliases_targets(e + i, elen - i, tl, &errstr) == -1) {
		(void)snprintf(err->msg, sizeof(err->msg), "alias \"%.64s\": %s",
		    key, errstr);
		err->line = line;
		return -1;
	}
	if (tl->n == 0) {
		(void)snprintf(err->msg, sizeof(err->msg), "alias \"%.64s\" has "
		    "no targets", key);
		err->line = line;
		return -1;
	}
	val[0] = '\0';
	for (k = 0; k < tl->n; k++)
		if (al_encode(&tl->t[k], val, &vlen, sizeof(val)) == -1) {
			(void)snprintf(err->msg, sizeof(err->msg), "alias "
			    "\"%.64s\" is longer than %d octets: use :include:",
			    key, ALIASES_VALUE_MAX);
			err->line = line;
			return -1;
		}
	if (al->n == ALIASES_ENTRIES_MAX) {
		al_err(err, line, "too many aliases");
		return -1;
	}
	if (al->n == *cap) {
		*cap = *cap == 0 ? 64 : *cap * 2;
		if ((ne = reallocarray(al->ents, *cap, sizeof(*ne))) == NULL) {
			al_err(err, line, "out of memory");
			return -1;
		}
		al->ents = ne;
	}
	ne = &al->ents[al->n];
	if ((ne->key = strdup(key)) == NULL ||
	    (ne->val = strdup(val)) == NULL) {
		free(ne->key);
		al_err(err, line, "out of memory");
		return -1;
	}
	ne->line = line;
	ne->ntargets = tl->n;
	al->ntargets += tl->n;
	al->n++;
	return 0;
}

int
aliases_parse(const char *buf, size_t len, struct aliases **out,
    struct aliases_err *err)
{
	struct aliases		*al;
	struct alias_targets	*tl = NULL;
	char			*e = NULL;
	const char		*p, *nl, *end = buf + len;
	size_t			 cap = 0, elen = 0, eline = 0, line = 0, n, i;
	int			 have = 0;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	if (len > ALIASES_FILE_MAX) {
		al_err(err, 0, "file too large");
		return -1;
	}
	if (memchr(buf, '\0', len) != NULL) {
		for (p = buf, line = 1; *p != '\0'; p++)
			if (*p == '\n')
				line++;
		al_err(err, line, "NUL octet");
		return -1;
	}
	if ((al = calloc(1, sizeof(*al))) == NULL ||
	    (tl = malloc(sizeof(*tl))) == NULL ||
	    (e = malloc(ALIASES_ENTRY_MAX + 1)) == NULL) {
		al_err(err, 0, "out of memory");
		goto fail;
	}
	for (p = buf; p < end || have; p = nl + 1) {
		if (p >= end) {
			/* flush the last entry */
			if (al_entry(al, &cap, e, elen, eline, tl, err) == -1)
				goto fail;
			have = 0;
			break;
		}
		line++;
		if ((nl = memchr(p, '\n', end - p)) == NULL)
			nl = end;
		n = nl - p;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > ALIASES_LINE_MAX) {
			al_err(err, line, "line too long");
			goto fail;
		}
		for (i = 0; i < n && al_space(p[i]); i++)
			;
		if (i == n || p[i] == '#')
			continue;		/* blank or comment */
		if (i > 0) {
			if (!have) {
				al_err(err, line, "continuation line without "
				    "an alias above it");
				goto fail;
			}
			while (n > i && al_space(p[n - 1]))
				n--;
			if (elen + 1 + (n - i) > ALIASES_ENTRY_MAX) {
				al_err(err, eline, "entry too long");
				goto fail;
			}
			e[elen++] = ' ';
			memcpy(e + elen, p + i, n - i);
			elen += n - i;
			continue;
		}
		if (have && al_entry(al, &cap, e, elen, eline, tl, err) == -1)
			goto fail;
		while (n > 0 && al_space(p[n - 1]))
			n--;
		memcpy(e, p, n);
		elen = n;
		eline = line;
		have = 1;
	}
	free(e);
	free(tl);
	e = NULL;
	tl = NULL;
	if (al->n > 1) {
		qsort(al->ents, al->n, sizeof(*al->ents), al_cmp);
		for (i = 1; i < al->n; i++)
			if (strcmp(al->ents[i - 1].key, al->ents[i].key) == 0) {
				(void)snprintf(err->msg, sizeof(err->msg),
				    "alias \"%.64s\" given twice (first at line "
				    "%zu)", al->ents[i].key,
				    al->ents[i - 1].line);
				err->line = al->ents[i].line;
				goto fail;
			}
	}
	*out = al;
	return 0;
 fail:
	free(e);
	free(tl);
	aliases_free(al);
	return -1;
}

const struct aliases_ent *
aliases_get(const struct aliases *al, const char *key)
{
	size_t	 lo = 0, hi = al->n, mid;
	int	 r;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((r = strcmp(key, al->ents[mid].key)) == 0)
			return &al->ents[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

void
aliases_free(struct aliases *al)
{
	size_t	 i;

	if (al == NULL)
		return;
	for (i = 0; i < al->n; i++) {
		free(al->ents[i].key);
		free(al->ents[i].val);
	}
	free(al->ents);
	free(al);
}
