/*
 * Base64 (RFC 4648 section 4, with padding), for SMTP AUTH (RFC 4954).
 */
#ifndef SQ_BASE64_H
#define SQ_BASE64_H

#include <stddef.h>

/* Room base64_encode() needs for len octets, the NUL included. */
#define BASE64_LEN(len)	(((len) + 2) / 3 * 4 + 1)

/*
 * Room base64_decode() needs for n characters of input: an upper bound,
 * exact when the input has no padding.  No NUL is written, so a caller
 * that wants a string adds one.
 */
#define BASE64_DECODED_MAX(n)	((n) / 4 * 3)

/* Encode in[0..len) into out, NUL-terminated; its length, or -1 if short. */
int	base64_encode(const void *in, size_t len, char *out, size_t outlen);

/*
 * Decode in[0..inlen) into out[0..outlen); the number of octets written,
 * or -1.  Strict: only the canonical encoding that base64_encode() writes
 * is accepted, so -1 comes for a length that is not a multiple of 4, a
 * character outside the RFC 4648 alphabet (white space, CR, LF and NUL
 * included), '=' anywhere but as the last one or two characters, "x==="
 * style padding, non-zero bits left over in the last character before the
 * padding (RFC 4648 3.5: "Zh==" is refused, "Zg==" is "f"), a decoded
 * length past INT_MAX, and an outlen smaller than the exact decoded
 * length.  The empty input decodes to 0 octets; RFC 4954's lone "=" is
 * the caller's to recognise.  On -1 whatever was written to out is wiped.
 */
int	base64_decode(const char *in, size_t inlen, void *out, size_t outlen);

#endif
