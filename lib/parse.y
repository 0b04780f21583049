/*
 * sqmail.conf: grammar, lexer and include handling.  See sqmail.conf(5).
 *
 * The lexer reads from files held in memory (struct conf_file), so the
 * same code parses a file from disk, a child's copy sent on reload, the
 * built-in configuration and fuzzer input.  Statements end at a newline;
 * after an error the parser skips to the end of the line and goes on, so
 * that one run reports every error (up to CONF_MAX_ERRORS).
 */

%{
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <tls.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

#define CONF_TOKEN_MAX	8192		/* octets in one word or string */
#define CONF_ARENA	65536		/* token text is carved from blocks */

/* A file being read. */
struct conf_src {
	const char		*name;
	const unsigned char	*data;
	size_t			 len;
	size_t			 pos;
	int			 lineno;
	int			 nlpending;	/* next token starts a new line */
	int			 lastnl;	/* last token was '\n' */
	int			 synthnl;	/* return '\n' first (include) */
	int			 hasid;
	dev_t			 dev;
	ino_t			 ino;
};

struct conf_macro {
	TAILQ_ENTRY(conf_macro)	 entry;
	char			*name;
	char			*value;
};
TAILQ_HEAD(conf_macrolist, conf_macro);

struct conf_arena {
	struct conf_arena	*next;
	size_t			 size;
	size_t			 used;
	char			 buf[];
};

/* Where a setting was made, for errors found once the file is read. */
struct conf_loc {
	const char	*name;
	int		 lineno;
};

static struct {
	struct sqconf		*conf;
	char			 basedir[PATH_MAX];
	struct conf_filelist	*files;		/* sources; NULL: file system */
	struct conf_filelist	*loaded;	/* where file system reads go */
	struct conf_filelist	 own;		/* ... when the caller wants none */
	struct conf_src		 src[CONF_MAX_INCLUDE + 1];
	int			 depth;		/* src[depth] is being read */
	int			 nfiles;
	size_t			 total;
	int			 errors;
	int			 stop;		/* too many errors: EOF */
	const char		*errname;	/* last error's place */
	int			 errline;
	struct conf_macrolist	 macros;
	struct conf_arena	*arena;
	struct domain		*dom;		/* block being read */
	int			 dom_deliver;
	int			 retry_set;
	struct conf_loc		 retry_loc;
	/* a pki block being read, and the files its lines named */
	struct pki		*pki;
	struct conf_file	*pkif[3];	/* certificate, key, chain */
	/* options of the listen line being read */
	int			 ltls;
	int			 lnpki;
	char			 lpki[LISTEN_PKI_MAX][SQ_DOMAIN_MAX + 1];
	char			 lauth[64];	/* "auth users" table, "" none */
	int			 lauthplain;
	int			 lauthreq;
	/* client certificates: "tls client-ca", "auth certificate" */
	char			 lclientca[PATH_MAX];	/* "" none */
	struct conf_file	*lclientcaf;	/* its text, NULL: not here */
	char			 lauthcert[64];	/* mapping table, "" none */
	int			 lsendercheck;	/* "auth sender-check" */
	char			 lsenders[64];	/* its table, "" none */
} ps;

/* auth ldap: the options being read (their own, not in ps). */
static struct authldap	 ps_ldap;
static uint64_t		 ps_ldap_timeout;
static int		 ps_ldap_bad;	/* an error reported already */

typedef struct {
	union {
		char		*string;
		const char	*kw;
		uint64_t	 number;
		int		 i;
	} v;
} YYSTYPE;
#define YYSTYPE_IS_DECLARED 1

static int	yylex(void);
static void	yyerror(const char *);

static void	conf_error(const char *, ...)
		    __attribute__((__format__ (printf, 1, 2)));
static void	conf_error_at(const char *, int, const char *, ...)
		    __attribute__((__format__ (printf, 3, 4)));
static int	conf_number(const char *, const char *, int, uint64_t *);
static int	conf_range(const char *, uint64_t, uint64_t, uint64_t);
static void	conf_include(const char *);
static void	conf_macro_set(const char *, const char *);
static void	conf_string(char *, size_t, const char *, const char *);
static void	conf_path(char *, size_t, const char *, const char *);
static void	conf_hostname(const char *);
static void	conf_user(char *, const char *, const char *);
static void	conf_control(const char *, const char *);
static void	conf_postmaster(const char *);
static void	conf_listen(const char *, uint64_t, int);
static void	conf_table_add(const char *, const char *, const char *);
static struct table *conf_table_ref(const char *);
static void	conf_relay(const char *);
static void	conf_qmail_break(const char *);
static void	conf_qmail_ignore(const char *);
static void	conf_domain_begin(const char *);
static void	conf_domain_end(void);
static void	conf_deliver(enum mbox_method, const char *);
static void	conf_route(const char *);
static void	conf_tls(enum tls_policy, const char *);
static void	conf_route_auth(const char *, const char *);
static void	conf_bounce_route(const char *);
static void	conf_dns_servers(const char *);
static void	conf_retry_loc(void);
static void	conf_pki_begin(const char *);
static void	conf_pki_file(const char *, int);
static void	conf_pki_end(void);
static void	conf_listen_pki(const char *);
static void	conf_listen_clientca(const char *);
static void	conf_listen_authcert(const char *);
static void	conf_listen_auth(const char *);
static void	conf_listen_authsrc(enum auth_backend, const char *, uint64_t);
static void	conf_domain_auth(int);
static void	conf_ldap_begin(const char *);
static void	conf_ldap_opt(int, const char *);
static void	conf_ldap_end(void);
static void	conf_listen_sendercheck(const char *);
static void	conf_tls_protocols(const char *);
static void	conf_tls_ciphers(const char *);

#define NUM_PLAIN	0
#define NUM_SIZE	1
#define NUM_TIME	2
%}

%token <v.kw>	AUTHFAILURES AUTHWINDOW
%token <v.kw>	ACCEPT AGENT ALIASES AUTH BARELF BOUNCE CHROOT COMMANDTIMEOUT
%token <v.kw>	CONCURRENCY CONTROL DATATIMEOUT DELIVER DELIVERY DNS DOMAIN
%token <v.kw>	PROGRAMTIMEOUT
%token <v.kw>	CA ERRORS FINGERPRINT FROM GROUP HOSTNAME IDLE INCLUDE LIFETIME LIMIT
%token <v.kw>	LISTEN LOG MAILDIR MAXSIZE MBOX MESSAGESIZE ON POP3 PORT
%token <v.kw>	POSTMASTER QMQP QMTP QUEUE RECIPIENTS REJECT RELAY RETRYMAX
%token <v.kw>	RETRYMIN ROUTE SERVERS SESSIONS SESSIONSPERIP SMTP SMTPS SOCKET SPOOL
%token <v.kw>	NONE OPPORTUNISTIC REQUIRED STDERR SUBMISSION SYSLOG TABLE
%token <v.kw>	TLS USER USERS VERIFY
%token <v.kw>	HOSTCONCURRENCY REMOTE
%token <v.kw>	CERTIFICATE CHAIN CIPHERS KEY PKI PROTOCOLS PLAINTEXT
%token <v.kw>	CHECKPASSWORD PAM SYSTEM TIMEOUT
%token <v.kw>	BASE BINDDN FILTER LDAP SEARCHDN SEARCHPASSWORD STARTTLS
%token <v.kw>	CLIENTCA RECEIVED
%token <v.kw>	POOL SENDERCHECK
%token <v.kw>	ALIASUSER ASSIGN IGNORE QBREAK QMAIL VIRTUALDOMAINS
%token		ERROR
/*
 * One: "auth" after a route line's options on the same line is taken as
 * the route's ("route ... auth USER SECRET"); a domain's own "auth" goes
 * on a line of its own.
 */
%expect 1
%token <v.string>	STRING
%type <v.string>	tname optgroup
%type <v.kw>		keyword
%type <v.number>	number size time optport
%type <v.i>		optproto proto

%%

grammar		: /* empty */
		| grammar '\n'
		| grammar include '\n'
		| grammar macro '\n'
		| grammar main '\n'
		| grammar domain '\n'
		| grammar pki '\n'
		| grammar tlsopt '\n'
		| grammar error '\n'		{ yyerrok; }
		;

optnl		: /* empty */
		| optnl '\n'
		;

include		: INCLUDE STRING		{ conf_include($2); }
		;

macro		: STRING '=' STRING	{ conf_macro_set($1, $3); }
		;

number		: STRING {
			if (conf_number("number", $1, NUM_PLAIN, &$$) == -1)
				YYERROR;
		}
		;

size		: STRING {
			if (conf_number("size", $1, NUM_SIZE, &$$) == -1)
				YYERROR;
		}
		;

time		: STRING {
			if (conf_number("time", $1, NUM_TIME, &$$) == -1)
				YYERROR;
		}
		;

/* A table name may be a keyword: "aliases aliases" reads naturally. */
tname		: STRING
		| keyword			{ $$ = (char *)$1; }
		;

keyword		: ACCEPT | AGENT | ALIASES | AUTH | AUTHFAILURES | AUTHWINDOW
		| BARELF | BOUNCE | CA | CHROOT | CLIENTCA | RECEIVED
		| CERTIFICATE | CHAIN | CIPHERS | KEY | PKI | PROTOCOLS | PLAINTEXT
		| FINGERPRINT | NONE | OPPORTUNISTIC | REQUIRED | TLS | VERIFY
		| COMMANDTIMEOUT | CONCURRENCY | CONTROL | DATATIMEOUT
		| DELIVER | DELIVERY | DNS | DOMAIN | ERRORS | FROM | GROUP
		| HOSTCONCURRENCY | HOSTNAME | IDLE | INCLUDE | PROGRAMTIMEOUT
		| LIFETIME | LIMIT | LISTEN | LOG
		| MAILDIR | MAXSIZE | MBOX | MESSAGESIZE | ON | POP3 | PORT
		| POSTMASTER | QMQP | QMTP | QUEUE | RECIPIENTS | REJECT
		| RELAY | REMOTE | RETRYMAX | RETRYMIN | ROUTE | SERVERS | SESSIONS
		| SESSIONSPERIP
		| SMTP | SMTPS | SOCKET | SPOOL | STDERR | SUBMISSION
		| SYSLOG | TABLE | USER | USERS
		| CHECKPASSWORD | PAM | SYSTEM | TIMEOUT
		| BASE | BINDDN | FILTER | LDAP | SEARCHDN | SEARCHPASSWORD
		| STARTTLS | POOL | SENDERCHECK
		| ALIASUSER | ASSIGN | IGNORE | QBREAK | QMAIL | VIRTUALDOMAINS
		;

