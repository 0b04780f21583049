/*
 * mda: local delivery.  The mda process dispatches deliveries to one
 * agent per user (forked by the parent, running as that user); the agent
 * expands the mailbox template and writes the Maildir or mbox.  The
 * writers and helpers below need no event loop, so unit tests call them
 * directly.
 */
#ifndef SQ_MDA_H
#define SQ_MDA_H

#include <sys/types.h>

#include <stddef.h>

#include "sqmail.h"

#define MDA_AGENT_WINDOW	8	/* deliveries outstanding per agent */
#define MDA_LOCK_WAIT		30	/* seconds to wait for an mbox lock */
#define MDA_LOCK_STALE		300	/* a dotlock older than this is stale */
#define MDA_HEADER_MAX		(256 * 1024)	/* header octets scanned */
#define MDA_DEFAULT_MAILBOX	"~/Maildir/"	/* empty template */
#define MDA_SUCCESS_TEXT	"did 1+0+0/"
#define MDA_FORWARD_MAX		256	/* forward lines acted on per delivery */

/* What a mailbox template expands to. */
enum mda_kind {
	MDA_KIND_MAILDIR = 1,
	MDA_KIND_MBOX = 2
};

/* mda.c, agent.c: the process entry points are in lib/proc.h. */

/* mda_maildir.c */
int	 mda_maildir_deliver(const char *maildir, int msgfd,
	    const char *sender, const char *rcpt, char *err, size_t errlen);

/* mda_mbox.c */
extern int	 mda_mbox_lock_wait;	/* seconds; tests lower it */
extern int	 mda_mbox_lock_stale;	/* seconds */
int	 mda_mbox_deliver(const char *path, int msgfd, const char *sender,
	    const char *rcpt, char *err, size_t errlen);

/*
 * mda_dotqmail.c: dot-qmail(5) in the agent.  An address is a qmail
 * address of user when its local part is user (the basic address) or
 * user-ext (an extension): lka resolves both to user by qmail-getpw's
 * rule.
 */
#define MDA_DQ_DEFAULT	(-1)	/* no .qmail: the default delivery */

struct mda_qaddr {
	char	 addr[SQ_ADDR_MAX];		/* local@host */
	char	 local[SQ_LOCALPART_MAX + 1];
	char	 host[SQ_DOMAIN_MAX + 1];
	char	 user[SQ_USER_MAX + 1];
	char	 dash[2];			/* "" or "-" */
	char	 ext[SQ_EXT_MAX + 1];
};

/*
 * The forward lines of a .qmail file that ran to success: the addresses
 * as the file has them (mda checks them again) and whether the owner
 * file exists (the forwards then go out from local-owner@host).
 */
struct mda_forwards {
	char	*addr[MDA_FORWARD_MAX];
	size_t	 n;
	int	 owner;
};

extern int	 mda_program_timeout;	/* seconds for a |program line */
/*
 * 1 with q filled, or 0: addr is no qmail address of user.  For an
 * envelope written before lka put the dash and extension in the
 * destination (struct dest's dotqmail unset): the agent then splits the
 * address itself, at '-'.
 */
int	 mda_qmail_split(const char *addr, const char *user,
	    struct mda_qaddr *q);
/*
 * 1 with q filled from a destination lka resolved by qmail's rules
 * (dotqmail set: user, dash and ext as lka found them, local and host
 * from addr), or 0 when it has none or they do not fit.
 */
int	 mda_qmail_dest(const struct dest *, struct mda_qaddr *q);
/* SQ_OK, SQ_TEMPFAIL, SQ_PERMFAIL (text set) or MDA_DQ_DEFAULT. */
int	 mda_dotqmail(const struct mda_qaddr *, const char *sender,
	    const char *home, int msgfd, struct mda_forwards *, char *text,
	    size_t len);
void	 mda_forwards_free(struct mda_forwards *);
/*
 * aliases(5) targets (d->method MBOX_PROGRAM, MBOX_FILE, MBOX_INCLUDE) in
 * the agent of user, home: SQ_OK, SQ_TEMPFAIL or SQ_PERMFAIL, text set.
 */
#define MDA_INCLUDE_DEPTH	8		/* nested :include: files */
#define MDA_INCLUDE_FILE_MAX	(256 * 1024)	/* octets in one */
int	 mda_alias(const struct dest *, const char *sender, const char *user,
	    const char *home, int msgfd, struct mda_forwards *, char *text,
	    size_t len);

/* mda_util.c */
int	 mda_localpart_ok(const char *);
int	 mda_expand(const char *tmpl, enum mbox_method, const char *user,
	    const char *home, const char *addr, char *path, size_t pathlen,
	    enum mda_kind *, char *err, size_t errlen);
int	 mda_header_loops(const char *buf, size_t len, const char *rcpt,
	    int *hops);
ssize_t	 mda_read_header(int fd, char *buf, size_t len);
int	 mda_envelope_header(char *buf, size_t len, const char *sender,
	    const char *rcpt);
void	 mda_set_hostname(const char *);
const char *mda_hostname(void);
const char *mda_strerror(int);
const char *mda_errcode(int);
int	 mda_write_all(int fd, const void *, size_t);

#endif
