/*
 * libFuzzer target for lib/inject.c: no crash, no read past the input,
 * and what inject_scan() reports lies inside the input.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inject.h"
#include "sqmail.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char	 rcpts[INJECT_RCPT_MAX][SQ_ADDR_MAX];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct inject_info	 in;
	char			 err[128], from[1024], name[64];
	size_t			 i;

	if (inject_scan((const char *)data, size, &in, rcpts,
	    INJECT_RCPT_MAX, err, sizeof(err)) == 0) {
		if (in.hdr_len > in.body_off || in.body_off > size ||
		    in.nrcpt > INJECT_RCPT_MAX || in.nbcc > INJECT_BCC_MAX)
			abort();
		for (i = 0; i < in.nbcc; i++)
			if (in.bcc[i].off + in.bcc[i].len > in.hdr_len)
				abort();
		for (i = 0; i < in.nrcpt; i++)
			if (strnlen(rcpts[i], SQ_ADDR_MAX) >= SQ_ADDR_MAX ||
			    rcpts[i][0] == '\0')
				abort();
	} else if (err[0] == '\0')
		abort();
	i = size < sizeof(name) - 1 ? size : sizeof(name) - 1;
	memcpy(name, data, i);
	name[i] = '\0';
	if (inject_from(name, size & 1, "login", "login@host", from,
	    sizeof(from)) >= 0 && strchr(from, '\n') != from + strlen(from) - 1)
		abort();
	return 0;
}
