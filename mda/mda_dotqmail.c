/*
 * The agent's side of dot-qmail(5): find the .qmail file that controls
 * an address in the user's home, and carry out its lines.  The agent runs
 * as the user, so everything here reads and writes with the user's
 * rights; the rules (file choice, parser, environment, exit codes) are
 * the pure functions of dotqmail.c.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lka/aliases.h"
#include "dotqmail.h"
#include "log.h"
#include "mailaddr.h"
#include "mda.h"
#include "sqmail.h"
#include "textline.h"

#define MDA_DQ_OUTPUT_MAX	400	/* octets of a program's output kept */
#define MDA_DQ_PATH	"/usr/local/bin:/usr/bin:/bin"

int	 mda_program_timeout = 3600;

/*
 * Fill q for addr, delivered for user with dash ("" or "-") and the
 * extension ext[0 .. extlen - 1]; 0 when something does not fit.
 */
static int
mda_qaddr_fill(struct mda_qaddr *q, const char *addr, const char *user,
    const char *dash, const char *ext, size_t extlen)
{
	const char	*at;
	size_t		 n;

	memset(q, 0, sizeof(*q));
	if ((at = strrchr(addr, '@')) == NULL)
		return 0;
	n = at - addr;
	if (n == 0 || n > SQ_LOCALPART_MAX || strlen(at + 1) > SQ_DOMAIN_MAX ||
	    strlen(addr) >= sizeof(q->addr) || user[0] == '\0' ||
	    strlen(user) >= sizeof(q->user) ||
	    (dash[0] != '\0' && strcmp(dash, "-") != 0) ||
	    extlen >= sizeof(q->ext))
		return 0;
	memcpy(q->local, addr, n);
	q->local[n] = '\0';
	(void)strlcpy(q->addr, addr, sizeof(q->addr));
	(void)strlcpy(q->user, user, sizeof(q->user));
	(void)strlcpy(q->host, at + 1, sizeof(q->host));
	(void)strlcpy(q->dash, dash, sizeof(q->dash));
	memcpy(q->ext, ext, extlen);
	q->ext[extlen] = '\0';
	return 1;
}

int
mda_qmail_split(const char *addr, const char *user, struct mda_qaddr *q)
{
	const char	*at;
	size_t		 n, ul;

	memset(q, 0, sizeof(*q));
	if ((at = strrchr(addr, '@')) == NULL)
		return 0;
	n = at - addr;
	ul = strlen(user);
	if (ul == 0 || n < ul || strncmp(addr, user, ul) != 0 ||
	    (n > ul && addr[ul] != '-'))
		return 0;
	if (n == ul)
		return mda_qaddr_fill(q, addr, user, "", "", 0);
	return mda_qaddr_fill(q, addr, user, "-", addr + ul + 1, n - ul - 1);
}

int
mda_qmail_dest(const struct dest *d, struct mda_qaddr *q)
{
	memset(q, 0, sizeof(*q));
	if (!d->dotqmail)
		return 0;
	return mda_qaddr_fill(q, d->addr, d->user, d->dash, d->ext,
	    strlen(d->ext));
}

