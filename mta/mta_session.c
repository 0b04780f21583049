/*
 * One SMTP client connection (RFC 5321): connect to the task's next host,
 * greeting, EHLO (HELO when refused), then per task MAIL, one RCPT per
 * recipient, DATA and the message.  With PIPELINING (RFC 2920) MAIL, the
 * RCPTs and DATA go in one write, otherwise one at a time; either way a
 * reply is taken only for a command sent before the bytes carrying it
 * were read, in order, and anything more is out of turn.
 *
 * A connection whose transaction ended with the reply to the final dot
 * takes the next waiting task for the same address and settings, or
 * waits MTA_IDLE_TIMEOUT seconds for one, MTA_REUSE_MAX transactions at
 * most; then QUIT.  A transaction that ended otherwise (MAIL refused, no
 * recipient accepted) ends the connection: no RSET dance.  A reused
 * connection that breaks before its first reply of a task (the server
 * closed it meanwhile) gives the task a new connection.
 *
 * A host that cannot be reached, does not greet with 2xx, refuses EHLO and
 * HELO, times out or breaks the protocol before MAIL is sent makes the
 * task try its next host (s/qmail also moves on after a 5xx greeting).
 * From MAIL on the host's answers are the results: a 4xx or 5xx to MAIL
 * or DATA applies to every recipient still open, a RCPT reply to its
 * recipient, the reply to the final dot to every accepted recipient.
 *
 * TLS follows the domain's policy (sqmail.conf(5) "tls"): opportunistic
 * by default (RFC 3207, RFC 7435: STARTTLS whenever offered, nothing
 * checked, a failed handshake tried once more in plaintext, as Postfix's
 * "may"), none, required (no TLS, no delivery), verify (chain against the
 * tls ca file, name against the host) or fingerprint (SHA-256 pinned).
 * Timeouts per RFC 5321 4.5.3.2; a reply is read by mta_reply.c, the
 * message encoded by mta_message.c.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tls.h>
#include <unistd.h>

#include "base64.h"
#include "md5.h"
#include "config.h"
#include "log.h"
#include "mta.h"
#include "mta_message.h"
#include "mta_reply.h"
#include "proc.h"
#include "sqmail.h"

#define MS_READ_MAX	8192	/* octets read per wake-up */
#define MS_OUT_LOW	(16 * 1024)	/* refill the body below this */
#define MS_PEND_MAX	(MTA_TASK_RCPTS_MAX + 2)	/* MAIL, RCPTs, DATA */

enum ms_state {
	MS_CONNECT,
	MS_GREETING,
	MS_EHLO,
	MS_HELO,
	MS_STARTTLS,		/* waiting for 220 */
	MS_HANDSHAKE,
	MS_AUTH_USER,		/* AUTH LOGIN: waiting for 334 */
	MS_AUTH_PASS,		/* AUTH LOGIN: waiting for 334 */
	MS_AUTH_CRAM,		/* AUTH CRAM-MD5: waiting for the challenge */
	MS_AUTH,		/* waiting for 235 */
	MS_TX,			/* replies to MAIL, RCPT, DATA due */
	MS_BODY,		/* sending the message */
	MS_DOT,			/* waiting for the reply to the final dot */
	MS_IDLE,		/* no task: waiting for one */
	MS_QUIT
};

/* Seconds each step may take (RFC 5321 4.5.3.2); MS_TX: see ms_timer. */
static const int ms_timeouts[] = {
	[MS_CONNECT] = MTA_CONNECT_TIMEOUT, [MS_GREETING] = 300,
	[MS_EHLO] = 300, [MS_HELO] = 300, [MS_STARTTLS] = 300,
	[MS_HANDSHAKE] = 300, [MS_AUTH_USER] = 300, [MS_AUTH_PASS] = 300,
	[MS_AUTH_CRAM] = 300, [MS_AUTH] = 300, [MS_TX] = 300,
	[MS_BODY] = 180, [MS_DOT] = 600, [MS_IDLE] = MTA_IDLE_TIMEOUT,
	[MS_QUIT] = 30
};

enum ms_cmd { MSC_MAIL, MSC_RCPT, MSC_DATA };

struct ms_pending {
	enum ms_cmd		 cmd;
	struct mta_rcpt		*r;		/* MSC_RCPT */
};

struct mta_session {
	TAILQ_ENTRY(mta_session) entry;
	struct mta_task		*t;		/* NULL while idle */
	/* What the connection is for: a task with the same may reuse it. */
	struct mta_host		 h;
	int			 policy;	/* enum tls_policy */
	char			 fingerprint[65];
	int			 smtps;
	char			 auth_user[128];
	char			 auth_secret[256];
	int			 auth_plaintext;

	char			 addr[INET6_ADDRSTRLEN];
	int			 fd;
	enum ms_state		 state;
	struct event		 ev_rd;
	struct event		 ev_wr;
	struct event		 ev_to;
	struct evbuffer		*out;
	struct mta_reply_parser	 rp;
	struct mta_ehlo		 caps;
	struct mta_data_enc	 enc;
	uint64_t		 off;		/* of the message read */
	/* The transaction: replies due, in order, and the RCPTs to send. */
	struct ms_pending	 pend[MS_PEND_MAX];
	size_t			 npend;		/* commands sent */
	size_t			 head;		/* replies had */
	struct mta_rcpt		*cur;		/* last RCPT sent */
	size_t			 accepted;
	int			 mailsent;	/* results are now the host's */
	int			 mailok;
	unsigned int		 ntx;		/* transactions on it */
	int			 broken;	/* out of memory: drop it */
	struct mta_hoststat	*hs;		/* for show hosts */
	struct tls		*tls;		/* after STARTTLS, or smtps */
	int			 implicit;	/* smtps: TLS before the greeting */
	char			 tlsinfo[128];	/* "TLSv1.3 cipher" once up */
};

