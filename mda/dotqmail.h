/*
 * .qmail semantics (dot-qmail(5), qmail-command(8)) as pure functions for
 * the delivery agent: which file controls an address, what its lines
 * say, the environment of a program line, and what a program's exit code
 * means.  Nothing here opens a file, forks or reads the clock; the agent
 * does that and asks these functions what to do.
 */
#ifndef SQ_MDA_DOTQMAIL_H
#define SQ_MDA_DOTQMAIL_H

#include <sys/types.h>

#include <stddef.h>
#include <time.h>

#include "sqmail.h"

#define DOTQMAIL_FILE_MAX	(256 * 1024)	/* octets in a .qmail file */
#define DOTQMAIL_LINE_MAX	4096	/* octets in a line, LF excluded */
#define DOTQMAIL_LINES_MAX	8192	/* lines in a file, comments too */
#define DOTQMAIL_NAME_MAX	255	/* a file name, as NAME_MAX */
#define DOTQMAIL_EXT_MAX	(2 * SQ_LOCALPART_MAX)	/* an extension */
#define DOTQMAIL_HOME_MAX	1023	/* a home directory */
#define DOTQMAIL_ENV_MAX	32	/* variables in an environment */
#define DOTQMAIL_ENV_BUF	(32 * 1024)	/* their octets */
#define DOTQMAIL_NOMAILBOX	"Sorry, no mailbox here by that name. " \
				"(#5.1.1)"

/*
 * Choosing the file.  For the extension ext with dash "-", the names to
 * try, in order, are .qmail-ext, then for each prefix p of ext that ends
 * with '-' (longest first) .qmail-pdefault, then .qmail-default: for
 * "foo-bar", .qmail-foo-bar, .qmail-foo-default, .qmail-default; for "a-",
 * .qmail-a-, .qmail-a-default, .qmail-default; for "", .qmail-,
 * .qmail-default.  With dash "" (a user's basic address) the only name is
 * .qmail followed by ext (qmail-local also probes a ".qmaildefault" there,
 * which dot-qmail(5) does not document; we do not).
 *
 * In a name, ext is lowered (ASCII) and every '.' becomes ':' (as in
 * qmail-local: no name can then hold ".." or start a component with '.').
 * qmail leaves '/' alone, so ".qmail-a/b" names a file below a directory
 * ".qmail-a" in home; we never return a name holding '/' or a control
 * octet, nor one longer than DOTQMAIL_NAME_MAX: those candidates are
 * skipped, so an extension with '/' can only reach a -default file of the
 * part before it, or .qmail-default.  Every name returned is one component,
 * to be opened relative to home.
 *
 * DEFAULT is set when a -default file is chosen: the part of ext (as
 * given, case kept) that "default" stands for.  As in qmail-local, the
 * exact name counts too when it ends in "default": joe-foo-default,
 * controlled by .qmail-foo-default, gets DEFAULT=default.
 */
struct dotqmail_iter {
	const char	*ext;		/* the caller's; DEFAULT points in it */
	size_t		 extlen;
	char		 safe[DOTQMAIL_EXT_MAX + 1];	/* lowered, ':' */
	char		 dash[2];
	size_t		 pos;		/* next prefix length to try */
	int		 state;		/* 0 exact, 1 defaults, 2 done */
	int		 exactdef;	/* the exact name ends in "default" */
};

/* 0, or -1 when dash is not "" or "-" or ext is too long. */
int	dotqmail_iter_init(struct dotqmail_iter *, const char *dash,
	    const char *ext);
/*
 * The next name (namelen should be DOTQMAIL_NAME_MAX + 1; a name that
 * does not fit is skipped) and its DEFAULT (NULL: DEFAULT is not set).
 * Returns 1, or 0 when there are no more.
 */
int	dotqmail_iter_next(struct dotqmail_iter *, char *name, size_t namelen,
	    const char **dflt);
/*
 * When no candidate exists: SQ_OK for dash "" (the basic address: deliver
 * as for an empty .qmail, the default delivery), else SQ_PERMFAIL
 * (DOTQMAIL_NOMAILBOX).
 */
int	dotqmail_none_found(const char *dash);

/*
 * The owner files that decide the envelope sender of forwards (dot-qmail
 * "-owner"): .qmail<dash><safe ext>-owner and ...-owner-default.  0, or
 * -1 when they cannot be names (treat both as absent).
 */
int	dotqmail_owner_names(const char *dash, const char *ext, char *owner,
	    size_t ownerlen, char *ownerdef, size_t ownerdeflen);
/*
 * The envelope sender for forwards and NEWSENDER: sender itself when it is
 * "" or "#@[]" (a bounce) or when there is no owner file; local-owner@host
 * when the owner file exists; local-owner-@host-@[] (qmail's VERP request)
 * when both exist.  sender and local are in the form sqmail stores them
 * (RFC 5321 text: a local part that is not a dot-string is quoted); a
 * quoted local part gets "-owner" inside its quotes.  0, or -1 when it
 * does not fit out (out is then "").
 */
int	dotqmail_newsender(const char *sender, const char *local,
	    const char *host, int owner, int ownerdef, char *out,
	    size_t outlen);

/*
 * The contents of a .qmail file.  Each line, its trailing spaces and tabs
 * dropped, is one of:
 *	(blank)		ignored, but a blank first line is an error
 *	#...		a comment
 *	|command	a program: command goes to sh -c
 *	/path, ./path	a file: a Maildir when it ends in '/', else an mbox
 *	+list		from here on only forwards are allowed (ezmlm); other
 *			'+' lines are ignored, as qmail-local does
 *	&address	a forward
 *	anything else	a forward to the whole line
 * A forward's address must be an RFC 5321 mailbox (no brackets, spaces or
 * comments) or a bare dot-string local part (the caller appends its
 * default domain, as qmail does with envnoathost).
 */
