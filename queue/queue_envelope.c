/*
 * The envelope file: a text record, one "key value" per line, written by
 * envelope_encode() and read back by envelope_decode().  Both are pure.
 * The format is described in sqmail-queue(5):
 *
 *	sqmail-envelope 1
 *	id 1732466340123456
 *	ctime 1732466340
 *	sender alice@example.org
 *	size 1234
 *	hash 9876543210987654321
 *	rcpt
 *	addr bob@example.net
 *	type remote
 *	state pending
 *	next 1732466340
 *	end
 *
 * A local recipient that lka found by qmail's rules also has "uid",
 * "gid" and "home" (all three or none), and "dash" (a bare "dash" line
 * for "", or "dash -") with an optional "ext" when its .qmail file is
 * chosen by them.  Envelopes written before these keys existed have
 * none of them and still load: the agent is then found as before.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"
#include "sqmail.h"

struct env_buf {
	char	*buf;
	size_t	 len;
	size_t	 size;
	int	 error;
};

static char	envelope_errbuf[128];

/* Header keys, each at most once, before the first rcpt. */
enum env_hkey {
	HK_ID, HK_CTIME, HK_FLAGS, HK_SENDER, HK_HELO, HK_CLIENT, HK_PROTO,
	HK_SIZE, HK_HASH, HK_COUNT
};
static const char *const env_hkeys[HK_COUNT] = {
	"id", "ctime", "flags", "sender", "helo", "client", "proto", "size",
	"hash"
};

/* Recipient keys, each at most once per block. */
enum env_rkey {
	RK_ADDR, RK_ORIG, RK_TYPE, RK_USER, RK_METHOD, RK_MAILBOX, RK_STATE,
	RK_TRIES, RK_LAST, RK_NEXT, RK_ERROR, RK_UID, RK_GID, RK_HOME,
	RK_DASH, RK_EXT, RK_COUNT
};
static const char *const env_rkeys[RK_COUNT] = {
	"addr", "orig", "type", "user", "method", "mailbox", "state",
	"tries", "last", "next", "error", "uid", "gid", "home", "dash", "ext"
};

static const char *const env_states[] = {
	"pending", "done", "failed", "bouncing"
};
static const char *const env_methods[MBOX_METHODS] = {
	"none", "maildir", "mbox", "program", "file", "include"
};

static void
env_err(size_t line, const char *fmt, ...)
{
	char	 what[96];
	va_list	 ap;

	va_start(ap, fmt);
	(void)vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (line)
		(void)snprintf(envelope_errbuf, sizeof(envelope_errbuf),
		    "line %zu: %s", line, what);
	else
		(void)snprintf(envelope_errbuf, sizeof(envelope_errbuf),
		    "%s", what);
}

const char *
envelope_error(void)
{
	return envelope_errbuf[0] ? envelope_errbuf : "no error";
}

const char *
envelope_state_name(enum rcpt_state s)
{
	if ((unsigned)s < sizeof(env_states) / sizeof(env_states[0]))
		return env_states[s];
	return "unknown";
}

void
envelope_sanitize(char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '\n' || *s == '\t')
			*s = ' ';	/* a report's lines, on one line */
		else if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

void
envelope_free(struct envelope *env)
{
	if (env == NULL)
		return;
	free(env->rcpts);
	env->rcpts = NULL;
	env->nrcpt = 0;
}

void
envelope_made(struct envelope *env, uint64_t id, time_t now, const char *helo,
    const char *proto, const struct dest *dests, size_t ndest)
{
	size_t	 i;

	env->id = id;
	env->ctime = now;
	(void)strlcpy(env->helo, helo, sizeof(env->helo));
	envelope_sanitize(env->helo);
	(void)strlcpy(env->proto, proto, sizeof(env->proto));
	env->nrcpt = ndest;
	for (i = 0; i < ndest; i++) {
		memset(&env->rcpts[i], 0, sizeof(env->rcpts[i]));
		env->rcpts[i].dest = dests[i];
		env->rcpts[i].state = RCPT_PENDING;
		env->rcpts[i].next_try = now;
	}
}

/*
 * Encoding.
 */

