/*
 * Base64 encoding (RFC 4648 section 4, padded).  Pure.
 */
#include <stddef.h>
#include <stdint.h>

#include "base64.h"

static const char	b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

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
