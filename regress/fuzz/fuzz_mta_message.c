/*
 * libFuzzer target for mta/mta_message.c.  Input: a mode octet (bits 0-1
 * the line limit: none, MTA_LINE_MAX or small ones; bits 2-4 the MAIL
 * flags), a step octet (chunk and output sizes), then the stored message.
 *
 * The message is encoded whole and in data-derived chunks into
 * data-derived output sizes; both must agree.  Without a line limit the
 * wire form must: end in the one "." CRLF it has; have every LF after a CR
 * and every CR before a LF; decode (CRLF to LF, one leading dot off each
 * line) to the message with its CRs as line ends and a final line end; be
 * read back by smtpd's DATA decoder to the same, ending exactly at its
 * end; and be described alike by the encoder and by the scan of a file.
 * With a limit, the result is the unlimited one, or its prefix when a line
 * is longer than the limit.
 *
 * The message is also cut into addresses for MAIL and RCPT: a command
 * built holds no control octet, ends in its only CRLF, stays within 512
 * octets, and reads back (mailaddr_parse) as the address it was built
 * from whenever smtpd would have accepted that address.
 */
#include <sys/types.h>
#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailaddr.h"
#include "sqmail.h"
#include "../../mta/mta_message.h"
#include "../../smtpd/smtp.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct run {
	char			*out;
	size_t			 len;
	enum mta_data_status	 status;
	size_t			 at;
	struct mta_message_info	 info;
	uint64_t		 wire;
};

static int	fuzz_fd = -1;

/*
 * Encode in[0..len); step 0: one feed into room for everything, else
 * chunks of 1..step octets and outputs of 1..8, taken from the data.
 */
static void
fuzz_encode(const char *in, size_t len, size_t step, uint64_t linemax,
    struct run *r)
{
	struct mta_data_enc	 e;
	enum mta_data_status	 st = MTA_DATA_MORE;
	size_t			 cap, off = 0, n, room, used, made, k = 0;
	char			*chunk;

	cap = len * 2 + 5;
	if ((r->out = malloc(cap)) == NULL)
		abort();
	r->len = 0;
	mta_data_init(&e, linemax);
	while (off < len) {
		if (step == 0) {
			n = len - off;
			room = cap - r->len;
		} else {
			n = 1 + (unsigned char)in[off] % step;
			room = 1 + (unsigned char)in[(off + 1) % len] % 8;
		}
		if (n > len - off)
			n = len - off;
		if (room > cap - r->len)
			room = cap - r->len;
		/* Exactly n octets, so ASan sees any overread. */
		if ((chunk = malloc(n)) == NULL)
			abort();
		memcpy(chunk, in + off, n);
		st = mta_data_feed(&e, chunk, n, &used, r->out + r->len, room,
		    &made);
		free(chunk);
		if (used > n || made > room || e.nowed > 2)
			abort();
		if (st == MTA_DATA_MORE && used < n && made < room)
			abort();	/* stopped with input and room left */
		off += used;
		r->len += made;
		if (r->len > 2 * off)
			abort();	/* two octets at most for one */
		if (st == MTA_DATA_ERROR) {
			if (e.error == NULL || mta_data_feed(&e, in, len,
			    &used, r->out, cap, &made) != MTA_DATA_ERROR ||
			    used != 0 || made != 0 ||
			    mta_data_finish(&e, r->out, cap, &made) !=
			    MTA_DATA_ERROR || made != 0)
				abort();
			break;
		}
		if (st != MTA_DATA_MORE || ++k > 4 * len + 8)
			abort();
	}
	while (st == MTA_DATA_MORE) {
		room = step == 0 ? cap - r->len : 1 + k++ % 3;
		if (room > cap - r->len)
			room = cap - r->len;
		if (room == 0)
			abort();	/* more than two for one, and five */
		st = mta_data_finish(&e, r->out + r->len, room, &made);
		r->len += made;
		if (made > room || (st == MTA_DATA_MORE && made < room))
			abort();
	}
	if (st == MTA_DATA_DONE && (mta_data_finish(&e, r->out, cap,
	    &made) != MTA_DATA_DONE || made != 0))
		abort();
	r->status = st;
	r->at = off;
	r->info = e.info;
	r->wire = e.wire;
	if (r->wire != r->len)
		abort();
}

/* The message as it should arrive: CR, CRLF and LF are line ends. */
static char *
fuzz_expect(const char *in, size_t len, size_t *outlen)
{
	char	*t;
	size_t	 i, n = 0;

	if ((t = malloc(len + 1)) == NULL)
		abort();
	for (i = 0; i < len; i++) {
		if (in[i] == '\r') {
			t[n++] = '\n';
			if (i + 1 < len && in[i + 1] == '\n')
				i++;
		} else
			t[n++] = in[i];
	}
	if (n > 0 && t[n - 1] != '\n')
		t[n++] = '\n';
	*outlen = n;
	return t;
}

