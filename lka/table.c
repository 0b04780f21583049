/*
 * Tables: the interface over the backends.  Every open table has a handle
 * registered here; a reload opens the new configuration's tables and then
 * closes every handle of an earlier generation, so nothing leaks even when
 * the old configuration was freed before we saw the new one.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <bsd/sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "table.h"

struct table_handle {
	TAILQ_ENTRY(table_handle) entry;
	enum table_type		 type;
	void			*backend;
	unsigned int		 gen;
};

static TAILQ_HEAD(, table_handle) table_handles =
    TAILQ_HEAD_INITIALIZER(table_handles);
static unsigned int	table_gen;
static size_t		table_nopen;

static void
table_handle_free(struct table_handle *th)
{
	TAILQ_REMOVE(&table_handles, th, entry);
	switch (th->type) {
	case TABLE_FILE:
		table_file_close(th->backend);
		break;
	case TABLE_CDB:
		table_cdb_close(th->backend);
		break;
	case TABLE_ALIASES:
		table_aliases_close(th->backend);
		break;
	}
	table_nopen--;
	free(th);
}

int
table_open(struct table *t)
{
	struct table_handle	*th;
	void			*b;

	table_close(t);
	switch (t->type) {
	case TABLE_FILE:
		b = table_file_open(t->name, t->path);
		break;
	case TABLE_CDB:
		b = table_cdb_open(t->name, t->path);
		break;
	case TABLE_ALIASES:
		b = table_aliases_open(t->name, t->path);
		break;
	default:
		log_warnx("table %s: unknown type %d", t->name, (int)t->type);
		return -1;
	}
	if (b == NULL)
		return -1;
	if ((th = calloc(1, sizeof(*th))) == NULL) {
		log_warn("table %s", t->name);
		if (t->type == TABLE_FILE)
			table_file_close(b);
		else if (t->type == TABLE_CDB)
			table_cdb_close(b);
		else
			table_aliases_close(b);
		return -1;
	}
	th->type = t->type;
	th->backend = b;
	th->gen = table_gen;
	TAILQ_INSERT_TAIL(&table_handles, th, entry);
	table_nopen++;
	t->handle = th;
	return 0;
}

void
table_close(struct table *t)
{
	if (t->handle == NULL)
		return;
	table_handle_free(t->handle);
	t->handle = NULL;
}

int
table_lookup(struct table *t, const char *key, char *val, size_t vallen)
{
	struct table_handle	*th = t->handle;
	char			 lkey[TABLE_KEY_MAX + 1];
	size_t			 i;

	if (th == NULL) {
		log_warnx("table %s: not open", t->name);
		return -1;
	}
	if (vallen == 0)
		return -1;
	for (i = 0; key[i] != '\0'; i++) {
		if (i == TABLE_KEY_MAX)
			return 0;
		lkey[i] = (key[i] >= 'A' && key[i] <= 'Z') ?
		    key[i] - 'A' + 'a' : key[i];
	}
	lkey[i] = '\0';
	switch (th->type) {
	case TABLE_FILE:
		return table_file_lookup(th->backend, t->name, lkey, val,
		    vallen);
	case TABLE_CDB:
		return table_cdb_lookup(th->backend, t->name, lkey, val,
		    vallen);
	case TABLE_ALIASES:
		return table_aliases_lookup(th->backend, t->name, lkey, val,
		    vallen);
	}
	return -1;
}

int
table_owner(struct table *t, uid_t *uid)
{
	struct table_handle	*th = t->handle;
	struct stat		 st;

	if (th == NULL)
		return -1;
	if (th->type == TABLE_ALIASES)
		return table_aliases_owner(th->backend, uid);
	if (stat(t->path, &st) == -1)
		return -1;
	*uid = st.st_uid;
	return 0;
}

int
table_open_all(struct sqconf *c)
{
	struct table_handle	*th, *next;
	struct table		*t;
	int			 failed = 0;

	table_gen++;
	TAILQ_FOREACH(t, &c->tables, entry) {
		if (table_open(t) == -1) {
			log_warnx("table %s: lookups through it fail "
			    "temporarily", t->name);
			failed++;
		}
	}
	for (th = TAILQ_FIRST(&table_handles); th != NULL; th = next) {
		next = TAILQ_NEXT(th, entry);
		if (th->gen != table_gen)
			table_handle_free(th);
	}
	return failed;
}

size_t
table_count(void)
{
	return table_nopen;
}
