/*
 * The control process: accepts sqmailctl connections on the control
 * socket, checks who is asking, and forwards each request to the process
 * that can answer it, relaying the answer back.
 *
 * A client connection carries one request at a time.  Each gets an id
 * (ctlid) that rides with the request to the other processes; their
 * replies (IMSG_CTL_LINE ..., IMSG_CTL_END) come back with it and are
 * relayed to the connection with that id, or dropped when it has gone.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "imsg.h"
#include "log.h"
#include "mailaddr.h"
#include "mproc.h"
#include "msg.h"
#include "proc.h"
#include "sqmail.h"

/* Connections at once. */
#define CONTROL_CLIENTS_MAX	64
/* Payload octets of the largest request. */
#define CONTROL_REQUEST_MAX	64
/* Lines queued to one client, at most. */
#define CONTROL_QUEUED_MAX	(1 << 20)
/* Seconds a client may leave its answer unread before we drop it. */
#define CONTROL_STALL		60
/* Seconds to deliver a last answer before closing. */
#define CONTROL_LINGER		5
/* Supplementary groups of a client we look at, at most. */
#define CONTROL_GROUPS_MAX	65536
/* Recipients of one sendmail submission, at most. */
#define CONTROL_SUBMIT_RCPTS	1000
/* A submitted message, when the configuration sets no limit. */
#define CONTROL_SUBMIT_SIZE	(1ULL << 30)
/* Ids of the parent's offline pickups, as ctlids: never a client's. */
#define CONTROL_PICKUP_BIT	0x80000000U
/* Pickups in flight at once (the parent keeps fewer). */
#define CONTROL_PICKUPS_MAX	64
/* The seals a submitted memory file must carry: its content is fixed. */
#define CONTROL_SUBMIT_SEALS	(F_SEAL_SEAL | F_SEAL_SHRINK | \
				    F_SEAL_GROW | F_SEAL_WRITE)

/*
 * One client connection.  id is the ctlid of its requests; pending the
 * request being served (0: none); waiting has bit 1 << proc set for each
 * process whose END is still to come, worst and error collect the worst
 * status and the first error text among those ENDs.  closing: stop
 * reading, close once the answer is out.
 */
/* The recipients of a submission, as they come one message each. */
struct ctl_rcpts {
	struct mailaddr		*v;
	size_t			 n;
	int			 bad;		/* one did not parse, or too many */
	char			 why[256];	/* when bad */
};

struct ctl_conn {
	TAILQ_ENTRY(ctl_conn)	 entry;
	uint32_t		 id;
	struct imsgbuf		 ibuf;
	struct event		 ev;
	struct event		 ev_linger;
	struct event		 ev_stall;
	uid_t			 uid;
	gid_t			 gid;
	pid_t			 pid;
	int			 allowed;
	int			 closing;
	uint32_t		 pending;
	uint32_t		 waiting;
	int			 worst;
	char			 error[256];
	struct ctl_rcpts	 rcpts;		/* of the submission to come */
};
TAILQ_HEAD(ctl_connlist, ctl_conn);

static struct ctl_connlist	 control_conns =
				    TAILQ_HEAD_INITIALIZER(control_conns);
static size_t			 control_nconns;
static uint64_t			 control_nrequests;
static uint32_t			 control_nextid = 1;
static struct event		 control_ev_accept;
static struct event		 control_ev_resume;
static jmp_buf			 control_jmp;

/*
 * A file of the offline directory the parent hands over: its recipients
 * until IMSG_PICKUP comes, then the submission queue is storing.  id is
 * the parent's, and the ctlid toward queue is id | CONTROL_PICKUP_BIT.
 */
struct ctl_pickup {
	TAILQ_ENTRY(ctl_pickup)	 entry;
	uint32_t		 id;
	int			 submitted;
	uid_t			 uid;
	struct ctl_rcpts	 rcpts;
};
static TAILQ_HEAD(, ctl_pickup)	 control_pickups =
				    TAILQ_HEAD_INITIALIZER(control_pickups);
static size_t			 control_npickups;

static void	control_pickup_done(uint32_t, int, const char *);
static void	control_rcpts_clear(struct ctl_rcpts *);

/* Who answers show stats. */
static const enum proc_type	 control_stats_procs[] = {
	PROC_SMTP, PROC_LKA, PROC_QUEUE, PROC_MDA
};
#define CONTROL_NSTATS	(sizeof(control_stats_procs) / \
			    sizeof(control_stats_procs[0]))

/* Who hears a verbosity change. */
static const enum proc_type	 control_log_procs[] = {
	PROC_PARENT, PROC_SMTP, PROC_LKA, PROC_QUEUE, PROC_MDA, PROC_MTA
};
#define CONTROL_NLOG	(sizeof(control_log_procs) / \
			    sizeof(control_log_procs[0]))

static const char *
control_reqname(uint32_t type)
{
	switch (type) {
	case IMSG_CTL_SHOW_QUEUE:
		return "show queue";
	case IMSG_CTL_SHOW_STATS:
		return "show stats";
	case IMSG_CTL_SHOW_PROCS:
		return "show processes";
	case IMSG_CTL_SHOW_ROUTES:
		return "show routes";
	case IMSG_CTL_SHOW_HOSTS:
		return "show hosts";
	case IMSG_CTL_SCHEDULE:
		return "schedule";
	case IMSG_CTL_REMOVE:
		return "remove";
	case IMSG_CTL_PAUSE_REQ:
		return "pause";
	case IMSG_CTL_RESUME_REQ:
		return "resume";
	case IMSG_CTL_LOG:
		return "log";
	case IMSG_CTL_RELOAD:
		return "reload";
	case IMSG_CTL_STOP:
		return "stop";
	case IMSG_CTL_SUBMIT:
		return "submit";
	default:
		return "unknown";
	}
}

