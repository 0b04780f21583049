/*
 * The smtp process: owns the listening sockets the parent opened, accepts
 * connections into sessions (smtp_session.c), and routes the replies of
 * lka and queue back to them.  Control may pause accepting, ask for
 * counters and change the log level.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mproc.h"
#include "msg.h"
#include "proc.h"
#include "smtp.h"
#include "sqmail.h"

#define SMTP_ACCEPT_BATCH	64	/* connections taken per wake-up */
#define SMTP_ACCEPT_BACKOFF	1	/* seconds off after EMFILE & co */

static TAILQ_HEAD(, smtp_listener) smtp_listeners =
    TAILQ_HEAD_INITIALIZER(smtp_listeners);
static int		 smtp_paused;	/* by control */
static int		 smtp_backoff;	/* out of descriptors */
static struct event	 smtp_ev_backoff;

static void	smtp_dispatch_parent(struct mproc *, struct imsg *);
static void	smtp_dispatch_lka(struct mproc *, struct imsg *);
static void	smtp_dispatch_queue(struct mproc *, struct imsg *);
static void	smtp_dispatch_control(struct mproc *, struct imsg *);
static void	smtp_listen_init(void);
static void	smtp_tls_reload(void);
static void	smtp_listen_enable(int);
static void	smtp_accept(int, short, void *);
static void	smtp_accept_resume(int, short, void *);
static void	smtp_show_stats(struct mproc *, uint32_t);

void
smtp_main(void)
{
	if (peers[PROC_PARENT] == NULL || peers[PROC_LKA] == NULL ||
	    peers[PROC_QUEUE] == NULL || peers[PROC_CONTROL] == NULL)
		fatalx("smtp: a channel is missing");
	peers[PROC_PARENT]->handler = smtp_dispatch_parent;
	peers[PROC_LKA]->handler = smtp_dispatch_lka;
	peers[PROC_QUEUE]->handler = smtp_dispatch_queue;
	peers[PROC_CONTROL]->handler = smtp_dispatch_control;

	smtp_listen_init();
	evtimer_set(&smtp_ev_backoff, smtp_accept_resume, NULL);
	proc_loop_init();
	smtp_listen_enable(1);
	event_dispatch();
	exit(0);
}

/*
 * Keep our own copy of the listeners: a reload replaces conf, but
 * listeners change only at restart (the parent warns when they differ).
 */
static void
smtp_listen_init(void)
{
	struct listener		*l;
	struct smtp_listener	*sl;

	TAILQ_FOREACH(l, &conf->listeners, entry) {
		if (l->fd == -1)
			continue;
		if (l->proto != LPROTO_SMTP && l->proto != LPROTO_SUBMISSION &&
		    l->proto != LPROTO_SMTPS) {
			log_warnx("smtp: listener %s: protocol not supported "
			    "yet", l->name);
			close(l->fd);
			l->fd = -1;
			continue;
		}
		if ((sl = calloc(1, sizeof(*sl))) == NULL)
			fatal("smtp: calloc");
		sl->proto = l->proto;
		sl->fd = l->fd;
		if (strlcpy(sl->name, l->name, sizeof(sl->name)) >=
		    sizeof(sl->name))
			log_debug("smtp: listener name %s truncated", l->name);
		sl->tls = l->tls;
		sl->npki = l->npki;
		memcpy(sl->pki, l->pki, sizeof(sl->pki));
		(void)strlcpy(sl->auth_table, l->auth_table,
		    sizeof(sl->auth_table));
		sl->auth_plaintext = l->auth_plaintext;
		sl->auth_required = l->auth_required;
		(void)strlcpy(sl->auth_cert, l->auth_cert,
		    sizeof(sl->auth_cert));
		sl->auth_sender_check = l->auth_sender_check;
		(void)strlcpy(sl->auth_senders, l->auth_senders,
		    sizeof(sl->auth_senders));
		/* No context: smtps refuses, STARTTLS is not offered. */
		(void)smtp_tls_listener(sl);
		event_set(&sl->ev, sl->fd, EV_READ | EV_PERSIST, smtp_accept,
		    sl);
		TAILQ_INSERT_TAIL(&smtp_listeners, sl, entry);
		log_debug("smtp: listening on %s", sl->name);
	}
	if (TAILQ_EMPTY(&smtp_listeners))
		log_warnx("smtp: no SMTP listener configured");
	/* libtls has the keys now; our copies go. */
	config_pki_clear(conf);
}

