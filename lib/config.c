/*
 * The configuration in memory: the built-in one, lookups over a parsed
 * one, and freeing.  The parser itself is lib/parse.y.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

struct sqconf	*conf;

/*
 * The built-in configuration: everything under the directory sqmaild was
 * started in, SMTP on 127.0.0.1:2525, mail for @localhost delivered to the
 * Maildir run/Maildir/ of the user running it.
 */
static const char conf_builtin_fmt[] =
	"# sqmaild's built-in configuration (sqmaild -E)\n"
	"hostname \"localhost\"\n"
	"spool \"run/spool\"\n"
	"control socket \"run/sqmaild.sock\"\n"
	"chroot \"run/empty\"\n"
	"listen on 127.0.0.1 port 2525\n"
	"domain \"localhost\" {\n"
	"\tdeliver maildir \"run/Maildir/\"\n"
	"%s"
	"}\n";

const char *
config_default_text(void)
{
	static char	 text[sizeof(conf_builtin_fmt) + 2 * SQ_USER_MAX + 64];
	char		 user[2 * SQ_USER_MAX + 1], line[2 * SQ_USER_MAX + 16];
	struct passwd	*pw;
	const char	*name = NULL, *p;
	size_t		 n = 0;

	if ((pw = getpwuid(getuid())) != NULL)
		name = pw->pw_name;
	line[0] = '\0';
	if (name != NULL && name[0] != '\0' && strlen(name) <= SQ_USER_MAX) {
		/* Quote it as the lexer reads it. */
		for (p = name; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				user[n++] = '\\';
			user[n++] = *p;
		}
		user[n] = '\0';
		(void)snprintf(line, sizeof(line), "\tuser \"%s\"\n", user);
	}
	(void)snprintf(text, sizeof(text), conf_builtin_fmt, line);
	return text;
}

struct sqconf *
config_default_files(const char *basedir, struct conf_filelist *loaded)
{
	struct conf_filelist	 files;
	struct conf_file	*f;
	struct sqconf		*c;
	const char		*text;

	TAILQ_INIT(&files);
	text = config_default_text();
	if (conf_file_add(&files, CONF_BUILTIN, text, strlen(text)) == NULL) {
		log_warn("%s", __func__);
		return NULL;
	}
	c = config_parse(CONF_BUILTIN, basedir, &files, NULL);
	if (loaded != NULL) {
		while ((f = TAILQ_FIRST(&files)) != NULL) {
			TAILQ_REMOVE(&files, f, entry);
			TAILQ_INSERT_TAIL(loaded, f, entry);
		}
	}
	conf_files_free(&files);
	return c;
}

struct sqconf *
config_default(const char *basedir)
{
	return config_default_files(basedir, NULL);
}

void
config_free(struct sqconf *c)
{
	struct listener	*l;
	struct table	*t;
	struct domain	*d;
	struct pki	*pk;
	struct authsrc	*as;
	size_t		 i;

	if (c == NULL)
		return;
	while ((l = TAILQ_FIRST(&c->listeners)) != NULL) {
		TAILQ_REMOVE(&c->listeners, l, entry);
		free(l->client_ca);
		free(l);
	}
	while ((t = TAILQ_FIRST(&c->tables)) != NULL) {
		TAILQ_REMOVE(&c->tables, t, entry);
		free(t);
	}
	freezero(c->bounce_route, sizeof(*c->bounce_route));
	while ((d = TAILQ_FIRST(&c->domains)) != NULL) {
		TAILQ_REMOVE(&c->domains, d, entry);
		free(d);
	}
	config_pki_clear(c);
	while ((pk = TAILQ_FIRST(&c->pkis)) != NULL) {
		TAILQ_REMOVE(&c->pkis, pk, entry);
		free(pk);
	}
	while ((as = TAILQ_FIRST(&c->authsrcs)) != NULL) {
		TAILQ_REMOVE(&c->authsrcs, as, entry);
		freezero(as, sizeof(*as));	/* an LDAP search password */
	}
	free(c->relay_from);
	for (i = 0; i < c->qmail_nignore; i++)
		free(c->qmail_ignore[i]);
	free(c->qmail_ignore);
	free(c);
}

