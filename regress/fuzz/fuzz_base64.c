/*
 * libFuzzer target for lib/base64.c.  The input is taken twice: as base64
 * text for base64_decode(), and as octets for base64_encode().  Checks:
 * the decoder accepts exactly what a separate, slower validator written
 * from RFC 4648 section 4 accepts; a decode never writes past outlen
 * (every buffer is allocated to the size passed, so ASan sees an
 * overflow) and never returns more than BASE64_DECODED_MAX; what it
 * accepts encodes back to the input octet for octet (only the canonical
 * form is taken); one octet of room less is refused with nothing
 * written; decode(encode(x)) is x.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/base64.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char	fuzz_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The index of c in the alphabet, or -1: a search, not the ranges. */
static int
fuzz_index(uint8_t c)
{
	const char	*p;

	if (c == '\0' || (p = strchr(fuzz_alphabet, c)) == NULL)
		return -1;
	return p - fuzz_alphabet;
}

/*
 * Whether s is some octet string's canonical encoding: quanta of four
 * alphabet characters, the last one possibly ending in "=" or "==", and
 * the bits that the padding cuts off zero.  Returns the decoded length
 * or -1.
 */
static long
fuzz_canonical(const uint8_t *s, size_t len)
{
	size_t	 i, data;
	int	 v;

	if (len % 4 != 0)
		return -1;
	data = len;
	if (len > 0 && s[len - 1] == '=')
		data--;
	if (data < len && s[data - 1] == '=')
		data--;
	for (i = 0; i < data; i++)
		if (fuzz_index(s[i]) < 0)
			return -1;
	if (data < len) {
		v = fuzz_index(s[data - 1]);
		/* xx== carries 8 bits of 12, xxx= 16 of 18. */
		if ((len - data == 2 && (v & 0x0f) != 0) ||
		    (len - data == 1 && (v & 0x03) != 0))
			return -1;
	}
	return (long)(len / 4 * 3 - (len - data));
}

static void *
fuzz_alloc(size_t n)
{
	void	*p;

	/* malloc(0) may be NULL; one octet is still no room to ASan. */
	if ((p = malloc(n > 0 ? n : 1)) == NULL)
		abort();
	return p;
}

static void
fuzz_decode(const uint8_t *data, size_t size)
{
	const char	*in = (const char *)data;
	uint8_t		*out, *exact;
	char		*enc;
	size_t		 max = BASE64_DECODED_MAX(size), i;
	long		 want;
	int		 n;

	out = fuzz_alloc(max);
	n = base64_decode(in, size, out, max);
	want = fuzz_canonical(data, size);
	if (n != want)
		abort();
	if (n < 0) {
		free(out);
		return;
	}
	if ((size_t)n > max || max - n > 2)
		abort();

	/* Canonical only: it must encode back to the very input. */
	enc = fuzz_alloc(BASE64_LEN(n));
	if (base64_encode(out, n, enc, BASE64_LEN(n)) != (int)size ||
	    memcmp(enc, in, size) != 0 || enc[size] != '\0')
		abort();
	free(enc);

	/* Exactly n octets of room do; n - 1 do not, and touch nothing. */
	exact = fuzz_alloc(n);
	if (base64_decode(in, size, exact, n) != n ||
	    memcmp(exact, out, n) != 0)
		abort();
	if (n > 0) {
		memset(exact, 0xa5, n);
		if (base64_decode(in, size, exact, n - 1) != -1)
			abort();
		for (i = 0; i < (size_t)n; i++)
			if (exact[i] != 0xa5)
				abort();
	}
	free(exact);
	free(out);
}

static void
fuzz_round_trip(const uint8_t *data, size_t size)
{
	char	*enc;
	uint8_t	*dec;
	int	 elen;

	if (size > (size_t)INT32_MAX / 2)
		return;
	enc = fuzz_alloc(BASE64_LEN(size));
	elen = base64_encode(data, size, enc, BASE64_LEN(size));
	if (elen < 0 || (size_t)elen != BASE64_LEN(size) - 1 ||
	    enc[elen] != '\0')
		abort();
	dec = fuzz_alloc(size);
	if (base64_decode(enc, elen, dec, size) != (int)size ||
	    memcmp(dec, data, size) != 0)
		abort();
	free(dec);
	free(enc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_decode(data, size);
	fuzz_round_trip(data, size);
	return 0;
}