/*
 * Whether the listeners using users table tname offer CRAM-MD5: lka tells
 * us at start and after each reload, since only lka reads tables.
 */
void
smtp_listeners_auth_cram(const char *tname, int cram)
{
	struct smtp_listener	*sl;

	TAILQ_FOREACH(sl, &smtp_listeners, entry) {
		if (strcmp(sl->auth_table, tname) != 0 ||
		    sl->auth_cram == (cram != 0))
			continue;
		sl->auth_cram = cram != 0;
		log_info("smtp: listener %s: CRAM-MD5 %s", sl->name,
		    sl->auth_cram ? "offered" : "no longer offered");
	}
}

/* Reload: new sessions get renewed certificates, open ones keep theirs. */
static void
smtp_tls_reload(void)
{
	struct smtp_listener	*sl;

	TAILQ_FOREACH(sl, &smtp_listeners, entry)
		if (smtp_tls_listener(sl) == 0 && sl->tlsctx != NULL)
			log_debug("smtp: listener %s: TLS context renewed",
			    sl->name);
	config_pki_clear(conf);
}

static void
smtp_listen_enable(int on)
{
	struct smtp_listener	*sl;

	TAILQ_FOREACH(sl, &smtp_listeners, entry) {
		if (on)
			event_add(&sl->ev, NULL);
		else
			event_del(&sl->ev);
	}
}

static void
smtp_accept_resume(int fd, short ev, void *arg)
{
	smtp_backoff = 0;
	if (!smtp_paused)
		smtp_listen_enable(1);
}

static void
smtp_accept(int fd, short ev, void *arg)
{
	struct smtp_listener	*sl = arg;
	struct sockaddr_storage	 ss;
	struct timeval		 tv;
	socklen_t		 len;
	int			 s, i, on = 1;

	for (i = 0; i < SMTP_ACCEPT_BATCH; i++) {
		len = sizeof(ss);
		s = accept4(fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s == -1) {
			switch (errno) {
			case EAGAIN:
			case EINTR:
			case ECONNABORTED:
				return;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				/* The backlog holds them until we have room. */
				log_warn("smtp: accept on %s", sl->name);
				smtp_backoff = 1;
				smtp_listen_enable(0);
				tv.tv_sec = SMTP_ACCEPT_BACKOFF;
				tv.tv_usec = 0;
				evtimer_add(&smtp_ev_backoff, &tv);
				return;
			default:
				log_warn("smtp: accept on %s", sl->name);
				return;
			}
		}
		if (setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &on,
		    sizeof(on)) == -1)
			log_debug("smtp: TCP_NODELAY: %s", strerror(errno));
		smtp_session_accept(s, &ss, len, sl);
	}
}

static void
smtp_dispatch_parent(struct mproc *p, struct imsg *imsg)
{
	switch (proc_common_imsg(imsg)) {
	case PROC_IMSG_RELOADED:
		smtp_tls_reload();
		log_debug("smtp: new configuration in force");
		break;
	case PROC_IMSG_NONE:
		fatalx("smtp: unexpected imsg %u from parent",
		    imsg->hdr.type);
	}
}

