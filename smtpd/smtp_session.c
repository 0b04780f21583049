/*
 * One SMTP server session (RFC 5321) on the event loop: reading command
 * lines, asking lka about senders and recipients, streaming DATA into the
 * descriptor queue hands out, and replying strictly in order.
 *
 * A session that waits for lka or queue stops parsing; what the client
 * pipelined stays buffered (bounded) and is parsed once the reply came.
 * Replies are appended to the output buffer and written once per batch.
 * Replies from lka and queue carry the session id; they are looked up in
 * a tree, so a reply for a session that has gone is dropped safely.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <bsd/sys/tree.h>
#include <errno.h>
#include <event.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mailaddr.h"
#include "mproc.h"
#include "msg.h"
#include "proc.h"
#include "smtp.h"
#include "sqmail.h"

#define SMTP_INBUF_MAX		(16 * 1024)	/* input held while busy */
#define SMTP_OUTBUF_MAX		(16 * 1024)	/* unsent replies: stop reading */
#define SMTP_DATA_INBUF_MAX	(64 * 1024)	/* input read per wake-up, DATA */
#define SMTP_DBUF_SIZE		(64 * 1024)	/* DATA write buffer */
#define SMTP_DEST_FACTOR	10	/* destinations per allowed recipient */
#define SMTP_DEST_DEFAULT	10000	/* ... when recipients are unlimited */

enum smtp_state {
	S_CONNECTED = 0,	/* greeting sent */
	S_HELO,			/* HELO/EHLO done, no transaction */
	S_MAIL,			/* sender accepted */
	S_RCPT,			/* one recipient or more accepted */
	S_DATA			/* 354 sent: reading the message */
};

enum smtp_wait {
	W_NONE = 0,
	W_LKA_MAIL,
	W_LKA_RCPT,
	W_QUEUE_CREATE,
	W_QUEUE_COMMIT
};

#define SF_ESMTP	0x01	/* EHLO, not HELO */
#define SF_EOF		0x02	/* the client closed its side */
#define SF_CLOSING	0x04	/* last reply queued: close once written */
#define SF_DISCARD	0x08	/* skipping an overlong command line */
#define SF_DEAD		0x10	/* I/O failed or no memory: drop now */
#define SF_OVERFLOW	0x20	/* this RCPT expanded too far */
#define SF_NOMEM	0x40	/* this RCPT lost a destination */

struct smtp_dest {
	TAILQ_ENTRY(smtp_dest)	 entry;
	struct dest		 dest;
};
TAILQ_HEAD(smtp_destq, smtp_dest);

struct smtp_ipcount {
	RB_ENTRY(smtp_ipcount)	 entry;
	int			 family;
	uint8_t			 addr[16];
	uint32_t		 count;
};

struct smtp_session {
	RB_ENTRY(smtp_session)	 entry;
	uint64_t		 id;
	int			 fd;
	struct smtp_listener	*l;
	struct sockaddr_storage	 ss;
	char			 ip[64];	/* numeric, for logs */
	struct smtp_ipcount	*ipc;
	struct event		 ev_rd;
	struct event		 ev_wr;
	struct evbuffer		*in;
	struct evbuffer		*out;
	enum smtp_state		 state;
	enum smtp_wait		 wait;
	uint32_t		 flags;
	const char		*why;		/* Close::CONNECT::<why> */
	uint32_t		 errors;
	uint32_t		 nmsg;		/* messages queued */
	char			 helo[SQ_DOMAIN_MAX + 1];

	/* The transaction. */
	struct mailaddr		 sender;
	struct mailaddr		 rcpt;		/* the one lka is checking */
	char			 first[SQ_ADDR_MAX];	/* first accepted RCPT */
	uint32_t		 nrcpt;		/* accepted RCPT commands */
	size_t			 ndest;
	size_t			 npending;
	struct smtp_destq	 dests;		/* accepted destinations */
	struct smtp_destq	 pending;	/* of the RCPT being checked */

	/* DATA: only while a message is being received. */
	uint64_t		 msgid;
	int			 datafd;
	char			*dbuf;
	size_t			 dlen;
	uint64_t		 written;
	int			 werr;
	struct smtp_data	 data;
};

RB_HEAD(smtp_sessions, smtp_session);
RB_HEAD(smtp_iptree, smtp_ipcount);

struct smtp_stats		 smtp_stats;
static struct smtp_sessions	 smtp_sessions = RB_INITIALIZER(&smtp_sessions);
static struct smtp_iptree	 smtp_ips = RB_INITIALIZER(&smtp_ips);

static int	smtp_session_cmp(struct smtp_session *, struct smtp_session *);
static int	smtp_ip_cmp(struct smtp_ipcount *, struct smtp_ipcount *);
RB_PROTOTYPE(smtp_sessions, smtp_session, entry, smtp_session_cmp);
RB_PROTOTYPE(smtp_iptree, smtp_ipcount, entry, smtp_ip_cmp);

static void	smtp_ip_key(const struct sockaddr_storage *,
		    struct smtp_ipcount *);
static struct smtp_session *smtp_session_find(uint64_t);
static uint64_t	smtp_newid(void);
static void	smtp_refuse(int, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));
static void	smtp_log(struct smtp_session *, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));
static void	smtp_reply(struct smtp_session *, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));
static void	smtp_reply_peer(struct smtp_session *, int, const char *);
static void	smtp_close(struct smtp_session *, const char *);
static void	smtp_error(struct smtp_session *);
static void	smtp_read(int, short, void *);
static void	smtp_write(int, short, void *);
static void	smtp_run(struct smtp_session *);
static int	smtp_process(struct smtp_session *);
static int	smtp_getline(struct smtp_session *, char *, size_t *);
static void	smtp_events(struct smtp_session *);
static void	smtp_destroy(struct smtp_session *, const char *);
static void	smtp_tx_reset(struct smtp_session *);
static void	smtp_dests_free(struct smtp_destq *);
static void	smtp_command(struct smtp_session *, const char *, size_t);
static void	smtp_cmd_helo(struct smtp_session *, struct smtp_cmd *, int);
static void	smtp_cmd_mail(struct smtp_session *, struct smtp_cmd *);
static void	smtp_cmd_rcpt(struct smtp_session *, struct smtp_cmd *);
static void	smtp_cmd_data(struct smtp_session *, struct smtp_cmd *);
static int	smtp_data_input(struct smtp_session *);
static void	smtp_data_flush(struct smtp_session *);
static void	smtp_data_end(struct smtp_session *);
static void	smtp_data_abort(struct smtp_session *);
static int	smtp_received(struct smtp_session *);
static const char *smtp_condition(const char *, int);