main		: HOSTNAME STRING		{ conf_hostname($2); }
		| SPOOL STRING {
			conf_path(ps.conf->spool, sizeof(ps.conf->spool),
			    $2, "spool");
		}
		| CONTROL SOCKET STRING optgroup { conf_control($3, $4); }
		| USER STRING {
			conf_user(ps.conf->user, $2, "user");
		}
		| QUEUE USER STRING {
			conf_user(ps.conf->queue_user, $3, "queue user");
		}
		| CHROOT STRING {
			conf_path(ps.conf->empty_dir,
			    sizeof(ps.conf->empty_dir), $2, "chroot");
		}
		| LOG STDERR			{ ps.conf->log_syslog = 0; }
		| LOG SYSLOG			{ ps.conf->log_syslog = 1; }
		| POSTMASTER STRING		{ conf_postmaster($2); }
		| DNS SERVERS STRING		{ conf_dns_servers($3); }
		| TLS CA STRING {
			conf_path(ps.conf->tls_ca, sizeof(ps.conf->tls_ca), $3,
			    "tls ca");
		}
		| LISTEN ON STRING optport optproto {
			ps.ltls = ps.lnpki = 0;
			ps.lauth[0] = '\0';
			ps.lauthplain = ps.lauthreq = 0;
			ps.lclientca[0] = ps.lauthcert[0] = '\0';
			ps.lclientcaf = NULL;
			ps.lsendercheck = 0;
			ps.lsenders[0] = '\0';
		} listenopts {
			conf_listen($3, $4, $5);
		}
		| TABLE tname STRING		{ conf_table_add($2, $3, NULL); }
		| TABLE tname STRING USER STRING {
			conf_table_add($2, $3, $5);
		}
		| RELAY FROM STRING		{ conf_relay($3); }
		| RELAY FROM '{' optnl netlist '}'
		| LIMIT MESSAGESIZE size {
			if (conf_range("limit message-size", $3, 1024,
			    2048ULL * 1024 * 1024) == 0)
				ps.conf->max_message_size = $3;
		}
		| LIMIT RECIPIENTS number {
			if (conf_range("limit recipients", $3, 1, 100000) == 0)
				ps.conf->max_recipients = $3;
		}
		| LIMIT SESSIONS number {
			if (conf_range("limit sessions", $3, 1, 100000) == 0)
				ps.conf->max_sessions = $3;
		}
		| LIMIT SESSIONSPERIP number {
			if (conf_range("limit sessions-per-ip", $3, 1,
			    100000) == 0)
				ps.conf->max_sessions_per_ip = $3;
		}
		| LIMIT AUTHFAILURES number {
			if (conf_range("limit auth-failures", $3, 0,
			    100000) == 0)
				ps.conf->max_auth_failures = $3;
		}
		| LIMIT AUTHWINDOW time {
			if (conf_range("limit auth-window", $3, 1, 86400) == 0)
				ps.conf->auth_fail_window = $3;
		}
		| LIMIT ERRORS number {
			if (conf_range("limit errors", $3, 1, 1000) == 0)
				ps.conf->max_errors = $3;
		}
		| LIMIT COMMANDTIMEOUT time {
			if (conf_range("limit command-timeout", $3, 1,
			    86400) == 0)
				ps.conf->timeout_command = $3;
		}
		| LIMIT DATATIMEOUT time {
			if (conf_range("limit data-timeout", $3, 1, 86400) == 0)
				ps.conf->timeout_data = $3;
		}
		| BARELF REJECT		{ ps.conf->bare_lf_reject = 1; }
		| BARELF ACCEPT		{ ps.conf->bare_lf_reject = 0; }
		| QUEUE LIFETIME time {
			if (conf_range("queue lifetime", $3, 1,
			    365 * 86400) == 0)
				ps.conf->queue_lifetime = $3;
		}
		| QUEUE RETRYMIN time {
			if (conf_range("queue retry-min", $3, 1, 86400) == 0) {
				ps.conf->retry_min = $3;
				conf_retry_loc();
			}
		}
		| QUEUE RETRYMAX time {
			if (conf_range("queue retry-max", $3, 1,
			    7 * 86400) == 0) {
				ps.conf->retry_max = $3;
				conf_retry_loc();
			}
		}
		| BOUNCE ROUTE STRING		{ conf_bounce_route($3); }
		    routeopts			{ ps.dom = NULL; }
		| BOUNCE MAXSIZE size {
			if (conf_range("bounce max-size", $3, 0,
			    16 * 1024 * 1024) == 0)
				ps.conf->bounce_max_size = $3;
		}
		| DELIVERY CONCURRENCY number {
			if (conf_range("delivery concurrency", $3, 1,
			    1000) == 0)
				ps.conf->mda_concurrency = $3;
		}
		| REMOTE CONCURRENCY number {
			if (conf_range("remote concurrency", $3, 1,
			    10000) == 0)
				ps.conf->mta_concurrency = $3;
		}
		| REMOTE HOSTCONCURRENCY number {
			if (conf_range("remote host-concurrency", $3, 1,
			    10000) == 0)
				ps.conf->mta_host_concurrency = $3;
		}
		| RECEIVED AUTH			{ ps.conf->received_auth = 1; }
		| AGENT IDLE time {
			if (conf_range("agent idle", $3, 0, 3600) == 0)
				ps.conf->agent_idle = $3;
		}
		| AGENT PROGRAMTIMEOUT time {
			if (conf_range("agent program-timeout", $3, 1,
			    86400) == 0)
				ps.conf->agent_program_timeout = $3;
		}
		| QMAIL ASSIGN STRING {
			conf_path(ps.conf->qmail_assign,
			    sizeof(ps.conf->qmail_assign), $3, "qmail assign");
		}
		| QMAIL VIRTUALDOMAINS STRING {
			conf_path(ps.conf->qmail_vdoms,
			    sizeof(ps.conf->qmail_vdoms), $3,
			    "qmail virtualdomains");
		}
		| QMAIL QBREAK STRING		{ conf_qmail_break($3); }
		| QMAIL IGNORE ignorelist
		| QMAIL ALIASUSER STRING {
			conf_user(ps.conf->qmail_alias, $3, "qmail alias-user");
		}
		;

ignorelist	: STRING			{ conf_qmail_ignore($1); }
		| ignorelist STRING		{ conf_qmail_ignore($2); }
		;

optgroup	: /* empty */			{ $$ = NULL; }
		| GROUP STRING			{ $$ = $2; }
		;

optport		: /* empty */			{ $$ = 0; }
		| PORT number {
			if (conf_range("port", $2, 1, 65535) == -1)
				YYERROR;
			$$ = $2;
		}
		;

optproto	: /* empty */			{ $$ = LPROTO_SMTP; }
		| proto
		;

proto		: SMTP				{ $$ = LPROTO_SMTP; }
		| SUBMISSION			{ $$ = LPROTO_SUBMISSION; }
		| SMTPS				{ $$ = LPROTO_SMTPS; }
		| QMTP				{ $$ = LPROTO_QMTP; }
		| QMQP				{ $$ = LPROTO_QMQP; }
		| POP3				{ $$ = LPROTO_POP3; }
		;

listenopts	: /* empty */
		| listenopts TLS		{ ps.ltls = 1; }
		| listenopts PKI STRING		{ conf_listen_pki($3); }
		| listenopts AUTH USERS tname	{ conf_listen_auth($4); }
		| listenopts AUTH PLAINTEXT	{ ps.lauthplain = 1; }
		| listenopts AUTH REQUIRED	{ ps.lauthreq = 1; }
		| listenopts AUTH authsrc
		| listenopts TLS CLIENTCA STRING { conf_listen_clientca($4); }
		| listenopts AUTH CERTIFICATE tname {
			conf_listen_authcert($4);
		}
		| listenopts AUTH SENDERCHECK	{ conf_listen_sendercheck(NULL); }
		| listenopts AUTH SENDERCHECK TABLE tname {
			conf_listen_sendercheck($5);
		}
		;

/* A domain's own AUTH backend, for users named user@domain. */
domauth		: USERS tname		{ conf_listen_auth($2); }
		| authsrc
		;

/* AUTH backends other than a users table: see struct authsrc. */
authsrc		: SYSTEM {
			conf_listen_authsrc(AUTHB_SYSTEM, NULL, 0);
		}
		| SYSTEM PAM STRING {
			conf_listen_authsrc(AUTHB_PAM, $3, 0);
		}
		| CHECKPASSWORD STRING {
			conf_listen_authsrc(AUTHB_PROG, $2, AUTH_PROG_TIMEOUT);
		}
		| CHECKPASSWORD STRING TIMEOUT time {
			if (conf_range("auth checkpassword timeout", $4, 1,
			    300) == 0)
				conf_listen_authsrc(AUTHB_PROG, $2, $4);
			else
				conf_listen_authsrc(0, NULL, 0);
		}
		| LDAP STRING			{ conf_ldap_begin($2); }
		    ldapopts			{ conf_ldap_end(); }
		;

/*
 * auth ldap "URL" bind-dn "DN" | base "DN" filter "F" [search-dn "DN"
 * search-password "PW"], [starttls] [ca "FILE"] [timeout TIME] [pool N].  "ca",
 * not "tls ca": "tls" after the options is the listener's STARTTLS.
 */
ldapopts	: /* empty */
		| ldapopts BINDDN STRING	{ conf_ldap_opt(BINDDN, $3); }
		| ldapopts BASE STRING		{ conf_ldap_opt(BASE, $3); }
		| ldapopts FILTER STRING	{ conf_ldap_opt(FILTER, $3); }
		| ldapopts SEARCHDN STRING	{ conf_ldap_opt(SEARCHDN, $3); }
		| ldapopts SEARCHPASSWORD STRING {
			conf_ldap_opt(SEARCHPASSWORD, $3);
		}
		| ldapopts STARTTLS		{ conf_ldap_opt(STARTTLS, NULL); }
		| ldapopts CA STRING		{ conf_ldap_opt(CA, $3); }
		| ldapopts TIMEOUT time {
			if (conf_range("auth ldap timeout", $3, 1, 300) == 0)
				ps_ldap_timeout = $3;
			else
				ps_ldap_bad = 1;
		}
		| ldapopts POOL number {
			if (ps_ldap.pool != 0) {
				conf_error("auth ldap: pool twice");
				ps_ldap_bad = 1;
			} else if (conf_range("auth ldap pool", $3, 1,
			    AUTH_LDAP_POOL_MAX) == 0)
				ps_ldap.pool = $3;
			else
				ps_ldap_bad = 1;
		}
		;

/* pki "name" { certificate "file" key "file" [chain "file"] } */
pki		: PKI STRING			{ conf_pki_begin($2); }
		    optnl '{' optnl pkiopts '}'	{ conf_pki_end(); }
		;

pkiopts		: /* empty */
		| pkiopts pkiopt optnl
		| pkiopts error '\n'		{ yyerrok; }
		;

pkiopt		: CERTIFICATE STRING		{ conf_pki_file($2, 0); }
		| KEY STRING			{ conf_pki_file($2, 1); }
		| CHAIN STRING			{ conf_pki_file($2, 2); }
		;

/* TLS settings of the listeners ("tls ca" is the mta's, above). */
tlsopt		: TLS PROTOCOLS STRING		{ conf_tls_protocols($3); }
		| TLS CIPHERS STRING		{ conf_tls_ciphers($3); }
		;

netlist		: net optnl
		| netlist ',' optnl net optnl
		;

net		: STRING			{ conf_relay($1); }
		;

domain		: DOMAIN STRING		{ conf_domain_begin($2); }
		    optnl '{' optnl domopts '}'	{ conf_domain_end(); }
		;

domopts		: /* empty */
		| domopts domopt optnl
		| domopts error '\n'		{ yyerrok; }
		;

routeopts	: /* empty */
		| routeopts SMTPS {
			if (ps.dom != NULL)
				ps.dom->route_smtps = 1;
		}
		| routeopts AUTH STRING STRING	{ conf_route_auth($3, $4); }
		| routeopts AUTH STRING STRING PLAINTEXT {
			conf_route_auth($3, $4);
			if (ps.dom != NULL)
				ps.dom->auth_plaintext = 1;
		}
		;

