/*
 * sqmail.conf in memory.  lib/parse.y fills it; every process holds a copy
 * (children inherit the parent's at fork, and rebuild it from the file set
 * the parent sends on reload, see config_send/config_imsg).
 */
#ifndef SQ_CONFIG_H
#define SQ_CONFIG_H

#include <sys/types.h>
#include <sys/socket.h>
#include <bsd/sys/queue.h>

#include <limits.h>
#include <stdint.h>
#include <time.h>

#include "sqmail.h"

#define LISTEN_PKI_MAX	8		/* pki names on one listen line */
#define PKI_FILE_MAX	(256 * 1024)	/* octets of a pki file */

enum listen_proto {
	LPROTO_SMTP = 1,	/* port 25 style */
	LPROTO_SUBMISSION,	/* port 587 style (AUTH required, a later issue) */
	LPROTO_SMTPS,		/* implicit TLS (RFC 8314), port 465 style */
	LPROTO_QMTP,
	LPROTO_QMQP,
	LPROTO_POP3
};

struct listener {
	TAILQ_ENTRY(listener)	 entry;
	struct sockaddr_storage	 ss;	/* address and port */
	socklen_t		 sslen;
	enum listen_proto	 proto;
	char			 name[64];	/* "127.0.0.1:2525", for logs */
	int			 fd;		/* listening socket, -1 until opened */
	/* TLS: STARTTLS offered (smtps is TLS from the start anyway) */
	int			 tls;
	int			 npki;		/* 0: every pki block */
	char			 pki[LISTEN_PKI_MAX][SQ_DOMAIN_MAX + 1];
	/*
	 * AUTH (RFC 4954): offered when auth_table[0] != '\0'.  A table
	 * name (virtual users), or an auth source's name ('@' first, see
	 * struct authsrc) for the other backends.
	 */
	char			 auth_table[64];
	int			 auth_plaintext;	/* offered before TLS too */
	int			 auth_required;		/* no MAIL before AUTH */
	/*
	 * X.509 client certificates ("tls client-ca", "auth certificate"):
	 * the listener asks for a certificate (optional), libtls verifies
	 * it against the client CA, and the table maps it to a user.  The
	 * CA file is read by the parent; only it and smtp hold its text.
	 */
	char			 client_ca_path[PATH_MAX];	/* "" none */
	char			*client_ca;	/* PEM; NULL: not read here */
	size_t			 client_ca_len;
	char			 auth_cert[64];	/* mapping table, "" none */
	/*
	 * MAV ("auth sender-check"): an authenticated session's MAIL FROM
	 * must be one of its user's addresses (lka decides: see
	 * lka/lka_auth_sender.c), with auth_senders (a table: user ->
	 * addresses and @domains) adding to the implicit ones.
	 */
	int			 auth_sender_check;
	char			 auth_senders[64];	/* table, "" none */
	char			 where[128];	/* "file:line" of the listen line */
};
TAILQ_HEAD(listenerlist, listener);

/*
 * A pki block: a certificate (its chain appended) and its private key,
 * which libtls serves to clients whose SNI the certificate's names
 * match.  The parent reads the files; the contents are kept only by the
 * parent and the smtp process (config_pki_clear() wipes them elsewhere).
 */
struct pki {
	TAILQ_ENTRY(pki)	 entry;
	char			 name[SQ_DOMAIN_MAX + 1];
	char			 cert_path[PATH_MAX];
	char			 key_path[PATH_MAX];
	char			 chain_path[PATH_MAX];	/* "" none */
	char			*cert;		/* PEM; NULL: not read here */
	size_t			 cert_len;
	char			*key;		/* PEM; NULL: not read here */
	size_t			 key_len;
};
TAILQ_HEAD(pkilist, pki);

enum table_type {
	TABLE_FILE = 1,		/* text, "key value" per line, '#' comments */
	TABLE_CDB,		/* tinycdb */
	TABLE_ALIASES		/* aliases(5) source, looked up in PATH.cdb */
};

struct table {
	TAILQ_ENTRY(table)	 entry;
	char			 name[64];
	enum table_type		 type;
	char			 path[PATH_MAX];	/* absolute */
	/* As an alias table: who runs |program and /file targets ("": nobody). */
	char			 user[SQ_USER_MAX + 1];
	void			*handle;	/* lka only: loaded data */
};
TAILQ_HEAD(tablelist, table);

