/*
 * libFuzzer target for envelope_decode().  Whatever decodes must encode,
 * decode again to the same envelope, and encode to the same bytes.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sqmail.h"
#include "../../queue/queue.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
fuzz_envelope_same(const struct envelope *a, const struct envelope *b)
{
	if (a->id != b->id || a->ctime != b->ctime || a->flags != b->flags ||
	    strcmp(a->sender, b->sender) || strcmp(a->helo, b->helo) ||
	    strcmp(a->client, b->client) || strcmp(a->proto, b->proto) ||
	    a->size != b->size || a->nrcpt != b->nrcpt)
		return 0;
	return memcmp(a->rcpts, b->rcpts, a->nrcpt * sizeof(*a->rcpts)) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope	 env, back;
	char		*buf, *buf2;
	size_t		 len, len2;

	if (envelope_decode((const char *)data, size, &env) == -1)
		return 0;
	if ((buf = envelope_encode(&env, &len)) == NULL)
		abort();	/* a decoded envelope always encodes */
	if (len > size)
		abort();	/* the encoding is the shortest form */
	if (envelope_decode(buf, len, &back) == -1)
		abort();
	if (!fuzz_envelope_same(&env, &back))
		abort();
	if ((buf2 = envelope_encode(&back, &len2)) == NULL || len2 != len ||
	    memcmp(buf, buf2, len) != 0)
		abort();
	free(buf);
	free(buf2);
	envelope_free(&env);
	envelope_free(&back);
	return 0;
}
