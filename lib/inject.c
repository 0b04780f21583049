/*
 * The header section of a locally submitted message, as sendmail(8)
 * reads it before submission (see inject.h).  Pure functions only.
 */
#include <sys/types.h>

#include <stdio.h>
#include <string.h>

#include "inject.h"
#include "textline.h"

/* Whether the field named (name, nlen) is want, case aside. */
static int
inject_named(const char *name, size_t nlen, const char *want)
{
	size_t	 i;
	char	 a, b;

	if (nlen != strlen(want))
		return 0;
	for (i = 0; i < nlen; i++) {
		a = name[i];
		b = want[i];
		if (a >= 'A' && a <= 'Z')
			a += 'a' - 'A';
		if (b >= 'A' && b <= 'Z')
			b += 'a' - 'A';
		if (a != b)
			return 0;
	}
	return 1;
}

/* One address of a list: trimmed, comments out; "" is no address. */
static int
inject_addr_add(const char *s, size_t len, char (*rcpts)[SQ_ADDR_MAX],
    size_t maxrcpt, size_t *n)
{
	char	 buf[SQ_ADDR_MAX];
	size_t	 i, o = 0;
	int	 depth = 0, quoted = 0;

	for (i = 0; i < len; i++) {
		if (!quoted && s[i] == '(') {
			depth++;
			continue;
		}
		if (depth > 0) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == ')')
				depth--;
			continue;
		}
		if (s[i] == '"')
			quoted = !quoted;
		if (!quoted && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' ||
		    s[i] == '\n'))
			continue;
		/* Controls (NUL among them) make no address: dropped. */
		if ((unsigned char)s[i] < ' ' || s[i] == 0x7f)
			continue;
		if (o + 1 >= sizeof(buf))
			return -1;
		buf[o++] = s[i];
	}
	if (o == 0)
		return 0;
	buf[o] = '\0';
	if (*n >= maxrcpt)
		return -1;
	memcpy(rcpts[(*n)++], buf, o + 1);
	return 0;
}

int
inject_addrlist(const char *val, size_t len, char (*rcpts)[SQ_ADDR_MAX],
    size_t maxrcpt, size_t *n)
{
	size_t	 i, start = 0, aopen = 0, aoff = 0, alen = 0;
	int	 depth = 0, quoted = 0, angle = 0, have_angle = 0;

	/*
	 * Elements end at a ',' outside quotes, comments and angles; a ':'
	 * there ends a group's name, a ';' its list.  An element with an
	 * angle-addr is that address, else its text without comments.
	 */
	for (i = 0; i <= len; i++) {
		if (i < len) {
			if (quoted) {
				if (val[i] == '\\')
					i++;
				else if (val[i] == '"')
					quoted = 0;
				continue;
			}
			if (depth > 0) {
				if (val[i] == '\\')
					i++;
				else if (val[i] == '(')
					depth++;
				else if (val[i] == ')')
					depth--;
				continue;
			}
			switch (val[i]) {
			case '"':
				quoted = 1;
				continue;
			case '(':
				depth = 1;
				continue;
			case '<':
				if (!angle) {
					angle = 1;
					aopen = i + 1;
				}
				continue;
			case '>':
				if (angle) {
					/* Only a closed one counts. */
					angle = 0;
					have_angle = 1;
					aoff = aopen;
					alen = i - aopen;
				}
				continue;
			case ':':
				if (angle)
					continue;
				/* A group's display name: no address. */
				start = i + 1;
				have_angle = 0;
				continue;
			case ',':
			case ';':
				if (angle)
					continue;
				break;
			default:
				continue;
			}
		}
		if (have_angle) {
			if (inject_addr_add(val + aoff, alen, rcpts, maxrcpt,
			    n) == -1)
				return -1;
		} else if (i > start && inject_addr_add(val + start,
		    (i > len ? len : i) - start, rcpts, maxrcpt, n) == -1)
			return -1;
		start = i + 1;
		have_angle = 0;
		angle = 0;
	}
	return 0;
}

/* The end of the line at off: the offset after its LF (or len). */
static size_t
inject_eol(const char *msg, size_t len, size_t off)
{
	const char	*p;

	if ((p = memchr(msg + off, '\n', len - off)) == NULL)
		return len;
	return (size_t)(p - msg) + 1;
}

