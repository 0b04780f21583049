/*
 * sendmail(8): sqmailctl called as "sendmail".  Reads a message from
 * stdin, adds Date, Message-ID and From when they are missing (as
 * qmail-inject does), drops Bcc, and submits it through the control
 * socket as a sealed memory file with its recipients.  Who sent it is
 * what the kernel tells sqmaild about this process, not anything here.
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "imsg.h"
#include "inject.h"
#include "mproc.h"
#include "msg.h"
#include "sqmail.h"

#define SM_INPUT_MAX	(256UL * 1024 * 1024)	/* octets read from stdin */

static char	 sm_rcpts[INJECT_RCPT_MAX][SQ_ADDR_MAX];
static int	 sm_verbose;

static __attribute__((__noreturn__)) void
sm_die(int code, const char *fmt, const char *arg)
{
	fprintf(stderr, "sendmail: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(code);
}

static __attribute__((__noreturn__)) void
sm_bad_reply(const char *what)
{
	sm_die(EX_PROTOCOL, "malformed reply from sqmaild: %s", what);
}

static void
sm_alarm(int sig)
{
	static const char msg[] = "sendmail: timed out talking to sqmaild\n";

	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) == -1)
		_exit(EX_TEMPFAIL);
	_exit(EX_TEMPFAIL);
}

/* stdin into a buffer; without -i a line "." ends it. */
static char *
sm_read(int dot_ends, size_t *lenp)
{
	char	*buf = NULL, *line = NULL, *nb;
	size_t	 len = 0, cap = 0, lcap = 0;
	ssize_t	 n;

	while ((n = getline(&line, &lcap, stdin)) != -1) {
		if (dot_ends && (strcmp(line, ".\n") == 0 ||
		    strcmp(line, ".\r\n") == 0 || strcmp(line, ".") == 0))
			break;
		if ((size_t)n > SM_INPUT_MAX - len)
			sm_die(EX_DATAERR, "message larger than %s octets",
			    "268435456");
		if (len + n > cap) {
			cap = (len + n) * 2 > SM_INPUT_MAX ? SM_INPUT_MAX :
			    (len + n) * 2;
			if ((nb = realloc(buf, cap)) == NULL)
				sm_die(EX_OSERR, "%s", strerror(errno));
			buf = nb;
		}
		memcpy(buf + len, line, n);
		len += n;
	}
	if (ferror(stdin))
		sm_die(EX_IOERR, "reading the message: %s", strerror(errno));
	free(line);
	*lenp = len;
	return buf != NULL ? buf : strdup("");
}

static void
sm_write(int fd, const void *p, size_t len)
{
	const char	*s = p;
	ssize_t		 w;

	while (len > 0) {
		if ((w = write(fd, s, len)) == -1) {
			if (errno == EINTR)
				continue;
			sm_die(EX_OSERR, "memory file: %s", strerror(errno));
		}
		s += w;
		len -= w;
	}
}

/* The message as submitted, into a sealed memory file. */
static int
sm_compose(const char *msg, size_t len, const struct inject_info *in,
    const char *fullname, int gecos, const char *login, const char *host)
{
	char		 line[1024], date[64];
	struct tm	 tm;
	time_t		 now = time(NULL);
	size_t		 off = 0, i;
	int		 fd, n;

	if ((fd = memfd_create("sendmail", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING)) == -1)
		sm_die(EX_OSERR, "memfd_create: %s", strerror(errno));
	if (!in->has_date) {
		if (localtime_r(&now, &tm) == NULL || strftime(date,
		    sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
			sm_die(EX_OSERR, "%s", "cannot format the date");
		n = snprintf(line, sizeof(line), "Date: %s\n", date);
		sm_write(fd, line, n);
	}
	if (!in->has_msgid) {
		n = snprintf(line, sizeof(line), "Message-ID: <%lld.%ld.%08x"
		    "@%s>\n", (long long)now, (long)getpid(), arc4random(),
		    host);
		if (n < 0 || (size_t)n >= sizeof(line))
			sm_die(EX_SOFTWARE, "%s", "host name too long");
		sm_write(fd, line, n);
	}
	if (!in->has_from) {
		char	 addr[SQ_ADDR_MAX];

		if ((size_t)snprintf(addr, sizeof(addr), "%s@%s", login,
		    host) >= sizeof(addr) || (n = inject_from(fullname, gecos,
		    login, addr, line, sizeof(line))) == -1)
			sm_die(EX_SOFTWARE, "%s", "From field too long");
		sm_write(fd, line, n);
	}
	/* The header without its Bcc fields. */
	for (i = 0; i < in->nbcc; i++) {
		sm_write(fd, msg + off, in->bcc[i].off - off);
		off = in->bcc[i].off + in->bcc[i].len;
	}
	sm_write(fd, msg + off, in->hdr_len - off);
	if (in->blank)
		sm_write(fd, msg + in->hdr_len, in->body_off - in->hdr_len);
	else if (in->body_off < len)
		sm_write(fd, "\n", 1);	/* the body must not look a field */
	sm_write(fd, msg + in->body_off, len - in->body_off);
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK |
	    F_SEAL_GROW | F_SEAL_WRITE) == -1)
		sm_die(EX_OSERR, "sealing the message: %s", strerror(errno));
	return fd;
}

