/*
 * Spare files: spool files whose message is finished are kept in spare/
 * and given the next new name instead of being unlinked, so that the
 * spool does not allocate and free two inodes per message.  On ext4
 * without a journal every inode allocation first walks past the inodes
 * freed in the last minutes of its group (recently_deleted()), which at
 * a few hundred messages a second costs more than the fsyncs; elsewhere
 * reuse still saves the inode bookkeeping.
 *
 * A spare's old content is never trusted: it is truncated when reused,
 * and recovery tells a reused file that a crash cut short by its content
 * hash (see queue_fs.c).  A spare with a second name (a crash on a file
 * system without a journal can leave one) is dropped, never reused.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "queue.h"

#define SPARE_PATH_MAX	32	/* "spare/s4294967295" fits */

static struct {
	uint32_t	 names[QUEUE_SPARE_MAX];
	size_t		 n;
	uint32_t	 next;
} spare;

static void
spare_path(char *buf, size_t len, uint32_t n)
{
	(void)snprintf(buf, len, "%s/s%u", QUEUE_DIR_SPARE, n);
}

/* "s<decimal>" as written by spare_path(), or -1. */
static int
spare_name(const char *s, uint32_t *np)
{
	const char	*errstr;
	long long	 v;

	if (s[0] != 's' || s[1] < '1' || s[1] > '9')
		return -1;
	v = strtonum(s + 1, 1, UINT32_MAX, &errstr);
	if (errstr != NULL)
		return -1;
	*np = (uint32_t)v;
	return 0;
}

int
queue_spare_init(void)
{
	struct dirent	*de;
	struct stat	 sb;
	DIR		*d;
	char		 path[PATH_MAX];
	uint32_t	 n;

	spare.n = 0;
	spare.next = 1;
	if ((d = opendir(QUEUE_DIR_SPARE)) == NULL) {
		log_warn("queue: opendir %s", QUEUE_DIR_SPARE);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		(void)snprintf(path, sizeof(path), "%s/%s", QUEUE_DIR_SPARE,
		    de->d_name);
		if (spare_name(de->d_name, &n) == 0 &&
		    spare.n < QUEUE_SPARE_MAX && lstat(path, &sb) == 0 &&
		    S_ISREG(sb.st_mode) && sb.st_nlink == 1) {
			spare.names[spare.n++] = n;
			if (n >= spare.next && n < UINT32_MAX)
				spare.next = n + 1;
			continue;
		}
		if (unlink(path) == -1 && errno != ENOENT)
			log_warn("queue: unlink %s", path);
	}
	closedir(d);
	return 0;
}

int
queue_spare_open(const char *path, int excl)
{
	char	 from[SPARE_PATH_MAX];
	int	 fd;

	while (spare.n > 0) {
		spare_path(from, sizeof(from), spare.names[--spare.n]);
		if (rename(from, path) == -1) {
			log_warn("queue: rename %s %s", from, path);
			continue;
		}
		fd = open(path, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
		if (fd != -1)
			return fd;
		log_warn("queue: open %s", path);
		(void)unlink(path);
	}
	return open(path, O_CREAT | O_WRONLY | O_CLOEXEC |
	    (excl ? O_EXCL : O_TRUNC | O_NOFOLLOW), 0600);
}

int
queue_spare_release(const char *path)
{
	struct stat	 sb;
	char		 to[SPARE_PATH_MAX];

	if (spare.n < QUEUE_SPARE_MAX && lstat(path, &sb) == 0 &&
	    S_ISREG(sb.st_mode) && sb.st_nlink == 1 &&
	    sb.st_size <= QUEUE_SPARE_FILE_MAX) {
		spare_path(to, sizeof(to), spare.next);
		if (rename(path, to) == 0) {
			spare.names[spare.n++] = spare.next++;
			return 0;
		}
		if (errno == ENOENT)
			return -1;
		log_warn("queue: rename %s %s", path, to);
	}
	return unlink(path);
}

size_t
queue_spare_count(void)
{
	return spare.n;
}