RB_GENERATE(smtp_sessions, smtp_session, entry, smtp_session_cmp);
RB_GENERATE(smtp_iptree, smtp_ipcount, entry, smtp_ip_cmp);

static int
smtp_session_cmp(struct smtp_session *a, struct smtp_session *b)
{
	if (a->id < b->id)
		return -1;
	return a->id > b->id;
}

static int
smtp_ip_cmp(struct smtp_ipcount *a, struct smtp_ipcount *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}

static void
smtp_ip_key(const struct sockaddr_storage *ss, struct smtp_ipcount *key)
{
	memset(key, 0, sizeof(*key));
	key->family = ss->ss_family;
	if (ss->ss_family == AF_INET)
		memcpy(key->addr, &((const struct sockaddr_in *)ss)->sin_addr,
		    4);
	else if (ss->ss_family == AF_INET6)
		memcpy(key->addr,
		    &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
}

static struct smtp_session *
smtp_session_find(uint64_t id)
{
	struct smtp_session	 key;

	key.id = id;
	return RB_FIND(smtp_sessions, &smtp_sessions, &key);
}

/* Random high half, a counter below: unique, and not guessable. */
static uint64_t
smtp_newid(void)
{
	static uint32_t	 counter;
	uint64_t	 id;

	do {
		id = ((uint64_t)arc4random() << 32) | ++counter;
	} while (id == 0 || smtp_session_find(id) != NULL);
	return id;
}

/* A last line to a client we do not take: best effort, then close. */
static void
smtp_refuse(int fd, const char *fmt, ...)
{
	char	 buf[SQ_REPLY_MAX];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n > 0) {
		if ((size_t)n > sizeof(buf) - 3)
			n = sizeof(buf) - 3;
		memcpy(buf + n, "\r\n", 2);
		/* Best effort: the socket is closed next either way. */
		if (write(fd, buf, n + 2) == -1)
			log_debug("smtp: refusal not sent: %s", strerror(errno));
	}
	close(fd);
}

static void
smtp_log(struct smtp_session *s, const char *fmt, ...)
{
	char	 buf[1536];
	va_list	 ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_info("smtp %016llx: %s", (unsigned long long)s->id, buf);
}

void
smtp_session_accept(int fd, const struct sockaddr_storage *ss,
    socklen_t sslen, struct smtp_listener *l)
{
	struct smtp_session	*s;
	struct smtp_ipcount	 key, *ipc;
	char			 ip[64];
	uint64_t		 id;

	if (getnameinfo((const struct sockaddr *)ss, sslen, ip, sizeof(ip),
	    NULL, 0, NI_NUMERICHOST) != 0)
		(void)strlcpy(ip, "unknown", sizeof(ip));
	id = smtp_newid();

	if (conf->max_sessions != 0 &&
	    smtp_stats.current >= conf->max_sessions) {
		smtp_stats.refused++;
		log_info("smtp %016llx: Reject::CONNECT::Too_Many_Sessions: "
		    "S:%s L:%s", (unsigned long long)id, ip, l->name);
		smtp_refuse(fd, "421 4.3.2 %s Too many connections, try again "
		    "later", conf->hostname);
		return;
	}
	smtp_ip_key(ss, &key);
	ipc = RB_FIND(smtp_iptree, &smtp_ips, &key);
	if (conf->max_sessions_per_ip != 0 && ipc != NULL &&
	    ipc->count >= conf->max_sessions_per_ip) {
		smtp_stats.refused++;
		log_info("smtp %016llx: Reject::CONNECT::Too_Many_From_IP: "
		    "S:%s L:%s", (unsigned long long)id, ip, l->name);
		smtp_refuse(fd, "421 4.7.0 %s Too many connections from your "
		    "address, try again later", conf->hostname);
		return;
	}

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->in = evbuffer_new()) == NULL ||
	    (s->out = evbuffer_new()) == NULL ||
	    (ipc == NULL && (ipc = calloc(1, sizeof(*ipc))) == NULL)) {
		log_warn("smtp: session for %s", ip);
		if (s != NULL) {
			if (s->in != NULL)
				evbuffer_free(s->in);
			if (s->out != NULL)
				evbuffer_free(s->out);
			free(s);
		}
		smtp_refuse(fd, "421 4.3.2 %s Out of resources, try again "
		    "later", conf->hostname);
		return;
	}
	if (ipc->count == 0) {
		memcpy(ipc, &key, sizeof(key));
		RB_INSERT(smtp_iptree, &smtp_ips, ipc);
	}
	ipc->count++;

	s->id = id;
	s->fd = fd;
	s->l = l;
	memcpy(&s->ss, ss, sizeof(s->ss));
	(void)strlcpy(s->ip, ip, sizeof(s->ip));
	s->ipc = ipc;
	s->datafd = -1;
	TAILQ_INIT(&s->dests);
	TAILQ_INIT(&s->pending);
	event_set(&s->ev_rd, fd, EV_READ | EV_PERSIST, smtp_read, s);
	event_set(&s->ev_wr, fd, EV_WRITE | EV_PERSIST, smtp_write, s);
	RB_INSERT(smtp_sessions, &smtp_sessions, s);
	smtp_stats.current++;
	smtp_stats.total++;

	smtp_log(s, "Accept::CONNECT::Session: S:%s L:%s", s->ip, l->name);
	smtp_reply(s, "220 %s ESMTP sqmail", conf->hostname);
	smtp_run(s);
}

