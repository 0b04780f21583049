/*
 * sqmail: types shared by every process.
 */
#ifndef SQ_SQMAIL_H
#define SQ_SQMAIL_H

#include <sys/types.h>
#include <sys/socket.h>
#include <bsd/sys/queue.h>

#include <limits.h>
#include <stdint.h>
#include <time.h>

#define SQ_VERSION		"0.1"

#define SQ_LOCALPART_MAX	128	/* octets in a local part (RFC 5321: 64; we accept more) */
#define SQ_DOMAIN_MAX		255	/* octets in a domain */
#define SQ_ADDR_MAX		(SQ_LOCALPART_MAX + 1 + SQ_DOMAIN_MAX + 1)
#define SQ_USER_MAX		64	/* user name */
#define SQ_LINE_MAX		512	/* SMTP command line, CRLF included (RFC 5321 4.5.3.1.4) */
#define SQ_TEXTLINE_MAX		1000	/* SMTP text line, CRLF included (RFC 5321 4.5.3.1.6) */
#define SQ_REPLY_MAX		512	/* one SMTP reply line we compose */
#define SQ_ERROR_MAX		512	/* a delivery's last error text */
#define SQ_HOPS_MAX		100	/* Received + Delivered-To headers before 554 5.4.6 */
#define SQ_EXPAND_MAX		256	/* destinations one RCPT may expand to */
#define SQ_MAILBOX_MAX		1024	/* a mailbox path template, NUL included */
#define SQ_HOME_MAX		1023	/* octets in a home directory */
#define SQ_EXT_MAX		(2 * SQ_LOCALPART_MAX)	/* a qmail extension */

/* Results of a lookup or a delivery, as they travel between processes. */
enum sq_status {
	SQ_OK = 0,
	SQ_TEMPFAIL = 1,
	SQ_PERMFAIL = 2
};

/* A mail address split at its last '@'; an empty user and domain is <>. */
struct mailaddr {
	char	user[SQ_LOCALPART_MAX + 1];
	char	domain[SQ_DOMAIN_MAX + 1];
};

enum dest_type {
	DEST_LOCAL = 1,
	DEST_REMOTE = 2
};

/*
 * How a local destination is delivered.  MBOX_MAILDIR and MBOX_MBOX write
 * the user's mailbox template; the others are aliases(5) targets that the
 * agent of an unprivileged account carries out, mailbox holding the
 * command (MBOX_PROGRAM), the absolute path of an mbox or, ending in '/',
 * a Maildir (MBOX_FILE), or the absolute path of an :include: file.
 */
enum mbox_method {
	MBOX_NONE = 0,
	MBOX_MAILDIR = 1,
	MBOX_MBOX = 2,
	MBOX_PROGRAM = 3,
	MBOX_FILE = 4,
	MBOX_INCLUDE = 5
};
#define MBOX_METHODS	6	/* values of enum mbox_method */

/*
 * One final destination of a message, as lka resolved it at RCPT time.
 * For DEST_LOCAL, user names the account that owns the mailbox (the parent
 * looks it up again before it forks an agent as that user) and mailbox is
 * a path template: "~/" is the user's home, "%u" the user name, "%l" the
 * local part; the agent expands it as the user.
 *
 * When lka found the user by qmail's rules (users/assign, passwd, the
 * alias user) it also fills in what qmail-lspawn hands qmail-local: the
 * uid, gid and home the agent runs with (home "" when it did not: the
 * parent then takes them from passwd for user, as before), and with
 * dotqmail set, the dash and extension that choose the .qmail file
 * (home/.qmail<dash><ext>).  The parent checks uid, gid and home against
 * passwd or its own copy of users/assign before it forks an agent.
 */
struct dest {
	char		 addr[SQ_ADDR_MAX];	/* final address, local@domain */
	char		 orig[SQ_ADDR_MAX];	/* as given at RCPT TO */
	enum dest_type	 type;
	char		 user[SQ_USER_MAX + 1];
	enum mbox_method method;
	char		 mailbox[SQ_MAILBOX_MAX];
	uid_t		 uid;			/* valid when home[0] */
	gid_t		 gid;
	char		 home[SQ_HOME_MAX + 1];	/* absolute, or "" */
	int		 dotqmail;		/* dash and ext are set */
	char		 dash[2];		/* "" or "-" */
	char		 ext[SQ_EXT_MAX + 1];	/* case as given */
};

/* Per-recipient state in an envelope. */
enum rcpt_state {
	RCPT_PENDING = 0,	/* not yet delivered: to try at next_try */
	RCPT_DONE = 1,		/* delivered */
	RCPT_FAILED = 2,	/* permanent failure; bounce generated */
	RCPT_BOUNCING = 3	/* permanent failure; bounce not yet queued */
};

struct rcpt {
	struct dest	 dest;
	enum rcpt_state	 state;
	uint32_t	 tries;
	time_t		 last_try;
	time_t		 next_try;
	char		 error[SQ_ERROR_MAX];	/* last error, printable ASCII */
};

enum env_flags {
	ENV_BOUNCE = 0x01,	/* a bounce we generated (sender <>) */
	ENV_DBOUNCE = 0x02	/* a double bounce (to postmaster) */
};

/* A queued message's envelope: one per message, one rcpt per recipient. */
struct envelope {
	uint64_t	 id;
	time_t		 ctime;			/* accepted at */
	uint32_t	 flags;			/* enum env_flags */
	char		 sender[SQ_ADDR_MAX];	/* "" for the null sender */
	char		 helo[SQ_DOMAIN_MAX + 1];
	char		 client[64];		/* client address, text */
	char		 proto[16];		/* SMTP, ESMTP, ... */
	uint64_t	 size;			/* message file size */
	uint64_t	 hash;			/* of its content, 0: none */
	size_t		 nrcpt;
	struct rcpt	*rcpts;			/* nrcpt entries, malloc'd */
};

#define ENVELOPE_MAX		(1024 * 1024)	/* encoded envelope size limit */

/*
 * lib/timingsafe.c: whether a and b are equal, in a time that does not
 * depend on where they differ.
 */
int	timingsafe_equal(const void *, const void *, size_t);

#endif
