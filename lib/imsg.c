/*
 * imsg: framed messages with descriptor passing over a socketpair.
 *
 * Writing: each message is an ibuf on the msgbuf queue.  msgbuf_write()
 * gathers as many queued buffers as it can into one sendmsg(), but a
 * buffer that carries a descriptor always starts a sendmsg() of its own,
 * so the descriptor rides with the first byte of its message and a single
 * sendmsg() never carries more than one.  The descriptor is closed once
 * sendmsg() has taken it.
 *
 * Reading: imsg_read() appends what recvmsg() returns to the read buffer
 * and queues the descriptors that came with it, in order; imsg_get() hands
 * the oldest queued descriptor to the next message whose header has
 * IMSGF_HASFD.  Anything that does not add up (a truncated control
 * message, a flagged message with no descriptor, a length out of range,
 * too many unclaimed descriptors) fails with EBADMSG: the caller closes
 * the channel.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"

#define MSGBUF_IOV		64	/* buffers gathered per sendmsg() */
#define IMSG_RECV_FDS		8	/* descriptors room per recvmsg() */
#define IMSG_FDS_MAX		128	/* unclaimed descriptors we hold */
#define IMSG_PAYLOAD_MAX	(MAX_IMSGSIZE - IMSG_HEADER_SIZE)

static int	 ibuf_grow(struct ibuf *, size_t);
static void	 msgbuf_drain(struct msgbuf *, size_t);
static void	 msgbuf_dequeue(struct msgbuf *, struct ibuf *);
static int	 imsg_fds_count(struct imsgbuf *);
static void	 imsg_close_cmsg_fds(struct msghdr *);

/*
 * ibuf
 */

struct ibuf *
ibuf_open(size_t len)
{
	struct ibuf	*buf;

	if (len == 0) {
		errno = EINVAL;
		return NULL;
	}
	if ((buf = calloc(1, sizeof(*buf))) == NULL)
		return NULL;
	if ((buf->buf = malloc(len)) == NULL) {
		free(buf);
		return NULL;
	}
	buf->size = buf->max = len;
	buf->fd = -1;
	return buf;
}

struct ibuf *
ibuf_dynamic(size_t len, size_t max)
{
	struct ibuf	*buf;
	size_t		 alloc;

	if (max < len) {
		errno = EINVAL;
		return NULL;
	}
	if ((buf = calloc(1, sizeof(*buf))) == NULL)
		return NULL;
	/* Always hold some memory, so that a pointer into it is never NULL. */
	alloc = len > 0 ? len : 1;
	if ((buf->buf = malloc(alloc)) == NULL) {
		free(buf);
		return NULL;
	}
	buf->size = alloc;
	buf->max = max;
	buf->fd = -1;
	return buf;
}

/* Make room for len more bytes, within max. */
static int
ibuf_grow(struct ibuf *buf, size_t len)
{
	unsigned char	*p;
	size_t		 need, nsize;

	if (len > buf->max - buf->wpos) {
		errno = ERANGE;
		return -1;
	}
	need = buf->wpos + len;
	if (need <= buf->size)
		return 0;
	nsize = buf->size;
	while (nsize < need)
		nsize = nsize > buf->max / 2 ? buf->max : nsize * 2;
	if ((p = realloc(buf->buf, nsize)) == NULL)
		return -1;
	buf->buf = p;
	buf->size = nsize;
	return 0;
}

void *
ibuf_reserve(struct ibuf *buf, size_t len)
{
	void	*p;

	if (ibuf_grow(buf, len) == -1)
		return NULL;
	p = buf->buf + buf->wpos;
	buf->wpos += len;
	return p;
}

int
ibuf_add(struct ibuf *buf, const void *data, size_t len)
{
	void	*p;

	if ((p = ibuf_reserve(buf, len)) == NULL)
		return -1;
	if (len > 0)
		memcpy(p, data, len);
	return 0;
}

void *
ibuf_seek(struct ibuf *buf, size_t pos, size_t len)
{
	if (pos > buf->wpos || len > buf->wpos - pos) {
		errno = ERANGE;
		return NULL;
	}
	return buf->buf + pos;
}

size_t
ibuf_size(struct ibuf *buf)
{
	return buf->wpos;
}

size_t
ibuf_left(struct ibuf *buf)
{
	return buf->max - buf->wpos;
}

void
ibuf_close(struct msgbuf *msgbuf, struct ibuf *buf)
{
	TAILQ_INSERT_TAIL(&msgbuf->bufs, buf, entry);
	msgbuf->queued++;
}

