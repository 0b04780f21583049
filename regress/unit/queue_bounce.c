/*
 * queue/queue_bounce.c: QSBMF composition and the log text escaping.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqmail.h"
#include "tap.h"
#include "../../queue/queue.h"

#define BOUNCE_ORIG	"Received: from x\nSubject: hello\n\nline one\n" \
			"line two\nline three\n"

static const struct bounce_rcpt bounce_test_rcpts[] = {
	{ "bob@example.net", "550 5.1.1 no such user" },
	{ "carol@example.com", "" },
	{ "dave@example.com", "bad\ttext\x01" },
};

static void
bounce_test_params(struct bounce_params *bp)
{
	memset(bp, 0, sizeof(*bp));
	bp->hostname = "mx.example.org";
	bp->to = "alice@example.org";
	bp->return_path = "alice@example.org";
	bp->now = 1700000000;		/* Tue, 14 Nov 2023 22:13:20 UTC */
	bp->id = 77;
	bp->rcpts = bounce_test_rcpts;
	bp->nrcpt = 3;
	bp->orig = BOUNCE_ORIG;
	bp->origlen = strlen(BOUNCE_ORIG);
	bp->origsize = strlen(BOUNCE_ORIG);
	bp->maxquote = 10000;
}

/*
 * Read a bounce the way a QSBMF parser does: after the header, the
 * paragraphs (separated by blank lines) are the greeting, the recipient
 * paragraphs, then the break paragraph.  Returns the number of recipient
 * paragraphs, or -1 when the structure is wrong; *copy points after the
 * break line and its blank line.
 */
static int
bounce_test_parse(const char *text, const char **copy)
{
	const char	*p, *para, *end;
	int		 n = 0;

	if ((p = strstr(text, "\n\n")) == NULL)
		return -1;
	p += 2;
	if (strncmp(p, "Hi. This is the ", 16) != 0)
		return -1;
	if ((p = strstr(p, "\n\n")) == NULL)
		return -1;
	p += 2;
	for (;;) {
		para = p;
		if (strncmp(para, "--- ", 4) == 0)
			break;
		if (para[0] != '<')
			return -1;
		if ((end = strchr(para, '\n')) == NULL || end - para < 3 ||
		    end[-1] != ':' || end[-2] != '>')
			return -1;
		if (end[1] == '\n' || end[1] == '\0')
			return -1;	/* a reason line must follow */
		if ((p = strstr(end, "\n\n")) == NULL)
			return -1;
		p += 2;
		n++;
	}
	if (strncmp(para, "--- Below this line is a copy of the message.\n\n",
	    47) != 0)
		return -1;
	*copy = para + 47;
	return n;
}

static void
bounce_has_qsbmf_structure(void)
{
	struct bounce_params	 bp;
	const char		*copy;
	char			*text;
	size_t			 len;

	bounce_test_params(&bp);
	text = bounce_compose(&bp, &len);
	ok(text != NULL, "compose a bounce");
	is_int(len, strlen(text), "length given back");
	is_int(bounce_test_parse(text, &copy), 3,
	    "QSBMF: greeting, three recipient paragraphs, break");
	ok(strncmp(text, "Date: Tue, 14 Nov 2023 22:13:20 +0000\n", 38) == 0,
	    "Date header first, in UTC");
	ok(strstr(text, "\nFrom: MAILER-DAEMON@mx.example.org\n") != NULL,
	    "From MAILER-DAEMON");
	ok(strstr(text, "\nTo: alice@example.org\n") != NULL, "To the sender");
	ok(strstr(text, "\nSubject: failure notice\n") != NULL, "Subject");
	ok(strstr(text, "\nMessage-ID: <77.bounce@mx.example.org>\n") != NULL,
	    "Message-ID");
	ok(strstr(text, "\nAuto-Submitted: auto-replied\n") != NULL,
	    "Auto-Submitted");
	ok(strstr(text, "\n\nHi. This is the sqmail queue at "
	    "mx.example.org.\n") != NULL, "greeting names the host");
	ok(strstr(text, "\n<bob@example.net>:\n550 5.1.1 no such user\n\n") !=
	    NULL, "recipient paragraph with its reason");
	ok(strstr(text, "\n<carol@example.com>:\nThe delivery failed without "
	    "giving a reason.\n\n") != NULL, "an empty reason is explained");
	ok(strstr(text, "\n<dave@example.com>:\nbad?text?\n\n") != NULL,
	    "control bytes in a reason are replaced");
	is_str(copy, "Return-Path: <alice@example.org>\n" BOUNCE_ORIG,
	    "the whole original follows its Return-Path");
	ok(strstr(text, "holds only the first") == NULL, "no cut, no note");
	ok(strstr(text, "\r") == NULL, "LF original, LF bounce");
	free(text);
}

