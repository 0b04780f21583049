/*
 * lka/table*.c: the file-table parser (table-driven, malformed lines
 * included), file and cdb tables opened from a scratch directory, and the
 * reopen-on-reload bookkeeping.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <cdb.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lka/table.h"
#include "config.h"
#include "tap.h"

static char	 scratch[64];

/* One parser case: input, then either an error or key=value checks. */
struct parse_case {
	const char	*name;
	const char	*in;
	size_t		 inlen;		/* 0: strlen(in) */
	int		 ok;		/* expected result: 1 parses, 0 fails */
	size_t		 errline;	/* when it fails */
	const char	*errstr;	/* substring of the error */
	size_t		 nents;		/* when it parses */
	const char	*k1, *v1;	/* a lookup, its value (NULL: absent) */
	const char	*k2, *v2;
	size_t		 dupline;
};

static const struct parse_case parse_cases[] = {
	{ "space_separates_key_and_value", "alice bob\n", 0, 1, 0, NULL,
	    1, "alice", "bob", "bob", NULL, 0 },
	{ "colon_separates_key_and_value", "alice:bob\n", 0, 1, 0, NULL,
	    1, "alice", "bob", NULL, NULL, 0 },
	{ "colon_and_space_separate", "Postmaster:  root, admin@x.example  \n",
	    0, 1, 0, NULL, 1, "postmaster", "root, admin@x.example",
	    "Postmaster", NULL, 0 },
	{ "space_before_colon_is_skipped", "key  :  v  \n", 0, 1, 0, NULL,
	    1, "key", "v", NULL, NULL, 0 },
	{ "keys_are_lowercased_values_keep_case", "MiXeD VaLuE\n", 0, 1, 0,
	    NULL, 1, "mixed", "VaLuE", NULL, NULL, 0 },
	{ "key_alone_is_a_list_entry", "listed\n", 0, 1, 0, NULL,
	    1, "listed", "", NULL, NULL, 0 },
	{ "key_with_colon_and_nothing_else", "listed:\n", 0, 1, 0, NULL,
	    1, "listed", "", NULL, NULL, 0 },
	{ "last_line_without_newline", "a 1\nb 2", 0, 1, 0, NULL,
	    2, "a", "1", "b", "2", 0 },
	{ "last_key_without_newline_or_value", "a 1\nb", 0, 1, 0, NULL,
	    2, "b", "", "a", "1", 0 },
	{ "comments_and_blank_lines_ignored",
	    "# a comment\n\n   \n\t\n  # indented comment\nk v\n", 0, 1, 0,
	    NULL, 1, "k", "v", "#", NULL, 0 },
	{ "hash_inside_value_is_kept", "k v # not a comment\n", 0, 1, 0,
	    NULL, 1, "k", "v # not a comment", NULL, NULL, 0 },
	{ "crlf_line_ends", "a 1\r\nb\r\n", 0, 1, 0, NULL,
	    2, "a", "1", "b", "", 0 },
	{ "tab_separates", "a\t\tb c\n", 0, 1, 0, NULL,
	    1, "a", "b c", NULL, NULL, 0 },
	{ "value_keeps_inner_colons", "a:b:c\n", 0, 1, 0, NULL,
	    1, "a", "b:c", NULL, NULL, 0 },
	{ "eight_bit_octets_pass", "caf\xc3\xa9 th\xc3\xa9\n", 0, 1, 0, NULL,
	    1, "caf\xc3\xa9", "th\xc3\xa9", NULL, NULL, 0 },
	{ "duplicate_key_first_wins", "a 1\nb 2\nA 3\na 4\n", 0, 1, 0, NULL,
	    2, "a", "1", "b", "2", 3 },
	{ "empty_input", "", 0, 1, 0, NULL, 0, "a", NULL, NULL, NULL, 0 },
	{ "only_comments", "#\n#\n", 0, 1, 0, NULL, 0, "#", NULL, NULL, NULL,
	    0 },
	{ "empty_key_is_malformed", "a 1\n:v\n", 0, 0, 2, "empty key",
	    0, NULL, NULL, NULL, NULL, 0 },
	{ "continuation_line_is_malformed", "a b,\n  c\n", 0, 0, 2,
	    "continuation", 0, NULL, NULL, NULL, NULL, 0 },
	{ "control_byte_is_malformed", "a b\x01\n", 0, 0, 1, "control",
	    0, NULL, NULL, NULL, NULL, 0 },
	{ "del_is_malformed", "\n\n\nbad\x7f", 0, 0, 4, "control",
	    0, NULL, NULL, NULL, NULL, 0 },
	{ "lone_cr_is_malformed", "x y\rz\n", 0, 0, 1, "control",
	    0, NULL, NULL, NULL, NULL, 0 },
	{ "nul_byte_is_malformed", "ok 1\na\0b\n", 9, 0, 2, "NUL",
	    0, NULL, NULL, NULL, NULL, 0 },
	{ "escape_in_key_is_malformed", "\x1b[31m x\n", 0, 0, 1, "control",
	    0, NULL, NULL, NULL, NULL, 0 },
};

