/*
 * mda: local delivery dispatch.  Runs unprivileged (chrooted in an empty
 * directory when started as root) and never opens a mailbox: it keeps one
 * delivery agent per user, forked by the parent as that user, and hands it
 * the message descriptors the queue sends.
 *
 * A delivery is waiting (on its user's agent, not started), then running
 * (given to the agent, or held while the parent forks it), then done.  At
 * most conf->mda_concurrency run at once, at most MDA_AGENT_WINDOW per
 * agent; agents with waiting work take turns on the run queue.  An agent
 * with nothing to do for conf->agent_idle seconds is closed: it exits on
 * EOF, never on its own, so no delivery is sent to an agent that is going.
 * Agents run as users and are not trusted: anything odd from one closes
 * its channel and fails what it had, temporarily.
 *
 * Forwards (.qmail forward lines): the agent sends the addresses, then
 * its report.  A successful delivery with forwards then leaves its agent
 * (which may take the next one) and waits here, still counted as
 * running, until the queue has stored the new message; only then is it
 * reported done.  The new message's sender and Delivered-To address are
 * made here from what the queue gave mda, not taken from the agent.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/time.h>
#include <sys/tree.h>

#include <errno.h>
#include <event.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dotqmail.h"
#include "log.h"
#include "mailaddr.h"
#include "mda.h"
#include "mproc.h"
#include "msg.h"
#include "proc.h"
#include "sqmail.h"
#include "textline.h"

struct mda_delivery {
	TAILQ_ENTRY(mda_delivery)	 entry;
	uint64_t			 id;
	uint64_t			 msgid;
	char				 sender[SQ_ADDR_MAX];
	struct dest			 dest;
	int				 fd;	/* until handed to the agent */
	char				**fwd;	/* forward addresses, checked */
	size_t				 nfwd;
	int				 owner;	/* the agent saw an owner file */
	char				 text[SQ_ERROR_MAX];	/* while forwarding */
};
TAILQ_HEAD(mda_dlist, mda_delivery);

enum mda_agent_state {
	MDA_AGENT_NONE = 0,	/* no process (yet, or again) */
	MDA_AGENT_FORKING,	/* IMSG_AGENT_FORK sent, no answer yet */
	MDA_AGENT_READY		/* channel open */
};

struct mda_agent {
	RB_ENTRY(mda_agent)	 by_user;
	RB_ENTRY(mda_agent)	 by_id;		/* while forking */
	TAILQ_ENTRY(mda_agent)	 runq;
	int			 on_runq;
	uint32_t		 id;
	/* The identity: home "" for passwd's idea of user (see struct dest). */
	char			 user[SQ_USER_MAX + 1];
	uid_t			 uid;
	gid_t			 gid;
	char			 home[SQ_HOME_MAX + 1];
	enum mda_agent_state	 state;
	struct mproc		 mp;		/* valid when READY */
	struct mda_dlist	 waiting;
	struct mda_dlist	 running;
	size_t			 nwaiting;
	size_t			 nrunning;
	struct event		 idle_ev;
};

RB_HEAD(mda_user_tree, mda_agent);
RB_HEAD(mda_id_tree, mda_agent);

static int	 mda_user_cmp(struct mda_agent *, struct mda_agent *);
static int	 mda_id_cmp(struct mda_agent *, struct mda_agent *);
/* Not _STATIC: libbsd leaves __unused undefined on Linux. */
RB_PROTOTYPE(mda_user_tree, mda_agent, by_user, mda_user_cmp);
RB_PROTOTYPE(mda_id_tree, mda_agent, by_id, mda_id_cmp);

