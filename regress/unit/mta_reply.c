/*
 * mta/mta_reply.c: the SMTP client's reply reader and the EHLO keywords.
 * Each reply row is fed whole, one byte at a time and in chunks of
 * three; the three must agree.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "../../mta/mta_reply.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

#define SAN	MTA_REPLY_F_SANITISED
#define BLF	MTA_REPLY_F_BARELF

struct reply_case {
	const char		*name;
	const char		*in;
	size_t			 len;		/* 0: strlen(in) */
	int			 opts;
	enum mta_reply_status	 status;
	size_t			 consumed;	/* 0: all of it */
	int			 code;		/* the rest when DONE */
	size_t			 nlines;
	const char		*text;
	const char		*enhanced;
	int			 flags;
	const char		*error;		/* when ERROR */
};

static const struct reply_case reply_cases[] = {
	{ "single_line", "250 ok\r\n", 0, 0, MTA_REPLY_DONE, 0, 250, 1,
	    "ok", "", 0, NULL },
	{ "code_alone", "221\r\n", 0, 0, MTA_REPLY_DONE, 0, 221, 1, "", "",
	    0, NULL },
	{ "code_and_space", "250 \r\n", 0, 0, MTA_REPLY_DONE, 0, 250, 1, "",
	    "", 0, NULL },
	{ "highest_code", "559 x\r\n", 0, 0, MTA_REPLY_DONE, 0, 559, 1, "x",
	    "", 0, NULL },
	{ "multi_line_joined_by_space",
	    "250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n", 0, 0,
	    MTA_REPLY_DONE, 0, 250, 3, "mx.example.org PIPELINING 8BITMIME",
	    "", 0, NULL },
	{ "empty_middle_line_adds_nothing", "550-a\r\n550-\r\n550 b\r\n", 0, 0,
	    MTA_REPLY_DONE, 0, 550, 3, "a b", "", 0, NULL },
	{ "last_line_code_alone", "250-a\r\n250\r\n", 0, 0, MTA_REPLY_DONE, 0,
	    250, 2, "a", "", 0, NULL },
	{ "pipelined_rest_not_consumed", "250 a\r\n354 go\r\n", 0, 0,
	    MTA_REPLY_DONE, 7, 250, 1, "a", "", 0, NULL },
	{ "incomplete_needs_more", "250-a\r\n250 b", 0, 0, MTA_REPLY_MORE, 0,
	    0, 0, NULL, NULL, 0, NULL },
	{ "cr_at_end_needs_more", "250 b\r", 0, 0, MTA_REPLY_MORE, 0, 0, 0,
	    NULL, NULL, 0, NULL },

	{ "enhanced_code", "250 2.1.0 sender ok\r\n", 0, 0, MTA_REPLY_DONE, 0,
	    250, 1, "2.1.0 sender ok", "2.1.0", 0, NULL },
	{ "enhanced_code_alone", "550 5.1.1\r\n", 0, 0, MTA_REPLY_DONE, 0,
	    550, 1, "5.1.1", "5.1.1", 0, NULL },
	{ "enhanced_code_three_digit_parts", "451 4.123.999 x\r\n", 0, 0,
	    MTA_REPLY_DONE, 0, 451, 1, "4.123.999 x", "4.123.999", 0, NULL },
	{ "enhanced_class_mismatch_ignored", "550 4.1.1 x\r\n", 0, 0,
	    MTA_REPLY_DONE, 0, 550, 1, "4.1.1 x", "", 0, NULL },
	{ "enhanced_leading_zero_ignored", "550 5.01.1 x\r\n", 0, 0,
	    MTA_REPLY_DONE, 0, 550, 1, "5.01.1 x", "", 0, NULL },
	{ "enhanced_four_digits_ignored", "550 5.1.1000 x\r\n", 0, 0,
	    MTA_REPLY_DONE, 0, 550, 1, "5.1.1000 x", "", 0, NULL },
	{ "enhanced_glued_to_text_ignored", "550 5.1.1user\r\n", 0, 0,
	    MTA_REPLY_DONE, 0, 550, 1, "5.1.1user", "", 0, NULL },
	{ "enhanced_two_parts_ignored", "550 5.1 x\r\n", 0, 0, MTA_REPLY_DONE,
	    0, 550, 1, "5.1 x", "", 0, NULL },
	{ "enhanced_class_3_does_not_exist", "354 3.0.0 go\r\n", 0, 0,
	    MTA_REPLY_DONE, 0, 354, 1, "3.0.0 go", "", 0, NULL },
	{ "enhanced_from_second_line", "550-first\r\n550 5.7.1 second\r\n", 0,
	    0, MTA_REPLY_DONE, 0, 550, 2, "first 5.7.1 second", "5.7.1", 0,
	    NULL },
	{ "enhanced_first_line_wins", "550-5.1.1 a\r\n550 5.7.1 b\r\n", 0, 0,
	    MTA_REPLY_DONE, 0, 550, 2, "5.1.1 a 5.7.1 b", "5.1.1", 0, NULL },

	{ "nul_sanitised", "250 a\0b\r\n", 9, 0, MTA_REPLY_DONE, 0, 250, 1,
	    "a?b", "", SAN, NULL },
	{ "controls_del_8bit_sanitised", "250 a\x1b[31mb\x7f\xff\r\n", 0, 0,
	    MTA_REPLY_DONE, 0, 250, 1, "a?[31mb??", "", SAN, NULL },
	{ "tab_becomes_space", "250 a\tb\r\n", 0, 0, MTA_REPLY_DONE, 0, 250, 1,
	    "a b", "", 0, NULL },
	{ "bare_cr_in_text_sanitised", "250 a\rb\r\n", 0, 0, MTA_REPLY_DONE, 0,
	    250, 1, "a?b", "", SAN, NULL },
	{ "cr_cr_lf", "250 a\r\r\n", 0, 0, MTA_REPLY_DONE, 0, 250, 1, "a?", "",
	    SAN, NULL },
	{ "bare_lf_ends_line", "250-a\n250 b\n", 0, 0, MTA_REPLY_DONE, 0, 250,
	    2, "a b", "", BLF, NULL },
	{ "bare_lf_after_code", "250\n", 0, 0, MTA_REPLY_DONE, 0, 250, 1, "",
	    "", BLF, NULL },
	{ "bare_lf_cannot_smuggle_a_reply", "250 ok\n250 x\r\n", 0, 0,
	    MTA_REPLY_DONE, 7, 250, 1, "ok", "", BLF, NULL },
	{ "bare_lf_refused_when_strict", "250-a\n250 b\n", 0,
	    MTA_REPLY_CRLF_ONLY, MTA_REPLY_ERROR, 6, 0, 0, NULL, NULL, 0,
	    "bare LF in reply" },
	{ "crlf_accepted_when_strict", "250-a\r\n250 b\r\n", 0,
	    MTA_REPLY_CRLF_ONLY, MTA_REPLY_DONE, 0, 250, 2, "a b", "", 0,
	    NULL },

	{ "1xx_refused", "150 x\r\n", 0, 0, MTA_REPLY_ERROR, 1, 0, 0, NULL,
	    NULL, 0, "1xx reply (not used in SMTP)" },
	{ "first_digit_6", "650 x\r\n", 0, 0, MTA_REPLY_ERROR, 1, 0, 0, NULL,
	    NULL, 0, "bad reply code" },
	{ "first_digit_0", "050 x\r\n", 0, 0, MTA_REPLY_ERROR, 1, 0, 0, NULL,
	    NULL, 0, "bad reply code" },
	{ "second_digit_6", "260 x\r\n", 0, 0, MTA_REPLY_ERROR, 2, 0, 0, NULL,
	    NULL, 0, "bad reply code" },
	{ "letter_in_code", "2a0 x\r\n", 0, 0, MTA_REPLY_ERROR, 2, 0, 0, NULL,
	    NULL, 0, "bad reply code" },
	{ "two_digit_code", "25 x\r\n", 0, 0, MTA_REPLY_ERROR, 3, 0, 0, NULL,
	    NULL, 0, "bad reply code" },
	{ "four_digit_code", "2500 x\r\n", 0, 0, MTA_REPLY_ERROR, 4, 0, 0,
	    NULL, NULL, 0, "reply code of more than three digits" },
	{ "tab_separator", "250\tx\r\n", 0, 0, MTA_REPLY_ERROR, 4, 0, 0, NULL,
	    NULL, 0, "no separator after reply code" },
	{ "bare_cr_after_code", "250\rx\r\n", 0, 0, MTA_REPLY_ERROR, 5, 0, 0,
	    NULL, NULL, 0, "no separator after reply code" },
	{ "empty_line", "\r\n", 0, 0, MTA_REPLY_ERROR, 1, 0, 0, NULL, NULL, 0,
	    "bad reply code" },
	{ "leading_space", " 250 x\r\n", 0, 0, MTA_REPLY_ERROR, 1, 0, 0, NULL,
	    NULL, 0, "bad reply code" },
	{ "nul_in_code", "2\0 x\r\n", 6, 0, MTA_REPLY_ERROR, 2, 0, 0, NULL,
	    NULL, 0, "bad reply code" },
	{ "code_changes_on_second_line", "250-a\r\n251 b\r\n", 0, 0,
	    MTA_REPLY_ERROR, 10, 0, 0, NULL, NULL, 0,
	    "reply code changed within a reply" },
	{ "class_changes_on_second_line", "250-a\r\n550 b\r\n", 0, 0,
	    MTA_REPLY_ERROR, 10, 0, 0, NULL, NULL, 0,
	    "reply code changed within a reply" },
	{ "garbage_continuation_line", "250-a\r\nhello\r\n", 0, 0,
	    MTA_REPLY_ERROR, 8, 0, 0, NULL, NULL, 0, "bad reply code" },
};

