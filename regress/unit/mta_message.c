/*
 * mta/mta_message.c: the DATA encoder and the scan, the MAIL and RCPT
 * builders.  Each message row is encoded whole,
 * one octet at a time, in uneven chunks and into a one-octet output
 * buffer: all must agree.  The wire form is then read back by smtpd's own
 * DATA decoder, which must end exactly at the end and store what the
 * encoder meant to send.
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sqmail.h"
#include "tap.h"
#include "../../mta/mta_message.h"
#include "../../mta/mta_reply.h"
#include "../../smtpd/smtp.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

enum chunking {
	C_WHOLE = 0,	/* one feed, a large output buffer */
	C_BYTE,		/* one octet a feed */
	C_UNEVEN,	/* chunks of 1..7 octets, outputs of 1..5 */
	C_OUT1		/* one feed, one octet of output a call */
};

struct enc_result {
	char			*wire;
	size_t			 len;
	enum mta_data_status	 status;
	uint64_t		 at;	/* input offset of an error */
	struct mta_message_info	 info;
	uint64_t		 wirecount;
};

/* Encode in[0..len) as chunking says; the caller frees r->wire. */
static void
encode(const char *in, size_t len, enum chunking how, uint64_t linemax,
    struct enc_result *r)
{
	struct mta_data_enc	 e;
	enum mta_data_status	 st = MTA_DATA_MORE;
	size_t			 cap, off = 0, n, used, made, outlen;
	unsigned int		 seed = 7;

	cap = len * 2 + 8;
	if ((r->wire = malloc(cap)) == NULL)
		abort();
	r->len = 0;
	mta_data_init(&e, linemax);
	while (off < len) {
		switch (how) {
		case C_BYTE:
			n = 1;
			outlen = cap - r->len;
			break;
		case C_UNEVEN:
			seed = seed * 1103515245 + 12345;
			n = 1 + (seed >> 16) % 7;
			outlen = 1 + (seed >> 8) % 5;
			break;
		case C_OUT1:
			n = len - off;
			outlen = 1;
			break;
		default:
			n = len - off;
			outlen = cap - r->len;
			break;
		}
		if (n > len - off)
			n = len - off;
		if (outlen > cap - r->len)
			outlen = cap - r->len;
		st = mta_data_feed(&e, in + off, n, &used, r->wire + r->len,
		    outlen, &made);
		off += used;
		r->len += made;
		if (st == MTA_DATA_ERROR)
			break;
	}
	/* Owed octets and the end come out through finish. */
	while (st == MTA_DATA_MORE) {
		outlen = how == C_WHOLE || how == C_BYTE ? cap - r->len : 1;
		st = mta_data_finish(&e, r->wire + r->len, outlen, &made);
		r->len += made;
	}
	r->status = st;
	r->at = off;
	r->info = e.info;
	r->wirecount = e.wire;
}

/* What smtpd stores when it receives wire: CRLF to LF, stuffing removed. */
static char *
receive(const char *wire, size_t len, size_t *stored, uint32_t *flags,
    size_t *consumed)
{
	struct smtp_data	 d;
	char			*out;

	if ((out = malloc(len + 1)) == NULL)
		abort();
	smtp_data_init(&d, 0, 1);
	*consumed = smtp_data_feed(&d, wire, len, out, stored);
	*flags = d.flags;
	return out;
}

struct data_case {
	const char	*name;
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	const char	*wire;
	size_t		 wirelen;	/* 0: strlen(wire) */
	int		 flags;		/* MTA_MSG_* */
	uint64_t	 maxline;
	const char	*stored;	/* what the next hop stores; NULL: in */
};

