/*
 * sqmailctl's command line to a control request: control/ctl_parse.c.
 * One row per command line: the words, and the request or the reason.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../control/control.h"
#include "msg.h"
#include "tap.h"

#define W(...)	{ __VA_ARGS__, NULL }

static const struct row {
	const char	*name;
	const char	*words[6];
	int		 rc;
	uint32_t	 type;
	uint64_t	 msgid;
	const char	*arg;
	int		 verbose;
	const char	*err;
} rows[] = {
	/* every command */
	{ "show_queue", W("show", "queue"),
	    0, IMSG_CTL_SHOW_QUEUE, 0, "", 0, "" },
	{ "show_stats", W("show", "stats"),
	    0, IMSG_CTL_SHOW_STATS, 0, "", 0, "" },
	{ "show_processes", W("show", "processes"),
	    0, IMSG_CTL_SHOW_PROCS, 0, "", 0, "" },
	{ "show_hosts", W("show", "hosts"),
	    0, IMSG_CTL_SHOW_HOSTS, 0, "", 0, "" },
	{ "show_routes", W("show", "routes"),
	    0, IMSG_CTL_SHOW_ROUTES, 0, "", 0, "" },
	{ "show_routes_domain", W("show", "routes", "example.org"),
	    0, IMSG_CTL_SHOW_ROUTES, 0, "example.org", 0, "" },
	{ "show_routes_two_domains", W("show", "routes", "a.org", "b.org"),
	    -1, 0, 0, "", 0, "show: too many arguments" },
	{ "show_routes_empty_domain", W("show", "routes", ""),
	    -1, 0, 0, "", 0, "show: bad domain: " },
	{ "pause_smtp", W("pause", "smtp"),
	    0, IMSG_CTL_PAUSE_REQ, 0, "smtp", 0, "" },
	{ "pause_mda", W("pause", "mda"),
	    0, IMSG_CTL_PAUSE_REQ, 0, "mda", 0, "" },
	{ "pause_mta", W("pause", "mta"),
	    0, IMSG_CTL_PAUSE_REQ, 0, "mta", 0, "" },
	{ "resume_smtp", W("resume", "smtp"),
	    0, IMSG_CTL_RESUME_REQ, 0, "smtp", 0, "" },
	{ "resume_mda", W("resume", "mda"),
	    0, IMSG_CTL_RESUME_REQ, 0, "mda", 0, "" },
	{ "resume_mta", W("resume", "mta"),
	    0, IMSG_CTL_RESUME_REQ, 0, "mta", 0, "" },
	{ "schedule_id", W("schedule", "12345"),
	    0, IMSG_CTL_SCHEDULE, 12345, "", 0, "" },
	{ "schedule_all_is_id_0", W("schedule", "all"),
	    0, IMSG_CTL_SCHEDULE, 0, "", 0, "" },
	{ "schedule_max_u64", W("schedule", "18446744073709551615"),
	    0, IMSG_CTL_SCHEDULE, UINT64_MAX, "", 0, "" },
	{ "schedule_leading_zeros", W("schedule", "007"),
	    0, IMSG_CTL_SCHEDULE, 7, "", 0, "" },
	{ "remove_id", W("remove", "1"),
	    0, IMSG_CTL_REMOVE, 1, "", 0, "" },
	{ "remove_all_is_id_0", W("remove", "all"),
	    0, IMSG_CTL_REMOVE, 0, "", 0, "" },
	{ "log_verbose", W("log", "verbose"),
	    0, IMSG_CTL_LOG, 0, "", 1, "" },
	{ "log_brief", W("log", "brief"),
	    0, IMSG_CTL_LOG, 0, "", 0, "" },
	{ "reload", W("reload"),
	    0, IMSG_CTL_RELOAD, 0, "", 0, "" },
	{ "stop", W("stop"),
	    0, IMSG_CTL_STOP, 0, "", 0, "" },

	/* no command, unknown commands, no abbreviations */
	{ "no_words_is_missing_command", { NULL },
	    -1, 0, 0, "", 0, "missing command" },
	{ "unknown_command", W("flush"),
	    -1, 0, 0, "", 0, "unknown command: flush" },
	{ "empty_command", W(""),
	    -1, 0, 0, "", 0, "unknown command: " },
	{ "prefix_of_show_refused", W("sh", "queue"),
	    -1, 0, 0, "", 0, "unknown command: sh" },
	{ "uppercase_refused", W("SHOW", "queue"),
	    -1, 0, 0, "", 0, "unknown command: SHOW" },
	{ "option_after_command_is_a_word", W("-s", "x"),
	    -1, 0, 0, "", 0, "unknown command: -s" },

	/* show */
	{ "show_alone", W("show"),
	    -1, 0, 0, "", 0,
	    "show: missing argument (expected queue, stats, processes, routes "
	    "or hosts)" },
	{ "show_unknown", W("show", "mail"),
	    -1, 0, 0, "", 0, "show: unknown argument: mail" },
	{ "show_prefix_refused", W("show", "q"),
	    -1, 0, 0, "", 0, "show: unknown argument: q" },
	{ "show_procs_abbreviation_refused", W("show", "procs"),
	    -1, 0, 0, "", 0, "show: unknown argument: procs" },
	{ "show_queue_extra", W("show", "queue", "now"),
	    -1, 0, 0, "", 0, "show: too many arguments" },
	{ "show_stats_extra", W("show", "stats", "x"),
	    -1, 0, 0, "", 0, "show: too many arguments" },

	/* pause, resume */
	{ "pause_alone", W("pause"),
	    -1, 0, 0, "", 0,
	    "pause: missing argument (expected smtp, mda or mta)" },
	{ "pause_lka_refused", W("pause", "lka"),
	    -1, 0, 0, "", 0,
	    "pause: unknown target: lka (expected smtp, mda or mta)" },
	{ "pause_all_refused", W("pause", "all"),
	    -1, 0, 0, "", 0,
	    "pause: unknown target: all (expected smtp, mda or mta)" },
	{ "pause_uppercase_refused", W("pause", "SMTP"),
	    -1, 0, 0, "", 0,
	    "pause: unknown target: SMTP (expected smtp, mda or mta)" },
	{ "pause_extra", W("pause", "smtp", "mta"),
	    -1, 0, 0, "", 0, "pause: too many arguments" },
	{ "resume_alone", W("resume"),
	    -1, 0, 0, "", 0,
	    "resume: missing argument (expected smtp, mda or mta)" },
	{ "resume_queue_refused", W("resume", "queue"),
	    -1, 0, 0, "", 0,
	    "resume: unknown target: queue (expected smtp, mda or mta)" },
	{ "resume_extra", W("resume", "mda", "now"),
	    -1, 0, 0, "", 0, "resume: too many arguments" },

	/* schedule, remove */
	{ "schedule_alone", W("schedule"),
	    -1, 0, 0, "", 0,
	    "schedule: missing argument (expected a message id or all)" },
	{ "schedule_zero_refused", W("schedule", "0"),
	    -1, 0, 0, "", 0, "schedule: invalid message id: 0 "
	    "(expected a decimal id or all)" },
	{ "schedule_zeros_refused", W("schedule", "000"),
	    -1, 0, 0, "", 0, "schedule: invalid message id: 000 "
	    "(expected a decimal id or all)" },
	{ "schedule_negative_refused", W("schedule", "-1"),
	    -1, 0, 0, "", 0, "schedule: invalid message id: -1 "
	    "(expected a decimal id or all)" },
	{ "schedule_plus_refused", W("schedule", "+5"),
	    -1, 0, 0, "", 0, "schedule: invalid message id: +5 "
	    "(expected a decimal id or all)" },
	{ "schedule_hex_refused", W("schedule", "0x1f"),
	    -1, 0, 0, "", 0, "schedule: invalid message id: 0x1f "
	    "(expected a decimal id or all)" },
	{ "schedule_blank_refused", W("schedule", " 5"),
	    -1, 0, 0, "", 0, "schedule: invalid message id:  5 "
	    "(expected a decimal id or all)" },
	{ "schedule_trailing_junk_refused", W("schedule", "5x"),
	    -1, 0, 0, "", 0, "schedule: invalid message id: 5x "
	    "(expected a decimal id or all)" },
	{ "schedule_empty_refused", W("schedule", ""),
	    -1, 0, 0, "", 0, "schedule: invalid message id:  "
	    "(expected a decimal id or all)" },
	{ "schedule_overflow_refused",
	    W("schedule", "18446744073709551616"),
	    -1, 0, 0, "", 0,
	    "schedule: invalid message id: 18446744073709551616 "
	    "(expected a decimal id or all)" },
	{ "schedule_ALL_refused", W("schedule", "ALL"),
	    -1, 0, 0, "", 0, "schedule: invalid message id: ALL "
	    "(expected a decimal id or all)" },
	{ "schedule_extra", W("schedule", "1", "2"),
	    -1, 0, 0, "", 0, "schedule: too many arguments" },
	{ "remove_alone", W("remove"),
	    -1, 0, 0, "", 0,
	    "remove: missing argument (expected a message id or all)" },
	{ "remove_zero_refused", W("remove", "0"),
	    -1, 0, 0, "", 0, "remove: invalid message id: 0 "
	    "(expected a decimal id or all)" },
	{ "remove_word_refused", W("remove", "everything"),
	    -1, 0, 0, "", 0, "remove: invalid message id: everything "
	    "(expected a decimal id or all)" },
	{ "remove_extra", W("remove", "all", "now"),
	    -1, 0, 0, "", 0, "remove: too many arguments" },

	/* log */
	{ "log_alone", W("log"),
	    -1, 0, 0, "", 0,
	    "log: missing argument (expected verbose or brief)" },
	{ "log_unknown", W("log", "debug"),
	    -1, 0, 0, "", 0, "log: unknown argument: debug" },
	{ "log_number_refused", W("log", "1"),
	    -1, 0, 0, "", 0, "log: unknown argument: 1" },
	{ "log_extra", W("log", "verbose", "2"),
	    -1, 0, 0, "", 0, "log: too many arguments" },

	/* reload, stop */
	{ "reload_extra", W("reload", "now"),
	    -1, 0, 0, "", 0, "reload: too many arguments" },
	{ "stop_extra", W("stop", "now"),
	    -1, 0, 0, "", 0, "stop: too many arguments" },
};

