/*
 * smtpd/smtp_parse.c and smtpd/smtp_data.c: one row per case.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailaddr.h"
#include "sqmail.h"
#include "tap.h"
#include "../../smtpd/smtp.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

struct cmd_case {
	const char	*name;
	const char	*line;
	size_t		 len;		/* 0: strlen(line) */
	int		 ret;
	enum smtp_verb	 verb;
	const char	*arg;
};

static const struct cmd_case cmd_cases[] = {
	{ "helo_with_domain", "HELO example.org", 0, 0, SMTP_CMD_HELO,
	    "example.org" },
	{ "ehlo_lower_case", "ehlo x", 0, 0, SMTP_CMD_EHLO, "x" },
	{ "mixed_case_verb", "MaIl FROM:<a@b.c>", 0, 0, SMTP_CMD_MAIL,
	    "FROM:<a@b.c>" },
	{ "trailing_blanks_cut", "RCPT TO:<a@b.c> \t ", 0, 0, SMTP_CMD_RCPT,
	    "TO:<a@b.c>" },
	{ "extra_spaces_after_verb", "MAIL   FROM:<>", 0, 0, SMTP_CMD_MAIL,
	    "FROM:<>" },
	{ "data_no_arg", "DATA", 0, 0, SMTP_CMD_DATA, "" },
	{ "data_trailing_space", "DATA   ", 0, 0, SMTP_CMD_DATA, "" },
	{ "quit_trailing_tab", "QUIT\t", 0, 0, SMTP_CMD_QUIT, "" },
	{ "rset", "rset", 0, 0, SMTP_CMD_RSET, "" },
	{ "noop_with_text", "NOOP hello there", 0, 0, SMTP_CMD_NOOP,
	    "hello there" },
	{ "vrfy", "VRFY root", 0, 0, SMTP_CMD_VRFY, "root" },
	{ "expn", "EXPN list", 0, 0, SMTP_CMD_EXPN, "list" },
	{ "help", "HELP", 0, 0, SMTP_CMD_HELP, "" },
	{ "starttls", "STARTTLS", 0, 0, SMTP_CMD_STARTTLS, "" },
	{ "starttls_lower_case_with_arg", "starttls now", 0, 0,
	    SMTP_CMD_STARTTLS, "now" },
	{ "auth", "AUTH PLAIN", 0, 0, SMTP_CMD_AUTH, "PLAIN" },
	{ "bdat_not_offered", "BDAT 10 LAST", 0, 0, SMTP_CMD_NOTIMPL,
	    "10 LAST" },
	{ "http_get", "GET / HTTP/1.1", 0, 0, SMTP_CMD_HTTP, "/ HTTP/1.1" },
	{ "http_post", "POST /x HTTP/1.0", 0, 0, SMTP_CMD_HTTP,
	    "/x HTTP/1.0" },
	{ "http_connect", "CONNECT a:25 HTTP/1.0", 0, 0, SMTP_CMD_HTTP,
	    "a:25 HTTP/1.0" },
	{ "unknown_verb", "FOO bar", 0, 0, SMTP_CMD_UNKNOWN, "bar" },
	{ "empty_line", "", 0, 0, SMTP_CMD_UNKNOWN, "" },
	{ "verb_prefix_is_unknown", "HEL x", 0, 0, SMTP_CMD_UNKNOWN, "x" },
	{ "verb_glued_to_arg", "MAILFROM:<a@b.c>", 0, 0, SMTP_CMD_UNKNOWN,
	    "" },
	{ "leading_space_unknown", " NOOP", 0, 0, SMTP_CMD_UNKNOWN, "NOOP" },
	{ "nul_refused", "NOOP a\0b", 8, -1, SMTP_CMD_UNKNOWN, "" },
	{ "bare_cr_refused", "NOOP a\rb", 0, -1, SMTP_CMD_UNKNOWN, "" },
	{ "bare_lf_refused", "NOOP a\nb", 0, -1, SMTP_CMD_UNKNOWN, "" },
	{ "smuggled_lf_in_mail", "MAIL FROM:<a@b.c>\nRCPT TO:<x@y.z>", 0, -1,
	    SMTP_CMD_UNKNOWN, "" },
	{ "length_honoured", "QUIT now", 4, 0, SMTP_CMD_QUIT, "" },
};

