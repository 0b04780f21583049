/*
 * mda/mda_util.c: mailbox template expansion, the Delivered-To loop scan,
 * the header reader and the envelope lines.
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../mda/mda.h"
#include "sqmail.h"
#include "tap.h"
#include "textline.h"

struct expand_row {
	const char		*name;
	const char		*tmpl;
	enum mbox_method	 method;
	const char		*user;
	const char		*home;
	const char		*addr;
	int			 status;
	const char		*path;		/* when SQ_OK */
	enum mda_kind		 kind;		/* when SQ_OK */
};

static const struct expand_row expand_rows[] = {
	{ "tilde_maildir", "~/Maildir/", MBOX_NONE, "bob", "/home/bob",
	    "bob@example.org", SQ_OK, "/home/bob/Maildir/", MDA_KIND_MAILDIR },
	{ "tilde_mbox", "~/Mailbox", MBOX_NONE, "bob", "/home/bob",
	    "bob@example.org", SQ_OK, "/home/bob/Mailbox", MDA_KIND_MBOX },
	{ "method_maildir_without_slash", "~/Mail", MBOX_MAILDIR, "bob",
	    "/home/bob", "bob@example.org", SQ_OK, "/home/bob/Mail",
	    MDA_KIND_MAILDIR },
	{ "method_mbox", "/var/mail/%u", MBOX_MBOX, "bob", "/home/bob",
	    "bob@example.org", SQ_OK, "/var/mail/bob", MDA_KIND_MBOX },
	{ "trailing_slash_beats_mbox_method", "~/Maildir/", MBOX_MBOX, "bob",
	    "/home/bob", "bob@example.org", SQ_OK, "/home/bob/Maildir/",
	    MDA_KIND_MAILDIR },
	{ "relative_is_under_home", "Maildir/", MBOX_NONE, "bob",
	    "/home/bob/", "bob@example.org", SQ_OK, "/home/bob/Maildir/",
	    MDA_KIND_MAILDIR },
	{ "home_with_trailing_slash", "~/Maildir/", MBOX_NONE, "bob",
	    "/home/bob//", "bob@example.org", SQ_OK, "/home/bob/Maildir/",
	    MDA_KIND_MAILDIR },
	{ "home_is_root", "~/Maildir/", MBOX_NONE, "bob", "/",
	    "bob@example.org", SQ_OK, "/Maildir/", MDA_KIND_MAILDIR },
	{ "tilde_alone", "~", MBOX_NONE, "bob", "/home/bob",
	    "bob@example.org", SQ_OK, "/home/bob", MDA_KIND_MBOX },
	{ "empty_template_is_maildir", "", MBOX_NONE, "bob", "/home/bob",
	    "bob@example.org", SQ_OK, "/home/bob/Maildir/", MDA_KIND_MAILDIR },
	{ "local_part", "/srv/vmail/example.org/%l/", MBOX_NONE, "vmail",
	    "/srv/vmail", "alice@example.org", SQ_OK,
	    "/srv/vmail/example.org/alice/", MDA_KIND_MAILDIR },
	{ "local_part_with_extension", "~/Maildir/.%l/", MBOX_NONE, "bob",
	    "/home/bob", "bob-list@example.org", SQ_OK,
	    "/home/bob/Maildir/.bob-list/", MDA_KIND_MAILDIR },
	{ "local_part_split_at_last_at", "/m/%l", MBOX_NONE, "bob",
	    "/home/bob", "\"a@b\"@example.org", SQ_OK, "/m/\"a@b\"",
	    MDA_KIND_MBOX },
	{ "addr_without_domain", "/m/%l/", MBOX_NONE, "bob", "/home/bob",
	    "postmaster", SQ_OK, "/m/postmaster/", MDA_KIND_MAILDIR },
	{ "both_user_and_local", "/m/%u/%l", MBOX_NONE, "bob", "/home/bob",
	    "x@y", SQ_OK, "/m/bob/x", MDA_KIND_MBOX },
	{ "percent_escape", "~/100%%/", MBOX_NONE, "bob", "/home/bob",
	    "bob@example.org", SQ_OK, "/home/bob/100%/", MDA_KIND_MAILDIR },
	{ "unused_bad_local_part_is_fine", "~/Maildir/", MBOX_NONE, "bob",
	    "/home/bob", "../x@example.org", SQ_OK, "/home/bob/Maildir/",
	    MDA_KIND_MAILDIR },

	{ "local_part_dotdot", "/m/%l/", MBOX_NONE, "bob", "/home/bob",
	    "..@example.org", SQ_PERMFAIL, NULL, 0 },
	{ "local_part_dot", "/m/%l/", MBOX_NONE, "bob", "/home/bob",
	    ".@example.org", SQ_PERMFAIL, NULL, 0 },
	{ "local_part_leading_dot", "/m/%l/", MBOX_NONE, "bob", "/home/bob",
	    ".ssh@example.org", SQ_PERMFAIL, NULL, 0 },
	{ "local_part_dotdot_slash", "/m/%l/", MBOX_NONE, "bob", "/home/bob",
	    "../../etc@example.org", SQ_PERMFAIL, NULL, 0 },
	{ "local_part_slash", "/m/%l/", MBOX_NONE, "bob", "/home/bob",
	    "a/b@example.org", SQ_PERMFAIL, NULL, 0 },
	{ "local_part_newline", "/m/%l/", MBOX_NONE, "bob", "/home/bob",
	    "a\nb@example.org", SQ_PERMFAIL, NULL, 0 },
	{ "local_part_control", "/m/%l/", MBOX_NONE, "bob", "/home/bob",
	    "a\001b@example.org", SQ_PERMFAIL, NULL, 0 },
	{ "local_part_del", "/m/%l/", MBOX_NONE, "bob", "/home/bob",
	    "a\177b@example.org", SQ_PERMFAIL, NULL, 0 },
	{ "local_part_empty", "/m/%l/", MBOX_NONE, "bob", "/home/bob",
	    "@example.org", SQ_PERMFAIL, NULL, 0 },
	{ "user_with_slash", "/var/mail/%u", MBOX_MBOX, "../root",
	    "/home/bob", "bob@example.org", SQ_PERMFAIL, NULL, 0 },
	{ "unknown_escape", "~/%x/", MBOX_NONE, "bob", "/home/bob",
	    "bob@example.org", SQ_TEMPFAIL, NULL, 0 },
	{ "percent_at_end", "~/box%", MBOX_NONE, "bob", "/home/bob",
	    "bob@example.org", SQ_TEMPFAIL, NULL, 0 },
	{ "relative_home", "~/Maildir/", MBOX_NONE, "bob", "home/bob",
	    "bob@example.org", SQ_TEMPFAIL, NULL, 0 },
	{ "empty_home", "~/Maildir/", MBOX_NONE, "bob", "",
	    "bob@example.org", SQ_TEMPFAIL, NULL, 0 },
};

