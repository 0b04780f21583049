/*
 * File tables: a text file read once into memory, parsed into a sorted
 * array of (key, value) and searched with bsearch.  The file is hostile
 * input as far as this code is concerned: every limit is checked and a
 * malformed line fails the whole table with its line number.
 */
#include <sys/types.h>

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "table.h"
#include "textline.h"

static int
table_file_ws(char c)
{
	return c == ' ' || c == '\t';
}

static int
table_file_cmp(const void *a, const void *b)
{
	const struct table_file_ent	*ea = a, *eb = b;
	int				 r;

	if ((r = strcmp(ea->key, eb->key)) != 0)
		return r;
	if (ea->line != eb->line)
		return ea->line < eb->line ? -1 : 1;
	return 0;
}

static int
table_file_keycmp(const void *k, const void *e)
{
	const struct table_file_ent	*ent = e;

	return strcmp(k, ent->key);
}

void
table_file_free(struct table_file *tf)
{
	if (tf == NULL)
		return;
	free(tf->ents);
	free(tf->mem);
	free(tf);
}

/*
 * Check one line (without its LF, and without a CR before it) and split it.
 * Returns 1 with key/value bounds set, 0 for a blank or comment line, -1
 * with *errstr on a malformed one.
 */
static int
table_file_line(const char *s, size_t n, size_t *klen, size_t *voff,
    size_t *vlen, const char **errstr)
{
	size_t	i, k, v, e;

	if (text_line_check(s, n, TABLE_LINE_MAX, 1, errstr) == -1)
		return -1;
	for (i = 0; i < n && table_file_ws(s[i]); i++)
		;
	if (i == n || s[i] == '#')
		return 0;
	if (i > 0) {
		*errstr = "line starts with white space "
		    "(continuation lines are not supported)";
		return -1;
	}
	for (k = 0; k < n && !table_file_ws(s[k]) && s[k] != ':'; k++)
		;
	if (k == 0) {
		*errstr = "empty key";
		return -1;
	}
	for (v = k; v < n && table_file_ws(s[v]); v++)
		;
	if (v < n && s[v] == ':')
		for (v++; v < n && table_file_ws(s[v]); v++)
			;
	for (e = n; e > v && table_file_ws(s[e - 1]); e--)
		;
	*klen = k;
	*voff = v;
	*vlen = e - v;
	return 1;
}

int
table_file_parse(const char *buf, size_t len, struct table_file **out,
    size_t *errline, const char **errstr)
{
	struct table_file	*tf;
	struct table_file_ent	*ents;
	const char		*s;
	size_t			 pos, n, line, cap, wpos, i;
	size_t			 klen, voff, vlen;
	int			 r, nl;

	*out = NULL;
	*errline = 0;
	if (len > TABLE_FILE_MAX) {
		*errstr = "file too large";
		return -1;
	}
	if ((tf = calloc(1, sizeof(*tf))) == NULL ||
	    (tf->mem = malloc(len + 1)) == NULL) {
		*errstr = "out of memory";
		free(tf);
		return -1;
	}
	cap = 0;
	wpos = 0;
	line = 0;
	for (pos = 0; pos < len; ) {
		line++;
		n = text_line_next(buf, len, &pos, &s, &nl);
		if (n > 0 && s[n - 1] == '\r')
			n--;
		if ((r = table_file_line(s, n, &klen, &voff, &vlen,
		    errstr)) == -1)
			goto fail;
		if (r == 0)
			continue;
		if (tf->nents == TABLE_ENTRIES_MAX) {
			*errstr = "too many entries";
			goto fail;
		}
		if (tf->nents == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			if (cap > TABLE_ENTRIES_MAX)
				cap = TABLE_ENTRIES_MAX;
			if ((ents = reallocarray(tf->ents, cap,
			    sizeof(*ents))) == NULL) {
				*errstr = "out of memory";
				goto fail;
			}
			tf->ents = ents;
		}
		/*
		 * "key NUL value NUL" takes at most the line's octets plus
		 * one (white space or ':' separates a value from its key; an
		 * empty value shares the key's NUL): len + 1 in all.
		 */
		tf->ents[tf->nents].key = tf->mem + wpos;
		for (i = 0; i < klen; i++)
			tf->mem[wpos++] = (s[i] >= 'A' && s[i] <= 'Z') ?
			    s[i] - 'A' + 'a' : s[i];
		tf->mem[wpos++] = '\0';
		if (vlen == 0)
			tf->ents[tf->nents].val = tf->mem + wpos - 1;
		else {
			tf->ents[tf->nents].val = tf->mem + wpos;
			memcpy(tf->mem + wpos, s + voff, vlen);
			wpos += vlen;
			tf->mem[wpos++] = '\0';
		}
		tf->ents[tf->nents].line = line;
		tf->nents++;
	}
	table_file_sort(tf, 0);
	*out = tf;
	return 0;
 fail:
	*errline = line;
	table_file_free(tf);
	return -1;
}

void
table_file_sort(struct table_file *tf, int lastwins)
{
	size_t	 i, j, keep;

	if (tf->nents > 1)
		qsort(tf->ents, tf->nents, sizeof(*tf->ents), table_file_cmp);
	/* Equal keys are in line order: keep the first or the last. */
	for (i = 0, j = 0; i < tf->nents; i++) {
		keep = lastwins ? i + 1 == tf->nents || strcmp(tf->ents[i].key,
		    tf->ents[i + 1].key) != 0 : j == 0 ||
		    strcmp(tf->ents[j - 1].key, tf->ents[i].key) != 0;
		if (!keep) {
			if (tf->dupline == 0 || tf->ents[i].line < tf->dupline)
				tf->dupline = tf->ents[i].line;
			continue;
		}
		tf->ents[j++] = tf->ents[i];
	}
	tf->nents = j;
}

const char *
table_file_get(const struct table_file *tf, const char *key)
{
	const struct table_file_ent	*e;

	if (tf->nents == 0)
		return NULL;
	e = bsearch(key, tf->ents, tf->nents, sizeof(*tf->ents),
	    table_file_keycmp);
	return e == NULL ? NULL : e->val;
}

void *
table_file_open(const char *name, const char *path)
{
	struct table_file	*tf;
	const char		*errstr;
	char			*buf, err[PATH_MAX + 128];
	size_t			 errline, got;

	if (text_file_read(path, TABLE_FILE_MAX, &buf, &got, err,
	    sizeof(err)) == -1) {
		log_warnx("table %s: %s", name, err);
		return NULL;
	}
	if (table_file_parse(buf, got, &tf, &errline, &errstr) == -1) {
		(void)text_parse_fail(err, sizeof(err), path, errline, errstr);
		log_warnx("table %s: %s", name, err);
		free(buf);
		return NULL;
	}
	free(buf);
	if (tf->dupline != 0)
		log_warnx("table %s: %s:%zu: duplicate key ignored "
		    "(the first entry wins)", name, path, tf->dupline);
	log_debug("table %s: %s: %zu entries", name, path, tf->nents);
	return tf;
}

int
table_file_lookup(void *h, const char *name, const char *key, char *val,
    size_t vallen)
{
	const char	*v;

	if ((v = table_file_get(h, key)) == NULL)
		return 0;
	if (strlcpy(val, v, vallen) >= vallen) {
		log_warnx("table %s: value of \"%s\" too long", name, key);
		return -1;
	}
	return 1;
}

void
table_file_close(void *h)
{
	table_file_free(h);
}
