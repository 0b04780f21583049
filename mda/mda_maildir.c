/*
 * Maildir delivery: write tmp/NAME, fsync, link it into new/, remove the
 * tmp/ name, fsync new/.  A reader never sees a partial file in new/.
 * The Maildir itself may be a symbolic link (people move theirs); its
 * tmp/ and new/ never are followed.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mda.h"
#include "sqmail.h"

#define MDA_MAILDIR_TRIES	8	/* names tried when one is taken */
#define MDA_COPY_BUF		65536

static unsigned int	 mda_maildir_seq;

/*
 * A unique file name: "<time>.M<usec>P<pid>Q<counter>.<host>" with '/'
 * and ':' in the host name written as "\057" and "\072".  A host name
 * too long for NAME_MAX is cut: the part before it is what is unique.
 */
static int
mda_maildir_name(char *buf, size_t len)
{
	const char	*h;
	struct timeval	 tv;
	size_t		 off;
	int		 n;

	if (gettimeofday(&tv, NULL) == -1)
		return -1;
	n = snprintf(buf, len, "%lld.M%ldP%ldQ%u.", (long long)tv.tv_sec,
	    (long)tv.tv_usec, (long)getpid(), ++mda_maildir_seq);
	if (n < 0 || (size_t)n >= len)
		return -1;
	off = n;
	for (h = mda_hostname(); *h != '\0'; h++) {
		if (*h == '/' || *h == ':') {
			if (off + 4 >= len)
				break;
			(void)snprintf(buf + off, 5, "\\%03o",
			    (unsigned char)*h);
			off += 4;
		} else {
			if (off + 1 >= len)
				break;
			buf[off++] = *h;
		}
	}
	buf[off] = '\0';
	return 0;
}

/* Open (creating it when missing) one of tmp, new, cur; never a link. */
static int
mda_maildir_subdir(int dfd, const char *name, char *err, size_t errlen)
{
	struct stat	 sb;
	int		 fd, saved;

	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1 && errno == ENOENT) {
		if (mkdirat(dfd, name, 0700) == -1 && errno != EEXIST) {
			saved = errno;
			(void)snprintf(err, errlen, "Maildir: cannot create "
			    "%s/: %s (#%s)", name, mda_strerror(saved),
			    mda_errcode(saved));
			return -1;
		}
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	}
	if (fd != -1)
		return fd;
	saved = errno;
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISLNK(sb.st_mode)) {
			(void)snprintf(err, errlen, "Maildir: %s/ is a "
			    "symbolic link, refusing to follow it (#4.3.0)",
			    name);
			return -1;
		}
		if (!S_ISDIR(sb.st_mode)) {
			(void)snprintf(err, errlen, "Maildir: %s/ is not a "
			    "directory (#4.3.0)", name);
			return -1;
		}
	}
	(void)snprintf(err, errlen, "Maildir: cannot open %s/: %s (#%s)",
	    name, mda_strerror(saved), mda_errcode(saved));
	return -1;
}

/*
 * Open the Maildir, creating it with tmp/, new/ and cur/ (mode 0700)
 * when it is missing but its parent directory exists.
 */