struct loop_row {
	const char	*name;
	const char	*msg;
	const char	*rcpt;
	int		 loops;
	int		 hops;
};

static const struct loop_row loop_rows[] = {
	{ "exact_match", "Delivered-To: bob@example.org\n\nbody\n",
	    "bob@example.org", 1, 1 },
	{ "case_differs", "delivered-to: BOB@Example.ORG\n\nbody\n",
	    "bob@example.org", 1, 1 },
	{ "whitespace_trimmed", "Delivered-To: \t bob@example.org \t\n\n",
	    "bob@example.org", 1, 1 },
	{ "no_space_after_colon", "Delivered-To:bob@example.org\n\n",
	    "bob@example.org", 1, 1 },
	{ "space_before_colon", "Delivered-To : bob@example.org\n\n",
	    "bob@example.org", 1, 1 },
	{ "folded_value", "Subject: x\nDelivered-To:\n bob@example.org\n\n",
	    "bob@example.org", 1, 1 },
	{ "folded_twice", "Delivered-To:\n\t\n  bob@example.org\n\n",
	    "bob@example.org", 1, 1 },
	{ "fold_inside_address_keeps_space",
	    "Delivered-To: bob@exam\n ple.org\n\n", "bob@example.org", 0, 1 },
	{ "crlf_lines", "Received: x\r\nDelivered-To: bob@example.org\r\n"
	    "\r\nbody\r\n", "bob@example.org", 1, 2 },
	{ "other_address", "Delivered-To: alice@example.org\n\n",
	    "bob@example.org", 0, 1 },
	{ "longer_address", "Delivered-To: bob@example.org.evil\n\n",
	    "bob@example.org", 0, 1 },
	{ "shorter_address", "Delivered-To: ob@example.org\n\n",
	    "bob@example.org", 0, 1 },
	{ "prefixed_field_name", "X-Delivered-To: bob@example.org\n\n",
	    "bob@example.org", 0, 0 },
	{ "second_of_several", "Delivered-To: a@example.org\nReceived: from "
	    "a\n\tby b\nDelivered-To: bob@example.org\nSubject: s\n\n",
	    "bob@example.org", 1, 3 },
	{ "last_field_without_body", "Subject: s\nDelivered-To: "
	    "bob@example.org", "bob@example.org", 1, 1 },
	{ "body_line_does_not_count", "Subject: s\n\nDelivered-To: "
	    "bob@example.org\n", "bob@example.org", 0, 0 },
	{ "body_after_crlf_blank", "Subject: s\r\n\r\nDelivered-To: "
	    "bob@example.org\r\n", "bob@example.org", 0, 0 },
	{ "empty_header_section", "\nDelivered-To: bob@example.org\n",
	    "bob@example.org", 0, 0 },
	{ "continuation_of_other_field", "Subject: hello\n Delivered-To: "
	    "bob@example.org\n\n", "bob@example.org", 0, 0 },
	{ "whitespace_line_is_not_the_end", "Subject: x\n \nDelivered-To: "
	    "bob@example.org\n\n", "bob@example.org", 1, 1 },
	{ "empty_rcpt_never_matches", "Delivered-To: \n\n", "", 0, 1 },
	{ "received_counted", "Received: a\nReceived: b\n\tc\nReceived: d\n"
	    "\n", "bob@example.org", 0, 3 },
};

