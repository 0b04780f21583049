/*
 * The queue process: its main, one dispatcher per peer, the messages
 * being received, and the batching of store operations (group commit).
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <bsd/sys/queue.h>
#include <bsd/sys/tree.h>

#include <errno.h>
#include <event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "imsg.h"
#include "log.h"
#include "mailaddr.h"
#include "mproc.h"
#include "msg.h"
#include "proc.h"
#include "queue.h"
#include "sqmail.h"

/* libbsd's RB_GENERATE_STATIC expects it; glibc does not define it. */
#ifndef __unused
#define __unused	__attribute__((__unused__))
#endif

/* A message smtp is writing: its recipients gather until COMMIT. */
struct qincoming {
	RB_ENTRY(qincoming)	 entry;
	uint64_t		 id;
	struct rcpt		*rcpts;
	size_t			 nrcpt;
	size_t			 cap;
	int			 overflow;
};
RB_HEAD(qincoming_tree, qincoming);

/* A COMMIT waiting for its batch. */
struct qcommit {
	struct queue_job	 job;
	struct envelope		 env;
	struct mproc		*peer;
	uint32_t		 peerid;
};

/*
 * A forward from mda (.qmail forward lines): its addresses, resolved by
 * lka one by one (each with its own request id, FWD_REQBIT set so that
 * the answers are told from the scheduler's), then the new message is
 * written, committed in a batch, and only then answered.
 */
#define FWD_REQBIT	(1ULL << 62)	/* QUEUE_SUBMIT_REQID is bit 63 */

struct qforward {
	TAILQ_ENTRY(qforward)	 entry;
	uint64_t		 reqid;		/* mda's */
	uint64_t		 lkabase;	/* lka request ids lkabase + i */
	int			 started;	/* IMSG_QUEUE_FORWARD came */
	uint64_t		 origid;
	char			 dtaddr[SQ_ADDR_MAX];	/* Delivered-To */
	char			**addrs;
	size_t			 naddr;
	size_t			 nanswered;
	struct dest		*dests;
	size_t			 ndest;
	int			 status;	/* worst answer so far */
	char			 text[SQ_ERROR_MAX];
	struct queue_job	 job;
	struct envelope		 env;
};
TAILQ_HEAD(qforward_list, qforward);

struct queue_stats	 queue_stats;

static struct qforward_list	 queue_forwards =
				    TAILQ_HEAD_INITIALIZER(queue_forwards);
static uint64_t			 queue_fwd_reqid;

static struct qincoming_tree	 queue_incoming =
				    RB_INITIALIZER(&queue_incoming);
static size_t			 queue_nincoming;

TAILQ_HEAD(queue_joblist, queue_job);
static struct queue_joblist	 queue_jobs =
				    TAILQ_HEAD_INITIALIZER(queue_jobs);
static struct queue_joblist	 queue_running =
				    TAILQ_HEAD_INITIALIZER(queue_running);
static struct event		 queue_flush_ev;
static int			 queue_flush_armed;

static void	queue_dispatch_parent(struct mproc *, struct imsg *);
static void	queue_dispatch_smtp(struct mproc *, struct imsg *);
static void	queue_dispatch_lka(struct mproc *, struct imsg *);
static void	queue_dispatch_deliver(struct mproc *, struct imsg *);
static void	queue_dispatch_control(struct mproc *, struct imsg *);
static void	queue_forward_rcpt(uint64_t, const char *);
static void	queue_forward(uint64_t, uint64_t, const char *, const char *);
static int	queue_forward_lka(struct imsg *);
static void	queue_submit_rcpt(struct mproc *, struct imsg *);
static void	queue_submit_start(struct mproc *, struct imsg *);
static void	queue_submit_lka(struct mproc *, struct imsg *);
static int	queue_submit_ours(struct imsg *);

static int
qincoming_cmp(struct qincoming *a, struct qincoming *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}
RB_GENERATE_STATIC(qincoming_tree, qincoming, entry, qincoming_cmp);

/*
 * Batching.  Jobs gather while the event loop turns; a zero-delay timer
 * then runs them as one batch: one round of parallel fsyncs and one fsync
 * per directory for all of them.  Nobody hears back before that.
 */
static void
queue_flush_arm(void)
{
	struct timeval	 tv = { 0, 0 };

	if (queue_flush_armed)
		return;
	queue_flush_armed = 1;
	evtimer_add(&queue_flush_ev, &tv);
}

void
queue_submit(struct queue_job *job)
{
	if (job->queued)
		return;
	job->queued = 1;
	TAILQ_INSERT_TAIL(&queue_jobs, job, entry);
	queue_flush_arm();
}

void
queue_cancel(struct queue_job *job)
{
	if (job->queued == 1)
		TAILQ_REMOVE(&queue_jobs, job, entry);
	else if (job->queued == 2)
		TAILQ_REMOVE(&queue_running, job, entry);
	job->queued = 0;
}

