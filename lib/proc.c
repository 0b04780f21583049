/*
 * Process roles: names, privilege dropping, and the common event-loop
 * set-up of every child.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <event.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mproc.h"
#include "msg.h"
#include "proc.h"

enum proc_type	 sq_process = PROC_PARENT;
pid_t		 sq_pids[PROC_COUNT];
int		 sq_debug;
int		 sq_privileged;
uid_t		 sq_owner_uid;
gid_t		 sq_control_gid = (gid_t)-1;
int		 sq_control_fd = -1;
struct mproc	*peers[PROC_COUNT];

static struct event	 proc_ev_term, proc_ev_int, proc_ev_hup;

const char *
proc_name(enum proc_type p)
{
	switch (p) {
	case PROC_PARENT:
		return "parent";
	case PROC_SMTP:
		return "smtp";
	case PROC_LKA:
		return "lka";
	case PROC_QUEUE:
		return "queue";
	case PROC_MDA:
		return "mda";
	case PROC_MTA:
		return "mta";
	case PROC_CONTROL:
		return "control";
	case PROC_AGENT:
		return "agent";
	case PROC_CLIENT:
		return "client";
	default:
		return "unknown";
	}
}

void
proc_privdrop(enum proc_type p, const char *user, const char *root)
{
	struct passwd	*pw;
	uid_t		 ruid, euid, suid;
	gid_t		 rgid, egid, sgid;

	if (!sq_privileged) {
		if (root != NULL && chdir(root) == -1)
			fatal("%s: chdir %s", proc_name(p), root);
		return;
	}
	if ((pw = getpwnam(user)) == NULL)
		fatalx("%s: unknown user %s", proc_name(p), user);
	if (pw->pw_uid == 0)
		fatalx("%s: user %s has uid 0", proc_name(p), user);
	if (root != NULL) {
		if (chroot(root) == -1)
			fatal("%s: chroot %s", proc_name(p), root);
		if (chdir("/") == -1)
			fatal("%s: chdir /", proc_name(p));
	}
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("%s: cannot drop privileges to %s", proc_name(p), user);
	/* Verify: no way back. */
	if (getresuid(&ruid, &euid, &suid) == -1 ||
	    getresgid(&rgid, &egid, &sgid) == -1)
		fatal("%s: getresuid", proc_name(p));
	if (ruid != pw->pw_uid || euid != pw->pw_uid || suid != pw->pw_uid ||
	    rgid != pw->pw_gid || egid != pw->pw_gid || sgid != pw->pw_gid)
		fatalx("%s: privileges not dropped", proc_name(p));
	if (setuid(0) != -1)
		fatalx("%s: could regain root", proc_name(p));
}

static void
proc_sig_exit(int sig, short ev, void *arg)
{
	exit(0);
}

static void
proc_sig_ignore(int sig, short ev, void *arg)
{
}

static void
proc_peer_lost(struct mproc *p)
{
	/* The parent is going away, or a sibling died and it will say why. */
	log_debug("%s: lost channel to %s, exiting", proc_name(sq_process),
	    p->name);
	exit(0);
}

void
proc_loop_init(void)
{
	int	 i;

	signal(SIGPIPE, SIG_IGN);
	signal_set(&proc_ev_term, SIGTERM, proc_sig_exit, NULL);
	signal_set(&proc_ev_int, SIGINT, proc_sig_exit, NULL);
	signal_set(&proc_ev_hup, SIGHUP, proc_sig_ignore, NULL);
	signal_add(&proc_ev_term, NULL);
	signal_add(&proc_ev_int, NULL);
	signal_add(&proc_ev_hup, NULL);

	for (i = 0; i < PROC_COUNT; i++) {
		if (peers[i] == NULL || peers[i]->handler == NULL)
			continue;
		if (peers[i]->lost == NULL)
			peers[i]->lost = proc_peer_lost;
		mproc_enable(peers[i]);
	}
}

int
proc_common_imsg(struct imsg *imsg)
{
	struct msg	 m;
	int		 v;

	switch (imsg->hdr.type) {
	case IMSG_CTL_VERBOSE:
		m_msg(&m, imsg);
		m_get_int(&m, &v);
		m_end(&m);
		log_setverbose(v);
		return PROC_IMSG_DONE;
	case IMSG_CONF_START:
	case IMSG_CONF_FILE:
	case IMSG_CONF_END:
		return config_imsg(imsg) == 1 ? PROC_IMSG_RELOADED :
		    PROC_IMSG_DONE;
	default:
		return PROC_IMSG_NONE;
	}
}

void
ctl_line(struct mproc *p, uint32_t ctlid, const char *fmt, ...)
{
	char	 line[PATH_MAX + 256];	/* fits one imsg */
	va_list	 ap;

	va_start(ap, fmt);
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	m_create(p, IMSG_CTL_LINE, 0, -1);
	m_add_u32(p, ctlid);
	m_add_string(p, line);
	m_close(p);
}

void
ctl_end(struct mproc *p, uint32_t ctlid, int status, const char *text)
{
	m_create(p, IMSG_CTL_END, 0, -1);
	m_add_u32(p, ctlid);
	m_add_int(p, status);
	m_add_string(p, text);
	m_close(p);
}

void
proc_child_signals(int ignore_pipe)
{
	sigset_t	 set;

	signal(SIGPIPE, ignore_pipe ? SIG_IGN : SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigemptyset(&set);
	(void)sigprocmask(SIG_SETMASK, &set, NULL);
}
