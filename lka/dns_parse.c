/*
 * lka/dns_parse.c: the pure parts of MX resolution (see dns.h): name
 * rules, the answer to an MX query turned into ordered hosts, the
 * addresses of an A or AAAA answer.  No state, no I/O: the unit test
 * and the fuzzer call them directly.  The messages are parsed by c-ares
 * (bounded by the message; CNAME chains followed for addresses); what
 * comes out is checked again here like any input.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ares.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

#define DNS_MSG_MAX	65535	/* a DNS message, over TCP */
#define DNS_PARSE_MAX	64	/* addresses read from one answer */
#define DNS_TYPE_CNAME	5
#define DNS_HEADER_LEN	12
#define DNS_RR_FIXED	10	/* type, class, ttl, rdlength */

/* An MX record while the answer is ordered. */
struct dns_mxent {
	char			*name;
	uint16_t		 pref;
};

static void	dns_reason(struct dns_mx_result *, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));

/* The result's text is for the log: a truncated one is still useful. */
static void
dns_reason(struct dns_mx_result *res, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	(void)vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
	va_end(ap);
}

int
dns_name_check(const char *in, size_t len, char *out, size_t outlen)
{
	size_t		 i, label = 0;
	int		 digits = 1;	/* the label so far is all digits */
	unsigned char	 c;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX || outlen <= len)
		return -1;
	for (i = 0; i < len; i++) {
		c = (unsigned char)in[i];
		if (c == '.') {
			if (label == 0 || in[i - 1] == '-')
				return -1;
			out[i] = '.';
			label = 0;
			digits = 1;
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		else if (c == '-') {
			if (label == 0)
				return -1;
		} else if ((c < 'a' || c > 'z') && (c < '0' || c > '9') &&
		    c != '_')
			return -1;
		if (c < '0' || c > '9')
			digits = 0;
		if (++label > DNS_LABEL_MAX)
			return -1;
		out[i] = c;
	}
	if (label == 0 || in[len - 1] == '-' || digits)
		return -1;
	out[len] = '\0';
	return 0;
}

static int
dns_mxent_byname(const void *a, const void *b)
{
	const struct dns_mxent	*x = a, *y = b;
	int			 c;

	if ((c = strcmp(x->name, y->name)) != 0)
		return c;
	return (int)x->pref - (int)y->pref;
}

static int
dns_mxent_bypref(const void *a, const void *b)
{
	const struct dns_mxent	*x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return strcmp(x->name, y->name);
}

void
dns_mx_implicit(const char *domain, struct dns_mx_result *res)
{
	res->status = DNS_OK;
	res->implicit = 1;
	res->nhosts = 1;
	(void)strlcpy(res->hosts[0].name, domain, sizeof(res->hosts[0].name));
	res->hosts[0].pref = 0;
	res->hosts[0].naddrs = 0;
	dns_reason(res, "no MX for %s: the domain is its own mail host",
	    domain);
}

void
dns_mx_answer(const unsigned char *abuf, size_t alen, const char *domain,
    struct dns_mx_result *res)
{
	struct ares_mx_reply	*mx = NULL, *m;
	struct dns_mxent	*ents, tmp;
	size_t			 n = 0, nents = 0, nnull = 0, i, j, k;
	uint32_t		 pick;
	int			 r;

	if (strlcpy(res->domain, domain, sizeof(res->domain)) >=
	    sizeof(res->domain))
		res->domain[0] = '\0';
	res->implicit = 0;
	res->nhosts = 0;
	res->reason[0] = '\0';
	res->status = DNS_TEMPFAIL;

	if (alen > DNS_MSG_MAX) {
		dns_reason(res, "MX answer for %s: too long", res->domain);
		return;
	}
	r = ares_parse_mx_reply(abuf, (int)alen, &mx);
	if (r == ARES_SUCCESS && mx == NULL)
		r = ARES_ENODATA;
	if (r == ARES_ENODATA) {
		ares_free_data(mx);
		dns_mx_implicit(res->domain, res);
		return;
	}
	if (r != ARES_SUCCESS) {
		dns_reason(res, "MX answer for %s: %s", res->domain,
		    ares_strerror(r));
		return;
	}
	for (m = mx; m != NULL; m = m->next)
		n++;
	if ((ents = reallocarray(NULL, n, sizeof(*ents))) == NULL) {
		ares_free_data(mx);
		dns_reason(res, "MX answer for %s: out of memory",
		    res->domain);
		return;
	}
	for (m = mx; m != NULL; m = m->next) {
		if (m->host == NULL)
			continue;
		if (m->host[0] == '\0') {	/* the root, "." */
			nnull++;
			continue;
		}
		/* In place: the canonical name is never longer. */
		if (dns_name_check(m->host, strlen(m->host), m->host,
		    strlen(m->host) + 1) == -1)
			continue;
		ents[nents].name = m->host;
		ents[nents].pref = m->priority;
		nents++;
	}

