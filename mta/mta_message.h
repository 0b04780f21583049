/*
 * The message as the SMTP client sends it, and the MAIL and RCPT commands.
 * Everything here is pure except mta_message_scan(), which only preads the
 * descriptor it is given.
 *
 * The queue stores a message with LF line ends, dot-stuffing removed; a CR
 * in the file is one the client sent without LF (smtpd keeps it as content).
 * On the wire (RFC 5321 2.3.8, 4.5.2, 4.5.3.1.6):
 *
 * - LF becomes CRLF; a line starting with "." gets a second "."; the data
 *   ends in CRLF "." CRLF, a CRLF being added first when the last line had
 *   none (an empty message is "." CRLF alone).
 * - A CR is never sent alone: a bare CR is what SMTP smuggling rides on,
 *   and RFC 5321 2.3.8 allows CR only as part of CRLF.  A stored CR is a
 *   line end: CR LF (the client sent CR CR LF) is one line end, a CR
 *   followed by anything else ends the line there (old Mac line ends).
 *   This keeps the text the author saw, where stripping the CR would glue
 *   words and lines together; a "." after the CR starts a line and is
 *   stuffed, so "\r.\r" arrives as "\r\n..\r\n".  MTA_MSG_CR reports it.
 * - A line longer than MTA_LINE_MAX octets (998; CRLF and the stuffing dot
 *   are not counted) is not sent: the delivery fails permanently with
 *   MTA_LINE_REASON.  Splitting lines alters the message (signatures break,
 *   a multi-octet character may be cut) and sending them as they are gets
 *   them truncated, split or refused by the next hop; smtpd applies the same
 *   limit on the way in.  mta_message_scan() finds such a line before MAIL
 *   is sent; the encoder stops at the first octet past the limit, and the
 *   caller then closes the connection without the final "." so that the
 *   server discards the transaction (RFC 5321 3.8).
 * - NUL and 8-bit octets are sent as they are and reported: 8-bit content
 *   needs BODY=8BITMIME (RFC 6152), whether to send to a server without it
 *   is the caller's decision.
 *
 * Memory is constant: the encoder holds at most five octets of its own,
 * whatever the line lengths, and the scan reads through a fixed buffer.
 */
#ifndef SQ_MTA_MESSAGE_H
#define SQ_MTA_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#define MTA_LINE_MAX	998	/* octets of a text line (RFC 5321 4.5.3.1.6) */
#define MTA_LINE_REASON	"This message has a line longer than 998 octets, " \
			"which SMTP cannot carry. (#5.6.3)"

/* struct mta_message_info flags. */
#define MTA_MSG_8BIT	0x01	/* an octet >= 0x80 */
#define MTA_MSG_NUL	0x02	/* a NUL octet */
#define MTA_MSG_CR	0x04	/* a CR: sent as a line end (see above) */
#define MTA_MSG_NOEOL	0x08	/* no line end at the end: CRLF added */
#define MTA_MSG_LONG	0x10	/* a line longer than MTA_LINE_MAX */

struct mta_message_info {
	uint64_t	 size;		/* octets of the stored message */
	uint64_t	 smtpsize;	/* RFC 1870 SIZE: with CRLF line ends,
					 * without stuffing dots or the final
					 * "." CRLF */
	uint64_t	 maxline;	/* longest line, line end excluded */
	int		 flags;		/* MTA_MSG_* */
};

/*
 * Read the message at fd from offset 0 to its end (pread, the file offset
 * is left alone) and describe it as the encoder would send it.  Returns 0,
 * or -1 with errno set (info is then cleared).
 */
int	mta_message_scan(int fd, struct mta_message_info *);

/* Whether the message can be sent; when not, *why is the permanent reason. */
int	mta_message_sendable(const struct mta_message_info *,
	    const char **why);

