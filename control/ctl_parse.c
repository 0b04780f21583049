/*
 * sqmailctl's command line: the command words to a control request.
 * Exact words only; no abbreviations.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "msg.h"
#include "textline.h"

enum ctl_argkind {
	CTL_ARG_NONE,		/* the command words are all there is */
	CTL_ARG_TARGET,		/* one of smtp, mda, mta */
	CTL_ARG_MSGID,		/* a message id or "all" */
	CTL_ARG_DOMAIN_OPT	/* a domain, or nothing */
};

static const struct ctl_cmd {
	const char		*word;		/* first word */
	const char		*sub;		/* second word, or NULL */
	enum ctl_argkind	 kind;	/* what follows the words */
	uint32_t		 type;
	int			 verbose;
} ctl_cmds[] = {
	{ "show", "queue", CTL_ARG_NONE, IMSG_CTL_SHOW_QUEUE, 0 },
	{ "show", "stats", CTL_ARG_NONE, IMSG_CTL_SHOW_STATS, 0 },
	{ "show", "processes", CTL_ARG_NONE, IMSG_CTL_SHOW_PROCS, 0 },
	{ "show", "routes", CTL_ARG_DOMAIN_OPT, IMSG_CTL_SHOW_ROUTES, 0 },
	{ "show", "hosts", CTL_ARG_NONE, IMSG_CTL_SHOW_HOSTS, 0 },
	{ "pause", NULL, CTL_ARG_TARGET, IMSG_CTL_PAUSE_REQ, 0 },
	{ "resume", NULL, CTL_ARG_TARGET, IMSG_CTL_RESUME_REQ, 0 },
	{ "schedule", NULL, CTL_ARG_MSGID, IMSG_CTL_SCHEDULE, 0 },
	{ "remove", NULL, CTL_ARG_MSGID, IMSG_CTL_REMOVE, 0 },
	{ "log", "verbose", CTL_ARG_NONE, IMSG_CTL_LOG, 1 },
	{ "log", "brief", CTL_ARG_NONE, IMSG_CTL_LOG, 0 },
	{ "reload", NULL, CTL_ARG_NONE, IMSG_CTL_RELOAD, 0 },
	{ "stop", NULL, CTL_ARG_NONE, IMSG_CTL_STOP, 0 },
};
#define CTL_NCMDS	(sizeof(ctl_cmds) / sizeof(ctl_cmds[0]))

/* What a command with a second word or an argument expects, for errors. */
static const struct ctl_expect {
	const char	*word;
	const char	*what;
} ctl_expects[] = {
	{ "show",	"queue, stats, processes, routes or hosts" },
	{ "pause",	"smtp, mda or mta" },
	{ "resume",	"smtp, mda or mta" },
	{ "schedule",	"a message id or all" },
	{ "remove",	"a message id or all" },
	{ "log",	"verbose or brief" },
};

static const char *ctl_targets[] = { "smtp", "mda", "mta" };

static const char *
ctl_expected(const char *word)
{
	size_t	 i;

	for (i = 0; i < sizeof(ctl_expects) / sizeof(ctl_expects[0]); i++)
		if (strcmp(ctl_expects[i].word, word) == 0)
			return ctl_expects[i].what;
	return "nothing";
}

int
ctl_parse_msgid(const char *s, uint64_t *id)
{
	unsigned long long	 v;
	const char		*p;
	char			*end;

	/* strtoull alone takes blanks, signs and "0x"; we take digits. */
	if (*s == '\0')
		return -1;
	for (p = s; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0)
		return -1;
	*id = v;
	return 0;
}

int
ctl_parse_args(int argc, char **argv, struct ctl_request *out, char *err,
    size_t errlen)
{
	const struct ctl_cmd	*cmd = NULL;
	const char		*word;
	size_t			 i, n;
	int			 known = 0, nwords;

	memset(out, 0, sizeof(*out));
	if (errlen > 0)
		err[0] = '\0';
	if (argc < 1 || argv[0] == NULL)
		return text_fail(err, errlen, "missing command");
	word = argv[0];

	for (i = 0; i < CTL_NCMDS; i++) {
		if (strcmp(ctl_cmds[i].word, word) != 0)
			continue;
		known = 1;
		if (ctl_cmds[i].sub == NULL ||
		    (argc >= 2 && strcmp(ctl_cmds[i].sub, argv[1]) == 0)) {
			cmd = &ctl_cmds[i];
			break;
		}
	}
	if (!known)
		return text_fail(err, errlen, "unknown command: %s", word);
	if (cmd == NULL) {
		/* The command takes a second word and it is wrong or absent. */
		if (argc < 2)
			return text_fail(err, errlen,
			    "%s: missing argument (expected %s)", word,
			    ctl_expected(word));
		return text_fail(err, errlen, "%s: unknown argument: %s", word,
		    argv[1]);
	}

	nwords = cmd->sub != NULL ? 2 : 1;
	if (cmd->kind == CTL_ARG_DOMAIN_OPT) {
		if (argc > nwords + 1)
			return text_fail(err, errlen, "%s: too many arguments",
			    word);
		if (argc == nwords + 1 && (argv[nwords][0] == '\0' ||
		    strlcpy(out->arg, argv[nwords], sizeof(out->arg)) >=
		    sizeof(out->arg)))
			return text_fail(err, errlen, "%s: bad domain: %s",
			    word, argv[nwords]);
		nwords = argc;
	} else if (cmd->kind != CTL_ARG_NONE) {
		if (argc < nwords + 1)
			return text_fail(err, errlen,
			    "%s: missing argument (expected %s)", word,
			    ctl_expected(word));
		nwords++;
	}
	if (argc > nwords)
		return text_fail(err, errlen, "%s: too many arguments", word);

	switch (cmd->kind) {
	case CTL_ARG_NONE:
	case CTL_ARG_DOMAIN_OPT:
		break;
	case CTL_ARG_TARGET:
		n = sizeof(ctl_targets) / sizeof(ctl_targets[0]);
		for (i = 0; i < n; i++)
			if (strcmp(ctl_targets[i], argv[1]) == 0)
				break;
		if (i == n)
			return text_fail(err, errlen, "%s: unknown target: %s "
			    "(expected smtp, mda or mta)", word, argv[1]);
		if (strlcpy(out->arg, argv[1], sizeof(out->arg)) >=
		    sizeof(out->arg))
			return text_fail(err, errlen, "%s: target too long: %s",
			    word, argv[1]);
		break;
	case CTL_ARG_MSGID:
		if (strcmp(argv[1], "all") == 0)
			out->msgid = 0;
		else if (ctl_parse_msgid(argv[1], &out->msgid) == -1)
			return text_fail(err, errlen,
			    "%s: invalid message id: %s (expected a decimal id "
			    "or all)", word, argv[1]);
		break;
	}
	out->type = cmd->type;
	out->verbose = cmd->verbose;
	return 0;
}