struct run {
	enum mta_reply_status	 status;
	size_t			 consumed;
	struct mta_reply_parser	 p;
};

/* Feed in chunks of step bytes until something other than MORE. */
static void
feed(const char *in, size_t len, size_t step, int opts, struct run *r)
{
	size_t	 n, used;

	mta_reply_init(&r->p, opts);
	r->status = MTA_REPLY_MORE;
	r->consumed = 0;
	while (r->consumed < len) {
		n = len - r->consumed < step ? len - r->consumed : step;
		r->status = mta_reply_feed(&r->p, in + r->consumed, n, &used);
		r->consumed += used;
		if (r->status != MTA_REPLY_MORE)
			break;
	}
}

static int
same_run(const struct run *a, const struct run *b)
{
	if (a->status != b->status || a->consumed != b->consumed)
		return 0;
	if (a->status == MTA_REPLY_ERROR)
		return strcmp(a->p.error, b->p.error) == 0;
	if (a->status == MTA_REPLY_MORE)
		return 1;
	return a->p.reply.code == b->p.reply.code &&
	    a->p.reply.nlines == b->p.reply.nlines &&
	    a->p.reply.flags == b->p.reply.flags &&
	    strcmp(a->p.reply.text, b->p.reply.text) == 0 &&
	    strcmp(a->p.reply.enhanced, b->p.reply.enhanced) == 0;
}

