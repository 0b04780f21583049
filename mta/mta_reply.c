/*
 * SMTP replies as the client reads them (RFC 5321 4.2), a byte machine
 * fed from the network in any chunking, and the EHLO keywords.
 *
 * A reply is one or more lines "ddd-text" ending in one "ddd text" or
 * "ddd".  The server is untrusted (a malformed or over-long multi-line
 * reply was CVE-2020-8794), so:
 *
 * - The code follows the RFC 5321 4.2 grammar: first digit 2-5, second
 *   0-5, third 0-9.  1xx is not used in SMTP (RFC 5321 4.2.1) and is an
 *   error like any other bad code.  After the digits comes "-", " " or the
 *   line end; anything else (a fourth digit, a tab) is an error.  Every
 *   line of a reply carries the same code, or it is an error.
 * - Lines end in CRLF.  A bare LF also ends a line, as Postfix, qmail and
 *   OpenSMTPD accept from servers: refusing it gains no safety (the line
 *   is parsed and bounded the same either way, the text sanitised) and
 *   would keep mail queued for a broken peer.  The reply is flagged
 *   MTA_REPLY_F_BARELF; MTA_REPLY_CRLF_ONLY makes a bare LF an error.
 *   A CR not followed by LF is text, and sanitised as below.
 * - Bounds, checked as each byte arrives so that nothing ever waits for a
 *   line end to be measured: MTA_REPLY_LINE_MAX octets a line, CRLF
 *   included (RFC 5321 4.5.3.1.5 says 512; servers exceed it, so we allow
 *   4096), MTA_REPLY_LINES_MAX lines, and MTA_REPLY_TEXT_MAX octets of
 *   joined text.  Past any of them the reply is an error, never
 *   truncated: a truncated line must not turn into the start of another.
 * - Text keeps printable US-ASCII (0x20-0x7e); a tab becomes a space;
 *   every other byte (NUL, CR, other controls, DEL, 8-bit) becomes '?' and
 *   flags the reply MTA_REPLY_F_SANITISED.  The text goes into log lines
 *   and bounces, so no CR, LF or NUL can ever be stored.
 * - An RFC 3463 enhanced status code "class.subject.detail" (RFC 2034) is
 *   recognised at the start of a line's text when its class is the first
 *   digit of the code, its parts have 1-3 digits without leading zeros,
 *   and a space or the end of the text follows.  It stays in the text; the
 *   reply's is the first line's that has one.
 *
 * The text of the lines is stored once, joined by a single space, in the
 * reply; each line is an (offset, length) into it.  No allocation.
 */
#include <sys/types.h>

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mta_reply.h"

enum {
	R_START = 0,	/* before the first byte of a reply */
	R_CODE,		/* in the three digits of a line */
	R_SEP,		/* after the digits: '-', ' ' or the line end */
	R_TEXT,		/* in the text of a line */
	R_CR,		/* a CR held: with LF it ends the line, else text */
	R_DONE,		/* a reply complete; the next byte starts another */
	R_ERROR
};

static enum mta_reply_status	mta_reply_fail(struct mta_reply_parser *,
				    const char *);
static enum mta_reply_status	mta_reply_count(struct mta_reply_parser *);
static enum mta_reply_status	mta_reply_digit(struct mta_reply_parser *,
				    unsigned char);
static enum mta_reply_status	mta_reply_put(struct mta_reply_parser *,
				    unsigned char);
static enum mta_reply_status	mta_reply_eol(struct mta_reply_parser *,
				    int);
static enum mta_reply_status	mta_reply_byte(struct mta_reply_parser *,
				    unsigned char);
static size_t	mta_reply_enhanced(int, const char *, size_t);
static int	mta_ehlo_word(const char *, size_t, const char *);
static void	mta_ehlo_size(const char *, size_t, struct mta_ehlo *);
static void	mta_ehlo_auth(const char *, size_t, struct mta_ehlo *);

void
mta_reply_init(struct mta_reply_parser *p, int opts)
{
	p->opts = opts;
	p->state = R_START;
	p->digits = p->code = p->last = 0;
	p->linelen = 0;
	p->error = NULL;
	p->reply.code = p->reply.flags = 0;
	p->reply.enhanced[0] = '\0';
	p->reply.nlines = p->reply.textlen = 0;
	p->reply.text[0] = '\0';
}

