/*
 * lka_auth_ldap.c: SMTP AUTH against an LDAP server ("auth ldap" on a
 * listener), through libldap.
 *
 * Each auth source has a pool of long-lived worker processes forked from
 * lka, at most its "pool" size (default LDAP_POOL_DEFAULT), started as
 * checks need them.  A worker keeps one connection to the server open
 * (bound as search-dn when one is set) and takes one check at a time over
 * a SOCK_SEQPACKET socketpair: lka sends user and password, the worker
 * answers one octet.  lka itself never waits: a timer on its loop kills
 * a worker that has no verdict after the source's timeout (the whole
 * check) and answers a temporary failure; the next check that finds no
 * idle worker forks a replacement.  Checks that find every worker busy
 * wait in order, at most LDAP_WAIT_MAX; beyond that they fail at once.
 *
 * Why processes and not threads (libldap 2.5 is reentrant): libldap
 * connects and does the StartTLS handshake synchronously, and a thread
 * stuck in a call to a server that accepted and never answers cannot be
 * stopped; a process can be killed and replaced.  A worker also keeps
 * libldap's parsing of the server's bytes out of lka's address space.
 *
 * A worker whose connection is down reconnects.  A check that finds
 * its connection broken under it (a server restarted, or closed an idle
 * connection) is retried once on a new one.  A worker without a
 * connection tries again by itself after a backoff (LDAP_BACKOFF_MIN
 * seconds, doubling to LDAP_BACKOFF_MAX), and for a check at once unless
 * an attempt failed less than LDAP_BACKOFF_MIN ago (then the check fails
 * at once, 454): a server that is down sees at most one attempt a second
 * from a busy worker, and one that is back is used at the next check.
 *
 * The two modes: bind as bind-dn with the user put in (escaped as an
 * RFC 4514 attribute value), or search base for filter with the user put
 * in (escaped as an RFC 4515 assertion value), as search-dn if set, and
 * bind as the one entry found; none or more than one is bad credentials.
 * The user's bind happens on the same connection: a failed bind leaves a
 * connection anonymous and a good one leaves it the user's (RFC 4513
 * 4), so after it, once the verdict is sent, the worker binds as
 * search-dn again (anonymously when there is none) and never searches
 * with another identity.  One connection per worker rather than a second
 * one for user binds: half the connections on the server for one extra
 * bind, done while the worker is idle anyway.
 *
 * An empty password is refused before anything is sent: an empty simple
 * bind is an unauthenticated bind, which servers answer with success
 * (RFC 4513 5.1.2).  Only invalidCredentials (and a DN the server finds
 * malformed) from the user's bind is the user's fault; every other
 * result, and any failure before it, is temporary: never an accept.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <lber.h>
#include <ldap.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "lka.h"
#include "log.h"
#include "mproc.h"
#include "proc.h"
#include "sqmail.h"

#define LDAP_POOL_DEFAULT	4	/* workers (connections) per source */
#define LDAP_WAIT_MAX		256	/* checks waiting for a worker */
#define LDAP_BACKOFF_MIN	1	/* seconds before reconnecting */
#define LDAP_BACKOFF_MAX	16

/* A worker's verdicts, one octet each. */
#define LDAP_V_OK		'o'
#define LDAP_V_BAD		'b'
#define LDAP_V_TEMP		't'

/* A DN or filter with the user put in: every octet escaped, 3 each. */
#define LDAP_EXPANDED_MAX	(AUTH_LDAP_STR + 3 * LKA_AUTH_USER_MAX * 4)

/* lka -> worker: one check, one SOCK_SEQPACKET message; wiped on both sides. */
struct ldapmsg {
	char			 user[LKA_AUTH_USER_MAX + 1];
	char			 pass[LKA_AUTH_PASS_MAX + 1];
};

/* A check waiting for a worker or running on one. */
struct ldapcheck {
	TAILQ_ENTRY(ldapcheck)	 entry;
	struct mproc		*p;
	uint64_t		 reqid;
	struct ldapmsg		 msg;		/* wiped once sent */
};
TAILQ_HEAD(ldapchecklist, ldapcheck);