static TAILQ_HEAD(, mta_session) ms_sessions =
    TAILQ_HEAD_INITIALIZER(ms_sessions);
static size_t			ms_nsessions;
static struct tls_config	*ms_tls_config;		/* nothing checked */
static struct tls_config	*ms_tls_verify;		/* chain and name */


static void	ms_next_host(struct mta_session *, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));
static void	ms_send(struct mta_session *, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));
static void	ms_read(int, short, void *);
static void	ms_write(int, short, void *);
static void	ms_timeout(int, short, void *);
static void	ms_quit(struct mta_session *);
static int	ms_handshake(struct mta_session *);
static void	ms_tx_begin(struct mta_session *);

static void
ms_timer(struct mta_session *s)
{
	struct timeval	 tv = { ms_timeouts[s->state], 0 };

	/* DATA's reply is due in 2 minutes, MAIL's and RCPT's in 5. */
	if (s->state == MS_TX && s->head < s->npend &&
	    s->pend[s->head].cmd == MSC_DATA)
		tv.tv_sec = 120;
	evtimer_add(&s->ev_to, &tv);
}

/*
 * The client side's TLS settings, before the chroot: one that checks
 * nothing (opportunistic, required, fingerprint) and one that verifies
 * with the tls ca file, read now into memory.
 */
void
mta_session_init(void)
{
	uint8_t	*ca;
	size_t	 len;

	if ((ms_tls_config = tls_config_new()) == NULL) {
		log_warnx("mta: no TLS: cannot make a TLS configuration");
		return;
	}
	tls_config_insecure_noverifycert(ms_tls_config);
	tls_config_insecure_noverifyname(ms_tls_config);
	if ((ca = tls_load_file(conf->tls_ca, &len, NULL)) == NULL) {
		log_warnx("mta: tls ca %s cannot be read: tls verify fails",
		    conf->tls_ca);
		return;
	}
	if ((ms_tls_verify = tls_config_new()) == NULL ||
	    tls_config_set_ca_mem(ms_tls_verify, ca, len) == -1) {
		log_warnx("mta: tls ca %s: %s", conf->tls_ca,
		    ms_tls_verify != NULL ? tls_config_error(ms_tls_verify) :
		    "out of memory");
		tls_config_free(ms_tls_verify);
		ms_tls_verify = NULL;
	}
	tls_unload_file(ca, len);
}

size_t
mta_session_count(void)
{
	return ms_nsessions;
}

static void
ms_free(struct mta_session *s)
{
	TAILQ_REMOVE(&ms_sessions, s, entry);
	ms_nsessions--;
	mta_host_session(s->hs, -1);
	event_del(&s->ev_rd);
	event_del(&s->ev_wr);
	evtimer_del(&s->ev_to);
	if (s->tls != NULL) {
		(void)tls_close(s->tls);
		tls_free(s->tls);
	}
	if (s->fd != -1)
		close(s->fd);
	if (s->out != NULL)
		evbuffer_free(s->out);
	freezero(s, sizeof(*s));	/* the AUTH secret */
	mta_sessions_changed();
}

/* The session is over: the task's open recipients keep what they have. */
static void
ms_finish(struct mta_session *s)
{
	struct mta_task	*t = s->t;

	ms_free(s);
	if (t != NULL)
		mta_task_done(t);
}

/* Every recipient still open gets this result. */
static void
ms_fail_open(struct mta_session *s, int status, const char *text)
{
	struct mta_rcpt	*r;

	TAILQ_FOREACH(r, &s->t->rcpts, entry)
		mta_rcpt_result(r, status, "%s", text);
}

/* "Remote host said: 550 5.1.1 text" for results and bounces. */
static void
ms_said(struct mta_session *s, const struct mta_reply *rep, char *buf,
    size_t len)
{
	(void)snprintf(buf, len, "%s does not like it.\nRemote host said: "
	    "%d %s", s->addr, rep->code, mta_reply_text(rep));
}

static void
ms_next_host(struct mta_session *s, const char *fmt, ...)
{
	struct mta_task	*t = s->t;
	char		 why[MTA_TEXT_MAX];
	va_list		 ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (t == NULL) {
		/* Idle or quitting: nobody waits for it. */
		log_debug("mta: %s: connection closed: %s", s->addr, why);
		ms_free(s);
		return;
	}
	if (s->ntx > 0 && s->head == 0 && s->state != MS_BODY &&
	    s->state != MS_DOT) {
		/*
		 * A reused connection broke before any reply to this task:
		 * the server most likely closed it meanwhile.  Not the
		 * host's fault: the task gets a connection of its own.
		 */
		log_debug("mta: %s: reused connection lost: %s", s->addr, why);
		t->next--;
		ms_free(s);
		mta_task_run(t);
		return;
	}
	mta_host_result(s->hs, 0, NULL, why);
	if (s->mailsent) {
		/* The transaction had begun: no other host, try again later. */
		ms_fail_open(s, SQ_TEMPFAIL, why);
		ms_finish(s);
		return;
	}
	(void)strlcpy(t->lasterr, why, sizeof(t->lasterr));
	log_debug("mta: msg %llu: %s", (unsigned long long)t->msgid, why);
	ms_free(s);
	mta_task_run(t);
}

