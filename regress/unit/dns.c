/*
 * lka/dns.c, lka/dns_parse.c: MX resolution.  The pure parts first (name rules, hostile
 * answers built byte by byte), then lookups on the event loop against a
 * real unbound that this test starts (fork/exec of `unbound -d` on
 * 127.0.0.1 and a free port, the zone below as an auth-zone, nothing
 * outside it: a CNAME out of the zone is an instant SERVFAIL, a name
 * outside is REFUSED).  If unbound cannot be started the test fails; it
 * skips nothing.  DNSPEER_UNBOUND names another unbound binary.
 *
 * Rows of the lookup table give the hosts expected, in order, as
 * "pref:name=addr,addr pref:name=addr" (IPv6 first, interleaved).
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../lka/dns.h"
#include "tap.h"
#include "loop.h"

#define SELF_ADDR4	"192.0.2.99"
#define SELF_ADDR6	"2001:db8::99"
#define READY_NAME	"dnspeer-ready.test"

static char	 scratch[64];
static char	 zone_path[PATH_MAX], conf_path[PATH_MAX], log_path[PATH_MAX];
static pid_t	 unbound_pid = -1;
static int	 unbound_port;

/* --- names --- */

struct name_case {
	const char	*name;
	const char	*in;
	const char	*out;		/* NULL: rejected */
};

static const struct name_case name_cases[] = {
	{ "plain_name_kept", "mx.example.org", "mx.example.org" },
	{ "upper_case_lowered", "MX.Example.ORG", "mx.example.org" },
	{ "final_dot_dropped", "example.org.", "example.org" },
	{ "single_label_accepted", "localhost", "localhost" },
	{ "underscore_tolerated", "_mx_1.example.org", "_mx_1.example.org" },
	{ "inner_hyphen_accepted", "a-b.x--y.example", "a-b.x--y.example" },
	{ "digits_in_labels_accepted", "123.4a.example", "123.4a.example" },
	{ "numeric_label_before_tld_accepted", "1.2.3.example",
	    "1.2.3.example" },
	{ "empty_rejected", "", NULL },
	{ "root_alone_rejected", ".", NULL },
	{ "two_final_dots_rejected", "example.org..", NULL },
	{ "leading_dot_rejected", ".example.org", NULL },
	{ "empty_label_rejected", "a..example", NULL },
	{ "leading_hyphen_rejected", "-a.example", NULL },
	{ "trailing_hyphen_rejected", "a-.example", NULL },
	{ "trailing_hyphen_of_name_rejected", "example.or-", NULL },
	{ "ipv4_literal_rejected", "192.0.2.1", NULL },
	{ "ipv4_literal_with_dot_rejected", "192.0.2.1.", NULL },
	{ "numeric_tld_rejected", "example.123", NULL },
	{ "address_literal_rejected", "[192.0.2.1]", NULL },
	{ "ipv6_literal_rejected", "[IPv6:2001:db8::1]", NULL },
	{ "space_rejected", "a b.example", NULL },
	{ "backslash_escape_rejected", "a\\.b.example", NULL },
	{ "at_sign_rejected", "user@example.org", NULL },
	{ "utf8_rejected", "b\xc3\xbc" "cher.example", NULL },
	{ "control_byte_rejected", "a\r\n.example", NULL },
	{ "slash_rejected", "../etc", NULL },
};

static void
test_names(void)
{
	char	 out[DNS_NAME_MAX + 1], in[600];
	size_t	 i;
	int	 r;

	for (i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		const struct name_case *c = &name_cases[i];

		r = dns_name_check(c->in, strlen(c->in), out, sizeof(out));
		if (c->out == NULL)
			is_int(r, -1, c->name);
		else
			is_str(r == 0 ? out : "(rejected)", c->out, c->name);
	}

	/* Limits: 63-octet labels, 253 octets (254 with the final dot). */
	memset(in, 'a', 63);
	(void)strlcpy(in + 63, ".example", sizeof(in) - 63);
	is_int(dns_name_check(in, strlen(in), out, sizeof(out)), 0,
	    "label_of_63_accepted");
	memset(in, 'a', 64);
	(void)strlcpy(in + 64, ".example", sizeof(in) - 64);
	is_int(dns_name_check(in, strlen(in), out, sizeof(out)), -1,
	    "label_of_64_rejected");
	for (i = 0; i < 253; i++)
		in[i] = i % 2 ? '.' : 'a';
	in[252] = 'a';
	in[253] = '\0';
	is_int(dns_name_check(in, 253, out, sizeof(out)), 0,
	    "name_of_253_accepted");
	in[253] = '.';
	is_int(dns_name_check(in, 254, out, sizeof(out)), 0,
	    "name_of_253_with_final_dot_accepted");
	in[253] = 'a';
	in[254] = '\0';
	in[252] = '.';
	is_int(dns_name_check(in, 254, out, sizeof(out)), -1,
	    "name_of_254_rejected");
	is_int(dns_name_check("a.example\0.org", 14, out, sizeof(out)), -1,
	    "nul_inside_rejected");
	is_int(dns_name_check("example.org", 11, out, 11), -1,
	    "output_too_small_rejected");
	is_int(dns_name_check("example.org", 11, out, 12), 0,
	    "output_just_large_enough");
}

/* --- DNS messages built by hand --- */

struct wire {
	unsigned char	 b[65536];
	size_t		 n;
	size_t		 an;	/* offset of the answer count */
};

static void
w_u8(struct wire *w, unsigned int v)
{
	if (w->n < sizeof(w->b))
		w->b[w->n++] = v & 0xff;
}

static void
w_u16(struct wire *w, unsigned int v)
{
	w_u8(w, v >> 8);
	w_u8(w, v);
}

/* A dotted name, uncompressed; "" is the root. */
static void
w_name(struct wire *w, const char *name)
{
	const char	*dot;
	size_t		 len;

	while (*name != '\0') {
		dot = strchr(name, '.');
		len = dot ? (size_t)(dot - name) : strlen(name);
		w_u8(w, len);
		while (len-- > 0)
			w_u8(w, (unsigned char)*name++);
		if (*name == '.')
			name++;
	}
	w_u8(w, 0);
}

