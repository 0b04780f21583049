/*
 * lib/md5.c: MD5 against RFC 1321 appendix A.5 and the padding edges,
 * md5_update() split anywhere, HMAC-MD5 against RFC 2202 section 2 and
 * RFC 2104's key rules, the CRAM-MD5 response of RFC 2195 and its bounds.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md5.h"
#include "tap.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

static void
tohex(const uint8_t d[MD5_DIGEST_LEN], char out[2 * MD5_DIGEST_LEN + 1])
{
	static const char	 hex[] = "0123456789abcdef";
	int			 i;

	for (i = 0; i < MD5_DIGEST_LEN; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 0x0f];
	}
	out[2 * MD5_DIGEST_LEN] = '\0';
}

static void
md5_oneshot(const void *p, size_t len, uint8_t out[MD5_DIGEST_LEN])
{
	struct md5_ctx	 ctx;

	md5_init(&ctx);
	md5_update(&ctx, p, len);
	md5_final(&ctx, out);
}

static const char *
md5_hex(const void *p, size_t len)
{
	static char	 hex[2 * MD5_DIGEST_LEN + 1];
	uint8_t		 d[MD5_DIGEST_LEN];

	md5_oneshot(p, len, d);
	tohex(d, hex);
	return hex;
}

static const char *
hmac_hex(const void *key, size_t keylen, const void *msg, size_t msglen)
{
	static char	 hex[2 * MD5_DIGEST_LEN + 1];
	uint8_t		 d[MD5_DIGEST_LEN];

	hmac_md5(key, keylen, msg, msglen, d);
	tohex(d, hex);
	return hex;
}

/* RFC 1321 appendix A.5, the test suite. */
static void
test_rfc1321(void)
{
	static const struct {
		const char	*in, *md5;
	} vec[] = {
		{ "", "d41d8cd98f00b204e9800998ecf8427e" },
		{ "a", "0cc175b9c0f1b6a831c399e269772661" },
		{ "abc", "900150983cd24fb0d6963f7d28e17f72" },
		{ "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
		{ "abcdefghijklmnopqrstuvwxyz",
		    "c3fcd3d76192e4007dfb496cca67e13b" },
		{ "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789", "d174ab98d277d9f5a5611c2c9f419d9f" },
		{ "1234567890123456789012345678901234567890"
		    "1234567890123456789012345678901234567890",
		    "57edf4a22be3c955ac49da2e2107b67a" },
	};
	char	 name[128];
	size_t	 i;

	for (i = 0; i < NITEMS(vec); i++) {
		snprintf(name, sizeof(name), "rfc1321_a5: MD5(\"%.40s%s\")",
		    vec[i].in, strlen(vec[i].in) > 40 ? "..." : "");
		is_str(md5_hex(vec[i].in, strlen(vec[i].in)), vec[i].md5, name);
	}
}

/*
 * Lengths of "aaa..." around the padding edges: 55 octets pad within one
 * block, 56 need a second, 64 is a whole block.  The digests were taken
 * from an independent implementation, as was the million-'a' one.
 */
static void
test_padding_edges(void)
{
	static const struct {
		size_t		 len;
		const char	*md5;
	} vec[] = {
		{ 55, "ef1772b6dff9a122358552954ad0df65" },
		{ 56, "3b0c8ac703f828b04c6c197006d17218" },
		{ 57, "652b906d60af96844ebd21b674f35e93" },
		{ 63, "b06521f39153d618550606be297466d5" },
		{ 64, "014842d480b571495a4a0363793f7367" },
		{ 65, "c743a45e0d2e6a95cb859adae0248435" },
		{ 119, "8a7bd0732ed6a28ce75f6dabc90e1613" },
		{ 120, "5f61c0ccad4cac44c75ff505e1f1e537" },
		{ 127, "020406e1d05cdc2aa287641f7ae2cc39" },
		{ 128, "e510683b3f5ffe4093d021808bc6ff70" },
	};
	struct md5_ctx	 ctx;
	uint8_t		 d[MD5_DIGEST_LEN];
	char		 a[1000], hex[2 * MD5_DIGEST_LEN + 1], name[64];
	size_t		 i;

	memset(a, 'a', sizeof(a));
	for (i = 0; i < NITEMS(vec); i++) {
		snprintf(name, sizeof(name), "padding_edge: %zu octets",
		    vec[i].len);
		is_str(md5_hex(a, vec[i].len), vec[i].md5, name);
	}
	md5_init(&ctx);
	for (i = 0; i < 1000; i++)
		md5_update(&ctx, a, sizeof(a));
	md5_final(&ctx, d);
	tohex(d, hex);
	is_str(hex, "7707d6ae4e027c70eea2a935c2296f21",
	    "million_a: 10^6 octets over 1000 updates");
}

/* Any way of cutting the input into md5_update() calls: one digest. */
static void
test_split_updates(void)
{
	struct md5_ctx	 ctx;
	uint8_t		 in[200], whole[MD5_DIGEST_LEN], d[MD5_DIGEST_LEN];
	size_t		 i, j, bad2 = 0, bad3 = 0, n3 = 0;
	int		 first2 = -1;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 37 + 11);
	md5_oneshot(in, sizeof(in), whole);

	for (i = 0; i <= sizeof(in); i++) {
		md5_init(&ctx);
		md5_update(&ctx, in, i);
		md5_update(&ctx, in + i, sizeof(in) - i);
		md5_final(&ctx, d);
		if (memcmp(d, whole, sizeof(d)) != 0 && bad2++ == 0)
			first2 = (int)i;
	}
	if (!ok(bad2 == 0, "split_updates: two calls cut at each of 0..200"))
		printf("#   %zu cuts differ, the first at %d\n", bad2, first2);

	for (i = 0; i <= sizeof(in); i++)
		for (j = i; j <= sizeof(in); j++) {
			md5_init(&ctx);
			md5_update(&ctx, in, i);
			md5_update(&ctx, in + i, j - i);
			md5_update(&ctx, in + j, sizeof(in) - j);
			md5_final(&ctx, d);
			n3++;
			if (memcmp(d, whole, sizeof(d)) != 0)
				bad3++;
		}
	if (!ok(bad3 == 0 && n3 == 201 * 202 / 2,
	    "split_updates: three calls cut at every pair i <= j"))
		printf("#   %zu of %zu differ\n", bad3, n3);

	md5_init(&ctx);
	for (i = 0; i < sizeof(in); i++)
		md5_update(&ctx, in + i, 1);
	md5_update(&ctx, NULL, 0);
	md5_final(&ctx, d);
	ok(memcmp(d, whole, sizeof(d)) == 0,
	    "split_updates: one octet a call, then an empty one");
}

