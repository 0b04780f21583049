/*
 * sqmaild: the privileged parent.  It reads the configuration, opens the
 * listening and control sockets, creates one channel per pair of peers,
 * spawns each role, and then does only narrow privileged work: forking
 * delivery agents as their user, checking system users' passwords for
 * SMTP AUTH (parent_auth.c), reloading the configuration, reporting
 * processes, and shutting everything down when a child dies.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <err.h>
#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mproc.h"
#include "msg.h"
#include "parent_auth.h"
#include "parent_pickup.h"
#include "proc.h"
#include "smtp.h"
#include "sqmail.h"
#include "../lka/qmail_users.h"

#define SQMAILD_CONF	"/etc/sqmail/sqmail.conf"
#define SHUTDOWN_WAIT	10	/* seconds children get before SIGKILL */

struct agentproc {
	TAILQ_ENTRY(agentproc)	 entry;
	pid_t			 pid;
	char			 user[SQ_USER_MAX + 1];
};

static TAILQ_HEAD(, agentproc)	 agents = TAILQ_HEAD_INITIALIZER(agents);
static const char	*conffile = SQMAILD_CONF;
static int		 use_builtin;
static char		 basedir[PATH_MAX];
static int		 shutting_down;
static struct conf_filelist	 conf_loaded;
/* The parent's own copy of qmail assign: what agents may be besides passwd. */
static struct qmail_assign	*parent_assign;
static struct event	 ev_sigchld, ev_sigterm, ev_sigint, ev_sighup;

static void	parent_shutdown(int);
static int	parent_reload(char *, size_t);
static void	parent_assign_load(void);
static int	parent_check_qmail(void);

extern char	**environ;

static __attribute__((__noreturn__)) void
usage(void)
{
	fprintf(stderr, "usage: sqmaild [-dnv] [-E | -f file]\n");
	exit(64);
}

/* Which pairs of processes get a channel (see proc.h). */
static int
proc_pair(int a, int b)
{
	static const int	 pairs[][2] = {
		{ PROC_SMTP, PROC_LKA }, { PROC_SMTP, PROC_QUEUE },
		{ PROC_QUEUE, PROC_LKA }, { PROC_QUEUE, PROC_MDA },
		{ PROC_QUEUE, PROC_MTA }, { PROC_MTA, PROC_LKA },
	};
	size_t			 i;

	if (a == b)
		return 0;
	if (a == PROC_PARENT || b == PROC_PARENT ||
	    a == PROC_CONTROL || b == PROC_CONTROL)
		return 1;
	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		if ((pairs[i][0] == a && pairs[i][1] == b) ||
		    (pairs[i][0] == b && pairs[i][1] == a))
			return 1;
	return 0;
}

static struct sqconf *
parent_load(struct conf_filelist *loaded)
{
	struct sqconf	*c;

	TAILQ_INIT(loaded);
	if (use_builtin)
		c = config_default_files(basedir, loaded);
	else
		c = config_parse(conffile, basedir, NULL, loaded);
	/* Every TLS listener must work: certificates, keys, ciphers. */
	if (c != NULL && smtp_tls_check(c) == -1) {
		config_free(c);
		c = NULL;
	}
	return c;
}

static void
mkdir_owned(const char *path, mode_t mode, const char *user)
{
	struct passwd	*pw = NULL;
	struct stat	 st;

	if (mkdir(path, mode) == -1 && errno != EEXIST)
		fatal("mkdir %s", path);
	if (lstat(path, &st) == -1)
		fatal("%s", path);
	if (!S_ISDIR(st.st_mode))
		fatalx("%s: not a directory", path);
	if (!sq_privileged)
		return;
	if (user != NULL) {
		if ((pw = getpwnam(user)) == NULL)
			fatalx("unknown user %s", user);
		if (chown(path, pw->pw_uid, pw->pw_gid) == -1)
			fatal("chown %s", path);
	} else if (chown(path, 0, 0) == -1)
		fatal("chown %s", path);
	if (chmod(path, mode) == -1)
		fatal("chmod %s", path);
}