/* Free buf; a descriptor it still holds (not sent) is closed. */
void
ibuf_free(struct ibuf *buf)
{
	int	 saved;

	if (buf == NULL)
		return;
	saved = errno;
	if (buf->fd != -1)
		close(buf->fd);
	free(buf->buf);
	free(buf);
	errno = saved;
}

/*
 * msgbuf
 */

void
msgbuf_init(struct msgbuf *msgbuf)
{
	TAILQ_INIT(&msgbuf->bufs);
	msgbuf->queued = 0;
	msgbuf->fd = -1;
}

static void
msgbuf_dequeue(struct msgbuf *msgbuf, struct ibuf *buf)
{
	TAILQ_REMOVE(&msgbuf->bufs, buf, entry);
	msgbuf->queued--;
	ibuf_free(buf);
}

void
msgbuf_clear(struct msgbuf *msgbuf)
{
	struct ibuf	*buf;

	while ((buf = TAILQ_FIRST(&msgbuf->bufs)) != NULL)
		msgbuf_dequeue(msgbuf, buf);
}

/* Account for n bytes sent from the head of the queue. */
static void
msgbuf_drain(struct msgbuf *msgbuf, size_t n)
{
	struct ibuf	*buf;
	size_t		 left;

	while ((buf = TAILQ_FIRST(&msgbuf->bufs)) != NULL) {
		left = buf->wpos - buf->rpos;
		if (n < left) {
			buf->rpos += n;
			break;
		}
		n -= left;
		msgbuf_dequeue(msgbuf, buf);
	}
}

int
msgbuf_write(struct msgbuf *msgbuf)
{
	struct iovec	 iov[MSGBUF_IOV];
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	}		 cmsgbuf;
	struct msghdr	 msg;
	struct cmsghdr	*cmsg;
	struct ibuf	*buf, *first;
	unsigned int	 i = 0;
	ssize_t		 n;

	if ((first = TAILQ_FIRST(&msgbuf->bufs)) == NULL)
		return 1;

	memset(&msg, 0, sizeof(msg));
	memset(&cmsgbuf, 0, sizeof(cmsgbuf));
	TAILQ_FOREACH(buf, &msgbuf->bufs, entry) {
		if (i == MSGBUF_IOV)
			break;
		/* A descriptor must travel with its message's first byte. */
		if (i > 0 && buf->fd != -1)
			break;
		iov[i].iov_base = buf->buf + buf->rpos;
		iov[i].iov_len = buf->wpos - buf->rpos;
		i++;
	}
	msg.msg_iov = iov;
	msg.msg_iovlen = i;

	if (first->fd != -1) {
		msg.msg_control = cmsgbuf.buf;
		msg.msg_controllen = sizeof(cmsgbuf.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		memcpy(CMSG_DATA(cmsg), &first->fd, sizeof(int));
	}

	do {
		n = sendmsg(msgbuf->fd, &msg, MSG_NOSIGNAL);
	} while (n == -1 && errno == EINTR);
	if (n == -1) {
		if (errno == ENOBUFS || errno == EWOULDBLOCK)
			errno = EAGAIN;
		if (errno == EPIPE)
			return 0;
		return -1;
	}

	/* The descriptor has gone, even if only part of the data did. */
	if (first->fd != -1) {
		close(first->fd);
		first->fd = -1;
	}
	msgbuf_drain(msgbuf, n);
	return 1;
}

/*
 * imsg
 */

void
imsg_init(struct imsgbuf *ibuf, int fd)
{
	TAILQ_INIT(&ibuf->fds);
	ibuf->r.rptr = ibuf->r.buf;
	ibuf->r.wpos = 0;
	msgbuf_init(&ibuf->w);
	ibuf->w.fd = fd;
	ibuf->fd = fd;
	ibuf->pid = getpid();
}

static int
imsg_fds_count(struct imsgbuf *ibuf)
{
	struct imsg_fd	*ifd;
	int		 n = 0;

	TAILQ_FOREACH(ifd, &ibuf->fds, entry)
		n++;
	return n;
}

/* Close every descriptor a received control message carries. */
static void
imsg_close_cmsg_fds(struct msghdr *msg)
{
	struct cmsghdr	*cmsg;
	size_t		 i, nfds;
	int		 fd;

	for (cmsg = CMSG_FIRSTHDR(msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS ||
		    cmsg->cmsg_len < CMSG_LEN(0))
			continue;
		nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfds; i++) {
			memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int),
			    sizeof(int));
			if (fd >= 0)
				close(fd);
		}
	}
}

