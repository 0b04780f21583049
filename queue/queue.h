/*
 * queue: the durable store, the scheduler and the bounces.
 *
 * queue_envelope.c and the composition half of queue_bounce.c are pure;
 * queue_fs.c works on the current directory (the spool) and needs neither
 * the event loop nor imsg, so that unit tests drive it directly.
 */
#ifndef SQ_QUEUE_H
#define SQ_QUEUE_H

#include <sys/types.h>
#include <bsd/sys/queue.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "sqmail.h"

#define QUEUE_INCOMING_MAX	4096	/* messages being received at once */
#define QUEUE_RCPT_MAX		100000	/* recipients in one envelope */
#define QUEUE_MTA_CONCURRENCY	200	/* remote deliveries at once */
#define QUEUE_MDA_CONCURRENCY	10	/* local, when the conf says 0 */
#ifndef QUEUE_FSYNC_WORKERS
#define QUEUE_FSYNC_WORKERS	8	/* threads of the fsync pool */
#endif
#define QUEUE_ERROR_ROOM	80	/* room kept per rcpt for errors */
#define QUEUE_LIFETIME_DEFAULT	(7 * 86400)	/* when the conf says 0 */
#define QUEUE_RETRY_MIN_DEFAULT	300
#define QUEUE_RETRY_MAX_DEFAULT	(4 * 3600)
#define QUEUE_BOUNCE_MAX_DEFAULT 50000	/* octets of the original quoted */
#define QUEUE_RETRY_LATER	60	/* seconds before a failed store step or
					 * bounce resolution is tried again */

#define QUEUE_DIR_INCOMING	"incoming"
#define QUEUE_DIR_MESS		"mess"
#define QUEUE_DIR_ENV		"env"
#define QUEUE_DIR_QUARANTINE	"quarantine"
#define QUEUE_DIR_SPARE		"spare"
#define QUEUE_SPARE_MAX		256	/* finished files kept for reuse */
#define QUEUE_SPARE_FILE_MAX	(64 * 1024)	/* larger ones are unlinked */

#define ENVELOPE_VERSION	"sqmail-envelope 1"

/* queue_envelope.c: the envelope file format, see sqmail-queue(5). */
int		 envelope_decode(const char *, size_t, struct envelope *);
char		*envelope_encode(const struct envelope *, size_t *);
void		 envelope_free(struct envelope *);
/*
 * The envelope of a message the queue makes itself (a bounce, a forward):
 * id, ctime now, helo, proto, and one pending recipient, due now, per
 * dest; env->rcpts holds room for ndest already.
 */
void		 envelope_made(struct envelope *, uint64_t id, time_t now,
		    const char *helo, const char *proto,
		    const struct dest *dests, size_t ndest);
/* Why the last envelope_decode() failed, e.g. "line 4: unknown key". */
const char	*envelope_error(void);
const char	*envelope_state_name(enum rcpt_state);
/* Line breaks and tabs become spaces, other bytes not printable ASCII '?'. */
void		 envelope_sanitize(char *);

/*
 * queue_spare.c: finished spool files reused for new ones.  open gives a
 * writable, empty file newly at path (a spare renamed there, else created;
 * excl: the caller made sure path does not exist); release unlinks path
 * or keeps the file as a spare, and returns like unlink(2).
 */
int		 queue_spare_init(void);
int		 queue_spare_open(const char *, int);
int		 queue_spare_release(const char *);
size_t		 queue_spare_count(void);

/*
 * queue_fs.c: the store.  Every path is relative to the current directory.
 *
 * A batch is an array of operations made durable together: each COMMIT
 * writes incoming/<id>.env, each UPDATE writes env/<id>.tmp; then every
 * file is fsync'd in parallel, renamed into place, and mess/ and env/ are
 * fsync'd once.  status is SQ_OK only once all of that succeeded for the
 * operation; a failed COMMIT leaves no file behind.
 */
enum queue_op_type {
	QUEUE_OP_COMMIT = 1,	/* incoming/<id> + envelope -> mess/, env/ */
	QUEUE_OP_UPDATE		/* rewrite env/<id> */
};

struct queue_op {
	enum queue_op_type	 type;
	struct envelope		*env;	/* COMMIT sets size from the file */
	int			 status;	/* out: enum sq_status */
	int			 fd_msg;	/* private */
	int			 fd_env;	/* private */
	int			 stage;		/* private */
};

