/*
 * Fuzz the imsg framing and the typed getters.
 *
 * Input: one control byte, then the byte stream a peer would send.
 *	bit 0	a descriptor rides with the first chunk
 *	bit 1	a descriptor rides with every chunk
 *	bits 4-7 chunk size (0: all at once, else n * 7 bytes), so that
 *		messages arrive split across reads
 * The stream goes through a real socketpair into imsg_read(); every
 * message imsg_get() returns is read with a sequence of typed getters
 * chosen by its first payload byte, with m_error() turned into a longjmp.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"
#include "log.h"
#include "mproc.h"

#define FUZZ_INPUT_MAX	60000

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct imsgbuf	 fz_ib;
static jmp_buf		 fz_jb;
static int		 fz_devnull = -1;

static void
fz_error(const char *what)
{
	longjmp(fz_jb, 1);
}

static void
fz_check_sockaddr(const struct sockaddr_storage *ss)
{
	if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6 &&
	    ss->ss_family != AF_UNIX)
		abort();
}

static void
fz_check_dest(const struct dest *d)
{
	if (strnlen(d->addr, sizeof(d->addr)) == sizeof(d->addr) ||
	    strnlen(d->orig, sizeof(d->orig)) == sizeof(d->orig) ||
	    strnlen(d->user, sizeof(d->user)) == sizeof(d->user) ||
	    strnlen(d->mailbox, sizeof(d->mailbox)) == sizeof(d->mailbox))
		abort();
	if (d->type != DEST_LOCAL && d->type != DEST_REMOTE)
		abort();
	if (d->method != MBOX_NONE && d->method != MBOX_MAILDIR &&
	    d->method != MBOX_MBOX)
		abort();
}

static void
fz_check_mailaddr(const struct mailaddr *ma)
{
	if (strnlen(ma->user, sizeof(ma->user)) == sizeof(ma->user) ||
	    strnlen(ma->domain, sizeof(ma->domain)) == sizeof(ma->domain))
		abort();
}

/* Touch every byte a getter hands out, so ASan sees any overread. */
static size_t
fz_touch(const void *p, size_t len)
{
	const unsigned char	*c = p;
	size_t			 i, sum = 0;

	for (i = 0; i < len; i++)
		sum += c[i];
	return sum;
}

/* The payload layouts of enum imsg_type, and a few more. */
static void
fz_getters(struct msg *m, unsigned int sel)
{
	struct sockaddr_storage	 ss;
	struct mailaddr		 ma;
	struct dest		 d;
	const char		*s;
	const void		*data;
	uint64_t		 u64;
	uint32_t		 u32;
	size_t			 sz;
	time_t			 t;
	int			 i;
	volatile size_t		 sink = 0;

	switch (sel % 12) {
	case 0:		/* CTL_VERBOSE */
		m_get_int(m, &i);
		break;
	case 1:		/* LKA_MAIL request */
		m_get_u64(m, &u64);
		m_get_sockaddr(m, &ss);
		fz_check_sockaddr(&ss);
		m_get_mailaddr(m, &ma);
		fz_check_mailaddr(&ma);
		break;
	case 2:		/* LKA_RCPT request */
		m_get_u64(m, &u64);
		m_get_sockaddr(m, &ss);
		fz_check_sockaddr(&ss);
		m_get_int(m, &i);
		m_get_mailaddr(m, &ma);
		fz_check_mailaddr(&ma);
		break;
	case 3:		/* LKA replies, DELIVER_DONE */
		m_get_u64(m, &u64);
		m_get_int(m, &i);
		m_get_string(m, &s);
		sink += strlen(s);
		break;
	case 4:		/* LKA_RCPT_DEST, QUEUE_RCPT */
		m_get_u64(m, &u64);
		m_get_dest(m, &d);
		fz_check_dest(&d);
		break;
	case 5:		/* CONF_FILE */
		m_get_string(m, &s);
		sink += strlen(s);
		m_get_data(m, &data, &sz);
		sink += fz_touch(data, sz);
		break;
	case 6:		/* QUEUE_COMMIT */
		m_get_u64(m, &u64);
		m_get_msgid(m, &u64);
		for (i = 0; i < 4; i++) {
			m_get_string(m, &s);
			sink += strlen(s);
		}
		m_get_u64(m, &u64);
		break;
	case 7:		/* DELIVER, AGENT_DELIVER */
		m_get_u64(m, &u64);
		m_get_msgid(m, &u64);
		m_get_string(m, &s);
		sink += strlen(s);
		m_get_dest(m, &d);
		fz_check_dest(&d);
		break;
	case 8:		/* CTL_LINE, CTL_PAUSE_REQ */
		m_get_u32(m, &u32);
		m_get_string(m, &s);
		sink += strlen(s);
		break;
	case 9:		/* scalars */
		m_get_size(m, &sz);
		m_get_time(m, &t);
		m_get_u32(m, &u32);
		m_get_int(m, &i);
		break;
	case 10:	/* a list of strings up to the end */
		while (!m_is_eom(m)) {
			m_get_string(m, &s);
			sink += strlen(s);
		}
		break;
	case 11:	/* a list of data blobs and sockaddrs */
		while (!m_is_eom(m)) {
			m_get_data(m, &data, &sz);
			sink += fz_touch(data, sz);
			if (!m_is_eom(m)) {
				m_get_sockaddr(m, &ss);
				fz_check_sockaddr(&ss);
			}
		}
		break;
	}
	m_end(m);
	(void)sink;
}

