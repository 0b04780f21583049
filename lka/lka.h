/*
 * lka: lookups.  lka.c is the process (one dispatcher per peer);
 * lka_rcpt.c decides where a recipient goes, callable without the event
 * loop so that unit tests drive it with a configuration built by hand.
 */
#ifndef SQ_LKA_H
#define SQ_LKA_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>
#include <event.h>
#include <stdint.h>

#include "sqmail.h"

struct sqconf;

#define LKA_ALIAS_DEPTH		8	/* nested alias expansions */
#define LKA_ALIAS_SEEN_MAX	4096	/* distinct aliases one RCPT expands */

/*
 * Resolve one recipient into 1..maxout destinations.  may_relay: the
 * client may send anywhere (authenticated, or lka's own callers); client
 * (may be NULL) is matched against "relay from" otherwise.  Returns SQ_OK
 * with out[0 .. *nout - 1] filled and reply "", or SQ_TEMPFAIL /
 * SQ_PERMFAIL with reply holding one full SMTP reply line (code, enhanced
 * code, text; no CRLF) and *nout 0.
 */
int	lka_resolve(struct sqconf *, const struct mailaddr *rcpt,
	    int may_relay, const struct sockaddr *client, struct dest *out,
	    size_t *nout, size_t maxout, char *reply, size_t replylen);

/*
 * Read the qmail files the configuration names (qmail assign, qmail
 * virtualdomains) for lka_resolve(), dropping what was read before.
 * Returns how many could not be read or parsed (logged); lookups that
 * need one of them then fail temporarily.
 */
int	lka_qmail_load(struct sqconf *);
/*
 * What qmail's passwd rule asks the system (qmail_getpw_sys and
 * qmail_owner_sys of qmail_users.h); unit tests put their own here.
 */
struct qmail_pw;
extern int	(*lka_qmail_getpw)(void *, const char *, struct qmail_pw *);
extern int	(*lka_qmail_owner)(void *, const char *, uid_t *);

/*
 * Check a sender (MAIL FROM): SQ_OK and reply "", or a status and a full
 * reply line.  Any sender the SMTP parser accepted passes for now; the
 * hook is where badmailfrom and friends go.
 */
int	lka_check_sender(struct sqconf *, const struct mailaddr *sender,
	    const struct sockaddr *client, char *reply, size_t replylen);

/*
 * Check SMTP AUTH credentials with the listener's backend: src is a
 * table name or an auth source ('@' first, see struct authsrc).  The
 * answer (IMSG_LKA_AUTH) goes to p now or, for a table, a program, LDAP
 * or the system users, when the check ends.
 */
#define LKA_AUTH_USER_MAX	255	/* octets of a user name (as smtp's) */
#define LKA_AUTH_PASS_MAX	1024	/* octets of a password (as smtp's) */
struct mproc;
struct authsrc;
void	lka_auth_request(struct mproc *, uint64_t reqid, const char *src,
	    const char *user, const char *pass);
void	lka_auth_answer(struct mproc *, uint64_t reqid, int status);
void	lka_auth_system_done(uint32_t id, int status);

/*
 * lka_child.c: children that give an AUTH verdict by their exit status
 * (exit_ok: SQ_OK, exit_bad: SQ_PERMFAIL, else, a signal or the timeout:
 * SQ_TEMPFAIL), run from a pool: spawn forks one and returns its pid (or
 * -1), done gets the verdict and owns the child from then on.  A struct
 * lka_child sits in the caller's request; set its what (for logs) and
 * timeout.  lka_child_run() returns -1 when waitmax are waiting already.
 */
struct lka_child;
struct lka_childpool {
	const char			*name;
	size_t				 concurrency;
	size_t				 waitmax;
	int				 exit_ok;
	int				 exit_bad;
	pid_t				(*spawn)(struct lka_child *);
	void				(*done)(struct lka_child *, int status);
	/* lka_child.c's */
	int				 ready;
	TAILQ_ENTRY(lka_childpool)	 entry;
	TAILQ_HEAD(, lka_child)		 running, waiting;
	size_t				 nrunning, nwaiting;
};
struct lka_child {
	TAILQ_ENTRY(lka_child)		 entry;
	struct lka_childpool		*pool;
	const char			*what;
	time_t				 timeout;
	pid_t				 pid;
	int				 timedout;
	struct event			 ev_timeout;
};
int	lka_child_run(struct lka_childpool *, struct lka_child *);
/* Watch SIGCHLD on lka's loop (lka_child_run() does it too). */
void	lka_child_init(void);
/* Reap child pid when it exits, nothing more (its owner sees its end). */
void	lka_child_reap(pid_t);

