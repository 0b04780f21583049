/*
 * lka/lka_rcpt.c: where a recipient goes.  One row per case: the address
 * as smtp hands it over, the client, whether it may relay, and which
 * configuration; then the status, the start of the reply and every
 * destination ("L:user:addr" local, "R:addr" remote, in order).  In rows,
 * "%U" stands for an ordinary (uid != 0) account of this machine and "%V"
 * for its name in upper case.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <cdb.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lka/lka.h"
#include "../../lka/table.h"
#include "config.h"
#include "mailaddr.h"
#include "sqmail.h"
#include "tap.h"

#define OUTSIDER	"198.51.100.7"
#define INSIDER		"192.0.2.10"	/* in "relay from 192.0.2.0/24" */

enum { CONF_A, CONF_B, CONF_Q, CONF_QI, CONF_N };

struct rcpt_case {
	const char	*name;
	int		 conf;
	const char	*addr;		/* no '@': a bare user (<postmaster>) */
	const char	*client;	/* NULL: none (queue's requests) */
	int		 may_relay;
	int		 status;
	const char	*reply;		/* prefix of the reply; "" when SQ_OK */
	const char	*dests;		/* NULL: not checked */
	int		 ndests;	/* -1: not checked */
};

static const struct rcpt_case rcpt_cases[] = {
	/* Relaying is decided by the domain and the client only. */
	{ "remote_from_outsider_is_relay_denied", CONF_A,
	    "user@remote.example", OUTSIDER, 0, SQ_PERMFAIL,
	    "554 5.7.1 <user@remote.example>: relay access denied", "", 0 },
	{ "remote_without_client_is_relay_denied", CONF_A,
	    "user@remote.example", NULL, 0, SQ_PERMFAIL, "554 5.7.1 ", "", 0 },
	{ "remote_when_may_relay", CONF_A, "user@remote.example", OUTSIDER, 1,
	    SQ_OK, "", "R:user@remote.example", 1 },
	{ "remote_from_relay_network", CONF_A, "user@remote.example",
	    INSIDER, 0, SQ_OK, "", "R:user@remote.example", 1 },
	{ "remote_keeps_local_part_case", CONF_A, "User@Remote.Example",
	    INSIDER, 0, SQ_OK, "", "R:User@remote.example", 1 },
	{ "remote_address_literal_from_outsider_is_denied", CONF_A,
	    "user@[192.0.2.1]", OUTSIDER, 0, SQ_PERMFAIL, "554 5.7.1 ", "", 0 },
	{ "percent_hack_at_local_domain_is_a_local_part", CONF_A,
	    "user%remote.example@local.example", OUTSIDER, 0, SQ_PERMFAIL,
	    "550 5.1.1 <user%remote.example@local.example>: no such user here",
	    "", 0 },
	{ "bang_path_at_local_domain_is_a_local_part", CONF_A,
	    "remote.example!user@local.example", OUTSIDER, 0, SQ_PERMFAIL,
	    "550 5.1.1 ", "", 0 },
	{ "quoted_at_in_local_part_is_bad_syntax", CONF_A,
	    "\"user@remote.example\"@local.example", OUTSIDER, 0, SQ_PERMFAIL,
	    "550 5.1.3 <\"user@remote.example\"@local.example>: bad recipient "
	    "address syntax", "", 0 },
	{ "quoted_percent_hack_is_a_local_part", CONF_A,
	    "\"user%remote.example\"@local.example", OUTSIDER, 0, SQ_PERMFAIL,
	    "550 5.1.1 ", "", 0 },
	{ "percent_hack_at_remote_domain_is_remote", CONF_A,
	    "user%local.example@remote.example", OUTSIDER, 0, SQ_PERMFAIL,
	    "554 5.7.1 ", "", 0 },
	/* smtp strips "@local.example:" from a source route: still remote. */
	{ "source_route_via_us_to_remote_is_relay_denied", CONF_A,
	    "user@remote.example", OUTSIDER, 0, SQ_PERMFAIL, "554 5.7.1 ", "",
	    0 },
	/* ... and "@remote.example:" before a local address: local. */
	{ "source_route_via_remote_to_local_is_local", CONF_A,
	    "%U@local.example", OUTSIDER, 0, SQ_OK, "",
	    "L:%U:%U@local.example", 1 },

	/* Local parts that could reach a path never get looked up. */
	{ "dot_dot_slash_local_part_is_bad_syntax", CONF_A,
	    "\"../etc/passwd\"@local.example", OUTSIDER, 0, SQ_PERMFAIL,
	    "550 5.1.3 ", "", 0 },
	{ "dot_dot_local_part_is_bad_syntax", CONF_A, "\"..\"@local.example",
	    OUTSIDER, 0, SQ_PERMFAIL, "550 5.1.3 ", "", 0 },
	{ "dot_local_part_is_bad_syntax", CONF_A, "\".\"@local.example",
	    OUTSIDER, 0, SQ_PERMFAIL, "550 5.1.3 ", "", 0 },
	{ "leading_dot_local_part_is_bad_syntax", CONF_A,
	    "\".hidden\"@local.example", OUTSIDER, 0, SQ_PERMFAIL, "550 5.1.3 ",
	    "", 0 },
	{ "inner_dot_dot_local_part_is_bad_syntax", CONF_A,
	    "\"a..b\"@local.example", OUTSIDER, 0, SQ_PERMFAIL, "550 5.1.3 ",
	    "", 0 },
	{ "slash_local_part_is_bad_syntax", CONF_A, "a/b@local.example",
	    OUTSIDER, 0, SQ_PERMFAIL, "550 5.1.3 ", "", 0 },
	{ "slash_local_part_at_domain_user_is_bad_syntax", CONF_A,
	    "\"x/../../y\"@virt.example", OUTSIDER, 0, SQ_PERMFAIL,
	    "550 5.1.3 ", "", 0 },

	/* <postmaster> without a domain. */
	{ "postmaster_without_domain_is_ours", CONF_A, "postmaster", OUTSIDER,
	    0, SQ_OK, "", "L:root:root@mx.local.example", 1 },
	{ "postmaster_without_domain_any_case", CONF_A, "PostMaster",
	    OUTSIDER, 0, SQ_OK, "", "L:root:root@mx.local.example", 1 },
	{ "postmaster_without_domain_hostname_not_local", CONF_B,
	    "postmaster", OUTSIDER, 0, SQ_OK, "", "R:postmaster@gw.example",
	    1 },
	{ "other_user_without_domain_is_bad_syntax", CONF_A, "nobody",
	    OUTSIDER, 0, SQ_PERMFAIL, "550 5.1.3 <nobody>: ", "", 0 },

	/* Aliases. */
	{ "alias_to_root", CONF_A, "postmaster@local.example", OUTSIDER, 0,
	    SQ_OK, "", "L:root:root@local.example", 1 },
	{ "alias_any_case", CONF_A, "PostMaster@LOCAL.example", OUTSIDER, 0,
	    SQ_OK, "", "L:root:root@local.example", 1 },
	{ "alias_key_in_upper_case_in_file", CONF_A,
	    "mIxEdCaSe@local.example", OUTSIDER, 0, SQ_OK, "",
	    "L:%U:%U@local.example", 1 },
	{ "alias_nested", CONF_A, "abuse@local.example", OUTSIDER, 0, SQ_OK,
	    "", "L:root:root@local.example", 1 },
	{ "alias_fan_out_local_domain_user_remote", CONF_A,
	    "team@local.example", OUTSIDER, 0, SQ_OK, "",
	    "L:%U:%U@local.example L:vmail:bob@virt.example "
	    "R:carol@remote.example", 3 },
	{ "alias_duplicates_collapse", CONF_A, "dup@local.example", OUTSIDER,
	    0, SQ_OK, "", "L:%U:%U@local.example L:vmail:bob@virt.example "
	    "R:carol@remote.example", 3 },
	{ "alias_loop_without_destination", CONF_A, "loop1@local.example",
	    OUTSIDER, 0, SQ_PERMFAIL, "550 5.4.6 <loop1@local.example>: ", "",
	    0 },
	{ "alias_loop_stops_other_targets_deliver", CONF_A,
	    "loopy@local.example", OUTSIDER, 0, SQ_OK, "",
	    "L:%U:%U@local.example", 1 },
	{ "alias_all_targets_unknown", CONF_A, "dead@local.example",
	    OUTSIDER, 0, SQ_PERMFAIL, "550 5.1.1 <dead@local.example>: ", "",
	    0 },
	{ "alias_empty_value", CONF_A, "empty@local.example", OUTSIDER, 0,
	    SQ_PERMFAIL, "550 5.1.1 ", "", 0 },
	{ "alias_nine_deep_fails", CONF_A, "deep0@local.example", OUTSIDER,
	    0, SQ_PERMFAIL, "550 5.1.1 ", "", 0 },
	{ "alias_eight_deep_delivers", CONF_A, "deep1@local.example",
	    OUTSIDER, 0, SQ_OK, "", "L:%U:%U@local.example", 1 },
	{ "alias_over_expand_max_fails", CONF_A, "fan@local.example",
	    OUTSIDER, 0, SQ_PERMFAIL, "550 5.5.3 <fan@local.example>: ", "",
	    0 },
	{ "alias_of_exactly_expand_max", CONF_A, "fan256@local.example",
	    OUTSIDER, 0, SQ_OK, "", NULL, SQ_EXPAND_MAX },
	{ "alias_file_and_pipe_targets_run_as_the_alias_account", CONF_A,
	    "badtarget@local.example", OUTSIDER, 0, SQ_OK, "",
	    "L:%A:badtarget@local.example=file:/etc/passwd "
	    "L:%A:badtarget@local.example=program:/bin/sh "
	    "L:%U:%U@local.example", 3 },
	{ "alias_to_pipe_only", CONF_A, "pipe@local.example", OUTSIDER,
	    0, SQ_OK, "", "L:%A:pipe@local.example=program:/bin/sh", 1 },
	{ "alias_quoted_program_keeps_its_comma", CONF_A,
	    "quotedprog@local.example", OUTSIDER, 0, SQ_OK, "",
	    "L:%A:quotedprog@local.example=program:/bin/echo a, b "
	    "L:%A:quotedprog@local.example=file:/var/mail/x/", 2 },
	{ "alias_include_and_nested_alias_program", CONF_A,
	    "incl@local.example", OUTSIDER, 0, SQ_OK, "",
	    "L:%A:incl@local.example=include:/etc/list "
	    "L:%A:pipe@local.example=program:/bin/sh", 2 },
	{ "alias_same_program_twice_collapses", CONF_A,
	    "twoprog@local.example", OUTSIDER, 0, SQ_OK, "",
	    "L:%A:twoprog@local.example=program:/bin/true", 1 },
	{ "alias_program_and_user_of_the_same_name_both_kept", CONF_A,
	    "%U@self.example", OUTSIDER, 0, SQ_OK, "",
	    "L:%A:%U@self.example=program:/bin/true L:%U:%U@self.example", 2 },
	{ "alias_target_table_failure_is_temporary", CONF_A,
	    "tempy@local.example", OUTSIDER, 0, SQ_TEMPFAIL,
	    "451 4.3.0 <tempy@local.example>: temporary lookup failure", "",
	    0 },
	{ "alias_to_itself_delivers_and_copies", CONF_A, "root@self.example",
	    OUTSIDER, 0, SQ_OK, "",
	    "L:root:root@self.example R:rootcopy@remote.example", 2 },
	{ "alias_to_itself_only_unknown_user", CONF_A,
	    "selfonly@local.example", OUTSIDER, 0, SQ_PERMFAIL, "550 5.1.1 ",
	    "", 0 },
	{ "alias_may_relay_for_outsider", CONF_A, "viaremote@local.example",
	    OUTSIDER, 0, SQ_OK, "", "R:a@remote.example", 1 },
	{ "alias_to_users_table_domain", CONF_A, "crossuser@local.example",
	    OUTSIDER, 0, SQ_OK, "", "L:%U:info@users.example", 1 },
	{ "alias_in_cdb", CONF_A, "Help@cdb.example", OUTSIDER, 0, SQ_OK, "",
	    "L:%U:%U@cdb.example", 1 },
	{ "alias_in_cdb_to_root", CONF_A, "postmaster@cdb.example", OUTSIDER,
	    0, SQ_OK, "", "L:root:root@cdb.example", 1 },

	/* passwd. */
	{ "passwd_user", CONF_A, "%U@mbox.example", OUTSIDER, 0, SQ_OK, "",
	    "L:%U:%U@mbox.example", 1 },
	{ "passwd_user_any_case", CONF_A, "%V@MBOX.example", OUTSIDER, 0,
	    SQ_OK, "", "L:%U:%U@mbox.example", 1 },
	/* Accepted to be held: mda defers it, no agent runs as root. */
	{ "passwd_uid_0_is_accepted_to_be_held", CONF_A, "root@mbox.example",
	    OUTSIDER, 0, SQ_OK, "", "L:root:root@mbox.example", 1 },
	{ "passwd_unknown_user", CONF_A, "nosuchuserzz@mbox.example",
	    OUTSIDER, 0, SQ_PERMFAIL,
	    "550 5.1.1 <nosuchuserzz@mbox.example>: no such user here", "", 0 },
	{ "passwd_odd_characters_never_looked_up", CONF_A,
	    "%U+ext@mbox.example", OUTSIDER, 0, SQ_PERMFAIL, "550 5.1.1 ", "",
	    0 },
	{ "passwd_suffix_domain", CONF_A, "%U@host.sub.example", OUTSIDER, 0,
	    SQ_OK, "", "L:%U:%U@host.sub.example", 1 },

	/* A domain user, with a recipients table. */
	{ "domain_user_listed_recipient", CONF_A, "bob@virt.example",
	    OUTSIDER, 0, SQ_OK, "", "L:vmail:bob@virt.example", 1 },
	{ "domain_user_any_case", CONF_A, "BOB@virt.example", OUTSIDER, 0,
	    SQ_OK, "", "L:vmail:bob@virt.example", 1 },
	{ "domain_user_unlisted_recipient", CONF_A, "zed@virt.example",
	    OUTSIDER, 0, SQ_PERMFAIL,
	    "550 5.1.1 <zed@virt.example>: no such user here", "", 0 },
	{ "domain_user_root_local_part_is_just_a_name", CONF_A,
	    "root@virt.example", OUTSIDER, 0, SQ_OK, "",
	    "L:vmail:root@virt.example", 1 },

	/* A users table. */
	{ "users_table_maps_local_part", CONF_A, "info@users.example",
	    OUTSIDER, 0, SQ_OK, "", "L:%U:info@users.example", 1 },
	{ "users_table_space_separated", CONF_A, "Sales@users.example",
	    OUTSIDER, 0, SQ_OK, "", "L:%U:sales@users.example", 1 },
	{ "users_table_absent_is_unknown", CONF_A, "nobody2@users.example",
	    OUTSIDER, 0, SQ_PERMFAIL, "550 5.1.1 ", "", 0 },
	{ "users_table_bad_user_name_is_temporary", CONF_A,
	    "weird@users.example", OUTSIDER, 0, SQ_TEMPFAIL, "451 4.3.0 ", "",
	    0 },
	{ "users_table_passwd_not_consulted", CONF_A, "%U@users.example",
	    OUTSIDER, 0, SQ_PERMFAIL, "550 5.1.1 ", "", 0 },

	/* A table that failed to open. */
	{ "table_not_open_is_temporary", CONF_A, "anyone@broken.example",
	    OUTSIDER, 0, SQ_TEMPFAIL,
	    "451 4.3.0 <anyone@broken.example>: temporary lookup failure", "",
	    0 },
};

