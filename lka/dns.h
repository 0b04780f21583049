/*
 * lka/dns.c, lka/dns_parse.c: asynchronous DNS for remote delivery (RFC 5321 section 5,
 * RFC 7505, RFC 2181): which hosts, in which order, at which addresses
 * take mail for a domain.  c-ares does the queries on the process's
 * libevent loop; nothing here blocks.
 *
 * Limits: at most DNS_MX_HOSTS_MAX hosts (the best ones: preference
 * ascending, equal preferences in random order, then cut) and at most
 * DNS_MX_ADDRS_MAX addresses per host (IPv6 and IPv4 interleaved, IPv6
 * first, each family in the resolver's order).
 *
 * Names: a domain or an MX target is 1..DNS_NAME_MAX octets without the
 * one final dot it may have, of labels of 1..DNS_LABEL_MAX letters,
 * digits, '-' and '_' (tolerated: it occurs in real data and is harmless
 * here), no label starting or ending with '-', and a last label that is
 * not all digits (so "192.0.2.1" is no name: an address literal is not
 * for dns_mx()).  Names are kept in lower case without the final dot.
 * An MX target that breaks these rules is skipped like one without an
 * address.
 */
#ifndef SQ_DNS_H
#define SQ_DNS_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#define DNS_NAME_MAX		253	/* octets in a name, no final dot */
#define DNS_LABEL_MAX		63	/* octets in a label */
#define DNS_MX_HOSTS_MAX	32	/* hosts in a result */
#define DNS_MX_ADDRS_MAX	16	/* addresses of one host */
#define DNS_SELF_NAMES_MAX	32	/* names given to dns_set_self() */
#define DNS_SELF_ADDRS_MAX	256	/* addresses given to dns_set_self() */
#define DNS_REASON_MAX		256	/* a result's text, NUL included */
#define DNS_TYPE_A		1	/* RFC 1035 */
#define DNS_TYPE_AAAA		28	/* RFC 3596 */

/*
 * Per query: the first try waits DNS_TIMEOUT_MS, and c-ares doubles the
 * wait each round through the server list; DNS_TRIES rounds.  With one
 * server that is 2 + 4 + 8 = 14 s at worst for one query; the A and AAAA
 * queries of the MX hosts run in parallel, after the MX query.
 */
#define DNS_TIMEOUT_MS		2000
#define DNS_TRIES		3

enum dns_status {
	DNS_OK = 0,	/* hosts[0 .. nhosts - 1], each with an address */
	DNS_TEMPFAIL,	/* SERVFAIL, REFUSED, timeout, bad answer: later */
	DNS_NXDOMAIN,	/* the domain does not exist */
	DNS_NULLMX,	/* RFC 7505 null MX: the domain takes no mail */
	DNS_NOHOST,	/* no MX host (or the domain itself) has an address */
	DNS_LOOP,	/* the best MX is us (RFC 5321 5.1) */
	DNS_INVALID	/* not a domain name dns_mx() looks up */
};

struct dns_mx_host {
	char			 name[DNS_NAME_MAX + 1];
	uint16_t		 pref;
	size_t			 naddrs;
	struct sockaddr_storage	 addrs[DNS_MX_ADDRS_MAX];
};

struct dns_mx_result {
	enum dns_status		 status;
	char			 domain[DNS_NAME_MAX + 1];
	int			 implicit;	/* no MX: the domain, pref 0 */
	char			 reason[DNS_REASON_MAX]; /* for the log */
	size_t			 nhosts;
	struct dns_mx_host	 hosts[DNS_MX_HOSTS_MAX];
};

/* About 66 KiB: off small stacks.  Valid during the callback only. */
typedef void	(*dns_mx_cb)(const struct dns_mx_result *, void *);

/*
 * Set up the resolver on the current libevent base (event_init()).
 * servers: NULL for those of /etc/resolv.conf, or "ip[:port],..."
 * ("[ipv6]:port" with a port).  timeout_ms and tries: 0 (or less) for
 * DNS_TIMEOUT_MS and DNS_TRIES; resolv.conf's options do not change
 * them.  No search domains, no HOSTALIASES, no /etc/hosts, no EDNS
 * (an answer over 512 octets is asked again over TCP).  -1 (logged) on
 * failure.
 */