static void	 mda_dispatch_queue(struct mproc *, struct imsg *);
static void	 mda_dispatch_parent(struct mproc *, struct imsg *);
static void	 mda_dispatch_control(struct mproc *, struct imsg *);
static void	 mda_dispatch_agent(struct mproc *, struct imsg *);
static void	 mda_deliver(struct imsg *);
static void	 mda_fork_done(struct imsg *);
static void	 mda_show_stats(struct mproc *, uint32_t);
static void	 mda_done(uint64_t, int, const char *);
static void	 mda_schedule(void);
static void	 mda_runq_update(struct mda_agent *);
static void	 mda_start(struct mda_agent *, struct mda_delivery *);
static void	 mda_send(struct mda_agent *, struct mda_delivery *);
static struct mda_agent *mda_agent_get(const struct dest *);
static void	 mda_agent_fork(struct mda_agent *);
static void	 mda_agent_fail(struct mda_agent *, int, const char *, int);
static void	 mda_agent_lost(struct mproc *);
static void	 mda_agent_kill(struct mda_agent *, const char *);
static void	 mda_agent_close(struct mda_agent *);
static void	 mda_agent_idle(int, short, void *);
static void	 mda_agent_settle(struct mda_agent *);
static void	 mda_agent_free(struct mda_agent *);
static void	 mda_agent_badmsg(const char *);
static void	 mda_delivery_free(struct mda_delivery *);
static int	 mda_forward_add(struct mda_delivery *, int, const char *,
		    char *, size_t);
static void	 mda_forward_start(struct mda_delivery *, const char *);
static void	 mda_forward_done(struct imsg *);

static struct mda_user_tree	 mda_users = RB_INITIALIZER(&mda_users);
static struct mda_id_tree	 mda_forking = RB_INITIALIZER(&mda_forking);
static TAILQ_HEAD(, mda_agent)	 mda_runq = TAILQ_HEAD_INITIALIZER(mda_runq);
/* Done by their agents, waiting for the queue to store their forwards. */
static struct mda_dlist		 mda_forwarding =
				    TAILQ_HEAD_INITIALIZER(mda_forwarding);
static size_t			 mda_nagents;	/* forking or ready */
static size_t			 mda_nrunning;
static size_t			 mda_nwaiting;
static uint32_t			 mda_agent_ids;
static int			 mda_paused;
static jmp_buf			 mda_agent_jmp;
static const char		*mda_agent_err;

RB_GENERATE(mda_user_tree, mda_agent, by_user, mda_user_cmp);
RB_GENERATE(mda_id_tree, mda_agent, by_id, mda_id_cmp);

static int
mda_user_cmp(struct mda_agent *a, struct mda_agent *b)
{
	int	 r;

	if ((r = strcmp(a->user, b->user)) != 0)
		return r;
	if (a->uid != b->uid)
		return a->uid < b->uid ? -1 : 1;
	if (a->gid != b->gid)
		return a->gid < b->gid ? -1 : 1;
	return strcmp(a->home, b->home);
}

static int
mda_id_cmp(struct mda_agent *a, struct mda_agent *b)
{
	if (a->id < b->id)
		return -1;
	return a->id > b->id;
}

void
mda_main(void)
{
	if (peers[PROC_QUEUE] == NULL || peers[PROC_PARENT] == NULL)
		fatalx("mda: no channel to queue or parent");
	peers[PROC_QUEUE]->handler = mda_dispatch_queue;
	peers[PROC_PARENT]->handler = mda_dispatch_parent;
	if (peers[PROC_CONTROL] != NULL)
		peers[PROC_CONTROL]->handler = mda_dispatch_control;
	proc_loop_init();
	log_debug("mda: ready");
	event_dispatch();
	fatalx("mda: event loop returned");
}

static void
mda_dispatch_queue(struct mproc *p, struct imsg *imsg)
{
	switch (imsg->hdr.type) {
	case IMSG_DELIVER:
		mda_deliver(imsg);
		break;
	case IMSG_QUEUE_FORWARD:
		mda_forward_done(imsg);
		break;
	default:
		fatalx("mda: unexpected imsg %u from queue", imsg->hdr.type);
	}
}

static void
mda_dispatch_parent(struct mproc *p, struct imsg *imsg)
{
	if (imsg->hdr.type == IMSG_AGENT_FORK) {
		mda_fork_done(imsg);
		return;
	}
	switch (proc_common_imsg(imsg)) {
	case PROC_IMSG_RELOADED:
		log_debug("mda: new configuration");
		mda_schedule();		/* the limits may have moved */
		break;
	case PROC_IMSG_NONE:
		fatalx("mda: unexpected imsg %u from parent", imsg->hdr.type);
	}
}

