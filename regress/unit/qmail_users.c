/*
 * lka/qmail_users.c: users/assign (parser and lookup), the qmail-getpw
 * passwd fallback against a passwd held in the test, and virtualdomains.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lka/qmail_users.h"
#include "sqmail.h"
#include "tap.h"
#include "textline.h"

/* users/assign ------------------------------------------------------ */

static const char assign_file[] =
	"=joe:joe:507:100:/home/joe:::\n"
	"+joe-:joe:507:100:/home/joe:-::\n"
	"+joe-x:xavier:508:100:/home/xavier:-:x-:\n"
	"+:alias:7790:2108:/var/qmail/alias:-::\n"
	"=joe.shmoe:joe:503:78:/home/joe:::\n"
	"+List-:lists:600:600:/srv/lists/:-:l-:\n"
	"=dup:first:601:601:/home/first:::\n"
	"=DUP:second:602:602:/home/second:::\n"
	"+both:wild:603:603:/home/wild:-:w:\n"
	"=both:exact:604:604:/home/exact:::\n"
	".\n";

struct assign_row {
	const char	*name;
	const char	*local;
	int		 res;
	const char	*user;
	uid_t		 uid;
	const char	*home;
	const char	*dash;
	const char	*ext;
};

static const struct assign_row assign_rows[] = {
	{ "simple_assignment", "joe", QMAIL_FOUND, "joe", 507, "/home/joe",
	    "", "" },
	{ "simple_assignment_any_case", "JoE", QMAIL_FOUND, "joe", 507,
	    "/home/joe", "", "" },
	{ "wildcard_extension_is_the_rest", "joe-direct", QMAIL_FOUND, "joe",
	    507, "/home/joe", "-", "direct" },
	{ "wildcard_extension_keeps_case", "JOE-Direct", QMAIL_FOUND, "joe",
	    507, "/home/joe", "-", "Direct" },
	{ "wildcard_includes_loc_itself", "joe-", QMAIL_FOUND, "joe", 507,
	    "/home/joe", "-", "" },
	{ "longest_wildcard_wins", "joe-xyz", QMAIL_FOUND, "xavier", 508,
	    "/home/xavier", "-", "x-yz" },
	{ "longest_wildcard_exactly", "joe-x", QMAIL_FOUND, "xavier", 508,
	    "/home/xavier", "-", "x-" },
	{ "catch_all_wildcard", "bill", QMAIL_FOUND, "alias", 7790,
	    "/var/qmail/alias", "-", "bill" },
	{ "catch_all_keeps_odd_bytes", "../etc/passwd", QMAIL_FOUND, "alias",
	    7790, "/var/qmail/alias", "-", "../etc/passwd" },
	{ "dotted_simple_assignment", "joe.shmoe", QMAIL_FOUND, "joe", 503,
	    "/home/joe", "", "" },
	{ "dotted_local_not_a_prefix_of_joe", "joe.smith", QMAIL_FOUND,
	    "alias", 7790, "/var/qmail/alias", "-", "joe.smith" },
	{ "wildcard_key_lowered_pre_prepended", "list-Foo-bar", QMAIL_FOUND,
	    "lists", 600, "/srv/lists/", "-", "l-Foo-bar" },
	{ "duplicate_first_wins_across_case", "dup", QMAIL_FOUND, "first",
	    601, "/home/first", "", "" },
	{ "simple_beats_wildcard_of_same_key", "both", QMAIL_FOUND, "exact",
	    604, "/home/exact", "", "" },
	{ "wildcard_of_same_key_for_longer", "bothx", QMAIL_FOUND, "wild", 603,
	    "/home/wild", "-", "wx" },
	{ "empty_local_is_bad", "", QMAIL_BAD, NULL, 0, NULL, NULL, NULL },
};

struct assign_err_row {
	const char	*name;
	const char	*in;
	size_t		 inlen;		/* 0: strlen */
	int		 ok;
	size_t		 errline;
	const char	*errstr;	/* a substring */
};

