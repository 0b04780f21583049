/*
 * SMTP AUTH (RFC 4954) on a session: PLAIN (RFC 4616) and LOGIN.  The
 * smtp process only parses; lka checks the credentials against the
 * listener's users table (IMSG_LKA_AUTH), since smtp faces the network
 * and must not read secrets.  A password lives in this process only
 * from its line to the message that carries it to lka, and is wiped
 * then; LOGIN keeps the user name alone between its two lines.
 *
 * CRAM-MD5 (RFC 2195) is offered on a listener once lka has said that
 * its users table holds a CRAM secret for some user (IMSG_LKA_AUTH_MECHS,
 * at start and after each reload).  We send the challenge and hand it
 * with the client's digest to lka (IMSG_LKA_AUTH_CRAM), which holds the
 * secrets.  While the response is awaited the challenge is kept in
 * s->auth_user (it is no secret, and no user is known yet) and astate
 * is A_PLAIN: "one response line next", read as CRAM-MD5 by s->amech.
 *
 * AUTH is offered after TLS only, unless the listener says "auth
 * plaintext".  After SMTP_AUTH_FAIL_MAX refused attempts the connection
 * is closed with 421.  Refusals are also counted per client address
 * across connections (smtp_authip below): after conf->max_auth_failures
 * of them within conf->auth_fail_window, AUTH from that address gets 421
 * until the window has passed.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <bsd/sys/queue.h>
#include <bsd/sys/tree.h>

#include <event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base64.h"
#include "config.h"
#include "log.h"
#include "mproc.h"
#include "msg.h"
#include "proc.h"
#include "smtp.h"
#include "smtp_session.h"
#include "sqmail.h"

static void	smtp_auth_check(struct smtp_session *, const char *user,
		    const char *pass);
static void	smtp_auth_plain(struct smtp_session *, const char *, size_t);
static void	smtp_auth_refused(struct smtp_session *, const char *);
static void	smtp_auth_malformed(struct smtp_session *, int);
static const char *smtp_auth_mech_name(enum smtp_auth_mech);
static void	smtp_auth_cram_begin(struct smtp_session *);
static void	smtp_auth_cram(struct smtp_session *, const char *, size_t);
static int	smtp_authip_blocked(struct smtp_session *);
static int	smtp_authip_fail(struct smtp_session *);

/*
 * Failed AUTHs per client address, across connections: a fixed table,
 * the least recently failing address evicted when it is full, so that
 * memory stays bounded whatever the number of addresses.  IPv6 clients
 * count per /64, the least one site is usually given.
 */
#define SMTP_AUTHIP_MAX		4096	/* addresses remembered */

struct smtp_authip {
	RB_ENTRY(smtp_authip)	 entry;
	TAILQ_ENTRY(smtp_authip) lru;	/* most recent failure first */
	int			 family;
	uint8_t			 addr[16];
	uint32_t		 fails;
	time_t			 first;	/* of the window, monotonic */
};

static int	smtp_authip_cmp(struct smtp_authip *, struct smtp_authip *);
RB_HEAD(smtp_authips, smtp_authip);
RB_PROTOTYPE(smtp_authips, smtp_authip, entry, smtp_authip_cmp);
RB_GENERATE(smtp_authips, smtp_authip, entry, smtp_authip_cmp);

static struct smtp_authips	 smtp_authips = RB_INITIALIZER(&smtp_authips);
static TAILQ_HEAD(smtp_authip_lruq, smtp_authip) smtp_authip_lru =
    TAILQ_HEAD_INITIALIZER(smtp_authip_lru);
static struct smtp_authip	*smtp_authip_pool;	/* SMTP_AUTHIP_MAX */
static size_t			 smtp_authip_used;

static int
smtp_authip_cmp(struct smtp_authip *a, struct smtp_authip *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}