static void
open_listeners(void)
{
	struct listener	*l;
	int		 on = 1;

	TAILQ_FOREACH(l, &conf->listeners, entry) {
		l->fd = socket(l->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK,
		    0);
		if (l->fd == -1)
			fatal("listen on %s: socket", l->name);
		if (setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &on,
		    sizeof(on)) == -1)
			fatal("listen on %s: SO_REUSEADDR", l->name);
		if (l->ss.ss_family == AF_INET6 && setsockopt(l->fd,
		    IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1)
			fatal("listen on %s: IPV6_V6ONLY", l->name);
		if (bind(l->fd, (struct sockaddr *)&l->ss, l->sslen) == -1)
			fatal("listen on %s: bind", l->name);
		if (listen(l->fd, SOMAXCONN) == -1)
			fatal("listen on %s", l->name);
	}
}

static void
control_addr(struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlcpy(sun->sun_path, conf->control_socket,
	    sizeof(sun->sun_path)) >= sizeof(sun->sun_path))
		fatalx("control socket path too long: %s",
		    conf->control_socket);
}

/* Refuse to start beside a running instance that owns the socket. */
static void
control_check_running(void)
{
	struct sockaddr_un	 sun;
	int			 fd;

	control_addr(&sun);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1)
		fatal("control socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		fatalx("another sqmaild is running (control socket %s)",
		    conf->control_socket);
	close(fd);
}

static void
open_control(void)
{
	struct sockaddr_un	 sun;
	mode_t			 old;
	int			 fd;

	control_addr(&sun);
	if (unlink(conf->control_socket) == -1 && errno != ENOENT)
		fatal("unlink %s", conf->control_socket);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		fatal("control socket");
	old = umask(0111);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		fatal("bind %s", conf->control_socket);
	umask(old);
	/* Anyone may connect; control checks the peer's credentials. */
	if (chmod(conf->control_socket, 0666) == -1)
		fatal("chmod %s", conf->control_socket);
	if (listen(fd, 64) == -1)
		fatal("listen %s", conf->control_socket);
	sq_control_fd = fd;
}

static void
close_listeners(void)
{
	struct listener	*l;

	TAILQ_FOREACH(l, &conf->listeners, entry)
		if (l->fd != -1) {
			close(l->fd);
			l->fd = -1;
		}
}

static void
spawn(enum proc_type role, int fds[PROC_COUNT][PROC_COUNT])
{
	const char	*user, *root;
	char		 comm[16], c;
	pid_t		 pid;
	int		 i, j, ready[2];
	ssize_t		 n;

	/*
	 * The child says on a pipe when it has dropped privileges; waiting
	 * for that makes start-up deterministic (no client ever sees a
	 * child still privileged) and reports a failed set-up at once.
	 */
	if (pipe2(ready, O_CLOEXEC) == -1)
		fatal("pipe");
	if ((pid = fork()) == -1)
		fatal("fork %s", proc_name(role));
	if (pid > 0) {
		sq_pids[role] = pid;
		close(ready[1]);
		while ((n = read(ready[0], &c, 1)) == -1 && errno == EINTR)
			;
		close(ready[0]);
		if (n != 1)
			fatalx("%s did not start (see the lines above)",
			    proc_name(role));
		return;
	}
	close(ready[0]);

	sq_process = role;
	log_procinit(proc_name(role));
	setproctitle("%s", proc_name(role));
	(void)snprintf(comm, sizeof(comm), "sqmaild-%s", proc_name(role));
	(void)prctl(PR_SET_NAME, comm, 0, 0, 0);

	/* Keep only this role's ends of the channels. */
	for (i = 0; i < PROC_COUNT; i++)
		for (j = 0; j < PROC_COUNT; j++)
			if (fds[i][j] != -1 && i != role) {
				close(fds[i][j]);
				fds[i][j] = -1;
			}
	if (role != PROC_SMTP) {
		close_listeners();
		/* Only smtp serves TLS: the rest forget the private keys. */
		config_pki_clear(conf);
	}
	/* The file texts are the parent's, for reloads. */
	conf_files_free(&conf_loaded);
	if (role != PROC_CONTROL && sq_control_fd != -1) {
		close(sq_control_fd);
		sq_control_fd = -1;
	}

	event_init();
	for (i = 0; i < PROC_COUNT; i++) {
		peers[i] = NULL;
		if (fds[role][i] == -1)
			continue;
		if ((peers[i] = calloc(1, sizeof(*peers[i]))) == NULL)
			fatal("calloc");
		mproc_init(peers[i], fds[role][i], i, NULL);
	}

	user = conf->user;
	switch (role) {
	case PROC_QUEUE:
		user = conf->queue_user;
		root = conf->spool;
		break;
	case PROC_LKA:
		root = NULL;
		break;
	default:
		/* Without root there is no chroot, and no empty dir needed. */
		root = sq_privileged ? conf->empty_dir : "/";
		break;
	}
	if (role == PROC_MTA)
		mta_session_init();	/* the CA file, before the chroot */
	if (role == PROC_SMTP)
		smtp_tls_init();
	proc_privdrop(role, user, root);
	c = 1;
	if (write(ready[1], &c, 1) != 1)
		fatal("%s: start-up pipe", proc_name(role));
	close(ready[1]);

	switch (role) {
	case PROC_SMTP:
		smtp_main();
	case PROC_LKA:
		lka_main();
	case PROC_QUEUE:
		queue_main();
	case PROC_MDA:
		mda_main();
	case PROC_MTA:
		mta_main();
	case PROC_CONTROL:
		control_main();
	default:
		fatalx("spawn: bad role %d", role);
	}
}

