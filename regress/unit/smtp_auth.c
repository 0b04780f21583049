/*
 * smtpd/smtp_authparse.c: the AUTH argument, PLAIN responses (NULs,
 * authzid, lengths, base64) and LOGIN fields.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base64.h"
#include "../../smtpd/smtp.h"
#include "tap.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

static const struct {
	const char		*arg;
	int			 ret;
	enum smtp_auth_mech	 mech;
	const char		*init;		/* NULL: none */
} cmds[] = {
	{ "PLAIN", 0, SMTP_AUTH_PLAIN, NULL },
	{ "plain", 0, SMTP_AUTH_PLAIN, NULL },
	{ "LOGIN", 0, SMTP_AUTH_LOGIN, NULL },
	{ "PLAIN AGEAYg==", 0, SMTP_AUTH_PLAIN, "AGEAYg==" },
	{ "PLAIN =", 0, SMTP_AUTH_PLAIN, "=" },
	{ "LOGIN YQ==", 0, SMTP_AUTH_LOGIN, "YQ==" },
	{ "CRAM-MD5", 0, SMTP_AUTH_CRAM, NULL },
	{ "CRAM-MD5X", 0, SMTP_AUTH_UNKNOWN, NULL },
	{ "PLAINX", 0, SMTP_AUTH_UNKNOWN, NULL },
	{ "", -1, SMTP_AUTH_NONE, NULL },
	{ " PLAIN", -1, SMTP_AUTH_NONE, NULL },
	{ "PLAIN ", -1, SMTP_AUTH_PLAIN, NULL },
	{ "PLAIN a b", -1, SMTP_AUTH_PLAIN, NULL },
};

/* base64 of raw octets (len given: they may hold NULs). */
static const char *
enc(const char *raw, size_t len)
{
	static char	 out[BASE64_LEN(4096)];

	if (base64_encode(raw, len, out, sizeof(out)) == -1)
		return "";
	return out;
}

#define PL(s)	enc((s), sizeof(s) - 1)

static void
test_cmd(void)
{
	enum smtp_auth_mech	 mech;
	const char		*init;
	size_t			 i, len;
	char			 name[128];
	int			 r;

	for (i = 0; i < NITEMS(cmds); i++) {
		r = smtp_auth_parse_cmd(cmds[i].arg, strlen(cmds[i].arg),
		    &mech, &init, &len);
		(void)snprintf(name, sizeof(name), "AUTH \"%s\"", cmds[i].arg);
		is_int(r, cmds[i].ret, name);
		if (r != 0)
			continue;
		is_int(mech, cmds[i].mech, "mechanism");
		if (cmds[i].init == NULL)
			ok(init == NULL, "no initial response");
		else
			ok(init != NULL && len == strlen(cmds[i].init) &&
			    memcmp(init, cmds[i].init, len) == 0,
			    "initial response");
	}
}

