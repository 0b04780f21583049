/*
 * lka/aliases.c and lka/table_aliases.c: the aliases(5) parser
 * (table-driven, errors with their lines), target lists as lka and the
 * agent read them, and newaliases' build into a cdb that an aliases
 * table maps again when it changes.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lka/aliases.h"
#include "../../lka/table.h"
#include "config.h"
#include "tap.h"

struct parse_case {
	const char	*name;
	const char	*in;
	int		 ok;
	size_t		 errline;	/* when it fails */
	const char	*errstr;	/* substring of the message */
	size_t		 n;		/* entries, when it parses */
	const char	*key, *val;	/* one entry and its stored value */
};

static const struct parse_case parse_cases[] = {
	{ "simple_entry", "postmaster: root\n", 1, 0, NULL, 1,
	    "postmaster", "root" },
	{ "names_are_lowercased", "PostMaster: Root\n", 1, 0, NULL, 1,
	    "postmaster", "Root" },
	{ "several_targets", "a: b, c@d.example ,<e@f.example>\n", 1, 0,
	    NULL, 1, "a", "b, c@d.example, e@f.example" },
	{ "continuation_lines_and_comments_inside",
	    "a: b,\n  # note\n\tc,\n   d\n", 1, 0, NULL, 1, "a", "b, c, d" },
	{ "comments_and_blank_lines", "# x\n\n  \n  # y\na: b\n", 1, 0, NULL,
	    1, "a", "b" },
	{ "quoted_program_keeps_comma", "a: \"|/bin/prog x,y\"\n", 1, 0,
	    NULL, 1, "a", "\"|/bin/prog x,y\"" },
	{ "unquoted_program", "a: |/usr/bin/prog arg\n", 1, 0, NULL, 1, "a",
	    "\"|/usr/bin/prog arg\"" },
	{ "file_maildir_include", "a: /var/mail/a, /srv/md/, "
	    ":include:/etc/list\n", 1, 0, NULL, 1, "a",
	    "/var/mail/a, /srv/md/, :include:/etc/list" },
	{ "quoted_name_dot_string", "\"Abuse\": a\n", 1, 0, NULL, 1,
	    "abuse", "a" },
	{ "quoted_name_with_space", "\"John Doe\": j\n", 1, 0, NULL, 1,
	    "\"john doe\"", "j" },
	{ "quoted_local_part_target", "a: \"j d\"@x.example\n", 1, 0, NULL,
	    1, "a", "\"j d\"@x.example" },
	{ "crlf_lines", "a: b\r\nc: d\r\n", 1, 0, NULL, 2, "c", "d" },
	{ "last_line_without_newline", "a: b\nc: d", 1, 0, NULL, 2, "c",
	    "d" },
	{ "bracketed_local_name_like_a_program", "/: <|>, </x>\n", 1, 0, NULL,
	    1, "/", "<|>, </x>" },
	{ "empty_file", "", 1, 0, NULL, 0, NULL, NULL },
	{ "duplicate_name", "a: b\nx: y\nA: c\n", 0, 3, "given twice (first "
	    "at line 1)", 0, NULL, NULL },
	{ "missing_colon", "a: b\nab c\n", 0, 2, "missing ':'", 0, NULL,
	    NULL },
	{ "continuation_first", "  a: b\n", 0, 1, "continuation", 0, NULL,
	    NULL },
	{ "no_targets", "a:\n", 0, 1, "no targets", 0, NULL, NULL },
	{ "name_with_at", "a@b: c\n", 0, 1, "without '@'", 0, NULL, NULL },
	{ "unterminated_quote", "a: b\nc: \"|x\n", 0, 2, "unterminated",
	    0, NULL, NULL },
	{ "text_after_quote", "a: \"|x\" y\n", 0, 1, "after a quoted", 0,
	    NULL, NULL },
	{ "empty_program", "a: |\n", 0, 1, "without a command", 0, NULL,
	    NULL },
	{ "relative_include", "a: :include:etc/list\n", 0, 1, "absolute",
	    0, NULL, NULL },
	{ "bad_address", "a: b@@c\n", 0, 1, "bad address", 0, NULL, NULL },
	{ "control_octet", "a: b\001c\n", 0, 1, "control", 0, NULL, NULL },
	{ "error_line_of_a_continued_entry", "a: b\nc: d,\n\te@@f\n", 0, 2,
	    "bad address", 0, NULL, NULL },
};

static void
test_parse(void)
{
	const struct parse_case	*c;
	const struct aliases_ent *e;
	struct aliases		*al;
	struct aliases_err	 err;
	char			 name[160];
	size_t			 i;
	int			 r;

	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		c = &parse_cases[i];
		r = aliases_parse(c->in, strlen(c->in), &al, &err);
		if (!c->ok) {
			(void)snprintf(name, sizeof(name), "%s: fails at line "
			    "%zu with \"%s\"", c->name, c->errline, c->errstr);
			ok(r == -1 && al == NULL && err.line == c->errline &&
			    strstr(err.msg, c->errstr) != NULL, name);
			if (r != -1 || err.line != c->errline ||
			    strstr(err.msg, c->errstr) == NULL)
				printf("#   got %d line %zu \"%s\"\n", r,
				    err.line, err.msg);
			continue;
		}
		(void)snprintf(name, sizeof(name), "%s: parses", c->name);
		if (!ok(r == 0 && al->n == c->n, name)) {
			printf("#   got %d line %zu \"%s\"\n", r, err.line,
			    err.msg);
			continue;
		}
		if (c->key != NULL) {
			e = aliases_get(al, c->key);
			(void)snprintf(name, sizeof(name), "%s: %s -> %s",
			    c->name, c->key, c->val);
			ok(e != NULL && strcmp(e->val, c->val) == 0, name);
			if (e != NULL && strcmp(e->val, c->val) != 0)
				printf("#   got \"%s\"\n", e->val);
		}
		aliases_free(al);
	}
}

