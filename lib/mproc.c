/*
 * mproc: a channel to a peer process on the event loop, and the typed
 * compose/read layer over imsg.
 *
 * Wire encoding of the typed fields (both ends run on the same host, so
 * native byte order):
 *	int		int32
 *	u32, u64	uint32, uint64
 *	size		uint64
 *	time		int64
 *	msgid		uint64
 *	string		the bytes and the terminating NUL
 *	data		uint32 length, then the bytes
 *	sockaddr	uint32 length, then the bytes (the family's struct)
 *	mailaddr	string user, string domain
 *	dest		string addr, string orig, int type, string user,
 *			int method, string mailbox, u32 uid, u32 gid,
 *			string home, int dotqmail, string dash, string ext
 *
 * Composing a message that does not fit MAX_IMSGSIZE, or a field that is
 * not what its type says, is a bug in the caller: fatalx().  Reading a
 * field that is short, unterminated, out of range or followed by leftover
 * bytes calls m_error(), which by default is fatal as well.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"
#include "log.h"
#include "mproc.h"

#define M_PAYLOAD_MAX	(MAX_IMSGSIZE - IMSG_HEADER_SIZE)
#define M_CREATE_HINT	256

/*
 * Dispatch in progress, innermost first.  mproc_clear() marks the entries
 * of the channel it clears, so that the dispatch loop stops touching a
 * channel its handler has cleared (and maybe freed).
 */
struct mproc_guard {
	struct mproc		*p;
	int			 cleared;
	struct mproc_guard	*prev;
};

static struct mproc_guard	*mproc_guards;

static const char *const mproc_names[] = {
	[PROC_PARENT] = "parent",
	[PROC_SMTP] = "smtp",
	[PROC_LKA] = "lka",
	[PROC_QUEUE] = "queue",
	[PROC_MDA] = "mda",
	[PROC_MTA] = "mta",
	[PROC_CONTROL] = "control",
	[PROC_AGENT] = "agent",
	[PROC_CLIENT] = "client"
};

static const char	*mproc_name(enum proc_type);
static void		 mproc_event_update(struct mproc *);
static void		 mproc_flush(int, short, void *);
static void		 mproc_dispatch(int, short, void *);
static void		 mproc_lost(struct mproc *);
static void		 m_error_default(const char *);
static int		 m_take(struct msg *, void *, size_t, const char *);
static void		 m_get_field(struct msg *, char *, size_t,
			    const char *);
static void		 m_add_field(struct mproc *, const char *, size_t,
			    const char *);

void	(*m_error)(const char *) = m_error_default;

static const char *
mproc_name(enum proc_type proc)
{
	if ((size_t)proc >= sizeof(mproc_names) / sizeof(mproc_names[0]) ||
	    mproc_names[proc] == NULL)
		return "unknown";
	return mproc_names[proc];
}

void
mproc_init(struct mproc *p, int fd, enum proc_type proc,
    void (*handler)(struct mproc *, struct imsg *))
{
	int	 flags;

	if ((flags = fcntl(fd, F_GETFL)) == -1)
		fatal("mproc_init: fcntl F_GETFL");
	if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		fatal("mproc_init: fcntl F_SETFL");
	if ((flags = fcntl(fd, F_GETFD)) == -1)
		fatal("mproc_init: fcntl F_GETFD");
	if (fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == -1)
		fatal("mproc_init: fcntl F_SETFD");

	memset(p, 0, sizeof(*p));
	imsg_init(&p->imsgbuf, fd);
	p->proc = proc;
	p->name = mproc_name(proc);
	p->handler = handler;
}

/* Register with the event loop: read always, write while queued. */
void
mproc_enable(struct mproc *p)
{
	if (p->imsgbuf.fd == -1)
		fatalx("mproc_enable: channel to %s is closed", p->name);
	if (p->enabled)
		event_del(&p->ev);
	p->enabled = 1;
	p->events = EV_READ | EV_PERSIST;
	if (p->imsgbuf.w.queued > 0)
		p->events |= EV_WRITE;
	event_set(&p->ev, p->imsgbuf.fd, p->events, mproc_dispatch, p);
	if (event_add(&p->ev, NULL) == -1)
		fatal("mproc_enable: event_add");
	event_set(&p->ev_flush, -1, 0, mproc_flush, p);
	p->flushing = 0;
}