/*
 * The host's TLS failed: opportunistic tries the same host once more in
 * plaintext; every other policy moves on to the next host.
 */
static void
ms_tls_failed(struct mta_session *s, const char *why)
{
	if (s->policy != TLSP_OPPORTUNISTIC || s->implicit) {
		ms_next_host(s, "%s: TLS %s: %s (#4.7.5)", s->addr,
		    s->implicit ? "smtps" : config_tls_name(s->policy), why);
		return;
	}
	if (!s->mailsent) {
		/* The task's current host is the one before its next. */
		s->t->hosts[s->t->next - 1].notls = 1;
		s->t->next--;
	}
	ms_next_host(s, "%s: TLS handshake failed, trying plaintext: %s "
	    "(#4.7.5)", s->addr, why);
}

/* STARTTLS got 220: the handshake, on the same socket. */
static int
ms_starttls(struct mta_session *s)
{
	struct tls_config	*cfg = ms_tls_config;
	const char		*name = s->h.name[0] == '[' ? s->addr :
				    s->h.name;

	if (s->policy == TLSP_VERIFY && (cfg = ms_tls_verify) == NULL) {
		ms_tls_failed(s, "no CA file to verify with");
		return -1;
	}
	if ((s->tls = tls_client()) == NULL) {
		ms_tls_failed(s, "out of memory");
		return -1;
	}
	if (tls_configure(s->tls, cfg) == -1 ||
	    tls_connect_socket(s->tls, s->fd, name) == -1) {
		ms_tls_failed(s, tls_error(s->tls));
		return -1;
	}
	s->state = MS_HANDSHAKE;
	return ms_handshake(s);
}

/* Whether the host's certificate has the SHA-256 of the policy. */
static int
ms_pinned(struct mta_session *s)
{
	const char	*h = tls_peer_cert_hash(s->tls);

	if (h == NULL || strncmp(h, "SHA256:", 7) != 0)
		return 0;
	return strcasecmp(h + 7, s->fingerprint) == 0;
}

/* Go on with the handshake; once done, EHLO again.  -1: session gone. */
static int
ms_handshake(struct mta_session *s)
{
	int	 r;

	if ((r = tls_handshake(s->tls)) == TLS_WANT_POLLIN ||
	    r == TLS_WANT_POLLOUT) {
		if (r == TLS_WANT_POLLOUT)
			event_add(&s->ev_wr, NULL);
		ms_timer(s);
		return 0;
	}
	if (r == -1) {
		ms_tls_failed(s, tls_error(s->tls));
		return -1;
	}
	if (s->policy == TLSP_FINGERPRINT && !ms_pinned(s)) {
		ms_tls_failed(s, "the certificate is not the pinned one");
		return -1;
	}
	(void)snprintf(s->tlsinfo, sizeof(s->tlsinfo), "%s, %s, %s",
	    config_tls_name(s->policy), tls_conn_version(s->tls),
	    tls_conn_cipher(s->tls));
	if (s->implicit) {
		s->state = MS_GREETING;
		ms_timer(s);
		return 0;
	}
	memset(&s->caps, 0, sizeof(s->caps));
	s->state = MS_EHLO;
	ms_send(s, "EHLO %s\r\n", conf->hostname);
	ms_timer(s);
	return 0;
}

/* Send an AUTH step's text base64-encoded, wiping the copies. */
static void
ms_auth_send(struct mta_session *s, const char *prefix, const void *what,
    size_t len, enum ms_state next)
{
	char	 b64[BASE64_LEN(sizeof(s->auth_user) +
		    sizeof(s->auth_secret) + 2)];

	(void)base64_encode(what, len, b64, sizeof(b64));
	s->state = next;
	ms_send(s, "%s%s\r\n", prefix, b64);
	explicit_bzero(b64, sizeof(b64));
}

/*
 * AUTH to a route that has credentials (RFC 4954), only over TLS unless
 * the route says plaintext.  Over TLS PLAIN, else LOGIN, else CRAM-MD5
 * (one round trip first); without TLS CRAM-MD5 first, as it does not
 * show the secret.  -1: the session is gone.
 */
static int
ms_auth(struct mta_session *s)
{
	char		 buf[sizeof(s->auth_user) + sizeof(s->auth_secret) + 2];
	unsigned int	 have = s->caps.auth;
	size_t		 ul, sl;

	if (s->tls == NULL && !s->auth_plaintext) {
		ms_next_host(s, "%s: AUTH needs TLS and this connection has "
		    "none (#4.7.0)", s->addr);
		return -1;
	}
	if ((have & MTA_AUTH_CRAM_MD5) &&
	    (s->tls == NULL || !(have & (MTA_AUTH_PLAIN | MTA_AUTH_LOGIN)))) {
		s->state = MS_AUTH_CRAM;
		ms_send(s, "AUTH CRAM-MD5\r\n");
	} else if (have & MTA_AUTH_PLAIN) {
		/* authzid (empty) NUL authcid NUL password (RFC 4616) */
		ul = strlen(s->auth_user);
		sl = strlen(s->auth_secret);
		buf[0] = '\0';
		memcpy(buf + 1, s->auth_user, ul);
		buf[1 + ul] = '\0';
		memcpy(buf + 2 + ul, s->auth_secret, sl);
		ms_auth_send(s, "AUTH PLAIN ", buf, 2 + ul + sl, MS_AUTH);
		explicit_bzero(buf, sizeof(buf));
	} else if (have & MTA_AUTH_LOGIN) {
		s->state = MS_AUTH_USER;
		ms_send(s, "AUTH LOGIN\r\n");
	} else {
		ms_next_host(s, "%s: no AUTH mechanism in common (we have "
		    "PLAIN, LOGIN and CRAM-MD5) (#4.7.0)", s->addr);
		return -1;
	}
	return 0;
}

