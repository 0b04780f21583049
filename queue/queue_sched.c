/*
 * The scheduler: every queued message in memory, a tree per kind of
 * delivery (local, remote) keyed by the time its next recipient is due,
 * the deliveries in flight, the bounces, and the control requests.
 * Delivery log lines follow qmail-send's format so that qmailanalog reads
 * them.
 */
#include <sys/types.h>
#include <bsd/sys/queue.h>
#include <bsd/sys/tree.h>

#include <errno.h>
#include <event.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mproc.h"
#include "msg.h"
#include "proc.h"
#include "queue.h"
#include "sqmail.h"

/* libbsd's RB_GENERATE_STATIC expects it; glibc does not define it. */
#ifndef __unused
#define __unused	__attribute__((__unused__))
#endif

#define SCHED_LOCAL	0
#define SCHED_REMOTE	1

struct qmsg;

/* A message's place in one of the two delivery trees. */
struct qsched {
	RB_ENTRY(qsched)	 entry;
	struct qmsg		*msg;
	time_t			 when;
	int			 queued;
};
RB_HEAD(qsched_tree, qsched);

enum bounce_step {
	BSTEP_NONE = 0,
	BSTEP_RESOLVING,	/* asked lka where the bounce goes */
	BSTEP_STORING,		/* bounce written, waiting for its batch */
	BSTEP_WAITING		/* a step failed: trying again later */
};

struct qbounce;

struct qmsg {
	RB_ENTRY(qmsg)		 entry;
	TAILQ_ENTRY(qmsg)	 fentry;	/* sched_final_list */
	TAILQ_ENTRY(qmsg)	 rentry;	/* sched_retry_list */
	int			 on_final;
	int			 on_retry;
	struct envelope		 env;
	uint8_t			*busy;		/* per rcpt: in flight */
	struct qsched		 sched[2];
	int			 inflight;
	int			 removing;	/* remove once inflight is 0 */
	struct queue_job	 job;		/* envelope update */
	enum bounce_step	 bstep;
	struct event		 bev;
	int			 bev_set;
	struct qbounce		*bjob;
};
RB_HEAD(qmsg_tree, qmsg);
TAILQ_HEAD(qmsg_list, qmsg);

struct qdelivery {
	RB_ENTRY(qdelivery)	 entry;
	uint64_t		 id;
	struct qmsg		*msg;
	size_t			 rcpt;
	int			 type;
};
RB_HEAD(qdelivery_tree, qdelivery);

/* A bounce address being resolved by lka. */
struct qresolve {
	RB_ENTRY(qresolve)	 entry;
	uint64_t		 reqid;
	uint64_t		 msgid;
	int			 dbounce;
	int			 short_of_memory;
	char			 why[SQ_ERROR_MAX];	/* sender failed */
	struct dest		*dests;
	size_t			 ndest;
};
RB_HEAD(qresolve_tree, qresolve);

/* A bounce on its way into the queue. */
struct qbounce {
	struct queue_job	 job;
	struct envelope		 env;
	uint64_t		 origid;
};

static struct qmsg_tree		 sched_msgs = RB_INITIALIZER(&sched_msgs);
static struct qsched_tree	 sched_trees[2] = {
	RB_INITIALIZER(&sched_trees[0]), RB_INITIALIZER(&sched_trees[1])
};
static struct qdelivery_tree	 sched_deliveries =
				    RB_INITIALIZER(&sched_deliveries);
static struct qresolve_tree	 sched_resolves =
				    RB_INITIALIZER(&sched_resolves);
static struct qmsg_list		 sched_final_list =
				    TAILQ_HEAD_INITIALIZER(sched_final_list);
static struct qmsg_list		 sched_retry_list =
				    TAILQ_HEAD_INITIALIZER(sched_retry_list);
static struct event		 sched_ev;
static struct event		 sched_retry_ev;
static int			 sched_retry_armed;
static size_t			 sched_nmsg;
static int			 sched_inflight[2];
static uint64_t			 sched_delivery_id;
static uint64_t			 sched_reqid;

static void	sched_final(struct qmsg *);
static void	sched_bounce_start(struct qmsg *);
static void	sched_resolve(struct qmsg *, int, const char *);

static int
qmsg_cmp(struct qmsg *a, struct qmsg *b)
{
	return a->env.id < b->env.id ? -1 : a->env.id > b->env.id;
}
RB_GENERATE_STATIC(qmsg_tree, qmsg, entry, qmsg_cmp);

static int
qsched_cmp(struct qsched *a, struct qsched *b)
{
	if (a->when != b->when)
		return a->when < b->when ? -1 : 1;
	return qmsg_cmp(a->msg, b->msg);
}
RB_GENERATE_STATIC(qsched_tree, qsched, entry, qsched_cmp);