static void
sm_send(struct imsgbuf *ibuf, uint32_t type, int fd, const char *s)
{
	struct ibuf	*b;
	uint32_t	 ctlid = 0;

	if (strlen(s) >= SQ_ADDR_MAX * 2)
		sm_die(EX_DATAERR, "address too long: %.100s", s);
	if ((b = imsg_create(ibuf, type, 0, 0, sizeof(ctlid) +
	    strlen(s) + 1)) == NULL || imsg_add(b, &ctlid,
	    sizeof(ctlid)) == -1 || imsg_add(b, s, strlen(s) + 1) == -1)
		sm_die(EX_SOFTWARE, "cannot build the request: %s",
		    strerror(errno));
	if (fd != -1)
		b->fd = fd;
	imsg_close(ibuf, b);
}

/* Wait for the END; each wait bounded by CTL_TIMEOUT. */
static int
sm_wait(struct imsgbuf *ibuf)
{
	struct pollfd	 pfd;
	struct imsg	 imsg;
	struct msg	 m;
	const char	*text;
	uint32_t	 ctlid;
	ssize_t		 n;
	int		 status;

	for (;;) {
		while ((n = imsg_get(ibuf, &imsg)) > 0) {
			if (imsg.fd != -1)
				sm_bad_reply("unexpected descriptor");
			m_msg(&m, &imsg);
			m_get_u32(&m, &ctlid);
			if (imsg.hdr.type == IMSG_CTL_LINE) {
				m_get_string(&m, &text);
				m_end(&m);
				if (sm_verbose)
					fprintf(stderr, "sendmail: %s\n", text);
			} else if (imsg.hdr.type == IMSG_CTL_END) {
				m_get_int(&m, &status);
				m_get_string(&m, &text);
				m_end(&m);
				if (status == SQ_OK)
					return 0;
				fprintf(stderr, "sendmail: message not sent: "
				    "%s\n", text[0] ? text : "refused");
				return status == SQ_PERMFAIL ? EX_DATAERR :
				    EX_TEMPFAIL;
			} else
				sm_bad_reply("unexpected message type");
			imsg_free(&imsg);
		}
		if (n == -1)
			sm_bad_reply("bad message header");
		pfd.fd = ibuf->fd;
		pfd.events = POLLIN;
		if ((n = poll(&pfd, 1, CTL_TIMEOUT * 1000)) == -1 &&
		    errno == EINTR)
			continue;
		if (n <= 0)
			sm_die(EX_TEMPFAIL, "%s", "no answer from sqmaild");
		if ((n = imsg_read(ibuf)) == -1 && (errno == EAGAIN ||
		    errno == EINTR))
			continue;
		if (n <= 0)
			sm_die(EX_TEMPFAIL, "%s", "sqmaild closed the "
			    "connection before answering");
	}
}