/*
 * An AUTH backend other than a users table ("auth system", "auth
 * checkpassword" on a listen line).  The name is what the listener sends
 * to lka in place of a table name: '@' first (no table name has one),
 * then the settings themselves or a hash of them, so that the same
 * settings have the same name after a reload (smtp keeps its listeners,
 * lka re-parses).
 */
enum auth_backend {
	AUTHB_SYSTEM = 1,	/* passwd/shadow, crypt(3), in the parent */
	AUTHB_PAM,		/* PAM service, in the parent */
	AUTHB_PROG,		/* a checkpassword program, run by lka */
	AUTHB_LDAP		/* an LDAP server, asked by lka */
};

#define AUTH_SRC_PREFIX		'@'
#define AUTH_SERVICE_MAX	32	/* octets of a PAM service name */
#define AUTH_PROG_TIMEOUT	10	/* seconds, checkpassword default */
#define AUTH_SYSTEM_TIMEOUT	10	/* seconds a system/PAM check may take */

/*
 * auth ldap: simple bind as bind_dn (a template, "%u" the escaped user),
 * or search base for filter (the same) and bind as the one entry found,
 * after a bind as search_dn if set.  search_pw is a secret: the source
 * is wiped when freed.
 */
#define AUTH_LDAP_TIMEOUT	10	/* seconds, the default */
#define AUTH_LDAP_STR		512	/* octets of a URL, DN or filter */
#define AUTH_LDAP_POOL_MAX	64	/* connections of one source */
struct authldap {
	char			 url[AUTH_LDAP_STR];
	char			 bind_dn[AUTH_LDAP_STR];	/* "": search */
	char			 base[AUTH_LDAP_STR];
	char			 filter[AUTH_LDAP_STR];
	char			 search_dn[AUTH_LDAP_STR];	/* "": anonymous */
	char			 search_pw[256];
	char			 ca[PATH_MAX];		/* "": system CAs */
	int			 starttls;
	int			 pool;		/* connections; 0: the default */
};

struct authsrc {
	TAILQ_ENTRY(authsrc)	 entry;
	char			 name[64];	/* "@system", "@pam:SERVICE", ... */
	enum auth_backend	 type;
	char			 service[AUTH_SERVICE_MAX + 1];	/* PAM */
	char			 prog[PATH_MAX];	/* checkpassword, absolute */
	time_t			 timeout;	/* checkpassword, ldap */
	struct authldap		 ldap;		/* AUTHB_LDAP */
};
TAILQ_HEAD(authsrclist, authsrc);

/* One network in "relay from": address and prefix length. */
struct netaddr {
	struct sockaddr_storage	 ss;
	int			 bits;
};

/* How the mta uses TLS towards a remote domain (sqmail.conf(5) "tls"). */
enum tls_policy {
	TLSP_OPPORTUNISTIC = 0,	/* the default: STARTTLS when offered */
	TLSP_NONE,		/* never STARTTLS */
	TLSP_REQUIRED,		/* TLS or no delivery; certificate not checked */
	TLSP_VERIFY,		/* TLS, chain and host name verified */
	TLSP_FINGERPRINT	/* TLS, certificate pinned by SHA-256 */
};

/*
 * A domain block.  name is a domain ("example.org"), a suffix match
 * (".example.org": every subdomain) or "*" (any other domain: only with
 * explicit delivery).  Later issues add routes, TLS policy and checks.
 */
struct domain {
	TAILQ_ENTRY(domain)	 entry;
	char			 name[SQ_DOMAIN_MAX + 1];
	enum mbox_method	 method;	/* local delivery method */
	char			 mailbox[SQ_MAILBOX_MAX];	/* template, see struct dest */
	char			 user[SQ_USER_MAX + 1];	/* deliver all as this user, or "" */
	struct table		*users;		/* local part -> user; NULL: passwd */
	struct table		*aliases;	/* local part -> addr, addr, ...; or NULL */
	struct table		*recipients;	/* valid local parts; NULL: any that resolves */
	/* route: remote, to this relay instead of the MX hosts */
	char			 route_host[SQ_DOMAIN_MAX + 1];	/* "" none */
	uint16_t		 route_port;	/* 25 unless given */
	int			 route_literal;	/* [address]: no lookup */
	int			 route_smtps;	/* implicit TLS (port 465 style) */
	char			 auth_user[128];	/* AUTH to the route; "" none */
	char			 auth_secret[256];
	char			 auth_src[64];	/* AUTH of user@domain, or "" */
	int			 auth_plaintext;	/* AUTH without TLS too */
	time_t			 lifetime;	/* queue lifetime here; 0: global */
	int			 remote;	/* route or tls: not local */
	enum tls_policy		 tls;
	char			 tls_fingerprint[65];	/* hex, lower case */
};
TAILQ_HEAD(domainlist, domain);