static int
mda_maildir_open(const char *maildir, char *err, size_t errlen)
{
	int	 fd, saved;

	fd = open(maildir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 && errno == ENOENT) {
		if (mkdir(maildir, 0700) == -1 && errno != EEXIST) {
			saved = errno;
			if (saved == ENOENT)
				(void)snprintf(err, errlen, "Maildir: neither "
				    "the Maildir nor its parent directory "
				    "exists (#4.2.1)");
			else
				(void)snprintf(err, errlen, "Maildir: cannot "
				    "create the Maildir: %s (#%s)",
				    mda_strerror(saved), mda_errcode(saved));
			return -1;
		}
		log_debug("mda: created Maildir %s", maildir);
		fd = open(maildir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd == -1) {
		saved = errno;
		if (saved == ENOTDIR)
			(void)snprintf(err, errlen, "Maildir: the Maildir is "
			    "not a directory (#4.2.1)");
		else
			(void)snprintf(err, errlen, "Maildir: cannot open the "
			    "Maildir: %s (#%s)", mda_strerror(saved),
			    mda_errcode(saved));
		return -1;
	}
	return fd;
}

/*
 * Copy the envelope lines and the whole message (from offset 0) to fd.
 * Returns 0, or -1 with errno and *what saying which side failed.
 */
static int
mda_maildir_copy(int fd, int msgfd, const char *hdr, size_t hdrlen,
    const char **what)
{
	char	*buf;
	off_t	 off = 0;
	ssize_t	 n;
	int	 saved;

	*what = "write";
	if (mda_write_all(fd, hdr, hdrlen) == -1)
		return -1;
	if ((buf = malloc(MDA_COPY_BUF)) == NULL)
		return -1;
	for (;;) {
		n = pread(msgfd, buf, MDA_COPY_BUF, off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			*what = "read";
			goto fail;
		}
		if (n == 0)
			break;
		off += n;
		if (mda_write_all(fd, buf, n) == -1)
			goto fail;
	}
	free(buf);
	return 0;
fail:
	saved = errno;
	free(buf);
	errno = saved;
	return -1;
}

/* Link tmp/name to new/name; rename where hard links are unsupported. */
static int
mda_maildir_link(int tmpfd, int newfd, const char *name)
{
	if (linkat(tmpfd, name, newfd, name, 0) == 0)
		return 0;
	if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP &&
	    errno != ENOSYS)
		return -1;
#ifdef RENAME_NOREPLACE
	return renameat2(tmpfd, name, newfd, name, RENAME_NOREPLACE);
#else
	if (faccessat(newfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		errno = EEXIST;
		return -1;
	}
	return renameat(tmpfd, name, newfd, name);
#endif
}

int
mda_maildir_deliver(const char *maildir, int msgfd, const char *sender,
    const char *rcpt, char *err, size_t errlen)
{
	char		 hdr[SQ_ADDR_MAX * 2 + 64];
	char		 name[NAME_MAX + 1], other[NAME_MAX + 1];
	const char	*what;
	int		 dfd = -1, tmpfd = -1, newfd = -1, curfd = -1, fd = -1;
	int		 hdrlen, i, saved, linked = 0, ret = SQ_TEMPFAIL;

	if ((hdrlen = mda_envelope_header(hdr, sizeof(hdr), sender,
	    rcpt)) == -1) {
		(void)snprintf(err, errlen, "Maildir: unusable envelope "
		    "address (#5.1.3)");
		return SQ_PERMFAIL;
	}
	if ((dfd = mda_maildir_open(maildir, err, errlen)) == -1)
		return SQ_TEMPFAIL;
	if ((tmpfd = mda_maildir_subdir(dfd, "tmp", err, errlen)) == -1 ||
	    (newfd = mda_maildir_subdir(dfd, "new", err, errlen)) == -1 ||
	    (curfd = mda_maildir_subdir(dfd, "cur", err, errlen)) == -1)
		goto done;

	for (i = 0; i < MDA_MAILDIR_TRIES; i++) {
		if (mda_maildir_name(name, sizeof(name)) == -1) {
			(void)snprintf(err, errlen, "Maildir: cannot make a "
			    "file name (#4.3.0)");
			goto done;
		}
		fd = openat(tmpfd, name, O_CREAT | O_EXCL | O_WRONLY |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd != -1 || errno != EEXIST)
			break;
	}
	if (fd == -1) {
		saved = errno;
		(void)snprintf(err, errlen, "Maildir: cannot create a file "
		    "in tmp/: %s (#%s)", mda_strerror(saved),
		    mda_errcode(saved));
		goto done;
	}

	if (mda_maildir_copy(fd, msgfd, hdr, hdrlen, &what) == -1) {
		saved = errno;
		if (strcmp(what, "read") == 0)
			(void)snprintf(err, errlen, "Maildir: cannot read the "
			    "message: %s (#4.3.0)", mda_strerror(saved));
		else
			(void)snprintf(err, errlen, "Maildir: cannot write "
			    "the message: %s (#%s)", mda_strerror(saved),
			    mda_errcode(saved));
		goto unlink_tmp;
	}
	i = fsync(fd);
	saved = errno;
	if (close(fd) == -1 && i == 0) {
		i = -1;
		saved = errno;
	}
	fd = -1;
	if (i == -1) {
		(void)snprintf(err, errlen, "Maildir: cannot write the "
		    "message: %s (#%s)", mda_strerror(saved),
		    mda_errcode(saved));
		goto unlink_tmp;
	}

	for (i = 1;; i++) {
		if (mda_maildir_link(tmpfd, newfd, name) == 0) {
			linked = 1;
			break;
		}
		if (errno != EEXIST || i >= MDA_MAILDIR_TRIES)
			break;
		/* Taken in new/ (the clock stepped back?): a fresh name. */
		if (mda_maildir_name(other, sizeof(other)) == -1 ||
		    renameat(tmpfd, name, tmpfd, other) == -1)
			break;
		(void)strlcpy(name, other, sizeof(name));
	}
	if (!linked) {
		saved = errno;
		(void)snprintf(err, errlen, "Maildir: cannot move the message "
		    "into new/: %s (#%s)", mda_strerror(saved),
		    mda_errcode(saved));
		goto unlink_tmp;
	}
	if (unlinkat(tmpfd, name, 0) == -1 && errno != ENOENT)
		log_warn("mda: Maildir %s: unlink tmp/%s", maildir, name);
	if (fsync(newfd) == -1) {
		saved = errno;
		(void)unlinkat(newfd, name, 0);
		(void)snprintf(err, errlen, "Maildir: cannot sync new/: %s "
		    "(#%s)", mda_strerror(saved), mda_errcode(saved));
		goto done;
	}
	(void)strlcpy(err, MDA_SUCCESS_TEXT, errlen);
	ret = SQ_OK;
	goto done;

unlink_tmp:
	if (fd != -1)
		close(fd);
	fd = -1;
	(void)unlinkat(tmpfd, name, 0);
done:
	if (fd != -1)
		close(fd);
	if (curfd != -1)
		close(curfd);
	if (newfd != -1)
		close(newfd);
	if (tmpfd != -1)
		close(tmpfd);
	if (dfd != -1)
		close(dfd);
	return ret;
}