void
mproc_disable(struct mproc *p)
{
	if (!p->enabled)
		return;
	event_del(&p->ev);
	if (p->flushing)
		event_del(&p->ev_flush);
	p->flushing = 0;
	p->enabled = 0;
	p->events = 0;
}

void
mproc_clear(struct mproc *p)
{
	struct mproc_guard	*g;

	for (g = mproc_guards; g != NULL; g = g->prev)
		if (g->p == p)
			g->cleared = 1;
	mproc_disable(p);
	ibuf_free(p->ibuf);
	p->ibuf = NULL;
	imsg_clear(&p->imsgbuf);
	if (p->imsgbuf.fd != -1)
		close(p->imsgbuf.fd);
	p->imsgbuf.fd = -1;
	p->imsgbuf.w.fd = -1;
}

static void
mproc_event_set(struct mproc *p, short events)
{
	if (events == p->events)
		return;
	event_del(&p->ev);
	p->events = events;
	event_set(&p->ev, p->imsgbuf.fd, p->events, mproc_dispatch, p);
	if (event_add(&p->ev, NULL) == -1)
		fatal("mproc: event_add");
}

/*
 * Something was queued.  Rather than poll for writability (two epoll_ctl
 * calls per message, and a loop turn of latency), write at the end of this
 * loop pass, from an event made active by hand; poll for EV_WRITE only
 * when the socket is full.
 */
static void
mproc_event_update(struct mproc *p)
{
	if (!p->enabled)
		return;
	if (p->imsgbuf.w.queued > 0 && !(p->events & EV_WRITE)) {
		if (!p->flushing) {
			p->flushing = 1;
			event_active(&p->ev_flush, EV_TIMEOUT, 1);
		}
		return;
	}
	mproc_event_set(p, EV_READ | EV_PERSIST |
	    (p->imsgbuf.w.queued > 0 ? EV_WRITE : 0));
}

/*
 * Write what is queued until it is all gone or the socket is full (one
 * descriptor goes per write).  -1: the channel was lost (p may be gone).
 */
static int
mproc_write(struct mproc *p)
{
	int	 w;

	while (p->imsgbuf.w.queued > 0) {
		w = msgbuf_write(&p->imsgbuf.w);
		if (w == 0) {
			log_debug("%s: channel closed on write", p->name);
			mproc_lost(p);
			return -1;
		}
		if (w == -1 && errno != EAGAIN) {
			log_warn("%s: msgbuf_write", p->name);
			mproc_lost(p);
			return -1;
		}
		if (w == -1)
			break;		/* full: poll for EV_WRITE */
	}
	return 0;
}

static void
mproc_flush(int fd, short event, void *arg)
{
	struct mproc	*p = arg;

	p->flushing = 0;
	if (!p->enabled || mproc_write(p) == -1)
		return;
	mproc_event_set(p, EV_READ | EV_PERSIST |
	    (p->imsgbuf.w.queued > 0 ? EV_WRITE : 0));
}

/*
 * The channel is gone (EOF, error, or a malformed header).  Stop watching
 * it, then let the owner decide; after lost() p may be freed.
 */
static void
mproc_lost(struct mproc *p)
{
	mproc_disable(p);
	if (p->lost == NULL)
		fatalx("lost channel to %s", p->name);
	p->lost(p);
}

#define MPROC_READS_MAX	64	/* reads per wake-up of a channel */

/*
 * Reads and dispatches until the channel is empty (at most
 * MPROC_READS_MAX reads a wake-up): a message that carries a descriptor
 * arrives by a read of its own, and what a peer sent together is then
 * handled together, before the loop's other events (mta groups the
 * deliveries of one message into one transaction this way).
 */