static void
mda_dispatch_control(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	uint32_t	 ctlid;

	if (proc_common_imsg(imsg) != PROC_IMSG_NONE)
		return;
	switch (imsg->hdr.type) {
	case IMSG_CTL_PAUSE:
		m_msg(&m, imsg);
		m_end(&m);
		if (!mda_paused)
			log_info("mda: paused: no new deliveries start");
		mda_paused = 1;
		break;
	case IMSG_CTL_RESUME:
		m_msg(&m, imsg);
		m_end(&m);
		if (mda_paused)
			log_info("mda: resumed");
		mda_paused = 0;
		mda_schedule();
		break;
	case IMSG_CTL_SHOW_STATS:
		m_msg(&m, imsg);
		m_get_u32(&m, &ctlid);
		m_end(&m);
		mda_show_stats(p, ctlid);
		break;
	default:
		fatalx("mda: unexpected imsg %u from control", imsg->hdr.type);
	}
}

static void
mda_show_stats(struct mproc *p, uint32_t ctlid)
{
	ctl_line(p, ctlid, "mda.agents %zu", mda_nagents);
	ctl_line(p, ctlid, "mda.deliveries.running %zu", mda_nrunning);
	ctl_line(p, ctlid, "mda.deliveries.waiting %zu", mda_nwaiting);
	ctl_end(p, ctlid, SQ_OK, "");
}

/* Tell the queue how a delivery ended. */
static void
mda_done(uint64_t id, int status, const char *text)
{
	struct mproc	*p = peers[PROC_QUEUE];

	m_create(p, IMSG_DELIVER_DONE, 0, -1);
	m_add_u64(p, id);
	m_add_int(p, status);
	m_add_string(p, text);
	m_close(p);
}

/* IMSG_DELIVER from the queue: queue it on its user's agent. */
static void
mda_deliver(struct imsg *imsg)
{
	struct mda_delivery	*d;
	struct mda_agent	*a;
	struct dest		 dest;
	struct msg		 m;
	const char		*sender;
	uint64_t		 id, msgid;
	int			 fd = imsg->fd, more;

	m_msg(&m, imsg);
	m_get_u64(&m, &id);
	m_get_u64(&m, &msgid);
	m_get_string(&m, &sender);
	m_get_dest(&m, &dest);
	m_get_int(&m, &more);		/* one agent per delivery: unused */
	m_end(&m);

	if (fd == -1) {
		mda_done(id, SQ_TEMPFAIL, "no message descriptor came with "
		    "the delivery (#4.3.0)");
		return;
	}
	if (dest.type != DEST_LOCAL || dest.user[0] == '\0') {
		mda_done(id, SQ_TEMPFAIL, "not a local destination, or no "
		    "user to deliver as (#4.3.5)");
		goto drop;
	}
	/*
	 * Mail for a uid 0 account that no alias took: lka accepted it to
	 * hold it here, and no agent is ever forked as root.
	 */
	if (dest.home[0] != '\0' && dest.uid == 0) {
		log_warnx("mda: delivery %016llx to %s: held: %s has uid 0; "
		    "add an alias for it", (unsigned long long)id, dest.addr,
		    dest.user);
		mda_done(id, SQ_TEMPFAIL, "mail for a uid 0 account is held: "
		    "no delivery runs as root; add an alias for it (an "
		    "aliases table entry, or .qmail-NAME of the qmail "
		    "alias-user) (#4.7.0)");
		goto drop;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    (a = mda_agent_get(&dest)) == NULL) {
		free(d);
		mda_done(id, SQ_TEMPFAIL, "out of memory (#4.3.0)");
		goto drop;
	}
	if (strlcpy(d->sender, sender, sizeof(d->sender)) >=
	    sizeof(d->sender)) {
		free(d);
		mda_done(id, SQ_PERMFAIL, "sender address too long (#5.1.7)");
		mda_agent_settle(a);
		goto drop;
	}
	d->id = id;
	d->msgid = msgid;
	d->dest = dest;
	d->fd = fd;
	log_debug("mda: delivery %016llx msg %016llx to %s as %s: waiting",
	    (unsigned long long)id, (unsigned long long)msgid, dest.addr,
	    a->user);
	TAILQ_INSERT_TAIL(&a->waiting, d, entry);
	a->nwaiting++;
	mda_nwaiting++;
	evtimer_del(&a->idle_ev);
	mda_runq_update(a);
	mda_schedule();
	return;

drop:
	close(fd);
}