struct conf_file *
conf_file_add(struct conf_filelist *list, const char *name, const void *data,
    size_t len)
{
	struct conf_file	*f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	if (strlcpy(f->name, name, sizeof(f->name)) >= sizeof(f->name) ||
	    (f->data = malloc(len + 1)) == NULL) {
		free(f);
		return NULL;
	}
	if (len > 0)
		memcpy(f->data, data, len);
	f->data[len] = '\0';
	f->len = len;
	f->size = len + 1;
	TAILQ_INSERT_TAIL(list, f, entry);
	return f;
}

static void
conf_file_free(struct conf_file *f)
{
	if (f->secret)
		freezero(f->data, f->size);
	else
		free(f->data);
	free(f);
}

void
conf_files_free(struct conf_filelist *list)
{
	struct conf_file	*f;

	if (list == NULL)
		return;
	while ((f = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, f, entry);
		conf_file_free(f);
	}
}

void
conf_files_clear_secret(struct conf_filelist *list)
{
	struct conf_file	*f, *next;

	if (list == NULL)
		return;
	for (f = TAILQ_FIRST(list); f != NULL; f = next) {
		next = TAILQ_NEXT(f, entry);
		if (f->secret) {
			TAILQ_REMOVE(list, f, entry);
			conf_file_free(f);
		}
	}
}

struct pki *
config_pki(struct sqconf *c, const char *name)
{
	struct pki	*pk;

	TAILQ_FOREACH(pk, &c->pkis, entry)
		if (strcasecmp(pk->name, name) == 0)
			return pk;
	return NULL;
}

void
config_pki_clear(struct sqconf *c)
{
	struct pki	*pk;
	struct listener	*l;

	if (c == NULL)
		return;
	/* A client CA is no secret, but only smtp needs it, and once. */
	TAILQ_FOREACH(l, &c->listeners, entry) {
		free(l->client_ca);
		l->client_ca = NULL;
		l->client_ca_len = 0;
	}
	TAILQ_FOREACH(pk, &c->pkis, entry) {
		if (pk->cert != NULL)
			freezero(pk->cert, pk->cert_len + 1);
		if (pk->key != NULL)
			freezero(pk->key, pk->key_len + 1);
		pk->cert = pk->key = NULL;
		pk->cert_len = pk->key_len = 0;
	}
}

struct domain *
config_domain(struct sqconf *c, const char *domain)
{
	struct domain	*d, *best = NULL, *any = NULL;
	size_t		 len, slen, bestlen = 0;

	len = strlen(domain);
	TAILQ_FOREACH(d, &c->domains, entry) {
		if (strcasecmp(d->name, domain) == 0)
			return d;
		if (d->name[0] == '*')
			any = d;
		else if (d->name[0] == '.') {
			slen = strlen(d->name);
			if (len > slen && slen > bestlen &&
			    strcasecmp(domain + len - slen, d->name) == 0) {
				best = d;
				bestlen = slen;
			}
		}
	}
	return best != NULL ? best : any;
}

