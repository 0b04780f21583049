/*
 * One SMTP server session (RFC 5321) on the event loop: the connection,
 * its limits, reading command lines and replying strictly in order.  The
 * mail transaction (MAIL, RCPT, DATA) is in smtp_tx.c.
 *
 * A session that waits for lka or queue stops parsing; what the client
 * pipelined stays buffered (bounded) and is parsed once the reply came.
 * Replies are appended to the output buffer and written once per batch.
 * Replies from lka and queue carry the session id; they are looked up in
 * a tree, so a reply for a session that has gone is dropped safely.
 *
 * Over TLS (smtp_tls.c) the same buffers are filled and drained through
 * libtls; while a handshake is under way the session reads no commands.
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
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mailaddr.h"
#include "mproc.h"
#include "msg.h"
#include "proc.h"
#include "smtp.h"
#include "smtp_session.h"
#include "sqmail.h"

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
static uint64_t	smtp_newid(void);
static void	smtp_refuse(struct smtp_listener *, int, const char *, ...)
		    __attribute__((__format__ (printf, 3, 4)));
static void	smtp_read(int, short, void *);
static void	smtp_write(int, short, void *);
static int	smtp_input(struct smtp_session *);
static int	smtp_flush(struct smtp_session *);
static int	smtp_process(struct smtp_session *);
static int	smtp_getline(struct smtp_session *, char *, size_t *, size_t);
static size_t	smtp_linemax(struct smtp_session *);
static void	smtp_events(struct smtp_session *);
static void	smtp_command(struct smtp_session *, const char *, size_t);
static void	smtp_cmd_helo(struct smtp_session *, struct smtp_cmd *, int);

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

struct smtp_session *
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

/*
 * A last line to a client we do not take: best effort, then close.  An
 * smtps client expects a handshake, not plaintext: it gets only the close.
 */
static void
smtp_refuse(struct smtp_listener *l, int fd, const char *fmt, ...)
{
	char	 buf[SQ_REPLY_MAX];
	va_list	 ap;
	int	 n;

	if (l->proto == LPROTO_SMTPS) {
		close(fd);
		return;
	}
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

void
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
		smtp_refuse(l, fd, "421 4.3.2 %s Too many connections, try "
		    "again later", conf->hostname);
		return;
	}
	smtp_ip_key(ss, &key);
	ipc = RB_FIND(smtp_iptree, &smtp_ips, &key);
	if (conf->max_sessions_per_ip != 0 && ipc != NULL &&
	    ipc->count >= conf->max_sessions_per_ip) {
		smtp_stats.refused++;
		log_info("smtp %016llx: Reject::CONNECT::Too_Many_From_IP: "
		    "S:%s L:%s", (unsigned long long)id, ip, l->name);
		smtp_refuse(l, fd, "421 4.7.0 %s Too many connections from "
		    "your address, try again later", conf->hostname);
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
		smtp_refuse(l, fd, "421 4.3.2 %s Out of resources, try again "
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
	if (l->proto == LPROTO_SMTPS) {
		/* Implicit TLS (RFC 8314): greeting after the handshake. */
		(void)smtp_tls_begin(s);
		return;
	}
	smtp_greet(s);
	smtp_run(s);
}

void
smtp_greet(struct smtp_session *s)
{
	smtp_reply(s, "220 %s ESMTP sqmail", conf->hostname);
}

/*
 * After the TLS handshake nothing learnt before it counts (RFC 3207
 * 4.2): the client starts again with EHLO, as after the greeting.
 */
void
smtp_reset_to_greeting(struct smtp_session *s)
{
	evbuffer_drain(s->in, evbuffer_get_length(s->in));
	s->helo[0] = '\0';
	s->flags &= ~(SF_ESMTP | SF_DISCARD);
	smtp_auth_reset(s);
	smtp_tx_reset(s);
}

void
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
	smtp_log(s, "Close::CONNECT::%s: S:%s H:%s messages %u errors "
	    "%u%s%s%s%s%s%s", why, s->ip, s->helo, s->nmsg, s->errors,
	    s->tls_version[0] != '\0' ? " tls " : "", s->tls_version,
	    s->tls_version[0] != '\0' ? " " : "", s->tls_cipher,
	    (s->flags & SF_AUTH) ? " auth " : "",
	    (s->flags & SF_AUTH) ? s->auth_user : "");
	smtp_auth_reset(s);
	event_del(&s->ev_rd);
	event_del(&s->ev_wr);
	smtp_tls_close(s);
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
void
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
void
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
void
smtp_close(struct smtp_session *s, const char *why)
{
	if (!(s->flags & SF_CLOSING))
		s->why = why;
	s->flags |= SF_CLOSING;
}

/* A protocol error: after max_errors of them, say goodbye. */
void
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

	if (ev & EV_TIMEOUT) {
		if (s->flags & SF_HANDSHAKE) {
			smtp_log(s, "Reject::TLS::Handshake_Timeout: S:%s L:%s",
			    s->ip, s->l->name);
			smtp_destroy(s, "TLS_Timeout");
			return;
		}
		if (s->flags & SF_TLS_WRRD) {
			smtp_destroy(s, "Write_Timeout");
			return;
		}
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
	if (s->flags & SF_HANDSHAKE) {
		(void)smtp_tls_handshake(s);
		return;
	}
	if (smtp_input(s) == -1)
		return;
	smtp_run(s);
}

/* Read what the client sent, as far as the limits let; -1: gone. */
static int
smtp_input(struct smtp_session *s)
{
	size_t	 len, max;
	ssize_t	 n;

	max = s->state == S_DATA ? SMTP_DATA_INBUF_MAX : SMTP_INBUF_MAX;
	while ((len = evbuffer_get_length(s->in)) < max) {
		if (s->tls != NULL)
			n = smtp_tls_read(s, max - len);
		else
			n = evbuffer_read(s->in, s->fd, (int)(max - len));
		if (n == 0) {
			s->flags |= SF_EOF;
			break;
		}
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			smtp_destroy(s, s->tls != NULL ? "TLS_Error" : "Reset");
			return -1;
		}
		if (s->state != S_DATA)
			break;		/* commands: one read at a time */
	}
	return 0;
}

