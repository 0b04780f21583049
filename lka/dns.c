/*
 * lka/dns.c: MX resolution for remote delivery over c-ares, on the
 * libevent loop of the process.
 *
 * c-ares tells dns_sock_state() which of its sockets it wants to read or
 * write; each gets a persistent event that hands it back through
 * ares_process_fd().  One timer, re-armed from ares_timeout() after every
 * call into c-ares, drives its retries and timeouts.
 *
 * One dns_mx() is one request: the MX query, then the A and AAAA queries
 * of every host left after the ordering, the cut and the self check by
 * name, all at once; when the last answer is in, the self check by
 * address, the hosts without an address dropped, and the result handed
 * to the caller from a zero timer, never from within dns_mx().
 * Answers are read by the pure functions of dns_parse.c.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/queue.h>
#include <sys/time.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ares.h>
#include <errno.h>
#include <event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "log.h"

#define DNS_CLASS_IN	1
#define DNS_TYPE_MX	15

/* A socket c-ares asked us to watch. */
struct dns_sock {
	TAILQ_ENTRY(dns_sock)	 entry;
	ares_socket_t		 fd;
	short			 events;
	struct event		 ev;
};

struct dns_req;

/* What one c-ares query of a request is for (its callback argument). */
struct dns_query {
	struct dns_req		*req;
	size_t			 host;		/* index into res.hosts */
	int			 family;	/* AF_INET: A, AF_INET6: AAAA */
};

/* One host's addresses while its A and AAAA answers come in. */
struct dns_work {
	struct sockaddr_in	 v4[DNS_MX_ADDRS_MAX];
	struct sockaddr_in6	 v6[DNS_MX_ADDRS_MAX];
	size_t			 n4;
	size_t			 n6;
	int			 temp;		/* c-ares status of a failure */
	int			 tempfamily;	/* ... of its A or AAAA query */
};

struct dns_req {
	TAILQ_ENTRY(dns_req)	 entry;
	dns_mx_cb		 cb;
	void			*arg;
	int			 pending;	/* queries (and guards) out */
	int			 addrs;		/* address queries asked */
	int			 selfcut;	/* hosts cut by our own name */
	int			 noself;	/* a relay host: no self check */
	int			 done;		/* ev_done armed */
	struct event		 ev_done;
	struct dns_query	 qmx;
	struct dns_query	 qaddr[DNS_MX_HOSTS_MAX][2];
	struct dns_work		 work[DNS_MX_HOSTS_MAX];
	struct dns_mx_result	 res;
};

static ares_channel		 dns_channel;
static int			 dns_ready;
static int			 dns_stopping;
static struct event		 dns_timer;
static TAILQ_HEAD(, dns_sock)	 dns_socks = TAILQ_HEAD_INITIALIZER(dns_socks);
static TAILQ_HEAD(, dns_req)	 dns_reqs = TAILQ_HEAD_INITIALIZER(dns_reqs);

static char		 dns_self_names[DNS_SELF_NAMES_MAX][DNS_NAME_MAX + 1];
static size_t		 dns_self_nnames;
static struct sockaddr_storage dns_self_addrs[DNS_SELF_ADDRS_MAX];
static size_t		 dns_self_naddrs;

static int	dns_request(const char *, dns_mx_cb, void *, int);
static void	dns_reason(struct dns_mx_result *, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));

const char *
dns_status_str(enum dns_status status)
{
	switch (status) {
	case DNS_OK:
		return "ok";
	case DNS_TEMPFAIL:
		return "tempfail";
	case DNS_NXDOMAIN:
		return "nxdomain";
	case DNS_NULLMX:
		return "nullmx";
	case DNS_NOHOST:
		return "nohost";
	case DNS_LOOP:
		return "loop";
	case DNS_INVALID:
		return "invalid";
	}
	return "unknown";
}

int
dns_status_permanent(enum dns_status status)
{
	return status != DNS_OK && status != DNS_TEMPFAIL;
}

/* The result's text is for the log: a truncated one is still useful. */
static void
dns_reason(struct dns_mx_result *res, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	(void)vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
	va_end(ap);
}

