/*
 * qmail's rules for finding the user in charge of a local address, as
 * pure functions for lka: the users/assign file (qmail-users(5)), the
 * passwd fallback (qmail-getpw(8)) and the virtualdomains control file
 * (qmail-send(8)).  Nothing here opens a file or asks the system unless
 * told to through a callback, so tests and fuzzers drive all of it.
 *
 * Case.  qmail looks a local part up without regard to case: users/assign
 * keys, passwd names and virtualdomains keys are compared in ASCII lower
 * case, whatever case the caller passes.  What a lookup hands on keeps the
 * case it was given: the extension of a wildcard assignment or of a passwd
 * user is the rest of the local part as passed in (qmail-lspawn and
 * qmail-getpw do the same), and a virtual domain's rewrite keeps the local
 * part as passed in.  dotqmail lowers the extension for .qmail file names
 * only; EXT keeps its case.
 *
 * Local parts are the unquoted local part (the content of a quoted string,
 * without quotes or escapes), as qmail's envelope holds them.
 */
#ifndef SQ_LKA_QMAIL_USERS_H
#define SQ_LKA_QMAIL_USERS_H

#include <sys/types.h>

#include <stddef.h>

#include "sqmail.h"
#include "table.h"

#define QMAIL_ASSIGN_FILE_MAX	(64 * 1024 * 1024)	/* octets */
#define QMAIL_ASSIGN_LINE_MAX	2048	/* octets in a line, LF excluded */
#define QMAIL_ASSIGN_ENTRIES_MAX 1000000
#define QMAIL_HOME_MAX		SQ_HOME_MAX	/* octets in a home directory */
#define QMAIL_FIELD_MAX		SQ_LOCALPART_MAX /* local, ext, pre */
#define QMAIL_EXT_MAX		SQ_EXT_MAX	/* pre + the rest */
#define QMAIL_VDOMS_FILE_MAX	(16 * 1024 * 1024)
#define QMAIL_VDOMS_LINE_MAX	1024
#define QMAIL_VDOMS_ENTRIES_MAX	1000000
#define QMAIL_BREAK_DEFAULT	'-'	/* qmail's conf-break */
#define QMAIL_ALIAS_USER	"alias"	/* qmail's catch-all user */

/* Results of the lookups below. */
enum qmail_res {
	QMAIL_FOUND = 1,
	QMAIL_NONE = 0,		/* no entry, no such user, not virtual */
	QMAIL_TEMP = -1,	/* try again later (passwd or stat trouble) */
	QMAIL_BAD = -2		/* the address cannot be handled: too long,
				 * empty; permanent for that address */
};

/*
 * Who is in charge of a local part: what qmail-lspawn hands qmail-local.
 * Messages to the local part are controlled by home/.qmail<dash><ext>.
 */
struct qmail_user {
	char	 user[SQ_USER_MAX + 1];
	uid_t	 uid;
	gid_t	 gid;
	char	 home[QMAIL_HOME_MAX + 1];
	char	 dash[2];		/* "" or "-" */
	char	 ext[QMAIL_EXT_MAX + 1];
};

/*
 * users/assign.  One assignment per line, the file ends with a line that
 * is a single ".":
 *	=local:user:uid:gid:homedir:dash:ext:	(simple)
 *	+loc:user:uid:gid:homedir:dash:pre:	(wildcard)
 * Stricter than qmail-newu, which ignores what it does not understand:
 * the first character is '=' or '+'; there are exactly seven ':' and
 * nothing after the last; local, ext and pre are at most QMAIL_FIELD_MAX
 * printable ASCII octets without ':' (local may be empty: "+:" is the
 * catch-all); user is a usable account name; uid and gid are decimal,
 * below (uid_t)-1, and uid is not 0 (no delivery runs as root); homedir is
 * absolute, at most QMAIL_HOME_MAX octets, with no empty, "." or ".."
 * component (a trailing '/' is allowed); dash is "" or "-".  No NUL, no
 * control character, no blank line, no data after the "." line, and the
 * "." line is required (a file cut short must not pass).
 */
struct qmail_assign_ent {
	const char	*local;		/* lowercased */
	const char	*user;
	uid_t		 uid;
	gid_t		 gid;
	const char	*home;
	const char	*dash;
	const char	*ext;		/* ext, or a wildcard's pre */
	size_t		 line;
};

struct qmail_assign {
	char			*mem;	/* the fields, NUL-terminated */
	struct qmail_assign_ent	*exact;	/* sorted by local, unique */
	size_t			 nexact;
	struct qmail_assign_ent	*wild;	/* sorted by loc, unique */
	size_t			 nwild;
	/* First line whose key repeats one of its kind (ignored), or 0. */
	size_t			 dupline;
};

/*
 * Parse users/assign.  Returns 0 and sets *out, or -1 and sets *errline
 * (1-based; 0 for the file as a whole) and *errstr.
 */
int	qmail_assign_parse(const char *buf, size_t len,
	    struct qmail_assign **out, size_t *errline, const char **errstr);
void	qmail_assign_free(struct qmail_assign *);

/*
 * Look local up as qmail-lspawn does: a simple assignment for the whole
 * local part first; else the wildcard with the longest loc that local
 * starts with (loc itself included), whose extension is pre followed by
 * the rest of local after loc.  Of several assignments with the same key
 * and kind the first one counts.  QMAIL_FOUND with *out filled,
 * QMAIL_NONE, or QMAIL_BAD for an empty local part, one longer than
 * QMAIL_FIELD_MAX, or an extension longer than QMAIL_EXT_MAX.
 */
int	qmail_assign_lookup(const struct qmail_assign *, const char *local,
	    struct qmail_user *out);

