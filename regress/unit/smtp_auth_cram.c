/*
 * AUTH CRAM-MD5 (RFC 2195): the challenge smtp builds and the response it
 * parses (smtpd/smtp_authparse.c), the secret lka reads from a users-table
 * value (lka/lka_auth_cram.c), and the two ends together: a response made
 * with cram_md5_response() from the secret lka reads is accepted by the
 * parser with the digest HMAC-MD5 gives.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base64.h"
#include "md5.h"
#include "../../lka/lka.h"
#include "../../smtpd/smtp.h"
#include "tap.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

static void
test_challenge(void)
{
	char	 out[SMTP_AUTH_CHAL_MAX], host[400], want[SMTP_AUTH_CHAL_MAX];
	int	 n;

	n = smtp_auth_cram_challenge(out, sizeof(out), 0x0123456789abcdefULL,
	    1700000000, "mx.example.org");
	is_str(out, "<0123456789abcdef.1700000000@mx.example.org>",
	    "challenge: <random.time@host>");
	is_int(n, (int)strlen(out), "its length");
	n = smtp_auth_cram_challenge(out, sizeof(out), 1, 0, "");
	is_str(out, "<0000000000000001.0@sqmail>",
	    "an empty host name: a placeholder, all 16 digits of random");
	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	n = smtp_auth_cram_challenge(out, sizeof(out), 2, 5, host);
	is_int(n, SMTP_AUTH_CHAL_MAX - 1, "a long host name is cut to fit");
	ok(out[n - 1] == '>' && strncmp(out, "<0000000000000002.5@hh", 22) ==
	    0, "... and the challenge still ends with >");
	n = smtp_auth_cram_challenge(out, 22, 2, 5, "h");
	is_int(n, -1, "no room for one octet of name: -1");
	n = smtp_auth_cram_challenge(out, 23, 2, 5, "host");
	(void)snprintf(want, sizeof(want), "<0000000000000002.5@h>");
	is_str(out, want, "exactly room for one octet of name");
	is_int(n, 22, "its length");
}

static const struct {
	const char	*name;
	const char	*raw;		/* before base64; NULL: b64 as is */
	const char	*b64;
	int		 ret;
	const char	*user;
	const char	*digest;
} resp[] = {
	{ "RFC 2195 example", "tim b913a602c7eda7a495b4e6e7334d3890", NULL,
	    SMTP_AUTHP_OK, "tim", "b913a602c7eda7a495b4e6e7334d3890" },
	{ "upper-case hex is lowered",
	    "tim B913A602C7EDA7A495B4E6E7334D3890", NULL,
	    SMTP_AUTHP_OK, "tim", "b913a602c7eda7a495b4e6e7334d3890" },
	{ "an address as user",
	    "a@b.example 00000000000000000000000000000000", NULL,
	    SMTP_AUTHP_OK, "a@b.example", "00000000000000000000000000000000" },
	{ "a space in the user: refused",
	    "t m 00000000000000000000000000000000", NULL,
	    SMTP_AUTHP_REFUSE, "", "" },
	{ "no user", " 00000000000000000000000000000000", NULL,
	    SMTP_AUTHP_SYNTAX, "", "" },
	{ "no space", "tim00000000000000000000000000000000", NULL,
	    SMTP_AUTHP_SYNTAX, "", "" },
	{ "31 digits", "tim 0000000000000000000000000000000", NULL,
	    SMTP_AUTHP_SYNTAX, "", "" },
	{ "33 digits", "tim 000000000000000000000000000000000", NULL,
	    SMTP_AUTHP_SYNTAX, "", "" },
	{ "not hex", "tim 0000000000000000000000000000000g", NULL,
	    SMTP_AUTHP_SYNTAX, "", "" },
	{ "trailing space", "tim 00000000000000000000000000000000 ", NULL,
	    SMTP_AUTHP_SYNTAX, "", "" },
	{ "the empty response", NULL, "=", SMTP_AUTHP_SYNTAX, "", "" },
	{ "bad base64", NULL, "dGlt=", SMTP_AUTHP_BASE64, "", "" },
};

