/*
 * The smtp process: listeners, sessions, and the pure parsers they use.
 */
#ifndef SQ_SMTP_H
#define SQ_SMTP_H

#include <sys/types.h>
#include <sys/socket.h>
#include <bsd/sys/queue.h>

#include <event.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "imsg.h"
#include "sqmail.h"

/* lib/config_xfer.c: apply IMSG_CONF_*; 1 when a new conf is in force. */

/*
 * smtp_parse.c: commands and their arguments.  Pure functions over
 * (pointer, length); results point into the input.
 */
enum smtp_verb {
	SMTP_CMD_UNKNOWN = 0,
	SMTP_CMD_HELO,
	SMTP_CMD_EHLO,
	SMTP_CMD_MAIL,
	SMTP_CMD_RCPT,
	SMTP_CMD_DATA,
	SMTP_CMD_RSET,
	SMTP_CMD_NOOP,
	SMTP_CMD_QUIT,
	SMTP_CMD_VRFY,
	SMTP_CMD_EXPN,
	SMTP_CMD_HELP,
	SMTP_CMD_STARTTLS,
	SMTP_CMD_AUTH,
	SMTP_CMD_NOTIMPL,	/* known, not offered: AUTH, BDAT, ... */
	SMTP_CMD_HTTP		/* GET, POST, CONNECT, ...: a web client */
};

struct smtp_cmd {
	enum smtp_verb	 verb;
	const char	*arg;		/* after the verb and its spaces */
	size_t		 arglen;	/* 0: no argument; trailing blanks cut */
};

enum smtp_body {
	SMTP_BODY_NONE = 0,	/* not given */
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME
};

struct smtp_params {
	int		 count;		/* parameters given */
	int		 has_size;
	uint64_t	 size;		/* SIZE=; UINT64_MAX when out of range */
	enum smtp_body	 body;
};

/* Results of the MAIL/RCPT parsers. */
enum smtp_perr {
	SMTP_P_OK = 0,
	SMTP_P_SYNTAX,		/* the command is malformed: 501 5.5.4 */
	SMTP_P_ADDR,		/* the address is bad: 501 5.1.7 / 5.1.3 */
	SMTP_P_PARAM,		/* a parameter we do not know: 555 5.5.4 */
	SMTP_P_PARAMVAL		/* a bad or repeated value: 501 5.5.4 */
};

/*
 * A command line without its CRLF.  Returns 0, or -1 when the line holds
 * a NUL, CR or LF (never valid in a command line).
 */
int	smtp_parse_command(const char *, size_t, struct smtp_cmd *);
/* "FROM:<addr> params" (the argument of MAIL); <> is the null path. */
int	smtp_parse_mail(const char *, size_t, struct mailaddr *,
	    struct smtp_params *);
/*
 * "TO:<addr> params" (the argument of RCPT).  "<postmaster>" (any case)
 * yields user "postmaster" and an empty domain, which lka maps to the
 * configured postmaster address.
 */
int	smtp_parse_rcpt(const char *, size_t, struct mailaddr *,
	    struct smtp_params *);
/* The parameters after a path, space-separated: enum smtp_perr. */
int	smtp_parse_params(const char *, size_t, struct smtp_params *);
/*
 * The argument of HELO/EHLO: its first word, printable ASCII, copied
 * into out.  Returns 0 or -1.
 */
int	smtp_parse_helo(const char *, size_t, char *out, size_t outlen);
const char *smtp_verb_name(enum smtp_verb);

/*
 * smtp_authparse.c: SMTP AUTH (RFC 4954) arguments, pure functions.
 * An AUTH command line or a response line holds at most
 * SMTP_AUTH_LINE_MAX octets without its CRLF (RFC 4954 section 4).
 */
#define SMTP_AUTH_LINE_MAX	12288
#define SMTP_AUTH_USER_MAX	255	/* octets of a user name */
#define SMTP_AUTH_PASS_MAX	1024	/* octets of a password */
#define SMTP_AUTH_FAIL_MAX	3	/* failed AUTHs per connection */

enum smtp_auth_mech {
	SMTP_AUTH_NONE = 0,
	SMTP_AUTH_PLAIN,
	SMTP_AUTH_LOGIN,
	SMTP_AUTH_CRAM,		/* CRAM-MD5 (RFC 2195) */
	SMTP_AUTH_UNKNOWN	/* named, not offered: 504 */
};

