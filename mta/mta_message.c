/*
 * The SMTP client's side of a message: the DATA encoder and the pre-pass
 * that measures the stored file, and the MAIL and RCPT commands.  The
 * decisions (bare CR, long lines, SMTPUTF8) are explained in
 * mta_message.h; delivery reports are plain text that the queue escapes
 * for its log.
 *
 * The encoder is a byte machine with a fast path for runs of ordinary
 * octets.  Each input octet produces at most two output octets ("\r\n" for
 * a line end, ".." for a dot starting a line); they are kept in owed[] when
 * the output is full, so any output size, down to one octet, works and the
 * output does not depend on how input or output are cut.  The scan runs
 * the same machine without output, so the two always agree.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mta_message.h"
#include "mta_reply.h"
#include "sqmail.h"

#define MTA_SCAN_BUF	16384

enum {
	E_BOL = 0,	/* at the start of a line */
	E_CR,		/* at the start of a line a CR ended: LF is dropped */
	E_MID,		/* inside a line */
	E_END,		/* the final "." CRLF is owed */
	E_DONE,
	E_ERROR
};

struct mta_out {
	char	*buf;
	size_t	 size;		/* of buf, NUL included */
	size_t	 len;
	int	 cut;		/* something did not fit */
};

static void	mta_data_owe(struct mta_data_enc *, const char *, size_t);
static int	mta_data_byte(struct mta_data_enc *, unsigned char);
static size_t	mta_data_run(struct mta_data_enc *, const char *, size_t);
static void	mta_data_end(struct mta_data_enc *);
static enum mta_data_status mta_data_fail(struct mta_data_enc *,
		    const char *);
static size_t	mta_data_pay(struct mta_data_enc *, char *, size_t);

static size_t	mta_utf8_len(const unsigned char *, size_t);
static int	mta_atext(unsigned char);
static int	mta_text_ok(const char *, size_t, int);
static int	mta_is_dotstring(const char *, size_t);
static int	mta_domain_ok(const char *, size_t, int);
static void	mta_put(struct mta_out *, const char *, size_t);
static int	mta_cmd_path(struct mta_out *, const char *, size_t, int, int);
static int	mta_cmd_end(struct mta_out *, char *, size_t);

void
mta_data_init(struct mta_data_enc *e, uint64_t linemax)
{
	memset(e, 0, sizeof(*e));
	e->linemax = linemax;
	e->state = E_BOL;
}

static void
mta_data_owe(struct mta_data_enc *e, const char *s, size_t len)
{
	memcpy(e->owed + e->nowed, s, len);
	e->nowed += len;
}

/*
 * One octet in the slow path, with nothing owed.  Returns -1, leaving the
 * octet unconsumed, when it would make the line longer than the limit.
 */
static int
mta_data_byte(struct mta_data_enc *e, unsigned char c)
{
	char	 ch = c;

	if (c == '\n' && e->state == E_CR) {
		/* CR LF stored: the CR already sent the line end. */
		e->info.size++;
		e->state = E_BOL;
		return 0;
	}
	if (c == '\r' || c == '\n') {
		if (c == '\r')
			e->info.flags |= MTA_MSG_CR;
		mta_data_owe(e, "\r\n", 2);
		e->info.size++;
		e->info.smtpsize += 2;
		e->linelen = 0;
		e->state = c == '\r' ? E_CR : E_BOL;
		return 0;
	}
	if (e->linelen >= MTA_LINE_MAX)
		e->info.flags |= MTA_MSG_LONG;
	if (e->linemax != 0 && e->linelen >= e->linemax)
		return -1;
	if (c == '.' && e->state != E_MID)
		mta_data_owe(e, ".", 1);	/* RFC 5321 4.5.2 */
	mta_data_owe(e, &ch, 1);
	if (c >= 0x80)
		e->info.flags |= MTA_MSG_8BIT;
	else if (c == '\0')
		e->info.flags |= MTA_MSG_NUL;
	e->info.size++;
	e->info.smtpsize++;
	if (++e->linelen > e->info.maxline)
		e->info.maxline = e->linelen;
	e->state = E_MID;
	return 0;
}

/*
 * Inside a line: account for the run of octets at the start of s that
 * are neither CR nor LF, at most len of them, and return how many.  The
 * caller limits len to what the line may still take.
 */