static void
smtp_destroy(struct smtp_session *s, const char *why)
{
	if (s->datafd != -1) {
		/* A commit in progress completes; anything else is dropped. */
		if (s->wait != W_QUEUE_COMMIT)
			smtp_data_abort(s);
		else {
			close(s->datafd);
			s->datafd = -1;
		}
	}
	smtp_log(s, "Close::CONNECT::%s: S:%s H:%s messages %u errors %u",
	    why, s->ip, s->helo, s->nmsg, s->errors);
	event_del(&s->ev_rd);
	event_del(&s->ev_wr);
	close(s->fd);
	evbuffer_free(s->in);
	evbuffer_free(s->out);
	free(s->dbuf);
	smtp_dests_free(&s->dests);
	smtp_dests_free(&s->pending);
	RB_REMOVE(smtp_sessions, &smtp_sessions, s);
	if (--s->ipc->count == 0) {
		RB_REMOVE(smtp_iptree, &smtp_ips, s->ipc);
		free(s->ipc);
	}
	smtp_stats.current--;
	free(s);
}

/* Queue one reply line; CRLF is added here. */
static void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	char	 buf[SQ_REPLY_MAX];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0) {
		s->flags |= SF_DEAD;
		return;
	}
	if ((size_t)n > sizeof(buf) - 3)
		n = sizeof(buf) - 3;	/* cut: still one well-formed line */
	log_debug("smtp %016llx: > %s", (unsigned long long)s->id, buf);
	memcpy(buf + n, "\r\n", 2);
	if (evbuffer_add(s->out, buf, n + 2) == -1)
		s->flags |= SF_DEAD;
}

/*
 * A reply line (or lines, LF-separated) from lka.  Sent as given when it
 * is a well-formed 4xx/5xx reply in printable ASCII, else a generic one.
 */
static void
smtp_reply_peer(struct smtp_session *s, int status, const char *text)
{
	const char	*p, *e;
	size_t		 len, i;
	int		 good = 1;

	for (p = text; *p != '\0' && good; p = *e ? e + 1 : e) {
		e = strchr(p, '\n');
		if (e == NULL)
			e = p + strlen(p);
		len = e - p;
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len < 3 || len > SQ_REPLY_MAX - 3 ||
		    (p[0] != '4' && p[0] != '5') ||
		    p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9' ||
		    (len > 3 && p[3] != ' ' && p[3] != '-') ||
		    (status == SQ_TEMPFAIL && p[0] != '4') ||
		    (status == SQ_PERMFAIL && p[0] != '5'))
			good = 0;
		for (i = 0; i < len && good; i++)
			if ((unsigned char)p[i] < 0x20 ||
			    (unsigned char)p[i] > 0x7e)
				good = 0;
	}
	if (text[0] == '\0')
		good = 0;
	if (!good) {
		if (status == SQ_PERMFAIL)
			smtp_reply(s, "550 5.7.1 Rejected by policy");
		else
			smtp_reply(s, "451 4.3.0 Temporary failure, try "
			    "again later");
		return;
	}
	for (p = text; *p != '\0'; p = *e ? e + 1 : e) {
		e = strchr(p, '\n');
		if (e == NULL)
			e = p + strlen(p);
		len = e - p;
		if (len > 0 && p[len - 1] == '\r')
			len--;
		smtp_reply(s, "%.*s", (int)len, p);
	}
}

/* The last reply is queued: close once it is written. */
static void
smtp_close(struct smtp_session *s, const char *why)
{
	if (!(s->flags & SF_CLOSING))
		s->why = why;
	s->flags |= SF_CLOSING;
}

/* A protocol error: after max_errors of them, say goodbye. */
static void
smtp_error(struct smtp_session *s)
{
	s->errors++;
	if (conf->max_errors == 0 || s->errors < conf->max_errors ||
	    (s->flags & SF_CLOSING))
		return;
	smtp_log(s, "Reject::SNTX::Too_Many_Errors: S:%s H:%s errors %u",
	    s->ip, s->helo, s->errors);
	smtp_reply(s, "421 4.7.0 %s Too many errors, closing connection",
	    conf->hostname);
	smtp_close(s, "Too_Many_Errors");
}

static void
smtp_read(int fd, short ev, void *arg)
{
	struct smtp_session	*s = arg;
	size_t			 len, max;
	int			 n;

	if (ev & EV_TIMEOUT) {
		smtp_log(s, "Reject::TIME::Timeout: S:%s H:%s state %s",
		    s->ip, s->helo, s->state == S_DATA ? "DATA" : "command");
		if (s->state == S_DATA)
			smtp_data_abort(s);
		smtp_reply(s, "421 4.4.2 %s Timeout, closing connection",
		    conf->hostname);
		smtp_close(s, "Timeout");
		smtp_run(s);
		return;
	}
	max = s->state == S_DATA ? SMTP_DATA_INBUF_MAX : SMTP_INBUF_MAX;
	while ((len = evbuffer_get_length(s->in)) < max) {
		n = evbuffer_read(s->in, fd, (int)(max - len));
		if (n == 0) {
			s->flags |= SF_EOF;
			break;
		}
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			smtp_destroy(s, "Reset");
			return;
		}
		if (s->state != S_DATA)
			break;		/* commands: one read at a time */
	}
	smtp_run(s);
}

static void
smtp_write(int fd, short ev, void *arg)
{
	struct smtp_session	*s = arg;

	if (ev & EV_TIMEOUT) {
		smtp_destroy(s, "Write_Timeout");
		return;
	}
	smtp_run(s);
}

/*
 * Parse what is buffered, write what is queued, then wait for the next
 * event.  Every path into a session ends here.
 */
static void
smtp_run(struct smtp_session *s)
{
	int	 starved;

	for (;;) {
		starved = smtp_process(s);
		if (s->flags & SF_DEAD) {
			smtp_destroy(s, "Error");
			return;
		}
		if (evbuffer_get_length(s->out) > 0 &&
		    evbuffer_write(s->out, s->fd) == -1 &&
		    errno != EAGAIN && errno != EINTR) {
			smtp_destroy(s, "Write_Error");
			return;
		}
		/* Stopped only because the client was slow to read? */
		if (starved || s->wait != W_NONE || (s->flags & SF_CLOSING) ||
		    evbuffer_get_length(s->out) >= SMTP_OUTBUF_MAX)
			break;
	}
	if ((s->flags & SF_EOF) && starved && s->wait == W_NONE)
		smtp_close(s, "Disconnect");	/* nothing more will come */
	if ((s->flags & SF_CLOSING) && evbuffer_get_length(s->out) == 0) {
		smtp_destroy(s, s->why);
		return;
	}
	smtp_events(s);
}

