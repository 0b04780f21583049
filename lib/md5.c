/*
 * MD5 after the description in RFC 1321 section 3, HMAC after RFC 2104
 * section 2, the CRAM-MD5 response after RFC 2195 section 2.  Words are
 * read and written octet by octet (MD5 is little-endian by definition),
 * so the code is the same on any host byte order.  Pure.
 */
#include <sys/types.h>

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "md5.h"

/* T[i] = floor(2^32 * |sin(i + 1)|), i in radians (RFC 1321 3.4). */
static const uint32_t	md5_t[64] = {
	0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee,
	0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
	0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
	0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
	0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa,
	0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
	0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
	0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
	0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
	0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
	0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05,
	0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
	0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039,
	0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
	0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
	0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

/* The left rotation of each round's four steps, repeated four times. */
static const uint8_t	md5_rot[4][4] = {
	{ 7, 12, 17, 22 },
	{ 5, 9, 14, 20 },
	{ 4, 11, 16, 23 },
	{ 6, 10, 15, 21 },
};

static uint32_t	md5_get32(const uint8_t *);
static void	md5_put32(uint8_t *, uint32_t);
static void	md5_block(uint32_t[4], const uint8_t *);

static uint32_t
md5_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static void
md5_put32(uint8_t *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = v >> 24;
}

/*
 * One 64-octet block (RFC 1321 3.4).  The RFC writes each round as sixteen
 * operations [abcd k s i] with the registers taking turns; here the
 * registers are shifted along instead, so one statement serves all 64:
 * the new value goes into b and the others move down (a <- d <- c <- b).
 */
static void
md5_block(uint32_t state[4], const uint8_t *block)
{
	uint32_t	 x[16], a, b, c, d, f, t;
	int		 i, k;

	for (i = 0; i < 16; i++)
		x[i] = md5_get32(block + 4 * i);
	a = state[0];
	b = state[1];
	c = state[2];
	d = state[3];
	for (i = 0; i < 64; i++) {
		switch (i / 16) {
		case 0:		/* F: if b then c else d */
			f = (b & c) | (~b & d);
			k = i;
			break;
		case 1:		/* G: if d then b else c */
			f = (b & d) | (c & ~d);
			k = (5 * i + 1) % 16;
			break;
		case 2:		/* H: parity */
			f = b ^ c ^ d;
			k = (3 * i + 5) % 16;
			break;
		default:	/* I */
			f = c ^ (b | ~d);
			k = (7 * i) % 16;
			break;
		}
		t = a + f + x[k] + md5_t[i];
		t = t << md5_rot[i / 16][i % 4] |
		    t >> (32 - md5_rot[i / 16][i % 4]);
		a = d;
		d = c;
		c = b;
		b += t;
	}
	state[0] += a;
	state[1] += b;
	state[2] += c;
	state[3] += d;
	/* The block may be key material (HMAC's padded key). */
	explicit_bzero(x, sizeof(x));
}

void
md5_init(struct md5_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	/* RFC 1321 3.3, its low-order-first octets read as words. */
	ctx->state[0] = 0x67452301;
	ctx->state[1] = 0xefcdab89;
	ctx->state[2] = 0x98badcfe;
	ctx->state[3] = 0x10325476;
}

void
md5_update(struct md5_ctx *ctx, const void *data, size_t len)
{
	const uint8_t	*p = data;
	size_t		 have, need;

	if (len == 0)
		return;
	have = ctx->count % MD5_BLOCK_LEN;
	/* The length is counted modulo 2^64 octets; RFC 1321 3.2 allows it. */
	ctx->count += len;
	if (have > 0) {
		need = MD5_BLOCK_LEN - have;
		if (len < need) {
			memcpy(ctx->buf + have, p, len);
			return;
		}
		memcpy(ctx->buf + have, p, need);
		md5_block(ctx->state, ctx->buf);
		p += need;
		len -= need;
	}
	for (; len >= MD5_BLOCK_LEN; p += MD5_BLOCK_LEN, len -= MD5_BLOCK_LEN)
		md5_block(ctx->state, p);
	if (len > 0)
		memcpy(ctx->buf, p, len);
}

void
md5_final(struct md5_ctx *ctx, uint8_t out[MD5_DIGEST_LEN])
{
	uint64_t	 bits = ctx->count << 3;
	size_t		 have = ctx->count % MD5_BLOCK_LEN;
	int		 i;

	/* One 1 bit, 0 bits up to 448 mod 512, the bit length (3.1, 3.2). */
	ctx->buf[have++] = 0x80;
	if (have > MD5_BLOCK_LEN - 8) {
		memset(ctx->buf + have, 0, MD5_BLOCK_LEN - have);
		md5_block(ctx->state, ctx->buf);
		have = 0;
	}
	memset(ctx->buf + have, 0, MD5_BLOCK_LEN - 8 - have);
	md5_put32(ctx->buf + 56, bits & 0xffffffff);
	md5_put32(ctx->buf + 60, bits >> 32);
	md5_block(ctx->state, ctx->buf);
	for (i = 0; i < 4; i++)
		md5_put32(out + 4 * i, ctx->state[i]);
	explicit_bzero(ctx, sizeof(*ctx));
}

/*
 * H(K ^ opad, H(K ^ ipad, msg)) with K the key (or its digest when it is
 * longer than a block) padded with zeros to a block (RFC 2104 2).
 */
void
hmac_md5(const void *key, size_t keylen, const void *msg, size_t msglen,
    uint8_t out[MD5_DIGEST_LEN])
{
	struct md5_ctx	 ctx;
	uint8_t		 k[MD5_BLOCK_LEN], pad[MD5_BLOCK_LEN];
	uint8_t		 inner[MD5_DIGEST_LEN];
	int		 i;

	memset(k, 0, sizeof(k));
	if (keylen > MD5_BLOCK_LEN) {
		md5_init(&ctx);
		md5_update(&ctx, key, keylen);
		md5_final(&ctx, k);
	} else if (keylen > 0)
		memcpy(k, key, keylen);

	for (i = 0; i < MD5_BLOCK_LEN; i++)
		pad[i] = k[i] ^ 0x36;
	md5_init(&ctx);
	md5_update(&ctx, pad, sizeof(pad));
	md5_update(&ctx, msg, msglen);
	md5_final(&ctx, inner);

	for (i = 0; i < MD5_BLOCK_LEN; i++)
		pad[i] = k[i] ^ 0x5c;
	md5_init(&ctx);
	md5_update(&ctx, pad, sizeof(pad));
	md5_update(&ctx, inner, sizeof(inner));
	md5_final(&ctx, out);

	explicit_bzero(k, sizeof(k));
	explicit_bzero(pad, sizeof(pad));
	explicit_bzero(inner, sizeof(inner));
}

int
cram_md5_response(const char *user, const char *secret, const char *challenge,
    size_t challengelen, char *out, size_t outlen)
{
	static const char	 hex[] = "0123456789abcdef";
	uint8_t			 d[MD5_DIGEST_LEN];
	size_t			 ulen, o;
	int			 i;

	if (outlen > 0)
		out[0] = '\0';
	ulen = strlen(user);
	if (ulen > INT_MAX - CRAM_MD5_LEN(0) || outlen < CRAM_MD5_LEN(ulen))
		return -1;
	hmac_md5(secret, strlen(secret), challenge, challengelen, d);
	memcpy(out, user, ulen);
	o = ulen;
	out[o++] = ' ';
	for (i = 0; i < MD5_DIGEST_LEN; i++) {
		out[o++] = hex[d[i] >> 4];
		out[o++] = hex[d[i] & 0x0f];
	}
	out[o] = '\0';
	explicit_bzero(d, sizeof(d));
	return (int)o;
}