static size_t
mta_data_run(struct mta_data_enc *e, const char *s, size_t len)
{
	const unsigned char	*u = (const unsigned char *)s;
	size_t			 n;
	int			 f = 0;

	for (n = 0; n < len; n++) {
		if (u[n] == '\r' || u[n] == '\n')
			break;
		if (u[n] >= 0x80)
			f |= MTA_MSG_8BIT;
		else if (u[n] == '\0')
			f |= MTA_MSG_NUL;
	}
	e->info.flags |= f;
	e->info.size += n;
	e->info.smtpsize += n;
	e->linelen += n;
	if (e->linelen > MTA_LINE_MAX)
		e->info.flags |= MTA_MSG_LONG;
	if (e->linelen > e->info.maxline)
		e->info.maxline = e->linelen;
	return n;
}

/* The end of the input: a line end if the last line has none, then ".". */
static void
mta_data_end(struct mta_data_enc *e)
{
	if (e->state == E_MID) {
		e->info.flags |= MTA_MSG_NOEOL;
		e->info.smtpsize += 2;
		mta_data_owe(e, "\r\n", 2);
	}
	mta_data_owe(e, ".\r\n", 3);
	e->state = E_END;
}

static enum mta_data_status
mta_data_fail(struct mta_data_enc *e, const char *why)
{
	e->state = E_ERROR;
	e->error = why;
	return MTA_DATA_ERROR;
}

/* Output what is owed, as far as out[0..len) goes; returns how much. */
static size_t
mta_data_pay(struct mta_data_enc *e, char *out, size_t len)
{
	size_t	 n;

	n = e->nowed - e->owedoff;
	if (n > len)
		n = len;
	memcpy(out, e->owed + e->owedoff, n);
	e->owedoff += n;
	if (e->owedoff == e->nowed)
		e->nowed = e->owedoff = 0;
	e->wire += n;
	return n;
}

enum mta_data_status
mta_data_feed(struct mta_data_enc *e, const char *in, size_t inlen,
    size_t *consumed, char *out, size_t outlen, size_t *produced)
{
	size_t	 i = 0, o = 0, n;

	*consumed = *produced = 0;
	if (e->state == E_ERROR)
		return MTA_DATA_ERROR;
	if (e->state == E_END || e->state == E_DONE)
		return mta_data_fail(e, "message data after its end");
	for (;;) {
		o += mta_data_pay(e, out + o, outlen - o);
		if (e->nowed > 0 || i == inlen)
			break;
		if (e->state == E_MID && o < outlen) {
			/* The fast path: ordinary octets, copied as is. */
			n = inlen - i;
			if (n > outlen - o)
				n = outlen - o;
			if (e->linemax != 0 && n > e->linemax - e->linelen)
				n = e->linemax - e->linelen;
			n = mta_data_run(e, in + i, n);
			memcpy(out + o, in + i, n);
			e->wire += n;
			i += n;
			o += n;
			if (n > 0)
				continue;
		}
		if (mta_data_byte(e, (unsigned char)in[i]) == -1) {
			*consumed = i;
			*produced = o;
			return mta_data_fail(e, MTA_LINE_REASON);
		}
		i++;
	}
	*consumed = i;
	*produced = o;
	return MTA_DATA_MORE;
}

enum mta_data_status
mta_data_finish(struct mta_data_enc *e, char *out, size_t outlen,
    size_t *produced)
{
	size_t	 o = 0;

	*produced = 0;
	switch (e->state) {
	case E_ERROR:
		return MTA_DATA_ERROR;
	case E_DONE:
		return MTA_DATA_DONE;
	case E_END:
		break;
	default:
		/* Owed octets of the last input come before the end. */
		o = mta_data_pay(e, out, outlen);
		if (e->nowed > 0) {
			*produced = o;
			return MTA_DATA_MORE;
		}
		mta_data_end(e);
		break;
	}
	o += mta_data_pay(e, out + o, outlen - o);
	*produced = o;
	if (e->nowed > 0)
		return MTA_DATA_MORE;
	e->state = E_DONE;
	return MTA_DATA_DONE;
}