static void
test_commands(void)
{
	struct smtp_cmd	 cmd;
	char		 name[128], arg[SQ_LINE_MAX];
	size_t		 i, len;
	int		 r;

	for (i = 0; i < NITEMS(cmd_cases); i++) {
		const struct cmd_case *c = &cmd_cases[i];

		len = c->len ? c->len : strlen(c->line);
		r = smtp_parse_command(c->line, len, &cmd);
		snprintf(name, sizeof(name), "command %s: result", c->name);
		is_int(r, c->ret, name);
		if (r != 0)
			continue;
		snprintf(name, sizeof(name), "command %s: verb", c->name);
		is_int(cmd.verb, c->verb, name);
		snprintf(arg, sizeof(arg), "%.*s", (int)cmd.arglen, cmd.arg);
		snprintf(name, sizeof(name), "command %s: argument", c->name);
		is_str(arg, c->arg, name);
	}
	is_str(smtp_verb_name(SMTP_CMD_EHLO), "EHLO", "verb_name_ehlo");
	is_str(smtp_verb_name(SMTP_CMD_UNKNOWN), "UNKNOWN",
	    "verb_name_unknown");
}

struct path_case {
	const char	*name;
	int		 rcpt;		/* 0: MAIL, 1: RCPT */
	const char	*arg;
	int		 ret;
	const char	*user;
	const char	*domain;
	int		 has_size;
	uint64_t	 size;
	enum smtp_body	 body;
	int		 count;
};

