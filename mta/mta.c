/*
 * The mta process: remote transfer.  Until remote delivery lands it
 * answers every delivery with a temporary failure, so mail to non-local
 * domains stays queued and visible in `sqmailctl show queue`.
 */
#include <sys/types.h>

#include <event.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mproc.h"
#include "msg.h"
#include "proc.h"
#include "sqmail.h"


static int	mta_paused;

static void
mta_dispatch_queue(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	struct dest	 dest;
	const char	*sender;
	uint64_t	 id, msgid;

	switch (imsg->hdr.type) {
	case IMSG_DELIVER:
		m_msg(&m, imsg);
		m_get_u64(&m, &id);
		m_get_msgid(&m, &msgid);
		m_get_string(&m, &sender);
		m_get_dest(&m, &dest);
		m_end(&m);
		if (imsg->fd != -1)
			close(imsg->fd);
		m_create(p, IMSG_DELIVER_DONE, 0, -1);
		m_add_u64(p, id);
		m_add_int(p, SQ_TEMPFAIL);
		m_add_string(p, "remote delivery not configured (#4.3.5)");
		m_close(p);
		break;
	default:
		fatalx("mta: unexpected imsg %u from queue", imsg->hdr.type);
	}
}

static void
mta_dispatch_parent(struct mproc *p, struct imsg *imsg)
{
	if (proc_common_imsg(imsg) == PROC_IMSG_NONE)
		fatalx("mta: unexpected imsg %u from parent", imsg->hdr.type);
}

static void
mta_dispatch_control(struct mproc *p, struct imsg *imsg)
{
	if (proc_common_imsg(imsg) != PROC_IMSG_NONE)
		return;
	switch (imsg->hdr.type) {
	case IMSG_CTL_PAUSE:
		mta_paused = 1;
		break;
	case IMSG_CTL_RESUME:
		mta_paused = 0;
		break;
	default:
		fatalx("mta: unexpected imsg %u from control", imsg->hdr.type);
	}
}

static void
mta_dispatch_lka(struct mproc *p, struct imsg *imsg)
{
	fatalx("mta: unexpected imsg %u from lka", imsg->hdr.type);
}

void
mta_main(void)
{
	peers[PROC_QUEUE]->handler = mta_dispatch_queue;
	peers[PROC_PARENT]->handler = mta_dispatch_parent;
	peers[PROC_CONTROL]->handler = mta_dispatch_control;
	peers[PROC_LKA]->handler = mta_dispatch_lka;
	proc_loop_init();
	event_dispatch();
	exit(0);
}