int
mta_message_scan(int fd, struct mta_message_info *info)
{
	struct mta_data_enc	 e;
	char			 buf[MTA_SCAN_BUF];
	off_t			 off = 0;
	ssize_t			 r;
	size_t			 i, n;

	mta_data_init(&e, 0);
	for (;;) {
		if ((r = pread(fd, buf, sizeof(buf), off)) == -1) {
			if (errno == EINTR)
				continue;
			memset(info, 0, sizeof(*info));
			return -1;
		}
		if (r == 0)
			break;
		off += r;
		n = (size_t)r;
		for (i = 0; i < n; ) {
			if (e.state == E_MID) {
				i += mta_data_run(&e, buf + i, n - i);
				if (i == n)
					break;
			}
			(void)mta_data_byte(&e, (unsigned char)buf[i++]);
			e.nowed = 0;	/* nothing is output */
		}
	}
	mta_data_end(&e);
	*info = e.info;
	return 0;
}

int
mta_message_sendable(const struct mta_message_info *info, const char **why)
{
	*why = NULL;
	if (info->maxline > MTA_LINE_MAX || (info->flags & MTA_MSG_LONG)) {
		*why = MTA_LINE_REASON;
		return 0;
	}
	return 1;
}

/*
 * The length of the well-formed UTF-8 sequence of two to four octets at
 * the start of s (RFC 3629 4: no overlong forms, no surrogates, nothing
 * past U+10FFFF), or 0.
 */