struct sqconf {
	char			 hostname[SQ_DOMAIN_MAX + 1];
	char			 spool[PATH_MAX];	/* absolute */
	char			 control_socket[PATH_MAX];	/* absolute */
	char			 control_group[64];	/* may use sqmailctl besides root */
	char			 user[SQ_USER_MAX + 1];	/* smtp, lka, mda, mta, control */
	char			 queue_user[SQ_USER_MAX + 1];	/* queue */
	char			 empty_dir[PATH_MAX];	/* chroot of smtp, mda, mta, control */
	int			 log_syslog;	/* 0: stderr */
	char			 postmaster[SQ_ADDR_MAX];	/* double bounces go here */
	char			 dns_servers[256];	/* "" : /etc/resolv.conf */
	char			 tls_ca[PATH_MAX];	/* CA file of tls verify */

	/* limits */
	uint64_t		 max_message_size;	/* octets */
	uint32_t		 max_recipients;	/* per transaction */
	uint32_t		 max_sessions;
	uint32_t		 max_sessions_per_ip;
	uint32_t		 max_errors;	/* bad commands before 421 */
	uint32_t		 max_auth_failures;	/* per client IP; 0: no limit */
	time_t			 auth_fail_window;	/* ... counted over this */
	time_t			 timeout_command;	/* idle between commands */
	time_t			 timeout_data;		/* idle during DATA */
	uint32_t		 bare_lf_reject;	/* 1: 554 on bare LF in data */

	/* queue */
	time_t			 queue_lifetime;	/* default 7 days */
	time_t			 retry_min;	/* first retry interval */
	time_t			 retry_max;	/* backoff cap */
	uint32_t		 bounce_max_size;	/* octets of original quoted */
	uint32_t		 mda_concurrency;	/* deliveries at once */
	uint32_t		 mta_concurrency;	/* remote sessions at once */
	uint32_t		 mta_host_concurrency;	/* ... to one address */
	int			 received_auth;	/* the AUTH user in Received */
	time_t			 agent_idle;	/* agent exits after this idle time */
	time_t			 agent_program_timeout;	/* a .qmail |program */

	/*
	 * qmail's rules for local parts (sqmail.conf(5) "qmail"): a
	 * users/assign file, a virtualdomains file (both read by lka, and
	 * users/assign by the parent as well), the break character, the
	 * passwd accounts that get no mail, and the catch-all account.
	 */
	char			 qmail_assign[PATH_MAX];	/* "" none */
	char			 qmail_vdoms[PATH_MAX];	/* "" none */
	int			 qmail_break;		/* '-' */
	char			 qmail_alias[SQ_USER_MAX + 1];	/* "" none */
	char			**qmail_ignore;	/* NULL-terminated, or NULL */
	size_t			 qmail_nignore;

	size_t			 nrelay;
	struct netaddr		*relay_from;	/* may relay anywhere */

	struct listenerlist	 listeners;
	struct tablelist	 tables;
	struct domainlist	 domains;
	struct domain		*bounce_route;	/* null sender's route, or NULL */
	struct authsrclist	 authsrcs;	/* AUTH backends but tables */

	/* TLS of the listeners */
	struct pkilist		 pkis;
	uint32_t		 tls_protocols;	/* libtls TLS_PROTOCOL_* bits */
	char			 tls_ciphers[256];	/* libtls ciphers */
};

extern struct sqconf	*conf;		/* the configuration in force */

/*
 * A source file of the configuration, kept so that the parent can send the
 * exact text it parsed to every child on reload.
 */
struct conf_file {
	TAILQ_ENTRY(conf_file)	 entry;
	char			 name[PATH_MAX];
	char			*data;
	size_t			 len;
	size_t			 size;		/* allocated for data */
	int			 secret;	/* pki file: smtp only, wiped */
};
TAILQ_HEAD(conf_filelist, conf_file);

/* Bounds of a configuration (the parser and the reload transport agree). */
#define CONF_MAX_FILES		256	/* files, includes counted */
#define CONF_MAX_TOTAL		(16 * 1024 * 1024)	/* octets of all files */
#define CONF_MAX_INCLUDE	8	/* include nesting depth */
#define CONF_MAX_ERRORS		20	/* errors reported before giving up */
#define CONF_MAX_IGNORE		1024	/* names in "qmail ignore" */
#define CONF_CHUNK		8000	/* octets of file text per IMSG_CONF_FILE */
#define CONF_BUILTIN		"<built-in>"	/* name of the built-in file */

