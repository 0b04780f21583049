/*
 * parent_auth.c: SMTP AUTH against the system's users, for listeners with
 * "auth system" (passwd and shadow, crypt(3)) or "auth system pam
 * SERVICE".  Only the parent may read /etc/shadow, so lka forwards these
 * checks here (IMSG_AUTH_SYSTEM).
 *
 * The parent must not stall: a crypt(3) hash is slow by design and a PAM
 * stack may sleep (pam_faildelay), ask the network or hang.  So each
 * check runs in a short-lived child forked by the parent (root, no exec),
 * which writes a one-octet verdict on a pipe and exits; the parent waits
 * for it on its event loop for at most AUTH_SYSTEM_TIMEOUT seconds, then
 * kills it and answers "temporary failure".  At most AUTH_CONCURRENCY
 * children run at once; later checks wait in order (AUTH_WAIT_MAX).  The
 * parent's SIGCHLD handler reaps the children with everything else.
 *
 * Never authenticated: uid 0, a user without a password or with a locked
 * one ("!", "*"), an expired shadow account.  A store that cannot be read
 * is a temporary failure, never an accept.
 */
#include <sys/types.h>
#include <sys/prctl.h>

#include <crypt.h>
#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <pwd.h>
#include <security/pam_appl.h>
#include <shadow.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "imsg.h"
#include "log.h"
#include "mproc.h"
#include "msg.h"
#include "parent_auth.h"
#include "proc.h"
#include "sqmail.h"

#define AUTH_CONCURRENCY	4	/* checks running at once */
#define AUTH_WAIT_MAX		256	/* checks waiting for a turn */
#define AUTH_USER_MAX		255	/* as smtp's */
#define AUTH_PASS_MAX		1024

/* Hashed for an unknown user, so that the answer takes as long. */
#define AUTH_DUMMY_HASH		"$6$sqmailsqmailsq$"

struct pauth {
	TAILQ_ENTRY(pauth)	 entry;
	struct mproc		*p;
	uint32_t		 id;
	char			 service[AUTH_SERVICE_MAX + 1];	/* "": shadow */
	char			 user[AUTH_USER_MAX + 1];
	char			 pass[AUTH_PASS_MAX + 1];
	pid_t			 pid;		/* 0: waiting */
	int			 fd;		/* the verdict pipe */
	struct event		 ev;
};
TAILQ_HEAD(pauthlist, pauth);

static struct pauthlist	 pauth_running = TAILQ_HEAD_INITIALIZER(pauth_running);
static struct pauthlist	 pauth_waiting = TAILQ_HEAD_INITIALIZER(pauth_waiting);
static size_t		 pauth_nrunning, pauth_nwaiting;

static void	pauth_start_next(void);

/* passwd and shadow, crypt(3).  Runs in the child. */
static int
pauth_shadow(const char *user, const char *pass)
{
	static struct crypt_data	 cd;
	struct passwd			*pw;
	struct spwd			*sp = NULL;
	const char			*hash;
	char				*out;
	size_t				 hlen;
	long				 today;

	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		if (errno != 0 && errno != ENOENT && errno != ESRCH) {
			log_warn("parent: auth: getpwnam");
			return SQ_TEMPFAIL;
		}
		(void)crypt_r(pass, AUTH_DUMMY_HASH, &cd);
		return SQ_PERMFAIL;
	}
	if (pw->pw_uid == 0) {
		log_info("parent: auth: %s has uid 0: refused", user);
		return SQ_PERMFAIL;
	}
	hash = pw->pw_passwd;
	if (strcmp(hash, "x") == 0) {
		errno = 0;
		if ((sp = getspnam(user)) == NULL) {
			if (errno == EACCES || errno == EPERM ||
			    geteuid() != 0) {
				log_warnx("parent: auth: cannot read the shadow "
				    "entry of %s (not root?)", user);
				return SQ_TEMPFAIL;
			}
			return SQ_PERMFAIL;
		}
		hash = sp->sp_pwdp;
		today = (long)(time(NULL) / 86400);
		if (sp->sp_expire > 0 && today >= sp->sp_expire) {
			log_debug("parent: auth: %s: account expired", user);
			return SQ_PERMFAIL;
		}
	}
	/* Empty: no password at all; "!" and "*": locked. */
	if (hash[0] == '\0' || hash[0] == '!' || hash[0] == '*') {
		(void)crypt_r(pass, AUTH_DUMMY_HASH, &cd);
		return SQ_PERMFAIL;
	}
	out = crypt_r(pass, hash, &cd);
	if (out == NULL || out[0] == '*') {
		log_warnx("parent: auth: %s: hash not supported by crypt(3)",
		    user);
		return SQ_TEMPFAIL;
	}
	hlen = strlen(hash);
	if (strlen(out) == hlen && timingsafe_equal(out, hash, hlen))
		return SQ_OK;
	return SQ_PERMFAIL;
}

