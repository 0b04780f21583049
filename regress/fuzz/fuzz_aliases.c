/*
 * libFuzzer target for the aliases(5) parser (lka/aliases.c): any octets
 * in, a parsed source or a line-numbered error out, never a crash.  A
 * parsed source is checked: keys sorted, unique and lowercase, found
 * again by aliases_get(), and every stored value reads back with
 * aliases_targets() to the number of targets the entry had.  The input
 * is also read as one list of targets, as lka and the agent read values
 * and :include: lines.
 */
#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lka/aliases.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct alias_targets	tl;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aliases		*al;
	struct aliases_err	 err;
	const char		*errstr, *p;
	size_t			 i, k;

	tl.n = tl.used = 0;
	if (aliases_targets((const char *)data, size, &tl, &errstr) == -1) {
		if (errstr == NULL)
			abort();
	} else
		for (k = 0; k < tl.n; k++)
			if (tl.t[k].arg[0] == '\0' && tl.t[k].type != ALIAS_ADDR)
				abort();
	if (aliases_parse((const char *)data, size, &al, &err) == -1) {
		if (al != NULL || err.msg[0] == '\0')
			abort();
		return 0;
	}
	for (i = 0; i < al->n; i++) {
		if (al->ents[i].key[0] == '\0')
			abort();
		if (i > 0 && strcmp(al->ents[i - 1].key, al->ents[i].key) >= 0)
			abort();
		for (p = al->ents[i].key; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				abort();
		if (aliases_get(al, al->ents[i].key) != &al->ents[i])
			abort();
		if (strlen(al->ents[i].val) > ALIASES_VALUE_MAX)
			abort();
		tl.n = tl.used = 0;
		if (aliases_targets(al->ents[i].val, strlen(al->ents[i].val),
		    &tl, &errstr) == -1 || tl.n != al->ents[i].ntargets)
			abort();
	}
	aliases_free(al);
	return 0;
}