	if (nents == 0) {
		if (nnull > 0) {
			res->status = DNS_NULLMX;
			dns_reason(res, "%s accepts no mail (null MX)",
			    res->domain);
		} else {
			res->status = DNS_NOHOST;
			dns_reason(res, "no MX record of %s names a valid host",
			    res->domain);
		}
		goto out;
	}

	/* The same host twice counts once, at its best preference. */
	qsort(ents, nents, sizeof(*ents), dns_mxent_byname);
	for (i = j = 0; i < nents; i++)
		if (j == 0 || strcmp(ents[j - 1].name, ents[i].name) != 0)
			ents[j++] = ents[i];
	nents = j;

	/*
	 * Best first, then each run of equal preferences shuffled
	 * (Fisher-Yates; RFC 5321 5.1), then the cut.
	 */
	qsort(ents, nents, sizeof(*ents), dns_mxent_bypref);
	for (i = 0; i < nents; i = j) {
		for (j = i + 1; j < nents && ents[j].pref == ents[i].pref; j++)
			;
		for (k = j - i; k > 1; k--) {
			pick = arc4random_uniform(k);
			tmp = ents[i + k - 1];
			ents[i + k - 1] = ents[i + pick];
			ents[i + pick] = tmp;
		}
	}
	if (nents > DNS_MX_HOSTS_MAX)
		nents = DNS_MX_HOSTS_MAX;
	for (i = 0; i < nents; i++) {
		(void)strlcpy(res->hosts[i].name, ents[i].name,
		    sizeof(res->hosts[i].name));
		res->hosts[i].pref = ents[i].pref;
		res->hosts[i].naddrs = 0;
	}
	res->nhosts = nents;
	res->status = DNS_OK;
	dns_reason(res, "%zu MX host%s for %s", nents, nents == 1 ? "" : "s",
	    res->domain);
 out:
	free(ents);
	ares_free_data(mx);
}

/* An IPv4 address, or the IPv4 address of a v4-mapped IPv6 one. */
static int
dns_addr_v4(const struct sockaddr *sa, uint32_t *a)
{
	const struct sockaddr_in6	*sin6;

	if (sa->sa_family == AF_INET) {
		*a = ((const struct sockaddr_in *)sa)->sin_addr.s_addr;
		return 1;
	}
	if (sa->sa_family != AF_INET6)
		return 0;
	sin6 = (const struct sockaddr_in6 *)sa;
	if (!IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
		return 0;
	memcpy(a, &sin6->sin6_addr.s6_addr[12], sizeof(*a));
	return 1;
}

/*
 * Addresses no mail goes to: "this network", multicast, class E and
 * broadcast (also v4-mapped), the unspecified and multicast IPv6 ones.
 */
static int
dns_addr_unusable(const struct sockaddr *sa)
{
	const struct sockaddr_in6	*sin6;
	uint32_t			 a;

	if (dns_addr_v4(sa, &a)) {
		a = ntohl(a);
		return (a >> 24) == 0 || (a >> 28) >= 0xe;
	}
	sin6 = (const struct sockaddr_in6 *)sa;
	return IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr) ||
	    IN6_IS_ADDR_MULTICAST(&sin6->sin6_addr);
}

int
dns_addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	uint32_t	 a4, b4;

	if (dns_addr_v4(a, &a4) && dns_addr_v4(b, &b4))
		return a4 == b4;
	if (a->sa_family != AF_INET6 || b->sa_family != AF_INET6)
		return 0;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	    &((const struct sockaddr_in6 *)b)->sin6_addr,
	    sizeof(struct in6_addr)) == 0;
}

static unsigned int
dns_u16(const unsigned char *p)
{
	return (unsigned int)p[0] << 8 | p[1];
}

/*
 * c-ares found no address: whether the answer is broken rather than
 * empty.  c-ares skips a record of the asked type whose length is wrong
 * and gives up on a CNAME chain that loops (RFC 1034 3.6.2 calls both
 * errors); either is a bad answer, tried again later, not a host without
 * an address.  Bounded by the message and DNS_PARSE_MAX CNAMEs.
 */
