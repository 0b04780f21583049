/*
 * mda/dotqmail.c: the .qmail file names to try, the file parser, the
 * qmail-command environment and the exit code policy.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../mda/dotqmail.h"
#include "sqmail.h"
#include "tap.h"

/* Candidates ------------------------------------------------------ */

struct cand_row {
	const char	*name;
	const char	*dash;
	const char	*ext;
	/* Names in order, '|'-separated, each with "(DEFAULT)" when set. */
	const char	*want;
};

static const struct cand_row cand_rows[] = {
	{ "extension_then_defaults", "-", "foo-bar",
	    ".qmail-foo-bar|.qmail-foo-default(bar)|.qmail-default(foo-bar)" },
	{ "three_parts", "-", "a-b-c",
	    ".qmail-a-b-c|.qmail-a-b-default(c)|.qmail-a-default(b-c)|"
	    ".qmail-default(a-b-c)" },
	{ "trailing_dash", "-", "a-",
	    ".qmail-a-|.qmail-a-default()|.qmail-default(a-)" },
	{ "empty_extension_with_dash", "-", "",
	    ".qmail-|.qmail-default()" },
	{ "basic_address", "", "", ".qmail" },
	{ "empty_dash_has_no_defaults", "", "foo", ".qmailfoo" },
	{ "lowered_dots_to_colons_default_keeps_case", "-", "Foo.Bar",
	    ".qmail-foo:bar|.qmail-default(Foo.Bar)" },
	{ "exact_default_name_sets_default_once", "-", "foo-default",
	    ".qmail-foo-default(default)|.qmail-default(foo-default)" },
	{ "dotdot_slash_only_reaches_default", "-", "../../etc/passwd",
	    ".qmail-default(../../etc/passwd)" },
	{ "slash_skips_names_holding_it", "-", "x-a/b-c",
	    ".qmail-x-default(a/b-c)|.qmail-default(x-a/b-c)" },
	{ "slash_in_first_part", "-", "a/b-c", ".qmail-default(a/b-c)" },
	{ "dots_become_colons_no_dotdot", "-", "..-x",
	    ".qmail-::-x|.qmail-::-default(x)|.qmail-default(..-x)" },
	{ "newline_skipped", "-", "a\nb", ".qmail-default(a\nb)" },
	{ "control_in_tail_only", "-", "a-b\001",
	    ".qmail-a-default(b\001)|.qmail-default(a-b\001)" },
	{ "slash_in_basic_address", "", "a/b", "" },
};

static void
cand_list(const char *dash, const char *ext, char *buf, size_t len)
{
	struct dotqmail_iter	 it;
	const char		*dflt;
	char			 name[DOTQMAIL_NAME_MAX + 1];
	int			 first = 1;

	buf[0] = '\0';
	if (dotqmail_iter_init(&it, dash, ext) == -1) {
		(void)strlcpy(buf, "(init failed)", len);
		return;
	}
	while (dotqmail_iter_next(&it, name, sizeof(name), &dflt) == 1) {
		if (!first)
			(void)strlcat(buf, "|", len);
		first = 0;
		(void)strlcat(buf, name, len);
		if (dflt != NULL) {
			(void)strlcat(buf, "(", len);
			(void)strlcat(buf, dflt, len);
			(void)strlcat(buf, ")", len);
		}
	}
}