/* The reason is cut to the buffer, never overrun; no buffer is fine. */
static void
test_short_err_buffer(void)
{
	struct ctl_request	 req;
	char			 err[8];
	char			*argv[] = { "flush", NULL };

	memset(err, 'x', sizeof(err));
	is_int(ctl_parse_args(1, argv, &req, err, sizeof(err)), -1,
	    "short_err_buffer_still_fails");
	is_str(err, "unknown", "short_err_buffer_truncates");
	is_int(ctl_parse_args(1, argv, &req, NULL, 0), -1,
	    "no_err_buffer_still_fails");
}

/* argc, not a NULL terminator, bounds the words. */
static void
test_argc_bounds_words(void)
{
	struct ctl_request	 req;
	char			 err[256];
	char			*argv[] = { "stop", "extra", NULL };

	is_int(ctl_parse_args(1, argv, &req, err, sizeof(err)), 0,
	    "argc_bounds_words");
	is_int(req.type, IMSG_CTL_STOP, "argc_bounds_words_type");
}

static void
test_msgid(void)
{
	uint64_t	 id = 42;

	is_int(ctl_parse_msgid("1", &id), 0, "msgid_1");
	ok(id == 1, "msgid_1_value");
	id = 42;
	is_int(ctl_parse_msgid("0", &id), -1, "msgid_0_refused");
	ok(id == 42, "msgid_refused_leaves_id");
	is_int(ctl_parse_msgid("99999999999999999999", &id), -1,
	    "msgid_20_digits_overflow_refused");
	is_int(ctl_parse_msgid("1 ", &id), -1, "msgid_trailing_blank_refused");
}

