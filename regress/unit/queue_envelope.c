/*
 * queue/queue_envelope.c: round trips, and a table of malformed envelopes.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqmail.h"
#include "tap.h"
#include "../../queue/queue.h"

static void
envelope_fill(struct envelope *env, size_t nrcpt)
{
	struct rcpt	*r;
	size_t		 i;

	memset(env, 0, sizeof(*env));
	env->id = 1732466340123456ULL;
	env->ctime = 1732466340;
	env->flags = ENV_BOUNCE;
	strlcpy(env->sender, "alice@example.org", sizeof(env->sender));
	strlcpy(env->helo, "client.example.org", sizeof(env->helo));
	strlcpy(env->client, "2001:db8::7", sizeof(env->client));
	strlcpy(env->proto, "ESMTPS", sizeof(env->proto));
	env->size = 123456789;
	env->hash = 0xfedcba9876543210ULL;
	env->nrcpt = nrcpt;
	env->rcpts = calloc(nrcpt, sizeof(*env->rcpts));
	for (i = 0; i < nrcpt; i++) {
		r = &env->rcpts[i];
		snprintf(r->dest.addr, sizeof(r->dest.addr),
		    "user%zu@example.net", i);
		snprintf(r->dest.orig, sizeof(r->dest.orig),
		    "alias%zu@example.net", i);
		r->dest.type = i % 2 ? DEST_REMOTE : DEST_LOCAL;
		r->dest.method = (enum mbox_method)(i % 3);
		strlcpy(r->dest.user, i % 2 ? "" : "joe",
		    sizeof(r->dest.user));
		strlcpy(r->dest.mailbox, i % 2 ? "" : "~/Mail dir/",
		    sizeof(r->dest.mailbox));
		if (i % 3 == 0 && r->dest.type == DEST_LOCAL) {
			/* qmail's identity; i 0: dash "" with no ext */
			r->dest.uid = 1000 + (uid_t)i;
			r->dest.gid = 100;
			strlcpy(r->dest.home, "/home/v joe/",
			    sizeof(r->dest.home));
			r->dest.dotqmail = 1;
			strlcpy(r->dest.dash, i ? "-" : "",
			    sizeof(r->dest.dash));
			strlcpy(r->dest.ext, i ? "Foo-Bar" : "",
			    sizeof(r->dest.ext));
		}
		r->state = (enum rcpt_state)(i % 4);
		r->tries = (uint32_t)i * 3;
		r->last_try = i ? 1732466000 + (time_t)i : 0;
		r->next_try = 1732466340 + (time_t)i * 60;
		if (i % 2)
			snprintf(r->error, sizeof(r->error),
			    " 451 4.3.0 try again (%zu) ", i);
	}
}

static int
envelope_same(const struct envelope *a, const struct envelope *b)
{
	if (a->id != b->id || a->ctime != b->ctime || a->flags != b->flags ||
	    strcmp(a->sender, b->sender) || strcmp(a->helo, b->helo) ||
	    strcmp(a->client, b->client) || strcmp(a->proto, b->proto) ||
	    a->size != b->size || a->hash != b->hash || a->nrcpt != b->nrcpt)
		return 0;
	return memcmp(a->rcpts, b->rcpts, a->nrcpt * sizeof(*a->rcpts)) == 0;
}

static void
roundtrip_keeps_every_field(void)
{
	struct envelope	 env, back;
	char		*buf, *buf2;
	size_t		 len, len2;

	envelope_fill(&env, 9);
	buf = envelope_encode(&env, &len);
	ok(buf != NULL, "encode a full envelope");
	is_int(envelope_decode(buf, len, &back), 0, "decode it back");
	ok(envelope_same(&env, &back), "every field survives the round trip");
	buf2 = envelope_encode(&back, &len2);
	ok(buf2 != NULL && len2 == len && memcmp(buf, buf2, len) == 0,
	    "encoding again gives the same bytes");
	ok(strncmp(buf, "sqmail-envelope 1\n", 18) == 0,
	    "starts with the version line");
	ok(len >= 4 && memcmp(buf + len - 4, "end\n", 4) == 0,
	    "ends with the end line");
	free(buf);
	free(buf2);
	envelope_free(&back);
	ok(back.rcpts == NULL && back.nrcpt == 0, "envelope_free clears");
	envelope_free(&env);
}