static int
qdelivery_cmp(struct qdelivery *a, struct qdelivery *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}
RB_GENERATE_STATIC(qdelivery_tree, qdelivery, entry, qdelivery_cmp);

static int
qresolve_cmp(struct qresolve *a, struct qresolve *b)
{
	return a->reqid < b->reqid ? -1 : a->reqid > b->reqid;
}
RB_GENERATE_STATIC(qresolve_tree, qresolve, entry, qresolve_cmp);

/*
 * Settings, with defaults for a configuration that leaves them out.
 */
static unsigned int
sched_cap(int t)
{
	/* Twice mta's connections: a finished one finds the next waiting. */
	if (t == SCHED_REMOTE)
		return conf != NULL && conf->mta_concurrency > 0 ?
		    2 * conf->mta_concurrency : QUEUE_MTA_CONCURRENCY;
	if (conf != NULL && conf->mda_concurrency > 0)
		return conf->mda_concurrency;
	return QUEUE_MDA_CONCURRENCY;
}

static struct mproc *
sched_peer(int t)
{
	return peers[t == SCHED_LOCAL ? PROC_MDA : PROC_MTA];
}

/* The queue lifetime for a recipient: its domain block's, else global. */
static time_t
sched_lifetime(const struct rcpt *r)
{
	struct domain	*d;
	const char	*at;

	if (conf == NULL)
		return QUEUE_LIFETIME_DEFAULT;
	if ((at = strrchr(r->dest.addr, '@')) != NULL &&
	    (d = config_domain(conf, at + 1)) != NULL && d->lifetime > 0)
		return d->lifetime;
	if (conf->queue_lifetime > 0)
		return conf->queue_lifetime;
	return QUEUE_LIFETIME_DEFAULT;
}

/* retry_min * 2^(tries - 1), at most retry_max. */
static time_t
sched_backoff(uint32_t tries)
{
	time_t		 lo = QUEUE_RETRY_MIN_DEFAULT;
	time_t		 hi = QUEUE_RETRY_MAX_DEFAULT;
	time_t		 d;
	uint32_t	 k;

	if (conf != NULL && conf->retry_min > 0)
		lo = conf->retry_min;
	if (conf != NULL && conf->retry_max > 0)
		hi = conf->retry_max;
	if (hi < lo)
		hi = lo;
	d = lo;
	for (k = 1; k < tries && d < hi; k++)
		d *= 2;
	return d < hi ? d : hi;
}

static const char *
sched_hostname(void)
{
	if (conf != NULL && conf->hostname[0] != '\0')
		return conf->hostname;
	return "localhost";
}

static void
sched_status_log(void)
{
	log_info("status: local %d/%u remote %d/%u",
	    sched_inflight[SCHED_LOCAL], sched_cap(SCHED_LOCAL),
	    sched_inflight[SCHED_REMOTE], sched_cap(SCHED_REMOTE));
}

static struct qmsg *
sched_find(uint64_t id)
{
	struct qmsg	 key;

	key.env.id = id;
	return RB_FIND(qmsg_tree, &sched_msgs, &key);
}

static void
sched_kick(void)
{
	struct timeval	 tv = { 0, 0 };

	evtimer_add(&sched_ev, &tv);
}

static int
sched_type(const struct rcpt *r)
{
	return r->dest.type == DEST_LOCAL ? SCHED_LOCAL : SCHED_REMOTE;
}

/* Put a message back in tree t, at the time its next rcpt of kind t is due. */
static void
sched_requeue(struct qmsg *m, int t)
{
	struct qsched	*qs = &m->sched[t];
	struct rcpt	*r;
	size_t		 i;
	int		 found = 0;
	time_t		 when = 0;

	if (qs->queued) {
		RB_REMOVE(qsched_tree, &sched_trees[t], qs);
		qs->queued = 0;
	}
	if (m->removing)
		return;
	for (i = 0; i < m->env.nrcpt; i++) {
		r = &m->env.rcpts[i];
		if (r->state != RCPT_PENDING || m->busy[i] ||
		    sched_type(r) != t)
			continue;
		if (!found || r->next_try < when)
			when = r->next_try;
		found = 1;
	}
	if (!found)
		return;
	qs->when = when;
	qs->queued = 1;
	RB_INSERT(qsched_tree, &sched_trees[t], qs);
}

static int
sched_has_pending(struct qmsg *m)
{
	size_t	 i;

	for (i = 0; i < m->env.nrcpt; i++)
		if (m->env.rcpts[i].state == RCPT_PENDING)
			return 1;
	return 0;
}

