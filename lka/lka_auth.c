/*
 * lka_auth.c: SMTP AUTH credentials.  lka_auth_request() picks the
 * listener's backend: a users table (below), a checkpassword program
 * (lka_auth_prog.c), an LDAP server (lka_auth_ldap.c) or the system
 * users, which only the parent can read (IMSG_AUTH_SYSTEM;
 * smtpd/parent_auth.c).  The table backend: the
 * smtp process sends a user and password (IMSG_LKA_AUTH); the table named
 * on the listener maps the user (case-insensitively, as every table key)
 * to a crypt(3) hash, the first word of the value: whatever libcrypt's
 * crypt_r() verifies (yescrypt "$y$", sha512-crypt "$6$", bcrypt "$2b$",
 * ...).  Anything after that word is ignored.  A table that cannot be
 * read is a temporary failure, never an accept.
 */
#include <sys/types.h>

#include <crypt.h>
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
#include "proc.h"
#include "sqmail.h"
#include "table.h"

/* Hashed when the user is unknown, so that the answer takes as long. */
#define LKA_AUTH_DUMMY	"$6$sqmailsqmailsq$"

/* Compare without an early exit: the time does not say where they differ. */
static int
lka_auth_equal(const char *a, const char *b, size_t len)
{
	volatile unsigned char	 d = 0;
	size_t			 i;

	for (i = 0; i < len; i++)
		d |= (unsigned char)a[i] ^ (unsigned char)b[i];
	return d == 0;
}

/* Whether hash looks like a crypt(3) hash at all ("*", "!..." lock). */
static int
lka_auth_hash_ok(const char *hash)
{
	return hash[0] == '$' && strlen(hash) < CRYPT_OUTPUT_SIZE;
}

int
lka_auth_check(struct sqconf *c, const char *tname, const char *user,
    const char *pass)
{
	struct crypt_data	*cd;
	struct table		*t;
	char			 val[TABLE_LINE_MAX], *hash, *e, *out;
	size_t			 hlen;
	int			 r, status = SQ_PERMFAIL, found;

	if ((t = config_table(c, tname)) == NULL) {
		log_warnx("lka: auth: table \"%s\" is not defined", tname);
		return SQ_TEMPFAIL;
	}
	if ((cd = calloc(1, sizeof(*cd))) == NULL) {
		log_warn("lka: auth");
		return SQ_TEMPFAIL;
	}
	r = table_lookup(t, user, val, sizeof(val));
	if (r == -1) {
		status = SQ_TEMPFAIL;
		goto done;
	}
	found = r == 1;
	hash = val;
	if (found) {
		hash += strspn(hash, " \t");
		e = hash + strcspn(hash, " \t");
		*e = '\0';
	}
	if (!found || !lka_auth_hash_ok(hash)) {
		if (found)
			log_debug("lka: auth: table %s: user %s has no usable "
			    "hash (locked?)", tname, user);
		(void)crypt_r(pass, LKA_AUTH_DUMMY, cd);
		goto done;
	}
	out = crypt_r(pass, hash, cd);
	if (out == NULL || out[0] == '*') {
		/* libcrypt does not know this hash: the table is wrong. */
		log_warnx("lka: auth: table %s: user %s: hash not supported by "
		    "crypt(3)", tname, user);
		status = SQ_TEMPFAIL;
		goto done;
	}
	hlen = strlen(hash);
	if (strlen(out) == hlen && lka_auth_equal(out, hash, hlen))
		status = SQ_OK;
done:
	explicit_bzero(val, sizeof(val));
	freezero(cd, sizeof(*cd));
	return status;
}

/*
 * System-user checks waiting for the parent.  The parent answers every
 * request (it bounds each check with a timeout), so an entry lives until
 * its answer; past LKA_AUTH_PENDING_MAX a new request fails temporarily.
 */
#define LKA_AUTH_PENDING_MAX	1024