static void
test_candidates(void)
{
	struct dotqmail_iter	 it;
	const struct cand_row	*r;
	const char		*dflt;
	char			 buf[2048], name[DOTQMAIL_NAME_MAX + 1];
	char			 ext[DOTQMAIL_EXT_MAX + 2], tname[128];
	char			 want[DOTQMAIL_EXT_MAX + 64];
	size_t			 i;
	int			 n;

	for (i = 0; i < sizeof(cand_rows) / sizeof(cand_rows[0]); i++) {
		r = &cand_rows[i];
		cand_list(r->dash, r->ext, buf, sizeof(buf));
		(void)snprintf(tname, sizeof(tname), "candidates_%s", r->name);
		is_str(buf, r->want, tname);
	}

	ok(dotqmail_iter_init(&it, "x", "a") == -1, "candidates_bad_dash");
	ok(dotqmail_iter_init(&it, "--", "a") == -1,
	    "candidates_two_dash_dash");
	is_int(dotqmail_iter_next(&it, name, sizeof(name), &dflt), 0,
	    "candidates_failed_init_yields_nothing");

	/* The longest extension: its exact name is too long for NAME_MAX. */
	memset(ext, 'e', sizeof(ext));
	ext[DOTQMAIL_EXT_MAX] = '\0';
	cand_list("-", ext, buf, sizeof(buf));
	(void)snprintf(want, sizeof(want), ".qmail-default(%s)", ext);
	is_str(buf, want, "candidates_overlong_name_skipped");
	ext[DOTQMAIL_EXT_MAX] = 'e';
	ext[DOTQMAIL_EXT_MAX + 1] = '\0';
	ok(dotqmail_iter_init(&it, "-", ext) == -1,
	    "candidates_extension_too_long");
	/* 248 octets: .qmail-ext is exactly DOTQMAIL_NAME_MAX long. */
	ext[DOTQMAIL_NAME_MAX - 7] = '\0';
	dotqmail_iter_init(&it, "-", ext);
	n = dotqmail_iter_next(&it, name, sizeof(name), &dflt);
	ok(n == 1 && strlen(name) == DOTQMAIL_NAME_MAX,
	    "candidates_name_of_name_max_octets");
	/* A name that does not fit the caller's buffer is skipped. */
	dotqmail_iter_init(&it, "-", "abc");
	n = dotqmail_iter_next(&it, name, 8, &dflt);
	ok(n == 0 && name[0] == '\0', "candidates_small_buffer_skips");

	is_int(dotqmail_none_found(""), SQ_OK,
	    "none_found_basic_address_default_delivery");
	is_int(dotqmail_none_found("-"), SQ_PERMFAIL,
	    "none_found_extension_bounces");
}

static void
test_owner(void)
{
	char	 o[DOTQMAIL_NAME_MAX + 1], od[DOTQMAIL_NAME_MAX + 1];
	char	 out[SQ_ADDR_MAX];

	ok(dotqmail_owner_names("-", "List.X", o, sizeof(o), od,
	    sizeof(od)) == 0, "owner_names_built");
	is_str(o, ".qmail-list:x-owner", "owner_name_safe_extension");
	is_str(od, ".qmail-list:x-owner-default", "owner_default_name");
	ok(dotqmail_owner_names("-", "", o, sizeof(o), od, sizeof(od)) == 0 &&
	    strcmp(o, ".qmail--owner") == 0, "owner_name_empty_extension");
	ok(dotqmail_owner_names("-", "a/b", o, sizeof(o), od, sizeof(od)) ==
	    -1 && o[0] == '\0' && od[0] == '\0',
	    "owner_name_with_slash_refused");

	ok(dotqmail_newsender("bob@x.org", "list", "h.org", 0, 0, out,
	    sizeof(out)) == 0, "newsender_no_owner_ok");
	is_str(out, "bob@x.org", "newsender_no_owner_keeps_sender");
	dotqmail_newsender("bob@x.org", "list", "h.org", 1, 0, out,
	    sizeof(out));
	is_str(out, "list-owner@h.org", "newsender_owner");
	dotqmail_newsender("bob@x.org", "list", "h.org", 1, 1, out,
	    sizeof(out));
	is_str(out, "list-owner-@h.org-@[]", "newsender_owner_verp");
	dotqmail_newsender("bob@x.org", "list", "h.org", 0, 1, out,
	    sizeof(out));
	is_str(out, "bob@x.org", "newsender_owner_default_alone_ignored");
	dotqmail_newsender("", "list", "h.org", 1, 1, out, sizeof(out));
	is_str(out, "", "newsender_bounce_keeps_null_sender");
	dotqmail_newsender("#@[]", "list", "h.org", 1, 0, out, sizeof(out));
	is_str(out, "#@[]", "newsender_double_bounce_kept");
	dotqmail_newsender("bob@x.org", "\"a b\"", "h.org", 1, 0, out,
	    sizeof(out));
	is_str(out, "\"a b-owner\"@h.org", "newsender_quoted_local");
	ok(dotqmail_newsender("bob@x.org", "list", "h.org", 1, 0, out, 10) ==
	    -1 && out[0] == '\0', "newsender_too_long");
}

/* The parser ------------------------------------------------------- */

struct parse_row {
	const char	*name;
	const char	*in;
	size_t		 inlen;		/* 0: strlen */
	int		 forwardonly;
	int		 status;
	size_t		 errline;
	const char	*errstr;	/* substring, on failure */
	/* On success: "type:arg@line" items, '|'-separated. */
	const char	*want;
};