static const struct data_case data_cases[] = {
	{ "empty_message_is_the_terminator_alone", "", 0, ".\r\n", 0, 0, 0,
	    "" },
	{ "one_line", "a\n", 0, "a\r\n.\r\n", 0, 0, 1, NULL },
	{ "missing_final_newline_gets_crlf", "a", 0, "a\r\n.\r\n", 0,
	    MTA_MSG_NOEOL, 1, "a\n" },
	{ "message_of_one_dot", ".", 0, "..\r\n.\r\n", 0, MTA_MSG_NOEOL, 1,
	    ".\n" },
	{ "dot_line_is_stuffed", ".\n", 0, "..\r\n.\r\n", 0, 0, 1, NULL },
	{ "dot_at_message_start", ".hidden\n", 0, "..hidden\r\n.\r\n", 0, 0,
	    7, NULL },
	{ "dot_after_lf", "a\n.b\n", 0, "a\r\n..b\r\n.\r\n", 0, 0, 2, NULL },
	{ "dot_inside_line_untouched", "a.b.\n", 0, "a.b.\r\n.\r\n", 0, 0, 4,
	    NULL },
	{ "two_dots_get_a_third", "..\n", 0, "...\r\n.\r\n", 0, 0, 2, NULL },
	{ "empty_lines", "\n\n", 0, "\r\n\r\n.\r\n", 0, 0, 0, NULL },
	{ "header_and_body",
	    "Received: from x\nSubject: y\n\nbody\n.\n", 0,
	    "Received: from x\r\nSubject: y\r\n\r\nbody\r\n..\r\n.\r\n", 0, 0,
	    16, NULL },
	{ "stored_lf_dot_lf_stays_content", "a\n.\nMAIL FROM:<e@x>\n", 0,
	    "a\r\n..\r\nMAIL FROM:<e@x>\r\n.\r\n", 0, 0, 15, NULL },
	{ "bare_cr_becomes_line_end", "a\rb\n", 0, "a\r\nb\r\n.\r\n", 0,
	    MTA_MSG_CR, 1, "a\nb\n" },
	{ "stored_cr_lf_is_one_line_end", "a\r\nb\n", 0, "a\r\nb\r\n.\r\n", 0,
	    MTA_MSG_CR, 1, "a\nb\n" },
	{ "cr_dot_cr_smuggling_is_stuffed", "a\r.\rMAIL FROM:<e@x>\n", 0,
	    "a\r\n..\r\nMAIL FROM:<e@x>\r\n.\r\n", 0, MTA_MSG_CR, 15,
	    "a\n.\nMAIL FROM:<e@x>\n" },
	{ "lf_dot_cr_lf_smuggling_is_stuffed", "a\n.\r\nMAIL\n", 0,
	    "a\r\n..\r\nMAIL\r\n.\r\n", 0, MTA_MSG_CR, 4, "a\n.\nMAIL\n" },
	{ "cr_cr_lf_is_two_line_ends", "a\r\r\n", 0, "a\r\n\r\n.\r\n", 0,
	    MTA_MSG_CR, 1, "a\n\n" },
	{ "trailing_cr_ends_the_last_line", "a\r", 0, "a\r\n.\r\n", 0,
	    MTA_MSG_CR, 1, "a\n" },
	{ "message_of_one_cr", "\r", 0, "\r\n.\r\n", 0, MTA_MSG_CR, 0,
	    "\n" },
	{ "old_mac_line_ends", "one\rtwo\r.\r", 0,
	    "one\r\ntwo\r\n..\r\n.\r\n", 0, MTA_MSG_CR, 3, "one\ntwo\n.\n" },
	{ "eight_bit_reported", "caf\xc3\xa9\n", 0, "caf\xc3\xa9\r\n.\r\n", 0,
	    MTA_MSG_8BIT, 5, NULL },
	{ "nul_reported_and_sent", "a\0b\n", 4, "a\0b\r\n.\r\n", 8,
	    MTA_MSG_NUL, 3, NULL },
	{ "longest_line_measured", "ab\nabcd\nabc", 0,
	    "ab\r\nabcd\r\nabc\r\n.\r\n", 0, MTA_MSG_NOEOL, 4,
	    "ab\nabcd\nabc\n" },
	{ "stuffing_dot_not_counted", "....\n", 0, ".....\r\n.\r\n", 0, 0, 4,
	    NULL },
};

/* RFC 1870 SIZE of what smtpd would store: its LFs as CRLF. */
static uint64_t
smtpsize_of(const char *stored, size_t len)
{
	uint64_t	 n = len;
	size_t		 i;

	for (i = 0; i < len; i++)
		if (stored[i] == '\n')
			n++;
	return n;
}