static void
eb_add(struct env_buf *b, const char *s, size_t n)
{
	char	*nb;
	size_t	 nsize;

	if (b->error)
		return;
	if (b->size - b->len < n) {
		nsize = b->size ? b->size : 1024;
		while (nsize - b->len < n) {
			if (nsize > SIZE_MAX / 2) {
				b->error = ENOMEM;
				return;
			}
			nsize *= 2;
		}
		if ((nb = realloc(b->buf, nsize)) == NULL) {
			b->error = ENOMEM;
			return;
		}
		b->buf = nb;
		b->size = nsize;
	}
	memcpy(b->buf + b->len, s, n);
	b->len += n;
}

static void
eb_key(struct env_buf *b, const char *key)
{
	eb_add(b, key, strlen(key));
}

/* A string field: must end within its array and hold no control byte. */
static void
eb_str(struct env_buf *b, const char *key, const char *val, size_t size,
    int always)
{
	size_t	 n, i;

	if ((n = strnlen(val, size)) == size) {
		b->error = EINVAL;
		return;
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)val[i] < 0x20 || val[i] == 0x7f) {
			b->error = EINVAL;
			return;
		}
	if (n == 0 && !always)
		return;
	eb_key(b, key);
	if (n > 0) {
		eb_add(b, " ", 1);
		eb_add(b, val, n);
	}
	eb_add(b, "\n", 1);
}

/* Error text: whatever it holds, stored as printable ASCII. */
static void
eb_text(struct env_buf *b, const char *key, const char *val, size_t size)
{
	char	 c;
	size_t	 n, i;

	n = strnlen(val, size);
	if (n == size)
		n--;
	if (n == 0)
		return;
	eb_key(b, key);
	eb_add(b, " ", 1);
	for (i = 0; i < n; i++) {
		c = val[i];
		if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
			c = '?';
		eb_add(b, &c, 1);
	}
	eb_add(b, "\n", 1);
}

static void
eb_num(struct env_buf *b, const char *key, uint64_t v, int always)
{
	char	 num[32];
	int	 n;

	if (v == 0 && !always)
		return;
	n = snprintf(num, sizeof(num), "%s %llu\n", key,
	    (unsigned long long)v);
	eb_add(b, num, n);
}

static void
eb_time(struct env_buf *b, const char *key, time_t t, int always)
{
	if (t < 0) {
		b->error = EINVAL;
		return;
	}
	eb_num(b, key, (uint64_t)t, always);
}

static void
eb_word(struct env_buf *b, const char *key, const char *word)
{
	eb_key(b, key);
	eb_add(b, " ", 1);
	eb_key(b, word);
	eb_add(b, "\n", 1);
}