/* Role children reaped while running: the cause of a shutdown. */
static struct {
	pid_t	 pid;
	int	 role;
	int	 status;
}		 dead[PROC_COUNT];
static int	 ndead;

/* Reap what has exited.  Agents come and go; a role child never should. */
static void
parent_reap(void)
{
	struct agentproc	*a, *tmp;
	pid_t			 pid;
	int			 status, i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		TAILQ_FOREACH_SAFE(a, &agents, entry, tmp)
			if (a->pid == pid) {
				if (!WIFEXITED(status) ||
				    WEXITSTATUS(status) != 0)
					log_warnx("agent for %s (pid %d) "
					    "ended abnormally (status %d)",
					    a->user, (int)pid, status);
				TAILQ_REMOVE(&agents, a, entry);
				free(a);
				break;
			}
		for (i = 1; i < PROC_COUNT; i++)
			if (sq_pids[i] == pid) {
				sq_pids[i] = 0;
				if (ndead < PROC_COUNT) {
					dead[ndead].pid = pid;
					dead[ndead].role = i;
					dead[ndead].status = status;
					ndead++;
				}
			}
	}
}

static int
dead_quietly(int i)
{
	return WIFEXITED(dead[i].status) && WEXITSTATUS(dead[i].status) == 0;
}

/* Did any of the dead go by a signal or a failure? */
static int
dead_with_cause(void)
{
	int	 i;

	for (i = 0; i < ndead; i++)
		if (!dead_quietly(i))
			return 1;
	return 0;
}

/*
 * A role child is gone, or a channel to one closed.  Siblings that lose
 * their channel to the one that died exit quietly, often before it can be
 * reaped (the queue has threads to tear down), so wait up to 2 seconds for
 * a death by signal or failure: the log then names the cause, first.
 */
static void
parent_child_gone(const char *channel)
{
	int	 i, pass;

	for (i = 0; i < 200; i++) {
		parent_reap();
		if (dead_with_cause())
			break;
		usleep(10000);
	}
	if (ndead == 0 && channel != NULL)
		log_warnx("sqmaild: lost channel to %s", channel);
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < ndead; i++) {
			if (dead_quietly(i) != (pass == 1))
				continue;
			if (WIFSIGNALED(dead[i].status))
				log_warnx("lost child: %s (pid %d) killed by "
				    "signal %d", proc_name(dead[i].role),
				    (int)dead[i].pid, WTERMSIG(dead[i].status));
			else
				log_warnx("lost child: %s (pid %d) exited "
				    "with status %d", proc_name(dead[i].role),
				    (int)dead[i].pid,
				    WEXITSTATUS(dead[i].status));
		}
	parent_shutdown(1);
}