ssize_t
imsg_read(struct imsgbuf *ibuf)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * IMSG_RECV_FDS)];
	}		 cmsgbuf;
	struct iovec	 iov;
	struct msghdr	 msg;
	struct cmsghdr	*cmsg;
	TAILQ_HEAD(, imsg_fd) got;
	struct imsg_fd	*ifd;
	struct ibuf_read *r = &ibuf->r;
	size_t		 off, i, nfds, held;
	ssize_t		 n;

	/* Move what is not yet consumed to the front. */
	off = r->rptr - r->buf;
	if (off > 0) {
		if (r->wpos > off)
			memmove(r->buf, r->rptr, r->wpos - off);
		r->wpos -= off;
		r->rptr = r->buf;
	}
	if (r->wpos == sizeof(r->buf)) {
		errno = ENOBUFS;
		return -1;
	}

	memset(&msg, 0, sizeof(msg));
	memset(&cmsgbuf, 0, sizeof(cmsgbuf));
	iov.iov_base = r->buf + r->wpos;
	iov.iov_len = sizeof(r->buf) - r->wpos;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cmsgbuf.buf;
	msg.msg_controllen = sizeof(cmsgbuf.buf);

	do {
		n = recvmsg(ibuf->fd, &msg, MSG_CMSG_CLOEXEC);
	} while (n == -1 && errno == EINTR);
	if (n == -1) {
		if (errno == EWOULDBLOCK)
			errno = EAGAIN;
		return -1;
	}

	/* Descriptors cut off in transit would misalign all that follow. */
	if (msg.msg_flags & MSG_CTRUNC) {
		imsg_close_cmsg_fds(&msg);
		errno = EBADMSG;
		return -1;
	}

	/* First check every control message, then take ownership. */
	nfds = 0;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		if (cmsg->cmsg_len < CMSG_LEN(0) ||
		    (cmsg->cmsg_len - CMSG_LEN(0)) % sizeof(int) != 0) {
			imsg_close_cmsg_fds(&msg);
			errno = EBADMSG;
			return -1;
		}
		nfds += (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	}
	held = imsg_fds_count(ibuf);
	if (nfds > 0 && held + nfds > IMSG_FDS_MAX) {
		imsg_close_cmsg_fds(&msg);
		errno = EBADMSG;
		return -1;
	}
	TAILQ_INIT(&got);
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfds; i++) {
			if ((ifd = calloc(1, sizeof(*ifd))) == NULL) {
				/* The bytes are gone too: fail the channel. */
				while ((ifd = TAILQ_FIRST(&got)) != NULL) {
					TAILQ_REMOVE(&got, ifd, entry);
					free(ifd);
				}
				imsg_close_cmsg_fds(&msg);
				errno = ENOMEM;
				return -1;
			}
			memcpy(&ifd->fd, CMSG_DATA(cmsg) + i * sizeof(int),
			    sizeof(int));
			TAILQ_INSERT_TAIL(&got, ifd, entry);
		}
	}
	TAILQ_CONCAT(&ibuf->fds, &got, entry);

	r->wpos += n;
	return n;
}

ssize_t
imsg_get(struct imsgbuf *ibuf, struct imsg *imsg)
{
	struct ibuf_read *r = &ibuf->r;
	struct imsg_hdr	 hdr;
	struct imsg_fd	*ifd;
	size_t		 avail, datalen;
	void		*data = NULL;

	avail = r->wpos - (r->rptr - r->buf);
	if (avail < IMSG_HEADER_SIZE)
		return 0;
	memcpy(&hdr, r->rptr, sizeof(hdr));
	if (hdr.len < IMSG_HEADER_SIZE || hdr.len > MAX_IMSGSIZE) {
		errno = EBADMSG;
		return -1;
	}
	if (avail < hdr.len)
		return 0;

	datalen = hdr.len - IMSG_HEADER_SIZE;
	if ((hdr.flags & IMSGF_HASFD) && TAILQ_EMPTY(&ibuf->fds)) {
		errno = EBADMSG;
		return -1;
	}
	if (datalen > 0) {
		if ((data = malloc(datalen)) == NULL)
			return -1;
		memcpy(data, r->rptr + IMSG_HEADER_SIZE, datalen);
	}

	imsg->hdr = hdr;
	imsg->data = data;
	imsg->fd = -1;
	if (hdr.flags & IMSGF_HASFD) {
		ifd = TAILQ_FIRST(&ibuf->fds);
		TAILQ_REMOVE(&ibuf->fds, ifd, entry);
		imsg->fd = ifd->fd;
		free(ifd);
	}

	r->rptr += hdr.len;
	if (r->rptr == r->buf + r->wpos) {
		r->rptr = r->buf;
		r->wpos = 0;
	}
	return hdr.len;
}