/* A field name then ':' at off: the name's length, or 0. */
static size_t
inject_fieldname(const char *msg, size_t len, size_t off)
{
	size_t	 i;

	for (i = off; i < len; i++) {
		if (msg[i] == ':')
			return i - off;
		if ((unsigned char)msg[i] <= ' ' ||
		    (unsigned char)msg[i] > '~')
			return 0;
	}
	return 0;
}

int
inject_scan(const char *msg, size_t len, struct inject_info *info,
    char (*rcpts)[SQ_ADDR_MAX], size_t maxrcpt, char *err, size_t errlen)
{
	size_t	 off = 0, end, nlen, vstart;
	int	 addrs;

	memset(info, 0, sizeof(*info));
	if (errlen > 0)
		err[0] = '\0';
	for (;;) {
		if (off >= len) {
			info->hdr_len = info->body_off = len;
			return 0;
		}
		if (msg[off] == '\n' || (msg[off] == '\r' && off + 1 < len &&
		    msg[off + 1] == '\n')) {
			info->hdr_len = off;
			info->body_off = off + (msg[off] == '\r' ? 2 : 1);
			info->blank = 1;
			return 0;
		}
		if ((nlen = inject_fieldname(msg, len, off)) == 0) {
			/* Not a field: the body starts here. */
			info->hdr_len = info->body_off = off;
			return 0;
		}
		if (off >= INJECT_HEADER_MAX)
			return text_fail(err, errlen, "header section longer "
			    "than %d octets", INJECT_HEADER_MAX);
		/* The field and its continuation lines. */
		end = inject_eol(msg, len, off);
		while (end < len && (msg[end] == ' ' || msg[end] == '\t')) {
			if (end - off > INJECT_FIELD_MAX)
				break;
			end = inject_eol(msg, len, end);
		}
		if (end - off > INJECT_FIELD_MAX)
			return text_fail(err, errlen, "header field longer "
			    "than %d octets", INJECT_FIELD_MAX);
		vstart = off + nlen + 1;

		addrs = 0;
		if (inject_named(msg + off, nlen, "date"))
			info->has_date = 1;
		else if (inject_named(msg + off, nlen, "message-id"))
			info->has_msgid = 1;
		else if (inject_named(msg + off, nlen, "from"))
			info->has_from = 1;
		else if (inject_named(msg + off, nlen, "sender"))
			info->has_sender = 1;
		else if (inject_named(msg + off, nlen, "to") ||
		    inject_named(msg + off, nlen, "cc"))
			addrs = 1;
		else if (inject_named(msg + off, nlen, "bcc")) {
			if (info->nbcc >= INJECT_BCC_MAX)
				return text_fail(err, errlen, "more than %d "
				    "Bcc fields", INJECT_BCC_MAX);
			info->bcc[info->nbcc].off = off;
			info->bcc[info->nbcc].len = end - off;
			info->nbcc++;
			addrs = 1;
		}
		if (addrs && rcpts != NULL && inject_addrlist(msg + vstart,
		    end - vstart, rcpts, maxrcpt, &info->nrcpt) == -1)
			return text_fail(err, errlen, "too many or too long "
			    "recipient addresses in the header (at most %zu "
			    "of %d octets)", maxrcpt, SQ_ADDR_MAX - 1);
		off = end;
	}
}

/* atext (RFC 5322 3.2.3) and the blank: no quotes needed. */
static int
inject_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == ' ')
		return 1;
	return strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL && c != '\0';
}

