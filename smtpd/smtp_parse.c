/*
 * SMTP command parsing (RFC 5321 4.1): the verb, MAIL/RCPT paths and
 * their ESMTP parameters.  Pure functions over (pointer, length): no
 * allocation, no global state, nothing read past the given length.
 */
#include <sys/types.h>

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailaddr.h"
#include "smtp.h"
#include "sqmail.h"

static const struct {
	const char	*name;
	enum smtp_verb	 verb;
} smtp_verbs[] = {
	{ "HELO",	SMTP_CMD_HELO },
	{ "EHLO",	SMTP_CMD_EHLO },
	{ "MAIL",	SMTP_CMD_MAIL },
	{ "RCPT",	SMTP_CMD_RCPT },
	{ "DATA",	SMTP_CMD_DATA },
	{ "RSET",	SMTP_CMD_RSET },
	{ "NOOP",	SMTP_CMD_NOOP },
	{ "QUIT",	SMTP_CMD_QUIT },
	{ "VRFY",	SMTP_CMD_VRFY },
	{ "EXPN",	SMTP_CMD_EXPN },
	{ "HELP",	SMTP_CMD_HELP },
	{ "STARTTLS",	SMTP_CMD_STARTTLS },
	{ "AUTH",	SMTP_CMD_AUTH },
	{ "BDAT",	SMTP_CMD_NOTIMPL },
	{ "ETRN",	SMTP_CMD_NOTIMPL },
	{ "TURN",	SMTP_CMD_NOTIMPL },
	{ "ATRN",	SMTP_CMD_NOTIMPL },
	{ "GET",	SMTP_CMD_HTTP },
	{ "HEAD",	SMTP_CMD_HTTP },
	{ "POST",	SMTP_CMD_HTTP },
	{ "PUT",	SMTP_CMD_HTTP },
	{ "CONNECT",	SMTP_CMD_HTTP },
	{ "OPTIONS",	SMTP_CMD_HTTP },
};

static int	smtp_blank(char);
static int	smtp_path(const char *, size_t, size_t *, struct mailaddr *,
		    int);
static int	smtp_path_cmd(const char *, size_t, const char *,
		    struct mailaddr *, struct smtp_params *, int);
static int	smtp_param_one(const char *, size_t, struct smtp_params *);

static int
smtp_blank(char c)
{
	return c == ' ' || c == '\t';
}

const char *
smtp_verb_name(enum smtp_verb v)
{
	size_t	 i;

	for (i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++)
		if (smtp_verbs[i].verb == v)
			return smtp_verbs[i].name;
	return "UNKNOWN";
}

int
smtp_parse_command(const char *line, size_t len, struct smtp_cmd *cmd)
{
	size_t	 i, vlen;

	memset(cmd, 0, sizeof(*cmd));
	cmd->verb = SMTP_CMD_UNKNOWN;
	cmd->arg = line;
	for (i = 0; i < len; i++)
		if (line[i] == '\0' || line[i] == '\r' || line[i] == '\n')
			return -1;

	while (len > 0 && smtp_blank(line[len - 1]))
		len--;
	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
		;
	for (i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++)
		if (strlen(smtp_verbs[i].name) == vlen &&
		    strncasecmp(smtp_verbs[i].name, line, vlen) == 0) {
			cmd->verb = smtp_verbs[i].verb;
			break;
		}

	/* The argument: after the spaces, without trailing blanks. */
	for (i = vlen; i < len && line[i] == ' '; i++)
		;
	cmd->arg = line + i;
	cmd->arglen = len - i;
	return 0;
}