/* Read all of fd (at most max + 1 octets, so that "too large" shows). */
static ssize_t
mda_dq_read(int fd, char *buf, size_t max)
{
	size_t	 have = 0;
	ssize_t	 n;

	while (have < max + 1) {
		n = read(fd, buf + have, max + 1 - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			break;
		have += n;
	}
	return have;
}

static void
mda_dq_child(const char *cmd, int homefd, int msgfd, int outfd,
    char *const envp[])
{
	sigset_t	 none;
	int		 i;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (i = 1; i < NSIG; i++)
		(void)signal(i, SIG_DFL);
	if (setsid() == -1 || fchdir(homefd) == -1 ||
	    dup2(msgfd, 0) == -1 || dup2(outfd, 1) == -1 ||
	    dup2(outfd, 2) == -1)
		_exit(111);
	closefrom(3);
	execle("/bin/sh", "sh", "-c", cmd, (char *)NULL, envp);
	_exit(111);
}

/*
 * Run one program line: sh -c with the message (from its first octet) on
 * stdin, stdout and stderr collected for the report, killed with its
 * process group after the timeout.  Returns the dotqmail_exit result;
 * out gets the start of its output.
 */
static enum dotqmail_exit
mda_dq_program(const char *cmd, int homefd, int msgfd, char *const envp[],
    char *out, size_t outlen, int *code, char *text, size_t len)
{
	struct pollfd	 pfd;
	struct timespec	 now, end, nap = { 0, 20 * 1000 * 1000 };
	char		 buf[512];
	size_t		 have = 0;
	ssize_t		 n;
	pid_t		 pid;
	int		 p[2], st, ms, timedout = 0, r;

	*code = -1;
	out[0] = '\0';
	if (lseek(msgfd, 0, SEEK_SET) == -1) {
		(void)snprintf(text, len, "cannot rewind the message: %s "
		    "(#4.3.0)", mda_strerror(errno));
		return DOTQMAIL_EXIT_TEMP;
	}
	if (pipe2(p, O_CLOEXEC) == -1) {
		(void)snprintf(text, len, "cannot make a pipe: %s (#4.3.0)",
		    mda_strerror(errno));
		return DOTQMAIL_EXIT_TEMP;
	}
	switch (pid = fork()) {
	case -1:
		(void)snprintf(text, len, "cannot fork: %s (#4.3.0)",
		    mda_strerror(errno));
		close(p[0]);
		close(p[1]);
		return DOTQMAIL_EXIT_TEMP;
	case 0:
		close(p[0]);
		mda_dq_child(cmd, homefd, msgfd, p[1], envp);
		/* NOTREACHED */
	}
	close(p[1]);
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += mda_program_timeout;

	/* Its output until it closes it, then its exit, both bounded. */
	pfd.fd = p[0];
	pfd.events = POLLIN;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec &&
		    now.tv_nsec >= end.tv_nsec)) {
			timedout = 1;
			break;
		}
		if (pfd.fd != -1) {
			ms = (end.tv_sec - now.tv_sec) * 1000 +
			    (end.tv_nsec - now.tv_nsec) / 1000000;
			if (ms < 1)
				ms = 1;
			if ((r = poll(&pfd, 1, ms)) == -1 && errno != EINTR)
				break;
			if (r <= 0)
				continue;
			n = read(p[0], buf, sizeof(buf));
			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0) {
				pfd.fd = -1;
				continue;
			}
			if (have + 1 < outlen) {
				if ((size_t)n > outlen - 1 - have)
					n = outlen - 1 - have;
				memcpy(out + have, buf, n);
				have += n;
				out[have] = '\0';
			}
			continue;
		}
		if ((r = waitpid(pid, &st, WNOHANG)) == pid)
			break;
		if (r == -1 && errno != EINTR) {
			close(p[0]);
			(void)snprintf(text, len, "cannot wait for the program: "
			    "%s (#4.3.0)", mda_strerror(errno));
			return DOTQMAIL_EXIT_TEMP;
		}
		nanosleep(&nap, NULL);
	}
	close(p[0]);
	if (timedout || pfd.fd != -1) {
		(void)kill(-pid, SIGKILL);
		(void)kill(pid, SIGKILL);
		while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
			;
		if (timedout) {
			(void)snprintf(text, len, "program timed out after %d "
			    "seconds (#4.3.0)", mda_program_timeout);
			return DOTQMAIL_EXIT_TEMP;
		}
		(void)snprintf(text, len, "cannot read the program's output "
		    "(#4.3.0)");
		return DOTQMAIL_EXIT_TEMP;
	}
	if (WIFEXITED(st))
		*code = WEXITSTATUS(st);
	return dotqmail_exit_status(st);
}

