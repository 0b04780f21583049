/*
 * libFuzzer target for smtpd/smtp_data.c.  The first input byte picks the
 * chunk size; the rest is the data stream.  Checks: output fits the
 * documented bound; chunking does not change the result; and a message
 * that ended cleanly (no bare CR/LF, not refused), encoded again for SMTP,
 * gives back the same stored bytes.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sqmail.h"
#include "../../smtpd/smtp.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct fuzz_run {
	char		*out;
	size_t		 outlen;
	size_t		 consumed;
	struct smtp_data d;
};

static void
fuzz_feed(const char *in, size_t len, size_t step, uint64_t max, int rej,
    struct fuzz_run *r)
{
	size_t	 i, n, used;
	char	*chunk;

	if ((r->out = malloc(len + 1)) == NULL)
		abort();
	r->outlen = r->consumed = 0;
	smtp_data_init(&r->d, max, rej);
	for (i = 0; i < len; i += used) {
		n = len - i < step ? len - i : step;
		/* Exactly n + 1 bytes, so ASan sees any overrun. */
		if ((chunk = malloc(n + 1)) == NULL)
			abort();
		used = smtp_data_feed(&r->d, in + i, n, chunk, &n);
		if (used == 0 && !(r->d.flags & SMTP_DATA_DONE))
			abort();
		memcpy(r->out + r->outlen, chunk, n);
		free(chunk);
		r->outlen += n;
		r->consumed += used;
		if (r->outlen > len + 1)
			abort();
		if (r->d.flags & SMTP_DATA_DONE)
			break;
	}
}

/* LF to CRLF, a dot doubled at each line start, then CRLF.CRLF. */
static char *
fuzz_encode(const char *s, size_t len, size_t *outlen)
{
	char	*e;
	size_t	 i, n = 0;
	int	 bol = 1;

	if ((e = malloc(len * 3 + 8)) == NULL)
		abort();
	for (i = 0; i < len; i++) {
		if (bol && s[i] == '.')
			e[n++] = '.';
		if (s[i] == '\n')
			e[n++] = '\r';
		e[n++] = s[i];
		bol = s[i] == '\n';
	}
	if (!bol) {
		e[n++] = '\r';
		e[n++] = '\n';
	}
	memcpy(e + n, ".\r\n", 3);
	*outlen = n + 3;
	return e;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_run	 a, b, c;
	const char	*in;
	char		*enc;
	size_t		 len, step, enclen;
	uint64_t	 max;
	int		 rej;

	if (size < 1)
		return 0;
	step = (data[0] & 0x3f) + 1;
	rej = (data[0] & 0x40) != 0;
	max = (data[0] & 0x80) ? 64 : 0;
	in = (const char *)data + 1;
	len = size - 1;

	fuzz_feed(in, len, len ? len : 1, max, rej, &a);
	fuzz_feed(in, len, step, max, rej, &b);
	if (a.outlen != b.outlen || memcmp(a.out, b.out, a.outlen) != 0 ||
	    a.consumed != b.consumed || a.d.flags != b.d.flags ||
	    a.d.size != b.d.size || a.d.hops != b.d.hops)
		abort();
	if ((a.d.flags & SMTP_DATA_DONE) && !smtp_data_refused(&a.d) &&
	    !(a.d.flags & (SMTP_DATA_BARELF | SMTP_DATA_BARECR))) {
		enc = fuzz_encode(a.out, a.outlen, &enclen);
		fuzz_feed(enc, enclen, enclen, max, rej, &c);
		/* The encoder may add a final newline the original lacked. */
		if (!(c.d.flags & SMTP_DATA_DONE) || c.consumed != enclen ||
		    c.outlen < a.outlen || memcmp(a.out, c.out, a.outlen) != 0)
			abort();
		free(c.out);
		free(enc);
	}
	free(a.out);
	free(b.out);
	return 0;
}
