/*
 * The mta process: remote transfer.  queue hands it one delivery per
 * recipient; deliveries of one message to one domain that arrive together
 * become one task, one SMTP transaction with several RCPTs.  A task asks
 * lka where the domain's mail goes (its route, else its MX hosts, in the
 * order to try), then mta_session.c tries the hosts in turn.  queue marks
 * each delivery with whether more of the same message follow at once; a
 * task asks for its route after the last, so they share the transaction
 * without any wait.  Each
 * recipient's result goes back to queue as its delivery's result.
 *
 * At most `remote concurrency` connections are open at once, at most
 * `remote host-concurrency` of them to one address; a task whose next
 * host has no free slot waits, first in first out, and a connection that
 * finishes a transaction takes the first waiting task for the same host
 * and settings (mta_session.c).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <event.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mproc.h"
#include "msg.h"
#include "mta.h"
#include "proc.h"
#include "sqmail.h"

static TAILQ_HEAD(, mta_task)	mta_tasks = TAILQ_HEAD_INITIALIZER(mta_tasks);
static TAILQ_HEAD(mta_waitq_head, mta_task) mta_waitq =
    TAILQ_HEAD_INITIALIZER(mta_waitq);
static uint64_t			mta_reqids;
static int			mta_paused;
static struct event		mta_ev_start;
static struct event		mta_ev_kick;	/* run waiting tasks */

static void	mta_start_tasks(int, short, void *);
static void	mta_kick(int, short, void *);

static struct mta_task *
mta_task_find(uint64_t reqid)
{
	struct mta_task	*t;

	TAILQ_FOREACH(t, &mta_tasks, entry)
		if (t->reqid == reqid)
			return t;
	return NULL;
}

void
mta_rcpt_result(struct mta_rcpt *r, int status, const char *fmt, ...)
{
	va_list	 ap;

	if (r->status != -1)
		return;
	r->status = status;
	va_start(ap, fmt);
	(void)vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

/* Every recipient gets its result; the task goes. */
void
mta_task_done(struct mta_task *t)
{
	struct mproc	*q = peers[PROC_QUEUE];
	struct mta_rcpt	*r;

	TAILQ_REMOVE(&mta_tasks, t, entry);
	if (t->waiting)
		TAILQ_REMOVE(&mta_waitq, t, wentry);
	while ((r = TAILQ_FIRST(&t->rcpts)) != NULL) {
		TAILQ_REMOVE(&t->rcpts, r, entry);
		if (r->status == -1)
			mta_rcpt_result(r, SQ_TEMPFAIL, "%s", t->lasterr[0] ?
			    t->lasterr : "no mail host could be reached");
		m_create(q, IMSG_DELIVER_DONE, 0, -1);
		m_add_u64(q, r->id);
		m_add_int(q, r->status);
		m_add_string(q, r->text);
		m_close(q);
		free(r);
	}
	if (t->fd != -1)
		close(t->fd);
	free(t->hosts);
	freezero(t, sizeof(*t));	/* the AUTH secret */
}

/*
 * Run the task on its next host: on an idle connection to it, else on a
 * new one when the limits allow, else it waits (at the end of the queue
 * of waiting tasks, or in its place when it was waiting already).
 */
void
mta_task_run(struct mta_task *t)
{
	struct mta_hoststat	*hs;
	char			 addr[64];
	uint32_t		 cap = conf->mta_concurrency;
	uint32_t		 hostcap = conf->mta_host_concurrency;

	if (t->next >= t->nhosts) {
		mta_task_done(t);
		return;
	}
	if (mta_session_reuse(t))
		goto run;
	hs = mta_host_of(&t->hosts[t->next], addr, sizeof(addr));
	if ((uint32_t)mta_host_sessions(hs) < hostcap) {
		if (mta_session_count() < cap) {
			mta_session_start(t);
			goto run;
		}
		/* The global limit: make room, unless another task did. */
		(void)mta_session_close_idle();
	}
	if (!t->waiting) {
		t->waiting = 1;
		TAILQ_INSERT_TAIL(&mta_waitq, t, wentry);
	}
	return;
 run:
	if (t->waiting) {
		t->waiting = 0;
		TAILQ_REMOVE(&mta_waitq, t, wentry);
	}
}

struct mta_task *
mta_task_take(int (*fits)(const struct mta_task *, void *), void *arg)
{
	struct mta_task	*t;

	TAILQ_FOREACH(t, &mta_waitq, wentry)
		if (fits(t, arg)) {
			t->waiting = 0;
			TAILQ_REMOVE(&mta_waitq, t, wentry);
			return t;
		}
	return NULL;
}

void
mta_sessions_changed(void)
{
	struct timeval	 now = { 0, 0 };

	if (!TAILQ_EMPTY(&mta_waitq) && !evtimer_pending(&mta_ev_kick, NULL))
		evtimer_add(&mta_ev_kick, &now);
}

/* Slots came free: the waiting tasks, in order, take what they can. */
static void
mta_kick(int fd, short ev, void *arg)
{
	struct mta_task	*t;
	size_t		 n = 0;

	/* Each once: one that cannot run yet goes to the end again. */
	TAILQ_FOREACH(t, &mta_waitq, wentry)
		n++;
	while (n-- > 0 && (t = TAILQ_FIRST(&mta_waitq)) != NULL) {
		t->waiting = 0;
		TAILQ_REMOVE(&mta_waitq, t, wentry);
		mta_task_run(t);
	}
}

/* A task for this message and domain whose session has not started. */
static struct mta_task *
mta_task_get(uint64_t msgid, const char *sender, const char *domain)
{
	struct mta_task	*t;

	TAILQ_FOREACH(t, &mta_tasks, entry)
		if (!t->ready && t->msgid == msgid &&
		    t->nrcpt < MTA_TASK_RCPTS_MAX &&
		    strcasecmp(t->domain, domain) == 0)
			return t;
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->hosts = calloc(MTA_HOSTS_MAX, sizeof(*t->hosts))) == NULL) {
		free(t);
		return NULL;
	}
	t->msgid = msgid;
	t->fd = -1;
	(void)strlcpy(t->sender, sender, sizeof(t->sender));
	(void)strlcpy(t->domain, domain, sizeof(t->domain));
	TAILQ_INIT(&t->rcpts);
	TAILQ_INSERT_TAIL(&mta_tasks, t, entry);
	return t;
}