static void
smtp_events(struct smtp_session *s)
{
	struct timeval	 tv;
	time_t		 t;
	size_t		 max;

	max = s->state == S_DATA ? SMTP_DATA_INBUF_MAX : SMTP_INBUF_MAX;
	t = s->state == S_DATA ? conf->timeout_data : conf->timeout_command;
	tv.tv_sec = t;
	tv.tv_usec = 0;
	if (!(s->flags & (SF_CLOSING | SF_EOF)) &&
	    evbuffer_get_length(s->in) < max &&
	    evbuffer_get_length(s->out) < SMTP_OUTBUF_MAX)
		/* No idle timer while we, not the client, are to answer. */
		event_add(&s->ev_rd, s->wait == W_NONE && t > 0 ? &tv : NULL);
	else
		event_del(&s->ev_rd);

	if (evbuffer_get_length(s->out) > 0) {
		if (!event_pending(&s->ev_wr, EV_WRITE, NULL)) {
			tv.tv_sec = conf->timeout_command;
			event_add(&s->ev_wr, tv.tv_sec > 0 ? &tv : NULL);
		}
	} else
		event_del(&s->ev_wr);
}

/* Returns 1 when it stopped for want of input, 0 otherwise. */
static int
smtp_process(struct smtp_session *s)
{
	char	 line[SQ_LINE_MAX];
	size_t	 len;
	int	 r;

	while (!(s->flags & (SF_CLOSING | SF_DEAD)) && s->wait == W_NONE) {
		if (evbuffer_get_length(s->out) >= SMTP_OUTBUF_MAX)
			return 0;	/* the client does not read */
		if (s->state == S_DATA) {
			if (smtp_data_input(s) == 0)
				return 1;
			continue;
		}
		if ((r = smtp_getline(s, line, &len)) == 0)
			return 1;
		if (r == -1) {
			smtp_log(s, "Reject::SNTX::Line_Too_Long: S:%s H:%s",
			    s->ip, s->helo);
			smtp_reply(s, "500 5.5.2 Line too long (the limit is "
			    "%d octets)", SQ_LINE_MAX);
			smtp_error(s);
			continue;
		}
		smtp_command(s, line, len);
	}
	return 0;
}

/*
 * The next command line, CRLF-terminated only, into line (without the
 * CRLF): 1, or 0 when none is complete yet, or -1 for an overlong one,
 * which is discarded up to its CRLF first.
 */
static int
smtp_getline(struct smtp_session *s, char *line, size_t *len)
{
	struct evbuffer_ptr	 p;
	size_t			 avail = evbuffer_get_length(s->in), keep;
	char			 last;

	p = evbuffer_search(s->in, "\r\n", 2, NULL);
	if (p.pos == -1) {
		if (avail >= SQ_LINE_MAX || (s->flags & SF_DISCARD)) {
			/* Too long already: drop it, but a CR may start CRLF. */
			keep = 0;
			if (avail > 0 && evbuffer_ptr_set(s->in, &p, avail - 1,
			    EVBUFFER_PTR_SET) == 0 &&
			    evbuffer_copyout_from(s->in, &p, &last, 1) == 1 &&
			    last == '\r')
				keep = 1;
			evbuffer_drain(s->in, avail - keep);
			s->flags |= SF_DISCARD;
		}
		return 0;
	}
	if ((s->flags & SF_DISCARD) || (size_t)p.pos + 2 > SQ_LINE_MAX) {
		evbuffer_drain(s->in, p.pos + 2);
		s->flags &= ~SF_DISCARD;
		return -1;
	}
	if (evbuffer_remove(s->in, line, p.pos) != p.pos) {
		s->flags |= SF_DEAD;
		return 0;
	}
	evbuffer_drain(s->in, 2);
	*len = p.pos;
	return 1;
}

static void
smtp_command(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_cmd	 cmd;

	if (smtp_parse_command(line, len, &cmd) == -1) {
		if (memchr(line, '\0', len) != NULL) {
			smtp_log(s, "Reject::SNTX::NUL_In_Command: S:%s H:%s",
			    s->ip, s->helo);
			smtp_reply(s, "500 5.5.2 NUL octet in command line");
		} else {
			smtp_log(s, "Reject::SNTX::Bare_CR_LF: S:%s H:%s",
			    s->ip, s->helo);
			smtp_reply(s, "500 5.5.2 Bare CR or LF in command line; "
			    "lines end with CRLF");
		}
		smtp_error(s);
		return;
	}
	/* Not the argument: it may be a password once AUTH comes. */
	log_debug("smtp %016llx: < %s", (unsigned long long)s->id,
	    smtp_verb_name(cmd.verb));

	switch (cmd.verb) {
	case SMTP_CMD_HELO:
		smtp_cmd_helo(s, &cmd, 0);
		break;
	case SMTP_CMD_EHLO:
		smtp_cmd_helo(s, &cmd, 1);
		break;
	case SMTP_CMD_MAIL:
		smtp_cmd_mail(s, &cmd);
		break;
	case SMTP_CMD_RCPT:
		smtp_cmd_rcpt(s, &cmd);
		break;
	case SMTP_CMD_DATA:
		smtp_cmd_data(s, &cmd);
		break;
	case SMTP_CMD_RSET:
		if (cmd.arglen != 0) {
			smtp_reply(s, "501 5.5.4 Syntax: RSET");
			smtp_error(s);
			break;
		}
		smtp_tx_reset(s);
		smtp_reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_CMD_NOOP:
		smtp_reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_CMD_QUIT:
		smtp_reply(s, "221 2.0.0 %s Closing connection",
		    conf->hostname);
		smtp_close(s, "Quit");
		break;
	case SMTP_CMD_VRFY:
		if (cmd.arglen == 0) {
			smtp_reply(s, "501 5.5.4 Syntax: VRFY <address>");
			smtp_error(s);
			break;
		}
		smtp_reply(s, "252 2.5.2 Not verified here; send the message "
		    "and delivery will be attempted");
		break;
	case SMTP_CMD_EXPN:
		smtp_reply(s, "502 5.5.1 EXPN is not offered");
		smtp_error(s);
		break;
	case SMTP_CMD_HELP:
		smtp_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA "
		    "RSET NOOP QUIT VRFY HELP");
		break;
	case SMTP_CMD_NOTIMPL:
		smtp_reply(s, "502 5.5.1 %s is not offered here",
		    smtp_verb_name(cmd.verb));
		smtp_error(s);
		break;
	case SMTP_CMD_HTTP:
		smtp_log(s, "Reject::SNTX::HTTP_Request: S:%s", s->ip);
		smtp_reply(s, "421 4.7.0 %s This is an SMTP server; closing "
		    "connection", conf->hostname);
		smtp_close(s, "HTTP_Request");
		break;
	default:
		smtp_reply(s, "500 5.5.1 Command not recognized");
		smtp_error(s);
		break;
	}
}

