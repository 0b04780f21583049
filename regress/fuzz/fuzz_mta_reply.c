/*
 * libFuzzer target for mta/mta_reply.c.  The first input byte picks the
 * options and the largest chunk; the rest is what a server sends, fed
 * once whole and once in chunks whose sizes come from the data, each
 * chunk in a buffer of its own size so ASan sees any overread.  Checks:
 * both feedings give the same replies at the same offsets; consumed never
 * exceeds what was fed; every stored text is printable ASCII (no CR, LF
 * or NUL) within its bounds; codes are in range; a reply written out again
 * in canonical form reads back the same; the EHLO extractor agrees with
 * the code.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../mta/mta_reply.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct event {
	enum mta_reply_status	 status;
	size_t			 end;		/* input offset after it */
	int			 code;
	int			 flags;
	size_t			 nlines;
	uint64_t		 hash;		/* of text and enhanced */
};

struct events {
	struct event	*ev;
	size_t		 n, max;
};

static struct mta_reply_parser	 fuzz_p, fuzz_q;

static uint64_t
fuzz_hash(const struct mta_reply *r)
{
	uint64_t	 h = 14695981039346656037ULL;
	size_t		 i;

	for (i = 0; i < r->textlen; i++)
		h = (h ^ (unsigned char)r->text[i]) * 1099511628211ULL;
	for (i = 0; r->enhanced[i] != '\0'; i++)
		h = (h ^ (unsigned char)r->enhanced[i]) * 1099511628211ULL;
	return h;
}

static void
fuzz_check_reply(const struct mta_reply *r)
{
	const char	*s;
	size_t		 i, len, prev = 0, elen;

	if (r->code < 200 || r->code > 559 || (r->code / 10) % 10 > 5)
		abort();
	if (r->nlines < 1 || r->nlines > MTA_REPLY_LINES_MAX)
		abort();
	if (r->textlen >= MTA_REPLY_TEXT_MAX || r->text[r->textlen] != '\0' ||
	    strlen(r->text) != r->textlen || mta_reply_text(r) != r->text)
		abort();
	for (i = 0; i < r->textlen; i++)
		if ((unsigned char)r->text[i] < 0x20 ||
		    (unsigned char)r->text[i] > 0x7e)
			abort();
	for (i = 0; i < r->nlines; i++) {
		s = mta_reply_line(r, i, &len);
		if (s == NULL || s != r->text + r->line[i].off ||
		    len != r->line[i].len || r->line[i].off < prev ||
		    r->line[i].off + len > r->textlen ||
		    len > MTA_REPLY_LINE_MAX - 6 || r->line[i].enhlen > len)
			abort();
		prev = r->line[i].off + len;
	}
	if (mta_reply_line(r, r->nlines, &len) != NULL || len != 0)
		abort();
	elen = strlen(r->enhanced);
	if (elen >= MTA_REPLY_ENH_MAX || (elen > 0 && (elen < 5 ||
	    r->enhanced[0] != '0' + r->code / 100)))
		abort();
}

static void
fuzz_check_ehlo(const struct mta_reply *r)
{
	struct mta_ehlo	 e;
	int		 ret;

	memset(&e, 0xff, sizeof(e));
	ret = mta_reply_ehlo(r, &e);
	if ((ret == 0) != (r->code == 250))
		abort();
	if (ret == -1 && (e.ext != 0 || e.auth != 0 || e.size != 0))
		abort();
	if (!(e.ext & MTA_EXT_SIZE) && e.size != 0)
		abort();
	if (e.auth != 0 && !(e.ext & MTA_EXT_AUTH))
		abort();
	if (e.auth & ~(uint32_t)(MTA_AUTH_PLAIN | MTA_AUTH_LOGIN |
	    MTA_AUTH_CRAM_MD5))
		abort();
	if (r->nlines == 1 && e.ext != 0)
		abort();	/* the first line is never a keyword */
}

/* Written out as "ddd-text" ... "ddd text", it must read back the same. */
static void
fuzz_check_canonical(const struct mta_reply *r)
{
	char		*b, *q;
	const char	*s;
	size_t		 i, len, used;

	if ((b = malloc(r->textlen + r->nlines * 6)) == NULL)
		abort();
	for (q = b, i = 0; i < r->nlines; i++) {
		s = mta_reply_line(r, i, &len);
		q[0] = '0' + r->code / 100;
		q[1] = '0' + (r->code / 10) % 10;
		q[2] = '0' + r->code % 10;
		q[3] = i + 1 == r->nlines ? ' ' : '-';
		memcpy(q + 4, s, len);
		memcpy(q + 4 + len, "\r\n", 2);
		q += len + 6;
	}
	mta_reply_init(&fuzz_q, MTA_REPLY_CRLF_ONLY);
	if (mta_reply_feed(&fuzz_q, b, q - b, &used) != MTA_REPLY_DONE ||
	    used != (size_t)(q - b) || fuzz_q.reply.code != r->code ||
	    fuzz_q.reply.nlines != r->nlines || fuzz_q.reply.flags != 0 ||
	    fuzz_q.reply.textlen != r->textlen ||
	    memcmp(fuzz_q.reply.text, r->text, r->textlen) != 0 ||
	    strcmp(fuzz_q.reply.enhanced, r->enhanced) != 0)
		abort();
	for (i = 0; i < r->nlines; i++)
		if (fuzz_q.reply.line[i].len != r->line[i].len ||
		    fuzz_q.reply.line[i].enhlen != r->line[i].enhlen)
			abort();
	free(b);
}