static char	 scratch[64];
static char	 user_u[SQ_USER_MAX + 1], user_v[SQ_USER_MAX + 1];
/* Who runs alias programs: the fixtures' owner, or nobody for root. */
static char	 user_a[SQ_USER_MAX + 1];
static struct sqconf	*confs[CONF_N];
static struct dest	 out[SQ_EXPAND_MAX];

/* Replace %U, %V and %A. */
static void
subst(const char *in, char *buf, size_t len)
{
	size_t	 n = 0;
	const char *r;

	for (; *in != '\0' && n + 1 < len; in++) {
		if (in[0] == '%' && (in[1] == 'U' || in[1] == 'V' ||
		    in[1] == 'A')) {
			for (r = in[1] == 'U' ? user_u : in[1] == 'V' ?
			    user_v : user_a; *r != '\0' &&
			    n + 1 < len; r++)
				buf[n++] = *r;
			in++;
		} else
			buf[n++] = *in;
	}
	buf[n] = '\0';
}

/*
 * qmail's passwd rule wants a home owned by its user, which system
 * accounts seldom have: here a directory counts as owned by the account
 * whose home it is.
 */
static int
test_owner(void *arg, const char *path, uid_t *uid)
{
	struct passwd	*pw;

	setpwent();
	while ((pw = getpwent()) != NULL)
		if (strcmp(pw->pw_dir, path) == 0 && pw->pw_uid != 0) {
			*uid = pw->pw_uid;
			endpwent();
			return 1;
		}
	endpwent();
	return 0;
}