static void
roundtrip_null_sender_and_minimal(void)
{
	struct envelope	 env, back;
	char		*buf;
	size_t		 len;

	memset(&env, 0, sizeof(env));
	env.id = 1;
	env.nrcpt = 1;
	env.rcpts = calloc(1, sizeof(*env.rcpts));
	strlcpy(env.rcpts[0].dest.addr, "a@b", sizeof(env.rcpts[0].dest.addr));
	env.rcpts[0].dest.type = DEST_REMOTE;
	buf = envelope_encode(&env, &len);
	ok(buf != NULL, "encode a minimal envelope with the null sender");
	is_str(buf, "sqmail-envelope 1\nid 1\nctime 0\nsender\nsize 0\n"
	    "rcpt\naddr a@b\ntype remote\nstate pending\nend\n",
	    "minimal envelope text");
	is_int(envelope_decode(buf, len, &back), 0, "decodes");
	ok(envelope_same(&env, &back), "null sender round trip");
	is_str(back.sender, "", "sender is empty");
	free(buf);
	envelope_free(&back);
	envelope_free(&env);
}

static void
roundtrip_longest_fields(void)
{
	struct envelope	 env, back;
	char		*buf;
	size_t		 len;

	envelope_fill(&env, 1);
	memset(env.sender, 'x', sizeof(env.sender) - 1);
	memset(env.rcpts[0].dest.addr, 'y', sizeof(env.rcpts[0].dest.addr) - 1);
	memset(env.rcpts[0].dest.mailbox, 'm',
	    sizeof(env.rcpts[0].dest.mailbox) - 1);
	memset(env.rcpts[0].error, 'e', sizeof(env.rcpts[0].error) - 1);
	env.rcpts[0].tries = UINT32_MAX;
	env.size = UINT64_MAX;
	buf = envelope_encode(&env, &len);
	ok(buf != NULL, "encode fields filled to their size");
	is_int(envelope_decode(buf, len, &back), 0, "and decode them");
	ok(envelope_same(&env, &back), "longest fields survive");
	free(buf);
	envelope_free(&back);
	envelope_free(&env);
}

static void
encode_sanitises_error_text(void)
{
	struct envelope	 env, back;
	char		*buf;
	size_t		 len;

	envelope_fill(&env, 1);
	strlcpy(env.rcpts[0].error, "550 no\nsuch\ruser\x01\x7f\xc3\xa9",
	    sizeof(env.rcpts[0].error));
	buf = envelope_encode(&env, &len);
	ok(buf != NULL, "error text with control bytes encodes");
	is_int(envelope_decode(buf, len, &back), 0, "and decodes");
	is_str(back.rcpts[0].error, "550 no?such?user????",
	    "error text stored as printable ASCII");
	free(buf);
	envelope_free(&back);
	envelope_free(&env);
}

