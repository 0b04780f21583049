/*
 * Unit tests for lib/mproc.c: typed fields round trip, malformed payloads
 * fail closed through m_error(), and channels behave on the event loop
 * (lost peers, handlers that clear their own channel, write re-arming).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"
#include "log.h"
#include "mproc.h"
#include "tap.h"
#include "loop.h"

#define PAYLOAD_MAX	(MAX_IMSGSIZE - IMSG_HEADER_SIZE)

static jmp_buf		 jb;
static void		(*m_error_default)(const char *);
static const char	*err_what;
static int		 err_count;

static void
jmp_error(const char *what)
{
	err_what = what;
	err_count++;
	longjmp(jb, 1);
}

/* A string of n copies of c, in a static buffer. */
static const char *
rep(char c, size_t n)
{
	static char	 buf[PATH_MAX + 64];

	if (n >= sizeof(buf))
		abort();
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

static int
mkpair(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
}

/*
 * Section 1: building messages with the adders, reading them with the
 * getters, through a real socketpair (no event loop).
 */

static struct mproc	*tx;
static struct imsgbuf	*rx;
static int		 txrx[2];

static void
chan_open(void)
{
	if (mkpair(txrx) == -1)
		exit(2);
	tx = calloc(1, sizeof(*tx));
	rx = calloc(1, sizeof(*rx));
	mproc_init(tx, txrx[0], PROC_LKA, NULL);
	if (fcntl(txrx[1], F_SETFL, O_NONBLOCK) == -1)
		exit(2);
	imsg_init(rx, txrx[1]);
}

static void
chan_close(void)
{
	mproc_clear(tx);
	imsg_clear(rx);
	close(txrx[1]);
	free(tx);
	free(rx);
}

/* Build one message with build(), send it, and receive it into imsg. */
static int
roundtrip(void (*build)(struct mproc *), struct imsg *imsg)
{
	ssize_t	 n;

	m_create(tx, 1, 0, -1);
	build(tx);
	m_close(tx);
	m_flush(tx);
	while ((n = imsg_get(rx, imsg)) == 0)
		if (imsg_read(rx) <= 0)
			return -1;
	return n > 0 ? 0 : -1;
}

/* Run reader() over imsg's payload; return the m_error() text or NULL. */
static const char *
read_with(void (*reader)(struct msg *), struct imsg *imsg)
{
	struct msg	 m;

	err_what = NULL;
	m_msg(&m, imsg);
	if (setjmp(jb) == 0)
		reader(&m);
	return err_what;
}

/* Values read back by the readers below. */
static int		 v_int;
static uint32_t		 v_u32;
static uint64_t		 v_u64;
static size_t		 v_size;
static time_t		 v_time;
static const char	*v_str;
static const void	*v_data;
static size_t		 v_datalen;
static struct sockaddr_storage v_ss;
static struct mailaddr	 v_ma;
static struct dest	 v_dest;

static void
rd_int(struct msg *m)
{
	m_get_int(m, &v_int);
	m_end(m);
}

static void
rd_u32(struct msg *m)
{
	m_get_u32(m, &v_u32);
	m_end(m);
}

static void
rd_u64(struct msg *m)
{
	m_get_u64(m, &v_u64);
	m_end(m);
}

static void
rd_size(struct msg *m)
{
	m_get_size(m, &v_size);
	m_end(m);
}

static void
rd_time(struct msg *m)
{
	m_get_time(m, &v_time);
	m_end(m);
}

static void
rd_msgid(struct msg *m)
{
	m_get_msgid(m, &v_u64);
	m_end(m);
}

static void
rd_string(struct msg *m)
{
	m_get_string(m, &v_str);
	m_end(m);
}

static void
rd_data(struct msg *m)
{
	m_get_data(m, &v_data, &v_datalen);
	m_end(m);
}

static void
rd_sockaddr(struct msg *m)
{
	m_get_sockaddr(m, &v_ss);
	m_end(m);
}

static void
rd_mailaddr(struct msg *m)
{
	m_get_mailaddr(m, &v_ma);
	m_end(m);
}

static void
rd_dest(struct msg *m)
{
	m_get_dest(m, &v_dest);
	m_end(m);
}


/* Fixtures. */
static struct sockaddr_in	 sin4;
static struct sockaddr_in6	 sin6;
static struct sockaddr_un	 sun_fx;
static struct mailaddr		 ma_max, ma_null;
static struct dest		 dest_max, dest_small;

static void
b_nothing(struct mproc *p)
{
}

static void
b_int_max(struct mproc *p)
{
	m_add_int(p, INT_MAX);
}

static void
fixtures(void)
{
	memset(&sin4, 0, sizeof(sin4));
	sin4.sin_family = AF_INET;
	sin4.sin_port = htons(25);
	inet_pton(AF_INET, "192.0.2.7", &sin4.sin_addr);
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(587);
	inet_pton(AF_INET6, "2001:db8::25", &sin6.sin6_addr);
	sin6.sin6_scope_id = 3;
	memset(&sun_fx, 0, sizeof(sun_fx));
	sun_fx.sun_family = AF_UNIX;
	strlcpy(sun_fx.sun_path, "/var/run/sqmail.sock",
	    sizeof(sun_fx.sun_path));

	strlcpy(ma_max.user, rep('u', SQ_LOCALPART_MAX), sizeof(ma_max.user));
	strlcpy(ma_max.domain, rep('d', SQ_DOMAIN_MAX), sizeof(ma_max.domain));
	memset(&ma_null, 0, sizeof(ma_null));

	memset(&dest_max, 0, sizeof(dest_max));
	strlcpy(dest_max.addr, rep('a', SQ_ADDR_MAX - 1),
	    sizeof(dest_max.addr));
	strlcpy(dest_max.orig, rep('o', SQ_ADDR_MAX - 1),
	    sizeof(dest_max.orig));
	dest_max.type = DEST_LOCAL;
	strlcpy(dest_max.user, rep('n', SQ_USER_MAX), sizeof(dest_max.user));
	dest_max.method = MBOX_MBOX;
	strlcpy(dest_max.mailbox, rep('m', PATH_MAX - 1),
	    sizeof(dest_max.mailbox));
	dest_max.uid = UINT32_MAX - 1;
	dest_max.gid = UINT32_MAX - 1;
	strlcpy(dest_max.home, rep('/', SQ_HOME_MAX), sizeof(dest_max.home));
	dest_max.dotqmail = 1;
	strlcpy(dest_max.dash, "-", sizeof(dest_max.dash));
	strlcpy(dest_max.ext, rep('e', SQ_EXT_MAX), sizeof(dest_max.ext));

	memset(&dest_small, 0, sizeof(dest_small));
	strlcpy(dest_small.addr, "joe@example.org", sizeof(dest_small.addr));
	strlcpy(dest_small.orig, "Joe@Example.ORG", sizeof(dest_small.orig));
	dest_small.type = DEST_REMOTE;
	dest_small.method = MBOX_NONE;
}

static int
dest_eq(const struct dest *a, const struct dest *b)
{
	return strcmp(a->addr, b->addr) == 0 &&
	    strcmp(a->orig, b->orig) == 0 && a->type == b->type &&
	    strcmp(a->user, b->user) == 0 && a->method == b->method &&
	    strcmp(a->mailbox, b->mailbox) == 0 && a->uid == b->uid &&
	    a->gid == b->gid && strcmp(a->home, b->home) == 0 &&
	    a->dotqmail == b->dotqmail && strcmp(a->dash, b->dash) == 0 &&
	    strcmp(a->ext, b->ext) == 0;
}

enum rt_kind {
	RT_NONE, RT_INT, RT_U32, RT_U64, RT_SIZE, RT_TIME, RT_MSGID,
	RT_STRING, RT_DATA, RT_SOCKADDR, RT_MAILADDR, RT_DEST
};

struct rt_row {
	const char	*name;
	enum rt_kind	 kind;
	union {
		int64_t		 i;
		uint64_t	 u;
		const char	*s;
		const void	*p;
	}		 v;
	size_t		 len;	/* RT_DATA */
};

static const struct rt_row	*rt_cur;

/* Add rt_cur's value with the adder of its kind. */
static void
rt_build(struct mproc *p)
{
	const struct rt_row	*r = rt_cur;

	switch (r->kind) {
	case RT_NONE:
		break;
	case RT_INT:
		m_add_int(p, (int)r->v.i);
		break;
	case RT_U32:
		m_add_u32(p, (uint32_t)r->v.u);
		break;
	case RT_U64:
		m_add_u64(p, r->v.u);
		break;
	case RT_SIZE:
		m_add_size(p, (size_t)r->v.u);
		break;
	case RT_TIME:
		m_add_time(p, (time_t)r->v.i);
		break;
	case RT_MSGID:
		m_add_msgid(p, r->v.u);
		break;
	case RT_STRING:
		m_add_string(p, r->v.s);
		break;
	case RT_DATA:
		m_add_data(p, r->v.p, r->len);
		break;
	case RT_SOCKADDR:
		m_add_sockaddr(p, r->v.p);
		break;
	case RT_MAILADDR:
		m_add_mailaddr(p, r->v.p);
		break;
	case RT_DEST:
		m_add_dest(p, r->v.p);
		break;
	}
}

/* Read rt_cur's kind back with its getter. */
static void
rt_read(struct msg *m)
{
	switch (rt_cur->kind) {
	case RT_NONE:
		break;
	case RT_INT:
		m_get_int(m, &v_int);
		break;
	case RT_U32:
		m_get_u32(m, &v_u32);
		break;
	case RT_U64:
		m_get_u64(m, &v_u64);
		break;
	case RT_SIZE:
		m_get_size(m, &v_size);
		break;
	case RT_TIME:
		m_get_time(m, &v_time);
		break;
	case RT_MSGID:
		m_get_msgid(m, &v_u64);
		break;
	case RT_STRING:
		m_get_string(m, &v_str);
		break;
	case RT_DATA:
		m_get_data(m, &v_data, &v_datalen);
		break;
	case RT_SOCKADDR:
		m_get_sockaddr(m, &v_ss);
		break;
	case RT_MAILADDR:
		m_get_mailaddr(m, &v_ma);
		break;
	case RT_DEST:
		m_get_dest(m, &v_dest);
		break;
	}
	m_end(m);
}

/* Did the getter give back what the adder was given? */
static int
rt_same(const struct rt_row *r)
{
	const struct sockaddr	*sa;
	const struct mailaddr	*ma;

	switch (r->kind) {
	case RT_NONE:
		return 1;
	case RT_INT:
		return v_int == r->v.i;
	case RT_U32:
		return v_u32 == r->v.u;
	case RT_U64:
	case RT_MSGID:
		return v_u64 == r->v.u;
	case RT_SIZE:
		return v_size == r->v.u;
	case RT_TIME:
		return v_time == r->v.i;
	case RT_STRING:
		return strcmp(v_str, r->v.s) == 0;
	case RT_DATA:
		return v_datalen == r->len &&
		    (r->len == 0 || memcmp(v_data, r->v.p, r->len) == 0);
	case RT_SOCKADDR:
		sa = r->v.p;
		return memcmp(&v_ss, sa, sa->sa_family == AF_INET ?
		    sizeof(sin4) : sa->sa_family == AF_INET6 ?
		    sizeof(sin6) : sizeof(sun_fx)) == 0;
	case RT_MAILADDR:
		ma = r->v.p;
		return strcmp(v_ma.user, ma->user) == 0 &&
		    strcmp(v_ma.domain, ma->domain) == 0;
	case RT_DEST:
		return dest_eq(&v_dest, r->v.p);
	}
	return 0;
}

static void
test_typed_round_trips(void)
{
	static const struct rt_row rows[] = {
		{ "empty_payload_round_trips", RT_NONE, .len = 0 },
		{ "int_min_round_trips", RT_INT, .v.i = INT_MIN },
		{ "int_max_round_trips", RT_INT, .v.i = INT_MAX },
		{ "int_minus_one_round_trips", RT_INT, .v.i = -1 },
		{ "u32_max_round_trips", RT_U32, .v.u = UINT32_MAX },
		{ "u64_max_round_trips", RT_U64, .v.u = UINT64_MAX },
		{ "size_max_round_trips", RT_SIZE, .v.u = SIZE_MAX },
		{ "negative_time_round_trips", RT_TIME, .v.i = -86400 },
		{ "time_past_2038_round_trips", RT_TIME, .v.i = 4102444800LL },
		{ "msgid_round_trips", RT_MSGID, .v.u = 0x0123456789abcdefULL },
		{ "string_round_trips", RT_STRING, .v.s = "hello world" },
		{ "empty_string_round_trips", RT_STRING, .v.s = "" },
		{ "data_with_nuls_round_trips", RT_DATA, .v.p = "a\0b\0c",
		    .len = 5 },
		{ "empty_data_round_trips", RT_DATA, .v.p = NULL, .len = 0 },
		{ "sockaddr_in_round_trips", RT_SOCKADDR, .v.p = &sin4 },
		{ "sockaddr_in6_round_trips", RT_SOCKADDR, .v.p = &sin6 },
		{ "sockaddr_un_round_trips", RT_SOCKADDR, .v.p = &sun_fx },
		{ "mailaddr_at_field_limits_round_trips", RT_MAILADDR,
		    .v.p = &ma_max },
		{ "null_mailaddr_round_trips", RT_MAILADDR, .v.p = &ma_null },
		{ "dest_at_field_limits_round_trips", RT_DEST,
		    .v.p = &dest_max },
		{ "small_remote_dest_round_trips", RT_DEST,
		    .v.p = &dest_small },
	};
	struct imsg	 imsg;
	const char	*what;
	size_t		 i;

	chan_open();
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		rt_cur = &rows[i];
		if (roundtrip(rt_build, &imsg) == -1) {
			ok(0, rows[i].name);
			continue;
		}
		what = read_with(rt_read, &imsg);
		if (!ok(what == NULL && rt_same(&rows[i]), rows[i].name) &&
		    what != NULL)
			printf("#   m_error: %s\n", what);
		imsg_free(&imsg);
	}
	is_int(tx->msg_out, sizeof(rows) / sizeof(rows[0]),
	    "msg_out_counts_closed_messages");
	chan_close();
}