static void
test_targets(void)
{
	struct alias_targets	*tl;
	const char		*errstr;
	const char		*v = "a, \"|/bin/x \\\"q\\\" y,z\", /f, /d/, "
	    ":Include: /inc";

	if ((tl = malloc(sizeof(*tl))) == NULL)
		exit(2);
	tl->n = tl->used = 0;
	ok(aliases_targets(v, strlen(v), tl, &errstr) == 0 && tl->n == 5,
	    "a value with every target type reads as five targets");
	ok(tl->t[0].type == ALIAS_ADDR && strcmp(tl->t[0].arg, "a") == 0,
	    "a bare local name is an address");
	ok(tl->t[1].type == ALIAS_PROGRAM &&
	    strcmp(tl->t[1].arg, "/bin/x \"q\" y,z") == 0,
	    "a quoted program keeps its quotes (escaped) and comma");
	ok(tl->t[2].type == ALIAS_FILE && tl->t[3].type == ALIAS_FILE &&
	    strcmp(tl->t[3].arg, "/d/") == 0, "files, a Maildir with its '/'");
	ok(tl->t[4].type == ALIAS_INCLUDE && strcmp(tl->t[4].arg, "/inc") == 0,
	    ":include: is case-insensitive, its path trimmed");
	tl->n = tl->used = 0;
	ok(aliases_targets("a,,b,", 5, tl, &errstr) == 0 && tl->n == 2,
	    "empty items are skipped");
	free(tl);
}

static char	 scratch[64];

static void
write_file(const char *name, const char *text)
{
	char	 path[PATH_MAX];
	FILE	*f;

	(void)snprintf(path, sizeof(path), "%s/%s", scratch, name);
	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF ||
	    fclose(f) == EOF)
		exit(2);
}

static void
test_build(void)
{
	struct table	 t;
	struct stat	 st;
	char		 src[PATH_MAX], db[PATH_MAX], err[512], val[4097];
	size_t		 n;
	uid_t		 uid;

	(void)snprintf(src, sizeof(src), "%s/aliases", scratch);
	(void)snprintf(db, sizeof(db), "%s/aliases.cdb", scratch);
	memset(&t, 0, sizeof(t));
	(void)strlcpy(t.name, "al", sizeof(t.name));
	t.type = TABLE_ALIASES;
	(void)strlcpy(t.path, src, sizeof(t.path));

	write_file("aliases", "postmaster: root\n");
	ok(table_open(&t) == 0, "an aliases table opens without a database");
	ok(table_lookup(&t, "postmaster", val, sizeof(val)) == -1,
	    "without a database a lookup fails temporarily");
	ok(table_aliases_build(src, &n, err, sizeof(err)) == 0 && n == 1,
	    "newaliases builds the database");
	ok(stat(db, &st) == 0 && (st.st_mode & 0777) == 0644,
	    "the database is mode 0644");
	ok(table_lookup(&t, "PostMaster", val, sizeof(val)) == 1 &&
	    strcmp(val, "root") == 0, "the open table finds the new database");
	ok(table_owner(&t, &uid) == 0 && uid == geteuid(),
	    "the table's owner is its source's");

	write_file("aliases", "postmaster: admin\nabuse: \"|/bin/x a,b\"\n");
	ok(table_aliases_build(src, &n, err, sizeof(err)) == 0 && n == 2,
	    "newaliases rebuilds it");
	ok(table_lookup(&t, "postmaster", val, sizeof(val)) == 1 &&
	    strcmp(val, "admin") == 0, "the open table maps the rebuilt "
	    "database at the next lookup");
	ok(table_lookup(&t, "abuse", val, sizeof(val)) == 1 &&
	    strcmp(val, "\"|/bin/x a,b\"") == 0, "a quoted program value");

	write_file("aliases", "postmaster: x\nbad line\n");
	ok(table_aliases_build(src, &n, err, sizeof(err)) == -1 &&
	    strstr(err, "/aliases:2: missing ':'") != NULL,
	    "an error names file:line");
	if (strstr(err, "/aliases:2: missing ':'") == NULL)
		printf("#   got \"%s\"\n", err);
	ok(table_lookup(&t, "postmaster", val, sizeof(val)) == 1 &&
	    strcmp(val, "admin") == 0, "after an error the old database "
	    "stays");
	table_close(&t);
	(void)unlink(src);
	(void)unlink(db);
}

int
main(void)
{
	(void)strlcpy(scratch, "/tmp/sqmail-aliases.XXXXXX", sizeof(scratch));
	if (mkdtemp(scratch) == NULL)
		return 2;
	test_parse();
	test_targets();
	test_build();
	(void)rmdir(scratch);
	return done_testing();
}
