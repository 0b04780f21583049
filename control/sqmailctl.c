/*
 * sqmailctl: send one request to sqmaild's control socket and print the
 * answer.  The lines the daemon sends go to stdout as they are; the final
 * status decides the exit code.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "imsg.h"
#include "log.h"
#include "mproc.h"
#include "msg.h"
#include "sqmail.h"
#include "../lka/table.h"

#define CTLC_CONF		"/etc/sqmail/sqmail.conf"
#define CTLC_CONF_ENV		"SQMAIL_CONF"

static const char	*ctlc_socket;
static const char	*ctlc_conf;

static __attribute__((__noreturn__)) void
ctlc_usage(void)
{
	fprintf(stderr,
	    "usage: sqmailctl [-f config] [-s socket] command [argument]\n"
	    "commands:\n"
	    "\tnewaliases\n"
	    "\tshow queue | show stats | show processes | show hosts\n"
	    "\tshow routes [domain]\n"
	    "\tpause smtp|mda|mta | resume smtp|mda|mta\n"
	    "\tschedule id|all | remove id|all\n"
	    "\tlog verbose|brief | reload | stop\n");
	exit(EX_USAGE);
}

/* m_error: a reply we cannot read is the daemon's fault, not the user's. */
static __attribute__((__noreturn__)) void
ctlc_bad_reply(const char *what)
{
	fprintf(stderr, "sqmailctl: malformed reply from sqmaild: %s\n",
	    what);
	exit(EX_PROTOCOL);
}

static int	ctlc_send_errno;	/* the request could not be sent */

static void
ctlc_alarm(int sig)
{
	static const char msg[] =
	    "sqmailctl: timed out talking to sqmaild\n";

	/* In a signal handler: nothing to do if stderr is gone. */
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) == -1)
		_exit(EX_TEMPFAIL);
	_exit(EX_TEMPFAIL);
}

/*
 * newaliases: compile every aliases table the configuration names into
 * its database.  It reads files only: the daemon notices a new database
 * at its next lookup.  A source with an error keeps its old database;
 * the others are still compiled.
 */
static int
ctlc_newaliases(void)
{
	struct sqconf	*c;
	struct table	*t;
	char		 cwd[PATH_MAX], err[512];
	size_t		 n;
	int		 found = 0, failed = 0;

	log_init(1, LOG_MAIL);
	log_procinit("newaliases");
	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		fprintf(stderr, "newaliases: getcwd: %s\n", strerror(errno));
		return EX_OSERR;
	}
	if ((c = config_parse(ctlc_conf, cwd, NULL, NULL)) == NULL) {
		fprintf(stderr, "newaliases: %s: configuration not usable\n",
		    ctlc_conf);
		return EX_CONFIG;
	}
	TAILQ_FOREACH(t, &c->tables, entry) {
		if (t->type != TABLE_ALIASES)
			continue;
		found++;
		if (table_aliases_build(t->path, &n, err, sizeof(err)) == -1) {
			fprintf(stderr, "newaliases: %s\n", err);
			fprintf(stderr, "newaliases: %s.cdb not changed\n",
			    t->path);
			failed++;
			continue;
		}
		printf("%s: %zu aliases\n", t->path, n);
	}
	config_free(c);
	if (found == 0) {
		fprintf(stderr, "newaliases: %s names no aliases table "
		    "(table NAME aliases:PATH)\n", ctlc_conf);
		return EX_CONFIG;
	}
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "newaliases: stdout: %s\n", strerror(errno));
		return EX_IOERR;
	}
	return failed > 0 ? EX_DATAERR : 0;
}

static int
ctlc_connect(const char *path)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		fprintf(stderr, "sqmailctl: socket path too long: %s\n", path);
		exit(EX_USAGE);
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		fprintf(stderr, "sqmailctl: socket: %s\n", strerror(errno));
		exit(EX_OSERR);
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "sqmailctl: cannot connect to %s: %s "
		    "(is sqmaild running?)\n", path, strerror(errno));
		exit(EX_UNAVAILABLE);
	}
	return fd;
}

static void
ctlc_add(struct ibuf *b, const void *data, size_t len)
{
	if (imsg_add(b, data, len) == -1) {
		fprintf(stderr, "sqmailctl: cannot build request: %s\n",
		    strerror(errno));
		exit(EX_SOFTWARE);
	}
}

