/*
 * smtpd internals shared by smtp_session.c (the connection: I/O, replies,
 * command dispatch) and smtp_tx.c (the mail transaction: MAIL, RCPT,
 * DATA, and the answers of lka and queue).
 */
#ifndef SQ_SMTP_SESSION_H
#define SQ_SMTP_SESSION_H

#include <sys/types.h>
#include <sys/socket.h>

#include <bsd/sys/queue.h>
#include <bsd/sys/tree.h>
#include <event.h>
#include <stdint.h>
#include <time.h>
#include <tls.h>

#include "mailaddr.h"
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
	W_QUEUE_COMMIT,
	W_LKA_AUTH,
	W_LKA_CERT		/* lka maps the client certificate */
};

/* Where an AUTH exchange stands (smtp_auth.c). */
enum smtp_authstate {
	A_NONE = 0,		/* no exchange under way */
	A_PLAIN,		/* 334 sent: the PLAIN response next */
	A_LOGIN_USER,		/* 334 VXNlcm5hbWU6 sent */
	A_LOGIN_PASS		/* 334 UGFzc3dvcmQ6 sent */
};

#define SF_ESMTP	0x01	/* EHLO, not HELO */
#define SF_EOF		0x02	/* the client closed its side */
#define SF_CLOSING	0x04	/* last reply queued: close once written */
#define SF_DISCARD	0x08	/* skipping an overlong command line */
#define SF_DEAD		0x10	/* I/O failed or no memory: drop now */
#define SF_OVERFLOW	0x20	/* this RCPT expanded too far */
#define SF_NOMEM	0x40	/* this RCPT lost a destination */
#define SF_STARTTLS	0x80	/* 220 to STARTTLS queued: handshake next */
#define SF_HANDSHAKE	0x100	/* TLS handshake under way */
#define SF_TLS_RDWR	0x200	/* a TLS read waits for the socket writable */
#define SF_TLS_WRRD	0x400	/* a TLS write waits for the socket readable */
#define SF_TLS_MORE	0x800	/* libtls may hold input already: read again */
#define SF_AUTH		0x1000	/* AUTH succeeded: s->auth_user */

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

	/* TLS, once STARTTLS or smtps began it (smtp_tls.c). */
	struct tls		*tls;
	struct smtp_tlsctx	*tlsctx;	/* the context it came from */
	struct timespec		 tls_deadline;	/* of the handshake */
	char			 tls_version[16];	/* "" until done */
	char			 tls_cipher[64];
	int			 tls_bits;
	char			 cert_hash[80];	/* client's, "" none */

	/* AUTH (smtp_auth.c) */
	enum smtp_authstate	 astate;
	enum smtp_auth_mech	 amech;		/* of the exchange or success */
	uint32_t		 afails;	/* 535s on this connection */
	char			 auth_user[SMTP_AUTH_USER_MAX + 1];

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

struct smtp_session *smtp_session_find(uint64_t);
void	smtp_log(struct smtp_session *, const char *, ...)
	    __attribute__((__format__ (printf, 2, 3)));
void	smtp_reply(struct smtp_session *, const char *, ...)
	    __attribute__((__format__ (printf, 2, 3)));
void	smtp_reply_peer(struct smtp_session *, int, const char *);
void	smtp_error(struct smtp_session *);
/* The last reply is queued: close once it is written. */
void	smtp_close(struct smtp_session *, const char *);
void	smtp_run(struct smtp_session *);
void	smtp_destroy(struct smtp_session *, const char *);
void	smtp_greet(struct smtp_session *);
void	smtp_reset_to_greeting(struct smtp_session *);
void	smtp_tx_reset(struct smtp_session *);
void	smtp_dests_free(struct smtp_destq *);
void	smtp_cmd_mail(struct smtp_session *, struct smtp_cmd *);
void	smtp_cmd_rcpt(struct smtp_session *, struct smtp_cmd *);
void	smtp_cmd_data(struct smtp_session *, struct smtp_cmd *);
int	smtp_data_input(struct smtp_session *);
void	smtp_data_abort(struct smtp_session *);

/* smtp_auth.c: AUTH (RFC 4954), checked by lka. */
void	smtp_cmd_auth(struct smtp_session *, struct smtp_cmd *);
/* A line sent in answer to our 334 (s->astate != A_NONE). */
void	smtp_auth_response(struct smtp_session *, char *, size_t);
/* Whether AUTH is offered on this session now. */
int	smtp_auth_offer(struct smtp_session *);
/* Forget the exchange and the authentication (after STARTTLS). */
void	smtp_auth_reset(struct smtp_session *);

/* smtp_tls.c: STARTTLS, smtps, and I/O over TLS. */
void	smtp_cmd_starttls(struct smtp_session *, struct smtp_cmd *);
/* The handshake on the session's socket; -1 when the session is gone. */
int	smtp_tls_begin(struct smtp_session *);
/* Go on with it (an event came); -1 when the session is gone. */
int	smtp_tls_handshake(struct smtp_session *);
/* Read at most room octets into s->in: as read(2), errno EAGAIN to wait. */
ssize_t	smtp_tls_read(struct smtp_session *, size_t room);
/* Write s->out as far as it goes: 0, or -1 on a TLS error. */
int	smtp_tls_flush(struct smtp_session *);
/* Close and free the session's TLS, if any. */
void	smtp_tls_close(struct smtp_session *);
/* Whether the session may be offered STARTTLS now. */
int	smtp_tls_offer(struct smtp_session *);

#endif
