/*
 * For unit tests that run the libevent loop: run it until a flag is set
 * or a deadline passes (timed_out says which).  Include after <event.h>.
 */
#ifndef SQ_TEST_LOOP_H
#define SQ_TEST_LOOP_H

#include <sys/time.h>

static struct event	 tmo;
static int		 timed_out;

static inline void
on_timeout(int fd, short ev, void *arg)
{
	timed_out = 1;
}

/* Arm the deadline of ms milliseconds. */
static inline void
deadline_start(long ms)
{
	struct timeval	 tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	timed_out = 0;
	evtimer_set(&tmo, on_timeout, NULL);
	evtimer_add(&tmo, &tv);
}

/* Run the loop until *done or ms milliseconds pass. */
static inline void
run_for(int *done, long ms)
{
	deadline_start(ms);
	while (!*done && !timed_out)
		event_loop(EVLOOP_ONCE);
	evtimer_del(&tmo);
}

#endif
