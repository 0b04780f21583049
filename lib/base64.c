/*
 * Base64 (RFC 4648 section 4, padded): encoding, and a strict decoder
 * that takes only what the encoder writes.  Pure.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base64.h"

static const char	b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int	b64_value(unsigned char);

int
base64_encode(const void *in, size_t len, char *out, size_t outlen)
{
	const unsigned char	*p = in;
	uint32_t		 v;
	size_t			 i, o = 0;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 2 || outlen < BASE64_LEN(len))
		return -1;
	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (i < len) {
		v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return (int)o;
}

/* The 6-bit value of an alphabet character, or -1 ('=' included). */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
base64_decode(const char *in, size_t inlen, void *out, size_t outlen)
{
	unsigned char	*p = out;
	uint32_t	 v;
	size_t		 i, o = 0, pad = 0, n;
	int		 a, b, c, d, last;

	if (inlen % 4 != 0)
		return -1;
	if (inlen == 0)
		return 0;
	/* Only the last quantum may be padded; other '=' fail below. */
	if (in[inlen - 1] == '=')
		pad = in[inlen - 2] == '=' ? 2 : 1;
	n = inlen / 4 * 3 - pad;
	if (n > INT_MAX || n > outlen)
		return -1;
	for (i = 0; i < inlen; i += 4) {
		last = i + 4 == inlen;
		a = b64_value(in[i]);
		b = b64_value(in[i + 1]);
		c = last && pad == 2 ? 0 : b64_value(in[i + 2]);
		d = last && pad >= 1 ? 0 : b64_value(in[i + 3]);
		if (a < 0 || b < 0 || c < 0 || d < 0)
			goto bad;
		v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 |
		    (uint32_t)d;
		/* Bits past the last whole octet must be zero (canonical). */
		if (last && ((pad == 2 && (v & 0xffff) != 0) ||
		    (pad == 1 && (v & 0xff) != 0)))
			goto bad;
		p[o++] = v >> 16;
		if (!last || pad < 2)
			p[o++] = (v >> 8) & 0xff;
		if (!last || pad < 1)
			p[o++] = v & 0xff;
	}
	return (int)o;
 bad:
	/* What came before may be part of a secret (AUTH PLAIN). */
	if (o > 0)
		explicit_bzero(out, o);
	return -1;
}