static int
scan_text(const char *in, size_t len, struct mta_message_info *info)
{
	char	 path[] = "/tmp/mta_message.XXXXXX";
	int	 fd, r;

	if ((fd = mkstemp(path)) == -1)
		return -1;
	(void)unlink(path);
	if (write(fd, in, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	r = mta_message_scan(fd, info);
	close(fd);
	return r;
}

static void
data_rows(void)
{
	const struct data_case	*c;
	struct enc_result	 r[4];
	struct mta_message_info	 si;
	char			 name[160], *got;
	const char		*stored;
	size_t			 i, k, len, wlen, slen, glen, used;
	uint32_t		 df;
	int			 same;

	for (i = 0; i < NITEMS(data_cases); i++) {
		c = &data_cases[i];
		len = c->len ? c->len : strlen(c->in);
		wlen = c->wirelen ? c->wirelen : strlen(c->wire);
		for (k = 0; k < 4; k++)
			encode(c->in, len, k, MTA_LINE_MAX, &r[k]);
		snprintf(name, sizeof(name), "%s: wire form", c->name);
		ok(r[0].status == MTA_DATA_DONE && r[0].len == wlen &&
		    memcmp(r[0].wire, c->wire, wlen) == 0, name);

		for (same = 1, k = 1; k < 4; k++)
			same &= r[k].status == r[0].status &&
			    r[k].len == r[0].len &&
			    memcmp(r[k].wire, r[0].wire, r[0].len) == 0 &&
			    memcmp(&r[k].info, &r[0].info,
			    sizeof(r[0].info)) == 0;
		snprintf(name, sizeof(name), "%s: same for any chunking",
		    c->name);
		ok(same, name);

		stored = c->stored ? c->stored : c->in;
		slen = c->stored ? strlen(c->stored) : len;
		snprintf(name, sizeof(name), "%s: flags, longest line, sizes",
		    c->name);
		ok(r[0].info.flags == c->flags &&
		    r[0].info.maxline == c->maxline &&
		    r[0].info.size == len && r[0].wirecount == wlen &&
		    r[0].info.smtpsize == smtpsize_of(stored, slen), name);

		got = receive(r[0].wire, r[0].len, &glen, &df, &used);
		snprintf(name, sizeof(name), "%s: smtpd reads it back, ending "
		    "at the end", c->name);
		ok(used == r[0].len && (df & SMTP_DATA_DONE) &&
		    !(df & (SMTP_DATA_BARECR | SMTP_DATA_BARELF)) &&
		    glen == slen && memcmp(got, stored, slen) == 0, name);
		free(got);

		snprintf(name, sizeof(name), "%s: scan agrees with the encoder",
		    c->name);
		ok(scan_text(c->in, len, &si) == 0 &&
		    memcmp(&si, &r[0].info, sizeof(si)) == 0, name);
		for (k = 0; k < 4; k++)
			free(r[k].wire);
	}
}

/* Feed a list of chunks, NULL-terminated, into a large buffer. */
static int
encode_chunks(const char *const *chunks, const char *expect)
{
	struct mta_data_enc	 e;
	char			 out[256];
	size_t			 n = 0, used, made;

	mta_data_init(&e, MTA_LINE_MAX);
	for (; *chunks != NULL; chunks++) {
		if (mta_data_feed(&e, *chunks, strlen(*chunks), &used, out + n,
		    sizeof(out) - n, &made) != MTA_DATA_MORE ||
		    used != strlen(*chunks))
			return 0;
		n += made;
	}
	if (mta_data_finish(&e, out + n, sizeof(out) - n, &made) !=
	    MTA_DATA_DONE)
		return 0;
	n += made;
	return n == strlen(expect) && memcmp(out, expect, n) == 0;
}

static void
chunk_boundaries(void)
{
	static const char *const a[] = { "a\n", ".b\n", NULL };
	static const char *const b[] = { "a", "\n", ".", "b", "\n", NULL };
	static const char *const c[] = { "x\r", "\n.", "\r", ".", NULL };
	static const char *const d[] = { "", ".", "", "\n", "", NULL };
	struct mta_data_enc	 e;
	char			 out[16];
	size_t			 used, made;

	ok(encode_chunks(a, "a\r\n..b\r\n.\r\n"),
	    "dot_stuffed_when_the_chunk_starts_with_it");
	ok(encode_chunks(b, "a\r\n..b\r\n.\r\n"),
	    "dot_stuffed_when_it_is_a_chunk_alone");
	ok(encode_chunks(c, "x\r\n..\r\n..\r\n.\r\n"),
	    "cr_lf_split_over_chunks_is_one_line_end");
	ok(encode_chunks(d, "..\r\n.\r\n"), "empty_chunks_change_nothing");

	/* The end is final. */
	mta_data_init(&e, MTA_LINE_MAX);
	(void)mta_data_finish(&e, out, sizeof(out), &made);
	ok(mta_data_finish(&e, out, sizeof(out), &made) == MTA_DATA_DONE &&
	    made == 0, "finish_again_is_done_and_outputs_nothing");
	ok(mta_data_feed(&e, "x", 1, &used, out, sizeof(out), &made) ==
	    MTA_DATA_ERROR && used == 0 && made == 0 && e.error != NULL,
	    "data_after_the_end_is_an_error");

	/* Nothing is lost when the output is full: it is owed. */
	mta_data_init(&e, MTA_LINE_MAX);
	ok(mta_data_feed(&e, ".\n", 2, &used, out, 1, &made) ==
	    MTA_DATA_MORE && used == 1 && made == 1 && e.nowed > 0,
	    "octets_owed_when_the_output_is_full");
	ok(mta_data_feed(&e, "\n", 1, &used, out + 1, sizeof(out) - 1,
	    &made) == MTA_DATA_MORE && used == 1 && made == 3 &&
	    memcmp(out, "..\r\n", 4) == 0 && e.nowed == 0,
	    "owed_octets_come_first_on_the_next_call");
	ok(mta_data_finish(&e, out, 0, &made) == MTA_DATA_MORE && made == 0,
	    "finish_into_no_room_asks_again");
}

static char *
repeat(int c, size_t n, const char *tail)
{
	char	*s;

	if ((s = malloc(n + strlen(tail) + 1)) == NULL)
		abort();
	memset(s, c, n);
	memcpy(s + n, tail, strlen(tail) + 1);
	return s;
}

static void
long_lines(void)
{
	struct enc_result	 r, b;
	struct mta_message_info	 si;
	const char		*why;
	char			*s;

	s = repeat('a', 998, "\nnext\n");
	encode(s, strlen(s), C_UNEVEN, MTA_LINE_MAX, &r);
	ok(r.status == MTA_DATA_DONE && r.info.maxline == 998 &&
	    !(r.info.flags & MTA_MSG_LONG) && r.len == 998 + 2 + 6 + 3,
	    "line_of_998_octets_is_sent");
	ok(mta_message_sendable(&r.info, &why) && why == NULL,
	    "line_of_998_octets_is_sendable");
	free(r.wire);
	free(s);

	s = repeat('.', 998, "\n");
	encode(s, strlen(s), C_BYTE, MTA_LINE_MAX, &r);
	ok(r.status == MTA_DATA_DONE && r.info.maxline == 998 &&
	    r.len == 999 + 2 + 3, "stuffing_dot_does_not_count_toward_998");
	free(r.wire);
	free(s);

	s = repeat('a', 999, "\n");
	encode(s, strlen(s), C_WHOLE, MTA_LINE_MAX, &r);
	encode(s, strlen(s), C_UNEVEN, MTA_LINE_MAX, &b);
	ok(r.status == MTA_DATA_ERROR && r.at == 998 && r.len == 998 &&
	    (r.info.flags & MTA_MSG_LONG), "line_of_999_octets_stops_at_it");
	ok(b.status == MTA_DATA_ERROR && b.at == 998 && b.len == 998,
	    "line_of_999_octets_stops_at_it_in_any_chunking");
	ok(memchr(r.wire, '.', r.len) == NULL &&
	    memchr(r.wire, '\n', r.len) == NULL,
	    "cut_line_carries_no_line_end_or_terminator");
	free(r.wire);
	free(b.wire);

	ok(scan_text(s, strlen(s), &si) == 0 && si.maxline == 999 &&
	    (si.flags & MTA_MSG_LONG), "scan_finds_the_long_line");
	ok(!mta_message_sendable(&si, &why) && why != NULL &&
	    strcmp(why, MTA_LINE_REASON) == 0 && strstr(why, "#5.") != NULL,
	    "long_line_fails_permanently_with_a_reason");

	encode(s, strlen(s), C_WHOLE, 0, &r);
	ok(r.status == MTA_DATA_DONE && r.len == 999 + 2 + 3 &&
	    r.info.maxline == 999 && (r.info.flags & MTA_MSG_LONG),
	    "without_a_limit_the_line_is_sent_as_it_is");
	free(r.wire);
	free(s);
}

/* 100 MB in one line through a 4 KB buffer: nothing grows. */
static void
huge_line(void)
{
	struct mta_data_enc	 e;
	struct mta_message_info	 si;
	static char		 in[65536], out[4096];
	const uint64_t		 total = 100ULL * 1024 * 1024;
	uint64_t		 fed = 0, wire = 0;
	size_t			 off, used, made;
	enum mta_data_status	 st;
	char			 path[] = "/tmp/mta_message.XXXXXX";
	int			 fd, good = 1;

	memset(in, 'x', sizeof(in));
	mta_data_init(&e, 0);
	while (fed < total && good) {
		for (off = 0; off < sizeof(in); off += used) {
			if (mta_data_feed(&e, in + off, sizeof(in) - off,
			    &used, out, sizeof(out), &made) != MTA_DATA_MORE) {
				good = 0;
				break;
			}
			wire += made;
		}
		fed += sizeof(in);
	}
	do {
		st = mta_data_finish(&e, out, sizeof(out), &made);
		wire += made;
	} while (st == MTA_DATA_MORE);
	ok(good && st == MTA_DATA_DONE && wire == total + 5 &&
	    e.wire == wire && e.info.maxline == total &&
	    e.info.flags == (MTA_MSG_NOEOL | MTA_MSG_LONG) && sizeof(e) < 128,
	    "line_of_100_mb_encoded_in_constant_memory");

	/* A sparse file: 100 MB of NUL, no line end. */
	if ((fd = mkstemp(path)) == -1 || unlink(path) == -1 ||
	    ftruncate(fd, (off_t)total) == -1)
		good = 0;
	ok(good && mta_message_scan(fd, &si) == 0 && si.size == total &&
	    si.maxline == total && si.smtpsize == total + 2 &&
	    si.flags == (MTA_MSG_NUL | MTA_MSG_NOEOL | MTA_MSG_LONG),
	    "scan_of_a_100_mb_line_in_constant_memory");
	if (fd != -1)
		close(fd);
}

static void
scan_file(void)
{
	struct mta_message_info	 si;
	char			 path[] = "/tmp/mta_message.XXXXXX";
	const char		*msg = "Received: from x\n\n.\nbody\xff\n";
	int			 fd;

	if ((fd = mkstemp(path)) == -1)
		abort();
	(void)unlink(path);
	if (write(fd, msg, strlen(msg)) != (ssize_t)strlen(msg))
		abort();
	ok(mta_message_scan(fd, &si) == 0 && si.size == strlen(msg) &&
	    si.smtpsize == strlen(msg) + 4 && si.maxline == 16 &&
	    si.flags == MTA_MSG_8BIT, "scan_reads_from_offset_0");
	ok(lseek(fd, 0, SEEK_CUR) == (off_t)strlen(msg),
	    "scan_leaves_the_file_offset_alone");
	close(fd);
	errno = 0;
	ok(mta_message_scan(fd, &si) == -1 && errno == EBADF &&
	    si.size == 0, "scan_of_a_closed_descriptor_fails");
}

struct cmd_case {
	const char	*name;
	const char	*addr;
	size_t		 len;		/* 0: strlen(addr) */
	int		 flags;
	uint64_t	 size;
	const char	*mail;		/* NULL: refused */
	const char	*rcpt;
};

#define U8	MTA_CMD_SMTPUTF8

static const struct cmd_case cmd_cases[] = {
	{ "plain_address", "alice@example.org", 0, 0, 0,
	    "MAIL FROM:<alice@example.org>\r\n",
	    "RCPT TO:<alice@example.org>\r\n" },
	{ "null_path", "", 0, 0, 0, "MAIL FROM:<>\r\n", NULL },
	{ "null_path_with_size_and_body", "", 0,
	    MTA_CMD_SIZE | MTA_CMD_8BITMIME, 1234,
	    "MAIL FROM:<> SIZE=1234 BODY=8BITMIME\r\n", NULL },
	{ "size_zero_is_given", "a@b.c", 0, MTA_CMD_SIZE, 0,
	    "MAIL FROM:<a@b.c> SIZE=0\r\n", "RCPT TO:<a@b.c>\r\n" },
	{ "size_largest", "a@b.c", 0, MTA_CMD_SIZE, UINT64_MAX,
	    "MAIL FROM:<a@b.c> SIZE=18446744073709551615\r\n",
	    "RCPT TO:<a@b.c>\r\n" },
	{ "space_gets_quoted", "john doe@x.org", 0, 0, 0,
	    "MAIL FROM:<\"john doe\"@x.org>\r\n",
	    "RCPT TO:<\"john doe\"@x.org>\r\n" },
	{ "queue_quoted_form_kept", "\"john doe\"@x.org", 0, 0, 0,
	    "MAIL FROM:<\"john doe\"@x.org>\r\n",
	    "RCPT TO:<\"john doe\"@x.org>\r\n" },
	{ "needless_quotes_dropped", "\"john\"@x.org", 0, 0, 0,
	    "MAIL FROM:<john@x.org>\r\n", "RCPT TO:<john@x.org>\r\n" },
	{ "quote_char_escaped", "a\"b@x.org", 0, 0, 0,
	    "MAIL FROM:<\"a\\\"b\"@x.org>\r\n",
	    "RCPT TO:<\"a\\\"b\"@x.org>\r\n" },
	{ "backslash_escaped", "a\\b@x.org", 0, 0, 0,
	    "MAIL FROM:<\"a\\\\b\"@x.org>\r\n",
	    "RCPT TO:<\"a\\\\b\"@x.org>\r\n" },
	{ "quoted_escapes_round_trip", "\"a\\\"b\\\\c\"@x.org", 0, 0, 0,
	    "MAIL FROM:<\"a\\\"b\\\\c\"@x.org>\r\n",
	    "RCPT TO:<\"a\\\"b\\\\c\"@x.org>\r\n" },
	{ "needless_escape_dropped", "\"\\a\"@x.org", 0, 0, 0,
	    "MAIL FROM:<a@x.org>\r\n", "RCPT TO:<a@x.org>\r\n" },
	{ "leading_dot_quoted", ".a@x.org", 0, 0, 0,
	    "MAIL FROM:<\".a\"@x.org>\r\n", "RCPT TO:<\".a\"@x.org>\r\n" },
	{ "double_dot_quoted", "a..b@x.org", 0, 0, 0,
	    "MAIL FROM:<\"a..b\"@x.org>\r\n", "RCPT TO:<\"a..b\"@x.org>\r\n" },
	{ "at_sign_in_local_part", "a@b@x.org", 0, 0, 0,
	    "MAIL FROM:<\"a@b\"@x.org>\r\n", "RCPT TO:<\"a@b\"@x.org>\r\n" },
	{ "atext_specials_stay_bare", "a+b=c/d!#$%&'*^_`{|}~-@x.org", 0, 0, 0,
	    "MAIL FROM:<a+b=c/d!#$%&'*^_`{|}~-@x.org>\r\n",
	    "RCPT TO:<a+b=c/d!#$%&'*^_`{|}~-@x.org>\r\n" },
	{ "empty_quoted_local_part", "\"\"@x.org", 0, 0, 0,
	    "MAIL FROM:<\"\"@x.org>\r\n", "RCPT TO:<\"\"@x.org>\r\n" },
	{ "angle_brackets_inside_quotes", "\"a<b>c\"@x.org", 0, 0, 0,
	    "MAIL FROM:<\"a<b>c\"@x.org>\r\n",
	    "RCPT TO:<\"a<b>c\"@x.org>\r\n" },
	{ "ipv4_literal", "a@[192.0.2.1]", 0, 0, 0,
	    "MAIL FROM:<a@[192.0.2.1]>\r\n", "RCPT TO:<a@[192.0.2.1]>\r\n" },
	{ "ipv6_literal", "a@[IPv6:2001:db8::1]", 0, 0, 0,
	    "MAIL FROM:<a@[IPv6:2001:db8::1]>\r\n",
	    "RCPT TO:<a@[IPv6:2001:db8::1]>\r\n" },
	{ "domain_case_kept", "a@Example.ORG", 0, 0, 0,
	    "MAIL FROM:<a@Example.ORG>\r\n", "RCPT TO:<a@Example.ORG>\r\n" },
	{ "postmaster_without_domain", "PostMaster", 0, 0, 0, NULL,
	    "RCPT TO:<PostMaster>\r\n" },
	{ "other_user_without_domain", "alice", 0, 0, 0, NULL, NULL },

	{ "unquoted_lt_refused", "a<b@x.org", 0, 0, 0, NULL, NULL },
	{ "unquoted_gt_refused", "a>b@x.org", 0, 0, 0, NULL, NULL },
	{ "gt_in_domain_refused", "a@x.org>", 0, 0, 0, NULL, NULL },
	{ "command_injection_refused", "a@x.org> SIZE=1\r\nRSET", 0, 0, 0,
	    NULL, NULL },
	{ "cr_in_local_refused", "a\rb@x.org", 0, 0, 0, NULL, NULL },
	{ "lf_in_local_refused", "a\nb@x.org", 0, 0, 0, NULL, NULL },
	{ "nul_in_local_refused", "a\0b@x.org", 9, 0, 0, NULL, NULL },
	{ "tab_in_local_refused", "a\tb@x.org", 0, 0, 0, NULL, NULL },
	{ "del_in_local_refused", "a\x7f" "b@x.org", 0, 0, 0, NULL, NULL },
	{ "cr_in_quotes_refused", "\"a\rb\"@x.org", 0, 0, 0, NULL, NULL },
	{ "escaped_lf_in_quotes_refused", "\"a\\\nb\"@x.org", 0, 0, 0, NULL,
	    NULL },
	{ "crlf_in_domain_refused", "a@x.org\r\nRCPT TO:<b@y>", 0, 0, 0,
	    NULL, NULL },
	{ "nul_in_domain_refused", "a@x\0.org", 8, 0, 0, NULL, NULL },
	{ "unterminated_quote_refused", "\"ab@x.org", 0, 0, 0, NULL, NULL },
	{ "text_after_quote_refused", "\"a\"b@x.org", 0, 0, 0, NULL, NULL },
	{ "quoted_without_domain_refused", "\"a b\"", 0, 0, 0, NULL, NULL },
	{ "empty_local_part_refused", "@x.org", 0, 0, 0, NULL, NULL },
	{ "empty_domain_refused", "a@", 0, 0, 0, NULL, NULL },
	{ "leading_dot_domain_refused", "a@.x.org", 0, 0, 0, NULL, NULL },
	{ "double_dot_domain_refused", "a@x..org", 0, 0, 0, NULL, NULL },
	{ "trailing_dot_domain_refused", "a@x.org.", 0, 0, 0, NULL, NULL },
	{ "space_in_domain_refused", "a@ex ample.org", 0, 0, 0, NULL, NULL },
	{ "unclosed_literal_refused", "a@[192.0.2.1", 0, 0, 0, NULL, NULL },
	{ "empty_literal_refused", "a@[]", 0, 0, 0, NULL, NULL },
	{ "backslash_in_literal_refused", "a@[1.2\\]3]", 0, 0, 0, NULL, NULL },
	{ "space_in_literal_refused", "a@[1.2 3]", 0, 0, 0, NULL, NULL },

	{ "utf8_local_without_smtputf8_refused", "jos\xc3\xa9@x.org", 0, 0, 0,
	    NULL, NULL },
	{ "utf8_local_with_smtputf8", "jos\xc3\xa9@x.org", 0, U8, 0,
	    "MAIL FROM:<jos\xc3\xa9@x.org> SMTPUTF8\r\n",
	    "RCPT TO:<jos\xc3\xa9@x.org>\r\n" },
	{ "utf8_domain_with_smtputf8", "a@b\xc3\xbc" "cher.de", 0, U8, 0,
	    "MAIL FROM:<a@b\xc3\xbc" "cher.de> SMTPUTF8\r\n",
	    "RCPT TO:<a@b\xc3\xbc" "cher.de>\r\n" },
	{ "utf8_domain_without_smtputf8_refused", "a@b\xc3\xbc" "cher.de", 0,
	    0, 0, NULL, NULL },
	{ "utf8_with_space_quoted", "\xe2\x82\xac 1@x.org", 0, U8, 0,
	    "MAIL FROM:<\"\xe2\x82\xac 1\"@x.org> SMTPUTF8\r\n",
	    "RCPT TO:<\"\xe2\x82\xac 1\"@x.org>\r\n" },
	{ "truncated_utf8_refused", "jos\xc3@x.org", 0, U8, 0, NULL, NULL },
	{ "overlong_utf8_refused", "a\xc0\xaf" "b@x.org", 0, U8, 0, NULL,
	    NULL },
	{ "surrogate_utf8_refused", "a\xed\xa0\x80@x.org", 0, U8, 0, NULL,
	    NULL },
	{ "past_u10ffff_refused", "a\xf4\x90\x80\x80@x.org", 0, U8, 0, NULL,
	    NULL },
	{ "all_params", "a@b.c", 0, MTA_CMD_SIZE | MTA_CMD_8BITMIME | U8, 9,
	    "MAIL FROM:<a@b.c> SIZE=9 BODY=8BITMIME SMTPUTF8\r\n",
	    "RCPT TO:<a@b.c>\r\n" },
};

static void
cmd_one(const char *what, const struct cmd_case *c, int rcpt)
{
	char		 out[SQ_LINE_MAX + 1], name[160];
	const char	*expect = rcpt ? c->rcpt : c->mail;
	size_t		 len = c->len ? c->len : strlen(c->addr);
	int		 n;

	memset(out, 'X', sizeof(out));
	if (rcpt)
		n = mta_cmd_rcpt(out, sizeof(out), c->addr, len, c->flags);
	else
		n = mta_cmd_mail(out, sizeof(out), c->addr, len, c->size,
		    c->flags);
	snprintf(name, sizeof(name), "%s: %s %s", c->name, what,
	    expect ? "built" : "refused");
	if (expect == NULL) {
		if (!ok(n == -1 && out[0] == '\0', name))
			printf("#   got %d \"%s\"\n", n, out);
		return;
	}
	if (!ok(n == (int)strlen(expect) && strcmp(out, expect) == 0, name))
		printf("#   got %d \"%s\"\n", n, n >= 0 ? out : "");
}

static void
cmd_rows(void)
{
	size_t	 i;

	for (i = 0; i < NITEMS(cmd_cases); i++) {
		cmd_one("MAIL", &cmd_cases[i], 0);
		cmd_one("RCPT", &cmd_cases[i], 1);
	}
}

static void
cmd_bounds(void)
{
	char	 out[SQ_LINE_MAX + 64], addr[SQ_LINE_MAX];
	size_t	 local;
	int	 n;

	/* "RCPT TO:<" local "@x.org>" CRLF is local + 18 octets. */
	local = SQ_LINE_MAX - 18;
	memset(addr, 'a', local);
	memcpy(addr + local, "@x.org", 6);
	n = mta_cmd_rcpt(out, sizeof(out), addr, local + 6, 0);
	ok(n == SQ_LINE_MAX, "command_of_512_octets_is_built");
	memmove(addr + 1, addr, local + 6);
	n = mta_cmd_rcpt(out, sizeof(out), addr, local + 7, 0);
	ok(n == -1 && out[0] == '\0', "command_of_513_octets_is_refused");

	n = mta_cmd_mail(out, 32, "alice@example.org", 17, 0, 0);
	ok(n == 31, "command_fits_a_buffer_of_its_length_plus_nul");
	n = mta_cmd_mail(out, 31, "alice@example.org", 17, 0, 0);
	ok(n == -1 && out[0] == '\0', "command_one_octet_too_long_refused");
	ok(mta_cmd_mail(out, 0, "a@b.c", 5, 0, 0) == -1,
	    "empty_buffer_refused");

	memset(addr, 'd', 258);
	memcpy(addr, "a@", 2);
	ok(mta_cmd_rcpt(out, sizeof(out), addr, 258, 0) == -1,
	    "domain_of_256_octets_refused");
}

int
main(void)
{
	data_rows();
	chunk_boundaries();
	long_lines();
	huge_line();
	scan_file();
	cmd_rows();
	cmd_bounds();
	return done_testing();
}