int
mta_reply_pending(const struct mta_reply_parser *p)
{
	return p->state != R_START && p->state != R_DONE &&
	    p->state != R_ERROR;
}

const char *
mta_reply_text(const struct mta_reply *r)
{
	return r->text;
}

const char *
mta_reply_line(const struct mta_reply *r, size_t i, size_t *len)
{
	if (i >= r->nlines) {
		*len = 0;
		return NULL;
	}
	*len = r->line[i].len;
	return r->text + r->line[i].off;
}

static enum mta_reply_status
mta_reply_fail(struct mta_reply_parser *p, const char *why)
{
	p->state = R_ERROR;
	p->error = why;
	return MTA_REPLY_ERROR;
}

/* One more octet on the current line, its end excluded. */
static enum mta_reply_status
mta_reply_count(struct mta_reply_parser *p)
{
	if (++p->linelen > MTA_REPLY_LINE_MAX - 2)
		return mta_reply_fail(p, "reply line too long");
	return MTA_REPLY_MORE;
}

/* One of the three digits of a line's code. */
static enum mta_reply_status
mta_reply_digit(struct mta_reply_parser *p, unsigned char c)
{
	struct mta_reply	*r = &p->reply;
	static const char	 hi[] = "559";

	if (p->digits == 0) {
		/* A new line: is there room for it? */
		if (r->nlines >= MTA_REPLY_LINES_MAX)
			return mta_reply_fail(p, "too many reply lines");
		r->line[r->nlines].off = r->textlen;
		r->line[r->nlines].len = r->line[r->nlines].enhlen = 0;
		p->code = p->last = 0;
		p->linelen = 0;
		if (c == '1')
			return mta_reply_fail(p,
			    "1xx reply (not used in SMTP)");
	}
	if (c < (p->digits == 0 ? '2' : '0') || c > hi[p->digits])
		return mta_reply_fail(p, "bad reply code");
	if (mta_reply_count(p) != MTA_REPLY_MORE)
		return MTA_REPLY_ERROR;
	p->code = p->code * 10 + (c - '0');
	if (++p->digits < 3)
		return MTA_REPLY_MORE;
	if (r->nlines > 0 && p->code != r->code)
		return mta_reply_fail(p, "reply code changed within a reply");
	r->code = p->code;
	p->state = R_SEP;
	return MTA_REPLY_MORE;
}

/* One octet of text, sanitised, into the joined text. */
static enum mta_reply_status
mta_reply_put(struct mta_reply_parser *p, unsigned char c)
{
	struct mta_reply	*r = &p->reply;
	struct mta_reply_line	*l = &r->line[r->nlines];
	size_t			 need;

	if (mta_reply_count(p) != MTA_REPLY_MORE)
		return MTA_REPLY_ERROR;
	/* The space before this line's text, when text came before. */
	need = (l->len == 0 && r->textlen > 0) ? 2 : 1;
	if (r->textlen + need >= MTA_REPLY_TEXT_MAX)
		return mta_reply_fail(p, "reply text too long");
	if (need == 2) {
		r->text[r->textlen++] = ' ';
		l->off = r->textlen;
	}
	if (c == '\t')
		c = ' ';
	else if (c < 0x20 || c > 0x7e) {
		c = '?';
		r->flags |= MTA_REPLY_F_SANITISED;
	}
	r->text[r->textlen++] = c;
	r->text[r->textlen] = '\0';
	l->len++;
	return MTA_REPLY_MORE;
}