/* Header and the one question; the owner of answers points at it. */
static void
w_start(struct wire *w, const char *qname, unsigned int qtype,
    unsigned int ancount)
{
	w->n = 0;
	w_u16(w, 0x4242);
	w_u16(w, 0x8180);	/* response, RD, RA, NOERROR */
	w_u16(w, 1);
	w->an = w->n;
	w_u16(w, ancount);
	w_u16(w, 0);
	w_u16(w, 0);
	w_name(w, qname);
	w_u16(w, qtype);
	w_u16(w, 1);
}

/*
 * An RR owned by owner (NULL: the question's name, compressed); its
 * rdata follows, then w_end_rr() sets its length.
 */
static size_t
w_rr_owner(struct wire *w, const char *owner, unsigned int type)
{
	size_t	 at;

	if (owner == NULL)
		w_u16(w, 0xc00c);
	else
		w_name(w, owner);
	w_u16(w, type);
	w_u16(w, 1);
	w_u16(w, 0);
	w_u16(w, 300);
	at = w->n;
	w_u16(w, 0);
	return at;
}

static size_t
w_rr(struct wire *w, unsigned int type)
{
	return w_rr_owner(w, NULL, type);
}

static void
w_end_rr(struct wire *w, size_t at)
{
	size_t	 len = w->n - at - 2;

	w->b[at] = len >> 8;
	w->b[at + 1] = len & 0xff;
}

static void
w_mx(struct wire *w, unsigned int pref, const char *target)
{
	size_t	 at;

	at = w_rr(w, 15);
	w_u16(w, pref);
	w_name(w, target);
	w_end_rr(w, at);
}

static void
addr_text(const struct sockaddr_storage *ss, char *a, size_t len)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &sin->sin_addr, a, len);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &sin6->sin6_addr, a, len);
	else
		(void)strlcpy(a, "?", len);
}

/* "pref:name=addr,addr pref:name=addr" */
static void
hosts_text(const struct dns_mx_result *res, char *buf, size_t len)
{
	char	 a[INET6_ADDRSTRLEN];
	size_t	 i, j;

	buf[0] = '\0';
	for (i = 0; i < res->nhosts; i++) {
		(void)snprintf(buf + strlen(buf), len - strlen(buf), "%s%u:%s",
		    i ? " " : "", res->hosts[i].pref, res->hosts[i].name);
		for (j = 0; j < res->hosts[i].naddrs; j++) {
			addr_text(&res->hosts[i].addrs[j], a, sizeof(a));
			(void)snprintf(buf + strlen(buf), len - strlen(buf),
			    "%s%s", j ? "," : "=", a);
		}
	}
}

static struct dns_mx_result	 res;	/* big: one, static */

static void
test_mx_answers(void)
{
	static struct wire	 w;
	char			 text[4096];
	size_t			 i, at;
	int			 sorted, distinct;

	w_start(&w, "x.test", 15, 2);
	w_mx(&w, 20, "B.x.test");
	w_mx(&w, 10, "a.x.test.");
	dns_mx_answer(w.b, w.n, "x.test", &res);
	hosts_text(&res, text, sizeof(text));
	is_int(res.status, DNS_OK, "answer_mx_records_ok");
	is_str(text, "10:a.x.test 20:b.x.test",
	    "answer_mx_in_preference_order_lower_case");
	is_int(res.implicit, 0, "answer_mx_not_implicit");

	w_start(&w, "x.test", 15, 0);
	dns_mx_answer(w.b, w.n, "x.test", &res);
	hosts_text(&res, text, sizeof(text));
	ok(res.status == DNS_OK && res.implicit == 1,
	    "answer_without_mx_is_implicit");
	is_str(text, "0:x.test", "answer_without_mx_is_the_domain_pref_0");

	w_start(&w, "x.test", 15, 1);
	w_mx(&w, 0, "");
	dns_mx_answer(w.b, w.n, "x.test", &res);
	is_int(res.status, DNS_NULLMX, "answer_null_mx");

	w_start(&w, "x.test", 15, 2);
	w_mx(&w, 0, "");
	w_mx(&w, 10, "mx.x.test");
	dns_mx_answer(w.b, w.n, "x.test", &res);
	hosts_text(&res, text, sizeof(text));
	is_str(text, "10:mx.x.test", "answer_null_mx_among_others_skipped");

	w_start(&w, "x.test", 15, 3);
	w_mx(&w, 30, "mx.x.test");
	w_mx(&w, 10, "MX.x.test");
	w_mx(&w, 20, "other.x.test");
	dns_mx_answer(w.b, w.n, "x.test", &res);
	hosts_text(&res, text, sizeof(text));
	is_str(text, "10:mx.x.test 20:other.x.test",
	    "answer_duplicate_host_once_at_best_preference");

	/* An owner name that points at itself. */
	w_start(&w, "x.test", 15, 1);
	at = w.n;
	w_u16(&w, 0xc000 | at);
	w_u16(&w, 15);
	w_u16(&w, 1);
	w_u16(&w, 0);
	w_u16(&w, 300);
	w_u16(&w, 4);
	w_u16(&w, 10);
	w_u16(&w, 0xc00c);
	dns_mx_answer(w.b, w.n, "x.test", &res);
	ok(res.status == DNS_TEMPFAIL && res.nhosts == 0,
	    "answer_compression_loop_is_tempfail");

	w_start(&w, "x.test", 15, 1);
	at = w_rr(&w, 15);
	w_u16(&w, 10);
	w_name(&w, "mx.x.test");
	w.b[at] = 0x01;		/* rdlength 256 + x, past the end */
	dns_mx_answer(w.b, w.n, "x.test", &res);
	is_int(res.status, DNS_TEMPFAIL,
	    "answer_rdlength_past_end_is_tempfail");

	w_start(&w, "x.test", 15, 3);
	w_mx(&w, 10, "mx.x.test");
	dns_mx_answer(w.b, w.n, "x.test", &res);
	is_int(res.status, DNS_TEMPFAIL,
	    "answer_count_past_end_is_tempfail");

	dns_mx_answer(w.b, 7, "x.test", &res);
	is_int(res.status, DNS_TEMPFAIL, "answer_shorter_than_header");
	dns_mx_answer(w.b, 0, "x.test", &res);
	is_int(res.status, DNS_TEMPFAIL, "answer_empty");
	dns_mx_answer(w.b, 70000, "x.test", &res);
	is_int(res.status, DNS_TEMPFAIL, "answer_longer_than_dns_allows");

	/* Targets with a dot or a NUL inside a label, an address. */
	w_start(&w, "x.test", 15, 3);
	at = w_rr(&w, 15);
	w_u16(&w, 10);
	w_u8(&w, 3);
	w_u8(&w, 'a');
	w_u8(&w, '.');
	w_u8(&w, 'b');
	w_name(&w, "test");
	w_end_rr(&w, at);
	at = w_rr(&w, 15);
	w_u16(&w, 20);
	w_u8(&w, 2);
	w_u8(&w, 'a');
	w_u8(&w, 0);
	w_name(&w, "test");
	w_end_rr(&w, at);
	w_mx(&w, 30, "192.0.2.1");
	dns_mx_answer(w.b, w.n, "x.test", &res);
	ok(res.status == DNS_NOHOST && res.nhosts == 0,
	    "answer_targets_with_bad_labels_are_no_hosts");

	/* As many MX records as fit in 64 KiB: the best 32 are kept. */
	w_start(&w, "x.test", 15, 2900);
	for (i = 0; i < 2900; i++) {
		at = w_rr(&w, 15);
		w_u16(&w, i % 100);
		w_u8(&w, 5);
		w_u8(&w, 'h');
		w_u8(&w, '0' + i / 1000);
		w_u8(&w, '0' + i / 100 % 10);
		w_u8(&w, '0' + i / 10 % 10);
		w_u8(&w, '0' + i % 10);
		w_u16(&w, 0xc00c);
		w_end_rr(&w, at);
	}
	ok(w.n < 65536, "answer_of_2900_mx_fits");
	dns_mx_answer(w.b, w.n, "x.test", &res);
	sorted = distinct = 1;
	for (i = 1; i < res.nhosts; i++) {
		if (res.hosts[i].pref < res.hosts[i - 1].pref)
			sorted = 0;
		if (strcmp(res.hosts[i].name, res.hosts[i - 1].name) == 0)
			distinct = 0;
	}
	ok(res.status == DNS_OK && res.nhosts == DNS_MX_HOSTS_MAX,
	    "answer_of_2900_mx_cut_to_32");
	ok(sorted && res.hosts[0].pref == 0 && res.hosts[31].pref == 1,
	    "answer_of_2900_mx_keeps_the_best");
	ok(distinct, "answer_of_2900_mx_distinct_hosts");
}

