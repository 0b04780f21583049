/*
 * mbox delivery: append one message in the "mboxrd" form (a From_ line,
 * every line matching ^>*From  quoted with one more '>', a blank line
 * after the message) under a dotlock and an fcntl lock, fsync, and cut
 * the file back to its old size on any error.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mda.h"
#include "sqmail.h"

#define MDA_MBOX_BUF	65536

int	 mda_mbox_lock_wait = MDA_LOCK_WAIT;
int	 mda_mbox_lock_stale = MDA_LOCK_STALE;

/* Output through a buffer, remembering the first error. */
struct mda_out {
	int	 fd;
	int	 error;		/* errno of the first failed write, or 0 */
	size_t	 len;
	char	 buf[MDA_MBOX_BUF];
};

static void
mda_out_flush(struct mda_out *o)
{
	if (o->error == 0 && o->len > 0 &&
	    mda_write_all(o->fd, o->buf, o->len) == -1)
		o->error = errno;
	o->len = 0;
}

static void
mda_out_add(struct mda_out *o, const char *p, size_t n)
{
	size_t	 k;

	while (n > 0) {
		if (o->len == sizeof(o->buf))
			mda_out_flush(o);
		k = sizeof(o->buf) - o->len;
		if (k > n)
			k = n;
		memcpy(o->buf + o->len, p, k);
		o->len += k;
		p += k;
		n -= k;
	}
}

static void
mda_out_gt(struct mda_out *o, size_t n)
{
	while (n-- > 0)
		mda_out_add(o, ">", 1);
}

