/*
 * lka_child.c: the short-lived children that give an AUTH verdict by
 * their exit status (checkpassword programs, LDAP checks).  A pool runs
 * at most its concurrency at once; later ones wait in order, at most its
 * waitmax.  Each child has a timeout after which its process group is
 * killed and its verdict is a temporary failure.  SIGCHLD, one event on
 * lka's loop for every pool, reaps them: lka never waits.  The same event
 * reaps long-lived children whose owner learns of their end otherwise
 * (the LDAP workers: their socket closes), handed over by
 * lka_child_reap().
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <event.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lka.h"
#include "log.h"
#include "sqmail.h"

static TAILQ_HEAD(, lka_childpool) child_pools =
    TAILQ_HEAD_INITIALIZER(child_pools);
static struct event		 child_ev_sigchld;
static int			 child_sigchld_set;

/* Children to reap and nothing more (lka_child_reap()). */
struct child_reap {
	TAILQ_ENTRY(child_reap)	 entry;
	pid_t			 pid;
};
static TAILQ_HEAD(, child_reap)	 child_reaps =
    TAILQ_HEAD_INITIALIZER(child_reaps);

static void	child_start_next(struct lka_childpool *);

/* The verdict of an exit status: SQ_OK, SQ_PERMFAIL or SQ_TEMPFAIL. */
static int
child_status(struct lka_child *c, int wstatus)
{
	struct lka_childpool	*pool = c->pool;

	if (c->timedout)
		return SQ_TEMPFAIL;
	if (WIFEXITED(wstatus)) {
		if (WEXITSTATUS(wstatus) == pool->exit_ok)
			return SQ_OK;
		if (WEXITSTATUS(wstatus) == pool->exit_bad)
			return SQ_PERMFAIL;
		log_warnx("lka: auth: %s exited with status %d (temporary "
		    "failure)", c->what, WEXITSTATUS(wstatus));
	} else if (WIFSIGNALED(wstatus))
		log_warnx("lka: auth: %s killed by signal %d", c->what,
		    WTERMSIG(wstatus));
	return SQ_TEMPFAIL;
}

static void
child_end(struct lka_child *c, int status)
{
	if (c->pid > 0)
		evtimer_del(&c->ev_timeout);
	c->pool->done(c, status);
}

static void
child_timeout(int fd, short ev, void *arg)
{
	struct lka_child	*c = arg;

	log_warnx("lka: auth: %s: no verdict in %lld s; killed", c->what,
	    (long long)c->timeout);
	c->timedout = 1;
	/* The group: a script's own children (sleep, ...) go too. */
	if (kill(-c->pid, SIGKILL) == -1)
		(void)kill(c->pid, SIGKILL);
}

static void
child_sigchld(int sig, short ev, void *arg)
{
	struct lka_childpool	*pool;
	struct lka_child	*c, *tmp;
	struct child_reap	*r, *rtmp;
	pid_t			 pid;
	int			 wstatus;

	TAILQ_FOREACH_SAFE(r, &child_reaps, entry, rtmp) {
		while ((pid = waitpid(r->pid, &wstatus, WNOHANG)) == -1 &&
		    errno == EINTR)
			;
		if (pid == 0)
			continue;
		TAILQ_REMOVE(&child_reaps, r, entry);
		free(r);
	}
	TAILQ_FOREACH(pool, &child_pools, entry) {
		TAILQ_FOREACH_SAFE(c, &pool->running, entry, tmp) {
			while ((pid = waitpid(c->pid, &wstatus, WNOHANG)) ==
			    -1 && errno == EINTR)
				;
			if (pid == 0)
				continue;
			TAILQ_REMOVE(&pool->running, c, entry);
			pool->nrunning--;
			if (pid == -1) {
				log_warn("lka: auth: waitpid %d", (int)c->pid);
				child_end(c, SQ_TEMPFAIL);
			} else
				child_end(c, child_status(c, wstatus));
		}
		child_start_next(pool);
	}
}

static void
child_start_next(struct lka_childpool *pool)
{
	struct lka_child	*c;
	struct timeval		 tv;

	while (pool->nrunning < pool->concurrency &&
	    (c = TAILQ_FIRST(&pool->waiting)) != NULL) {
		TAILQ_REMOVE(&pool->waiting, c, entry);
		pool->nwaiting--;
		if ((c->pid = pool->spawn(c)) <= 0) {
			c->pid = 0;
			child_end(c, SQ_TEMPFAIL);
			continue;
		}
		(void)setpgid(c->pid, c->pid);	/* whichever of us is first */
		evtimer_set(&c->ev_timeout, child_timeout, c);
		tv.tv_sec = c->timeout;
		tv.tv_usec = 0;
		evtimer_add(&c->ev_timeout, &tv);
		TAILQ_INSERT_TAIL(&pool->running, c, entry);
		pool->nrunning++;
		log_debug("lka: auth: %s started (pid %d)", c->what,
		    (int)c->pid);
	}
}

void
lka_child_init(void)
{
	if (child_sigchld_set)
		return;
	signal_set(&child_ev_sigchld, SIGCHLD, child_sigchld, NULL);
	signal_add(&child_ev_sigchld, NULL);
	child_sigchld_set = 1;
}

int
lka_child_run(struct lka_childpool *pool, struct lka_child *c)
{
	if (!pool->ready) {
		TAILQ_INIT(&pool->running);
		TAILQ_INIT(&pool->waiting);
		TAILQ_INSERT_TAIL(&child_pools, pool, entry);
		pool->ready = 1;
	}
	lka_child_init();
	if (pool->nwaiting >= pool->waitmax) {
		log_warnx("lka: auth: %zu %s checks waiting already",
		    pool->nwaiting, pool->name);
		return -1;
	}
	c->pool = pool;
	c->pid = 0;
	c->timedout = 0;
	TAILQ_INSERT_TAIL(&pool->waiting, c, entry);
	pool->nwaiting++;
	child_start_next(pool);
	return 0;
}

void
lka_child_reap(pid_t pid)
{
	struct child_reap	*r;

	lka_child_init();
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		/* A zombie until lka exits: harmless, and said. */
		log_warn("lka: child %d will not be reaped", (int)pid);
		return;
	}
	r->pid = pid;
	TAILQ_INSERT_TAIL(&child_reaps, r, entry);
}
