/*
 * Compare secrets (password hashes, digests) without an early exit, so
 * that the time taken does not say where they differ.
 */
#include <stddef.h>

#include "sqmail.h"

int
timingsafe_equal(const void *a, const void *b, size_t len)
{
	const volatile unsigned char	*x = a, *y = b;
	unsigned char			 d = 0;
	size_t				 i;

	for (i = 0; i < len; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}
