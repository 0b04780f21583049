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
#include "proc.h"
#include "sqmail.h"

#define PROG_CONCURRENCY	8	/* programs running at once */
#define PROG_WAIT_MAX		256	/* requests waiting for a turn */
#define PROG_NEXT		"/bin/true"	/* checkpassword's "prog" */
/* user NUL password NUL timestamp NUL: under PIPE_BUF, see above */
#define PROG_BUF		(LKA_AUTH_USER_MAX + LKA_AUTH_PASS_MAX + 32)

struct authprog {
	struct lka_child	 c;		/* first: the pool's view */
	struct mproc		*p;
	uint64_t		 reqid;
	char			 prog[PATH_MAX];	/* copied: reloads */
	char			 buf[PROG_BUF];	/* the fd 3 data, wiped */
	size_t			 len;
};

extern char	**environ;

static pid_t	prog_spawn(struct lka_child *);
static void	prog_done(struct lka_child *, int);

static struct lka_childpool	 prog_pool = {
	.name = "checkpassword", .concurrency = PROG_CONCURRENCY,
	.waitmax = PROG_WAIT_MAX, .exit_ok = 0, .exit_bad = 1,
	.spawn = prog_spawn, .done = prog_done
};

/* The child: descriptors in place, own process group, then the program. */
static __attribute__((__noreturn__)) void
prog_child(struct authprog *a, int rfd)
{
	char		*argv[3];
	char		*envp[] = { "PATH=/usr/local/bin:/usr/bin:/bin", NULL };
	int		 null;

	(void)setpgid(0, 0);
	proc_child_signals(0);
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

/* The verdict: answer and forget the request. */
static void
prog_done(struct lka_child *c, int status)
{
	struct authprog	*a = (struct authprog *)c;

	lka_auth_answer(a->p, a->reqid, status);
	freezero(a, sizeof(*a));
}

/* Fork and exec one program: its pid, or -1 when it could not start. */
static pid_t
prog_spawn(struct lka_child *c)
{
	struct authprog	*a = (struct authprog *)c;
	pid_t		 pid;
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
	if ((pid = fork()) == -1) {
		log_warn("lka: auth: fork");
		close(fds[0]);
		return -1;
	}
	if (pid == 0)
		prog_child(a, fds[0]);
	close(fds[0]);
	return pid;
}

int
lka_auth_prog(struct mproc *p, uint64_t reqid, const struct authsrc *as,
    const char *user, const char *pass)
{
	struct authprog	*a;
	size_t		 ulen, plen;
	int		 n;

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
	a->c.what = a->prog;
	a->c.timeout = as->timeout > 0 ? as->timeout : AUTH_PROG_TIMEOUT;
	memcpy(a->buf, user, ulen + 1);
	memcpy(a->buf + ulen + 1, pass, plen + 1);
	n = snprintf(a->buf + ulen + plen + 2,
	    sizeof(a->buf) - ulen - plen - 2, "%lld", (long long)time(NULL));
	a->len = ulen + plen + 2 + n + 1;	/* the timestamp's NUL too */
	if (lka_child_run(&prog_pool, &a->c) == -1) {
		freezero(a, sizeof(*a));
		return SQ_TEMPFAIL;
	}
	return -1;
}
