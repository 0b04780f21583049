/*
 * lka_auth_cert.c: X.509 client certificates to users.  smtp sends what
 * it learnt from a certificate that libtls verified against the
 * listener's client CA (IMSG_LKA_AUTH_CERT): its SHA-256 fingerprint and
 * its subject CN, when it has a usable one.  The listener's "auth
 * certificate" table maps them to a user name, the keys tried in this
 * order, the first found wins:
 *
 *	sha256=HEX	the fingerprint of the whole certificate (DER),
 *			64 hex digits without colons
 *	cn=NAME		the subject's common name
 *
 * The user is the first word of the value.  No key found: the
 * certificate authenticates nothing (SQ_PERMFAIL).  A table that cannot
 * be read, or a value that is no user name: SQ_TEMPFAIL, never an
 * accept.  Keys compare case-insensitively, as every table key.
 */
#include <sys/types.h>

#include <ctype.h>
#include <event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "imsg.h"
#include "lka.h"
#include "log.h"
#include "mproc.h"
#include "msg.h"
#include "sqmail.h"
#include "table.h"

#define LKA_CERT_HASH_PREFIX	"SHA256:"
#define LKA_CERT_HASH_HEX	64

/* "SHA256:" and 64 hex digits, as libtls writes a certificate's hash. */
static int
lka_cert_hash_ok(const char *h)
{
	size_t	 i, n = sizeof(LKA_CERT_HASH_PREFIX) - 1;

	if (strncmp(h, LKA_CERT_HASH_PREFIX, n) != 0)
		return 0;
	for (i = 0; h[n + i] != '\0'; i++)
		if (!isxdigit((unsigned char)h[n + i]))
			return 0;
	return i == LKA_CERT_HASH_HEX;
}

/* A CN smtp would send: printable ASCII, 1 .. LKA_AUTH_USER_MAX octets. */
static int
lka_cert_cn_ok(const char *cn)
{
	size_t	 i;

	for (i = 0; cn[i] != '\0'; i++)
		if (cn[i] < 0x20 || cn[i] > 0x7e)
			return 0;
	return i > 0 && i <= LKA_AUTH_USER_MAX;
}

/* The user of a table value: its first word, printable, not too long. */
static int
lka_cert_user(char *val, char *user, size_t userlen)
{
	char	*p, *e;
	size_t	 n;

	p = val + strspn(val, " \t");
	e = p + strcspn(p, " \t");
	n = e - p;
	if (n == 0 || n > LKA_AUTH_USER_MAX || n >= userlen)
		return -1;
	for (e = p; e < p + n; e++)
		if (*e <= 0x20 || *e > 0x7e)
			return -1;
	memcpy(user, p, n);
	user[n] = '\0';
	return 0;
}

int
lka_auth_cert_map(struct sqconf *c, const char *tname, const char *hash,
    const char *cn, char *user, size_t userlen, char *key, size_t keylen)
{
	struct table	*t;
	char		 val[TABLE_LINE_MAX], k[8 + LKA_AUTH_USER_MAX];
	int		 i, r;

	user[0] = key[0] = '\0';
	if ((t = config_table(c, tname)) == NULL) {
		log_warnx("lka: certificate: table \"%s\" is not defined",
		    tname);
		return SQ_TEMPFAIL;
	}
	for (i = 0; i < 2; i++) {
		if (i == 0) {
			if (!lka_cert_hash_ok(hash))
				continue;
			(void)snprintf(k, sizeof(k), "sha256=%s",
			    hash + sizeof(LKA_CERT_HASH_PREFIX) - 1);
		} else {
			if (!lka_cert_cn_ok(cn))
				continue;
			(void)snprintf(k, sizeof(k), "cn=%s", cn);
		}
		if ((r = table_lookup(t, k, val, sizeof(val))) == -1)
			return SQ_TEMPFAIL;
		if (r == 0)
			continue;
		(void)strlcpy(key, k, keylen);
		if (lka_cert_user(val, user, userlen) == -1) {
			log_warnx("lka: certificate: table %s: %s: the value "
			    "is no user name", tname, k);
			user[0] = '\0';
			return SQ_TEMPFAIL;
		}
		return SQ_OK;
	}
	return SQ_PERMFAIL;
}

void
lka_auth_cert_imsg(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	const char	*tname, *hash, *cn;
	char		 user[LKA_AUTH_USER_MAX + 1];
	char		 key[8 + LKA_AUTH_USER_MAX];
	uint64_t	 reqid;
	int		 status;

	m_msg(&m, imsg);
	m_get_u64(&m, &reqid);
	m_get_string(&m, &tname);
	m_get_string(&m, &hash);
	m_get_string(&m, &cn);
	m_end(&m);
	status = lka_auth_cert_map(conf, tname, hash, cn, user, sizeof(user),
	    key, sizeof(key));
	m_create(p, IMSG_LKA_AUTH_CERT, 0, -1);
	m_add_u64(p, reqid);
	m_add_int(p, status);
	m_add_string(p, status == SQ_OK ? user : "");
	m_add_string(p, status == SQ_OK ? key : "");
	m_close(p);
}