struct table *
config_table(struct sqconf *c, const char *name)
{
	struct table	*t;

	TAILQ_FOREACH(t, &c->tables, entry)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

struct authsrc *
config_authsrc(struct sqconf *c, const char *name)
{
	struct authsrc	*as;

	TAILQ_FOREACH(as, &c->authsrcs, entry)
		if (strcmp(as->name, name) == 0)
			return as;
	return NULL;
}

int
config_relay_allowed(struct sqconf *c, const struct sockaddr *sa)
{
	size_t	 i;

	for (i = 0; i < c->nrelay; i++)
		if (netaddr_match(&c->relay_from[i], sa))
			return 1;
	return 0;
}

static void
netaddr_mask(uint8_t *addr, size_t len, int bits)
{
	size_t	 i;

	for (i = 0; i < len; i++) {
		if (bits >= 8)
			bits -= 8;
		else {
			addr[i] &= (uint8_t)(0xff00 >> bits);
			bits = 0;
		}
	}
}

int
netaddr_parse(const char *s, struct netaddr *na)
{
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	char			 buf[INET6_ADDRSTRLEN + 8];
	const char		*errstr, *p;
	char			*slash;
	long long		 bits = -1;

	memset(na, 0, sizeof(*na));
	if (strlcpy(buf, s, sizeof(buf)) >= sizeof(buf))
		return -1;
	if ((slash = strchr(buf, '/')) != NULL) {
		*slash++ = '\0';
		if (*slash == '\0' || strlen(slash) > 3)
			return -1;
		for (p = slash; *p != '\0'; p++)
			if (*p < '0' || *p > '9')
				return -1;
		bits = strtonum(slash, 0, 128, &errstr);
		if (errstr != NULL)
			return -1;
	}
	sin = (struct sockaddr_in *)&na->ss;
	sin6 = (struct sockaddr_in6 *)&na->ss;
	if (inet_pton(AF_INET, buf, &sin->sin_addr) == 1) {
		if (bits > 32)
			return -1;
		sin->sin_family = AF_INET;
		na->bits = bits == -1 ? 32 : bits;
		netaddr_mask((uint8_t *)&sin->sin_addr, 4, na->bits);
	} else if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		na->bits = bits == -1 ? 128 : bits;
		netaddr_mask(sin6->sin6_addr.s6_addr, 16, na->bits);
	} else {
		memset(na, 0, sizeof(*na));
		return -1;
	}
	return 0;
}

/* Do the first bits of a and b agree? */
static int
netaddr_prefix_eq(const uint8_t *a, const uint8_t *b, int bits)
{
	int	 n = bits / 8, r = bits % 8;

	if (memcmp(a, b, n) != 0)
		return 0;
	if (r == 0)
		return 1;
	return ((a[n] ^ b[n]) & (uint8_t)(0xff00 >> r)) == 0;
}

int
netaddr_match(const struct netaddr *na, const struct sockaddr *sa)
{
	const struct sockaddr_in	*nsin, *sin;
	const struct sockaddr_in6	*nsin6, *sin6;
	uint8_t				 client[16];
	int				 af;

	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)sa;
		af = AF_INET;
		memcpy(client, &sin->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)sa;
		af = AF_INET6;
		memcpy(client, sin6->sin6_addr.s6_addr, 16);
		if (na->ss.ss_family == AF_INET &&
		    IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			/* ::ffff:a.b.c.d is a.b.c.d */
			af = AF_INET;
			memmove(client, client + 12, 4);
		}
	} else
		return 0;

	if (na->ss.ss_family == AF_INET) {
		if (af != AF_INET)
			return 0;
		nsin = (const struct sockaddr_in *)&na->ss;
		return netaddr_prefix_eq((const uint8_t *)&nsin->sin_addr,
		    client, na->bits);
	}
	if (na->ss.ss_family != AF_INET6)
		return 0;
	if (af == AF_INET) {
		/* an IPv4 client as ::ffff:a.b.c.d */
		memmove(client + 12, client, 4);
		memset(client, 0, 10);
		client[10] = client[11] = 0xff;
	}
	nsin6 = (const struct sockaddr_in6 *)&na->ss;
	return netaddr_prefix_eq(nsin6->sin6_addr.s6_addr, client, na->bits);
}

const char *
config_tls_name(enum tls_policy p)
{
	static const char *const names[] = {
		[TLSP_OPPORTUNISTIC] = "opportunistic", [TLSP_NONE] = "none",
		[TLSP_REQUIRED] = "required", [TLSP_VERIFY] = "verify",
		[TLSP_FINGERPRINT] = "fingerprint"
	};

	if ((unsigned)p >= sizeof(names) / sizeof(names[0]))
		return "?";
	return names[p];
}