int
smtp_parse_helo(const char *s, size_t len, char *out, size_t outlen)
{
	size_t	 i;

	for (i = 0; i < len && s[i] != ' '; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return -1;
	if (i == 0 || i > SQ_DOMAIN_MAX || i >= outlen)
		return -1;
	memcpy(out, s, i);
	out[i] = '\0';
	return 0;
}

/*
 * A Path "<...>" at s[0]: an optional source route (dropped, RFC 5321
 * 4.1.1.3 and C) and a mailbox, or "<>" when null_ok.  *end is the index
 * just past '>'.
 */
static int
smtp_path(const char *s, size_t len, size_t *end, struct mailaddr *addr,
    int null_ok)
{
	char	 dom[SQ_DOMAIN_MAX + 1];
	size_t	 i, close, start, j;
	int	 quoted = 0;

	if (len == 0 || s[0] != '<')
		return SMTP_P_SYNTAX;
	/* The closing '>' outside a quoted local part. */
	for (close = 1; close < len; close++) {
		if (quoted && s[close] == '\\') {
			close++;
			continue;
		}
		if (s[close] == '"')
			quoted = !quoted;
		else if (!quoted && s[close] == '>')
			break;
	}
	if (close >= len)
		return SMTP_P_SYNTAX;
	*end = close + 1;

	start = 1;
	if (close == 1) {
		memset(addr, 0, sizeof(*addr));
		return null_ok ? SMTP_P_OK : SMTP_P_ADDR;
	}
	if (s[start] == '@') {
		/* A-d-l ":" : "@dom" *("," "@dom") ":" */
		for (i = start; ; ) {
			if (i >= close || s[i] != '@')
				return SMTP_P_ADDR;
			i++;
			for (j = i; j < close && s[j] != ',' && s[j] != ':'; j++)
				;
			if (j >= close || mailaddr_parse_domain(s + i, j - i,
			    dom, sizeof(dom)) == -1)
				return SMTP_P_ADDR;
			i = j + 1;
			if (s[j] == ':')
				break;
		}
		start = i;
	}
	if (mailaddr_parse(s + start, close - start, addr) == -1)
		return SMTP_P_ADDR;
	return SMTP_P_OK;
}

/* "FROM:" or "TO:", at most one space, a path, then parameters. */
static int
smtp_path_cmd(const char *buf, size_t len, const char *kw,
    struct mailaddr *addr, struct smtp_params *params, int is_mail)
{
	size_t	 i, kwlen = strlen(kw), end;
	int	 r;

	memset(addr, 0, sizeof(*addr));
	memset(params, 0, sizeof(*params));
	if (len < kwlen || strncasecmp(buf, kw, kwlen) != 0)
		return SMTP_P_SYNTAX;
	i = kwlen;
	if (i < len && buf[i] == ' ')
		i++;
	if (i >= len || buf[i] != '<')
		return SMTP_P_SYNTAX;

	if (!is_mail && len - i >= 12 &&
	    strncasecmp(buf + i, "<postmaster>", 12) == 0) {
		(void)strlcpy(addr->user, "postmaster", sizeof(addr->user));
		end = i + 12;
	} else if ((r = smtp_path(buf + i, len - i, &end, addr, is_mail))
	    != SMTP_P_OK) {
		memset(addr, 0, sizeof(*addr));
		return r;
	} else
		end += i;

	if (end == len)
		return SMTP_P_OK;
	if (buf[end] != ' ')
		return SMTP_P_SYNTAX;
	r = smtp_parse_params(buf + end, len - end, params);
	if (r == SMTP_P_OK && !is_mail && params->count > 0)
		r = SMTP_P_PARAM;	/* no RCPT parameter is offered */
	return r;
}

int
smtp_parse_mail(const char *buf, size_t len, struct mailaddr *addr,
    struct smtp_params *params)
{
	return smtp_path_cmd(buf, len, "FROM:", addr, params, 1);
}

int
smtp_parse_rcpt(const char *buf, size_t len, struct mailaddr *addr,
    struct smtp_params *params)
{
	return smtp_path_cmd(buf, len, "TO:", addr, params, 0);
}

/* One esmtp-param: esmtp-keyword ["=" esmtp-value]. */
static int
smtp_param_one(const char *s, size_t len, struct smtp_params *params)
{
	char		 num[21];
	const char	*val = NULL, *errstr;
	size_t		 klen, vlen = 0, i;
	long long	 n;

	for (klen = 0; klen < len && s[klen] != '='; klen++) {
		if ((s[klen] >= 'a' && s[klen] <= 'z') ||
		    (s[klen] >= 'A' && s[klen] <= 'Z') ||
		    (s[klen] >= '0' && s[klen] <= '9'))
			continue;
		if (s[klen] == '-' && klen > 0)
			continue;
		return SMTP_P_SYNTAX;
	}
	if (klen == 0)
		return SMTP_P_SYNTAX;
	if (klen < len) {
		val = s + klen + 1;
		vlen = len - klen - 1;
		if (vlen == 0)
			return SMTP_P_SYNTAX;
		for (i = 0; i < vlen; i++)
			if ((unsigned char)val[i] < 33 ||
			    (unsigned char)val[i] > 126 || val[i] == '=')
				return SMTP_P_SYNTAX;
	}
	params->count++;

	if (klen == 4 && strncasecmp(s, "SIZE", 4) == 0) {
		if (params->has_size || val == NULL)
			return SMTP_P_PARAMVAL;
		for (i = 0; i < vlen; i++)
			if (val[i] < '0' || val[i] > '9')
				return SMTP_P_PARAMVAL;
		params->has_size = 1;
		if (vlen >= sizeof(num)) {
			/* Beyond any limit of ours: the caller says 552. */
			params->size = UINT64_MAX;
			return SMTP_P_OK;
		}
		memcpy(num, val, vlen);
		num[vlen] = '\0';
		n = strtonum(num, 0, LLONG_MAX, &errstr);
		params->size = errstr == NULL ? (uint64_t)n : UINT64_MAX;
		return SMTP_P_OK;
	}
	if (klen == 4 && strncasecmp(s, "BODY", 4) == 0) {
		if (params->body != SMTP_BODY_NONE || val == NULL)
			return SMTP_P_PARAMVAL;
		if (vlen == 4 && strncasecmp(val, "7BIT", 4) == 0)
			params->body = SMTP_BODY_7BIT;
		else if (vlen == 8 && strncasecmp(val, "8BITMIME", 8) == 0)
			params->body = SMTP_BODY_8BITMIME;
		else
			return SMTP_P_PARAMVAL;
		return SMTP_P_OK;
	}
	return SMTP_P_PARAM;
}

int
smtp_parse_params(const char *s, size_t len, struct smtp_params *params)
{
	size_t	 i = 0, j;
	int	 r;

	memset(params, 0, sizeof(*params));
	for (;;) {
		while (i < len && s[i] == ' ')
			i++;
		if (i == len)
			return SMTP_P_OK;
		for (j = i; j < len && s[j] != ' '; j++)
			;
		if ((r = smtp_param_one(s + i, j - i, params)) != SMTP_P_OK)
			return r;
		i = j;
	}
}