/* The .qmail file for q in home: an open descriptor, or -1 (text set). */
static int
mda_dq_open(int homefd, const struct mda_qaddr *q, char *name,
    size_t namelen, const char **dflt, int *status, char *text, size_t len)
{
	struct dotqmail_iter	 it;
	int			 fd;

	if (dotqmail_iter_init(&it, q->dash, q->ext) == -1) {
		(void)snprintf(text, len, "address extension too long "
		    "(#5.1.3)");
		*status = SQ_PERMFAIL;
		return -1;
	}
	while (dotqmail_iter_next(&it, name, namelen, dflt)) {
		fd = openat(homefd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY |
		    O_CLOEXEC);
		if (fd != -1)
			return fd;
		if (errno == ENOENT)
			continue;
		(void)snprintf(text, len, "cannot open %s: %s (#4.3.0)",
		    name, mda_strerror(errno));
		*status = SQ_TEMPFAIL;
		return -1;
	}
	*status = dotqmail_none_found(q->dash);
	if (*status != SQ_OK)
		(void)strlcpy(text, DOTQMAIL_NOMAILBOX, len);
	else
		*status = MDA_DQ_DEFAULT;
	return -1;
}

void
mda_forwards_free(struct mda_forwards *fw)
{
	size_t	 i;

	for (i = 0; i < fw->n; i++)
		free(fw->addr[i]);
	memset(fw, 0, sizeof(*fw));
}

/*
 * Whether the owner file of q exists (.qmail-ext-owner, .qmail-owner for
 * the basic address): its forwards then leave with local-owner@host as
 * their sender.  qmail's VERP request (-owner-default as well) is not
 * made: the owner address is used as is.  1, 0 or -1 (text set).
 */
static int
mda_dq_owner(int homefd, const struct mda_qaddr *q, char *text, size_t len)
{
	struct stat	 sb;
	char		 owner[DOTQMAIL_NAME_MAX + 1];
	char		 ownerdef[DOTQMAIL_NAME_MAX + 1];

	if (dotqmail_owner_names(q->dash, q->ext, owner, sizeof(owner),
	    ownerdef, sizeof(ownerdef)) == -1)
		return 0;
	if (fstatat(homefd, owner, &sb, 0) == 0)
		return 1;
	if (errno == ENOENT || errno == ENOTDIR)
		return 0;
	(void)snprintf(text, len, "cannot stat %s: %s (#4.3.0)", owner,
	    mda_strerror(errno));
	return -1;
}

/*
 * Run the lines of dq in order; SQ_* with text set.  Forward lines are
 * gathered in fw and go out after the other lines, as in qmail-local:
 * the agent hands them to mda, which has the queue make the new message
 * before the delivery counts as done.
 */
static int
mda_dq_run(const struct dotqmail *dq, const struct mda_qaddr *q,
    const char *sender, const char *home, int homefd, int msgfd,
    const char *name, const char *dflt, int ownerfile,
    struct mda_forwards *fw, char *text, size_t len)
{
	struct dotqmail_env	*env = NULL;
	struct dotqmail_envin	 in;
	char			 path[PATH_MAX], out[MDA_DQ_OUTPUT_MAX];
	const char		*a;
	size_t			 i, nfile = 0, nprog = 0;
	int			 st, code, n;
	enum dotqmail_exit	 x;

