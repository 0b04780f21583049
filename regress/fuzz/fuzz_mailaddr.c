/*
 * libFuzzer target for lib/mailaddr.c: no crash, no read past the input,
 * and what is accepted is canonical: printed and parsed again it is the
 * same address.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailaddr.h"
#include "sqmail.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_check_printable(const char *s, size_t max)
{
	size_t	 i, len = strnlen(s, max + 1);

	if (len > max)
		abort();
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mailaddr	 a, b;
	char		 text[SQ_ADDR_MAX], dom[SQ_DOMAIN_MAX + 1];
	size_t		 i;

	if (mailaddr_parse((const char *)data, size, &a) == 0) {
		fuzz_check_printable(a.user, SQ_LOCALPART_MAX);
		fuzz_check_printable(a.domain, SQ_DOMAIN_MAX);
		if (a.user[0] == '\0' || a.domain[0] == '\0')
			abort();
		for (i = 0; a.domain[i] != '\0'; i++)
			if (a.domain[i] >= 'A' && a.domain[i] <= 'Z' &&
			    strncmp(a.domain, "[IPv6:", 6) != 0)
				abort();
		if (mailaddr_to_text(&a, text, sizeof(text)) == -1)
			abort();
		if (mailaddr_parse(text, strlen(text), &b) == -1)
			abort();
		if (strcmp(a.user, b.user) != 0 ||
		    strcmp(a.domain, b.domain) != 0)
			abort();
	}
	if (mailaddr_parse_domain((const char *)data, size, dom,
	    sizeof(dom)) == 0) {
		fuzz_check_printable(dom, SQ_DOMAIN_MAX);
		if (strlen(dom) != size)
			abort();
	}
	(void)mailaddr_is_dotstring((const char *)data, size);
	return 0;
}
