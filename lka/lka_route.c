/*
 * Where mail for a remote domain goes: the relay of its domain block's
 * route (an address literal as is, a host name by its A and AAAA only),
 * else its MX hosts (dns.c).  The resolver starts with lka and keeps the
 * dns servers of the configuration it started with.
 *
 * `sqmailctl show routes [domain]` asks here; remote delivery will too.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <ifaddrs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dns.h"
#include "lka.h"
#include "log.h"
#include "mproc.h"
#include "proc.h"
#include "sqmail.h"

/* A show routes request waiting for the resolver. */
struct lka_route_ctl {
	struct mproc	*p;
	uint32_t	 ctlid;
	uint16_t	 port;
	int		 route;		/* via a route, not MX */
	char		 domain[SQ_DOMAIN_MAX + 1];	/* asked about */
};

static int	lka_route_ready;

/* Our names and local addresses, so that an MX pointing at us is seen. */
static void
lka_route_self(void)
{
	struct ifaddrs		*ifa, *i;
	const struct sockaddr	*addrs[DNS_SELF_ADDRS_MAX];
	const char		*names[1];
	size_t			 n = 0;

	names[0] = conf->hostname;
	if (getifaddrs(&ifa) == -1) {
		log_warn("lka: getifaddrs");
		ifa = NULL;
	}
	for (i = ifa; i != NULL && n < DNS_SELF_ADDRS_MAX; i = i->ifa_next)
		if (i->ifa_addr != NULL && (i->ifa_addr->sa_family == AF_INET ||
		    i->ifa_addr->sa_family == AF_INET6))
			addrs[n++] = i->ifa_addr;
	if (dns_set_self(names, conf->hostname[0] != '\0', addrs, n) == -1)
		log_warnx("lka: cannot tell the resolver who we are");
	if (ifa != NULL)
		freeifaddrs(ifa);
}

void
lka_route_init(void)
{
	const char	*servers;

	servers = conf->dns_servers[0] != '\0' ? conf->dns_servers : NULL;
	if (dns_init(servers, 0, 0) == -1) {
		log_warnx("lka: no resolver: remote routes cannot be looked "
		    "up");
		return;
	}
	lka_route_ready = 1;
	lka_route_self();
}

static void
lka_route_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void	*a;

	if (ss->ss_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	else
		a = &((const struct sockaddr_in *)ss)->sin_addr;
	if (inet_ntop(ss->ss_family, a, buf, len) == NULL)
		(void)strlcpy(buf, "?", len);
}

static void
lka_route_show_done(const struct dns_mx_result *res, void *arg)
{
	struct lka_route_ctl	*c = arg;
	char			 addr[INET6_ADDRSTRLEN];
	size_t			 i, j;

	if (res->status != DNS_OK) {
		ctl_end(c->p, c->ctlid, dns_status_permanent(res->status) ?
		    SQ_PERMFAIL : SQ_TEMPFAIL, res->reason);
		free(c);
		return;
	}
	ctl_line(c->p, c->ctlid, "%s via %s", c->domain, c->route ? "route" :
	    res->implicit ? "implicit-mx" : "mx");
	for (i = 0; i < res->nhosts; i++)
		for (j = 0; j < res->hosts[i].naddrs; j++) {
			lka_route_addr(&res->hosts[i].addrs[j], addr,
			    sizeof(addr));
			ctl_line(c->p, c->ctlid, "host %s pref %u addr %s "
			    "port %u", res->hosts[i].name,
			    (unsigned)res->hosts[i].pref, addr,
			    (unsigned)c->port);
		}
	ctl_end(c->p, c->ctlid, SQ_OK, "");
	free(c);
}

/* The configured routes, one line each. */
static void
lka_route_list(struct mproc *p, uint32_t ctlid)
{
	struct domain	*d;

	ctl_line(p, ctlid, "dns servers %s", conf->dns_servers[0] != '\0' ?
	    conf->dns_servers : "resolv.conf");
	TAILQ_FOREACH(d, &conf->domains, entry) {
		if (d->route_host[0] == '\0')
			continue;
		ctl_line(p, ctlid, "route %s %s%s%s:%u", d->name,
		    d->route_literal ? "[" : "", d->route_host,
		    d->route_literal ? "]" : "", (unsigned)d->route_port);
	}
	ctl_end(p, ctlid, SQ_OK, "");
}

void
lka_route_show(struct mproc *p, uint32_t ctlid, const char *domain)
{
	struct lka_route_ctl	*c;
	struct domain		*d;
	struct dns_mx_result	*res;
	int			 r;

	if (domain[0] == '\0') {
		lka_route_list(p, ctlid);
		return;
	}
	d = config_domain(conf, domain);
	if (d != NULL && d->route_host[0] == '\0') {
		ctl_line(p, ctlid, "%s local", domain);
		ctl_end(p, ctlid, SQ_OK, "");
		return;
	}
	if (!lka_route_ready) {
		ctl_end(p, ctlid, SQ_TEMPFAIL, "no resolver");
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		ctl_end(p, ctlid, SQ_TEMPFAIL, "out of memory");
		return;
	}
	c->p = p;
	c->ctlid = ctlid;
	c->port = 25;
	(void)strlcpy(c->domain, domain, sizeof(c->domain));
	if (d != NULL) {
		c->route = 1;
		c->port = d->route_port;
	}
	if (d != NULL && d->route_literal) {
		/* No lookup: the address is the one host. */
		if ((res = calloc(1, sizeof(*res))) == NULL) {
			free(c);
			ctl_end(p, ctlid, SQ_TEMPFAIL, "out of memory");
			return;
		}
		(void)strlcpy(res->domain, domain, sizeof(res->domain));
		res->nhosts = 1;
		/* An address literal fits: at most 45 characters. */
		res->hosts[0].name[0] = '[';
		(void)strlcpy(res->hosts[0].name + 1, d->route_host,
		    sizeof(res->hosts[0].name) - 2);
		(void)strlcat(res->hosts[0].name, "]",
		    sizeof(res->hosts[0].name));
		res->hosts[0].naddrs = 1;
		if (inet_pton(AF_INET, d->route_host, &((struct sockaddr_in *)
		    &res->hosts[0].addrs[0])->sin_addr) == 1)
			res->hosts[0].addrs[0].ss_family = AF_INET;
		else if (inet_pton(AF_INET6, d->route_host,
		    &((struct sockaddr_in6 *)
		    &res->hosts[0].addrs[0])->sin6_addr) == 1)
			res->hosts[0].addrs[0].ss_family = AF_INET6;
		else
			res->status = DNS_INVALID;
		lka_route_show_done(res, c);
		free(res);
		return;
	}
	r = d != NULL ? dns_host(d->route_host, lka_route_show_done, c) :
	    dns_mx(domain, lka_route_show_done, c);
	if (r == -1) {
		ctl_end(p, ctlid, SQ_TEMPFAIL, strerror(errno));
		free(c);
	}
}