/* The payload as lib/msg.h says: u32 ctlid (0), then the arguments. */
static void
ctlc_send(struct imsgbuf *ibuf, const struct ctl_request *req)
{
	struct ibuf	*b;
	uint32_t	 ctlid = 0;
	int32_t		 verbose = req->verbose;	/* int32 on the wire */

	if ((b = imsg_create(ibuf, req->type, 0, 0, 64)) == NULL) {
		fprintf(stderr, "sqmailctl: cannot build request: %s\n",
		    strerror(errno));
		exit(EX_SOFTWARE);
	}
	ctlc_add(b, &ctlid, sizeof(ctlid));
	switch (req->type) {
	case IMSG_CTL_SCHEDULE:
	case IMSG_CTL_REMOVE:
		ctlc_add(b, &req->msgid, sizeof(req->msgid));
		break;
	case IMSG_CTL_PAUSE_REQ:
	case IMSG_CTL_RESUME_REQ:
	case IMSG_CTL_SHOW_ROUTES:
		ctlc_add(b, req->arg, strlen(req->arg) + 1);
		break;
	case IMSG_CTL_LOG:
		ctlc_add(b, &verbose, sizeof(verbose));
		break;
	default:
		break;
	}
	imsg_close(ibuf, b);
	if (imsg_flush(ibuf) == -1) {
		/*
		 * A daemon that refuses us (too many clients) answers and
		 * hangs up at once: its answer may be waiting to be read.
		 */
		if (errno == EPIPE || errno == ECONNRESET) {
			ctlc_send_errno = errno;
			return;
		}
		fprintf(stderr, "sqmailctl: cannot send to %s: %s\n",
		    ctlc_socket, strerror(errno));
		exit(EX_UNAVAILABLE);
	}
}

/* One message from control: 1 when it was the END. */
static int
ctlc_reply(struct imsg *imsg, int *exitcode)
{
	struct msg	 m;
	const char	*text;
	uint32_t	 ctlid;
	int		 status;

	if (imsg->fd != -1) {
		close(imsg->fd);
		ctlc_bad_reply("unexpected descriptor");
	}
	switch (imsg->hdr.type) {
	case IMSG_CTL_LINE:
		m_msg(&m, imsg);
		m_get_u32(&m, &ctlid);
		m_get_string(&m, &text);
		m_end(&m);
		if (fputs(text, stdout) == EOF || putchar('\n') == EOF) {
			fprintf(stderr, "sqmailctl: stdout: %s\n",
			    strerror(errno));
			exit(EX_IOERR);
		}
		return 0;
	case IMSG_CTL_END:
		m_msg(&m, imsg);
		m_get_u32(&m, &ctlid);
		m_get_int(&m, &status);
		m_get_string(&m, &text);
		m_end(&m);
		if (fflush(stdout) == EOF) {
			fprintf(stderr, "sqmailctl: stdout: %s\n",
			    strerror(errno));
			exit(EX_IOERR);
		}
		if (status == SQ_OK) {
			*exitcode = 0;
			return 1;
		}
		fprintf(stderr, "sqmailctl: %s\n",
		    text[0] != '\0' ? text : "request failed");
		*exitcode = 1;
		return 1;
	default:
		ctlc_bad_reply("unexpected message type");
	}
}

/*
 * Read until the END.  Each wait for the daemon is bounded by
 * CTL_TIMEOUT seconds; a long listing that keeps coming is fine.
 */
