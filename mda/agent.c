/*
 * The delivery agent: one process per user, forked by the parent and
 * already running as that user in its home directory.  It takes one
 * delivery at a time from mda, writes the mailbox, answers, and exits when
 * mda closes the channel.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <event.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mda.h"
#include "mproc.h"
#include "msg.h"
#include "proc.h"
#include "sqmail.h"
#include "textline.h"

static void	 agent_dispatch(struct mproc *, struct imsg *);
static void	 agent_lost(struct mproc *);
static int	 agent_mda_gone(int);
static int	 agent_deliver(const char *, const struct dest *, int,
		    struct mda_forwards *, char *, size_t);

static struct mproc	 agent_mp;
static char		 agent_user[SQ_USER_MAX + 1];
static char		 agent_home[PATH_MAX];

void
agent_main(int fd, const char *user, const char *home)
{
	if (strlcpy(agent_user, user, sizeof(agent_user)) >=
	    sizeof(agent_user) ||
	    strlcpy(agent_home, home, sizeof(agent_home)) >=
	    sizeof(agent_home))
		fatalx("agent: user name or home too long");
	/* Copied: a reload in this process would free conf. */
	mda_set_hostname(conf != NULL ? conf->hostname : NULL);
	if (conf != NULL && conf->agent_program_timeout > 0)
		mda_program_timeout = conf->agent_program_timeout;
	(void)umask(077);
	(void)signal(SIGPIPE, SIG_IGN);

	event_init();
	mproc_init(&agent_mp, fd, PROC_MDA, agent_dispatch);
	agent_mp.lost = agent_lost;
	mproc_enable(&agent_mp);
	log_debug("agent: ready for %s", agent_user);
	event_dispatch();
	exit(0);
}

/* mda closed the channel: idle, or mda is going away. */
static void
agent_lost(struct mproc *p)
{
	log_debug("agent: %s: channel closed, exiting", agent_user);
	exit(0);
}

/* Whether mda has closed its end of the channel. */
static int
agent_mda_gone(int fd)
{
	struct pollfd	 pfd;

	pfd.fd = fd;
	pfd.events = POLLIN;
#ifdef POLLRDHUP
	pfd.events |= POLLRDHUP;
#endif
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) <= 0)
		return 0;
#ifdef POLLRDHUP
	if (pfd.revents & POLLRDHUP)
		return 1;
#endif
	return (pfd.revents & (POLLHUP | POLLERR)) != 0;
}

static void
agent_dispatch(struct mproc *p, struct imsg *imsg)
{
	struct mda_forwards fw;
	struct dest	 dest;
	struct msg	 m;
	const char	*sender;
	char		 text[SQ_ERROR_MAX];
	sigset_t	 set, old;
	uint64_t	 id, msgid;
	size_t		 i;
	int		 status;

	switch (imsg->hdr.type) {
	case IMSG_AGENT_DELIVER:
		m_msg(&m, imsg);
		m_get_u64(&m, &id);
		m_get_u64(&m, &msgid);
		m_get_string(&m, &sender);
		m_get_dest(&m, &dest);
		m_end(&m);
		/*
		 * mda gone (its end closed behind messages already read):
		 * nobody would hear the result, so do not deliver it.
		 */
		if (agent_mda_gone(p->imsgbuf.fd)) {
			log_debug("agent: %s: mda went away, exiting",
			    agent_user);
			exit(0);
		}
		/* A stop signal lands between deliveries, not in one. */
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGHUP);
		sigprocmask(SIG_BLOCK, &set, &old);
		text[0] = '\0';
		memset(&fw, 0, sizeof(fw));
		status = agent_deliver(sender, &dest, imsg->fd, &fw, text,
		    sizeof(text));
		if (imsg->fd != -1)
			close(imsg->fd);
		text_printable(text);
		log_debug("agent: %s: delivery %016llx msg %016llx to %s: "
		    "status %d: %s", agent_user, (unsigned long long)id,
		    (unsigned long long)msgid, dest.addr, status, text);
		/*
		 * The forwards of a successful delivery, before its report:
		 * mda has the queue store them before the delivery counts.
		 */
		for (i = 0; status == SQ_OK && i < fw.n; i++) {
			m_create(p, IMSG_AGENT_FORWARD, 0, -1);
			m_add_u64(p, id);
			m_add_int(p, fw.owner);
			m_add_string(p, fw.addr[i]);
			m_close(p);
		}
		mda_forwards_free(&fw);
		m_create(p, IMSG_AGENT_DONE, 0, -1);
		m_add_u64(p, id);
		m_add_int(p, status);
		m_add_string(p, text);
		m_close(p);
		/* Report now: the next delivery may take a while. */
		m_flush(p);
		sigprocmask(SIG_SETMASK, &old, NULL);
		break;
	default:
		fatalx("agent: unexpected imsg %u from mda", imsg->hdr.type);
	}
}