static const struct parse_row parse_rows[] = {
	{ "maildir", "./Maildir/\n", 0, 0, SQ_OK, 0, NULL,
	    "maildir:./Maildir/@1" },
	{ "mbox", "./Mailbox\n", 0, 0, SQ_OK, 0, NULL, "mbox:./Mailbox@1" },
	{ "absolute_mbox_no_newline", "/var/mail/joe", 0, 0, SQ_OK, 0, NULL,
	    "mbox:/var/mail/joe@1" },
	{ "absolute_maildir", "/home/joe/Maildir/\n", 0, 0, SQ_OK, 0, NULL,
	    "maildir:/home/joe/Maildir/@1" },
	{ "program", "|preline /usr/bin/vacation djb\n", 0, 0, SQ_OK, 0, NULL,
	    "program:preline /usr/bin/vacation djb@1" },
	{ "program_keeps_inner_white_space", "| a\tb  c \n", 0, 0, SQ_OK, 0,
	    NULL, "program: a\tb  c@1" },
	{ "empty_program", "|\n", 0, 0, SQ_OK, 0, NULL, "program:@1" },
	{ "forward_ampersand", "&me@new.job.com\n", 0, 0, SQ_OK, 0, NULL,
	    "forward:me@new.job.com@1" },
	{ "forward_bare", "me@new.job.com\n", 0, 0, SQ_OK, 0, NULL,
	    "forward:me@new.job.com@1" },
	{ "forward_local_only", "&joe\n", 0, 0, SQ_OK, 0, NULL,
	    "forward:joe@1" },
	{ "forward_quoted", "&\"a b\"@x.org\n", 0, 0, SQ_OK, 0, NULL,
	    "forward:\"a b\"@x.org@1" },
	{ "forward_starting_with_dash", "-x@y.org\n", 0, 0, SQ_OK, 0, NULL,
	    "forward:-x@y.org@1" },
	{ "comment_and_trailing_white_space", "# hi\n./Maildir/ \t \n", 0, 0,
	    SQ_OK, 0, NULL, "maildir:./Maildir/@2" },
	{ "blank_lines_after_the_first", "./a/\n\n\t\n&b@c.org\n", 0, 0,
	    SQ_OK, 0, NULL, "maildir:./a/@1|forward:b@c.org@4" },
	{ "order_kept", "&a@b.org\n|prog\n./mbox\n./dir/\n", 0, 0, SQ_OK, 0,
	    NULL, "forward:a@b.org@1|program:prog@2|mbox:./mbox@3|"
	    "maildir:./dir/@4" },
	{ "comments_only_deliver_nowhere", "#\n", 0, 0, SQ_OK, 0, NULL, "" },
	{ "plus_list_alone", "+list\n&a@b.org\n", 0, 0, SQ_OK, 0, NULL,
	    "forward:a@b.org@2" },
	{ "other_plus_lines_ignored", "+other\n&a@b.org\n", 0, 0, SQ_OK, 0,
	    NULL, "forward:a@b.org@2" },
	{ "file_before_plus_list", "./M/\n+list\n&a@b.org\n", 0, 0, SQ_OK, 0,
	    NULL, "maildir:./M/@1|forward:a@b.org@3" },
	{ "forward_only_forwards", "# c\n&a@b.org\nc@d.org\n", 0, 1, SQ_OK,
	    0, NULL, "forward:a@b.org@2|forward:c@d.org@3" },

	{ "first_line_blank", "\n./Maildir/\n", 0, 0, SQ_TEMPFAIL, 1,
	    "first line is blank", NULL },
	{ "first_line_white_space", "  \t\n./Maildir/\n", 0, 0, SQ_TEMPFAIL,
	    1, "first line is blank", NULL },
	{ "just_a_newline", "\n", 0, 0, SQ_TEMPFAIL, 1, "first line", NULL },
	{ "forward_only_file", "&a@b.org\n./M/\n", 0, 1, SQ_TEMPFAIL, 2,
	    "file delivery", NULL },
	{ "forward_only_program", "|x\n", 0, 1, SQ_TEMPFAIL, 1,
	    "program delivery", NULL },
	{ "plus_list_then_program", "+list\n&a@b.org\n|x\n", 0, 0,
	    SQ_TEMPFAIL, 3, "program delivery", NULL },
	{ "nul_byte", "./M/\n&a\0@b.org\n", 15, 0, SQ_TEMPFAIL, 2, "NUL",
	    NULL },
	{ "carriage_return", "./Maildir/\r\n", 0, 0, SQ_TEMPFAIL, 1,
	    "control", NULL },
	{ "escape_byte", "|echo \033[2J\n", 0, 0, SQ_TEMPFAIL, 1, "control",
	    NULL },
	{ "forward_angle_brackets", "&<me@new.job.com>\n", 0, 0, SQ_PERMFAIL,
	    1, "invalid address", NULL },
	{ "forward_leading_space", "./M/\n& me@new.job.com\n", 0, 0,
	    SQ_PERMFAIL, 2, "invalid address", NULL },
	{ "forward_with_comment", "&me@new.job.com (New Address)\n", 0, 0,
	    SQ_PERMFAIL, 1, "invalid address", NULL },
	{ "forward_empty", "&\n", 0, 0, SQ_PERMFAIL, 1, "invalid address",
	    NULL },
	{ "indented_path_is_a_bad_forward", "  ./Maildir/\n", 0, 0,
	    SQ_PERMFAIL, 1, "invalid address", NULL },
	{ "forward_two_addresses", "a@b.org, c@d.org\n", 0, 0, SQ_PERMFAIL, 1,
	    "invalid address", NULL },
	{ "forward_domain_literal_bad", "a@[999.1.1.1]\n", 0, 0, SQ_PERMFAIL,
	    1, "invalid address", NULL },
	{ "forward_eight_bit", "&caf\xc3\xa9@x.org\n", 0, 0, SQ_PERMFAIL, 1,
	    "invalid address", NULL },
};

