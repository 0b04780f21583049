/*
 * lib/base64.c: the RFC 4648 test vectors both ways, AUTH PLAIN's NULs,
 * bounds, round trips of every length to 300, and the strict decoder
 * refusing every malformed shape.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base64.h"
#include "tap.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

static const struct {
	const char	*in, *out;
} vec[] = {
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static void	test_encode(void);
static void	test_decode_vectors(void);
static void	test_round_trip(void);
static void	test_malformed(void);
static void	test_every_bad_octet(void);
static void	test_decode_room(void);

static void
test_encode(void)
{
	char	 out[64];
	size_t	 i;

	for (i = 0; i < NITEMS(vec); i++) {
		is_int(base64_encode(vec[i].in, strlen(vec[i].in), out,
		    sizeof(out)), (int)strlen(vec[i].out), "length");
		is_str(out, vec[i].out, "RFC 4648 vector");
	}
	/* AUTH PLAIN: authzid NUL authcid NUL password (RFC 4616). */
	is_int(base64_encode("\0tim\0tanstaaftanstaaf", 21, out, sizeof(out)),
	    28, "PLAIN length");
	is_str(out, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", "RFC 4616 example");
	is_int(base64_encode("\xff\xfe\x00", 3, out, sizeof(out)), 4,
	    "8-bit and NUL octets");
	is_str(out, "//4A", "8-bit and NUL octets encoded");
	is_int(base64_encode("foob", 4, out, BASE64_LEN(4) - 1), -1,
	    "one octet short: refused");
	is_int(base64_encode("foob", 4, out, BASE64_LEN(4)), 8,
	    "exactly enough room");
}

/* RFC 4648 section 10 backwards, and RFC 4616's example. */
static void
test_decode_vectors(void)
{
	char	 out[64], name[64];
	size_t	 i;
	int	 n;

	for (i = 0; i < NITEMS(vec); i++) {
		memset(out, 0, sizeof(out));
		n = base64_decode(vec[i].out, strlen(vec[i].out), out,
		    sizeof(out));
		snprintf(name, sizeof(name), "decode_rfc4648: \"%s\" length",
		    vec[i].out);
		is_int(n, (int)strlen(vec[i].in), name);
		snprintf(name, sizeof(name), "decode_rfc4648: \"%s\"",
		    vec[i].out);
		is_str(out, vec[i].in, name);
	}
	n = base64_decode("AHRpbQB0YW5zdGFhZnRhbnN0YWFm", 28, out,
	    sizeof(out));
	ok(n == 21 && memcmp(out, "\0tim\0tanstaaftanstaaf", 21) == 0,
	    "decode_rfc4616: NULs come through");
	n = base64_decode("//4A", 4, out, sizeof(out));
	ok(n == 3 && memcmp(out, "\xff\xfe\x00", 3) == 0,
	    "decode_8bit: the last two alphabet characters and zero bits");
	n = base64_decode("AA==", 4, out, sizeof(out));
	ok(n == 1 && out[0] == '\0', "decode_zero: AA== is one NUL");
	n = base64_decode("AAA=", 4, out, sizeof(out));
	ok(n == 2 && out[0] == '\0' && out[1] == '\0',
	    "decode_zero: AAA= is two NULs");
	is_int(base64_decode("", 0, NULL, 0), 0,
	    "decode_empty: nothing in, nothing out, no room needed");
	is_int(BASE64_DECODED_MAX(0), 0, "decoded_max: 0");
	is_int(BASE64_DECODED_MAX(4), 3, "decoded_max: 4 -> 3");
	is_int(BASE64_DECODED_MAX(28), 21, "decoded_max: 28 -> 21");
}

/*
 * Pseudo-random bytes of each length 0..300 (a fixed xorshift, so a
 * failure repeats): encode, then decode into exactly the room needed and
 * into BASE64_DECODED_MAX of the encoded length.
 */
static void
test_round_trip(void)
{
	uint8_t		 in[300], out[BASE64_DECODED_MAX(BASE64_LEN(300))];
	char		 enc[BASE64_LEN(300)];
	uint64_t	 x = 0x9e3779b97f4a7c15ULL;
	size_t		 len, i, bad = 0, badmax = 0, first = 0;
	int		 elen, n;

	for (len = 0; len <= sizeof(in); len++) {
		for (i = 0; i < len; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			in[i] = x >> 32;
		}
		elen = base64_encode(in, len, enc, sizeof(enc));
		n = base64_decode(enc, elen, out, len);
		if ((elen != (int)(BASE64_LEN(len) - 1) || n != (int)len ||
		    memcmp(in, out, len) != 0) && bad++ == 0)
			first = len;
		n = base64_decode(enc, elen, out, BASE64_DECODED_MAX(elen));
		if (n != (int)len || memcmp(in, out, len) != 0 ||
		    BASE64_DECODED_MAX(elen) - len > 2)
			badmax++;
	}
	if (!ok(bad == 0, "round_trip: lengths 0..300, exact room"))
		printf("#   %zu lengths fail, the first %zu\n", bad, first);
	if (!ok(badmax == 0, "round_trip: lengths 0..300, "
	    "BASE64_DECODED_MAX room"))
		printf("#   %zu lengths fail\n", badmax);
}