static void
test_final_wipes(void)
{
	struct md5_ctx	 ctx, zero;
	uint8_t		 d[MD5_DIGEST_LEN];

	memset(&zero, 0, sizeof(zero));
	md5_init(&ctx);
	md5_update(&ctx, "tanstaaftanstaaf", 16);
	md5_final(&ctx, d);
	ok(memcmp(&ctx, &zero, sizeof(ctx)) == 0,
	    "final_wipes_context: no state or buffered input left");
	md5_init(&ctx);
	md5_update(&ctx, "abc", 3);
	md5_final(&ctx, d);
	ok(memcmp(d, "\x90\x01\x50\x98\x3c\xd2\x4f\xb0\xd6\x96\x3f\x7d"
	    "\x28\xe1\x7f\x72", sizeof(d)) == 0,
	    "final_wipes_context: reusable after md5_init()");
}

/* RFC 2202 section 2, all seven HMAC-MD5 test cases. */
static void
test_rfc2202(void)
{
	static const struct {
		int		 keyfill;	/* >= 0: keylen octets of it */
		const char	*key;		/* else this key */
		size_t		 keylen;
		int		 datafill;
		const char	*data;
		size_t		 datalen;
		const char	*digest;
	} vec[] = {
		{ 0x0b, NULL, 16, -1, "Hi There", 8,
		    "9294727a3638bb1c13f48ef8158bfc9d" },
		{ -1, "Jefe", 4, -1, "what do ya want for nothing?", 28,
		    "750c783e6ab0b503eaa86e310a5db738" },
		{ 0xaa, NULL, 16, 0xdd, NULL, 50,
		    "56be34521d144c88dbb8c733f0e8b3f6" },
		{ -1, "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d"
		    "\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19", 25,
		    0xcd, NULL, 50, "697eaf0aca3a3aea3a75164746ffaa79" },
		{ 0x0c, NULL, 16, -1, "Test With Truncation", 20,
		    "56461ef2342edc00f9bab995690efd4c" },
		{ 0xaa, NULL, 80, -1, "Test Using Larger Than Block-Size Key "
		    "- Hash Key First", 54,
		    "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd" },
		{ 0xaa, NULL, 80, -1, "Test Using Larger Than Block-Size Key "
		    "and Larger Than One Block-Size Data", 73,
		    "6f630fad67cda0ee1fb1f562db3aa53e" },
	};
	uint8_t		 key[80], data[80];
	const void	*k, *m;
	char		 name[64];
	size_t		 i;

	for (i = 0; i < NITEMS(vec); i++) {
		if (vec[i].keyfill >= 0) {
			memset(key, vec[i].keyfill, vec[i].keylen);
			k = key;
		} else
			k = vec[i].key;
		if (vec[i].datafill >= 0) {
			memset(data, vec[i].datafill, vec[i].datalen);
			m = data;
		} else
			m = vec[i].data;
		snprintf(name, sizeof(name), "rfc2202: HMAC-MD5 test_case %zu",
		    i + 1);
		is_str(hmac_hex(k, vec[i].keylen, m, vec[i].datalen),
		    vec[i].digest, name);
	}
	/* Case 5 also gives the digest cut to 96 bits. */
	ok(strncmp(hmac_hex("\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c\x0c"
	    "\x0c\x0c\x0c\x0c\x0c", 16, "Test With Truncation", 20),
	    "56461ef2342edc00f9bab995", 24) == 0,
	    "rfc2202: test_case 5 truncated to 96 bits");
}