struct ibuf *
imsg_create(struct imsgbuf *ibuf, uint32_t type, uint32_t peerid, pid_t pid,
    size_t datalen)
{
	struct ibuf	*wbuf;
	struct imsg_hdr	 hdr;

	if (datalen > IMSG_PAYLOAD_MAX) {
		errno = ERANGE;
		return NULL;
	}
	if ((wbuf = ibuf_dynamic(IMSG_HEADER_SIZE + datalen,
	    MAX_IMSGSIZE)) == NULL)
		return NULL;
	memset(&hdr, 0, sizeof(hdr));
	hdr.type = type;
	hdr.peerid = peerid;
	hdr.pid = pid != 0 ? (uint32_t)pid : (uint32_t)ibuf->pid;
	if (ibuf_add(wbuf, &hdr, sizeof(hdr)) == -1) {
		ibuf_free(wbuf);
		return NULL;
	}
	return wbuf;
}

/* Append to a message being built; on failure the message is freed. */
int
imsg_add(struct ibuf *msg, const void *data, size_t datalen)
{
	if (msg == NULL)
		return -1;
	if (datalen > 0 && ibuf_add(msg, data, datalen) == -1) {
		ibuf_free(msg);
		return -1;
	}
	return (int)datalen;
}

void
imsg_close(struct imsgbuf *ibuf, struct ibuf *msg)
{
	struct imsg_hdr	 hdr;
	void		*p;

	if (msg == NULL)
		return;
	if ((p = ibuf_seek(msg, 0, sizeof(hdr))) == NULL) {
		ibuf_free(msg);
		return;
	}
	memcpy(&hdr, p, sizeof(hdr));
	hdr.len = (uint16_t)ibuf_size(msg);
	hdr.flags &= ~IMSGF_HASFD;
	if (msg->fd != -1)
		hdr.flags |= IMSGF_HASFD;
	memcpy(p, &hdr, sizeof(hdr));
	ibuf_close(&ibuf->w, msg);
}

/*
 * Queue one message.  On success fd (if not -1) belongs to the queue and
 * is closed once sent; on failure it is still the caller's.
 */
int
imsg_compose(struct imsgbuf *ibuf, uint32_t type, uint32_t peerid, pid_t pid,
    int fd, const void *data, size_t datalen)
{
	struct ibuf	*wbuf;

	if ((wbuf = imsg_create(ibuf, type, peerid, pid, datalen)) == NULL)
		return -1;
	if (imsg_add(wbuf, data, datalen) == -1)
		return -1;
	wbuf->fd = fd;
	imsg_close(ibuf, wbuf);
	return 1;
}

/* The payload is freed; the descriptor, if any, is the caller's. */
void
imsg_free(struct imsg *imsg)
{
	free(imsg->data);
	imsg->data = NULL;
}

int
imsg_flush(struct imsgbuf *ibuf)
{
	struct pollfd	 pfd;
	int		 n;

	while (ibuf->w.queued > 0) {
		n = msgbuf_write(&ibuf->w);
		if (n == 0) {
			errno = EPIPE;
			return -1;
		}
		if (n == -1) {
			if (errno != EAGAIN)
				return -1;
			pfd.fd = ibuf->w.fd;
			pfd.events = POLLOUT;
			pfd.revents = 0;
			if (poll(&pfd, 1, -1) == -1 && errno != EINTR)
				return -1;
		}
	}
	return 0;
}

/* Drop what is queued and what was received; ibuf->fd stays open. */
void
imsg_clear(struct imsgbuf *ibuf)
{
	struct imsg_fd	*ifd;

	msgbuf_clear(&ibuf->w);
	while ((ifd = TAILQ_FIRST(&ibuf->fds)) != NULL) {
		TAILQ_REMOVE(&ibuf->fds, ifd, entry);
		close(ifd->fd);
		free(ifd);
	}
	ibuf->r.rptr = ibuf->r.buf;
	ibuf->r.wpos = 0;
}
