/*
 * parent_pickup.c: the offline directory.  When sqmaild is down,
 * sendmail(8) stores each message as a file of the format in inject.h
 * in <spool>/offline; here the parent takes them back at start and then
 * every PICKUP_INTERVAL seconds.
 *
 * The directory is root's, mode 1733: any user may create a file in it,
 * nobody but root may list it, and the sticky bit keeps users from
 * renaming or removing one another's files.  The spool gets search
 * permission for everyone (0711) so that users can reach it; the queue's
 * own directories inside stay 0700.  Files are hostile: each is opened
 * without following a symbolic link and without blocking (a FIFO), and
 * must be a regular file with one link (a hard link to someone else's
 * file is refused: its content is never mailed), within the size limit,
 * with a well-formed envelope.  A file that fails is moved to
 * <spool>/offline.bad (root's, 0700) and logged, never delivered or
 * deleted.  The submitter is the uid that owns the file, as the kernel
 * says (root's own files are taken too); the parent copies the message
 * into a sealed memory file and hands it with the envelope to control,
 * which submits it to queue as it does a sendmail(8) client's.  The file
 * is removed only once queue has committed the message; a temporary
 * refusal leaves it for the next scan.
 *
 * Without root, the parent can read only its own user's files: those of
 * others stay where they are (logged at debug level).
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "imsg.h"
#include "inject.h"
#include "log.h"
#include "mproc.h"
#include "msg.h"
#include "parent_pickup.h"
#include "proc.h"
#include "sqmail.h"

#define PICKUP_DIR		"offline"
#define PICKUP_BAD		"offline.bad"
#define PICKUP_FIRST		1	/* seconds from start to the first scan */
#define PICKUP_INTERVAL		60	/* seconds between scans */
#define PICKUP_INFLIGHT		8	/* files handed to control at once */
#define PICKUP_STALE		(36 * 3600) /* a temporary (dot) file this
					     * old was abandoned */
#define PICKUP_SIZE_DEFAULT	(1ULL << 30) /* when the conf sets no limit */

struct pickup {
	TAILQ_ENTRY(pickup)	 entry;
	uint32_t		 id;
	dev_t			 dev;
	ino_t			 ino;
	uid_t			 uid;
	char			 name[NAME_MAX + 1];
};

static TAILQ_HEAD(, pickup)	 pickups = TAILQ_HEAD_INITIALIZER(pickups);
static size_t			 pickup_ninflight;
static uint32_t			 pickup_nextid;
static int			 pickup_dfd = -1;	/* offline */
static int			 pickup_bfd = -1;	/* offline.bad */
static int			 pickup_more;	/* the scan stopped early */
static int			 pickup_deferred; /* a temporary refusal */
static struct event		 pickup_ev;
static void			(*pickup_next)(struct mproc *, struct imsg *);

static void	pickup_scan(void);

/* A directory entry's name for the log: the user chose it. */
static const char *
pickup_logname(const char *name)
{
	static char	 buf[NAME_MAX + 1];
	size_t		 i;

	for (i = 0; name[i] != '\0' && i + 1 < sizeof(buf); i++)
		buf[i] = ((unsigned char)name[i] < ' ' ||
		    (unsigned char)name[i] > '~') ? '?' : name[i];
	buf[i] = '\0';
	return buf;
}

/* A file that will never do: out of the way, kept for the admin. */
static void
pickup_bad(const char *name, uid_t uid, const char *why)
{
	char	 to[NAME_MAX + 16];
	int	 r;

	(void)strlcpy(to, name, sizeof(to));
	if ((r = renameat2(pickup_dfd, name, pickup_bfd, to,
	    RENAME_NOREPLACE)) == -1 && errno == EEXIST) {
		(void)snprintf(to, sizeof(to), "%.200s.%08x", name,
		    arc4random());
		r = renameat2(pickup_dfd, name, pickup_bfd, to,
		    RENAME_NOREPLACE);
	}
	if (r == 0)
		log_warnx("pickup: %s/%s (uid %ld): %s; moved to %s",
		    PICKUP_DIR, pickup_logname(name), (long)uid, why,
		    PICKUP_BAD);
	else
		log_warnx("pickup: %s/%s (uid %ld): %s; cannot move it to "
		    "%s: %s", PICKUP_DIR, pickup_logname(name), (long)uid, why,
		    PICKUP_BAD, strerror(errno));
}

