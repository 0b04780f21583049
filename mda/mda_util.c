/*
 * Helpers of local delivery that need neither the event loop nor a
 * mailbox: mailbox template expansion, the Delivered-To loop scan, the
 * envelope header lines both writers prepend, error texts.
 */
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mda.h"
#include "sqmail.h"

static char	 mda_host[SQ_DOMAIN_MAX + 1];

/*
 * A name that goes into a path as one component: not empty, no '/', no
 * control byte, not "." or "..", no leading '.' (which also rules out
 * hidden files such as a user's own .qmail or .ssh).
 */
int
mda_localpart_ok(const char *s)
{
	const unsigned char	*p;

	if (s == NULL || *s == '\0' || *s == '.')
		return 0;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p == '/' || *p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/* Append s to buf at *off; 0 or -1 when it does not fit. */
static int
mda_append(char *buf, size_t len, size_t *off, const char *s, size_t slen)
{
	if (slen >= len - *off)
		return -1;
	memcpy(buf + *off, s, slen);
	*off += slen;
	buf[*off] = '\0';
	return 0;
}

/*
 * Expand a mailbox template for one delivery: "~/" at the start is the
 * home directory, "%u" the user, "%l" the local part of addr, "%%" a '%'.
 * A relative result is relative to home; the result is always absolute.
 * It names a Maildir when it ends in '/' or method says so, else an mbox.
 * Returns SQ_OK; SQ_PERMFAIL for a user or local part that must not
 * become part of a path, or a result longer than PATH_MAX; SQ_TEMPFAIL
 * for a bad template or a home that is not absolute (configuration
 * errors: the mail waits until they are fixed).
 */
int
mda_expand(const char *tmpl, enum mbox_method method, const char *user,
    const char *home, const char *addr, char *path, size_t pathlen,
    enum mda_kind *kind, char *err, size_t errlen)
{
	char		 local[SQ_ADDR_MAX];
	char		 out[PATH_MAX];
	const char	*at, *s, *sub;
	size_t		 off = 0, n;

	if (pathlen == 0)
		return SQ_TEMPFAIL;
	path[0] = '\0';
	out[0] = '\0';
	if (tmpl == NULL || *tmpl == '\0')
		tmpl = MDA_DEFAULT_MAILBOX;
	if (home == NULL || home[0] != '/') {
		(void)snprintf(err, errlen, "home directory of %s is not "
		    "an absolute path (#4.3.0)", user);
		return SQ_TEMPFAIL;
	}

	/* The local part: addr up to its last '@'. */
	if ((at = strrchr(addr, '@')) == NULL)
		at = addr + strlen(addr);
	n = at - addr;
	if (n >= sizeof(local)) {
		(void)snprintf(err, errlen, "local part too long (#5.1.3)");
		return SQ_PERMFAIL;
	}
	memcpy(local, addr, n);
	local[n] = '\0';

	n = strlen(home);
	while (n > 0 && home[n - 1] == '/')
		n--;
	s = tmpl;
	if (s[0] == '~' && (s[1] == '/' || s[1] == '\0')) {
		s++;
		if (mda_append(out, sizeof(out), &off, home, n) == -1 ||
		    (s[0] == '\0' && n == 0 &&
		    mda_append(out, sizeof(out), &off, "/", 1) == -1))
			goto toolong;
	} else if (s[0] != '/') {
		/* Relative to home. */
		if (mda_append(out, sizeof(out), &off, home, n) == -1 ||
		    mda_append(out, sizeof(out), &off, "/", 1) == -1)
			goto toolong;
	}

	for (; *s != '\0'; s++) {
		if (*s != '%') {
			if (mda_append(out, sizeof(out), &off, s, 1) == -1)
				goto toolong;
			continue;
		}
		switch (s[1]) {
		case 'u':
			sub = user;
			break;
		case 'l':
			sub = local;
			break;
		case '%':
			sub = "%";
			break;
		default:
			(void)snprintf(err, errlen, "bad mailbox template "
			    "(unknown %%%c) (#4.3.5)", s[1] ? s[1] : ' ');
			return SQ_TEMPFAIL;
		}
		if (sub == user && !mda_localpart_ok(user)) {
			(void)snprintf(err, errlen, "user name is not usable "
			    "in a mailbox path (#5.1.1)");
			return SQ_PERMFAIL;
		}
		if (sub == local && !mda_localpart_ok(local)) {
			(void)snprintf(err, errlen, "local part is not usable "
			    "in a mailbox path (#5.1.3)");
			return SQ_PERMFAIL;
		}
		if (mda_append(out, sizeof(out), &off, sub, strlen(sub)) == -1)
			goto toolong;
		s++;
	}

	if (strlcpy(path, out, pathlen) >= pathlen)
		goto toolong;
	if ((off > 0 && out[off - 1] == '/') || method == MBOX_MAILDIR)
		*kind = MDA_KIND_MAILDIR;
	else
		*kind = MDA_KIND_MBOX;
	return SQ_OK;

toolong:
	path[0] = '\0';
	(void)snprintf(err, errlen, "mailbox path too long (#5.1.3)");
	return SQ_PERMFAIL;
}

/* Whether [p, e) with outer whitespace removed equals addr, any case. */
static int
mda_value_is(const char *p, const char *e, const char *addr)
{
	size_t	 alen = strlen(addr);

	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	return (size_t)(e - p) == alen && alen > 0 &&
	    strncasecmp(p, addr, alen) == 0;
}

/*
 * Scan the header section of a message (buf, len: its start; up to the
 * first empty line) for a Delivered-To field whose unfolded value is rcpt.
 * *hops, when not NULL, gets the number of Received and Delivered-To
 * fields.  Returns 1 when the message is looping, else 0.
 */
int
mda_header_loops(const char *buf, size_t len, const char *rcpt, int *hops)
{
	char		 val[SQ_ADDR_MAX * 2];
	const char	*p = buf, *end = buf + len, *eol, *q, *colon;
	size_t		 vlen = 0, n;
	int		 in_dt = 0, overlong = 0, loops = 0, nhops = 0;

	while (p < end) {
		if ((eol = memchr(p, '\n', end - p)) == NULL)
			eol = end;
		q = eol;
		if (q > p && q[-1] == '\r')
			q--;
		if (q == p)
			break;				/* the empty line */
		if (*p == ' ' || *p == '\t') {
			/* A continuation of the field before. */
			if (in_dt && !overlong) {
				n = q - p;
				if (n >= sizeof(val) - vlen)
					overlong = 1;
				else {
					memcpy(val + vlen, p, n);
					vlen += n;
				}
			}
		} else {
			if (in_dt && !overlong &&
			    mda_value_is(val, val + vlen, rcpt))
				loops = 1;
			in_dt = 0;
			overlong = 0;
			vlen = 0;
			if ((colon = memchr(p, ':', q - p)) != NULL) {
				n = colon - p;
				while (n > 0 && (p[n - 1] == ' ' ||
				    p[n - 1] == '\t'))
					n--;
				if (n == 12 &&
				    strncasecmp(p, "Delivered-To", 12) == 0) {
					in_dt = 1;
					nhops++;
				} else if (n == 8 &&
				    strncasecmp(p, "Received", 8) == 0)
					nhops++;
				if (in_dt) {
					n = q - (colon + 1);
					if (n >= sizeof(val))
						overlong = 1;
					else {
						memcpy(val, colon + 1, n);
						vlen = n;
					}
				}
			}
		}
		p = eol + 1;
	}
	if (in_dt && !overlong && mda_value_is(val, val + vlen, rcpt))
		loops = 1;
	if (hops != NULL)
		*hops = nhops;
	return loops;
}

/*
 * Read the start of the message in fd (from offset 0, whatever the fd's
 * offset) into buf: up to and including the empty line that ends the
 * header section, or len bytes, in which case a partial last line is
 * dropped.  Returns the length, or -1 with errno.
 */
ssize_t
mda_read_header(int fd, char *buf, size_t len)
{
	size_t	 have = 0, from;
	ssize_t	 n;
	char	*p, *e;

	while (have < len) {
		n = pread(fd, buf + have, len - have, (off_t)have);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return have;		/* the whole message */
		from = have > 2 ? have - 2 : 0;
		have += n;
		if (from == 0 && buf[0] == '\n')
			return 1;
		if (from == 0 && have >= 2 && buf[0] == '\r' && buf[1] == '\n')
			return 2;
		/* Look for "\n\n" or "\n\r\n" in the new bytes. */
		for (p = buf + from; (p = memchr(p, '\n', buf + have - p)) !=
		    NULL; p++) {
			e = p + 1;
			if (e < buf + have && *e == '\r')
				e++;
			if (e < buf + have && *e == '\n')
				return e + 1 - buf;
		}
	}
	/* Full: cut a line that may go on. */
	if ((p = memrchr(buf, '\n', have)) == NULL)
		return 0;
	return p + 1 - buf;
}

/* Whether s may go into a header line: no control bytes, no newline. */
static int
mda_text_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/*
 * The lines both writers put before the message.  Returns their length,
 * or -1 when an address holds a control byte or they do not fit.
 */
int
mda_envelope_header(char *buf, size_t len, const char *sender,
    const char *rcpt)
{
	int	 n;

	if (!mda_text_ok(sender) || !mda_text_ok(rcpt))
		return -1;
	n = snprintf(buf, len, "Return-Path: <%s>\nDelivered-To: %s\n",
	    sender, rcpt);
	if (n < 0 || (size_t)n >= len)
		return -1;
	return n;
}

void
mda_set_hostname(const char *name)
{
	if (name != NULL && *name != '\0' &&
	    strlcpy(mda_host, name, sizeof(mda_host)) < sizeof(mda_host))
		return;
	if (gethostname(mda_host, sizeof(mda_host)) == -1 ||
	    mda_host[0] == '\0')
		(void)strlcpy(mda_host, "localhost", sizeof(mda_host));
	mda_host[sizeof(mda_host) - 1] = '\0';
}

const char *
mda_hostname(void)
{
	if (mda_host[0] == '\0')
		mda_set_hostname(NULL);
	return mda_host;
}

/* A short reason for a failed file operation, for the delivery report. */
const char *
mda_strerror(int e)
{
	switch (e) {
	case ENOSPC:
		return "disk full";
	case EDQUOT:
		return "disk quota exceeded";
	case EIO:
		return "I/O error";
	case EROFS:
		return "file system is read-only";
	case EACCES:
	case EPERM:
		return "permission denied";
	case ENOENT:
		return "no such file or directory";
	case ENOTDIR:
		return "a path component is not a directory";
	case ELOOP:
		return "refusing to follow a symbolic link";
	case EFBIG:
		return "file too large";
	case EMFILE:
	case ENFILE:
		return "too many open files";
	case ENOMEM:
		return "out of memory";
	case ESTALE:
		return "stale file handle";
	default:
		return strerror(e);
	}
}

/* The enhanced status code (RFC 3463) of a temporary failure for errno. */
const char *
mda_errcode(int e)
{
	switch (e) {
	case ENOSPC:
		return "4.3.1";
	case EDQUOT:
	case EFBIG:
		return "4.2.2";
	default:
		return "4.3.0";
	}
}

/* write(2) until everything is out; 0, or -1 with errno. */
int
mda_write_all(int fd, const void *buf, size_t len)
{
	const char	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}