struct ldappool;
struct ldapworker {
	TAILQ_ENTRY(ldapworker)	 entry;
	struct ldappool		*pool;
	pid_t			 pid;
	int			 fd;		/* lka's end */
	struct event		 ev_read;
	struct event		 ev_timeout;
	struct ldapcheck	*check;		/* running; NULL: idle */
};

/* One per auth source (its name hashes every option, the pool size too). */
struct ldappool {
	TAILQ_ENTRY(ldappool)	 entry;
	char			 name[64];
	struct authldap		 l;		/* copied: reloads; wiped */
	time_t			 timeout;
	size_t			 size;
	TAILQ_HEAD(, ldapworker) workers;
	size_t			 nworkers;
	struct ldapchecklist	 waiting;
	size_t			 nwaiting;
};
static TAILQ_HEAD(, ldappool)	 ldap_pools =
    TAILQ_HEAD_INITIALIZER(ldap_pools);

/*
 * Put user into a DN or filter template in place of each "%u" ("%%" is a
 * '%').  Every octet of the user but letters, digits, '.', '_', '-' and
 * '@' becomes "\XX": a hex pair is a valid escape in a DN attribute value
 * (RFC 4514 2.4) and in a filter's assertion value (RFC 4515 3), so the
 * user can neither end the value nor add a wildcard, an RDN or a filter.
 * Returns -1 when the result does not fit.
 */
int
lka_auth_ldap_expand(const char *tmpl, const char *user, char *out,
    size_t outlen)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const char		*t, *u;
	unsigned char		 c;
	size_t			 n = 0;

	for (t = tmpl; *t != '\0'; t++) {
		if (*t != '%' || (t[1] != 'u' && t[1] != '%')) {
			if (n + 1 >= outlen)
				return -1;
			out[n++] = *t;
			continue;
		}
		t++;
		if (*t == '%') {
			if (n + 1 >= outlen)
				return -1;
			out[n++] = '%';
			continue;
		}
		for (u = user; *u != '\0'; u++) {
			c = (unsigned char)*u;
			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
			    c == '-' || c == '@') {
				if (n + 1 >= outlen)
					return -1;
				out[n++] = c;
				continue;
			}
			if (n + 3 >= outlen)
				return -1;
			out[n++] = '\\';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 0xf];
		}
	}
	out[n] = '\0';
	return 0;
}

/* One simple bind: the LDAP result code (a client-side one if none came). */
static int
ldap_simple_bind1(LDAP *ld, const char *dn, const char *pw)
{
	struct berval	 cred;
	int		 rc;

	cred.bv_val = (char *)pw;
	cred.bv_len = strlen(pw);
	rc = ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL,
	    NULL);
	return rc;
}

/* What the last failure on ld adds to its code (TLS errors, ...), or "". */
static const char *
ldap_diag(LDAP *ld)
{
	static char	 buf[256];
	char		*m = NULL;

	buf[0] = '\0';
	if (ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &m) ==
	    LDAP_OPT_SUCCESS && m != NULL) {
		(void)snprintf(buf, sizeof(buf), "; %s", m);
		ldap_memfree(m);
	}
	return buf;
}

/*
 * The worker's side.  Its state: the connection (NULL: none), whether
 * the connection's identity is the service's (search-dn, or anonymous
 * without one), and when to try connecting again.
 */
static struct {
	const struct authldap	*l;
	time_t			 timeout;
	LDAP			*ld;
	int			 as_service;
	time_t			 next_try;	/* idle reconnect; 0: now */
	time_t			 backoff;
	time_t			 last_try;	/* last failed attempt */
} w;

/* A result code that says the connection is gone (or never came). */
static int
worker_lost(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR ||
	    rc == LDAP_TIMEOUT;
}