static void
encode_refuses_bad_envelopes(void)
{
	struct envelope	 env;
	size_t		 len;

	envelope_fill(&env, 2);
	env.id = 0;
	ok(envelope_encode(&env, &len) == NULL && errno == EINVAL,
	    "id 0 is refused");
	env.id = 7;
	strlcpy(env.sender, "a\nb@c", sizeof(env.sender));
	ok(envelope_encode(&env, &len) == NULL && errno == EINVAL,
	    "newline in the sender is refused");
	strlcpy(env.sender, "a@b", sizeof(env.sender));
	memset(env.helo, 'h', sizeof(env.helo));
	ok(envelope_encode(&env, &len) == NULL && errno == EINVAL,
	    "a field without its NUL is refused");
	env.helo[0] = '\0';
	env.rcpts[1].dest.type = 0;
	ok(envelope_encode(&env, &len) == NULL && errno == EINVAL,
	    "unknown destination type is refused");
	env.rcpts[1].dest.type = DEST_LOCAL;
	env.rcpts[1].state = 9;
	ok(envelope_encode(&env, &len) == NULL && errno == EINVAL,
	    "unknown state is refused");
	env.rcpts[1].state = RCPT_DONE;
	env.flags = 8;
	ok(envelope_encode(&env, &len) == NULL && errno == EINVAL,
	    "unknown flag is refused");
	env.flags = 0;
	env.rcpts[0].dest.addr[0] = '\0';
	ok(envelope_encode(&env, &len) == NULL && errno == EINVAL,
	    "empty recipient address is refused");
	envelope_free(&env);
}

#define HDR	"sqmail-envelope 1\nid 5\nctime 10\nsender s@x\nsize 3\n"
#define RCPT	"rcpt\naddr a@b\ntype local\nstate pending\n"

