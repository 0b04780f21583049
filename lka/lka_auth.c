/*
 * lka_auth.c: SMTP AUTH credentials.  lka_auth_request() picks the
 * listener's backend: a users table (below), a checkpassword program
 * (lka_auth_prog.c), an LDAP server (lka_auth_ldap.c) or the system
 * users, which only the parent can read (IMSG_AUTH_SYSTEM;
 * smtpd/parent_auth.c).  The table backend: the
 * smtp process sends a user and password (IMSG_LKA_AUTH); the table named
 * on the listener maps the user (case-insensitively, as every table key)
 * to a crypt(3) hash, the first word of the value: whatever libcrypt's
 * crypt_r() verifies (yescrypt "$y$", sha512-crypt "$6$", bcrypt "$2b$",
 * ...).  Anything after that word is ignored.  A table that cannot be
 * read is a temporary failure, never an accept.  The lookup happens on
 * the event loop, the hashing in a pool of threads (see lka_auth_table()).
 */
#include <sys/types.h>

#include <crypt.h>
#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "imsg.h"
#include "lka.h"
#include "log.h"
#include "mproc.h"
#include "msg.h"
#include "proc.h"
#include "sqmail.h"
#include "table.h"

/* Hashed when the user is unknown, so that the answer takes as long. */
#define LKA_AUTH_DUMMY	"$6$sqmailsqmailsq$"

/* Whether hash looks like a crypt(3) hash at all ("*", "!..." lock). */
static int
lka_auth_hash_ok(const char *hash)
{
	return hash[0] == '$' && strlen(hash) < CRYPT_OUTPUT_SIZE;
}

/*
 * The main thread's half: look user up in table tname and copy the hash
 * to check into hash (CRYPT_OUTPUT_SIZE octets), or the dummy one with
 * *dummy set for an unknown or locked user.  -1 when there is a hash to
 * compute, or a status to answer without one (the table failed).
 */
static int
lka_auth_lookup(struct sqconf *c, const char *tname, const char *user,
    char *hash, int *dummy)
{
	struct table	*t;
	char		 val[TABLE_LINE_MAX], *h;
	int		 r;

	*dummy = 1;
	(void)strlcpy(hash, LKA_AUTH_DUMMY, CRYPT_OUTPUT_SIZE);
	if ((t = config_table(c, tname)) == NULL) {
		log_warnx("lka: auth: table \"%s\" is not defined", tname);
		return SQ_TEMPFAIL;
	}
	r = table_lookup(t, user, val, sizeof(val));
	if (r == -1) {
		explicit_bzero(val, sizeof(val));
		return SQ_TEMPFAIL;
	}
	if (r == 1) {
		h = val + strspn(val, " \t");
		h[strcspn(h, " \t")] = '\0';
		if (lka_auth_hash_ok(h)) {
			(void)strlcpy(hash, h, CRYPT_OUTPUT_SIZE);
			*dummy = 0;
		} else
			log_debug("lka: auth: table %s: user %s has no usable "
			    "hash (locked?)", tname, user);
	}
	explicit_bzero(val, sizeof(val));
	return -1;
}

/*
 * The slow half, in any thread: hash pass with hash's salt and compare.
 * SQ_OK, SQ_PERMFAIL, or SQ_TEMPFAIL when libcrypt does not know the
 * hash (the table is wrong).  Touches nothing but its arguments.
 */
static int
lka_auth_verify(const char *pass, const char *hash, int dummy,
    struct crypt_data *cd)
{
	const char	*out;
	size_t		 hlen;
	int		 status = SQ_PERMFAIL;

	out = crypt_r(pass, hash, cd);
	if (dummy)
		;	/* hashed only to take as long */
	else if (out == NULL || out[0] == '*')
		status = SQ_TEMPFAIL;
	else {
		hlen = strlen(hash);
		if (strlen(out) == hlen && timingsafe_equal(out, hash, hlen))
			status = SQ_OK;
	}
	explicit_bzero(cd, sizeof(*cd));
	return status;
}

