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
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
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
#include "mailaddr.h"
#include "mproc.h"
#include "msg.h"
#include "../smtpd/smtp.h"
#include "sqmail.h"
#include "textline.h"

#define SM_INPUT_MAX	(256UL * 1024 * 1024)	/* octets read from stdin */
#define SM_OFFLINE_DEFAULT	"/var/spool/sqmail/offline"
#define SM_OFFLINE_ENV	"SQMAIL_OFFLINE"
#define SM_DOWN		(-1)	/* sm_submit(): no sqmaild to talk to */

/* What became of one submission: an exit code and a line to show. */
struct sm_result {
	int	 code;		/* 0 or an EX_* */
	char	 text[256];	/* "queued as N", or why not */
};

static char	 sm_rcpts[INJECT_RCPT_MAX][SQ_ADDR_MAX];
static int	 sm_verbose;
static int	 sm_bs;		/* -bs: our stdout is an SMTP client's */

static __attribute__((__noreturn__)) void
sm_die(int code, const char *fmt, const char *arg)
{
	if (sm_bs) {
		/* The client hears it too, as a last reply. */
		printf("421 4.3.0 sendmail: ");
		printf(fmt, arg);
		printf("\r\n");
		fflush(stdout);
	}
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
static void
sm_wait(struct imsgbuf *ibuf, struct sm_result *res)
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
				(void)strlcpy(res->text, text,
				    sizeof(res->text));
			} else if (imsg.hdr.type == IMSG_CTL_END) {
				m_get_int(&m, &status);
				m_get_string(&m, &text);
				m_end(&m);
				if (status == SQ_OK) {
					res->code = 0;
					if (res->text[0] == '\0')
						(void)strlcpy(res->text,
						    "queued", sizeof(res->text));
				} else {
					res->code = status == SQ_PERMFAIL ?
					    EX_DATAERR : EX_TEMPFAIL;
					(void)strlcpy(res->text, text[0] ?
					    text : "refused",
					    sizeof(res->text));
				}
				imsg_free(&imsg);
				return;
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
		if (n <= 0) {
			res->code = EX_TEMPFAIL;
			(void)strlcpy(res->text, "no answer from sqmaild",
			    sizeof(res->text));
			return;
		}
		if ((n = imsg_read(ibuf)) == -1 && (errno == EAGAIN ||
		    errno == EINTR))
			continue;
		if (n <= 0) {
			res->code = EX_TEMPFAIL;
			(void)strlcpy(res->text, "sqmaild closed the "
			    "connection before answering", sizeof(res->text));
			return;
		}
	}
}

/*
 * Submit through the control socket.  The result in res; SM_DOWN when
 * there is no sqmaild to take it (no socket, or nobody listening), so
 * that the caller may store the message offline.
 */
static int
sm_submit(const char *sock, const char *sender, char **rcpts, size_t nrcpt,
    int fd, struct sm_result *res)
{
	struct sockaddr_un	 sun;
	struct imsgbuf		 ibuf;
	size_t			 i;
	int			 s, sfd;

	memset(res, 0, sizeof(*res));
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
		alarm(0);
		(void)snprintf(res->text, sizeof(res->text), "cannot connect "
		    "to %s: %s", sock, strerror(errno));
		close(s);
		if (errno == ENOENT || errno == ECONNREFUSED ||
		    errno == ENOTDIR)
			return SM_DOWN;
		res->code = EX_TEMPFAIL;
		return res->code;
	}
	/* Ours stays open: the offline copy may still need it. */
	if ((sfd = dup(fd)) == -1)
		sm_die(EX_OSERR, "dup: %s", strerror(errno));
	imsg_init(&ibuf, s);
	for (i = 0; i < nrcpt; i++)
		sm_send(&ibuf, IMSG_CTL_SUBMIT_RCPT, -1, rcpts[i]);
	sm_send(&ibuf, IMSG_CTL_SUBMIT, sfd, sender);
	if (imsg_flush(&ibuf) == -1) {
		res->code = EX_TEMPFAIL;
		(void)snprintf(res->text, sizeof(res->text), "cannot send "
		    "to sqmaild: %s", strerror(errno));
	} else {
		alarm(0);
		sm_wait(&ibuf, res);
	}
	alarm(0);
	imsg_clear(&ibuf);
	close(s);
	return res->code;
}

/*
 * sqmaild is down: the message into the offline directory (format in
 * inject.h).  Written under a dot name that pickup leaves alone, then
 * renamed without replacing anything, so that the parent never sees a
 * half-written file.  The directory is sqmaild's (mode 1733: anyone
 * drops, nobody but root lists); we only ever create in it.
 */
