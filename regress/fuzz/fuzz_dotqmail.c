/*
 * libFuzzer target for mda/dotqmail.c.  The first octet holds flags; the
 * rest is parsed as a .qmail file, used as an extension for the file
 * names to try, and cut at NULs into the inputs of the qmail-command
 * environment, the -owner names and the forwarding sender.  Everything
 * that comes out is checked against what the header promises: names are
 * one component starting ".qmail" with no other dot, no '/' and no
 * control octet; parsed lines are what their first octet says; the
 * environment is bounded, terminated, and its derived variables agree.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../mda/dotqmail.h"
#include "mailaddr.h"
#include "sqmail.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_PIECES	8

static void
fuzz_parse(const char *buf, size_t len, int forwardonly)
{
	const struct dotqmail_instr	*in;
	struct dotqmail			*dq;
	const char			*errstr, *a;
	size_t				 errline, i, n, np = 0, nf = 0, nw = 0;
	size_t				 lines = 1;
	int				 st;

	for (i = 0; i < len; i++)
		if (buf[i] == '\n')
			lines++;
	st = dotqmail_parse(buf, len, forwardonly, &dq, &errline, &errstr);
	if (st != SQ_OK) {
		if (dq != NULL || errstr == NULL || errline > lines ||
		    (st != SQ_TEMPFAIL && st != SQ_PERMFAIL))
			abort();
		return;
	}
	if (dq == NULL || errstr != NULL || dq->empty != (len == 0))
		abort();
	for (i = 0; i < dq->ninstr; i++) {
		in = &dq->instr[i];
		a = in->arg;
		n = strlen(a);
		if (in->line == 0 || in->line > lines ||
		    (i > 0 && in->line <= dq->instr[i - 1].line))
			abort();
		if (n > DOTQMAIL_LINE_MAX ||
		    (n > 0 && (a[n - 1] == ' ' || a[n - 1] == '\t')))
			abort();
		for (; *a != '\0'; a++)
			if (((unsigned char)*a < 0x20 && *a != '\t') ||
			    *a == 0x7f)
				abort();
		a = in->arg;
		switch (in->type) {
		case DOTQMAIL_PROGRAM:
			if (forwardonly)
				abort();
			np++;
			break;
		case DOTQMAIL_MAILDIR:
		case DOTQMAIL_MBOX:
			if (forwardonly || (a[0] != '.' && a[0] != '/') ||
			    (a[n - 1] == '/') != (in->type == DOTQMAIL_MAILDIR))
				abort();
			nf++;
			break;
		case DOTQMAIL_FORWARD:
			if (n == 0 || (memchr(a, '@', n) == NULL &&
			    !mailaddr_is_dotstring(a, n)))
				abort();
			nw++;
			break;
		default:
			abort();
		}
	}
	if (np != dq->nprogram || nf != dq->nfile || nw != dq->nforward)
		abort();
	dotqmail_free(dq);
}

static void
fuzz_names(const char *dash, const char *ext)
{
	struct dotqmail_iter	 it;
	const char		*dflt;
	char			 name[DOTQMAIL_NAME_MAX + 1];
	char			 owner[DOTQMAIL_NAME_MAX + 1];
	char			 ownerdef[DOTQMAIL_NAME_MAX + 1];
	size_t			 n, el, count = 0, i;

	el = strlen(ext);
	if (dotqmail_iter_init(&it, dash, ext) == -1) {
		if (el <= DOTQMAIL_EXT_MAX)
			abort();
		return;
	}
	while (dotqmail_iter_next(&it, name, sizeof(name), &dflt) == 1) {
		n = strlen(name);
		if (n > DOTQMAIL_NAME_MAX || strncmp(name, ".qmail", 6) != 0 ||
		    strchr(name + 1, '.') != NULL || strchr(name, '/') != NULL)
			abort();
		for (i = 0; i < n; i++)
			if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
				abort();
		if (dflt != NULL && (dflt < ext || dflt > ext + el))
			abort();
		if (dflt != NULL && (n < 7 || (strcmp(name + n - 7,
		    "default") != 0)))
			abort();
		/* The exact name, then at most one per '-', then default. */
		if (++count > el + 2)
			abort();
		if (dash[0] == '\0' && count > 1)
			abort();
	}
	if (dotqmail_owner_names(dash, ext, owner, sizeof(owner), ownerdef,
	    sizeof(ownerdef)) == 0) {
		if (strchr(owner, '/') != NULL ||
		    strchr(ownerdef, '/') != NULL ||
		    strchr(owner + 1, '.') != NULL ||
		    strchr(ownerdef + 1, '.') != NULL)
			abort();
	} else if (owner[0] != '\0' || ownerdef[0] != '\0')
		abort();
}