static void
test_response(void)
{
	char	 b64[BASE64_LEN(256)], user[SMTP_AUTH_USER_MAX + 1];
	char	 digest[SMTP_AUTH_DIGEST_LEN + 1], name[160];
	const char *in;
	size_t	 i;
	int	 r;

	for (i = 0; i < NITEMS(resp); i++) {
		in = resp[i].b64;
		if (resp[i].raw != NULL) {
			(void)base64_encode(resp[i].raw, strlen(resp[i].raw),
			    b64, sizeof(b64));
			in = b64;
		}
		r = smtp_auth_parse_cram(in, strlen(in), user, sizeof(user),
		    digest, sizeof(digest));
		(void)snprintf(name, sizeof(name), "response, %s",
		    resp[i].name);
		is_int(r, resp[i].ret, name);
		(void)snprintf(name, sizeof(name), "response, %s: user",
		    resp[i].name);
		is_str(user, resp[i].user, name);
		(void)snprintf(name, sizeof(name), "response, %s: digest",
		    resp[i].name);
		is_str(digest, resp[i].digest, name);
	}
	(void)base64_encode("tim b913a602c7eda7a495b4e6e7334d3890", 36, b64,
	    sizeof(b64));
	is_int(smtp_auth_parse_cram(b64, strlen(b64), user, 3, digest,
	    sizeof(digest)), SMTP_AUTHP_REFUSE, "a user longer than its buffer");
	is_int(smtp_auth_parse_cram(b64, strlen(b64), user, sizeof(user),
	    digest, SMTP_AUTH_DIGEST_LEN), SMTP_AUTHP_SYNTAX,
	    "no room for the digest's NUL");
}

static const struct {
	const char	*val;
	int		 ret;
	const char	*secret;
} secrets[] = {
	{ "$6$salt$hash cram:tanstaafl", 9, "tanstaafl" },
	{ "$6$salt$hash\tcram:x  other words", 1, "x" },
	{ "* cram64:dHdvIHdvcmRz", 9, "two words" },
	{ "$6$salt$hash", 0, "" },
	{ "$6$salt$hash cram:", 0, "" },		/* empty: none */
	{ "$6$salt$hash cramx:abc", 0, "" },
	{ "$6$salt$hash cram64:###", -1, "" },
	{ "$6$salt$hash cram64:", 0, "" },
	{ "cram:first", 5, "first" },
	{ "", 0, "" },
};

static void
test_secret(void)
{
	char	 out[LKA_CRAM_SECRET_MAX], name[160], big[2048];
	size_t	 i;

	for (i = 0; i < NITEMS(secrets); i++) {
		(void)snprintf(name, sizeof(name), "secret of \"%s\"",
		    secrets[i].val);
		is_int(lka_auth_cram_secret(secrets[i].val, out, sizeof(out)),
		    secrets[i].ret, name);
		is_str(out, secrets[i].ret > 0 ? secrets[i].secret : "",
		    "... its value");
	}
	memcpy(big, "h cram:", 7);
	memset(big + 7, 's', LKA_CRAM_SECRET_MAX);
	big[7 + LKA_CRAM_SECRET_MAX] = '\0';
	is_int(lka_auth_cram_secret(big, out, sizeof(out)), -1,
	    "a secret with no room for its NUL: -1");
	big[7 + LKA_CRAM_SECRET_MAX - 1] = '\0';
	is_int(lka_auth_cram_secret(big, out, sizeof(out)),
	    LKA_CRAM_SECRET_MAX - 1, "one octet shorter fits");
}

/* The client's response, parsed, gives the digest HMAC-MD5 computes. */
static void
test_round_trip(void)
{
	char		 chal[SMTP_AUTH_CHAL_MAX], secret[LKA_CRAM_SECRET_MAX];
	char		 resp[CRAM_MD5_LEN(5)], b64[BASE64_LEN(sizeof(resp))];
	char		 user[SMTP_AUTH_USER_MAX + 1];
	char		 digest[SMTP_AUTH_DIGEST_LEN + 1], hex[33];
	uint8_t		 mac[MD5_DIGEST_LEN];
	int		 n, i;

	n = smtp_auth_cram_challenge(chal, sizeof(chal), 42, 1, "mx.test");
	(void)lka_auth_cram_secret("* cram:s3cret", secret, sizeof(secret));
	ok(cram_md5_response("alice", secret, chal, n, resp, sizeof(resp)) > 0,
	    "the client side answers the challenge");
	(void)base64_encode(resp, strlen(resp), b64, sizeof(b64));
	is_int(smtp_auth_parse_cram(b64, strlen(b64), user, sizeof(user),
	    digest, sizeof(digest)), SMTP_AUTHP_OK, "smtp parses the answer");
	is_str(user, "alice", "... the user");
	hmac_md5(secret, strlen(secret), chal, n, mac);
	for (i = 0; i < MD5_DIGEST_LEN; i++)
		(void)snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	is_str(digest, hex, "... the digest lka will compute");
}

int
main(void)
{
	test_challenge();
	test_response();
	test_secret();
	test_round_trip();
	return done_testing();
}