/* Start what the limits allow, agents taking turns. */
static void
mda_schedule(void)
{
	struct mda_agent	*a;
	struct mda_delivery	*d;
	size_t			 cap;

	cap = conf != NULL && conf->mda_concurrency > 0 ?
	    conf->mda_concurrency : 1;
	while (!mda_paused && mda_nrunning < cap &&
	    (a = TAILQ_FIRST(&mda_runq)) != NULL) {
		TAILQ_REMOVE(&mda_runq, a, runq);
		a->on_runq = 0;
		if ((d = TAILQ_FIRST(&a->waiting)) == NULL ||
		    a->nrunning >= MDA_AGENT_WINDOW)
			continue;
		mda_start(a, d);
		mda_runq_update(a);	/* to the tail: the next one's turn */
	}
}

/* Put a on the run queue when it has waiting work and room for it. */
static void
mda_runq_update(struct mda_agent *a)
{
	int	 want;

	want = a->nwaiting > 0 && a->nrunning < MDA_AGENT_WINDOW;
	if (want && !a->on_runq) {
		TAILQ_INSERT_TAIL(&mda_runq, a, runq);
		a->on_runq = 1;
	} else if (!want && a->on_runq) {
		TAILQ_REMOVE(&mda_runq, a, runq);
		a->on_runq = 0;
	}
}

static void
mda_start(struct mda_agent *a, struct mda_delivery *d)
{
	TAILQ_REMOVE(&a->waiting, d, entry);
	a->nwaiting--;
	mda_nwaiting--;
	TAILQ_INSERT_TAIL(&a->running, d, entry);
	a->nrunning++;
	mda_nrunning++;
	switch (a->state) {
	case MDA_AGENT_NONE:
		mda_agent_fork(a);
		break;
	case MDA_AGENT_FORKING:
		break;			/* sent when the channel comes */
	case MDA_AGENT_READY:
		mda_send(a, d);
		break;
	}
}

/* Hand a delivery to its agent; the descriptor goes with the message. */
static void
mda_send(struct mda_agent *a, struct mda_delivery *d)
{
	log_debug("mda: delivery %016llx to %s: running",
	    (unsigned long long)d->id, a->user);
	m_create(&a->mp, IMSG_AGENT_DELIVER, 0, d->fd);
	d->fd = -1;		/* imsg closes it once sent */
	m_add_u64(&a->mp, d->id);
	m_add_u64(&a->mp, d->msgid);
	m_add_string(&a->mp, d->sender);
	m_add_dest(&a->mp, &d->dest);
	m_close(&a->mp);
}

static struct mda_agent *
mda_agent_get(const struct dest *dest)
{
	struct mda_agent	 key, *a;

	memset(&key, 0, sizeof(key));
	if (strlcpy(key.user, dest->user, sizeof(key.user)) >=
	    sizeof(key.user) ||
	    strlcpy(key.home, dest->home, sizeof(key.home)) >=
	    sizeof(key.home))
		return NULL;
	if (key.home[0] != '\0') {
		key.uid = dest->uid;
		key.gid = dest->gid;
	}
	if ((a = RB_FIND(mda_user_tree, &mda_users, &key)) != NULL)
		return a;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	(void)strlcpy(a->user, key.user, sizeof(a->user));
	(void)strlcpy(a->home, key.home, sizeof(a->home));
	a->uid = key.uid;
	a->gid = key.gid;
	TAILQ_INIT(&a->waiting);
	TAILQ_INIT(&a->running);
	evtimer_set(&a->idle_ev, mda_agent_idle, a);
	RB_INSERT(mda_user_tree, &mda_users, a);
	return a;
}