domopt		: AUTH			{ conf_domain_auth(1); }
		    domauth		{ conf_domain_auth(0); }
		| DELIVER MAILDIR STRING {
			conf_deliver(MBOX_MAILDIR, $3);
		}
		| DELIVER MBOX STRING	{ conf_deliver(MBOX_MBOX, $3); }
		| ROUTE STRING		{ conf_route($2); } routeopts
		| LIFETIME time {
			if (ps.dom != NULL && conf_range("lifetime", $2, 1,
			    365 * 86400) == 0)
				ps.dom->lifetime = $2;
		}
		| TLS NONE		{ conf_tls(TLSP_NONE, NULL); }
		| TLS OPPORTUNISTIC	{ conf_tls(TLSP_OPPORTUNISTIC, NULL); }
		| TLS REQUIRED		{ conf_tls(TLSP_REQUIRED, NULL); }
		| TLS VERIFY		{ conf_tls(TLSP_VERIFY, NULL); }
		| TLS FINGERPRINT STRING { conf_tls(TLSP_FINGERPRINT, $3); }
		| USER STRING {
			if (ps.dom != NULL)
				conf_user(ps.dom->user, $2, "user");
		}
		| USERS tname {
			if (ps.dom != NULL)
				ps.dom->users = conf_table_ref($2);
		}
		| ALIASES tname {
			if (ps.dom != NULL)
				ps.dom->aliases = conf_table_ref($2);
		}
		| RECIPIENTS tname {
			if (ps.dom != NULL)
				ps.dom->recipients = conf_table_ref($2);
		}
		;

%%

/* Sorted for bsearch. */
static const struct conf_keyword {
	const char	*name;
	int		 token;
} conf_keywords[] = {
	{ "accept",		ACCEPT },
	{ "agent",		AGENT },
	{ "alias-user",		ALIASUSER },
	{ "aliases",		ALIASES },
	{ "assign",		ASSIGN },
	{ "auth",		AUTH },
	{ "auth-failures",	AUTHFAILURES },
	{ "auth-window",	AUTHWINDOW },
	{ "bare-lf",		BARELF },
	{ "base",		BASE },
	{ "bind-dn",		BINDDN },
	{ "bounce",		BOUNCE },
	{ "break",		QBREAK },
	{ "ca",			CA },
	{ "certificate",	CERTIFICATE },
	{ "chain",		CHAIN },
	{ "checkpassword",	CHECKPASSWORD },
	{ "chroot",		CHROOT },
	{ "ciphers",		CIPHERS },
	{ "client-ca",		CLIENTCA },
	{ "command-timeout",	COMMANDTIMEOUT },
	{ "concurrency",	CONCURRENCY },
	{ "control",		CONTROL },
	{ "data-timeout",	DATATIMEOUT },
	{ "deliver",		DELIVER },
	{ "delivery",		DELIVERY },
	{ "dns",		DNS },
	{ "domain",		DOMAIN },
	{ "errors",		ERRORS },
	{ "filter",		FILTER },
	{ "fingerprint",	FINGERPRINT },
	{ "from",		FROM },
	{ "group",		GROUP },
	{ "host-concurrency",	HOSTCONCURRENCY },
	{ "hostname",		HOSTNAME },
	{ "idle",		IDLE },
	{ "ignore",		IGNORE },
	{ "include",		INCLUDE },
	{ "key",		KEY },
	{ "ldap",		LDAP },
	{ "lifetime",		LIFETIME },
	{ "limit",		LIMIT },
	{ "listen",		LISTEN },
	{ "log",		LOG },
	{ "maildir",		MAILDIR },
	{ "max-size",		MAXSIZE },
	{ "mbox",		MBOX },
	{ "message-size",	MESSAGESIZE },
	{ "none",		NONE },
	{ "on",			ON },
	{ "opportunistic",	OPPORTUNISTIC },
	{ "pam",		PAM },
	{ "pki",		PKI },
	{ "plaintext",		PLAINTEXT },
	{ "pool",		POOL },
	{ "pop3",		POP3 },
	{ "port",		PORT },
	{ "postmaster",		POSTMASTER },
	{ "program-timeout",	PROGRAMTIMEOUT },
	{ "protocols",		PROTOCOLS },
	{ "qmail",		QMAIL },
	{ "qmqp",		QMQP },
	{ "qmtp",		QMTP },
	{ "queue",		QUEUE },
	{ "received",		RECEIVED },
	{ "recipients",		RECIPIENTS },
	{ "reject",		REJECT },
	{ "relay",		RELAY },
	{ "remote",		REMOTE },
	{ "required",		REQUIRED },
	{ "retry-max",		RETRYMAX },
	{ "retry-min",		RETRYMIN },
	{ "route",		ROUTE },
	{ "search-dn",		SEARCHDN },
	{ "search-password",	SEARCHPASSWORD },
	{ "sender-check",	SENDERCHECK },
	{ "servers",		SERVERS },
	{ "sessions",		SESSIONS },
	{ "sessions-per-ip",	SESSIONSPERIP },
	{ "smtp",		SMTP },
	{ "smtps",		SMTPS },
	{ "socket",		SOCKET },
	{ "spool",		SPOOL },
	{ "starttls",		STARTTLS },
	{ "stderr",		STDERR },
	{ "submission",		SUBMISSION },
	{ "syslog",		SYSLOG },
	{ "system",		SYSTEM },
	{ "table",		TABLE },
	{ "timeout",		TIMEOUT },
	{ "tls",		TLS },
	{ "user",		USER },
	{ "users",		USERS },
	{ "verify",		VERIFY },
	{ "virtualdomains",	VIRTUALDOMAINS },
};

void	(*config_error_hook)(const char *);

static int
conf_kwcmp(const void *k, const void *e)
{
	return strcmp(k, ((const struct conf_keyword *)e)->name);
}

static void
conf_report(const char *line)
{
	if (config_error_hook != NULL)
		config_error_hook(line);
	else
		log_warnx("%s", line);
}

/* Report "file:line: what" (or just "what" before any file is open). */
static void
conf_verror_at(const char *name, int lineno, const char *fmt, va_list ap)
{
	char	 msg[1024], line[1400];

	if (ps.stop)
		return;
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	if (name == NULL)
		(void)snprintf(line, sizeof(line), "%s", msg);
	else
		(void)snprintf(line, sizeof(line), "%s:%d: %s", name, lineno,
		    msg);
	conf_report(line);
	ps.errname = name;
	ps.errline = lineno;
	if (++ps.errors >= CONF_MAX_ERRORS) {
		if (name != NULL)
			(void)snprintf(line, sizeof(line), "%s:%d: too many "
			    "errors, giving up", name, lineno);
		else
			(void)snprintf(line, sizeof(line), "too many errors, "
			    "giving up");
		conf_report(line);
		ps.stop = 1;
	}
}

static void
conf_error_at(const char *name, int lineno, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	conf_verror_at(name, lineno, fmt, ap);
	va_end(ap);
}

/* An error at the place being read. */
static void
conf_error(const char *fmt, ...)
{
	struct conf_src	*s = &ps.src[ps.depth];
	va_list		 ap;

	va_start(ap, fmt);
	conf_verror_at(s->name, s->lineno, fmt, ap);
	va_end(ap);
}

/* A second message for a line that already has one says nothing new. */
static void
yyerror(const char *msg)
{
	struct conf_src	*s = &ps.src[ps.depth];

	if (ps.errname == s->name && ps.errline == s->lineno)
		return;
	conf_error("%s", msg);
}

/* Token text lives until the parse ends; no token is freed on its own. */
static char *
conf_token(const char *text, size_t len)
{
	struct conf_arena	*a = ps.arena;
	char			*p;
	size_t			 sz;

	if (a == NULL || a->size - a->used < len + 1) {
		sz = len + 1 > CONF_ARENA ? len + 1 : CONF_ARENA;
		if ((a = malloc(sizeof(*a) + sz)) == NULL)
			return NULL;
		a->size = sz;
		a->used = 0;
		a->next = ps.arena;
		ps.arena = a;
	}
	p = a->buf + a->used;
	memcpy(p, text, len);
	p[len] = '\0';
	a->used += len + 1;
	return p;
}

static int
conf_getc(struct conf_src *s)
{
	if (s->pos >= s->len)
		return EOF;
	return s->data[s->pos++];
}

static int
conf_peekc(struct conf_src *s)
{
	if (s->pos >= s->len)
		return EOF;
	return s->data[s->pos];
}

static int
conf_wordchar(int c)
{
	return c > 0 && isascii(c) && (isalnum(c) ||
	    strchr("_.:/@%*+-", c) != NULL);
}

static int
conf_macrochar(int c)
{
	return isascii(c) && (isalnum(c) || c == '_');
}

static struct conf_macro *
conf_macro_find(const char *name)
{
	struct conf_macro	*m;

	TAILQ_FOREACH(m, &ps.macros, entry)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

/* After an error inside a string: skip to its end, or to the line's. */
static int
conf_string_skip(struct conf_src *s)
{
	int	 c;

	while ((c = conf_peekc(s)) != EOF && c != '\n') {
		s->pos++;
		if (c == '"')
			break;
		if (c == '\\' && (conf_peekc(s) == '"' ||
		    conf_peekc(s) == '\\'))
			s->pos++;
	}
	return ERROR;
}

static int
conf_lex_string(struct conf_src *s)
{
	char	 buf[CONF_TOKEN_MAX];
	size_t	 n = 0;
	int	 c;

	for (;;) {
		c = conf_getc(s);
		if (c == EOF || c == '\n') {
			if (c == '\n')
				s->pos--;
			conf_error("unterminated string");
			return ERROR;
		}
		if (c == '"')
			break;
		if (c == '\\') {
			c = conf_getc(s);
			if (c != '"' && c != '\\') {
				if (c == '\n')
					s->pos--;
				conf_error("bad escape in string (only \\\" "
				    "and \\\\)");
				return conf_string_skip(s);
			}
		} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
			conf_error("control character in string");
			return conf_string_skip(s);
		}
		if (n >= sizeof(buf) - 1) {
			conf_error("string too long");
			return conf_string_skip(s);
		}
		buf[n++] = c;
	}
	if ((yylval.v.string = conf_token(buf, n)) == NULL) {
		conf_error("out of memory");
		return ERROR;
	}
	return STRING;
}

static int
conf_lex_macro(struct conf_src *s)
{
	struct conf_macro	*m;
	char			 name[CONF_TOKEN_MAX];
	size_t			 n = 0;

	while (conf_macrochar(conf_peekc(s))) {
		if (n >= sizeof(name) - 1) {
			conf_error("macro name too long");
			return ERROR;
		}
		name[n++] = conf_getc(s);
	}
	name[n] = '\0';
	if (n == 0) {
		conf_error("'$' without a macro name");
		return ERROR;
	}
	if ((m = conf_macro_find(name)) == NULL) {
		conf_error("undefined macro \"$%s\"", name);
		return ERROR;
	}
	yylval.v.string = m->value;
	return STRING;
}

static int
conf_lex_word(struct conf_src *s, int c)
{
	const struct conf_keyword	*kw;
	char				 buf[CONF_TOKEN_MAX];
	size_t				 n = 0;

	buf[n++] = c;
	while (conf_wordchar(conf_peekc(s))) {
		if (n >= sizeof(buf) - 1) {
			conf_error("word too long");
			while (conf_wordchar(conf_peekc(s)))
				s->pos++;
			return ERROR;
		}
		buf[n++] = conf_getc(s);
	}
	buf[n] = '\0';
	kw = bsearch(buf, conf_keywords, sizeof(conf_keywords) /
	    sizeof(conf_keywords[0]), sizeof(conf_keywords[0]), conf_kwcmp);
	if (kw != NULL) {
		yylval.v.kw = kw->name;
		return kw->token;
	}
	if ((yylval.v.string = conf_token(buf, n)) == NULL) {
		conf_error("out of memory");
		return ERROR;
	}
	return STRING;
}

