/*
 * lka_auth_cram.c: SMTP AUTH CRAM-MD5 (RFC 2195) against a virtual-users
 * table.  CRAM-MD5 proves knowledge of a shared secret without sending
 * it, so the server must hold the secret itself, not a one-way hash: a
 * users-table value may carry one as a word after the crypt(3) hash,
 *
 *	alice	$6$salt$hash... cram:SECRET
 *	bob	$y$...          cram64:BASE64
 *
 * "cram:" takes the rest of the word as it is written (no white space
 * then); "cram64:" takes base64 (RFC 4648) for a secret with spaces or
 * any other octets.  The hash still serves PLAIN and LOGIN ("*" as the
 * hash: CRAM-MD5 only).  A user without a secret cannot use CRAM-MD5.
 *
 * smtp sends the challenge it issued and the client's digest
 * (IMSG_LKA_AUTH_CRAM); we compute HMAC-MD5(secret, challenge) and
 * compare in constant time.  smtp offers CRAM-MD5 on a listener only
 * when its table holds at least one secret: after the tables are opened
 * (start, reload) we scan each auth table and tell smtp
 * (IMSG_LKA_AUTH_MECHS).
 */
#include <sys/types.h>

#include <cdb.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base64.h"
#include "config.h"
#include "imsg.h"
#include "lka.h"
#include "log.h"
#include "md5.h"
#include "mproc.h"
#include "msg.h"
#include "proc.h"
#include "sqmail.h"
#include "table.h"

/* Used when the user is unknown or has no secret: the same work. */
#define LKA_CRAM_DUMMY	"sqmail-no-such-secret"

int
lka_auth_cram_secret(const char *val, char *out, size_t outlen)
{
	const char	*w, *e;
	size_t		 wlen;
	int		 n;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	for (w = val; *w != '\0'; w = e) {
		w += strspn(w, " \t");
		e = w + strcspn(w, " \t");
		wlen = e - w;
		if (wlen > 5 && strncmp(w, "cram:", 5) == 0) {
			if (wlen - 5 >= outlen)
				return -1;
			memcpy(out, w + 5, wlen - 5);
			out[wlen - 5] = '\0';
			return wlen - 5;
		}
		if (wlen > 7 && strncmp(w, "cram64:", 7) == 0) {
			n = base64_decode(w + 7, wlen - 7, out, outlen - 1);
			if (n <= 0) {
				explicit_bzero(out, outlen);
				return -1;
			}
			out[n] = '\0';
			return n;
		}
	}
	return 0;
}

int
lka_auth_cram_check(struct sqconf *c, const char *tname, const char *user,
    const char *challenge, const char *digest)
{
	static const char	 hex[] = "0123456789abcdef";
	struct table		*t;
	char			 val[TABLE_LINE_MAX], secret[LKA_CRAM_SECRET_MAX];
	char			 mine[2 * MD5_DIGEST_LEN + 1];
	uint8_t			 mac[MD5_DIGEST_LEN];
	const char		*key;
	size_t			 i, klen;
	int			 r, n, status = SQ_PERMFAIL, usable = 0;

	if ((t = config_table(c, tname)) == NULL) {
		log_warnx("lka: auth: table \"%s\" is not defined", tname);
		return SQ_TEMPFAIL;
	}
	r = table_lookup(t, user, val, sizeof(val));
	if (r == -1)
		return SQ_TEMPFAIL;
	n = 0;
	if (r == 1 && (n = lka_auth_cram_secret(val, secret,
	    sizeof(secret))) == -1) {
		log_warnx("lka: auth: table %s: user %s: malformed CRAM-MD5 "
		    "secret", tname, user);
		status = SQ_TEMPFAIL;
		goto done;
	}
	if (n > 0) {
		key = secret;
		klen = n;
		usable = 1;
	} else {
		if (r == 1)
			log_debug("lka: auth: table %s: user %s has no CRAM-MD5 "
			    "secret", tname, user);
		key = LKA_CRAM_DUMMY;
		klen = sizeof(LKA_CRAM_DUMMY) - 1;
	}
	hmac_md5(key, klen, challenge, strlen(challenge), mac);
	for (i = 0; i < MD5_DIGEST_LEN; i++) {
		mine[2 * i] = hex[mac[i] >> 4];
		mine[2 * i + 1] = hex[mac[i] & 0xf];
	}
	mine[2 * MD5_DIGEST_LEN] = '\0';
	if (strlen(digest) == 2 * MD5_DIGEST_LEN &&
	    timingsafe_equal(mine, digest, 2 * MD5_DIGEST_LEN) && usable)
		status = SQ_OK;
done:
	explicit_bzero(val, sizeof(val));
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(mine, sizeof(mine));
	explicit_bzero(mac, sizeof(mac));
	return status;
}

