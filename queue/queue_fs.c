/*
 * The durable store.  The spool is the current directory:
 *
 *	incoming/<id>		a message being received (smtp writes it)
 *	incoming/<id>.env	its envelope, written at commit
 *	mess/<id>		a committed message (never changes)
 *	env/<id>		its envelope (rewritten via env/<id>.tmp)
 *	quarantine/		what recovery could not make sense of
 *	spare/			finished files kept for reuse (queue_spare.c)
 *
 * A message is committed when both renames into mess/ and env/ are done
 * and both directories are fsync'd.  It is removed env first, so that a
 * crash in between leaves a message file without envelope, which recovery
 * deletes: it was either never acknowledged or already fully delivered.
 * The envelope records the size and a hash of the message file, which is
 * how recovery tells a commit that a crash cut short.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "queue.h"
#include "sqmail.h"

#define QFS_PATH_MAX	64	/* "quarantine/<id>.env.<n>" fits */

enum qfs_stage {
	QFS_NONE = 0,
	QFS_WRITTEN,		/* envelope written, fds open */
	QFS_SYNCED,		/* both fsync'd */
	QFS_MESS_MOVED,		/* COMMIT: message in mess/ */
	QFS_DONE		/* renamed into place */
};

static int	 qfs_dirfd_mess = -1;
static int	 qfs_dirfd_env = -1;
static uint32_t	 qfs_counter;
static int	 qfs_counter_init;

/*
 * A small pool of threads for fsync: one fsync costs about as much as ten
 * concurrent ones, so a batch syncs all its files at once.
 */
static struct {
	pthread_mutex_t	 mtx;
	pthread_cond_t	 work;
	pthread_cond_t	 done;
	const int	*fds;
	int		*errs;
	size_t		 n;
	size_t		 next;
	size_t		 finished;
	int		 nthreads;
	int		 started;
} qfs_pool = {
	PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
	PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0, 0, 0, 0
};

const char *
queue_id_str(uint64_t id, char *buf, size_t len)
{
	(void)snprintf(buf, len, "%" PRIu64, id);
	return buf;
}

/* Strict decimal, no leading zero, not 0. */
int
queue_id_parse(const char *s, uint64_t *id)
{
	uint64_t	 v = 0;
	size_t		 i;

	if (s[0] == '\0' || s[0] == '0')
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 20)
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*id = v;
	return 0;
}

static void
qfs_path(char *buf, size_t len, const char *dir, uint64_t id,
    const char *suffix)
{
	int	 n;

	n = snprintf(buf, len, "%s/%" PRIu64 "%s", dir, id, suffix);
	if (n < 0 || (size_t)n >= len)
		fatalx("queue: path too long for msg %" PRIu64, id);
}

static void *
qfs_pool_worker(void *arg)
{
	size_t	 i;
	int	 e;

	pthread_mutex_lock(&qfs_pool.mtx);
	for (;;) {
		while (qfs_pool.next >= qfs_pool.n)
			pthread_cond_wait(&qfs_pool.work, &qfs_pool.mtx);
		i = qfs_pool.next++;
		pthread_mutex_unlock(&qfs_pool.mtx);
		e = qfs_pool.fds[i] == -1 ? 0 :
		    (fsync(qfs_pool.fds[i]) == -1 ? errno : 0);
		pthread_mutex_lock(&qfs_pool.mtx);
		qfs_pool.errs[i] = e;
		if (++qfs_pool.finished == qfs_pool.n)
			pthread_cond_signal(&qfs_pool.done);
	}
	return NULL;
}