/*
 * t (if any) may ask for its route; when this was the message's last
 * delivery every task of the message may: "more" is per message, not per
 * domain, so the tasks of its other domains wait for nothing either.
 */
static void
mta_task_ready(struct mta_task *t, uint64_t msgid, int last)
{
	struct timeval	 now = { 0, 0 };
	struct mta_task	*o;

	if (t != NULL)
		t->ready = 1;
	if (last)
		TAILQ_FOREACH(o, &mta_tasks, entry)
			if (o->msgid == msgid)
				o->ready = 1;
	if (!mta_paused && !evtimer_pending(&mta_ev_start, NULL))
		evtimer_add(&mta_ev_start, &now);
}

static void
mta_deliver(struct mproc *p, uint64_t id, uint64_t msgid, const char *sender,
    const struct dest *dest, int more, int fd)
{
	struct mta_task	*t;
	struct mta_rcpt	*r;
	const char	*at;

	at = strrchr(dest->addr, '@');
	if (at == NULL || at[1] == '\0' || fd == -1 ||
	    (t = mta_task_get(msgid, sender, at + 1)) == NULL ||
	    (r = calloc(1, sizeof(*r))) == NULL) {
		if (fd != -1)
			close(fd);
		m_create(p, IMSG_DELIVER_DONE, 0, -1);
		m_add_u64(p, id);
		m_add_int(p, SQ_TEMPFAIL);
		m_add_string(p, fd == -1 ? "no message descriptor (#4.3.0)" :
		    "out of memory in mta (#4.3.0)");
		m_close(p);
		if (!more)
			mta_task_ready(NULL, msgid, 1);
		return;
	}
	r->id = id;
	r->status = -1;
	(void)strlcpy(r->addr, dest->addr, sizeof(r->addr));
	TAILQ_INSERT_TAIL(&t->rcpts, r, entry);
	t->nrcpt++;
	if (t->fd == -1)
		t->fd = fd;
	else
		close(fd);
	if (more && t->nrcpt < MTA_TASK_RCPTS_MAX)
		return;
	mta_task_ready(t, msgid, !more);
}

/* New tasks ask lka for their route, unless mta is paused. */
static void
mta_start_tasks(int fd, short ev, void *arg)
{
	struct mproc	*lka = peers[PROC_LKA];
	struct mta_task	*t;

	TAILQ_FOREACH(t, &mta_tasks, entry) {
		if (mta_paused)
			break;
		if (!t->ready || t->reqid != 0)
			continue;
		t->reqid = ++mta_reqids;
		m_create(lka, IMSG_MTA_ROUTE, 0, -1);
		m_add_u64(lka, t->reqid);
		m_add_string(lka, t->domain);
		m_add_int(lka, t->sender[0] == '\0');
		m_close(lka);
	}
}

