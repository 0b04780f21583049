/*
 * Logging: one line per event, to stderr (foreground, multilog-style
 * collectors) or syslog.  Lines carry no prefix of their own so that the
 * qmail-send-format delivery lines stay exactly as qmailanalog expects.
 */
#ifndef SQ_LOG_H
#define SQ_LOG_H

#include <stdarg.h>

void	log_init(int to_stderr, int facility);
void	log_procinit(const char *);
void	log_setverbose(int);
int	log_getverbose(void);
void	log_warn(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));
void	log_warnx(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));
void	log_info(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));
void	log_debug(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));
void	vlog(int, const char *, va_list)
	    __attribute__((__format__ (printf, 2, 0)));
__attribute__((__noreturn__)) void fatal(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));
__attribute__((__noreturn__)) void fatalx(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));

#endif