/* Once nothing is pending or in flight, the message's end is near. */
static void
sched_check(struct qmsg *m)
{
	if (m->inflight > 0 || m->on_final)
		return;
	if (!m->removing && sched_has_pending(m))
		return;
	m->on_final = 1;
	TAILQ_INSERT_TAIL(&sched_final_list, m, fentry);
	sched_kick();
}

/*
 * Persisting an envelope: one update job per message, batched.
 */
static void
sched_retry_timer(int fd, short ev, void *arg)
{
	struct qmsg	*m;

	sched_retry_armed = 0;
	while ((m = TAILQ_FIRST(&sched_retry_list)) != NULL) {
		TAILQ_REMOVE(&sched_retry_list, m, rentry);
		m->on_retry = 0;
		queue_submit(&m->job);
	}
}

static void
sched_persist_done(struct queue_job *job)
{
	struct qmsg	*m = job->arg;
	struct timeval	 tv = { QUEUE_RETRY_LATER, 0 };

	if (job->op.status == SQ_OK)
		return;
	log_warnx("queue: msg %" PRIu64 ": envelope not saved, trying again "
	    "in %d seconds", m->env.id, QUEUE_RETRY_LATER);
	if (!m->on_retry) {
		m->on_retry = 1;
		TAILQ_INSERT_TAIL(&sched_retry_list, m, rentry);
	}
	if (!sched_retry_armed) {
		sched_retry_armed = 1;
		evtimer_add(&sched_retry_ev, &tv);
	}
}

static void
sched_persist(struct qmsg *m)
{
	if (m->on_retry)
		return;		/* the retry timer submits it */
	m->job.op.type = QUEUE_OP_UPDATE;
	m->job.op.env = &m->env;
	m->job.done = sched_persist_done;
	m->job.arg = m;
	queue_submit(&m->job);
}

/*
 * Messages in and out.
 */
static void
sched_free(struct qmsg *m)
{
	int	 t;

	queue_cancel(&m->job);
	for (t = 0; t < 2; t++)
		if (m->sched[t].queued)
			RB_REMOVE(qsched_tree, &sched_trees[t], &m->sched[t]);
	if (m->on_final)
		TAILQ_REMOVE(&sched_final_list, m, fentry);
	if (m->on_retry)
		TAILQ_REMOVE(&sched_retry_list, m, rentry);
	if (m->bev_set)
		evtimer_del(&m->bev);
	if (m->bjob != NULL) {
		queue_cancel(&m->bjob->job);
		queue_fs_abort(m->bjob->env.id);
		envelope_free(&m->bjob->env);
		free(m->bjob);
	}
	RB_REMOVE(qmsg_tree, &sched_msgs, m);
	sched_nmsg--;
	envelope_free(&m->env);
	free(m->busy);
	free(m);
}

/* Every rcpt has its final state: the message leaves the queue. */
static void
sched_finish(struct qmsg *m)
{
	/*
	 * Not synced: if a crash forgets the unlink, the message is
	 * delivered again (at least once), never lost.
	 */
	(void)queue_fs_remove(m->env.id);
	log_info("end msg %" PRIu64, m->env.id);
	sched_free(m);
}

void
queue_sched_add(struct envelope *env, int isnew)
{
	struct qmsg	*m;

	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->busy = calloc(env->nrcpt ? env->nrcpt : 1, 1)) == NULL) {
		/* It is safe on disk; the next start picks it up. */
		log_warn("queue: msg %" PRIu64 ": not scheduled until the "
		    "next start", env->id);
		free(m);
		envelope_free(env);
		return;
	}
	m->env = *env;
	env->rcpts = NULL;
	env->nrcpt = 0;
	m->sched[0].msg = m->sched[1].msg = m;
	if (RB_INSERT(qmsg_tree, &sched_msgs, m) != NULL)
		fatalx("queue: msg %" PRIu64 " scheduled twice", m->env.id);
	sched_nmsg++;
	if (isnew) {
		log_info("new msg %" PRIu64, m->env.id);
		log_info("info msg %" PRIu64 ": bytes %" PRIu64 " from <%s> "
		    "qp %" PRIu64 " uid %u", m->env.id, m->env.size,
		    m->env.sender, m->env.id, (unsigned)getuid());
	}
	sched_requeue(m, SCHED_LOCAL);
	sched_requeue(m, SCHED_REMOTE);
	sched_check(m);
	sched_kick();
}

void
queue_sched_recovered(struct envelope *env, void *arg)
{
	queue_sched_add(env, 0);
}