	for (i = 0; i < dq->ninstr; i++) {
		a = dq->instr[i].arg;
		switch (dq->instr[i].type) {
		case DOTQMAIL_MAILDIR:
		case DOTQMAIL_MBOX:
			if (a[0] == '/')
				n = snprintf(path, sizeof(path), "%s", a);
			else
				n = snprintf(path, sizeof(path), "%s/%s",
				    home, a);
			if (n < 0 || (size_t)n >= sizeof(path)) {
				(void)snprintf(text, len, "%s line %zu: path "
				    "too long (#4.3.0)", name,
				    dq->instr[i].line);
				st = SQ_TEMPFAIL;
				goto done;
			}
			if (dq->instr[i].type == DOTQMAIL_MAILDIR)
				st = mda_maildir_deliver(path, msgfd, sender,
				    q->addr, text, len);
			else
				st = mda_mbox_deliver(path, msgfd, sender,
				    q->addr, text, len);
			if (st != SQ_OK)
				goto done;
			nfile++;
			break;
		case DOTQMAIL_PROGRAM:
			if (env == NULL) {
				if ((env = malloc(sizeof(*env))) == NULL) {
					(void)snprintf(text, len, "out of "
					    "memory (#4.3.0)");
					st = SQ_TEMPFAIL;
					goto done;
				}
				memset(&in, 0, sizeof(in));
				in.sender = sender;
				in.local = q->local;
				in.host = q->host;
				in.user = q->user;
				in.home = home;
				in.ext = q->ext;
				in.dflt = dflt;
				in.date = time(NULL);
				dotqmail_env_init(env);
				if (dotqmail_env_add(env, "PATH",
				    MDA_DQ_PATH) == -1 ||
				    dotqmail_env_build(env, &in) == -1) {
					(void)snprintf(text, len, "cannot "
					    "build the program environment "
					    "(#4.3.0)");
					st = SQ_TEMPFAIL;
					goto done;
				}
			}
			x = mda_dq_program(a, homefd, msgfd, env->envp, out,
			    sizeof(out), &code, text, len);
			text_printable(out);
			switch (x) {
			case DOTQMAIL_EXIT_OK:
				nprog++;
				break;
			case DOTQMAIL_EXIT_STOP:
				nprog++;
				goto stop;
			case DOTQMAIL_EXIT_PERM:
				(void)snprintf(text, len, "%s line %zu: program "
				    "exited %d: %s", name, dq->instr[i].line,
				    code, out[0] != '\0' ? out : "(#5.0.0)");
				st = SQ_PERMFAIL;
				goto done;
			case DOTQMAIL_EXIT_TEMP:
				if (code == -1 && text[0] != '\0') {
					/* text says why (timeout, fork) */
				} else if (code == -1)
					(void)snprintf(text, len, "%s line "
					    "%zu: program killed by a signal "
					    "(#4.3.0)", name,
					    dq->instr[i].line);
				else
					(void)snprintf(text, len, "%s line "
					    "%zu: program exited %d: %s", name,
					    dq->instr[i].line, code,
					    out[0] != '\0' ? out : "(#4.3.0)");
				st = SQ_TEMPFAIL;
				goto done;
			}
			break;
		case DOTQMAIL_FORWARD:
			if (fw->n >= MDA_FORWARD_MAX) {
				(void)snprintf(text, len, "%s: more than %d "
				    "forward lines (#4.7.0)", name,
				    MDA_FORWARD_MAX);
				st = SQ_TEMPFAIL;
				goto done;
			}
			if ((fw->addr[fw->n] = strdup(a)) == NULL) {
				(void)snprintf(text, len, "out of memory "
				    "(#4.3.0)");
				st = SQ_TEMPFAIL;
				goto done;
			}
			fw->n++;
			break;
		}
		text[0] = '\0';
	}
 stop:
	if (fw->n > 0 && ownerfile && (fw->owner = mda_dq_owner(homefd, q,
	    text, len)) == -1) {
		st = SQ_TEMPFAIL;
		goto done;
	}
	(void)snprintf(text, len, "did %zu+%zu+%zu/", nfile, fw->n, nprog);
	st = SQ_OK;
 done:
	if (st != SQ_OK)
		mda_forwards_free(fw);	/* a failed delivery forwards nothing */
	free(env);
	return st;
}

