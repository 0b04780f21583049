/*
 * TLS on the smtp listeners, with libtls: the server contexts made from
 * the pki blocks, STARTTLS (RFC 3207), implicit TLS (smtps, RFC 8314),
 * and a session's reads and writes once TLS is up.
 *
 * The private keys: the parent reads the pki files before any process
 * drops privileges; smtp gets their contents (inherited at start, over
 * its channel from the parent on reload), hands them to libtls and wipes
 * its own copies.  libtls here has no signing callback, so the key stays
 * in this process's memory (OpenSSL's key objects) while TLS is served:
 * whoever takes over the smtp process can read the key, though never the
 * key file.  sqmail.conf(5) says so.
 *
 * A listener's context is shared by the sessions begun with it and
 * counted: a reload makes a new one for new sessions, and the old one
 * goes when its last session ends.
 *
 * Client certificates: a listener with a client CA asks every client for
 * a certificate, optionally.  libtls verifies one that comes against the
 * CA (chain, dates, purpose) inside the handshake, and a certificate that
 * fails ends the handshake: libtls offers no way to go on with it, so the
 * client learns at once and may come back without one.  A certificate
 * that verifies goes to lka (its SHA-256 fingerprint and its subject CN,
 * IMSG_LKA_AUTH_CERT), which maps it to a user with the listener's
 * "auth certificate" table; the session is then authenticated as after
 * AUTH.  Until lka answers the session reads no command.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <tls.h>

#include "config.h"
#include "log.h"
#include "mproc.h"
#include "msg.h"
#include "proc.h"
#include "smtp.h"
#include "smtp_session.h"
#include "sqmail.h"

#define SMTP_TLS_IO	16384	/* octets per tls_read / tls_write */

static void	smtp_tls_client_cert(struct smtp_session *);

void
smtp_tls_init(void)
{
	/* Before the chroot: OpenSSL may want its files once. */
	if (tls_init() == -1)
		log_warnx("smtp: tls_init failed: TLS will not work");
}