static void
pick_user(void)
{
	struct passwd	*pw;
	size_t		 i;
	const char	*p;

	pw = getpwuid(getuid());
	if (pw == NULL || pw->pw_uid == 0) {
		/* Running as root: any ordinary account will do. */
		setpwent();
		while ((pw = getpwent()) != NULL) {
			if (pw->pw_uid == 0 || strlen(pw->pw_name) > 32)
				continue;
			for (p = pw->pw_name; *p != '\0'; p++)
				if (!((*p >= 'a' && *p <= 'z') ||
				    (*p >= '0' && *p <= '9') || *p == '_'))
					break;
			if (*p == '\0' && pw->pw_name[0] != '\0')
				break;
		}
		endpwent();
	}
	if (pw == NULL) {
		printf("1..0 # SKIP no ordinary account in passwd\n");
		exit(0);
	}
	(void)strlcpy(user_u, pw->pw_name, sizeof(user_u));
	for (i = 0; user_u[i] != '\0'; i++)
		user_v[i] = (user_u[i] >= 'a' && user_u[i] <= 'z') ?
		    user_u[i] - 'a' + 'A' : user_u[i];
	user_v[i] = '\0';
}

static void
write_text(const char *file, const char *text)
{
	char	 path[PATH_MAX], *buf;
	size_t	 len = strlen(text) * 2 + 1024;
	FILE	*fp;

	(void)snprintf(path, sizeof(path), "%s/%s", scratch, file);
	if ((buf = malloc(len)) == NULL)
		exit(2);
	subst(text, buf, len);
	if ((fp = fopen(path, "w")) == NULL || fputs(buf, fp) == EOF ||
	    fclose(fp) == EOF) {
		perror(path);
		exit(2);
	}
	free(buf);
}