static void
test_parse_cases(void)
{
	const struct parse_case	*c;
	struct table_file	*tf;
	const char		*errstr, *v;
	char			 name[160];
	size_t			 i, errline, len;
	int			 r;

	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		c = &parse_cases[i];
		len = c->inlen ? c->inlen : strlen(c->in);
		errstr = NULL;
		r = table_file_parse(c->in, len, &tf, &errline, &errstr);
		(void)snprintf(name, sizeof(name), "parse_%s", c->name);
		if (!c->ok) {
			ok(r == -1 && tf == NULL && errline == c->errline &&
			    errstr != NULL && strstr(errstr, c->errstr) != NULL,
			    name);
			if (r == -1)
				printf("#   line %zu: %s\n", errline, errstr);
			continue;
		}
		if (!ok(r == 0 && tf != NULL, name)) {
			printf("#   line %zu: %s\n", errline,
			    errstr ? errstr : "");
			continue;
		}
		is_int(tf->nents, c->nents, name);
		if (c->k1 != NULL) {
			v = table_file_get(tf, c->k1);
			is_str(v, c->v1, name);
		}
		if (c->k2 != NULL) {
			v = table_file_get(tf, c->k2);
			is_str(v, c->v2, name);
		}
		is_int(tf->dupline, c->dupline, name);
		table_file_free(tf);
	}
}

static void
test_parse_limits(void)
{
	struct table_file	*tf;
	const char		*errstr;
	char			*buf;
	size_t			 errline, n, i;

	/* A line of exactly TABLE_LINE_MAX octets passes, one more fails. */
	buf = malloc(TABLE_LINE_MAX + 3);
	memset(buf, 'x', TABLE_LINE_MAX + 2);
	buf[0] = 'k';
	buf[1] = ' ';
	buf[TABLE_LINE_MAX] = '\n';
	ok(table_file_parse(buf, TABLE_LINE_MAX + 1, &tf, &errline,
	    &errstr) == 0 && tf->nents == 1 &&
	    strlen(table_file_get(tf, "k")) == TABLE_LINE_MAX - 2,
	    "parse_line_of_4096_octets_passes");
	table_file_free(tf);
	buf[TABLE_LINE_MAX] = 'x';
	buf[TABLE_LINE_MAX + 1] = '\n';
	ok(table_file_parse(buf, TABLE_LINE_MAX + 2, &tf, &errline,
	    &errstr) == -1 && errline == 1 && strstr(errstr, "too long"),
	    "parse_line_of_4097_octets_fails");
	/* The CR of a CRLF does not count. */
	buf[TABLE_LINE_MAX] = '\r';
	buf[TABLE_LINE_MAX + 1] = '\n';
	ok(table_file_parse(buf, TABLE_LINE_MAX + 2, &tf, &errline,
	    &errstr) == 0, "parse_crlf_not_counted_in_line_length");
	table_file_free(tf);
	free(buf);

	/* Many short entries, searched with bsearch. */
	n = 20000;
	buf = malloc(n * 16);
	for (i = 0, errline = 0; i < n; i++)
		errline += snprintf(buf + errline, 16, "K%zu v%zu\n", n - i,
		    n - i);
	ok(table_file_parse(buf, errline, &tf, &errline, &errstr) == 0 &&
	    tf->nents == n, "parse_20000_entries");
	is_str(table_file_get(tf, "k1"), "v1", "parse_20000_first");
	is_str(table_file_get(tf, "k20000"), "v20000", "parse_20000_last");
	is_str(table_file_get(tf, "k12345"), "v12345", "parse_20000_middle");
	ok(table_file_get(tf, "k0") == NULL, "parse_20000_absent");
	table_file_free(tf);
	free(buf);

	/* The entry limit counts lines with a key, repeated keys included. */
	n = TABLE_ENTRIES_MAX + 1;
	buf = malloc(2 * n);
	for (i = 0; i < n; i++) {
		buf[2 * i] = 'a';
		buf[2 * i + 1] = '\n';
	}
	ok(table_file_parse(buf, 2 * (n - 1), &tf, &errline, &errstr) == 0 &&
	    tf->nents == 1 && tf->dupline == 2,
	    "parse_1000000_entries_pass");
	table_file_free(tf);
	ok(table_file_parse(buf, 2 * n, &tf, &errline, &errstr) == -1 &&
	    errline == n && strstr(errstr, "too many") != NULL,
	    "parse_1000001_entries_fail");
	free(buf);

	ok(table_file_parse("", (size_t)TABLE_FILE_MAX + 1, &tf, &errline,
	    &errstr) == -1 && strstr(errstr, "too large") != NULL,
	    "parse_refuses_oversized_input");
}

