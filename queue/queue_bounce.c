/*
 * Bounce messages in QSBMF, the qmail-send bounce message format: a
 * paragraph for people that starts "Hi. This is the", one paragraph per
 * failed recipient that starts "<address>:", a break paragraph that starts
 * "---", then the original message.  Composition is pure.
 */
#include <sys/types.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue.h"
#include "sqmail.h"

struct bounce_buf {
	char	*buf;
	size_t	 len;
	size_t	 size;
	int	 failed;
	const char *eol;
};

static void
bb_add(struct bounce_buf *b, const char *s, size_t n)
{
	char	*nb;
	size_t	 nsize;

	if (b->failed)
		return;
	if (b->size - b->len < n + 1) {
		nsize = b->size ? b->size : 4096;
		while (nsize - b->len < n + 1) {
			if (nsize > SIZE_MAX / 2) {
				b->failed = 1;
				return;
			}
			nsize *= 2;
		}
		if ((nb = realloc(b->buf, nsize)) == NULL) {
			b->failed = 1;
			return;
		}
		b->buf = nb;
		b->size = nsize;
	}
	memcpy(b->buf + b->len, s, n);
	b->len += n;
	b->buf[b->len] = '\0';
}

/* One line of text, with the line ending of the original. */
static void
bb_line(struct bounce_buf *b, const char *fmt, ...)
    __attribute__((__format__ (printf, 2, 3)));

static void
bb_line(struct bounce_buf *b, const char *fmt, ...)
{
	char	 line[SQ_TEXTLINE_MAX];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = 1;
		return;
	}
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	bb_add(b, line, n);
	bb_add(b, b->eol, strlen(b->eol));
}

/* RFC 5322 date in UTC, without the locale. */
static void
bounce_date(time_t t, char *buf, size_t len)
{
	static const char *const days[] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char *const months[] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	struct tm	 tm;

	if (gmtime_r(&t, &tm) == NULL) {
		t = 0;
		(void)gmtime_r(&t, &tm);
	}
	(void)snprintf(buf, len, "%s, %d %s %d %02d:%02d:%02d +0000",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Printable ASCII only in what we write ourselves. */
static void
bounce_clean(const char *in, char *out, size_t len)
{
	size_t	 i;

	for (i = 0; in[i] != '\0' && i + 1 < len; i++)
		out[i] = ((unsigned char)in[i] < 0x20 ||
		    (unsigned char)in[i] >= 0x7f) ? '?' : in[i];
	out[i] = '\0';
}

char *
bounce_compose(const struct bounce_params *bp, size_t *lenp)
{
	struct bounce_buf	 b;
	char			 date[64], addr[SQ_ADDR_MAX];
	char			 err[SQ_ERROR_MAX];
	size_t			 i, quote;
	int			 cut;

	memset(&b, 0, sizeof(b));
	b.eol = "\n";
	/* Answer in the line ending the original uses. */
	if (bp->origlen > 0) {
		const char *nl = memchr(bp->orig, '\n', bp->origlen);

		if (nl != NULL && nl > bp->orig && nl[-1] == '\r')
			b.eol = "\r\n";
	}

	/* How much of the original fits: cut at a line end if there is one. */
	quote = bp->origlen < bp->maxquote ? bp->origlen : bp->maxquote;
	if (quote < bp->origlen) {
		for (i = quote; i > 0; i--)
			if (bp->orig[i - 1] == '\n')
				break;
		if (i > 0)
			quote = i;
	}
	cut = (uint64_t)quote < bp->origsize;

	bounce_date(bp->now, date, sizeof(date));
	bb_line(&b, "Date: %s", date);
	bb_line(&b, "From: MAILER-DAEMON@%s", bp->hostname);
	bounce_clean(bp->to, addr, sizeof(addr));
	bb_line(&b, "To: %s", addr);
	bb_line(&b, "Subject: failure notice");
	bb_line(&b, "Message-ID: <%" PRIu64 ".bounce@%s>", bp->id,
	    bp->hostname);
	bb_line(&b, "Auto-Submitted: auto-replied");
	bb_line(&b, "%s", "");

	bb_line(&b, "Hi. This is the sqmail queue at %s.", bp->hostname);
	if (bp->dbounce) {
		bb_line(&b, "A failure notice I sent could not be delivered "
		    "either, so it");
		bb_line(&b, "comes to you, the postmaster.  Why it failed is "
		    "explained below,");
		bb_line(&b, "followed by the notice itself.");
	} else {
		bb_line(&b, "Your message could not be delivered to the "
		    "addresses below.");
		bb_line(&b, "These failures are permanent: the message will "
		    "not be tried again.");
	}
	if (cut)
		bb_line(&b, "The copy below holds only the first %zu of "
		    "%" PRIu64 " octets.", quote, bp->origsize);
	bb_line(&b, "%s", "");

	for (i = 0; i < bp->nrcpt; i++) {
		bounce_clean(bp->rcpts[i].addr, addr, sizeof(addr));
		bb_line(&b, "<%s>:", addr);
		bounce_clean(bp->rcpts[i].error ? bp->rcpts[i].error : "",
		    err, sizeof(err));
		bb_line(&b, "%s", err[0] ? err :
		    "The delivery failed without giving a reason.");
		bb_line(&b, "%s", "");
	}

	bb_line(&b, "--- Below this line is a copy of the message.");
	bb_line(&b, "%s", "");
	bounce_clean(bp->return_path ? bp->return_path : "", addr,
	    sizeof(addr));
	bb_line(&b, "Return-Path: <%s>", addr);
	if (quote > 0) {
		bb_add(&b, bp->orig, quote);
		if (bp->orig[quote - 1] != '\n')
			bb_add(&b, b.eol, strlen(b.eol));
	}
	if (b.failed) {
		free(b.buf);
		return NULL;
	}
	*lenp = b.len;
	return b.buf;
}

void
bounce_logtext(const char *in, char *out, size_t len)
{
	size_t	 i;

	if (len == 0)
		return;
	for (i = 0; in[i] != '\0' && i + 1 < len; i++) {
		if (in[i] == ' ')
			out[i] = '_';
		else if (in[i] == '\n')
			out[i] = '/';
		else if ((unsigned char)in[i] < 0x20 || in[i] == 0x7f)
			out[i] = '?';
		else
			out[i] = in[i];
	}
	out[i] = '\0';
}
