/*
 * Minimal TAP producer for the C unit tests (prove reads it).
 */
#ifndef SQ_TAP_H
#define SQ_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static inline int
tap_ok(int cond, const char *file, int line, const char *name)
{
	tap_n++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", tap_n, name);
	if (!cond)
		printf("#   failed at %s:%d\n", file, line);
	fflush(stdout);
	return cond;
}

#define ok(c, name)	tap_ok(!!(c), __FILE__, __LINE__, (name))
#define is_int(a, b, name)	do {					\
	long long _a = (a), _b = (b);					\
	if (!ok(_a == _b, (name)))					\
		printf("#   got %lld, expected %lld\n", _a, _b);	\
} while (0)
#define is_str(a, b, name)	do {					\
	const char *_a = (a), *_b = (b);				\
	int _eq = (_a == NULL && _b == NULL) ||				\
	    (_a != NULL && _b != NULL && strcmp(_a, _b) == 0);		\
	if (!ok(_eq, (name)))						\
		printf("#   got \"%s\", expected \"%s\"\n",		\
		    _a ? _a : "(null)", _b ? _b : "(null)");		\
} while (0)

static inline int
done_testing(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
