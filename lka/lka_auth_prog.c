/*
 * lka_auth_prog.c: SMTP AUTH through a checkpassword program (D. J.
 * Bernstein's interface).  The program gets "user\0password\0timestamp\0"
 * on descriptor 3 (a pipe) and one argument, a program to run once the
 * user is authenticated: /bin/true, since we want only the verdict.
 * stdin, stdout and stderr are /dev/null.  Exit 0: authenticated; 1: bad
 * credentials; anything else, a signal or the timeout: a temporary
 * failure (the program runs in its own process group, and the timeout
 * kills the group).
 *
 * All of it runs on lka's event loop: the credentials are written to the
 * pipe before the fork (they fit in PIPE_BUF, so the write neither blocks
 * nor splits), and SIGCHLD tells us when to reap.  At most
 * PROG_CONCURRENCY programs run at once; later requests wait in order, at
 * most PROG_WAIT_MAX of them.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "lka.h"
#include "log.h"
#include "sqmail.h"

#define PROG_CONCURRENCY	8	/* programs running at once */
#define PROG_WAIT_MAX		256	/* requests waiting for a turn */
#define PROG_NEXT		"/bin/true"	/* checkpassword's "prog" */
/* user NUL password NUL timestamp NUL: under PIPE_BUF, see above */
#define PROG_BUF		(LKA_AUTH_USER_MAX + LKA_AUTH_PASS_MAX + 32)

struct authprog {
	TAILQ_ENTRY(authprog)	 entry;
	struct mproc		*p;
	uint64_t		 reqid;
	char			 prog[PATH_MAX];	/* copied: reloads */
	time_t			 timeout;
	char			 buf[PROG_BUF];	/* the fd 3 data, wiped */
	size_t			 len;
	pid_t			 pid;		/* 0: waiting */
	int			 timedout;
	struct event		 ev_timeout;
};
TAILQ_HEAD(authproglist, authprog);

static struct authproglist	 prog_running =
    TAILQ_HEAD_INITIALIZER(prog_running);
static struct authproglist	 prog_waiting =
    TAILQ_HEAD_INITIALIZER(prog_waiting);
static size_t			 prog_nrunning, prog_nwaiting;
static struct event		 prog_ev_sigchld;
static int			 prog_sigchld_set;

extern char	**environ;

static void	prog_start_next(void);

static void
prog_free(struct authprog *a)
{
	if (a->pid != 0 && evtimer_initialized(&a->ev_timeout))
		evtimer_del(&a->ev_timeout);
	freezero(a, sizeof(*a));
}

/* The child: descriptors in place, own process group, then the program. */
static __attribute__((__noreturn__)) void
prog_child(struct authprog *a, int rfd)
{
	char		*argv[3];
	char		*envp[] = { "PATH=/usr/local/bin:/usr/bin:/bin", NULL };
	sigset_t	 set;
	int		 null;

	(void)setpgid(0, 0);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigemptyset(&set);
	(void)sigprocmask(SIG_SETMASK, &set, NULL);
	if ((null = open("/dev/null", O_RDWR)) == -1)
		_exit(111);
	if (rfd != 3 && dup2(rfd, 3) == -1)
		_exit(111);
	if (dup2(null, 0) == -1 || dup2(null, 1) == -1 ||
	    dup2(null, 2) == -1)
		_exit(111);
	if (fcntl(3, F_SETFD, 0) == -1)
		_exit(111);
	closefrom(4);
	argv[0] = a->prog;
	argv[1] = PROG_NEXT;
	argv[2] = NULL;
	execve(a->prog, argv, envp);
	_exit(111);
}

/* Answer and forget one request. */
static void
prog_finish(struct authprog *a, int status)
{
	lka_auth_answer(a->p, a->reqid, status);
	prog_free(a);
}

static void
prog_timeout(int fd, short ev, void *arg)
{
	struct authprog	*a = arg;

	log_warnx("lka: auth: %s: no verdict in %lld s; killed", a->prog,
	    (long long)a->timeout);
	a->timedout = 1;
	/* The group: a script's own children (sleep, ...) go too. */
	if (kill(-a->pid, SIGKILL) == -1)
		(void)kill(a->pid, SIGKILL);
}

static int
prog_status(struct authprog *a, int wstatus)
{
	if (a->timedout)
		return SQ_TEMPFAIL;
	if (WIFEXITED(wstatus)) {
		switch (WEXITSTATUS(wstatus)) {
		case 0:
			return SQ_OK;
		case 1:
			return SQ_PERMFAIL;
		default:
			log_warnx("lka: auth: %s exited with status %d "
			    "(temporary failure)", a->prog,
			    WEXITSTATUS(wstatus));
			return SQ_TEMPFAIL;
		}
	}
	if (WIFSIGNALED(wstatus))
		log_warnx("lka: auth: %s killed by signal %d", a->prog,
		    WTERMSIG(wstatus));
	return SQ_TEMPFAIL;
}

