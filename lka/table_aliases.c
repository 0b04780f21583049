/*
 * aliases tables: "table NAME aliases:PATH" names an aliases(5) source;
 * lookups read PATH.cdb, which newaliases compiles from it.
 *
 * The database is replaced by rename(2), so lka never sees a half-written
 * one.  Each lookup stats PATH.cdb and maps the new file when it is not
 * the one mapped (device, inode, size or time changed): a newaliases run
 * takes effect at the next lookup, without a reload.  A database that is
 * missing or unreadable fails lookups temporarily until one appears; one
 * older than its source is logged, as Postfix does, once per file.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aliases.h"
#include "log.h"
#include "table.h"
#include "textline.h"

struct table_aliases {
	char		 src[PATH_MAX];
	char		 db[PATH_MAX];
	void		*cdb;		/* table_cdb handle, or NULL */
	struct stat	 st;		/* of the mapped database */
	uid_t		 owner;		/* of the source when it was mapped */
	int		 missing;	/* "no database" logged */
};

static int
ta_same(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	    a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Map the database when it is new; 0 when one is mapped, else -1. */
static int
ta_refresh(struct table_aliases *ta, const char *name)
{
	struct stat	 st, src;
	void		*c;

	if (stat(ta->db, &st) == -1) {
		if (ta->cdb != NULL)
			return 0;	/* removed: keep what we have */
		if (!ta->missing)
			log_warn("table %s: %s (run newaliases)", name,
			    ta->db);
		ta->missing = 1;
		return -1;
	}
	if (ta->cdb != NULL && ta_same(&st, &ta->st))
		return 0;
	if ((c = table_cdb_open(name, ta->db)) == NULL)
		return ta->cdb != NULL ? 0 : -1;
	table_cdb_close(ta->cdb);
	ta->cdb = c;
	/* The file mapped, which may be newer than the one stat(2) saw. */
	(void)table_cdb_stat(c, &ta->st);
	ta->missing = 0;
	ta->owner = 0;
	if (stat(ta->src, &src) == 0) {
		ta->owner = src.st_uid;
		if (src.st_mtim.tv_sec > ta->st.st_mtim.tv_sec ||
		    (src.st_mtim.tv_sec == ta->st.st_mtim.tv_sec &&
		    src.st_mtim.tv_nsec > ta->st.st_mtim.tv_nsec))
			log_warnx("table %s: %s is older than %s (run "
			    "newaliases)", name, ta->db, ta->src);
	} else
		log_warn("table %s: %s", name, ta->src);
	log_debug("table %s: mapped %s", name, ta->db);
	return 0;
}

void *
table_aliases_open(const char *name, const char *path)
{
	struct table_aliases	*ta;

	if ((ta = calloc(1, sizeof(*ta))) == NULL) {
		log_warn("table %s", name);
		return NULL;
	}
	if (strlcpy(ta->src, path, sizeof(ta->src)) >= sizeof(ta->src) ||
	    snprintf(ta->db, sizeof(ta->db), "%s.cdb", path) >=
	    (int)sizeof(ta->db)) {
		log_warnx("table %s: path too long", name);
		free(ta);
		return NULL;
	}
	/* No database yet is no error here: newaliases may come later. */
	(void)ta_refresh(ta, name);
	return ta;
}

int
table_aliases_lookup(void *h, const char *name, const char *key, char *val,
    size_t vallen)
{
	struct table_aliases	*ta = h;

	if (ta_refresh(ta, name) == -1)
		return -1;
	return table_cdb_lookup(ta->cdb, name, key, val, vallen);
}

int
table_aliases_owner(void *h, uid_t *uid)
{
	struct table_aliases	*ta = h;

	if (ta->cdb == NULL)
		return -1;
	*uid = ta->owner;
	return 0;
}

void
table_aliases_close(void *h)
{
	struct table_aliases	*ta = h;

	if (ta == NULL)
		return;
	table_cdb_close(ta->cdb);
	free(ta);
}

int
table_aliases_build(const char *src, size_t *nent, char *err, size_t errlen)
{
	struct aliases		*al = NULL;
	struct aliases_err	 aerr;
	struct cdb_make		 cm;
	char			 db[PATH_MAX], tmp[PATH_MAX], dir[PATH_MAX];
	char			*buf;
	size_t			 len, i;
	int			 fd = -1, dfd, made = 0;

	*nent = 0;
	if (snprintf(db, sizeof(db), "%s.cdb", src) >= (int)sizeof(db) ||
	    snprintf(tmp, sizeof(tmp), "%s.cdb.XXXXXX", src) >=
	    (int)sizeof(tmp) || strlcpy(dir, src, sizeof(dir)) >=
	    sizeof(dir)) {
		(void)snprintf(err, errlen, "%s: path too long", src);
		return -1;
	}
	if (text_file_read(src, ALIASES_FILE_MAX, &buf, &len, err,
	    errlen) == -1)
		return -1;
	if (aliases_parse(buf, len, &al, &aerr) == -1) {
		free(buf);
		return text_parse_fail(err, errlen, src, aerr.line, aerr.msg);
	}
	free(buf);

	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		(void)snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto fail;
	}
	made = 1;
	if (fchmod(fd, 0644) == -1 || cdb_make_start(&cm, fd) == -1) {
		(void)snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto fail;
	}
	for (i = 0; i < al->n; i++)
		if (cdb_make_add(&cm, al->ents[i].key,
		    strlen(al->ents[i].key), al->ents[i].val,
		    strlen(al->ents[i].val)) == -1) {
			(void)snprintf(err, errlen, "%s: %s", tmp,
			    strerror(errno));
			goto fail;
		}
	if (cdb_make_finish(&cm) == -1 || fsync(fd) == -1) {
		(void)snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		(void)snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, db) == -1) {
		(void)snprintf(err, errlen, "rename %s to %s: %s", tmp, db,
		    strerror(errno));
		goto fail;
	}
	made = 0;
	/* The rename is durable once the directory is. */
	if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 || fsync(dfd) == -1) {
		(void)snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		if (dfd != -1)
			close(dfd);
		aliases_free(al);
		return -1;
	}
	close(dfd);
	*nent = al->n;
	aliases_free(al);
	return 0;
 fail:
	if (fd != -1)
		close(fd);
	if (made)
		(void)unlink(tmp);
	aliases_free(al);
	return -1;
}
