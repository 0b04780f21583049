/*
 * libFuzzer target for smtpd/smtp_parse.c: a command line through the
 * verb parser and then the parser of its argument, as the session does;
 * the raw input through the MAIL/RCPT/parameter parsers too.  Accepted
 * paths must be canonical addresses; results must point into the input.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailaddr.h"
#include "sqmail.h"
#include "../../smtpd/smtp.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_check_addr(const struct mailaddr *a, int rcpt)
{
	struct mailaddr	 b;
	char		 text[SQ_ADDR_MAX];

	if (mailaddr_is_null(a)) {
		if (rcpt)
			abort();	/* <> is never a recipient */
		return;
	}
	if (a->domain[0] == '\0') {
		if (!rcpt || strcmp(a->user, "postmaster") != 0)
			abort();
		return;
	}
	if (mailaddr_to_text(a, text, sizeof(text)) == -1 ||
	    mailaddr_parse(text, strlen(text), &b) == -1 ||
	    strcmp(a->user, b.user) != 0 || strcmp(a->domain, b.domain) != 0)
		abort();
}

static void
fuzz_paths(const char *s, size_t len)
{
	struct mailaddr		 a;
	struct smtp_params	 p;

	if (smtp_parse_mail(s, len, &a, &p) == SMTP_P_OK)
		fuzz_check_addr(&a, 0);
	if (smtp_parse_rcpt(s, len, &a, &p) == SMTP_P_OK) {
		fuzz_check_addr(&a, 1);
		if (p.count != 0)
			abort();
	}
	(void)smtp_parse_params(s, len, &p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*s = (const char *)data;
	struct smtp_cmd	 cmd;
	char		 helo[SQ_DOMAIN_MAX + 1];

	fuzz_paths(s, size);
	if (smtp_parse_command(s, size, &cmd) == -1)
		return 0;
	if (cmd.arg < s || cmd.arg + cmd.arglen > s + size)
		abort();
	switch (cmd.verb) {
	case SMTP_CMD_MAIL:
	case SMTP_CMD_RCPT:
		fuzz_paths(cmd.arg, cmd.arglen);
		break;
	case SMTP_CMD_HELO:
	case SMTP_CMD_EHLO:
		if (smtp_parse_helo(cmd.arg, cmd.arglen, helo,
		    sizeof(helo)) == 0 && (helo[0] == '\0' ||
		    strlen(helo) > cmd.arglen))
			abort();
		break;
	default:
		break;
	}
	(void)smtp_verb_name(cmd.verb);
	return 0;
}