static void
write_cdb(const char *file, const char **kv)
{
	struct cdb_make	 cm;
	char		 path[PATH_MAX], v[256];
	int		 fd;

	(void)snprintf(path, sizeof(path), "%s/%s", scratch, file);
	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644)) == -1) {
		perror(path);
		exit(2);
	}
	cdb_make_start(&cm, fd);
	for (; kv[0] != NULL; kv += 2) {
		subst(kv[1], v, sizeof(v));
		if (cdb_make_add(&cm, kv[0], strlen(kv[0]), v,
		    strlen(v)) == -1)
			exit(2);
	}
	if (cdb_make_finish(&cm) == -1 || close(fd) == -1)
		exit(2);
}

static void
write_fixtures(void)
{
	static const char	*cdb_aliases[] = {
		"postmaster", "root",
		"help", "%U",
		NULL, NULL
	};
	char	*fan, *p;
	size_t	 i;

	write_text("aliases",
	    "# local.example and mx.local.example\n"
	    "postmaster: root\n"
	    "abuse: postmaster\n"
	    "MixedCase: %U\n"
	    "team: %U, bob@virt.example, <carol@remote.example>, nosuchuserzz\n"
	    "dup: %U, %U, team\n"
	    "loop1: loop2\n"
	    "loop2: loop1\n"
	    "loopy: loop1, %U\n"
	    "dead: nosuchuserzz, also-missing\n"
	    "empty\n"
	    "deep0: deep1\n"
	    "deep1: deep2\n"
	    "deep2: deep3\n"
	    "deep3: deep4\n"
	    "deep4: deep5\n"
	    "deep5: deep6\n"
	    "deep6: deep7\n"
	    "deep7: deep8\n"
	    "deep8: %U\n"
	    "fan: fana, fanb\n"
	    "fan256: fana, fanc\n"
	    "badtarget: /etc/passwd, |/bin/sh, \"../x\", %U\n"
	    "pipe: |/bin/sh\n"
	    "quotedprog: \"|/bin/echo a, b\", /var/mail/x/\n"
	    "incl: :include:/etc/list, pipe\n"
	    "twoprog: |/bin/true, \"|/bin/true\"\n"
	    "tempy: %U, x@broken.example\n"
	    "selfonly: selfonly\n"
	    "viaremote: <a@remote.example>\n"
	    "crossuser: info@users.example\n");
	/* fana, fanb: 150 remote addresses each; fanc: 106. */
	if ((fan = malloc(3 * 4096)) == NULL)
		exit(2);
	p = fan;
	p += sprintf(p, "# fan-out\nfana:");
	for (i = 0; i < 150; i++)
		p += sprintf(p, "%sa%zu@r.example", i ? "," : " ", i);
	p += sprintf(p, "\nfanb:");
	for (i = 0; i < 150; i++)
		p += sprintf(p, "%sb%zu@r.example", i ? "," : " ", i);
	p += sprintf(p, "\nfanc:");
	for (i = 0; i < SQ_EXPAND_MAX - 150; i++)
		p += sprintf(p, "%sc%zu@r.example", i ? "," : " ", i);
	p += sprintf(p, "\n");
	write_text("fan", fan);
	free(fan);
	{
		char	 self[256];
		struct passwd	*pw;

		(void)snprintf(self, sizeof(self), "root: root, "
		    "rootcopy@remote.example\n%s: |/bin/true, %s\n", user_u,
		    user_u);
		write_text("selfaliases", self);
		pw = geteuid() == 0 ? NULL : getpwuid(geteuid());
		(void)strlcpy(user_a, pw != NULL ? pw->pw_name : "nobody",
		    sizeof(user_a));
	}
	write_text("recipients", "bob\njane\nroot\n");
	write_text("users", "info: %U\nsales %U\nweird: bad/user\n");
	write_cdb("aliases.cdb", cdb_aliases);
}

