/*
 * mproc: a channel to a peer process on the event loop, and the typed
 * compose/read layer over imsg.  No process casts a raw payload: it adds
 * typed fields with m_add_*() and reads them back with m_get_*(), which
 * check the remaining length and fail closed.
 */
#ifndef SQ_MPROC_H
#define SQ_MPROC_H

#include <sys/types.h>
#include <sys/socket.h>

#include <event.h>
#include <stdint.h>
#include <time.h>

#include "imsg.h"
#include "proc.h"
#include "sqmail.h"

struct mproc {
	enum proc_type	 proc;		/* the peer */
	const char	*name;		/* the peer's name, for logs */
	struct imsgbuf	 imsgbuf;
	struct ibuf	*ibuf;		/* message being composed */
	struct event	 ev;
	short		 events;
	int		 enabled;
	struct event	 ev_flush;	/* active (not polled): write queued */
	int		 flushing;
	void		(*handler)(struct mproc *, struct imsg *);
	/* called on EOF or a read/protocol error; NULL: fatalx */
	void		(*lost)(struct mproc *);
	void		*arg;		/* the owner's, e.g. an agent */
	uint64_t	 msg_in, msg_out;
};

/*
 * Set up p over fd (non-blocking, close-on-exec); mproc_enable() then
 * registers it with the event loop (read always; write while anything is
 * queued).  handler gets every complete message; the imsg's fd, if any,
 * belongs to the handler, which must close or keep it.
 */
void	mproc_init(struct mproc *, int fd, enum proc_type,
	    void (*handler)(struct mproc *, struct imsg *));
void	mproc_enable(struct mproc *);
void	mproc_disable(struct mproc *);
/* Close the channel and drop what is queued. */
void	mproc_clear(struct mproc *);

/* One-shot: type, peerid, descriptor (-1: none), payload. */
void	m_compose(struct mproc *, uint32_t type, uint32_t peerid, int fd,
	    const void *, size_t);

/* Build a message field by field; m_close queues it for sending. */
void	m_create(struct mproc *, uint32_t type, uint32_t peerid, int fd);
void	m_add(struct mproc *, const void *, size_t);
void	m_add_int(struct mproc *, int);
void	m_add_u32(struct mproc *, uint32_t);
void	m_add_u64(struct mproc *, uint64_t);
void	m_add_size(struct mproc *, size_t);
void	m_add_time(struct mproc *, time_t);
void	m_add_string(struct mproc *, const char *);	/* NUL included */
void	m_add_data(struct mproc *, const void *, size_t);	/* length-prefixed */
void	m_add_sockaddr(struct mproc *, const struct sockaddr *);
void	m_add_msgid(struct mproc *, uint64_t);
void	m_add_mailaddr(struct mproc *, const struct mailaddr *);
void	m_add_dest(struct mproc *, const struct dest *);
void	m_close(struct mproc *);
/* Send what is queued now, blocking (before exit, or in a child). */
void	m_flush(struct mproc *);

/* Reading: a cursor over one imsg's payload. */
struct msg {
	const uint8_t	*pos;
	const uint8_t	*end;
};

void	m_msg(struct msg *, struct imsg *);
int	m_is_eom(struct msg *);
void	m_end(struct msg *);		/* fails if bytes are left over */
void	m_get_int(struct msg *, int *);
void	m_get_u32(struct msg *, uint32_t *);
void	m_get_u64(struct msg *, uint64_t *);
void	m_get_size(struct msg *, size_t *);
void	m_get_time(struct msg *, time_t *);
/* Points into the payload; fails unless a NUL ends it within the payload. */
void	m_get_string(struct msg *, const char **);
void	m_get_data(struct msg *, const void **, size_t *);
void	m_get_sockaddr(struct msg *, struct sockaddr_storage *);
void	m_get_msgid(struct msg *, uint64_t *);
/* Copies with bounds: fails on a string that does not fit the field. */
void	m_get_mailaddr(struct msg *, struct mailaddr *);
void	m_get_dest(struct msg *, struct dest *);

/*
 * What a getter does on a short, overlong or malformed payload.  The
 * default is fatalx(): a peer that sends one is broken or hostile, and we
 * fail closed.  Unit tests and fuzz targets replace it (e.g. to longjmp).
 */
extern void	(*m_error)(const char *what);

#endif