/* PAM asks; we know only the password. */
static int
pauth_conv(int n, const struct pam_message **msg, struct pam_response **resp,
    void *arg)
{
	struct pam_response	*r;
	const char		*pass = arg;
	int			 i;

	*resp = NULL;
	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	if ((r = calloc(n, sizeof(*r))) == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			if ((r[i].resp = strdup(pass)) == NULL)
				goto fail;
			break;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			break;
		default:
			/* A question we cannot answer (OTP, a new password). */
			goto fail;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
fail:
	for (i = 0; i < n; i++)
		if (r[i].resp != NULL) {
			explicit_bzero(r[i].resp, strlen(r[i].resp));
			free(r[i].resp);
		}
	free(r);
	return PAM_CONV_ERR;
}

/* PAM: authenticate, then the account checks.  Runs in the child. */
static int
pauth_pam(const char *service, const char *user, const char *pass)
{
	struct pam_conv	 conv = { pauth_conv, (void *)pass };
	struct passwd	*pw;
	pam_handle_t	*h = NULL;
	int		 r, status;

	if ((pw = getpwnam(user)) != NULL && pw->pw_uid == 0) {
		log_info("parent: auth: %s has uid 0: refused", user);
		return SQ_PERMFAIL;
	}
	if ((r = pam_start(service, user, &conv, &h)) != PAM_SUCCESS) {
		log_warnx("parent: auth: pam_start %s: %s", service,
		    pam_strerror(h, r));
		return SQ_TEMPFAIL;
	}
	r = pam_authenticate(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	if (r == PAM_SUCCESS)
		r = pam_acct_mgmt(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
	switch (r) {
	case PAM_SUCCESS:
		status = SQ_OK;
		break;
	case PAM_AUTH_ERR:
	case PAM_USER_UNKNOWN:
	case PAM_MAXTRIES:
	case PAM_CRED_INSUFFICIENT:
	case PAM_ACCT_EXPIRED:
	case PAM_PERM_DENIED:
	case PAM_NEW_AUTHTOK_REQD:	/* we cannot change it for them */
		status = SQ_PERMFAIL;
		break;
	default:
		log_warnx("parent: auth: PAM service %s: %s", service,
		    pam_strerror(h, r));
		status = SQ_TEMPFAIL;
	}
	(void)pam_end(h, r);
	return status;
}

/* The child: check, write the verdict, exit. */
static __attribute__((__noreturn__)) void
pauth_child(struct pauth *a, int wfd)
{
	unsigned char	 c;
	int		 status;

	proc_child_signals(1);
	(void)prctl(PR_SET_NAME, "sqmaild-auth", 0, 0, 0);
	/* Nothing of the parent's but the log and the verdict pipe. */
	if (wfd != 3) {
		if (dup2(wfd, 3) == -1)
			_exit(1);
		close(wfd);
	}
	closefrom(4);
	if (a->service[0] == '\0')
		status = pauth_shadow(a->user, a->pass);
	else
		status = pauth_pam(a->service, a->user, a->pass);
	explicit_bzero(a->pass, sizeof(a->pass));
	c = status;
	if (write(3, &c, 1) != 1)
		_exit(1);
	_exit(0);
}

static void
pauth_answer(struct pauth *a, int status)
{
	m_create(a->p, IMSG_AUTH_SYSTEM, 0, -1);
	m_add_u32(a->p, a->id);
	m_add_int(a->p, status);
	m_close(a->p);
	log_debug("parent: auth: %s%s%s: %s", a->user,
	    a->service[0] ? " pam " : "", a->service,
	    status == SQ_OK ? "ok" : status == SQ_PERMFAIL ? "refused" :
	    "temporary failure");
}

/* The verdict, the pipe's end without one, or the timeout. */
static void
pauth_done(int fd, short ev, void *arg)
{
	struct pauth	*a = arg;
	unsigned char	 c;
	ssize_t		 n;
	int		 status = SQ_TEMPFAIL;

	if (ev & EV_TIMEOUT) {
		log_warnx("parent: auth: check for %s took over %d s; killed",
		    a->user, AUTH_SYSTEM_TIMEOUT);
		(void)kill(a->pid, SIGKILL);
	} else {
		while ((n = read(fd, &c, 1)) == -1 && errno == EINTR)
			;
		if (n == 1 && (c == SQ_OK || c == SQ_PERMFAIL))
			status = c;
		else if (n != 1)
			log_warnx("parent: auth: check for %s ended without "
			    "a verdict", a->user);
	}
	close(a->fd);
	TAILQ_REMOVE(&pauth_running, a, entry);
	pauth_nrunning--;
	pauth_answer(a, status);
	freezero(a, sizeof(*a));
	pauth_start_next();
}

static int
pauth_spawn(struct pauth *a)
{
	struct timeval	 tv;
	int		 fds[2];

	if (pipe2(fds, O_CLOEXEC) == -1) {
		log_warn("parent: auth: pipe");
		return -1;
	}
	if ((a->pid = fork()) == -1) {
		log_warn("parent: auth: fork");
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (a->pid == 0)
		pauth_child(a, fds[1]);
	close(fds[1]);
	explicit_bzero(a->pass, sizeof(a->pass));	/* the child has it */
	a->fd = fds[0];
	event_set(&a->ev, a->fd, EV_READ, pauth_done, a);
	tv.tv_sec = AUTH_SYSTEM_TIMEOUT;
	tv.tv_usec = 0;
	event_add(&a->ev, &tv);
	TAILQ_INSERT_TAIL(&pauth_running, a, entry);
	pauth_nrunning++;
	return 0;
}

static void
pauth_start_next(void)
{
	struct pauth	*a;

	while (pauth_nrunning < AUTH_CONCURRENCY &&
	    (a = TAILQ_FIRST(&pauth_waiting)) != NULL) {
		TAILQ_REMOVE(&pauth_waiting, a, entry);
		pauth_nwaiting--;
		if (pauth_spawn(a) == -1) {
			pauth_answer(a, SQ_TEMPFAIL);
			freezero(a, sizeof(*a));
		}
	}
}

void
parent_auth_imsg(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	struct pauth	*a;
	const char	*service, *user, *pass;
	uint32_t	 id;
	int		 status = SQ_TEMPFAIL;

	if (imsg->hdr.type != IMSG_AUTH_SYSTEM)
		fatalx("parent: unexpected imsg %u from %s", imsg->hdr.type,
		    p->name);
	m_msg(&m, imsg);
	m_get_u32(&m, &id);
	m_get_string(&m, &service);
	m_get_string(&m, &user);
	m_get_string(&m, &pass);
	m_end(&m);
	if ((a = calloc(1, sizeof(*a))) == NULL)
		log_warn("parent: auth");
	else if (pauth_nwaiting >= AUTH_WAIT_MAX)
		log_warnx("parent: auth: %zu checks waiting already",
		    pauth_nwaiting);
	else if (strlcpy(a->service, service, sizeof(a->service)) >=
	    sizeof(a->service))
		log_warnx("parent: auth: PAM service name too long");
	else if (strlcpy(a->user, user, sizeof(a->user)) >= sizeof(a->user) ||
	    strlcpy(a->pass, pass, sizeof(a->pass)) >= sizeof(a->pass))
		status = SQ_PERMFAIL;	/* no credential of ours is as long */
	else
		status = -1;
	/* The password is in the message itself: wipe all of it. */
	explicit_bzero(imsg->data, imsg->hdr.len - IMSG_HEADER_SIZE);
	if (status != -1) {
		freezero(a, a != NULL ? sizeof(*a) : 0);
		m_create(p, IMSG_AUTH_SYSTEM, 0, -1);
		m_add_u32(p, id);
		m_add_int(p, status);
		m_close(p);
		return;
	}
	a->p = p;
	a->id = id;
	a->fd = -1;
	TAILQ_INSERT_TAIL(&pauth_waiting, a, entry);
	pauth_nwaiting++;
	pauth_start_next();
}

void
parent_auth_shutdown(void)
{
	struct pauth	*a;

	TAILQ_FOREACH(a, &pauth_running, entry)
		if (a->pid > 0)
			(void)kill(a->pid, SIGKILL);
}