static void
test_expand(void)
{
	const struct expand_row	*r;
	char			 path[PATH_MAX], err[256], name[128];
	enum mda_kind		 kind;
	size_t			 i;
	int			 st;

	for (i = 0; i < sizeof(expand_rows) / sizeof(expand_rows[0]); i++) {
		r = &expand_rows[i];
		err[0] = '\0';
		kind = 0;
		st = mda_expand(r->tmpl, r->method, r->user, r->home, r->addr,
		    path, sizeof(path), &kind, err, sizeof(err));
		(void)snprintf(name, sizeof(name), "expand_%s_status",
		    r->name);
		is_int(st, r->status, name);
		if (r->status == SQ_OK) {
			(void)snprintf(name, sizeof(name), "expand_%s_path",
			    r->name);
			is_str(path, r->path, name);
			(void)snprintf(name, sizeof(name), "expand_%s_kind",
			    r->name);
			is_int(kind, r->kind, name);
		} else {
			(void)snprintf(name, sizeof(name),
			    "expand_%s_gives_a_reason", r->name);
			ok(err[0] != '\0' && strchr(err, '#') != NULL, name);
		}
	}
}

static void
test_expand_too_long(void)
{
	char		 tmpl[PATH_MAX + 100], path[PATH_MAX], err[256];
	enum mda_kind	 kind;

	memset(tmpl, 'a', sizeof(tmpl) - 1);
	tmpl[0] = '/';
	tmpl[sizeof(tmpl) - 1] = '\0';
	ok(mda_expand(tmpl, MBOX_NONE, "bob", "/home/bob", "b@x", path,
	    sizeof(path), &kind, err, sizeof(err)) != SQ_OK,
	    "expand_overlong_template_fails");
	ok(mda_expand("~/%l/", MBOX_NONE, "bob", "/home/bob", "bob@x", path,
	    8, &kind, err, sizeof(err)) != SQ_OK,
	    "expand_result_larger_than_buffer_fails");
}

static void
test_localpart(void)
{
	ok(mda_localpart_ok("bob"), "localpart_plain_ok");
	ok(mda_localpart_ok("b.o.b"), "localpart_inner_dots_ok");
	ok(mda_localpart_ok("bob-list+x"), "localpart_ext_ok");
	ok(!mda_localpart_ok(""), "localpart_empty_refused");
	ok(!mda_localpart_ok("."), "localpart_dot_refused");
	ok(!mda_localpart_ok(".."), "localpart_dotdot_refused");
	ok(!mda_localpart_ok(".x"), "localpart_leading_dot_refused");
	ok(!mda_localpart_ok("a/b"), "localpart_slash_refused");
	ok(!mda_localpart_ok("a\tb"), "localpart_tab_refused");
}

static void
test_loops(void)
{
	const struct loop_row	*r;
	char			 name[128];
	size_t			 i;
	int			 hops, l;

	for (i = 0; i < sizeof(loop_rows) / sizeof(loop_rows[0]); i++) {
		r = &loop_rows[i];
		hops = -1;
		l = mda_header_loops(r->msg, strlen(r->msg), r->rcpt, &hops);
		(void)snprintf(name, sizeof(name), "loop_%s", r->name);
		is_int(l, r->loops, name);
		(void)snprintf(name, sizeof(name), "loop_%s_hops", r->name);
		is_int(hops, r->hops, name);
	}
	/* The length bounds the scan: no NUL is needed or looked for. */
	ok(mda_header_loops("Delivered-To: bob@example.org\n\n", 20,
	    "bob@example.org", NULL) == 0, "loop_scan_stops_at_len");
}