static void
mda_agent_fork(struct mda_agent *a)
{
	struct mproc	*p = peers[PROC_PARENT];

	do {
		a->id = ++mda_agent_ids;
	} while (a->id == 0 || RB_FIND(mda_id_tree, &mda_forking, a) != NULL);
	RB_INSERT(mda_id_tree, &mda_forking, a);
	a->state = MDA_AGENT_FORKING;
	mda_nagents++;
	log_debug("mda: asking for an agent for %s (id %u)", a->user, a->id);
	m_create(p, IMSG_AGENT_FORK, 0, -1);
	m_add_u32(p, a->id);
	m_add_string(p, a->user);
	m_add_u32(p, (uint32_t)a->uid);
	m_add_u32(p, (uint32_t)a->gid);
	m_add_string(p, a->home);
	m_close(p);
}

/* The parent's answer to IMSG_AGENT_FORK. */
static void
mda_fork_done(struct imsg *imsg)
{
	struct mda_agent	 key, *a;
	struct mda_delivery	*d;
	struct msg		 m;
	const char		*err;
	char			 text[SQ_ERROR_MAX];
	int			 status, fd = imsg->fd;

	m_msg(&m, imsg);
	m_get_u32(&m, &key.id);
	m_get_int(&m, &status);
	m_get_string(&m, &err);
	m_end(&m);

	if ((a = RB_FIND(mda_id_tree, &mda_forking, &key)) == NULL)
		fatalx("mda: agent fork answer for unknown id %u", key.id);
	RB_REMOVE(mda_id_tree, &mda_forking, a);

	if (status != SQ_OK || fd == -1) {
		if (fd != -1)
			close(fd);
		if (err[0] != '\0')
			(void)snprintf(text, sizeof(text), "cannot start a "
			    "delivery agent for %s: %s (#%s)", a->user, err,
			    status == SQ_PERMFAIL ? "5.1.1" : "4.3.0");
		else
			(void)snprintf(text, sizeof(text), "cannot start a "
			    "delivery agent for %s (#%s)", a->user,
			    status == SQ_PERMFAIL ? "5.1.1" : "4.3.0");
		text_printable(text);
		log_warnx("mda: %s", text);
		mda_nagents--;
		a->state = MDA_AGENT_NONE;
		/* Every delivery for this user: the next fork would fail. */
		mda_agent_fail(a, status == SQ_PERMFAIL ? SQ_PERMFAIL :
		    SQ_TEMPFAIL, text, 1);
		mda_agent_free(a);
		mda_schedule();
		return;
	}

	mproc_init(&a->mp, fd, PROC_AGENT, mda_dispatch_agent);
	a->mp.lost = mda_agent_lost;
	a->mp.arg = a;
	mproc_enable(&a->mp);
	a->state = MDA_AGENT_READY;
	log_debug("mda: agent for %s (id %u) ready", a->user, a->id);
	TAILQ_FOREACH(d, &a->running, entry)
		mda_send(a, d);
}

/*
 * Fail a's running deliveries (and its waiting ones too when all is set)
 * with status and text.
 */
static void
mda_agent_fail(struct mda_agent *a, int status, const char *text, int all)
{
	struct mda_delivery	*d;

	while ((d = TAILQ_FIRST(&a->running)) != NULL) {
		TAILQ_REMOVE(&a->running, d, entry);
		a->nrunning--;
		mda_nrunning--;
		mda_done(d->id, status, text);
		mda_delivery_free(d);
	}
	while (all && (d = TAILQ_FIRST(&a->waiting)) != NULL) {
		TAILQ_REMOVE(&a->waiting, d, entry);
		a->nwaiting--;
		mda_nwaiting--;
		mda_done(d->id, status, text);
		mda_delivery_free(d);
	}
	mda_runq_update(a);
}

static void
mda_agent_badmsg(const char *what)
{
	mda_agent_err = what;
	longjmp(mda_agent_jmp, 1);
}

/*
 * A message from an agent.  The agent runs as a user: a malformed
 * payload closes its channel instead of ending mda, so the getters fail
 * through mda_agent_badmsg() here.
 */
