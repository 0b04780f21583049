/*
 * libFuzzer target for the file-table parser (lka/table_file.c): any
 * octets in, a parsed table or a line-numbered error out, never a crash.
 * A parsed table is checked: keys sorted, unique and lowercase, every
 * key found again by lookup, and keys and values free of the bytes a
 * line may not hold.
 */
#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lka/table.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_table_check(const struct table_file *tf)
{
	const char	*p;
	size_t		 i;

	for (i = 0; i < tf->nents; i++) {
		if (tf->ents[i].key[0] == '\0')
			abort();
		if (i > 0 && strcmp(tf->ents[i - 1].key, tf->ents[i].key) >= 0)
			abort();
		for (p = tf->ents[i].key; *p != '\0'; p++)
			if ((*p >= 'A' && *p <= 'Z') || *p == ' ' ||
			    *p == '\t' || *p == ':' ||
			    (unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
		for (p = tf->ents[i].val; *p != '\0'; p++)
			if (((unsigned char)*p < 0x20 && *p != '\t') ||
			    *p == 0x7f)
				abort();
		if (strlen(tf->ents[i].val) > TABLE_LINE_MAX)
			abort();
		if (table_file_get(tf, tf->ents[i].key) != tf->ents[i].val)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct table_file	*tf;
	const char		*errstr = NULL;
	size_t			 errline;

	if (table_file_parse((const char *)data, size, &tf, &errline,
	    &errstr) == -1) {
		if (tf != NULL || errstr == NULL)
			abort();
		return 0;
	}
	fuzz_table_check(tf);
	(void)table_file_get(tf, "postmaster");
	(void)table_file_get(tf, "");
	table_file_free(tf);
	return 0;
}