static const struct assign_err_row assign_err_rows[] = {
	{ "just_the_dot", ".\n", 0, 1, 0, NULL },
	{ "dot_without_newline", "=a:a:1:1:/h:::\n.", 0, 1, 0, NULL },
	{ "gid_zero_is_fine", "=a:a:1:0:/h:::\n.\n", 0, 1, 0, NULL },
	{ "largest_uid", "=a:a:4294967294:1:/h:::\n.\n", 0, 1, 0, NULL },
	{ "root_home_and_trailing_slash", "=a:a:1:1:/:::\n"
	    "=b:b:1:1:/home/b/:::\n.\n", 0, 1, 0, NULL },
	{ "eight_bit_home", "=a:a:1:1:/home/j\xc3\xb6rg:::\n.\n", 0, 1, 0,
	    NULL },
	{ "empty_simple_local", "=:a:1:1:/h:::\n.\n", 0, 1, 0, NULL },
	{ "empty_file", "", 0, 0, 1, "missing the final" },
	{ "missing_dot", "=a:a:1:1:/h:::\n", 0, 0, 2, "missing the final" },
	{ "data_after_dot", "=a:a:1:1:/h:::\n.\n=b:b:1:1:/h:::\n", 0, 0, 3,
	    "after the final" },
	{ "dot_with_more_is_not_the_end", "=a:a:1:1:/h:::\n.x\n.\n", 0, 0, 2,
	    "does not start" },
	{ "unterminated_last_line", "=a:a:1:1:/h:::", 0, 0, 1,
	    "no newline" },
	{ "blank_line", "=a:a:1:1:/h:::\n\n.\n", 0, 0, 2, "blank" },
	{ "comment_is_not_a_line_type", "# x\n.\n", 0, 0, 1,
	    "does not start" },
	{ "too_few_fields", "=a:a:1:1:/h::\n.\n", 0, 0, 1, "too few" },
	{ "data_after_last_colon", "=a:a:1:1:/h:::x\n.\n", 0, 0, 1,
	    "after the seventh" },
	{ "extra_field", "=a:a:1:1:/h::::\n.\n", 0, 0, 1,
	    "after the seventh" },
	{ "uid_zero", "=a:root:0:0:/root:::\n.\n", 0, 0, 1, "uid 0" },
	{ "uid_not_numeric", "=a:a:x:1:/h:::\n.\n", 0, 0, 1, "bad uid" },
	{ "uid_negative", "=a:a:-1:1:/h:::\n.\n", 0, 0, 1, "bad uid" },
	{ "uid_plus_sign", "=a:a:+5:1:/h:::\n.\n", 0, 0, 1, "bad uid" },
	{ "uid_empty", "=a:a::1:/h:::\n.\n", 0, 0, 1, "bad uid" },
	{ "uid_minus_one_value", "=a:a:4294967295:1:/h:::\n.\n", 0, 0, 1,
	    "bad uid" },
	{ "uid_eleven_digits", "=a:a:00000000001:1:/h:::\n.\n", 0, 0, 1,
	    "bad uid" },
	{ "gid_not_numeric", "=a:a:1:g:/h:::\n.\n", 0, 0, 1, "bad gid" },
	{ "home_relative", "=a:a:1:1:home/a:::\n.\n", 0, 0, 1, "bad home" },
	{ "home_empty", "=a:a:1:1::::\n.\n", 0, 0, 1, "bad home" },
	{ "home_dotdot", "=a:a:1:1:/home/../etc:::\n.\n", 0, 0, 1,
	    "bad home" },
	{ "home_dotdot_at_end", "=a:a:1:1:/home/..:::\n.\n", 0, 0, 1,
	    "bad home" },
	{ "home_dot", "=a:a:1:1:/home/./a:::\n.\n", 0, 0, 1, "bad home" },
	{ "home_double_slash", "=a:a:1:1:/home//a:::\n.\n", 0, 0, 1,
	    "bad home" },
	{ "home_double_trailing_slash", "=a:a:1:1:/home/a//:::\n.\n", 0, 0, 1,
	    "bad home" },
	{ "dash_not_dash", "=a:a:1:1:/h:x::\n.\n", 0, 0, 1, "dash" },
	{ "dash_two_dashes", "=a:a:1:1:/h:--::\n.\n", 0, 0, 1, "dash" },
	{ "user_empty", "=a::1:1:/h:::\n.\n", 0, 0, 1, "user" },
	{ "user_with_slash", "=a:a/b:1:1:/h:::\n.\n", 0, 0, 1, "user" },
	{ "user_leading_dot", "=a:..:1:1:/h:::\n.\n", 0, 0, 1, "user" },
	{ "user_leading_dash", "=a:-a:1:1:/h:::\n.\n", 0, 0, 1, "user" },
	{ "user_with_space", "=a:a b:1:1:/h:::\n.\n", 0, 0, 1, "user" },
	{ "local_with_space", "=a b:a:1:1:/h:::\n.\n", 0, 0, 1,
	    "local part" },
	{ "local_eight_bit", "=caf\xc3\xa9:a:1:1:/h:::\n.\n", 0, 0, 1,
	    "local part" },
	{ "ext_with_space", "=a:a:1:1:/h::x y:\n.\n", 0, 0, 1, "extension" },
	{ "nul_byte", "=a:a:1:1:/h:::\n=b\0:b:1:1:/h:::\n.\n", 33, 0, 2,
	    "NUL" },
	{ "cr_line_end", "=a:a:1:1:/h:::\r\n.\n", 0, 0, 1, "control" },
	{ "tab_inside", "=a:a:1:1:/h\t:::\n.\n", 0, 0, 1, "control" },
	{ "error_line_counts", "=a:a:1:1:/h:::\n=b:b:1:1:/h:::\n"
	    "=c:c:1:1:h:::\n.\n", 0, 0, 3, "bad home" },
};