static void
queue_flush(int fd, short ev, void *arg)
{
	struct queue_job	 *job;
	struct queue_op		**ops;
	size_t			  n = 0, i = 0;

	queue_flush_armed = 0;
	while ((job = TAILQ_FIRST(&queue_jobs)) != NULL) {
		TAILQ_REMOVE(&queue_jobs, job, entry);
		TAILQ_INSERT_TAIL(&queue_running, job, entry);
		job->queued = 2;
		n++;
	}
	if ((ops = reallocarray(NULL, n ? n : 1, sizeof(*ops))) == NULL) {
		log_warn("queue: batch of %zu", n);
		TAILQ_FOREACH(job, &queue_running, entry)
			job->op.status = SQ_TEMPFAIL;
		n = 0;
	}
	if (ops != NULL) {
		TAILQ_FOREACH(job, &queue_running, entry)
			ops[i++] = &job->op;
		if (n > 0) {
			queue_fs_batch(ops, n);
			log_debug("queue: batch of %zu made durable", n);
		}
		free(ops);
	}
	/* done() may cancel other jobs of this batch, or submit new ones. */
	while ((job = TAILQ_FIRST(&queue_running)) != NULL) {
		TAILQ_REMOVE(&queue_running, job, entry);
		job->queued = 0;
		job->done(job);
	}
}

/*
 * smtp: CREATE, RCPT, COMMIT, ABORT.
 */
static void
queue_create(struct mproc *p, uint32_t peerid, uint64_t reqid)
{
	struct qincoming	*in;
	uint64_t		 id = 0;
	int			 fd = -1, status = SQ_TEMPFAIL;

	if (queue_nincoming >= QUEUE_INCOMING_MAX)
		log_warnx("queue: %zu messages being received, refusing more",
		    queue_nincoming);
	else if ((status = queue_fs_create(&id, &fd)) == SQ_OK) {
		if ((in = calloc(1, sizeof(*in))) == NULL) {
			log_warn("queue: create");
			close(fd);
			queue_fs_abort(id);
			fd = -1;
			id = 0;
			status = SQ_TEMPFAIL;
		} else {
			in->id = id;
			RB_INSERT(qincoming_tree, &queue_incoming, in);
			queue_nincoming++;
		}
	}
	m_create(p, IMSG_QUEUE_CREATE, peerid, fd);
	m_add_u64(p, reqid);
	m_add_int(p, status);
	m_add_msgid(p, id);
	m_close(p);
}

static struct qincoming *
queue_incoming_find(uint64_t id)
{
	struct qincoming	 key;

	key.id = id;
	return RB_FIND(qincoming_tree, &queue_incoming, &key);
}

static void
queue_incoming_free(struct qincoming *in)
{
	RB_REMOVE(qincoming_tree, &queue_incoming, in);
	queue_nincoming--;
	free(in->rcpts);
	free(in);
}

static void
queue_rcpt(uint64_t id, const struct dest *dest)
{
	struct qincoming	*in;
	struct rcpt		*r;
	size_t			 ncap;

	if ((in = queue_incoming_find(id)) == NULL) {
		log_warnx("queue: recipient for unknown msg %" PRIu64, id);
		return;
	}
	if (in->overflow)
		return;
	if (in->nrcpt == in->cap) {
		ncap = in->cap ? in->cap * 2 : 4;
		if (in->nrcpt >= QUEUE_RCPT_MAX ||
		    (r = reallocarray(in->rcpts, ncap, sizeof(*r))) == NULL) {
			log_warnx("queue: msg %" PRIu64 ": cannot hold %zu "
			    "recipients", id, in->nrcpt + 1);
			in->overflow = 1;
			return;
		}
		in->rcpts = r;
		in->cap = ncap;
	}
	r = &in->rcpts[in->nrcpt++];
	memset(r, 0, sizeof(*r));
	r->dest = *dest;
	r->state = RCPT_PENDING;
	r->next_try = time(NULL);
}

static void
queue_commit_reply(struct qcommit *c, int status)
{
	m_create(c->peer, IMSG_QUEUE_COMMIT, c->peerid, -1);
	m_add_u64(c->peer, c->job.reqid);
	m_add_int(c->peer, status);
	m_add_msgid(c->peer, c->env.id);
	m_close(c->peer);
}

static void
queue_commit_done(struct queue_job *job)
{
	struct qcommit	*c = job->arg;

	queue_commit_reply(c, job->op.status);
	if (job->op.status == SQ_OK) {
		queue_stats.messages_in++;
		queue_sched_add(&c->env, 1);
	} else
		envelope_free(&c->env);
	free(c);
}

/* Informational text: cut to fit, controls replaced. */
static void
queue_copy_info(char *dst, const char *src, size_t len)
{
	(void)strlcpy(dst, src, len);
	envelope_sanitize(dst);
}