static void
smtp_cmd_helo(struct smtp_session *s, struct smtp_cmd *cmd, int esmtp)
{
	char	 helo[SQ_DOMAIN_MAX + 1];

	if (smtp_parse_helo(cmd->arg, cmd->arglen, helo, sizeof(helo)) == -1) {
		smtp_reply(s, "501 5.5.4 Syntax: %s <hostname>",
		    esmtp ? "EHLO" : "HELO");
		smtp_error(s);
		return;
	}
	/* RFC 5321 4.1.4: a new HELO/EHLO resets the transaction. */
	smtp_tx_reset(s);
	(void)strlcpy(s->helo, helo, sizeof(s->helo));
	s->state = S_HELO;
	if (!esmtp) {
		s->flags &= ~SF_ESMTP;
		smtp_reply(s, "250 %s", conf->hostname);
		return;
	}
	s->flags |= SF_ESMTP;
	smtp_reply(s, "250-%s Hello %s [%s]", conf->hostname, s->helo, s->ip);
	smtp_reply(s, "250-PIPELINING");
	if (conf->max_message_size != 0)
		smtp_reply(s, "250-SIZE %llu",
		    (unsigned long long)conf->max_message_size);
	else
		smtp_reply(s, "250-SIZE");
	smtp_reply(s, "250-8BITMIME");
	smtp_reply(s, "250 ENHANCEDSTATUSCODES");
}

/* Reply to a MAIL (mail != 0) or RCPT argument that did not parse. */
static void
smtp_path_error(struct smtp_session *s, int r, int mail)
{
	const char	*verb = mail ? "MAIL" : "RCPT";

	switch (r) {
	case SMTP_P_ADDR:
		smtp_log(s, "Reject::SNTX::Bad_%s_Syntax: S:%s H:%s",
		    mail ? "Sender" : "Recipient", s->ip, s->helo);
		smtp_reply(s, "501 %s Bad %s address syntax",
		    mail ? "5.1.7" : "5.1.3", mail ? "sender" : "recipient");
		break;
	case SMTP_P_PARAM:
		smtp_reply(s, "555 5.5.4 %s parameter not recognized", verb);
		break;
	case SMTP_P_PARAMVAL:
		smtp_reply(s, "501 5.5.4 Bad %s parameter value", verb);
		break;
	default:
		smtp_reply(s, "501 5.5.4 Syntax: %s %s:<address>", verb,
		    mail ? "FROM" : "TO");
		break;
	}
	smtp_error(s);
}

static void
smtp_cmd_mail(struct smtp_session *s, struct smtp_cmd *cmd)
{
	struct smtp_params	 params;
	struct mailaddr		 addr;
	int			 r;

	if (s->state == S_CONNECTED) {
		smtp_reply(s, "503 5.5.1 Send HELO or EHLO first");
		smtp_error(s);
		return;
	}
	if (s->state != S_HELO) {
		smtp_reply(s, "503 5.5.1 A transaction is open already; "
		    "send RSET first");
		smtp_error(s);
		return;
	}
	r = smtp_parse_mail(cmd->arg, cmd->arglen, &addr, &params);
	if (r == SMTP_P_OK && params.count > 0 && !(s->flags & SF_ESMTP))
		r = SMTP_P_PARAM;	/* no ESMTP parameter after HELO */
	if (r != SMTP_P_OK) {
		smtp_path_error(s, r, 1);
		return;
	}
	if (params.has_size && conf->max_message_size != 0 &&
	    params.size > conf->max_message_size) {
		smtp_log(s, "Reject::MAIL::Message_Size: S:%s H:%s size %llu",
		    s->ip, s->helo, (unsigned long long)params.size);
		smtp_reply(s, "552 5.3.4 Message size exceeds the limit of "
		    "%llu octets", (unsigned long long)conf->max_message_size);
		return;
	}

	s->sender = addr;
	s->wait = W_LKA_MAIL;
	m_create(peers[PROC_LKA], IMSG_LKA_MAIL, 0, -1);
	m_add_u64(peers[PROC_LKA], s->id);
	m_add_sockaddr(peers[PROC_LKA], (struct sockaddr *)&s->ss);
	m_add_mailaddr(peers[PROC_LKA], &s->sender);
	m_close(peers[PROC_LKA]);
}

static size_t
smtp_dest_cap(void)
{
	if (conf->max_recipients == 0)
		return SMTP_DEST_DEFAULT;
	return (size_t)conf->max_recipients * SMTP_DEST_FACTOR;
}

static void
smtp_cmd_rcpt(struct smtp_session *s, struct smtp_cmd *cmd)
{
	struct smtp_params	 params;
	struct mailaddr		 addr;
	char			 text[SQ_ADDR_MAX], sender[SQ_ADDR_MAX];
	int			 r;

	if (s->state != S_MAIL && s->state != S_RCPT) {
		smtp_reply(s, "503 5.5.1 Send MAIL first");
		smtp_error(s);
		return;
	}
	if ((r = smtp_parse_rcpt(cmd->arg, cmd->arglen, &addr,
	    &params)) != SMTP_P_OK) {
		smtp_path_error(s, r, 0);
		return;
	}
	/* <postmaster> alone (RFC 5321 4.5.1) keeps its empty domain: lka
	 * sends it to the configured postmaster. */
	if ((conf->max_recipients != 0 &&
	    s->nrcpt >= conf->max_recipients) ||
	    s->ndest >= smtp_dest_cap()) {
		(void)mailaddr_to_text(&s->sender, sender, sizeof(sender));
		(void)mailaddr_to_text(&addr, text, sizeof(text));
		smtp_log(s, "Reject::RCPT::Too_Many_Recipients: S:%s H:%s F:%s "
		    "T:%s", s->ip, s->helo, sender, text);
		smtp_reply(s, "452 4.5.3 Too many recipients");
		return;
	}

	s->rcpt = addr;
	s->npending = 0;
	s->flags &= ~(SF_OVERFLOW | SF_NOMEM);
	s->wait = W_LKA_RCPT;
	m_create(peers[PROC_LKA], IMSG_LKA_RCPT, 0, -1);
	m_add_u64(peers[PROC_LKA], s->id);
	m_add_sockaddr(peers[PROC_LKA], (struct sockaddr *)&s->ss);
	m_add_int(peers[PROC_LKA], 0);		/* may_relay: no AUTH yet */
	m_add_mailaddr(peers[PROC_LKA], &s->rcpt);
	m_close(peers[PROC_LKA]);
}

