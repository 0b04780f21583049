/*
 * inject: what sendmail(8) needs to know about a message's header
 * section before it submits it, in the manner of qmail-inject: where the
 * header ends, which of Date, Message-ID and From are missing, where the
 * Bcc fields are (they are removed), and, for -t, the addresses of To,
 * Cc and Bcc.  Every function is pure: it reads (pointer, length),
 * writes only its output arguments, and never reads past the length.
 */
#ifndef SQ_INJECT_H
#define SQ_INJECT_H

#include <stddef.h>

#include "sqmail.h"

#define INJECT_HEADER_MAX	(256 * 1024)	/* header octets looked at */
#define INJECT_FIELD_MAX	(64 * 1024)	/* one field, folded lines and all */
#define INJECT_BCC_MAX		16		/* Bcc fields in one header */
#define INJECT_RCPT_MAX		1000		/* addresses taken by -t */
#define INJECT_NAME_MAX		256		/* a From display name */

struct inject_range {
	size_t	 off;
	size_t	 len;
};

struct inject_info {
	size_t			 hdr_len;	/* octets of header fields */
	size_t			 body_off;	/* first octet of the body */
	int			 blank;		/* 1: an empty line ended the
						 * header (it lies between
						 * hdr_len and body_off) */
	int			 has_date;
	int			 has_msgid;
	int			 has_from;
	int			 has_sender;
	size_t			 nbcc;
	struct inject_range	 bcc[INJECT_BCC_MAX];
	size_t			 nrcpt;		/* addresses found (-t) */
};

/*
 * Scan the header section of msg.  The header is the run of field lines
 * (a name of printable octets but ':', then ':'; continuation lines
 * begin with a blank) at the start; it ends at an empty line, at the
 * first line that is not a field, or at the end.  When rcpts is not NULL
 * the addresses of To, Cc and Bcc go there (at most maxrcpt, each at
 * most SQ_ADDR_MAX - 1 octets; group names, display names and comments
 * dropped).  Returns 0, or -1 with a reason in err: the header is longer
 * than INJECT_HEADER_MAX, a field than INJECT_FIELD_MAX, more than
 * INJECT_BCC_MAX Bcc fields, too many or too long addresses.
 */
int	inject_scan(const char *msg, size_t len, struct inject_info *info,
	    char (*rcpts)[SQ_ADDR_MAX], size_t maxrcpt, char *err,
	    size_t errlen);

/*
 * The addresses of one address-list field value (unfolded or not) into
 * rcpts from index *n on.  Returns 0, or -1 (too many, too long).
 */
int	inject_addrlist(const char *val, size_t len,
	    char (*rcpts)[SQ_ADDR_MAX], size_t maxrcpt, size_t *n);

/*
 * A From field for a user: "From: Name <addr>\n", the name from the
 * passwd gecos (up to its first ',', '&' standing for the login with an
 * upper-case initial) or given (-F) as is; quoted when it holds anything
 * but atext and spaces, controls dropped.  "From: addr\n" when the name
 * is empty.  gecos: 1 when name is a gecos field.  Returns the length,
 * or -1 when buf is too small.
 */
int	inject_from(const char *name, int gecos, const char *login,
	    const char *addr, char *buf, size_t buflen);

/*
 * The offline directory (sendmail(8) when sqmaild is down; picked up by
 * the parent, smtpd/parent_pickup.c).  A file is, in this order:
 *
 *	sqmail-offline 1	the magic line
 *	S<sender>		once: the envelope sender as sendmail(8)
 *				would have submitted it ("" is the null one)
 *	R<recipient>		once per recipient, 1 .. INJECT_OFFLINE_RCPTS
 *	(an empty line)
 *	the message		as submitted, header fix-ups made
 *
 * Every line ends with LF; addresses hold no control octets and fewer
 * than SQ_ADDR_MAX octets.  The envelope (up to the empty line) is at
 * most INJECT_OFFLINE_ENV_MAX octets.
 */
#define INJECT_OFFLINE_MAGIC	"sqmail-offline 1\n"
#define INJECT_OFFLINE_RCPTS	1000
#define INJECT_OFFLINE_ENV_MAX	(64 + INJECT_OFFLINE_RCPTS * (SQ_ADDR_MAX + 2))

struct inject_offline {
	struct inject_range	 sender;	/* into the buffer parsed */
	size_t			 nrcpt;
	size_t			 body_off;	/* the message's first octet */
};

/*
 * Parse the envelope of an offline file at the start of buf (which may
 * hold only the first octets of the file: at least the envelope, at most
 * INJECT_OFFLINE_ENV_MAX of them are looked at).  Recipients go to rcpts
 * as ranges into buf (at most maxrcpt).  Returns 0, or -1 with a reason
 * in err: no magic, a line of another kind, a missing or second sender,
 * no recipient, too many, an address too long or with a control octet,
 * no empty line within the limit.  Pure.
 */
int	inject_offline_parse(const char *buf, size_t len,
	    struct inject_offline *out, struct inject_range *rcpts,
	    size_t maxrcpt, char *err, size_t errlen);

/*
 * Whether s could be an address of an offline file (see above): 1 or 0.
 */
int	inject_offline_addr_ok(const char *s);

#endif