static void
mda_dispatch_agent(struct mproc *p, struct imsg *imsg)
{
	struct mda_agent	*a = p->arg;
	struct mda_delivery	*d;
	struct msg		 m;
	void			(*saved)(const char *);
	const char		*s;
	char			 text[SQ_ERROR_MAX], why[SQ_ERROR_MAX];
	uint64_t		 id;
	int			 status;

	if (imsg->fd != -1)
		close(imsg->fd);	/* an agent sends none */
	if (imsg->hdr.type != IMSG_AGENT_DONE &&
	    imsg->hdr.type != IMSG_AGENT_FORWARD) {
		(void)snprintf(why, sizeof(why), "unexpected imsg %u",
		    imsg->hdr.type);
		mda_agent_kill(a, why);
		return;
	}
	saved = m_error;
	if (setjmp(mda_agent_jmp) != 0) {
		m_error = saved;
		(void)snprintf(why, sizeof(why), "malformed message (%s)",
		    mda_agent_err != NULL ? mda_agent_err : "?");
		mda_agent_kill(a, why);
		return;
	}
	m_error = mda_agent_badmsg;
	m_msg(&m, imsg);
	m_get_u64(&m, &id);
	m_get_int(&m, &status);		/* FORWARD: the owner flag */
	m_get_string(&m, &s);
	m_end(&m);
	m_error = saved;

	TAILQ_FOREACH(d, &a->running, entry)
		if (d->id == id)
			break;
	if (d == NULL) {
		(void)snprintf(why, sizeof(why), "unknown delivery id "
		    "%016llx", (unsigned long long)id);
		mda_agent_kill(a, why);
		return;
	}
	if (imsg->hdr.type == IMSG_AGENT_FORWARD) {
		if (mda_forward_add(d, status, s, why, sizeof(why)) == -1)
			mda_agent_kill(a, why);
		return;
	}
	(void)strlcpy(text, s, sizeof(text));
	if (status != SQ_OK && status != SQ_TEMPFAIL &&
	    status != SQ_PERMFAIL) {
		(void)snprintf(why, sizeof(why), "bad status %d", status);
		mda_agent_kill(a, why);
		return;
	}
	text_printable(text);
	if (text[0] == '\0')
		(void)strlcpy(text, status == SQ_OK ? MDA_SUCCESS_TEXT :
		    "delivery failed (#4.3.0)", sizeof(text));

	TAILQ_REMOVE(&a->running, d, entry);
	a->nrunning--;
	log_debug("mda: delivery %016llx to %s: status %d: %s",
	    (unsigned long long)d->id, d->dest.addr, status, text);
	/* d->text set: a forward could not be kept, the start fails it. */
	if (status == SQ_OK && (d->nfwd > 0 || d->text[0] != '\0'))
		mda_forward_start(d, text);	/* still running */
	else {
		mda_nrunning--;
		mda_done(d->id, status, text);
		mda_delivery_free(d);
	}
	mda_runq_update(a);
	mda_agent_settle(a);
	mda_schedule();
}

/* EOF or a broken channel: the agent is gone. */
static void
mda_agent_lost(struct mproc *p)
{
	struct mda_agent	*a = p->arg;
	char			 text[SQ_ERROR_MAX];

	if (a->nrunning > 0)
		log_warnx("mda: delivery agent for %s died with %zu "
		    "deliveries in flight", a->user, a->nrunning);
	else
		log_debug("mda: delivery agent for %s went away", a->user);
	(void)snprintf(text, sizeof(text), "delivery agent for %s died "
	    "(#4.3.0)", a->user);
	text_printable(text);
	mda_agent_close(a);
	mda_agent_fail(a, SQ_TEMPFAIL, text, 0);
	mda_agent_settle(a);
	mda_schedule();
}

/* An agent broke the protocol: close it and fail what it had. */
static void
mda_agent_kill(struct mda_agent *a, const char *why)
{
	char	 text[SQ_ERROR_MAX];

	log_warnx("mda: delivery agent for %s: %s; closing its channel",
	    a->user, why);
	(void)snprintf(text, sizeof(text), "delivery agent for %s failed "
	    "(#4.3.0)", a->user);
	text_printable(text);
	mda_agent_close(a);
	mda_agent_fail(a, SQ_TEMPFAIL, text, 0);
	mda_agent_settle(a);
	mda_schedule();
}

