/*
 * Mail address parsing after RFC 5321 section 4.1.2.  Only what an SMTP
 * envelope may carry is accepted: no comments, no folding white space, no
 * obsolete local parts, no 8-bit bytes (we do not offer SMTPUTF8).
 */
#include <sys/types.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mailaddr.h"
#include "sqmail.h"

#define MAILADDR_LABEL_MAX	63

static int	mailaddr_atext(unsigned char);
static int	mailaddr_letdig(unsigned char);
static int	mailaddr_hexdig(unsigned char);
static int	mailaddr_lower(int);
static int	mailaddr_ipv4(const char *, size_t);
static int	mailaddr_ipv6(const char *, size_t);
static int	mailaddr_dotatom_domain(const char *, size_t, char *, size_t);
static int	mailaddr_literal(const char *, size_t, char *, size_t);
static int	mailaddr_quoted(const char *, size_t, size_t *, char *,
		    size_t);

/* atext of RFC 5322 3.2.3, ASCII only. */
static int
mailaddr_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static int
mailaddr_letdig(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static int
mailaddr_hexdig(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

static int
mailaddr_lower(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 'a';
	return c;
}

int
mailaddr_is_dotstring(const char *s, size_t len)
{
	size_t	 i;
	int	 atom = 0;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (!atom)
				return 0;	/* leading or double dot */
			atom = 0;
		} else if (mailaddr_atext(s[i]))
			atom = 1;
		else
			return 0;
	}
	return atom;		/* no trailing dot */
}

/* IPv4-address-literal: four Snum (1*3DIGIT, 0..255) joined by dots. */
static int
mailaddr_ipv4(const char *s, size_t len)
{
	size_t	 i = 0;
	int	 part, digits, value;

	for (part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= len || s[i] != '.')
				return -1;
			i++;
		}
		for (digits = 0, value = 0; i < len && s[i] >= '0' &&
		    s[i] <= '9'; i++, digits++) {
			if (digits == 3)
				return -1;
			value = value * 10 + (s[i] - '0');
		}
		if (digits == 0 || value > 255)
			return -1;
	}
	return i == len ? 0 : -1;
}

/*
 * IPv6-addr of RFC 5321 4.1.3: full (8 groups), compressed ("::" and at
 * most 6 groups), and both with a trailing IPv4 address (6 groups, or
 * "::" and at most 4 groups).
 */
static int
mailaddr_ipv6(const char *s, size_t len)
{
	size_t	 i = 0, j;
	int	 groups = 0, dcolon = 0, v4 = 0, hex;

	if (len >= 2 && s[0] == ':' && s[1] == ':') {
		dcolon = 1;
		i = 2;
	}
	while (i < len) {
		/* One group, or the IPv4 address that ends the literal. */
		for (j = i; j < len && s[j] != ':'; j++)
			if (s[j] == '.')
				break;
		if (j < len && s[j] == '.') {
			if (mailaddr_ipv4(s + i, len - i) == -1)
				return -1;
			v4 = 1;
			break;
		}
		for (hex = 0; i < len && mailaddr_hexdig(s[i]); i++, hex++)
			if (hex == 4)
				return -1;
		if (hex == 0)
			return -1;
		if (++groups > 8)
			return -1;
		if (i == len)
			break;
		if (s[i] != ':')
			return -1;
		i++;
		if (i < len && s[i] == ':') {
			if (dcolon)
				return -1;	/* a second "::" */
			dcolon = 1;
			i++;
		} else if (i == len)
			return -1;		/* a trailing single ':' */
	}
	if (v4)
		return (dcolon ? groups <= 4 : groups == 6) ? 0 : -1;
	return (dcolon ? groups <= 6 : groups == 8) ? 0 : -1;
}

/* Domain: sub-domains of Let-dig [Ldh-str], lower-cased into out. */
static int
mailaddr_dotatom_domain(const char *s, size_t len, char *out, size_t outlen)
{
	size_t	 i, label = 0;

	if (len == 0 || len > SQ_DOMAIN_MAX || len >= outlen)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			/* A label ends: it must not be empty or end in '-'. */
			if (label == 0 || s[i - 1] == '-')
				return -1;
			label = 0;
		} else if (mailaddr_letdig(s[i])) {
			label++;
		} else if (s[i] == '-') {
			if (label == 0)
				return -1;	/* label starts with '-' */
			label++;
		} else
			return -1;
		if (label > MAILADDR_LABEL_MAX)
			return -1;
		out[i] = mailaddr_lower((unsigned char)s[i]);
	}
	if (label == 0 || s[len - 1] == '-')
		return -1;
	out[len] = '\0';
	return 0;
}