/* RFC 2104 section 2: how the key becomes a block. */
static void
test_hmac_key_rules(void)
{
	uint8_t		 key[65], kd[MD5_DIGEST_LEN];
	char		 a[2 * MD5_DIGEST_LEN + 1];
	size_t		 i;

	strlcpy(a, hmac_hex("Jefe", 4, "msg", 3), sizeof(a));
	is_str(hmac_hex("Jefe\0\0\0", 7, "msg", 3), a,
	    "hmac_key_rules: trailing zero octets change nothing (padding)");
	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i + 1);
	md5_oneshot(key, 65, kd);
	strlcpy(a, hmac_hex(kd, sizeof(kd), "msg", 3), sizeof(a));
	is_str(hmac_hex(key, 65, "msg", 3), a,
	    "hmac_key_rules: a 65-octet key is replaced by its MD5");
	strlcpy(a, hmac_hex(key, 64, "msg", 3), sizeof(a));
	md5_oneshot(key, 64, kd);
	ok(strcmp(hmac_hex(kd, sizeof(kd), "msg", 3), a) != 0,
	    "hmac_key_rules: a 64-octet key is used as it is");
	/* These three from an independent implementation. */
	is_str(a, "903bdf2adaf41e2f9f6f32e48ecdc76d",
	    "hmac_key_rules: 64-octet key 01..40");
	is_str(hmac_hex(key, 65, "msg", 3), "d7d4901f8d795a4c5018c457400d17aa",
	    "hmac_key_rules: 65-octet key 01..41");
	is_str(hmac_hex(NULL, 0, NULL, 0), "74e6f7298a9c2d168935f58c001bad88",
	    "hmac_key_rules: empty key, empty message");
}

/*
 * RFC 2195 section 2, the example (its challenge ends in ".mci.net>"; with
 * ".mci.com>" the digest is another); the sizes a caller must provide.
 */
static void
test_cram_md5(void)
{
	static const char	 chal[] =
	    "<1896.697170952@postoffice.reston.mci.net>";
	static const char	 want[] =
	    "tim b913a602c7eda7a495b4e6e7334d3890";
	char			 out[64];
	size_t			 need = CRAM_MD5_LEN(3);

	is_int(need, sizeof(want), "cram_md5: CRAM_MD5_LEN(3) is 37");
	is_int(cram_md5_response("tim", "tanstaaftanstaaf", chal,
	    strlen(chal), out, sizeof(out)), 36, "cram_md5: rfc2195 length");
	is_str(out, want, "cram_md5: rfc2195 example");
	/* One octet of the challenge more or less is another digest. */
	is_int(cram_md5_response("tim", "tanstaaftanstaaf", chal,
	    strlen(chal) - 1, out, sizeof(out)), 36,
	    "cram_md5: challenge cut short");
	ok(strcmp(out, want) != 0 && strncmp(out, "tim ", 4) == 0,
	    "cram_md5: challenge cut short gives another digest");

	memset(out, 'x', sizeof(out));
	is_int(cram_md5_response("tim", "tanstaaftanstaaf", chal,
	    strlen(chal), out, need), 36, "cram_md5: exactly enough room");
	is_str(out, want, "cram_md5: exactly enough room, same text");
	memset(out, 'x', sizeof(out));
	is_int(cram_md5_response("tim", "tanstaaftanstaaf", chal,
	    strlen(chal), out, need - 1), -1,
	    "cram_md5: one octet short is refused");
	ok(out[0] == '\0' && out[1] == 'x',
	    "cram_md5: refused leaves \"\" and writes nothing more");
	is_int(cram_md5_response("tim", "tanstaaftanstaaf", chal,
	    strlen(chal), NULL, 0), -1, "cram_md5: no room at all");
	is_int(cram_md5_response("", "s", "c", 1, out, CRAM_MD5_LEN(0)), 33,
	    "cram_md5: empty user, still one space");
	ok(out[0] == ' ' && strlen(out) == 33,
	    "cram_md5: empty user gives \" digest\"");
	/* A binary challenge: the length is what counts, not a NUL. */
	is_int(cram_md5_response("tim", "tanstaaftanstaaf", "a\0b", 3, out,
	    sizeof(out)), 36, "cram_md5: challenge with a NUL");
	is_str(out + 4, hmac_hex("tanstaaftanstaaf", 16, "a\0b", 3),
	    "cram_md5: NUL in the challenge is hashed");
}

int
main(void)
{
	test_rfc1321();
	test_padding_edges();
	test_split_updates();
	test_final_wipes();
	test_rfc2202();
	test_hmac_key_rules();
	test_cram_md5();
	return done_testing();
}