static int
conf_lex(void)
{
	struct conf_src	*s;
	int		 c;

 again:
	if (ps.stop)
		return 0;
	s = &ps.src[ps.depth];
	if (s->synthnl) {
		s->synthnl = 0;
		return '\n';
	}
	if (s->nlpending) {
		s->nlpending = 0;
		s->lineno++;
	}
	do {
		c = conf_getc(s);
	} while (c == ' ' || c == '\t' || c == '\r');
	if (c == '#') {
		while ((c = conf_peekc(s)) != EOF && c != '\n')
			s->pos++;
		c = conf_getc(s);
	}
	if (c == EOF) {
		if (!s->lastnl) {
			/* A last line without its newline still ends. */
			s->lastnl = 1;
			return '\n';
		}
		if (ps.depth == 0)
			return 0;
		ps.depth--;
		goto again;
	}
	if (c == '\n') {
		s->nlpending = 1;
		return '\n';
	}
	if (c == '"')
		return conf_lex_string(s);
	if (c == '$')
		return conf_lex_macro(s);
	if (c == '{' || c == '}' || c == ',' || c == '=')
		return c;
	if (conf_wordchar(c))
		return conf_lex_word(s, c);
	if (isprint(c))
		conf_error("unexpected character '%c'", c);
	else
		conf_error("unexpected character 0x%02x", c);
	return ERROR;
}

static int
yylex(void)
{
	int	 t;

	t = conf_lex();
	if (!ps.stop)
		ps.src[ps.depth].lastnl = (t == '\n');
	return t;
}

/* Resolve a relative path against base ("" or "x/"). */
static int
conf_join(char *dst, size_t size, const char *base, const char *path)
{
	size_t	 blen;

	while (path[0] == '.' && path[1] == '/') {
		path += 2;
		while (*path == '/')
			path++;
	}
	if (path[0] == '/' || base == NULL || base[0] == '\0') {
		if (strlcpy(dst, path, size) >= size)
			return -1;
		return 0;
	}
	blen = strlen(base);
	if (snprintf(dst, size, "%s%s%s", base,
	    base[blen - 1] == '/' ? "" : "/", path) >= (int)size)
		return -1;
	return 0;
}

static struct conf_file *
conf_file_find(struct conf_filelist *list, const char *name)
{
	struct conf_file	*f;

	if (list == NULL)
		return NULL;
	TAILQ_FOREACH(f, list, entry)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

/* Read a file from disk into the loaded list; NULL after an error. */
static struct conf_file *
conf_file_read(const char *name, struct stat *st)
{
	struct conf_file	*f;
	struct conf_filelist	*list;
	char			 path[PATH_MAX];
	char			*buf = NULL, *nbuf;
	size_t			 len = 0, size = 0, room;
	ssize_t			 r;
	int			 fd;

	list = ps.loaded != NULL ? ps.loaded : &ps.own;
	if (conf_join(path, sizeof(path), ps.basedir, name) == -1) {
		conf_error("%s: path too long", name);
		return NULL;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		conf_error("%s: %s", name, strerror(errno));
		return NULL;
	}
	if (fstat(fd, st) == -1) {
		conf_error("%s: %s", name, strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st->st_mode)) {
		conf_error("%s: not a regular file", name);
		close(fd);
		return NULL;
	}
	if ((f = conf_file_find(list, name)) != NULL) {
		close(fd);
		return f;
	}
	room = CONF_MAX_TOTAL - ps.total;
	for (;;) {
		if (len == size) {
			if (size > room) {
				conf_error("%s: configuration larger than "
				    "%d octets", name, CONF_MAX_TOTAL);
				goto fail;
			}
			size = size == 0 ? 8192 : size * 2;
			if ((nbuf = realloc(buf, size + 1)) == NULL) {
				conf_error("%s: %s", name, strerror(errno));
				goto fail;
			}
			buf = nbuf;
		}
		r = read(fd, buf + len, size - len);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			conf_error("%s: %s", name, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += r;
	}
	close(fd);
	if (len > room) {
		conf_error("%s: configuration larger than %d octets", name,
		    CONF_MAX_TOTAL);
		free(buf);
		return NULL;
	}
	if (ps.nfiles >= CONF_MAX_FILES) {
		conf_error("%s: more than %d files", name, CONF_MAX_FILES);
		free(buf);
		return NULL;
	}
	f = conf_file_add(list, name, buf, len);
	free(buf);
	if (f == NULL) {
		conf_error("%s: %s", name, strerror(errno));
		return NULL;
	}
	ps.total += len;
	ps.nfiles++;
	return f;
 fail:
	close(fd);
	free(buf);
	return NULL;
}

/* Make name the file being read; -1 after an error. */
static int
conf_push(const char *name)
{
	struct conf_file	*f;
	struct conf_src		*s;
	struct stat		 st;
	int			 i, hasid = 0;

	if (ps.files != NULL) {
		if ((f = conf_file_find(ps.files, name)) == NULL) {
			conf_error("%s: not in the configuration sent",
			    name);
			return -1;
		}
	} else {
		memset(&st, 0, sizeof(st));
		if ((f = conf_file_read(name, &st)) == NULL)
			return -1;
		hasid = 1;
	}
	for (i = 0; i <= ps.depth && ps.src[0].name != NULL; i++) {
		s = &ps.src[i];
		if (strcmp(s->name, f->name) == 0 || (hasid && s->hasid &&
		    s->dev == st.st_dev && s->ino == st.st_ino)) {
			conf_error("include loop: %s", name);
			return -1;
		}
	}
	if (ps.src[0].name != NULL)
		ps.depth++;
	s = &ps.src[ps.depth];
	memset(s, 0, sizeof(*s));
	s->name = f->name;
	s->data = (const unsigned char *)f->data;
	s->len = f->len;
	s->lineno = 1;
	s->lastnl = 1;
	s->hasid = hasid;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return 0;
}

static void
conf_include(const char *path)
{
	struct conf_src	*s = &ps.src[ps.depth];
	char		 dir[PATH_MAX], name[PATH_MAX];
	char		*slash;

	if (path[0] == '\0') {
		conf_error("include: empty path");
		return;
	}
	if (ps.depth >= CONF_MAX_INCLUDE) {
		conf_error("include: nested more than %d deep",
		    CONF_MAX_INCLUDE);
		return;
	}
	/* Relative to the directory of the including file. */
	(void)strlcpy(dir, s->name, sizeof(dir));
	if ((slash = strrchr(dir, '/')) != NULL)
		slash[1] = '\0';
	else
		dir[0] = '\0';
	if (conf_join(name, sizeof(name), dir, path) == -1) {
		conf_error("include: path too long");
		return;
	}
	if (conf_push(name) == 0)
		ps.src[ps.depth].synthnl = 1;
}

static void
conf_macro_set(const char *name, const char *value)
{
	struct conf_macro	*m;
	const char		*p;

	if (!isalpha((unsigned char)name[0]) && name[0] != '_') {
		conf_error("bad macro name \"%s\"", name);
		return;
	}
	for (p = name; *p != '\0'; p++)
		if (!conf_macrochar((unsigned char)*p)) {
			conf_error("bad macro name \"%s\"", name);
			return;
		}
	if ((m = conf_macro_find(name)) != NULL) {
		/* value may be m->value itself ("a = $a") */
		if ((p = strdup(value)) == NULL)
			fatal("%s", __func__);
		free(m->value);
		m->value = (char *)p;
		return;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->name = strdup(name)) == NULL ||
	    (m->value = strdup(value)) == NULL)
		fatal("%s", __func__);
	TAILQ_INSERT_TAIL(&ps.macros, m, entry);
}

/* Digits with a unit suffix as kind allows; -1 (reported) when bad. */
static int
conf_number(const char *what, const char *s, int kind, uint64_t *res)
{
	static const char	 sizeunit[] = "KMG", timeunit[] = "smhd";
	static const uint64_t	 sizemult[] = { 1024, 1024 * 1024,
				    1024 * 1024 * 1024 };
	static const uint64_t	 timemult[] = { 1, 60, 3600, 86400 };
	const char		*units, *u;
	const uint64_t		*mults;
	uint64_t		 v = 0, mult = 1;
	const char		*p;

	units = kind == NUM_SIZE ? sizeunit : kind == NUM_TIME ? timeunit : "";
	mults = kind == NUM_SIZE ? sizemult : timemult;
	for (p = s; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10) {
			conf_error("%s \"%s\" is too large", what, s);
			return -1;
		}
		v = v * 10 + (*p - '0');
	}
	if (p == s)
		goto bad;
	if (*p != '\0') {
		if (p[1] != '\0' || (u = strchr(units, *p)) == NULL)
			goto bad;
		mult = mults[u - units];
		if (v > UINT64_MAX / mult) {
			conf_error("%s \"%s\" is too large", what, s);
			return -1;
		}
		v *= mult;
	}
	*res = v;
	return 0;
 bad:
	if (kind == NUM_SIZE)
		conf_error("bad size \"%s\" (a number, optionally followed by "
		    "K, M or G)", s);
	else if (kind == NUM_TIME)
		conf_error("bad time \"%s\" (a number, optionally followed by "
		    "s, m, h or d)", s);
	else
		conf_error("bad number \"%s\"", s);
	return -1;
}

static int
conf_range(const char *what, uint64_t v, uint64_t min, uint64_t max)
{
	if (v < min || v > max) {
		conf_error("%s %llu is out of range (%llu to %llu)", what,
		    (unsigned long long)v, (unsigned long long)min,
		    (unsigned long long)max);
		return -1;
	}
	return 0;
}

static void
conf_string(char *dst, size_t size, const char *s, const char *what)
{
	if (s[0] == '\0') {
		conf_error("%s: empty", what);
		return;
	}
	if (strlcpy(dst, s, size) >= size)
		conf_error("%s: \"%.40s...\" is too long (%zu octets at most)",
		    what, s, size - 1);
}

/* An absolute path, or one made absolute against the base directory. */
static void
conf_path(char *dst, size_t size, const char *s, const char *what)
{
	if (s[0] == '\0') {
		conf_error("%s: empty path", what);
		return;
	}
	if (conf_join(dst, size, ps.basedir, s) == -1)
		conf_error("%s: path too long", what);
}