/*
 * Client connections
 */

static struct ctl_conn *
control_conn_byid(uint32_t id)
{
	struct ctl_conn	*c;

	TAILQ_FOREACH(c, &control_conns, entry)
		if (c->id == id)
			return c;
	return NULL;
}

static uint32_t
control_newid(void)
{
	uint32_t	 id;

	/* Ids are not reused until they wrap: a late reply finds nobody. */
	do {
		/* The high half is the parent's pickups'. */
		if (control_nextid & CONTROL_PICKUP_BIT)
			control_nextid = 1;
		id = control_nextid++;
	} while (id == 0 || control_conn_byid(id) != NULL);
	return id;
}

static void
control_conn_free(struct ctl_conn *c)
{
	log_debug("control: client %u closed", c->id);
	event_del(&c->ev);
	evtimer_del(&c->ev_linger);
	evtimer_del(&c->ev_stall);
	imsg_clear(&c->ibuf);
	close(c->ibuf.fd);
	TAILQ_REMOVE(&control_conns, c, entry);
	control_nconns--;
	control_rcpts_clear(&c->rcpts);
	free(c);
}

static void	 control_conn_event(int, short, void *);

/*
 * A client with output queued must take some of it every CONTROL_STALL
 * seconds; progress (again) restarts the clock.
 */
static void
control_conn_stall_arm(struct ctl_conn *c, int progress)
{
	struct timeval	 tv = { CONTROL_STALL, 0 };

	if (progress || evtimer_pending(&c->ev_stall, NULL) == 0)
		evtimer_add(&c->ev_stall, &tv);
}

/*
 * Arm the connection's event for what it is waiting for, or free it
 * when it is closing and everything it had to say is out.  Called last
 * in every path that touched c: c may be gone after it.
 */
static void
control_conn_update(struct ctl_conn *c)
{
	short	 events = 0;

	if (c->closing && c->ibuf.w.queued == 0) {
		control_conn_free(c);
		return;
	}
	if (!c->closing)
		events |= EV_READ;
	if (c->ibuf.w.queued > 0) {
		events |= EV_WRITE;
		control_conn_stall_arm(c, 0);
	} else
		evtimer_del(&c->ev_stall);
	event_del(&c->ev);
	event_set(&c->ev, c->ibuf.fd, events, control_conn_event, c);
	event_add(&c->ev, NULL);
}

static void
control_conn_linger(int fd, short ev, void *arg)
{
	struct ctl_conn	*c = arg;

	log_debug("control: client %u did not take its answer", c->id);
	control_conn_free(c);
}

static void
control_conn_stalled(int fd, short ev, void *arg)
{
	struct ctl_conn	*c = arg;

	log_warnx("control: client %u (uid %u): answer unread for %d "
	    "seconds, dropped", c->id, (unsigned)c->uid, CONTROL_STALL);
	control_conn_free(c);
}

/* Stop reading; close once what is queued is out (or after a while). */
static void
control_conn_close(struct ctl_conn *c)
{
	struct timeval	 tv = { CONTROL_LINGER, 0 };

	if (c->closing)
		return;
	c->closing = 1;
	evtimer_add(&c->ev_linger, &tv);
}

/* Give up on c now: nothing more goes out to it. */
static void
control_conn_drop(struct ctl_conn *c, const char *why)
{
	log_warnx("control: client %u (uid %u): %s, dropped", c->id,
	    (unsigned)c->uid, why);
	msgbuf_clear(&c->ibuf.w);
	control_conn_close(c);
}

/* Queue one message to a client: u32 ctlid, [int status], string text. */
static void
control_conn_send(struct ctl_conn *c, uint32_t type, int status,
    const char *text)
{
	struct ibuf	*b;
	size_t		 len;
	int32_t		 st = status;

	if (c->closing)
		return;
	if (c->ibuf.w.queued >= CONTROL_QUEUED_MAX) {
		control_conn_drop(c, "not reading its answers");
		return;
	}
	len = sizeof(c->id) + strlen(text) + 1;
	if (type == IMSG_CTL_END)
		len += sizeof(st);
	if ((b = imsg_create(&c->ibuf, type, 0, 0, len)) == NULL ||
	    imsg_add(b, &c->id, sizeof(c->id)) == -1 ||
	    (type == IMSG_CTL_END &&
	    imsg_add(b, &st, sizeof(st)) == -1) ||
	    imsg_add(b, text, strlen(text) + 1) == -1) {
		/* imsg_add frees the message when it fails. */
		control_conn_drop(c, "cannot queue an answer");
		return;
	}
	imsg_close(&c->ibuf, b);
}

static void
control_conn_line(struct ctl_conn *c, const char *line)
{
	control_conn_send(c, IMSG_CTL_LINE, 0, line);
}

/* The END of the request in progress: the connection is free again. */
static void
control_conn_finish(struct ctl_conn *c, int status, const char *text)
{
	c->pending = 0;
	c->waiting = 0;
	control_conn_send(c, IMSG_CTL_END, status, text);
}

/*
 * Authorisation: root, the user who started sqmaild, or a member of the
 * control group (primary or supplementary, as the kernel saw the peer
 * when it connected).
 */