static const struct path_case path_cases[] = {
	{ "mail_plain", 0, "FROM:<a@b.c>", SMTP_P_OK, "a", "b.c", 0, 0, 0, 0 },
	{ "mail_lower_case_keyword", 0, "from:<a@B.C>", SMTP_P_OK, "a", "b.c",
	    0, 0, 0, 0 },
	{ "mail_one_space_after_colon", 0, "FROM: <a@b.c>", SMTP_P_OK, "a",
	    "b.c", 0, 0, 0, 0 },
	{ "mail_two_spaces_after_colon", 0, "FROM:  <a@b.c>", SMTP_P_SYNTAX,
	    "", "", 0, 0, 0, 0 },
	{ "mail_null_sender", 0, "FROM:<>", SMTP_P_OK, "", "", 0, 0, 0, 0 },
	{ "mail_null_sender_size", 0, "FROM:<> SIZE=100", SMTP_P_OK, "", "",
	    1, 100, 0, 1 },
	{ "mail_size_and_body", 0, "FROM:<a@b.c> SIZE=100 BODY=8BITMIME",
	    SMTP_P_OK, "a", "b.c", 1, 100, SMTP_BODY_8BITMIME, 2 },
	{ "mail_body_7bit_lower", 0, "FROM:<a@b.c> body=7bit", SMTP_P_OK,
	    "a", "b.c", 0, 0, SMTP_BODY_7BIT, 1 },
	{ "mail_params_extra_spaces", 0, "FROM:<a@b.c>  SIZE=5   BODY=7BIT",
	    SMTP_P_OK, "a", "b.c", 1, 5, SMTP_BODY_7BIT, 2 },
	{ "mail_size_zero", 0, "FROM:<a@b.c> SIZE=0", SMTP_P_OK, "a", "b.c",
	    1, 0, 0, 1 },
	{ "mail_size_huge_is_max", 0,
	    "FROM:<a@b.c> SIZE=99999999999999999999999", SMTP_P_OK, "a", "b.c",
	    1, UINT64_MAX, 0, 1 },
	{ "mail_size_over_llong_is_max", 0,
	    "FROM:<a@b.c> SIZE=9223372036854775808", SMTP_P_OK, "a", "b.c",
	    1, UINT64_MAX, 0, 1 },
	{ "mail_size_empty", 0, "FROM:<a@b.c> SIZE=", SMTP_P_SYNTAX, "a",
	    "b.c", 0, 0, 0, 0 },
	{ "mail_size_no_value", 0, "FROM:<a@b.c> SIZE", SMTP_P_PARAMVAL, "a",
	    "b.c", 0, 0, 0, 1 },
	{ "mail_size_not_digits", 0, "FROM:<a@b.c> SIZE=12a", SMTP_P_PARAMVAL,
	    "a", "b.c", 0, 0, 0, 1 },
	{ "mail_size_negative", 0, "FROM:<a@b.c> SIZE=-1", SMTP_P_PARAMVAL,
	    "a", "b.c", 0, 0, 0, 1 },
	{ "mail_size_twice", 0, "FROM:<a@b.c> SIZE=1 SIZE=2", SMTP_P_PARAMVAL,
	    "a", "b.c", 1, 1, 0, 2 },
	{ "mail_body_binarymime", 0, "FROM:<a@b.c> BODY=BINARYMIME",
	    SMTP_P_PARAMVAL, "a", "b.c", 0, 0, 0, 1 },
	{ "mail_body_twice", 0, "FROM:<a@b.c> BODY=7BIT BODY=7BIT",
	    SMTP_P_PARAMVAL, "a", "b.c", 0, 0, SMTP_BODY_7BIT, 2 },
	{ "mail_unknown_param", 0, "FROM:<a@b.c> FOO=bar", SMTP_P_PARAM, "a",
	    "b.c", 0, 0, 0, 1 },
	{ "mail_auth_not_offered", 0, "FROM:<a@b.c> AUTH=<>", SMTP_P_PARAM,
	    "a", "b.c", 0, 0, 0, 1 },
	{ "mail_smtputf8_not_offered", 0, "FROM:<a@b.c> SMTPUTF8",
	    SMTP_P_PARAM, "a", "b.c", 0, 0, 0, 1 },
	{ "mail_param_glued_to_path", 0, "FROM:<a@b.c>SIZE=1", SMTP_P_SYNTAX,
	    "a", "b.c", 0, 0, 0, 0 },
	{ "mail_param_no_keyword", 0, "FROM:<a@b.c> =x", SMTP_P_SYNTAX, "a",
	    "b.c", 0, 0, 0, 0 },
	{ "mail_param_keyword_hyphen_first", 0, "FROM:<a@b.c> -X=1",
	    SMTP_P_SYNTAX, "a", "b.c", 0, 0, 0, 0 },
	{ "mail_param_value_with_equals", 0, "FROM:<a@b.c> X=a=b",
	    SMTP_P_SYNTAX, "a", "b.c", 0, 0, 0, 0 },
	{ "mail_param_value_8bit", 0, "FROM:<a@b.c> X=\xff", SMTP_P_SYNTAX,
	    "a", "b.c", 0, 0, 0, 0 },
	{ "mail_no_brackets", 0, "FROM:a@b.c", SMTP_P_SYNTAX, "", "", 0, 0,
	    0, 0 },
	{ "mail_unclosed_bracket", 0, "FROM:<a@b.c", SMTP_P_SYNTAX, "", "",
	    0, 0, 0, 0 },
	{ "mail_no_colon", 0, "FROM <a@b.c>", SMTP_P_SYNTAX, "", "", 0, 0,
	    0, 0 },
	{ "mail_empty", 0, "", SMTP_P_SYNTAX, "", "", 0, 0, 0, 0 },
	{ "mail_keyword_only", 0, "FROM:", SMTP_P_SYNTAX, "", "", 0, 0, 0, 0 },
	{ "mail_to_keyword", 0, "TO:<a@b.c>", SMTP_P_SYNTAX, "", "", 0, 0,
	    0, 0 },
	{ "mail_bad_address", 0, "FROM:<a b@c.d>", SMTP_P_ADDR, "", "", 0, 0,
	    0, 0 },
	{ "mail_no_domain", 0, "FROM:<user>", SMTP_P_ADDR, "", "", 0, 0, 0,
	    0 },
	{ "mail_source_route_dropped", 0, "FROM:<@x.org,@y.org:a@b.c>",
	    SMTP_P_OK, "a", "b.c", 0, 0, 0, 0 },
	{ "mail_source_route_one_hop", 0, "FROM:<@x.org:a@b.c>", SMTP_P_OK,
	    "a", "b.c", 0, 0, 0, 0 },
	{ "mail_source_route_bad_domain", 0, "FROM:<@x..org:a@b.c>",
	    SMTP_P_ADDR, "", "", 0, 0, 0, 0 },
	{ "mail_source_route_no_colon", 0, "FROM:<@x.org a@b.c>", SMTP_P_ADDR,
	    "", "", 0, 0, 0, 0 },
	{ "mail_source_route_only", 0, "FROM:<@x.org:>", SMTP_P_ADDR, "", "",
	    0, 0, 0, 0 },
	{ "mail_source_route_comma_end", 0, "FROM:<@x.org,:a@b.c>",
	    SMTP_P_ADDR, "", "", 0, 0, 0, 0 },
	{ "mail_quoted_with_bracket", 0, "FROM:<\"a>b\"@c.d>", SMTP_P_OK,
	    "\"a>b\"", "c.d", 0, 0, 0, 0 },
	{ "mail_quoted_escaped_quote", 0, "FROM:<\"a\\\">\"@c.d> SIZE=1",
	    SMTP_P_OK, "\"a\\\">\"", "c.d", 1, 1, 0, 1 },
	{ "mail_quoted_unclosed", 0, "FROM:<\"a@c.d>", SMTP_P_SYNTAX, "", "",
	    0, 0, 0, 0 },
	{ "mail_address_literal", 0, "FROM:<a@[192.0.2.1]>", SMTP_P_OK, "a",
	    "[192.0.2.1]", 0, 0, 0, 0 },
	{ "mail_crlf_in_path", 0, "FROM:<a@b.c\r\n>", SMTP_P_ADDR, "", "", 0,
	    0, 0, 0 },

	{ "rcpt_plain", 1, "TO:<a@b.c>", SMTP_P_OK, "a", "b.c", 0, 0, 0, 0 },
	{ "rcpt_space_after_colon", 1, "to: <A@B.C>", SMTP_P_OK, "A", "b.c",
	    0, 0, 0, 0 },
	{ "rcpt_null_refused", 1, "TO:<>", SMTP_P_ADDR, "", "", 0, 0, 0, 0 },
	{ "rcpt_postmaster_bare", 1, "TO:<postmaster>", SMTP_P_OK,
	    "postmaster", "", 0, 0, 0, 0 },
	{ "rcpt_postmaster_any_case", 1, "TO:<PostMaster>", SMTP_P_OK,
	    "postmaster", "", 0, 0, 0, 0 },
	{ "rcpt_postmaster_with_domain", 1, "TO:<Postmaster@X.org>",
	    SMTP_P_OK, "Postmaster", "x.org", 0, 0, 0, 0 },
	{ "rcpt_postmaster_param", 1, "TO:<postmaster> FOO", SMTP_P_PARAM,
	    "postmaster", "", 0, 0, 0, 1 },
	{ "rcpt_param_not_offered", 1, "TO:<a@b.c> NOTIFY=NEVER",
	    SMTP_P_PARAM, "a", "b.c", 0, 0, 0, 1 },
	{ "rcpt_size_not_for_rcpt", 1, "TO:<a@b.c> SIZE=1", SMTP_P_PARAM,
	    "a", "b.c", 1, 1, 0, 1 },
	{ "rcpt_source_route_dropped", 1, "TO:<@r.org:a@b.c>", SMTP_P_OK,
	    "a", "b.c", 0, 0, 0, 0 },
	{ "rcpt_no_domain", 1, "TO:<user>", SMTP_P_ADDR, "", "", 0, 0, 0, 0 },
	{ "rcpt_trailing_space_ok", 1, "TO:<a@b.c> ", SMTP_P_OK, "a", "b.c",
	    0, 0, 0, 0 },
	{ "rcpt_from_keyword", 1, "FROM:<a@b.c>", SMTP_P_SYNTAX, "", "", 0, 0,
	    0, 0 },
	{ "rcpt_no_brackets", 1, "TO:a@b.c", SMTP_P_SYNTAX, "", "", 0, 0, 0,
	    0 },
	{ "rcpt_postmasterx_is_plain_path", 1, "TO:<postmasterx>",
	    SMTP_P_ADDR, "", "", 0, 0, 0, 0 },
};