static void
parent_sigchld(int sig, short ev, void *arg)
{
	parent_reap();
	if (ndead > 0 && !shutting_down)
		parent_child_gone(NULL);
}

static void
parent_sigterm(int sig, short ev, void *arg)
{
	log_info("sqmaild: received signal %d, shutting down", sig);
	parent_shutdown(0);
}

static void
parent_sighup(int sig, short ev, void *arg)
{
	char	 err[256];

	log_info("sqmaild: SIGHUP: reloading configuration");
	(void)parent_reload(err, sizeof(err));
}

static void
parent_shutdown(int code)
{
	struct agentproc	*a;
	time_t			 deadline;
	int			 i, left;

	shutting_down = 1;
	parent_auth_shutdown();
	for (i = 1; i < PROC_COUNT; i++)
		if (sq_pids[i] > 0)
			kill(sq_pids[i], SIGTERM);
	/*
	 * Agents finish the delivery at hand and exit on EOF from mda;
	 * signal them only if they outstay the deadline.
	 */
	deadline = time(NULL) + SHUTDOWN_WAIT;
	for (;;) {
		parent_reap();
		left = !TAILQ_EMPTY(&agents);
		for (i = 1; i < PROC_COUNT; i++)
			if (sq_pids[i] > 0)
				left = 1;
		if (!left)
			break;
		if (time(NULL) >= deadline) {
			for (i = 1; i < PROC_COUNT; i++)
				if (sq_pids[i] > 0)
					kill(sq_pids[i], SIGKILL);
			TAILQ_FOREACH(a, &agents, entry)
				kill(a->pid, SIGKILL);
			deadline = time(NULL) + 2;
		}
		usleep(20000);
	}
	if (conf != NULL)
		(void)unlink(conf->control_socket);
	log_info("sqmaild: stopped");
	exit(code);
}

/* Re-read the configuration; on success send it to every child. */
static int
parent_reload(char *err, size_t errlen)
{
	struct conf_filelist	 loaded;
	struct sqconf		*c;
	struct listener		*l, *nl;
	int			 i, same = 1;

	if ((c = parent_load(&loaded)) == NULL) {
		conf_files_free(&loaded);
		(void)strlcpy(err, "configuration has errors, keeping the "
		    "running one", errlen);
		log_warnx("sqmaild: reload failed: %s", err);
		return -1;
	}
	/* Listeners are fixed at start. */
	l = TAILQ_FIRST(&conf->listeners);
	nl = TAILQ_FIRST(&c->listeners);
	for (; l != NULL && nl != NULL; l = TAILQ_NEXT(l, entry),
	    nl = TAILQ_NEXT(nl, entry))
		if (strcmp(l->name, nl->name) != 0 || l->proto != nl->proto ||
		    l->tls != nl->tls || l->npki != nl->npki ||
		    memcmp(l->pki, nl->pki, sizeof(l->pki)) != 0 ||
		    strcmp(l->client_ca_path, nl->client_ca_path) != 0 ||
		    strcmp(l->auth_cert, nl->auth_cert) != 0)
			same = 0;
	if (l != NULL || nl != NULL || !same)
		log_warnx("sqmaild: reload: listener changes take effect "
		    "at the next restart");
	/* The pki files (private keys) go to smtp only. */
	for (i = 1; i < PROC_COUNT; i++)
		if (peers[i] != NULL)
			config_send(peers[i], &loaded, basedir, i == PROC_SMTP);
	conf_files_clear_secret(&loaded);
	config_pki_clear(c);
	config_free(conf);
	conf = c;
	parent_assign_load();
	conf_files_free(&conf_loaded);
	TAILQ_INIT(&conf_loaded);
	while (!TAILQ_EMPTY(&loaded)) {
		struct conf_file *f = TAILQ_FIRST(&loaded);

		TAILQ_REMOVE(&loaded, f, entry);
		TAILQ_INSERT_TAIL(&conf_loaded, f, entry);
	}
	log_info("sqmaild: configuration reloaded");
	return 0;
}