static void
write_file(const char *path, const void *data, size_t len)
{
	int	 fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1 ||
	    write(fd, data, len) != (ssize_t)len || close(fd) == -1) {
		perror(path);
		exit(2);
	}
}

static struct table *
mk_table(const char *name, enum table_type type, const char *file)
{
	struct table	*t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		exit(2);
	(void)strlcpy(t->name, name, sizeof(t->name));
	t->type = type;
	(void)snprintf(t->path, sizeof(t->path), "%s/%s", scratch, file);
	return t;
}

static void
test_file_table(void)
{
	static const char	 text[] =
	    "# aliases\n"
	    "Postmaster: root\n"
	    "list: alice, bob@example.org\n"
	    "long: 0123456789012345678901234567890123456789\n";
	struct table		*t, *bad, *dir, *missing;
	char			 val[32], path[PATH_MAX];

	(void)snprintf(path, sizeof(path), "%s/aliases", scratch);
	write_file(path, text, sizeof(text) - 1);
	t = mk_table("aliases", TABLE_FILE, "aliases");

	is_int(table_lookup(t, "postmaster", val, sizeof(val)), -1,
	    "file_lookup_before_open_fails");
	is_int(table_open(t), 0, "file_open");
	ok(t->handle != NULL, "file_open_sets_handle");
	is_int(table_lookup(t, "POSTMASTER", val, sizeof(val)), 1,
	    "file_lookup_any_case");
	is_str(val, "root", "file_lookup_value");
	is_int(table_lookup(t, "list", val, sizeof(val)), 1,
	    "file_lookup_list");
	is_str(val, "alice, bob@example.org", "file_lookup_list_value");
	is_int(table_lookup(t, "nobody", val, sizeof(val)), 0,
	    "file_lookup_absent");
	is_int(table_lookup(t, "long", val, sizeof(val)), -1,
	    "file_value_too_long_is_an_error");
	is_int(table_lookup(t, "postmaster", val, 5), 1,
	    "file_value_exactly_fits");
	is_str(val, "root", "file_value_exactly_fits_value");
	is_int(table_lookup(t, "postmaster", val, 4), -1,
	    "file_value_one_short_fails");
	is_int(table_count(), 1, "file_one_table_open");
	/* Reopen replaces the handle. */
	is_int(table_open(t), 0, "file_reopen");
	is_int(table_count(), 1, "file_reopen_keeps_count");
	table_close(t);
	ok(t->handle == NULL, "file_close_clears_handle");
	is_int(table_count(), 0, "file_none_open");

	(void)snprintf(path, sizeof(path), "%s/bad", scratch);
	write_file(path, "good 1\nbad\x01line\n", 15);
	bad = mk_table("bad", TABLE_FILE, "bad");
	is_int(table_open(bad), -1, "file_malformed_fails_to_open");
	ok(bad->handle == NULL, "file_malformed_has_no_handle");
	is_int(table_lookup(bad, "good", val, sizeof(val)), -1,
	    "file_lookup_through_failed_table_is_an_error");

	dir = mk_table("dir", TABLE_FILE, ".");
	is_int(table_open(dir), -1, "file_directory_fails_to_open");
	missing = mk_table("missing", TABLE_FILE, "no-such-file");
	is_int(table_open(missing), -1, "file_missing_fails_to_open");
	free(t);
	free(bad);
	free(dir);
	free(missing);
}

static void
cdb_put(struct cdb_make *cm, const char *k, const void *v, size_t vlen)
{
	if (cdb_make_add(cm, k, strlen(k), v, vlen) == -1) {
		perror("cdb_make_add");
		exit(2);
	}
}

