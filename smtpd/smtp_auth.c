/*
 * SMTP AUTH (RFC 4954) on a session: PLAIN (RFC 4616) and LOGIN.  The
 * smtp process only parses; lka checks the credentials against the
 * listener's users table (IMSG_LKA_AUTH), since smtp faces the network
 * and must not read secrets.  A password lives in this process only
 * from its line to the message that carries it to lka, and is wiped
 * then; LOGIN keeps the user name alone between its two lines.
 *
 * AUTH is offered after TLS only, unless the listener says "auth
 * plaintext".  After SMTP_AUTH_FAIL_MAX refused attempts the connection
 * is closed with 421.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <event.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

static const char *
smtp_auth_mech_name(enum smtp_auth_mech m)
{
	return m == SMTP_AUTH_PLAIN ? "PLAIN" : m == SMTP_AUTH_LOGIN ?
	    "LOGIN" : "none";
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
	if (mech == SMTP_AUTH_UNKNOWN) {
		smtp_reply(s, "504 5.5.4 Unrecognized authentication type");
		smtp_error(s);
		return;
	}
	s->amech = mech;
	if (init != NULL && initlen == 1 && init[0] == '*') {
		smtp_auth_malformed(s, -1);
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
	s->afails++;
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