static const char *
type_name(enum dotqmail_type t)
{
	switch (t) {
	case DOTQMAIL_PROGRAM:
		return "program";
	case DOTQMAIL_FORWARD:
		return "forward";
	case DOTQMAIL_MBOX:
		return "mbox";
	case DOTQMAIL_MAILDIR:
		return "maildir";
	}
	return "?";
}

static void
instr_list(const struct dotqmail *dq, char *buf, size_t len)
{
	char	 item[DOTQMAIL_LINE_MAX + 64];
	size_t	 i;

	buf[0] = '\0';
	for (i = 0; i < dq->ninstr; i++) {
		(void)snprintf(item, sizeof(item), "%s%s:%s@%zu",
		    i > 0 ? "|" : "", type_name(dq->instr[i].type),
		    dq->instr[i].arg, dq->instr[i].line);
		(void)strlcat(buf, item, len);
	}
}

static void
test_parse(void)
{
	const struct parse_row	*r;
	struct dotqmail		*dq;
	const char		*errstr;
	char			 buf[1024], tname[128];
	size_t			 errline, i, len;
	int			 st;

	for (i = 0; i < sizeof(parse_rows) / sizeof(parse_rows[0]); i++) {
		r = &parse_rows[i];
		len = r->inlen != 0 ? r->inlen : strlen(r->in);
		st = dotqmail_parse(r->in, len, r->forwardonly, &dq, &errline,
		    &errstr);
		(void)snprintf(tname, sizeof(tname), "parse_%s_status",
		    r->name);
		is_int(st, r->status, tname);
		if (r->status == SQ_OK) {
			if (st != SQ_OK) {
				printf("#   line %zu: %s\n", errline, errstr);
				continue;
			}
			instr_list(dq, buf, sizeof(buf));
			(void)snprintf(tname, sizeof(tname), "parse_%s_lines",
			    r->name);
			is_str(buf, r->want, tname);
			dotqmail_free(dq);
			continue;
		}
		(void)snprintf(tname, sizeof(tname), "parse_%s_no_result",
		    r->name);
		ok(dq == NULL, tname);
		(void)snprintf(tname, sizeof(tname), "parse_%s_line", r->name);
		is_int(errline, r->errline, tname);
		(void)snprintf(tname, sizeof(tname), "parse_%s_reason",
		    r->name);
		if (!ok(errstr != NULL && strstr(errstr, r->errstr) != NULL,
		    tname))
			printf("#   got \"%s\"\n", errstr ? errstr : "(null)");
	}
}