int
main(void)
{
	const struct row	*r;
	struct ctl_request	 req;
	char			 err[256], name[128];
	char			*argv[6];
	size_t			 i;
	int			 argc, rc;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		r = &rows[i];
		for (argc = 0; r->words[argc] != NULL; argc++)
			argv[argc] = (char *)r->words[argc];
		argv[argc] = NULL;
		memset(&req, 0xa5, sizeof(req));
		memset(err, 'x', sizeof(err));
		rc = ctl_parse_args(argc, argv, &req, err, sizeof(err));

		is_int(rc, r->rc, r->name);
		(void)snprintf(name, sizeof(name), "%s_err", r->name);
		is_str(err, r->err, name);
		if (r->rc != 0) {
			(void)snprintf(name, sizeof(name), "%s_no_request",
			    r->name);
			is_int(req.type, 0, name);
			continue;
		}
		(void)snprintf(name, sizeof(name), "%s_type", r->name);
		is_int(req.type, r->type, name);
		(void)snprintf(name, sizeof(name), "%s_msgid", r->name);
		ok(req.msgid == r->msgid, name);
		(void)snprintf(name, sizeof(name), "%s_arg", r->name);
		is_str(req.arg, r->arg, name);
		(void)snprintf(name, sizeof(name), "%s_verbose", r->name);
		is_int(req.verbose, r->verbose, name);
	}
	test_short_err_buffer();
	test_argc_bounds_words();
	test_msgid();
	return done_testing();
}