static int
ctlc_wait(struct imsgbuf *ibuf, const struct ctl_request *req)
{
	struct pollfd	 pfd;
	struct imsg	 imsg;
	ssize_t		 n;
	int		 done, exitcode = 1;

	for (;;) {
		while ((n = imsg_get(ibuf, &imsg)) > 0) {
			done = ctlc_reply(&imsg, &exitcode);
			imsg_free(&imsg);
			if (done)
				return exitcode;
		}
		if (n == -1)
			ctlc_bad_reply("bad message header");

		pfd.fd = ibuf->fd;
		pfd.events = POLLIN;
		switch (poll(&pfd, 1, CTL_TIMEOUT * 1000)) {
		case -1:
			if (errno == EINTR)
				continue;
			fprintf(stderr, "sqmailctl: poll: %s\n",
			    strerror(errno));
			return EX_OSERR;
		case 0:
			fprintf(stderr, "sqmailctl: no answer from sqmaild "
			    "within %d seconds\n", CTL_TIMEOUT);
			return EX_TEMPFAIL;
		}

		if ((n = imsg_read(ibuf)) == -1) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			fprintf(stderr, "sqmailctl: read from %s: %s\n",
			    ctlc_socket, strerror(errno));
			return EX_UNAVAILABLE;
		}
		if (n == 0) {
			if (ctlc_send_errno != 0) {
				fprintf(stderr, "sqmailctl: cannot send to "
				    "%s: %s\n", ctlc_socket,
				    strerror(ctlc_send_errno));
				return EX_UNAVAILABLE;
			}
			/* Asked to stop, the daemon may go first. */
			if (req->type == IMSG_CTL_STOP)
				return 0;
			fprintf(stderr, "sqmailctl: sqmaild closed the "
			    "connection before answering\n");
			return EX_UNAVAILABLE;
		}
	}
}

int
main(int argc, char *argv[])
{
	struct ctl_request	 req;
	struct imsgbuf		 ibuf;
	static char		*mailq_argv[] = { "show", "queue", NULL };
	const char		*env, *name;
	char			 err[256];
	int			 ch, fd, exitcode;

	if ((env = getenv(CTL_SOCKET_ENV)) != NULL && *env != '\0')
		ctlc_socket = env;
	else
		ctlc_socket = CTL_SOCKET_DEFAULT;
	if ((env = getenv(CTLC_CONF_ENV)) != NULL && *env != '\0')
		ctlc_conf = env;
	else
		ctlc_conf = CTLC_CONF;

	/* The names programs call: sendmail, and mailq = show queue. */
	if ((name = strrchr(argv[0], '/')) != NULL)
		name++;
	else
		name = argv[0];
	if (strcmp(name, "newaliases") == 0) {
		if (argc > 1) {
			fprintf(stderr, "usage: newaliases\n");
			return EX_USAGE;
		}
		return ctlc_newaliases();
	}
	/* sendmail_main: -1 for -bp (mailq below), -2 for -bi. */
	if (strcmp(name, "sendmail") == 0 &&
	    (exitcode = sendmail_main(argc, argv, ctlc_socket)) != -1)
		return exitcode == -2 ? ctlc_newaliases() : exitcode;
	if (strcmp(name, "sendmail") == 0 || strcmp(name, "mailq") == 0) {
		if (strcmp(name, "mailq") == 0 && argc > 1) {
			fprintf(stderr, "usage: mailq\n");
			return EX_USAGE;
		}
		argc = 2;
		argv = mailq_argv;
		goto parse;
	}

	/* "+": the options end at the command, whatever follows it. */
	while ((ch = getopt(argc, argv, "+f:s:")) != -1) {
		switch (ch) {
		case 'f':
			ctlc_conf = optarg;
			break;
		case 's':
			ctlc_socket = optarg;
			break;
		default:
			ctlc_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		ctlc_usage();
	if (strcmp(argv[0], "newaliases") == 0) {
		if (argc > 1)
			ctlc_usage();
		return ctlc_newaliases();
	}
 parse:
	if (ctl_parse_args(argc, argv, &req, err, sizeof(err)) == -1) {
		fprintf(stderr, "sqmailctl: %s\n", err);
		ctlc_usage();
	}

	m_error = ctlc_bad_reply;

	/* connect(2) and the send can block too: bound them by an alarm. */
	signal(SIGALRM, ctlc_alarm);
	signal(SIGPIPE, SIG_IGN);
	alarm(CTL_TIMEOUT);
	fd = ctlc_connect(ctlc_socket);
	imsg_init(&ibuf, fd);
	ctlc_send(&ibuf, &req);
	alarm(0);
	signal(SIGPIPE, SIG_DFL);	/* `sqmailctl show queue | head` */

	exitcode = ctlc_wait(&ibuf, &req);
	imsg_clear(&ibuf);
	close(fd);
	return exitcode;
}