static time_t
worker_now(void)
{
	struct timespec	 ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void
worker_drop(void)
{
	if (w.ld != NULL)
		(void)ldap_unbind_ext_s(w.ld, NULL, NULL);
	w.ld = NULL;
	w.as_service = 0;
}

/* Bind as the service: search-dn, or anonymously.  An LDAP result code. */
static int
worker_bind_service(void)
{
	const struct authldap	*l = w.l;
	int			 rc;

	rc = ldap_simple_bind1(w.ld, l->search_dn, l->search_pw);
	if (rc != LDAP_SUCCESS)
		log_warnx("lka: auth: ldap: %s: bind as %s: %s%s", l->url,
		    l->search_dn[0] != '\0' ? l->search_dn : "anonymous",
		    ldap_err2string(rc), ldap_diag(w.ld));
	else
		w.as_service = 1;
	return rc;
}

/*
 * Open a connection: TCP (and TLS), StartTLS, the service's bind in
 * search mode.  0, or -1 with the failure logged and the next attempt
 * put off.
 */
static int
worker_connect(void)
{
	const struct authldap	*l = w.l;
	struct timeval		 tv;
	int			 rc, v;

	worker_drop();
	tv.tv_sec = w.timeout;
	tv.tv_usec = 0;
	if ((rc = ldap_initialize(&w.ld, l->url)) != LDAP_SUCCESS) {
		log_warnx("lka: auth: ldap: %s: %s", l->url,
		    ldap_err2string(rc));
		w.ld = NULL;
		goto fail;
	}
	v = LDAP_VERSION3;
	if (ldap_set_option(w.ld, LDAP_OPT_PROTOCOL_VERSION, &v) !=
	    LDAP_OPT_SUCCESS ||
	    ldap_set_option(w.ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) !=
	    LDAP_OPT_SUCCESS ||
	    ldap_set_option(w.ld, LDAP_OPT_NETWORK_TIMEOUT, &tv) !=
	    LDAP_OPT_SUCCESS ||
	    ldap_set_option(w.ld, LDAP_OPT_TIMEOUT, &tv) != LDAP_OPT_SUCCESS) {
		log_warnx("lka: auth: ldap: cannot set the options");
		goto fail;
	}
	/* Connect now (ldaps:// shakes hands here), not at the first use. */
	if ((rc = ldap_connect(w.ld)) != LDAP_SUCCESS) {
		log_warnx("lka: auth: ldap: %s: connect: %s%s", l->url,
		    ldap_err2string(rc), ldap_diag(w.ld));
		goto fail;
	}
	if (l->starttls && (rc = ldap_start_tls_s(w.ld, NULL, NULL)) !=
	    LDAP_SUCCESS) {
		log_warnx("lka: auth: ldap: %s: StartTLS: %s%s", l->url,
		    ldap_err2string(rc), ldap_diag(w.ld));
		goto fail;
	}
	/* A new connection is anonymous: the service's own in that case. */
	w.as_service = 1;
	if (l->bind_dn[0] == '\0' && l->search_dn[0] != '\0' &&
	    worker_bind_service() != LDAP_SUCCESS)
		goto fail;
	w.backoff = 0;
	w.next_try = 0;
	w.last_try = 0;
	log_debug("lka: auth: ldap: %s: connected (worker %d)", l->url,
	    (int)getpid());
	return 0;
fail:
	worker_drop();
	w.backoff = w.backoff == 0 ? LDAP_BACKOFF_MIN :
	    w.backoff * 2 > LDAP_BACKOFF_MAX ? LDAP_BACKOFF_MAX : w.backoff * 2;
	w.last_try = worker_now();
	w.next_try = w.last_try + w.backoff;
	return -1;
}

/*
 * One check on the open connection: a verdict, or LDAP_V_TEMP with
 * *lost set when the connection broke under it.
 */
static int
worker_check_once(const struct ldapmsg *m, int *lost)
{
	const struct authldap	*l = w.l;
	struct timeval		 tv;
	LDAPMessage		*res = NULL, *e;
	char			 dn[LDAP_EXPANDED_MAX];
	char			 filter[LDAP_EXPANDED_MAX];
	char			*edn = NULL;
	char			*attrs[] = { LDAP_NO_ATTRS, NULL };
	int			 rc, n, v = LDAP_V_TEMP;

	*lost = 0;
	tv.tv_sec = w.timeout;
	tv.tv_usec = 0;
	if (l->bind_dn[0] != '\0') {
		if (lka_auth_ldap_expand(l->bind_dn, m->user, dn,
		    sizeof(dn)) == -1)
			return LDAP_V_BAD;
	} else {
		if (lka_auth_ldap_expand(l->filter, m->user, filter,
		    sizeof(filter)) == -1)
			return LDAP_V_BAD;
		if (!w.as_service && (rc = worker_bind_service()) !=
		    LDAP_SUCCESS) {
			*lost = worker_lost(rc);
			return LDAP_V_TEMP;
		}
		/* Two entries are as many as we need to see: too many. */
		rc = ldap_search_ext_s(w.ld, l->base, LDAP_SCOPE_SUBTREE,
		    filter, attrs, 1, NULL, NULL, &tv, 2, &res);
		if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
			log_warnx("lka: auth: ldap: %s: search %s: %s%s",
			    l->url, l->base, ldap_err2string(rc),
			    ldap_diag(w.ld));
			*lost = worker_lost(rc);
			goto done;
		}
		n = ldap_count_entries(w.ld, res);
		if (n != 1 || rc == LDAP_SIZELIMIT_EXCEEDED) {
			log_info("lka: auth: ldap: %s: %s entries for user %s",
			    l->url, n == 0 ? "no" : "several", m->user);
			v = LDAP_V_BAD;
			goto done;
		}
		e = ldap_first_entry(w.ld, res);
		if (e == NULL || (edn = ldap_get_dn(w.ld, e)) == NULL ||
		    strlcpy(dn, edn, sizeof(dn)) >= sizeof(dn)) {
			log_warnx("lka: auth: ldap: %s: no usable DN in the "
			    "entry found", l->url);
			goto done;
		}
	}

	/* From here on the connection is not the service's. */
	w.as_service = 0;
	rc = ldap_simple_bind1(w.ld, dn, m->pass);
	switch (rc) {
	case LDAP_SUCCESS:
		v = LDAP_V_OK;
		break;
	case LDAP_INVALID_CREDENTIALS:
	case LDAP_INVALID_DN_SYNTAX:
		v = LDAP_V_BAD;
		break;
	default:
		log_warnx("lka: auth: ldap: %s: bind as %s: %s%s", l->url, dn,
		    ldap_err2string(rc), ldap_diag(w.ld));
		*lost = worker_lost(rc);
		break;
	}
done:
	if (edn != NULL)
		ldap_memfree(edn);
	if (res != NULL)
		ldap_msgfree(res);
	return v;
}