int
inject_from(const char *name, int gecos, const char *login,
    const char *addr, char *buf, size_t buflen)
{
	char		 dn[INJECT_NAME_MAX];
	const char	*p;
	size_t		 o = 0, i, l;
	int		 quote = 0, n;

	for (p = name; *p != '\0' && o + 1 < sizeof(dn); p++) {
		if (gecos && *p == ',')
			break;
		if (gecos && *p == '&') {
			for (i = 0; login[i] != '\0' &&
			    o + 1 < sizeof(dn); i++) {
				dn[o] = login[i];
				if (i == 0 && dn[o] >= 'a' && dn[o] <= 'z')
					dn[o] -= 'a' - 'A';
				o++;
			}
			continue;
		}
		/* Controls would break the field; 8-bit is left as is. */
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			continue;
		dn[o++] = *p;
	}
	dn[o] = '\0';
	/* No blank at either end. */
	while (o > 0 && dn[o - 1] == ' ')
		dn[--o] = '\0';
	for (p = dn; *p == ' '; p++)
		;
	l = strlen(p);
	for (i = 0; i < l; i++)
		if (!inject_atext((unsigned char)p[i]))
			quote = 1;
	if (l == 0)
		n = snprintf(buf, buflen, "From: %s\n", addr);
	else if (!quote)
		n = snprintf(buf, buflen, "From: %s <%s>\n", p, addr);
	else {
		/* A quoted-string: '"' and '\' escaped. */
		char	 q[2 * INJECT_NAME_MAX + 1];
		size_t	 j = 0;

		for (i = 0; i < l; i++) {
			if (p[i] == '"' || p[i] == '\\')
				q[j++] = '\\';
			q[j++] = p[i];
		}
		q[j] = '\0';
		n = snprintf(buf, buflen, "From: \"%s\" <%s>\n", q, addr);
	}
	if (n < 0 || (size_t)n >= buflen)
		return -1;
	return n;
}

int
inject_offline_addr_ok(const char *s)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < ' ' || s[i] == 0x7f ||
		    i + 1 >= SQ_ADDR_MAX)
			return 0;
	return 1;
}

int
inject_offline_parse(const char *buf, size_t len, struct inject_offline *out,
    struct inject_range *rcpts, size_t maxrcpt, char *err, size_t errlen)
{
	const char	*nl;
	size_t		 off, end, i, magic = sizeof(INJECT_OFFLINE_MAGIC) - 1;
	int		 have_sender = 0;

	memset(out, 0, sizeof(*out));
	if (errlen > 0)
		err[0] = '\0';
	if (len > INJECT_OFFLINE_ENV_MAX)
		len = INJECT_OFFLINE_ENV_MAX;
	if (len < magic || memcmp(buf, INJECT_OFFLINE_MAGIC, magic) != 0)
		return text_fail(err, errlen, "not an offline file (no "
		    "magic line)");
	for (off = magic;; off = end + 1) {
		if (off >= len || (nl = memchr(buf + off, '\n',
		    len - off)) == NULL)
			return text_fail(err, errlen, "the envelope does not "
			    "end within %zu octets", (size_t)
			    INJECT_OFFLINE_ENV_MAX);
		end = (size_t)(nl - buf);
		if (end == off)
			break;		/* the empty line */
		if (end - off - 1 >= SQ_ADDR_MAX)
			return text_fail(err, errlen, "an address longer "
			    "than %d octets", SQ_ADDR_MAX - 1);
		for (i = off + 1; i < end; i++)
			if ((unsigned char)buf[i] < ' ' || buf[i] == 0x7f)
				return text_fail(err, errlen, "a control "
				    "octet in an address");
		switch (buf[off]) {
		case 'S':
			if (have_sender || out->nrcpt > 0)
				return text_fail(err, errlen, "a sender "
				    "line out of place");
			have_sender = 1;
			out->sender.off = off + 1;
			out->sender.len = end - off - 1;
			break;
		case 'R':
			if (!have_sender)
				return text_fail(err, errlen, "a recipient "
				    "before the sender");
			if (end == off + 1)
				return text_fail(err, errlen, "an empty "
				    "recipient");
			if (out->nrcpt >= maxrcpt ||
			    out->nrcpt >= INJECT_OFFLINE_RCPTS)
				return text_fail(err, errlen, "more than %zu "
				    "recipients", maxrcpt <
				    INJECT_OFFLINE_RCPTS ? maxrcpt :
				    (size_t)INJECT_OFFLINE_RCPTS);
			rcpts[out->nrcpt].off = off + 1;
			rcpts[out->nrcpt].len = end - off - 1;
			out->nrcpt++;
			break;
		default:
			return text_fail(err, errlen, "an envelope line of "
			    "unknown kind");
		}
	}
	if (out->nrcpt == 0)
		return text_fail(err, errlen, "no recipient");
	out->body_off = off + 1;
	return 0;
}