static void
lka_auth_unsupported(const char *tname, const char *user)
{
	log_warnx("lka: auth: table %s: user %s: hash not supported by "
	    "crypt(3)", tname, user);
}

/*
 * The daemon's path: crypt_r() of a slow hash (yescrypt, bcrypt) takes
 * tens of milliseconds or more, and on the event loop it would hold up
 * every other lookup lka answers.  So the main thread looks the user up
 * (tables belong to it: a reload replaces them) and queues a job holding
 * copies of everything the hash needs; AUTH_POOL_THREADS threads hash and
 * compare, put the job on the done list and write a byte to a pipe; the
 * loop reads the pipe and answers.  Past AUTH_POOL_JOBS_MAX jobs in the
 * pool (waiting or hashing) a request fails temporarily at once.
 */
#define AUTH_POOL_THREADS	2
#define AUTH_POOL_JOBS_MAX	256

struct authjob {
	TAILQ_ENTRY(authjob)	 entry;
	struct mproc		*p;
	uint64_t		 reqid;
	int			 dummy;
	int			 status;	/* the worker's verdict */
	char			 tname[64];	/* for logs */
	char			 user[LKA_AUTH_USER_MAX + 1];
	char			 hash[CRYPT_OUTPUT_SIZE];
	char			 pass[LKA_AUTH_PASS_MAX + 1];
};
TAILQ_HEAD(authjoblist, authjob);

static struct {
	pthread_mutex_t		 mtx;
	pthread_cond_t		 work;
	struct authjoblist	 todo;		/* under mtx */
	struct authjoblist	 done;		/* under mtx */
	size_t			 njobs;		/* loop only */
	int			 nthreads;	/* loop only */
	int			 pipe[2];	/* a byte per job done */
} auth_pool = {
	PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
	TAILQ_HEAD_INITIALIZER(auth_pool.todo),
	TAILQ_HEAD_INITIALIZER(auth_pool.done), 0, 0, { -1, -1 }
};
static struct event	 auth_pool_ev;

static void
auth_job_free(struct authjob *j)
{
	freezero(j, sizeof(*j));
}

static void *
auth_pool_worker(void *arg)
{
	struct crypt_data	*cd = arg;
	struct authjob		*j;
	char			 b = 0;

	pthread_mutex_lock(&auth_pool.mtx);
	for (;;) {
		while ((j = TAILQ_FIRST(&auth_pool.todo)) == NULL)
			pthread_cond_wait(&auth_pool.work, &auth_pool.mtx);
		TAILQ_REMOVE(&auth_pool.todo, j, entry);
		pthread_mutex_unlock(&auth_pool.mtx);
		j->status = lka_auth_verify(j->pass, j->hash, j->dummy, cd);
		explicit_bzero(j->pass, sizeof(j->pass));
		explicit_bzero(j->hash, sizeof(j->hash));
		pthread_mutex_lock(&auth_pool.mtx);
		TAILQ_INSERT_TAIL(&auth_pool.done, j, entry);
		/*
		 * After the insert: a loop that drained the pipe before it
		 * will see this byte.  A full pipe (EAGAIN) already holds a
		 * wake-up for the loop, which takes the whole done list.
		 */
		if (write(auth_pool.pipe[1], &b, 1) == -1 && errno != EAGAIN)
			abort();	/* the pipe is ours: cannot happen */
	}
	return NULL;
}

/* The loop's side: answer every finished job. */
static void
auth_pool_done(int fd, short ev, void *arg)
{
	struct authjoblist	 done = TAILQ_HEAD_INITIALIZER(done);
	struct authjob		*j;
	char			 buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&auth_pool.mtx);
	TAILQ_CONCAT(&done, &auth_pool.done, entry);
	pthread_mutex_unlock(&auth_pool.mtx);
	while ((j = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, j, entry);
		auth_pool.njobs--;
		if (j->status == SQ_TEMPFAIL)
			lka_auth_unsupported(j->tname, j->user);
		lka_auth_answer(j->p, j->reqid, j->status);
		auth_job_free(j);
	}
}