/* The CRAM-MD5 answer to the server's 334 challenge (RFC 2195). */
static int
ms_auth_cram(struct mta_session *s, const struct mta_reply *rep)
{
	char		 chal[MTA_REPLY_LINE_MAX];
	char		 resp[sizeof(s->auth_user) + 34];
	const char	*line;
	size_t		 len;
	ssize_t		 n;

	if ((line = mta_reply_line(rep, 0, &len)) == NULL ||
	    (n = base64_decode(line, len, chal, sizeof(chal))) == -1 ||
	    cram_md5_response(s->auth_user, s->auth_secret, chal, n, resp,
	    sizeof(resp)) == -1) {
		ms_next_host(s, "%s: AUTH CRAM-MD5: a malformed challenge "
		    "(#4.7.0)", s->addr);
		return -1;
	}
	ms_auth_send(s, "", resp, strlen(resp), MS_AUTH);
	explicit_bzero(resp, sizeof(resp));
	return 0;
}

/* EHLO (and TLS) done: AUTH when the route has credentials, then MAIL. */
static int
ms_ready(struct mta_session *s)
{
	if (s->auth_user[0] != '\0')
		return ms_auth(s);
	ms_tx_begin(s);
	return 0;
}

static void
ms_send(struct mta_session *s, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	if (evbuffer_add_vprintf(s->out, fmt, ap) == -1)
		s->broken = 1;		/* ms_write drops the session */
	va_end(ap);
	event_add(&s->ev_wr, NULL);
}

static void
ms_timeout(int fd, short ev, void *arg)
{
	struct mta_session	*s = arg;

	if (s->state == MS_QUIT) {
		ms_finish(s);
		return;
	}
	if (s->state == MS_IDLE) {
		ms_quit(s);
		return;
	}
	ms_next_host(s, "%s: timed out %s (#4.4.2)", s->addr,
	    s->state == MS_CONNECT ? "connecting" : "waiting for the server");
}

/* Read the message's properties once per task, for every host. */
static int
ms_scan(struct mta_session *s)
{
	if (s->t->scanned)
		return 0;
	if (mta_message_scan(s->t->fd, &s->t->info) == -1) {
		ms_next_host(s, "cannot read the message: %s (#4.3.0)",
		    strerror(errno));
		return -1;
	}
	s->t->scanned = 1;
	return 0;
}

static int
ms_same_addr(const struct sockaddr_storage *a,
    const struct sockaddr_storage *b)
{
	const struct sockaddr_in6	*a6, *b6;
	const struct sockaddr_in	*a4, *b4;

	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET6) {
		a6 = (const struct sockaddr_in6 *)a;
		b6 = (const struct sockaddr_in6 *)b;
		return a6->sin6_port == b6->sin6_port &&
		    memcmp(&a6->sin6_addr, &b6->sin6_addr,
		    sizeof(a6->sin6_addr)) == 0;
	}
	a4 = (const struct sockaddr_in *)a;
	b4 = (const struct sockaddr_in *)b;
	return a4->sin_port == b4->sin_port &&
	    a4->sin_addr.s_addr == b4->sin_addr.s_addr;
}

/* Whether task t, on its next host, may use the connection arg. */
static int
ms_fits(const struct mta_task *t, void *arg)
{
	const struct mta_session	*s = arg;
	const struct mta_host		*h;

	if (t->next >= t->nhosts)
		return 0;
	h = &t->hosts[t->next];
	return ms_same_addr(&h->ss, &s->h.ss) &&
	    strcasecmp(h->name, s->h.name) == 0 && t->tls == s->policy &&
	    strcmp(t->fingerprint, s->fingerprint) == 0 &&
	    t->smtps == s->smtps && t->auth_plaintext == s->auth_plaintext &&
	    strcmp(t->auth_user, s->auth_user) == 0 &&
	    strcmp(t->auth_secret, s->auth_secret) == 0;
}

/* The connection carries task t now, on the host t was to try next. */
static void
ms_attach(struct mta_session *s, struct mta_task *t)
{
	evtimer_del(&s->ev_to);
	s->t = t;
	t->next++;
	if (ms_scan(s) == -1)
		return;
	ms_tx_begin(s);
}

/* The task's transaction is over; clean: the next may follow on it. */
static void
ms_task_end(struct mta_session *s, int clean)
{
	struct mta_task	*t = s->t;
	struct timeval	 tv = { MTA_IDLE_TIMEOUT, 0 };

	s->t = NULL;
	mta_task_done(t);
	if (!clean || s->ntx >= MTA_REUSE_MAX) {
		ms_quit(s);
		return;
	}
	if ((t = mta_task_take(ms_fits, s)) != NULL) {
		ms_attach(s, t);
		return;
	}
	s->state = MS_IDLE;
	evtimer_add(&s->ev_to, &tv);
}