static double
mda_mbox_now(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return (double)time(NULL);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sleep a little between lock attempts: 50 ms growing to 1 s. */
static void
mda_mbox_pause(unsigned int *ms)
{
	struct timespec	 ts;

	ts.tv_sec = *ms / 1000;
	ts.tv_nsec = (long)(*ms % 1000) * 1000000L;
	(void)nanosleep(&ts, NULL);
	if (*ms < 1000)
		*ms *= 2;
	if (*ms > 1000)
		*ms = 1000;
}

/*
 * Take the dotlock "<path>.lock" before the deadline.  Returns 1 when
 * held, 0 when it is not used (a directory the user may not write), -1 on
 * timeout or error with err set.
 */
static int
mda_mbox_dotlock(const char *lock, double deadline, char *err,
    size_t errlen)
{
	struct stat	 sb;
	char		 pid[32];
	unsigned int	 ms = 50;
	int		 fd, n, saved;

	for (;;) {
		fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (fd != -1) {
			n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
			if (n > 0)
				(void)mda_write_all(fd, pid, n);
			(void)close(fd);
			return 1;
		}
		saved = errno;
		if (saved == EACCES || saved == EPERM || saved == EROFS) {
			log_debug("mda: cannot create dotlock %s (%s), "
			    "using the fcntl lock alone", lock,
			    strerror(saved));
			return 0;
		}
		if (saved != EEXIST) {
			(void)snprintf(err, errlen, "mbox: cannot create the "
			    "lock file: %s (#%s)", mda_strerror(saved),
			    mda_errcode(saved));
			return -1;
		}
		if (lstat(lock, &sb) == 0 &&
		    time(NULL) - sb.st_mtime > mda_mbox_lock_stale) {
			log_info("mda: removing stale dotlock %s", lock);
			(void)unlink(lock);
			continue;
		}
		if (mda_mbox_now() >= deadline) {
			(void)snprintf(err, errlen, "mbox: mailbox is locked "
			    "(lock file held too long) (#4.2.1)");
			return -1;
		}
		mda_mbox_pause(&ms);
	}
}

/* The fcntl write lock on the whole file before the deadline. */
static int
mda_mbox_fcntl_lock(int fd, double deadline, char *err, size_t errlen)
{
	struct flock	 fl;
	unsigned int	 ms = 50;

	for (;;) {
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if (fcntl(fd, F_SETLK, &fl) == 0)
			return 0;
		if (errno != EAGAIN && errno != EACCES && errno != EINTR) {
			(void)snprintf(err, errlen, "mbox: cannot lock the "
			    "mailbox: %s (#4.3.0)", mda_strerror(errno));
			return -1;
		}
		if (mda_mbox_now() >= deadline) {
			(void)snprintf(err, errlen, "mbox: mailbox is locked "
			    "(#4.2.1)");
			return -1;
		}
		mda_mbox_pause(&ms);
	}
}

/* "Thu Nov 24 16:39:00 2022", as asctime(3) writes it, in the C locale. */
static void
mda_mbox_date(char *buf, size_t len)
{
	static const char	*days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
				    "Fri", "Sat" };
	static const char	*months[] = { "Jan", "Feb", "Mar", "Apr",
				    "May", "Jun", "Jul", "Aug", "Sep", "Oct",
				    "Nov", "Dec" };
	struct tm		 tm;
	time_t			 now = time(NULL);

	if (localtime_r(&now, &tm) == NULL || tm.tm_wday < 0 ||
	    tm.tm_wday > 6 || tm.tm_mon < 0 || tm.tm_mon > 11) {
		(void)strlcpy(buf, "Thu Jan  1 00:00:00 1970", len);
		return;
	}
	(void)snprintf(buf, len, "%s %s %2d %02d:%02d:%02d %d",
	    days[tm.tm_wday], months[tm.tm_mon], tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
}

/*
 * Copy the message from msgfd (offset 0 on) to o with ">From " quoting,
 * then end it with a blank line.  Returns 0, or -1 with errno set when
 * reading fails (write errors are in o->error).
 */
static int
mda_mbox_copy(struct mda_out *o, int msgfd)
{
	static const char	 from[] = "From ";
	char			*buf, *p, *e, *nl;
	off_t			 off = 0;
	ssize_t			 n;
	size_t			 ngt = 0, k = 0;
	int			 bol = 1, matching = 0, last = '\n', saved;

	if ((buf = malloc(MDA_MBOX_BUF)) == NULL)
		return -1;
	for (;;) {
		n = pread(msgfd, buf, MDA_MBOX_BUF, off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			saved = errno;
			free(buf);
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		off += n;
		last = (unsigned char)buf[n - 1];
		for (p = buf, e = buf + n; p < e; ) {
			if (bol) {
				/* Start of a line: hold ">*From " back. */
				bol = 0;
				matching = 1;
				ngt = 0;
				k = 0;
			}
			if (matching) {
				if (*p == '>' && k == 0) {
					ngt++;
					p++;
					continue;
				}
				if (*p == from[k]) {
					p++;
					if (++k < sizeof(from) - 1)
						continue;
					/* A From_ line: one '>' more. */
					mda_out_gt(o, ngt + 1);
					mda_out_add(o, from, k);
					matching = 0;
					continue;
				}
				/* Not one: give back what was held. */
				mda_out_gt(o, ngt);
				mda_out_add(o, from, k);
				matching = 0;
			}
			/* Copy through the end of the line. */
			if ((nl = memchr(p, '\n', e - p)) == NULL) {
				mda_out_add(o, p, e - p);
				p = e;
			} else {
				mda_out_add(o, p, nl + 1 - p);
				p = nl + 1;
				bol = 1;
			}
		}
	}
	free(buf);
	if (matching) {
		mda_out_gt(o, ngt);
		mda_out_add(o, from, k);
	}
	/* Complete a last line without its newline, then the blank line. */
	if (last != '\n')
		mda_out_add(o, "\n", 1);
	mda_out_add(o, "\n", 1);
	return 0;
}

/*
 * Open the mbox for appending, creating it when missing, and check it:
 * a regular file, the user's own, one link.
 */
static int
mda_mbox_open(const char *path, char *err, size_t errlen)
{
	struct stat	 sb;
	int		 fd, saved;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
	    O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd == -1) {
		saved = errno;
		if (saved == ELOOP)
			(void)snprintf(err, errlen, "mbox: the mailbox is a "
			    "symbolic link, refusing to follow it (#4.3.0)");
		else
			(void)snprintf(err, errlen, "mbox: cannot open the "
			    "mailbox: %s (#%s)", mda_strerror(saved),
			    mda_errcode(saved));
		return -1;
	}
	if (fstat(fd, &sb) == -1) {
		saved = errno;
		(void)close(fd);
		(void)snprintf(err, errlen, "mbox: cannot stat the mailbox: "
		    "%s (#4.3.0)", mda_strerror(saved));
		return -1;
	}
	if (!S_ISREG(sb.st_mode)) {
		(void)close(fd);
		(void)snprintf(err, errlen, "mbox: the mailbox is not a "
		    "regular file (#4.3.0)");
		return -1;
	}
	if (sb.st_uid != getuid()) {
		(void)close(fd);
		(void)snprintf(err, errlen, "mbox: the mailbox is not owned "
		    "by its user (#4.3.0)");
		return -1;
	}
	if (sb.st_nlink != 1) {
		(void)close(fd);
		(void)snprintf(err, errlen, "mbox: the mailbox has more than "
		    "one hard link (#4.3.0)");
		return -1;
	}
	/* Blocking from here on: O_NONBLOCK only kept a FIFO from hanging. */
	if (fcntl(fd, F_SETFL, O_APPEND) == -1) {
		saved = errno;
		(void)close(fd);
		(void)snprintf(err, errlen, "mbox: fcntl: %s (#4.3.0)",
		    mda_strerror(saved));
		return -1;
	}
	return fd;
}

/* Whether fd is still the file path names (not renamed away). */
static int
mda_mbox_same(int fd, const char *path)
{
	struct stat	 a, b;

	if (fstat(fd, &a) == -1 || lstat(path, &b) == -1)
		return 0;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int
mda_mbox_deliver(const char *path, int msgfd, const char *sender,
    const char *rcpt, char *err, size_t errlen)
{
	struct mda_out	*o = NULL;
	struct stat	 sb;
	char		 hdr[SQ_ADDR_MAX * 2 + 64], lock[PATH_MAX];
	char		 date[64], line[SQ_ADDR_MAX + 96];
	double		 deadline;
	off_t		 size;
	int		 fd = -1, dotlocked = 0, hdrlen, n, saved, tries;
	int		 ret = SQ_TEMPFAIL;

	if ((hdrlen = mda_envelope_header(hdr, sizeof(hdr), sender,
	    rcpt)) == -1) {
		(void)snprintf(err, errlen, "mbox: unusable envelope address "
		    "(#5.1.3)");
		return SQ_PERMFAIL;
	}
	n = snprintf(lock, sizeof(lock), "%s.lock", path);
	if (n < 0 || (size_t)n >= sizeof(lock)) {
		(void)snprintf(err, errlen, "mbox: mailbox path too long "
		    "(#5.1.3)");
		return SQ_PERMFAIL;
	}
	deadline = mda_mbox_now() + mda_mbox_lock_wait;

	for (tries = 0;; tries++) {
		if ((fd = mda_mbox_open(path, err, errlen)) == -1)
			goto done;
		if (!dotlocked && (dotlocked = mda_mbox_dotlock(lock,
		    deadline, err, errlen)) == -1) {
			dotlocked = 0;
			goto done;
		}
		if (mda_mbox_fcntl_lock(fd, deadline, err, errlen) == -1)
			goto done;
		/* A mail reader may have replaced the file meanwhile. */
		if (mda_mbox_same(fd, path))
			break;
		if (tries >= 3) {
			(void)snprintf(err, errlen, "mbox: the mailbox keeps "
			    "changing under us (#4.3.0)");
			goto done;
		}
		(void)close(fd);
		fd = -1;
	}
	if (fstat(fd, &sb) == -1) {
		saved = errno;
		(void)snprintf(err, errlen, "mbox: cannot stat the mailbox: "
		    "%s (#4.3.0)", mda_strerror(saved));
		goto done;
	}
	size = sb.st_size;

	if ((o = malloc(sizeof(*o))) == NULL) {
		(void)snprintf(err, errlen, "mbox: out of memory (#4.3.0)");
		goto done;
	}
	o->fd = fd;
	o->error = 0;
	o->len = 0;
	mda_mbox_date(date, sizeof(date));
	n = snprintf(line, sizeof(line), "From %s %s\n",
	    sender[0] != '\0' ? sender : "MAILER-DAEMON", date);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		(void)snprintf(err, errlen, "mbox: sender too long (#5.1.7)");
		ret = SQ_PERMFAIL;
		goto done;
	}
	mda_out_add(o, line, n);
	mda_out_add(o, hdr, hdrlen);
	if (mda_mbox_copy(o, msgfd) == -1) {
		saved = errno;
		(void)snprintf(err, errlen, "mbox: cannot read the message: "
		    "%s (#4.3.0)", mda_strerror(saved));
		goto truncate;
	}
	mda_out_flush(o);
	if (o->error == 0 && fsync(fd) == -1)
		o->error = errno;
	if (o->error != 0) {
		(void)snprintf(err, errlen, "mbox: cannot write the mailbox: "
		    "%s (#%s)", mda_strerror(o->error),
		    mda_errcode(o->error));
		goto truncate;
	}
	(void)strlcpy(err, MDA_SUCCESS_TEXT, errlen);
	ret = SQ_OK;
	goto done;

truncate:
	/* Leave the mailbox as it was. */
	if (ftruncate(fd, size) == -1 || fsync(fd) == -1)
		log_warn("mda: mbox %s: cannot cut back to %lld octets",
		    path, (long long)size);
done:
	free(o);
	if (fd != -1)
		(void)close(fd);	/* drops the fcntl lock */
	if (dotlocked && unlink(lock) == -1)
		log_warn("mda: cannot remove dotlock %s", lock);
	return ret;
}