static void
fuzz_check_wire(const char *in, size_t len, const struct run *r)
{
	struct smtp_data	 d;
	struct mta_message_info	 si;
	char			*t, *dec, *got;
	size_t			 tlen, i, n = 0, line, maxline = 0, used, glen;
	int			 f = 0;

	if (r->status != MTA_DATA_DONE || r->len < 3 ||
	    memcmp(r->out + r->len - 3, ".\r\n", 3) != 0)
		abort();
	t = fuzz_expect(in, len, &tlen);
	if ((dec = malloc(r->len)) == NULL)
		abort();
	/* Line by line, up to the terminator, which must be the last line. */
	for (i = 0; ; ) {
		if (i == r->len - 3)
			break;
		if (r->out[i] == '.') {
			if (i + 1 >= r->len || r->out[i + 1] != '.')
				abort();	/* a line "." before the end */
			i++;
		}
		for (line = 0; r->out[i] != '\r' && r->out[i] != '\n'; i++)
			dec[n++] = r->out[i], line++;
		if (r->out[i] != '\r' || r->out[i + 1] != '\n')
			abort();	/* a bare LF or CR */
		dec[n++] = '\n';
		i += 2;
		if (line > maxline)
			maxline = line;
	}
	if (n != tlen || memcmp(dec, t, n) != 0)
		abort();
	for (i = 0; i < len; i++) {
		if ((unsigned char)in[i] >= 0x80)
			f |= MTA_MSG_8BIT;
		else if (in[i] == '\0')
			f |= MTA_MSG_NUL;
		else if (in[i] == '\r')
			f |= MTA_MSG_CR;
	}
	if (len > 0 && in[len - 1] != '\n' && in[len - 1] != '\r')
		f |= MTA_MSG_NOEOL;
	if (maxline > MTA_LINE_MAX)
		f |= MTA_MSG_LONG;
	if (r->info.flags != f || r->info.maxline != maxline ||
	    r->info.size != len)
		abort();
	/* RFC 1870 size: the stored octets, each LF counting as CRLF. */
	for (i = 0, glen = tlen; i < tlen; i++)
		if (t[i] == '\n')
			glen++;
	if (r->info.smtpsize != glen)
		abort();

	/* smtpd reads it back. */
	if ((got = malloc(r->len + 1)) == NULL)
		abort();
	smtp_data_init(&d, 0, 1);
	used = smtp_data_feed(&d, r->out, r->len, got, &glen);
	if (used != r->len || !(d.flags & SMTP_DATA_DONE) ||
	    (d.flags & (SMTP_DATA_BARECR | SMTP_DATA_BARELF)))
		abort();
	if (!smtp_data_refused(&d) && (glen != tlen ||
	    memcmp(got, t, tlen) != 0))
		abort();
	free(got);

	/* The scan of the same octets in a file. */
	if (fuzz_fd == -1 &&
	    (fuzz_fd = memfd_create("fuzz_mta_message", 0)) == -1)
		abort();
	if (ftruncate(fuzz_fd, 0) == -1 ||
	    pwrite(fuzz_fd, in, len, 0) != (ssize_t)len ||
	    mta_message_scan(fuzz_fd, &si) == -1 ||
	    memcmp(&si, &r->info, sizeof(si)) != 0)
		abort();
	free(t);
	free(dec);
}

/* Where the path of a built command ends: just past its '>'. */
static size_t
fuzz_path_end(const char *s, size_t len, size_t i)
{
	if (s[i++] != '<')
		abort();
	if (i < len && s[i] == '"') {
		for (i++; i < len && s[i] != '"'; i++)
			if (s[i] == '\\')
				i++;
		i++;
	}
	while (i < len && s[i] != '>')
		i++;
	if (i >= len)
		abort();
	return i + 1;
}