enum mta_data_status {
	MTA_DATA_MORE = 0,	/* feed: go on; finish: call again */
	MTA_DATA_DONE,		/* finish: the final "." CRLF is out */
	MTA_DATA_ERROR		/* enc->error says why; sticky */
};

struct mta_data_enc {
	struct mta_message_info	 info;		/* of what was fed so far */
	uint64_t		 wire;		/* octets output so far */
	uint64_t		 linemax;	/* 0: no limit */
	uint64_t		 linelen;	/* of the current line */
	int			 state;
	char			 owed[5];	/* produced, not yet output */
	size_t			 nowed;
	size_t			 owedoff;
	const char		*error;		/* when MTA_DATA_ERROR */
};

/*
 * linemax is MTA_LINE_MAX for sqmail; 0 sends lines of any length as they
 * are (for tests, and for a server known to take them).
 */
void	mta_data_init(struct mta_data_enc *, uint64_t linemax);
/*
 * Encode in[0..inlen), in any chunking, into out[0..outlen).  Returns when
 * all of in is consumed or out is full: *consumed and *produced say how
 * much; octets still owed (at most two) come first on the next call.  A
 * line over the limit returns MTA_DATA_ERROR with *consumed at its first
 * octet past the limit and nothing of that octet output.
 */
enum mta_data_status mta_data_feed(struct mta_data_enc *, const char *in,
	    size_t inlen, size_t *consumed, char *out, size_t outlen,
	    size_t *produced);
/*
 * The end of the message: what is owed, a CRLF when the last line has no
 * line end, then "." CRLF.  Call until MTA_DATA_DONE (MTA_DATA_MORE: out
 * was full).  enc->info and enc->wire are then complete.
 */
enum mta_data_status mta_data_finish(struct mta_data_enc *, char *out,
	    size_t outlen, size_t *produced);

/*
 * MAIL and RCPT.  addr is an address as the queue holds it: "local@domain",
 * the local part either as written (split at the last '@') or as a quoted
 * string (then split at its closing quote), as mailaddr_to_text() writes
 * it; "" is the null path <>.  The local part is sent as a dot-string when
 * its content is one, else quoted with '"' and '\' escaped (RFC 5321
 * 4.1.2); the domain is sent as given, a name or an address literal.
 *
 * Refused (-1): a control octet (NUL, CR, LF, TAB, DEL, ...) anywhere; '<'
 * or '>' outside a quoted local part; an empty or malformed domain (more
 * than 255 octets, an empty label, a character other than letters, digits,
 * '-', '_' and '.', or a literal "[...]" holding anything but letters,
 * digits, '.', ':' and '-'); no domain, but for RCPT TO:<postmaster>; the
 * null path in RCPT; an octet >= 0x80 unless MTA_CMD_SMTPUTF8 is given,
 * and then anything but well-formed UTF-8 (RFC 6531: the server must have
 * offered SMTPUTF8; without it an internationalised address cannot be
 * sent, and converting it is not ours to do); and a command longer than
 * SQ_LINE_MAX octets (512, CRLF included), which every server must take
 * (RFC 5321 4.5.3.1.4) and none may split.
 *
 * out gets the command, CRLF included, and a NUL.  Returns its length, or
 * -1 (out then holds "" when outlen > 0).
 */
#define MTA_CMD_SIZE		0x01	/* MAIL: SIZE=size (RFC 1870) */
#define MTA_CMD_8BITMIME	0x02	/* MAIL: BODY=8BITMIME (RFC 6152) */
#define MTA_CMD_SMTPUTF8	0x04	/* the server offered SMTPUTF8 and this
					 * transaction uses it: MAIL carries
					 * SMTPUTF8 (RFC 6531 3.4), addresses
					 * may hold UTF-8 */

int	mta_cmd_mail(char *out, size_t outlen, const char *addr, size_t len,
	    uint64_t size, int flags);
int	mta_cmd_rcpt(char *out, size_t outlen, const char *addr, size_t len,
	    int flags);

#endif