/* One row per malformed shape; each must give -1. */
static void
test_malformed(void)
{
	static const struct {
		const char	*name, *in;
		size_t		 len;		/* 0: strlen(in) */
	} bad[] = {
		{ "length_1", "Z", 0 },
		{ "length_2", "Zg", 0 },
		{ "length_3", "Zm9", 0 },
		{ "length_3_padded", "Zg=", 0 },
		{ "length_5", "Zm9vY", 0 },
		{ "length_7", "Zm9vYmE", 0 },
		{ "pad_alone", "=", 0 },
		{ "pad_only", "====", 0 },
		{ "pad_three", "Z===", 0 },
		{ "pad_before_data", "Zm=v", 0 },
		{ "pad_in_first_of_two", "Zg==Zm9v", 0 },
		{ "pad_mid_quantum", "Zm9v=g==", 0 },
		{ "pad_then_more_pad", "Zm9v====", 0 },
		{ "pad_one_then_pad_two", "Zm8=Zg==", 0 },
		{ "pad_extra_quantum", "Zm9vYmFy====", 0 },
		{ "trailing_bits_pad2", "Zh==", 0 },
		{ "trailing_bits_pad2_high", "Z/==", 0 },
		{ "trailing_bits_pad1", "Zm9=", 0 },
		{ "trailing_bits_pad1_low", "Zm+=", 0 },
		{ "space_leading", " Zm9", 0 },
		{ "space_inside", "Zm 9", 0 },
		{ "tab", "Zm9\t", 0 },
		{ "crlf_inside", "Zm\r\nZm9v", 0 },
		{ "crlf_after", "Zm9vYm\r\n", 0 },
		{ "url_alphabet_minus", "Zm-v", 0 },
		{ "url_alphabet_underscore", "Zm_v", 0 },
		{ "nul_inside", "Zm\0v", 4 },
		{ "nul_last", "Zm9\0", 4 },
		{ "eight_bit", "Zm9\x80", 0 },
		{ "eight_bit_ff", "\xffm9v", 0 },
		{ "dot", "Zm9.", 0 },
		{ "padding_then_nul", "Zg=\0", 4 },
	};
	char	 out[64], name[80];
	size_t	 i;

	for (i = 0; i < NITEMS(bad); i++) {
		snprintf(name, sizeof(name), "malformed: %s", bad[i].name);
		is_int(base64_decode(bad[i].in, bad[i].len ? bad[i].len :
		    strlen(bad[i].in), out, sizeof(out)), -1, name);
	}
}

/*
 * Every octet value outside the alphabet, in every position of a good
 * 12-character string: refused.  Every cut of it that is not a multiple
 * of 4: refused.
 */
static void
test_every_bad_octet(void)
{
	static const char	 good[] = "Zm9vYmFyYmE=";
	char			 in[sizeof(good)], out[16];
	size_t			 pos, len, nbad = 0, ntried = 0, ncut = 0;
	int			 c;

	for (pos = 0; pos < sizeof(good) - 1; pos++)
		for (c = 0; c < 256; c++) {
			if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			    (c >= '0' && c <= '9') || c == '+' || c == '/' ||
			    c == '=')
				continue;
			memcpy(in, good, sizeof(good));
			in[pos] = (char)c;
			ntried++;
			if (base64_decode(in, sizeof(good) - 1, out,
			    sizeof(out)) != -1)
				nbad++;
		}
	if (!ok(nbad == 0 && ntried == 12 * (256 - 65),
	    "every_bad_octet: 191 octets x 12 positions refused"))
		printf("#   %zu of %zu accepted\n", nbad, ntried);
	for (len = 0; len < sizeof(good) - 1; len++)
		if (len % 4 != 0 &&
		    base64_decode(good, len, out, sizeof(out)) != -1)
			ncut++;
	ok(ncut == 0, "every_bad_octet: every cut off a quantum refused");
	is_int(base64_decode(good, sizeof(good) - 1, out, sizeof(out)), 8,
	    "every_bad_octet: the good string itself decodes");
}

/* Output bounds: exact room is enough, one less is refused untouched. */
static void
test_decode_room(void)
{
	char	 out[16];
	int	 i, clean;

	memset(out, 'x', sizeof(out));
	is_int(base64_decode("Zm9vYmFy", 8, out, 5), -1,
	    "decode_room: 6 octets into 5 refused");
	for (clean = 1, i = 0; i < (int)sizeof(out); i++)
		clean &= out[i] == 'x';
	ok(clean, "decode_room: refused for room, nothing written");
	is_int(base64_decode("Zm9vYmFy", 8, out, 6), 6,
	    "decode_room: 6 octets into 6");
	ok(memcmp(out, "foobar", 6) == 0 && out[6] == 'x',
	    "decode_room: no NUL or anything past the octets");
	is_int(base64_decode("Zm9vYg==", 8, out, 3), -1,
	    "decode_room: padded, 4 octets into 3 refused");
	is_int(base64_decode("Zm9vYg==", 8, out, 4), 4,
	    "decode_room: padded, 4 octets into 4 (less than the max)");
	is_int(base64_decode("Zg==", 4, NULL, 0), -1,
	    "decode_room: no room at all");

	/* Bad at the end: what was already written is wiped. */
	memset(out, 'x', sizeof(out));
	is_int(base64_decode("Zm9vYm!y", 8, out, sizeof(out)), -1,
	    "decode_wipe: bad character in the second quantum");
	ok(out[0] == '\0' && out[1] == '\0' && out[2] == '\0' &&
	    out[3] == 'x', "decode_wipe: the first quantum's octets wiped");
}

int
main(void)
{
	test_encode();
	test_decode_vectors();
	test_round_trip();
	test_malformed();
	test_every_bad_octet();
	test_decode_room();
	return done_testing();
}
