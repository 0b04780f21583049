/*
 * The SMTP client's reply reader (RFC 5321 4.2) and the EHLO keywords
 * (RFC 5321 4.1.1.1).  A remote server is untrusted input: every limit
 * below is enforced as the bytes arrive, and the stored text never holds
 * a byte outside printable US-ASCII.
 */
#ifndef SQ_MTA_REPLY_H
#define SQ_MTA_REPLY_H

#include <stddef.h>
#include <stdint.h>

#define MTA_REPLY_LINE_MAX	4096	/* one line, CRLF included (RFC: 512) */
#define MTA_REPLY_LINES_MAX	100	/* lines in one reply */
#define MTA_REPLY_TEXT_MAX	16384	/* joined text, NUL included */
#define MTA_REPLY_ENH_MAX	12	/* "5.123.123", NUL included */

/* mta_reply_init() flags. */
#define MTA_REPLY_CRLF_ONLY	0x01	/* a bare LF is an error */

/* struct mta_reply flags. */
#define MTA_REPLY_F_BARELF	0x01	/* a line ended in a bare LF */
#define MTA_REPLY_F_SANITISED	0x02	/* a byte of text was replaced */

enum mta_reply_status {
	MTA_REPLY_MORE = 0,	/* all input absorbed; the reply goes on */
	MTA_REPLY_DONE,		/* a complete reply in p->reply */
	MTA_REPLY_ERROR		/* protocol error; p->error says why */
};

struct mta_reply_line {
	size_t		 off;		/* its text in text[] */
	size_t		 len;
	size_t		 enhlen;	/* "x.y.z" at its start; 0: none */
};

struct mta_reply {
	int			 code;		/* 200..559 */
	int			 flags;		/* MTA_REPLY_F_* */
	char			 enhanced[MTA_REPLY_ENH_MAX]; /* or "" */
	size_t			 nlines;
	struct mta_reply_line	 line[MTA_REPLY_LINES_MAX];
	size_t			 textlen;
	char			 text[MTA_REPLY_TEXT_MAX];	/* joined */
};

struct mta_reply_parser {
	int			 opts;		/* MTA_REPLY_CRLF_ONLY */
	int			 state;
	int			 digits;	/* of the current line's code */
	int			 code;		/* the current line's code */
	int			 last;		/* this line ends the reply */
	size_t			 linelen;	/* octets, line end excluded */
	const char		*error;		/* when MTA_REPLY_ERROR */
	struct mta_reply	 reply;
};

void	mta_reply_init(struct mta_reply_parser *, int opts);
/*
 * Feed len bytes as they came from the network, in any chunking.
 * *consumed is how many were used: all of them for MTA_REPLY_MORE (the
 * parser keeps what it needs, the caller keeps nothing); up to the end of
 * the reply's last line for MTA_REPLY_DONE (the rest belongs to the next
 * reply: feed it again); up to the offending byte for MTA_REPLY_ERROR.
 * p->reply is valid from MTA_REPLY_DONE until the next call.  After an
 * error every call returns MTA_REPLY_ERROR: the stream cannot be resynced,
 * so the caller closes the connection (a temporary failure).
 */
enum mta_reply_status mta_reply_feed(struct mta_reply_parser *,
	    const char *, size_t, size_t *consumed);
/* Whether part of a reply is held (the peer closing now cut it short). */
int	mta_reply_pending(const struct mta_reply_parser *);

/* All lines' text, joined by one space (empty lines add nothing). */
const char *mta_reply_text(const struct mta_reply *);
/* Line i's text (not NUL-terminated) and its length; NULL past the end. */
const char *mta_reply_line(const struct mta_reply *, size_t i, size_t *len);

/* EHLO keywords (struct mta_ehlo ext). */
#define MTA_EXT_PIPELINING	0x0001	/* RFC 2920 */
#define MTA_EXT_8BITMIME	0x0002	/* RFC 6152 */
#define MTA_EXT_SMTPUTF8	0x0004	/* RFC 6531 */
#define MTA_EXT_STARTTLS	0x0008	/* RFC 3207 */
#define MTA_EXT_ENHANCEDSTATUS	0x0010	/* RFC 2034 */
#define MTA_EXT_CHUNKING	0x0020	/* RFC 3030 */
#define MTA_EXT_DSN		0x0040	/* RFC 3461 */
#define MTA_EXT_SIZE		0x0080	/* RFC 1870 */
#define MTA_EXT_AUTH		0x0100	/* RFC 4954, "AUTH=" too */

/* AUTH mechanisms (struct mta_ehlo auth). */
#define MTA_AUTH_PLAIN		0x01
#define MTA_AUTH_LOGIN		0x02
#define MTA_AUTH_CRAM_MD5	0x04

struct mta_ehlo {
	uint32_t	 ext;		/* MTA_EXT_* */
	uint32_t	 auth;		/* MTA_AUTH_* */
	uint64_t	 size;		/* SIZE limit; 0: none or unusable */
};

/*
 * The keywords of a complete 250 reply to EHLO, its first line (the
 * domain and greeting) left out.  Returns 0, or -1 when the code is not
 * 250 (ehlo is then cleared).
 */
int	mta_reply_ehlo(const struct mta_reply *, struct mta_ehlo *);

#endif
