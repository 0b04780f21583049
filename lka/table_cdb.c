/*
 * cdb tables (tinycdb): keys are the lowercased key octets, values the
 * value octets, with or without one NUL at the end.  The file is mapped at
 * open; a new file takes effect on reload (replace it with rename(2), as
 * cdb(1) -m does, so that the mapped one is never rewritten in place).
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "table.h"

struct table_cdb {
	struct cdb	 cdb;
	int		 fd;
};

void *
table_cdb_open(const char *name, const char *path)
{
	struct table_cdb	*tc;
	struct stat		 st;

	if ((tc = calloc(1, sizeof(*tc))) == NULL) {
		log_warn("table %s", name);
		return NULL;
	}
	if ((tc->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		log_warn("table %s: %s", name, path);
		free(tc);
		return NULL;
	}
	if (fstat(tc->fd, &st) == -1) {
		log_warn("table %s: %s", name, path);
		close(tc->fd);
		free(tc);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		log_warnx("table %s: %s: not a regular file", name, path);
		close(tc->fd);
		free(tc);
		return NULL;
	}
	if (cdb_init(&tc->cdb, tc->fd) == -1) {
		log_warn("table %s: %s: not a cdb file", name, path);
		close(tc->fd);
		free(tc);
		return NULL;
	}
	return tc;
}

int
table_cdb_lookup(void *h, const char *name, const char *key, char *val,
    size_t vallen)
{
	struct table_cdb	*tc = h;
	size_t			 klen = strlen(key);
	unsigned int		 dlen;
	int			 r;

	if ((r = cdb_find(&tc->cdb, key, klen)) == 0)
		return 0;
	if (r < 0) {
		log_warn("table %s: lookup of \"%s\"", name, key);
		return -1;
	}
	dlen = cdb_datalen(&tc->cdb);
	if (dlen > vallen) {
		log_warnx("table %s: value of \"%s\" too long", name, key);
		return -1;
	}
	if (cdb_read(&tc->cdb, val, dlen, cdb_datapos(&tc->cdb)) == -1) {
		log_warn("table %s: reading the value of \"%s\"", name, key);
		return -1;
	}
	if (dlen > 0 && val[dlen - 1] == '\0')
		dlen--;
	if (dlen >= vallen) {
		log_warnx("table %s: value of \"%s\" too long", name, key);
		return -1;
	}
	val[dlen] = '\0';
	if (memchr(val, '\0', dlen) != NULL) {
		log_warnx("table %s: value of \"%s\" holds a NUL", name, key);
		return -1;
	}
	return 1;
}

int
table_cdb_stat(void *h, struct stat *st)
{
	struct table_cdb	*tc = h;

	return fstat(tc->fd, st);
}

void
table_cdb_close(void *h)
{
	struct table_cdb	*tc = h;

	if (tc == NULL)
		return;
	cdb_free(&tc->cdb);
	close(tc->fd);
	free(tc);
}