static void
queue_commit(struct mproc *p, uint32_t peerid, uint64_t reqid, uint64_t id,
    const char *sender, const char *helo, const char *client,
    const char *proto)
{
	struct qincoming	*in;
	struct qcommit		*c;
	struct qcommit		 fail;
	int			 status = SQ_TEMPFAIL;

	if ((in = queue_incoming_find(id)) == NULL) {
		log_warnx("queue: commit of unknown msg %" PRIu64, id);
		goto fail;
	}
	if (in->overflow || in->nrcpt == 0 ||
	    strlen(sender) >= sizeof(c->env.sender)) {
		log_warnx("queue: msg %" PRIu64 ": refused: %s", id,
		    in->nrcpt == 0 ? "no recipient" : "envelope too large");
		status = SQ_PERMFAIL;
		goto drop;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("queue: commit");
		goto drop;
	}
	c->peer = p;
	c->peerid = peerid;
	c->env.id = id;
	c->env.ctime = time(NULL);
	(void)strlcpy(c->env.sender, sender, sizeof(c->env.sender));
	queue_copy_info(c->env.helo, helo, sizeof(c->env.helo));
	queue_copy_info(c->env.client, client, sizeof(c->env.client));
	queue_copy_info(c->env.proto, proto, sizeof(c->env.proto));
	c->env.nrcpt = in->nrcpt;
	c->env.rcpts = in->rcpts;
	in->rcpts = NULL;
	queue_incoming_free(in);
	c->job.op.type = QUEUE_OP_COMMIT;
	c->job.op.env = &c->env;
	c->job.done = queue_commit_done;
	c->job.arg = c;
	c->job.reqid = reqid;
	queue_submit(&c->job);
	return;

 drop:
	queue_incoming_free(in);
	queue_fs_abort(id);
 fail:
	memset(&fail, 0, sizeof(fail));
	fail.peer = p;
	fail.peerid = peerid;
	fail.env.id = id;
	fail.job.reqid = reqid;
	queue_commit_reply(&fail, status);
}

static void
queue_dispatch_smtp(struct mproc *p, struct imsg *imsg)
{
	struct msg		 m;
	struct dest		 dest;
	struct qincoming	*in;
	const char		*sender, *helo, *client, *proto;
	uint64_t		 reqid, id, size;

	if (imsg->fd != -1) {
		close(imsg->fd);
		imsg->fd = -1;
	}
	switch (imsg->hdr.type) {
	case IMSG_QUEUE_CREATE:
		m_msg(&m, imsg);
		m_get_u64(&m, &reqid);
		m_end(&m);
		queue_create(p, imsg->hdr.peerid, reqid);
		return;
	case IMSG_QUEUE_RCPT:
		m_msg(&m, imsg);
		m_get_msgid(&m, &id);
		m_get_dest(&m, &dest);
		m_end(&m);
		queue_rcpt(id, &dest);
		return;
	case IMSG_QUEUE_COMMIT:
		m_msg(&m, imsg);
		m_get_u64(&m, &reqid);
		m_get_msgid(&m, &id);
		m_get_string(&m, &sender);
		m_get_string(&m, &helo);
		m_get_string(&m, &client);
		m_get_string(&m, &proto);
		m_get_u64(&m, &size);
		m_end(&m);
		queue_commit(p, imsg->hdr.peerid, reqid, id, sender, helo,
		    client, proto);
		return;
	case IMSG_QUEUE_ABORT:
		m_msg(&m, imsg);
		m_get_msgid(&m, &id);
		m_end(&m);
		if ((in = queue_incoming_find(id)) != NULL) {
			queue_incoming_free(in);
			queue_fs_abort(id);
		}
		return;
	}
	fatalx("queue: unexpected imsg %u from smtp", imsg->hdr.type);
}

static void
queue_dispatch_parent(struct mproc *p, struct imsg *imsg)
{
	if (imsg->fd != -1) {
		close(imsg->fd);
		imsg->fd = -1;
	}
	switch (proc_common_imsg(imsg)) {
	case PROC_IMSG_RELOADED:
		log_debug("queue: new configuration");
		queue_sched_run();
		return;
	case PROC_IMSG_DONE:
		return;
	}
	fatalx("queue: unexpected imsg %u from the parent", imsg->hdr.type);
}

static void
queue_dispatch_lka(struct mproc *p, struct imsg *imsg)
{
	if (imsg->fd != -1) {
		close(imsg->fd);
		imsg->fd = -1;
	}
	switch (imsg->hdr.type) {
	case IMSG_LKA_RCPT_DEST:
	case IMSG_LKA_RESOLVE:
		if (queue_submit_ours(imsg)) {
			queue_submit_lka(p, imsg);
			return;
		}
		if (!queue_forward_lka(imsg))
			queue_sched_lka(p, imsg);
		return;
	}
	fatalx("queue: unexpected imsg %u from lka", imsg->hdr.type);
}

