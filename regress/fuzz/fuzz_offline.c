/*
 * libFuzzer target for the offline file envelope parser (lib/inject.c,
 * inject_offline_parse(), which the root parent runs on files any local
 * user writes): no crash, no read past the input, and every range it
 * reports lies inside the input, holds no LF and no control octet.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inject.h"
#include "sqmail.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct inject_range	 rcpts[INJECT_OFFLINE_RCPTS];

static void
check_range(const uint8_t *data, size_t size, struct inject_range r)
{
	size_t	 i;

	if (r.off > size || r.len > size - r.off || r.len >= SQ_ADDR_MAX)
		abort();
	for (i = 0; i < r.len; i++)
		if (data[r.off + i] < ' ' || data[r.off + i] == 0x7f)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct inject_offline	 off;
	char			 err[128];
	size_t			 i;

	if (inject_offline_parse((const char *)data, size, &off, rcpts,
	    INJECT_OFFLINE_RCPTS, err, sizeof(err)) == 0) {
		if (off.nrcpt == 0 || off.nrcpt > INJECT_OFFLINE_RCPTS ||
		    off.body_off > size || off.body_off == 0 ||
		    data[off.body_off - 1] != '\n')
			abort();
		check_range(data, size, off.sender);
		for (i = 0; i < off.nrcpt; i++) {
			check_range(data, size, rcpts[i]);
			if (rcpts[i].len == 0)
				abort();
		}
	} else if (err[0] == '\0')
		abort();
	return 0;
}
