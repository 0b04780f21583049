/*
 * control: the control process (control.c), the sqmailctl client
 * (sqmailctl.c) and the command-line parser they share with the unit test
 * (ctl_parse.c).
 */
#ifndef SQ_CONTROL_H
#define SQ_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#define CTL_SOCKET_DEFAULT	"/var/run/sqmaild.sock"
#define CTL_SOCKET_ENV		"SQMAIL_SOCKET"
#define CTL_TIMEOUT		30	/* seconds to wait for the daemon */
#define CTL_ARG_MAX		256	/* a target, or a domain, and the NUL */

/*
 * One sqmailctl request, as ctl_parse_args() builds it from argv: type is
 * an IMSG_CTL_* (lib/msg.h); msgid for SCHEDULE and REMOVE (0: all); arg
 * the target of PAUSE_REQ and RESUME_REQ, the domain of SHOW_ROUTES
 * ("": none); verbose for LOG (1 verbose,
 * 0 brief).
 */
struct ctl_request {
	uint32_t	 type;
	uint64_t	 msgid;
	char		 arg[CTL_ARG_MAX];
	int		 verbose;
};

/*
 * Map the command words of a sqmailctl command line (what follows the
 * options: argv[0] is the command) to a request.  Pure: no I/O, no
 * globals.  Returns 0, or -1 with a one-line reason in err.
 */
int	ctl_parse_args(int argc, char **argv, struct ctl_request *out,
	    char *err, size_t errlen);

/*
 * Parse a decimal message id (1 .. 2^64-1, digits only).  Returns 0, or
 * -1 when s is not one.
 */
int	ctl_parse_msgid(const char *s, uint64_t *id);

/*
 * sendmail(8), sqmailctl called by that name (sendmail.c): submit the
 * message on stdin (or SMTP transactions, -bs) through the control
 * socket sock, or into the offline directory when sqmaild is down.
 * Returns the exit code, or -1 for -bp (the caller shows the queue, as
 * mailq), -2 for -bi (the caller runs newaliases).
 */
int	sendmail_main(int argc, char **argv, const char *sock);

#endif