enum dotqmail_type {
	DOTQMAIL_PROGRAM = 1,
	DOTQMAIL_FORWARD = 2,
	DOTQMAIL_MBOX = 3,
	DOTQMAIL_MAILDIR = 4
};

struct dotqmail_instr {
	enum dotqmail_type	 type;
	const char		*arg;	/* command, address or path */
	size_t			 line;
};

struct dotqmail {
	char			*mem;	/* the args, NUL-terminated */
	struct dotqmail_instr	*instr;	/* in file order */
	size_t			 ninstr;
	size_t			 nprogram;
	size_t			 nforward;
	size_t			 nfile;	/* mbox and Maildir lines */
	/* 0 octets: deliver as the system's default delivery says. */
	int			 empty;
};

/*
 * Parse a .qmail file.  forwardonly: the file has its owner-execute bit
 * set (dot-qmail(5): then it may hold only forwards and comments).
 * Returns SQ_OK with *out set (a file of comments only is valid and
 * delivers nowhere), or no *out and *errline (1-based, 0 for the file as
 * a whole), *errstr and:
 *  SQ_TEMPFAIL for what the user must fix and mail can wait for: a file
 *	larger than DOTQMAIL_FILE_MAX, a line longer than DOTQMAIL_LINE_MAX,
 *	more than DOTQMAIL_LINES_MAX lines, a NUL or control octet (tab
 *	aside; a CR too), a blank first line, a program or file line in a
 *	forward-only file (qmail: "Uh-oh" errors, all temporary), or no
 *	memory;
 *  SQ_PERMFAIL for a forward to an address that is not syntactically
 *	valid: no delivery is attempted, the message bounces.
 */
int	dotqmail_parse(const char *buf, size_t len, int forwardonly,
	    struct dotqmail **out, size_t *errline, const char **errstr);
void	dotqmail_free(struct dotqmail *);

/*
 * The environment of a program line, qmail-command(8): SENDER, NEWSENDER,
 * RECIPIENT (LOCAL@HOST), USER, HOME, HOST, HOST2 (HOST without its last
 * dot-component; HOST when it has no dot), HOST3 and HOST4 (one and two
 * more removed), LOCAL, EXT, EXT2 (EXT after its first '-'; "" when it has
 * none), EXT3, EXT4, DEFAULT (only when set), DTLINE ("Delivered-To:
 * LOCAL@HOST" and a newline), RPLINE ("Return-Path: <sender>" and a
 * newline), UFLINE ("From SENDER DATE" and a newline, the mbox From_ line;
 * MAILER-DAEMON for <>; spaces, tabs and newlines in the sender become
 * '-'; DATE as asctime(3) writes it, in UTC as qmail does).  Newlines in
 * DTLINE and RPLINE become '_'.  No other quoting: these values come from
 * a remote sender (qmail-command(8) warns about the same).
 */
struct dotqmail_envin {
	const char	*sender;	/* stored form; "" for <> */
	const char	*newsender;	/* stored form; NULL: sender */
	const char	*local;		/* recipient local part, stored form */
	const char	*host;		/* recipient domain */
	const char	*user;
	const char	*home;
	const char	*ext;		/* "" for none */
	const char	*dflt;		/* NULL: DEFAULT is not set */
	time_t		 date;		/* for UFLINE */
};

struct dotqmail_env {
	char		*envp[DOTQMAIL_ENV_MAX + 1];	/* NULL-terminated */
	size_t		 n;
	size_t		 used;
	size_t		 start;		/* of the variable being written */
	int		 error;
	char		 buf[DOTQMAIL_ENV_BUF];
};

void	dotqmail_env_init(struct dotqmail_env *);
/*
 * Add NAME=value (NAME: [A-Z0-9_], not starting with a digit, not already
 * present): for PATH and the like around the variables below.  0 or -1.
 */
int	dotqmail_env_add(struct dotqmail_env *, const char *name,
	    const char *value);
/*
 * Add the qmail-command variables.  The addresses are given as sqmail
 * stores them and SENDER, NEWSENDER, RECIPIENT, LOCAL, DTLINE and UFLINE
 * get them unquoted, as qmail's envelope holds them; RPLINE keeps the
 * quoted form (qmail-local quotes there).  0, or -1 when an input is
 * longer than its bound (SQ_ADDR_MAX - 1 for an address, SQ_LOCALPART_MAX
 * for local, SQ_DOMAIN_MAX for host, SQ_USER_MAX for user,
 * DOTQMAIL_HOME_MAX for home, DOTQMAIL_EXT_MAX for ext and dflt), is
 * NULL where it may not be, or the environment is full.  After -1 the
 * environment must not be used.
 */
int	dotqmail_env_build(struct dotqmail_env *,
	    const struct dotqmail_envin *);

/*
 * What a program's exit code means (qmail-command(8)): 0 delivered; 99
 * delivered, skip the lines after it (forwards before it still go); 100,
 * and the sysexits codes 64 (usage), 65 (data), 70 (software), 76
 * (protocol), 77 (no permission), 78 (config) and 112, permanent; 111
 * and every other code temporary.  A program killed by a signal failed
 * temporarily.
 */
enum dotqmail_exit {
	DOTQMAIL_EXIT_OK = 0,
	DOTQMAIL_EXIT_STOP = 1,
	DOTQMAIL_EXIT_PERM = 2,
	DOTQMAIL_EXIT_TEMP = 3
};

enum dotqmail_exit dotqmail_exit_code(int code);
/* From a wait(2) status. */
enum dotqmail_exit dotqmail_exit_status(int wstatus);

#endif