static void
fuzz_cmd(const char *addr, size_t alen, int flags, uint64_t size, int rcpt)
{
	struct mailaddr	 in, back;
	char		 out[SQ_LINE_MAX + 16], params[80];
	const char	*verb = rcpt ? "RCPT TO:" : "MAIL FROM:";
	size_t		 i, vlen = strlen(verb), end, plen = 0;
	int		 n, ctl = 0, hi = 0;

	memset(out, 'X', sizeof(out));
	n = rcpt ? mta_cmd_rcpt(out, sizeof(out), addr, alen, flags) :
	    mta_cmd_mail(out, sizeof(out), addr, alen, size, flags);
	for (i = 0; i < alen; i++) {
		if ((unsigned char)addr[i] < 0x20 || addr[i] == 0x7f)
			ctl = 1;
		if ((unsigned char)addr[i] >= 0x80)
			hi = 1;
	}
	if (n == -1) {
		if (out[0] != '\0')
			abort();
		/* smtpd's own addresses all go out, but the longest. */
		if (alen <= 440 &&
		    mailaddr_parse(addr, alen, &in) == 0)
			abort();
		return;
	}
	if (ctl || (hi && !(flags & MTA_CMD_SMTPUTF8)) || (rcpt && alen == 0))
		abort();
	if (n < 0 || n > SQ_LINE_MAX || (size_t)n != strlen(out) || n < 4 ||
	    memcmp(out, verb, vlen) != 0 || memcmp(out + n - 2, "\r\n", 2))
		abort();
	for (i = 0; i < (size_t)n - 2; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f ||
		    ((unsigned char)out[i] >= 0x80 &&
		    !(flags & MTA_CMD_SMTPUTF8)))
			abort();
	end = fuzz_path_end(out, n - 2, vlen);
	if (!rcpt) {
		if (flags & MTA_CMD_SIZE)
			plen += snprintf(params + plen, sizeof(params) - plen,
			    " SIZE=%llu", (unsigned long long)size);
		if (flags & MTA_CMD_8BITMIME)
			plen += snprintf(params + plen, sizeof(params) - plen,
			    " BODY=8BITMIME");
		if (flags & MTA_CMD_SMTPUTF8)
			plen += snprintf(params + plen, sizeof(params) - plen,
			    " SMTPUTF8");
	}
	if (n - 2 - end != plen || memcmp(out + end, params, plen) != 0)
		abort();
	if (alen == 0) {
		if (end != vlen + 2)
			abort();
		return;
	}
	/* The path holds no '<' or '>' outside its quotes. */
	if (mailaddr_parse(addr, alen, &in) == 0) {
		if (mailaddr_parse(out + vlen + 1, end - vlen - 2, &back) ==
		    -1 || strcmp(in.user, back.user) != 0 ||
		    strcmp(in.domain, back.domain) != 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run	 a, b, u;
	const char	*in, *nl = NULL, *line;
	size_t		 len, step, alen, rest, k;
	uint64_t	 linemax;
	int		 mode, flags;

	if (size < 2)
		return 0;
	mode = data[0];
	step = (data[1] & 0x1f) + 1;
	in = (const char *)data + 2;
	len = size - 2;
	switch (mode & 3) {
	case 0:
		linemax = 0;
		break;
	case 1:
		linemax = MTA_LINE_MAX;
		break;
	case 2:
		linemax = 1 + data[1] % 16;
		break;
	default:
		linemax = 1 + data[1];
		break;
	}

	fuzz_encode(in, len, 0, 0, &u);
	fuzz_check_wire(in, len, &u);
	fuzz_encode(in, len, 0, linemax, &a);
	fuzz_encode(in, len, step, linemax, &b);
	if (a.status != b.status || a.len != b.len || a.at != b.at ||
	    memcmp(a.out, b.out, a.len) != 0 ||
	    memcmp(&a.info, &b.info, sizeof(a.info)) != 0)
		abort();
	if (a.status == MTA_DATA_DONE) {
		if ((linemax != 0 && u.info.maxline > linemax) ||
		    a.len != u.len || memcmp(a.out, u.out, u.len) != 0)
			abort();
	} else {
		/* Cut at the first octet past the limit: a prefix. */
		if (linemax == 0 || u.info.maxline <= linemax ||
		    a.len > u.len || memcmp(a.out, u.out, a.len) != 0 ||
		    a.info.maxline != linemax || a.at >= len)
			abort();
	}
	free(a.out);
	free(b.out);
	free(u.out);

	/* Addresses: the start of the input, its first and second lines. */
	flags = (mode >> 2) & (MTA_CMD_SIZE | MTA_CMD_8BITMIME |
	    MTA_CMD_SMTPUTF8);
	for (k = 0, line = in, rest = len; k < 3; k++) {
		if (k == 0)
			alen = rest;
		else if ((nl = memchr(line, '\n', rest)) != NULL)
			alen = nl - line;
		else
			alen = rest;
		if (alen > 600)
			alen = 600;
		fuzz_cmd(line, alen, flags, len, 0);
		fuzz_cmd(line, alen, flags, len, 1);
		if (k == 0)
			continue;
		if (nl == NULL)
			break;
		rest -= nl + 1 - line;
		line = nl + 1;
	}
	return 0;
}