/* One check, connecting first if need be. */
static int
worker_check(const struct ldapmsg *m)
{
	int	 v, lost, fresh = 0;

	if (m->user[0] == '\0' || m->pass[0] == '\0')
		return LDAP_V_BAD;	/* lka refuses both before: never sent */
	if (w.ld == NULL) {
		/*
		 * A check tries at once, unless an attempt failed within the
		 * last LDAP_BACKOFF_MIN: one attempt a second per worker at
		 * most while the server is down, and no longer a wait than
		 * that once it is back.
		 */
		if (w.last_try != 0 &&
		    worker_now() - w.last_try < LDAP_BACKOFF_MIN) {
			log_warnx("lka: auth: ldap: %s: not connected (the "
			    "last attempt failed just now)", w.l->url);
			return LDAP_V_TEMP;
		}
		if (worker_connect() == -1)
			return LDAP_V_TEMP;
		fresh = 1;
	}
	v = worker_check_once(m, &lost);
	if (lost && !fresh) {
		/* A connection that served before broke: once more anew. */
		log_info("lka: auth: ldap: %s: connection lost; reconnecting",
		    w.l->url);
		if (worker_connect() == 0)
			v = worker_check_once(m, &lost);
	}
	if (lost)
		worker_drop();
	return v;
}