static const struct {
	const char	*name;
	const char	*text;
	size_t		 len;		/* 0: strlen */
	int		 expect;
} decode_table[] = {
	{ "minimal valid", HDR RCPT "end\n", 0, 0 },
	{ "two recipients", HDR RCPT RCPT "end\n", 0, 0 },
	{ "every optional key", "sqmail-envelope 1\nid 5\nctime 10\nflags 3\n"
	    "sender\nhelo h\nclient c\nproto p\nsize 0\nrcpt\naddr a@b\n"
	    "orig o@b\ntype remote\nuser u\nmethod mbox\nmailbox /m\n"
	    "state bouncing\ntries 4294967295\nlast 1\nnext 2\n"
	    "error 550  two  spaces\nend\n", 0, 0 },
	{ "method none accepted", HDR RCPT "method none\nend\n", 0, 0 },
	{ "content hash", HDR "hash 18446744073709551615\n" RCPT "end\n", 0,
	    0 },
	{ "hash twice", HDR "hash 1\nhash 2\n" RCPT "end\n", 0, -1 },
	{ "hash not a number", HDR "hash 0x12\n" RCPT "end\n", 0, -1 },
	{ "hash past 64 bits", HDR "hash 18446744073709551616\n" RCPT "end\n",
	    0, -1 },
	{ "UTF-8 in an address", "sqmail-envelope 1\nid 5\nctime 10\n"
	    "sender j\xc3\xb6rg@x\nsize 3\n" RCPT "end\n", 0, 0 },
	{ "largest id", "sqmail-envelope 1\nid 18446744073709551615\n"
	    "ctime 10\nsender s@x\nsize 3\n" RCPT "end\n", 0, 0 },
	{ "empty input", "", 0, -1 },
	{ "no version line", "id 5\nctime 10\nsender s@x\nsize 3\n" RCPT
	    "end\n", 0, -1 },
	{ "version 2", "sqmail-envelope 2\nid 5\nctime 10\nsender s@x\n"
	    "size 3\n" RCPT "end\n", 0, -1 },
	{ "version line with a space after", "sqmail-envelope 1 \nid 5\n"
	    "ctime 10\nsender s@x\nsize 3\n" RCPT "end\n", 0, -1 },
	{ "no final newline", HDR RCPT "end", 0, -1 },
	{ "no end line", HDR RCPT, 0, -1 },
	{ "data after end", HDR RCPT "end\nrcpt\n", 0, -1 },
	{ "empty line after end", HDR RCPT "end\n\n", 0, -1 },
	{ "end with a value", HDR RCPT "end x\n", 0, -1 },
	{ "end with a space", HDR RCPT "end \n", 0, -1 },
	{ "rcpt with a space", HDR "rcpt \naddr a@b\ntype local\n"
	    "state pending\nend\n", 0, -1 },
	{ "no recipient", HDR "end\n", 0, -1 },
	{ "empty line", HDR "\n" RCPT "end\n", 0, -1 },
	{ "unknown header key", HDR "color blue\n" RCPT "end\n", 0, -1 },
	{ "unknown recipient key", HDR RCPT "color blue\nend\n", 0, -1 },
	{ "header key in a recipient", HDR RCPT "helo x\nend\n", 0, -1 },
	{ "duplicate id", HDR "id 5\n" RCPT "end\n", 0, -1 },
	{ "duplicate addr", HDR RCPT "addr c@d\nend\n", 0, -1 },
	{ "missing sender", "sqmail-envelope 1\nid 5\nctime 10\nsize 3\n"
	    RCPT "end\n", 0, -1 },
	{ "missing size", "sqmail-envelope 1\nid 5\nctime 10\nsender s@x\n"
	    RCPT "end\n", 0, -1 },
	{ "missing id", "sqmail-envelope 1\nctime 10\nsender s@x\nsize 3\n"
	    RCPT "end\n", 0, -1 },
	{ "recipient without addr", HDR "rcpt\ntype local\nstate pending\n"
	    "end\n", 0, -1 },
	{ "recipient without type", HDR "rcpt\naddr a@b\nstate pending\n"
	    "end\n", 0, -1 },
	{ "recipient without state", HDR "rcpt\naddr a@b\ntype local\n"
	    "end\n", 0, -1 },
	{ "incomplete recipient before the next", HDR "rcpt\naddr a@b\n"
	    RCPT "end\n", 0, -1 },
	{ "empty addr", HDR "rcpt\naddr\ntype local\nstate pending\nend\n",
	    0, -1 },
	{ "id 0", "sqmail-envelope 1\nid 0\nctime 10\nsender s@x\nsize 3\n"
	    RCPT "end\n", 0, -1 },
	{ "id with a leading zero", "sqmail-envelope 1\nid 05\nctime 10\n"
	    "sender s@x\nsize 3\n" RCPT "end\n", 0, -1 },
	{ "id past 64 bits", "sqmail-envelope 1\nid 18446744073709551616\n"
	    "ctime 10\nsender s@x\nsize 3\n" RCPT "end\n", 0, -1 },
	{ "id with a sign", "sqmail-envelope 1\nid +5\nctime 10\n"
	    "sender s@x\nsize 3\n" RCPT "end\n", 0, -1 },
	{ "empty id", "sqmail-envelope 1\nid\nctime 10\nsender s@x\n"
	    "size 3\n" RCPT "end\n", 0, -1 },
	{ "negative ctime", "sqmail-envelope 1\nid 5\nctime -1\n"
	    "sender s@x\nsize 3\n" RCPT "end\n", 0, -1 },
	{ "ctime past time_t", "sqmail-envelope 1\nid 5\n"
	    "ctime 9223372036854775808\nsender s@x\nsize 3\n" RCPT "end\n",
	    0, -1 },
	{ "number with a space", "sqmail-envelope 1\nid 5 \nctime 10\n"
	    "sender s@x\nsize 3\n" RCPT "end\n", 0, -1 },
	{ "unknown flag", "sqmail-envelope 1\nid 5\nctime 10\nflags 4\n"
	    "sender s@x\nsize 3\n" RCPT "end\n", 0, -1 },
	{ "tries past 32 bits", HDR RCPT "tries 4294967296\nend\n", 0, -1 },
	{ "type in capitals", HDR "rcpt\naddr a@b\ntype LOCAL\n"
	    "state pending\nend\n", 0, -1 },
	{ "unknown state", HDR "rcpt\naddr a@b\ntype local\nstate gone\n"
	    "end\n", 0, -1 },
	{ "unknown method", HDR RCPT "method mh\nend\n", 0, -1 },
	{ "carriage return", HDR RCPT "error 550 x\r\nend\n", 0, -1 },
	{ "tab", HDR RCPT "error 550\tx\nend\n", 0, -1 },
	{ "DEL", HDR RCPT "error 550\x7fx\nend\n", 0, -1 },
	{ "8-bit error text", HDR RCPT "error 550 \xc3\xa9\nend\n", 0, -1 },
#define NULTEXT	HDR "rcpt\naddr a\0b\ntype local\nstate pending\nend\n"
	{ "NUL in a value", NULTEXT, sizeof(NULTEXT) - 1, -1 },
	{ "sender longer than its field", "sqmail-envelope 1\nid 5\n"
	    "ctime 10\nsender "
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "\nsize 3\n" RCPT "end\n", 0, -1 },
	{ "qmail identity and extension", HDR RCPT "uid 1000\ngid 100\n"
	    "home /home/joe\ndash -\next Foo-default\nend\n", 0, 0 },
	{ "bare dash: the user's own .qmail", HDR RCPT "dash\nend\n", 0, 0 },
	{ "identity without dash", HDR RCPT "uid 1\ngid 1\nhome /h\nend\n", 0,
	    0 },
	{ "uid without gid and home", HDR RCPT "uid 1000\nend\n", 0, -1 },
	{ "home without gid", HDR RCPT "uid 1\nhome /h\nend\n", 0, -1 },
	{ "relative home", HDR RCPT "uid 1\ngid 1\nhome h\nend\n", 0, -1 },
	{ "empty home", HDR RCPT "uid 1\ngid 1\nhome\nend\n", 0, -1 },
	{ "uid (uid_t)-1", HDR RCPT "uid 4294967295\ngid 1\nhome /h\nend\n",
	    0, -1 },
	{ "dash plus", HDR RCPT "dash +\nend\n", 0, -1 },
	{ "dash twice as long", HDR RCPT "dash --\nend\n", 0, -1 },
	{ "ext without dash", HDR RCPT "ext x\nend\n", 0, -1 },
	{ "user longer than its field", HDR RCPT "user "
	    "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu"
	    "\nend\n", 0, -1 },
};

