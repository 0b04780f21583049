/*
 * mta internals: mta.c (the process: deliveries from queue grouped into
 * tasks, routes from lka, results back) and mta_session.c (one SMTP client
 * connection that carries one task's transaction).
 */
#ifndef SQ_MTA_H
#define SQ_MTA_H

#include <sys/types.h>
#include <sys/socket.h>

#include <bsd/sys/queue.h>
#include <stdint.h>

#include "mta_message.h"
#include "sqmail.h"

#define MTA_HOSTS_MAX		64	/* addresses tried per task */
#define MTA_TASK_RCPTS_MAX	100	/* recipients in one transaction */
#define MTA_TEXT_MAX		600	/* result text of a recipient */
#define MTA_CONNECT_TIMEOUT	30	/* seconds; the rest per RFC 5321 */

struct mta_rcpt {
	TAILQ_ENTRY(mta_rcpt)	 entry;
	uint64_t		 id;		/* queue's delivery id */
	char			 addr[SQ_ADDR_MAX];
	int			 status;	/* -1 while open, else sq_status */
	int			 accepted;	/* RCPT got 2xx in this session */
	char			 text[MTA_TEXT_MAX];
};
TAILQ_HEAD(mta_rcptq, mta_rcpt);

struct mta_host {
	char			 name[256];
	struct sockaddr_storage	 ss;
	int			 notls;		/* its TLS failed: plaintext */
};

struct mta_task {
	TAILQ_ENTRY(mta_task)	 entry;
	uint64_t		 reqid;		/* lka's route request */
	uint64_t		 msgid;
	char			 sender[SQ_ADDR_MAX];
	char			 domain[SQ_DOMAIN_MAX + 1];
	int			 fd;		/* the message, read-only */
	int			 scanned;	/* info is known */
	struct mta_message_info	 info;		/* read once, for every host */
	int			 ready;		/* queue sent them all: look up */
	struct mta_rcptq	 rcpts;
	size_t			 nrcpt;
	struct mta_host		*hosts;		/* MTA_HOSTS_MAX */
	size_t			 nhosts;
	size_t			 next;		/* host to try next */
	char			 lasterr[MTA_TEXT_MAX];	/* of the last host */
	int			 tls;		/* enum tls_policy */
	char			 fingerprint[65];	/* TLSP_FINGERPRINT */
	int			 smtps;		/* implicit TLS */
	char			 auth_user[128];	/* AUTH: "" none */
	char			 auth_secret[256];
};

/* mta_hosts.c: what each remote address did lately, for show hosts. */
struct mta_hoststat;
struct mta_hoststat *mta_host_get(const char *addr, uint16_t port,
	    const char *name);
void	mta_host_session(struct mta_hoststat *, int delta);
void	mta_host_result(struct mta_hoststat *, int delivered,
	    const char *tls, const char *error);
struct mproc;
void	mta_hosts_show(struct mproc *, uint32_t ctlid);

/* mta_session.c: try task's next host; mta_task_done() when finished. */
void	mta_session_start(struct mta_task *);
/* mta.c */
void	mta_task_done(struct mta_task *);
void	mta_rcpt_result(struct mta_rcpt *, int status, const char *fmt, ...)
	    __attribute__((__format__ (printf, 3, 4)));

#endif