/* The worker process: checks from fd until lka closes it. */
static __attribute__((__noreturn__)) void
ldap_worker(int fd, const struct authldap *l, time_t timeout)
{
	struct ldapmsg	 m;
	struct pollfd	 pfd;
	ssize_t		 n;
	time_t		 now;
	char		 v;
	int		 r, ms, opt;

	proc_child_signals(1);	/* a dead lka: EPIPE, then we exit */
	/*
	 * lka's channels and loop are not ours to touch.  syslog's socket
	 * goes through closelog() first: closed behind its back, its number
	 * could come back as libldap's connection and the log go there.
	 */
	closelog();
	if (fd != STDERR_FILENO + 1) {
		if (dup2(fd, STDERR_FILENO + 1) == -1)
			_exit(1);
		fd = STDERR_FILENO + 1;
	}
	closefrom(fd + 1);
	/* No ldap.conf or ~/.ldaprc: only sqmail.conf says what we do. */
	(void)setenv("LDAPNOINIT", "1", 1);
	opt = LDAP_OPT_X_TLS_DEMAND;
	if (ldap_set_option(NULL, LDAP_OPT_X_TLS_REQUIRE_CERT, &opt) !=
	    LDAP_OPT_SUCCESS ||
	    (l->ca[0] != '\0' && ldap_set_option(NULL,
	    LDAP_OPT_X_TLS_CACERTFILE, l->ca) != LDAP_OPT_SUCCESS)) {
		log_warnx("lka: auth: ldap: cannot set the TLS options");
		_exit(1);
	}
	memset(&w, 0, sizeof(w));
	w.l = l;
	w.timeout = timeout;

	for (;;) {
		ms = -1;
		if (w.ld == NULL) {
			now = worker_now();
			ms = w.next_try <= now ? 0 :
			    (int)(w.next_try - now) * 1000;
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if ((r = poll(&pfd, 1, ms)) == -1) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		if (r == 0) {
			/* Idle and not connected: time to try again. */
			(void)worker_connect();
			continue;
		}
		n = recv(fd, &m, sizeof(m), 0);
		if (n == 0)
			_exit(0);	/* lka is done with us */
		if (n == -1 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(m) ||
		    m.user[sizeof(m.user) - 1] != '\0' ||
		    m.pass[sizeof(m.pass) - 1] != '\0')
			_exit(1);	/* not lka's message: fail closed */
		v = (char)worker_check(&m);
		explicit_bzero(&m, sizeof(m));
		if (send(fd, &v, 1, 0) != 1)
			_exit(1);
		/*
		 * Back to the service's identity while idle, so that the
		 * next search does not wait for it.
		 */
		if (w.ld != NULL && !w.as_service && l->bind_dn[0] == '\0' &&
		    worker_lost(worker_bind_service()))
			worker_drop();
	}
}

/* lka's side. */
static void	pool_run(struct ldappool *);

static void
check_answer(struct ldapcheck *c, int status)
{
	lka_auth_answer(c->p, c->reqid, status);
	freezero(c, sizeof(*c));
}

/* Forget a worker (it exited, broke the protocol, or timed out). */
static void
worker_end(struct ldapworker *wk, int killit)
{
	struct ldappool	*pool = wk->pool;

	event_del(&wk->ev_read);
	evtimer_del(&wk->ev_timeout);
	if (killit)
		(void)kill(wk->pid, SIGKILL);
	(void)close(wk->fd);	/* an idle worker reads EOF and exits */
	TAILQ_REMOVE(&pool->workers, wk, entry);
	pool->nworkers--;
	if (wk->check != NULL)
		check_answer(wk->check, SQ_TEMPFAIL);
	free(wk);
}

static void
worker_timeout(int fd, short ev, void *arg)
{
	struct ldapworker	*wk = arg;
	struct ldappool		*pool = wk->pool;

	log_warnx("lka: auth: %s: no verdict in %lld s; worker %d killed",
	    pool->l.url, (long long)pool->timeout, (int)wk->pid);
	worker_end(wk, 1);
	pool_run(pool);
}

static void
worker_read(int fd, short ev, void *arg)
{
	struct ldapworker	*wk = arg;
	struct ldappool		*pool = wk->pool;
	struct ldapcheck	*c;
	ssize_t			 n;
	char			 v;

	if ((n = recv(fd, &v, 1, 0)) == -1 &&
	    (errno == EINTR || errno == EAGAIN))
		return;
	if (n != 1 || wk->check == NULL) {
		if (n == -1)
			log_warn("lka: auth: ldap: worker %d", (int)wk->pid);
		else if (n == 0)
			log_warnx("lka: auth: ldap: worker %d exited",
			    (int)wk->pid);
		else
			log_warnx("lka: auth: ldap: worker %d spoke out of "
			    "turn", (int)wk->pid);
		worker_end(wk, 1);
		pool_run(pool);
		return;
	}
	evtimer_del(&wk->ev_timeout);
	c = wk->check;
	wk->check = NULL;
	switch (v) {
	case LDAP_V_OK:
		check_answer(c, SQ_OK);
		break;
	case LDAP_V_BAD:
		check_answer(c, SQ_PERMFAIL);
		break;
	default:
		check_answer(c, SQ_TEMPFAIL);
		break;
	}
	pool_run(pool);
}

/* Fork one more worker; NULL when that fails (logged). */
static struct ldapworker *
worker_spawn(struct ldappool *pool)
{
	struct ldapworker	*wk;
	int			 sv[2];
	pid_t			 pid;

	if ((wk = calloc(1, sizeof(*wk))) == NULL) {
		log_warn("lka: auth: ldap");
		return NULL;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("lka: auth: ldap: socketpair");
		free(wk);
		return NULL;
	}
	if ((pid = fork()) == -1) {
		log_warn("lka: auth: ldap: fork");
		(void)close(sv[0]);
		(void)close(sv[1]);
		free(wk);
		return NULL;
	}
	if (pid == 0) {
		(void)close(sv[0]);
		ldap_worker(sv[1], &pool->l, pool->timeout);
	}
	(void)close(sv[1]);
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) == -1)
		log_warn("lka: auth: ldap: fcntl");
	/* Reaped whenever it exits; its end shows as EOF on sv[0]. */
	lka_child_reap(pid);
	wk->pool = pool;
	wk->pid = pid;
	wk->fd = sv[0];
	event_set(&wk->ev_read, wk->fd, EV_READ | EV_PERSIST, worker_read, wk);
	event_add(&wk->ev_read, NULL);
	evtimer_set(&wk->ev_timeout, worker_timeout, wk);
	TAILQ_INSERT_TAIL(&pool->workers, wk, entry);
	pool->nworkers++;
	log_debug("lka: auth: ldap: %s: worker %d started (%zu of %zu)",
	    pool->l.url, (int)pid, pool->nworkers, pool->size);
	return wk;
}