static void
test_paths(void)
{
	struct mailaddr		 a;
	struct smtp_params	 p;
	char			 name[128];
	size_t			 i;
	int			 r;

	for (i = 0; i < NITEMS(path_cases); i++) {
		const struct path_case *c = &path_cases[i];

		if (c->rcpt)
			r = smtp_parse_rcpt(c->arg, strlen(c->arg), &a, &p);
		else
			r = smtp_parse_mail(c->arg, strlen(c->arg), &a, &p);
		snprintf(name, sizeof(name), "%s: result", c->name);
		is_int(r, c->ret, name);
		snprintf(name, sizeof(name), "%s: user", c->name);
		is_str(a.user, c->user, name);
		snprintf(name, sizeof(name), "%s: domain", c->name);
		is_str(a.domain, c->domain, name);
		snprintf(name, sizeof(name), "%s: params", c->name);
		ok(p.has_size == c->has_size && p.size == c->size &&
		    p.body == c->body && p.count == c->count, name);
		if (p.has_size != c->has_size || p.size != c->size ||
		    p.body != c->body || p.count != c->count)
			printf("#   got size %d/%llu body %d count %d\n",
			    p.has_size, (unsigned long long)p.size, p.body,
			    p.count);
	}
}

struct helo_case {
	const char	*name;
	const char	*arg;
	int		 ret;
	const char	*out;
};