static void
fuzz_event(struct events *e, enum mta_reply_status st, size_t end,
    const struct mta_reply_parser *p)
{
	struct event	*ev;

	if (e->n >= e->max)
		abort();
	ev = &e->ev[e->n++];
	memset(ev, 0, sizeof(*ev));
	ev->status = st;
	ev->end = end;
	if (st == MTA_REPLY_ERROR) {
		if (p->error == NULL || mta_reply_pending(p))
			abort();
		return;
	}
	if (mta_reply_pending(p))
		abort();
	fuzz_check_reply(&p->reply);
	ev->code = p->reply.code;
	ev->flags = p->reply.flags;
	ev->nlines = p->reply.nlines;
	ev->hash = fuzz_hash(&p->reply);
}

/*
 * Feed in[0..len) in chunks; step 0: all at once, else chunk sizes
 * 1..step taken from the data.  Stops at the first error.
 */
static void
fuzz_feed(const char *in, size_t len, size_t step, int opts,
    struct events *e, int checks)
{
	struct mta_reply_parser	*p = &fuzz_p;
	enum mta_reply_status	 st;
	size_t			 off = 0, n, k, used;
	char			*chunk;

	e->n = 0;
	mta_reply_init(p, opts);
	while (off < len) {
		n = step == 0 ? len - off :
		    1 + (unsigned char)in[off] % step;
		if (n > len - off)
			n = len - off;
		/* Exactly n bytes, so ASan sees any overread. */
		if ((chunk = malloc(n)) == NULL)
			abort();
		memcpy(chunk, in + off, n);
		for (k = 0; k < n; k += used) {
			st = mta_reply_feed(p, chunk + k, n - k, &used);
			if (used > n - k || (st == MTA_REPLY_MORE &&
			    used != n - k) || (st != MTA_REPLY_MORE &&
			    used == 0))
				abort();
			if (st == MTA_REPLY_MORE)
				continue;
			fuzz_event(e, st, off + k + used, p);
			if (st == MTA_REPLY_ERROR) {
				/* Sticky: nothing more is taken in. */
				if (mta_reply_feed(p, chunk, n, &used) !=
				    MTA_REPLY_ERROR || used != 0)
					abort();
				free(chunk);
				return;
			}
			if (checks) {
				fuzz_check_ehlo(&p->reply);
				fuzz_check_canonical(&p->reply);
			}
		}
		free(chunk);
		off += n;
	}
	/* The end of input: a partial reply is pending, or nothing is. */
	if (e->n < e->max) {
		e->ev[e->n].status = MTA_REPLY_MORE;
		e->ev[e->n].end = len;
		e->ev[e->n].code = mta_reply_pending(p);
		e->n++;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct events	 a, b;
	const char		*in;
	size_t			 len, i, step;
	int			 opts;

	if (size < 1)
		return 0;
	opts = (data[0] & 0x80) ? MTA_REPLY_CRLF_ONLY : 0;
	step = (data[0] & 0x3f) + 1;
	in = (const char *)data + 1;
	len = size - 1;

	/* A reply takes at least 4 bytes ("250\n"): len / 4 + 2 events. */
	a.max = b.max = len / 4 + 2;
	if ((a.ev = calloc(a.max, sizeof(*a.ev))) == NULL ||
	    (b.ev = calloc(b.max, sizeof(*b.ev))) == NULL)
		abort();
	fuzz_feed(in, len, 0, opts, &a, 1);
	fuzz_feed(in, len, step, opts, &b, 0);
	if (a.n != b.n)
		abort();
	for (i = 0; i < a.n; i++)
		if (a.ev[i].status != b.ev[i].status ||
		    a.ev[i].end != b.ev[i].end ||
		    a.ev[i].code != b.ev[i].code ||
		    a.ev[i].flags != b.ev[i].flags ||
		    a.ev[i].nlines != b.ev[i].nlines ||
		    a.ev[i].hash != b.ev[i].hash)
			abort();
	free(a.ev);
	free(b.ev);
	return 0;
}