static const char *
fuzz_env_get(const struct dotqmail_env *env, const char *name)
{
	size_t	 i, n = strlen(name);

	for (i = 0; i < env->n; i++)
		if (strncmp(env->envp[i], name, n) == 0 &&
		    env->envp[i][n] == '=')
			return env->envp[i] + n + 1;
	return NULL;
}

/* s ends with a single '\n' and holds no other. */
static void
fuzz_one_line(const char *s)
{
	const char	*nl;

	if (s == NULL || (nl = strchr(s, '\n')) == NULL || nl[1] != '\0')
		abort();
}

static void
fuzz_env(const char **pc, int flags)
{
	struct dotqmail_envin	 in;
	struct dotqmail_env	*env;
	const char		*v, *host, *h2, *ext, *e2, *local, *rcpt;
	size_t			 i, n;

	if ((env = malloc(sizeof(*env))) == NULL)
		return;
	memset(&in, 0, sizeof(in));
	in.sender = pc[0];
	in.local = pc[1];
	in.host = pc[2];
	in.user = pc[3];
	in.home = pc[4];
	in.ext = pc[5];
	in.dflt = (flags & 4) ? pc[6] : NULL;
	in.newsender = (flags & 8) ? pc[7] : NULL;
	in.date = (time_t)(int32_t)((uint32_t)flags * 2654435761u);
	dotqmail_env_init(env);
	if ((flags & 16) && dotqmail_env_add(env, "PATH", pc[7]) == -1)
		abort();
	if (dotqmail_env_build(env, &in) == -1) {
		free(env);
		return;
	}
	if (env->n > DOTQMAIL_ENV_MAX || env->envp[env->n] != NULL ||
	    env->used > sizeof(env->buf))
		abort();
	for (i = 0; i < env->n; i++) {
		v = env->envp[i];
		if (v < env->buf || v >= env->buf + sizeof(env->buf) ||
		    strchr(v, '=') == NULL || v[0] == '=')
			abort();
	}
	fuzz_one_line(fuzz_env_get(env, "DTLINE"));
	fuzz_one_line(fuzz_env_get(env, "RPLINE"));
	fuzz_one_line(fuzz_env_get(env, "UFLINE"));
	if (strncmp(fuzz_env_get(env, "UFLINE"), "From ", 5) != 0 ||
	    strncmp(fuzz_env_get(env, "DTLINE"), "Delivered-To: ", 14) != 0 ||
	    strncmp(fuzz_env_get(env, "RPLINE"), "Return-Path: <", 14) != 0)
		abort();
	if ((fuzz_env_get(env, "DEFAULT") != NULL) != (in.dflt != NULL))
		abort();
	/* RECIPIENT is LOCAL@HOST. */
	local = fuzz_env_get(env, "LOCAL");
	host = fuzz_env_get(env, "HOST");
	rcpt = fuzz_env_get(env, "RECIPIENT");
	if (local == NULL || host == NULL || rcpt == NULL)
		abort();
	n = strlen(local);
	if (strncmp(rcpt, local, n) != 0 || rcpt[n] != '@' ||
	    strcmp(rcpt + n + 1, host) != 0 || strcmp(host, in.host) != 0)
		abort();
	/* HOSTk is a prefix of HOST(k-1), EXTk a suffix of EXT(k-1). */
	h2 = fuzz_env_get(env, "HOST2");
	if (h2 == NULL || strncmp(host, h2, strlen(h2)) != 0)
		abort();
	ext = fuzz_env_get(env, "EXT");
	e2 = fuzz_env_get(env, "EXT2");
	if (ext == NULL || e2 == NULL || strlen(e2) > strlen(ext) ||
	    strcmp(ext + strlen(ext) - strlen(e2), e2) != 0)
		abort();
	free(env);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*pc[FUZZ_PIECES];
	char		*copy, *p, *end, out[SQ_ADDR_MAX];
	const char	*buf;
	size_t		 len, i;
	int		 flags;

	if (size < 1)
		return 0;
	flags = data[0];
	buf = (const char *)data + 1;
	len = size - 1;

	fuzz_parse(buf, len, flags & 1);

	/* A NUL-terminated copy, cut into pieces at its NULs. */
	if ((copy = malloc(len + 1)) == NULL)
		return 0;
	memcpy(copy, buf, len);
	copy[len] = '\0';
	fuzz_names((flags & 2) ? "" : "-", copy);
	end = copy + len;
	for (i = 0, p = copy; i < FUZZ_PIECES; i++) {
		pc[i] = p;
		if (p < end)
			p += strlen(p) + 1;
		if (p > end)
			p = end;
	}
	fuzz_env(pc, flags);
	if (dotqmail_newsender(pc[0], pc[1], pc[2], flags & 32, flags & 64,
	    out, sizeof(out)) == -1 && out[0] != '\0')
		abort();
	(void)dotqmail_exit_code((int)(int8_t)flags * 3);
	if (dotqmail_exit_code(flags) > DOTQMAIL_EXIT_TEMP)
		abort();
	free(copy);
	return 0;
}