static void
test_replies(void)
{
	static struct run	 whole, bytes, three;
	char			 name[128];
	size_t			 i, len;

	for (i = 0; i < NITEMS(reply_cases); i++) {
		const struct reply_case *c = &reply_cases[i];
		const struct mta_reply *r = &whole.p.reply;

		len = c->len ? c->len : strlen(c->in);
		feed(c->in, len, len, c->opts, &whole);
		snprintf(name, sizeof(name), "reply %s: status", c->name);
		is_int(whole.status, c->status, name);
		snprintf(name, sizeof(name), "reply %s: consumed", c->name);
		is_int(whole.consumed, c->consumed ? c->consumed : len, name);
		if (whole.status == MTA_REPLY_ERROR) {
			snprintf(name, sizeof(name), "reply %s: reason",
			    c->name);
			is_str(whole.p.error, c->error, name);
		} else if (whole.status == MTA_REPLY_DONE) {
			snprintf(name, sizeof(name), "reply %s: code, lines, "
			    "flags", c->name);
			ok(r->code == c->code && r->nlines == c->nlines &&
			    r->flags == c->flags, name);
			snprintf(name, sizeof(name), "reply %s: text",
			    c->name);
			is_str(mta_reply_text(r), c->text, name);
			snprintf(name, sizeof(name), "reply %s: enhanced",
			    c->name);
			is_str(r->enhanced, c->enhanced, name);
		} else {
			snprintf(name, sizeof(name), "reply %s: pending",
			    c->name);
			ok(mta_reply_pending(&whole.p), name);
		}

		feed(c->in, len, 1, c->opts, &bytes);
		snprintf(name, sizeof(name), "reply %s: byte at a time agrees",
		    c->name);
		ok(same_run(&whole, &bytes), name);
		feed(c->in, len, 3, c->opts, &three);
		snprintf(name, sizeof(name), "reply %s: chunks of 3 agree",
		    c->name);
		ok(same_run(&whole, &three), name);
	}
}