static void
smtp_cmd_data(struct smtp_session *s, struct smtp_cmd *cmd)
{
	if (cmd->arglen != 0) {
		smtp_reply(s, "501 5.5.4 Syntax: DATA");
		smtp_error(s);
		return;
	}
	if (s->state == S_MAIL) {
		smtp_reply(s, "554 5.5.1 No valid recipients");
		smtp_error(s);
		return;
	}
	if (s->state != S_RCPT) {
		smtp_reply(s, "503 5.5.1 Send MAIL and RCPT first");
		smtp_error(s);
		return;
	}
	s->wait = W_QUEUE_CREATE;
	m_create(peers[PROC_QUEUE], IMSG_QUEUE_CREATE, 0, -1);
	m_add_u64(peers[PROC_QUEUE], s->id);
	m_close(peers[PROC_QUEUE]);
}

static void
smtp_dests_free(struct smtp_destq *q)
{
	struct smtp_dest	*d;

	while ((d = TAILQ_FIRST(q)) != NULL) {
		TAILQ_REMOVE(q, d, entry);
		free(d);
	}
}

static void
smtp_tx_reset(struct smtp_session *s)
{
	smtp_dests_free(&s->dests);
	smtp_dests_free(&s->pending);
	s->ndest = s->npending = 0;
	s->nrcpt = 0;
	s->first[0] = '\0';
	memset(&s->sender, 0, sizeof(s->sender));
	memset(&s->rcpt, 0, sizeof(s->rcpt));
	s->state = s->helo[0] != '\0' ? S_HELO : S_CONNECTED;
}

/* The words after Reject::TYPE:: for a reply line from lka. */
static const char *
smtp_condition(const char *reply, int rcpt)
{
	if (strncmp(reply, "4", 1) == 0)
		return "Temporary_Failure";
	if (strstr(reply, " 5.1.1 ") != NULL)
		return rcpt ? "Recipient_Unknown" : "Sender_Unknown";
	if (strstr(reply, " 5.7.1 ") != NULL)
		return rcpt ? "Relay_Denied" : "Sender_Denied";
	if (strstr(reply, " 5.1.2 ") != NULL ||
	    strstr(reply, " 5.1.8 ") != NULL)
		return "Bad_Domain";
	return "Policy";
}

void
smtp_session_lka_mail(uint64_t reqid, int status, const char *reply)
{
	struct smtp_session	*s;
	char			 sender[SQ_ADDR_MAX];

	if ((s = smtp_session_find(reqid)) == NULL ||
	    s->wait != W_LKA_MAIL) {
		log_debug("smtp %016llx: stale MAIL reply dropped",
		    (unsigned long long)reqid);
		return;
	}
	s->wait = W_NONE;
	(void)mailaddr_to_text(&s->sender, sender, sizeof(sender));
	if (status == SQ_OK) {
		s->state = S_MAIL;
		log_debug("smtp %016llx: Accept::MAIL::Sender: S:%s H:%s F:%s",
		    (unsigned long long)s->id, s->ip, s->helo, sender);
		smtp_reply(s, "250 2.1.0 Ok");
	} else {
		smtp_log(s, "%s::MAIL::%s: S:%s H:%s F:%s",
		    status == SQ_PERMFAIL ? "Reject" : "Defer",
		    smtp_condition(reply, 0), s->ip, s->helo, sender);
		memset(&s->sender, 0, sizeof(s->sender));
		smtp_reply_peer(s, status, reply);
		if (status == SQ_PERMFAIL)
			smtp_error(s);
	}
	smtp_run(s);
}

void
smtp_session_lka_dest(uint64_t reqid, const struct dest *dest)
{
	struct smtp_session	*s;
	struct smtp_dest	*d;

	if ((s = smtp_session_find(reqid)) == NULL ||
	    s->wait != W_LKA_RCPT)
		return;
	if (s->npending >= SQ_EXPAND_MAX ||
	    s->ndest + s->npending >= smtp_dest_cap()) {
		s->flags |= SF_OVERFLOW;
		return;
	}
	if ((d = malloc(sizeof(*d))) == NULL) {
		log_warn("smtp: destination");
		s->flags |= SF_NOMEM;
		return;
	}
	d->dest = *dest;
	TAILQ_INSERT_TAIL(&s->pending, d, entry);
	s->npending++;
}

