/*
 * Tables: named key/value sources that only lka reads.  table.c is the
 * interface; table_file.c (text, held in memory) and table_cdb.c (tinycdb,
 * read through its mapping) implement it.  Keys compare case-insensitively
 * (ASCII): backends store them lowercased and table_lookup() lowercases the
 * key it is given.
 */
#ifndef SQ_LKA_TABLE_H
#define SQ_LKA_TABLE_H

#include <sys/types.h>
#include <sys/stat.h>

#include <stddef.h>

struct sqconf;
struct table;

#define TABLE_LINE_MAX		4096	/* octets in one line of a file table */
#define TABLE_KEY_MAX		TABLE_LINE_MAX	/* longer: never found */
#define TABLE_ENTRIES_MAX	1000000	/* entries in a file table */
#define TABLE_FILE_MAX		(256 * 1024 * 1024)	/* octets in a file */

/*
 * Open (load) t->path into t->handle; 0 ok, -1 failed (logged as
 * "table NAME: ...").  A table already open is closed first.
 */
int	table_open(struct table *);
void	table_close(struct table *);
/*
 * Look key up: 1 found (val holds the value, NUL-terminated), 0 not found,
 * -1 error (table not open, I/O, value longer than vallen - 1; logged).
 */
int	table_lookup(struct table *, const char *key, char *val, size_t vallen);
/*
 * Open every table of a configuration and close every table opened for an
 * earlier one (which may already be freed: handles are tracked here, not
 * through the old configuration).  Returns the number that failed.
 */
int	table_open_all(struct sqconf *);
/* Tables open now. */
size_t	table_count(void);
/*
 * The owner of what a table is read from (an aliases table: its source
 * when its database was mapped): 0 with *uid set, or -1.
 */
int	table_owner(struct table *, uid_t *uid);

/* The file backend's parser, a pure function over (buf, len). */
struct table_file_ent {
	const char	*key;		/* lowercased, NUL-terminated */
	const char	*val;		/* NUL-terminated, may be "" */
	size_t		 line;
};

struct table_file {
	char			*mem;	/* keys and values, NUL-terminated */
	struct table_file_ent	*ents;	/* sorted by key, unique */
	size_t			 nents;
	/* First line whose key repeats an earlier one (ignored), or 0. */
	size_t			 dupline;
};

/*
 * Parse a file table: one entry per line, "#" comments and blank lines
 * ignored, the key ends at the first white space or ':', the value is the
 * rest of the line trimmed (an optional ':' after the key is skipped).
 * Returns 0 and sets *out, or -1 and sets *errline (1-based) and *errstr.
 */
int	table_file_parse(const char *buf, size_t len, struct table_file **out,
	    size_t *errline, const char **errstr);
/* Value of a lowercased key, or NULL. */
const char *table_file_get(const struct table_file *, const char *key);
/*
 * Sort a table_file's entries by key and keep one per key: the first
 * line's, or with lastwins the last line's (qmail's constmap); dupline
 * gets the first line dropped, or 0.
 */
void	table_file_sort(struct table_file *, int lastwins);
void	table_file_free(struct table_file *);

/* Backends, called through table.c only. */
void	*table_file_open(const char *name, const char *path);
int	 table_file_lookup(void *, const char *name, const char *key,
	    char *val, size_t vallen);
void	 table_file_close(void *);
void	*table_cdb_open(const char *name, const char *path);
int	 table_cdb_lookup(void *, const char *name, const char *key,
	    char *val, size_t vallen);
void	 table_cdb_close(void *);
int	 table_cdb_stat(void *, struct stat *);	/* of the mapped file */
void	*table_aliases_open(const char *name, const char *path);
int	 table_aliases_lookup(void *, const char *name, const char *key,
	    char *val, size_t vallen);
int	 table_aliases_owner(void *, uid_t *);
void	 table_aliases_close(void *);

/*
 * newaliases: compile the aliases(5) source src into src.cdb (a temporary
 * file written, synced and renamed over it, then its directory synced).
 * 0 with *nent set, or -1 with err set ("src:line: what" for the source's
 * errors) and the database left as it was.
 */
int	table_aliases_build(const char *src, size_t *nent, char *err,
	    size_t errlen);

#endif