static void
test_assign_lookups(void)
{
	struct qmail_assign	*qa;
	struct qmail_user	 u;
	const struct assign_row	*r;
	const char		*errstr;
	size_t			 errline, i;
	char			 name[128];
	int			 res;

	res = qmail_assign_parse(assign_file, strlen(assign_file), &qa,
	    &errline, &errstr);
	ok(res == 0, "assign_sample_file_parses");
	if (res != 0) {
		printf("#   line %zu: %s\n", errline, errstr);
		return;
	}
	is_int(qa->nexact, 4, "assign_sample_simple_entries_unique");
	is_int(qa->nwild, 5, "assign_sample_wildcard_entries");
	is_int(qa->dupline, 8, "assign_duplicate_line_reported");
	for (i = 0; i < sizeof(assign_rows) / sizeof(assign_rows[0]); i++) {
		r = &assign_rows[i];
		res = qmail_assign_lookup(qa, r->local, &u);
		(void)snprintf(name, sizeof(name), "assign_%s_result", r->name);
		is_int(res, r->res, name);
		if (r->res != QMAIL_FOUND || res != QMAIL_FOUND)
			continue;
		(void)snprintf(name, sizeof(name), "assign_%s_user", r->name);
		is_str(u.user, r->user, name);
		(void)snprintf(name, sizeof(name), "assign_%s_uid", r->name);
		is_int(u.uid, r->uid, name);
		(void)snprintf(name, sizeof(name), "assign_%s_home", r->name);
		is_str(u.home, r->home, name);
		(void)snprintf(name, sizeof(name), "assign_%s_dash", r->name);
		is_str(u.dash, r->dash, name);
		(void)snprintf(name, sizeof(name), "assign_%s_ext", r->name);
		is_str(u.ext, r->ext, name);
	}
	res = qmail_assign_lookup(qa, "joe-x", &u);
	is_int(u.gid, 100, "assign_gid_carried");
	qmail_assign_free(qa);
}

static void
test_assign_errors(void)
{
	const struct assign_err_row	*r;
	struct qmail_assign		*qa;
	const char			*errstr;
	size_t				 errline, i, len;
	char				 name[128];
	int				 res;

	for (i = 0; i < sizeof(assign_err_rows) / sizeof(assign_err_rows[0]);
	    i++) {
		r = &assign_err_rows[i];
		len = r->inlen != 0 ? r->inlen : strlen(r->in);
		res = qmail_assign_parse(r->in, len, &qa, &errline, &errstr);
		(void)snprintf(name, sizeof(name), "assign_parse_%s", r->name);
		if (r->ok) {
			if (!ok(res == 0 && qa != NULL, name))
				printf("#   line %zu: %s\n", errline,
				    errstr ? errstr : "");
			qmail_assign_free(qa);
			continue;
		}
		ok(res == -1 && qa == NULL, name);
		(void)snprintf(name, sizeof(name), "assign_parse_%s_line",
		    r->name);
		is_int(errline, r->errline, name);
		(void)snprintf(name, sizeof(name), "assign_parse_%s_reason",
		    r->name);
		if (!ok(errstr != NULL && strstr(errstr, r->errstr) != NULL,
		    name))
			printf("#   got \"%s\"\n", errstr ? errstr : "(null)");
	}
}

/* Limits: the longest fields pass, one more octet fails. */
static void
test_assign_limits(void)
{
	struct qmail_assign	*qa;
	struct qmail_user	 u;
	const char		*errstr;
	char			*buf, local[QMAIL_FIELD_MAX + 2];
	char			 home[QMAIL_HOME_MAX + 2];
	size_t			 errline, n;
	int			 res;

	memset(local, 'a', sizeof(local));
	local[QMAIL_FIELD_MAX] = '\0';
	home[0] = '/';
	memset(home + 1, 'h', sizeof(home) - 1);
	home[QMAIL_HOME_MAX] = '\0';
	if ((buf = malloc(8192)) == NULL)
		return;

	/* "+" with an empty loc and a 128-octet pre: ext reaches 256. */
	n = snprintf(buf, 8192, "=%s:u:1:1:%s:::\n+:c:2:2:/c:-:%s:\n.\n",
	    local, home, local);
	res = qmail_assign_parse(buf, n, &qa, &errline, &errstr);
	ok(res == 0, "assign_longest_fields_parse");
	if (res == 0) {
		is_int(qmail_assign_lookup(qa, local, &u), QMAIL_FOUND,
		    "assign_longest_local_found");
		is_str(u.home, home, "assign_longest_home_kept");
		local[0] = 'b';
		is_int(qmail_assign_lookup(qa, local, &u), QMAIL_FOUND,
		    "assign_longest_extension_fits");
		is_int(strlen(u.ext), QMAIL_EXT_MAX,
		    "assign_longest_extension_length");
		local[QMAIL_FIELD_MAX] = 'a';
		is_int(qmail_assign_lookup(qa, local, &u), QMAIL_BAD,
		    "assign_local_one_too_long_is_bad");
		is_str(u.user, "", "assign_bad_lookup_clears_result");
		local[QMAIL_FIELD_MAX] = '\0';
		qmail_assign_free(qa);
	}

	local[QMAIL_FIELD_MAX] = 'a';
	local[QMAIL_FIELD_MAX + 1] = '\0';
	n = snprintf(buf, 8192, "=%s:u:1:1:/h:::\n.\n", local);
	ok(qmail_assign_parse(buf, n, &qa, &errline, &errstr) == -1,
	    "assign_local_field_one_too_long");
	n = snprintf(buf, 8192, "=a:u:1:1:/h::%s:\n.\n", local);
	ok(qmail_assign_parse(buf, n, &qa, &errline, &errstr) == -1,
	    "assign_ext_field_one_too_long");
	home[QMAIL_HOME_MAX] = 'h';
	home[QMAIL_HOME_MAX + 1] = '\0';
	n = snprintf(buf, 8192, "=a:u:1:1:%s:::\n.\n", home);
	ok(qmail_assign_parse(buf, n, &qa, &errline, &errstr) == -1,
	    "assign_home_one_too_long");

	memset(buf, 'x', 8192);
	buf[0] = '=';
	buf[QMAIL_ASSIGN_LINE_MAX + 1] = '\n';
	res = qmail_assign_parse(buf, QMAIL_ASSIGN_LINE_MAX + 2, &qa, &errline,
	    &errstr);
	ok(res == -1 && errstr != NULL && strstr(errstr, "too long") != NULL,
	    "assign_line_too_long");
	ok(qmail_assign_parse(buf, (size_t)QMAIL_ASSIGN_FILE_MAX + 1, &qa,
	    &errline, &errstr) == -1 && errline == 0,
	    "assign_file_too_large_before_reading");
	free(buf);
}