/* An envelope from before the qmail keys loads with no identity. */
static void
decode_old_envelope_has_no_identity(void)
{
	static const char	 text[] = HDR "rcpt\naddr joe-x@b\ntype local\n"
	    "user joe\nstate pending\nend\n";
	struct envelope		 env;

	is_int(envelope_decode(text, sizeof(text) - 1, &env), 0,
	    "an envelope without uid, gid, home, dash, ext decodes");
	ok(env.nrcpt == 1 && env.rcpts[0].dest.home[0] == '\0' &&
	    env.rcpts[0].dest.uid == 0 && env.rcpts[0].dest.dotqmail == 0 &&
	    strcmp(env.rcpts[0].dest.user, "joe") == 0,
	    "... with no identity and no dash: the agent splits the address");
	envelope_free(&env);
}

/* The identity keys are written only when there is one. */
static void
encode_identity_keys(void)
{
	static const char	 want[] = "sqmail-envelope 1\nid 1\nctime 0\n"
	    "sender\nsize 0\nrcpt\naddr a-B@b\ntype local\nuid 7\ngid 8\n"
	    "home /v/a\ndash -\next B\nstate pending\nend\n";
	struct envelope		 env;
	char			*buf;
	size_t			 len;

	memset(&env, 0, sizeof(env));
	env.id = 1;
	env.nrcpt = 1;
	env.rcpts = calloc(1, sizeof(*env.rcpts));
	strlcpy(env.rcpts[0].dest.addr, "a-B@b",
	    sizeof(env.rcpts[0].dest.addr));
	env.rcpts[0].dest.type = DEST_LOCAL;
	env.rcpts[0].dest.uid = 7;
	env.rcpts[0].dest.gid = 8;
	strlcpy(env.rcpts[0].dest.home, "/v/a",
	    sizeof(env.rcpts[0].dest.home));
	env.rcpts[0].dest.dotqmail = 1;
	strlcpy(env.rcpts[0].dest.dash, "-", sizeof(env.rcpts[0].dest.dash));
	strlcpy(env.rcpts[0].dest.ext, "B", sizeof(env.rcpts[0].dest.ext));
	buf = envelope_encode(&env, &len);
	ok(buf != NULL && len == strlen(want) && memcmp(buf, want, len) == 0,
	    "identity and extension text");
	free(buf);
	strlcpy(env.rcpts[0].dest.home, "v/a",
	    sizeof(env.rcpts[0].dest.home));
	ok(envelope_encode(&env, &len) == NULL, "a relative home is refused");
	strlcpy(env.rcpts[0].dest.home, "/v/a",
	    sizeof(env.rcpts[0].dest.home));
	strlcpy(env.rcpts[0].dest.dash, "+", sizeof(env.rcpts[0].dest.dash));
	ok(envelope_encode(&env, &len) == NULL, "a dash of '+' is refused");
	envelope_free(&env);
}

