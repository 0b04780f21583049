/*
 * The DATA phase as a pure byte machine (RFC 5321 4.1.1.4, 4.5.2).
 *
 * Only CRLF "." CRLF ends the data: a bare LF or a bare CR never ends a
 * line, so "\n.\n", "\n.\r\n", "\r.\r" and "\r\n.\n" are content (the
 * SMTP smuggling family of 2023).  A line starting with "." loses that
 * dot when more follows it.  CRLF is stored as LF; bare CR and bare LF are
 * stored as they are and flagged.  Line length, size and the hop count are
 * measured on what is stored; once the message is refused nothing more is
 * output, but input is still consumed to its end.
 */
#include <sys/types.h>

#include <string.h>

#include "smtp.h"
#include "sqmail.h"

enum {
	D_BOL = 0,	/* at the start of an SMTP line */
	D_MID,		/* inside a line */
	D_CR,		/* a CR held: CRLF or a bare CR */
	D_DOT,		/* "." at the start of a line */
	D_DOTCR,	/* "." CR at the start of a line */
	D_DONE
};

enum {
	H_LINESTART = 0,	/* start of a header line */
	H_NAME,			/* collecting a field name */
	H_SKIP,			/* rest of the line */
	H_BODY			/* past the header section */
};

static void	smtp_data_header(struct smtp_data *, char);
static void	smtp_data_emit(struct smtp_data *, char, char *, size_t *);

void
smtp_data_init(struct smtp_data *d, uint64_t max, int barelf_reject)
{
	memset(d, 0, sizeof(*d));
	d->max = max;
	d->barelf_reject = barelf_reject;
	d->state = D_BOL;
	d->hstate = H_LINESTART;
}

int
smtp_data_refused(const struct smtp_data *d)
{
	if (d->flags & (SMTP_DATA_LONGLINE | SMTP_DATA_TOOBIG |
	    SMTP_DATA_LOOP))
		return 1;
	return d->barelf_reject && (d->flags & SMTP_DATA_BARELF);
}

/* Count Received: and Delivered-To: fields in the header section. */
static void
smtp_data_header(struct smtp_data *d, char c)
{
	switch (d->hstate) {
	case H_BODY:
		return;
	case H_LINESTART:
		if (c == '\n') {
			d->hstate = H_BODY;
			return;
		}
		if (c == ' ' || c == '\t') {
			d->hstate = H_SKIP;	/* a continuation line */
			return;
		}
		d->hlen = 0;
		d->hstate = H_NAME;
		/* FALLTHROUGH */
	case H_NAME:
		if (c == '\n') {
			d->hstate = H_LINESTART;
		} else if (c == ':') {
			if ((d->hlen == 8 &&
			    memcmp(d->hname, "received", 8) == 0) ||
			    (d->hlen == 12 &&
			    memcmp(d->hname, "delivered-to", 12) == 0)) {
				if (++d->hops > SQ_HOPS_MAX)
					d->flags |= SMTP_DATA_LOOP;
			}
			d->hstate = H_SKIP;
		} else if (d->hlen < sizeof(d->hname)) {
			if (c >= 'A' && c <= 'Z')
				c = c - 'A' + 'a';
			d->hname[d->hlen++] = c;
		} else
			d->hstate = H_SKIP;
		return;
	case H_SKIP:
		if (c == '\n')
			d->hstate = H_LINESTART;
		return;
	}
}

/* One byte of content: account for it, then store it unless refused. */
static void
smtp_data_emit(struct smtp_data *d, char c, char *out, size_t *n)
{
	if (c == '\n')
		d->linelen = 0;
	else if (++d->linelen > SQ_TEXTLINE_MAX - 2)
		d->flags |= SMTP_DATA_LONGLINE;
	d->size++;
	if (d->max != 0 && d->size > d->max)
		d->flags |= SMTP_DATA_TOOBIG;
	smtp_data_header(d, c);
	if (!smtp_data_refused(d))
		out[(*n)++] = c;
}

size_t
smtp_data_feed(struct smtp_data *d, const char *in, size_t len, char *out,
    size_t *outlen)
{
	size_t	 i, n = 0;
	char	 c;

	for (i = 0; i < len && d->state != D_DONE; i++) {
		c = in[i];
		switch (d->state) {
		case D_BOL:
			if (c == '.') {
				d->state = D_DOT;
				continue;
			}
			break;
		case D_DOT:
			if (c == '\r') {
				d->state = D_DOTCR;
				continue;
			}
			/* The dot was stuffing: drop it, c is content. */
			break;
		case D_DOTCR:
			if (c == '\n') {
				d->state = D_DONE;
				d->flags |= SMTP_DATA_DONE;
				continue;
			}
			/* ".\r" then more: the dot was stuffing, CR is bare. */
			d->flags |= SMTP_DATA_BARECR;
			smtp_data_emit(d, '\r', out, &n);
			break;
		case D_CR:
			if (c == '\n') {
				smtp_data_emit(d, '\n', out, &n);
				d->state = D_BOL;
				continue;
			}
			d->flags |= SMTP_DATA_BARECR;
			smtp_data_emit(d, '\r', out, &n);
			break;
		default:
			break;
		}
		/* c is inside a line. */
		if (c == '\r') {
			d->state = D_CR;
			continue;
		}
		if (c == '\n')
			d->flags |= SMTP_DATA_BARELF;
		smtp_data_emit(d, c, out, &n);
		d->state = D_MID;
	}
	*outlen = n;
	return i;
}
