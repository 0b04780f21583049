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
#define MTA_IDLE_TIMEOUT	5	/* seconds a connection waits for reuse */
#define MTA_REUSE_MAX		100	/* transactions on one connection */

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
	TAILQ_ENTRY(mta_task)	 wentry;	/* waiting for a session */
	int			 waiting;
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
	int			 auth_plaintext;	/* AUTH without TLS too */
};

/* mta_hosts.c: what each remote address did lately, for show hosts. */
struct mta_hoststat;
struct mta_hoststat *mta_host_get(const char *addr, uint16_t port,
	    const char *name);
struct mta_hoststat *mta_host_of(const struct mta_host *, char *addr,
	    size_t len);
int	mta_host_sessions(const struct mta_hoststat *);
void	mta_host_session(struct mta_hoststat *, int delta);
void	mta_host_result(struct mta_hoststat *, int delivered,
	    const char *tls, const char *error);
struct mproc;
void	mta_hosts_show(struct mproc *, uint32_t ctlid);

/*
 * mta_session.c: connect to the task's next host; hand it to an idle
 * connection to that host instead (1 when one took it); the connections
 * open or opening; close one idle connection (1 when there was one).
 * A connection whose transaction ended takes a waiting task that fits it
 * (mta_task_take()), else waits MTA_IDLE_TIMEOUT for one.
 */
void	mta_session_start(struct mta_task *);
int	mta_session_reuse(struct mta_task *);
size_t	mta_session_count(void);
int	mta_session_close_idle(void);
/*
 * mta.c: run a task on its next host within the concurrency limits (it
 * waits for a free slot when there is none); the first waiting task that
 * fits(task, arg); a session went away, so waiting tasks may run.
 */
void	mta_task_run(struct mta_task *);
struct mta_task *mta_task_take(int (*fits)(const struct mta_task *, void *),
	    void *arg);
void	mta_sessions_changed(void);
void	mta_task_done(struct mta_task *);
void	mta_rcpt_result(struct mta_rcpt *, int status, const char *fmt, ...)
	    __attribute__((__format__ (printf, 3, 4)));

#endif
