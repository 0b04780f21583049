/*
 * Mail address parsing (RFC 5321 Mailbox), shared by smtp and lka.
 * Every function is pure: it reads (pointer, length), writes only its
 * output arguments, and never reads past the length given.
 */
#ifndef SQ_MAILADDR_H
#define SQ_MAILADDR_H

#include <stddef.h>

#include "sqmail.h"

/*
 * Parse a Mailbox, the inside of a path without its angle brackets:
 * Local-part "@" ( Domain / address-literal ).  The local part is a
 * dot-string or a quoted string; a quoted one is stored unquoted when its
 * content is a valid dot-string, else in a minimal quoted form.  The
 * domain is stored in lower case; address literals as "[1.2.3.4]" and
 * "[IPv6:...]".  Returns 0, or -1 when s is not a mailbox we accept; out
 * is then cleared.
 */
int	mailaddr_parse(const char *s, size_t len, struct mailaddr *out);

/*
 * Parse a Domain or an address literal into out (outlen bytes, NUL
 * included), lower-cased as above.  Returns 0 or -1.
 */
int	mailaddr_parse_domain(const char *s, size_t len, char *out,
	    size_t outlen);

/* Whether s is an RFC 5321 Dot-string: atoms separated by single dots. */
int	mailaddr_is_dotstring(const char *s, size_t len);

/* The null path <>: empty user and domain. */
int	mailaddr_is_null(const struct mailaddr *);

/*
 * "user@domain", "user" when domain is empty, "" for the null path.
 * Returns 0, or -1 when buf is too small (buf then holds "").
 */
int	mailaddr_to_text(const struct mailaddr *, char *buf, size_t len);

#endif