static void
test_cdb_table(void)
{
	struct cdb_make	 cm;
	struct table	*t, *bad;
	char		 path[PATH_MAX], val[16];
	int		 fd;

	(void)snprintf(path, sizeof(path), "%s/users.cdb", scratch);
	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644)) == -1) {
		perror(path);
		exit(2);
	}
	cdb_make_start(&cm, fd);
	cdb_put(&cm, "alice", "Alice", 5);
	cdb_put(&cm, "nul", "bob\0", 4);
	cdb_put(&cm, "mid", "a\0b", 3);
	cdb_put(&cm, "empty", "", 0);
	cdb_put(&cm, "fifteen", "0123456789abcde", 15);
	cdb_put(&cm, "fifteen0", "0123456789abcde\0", 16);
	cdb_put(&cm, "sixteen", "0123456789abcdef", 16);
	cdb_put(&cm, "Upper", "stored with a capital", 21);
	if (cdb_make_finish(&cm) == -1 || close(fd) == -1) {
		perror("cdb_make_finish");
		exit(2);
	}

	t = mk_table("users", TABLE_CDB, "users.cdb");
	is_int(table_open(t), 0, "cdb_open");
	is_int(table_lookup(t, "ALICE", val, sizeof(val)), 1,
	    "cdb_lookup_any_case");
	is_str(val, "Alice", "cdb_value");
	is_int(table_lookup(t, "nul", val, sizeof(val)), 1,
	    "cdb_value_with_trailing_nul");
	is_str(val, "bob", "cdb_trailing_nul_dropped");
	is_int(table_lookup(t, "mid", val, sizeof(val)), -1,
	    "cdb_value_with_inner_nul_is_an_error");
	is_int(table_lookup(t, "empty", val, sizeof(val)), 1,
	    "cdb_empty_value");
	is_str(val, "", "cdb_empty_value_is_empty");
	is_int(table_lookup(t, "fifteen", val, sizeof(val)), 1,
	    "cdb_value_exactly_fits");
	is_int(table_lookup(t, "fifteen0", val, sizeof(val)), 1,
	    "cdb_value_with_nul_exactly_fits");
	is_str(val, "0123456789abcde", "cdb_value_with_nul_fits_value");
	is_int(table_lookup(t, "sixteen", val, sizeof(val)), -1,
	    "cdb_value_too_long_is_an_error");
	is_int(table_lookup(t, "upper", val, sizeof(val)), 0,
	    "cdb_keys_stored_uppercase_are_not_found");
	is_int(table_lookup(t, "absent", val, sizeof(val)), 0,
	    "cdb_lookup_absent");
	table_close(t);

	(void)snprintf(path, sizeof(path), "%s/junk.cdb", scratch);
	write_file(path, "not a cdb\n", 10);
	bad = mk_table("junk", TABLE_CDB, "junk.cdb");
	is_int(table_open(bad), -1, "cdb_short_junk_fails_to_open");
	free(bad);
	bad = mk_table("none", TABLE_CDB, "none.cdb");
	is_int(table_open(bad), -1, "cdb_missing_fails_to_open");
	free(bad);
	free(t);
}

static struct sqconf *
mk_conf(void)
{
	struct sqconf	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		exit(2);
	TAILQ_INIT(&c->listeners);
	TAILQ_INIT(&c->tables);
	TAILQ_INIT(&c->domains);
	return c;
}

static void
test_open_all(void)
{
	struct sqconf	*c1, *c2;
	struct table	*t;

	/* (TAILQ_INSERT_TAIL evaluates its element more than once.) */
	c1 = mk_conf();
	t = mk_table("a", TABLE_FILE, "aliases");
	TAILQ_INSERT_TAIL(&c1->tables, t, entry);
	t = mk_table("u", TABLE_CDB, "users.cdb");
	TAILQ_INSERT_TAIL(&c1->tables, t, entry);
	t = mk_table("x", TABLE_FILE, "bad");
	TAILQ_INSERT_TAIL(&c1->tables, t, entry);
	is_int(table_open_all(c1), 1, "open_all_counts_failures");
	is_int(table_count(), 2, "open_all_opens_the_good_ones");
	is_int(table_open_all(c1), 1, "open_all_again");
	is_int(table_count(), 2, "open_all_again_does_not_leak");

	/* A reload: the old configuration is gone before we see the new. */
	c2 = mk_conf();
	t = mk_table("u", TABLE_CDB, "users.cdb");
	TAILQ_INSERT_TAIL(&c2->tables, t, entry);
	while ((t = TAILQ_FIRST(&c1->tables)) != NULL) {
		TAILQ_REMOVE(&c1->tables, t, entry);
		memset(t, 0xa5, sizeof(*t));
		free(t);
	}
	free(c1);
	is_int(table_open_all(c2), 0, "open_all_after_reload");
	is_int(table_count(), 1, "open_all_closes_the_old_generation");
	t = TAILQ_FIRST(&c2->tables);
	table_close(t);
	is_int(table_count(), 0, "open_all_all_closed");
	free(t);
	free(c2);
}

int
main(void)
{
	char	 cmd[PATH_MAX + 16];

	(void)strlcpy(scratch, "/tmp/sqmail-table.XXXXXX", sizeof(scratch));
	if (mkdtemp(scratch) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	test_parse_cases();
	test_parse_limits();
	test_file_table();
	test_cdb_table();
	test_open_all();

	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", scratch);
	return done_testing();
}