/* address-literal: "[" IPv4 "]" or "[IPv6:" IPv6 "]". */
static int
mailaddr_literal(const char *s, size_t len, char *out, size_t outlen)
{
	size_t	 i;

	if (len < 3 || s[0] != '[' || s[len - 1] != ']' || len >= outlen ||
	    len > SQ_DOMAIN_MAX)
		return -1;
	if (len > 7 && strncasecmp(s + 1, "IPv6:", 5) == 0) {
		if (mailaddr_ipv6(s + 6, len - 7) == -1)
			return -1;
		memcpy(out, "[IPv6:", 6);
		for (i = 6; i < len; i++)
			out[i] = mailaddr_lower((unsigned char)s[i]);
		out[len] = '\0';
		return 0;
	}
	/* Other General-address-literal tags are not registered: refuse. */
	if (mailaddr_ipv4(s + 1, len - 2) == -1)
		return -1;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

int
mailaddr_parse_domain(const char *s, size_t len, char *out, size_t outlen)
{
	int	 r;

	if (outlen == 0)
		return -1;
	if (len > 0 && s[0] == '[')
		r = mailaddr_literal(s, len, out, outlen);
	else
		r = mailaddr_dotatom_domain(s, len, out, outlen);
	if (r == -1)
		out[0] = '\0';
	return r;
}

/*
 * A Quoted-string local part starting at s[0] == '"'.  Stores its
 * content, unescaped, in out (NUL-terminated) and the index just past the
 * closing quote in *end.
 */
static int
mailaddr_quoted(const char *s, size_t len, size_t *end, char *out,
    size_t outlen)
{
	size_t		 i, n = 0;
	unsigned char	 c;

	for (i = 1; i < len; i++) {
		c = s[i];
		if (c == '"') {
			out[n] = '\0';
			*end = i + 1;
			return 0;
		}
		if (c == '\\') {
			/* quoted-pairSMTP: backslash and %d32-126 */
			if (++i == len)
				return -1;
			c = s[i];
			if (c < 32 || c > 126)
				return -1;
		} else if (c < 32 || c > 126)
			return -1;	/* qtextSMTP, or '"' / '\\' above */
		if (n + 1 >= outlen)
			return -1;
		out[n++] = c;
	}
	return -1;			/* unbalanced quote */
}

int
mailaddr_parse(const char *s, size_t len, struct mailaddr *out)
{
	char	 content[SQ_LOCALPART_MAX + 1];
	size_t	 at, i, n, clen;
	int	 esc;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return -1;

	if (s[0] == '"') {
		if (mailaddr_quoted(s, len, &at, content, sizeof(content))
		    == -1)
			goto bad;
		clen = strlen(content);
		if (mailaddr_is_dotstring(content, clen)) {
			/* The quotes were not needed: "\a" is a. */
			memcpy(out->user, content, clen + 1);
		} else {
			/* Minimal quoted form: escape only '"' and '\\'. */
			n = 0;
			out->user[n++] = '"';
			for (i = 0; i < clen; i++) {
				esc = content[i] == '"' || content[i] == '\\';
				/* this char, its escape, '"' and NUL must fit */
				if (n + esc + 1 + 2 > sizeof(out->user))
					goto bad;
				if (esc)
					out->user[n++] = '\\';
				out->user[n++] = content[i];
			}
			out->user[n++] = '"';
			out->user[n] = '\0';
		}
	} else {
		for (at = 0; at < len && s[at] != '@'; at++)
			;
		if (at > SQ_LOCALPART_MAX || !mailaddr_is_dotstring(s, at))
			goto bad;
		memcpy(out->user, s, at);
		out->user[at] = '\0';
	}

	if (at >= len || s[at] != '@')
		goto bad;
	at++;
	if (mailaddr_parse_domain(s + at, len - at, out->domain,
	    sizeof(out->domain)) == -1)
		goto bad;
	return 0;
 bad:
	memset(out, 0, sizeof(*out));
	return -1;
}

int
mailaddr_is_null(const struct mailaddr *a)
{
	return a->user[0] == '\0' && a->domain[0] == '\0';
}

int
mailaddr_to_text(const struct mailaddr *a, char *buf, size_t len)
{
	int	 r;

	if (len == 0)
		return -1;
	if (a->domain[0] == '\0')
		r = snprintf(buf, len, "%s", a->user);
	else
		r = snprintf(buf, len, "%s@%s", a->user, a->domain);
	if (r < 0 || (size_t)r >= len) {
		buf[0] = '\0';
		return -1;
	}
	return 0;
}