struct queue_recovery {
	size_t		 messages;	/* scheduled again */
	size_t		 pending;	/* their pending recipients */
	size_t		 incoming;	/* unfinished files removed */
	size_t		 quarantined;
	size_t		 orphans;	/* mess/ files without envelope */
};

int		 queue_fs_init(void);
/* Create incoming/<id>; *fd is opened for writing.  SQ_OK or SQ_TEMPFAIL. */
int		 queue_fs_create(uint64_t *id, int *fd);
void		 queue_fs_abort(uint64_t);
void		 queue_fs_batch(struct queue_op **, size_t);
/* Unlink env/<id> then mess/<id>; the env/ fsync is left to a batch. */
int		 queue_fs_remove(uint64_t);
/* mess/<id> opened read-only, or -1. */
int		 queue_fs_open_message(uint64_t);
/* The first max octets of mess/<id> (NUL added) and the file's size. */
int		 queue_fs_read_message(uint64_t, size_t max, char **,
		    size_t *, uint64_t *);
/* write(2) until done; 0 or -1. */
int		 queue_fs_write(int, const char *, size_t);
/* read(2) until len octets or the end of the file; how many, or -1. */
ssize_t		 queue_fs_read(int, char *, size_t);
int		 queue_fs_hash(int, uint64_t size, uint64_t *);
void		 queue_fs_sync_dirs(void);
/* queue_recover.c */
int		 queue_fs_quarantine(uint64_t, const char *why);
/*
 * Scan the spool at start: cb gets each valid envelope (and owns it).
 * Returns 0, or -1 when a directory cannot be read at all.
 */
int		 queue_fs_recover(void (*cb)(struct envelope *, void *), void *,
		    struct queue_recovery *);
/* Decimal text of an id ("18446744073709551615" at most). */
#define QUEUE_ID_STRLEN	21
const char	*queue_id_str(uint64_t, char *, size_t);
int		 queue_id_parse(const char *, uint64_t *);

/* queue_bounce.c */
struct bounce_rcpt {
	const char	*addr;
	const char	*error;
};

struct bounce_params {
	const char		*hostname;	/* ours */
	const char		*to;		/* header To: */
	const char		*return_path;	/* the original's sender */
	int			 dbounce;	/* a bounce of a bounce */
	time_t			 now;
	uint64_t		 id;		/* the bounce's id */
	const struct bounce_rcpt *rcpts;
	size_t			 nrcpt;
	const char		*orig;		/* the original, or its start */
	size_t			 origlen;	/* octets in orig */
	uint64_t		 origsize;	/* octets in the original */
	size_t			 maxquote;	/* octets to quote at most */
};

/* Compose a QSBMF bounce (pure); malloc'd text and its length, or NULL. */
char		*bounce_compose(const struct bounce_params *, size_t *);
/* The qmail-send log escaping: ' ' -> '_', '\n' -> '/', controls -> '?'. */
void		 bounce_logtext(const char *, char *, size_t);

/*
 * queue.c: batching of store operations.  A job is submitted for the next
 * batch; done() runs after the batch with job->op.status set.
 */
struct queue_job {
	TAILQ_ENTRY(queue_job)	 entry;
	struct queue_op		 op;
	int			 queued;
	void			(*done)(struct queue_job *);
	void			*arg;
	uint64_t		 reqid;
	uint64_t		 origid;
};

void		 queue_submit(struct queue_job *);
void		 queue_cancel(struct queue_job *);

struct queue_stats {
	uint64_t	 messages_in;
	uint64_t	 deliveries_ok;
	uint64_t	 deliveries_temp;
	uint64_t	 deliveries_perm;
	uint64_t	 bounces;
};
extern struct queue_stats	 queue_stats;

/* queue_sched.c: messages in memory, deliveries, bounces, control. */
struct mproc;
struct imsg;
void		 queue_sched_init(void);
/*
 * Take a committed (isnew: logged as a new message) or recovered envelope:
 * the struct is copied, its rcpts array moves to the scheduler.
 */
void		 queue_sched_add(struct envelope *, int isnew);
void		 queue_sched_recovered(struct envelope *, void *);
void		 queue_sched_run(void);
void		 queue_sched_deliver_done(struct mproc *, struct imsg *);
void		 queue_sched_lka(struct mproc *, struct imsg *);
void		 queue_sched_ctl(struct mproc *, struct imsg *);
size_t		 queue_sched_count(size_t *pending);

#endif
