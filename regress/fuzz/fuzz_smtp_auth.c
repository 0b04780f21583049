/*
 * libFuzzer target for smtpd/smtp_authparse.c.  The input is an AUTH
 * argument ("MECH [initial-response]"); the initial response, or the
 * whole input when there is none, goes through the PLAIN and LOGIN
 * parsers.  Checks: the initial response lies inside the input; on
 * success the user is non-empty printable ASCII without space and both
 * outputs are NUL-terminated within their bounds; on failure both are
 * empty.  Output buffers are heap-allocated at their exact size so that
 * ASan sees a write past them.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../smtpd/smtp.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_check_user(const char *u)
{
	size_t	 i, n = strlen(u);

	if (n == 0 || n > SMTP_AUTH_USER_MAX)
		abort();
	for (i = 0; i < n; i++)
		if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum smtp_auth_mech	 mech;
	char			 digest[SMTP_AUTH_DIGEST_LEN + 1];
	const char		*arg = (const char *)data, *init, *resp;
	char			*user, *pass;
	size_t			 initlen, resplen;
	int			 r;

	if (size > SMTP_AUTH_LINE_MAX + 16)
		return 0;
	user = malloc(SMTP_AUTH_USER_MAX + 1);
	pass = malloc(SMTP_AUTH_PASS_MAX + 1);
	if (user == NULL || pass == NULL)
		abort();
	resp = arg;
	resplen = size;
	if (smtp_auth_parse_cmd(arg, size, &mech, &init, &initlen) == 0 &&
	    init != NULL) {
		if (init < arg || init + initlen > arg + size || initlen == 0)
			abort();
		resp = init;
		resplen = initlen;
	}
	r = smtp_auth_parse_plain(resp, resplen, user, SMTP_AUTH_USER_MAX + 1,
	    pass, SMTP_AUTH_PASS_MAX + 1);
	if (r == SMTP_AUTHP_OK) {
		fuzz_check_user(user);
		if (strlen(pass) == 0 || strlen(pass) > SMTP_AUTH_PASS_MAX)
			abort();
	} else if (user[0] != '\0' || pass[0] != '\0')
		abort();
	r = smtp_auth_parse_field(resp, resplen, 1, user,
	    SMTP_AUTH_USER_MAX + 1);
	if (r == SMTP_AUTHP_OK)
		fuzz_check_user(user);
	else if (user[0] != '\0')
		abort();
	r = smtp_auth_parse_field(resp, resplen, 0, pass,
	    SMTP_AUTH_PASS_MAX + 1);
	if (r == SMTP_AUTHP_OK && (strlen(pass) == 0 ||
	    strlen(pass) > SMTP_AUTH_PASS_MAX))
		abort();
	/* CRAM-MD5: a user as for PLAIN, 32 lower-case hex digits. */
	r = smtp_auth_parse_cram(resp, resplen, user, SMTP_AUTH_USER_MAX + 1,
	    digest, sizeof(digest));
	if (r == SMTP_AUTHP_OK) {
		fuzz_check_user(user);
		if (strlen(digest) != SMTP_AUTH_DIGEST_LEN ||
		    strspn(digest, "0123456789abcdef") != SMTP_AUTH_DIGEST_LEN)
			abort();
	} else if (digest[0] != '\0')
		abort();
	free(user);
	free(pass);
	return 0;
}