static int
sm_submit(const char *sock, const char *sender, char **rcpts, int nrcpt,
    size_t nhdr, int fd)
{
	struct sockaddr_un	 sun;
	struct imsgbuf		 ibuf;
	size_t			 i, j;
	int			 s, i2, rc;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, sock, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path))
		sm_die(EX_USAGE, "socket path too long: %s", sock);
	signal(SIGALRM, sm_alarm);
	signal(SIGPIPE, SIG_IGN);
	alarm(CTL_TIMEOUT);
	if ((s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		sm_die(EX_OSERR, "socket: %s", strerror(errno));
	if (connect(s, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "sendmail: cannot connect to %s: %s\n", sock,
		    strerror(errno));
		sm_die(EX_TEMPFAIL, "%s", "sqmaild is not running; the "
		    "message was not sent");
	}
	imsg_init(&ibuf, s);
	for (i2 = 0; i2 < nrcpt; i2++)
		sm_send(&ibuf, IMSG_CTL_SUBMIT_RCPT, -1, rcpts[i2]);
	for (i = 0; i < nhdr; i++) {
		/* To, Cc and Bcc often repeat one another: once each. */
		for (j = 0; j < i; j++)
			if (strcmp(sm_rcpts[j], sm_rcpts[i]) == 0)
				break;
		for (i2 = 0; j == i && i2 < nrcpt; i2++)
			if (strcmp(rcpts[i2], sm_rcpts[i]) == 0)
				j = i + 1;
		if (j == i)
			sm_send(&ibuf, IMSG_CTL_SUBMIT_RCPT, -1, sm_rcpts[i]);
	}
	sm_send(&ibuf, IMSG_CTL_SUBMIT, fd, sender);
	if (imsg_flush(&ibuf) == -1)
		sm_die(EX_TEMPFAIL, "cannot send to sqmaild: %s",
		    strerror(errno));
	alarm(0);
	rc = sm_wait(&ibuf);
	imsg_clear(&ibuf);
	close(s);
	return rc;
}

static __attribute__((__noreturn__)) void
sm_usage(void)
{
	fprintf(stderr, "usage: sendmail [-tiv] [-f sender] [-F name] "
	    "[-o option] [recipient ...]\n       sendmail -bp\n");
	exit(EX_USAGE);
}

int
sendmail_main(int argc, char **argv, const char *sock)
{
	struct inject_info	 in;
	struct passwd		*pw;
	const char		*sender = NULL, *fullname = NULL, *a;
	char			 host[256], login[64], err[256], *msg;
	size_t			 len;
	int			 i, tflag = 0, iflag = 0, gecos = 0, fd;
	int			 bp = 0;

	m_error = sm_bad_reply;
	/* Options as sendmail spells them: glued or separate arguments. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
#define SM_ARG()	(a[2] != '\0' ? a + 2 : (i + 1 < argc ? \
			    argv[++i] : (sm_usage(), "")))
		switch (a[1]) {
		case 't':
			tflag = 1;
			break;
		case 'i':
			iflag = 1;
			break;
		case 'v':
			sm_verbose = 1;
			break;
		case 'f':
		case 'r':
			sender = SM_ARG();
			break;
		case 'F':
			fullname = SM_ARG();
			break;
		case 'o':
			/* -oi is -i; -od*, -oe*, -om and the rest: no effect. */
			if (strcmp(a, "-oi") == 0)
				iflag = 1;
			else if (strcmp(a, "-o") == 0 && i + 1 < argc)
				i++;
			break;
		case 'b':
			if (strcmp(a, "-bp") == 0)
				bp = 1;
			else if (strcmp(a, "-bm") != 0)
				sm_die(EX_USAGE, "%s: not supported", a);
			break;
		case 'B':
		case 'N':
		case 'R':
		case 'V':
		case 'X':
		case 'h':
		case 'L':
			(void)SM_ARG();	/* taken and ignored */
			break;
		case 'G':
		case 'U':
		case 'm':
		case 'n':
		case 'e':
			break;
		default:
			fprintf(stderr, "sendmail: unknown option %s\n", a);
			sm_usage();
		}
	}
	if (bp)
		return -1;	/* the caller runs mailq */

	if ((pw = getpwuid(getuid())) == NULL)
		sm_die(EX_NOUSER, "%s", "who are you? (no passwd entry)");
	if (strlcpy(login, pw->pw_name, sizeof(login)) >= sizeof(login))
		sm_die(EX_NOUSER, "%s", "login name too long");
	if (fullname == NULL) {
		fullname = pw->pw_gecos != NULL ? pw->pw_gecos : "";
		gecos = 1;
	}
	if (gethostname(host, sizeof(host)) == -1 || host[0] == '\0')
		(void)strlcpy(host, "localhost", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	if (sender == NULL)
		sender = login;

	msg = sm_read(!iflag, &len);
	if (inject_scan(msg, len, &in, tflag ? sm_rcpts : NULL,
	    INJECT_RCPT_MAX, err, sizeof(err)) == -1)
		sm_die(EX_DATAERR, "%s", err);
	if (argc - i == 0 && in.nrcpt == 0)
		sm_die(EX_USAGE, "%s", tflag ? "no recipients in To, Cc or "
		    "Bcc" : "no recipients given");
	fd = sm_compose(msg, len, &in, fullname, gecos, login, host);
	free(msg);
	return sm_submit(sock, sender, argv + i, argc - i, in.nrcpt, fd);
}