/* The end of a line; barelf when it was a LF alone. */
static enum mta_reply_status
mta_reply_eol(struct mta_reply_parser *p, int barelf)
{
	struct mta_reply	*r = &p->reply;
	struct mta_reply_line	*l = &r->line[r->nlines];

	if (barelf) {
		if (p->opts & MTA_REPLY_CRLF_ONLY)
			return mta_reply_fail(p, "bare LF in reply");
		r->flags |= MTA_REPLY_F_BARELF;
	}
	l->enhlen = mta_reply_enhanced(r->code / 100, r->text + l->off,
	    l->len);
	if (l->enhlen > 0 && r->enhanced[0] == '\0') {
		/* enhlen <= 9 < MTA_REPLY_ENH_MAX */
		memcpy(r->enhanced, r->text + l->off, l->enhlen);
		r->enhanced[l->enhlen] = '\0';
	}
	r->nlines++;
	p->digits = 0;
	if (!p->last) {
		p->state = R_CODE;
		return MTA_REPLY_MORE;
	}
	p->state = R_DONE;
	return MTA_REPLY_DONE;
}

static enum mta_reply_status
mta_reply_byte(struct mta_reply_parser *p, unsigned char c)
{
	struct mta_reply	*r = &p->reply;

	switch (p->state) {
	case R_START:
		r->code = r->flags = 0;
		r->enhanced[0] = '\0';
		r->nlines = r->textlen = 0;
		r->text[0] = '\0';
		p->digits = 0;
		p->state = R_CODE;
		/* FALLTHROUGH */
	case R_CODE:
		return mta_reply_digit(p, c);
	case R_SEP:
		switch (c) {
		case '-':
		case ' ':
			p->last = c == ' ';
			p->state = R_TEXT;
			return mta_reply_count(p);
		case '\r':
			p->last = 1;
			p->state = R_CR;
			return MTA_REPLY_MORE;
		case '\n':
			p->last = 1;
			return mta_reply_eol(p, 1);
		default:
			if (c >= '0' && c <= '9')
				return mta_reply_fail(p,
				    "reply code of more than three digits");
			return mta_reply_fail(p,
			    "no separator after reply code");
		}
	case R_CR:
		if (c == '\n')
			return mta_reply_eol(p, 0);
		/* A bare CR: only text may hold one, as '?'. */
		if (p->linelen == 3)	/* "ddd" CR: no separator */
			return mta_reply_fail(p,
			    "no separator after reply code");
		p->state = R_TEXT;
		if (mta_reply_put(p, '\r') != MTA_REPLY_MORE)
			return MTA_REPLY_ERROR;
		return mta_reply_byte(p, c);
	case R_TEXT:
		if (c == '\r') {
			p->state = R_CR;
			return MTA_REPLY_MORE;
		}
		if (c == '\n')
			return mta_reply_eol(p, 1);
		return mta_reply_put(p, c);
	default:
		return mta_reply_fail(p, "internal error: bad parser state");
	}
}

enum mta_reply_status
mta_reply_feed(struct mta_reply_parser *p, const char *buf, size_t len,
    size_t *consumed)
{
	enum mta_reply_status	 s;
	size_t			 i;

	*consumed = 0;
	if (p->state == R_ERROR)
		return MTA_REPLY_ERROR;
	if (p->state == R_DONE)
		p->state = R_START;
	for (i = 0; i < len; i++) {
		s = mta_reply_byte(p, (unsigned char)buf[i]);
		if (s != MTA_REPLY_MORE) {
			*consumed = i + 1;
			return s;
		}
	}
	*consumed = len;
	return MTA_REPLY_MORE;
}

/*
 * The length of an RFC 3463 status code at the start of s whose class is
 * cls: "cls.subject.detail", 1-3 digits each without leading zeros, then
 * a space or the end.  0 when there is none.
 */