/* Printable ASCII only, for log lines built from what a peer chose. */
static void
smtp_tls_clean(char *dst, size_t size, const char *src)
{
	size_t	 i;

	if (size == 0)
		return;
	for (i = 0; src != NULL && src[i] != '\0' && i < size - 1; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[i] = '\0';
}

static int
smtp_tls_keypair(struct tls_config *cfg, struct pki *pk, int first,
    char *err, size_t errlen)
{
	int	 r;

	if (pk->cert == NULL || pk->key == NULL) {
		(void)snprintf(err, errlen, "pki \"%s\": its certificate and "
		    "key were not read", pk->name);
		return -1;
	}
	if (first)
		r = tls_config_set_keypair_mem(cfg, (uint8_t *)pk->cert,
		    pk->cert_len, (uint8_t *)pk->key, pk->key_len);
	else
		r = tls_config_add_keypair_mem(cfg, (uint8_t *)pk->cert,
		    pk->cert_len, (uint8_t *)pk->key, pk->key_len);
	if (r == -1) {
		(void)snprintf(err, errlen, "pki \"%s\": %s", pk->name,
		    tls_config_error(cfg));
		return -1;
	}
	return 0;
}

/*
 * A server context for the pki blocks a listener serves: those its listen
 * line names, the first the default; else every block, the default the
 * one named like the hostname, or the first.  libtls picks among them by
 * the names in the certificates and the client's SNI.
 */
static struct tls *
smtp_tls_server(struct sqconf *c, int npki,
    char (*names)[SQ_DOMAIN_MAX + 1], const struct listener *l, char *err,
    size_t errlen)
{
	struct tls_config	*cfg;
	struct tls		*srv = NULL;
	struct pki		*first, *pk;
	int			 i;

	if ((cfg = tls_config_new()) == NULL) {
		(void)snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (tls_config_set_protocols(cfg, c->tls_protocols) == -1 ||
	    tls_config_set_ciphers(cfg, c->tls_ciphers) == -1) {
		(void)snprintf(err, errlen, "%s", tls_config_error(cfg));
		goto done;
	}
	tls_config_prefer_ciphers_server(cfg);
	if (l != NULL && l->client_ca_path[0] != '\0') {
		if (l->client_ca == NULL) {
			(void)snprintf(err, errlen, "tls client-ca %.200s was not "
			    "read", l->client_ca_path);
			goto done;
		}
		/* Asked for, never required: other senders still come. */
		if (tls_config_set_ca_mem(cfg, (uint8_t *)l->client_ca,
		    l->client_ca_len) == -1) {
			(void)snprintf(err, errlen, "tls client-ca %.200s: %s",
			    l->client_ca_path, tls_config_error(cfg));
			goto done;
		}
		tls_config_verify_client_optional(cfg);
	}
	if (npki > 0)
		first = config_pki(c, names[0]);
	else if ((first = config_pki(c, c->hostname)) == NULL)
		first = TAILQ_FIRST(&c->pkis);
	if (first == NULL) {
		(void)snprintf(err, errlen, "no pki block%s%s%s",
		    npki > 0 ? " \"" : "", npki > 0 ? names[0] : "",
		    npki > 0 ? "\"" : "");
		goto done;
	}
	if (smtp_tls_keypair(cfg, first, 1, err, errlen) == -1)
		goto done;
	if (npki > 0) {
		for (i = 1; i < npki; i++) {
			if ((pk = config_pki(c, names[i])) == NULL) {
				(void)snprintf(err, errlen, "no pki block "
				    "\"%s\"", names[i]);
				goto done;
			}
			if (smtp_tls_keypair(cfg, pk, 0, err, errlen) == -1)
				goto done;
		}
	} else
		TAILQ_FOREACH(pk, &c->pkis, entry)
			if (pk != first &&
			    smtp_tls_keypair(cfg, pk, 0, err, errlen) == -1)
				goto done;
	if ((srv = tls_server()) == NULL) {
		(void)snprintf(err, errlen, "out of memory");
		goto done;
	}
	/* Certificates and keys are checked here, the key against its pair. */
	if (tls_configure(srv, cfg) == -1) {
		(void)snprintf(err, errlen, "%s", tls_error(srv));
		tls_free(srv);
		srv = NULL;
		goto done;
	}
 done:
	/* The context holds what it needs; the key text goes now. */
	tls_config_clear_keys(cfg);
	tls_config_free(cfg);
	return srv;
}

int
smtp_tls_check(struct sqconf *c)
{
	struct listener	*l;
	struct tls	*srv;
	char		 err[512];
	int		 ret = 0;

	TAILQ_FOREACH(l, &c->listeners, entry) {
		if (!l->tls && l->proto != LPROTO_SMTPS)
			continue;
		if ((srv = smtp_tls_server(c, l->npki, l->pki, l, err,
		    sizeof(err))) == NULL) {
			log_warnx("%s: listen on %s: TLS: %s", l->where,
			    l->name, err);
			ret = -1;
			continue;
		}
		tls_free(srv);
	}
	return ret;
}

void
smtp_tls_ctx_unref(struct smtp_tlsctx *ctx)
{
	if (ctx == NULL || --ctx->refs > 0)
		return;
	tls_free(ctx->srv);
	free(ctx);
}

int
smtp_tls_listener(struct smtp_listener *sl)
{
	struct smtp_tlsctx	*ctx;
	struct listener		*l;
	char			 err[512];

	if (!sl->tls && sl->proto != LPROTO_SMTPS)
		return 0;
	/* The client CA comes with the configuration, as the pki files. */
	TAILQ_FOREACH(l, &conf->listeners, entry)
		if (strcmp(l->name, sl->name) == 0)
			break;
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL) {
		log_warn("smtp: listener %s: TLS context", sl->name);
		return -1;
	}
	if ((ctx->srv = smtp_tls_server(conf, sl->npki, sl->pki, l, err,
	    sizeof(err))) == NULL) {
		log_warnx("smtp: listener %s: TLS: %s%s", sl->name, err,
		    sl->tlsctx != NULL ? " (the certificates in use stay)" :
		    " (no TLS here)");
		free(ctx);
		return -1;
	}
	ctx->refs = 1;
	smtp_tls_ctx_unref(sl->tlsctx);
	sl->tlsctx = ctx;
	return 0;
}

int
smtp_tls_offer(struct smtp_session *s)
{
	return s->l->tls && s->tls == NULL && s->l->tlsctx != NULL;
}

/*
 * STARTTLS (RFC 3207).  Whatever the client sent after it in plaintext
 * is dropped unread (CVE-2011-0411 and its kin): nothing from before the
 * handshake may be taken as said inside TLS.
 */
void
smtp_cmd_starttls(struct smtp_session *s, struct smtp_cmd *cmd)
{
	size_t	 n;

	if (s->tls != NULL) {
		smtp_reply(s, "503 5.5.1 TLS is already in use");
		smtp_error(s);
		return;
	}
	if (!s->l->tls) {
		smtp_reply(s, "502 5.5.1 STARTTLS is not offered here");
		smtp_error(s);
		return;
	}
	if (cmd->arglen != 0) {
		smtp_reply(s, "501 5.5.4 Syntax: STARTTLS");
		smtp_error(s);
		return;
	}
	if (s->state != S_CONNECTED && s->state != S_HELO) {
		smtp_reply(s, "503 5.5.1 STARTTLS inside a mail transaction; "
		    "send RSET first");
		smtp_error(s);
		return;
	}
	if (s->l->tlsctx == NULL) {
		smtp_log(s, "Defer::TLS::Not_Available: S:%s L:%s", s->ip,
		    s->l->name);
		smtp_reply(s, "454 4.7.0 TLS not available due to temporary "
		    "reason");
		return;
	}
	if ((n = evbuffer_get_length(s->in)) > 0) {
		smtp_log(s, "Reject::TLS::Pipelined_After_STARTTLS: S:%s H:%s "
		    "octets %zu dropped", s->ip, s->helo, n);
		evbuffer_drain(s->in, n);
	}
	s->flags &= ~SF_DISCARD;
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	/* smtp_run() begins the handshake once the 220 is written. */
	s->flags |= SF_STARTTLS;
}

int
smtp_tls_begin(struct smtp_session *s)
{
	struct smtp_tlsctx	*ctx = s->l->tlsctx;
	char			 err[256];

	if (ctx == NULL) {
		smtp_log(s, "Reject::TLS::Not_Available: S:%s L:%s", s->ip,
		    s->l->name);
		smtp_destroy(s, "TLS_Not_Available");
		return -1;
	}
	if (tls_accept_socket(ctx->srv, &s->tls, s->fd) == -1) {
		smtp_tls_clean(err, sizeof(err), tls_error(ctx->srv));
		smtp_log(s, "Reject::TLS::Accept_Failed: S:%s L:%s %s", s->ip,
		    s->l->name, err);
		smtp_destroy(s, "TLS_Error");
		return -1;
	}
	ctx->refs++;
	s->tlsctx = ctx;
	s->flags |= SF_HANDSHAKE;
	/* The whole handshake gets one command timeout, not one per step. */
	(void)clock_gettime(CLOCK_MONOTONIC, &s->tls_deadline);
	s->tls_deadline.tv_sec += conf->timeout_command;
	event_del(&s->ev_rd);
	event_del(&s->ev_wr);
	return smtp_tls_handshake(s);
}

int
smtp_tls_handshake(struct smtp_session *s)
{
	struct timespec	 now;
	struct timeval	 tv;
	char		 err[256], sni[SQ_DOMAIN_MAX + 1];
	int		 r;

	r = tls_handshake(s->tls);
	if (r == TLS_WANT_POLLIN || r == TLS_WANT_POLLOUT) {
		(void)clock_gettime(CLOCK_MONOTONIC, &now);
		tv.tv_sec = s->tls_deadline.tv_sec - now.tv_sec;
		tv.tv_usec = 0;
		if (tv.tv_sec <= 0) {
			smtp_log(s, "Reject::TLS::Handshake_Timeout: S:%s L:%s",
			    s->ip, s->l->name);
			smtp_destroy(s, "TLS_Timeout");
			return -1;
		}
		if (r == TLS_WANT_POLLIN) {
			event_del(&s->ev_wr);
			event_add(&s->ev_rd, &tv);
		} else {
			event_del(&s->ev_rd);
			event_add(&s->ev_wr, &tv);
		}
		return 0;
	}
	if (r == -1) {
		smtp_tls_clean(err, sizeof(err), tls_error(s->tls));
		smtp_log(s, "Reject::TLS::Handshake_Failed: S:%s L:%s %s",
		    s->ip, s->l->name, err);
		smtp_destroy(s, "TLS_Handshake_Failed");
		return -1;
	}
	s->flags &= ~SF_HANDSHAKE;
	event_del(&s->ev_rd);
	event_del(&s->ev_wr);
	smtp_tls_clean(s->tls_version, sizeof(s->tls_version),
	    tls_conn_version(s->tls));
	smtp_tls_clean(s->tls_cipher, sizeof(s->tls_cipher),
	    tls_conn_cipher(s->tls));
	s->tls_bits = tls_conn_cipher_strength(s->tls);
	smtp_tls_clean(sni, sizeof(sni), tls_conn_servername(s->tls));
	smtp_log(s, "Accept::TLS::%s: S:%s L:%s %s %s %d bits SNI:%s",
	    s->l->proto == LPROTO_SMTPS ? "SMTPS" : "STARTTLS", s->ip,
	    s->l->name, s->tls_version, s->tls_cipher, s->tls_bits,
	    sni[0] != '\0' ? sni : "-");
	smtp_reset_to_greeting(s);
	/* The client's first command may have come with its last flight. */
	s->flags |= SF_TLS_MORE;
	if (s->l->proto == LPROTO_SMTPS)
		smtp_greet(s);
	smtp_tls_client_cert(s);
	smtp_run(s);
	return 0;
}

/*
 * The common name of an X509_NAME_oneline() subject ("/C=DE/CN=name"),
 * strictly: exactly one CN component, printable ASCII without '\\' (how
 * the form escapes other octets), 1 .. SMTP_AUTH_USER_MAX octets.  The
 * form does not escape '/', so the caller confirms the name with the
 * certificate itself.  0 and cn set, or -1.
 */
int
smtp_tls_subject_cn(const char *subj, char *cn, size_t cnlen)
{
	const char	*p, *e, *v = NULL;
	size_t		 n = 0;
	int		 found = 0;

	if (cnlen > 0)
		cn[0] = '\0';
	if (subj == NULL || subj[0] != '/')
		return -1;
	for (p = subj; *p == '/'; p = e) {
		e = strchr(p + 1, '/');
		if (e == NULL)
			e = p + strlen(p);
		if (strncmp(p + 1, "CN=", 3) == 0) {
			if (found++)
				return -1;
			v = p + 4;
			n = e - v;
		}
	}
	if (*p != '\0' || !found || n == 0 || n > SMTP_AUTH_USER_MAX ||
	    n >= cnlen)
		return -1;
	for (p = v; p < v + n; p++)
		if (*p < 0x20 || *p > 0x7e || *p == '\\')
			return -1;
	memcpy(cn, v, n);
	cn[n] = '\0';
	return 0;
}

/*
 * After the handshake: a certificate the client showed has passed
 * libtls's verification against the client CA (else there would be no
 * session); ask lka whom it names.
 */
static void
smtp_tls_client_cert(struct smtp_session *s)
{
	const char	*hash;
	char		 cn[SMTP_AUTH_USER_MAX + 1], subj[512];

	if (s->l->auth_cert[0] == '\0' || !tls_peer_cert_provided(s->tls))
		return;
	smtp_tls_clean(subj, sizeof(subj), tls_peer_cert_subject(s->tls));
	if ((hash = tls_peer_cert_hash(s->tls)) == NULL) {
		smtp_log(s, "Reject::AUTH::Certificate_Unreadable: S:%s "
		    "subject %s", s->ip, subj);
		return;
	}
	/* The CN counts only if the certificate holds that very name. */
	if (smtp_tls_subject_cn(tls_peer_cert_subject(s->tls), cn,
	    sizeof(cn)) == -1 || tls_peer_cert_contains_name(s->tls, cn) != 1)
		cn[0] = '\0';
	(void)strlcpy(s->cert_hash, hash, sizeof(s->cert_hash));
	smtp_log(s, "Info::TLS::Client_Certificate: S:%s %s CN:%s subject %s",
	    s->ip, s->cert_hash, cn[0] != '\0' ? cn : "-", subj);
	s->wait = W_LKA_CERT;
	m_create(peers[PROC_LKA], IMSG_LKA_AUTH_CERT, 0, -1);
	m_add_u64(peers[PROC_LKA], s->id);
	m_add_string(peers[PROC_LKA], s->l->auth_cert);
	m_add_string(peers[PROC_LKA], s->cert_hash);
	m_add_string(peers[PROC_LKA], cn);
	m_close(peers[PROC_LKA]);
}

/* lka's answer: the session is authenticated as user, or it is not. */
void
smtp_session_lka_cert(uint64_t reqid, int status, const char *user,
    const char *key)
{
	struct smtp_session	*s;
	char			 u[SMTP_AUTH_USER_MAX + 1], k[300];

	if ((s = smtp_session_find(reqid)) == NULL || s->wait != W_LKA_CERT) {
		log_debug("smtp %016llx: stale certificate answer dropped",
		    (unsigned long long)reqid);
		return;
	}
	s->wait = W_NONE;
	smtp_tls_clean(u, sizeof(u), user);
	smtp_tls_clean(k, sizeof(k), key);
	if (status == SQ_OK && u[0] != '\0') {
		s->flags |= SF_AUTH;
		(void)strlcpy(s->auth_user, u, sizeof(s->auth_user));
		smtp_log(s, "Accept::AUTH::Certificate: S:%s A:%s key %s",
		    s->ip, s->auth_user, k);
	} else if (status == SQ_PERMFAIL)
		smtp_log(s, "Reject::AUTH::Certificate_Unmapped: S:%s %s",
		    s->ip, s->cert_hash);
	else
		smtp_log(s, "Defer::AUTH::Certificate_Lookup_Failed: S:%s %s",
		    s->ip, s->cert_hash);
	smtp_run(s);
}

ssize_t
smtp_tls_read(struct smtp_session *s, size_t room)
{
	struct evbuffer_iovec	 v;
	char			 err[256];
	ssize_t			 n;

	s->flags &= ~(SF_TLS_RDWR | SF_TLS_MORE);
	if (room > SMTP_TLS_IO)
		room = SMTP_TLS_IO;
	if (evbuffer_reserve_space(s->in, room, &v, 1) < 1) {
		errno = ENOMEM;
		return -1;
	}
	if (v.iov_len > room)
		v.iov_len = room;
	n = tls_read(s->tls, v.iov_base, v.iov_len);
	if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
		if (n == TLS_WANT_POLLOUT)
			s->flags |= SF_TLS_RDWR;
		errno = EAGAIN;
		return -1;
	}
	if (n == -1) {
		smtp_tls_clean(err, sizeof(err), tls_error(s->tls));
		log_debug("smtp %016llx: TLS read: %s",
		    (unsigned long long)s->id, err);
		errno = EIO;
		return -1;
	}
	if (n > 0) {
		v.iov_len = n;
		if (evbuffer_commit_space(s->in, &v, 1) == -1) {
			errno = ENOMEM;
			return -1;
		}
		s->flags |= SF_TLS_MORE;
	}
	return n;
}

