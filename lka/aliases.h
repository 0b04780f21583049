/*
 * aliases(5): the /etc/aliases format, as pure functions over (pointer,
 * length).  aliases_parse() reads a whole source file for newaliases;
 * aliases_targets() reads one list of targets, which is both the right
 * hand side of an entry and the value newaliases stores in the database
 * (aliases_parse() writes each value in a form aliases_targets() reads
 * back to the same targets), and a line of an :include: file.
 *
 *	name: target, target, ...
 *	<white space>target, ...	continues the entry above
 *	# comment			(first non-blank octet '#')
 *
 * A name is a local part: a dot-string, or a quoted string ("a b": x).
 * A target is, after an optional pair of double quotes around it:
 *	|command		a program for sh -c
 *	/path			an mbox file; /path/ (trailing '/') a Maildir
 *	:include:/path		a file of further targets, read at delivery
 *	local, local@domain, <local@domain>	an address
 * Inside quotes, '\' escapes the next octet; a quoted target may hold ','.
 */
#ifndef SQ_LKA_ALIASES_H
#define SQ_LKA_ALIASES_H

#include <stddef.h>

#include "sqmail.h"

#define ALIASES_FILE_MAX	(64 * 1024 * 1024)	/* octets in a source */
#define ALIASES_LINE_MAX	4096	/* octets in one line, LF excluded */
#define ALIASES_ENTRY_MAX	16384	/* octets of an entry, lines joined */
#define ALIASES_ENTRIES_MAX	1000000	/* entries in a source */
#define ALIASES_TARGETS_MAX	SQ_EXPAND_MAX	/* targets of one list */
#define ALIASES_TARGET_MAX	(SQ_MAILBOX_MAX - 1)	/* octets of one */
#define ALIASES_VALUE_MAX	4096	/* a stored value (TABLE_LINE_MAX) */
#define ALIASES_ERR_MAX		160	/* an error message */

enum alias_type {
	ALIAS_ADDR = 1,		/* arg: the address as written, no <> */
	ALIAS_PROGRAM,		/* arg: the command, without the '|' */
	ALIAS_FILE,		/* arg: an absolute path; '/' last: Maildir */
	ALIAS_INCLUDE		/* arg: the absolute path of the file */
};

struct alias_target {
	enum alias_type	 type;
	const char	*arg;	/* NUL-terminated, in the list's buffer */
};

struct alias_targets {
	struct alias_target	 t[ALIASES_TARGETS_MAX];
	size_t			 n;
	size_t			 used;
	char			 buf[ALIASES_ENTRY_MAX + ALIASES_TARGETS_MAX];
};

/*
 * Parse the list s (len octets, no newline) and append its targets to
 * out (start with out->n = out->used = 0).  Empty items ("a,,b", a
 * trailing ',') are skipped.  Returns 0, or -1 with *errstr set: an
 * unterminated quote, text after a closing quote, a control octet (tab
 * aside), a target longer than ALIASES_TARGET_MAX, an address that does
 * not parse, a program without a command, an include path that is not
 * absolute, more than ALIASES_TARGETS_MAX targets.
 */
int	aliases_targets(const char *s, size_t len, struct alias_targets *out,
	    const char **errstr);

/* "program", "file", ... for messages. */
const char *aliases_type_name(enum alias_type);

/* One entry of a parsed source. */
struct aliases_ent {
	char		*key;	/* the lowercased local part, stored form */
	char		*val;	/* the targets, encoded for aliases_targets */
	size_t		 line;	/* where the entry starts, 1-based */
	size_t		 ntargets;
};

struct aliases {
	struct aliases_ent	*ents;	/* sorted by key, unique */
	size_t			 n;
	size_t			 ntargets;	/* all entries' */
};

struct aliases_err {
	size_t	 line;			/* 1-based; 0: the file as a whole */
	char	 msg[ALIASES_ERR_MAX];
};

/*
 * Parse a source file.  Returns 0 with *out set, or -1 with err set and
 * *out NULL: a NUL octet, a line longer than ALIASES_LINE_MAX, an entry
 * longer than ALIASES_ENTRY_MAX, a continuation line before any entry, a
 * name that is not a local part, a missing ':', no targets, a bad target
 * (see aliases_targets), a value longer than ALIASES_VALUE_MAX once
 * stored, a name given twice (the second line is reported, with the
 * first), more than ALIASES_ENTRIES_MAX entries or ALIASES_FILE_MAX
 * octets, or no memory.  A CR before a LF is ignored.
 */
int	aliases_parse(const char *buf, size_t len, struct aliases **out,
	    struct aliases_err *err);
/* The entry of a lowercased key, or NULL. */
const struct aliases_ent *aliases_get(const struct aliases *, const char *);
void	aliases_free(struct aliases *);

#endif