static struct table *
add_table(struct sqconf *c, const char *name, enum table_type type,
    const char *file)
{
	struct table	*t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		exit(2);
	(void)strlcpy(t->name, name, sizeof(t->name));
	t->type = type;
	(void)snprintf(t->path, sizeof(t->path), "%s/%s", scratch, file);
	TAILQ_INSERT_TAIL(&c->tables, t, entry);
	return t;
}

static struct domain *
add_domain(struct sqconf *c, const char *name, enum mbox_method method,
    const char *mailbox)
{
	struct domain	*d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		exit(2);
	(void)strlcpy(d->name, name, sizeof(d->name));
	d->method = method;
	(void)strlcpy(d->mailbox, mailbox, sizeof(d->mailbox));
	TAILQ_INSERT_TAIL(&c->domains, d, entry);
	return d;
}

static struct sqconf *
new_conf(const char *hostname)
{
	struct sqconf	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		exit(2);
	TAILQ_INIT(&c->listeners);
	TAILQ_INIT(&c->tables);
	TAILQ_INIT(&c->domains);
	(void)strlcpy(c->hostname, hostname, sizeof(c->hostname));
	/* parse.y's default: postmaster@<hostname>. */
	(void)snprintf(c->postmaster, sizeof(c->postmaster), "postmaster@%s",
	    hostname);
	return c;
}