static void
mproc_dispatch(int fd, short event, void *arg)
{
	struct mproc		*p = arg;
	struct mproc_guard	 g;
	struct imsg		 imsg;
	ssize_t			 n;
	int			 reads = 0, more = (event & EV_READ) != 0;

	if ((event & EV_WRITE) && mproc_write(p) == -1)
		return;

	g.p = p;
	g.cleared = 0;
	g.prev = mproc_guards;
	mproc_guards = &g;
	do {
		if (more) {
			n = imsg_read(&p->imsgbuf);
			if (n == 0) {
				log_debug("%s: channel closed", p->name);
				mproc_guards = g.prev;
				mproc_lost(p);
				return;
			}
			if (n == -1 && errno != EAGAIN && errno != EINTR) {
				log_warn("%s: imsg_read", p->name);
				mproc_guards = g.prev;
				mproc_lost(p);
				return;
			}
			more = n > 0 && ++reads < MPROC_READS_MAX;
		}
		for (;;) {
			n = imsg_get(&p->imsgbuf, &imsg);
			if (n == 0)
				break;
			if (n == -1) {
				log_warn("%s: malformed imsg", p->name);
				mproc_guards = g.prev;
				mproc_lost(p);
				return;
			}
			p->msg_in++;
			if (p->handler == NULL)
				fatalx("%s: imsg %u and no handler", p->name,
				    imsg.hdr.type);
			p->handler(p, &imsg);
			imsg_free(&imsg);
			if (g.cleared) {
				mproc_guards = g.prev;
				return;
			}
		}
	} while (more);
	mproc_guards = g.prev;
	mproc_event_update(p);
}

void
m_compose(struct mproc *p, uint32_t type, uint32_t peerid, int fd,
    const void *data, size_t len)
{
	if (len > M_PAYLOAD_MAX)
		fatalx("m_compose: %zu bytes to %s exceed the imsg limit",
		    len, p->name);
	if (imsg_compose(&p->imsgbuf, type, peerid, 0, fd, data, len) == -1)
		fatal("m_compose: to %s", p->name);
	p->msg_out++;
	mproc_event_update(p);
}

void
m_create(struct mproc *p, uint32_t type, uint32_t peerid, int fd)
{
	if (p->ibuf != NULL)
		fatalx("m_create: a message to %s is open already", p->name);
	if ((p->ibuf = imsg_create(&p->imsgbuf, type, peerid, 0,
	    M_CREATE_HINT)) == NULL)
		fatal("m_create: to %s", p->name);
	p->ibuf->fd = fd;
}

void
m_add(struct mproc *p, const void *data, size_t len)
{
	if (p->ibuf == NULL)
		fatalx("m_add: no message open to %s", p->name);
	if (len > ibuf_left(p->ibuf))
		fatalx("m_add: message to %s exceeds the imsg limit", p->name);
	if (ibuf_add(p->ibuf, data, len) == -1)
		fatal("m_add: to %s", p->name);
}

void
m_add_int(struct mproc *p, int v)
{
	int32_t	 x = v;

	m_add(p, &x, sizeof(x));
}

void
m_add_u32(struct mproc *p, uint32_t v)
{
	m_add(p, &v, sizeof(v));
}

void
m_add_u64(struct mproc *p, uint64_t v)
{
	m_add(p, &v, sizeof(v));
}

void
m_add_size(struct mproc *p, size_t v)
{
	uint64_t x = v;

	m_add(p, &x, sizeof(x));
}

void
m_add_time(struct mproc *p, time_t v)
{
	int64_t	 x = v;

	m_add(p, &x, sizeof(x));
}

void
m_add_string(struct mproc *p, const char *s)
{
	if (s == NULL)
		fatalx("m_add_string: NULL string to %s", p->name);
	m_add(p, s, strlen(s) + 1);
}

void
m_add_data(struct mproc *p, const void *data, size_t len)
{
	if (len > M_PAYLOAD_MAX)
		fatalx("m_add_data: %zu bytes to %s exceed the imsg limit",
		    len, p->name);
	m_add_u32(p, (uint32_t)len);
	m_add(p, data, len);
}

void
m_add_sockaddr(struct mproc *p, const struct sockaddr *sa)
{
	size_t	 len;

	switch (sa->sa_family) {
	case AF_INET:
		len = sizeof(struct sockaddr_in);
		break;
	case AF_INET6:
		len = sizeof(struct sockaddr_in6);
		break;
	case AF_UNIX:
		len = sizeof(struct sockaddr_un);
		break;
	default:
		fatalx("m_add_sockaddr: family %d to %s", sa->sa_family,
		    p->name);
	}
	m_add_u32(p, (uint32_t)len);
	m_add(p, sa, len);
}

void
m_add_msgid(struct mproc *p, uint64_t msgid)
{
	m_add_u64(p, msgid);
}