static void
test_addr_answers(void)
{
	static struct wire	 w;
	struct sockaddr_storage	 out[DNS_MX_ADDRS_MAX];
	struct in6_addr		 in6;
	size_t			 i, at;
	int			 n;
	char			 a[INET6_ADDRSTRLEN];
	static const unsigned char v4s[][4] = {
		{ 0, 0, 0, 0 }, { 192, 0, 2, 1 }, { 192, 0, 2, 1 },
		{ 224, 0, 0, 1 }, { 255, 255, 255, 255 }, { 192, 0, 2, 2 }
	};

	w_start(&w, "h.test", 1, 6);
	for (i = 0; i < 6; i++) {
		at = w_rr(&w, 1);
		w_u8(&w, v4s[i][0]);
		w_u8(&w, v4s[i][1]);
		w_u8(&w, v4s[i][2]);
		w_u8(&w, v4s[i][3]);
		w_end_rr(&w, at);
	}
	n = dns_addr_answer(w.b, w.n, AF_INET, out, DNS_MX_ADDRS_MAX);
	is_int(n, 2, "a_answer_unusable_and_duplicate_dropped");
	addr_text(&out[1], a, sizeof(a));
	ok(n == 2 && out[0].ss_family == AF_INET, "a_answer_family_set");
	is_str(a, "192.0.2.2", "a_answer_order_kept");

	w_start(&w, "h.test", 1, 40);
	for (i = 0; i < 40; i++) {
		at = w_rr(&w, 1);
		w_u8(&w, 198);
		w_u8(&w, 51);
		w_u8(&w, 100);
		w_u8(&w, i + 1);
		w_end_rr(&w, at);
	}
	n = dns_addr_answer(w.b, w.n, AF_INET, out, DNS_MX_ADDRS_MAX);
	is_int(n, DNS_MX_ADDRS_MAX, "a_answer_bounded");

	n = dns_addr_answer(w.b, w.n, AF_INET6, out, DNS_MX_ADDRS_MAX);
	is_int(n, 0, "aaaa_parse_of_a_answer_finds_none");

	/* The chain from the question is followed; other owners ignored. */
	w_start(&w, "alias.test", 28, 3);
	at = w_rr(&w, 5);
	w_name(&w, "mx.test");
	w_end_rr(&w, at);
	at = w_rr_owner(&w, "mx.test", 28);
	inet_pton(AF_INET6, "2001:db8::1", &in6);
	for (i = 0; i < 16; i++)
		w_u8(&w, in6.s6_addr[i]);
	w_end_rr(&w, at);
	at = w_rr_owner(&w, "other.test", 28);
	inet_pton(AF_INET6, "2001:db8::2", &in6);
	for (i = 0; i < 16; i++)
		w_u8(&w, in6.s6_addr[i]);
	w_end_rr(&w, at);
	n = dns_addr_answer(w.b, w.n, AF_INET6, out, DNS_MX_ADDRS_MAX);
	addr_text(&out[0], a, sizeof(a));
	ok(n == 1 && strcmp(a, "2001:db8::1") == 0,
	    "aaaa_answer_follows_cname_ignores_other_owners");

	w_start(&w, "h.test", 1, 1);
	at = w_rr(&w, 1);
	w_u8(&w, 192);
	w_u8(&w, 0);
	w_end_rr(&w, at);
	n = dns_addr_answer(w.b, w.n, AF_INET, out, DNS_MX_ADDRS_MAX);
	is_int(n, -1, "a_answer_with_short_rdata_is_malformed_not_empty");

	/* A CNAME loop is an error (RFC 1034 3.6.2), not "no address". */
	w_start(&w, "a.test", 1, 2);
	at = w_rr(&w, 5);
	w_name(&w, "b.test");
	w_end_rr(&w, at);
	at = w_rr_owner(&w, "b.test", 5);
	w_name(&w, "A.test");
	w_end_rr(&w, at);
	n = dns_addr_answer(w.b, w.n, AF_INET, out, DNS_MX_ADDRS_MAX);
	is_int(n, -1, "a_answer_cname_loop_is_malformed");

	/* A chain that ends at a name without an address: none. */
	w_start(&w, "a.test", 1, 2);
	at = w_rr(&w, 5);
	w_name(&w, "b.test");
	w_end_rr(&w, at);
	at = w_rr_owner(&w, "b.test", 5);
	w_name(&w, "c.test");
	w_end_rr(&w, at);
	n = dns_addr_answer(w.b, w.n, AF_INET, out, DNS_MX_ADDRS_MAX);
	is_int(n, 0, "a_answer_cname_chain_to_nothing_is_empty");

	n = dns_addr_answer(w.b, 5, AF_INET, out, DNS_MX_ADDRS_MAX);
	is_int(n, -1, "a_answer_truncated_header_is_malformed");
	n = dns_addr_answer(w.b, w.n, AF_UNIX, out, DNS_MX_ADDRS_MAX);
	is_int(n, -1, "unknown_family_refused");
}