/*
 * Start the threads at the first table check: a daemon without one stays
 * single-threaded.  0, or -1 when not one thread runs (tried again next
 * time).
 */
static int
auth_pool_start(void)
{
	struct crypt_data	*cd;
	pthread_t		 t;
	sigset_t		 all, old;

	if (auth_pool.nthreads > 0)
		return 0;
	if (auth_pool.pipe[0] == -1) {
		if (pipe2(auth_pool.pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
			log_warn("lka: auth: pipe");
			return -1;
		}
		event_set(&auth_pool_ev, auth_pool.pipe[0],
		    EV_READ | EV_PERSIST, auth_pool_done, NULL);
		event_add(&auth_pool_ev, NULL);
	}
	/* Signals stay with the main thread (libevent handles them). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	while (auth_pool.nthreads < AUTH_POOL_THREADS) {
		/* Each thread's own: yescrypt keeps its state in it. */
		if ((cd = calloc(1, sizeof(*cd))) == NULL) {
			log_warn("lka: auth");
			break;
		}
		if (pthread_create(&t, NULL, auth_pool_worker, cd) != 0) {
			log_warnx("lka: auth: cannot start hashing thread %d",
			    auth_pool.nthreads);
			free(cd);
			break;
		}
		pthread_detach(t);
		auth_pool.nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return auth_pool.nthreads > 0 ? 0 : -1;
}

/* Look up and queue; -1 when the answer will follow, or a status now. */
static int
lka_auth_table(struct mproc *p, uint64_t reqid, const char *tname,
    const char *user, const char *pass)
{
	struct authjob	*j;
	int		 status;

	if (auth_pool.njobs >= AUTH_POOL_JOBS_MAX) {
		log_warnx("lka: auth: %zu password checks waiting already",
		    auth_pool.njobs);
		return SQ_TEMPFAIL;
	}
	if (auth_pool_start() == -1)
		return SQ_TEMPFAIL;
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		log_warn("lka: auth");
		return SQ_TEMPFAIL;
	}
	status = lka_auth_lookup(conf, tname, user, j->hash, &j->dummy);
	if (status != -1) {
		auth_job_free(j);
		return status;
	}
	j->p = p;
	j->reqid = reqid;
	(void)strlcpy(j->tname, tname, sizeof(j->tname));
	/* lka_auth_request() bounded both. */
	(void)strlcpy(j->user, user, sizeof(j->user));
	(void)strlcpy(j->pass, pass, sizeof(j->pass));
	auth_pool.njobs++;
	pthread_mutex_lock(&auth_pool.mtx);
	TAILQ_INSERT_TAIL(&auth_pool.todo, j, entry);
	pthread_cond_signal(&auth_pool.work);
	pthread_mutex_unlock(&auth_pool.mtx);
	return -1;
}

/*
 * System-user checks waiting for the parent.  The parent answers every
 * request (it bounds each check with a timeout), so an entry lives until
 * its answer; past LKA_AUTH_PENDING_MAX a new request fails temporarily.
 */
#define LKA_AUTH_PENDING_MAX	1024

struct lka_auth_pending {
	TAILQ_ENTRY(lka_auth_pending)	 entry;
	uint32_t			 id;
	struct mproc			*p;
	uint64_t			 reqid;
};

static TAILQ_HEAD(, lka_auth_pending)	 lka_auth_pending =
    TAILQ_HEAD_INITIALIZER(lka_auth_pending);
static size_t				 lka_auth_npending;
static uint32_t				 lka_auth_nextid;