/* Parse results of a response. */
enum smtp_authp {
	SMTP_AUTHP_OK = 0,
	SMTP_AUTHP_BASE64,	/* not canonical base64: 501 5.5.2 */
	SMTP_AUTHP_SYNTAX,	/* decodes, but not the mechanism's form: 501 */
	SMTP_AUTHP_REFUSE	/* well-formed, never valid here: 535 */
};

/*
 * The argument of AUTH: "MECHANISM [initial-response]".  Sets *mech and
 * points *init at the initial response (NULL: none; "=" is the empty
 * one, left for the mechanism to read).  0, or -1 for a malformed line.
 */
int	smtp_auth_parse_cmd(const char *, size_t, enum smtp_auth_mech *,
	    const char **init, size_t *initlen);
/*
 * A PLAIN response (RFC 4616): base64 of authzid NUL authcid NUL passwd.
 * The authzid must be empty or the authcid; the authcid printable ASCII
 * without space, at most SMTP_AUTH_USER_MAX octets; the password 1 ..
 * SMTP_AUTH_PASS_MAX octets, no NUL.  Fills user and pass (strings) on
 * SMTP_AUTHP_OK; both are "" otherwise.
 */
int	smtp_auth_parse_plain(const char *, size_t, char *user, size_t,
	    char *pass, size_t);
/* A LOGIN response: one base64 field, a user name (isuser) or password. */
int	smtp_auth_parse_field(const char *, size_t, int isuser, char *out,
	    size_t);

/*
 * CRAM-MD5 (RFC 2195).  The challenge, "<RANDOM.TIME@HOST>": 64 random
 * bits as 16 hex digits, the time in seconds, and our host name, cut so
 * that the whole fits in SMTP_AUTH_CHAL_MAX octets with its NUL (the
 * random part makes it unique, the name is courtesy).  Returns its
 * length, or -1 when outlen is too small for any of it.
 */
#define SMTP_AUTH_CHAL_MAX	(SMTP_AUTH_USER_MAX + 1)
#define SMTP_AUTH_DIGEST_LEN	32	/* hex digits of HMAC-MD5 */
int	smtp_auth_cram_challenge(char *out, size_t outlen, uint64_t rnd,
	    long long when, const char *host);
/*
 * A CRAM-MD5 response: base64 of "user SP digest", the digest 32 hex
 * digits (either case; written to digest in lower case, NUL-terminated,
 * digestlen > SMTP_AUTH_DIGEST_LEN).  The user as for PLAIN.
 */
int	smtp_auth_parse_cram(const char *, size_t, char *user, size_t,
	    char *digest, size_t digestlen);

/*
 * smtp_data.c: the DATA phase as a pure byte machine.  It ends at
 * CRLF "." CRLF only, removes dot-stuffing, turns CRLF into LF, and keeps
 * bare CR and bare LF as content while flagging them.  It tracks line
 * length, size and hop count on what it outputs.
 */
#define SMTP_DATA_DONE		0x01	/* CRLF.CRLF consumed */
#define SMTP_DATA_BARELF	0x02	/* a LF not preceded by CR */
#define SMTP_DATA_BARECR	0x04	/* a CR not followed by LF */
#define SMTP_DATA_LONGLINE	0x08	/* a line over SQ_TEXTLINE_MAX */
#define SMTP_DATA_TOOBIG	0x10	/* more than max octets */
#define SMTP_DATA_LOOP		0x20	/* more than SQ_HOPS_MAX hops */

struct smtp_data {
	uint64_t	 max;		/* octets of content; 0: no limit */
	uint64_t	 size;		/* octets of content output so far */
	uint32_t	 flags;
	uint32_t	 hops;		/* Received: + Delivered-To: fields */
	int		 barelf_reject;	/* a bare LF refuses the message */
	int		 state;		/* position in the SMTP line */
	size_t		 linelen;	/* octets in the current output line */
	int		 hstate;	/* header-section tracker */
	size_t		 hlen;
	char		 hname[12];	/* start of a field name, lower case */
};

void	smtp_data_init(struct smtp_data *, uint64_t max, int barelf_reject);
/*
 * Feed len bytes; appends the bytes to store to out (room for len + 1
 * bytes needed) and sets *outlen to how many.  Returns how many input
 * bytes it consumed: all of them, or fewer when the end of data came
 * first (the rest belongs to the next command).
 */