/* Builders: malformed payloads, written field by field with m_add(). */
static void
b_raw(struct mproc *p, const void *d, size_t n)
{
	m_add(p, d, n);
}

static void
b_sa_raw(struct mproc *p, uint32_t len, sa_family_t fam, size_t nbytes)
{
	unsigned char	 buf[512];

	memset(buf, 0, sizeof(buf));
	memcpy(buf, &fam, sizeof(fam));
	m_add_u32(p, len);
	m_add(p, buf, nbytes);
}

/* A dest written field by field, so that fields can be bad. */
static void
b_dest_fields(struct mproc *p, const char *addr, const char *orig, int type,
    const char *user, int method, const char *mailbox)
{
	char	*a = strdup(addr), *o = strdup(orig), *u = strdup(user);
	char	*mb = strdup(mailbox);

	m_add_string(p, a);
	m_add_string(p, o);
	m_add_int(p, type);
	m_add_string(p, u);
	m_add_int(p, method);
	m_add_string(p, mb);
	free(a);
	free(o);
	free(u);
	free(mb);
}

static void
b_short2(struct mproc *p)
{
	b_raw(p, "\1\2", 2);
}

static void
b_short3(struct mproc *p)
{
	b_raw(p, "\1\2\3", 3);
}

static void
b_short7(struct mproc *p)
{
	b_raw(p, "1234567", 7);
}