int
mta_session_reuse(struct mta_task *t)
{
	struct mta_session	*s;

	TAILQ_FOREACH(s, &ms_sessions, entry)
		if (s->state == MS_IDLE && ms_fits(t, s)) {
			ms_attach(s, t);
			return 1;
		}
	return 0;
}

int
mta_session_close_idle(void)
{
	struct mta_session	*s;

	TAILQ_FOREACH(s, &ms_sessions, entry)
		if (s->state == MS_IDLE) {
			evtimer_del(&s->ev_to);
			ms_quit(s);
			return 1;
		}
	return 0;
}

void
mta_session_start(struct mta_task *t)
{
	struct mta_session	*s;
	socklen_t		 sl;
	int			 fd;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->out = evbuffer_new()) == NULL) {
		free(s);
		(void)strlcpy(t->lasterr, "out of memory in mta (#4.3.0)",
		    sizeof(t->lasterr));
		t->next = t->nhosts;
		mta_task_done(t);
		return;
	}
	TAILQ_INSERT_TAIL(&ms_sessions, s, entry);
	ms_nsessions++;
	s->t = t;
	s->h = t->hosts[t->next++];
	s->policy = t->tls;
	(void)strlcpy(s->fingerprint, t->fingerprint, sizeof(s->fingerprint));
	s->smtps = t->smtps;
	(void)strlcpy(s->auth_user, t->auth_user, sizeof(s->auth_user));
	(void)strlcpy(s->auth_secret, t->auth_secret, sizeof(s->auth_secret));
	s->auth_plaintext = t->auth_plaintext;
	s->fd = -1;
	s->hs = mta_host_of(&s->h, s->addr, sizeof(s->addr));
	mta_host_session(s->hs, 1);
	mta_reply_init(&s->rp, 0);
	evtimer_set(&s->ev_to, ms_timeout, s);
	sl = s->h.ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
	fd = socket(s->h.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1) {
		ms_next_host(s, "%s: socket: %s (#4.4.1)", s->addr,
		    strerror(errno));
		return;
	}
	s->fd = fd;
	event_set(&s->ev_rd, fd, EV_READ | EV_PERSIST, ms_read, s);
	event_set(&s->ev_wr, fd, EV_WRITE, ms_write, s);
	s->state = MS_CONNECT;
	if (connect(fd, (struct sockaddr *)&s->h.ss, sl) == -1 &&
	    errno != EINPROGRESS) {
		ms_next_host(s, "%s: connect: %s (#4.4.1)", s->addr,
		    strerror(errno));
		return;
	}
	event_add(&s->ev_wr, NULL);
	ms_timer(s);
}

/* Why the message cannot go to this host at all, or NULL. */
static const char *
ms_refuse(struct mta_session *s)
{
	const char	*why;

	if (!mta_message_sendable(&s->t->info, &why))
		return why;
	if ((s->t->info.flags & MTA_MSG_8BIT) &&
	    !(s->caps.ext & MTA_EXT_8BITMIME))
		return "The message has 8-bit content and the remote host "
		    "does not accept it (no 8BITMIME). (#5.6.3)";
	if ((s->caps.ext & MTA_EXT_SIZE) && s->caps.size > 0 &&
	    s->t->info.smtpsize > s->caps.size)
		return "The message is larger than the remote host accepts. "
		    "(#5.3.4)";
	return NULL;
}

/* Queue a command whose reply is due; r: the recipient of a RCPT. */
static void
ms_push(struct mta_session *s, enum ms_cmd cmd, struct mta_rcpt *r,
    const char *line)
{
	s->pend[s->npend].cmd = cmd;
	s->pend[s->npend++].r = r;
	ms_send(s, "%s", line);
}

/* RCPT for the next open recipient after the last one sent; 0: none. */
static int
ms_rcpt_push(struct mta_session *s)
{
	char		 cmd[SQ_LINE_MAX + 1];
	struct mta_rcpt	*r;

	r = s->cur == NULL ? TAILQ_FIRST(&s->t->rcpts) :
	    TAILQ_NEXT(s->cur, entry);
	for (; r != NULL; r = TAILQ_NEXT(r, entry)) {
		if (r->status != -1)
			continue;
		if (mta_cmd_rcpt(cmd, sizeof(cmd), r->addr, strlen(r->addr),
		    0) == -1)
			continue;	/* failed by ms_tx_begin */
		s->cur = r;
		ms_push(s, MSC_RCPT, r, cmd);
		return 1;
	}
	return 0;
}

/*
 * The task's transaction: MAIL, then its RCPTs and DATA, at once with
 * PIPELINING.  What cannot go to this host at all, or cannot be written
 * as an SMTP command, fails before anything is sent.
 */