static void
fz_message(struct imsg *imsg)
{
	struct msg	 m;
	unsigned int	 sel = 0;

	m_msg(&m, imsg);
	if (!m_is_eom(&m)) {
		sel = *m.pos;
		m.pos++;
	}
	if (setjmp(fz_jb) == 0)
		fz_getters(&m, sel);
}

/* Take every complete message; -1 when the channel must close. */
static int
fz_drain(void)
{
	struct imsg	 imsg;
	ssize_t		 n;

	while ((n = imsg_get(&fz_ib, &imsg)) > 0) {
		if (imsg.hdr.len < IMSG_HEADER_SIZE ||
		    imsg.hdr.len > MAX_IMSGSIZE || n != imsg.hdr.len)
			abort();
		fz_message(&imsg);
		if (imsg.fd != -1)
			close(imsg.fd);
		imsg_free(&imsg);
	}
	return n == -1 ? -1 : 0;
}

static int
fz_send(int fd, const uint8_t *data, size_t len, int withfd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	}		 cmsgbuf;
	struct msghdr	 msg;
	struct cmsghdr	*cmsg;
	struct iovec	 iov;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = (void *)data;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (withfd) {
		memset(&cmsgbuf, 0, sizeof(cmsgbuf));
		msg.msg_control = cmsgbuf.buf;
		msg.msg_controllen = sizeof(cmsgbuf.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		memcpy(CMSG_DATA(cmsg), &fz_devnull, sizeof(int));
	}
	return sendmsg(fd, &msg, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t	 off, chunk, len;
	ssize_t	 n;
	int	 sv[2], flags, first = 1, dead = 0;

	if (size < 1 || size > FUZZ_INPUT_MAX)
		return 0;
	if (fz_devnull == -1) {
		log_init(1, 0);
		if ((fz_devnull = open("/dev/null", O_RDONLY)) == -1)
			abort();
	}
	m_error = fz_error;
	flags = data[0];
	data++;
	size--;
	chunk = (flags >> 4) * 7;
	if (chunk == 0)
		chunk = size;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	if (fcntl(sv[1], F_SETFL, O_NONBLOCK) == -1)
		abort();
	imsg_init(&fz_ib, sv[1]);

	for (off = 0; off < size && !dead; off += len) {
		len = size - off < chunk ? size - off : chunk;
		if (fz_send(sv[0], data + off, len,
		    (first && (flags & 1)) || (flags & 2)) == -1)
			break;
		first = 0;
		/* Read what is there, as the event loop would. */
		for (;;) {
			n = imsg_read(&fz_ib);
			if (n == -1 && errno == EAGAIN)
				break;
			if (n <= 0 || fz_drain() == -1) {
				dead = 1;
				break;
			}
		}
	}
	shutdown(sv[0], SHUT_WR);
	while (!dead) {
		n = imsg_read(&fz_ib);
		if (n <= 0 || fz_drain() == -1)
			break;
	}

	imsg_clear(&fz_ib);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