static void
bounce_cuts_large_originals(void)
{
	struct bounce_params	 bp;
	const char		*copy;
	char			*text, note[128];
	size_t			 len;

	bounce_test_params(&bp);
	bp.maxquote = 50;	/* in the middle of "line two" */
	text = bounce_compose(&bp, &len);
	ok(text != NULL, "compose with a small quote limit");
	is_int(bounce_test_parse(text, &copy), 3, "still QSBMF");
	is_str(copy, "Return-Path: <alice@example.org>\n"
	    "Received: from x\nSubject: hello\n\nline one\n",
	    "the copy is cut at the last line end within the limit");
	snprintf(note, sizeof(note), "The copy below holds only the first "
	    "42 of %zu octets.\n", strlen(BOUNCE_ORIG));
	ok(strstr(text, note) != NULL, "the greeting says it was cut");
	free(text);

	/* The caller read only a prefix of a larger file. */
	bounce_test_params(&bp);
	bp.origsize = 1000000;
	text = bounce_compose(&bp, &len);
	ok(strstr(text, "first 62 of 1000000 octets") != NULL,
	    "a file larger than what was read is cut too");
	free(text);

	/* No newline within the limit: cut at the limit, end the line. */
	bounce_test_params(&bp);
	bp.orig = "abcdefghijklmnopqrstuvwxyz";
	bp.origlen = bp.origsize = 26;
	bp.maxquote = 10;
	text = bounce_compose(&bp, &len);
	bounce_test_parse(text, &copy);
	is_str(copy, "Return-Path: <alice@example.org>\nabcdefghij\n",
	    "a long line is cut at the limit");
	free(text);

	bounce_test_params(&bp);
	bp.maxquote = 0;
	text = bounce_compose(&bp, &len);
	bounce_test_parse(text, &copy);
	is_str(copy, "Return-Path: <alice@example.org>\n",
	    "a zero limit quotes nothing");
	free(text);
}

static void
bounce_keeps_crlf_originals(void)
{
	struct bounce_params	 bp;
	char			*text;
	size_t			 len;

	bounce_test_params(&bp);
	bp.orig = "Subject: x\r\n\r\nbody\r\n";
	bp.origlen = bp.origsize = strlen(bp.orig);
	text = bounce_compose(&bp, &len);
	ok(strstr(text, "\r\nSubject: failure notice\r\n") != NULL,
	    "CRLF original, CRLF bounce");
	ok(strstr(text, "\r\n\r\nHi. This is the ") != NULL,
	    "paragraphs end in CRLF too");
	free(text);
}

static void
double_bounce_text(void)
{
	struct bounce_params	 bp;
	const char		*copy;
	char			*text;
	size_t			 len;

	bounce_test_params(&bp);
	bp.dbounce = 1;
	bp.to = "postmaster@mx.example.org";
	bp.return_path = "";
	bp.nrcpt = 1;
	text = bounce_compose(&bp, &len);
	is_int(bounce_test_parse(text, &copy), 1, "double bounce is QSBMF");
	ok(strstr(text, "\nTo: postmaster@mx.example.org\n") != NULL,
	    "to the postmaster");
	ok(strstr(text, "could not be delivered\neither") != NULL ||
	    strstr(text, "could not be delivered either") != NULL,
	    "says the notice itself failed");
	ok(strncmp(copy, "Return-Path: <>\n", 16) == 0,
	    "copy of a bounce has the null Return-Path");
	free(text);
}

static const struct {
	const char	*in;
	const char	*out;
} logtext_table[] = {
	{ "did 0+0+1/", "did_0+0+1/" },
	{ "Remote host said: 550 no\nsuch user",
	    "Remote_host_said:_550_no/such_user" },
	{ "tab\there", "tab?here" },
	{ "cr\rdel\x7f", "cr?del?" },
	{ "", "" },
};

static void
log_text_is_escaped(void)
{
	char	 out[128], name[160];
	size_t	 i;

	for (i = 0; i < sizeof(logtext_table) / sizeof(logtext_table[0]); i++) {
		bounce_logtext(logtext_table[i].in, out, sizeof(out));
		snprintf(name, sizeof(name), "log text: %s",
		    logtext_table[i].out);
		is_str(out, logtext_table[i].out, name);
	}
	bounce_logtext("abcdef", out, 4);
	is_str(out, "abc", "log text cut to the buffer");
}

int
main(void)
{
	bounce_has_qsbmf_structure();
	bounce_cuts_large_originals();
	bounce_keeps_crlf_originals();
	double_bounce_text();
	log_text_is_escaped();
	return done_testing();
}