/* Letters, digits, '-', '_' and '.', in non-empty labels. */
static int
conf_domain_valid(const char *s)
{
	const char	*p;
	size_t		 label = 0;

	if (strlen(s) > SQ_DOMAIN_MAX)
		return 0;
	for (p = s; *p != '\0'; p++) {
		if (*p == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!isascii((unsigned char)*p) ||
		    (!isalnum((unsigned char)*p) && *p != '-' && *p != '_'))
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0;
}

static void
conf_hostname(const char *s)
{
	if (!conf_domain_valid(s)) {
		conf_error("hostname: \"%s\" is not a host name", s);
		return;
	}
	(void)strlcpy(ps.conf->hostname, s, sizeof(ps.conf->hostname));
}

/* A user or group name: printable, no spaces or ':'. */
static int
conf_name_valid(const char *s)
{
	const char	*p;

	if (s[0] == '\0' || s[0] == '-')
		return 0;
	for (p = s; *p != '\0'; p++)
		if (!isascii((unsigned char)*p) ||
		    !isgraph((unsigned char)*p) || *p == ':')
			return 0;
	return 1;
}

static void
conf_user(char *dst, const char *s, const char *what)
{
	if (!conf_name_valid(s)) {
		conf_error("%s: \"%s\" is not a user name", what, s);
		return;
	}
	conf_string(dst, SQ_USER_MAX + 1, s, what);
}

static void
conf_control(const char *path, const char *group)
{
	struct sockaddr_un	 sun;
	char			 buf[PATH_MAX];

	buf[0] = '\0';
	conf_path(buf, sizeof(buf), path, "control socket");
	if (buf[0] != '\0') {
		if (strlen(buf) >= sizeof(sun.sun_path))
			conf_error("control socket: \"%s\" is longer than a "
			    "socket path may be (%zu octets)", buf,
			    sizeof(sun.sun_path) - 1);
		else
			(void)strlcpy(ps.conf->control_socket, buf,
			    sizeof(ps.conf->control_socket));
	}
	if (group == NULL)
		return;
	if (!conf_name_valid(group)) {
		conf_error("control socket: \"%s\" is not a group name",
		    group);
		return;
	}
	conf_string(ps.conf->control_group, sizeof(ps.conf->control_group),
	    group, "control socket group");
}

static void
conf_postmaster(const char *s)
{
	const char	*at;
	const char	*p;

	for (p = s; *p != '\0'; p++)
		if (!isascii((unsigned char)*p) ||
		    !isgraph((unsigned char)*p) || *p == '<' || *p == '>') {
			conf_error("postmaster: \"%s\" is not an address", s);
			return;
		}
	at = strrchr(s, '@');
	if (s[0] == '\0' || at == s || (at != NULL &&
	    !conf_domain_valid(at + 1))) {
		conf_error("postmaster: \"%s\" is not an address", s);
		return;
	}
	conf_string(ps.conf->postmaster, sizeof(ps.conf->postmaster), s,
	    "postmaster");
}

static void
conf_listen_one(int af, const void *addr, uint64_t port, int proto)
{
	struct listener		*l, *o;
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	char			 text[INET6_ADDRSTRLEN];

	if ((l = calloc(1, sizeof(*l))) == NULL)
		fatal("%s", __func__);
	l->fd = -1;
	l->proto = proto;
	l->tls = ps.ltls;
	l->npki = ps.lnpki;
	memcpy(l->pki, ps.lpki, sizeof(l->pki));
	(void)strlcpy(l->auth_table, ps.lauth, sizeof(l->auth_table));
	l->auth_plaintext = ps.lauthplain;
	l->auth_required = ps.lauthreq;
	(void)strlcpy(l->client_ca_path, ps.lclientca,
	    sizeof(l->client_ca_path));
	(void)strlcpy(l->auth_cert, ps.lauthcert, sizeof(l->auth_cert));
	l->auth_sender_check = ps.lsendercheck;
	(void)strlcpy(l->auth_senders, ps.lsenders, sizeof(l->auth_senders));
	if (ps.lclientcaf != NULL) {
		if ((l->client_ca = malloc(ps.lclientcaf->len + 1)) == NULL)
			fatal("%s", __func__);
		memcpy(l->client_ca, ps.lclientcaf->data, ps.lclientcaf->len);
		l->client_ca[ps.lclientcaf->len] = '\0';
		l->client_ca_len = ps.lclientcaf->len;
	}
	(void)snprintf(l->where, sizeof(l->where), "%s:%d",
	    ps.src[ps.depth].name, ps.src[ps.depth].lineno);
	if (af == AF_INET) {
		sin = (struct sockaddr_in *)&l->ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, addr, sizeof(sin->sin_addr));
		l->sslen = sizeof(*sin);
		(void)inet_ntop(af, addr, text, sizeof(text));
		(void)snprintf(l->name, sizeof(l->name), "%s:%u", text,
		    (unsigned)port);
	} else {
		sin6 = (struct sockaddr_in6 *)&l->ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, addr, sizeof(sin6->sin6_addr));
		l->sslen = sizeof(*sin6);
		(void)inet_ntop(af, addr, text, sizeof(text));
		(void)snprintf(l->name, sizeof(l->name), "[%s]:%u", text,
		    (unsigned)port);
	}
	TAILQ_FOREACH(o, &ps.conf->listeners, entry)
		if (strcmp(o->name, l->name) == 0) {
			conf_error("listen on %s: already listening there",
			    l->name);
			free(l->client_ca);
			free(l);
			return;
		}
	TAILQ_INSERT_TAIL(&ps.conf->listeners, l, entry);
}

/*
 * Client certificates on a listen line: a client CA and a mapping table
 * go together, on smtp, submission and smtps listeners; the client CA
 * turns STARTTLS on where smtps is not TLS already.  -1 (reported) when
 * they do not fit.
 */
static int
conf_listen_certopts(const char *addr, int proto)
{
	if (ps.lclientca[0] == '\0' && ps.lauthcert[0] == '\0')
		return 0;
	if (proto != LPROTO_SMTP && proto != LPROTO_SUBMISSION &&
	    proto != LPROTO_SMTPS) {
		conf_error("listen on %s: client certificates are for smtp, "
		    "submission and smtps listeners", addr);
		return -1;
	}
	if (ps.lclientca[0] == '\0' || ps.lauthcert[0] == '\0') {
		conf_error("listen on %s: tls client-ca and auth certificate "
		    "go together (the CA verifies, the table maps)", addr);
		return -1;
	}
	if (proto != LPROTO_SMTPS)
		ps.ltls = 1;
	return 0;
}

/* The TLS options of a listen line: -1 (reported) when they do not fit. */
static int
conf_listen_tls(const char *addr, int proto)
{
	if ((ps.ltls || ps.lnpki > 0) && proto != LPROTO_SMTP &&
	    proto != LPROTO_SUBMISSION && proto != LPROTO_SMTPS) {
		conf_error("listen on %s: tls and pki are for smtp, submission "
		    "and smtps listeners", addr);
		return -1;
	}
	if (ps.ltls && proto == LPROTO_SMTPS) {
		conf_error("listen on %s: smtps is TLS from the first octet; "
		    "tls (STARTTLS) does not apply", addr);
		return -1;
	}
	if (!ps.ltls && proto != LPROTO_SMTPS) {
		if (ps.lnpki > 0) {
			conf_error("listen on %s: pki without tls or smtps",
			    addr);
			return -1;
		}
		return 0;
	}
	if (TAILQ_EMPTY(&ps.conf->pkis)) {
		conf_error("listen on %s: TLS needs a pki block (define pki "
		    "blocks before the listeners that use them)", addr);
		return -1;
	}
	return 0;
}

/* The AUTH options of a listen line: -1 (reported) when they do not fit. */
static int
conf_listen_authopts(const char *addr, int proto)
{
	if (ps.lsendercheck && ps.lauth[0] == '\0' && ps.lauthcert[0] == '\0') {
		conf_error("listen on %s: auth sender-check needs a way to "
		    "authenticate (an auth backend or auth certificate)", addr);
		return -1;
	}
	if (ps.lauth[0] == '\0') {
		if (ps.lauthplain || ps.lauthreq) {
			conf_error("listen on %s: auth plaintext and auth "
			    "required need a backend (auth users, auth system "
			    "or auth checkpassword)", addr);
			return -1;
		}
		return 0;
	}
	if (proto != LPROTO_SMTP && proto != LPROTO_SUBMISSION &&
	    proto != LPROTO_SMTPS) {
		conf_error("listen on %s: auth is for smtp, submission and "
		    "smtps listeners", addr);
		return -1;
	}
	/* Without TLS, AUTH could never be offered: say so now. */
	if (!ps.ltls && proto != LPROTO_SMTPS && !ps.lauthplain) {
		conf_error("listen on %s: auth without tls or smtps is never "
		    "offered (add tls, or auth plaintext)", addr);
		return -1;
	}
	return 0;
}

static void
conf_listen(const char *addr, uint64_t port, int proto)
{
	static const uint16_t	 ports[] = {
		[LPROTO_SMTP] = 25, [LPROTO_SUBMISSION] = 587,
		[LPROTO_SMTPS] = 465, [LPROTO_QMTP] = 209,
		[LPROTO_QMQP] = 628, [LPROTO_POP3] = 110
	};
	struct in_addr		 in;
	struct in6_addr		 in6;

	if (port == 0)
		port = ports[proto];
	if (conf_listen_certopts(addr, proto) == -1)
		return;
	if (conf_listen_tls(addr, proto) == -1)
		return;
	if (conf_listen_authopts(addr, proto) == -1)
		return;
	if (strcmp(addr, "localhost") == 0) {
		in.s_addr = htonl(INADDR_LOOPBACK);
		conf_listen_one(AF_INET, &in, port, proto);
		conf_listen_one(AF_INET6, &in6addr_loopback, port, proto);
	} else if (strcmp(addr, "*") == 0 || strcmp(addr, "any") == 0) {
		in.s_addr = htonl(INADDR_ANY);
		conf_listen_one(AF_INET, &in, port, proto);
		conf_listen_one(AF_INET6, &in6addr_any, port, proto);
	} else if (inet_pton(AF_INET, addr, &in) == 1)
		conf_listen_one(AF_INET, &in, port, proto);
	else if (inet_pton(AF_INET6, addr, &in6) == 1)
		conf_listen_one(AF_INET6, &in6, port, proto);
	else
		conf_error("listen on \"%s\": not an IPv4 or IPv6 address, "
		    "\"localhost\", \"*\" or \"any\"", addr);
}

static int
conf_tname_valid(const char *s)
{
	const char	*p;

	if (s[0] == '\0')
		return 0;
	for (p = s; *p != '\0'; p++)
		if (!isascii((unsigned char)*p) || (!isalnum((unsigned char)*p)
		    && *p != '_' && *p != '-' && *p != '.'))
			return 0;
	return 1;
}

/*
 * table NAME file:PATH | cdb:PATH | aliases:PATH [user USER]; an aliases
 * table reads PATH.cdb, which newaliases compiles from PATH.
 */