static void
test_parse_counts_and_limits(void)
{
	static const char	 mixed[] = "|a\n./b\n./c/\n&d@e.org\n# x\n";
	struct dotqmail		*dq;
	const char		*errstr;
	char			*buf;
	size_t			 errline, i, n;
	int			 st;

	st = dotqmail_parse("", 0, 0, &dq, &errline, &errstr);
	ok(st == SQ_OK && dq != NULL && dq->empty && dq->ninstr == 0,
	    "parse_empty_file_means_default_delivery");
	dotqmail_free(dq);
	st = dotqmail_parse("#\n", 2, 0, &dq, &errline, &errstr);
	ok(st == SQ_OK && !dq->empty && dq->ninstr == 0,
	    "parse_comment_only_is_not_empty");
	dotqmail_free(dq);

	st = dotqmail_parse(mixed, strlen(mixed), 0, &dq, &errline, &errstr);
	ok(st == SQ_OK, "parse_mixed");
	if (st == SQ_OK) {
		is_int(dq->nprogram, 1, "parse_mixed_programs");
		is_int(dq->nfile, 2, "parse_mixed_files");
		is_int(dq->nforward, 1, "parse_mixed_forwards");
		is_int(dq->ninstr, 4, "parse_mixed_instructions");
		dotqmail_free(dq);
	}

	if ((buf = malloc(DOTQMAIL_FILE_MAX + 2)) == NULL)
		return;
	/* The longest line passes, one octet more does not. */
	buf[0] = '|';
	memset(buf + 1, 'a', DOTQMAIL_LINE_MAX);
	buf[DOTQMAIL_LINE_MAX] = '\n';
	st = dotqmail_parse(buf, DOTQMAIL_LINE_MAX + 1, 0, &dq, &errline,
	    &errstr);
	ok(st == SQ_OK && dq->ninstr == 1 &&
	    strlen(dq->instr[0].arg) == DOTQMAIL_LINE_MAX - 1,
	    "parse_longest_line");
	if (st == SQ_OK)
		dotqmail_free(dq);
	buf[DOTQMAIL_LINE_MAX] = 'a';
	buf[DOTQMAIL_LINE_MAX + 1] = '\n';
	st = dotqmail_parse(buf, DOTQMAIL_LINE_MAX + 2, 0, &dq, &errline,
	    &errstr);
	ok(st == SQ_TEMPFAIL && errline == 1 && strstr(errstr, "too long"),
	    "parse_line_too_long");

	/* DOTQMAIL_LINES_MAX lines pass, one more does not. */
	for (i = 0, n = 0; i < DOTQMAIL_LINES_MAX; i++) {
		buf[n++] = '#';
		buf[n++] = '\n';
	}
	st = dotqmail_parse(buf, n, 0, &dq, &errline, &errstr);
	ok(st == SQ_OK, "parse_most_lines");
	if (st == SQ_OK)
		dotqmail_free(dq);
	buf[n++] = '#';
	st = dotqmail_parse(buf, n, 0, &dq, &errline, &errstr);
	ok(st == SQ_TEMPFAIL && errline == DOTQMAIL_LINES_MAX + 1,
	    "parse_too_many_lines");

	/* The largest file passes (as forwards), one octet more does not. */
	for (n = 0; n + 32 <= DOTQMAIL_FILE_MAX; n += 32)
		memcpy(buf + n, "&abcdefghijklmnopqr@example.org\n", 32);
	memset(buf + n, '#', DOTQMAIL_FILE_MAX - n);
	st = dotqmail_parse(buf, DOTQMAIL_FILE_MAX, 0, &dq, &errline,
	    &errstr);
	if (st == SQ_OK) {
		ok(dq->nforward == DOTQMAIL_FILE_MAX / 32,
		    "parse_largest_file");
		dotqmail_free(dq);
	} else
		ok(0, "parse_largest_file");
	st = dotqmail_parse(buf, DOTQMAIL_FILE_MAX + 1, 0, &dq, &errline,
	    &errstr);
	ok(st == SQ_TEMPFAIL && errline == 0 && dq == NULL,
	    "parse_file_too_large");
	free(buf);
}

/* The environment -------------------------------------------------- */

static const char *
env_get(const struct dotqmail_env *env, const char *name)
{
	size_t	 i, n = strlen(name);

	for (i = 0; i < env->n; i++)
		if (strncmp(env->envp[i], name, n) == 0 &&
		    env->envp[i][n] == '=')
			return env->envp[i] + n + 1;
	return NULL;
}

struct env_want {
	const char	*name;
	const char	*value;		/* NULL: absent */
};