static void
ms_tx_begin(struct mta_session *s)
{
	char		 cmd[SQ_LINE_MAX + 1];
	struct mta_rcpt	*r;
	const char	*why;
	size_t		 n = 0;
	int		 flags = 0;

	s->npend = s->head = s->accepted = 0;
	s->mailsent = s->mailok = 0;
	s->cur = NULL;
	if ((why = ms_refuse(s)) != NULL) {
		ms_fail_open(s, SQ_PERMFAIL, why);
		ms_task_end(s, 1);
		return;
	}
	TAILQ_FOREACH(r, &s->t->rcpts, entry) {
		if (r->status != -1)
			continue;
		if (mta_cmd_rcpt(cmd, sizeof(cmd), r->addr, strlen(r->addr),
		    0) == -1)
			mta_rcpt_result(r, SQ_PERMFAIL, "The recipient address "
			    "cannot be sent over SMTP. (#5.1.3)");
		else
			n++;
	}
	if (s->caps.ext & MTA_EXT_SIZE)
		flags |= MTA_CMD_SIZE;
	if (s->t->info.flags & MTA_MSG_8BIT)
		flags |= MTA_CMD_8BITMIME;
	if (n > 0 && mta_cmd_mail(cmd, sizeof(cmd), s->t->sender,
	    strlen(s->t->sender), s->t->info.smtpsize, flags) == -1)
		ms_fail_open(s, SQ_PERMFAIL, "The sender address cannot be "
		    "sent over SMTP. (#5.1.7)");
	else if (n > 0) {
		s->mailsent = 1;
		s->state = MS_TX;
		ms_push(s, MSC_MAIL, NULL, cmd);
		if (s->caps.ext & MTA_EXT_PIPELINING) {
			while (ms_rcpt_push(s))
				;
			ms_push(s, MSC_DATA, NULL, "DATA\r\n");
		}
		ms_timer(s);
		return;
	}
	ms_task_end(s, 1);
}

static void
ms_quit(struct mta_session *s)
{
	s->state = MS_QUIT;
	ms_send(s, "QUIT\r\n");
	ms_timer(s);
}

/* Apply a 4xx/5xx to the open recipients, or 2xx to the accepted ones. */
static void
ms_result_all(struct mta_session *s, const struct mta_reply *rep,
    int accepted_only)
{
	struct mta_rcpt	*r;
	char		 text[MTA_TEXT_MAX];
	int		 status;

	if (rep->code / 100 == 2) {
		status = SQ_OK;
		if (s->tls != NULL)
			(void)snprintf(text, sizeof(text), "%s TLS transmitted "
			    "message accepted (%s).\nRemote host said: %d %s",
			    s->addr, s->tlsinfo, rep->code,
			    mta_reply_text(rep));
		else
			(void)snprintf(text, sizeof(text), "%s accepted "
			    "message.\nRemote host said: %d %s", s->addr,
			    rep->code, mta_reply_text(rep));
	} else {
		status = rep->code / 100 == 5 ? SQ_PERMFAIL : SQ_TEMPFAIL;
		ms_said(s, rep, text, sizeof(text));
	}
	TAILQ_FOREACH(r, &s->t->rcpts, entry)
		if (!accepted_only || r->accepted)
			mta_rcpt_result(r, status, "%s", text);
	mta_host_result(s->hs, status == SQ_OK, s->tls != NULL ? s->tlsinfo :
	    "", status == SQ_OK ? "" : text);
}

/* Whether to STARTTLS with this host. */
static int
ms_want_tls(struct mta_session *s)
{
	switch (s->policy) {
	case TLSP_NONE:
		return 0;
	case TLSP_OPPORTUNISTIC:
		return !s->h.notls && ms_tls_config != NULL;
	default:
		return 1;
	}
}

/*
 * A reply to MAIL, RCPT or DATA, in the order they were sent.  Without
 * PIPELINING the next command goes once the reply is in.  -1: the
 * session is gone.
 */
static int
ms_tx_reply(struct mta_session *s, const struct mta_reply *rep)
{
	struct ms_pending	*p = &s->pend[s->head++];
	char			 text[MTA_TEXT_MAX];
	int			 c = rep->code / 100;
	int			 piped = s->caps.ext & MTA_EXT_PIPELINING;

	switch (p->cmd) {
	case MSC_MAIL:
		if (c == 2)
			s->mailok = 1;
		else {
			ms_said(s, rep, text, sizeof(text));
			ms_fail_open(s, c == 5 ? SQ_PERMFAIL : SQ_TEMPFAIL,
			    text);
			mta_host_result(s->hs, 0, NULL, text);
		}
		if (piped)
			return 0;	/* the RCPTs' and DATA's replies follow */
		if (!s->mailok) {
			ms_task_end(s, 0);
			return -1;
		}
		(void)ms_rcpt_push(s);	/* ms_tx_begin saw one at least */
		return 0;
	case MSC_RCPT:
		if (c == 2 && p->r->status == -1) {
			s->accepted++;
			p->r->accepted = 1;
		} else if (c != 2) {
			ms_said(s, rep, text, sizeof(text));
			mta_rcpt_result(p->r, c == 5 ? SQ_PERMFAIL :
			    SQ_TEMPFAIL, "%s", text);
		}
		if (piped || ms_rcpt_push(s))
			return 0;
		if (s->accepted == 0) {
			ms_task_end(s, 0);
			return -1;
		}
		ms_push(s, MSC_DATA, NULL, "DATA\r\n");
		return 0;
	case MSC_DATA:
		if (c != 3 && c != 4 && c != 5) {
			/* Not an answer to DATA: nothing was sent yet. */
			ms_next_host(s, "%s: DATA answered with %d, not 354 "
			    "(#4.4.2)", s->addr, rep->code);
			return -1;
		}
		if (rep->code != 354) {
			if (s->accepted > 0)
				ms_result_all(s, rep, 0);
			ms_task_end(s, 0);
			return -1;
		}
		if (s->accepted == 0) {
			/* Nobody to send it to: an empty message ends it. */
			s->state = MS_DOT;
			ms_send(s, ".\r\n");
			return 0;
		}
		s->state = MS_BODY;
		s->off = 0;
		mta_data_init(&s->enc, MTA_LINE_MAX);
		event_add(&s->ev_wr, NULL);
		return 0;
	}
	return 0;
}