int
mda_dotqmail(const struct mda_qaddr *q, const char *sender,
    const char *home, int msgfd, struct mda_forwards *fw, char *text,
    size_t len)
{
	struct dotqmail	*dq = NULL;
	struct stat	 sb;
	char		 name[DOTQMAIL_NAME_MAX + 1], *buf = NULL;
	const char	*dflt = NULL, *errstr;
	size_t		 errline;
	ssize_t		 n;
	int		 homefd, fd = -1, st;

	text[0] = '\0';
	if ((homefd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		if (errno != ENOENT && errno != ENOTDIR) {
			(void)snprintf(text, len, "cannot open the home "
			    "directory: %s (#4.3.0)", mda_strerror(errno));
			return SQ_TEMPFAIL;
		}
		/* No home, so no .qmail file. */
		if (dotqmail_none_found(q->dash) == SQ_OK)
			return MDA_DQ_DEFAULT;
		(void)strlcpy(text, DOTQMAIL_NOMAILBOX, len);
		return SQ_PERMFAIL;
	}
	if (fstat(homefd, &sb) == -1) {
		(void)snprintf(text, len, "cannot stat the home directory: %s "
		    "(#4.3.0)", mda_strerror(errno));
		st = SQ_TEMPFAIL;
		goto done;
	}
	if (sb.st_mode & S_ISVTX) {
		(void)snprintf(text, len, "delivery deferred, home directory "
		    "is sticky (#4.2.1)");
		st = SQ_TEMPFAIL;
		goto done;
	}
	if ((fd = mda_dq_open(homefd, q, name, sizeof(name), &dflt, &st,
	    text, len)) == -1)
		goto done;
	st = SQ_TEMPFAIL;
	if (fstat(fd, &sb) == -1) {
		(void)snprintf(text, len, "cannot stat %s: %s (#4.3.0)", name,
		    mda_strerror(errno));
		goto done;
	}
	if (!S_ISREG(sb.st_mode)) {
		(void)snprintf(text, len, "%s is not a regular file (#4.7.0)",
		    name);
		goto done;
	}
	if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
		(void)snprintf(text, len, "%s is group or world writable: "
		    "not used, delivery deferred (#4.7.0)", name);
		goto done;
	}
	/* Another user who owns it could change it, as if writable. */
	if (sb.st_uid != geteuid() && sb.st_uid != 0) {
		(void)snprintf(text, len, "%s belongs to another user: not "
		    "used, delivery deferred (#4.7.0)", name);
		goto done;
	}
	if ((buf = malloc(DOTQMAIL_FILE_MAX + 1)) == NULL) {
		(void)snprintf(text, len, "out of memory (#4.3.0)");
		goto done;
	}
	if ((n = mda_dq_read(fd, buf, DOTQMAIL_FILE_MAX)) == -1) {
		(void)snprintf(text, len, "cannot read %s: %s (#4.3.0)", name,
		    mda_strerror(errno));
		goto done;
	}
	if ((st = dotqmail_parse(buf, n, (sb.st_mode & S_IXUSR) != 0, &dq,
	    &errline, &errstr)) != SQ_OK) {
		if (errline > 0)
			(void)snprintf(text, len, "%s line %zu: %s (#%s)",
			    name, errline, errstr, st == SQ_PERMFAIL ?
			    "5.1.3" : "4.7.0");
		else
			(void)snprintf(text, len, "%s: %s (#%s)", name, errstr,
			    st == SQ_PERMFAIL ? "5.1.3" : "4.7.0");
		goto done;
	}
	if (dq->empty) {
		st = MDA_DQ_DEFAULT;
		goto done;
	}
	st = mda_dq_run(dq, q, sender, home, homefd, msgfd, name, dflt, 1, fw,
	    text, len);
 done:
	dotqmail_free(dq);
	free(buf);
	if (fd != -1)
		close(fd);
	close(homefd);
	return st;
}

/*
 * aliases(5) targets in the agent of the alias table's account.  A
 * program or file target is one .qmail line run by mda_dq_run(); an
 * :include: file is read here, with this account's rights, and its
 * addresses go out as forwards (nested includes followed, a file seen
 * twice skipped).  Program and file targets inside an :include: file are
 * refused, as Postfix does by default: whoever may write the file could
 * otherwise run programs as this account.
 */
struct mda_inc {
	struct dotqmail_instr	*instr;
	size_t			 n;
	char			*addr[MDA_FORWARD_MAX];
	struct {
		dev_t	 dev;
		ino_t	 ino;
	}			 seen[MDA_INCLUDE_DEPTH];
	size_t			 nseen;
};