static void
queue_dispatch_deliver(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	const char	*addr, *sender, *dtaddr;
	uint64_t	 reqid, id;

	if (imsg->fd != -1) {
		close(imsg->fd);
		imsg->fd = -1;
	}
	switch (imsg->hdr.type) {
	case IMSG_DELIVER_DONE:
		queue_sched_deliver_done(p, imsg);
		return;
	case IMSG_QUEUE_FORWARD_RCPT:
		if (p != peers[PROC_MDA])
			break;
		m_msg(&m, imsg);
		m_get_u64(&m, &reqid);
		m_get_string(&m, &addr);
		m_end(&m);
		queue_forward_rcpt(reqid, addr);
		return;
	case IMSG_QUEUE_FORWARD:
		if (p != peers[PROC_MDA])
			break;
		m_msg(&m, imsg);
		m_get_u64(&m, &reqid);
		m_get_u64(&m, &id);
		m_get_string(&m, &sender);
		m_get_string(&m, &dtaddr);
		m_end(&m);
		queue_forward(reqid, id, sender, dtaddr);
		return;
	}
	fatalx("queue: unexpected imsg %u from %s", imsg->hdr.type, p->name);
}

static void
queue_dispatch_control(struct mproc *p, struct imsg *imsg)
{
	if (imsg->hdr.type == IMSG_CTL_SUBMIT) {
		queue_submit_start(p, imsg);	/* takes the descriptor */
		return;
	}
	if (imsg->fd != -1) {
		close(imsg->fd);
		imsg->fd = -1;
	}
	if (proc_common_imsg(imsg) != PROC_IMSG_NONE)
		return;
	switch (imsg->hdr.type) {
	case IMSG_CTL_SHOW_QUEUE:
	case IMSG_CTL_SHOW_STATS:
	case IMSG_CTL_SCHEDULE:
	case IMSG_CTL_REMOVE:
		queue_sched_ctl(p, imsg);
		return;
	case IMSG_CTL_SUBMIT_RCPT:
		queue_submit_rcpt(p, imsg);
		return;
	}
	fatalx("queue: unexpected imsg %u from control", imsg->hdr.type);
}

/*
 * sendmail(8): local submissions relayed by control.  The recipients
 * come first (IMSG_CTL_SUBMIT_RCPT), then IMSG_CTL_SUBMIT with the uid
 * the kernel gave control and the message as a sealed memory file.  We
 * write our Received line and the message into incoming/, resolve each
 * recipient through lka as a bounce's is (relaying allowed: the sender
 * is on this host), then commit as for smtp; control hears
 * IMSG_QUEUE_COMMIT with its ctlid as the reqid, or IMSG_CTL_END when
 * the message was refused before that.  lka's answers carry a reqid
 * with QUEUE_SUBMIT_REQID set, which the scheduler's never have.
 */
#define QUEUE_SUBMIT_REQID	(1ULL << 63)
#define QUEUE_SUBMIT_MAX	128	/* submissions at once */
#define QUEUE_SUBMIT_RCPTS	1000	/* recipients of one */
#define QUEUE_SUBMIT_SIZE	(1ULL << 30)	/* when the conf says 0 */

struct qsubmit {
	TAILQ_ENTRY(qsubmit)	 entry;
	uint32_t		 ctlid;
	uint64_t		 reqid;
	uint64_t		 msgid;		/* 0: not stored yet */
	struct mailaddr		*rcpts;
	size_t			 nrcpt;
	size_t			 next;		/* the one lka resolves */
	int			 overflow;
	unsigned		 uid;
	char			 sender[SQ_ADDR_MAX];
	char			 client[64];
};
TAILQ_HEAD(qsubmit_list, qsubmit);
static struct qsubmit_list	 queue_submits =
				    TAILQ_HEAD_INITIALIZER(queue_submits);
static size_t			 queue_nsubmits;
static uint64_t			 queue_submit_nextreq;

static struct qsubmit *
queue_submit_find(uint32_t ctlid, uint64_t reqid)
{
	struct qsubmit	*qs;

	TAILQ_FOREACH(qs, &queue_submits, entry)
		if ((ctlid != 0 && qs->ctlid == ctlid) ||
		    (reqid != 0 && qs->reqid == reqid))
			return qs;
	return NULL;
}

static void
queue_submit_free(struct qsubmit *qs)
{
	TAILQ_REMOVE(&queue_submits, qs, entry);
	queue_nsubmits--;
	free(qs->rcpts);
	free(qs);
}

/* Refuse qs: its incoming file goes, control hears why. */
static void
queue_submit_fail(struct mproc *p, struct qsubmit *qs, int status,
    const char *why)
{
	struct qincoming	*in;

	if (qs->msgid != 0 && (in = queue_incoming_find(qs->msgid)) != NULL) {
		queue_incoming_free(in);
		queue_fs_abort(qs->msgid);
	}
	log_info("queue: local submission from uid %u refused: %s", qs->uid,
	    why);
	ctl_end(p, qs->ctlid, status, why);
	queue_submit_free(qs);
}