/* SIGCHLD: reap the programs that ended; the rest keep running. */
static void
prog_sigchld(int sig, short ev, void *arg)
{
	struct authprog	*a, *tmp;
	pid_t		 pid;
	int		 wstatus;

	TAILQ_FOREACH_SAFE(a, &prog_running, entry, tmp) {
		while ((pid = waitpid(a->pid, &wstatus, WNOHANG)) == -1 &&
		    errno == EINTR)
			;
		if (pid == 0)
			continue;
		TAILQ_REMOVE(&prog_running, a, entry);
		prog_nrunning--;
		if (pid == -1) {
			log_warn("lka: auth: waitpid %d", (int)a->pid);
			prog_finish(a, SQ_TEMPFAIL);
		} else
			prog_finish(a, prog_status(a, wstatus));
	}
	prog_start_next();
}

/* Fork and exec one program: 0, or -1 when it could not start. */
static int
prog_spawn(struct authprog *a)
{
	struct timeval	 tv;
	int		 fds[2];
	ssize_t		 n;

	if (pipe2(fds, O_CLOEXEC) == -1) {
		log_warn("lka: auth: pipe");
		return -1;
	}
	n = write(fds[1], a->buf, a->len);
	explicit_bzero(a->buf, sizeof(a->buf));
	close(fds[1]);
	if (n != (ssize_t)a->len) {
		log_warn("lka: auth: write to pipe");
		close(fds[0]);
		return -1;
	}
	if ((a->pid = fork()) == -1) {
		log_warn("lka: auth: fork");
		a->pid = 0;
		close(fds[0]);
		return -1;
	}
	if (a->pid == 0)
		prog_child(a, fds[0]);
	close(fds[0]);
	(void)setpgid(a->pid, a->pid);	/* whichever of us comes first */
	evtimer_set(&a->ev_timeout, prog_timeout, a);
	tv.tv_sec = a->timeout;
	tv.tv_usec = 0;
	evtimer_add(&a->ev_timeout, &tv);
	TAILQ_INSERT_TAIL(&prog_running, a, entry);
	prog_nrunning++;
	log_debug("lka: auth: %s started (pid %d)", a->prog, (int)a->pid);
	return 0;
}

static void
prog_start_next(void)
{
	struct authprog	*a;

	while (prog_nrunning < PROG_CONCURRENCY &&
	    (a = TAILQ_FIRST(&prog_waiting)) != NULL) {
		TAILQ_REMOVE(&prog_waiting, a, entry);
		prog_nwaiting--;
		if (prog_spawn(a) == -1)
			prog_finish(a, SQ_TEMPFAIL);
	}
}

void
lka_auth_prog_init(void)
{
	if (prog_sigchld_set)
		return;
	signal_set(&prog_ev_sigchld, SIGCHLD, prog_sigchld, NULL);
	signal_add(&prog_ev_sigchld, NULL);
	prog_sigchld_set = 1;
}

int
lka_auth_prog(struct mproc *p, uint64_t reqid, const struct authsrc *as,
    const char *user, const char *pass)
{
	struct authprog	*a;
	size_t		 ulen, plen;
	int		 n;

	lka_auth_prog_init();
	if (prog_nwaiting >= PROG_WAIT_MAX) {
		log_warnx("lka: auth: %zu checkpassword requests waiting "
		    "already", prog_nwaiting);
		return SQ_TEMPFAIL;
	}
	ulen = strlen(user);
	plen = strlen(pass);
	if (ulen > LKA_AUTH_USER_MAX || plen > LKA_AUTH_PASS_MAX)
		return SQ_PERMFAIL;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		log_warn("lka: auth");
		return SQ_TEMPFAIL;
	}
	a->p = p;
	a->reqid = reqid;
	(void)strlcpy(a->prog, as->prog, sizeof(a->prog));
	a->timeout = as->timeout > 0 ? as->timeout : AUTH_PROG_TIMEOUT;
	memcpy(a->buf, user, ulen + 1);
	memcpy(a->buf + ulen + 1, pass, plen + 1);
	n = snprintf(a->buf + ulen + plen + 2,
	    sizeof(a->buf) - ulen - plen - 2, "%lld", (long long)time(NULL));
	a->len = ulen + plen + 2 + n + 1;	/* the timestamp's NUL too */
	TAILQ_INSERT_TAIL(&prog_waiting, a, entry);
	prog_nwaiting++;
	prog_start_next();
	return -1;
}