/*
 * The host refused us before MAIL: say QUIT as RFC 5321 3.1 asks, best
 * effort and without waiting for the answer, as the connection goes.
 */
static void
ms_quit_now(struct mta_session *s)
{
	static const char	 quit[] = "QUIT\r\n";
	ssize_t			 n;

	if (evbuffer_get_length(s->out) > 0)
		return;
	if (s->tls != NULL)
		n = tls_write(s->tls, quit, sizeof(quit) - 1);
	else
		n = write(s->fd, quit, sizeof(quit) - 1);
	if (n != sizeof(quit) - 1)
		log_debug("mta: %s: QUIT not sent", s->addr);
}

/* Act on a reply; -1 when the session is gone. */
static int
ms_reply(struct mta_session *s, const struct mta_reply *rep)
{
	char	 text[MTA_TEXT_MAX];
	int	 c = rep->code / 100;

	switch (s->state) {
	case MS_GREETING:
		if (c != 2) {
			ms_quit_now(s);
			ms_said(s, rep, text, sizeof(text));
			ms_next_host(s, "Connected to %s but the greeting "
			    "failed.\n%s", s->addr, strchr(text, '\n') + 1);
			return -1;
		}
		s->state = MS_EHLO;
		ms_send(s, "EHLO %s\r\n", conf->hostname);
		break;
	case MS_EHLO:
		if (c != 2 || mta_reply_ehlo(rep, &s->caps) == -1) {
			memset(&s->caps, 0, sizeof(s->caps));
			s->state = MS_HELO;
			ms_send(s, "HELO %s\r\n", conf->hostname);
			break;
		}
		if (s->tls == NULL && ms_want_tls(s)) {
			if (s->caps.ext & MTA_EXT_STARTTLS) {
				s->state = MS_STARTTLS;
				ms_send(s, "STARTTLS\r\n");
				break;
			}
			if (s->policy != TLSP_OPPORTUNISTIC) {
				ms_next_host(s, "%s: TLS %s, but STARTTLS is not "
				    "offered (#4.7.5)", s->addr,
				    config_tls_name(s->policy));
				return -1;
			}
		}
		return ms_ready(s);
	case MS_STARTTLS:
		if (rep->code == 220)
			return ms_starttls(s);
		if (s->policy != TLSP_OPPORTUNISTIC) {
			ms_said(s, rep, text, sizeof(text));
			ms_next_host(s, "%s: TLS %s, but STARTTLS was refused. %s",
			    s->addr, config_tls_name(s->policy),
			    strchr(text, '\n') + 1);
			return -1;
		}
		return ms_ready(s);	/* opportunistic: so in plaintext */
	case MS_AUTH_USER:
	case MS_AUTH_PASS:
	case MS_AUTH_CRAM:
	case MS_AUTH:
		if (s->state != MS_AUTH && rep->code == 334) {
			if (s->state == MS_AUTH_CRAM)
				return ms_auth_cram(s, rep);
			if (s->state == MS_AUTH_USER)
				ms_auth_send(s, "", s->auth_user,
				    strlen(s->auth_user), MS_AUTH_PASS);
			else
				ms_auth_send(s, "", s->auth_secret,
				    strlen(s->auth_secret), MS_AUTH);
			break;
		}
		if (s->state == MS_AUTH && c == 2) {
			ms_tx_begin(s);
			break;
		}
		ms_said(s, rep, text, sizeof(text));
		ms_next_host(s, "AUTH as %s failed: %s", s->auth_user, text);
		return -1;
	case MS_HELO:
		if (c != 2) {
			ms_quit_now(s);
			ms_said(s, rep, text, sizeof(text));
			ms_next_host(s, "Connected to %s but my name was "
			    "rejected.\n%s", s->addr, strchr(text, '\n') + 1);
			return -1;
		}
		return ms_ready(s);
	case MS_TX:
		return ms_tx_reply(s, rep);
	case MS_DOT:
		ms_result_all(s, rep, 1);
		s->ntx++;
		ms_task_end(s, 1);
		return -1;
	case MS_QUIT:
		ms_finish(s);
		return -1;
	default:
		ms_next_host(s, "%s: a reply out of turn (#4.4.2)", s->addr);
		return -1;
	}
	return 0;
}

/* How many replies the commands sent so far still have due. */
static size_t
ms_due(const struct mta_session *s)
{
	switch (s->state) {
	case MS_CONNECT:
	case MS_HANDSHAKE:
	case MS_BODY:
	case MS_IDLE:
		return 0;
	case MS_TX:
		return s->npend - s->head;
	default:
		return 1;
	}
}

