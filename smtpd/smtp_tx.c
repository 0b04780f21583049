/*
 * The mail transaction of an SMTP session: MAIL and RCPT checked by lka,
 * DATA streamed into the descriptor queue hands out, the commit, and the
 * replies of lka and queue, which carry the session id and are dropped
 * when the session has gone.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <event.h>
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
#include "smtp_session.h"
#include "sqmail.h"

static void	smtp_data_flush(struct smtp_session *);
static void	smtp_data_end(struct smtp_session *);
static int	smtp_received(struct smtp_session *);
static const char *smtp_condition(const char *, int);
static const char *smtp_proto_word(struct smtp_session *);

/*
 * The "with" word of Received and of the envelope: ESMTP, ESMTPS over
 * TLS, ESMTPA / ESMTPSA once authenticated (RFC 3848).  HELO over TLS
 * has no registered word: SMTP, with the TLS comment of Received saying
 * the rest.  The user name is in the log, and in Received only with
 * `received auth`.
 */
static const char *
smtp_proto_word(struct smtp_session *s)
{
	int	 tls = s->tls_version[0] != '\0';

	if (!(s->flags & SF_ESMTP))
		return "SMTP";
	if (s->flags & SF_AUTH)
		return tls ? "ESMTPSA" : "ESMTPA";
	return tls ? "ESMTPS" : "ESMTP";
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

void
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
	if (s->l->auth_required && !(s->flags & SF_AUTH)) {
		smtp_log(s, "Reject::MAIL::Authentication_Required: S:%s H:%s",
		    s->ip, s->helo);
		smtp_reply(s, "530 5.7.0 Authentication required");
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
	/*
	 * MAV: an authenticated user's sender is checked by lka against the
	 * user's addresses (it owns the tables), then as any other.
	 */
	if ((s->flags & SF_AUTH) && s->l->auth_sender_check) {
		m_create(peers[PROC_LKA], IMSG_LKA_MAIL_AUTH, 0, -1);
		m_add_u64(peers[PROC_LKA], s->id);
		m_add_sockaddr(peers[PROC_LKA], (struct sockaddr *)&s->ss);
		m_add_mailaddr(peers[PROC_LKA], &s->sender);
		m_add_string(peers[PROC_LKA], s->auth_user);
		m_add_string(peers[PROC_LKA], s->l->auth_senders);
		m_close(peers[PROC_LKA]);
		return;
	}
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

void
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
	m_add_int(peers[PROC_LKA], (s->flags & SF_AUTH) != 0);	/* relay */
	m_add_mailaddr(peers[PROC_LKA], &s->rcpt);
	m_close(peers[PROC_LKA]);
}

void
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

void
smtp_dests_free(struct smtp_destq *q)
{
	struct smtp_dest	*d;

	while ((d = TAILQ_FIRST(q)) != NULL) {
		TAILQ_REMOVE(q, d, entry);
		free(d);
	}
}

void
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

/* The session that waits for this reply, no longer waiting; or NULL. */
static struct smtp_session *
smtp_tx_waiting(uint64_t reqid, enum smtp_wait wait, const char *what)
{
	struct smtp_session	*s;

	if ((s = smtp_session_find(reqid)) == NULL || s->wait != wait) {
		log_debug("smtp %016llx: stale %s reply dropped",
		    (unsigned long long)reqid, what);
		return NULL;
	}
	s->wait = W_NONE;
	return s;
}

void
smtp_session_lka_mail(uint64_t reqid, int status, const char *reply)
{
	struct smtp_session	*s;
	char			 sender[SQ_ADDR_MAX];

	if ((s = smtp_tx_waiting(reqid, W_LKA_MAIL, "MAIL")) == NULL)
		return;
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

	if ((s = smtp_tx_waiting(reqid, W_LKA_RCPT, "RCPT")) == NULL)
		return;
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

/* Hand queue back a message file that will not be written (status OK). */
static void
smtp_tx_giveback(int status, uint64_t msgid, int fd)
{
	if (status == SQ_OK) {
		m_create(peers[PROC_QUEUE], IMSG_QUEUE_ABORT, 0, -1);
		m_add_msgid(peers[PROC_QUEUE], msgid);
		m_close(peers[PROC_QUEUE]);
	}
	if (fd != -1)
		close(fd);
}

void
smtp_session_queue_create(uint64_t reqid, int status, uint64_t msgid,
    int fd)
{
	struct smtp_session	*s;

	if ((s = smtp_session_find(reqid)) == NULL ||
	    s->wait != W_QUEUE_CREATE) {
		/* The client left: give the file back. */
		smtp_tx_giveback(status, msgid, fd);
		return;
	}
	s->wait = W_NONE;
	s->msgid = msgid;
	if (status != SQ_OK || fd == -1) {
		smtp_tx_giveback(status, msgid, fd);
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

/*
 * "(authenticated as USER)" when `received auth` is set, a comment line
 * of Received: '(', ')' and '\\' in the name quoted (RFC 5322 3.2.2).
 */
static void
smtp_received_auth(struct smtp_session *s, char *buf, size_t len)
{
	size_t		 o, i;
	const char	*u = s->auth_user;

	buf[0] = '\0';
	if (!conf->received_auth || !(s->flags & SF_AUTH) || len < 32)
		return;
	o = strlcpy(buf, "\t(authenticated as ", len);
	for (i = 0; u[i] != '\0' && o + 4 < len; i++) {
		if (u[i] == '(' || u[i] == ')' || u[i] == '\\')
			buf[o++] = '\\';
		buf[o++] = u[i];
	}
	buf[o] = '\0';
	(void)strlcat(buf, ")\n", len);
}

/*
 * Our trace header field (RFC 5321 4.4), LF line ends, first in dbuf.
 * Over TLS a comment line after the client says how:
 *	(TLSv1.3 cipher TLS_AES_256_GCM_SHA384 256 bits)
 * and with `received auth` another who:
 *	(authenticated as alice)
 */
static int
smtp_received(struct smtp_session *s)
{
	char		 date[64], from[80], tls[128 + 2 * SMTP_AUTH_USER_MAX + 32];
	char		 who[2 * SMTP_AUTH_USER_MAX + 32];
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
	tls[0] = '\0';
	if (s->tls_version[0] != '\0') {
		n = snprintf(tls, sizeof(tls), "\t(%s cipher %s %d bits)\n",
		    s->tls_version, s->tls_cipher, s->tls_bits);
		if (n < 0 || (size_t)n >= sizeof(tls))
			return -1;
	}
	smtp_received_auth(s, who, sizeof(who));
	(void)strlcat(tls, who, sizeof(tls));
	if (s->nrcpt == 1 && s->first[0] != '\0')
		n = snprintf(s->dbuf, SMTP_DBUF_SIZE,
		    "Received: from %s (%s)\n%s\tby %s (sqmail) with %s id "
		    "%llu\n\tfor <%s>; %s\n", s->helo, from, tls, conf->hostname,
		    smtp_proto_word(s), (unsigned long long)s->msgid, s->first,
		    date);
	else
		n = snprintf(s->dbuf, SMTP_DBUF_SIZE,
		    "Received: from %s (%s)\n%s\tby %s (sqmail) with %s id "
		    "%llu;\n\t%s\n", s->helo, from, tls, conf->hostname,
		    smtp_proto_word(s), (unsigned long long)s->msgid, date);
	if (n < 0 || n >= SMTP_DBUF_SIZE)
		return -1;
	s->dlen = n;
	return 0;
}

/* Drop the incoming message: tell queue, release the descriptor. */
void
smtp_data_abort(struct smtp_session *s)
{
	if (s->datafd != -1) {
		smtp_tx_giveback(SQ_OK, s->msgid, s->datafd);
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
int
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
	m_add_string(peers[PROC_QUEUE], smtp_proto_word(s));
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