static void
mta_dispatch_queue(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	struct dest	 dest;
	const char	*sender;
	uint64_t	 id, msgid;
	int		 more;

	switch (imsg->hdr.type) {
	case IMSG_DELIVER:
		m_msg(&m, imsg);
		m_get_u64(&m, &id);
		m_get_msgid(&m, &msgid);
		m_get_string(&m, &sender);
		m_get_dest(&m, &dest);
		m_get_int(&m, &more);
		m_end(&m);
		mta_deliver(p, id, msgid, sender, &dest, more, imsg->fd);
		imsg->fd = -1;
		break;
	default:
		fatalx("mta: unexpected imsg %u from queue", imsg->hdr.type);
	}
}

static void
mta_dispatch_lka(struct mproc *p, struct imsg *imsg)
{
	struct msg		 m;
	struct mta_task		*t;
	struct mta_rcpt		*r;
	struct sockaddr_storage	 ss;
	const char		*name, *reason, *fp, *user, *secret;
	uint64_t		 reqid;
	int			 status, tls, smtps, plaintext;

	switch (imsg->hdr.type) {
	case IMSG_MTA_ROUTE_HOST:
		m_msg(&m, imsg);
		m_get_u64(&m, &reqid);
		m_get_string(&m, &name);
		m_get_sockaddr(&m, &ss);
		m_end(&m);
		if ((t = mta_task_find(reqid)) == NULL)
			fatalx("mta: route for an unknown task");
		if (t->nhosts < MTA_HOSTS_MAX) {
			(void)strlcpy(t->hosts[t->nhosts].name, name,
			    sizeof(t->hosts[t->nhosts].name));
			t->hosts[t->nhosts++].ss = ss;
		}
		break;
	case IMSG_MTA_ROUTE_END:
		m_msg(&m, imsg);
		m_get_u64(&m, &reqid);
		m_get_int(&m, &status);
		m_get_string(&m, &reason);
		m_get_int(&m, &tls);
		m_get_string(&m, &fp);
		m_get_int(&m, &smtps);
		m_get_string(&m, &user);
		m_get_string(&m, &secret);
		m_get_int(&m, &plaintext);
		m_end(&m);
		if ((t = mta_task_find(reqid)) == NULL)
			fatalx("mta: route end for an unknown task");
		if (tls < TLSP_OPPORTUNISTIC || tls > TLSP_FINGERPRINT)
			fatalx("mta: bad tls policy from lka");
		t->tls = tls;
		(void)strlcpy(t->fingerprint, fp, sizeof(t->fingerprint));
		t->smtps = smtps != 0;
		(void)strlcpy(t->auth_user, user, sizeof(t->auth_user));
		(void)strlcpy(t->auth_secret, secret, sizeof(t->auth_secret));
		t->auth_plaintext = plaintext != 0;
		if (status != SQ_OK || t->nhosts == 0) {
			TAILQ_FOREACH(r, &t->rcpts, entry)
				mta_rcpt_result(r, status == SQ_PERMFAIL ?
				    SQ_PERMFAIL : SQ_TEMPFAIL, "%s (#%s)",
				    reason[0] ? reason : "no mail host",
				    status == SQ_PERMFAIL ? "5.1.2" : "4.4.3");
			mta_task_done(t);
			break;
		}
		mta_task_run(t);
		break;
	default:
		fatalx("mta: unexpected imsg %u from lka", imsg->hdr.type);
	}
}

static void
mta_dispatch_parent(struct mproc *p, struct imsg *imsg)
{
	if (proc_common_imsg(imsg) == PROC_IMSG_NONE)
		fatalx("mta: unexpected imsg %u from parent", imsg->hdr.type);
}

static void
mta_dispatch_control(struct mproc *p, struct imsg *imsg)
{
	struct timeval	 now = { 0, 0 };
	struct msg	 m;
	uint32_t	 ctlid;

	if (proc_common_imsg(imsg) != PROC_IMSG_NONE)
		return;
	switch (imsg->hdr.type) {
	case IMSG_CTL_PAUSE:
		mta_paused = 1;
		break;
	case IMSG_CTL_RESUME:
		mta_paused = 0;
		evtimer_add(&mta_ev_start, &now);
		break;
	case IMSG_CTL_SHOW_HOSTS:
		m_msg(&m, imsg);
		m_get_u32(&m, &ctlid);
		m_end(&m);
		mta_hosts_show(p, ctlid);
		break;
	default:
		fatalx("mta: unexpected imsg %u from control", imsg->hdr.type);
	}
}

void
mta_main(void)
{
	peers[PROC_QUEUE]->handler = mta_dispatch_queue;
	peers[PROC_PARENT]->handler = mta_dispatch_parent;
	peers[PROC_CONTROL]->handler = mta_dispatch_control;
	peers[PROC_LKA]->handler = mta_dispatch_lka;
	proc_loop_init();
	evtimer_set(&mta_ev_start, mta_start_tasks, NULL);
	evtimer_set(&mta_ev_kick, mta_kick, NULL);
	event_dispatch();
	exit(0);
}