static void
env_check(const struct dotqmail_env *env, const char *test,
    const struct env_want *w, size_t nw)
{
	char	 tname[128];
	size_t	 i;

	for (i = 0; i < nw; i++) {
		(void)snprintf(tname, sizeof(tname), "env_%s_%s", test,
		    w[i].name);
		is_str(env_get(env, w[i].name), w[i].value, tname);
	}
}

static void
test_env(void)
{
	static const struct env_want	 plain[] = {
		{ "SENDER", "bob@sender.example" },
		{ "NEWSENDER", "bob@sender.example" },
		{ "RECIPIENT", "joe-foo-bar@mail.example.co.uk" },
		{ "USER", "joe" },
		{ "HOME", "/home/joe" },
		{ "HOST", "mail.example.co.uk" },
		{ "HOST2", "mail.example.co" },
		{ "HOST3", "mail.example" },
		{ "HOST4", "mail" },
		{ "LOCAL", "joe-foo-bar" },
		{ "EXT", "foo-bar" },
		{ "EXT2", "bar" },
		{ "EXT3", "" },
		{ "EXT4", "" },
		{ "DEFAULT", "bar" },
		{ "DTLINE", "Delivered-To: joe-foo-bar@mail.example.co.uk\n" },
		{ "RPLINE", "Return-Path: <bob@sender.example>\n" },
		{ "UFLINE", "From bob@sender.example Fri Feb 13 23:31:30 "
		    "2009\n" },
	};
	static const struct env_want	 bounce[] = {
		{ "SENDER", "" },
		{ "NEWSENDER", "" },
		{ "HOST2", "localhost" },
		{ "HOST3", "localhost" },
		{ "HOST4", "localhost" },
		{ "EXT", "" },
		{ "EXT2", "" },
		{ "DEFAULT", NULL },
		{ "RPLINE", "Return-Path: <>\n" },
		{ "UFLINE", "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n" },
	};
	static const struct env_want	 quoted[] = {
		{ "SENDER", "a b@x.org" },
		{ "NEWSENDER", "list-owner@h.org" },
		{ "LOCAL", "x\"y z" },
		{ "RECIPIENT", "x\"y z@h.org" },
		{ "DTLINE", "Delivered-To: x\"y z@h.org\n" },
		{ "RPLINE", "Return-Path: <\"a b\"@x.org>\n" },
		{ "UFLINE", "From a-b@x.org Sat Jan  1 00:00:00 2000\n" },
		{ "EXT", "a-b-c-d-e" },
		{ "EXT2", "b-c-d-e" },
		{ "EXT3", "c-d-e" },
		{ "EXT4", "d-e" },
		{ "HOST2", "h" },
		{ "HOST3", "h" },
		{ "HOST4", "h" },
	};
	static const struct env_want	 hostile[] = {
		{ "SENDER", "a\nb@x.org" },
		{ "RPLINE", "Return-Path: <a_b@x.org>\n" },
		{ "UFLINE", "From a-b@x.org Thu Jan  1 00:00:00 1970\n" },
		{ "DTLINE", "Delivered-To: l_m@h_x\n" },
		{ "LOCAL", "l\nm" },
		{ "SENDER2", NULL },
	};
	static const struct env_want	 unbalanced[] = {
		{ "SENDER", "\"ab@x.org" },
		{ "LOCAL", "\"a\\" },
		{ "UFLINE", "From \"ab@x.org Thu Jan  1 00:00:00 1970\n" },
	};
	struct dotqmail_envin	 in;
	struct dotqmail_env	*env;
	char			 big[DOTQMAIL_ENV_BUF];
	char			 vname[16];
	size_t			 i;
	int			 r;

	if ((env = malloc(sizeof(*env))) == NULL)
		return;

	memset(&in, 0, sizeof(in));
	in.sender = "bob@sender.example";
	in.local = "joe-foo-bar";
	in.host = "mail.example.co.uk";
	in.user = "joe";
	in.home = "/home/joe";
	in.ext = "foo-bar";
	in.dflt = "bar";
	in.date = 1234567890;
	dotqmail_env_init(env);
	ok(dotqmail_env_build(env, &in) == 0, "env_plain_builds");
	is_int(env->n, 18, "env_plain_variables");
	ok(env->envp[env->n] == NULL, "env_plain_null_terminated");
	env_check(env, "plain", plain, sizeof(plain) / sizeof(plain[0]));
	ok(strcmp(env->envp[0], "SENDER=bob@sender.example") == 0,
	    "env_plain_entries_are_name_equals_value");

	memset(&in, 0, sizeof(in));
	in.sender = "";
	in.local = "postmaster";
	in.host = "localhost";
	in.user = "alias";
	in.home = "/var/qmail/alias";
	in.ext = "";
	in.date = 0;
	dotqmail_env_init(env);
	ok(dotqmail_env_build(env, &in) == 0, "env_bounce_builds");
	is_int(env->n, 17, "env_bounce_variables_no_default");
	env_check(env, "bounce", bounce, sizeof(bounce) / sizeof(bounce[0]));

	memset(&in, 0, sizeof(in));
	in.sender = "\"a b\"@x.org";
	in.newsender = "list-owner@h.org";
	in.local = "\"x\\\"y z\"";
	in.host = "h.org";
	in.user = "joe";
	in.home = "/home/joe";
	in.ext = "a-b-c-d-e";
	in.date = 946684800;
	dotqmail_env_init(env);
	ok(dotqmail_env_build(env, &in) == 0, "env_quoted_builds");
	env_check(env, "quoted", quoted, sizeof(quoted) / sizeof(quoted[0]));

	memset(&in, 0, sizeof(in));
	in.sender = "a\nb@x.org";
	in.local = "l\nm";
	in.host = "h\nx";
	in.user = "joe";
	in.home = "/home/joe";
	in.ext = "";
	dotqmail_env_init(env);
	ok(dotqmail_env_build(env, &in) == 0, "env_hostile_builds");
	env_check(env, "hostile", hostile,
	    sizeof(hostile) / sizeof(hostile[0]));

	in.sender = "\"ab@x.org";
	in.local = "\"a\\";
	in.host = "h";
	dotqmail_env_init(env);
	ok(dotqmail_env_build(env, &in) == 0, "env_unbalanced_quote_builds");
	env_check(env, "unbalanced", unbalanced,
	    sizeof(unbalanced) / sizeof(unbalanced[0]));

	/* Extra variables around the qmail ones. */
	dotqmail_env_init(env);
	ok(dotqmail_env_add(env, "PATH", "/usr/bin:/bin") == 0,
	    "env_add_path");
	in.sender = "a@b.org";
	in.local = "joe";
	in.host = "h.org";
	ok(dotqmail_env_build(env, &in) == 0, "env_build_after_add");
	is_int(env->n, 18, "env_build_after_add_variables");
	is_str(env_get(env, "PATH"), "/usr/bin:/bin", "env_add_path_kept");
	ok(dotqmail_env_add(env, "PATH", "/x") == -1, "env_add_duplicate");
	dotqmail_env_init(env);
	ok(dotqmail_env_add(env, "path", "/x") == -1,
	    "env_add_lower_case_name");
	dotqmail_env_init(env);
	ok(dotqmail_env_add(env, "1X", "/x") == -1, "env_add_leading_digit");
	dotqmail_env_init(env);
	ok(dotqmail_env_add(env, "A=B", "/x") == -1, "env_add_equals_in_name");
	dotqmail_env_init(env);
	ok(dotqmail_env_add(env, "", "/x") == -1, "env_add_empty_name");
	dotqmail_env_init(env);
	ok(dotqmail_env_build(env, &in) == 0 &&
	    dotqmail_env_build(env, &in) == -1, "env_build_twice_refused");

	/* Full: by count, then by octets. */
	dotqmail_env_init(env);
	for (i = 0, r = 0; i < DOTQMAIL_ENV_MAX && r == 0; i++) {
		(void)snprintf(vname, sizeof(vname), "V%zu", i);
		r = dotqmail_env_add(env, vname, "v");
	}
	ok(r == 0 && dotqmail_env_add(env, "ONE_MORE", "v") == -1,
	    "env_count_limit");
	ok(env->envp[DOTQMAIL_ENV_MAX] == NULL, "env_full_still_terminated");
	dotqmail_env_init(env);
	memset(big, 'x', sizeof(big));
	/* "A=", the value and a NUL fill it. */
	big[DOTQMAIL_ENV_BUF - 3] = '\0';
	ok(dotqmail_env_add(env, "A", big) == 0, "env_fills_buffer_exactly");
	ok(dotqmail_env_add(env, "B", "") == -1, "env_buffer_full");
	dotqmail_env_init(env);
	big[DOTQMAIL_ENV_BUF - 3] = 'x';
	big[DOTQMAIL_ENV_BUF - 2] = '\0';
	ok(dotqmail_env_add(env, "A", big) == -1 && env->n == 0,
	    "env_one_octet_too_many");

	/* Bounds of the inputs. */
	memset(big, 'l', sizeof(big));
	big[SQ_LOCALPART_MAX + 1] = '\0';
	in.local = big;
	dotqmail_env_init(env);
	ok(dotqmail_env_build(env, &in) == -1, "env_local_too_long");
	in.local = "joe";
	memset(big, 'h', sizeof(big));
	big[0] = '/';
	big[DOTQMAIL_HOME_MAX + 1] = '\0';
	in.home = big;
	dotqmail_env_init(env);
	ok(dotqmail_env_build(env, &in) == -1, "env_home_too_long");
	big[DOTQMAIL_HOME_MAX] = '\0';
	dotqmail_env_init(env);
	ok(dotqmail_env_build(env, &in) == 0, "env_longest_home");
	in.home = "/home/joe";
	in.user = NULL;
	dotqmail_env_init(env);
	ok(dotqmail_env_build(env, &in) == -1, "env_null_user");
	free(env);
}