static void
test_plain(void)
{
	char		 user[SMTP_AUTH_USER_MAX + 1], pass[SMTP_AUTH_PASS_MAX + 1];
	char		 big[1100], b[8];
	const char	*s;

	s = PL("\0alice\0pw");
	is_int(smtp_auth_parse_plain(s, strlen(s), user, sizeof(user), pass,
	    sizeof(pass)), SMTP_AUTHP_OK, "PLAIN: empty authzid");
	is_str(user, "alice", "user");
	is_str(pass, "pw", "password");
	s = PL("alice\0alice\0p w");
	is_int(smtp_auth_parse_plain(s, strlen(s), user, sizeof(user), pass,
	    sizeof(pass)), SMTP_AUTHP_OK, "PLAIN: authzid = authcid");
	is_str(pass, "p w", "a space in the password");
	s = PL("bob\0alice\0pw");
	is_int(smtp_auth_parse_plain(s, strlen(s), user, sizeof(user), pass,
	    sizeof(pass)), SMTP_AUTHP_REFUSE, "PLAIN: another authzid");
	ok(user[0] == '\0' && pass[0] == '\0', "nothing kept on refusal");
	s = PL("\0alice\0p\0w");
	is_int(smtp_auth_parse_plain(s, strlen(s), user, sizeof(user), pass,
	    sizeof(pass)), SMTP_AUTHP_SYNTAX, "PLAIN: third NUL");
	s = PL("alice\0pw");
	is_int(smtp_auth_parse_plain(s, strlen(s), user, sizeof(user), pass,
	    sizeof(pass)), SMTP_AUTHP_SYNTAX, "PLAIN: one NUL");
	s = PL("\0\0pw");
	is_int(smtp_auth_parse_plain(s, strlen(s), user, sizeof(user), pass,
	    sizeof(pass)), SMTP_AUTHP_SYNTAX, "PLAIN: empty authcid");
	s = PL("\0alice\0");
	is_int(smtp_auth_parse_plain(s, strlen(s), user, sizeof(user), pass,
	    sizeof(pass)), SMTP_AUTHP_SYNTAX, "PLAIN: empty password");
	s = PL("\0al ice\0pw");
	is_int(smtp_auth_parse_plain(s, strlen(s), user, sizeof(user), pass,
	    sizeof(pass)), SMTP_AUTHP_REFUSE, "PLAIN: space in the user");
	is_int(smtp_auth_parse_plain("=", 1, user, sizeof(user), pass,
	    sizeof(pass)), SMTP_AUTHP_SYNTAX, "PLAIN: \"=\" (empty)");
	is_int(smtp_auth_parse_plain("AGEAYg=", 7, user, sizeof(user), pass,
	    sizeof(pass)), SMTP_AUTHP_BASE64, "PLAIN: bad base64");
	is_int(smtp_auth_parse_plain("*", 1, user, sizeof(user), pass,
	    sizeof(pass)), SMTP_AUTHP_BASE64, "PLAIN: \"*\" is not base64");
	memset(big, 'x', sizeof(big));
	big[0] = big[6] = '\0';
	memcpy(big + 1, "alice", 5);
	s = enc(big, sizeof(big));
	is_int(smtp_auth_parse_plain(s, strlen(s), user, sizeof(user), pass,
	    sizeof(pass)), SMTP_AUTHP_REFUSE, "PLAIN: password over 1024");
	/* A password of exactly SMTP_AUTH_PASS_MAX octets fits. */
	s = enc(big, 7 + SMTP_AUTH_PASS_MAX);
	is_int(smtp_auth_parse_plain(s, strlen(s), user, sizeof(user), pass,
	    sizeof(pass)), SMTP_AUTHP_OK, "PLAIN: password of 1024");
	is_int((int)strlen(pass), SMTP_AUTH_PASS_MAX, "its length");
	/* Output buffers smaller than the fields: refused, not cut. */
	s = PL("\0alice\0pw");
	is_int(smtp_auth_parse_plain(s, strlen(s), b, 5, pass, sizeof(pass)),
	    SMTP_AUTHP_REFUSE, "PLAIN: user longer than the buffer");
}

static void
test_field(void)
{
	char		 out[SMTP_AUTH_PASS_MAX + 1];
	const char	*s;

	s = PL("alice");
	is_int(smtp_auth_parse_field(s, strlen(s), 1, out, sizeof(out)),
	    SMTP_AUTHP_OK, "LOGIN user");
	is_str(out, "alice", "its value");
	s = PL("pass word");
	is_int(smtp_auth_parse_field(s, strlen(s), 0, out, sizeof(out)),
	    SMTP_AUTHP_OK, "LOGIN password with a space");
	is_int(smtp_auth_parse_field(s, strlen(s), 1, out, sizeof(out)),
	    SMTP_AUTHP_REFUSE, "a user with a space: refused");
	s = PL("a\0b");
	is_int(smtp_auth_parse_field(s, strlen(s), 0, out, sizeof(out)),
	    SMTP_AUTHP_SYNTAX, "a NUL in a LOGIN field");
	is_int(smtp_auth_parse_field("=", 1, 1, out, sizeof(out)),
	    SMTP_AUTHP_SYNTAX, "an empty user");
	is_int(smtp_auth_parse_field("=", 1, 0, out, sizeof(out)),
	    SMTP_AUTHP_REFUSE, "an empty password");
	is_int(smtp_auth_parse_field("YW", 2, 0, out, sizeof(out)),
	    SMTP_AUTHP_BASE64, "bad base64");
}

int
main(void)
{
	test_cmd();
	test_plain();
	test_field();
	return done_testing();
}
