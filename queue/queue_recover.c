/*
 * Recovery at start: what a crash left in the spool is sorted out before
 * anything is scheduled (the rules are in sqmail-queue(5)), and the
 * quarantine, where what cannot be made sense of is kept for a human.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "queue.h"
#include "sqmail.h"

/* Move dir/name to quarantine/<qname>, never over an existing file. */
static int
qrec_quarantine_file(const char *dir, const char *name, const char *qname)
{
	struct stat	 sb;
	char		 from[PATH_MAX], to[PATH_MAX];
	int		 i, n;

	n = snprintf(from, sizeof(from), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(from))
		return -1;
	if (lstat(from, &sb) == -1)
		return errno == ENOENT ? 0 : -1;
	for (i = 0; i < 1000; i++) {
		if (i == 0)
			n = snprintf(to, sizeof(to), "%s/%s",
			    QUEUE_DIR_QUARANTINE, qname);
		else
			n = snprintf(to, sizeof(to), "%s/%s.%d",
			    QUEUE_DIR_QUARANTINE, qname, i);
		if (n < 0 || (size_t)n >= sizeof(to))
			return -1;
		if (lstat(to, &sb) == -1 && errno == ENOENT)
			break;
	}
	if (rename(from, to) == -1) {
		log_warn("queue: rename %s %s", from, to);
		return -1;
	}
	return 0;
}

int
queue_fs_quarantine(uint64_t id, const char *why)
{
	char	 name[QUEUE_ID_STRLEN], qname[QUEUE_ID_STRLEN + 8];
	int	 ret = 0;

	queue_id_str(id, name, sizeof(name));
	(void)snprintf(qname, sizeof(qname), "%s.env", name);
	if (qrec_quarantine_file(QUEUE_DIR_ENV, name, qname) == -1)
		ret = -1;
	if (qrec_quarantine_file(QUEUE_DIR_MESS, name, name) == -1)
		ret = -1;
	log_warnx("queue: quarantined msg %s: %s", name, why);
	return ret;
}

/* Read env/<name> whole; NULL with errno (EFBIG when too long). */
static char *
qrec_read_env(const char *name, size_t *lenp)
{
	struct stat	 sb;
	char		 path[PATH_MAX], *buf;
	ssize_t		 n;
	int		 fd, saved;

	(void)snprintf(path, sizeof(path), "%s/%s", QUEUE_DIR_ENV, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return NULL;
	if (fstat(fd, &sb) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return NULL;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > ENVELOPE_MAX) {
		close(fd);
		errno = S_ISREG(sb.st_mode) ? EFBIG : EINVAL;
		return NULL;
	}
	/* One more octet than allowed, to see a file that grew. */
	if ((buf = malloc(ENVELOPE_MAX + 1)) == NULL) {
		close(fd);
		return NULL;
	}
	if ((n = queue_fs_read(fd, buf, ENVELOPE_MAX + 1)) == -1) {
		saved = errno;
		free(buf);
		close(fd);
		errno = saved;
		return NULL;
	}
	close(fd);
	*lenp = (size_t)n;
	return buf;
}

static int
qrec_exists(const char *dir, const char *name)
{
	struct stat	 sb;
	char		 path[PATH_MAX];

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &sb) == 0;
}

/* Remove every unfinished incoming file. */
static int
qrec_recover_incoming(struct queue_recovery *rec)
{
	struct dirent	*de;
	DIR		*d;
	char		 path[PATH_MAX];

	if ((d = opendir(QUEUE_DIR_INCOMING)) == NULL) {
		log_warn("queue: opendir %s", QUEUE_DIR_INCOMING);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		(void)snprintf(path, sizeof(path), "%s/%s",
		    QUEUE_DIR_INCOMING, de->d_name);
		if (unlink(path) == -1)
			log_warn("queue: unlink %s", path);
		else
			rec->incoming++;
	}
	closedir(d);
	return 0;
}

/*
 * A commit cut short between its renames and its fsyncs: it was never
 * acknowledged (see queue_fs_batch), so it goes, with a line in the log.
 */
static void
qrec_recover_torn(uint64_t id, const char *name, struct queue_recovery *rec)
{
	(void)queue_fs_remove(id);
	rec->orphans++;
	log_info("queue: removed msg %s: its commit was cut short (never "
	    "acknowledged)", name);
}

/* Nothing was ever tried: the envelope is still the one of its commit. */
static int
qrec_env_untouched(const struct envelope *env)
{
	size_t	 i;

	for (i = 0; i < env->nrcpt; i++)
		if (env->rcpts[i].state != RCPT_PENDING ||
		    env->rcpts[i].tries != 0)
			return 0;
	return 1;
}

/*
 * Whether mess/<name> is the file its envelope describes: its size, and,
 * while no delivery was tried (a commit cut short leaves such envelopes),
 * its content hash too.  Later the hash is not read again: the file was
 * whole when the first delivery read it.
 */
static int
qrec_mess_whole(const char *name, const struct envelope *env)
{
	struct stat	 sb;
	char		 path[PATH_MAX];
	uint64_t	 h;
	int		 fd, whole;

	(void)snprintf(path, sizeof(path), "%s/%s", QUEUE_DIR_MESS, name);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return 0;
	whole = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    (uint64_t)sb.st_size == env->size;
	if (whole && env->hash != 0 && qrec_env_untouched(env))
		whole = queue_fs_hash(fd, env->size, &h) == 0 &&
		    h == env->hash;
	close(fd);
	return whole;
}