static void
test_lines_and_pipelining(void)
{
	static struct mta_reply_parser	 p;
	static const char	 in[] =
	    "250-mx.example.org hi\r\n250-SIZE 100\r\n250 DSN\r\n"
	    "250 2.1.0 ok\r\n" "554-5.7.1 no\n554 5.7.1 really\r\n" "221";
	const char		*s;
	size_t			 len, used, off = 0;
	enum mta_reply_status	 st;

	mta_reply_init(&p, 0);
	ok(!mta_reply_pending(&p), "fresh_parser_holds_nothing");

	st = mta_reply_feed(&p, in, sizeof(in) - 1, &used);
	ok(st == MTA_REPLY_DONE && p.reply.code == 250 &&
	    p.reply.nlines == 3, "pipelined_first_reply");
	s = mta_reply_line(&p.reply, 0, &len);
	ok(s != NULL && len == 17 && memcmp(s, "mx.example.org hi", len) == 0,
	    "line_0_text");
	s = mta_reply_line(&p.reply, 1, &len);
	ok(s != NULL && len == 8 && memcmp(s, "SIZE 100", len) == 0,
	    "line_1_text");
	ok(mta_reply_line(&p.reply, 3, &len) == NULL && len == 0,
	    "line_past_end_is_null");
	off += used;

	/* A call with no bytes keeps the reply readable. */
	st = mta_reply_feed(&p, in + off, 0, &used);
	ok(st == MTA_REPLY_MORE && used == 0 && p.reply.nlines == 3 &&
	    !mta_reply_pending(&p), "empty_feed_after_done_keeps_reply");

	st = mta_reply_feed(&p, in + off, sizeof(in) - 1 - off, &used);
	off += used;
	ok(st == MTA_REPLY_DONE && p.reply.code == 250 &&
	    p.reply.nlines == 1 && strcmp(p.reply.text, "2.1.0 ok") == 0 &&
	    strcmp(p.reply.enhanced, "2.1.0") == 0,
	    "pipelined_second_reply_starts_fresh");
	st = mta_reply_feed(&p, in + off, sizeof(in) - 1 - off, &used);
	off += used;
	ok(st == MTA_REPLY_DONE && p.reply.code == 554 &&
	    p.reply.flags == MTA_REPLY_F_BARELF &&
	    strcmp(p.reply.text, "5.7.1 no 5.7.1 really") == 0,
	    "pipelined_third_reply");
	st = mta_reply_feed(&p, in + off, sizeof(in) - 1 - off, &used);
	ok(st == MTA_REPLY_MORE && used == 3 && mta_reply_pending(&p),
	    "pipelined_partial_fourth_is_pending");
	st = mta_reply_feed(&p, " bye\r\n", 6, &used);
	ok(st == MTA_REPLY_DONE && p.reply.code == 221 && used == 6 &&
	    p.reply.flags == 0 && strcmp(p.reply.text, "bye") == 0,
	    "fourth_reply_completed_later");

	st = mta_reply_feed(&p, "hello\r\n", 7, &used);
	ok(st == MTA_REPLY_ERROR && used == 1, "garbage_after_done_is_error");
	st = mta_reply_feed(&p, "250 ok\r\n", 8, &used);
	ok(st == MTA_REPLY_ERROR && used == 0 && !mta_reply_pending(&p),
	    "error_is_sticky");
	mta_reply_init(&p, 0);
	st = mta_reply_feed(&p, "250 ok\r\n", 8, &used);
	ok(st == MTA_REPLY_DONE, "init_clears_error");
}