/* Two configurations, as parse.y would build them. */
static void
build_confs(void)
{
	struct sqconf	*a, *b;
	struct table	*aliases, *recipients, *users, *broken, *cdb, *self;
	struct domain	*d;

	a = new_conf("mx.local.example");
	if ((a->relay_from = calloc(1, sizeof(*a->relay_from))) == NULL ||
	    netaddr_parse("192.0.2.0/24", a->relay_from) == -1)
		exit(2);
	a->nrelay = 1;
	aliases = add_table(a, "aliases", TABLE_FILE, "aliases");
	recipients = add_table(a, "recipients", TABLE_FILE, "recipients");
	users = add_table(a, "users", TABLE_FILE, "users");
	broken = add_table(a, "broken", TABLE_FILE, "no-such-file");
	cdb = add_table(a, "cdbaliases", TABLE_CDB, "aliases.cdb");
	self = add_table(a, "selfaliases", TABLE_FILE, "selfaliases");

	d = add_domain(a, "local.example", MBOX_MAILDIR, "~/Maildir/");
	d->aliases = aliases;
	d = add_domain(a, "mx.local.example", MBOX_MAILDIR, "~/Maildir/");
	d->aliases = aliases;
	d = add_domain(a, "virt.example", MBOX_MAILDIR, "/var/vmail/%l/");
	(void)strlcpy(d->user, "vmail", sizeof(d->user));
	d->recipients = recipients;
	d = add_domain(a, "users.example", MBOX_MBOX, "/var/mail/%u");
	d->users = users;
	(void)add_domain(a, "mbox.example", MBOX_MBOX, "/var/mail/%u");
	d = add_domain(a, "broken.example", MBOX_MAILDIR, "~/Maildir/");
	d->aliases = broken;
	(void)add_domain(a, ".sub.example", MBOX_NONE, "~/Maildir/");
	d = add_domain(a, "cdb.example", MBOX_MAILDIR, "~/Maildir/");
	d->aliases = cdb;
	d = add_domain(a, "self.example", MBOX_MAILDIR, "~/Maildir/");
	d->aliases = self;
	confs[CONF_A] = a;

	b = new_conf("gw.example");
	d = add_domain(b, "local.example", MBOX_MAILDIR, "~/Maildir/");
	confs[CONF_B] = b;

	/* qmail's rules: assign, virtualdomains, break '+'. */
	b = new_conf("q.example");
	(void)add_domain(b, "q.example", MBOX_MAILDIR, "~/Maildir/");
	(void)add_domain(b, ".q.example", MBOX_MAILDIR, "~/Maildir/");
	(void)snprintf(b->qmail_assign, sizeof(b->qmail_assign), "%s/assign",
	    scratch);
	(void)snprintf(b->qmail_vdoms, sizeof(b->qmail_vdoms), "%s/vdoms",
	    scratch);
	b->qmail_break = '+';
	confs[CONF_Q] = b;

	/* The ordinary account ignored, break '-'. */
	b = new_conf("q.example");
	(void)add_domain(b, "q.example", MBOX_MAILDIR, "~/Maildir/");
	b->qmail_break = '-';
	if ((b->qmail_ignore = calloc(2, sizeof(char *))) == NULL ||
	    (b->qmail_ignore[0] = strdup(user_u)) == NULL)
		exit(2);
	b->qmail_nignore = 1;
	confs[CONF_QI] = b;
}

static int	resolve_text(int, const char *, int, size_t, size_t *, char *);

/* qmail's rules: what rows do not show (identity, dash, ext, case). */
static void
test_qmail(void)
{
	char	 reply[SQ_REPLY_MAX], want[SQ_ADDR_MAX];
	size_t	 n;
	int	 st;

	write_text("assign",
	    "=vexact:vu:64123:64100:/srv/v/exact:::\n"
	    "+vw-:wu:64124:64124:/srv/v/wild:-:p-:\n"
	    ".\n");
	write_text("vdoms", "virt.q.example:vw\n.sub.q.example:vw\n"
	    "pw.q.example:%U\n");
	is_int(lka_qmail_load(confs[CONF_Q]), 0, "qmail_files_load");

	st = resolve_text(CONF_Q, "VExact@Q.example", 0, 4, &n, reply);
	ok(st == SQ_OK && n == 1 && strcmp(out[0].user, "vu") == 0 &&
	    out[0].uid == 64123 && out[0].gid == 64100 &&
	    strcmp(out[0].home, "/srv/v/exact") == 0 && out[0].dotqmail &&
	    out[0].dash[0] == '\0' && out[0].ext[0] == '\0' &&
	    strcmp(out[0].addr, "vexact@q.example") == 0,
	    "qmail_assign_simple_gives_user_uid_gid_home");
	st = resolve_text(CONF_Q, "vw-Foo-Bar@q.example", 0, 4, &n, reply);
	ok(st == SQ_OK && n == 1 && strcmp(out[0].user, "wu") == 0 &&
	    strcmp(out[0].dash, "-") == 0 &&
	    strcmp(out[0].ext, "p-Foo-Bar") == 0 &&
	    strcmp(out[0].addr, "vw-foo-bar@q.example") == 0,
	    "qmail_assign_wildcard_ext_is_pre_and_the_rest_in_its_case");
	st = resolve_text(CONF_Q, "Joe@virt.q.example", 0, 4, &n, reply);
	ok(st == SQ_OK && n == 1 && strcmp(out[0].user, "wu") == 0 &&
	    strcmp(out[0].ext, "p-Joe") == 0 &&
	    strcmp(out[0].addr, "vw-joe@virt.q.example") == 0,
	    "qmail_virtualdomain_rewrites_to_prefix_local");
	st = resolve_text(CONF_Q, "x@h.sub.q.example", 0, 4, &n, reply);
	ok(st == SQ_OK && n == 1 && strcmp(out[0].user, "wu") == 0 &&
	    strcmp(out[0].ext, "p-x") == 0 &&
	    strcmp(out[0].addr, "vw-x@h.sub.q.example") == 0,
	    "qmail_virtualdomain_suffix");
	/* As qmail-send: the '-' of prefix-x is literal, not the break. */
	st = resolve_text(CONF_Q, "x@pw.q.example", 0, 4, &n, reply);
	is_int(st, SQ_PERMFAIL,
	    "qmail_virtualdomain_dash_is_literal_with_break_plus");
	subst("%U", want, sizeof(want));
	st = resolve_text(CONF_Q, "%U+Ext@q.example", 0, 4, &n, reply);
	ok(st == SQ_OK && n == 1 && strcmp(out[0].user, want) == 0 &&
	    strcmp(out[0].dash, "-") == 0 && strcmp(out[0].ext, "Ext") == 0 &&
	    out[0].home[0] == '/',
	    "qmail_break_plus_splits_user_plus_ext");
	st = resolve_text(CONF_Q, "%U-ext@q.example", 0, 4, &n, reply);
	is_int(st, SQ_PERMFAIL, "qmail_break_plus_dash_is_no_break");
	st = resolve_text(CONF_Q, "%U@q.example", 0, 4, &n, reply);
	ok(st == SQ_OK && n == 1 && strcmp(out[0].user, want) == 0 &&
	    out[0].dotqmail && out[0].dash[0] == '\0',
	    "qmail_passwd_user_basic_address");
	st = resolve_text(CONF_Q, "root@q.example", 0, 4, &n, reply);
	ok(st == SQ_OK && n == 1 && strcmp(out[0].user, "root") == 0 &&
	    out[0].uid == 0 && out[0].home[0] == '/',
	    "qmail_root_without_alias_user_is_accepted_with_uid_0_to_hold");
	st = resolve_text(CONF_QI, "%U@q.example", 0, 4, &n, reply);
	is_int(st, SQ_PERMFAIL, "qmail_ignored_user_is_unknown");
	st = resolve_text(CONF_QI, "%U-x@q.example", 0, 4, &n, reply);
	is_int(st, SQ_PERMFAIL, "qmail_ignored_user_ext_is_unknown");

	/* A file that does not parse: lookups fail temporarily. */
	write_text("assign", "=broken\n");
	is_int(lka_qmail_load(confs[CONF_Q]), 1, "qmail_bad_assign_counted");
	st = resolve_text(CONF_Q, "vexact@q.example", 0, 4, &n, reply);
	ok(st == SQ_TEMPFAIL && strncmp(reply, "451 4.3.0", 9) == 0,
	    "qmail_bad_assign_fails_temporarily");
	write_text("assign", ".\n");
	write_text("vdoms", "\n");
	(void)lka_qmail_load(confs[CONF_A]);	/* none: back to passwd */
}