static int
sm_offline(const char *sender, char **rcpts, size_t nrcpt, int fd,
    struct sm_result *res)
{
	const char	*dir;
	char		 name[64], tmp[72], buf[65536];
	ssize_t		 n;
	off_t		 off = 0;
	size_t		 i;
	FILE		*f;
	int		 dfd, wfd;

	memset(res, 0, sizeof(*res));
	if ((dir = getenv(SM_OFFLINE_ENV)) == NULL || *dir == '\0')
		dir = SM_OFFLINE_DEFAULT;
	res->code = EX_DATAERR;
	if (!inject_offline_addr_ok(sender)) {
		(void)strlcpy(res->text, "bad sender address",
		    sizeof(res->text));
		return res->code;
	}
	for (i = 0; i < nrcpt; i++)
		if (!inject_offline_addr_ok(rcpts[i])) {
			(void)snprintf(res->text, sizeof(res->text), "bad "
			    "recipient address: %.200s", rcpts[i]);
			return res->code;
		}
	res->code = EX_TEMPFAIL;
	if ((dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1) {
		(void)snprintf(res->text, sizeof(res->text), "sqmaild is not "
		    "running, and no offline directory %.150s: %s", dir,
		    strerror(errno));
		return res->code;
	}
	(void)snprintf(name, sizeof(name), "%lld.%ld.%08x",
	    (long long)time(NULL), (long)getpid(), arc4random());
	(void)snprintf(tmp, sizeof(tmp), ".%s", name);
	if ((wfd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1 || (f = fdopen(wfd, "w")) == NULL) {
		(void)snprintf(res->text, sizeof(res->text), "sqmaild is not "
		    "running, and %.150s/%s: %s", dir, tmp, strerror(errno));
		if (wfd != -1)
			close(wfd);
		close(dfd);
		return res->code;
	}
	fprintf(f, "%sS%s\n", INJECT_OFFLINE_MAGIC, sender);
	for (i = 0; i < nrcpt; i++)
		fprintf(f, "R%s\n", rcpts[i]);
	fputc('\n', f);
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		if (fwrite(buf, 1, n, f) != (size_t)n)
			break;
		off += n;
	}
	if (n != 0 || fflush(f) == EOF || ferror(f) || fsync(wfd) == -1 ||
	    renameat2(dfd, tmp, dfd, name, RENAME_NOREPLACE) == -1) {
		(void)snprintf(res->text, sizeof(res->text), "sqmaild is not "
		    "running, and writing to %.150s failed: %s", dir,
		    strerror(errno));
		(void)unlinkat(dfd, tmp, 0);
		(void)fclose(f);
		close(dfd);
		return res->code;
	}
	(void)fclose(f);
	close(dfd);
	res->code = 0;
	(void)snprintf(res->text, sizeof(res->text), "sqmaild is not running; "
	    "stored in the offline directory as %s", name);
	return 0;
}

/* Submit, or when sqmaild is down store offline. */
static int
sm_deliver(const char *sock, const char *sender, char **rcpts, size_t nrcpt,
    int fd, struct sm_result *res)
{
	if (sm_submit(sock, sender, rcpts, nrcpt, fd, res) == SM_DOWN) {
		if (sm_verbose)
			fprintf(stderr, "sendmail: %s\n", res->text);
		(void)sm_offline(sender, rcpts, nrcpt, fd, res);
	}
	return res->code;
}

/*
 * The arguments' recipients then those of the header (-t), each once
 * (To, Cc and Bcc often repeat one another).  NULL-free array in *list.
 */
static size_t
sm_rcptlist(char **args, size_t nargs, size_t nhdr, char ***list)
{
	char	**l;
	size_t	  i, j, n = 0;

	if ((l = calloc(nargs + nhdr + 1, sizeof(*l))) == NULL)
		sm_die(EX_OSERR, "%s", strerror(errno));
	for (i = 0; i < nargs; i++) {
		if (strlen(args[i]) >= SQ_ADDR_MAX * 2)
			sm_die(EX_DATAERR, "address too long: %.100s",
			    args[i]);
		l[n++] = args[i];
	}
	for (i = 0; i < nhdr; i++) {
		for (j = 0; j < n; j++)
			if (strcmp(l[j], sm_rcpts[i]) == 0)
				break;
		if (j == n)
			l[n++] = sm_rcpts[i];
	}
	*list = l;
	return n;
}

/*
 * -bs: SMTP on stdin and stdout, for programs that speak SMTP to a pipe.
 * Commands are parsed by the SMTP server's own parser; each transaction
 * becomes one submission as above, answered after the final dot only
 * once the queue has it (or the offline directory, when sqmaild is down).
 */
#define SM_BS_RCPTS	INJECT_OFFLINE_RCPTS

struct sm_bs {
	const char	*sock;
	const char	*fullname;
	const char	*login;
	const char	*host;
	int		 gecos;
	int		 helo;		/* HELO or EHLO seen */
	int		 mail;		/* MAIL taken */
	char		 sender[SQ_ADDR_MAX];
	size_t		 nrcpt;
	char		*rcpts[SM_BS_RCPTS];
};

static char	 sm_bs_rcptbuf[SM_BS_RCPTS][SQ_ADDR_MAX];

static void __attribute__((__format__ (printf, 1, 2)))
sm_reply(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\r\n");
	if (fflush(stdout) == EOF)
		exit(EX_IOERR);	/* the client has gone */
}

/*
 * One line of stdin into buf (at most max octets with its line end), the
 * line end cut: CRLF or a bare LF.  Returns 1, 0 at the end of input, or
 * -1 when the line was longer (the rest of it read and dropped).
 */
static int
sm_getline(char *buf, size_t max, size_t *lenp)
{
	size_t	 len = 0;
	int	 c, over = 0;

	while ((c = getchar_unlocked()) != EOF) {
		if (c == '\n')
			break;
		if (len + 2 > max)	/* the CRLF must still fit */
			over = 1;
		else
			buf[len++] = c;
	}
	if (c == EOF && len == 0 && !over) {
		if (ferror(stdin))
			sm_die(EX_IOERR, "reading: %s", strerror(errno));
		return 0;
	}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	*lenp = len;
	return over ? -1 : 1;
}

static void
sm_bs_reset(struct sm_bs *b)
{
	b->mail = 0;
	b->nrcpt = 0;
	b->sender[0] = '\0';
}

/* DATA: the message up to the dot, unstuffed, CRLF made LF; submitted. */
static int
sm_bs_data(struct sm_bs *b)
{
	struct inject_info	 in;
	struct sm_result	 res;
	char			 line[SQ_TEXTLINE_MAX], err[256], *msg = NULL;
	char			*nb;
	size_t			 len = 0, cap = 0, n;
	int			 r, toobig = 0, longline = 0, fd;

	sm_reply("354 Go ahead; end with <CRLF>.<CRLF>");
	for (;;) {
		if ((r = sm_getline(line, sizeof(line), &n)) == 0) {
			free(msg);
			return -1;	/* the end of input within DATA */
		}
		if (r == -1)
			longline = 1;
		if (n == 1 && line[0] == '.')
			break;
		if (toobig || longline)
			continue;
		/* A leading dot was doubled by the client (RFC 5321 4.5.2). */
		if (n > 0 && line[0] == '.') {
			memmove(line, line + 1, n - 1);
			n--;
		}
		if (n + 1 > SM_INPUT_MAX - len) {
			toobig = 1;
			continue;
		}
		if (len + n + 1 > cap) {
			cap = cap < 65536 ? 65536 : cap;
			while (cap < len + n + 1)
				cap *= 2;
			if (cap > SM_INPUT_MAX)
				cap = SM_INPUT_MAX;
			if ((nb = realloc(msg, cap)) == NULL)
				sm_die(EX_OSERR, "%s", strerror(errno));
			msg = nb;
		}
		memcpy(msg + len, line, n);
		len += n;
		msg[len++] = '\n';
	}
	if (toobig)
		sm_reply("552 5.3.4 Message size exceeds the limit of %lu "
		    "octets", SM_INPUT_MAX);
	else if (longline)
		sm_reply("500 5.5.2 Line too long (the limit is %d octets with "
		    "CRLF)", SQ_TEXTLINE_MAX);
	else if (inject_scan(msg != NULL ? msg : "", len, &in, NULL, 0, err,
	    sizeof(err)) == -1) {
		text_printable(err);
		sm_reply("554 5.6.0 %s", err);
	} else {
		fd = sm_compose(msg != NULL ? msg : "", len, &in, b->fullname,
		    b->gecos, b->login, b->host);
		(void)sm_deliver(b->sock, b->sender, b->rcpts, b->nrcpt, fd,
		    &res);
		close(fd);
		text_printable(res.text);
		if (sm_verbose)
			fprintf(stderr, "sendmail: %s\n", res.text);
		if (res.code == 0)
			sm_reply("250 2.0.0 Ok: %s", res.text);
		else if (res.code == EX_TEMPFAIL)
			sm_reply("451 4.3.0 %s", res.text);
		else
			sm_reply("554 5.0.0 %s", res.text);
	}
	free(msg);
	sm_bs_reset(b);
	return 0;
}

static void
sm_bs_path_error(int r, int mail)
{
	const char	*verb = mail ? "MAIL" : "RCPT";

	switch (r) {
	case SMTP_P_ADDR:
		sm_reply("501 %s Bad %s address syntax", mail ? "5.1.7" :
		    "5.1.3", mail ? "sender" : "recipient");
		break;
	case SMTP_P_PARAM:
		sm_reply("555 5.5.4 %s parameter not recognized", verb);
		break;
	case SMTP_P_PARAMVAL:
		sm_reply("501 5.5.4 Bad %s parameter value", verb);
		break;
	default:
		sm_reply("501 5.5.4 Syntax: %s %s:<address>", verb,
		    mail ? "FROM" : "TO");
		break;
	}
}

static int
sm_bs_main(struct sm_bs *b)
{
	struct smtp_cmd		 cmd;
	struct smtp_params	 params;
	struct mailaddr		 addr;
	char			 line[SQ_LINE_MAX], helo[256];
	size_t			 n;
	int			 r;

	sm_bs = 1;
	signal(SIGPIPE, SIG_IGN);
	sm_reply("220 %s ESMTP sqmail (sendmail -bs)", b->host);
	for (;;) {
		if ((r = sm_getline(line, sizeof(line), &n)) == 0)
			return 0;	/* no QUIT: what was open is dropped */
		if (r == -1) {
			sm_reply("500 5.5.2 Line too long (the limit is %d "
			    "octets)", SQ_LINE_MAX);
			continue;
		}
		if (smtp_parse_command(line, n, &cmd) == -1) {
			sm_reply("500 5.5.2 NUL or bare CR in command line");
			continue;
		}
		switch (cmd.verb) {
		case SMTP_CMD_HELO:
		case SMTP_CMD_EHLO:
			if (smtp_parse_helo(cmd.arg, cmd.arglen, helo,
			    sizeof(helo)) == -1) {
				sm_reply("501 5.5.4 Syntax: %s <hostname>",
				    smtp_verb_name(cmd.verb));
				break;
			}
			sm_bs_reset(b);
			b->helo = 1;
			if (cmd.verb == SMTP_CMD_HELO) {
				sm_reply("250 %s", b->host);
				break;
			}
			printf("250-%s\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
			    "250-SIZE %lu\r\n", b->host, SM_INPUT_MAX);
			sm_reply("250 ENHANCEDSTATUSCODES");
			break;
		case SMTP_CMD_MAIL:
			if (!b->helo) {
				sm_reply("503 5.5.1 Send HELO or EHLO first");
				break;
			}
			if (b->mail) {
				sm_reply("503 5.5.1 A transaction is open "
				    "already; send RSET first");
				break;
			}
			if ((r = smtp_parse_mail(cmd.arg, cmd.arglen, &addr,
			    &params)) != SMTP_P_OK) {
				sm_bs_path_error(r, 1);
				break;
			}
			if (params.has_size && params.size > SM_INPUT_MAX) {
				sm_reply("552 5.3.4 Message size exceeds the "
				    "limit of %lu octets", SM_INPUT_MAX);
				break;
			}
			if (mailaddr_to_text(&addr, b->sender,
			    sizeof(b->sender)) == -1) {
				sm_bs_path_error(SMTP_P_ADDR, 1);
				break;
			}
			b->mail = 1;
			sm_reply("250 2.1.0 Ok");
			break;
		case SMTP_CMD_RCPT:
			if (!b->mail) {
				sm_reply("503 5.5.1 Send MAIL first");
				break;
			}
			if ((r = smtp_parse_rcpt(cmd.arg, cmd.arglen, &addr,
			    &params)) != SMTP_P_OK) {
				sm_bs_path_error(r, 0);
				break;
			}
			if (b->nrcpt >= SM_BS_RCPTS) {
				sm_reply("452 4.5.3 Too many recipients");
				break;
			}
			/* <postmaster> has no domain: control adds ours. */
			if (mailaddr_to_text(&addr, sm_bs_rcptbuf[b->nrcpt],
			    SQ_ADDR_MAX) == -1) {
				sm_bs_path_error(SMTP_P_ADDR, 0);
				break;
			}
			b->rcpts[b->nrcpt] = sm_bs_rcptbuf[b->nrcpt];
			b->nrcpt++;
			sm_reply("250 2.1.5 Ok");
			break;
		case SMTP_CMD_DATA:
			if (cmd.arglen != 0)
				sm_reply("501 5.5.4 Syntax: DATA");
			else if (!b->mail || b->nrcpt == 0)
				sm_reply("503 5.5.1 Send MAIL and RCPT first");
			else if (sm_bs_data(b) == -1)
				return EX_TEMPFAIL;	/* input ended */
			break;
		case SMTP_CMD_RSET:
			if (cmd.arglen != 0) {
				sm_reply("501 5.5.4 Syntax: RSET");
				break;
			}
			sm_bs_reset(b);
			sm_reply("250 2.0.0 Ok");
			break;
		case SMTP_CMD_NOOP:
			sm_reply("250 2.0.0 Ok");
			break;
		case SMTP_CMD_QUIT:
			sm_reply("221 2.0.0 %s Closing connection", b->host);
			return 0;
		case SMTP_CMD_HELP:
			sm_reply("214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA "
			    "RSET NOOP QUIT HELP VRFY");
			break;
		case SMTP_CMD_VRFY:
			sm_reply("252 2.5.2 Not verified here; send the "
			    "message and see");
			break;
		case SMTP_CMD_EXPN:
			sm_reply("502 5.5.1 EXPN is not offered");
			break;
		case SMTP_CMD_STARTTLS:
		case SMTP_CMD_AUTH:
		case SMTP_CMD_NOTIMPL:
			sm_reply("502 5.5.1 %s is not offered here",
			    smtp_verb_name(cmd.verb));
			break;
		case SMTP_CMD_HTTP:
			sm_reply("421 4.7.0 %s This is SMTP; closing",
			    b->host);
			return EX_PROTOCOL;
		default:
			sm_reply("500 5.5.1 Command not recognized");
			break;
		}
	}
}

static __attribute__((__noreturn__)) void
sm_usage(void)
{
	fprintf(stderr, "usage: sendmail [-tiv] [-f sender] [-F name] "
	    "[-o option] [recipient ...]\n       sendmail -bs [-v] "
	    "[-F name]\n       sendmail -bp | -bi\n");
	exit(EX_USAGE);
}

int
sendmail_main(int argc, char **argv, const char *sock)
{
	struct inject_info	 in;
	struct sm_result	 res;
	struct sm_bs		 bs;
	struct passwd		*pw;
	const char		*sender = NULL, *fullname = NULL, *a;
	char			 host[256], login[64], err[256], *msg;
	char			**list;
	size_t			 len, n;
	int			 i, tflag = 0, iflag = 0, gecos = 0, fd;
	int			 mode = 'm';

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
			/*
			 * -oi is -i.  -odi and -odb (deliver now or in the
			 * background: we queue, and the queue delivers at
			 * once either way), -oem, -om and any other: no
			 * effect.
			 */
			if (strcmp(a, "-oi") == 0)
				iflag = 1;
			else if (strcmp(a, "-o") == 0 && i + 1 < argc)
				i++;
			break;
		case 'O':
			(void)SM_ARG();	/* -O option=value: no effect */
			break;
		case 'b':
			if (strcmp(a, "-bp") == 0 || strcmp(a, "-bs") == 0 ||
			    strcmp(a, "-bi") == 0 || strcmp(a, "-bm") == 0)
				mode = a[2];
			else
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
	if (mode == 'p')
		return -1;	/* the caller runs mailq */
	if (mode == 'i')
		return -2;	/* the caller runs newaliases */

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

	if (mode == 's') {
		if (argc - i != 0 || tflag)
			sm_usage();
		memset(&bs, 0, sizeof(bs));
		bs.sock = sock;
		bs.fullname = fullname;
		bs.gecos = gecos;
		bs.login = login;
		bs.host = host;
		return sm_bs_main(&bs);
	}

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
	n = sm_rcptlist(argv + i, argc - i, in.nrcpt, &list);
	(void)sm_deliver(sock, sender, list, n, fd, &res);
	free(list);
	close(fd);
	if (res.code != 0)
		fprintf(stderr, "sendmail: message not sent: %s\n", res.text);
	else if (sm_verbose)
		fprintf(stderr, "sendmail: %s\n", res.text);
	return res.code;
}