/* n lines of text of tlen octets each, "250-" then a last "250 ". */
static char *
make_reply(size_t n, size_t tlen, size_t lastlen, size_t *len)
{
	char	*b, *q;
	size_t	 i;

	if ((b = malloc(n * (tlen + 6) + lastlen + 7)) == NULL)
		abort();
	q = b;
	for (i = 0; i < n; i++) {
		memcpy(q, "250-", 4);
		memset(q + 4, 'a', tlen);
		memcpy(q + 4 + tlen, "\r\n", 2);
		q += tlen + 6;
	}
	memcpy(q, "250 ", 4);
	memset(q + 4, 'b', lastlen);
	memcpy(q + 4 + lastlen, "\r\n", 2);
	*len = q + 6 + lastlen - b;
	return b;
}

static void
test_limits(void)
{
	static struct run	 r;
	char			*b;
	size_t			 len, i, used, fed;
	enum mta_reply_status	 st;
	int			 bounded;

	/* "250 " + text + CRLF is exactly MTA_REPLY_LINE_MAX octets. */
	b = make_reply(0, 0, MTA_REPLY_LINE_MAX - 6, &len);
	feed(b, len, len, 0, &r);
	ok(r.status == MTA_REPLY_DONE && len == MTA_REPLY_LINE_MAX &&
	    r.p.reply.line[0].len == MTA_REPLY_LINE_MAX - 6,
	    "line_of_line_max_octets_accepted");
	free(b);
	b = make_reply(0, 0, MTA_REPLY_LINE_MAX - 5, &len);
	feed(b, len, 1, 0, &r);
	ok(r.status == MTA_REPLY_ERROR && r.consumed == MTA_REPLY_LINE_MAX - 1
	    && strcmp(r.p.error, "reply line too long") == 0,
	    "line_one_octet_over_refused_before_its_end");
	free(b);

	b = make_reply(MTA_REPLY_LINES_MAX - 1, 3, 3, &len);
	feed(b, len, 7, 0, &r);
	ok(r.status == MTA_REPLY_DONE &&
	    r.p.reply.nlines == MTA_REPLY_LINES_MAX, "lines_max_accepted");
	free(b);
	b = make_reply(MTA_REPLY_LINES_MAX, 3, 3, &len);
	feed(b, len, len, 0, &r);
	ok(r.status == MTA_REPLY_ERROR && r.consumed == len - 8 &&
	    strcmp(r.p.error, "too many reply lines") == 0,
	    "one_line_over_lines_max_refused");
	free(b);

	/* 4 lines of 4000, 3 spaces, 1 space and the last: TEXT_MAX - 1. */
	b = make_reply(4, 4000, MTA_REPLY_TEXT_MAX - 1 - 16004, &len);
	feed(b, len, len, 0, &r);
	ok(r.status == MTA_REPLY_DONE &&
	    r.p.reply.textlen == MTA_REPLY_TEXT_MAX - 1 &&
	    strlen(mta_reply_text(&r.p.reply)) == MTA_REPLY_TEXT_MAX - 1,
	    "text_of_text_max_accepted");
	free(b);
	b = make_reply(4, 4000, MTA_REPLY_TEXT_MAX - 16004, &len);
	feed(b, len, len, 0, &r);
	ok(r.status == MTA_REPLY_ERROR && r.consumed == len - 2 &&
	    strcmp(r.p.error, "reply text too long") == 0,
	    "text_one_octet_over_refused");
	free(b);

	/*
	 * A hostile server: 1 MiB without a line end, fed as it would come
	 * off the socket.  The error comes at the line bound, after which
	 * nothing more is taken in.
	 */
	len = 1024 * 1024;
	if ((b = malloc(len)) == NULL)
		abort();
	memcpy(b, "250-", 4);
	memset(b + 4, 'A', len - 4);
	mta_reply_init(&r.p, 0);
	st = MTA_REPLY_MORE;
	for (fed = 0, i = 0; i < len && st == MTA_REPLY_MORE; i += 4096) {
		st = mta_reply_feed(&r.p, b + i, 4096, &used);
		fed += used;
	}
	ok(st == MTA_REPLY_ERROR && fed == MTA_REPLY_LINE_MAX - 1 &&
	    strcmp(r.p.error, "reply line too long") == 0,
	    "hostile_1mib_line_refused_at_line_max");
	st = mta_reply_feed(&r.p, b + i, 4096, &used);
	ok(st == MTA_REPLY_ERROR && used == 0,
	    "hostile_1mib_nothing_taken_after_error");

	/* 1 MiB of short continuation lines: refused at the line count. */
	for (i = 0; i + 7 <= len; i += 7)
		memcpy(b + i, "250-a\r\n", 7);
	feed(b, i, 65536, 0, &r);
	ok(r.status == MTA_REPLY_ERROR && r.consumed ==
	    MTA_REPLY_LINES_MAX * 7 + 1 &&
	    strcmp(r.p.error, "too many reply lines") == 0,
	    "hostile_1mib_of_lines_refused_at_lines_max");

	/* 1 MiB of NULs and CR LFs: refused at the first byte. */
	for (i = 0; i < len; i++)
		b[i] = "\0\r\n"[i % 3];
	feed(b, len, len, 0, &r);
	ok(r.status == MTA_REPLY_ERROR && r.consumed == 1,
	    "hostile_1mib_of_nul_crlf_refused");
	free(b);

	/* Whatever comes in, memory is the struct: no allocation. */
	bounded = sizeof(struct mta_reply_parser) <
	    MTA_REPLY_TEXT_MAX + 8192;
	ok(bounded, "parser_memory_is_bounded");
}