int
smtp_tls_flush(struct smtp_session *s)
{
	unsigned char	*p;
	char		 err[256];
	size_t		 len;
	ssize_t		 n;

	s->flags &= ~SF_TLS_WRRD;
	while ((len = evbuffer_get_length(s->out)) > 0) {
		if (len > SMTP_TLS_IO)
			len = SMTP_TLS_IO;
		if ((p = evbuffer_pullup(s->out, len)) == NULL)
			return -1;
		n = tls_write(s->tls, p, len);
		if (n == TLS_WANT_POLLOUT)
			break;
		if (n == TLS_WANT_POLLIN) {
			s->flags |= SF_TLS_WRRD;
			break;
		}
		if (n == -1) {
			smtp_tls_clean(err, sizeof(err), tls_error(s->tls));
			log_debug("smtp %016llx: TLS write: %s",
			    (unsigned long long)s->id, err);
			return -1;
		}
		evbuffer_drain(s->out, n);
	}
	return 0;
}

void
smtp_tls_close(struct smtp_session *s)
{
	if (s->tls != NULL) {
		/* One try at close_notify; the socket closes next anyway. */
		(void)tls_close(s->tls);
		tls_free(s->tls);
		s->tls = NULL;
	}
	smtp_tls_ctx_unref(s->tlsctx);
	s->tlsctx = NULL;
}
