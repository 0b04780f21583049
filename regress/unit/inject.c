/*
 * lib/inject.c: the header scan sendmail(8) does before submitting.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inject.h"
#include "sqmail.h"
#include "tap.h"

static char	 rc[INJECT_RCPT_MAX][SQ_ADDR_MAX];

static int
scan(const char *m, struct inject_info *in)
{
	char	 err[128];

	return inject_scan(m, strlen(m), in, rc, INJECT_RCPT_MAX, err,
	    sizeof(err));
}

int
main(void)
{
	struct inject_info	 in;
	char			 buf[512], big[INJECT_RCPT_MAX * 4 + 16];
	const char		*m;
	size_t			 i, n;

	m = "To: a@x.test, \"B, b\" <b@y.test> (c)\nSubject: s\n\nbody\n";
	is_int(scan(m, &in), 0, "scan: plain header");
	is_int(in.nrcpt, 2, "scan: two To addresses");
	is_str(rc[0], "a@x.test", "scan: first address");
	is_str(rc[1], "b@y.test", "scan: angle address in a quoted name");
	is_int(in.blank, 1, "scan: an empty line ends the header");
	is_int(in.hdr_len, strchr(m, '\n') - m + 12, "scan: header length");
	is_str(m + in.body_off, "body\n", "scan: body offset");
	ok(!in.has_date && !in.has_msgid && !in.has_from, "scan: none of "
	    "Date, Message-ID, From");

	m = "dAtE: x\nMessage-ID: <1@x>\nFROM: me\nCc: g: c@x.test, "
	    "d@x.test;,\n e@x.test (comment)\nBcc: f@x.test\n";
	is_int(scan(m, &in), 0, "scan: header only, folded Cc, group");
	ok(in.has_date && in.has_msgid && in.has_from, "scan: field names "
	    "in any case");
	is_int(in.nrcpt, 4, "scan: group members, folded line, Bcc");
	is_str(rc[2], "e@x.test", "scan: comment dropped");
	is_str(rc[3], "f@x.test", "scan: Bcc address");
	is_int(in.nbcc, 1, "scan: one Bcc");
	is_str(m + in.bcc[0].off, "Bcc: f@x.test\n", "scan: Bcc range");
	is_int(in.blank, 0, "scan: no empty line");
	is_int(in.body_off, strlen(m), "scan: no body");

	m = "To: a@x.test\r\n\r\nbody\r\n";
	is_int(scan(m, &in), 0, "scan: CRLF");
	is_str(m + in.body_off, "body\r\n", "scan: CRLF empty line");

	m = "not a header line\nTo: a@x\n";
	is_int(scan(m, &in), 0, "scan: body first");
	is_int(in.hdr_len, 0, "scan: no header field");
	is_int(in.nrcpt, 0, "scan: a To in the body is no recipient");

	m = "To: <\"we ird\"@x.test>, (only a comment), \"unterminated\n";
	is_int(scan(m, &in), 0, "scan: odd lists");
	is_str(rc[0], "\"we ird\"@x.test", "scan: quoted local part kept");

	/* Bounds. */
	n = 0;
	memcpy(big, "To: ", 4);
	for (i = 0, n = 4; i <= INJECT_RCPT_MAX; i++) {
		memcpy(big + n, "a,", 2);
		n += 2;
	}
	big[n] = '\0';
	ok(scan(big, &in) == -1, "scan: more than INJECT_RCPT_MAX refused");
	{
		char	*huge;
		size_t	 hl = INJECT_FIELD_MAX + 64;

		if ((huge = malloc(hl + 1)) == NULL)
			return 1;
		memset(huge, 'a', hl);
		memcpy(huge, "X-A: ", 5);
		huge[hl] = '\0';
		ok(scan(huge, &in) == -1, "scan: field too long refused");
		free(huge);
	}
	m = "Bcc: a\nBcc: a\nBcc: a\nBcc: a\nBcc: a\nBcc: a\nBcc: a\nBcc: a\n"
	    "Bcc: a\nBcc: a\nBcc: a\nBcc: a\nBcc: a\nBcc: a\nBcc: a\nBcc: a\n"
	    "Bcc: a\n";
	ok(scan(m, &in) == -1, "scan: more than INJECT_BCC_MAX Bcc refused");

	/* From. */
	inject_from("Joe &son,Room 1,,", 1, "smith", "smith@h", buf,
	    sizeof(buf));
	is_str(buf, "From: Joe Smithson <smith@h>\n", "from: gecos & and ,");
	inject_from("Doe, John \"JD\"", 0, "x", "x@h", buf, sizeof(buf));
	is_str(buf, "From: \"Doe, John \\\"JD\\\"\" <x@h>\n",
	    "from: -F name quoted");
	inject_from("", 1, "x", "x@h", buf, sizeof(buf));
	is_str(buf, "From: x@h\n", "from: no name");
	inject_from("a\nBcc: evil", 0, "x", "x@h", buf, sizeof(buf));
	ok(strchr(buf, '\n') == buf + strlen(buf) - 1, "from: no line break "
	    "from a name");
	is_int(inject_from("name", 0, "x", "x@h", buf, 8), -1,
	    "from: small buffer");
	return done_testing();
}