static time_t
smtp_authip_now(void)
{
	struct timespec	 ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* The session's key: family and address (IPv6 cut to its /64). */
static void
smtp_authip_key(struct smtp_session *s, struct smtp_authip *k)
{
	memset(k, 0, sizeof(*k));
	k->family = s->ss.ss_family;
	if (k->family == AF_INET)
		memcpy(k->addr, &((struct sockaddr_in *)&s->ss)->sin_addr, 4);
	else if (k->family == AF_INET6)
		memcpy(k->addr, &((struct sockaddr_in6 *)&s->ss)->sin6_addr, 8);
}

/* The entry of the session's address, its window renewed if it passed. */
static struct smtp_authip *
smtp_authip_find(struct smtp_session *s)
{
	struct smtp_authip	 k, *e;

	smtp_authip_key(s, &k);
	if ((e = RB_FIND(smtp_authips, &smtp_authips, &k)) == NULL)
		return NULL;
	if (smtp_authip_now() - e->first >= conf->auth_fail_window) {
		e->fails = 0;
		e->first = smtp_authip_now();
	}
	return e;
}

static int
smtp_authip_blocked(struct smtp_session *s)
{
	struct smtp_authip	*e;

	if (conf->max_auth_failures == 0 ||
	    (e = smtp_authip_find(s)) == NULL)
		return 0;
	return e->fails >= conf->max_auth_failures;
}

/* Count a failure; whether the address has now reached the limit. */
static int
smtp_authip_fail(struct smtp_session *s)
{
	struct smtp_authip	 k, *e;

	if (conf->max_auth_failures == 0)
		return 0;
	if ((e = smtp_authip_find(s)) == NULL) {
		if (smtp_authip_pool == NULL && (smtp_authip_pool =
		    calloc(SMTP_AUTHIP_MAX, sizeof(*e))) == NULL) {
			log_warn("smtp: auth failure table");
			return 0;
		}
		if (smtp_authip_used < SMTP_AUTHIP_MAX)
			e = &smtp_authip_pool[smtp_authip_used++];
		else {
			e = TAILQ_LAST(&smtp_authip_lru, smtp_authip_lruq);
			TAILQ_REMOVE(&smtp_authip_lru, e, lru);
			RB_REMOVE(smtp_authips, &smtp_authips, e);
		}
		smtp_authip_key(s, &k);
		e->family = k.family;
		memcpy(e->addr, k.addr, sizeof(e->addr));
		e->fails = 0;
		e->first = smtp_authip_now();
		RB_INSERT(smtp_authips, &smtp_authips, e);
	} else
		TAILQ_REMOVE(&smtp_authip_lru, e, lru);
	TAILQ_INSERT_HEAD(&smtp_authip_lru, e, lru);
	if (e->fails < UINT32_MAX)
		e->fails++;
	return e->fails >= conf->max_auth_failures;
}

static const char *
smtp_auth_mech_name(enum smtp_auth_mech m)
{
	switch (m) {
	case SMTP_AUTH_PLAIN:
		return "PLAIN";
	case SMTP_AUTH_LOGIN:
		return "LOGIN";
	case SMTP_AUTH_CRAM:
		return "CRAM-MD5";
	default:
		return "none";
	}
}

const char *
smtp_auth_mechs(const struct smtp_listener *l)
{
	return l->auth_cram ? "PLAIN LOGIN CRAM-MD5" : "PLAIN LOGIN";
}

int
smtp_auth_offer(struct smtp_session *s)
{
	if (s->l->auth_table[0] == '\0' || !(s->flags & SF_ESMTP))
		return 0;
	return s->tls_version[0] != '\0' || s->l->auth_plaintext;
}

void
smtp_auth_reset(struct smtp_session *s)
{
	s->astate = A_NONE;
	s->amech = SMTP_AUTH_NONE;
	s->flags &= ~SF_AUTH;
	explicit_bzero(s->auth_user, sizeof(s->auth_user));
}

void
smtp_cmd_auth(struct smtp_session *s, struct smtp_cmd *cmd)
{
	enum smtp_auth_mech	 mech;
	const char		*init;
	size_t			 initlen;

	if (s->l->auth_table[0] == '\0') {
		smtp_reply(s, "502 5.5.1 AUTH is not offered here");
		smtp_error(s);
		return;
	}
	if (smtp_authip_blocked(s)) {
		smtp_log(s, "Reject::AUTH::Too_Many_Failures_From_IP: S:%s "
		    "H:%s", s->ip, s->helo);
		smtp_reply(s, "421 4.7.0 %s Too many authentication failures "
		    "from your address, try again later", conf->hostname);
		smtp_close(s, "Too_Many_Auth_Failures_From_IP");
		return;
	}
	if (s->state == S_CONNECTED || !(s->flags & SF_ESMTP)) {
		smtp_reply(s, "503 5.5.1 Send EHLO first");
		smtp_error(s);
		return;
	}
	if (s->flags & SF_AUTH) {
		smtp_reply(s, "503 5.5.1 Already authenticated");
		smtp_error(s);
		return;
	}
	if (s->state != S_HELO) {
		smtp_reply(s, "503 5.5.1 AUTH is not allowed during a "
		    "mail transaction");
		smtp_error(s);
		return;
	}
	if (!smtp_auth_offer(s)) {
		/* RFC 4954 section 6: TLS first. */
		smtp_log(s, "Reject::AUTH::Encryption_Required: S:%s H:%s",
		    s->ip, s->helo);
		smtp_reply(s, "538 5.7.11 Encryption required for requested "
		    "authentication mechanism");
		smtp_error(s);
		return;
	}
	if (smtp_auth_parse_cmd(cmd->arg, cmd->arglen, &mech, &init,
	    &initlen) == -1) {
		smtp_reply(s, "501 5.5.4 Syntax: AUTH mechanism "
		    "[initial-response]");
		smtp_error(s);
		return;
	}
	if (mech == SMTP_AUTH_UNKNOWN ||
	    (mech == SMTP_AUTH_CRAM && !s->l->auth_cram)) {
		smtp_reply(s, "504 5.5.4 Unrecognized authentication type");
		smtp_error(s);
		return;
	}
	s->amech = mech;
	if (init != NULL && initlen == 1 && init[0] == '*') {
		smtp_auth_malformed(s, -1);
		return;
	}
	if (mech == SMTP_AUTH_CRAM) {
		/* RFC 4954 section 4: the server speaks first here. */
		if (init != NULL) {
			s->amech = SMTP_AUTH_NONE;
			smtp_reply(s, "501 5.5.2 CRAM-MD5 takes no initial "
			    "response");
			smtp_error(s);
			return;
		}
		smtp_auth_cram_begin(s);
		return;
	}
	if (mech == SMTP_AUTH_PLAIN) {
		if (init == NULL) {
			s->astate = A_PLAIN;
			smtp_reply(s, "334 ");
			return;
		}
		smtp_auth_plain(s, init, initlen);
		return;
	}
	/* LOGIN: the user name may come as the initial response. */
	if (init == NULL) {
		s->astate = A_LOGIN_USER;
		smtp_reply(s, "334 VXNlcm5hbWU6");	/* "Username:" */
		return;
	}
	s->astate = A_LOGIN_USER;
	smtp_auth_response(s, (char *)init, initlen);
}

/* A response that is not one: r is a parse result, -1 a cancel. */
static void
smtp_auth_malformed(struct smtp_session *s, int r)
{
	s->astate = A_NONE;
	explicit_bzero(s->auth_user, sizeof(s->auth_user));
	if (r == -1)
		smtp_reply(s, "501 5.5.2 Authentication cancelled");
	else if (r == SMTP_AUTHP_BASE64)
		smtp_reply(s, "501 5.5.2 Cannot decode the response (bad "
		    "base64)");
	else
		smtp_reply(s, "501 5.5.2 Malformed authentication response");
	smtp_error(s);
}

static void
smtp_auth_plain(struct smtp_session *s, const char *b64, size_t len)
{
	char	 user[SMTP_AUTH_USER_MAX + 1], pass[SMTP_AUTH_PASS_MAX + 1];
	int	 r;

	r = smtp_auth_parse_plain(b64, len, user, sizeof(user), pass,
	    sizeof(pass));
	if (r == SMTP_AUTHP_OK)
		smtp_auth_check(s, user, pass);
	else if (r == SMTP_AUTHP_REFUSE)
		smtp_auth_refused(s, "Bad_Credentials");
	else
		smtp_auth_malformed(s, r);
	explicit_bzero(user, sizeof(user));
	explicit_bzero(pass, sizeof(pass));
}

void
smtp_auth_response(struct smtp_session *s, char *line, size_t len)
{
	char	 pass[SMTP_AUTH_PASS_MAX + 1];
	int	 r;

	if (len == 1 && line[0] == '*') {
		smtp_auth_malformed(s, -1);
		return;
	}
	switch (s->astate) {
	case A_PLAIN:
		s->astate = A_NONE;
		if (s->amech == SMTP_AUTH_CRAM)
			smtp_auth_cram(s, line, len);
		else
			smtp_auth_plain(s, line, len);
		break;
	case A_LOGIN_USER:
		r = smtp_auth_parse_field(line, len, 1, s->auth_user,
		    sizeof(s->auth_user));
		if (r == SMTP_AUTHP_REFUSE) {
			s->astate = A_NONE;
			smtp_auth_refused(s, "Bad_Credentials");
		} else if (r != SMTP_AUTHP_OK)
			smtp_auth_malformed(s, r);
		else {
			s->astate = A_LOGIN_PASS;
			smtp_reply(s, "334 UGFzc3dvcmQ6");	/* "Password:" */
		}
		break;
	case A_LOGIN_PASS:
		s->astate = A_NONE;
		r = smtp_auth_parse_field(line, len, 0, pass, sizeof(pass));
		if (r == SMTP_AUTHP_OK)
			smtp_auth_check(s, s->auth_user, pass);
		else if (r == SMTP_AUTHP_REFUSE)
			smtp_auth_refused(s, "Bad_Credentials");
		else
			smtp_auth_malformed(s, r);
		explicit_bzero(pass, sizeof(pass));
		break;
	case A_NONE:
		break;
	}
}

/* A fresh challenge for each exchange: 334 and its base64. */
static void
smtp_auth_cram_begin(struct smtp_session *s)
{
	char		 b64[BASE64_LEN(SMTP_AUTH_CHAL_MAX)];
	uint64_t	 rnd;
	int		 n;

	rnd = ((uint64_t)arc4random() << 32) | arc4random();
	n = smtp_auth_cram_challenge(s->auth_user, sizeof(s->auth_user), rnd,
	    (long long)time(NULL), conf->hostname);
	if (n == -1 || base64_encode(s->auth_user, n, b64, sizeof(b64)) == -1)
		fatalx("smtp: CRAM-MD5 challenge does not fit");
	s->astate = A_PLAIN;
	smtp_reply(s, "334 %s", b64);
}

/* The CRAM-MD5 response to the challenge in s->auth_user. */
static void
smtp_auth_cram(struct smtp_session *s, const char *b64, size_t len)
{
	char	 chal[SMTP_AUTH_CHAL_MAX], user[SMTP_AUTH_USER_MAX + 1];
	char	 digest[SMTP_AUTH_DIGEST_LEN + 1];
	int	 r;

	(void)strlcpy(chal, s->auth_user, sizeof(chal));
	explicit_bzero(s->auth_user, sizeof(s->auth_user));
	r = smtp_auth_parse_cram(b64, len, user, sizeof(user), digest,
	    sizeof(digest));
	if (r == SMTP_AUTHP_REFUSE)
		smtp_auth_refused(s, "Bad_Credentials");
	else if (r != SMTP_AUTHP_OK)
		smtp_auth_malformed(s, r);
	else {
		(void)strlcpy(s->auth_user, user, sizeof(s->auth_user));
		s->wait = W_LKA_AUTH;
		m_create(peers[PROC_LKA], IMSG_LKA_AUTH_CRAM, 0, -1);
		m_add_u64(peers[PROC_LKA], s->id);
		m_add_string(peers[PROC_LKA], s->l->auth_table);
		m_add_string(peers[PROC_LKA], s->auth_user);
		m_add_string(peers[PROC_LKA], chal);
		m_add_string(peers[PROC_LKA], digest);
		m_close(peers[PROC_LKA]);
	}
	explicit_bzero(chal, sizeof(chal));
	explicit_bzero(user, sizeof(user));
	explicit_bzero(digest, sizeof(digest));
}

/* Well-formed credentials: lka decides. */
static void
smtp_auth_check(struct smtp_session *s, const char *user, const char *pass)
{
	char	 name[SMTP_AUTH_USER_MAX + 1];

	/* auth_user may be the very argument: copy before overwriting. */
	(void)strlcpy(name, user, sizeof(name));
	(void)strlcpy(s->auth_user, name, sizeof(s->auth_user));
	explicit_bzero(name, sizeof(name));
	s->wait = W_LKA_AUTH;
	m_create(peers[PROC_LKA], IMSG_LKA_AUTH, 0, -1);
	m_add_u64(peers[PROC_LKA], s->id);
	m_add_string(peers[PROC_LKA], s->l->auth_table);
	m_add_string(peers[PROC_LKA], s->auth_user);
	m_add_string(peers[PROC_LKA], pass);
	m_close(peers[PROC_LKA]);
}

/* A failed attempt: 535, and after too many of them, goodbye. */
static void
smtp_auth_refused(struct smtp_session *s, const char *why)
{
	int	 ipmax;

	s->afails++;
	ipmax = smtp_authip_fail(s);
	smtp_log(s, "Reject::AUTH::%s: S:%s H:%s A:%s mech %s fails %u", why,
	    s->ip, s->helo, s->auth_user[0] != '\0' ? s->auth_user : "-",
	    smtp_auth_mech_name(s->amech), s->afails);
	explicit_bzero(s->auth_user, sizeof(s->auth_user));
	s->amech = SMTP_AUTH_NONE;
	smtp_reply(s, "535 5.7.8 Authentication credentials invalid");
	if (s->afails >= SMTP_AUTH_FAIL_MAX) {
		smtp_log(s, "Reject::AUTH::Too_Many_Failures: S:%s H:%s "
		    "fails %u", s->ip, s->helo, s->afails);
		smtp_reply(s, "421 4.7.0 %s Too many authentication failures, "
		    "closing connection", conf->hostname);
		smtp_close(s, "Too_Many_Auth_Failures");
	} else if (ipmax) {
		smtp_log(s, "Reject::AUTH::Too_Many_Failures_From_IP: S:%s "
		    "H:%s", s->ip, s->helo);
		smtp_reply(s, "421 4.7.0 %s Too many authentication failures "
		    "from your address, try again later", conf->hostname);
		smtp_close(s, "Too_Many_Auth_Failures_From_IP");
	}
}

void
smtp_session_lka_auth(uint64_t reqid, int status)
{
	struct smtp_session	*s;

	if ((s = smtp_session_find(reqid)) == NULL || s->wait != W_LKA_AUTH) {
		log_debug("smtp %016llx: stale AUTH reply dropped",
		    (unsigned long long)reqid);
		return;
	}
	s->wait = W_NONE;
	if (status == SQ_OK) {
		s->flags |= SF_AUTH;
		smtp_log(s, "Accept::AUTH::Authenticated: S:%s H:%s A:%s "
		    "mech %s", s->ip, s->helo, s->auth_user,
		    smtp_auth_mech_name(s->amech));
		smtp_reply(s, "235 2.7.0 Authentication successful");
	} else if (status == SQ_PERMFAIL)
		smtp_auth_refused(s, "Bad_Credentials");
	else {
		smtp_log(s, "Defer::AUTH::Temporary_Failure: S:%s H:%s A:%s",
		    s->ip, s->helo, s->auth_user);
		explicit_bzero(s->auth_user, sizeof(s->auth_user));
		s->amech = SMTP_AUTH_NONE;
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
	}
	smtp_run(s);
}
