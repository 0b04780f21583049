/*
 * Logging to stderr or syslog, one line per event.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

static int	 log_stderr = 1;
static int	 log_verbose;
static const char *log_procname = "sqmaild";

void
log_init(int to_stderr, int facility)
{
	log_stderr = to_stderr;
	if (!to_stderr)
		openlog("sqmaild", LOG_PID | LOG_NDELAY, facility);
	tzset();
}

void
log_procinit(const char *name)
{
	if (name != NULL)
		log_procname = name;
}

void
log_setverbose(int v)
{
	log_verbose = v;
}

int
log_getverbose(void)
{
	return log_verbose;
}

/* Replace what could break a log line (newlines, control bytes). */
static void
log_clean(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

void
vlog(int pri, const char *fmt, va_list ap)
{
	char	 buf[2048];
	int	 saved = errno;

	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	log_clean(buf);
	if (log_stderr) {
		fprintf(stderr, "%s\n", buf);
		fflush(stderr);
	} else
		syslog(pri, "%s", buf);
	errno = saved;
}

static void
log_errno(int pri, const char *fmt, va_list ap)
{
	char	 buf[1800];
	int	 saved = errno;

	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	errno = saved;
	if (fmt == NULL)
		log_warnx("%s", strerror(saved));
	else if (pri == LOG_CRIT)
		log_warnx("%s: fatal: %s: %s", log_procname, buf,
		    strerror(saved));
	else
		log_warnx("%s: %s", buf, strerror(saved));
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_errno(LOG_ERR, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	if (log_verbose < 1)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_errno(LOG_CRIT, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	char	 buf[1800];
	va_list	 ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_warnx("%s: fatal: %s", log_procname, buf);
	exit(1);
}