/*
 * One delivery: refuse a looping message; for a qmail address of this
 * agent's user (the dash and extension lka found, or for an older
 * envelope its name or name-ext: see mda_qmail_split) follow the .qmail
 * file in home (dot-qmail(5)); else, or when that says so, expand
 * the mailbox and write.  "~/" is the home of the user this agent runs
 * as; "%u" is the user lka chose (the same one when sqmaild runs as root).
 */
static int
agent_deliver(const char *sender, const struct dest *d, int fd,
    struct mda_forwards *fw, char *text, size_t len)
{
	struct mda_qaddr q;
	char		 path[PATH_MAX], *hdr;
	enum mda_kind	 kind;
	ssize_t		 n;
	int		 hops, loops, st, saved;

	if (fd == -1) {
		(void)snprintf(text, len, "no message descriptor (#4.3.0)");
		return SQ_TEMPFAIL;
	}
	/* mda routes by dest.user: another user here is a bug upstream. */
	if (sq_privileged && strcmp(d->user, agent_user) != 0) {
		(void)snprintf(text, len, "delivery for another user reached "
		    "the agent of %s (#4.3.0)", agent_user);
		return SQ_TEMPFAIL;
	}

	if ((hdr = malloc(MDA_HEADER_MAX)) == NULL) {
		(void)snprintf(text, len, "out of memory (#4.3.0)");
		return SQ_TEMPFAIL;
	}
	if ((n = mda_read_header(fd, hdr, MDA_HEADER_MAX)) == -1) {
		saved = errno;
		free(hdr);
		(void)snprintf(text, len, "cannot read the message: %s "
		    "(#4.3.0)", mda_strerror(saved));
		return SQ_TEMPFAIL;
	}
	loops = mda_header_loops(hdr, n, d->addr, &hops);
	free(hdr);
	if (loops) {
		/* qmail-local's words. */
		(void)snprintf(text, len, "This message is looping: it "
		    "already has my Delivered-To line. (#5.4.6)");
		return SQ_PERMFAIL;
	}
	if (hops >= SQ_HOPS_MAX) {
		(void)snprintf(text, len, "This message is looping: it has "
		    "passed %d hops (#5.4.6)", hops);
		return SQ_PERMFAIL;
	}

	/* aliases(5) targets: lka chose this account to carry them out. */
	if (d->method == MBOX_PROGRAM || d->method == MBOX_FILE ||
	    d->method == MBOX_INCLUDE)
		return mda_alias(d, sender, agent_user, agent_home, fd, fw,
		    text, len);

	/*
	 * Not privileged, every agent runs as the invoking user in its home:
	 * that home is nobody's .qmail place unless lka chose that user.
	 */
	if (strcmp(d->user, agent_user) == 0 &&
	    (d->dotqmail ? mda_qmail_dest(d, &q) :
	    mda_qmail_split(d->addr, agent_user, &q)) == 1) {
		st = mda_dotqmail(&q, sender, agent_home, fd, fw, text, len);
		if (st != MDA_DQ_DEFAULT)
			return st;
		text[0] = '\0';
	}

	st = mda_expand(d->mailbox, d->method, d->user[0] != '\0' ? d->user :
	    agent_user, agent_home, d->addr, path, sizeof(path), &kind, text,
	    len);
	if (st != SQ_OK)
		return st;
	if (kind == MDA_KIND_MAILDIR)
		return mda_maildir_deliver(path, fd, sender, d->addr, text,
		    len);
	return mda_mbox_deliver(path, fd, sender, d->addr, text, len);
}