/* --- unbound --- */

static int
write_file(const char *path, const char *text)
{
	FILE	*f;
	int	 r;

	if ((f = fopen(path, "w")) == NULL)
		return -1;
	r = fputs(text, f) == EOF ? -1 : 0;
	if (fclose(f) == EOF)
		r = -1;
	return r;
}

static const char *zone_text =
	"$ORIGIN test.\n"
	"$TTL 300\n"
	"@ SOA ns.test. hostmaster.test. 1 3600 600 86400 60\n"
	"@ NS ns\n"
	"ns A 192.0.2.53\n"
	"dnspeer-ready TXT \"ready\"\n"
	"multi MX 20 mx20\n"
	"multi MX 10 mx10\n"
	"multi MX 30 mx30\n"
	"mx10 A 192.0.2.10\n"
	"mx20 A 192.0.2.20\n"
	"mx30 A 192.0.2.30\n"
	"mx30 AAAA 2001:db8::30\n"
	"implicit A 192.0.2.40\n"
	"implicit AAAA 2001:db8::40\n"
	"implicit6 AAAA 2001:db8::41\n"
	"v6only MX 10 mx6\n"
	"mx6 AAAA 2001:db8::6\n"
	"nullmx MX 0 .\n"
	"nullmix MX 0 .\n"
	"nullmix MX 10 mx10\n"
	"skip MX 5 nxhost\n"
	"skip MX 10 noaddr\n"
	"skip MX 20 mx20\n"
	"noaddr TXT \"no address\"\n"
	"allnoaddr MX 10 noaddr\n"
	"allnoaddr MX 20 nxhost\n"
	"txtonly TXT \"nothing\"\n"
	"badtarget MX 10 -bad\n"
	"badtarget MX 20 mx20\n"
	"-bad A 192.0.2.12\n"
	"numtarget MX 10 192.0.2.1.\n"
	"under MX 10 mx_1\n"
	"mx_1 A 192.0.2.11\n"
	"cname MX 10 alias\n"
	"alias CNAME mx10\n"
	"cdomain CNAME multi\n"
	"dup MX 10 mx10\n"
	"dup MX 20 mx10\n"
	"dup MX 30 mx20\n"
	"servfail CNAME elsewhere.example.\n"
	"tmpmx MX 10 servfail\n"
	"tmpmix MX 10 servfail\n"
	"tmpmix MX 20 mx20\n"
	"loop MX 10 self\n"
	"loop MX 20 mx20\n"
	"self A 192.0.2.98\n"
	"backup MX 10 mx10\n"
	"backup MX 20 selfaddr\n"
	"backup MX 30 mx30\n"
	"selfaddr A " SELF_ADDR4 "\n"
	"backupn MX 10 mx10\n"
	"backupn MX 20 me\n"
	"backupn MX 20 mx20\n"
	"backupn MX 30 mx30\n"
	"me A 192.0.2.97\n"
	"loopaddr MX 10 selfaddr\n"
	"loopaddr MX 10 mx10\n"
	"loop6 MX 10 self6\n"
	"self6 AAAA " SELF_ADDR6 "\n"
	"loopmapped MX 10 selfmapped\n"
	"selfmapped AAAA ::ffff:" SELF_ADDR4 "\n"
	"loopnoaddr MX 10 noaddr\n"
	"loopnoaddr MX 20 selfaddr\n"
	"looptemp MX 10 servfail\n"
	"looptemp MX 20 selfaddr\n"
	"unusable MX 10 zero\n"
	"zero A 0.0.0.0\n"
	"zero AAAA ff02::1\n"
	"equal MX 10 e1\n"
	"equal MX 10 e2\n"
	"equal MX 10 e3\n"
	"equal MX 10 e4\n"
	"e1 A 192.0.2.101\n"
	"e2 A 192.0.2.102\n"
	"e3 A 192.0.2.103\n"
	"e4 A 192.0.2.104\n"
	"mixed MX 5 first\n"
	"mixed MX 10 e1\n"
	"mixed MX 10 e2\n"
	"mixed MX 10 e3\n"
	"mixed MX 20 last\n"
	"first A 192.0.2.105\n"
	"last A 192.0.2.106\n"
	"fat MX 10 fathost\n";

static int
write_zone(void)
{
	FILE	*f;
	int	 i, r;

	if ((f = fopen(zone_path, "w")) == NULL)
		return -1;
	(void)fputs(zone_text, f);
	/* 200 MX records (the answer needs TCP), 4 hosts per preference. */
	for (i = 0; i < 200; i++)
		fprintf(f, "many MX %d h%d\nh%d A 198.51.100.%d\n",
		    i % 50 + 1, i, i, i % 250 + 1);
	for (i = 1; i <= 40; i++)
		fprintf(f, "fathost A 203.0.113.%d\n", i);
	for (i = 1; i <= 20; i++)
		fprintf(f, "fathost AAAA 2001:db8:1::%x\n", i);
	r = ferror(f) ? -1 : 0;
	if (fclose(f) == EOF)
		r = -1;
	return r;
}