static void
b_int_plus1(struct mproc *p)
{
	m_add_int(p, 1);
	b_raw(p, "x", 1);
}

static void
b_u64_plus4(struct mproc *p)
{
	m_add_u64(p, 1);
	m_add_u32(p, 1);
}

static void
b_str_twice(struct mproc *p)
{
	m_add_string(p, "a");
	m_add_string(p, "b");
}

static void
b_nonul(struct mproc *p)
{
	b_raw(p, "abc", 3);
}

static void
b_data_long(struct mproc *p)
{
	m_add_u32(p, 100);
	b_raw(p, "0123456789", 10);
}

static void
b_data_huge(struct mproc *p)
{
	m_add_u32(p, UINT32_MAX);
	b_raw(p, "x", 1);
}

static void
b_data_extra(struct mproc *p)
{
	m_add_data(p, "ab", 2);
	b_raw(p, "c", 1);
}

static void
b_sa_family(struct mproc *p)
{
	b_sa_raw(p, sizeof(struct sockaddr_in), AF_APPLETALK,
	    sizeof(struct sockaddr_in));
}

static void
b_sa_unspec(struct mproc *p)
{
	b_sa_raw(p, sizeof(struct sockaddr_in), AF_UNSPEC,
	    sizeof(struct sockaddr_in));
}

static void
b_sa_4as6(struct mproc *p)
{
	b_sa_raw(p, sizeof(struct sockaddr_in6), AF_INET,
	    sizeof(struct sockaddr_in6));
}

static void
b_sa_6short(struct mproc *p)
{
	b_sa_raw(p, sizeof(struct sockaddr_in), AF_INET6,
	    sizeof(struct sockaddr_in));
}

static void
b_sa_unshort(struct mproc *p)
{
	b_sa_raw(p, 20, AF_UNIX, 20);
}

static void
b_sa_huge(struct mproc *p)
{
	b_sa_raw(p, sizeof(struct sockaddr_storage) + 8, AF_INET,
	    sizeof(struct sockaddr_storage) + 8);
}

static void
b_sa_zero(struct mproc *p)
{
	b_sa_raw(p, 0, AF_INET, 0);
}

static void
b_sa_one(struct mproc *p)
{
	b_sa_raw(p, 1, AF_INET, 1);
}

static void
b_sa_past(struct mproc *p)
{
	b_sa_raw(p, sizeof(struct sockaddr_in), AF_INET, 8);
}

static void
b_sa_nolen(struct mproc *p)
{
	b_raw(p, "\20", 1);
}

static void
b_ma_user(struct mproc *p)
{
	m_add_string(p, rep('u', SQ_LOCALPART_MAX + 1));
	m_add_string(p, "d");
}

static void
b_ma_domain(struct mproc *p)
{
	m_add_string(p, "u");
	m_add_string(p, rep('d', SQ_DOMAIN_MAX + 1));
}

static void
b_ma_nodomain(struct mproc *p)
{
	m_add_string(p, "u");
}

static void
b_ma_extra(struct mproc *p)
{
	m_add_mailaddr(p, &ma_null);
	m_add_int(p, 0);
}

