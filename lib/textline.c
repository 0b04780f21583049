/* Lines of a text file in memory: see textline.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "textline.h"

size_t
text_line_next(const char *buf, size_t len, size_t *pos, const char **line,
    int *nl)
{
	const char	*s = buf + *pos, *end;
	size_t		 n;

	*line = s;
	if ((end = memchr(s, '\n', len - *pos)) != NULL) {
		n = end - s;
		*pos += n + 1;
		*nl = 1;
	} else {
		n = len - *pos;
		*pos = len;
		*nl = 0;
	}
	return n;
}

int
text_line_check(const char *s, size_t n, size_t max, int tab,
    const char **errstr)
{
	size_t	 i;

	if (n > max) {
		*errstr = "line too long";
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (s[i] == '\0') {
			*errstr = "NUL byte";
			return -1;
		}
		if (((unsigned char)s[i] < 0x20 && (s[i] != '\t' || !tab)) ||
		    s[i] == 0x7f) {
			*errstr = "control character";
			return -1;
		}
	}
	return 0;
}

int
text_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (errlen > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}