static int
pickup_copy(int src, off_t off, int dst, uint64_t max)
{
	char		 buf[65536];
	uint64_t	 total = 0;
	ssize_t		 n, w, o;

	for (;;) {
		if ((n = pread(src, buf, sizeof(buf), off)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return 0;
		off += n;
		if ((total += n) > max) {
			errno = EFBIG;
			return -1;
		}
		for (o = 0; o < n; o += w)
			if ((w = write(dst, buf + o, n - o)) == -1) {
				if (errno != EINTR)
					return -1;
				w = 0;
			}
	}
}

/*
 * One file: checked, its message into a sealed memory file, handed to
 * control; or moved aside, or (an error of ours) left for the next scan.
 */
static void
pickup_one(const char *name)
{
	static struct inject_range	 rcpts[INJECT_OFFLINE_RCPTS];
	struct inject_offline		 env;
	struct mproc			*c = peers[PROC_CONTROL];
	struct pickup			*pk;
	struct stat			 st;
	char				 err[256], addr[SQ_ADDR_MAX];
	char				*buf = NULL;
	uint64_t			 max;
	size_t				 want, got = 0, i;
	ssize_t				 n;
	int				 fd, mfd = -1;

	max = conf->max_message_size ? conf->max_message_size :
	    PICKUP_SIZE_DEFAULT;
	if ((fd = openat(pickup_dfd, name, O_RDONLY | O_NOFOLLOW |
	    O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) == -1) {
		if (errno == ELOOP) {
			/* Whatever it points at is never opened. */
			if (fstatat(pickup_dfd, name, &st,
			    AT_SYMLINK_NOFOLLOW) == -1)
				st.st_uid = (uid_t)-1;
			pickup_bad(name, st.st_uid, "a symbolic link");
			return;
		}
		if (errno == EACCES && !sq_privileged)
			log_debug("pickup: %s/%s: not ours to read",
			    PICKUP_DIR, pickup_logname(name));
		else if (errno != ENOENT)
			log_warn("pickup: %s/%s", PICKUP_DIR,
			    pickup_logname(name));
		return;
	}
	if (fstat(fd, &st) == -1) {
		log_warn("pickup: %s/%s", PICKUP_DIR, pickup_logname(name));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		pickup_bad(name, st.st_uid, "not a regular file");
		goto done;
	}
	if (st.st_nlink != 1) {
		pickup_bad(name, st.st_uid, "a file with more than one link");
		goto done;
	}
	if ((uint64_t)st.st_size > max + INJECT_OFFLINE_ENV_MAX) {
		pickup_bad(name, st.st_uid, "larger than the message size "
		    "limit");
		goto done;
	}
	want = (uint64_t)st.st_size < INJECT_OFFLINE_ENV_MAX ?
	    (size_t)st.st_size : INJECT_OFFLINE_ENV_MAX;
	if ((buf = malloc(want + 1)) == NULL) {
		log_warn("pickup: malloc");
		goto done;
	}
	while (got < want) {
		if ((n = pread(fd, buf + got, want - got, got)) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("pickup: %s/%s", PICKUP_DIR,
			    pickup_logname(name));
			goto done;
		}
		if (n == 0)
			break;
		got += n;
	}
	if (inject_offline_parse(buf, got, &env, rcpts, INJECT_OFFLINE_RCPTS,
	    err, sizeof(err)) == -1) {
		pickup_bad(name, st.st_uid, err);
		goto done;
	}
	if ((mfd = memfd_create("pickup", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING)) == -1) {
		log_warn("pickup: memfd_create");
		goto done;
	}
	if (pickup_copy(fd, env.body_off, mfd, max) == -1) {
		if (errno == EFBIG)
			pickup_bad(name, st.st_uid, "message larger than the "
			    "size limit");
		else
			log_warn("pickup: %s/%s: copying", PICKUP_DIR,
			    pickup_logname(name));
		goto done;
	}
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK |
	    F_SEAL_GROW | F_SEAL_WRITE) == -1) {
		log_warn("pickup: sealing");
		goto done;
	}
	if ((pk = calloc(1, sizeof(*pk))) == NULL) {
		log_warn("pickup: calloc");
		goto done;
	}
	/* Ids in 1 .. 2^31 - 1: control keeps the high bit. */
	if (++pickup_nextid >= 0x80000000U)
		pickup_nextid = 1;
	pk->id = pickup_nextid;
	pk->dev = st.st_dev;
	pk->ino = st.st_ino;
	pk->uid = st.st_uid;
	(void)strlcpy(pk->name, name, sizeof(pk->name));
	TAILQ_INSERT_TAIL(&pickups, pk, entry);
	pickup_ninflight++;

	for (i = 0; i < env.nrcpt; i++) {
		memcpy(addr, buf + rcpts[i].off, rcpts[i].len);
		addr[rcpts[i].len] = '\0';
		m_create(c, IMSG_PICKUP_RCPT, 0, -1);
		m_add_u32(c, pk->id);
		m_add_string(c, addr);
		m_close(c);
	}
	memcpy(addr, buf + env.sender.off, env.sender.len);
	addr[env.sender.len] = '\0';
	m_create(c, IMSG_PICKUP, 0, mfd);
	m_add_u32(c, pk->id);
	m_add_u32(c, (uint32_t)st.st_uid);
	m_add_string(c, addr);
	m_close(c);
	mfd = -1;		/* control's now */
	log_debug("pickup: %s/%s (uid %ld): %zu recipients handed on",
	    PICKUP_DIR, pickup_logname(name), (long)st.st_uid, env.nrcpt);
done:
	free(buf);
	if (mfd != -1)
		close(mfd);
	close(fd);
}

/* An abandoned temporary file (sendmail killed while writing it). */
static void
pickup_stale(const char *name)
{
	struct stat	 st;

	if (fstatat(pickup_dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    st.st_mtime > time(NULL) - PICKUP_STALE)
		return;
	if (unlinkat(pickup_dfd, name, 0) == 0)
		log_info("pickup: %s/%s (uid %ld): an abandoned temporary "
		    "file, removed", PICKUP_DIR, pickup_logname(name),
		    (long)st.st_uid);
}

static void
pickup_scan(void)
{
	struct pickup	*pk;
	struct dirent	*de;
	DIR		*d;
	int		 fd;

	if (pickup_ninflight > 0 || peers[PROC_CONTROL] == NULL)
		return;		/* the last answer scans again */
	pickup_more = 0;
	pickup_deferred = 0;
	if ((fd = openat(pickup_dfd, ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 || (d = fdopendir(fd)) == NULL) {
		log_warn("pickup: %s", PICKUP_DIR);
		if (fd != -1)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.') {
			if (strcmp(de->d_name, ".") != 0 &&
			    strcmp(de->d_name, "..") != 0)
				pickup_stale(de->d_name);
			continue;
		}
		TAILQ_FOREACH(pk, &pickups, entry)
			if (strcmp(pk->name, de->d_name) == 0)
				break;
		if (pk != NULL)
			continue;
		if (pickup_ninflight >= PICKUP_INFLIGHT) {
			pickup_more = 1;
			break;
		}
		pickup_one(de->d_name);
	}
	closedir(d);
}

static void
pickup_timer(int fd, short ev, void *arg)
{
	struct timeval	 tv = { PICKUP_INTERVAL, 0 };

	pickup_scan();
	evtimer_add(&pickup_ev, &tv);
}

/* control's answer: the message is queued, refused, or not now. */
static void
pickup_done(struct imsg *imsg)
{
	struct pickup	*pk;
	struct stat	 st;
	struct msg	 m;
	const char	*text;
	uint32_t	 id;
	int		 status;

	m_msg(&m, imsg);
	m_get_u32(&m, &id);
	m_get_int(&m, &status);
	m_get_string(&m, &text);
	m_end(&m);
	TAILQ_FOREACH(pk, &pickups, entry)
		if (pk->id == id)
			break;
	if (pk == NULL) {
		log_warnx("pickup: an answer for no file (%u)", id);
		return;
	}
	if (status == SQ_OK) {
		/* Only the file we read: its owner may have replaced it. */
		if (fstatat(pickup_dfd, pk->name, &st,
		    AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == pk->dev &&
		    st.st_ino == pk->ino &&
		    unlinkat(pickup_dfd, pk->name, 0) == 0)
			log_info("pickup: %s/%s (uid %ld): %s", PICKUP_DIR,
			    pickup_logname(pk->name), (long)pk->uid, text);
		else
			log_warnx("pickup: %s/%s (uid %ld): %s, but the file "
			    "could not be removed", PICKUP_DIR,
			    pickup_logname(pk->name), (long)pk->uid, text);
	} else if (status == SQ_PERMFAIL)
		pickup_bad(pk->name, pk->uid, text);
	else {
		log_warnx("pickup: %s/%s (uid %ld): not now: %s; left for "
		    "the next scan", PICKUP_DIR, pickup_logname(pk->name),
		    (long)pk->uid, text);
		pickup_deferred = 1;
	}
	TAILQ_REMOVE(&pickups, pk, entry);
	free(pk);
	if (--pickup_ninflight == 0 && pickup_more && !pickup_deferred)
		pickup_scan();
}

static void
pickup_dispatch(struct mproc *p, struct imsg *imsg)
{
	if (imsg->hdr.type != IMSG_PICKUP) {
		pickup_next(p, imsg);
		return;
	}
	if (imsg->fd != -1) {
		close(imsg->fd);
		imsg->fd = -1;
	}
	pickup_done(imsg);
}

/* dir under the spool, mode, root's (or ours); an fd on it, or -1. */
static int
pickup_mkdir(const char *dir, mode_t mode)
{
	char		 path[PATH_MAX];
	struct stat	 st;
	int		 fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", conf->spool, dir) >=
	    sizeof(path)) {
		log_warnx("pickup: spool path too long");
		return -1;
	}
	if (mkdir(path, 0700) == -1 && errno != EEXIST) {
		log_warn("pickup: mkdir %s", path);
		return -1;
	}
	/* Not a symbolic link someone left in the spool. */
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 || fstat(fd, &st) == -1) {
		log_warn("pickup: %s", path);
		if (fd != -1)
			close(fd);
		return -1;
	}
	if ((sq_privileged && (st.st_uid != 0 || st.st_gid != 0) &&
	    fchown(fd, 0, 0) == -1) || ((st.st_mode & 07777) != mode &&
	    fchmod(fd, mode) == -1)) {
		log_warn("pickup: %s", path);
		close(fd);
		return -1;
	}
	return fd;
}

void
parent_pickup_start(void)
{
	struct timeval	 tv = { PICKUP_FIRST, 0 };
	struct stat	 st;

	/* Users must reach the drop box: search, never read, the spool. */
	if (stat(conf->spool, &st) == -1 || ((st.st_mode & 0011) != 0011 &&
	    chmod(conf->spool, (st.st_mode & 07777) | 0011) == -1)) {
		log_warn("pickup: %s: no offline directory", conf->spool);
		return;
	}
	if ((pickup_dfd = pickup_mkdir(PICKUP_DIR, 01733)) == -1 ||
	    (pickup_bfd = pickup_mkdir(PICKUP_BAD, 0700)) == -1) {
		log_warnx("pickup: no offline directory: sendmail's "
		    "offline messages are not picked up");
		if (pickup_dfd != -1)
			close(pickup_dfd);
		pickup_dfd = -1;
		return;
	}
	pickup_next = peers[PROC_CONTROL]->handler;
	peers[PROC_CONTROL]->handler = pickup_dispatch;
	evtimer_set(&pickup_ev, pickup_timer, NULL);
	evtimer_add(&pickup_ev, &tv);
}