/* Send one "ROLE pid=N uid=N gid=N root=PATH" line, from /proc. */
static void
proc_line(struct mproc *p, uint32_t ctlid, pid_t pid, const char *role)
{
	char	 path[64], line[256], root[PATH_MAX];
	FILE	*fp;
	long	 uid = -1, gid = -1;
	ssize_t	 n;

	(void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((fp = fopen(path, "r")) != NULL) {
		while (fgets(line, sizeof(line), fp) != NULL) {
			if (strncmp(line, "Uid:", 4) == 0)
				uid = strtol(line + 4, NULL, 10);
			else if (strncmp(line, "Gid:", 4) == 0)
				gid = strtol(line + 4, NULL, 10);
		}
		fclose(fp);
	}
	(void)snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
	if ((n = readlink(path, root, sizeof(root) - 1)) == -1)
		(void)strlcpy(root, "?", sizeof(root));
	else
		root[n] = '\0';
	ctl_line(p, ctlid, "%s pid=%d uid=%ld gid=%ld root=%s", role,
	    (int)pid, uid, gid, root);
}

static void
parent_dispatch_control(struct mproc *p, struct imsg *imsg)
{
	struct agentproc	*a;
	struct msg		 m;
	char			 err[256];
	uint32_t		 ctlid;
	int			 i;

	switch (imsg->hdr.type) {
	case IMSG_CTL_SHOW_PROCS:
		m_msg(&m, imsg);
		m_get_u32(&m, &ctlid);
		m_end(&m);
		proc_line(p, ctlid, getpid(), "parent");
		for (i = 1; i < PROC_COUNT; i++)
			if (sq_pids[i] > 0)
				proc_line(p, ctlid, sq_pids[i], proc_name(i));
		TAILQ_FOREACH(a, &agents, entry) {
			char	 role[SQ_USER_MAX + 16];

			(void)snprintf(role, sizeof(role), "agent:%s",
			    a->user);
			proc_line(p, ctlid, a->pid, role);
		}
		ctl_end(p, ctlid, SQ_OK, "");
		break;
	case IMSG_CTL_RELOAD:
		m_msg(&m, imsg);
		m_get_u32(&m, &ctlid);
		m_end(&m);
		if (parent_reload(err, sizeof(err)) == -1)
			ctl_end(p, ctlid, SQ_PERMFAIL, err);
		else
			ctl_end(p, ctlid, SQ_OK, "");
		break;
	case IMSG_CTL_STOP:
		m_msg(&m, imsg);
		m_get_u32(&m, &ctlid);
		m_end(&m);
		log_info("sqmaild: stop requested through the control "
		    "socket");
		ctl_end(p, ctlid, SQ_OK, "");
		m_flush(p);
		parent_shutdown(0);
		break;
	case IMSG_CTL_VERBOSE:
		(void)proc_common_imsg(imsg);
		break;
	default:
		fatalx("parent: unexpected imsg %u from control",
		    imsg->hdr.type);
	}
}

/*
 * Read the configuration's qmail assign file for agent_fork(), at start
 * and on reload.  A file that cannot be read leaves none: agents for its
 * users are refused (temporarily) until a reload reads it.
 */
static void
parent_assign_load(void)
{
	char	 err[PATH_MAX + 128];

	qmail_assign_free(parent_assign);
	parent_assign = NULL;
	if (conf == NULL || conf->qmail_assign[0] == '\0')
		return;
	if (qmail_assign_load(conf->qmail_assign, &parent_assign, err,
	    sizeof(err)) == -1)
		log_warnx("sqmaild: qmail assign: %s; no agent for its users "
		    "until it reads", err);
}

/* sqmaild -n: the qmail files must read too.  0, or -1 (said why). */
static int
parent_check_qmail(void)
{
	struct qmail_assign	*qa;
	struct table_file	*vd;
	char			 err[PATH_MAX + 128];
	int			 r = 0;

	if (conf->qmail_assign[0] != '\0') {
		if (qmail_assign_load(conf->qmail_assign, &qa, err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "qmail assign: %s\n", err);
			r = -1;
		} else
			qmail_assign_free(qa);
	}
	if (conf->qmail_vdoms[0] != '\0') {
		if (qmail_vdoms_load(conf->qmail_vdoms, &vd, err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "qmail virtualdomains: %s\n", err);
			r = -1;
		} else
			table_file_free(vd);
	}
	return r;
}

/*
 * Fork a delivery agent running as user, with one end of a new channel;
 * the other end goes back to mda.  Returns the fd or -1 with err set.
 *
 * mda is not trusted with the identity: an agent with a home given
 * (qmail's rules in lka) runs as (user, uid, gid, home) only when passwd
 * has exactly that for user, or when the qmail assign file this process
 * read itself has an assignment giving exactly that; never as uid 0.
 * Without a home it is user's passwd entry, as it always was.
 */
static int
agent_fork(const char *user, uid_t ruid, gid_t rgid, const char *rhome,
    int *status, char *err, size_t errlen)
{
	struct agentproc	*a;
	struct passwd		*pw;
	char			 home[PATH_MAX], name[SQ_USER_MAX + 1];
	uid_t			 uid;
	gid_t			 gid;
	pid_t			 pid;
	int			 sp[2], pwgroups = 1;

	*status = SQ_TEMPFAIL;
	pw = getpwnam(user);
	if (sq_privileged && rhome[0] != '\0') {
		if (ruid == 0 || (pw != NULL && pw->pw_uid == 0 &&
		    strcmp(pw->pw_dir, rhome) == 0)) {
			(void)snprintf(err, errlen, "mail for %s is held: "
			    "uid 0 gets no delivery; add an alias for it",
			    user);
			return -1;
		}
		if (pw != NULL && pw->pw_uid == ruid && pw->pw_gid == rgid &&
		    strcmp(pw->pw_dir, rhome) == 0)
			;	/* passwd's */
		else if (qmail_assign_allows(parent_assign, user, ruid, rgid,
		    rhome))
			pwgroups = 0;	/* passwd's groups are not its */
		else {
			(void)snprintf(err, errlen, "refusing an agent for %s "
			    "as uid %lu gid %lu home %s: neither passwd nor "
			    "qmail assign says so", user, (unsigned long)ruid,
			    (unsigned long)rgid, rhome);
			return -1;
		}
		if (strlcpy(home, rhome, sizeof(home)) >= sizeof(home) ||
		    strlcpy(name, user, sizeof(name)) >= sizeof(name)) {
			*status = SQ_PERMFAIL;
			(void)snprintf(err, errlen, "user %s: name or home "
			    "too long", user);
			return -1;
		}
		uid = ruid;
		gid = rgid;
		goto fork;
	}
	if (sq_privileged) {
		if (pw == NULL) {
			*status = SQ_PERMFAIL;
			(void)snprintf(err, errlen, "no such user: %s", user);
			return -1;
		}
		if (pw->pw_uid == 0) {
			(void)snprintf(err, errlen, "mail for %s is held: "
			    "uid 0 gets no delivery; add an alias for it",
			    user);
			return -1;
		}
	} else if (pw == NULL || pw->pw_uid != getuid())
		pw = getpwuid(getuid());	/* we can only be ourselves */
	if (pw == NULL) {
		(void)snprintf(err, errlen, "cannot look up user %s", user);
		return -1;
	}
	if (strlcpy(home, pw->pw_dir, sizeof(home)) >= sizeof(home) ||
	    strlcpy(name, pw->pw_name, sizeof(name)) >= sizeof(name)) {
		*status = SQ_PERMFAIL;
		(void)snprintf(err, errlen, "user %s: name or home too long",
		    user);
		return -1;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;

 fork:
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		(void)snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == -1) {
		(void)snprintf(err, errlen, "socketpair: %s", strerror(errno));
		free(a);
		return -1;
	}
	if ((pid = fork()) == -1) {
		(void)snprintf(err, errlen, "fork: %s", strerror(errno));
		close(sp[0]);
		close(sp[1]);
		free(a);
		return -1;
	}
	if (pid == 0) {
		proc_child_signals(1);
		sq_process = PROC_AGENT;
		log_procinit("agent");
		setproctitle("agent %s", name);
		(void)prctl(PR_SET_NAME, "sqmaild-agent", 0, 0, 0);
		if (dup2(sp[1], 3) == -1)
			fatal("agent: dup2");
		closefrom(4);
		if (sq_privileged) {
			/*
			 * An identity from qmail assign gets only its gid:
			 * its user need not be in passwd or group at all.
			 */
			if ((pwgroups ? initgroups(name, gid) :
			    setgroups(1, &gid)) == -1 ||
			    setresgid(gid, gid, gid) == -1 ||
			    setresuid(uid, uid, uid) == -1)
				fatal("agent: cannot become %s", name);
			if (setuid(0) != -1)
				fatalx("agent: could regain root");
		}
		if (chdir(home) == -1) {
			log_warn("agent for %s: chdir %s", name, home);
			if (chdir("/") == -1)
				fatal("agent: chdir /");
		}
		agent_main(3, name, home);
	}
	close(sp[1]);
	a->pid = pid;
	(void)strlcpy(a->user, name, sizeof(a->user));
	TAILQ_INSERT_TAIL(&agents, a, entry);
	log_debug("sqmaild: forked agent for %s (pid %d)", name, (int)pid);
	*status = SQ_OK;
	return sp[0];
}

static void
parent_dispatch_mda(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	const char	*user, *home;
	char		 err[256 + PATH_MAX];
	uint32_t	 id, uid, gid;
	int		 fd, status;

	switch (imsg->hdr.type) {
	case IMSG_AGENT_FORK:
		m_msg(&m, imsg);
		m_get_u32(&m, &id);
		m_get_string(&m, &user);
		m_get_u32(&m, &uid);
		m_get_u32(&m, &gid);
		m_get_string(&m, &home);
		m_end(&m);
		err[0] = '\0';
		if (home[0] != '\0' && home[0] != '/') {
			status = SQ_TEMPFAIL;
			(void)snprintf(err, sizeof(err), "home %s is not "
			    "absolute", home);
			fd = -1;
		} else
			fd = agent_fork(user, (uid_t)uid, (gid_t)gid, home,
			    &status, err, sizeof(err));
		if (fd == -1)
			log_warnx("sqmaild: agent for %s: %s", user, err);
		m_create(p, IMSG_AGENT_FORK, 0, fd);
		m_add_u32(p, id);
		m_add_int(p, status);
		m_add_string(p, err);
		m_close(p);
		break;
	default:
		fatalx("parent: unexpected imsg %u from mda", imsg->hdr.type);
	}
}

static void
parent_dispatch_other(struct mproc *p, struct imsg *imsg)
{
	fatalx("parent: unexpected imsg %u from %s", imsg->hdr.type, p->name);
}

static void
parent_lost(struct mproc *p)
{
	if (!shutting_down)
		parent_child_gone(p->name);
}

int
main(int argc, char *argv[])
{
	int		 fds[PROC_COUNT][PROC_COUNT];
	struct group	*gr;
	int		 ch, i, j, checkonly = 0, verbose = 0;

	setproctitle_init(argc, argv, environ);
	while ((ch = getopt(argc, argv, "dEf:nv")) != -1) {
		switch (ch) {
		case 'd':
			sq_debug = 1;
			break;
		case 'E':
			use_builtin = 1;
			break;
		case 'f':
			conffile = optarg;
			break;
		case 'n':
			checkonly = 1;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	if (argc != optind)
		usage();

	log_init(1, LOG_MAIL);
	log_setverbose(verbose);
	if (getcwd(basedir, sizeof(basedir)) == NULL)
		fatal("getcwd");
	if ((conf = parent_load(&conf_loaded)) == NULL) {
		log_warnx("sqmaild: %s: configuration has errors",
		    use_builtin ? "<built-in>" : conffile);
		exit(1);
	}
	if (checkonly) {
		if (parent_check_qmail() == -1)
			exit(1);
		fprintf(stderr, "configuration OK\n");
		exit(0);
	}

	sq_privileged = (geteuid() == 0);
	sq_owner_uid = getuid();
	if (!sq_debug || conf->log_syslog)
		log_init(0, LOG_MAIL);
	log_setverbose(verbose);
	parent_assign_load();
	if (sq_privileged) {
		if (getpwnam(conf->user) == NULL)
			fatalx("unknown user %s (see sqmail.conf(5): user)",
			    conf->user);
		if (getpwnam(conf->queue_user) == NULL)
			fatalx("unknown user %s (see sqmail.conf(5): queue "
			    "user)", conf->queue_user);
	} else
		log_info("sqmaild: running as uid %d, not root: every "
		    "process runs as this user without chroot",
		    (int)getuid());
	if (conf->control_group[0] != '\0') {
		if ((gr = getgrnam(conf->control_group)) == NULL)
			fatalx("unknown group %s (control socket)",
			    conf->control_group);
		sq_control_gid = gr->gr_gid;
	}

	mkdir_owned(conf->spool, 0700, conf->queue_user);
	if (sq_privileged)
		mkdir_owned(conf->empty_dir, 0755, NULL);
	control_check_running();
	open_listeners();
	open_control();

	if (!sq_debug && daemon(1, 0) == -1)
		fatal("daemon");

	for (i = 0; i < PROC_COUNT; i++)
		for (j = 0; j < PROC_COUNT; j++)
			fds[i][j] = -1;
	for (i = 0; i < PROC_COUNT; i++)
		for (j = i + 1; j < PROC_COUNT; j++) {
			int	 sp[2];

			if (!proc_pair(i, j))
				continue;
			if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == -1)
				fatal("socketpair");
			fds[i][j] = sp[0];
			fds[j][i] = sp[1];
		}

	signal(SIGPIPE, SIG_IGN);
	for (i = 1; i < PROC_COUNT; i++)
		spawn(i, fds);

	/* The parent keeps its own ends only. */
	for (i = 1; i < PROC_COUNT; i++)
		for (j = 0; j < PROC_COUNT; j++)
			if (fds[i][j] != -1)
				close(fds[i][j]);
	close_listeners();
	close(sq_control_fd);
	sq_control_fd = -1;
	/* smtp has the keys now; the parent reads them again on reload. */
	conf_files_clear_secret(&conf_loaded);
	config_pki_clear(conf);

	log_procinit("parent");
	setproctitle("parent");
	event_init();
	for (i = 1; i < PROC_COUNT; i++) {
		if ((peers[i] = calloc(1, sizeof(*peers[i]))) == NULL)
			fatal("calloc");
		mproc_init(peers[i], fds[PROC_PARENT][i], i,
		    parent_dispatch_other);
		peers[i]->lost = parent_lost;
	}
	peers[PROC_CONTROL]->handler = parent_dispatch_control;
	peers[PROC_MDA]->handler = parent_dispatch_mda;
	peers[PROC_LKA]->handler = parent_auth_imsg;
	parent_pickup_start();
	for (i = 1; i < PROC_COUNT; i++)
		mproc_enable(peers[i]);

	signal_set(&ev_sigchld, SIGCHLD, parent_sigchld, NULL);
	signal_set(&ev_sigterm, SIGTERM, parent_sigterm, NULL);
	signal_set(&ev_sigint, SIGINT, parent_sigterm, NULL);
	signal_set(&ev_sighup, SIGHUP, parent_sighup, NULL);
	signal_add(&ev_sigchld, NULL);
	signal_add(&ev_sigterm, NULL);
	signal_add(&ev_sigint, NULL);
	signal_add(&ev_sighup, NULL);

	log_info("sqmaild %s: started (pid %d)", SQ_VERSION, (int)getpid());
	event_dispatch();
	parent_shutdown(1);
	return 1;
}