size_t
queue_sched_count(size_t *pending)
{
	struct qmsg	*m;
	size_t		 i, n = 0;

	RB_FOREACH(m, qmsg_tree, &sched_msgs)
		for (i = 0; i < m->env.nrcpt; i++)
			if (m->env.rcpts[i].state == RCPT_PENDING)
				n++;
	if (pending != NULL)
		*pending = n;
	return sched_nmsg;
}

/*
 * Deliveries.
 */
static void
sched_deliver(struct qmsg *m, size_t i, int t, time_t now, int more)
{
	struct qdelivery	*d;
	struct rcpt		*r = &m->env.rcpts[i];
	struct mproc		*p = sched_peer(t);
	int			 fd;

	if ((fd = queue_fs_open_message(m->env.id)) == -1 && errno == ENOENT) {
		/* Someone removed it under us: nothing left to deliver. */
		queue_cancel(&m->job);
		queue_fs_quarantine(m->env.id, "message file vanished");
		m->removing = 1;
		sched_check(m);
		return;
	}
	if (fd == -1 || (d = calloc(1, sizeof(*d))) == NULL) {
		log_warn("queue: msg %" PRIu64 ": cannot start a delivery",
		    m->env.id);
		if (fd != -1)
			close(fd);
		r->next_try = now + QUEUE_RETRY_LATER;
		return;
	}
	d->id = ++sched_delivery_id;
	d->msg = m;
	d->rcpt = i;
	d->type = t;
	RB_INSERT(qdelivery_tree, &sched_deliveries, d);
	m->busy[i] = 1;
	m->inflight++;
	sched_inflight[t]++;
	r->last_try = now;

	log_info("starting delivery %" PRIu64 ": msg %" PRIu64 " to %s %s",
	    d->id, m->env.id, t == SCHED_LOCAL ? "local" : "remote",
	    r->dest.addr);
	sched_status_log();

	m_create(p, IMSG_DELIVER, 0, fd);
	m_add_u64(p, d->id);
	m_add_msgid(p, m->env.id);
	m_add_string(p, m->env.sender);
	m_add_dest(p, &r->dest);
	m_add_int(p, more);
	m_close(p);
}

static void
sched_dispatch(int t, time_t now)
{
	struct qsched	*qs;
	struct qmsg	*m;
	struct rcpt	*r;
	size_t		 i, prev;

	if (sched_peer(t) == NULL)
		return;
	while ((qs = RB_MIN(qsched_tree, &sched_trees[t])) != NULL) {
		if (qs->when > now ||
		    (unsigned)sched_inflight[t] >= sched_cap(t))
			break;
		m = qs->msg;
		RB_REMOVE(qsched_tree, &sched_trees[t], qs);
		qs->queued = 0;
		/* Each delivery says whether more of this message follow. */
		prev = SIZE_MAX;
		for (i = 0; i < m->env.nrcpt && !m->removing &&
		    (unsigned)sched_inflight[t] + (prev != SIZE_MAX) <
		    sched_cap(t); i++) {
			r = &m->env.rcpts[i];
			if (r->state != RCPT_PENDING || m->busy[i] ||
			    sched_type(r) != t || r->next_try > now)
				continue;
			if (prev != SIZE_MAX)
				sched_deliver(m, prev, t, now, 1);
			prev = i;
		}
		if (prev != SIZE_MAX && !m->removing)
			sched_deliver(m, prev, t, now, 0);
		sched_requeue(m, t);
	}
}

void
queue_sched_run(void)
{
	struct qsched	*qs;
	struct qmsg	*m;
	struct timeval	 tv;
	time_t		 now, next = 0;
	int		 t;

	while ((m = TAILQ_FIRST(&sched_final_list)) != NULL) {
		TAILQ_REMOVE(&sched_final_list, m, fentry);
		m->on_final = 0;
		sched_final(m);
	}
	now = time(NULL);
	for (t = 0; t < 2; t++)
		sched_dispatch(t, now);
	/* A due tree waits for a delivery to end; a later one for time. */
	for (t = 0; t < 2; t++) {
		qs = RB_MIN(qsched_tree, &sched_trees[t]);
		if (qs == NULL || qs->when <= now)
			continue;
		if (next == 0 || qs->when < next)
			next = qs->when;
	}
	evtimer_del(&sched_ev);
	if (!TAILQ_EMPTY(&sched_final_list))
		sched_kick();	/* dispatching ended some messages */
	else if (next != 0) {
		tv.tv_sec = next - now;
		tv.tv_usec = 0;
		evtimer_add(&sched_ev, &tv);
	}
}

static void
sched_timer(int fd, short ev, void *arg)
{
	queue_sched_run();
}