static const struct helo_case helo_cases[] = {
	{ "helo_domain", "mail.example.org", 0, "mail.example.org" },
	{ "helo_literal", "[192.0.2.1]", 0, "[192.0.2.1]" },
	{ "helo_first_word_only", "host extra words", 0, "host" },
	{ "helo_odd_but_printable", "MY_PC", 0, "MY_PC" },
	{ "helo_empty", "", -1, "" },
	{ "helo_control_byte", "a\x01" "b", -1, "" },
	{ "helo_tab", "a\tb", -1, "" },
	{ "helo_eight_bit", "h\xc3\xa9", -1, "" },
};

static void
test_helo(void)
{
	char	 out[SQ_DOMAIN_MAX + 1], big[SQ_DOMAIN_MAX + 2], name[128];
	size_t	 i;

	for (i = 0; i < NITEMS(helo_cases); i++) {
		const struct helo_case *c = &helo_cases[i];

		out[0] = '\0';
		snprintf(name, sizeof(name), "%s: result", c->name);
		is_int(smtp_parse_helo(c->arg, strlen(c->arg), out,
		    sizeof(out)), c->ret, name);
		snprintf(name, sizeof(name), "%s: value", c->name);
		is_str(out, c->out, name);
	}
	memset(big, 'a', sizeof(big) - 1);
	is_int(smtp_parse_helo(big, SQ_DOMAIN_MAX, out, sizeof(out)), 0,
	    "helo_255_accepted");
	is_int(smtp_parse_helo(big, SQ_DOMAIN_MAX + 1, out, sizeof(out)), -1,
	    "helo_256_refused");
}

struct data_case {
	const char	*name;
	const char	*in;
	int		 barelf_reject;
	uint64_t	 max;
	const char	*out;
	uint32_t	 flags;
	long		 consumed;	/* -1: all of it */
};

#define B_LF	SMTP_DATA_BARELF
#define B_CR	SMTP_DATA_BARECR
#define DONE	SMTP_DATA_DONE