char *
envelope_encode(const struct envelope *env, size_t *lenp)
{
	struct env_buf		 b;
	const struct rcpt	*r;
	size_t			 i;

	memset(&b, 0, sizeof(b));
	if (env->id == 0 || (env->flags & ~(ENV_BOUNCE | ENV_DBOUNCE)) ||
	    env->nrcpt > QUEUE_RCPT_MAX || (env->nrcpt && env->rcpts == NULL)) {
		errno = EINVAL;
		return NULL;
	}
	eb_key(&b, ENVELOPE_VERSION "\n");
	eb_num(&b, "id", env->id, 1);
	eb_time(&b, "ctime", env->ctime, 1);
	eb_num(&b, "flags", env->flags, 0);
	eb_str(&b, "sender", env->sender, sizeof(env->sender), 1);
	eb_str(&b, "helo", env->helo, sizeof(env->helo), 0);
	eb_str(&b, "client", env->client, sizeof(env->client), 0);
	eb_str(&b, "proto", env->proto, sizeof(env->proto), 0);
	eb_num(&b, "size", env->size, 1);
	eb_num(&b, "hash", env->hash, 0);
	for (i = 0; i < env->nrcpt && !b.error; i++) {
		r = &env->rcpts[i];
		if ((r->dest.type != DEST_LOCAL &&
		    r->dest.type != DEST_REMOTE) ||
		    (unsigned)r->dest.method >= MBOX_METHODS ||
		    (unsigned)r->state >= 4 ||
		    r->dest.addr[0] == '\0') {
			b.error = EINVAL;
			break;
		}
		eb_key(&b, "rcpt\n");
		eb_str(&b, "addr", r->dest.addr, sizeof(r->dest.addr), 1);
		eb_str(&b, "orig", r->dest.orig, sizeof(r->dest.orig), 0);
		eb_word(&b, "type",
		    r->dest.type == DEST_LOCAL ? "local" : "remote");
		eb_str(&b, "user", r->dest.user, sizeof(r->dest.user), 0);
		if (r->dest.method != MBOX_NONE)
			eb_word(&b, "method", env_methods[r->dest.method]);
		eb_str(&b, "mailbox", r->dest.mailbox,
		    sizeof(r->dest.mailbox), 0);
		if (r->dest.home[0] != '\0') {
			if (r->dest.home[0] != '/' ||
			    r->dest.uid == (uid_t)-1 ||
			    r->dest.gid == (gid_t)-1) {
				b.error = EINVAL;
				break;
			}
			eb_num(&b, "uid", r->dest.uid, 1);
			eb_num(&b, "gid", r->dest.gid, 1);
			eb_str(&b, "home", r->dest.home,
			    sizeof(r->dest.home), 1);
		}
		if (r->dest.dotqmail) {
			if (r->dest.dash[0] != '\0' &&
			    strcmp(r->dest.dash, "-") != 0) {
				b.error = EINVAL;
				break;
			}
			eb_str(&b, "dash", r->dest.dash,
			    sizeof(r->dest.dash), 1);
			eb_str(&b, "ext", r->dest.ext, sizeof(r->dest.ext),
			    0);
		}
		eb_word(&b, "state", env_states[r->state]);
		eb_num(&b, "tries", r->tries, 0);
		eb_time(&b, "last", r->last_try, 0);
		eb_time(&b, "next", r->next_try, 0);
		eb_text(&b, "error", r->error, sizeof(r->error));
	}
	eb_key(&b, "end\n");
	if (b.error) {
		free(b.buf);
		errno = b.error;
		return NULL;
	}
	*lenp = b.len;
	return b.buf;
}

/*
 * Decoding.
 */