/* A TEMPFAIL: try again later, or give up when the message is too old. */
static void
sched_deferred(struct qmsg *m, struct rcpt *r, const char *text, time_t now)
{
	char		 suffix[96];
	size_t		 room;
	time_t		 age = now - m->env.ctime;

	r->tries++;
	if (age < sched_lifetime(r)) {
		(void)strlcpy(r->error, text, sizeof(r->error));
		r->next_try = now + sched_backoff(r->tries);
		return;
	}
	(void)snprintf(suffix, sizeof(suffix),
	    " (message expired after %lld days in the queue)",
	    (long long)(age / 86400));
	room = sizeof(r->error) - strlen(suffix);
	(void)strlcpy(r->error, text, room);
	(void)strlcat(r->error, suffix, sizeof(r->error));
	r->state = RCPT_BOUNCING;
}

void
queue_sched_deliver_done(struct mproc *p, struct imsg *imsg)
{
	struct msg		 m;
	struct qdelivery	 key, *d;
	struct qmsg		*qm;
	struct rcpt		*r;
	const char		*text, *what;
	char			 esc[SQ_ERROR_MAX * 2];
	uint64_t		 id;
	size_t			 i;
	time_t			 now;
	int			 status, t;

	m_msg(&m, imsg);
	m_get_u64(&m, &id);
	m_get_int(&m, &status);
	m_get_string(&m, &text);
	m_end(&m);

	key.id = id;
	if ((d = RB_FIND(qdelivery_tree, &sched_deliveries, &key)) == NULL)
		fatalx("queue: %s reported unknown delivery %" PRIu64,
		    p->name, id);
	if (p != sched_peer(d->type))
		fatalx("queue: %s reported delivery %" PRIu64 " it was not "
		    "given", p->name, id);
	switch (status) {
	case SQ_OK:
		what = "success";
		queue_stats.deliveries_ok++;
		break;
	case SQ_TEMPFAIL:
		what = "deferral";
		queue_stats.deliveries_temp++;
		break;
	case SQ_PERMFAIL:
		what = "failure";
		queue_stats.deliveries_perm++;
		break;
	default:
		fatalx("queue: %s: delivery %" PRIu64 ": bad status %d",
		    p->name, id, status);
	}
	RB_REMOVE(qdelivery_tree, &sched_deliveries, d);
	qm = d->msg;
	i = d->rcpt;
	t = d->type;
	free(d);
	qm->busy[i] = 0;
	qm->inflight--;
	sched_inflight[t]--;

	bounce_logtext(text, esc, sizeof(esc));
	log_info("delivery %" PRIu64 ": %s: %s", id, what, esc);
	sched_status_log();

	if (qm->removing) {
		sched_check(qm);
		sched_kick();
		return;
	}
	now = time(NULL);
	r = &qm->env.rcpts[i];
	switch (status) {
	case SQ_OK:
		r->state = RCPT_DONE;
		break;
	case SQ_TEMPFAIL:
		sched_deferred(qm, r, text, now);
		break;
	case SQ_PERMFAIL:
		(void)strlcpy(r->error, text, sizeof(r->error));
		r->state = RCPT_BOUNCING;
		break;
	}
	envelope_sanitize(r->error);
	sched_requeue(qm, t);
	if (qm->inflight == 0 && !sched_has_pending(qm))
		sched_check(qm);	/* it ends: no update needed */
	else
		sched_persist(qm);
	sched_kick();
}

/*
 * Bounces.
 */
static void
sched_final(struct qmsg *m)
{
	size_t	 i;

	if (m->inflight > 0 || (!m->removing && sched_has_pending(m)))
		return;
	if (!m->removing)
		for (i = 0; i < m->env.nrcpt; i++)
			if (m->env.rcpts[i].state == RCPT_BOUNCING) {
				if (m->bstep != BSTEP_NONE)
					return;
				/* A restart must redo the bounce. */
				sched_persist(m);
				sched_bounce_start(m);
				return;
			}
	sched_finish(m);
}

/* The bounce is queued, or there is none to send: the original ends. */
static void
sched_bounce_finish(struct qmsg *m)
{
	size_t	 i;

	for (i = 0; i < m->env.nrcpt; i++)
		if (m->env.rcpts[i].state == RCPT_BOUNCING)
			m->env.rcpts[i].state = RCPT_FAILED;
	sched_finish(m);
}

static void
sched_bounce_timer(int fd, short ev, void *arg)
{
	struct qmsg	*m = arg;

	m->bev_set = 0;
	m->bstep = BSTEP_NONE;
	sched_bounce_start(m);
}

