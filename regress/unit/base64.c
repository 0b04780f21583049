/*
 * lib/base64.c: the RFC 4648 test vectors, AUTH PLAIN's NULs, bounds.
 */
#include <string.h>

#include "base64.h"
#include "tap.h"

int
main(void)
{
	static const struct {
		const char	*in, *out;
	} vec[] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	char	 out[64];
	size_t	 i;

	for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
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
	return done_testing();
}