/*
 * Parse a configuration.  path names the main file.  basedir is the
 * absolute directory that relative paths in the file (and a relative path
 * itself) are resolved against; NULL means the current directory.  When
 * files is not NULL the parser reads every source from that list, looked up
 * by name (the reload path of a child; path NULL: the list's first file),
 * and never touches the file system; otherwise it reads the file system,
 * appending each file it reads to loaded when that is not NULL (the main
 * file first; the caller frees the list with conf_files_free(), also when
 * parsing fails).  Errors are reported as "file:line: what" through
 * log_warnx (or config_error_hook).  Returns NULL on any error.
 */
struct sqconf	*config_parse(const char *path, const char *basedir,
		    struct conf_filelist *files, struct conf_filelist *loaded);
/*
 * The built-in configuration of `make run`: paths under basedir (NULL: the
 * current directory).  config_default_files() also appends its one source
 * file, named CONF_BUILTIN, to loaded (when not NULL) so that the parent
 * can send it to children like any other configuration.
 */
struct sqconf	*config_default(const char *basedir);
struct sqconf	*config_default_files(const char *basedir,
		    struct conf_filelist *loaded);
/* Text of the built-in configuration (for sqmaild -n -v and docs). */
const char	*config_default_text(void);
/* Does not touch table handles: whoever loaded them releases them first. */
void		 config_free(struct sqconf *);
/* Frees every file of the list (pki files wiped) and leaves it empty. */
void		 conf_files_free(struct conf_filelist *);
/* Append a copy of (name, data, len); NULL on allocation failure or a long name. */
struct conf_file *conf_file_add(struct conf_filelist *, const char *name,
		    const void *data, size_t len);

/*
 * Where errors go: NULL (the default) means log_warnx("%s", line).  Unit
 * tests and the fuzzer point it elsewhere.
 */
extern void	(*config_error_hook)(const char *line);

/* Lookups over a parsed configuration. */
/* Exact (case-insensitive) name first, then the longest ".suffix", then "*". */
struct domain	*config_domain(struct sqconf *, const char *domain);
/* "opportunistic", "none", ... as sqmail.conf spells the policy. */
const char	*config_tls_name(enum tls_policy);
struct table	*config_table(struct sqconf *, const char *name);
struct authsrc	*config_authsrc(struct sqconf *, const char *name);
/* 1 if a "relay from" network holds the address, else 0. */
int		 config_relay_allowed(struct sqconf *, const struct sockaddr *);
struct pki	*config_pki(struct sqconf *, const char *name);
/* Wipe and free every pki's certificate and key contents (paths stay). */
void		 config_pki_clear(struct sqconf *);
/* Wipe and drop the pki files of a list (the configuration files stay). */
void		 conf_files_clear_secret(struct conf_filelist *);
/*
 * Parse "1.2.3.0/24", "::1", "2001:db8::/32" (no prefix: a host); host bits
 * are cleared.  0 ok, -1 bad.  An IPv4-mapped IPv6 client matches IPv4
 * networks, and an IPv4 client matches ::ffff:0:0/96 style networks.
 */
int		 netaddr_parse(const char *, struct netaddr *);
int		 netaddr_match(const struct netaddr *, const struct sockaddr *);

/*
 * Reload transport (lib/config_xfer.c).  The parent sends IMSG_CONF_START
 * (string basedir), one or more IMSG_CONF_FILE per file (string name, data
 * chunk of at most CONF_CHUNK octets; chunks of the same name append; the
 * main file first), then IMSG_CONF_END.
 */
struct mproc;
struct imsg;
/*
 * secrets: send the pki files too (to smtp only); a child without them
 * parses pki blocks without their contents.
 */
void		 config_send(struct mproc *, struct conf_filelist *,
		    const char *basedir, int secrets);
/*
 * In a child: 1 when END installed a new global conf (the old one is
 * freed: table handles and listener descriptors are not carried over),
 * 0 for START/FILE or when the new text does not parse (the old conf stays),
 * -1 for a message type that is not IMSG_CONF_*.  fatalx() on a transfer
 * out of bounds or out of order.
 */
int		 config_imsg(struct imsg *);
/* The accumulate and parse steps of config_imsg, without imsg framing. */
void		 config_xfer_start(const char *basedir);
void		 config_xfer_file(const char *name, const void *, size_t);
struct sqconf	*config_xfer_end(void);

#endif