/* A fixed-size string field: it must hold its NUL. */
static void
m_add_field(struct mproc *p, const char *s, size_t size, const char *what)
{
	size_t	 len;

	len = strnlen(s, size);
	if (len == size)
		fatalx("m_add_%s: unterminated field to %s", what, p->name);
	m_add(p, s, len + 1);
}

void
m_add_mailaddr(struct mproc *p, const struct mailaddr *ma)
{
	m_add_field(p, ma->user, sizeof(ma->user), "mailaddr");
	m_add_field(p, ma->domain, sizeof(ma->domain), "mailaddr");
}

void
m_add_dest(struct mproc *p, const struct dest *d)
{
	m_add_field(p, d->addr, sizeof(d->addr), "dest");
	m_add_field(p, d->orig, sizeof(d->orig), "dest");
	m_add_int(p, d->type);
	m_add_field(p, d->user, sizeof(d->user), "dest");
	m_add_int(p, d->method);
	m_add_field(p, d->mailbox, sizeof(d->mailbox), "dest");
	m_add_u32(p, (uint32_t)d->uid);
	m_add_u32(p, (uint32_t)d->gid);
	m_add_field(p, d->home, sizeof(d->home), "dest");
	m_add_int(p, d->dotqmail);
	m_add_field(p, d->dash, sizeof(d->dash), "dest");
	m_add_field(p, d->ext, sizeof(d->ext), "dest");
}

void
m_close(struct mproc *p)
{
	if (p->ibuf == NULL)
		fatalx("m_close: no message open to %s", p->name);
	imsg_close(&p->imsgbuf, p->ibuf);
	p->ibuf = NULL;
	p->msg_out++;
	mproc_event_update(p);
}

void
m_flush(struct mproc *p)
{
	if (imsg_flush(&p->imsgbuf) == -1)
		fatal("m_flush: to %s", p->name);
	mproc_event_update(p);
}

/*
 * Reading
 */

static void
m_error_default(const char *what)
{
	fatalx("malformed imsg: %s", what);
}

void
m_msg(struct msg *m, struct imsg *imsg)
{
	static const uint8_t	 empty[1];
	size_t			 len = 0;

	if (imsg->hdr.len > IMSG_HEADER_SIZE)
		len = imsg->hdr.len - IMSG_HEADER_SIZE;
	if (imsg->data == NULL || len == 0) {
		m->pos = m->end = empty;
		return;
	}
	m->pos = imsg->data;
	m->end = m->pos + len;
}

int
m_is_eom(struct msg *m)
{
	return m->pos == m->end;
}

void
m_end(struct msg *m)
{
	if (m->pos != m->end)
		m_error("leftover bytes");
}

/*
 * Copy len bytes out; on a short payload zero dst, report, and consume
 * the rest so that a returning m_error() leaves a cursor at its end.
 */
static int
m_take(struct msg *m, void *dst, size_t len, const char *what)
{
	if ((size_t)(m->end - m->pos) < len) {
		memset(dst, 0, len);
		m->pos = m->end;
		m_error(what);
		return -1;
	}
	memcpy(dst, m->pos, len);
	m->pos += len;
	return 0;
}

void
m_get_int(struct msg *m, int *v)
{
	int32_t	 x;

	m_take(m, &x, sizeof(x), "short int");
	*v = x;
}

void
m_get_u32(struct msg *m, uint32_t *v)
{
	m_take(m, v, sizeof(*v), "short u32");
}

void
m_get_u64(struct msg *m, uint64_t *v)
{
	m_take(m, v, sizeof(*v), "short u64");
}

void
m_get_size(struct msg *m, size_t *v)
{
	uint64_t x;

	*v = 0;
	if (m_take(m, &x, sizeof(x), "short size") == -1)
		return;
	if (x > SIZE_MAX) {
		m_error("size out of range");
		return;
	}
	*v = (size_t)x;
}

void
m_get_time(struct msg *m, time_t *v)
{
	int64_t	 x;

	m_take(m, &x, sizeof(x), "short time");
	*v = (time_t)x;
}

void
m_get_string(struct msg *m, const char **s)
{
	const uint8_t	*nul;

	nul = memchr(m->pos, '\0', m->end - m->pos);
	if (nul == NULL) {
		*s = "";
		m->pos = m->end;
		m_error("string without NUL");
		return;
	}
	*s = (const char *)m->pos;
	m->pos = nul + 1;
}