void
lka_auth_answer(struct mproc *p, uint64_t reqid, int status)
{
	m_create(p, IMSG_LKA_AUTH, 0, -1);
	m_add_u64(p, reqid);
	m_add_int(p, status);
	m_close(p);
}

static int
lka_auth_system(struct mproc *p, uint64_t reqid, const struct authsrc *as,
    const char *user, const char *pass)
{
	struct lka_auth_pending	*w;

	if (peers[PROC_PARENT] == NULL ||
	    lka_auth_npending >= LKA_AUTH_PENDING_MAX) {
		log_warnx("lka: auth: too many system checks waiting");
		return SQ_TEMPFAIL;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		log_warn("lka: auth");
		return SQ_TEMPFAIL;
	}
	w->id = ++lka_auth_nextid;
	w->p = p;
	w->reqid = reqid;
	TAILQ_INSERT_TAIL(&lka_auth_pending, w, entry);
	lka_auth_npending++;
	m_create(peers[PROC_PARENT], IMSG_AUTH_SYSTEM, 0, -1);
	m_add_u32(peers[PROC_PARENT], w->id);
	m_add_string(peers[PROC_PARENT],
	    as->type == AUTHB_PAM ? as->service : "");
	m_add_string(peers[PROC_PARENT], user);
	m_add_string(peers[PROC_PARENT], pass);
	m_close(peers[PROC_PARENT]);
	return -1;
}

/* The parent's answer to IMSG_AUTH_SYSTEM: pass it on to smtp. */
void
lka_auth_system_done(uint32_t id, int status)
{
	struct lka_auth_pending	*w;

	TAILQ_FOREACH(w, &lka_auth_pending, entry)
		if (w->id == id)
			break;
	if (w == NULL) {
		log_warnx("lka: auth: answer to unknown system check %u", id);
		return;
	}
	TAILQ_REMOVE(&lka_auth_pending, w, entry);
	lka_auth_npending--;
	if (status != SQ_OK && status != SQ_PERMFAIL)
		status = SQ_TEMPFAIL;
	lka_auth_answer(w->p, w->reqid, status);
	free(w);
}

void
lka_auth_request(struct mproc *p, uint64_t reqid, const char *src,
    const char *user, const char *pass)
{
	struct authsrc	*as;
	struct domain	*d;
	const char	*at;
	int		 status;

	if (strlen(user) > LKA_AUTH_USER_MAX ||
	    strlen(pass) > LKA_AUTH_PASS_MAX) {
		/* smtp bounds both: a longer one is no credential of ours. */
		lka_auth_answer(p, reqid, SQ_PERMFAIL);
		return;
	}
	/* user@domain, whose domain block names a backend: that one. */
	if ((at = strrchr(user, '@')) != NULL && at[1] != '\0' &&
	    (d = config_domain(conf, at + 1)) != NULL &&
	    d->auth_src[0] != '\0')
		src = d->auth_src;
	if (src[0] != AUTH_SRC_PREFIX) {
		if ((status = lka_auth_table(p, reqid, src, user, pass)) != -1)
			lka_auth_answer(p, reqid, status);
		return;
	}
	if ((as = config_authsrc(conf, src)) == NULL) {
		/* A reload dropped what the listener (fixed at start) uses. */
		log_warnx("lka: auth: backend %s is not configured (listener "
		    "changes need a restart)", src);
		lka_auth_answer(p, reqid, SQ_TEMPFAIL);
		return;
	}
	switch (as->type) {
	case AUTHB_PROG:
		status = lka_auth_prog(p, reqid, as, user, pass);
		break;
	case AUTHB_LDAP:
		status = lka_auth_ldap(p, reqid, as, user, pass);
		break;
	case AUTHB_SYSTEM:
	case AUTHB_PAM:
		status = lka_auth_system(p, reqid, as, user, pass);
		break;
	default:
		status = SQ_TEMPFAIL;
	}
	if (status != -1)
		lka_auth_answer(p, reqid, status);
}