static int
dns_addr_broken(const unsigned char *abuf, size_t alen, int family)
{
	char			*qname = NULL, *owner, *target;
	char			*from[DNS_PARSE_MAX], *to[DNS_PARSE_MAX];
	const unsigned char	*p = abuf + DNS_HEADER_LEN, *end = abuf + alen;
	const char		*name;
	unsigned int		 an, i, type, rdlen;
	unsigned int		 want = family == AF_INET ? DNS_TYPE_A :
				    DNS_TYPE_AAAA;
	unsigned int		 wantlen = family == AF_INET ? 4 : 16;
	size_t			 ncn = 0, k, steps;
	long			 enclen;
	int			 broken = 0;

	if (alen < DNS_HEADER_LEN || dns_u16(abuf + 4) != 1)
		return 1;
	an = dns_u16(abuf + 6);
	if (ares_expand_name(p, abuf, (int)alen, &qname, &enclen) !=
	    ARES_SUCCESS)
		return 1;
	p += enclen;
	if (end - p < 4)
		broken = 1;
	else
		p += 4;		/* qtype, qclass */
	for (i = 0; i < an && !broken; i++) {
		if (ares_expand_name(p, abuf, (int)alen, &owner, &enclen) !=
		    ARES_SUCCESS) {
			broken = 1;
			break;
		}
		p += enclen;
		if (end - p < DNS_RR_FIXED || (size_t)(end - p) -
		    DNS_RR_FIXED < dns_u16(p + 8)) {
			ares_free_string(owner);
			broken = 1;
			break;
		}
		type = dns_u16(p);
		rdlen = dns_u16(p + 8);
		p += DNS_RR_FIXED;
		if (type == want && rdlen != wantlen)
			broken = 1;
		else if (type == DNS_TYPE_CNAME && ncn < DNS_PARSE_MAX &&
		    ares_expand_name(p, abuf, (int)alen, &target, &enclen) ==
		    ARES_SUCCESS) {
			from[ncn] = owner;
			to[ncn++] = target;
			owner = NULL;
		}
		if (owner != NULL)
			ares_free_string(owner);
		p += rdlen;
	}
	/* From the question's name: more links than CNAMEs is a loop. */
	for (name = qname, steps = 0; !broken; steps++) {
		for (k = 0; k < ncn; k++)
			if (strcasecmp(from[k], name) == 0)
				break;
		if (k == ncn)
			break;
		if (steps >= ncn)
			broken = 1;
		name = to[k];
	}
	for (k = 0; k < ncn; k++) {
		ares_free_string(from[k]);
		ares_free_string(to[k]);
	}
	ares_free_string(qname);
	return broken;
}

int
dns_addr_answer(const unsigned char *abuf, size_t alen, int family,
    struct sockaddr_storage *out, size_t max)
{
	struct ares_addrttl	 a4[DNS_PARSE_MAX];
	struct ares_addr6ttl	 a6[DNS_PARSE_MAX];
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	size_t			 n = 0, i;
	int			 got = DNS_PARSE_MAX, r, k;

	if (alen > DNS_MSG_MAX)
		return -1;
	if (family == AF_INET)
		r = ares_parse_a_reply(abuf, (int)alen, NULL, a4, &got);
	else if (family == AF_INET6)
		r = ares_parse_aaaa_reply(abuf, (int)alen, NULL, a6, &got);
	else
		return -1;
	if (r == ARES_ENODATA || (r == ARES_SUCCESS && got == 0))
		return dns_addr_broken(abuf, alen, family) ? -1 : 0;
	if (r != ARES_SUCCESS || got < 0 || got > DNS_PARSE_MAX)
		return -1;
	for (k = 0; k < got && n < max; k++) {
		memset(&ss, 0, sizeof(ss));
		if (family == AF_INET) {
			sin = (struct sockaddr_in *)&ss;
			sin->sin_family = AF_INET;
			memcpy(&sin->sin_addr, &a4[k].ipaddr,
			    sizeof(sin->sin_addr));
		} else {
			sin6 = (struct sockaddr_in6 *)&ss;
			sin6->sin6_family = AF_INET6;
			memcpy(&sin6->sin6_addr, &a6[k].ip6addr,
			    sizeof(sin6->sin6_addr));
		}
		if (dns_addr_unusable((struct sockaddr *)&ss))
			continue;
		for (i = 0; i < n; i++)
			if (dns_addr_equal((struct sockaddr *)&out[i],
			    (struct sockaddr *)&ss))
				break;
		if (i == n)
			out[n++] = ss;
	}
	return (int)n;
}