/*
 * lka_auth_prog.c: run a checkpassword program.  Returns -1 when the
 * answer will follow (the program runs or waits its turn), or a status
 * to answer now.
 */
int	lka_auth_prog(struct mproc *, uint64_t reqid, const struct authsrc *,
	    const char *user, const char *pass);

/*
 * lka_auth_ldap.c: check against an LDAP server (a pool of worker
 * processes per source, each with an open connection).  Returns -1 when
 * the answer will follow, or a status to answer now.  lka_auth_ldap_expand() puts a user, escaped, into a DN or filter
 * template; -1 when it does not fit.
 */
int	lka_auth_ldap(struct mproc *, uint64_t reqid, const struct authsrc *,
	    const char *user, const char *pass);
int	lka_auth_ldap_expand(const char *tmpl, const char *user, char *out,
	    size_t outlen);

/*
 * lka_auth_cram.c: AUTH CRAM-MD5 (RFC 2195).  The secret of a users-table
 * value: its word "cram:TEXT" or "cram64:BASE64"; the secret's length
 * written into out (NUL-terminated), 0 when there is none, -1 when it is
 * malformed or longer than outlen - 1 (out then wiped).
 */
#define LKA_CRAM_SECRET_MAX	1025	/* 1024 octets and a NUL */
int	lka_auth_cram_secret(const char *val, char *out, size_t outlen);
/*
 * Check digest (32 lower-case hex digits) against HMAC-MD5(secret of
 * user, challenge): SQ_OK, SQ_PERMFAIL (unknown user, no secret, wrong
 * digest) or SQ_TEMPFAIL (the table failed, or the secret is malformed).
 */
int	lka_auth_cram_check(struct sqconf *, const char *tname,
	    const char *user, const char *challenge, const char *digest);
struct imsg;
/* IMSG_LKA_AUTH_CRAM from smtp: check and answer. */
void	lka_auth_cram_imsg(struct mproc *, struct imsg *);
/* Tell smtp which auth tables hold a CRAM-MD5 secret (tables just opened). */
void	lka_auth_cram_mechs(void);

/*
 * lka_auth_cert.c: X.509 client certificates.  Map a verified
 * certificate's hash ("SHA256:hex", libtls's form) or its subject CN
 * ("" none) to a user through table tname: the key "sha256=HEX" first,
 * then "cn=NAME".  SQ_OK (user and the key that matched written),
 * SQ_PERMFAIL (not mapped) or SQ_TEMPFAIL (the table failed, or its
 * value is no user name).
 */
int	lka_auth_cert_map(struct sqconf *, const char *tname, const char *hash,
	    const char *cn, char *user, size_t userlen, char *key,
	    size_t keylen);
/* IMSG_LKA_AUTH_CERT from smtp: map and answer. */
void	lka_auth_cert_imsg(struct mproc *, struct imsg *);

/*
 * lka_auth_sender.c: MAV ("auth sender-check").  Whether user (as
 * authenticated) may use sender as MAIL FROM: its own address, its name
 * at a local domain, or an address or @domain listed for it in table
 * tname ("" or NULL: none).  SQ_OK, SQ_PERMFAIL, or SQ_TEMPFAIL when the
 * table failed.
 */
int	lka_auth_sender_check(struct sqconf *, const char *tname,
	    const char *user, const struct mailaddr *sender);
/* IMSG_LKA_MAIL_AUTH from smtp: check, answer as IMSG_LKA_MAIL. */
void	lka_auth_sender_imsg(struct mproc *, struct imsg *);

/* lka_route.c: remote routes (route lines, MX) and show routes. */
void	lka_route_init(void);
void	lka_route_show(struct mproc *, uint32_t ctlid, const char *domain);
void	lka_route_mta(struct mproc *, uint64_t reqid, const char *domain,
	    int nullsender);

#endif