void
smtp_session_lka_rcpt(uint64_t reqid, int status, const char *reply)
{
	struct smtp_session	*s;
	struct smtp_dest	*d;
	char			 sender[SQ_ADDR_MAX], rcpt[SQ_ADDR_MAX];

	if ((s = smtp_session_find(reqid)) == NULL ||
	    s->wait != W_LKA_RCPT) {
		log_debug("smtp %016llx: stale RCPT reply dropped",
		    (unsigned long long)reqid);
		return;
	}
	s->wait = W_NONE;
	(void)mailaddr_to_text(&s->sender, sender, sizeof(sender));
	(void)mailaddr_to_text(&s->rcpt, rcpt, sizeof(rcpt));

	if (status == SQ_OK && (s->flags & SF_OVERFLOW)) {
		smtp_dests_free(&s->pending);
		smtp_log(s, "Reject::RCPT::Too_Many_Recipients: S:%s H:%s "
		    "F:%s T:%s", s->ip, s->helo, sender, rcpt);
		smtp_reply(s, "452 4.5.3 Too many recipients");
	} else if (status == SQ_OK &&
	    ((s->flags & SF_NOMEM) || s->npending == 0)) {
		smtp_dests_free(&s->pending);
		smtp_log(s, "Defer::RCPT::Temporary_Failure: S:%s H:%s F:%s "
		    "T:%s", s->ip, s->helo, sender, rcpt);
		smtp_reply(s, "451 4.3.0 Temporary failure, try again later");
	} else if (status == SQ_OK) {
		d = TAILQ_FIRST(&s->pending);
		smtp_log(s, "Accept::RCPT::%s: S:%s H:%s F:%s T:%s",
		    d->dest.type == DEST_LOCAL ? "Recipient_Local" :
		    "Recipient_Relay", s->ip, s->helo, sender, rcpt);
		TAILQ_CONCAT(&s->dests, &s->pending, entry);
		s->ndest += s->npending;
		if (s->nrcpt++ == 0)
			(void)strlcpy(s->first, rcpt, sizeof(s->first));
		s->state = S_RCPT;
		smtp_reply(s, "250 2.1.5 Ok");
	} else {
		smtp_dests_free(&s->pending);
		smtp_log(s, "%s::RCPT::%s: S:%s H:%s F:%s T:%s",
		    status == SQ_PERMFAIL ? "Reject" : "Defer",
		    smtp_condition(reply, 1), s->ip, s->helo, sender, rcpt);
		smtp_reply_peer(s, status, reply);
		if (status == SQ_PERMFAIL)
			smtp_error(s);
	}
	s->npending = 0;
	smtp_run(s);
}

void
smtp_session_queue_create(uint64_t reqid, int status, uint64_t msgid,
    int fd)
{
	struct smtp_session	*s;

	if ((s = smtp_session_find(reqid)) == NULL ||
	    s->wait != W_QUEUE_CREATE) {
		/* The client left: give the file back. */
		if (status == SQ_OK) {
			m_create(peers[PROC_QUEUE], IMSG_QUEUE_ABORT, 0, -1);
			m_add_msgid(peers[PROC_QUEUE], msgid);
			m_close(peers[PROC_QUEUE]);
		}
		if (fd != -1)
			close(fd);
		return;
	}
	s->wait = W_NONE;
	s->msgid = msgid;
	if (status != SQ_OK || fd == -1) {
		if (status == SQ_OK) {
			m_create(peers[PROC_QUEUE], IMSG_QUEUE_ABORT, 0, -1);
			m_add_msgid(peers[PROC_QUEUE], msgid);
			m_close(peers[PROC_QUEUE]);
		}
		if (fd != -1)
			close(fd);
		smtp_log(s, "Defer::DATA::Queue_Failure: S:%s H:%s", s->ip,
		    s->helo);
		smtp_reply(s, "451 4.3.0 Cannot queue the message now, try "
		    "again later");
		smtp_run(s);
		return;
	}
	s->datafd = fd;
	/* Counted per message, not per session. */
	s->written = 0;
	s->werr = 0;
	s->dlen = 0;
	if ((s->dbuf = malloc(SMTP_DBUF_SIZE)) == NULL ||
	    smtp_received(s) == -1) {
		log_warn("smtp: DATA buffer");
		smtp_data_abort(s);
		smtp_reply(s, "451 4.3.0 Out of resources, try again later");
		smtp_run(s);
		return;
	}
	smtp_data_init(&s->data, conf->max_message_size,
	    conf->bare_lf_reject != 0);
	s->state = S_DATA;
	smtp_reply(s, "354 Go ahead; end with <CRLF>.<CRLF>");
	smtp_run(s);
}