/*
 * The passwd fallback of qmail-getpw(8).  An account is a user when its
 * name is all lower case (qmail asks for the lowered name, so an account
 * with upper case is never found), its uid is not 0, its home directory
 * exists and is owned by its uid, and it is not in the ignore list.
 * getpw and owner are the callbacks that ask the system (see
 * qmail_getpw_sys and qmail_owner_sys for the real ones).
 */
struct qmail_pw {
	char	 name[SQ_USER_MAX + 1];
	uid_t	 uid;
	gid_t	 gid;
	char	 home[QMAIL_HOME_MAX + 1];
};

struct qmail_getpw_ops {
	/* 1: found, *pw filled; 0: no such account; -1: temporary. */
	int		 (*getpw)(void *arg, const char *name,
			    struct qmail_pw *pw);
	/* 1: path is a directory, *uid its owner; 0: it is not one or
	 * cannot be seen; -1: temporary. */
	int		 (*owner)(void *arg, const char *path, uid_t *uid);
	void		*arg;
	int		 brk;		/* break character; 0: '-' */
	const char	*alias;		/* catch-all account; NULL: none */
	const char *const *ignore;	/* NULL-terminated names; NULL: none */
};

/*
 * Find the user of local: of the prefixes of local that are all of it or
 * end just before a break character, longest first, the first that names
 * a user (lowered, at most SQ_USER_MAX octets of [a-z0-9._-], not starting
 * with '-' or '.', so nothing odd ever reaches getpwnam).  Its dash is ""
 * for the whole local part, else "-" with the extension the rest after the
 * break character.  When no prefix names a user and an alias account is
 * set, the alias user gets local with dash "-" and ext = local, as long as
 * it passes the same checks except the ignore list (qmail checks only that
 * it exists: we also refuse uid 0 and a home it does not own).
 * QMAIL_FOUND, QMAIL_NONE (no user and no alias account set), QMAIL_TEMP
 * (a callback said so, or the alias account is missing or unusable: qmail's
 * "Unable to find alias user!", a temporary failure), or QMAIL_BAD for an
 * empty local part or one longer than QMAIL_FIELD_MAX.
 */
int	qmail_getpw(const struct qmail_getpw_ops *, const char *local,
	    struct qmail_user *out);

/*
 * Whether the first n octets of s, lowered into name, are a name
 * qmail_getpw() asks passwd for: [a-z0-9._-], at most SQ_USER_MAX octets,
 * not starting with '-' or '.', and not in ops' ignore list.
 */
int	qmail_pwname(const struct qmail_getpw_ops *, const char *s, size_t n,
	    char name[SQ_USER_MAX + 1]);

/* getpwnam(3) and stat(2), for struct qmail_getpw_ops; arg is unused. */
int	qmail_getpw_sys(void *arg, const char *name, struct qmail_pw *pw);
int	qmail_owner_sys(void *arg, const char *path, uid_t *uid);

/*
 * virtualdomains, a qmail control file: one "key:prefix" per line, key
 * being "domain", ".domain" (its subdomains, not itself), "user@domain"
 * (one address) or "" (every domain that is not local); an empty prefix
 * says the key is not virtual.  As qmail's control files: trailing spaces
 * and tabs are dropped, blank lines and lines starting with '#' skipped.
 * Stricter than qmail, which skips what it does not understand: a line
 * needs a ':', no leading white space, no control character or NUL; a
 * domain is labels of [a-z0-9_-] (any case) joined by single dots, at most
 * SQ_DOMAIN_MAX octets; a user and a prefix are RFC 5321 dot-strings; a
 * prefix has at most QMAIL_FIELD_MAX octets.  Keys are stored lowered.  As
 * in qmail, of two lines with the same key the last one counts.
 */
/*
 * The parsed file is a table_file (lka/table.h; free it with
 * table_file_free()) whose values are the prefixes, "" for an exception;
 * dupline is the first line whose key a later line overrides, or 0.
 */
int	qmail_vdoms_parse(const char *buf, size_t len,
	    struct table_file **out, size_t *errline, const char **errstr);

/*
 * The prefix for local@domain, trying as qmail-send does and taking the
 * first key present: "local@domain", "domain", then ".d" for each
 * proper suffix d of domain that starts after a dot, longest first, then
 * "".  Returns the prefix ("" when the matching line is an exception), or
 * NULL when no key matches or the address is too long to be a key.
 */
const char *qmail_vdoms_match(const struct table_file *, const char *local,
	    const char *domain);

/*
 * Rewrite local@domain for a virtual domain: out gets "prefix-local" (the
 * '-' is literal, whatever the break character, as in qmail-send).
 * QMAIL_FOUND; QMAIL_NONE when the domain is not virtual; QMAIL_BAD when
 * the result is longer than SQ_LOCALPART_MAX or outlen - 1 octets.  out
 * is "" unless QMAIL_FOUND.
 */
int	qmail_vdoms_lookup(const struct table_file *, const char *local,
	    const char *domain, char *out, size_t outlen);

/*
 * Whether users/assign has an assignment (simple or wildcard) that gives
 * exactly user, uid, gid and home: what the parent checks before it
 * forks an agent with an identity that is not in passwd.  Never for uid
 * 0; 0 when qa is NULL.
 */
int	qmail_assign_allows(const struct qmail_assign *, const char *user,
	    uid_t uid, gid_t gid, const char *home);

/* Read and parse users/assign or virtualdomains: 0, or -1 (err set). */
int	qmail_assign_load(const char *path, struct qmail_assign **out,
	    char *err, size_t errlen);
int	qmail_vdoms_load(const char *path, struct table_file **out,
	    char *err, size_t errlen);

#endif