static size_t
mta_reply_enhanced(int cls, const char *s, size_t len)
{
	size_t	 i, n, part;

	if ((cls != 2 && cls != 4 && cls != 5) || len < 5 ||
	    s[0] != '0' + cls || s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (n = 0; i + n < len && n < 4 && s[i + n] >= '0' &&
		    s[i + n] <= '9'; n++)
			;
		if (n == 0 || n > 3 || (n > 1 && s[i] == '0'))
			return 0;
		i += n;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ')
		return 0;
	return i;
}

/* Whether s (len octets) is the word w, in any case. */
static int
mta_ehlo_word(const char *s, size_t len, const char *w)
{
	return strlen(w) == len && strncasecmp(s, w, len) == 0;
}

/*
 * "SIZE" [SP number] (RFC 1870).  The number is digits alone (spaces
 * around it allowed); anything else, or more than LLONG_MAX, leaves no limit:
 * the server's own check still applies at MAIL or DATA.
 */
static void
mta_ehlo_size(const char *s, size_t len, struct mta_ehlo *e)
{
	char		 num[20];
	const char	*errstr;
	long long	 n;
	size_t		 i;

	e->ext |= MTA_EXT_SIZE;
	e->size = 0;
	while (len > 0 && s[0] == ' ') {
		s++;
		len--;
	}
	while (len > 0 && s[len - 1] == ' ')
		len--;
	if (len == 0 || len >= sizeof(num))
		return;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return;
	memcpy(num, s, len);
	num[len] = '\0';
	n = strtonum(num, 0, LLONG_MAX, &errstr);
	if (errstr == NULL)
		e->size = (uint64_t)n;
}

/* The mechanisms after "AUTH " or "AUTH=", space-separated. */
static void
mta_ehlo_auth(const char *s, size_t len, struct mta_ehlo *e)
{
	size_t	 i = 0, j;

	e->ext |= MTA_EXT_AUTH;
	for (;;) {
		while (i < len && s[i] == ' ')
			i++;
		if (i == len)
			return;
		for (j = i; j < len && s[j] != ' '; j++)
			;
		if (mta_ehlo_word(s + i, j - i, "PLAIN"))
			e->auth |= MTA_AUTH_PLAIN;
		else if (mta_ehlo_word(s + i, j - i, "LOGIN"))
			e->auth |= MTA_AUTH_LOGIN;
		else if (mta_ehlo_word(s + i, j - i, "CRAM-MD5"))
			e->auth |= MTA_AUTH_CRAM_MD5;
		i = j;
	}
}

/*
 * Each line after the first: [enhanced code] keyword [SP params].  An
 * enhanced code has no place here (RFC 2034 3) but some servers send one;
 * it cannot be mistaken for a keyword (keywords hold no '.'), so it is
 * skipped.  Unknown keywords are ignored; a keyword with '=' is one only
 * for the old "AUTH=" form.  When SIZE is given twice the last one counts.
 */
int
mta_reply_ehlo(const struct mta_reply *r, struct mta_ehlo *e)
{
	static const struct {
		const char	*kw;
		uint32_t	 ext;
	} kws[] = {
		{ "PIPELINING",		MTA_EXT_PIPELINING },
		{ "8BITMIME",		MTA_EXT_8BITMIME },
		{ "SMTPUTF8",		MTA_EXT_SMTPUTF8 },
		{ "STARTTLS",		MTA_EXT_STARTTLS },
		{ "ENHANCEDSTATUSCODES", MTA_EXT_ENHANCEDSTATUS },
		{ "CHUNKING",		MTA_EXT_CHUNKING },
		{ "DSN",		MTA_EXT_DSN },
	};
	const char	*s;
	size_t		 i, k, len, kwlen, rest;

	memset(e, 0, sizeof(*e));
	if (r->code != 250)
		return -1;
	for (i = 1; i < r->nlines && i < MTA_REPLY_LINES_MAX; i++) {
		s = r->text + r->line[i].off + r->line[i].enhlen;
		len = r->line[i].len - r->line[i].enhlen;
		while (len > 0 && *s == ' ') {
			s++;
			len--;
		}
		for (kwlen = 0; kwlen < len && s[kwlen] != ' ' &&
		    s[kwlen] != '='; kwlen++)
			;
		rest = kwlen < len ? kwlen + 1 : len;
		if (mta_ehlo_word(s, kwlen, "AUTH")) {
			mta_ehlo_auth(s + rest, len - rest, e);
			continue;
		}
		if (kwlen < len && s[kwlen] == '=')
			continue;
		if (mta_ehlo_word(s, kwlen, "SIZE")) {
			mta_ehlo_size(s + rest, len - rest, e);
			continue;
		}
		for (k = 0; k < sizeof(kws) / sizeof(kws[0]); k++)
			if (mta_ehlo_word(s, kwlen, kws[k].kw)) {
				e->ext |= kws[k].ext;
				break;
			}
	}
	return 0;
}