static void
smtp_dispatch_lka(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	struct dest	 dest;
	const char	*reply, *key;
	uint64_t	 reqid;
	int		 status;

	switch (imsg->hdr.type) {
	case IMSG_LKA_MAIL:
		m_msg(&m, imsg);
		m_get_u64(&m, &reqid);
		m_get_int(&m, &status);
		m_get_string(&m, &reply);
		m_end(&m);
		smtp_session_lka_mail(reqid, status, reply);
		break;
	case IMSG_LKA_RCPT_DEST:
		m_msg(&m, imsg);
		m_get_u64(&m, &reqid);
		m_get_dest(&m, &dest);
		m_end(&m);
		smtp_session_lka_dest(reqid, &dest);
		break;
	case IMSG_LKA_RCPT:
		m_msg(&m, imsg);
		m_get_u64(&m, &reqid);
		m_get_int(&m, &status);
		m_get_string(&m, &reply);
		m_end(&m);
		smtp_session_lka_rcpt(reqid, status, reply);
		break;
	case IMSG_LKA_AUTH:
	case IMSG_LKA_AUTH_CRAM:
		m_msg(&m, imsg);
		m_get_u64(&m, &reqid);
		m_get_int(&m, &status);
		m_end(&m);
		smtp_session_lka_auth(reqid, status);
		break;
	case IMSG_LKA_AUTH_CERT:
		m_msg(&m, imsg);
		m_get_u64(&m, &reqid);
		m_get_int(&m, &status);
		m_get_string(&m, &reply);
		m_get_string(&m, &key);
		m_end(&m);
		smtp_session_lka_cert(reqid, status, reply, key);
		break;
	case IMSG_LKA_AUTH_MECHS:
		m_msg(&m, imsg);
		m_get_string(&m, &reply);
		m_get_int(&m, &status);
		m_end(&m);
		smtp_listeners_auth_cram(reply, status);
		break;
	default:
		fatalx("smtp: unexpected imsg %u from lka", imsg->hdr.type);
	}
}

static void
smtp_dispatch_queue(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	uint64_t	 reqid, msgid;
	int		 status;

	switch (imsg->hdr.type) {
	case IMSG_QUEUE_CREATE:
		m_msg(&m, imsg);
		m_get_u64(&m, &reqid);
		m_get_int(&m, &status);
		m_get_msgid(&m, &msgid);
		m_end(&m);
		/* The descriptor, if any, now belongs to the session code. */
		smtp_session_queue_create(reqid, status, msgid, imsg->fd);
		break;
	case IMSG_QUEUE_COMMIT:
		m_msg(&m, imsg);
		m_get_u64(&m, &reqid);
		m_get_int(&m, &status);
		m_get_msgid(&m, &msgid);
		m_end(&m);
		smtp_session_queue_commit(reqid, status, msgid);
		break;
	default:
		fatalx("smtp: unexpected imsg %u from queue", imsg->hdr.type);
	}
}

static void
smtp_show_stats(struct mproc *p, uint32_t ctlid)
{
	size_t	 i;
	const struct {
		const char	*name;
		uint64_t	 value;
	} counters[] = {
		{ "smtp.sessions.current", smtp_stats.current },
		{ "smtp.sessions.total", smtp_stats.total },
		{ "smtp.sessions.refused", smtp_stats.refused },
		{ "smtp.messages.accepted", smtp_stats.accepted },
		{ "smtp.messages.rejected", smtp_stats.rejected },
	};

	for (i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		ctl_line(p, ctlid, "%s %llu", counters[i].name,
		    (unsigned long long)counters[i].value);
	ctl_end(p, ctlid, SQ_OK, "");
}

static void
smtp_dispatch_control(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	uint32_t	 ctlid;

	if (proc_common_imsg(imsg) != PROC_IMSG_NONE)
		return;
	switch (imsg->hdr.type) {
	case IMSG_CTL_PAUSE:
		if (!smtp_paused)
			log_info("smtp: paused: not accepting connections");
		smtp_paused = 1;
		smtp_listen_enable(0);
		break;
	case IMSG_CTL_RESUME:
		if (smtp_paused)
			log_info("smtp: resumed: accepting connections");
		smtp_paused = 0;
		if (!smtp_backoff)
			smtp_listen_enable(1);
		break;
	case IMSG_CTL_SHOW_STATS:
		m_msg(&m, imsg);
		m_get_u32(&m, &ctlid);
		m_end(&m);
		smtp_show_stats(p, ctlid);
		break;
	default:
		fatalx("smtp: unexpected imsg %u from control",
		    imsg->hdr.type);
	}
}