static const struct data_case data_cases[] = {
	{ "data_simple", "hello\r\n.\r\n", 0, 0, "hello\n", DONE, -1 },
	{ "data_empty_message", ".\r\n", 0, 0, "", DONE, -1 },
	{ "data_empty_first_line", "\r\n.\r\n", 0, 0, "\n", DONE, -1 },
	{ "data_headers_and_body", "Subject: x\r\n\r\nbody\r\n.\r\n", 0, 0,
	    "Subject: x\n\nbody\n", DONE, -1 },
	{ "data_dot_unstuffed", "..dot\r\n.\r\n", 0, 0, ".dot\n", DONE, -1 },
	{ "data_lone_stuffed_dot", "..\r\n.\r\n", 0, 0, ".\n", DONE, -1 },
	{ "data_dot_stuffing_dropped", ".x\r\n.\r\n", 0, 0, "x\n", DONE, -1 },
	{ "data_dot_space", ". \r\n.\r\n", 0, 0, " \n", DONE, -1 },
	{ "data_dot_mid_line_kept", "a.b\r\n.\r\n", 0, 0, "a.b\n", DONE, -1 },
	{ "data_rest_is_next_command", "a\r\n.\r\nQUIT\r\n", 0, 0, "a\n",
	    DONE, 6 },
	{ "data_not_ended", "abc", 0, 0, "abc", 0, -1 },
	{ "data_cr_held", "abc\r", 0, 0, "abc", 0, -1 },
	{ "data_dot_held", "abc\r\n.", 0, 0, "abc\n", 0, -1 },
	{ "data_dot_cr_held", "abc\r\n.\r", 0, 0, "abc\n", 0, -1 },
	{ "data_crcrlf_is_bare_cr", "a\r\r\n.\r\n", 0, 0, "a\r\n",
	    DONE | B_CR, -1 },

	/* SMTP smuggling: none of these end the data. */
	{ "smuggle_lf_dot_lf", "a\n.\nMAIL FROM:<x@y.z>\r\n.\r\n", 0, 0,
	    "a\n.\nMAIL FROM:<x@y.z>\n", DONE | B_LF, -1 },
	{ "smuggle_lf_dot_crlf", "a\n.\r\nRCPT TO:<x@y.z>\r\n.\r\n", 0, 0,
	    "a\n.\nRCPT TO:<x@y.z>\n", DONE | B_LF, -1 },
	{ "smuggle_cr_dot_cr", "a\r.\rDATA\r\n.\r\n", 0, 0, "a\r.\rDATA\n",
	    DONE | B_CR, -1 },
	{ "smuggle_crlf_dot_lf", "a\r\n.\nQUIT\r\n.\r\n", 0, 0,
	    "a\n\nQUIT\n", DONE | B_LF, -1 },
	{ "smuggle_crlf_dot_cr", "a\r\n.\rQUIT\r\n.\r\n", 0, 0,
	    "a\n\rQUIT\n", DONE | B_CR, -1 },
	{ "smuggle_cr_dot_crlf", "a\r.\r\nb\r\n.\r\n", 0, 0, "a\r.\nb\n",
	    DONE | B_CR, -1 },
	{ "smuggle_lf_only_message", "a\nb\n.\n", 0, 0, "a\nb\n.\n", B_LF,
	    -1 },
	{ "smuggle_bare_lf_refused", "a\n.\nMAIL FROM:<x@y.z>\r\n.\r\n", 1, 0,
	    "a", DONE | B_LF, -1 },
	{ "bare_cr_not_refused", "a\rb\r\n.\r\n", 1, 0, "a\rb\n",
	    DONE | B_CR, -1 },

	{ "data_too_big", "123456\r\n.\r\n", 0, 5, "12345",
	    DONE | SMTP_DATA_TOOBIG, -1 },
	{ "data_size_at_limit", "1234\r\n.\r\n", 0, 5, "1234\n", DONE, -1 },
	{ "data_received_counted_in_headers", "Received: a\r\n"
	    "DELIVERED-TO: b\r\nreceived:c\r\n\r\nReceived: d\r\n.\r\n", 0, 0,
	    "Received: a\nDELIVERED-TO: b\nreceived:c\n\nReceived: d\n",
	    DONE, -1 },
};

static void
data_run(const struct data_case *c, size_t step, char *out, size_t *outlen,
    struct smtp_data *d, size_t *consumed)
{
	size_t	 len = strlen(c->in), i, n, used;

	smtp_data_init(d, c->max, c->barelf_reject);
	*outlen = 0;
	*consumed = 0;
	for (i = 0; i < len; i += used) {
		n = len - i < step ? len - i : step;
		used = smtp_data_feed(d, c->in + i, n, out + *outlen, &n);
		*outlen += n;
		*consumed += used;
		if (d->flags & SMTP_DATA_DONE)
			break;
	}
	out[*outlen] = '\0';
}

static void
test_data_cases(void)
{
	struct smtp_data d;
	char		 out[1024], name[160];
	size_t		 i, outlen, consumed, steps[] = { 4096, 1, 2, 3 }, k;
	long		 want;

	for (i = 0; i < NITEMS(data_cases); i++) {
		const struct data_case *c = &data_cases[i];

		want = c->consumed == -1 ? (long)strlen(c->in) : c->consumed;
		for (k = 0; k < NITEMS(steps); k++) {
			data_run(c, steps[k], out, &outlen, &d, &consumed);
			snprintf(name, sizeof(name), "%s (chunks of %zu): stored",
			    c->name, steps[k]);
			ok(outlen == strlen(c->out) &&
			    memcmp(out, c->out, outlen) == 0, name);
			snprintf(name, sizeof(name), "%s (chunks of %zu): flags",
			    c->name, steps[k]);
			is_int(d.flags, c->flags, name);
			snprintf(name, sizeof(name),
			    "%s (chunks of %zu): consumed", c->name, steps[k]);
			is_int(consumed, want, name);
		}
	}
}