static int
control_allowed(int fd, uid_t uid, gid_t gid)
{
	gid_t		 small[64], *groups = small;
	socklen_t	 len;
	size_t		 i, n;
	int		 found = 0;

	if (uid == 0 || uid == sq_owner_uid)
		return 1;
	if (sq_control_gid == (gid_t)-1)
		return 0;
	if (gid == sq_control_gid)
		return 1;
#ifdef SO_PEERGROUPS
	len = sizeof(small);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == -1) {
		if (errno != ERANGE) {
			log_warn("control: SO_PEERGROUPS");
			return 0;
		}
		n = len / sizeof(gid_t);
		if (n == 0 || n > CONTROL_GROUPS_MAX)
			return 0;
		if ((groups = reallocarray(NULL, n, sizeof(gid_t))) == NULL) {
			log_warn("control: supplementary groups");
			return 0;
		}
		len = n * sizeof(gid_t);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups,
		    &len) == -1) {
			log_warn("control: SO_PEERGROUPS");
			free(groups);
			return 0;
		}
	}
	n = len / sizeof(gid_t);
	for (i = 0; i < n; i++)
		if (groups[i] == sq_control_gid)
			found = 1;
	if (groups != small)
		free(groups);
#endif
	return found;
}

/* Over the limit: say so without a connection struct, and hang up. */
static void
control_refuse(int fd)
{
	static struct imsgbuf	 ibuf;
	struct ibuf		*b;
	uint32_t		 id = 0;
	int32_t		 status = SQ_TEMPFAIL;
	static const char	 text[] = "too many control clients";

	imsg_init(&ibuf, fd);
	if ((b = imsg_create(&ibuf, IMSG_CTL_END, 0, 0, 64)) != NULL &&
	    imsg_add(b, &id, sizeof(id)) != -1 &&
	    imsg_add(b, &status, sizeof(status)) != -1 &&
	    imsg_add(b, text, sizeof(text)) != -1) {
		imsg_close(&ibuf, b);
		/* Non-blocking, once: best effort. */
		(void)msgbuf_write(&ibuf.w);
	}
	imsg_clear(&ibuf);
	close(fd);
}

static void
control_accept_resume(int fd, short ev, void *arg)
{
	event_add(&control_ev_accept, NULL);
}