static size_t
mta_utf8_len(const unsigned char *s, size_t len)
{
	unsigned char	 lo = 0x80, hi = 0xbf;
	size_t		 n, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;
		else if (s[0] == 0xed)
			hi = 0x9f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		if (s[0] == 0xf0)
			lo = 0x90;
		else if (s[0] == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* atext of RFC 5322 3.2.3; 8-bit octets are checked by mta_text_ok(). */
static int
mta_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c >= 0x80)
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/*
 * Whether s holds no control octet, and 8-bit octets only as well-formed
 * UTF-8 when utf8 is allowed.
 */
static int
mta_text_ok(const char *s, size_t len, int utf8)
{
	const unsigned char	*u = (const unsigned char *)s;
	size_t			 i, n;

	for (i = 0; i < len; ) {
		if (u[i] < 0x20 || u[i] == 0x7f)
			return 0;
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		if (!utf8 || (n = mta_utf8_len(u + i, len - i)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

/* Dot-string of RFC 5321 4.1.2 (RFC 6531 3.3 with UTF-8). */
static int
mta_is_dotstring(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i - 1] == '.')
				return 0;
		} else if (!mta_atext((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

/* A domain name or an address literal, as described in the header. */
static int
mta_domain_ok(const char *d, size_t len, int utf8)
{
	const unsigned char	*u = (const unsigned char *)d;
	size_t			 i, label = 0;

	if (len == 0 || len > SQ_DOMAIN_MAX)
		return 0;
	if (d[0] == '[') {
		if (len < 3 || d[len - 1] != ']')
			return 0;
		for (i = 1; i < len - 1; i++)
			if (!((u[i] >= 'a' && u[i] <= 'z') ||
			    (u[i] >= 'A' && u[i] <= 'Z') ||
			    (u[i] >= '0' && u[i] <= '9') ||
			    u[i] == '.' || u[i] == ':' || u[i] == '-'))
				return 0;
		return 1;
	}
	if (!mta_text_ok(d, len, utf8))
		return 0;
	for (i = 0; i < len; i++) {
		if (u[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((u[i] >= 'a' && u[i] <= 'z') ||
		    (u[i] >= 'A' && u[i] <= 'Z') ||
		    (u[i] >= '0' && u[i] <= '9') ||
		    u[i] == '-' || u[i] == '_' || u[i] >= 0x80))
			return 0;
		label++;
	}
	return label > 0;
}

/* Append s[0..len) to o, or mark it cut when it does not fit. */
static void
mta_put(struct mta_out *o, const char *s, size_t len)
{
	if (o->cut || len >= o->size - o->len) {
		o->cut = 1;
		return;
	}
	memcpy(o->buf + o->len, s, len);
	o->len += len;
	o->buf[o->len] = '\0';
}

/*
 * "<" path ">" for addr, as mta_cmd_mail() describes.  Returns 0, or -1
 * when the address is refused.
 */
static int
mta_cmd_path(struct mta_out *o, const char *addr, size_t len, int flags,
    int rcpt)
{
	char		 local[SQ_LINE_MAX];
	const char	*at;
	size_t		 i, llen = 0, dom;
	int		 utf8 = (flags & MTA_CMD_SMTPUTF8) != 0;

	if (len == 0) {
		if (rcpt)
			return -1;
		mta_put(o, "<>", 2);
		return 0;
	}
	if (addr[0] == '"') {
		/* A quoted string: its content, unescaped, then '@'. */
		for (i = 1; i < len && addr[i] != '"'; i++) {
			if (addr[i] == '\\' && ++i == len)
				return -1;
			if (llen == sizeof(local))
				return -1;
			local[llen++] = addr[i];
		}
		if (i + 1 >= len || addr[i + 1] != '@')
			return -1;
		dom = i + 2;
	} else {
		if ((at = memrchr(addr, '@', len)) == NULL) {
			/* RFC 5321 4.1.1.3: only <Postmaster> has no domain. */
			if (!rcpt || len != 10 ||
			    strncasecmp(addr, "postmaster", 10) != 0)
				return -1;
			mta_put(o, "<", 1);
			mta_put(o, addr, len);
			mta_put(o, ">", 1);
			return 0;
		}
		llen = at - addr;
		if (llen == 0 || llen > sizeof(local))
			return -1;
		memcpy(local, addr, llen);
		if (memchr(local, '<', llen) != NULL ||
		    memchr(local, '>', llen) != NULL)
			return -1;
		dom = llen + 1;
	}
	if (!mta_text_ok(local, llen, utf8) ||
	    !mta_domain_ok(addr + dom, len - dom, utf8))
		return -1;

	mta_put(o, "<", 1);
	if (mta_is_dotstring(local, llen))
		mta_put(o, local, llen);
	else {
		mta_put(o, "\"", 1);
		for (i = 0; i < llen; i++) {
			if (local[i] == '"' || local[i] == '\\')
				mta_put(o, "\\", 1);
			mta_put(o, local + i, 1);
		}
		mta_put(o, "\"", 1);
	}
	mta_put(o, "@", 1);
	mta_put(o, addr + dom, len - dom);
	mta_put(o, ">", 1);
	return 0;
}

/* CRLF, then the bounds; the command's length or -1. */
static int
mta_cmd_end(struct mta_out *o, char *out, size_t outlen)
{
	mta_put(o, "\r\n", 2);
	if (o->cut || o->len > SQ_LINE_MAX) {
		if (outlen > 0)
			out[0] = '\0';
		return -1;
	}
	return (int)o->len;
}

/* The verb and the path of a command into out; -1 when out is empty. */
static int
mta_cmd_start(struct mta_out *o, char *out, size_t outlen, const char *verb,
    const char *addr, size_t len, int flags, int rcpt)
{
	memset(o, 0, sizeof(*o));
	o->buf = out;
	o->size = outlen;
	if (outlen == 0)
		return -1;
	out[0] = '\0';
	mta_put(o, verb, strlen(verb));
	if (mta_cmd_path(o, addr, len, flags, rcpt) == -1)
		o->cut = 1;
	return 0;
}

int
mta_cmd_mail(char *out, size_t outlen, const char *addr, size_t len,
    uint64_t size, int flags)
{
	struct mta_out	 o;
	char		 num[32];
	int		 n;

	if (mta_cmd_start(&o, out, outlen, "MAIL FROM:", addr, len, flags,
	    0) == -1)
		return -1;
	if (flags & MTA_CMD_SIZE) {
		n = snprintf(num, sizeof(num), " SIZE=%llu",
		    (unsigned long long)size);
		if (n < 0 || (size_t)n >= sizeof(num))
			o.cut = 1;
		else
			mta_put(&o, num, n);
	}
	if (flags & MTA_CMD_8BITMIME)
		mta_put(&o, " BODY=8BITMIME", 14);
	if (flags & MTA_CMD_SMTPUTF8)
		mta_put(&o, " SMTPUTF8", 9);
	return mta_cmd_end(&o, out, outlen);
}

int
mta_cmd_rcpt(char *out, size_t outlen, const char *addr, size_t len,
    int flags)
{
	struct mta_out	 o;

	if (mta_cmd_start(&o, out, outlen, "RCPT TO:", addr, len, flags,
	    1) == -1)
		return -1;
	return mta_cmd_end(&o, out, outlen);
}