/* Send what is queued, as far as the socket takes it; -1: I/O failed. */
static int
smtp_flush(struct smtp_session *s)
{
	if (evbuffer_get_length(s->out) == 0)
		return 0;
	if (s->tls != NULL)
		return smtp_tls_flush(s);
	if (evbuffer_write(s->out, s->fd) == -1 && errno != EAGAIN &&
	    errno != EINTR)
		return -1;
	return 0;
}

static void
smtp_write(int fd, short ev, void *arg)
{
	struct smtp_session	*s = arg;

	if (ev & EV_TIMEOUT) {
		if (s->flags & SF_HANDSHAKE)
			smtp_log(s, "Reject::TLS::Handshake_Timeout: S:%s L:%s",
			    s->ip, s->l->name);
		smtp_destroy(s, (s->flags & SF_HANDSHAKE) ? "TLS_Timeout" :
		    "Write_Timeout");
		return;
	}
	if (s->flags & SF_HANDSHAKE) {
		(void)smtp_tls_handshake(s);
		return;
	}
	if ((s->flags & SF_TLS_RDWR) && smtp_input(s) == -1)
		return;
	smtp_run(s);
}

/*
 * Parse what is buffered, write what is queued, then wait for the next
 * event.  Every path into a session ends here.
 */
void
smtp_run(struct smtp_session *s)
{
	int	 starved;

	for (;;) {
		starved = smtp_process(s);
		if (s->flags & SF_DEAD) {
			smtp_destroy(s, "Error");
			return;
		}
		if (smtp_flush(s) == -1) {
			smtp_destroy(s, "Write_Error");
			return;
		}
		/* Stopped only because the client was slow to read? */
		if (starved || s->wait != W_NONE ||
		    (s->flags & (SF_CLOSING | SF_STARTTLS)) ||
		    evbuffer_get_length(s->out) >= SMTP_OUTBUF_MAX)
			break;
	}
	if ((s->flags & SF_EOF) && starved && s->wait == W_NONE)
		smtp_close(s, "Disconnect");	/* nothing more will come */
	if ((s->flags & SF_CLOSING) && evbuffer_get_length(s->out) == 0) {
		smtp_destroy(s, s->why);
		return;
	}
	/* The 220 to STARTTLS is out, in plaintext: now the handshake. */
	if ((s->flags & SF_STARTTLS) && evbuffer_get_length(s->out) == 0) {
		s->flags &= ~SF_STARTTLS;
		(void)smtp_tls_begin(s);
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
	int		 want;

	max = s->state == S_DATA ? SMTP_DATA_INBUF_MAX : SMTP_INBUF_MAX;
	t = s->state == S_DATA ? conf->timeout_data : conf->timeout_command;
	tv.tv_sec = t;
	tv.tv_usec = 0;
	/* No plaintext is read between STARTTLS and the handshake. */
	want = !(s->flags & (SF_CLOSING | SF_EOF | SF_STARTTLS)) &&
	    evbuffer_get_length(s->in) < max &&
	    evbuffer_get_length(s->out) < SMTP_OUTBUF_MAX;
	if (want) {
		/* No idle timer while we, not the client, are to answer. */
		event_add(&s->ev_rd, s->wait == W_NONE && t > 0 ? &tv : NULL);
		/* Input libtls holds already makes the socket say nothing. */
		if (s->flags & SF_TLS_MORE)
			event_active(&s->ev_rd, EV_READ, 1);
	} else if (s->flags & SF_TLS_WRRD) {
		tv.tv_sec = conf->timeout_command;
		event_add(&s->ev_rd, tv.tv_sec > 0 ? &tv : NULL);
	} else
		event_del(&s->ev_rd);

	if ((evbuffer_get_length(s->out) > 0 && !(s->flags & SF_TLS_WRRD)) ||
	    (s->flags & SF_TLS_RDWR)) {
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
	char	 line[SMTP_AUTH_LINE_MAX + 2];
	size_t	 len, max;
	int	 r;

	while (!(s->flags & (SF_CLOSING | SF_DEAD | SF_STARTTLS)) &&
	    s->wait == W_NONE) {
		if (evbuffer_get_length(s->out) >= SMTP_OUTBUF_MAX)
			return 0;	/* the client does not read */
		if (s->state == S_DATA) {
			if (smtp_data_input(s) == 0)
				return 1;
			continue;
		}
		max = smtp_linemax(s);
		if ((r = smtp_getline(s, line, &len, max)) == 0)
			return 1;
		if (r == -1 && s->astate != A_NONE) {
			s->astate = A_NONE;
			explicit_bzero(s->auth_user, sizeof(s->auth_user));
			smtp_reply(s, "500 5.5.6 Authentication exchange line "
			    "is too long");
			smtp_error(s);
			continue;
		}
		if (r == -1) {
			smtp_log(s, "Reject::SNTX::Line_Too_Long: S:%s H:%s",
			    s->ip, s->helo);
			smtp_reply(s, "500 5.5.2 Line too long (the limit is "
			    "%zu octets)", max);
			smtp_error(s);
			continue;
		}
		if (s->astate != A_NONE)
			smtp_auth_response(s, line, len);
		else
			smtp_command(s, line, len);
		/* It may have held a password. */
		explicit_bzero(line, len);
	}
	return 0;
}

/*
 * How long the next line may be, CRLF included: RFC 4954 lets AUTH
 * command and response lines run to SMTP_AUTH_LINE_MAX octets, where
 * AUTH is offered; every other line keeps the RFC 5321 limit.
 */
static size_t
smtp_linemax(struct smtp_session *s)
{
	char	 verb[5];

	if (s->l->auth_table[0] == '\0')
		return SQ_LINE_MAX;
	if (s->astate != A_NONE)
		return SMTP_AUTH_LINE_MAX + 2;
	if ((s->flags & SF_DISCARD) ||
	    evbuffer_copyout(s->in, verb, sizeof(verb)) != sizeof(verb))
		return SQ_LINE_MAX;
	if (strncasecmp(verb, "AUTH ", 5) == 0)
		return SMTP_AUTH_LINE_MAX + 2;
	return SQ_LINE_MAX;
}

/*
 * The next command line, CRLF-terminated only, into line (without the
 * CRLF): 1, or 0 when none is complete yet, or -1 for an overlong one,
 * which is discarded up to its CRLF first.
 */
static int
smtp_getline(struct smtp_session *s, char *line, size_t *len, size_t max)
{
	struct evbuffer_ptr	 p;
	size_t			 avail = evbuffer_get_length(s->in), keep;
	char			 last;

	p = evbuffer_search(s->in, "\r\n", 2, NULL);
	if (p.pos == -1) {
		if (avail >= max || (s->flags & SF_DISCARD)) {
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
	if ((s->flags & SF_DISCARD) || (size_t)p.pos + 2 > max) {
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
	size_t		 vlen;

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
		    "RSET NOOP QUIT VRFY HELP%s%s", smtp_tls_offer(s) ?
		    " STARTTLS" : "", smtp_auth_offer(s) ? " AUTH" : "");
		break;
	case SMTP_CMD_STARTTLS:
		smtp_cmd_starttls(s, &cmd);
		break;
	case SMTP_CMD_AUTH:
		smtp_cmd_auth(s, &cmd);
		break;
	case SMTP_CMD_NOTIMPL:
		/* The verb as sent: it is one of the parser's known names. */
		for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
			;
		smtp_reply(s, "502 5.5.1 %.*s is not offered here",
		    (int)vlen, line);
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
	if (smtp_tls_offer(s))
		smtp_reply(s, "250-STARTTLS");
	if (smtp_auth_offer(s))
		smtp_reply(s, "250-AUTH %s", smtp_auth_mechs(s->l));
	smtp_reply(s, "250 ENHANCEDSTATUSCODES");
}