static void
control_accept(int lfd, short ev, void *arg)
{
	struct sockaddr_storage	 ss;
	struct ucred		 cred;
	struct ctl_conn		*c;
	struct timeval		 tv = { 1, 0 };
	socklen_t		 len;
	int			 fd;

	len = sizeof(ss);
	if ((fd = accept4(lfd, (struct sockaddr *)&ss, &len,
	    SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1) {
		switch (errno) {
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			/* Out of something: wait a second, do not spin. */
			log_warn("control: accept");
			event_del(&control_ev_accept);
			evtimer_add(&control_ev_resume, &tv);
			break;
		case EAGAIN:
		case EINTR:
		case ECONNABORTED:
			break;
		default:
			log_warn("control: accept");
			break;
		}
		return;
	}

	if (control_nconns >= CONTROL_CLIENTS_MAX) {
		log_warnx("control: %d clients connected already, refusing "
		    "another", CONTROL_CLIENTS_MAX);
		control_refuse(fd);
		return;
	}

	len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 ||
	    len != sizeof(cred)) {
		log_warn("control: SO_PEERCRED");
		close(fd);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("control: client");
		close(fd);
		return;
	}
	c->id = control_newid();
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->pid = cred.pid;
	c->allowed = control_allowed(fd, cred.uid, cred.gid);
	imsg_init(&c->ibuf, fd);
	event_set(&c->ev, fd, EV_READ, control_conn_event, c);
	evtimer_set(&c->ev_linger, control_conn_linger, c);
	evtimer_set(&c->ev_stall, control_conn_stalled, c);
	TAILQ_INSERT_TAIL(&control_conns, c, entry);
	control_nconns++;
	log_debug("control: client %u connected: uid %u gid %u pid %ld%s",
	    c->id, (unsigned)c->uid, (unsigned)c->gid, (long)c->pid,
	    c->allowed ? "" : " (not allowed)");
	control_conn_update(c);
}

/*
 * Requests
 */

static __attribute__((__noreturn__)) void
control_bad_request(const char *what)
{
	longjmp(control_jmp, 1);
}

/*
 * Read a client's request into req, with the getters failing into a
 * -1 here rather than into fatalx(): a client is not a trusted peer.
 */
static int
control_parse(struct imsg *imsg, struct ctl_request *req)
{
	void		(*saved)(const char *) = m_error;
	struct msg	 m;
	const char	*s;
	uint32_t	 ctlid;

	if (imsg->fd != -1) {
		close(imsg->fd);
		imsg->fd = -1;
		return -1;
	}
	if (imsg->hdr.len - IMSG_HEADER_SIZE > CONTROL_REQUEST_MAX)
		return -1;
	memset(req, 0, sizeof(*req));
	req->type = imsg->hdr.type;

	if (setjmp(control_jmp) != 0) {
		m_error = saved;
		return -1;
	}
	m_error = control_bad_request;
	m_msg(&m, imsg);
	m_get_u32(&m, &ctlid);	/* the client's: ours replaces it */
	switch (req->type) {
	case IMSG_CTL_SHOW_QUEUE:
	case IMSG_CTL_SHOW_STATS:
	case IMSG_CTL_SHOW_PROCS:
	case IMSG_CTL_SHOW_HOSTS:
	case IMSG_CTL_RELOAD:
	case IMSG_CTL_STOP:
		break;
	case IMSG_CTL_SCHEDULE:
	case IMSG_CTL_REMOVE:
		m_get_u64(&m, &req->msgid);
		break;
	case IMSG_CTL_SHOW_ROUTES:
		m_get_string(&m, &s);
		if (strlcpy(req->arg, s, sizeof(req->arg)) >=
		    sizeof(req->arg)) {
			m_error = saved;
			return -1;
		}
		break;
	case IMSG_CTL_PAUSE_REQ:
	case IMSG_CTL_RESUME_REQ:
		m_get_string(&m, &s);
		/* Too long for any target: left "", an unknown target. */
		if (strlcpy(req->arg, s, sizeof(req->arg)) >=
		    sizeof(req->arg))
			req->arg[0] = '\0';
		break;
	case IMSG_CTL_LOG:
		m_get_int(&m, &req->verbose);
		break;
	default:
		m_error = saved;
		return -1;
	}
	m_end(&m);
	m_error = saved;
	return 0;
}

/* Send a request on to proc; its END finishes it. */
static void
control_forward(struct ctl_conn *c, enum proc_type proc,
    const struct ctl_request *req)
{
	struct mproc	*p = peers[proc];
	char		 err[64];

	if (p == NULL) {
		(void)snprintf(err, sizeof(err), "no channel to %s",
		    proc_name(proc));
		control_conn_finish(c, SQ_TEMPFAIL, err);
		return;
	}
	m_create(p, req->type, 0, -1);
	m_add_u32(p, c->id);
	if (req->type == IMSG_CTL_SCHEDULE || req->type == IMSG_CTL_REMOVE)
		m_add_u64(p, req->msgid);
	if (req->type == IMSG_CTL_SHOW_ROUTES)
		m_add_string(p, req->arg);
	m_close(p);
	c->pending = req->type;
	c->waiting = 1U << proc;
	c->worst = SQ_OK;
	c->error[0] = '\0';
}

static void
control_stats_end(struct ctl_conn *c)
{
	char	 line[64];

	(void)snprintf(line, sizeof(line), "control.clients %zu",
	    control_nconns);
	control_conn_line(c, line);
	(void)snprintf(line, sizeof(line), "control.requests %" PRIu64,
	    control_nrequests);
	control_conn_line(c, line);
	control_conn_finish(c, c->worst, c->worst == SQ_OK ? "" : c->error);
}

static void
control_stats(struct ctl_conn *c)
{
	struct mproc	*p;
	size_t		 i;

	c->pending = IMSG_CTL_SHOW_STATS;
	c->waiting = 0;
	c->worst = SQ_OK;
	c->error[0] = '\0';
	for (i = 0; i < CONTROL_NSTATS; i++) {
		if ((p = peers[control_stats_procs[i]]) == NULL) {
			c->worst = SQ_TEMPFAIL;
			if (c->error[0] == '\0')
				(void)snprintf(c->error, sizeof(c->error),
				    "no channel to %s",
				    proc_name(control_stats_procs[i]));
			continue;
		}
		m_create(p, IMSG_CTL_SHOW_STATS, 0, -1);
		m_add_u32(p, c->id);
		m_close(p);
		c->waiting |= 1U << control_stats_procs[i];
	}
	if (c->waiting == 0)
		control_stats_end(c);
}

static int
control_target(const char *name, enum proc_type *proc)
{
	if (strcmp(name, "smtp") == 0)
		*proc = PROC_SMTP;
	else if (strcmp(name, "mda") == 0)
		*proc = PROC_MDA;
	else if (strcmp(name, "mta") == 0)
		*proc = PROC_MTA;
	else
		return -1;
	return 0;
}

static void
control_pause(struct ctl_conn *c, const struct ctl_request *req)
{
	enum proc_type	 proc;
	int		 pause = req->type == IMSG_CTL_PAUSE_REQ;

	if (control_target(req->arg, &proc) == -1) {
		control_conn_finish(c, SQ_PERMFAIL, "unknown target");
		return;
	}
	if (peers[proc] == NULL) {
		control_conn_finish(c, SQ_TEMPFAIL, "no channel to target");
		return;
	}
	m_compose(peers[proc], pause ? IMSG_CTL_PAUSE : IMSG_CTL_RESUME, 0,
	    -1, NULL, 0);
	log_info("control: %s %s (uid %u)", pause ? "pause" : "resume",
	    req->arg, (unsigned)c->uid);
	control_conn_finish(c, SQ_OK, "");
}

static void
control_log(struct ctl_conn *c, const struct ctl_request *req)
{
	struct mproc	*p;
	size_t		 i;

	if (req->verbose < 0) {
		control_conn_finish(c, SQ_PERMFAIL, "invalid verbosity");
		return;
	}
	for (i = 0; i < CONTROL_NLOG; i++) {
		if ((p = peers[control_log_procs[i]]) == NULL)
			continue;
		m_create(p, IMSG_CTL_VERBOSE, 0, -1);
		m_add_int(p, req->verbose);
		m_close(p);
	}
	log_setverbose(req->verbose);
	log_info("control: log %s (uid %u)",
	    req->verbose ? "verbose" : "brief", (unsigned)c->uid);
	control_conn_finish(c, SQ_OK, "");
}

/*
 * sendmail(8) submissions, open to every user: the uid is the one the
 * kernel gave at accept (SO_PEERCRED), never anything the client says.
 *
 * An address as sendmail takes it: a mailbox, or a bare local part that
 * gets our host name; null_ok: "" and "<>" are the null path.
 */
static int
control_submit_addr(const char *s, struct mailaddr *a, int null_ok)
{
	size_t	 len = strlen(s);

	memset(a, 0, sizeof(*a));
	if (null_ok && (len == 0 || strcmp(s, "<>") == 0))
		return 0;
	if (len >= 2 && s[0] == '<' && s[len - 1] == '>') {
		s++;
		len -= 2;
	}
	if (memchr(s, '@', len) != NULL)
		return mailaddr_parse(s, len, a);
	if (len == 0 || len > SQ_LOCALPART_MAX ||
	    !mailaddr_is_dotstring(s, len))
		return -1;
	memcpy(a->user, s, len);
	a->user[len] = '\0';
	if (strlcpy(a->domain, conf->hostname, sizeof(a->domain)) >=
	    sizeof(a->domain))
		return -1;
	return 0;
}

static void
control_rcpts_clear(struct ctl_rcpts *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* Add recipient s; the first one refused makes the whole list bad. */
static void
control_rcpts_add(struct ctl_rcpts *r, const char *s)
{
	struct mailaddr	*v;
	size_t		 ncap;

	if (r->bad)
		return;
	if (r->n >= CONTROL_SUBMIT_RCPTS) {
		r->bad = 1;
		(void)snprintf(r->why, sizeof(r->why), "more than %d "
		    "recipients", CONTROL_SUBMIT_RCPTS);
		return;
	}
	if ((r->n & (r->n - 1)) == 0) {
		ncap = r->n ? r->n * 2 : 1;
		if ((v = reallocarray(r->v, ncap, sizeof(*v))) == NULL) {
			r->bad = 1;
			(void)strlcpy(r->why, "out of memory", sizeof(r->why));
			return;
		}
		r->v = v;
	}
	if (control_submit_addr(s, &r->v[r->n], 0) == -1) {
		r->bad = 1;
		/* What the user typed, cut, controls made harmless below. */
		(void)snprintf(r->why, sizeof(r->why), "bad recipient "
		    "address: %.200s", s);
		return;
	}
	r->n++;
}

static void
control_submit_rcpt(struct ctl_conn *c, struct imsg *imsg)
{
	struct msg	 m;
	const char	*s;
	uint32_t	 ctlid;

	m_msg(&m, imsg);
	m_get_u32(&m, &ctlid);
	m_get_string(&m, &s);
	m_end(&m);
	control_rcpts_add(&c->rcpts, s);
}

/* Whether fd is a sealed memory file of an acceptable size. */
static const char *
control_submit_fdcheck(int fd)
{
	struct stat	 st;
	uint64_t	 max;
	int		 seals;

	max = conf->max_message_size ? conf->max_message_size :
	    CONTROL_SUBMIT_SIZE;
	if (fd == -1)
		return "no message";
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
		return "the message is not a regular file";
	if ((seals = fcntl(fd, F_GET_SEALS)) == -1 ||
	    (seals & CONTROL_SUBMIT_SEALS) != CONTROL_SUBMIT_SEALS)
		return "the message file is not sealed";
	if ((uint64_t)st.st_size > max)
		return "message too large";
	return NULL;
}

/*
 * Why a submission (recipients r, sender text s, message fd) cannot go to
 * queue, or NULL with *sender parsed.
 */
static const char *
control_submit_check(const struct ctl_rcpts *r, const char *s,
    struct mailaddr *sender, int fd)
{
	if (r->bad)
		return r->why;
	if (r->n == 0)
		return "no recipient";
	if (control_submit_addr(s, sender, 1) == -1)
		return "bad sender address";
	return control_submit_fdcheck(fd);
}

/* Hand a checked submission to queue under id; the fd goes with it. */
static void
control_submit_send(struct mproc *q, uint32_t id, uint32_t uid,
    uint32_t pid, const struct ctl_rcpts *r, const struct mailaddr *sender,
    int fd)
{
	size_t	 i;

	for (i = 0; i < r->n; i++) {
		m_create(q, IMSG_CTL_SUBMIT_RCPT, 0, -1);
		m_add_u32(q, id);
		m_add_mailaddr(q, &r->v[i]);
		m_close(q);
	}
	m_create(q, IMSG_CTL_SUBMIT, 0, fd);
	m_add_u32(q, id);
	m_add_u32(q, uid);
	m_add_u32(q, pid);
	m_add_mailaddr(q, sender);
	m_close(q);
}

static void
control_submit(struct ctl_conn *c, struct imsg *imsg)
{
	struct mproc	*q = peers[PROC_QUEUE];
	struct msg	 m;
	struct mailaddr	 sender;
	const char	*s, *why;
	uint32_t	 ctlid;
	int		 fd = imsg->fd;

	imsg->fd = -1;
	m_msg(&m, imsg);
	m_get_u32(&m, &ctlid);
	m_get_string(&m, &s);
	m_end(&m);
	if (c->pending != 0)
		why = "busy";
	else if ((why = control_submit_check(&c->rcpts, s, &sender,
	    fd)) == NULL && q == NULL)
		why = "no channel to queue";
	if (why != NULL) {
		char	 text[256];
		size_t	 j;

		(void)strlcpy(text, why, sizeof(text));
		for (j = 0; text[j] != '\0'; j++)
			if ((unsigned char)text[j] < ' ' || text[j] == 0x7f)
				text[j] = '?';
		log_warnx("control: uid %u: submission refused: %s",
		    (unsigned)c->uid, text);
		if (fd != -1)
			close(fd);
		control_rcpts_clear(&c->rcpts);
		c->error[0] = '\0';
		control_conn_send(c, IMSG_CTL_END, q == NULL ? SQ_TEMPFAIL :
		    SQ_PERMFAIL, text);
		return;
	}
	control_submit_send(q, c->id, (uint32_t)c->uid, (uint32_t)c->pid,
	    &c->rcpts, &sender, fd);
	log_debug("control: submission from uid %u, %zu recipients",
	    (unsigned)c->uid, c->rcpts.n);
	control_rcpts_clear(&c->rcpts);
	c->pending = IMSG_CTL_SUBMIT;
	c->waiting = 1U << PROC_QUEUE;
	c->worst = SQ_OK;
	c->error[0] = '\0';
}

/* queue's answer once a submission is durable (reqid: the ctlid). */
static void
control_submit_done(struct mproc *p, struct imsg *imsg)
{
	struct ctl_conn	*c;
	struct msg	 m;
	char		 line[64];
	uint64_t	 reqid, msgid;
	int		 status;

	m_msg(&m, imsg);
	m_get_u64(&m, &reqid);
	m_get_int(&m, &status);
	m_get_msgid(&m, &msgid);
	m_end(&m);
	if (reqid <= UINT32_MAX && (reqid & CONTROL_PICKUP_BIT)) {
		(void)snprintf(line, sizeof(line), "queued as %" PRIu64,
		    msgid);
		control_pickup_done(reqid, status, status == SQ_OK ? line :
		    "the queue could not store the message");
		return;
	}
	if (reqid > UINT32_MAX || (c = control_conn_byid(reqid)) == NULL ||
	    c->closing || c->pending != IMSG_CTL_SUBMIT) {
		log_debug("control: submission answer for client %" PRIu64
		    " dropped", reqid);
		return;
	}
	if (status == SQ_OK) {
		(void)snprintf(line, sizeof(line), "queued as %" PRIu64,
		    msgid);
		control_conn_line(c, line);
		control_conn_finish(c, SQ_OK, "");
	} else
		control_conn_finish(c, status == SQ_PERMFAIL ? SQ_PERMFAIL :
		    SQ_TEMPFAIL, "the queue could not store the message");
	control_conn_update(c);
}

/*
 * The offline directory: the parent read a file some user left there
 * while sqmaild was down, and hands over its envelope and message with
 * the uid that owns the file.  Checked as a client's submission is, then
 * submitted to queue the same way; the parent hears IMSG_PICKUP back.
 */
static struct ctl_pickup *
control_pickup_find(uint32_t id)
{
	struct ctl_pickup	*pk;

	TAILQ_FOREACH(pk, &control_pickups, entry)
		if (pk->id == id)
			return pk;
	return NULL;
}

static void
control_pickup_free(struct ctl_pickup *pk)
{
	TAILQ_REMOVE(&control_pickups, pk, entry);
	control_npickups--;
	control_rcpts_clear(&pk->rcpts);
	free(pk);
}

static void
control_pickup_answer(uint32_t id, int status, const char *text)
{
	struct mproc	*p = peers[PROC_PARENT];

	m_create(p, IMSG_PICKUP, 0, -1);
	m_add_u32(p, id);
	m_add_int(p, status);
	m_add_string(p, text);
	m_close(p);
}

/* queue's answer about a pickup (id with CONTROL_PICKUP_BIT). */
static void
control_pickup_done(uint32_t ctlid, int status, const char *text)
{
	struct ctl_pickup	*pk;
	uint32_t		 id = ctlid & ~CONTROL_PICKUP_BIT;

	if ((pk = control_pickup_find(id)) == NULL || !pk->submitted) {
		log_debug("control: answer for pickup %u dropped", id);
		return;
	}
	if (status != SQ_OK && status != SQ_PERMFAIL)
		status = SQ_TEMPFAIL;
	control_pickup_answer(id, status, text);
	control_pickup_free(pk);
}

static void
control_pickup(struct mproc *p, struct imsg *imsg)
{
	struct mproc		*q = peers[PROC_QUEUE];
	struct ctl_pickup	*pk;
	struct mailaddr		 sender;
	struct msg		 m;
	const char		*s, *why;
	uint32_t		 id, uid = 0;
	int			 fd = imsg->fd;

	imsg->fd = -1;
	m_msg(&m, imsg);
	m_get_u32(&m, &id);
	if (imsg->hdr.type == IMSG_PICKUP)
		m_get_u32(&m, &uid);
	m_get_string(&m, &s);
	m_end(&m);
	if (id == 0 || (id & CONTROL_PICKUP_BIT))
		fatalx("control: bad pickup id %u from the parent", id);
	if ((pk = control_pickup_find(id)) == NULL) {
		if (control_npickups >= CONTROL_PICKUPS_MAX ||
		    (pk = calloc(1, sizeof(*pk))) == NULL) {
			/* The parent tries again at its next scan. */
			if (imsg->hdr.type == IMSG_PICKUP) {
				if (fd != -1)
					close(fd);
				control_pickup_answer(id, SQ_TEMPFAIL,
				    "too many offline files at once");
			}
			return;
		}
		pk->id = id;
		TAILQ_INSERT_TAIL(&control_pickups, pk, entry);
		control_npickups++;
	}
	if (pk->submitted)
		fatalx("control: pickup %u submitted twice", id);
	if (imsg->hdr.type == IMSG_PICKUP_RCPT) {
		if (fd != -1)
			close(fd);
		control_rcpts_add(&pk->rcpts, s);
		return;
	}

	pk->uid = uid;
	why = control_submit_check(&pk->rcpts, s, &sender, fd);
	if (why != NULL || q == NULL) {
		if (fd != -1)
			close(fd);
		control_pickup_answer(id, why != NULL ? SQ_PERMFAIL :
		    SQ_TEMPFAIL, why != NULL ? why : "no channel to queue");
		control_pickup_free(pk);
		return;
	}
	/* No process: a file. */
	control_submit_send(q, id | CONTROL_PICKUP_BIT, uid, 0, &pk->rcpts,
	    &sender, fd);
	log_debug("control: offline file %u of uid %u, %zu recipients", id,
	    (unsigned)uid, pk->rcpts.n);
	control_rcpts_clear(&pk->rcpts);
	pk->submitted = 1;
}

static void
control_dispatch_client(struct ctl_conn *c, struct imsg *imsg)
{
	struct ctl_request	 req;

	control_nrequests++;
	/* The only requests open to everyone, with their own parser. */
	if (imsg->hdr.type == IMSG_CTL_SUBMIT_RCPT ||
	    imsg->hdr.type == IMSG_CTL_SUBMIT) {
		void	(*saved)(const char *) = m_error;

		if (setjmp(control_jmp) != 0) {
			m_error = saved;
			if (imsg->fd != -1) {
				close(imsg->fd);
				imsg->fd = -1;
			}
			log_warnx("control: client %u (uid %u): malformed "
			    "submission", c->id, (unsigned)c->uid);
			control_conn_finish(c, SQ_PERMFAIL,
			    "malformed request");
			control_conn_close(c);
			return;
		}
		m_error = control_bad_request;
		if (imsg->hdr.type == IMSG_CTL_SUBMIT_RCPT) {
			if (imsg->fd != -1) {
				close(imsg->fd);
				imsg->fd = -1;
			}
			control_submit_rcpt(c, imsg);
		} else
			control_submit(c, imsg);
		m_error = saved;
		return;
	}
	if (control_parse(imsg, &req) == -1) {
		log_warnx("control: client %u (uid %u): malformed request "
		    "(type %u, %zu octets)", c->id, (unsigned)c->uid,
		    imsg->hdr.type, (size_t)imsg->hdr.len - IMSG_HEADER_SIZE);
		control_conn_finish(c, SQ_PERMFAIL, "malformed request");
		control_conn_close(c);
		return;
	}
	if (!c->allowed) {
		log_warnx("control: uid %u: %s: permission denied",
		    (unsigned)c->uid, control_reqname(req.type));
		control_conn_send(c, IMSG_CTL_END, SQ_PERMFAIL,
		    "permission denied");
		return;
	}
	if (c->pending != 0) {
		/* The answer to the first one is still coming: not finish. */
		control_conn_send(c, IMSG_CTL_END, SQ_PERMFAIL, "busy");
		return;
	}

	switch (req.type) {
	case IMSG_CTL_SHOW_QUEUE:
		log_debug("control: show queue (uid %u)", (unsigned)c->uid);
		control_forward(c, PROC_QUEUE, &req);
		break;
	case IMSG_CTL_SCHEDULE:
	case IMSG_CTL_REMOVE:
		if (req.msgid == 0)
			log_info("control: %s all (uid %u)",
			    control_reqname(req.type), (unsigned)c->uid);
		else
			log_info("control: %s %" PRIu64 " (uid %u)",
			    control_reqname(req.type), req.msgid,
			    (unsigned)c->uid);
		control_forward(c, PROC_QUEUE, &req);
		break;
	case IMSG_CTL_SHOW_ROUTES:
		log_debug("control: show routes %s (uid %u)", req.arg,
		    (unsigned)c->uid);
		control_forward(c, PROC_LKA, &req);
		break;
	case IMSG_CTL_SHOW_HOSTS:
		log_debug("control: show hosts (uid %u)", (unsigned)c->uid);
		control_forward(c, PROC_MTA, &req);
		break;
	case IMSG_CTL_SHOW_PROCS:
		log_debug("control: show processes (uid %u)",
		    (unsigned)c->uid);
		control_forward(c, PROC_PARENT, &req);
		break;
	case IMSG_CTL_RELOAD:
	case IMSG_CTL_STOP:
		log_info("control: %s (uid %u)", control_reqname(req.type),
		    (unsigned)c->uid);
		control_forward(c, PROC_PARENT, &req);
		break;
	case IMSG_CTL_SHOW_STATS:
		log_debug("control: show stats (uid %u)", (unsigned)c->uid);
		control_stats(c);
		break;
	case IMSG_CTL_PAUSE_REQ:
	case IMSG_CTL_RESUME_REQ:
		control_pause(c, &req);
		break;
	case IMSG_CTL_LOG:
		control_log(c, &req);
		break;
	}
}

static void
control_conn_event(int fd, short ev, void *arg)
{
	struct ctl_conn	*c = arg;
	struct imsg	 imsg;
	ssize_t		 n;
	int		 r;

	if (ev & EV_WRITE) {
		r = msgbuf_write(&c->ibuf.w);
		if (r == 0 || (r == -1 && errno != EAGAIN)) {
			/* Gone, or broken: nobody is left to tell. */
			control_conn_free(c);
			return;
		}
		if (r == 1)
			control_conn_stall_arm(c, 1);
	}
	if ((ev & EV_READ) && !c->closing) {
		n = imsg_read(&c->ibuf);
		if (n == -1 && errno != EAGAIN) {
			if (errno == EBADMSG || errno == ENOBUFS) {
				control_conn_finish(c, SQ_PERMFAIL,
				    "malformed request");
				control_conn_close(c);
			} else {
				control_conn_free(c);
				return;
			}
		} else if (n == 0) {
			control_conn_free(c);
			return;
		}
		while (!c->closing) {
			if ((n = imsg_get(&c->ibuf, &imsg)) == 0)
				break;
			if (n == -1) {
				log_warnx("control: client %u (uid %u): "
				    "malformed message", c->id,
				    (unsigned)c->uid);
				control_conn_finish(c, SQ_PERMFAIL,
				    "malformed request");
				control_conn_close(c);
				break;
			}
			control_dispatch_client(c, &imsg);
			imsg_free(&imsg);
		}
	}
	control_conn_update(c);
}

/*
 * Replies from the processes
 */

static void
control_reply(struct mproc *p, struct imsg *imsg)
{
	struct ctl_conn	*c;
	struct msg	 m;
	const char	*text;
	uint32_t	 ctlid, bit = 1U << p->proc;
	int		 status = SQ_OK;

	m_msg(&m, imsg);
	m_get_u32(&m, &ctlid);
	if (imsg->hdr.type == IMSG_CTL_END)
		m_get_int(&m, &status);
	m_get_string(&m, &text);
	m_end(&m);

	if (ctlid & CONTROL_PICKUP_BIT) {
		/* queue refused an offline file's message. */
		if (imsg->hdr.type == IMSG_CTL_END && p->proc == PROC_QUEUE)
			control_pickup_done(ctlid, status == SQ_OK ?
			    SQ_TEMPFAIL : status, text);
		return;
	}
	if ((c = control_conn_byid(ctlid)) == NULL || c->closing ||
	    (c->waiting & bit) == 0) {
		/* The client went away; one line in the log is enough. */
		if (imsg->hdr.type == IMSG_CTL_END)
			log_debug("control: answer from %s for client %u "
			    "dropped", p->name, ctlid);
		return;
	}
	if (imsg->hdr.type == IMSG_CTL_LINE) {
		control_conn_line(c, text);
		control_conn_update(c);
		return;
	}

	if (status != SQ_OK && status != SQ_TEMPFAIL &&
	    status != SQ_PERMFAIL) {
		log_warnx("control: %s answered with status %d", p->name,
		    status);
		status = SQ_TEMPFAIL;
	}
	c->waiting &= ~bit;
	if (status > c->worst)
		c->worst = status;
	if (status != SQ_OK && c->error[0] == '\0') {
		/* A cut error text is still the error: length unchecked. */
		if (c->pending == IMSG_CTL_SHOW_STATS)
			(void)snprintf(c->error, sizeof(c->error), "%s: %s",
			    p->name, text[0] != '\0' ? text : "failed");
		else
			(void)strlcpy(c->error, text, sizeof(c->error));
	}
	if (c->waiting == 0) {
		if (c->pending == IMSG_CTL_SHOW_STATS)
			control_stats_end(c);
		else
			control_conn_finish(c, c->worst, c->error);
	}
	control_conn_update(c);
}

static void
control_dispatch_parent(struct mproc *p, struct imsg *imsg)
{
	switch (proc_common_imsg(imsg)) {
	case PROC_IMSG_RELOADED:
		log_debug("control: new configuration in force");
		return;
	case PROC_IMSG_DONE:
		return;
	}
	switch (imsg->hdr.type) {
	case IMSG_CTL_LINE:
	case IMSG_CTL_END:
		control_reply(p, imsg);
		break;
	case IMSG_PICKUP_RCPT:
	case IMSG_PICKUP:
		control_pickup(p, imsg);
		break;
	default:
		fatalx("control: unexpected imsg %u from parent",
		    imsg->hdr.type);
	}
}

static void
control_dispatch_proc(struct mproc *p, struct imsg *imsg)
{
	switch (imsg->hdr.type) {
	case IMSG_QUEUE_COMMIT:
		if (p->proc != PROC_QUEUE)
			break;
		control_submit_done(p, imsg);
		return;
	case IMSG_CTL_LINE:
	case IMSG_CTL_END:
		control_reply(p, imsg);
		return;
	default:
		break;
	}
	fatalx("control: unexpected imsg %u from %s", imsg->hdr.type,
	    p->name);
}

void
control_main(void)
{
	int	 i, flags;

	log_procinit("control");
	if (sq_control_fd == -1)
		fatalx("control: no control socket");
	if ((flags = fcntl(sq_control_fd, F_GETFL)) == -1 ||
	    fcntl(sq_control_fd, F_SETFL, flags | O_NONBLOCK) == -1)
		fatal("control: control socket");

	for (i = 0; i < PROC_COUNT; i++) {
		if (peers[i] == NULL || i == PROC_CONTROL)
			continue;
		peers[i]->handler = i == PROC_PARENT ?
		    control_dispatch_parent : control_dispatch_proc;
	}

	event_set(&control_ev_accept, sq_control_fd, EV_READ | EV_PERSIST,
	    control_accept, NULL);
	event_add(&control_ev_accept, NULL);
	evtimer_set(&control_ev_resume, control_accept_resume, NULL);

	proc_loop_init();
	event_dispatch();
	fatalx("control: event loop ended");
}
