/* Lines of a text file in memory: see textline.h. */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int
text_file_read(const char *path, size_t max, char **bufp, size_t *lenp,
    char *err, size_t errlen)
{
	struct stat	 st;
	char		*buf;
	size_t		 have = 0;
	ssize_t		 n;
	int		 fd, saved;

	*bufp = NULL;
	*lenp = 0;
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1) {
		(void)snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		(void)snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	if ((uint64_t)st.st_size > max) {
		(void)snprintf(err, errlen, "%s: larger than %zu octets",
		    path, max);
		close(fd);
		return -1;
	}
	/* One more than it says, to see a file that grew meanwhile. */
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		(void)snprintf(err, errlen, "%s: out of memory", path);
		close(fd);
		return -1;
	}
	for (;;) {
		n = read(fd, buf + have, (size_t)st.st_size + 1 - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			saved = errno;
			(void)snprintf(err, errlen, "%s: %s", path,
			    strerror(saved));
			goto fail;
		}
		if (n == 0)
			break;
		have += n;
		if (have > (size_t)st.st_size)
			break;
	}
	if (have != (size_t)st.st_size) {
		(void)snprintf(err, errlen, "%s: changed while read", path);
		goto fail;
	}
	close(fd);
	*bufp = buf;
	*lenp = have;
	return 0;
 fail:
	free(buf);
	close(fd);
	return -1;
}

int
text_parse_fail(char *err, size_t errlen, const char *path, size_t line,
    const char *what)
{
	if (line > 0)
		return text_fail(err, errlen, "%s:%zu: %s", path, line, what);
	return text_fail(err, errlen, "%s: %s", path, what);
}

void
text_printable(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}
