/*
 * imsg: framed messages with descriptor passing over a socketpair.
 *
 * Our own implementation of the OpenBSD imsg/ibuf API shape.  A message is
 * a fixed header (struct imsg_hdr) followed by at most MAX_IMSGSIZE -
 * IMSG_HEADER_SIZE bytes of payload; at most one descriptor travels with a
 * message (SCM_RIGHTS), attached to the first byte of the message.
 */
#ifndef SQ_IMSG_H
#define SQ_IMSG_H

#include <sys/types.h>
#include <bsd/sys/queue.h>

#include <stddef.h>
#include <stdint.h>

#define IBUF_READ_SIZE		65535
#define IMSG_HEADER_SIZE	sizeof(struct imsg_hdr)
#define MAX_IMSGSIZE		16384

struct ibuf {
	TAILQ_ENTRY(ibuf)	 entry;
	unsigned char		*buf;
	size_t			 size;	/* allocated */
	size_t			 max;	/* growth limit */
	size_t			 wpos;	/* bytes written */
	size_t			 rpos;	/* bytes already sent */
	int			 fd;	/* descriptor to pass, or -1 */
};

struct msgbuf {
	TAILQ_HEAD(, ibuf)	 bufs;
	uint32_t		 queued;
	int			 fd;
};

struct ibuf_read {
	unsigned char		 buf[IBUF_READ_SIZE];
	unsigned char		*rptr;
	size_t			 wpos;
};

struct imsg_fd {
	TAILQ_ENTRY(imsg_fd)	 entry;
	int			 fd;
};

struct imsgbuf {
	TAILQ_HEAD(, imsg_fd)	 fds;	/* received, not yet claimed */
	struct ibuf_read	 r;
	struct msgbuf		 w;
	int			 fd;
	pid_t			 pid;
};

#define IMSGF_HASFD	1

struct imsg_hdr {
	uint32_t	 type;
	uint16_t	 len;		/* header included */
	uint16_t	 flags;
	uint32_t	 peerid;
	uint32_t	 pid;
};

struct imsg {
	struct imsg_hdr	 hdr;
	int		 fd;		/* -1 when none */
	void		*data;		/* payload, hdr.len - IMSG_HEADER_SIZE bytes */
};

/* ibuf: growable write buffers. */
struct ibuf	*ibuf_open(size_t);
struct ibuf	*ibuf_dynamic(size_t, size_t);
int		 ibuf_add(struct ibuf *, const void *, size_t);
void		*ibuf_reserve(struct ibuf *, size_t);
void		*ibuf_seek(struct ibuf *, size_t, size_t);
size_t		 ibuf_size(struct ibuf *);
size_t		 ibuf_left(struct ibuf *);
void		 ibuf_close(struct msgbuf *, struct ibuf *);
void		 ibuf_free(struct ibuf *);

void		 msgbuf_init(struct msgbuf *);
void		 msgbuf_clear(struct msgbuf *);
/* Write queued buffers: 1 progress or nothing queued, 0 peer closed, -1 error (errno). */
int		 msgbuf_write(struct msgbuf *);

void		 imsg_init(struct imsgbuf *, int);
/* Read what is available: >0 bytes, 0 EOF, -1 error (EAGAIN included). */
ssize_t		 imsg_read(struct imsgbuf *);
/*
 * Take the next complete message: >0 its length, 0 none complete yet,
 * -1 a malformed header (bad length) with errno EBADMSG; caller must close.
 */
ssize_t		 imsg_get(struct imsgbuf *, struct imsg *);
int		 imsg_compose(struct imsgbuf *, uint32_t, uint32_t, pid_t, int,
		    const void *, size_t);
struct ibuf	*imsg_create(struct imsgbuf *, uint32_t, uint32_t, pid_t, size_t);
int		 imsg_add(struct ibuf *, const void *, size_t);
void		 imsg_close(struct imsgbuf *, struct ibuf *);
void		 imsg_free(struct imsg *);
/* Write everything queued, blocking; 0 ok, -1 error. */
int		 imsg_flush(struct imsgbuf *);
void		 imsg_clear(struct imsgbuf *);

#endif