void
lka_auth_cram_imsg(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	const char	*tname, *user, *challenge, *digest;
	uint64_t	 reqid;
	int		 status;

	m_msg(&m, imsg);
	m_get_u64(&m, &reqid);
	m_get_string(&m, &tname);
	m_get_string(&m, &user);
	m_get_string(&m, &challenge);
	m_get_string(&m, &digest);
	m_end(&m);
	status = lka_auth_cram_check(conf, tname, user, challenge, digest);
	m_create(p, IMSG_LKA_AUTH_CRAM, 0, -1);
	m_add_u64(p, reqid);
	m_add_int(p, status);
	m_close(p);
}

/* Whether one value holds a usable secret; the buffer is wiped. */
static int
lka_cram_value_has(const char *val)
{
	char	 secret[LKA_CRAM_SECRET_MAX];
	int	 n;

	n = lka_auth_cram_secret(val, secret, sizeof(secret));
	explicit_bzero(secret, sizeof(secret));
	return n > 0;
}

/*
 * Whether some user of a table has a secret.  The table interface has no
 * walk, so the file is read again here, once per start or reload.
 */
static int
lka_cram_table_has(struct table *t)
{
	struct table_file	*tf;
	struct cdb		 cdb;
	char			 val[TABLE_LINE_MAX];
	unsigned int		 pos, vlen;
	size_t			 i;
	int			 fd, found = 0;

	switch (t->type) {
	case TABLE_FILE:
		if ((tf = table_file_open(t->name, t->path)) == NULL)
			return 0;
		for (i = 0; i < tf->nents && !found; i++)
			found = lka_cram_value_has(tf->ents[i].val);
		table_file_close(tf);
		return found;
	case TABLE_CDB:
		if ((fd = open(t->path, O_RDONLY | O_CLOEXEC)) == -1)
			return 0;
		if (cdb_init(&cdb, fd) == -1) {
			close(fd);
			return 0;
		}
		cdb_seqinit(&pos, &cdb);
		while (!found && cdb_seqnext(&pos, &cdb) > 0) {
			vlen = cdb_datalen(&cdb);
			if (vlen >= sizeof(val) || cdb_read(&cdb, val, vlen,
			    cdb_datapos(&cdb)) == -1)
				continue;
			val[vlen] = '\0';	/* a NUL in it ends it early */
			found = lka_cram_value_has(val);
		}
		explicit_bzero(val, sizeof(val));
		cdb_free(&cdb);
		close(fd);
		return found;
	case TABLE_ALIASES:
		break;		/* aliases hold no CRAM secrets */
	}
	return 0;
}

void
lka_auth_cram_mechs(void)
{
	struct listener	*l, *e;
	struct table	*t;
	int		 cram;

	if (peers[PROC_SMTP] == NULL)
		return;
	TAILQ_FOREACH(l, &conf->listeners, entry) {
		if (l->auth_table[0] == '\0')
			continue;
		/* One answer per table, however many listeners use it. */
		TAILQ_FOREACH(e, &conf->listeners, entry)
			if (e == l || strcmp(e->auth_table, l->auth_table) == 0)
				break;
		if (e != l)
			continue;
		cram = (t = config_table(conf, l->auth_table)) != NULL &&
		    lka_cram_table_has(t);
		log_debug("lka: auth table %s: CRAM-MD5 %s", l->auth_table,
		    cram ? "offered" : "not offered (no user has a secret)");
		m_create(peers[PROC_SMTP], IMSG_LKA_AUTH_MECHS, 0, -1);
		m_add_string(peers[PROC_SMTP], l->auth_table);
		m_add_int(peers[PROC_SMTP], cram);
		m_close(peers[PROC_SMTP]);
	}
}