struct ehlo_case {
	const char	*name;
	const char	*in;
	int		 ret;
	uint32_t	 ext;
	uint32_t	 auth;
	uint64_t	 size;
};

#define ALLEXT	(MTA_EXT_PIPELINING | MTA_EXT_8BITMIME | MTA_EXT_SMTPUTF8 | \
		MTA_EXT_STARTTLS | MTA_EXT_ENHANCEDSTATUS | MTA_EXT_CHUNKING | \
		MTA_EXT_DSN | MTA_EXT_SIZE | MTA_EXT_AUTH)
#define ALLAUTH	(MTA_AUTH_PLAIN | MTA_AUTH_LOGIN | MTA_AUTH_CRAM_MD5)

static const struct ehlo_case ehlo_cases[] = {
	{ "every_keyword",
	    "250-mx.example.org Hello [192.0.2.1]\r\n250-PIPELINING\r\n"
	    "250-8BITMIME\r\n250-SMTPUTF8\r\n250-STARTTLS\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250-DSN\r\n"
	    "250-SIZE 35882577\r\n250 AUTH PLAIN LOGIN CRAM-MD5\r\n",
	    0, ALLEXT, ALLAUTH, 35882577 },
	{ "lower_case_keywords", "250-x\r\n250-pipelining\r\n250-StartTLS\r\n"
	    "250 size 1000\r\n", 0, MTA_EXT_PIPELINING | MTA_EXT_STARTTLS |
	    MTA_EXT_SIZE, 0, 1000 },
	{ "greeting_is_not_a_keyword", "250 PIPELINING\r\n", 0, 0, 0, 0 },
	{ "greeting_line_is_skipped", "250-STARTTLS\r\n250 DSN\r\n", 0,
	    MTA_EXT_DSN, 0, 0 },
	{ "size_without_number", "250-x\r\n250 SIZE\r\n", 0, MTA_EXT_SIZE, 0,
	    0 },
	{ "size_zero_is_no_limit", "250-x\r\n250 SIZE 0\r\n", 0, MTA_EXT_SIZE,
	    0, 0 },
	{ "size_not_a_number_ignored", "250-x\r\n250 SIZE 12a\r\n", 0,
	    MTA_EXT_SIZE, 0, 0 },
	{ "size_negative_ignored", "250-x\r\n250 SIZE -1\r\n", 0,
	    MTA_EXT_SIZE, 0, 0 },
	{ "size_two_numbers_ignored", "250-x\r\n250 SIZE 1 2\r\n", 0,
	    MTA_EXT_SIZE, 0, 0 },
	{ "size_20_digits_ignored",
	    "250-x\r\n250 SIZE 99999999999999999999\r\n", 0, MTA_EXT_SIZE, 0,
	    0 },
	{ "size_llong_max", "250-x\r\n250 SIZE 9223372036854775807\r\n", 0,
	    MTA_EXT_SIZE, 0, 9223372036854775807ULL },
	{ "size_over_llong_max_ignored",
	    "250-x\r\n250 SIZE 9223372036854775808\r\n", 0, MTA_EXT_SIZE, 0,
	    0 },
	{ "size_spaces_around", "250-x\r\n250 SIZE  100 \r\n", 0,
	    MTA_EXT_SIZE, 0, 100 },
	{ "size_leading_zeros", "250-x\r\n250 SIZE 007\r\n", 0, MTA_EXT_SIZE,
	    0, 7 },
	{ "size_last_line_wins", "250-x\r\n250-SIZE 10\r\n250 SIZE 20\r\n", 0,
	    MTA_EXT_SIZE, 0, 20 },
	{ "size_with_equals_is_not_size", "250-x\r\n250 SIZE=100\r\n", 0, 0, 0,
	    0 },
	{ "auth_old_and_new_forms",
	    "250-x\r\n250-AUTH=LOGIN PLAIN\r\n250 AUTH CRAM-MD5\r\n", 0,
	    MTA_EXT_AUTH, ALLAUTH, 0 },
	{ "auth_old_form_alone", "250-x\r\n250 AUTH=PLAIN\r\n", 0,
	    MTA_EXT_AUTH, MTA_AUTH_PLAIN, 0 },
	{ "auth_lower_case_extra_spaces",
	    "250-x\r\n250 auth  login   plain\r\n", 0, MTA_EXT_AUTH,
	    MTA_AUTH_PLAIN | MTA_AUTH_LOGIN, 0 },
	{ "auth_unknown_mechanisms", "250-x\r\n250 AUTH GSSAPI XOAUTH2\r\n", 0,
	    MTA_EXT_AUTH, 0, 0 },
	{ "auth_mechanism_prefix_not_matched",
	    "250-x\r\n250 AUTH PLAINX CRAM-MD5-PLUS\r\n", 0, MTA_EXT_AUTH, 0,
	    0 },
	{ "keyword_prefixes_not_matched",
	    "250-x\r\n250-PIPELININGX\r\n250-STARTTLS2\r\n250 DSNX\r\n", 0, 0,
	    0, 0 },
	{ "keyword_with_equals_ignored", "250-x\r\n250 STARTTLS=1\r\n", 0, 0,
	    0, 0 },
	{ "keyword_broken_by_control_not_matched",
	    "250-x\r\n250 PIPE\001LINING\r\n", 0, 0, 0, 0 },
	{ "keyword_after_tab_matched", "250-x\r\n250 \tDSN\r\n", 0,
	    MTA_EXT_DSN, 0, 0 },
	{ "enhanced_code_before_keyword_skipped",
	    "250-x\r\n250-2.0.0 PIPELINING\r\n250 2.0.0 DSN\r\n", 0,
	    MTA_EXT_PIPELINING | MTA_EXT_DSN, 0, 0 },
	{ "not_250_is_refused", "550 5.7.1 go away\r\n", -1, 0, 0, 0 },
	{ "251_is_refused", "251-x\r\n251 PIPELINING\r\n", -1, 0, 0, 0 },
};