static void
queue_submit_rcpt(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	struct mailaddr	 addr;
	struct qsubmit	*qs;
	struct mailaddr	*r;
	uint32_t	 ctlid;
	size_t		 ncap;

	m_msg(&m, imsg);
	m_get_u32(&m, &ctlid);
	m_get_mailaddr(&m, &addr);
	m_end(&m);
	if ((qs = queue_submit_find(ctlid, 0)) == NULL) {
		if (queue_nsubmits >= QUEUE_SUBMIT_MAX ||
		    (qs = calloc(1, sizeof(*qs))) == NULL)
			return;		/* the SUBMIT finds nothing: refused */
		qs->ctlid = ctlid;
		TAILQ_INSERT_TAIL(&queue_submits, qs, entry);
		queue_nsubmits++;
	}
	if (qs->overflow)
		return;
	if (qs->nrcpt >= QUEUE_SUBMIT_RCPTS) {
		qs->overflow = 1;
		return;
	}
	if ((qs->nrcpt & (qs->nrcpt - 1)) == 0) {
		ncap = qs->nrcpt ? qs->nrcpt * 2 : 1;
		if ((r = reallocarray(qs->rcpts, ncap, sizeof(*r))) == NULL) {
			qs->overflow = 1;
			return;
		}
		qs->rcpts = r;
	}
	qs->rcpts[qs->nrcpt++] = addr;
}

/* Ask lka for the next recipient's destinations, or commit. */
static void
queue_submit_next(struct mproc *ctl, struct qsubmit *qs)
{
	struct mproc	*lka = peers[PROC_LKA];

	if (qs->next == qs->nrcpt) {
		log_info("queue: msg %" PRIu64 ": local submission from uid "
		    "%u, %zu recipient%s", qs->msgid, qs->uid, qs->nrcpt,
		    qs->nrcpt == 1 ? "" : "s");
		queue_commit(ctl, 0, qs->ctlid, qs->msgid, qs->sender,
		    conf->hostname, qs->client, "local");
		queue_submit_free(qs);
		return;
	}
	if (lka == NULL) {
		queue_submit_fail(ctl, qs, SQ_TEMPFAIL, "no channel to lka");
		return;
	}
	qs->reqid = QUEUE_SUBMIT_REQID | ++queue_submit_nextreq;
	m_create(lka, IMSG_LKA_RESOLVE, 0, -1);
	m_add_u64(lka, qs->reqid);
	m_add_mailaddr(lka, &qs->rcpts[qs->next]);
	m_close(lka);
}

static int
queue_submit_ours(struct imsg *imsg)
{
	uint64_t	 reqid;

	if (imsg->hdr.len - IMSG_HEADER_SIZE < sizeof(reqid))
		return 0;
	memcpy(&reqid, imsg->data, sizeof(reqid));
	return (reqid & QUEUE_SUBMIT_REQID) != 0;
}

static void
queue_submit_lka(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	struct dest	 dest;
	struct qsubmit	*qs;
	struct mproc	*ctl = peers[PROC_CONTROL];
	const char	*reply;
	uint64_t	 reqid;
	int		 status;

	m_msg(&m, imsg);
	m_get_u64(&m, &reqid);
	if (imsg->hdr.type == IMSG_LKA_RCPT_DEST) {
		m_get_dest(&m, &dest);
		m_end(&m);
		if ((qs = queue_submit_find(0, reqid)) != NULL)
			queue_rcpt(qs->msgid, &dest);
		return;
	}
	m_get_int(&m, &status);
	m_get_string(&m, &reply);
	m_end(&m);
	if ((qs = queue_submit_find(0, reqid)) == NULL || ctl == NULL)
		return;
	if (status != SQ_OK) {
		queue_submit_fail(ctl, qs, status == SQ_PERMFAIL ?
		    SQ_PERMFAIL : SQ_TEMPFAIL, reply[0] != '\0' ? reply :
		    "recipient refused");
		return;
	}
	qs->next++;
	queue_submit_next(ctl, qs);
}