static void
ms_read(int fd, short ev, void *arg)
{
	struct mta_session		*s = arg;
	enum mta_reply_status		 st;
	char				 buf[MS_READ_MAX];
	const char			*p;
	size_t				 used, left, due;
	ssize_t				 n;
	int				 replied = 0;

	if (s->state == MS_HANDSHAKE) {
		(void)ms_handshake(s);
		return;
	}
	if (s->tls != NULL) {
		n = tls_read(s->tls, buf, sizeof(buf));
		if (n == TLS_WANT_POLLIN)
			return;
		if (n == TLS_WANT_POLLOUT) {
			event_add(&s->ev_wr, NULL);
			return;
		}
		if (n == -1) {
			ms_next_host(s, "%s: TLS read: %s (#4.4.2)", s->addr,
			    tls_error(s->tls));
			return;
		}
	} else if ((n = read(fd, buf, sizeof(buf))) == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		ms_next_host(s, "%s: read: %s (#4.4.2)", s->addr,
		    strerror(errno));
		return;
	}
	if (n == 0 || s->state == MS_IDLE) {
		/* A server may say 421 and close an idle connection. */
		if (s->state == MS_QUIT || s->state == MS_IDLE)
			ms_finish(s);
		else
			ms_next_host(s, "%s: the connection was closed "
			    "(#4.4.2)", s->addr);
		return;
	}
	/*
	 * Only commands sent before these bytes were read can have replies
	 * in them, one each, in order: anything more is out of turn and
	 * would be taken for the answer to a later command (the
	 * CVE-2020-8794 class).
	 */
	due = ms_due(s);
	if (due == 0) {
		ms_next_host(s, "%s: a reply out of turn (#4.4.2)", s->addr);
		return;
	}
	for (p = buf, left = n; left > 0; p += used, left -= used) {
		st = mta_reply_feed(&s->rp, p, left, &used);
		if (st == MTA_REPLY_ERROR) {
			ms_next_host(s, "%s: bad reply: %s (#4.4.2)", s->addr,
			    s->rp.error);
			return;
		}
		if (st == MTA_REPLY_MORE)
			break;
		if (--due == 0 && used < left) {
			ms_next_host(s, "%s: a reply out of turn (#4.4.2)",
			    s->addr);
			return;
		}
		if (ms_reply(s, &s->rp.reply) == -1)
			return;
		replied = 1;
	}
	/* A reply's deadline runs from its command, not from each byte. */
	if (replied)
		ms_timer(s);
}

/* Refill the output with the encoded message; 0, or -1 when it failed. */
static int
ms_body(struct mta_session *s)
{
	char			 in[8192], out[16384];
	size_t			 used, made;
	ssize_t			 n;
	enum mta_data_status	 st;

	while (evbuffer_get_length(s->out) < MS_OUT_LOW) {
		n = pread(s->t->fd, in, sizeof(in), (off_t)s->off);
		if (n == -1) {
			ms_next_host(s, "cannot read the message: %s (#4.3.0)",
			    strerror(errno));
			return -1;
		}
		if (n == 0) {
			st = mta_data_finish(&s->enc, out, sizeof(out), &made);
			if (evbuffer_add(s->out, out, made) == -1)
				goto nomem;
			if (st == MTA_DATA_DONE) {
				s->state = MS_DOT;
				return 0;
			}
			continue;
		}
		st = mta_data_feed(&s->enc, in, n, &used, out, sizeof(out),
		    &made);
		if (evbuffer_add(s->out, out, made) == -1)
			goto nomem;
		if (st == MTA_DATA_ERROR) {
			/* Close without the dot: the server drops it all. */
			ms_fail_open(s, SQ_PERMFAIL, s->enc.error);
			ms_finish(s);
			return -1;
		}
		s->off += used;
	}
	return 0;
 nomem:
	ms_next_host(s, "%s: out of memory (#4.3.0)", s->addr);
	return -1;
}

/* Write what the output holds, as far as the socket takes it; -1: gone. */
static int
ms_flush(struct mta_session *s)
{
	unsigned char	*p;
	size_t		 len;
	ssize_t		 n;

	if (s->tls == NULL) {
		if (evbuffer_write(s->out, s->fd) == -1 && errno != EAGAIN &&
		    errno != EINTR) {
			ms_next_host(s, "%s: write: %s (#4.4.2)", s->addr,
			    strerror(errno));
			return -1;
		}
		return 0;
	}
	while ((len = evbuffer_get_length(s->out)) > 0) {
		if (len > 16384)
			len = 16384;
		if ((p = evbuffer_pullup(s->out, len)) == NULL) {
			ms_next_host(s, "%s: out of memory (#4.3.0)", s->addr);
			return -1;
		}
		n = tls_write(s->tls, p, len);
		if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT)
			break;
		if (n == -1) {
			ms_next_host(s, "%s: TLS write: %s (#4.4.2)", s->addr,
			    tls_error(s->tls));
			return -1;
		}
		evbuffer_drain(s->out, n);
	}
	return 0;
}

static void
ms_write(int fd, short ev, void *arg)
{
	struct mta_session	*s = arg;
	socklen_t		 sl = sizeof(int);
	int			 err = 0;

	if (s->broken) {
		ms_next_host(s, "%s: out of memory (#4.3.0)", s->addr);
		return;
	}
	if (s->state == MS_CONNECT) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) == -1)
			err = errno;
		if (err != 0) {
			ms_next_host(s, "%s: connect: %s (#4.4.1)", s->addr,
			    strerror(err));
			return;
		}
		if (ms_scan(s) == -1)
			return;
		s->state = MS_GREETING;
		event_add(&s->ev_rd, NULL);
		if (s->smtps) {
			s->implicit = 1;
			(void)ms_starttls(s);
			return;
		}
		ms_timer(s);
		return;
	}
	if (s->state == MS_HANDSHAKE) {
		(void)ms_handshake(s);
		return;
	}
	if (s->state == MS_BODY && ms_body(s) == -1)
		return;
	if (ms_flush(s) == -1)
		return;
	if (evbuffer_get_length(s->out) > 0 || s->state == MS_BODY)
		event_add(&s->ev_wr, NULL);
	ms_timer(s);
}