/* Give waiting checks to idle workers, starting workers up to the size. */
static void
pool_run(struct ldappool *pool)
{
	struct ldapworker	*wk;
	struct ldapcheck	*c;
	struct timeval		 tv;

	while ((c = TAILQ_FIRST(&pool->waiting)) != NULL) {
		TAILQ_FOREACH(wk, &pool->workers, entry)
			if (wk->check == NULL)
				break;
		if (wk == NULL && pool->nworkers < pool->size)
			wk = worker_spawn(pool);
		if (wk == NULL) {
			if (pool->nworkers > 0)
				return;	/* its turn comes when one is done */
			/* Not one worker: nobody would take it. */
			TAILQ_REMOVE(&pool->waiting, c, entry);
			pool->nwaiting--;
			check_answer(c, SQ_TEMPFAIL);
			continue;
		}
		TAILQ_REMOVE(&pool->waiting, c, entry);
		pool->nwaiting--;
		wk->check = c;
		if (send(wk->fd, &c->msg, sizeof(c->msg), MSG_NOSIGNAL) !=
		    (ssize_t)sizeof(c->msg)) {
			/* Idle, so its buffer is empty: it is gone. */
			log_warn("lka: auth: ldap: worker %d", (int)wk->pid);
			explicit_bzero(&c->msg, sizeof(c->msg));
			worker_end(wk, 1);
			continue;
		}
		explicit_bzero(&c->msg, sizeof(c->msg));
		tv.tv_sec = pool->timeout;
		tv.tv_usec = 0;
		evtimer_add(&wk->ev_timeout, &tv);
	}
}