static void
b_d_addr(struct mproc *p)
{
	b_dest_fields(p, rep('a', SQ_ADDR_MAX), "o", 1, "u", 1, "m");
}

static void
b_d_orig(struct mproc *p)
{
	b_dest_fields(p, "a", rep('o', SQ_ADDR_MAX), 1, "u", 1, "m");
}

static void
b_d_user(struct mproc *p)
{
	b_dest_fields(p, "a", "o", 1, rep('u', SQ_USER_MAX + 1), 1, "m");
}

static void
b_d_mbox(struct mproc *p)
{
	b_dest_fields(p, "a", "o", 1, "u", 1, rep('m', PATH_MAX));
}

static void
b_d_type0(struct mproc *p)
{
	b_dest_fields(p, "a", "o", 0, "u", 1, "m");
}

static void
b_d_type3(struct mproc *p)
{
	b_dest_fields(p, "a", "o", 3, "u", 1, "m");
}

static void
b_d_typeneg(struct mproc *p)
{
	b_dest_fields(p, "a", "o", -1, "u", 1, "m");
}

static void
b_d_meth6(struct mproc *p)
{
	b_dest_fields(p, "a", "o", 1, "u", MBOX_METHODS, "m");
}

static void
b_d_methneg(struct mproc *p)
{
	b_dest_fields(p, "a", "o", 2, "u", -1, "m");
}

/* The qmail identity after the first six fields of a good dest. */
static void
b_dest_qmail(struct mproc *p, const char *home, int dotqmail,
    const char *dash, const char *ext)
{
	char	*h = strdup(home), *d = strdup(dash), *e = strdup(ext);

	b_dest_fields(p, "a", "o", 1, "u", 1, "m");
	m_add_u32(p, 1000);
	m_add_u32(p, 1000);
	m_add_string(p, h);
	m_add_int(p, dotqmail);
	m_add_string(p, d);
	m_add_string(p, e);
	free(h);
	free(d);
	free(e);
}

static void
b_d_ok(struct mproc *p)
{
	b_dest_fields(p, "a", "o", 2, "", 0, "");
	m_add_u32(p, 0);
	m_add_u32(p, 0);
	m_add_string(p, "");
	m_add_int(p, 0);
	m_add_string(p, "");
	m_add_string(p, "");
}

static void
b_d_qok(struct mproc *p)
{
	b_dest_qmail(p, "/home/u", 1, "-", "Ext-Default");
}

static void
b_d_qhome_rel(struct mproc *p)
{
	b_dest_qmail(p, "home/u", 1, "-", "x");
}

static void
b_d_qhome_long(struct mproc *p)
{
	b_dest_qmail(p, rep('/', SQ_HOME_MAX + 1), 1, "-", "x");
}

static void
b_d_qflag(struct mproc *p)
{
	b_dest_qmail(p, "/h", 2, "-", "x");
}

static void
b_d_qdash(struct mproc *p)
{
	b_dest_qmail(p, "/h", 1, "+", "x");
}

static void
b_d_qext_long(struct mproc *p)
{
	b_dest_qmail(p, "/h", 1, "-", rep('e', SQ_EXT_MAX + 1));
}

static void
b_d_qtrunc(struct mproc *p)
{
	b_dest_fields(p, "a", "o", 1, "u", 1, "m");
	m_add_u32(p, 1000);
}

static void
b_d_trunc(struct mproc *p)
{
	m_add_string(p, "a");
	m_add_string(p, "o");
	m_add_int(p, 1);
	m_add_string(p, "u");
}

static void
b_d_nonul(struct mproc *p)
{
	m_add_string(p, "a");
	m_add_string(p, "o");
	m_add_int(p, 1);
	m_add_string(p, "u");
	m_add_int(p, 1);
	b_raw(p, "mbox", 4);
}

static void
rd_two_strings(struct msg *m)
{
	const char	*a, *b;

	m_get_string(m, &a);
	m_get_string(m, &b);
	m_end(m);
}