/* Exit codes ------------------------------------------------------- */

static void
test_exit(void)
{
	static const struct {
		int			 code;
		enum dotqmail_exit	 want;
	} rows[] = {
		{ 0, DOTQMAIL_EXIT_OK }, { 99, DOTQMAIL_EXIT_STOP },
		{ 100, DOTQMAIL_EXIT_PERM }, { 64, DOTQMAIL_EXIT_PERM },
		{ 65, DOTQMAIL_EXIT_PERM }, { 70, DOTQMAIL_EXIT_PERM },
		{ 76, DOTQMAIL_EXIT_PERM }, { 77, DOTQMAIL_EXIT_PERM },
		{ 78, DOTQMAIL_EXIT_PERM }, { 112, DOTQMAIL_EXIT_PERM },
		{ 111, DOTQMAIL_EXIT_TEMP }, { 1, DOTQMAIL_EXIT_TEMP },
		{ 2, DOTQMAIL_EXIT_TEMP }, { 66, DOTQMAIL_EXIT_TEMP },
		{ 67, DOTQMAIL_EXIT_TEMP }, { 71, DOTQMAIL_EXIT_TEMP },
		{ 75, DOTQMAIL_EXIT_TEMP }, { 98, DOTQMAIL_EXIT_TEMP },
		{ 101, DOTQMAIL_EXIT_TEMP }, { 126, DOTQMAIL_EXIT_TEMP },
		{ 127, DOTQMAIL_EXIT_TEMP }, { 255, DOTQMAIL_EXIT_TEMP },
		{ -1, DOTQMAIL_EXIT_TEMP }, { 356, DOTQMAIL_EXIT_TEMP },
	};
	static const int	 real[] = { 0, 99, 100, 111, 77, 3 };
	char			 tname[64];
	size_t			 i;
	pid_t			 pid;
	int			 status;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		(void)snprintf(tname, sizeof(tname), "exit_code_%d",
		    rows[i].code);
		is_int(dotqmail_exit_code(rows[i].code), rows[i].want, tname);
	}
	/* Real children: exit codes and a signal through wait(2). */
	for (i = 0; i < sizeof(real) / sizeof(real[0]); i++) {
		if ((pid = fork()) == 0)
			_exit(real[i]);
		(void)snprintf(tname, sizeof(tname), "exit_status_%d",
		    real[i]);
		ok(pid > 0 && waitpid(pid, &status, 0) == pid &&
		    dotqmail_exit_status(status) ==
		    dotqmail_exit_code(real[i]), tname);
	}
	if ((pid = fork()) == 0) {
		(void)kill(getpid(), SIGKILL);
		_exit(0);
	}
	ok(pid > 0 && waitpid(pid, &status, 0) == pid &&
	    WIFSIGNALED(status) &&
	    dotqmail_exit_status(status) == DOTQMAIL_EXIT_TEMP,
	    "exit_status_killed_is_temporary");
}

int
main(void)
{
	test_candidates();
	test_owner();
	test_parse();
	test_parse_counts_and_limits();
	test_env();
	test_exit();
	return done_testing();
}