/* Close a ready agent's channel; it exits on EOF. */
static void
mda_agent_close(struct mda_agent *a)
{
	if (a->state != MDA_AGENT_READY)
		return;
	mproc_clear(&a->mp);
	a->state = MDA_AGENT_NONE;
	mda_nagents--;
}

/*
 * After a's work changed: free it when it has no process and nothing to
 * do, or arm its idle timer when it has a process and nothing to do.
 */
static void
mda_agent_settle(struct mda_agent *a)
{
	struct timeval	 tv;

	if (a->nrunning > 0 || a->nwaiting > 0)
		return;
	switch (a->state) {
	case MDA_AGENT_NONE:
		mda_agent_free(a);
		break;
	case MDA_AGENT_FORKING:
		break;
	case MDA_AGENT_READY:
		timerclear(&tv);
		if (conf != NULL && conf->agent_idle > 0)
			tv.tv_sec = conf->agent_idle;
		evtimer_add(&a->idle_ev, &tv);
		break;
	}
}

static void
mda_agent_idle(int fd, short ev, void *arg)
{
	struct mda_agent	*a = arg;

	if (a->nrunning > 0 || a->nwaiting > 0)
		return;
	log_debug("mda: delivery agent for %s idle, closing it", a->user);
	mda_agent_close(a);
	mda_agent_free(a);
}

static void
mda_agent_free(struct mda_agent *a)
{
	if (a->nrunning > 0 || a->nwaiting > 0 ||
	    a->state != MDA_AGENT_NONE)
		fatalx("mda: freeing a busy agent for %s", a->user);
	evtimer_del(&a->idle_ev);
	if (a->on_runq)
		TAILQ_REMOVE(&mda_runq, a, runq);
	RB_REMOVE(mda_user_tree, &mda_users, a);
	free(a);
}

static void
mda_delivery_free(struct mda_delivery *d)
{
	size_t	 i;

	if (d->fd != -1)
		close(d->fd);
	for (i = 0; i < d->nfwd; i++)
		free(d->fwd[i]);
	free(d->fwd);
	free(d);
}

/*
 * A forward address from the agent: the agent's parser took it already,
 * so one that does not parse here, or one too many, is a broken agent
 * (-1, why set).  A bare local part gets our host name, as qmail's
 * envnoathost.  Out of memory is no fault of the agent: the delivery
 * then fails temporarily when it reports (d->text says so).
 */
static int
mda_forward_add(struct mda_delivery *d, int owner, const char *s,
    char *why, size_t whylen)
{
	struct mailaddr	 ma;
	char		 buf[SQ_ADDR_MAX], **nf;
	size_t		 n = strlen(s);
	const char	*host;

	if (d->nfwd >= MDA_FORWARD_MAX || (owner != 0 && owner != 1) ||
	    (d->nfwd > 0 && owner != d->owner)) {
		(void)snprintf(why, whylen, "bad forward for delivery "
		    "%016llx", (unsigned long long)d->id);
		return -1;
	}
	memset(&ma, 0, sizeof(ma));
	if (memchr(s, '@', n) == NULL) {
		host = conf != NULL ? conf->hostname : "";
		if (n == 0 || n > SQ_LOCALPART_MAX ||
		    !mailaddr_is_dotstring(s, n) ||
		    mailaddr_parse_domain(host, strlen(host), ma.domain,
		    sizeof(ma.domain)) == -1)
			goto bad;
		memcpy(ma.user, s, n);
		ma.user[n] = '\0';
	} else if (mailaddr_parse(s, n, &ma) == -1)
		goto bad;
	if (mailaddr_to_text(&ma, buf, sizeof(buf)) == -1)
		goto bad;
	if ((nf = reallocarray(d->fwd, d->nfwd + 1, sizeof(*nf))) == NULL)
		goto nomem;
	d->fwd = nf;
	if ((d->fwd[d->nfwd] = strdup(buf)) == NULL)
		goto nomem;
	d->nfwd++;
	d->owner = owner;
	return 0;
 bad:
	(void)snprintf(why, whylen, "invalid forward address for delivery "
	    "%016llx", (unsigned long long)d->id);
	return -1;
 nomem:
	log_warn("mda: forward");
	(void)strlcpy(d->text, "out of memory (#4.3.0)", sizeof(d->text));
	return 0;
}

