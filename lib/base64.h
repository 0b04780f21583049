/*
 * Base64 (RFC 4648 section 4, with padding), for SMTP AUTH (RFC 4954).
 */
#ifndef SQ_BASE64_H
#define SQ_BASE64_H

#include <stddef.h>

/* Room base64_encode() needs for len octets, the NUL included. */
#define BASE64_LEN(len)	(((len) + 2) / 3 * 4 + 1)

/* Encode in[0..len) into out, NUL-terminated; its length, or -1 if short. */
int	base64_encode(const void *in, size_t len, char *out, size_t outlen);

#endif