struct lka_auth_pending {
	TAILQ_ENTRY(lka_auth_pending)	 entry;
	uint32_t			 id;
	struct mproc			*p;
	uint64_t			 reqid;
};

static TAILQ_HEAD(, lka_auth_pending)	 lka_auth_pending =
    TAILQ_HEAD_INITIALIZER(lka_auth_pending);
static size_t				 lka_auth_npending;
static uint32_t				 lka_auth_nextid;

void
lka_auth_answer(struct mproc *p, uint64_t reqid, int status)
{
	m_create(p, IMSG_LKA_AUTH, 0, -1);
	m_add_u64(p, reqid);
	m_add_int(p, status);
	m_close(p);
}

static int
lka_auth_system(struct mproc *p, uint64_t reqid, const struct authsrc *as,
    const char *user, const char *pass)
{
	struct lka_auth_pending	*w;

	if (peers[PROC_PARENT] == NULL ||
	    lka_auth_npending >= LKA_AUTH_PENDING_MAX) {
		log_warnx("lka: auth: too many system checks waiting");
		return SQ_TEMPFAIL;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		log_warn("lka: auth");
		return SQ_TEMPFAIL;
	}
	w->id = ++lka_auth_nextid;
	w->p = p;
	w->reqid = reqid;
	TAILQ_INSERT_TAIL(&lka_auth_pending, w, entry);
	lka_auth_npending++;
	m_create(peers[PROC_PARENT], IMSG_AUTH_SYSTEM, 0, -1);
	m_add_u32(peers[PROC_PARENT], w->id);
	m_add_string(peers[PROC_PARENT],
	    as->type == AUTHB_PAM ? as->service : "");
	m_add_string(peers[PROC_PARENT], user);
	m_add_string(peers[PROC_PARENT], pass);
	m_close(peers[PROC_PARENT]);
	return -1;
}

/* The parent's answer to IMSG_AUTH_SYSTEM: pass it on to smtp. */
void
lka_auth_system_done(uint32_t id, int status)
{
	struct lka_auth_pending	*w;

	TAILQ_FOREACH(w, &lka_auth_pending, entry)
		if (w->id == id)
			break;
	if (w == NULL) {
		log_warnx("lka: auth: answer to unknown system check %u", id);
		return;
	}
	TAILQ_REMOVE(&lka_auth_pending, w, entry);
	lka_auth_npending--;
	if (status != SQ_OK && status != SQ_PERMFAIL)
		status = SQ_TEMPFAIL;
	lka_auth_answer(w->p, w->reqid, status);
	free(w);
}

void
lka_auth_request(struct mproc *p, uint64_t reqid, const char *src,
    const char *user, const char *pass)
{
	struct authsrc	*as;
	int		 status;

	if (strlen(user) > LKA_AUTH_USER_MAX ||
	    strlen(pass) > LKA_AUTH_PASS_MAX) {
		/* smtp bounds both: a longer one is no credential of ours. */
		lka_auth_answer(p, reqid, SQ_PERMFAIL);
		return;
	}
	if (src[0] != AUTH_SRC_PREFIX) {
		lka_auth_answer(p, reqid, lka_auth_check(conf, src, user,
		    pass));
		return;
	}
	if ((as = config_authsrc(conf, src)) == NULL) {
		/* A reload dropped what the listener (fixed at start) uses. */
		log_warnx("lka: auth: backend %s is not configured (listener "
		    "changes need a restart)", src);
		lka_auth_answer(p, reqid, SQ_TEMPFAIL);
		return;
	}
	switch (as->type) {
	case AUTHB_PROG:
		status = lka_auth_prog(p, reqid, as, user, pass);
		break;
	case AUTHB_LDAP:
		status = lka_auth_ldap(p, reqid, as, user, pass);
		break;
	case AUTHB_SYSTEM:
	case AUTHB_PAM:
		status = lka_auth_system(p, reqid, as, user, pass);
		break;
	default:
		status = SQ_TEMPFAIL;
	}
	if (status != -1)
		lka_auth_answer(p, reqid, status);
}