static int
mda_inc_read(struct mda_inc *inc, const char *path, const char *host,
    int depth, char *text, size_t len)
{
	struct alias_targets	*tl = NULL;
	struct stat		 sb;
	const char		*p, *e, *end, *errstr;
	char			*buf = NULL, qual[SQ_ADDR_MAX];
	size_t			 line = 0, k, i, n;
	ssize_t			 got;
	int			 fd, st = SQ_TEMPFAIL;

	if (depth >= MDA_INCLUDE_DEPTH) {
		(void)snprintf(text, len, ":include: files nested more than "
		    "%d deep at %s (#5.4.6)", MDA_INCLUDE_DEPTH, path);
		return SQ_PERMFAIL;
	}
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC)) == -1) {
		(void)snprintf(text, len, "cannot open %s: %s (#%s)", path,
		    mda_strerror(errno), mda_errcode(errno));
		return SQ_TEMPFAIL;
	}
	if (fstat(fd, &sb) == -1) {
		(void)snprintf(text, len, "cannot stat %s: %s (#4.3.0)", path,
		    mda_strerror(errno));
		goto done;
	}
	if (!S_ISREG(sb.st_mode)) {
		(void)snprintf(text, len, "%s is not a regular file (#4.7.0)",
		    path);
		goto done;
	}
	for (i = 0; i < inc->nseen; i++)
		if (inc->seen[i].dev == sb.st_dev &&
		    inc->seen[i].ino == sb.st_ino) {
			log_info("agent: :include: loop at %s, skipped", path);
			st = SQ_OK;
			goto done;
		}
	inc->seen[inc->nseen].dev = sb.st_dev;
	inc->seen[inc->nseen].ino = sb.st_ino;
	inc->nseen++;
	if ((buf = malloc(MDA_INCLUDE_FILE_MAX + 1)) == NULL ||
	    (tl = malloc(sizeof(*tl))) == NULL) {
		(void)snprintf(text, len, "out of memory (#4.3.0)");
		goto done;
	}
	if ((got = mda_dq_read(fd, buf, MDA_INCLUDE_FILE_MAX)) == -1) {
		(void)snprintf(text, len, "cannot read %s: %s (#4.3.0)", path,
		    mda_strerror(errno));
		goto done;
	}
	if ((size_t)got > MDA_INCLUDE_FILE_MAX) {
		(void)snprintf(text, len, "%s is larger than %d octets "
		    "(#4.7.0)", path, MDA_INCLUDE_FILE_MAX);
		goto done;
	}
	end = buf + got;
	for (p = buf; p < end; p = e + 1) {
		line++;
		if ((e = memchr(p, '\n', end - p)) == NULL)
			e = end;
		n = e - p;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		for (i = 0; i < n && (p[i] == ' ' || p[i] == '\t'); i++)
			;
		if (i == n || p[i] == '#')
			continue;
		tl->n = tl->used = 0;
		if (n > ALIASES_LINE_MAX || memchr(p, '\0', n) != NULL ||
		    aliases_targets(p, n, tl, &errstr) == -1) {
			(void)snprintf(text, len, "%s line %zu: %s (#4.7.0)",
			    path, line, n > ALIASES_LINE_MAX ? "line too long"
			    : memchr(p, '\0', n) != NULL ? "NUL octet" :
			    errstr);
			goto done;
		}
		for (k = 0; k < tl->n; k++) {
			switch (tl->t[k].type) {
			case ALIAS_INCLUDE:
				if ((st = mda_inc_read(inc, tl->t[k].arg, host,
				    depth + 1, text, len)) != SQ_OK)
					goto done;
				st = SQ_TEMPFAIL;
				continue;
			case ALIAS_PROGRAM:
			case ALIAS_FILE:
				(void)snprintf(text, len, "%s line %zu: %s "
				    "targets are not allowed in :include: "
				    "files (#4.7.0)", path, line,
				    aliases_type_name(tl->t[k].type));
				goto done;
			case ALIAS_ADDR:
				break;
			}
			if (inc->n >= MDA_FORWARD_MAX) {
				(void)snprintf(text, len, "%s: more than %d "
				    "addresses (#4.7.0)", path,
				    MDA_FORWARD_MAX);
				goto done;
			}
			if (strchr(tl->t[k].arg, '@') == NULL)
				(void)snprintf(qual, sizeof(qual), "%s@%s",
				    tl->t[k].arg, host);
			else
				(void)strlcpy(qual, tl->t[k].arg,
				    sizeof(qual));
			if ((inc->addr[inc->n] = strdup(qual)) == NULL) {
				(void)snprintf(text, len, "out of memory "
				    "(#4.3.0)");
				goto done;
			}
			inc->instr[inc->n].type = DOTQMAIL_FORWARD;
			inc->instr[inc->n].arg = inc->addr[inc->n];
			inc->instr[inc->n].line = line;
			inc->n++;
		}
	}
	st = SQ_OK;
 done:
	free(tl);
	free(buf);
	close(fd);
	return st;
}