static void
sched_bounce_later(struct qmsg *m)
{
	struct timeval	 tv = { QUEUE_RETRY_LATER, 0 };

	log_warnx("queue: msg %" PRIu64 ": bounce delayed, trying again in "
	    "%d seconds", m->env.id, QUEUE_RETRY_LATER);
	m->bstep = BSTEP_WAITING;
	if (m->bev_set)
		evtimer_del(&m->bev);
	evtimer_set(&m->bev, sched_bounce_timer, m);
	evtimer_add(&m->bev, &tv);
	m->bev_set = 1;
}

static void
sched_bounce_start(struct qmsg *m)
{
	if (m->env.flags & ENV_DBOUNCE) {
		log_info("triple bounce: discarding bounce/%" PRIu64,
		    m->env.id);
		sched_bounce_finish(m);
	} else if ((m->env.flags & ENV_BOUNCE) || m->env.sender[0] == '\0')
		/* Nobody to bounce to but the postmaster, as qmail does. */
		sched_resolve(m, 1, NULL);
	else
		sched_resolve(m, 0, NULL);
}

/* Split at the last '@'; an address without one is local to us. */
static int
sched_mailaddr(const char *addr, struct mailaddr *ma)
{
	const char	*at;
	size_t		 n;

	memset(ma, 0, sizeof(*ma));
	if ((at = strrchr(addr, '@')) == NULL) {
		if (strlcpy(ma->user, addr, sizeof(ma->user)) >=
		    sizeof(ma->user) || strlcpy(ma->domain, sched_hostname(),
		    sizeof(ma->domain)) >= sizeof(ma->domain))
			return -1;
		return 0;
	}
	n = at - addr;
	if (n >= sizeof(ma->user) || strlcpy(ma->domain, at + 1,
	    sizeof(ma->domain)) >= sizeof(ma->domain))
		return -1;
	memcpy(ma->user, addr, n);
	ma->user[n] = '\0';
	return 0;
}

static const char *
sched_postmaster(void)
{
	if (conf != NULL && conf->postmaster[0] != '\0')
		return conf->postmaster;
	return "postmaster";
}

static void
sched_resolve(struct qmsg *m, int dbounce, const char *why)
{
	struct qresolve	*res;
	struct mailaddr	 ma;
	struct mproc	*p = peers[PROC_LKA];
	const char	*addr;

	addr = dbounce ? sched_postmaster() : m->env.sender;
	if (sched_mailaddr(addr, &ma) == -1) {
		if (dbounce) {
			log_warnx("queue: postmaster address %s is unusable",
			    addr);
			log_info("triple bounce: discarding bounce/%" PRIu64,
			    m->env.id);
			sched_bounce_finish(m);
		} else
			sched_resolve(m, 1, "the sender address is unusable");
		return;
	}
	if (p == NULL || (res = calloc(1, sizeof(*res))) == NULL) {
		sched_bounce_later(m);
		return;
	}
	res->reqid = ++sched_reqid;
	res->msgid = m->env.id;
	res->dbounce = dbounce;
	if (why != NULL)
		(void)strlcpy(res->why, why, sizeof(res->why));
	RB_INSERT(qresolve_tree, &sched_resolves, res);
	m->bstep = BSTEP_RESOLVING;

	m_create(p, IMSG_LKA_RESOLVE, 0, -1);
	m_add_u64(p, res->reqid);
	m_add_mailaddr(p, &ma);
	m_close(p);
}

static void
sched_bounce_committed(struct queue_job *job)
{
	struct qbounce	*b = job->arg;
	struct qmsg	*m;

	if ((m = sched_find(b->origid)) != NULL && m->bjob == b)
		m->bjob = NULL;
	if (job->op.status != SQ_OK) {
		if (m != NULL)
			sched_bounce_later(m);
		envelope_free(&b->env);
		free(b);
		return;
	}
	queue_stats.bounces++;
	log_info("bounce msg %" PRIu64 " qp %" PRIu64, b->origid, b->env.id);
	if (m != NULL)
		sched_bounce_finish(m);
	queue_sched_add(&b->env, 1);
	free(b);
}

