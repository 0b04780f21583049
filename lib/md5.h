/*
 * MD5 (RFC 1321), HMAC-MD5 (RFC 2104) and the CRAM-MD5 response
 * (RFC 2195), for SMTP AUTH CRAM-MD5.  MD5 is broken as a collision-
 * resistant hash; it is here only because CRAM-MD5 needs it, and
 * HMAC-MD5 does not rest on collision resistance.  Use it for nothing
 * else.  Every function is pure and byte-order independent.
 */
#ifndef SQ_MD5_H
#define SQ_MD5_H

#include <stddef.h>
#include <stdint.h>

#define MD5_BLOCK_LEN	64
#define MD5_DIGEST_LEN	16

/* "user" SP 32 hex digits, NUL included: room cram_md5_response() needs. */
#define CRAM_MD5_LEN(userlen)	((userlen) + 1 + 2 * MD5_DIGEST_LEN + 1)

struct md5_ctx {
	uint32_t	 state[4];		/* A, B, C, D */
	uint64_t	 count;			/* octets taken in so far */
	uint8_t		 buf[MD5_BLOCK_LEN];	/* a partial block */
};

void	md5_init(struct md5_ctx *);
void	md5_update(struct md5_ctx *, const void *, size_t);
/* Write the digest and wipe the context; md5_init() it to reuse it. */
void	md5_final(struct md5_ctx *, uint8_t out[MD5_DIGEST_LEN]);

/* HMAC-MD5 of msg under key; a key longer than a block is hashed first. */
void	hmac_md5(const void *key, size_t keylen, const void *msg,
	    size_t msglen, uint8_t out[MD5_DIGEST_LEN]);

/*
 * The CRAM-MD5 client response before its base64 encoding: user, one
 * space, then HMAC-MD5(secret, challenge) as 32 lower-case hex digits,
 * NUL-terminated in out.  challenge is the server's challenge already
 * base64-decoded, challengelen octets.  Returns the length written
 * (without the NUL), or -1 when out is smaller than
 * CRAM_MD5_LEN(strlen(user)); out then holds "" (when outlen > 0).
 * user is taken as given; the caller has vetted it.
 */
int	cram_md5_response(const char *user, const char *secret,
	    const char *challenge, size_t challengelen, char *out,
	    size_t outlen);

#endif
