/*
 * SMTP AUTH (RFC 4954) arguments as pure functions: the AUTH command's
 * mechanism and initial response, the PLAIN (RFC 4616) and LOGIN
 * responses, and the CRAM-MD5 (RFC 2195) challenge and response.  Everything here comes from the network: lengths are
 * checked before every copy, and a buffer that held a password is wiped
 * on the way out when the parse fails.
 */
#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "smtp.h"

/* A user name we pass on: 1..max octets of printable ASCII, no space. */
static int
smtp_auth_user_ok(const char *p, size_t len)
{
	size_t	 i;

	if (len == 0 || len > SMTP_AUTH_USER_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
			return 0;
	return 1;
}

int
smtp_auth_parse_cmd(const char *arg, size_t len, enum smtp_auth_mech *mech,
    const char **init, size_t *initlen)
{
	size_t	 n;

	*mech = SMTP_AUTH_NONE;
	*init = NULL;
	*initlen = 0;
	for (n = 0; n < len && arg[n] != ' '; n++)
		;
	if (n == 0)
		return -1;
	if (n == 5 && strncasecmp(arg, "PLAIN", 5) == 0)
		*mech = SMTP_AUTH_PLAIN;
	else if (n == 5 && strncasecmp(arg, "LOGIN", 5) == 0)
		*mech = SMTP_AUTH_LOGIN;
	else if (n == 8 && strncasecmp(arg, "CRAM-MD5", 8) == 0)
		*mech = SMTP_AUTH_CRAM;
	else
		*mech = SMTP_AUTH_UNKNOWN;
	if (n == len)
		return 0;
	/* One space, then the initial response: one word, nothing after. */
	if (n + 1 == len || memchr(arg + n + 1, ' ', len - n - 1) != NULL)
		return -1;
	*init = arg + n + 1;
	*initlen = len - n - 1;
	return 0;
}

int
smtp_auth_parse_plain(const char *b64, size_t len, char *user,
    size_t userlen, char *pass, size_t passlen)
{
	char		 buf[BASE64_DECODED_MAX(SMTP_AUTH_LINE_MAX)];
	const char	*zid, *cid, *pw, *e1, *e2;
	int		 n, r = SMTP_AUTHP_SYNTAX;
	size_t		 zlen, clen, plen;

	user[0] = pass[0] = '\0';
	if (len == 1 && b64[0] == '=')
		return SMTP_AUTHP_SYNTAX;	/* empty: no NULs at all */
	if (len > SMTP_AUTH_LINE_MAX ||
	    (n = base64_decode(b64, len, buf, sizeof(buf))) == -1)
		return SMTP_AUTHP_BASE64;
	/* authzid NUL authcid NUL passwd: exactly two NULs. */
	zid = buf;
	if ((e1 = memchr(zid, '\0', n)) == NULL)
		goto out;
	cid = e1 + 1;
	if ((e2 = memchr(cid, '\0', n - (cid - buf))) == NULL)
		goto out;
	pw = e2 + 1;
	zlen = e1 - zid;
	clen = e2 - cid;
	plen = n - (pw - buf);
	if (memchr(pw, '\0', plen) != NULL || clen == 0 || plen == 0)
		goto out;
	r = SMTP_AUTHP_REFUSE;
	/* We authorise no one to act as another. */
	if (zlen != 0 && (zlen != clen || memcmp(zid, cid, clen) != 0))
		goto out;
	if (!smtp_auth_user_ok(cid, clen) || clen >= userlen ||
	    plen > SMTP_AUTH_PASS_MAX || plen >= passlen)
		goto out;
	memcpy(user, cid, clen);
	user[clen] = '\0';
	memcpy(pass, pw, plen);
	pass[plen] = '\0';
	r = SMTP_AUTHP_OK;
out:
	explicit_bzero(buf, sizeof(buf));
	return r;
}

int
smtp_auth_parse_field(const char *b64, size_t len, int isuser, char *out,
    size_t outlen)
{
	char	 buf[BASE64_DECODED_MAX(SMTP_AUTH_LINE_MAX)];
	int	 n, r = SMTP_AUTHP_REFUSE;

	out[0] = '\0';
	if (len == 1 && b64[0] == '=')
		return isuser ? SMTP_AUTHP_SYNTAX : SMTP_AUTHP_REFUSE;
	if (len > SMTP_AUTH_LINE_MAX ||
	    (n = base64_decode(b64, len, buf, sizeof(buf))) == -1)
		return SMTP_AUTHP_BASE64;
	if (n == 0 || memchr(buf, '\0', n) != NULL) {
		r = SMTP_AUTHP_SYNTAX;
		goto out;
	}
	if ((size_t)n >= outlen || (isuser && !smtp_auth_user_ok(buf, n)) ||
	    (!isuser && (size_t)n > SMTP_AUTH_PASS_MAX))
		goto out;
	memcpy(out, buf, n);
	out[n] = '\0';
	r = SMTP_AUTHP_OK;
out:
	explicit_bzero(buf, sizeof(buf));
	return r;
}

int
smtp_auth_cram_challenge(char *out, size_t outlen, uint64_t rnd,
    long long when, const char *host)
{
	char	 head[64];
	int	 hlen, room;
	size_t	 n;

	hlen = snprintf(head, sizeof(head), "<%016llx.%lld@",
	    (unsigned long long)rnd, when);
	if (hlen < 0 || (size_t)hlen >= sizeof(head) || outlen < (size_t)hlen +
	    3)
		return -1;
	/* head, at least one octet of name, ">" and the NUL. */
	room = outlen - hlen - 2;
	if (host[0] == '\0')
		host = "sqmail";
	n = strlen(host);
	if (n > (size_t)room)
		n = room;
	memcpy(out, head, hlen);
	memcpy(out + hlen, host, n);
	out[hlen + n] = '>';
	out[hlen + n + 1] = '\0';
	return hlen + n + 1;
}

int
smtp_auth_parse_cram(const char *b64, size_t len, char *user,
    size_t userlen, char *digest, size_t digestlen)
{
	char		 buf[BASE64_DECODED_MAX(SMTP_AUTH_LINE_MAX)];
	const char	*sp, *d;
	size_t		 ulen, i;
	int		 n, r = SMTP_AUTHP_SYNTAX;

	user[0] = '\0';
	if (digestlen > 0)
		digest[0] = '\0';
	if (len == 1 && b64[0] == '=')
		return SMTP_AUTHP_SYNTAX;
	if (len > SMTP_AUTH_LINE_MAX ||
	    (n = base64_decode(b64, len, buf, sizeof(buf))) == -1)
		return SMTP_AUTHP_BASE64;
	/* "user SP digest": the digest is the last word, of fixed length. */
	if (n < SMTP_AUTH_DIGEST_LEN + 2 ||
	    buf[n - SMTP_AUTH_DIGEST_LEN - 1] != ' ' ||
	    digestlen <= SMTP_AUTH_DIGEST_LEN)
		goto out;
	sp = buf + n - SMTP_AUTH_DIGEST_LEN - 1;
	d = sp + 1;
	for (i = 0; i < SMTP_AUTH_DIGEST_LEN; i++) {
		if (d[i] >= '0' && d[i] <= '9')
			digest[i] = d[i];
		else if (d[i] >= 'a' && d[i] <= 'f')
			digest[i] = d[i];
		else if (d[i] >= 'A' && d[i] <= 'F')
			digest[i] = d[i] - 'A' + 'a';
		else {
			digest[0] = '\0';
			goto out;
		}
	}
	digest[SMTP_AUTH_DIGEST_LEN] = '\0';
	ulen = sp - buf;
	r = SMTP_AUTHP_REFUSE;
	if (!smtp_auth_user_ok(buf, ulen) || ulen >= userlen) {
		digest[0] = '\0';
		goto out;
	}
	memcpy(user, buf, ulen);
	user[ulen] = '\0';
	r = SMTP_AUTHP_OK;
out:
	explicit_bzero(buf, sizeof(buf));
	return r;
}