/* passwd, held here ------------------------------------------------- */

struct fake_pw {
	const char	*asked;		/* the name getpw is asked about */
	const char	*name;		/* what it answers */
	uid_t		 uid;
	gid_t		 gid;
	const char	*home;
	int		 temp;		/* answer -1 */
};

static const struct fake_pw fake_pws[] = {
	{ "joe", "joe", 1000, 100, "/home/joe", 0 },
	{ "joe-foo", "joe-foo", 1001, 100, "/home/joefoo", 0 },
	{ "root", "root", 0, 0, "/root", 0 },
	{ "mallory", "mallory", 1002, 100, "/home/victim", 0 },
	{ "upper", "Upper", 1005, 100, "/home/upper", 0 },
	{ "ignored", "ignored", 1004, 100, "/home/ignored", 0 },
	{ "nohome", "nohome", 1006, 100, "/nonexistent", 0 },
	{ "relhome", "relhome", 1007, 100, "home/rel", 0 },
	{ "dotdothome", "dotdothome", 1008, 100, "/home/../root", 0 },
	{ "nfs", "nfs", 1009, 100, "/home/nfs", 0 },
	{ "tempuser", NULL, 0, 0, NULL, 1 },
	{ "alias", "alias", 7790, 2108, "/var/qmail/alias", 0 },
	{ "rootalias", "rootalias", 0, 0, "/var/qmail/alias", 0 },
};

struct fake_owner {
	const char	*path;
	uid_t		 uid;
	int		 temp;
};

static const struct fake_owner fake_owners[] = {
	{ "/home/joe", 1000, 0 },
	{ "/home/joefoo", 1001, 0 },
	{ "/root", 0, 0 },
	{ "/home/victim", 1003, 0 },
	{ "/home/upper", 1005, 0 },
	{ "/home/ignored", 1004, 0 },
	{ "/home/nfs", 0, 1 },
	{ "/var/qmail/alias", 7790, 0 },
	{ "home/rel", 1007, 0 },
	{ "/home/../root", 1008, 0 },
};

/* Every name getpw was asked about, '|'-separated. */
static char	 asked[1024];

static int
fake_getpw(void *arg, const char *name, struct qmail_pw *pw)
{
	size_t	 i;

	(void)strlcat(asked, name, sizeof(asked));
	(void)strlcat(asked, "|", sizeof(asked));
	for (i = 0; i < sizeof(fake_pws) / sizeof(fake_pws[0]); i++) {
		if (strcmp(fake_pws[i].asked, name) != 0)
			continue;
		if (fake_pws[i].temp)
			return -1;
		(void)strlcpy(pw->name, fake_pws[i].name, sizeof(pw->name));
		(void)strlcpy(pw->home, fake_pws[i].home, sizeof(pw->home));
		pw->uid = fake_pws[i].uid;
		pw->gid = fake_pws[i].gid;
		return 1;
	}
	return 0;
}

static int
fake_owner(void *arg, const char *path, uid_t *uid)
{
	size_t	 i;

	for (i = 0; i < sizeof(fake_owners) / sizeof(fake_owners[0]); i++) {
		if (strcmp(fake_owners[i].path, path) != 0)
			continue;
		if (fake_owners[i].temp)
			return -1;
		*uid = fake_owners[i].uid;
		return 1;
	}
	return 0;
}

static const char *const ignore_list[] = { "ignored", NULL };

struct getpw_row {
	const char	*name;
	const char	*local;
	int		 brk;
	const char	*alias;
	int		 res;
	const char	*user;
	const char	*dash;
	const char	*ext;
	const char	*asked;		/* names getpw saw, in order */
};