static int
make_file(char *path, size_t len, const char *data, size_t datalen)
{
	int	 fd;

	(void)strlcpy(path, "/tmp/mda_util.XXXXXX", len);
	if ((fd = mkstemp(path)) == -1)
		return -1;
	if (write(fd, data, datalen) != (ssize_t)datalen) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
test_read_header(void)
{
	const char	*msg = "Received: a\nSubject: b\n\nbody line\nmore\n";
	char		 path[64], buf[256], *big;
	ssize_t		 n;
	size_t		 i;
	int		 fd;

	if ((fd = make_file(path, sizeof(path), msg, strlen(msg))) == -1) {
		ok(0, "read_header_setup");
		return;
	}
	/* The fd's offset is at the end: the reader must not care. */
	n = mda_read_header(fd, buf, sizeof(buf));
	is_int(n, strlen("Received: a\nSubject: b\n\n"),
	    "read_header_stops_after_blank_line");
	n = mda_read_header(fd, buf, 16);
	is_int(n, strlen("Received: a\n"), "read_header_full_buffer_drops_"
	    "partial_line");
	close(fd);
	unlink(path);

	msg = "Subject: no body";
	if ((fd = make_file(path, sizeof(path), msg, strlen(msg))) == -1) {
		ok(0, "read_header_setup");
		return;
	}
	n = mda_read_header(fd, buf, sizeof(buf));
	is_int(n, strlen(msg), "read_header_whole_message_without_body");
	close(fd);
	unlink(path);

	msg = "\nbody\n";
	fd = make_file(path, sizeof(path), msg, strlen(msg));
	n = mda_read_header(fd, buf, sizeof(buf));
	is_int(n, 1, "read_header_empty_header_section");
	close(fd);
	unlink(path);

	/* The blank line straddles two reads. */
	if ((big = malloc(70000)) == NULL)
		return;
	for (i = 0; i < 69000; i += 50) {
		memset(big + i, 'x', 49);
		memcpy(big + i, "X-A: ", 5);
		big[i + 49] = '\n';
	}
	big[i] = '\n';
	memcpy(big + i + 1, "body\n", 5);
	fd = make_file(path, sizeof(path), big, i + 6);
	n = mda_read_header(fd, big, 70000);
	is_int(n, i + 1, "read_header_long_header_section");
	close(fd);
	unlink(path);
	free(big);
}

static void
test_envelope_header(void)
{
	char	 buf[1024];
	int	 n;

	n = mda_envelope_header(buf, sizeof(buf), "alice@example.org",
	    "bob@example.org");
	is_str(buf, "Return-Path: <alice@example.org>\nDelivered-To: "
	    "bob@example.org\n", "envelope_header_lines");
	is_int(n, strlen(buf), "envelope_header_length");
	mda_envelope_header(buf, sizeof(buf), "", "bob@example.org");
	is_str(buf, "Return-Path: <>\nDelivered-To: bob@example.org\n",
	    "envelope_header_null_sender");
	is_int(mda_envelope_header(buf, sizeof(buf), "a@b\nX-Evil: 1",
	    "bob@example.org"), -1, "envelope_header_refuses_newline_sender");
	is_int(mda_envelope_header(buf, sizeof(buf), "a@b",
	    "bob@example.org\r"), -1, "envelope_header_refuses_cr_rcpt");
	is_int(mda_envelope_header(buf, 20, "a@b", "bob@example.org"), -1,
	    "envelope_header_refuses_overflow");
}

static void
test_misc(void)
{
	char	 s[] = "ok\ttab\001\377";

	text_printable(s);
	is_str(s, "ok?tab??", "clean_text_printable");
	is_str(mda_strerror(ENOSPC), "disk full", "strerror_enospc");
	is_str(mda_errcode(ENOSPC), "4.3.1", "errcode_enospc");
	is_str(mda_errcode(EDQUOT), "4.2.2", "errcode_edquot");
	mda_set_hostname("mx.example.org");
	is_str(mda_hostname(), "mx.example.org", "hostname_set");
	mda_set_hostname(NULL);
	ok(mda_hostname()[0] != '\0', "hostname_default_not_empty");
}

int
main(void)
{
	test_expand();
	test_expand_too_long();
	test_localpart();
	test_loops();
	test_read_header();
	test_envelope_header();
	test_misc();
	return done_testing();
}