int
mda_alias(const struct dest *d, const char *sender, const char *user,
    const char *home, int msgfd, struct mda_forwards *fw, char *text,
    size_t len)
{
	struct dotqmail		 dq;
	struct dotqmail_instr	 one;
	struct mda_inc		*inc = NULL;
	struct mda_qaddr	 q;
	const char		*at;
	char			 name[SQ_ADDR_MAX + 8];
	size_t			 i;
	int			 homefd, st;

	text[0] = '\0';
	memset(&q, 0, sizeof(q));
	if ((at = strrchr(d->addr, '@')) == NULL ||
	    (size_t)(at - d->addr) > SQ_LOCALPART_MAX ||
	    strlcpy(q.host, at + 1, sizeof(q.host)) >= sizeof(q.host) ||
	    strlcpy(q.addr, d->addr, sizeof(q.addr)) >= sizeof(q.addr) ||
	    strlcpy(q.user, user, sizeof(q.user)) >= sizeof(q.user)) {
		(void)snprintf(text, len, "bad alias address (#5.1.3)");
		return SQ_PERMFAIL;
	}
	memcpy(q.local, d->addr, at - d->addr);
	q.local[at - d->addr] = '\0';
	(void)snprintf(name, sizeof(name), "alias %s", d->addr);

	/* A program's working directory: the account's home, else "/". */
	if ((homefd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 &&
	    (homefd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		(void)snprintf(text, len, "cannot open /: %s (#4.3.0)",
		    mda_strerror(errno));
		return SQ_TEMPFAIL;
	}
	memset(&dq, 0, sizeof(dq));
	memset(&one, 0, sizeof(one));
	one.arg = d->mailbox;
	one.line = 1;
	dq.instr = &one;
	dq.ninstr = 1;
	switch (d->method) {
	case MBOX_PROGRAM:
		one.type = DOTQMAIL_PROGRAM;
		break;
	case MBOX_FILE:
		if (d->mailbox[0] != '/') {
			(void)snprintf(text, len, "%s: file target is not an "
			    "absolute path (#5.1.3)", name);
			st = SQ_PERMFAIL;
			goto done;
		}
		one.type = d->mailbox[strlen(d->mailbox) - 1] == '/' ?
		    DOTQMAIL_MAILDIR : DOTQMAIL_MBOX;
		break;
	case MBOX_INCLUDE:
		if ((inc = calloc(1, sizeof(*inc))) == NULL ||
		    (inc->instr = calloc(MDA_FORWARD_MAX,
		    sizeof(*inc->instr))) == NULL) {
			(void)snprintf(text, len, "out of memory (#4.3.0)");
			st = SQ_TEMPFAIL;
			goto done;
		}
		if (d->mailbox[0] != '/') {
			(void)snprintf(text, len, "%s: :include: path is not "
			    "absolute (#5.1.3)", name);
			st = SQ_PERMFAIL;
			goto done;
		}
		if ((st = mda_inc_read(inc, d->mailbox, q.host, 0, text,
		    len)) != SQ_OK)
			goto done;
		dq.instr = inc->instr;
		dq.ninstr = inc->n;
		(void)strlcpy(name, d->mailbox, sizeof(name));
		break;
	default:
		(void)snprintf(text, len, "not an alias target (#4.3.0)");
		st = SQ_TEMPFAIL;
		goto done;
	}
	st = mda_dq_run(&dq, &q, sender, home, homefd, msgfd, name, NULL, 0,
	    fw, text, len);
 done:
	if (inc != NULL) {
		for (i = 0; i < inc->n; i++)
			free(inc->addr[i]);
		free(inc->instr);
		free(inc);
	}
	close(homefd);
	return st;
}