static void
test_malformed_payloads_call_m_error(void)
{
	static const struct {
		const char	*name;
		void		(*build)(struct mproc *);
		void		(*read)(struct msg *);
		const char	*what;	/* expected m_error text; NULL: none */
	} rows[] = {
		{ "int_from_empty_payload_fails", b_nothing, rd_int,
		    "short int" },
		{ "int_from_two_bytes_fails", b_short2, rd_int, "short int" },
		{ "u32_from_three_bytes_fails", b_short3, rd_u32, "short u32" },
		{ "u64_from_seven_bytes_fails", b_short7, rd_u64, "short u64" },
		{ "size_from_seven_bytes_fails", b_short7, rd_size,
		    "short size" },
		{ "time_from_seven_bytes_fails", b_short7, rd_time,
		    "short time" },
		{ "msgid_from_seven_bytes_fails", b_short7, rd_msgid,
		    "short msgid" },
		{ "byte_left_after_int_fails_at_m_end", b_int_plus1, rd_int,
		    "leftover bytes" },
		{ "u32_left_after_u64_fails_at_m_end", b_u64_plus4, rd_u64,
		    "leftover bytes" },
		{ "second_string_left_fails_at_m_end", b_str_twice, rd_string,
		    "leftover bytes" },
		{ "two_strings_read_fully_pass", b_str_twice, rd_two_strings,
		    NULL },
		{ "string_without_nul_fails", b_nonul, rd_string,
		    "string without NUL" },
		{ "string_from_empty_payload_fails", b_nothing, rd_string,
		    "string without NUL" },
		{ "data_longer_than_payload_fails", b_data_long, rd_data,
		    "short data" },
		{ "data_length_4g_fails", b_data_huge, rd_data, "short data" },
		{ "data_length_cut_short_fails", b_short3, rd_data,
		    "short data length" },
		{ "byte_left_after_data_fails_at_m_end", b_data_extra, rd_data,
		    "leftover bytes" },
		{ "sockaddr_unknown_family_fails", b_sa_family, rd_sockaddr,
		    "sockaddr family" },
		{ "sockaddr_af_unspec_fails", b_sa_unspec, rd_sockaddr,
		    "sockaddr family" },
		{ "sockaddr_inet_with_in6_length_fails", b_sa_4as6, rd_sockaddr,
		    "sockaddr length does not match its family" },
		{ "sockaddr_inet6_with_in_length_fails", b_sa_6short,
		    rd_sockaddr, "sockaddr length does not match its family" },
		{ "sockaddr_unix_short_fails", b_sa_unshort, rd_sockaddr,
		    "sockaddr length does not match its family" },
		{ "sockaddr_over_storage_fails", b_sa_huge, rd_sockaddr,
		    "sockaddr length out of range" },
		{ "sockaddr_length_zero_fails", b_sa_zero, rd_sockaddr,
		    "sockaddr length out of range" },
		{ "sockaddr_length_one_fails", b_sa_one, rd_sockaddr,
		    "sockaddr length out of range" },
		{ "sockaddr_past_payload_fails", b_sa_past, rd_sockaddr,
		    "short sockaddr" },
		{ "sockaddr_without_length_fails", b_sa_nolen, rd_sockaddr,
		    "short sockaddr length" },
		{ "mailaddr_user_over_field_fails", b_ma_user, rd_mailaddr,
		    "mailaddr user too long" },
		{ "mailaddr_domain_over_field_fails", b_ma_domain, rd_mailaddr,
		    "mailaddr domain too long" },
		{ "mailaddr_without_domain_fails", b_ma_nodomain, rd_mailaddr,
		    "string without NUL" },
		{ "int_after_mailaddr_fails_at_m_end", b_ma_extra, rd_mailaddr,
		    "leftover bytes" },
		{ "dest_addr_over_field_fails", b_d_addr, rd_dest,
		    "dest addr too long" },
		{ "dest_orig_over_field_fails", b_d_orig, rd_dest,
		    "dest orig too long" },
		{ "dest_user_over_field_fails", b_d_user, rd_dest,
		    "dest user too long" },
		{ "dest_mailbox_over_field_fails", b_d_mbox, rd_dest,
		    "dest mailbox too long" },
		{ "dest_type_zero_fails", b_d_type0, rd_dest,
		    "dest type out of range" },
		{ "dest_type_three_fails", b_d_type3, rd_dest,
		    "dest type out of range" },
		{ "dest_type_negative_fails", b_d_typeneg, rd_dest,
		    "dest type out of range" },
		{ "dest_method_past_the_last_fails", b_d_meth6, rd_dest,
		    "dest method out of range" },
		{ "dest_method_negative_fails", b_d_methneg, rd_dest,
		    "dest method out of range" },
		{ "dest_with_empty_user_and_mailbox_passes", b_d_ok, rd_dest,
		    NULL },
		{ "dest_with_qmail_identity_passes", b_d_qok, rd_dest, NULL },
		{ "dest_relative_home_fails", b_d_qhome_rel, rd_dest,
		    "dest home not absolute" },
		{ "dest_home_over_field_fails", b_d_qhome_long, rd_dest,
		    "dest home too long" },
		{ "dest_dotqmail_two_fails", b_d_qflag, rd_dest,
		    "dest dotqmail out of range" },
		{ "dest_dash_plus_fails", b_d_qdash, rd_dest,
		    "dest dash is neither \"\" nor \"-\"" },
		{ "dest_ext_over_field_fails", b_d_qext_long, rd_dest,
		    "dest ext too long" },
		{ "dest_truncated_after_uid_fails", b_d_qtrunc, rd_dest,
		    "short u32" },
		{ "dest_truncated_after_user_fails", b_d_trunc, rd_dest,
		    "short int" },
		{ "dest_mailbox_without_nul_fails", b_d_nonul, rd_dest,
		    "string without NUL" },
	};
	struct imsg	 imsg;
	const char	*what;
	size_t		 i;

	chan_open();
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (roundtrip(rows[i].build, &imsg) == -1) {
			ok(0, rows[i].name);
			continue;
		}
		what = read_with(rows[i].read, &imsg);
		is_str(what, rows[i].what, rows[i].name);
		imsg_free(&imsg);
	}
	chan_close();
}

/* A payload cut short at every length fails, never reads past the end. */
static void
rd_everything(struct msg *m)
{
	int		 i;
	uint32_t	 u32;
	uint64_t	 u64;
	size_t		 sz;
	time_t		 t;
	const char	*s;
	const void	*d;
	struct sockaddr_storage ss;
	struct mailaddr	 ma;
	struct dest	 dst;

	m_get_int(m, &i);
	m_get_u32(m, &u32);
	m_get_u64(m, &u64);
	m_get_size(m, &sz);
	m_get_time(m, &t);
	m_get_string(m, &s);
	m_get_data(m, &d, &sz);
	m_get_sockaddr(m, &ss);
	m_get_msgid(m, &u64);
	m_get_mailaddr(m, &ma);
	m_get_dest(m, &dst);
	m_end(m);
}

static void
b_everything(struct mproc *p)
{
	struct mailaddr	 ma;

	strlcpy(ma.user, "joe", sizeof(ma.user));
	strlcpy(ma.domain, "example.org", sizeof(ma.domain));
	m_add_int(p, 7);
	m_add_u32(p, 8);
	m_add_u64(p, 9);
	m_add_size(p, 10);
	m_add_time(p, 11);
	m_add_string(p, "twelve");
	m_add_data(p, "13", 2);
	m_add_sockaddr(p, (struct sockaddr *)&sin6);
	m_add_msgid(p, 14);
	m_add_mailaddr(p, &ma);
	m_add_dest(p, &dest_small);
}

static void
test_every_truncation_fails(void)
{
	struct imsg	 imsg, cut;
	size_t		 full, n;
	int		 allfail = 1;

	chan_open();
	if (roundtrip(b_everything, &imsg) == -1)
		exit(2);
	ok(read_with(rd_everything, &imsg) == NULL,
	    "every_field_type_in_one_message_round_trips");
	full = imsg.hdr.len - IMSG_HEADER_SIZE;
	for (n = 0; n < full; n++) {
		/* An allocation of exactly n bytes, so ASan sees overreads. */
		cut = imsg;
		cut.hdr.len = IMSG_HEADER_SIZE + n;
		cut.data = NULL;
		if (n > 0) {
			cut.data = malloc(n);
			memcpy(cut.data, imsg.data, n);
		}
		if (read_with(rd_everything, &cut) == NULL)
			allfail = 0;
		imsg_free(&cut);
	}
	ok(allfail, "message_cut_at_every_length_fails");
	imsg_free(&imsg);
	chan_close();
}