static int
write_conf(int port)
{
	char	 text[4096];
	int	 n;

	n = snprintf(text, sizeof(text),
	    "server:\n"
	    "\tverbosity: 1\n"
	    "\tinterface: 127.0.0.1\n"
	    "\tport: %d\n"
	    "\tdo-ip4: yes\n"
	    "\tdo-ip6: no\n"
	    "\tdo-udp: yes\n"
	    "\tdo-tcp: yes\n"
	    "\tdo-daemonize: no\n"
	    "\tuse-syslog: no\n"
	    "\tlogfile: \"\"\n"
	    "\tusername: \"\"\n"
	    "\tchroot: \"\"\n"
	    "\tdirectory: \"%s\"\n"
	    "\tpidfile: \"%s/unbound.pid\"\n"
	    "\tnum-threads: 1\n"
	    "\tso-reuseport: no\n"
	    "\toutgoing-range: 64\n"
	    "\tnum-queries-per-thread: 256\n"
	    "\tmsg-cache-size: 1m\n"
	    "\trrset-cache-size: 1m\n"
	    "\taccess-control: 127.0.0.0/8 allow\n"
	    "\tmodule-config: \"iterator\"\n"
	    "\tqname-minimisation: no\n"
	    "\trrset-roundrobin: no\n"
	    "\tminimal-responses: no\n"
	    "\tdo-not-query-address: 0.0.0.0/0\n"
	    "\tdo-not-query-address: ::/0\n"
	    "\tlocal-zone: \".\" refuse\n"
	    "\tlocal-zone: \"test.\" transparent\n"
	    "auth-zone:\n"
	    "\tname: \"test.\"\n"
	    "\tzonefile: \"%s\"\n"
	    "\tfor-downstream: no\n"
	    "\tfor-upstream: yes\n"
	    "\tfallback-enabled: no\n"
	    "remote-control:\n"
	    "\tcontrol-enable: no\n", port, scratch, scratch, zone_path);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -1;
	return write_file(conf_path, text);
}

static const char *
unbound_binary(void)
{
	static char	 path[PATH_MAX];
	static const char *const dirs[] = { "/usr/sbin", "/usr/local/sbin",
	    "/sbin" };
	const char	*env, *p, *colon;
	size_t		 i, len;

	if ((env = getenv("DNSPEER_UNBOUND")) != NULL && *env != '\0')
		return access(env, X_OK) == 0 ? env : NULL;
	for (p = getenv("PATH"); p != NULL && *p != '\0'; p = colon + 1) {
		colon = strchr(p, ':');
		len = colon ? (size_t)(colon - p) : strlen(p);
		if (len > 0 && (size_t)snprintf(path, sizeof(path),
		    "%.*s/unbound", (int)len, p) < sizeof(path) &&
		    access(path, X_OK) == 0)
			return path;
		if (colon == NULL)
			break;
	}
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		(void)snprintf(path, sizeof(path), "%s/unbound", dirs[i]);
		if (access(path, X_OK) == 0)
			return path;
	}
	return NULL;
}

/* A loopback port free for both UDP and TCP (racy: retried on failure). */
static int
free_port(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 len;
	int			 fd, fd2, port, try;

	for (try = 0; try < 50; try++) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) == -1)
			return -1;
		len = sizeof(sin);
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
		    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
			close(fd);
			return -1;
		}
		port = ntohs(sin.sin_port);
		if ((fd2 = socket(AF_INET, SOCK_STREAM, 0)) == -1) {
			close(fd);
			return -1;
		}
		if (bind(fd2, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
			close(fd2);
			close(fd);
			return port;
		}
		close(fd2);
		close(fd);
	}
	return -1;
}

/* One query, by hand; 1 when the answer is a NOERROR with answers. */
static int
probe(int port, const char *name, unsigned int qtype)
{
	static struct wire	 w;
	struct sockaddr_in	 sin;
	struct pollfd		 pfd;
	unsigned char		 buf[512];
	ssize_t			 n;
	int			 fd, answered = 0;

	w_start(&w, name, qtype, 0);
	w.b[2] = 0x01;		/* a query, RD */
	w.b[3] = 0x00;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) == -1)
		return 0;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    send(fd, w.b, w.n, 0) == (ssize_t)w.n) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 200) == 1 &&
		    (n = recv(fd, buf, sizeof(buf), 0)) >= 12 &&
		    buf[0] == 0x42 && buf[1] == 0x42 && (buf[2] & 0x80) &&
		    (buf[3] & 0x0f) == 0 && (buf[6] | buf[7]) != 0)
			answered = 1;
	}
	close(fd);
	return answered;
}