static void
dns_timer_update(void)
{
	struct timeval	 tv, *tvp;

	if (!dns_ready || dns_stopping)
		return;
	if ((tvp = ares_timeout(dns_channel, NULL, &tv)) == NULL)
		evtimer_del(&dns_timer);
	else
		evtimer_add(&dns_timer, tvp);
}

static void
dns_on_timer(int fd, short ev, void *arg)
{
	ares_process_fd(dns_channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_timer_update();
}

static void
dns_on_sock(int fd, short ev, void *arg)
{
	ares_process_fd(dns_channel, (ev & EV_READ) ? fd : ARES_SOCKET_BAD,
	    (ev & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	dns_timer_update();
}

/*
 * c-ares opens, closes or changes interest in a socket.  If no event can
 * be had the socket is not watched and its query ends by timeout.
 */
static void
dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_sock	*s;
	short		 events;

	TAILQ_FOREACH(s, &dns_socks, entry)
		if (s->fd == fd)
			break;
	events = (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
	if (events == 0) {
		if (s != NULL) {
			event_del(&s->ev);
			TAILQ_REMOVE(&dns_socks, s, entry);
			free(s);
		}
		return;
	}
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL) {
			log_warn("dns: socket %d not watched", fd);
			return;
		}
		s->fd = fd;
		TAILQ_INSERT_TAIL(&dns_socks, s, entry);
	} else if (s->events == events)
		return;
	else
		event_del(&s->ev);
	s->events = events;
	event_set(&s->ev, fd, events | EV_PERSIST, dns_on_sock, s);
	if (event_add(&s->ev, NULL) == -1)
		log_warnx("dns: socket %d not watched", fd);
}

int
dns_init(const char *servers, int timeout_ms, int tries)
{
	static char		 lookups[] = "b";	/* DNS, no /etc/hosts */
	struct ares_options	 opts;
	int			 r;

	if (dns_ready) {
		log_warnx("dns: already set up");
		return -1;
	}
	if ((r = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		log_warnx("dns: c-ares: %s", ares_strerror(r));
		return -1;
	}
	memset(&opts, 0, sizeof(opts));
	opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	opts.timeout = timeout_ms > 0 ? timeout_ms : DNS_TIMEOUT_MS;
	opts.tries = tries > 0 ? tries : DNS_TRIES;
	opts.domains = NULL;
	opts.ndomains = 0;
	opts.lookups = lookups;
	opts.sock_state_cb = dns_sock_state;
	opts.sock_state_cb_data = NULL;
	r = ares_init_options(&dns_channel, &opts, ARES_OPT_FLAGS |
	    ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_DOMAINS |
	    ARES_OPT_LOOKUPS | ARES_OPT_SOCK_STATE_CB);
	if (r != ARES_SUCCESS) {
		log_warnx("dns: c-ares: %s", ares_strerror(r));
		ares_library_cleanup();
		return -1;
	}
	if (servers != NULL) {
		if (*servers == '\0')
			r = ARES_EBADSTR;
		else
			r = ares_set_servers_ports_csv(dns_channel, servers);
		if (r != ARES_SUCCESS) {
			log_warnx("dns: servers \"%s\": %s", servers,
			    ares_strerror(r));
			ares_destroy(dns_channel);
			ares_library_cleanup();
			return -1;
		}
	}
	evtimer_set(&dns_timer, dns_on_timer, NULL);
	dns_ready = 1;
	dns_stopping = 0;
	return 0;
}

void
dns_shutdown(void)
{
	struct dns_req	*req;
	struct dns_sock	*s;

	if (!dns_ready)
		return;
	/* Queries end with ARES_EDESTRUCTION: the callbacks ignore it. */
	dns_stopping = 1;
	ares_destroy(dns_channel);
	while ((req = TAILQ_FIRST(&dns_reqs)) != NULL) {
		TAILQ_REMOVE(&dns_reqs, req, entry);
		evtimer_del(&req->ev_done);
		free(req);
	}
	while ((s = TAILQ_FIRST(&dns_socks)) != NULL) {
		event_del(&s->ev);
		TAILQ_REMOVE(&dns_socks, s, entry);
		free(s);
	}
	evtimer_del(&dns_timer);
	ares_library_cleanup();
	dns_ready = 0;
	dns_stopping = 0;
}

int
dns_set_self(const char *const *names, size_t nnames,
    const struct sockaddr *const *addrs, size_t naddrs)
{
	char			 nm[DNS_SELF_NAMES_MAX][DNS_NAME_MAX + 1];
	struct sockaddr_storage	 ad[DNS_SELF_ADDRS_MAX];
	size_t			 i;

	if (nnames > DNS_SELF_NAMES_MAX || naddrs > DNS_SELF_ADDRS_MAX) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < nnames; i++)
		if (names[i] == NULL || dns_name_check(names[i],
		    strlen(names[i]), nm[i], sizeof(nm[i])) == -1) {
			errno = EINVAL;
			return -1;
		}
	for (i = 0; i < naddrs; i++) {
		memset(&ad[i], 0, sizeof(ad[i]));
		if (addrs[i] == NULL)
			goto bad;
		if (addrs[i]->sa_family == AF_INET)
			memcpy(&ad[i], addrs[i], sizeof(struct sockaddr_in));
		else if (addrs[i]->sa_family == AF_INET6)
			memcpy(&ad[i], addrs[i], sizeof(struct sockaddr_in6));
		else
			goto bad;
	}
	memcpy(dns_self_names, nm, nnames * sizeof(nm[0]));
	dns_self_nnames = nnames;
	memcpy(dns_self_addrs, ad, naddrs * sizeof(ad[0]));
	dns_self_naddrs = naddrs;
	return 0;
 bad:
	errno = EINVAL;
	return -1;
}

static int
dns_self_name(const char *name)
{
	size_t	 i;

	for (i = 0; i < dns_self_nnames; i++)
		if (strcmp(dns_self_names[i], name) == 0)
			return 1;
	return 0;
}

static int
dns_self_addr(const struct sockaddr *sa)
{
	size_t	 i;

	for (i = 0; i < dns_self_naddrs; i++)
		if (dns_addr_equal((const struct sockaddr *)&dns_self_addrs[i],
		    sa))
			return 1;
	return 0;
}

static int
dns_work_self(const struct dns_work *w)
{
	size_t	 i;

	for (i = 0; i < w->n4; i++)
		if (dns_self_addr((const struct sockaddr *)&w->v4[i]))
			return 1;
	for (i = 0; i < w->n6; i++)
		if (dns_self_addr((const struct sockaddr *)&w->v6[i]))
			return 1;
	return 0;
}

/* The result is final: hand it over from the loop. */
static void
dns_deliver(int fd, short ev, void *arg)
{
	struct dns_req	*req = arg;

	TAILQ_REMOVE(&dns_reqs, req, entry);
	log_debug("dns: %s: MX: %s: %s", req->res.domain[0] != '\0' ?
	    req->res.domain : "?", dns_status_str(req->res.status),
	    req->res.reason);
	req->cb(&req->res, req->arg);
	free(req);
}

/*
 * The last address answer is in: drop what the self check by address
 * says is no better than us and the hosts without an address, and
 * interleave each host's addresses, IPv6 first.
 */
static void
dns_hosts_final(struct dns_req *req)
{
	struct dns_mx_result	*res = &req->res;
	struct dns_mx_host	*h;
	struct dns_work		*w;
	char			 selfname[DNS_NAME_MAX + 1];
	char			 tempname[DNS_NAME_MAX + 1];
	size_t			 i, j, k4, k6, nself = 0;
	int			 self = 0, temp = 0, tempfamily = 0;

	for (i = 0; i < res->nhosts; i++)
		if (!req->noself && dns_work_self(&req->work[i])) {
			nself = res->hosts[i].pref;
			self = 1;
			(void)strlcpy(selfname, res->hosts[i].name,
			    sizeof(selfname));
			break;		/* hosts are in preference order */
		}
	for (i = j = 0; i < res->nhosts; i++) {
		if (self && res->hosts[i].pref >= nself)
			break;
		w = &req->work[i];
		if (w->n4 + w->n6 == 0) {
			if (w->temp != 0 && temp == 0) {
				temp = w->temp;
				tempfamily = w->tempfamily;
				(void)strlcpy(tempname, res->hosts[i].name,
				    sizeof(tempname));
			}
			continue;
		}
		h = &res->hosts[j++];
		if (h != &res->hosts[i]) {
			(void)strlcpy(h->name, res->hosts[i].name,
			    sizeof(h->name));
			h->pref = res->hosts[i].pref;
		}
		h->naddrs = k4 = k6 = 0;
		while (h->naddrs < DNS_MX_ADDRS_MAX &&
		    (k4 < w->n4 || k6 < w->n6)) {
			if (k6 < w->n6) {
				memset(&h->addrs[h->naddrs], 0,
				    sizeof(h->addrs[0]));
				memcpy(&h->addrs[h->naddrs++], &w->v6[k6++],
				    sizeof(w->v6[0]));
			}
			if (k4 < w->n4 && h->naddrs < DNS_MX_ADDRS_MAX) {
				memset(&h->addrs[h->naddrs], 0,
				    sizeof(h->addrs[0]));
				memcpy(&h->addrs[h->naddrs++], &w->v4[k4++],
				    sizeof(w->v4[0]));
			}
		}
	}
	res->nhosts = j;
	if (j > 0) {
		res->status = DNS_OK;
		dns_reason(res, "%zu mail host%s for %s%s", j,
		    j == 1 ? "" : "s", res->domain,
		    self || req->selfcut ? " preferred over us" : "");
	} else if (temp != 0) {
		res->status = DNS_TEMPFAIL;
		dns_reason(res, "no address for a mail host of %s yet: %s %s: "
		    "%s", res->domain, tempname, tempfamily == AF_INET ? "A" :
		    "AAAA", ares_strerror(temp));
	} else if (self) {
		res->status = DNS_LOOP;
		dns_reason(res, "MX for %s points back at us (%s, "
		    "preference %zu)", res->domain, selfname, nself);
	} else {
		res->status = DNS_NOHOST;
		dns_reason(res, "no mail host for %s has an address",
		    res->domain);
	}
}

/* No query of req is out any more: finish it. */
static void
dns_check(struct dns_req *req)
{
	struct timeval	 zero = { 0, 0 };

	if (req->pending > 0 || req->done)
		return;
	if (req->res.status == DNS_OK && req->addrs)
		dns_hosts_final(req);
	req->done = 1;
	evtimer_add(&req->ev_done, &zero);
}

static void
dns_addr_done(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct dns_query	*q = arg;
	struct dns_req		*req;
	struct dns_work		*w;
	struct sockaddr_storage	 ss[DNS_MX_ADDRS_MAX];
	int			 n, i;

	if (status == ARES_EDESTRUCTION || dns_stopping)
		return;
	req = q->req;
	req->pending--;
	w = &req->work[q->host];
	n = 0;
	if (status == ARES_SUCCESS) {
		n = dns_addr_answer(abuf, alen < 0 ? 0 : (size_t)alen,
		    q->family, ss, DNS_MX_ADDRS_MAX);
		if (n == -1)
			status = ARES_EBADRESP;
	}
	if (status != ARES_SUCCESS && status != ARES_ENODATA &&
	    status != ARES_ENOTFOUND) {
		if (w->temp == 0) {
			w->temp = status;
			w->tempfamily = q->family;
		}
		n = 0;
	}
	for (i = 0; i < n; i++) {
		if (q->family == AF_INET && w->n4 < DNS_MX_ADDRS_MAX)
			memcpy(&w->v4[w->n4++], &ss[i], sizeof(w->v4[0]));
		else if (q->family == AF_INET6 && w->n6 < DNS_MX_ADDRS_MAX)
			memcpy(&w->v6[w->n6++], &ss[i], sizeof(w->v6[0]));
	}
	dns_check(req);
}

static void
dns_query_addr(struct dns_req *req, size_t host, int family)
{
	struct dns_query	*q;

	q = &req->qaddr[host][family == AF_INET6];
	q->req = req;
	q->host = host;
	q->family = family;
	req->pending++;
	ares_query(dns_channel, req->res.hosts[host].name, DNS_CLASS_IN,
	    family == AF_INET ? DNS_TYPE_A : DNS_TYPE_AAAA, dns_addr_done, q);
}

/*
 * The hosts are known: the self check by name first (no address needed
 * for what it drops), then A and AAAA of every host left.
 */
static void
dns_hosts_lookup(struct dns_req *req)
{
	struct dns_mx_result	*res = &req->res;
	size_t			 i, n;
	unsigned int		 pref;

	for (i = 0; i < res->nhosts; i++)
		if (!req->noself && dns_self_name(res->hosts[i].name))
			break;
	if (i < res->nhosts) {
		/* Hosts are in order: keep those better than us. */
		pref = res->hosts[i].pref;
		for (n = 0; n < res->nhosts && res->hosts[n].pref < pref; n++)
			;
		if (n == 0) {
			res->status = DNS_LOOP;
			dns_reason(res, "MX for %s points back at us (%s, "
			    "preference %u)", res->domain, res->hosts[i].name,
			    pref);
			res->nhosts = 0;
			return;
		}
		res->nhosts = n;
		req->selfcut = 1;
	}
	req->addrs = 1;
	req->pending++;		/* answers may come before the last ask */
	for (i = 0; i < res->nhosts; i++) {
		dns_query_addr(req, i, AF_INET6);
		dns_query_addr(req, i, AF_INET);
	}
	req->pending--;
}

static void
dns_mx_done(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct dns_query	*q = arg;
	struct dns_req		*req;
	struct dns_mx_result	*res;

	if (status == ARES_EDESTRUCTION || dns_stopping)
		return;
	req = q->req;
	res = &req->res;
	req->pending--;
	switch (status) {
	case ARES_SUCCESS:
		dns_mx_answer(abuf, alen < 0 ? 0 : (size_t)alen, res->domain,
		    res);
		break;
	case ARES_ENODATA:
		dns_mx_implicit(res->domain, res);
		break;
	case ARES_ENOTFOUND:
		res->status = DNS_NXDOMAIN;
		dns_reason(res, "%s: no such domain", res->domain);
		break;
	default:
		res->status = DNS_TEMPFAIL;
		dns_reason(res, "MX lookup for %s: %s", res->domain,
		    ares_strerror(status));
		break;
	}
	if (res->status == DNS_OK)
		dns_hosts_lookup(req);
	dns_check(req);
}

int
dns_mx(const char *domain, dns_mx_cb cb, void *arg)
{
	return dns_request(domain, cb, arg, 1);
}

int
dns_host(const char *host, dns_mx_cb cb, void *arg)
{
	return dns_request(host, cb, arg, 0);
}

/* One request: mx, the MX query first; else host is the only host. */
static int
dns_request(const char *domain, dns_mx_cb cb, void *arg, int mx)
{
	struct dns_req	*req;
	size_t		 i;

	if (!dns_ready || dns_stopping) {
		errno = ENXIO;
		return -1;
	}
	if ((req = calloc(1, sizeof(*req))) == NULL)
		return -1;
	req->cb = cb;
	req->arg = arg;
	evtimer_set(&req->ev_done, dns_deliver, req);
	TAILQ_INSERT_TAIL(&dns_reqs, req, entry);

	if (dns_name_check(domain, strlen(domain), req->res.domain,
	    sizeof(req->res.domain)) == -1) {
		/* Kept for the log, printable and cut. */
		for (i = 0; domain[i] != '\0' &&
		    i < sizeof(req->res.domain) - 1; i++)
			req->res.domain[i] = (domain[i] > 0x20 &&
			    domain[i] < 0x7f) ? domain[i] : '?';
		req->res.domain[i] = '\0';
		req->res.status = DNS_INVALID;
		dns_reason(&req->res, "not a domain name to look up");
		dns_check(req);
		return 0;
	}
	if (!mx) {
		req->noself = 1;
		dns_mx_implicit(req->res.domain, &req->res);
		req->pending = 1;	/* a guard while we ask */
		dns_hosts_lookup(req);
		req->pending--;
		dns_check(req);
		dns_timer_update();
		return 0;
	}
	req->qmx.req = req;
	req->pending = 2;	/* the MX query, and a guard while we ask */
	ares_query(dns_channel, req->res.domain, DNS_CLASS_IN, DNS_TYPE_MX,
	    dns_mx_done, &req->qmx);
	req->pending--;
	dns_check(req);
	dns_timer_update();
	return 0;
}