static void
conf_table_add(const char *name, const char *spec, const char *user)
{
	struct table	*t;
	const char	*path;
	enum table_type	 type;

	if (!conf_tname_valid(name) || strlen(name) >= sizeof(t->name)) {
		conf_error("table \"%s\": bad name", name);
		return;
	}
	if (config_table(ps.conf, name) != NULL) {
		conf_error("table \"%s\" is already defined", name);
		return;
	}
	if (strncmp(spec, "file:", 5) == 0) {
		type = TABLE_FILE;
		path = spec + 5;
	} else if (strncmp(spec, "cdb:", 4) == 0) {
		type = TABLE_CDB;
		path = spec + 4;
	} else if (strncmp(spec, "aliases:", 8) == 0) {
		type = TABLE_ALIASES;
		path = spec + 8;
	} else {
		conf_error("table \"%s\": \"%s\" is not file:PATH, cdb:PATH "
		    "or aliases:PATH", name, spec);
		return;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		fatal("%s", __func__);
	(void)strlcpy(t->name, name, sizeof(t->name));
	t->type = type;
	conf_path(t->path, sizeof(t->path), path, "table");
	if (type == TABLE_ALIASES && strlen(t->path) + 4 >= sizeof(t->path))
		conf_error("table \"%s\": path too long", name);
	if (user != NULL)
		conf_user(t->user, user, "table user");
	TAILQ_INSERT_TAIL(&ps.conf->tables, t, entry);
}

static struct table *
conf_table_ref(const char *name)
{
	struct table	*t;

	if ((t = config_table(ps.conf, name)) == NULL)
		conf_error("table \"%s\" is not defined (define tables before "
		    "the domains that use them)", name);
	return t;
}

#define CONF_MAX_RELAY	65536

static void
conf_relay(const char *s)
{
	struct netaddr	 na, *n;

	if (netaddr_parse(s, &na) == -1) {
		conf_error("relay from \"%s\": not an address or "
		    "address/prefix", s);
		return;
	}
	if (ps.conf->nrelay >= CONF_MAX_RELAY) {
		conf_error("relay from: more than %d networks", CONF_MAX_RELAY);
		return;
	}
	n = reallocarray(ps.conf->relay_from, ps.conf->nrelay + 1,
	    sizeof(*n));
	if (n == NULL)
		fatal("%s", __func__);
	n[ps.conf->nrelay++] = na;
	ps.conf->relay_from = n;
}

/*
 * The break character: one printable ASCII character that may appear in
 * a local part we look up (not '@', '/', '"', '\\' or a space).
 */
static void
conf_qmail_break(const char *s)
{
	if (strlen(s) != 1 || !isgraph((unsigned char)s[0]) ||
	    !isascii((unsigned char)s[0]) || strchr("@/\"\\", s[0]) != NULL) {
		conf_error("qmail break: \"%s\" is not one printable "
		    "character usable in a local part", s);
		return;
	}
	ps.conf->qmail_break = (unsigned char)s[0];
}

/* One more passwd account that gets no mail (qmail's ignore). */
static void
conf_qmail_ignore(const char *s)
{
	char	**n;
	char	 *dup;
	size_t	  i;

	if (!conf_name_valid(s) || strlen(s) > SQ_USER_MAX) {
		conf_error("qmail ignore: \"%s\" is not a user name", s);
		return;
	}
	for (i = 0; i < ps.conf->qmail_nignore; i++)
		if (strcmp(ps.conf->qmail_ignore[i], s) == 0)
			return;
	if (ps.conf->qmail_nignore >= CONF_MAX_IGNORE) {
		conf_error("qmail ignore: more than %d names",
		    CONF_MAX_IGNORE);
		return;
	}
	n = reallocarray(ps.conf->qmail_ignore, ps.conf->qmail_nignore + 2,
	    sizeof(*n));
	if (n == NULL)
		fatal("%s", __func__);
	ps.conf->qmail_ignore = n;
	if ((dup = strdup(s)) == NULL)
		fatal("%s", __func__);
	n[ps.conf->qmail_nignore++] = dup;
	n[ps.conf->qmail_nignore] = NULL;
}

static void
conf_domain_begin(const char *name)
{
	struct domain	*d;
	char		 lower[SQ_DOMAIN_MAX + 1];
	size_t		 i;

	ps.dom = NULL;
	ps.dom_deliver = 0;
	if (strcmp(name, "*") != 0 && !conf_domain_valid(name[0] == '.' ?
	    name + 1 : name)) {
		conf_error("domain \"%s\": not a domain, \".domain\" or \"*\"",
		    name);
		return;
	}
	if (strlen(name) >= sizeof(lower)) {
		conf_error("domain \"%s\": too long", name);
		return;
	}
	for (i = 0; name[i] != '\0'; i++)
		lower[i] = tolower((unsigned char)name[i]);
	lower[i] = '\0';
	TAILQ_FOREACH(d, &ps.conf->domains, entry)
		if (strcmp(d->name, lower) == 0) {
			conf_error("domain \"%s\" is already defined", lower);
			return;
		}
	if ((d = calloc(1, sizeof(*d))) == NULL)
		fatal("%s", __func__);
	(void)strlcpy(d->name, lower, sizeof(d->name));
	d->method = MBOX_MAILDIR;
	(void)strlcpy(d->mailbox, "~/Maildir/", sizeof(d->mailbox));
	TAILQ_INSERT_TAIL(&ps.conf->domains, d, entry);
	ps.dom = d;
}

static void
conf_domain_end(void)
{
	if (ps.dom != NULL && ps.dom->remote && ps.dom_deliver)
		conf_error("domain \"%s\": deliver (local) and route or tls "
		    "(remote) exclude each other", ps.dom->name);
	else if (ps.dom != NULL && strcmp(ps.dom->name, "*") == 0 &&
	    !ps.dom_deliver && !ps.dom->remote)
		conf_error("domain \"*\" takes every other domain: it needs an "
		    "explicit deliver, route or tls line");
	ps.dom = NULL;
}

/* tls POLICY in a domain block; fingerprint: SHA-256 in hex, ':' allowed. */
static void
conf_tls(enum tls_policy policy, const char *fp)
{
	char	 hex[sizeof(ps.dom->tls_fingerprint)];
	size_t	 n = 0;

	if (ps.dom == NULL)
		return;
	if (fp != NULL) {
		if (strncasecmp(fp, "SHA256:", 7) == 0)
			fp += 7;
		for (; *fp != '\0'; fp++) {
			if (*fp == ':')
				continue;
			if (!isxdigit((unsigned char)*fp) || n >= 64)
				break;
			hex[n++] = tolower((unsigned char)*fp);
		}
		if (*fp != '\0' || n != 64) {
			conf_error("tls fingerprint: not a SHA-256 in hex");
			return;
		}
		hex[n] = '\0';
		(void)strlcpy(ps.dom->tls_fingerprint, hex,
		    sizeof(ps.dom->tls_fingerprint));
	}
	ps.dom->tls = policy;
	ps.dom->remote = 1;
}

/*
 * route "host", "host:port", "[address]" or "[address]:port": mail for
 * the domain goes to that relay, not to its MX hosts.  A host name is
 * looked up for its addresses only (no MX), an address literal not at all.
 */
static void
conf_route(const char *s)
{
	struct in_addr	 in;
	struct in6_addr	 in6;
	char		 host[SQ_DOMAIN_MAX + 1];
	const char	*orig = s, *end, *colon, *errstr;
	size_t		 len;
	long long	 port = 25;
	int		 literal = 0;

	if (ps.dom == NULL)
		return;
	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL)
			goto bad;
		literal = 1;
		len = end - (s + 1);
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			goto bad;
		s++;
	} else {
		colon = strrchr(s, ':');
		len = colon != NULL ? (size_t)(colon - s) : strlen(s);
	}
	if (len == 0 || len >= sizeof(host))
		goto bad;
	memcpy(host, s, len);
	host[len] = '\0';
	if (colon != NULL) {
		port = strtonum(colon + 1, 1, 65535, &errstr);
		if (errstr != NULL) {
			conf_error("route \"%s\": port %s", orig, errstr);
			return;
		}
	}
	if (literal ? inet_pton(AF_INET, host, &in) != 1 &&
	    inet_pton(AF_INET6, host, &in6) != 1 : !conf_domain_valid(host))
		goto bad;
	(void)strlcpy(ps.dom->route_host, host, sizeof(ps.dom->route_host));
	ps.dom->route_port = (uint16_t)port;
	ps.dom->route_literal = literal;
	ps.dom->remote = 1;
	return;
 bad:
	conf_error("route \"%s\": not host, host:port, [address] or "
	    "[address]:port", orig);
}

/*
 * bounce route: where mail with the null sender goes, whatever its
 * domain (s/qmail's "!@" smtproutes line).  Its options are read into
 * it as into a domain block's route.
 */
static void
conf_bounce_route(const char *s)
{
	struct domain	*d;

	if (ps.conf->bounce_route != NULL) {
		conf_error("bounce route is already defined");
		ps.dom = NULL;
		return;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL)
		fatal("%s", __func__);
	(void)strlcpy(d->name, "<>", sizeof(d->name));
	ps.conf->bounce_route = d;
	ps.dom = d;
	conf_route(s);
}

/* route ... auth "user" "secret": printable, no spaces in the user. */
static void
conf_route_auth(const char *user, const char *secret)
{
	const char	*p;

	if (ps.dom == NULL)
		return;
	for (p = user; *p != '\0'; p++)
		if (!isgraph((unsigned char)*p))
			break;
	if (user[0] == '\0' || *p != '\0' ||
	    strlen(user) >= sizeof(ps.dom->auth_user)) {
		conf_error("route auth: the user must be 1 to %zu printable "
		    "characters", sizeof(ps.dom->auth_user) - 1);
		return;
	}
	for (p = secret; *p != '\0'; p++)
		if (!isprint((unsigned char)*p))
			break;
	if (*p != '\0' || strlen(secret) >= sizeof(ps.dom->auth_secret)) {
		conf_error("route auth: the secret must be at most %zu "
		    "printable characters", sizeof(ps.dom->auth_secret) - 1);
		return;
	}
	(void)strlcpy(ps.dom->auth_user, user, sizeof(ps.dom->auth_user));
	(void)strlcpy(ps.dom->auth_secret, secret,
	    sizeof(ps.dom->auth_secret));
}

/* dns servers "ip[:port],...": checked in full by the resolver at start. */
static void
conf_dns_servers(const char *s)
{
	const char	*p;

	for (p = s; *p != '\0'; p++)
		if (!isxdigit((unsigned char)*p) && strchr(".:[],", *p) == NULL) {
			conf_error("dns servers \"%s\": not a list of "
			    "ip[:port]", s);
			return;
		}
	if (s[0] == '\0') {
		conf_error("dns servers: empty list");
		return;
	}
	conf_string(ps.conf->dns_servers, sizeof(ps.conf->dns_servers), s,
	    "dns servers");
}

static void
conf_deliver(enum mbox_method method, const char *tmpl)
{
	const char	*p;

	if (ps.dom == NULL)
		return;
	if (tmpl[0] == '\0') {
		conf_error("deliver: empty mailbox");
		return;
	}
	for (p = tmpl; (p = strchr(p, '%')) != NULL; p += 2)
		if (p[1] != 'u' && p[1] != 'l') {
			conf_error("deliver: \"%s\": only %%u and %%l may "
			    "follow '%%'", tmpl);
			return;
		}
	ps.dom_deliver = 1;
	ps.dom->method = method;
	if (tmpl[0] == '~' && tmpl[1] == '/') {
		if (strlcpy(ps.dom->mailbox, tmpl, sizeof(ps.dom->mailbox)) >=
		    sizeof(ps.dom->mailbox))
			conf_error("deliver: mailbox too long");
	} else
		conf_path(ps.dom->mailbox, sizeof(ps.dom->mailbox), tmpl,
		    "deliver");
}

static void
conf_retry_loc(void)
{
	ps.retry_set = 1;
	ps.retry_loc.name = ps.src[ps.depth].name;
	ps.retry_loc.lineno = ps.src[ps.depth].lineno;
}

/*
 * A pki or configuration file named by a pki block (or a listener's
 * client CA; who names it in errors).  Read from disk by the parent
 * (bounded, the buffer wiped), looked up in the files sent by the
 * parent otherwise, where it may be missing: only smtp gets them.
 */