int	dns_init(const char *servers, int timeout_ms, int tries);

/*
 * Which hosts are us (RFC 5321 5.1): our host names and local
 * addresses, copied.  An MX host is us when its name is one of the
 * names or one of its addresses is one of the addresses (an IPv4-mapped
 * IPv6 address counts as the IPv4 one).  Replaces the previous set;
 * -1 (EINVAL, the set unchanged) when a count is over its limit, a name
 * is not valid or an address is neither AF_INET nor AF_INET6.
 */
int	dns_set_self(const char *const *names, size_t nnames,
	    const struct sockaddr *const *addrs, size_t naddrs);

/*
 * Look up where mail for domain goes.  0: cb will be called once, from
 * the event loop and never from within dns_mx(), also for DNS_INVALID;
 * -1 (ENXIO: no dns_init(), ENOMEM): cb will not be called.
 *
 * No MX records: the domain itself, preference 0 (RFC 5321 5.1).  One
 * MX record (or only ones) to "." is DNS_NULLMX; a "." among other MX
 * records is skipped.  If one of the hosts is us, every host of that
 * preference or more is dropped (DNS_LOOP if that is all of them).  A
 * host without an address is skipped; if none is left, DNS_TEMPFAIL if
 * an address lookup of a host left failed for now, else DNS_LOOP if we
 * are one of the hosts, else DNS_NOHOST.
 */
int	dns_mx(const char *domain, dns_mx_cb cb, void *arg);

/*
 * The same for a relay host named by a route: no MX query, host is the
 * only host (preference 0, implicit set) with its A and AAAA, and the
 * statuses as for dns_mx() but DNS_NULLMX and DNS_LOOP: a route may name
 * this host on purpose (a filter on another port), so there is no self
 * check; the Received limit stops a route that loops.
 */
int	dns_host(const char *host, dns_mx_cb cb, void *arg);

/* Drop every pending lookup (their callbacks are not called); free all. */
void	dns_shutdown(void);

const char	*dns_status_str(enum dns_status);
int		 dns_status_permanent(enum dns_status);

/*
 * The pure parts (lka/dns_parse.c), for the unit test and the fuzzer.
 *
 * dns_name_check: is in[0 .. len - 1] a name by the rules above; 0 with
 * the canonical name in out[0 .. outlen - 1] (DNS_NAME_MAX + 1 is always
 * enough; out may be in), or -1.
 *
 * dns_mx_implicit: res for a domain without MX records (RFC 5321 5.1).
 *
 * dns_mx_answer: from the answer (abuf, alen) to an MX query for domain
 * (canonical), the ordered hosts without addresses: res->domain,
 * status (DNS_OK, DNS_NULLMX, DNS_NOHOST: no usable target,
 * DNS_TEMPFAIL: malformed answer), implicit, nhosts, hosts[].name and
 * .pref, reason.  No MX record in the answer is the implicit MX.
 *
 * dns_addr_answer: the addresses (family AF_INET: A records, AF_INET6:
 * AAAA) of the answer (abuf, alen), CNAME chain followed, unusable ones
 * (0.0.0.0/8, 224.0.0.0/3, ::, ff00::/8) and duplicates dropped; at
 * most max into out.  The count, or -1 for a malformed answer: one
 * c-ares rejects, or, when it finds no address, a record of the asked
 * type with the wrong length or a CNAME chain that loops.
 *
 * dns_addr_equal: the same IP address (a v4-mapped IPv6 address equals
 * its IPv4 address; ports and scopes are not compared).
 */
int	dns_name_check(const char *in, size_t len, char *out, size_t outlen);
void	dns_mx_implicit(const char *domain, struct dns_mx_result *res);
void	dns_mx_answer(const unsigned char *abuf, size_t alen,
	    const char *domain, struct dns_mx_result *res);
int	dns_addr_answer(const unsigned char *abuf, size_t alen, int family,
	    struct sockaddr_storage *out, size_t max);
int	dns_addr_equal(const struct sockaddr *, const struct sockaddr *);

#endif