static const struct getpw_row getpw_rows[] = {
	{ "basic_user", "joe", 0, "alias", QMAIL_FOUND, "joe", "", "",
	    "joe|" },
	{ "user_with_extension", "joe-bar", 0, "alias", QMAIL_FOUND, "joe",
	    "-", "bar", "joe-bar|joe|" },
	{ "user_any_case_extension_keeps_case", "JOE-Bar", 0, "alias",
	    QMAIL_FOUND, "joe", "-", "Bar", "joe-bar|joe|" },
	{ "longest_user_name_first", "joe-foo-bar", 0, "alias", QMAIL_FOUND,
	    "joe-foo", "-", "bar", "joe-foo-bar|joe-foo|" },
	{ "user_named_with_break", "joe-foo", 0, "alias", QMAIL_FOUND,
	    "joe-foo", "", "", "joe-foo|" },
	{ "trailing_break_empty_extension", "joe-", 0, "alias", QMAIL_FOUND,
	    "joe", "-", "", "joe-|joe|" },
	{ "unknown_goes_to_alias", "bill", 0, "alias", QMAIL_FOUND, "alias",
	    "-", "bill", "bill|alias|" },
	{ "unknown_without_alias", "bill", 0, NULL, QMAIL_NONE, NULL, NULL,
	    NULL, "bill|" },
	{ "uid_zero_is_not_a_user", "root", 0, "alias", QMAIL_FOUND, "alias",
	    "-", "root", "root|alias|" },
	{ "home_owned_by_another", "mallory", 0, "alias", QMAIL_FOUND,
	    "alias", "-", "mallory", "mallory|alias|" },
	{ "name_service_folding_case", "upper", 0, NULL, QMAIL_NONE, NULL,
	    NULL, NULL, "upper|" },
	{ "ignore_list", "ignored-x", 0, "alias", QMAIL_FOUND, "alias", "-",
	    "ignored-x", "ignored-x|alias|" },
	{ "home_missing", "nohome", 0, NULL, QMAIL_NONE, NULL, NULL, NULL,
	    "nohome|" },
	{ "home_relative", "relhome", 0, NULL, QMAIL_NONE, NULL, NULL, NULL,
	    "relhome|" },
	{ "home_with_dotdot", "dotdothome", 0, NULL, QMAIL_NONE, NULL, NULL,
	    NULL, "dotdothome|" },
	{ "getpw_temporary", "tempuser-x", 0, "alias", QMAIL_TEMP, NULL, NULL,
	    NULL, "tempuser-x|tempuser|" },
	{ "stat_temporary", "nfs", 0, "alias", QMAIL_TEMP, NULL, NULL, NULL,
	    "nfs|" },
	{ "alias_missing_is_temporary", "bill", 0, "nosuch", QMAIL_TEMP,
	    NULL, NULL, NULL, "bill|nosuch|" },
	{ "alias_uid_zero_is_temporary", "bill", 0, "rootalias", QMAIL_TEMP,
	    NULL, NULL, NULL, "bill|rootalias|" },
	{ "other_break_character", "joe+foo", '+', NULL, QMAIL_FOUND, "joe",
	    "-", "foo", "joe|" },
	{ "dash_is_not_a_break_then", "joe-foo-x", '+', "alias", QMAIL_FOUND,
	    "alias", "-", "joe-foo-x", "joe-foo-x|alias|" },
	{ "dotdot_never_asked", "../etc", 0, "alias", QMAIL_FOUND, "alias",
	    "-", "../etc", "alias|" },
	{ "slash_never_asked", "a/b-c", 0, "alias", QMAIL_FOUND, "alias", "-",
	    "a/b-c", "alias|" },
	{ "leading_break_never_asked", "-joe", 0, NULL, QMAIL_NONE, NULL,
	    NULL, NULL, "" },
	{ "newline_never_asked", "joe\nroot", 0, NULL, QMAIL_NONE, NULL, NULL,
	    NULL, "" },
	{ "plus_never_asked", "a+b", 0, NULL, QMAIL_NONE, NULL, NULL, NULL,
	    "" },
	{ "empty_local_is_bad", "", 0, "alias", QMAIL_BAD, NULL, NULL, NULL,
	    "" },
};

static void
test_getpw(void)
{
	struct qmail_getpw_ops	 ops;
	struct qmail_user	 u;
	const struct getpw_row	*r;
	char			 name[128], longlocal[QMAIL_FIELD_MAX + 2];
	size_t			 i;
	int			 res;

	memset(&ops, 0, sizeof(ops));
	ops.getpw = fake_getpw;
	ops.owner = fake_owner;
	ops.ignore = ignore_list;
	for (i = 0; i < sizeof(getpw_rows) / sizeof(getpw_rows[0]); i++) {
		r = &getpw_rows[i];
		ops.brk = r->brk;
		ops.alias = r->alias;
		asked[0] = '\0';
		res = qmail_getpw(&ops, r->local, &u);
		(void)snprintf(name, sizeof(name), "getpw_%s_result", r->name);
		is_int(res, r->res, name);
		(void)snprintf(name, sizeof(name), "getpw_%s_asked", r->name);
		is_str(asked, r->asked, name);
		if (r->res != QMAIL_FOUND || res != QMAIL_FOUND) {
			(void)snprintf(name, sizeof(name),
			    "getpw_%s_result_cleared", r->name);
			is_str(u.user, "", name);
			continue;
		}
		(void)snprintf(name, sizeof(name), "getpw_%s_user", r->name);
		is_str(u.user, r->user, name);
		(void)snprintf(name, sizeof(name), "getpw_%s_dash", r->name);
		is_str(u.dash, r->dash, name);
		(void)snprintf(name, sizeof(name), "getpw_%s_ext", r->name);
		is_str(u.ext, r->ext, name);
	}

	ops.brk = 0;
	ops.alias = NULL;
	res = qmail_getpw(&ops, "joe-foo-bar", &u);
	is_int(u.uid, 1001, "getpw_uid_carried");
	is_int(u.gid, 100, "getpw_gid_carried");
	is_str(u.home, "/home/joefoo", "getpw_home_carried");

	/* A user name longer than SQ_USER_MAX is never asked about. */
	memset(longlocal, 'a', sizeof(longlocal));
	longlocal[SQ_USER_MAX + 1] = '\0';
	asked[0] = '\0';
	res = qmail_getpw(&ops, longlocal, &u);
	is_int(res, QMAIL_NONE, "getpw_name_too_long_result");
	is_str(asked, "", "getpw_name_too_long_not_asked");
	longlocal[SQ_USER_MAX] = '\0';
	asked[0] = '\0';
	(void)qmail_getpw(&ops, longlocal, &u);
	ok(strlen(asked) == SQ_USER_MAX + 1, "getpw_longest_name_asked");
	memset(longlocal, 'a', sizeof(longlocal));
	longlocal[QMAIL_FIELD_MAX + 1] = '\0';
	is_int(qmail_getpw(&ops, longlocal, &u), QMAIL_BAD,
	    "getpw_local_too_long_is_bad");
}