static void
test_ehlo(void)
{
	static struct run	 r;
	struct mta_ehlo		 e;
	char			 name[128];
	size_t			 i, len;
	int			 ret;

	for (i = 0; i < NITEMS(ehlo_cases); i++) {
		const struct ehlo_case *c = &ehlo_cases[i];

		len = strlen(c->in);
		feed(c->in, len, len, 0, &r);
		if (r.status != MTA_REPLY_DONE || r.consumed != len) {
			snprintf(name, sizeof(name), "ehlo %s: reply parses",
			    c->name);
			ok(0, name);
			continue;
		}
		memset(&e, 0xa5, sizeof(e));
		ret = mta_reply_ehlo(&r.p.reply, &e);
		snprintf(name, sizeof(name), "ehlo %s", c->name);
		ok(ret == c->ret && e.ext == c->ext && e.auth == c->auth &&
		    e.size == c->size, name);
		if (ret != c->ret || e.ext != c->ext || e.auth != c->auth ||
		    e.size != c->size)
			printf("#   got %d ext %#x auth %#x size %llu\n", ret,
			    e.ext, e.auth, (unsigned long long)e.size);
	}
}

int
main(void)
{
	test_replies();
	test_lines_and_pipelining();
	test_limits();
	test_ehlo();
	return done_testing();
}