/* Received and the message into fd; -1 with a reason in why. */
static int
queue_submit_copy(struct qsubmit *qs, int src, int dst, const char **why)
{
	char		 buf[65536], date[64];
	struct tm	 tm;
	time_t		 now = time(NULL);
	uint64_t	 max, total = 0;
	ssize_t		 n, w, off;
	int		 len;

	max = conf->max_message_size ? conf->max_message_size :
	    QUEUE_SUBMIT_SIZE;
	*why = "cannot store the message";
	if (localtime_r(&now, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		return -1;
	len = snprintf(buf, sizeof(buf), "Received: (from uid %u)\n\tby %s "
	    "(sqmail) with local id %" PRIu64 ";\n\t%s\n", qs->uid,
	    conf->hostname, qs->msgid, date);
	if (len < 0 || (size_t)len >= sizeof(buf) ||
	    write(dst, buf, len) != len)
		return -1;
	for (;;) {
		/* pread: the file offset is the client's to move. */
		if ((n = pread(src, buf, sizeof(buf), total)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		total += n;
		if (total > max) {
			*why = "message too large";
			return -1;
		}
		for (off = 0; off < n; off += w)
			if ((w = write(dst, buf + off, n - off)) == -1) {
				if (errno != EINTR)
					return -1;
				w = 0;
			}
	}
	return 0;
}

static void
queue_submit_start(struct mproc *p, struct imsg *imsg)
{
	struct msg		 m;
	struct mailaddr		 sender;
	struct qsubmit		*qs;
	struct qincoming	*in;
	const char		*why;
	uint32_t		 ctlid, uid, pid;
	int			 fd = imsg->fd, wfd = -1;

	imsg->fd = -1;
	m_msg(&m, imsg);
	m_get_u32(&m, &ctlid);
	m_get_u32(&m, &uid);
	m_get_u32(&m, &pid);
	m_get_mailaddr(&m, &sender);
	m_end(&m);
	if ((qs = queue_submit_find(ctlid, 0)) == NULL) {
		ctl_end(p, ctlid, SQ_TEMPFAIL, "too many submissions at once");
		goto done;
	}
	qs->uid = uid;
	(void)snprintf(qs->client, sizeof(qs->client), "uid %u pid %u", uid,
	    pid);
	if (fd == -1 || qs->overflow || qs->nrcpt == 0 ||
	    mailaddr_to_text(&sender, qs->sender, sizeof(qs->sender)) == -1) {
		queue_submit_fail(p, qs, SQ_PERMFAIL, fd == -1 ?
		    "no message" : qs->nrcpt == 0 ? "no recipient" :
		    "too many recipients");
		goto done;
	}
	if (queue_nincoming >= QUEUE_INCOMING_MAX ||
	    queue_fs_create(&qs->msgid, &wfd) != SQ_OK ||
	    (in = calloc(1, sizeof(*in))) == NULL) {
		if (wfd != -1) {
			close(wfd);
			queue_fs_abort(qs->msgid);
		}
		qs->msgid = 0;
		queue_submit_fail(p, qs, SQ_TEMPFAIL,
		    "cannot store the message now");
		goto done;
	}
	in->id = qs->msgid;
	errno = 0;
	RB_INSERT(qincoming_tree, &queue_incoming, in);
	queue_nincoming++;
	if (queue_submit_copy(qs, fd, wfd, &why) == -1) {
		if (errno != 0 && strcmp(why, "message too large") != 0)
			log_warn("queue: msg %" PRIu64 ": local submission",
			    qs->msgid);
		close(wfd);
		queue_submit_fail(p, qs, strcmp(why, "message too large") ==
		    0 ? SQ_PERMFAIL : SQ_TEMPFAIL, why);
		goto done;
	}
	close(wfd);
	queue_submit_next(p, qs);
 done:
	if (fd != -1)
		close(fd);
}

/*
 * mda: forwards.  mda is trusted (it checked the agent's addresses and
 * made the sender itself); what is checked here is what the store needs.
 */
static struct qforward *
queue_forward_find(uint64_t reqid)
{
	struct qforward	*f;

	TAILQ_FOREACH(f, &queue_forwards, entry)
		if (f->reqid == reqid)
			return f;
	return NULL;
}

static void
queue_forward_free(struct qforward *f)
{
	size_t	 i;

	TAILQ_REMOVE(&queue_forwards, f, entry);
	for (i = 0; i < f->naddr; i++)
		free(f->addrs[i]);
	free(f->addrs);
	free(f->dests);
	envelope_free(&f->env);
	free(f);
}

static void
queue_forward_reply(struct qforward *f, int status, const char *text,
    uint64_t id)
{
	struct mproc	*p = peers[PROC_MDA];

	m_create(p, IMSG_QUEUE_FORWARD, 0, -1);
	m_add_u64(p, f->reqid);
	m_add_int(p, status);
	m_add_string(p, text);
	m_add_u64(p, id);
	m_close(p);
}

/* Note a failure; a permanent one wins over a temporary one. */
static void
queue_forward_fail(struct qforward *f, int status, const char *text)
{
	if (f->status == SQ_PERMFAIL ||
	    (f->status == SQ_TEMPFAIL && status != SQ_PERMFAIL))
		return;
	f->status = status;
	(void)strlcpy(f->text, text, sizeof(f->text));
	envelope_sanitize(f->text);
}

static void
queue_forward_rcpt(uint64_t reqid, const char *addr)
{
	struct qforward	*f;
	char		**na;

	if ((f = queue_forward_find(reqid)) == NULL) {
		if ((f = calloc(1, sizeof(*f))) == NULL) {
			log_warn("queue: forward");
			fatalx("queue: cannot hold a forward");
		}
		f->reqid = reqid;
		f->status = SQ_OK;
		TAILQ_INSERT_TAIL(&queue_forwards, f, entry);
	}
	if (f->started)
		fatalx("queue: forward address after its request");
	if (f->naddr >= SQ_EXPAND_MAX) {
		queue_forward_fail(f, SQ_TEMPFAIL, "too many forward "
		    "addresses (#4.3.0)");
		return;
	}
	if ((na = reallocarray(f->addrs, f->naddr + 1, sizeof(*na))) ==
	    NULL || (na[f->naddr] = strdup(addr)) == NULL) {
		if (na != NULL)
			f->addrs = na;
		queue_forward_fail(f, SQ_TEMPFAIL, "out of memory (#4.3.0)");
		return;
	}
	f->addrs = na;
	f->naddr++;
}

static void	queue_forward_store(struct qforward *);

/* mda's request: have lka resolve every address. */
static void
queue_forward(uint64_t reqid, uint64_t origid, const char *sender,
    const char *dtaddr)
{
	struct qforward	*f;
	struct mailaddr	 ma;
	struct mproc	*p = peers[PROC_LKA];
	size_t		 i;

	if ((f = queue_forward_find(reqid)) == NULL || f->started)
		fatalx("queue: forward request %" PRIu64 " without "
		    "addresses", reqid);
	f->started = 1;
	f->origid = origid;
	if (strlcpy(f->env.sender, sender, sizeof(f->env.sender)) >=
	    sizeof(f->env.sender) || strlcpy(f->dtaddr, dtaddr,
	    sizeof(f->dtaddr)) >= sizeof(f->dtaddr) ||
	    strchr(dtaddr, '\n') != NULL)
		queue_forward_fail(f, SQ_PERMFAIL, "forward sender or "
		    "recipient too long (#5.1.7)");
	for (i = 0; i < f->naddr; i++)
		if (mailaddr_parse(f->addrs[i], strlen(f->addrs[i]),
		    &ma) == -1)
			queue_forward_fail(f, SQ_PERMFAIL, "invalid forward "
			    "address (#5.1.3)");
	if (f->naddr == 0 || p == NULL)
		queue_forward_fail(f, SQ_TEMPFAIL, "cannot resolve the "
		    "forward addresses (#4.3.0)");
	if (f->status != SQ_OK) {
		queue_forward_reply(f, f->status, f->text, 0);
		queue_forward_free(f);
		return;
	}
	queue_fwd_reqid += f->naddr;
	f->lkabase = (queue_fwd_reqid - f->naddr) | FWD_REQBIT;
	for (i = 0; i < f->naddr; i++) {
		(void)mailaddr_parse(f->addrs[i], strlen(f->addrs[i]), &ma);
		m_create(p, IMSG_LKA_RESOLVE, 0, -1);
		m_add_u64(p, f->lkabase + i);
		m_add_mailaddr(p, &ma);
		m_close(p);
	}
}

/*
 * An answer from lka for a forward: 1 when it was one (handled), 0 when
 * it belongs to the scheduler.
 */
static int
queue_forward_lka(struct imsg *imsg)
{
	struct qforward	*f;
	struct msg	 m;
	struct dest	 dest, *nd;
	const char	*reply;
	char		 text[SQ_ERROR_MAX];
	uint64_t	 reqid;
	size_t		 i;
	int		 status;

	m_msg(&m, imsg);
	m_get_u64(&m, &reqid);
	if ((reqid & (FWD_REQBIT | QUEUE_SUBMIT_REQID)) != FWD_REQBIT)
		return 0;
	TAILQ_FOREACH(f, &queue_forwards, entry)
		if (f->started && reqid >= f->lkabase &&
		    reqid - f->lkabase < f->naddr)
			break;
	if (f == NULL)
		fatalx("queue: lka answered unknown forward %" PRIu64, reqid);
	i = reqid - f->lkabase;
	if (imsg->hdr.type == IMSG_LKA_RCPT_DEST) {
		m_get_dest(&m, &dest);
		m_end(&m);
		if (f->ndest >= QUEUE_RCPT_MAX ||
		    (nd = reallocarray(f->dests, f->ndest + 1,
		    sizeof(*nd))) == NULL) {
			queue_forward_fail(f, SQ_TEMPFAIL, "out of memory "
			    "(#4.3.0)");
			return 1;
		}
		f->dests = nd;
		f->dests[f->ndest++] = dest;
		return 1;
	}
	m_get_int(&m, &status);
	m_get_string(&m, &reply);
	m_end(&m);
	if (status != SQ_OK) {
		(void)snprintf(text, sizeof(text), "forward to %s: %s",
		    f->addrs[i], reply[0] != '\0' ? reply :
		    status == SQ_PERMFAIL ? "refused (#5.1.1)" :
		    "cannot resolve (#4.3.0)");
		queue_forward_fail(f, status == SQ_PERMFAIL ? SQ_PERMFAIL :
		    SQ_TEMPFAIL, text);
	}
	if (++f->nanswered < f->naddr)
		return 1;
	if (f->status == SQ_OK && f->ndest == 0)
		queue_forward_fail(f, SQ_TEMPFAIL, "no destination for the "
		    "forward (#4.3.0)");
	if (f->status != SQ_OK) {
		log_info("queue: msg %" PRIu64 ": forward from %s failed: %s",
		    f->origid, f->dtaddr, f->text);
		queue_forward_reply(f, f->status, f->text, 0);
		queue_forward_free(f);
		return 1;
	}
	queue_forward_store(f);
	return 1;
}

static void
queue_forward_committed(struct queue_job *job)
{
	struct qforward	*f = job->arg;

	if (job->op.status != SQ_OK) {
		log_warnx("queue: msg %" PRIu64 ": the forward could not be "
		    "stored", f->origid);
		queue_forward_reply(f, SQ_TEMPFAIL, "the forward could not "
		    "be stored (#4.3.0)", 0);
		queue_forward_free(f);
		return;
	}
	log_info("forward msg %" PRIu64 " qp %" PRIu64 " from %s",
	    f->origid, f->env.id, f->dtaddr);
	queue_forward_reply(f, SQ_OK, "", f->env.id);
	queue_stats.messages_in++;
	queue_sched_add(&f->env, 1);	/* takes the rcpts */
	f->env.rcpts = NULL;
	f->env.nrcpt = 0;
	queue_forward_free(f);
}

/*
 * Write the new message, "Delivered-To: dtaddr" and the original's
 * octets (as qmail-local forwards), and commit it with the next batch:
 * mda hears of it only once it is durable.
 */
static void
queue_forward_store(struct qforward *f)
{
	char		 buf[65536], dtline[SQ_ADDR_MAX + 32];
	ssize_t		 n;
	time_t		 now = time(NULL);
	uint64_t	 id;
	int		 fd = -1, in = -1, len;

	if (queue_fs_create(&id, &fd) != SQ_OK)
		goto fail;
	if ((in = queue_fs_open_message(f->origid)) == -1) {
		log_warn("queue: msg %" PRIu64 ": forward", f->origid);
		goto fail;
	}
	len = snprintf(dtline, sizeof(dtline), "Delivered-To: %s\n",
	    f->dtaddr);
	if (len < 0 || (size_t)len >= sizeof(dtline) ||
	    queue_fs_write(fd, dtline, len) == -1)
		goto fail;
	while ((n = queue_fs_read(in, buf, sizeof(buf))) > 0)
		if (queue_fs_write(fd, buf, n) == -1)
			goto fail;
	if (n == -1) {
		log_warn("queue: msg %" PRIu64 ": forward", f->origid);
		goto fail;
	}
	close(in);
	in = -1;
	close(fd);
	fd = -1;

	if ((f->env.rcpts = reallocarray(NULL, f->ndest,
	    sizeof(*f->env.rcpts))) == NULL) {
		queue_fs_abort(id);
		goto fail;
	}
	envelope_made(&f->env, id, now, conf != NULL &&
	    conf->hostname[0] != '\0' ? conf->hostname : "localhost",
	    "FORWARD", f->dests, f->ndest);
	f->job.op.type = QUEUE_OP_COMMIT;
	f->job.op.env = &f->env;
	f->job.done = queue_forward_committed;
	f->job.arg = f;
	f->job.reqid = f->reqid;
	queue_submit(&f->job);
	return;

 fail:
	if (in != -1)
		close(in);
	if (fd != -1) {
		close(fd);
		queue_fs_abort(id);
	}
	queue_forward_reply(f, SQ_TEMPFAIL, "cannot write the forwarded "
	    "message (#4.3.0)", 0);
	queue_forward_free(f);
}

void
queue_main(void)
{
	struct queue_recovery	 rec;
	size_t			 nmsg, npending;

	log_procinit("queue");
	evtimer_set(&queue_flush_ev, queue_flush, NULL);
	if (queue_fs_init() == -1)
		fatalx("queue: cannot set up the spool");
	queue_sched_init();
	if (queue_fs_recover(queue_sched_recovered, NULL, &rec) == -1)
		fatalx("queue: cannot read the spool");
	if (rec.incoming || rec.quarantined || rec.orphans)
		log_info("queue: recovery removed %zu unfinished and %zu "
		    "unacknowledged messages, quarantined %zu", rec.incoming,
		    rec.orphans, rec.quarantined);
	nmsg = queue_sched_count(&npending);
	log_info("queue: %zu messages in the queue, %zu recipients pending",
	    nmsg, npending);

	if (peers[PROC_PARENT] != NULL)
		peers[PROC_PARENT]->handler = queue_dispatch_parent;
	if (peers[PROC_SMTP] != NULL)
		peers[PROC_SMTP]->handler = queue_dispatch_smtp;
	if (peers[PROC_LKA] != NULL)
		peers[PROC_LKA]->handler = queue_dispatch_lka;
	if (peers[PROC_MDA] != NULL)
		peers[PROC_MDA]->handler = queue_dispatch_deliver;
	if (peers[PROC_MTA] != NULL)
		peers[PROC_MTA]->handler = queue_dispatch_deliver;
	if (peers[PROC_CONTROL] != NULL)
		peers[PROC_CONTROL]->handler = queue_dispatch_control;
	proc_loop_init();
	queue_sched_run();
	event_dispatch();
	fatalx("queue: event loop ended");
}