/* Our trace header field (RFC 5321 4.4), LF line ends, first in dbuf. */
static int
smtp_received(struct smtp_session *s)
{
	char		 date[64], from[80];
	struct tm	 tm;
	time_t		 now = time(NULL);
	int		 n;

	if (localtime_r(&now, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		return -1;
	if (s->ss.ss_family == AF_INET6)
		n = snprintf(from, sizeof(from), "[IPv6:%s]", s->ip);
	else
		n = snprintf(from, sizeof(from), "[%s]", s->ip);
	if (n < 0 || (size_t)n >= sizeof(from))
		return -1;
	if (s->nrcpt == 1 && s->first[0] != '\0')
		n = snprintf(s->dbuf, SMTP_DBUF_SIZE,
		    "Received: from %s (%s)\n\tby %s (sqmail) with %s id %llu\n"
		    "\tfor <%s>; %s\n", s->helo, from, conf->hostname,
		    (s->flags & SF_ESMTP) ? "ESMTP" : "SMTP",
		    (unsigned long long)s->msgid, s->first, date);
	else
		n = snprintf(s->dbuf, SMTP_DBUF_SIZE,
		    "Received: from %s (%s)\n\tby %s (sqmail) with %s id %llu;"
		    "\n\t%s\n", s->helo, from, conf->hostname,
		    (s->flags & SF_ESMTP) ? "ESMTP" : "SMTP",
		    (unsigned long long)s->msgid, date);
	if (n < 0 || n >= SMTP_DBUF_SIZE)
		return -1;
	s->dlen = n;
	return 0;
}

/* Drop the incoming message: tell queue, release the descriptor. */
static void
smtp_data_abort(struct smtp_session *s)
{
	if (s->datafd != -1) {
		m_create(peers[PROC_QUEUE], IMSG_QUEUE_ABORT, 0, -1);
		m_add_msgid(peers[PROC_QUEUE], s->msgid);
		m_close(peers[PROC_QUEUE]);
		close(s->datafd);
		s->datafd = -1;
	}
	free(s->dbuf);
	s->dbuf = NULL;
	s->dlen = 0;
}

/* Write what dbuf holds; after a failure keep consuming, store nothing. */
static void
smtp_data_flush(struct smtp_session *s)
{
	size_t	 off = 0;
	ssize_t	 n;

	while (off < s->dlen && s->werr == 0) {
		n = write(s->datafd, s->dbuf + off, s->dlen - off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			s->werr = errno;
			log_warn("smtp %016llx: message %llu: write",
			    (unsigned long long)s->id,
			    (unsigned long long)s->msgid);
			break;
		}
		off += n;
	}
	if (s->werr == 0)
		s->written += s->dlen;
	s->dlen = 0;
}

/*
 * Feed buffered input to the DATA machine.  Returns 0 when it needs more
 * input, 1 when it made progress (the data may have ended).
 */
static int
smtp_data_input(struct smtp_session *s)
{
	struct evbuffer_iovec	 v[8];
	const char		*p;
	size_t			 total = 0, off, room, chunk, used, outlen;
	int			 n, i;

	/* An empty buffer may still peek as one empty chain. */
	if (evbuffer_get_length(s->in) == 0 ||
	    (n = evbuffer_peek(s->in, -1, NULL, v, 8)) <= 0)
		return 0;
	if (n > 8)
		n = 8;
	for (i = 0; i < n && !(s->data.flags & SMTP_DATA_DONE); i++) {
		p = v[i].iov_base;
		for (off = 0; off < v[i].iov_len &&
		    !(s->data.flags & SMTP_DATA_DONE); off += used) {
			/* The machine may output one byte more than it eats. */
			if ((room = SMTP_DBUF_SIZE - s->dlen - 1) == 0) {
				smtp_data_flush(s);
				room = SMTP_DBUF_SIZE - 1;
			}
			chunk = v[i].iov_len - off;
			if (chunk > room)
				chunk = room;
			used = smtp_data_feed(&s->data, p + off, chunk,
			    s->dbuf + s->dlen, &outlen);
			s->dlen += outlen;
			total += used;
		}
	}
	evbuffer_drain(s->in, total);
	if (s->data.flags & SMTP_DATA_DONE) {
		smtp_data_end(s);
		return 1;
	}
	return total > 0;
}

/* CRLF.CRLF seen: refuse the message, or hand it to queue to commit. */
static void
smtp_data_end(struct smtp_session *s)
{
	struct smtp_dest	*d;
	const char		*cond = NULL, *reply = NULL;
	char			 sender[SQ_ADDR_MAX];
	uint32_t		 f = s->data.flags;

	smtp_data_flush(s);
	free(s->dbuf);
	s->dbuf = NULL;
	(void)mailaddr_to_text(&s->sender, sender, sizeof(sender));

	if (f & SMTP_DATA_TOOBIG) {
		cond = "Message_Size";
		reply = "552 5.3.4 Message size exceeds the limit";
	} else if (f & SMTP_DATA_LONGLINE) {
		cond = "Line_Too_Long";
		reply = "500 5.5.2 Line too long (the limit is 1000 octets "
		    "with CRLF)";
	} else if (f & SMTP_DATA_LOOP) {
		cond = "Mail_Loop";
		reply = "554 5.4.6 Too many hops: mail loop detected";
	} else if (smtp_data_refused(&s->data)) {
		cond = "Bare_LF";
		reply = "554 5.6.0 Message contains a bare LF; lines must end "
		    "with CRLF";
	} else if (s->werr != 0) {
		cond = "Queue_Write_Error";
		reply = "452 4.3.1 Insufficient system storage";
	}
	if (reply != NULL) {
		smtp_data_abort(s);
		smtp_stats.rejected++;
		smtp_log(s, "%s::DATA::%s: S:%s H:%s F:%s size %llu",
		    reply[0] == '4' ? "Defer" : "Reject", cond, s->ip, s->helo,
		    sender, (unsigned long long)s->data.size);
		smtp_reply(s, "%s", reply);
		smtp_tx_reset(s);
		return;
	}

	TAILQ_FOREACH(d, &s->dests, entry) {
		m_create(peers[PROC_QUEUE], IMSG_QUEUE_RCPT, 0, -1);
		m_add_msgid(peers[PROC_QUEUE], s->msgid);
		m_add_dest(peers[PROC_QUEUE], &d->dest);
		m_close(peers[PROC_QUEUE]);
	}
	m_create(peers[PROC_QUEUE], IMSG_QUEUE_COMMIT, 0, -1);
	m_add_u64(peers[PROC_QUEUE], s->id);
	m_add_msgid(peers[PROC_QUEUE], s->msgid);
	m_add_string(peers[PROC_QUEUE], sender);
	m_add_string(peers[PROC_QUEUE], s->helo);
	m_add_string(peers[PROC_QUEUE], s->ip);
	m_add_string(peers[PROC_QUEUE], (s->flags & SF_ESMTP) ? "ESMTP" :
	    "SMTP");
	m_add_u64(peers[PROC_QUEUE], s->written);
	m_close(peers[PROC_QUEUE]);
	s->wait = W_QUEUE_COMMIT;
	s->state = S_RCPT;		/* until queue answers */
}

void
smtp_session_queue_commit(uint64_t reqid, int status, uint64_t msgid)
{
	struct smtp_session	*s;
	char			 sender[SQ_ADDR_MAX];

	if ((s = smtp_session_find(reqid)) == NULL ||
	    s->wait != W_QUEUE_COMMIT || s->msgid != msgid) {
		log_debug("smtp %016llx: stale COMMIT reply for %llu dropped",
		    (unsigned long long)reqid, (unsigned long long)msgid);
		return;
	}
	s->wait = W_NONE;
	if (s->datafd != -1) {
		close(s->datafd);
		s->datafd = -1;
	}
	(void)mailaddr_to_text(&s->sender, sender, sizeof(sender));
	if (status == SQ_OK) {
		smtp_stats.accepted++;
		s->nmsg++;
		smtp_log(s, "Accept::DATA::Queued: S:%s H:%s F:%s id %llu "
		    "size %llu rcpts %u", s->ip, s->helo, sender,
		    (unsigned long long)msgid, (unsigned long long)s->written,
		    s->nrcpt);
		smtp_reply(s, "250 2.0.0 ok %lld qp %llu", (long long)time(NULL),
		    (unsigned long long)msgid);
	} else {
		smtp_stats.rejected++;
		smtp_log(s, "Defer::DATA::Queue_Failure: S:%s H:%s F:%s id %llu",
		    s->ip, s->helo, sender, (unsigned long long)msgid);
		smtp_reply(s, "451 4.3.0 Could not store the message, try "
		    "again later");
	}
	smtp_tx_reset(s);
	smtp_run(s);
}