void
m_get_data(struct msg *m, const void **data, size_t *len)
{
	uint32_t x;

	*data = NULL;
	*len = 0;
	if (m_take(m, &x, sizeof(x), "short data length") == -1)
		return;
	if ((size_t)(m->end - m->pos) < x) {
		m->pos = m->end;
		m_error("short data");
		return;
	}
	*data = m->pos;
	*len = x;
	m->pos += x;
}

void
m_get_sockaddr(struct msg *m, struct sockaddr_storage *ss)
{
	sa_family_t	 family;
	uint32_t	 len;
	size_t		 want;

	memset(ss, 0, sizeof(*ss));
	if (m_take(m, &len, sizeof(len), "short sockaddr length") == -1)
		return;
	if ((size_t)(m->end - m->pos) < len) {
		m->pos = m->end;
		m_error("short sockaddr");
		return;
	}
	if (len < offsetof(struct sockaddr, sa_family) + sizeof(family) ||
	    len > sizeof(*ss)) {
		m->pos = m->end;
		m_error("sockaddr length out of range");
		return;
	}
	memcpy(&family, m->pos + offsetof(struct sockaddr, sa_family),
	    sizeof(family));
	switch (family) {
	case AF_INET:
		want = sizeof(struct sockaddr_in);
		break;
	case AF_INET6:
		want = sizeof(struct sockaddr_in6);
		break;
	case AF_UNIX:
		want = sizeof(struct sockaddr_un);
		break;
	default:
		m->pos = m->end;
		m_error("sockaddr family");
		return;
	}
	if (len != want) {
		m->pos = m->end;
		m_error("sockaddr length does not match its family");
		return;
	}
	memcpy(ss, m->pos, len);
	m->pos += len;
}

void
m_get_msgid(struct msg *m, uint64_t *msgid)
{
	m_take(m, msgid, sizeof(*msgid), "short msgid");
}

/* Read a string into a fixed-size field; it must fit with its NUL. */
static void
m_get_field(struct msg *m, char *dst, size_t size, const char *what)
{
	const char	*s;

	dst[0] = '\0';
	m_get_string(m, &s);
	if (strlcpy(dst, s, size) >= size) {
		dst[0] = '\0';
		m_error(what);
	}
}

void
m_get_mailaddr(struct msg *m, struct mailaddr *ma)
{
	m_get_field(m, ma->user, sizeof(ma->user), "mailaddr user too long");
	m_get_field(m, ma->domain, sizeof(ma->domain),
	    "mailaddr domain too long");
}

void
m_get_dest(struct msg *m, struct dest *d)
{
	uint32_t u;
	int	 v;

	m_get_field(m, d->addr, sizeof(d->addr), "dest addr too long");
	m_get_field(m, d->orig, sizeof(d->orig), "dest orig too long");
	m_get_int(m, &v);
	if (v != DEST_LOCAL && v != DEST_REMOTE) {
		m_error("dest type out of range");
		v = DEST_REMOTE;
	}
	d->type = v;
	m_get_field(m, d->user, sizeof(d->user), "dest user too long");
	m_get_int(m, &v);
	if (v < MBOX_NONE || v >= MBOX_METHODS) {
		m_error("dest method out of range");
		v = MBOX_NONE;
	}
	d->method = v;
	m_get_field(m, d->mailbox, sizeof(d->mailbox),
	    "dest mailbox too long");
	m_get_u32(m, &u);
	d->uid = (uid_t)u;
	m_get_u32(m, &u);
	d->gid = (gid_t)u;
	m_get_field(m, d->home, sizeof(d->home), "dest home too long");
	if (d->home[0] != '\0' && d->home[0] != '/') {
		d->home[0] = '\0';
		m_error("dest home not absolute");
	}
	m_get_int(m, &v);
	if (v != 0 && v != 1) {
		m_error("dest dotqmail out of range");
		v = 0;
	}
	d->dotqmail = v;
	m_get_field(m, d->dash, sizeof(d->dash), "dest dash too long");
	if (d->dash[0] != '\0' && strcmp(d->dash, "-") != 0) {
		d->dash[0] = '\0';
		m_error("dest dash is neither \"\" nor \"-\"");
	}
	m_get_field(m, d->ext, sizeof(d->ext), "dest ext too long");
}
