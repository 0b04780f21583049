/*
 * What each remote address did lately, for `sqmailctl show hosts`: the
 * sessions open to it now, connections and deliveries since start, and
 * the last TLS state and error.  At most MTA_HOSTSTATS_MAX addresses are
 * kept; the one unused longest makes room for a new one.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <bsd/sys/queue.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mproc.h"
#include "mta.h"
#include "proc.h"

#define MTA_HOSTSTATS_MAX	1024

struct mta_hoststat {
	TAILQ_ENTRY(mta_hoststat) entry;	/* most recently used first */
	char			 addr[64];	/* "192.0.2.1" or "2001:db8::1" */
	uint16_t		 port;
	char			 name[256];
	int			 sessions;
	uint64_t		 connections;
	uint64_t		 delivered;	/* transactions that got 2xx */
	time_t			 last;
	char			 tls[128];	/* "" none yet, or "version, cipher" */
	char			 error[MTA_TEXT_MAX];
};

static TAILQ_HEAD(mta_hoststatq, mta_hoststat) mta_hoststats =
    TAILQ_HEAD_INITIALIZER(mta_hoststats);
static size_t			  mta_nhoststats;

struct mta_hoststat *
mta_host_get(const char *addr, uint16_t port, const char *name)
{
	struct mta_hoststat	*h;

	TAILQ_FOREACH(h, &mta_hoststats, entry)
		if (h->port == port && strcmp(h->addr, addr) == 0)
			break;
	if (h == NULL) {
		if (mta_nhoststats >= MTA_HOSTSTATS_MAX) {
			/* The least recently used one without a session. */
			TAILQ_FOREACH_REVERSE(h, &mta_hoststats, mta_hoststatq,
			    entry)
				if (h->sessions == 0)
					break;
			if (h == NULL)
				return NULL;
			TAILQ_REMOVE(&mta_hoststats, h, entry);
			memset(h, 0, sizeof(*h));
		} else if ((h = calloc(1, sizeof(*h))) == NULL)
			return NULL;
		else
			mta_nhoststats++;
		(void)strlcpy(h->addr, addr, sizeof(h->addr));
		h->port = port;
	} else
		TAILQ_REMOVE(&mta_hoststats, h, entry);
	(void)strlcpy(h->name, name, sizeof(h->name));
	h->last = time(NULL);
	TAILQ_INSERT_HEAD(&mta_hoststats, h, entry);
	return h;
}

/* The record of a task's host, and its address as text in addr. */
struct mta_hoststat *
mta_host_of(const struct mta_host *h, char *addr, size_t len)
{
	const struct sockaddr_in6	*sin6;
	const struct sockaddr_in	*sin;
	const void			*a;
	uint16_t			 port;

	if (h->ss.ss_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)&h->ss;
		a = &sin6->sin6_addr;
		port = ntohs(sin6->sin6_port);
	} else {
		sin = (const struct sockaddr_in *)&h->ss;
		a = &sin->sin_addr;
		port = ntohs(sin->sin_port);
	}
	if (inet_ntop(h->ss.ss_family, a, addr, len) == NULL)
		(void)strlcpy(addr, "?", len);
	return mta_host_get(addr, port, h->name);
}

int
mta_host_sessions(const struct mta_hoststat *h)
{
	return h != NULL ? h->sessions : 0;
}

void
mta_host_session(struct mta_hoststat *h, int delta)
{
	if (h == NULL)
		return;
	h->sessions += delta;
	if (delta > 0)
		h->connections++;
	h->last = time(NULL);
}

void
mta_host_result(struct mta_hoststat *h, int delivered, const char *tls,
    const char *error)
{
	if (h == NULL)
		return;
	if (delivered)
		h->delivered++;
	if (tls != NULL)
		(void)strlcpy(h->tls, tls, sizeof(h->tls));
	if (error != NULL)
		(void)strlcpy(h->error, error, sizeof(h->error));
	h->last = time(NULL);
}

void
mta_hosts_show(struct mproc *p, uint32_t ctlid)
{
	struct mta_hoststat	*h;
	char			 err[MTA_TEXT_MAX];
	time_t			 now = time(NULL);
	size_t			 i;

	TAILQ_FOREACH(h, &mta_hoststats, entry) {
		/* One line per host: the error's line breaks become spaces. */
		(void)strlcpy(err, h->error[0] ? h->error : "-", sizeof(err));
		for (i = 0; err[i] != '\0'; i++)
			if (err[i] == '\n')
				err[i] = ' ';
		ctl_line(p, ctlid, "host=%s port=%u name=%s sessions=%d "
		    "connections=%" PRIu64 " delivered=%" PRIu64 " last=%lld "
		    "tls=%s error=%s", h->addr, (unsigned)h->port, h->name,
		    h->sessions, h->connections, h->delivered,
		    (long long)(now - h->last), h->tls[0] ? h->tls : "none",
		    err);
	}
	ctl_end(p, ctlid, SQ_OK, "");
}