static void
pool_free(struct ldappool *pool)
{
	struct ldapworker	*wk;
	struct ldapcheck	*c;

	while ((wk = TAILQ_FIRST(&pool->workers)) != NULL)
		worker_end(wk, 1);
	while ((c = TAILQ_FIRST(&pool->waiting)) != NULL) {
		TAILQ_REMOVE(&pool->waiting, c, entry);
		check_answer(c, SQ_TEMPFAIL);
	}
	TAILQ_REMOVE(&ldap_pools, pool, entry);
	freezero(pool, sizeof(*pool));
}

/*
 * The pool of source as: found by name, or made.  Pools of sources a
 * reload removed go first, their connections closed (a check still
 * running there fails temporarily).
 */
static struct ldappool *
pool_get(const struct authsrc *as)
{
	struct ldappool	*pool, *tmp;

	TAILQ_FOREACH_SAFE(pool, &ldap_pools, entry, tmp)
		if (config_authsrc(conf, pool->name) == NULL) {
			log_info("lka: auth: ldap: %s: source gone; pool "
			    "closed", pool->l.url);
			pool_free(pool);
		}
	TAILQ_FOREACH(pool, &ldap_pools, entry)
		if (strcmp(pool->name, as->name) == 0)
			return pool;
	if ((pool = calloc(1, sizeof(*pool))) == NULL) {
		log_warn("lka: auth: ldap");
		return NULL;
	}
	(void)strlcpy(pool->name, as->name, sizeof(pool->name));
	pool->l = as->ldap;
	pool->timeout = as->timeout > 0 ? as->timeout : AUTH_LDAP_TIMEOUT;
	pool->size = as->ldap.pool > 0 ? (size_t)as->ldap.pool :
	    LDAP_POOL_DEFAULT;
	TAILQ_INIT(&pool->workers);
	TAILQ_INIT(&pool->waiting);
	TAILQ_INSERT_TAIL(&ldap_pools, pool, entry);
	return pool;
}

int
lka_auth_ldap(struct mproc *p, uint64_t reqid, const struct authsrc *as,
    const char *user, const char *pass)
{
	struct ldappool		*pool;
	struct ldapcheck	*c;

	/* An empty simple bind is anonymous, and succeeds: never send it. */
	if (pass[0] == '\0' || user[0] == '\0')
		return SQ_PERMFAIL;
	if (strlen(user) > LKA_AUTH_USER_MAX ||
	    strlen(pass) > LKA_AUTH_PASS_MAX)
		return SQ_PERMFAIL;
	if ((pool = pool_get(as)) == NULL)
		return SQ_TEMPFAIL;
	if (pool->nwaiting >= LDAP_WAIT_MAX) {
		log_warnx("lka: auth: %zu ldap checks waiting already",
		    pool->nwaiting);
		return SQ_TEMPFAIL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("lka: auth: ldap");
		return SQ_TEMPFAIL;
	}
	c->p = p;
	c->reqid = reqid;
	(void)strlcpy(c->msg.user, user, sizeof(c->msg.user));
	(void)strlcpy(c->msg.pass, pass, sizeof(c->msg.pass));
	TAILQ_INSERT_TAIL(&pool->waiting, c, entry);
	pool->nwaiting++;
	pool_run(pool);
	return -1;
}