size_t	smtp_data_feed(struct smtp_data *, const char *, size_t, char *out,
	    size_t *outlen);
/* Whether the message is refused already (no more output will come). */
int	smtp_data_refused(const struct smtp_data *);

/*
 * smtp.c: the process.  smtp_session.c: one connection; smtp_tx.c: its
 * mail transaction.
 */
/*
 * A listener's TLS server context (libtls), shared by the sessions begun
 * with it: a reload installs a new one, and the old one lives on until
 * its last session ends.
 */
struct smtp_tlsctx {
	struct tls		*srv;
	uint32_t		 refs;		/* listener's + sessions' */
};

struct smtp_listener {
	TAILQ_ENTRY(smtp_listener) entry;
	enum listen_proto	 proto;
	char			 name[64];
	int			 fd;
	struct event		 ev;
	/* TLS, fixed at start like the socket; tlsctx NULL: none works */
	int			 tls;		/* STARTTLS offered */
	int			 npki;		/* 0: every pki block */
	char			 pki[LISTEN_PKI_MAX][SQ_DOMAIN_MAX + 1];
	struct smtp_tlsctx	*tlsctx;
	/* AUTH: offered when auth_table[0] != '\0' */
	char			 auth_table[64];
	int			 auth_plaintext;	/* before TLS too */
	int			 auth_required;		/* no MAIL before it */
	int			 auth_cram;	/* lka: a user has a CRAM secret */
	/*
	 * Client certificates: the context asks for one when the listener
	 * has a client CA; auth_cert names the table lka maps it with.
	 */
	char			 auth_cert[64];	/* "" none */
	/* MAV ("auth sender-check"): lka checks an authenticated sender */
	int			 auth_sender_check;
	char			 auth_senders[64];	/* its table, "" none */
};

struct smtp_stats {
	uint64_t	 current;
	uint64_t	 total;
	uint64_t	 refused;	/* connections refused by limits */
	uint64_t	 accepted;	/* messages queued */
	uint64_t	 rejected;	/* messages refused at or after DATA */
};
extern struct smtp_stats	 smtp_stats;

void	smtp_session_accept(int, const struct sockaddr_storage *, socklen_t,
	    struct smtp_listener *);
void	smtp_session_lka_mail(uint64_t, int, const char *);
void	smtp_session_lka_dest(uint64_t, const struct dest *);
void	smtp_session_lka_rcpt(uint64_t, int, const char *);
void	smtp_session_lka_auth(uint64_t, int);
/* smtp_tls.c: lka's answer about a client certificate. */
void	smtp_session_lka_cert(uint64_t, int, const char *user,
	    const char *key);
/* lka says whether the users table tname holds a CRAM-MD5 secret. */
void	smtp_listeners_auth_cram(const char *tname, int cram);
/* smtp_auth.c: the mechanisms offered on a listener, for EHLO. */
const char *smtp_auth_mechs(const struct smtp_listener *);
void	smtp_session_queue_create(uint64_t, int, uint64_t, int);
void	smtp_session_queue_commit(uint64_t, int, uint64_t);

/*
 * smtp_tls.c: the server side of TLS.  smtp_tls_init() runs in the smtp
 * process before it drops privileges; smtp_tls_listener() makes a
 * listener's context from the pki contents of conf (in memory: smtp
 * cannot read the key files), at start and after each reload; the caller
 * then wipes those contents from conf (config_pki_clear).
 * smtp_tls_check() is the parent's: every TLS listener of a configuration
 * gets a working context, else log_warnx() says why and it returns -1.
 */
void	smtp_tls_init(void);
/*
 * The common name of a subject as libtls writes it ("/O=x/CN=name"):
 * exactly one CN, printable ASCII without backslash, at most
 * SMTP_AUTH_USER_MAX octets.  0 and cn set, or -1.  Pure.
 */
int	smtp_tls_subject_cn(const char *subj, char *cn, size_t cnlen);
/* (Re)make a listener's context; on failure the one it had stays. */
int	smtp_tls_listener(struct smtp_listener *);
void	smtp_tls_ctx_unref(struct smtp_tlsctx *);
int	smtp_tls_check(struct sqconf *);

#endif