static void
decode_table_cases(void)
{
	struct envelope	 env;
	size_t		 i, len;
	char		 name[128];
	int		 rc;

	for (i = 0; i < sizeof(decode_table) / sizeof(decode_table[0]); i++) {
		len = decode_table[i].len ? decode_table[i].len :
		    strlen(decode_table[i].text);
		rc = envelope_decode(decode_table[i].text, len, &env);
		snprintf(name, sizeof(name), "decode: %s -> %s",
		    decode_table[i].name,
		    decode_table[i].expect ? "bad" : "ok");
		is_int(rc, decode_table[i].expect, name);
		if (rc == -1)
			ok(env.rcpts == NULL && env.nrcpt == 0 && env.id == 0,
			    "a failed decode leaves the envelope empty");
		else
			envelope_free(&env);
	}
}

static void
decode_reports_why(void)
{
	struct envelope	 env;
	const char	*t = HDR "color blue\n" RCPT "end\n";

	is_int(envelope_decode(t, strlen(t), &env), -1, "unknown key fails");
	is_str(envelope_error(), "line 6: unknown key",
	    "the error names the line");
}

static void
decode_bounds(void)
{
	struct envelope	 env;
	char		*buf, *p;
	size_t		 n, len;
	const char	*rc = "rcpt\naddr a@b\ntype local\nstate done\n";

	/* One octet past ENVELOPE_MAX is refused without a look inside. */
	len = ENVELOPE_MAX + 1;
	buf = malloc(len);
	memset(buf, '\n', len);
	is_int(envelope_decode(buf, len, &env), -1, "longer than ENVELOPE_MAX");
	free(buf);

	/* As many recipients as fit in ENVELOPE_MAX. */
	buf = malloc(ENVELOPE_MAX);
	p = buf;
	p += sprintf(p, "%s", HDR);
	for (n = 0; (size_t)(p - buf) + strlen(rc) + 4 <= ENVELOPE_MAX; n++)
		p += sprintf(p, "%s", rc);
	p += sprintf(p, "end\n");
	is_int(envelope_decode(buf, p - buf, &env), 0,
	    "an envelope of ENVELOPE_MAX octets decodes");
	is_int(env.nrcpt, n, "with every recipient");
	envelope_free(&env);
	free(buf);
}

static void
state_names(void)
{
	is_str(envelope_state_name(RCPT_PENDING), "pending", "pending");
	is_str(envelope_state_name(RCPT_DONE), "done", "done");
	is_str(envelope_state_name(RCPT_FAILED), "failed", "failed");
	is_str(envelope_state_name(RCPT_BOUNCING), "bouncing", "bouncing");
	is_str(envelope_state_name((enum rcpt_state)7), "unknown", "unknown");
}

int
main(void)
{
	roundtrip_keeps_every_field();
	roundtrip_null_sender_and_minimal();
	roundtrip_longest_fields();
	encode_sanitises_error_text();
	encode_refuses_bad_envelopes();
	decode_table_cases();
	decode_old_envelope_has_no_identity();
	encode_identity_keys();
	decode_reports_why();
	decode_bounds();
	state_names();
	return done_testing();
}