/* The system callbacks against facts of every Unix system. */
static void
test_getpw_sys(void)
{
	struct qmail_getpw_ops	 ops;
	struct qmail_user	 u;
	struct qmail_pw		 pw;
	uid_t			 uid = 12345;

	is_int(qmail_getpw_sys(NULL, "root", &pw), 1, "sys_getpw_root_found");
	is_int(pw.uid, 0, "sys_getpw_root_uid");
	is_int(qmail_getpw_sys(NULL, "sqmail-no-such-user-x", &pw), 0,
	    "sys_getpw_unknown");
	is_int(qmail_owner_sys(NULL, "/", &uid), 1, "sys_owner_of_root_dir");
	is_int(uid, 0, "sys_owner_of_root_dir_is_root");
	is_int(qmail_owner_sys(NULL, "/nonexistent/sqmail-x", &uid), 0,
	    "sys_owner_missing");
	is_int(qmail_owner_sys(NULL, "/etc/passwd", &uid), 0,
	    "sys_owner_not_a_directory");

	memset(&ops, 0, sizeof(ops));
	ops.getpw = qmail_getpw_sys;
	ops.owner = qmail_owner_sys;
	is_int(qmail_getpw(&ops, "root", &u), QMAIL_NONE,
	    "sys_root_gets_no_mail_by_passwd");
	is_int(qmail_getpw(&ops, "Root-ext", &u), QMAIL_NONE,
	    "sys_root_with_extension_neither");
}

/* virtualdomains ---------------------------------------------------- */

static const char vdoms_file[] =
	"# virtual domains\n"
	"\n"
	"example.com:joe-ex\n"
	".example.com:joe-sub\n"
	".deep.example.com:deep\n"
	"special.example.com:\n"
	"info@virt.example:infobox\n"
	"Virt.Example:virt\n"
	"trail.example:trail \t\n"
	"twice.example:one\n"
	"twice.example:two\n"
	":catchall\n";

struct vdom_row {
	const char	*name;
	const char	*local;
	const char	*domain;
	int		 res;
	const char	*out;
};

static const struct vdom_row vdom_rows[] = {
	{ "domain", "info", "example.com", QMAIL_FOUND, "joe-ex-info" },
	{ "domain_any_case", "Info", "EXAMPLE.Com", QMAIL_FOUND,
	    "joe-ex-Info" },
	{ "subdomain", "x", "a.example.com", QMAIL_FOUND, "joe-sub-x" },
	{ "deeper_suffix_first", "x", "b.deep.example.com", QMAIL_FOUND,
	    "deep-x" },
	{ "dot_key_is_not_the_domain_itself", "x", "deep.example.com",
	    QMAIL_FOUND, "joe-sub-x" },
	{ "exception_beats_suffix_and_catch_all", "x", "special.example.com",
	    QMAIL_NONE, "" },
	{ "exception_does_not_cover_subdomains", "x", "a.special.example.com",
	    QMAIL_FOUND, "joe-sub-x" },
	{ "virtual_user_first", "info", "virt.example", QMAIL_FOUND,
	    "infobox-info" },
	{ "virtual_user_any_case", "INFO", "VIRT.example", QMAIL_FOUND,
	    "infobox-INFO" },
	{ "virtual_user_other_local", "other", "virt.example", QMAIL_FOUND,
	    "virt-other" },
	{ "trailing_white_space_dropped", "x", "trail.example", QMAIL_FOUND,
	    "trail-x" },
	{ "last_of_two_lines_wins", "x", "twice.example", QMAIL_FOUND,
	    "two-x" },
	{ "catch_all", "x", "other.org", QMAIL_FOUND, "catchall-x" },
	{ "local_kept_as_given", "a.b-c", "other.org", QMAIL_FOUND,
	    "catchall-a.b-c" },
	{ "empty_domain_not_virtual", "x", "", QMAIL_NONE, "" },
};

struct vdom_err_row {
	const char	*name;
	const char	*in;
	size_t		 inlen;
	int		 ok;
	size_t		 errline;
	const char	*errstr;
};

