/*
 * lka_auth_ldap.c: SMTP AUTH against an LDAP server ("auth ldap" on a
 * listener), through libldap.
 *
 * Each check runs in a short-lived child forked from lka, which talks to
 * the server with libldap's synchronous calls and says its verdict by its
 * exit status: 0 authenticated, 1 bad credentials, anything else (or the
 * kill below) a temporary failure.  lka itself never waits: SIGCHLD tells
 * it when to reap, and a timer on lka's loop kills a child that has no
 * verdict after the source's timeout (the whole check: connect, StartTLS,
 * search, bind), so a server that accepts and never answers costs one
 * child for that long.  We chose this over libldap's asynchronous calls on
 * lka's loop because libldap connects and does the StartTLS handshake
 * synchronously; a pool of open connections would need both done off the
 * loop.  What bounds the server's load instead: at most LDAP_CONCURRENCY
 * checks at once, later ones wait in order, at most LDAP_WAIT_MAX.
 *
 * The two modes: bind as bind-dn with the user put in (escaped as an
 * RFC 4514 attribute value), or search base for filter with the user put
 * in (escaped as an RFC 4515 assertion value), after a bind as search-dn
 * if set, and bind as the one entry found; none or more than one is bad
 * credentials.  An empty password is refused before anything is sent: an
 * empty simple bind is an unauthenticated bind, which servers answer with
 * success (RFC 4513 5.1.2).  Only invalidCredentials (and a DN the server
 * finds malformed) from the user's bind is the user's fault; every other
 * result, and any failure before it, is temporary: never an accept.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <lber.h>
#include <ldap.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "lka.h"
#include "log.h"
#include "sqmail.h"

#define LDAP_CONCURRENCY	4	/* checks at once */
#define LDAP_WAIT_MAX		256	/* checks waiting for a turn */

/* The child's exit statuses. */
#define LDAP_EXIT_OK		0
#define LDAP_EXIT_BAD		1
#define LDAP_EXIT_TEMP		111

/* A DN or filter with the user put in: every octet escaped, 3 each. */
#define LDAP_EXPANDED_MAX	(AUTH_LDAP_STR + 3 * LKA_AUTH_USER_MAX * 4)

struct authldapreq {
	struct lka_child	 c;		/* first: the pool's view */
	struct mproc		*p;
	uint64_t		 reqid;
	struct authsrc		 as;		/* copied: reloads; wiped */
	char			 user[LKA_AUTH_USER_MAX + 1];
	char			 pass[LKA_AUTH_PASS_MAX + 1];	/* wiped */
};

static pid_t	ldap_spawn(struct lka_child *);
static void	ldap_done(struct lka_child *, int);

static struct lka_childpool	 ldap_pool = {
	.name = "ldap", .concurrency = LDAP_CONCURRENCY,
	.waitmax = LDAP_WAIT_MAX, .exit_ok = LDAP_EXIT_OK,
	.exit_bad = LDAP_EXIT_BAD, .spawn = ldap_spawn, .done = ldap_done
};

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
ldap_child_bind(LDAP *ld, const char *dn, const char *pw)
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
ldap_child_diag(LDAP *ld)
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

