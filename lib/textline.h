/*
 * Lines of a text file held in memory, for the parsers of files that
 * administrators and users write (tables, users/assign, virtualdomains,
 * .qmail, sendmail's input, sqmailctl's arguments): one way to split
 * them, one check of their bytes, one way to say what is wrong.
 */
#ifndef SQ_TEXTLINE_H
#define SQ_TEXTLINE_H

#include <stddef.h>

/*
 * The line of buf[0 .. len - 1] that starts at *pos: *line points at it,
 * the return value is its length without the LF, *pos moves past the LF
 * (or to len), and *nl says whether the line ended in one.  Call while
 * *pos < len.
 */
size_t	text_line_next(const char *buf, size_t len, size_t *pos,
	    const char **line, int *nl);

/*
 * 0 when s[0 .. n - 1] is at most max octets with no NUL and no control
 * byte (a tab only when tab is set); else -1 with *errstr saying which:
 * "line too long", "NUL byte" or "control character".
 */
int	text_line_check(const char *s, size_t n, size_t max, int tab,
	    const char **errstr);

/*
 * Read all of the regular file path, at most max octets, into *bufp
 * (malloc'd, not NUL-terminated; *lenp octets).  0, or -1 with err set to
 * a line naming path: it cannot be opened or read, is no regular file, is
 * larger than max, or changed size while read.
 */
int	text_file_read(const char *path, size_t max, char **bufp,
	    size_t *lenp, char *err, size_t errlen);

/*
 * A parser's reason for refusing its input, formatted into err (errlen
 * octets, truncated if need be: a truncated reason is still one).
 * Returns -1, for "return text_fail(err, errlen, ...);".
 */
int	text_fail(char *err, size_t errlen, const char *fmt, ...)
	    __attribute__((__format__ (printf, 3, 4)));
/* Make s printable ASCII: every other octet becomes '?'. */
void	text_printable(char *s);

/* A file parser's reason: "path:line: what", or "path: what" for line 0. */
int	text_parse_fail(char *err, size_t errlen, const char *path,
	    size_t line, const char *what);

#endif