/* The fan-out aliases are long: written apart, then appended. */
static void
join_fan(void)
{
	char	 path[PATH_MAX], cmd[3 * PATH_MAX];

	(void)snprintf(path, sizeof(path), "%s/aliases", scratch);
	(void)snprintf(cmd, sizeof(cmd), "cat '%s/fan' >> '%s'", scratch,
	    path);
	if (system(cmd) != 0)
		exit(2);
}

static void
set_client(struct sockaddr_storage *ss, const char *ip)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(25);
	if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1)
		exit(2);
}

static void
render(const struct dest *d, size_t n, char *buf, size_t len)
{
	size_t	 i;

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		if (i > 0)
			(void)strlcat(buf, " ", len);
		if (d[i].type == DEST_LOCAL) {
			(void)strlcat(buf, "L:", len);
			(void)strlcat(buf, d[i].user, len);
			(void)strlcat(buf, ":", len);
		} else
			(void)strlcat(buf, "R:", len);
		(void)strlcat(buf, d[i].addr, len);
		if (d[i].method >= MBOX_PROGRAM) {
			(void)strlcat(buf, d[i].method == MBOX_PROGRAM ?
			    "=program:" : d[i].method == MBOX_FILE ? "=file:" :
			    "=include:", len);
			(void)strlcat(buf, d[i].mailbox, len);
		}
	}
}

static int
parse_addr(const char *text, struct mailaddr *a)
{
	memset(a, 0, sizeof(*a));
	if (strchr(text, '@') == NULL)
		return strlcpy(a->user, text, sizeof(a->user)) <
		    sizeof(a->user) ? 0 : -1;
	return mailaddr_parse(text, strlen(text), a);
}

static void
test_rows(void)
{
	const struct rcpt_case	*c;
	struct sockaddr_storage	 ss;
	struct mailaddr		 a;
	char			 addr[SQ_ADDR_MAX], reply[SQ_REPLY_MAX];
	char			 want[8192], got[SQ_EXPAND_MAX * 64];
	char			 wreply[SQ_REPLY_MAX];
	size_t			 i, n;
	int			 st;

	for (i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		c = &rcpt_cases[i];
		subst(c->addr, addr, sizeof(addr));
		if (!ok(parse_addr(addr, &a) == 0, c->name)) {
			printf("#   %s does not parse\n", addr);
			continue;
		}
		if (c->client != NULL)
			set_client(&ss, c->client);
		n = 12345;
		st = lka_resolve(confs[c->conf], &a, c->may_relay,
		    c->client ? (struct sockaddr *)&ss : NULL, out, &n,
		    SQ_EXPAND_MAX, reply, sizeof(reply));
		subst(c->reply, wreply, sizeof(wreply));
		render(out, st == SQ_OK ? n : 0, got, sizeof(got));
		if (c->dests != NULL)
			subst(c->dests, want, sizeof(want));
		if (!ok(st == c->status &&
		    strncmp(reply, wreply, strlen(wreply)) == 0 &&
		    (c->status != SQ_OK || reply[0] == '\0') &&
		    (c->status == SQ_OK || n == 0) &&
		    (c->ndests < 0 || n == (size_t)c->ndests) &&
		    (c->dests == NULL || strcmp(got, want) == 0), c->name)) {
			printf("#   <%s>: status %d (want %d), reply \"%s\"\n",
			    addr, st, c->status, reply);
			printf("#   dests %zu \"%s\"\n", n, got);
			if (c->dests != NULL)
				printf("#   want %d \"%s\"\n", c->ndests, want);
		}
	}
}