static const struct vdom_err_row vdom_err_rows[] = {
	{ "empty_file", "", 0, 1, 0, NULL },
	{ "comments_and_blanks_only", "#a\n\n \t\n#b", 0, 1, 0, NULL },
	{ "no_newline_at_end", "a.example:b", 0, 1, 0, NULL },
	{ "underscore_in_domain", "_dmarc.example:b\n", 0, 1, 0, NULL },
	{ "prefix_with_dots", "a.example:b.c\n", 0, 1, 0, NULL },
	{ "no_colon", "a.example\n", 0, 0, 1, "no ':'" },
	{ "leading_space", "x.example:y\n a.example:b\n", 0, 0, 2,
	    "white space" },
	{ "space_in_key", "a .example:b\n", 0, 0, 1, "bad key" },
	{ "empty_label", "a..example:b\n", 0, 0, 1, "bad key" },
	{ "trailing_dot", "a.example.:b\n", 0, 0, 1, "bad key" },
	{ "lone_dot", ".:b\n", 0, 0, 1, "bad key" },
	{ "slash_in_key", "a/b.example:c\n", 0, 0, 1, "bad key" },
	{ "user_empty", "@a.example:b\n", 0, 0, 1, "bad key" },
	{ "user_domain_empty", "u@:b\n", 0, 0, 1, "bad key" },
	{ "user_not_dot_string", "a..b@a.example:b\n", 0, 0, 1, "bad key" },
	{ "label_too_long", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaa.example:b\n", 0, 0, 1, "bad key" },
	{ "prefix_with_space", "a.example:b c\n", 0, 0, 1, "bad prefix" },
	{ "prefix_with_colon", "a.example:b:c\n", 0, 0, 1, "bad prefix" },
	{ "prefix_leading_dot", "a.example:../b\n", 0, 0, 1, "bad prefix" },
	{ "prefix_with_at", "a.example:b@c\n", 0, 0, 1, "bad prefix" },
	{ "nul_byte", "a.example:b\0\n", 13, 0, 1, "NUL" },
	{ "cr_line_end", "a.example:b\r\n", 0, 0, 1, "control" },
};

static void
test_vdoms(void)
{
	const struct vdom_row		*r;
	const struct vdom_err_row	*er;
	struct table_file		*vd;
	const char			*errstr, *p;
	char				 name[128], out[SQ_LOCALPART_MAX + 1];
	char				 big[4096];
	size_t				 errline, i, len;
	int				 res;

	res = qmail_vdoms_parse(vdoms_file, strlen(vdoms_file), &vd, &errline,
	    &errstr);
	ok(res == 0, "vdoms_sample_file_parses");
	if (res != 0) {
		printf("#   line %zu: %s\n", errline, errstr);
		return;
	}
	is_int(vd->nents, 9, "vdoms_sample_entries");
	is_int(vd->dupline, 10, "vdoms_overridden_line_reported");
	for (i = 0; i < sizeof(vdom_rows) / sizeof(vdom_rows[0]); i++) {
		r = &vdom_rows[i];
		memset(out, 'z', sizeof(out));
		res = qmail_vdoms_lookup(vd, r->local, r->domain, out,
		    sizeof(out));
		(void)snprintf(name, sizeof(name), "vdoms_%s_result", r->name);
		is_int(res, r->res, name);
		(void)snprintf(name, sizeof(name), "vdoms_%s_out", r->name);
		is_str(out, r->out, name);
	}
	p = qmail_vdoms_match(vd, "x", "special.example.com");
	is_str(p, "", "vdoms_match_reports_exception");
	p = qmail_vdoms_match(vd, "x", "a.example.com");
	is_str(p, "joe-sub", "vdoms_match_reports_prefix");

	/* The rewrite must still fit a local part, and out. */
	memset(big, 'l', SQ_LOCALPART_MAX);
	big[SQ_LOCALPART_MAX - 9] = '\0';		/* 119 + "catchall-" */
	is_int(qmail_vdoms_lookup(vd, big, "o.org", out, sizeof(out)),
	    QMAIL_FOUND, "vdoms_longest_rewrite_fits");
	is_int(strlen(out), SQ_LOCALPART_MAX, "vdoms_longest_rewrite_length");
	big[SQ_LOCALPART_MAX - 9] = 'l';
	big[SQ_LOCALPART_MAX - 8] = '\0';
	is_int(qmail_vdoms_lookup(vd, big, "o.org", out, sizeof(out)),
	    QMAIL_BAD, "vdoms_rewrite_too_long");
	is_str(out, "", "vdoms_too_long_clears_out");
	is_int(qmail_vdoms_lookup(vd, "x", "o.org", out, 10), QMAIL_BAD,
	    "vdoms_small_buffer");
	is_int(qmail_vdoms_lookup(vd, "x", "o.org", out, 11), QMAIL_FOUND,
	    "vdoms_exact_buffer");
	memset(big, 'd', sizeof(big));
	big[SQ_DOMAIN_MAX + 1] = '\0';
	is_int(qmail_vdoms_lookup(vd, "x", big, out, sizeof(out)), QMAIL_NONE,
	    "vdoms_domain_too_long_not_virtual");
	table_file_free(vd);

	res = qmail_vdoms_parse("a.example:b\n", 12, &vd, &errline, &errstr);
	if (res == 0) {
		is_int(qmail_vdoms_lookup(vd, "x", "other.org", out,
		    sizeof(out)), QMAIL_NONE, "vdoms_no_catch_all_no_match");
		table_file_free(vd);
	} else
		ok(0, "vdoms_no_catch_all_no_match");

	for (i = 0; i < sizeof(vdom_err_rows) / sizeof(vdom_err_rows[0]);
	    i++) {
		er = &vdom_err_rows[i];
		len = er->inlen != 0 ? er->inlen : strlen(er->in);
		res = qmail_vdoms_parse(er->in, len, &vd, &errline, &errstr);
		(void)snprintf(name, sizeof(name), "vdoms_parse_%s", er->name);
		if (er->ok) {
			if (!ok(res == 0 && vd != NULL, name))
				printf("#   line %zu: %s\n", errline,
				    errstr ? errstr : "");
			table_file_free(vd);
			continue;
		}
		ok(res == -1 && vd == NULL, name);
		(void)snprintf(name, sizeof(name), "vdoms_parse_%s_line",
		    er->name);
		is_int(errline, er->errline, name);
		(void)snprintf(name, sizeof(name), "vdoms_parse_%s_reason",
		    er->name);
		if (!ok(errstr != NULL && strstr(errstr, er->errstr) != NULL,
		    name))
			printf("#   got \"%s\"\n", errstr ? errstr : "(null)");
	}
}

/* The parent's check of an agent's identity against users/assign. */
static void
test_assign_allows(void)
{
	struct qmail_assign	*qa;
	const char		*errstr;
	size_t			 errline;

	if (qmail_assign_parse(assign_file, strlen(assign_file), &qa,
	    &errline, &errstr) != 0) {
		ok(0, "allows_sample_parses");
		return;
	}
	ok(qmail_assign_allows(qa, "joe", 507, 100, "/home/joe"),
	    "allows_simple_entry_identity");
	ok(qmail_assign_allows(qa, "xavier", 508, 100, "/home/xavier"),
	    "allows_wildcard_entry_identity");
	ok(qmail_assign_allows(qa, "lists", 600, 600, "/srv/lists/"),
	    "allows_home_as_written");
	ok(!qmail_assign_allows(qa, "lists", 600, 600, "/srv/lists"),
	    "refuses_home_spelled_otherwise");
	ok(!qmail_assign_allows(qa, "joe", 508, 100, "/home/joe"),
	    "refuses_other_uid");
	ok(!qmail_assign_allows(qa, "joe", 507, 0, "/home/joe"),
	    "refuses_other_gid");
	ok(!qmail_assign_allows(qa, "joe", 507, 100, "/home/xavier"),
	    "refuses_other_home");
	ok(!qmail_assign_allows(qa, "Joe", 507, 100, "/home/joe"),
	    "refuses_user_in_other_case");
	/* lka never hands it out: the first of a key counts. */
	ok(!qmail_assign_allows(qa, "second", 602, 602, "/home/second"),
	    "refuses_an_ignored_duplicate");
	ok(!qmail_assign_allows(NULL, "joe", 507, 100, "/home/joe"),
	    "refuses_without_a_file");
	ok(!qmail_assign_allows(qa, "root", 0, 0, "/root"),
	    "refuses_uid_0");
	qmail_assign_free(qa);
}

/* Reading the files: bounded, regular files only. */
static void
test_file_load(void)
{
	struct qmail_assign	*qa;
	struct table_file	*vd;
	char			 dir[] = "/tmp/sqmail-qu.XXXXXX";
	char			 path[256], err[512], *buf;
	size_t			 len;
	FILE			*fp;

	if (mkdtemp(dir) == NULL) {
		ok(0, "load_mkdtemp");
		return;
	}
	(void)snprintf(path, sizeof(path), "%s/assign", dir);
	fp = fopen(path, "w");
	fputs(assign_file, fp);
	fclose(fp);
	is_int(qmail_assign_load(path, &qa, err, sizeof(err)), 0,
	    "load_assign_file");
	ok(qa != NULL && qa->nexact == 4, "load_assign_file_entries");
	qmail_assign_free(qa);

	fp = fopen(path, "w");
	fputs("=joe:joe:507:100:/home/joe:::\n", fp);
	fclose(fp);
	is_int(qmail_assign_load(path, &qa, err, sizeof(err)), -1,
	    "load_assign_without_dot_line_fails");
	ok(qa == NULL && strstr(err, path) != NULL,
	    "load_assign_error_names_the_file");

	is_int(qmail_assign_load(dir, &qa, err, sizeof(err)), -1,
	    "load_directory_fails");
	ok(strstr(err, "not a regular file") != NULL,
	    "load_directory_says_not_a_regular_file");

	(void)snprintf(path, sizeof(path), "%s/missing", dir);
	is_int(qmail_vdoms_load(path, &vd, err, sizeof(err)), -1,
	    "load_missing_file_fails");

	(void)snprintf(path, sizeof(path), "%s/vd", dir);
	fp = fopen(path, "w");
	fputs("virt.example:pre\n", fp);
	fclose(fp);
	is_int(qmail_vdoms_load(path, &vd, err, sizeof(err)), 0,
	    "load_virtualdomains_file");
	if (vd != NULL) {
		is_str(qmail_vdoms_match(vd, "x", "virt.example"), "pre",
		    "load_virtualdomains_prefix");
		table_file_free(vd);
	}
	is_int(text_file_read(path, 4, &buf, &len, err, sizeof(err)), -1,
	    "read_file_over_its_limit_fails");
	is_int(text_file_read(path, 17, &buf, &len, err, sizeof(err)), 0,
	    "read_file_at_its_limit");
	ok(len == 17 && memcmp(buf, "virt.example:pre\n", 17) == 0,
	    "read_file_content");
	free(buf);
	(void)snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	if (system(path) != 0)
		printf("# could not remove %s\n", dir);
}

int
main(void)
{
	test_assign_lookups();
	test_assign_errors();
	test_assign_limits();
	test_getpw();
	test_getpw_sys();
	test_vdoms();
	test_assign_allows();
	test_file_load();
	return done_testing();
}