/* Decimal, no sign, no leading zero (but "0"), at most max. */
static int
env_number(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t	 v = 0;
	size_t		 i;

	if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

static int
env_time(const char *s, size_t n, time_t *out)
{
	uint64_t	 v;

	if (env_number(s, n, INT64_MAX, &v) == -1)
		return -1;
	*out = (time_t)v;
	return 0;
}

static int
env_string(const char *s, size_t n, char *out, size_t size)
{
	if (n >= size)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

static int
env_word(const char *s, size_t n, const char *const *words, size_t nwords,
    int *out)
{
	size_t	 i;

	for (i = 0; i < nwords; i++)
		if (strlen(words[i]) == n && memcmp(words[i], s, n) == 0) {
			*out = (int)i;
			return 0;
		}
	return -1;
}

static int
env_rcpt_add(struct envelope *env, size_t *cap)
{
	struct rcpt	*nr;
	size_t		 ncap;

	if (env->nrcpt >= QUEUE_RCPT_MAX)
		return -1;
	if (env->nrcpt == *cap) {
		ncap = *cap ? *cap * 2 : 4;
		if (ncap > QUEUE_RCPT_MAX)
			ncap = QUEUE_RCPT_MAX;
		nr = reallocarray(env->rcpts, ncap, sizeof(*nr));
		if (nr == NULL)
			return -1;
		env->rcpts = nr;
		*cap = ncap;
	}
	memset(&env->rcpts[env->nrcpt], 0, sizeof(env->rcpts[0]));
	env->nrcpt++;
	return 0;
}

static int
env_header(struct envelope *env, int k, const char *v, size_t vl)
{
	uint64_t	 u;

	switch (k) {
	case HK_ID:
		if (env_number(v, vl, UINT64_MAX, &env->id) == -1 ||
		    env->id == 0)
			return -1;
		return 0;
	case HK_CTIME:
		return env_time(v, vl, &env->ctime);
	case HK_FLAGS:
		if (env_number(v, vl, ENV_BOUNCE | ENV_DBOUNCE, &u) == -1)
			return -1;
		env->flags = (uint32_t)u;
		return 0;
	case HK_SENDER:
		return env_string(v, vl, env->sender, sizeof(env->sender));
	case HK_HELO:
		return env_string(v, vl, env->helo, sizeof(env->helo));
	case HK_CLIENT:
		return env_string(v, vl, env->client, sizeof(env->client));
	case HK_PROTO:
		return env_string(v, vl, env->proto, sizeof(env->proto));
	case HK_SIZE:
		return env_number(v, vl, UINT64_MAX, &env->size);
	case HK_HASH:
		return env_number(v, vl, UINT64_MAX, &env->hash);
	}
	return -1;
}

static int
env_rcpt(struct rcpt *r, int k, const char *v, size_t vl)
{
	uint64_t	 u;
	int		 w;

	switch (k) {
	case RK_ADDR:
		if (vl == 0)
			return -1;
		return env_string(v, vl, r->dest.addr, sizeof(r->dest.addr));
	case RK_ORIG:
		return env_string(v, vl, r->dest.orig, sizeof(r->dest.orig));
	case RK_TYPE:
		if (vl == 5 && memcmp(v, "local", 5) == 0)
			r->dest.type = DEST_LOCAL;
		else if (vl == 6 && memcmp(v, "remote", 6) == 0)
			r->dest.type = DEST_REMOTE;
		else
			return -1;
		return 0;
	case RK_USER:
		return env_string(v, vl, r->dest.user, sizeof(r->dest.user));
	case RK_METHOD:
		/* "none" is the default: never written, but accepted. */
		if (env_word(v, vl, env_methods, MBOX_METHODS, &w) == -1)
			return -1;
		r->dest.method = (enum mbox_method)w;
		return 0;
	case RK_MAILBOX:
		return env_string(v, vl, r->dest.mailbox,
		    sizeof(r->dest.mailbox));
	case RK_STATE:
		if (env_word(v, vl, env_states, 4, &w) == -1)
			return -1;
		r->state = (enum rcpt_state)w;
		return 0;
	case RK_TRIES:
		if (env_number(v, vl, UINT32_MAX, &u) == -1)
			return -1;
		r->tries = (uint32_t)u;
		return 0;
	case RK_LAST:
		return env_time(v, vl, &r->last_try);
	case RK_NEXT:
		return env_time(v, vl, &r->next_try);
	case RK_UID:
		if (env_number(v, vl, UINT32_MAX - 1, &u) == -1)
			return -1;
		r->dest.uid = (uid_t)u;
		return 0;
	case RK_GID:
		if (env_number(v, vl, UINT32_MAX - 1, &u) == -1)
			return -1;
		r->dest.gid = (gid_t)u;
		return 0;
	case RK_HOME:
		if (vl == 0 || v[0] != '/')
			return -1;
		return env_string(v, vl, r->dest.home, sizeof(r->dest.home));
	case RK_DASH:
		if (vl > 1 || (vl == 1 && v[0] != '-'))
			return -1;
		r->dest.dotqmail = 1;
		return env_string(v, vl, r->dest.dash, sizeof(r->dest.dash));
	case RK_EXT:
		return env_string(v, vl, r->dest.ext, sizeof(r->dest.ext));
	case RK_ERROR:
		/* Written as printable ASCII: nothing else is accepted. */
		for (w = 0; (size_t)w < vl; w++)
			if ((unsigned char)v[w] >= 0x7f)
				return -1;
		return env_string(v, vl, r->error, sizeof(r->error));
	}
	return -1;
}

/* The keys a recipient block must have. */
#define RK_REQUIRED	((1U << RK_ADDR) | (1U << RK_TYPE) | (1U << RK_STATE))
/* The identity keys: all or none. */
#define RK_IDENTITY	((1U << RK_UID) | (1U << RK_GID) | (1U << RK_HOME))

/* Whether a recipient block has what it must, and nothing half. */
static int
env_rcpt_complete(unsigned seen)
{
	if ((seen & RK_REQUIRED) != RK_REQUIRED)
		return 0;
	if ((seen & RK_IDENTITY) != 0 && (seen & RK_IDENTITY) != RK_IDENTITY)
		return 0;
	if ((seen & (1U << RK_EXT)) && !(seen & (1U << RK_DASH)))
		return 0;
	return 1;
}
#define HK_REQUIRED	((1U << HK_ID) | (1U << HK_CTIME) | \
			 (1U << HK_SENDER) | (1U << HK_SIZE))

static int
env_decode(const char *buf, size_t len, struct envelope *env)
{
	const char	*p, *nl, *end, *key, *val;
	size_t		 line = 0, kl, vl, i, cap = 0, vers;
	unsigned	 seen_h = 0, seen_r = 0;
	int		 k, in_rcpt = 0, ended = 0, bare;

	if (len > ENVELOPE_MAX) {
		env_err(0, "longer than %d octets", ENVELOPE_MAX);
		return -1;
	}
	if (len == 0 || buf[len - 1] != '\n') {
		env_err(0, "does not end with a newline");
		return -1;
	}
	vers = strlen(ENVELOPE_VERSION);
	if (len < vers + 1 || memcmp(buf, ENVELOPE_VERSION, vers) != 0 ||
	    buf[vers] != '\n') {
		env_err(1, "not a version 1 envelope");
		return -1;
	}
	line = 1;
	p = buf + vers + 1;
	end = buf + len;
	for (; p < end; p = nl + 1) {
		line++;
		/* Never NULL: buf ends with a newline. */
		nl = memchr(p, '\n', end - p);
		if (ended) {
			env_err(line, "data after end");
			return -1;
		}
		for (i = 0; i < (size_t)(nl - p); i++)
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
				env_err(line, "control character");
				return -1;
			}
		key = p;
		if ((val = memchr(p, ' ', nl - p)) != NULL) {
			kl = val - p;
			val++;
			vl = nl - val;
			bare = 0;
		} else {
			kl = nl - p;
			val = nl;
			vl = 0;
			bare = 1;
		}
		if (bare && kl == 3 && memcmp(key, "end", 3) == 0) {
			ended = 1;
			continue;
		}
		if (bare && kl == 4 && memcmp(key, "rcpt", 4) == 0) {
			if ((seen_h & HK_REQUIRED) != HK_REQUIRED) {
				env_err(line, "header incomplete");
				return -1;
			}
			if (in_rcpt && !env_rcpt_complete(seen_r)) {
				env_err(line, "recipient incomplete");
				return -1;
			}
			if (env_rcpt_add(env, &cap) == -1) {
				env_err(line, "too many recipients");
				return -1;
			}
			in_rcpt = 1;
			seen_r = 0;
			continue;
		}
		if (!in_rcpt) {
			for (k = 0; k < HK_COUNT; k++)
				if (strlen(env_hkeys[k]) == kl &&
				    memcmp(env_hkeys[k], key, kl) == 0)
					break;
			if (k == HK_COUNT) {
				env_err(line, "unknown key");
				return -1;
			}
			if (seen_h & (1U << k)) {
				env_err(line, "%s given twice", env_hkeys[k]);
				return -1;
			}
			seen_h |= 1U << k;
			if (env_header(env, k, val, vl) == -1) {
				env_err(line, "bad %s", env_hkeys[k]);
				return -1;
			}
		} else {
			for (k = 0; k < RK_COUNT; k++)
				if (strlen(env_rkeys[k]) == kl &&
				    memcmp(env_rkeys[k], key, kl) == 0)
					break;
			if (k == RK_COUNT) {
				env_err(line, "unknown key");
				return -1;
			}
			if (seen_r & (1U << k)) {
				env_err(line, "%s given twice", env_rkeys[k]);
				return -1;
			}
			seen_r |= 1U << k;
			if (env_rcpt(&env->rcpts[env->nrcpt - 1], k, val,
			    vl) == -1) {
				env_err(line, "bad %s", env_rkeys[k]);
				return -1;
			}
		}
	}
	if (!ended) {
		env_err(line, "no end line");
		return -1;
	}
	if (!in_rcpt) {
		env_err(line, "no recipient");
		return -1;
	}
	if (!env_rcpt_complete(seen_r)) {
		env_err(line, "recipient incomplete");
		return -1;
	}
	return 0;
}

int
envelope_decode(const char *buf, size_t len, struct envelope *env)
{
	struct rcpt	*r;

	memset(env, 0, sizeof(*env));
	envelope_errbuf[0] = '\0';
	if (env_decode(buf, len, env) == -1) {
		envelope_free(env);
		memset(env, 0, sizeof(*env));
		return -1;
	}
	/* Give back what the doubling left over. */
	if ((r = reallocarray(env->rcpts, env->nrcpt, sizeof(*r))) != NULL)
		env->rcpts = r;
	return 0;
}