static int
resolve_text(int ci, const char *text, int may_relay, size_t maxout,
    size_t *n, char *reply)
{
	struct mailaddr	 a;
	char		 addr[SQ_ADDR_MAX];

	subst(text, addr, sizeof(addr));
	if (parse_addr(addr, &a) == -1)
		return -1;
	return lka_resolve(confs[ci], &a, may_relay, NULL, out, n, maxout,
	    reply, SQ_REPLY_MAX);
}

/* What rows do not show: orig, method, mailbox, limits, the sender hook. */
static void
test_fields(void)
{
	struct mailaddr	 a;
	char		 reply[SQ_REPLY_MAX], want[SQ_ADDR_MAX];
	size_t		 n, i;
	int		 st, all;

	st = resolve_text(CONF_A, "Team@local.example", 0, SQ_EXPAND_MAX, &n,
	    reply);
	for (i = 0, all = (st == SQ_OK && n == 3); i < n; i++)
		all = all && strcmp(out[i].orig, "Team@local.example") == 0;
	ok(all, "orig_is_the_address_as_given_for_every_destination");
	ok(st == SQ_OK && out[0].method == MBOX_MAILDIR &&
	    strcmp(out[0].mailbox, "~/Maildir/") == 0,
	    "local_dest_has_domain_method_and_mailbox");
	ok(st == SQ_OK && out[1].method == MBOX_MAILDIR &&
	    strcmp(out[1].mailbox, "/var/vmail/%l/") == 0 &&
	    strcmp(out[1].user, "vmail") == 0,
	    "domain_user_dest_has_its_domain_mailbox");
	ok(st == SQ_OK && out[2].type == DEST_REMOTE &&
	    out[2].user[0] == '\0' && out[2].mailbox[0] == '\0',
	    "remote_dest_has_no_user_or_mailbox");

	st = resolve_text(CONF_A, "PostMaster", 0, SQ_EXPAND_MAX, &n, reply);
	ok(st == SQ_OK && n == 1 && strcmp(out[0].orig, "PostMaster") == 0,
	    "postmaster_orig_is_as_given");

	subst("%U@mbox.example", want, sizeof(want));
	st = resolve_text(CONF_A, want, 0, SQ_EXPAND_MAX, &n, reply);
	ok(st == SQ_OK && n == 1 && out[0].method == MBOX_MBOX &&
	    strcmp(out[0].mailbox, "/var/mail/%u") == 0,
	    "mbox_domain_method");

	st = resolve_text(CONF_A, "%U@host.sub.example", 0, SQ_EXPAND_MAX, &n,
	    reply);
	ok(st == SQ_OK && n == 1 && out[0].method == MBOX_MAILDIR,
	    "unset_method_defaults_to_maildir");

	st = resolve_text(CONF_A, "team@local.example", 0, 2, &n, reply);
	ok(st == SQ_PERMFAIL && n == 0 && strncmp(reply, "550 5.5.3 ", 10) ==
	    0, "expansion_beyond_maxout_fails");
	st = resolve_text(CONF_A, "team@local.example", 0, 3, &n, reply);
	ok(st == SQ_OK && n == 3, "expansion_of_exactly_maxout_passes");

	st = resolve_text(CONF_A, "user@remote.example", 1, SQ_EXPAND_MAX,
	    &n, reply);
	ok(st == SQ_OK && n == 1 && out[0].type == DEST_REMOTE &&
	    strcmp(out[0].addr, "user@remote.example") == 0 &&
	    strcmp(out[0].orig, "user@remote.example") == 0,
	    "bounce_resolution_may_go_anywhere");

	memset(&a, 0, sizeof(a));
	is_int(lka_check_sender(confs[CONF_A], &a, NULL, reply,
	    sizeof(reply)), SQ_OK, "sender_null_path_passes");
	is_str(reply, "", "sender_null_path_reply_empty");
	(void)mailaddr_parse("someone@remote.example", 22, &a);
	is_int(lka_check_sender(confs[CONF_A], &a, NULL, reply,
	    sizeof(reply)), SQ_OK, "sender_any_valid_address_passes");
	(void)strlcpy(a.user, "bad\r\nuser", sizeof(a.user));
	is_int(lka_check_sender(confs[CONF_A], &a, NULL, reply,
	    sizeof(reply)), SQ_PERMFAIL, "sender_with_control_bytes_fails");
	ok(strncmp(reply, "553 5.1.7 ", 10) == 0,
	    "sender_with_control_bytes_reply");
}

int
main(void)
{
	char	 cmd[128];
	int	 failed;

	pick_user();
	lka_qmail_owner = test_owner;
	(void)strlcpy(scratch, "/tmp/sqmail-lka.XXXXXX", sizeof(scratch));
	if (mkdtemp(scratch) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	write_fixtures();
	join_fan();
	build_confs();
	failed = table_open_all(confs[CONF_A]);
	is_int(failed, 1, "only_the_missing_table_fails_to_open");
	printf("# ordinary account: %s\n", user_u);

	test_rows();
	test_fields();
	test_qmail();

	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", scratch);
	return done_testing();
}