static void
show_log(void)
{
	char	 line[512];
	FILE	*f;

	if ((f = fopen(log_path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		printf("#   unbound: %s", line);
	fclose(f);
}

static void
unbound_stop(void)
{
	int	 status, i;

	if (unbound_pid == -1)
		return;
	(void)kill(unbound_pid, SIGTERM);
	for (i = 0; i < 500; i++) {
		if (waitpid(unbound_pid, &status, WNOHANG) != 0)
			break;
		usleep(10000);
	}
	if (i == 500) {
		(void)kill(unbound_pid, SIGKILL);
		(void)waitpid(unbound_pid, &status, 0);
	}
	unbound_pid = -1;
}

/* Start unbound and wait until it answers; the reason when it does not. */
static const char *
unbound_start(void)
{
	const char	*bin;
	struct timespec	 t0, t;
	pid_t		 parent = getpid();
	int		 attempt, fd, status;

	if ((bin = unbound_binary()) == NULL)
		return "unbound not found (apt-get install unbound)";
	if (write_zone() == -1)
		return "cannot write the zone file";
	for (attempt = 0; attempt < 3; attempt++) {
		if ((unbound_port = free_port()) == -1)
			return "no free port";
		if (write_conf(unbound_port) == -1)
			return "cannot write unbound.conf";
		fflush(stdout);
		switch (unbound_pid = fork()) {
		case -1:
			return "fork failed";
		case 0:
			(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(1);
			fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND,
			    0644);
			if (fd == -1 || dup2(fd, 1) == -1 || dup2(fd, 2) == -1)
				_exit(126);
			close(fd);
			if ((fd = open("/dev/null", O_RDONLY)) != -1) {
				(void)dup2(fd, 0);
				close(fd);
			}
			execl(bin, "unbound", "-d", "-c", conf_path,
			    (char *)NULL);
			_exit(127);
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (;;) {
			if (waitpid(unbound_pid, &status, WNOHANG) ==
			    unbound_pid) {
				unbound_pid = -1;
				break;		/* port taken? try another */
			}
			if (probe(unbound_port, READY_NAME, 16))
				return NULL;
			clock_gettime(CLOCK_MONOTONIC, &t);
			if (t.tv_sec - t0.tv_sec > 10) {
				unbound_stop();
				return "unbound does not answer within 10 s";
			}
			usleep(20000);
		}
	}
	return "unbound exits at start";
}

/* --- lookups on the loop --- */

static int		 in_dns_mx, sync_calls;

struct slot {
	int			 n;	/* callbacks */
	struct dns_mx_result	*res;
};

static void
got_result(const struct dns_mx_result *r, void *arg)
{
	struct slot	*s = arg;

	if (in_dns_mx)
		sync_calls++;
	s->n++;
	memcpy(s->res, r, sizeof(*r));
}

/* Look domain up and wait; NULL (and a diagnostic) if no answer came. */
static const struct dns_mx_result *
lookup(const char *domain, long ms)
{
	struct slot	 s;
	int		 r;

	s.n = 0;
	s.res = &res;
	in_dns_mx = 1;
	r = dns_mx(domain, got_result, &s);
	in_dns_mx = 0;
	if (r == -1) {
		printf("# dns_mx(%s): %s\n", domain, strerror(errno));
		return NULL;
	}
	run_for(&s.n, ms);
	if (s.n != 1) {
		printf("# %s: %d callbacks\n", domain, s.n);
		return NULL;
	}
	return &res;
}

struct mx_case {
	const char	*name;
	const char	*domain;
	enum dns_status	 status;
	const char	*hosts;		/* NULL: not checked */
};

static const struct mx_case mx_cases[] = {
	{ "mx_hosts_in_preference_order", "multi.test", DNS_OK,
	    "10:mx10.test=192.0.2.10 20:mx20.test=192.0.2.20 "
	    "30:mx30.test=2001:db8::30,192.0.2.30" },
	{ "domain_in_upper_case_with_final_dot", "MULTI.Test.", DNS_OK,
	    "10:mx10.test=192.0.2.10 20:mx20.test=192.0.2.20 "
	    "30:mx30.test=2001:db8::30,192.0.2.30" },
	{ "no_mx_is_the_domain_itself_a_and_aaaa", "implicit.test", DNS_OK,
	    "0:implicit.test=2001:db8::40,192.0.2.40" },
	{ "no_mx_aaaa_only", "implicit6.test", DNS_OK,
	    "0:implicit6.test=2001:db8::41" },
	{ "mx_host_with_aaaa_only", "v6only.test", DNS_OK,
	    "10:mx6.test=2001:db8::6" },
	{ "null_mx_is_permanent", "nullmx.test", DNS_NULLMX, "" },
	{ "null_mx_among_others_is_skipped", "nullmix.test", DNS_OK,
	    "10:mx10.test=192.0.2.10" },
	{ "nxdomain_is_permanent", "nosuch.test", DNS_NXDOMAIN, "" },
	{ "mx_targets_without_address_skipped", "skip.test", DNS_OK,
	    "20:mx20.test=192.0.2.20" },
	{ "no_mx_target_with_address_is_nohost", "allnoaddr.test",
	    DNS_NOHOST, "" },
	{ "no_mx_and_no_address_is_nohost", "txtonly.test", DNS_NOHOST, "" },
	{ "mx_target_with_bad_name_skipped", "badtarget.test", DNS_OK,
	    "20:mx20.test=192.0.2.20" },
	{ "mx_target_ip_address_is_no_host", "numtarget.test", DNS_NOHOST,
	    "" },
	{ "mx_target_with_underscore_tolerated", "under.test", DNS_OK,
	    "10:mx_1.test=192.0.2.11" },
	{ "mx_target_cname_followed", "cname.test", DNS_OK,
	    "10:alias.test=192.0.2.10" },
	{ "domain_cname_followed_for_mx", "cdomain.test", DNS_OK,
	    "10:mx10.test=192.0.2.10 20:mx20.test=192.0.2.20 "
	    "30:mx30.test=2001:db8::30,192.0.2.30" },
	{ "duplicate_mx_target_once_at_best", "dup.test", DNS_OK,
	    "10:mx10.test=192.0.2.10 30:mx20.test=192.0.2.20" },
	{ "unusable_addresses_dropped", "unusable.test", DNS_NOHOST, "" },
	{ "servfail_is_tempfail", "servfail.test", DNS_TEMPFAIL, "" },
	{ "refused_is_tempfail", "refused.example", DNS_TEMPFAIL, "" },
	{ "only_target_servfail_is_tempfail", "tmpmx.test", DNS_TEMPFAIL,
	    "" },
	{ "target_servfail_others_used", "tmpmix.test", DNS_OK,
	    "20:mx20.test=192.0.2.20" },
	{ "best_mx_our_name_is_loop", "loop.test", DNS_LOOP, "" },
	{ "backup_mx_our_address_keeps_better", "backup.test", DNS_OK,
	    "10:mx10.test=192.0.2.10" },
	{ "backup_mx_our_name_drops_equal_and_worse", "backupn.test", DNS_OK,
	    "10:mx10.test=192.0.2.10" },
	{ "mx_our_address_at_equal_pref_is_loop", "loopaddr.test", DNS_LOOP,
	    "" },
	{ "mx_our_ipv6_address_is_loop", "loop6.test", DNS_LOOP, "" },
	{ "mx_our_v4_mapped_address_is_loop", "loopmapped.test", DNS_LOOP,
	    "" },
	{ "no_mx_domain_is_us_is_loop", "selfaddr.test", DNS_LOOP, "" },
	{ "better_mx_without_address_then_us_is_loop", "loopnoaddr.test",
	    DNS_LOOP, "" },
	{ "better_mx_tempfail_then_us_is_tempfail", "looptemp.test",
	    DNS_TEMPFAIL, "" },
	{ "invalid_domain_empty_label", "bad..test", DNS_INVALID, "" },
	{ "invalid_domain_address_literal", "[192.0.2.1]", DNS_INVALID, "" },
	{ "invalid_domain_ip_address", "192.0.2.1", DNS_INVALID, "" },
	{ "invalid_domain_empty", "", DNS_INVALID, "" },
	{ "invalid_domain_control_bytes", "a\r\nb.test", DNS_INVALID, "" },
};

static void
check_case(const struct mx_case *c, const struct dns_mx_result *r)
{
	char	 text[4096];

	if (r == NULL) {
		ok(0, c->name);
		return;
	}
	hosts_text(r, text, sizeof(text));
	printf("# %s: %s: %s\n", r->domain, dns_status_str(r->status),
	    r->reason);
	if (!ok(r->status == c->status && (c->hosts == NULL ||
	    strcmp(text, c->hosts) == 0), c->name))
		printf("#   got %s \"%s\" (%s), expected %s \"%s\"\n",
		    dns_status_str(r->status), text, r->reason,
		    dns_status_str(c->status), c->hosts ? c->hosts : "*");
}

static void
test_lookups(void)
{
	const struct dns_mx_result	*r;
	size_t				 i;

	for (i = 0; i < sizeof(mx_cases) / sizeof(mx_cases[0]); i++)
		check_case(&mx_cases[i], lookup(mx_cases[i].domain, 5000));

	r = lookup("implicit.test", 5000);
	ok(r != NULL && r->implicit == 1, "no_mx_result_says_implicit");
	r = lookup("multi.test", 5000);
	ok(r != NULL && r->implicit == 0 && strcmp(r->domain, "multi.test")
	    == 0, "mx_result_names_the_domain");
	r = lookup("nullmx.test", 5000);
	ok(r != NULL && dns_status_permanent(r->status) &&
	    strstr(r->reason, "null MX") != NULL,
	    "null_mx_reason_says_so");
	r = lookup("loop.test", 5000);
	ok(r != NULL && strstr(r->reason, "points back at us") != NULL,
	    "loop_reason_says_so");
	r = lookup("servfail.test", 5000);
	ok(r != NULL && !dns_status_permanent(r->status),
	    "servfail_not_permanent");
}

/* All answers at once, each still right. */
static void
test_concurrent(void)
{
	static struct dns_mx_result	 rs[sizeof(mx_cases) /
					    sizeof(mx_cases[0])];
	struct slot			 s[sizeof(mx_cases) /
					    sizeof(mx_cases[0])];
	char				 text[4096];
	size_t				 i, n = sizeof(s) / sizeof(s[0]);
	int				 issued = 1, all = 0, right = 1;

	for (i = 0; i < n; i++) {
		s[i].n = 0;
		s[i].res = &rs[i];
		in_dns_mx = 1;
		if (dns_mx(mx_cases[i].domain, got_result, &s[i]) == -1)
			issued = 0;
		in_dns_mx = 0;
	}
	ok(issued, "concurrent_lookups_issued");
	deadline_start(10000);
	while (!all && !timed_out) {
		event_loop(EVLOOP_ONCE);
		for (all = 1, i = 0; i < n; i++)
			if (s[i].n == 0)
				all = 0;
	}
	evtimer_del(&tmo);
	for (i = 0; i < n; i++) {
		hosts_text(&rs[i], text, sizeof(text));
		if (s[i].n != 1 || rs[i].status != mx_cases[i].status ||
		    strcmp(text, mx_cases[i].hosts) != 0) {
			right = 0;
			printf("#   %s: %d calls, %s \"%s\"\n",
			    mx_cases[i].domain, s[i].n,
			    dns_status_str(rs[i].status), text);
		}
	}
	ok(all, "concurrent_lookups_all_answered");
	ok(right, "concurrent_lookups_all_right");
}

static void
test_equal_preferences(void)
{
	const struct dns_mx_result	*r;
	char				 orders[50][5];
	int				 run, i, j, all, norders = 0, inplace;

	all = inplace = 1;
	for (run = 0; run < 50; run++) {
		r = lookup("equal.test", 5000);
		if (r == NULL || r->status != DNS_OK || r->nhosts != 4) {
			all = 0;
			break;
		}
		memset(orders[run], 0, sizeof(orders[run]));
		for (i = 0; i < 4; i++) {
			if (r->hosts[i].pref != 10 ||
			    strlen(r->hosts[i].name) != 7 ||
			    strncmp(r->hosts[i].name, "e", 1) != 0 ||
			    strcmp(r->hosts[i].name + 2, ".test") != 0)
				all = 0;
			orders[run][i] = r->hosts[i].name[1];
		}
		for (i = 1; i <= 4; i++)
			if (strchr(orders[run], '0' + i) == NULL)
				all = 0;
		for (j = 0; j < run; j++)
			if (strncmp(orders[j], orders[run], 4) == 0)
				break;
		if (j == run)
			norders++;
	}
	ok(all, "equal_preferences_all_hosts_present");
	if (!ok(norders > 1, "equal_preferences_shuffled"))
		printf("#   one order in 50 runs: %.4s\n", orders[0]);
	printf("# %d orders of 24 in 50 runs\n", norders);

	norders = 0;
	for (run = 0; run < 30; run++) {
		r = lookup("mixed.test", 5000);
		if (r == NULL || r->nhosts != 5) {
			inplace = 0;
			break;
		}
		if (r->hosts[0].pref != 5 ||
		    strcmp(r->hosts[0].name, "first.test") != 0 ||
		    r->hosts[4].pref != 20 ||
		    strcmp(r->hosts[4].name, "last.test") != 0)
			inplace = 0;
		for (i = 1; i < 4; i++)
			if (r->hosts[i].pref != 10)
				inplace = 0;
		if (strcmp(r->hosts[1].name, "e1.test") != 0)
			norders++;
	}
	ok(inplace, "shuffle_stays_within_its_preference");
	ok(norders > 0 && norders < 30, "shuffle_within_preference_varies");
}

static void
test_bounds(void)
{
	const struct dns_mx_result	*r;
	size_t				 i;
	int				 sorted = 1, addrs = 1, alt = 1;

	r = lookup("many.test", 5000);
	if (!ok(r != NULL && r->status == DNS_OK, "many_mx_answer_over_tcp"))
		return;
	is_int(r->nhosts, DNS_MX_HOSTS_MAX, "many_mx_bounded_to_32");
	for (i = 0; i < r->nhosts; i++) {
		if (i > 0 && r->hosts[i].pref < r->hosts[i - 1].pref)
			sorted = 0;
		if (r->hosts[i].pref > 8)
			sorted = 0;
		if (r->hosts[i].naddrs != 1)
			addrs = 0;
	}
	ok(sorted, "many_mx_keeps_the_best_in_order");
	ok(addrs, "many_mx_each_host_resolved");

	r = lookup("fat.test", 5000);
	if (!ok(r != NULL && r->status == DNS_OK && r->nhosts == 1,
	    "many_addresses_answer"))
		return;
	is_int(r->hosts[0].naddrs, DNS_MX_ADDRS_MAX, "many_addresses_bounded");
	for (i = 0; i < r->hosts[0].naddrs; i++)
		if (r->hosts[0].addrs[i].ss_family !=
		    (i % 2 ? AF_INET : AF_INET6))
			alt = 0;
	ok(alt, "many_addresses_interleaved_ipv6_first");
}

static void
test_self(void)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	struct sockaddr_un	 un;
	const struct sockaddr	*addrs[DNS_SELF_ADDRS_MAX + 1];
	const char		*names[DNS_SELF_NAMES_MAX + 1];
	const char		*bad[] = { "self.test", "bad..name" };
	size_t			 i;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, SELF_ADDR4, &sin.sin_addr);
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, SELF_ADDR6, &sin6.sin6_addr);
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	for (i = 0; i < DNS_SELF_ADDRS_MAX + 1; i++)
		addrs[i] = (struct sockaddr *)&sin;
	for (i = 0; i < DNS_SELF_NAMES_MAX + 1; i++)
		names[i] = "self.test";

	is_int(dns_set_self(names, DNS_SELF_NAMES_MAX + 1, NULL, 0), -1,
	    "self_too_many_names_refused");
	is_int(dns_set_self(NULL, 0, addrs, DNS_SELF_ADDRS_MAX + 1), -1,
	    "self_too_many_addresses_refused");
	is_int(dns_set_self(bad, 2, NULL, 0), -1, "self_bad_name_refused");
	addrs[0] = (struct sockaddr *)&un;
	is_int(dns_set_self(NULL, 0, addrs, 1), -1,
	    "self_unknown_family_refused");

	names[0] = "self.test";
	names[1] = "ME.test.";
	addrs[0] = (struct sockaddr *)&sin;
	addrs[1] = (struct sockaddr *)&sin6;
	is_int(dns_set_self(names, 2, addrs, 2), 0, "self_set");
}

static void
test_failures(void)
{
	struct sockaddr_in		 sin;
	socklen_t			 len = sizeof(sin);
	struct timespec			 t0, t1;
	const struct dns_mx_result	*r;
	struct slot			 s;
	char				 servers[64];
	int				 hole, dead, port;
	long				 ms;

	dns_shutdown();
	errno = 0;
	ok(dns_mx("multi.test", got_result, &s) == -1 && errno == ENXIO,
	    "lookup_without_init_refused");
	is_int(dns_init("not-an-address", 0, 0), -1, "init_bad_servers");
	is_int(dns_init("", 0, 0), -1, "init_empty_servers");

	/* A server that reads and never answers: a timeout. */
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	hole = socket(AF_INET, SOCK_DGRAM, 0);
	if (!ok(hole != -1 && bind(hole, (struct sockaddr *)&sin,
	    sizeof(sin)) == 0 && getsockname(hole, (struct sockaddr *)&sin,
	    &len) == 0, "black_hole_server_bound"))
		return;
	(void)snprintf(servers, sizeof(servers), "127.0.0.1:%d",
	    ntohs(sin.sin_port));
	if (!ok(dns_init(servers, 150, 2) == 0, "init_short_timeout"))
		return;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = lookup("multi.test", 5000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ok(r != NULL && r->status == DNS_TEMPFAIL, "timeout_is_tempfail");
	ok(r != NULL && strstr(r->reason, "imeout") != NULL,
	    "timeout_reason_says_so");
	printf("# timeout after %ld ms (150 + 300 expected)\n", ms);
	ok(ms >= 400 && ms < 3000, "timeout_after_two_tries_doubling");

	/* Shut down with a lookup pending: its callback never comes. */
	s.n = 0;
	s.res = &res;
	ok(dns_mx("multi.test", got_result, &s) == 0,
	    "lookup_before_shutdown_issued");
	run_for(&s.n, 50);
	dns_shutdown();
	run_for(&s.n, 1000);	/* past 150 + 300 ms of tries */
	is_int(s.n, 0, "shutdown_drops_pending_callbacks");
	close(hole);

	/* Nothing listens: ICMP port unreachable, connection refused. */
	if ((dead = free_port()) == -1)
		dead = 9;
	(void)snprintf(servers, sizeof(servers), "127.0.0.1:%d", dead);
	if (!ok(dns_init(servers, 300, 2) == 0, "init_dead_port"))
		return;
	r = lookup("multi.test", 5000);
	ok(r != NULL && r->status == DNS_TEMPFAIL, "nothing_listening_is_tempfail");
	dns_shutdown();

	/* And back to unbound: a fresh channel works. */
	port = unbound_port;
	(void)snprintf(servers, sizeof(servers), "127.0.0.1:%d", port);
	if (!ok(dns_init(servers, 1000, 2) == 0, "reinit_after_shutdown"))
		return;
	r = lookup("multi.test", 5000);
	ok(r != NULL && r->status == DNS_OK && r->nhosts == 3,
	    "lookup_after_reinit");
}

int
main(void)
{
	char		 servers[64], cmd[PATH_MAX + 16];
	const char	*why;

	(void)signal(SIGPIPE, SIG_IGN);
	event_init();
	test_names();
	test_mx_answers();
	test_addr_answers();
	test_self();

	(void)strlcpy(scratch, "/tmp/sqmail-dns.XXXXXX", sizeof(scratch));
	if (mkdtemp(scratch) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	(void)snprintf(zone_path, sizeof(zone_path), "%s/test.zone", scratch);
	(void)snprintf(conf_path, sizeof(conf_path), "%s/unbound.conf",
	    scratch);
	(void)snprintf(log_path, sizeof(log_path), "%s/unbound.log", scratch);

	why = unbound_start();
	if (!ok(why == NULL, "unbound_starts_and_answers")) {
		printf("#   %s\n", why);
		show_log();
	} else {
		(void)snprintf(servers, sizeof(servers), "127.0.0.1:%d",
		    unbound_port);
		if (ok(dns_init(servers, 1000, 2) == 0, "init_on_unbound")) {
			test_lookups();
			test_concurrent();
			test_equal_preferences();
			test_bounds();
			test_failures();
			dns_shutdown();
		}
		is_int(sync_calls, 0, "callback_never_from_within_dns_mx");
		if (tap_failed)
			show_log();
	}
	unbound_stop();

	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", scratch);
	return done_testing();
}
