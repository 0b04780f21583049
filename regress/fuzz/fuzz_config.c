/*
 * libFuzzer target for the sqmail.conf parser (lib/parse.y, lib/config.c,
 * lib/config_xfer.c).  The input is one or more files held in memory, so
 * nothing touches the file system, includes included: form feeds (0x0c)
 * split it, the first part is "main.conf", the next "f1.conf", "f2.conf",
 * ...  A configuration that parses must parse again, the same, through
 * the reload transport.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define FUZZ_MAX_PARTS	16

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_config_quiet(const char *line)
{
	(void)line;
}

static void
fuzz_config_same(struct sqconf *a, struct sqconf *b)
{
	struct listener	*la, *lb;
	struct domain	*da, *db;

	if (strcmp(a->spool, b->spool) != 0 ||
	    strcmp(a->control_socket, b->control_socket) != 0 ||
	    strcmp(a->postmaster, b->postmaster) != 0 ||
	    a->nrelay != b->nrelay ||
	    a->max_message_size != b->max_message_size ||
	    a->retry_min != b->retry_min || a->retry_max != b->retry_max)
		abort();
	if (a->nrelay > 0 && memcmp(a->relay_from, b->relay_from,
	    a->nrelay * sizeof(*a->relay_from)) != 0)
		abort();
	for (la = TAILQ_FIRST(&a->listeners), lb = TAILQ_FIRST(&b->listeners);
	    la != NULL && lb != NULL; la = TAILQ_NEXT(la, entry),
	    lb = TAILQ_NEXT(lb, entry))
		if (strcmp(la->name, lb->name) != 0 || la->proto != lb->proto)
			abort();
	if (la != NULL || lb != NULL)
		abort();
	for (da = TAILQ_FIRST(&a->domains), db = TAILQ_FIRST(&b->domains);
	    da != NULL && db != NULL; da = TAILQ_NEXT(da, entry),
	    db = TAILQ_NEXT(db, entry))
		if (strcmp(da->name, db->name) != 0 ||
		    strcmp(da->mailbox, db->mailbox) != 0)
			abort();
	if (da != NULL || db != NULL)
		abort();
}

static void
fuzz_config_lookups(struct sqconf *c)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	struct domain		*d;
	struct listener		*l;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x0a010203);
	(void)config_relay_allowed(c, (struct sockaddr *)&sin);
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	(void)inet_pton(AF_INET6, "::ffff:10.1.2.3", &sin6.sin6_addr);
	(void)config_relay_allowed(c, (struct sockaddr *)&sin6);
	(void)config_domain(c, "a.example.org");
	TAILQ_FOREACH(d, &c->domains, entry)
		if (config_domain(c, d->name) != d)
			abort();
	TAILQ_FOREACH(l, &c->listeners, entry)
		if (l->fd != -1 || l->name[0] == '\0')
			abort();
	if (c->retry_min > c->retry_max)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_filelist	 files;
	struct conf_file	*f;
	struct sqconf		*c, *c2;
	const uint8_t		*p, *end, *ff;
	char			 name[32];
	int			 n = 0;

	config_error_hook = fuzz_config_quiet;
	TAILQ_INIT(&files);
	p = data;
	end = data + size;
	do {
		ff = n + 1 < FUZZ_MAX_PARTS ? memchr(p, '\f', end - p) : NULL;
		if (ff == NULL)
			ff = end;
		if (n == 0)
			(void)strlcpy(name, "main.conf", sizeof(name));
		else
			(void)snprintf(name, sizeof(name), "f%d.conf", n);
		if (conf_file_add(&files, name, p, ff - p) == NULL)
			abort();
		n++;
		p = ff + 1;
	} while (ff < end);

	c = config_parse("main.conf", "/fuzz", &files, NULL);
	if (c != NULL) {
		fuzz_config_lookups(c);
		config_xfer_start("/fuzz");
		TAILQ_FOREACH(f, &files, entry)
			config_xfer_file(f->name, f->data, f->len);
		if ((c2 = config_xfer_end()) == NULL)
			abort();
		fuzz_config_same(c, c2);
		config_free(c2);
	}
	config_free(c);
	conf_files_free(&files);
	return 0;
}