/* Build n header lines named hdr, a body, and the end of data. */
static char *
hops_message(const char *hdr, int n)
{
	char	*s;
	size_t	 len = (strlen(hdr) + 8) * n + 32, off = 0;
	int	 i;

	if ((s = malloc(len)) == NULL)
		abort();
	for (i = 0; i < n; i++)
		off += snprintf(s + off, len - off, "%s: x\r\n", hdr);
	snprintf(s + off, len - off, "\r\nbody\r\n.\r\n");
	return s;
}

static uint32_t
data_flags(const char *in, size_t len, uint64_t max, size_t *outlen)
{
	struct smtp_data d;
	char		*out;

	if ((out = malloc(len + 1)) == NULL)
		abort();
	smtp_data_init(&d, max, 1);
	(void)smtp_data_feed(&d, in, len, out, outlen);
	free(out);
	return d.flags;
}

static void
test_data_limits(void)
{
	struct smtp_data d;
	char		*s, line[2100], out[2100];
	size_t		 outlen;

	s = hops_message("Received", SQ_HOPS_MAX);
	is_int(data_flags(s, strlen(s), 0, &outlen), DONE,
	    "hops_at_limit_accepted");
	free(s);
	s = hops_message("Received", SQ_HOPS_MAX + 1);
	is_int(data_flags(s, strlen(s), 0, &outlen), DONE | SMTP_DATA_LOOP,
	    "hops_over_limit_is_loop");
	free(s);
	s = hops_message("Delivered-To", SQ_HOPS_MAX + 1);
	is_int(data_flags(s, strlen(s), 0, &outlen), DONE | SMTP_DATA_LOOP,
	    "delivered_to_counts_as_hop");
	free(s);
	s = hops_message(" Received", SQ_HOPS_MAX + 1);
	is_int(data_flags(s, strlen(s), 0, &outlen), DONE,
	    "continuation_lines_not_counted");
	free(s);

	/* 998 octets and CRLF is the longest text line. */
	memset(line, 'x', SQ_TEXTLINE_MAX - 2);
	strlcpy(line + SQ_TEXTLINE_MAX - 2, "\r\n.\r\n",
	    sizeof(line) - SQ_TEXTLINE_MAX + 2);
	is_int(data_flags(line, strlen(line), 0, &outlen), DONE,
	    "line_998_accepted");
	is_int(outlen, SQ_TEXTLINE_MAX - 1, "line_998_stored");
	memset(line, 'x', SQ_TEXTLINE_MAX - 1);
	strlcpy(line + SQ_TEXTLINE_MAX - 1, "\r\n.\r\n",
	    sizeof(line) - SQ_TEXTLINE_MAX + 1);
	is_int(data_flags(line, strlen(line), 0, &outlen),
	    DONE | SMTP_DATA_LONGLINE, "line_999_too_long");
	is_int(outlen, SQ_TEXTLINE_MAX - 2, "line_too_long_output_stops");
	/* The stuffing dot does not count (RFC 5321 4.5.3.1.6). */
	line[0] = '.';
	memset(line + 1, 'x', SQ_TEXTLINE_MAX - 2);
	strlcpy(line + SQ_TEXTLINE_MAX - 1, "\r\n.\r\n",
	    sizeof(line) - SQ_TEXTLINE_MAX + 1);
	is_int(data_flags(line, strlen(line), 0, &outlen), DONE,
	    "stuffing_dot_not_counted");
	/* Bare LF ends a stored line: LF-only text is not one long line. */
	memset(line, 'x', 2000);
	line[900] = '\n';
	strlcpy(line + 1800, "\r\n.\r\n", sizeof(line) - 1800);
	smtp_data_init(&d, 0, 0);
	(void)smtp_data_feed(&d, line, strlen(line), out, &outlen);
	is_int(d.flags, DONE | B_LF, "bare_lf_resets_line_length");
	is_int(smtp_data_refused(&(struct smtp_data){ .flags = B_LF }), 0,
	    "bare_lf_not_refused_when_allowed");
	is_int(smtp_data_refused(&(struct smtp_data){ .flags = B_LF,
	    .barelf_reject = 1 }), 1, "bare_lf_refused_when_rejecting");
}

int
main(void)
{
	test_commands();
	test_paths();
	test_helo();
	test_data_cases();
	test_data_limits();
	return done_testing();
}