static void
qfs_pool_start(void)
{
	pthread_t	 t;
	sigset_t	 all, old;
	int		 i;

	qfs_pool.started = 1;
	/* Signals stay with the main thread (libevent handles them). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < QUEUE_FSYNC_WORKERS; i++) {
		if (pthread_create(&t, NULL, qfs_pool_worker, NULL) != 0) {
			log_warnx("queue: cannot start fsync thread %d", i);
			break;
		}
		pthread_detach(t);
		qfs_pool.nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* fsync every fd (-1: skipped); errs[i] gets 0 or an errno. */
static void
qfs_fsync_all(const int *fds, int *errs, size_t n)
{
	size_t	 i, live = 0;
	int	 e;

	for (i = 0; i < n; i++) {
		errs[i] = 0;
		if (fds[i] != -1)
			live++;
	}
	if (live == 0)
		return;
	if (live > 1 && !qfs_pool.started)
		qfs_pool_start();
	if (live == 1 || qfs_pool.nthreads == 0) {
		for (i = 0; i < n; i++)
			if (fds[i] != -1 && fsync(fds[i]) == -1)
				errs[i] = errno;
		return;
	}
	pthread_mutex_lock(&qfs_pool.mtx);
	qfs_pool.fds = fds;
	qfs_pool.errs = errs;
	qfs_pool.finished = 0;
	qfs_pool.next = 0;
	qfs_pool.n = n;
	/* Wake only the helpers there is work for; this thread works too. */
	for (i = 1; i < live && i <= (size_t)qfs_pool.nthreads; i++)
		pthread_cond_signal(&qfs_pool.work);
	/* This thread works too. */
	while (qfs_pool.next < qfs_pool.n) {
		i = qfs_pool.next++;
		pthread_mutex_unlock(&qfs_pool.mtx);
		e = fds[i] == -1 ? 0 : (fsync(fds[i]) == -1 ? errno : 0);
		pthread_mutex_lock(&qfs_pool.mtx);
		errs[i] = e;
		qfs_pool.finished++;
	}
	while (qfs_pool.finished < qfs_pool.n)
		pthread_cond_wait(&qfs_pool.done, &qfs_pool.mtx);
	qfs_pool.n = qfs_pool.next = qfs_pool.finished = 0;
	qfs_pool.fds = NULL;
	qfs_pool.errs = NULL;
	pthread_mutex_unlock(&qfs_pool.mtx);
}

int
queue_fs_init(void)
{
	const char	*dirs[] = { QUEUE_DIR_INCOMING, QUEUE_DIR_MESS,
			    QUEUE_DIR_ENV, QUEUE_DIR_QUARANTINE,
			    QUEUE_DIR_SPARE };
	size_t		 i;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (mkdir(dirs[i], 0700) == -1 && errno != EEXIST) {
			log_warn("queue: mkdir %s", dirs[i]);
			return -1;
		}
	if (qfs_dirfd_mess != -1)
		close(qfs_dirfd_mess);
	if (qfs_dirfd_env != -1)
		close(qfs_dirfd_env);
	qfs_dirfd_mess = open(QUEUE_DIR_MESS, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC);
	qfs_dirfd_env = open(QUEUE_DIR_ENV, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC);
	if (qfs_dirfd_mess == -1 || qfs_dirfd_env == -1) {
		log_warn("queue: open spool directories");
		return -1;
	}
	return queue_spare_init();
}

static uint64_t
qfs_newid(void)
{
	uint64_t	 id;

	if (!qfs_counter_init) {
		qfs_counter = arc4random();
		qfs_counter_init = 1;
	}
	id = ((uint64_t)time(NULL) << 20) | (qfs_counter++ & 0xfffff);
	return id ? id : 1;
}

int
queue_fs_create(uint64_t *idp, int *fdp)
{
	struct stat	 sb;
	char		 path[QFS_PATH_MAX];
	uint64_t	 id;
	int		 fd, tries;

	*fdp = -1;
	for (tries = 0; tries < 100; tries++) {
		id = qfs_newid();
		/* Never reuse the id of a message still in the queue. */
		qfs_path(path, sizeof(path), QUEUE_DIR_MESS, id, "");
		if (lstat(path, &sb) == 0 || errno != ENOENT)
			goto collide;
		qfs_path(path, sizeof(path), QUEUE_DIR_ENV, id, "");
		if (lstat(path, &sb) == 0 || errno != ENOENT)
			goto collide;
		qfs_path(path, sizeof(path), QUEUE_DIR_INCOMING, id, "");
		if (lstat(path, &sb) == 0 || errno != ENOENT)
			goto collide;
		if ((fd = queue_spare_open(path, 1)) != -1) {
			*idp = id;
			*fdp = fd;
			return SQ_OK;
		}
		if (errno != EEXIST) {
			log_warn("queue: create %s", path);
			return SQ_TEMPFAIL;
		}
 collide:
		qfs_counter += arc4random() & 0xffff;
	}
	log_warnx("queue: cannot find a free message id");
	return SQ_TEMPFAIL;
}

void
queue_fs_abort(uint64_t id)
{
	char	 path[QFS_PATH_MAX];

	qfs_path(path, sizeof(path), QUEUE_DIR_INCOMING, id, "");
	if (queue_spare_release(path) == -1 && errno != ENOENT)
		log_warn("queue: unlink %s", path);
	qfs_path(path, sizeof(path), QUEUE_DIR_INCOMING, id, ".env");
	(void)queue_spare_release(path);
}

int
queue_fs_write(int fd, const char *buf, size_t len)
{
	ssize_t	 n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

/* read(2) until len octets or the end of the file; how many, or -1. */
ssize_t
queue_fs_read(int fd, char *buf, size_t len)
{
	size_t	 got = 0;
	ssize_t	 n;

	while (got < len) {
		if ((n = read(fd, buf + got, len - got)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/*
 * The content hash the envelope records: it tells recovery whether the
 * message file reached the disk whole, including the case where a crash
 * left the blocks of a reused file or stale blocks of a file system
 * without data ordering.  It detects accidents, not attacks.  Words are
 * read little-endian, so a spool moves between machines.
 */
int
queue_fs_hash(int fd, uint64_t size, uint64_t *hashp)
{
	static unsigned char	 buf[64 * 1024];	/* a multiple of 8 */
	uint64_t		 h = 0x6a09e667f3bcc908ULL ^ size, w, off = 0;
	ssize_t			 n;
	size_t			 i, j, want, got;

	while (off < size) {
		want = size - off < sizeof(buf) ? size - off : sizeof(buf);
		for (got = 0; got < want; got += (size_t)n) {
			n = pread(fd, buf + got, want - got, (off_t)(off + got));
			if (n == -1 && errno == EINTR) {
				n = 0;
				continue;
			}
			if (n == -1)
				return -1;
			if (n == 0) {
				errno = EIO;	/* shorter than its size */
				return -1;
			}
		}
		for (i = 0; i < want; i += 8) {
			w = 0;
			for (j = 0; j < 8 && i + j < want; j++)
				w |= (uint64_t)buf[i + j] << (8 * j);
			h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
			h ^= h >> 29;
		}
		off += want;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	*hashp = h ? h : 1;
	return 0;
}

/*
 * Encode an envelope that must fit ENVELOPE_MAX: when the error texts
 * have grown it past the limit, store them shortened (the recipients and
 * their states are what matters).
 */
static char *
qfs_encode_fit(const struct envelope *env, size_t *len)
{
	struct envelope	 copy;
	char		*buf;
	size_t		 i, cut[] = { 64, 0 }, c;

	if ((buf = envelope_encode(env, len)) == NULL || *len <= ENVELOPE_MAX)
		return buf;
	free(buf);
	copy = *env;
	if ((copy.rcpts = reallocarray(NULL, env->nrcpt,
	    sizeof(*copy.rcpts))) == NULL)
		return NULL;
	memcpy(copy.rcpts, env->rcpts, env->nrcpt * sizeof(*copy.rcpts));
	for (c = 0; c < sizeof(cut) / sizeof(cut[0]); c++) {
		for (i = 0; i < copy.nrcpt; i++)
			copy.rcpts[i].error[cut[c]] = '\0';
		if ((buf = envelope_encode(&copy, len)) == NULL ||
		    *len <= ENVELOPE_MAX)
			break;
		free(buf);
		buf = NULL;
	}
	free(copy.rcpts);
	if (buf == NULL && errno == 0)
		errno = EFBIG;
	return buf;
}

/* Stage 1 of an operation: write its envelope, open what must be synced. */
static void
qfs_prepare(struct queue_op *op)
{
	struct stat	 sb;
	char		 path[QFS_PATH_MAX], idb[QUEUE_ID_STRLEN];
	char		*buf = NULL;
	size_t		 len;
	uint64_t	 id = op->env->id;

	op->status = SQ_TEMPFAIL;
	queue_id_str(id, idb, sizeof(idb));
	if (op->type == QUEUE_OP_COMMIT) {
		qfs_path(path, sizeof(path), QUEUE_DIR_INCOMING, id, "");
		if ((op->fd_msg = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
		    fstat(op->fd_msg, &sb) == -1) {
			log_warn("queue: msg %s: open %s", idb, path);
			return;
		}
		if (!S_ISREG(sb.st_mode)) {
			log_warnx("queue: msg %s: %s is not a file", idb, path);
			return;
		}
		op->env->size = (uint64_t)sb.st_size;
		if (queue_fs_hash(op->fd_msg, op->env->size,
		    &op->env->hash) == -1) {
			log_warn("queue: msg %s: read %s", idb, path);
			return;
		}
		errno = 0;
		if ((buf = envelope_encode(op->env, &len)) == NULL) {
			log_warn("queue: msg %s: cannot encode envelope", idb);
			if (errno == EINVAL)
				op->status = SQ_PERMFAIL;
			return;
		}
		if (len > ENVELOPE_MAX ||
		    op->env->nrcpt > (ENVELOPE_MAX - len) / QUEUE_ERROR_ROOM) {
			log_warnx("queue: msg %s: envelope too large "
			    "(%zu recipients)", idb, op->env->nrcpt);
			op->status = SQ_PERMFAIL;
			free(buf);
			return;
		}
		qfs_path(path, sizeof(path), QUEUE_DIR_INCOMING, id, ".env");
	} else {
		errno = 0;
		if ((buf = qfs_encode_fit(op->env, &len)) == NULL) {
			log_warn("queue: msg %s: cannot encode envelope", idb);
			return;
		}
		qfs_path(path, sizeof(path), QUEUE_DIR_ENV, id, ".tmp");
	}
	op->fd_env = queue_spare_open(path, 0);
	if (op->fd_env == -1 || queue_fs_write(op->fd_env, buf, len) == -1) {
		log_warn("queue: msg %s: write %s", idb, path);
		free(buf);
		return;
	}
	free(buf);
	op->stage = QFS_WRITTEN;
	op->status = SQ_OK;
}

/* Stage 3: the renames that make an operation visible. */
static void
qfs_rename(struct queue_op *op)
{
	char		 from[QFS_PATH_MAX], to[QFS_PATH_MAX];
	uint64_t	 id = op->env->id;

	if (op->type == QUEUE_OP_COMMIT) {
		qfs_path(from, sizeof(from), QUEUE_DIR_INCOMING, id, "");
		qfs_path(to, sizeof(to), QUEUE_DIR_MESS, id, "");
		if (rename(from, to) == -1) {
			log_warn("queue: rename %s %s", from, to);
			op->status = SQ_TEMPFAIL;
			return;
		}
		op->stage = QFS_MESS_MOVED;
		qfs_path(from, sizeof(from), QUEUE_DIR_INCOMING, id, ".env");
		qfs_path(to, sizeof(to), QUEUE_DIR_ENV, id, "");
	} else {
		qfs_path(from, sizeof(from), QUEUE_DIR_ENV, id, ".tmp");
		qfs_path(to, sizeof(to), QUEUE_DIR_ENV, id, "");
	}
	if (rename(from, to) == -1) {
		log_warn("queue: rename %s %s", from, to);
		op->status = SQ_TEMPFAIL;
		return;
	}
	op->stage = QFS_DONE;
}

/* Undo what a failed operation left: a failed COMMIT leaves no file. */
static void
qfs_cleanup(struct queue_op *op)
{
	char		 path[QFS_PATH_MAX];
	uint64_t	 id = op->env->id;

	if (op->type == QUEUE_OP_COMMIT) {
		if (op->stage == QFS_DONE) {
			qfs_path(path, sizeof(path), QUEUE_DIR_ENV, id, "");
			(void)queue_spare_release(path);
		}
		if (op->stage >= QFS_MESS_MOVED) {
			qfs_path(path, sizeof(path), QUEUE_DIR_MESS, id, "");
			(void)queue_spare_release(path);
		}
		queue_fs_abort(id);
	} else if (op->stage != QFS_DONE) {
		qfs_path(path, sizeof(path), QUEUE_DIR_ENV, id, ".tmp");
		(void)queue_spare_release(path);
	}
	/* A failed UPDATE that was renamed keeps its file: retried later. */
}

void
queue_fs_batch(struct queue_op **ops, size_t n)
{
	struct queue_op	*op;
	int		*fds = NULL, *errs = NULL, dfd, derr;
	size_t		 i, nfd, ncommit = 0, nupdate = 0;

	for (i = 0; i < n; i++) {
		op = ops[i];
		op->fd_msg = op->fd_env = -1;
		op->stage = QFS_NONE;
		qfs_prepare(op);
	}

	/*
	 * Commits go into place before their one round of fsyncs: nobody
	 * hears of them before the round ends, and recovery tells such a
	 * torn, never acknowledged commit by its empty envelope or by a
	 * message size that is not the one its envelope records.  Updates
	 * replace a good envelope, so they are renamed only once synced.
	 */
	for (i = 0; i < n; i++) {
		op = ops[i];
		if (op->status == SQ_OK && op->type == QUEUE_OP_COMMIT) {
			qfs_rename(op);
			if (op->status == SQ_OK)
				ncommit++;
		}
	}

	/* The round: every file and, for commits, both directories. */
	fds = reallocarray(NULL, 2 * n + 2, sizeof(int));
	errs = reallocarray(NULL, 2 * n + 2, sizeof(int));
	if (fds == NULL || errs == NULL) {
		log_warn("queue: batch of %zu", n);
		for (i = 0; i < n; i++)
			ops[i]->status = SQ_TEMPFAIL;
	} else {
		for (i = 0; i < n; i++) {
			op = ops[i];
			fds[2 * i] = op->status == SQ_OK ? op->fd_msg : -1;
			fds[2 * i + 1] = op->status == SQ_OK ? op->fd_env : -1;
		}
		nfd = 2 * n;
		fds[nfd++] = ncommit ? qfs_dirfd_mess : -1;
		fds[nfd++] = ncommit ? qfs_dirfd_env : -1;
		qfs_fsync_all(fds, errs, nfd);
		if (errs[2 * n] || errs[2 * n + 1]) {
			errno = errs[2 * n] ? errs[2 * n] : errs[2 * n + 1];
			log_warn("queue: fsync of the spool directories");
			for (i = 0; i < n; i++)
				if (ops[i]->type == QUEUE_OP_COMMIT)
					ops[i]->status = SQ_TEMPFAIL;
		}
		for (i = 0; i < n; i++) {
			op = ops[i];
			if (op->status != SQ_OK)
				continue;
			if (errs[2 * i] || errs[2 * i + 1]) {
				errno = errs[2 * i] ? errs[2 * i] :
				    errs[2 * i + 1];
				log_warn("queue: msg %" PRIu64 ": fsync",
				    op->env->id);
				op->status = SQ_TEMPFAIL;
			} else if (op->type != QUEUE_OP_COMMIT)
				op->stage = QFS_SYNCED;
		}
	}

	for (i = 0; i < n; i++) {
		op = ops[i];
		if (op->fd_msg != -1)
			close(op->fd_msg);
		if (op->fd_env != -1)
			close(op->fd_env);
		op->fd_msg = op->fd_env = -1;
		if (op->status == SQ_OK && op->type != QUEUE_OP_COMMIT) {
			qfs_rename(op);
			if (op->status == SQ_OK)
				nupdate++;
		}
	}

	/* Updates: their renames, durable before anyone hears back. */
	if (nupdate > 0) {
		dfd = qfs_dirfd_env;
		qfs_fsync_all(&dfd, &derr, 1);
		if (derr) {
			errno = derr;
			log_warn("queue: fsync of the envelope directory");
			for (i = 0; i < n; i++)
				if (ops[i]->type != QUEUE_OP_COMMIT)
					ops[i]->status = SQ_TEMPFAIL;
		}
	}
	for (i = 0; i < n; i++)
		if (ops[i]->status != SQ_OK)
			qfs_cleanup(ops[i]);
	free(fds);
	free(errs);
}

int
queue_fs_remove(uint64_t id)
{
	char	 path[QFS_PATH_MAX];
	int	 ret = 0;

	qfs_path(path, sizeof(path), QUEUE_DIR_ENV, id, "");
	if (queue_spare_release(path) == -1 && errno != ENOENT) {
		log_warn("queue: unlink %s", path);
		/* Keep the message file: the envelope still points to it. */
		return -1;
	}
	qfs_path(path, sizeof(path), QUEUE_DIR_MESS, id, "");
	if (queue_spare_release(path) == -1 && errno != ENOENT) {
		log_warn("queue: unlink %s", path);
		ret = -1;
	}
	return ret;
}

int
queue_fs_open_message(uint64_t id)
{
	char	 path[QFS_PATH_MAX];

	qfs_path(path, sizeof(path), QUEUE_DIR_MESS, id, "");
	return open(path, O_RDONLY | O_CLOEXEC);
}

int
queue_fs_read_message(uint64_t id, size_t max, char **bufp, size_t *lenp,
    uint64_t *sizep)
{
	struct stat	 sb;
	char		*buf;
	size_t		 len, want;
	ssize_t		 n;
	int		 fd, saved;

	*bufp = NULL;
	if ((fd = queue_fs_open_message(id)) == -1)
		return -1;
	if (fstat(fd, &sb) == -1)
		goto fail;
	*sizep = (uint64_t)sb.st_size;
	want = (uint64_t)sb.st_size < max ? (size_t)sb.st_size : max;
	if ((buf = malloc(want + 1)) == NULL)
		goto fail;
	if ((n = queue_fs_read(fd, buf, want)) == -1) {
		free(buf);
		goto fail;
	}
	close(fd);
	len = (size_t)n;
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;

 fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* Flush mess/ and env/: what recovery changed stays changed. */
void
queue_fs_sync_dirs(void)
{
	if (qfs_dirfd_env != -1 && fsync(qfs_dirfd_env) == -1)
		log_warn("queue: fsync %s", QUEUE_DIR_ENV);
	if (qfs_dirfd_mess != -1 && fsync(qfs_dirfd_mess) == -1)
		log_warn("queue: fsync %s", QUEUE_DIR_MESS);
}