/* Section 2: channels on the event loop. */

static void
run_until(int *done)
{
	run_for(done, 5000);
}

static int
fd_valid(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

static struct mproc	*ea, *eb;
static int		 esv[2];

static void
echan_open(void (*handler)(struct mproc *, struct imsg *))
{
	if (mkpair(esv) == -1)
		exit(2);
	ea = calloc(1, sizeof(*ea));
	eb = calloc(1, sizeof(*eb));
	mproc_init(ea, esv[0], PROC_QUEUE, NULL);
	mproc_init(eb, esv[1], PROC_SMTP, handler);
	mproc_enable(ea);
	mproc_enable(eb);
}

static void
echan_close(void)
{
	if (ea != NULL) {
		mproc_clear(ea);
		free(ea);
	}
	if (eb != NULL) {
		mproc_clear(eb);
		free(eb);
	}
	ea = eb = NULL;
}

static int	 h_count, h_done, h_bad, h_fd = -1;
static uint32_t	 h_peerid;
static char	 h_text[64];

static void
h_typed(struct mproc *p, struct imsg *imsg)
{
	struct msg		 m;
	struct sockaddr_storage	 ss;
	struct mailaddr		 ma;
	struct dest		 d;
	const char		*s;
	uint64_t		 u64;
	int			 i;

	h_count++;
	m_msg(&m, imsg);
	if (setjmp(jb) != 0) {
		h_bad = 1;
		h_done = 1;
		return;
	}
	switch (imsg->hdr.type) {
	case 1:
		m_get_u64(&m, &u64);
		m_get_sockaddr(&m, &ss);
		m_get_mailaddr(&m, &ma);
		m_get_int(&m, &i);
		m_end(&m);
		if (u64 != 99 || memcmp(&ss, &sin4, sizeof(sin4)) != 0 ||
		    strcmp(ma.user, "joe") != 0 || i != -3)
			h_bad = 1;
		h_fd = imsg->fd;
		h_peerid = imsg->hdr.peerid;
		break;
	case 2:
		m_get_string(&m, &s);
		m_end(&m);
		strlcpy(h_text, s, sizeof(h_text));
		break;
	case 3:
		m_get_dest(&m, &d);
		m_end(&m);
		if (!dest_eq(&d, &dest_max))
			h_bad = 1;
		h_done = 1;
		break;
	default:
		h_bad = 1;
	}
}

static void
test_channel_delivers_typed_messages(void)
{
	struct mailaddr	 ma;
	char		 buf[8];
	int		 p[2];

	memset(&ma, 0, sizeof(ma));
	strlcpy(ma.user, "joe", sizeof(ma.user));
	strlcpy(ma.domain, "example.org", sizeof(ma.domain));
	echan_open(h_typed);
	is_str(ea->name, "queue", "mproc_name_of_queue_peer");
	is_str(eb->name, "smtp", "mproc_name_of_smtp_peer");
	ok(fcntl(esv[0], F_GETFL) & O_NONBLOCK, "mproc_init_sets_nonblock");
	ok(fcntl(esv[0], F_GETFD) & FD_CLOEXEC, "mproc_init_sets_cloexec");
	if (pipe(p) == -1)
		exit(2);

	m_create(ea, 1, 4242, p[0]);
	m_add_u64(ea, 99);
	m_add_sockaddr(ea, (struct sockaddr *)&sin4);
	m_add_mailaddr(ea, &ma);
	m_add_int(ea, -3);
	m_close(ea);
	ok(ea->flushing && !(ea->events & EV_WRITE),
	    "queued_message_schedules_a_flush_not_a_poll");
	m_compose(ea, 2, 0, -1, "composed", 9);
	m_create(ea, 3, 0, -1);
	m_add_dest(ea, &dest_max);
	m_close(ea);
	run_until(&h_done);
	is_int(h_count, 3, "handler_gets_each_message");
	ok(!h_bad, "handler_reads_typed_fields_back");
	is_int(h_peerid, 4242, "peerid_reaches_handler");
	is_str(h_text, "composed", "m_compose_payload_reaches_handler");
	ok(h_fd >= 0, "m_create_fd_reaches_handler");
	if (write(p[1], "fd!", 4) != 4)
		exit(2);
	memset(buf, 0, sizeof(buf));
	if (h_fd >= 0 && read(h_fd, buf, sizeof(buf)) > 0)
		is_str(buf, "fd!", "passed_fd_reads_what_the_pipe_got");
	else
		ok(0, "passed_fd_reads_what_the_pipe_got");
	close(h_fd);
	close(p[1]);
	ok(!fd_valid(p[0]), "m_create_fd_closed_after_sending");
	is_int(ea->msg_out, 3, "msg_out_counts_sent_messages");
	is_int(eb->msg_in, 3, "msg_in_counts_dispatched_messages");
	ok(!(ea->events & EV_WRITE), "write_event_dropped_when_queue_empty");
	echan_close();
}

static int	 big_got, big_done, big_bad;

static void
h_big(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	const void	*d;
	size_t		 len;

	m_msg(&m, imsg);
	if (setjmp(jb) != 0) {
		big_bad = 1;
		big_done = 1;
		return;
	}
	m_get_data(&m, &d, &len);
	m_end(&m);
	if (imsg->hdr.type != (uint32_t)big_got ||
	    len != PAYLOAD_MAX - sizeof(uint32_t))
		big_bad = 1;
	if (++big_got == 1000)
		big_done = 1;
}

static void
m_compose_data(int type, const unsigned char *buf)
{
	m_create(ea, type, 0, -1);
	m_add_data(ea, buf, PAYLOAD_MAX - sizeof(uint32_t));
	m_close(ea);
}

static void
test_channel_rearms_write_until_drained(void)
{
	static unsigned char	 buf[PAYLOAD_MAX];
	int			 i, wrote_while_queued;

	echan_open(h_big);
	for (i = 0; i < 1000; i++)
		m_compose_data(i, buf);
	wrote_while_queued = ea->flushing;
	ok(wrote_while_queued && ea->imsgbuf.w.queued == 1000,
	    "sixteen_megabytes_queue_with_a_flush_scheduled");
	run_until(&big_done);
	is_int(big_got, 1000, "event_loop_delivers_sixteen_megabytes");
	ok(!big_bad, "large_messages_arrive_in_order");
	ok(ea->imsgbuf.w.queued == 0 && !(ea->events & EV_WRITE),
	    "write_event_dropped_after_queue_drains");
	echan_close();
}

static int	 lost_count;

static void
on_lost(struct mproc *p)
{
	lost_count++;
}

static void
h_ignore(struct mproc *p, struct imsg *imsg)
{
	if (imsg->fd != -1)
		close(imsg->fd);
}

static void
test_peer_close_calls_lost(void)
{
	int	 never = 0;

	echan_open(h_ignore);
	eb->lost = on_lost;
	lost_count = 0;
	mproc_clear(ea);
	free(ea);
	ea = NULL;
	run_until(&lost_count);
	is_int(lost_count, 1, "peer_closing_calls_lost_once");
	ok(!eb->enabled, "lost_channel_is_disabled_before_lost");
	run_for(&never, 200);
	is_int(lost_count, 1, "lost_is_not_called_again");
	echan_close();
}

/* Hide the expected log lines from prove's output. */
static void
quiet(int on)
{
	static int	 saved = -1;
	int		 null;

	fflush(stderr);
	if (on && saved == -1) {
		saved = dup(STDERR_FILENO);
		if ((null = open("/dev/null", O_WRONLY)) != -1) {
			dup2(null, STDERR_FILENO);
			close(null);
		}
	} else if (!on && saved != -1) {
		dup2(saved, STDERR_FILENO);
		close(saved);
		saved = -1;
	}
}

static void
test_bad_header_calls_lost(void)
{
	struct imsg_hdr	 hdr;

	quiet(1);
	echan_open(h_ignore);
	eb->lost = on_lost;
	lost_count = 0;
	memset(&hdr, 0, sizeof(hdr));
	hdr.len = IMSG_HEADER_SIZE - 1;
	if (write(esv[0], &hdr, sizeof(hdr)) != sizeof(hdr))
		exit(2);
	run_until(&lost_count);
	is_int(lost_count, 1, "malformed_header_calls_lost");
	echan_close();

	echan_open(h_ignore);
	eb->lost = on_lost;
	lost_count = 0;
	hdr.len = IMSG_HEADER_SIZE;
	hdr.flags = IMSGF_HASFD;
	if (write(esv[0], &hdr, sizeof(hdr)) != sizeof(hdr))
		exit(2);
	run_until(&lost_count);
	is_int(lost_count, 1, "hasfd_without_fd_calls_lost");
	echan_close();
	quiet(0);
}

static int	 clr_count, clr_done;

/* Clear and free the channel in the middle of a batch. */
static void
h_clear_self(struct mproc *p, struct imsg *imsg)
{
	clr_count++;
	mproc_clear(p);
	/* Wiped: a dispatch loop that went on would crash even sans ASan. */
	explicit_bzero(p, sizeof(*p));
	free(p);
	eb = NULL;
	clr_done = 1;
}

static void
test_handler_clearing_own_channel_stops_dispatch(void)
{
	int	 i;

	echan_open(h_clear_self);
	for (i = 0; i < 5; i++)
		m_compose(ea, 1, 0, -1, "x", 1);
	m_flush(ea);
	clr_count = clr_done = 0;
	run_until(&clr_done);
	is_int(clr_count, 1, "handler_clearing_its_channel_gets_no_more");
	ok(eb == NULL, "cleared_and_freed_channel_is_not_touched");
	echan_close();
}

static int	 other_count, other_done;
static struct mproc *other_victim;

/* Clearing another channel from a handler is fine too. */
static void
h_clear_other(struct mproc *p, struct imsg *imsg)
{
	other_count++;
	if (other_victim != NULL) {
		mproc_clear(other_victim);
		other_victim = NULL;
	}
	if (other_count == 3)
		other_done = 1;
}

static void
test_handler_clearing_other_channel_continues(void)
{
	int	 i;

	echan_open(h_clear_other);
	eb->lost = on_lost;
	other_victim = ea;
	for (i = 0; i < 3; i++)
		m_compose(ea, 1, 0, -1, "x", 1);
	m_flush(ea);
	other_count = other_done = 0;
	run_until(&other_done);
	is_int(other_count, 3, "handler_clearing_other_channel_keeps_batch");
	echan_close();
}

static int	 pp_a, pp_b, pp_done;

/* ea's side: each reply triggers the next request, up to 1000. */
static void
h_ping(struct mproc *p, struct imsg *imsg)
{
	if (imsg->hdr.type != (uint32_t)pp_a)
		pp_done = -1;
	if (++pp_a == 1000) {
		pp_done = 1;
		return;
	}
	m_compose(p, pp_a, 0, -1, NULL, 0);
}

/* eb's side: echo. */
static void
h_pong(struct mproc *p, struct imsg *imsg)
{
	pp_b++;
	m_create(p, imsg->hdr.type, 0, -1);
	m_close(p);
}

static void
test_handlers_replying_rearm_both_ways(void)
{
	echan_open(h_pong);
	ea->handler = h_ping;
	mproc_enable(ea);
	pp_a = pp_b = pp_done = 0;
	m_compose(ea, 0, 0, -1, NULL, 0);
	run_until(&pp_done);
	is_int(pp_done, 1, "ping_pong_replies_arrive_in_order");
	ok(pp_a == 1000 && pp_b == 1000, "thousand_round_trips_from_handlers");
	echan_close();
}

static int	 dis_count;

static void
h_tally(struct mproc *p, struct imsg *imsg)
{
	dis_count++;
}

static void
test_disabled_channel_reads_nothing(void)
{
	int	 never = 0;

	echan_open(h_tally);
	dis_count = 0;
	mproc_disable(eb);
	ok(!eb->enabled, "mproc_disable_clears_enabled");
	m_compose(ea, 1, 0, -1, "x", 1);
	run_for(&never, 100);
	is_int(dis_count, 0, "disabled_channel_dispatches_nothing");
	mproc_enable(eb);
	run_until(&dis_count);
	is_int(dis_count, 1, "re_enabled_channel_dispatches_waiting_message");
	echan_close();
}

static void
test_m_is_eom(void)
{
	struct imsg	 imsg;
	struct msg	 m;
	int		 v;

	chan_open();
	if (roundtrip(b_int_max, &imsg) == -1)
		exit(2);
	m_msg(&m, &imsg);
	ok(!m_is_eom(&m), "m_is_eom_false_before_last_field");
	m_get_int(&m, &v);
	ok(m_is_eom(&m), "m_is_eom_true_after_last_field");
	imsg_free(&imsg);
	if (roundtrip(b_nothing, &imsg) == -1)
		exit(2);
	m_msg(&m, &imsg);
	ok(m_is_eom(&m), "m_is_eom_true_for_empty_payload");
	imsg_free(&imsg);
	chan_close();
}

/* Section 3: what is fatal, in a child, with stderr captured. */

static int
in_child(void (*fn)(void), char *err, size_t errlen)
{
	int	 p[2], status;
	pid_t	 pid;
	ssize_t	 n;
	size_t	 off = 0;

	if (pipe(p) == -1)
		exit(2);
	fflush(NULL);
	if ((pid = fork()) == -1)
		exit(2);
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		event_init();
		fn();
		_exit(0);
	}
	close(p[1]);
	while (off + 1 < errlen &&
	    (n = read(p[0], err + off, errlen - off - 1)) > 0)
		off += n;
	err[off] = '\0';
	close(p[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void
c_default_m_error(void)
{
	struct imsg	 imsg;
	struct msg	 m;
	int		 v;

	m_error = m_error_default;
	memset(&imsg, 0, sizeof(imsg));
	imsg.hdr.len = IMSG_HEADER_SIZE;
	m_msg(&m, &imsg);
	m_get_int(&m, &v);
}

static void
c_lost_without_callback(void)
{
	int	 sv[2];

	if (mkpair(sv) == -1)
		exit(2);
	ea = calloc(1, sizeof(*ea));
	mproc_init(ea, sv[0], PROC_MTA, h_ignore);
	mproc_enable(ea);
	close(sv[1]);
	event_dispatch();
}

static void
c_compose_over_limit(void)
{
	static char	 big[PAYLOAD_MAX + 1];
	int		 sv[2];

	if (mkpair(sv) == -1)
		exit(2);
	ea = calloc(1, sizeof(*ea));
	mproc_init(ea, sv[0], PROC_MDA, NULL);
	m_compose(ea, 1, 0, -1, big, sizeof(big));
}

static void
c_add_over_limit(void)
{
	static char	 big[PAYLOAD_MAX];
	int		 sv[2];

	if (mkpair(sv) == -1)
		exit(2);
	ea = calloc(1, sizeof(*ea));
	mproc_init(ea, sv[0], PROC_MDA, NULL);
	m_create(ea, 1, 0, -1);
	m_add_int(ea, 1);
	m_add(ea, big, sizeof(big) - 3);
}

static void
c_add_without_create(void)
{
	int	 sv[2];

	if (mkpair(sv) == -1)
		exit(2);
	ea = calloc(1, sizeof(*ea));
	mproc_init(ea, sv[0], PROC_MDA, NULL);
	m_add_int(ea, 1);
}

static void
c_create_twice(void)
{
	int	 sv[2];

	if (mkpair(sv) == -1)
		exit(2);
	ea = calloc(1, sizeof(*ea));
	mproc_init(ea, sv[0], PROC_MDA, NULL);
	m_create(ea, 1, 0, -1);
	m_create(ea, 2, 0, -1);
}

static void
c_sockaddr_bad_family(void)
{
	struct sockaddr	 sa;
	int		 sv[2];

	if (mkpair(sv) == -1)
		exit(2);
	ea = calloc(1, sizeof(*ea));
	mproc_init(ea, sv[0], PROC_MDA, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_APPLETALK;
	m_create(ea, 1, 0, -1);
	m_add_sockaddr(ea, &sa);
}

static void
c_dest_unterminated(void)
{
	static struct dest d;
	int		 sv[2];

	if (mkpair(sv) == -1)
		exit(2);
	ea = calloc(1, sizeof(*ea));
	mproc_init(ea, sv[0], PROC_MDA, NULL);
	memset(&d, 'x', sizeof(d));
	m_create(ea, 1, 0, -1);
	m_add_dest(ea, &d);
}

static void
test_fatal_paths(void)
{
	static const struct {
		const char	*name;
		void		(*fn)(void);
		const char	*msg;
	} rows[] = {
		{ "default_m_error_is_fatal", c_default_m_error,
		    "malformed imsg: short int" },
		{ "lost_channel_without_callback_is_fatal",
		    c_lost_without_callback, "lost channel to mta" },
		{ "m_compose_over_limit_is_fatal", c_compose_over_limit,
		    "exceed the imsg limit" },
		{ "m_add_over_limit_is_fatal", c_add_over_limit,
		    "exceeds the imsg limit" },
		{ "m_add_without_m_create_is_fatal", c_add_without_create,
		    "no message open" },
		{ "m_create_twice_is_fatal", c_create_twice, "open already" },
		{ "m_add_sockaddr_unknown_family_is_fatal",
		    c_sockaddr_bad_family, "m_add_sockaddr: family" },
		{ "m_add_dest_unterminated_field_is_fatal",
		    c_dest_unterminated, "unterminated field" },
	};
	char	 err[1024];
	size_t	 i;
	int	 rc;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		rc = in_child(rows[i].fn, err, sizeof(err));
		if (!ok(rc == 1 && strstr(err, rows[i].msg) != NULL,
		    rows[i].name))
			printf("#   exit %d, stderr: %s", rc, err);
	}
}

int
main(void)
{
	log_init(1, 0);
	event_init();
	fixtures();
	m_error_default = m_error;
	m_error = jmp_error;

	test_typed_round_trips();
	test_malformed_payloads_call_m_error();
	test_every_truncation_fails();
	test_channel_delivers_typed_messages();
	test_channel_rearms_write_until_drained();
	test_peer_close_calls_lost();
	test_bad_header_calls_lost();
	test_handler_clearing_own_channel_stops_dispatch();
	test_handler_clearing_other_channel_continues();
	test_handlers_replying_rearm_both_ways();
	test_disabled_channel_reads_nothing();
	test_m_is_eom();
	test_fatal_paths();
	ok(err_count > 0, "m_error_override_was_used");
	return done_testing();
}