static void
qrec_recover_env(const char *name, void (*cb)(struct envelope *, void *),
    void *arg, struct queue_recovery *rec)
{
	struct envelope	 env;
	char		 path[PATH_MAX], why[160], *buf;
	const char	*dot;
	uint64_t	 id;
	size_t		 len, i;
	int		 ok;

	if ((dot = strchr(name, '.')) != NULL && strcmp(dot, ".tmp") == 0 &&
	    (size_t)(dot - name) < QUEUE_ID_STRLEN) {
		/* An update cut short: env/<id> still holds the last one. */
		(void)snprintf(path, sizeof(path), "%s/%s", QUEUE_DIR_ENV,
		    name);
		if (unlink(path) == -1)
			log_warn("queue: unlink %s", path);
		else
			log_info("queue: removed unfinished update %s", path);
		return;
	}
	if (queue_id_parse(name, &id) == -1) {
		(void)snprintf(why, sizeof(why), "%s.unknown", name);
		if (qrec_quarantine_file(QUEUE_DIR_ENV, name, why) == 0)
			rec->quarantined++;
		log_warnx("queue: quarantined env/%s: not a message id", name);
		return;
	}
	if ((buf = qrec_read_env(name, &len)) == NULL) {
		(void)snprintf(why, sizeof(why), "cannot read envelope: %s",
		    strerror(errno));
		goto quarantine;
	}
	if (len == 0) {
		/* Renamed, not yet synced: a commit nobody heard of. */
		free(buf);
		qrec_recover_torn(id, name, rec);
		return;
	}
	ok = envelope_decode(buf, len, &env);
	free(buf);
	if (ok == -1) {
		(void)snprintf(why, sizeof(why), "bad envelope: %s",
		    envelope_error());
		goto quarantine;
	}
	if (env.id != id) {
		/*
		 * A reused file whose new envelope never reached the disk:
		 * an acknowledged envelope always names its own message.
		 */
		envelope_free(&env);
		qrec_recover_torn(id, name, rec);
		return;
	}
	if (!qrec_exists(QUEUE_DIR_MESS, name)) {
		envelope_free(&env);
		(void)snprintf(why, sizeof(why), "message file missing");
		goto quarantine;
	}
	if (!qrec_mess_whole(name, &env)) {
		if (qrec_env_untouched(&env)) {
			envelope_free(&env);
			qrec_recover_torn(id, name, rec);
			return;
		}
		envelope_free(&env);
		(void)snprintf(why, sizeof(why), "message file is not the "
		    "size its envelope records");
		goto quarantine;
	}
	rec->messages++;
	for (i = 0; i < env.nrcpt; i++)
		if (env.rcpts[i].state == RCPT_PENDING)
			rec->pending++;
	cb(&env, arg);
	return;

 quarantine:
	queue_fs_quarantine(id, why);
	rec->quarantined++;
}

static void
qrec_recover_mess(const char *name, struct queue_recovery *rec)
{
	char		 path[PATH_MAX], qname[NAME_MAX + 16];
	uint64_t	 id;

	if (queue_id_parse(name, &id) == -1) {
		(void)snprintf(qname, sizeof(qname), "%s.unknown", name);
		if (qrec_quarantine_file(QUEUE_DIR_MESS, name, qname) == 0)
			rec->quarantined++;
		log_warnx("queue: quarantined mess/%s: not a message id", name);
		return;
	}
	if (qrec_exists(QUEUE_DIR_ENV, name))
		return;
	(void)snprintf(path, sizeof(path), "%s/%s", QUEUE_DIR_MESS, name);
	if (unlink(path) == -1) {
		log_warn("queue: unlink %s", path);
		return;
	}
	rec->orphans++;
	log_info("queue: removed msg %s: message file without envelope "
	    "(never acknowledged, or already delivered)", name);
}

/* Shorter first, then byte order: numeric order for decimal ids. */
static int
qrec_name_cmp(const void *a, const void *b)
{
	const char	*x = *(const char *const *)a;
	const char	*y = *(const char *const *)b;
	size_t		 lx = strlen(x), ly = strlen(y);

	if (lx != ly)
		return lx < ly ? -1 : 1;
	return strcmp(x, y);
}

/* Names of a directory, sorted, so that recovery works in id order. */
static int
qrec_names(const char *dir, char ***namesp, size_t *np)
{
	struct dirent	*de;
	DIR		*d;
	char		**names = NULL, **nn;
	size_t		 n = 0, cap = 0;

	if ((d = opendir(dir)) == NULL) {
		log_warn("queue: opendir %s", dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nn = reallocarray(names, cap,
			    sizeof(*names))) == NULL)
				goto fail;
			names = nn;
		}
		if ((names[n] = strdup(de->d_name)) == NULL)
			goto fail;
		n++;
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), qrec_name_cmp);
	*namesp = names;
	*np = n;
	return 0;

 fail:
	log_warn("queue: reading %s", dir);
	closedir(d);
	while (n > 0)
		free(names[--n]);
	free(names);
	return -1;
}

static void
qrec_names_free(char **names, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int
queue_fs_recover(void (*cb)(struct envelope *, void *), void *arg,
    struct queue_recovery *rec)
{
	char	**names;
	size_t	 n, i;

	memset(rec, 0, sizeof(*rec));
	if (qrec_recover_incoming(rec) == -1)
		return -1;
	/* Envelopes first: quarantine takes their message files along. */
	if (qrec_names(QUEUE_DIR_ENV, &names, &n) == -1)
		return -1;
	for (i = 0; i < n; i++)
		qrec_recover_env(names[i], cb, arg, rec);
	qrec_names_free(names, n);
	if (qrec_names(QUEUE_DIR_MESS, &names, &n) == -1)
		return -1;
	for (i = 0; i < n; i++)
		qrec_recover_mess(names[i], rec);
	qrec_names_free(names, n);
	queue_fs_sync_dirs();
	return 0;
}
