/*
 * Process roles, the channels between them, and privilege dropping.
 */
#ifndef SQ_PROC_H
#define SQ_PROC_H

#include <sys/types.h>

#include <stdint.h>

enum proc_type {
	PROC_PARENT = 0,
	PROC_SMTP,
	PROC_LKA,
	PROC_QUEUE,
	PROC_MDA,
	PROC_MTA,
	PROC_CONTROL,
	PROC_COUNT,		/* the roles the parent spawns end here */
	PROC_AGENT,		/* a per-user delivery agent (forked on demand) */
	PROC_CLIENT		/* sqmailctl, on the control socket */
};

struct mproc;

extern enum proc_type	 sq_process;		/* the role of this process */
extern pid_t		 sq_pids[PROC_COUNT];	/* parent only: children */
extern int		 sq_debug;		/* -d: foreground, stderr */
extern int		 sq_privileged;		/* started as root */
extern uid_t		 sq_owner_uid;		/* uid that started sqmaild */
extern gid_t		 sq_control_gid;	/* control group's gid, or (gid_t)-1 */
extern int		 sq_control_fd;		/* listening control socket (parent
						 * opens it; control inherits it) */

/*
 * The channel from this process to each peer, or NULL where the design
 * gives this pair none.  Set up before the role's *_main() is called.
 * The pairs: parent with every child; smtp-lka, smtp-queue, queue-lka,
 * queue-mda, queue-mta, mta-lka; control with every other process.
 */
extern struct mproc	*peers[PROC_COUNT];

const char	*proc_name(enum proc_type);

/*
 * Drop privileges for a child role: when started as root, chroot to root
 * (NULL: no chroot), chdir("/"), setgroups, setresgid, setresuid to user,
 * then verify; otherwise do nothing but chdir to root when given none.
 * fatal() on any failure.
 */
void		 proc_privdrop(enum proc_type, const char *user, const char *root);

/* Each role's entry point; never returns. */
__attribute__((__noreturn__)) void smtp_main(void);
__attribute__((__noreturn__)) void lka_main(void);
__attribute__((__noreturn__)) void queue_main(void);
__attribute__((__noreturn__)) void mda_main(void);
__attribute__((__noreturn__)) void mta_main(void);
void	mta_session_init(void);		/* mta's set-up before privdrop */
__attribute__((__noreturn__)) void control_main(void);
/* A delivery agent: fd is its channel to mda; runs as the user already. */
__attribute__((__noreturn__)) void agent_main(int fd, const char *user,
		    const char *home);

/*
 * Before a role's *_main() runs, the parent's spawn code has: forked,
 * called event_init() (a fresh libevent base), mproc_init()'d each
 * peers[] entry with a NULL handler, dropped privileges with
 * proc_privdrop(), and set the process title.  *_main() sets the handler
 * of each peer it uses, then calls proc_loop_init(), which installs
 * signal handling (SIGPIPE ignored; SIGTERM/SIGINT: exit(0) quietly;
 * SIGHUP ignored: reload comes from the parent as IMSG_CONF_*) and
 * enables every peer with a handler; then it runs event_dispatch().
 * A lost peer (EOF) makes a child exit quietly: the parent is going away
 * or will log why.
 */
void		 proc_loop_init(void);

/*
 * In a process just forked to run code of its own (an agent, an auth
 * check, an LDAP worker): SIGTERM, SIGINT, SIGHUP and SIGCHLD back to
 * their defaults, SIGPIPE ignored (ignore_pipe) or default, and no
 * signal blocked (lka's threads leave a mask behind).
 */
void		 proc_child_signals(int ignore_pipe);

struct imsg;

/*
 * What every process answers the same way: IMSG_CTL_VERBOSE (set the log
 * level) and IMSG_CONF_* (a reload, through config_imsg()).  Returns
 * PROC_IMSG_NONE when imsg is of another type, PROC_IMSG_DONE when it was
 * handled, PROC_IMSG_RELOADED when a new configuration was installed.
 */
#define PROC_IMSG_NONE		0
#define PROC_IMSG_DONE		1
#define PROC_IMSG_RELOADED	2
int		 proc_common_imsg(struct imsg *);

/* Control replies: one IMSG_CTL_LINE, printf-style; the closing IMSG_CTL_END. */
void		 ctl_line(struct mproc *, uint32_t ctlid, const char *, ...)
		    __attribute__((__format__ (printf, 3, 4)));
void		 ctl_end(struct mproc *, uint32_t ctlid, int status,
		    const char *text);

#endif
