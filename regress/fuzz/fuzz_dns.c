/*
 * libFuzzer target for lka/dns_parse.c: any octets as a name, as the
 * answer to an MX query and as the answer to an A and an AAAA query;
 * never a crash, and what comes out keeps the promises of dns.h: names
 * canonical and valid, hosts unique and in preference order, counts
 * within their bounds, addresses of the family asked and usable.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lka/dns.h"

#define FUZZ_DOMAIN	"example.test"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct dns_mx_result	 res;

static void
fuzz_name_check(const char *name)
{
	char	 again[DNS_NAME_MAX + 1];
	size_t	 len = strnlen(name, DNS_NAME_MAX + 1), i;

	if (len == 0 || len > DNS_NAME_MAX)
		abort();
	if (dns_name_check(name, len, again, sizeof(again)) == -1 ||
	    strcmp(name, again) != 0)
		abort();
	for (i = 0; i < len; i++)
		if (name[i] >= 'A' && name[i] <= 'Z')
			abort();
	if (name[len - 1] == '.')
		abort();
}

static void
fuzz_mx(const uint8_t *data, size_t size)
{
	size_t	 i, j;

	memset(&res, 0xa5, sizeof(res));
	dns_mx_answer(data, size, FUZZ_DOMAIN, &res);
	if (strnlen(res.reason, sizeof(res.reason)) == sizeof(res.reason))
		abort();
	if (strcmp(res.domain, FUZZ_DOMAIN) != 0)
		abort();
	switch (res.status) {
	case DNS_OK:
		if (res.nhosts == 0 || res.nhosts > DNS_MX_HOSTS_MAX)
			abort();
		break;
	case DNS_TEMPFAIL:
	case DNS_NULLMX:
	case DNS_NOHOST:
		if (res.nhosts != 0)
			abort();
		return;
	default:
		abort();
	}
	if (res.implicit && (res.nhosts != 1 || res.hosts[0].pref != 0 ||
	    strcmp(res.hosts[0].name, FUZZ_DOMAIN) != 0))
		abort();
	for (i = 0; i < res.nhosts; i++) {
		fuzz_name_check(res.hosts[i].name);
		if (res.hosts[i].naddrs != 0)
			abort();
		if (i > 0 && res.hosts[i].pref < res.hosts[i - 1].pref)
			abort();
		for (j = 0; j < i; j++)
			if (strcmp(res.hosts[i].name, res.hosts[j].name) == 0)
				abort();
	}
}

static void
fuzz_addrs(const uint8_t *data, size_t size, int family)
{
	struct sockaddr_storage	 out[DNS_MX_ADDRS_MAX + 1];
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	uint32_t		 a;
	int			 n, i, j;

	memset(out, 0xa5, sizeof(out));
	n = dns_addr_answer(data, size, family, out, DNS_MX_ADDRS_MAX);
	if (n < -1 || n > DNS_MX_ADDRS_MAX)
		abort();
	/* The guard entry past max is untouched. */
	if (((unsigned char *)&out[DNS_MX_ADDRS_MAX])[0] != 0xa5)
		abort();
	for (i = 0; i < n; i++) {
		if (out[i].ss_family != family)
			abort();
		if (family == AF_INET) {
			sin = (const struct sockaddr_in *)&out[i];
			a = ntohl(sin->sin_addr.s_addr);
			if ((a >> 24) == 0 || (a >> 28) >= 0xe)
				abort();
		} else {
			sin6 = (const struct sockaddr_in6 *)&out[i];
			if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr) ||
			    IN6_IS_ADDR_MULTICAST(&sin6->sin6_addr))
				abort();
		}
		for (j = 0; j < i; j++)
			if (dns_addr_equal((struct sockaddr *)&out[i],
			    (struct sockaddr *)&out[j]))
				abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	 name[DNS_NAME_MAX + 1];

	if (dns_name_check((const char *)data, size, name, sizeof(name)) == 0)
		fuzz_name_check(name);
	fuzz_mx(data, size);
	fuzz_addrs(data, size, AF_INET);
	fuzz_addrs(data, size, AF_INET6);
	return 0;
}