/* Write the bounce as a new message and queue it like any other. */
static void
sched_bounce_store(struct qmsg *m, struct qresolve *res)
{
	struct bounce_params	 bp;
	struct bounce_rcpt	*br = NULL;
	struct qbounce		*b = NULL;
	char			*orig = NULL, *text = NULL;
	size_t			 i, n = 0, origlen = 0, textlen, maxquote;
	uint64_t		 id, origsize = 0;
	time_t			 now = time(NULL);
	int			 fd = -1;

	maxquote = conf != NULL ? conf->bounce_max_size :
	    QUEUE_BOUNCE_MAX_DEFAULT;
	if (queue_fs_create(&id, &fd) != SQ_OK)
		goto later;
	if (queue_fs_read_message(m->env.id, maxquote, &orig, &origlen,
	    &origsize) == -1)
		log_warn("queue: msg %" PRIu64 ": bounce without a copy",
		    m->env.id);
	if ((br = reallocarray(NULL, m->env.nrcpt + 1, sizeof(*br))) == NULL)
		goto fail;
	for (i = 0; i < m->env.nrcpt; i++)
		if (m->env.rcpts[i].state == RCPT_BOUNCING) {
			br[n].addr = m->env.rcpts[i].dest.addr;
			br[n++].error = m->env.rcpts[i].error;
		}
	if (res->why[0] != '\0') {
		br[n].addr = m->env.sender;
		br[n++].error = res->why;
	}
	memset(&bp, 0, sizeof(bp));
	bp.hostname = sched_hostname();
	bp.to = res->dbounce ? sched_postmaster() : m->env.sender;
	bp.return_path = m->env.sender;
	bp.dbounce = res->dbounce;
	bp.now = now;
	bp.id = id;
	bp.rcpts = br;
	bp.nrcpt = n;
	bp.orig = orig != NULL ? orig : "";
	bp.origlen = origlen;
	bp.origsize = origsize;
	bp.maxquote = maxquote;
	if ((text = bounce_compose(&bp, &textlen)) == NULL ||
	    queue_fs_write(fd, text, textlen) == -1) {
		log_warn("queue: msg %" PRIu64 ": writing the bounce",
		    m->env.id);
		goto fail;
	}
	close(fd);
	fd = -1;

	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->env.rcpts = reallocarray(NULL, res->ndest,
	    sizeof(*b->env.rcpts))) == NULL)
		goto fail;
	b->origid = m->env.id;
	envelope_made(&b->env, id, now, sched_hostname(), "QSBMF", res->dests,
	    res->ndest);
	b->env.flags = res->dbounce ? ENV_DBOUNCE : ENV_BOUNCE;
	b->job.op.type = QUEUE_OP_COMMIT;
	b->job.op.env = &b->env;
	b->job.done = sched_bounce_committed;
	b->job.arg = b;
	m->bjob = b;
	m->bstep = BSTEP_STORING;
	queue_submit(&b->job);
	free(br);
	free(orig);
	free(text);
	return;

 fail:
	if (fd != -1)
		close(fd);
	queue_fs_abort(id);
	if (b != NULL) {
		free(b->env.rcpts);
		free(b);
	}
	free(br);
	free(orig);
	free(text);
 later:
	sched_bounce_later(m);
}

void
queue_sched_lka(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	struct qresolve	 key, *res;
	struct qmsg	*qm;
	struct dest	 dest, *nd;
	const char	*reply;
	char		 why[SQ_ERROR_MAX];
	uint64_t	 reqid;
	int		 status;

	m_msg(&m, imsg);
	m_get_u64(&m, &reqid);
	key.reqid = reqid;
	if ((res = RB_FIND(qresolve_tree, &sched_resolves, &key)) == NULL)
		fatalx("queue: lka answered unknown request %" PRIu64, reqid);
	if (imsg->hdr.type == IMSG_LKA_RCPT_DEST) {
		m_get_dest(&m, &dest);
		m_end(&m);
		if (res->ndest >= SQ_EXPAND_MAX)
			fatalx("queue: lka: more than %d destinations",
			    SQ_EXPAND_MAX);
		if ((nd = reallocarray(res->dests, res->ndest + 1,
		    sizeof(*nd))) == NULL) {
			log_warn("queue: bounce destinations");
			res->short_of_memory = 1;	/* TEMPFAIL */
			return;
		}
		res->dests = nd;
		res->dests[res->ndest++] = dest;
		return;
	}
	m_get_int(&m, &status);
	m_get_string(&m, &reply);
	m_end(&m);
	RB_REMOVE(qresolve_tree, &sched_resolves, res);

	qm = sched_find(res->msgid);
	if (qm == NULL || qm->removing || qm->bstep != BSTEP_RESOLVING)
		goto done;
	qm->bstep = BSTEP_NONE;
	if (status == SQ_OK && res->ndest > 0 && !res->short_of_memory)
		sched_bounce_store(qm, res);
	else if (status == SQ_TEMPFAIL || status == SQ_OK)
		sched_bounce_later(qm);
	else if (!res->dbounce) {
		(void)snprintf(why, sizeof(why), "The failure notice could "
		    "not be sent to this sender: %s", reply);
		envelope_sanitize(why);
		sched_resolve(qm, 1, why);
	} else {
		log_info("triple bounce: discarding bounce/%" PRIu64,
		    qm->env.id);
		sched_bounce_finish(qm);
	}
 done:
	free(res->dests);
	free(res);
}

/*
 * Control.
 */
