/*
 * lka_auth.c: SMTP AUTH credentials against a virtual-users table.  The
 * smtp process sends a user and password (IMSG_LKA_AUTH); the table named
 * on the listener maps the user (case-insensitively, as every table key)
 * to a crypt(3) hash, the first word of the value: whatever libcrypt's
 * crypt_r() verifies (yescrypt "$y$", sha512-crypt "$6$", bcrypt "$2b$",
 * ...).  Anything after that word is ignored.  A table that cannot be
 * read is a temporary failure, never an accept.
 */
#include <sys/types.h>

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "lka.h"
#include "log.h"
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
