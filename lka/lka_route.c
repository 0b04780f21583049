/*
 * Where mail for a remote domain goes: the relay of its domain block's
 * route (an address literal as is, a host name by its A and AAAA only),
 * else its MX hosts (dns.c).  The resolver starts with lka and keeps the
 * dns servers of the configuration it started with.
 *
 * `sqmailctl show routes [domain]` asks here, and so does the mta.
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
#include "msg.h"
#include "proc.h"
#include "sqmail.h"

/*
 * One lookup: who asked (control or mta), and what the route adds to the
 * resolver's answer.
 */
struct lka_route_req {
	struct mproc	*p;
	uint64_t	 reqid;		/* mta's request, or control's ctlid */
	int		 ctl;		/* for show routes */
	int		 nullsender;	/* a bounce: the bounce route */
	uint16_t	 port;
	int		 route;		/* via a route, not MX */
	char		 domain[SQ_DOMAIN_MAX + 1];	/* asked about */
	int		 tls;		/* enum tls_policy */
	char		 fingerprint[65];
	int		 smtps;		/* the route's options */
	char		 auth_user[128];
	char		 auth_secret[256];
	int		 auth_plaintext;	/* AUTH without TLS too */
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

/* show routes DOMAIN: a line per address, then the end. */
static void
lka_route_show_done(struct lka_route_req *c, const struct dns_mx_result *res)
{
	char		 addr[INET6_ADDRSTRLEN];
	uint32_t	 ctlid = (uint32_t)c->reqid;
	size_t		 i, j;

	if (res->status != DNS_OK) {
		ctl_end(c->p, ctlid, dns_status_permanent(res->status) ?
		    SQ_PERMFAIL : SQ_TEMPFAIL, res->reason);
		return;
	}
	ctl_line(c->p, ctlid, "%s via %s", c->domain, c->route ? "route" :
	    res->implicit ? "implicit-mx" : "mx");
	if (c->tls != TLSP_OPPORTUNISTIC || c->smtps || c->auth_user[0])
		ctl_line(c->p, ctlid, "tls %s%s%s%s%s%s%s",
		    config_tls_name(c->tls),
		    c->fingerprint[0] ? " " : "", c->fingerprint,
		    c->smtps ? " smtps" : "", c->auth_user[0] ? " auth " : "",
		    c->auth_user, c->auth_plaintext ? " plaintext" : "");
	for (i = 0; i < res->nhosts; i++)
		for (j = 0; j < res->hosts[i].naddrs; j++) {
			lka_route_addr(&res->hosts[i].addrs[j], addr,
			    sizeof(addr));
			ctl_line(c->p, ctlid, "host %s pref %u addr %s port %u",
			    res->hosts[i].name, (unsigned)res->hosts[i].pref,
			    addr, (unsigned)c->port);
		}
	ctl_end(c->p, ctlid, SQ_OK, "");
}

/*
 * mta's request: IMSG_MTA_ROUTE_HOST per address in the order to try,
 * the port in the address, then IMSG_MTA_ROUTE_END.
 */
static void
lka_route_mta_done(struct lka_route_req *c, const struct dns_mx_result *res)
{
	struct sockaddr_storage	 ss;
	size_t			 i, j;

	for (i = 0; res->status == DNS_OK && i < res->nhosts; i++)
		for (j = 0; j < res->hosts[i].naddrs; j++) {
			ss = res->hosts[i].addrs[j];
			if (ss.ss_family == AF_INET6)
				((struct sockaddr_in6 *)&ss)->sin6_port =
				    htons(c->port);
			else
				((struct sockaddr_in *)&ss)->sin_port =
				    htons(c->port);
			m_create(c->p, IMSG_MTA_ROUTE_HOST, 0, -1);
			m_add_u64(c->p, c->reqid);
			m_add_string(c->p, res->hosts[i].name);
			m_add_sockaddr(c->p, (struct sockaddr *)&ss);
			m_close(c->p);
		}
	m_create(c->p, IMSG_MTA_ROUTE_END, 0, -1);
	m_add_u64(c->p, c->reqid);
	m_add_int(c->p, res->status == DNS_OK ? SQ_OK :
	    dns_status_permanent(res->status) ? SQ_PERMFAIL : SQ_TEMPFAIL);
	m_add_string(c->p, res->status == DNS_OK ? "" : res->reason);
	m_add_int(c->p, c->tls);
	m_add_string(c->p, c->fingerprint);
	m_add_int(c->p, c->smtps);
	m_add_string(c->p, c->auth_user);
	m_add_string(c->p, c->auth_secret);
	m_add_int(c->p, c->auth_plaintext);
	m_close(c->p);
}

static void
lka_route_done(const struct dns_mx_result *res, void *arg)
{
	struct lka_route_req	*c = arg;

	if (c->ctl)
		lka_route_show_done(c, res);
	else
		lka_route_mta_done(c, res);
	freezero(c, sizeof(*c));	/* the AUTH secret */
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
	if ((d = conf->bounce_route) != NULL && d->route_host[0] != '\0')
		ctl_line(p, ctlid, "bounce route %s%s%s:%u",
		    d->route_literal ? "[" : "", d->route_host,
		    d->route_literal ? "]" : "", (unsigned)d->route_port);
	ctl_end(p, ctlid, SQ_OK, "");
}

/* Answer c: from the route, at once for a literal, else by the resolver. */
static void
lka_route_lookup(struct lka_route_req *c)
{
	struct domain		*d;
	struct dns_mx_result	*res;
	int			 r;

	d = config_domain(conf, c->domain);
	if (d != NULL && !d->remote)
		d = NULL;	/* local here: the caller knew that */
	if (c->nullsender && conf->bounce_route != NULL &&
	    conf->bounce_route->route_host[0] != '\0')
		d = conf->bounce_route;
	if (d != NULL) {
		/* Copied: a reload may free conf before the answer. */
		c->tls = d->tls;
		(void)strlcpy(c->fingerprint, d->tls_fingerprint,
		    sizeof(c->fingerprint));
	}
	if (d != NULL && d->route_host[0] == '\0')
		d = NULL;	/* a tls policy, no route: its MX hosts */
	c->port = 25;
	if (d != NULL) {
		c->route = 1;
		c->port = d->route_port;
		c->smtps = d->route_smtps;
		(void)strlcpy(c->auth_user, d->auth_user,
		    sizeof(c->auth_user));
		(void)strlcpy(c->auth_secret, d->auth_secret,
		    sizeof(c->auth_secret));
		c->auth_plaintext = d->auth_plaintext;
	}
	if ((res = calloc(1, sizeof(*res))) == NULL) {
		log_warn("lka: route");
		free(c);
		return;
	}
	(void)strlcpy(res->domain, c->domain, sizeof(res->domain));
	if (d != NULL && d->route_literal) {
		/* No lookup: the address is the one host. */
		res->nhosts = 1;
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
		lka_route_done(res, c);
		free(res);
		return;
	}
	if (!lka_route_ready) {
		res->status = DNS_TEMPFAIL;
		(void)strlcpy(res->reason, "no resolver", sizeof(res->reason));
		r = -1;
	} else
		r = d != NULL ? dns_host(d->route_host, lka_route_done, c) :
		    dns_mx(c->domain, lka_route_done, c);
	if (r == -1) {
		res->status = DNS_TEMPFAIL;
		if (res->reason[0] == '\0')
			(void)strlcpy(res->reason, strerror(errno),
			    sizeof(res->reason));
		lka_route_done(res, c);
	}
	free(res);
}

static struct lka_route_req *
lka_route_req(struct mproc *p, uint64_t reqid, int ctl, const char *domain)
{
	struct lka_route_req	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->p = p;
	c->reqid = reqid;
	c->ctl = ctl;
	(void)strlcpy(c->domain, domain, sizeof(c->domain));
	return c;
}

void
lka_route_show(struct mproc *p, uint32_t ctlid, const char *domain)
{
	struct lka_route_req	*c;
	struct domain		*d;

	if (domain[0] == '\0') {
		lka_route_list(p, ctlid);
		return;
	}
	d = config_domain(conf, domain);
	if (d != NULL && !d->remote) {
		ctl_line(p, ctlid, "%s local", domain);
		ctl_end(p, ctlid, SQ_OK, "");
		return;
	}
	if ((c = lka_route_req(p, ctlid, 1, domain)) == NULL) {
		ctl_end(p, ctlid, SQ_TEMPFAIL, "out of memory");
		return;
	}
	lka_route_lookup(c);
}

void
lka_route_mta(struct mproc *p, uint64_t reqid, const char *domain,
    int nullsender)
{
	struct lka_route_req	*c;

	if ((c = lka_route_req(p, reqid, 0, domain)) == NULL) {
		m_create(p, IMSG_MTA_ROUTE_END, 0, -1);
		m_add_u64(p, reqid);
		m_add_int(p, SQ_TEMPFAIL);
		m_add_string(p, "out of memory in lka");
		m_add_int(p, TLSP_OPPORTUNISTIC);
		m_add_string(p, "");
		m_add_int(p, 0);
		m_add_string(p, "");
		m_add_string(p, "");
		m_close(p);
		return;
	}
	c->nullsender = nullsender;
	lka_route_lookup(c);
}