static struct conf_file *
conf_pki_read(const char *path, const char *what, const char *who)
{
	struct conf_filelist	*list;
	struct conf_file	*f;
	struct stat		 st;
	char			*buf;
	size_t			 len = 0;
	ssize_t			 r;
	int			 fd;

	if (ps.files != NULL)
		return conf_file_find(ps.files, path);
	list = ps.loaded != NULL ? ps.loaded : &ps.own;
	if ((f = conf_file_find(list, path)) != NULL) {
		if (!f->secret) {
			conf_error("%s: %s %s is a configuration file",
			    who, what, path);
			return NULL;
		}
		return f;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		conf_error("%s: %s %s: %s", who, what, path,
		    strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		conf_error("%s: %s %s: not a regular file",
		    who, what, path);
		close(fd);
		return NULL;
	}
	if ((buf = malloc(PKI_FILE_MAX + 1)) == NULL) {
		conf_error("%s: %s", who, strerror(errno));
		close(fd);
		return NULL;
	}
	/* One octet more than allowed tells a file that is too large. */
	while (len <= PKI_FILE_MAX) {
		r = read(fd, buf + len, PKI_FILE_MAX + 1 - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += r;
	}
	close(fd);
	if (r == -1)
		conf_error("%s: %s %s: %s", who, what, path,
		    strerror(errno));
	else if (len > PKI_FILE_MAX)
		conf_error("%s: %s %s is larger than %d octets",
		    who, what, path, PKI_FILE_MAX);
	else if (len > CONF_MAX_TOTAL - ps.total || ps.nfiles >= CONF_MAX_FILES)
		conf_error("%s: %s %s: the configuration is too "
		    "large", who, what, path);
	else if ((f = conf_file_add(list, path, buf, len)) == NULL)
		conf_error("%s: %s", who, strerror(errno));
	else {
		f->secret = 1;
		ps.total += len;
		ps.nfiles++;
	}
	freezero(buf, PKI_FILE_MAX + 1);
	return f;
}

static void
conf_pki_begin(const char *name)
{
	struct pki	*pk;

	ps.pki = NULL;
	memset(ps.pkif, 0, sizeof(ps.pkif));
	if (!conf_tname_valid(name) || strlen(name) > SQ_DOMAIN_MAX) {
		conf_error("pki \"%s\": bad name (a host name is usual)", name);
		return;
	}
	if (config_pki(ps.conf, name) != NULL) {
		conf_error("pki \"%s\" is already defined", name);
		return;
	}
	if ((pk = calloc(1, sizeof(*pk))) == NULL)
		fatal("%s", __func__);
	(void)strlcpy(pk->name, name, sizeof(pk->name));
	TAILQ_INSERT_TAIL(&ps.conf->pkis, pk, entry);
	ps.pki = pk;
}

/* which: 0 certificate, 1 key, 2 chain. */
static void
conf_pki_file(const char *path, int which)
{
	static const char *const what[] = { "certificate", "key", "chain" };
	char	*dst;
	char	 who[SQ_DOMAIN_MAX + 8];

	if (ps.pki == NULL)
		return;
	(void)snprintf(who, sizeof(who), "pki \"%s\"", ps.pki->name);
	dst = which == 0 ? ps.pki->cert_path : which == 1 ?
	    ps.pki->key_path : ps.pki->chain_path;
	dst[0] = '\0';
	conf_path(dst, PATH_MAX, path, what[which]);
	if (dst[0] != '\0')
		ps.pkif[which] = conf_pki_read(dst, what[which], who);
}

/* Does a file hold PEM of this kind ("CERTIFICATE", "PRIVATE KEY")? */
static int
conf_pem_has(const struct conf_file *f, const char *kind)
{
	char	 begin[64];

	(void)snprintf(begin, sizeof(begin), "-----BEGIN %s", kind);
	if (strcmp(kind, "PRIVATE KEY") == 0)
		/* "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY" */
		return memmem(f->data, f->len, "PRIVATE KEY-----", 16) !=
		    NULL && memmem(f->data, f->len, "-----BEGIN ", 11) != NULL;
	return memmem(f->data, f->len, begin, strlen(begin)) != NULL;
}

/*
 * The end of a pki block: both files named, their contents sane, and
 * the certificate and its chain joined as libtls takes them.
 */
static void
conf_pki_end(void)
{
	struct pki		*pk = ps.pki;
	struct conf_file	*cert = ps.pkif[0], *key = ps.pkif[1];
	struct conf_file	*chain = ps.pkif[2];
	size_t			 len;
	int			 nl;

	ps.pki = NULL;
	if (pk == NULL)
		return;
	if (pk->cert_path[0] == '\0' || pk->key_path[0] == '\0') {
		conf_error("pki \"%s\": needs a certificate and a key",
		    pk->name);
		return;
	}
	if (cert == NULL || key == NULL ||
	    (pk->chain_path[0] != '\0' && chain == NULL))
		return;		/* not read here, or reported already */
	if (!conf_pem_has(cert, "CERTIFICATE")) {
		conf_error("pki \"%s\": certificate %s holds no PEM "
		    "certificate", pk->name, pk->cert_path);
		return;
	}
	if (!conf_pem_has(key, "PRIVATE KEY")) {
		conf_error("pki \"%s\": key %s holds no PEM private key",
		    pk->name, pk->key_path);
		return;
	}
	if (chain != NULL && !conf_pem_has(chain, "CERTIFICATE")) {
		conf_error("pki \"%s\": chain %s holds no PEM certificate",
		    pk->name, pk->chain_path);
		return;
	}
	nl = cert->len > 0 && cert->data[cert->len - 1] != '\n';
	len = cert->len + nl + (chain != NULL ? chain->len : 0);
	if ((pk->cert = malloc(len + 1)) == NULL ||
	    (pk->key = malloc(key->len + 1)) == NULL)
		fatal("%s", __func__);
	memcpy(pk->cert, cert->data, cert->len);
	if (nl)
		pk->cert[cert->len] = '\n';
	if (chain != NULL)
		memcpy(pk->cert + cert->len + nl, chain->data, chain->len);
	pk->cert[len] = '\0';
	pk->cert_len = len;
	memcpy(pk->key, key->data, key->len);
	pk->key[key->len] = '\0';
	pk->key_len = key->len;
}

/* listen on ... auth users NAME: the table must come first. */
static void
conf_listen_auth(const char *name)
{
	if (config_table(ps.conf, name) == NULL)
		/* Kept all the same: one error, not one per option after. */
		conf_error("table \"%s\" is not defined (define tables before "
		    "the listeners that use them)", name);
	if (ps.lauth[0] != '\0') {
		conf_error("listen on: more than one auth backend");
		return;
	}
	(void)strlcpy(ps.lauth, name, sizeof(ps.lauth));
}

/*
 * domain ... { auth ... }: the backend rules write the listener's field
 * (ps.lauth); around a domain's, it is emptied first and its result goes
 * to the domain block, which then checks the AUTH of user@domain.
 */
static void
conf_domain_auth(int begin)
{
	if (begin) {
		ps.lauth[0] = '\0';
		return;
	}
	if (ps.dom != NULL && ps.lauth[0] != '\0') {
		if (ps.dom->auth_src[0] != '\0')
			conf_error("domain %s: more than one auth backend",
			    ps.dom->name);
		else
			(void)strlcpy(ps.dom->auth_src, ps.lauth,
			    sizeof(ps.dom->auth_src));
	}
	ps.lauth[0] = '\0';
}

/* 64-bit FNV-1a: names a checkpassword source by its settings. */
static uint64_t
conf_fnv(uint64_t h, const void *buf, size_t len)
{
	const unsigned char	*p = buf;
	size_t			 i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/*
 * listen on ... auth system [pam "service"] | auth checkpassword "prog"
 * [timeout TIME]: find or make the source and name it on the listener.
 */
static void
conf_listen_authsrc(enum auth_backend type, const char *arg, uint64_t timeout)
{
	struct authsrc	 as, *o;
	const char	*p;
	char		 num[32];
	uint64_t	 h;

	if (ps.lauth[0] != '\0') {
		conf_error("listen on: more than one auth backend");
		return;
	}
	/* After an error: a backend all the same, for one error, not two. */
	(void)strlcpy(ps.lauth, "@invalid", sizeof(ps.lauth));
	memset(&as, 0, sizeof(as));
	as.type = type;
	as.timeout = timeout;
	switch (type) {
	default:
		return;		/* reported already */
	case AUTHB_SYSTEM:
		(void)strlcpy(as.name, "@system", sizeof(as.name));
		break;
	case AUTHB_PAM:
		for (p = arg; *p != '\0'; p++)
			if (!isascii((unsigned char)*p) ||
			    (!isalnum((unsigned char)*p) && *p != '-' &&
			    *p != '_' && *p != '.'))
				break;
		if (arg[0] == '\0' || *p != '\0' ||
		    strlen(arg) > AUTH_SERVICE_MAX) {
			conf_error("auth system pam: the service must be 1 to "
			    "%d letters, digits, '-', '_' or '.'",
			    AUTH_SERVICE_MAX);
			return;
		}
		(void)strlcpy(as.service, arg, sizeof(as.service));
		(void)snprintf(as.name, sizeof(as.name), "@pam:%s", arg);
		break;
	case AUTHB_PROG:
		if (arg[0] != '/') {
			conf_error("auth checkpassword: \"%s\": give the "
			    "program's absolute path", arg);
			return;
		}
		if (strlcpy(as.prog, arg, sizeof(as.prog)) >= sizeof(as.prog)) {
			conf_error("auth checkpassword: path too long");
			return;
		}
		h = conf_fnv(0xcbf29ce484222325ULL, as.prog,
		    strlen(as.prog) + 1);
		(void)snprintf(num, sizeof(num), "%llu",
		    (unsigned long long)timeout);
		h = conf_fnv(h, num, strlen(num));
		(void)snprintf(as.name, sizeof(as.name),
		    "@checkpassword:%016llx", (unsigned long long)h);
		break;
	case AUTHB_LDAP:
		/* Checked by conf_ldap_end(); the name hashes every option. */
		as.ldap = ps_ldap;
		h = conf_fnv(0xcbf29ce484222325ULL, &as.ldap,
		    sizeof(as.ldap));
		(void)snprintf(num, sizeof(num), "%llu",
		    (unsigned long long)timeout);
		h = conf_fnv(h, num, strlen(num));
		(void)snprintf(as.name, sizeof(as.name), "@ldap:%016llx",
		    (unsigned long long)h);
		break;
	}
	(void)strlcpy(ps.lauth, as.name, sizeof(ps.lauth));
	if ((o = config_authsrc(ps.conf, as.name)) != NULL) {
		if (strcmp(o->prog, as.prog) != 0 || o->timeout != as.timeout ||
		    memcmp(&o->ldap, &as.ldap, sizeof(as.ldap)) != 0)
			conf_error("auth %s: two backends with the same hash; "
			    "change one", type == AUTHB_LDAP ? "ldap" :
			    "checkpassword");
		explicit_bzero(&as, sizeof(as));
		return;
	}
	if ((o = malloc(sizeof(*o))) == NULL)
		fatal("%s", __func__);
	*o = as;
	explicit_bzero(&as, sizeof(as));
	TAILQ_INSERT_TAIL(&ps.conf->authsrcs, o, entry);
}

/* auth ldap "URL" ...: start afresh. */
static void
conf_ldap_begin(const char *url)
{
	explicit_bzero(&ps_ldap, sizeof(ps_ldap));
	ps_ldap_timeout = AUTH_LDAP_TIMEOUT;
	ps_ldap_bad = 0;
	if (strncasecmp(url, "ldap://", 7) != 0 &&
	    strncasecmp(url, "ldaps://", 8) != 0) {
		conf_error("auth ldap: \"%s\": give an ldap:// or ldaps:// "
		    "URL", url);
		ps_ldap_bad = 1;
		return;
	}
	conf_ldap_opt(LDAP, url);
}

/*
 * Whether a DN or filter template is usable: printable, "%u" (the user,
 * escaped) at least once if need_u, "%%" for a '%', no other '%'.
 */
static int
conf_ldap_template(const char *what, const char *s, int need_u)
{
	const char	*p;
	int		 u = 0;

	for (p = s; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			conf_error("auth ldap %s: control character", what);
			return -1;
		}
		if (*p != '%')
			continue;
		p++;
		if (*p == 'u')
			u = 1;
		else if (*p != '%') {
			conf_error("auth ldap %s: only %%u and %%%% may follow "
			    "a '%%'", what);
			return -1;
		}
	}
	if (need_u && !u) {
		conf_error("auth ldap %s: \"%s\" has no %%u", what, s);
		return -1;
	}
	return 0;
}

static void
conf_ldap_opt(int which, const char *arg)
{
	static const struct {
		int		 which;
		const char	*what;
		size_t		 off;
		size_t		 size;
		int		 need_u;	/* -1: not a template */
	} opts[] = {
#define O(w, s, m, u)	{ w, s, offsetof(struct authldap, m), \
			    sizeof(((struct authldap *)0)->m), u }
		O(LDAP, "URL", url, -1),
		O(BINDDN, "bind-dn", bind_dn, 1),
		O(BASE, "base", base, 0),
		O(FILTER, "filter", filter, 1),
		O(SEARCHDN, "search-dn", search_dn, -1),
		O(SEARCHPASSWORD, "search-password", search_pw, -1),
		O(CA, "ca", ca, -1),
#undef O
	};
	size_t	 i;
	char	*dst;

	if (which == STARTTLS) {
		if (ps_ldap.starttls) {
			conf_error("auth ldap: starttls twice");
			ps_ldap_bad = 1;
		}
		ps_ldap.starttls = 1;
		return;
	}
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (opts[i].which == which)
			break;
	if (i == sizeof(opts) / sizeof(opts[0]))
		return;
	dst = (char *)&ps_ldap + opts[i].off;
	if (dst[0] != '\0') {
		conf_error("auth ldap: %s twice", opts[i].what);
		ps_ldap_bad = 1;
		return;
	}
	if (arg[0] == '\0' || strlen(arg) >= opts[i].size) {
		conf_error("auth ldap: %s: empty or longer than %zu octets",
		    opts[i].what, opts[i].size - 1);
		ps_ldap_bad = 1;
		return;
	}
	if (opts[i].need_u != -1 &&
	    conf_ldap_template(opts[i].what, arg, opts[i].need_u) == -1) {
		ps_ldap_bad = 1;
		return;
	}
	if (which == CA && arg[0] != '/') {
		conf_error("auth ldap ca: \"%s\": give an absolute path", arg);
		ps_ldap_bad = 1;
		return;
	}
	(void)strlcpy(dst, arg, opts[i].size);
}

/* The options make one way to check a password, or an error. */
static void
conf_ldap_end(void)
{
	const struct authldap	*l = &ps_ldap;
	const char		*err = NULL;

	if (ps_ldap_bad)
		;
	else if (l->bind_dn[0] != '\0' && (l->base[0] != '\0' ||
	    l->filter[0] != '\0' || l->search_dn[0] != '\0' ||
	    l->search_pw[0] != '\0'))
		err = "bind-dn binds directly: no base, filter or search-dn "
		    "with it";
	else if (l->bind_dn[0] == '\0' && (l->base[0] == '\0' ||
	    l->filter[0] == '\0'))
		err = "give bind-dn, or base and filter";
	else if ((l->search_dn[0] == '\0') != (l->search_pw[0] == '\0'))
		err = "search-dn and search-password go together";
	else if (l->starttls && strncasecmp(l->url, "ldaps://", 8) == 0)
		err = "starttls with an ldaps:// URL (TLS already)";
	if (err != NULL)
		conf_error("auth ldap: %s", err);
	if (ps_ldap_bad || err != NULL)
		conf_listen_authsrc(0, NULL, 0);
	else
		conf_listen_authsrc(AUTHB_LDAP, NULL, ps_ldap_timeout);
	explicit_bzero(&ps_ldap, sizeof(ps_ldap));
}

/*
 * listen on ... tls client-ca "file": PEM certificates of the CAs whose
 * client certificates count, read by the parent like a pki file (smtp
 * alone gets the text on reload).
 */
static void
conf_listen_clientca(const char *path)
{
	struct conf_file	*f;

	if (ps.lclientca[0] != '\0') {
		conf_error("listen on: tls client-ca given twice");
		return;
	}
	conf_path(ps.lclientca, sizeof(ps.lclientca), path, "tls client-ca");
	if (ps.lclientca[0] == '\0')
		return;
	f = conf_pki_read(ps.lclientca, "file", "tls client-ca");
	if (f != NULL && !conf_pem_has(f, "CERTIFICATE")) {
		conf_error("tls client-ca: %s holds no PEM certificate",
		    ps.lclientca);
		f = NULL;
	}
	ps.lclientcaf = f;
}

/* listen on ... auth certificate NAME: the mapping table comes first. */
static void
conf_listen_authcert(const char *name)
{
	if (config_table(ps.conf, name) == NULL) {
		conf_error("table \"%s\" is not defined (define tables before "
		    "the listeners that use them)", name);
		/* Kept all the same: one error, not one about the pairing. */
	}
	if (ps.lauthcert[0] != '\0') {
		conf_error("listen on: auth certificate given twice");
		return;
	}
	conf_string(ps.lauthcert, sizeof(ps.lauthcert), name,
	    "auth certificate");
}

/*
 * listen on ... auth sender-check [table NAME]: an authenticated client's
 * MAIL FROM must be one of its user's addresses.
 */
static void
conf_listen_sendercheck(const char *name)
{
	if (ps.lsendercheck) {
		conf_error("listen on: auth sender-check given twice");
		return;
	}
	ps.lsendercheck = 1;
	if (name == NULL)
		return;
	if (config_table(ps.conf, name) == NULL)
		conf_error("table \"%s\" is not defined (define tables before "
		    "the listeners that use them)", name);
	conf_string(ps.lsenders, sizeof(ps.lsenders), name,
	    "auth sender-check table");
}

/* listen on ... pki NAME: the block must come first, like a table. */
static void
conf_listen_pki(const char *name)
{
	int	 i;

	if (config_pki(ps.conf, name) == NULL) {
		conf_error("pki \"%s\" is not defined (define pki blocks "
		    "before the listeners that use them)", name);
		return;
	}
	for (i = 0; i < ps.lnpki; i++)
		if (strcasecmp(ps.lpki[i], name) == 0)
			return;
	if (ps.lnpki >= LISTEN_PKI_MAX) {
		conf_error("listen on: more than %d pki names", LISTEN_PKI_MAX);
		return;
	}
	(void)strlcpy(ps.lpki[ps.lnpki++], name, sizeof(ps.lpki[0]));
}

/* tls protocols "tlsv1.2,tlsv1.3" as libtls reads them. */
static void
conf_tls_protocols(const char *s)
{
	uint32_t	 p;

	if (tls_config_parse_protocols(&p, s) == -1 || p == 0) {
		conf_error("tls protocols \"%s\": not a protocol list such as "
		    "\"tlsv1.2,tlsv1.3\"", s);
		return;
	}
	ps.conf->tls_protocols = p;
}

/* tls ciphers: checked by libtls when the parent sets TLS up. */
static void
conf_tls_ciphers(const char *s)
{
	const char	*p;

	for (p = s; *p != '\0'; p++)
		if (!isgraph((unsigned char)*p)) {
			conf_error("tls ciphers \"%s\": not a cipher list",
			    s);
			return;
		}
	conf_string(ps.conf->tls_ciphers, sizeof(ps.conf->tls_ciphers), s,
	    "tls ciphers");
}

static void
conf_defaults(struct sqconf *c)
{
	TAILQ_INIT(&c->listeners);
	TAILQ_INIT(&c->tables);
	TAILQ_INIT(&c->domains);
	TAILQ_INIT(&c->pkis);
	TAILQ_INIT(&c->authsrcs);
	c->tls_protocols = TLS_PROTOCOL_TLSv1_2 | TLS_PROTOCOL_TLSv1_3;
	(void)strlcpy(c->tls_ciphers, "secure", sizeof(c->tls_ciphers));
	if (gethostname(c->hostname, sizeof(c->hostname)) == -1 ||
	    c->hostname[0] == '\0')
		(void)strlcpy(c->hostname, "localhost", sizeof(c->hostname));
	c->hostname[sizeof(c->hostname) - 1] = '\0';
	(void)strlcpy(c->spool, "/var/spool/sqmail", sizeof(c->spool));
	(void)strlcpy(c->tls_ca, "/etc/ssl/certs/ca-certificates.crt",
	    sizeof(c->tls_ca));
	(void)strlcpy(c->control_socket, "/var/run/sqmaild.sock",
	    sizeof(c->control_socket));
	(void)strlcpy(c->user, "_sqmaild", sizeof(c->user));
	(void)strlcpy(c->queue_user, "_sqmailq", sizeof(c->queue_user));
	(void)strlcpy(c->empty_dir, "/var/empty", sizeof(c->empty_dir));
	c->log_syslog = 0;
	c->max_message_size = 35 * 1024 * 1024;
	c->max_recipients = 100;
	c->max_sessions = 100;
	c->max_sessions_per_ip = 20;
	c->max_errors = 10;
	c->max_auth_failures = 10;
	c->auth_fail_window = 15 * 60;
	c->timeout_command = 5 * 60;
	c->timeout_data = 10 * 60;
	c->bare_lf_reject = 1;
	c->queue_lifetime = 7 * 86400;
	c->retry_min = 5 * 60;
	c->retry_max = 4 * 3600;
	c->bounce_max_size = 64 * 1024;
	c->mda_concurrency = 20;
	c->mta_concurrency = 100;
	c->mta_host_concurrency = 20;
	c->agent_idle = 5;
	c->agent_program_timeout = 3600;
	c->qmail_break = '-';
}

/* Checks that need the whole file. */
static void
conf_finish(void)
{
	struct sqconf	*c = ps.conf;

	if (ps.retry_set && c->retry_min > c->retry_max)
		conf_error_at(ps.retry_loc.name, ps.retry_loc.lineno,
		    "queue retry-min (%llds) is above queue retry-max "
		    "(%llds)", (long long)c->retry_min,
		    (long long)c->retry_max);
	if (c->postmaster[0] == '\0')
		(void)snprintf(c->postmaster, sizeof(c->postmaster),
		    "postmaster@%s", c->hostname);
	else if (strchr(c->postmaster, '@') == NULL) {
		if (strlcat(c->postmaster, "@", sizeof(c->postmaster)) >=
		    sizeof(c->postmaster) || strlcat(c->postmaster,
		    c->hostname, sizeof(c->postmaster)) >=
		    sizeof(c->postmaster))
			conf_error_at(NULL, 0, "postmaster: address too long");
	}
}

static void
conf_cleanup(void)
{
	struct conf_macro	*m;
	struct conf_arena	*a;

	while ((m = TAILQ_FIRST(&ps.macros)) != NULL) {
		TAILQ_REMOVE(&ps.macros, m, entry);
		free(m->name);
		free(m->value);
		free(m);
	}
	while ((a = ps.arena) != NULL) {
		ps.arena = a->next;
		free(a);
	}
	conf_files_free(&ps.own);
}

struct sqconf *
config_parse(const char *path, const char *basedir,
    struct conf_filelist *files, struct conf_filelist *loaded)
{
	struct sqconf	*c;
	char		 cwd[PATH_MAX];

	memset(&ps, 0, sizeof(ps));
	TAILQ_INIT(&ps.macros);
	TAILQ_INIT(&ps.own);
	if (basedir == NULL) {
		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			conf_error("cannot get the current directory: %s",
			    strerror(errno));
			return NULL;
		}
		basedir = cwd;
	}
	if (basedir[0] != '/') {
		conf_error("base directory \"%s\" is not absolute", basedir);
		return NULL;
	}
	if (strlcpy(ps.basedir, basedir, sizeof(ps.basedir)) >=
	    sizeof(ps.basedir)) {
		conf_error("base directory too long");
		return NULL;
	}
	if (files != NULL && path == NULL) {
		if (TAILQ_EMPTY(files)) {
			conf_error("no configuration file");
			return NULL;
		}
		path = TAILQ_FIRST(files)->name;
	}
	if (path == NULL || path[0] == '\0') {
		conf_error("no configuration file");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		conf_error("%s", strerror(errno));
		return NULL;
	}
	conf_defaults(c);
	ps.conf = c;
	ps.files = files;
	ps.loaded = loaded;

	if (conf_push(path) == 0) {
		(void)yyparse();
		conf_finish();
	}
	conf_cleanup();
	if (ps.errors > 0 || ps.src[0].name == NULL) {
		config_free(c);
		c = NULL;
	}
	memset(&ps, 0, sizeof(ps));
	return c;
}