/*
 * The agent reported success with forwards: ask the queue for the new
 * message.  Its sender is the one the queue gave for this delivery, or
 * local-owner@host of the delivery's own address when the agent saw an
 * owner file (dot-qmail(5)); its Delivered-To line names the delivery's
 * address.  The agent chooses neither.
 */
static void
mda_forward_start(struct mda_delivery *d, const char *text)
{
	struct mproc	*p = peers[PROC_QUEUE];
	char		 sender[SQ_ADDR_MAX], local[SQ_LOCALPART_MAX + 1];
	const char	*at;
	size_t		 i, n;

	if (d->text[0] != '\0') {		/* mda_forward_add failed */
		mda_nrunning--;
		mda_done(d->id, SQ_TEMPFAIL, d->text);
		mda_delivery_free(d);
		return;
	}
	if ((at = strrchr(d->dest.addr, '@')) == NULL ||
	    (n = at - d->dest.addr) > SQ_LOCALPART_MAX) {
		mda_nrunning--;
		mda_done(d->id, SQ_TEMPFAIL, "cannot forward from this "
		    "address (#4.3.0)");
		mda_delivery_free(d);
		return;
	}
	memcpy(local, d->dest.addr, n);
	local[n] = '\0';
	if (dotqmail_newsender(d->sender, local, at + 1, d->owner, 0, sender,
	    sizeof(sender)) == -1) {
		mda_nrunning--;
		mda_done(d->id, SQ_PERMFAIL, "the forward's sender address "
		    "is too long (#5.1.7)");
		mda_delivery_free(d);
		return;
	}
	(void)strlcpy(d->text, text, sizeof(d->text));
	TAILQ_INSERT_TAIL(&mda_forwarding, d, entry);
	log_debug("mda: delivery %016llx to %s: forwarding to %zu "
	    "addresses from <%s>", (unsigned long long)d->id, d->dest.addr,
	    d->nfwd, sender);
	for (i = 0; i < d->nfwd; i++) {
		m_create(p, IMSG_QUEUE_FORWARD_RCPT, 0, -1);
		m_add_u64(p, d->id);
		m_add_string(p, d->fwd[i]);
		m_close(p);
	}
	m_create(p, IMSG_QUEUE_FORWARD, 0, -1);
	m_add_u64(p, d->id);
	m_add_u64(p, d->msgid);
	m_add_string(p, sender);
	m_add_string(p, d->dest.addr);
	m_close(p);
}

/* The queue stored the forward (or could not): the delivery ends. */
static void
mda_forward_done(struct imsg *imsg)
{
	struct mda_delivery	*d;
	struct msg		 m;
	const char		*text;
	uint64_t		 id, newid;
	int			 status;

	m_msg(&m, imsg);
	m_get_u64(&m, &id);
	m_get_int(&m, &status);
	m_get_string(&m, &text);
	m_get_u64(&m, &newid);
	m_end(&m);

	TAILQ_FOREACH(d, &mda_forwarding, entry)
		if (d->id == id)
			break;
	if (d == NULL)
		fatalx("mda: forward answer for unknown delivery %016llx",
		    (unsigned long long)id);
	TAILQ_REMOVE(&mda_forwarding, d, entry);
	mda_nrunning--;
	if (status == SQ_OK) {
		log_debug("mda: delivery %016llx to %s: forwarded as msg "
		    "%016llx", (unsigned long long)id, d->dest.addr,
		    (unsigned long long)newid);
		mda_done(id, SQ_OK, d->text);
	} else
		mda_done(id, status == SQ_PERMFAIL ? SQ_PERMFAIL :
		    SQ_TEMPFAIL, text);
	mda_delivery_free(d);
	mda_schedule();
}