static void
sched_ctl_show(struct mproc *p, uint32_t peerid, uint32_t ctlid)
{
	struct qmsg	*m;
	struct rcpt	*r;
	size_t		 i;
	time_t		 now = time(NULL), next;

	RB_FOREACH(m, qmsg_tree, &sched_msgs) {
		if (m->removing)
			continue;	/* removed: only its deliveries are left */
		for (i = 0; i < m->env.nrcpt; i++) {
			r = &m->env.rcpts[i];
			next = 0;
			if (r->state == RCPT_PENDING && !m->busy[i] &&
			    r->next_try > now)
				next = r->next_try - now;
			ctl_line(p, ctlid, "id=%" PRIu64 " age=%lld sender=%s "
			    "rcpt=%s state=%s tries=%u next=%lld error=%s",
			    m->env.id, (long long)(now - m->env.ctime),
			    m->env.sender, r->dest.addr,
			    envelope_state_name(r->state), r->tries,
			    (long long)next, r->error);
		}
	}
	ctl_end(p, ctlid, SQ_OK, "");
}

static void
sched_ctl_stats(struct mproc *p, uint32_t peerid, uint32_t ctlid)
{
	size_t	 pending, nmsg;

	nmsg = queue_sched_count(&pending);
#define STAT(name, v)	\
	ctl_line(p, ctlid, "%s %llu", (name), (unsigned long long)(v))
	STAT("queue.messages", nmsg);
	STAT("queue.recipients.pending", pending);
	STAT("queue.messages.in", queue_stats.messages_in);
	STAT("queue.deliveries.ok", queue_stats.deliveries_ok);
	STAT("queue.deliveries.temp", queue_stats.deliveries_temp);
	STAT("queue.deliveries.perm", queue_stats.deliveries_perm);
	STAT("queue.bounces", queue_stats.bounces);
#undef STAT
	ctl_end(p, ctlid, SQ_OK, "");
}

static void
sched_ctl_schedule_one(struct qmsg *m, time_t now)
{
	size_t	 i;

	for (i = 0; i < m->env.nrcpt; i++)
		if (m->env.rcpts[i].state == RCPT_PENDING && !m->busy[i])
			m->env.rcpts[i].next_try = now;
	sched_requeue(m, SCHED_LOCAL);
	sched_requeue(m, SCHED_REMOTE);
	if (m->bstep == BSTEP_WAITING) {
		if (m->bev_set)
			evtimer_del(&m->bev);
		m->bev_set = 0;
		m->bstep = BSTEP_NONE;
		sched_bounce_start(m);
	}
}

static void
sched_ctl_remove_one(struct qmsg *m)
{
	if (m->inflight > 0) {
		/* Ends when its deliveries do. */
		m->removing = 1;
		sched_requeue(m, SCHED_LOCAL);
		sched_requeue(m, SCHED_REMOTE);
		return;
	}
	sched_finish(m);
}

void
queue_sched_ctl(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	struct qmsg	*qm = NULL, *next;
	uint32_t	 ctlid, peerid = imsg->hdr.peerid;
	uint64_t	 id;
	time_t		 now = time(NULL);

	m_msg(&m, imsg);
	m_get_u32(&m, &ctlid);
	switch (imsg->hdr.type) {
	case IMSG_CTL_SHOW_QUEUE:
		m_end(&m);
		sched_ctl_show(p, peerid, ctlid);
		return;
	case IMSG_CTL_SHOW_STATS:
		m_end(&m);
		sched_ctl_stats(p, peerid, ctlid);
		return;
	}
	m_get_msgid(&m, &id);
	m_end(&m);
	/* A message being removed is gone for control already. */
	if (id != 0 && ((qm = sched_find(id)) == NULL || qm->removing)) {
		ctl_end(p, ctlid, SQ_PERMFAIL,
		    "no such message");
		return;
	}
	if (imsg->hdr.type == IMSG_CTL_SCHEDULE) {
		if (id != 0)
			sched_ctl_schedule_one(qm, now);
		else
			RB_FOREACH_SAFE(qm, qmsg_tree, &sched_msgs, next)
				if (!qm->removing)
					sched_ctl_schedule_one(qm, now);
	} else {
		if (id != 0)
			sched_ctl_remove_one(qm);
		else
			RB_FOREACH_SAFE(qm, qmsg_tree, &sched_msgs, next)
				sched_ctl_remove_one(qm);
	}
	sched_kick();
	ctl_end(p, ctlid, SQ_OK, "");
}

void
queue_sched_init(void)
{
	evtimer_set(&sched_ev, sched_timer, NULL);
	evtimer_set(&sched_retry_ev, sched_retry_timer, NULL);
}