/* The child: one check, said by the exit status. */
static __attribute__((__noreturn__)) void
ldap_child(struct authldapreq *r)
{
	struct authldap	*l = &r->as.ldap;
	struct timeval	 tv;
	sigset_t	 set;
	LDAP		*ld = NULL;
	LDAPMessage	*res = NULL, *e;
	char		 dn[LDAP_EXPANDED_MAX], filter[LDAP_EXPANDED_MAX];
	char		*edn = NULL;
	char		*attrs[] = { LDAP_NO_ATTRS, NULL };
	int		 rc, n, v, status = LDAP_EXIT_TEMP;

	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigemptyset(&set);
	(void)sigprocmask(SIG_SETMASK, &set, NULL);
	/*
	 * lka's channels and loop are not ours to touch.  syslog's socket
	 * goes through closelog() first: closed behind its back, its number
	 * could come back as libldap's connection and the log go there.
	 */
	closelog();
	closefrom(STDERR_FILENO + 1);
	/* A backstop should the parent's kill not come. */
	alarm((unsigned int)r->as.timeout + 5);
	/* No ldap.conf or ~/.ldaprc: only sqmail.conf says what we do. */
	(void)setenv("LDAPNOINIT", "1", 1);

	tv.tv_sec = r->as.timeout;
	tv.tv_usec = 0;
	v = LDAP_OPT_X_TLS_DEMAND;
	if (ldap_set_option(NULL, LDAP_OPT_X_TLS_REQUIRE_CERT, &v) !=
	    LDAP_OPT_SUCCESS ||
	    (l->ca[0] != '\0' && ldap_set_option(NULL,
	    LDAP_OPT_X_TLS_CACERTFILE, l->ca) != LDAP_OPT_SUCCESS)) {
		log_warnx("lka: auth: ldap: cannot set the TLS options");
		goto done;
	}
	if ((rc = ldap_initialize(&ld, l->url)) != LDAP_SUCCESS) {
		log_warnx("lka: auth: ldap: %s: %s", l->url,
		    ldap_err2string(rc));
		goto done;
	}
	v = LDAP_VERSION3;
	if (ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v) !=
	    LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) !=
	    LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv) !=
	    LDAP_OPT_SUCCESS ||
	    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv) != LDAP_OPT_SUCCESS) {
		log_warnx("lka: auth: ldap: cannot set the options");
		goto done;
	}
	if (l->starttls && (rc = ldap_start_tls_s(ld, NULL, NULL)) !=
	    LDAP_SUCCESS) {
		log_warnx("lka: auth: ldap: %s: StartTLS: %s%s", l->url,
		    ldap_err2string(rc), ldap_child_diag(ld));
		goto done;
	}

	if (l->bind_dn[0] != '\0') {
		if (lka_auth_ldap_expand(l->bind_dn, r->user, dn,
		    sizeof(dn)) == -1) {
			status = LDAP_EXIT_BAD;
			goto done;
		}
	} else {
		if (l->search_dn[0] != '\0' && (rc = ldap_child_bind(ld,
		    l->search_dn, l->search_pw)) != LDAP_SUCCESS) {
			log_warnx("lka: auth: ldap: %s: bind as search-dn %s: "
			    "%s%s", l->url, l->search_dn, ldap_err2string(rc),
			    ldap_child_diag(ld));
			goto done;
		}
		if (lka_auth_ldap_expand(l->filter, r->user, filter,
		    sizeof(filter)) == -1) {
			status = LDAP_EXIT_BAD;
			goto done;
		}
		/* Two entries are as many as we need to see: too many. */
		rc = ldap_search_ext_s(ld, l->base, LDAP_SCOPE_SUBTREE, filter,
		    attrs, 1, NULL, NULL, &tv, 2, &res);
		if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
			log_warnx("lka: auth: ldap: %s: search %s: %s%s",
			    l->url, l->base, ldap_err2string(rc),
			    ldap_child_diag(ld));
			goto done;
		}
		n = ldap_count_entries(ld, res);
		if (n != 1 || rc == LDAP_SIZELIMIT_EXCEEDED) {
			log_info("lka: auth: ldap: %s: %s entries for user %s",
			    l->url, n == 0 ? "no" : "several", r->user);
			status = LDAP_EXIT_BAD;
			goto done;
		}
		e = ldap_first_entry(ld, res);
		if (e == NULL || (edn = ldap_get_dn(ld, e)) == NULL ||
		    strlcpy(dn, edn, sizeof(dn)) >= sizeof(dn)) {
			log_warnx("lka: auth: ldap: %s: no usable DN in the "
			    "entry found", l->url);
			goto done;
		}
	}

	rc = ldap_child_bind(ld, dn, r->pass);
	switch (rc) {
	case LDAP_SUCCESS:
		status = LDAP_EXIT_OK;
		break;
	case LDAP_INVALID_CREDENTIALS:
	case LDAP_INVALID_DN_SYNTAX:
		status = LDAP_EXIT_BAD;
		break;
	default:
		log_warnx("lka: auth: ldap: %s: bind as %s: %s%s", l->url, dn,
		    ldap_err2string(rc), ldap_child_diag(ld));
		break;
	}
done:
	explicit_bzero(r->pass, sizeof(r->pass));
	explicit_bzero(l->search_pw, sizeof(l->search_pw));
	_exit(status);
}

/* The verdict: answer and forget the request. */
static void
ldap_done(struct lka_child *c, int status)
{
	struct authldapreq	*r = (struct authldapreq *)c;

	lka_auth_answer(r->p, r->reqid, status);
	freezero(r, sizeof(*r));
}

static pid_t
ldap_spawn(struct lka_child *c)
{
	struct authldapreq	*r = (struct authldapreq *)c;
	pid_t			 pid;

	if ((pid = fork()) == -1) {
		log_warn("lka: auth: ldap: fork");
		return -1;
	}
	if (pid == 0)
		ldap_child(r);
	/* The child has its own copy; ours is of no more use. */
	explicit_bzero(r->pass, sizeof(r->pass));
	explicit_bzero(r->as.ldap.search_pw, sizeof(r->as.ldap.search_pw));
	return pid;
}

int
lka_auth_ldap(struct mproc *p, uint64_t reqid, const struct authsrc *as,
    const char *user, const char *pass)
{
	struct authldapreq	*r;

	/* An empty simple bind is anonymous, and succeeds: never send it. */
	if (pass[0] == '\0' || user[0] == '\0')
		return SQ_PERMFAIL;
	if (strlen(user) > LKA_AUTH_USER_MAX ||
	    strlen(pass) > LKA_AUTH_PASS_MAX)
		return SQ_PERMFAIL;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		log_warn("lka: auth: ldap");
		return SQ_TEMPFAIL;
	}
	r->p = p;
	r->reqid = reqid;
	r->as = *as;
	if (r->as.timeout <= 0)
		r->as.timeout = AUTH_LDAP_TIMEOUT;
	(void)strlcpy(r->user, user, sizeof(r->user));
	(void)strlcpy(r->pass, pass, sizeof(r->pass));
	r->c.what = r->as.ldap.url;
	r->c.timeout = r->as.timeout;
	if (lka_child_run(&ldap_pool, &r->c) == -1) {
		freezero(r, sizeof(*r));
		return SQ_TEMPFAIL;
	}
	return -1;
}
