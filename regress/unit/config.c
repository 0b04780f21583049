/*
 * Unit tests for lib/parse.y, lib/config.c and lib/config_xfer.c: every
 * keyword, defaults, macros, includes, errors with their "file:line:"
 * place, network matching, domain precedence, the built-in configuration
 * and the reload transport.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "imsg.h"
#include "log.h"
#include "mproc.h"
#include "msg.h"
#include "tap.h"

#define BASE	"/base"

static char	 errs[16384];
static int	 nerrs;

static void
capture(const char *line)
{
	if (nerrs++ == 0)
		errs[0] = '\0';
	(void)strlcat(errs, line, sizeof(errs));
	(void)strlcat(errs, "\n", sizeof(errs));
}

static void
errs_reset(void)
{
	errs[0] = '\0';
	nerrs = 0;
}

/* Parse files given as name, text, name, text, ..., NULL (list mode). */
static struct sqconf *
parse_list(const char *const *ft)
{
	struct conf_filelist	 files;
	struct sqconf		*c;

	TAILQ_INIT(&files);
	for (; ft[0] != NULL; ft += 2)
		if (conf_file_add(&files, ft[0], ft[1], strlen(ft[1])) == NULL)
			exit(2);
	errs_reset();
	c = config_parse(NULL, BASE, &files, NULL);
	conf_files_free(&files);
	return c;
}

static struct sqconf *
parse_text(const char *text, size_t len)
{
	struct conf_filelist	 files;
	struct sqconf		*c;

	TAILQ_INIT(&files);
	if (conf_file_add(&files, "test.conf", text, len) == NULL)
		exit(2);
	errs_reset();
	c = config_parse("test.conf", BASE, &files, NULL);
	conf_files_free(&files);
	return c;
}

static const char *
proto_name(enum listen_proto p)
{
	switch (p) {
	case LPROTO_SMTP:
		return "smtp";
	case LPROTO_SUBMISSION:
		return "submission";
	case LPROTO_SMTPS:
		return "smtps";
	case LPROTO_QMTP:
		return "qmtp";
	case LPROTO_QMQP:
		return "qmqp";
	case LPROTO_POP3:
		return "pop3";
	}
	return "?";
}

static void
net_text(const struct netaddr *n, char *buf, size_t len)
{
	char	 a[INET6_ADDRSTRLEN];

	if (n->ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&n->ss)->sin_addr,
		    a, sizeof(a));
	else
		inet_ntop(AF_INET6,
		    &((struct sockaddr_in6 *)&n->ss)->sin6_addr, a, sizeof(a));
	snprintf(buf, len, "%s/%d", a, n->bits);
}

/* One field of a configuration as text, so that rows compare strings. */
static const char *
field(struct sqconf *c, const char *key)
{
	static char	 buf[16384];
	char		 one[8192];
	struct listener	*l;
	struct table	*t;
	struct domain	*d;
	struct pki	*pk;
	struct authsrc	*as;
	size_t		 i;
	int		 j;

	buf[0] = '\0';
#define S(k, v)	if (strcmp(key, k) == 0) {				\
		strlcpy(buf, v, sizeof(buf));				\
		return buf;						\
	}
#define N(k, v)	if (strcmp(key, k) == 0) {				\
		snprintf(buf, sizeof(buf), "%lld", (long long)(v));	\
		return buf;						\
	}
	S("hostname", c->hostname);
	S("spool", c->spool);
	S("control_socket", c->control_socket);
	S("control_group", c->control_group);
	S("user", c->user);
	S("queue_user", c->queue_user);
	S("empty_dir", c->empty_dir);
	S("postmaster", c->postmaster);
	N("log_syslog", c->log_syslog);
	N("max_message_size", c->max_message_size);
	N("max_recipients", c->max_recipients);
	N("max_sessions", c->max_sessions);
	N("max_sessions_per_ip", c->max_sessions_per_ip);
	N("max_errors", c->max_errors);
	N("max_auth_failures", c->max_auth_failures);
	N("auth_fail_window", c->auth_fail_window);
	N("timeout_command", c->timeout_command);
	N("timeout_data", c->timeout_data);
	N("bare_lf_reject", c->bare_lf_reject);
	N("queue_lifetime", c->queue_lifetime);
	N("retry_min", c->retry_min);
	N("retry_max", c->retry_max);
	N("bounce_max_size", c->bounce_max_size);
	N("mda_concurrency", c->mda_concurrency);
	N("mta_concurrency", c->mta_concurrency);
	N("mta_host_concurrency", c->mta_host_concurrency);
	N("agent_idle", c->agent_idle);
	N("agent_program_timeout", c->agent_program_timeout);
	N("received_auth", c->received_auth);
	S("qmail_assign", c->qmail_assign);
	S("qmail_vdoms", c->qmail_vdoms);
	N("qmail_break", c->qmail_break);
	S("qmail_alias", c->qmail_alias);
#undef S
#undef N
	if (strcmp(key, "qmail_ignore") == 0) {
		for (i = 0; i < c->qmail_nignore; i++) {
			if (i > 0)
				strlcat(buf, ",", sizeof(buf));
			strlcat(buf, c->qmail_ignore[i], sizeof(buf));
		}
		if (c->qmail_nignore > 0 &&
		    c->qmail_ignore[c->qmail_nignore] != NULL)
			strlcat(buf, " unterminated!", sizeof(buf));
		return buf;
	}
	if (strcmp(key, "listeners") == 0) {
		TAILQ_FOREACH(l, &c->listeners, entry) {
			snprintf(one, sizeof(one), "%s%s %s%s%s",
			    buf[0] ? "," : "", l->name, proto_name(l->proto),
			    l->fd == -1 ? "" : " fd!",
			    l->sslen == (l->ss.ss_family == AF_INET ?
			    sizeof(struct sockaddr_in) :
			    sizeof(struct sockaddr_in6)) ? "" : " sslen!");
			strlcat(buf, one, sizeof(buf));
		}
	} else if (strcmp(key, "tables") == 0) {
		TAILQ_FOREACH(t, &c->tables, entry) {
			snprintf(one, sizeof(one), "%s%s %s %s",
			    buf[0] ? "," : "", t->name,
			    t->type == TABLE_FILE ? "file" : "cdb", t->path);
			strlcat(buf, one, sizeof(buf));
		}
	} else if (strcmp(key, "relay") == 0) {
		for (i = 0; i < c->nrelay; i++) {
			if (i > 0)
				strlcat(buf, ",", sizeof(buf));
			net_text(&c->relay_from[i], one, sizeof(one));
			strlcat(buf, one, sizeof(buf));
		}
	} else if (strcmp(key, "domains") == 0) {
		TAILQ_FOREACH(d, &c->domains, entry) {
			snprintf(one, sizeof(one), "%s%s %s %s user=%s "
			    "users=%s aliases=%s recipients=%s",
			    buf[0] ? "," : "", d->name,
			    d->method == MBOX_MAILDIR ? "maildir" :
			    d->method == MBOX_MBOX ? "mbox" : "?",
			    d->mailbox, d->user,
			    d->users ? d->users->name : "-",
			    d->aliases ? d->aliases->name : "-",
			    d->recipients ? d->recipients->name : "-");
			strlcat(buf, one, sizeof(buf));
			if (d->remote && d->tls != TLSP_OPPORTUNISTIC) {
				snprintf(one, sizeof(one), " tls=%d%s%s",
				    (int)d->tls, d->tls_fingerprint[0] ? ":" :
				    "", d->tls_fingerprint);
				strlcat(buf, one, sizeof(buf));
			}
			if (d->route_host[0] != '\0') {
				snprintf(one, sizeof(one), " route=%s%s%s:%u%s%s%s",
				    d->route_literal ? "[" : "", d->route_host,
				    d->route_literal ? "]" : "",
				    (unsigned)d->route_port,
				    d->route_smtps ? " smtps" : "",
				    d->auth_user[0] ? " auth=" : "", d->auth_user);
				strlcat(buf, one, sizeof(buf));
				if (d->auth_plaintext)
					strlcat(buf, " plaintext", sizeof(buf));
			}
		}
	} else if (strcmp(key, "domain_auth") == 0) {
		TAILQ_FOREACH(d, &c->domains, entry) {
			snprintf(one, sizeof(one), "%s%s=%s", buf[0] ? "," : "",
			    d->name, d->auth_src);
			strlcat(buf, one, sizeof(buf));
		}
	} else if (strcmp(key, "domain_lifetime") == 0) {
		if ((d = TAILQ_FIRST(&c->domains)) != NULL)
			snprintf(buf, sizeof(buf), "%lld",
			    (long long)d->lifetime);
	} else if (strcmp(key, "bounce_route") == 0) {
		if ((d = c->bounce_route) != NULL)
			snprintf(buf, sizeof(buf), "%s%s%s:%u%s%s%s",
			    d->route_literal ? "[" : "", d->route_host,
			    d->route_literal ? "]" : "", (unsigned)d->route_port,
			    d->route_smtps ? " smtps" : "",
			    d->auth_user[0] ? " auth=" : "", d->auth_user);
	} else if (strcmp(key, "listener_tls") == 0) {
		TAILQ_FOREACH(l, &c->listeners, entry) {
			snprintf(one, sizeof(one), "%s%s tls=%d pki=",
			    buf[0] ? "," : "", l->name, l->tls);
			strlcat(buf, one, sizeof(buf));
			for (j = 0; j < l->npki; j++) {
				if (j > 0)
					strlcat(buf, "|", sizeof(buf));
				strlcat(buf, l->pki[j], sizeof(buf));
			}
		}
	} else if (strcmp(key, "listener_auth") == 0) {
		TAILQ_FOREACH(l, &c->listeners, entry) {
			snprintf(one, sizeof(one), "%s%s auth=%s%s%s",
			    buf[0] ? "," : "", l->name, l->auth_table,
			    l->auth_plaintext ? " plaintext" : "",
			    l->auth_required ? " required" : "");
			strlcat(buf, one, sizeof(buf));
		}
	} else if (strcmp(key, "listener_cert") == 0) {
		TAILQ_FOREACH(l, &c->listeners, entry) {
			snprintf(one, sizeof(one), "%s%s tls=%d client-ca=%s "
			    "cert=%s", buf[0] ? "," : "", l->name, l->tls,
			    l->client_ca_path, l->auth_cert);
			strlcat(buf, one, sizeof(buf));
		}
	} else if (strcmp(key, "authsrcs") == 0) {
		TAILQ_FOREACH(as, &c->authsrcs, entry) {
			snprintf(one, sizeof(one), "%s%s type=%d%s%s%s%s "
			    "timeout=%lld", buf[0] ? "," : "", as->name,
			    (int)as->type, as->service[0] ? " service=" : "",
			    as->service, as->prog[0] ? " prog=" : "",
			    as->prog, (long long)as->timeout);
			strlcat(buf, one, sizeof(buf));
			if (as->type != AUTHB_LDAP)
				continue;
			snprintf(one, sizeof(one), " pool=%d url=%s bind-dn=%s "
			    "base=%s filter=%s search-dn=%s pw=%s ca=%s%s",
			    as->ldap.pool, as->ldap.url, as->ldap.bind_dn,
			    as->ldap.base,
			    as->ldap.filter, as->ldap.search_dn,
			    as->ldap.search_pw, as->ldap.ca,
			    as->ldap.starttls ? " starttls" : "");
			strlcat(buf, one, sizeof(buf));
		}
	} else if (strcmp(key, "pkis") == 0) {
		TAILQ_FOREACH(pk, &c->pkis, entry) {
			snprintf(one, sizeof(one), "%s%s cert=", buf[0] ?
			    "," : "", pk->name);
			strlcat(buf, one, sizeof(buf));
			strlcat(buf, pk->cert_path, sizeof(buf));
			strlcat(buf, " key=", sizeof(buf));
			strlcat(buf, pk->key_path, sizeof(buf));
			strlcat(buf, " chain=", sizeof(buf));
			strlcat(buf, pk->chain_path, sizeof(buf));
			strlcat(buf, pk->cert != NULL ? " read" : " unread",
			    sizeof(buf));
		}
	} else if (strcmp(key, "tls_protocols") == 0) {
		snprintf(buf, sizeof(buf), "%u", (unsigned)c->tls_protocols);
	} else if (strcmp(key, "tls_ciphers") == 0) {
		strlcpy(buf, c->tls_ciphers, sizeof(buf));
	} else if (strcmp(key, "tls_ca") == 0) {
		strlcpy(buf, c->tls_ca, sizeof(buf));
	} else if (strcmp(key, "dns_servers") == 0) {
		strlcpy(buf, c->dns_servers, sizeof(buf));
	} else
		strlcpy(buf, "(no such key)", sizeof(buf));
	return buf;
}

struct good {
	const char	*name;
	const char	*text;
	const char	*key;
	const char	*want;
};

static const struct good goods[] = {
	/* defaults */
	{ "default_spool", "", "spool", "/var/spool/sqmail" },
	{ "default_control_socket", "", "control_socket",
	    "/var/run/sqmaild.sock" },
	{ "default_control_group", "", "control_group", "" },
	{ "default_user", "", "user", "_sqmaild" },
	{ "default_queue_user", "", "queue_user", "_sqmailq" },
	{ "default_chroot", "", "empty_dir", "/var/empty" },
	{ "default_log", "", "log_syslog", "0" },
	{ "default_message_size", "", "max_message_size", "36700160" },
	{ "default_recipients", "", "max_recipients", "100" },
	{ "default_sessions", "", "max_sessions", "100" },
	{ "default_sessions_per_ip", "", "max_sessions_per_ip", "20" },
	{ "default_errors", "", "max_errors", "10" },
	{ "default_auth_failures", "", "max_auth_failures", "10" },
	{ "default_auth_window", "", "auth_fail_window", "900" },
	{ "default_command_timeout", "", "timeout_command", "300" },
	{ "default_data_timeout", "", "timeout_data", "600" },
	{ "default_bare_lf_reject", "", "bare_lf_reject", "1" },
	{ "default_queue_lifetime", "", "queue_lifetime", "604800" },
	{ "default_retry_min", "", "retry_min", "300" },
	{ "default_retry_max", "", "retry_max", "14400" },
	{ "default_bounce_max_size", "", "bounce_max_size", "65536" },
	{ "default_delivery_concurrency", "", "mda_concurrency", "20" },
	{ "default_remote_concurrency", "", "mta_concurrency", "100" },
	{ "default_remote_host_concurrency", "", "mta_host_concurrency",
	    "20" },
	{ "default_agent_idle", "", "agent_idle", "5" },
	{ "default_agent_program_timeout", "", "agent_program_timeout",
	    "3600" },
	{ "default_no_listeners", "", "listeners", "" },
	{ "default_no_domains", "", "domains", "" },
	{ "default_no_relay", "", "relay", "" },
	{ "default_postmaster_follows_hostname", "hostname \"mx.example\"\n",
	    "postmaster", "postmaster@mx.example" },
	{ "comments_and_blank_lines_only", "# nothing\n\n   # still\n\t\n",
	    "spool", "/var/spool/sqmail" },

	/* top-level keywords */
	{ "hostname", "hostname \"mx.example.org\"\n", "hostname",
	    "mx.example.org" },
	{ "hostname_bare_word", "hostname mx.example.org\n", "hostname",
	    "mx.example.org" },
	{ "spool_absolute", "spool \"/var/q\"\n", "spool", "/var/q" },
	{ "spool_relative_to_basedir", "spool \"var/q\"\n", "spool",
	    "/base/var/q" },
	{ "spool_dot_slash", "spool \"./var/q\"\n", "spool", "/base/var/q" },
	{ "control_socket", "control socket \"/run/s.sock\"\n",
	    "control_socket", "/run/s.sock" },
	{ "control_socket_relative", "control socket \"run/s.sock\"\n",
	    "control_socket", "/base/run/s.sock" },
	{ "control_socket_group", "control socket \"/s\" group \"staff\"\n",
	    "control_group", "staff" },
	{ "user", "user \"_smtp\"\n", "user", "_smtp" },
	{ "queue_user", "queue user \"_q\"\n", "queue_user", "_q" },
	{ "chroot", "chroot \"/var/empty2\"\n", "empty_dir", "/var/empty2" },
	{ "chroot_relative", "chroot \"run/empty\"\n", "empty_dir",
	    "/base/run/empty" },
	{ "log_syslog", "log syslog\n", "log_syslog", "1" },
	{ "log_stderr_after_syslog", "log syslog\nlog stderr\n", "log_syslog",
	    "0" },
	{ "postmaster_address", "postmaster \"root@example.org\"\n",
	    "postmaster", "root@example.org" },
	{ "postmaster_local_part_gets_hostname",
	    "hostname \"h.example\"\npostmaster \"root\"\n", "postmaster",
	    "root@h.example" },
	{ "later_setting_wins", "spool \"/a\"\nspool \"/b\"\n", "spool", "/b" },

	/* listen */
	{ "listen_v4_default_smtp", "listen on 127.0.0.1\n", "listeners",
	    "127.0.0.1:25 smtp" },
	{ "listen_v6_port_submission", "listen on ::1 port 2525 submission\n",
	    "listeners", "[::1]:2525 submission" },
	{ "listen_localhost_is_two", "pki mx { certificate \"/c\" key \"/k\" }\n"
	    "listen on localhost smtps\n",
	    "listeners", "127.0.0.1:465 smtps,[::1]:465 smtps" },
	{ "listen_star_qmtp", "listen on * qmtp\n", "listeners",
	    "0.0.0.0:209 qmtp,[::]:209 qmtp" },
	{ "listen_any_qmqp", "listen on any qmqp\n", "listeners",
	    "0.0.0.0:628 qmqp,[::]:628 qmqp" },
	{ "listen_pop3", "listen on 10.0.0.1 pop3\n", "listeners",
	    "10.0.0.1:110 pop3" },
	{ "listen_smtp_explicit_port", "listen on 10.0.0.1 port 26 smtp\n",
	    "listeners", "10.0.0.1:26 smtp" },
	{ "listen_quoted_v6", "listen on \"2001:db8::25\" port 25\n",
	    "listeners", "[2001:db8::25]:25 smtp" },
	{ "listen_same_address_other_ports",
	    "listen on 127.0.0.1\nlisten on 127.0.0.1 submission\n",
	    "listeners", "127.0.0.1:25 smtp,127.0.0.1:587 submission" },

	/* tables */
	{ "table_file", "table users \"file:/etc/mail/users\"\n", "tables",
	    "users file /etc/mail/users" },
	{ "table_cdb", "table aliases \"cdb:/etc/mail/aliases.cdb\"\n",
	    "tables", "aliases cdb /etc/mail/aliases.cdb" },
	{ "table_word_form", "table virt file:/etc/virt\n", "tables",
	    "virt file /etc/virt" },
	{ "table_relative_path", "table t \"file:etc/t\"\n", "tables",
	    "t file /base/etc/t" },
	{ "table_quoted_name", "table \"my-table.1\" \"file:/t\"\n", "tables",
	    "my-table.1 file /t" },

	/* relay */
	{ "relay_one", "relay from 10.0.0.0/8\n", "relay", "10.0.0.0/8" },
	{ "relay_list", "relay from { 127.0.0.1, ::1, 192.168.0.0/16 }\n",
	    "relay", "127.0.0.1/32,::1/128,192.168.0.0/16" },
	{ "relay_list_multiline",
	    "relay from {\n\t10.0.0.0/8,\n\t2001:db8::/32\n}\n", "relay",
	    "10.0.0.0/8,2001:db8::/32" },
	{ "relay_appends", "relay from 10.0.0.0/8\nrelay from { 10.1.0.0/16 }\n"
	    "relay from 1.2.3.4\n", "relay", "10.0.0.0/8,10.1.0.0/16,"
	    "1.2.3.4/32" },
	{ "relay_host_bits_cleared", "relay from 10.1.2.3/8\n", "relay",
	    "10.0.0.0/8" },

	/* limits */
	{ "message_size_M", "limit message-size 10M\n", "max_message_size",
	    "10485760" },
	{ "message_size_K_min", "limit message-size 1K\n", "max_message_size",
	    "1024" },
	{ "message_size_G_max", "limit message-size 2G\n", "max_message_size",
	    "2147483648" },
	{ "message_size_bytes", "limit message-size 5000000\n",
	    "max_message_size", "5000000" },
	{ "recipients", "limit recipients 500\n", "max_recipients", "500" },
	{ "sessions", "limit sessions 1000\n", "max_sessions", "1000" },
	{ "sessions_per_ip", "limit sessions-per-ip 5\n",
	    "max_sessions_per_ip", "5" },
	{ "errors", "limit errors 3\n", "max_errors", "3" },
	{ "auth_failures", "limit auth-failures 3\n", "max_auth_failures",
	    "3" },
	{ "auth_failures_off", "limit auth-failures 0\n",
	    "max_auth_failures", "0" },
	{ "auth_window_m", "limit auth-window 30m\n", "auth_fail_window",
	    "1800" },
	{ "command_timeout_s", "limit command-timeout 30s\n",
	    "timeout_command", "30" },
	{ "command_timeout_bare", "limit command-timeout 45\n",
	    "timeout_command", "45" },
	{ "command_timeout_m", "limit command-timeout 2m\n",
	    "timeout_command", "120" },
	{ "data_timeout_h", "limit data-timeout 1h\n", "timeout_data",
	    "3600" },
	{ "data_timeout_d", "limit data-timeout 1d\n", "timeout_data",
	    "86400" },
	{ "bare_lf_accept", "bare-lf accept\n", "bare_lf_reject", "0" },
	{ "bare_lf_reject", "bare-lf accept\nbare-lf reject\n",
	    "bare_lf_reject", "1" },

	/* queue and delivery */
	{ "queue_lifetime", "queue lifetime 3d\n", "queue_lifetime",
	    "259200" },
	{ "queue_retry_min", "queue retry-min 1m\n", "retry_min", "60" },
	{ "queue_retry_max", "queue retry-max 2h\n", "retry_max", "7200" },
	{ "retry_min_equals_max", "queue retry-min 1h\nqueue retry-max 1h\n",
	    "retry_max", "3600" },
	{ "bounce_max_size", "bounce max-size 128K\n", "bounce_max_size",
	    "131072" },
	{ "bounce_max_size_zero", "bounce max-size 0\n", "bounce_max_size",
	    "0" },
	{ "delivery_concurrency", "delivery concurrency 5\n",
	    "mda_concurrency", "5" },
	{ "remote_concurrency", "remote concurrency 7\n",
	    "mta_concurrency", "7" },
	{ "remote_host_concurrency", "remote host-concurrency 3\n",
	    "mta_host_concurrency", "3" },
	{ "route_auth_plaintext", "domain x.org { route \"[192.0.2.1]:587\" "
	    "auth \"u\" \"s\" plaintext }\n", "domains",
	    "x.org maildir ~/Maildir/ user= users=- aliases=- recipients=- "
	    "route=[192.0.2.1]:587 auth=u plaintext" },
	{ "agent_idle", "agent idle 30s\n", "agent_idle", "30" },
	{ "agent_idle_zero", "agent idle 0\n", "agent_idle", "0" },
	{ "agent_program_timeout", "agent program-timeout 2s\n",
	    "agent_program_timeout", "2" },
	{ "default_received_auth", "", "received_auth", "0" },
	{ "default_qmail_break", "", "qmail_break", "45" },
	{ "default_qmail_alias_none", "", "qmail_alias", "" },
	{ "default_qmail_assign_none", "", "qmail_assign", "" },
	{ "default_qmail_ignore_none", "", "qmail_ignore", "" },
	{ "qmail_assign_absolute", "qmail assign \"/etc/sqmail/assign\"\n",
	    "qmail_assign", "/etc/sqmail/assign" },
	{ "qmail_virtualdomains", "qmail virtualdomains \"/v/vd\"\n",
	    "qmail_vdoms", "/v/vd" },
	{ "qmail_break_plus", "qmail break \"+\"\n", "qmail_break", "43" },
	{ "qmail_alias_user", "qmail alias-user \"alias\"\n", "qmail_alias",
	    "alias" },
	{ "qmail_ignore_list_and_lines", "qmail ignore \"a\" \"b\"\n"
	    "qmail ignore \"c\" \"a\"\n", "qmail_ignore", "a,b,c" },
	{ "received_auth", "received auth\n", "received_auth", "1" },
	{ "domain_auth", "table u file:/u\ndomain a.test {\n\tauth users u\n"
	    "}\ndomain b.test {\n\tauth system\n}\ndomain c.test {\n\t"
	    "route \"[192.0.2.1]\" auth \"x\" \"y\"\n}\n", "domain_auth",
	    "a.test=u,b.test=@system,c.test=" },

	/* macros */
	{ "macro_string", "dir = \"/srv/spool\"\nspool $dir\n", "spool",
	    "/srv/spool" },
	{ "macro_number", "max = 50\nlimit recipients $max\n",
	    "max_recipients", "50" },
	{ "macro_size", "sz = 20M\nlimit message-size $sz\n",
	    "max_message_size", "20971520" },
	{ "macro_not_expanded_in_quotes", "dir = \"/x\"\nspool \"$dir\"\n",
	    "spool", "/base/$dir" },
	{ "macro_redefined", "d = \"/a\"\nd = \"/b\"\nspool $d\n", "spool",
	    "/b" },
	{ "macro_self_reference", "d = \"/a\"\nd = $d\nspool $d\n", "spool",
	    "/a" },
	{ "macro_in_list", "lan = \"10.0.0.0/8\"\nrelay from { $lan, ::1 }\n",
	    "relay", "10.0.0.0/8,::1/128" },
	{ "macro_listen", "ip = \"192.0.2.1\"\nlisten on $ip port 25\n",
	    "listeners", "192.0.2.1:25 smtp" },

	/* lexical */
	{ "string_escapes", "user \"a\\\"b\\\\c\"\n", "user", "a\"b\\c" },
	{ "crlf_line_ends", "spool \"/a\"\r\nuser \"u\"\r\n", "user", "u" },
	{ "no_final_newline", "spool \"/a\"\nuser \"u\"", "user", "u" },
	{ "trailing_comment", "user \"u\" # the user\n", "user", "u" },
	{ "hash_inside_string", "spool \"/a#b\"\n", "spool", "/a#b" },

	/* domains */
	{ "domain_defaults", "domain \"example.org\" {\n}\n", "domains",
	    "example.org maildir ~/Maildir/ user= users=- aliases=- "
	    "recipients=-" },
	{ "domain_lowercased", "domain \"Example.ORG\" { }\n", "domains",
	    "example.org maildir ~/Maildir/ user= users=- aliases=- "
	    "recipients=-" },
	{ "domain_one_line", "domain \"x.org\" { deliver mbox \"/var/mail/%u\" "
	    "user \"vmail\" }\n", "domains",
	    "x.org mbox /var/mail/%u user=vmail users=- aliases=- "
	    "recipients=-" },
	{ "domain_brace_next_line", "domain x.org\n{\n\tuser \"v\"\n}\n",
	    "domains", "x.org maildir ~/Maildir/ user=v users=- aliases=- "
	    "recipients=-" },
	{ "domain_maildir_relative", "domain x.org { deliver maildir "
	    "\"mail/%l/\" }\n", "domains", "x.org maildir /base/mail/%l/ "
	    "user= users=- aliases=- recipients=-" },
	{ "domain_maildir_home", "domain x.org { deliver maildir "
	    "\"~/Mail/%l/\" }\n", "domains", "x.org maildir ~/Mail/%l/ "
	    "user= users=- aliases=- recipients=-" },
	{ "domain_tables", "table users file:/u\ntable aliases file:/a\n"
	    "table valid cdb:/v\ndomain x.org {\n\tusers users\n"
	    "\taliases aliases\n\trecipients valid\n}\n", "domains",
	    "x.org maildir ~/Maildir/ user= users=users aliases=aliases "
	    "recipients=valid" },
	{ "domain_suffix_and_catchall", "domain \".example.org\" { }\n"
	    "domain \"*\" { deliver maildir \"/var/mail/all/\" }\n", "domains",
	    ".example.org maildir ~/Maildir/ user= users=- aliases=- "
	    "recipients=-,* maildir /var/mail/all/ user= users=- aliases=- "
	    "recipients=-" },
	{ "domain_macro_name", "d = \"x.org\"\ndomain $d { }\n", "domains",
	    "x.org maildir ~/Maildir/ user= users=- aliases=- recipients=-" },
	{ "route_host", "domain x.org { route \"relay.x.net\" }\n", "domains",
	    "x.org maildir ~/Maildir/ user= users=- aliases=- recipients=- "
	    "route=relay.x.net:25" },
	{ "route_host_port", "domain x.org { route \"relay.x.net:2525\" }\n",
	    "domains", "x.org maildir ~/Maildir/ user= users=- aliases=- "
	    "recipients=- route=relay.x.net:2525" },
	{ "route_literal", "domain \".x.org\" { route \"[192.0.2.1]\" }\n",
	    "domains", ".x.org maildir ~/Maildir/ user= users=- aliases=- "
	    "recipients=- route=[192.0.2.1]:25" },
	{ "route_literal_v6_port", "domain x.org { route \"[2001:db8::1]:26\" "
	    "}\n", "domains", "x.org maildir ~/Maildir/ user= users=- "
	    "aliases=- recipients=- route=[2001:db8::1]:26" },
	{ "route_default", "domain \"*\" { route \"smarthost.x.net\" }\n",
	    "domains", "* maildir ~/Maildir/ user= users=- aliases=- "
	    "recipients=- route=smarthost.x.net:25" },
	{ "dns_servers", "dns servers \"127.0.0.1:5353,[::1]:53\"\n",
	    "dns_servers", "127.0.0.1:5353,[::1]:53" },
	{ "default_dns_servers", "", "dns_servers", "" },
	{ "tls_verify", "domain x.org { tls verify }\n", "domains",
	    "x.org maildir ~/Maildir/ user= users=- aliases=- recipients=- "
	    "tls=3" },
	{ "tls_none_with_route", "domain x.org {\n\troute \"[192.0.2.1]\"\n"
	    "\ttls none\n}\n", "domains", "x.org maildir ~/Maildir/ user= "
	    "users=- aliases=- recipients=- tls=1 route=[192.0.2.1]:25" },
	{ "tls_fingerprint_colons", "domain x.org { tls fingerprint "
	    "\"SHA256:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:"
	    "01:23:45:67:89:AB:CD:EF:01:23:45:67:89\" }\n", "domains",
	    "x.org maildir ~/Maildir/ user= users=- aliases=- recipients=- "
	    "tls=4:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123"
	    "456789" },
	{ "tls_ca", "tls ca \"/etc/my-ca.pem\"\n", "tls_ca", "/etc/my-ca.pem" },
	{ "route_smtps_auth", "domain x.org { route \"relay.x.net:465\" smtps "
	    "auth \"me@x.org\" \"s3cret with spaces\" }\n", "domains",
	    "x.org maildir ~/Maildir/ user= users=- aliases=- recipients=- "
	    "route=relay.x.net:465 smtps auth=me@x.org" },
	{ "domain_lifetime", "domain x.org {\n\ttls opportunistic\n\t"
	    "lifetime 2d\n}\n", "domain_lifetime", "172800" },
	{ "bounce_route", "bounce route \"[192.0.2.9]:2626\" smtps auth \"b\" "
	    "\"s\"\n", "bounce_route", "[192.0.2.9]:2626 smtps auth=b" },
	{ "default_bounce_route", "", "bounce_route", "" },
	{ "default_tls_ca", "", "tls_ca", "/etc/ssl/certs/ca-certificates.crt" },

	/* TLS of the listeners: pki blocks, listen options */
	{ "default_no_pki", "", "pkis", "" },
	{ "default_tls_protocols_1_2_and_1_3", "", "tls_protocols", "24" },
	{ "default_tls_ciphers_secure", "", "tls_ciphers", "secure" },
	{ "tls_protocols_1_3_only", "tls protocols \"tlsv1.3\"\n",
	    "tls_protocols", "16" },
	{ "tls_protocols_all", "tls protocols all\n", "tls_protocols", "30" },
	{ "tls_ciphers", "tls ciphers \"HIGH:!aNULL\"\n", "tls_ciphers",
	    "HIGH:!aNULL" },
	{ "pki_block", "pki \"mx.example.org\" {\n\tcertificate \"/etc/c.pem\"\n"
	    "\tkey \"k.pem\"\n\tchain \"/etc/chain.pem\"\n}\n", "pkis",
	    "mx.example.org cert=/etc/c.pem key=/base/k.pem "
	    "chain=/etc/chain.pem unread" },
	{ "pki_one_line_two_blocks", "pki a { certificate \"/a.crt\" key "
	    "\"/a.key\" }\npki b\n{\n\tkey \"/b.key\" certificate \"/b.crt\"\n}\n",
	    "pkis", "a cert=/a.crt key=/a.key chain= unread,b cert=/b.crt "
	    "key=/b.key chain= unread" },
	{ "listen_tls_every_pki", "pki a { certificate \"/c\" key \"/k\" }\n"
	    "listen on 127.0.0.1 port 25 tls\n", "listener_tls",
	    "127.0.0.1:25 tls=1 pki=" },
	{ "listen_smtps_named_pkis", "pki a { certificate \"/c\" key \"/k\" }\n"
	    "pki b { certificate \"/c\" key \"/k\" }\n"
	    "listen on 127.0.0.1 smtps pki b pki a pki B\n", "listener_tls",
	    "127.0.0.1:465 tls=0 pki=b|a" },
	{ "listen_localhost_tls_both", "pki a { certificate \"/c\" key \"/k\" }\n"
	    "listen on localhost submission tls pki a\n", "listener_tls",
	    "127.0.0.1:587 tls=1 pki=a,[::1]:587 tls=1 pki=a" },
	{ "listen_plain_no_tls", "listen on 127.0.0.1\n", "listener_tls",
	    "127.0.0.1:25 tls=0 pki=" },
	{ "table_named_like_new_keyword", "table key file:/k\n", "tables",
	    "key file /k" },
	{ "listen_auth_after_tls", "table u file:/u\npki a { certificate "
	    "\"/c\" key \"/k\" }\nlisten on 127.0.0.1 submission tls auth "
	    "users u auth required\n", "listener_auth",
	    "127.0.0.1:587 auth=u required" },
	{ "listen_auth_plaintext", "table u file:/u\nlisten on 127.0.0.1 "
	    "auth users u auth plaintext\n", "listener_auth",
	    "127.0.0.1:25 auth=u plaintext" },
	{ "listen_no_auth", "listen on 127.0.0.1\n", "listener_auth",
	    "127.0.0.1:25 auth=" },
	{ "listen_auth_system", "listen on 127.0.0.1 auth system auth "
	    "plaintext\n", "listener_auth", "127.0.0.1:25 auth=@system plaintext" },
	{ "listen_auth_system_src", "listen on 127.0.0.1 auth system auth "
	    "plaintext\n", "authsrcs", "@system type=1 timeout=0" },
	{ "listen_auth_pam", "listen on 127.0.0.1 auth system pam \"smtp-in\" "
	    "auth plaintext\n", "authsrcs", "@pam:smtp-in type=2 "
	    "service=smtp-in timeout=0" },
	{ "listen_auth_checkpassword", "listen on 127.0.0.1 auth "
	    "checkpassword \"/bin/cp\" auth plaintext\n", "authsrcs",
	    "@checkpassword:93f50d69d3fa8414 type=3 prog=/bin/cp timeout=10" },
	/* The same settings share one source; another timeout is another. */
	{ "listen_auth_checkpassword_shared", "listen on 127.0.0.1 auth "
	    "checkpassword \"/bin/cp\" auth plaintext\nlisten on ::1 auth "
	    "checkpassword \"/bin/cp\" auth plaintext\nlisten on 127.0.0.2 "
	    "auth checkpassword \"/bin/cp\" timeout 1m auth plaintext\n",
	    "authsrcs", "@checkpassword:93f50d69d3fa8414 type=3 prog=/bin/cp "
	    "timeout=10,@checkpassword:93f18769d3f76a8b type=3 prog=/bin/cp "
	    "timeout=60" },
	{ "listen_auth_ldap_bind", "listen on 127.0.0.1 auth ldap "
	    "\"ldap://127.0.0.1:389\" bind-dn \"uid=%u,ou=p,dc=x\" auth "
	    "plaintext\n", "authsrcs", "@ldap:ad1183e462e0bb20 type=4 timeout=10 "
	    "pool=0 url=ldap://127.0.0.1:389 bind-dn=uid=%u,ou=p,dc=x base= filter= "
	    "search-dn= pw= ca=" },
	{ "listen_auth_ldap_search", "pki a { certificate \"/c\" key \"/k\" "
	    "}\nlisten on 127.0.0.1 auth ldap "
	    "\"ldap://[::1]\" base \"dc=x\" filter \"(&(uid=%u)(m=100%%))\" "
	    "search-dn \"cn=r,dc=x\" search-password \"s p\" starttls ca "
	    "\"/etc/ca.pem\" timeout 1m pool 8 tls auth plaintext\n", "authsrcs",
	    "@ldap:8eea3f157cd0c156 type=4 timeout=60 pool=8 url=ldap://[::1] "
	    "bind-dn= base=dc=x filter=(&(uid=%u)(m=100%%)) search-dn=cn=r,dc=x "
	    "pw=s p ca=/etc/ca.pem starttls" },
	/* Client certificates: the client CA turns STARTTLS on. */
	{ "listen_client_cert", "table m file:/m\npki a { certificate "
	    "\"/c\" key \"/k\" }\nlisten on 127.0.0.1 tls client-ca "
	    "\"ca.pem\" auth certificate m\n", "listener_cert",
	    "127.0.0.1:25 tls=1 client-ca=/base/ca.pem cert=m" },
	{ "listen_client_cert_smtps", "table m file:/m\npki a { certificate "
	    "\"/c\" key \"/k\" }\nlisten on 127.0.0.1 smtps auth "
	    "certificate m tls client-ca \"/ca.pem\"\n", "listener_cert",
	    "127.0.0.1:465 tls=0 client-ca=/ca.pem cert=m" },
	{ "listen_client_cert_with_auth", "table m file:/m\ntable u "
	    "file:/u\npki a { certificate \"/c\" key \"/k\" }\nlisten on "
	    "127.0.0.1 submission tls client-ca \"/ca.pem\" auth "
	    "certificate m auth users u\n", "listener_auth",
	    "127.0.0.1:587 auth=u" },
	{ "listen_no_client_cert", "listen on 127.0.0.1\n", "listener_cert",
	    "127.0.0.1:25 tls=0 client-ca= cert=" },
	/* The new keywords still name tables. */
	{ "listen_auth_keyword_table", "table system file:/u\nlisten on "
	    "127.0.0.1 auth users system auth plaintext\n", "listener_auth",
	    "127.0.0.1:25 auth=system plaintext" },
};

struct bad {
	const char	*name;
	const char	*text;
	const char	*want;		/* the first error line, a prefix */
	int		 nerrs;		/* error lines, "too many" included */
};

static const struct bad bads[] = {
	{ "client_ca_without_table", "pki a { certificate \"/c\" key "
	    "\"/k\" }\nlisten on 127.0.0.1 tls client-ca \"/ca.pem\"\n",
	    "test.conf:2: listen on 127.0.0.1: tls client-ca and auth "
	    "certificate go together", 1 },
	{ "cert_table_without_client_ca", "table m file:/m\npki a { "
	    "certificate \"/c\" key \"/k\" }\nlisten on 127.0.0.1 tls "
	    "auth certificate m\n", "test.conf:3: listen on 127.0.0.1: tls "
	    "client-ca and auth certificate go together", 1 },
	{ "cert_table_undefined", "pki a { certificate \"/c\" key \"/k\" }"
	    "\nlisten on 127.0.0.1 tls client-ca \"/ca.pem\" auth "
	    "certificate nosuch\n", "test.conf:2: table \"nosuch\" is not "
	    "defined", 1 },
	{ "client_ca_twice", "table m file:/m\npki a { certificate \"/c\" "
	    "key \"/k\" }\nlisten on 127.0.0.1 tls client-ca \"/a\" tls "
	    "client-ca \"/b\" auth certificate m\n", "test.conf:3: listen "
	    "on: tls client-ca given twice", 1 },
	{ "client_cert_on_qmtp", "table m file:/m\nlisten on 127.0.0.1 qmtp "
	    "tls client-ca \"/ca.pem\" auth certificate m\n", "test.conf:2: "
	    "listen on 127.0.0.1: client certificates are for smtp", 1 },
	{ "client_ca_without_pki", "table m file:/m\nlisten on 127.0.0.1 tls "
	    "client-ca \"/ca.pem\" auth certificate m\n", "test.conf:2: "
	    "listen on 127.0.0.1: TLS needs a pki block", 1 },
	{ "keyword_without_argument", "hostname\n",
	    "test.conf:1: syntax error", 1 },
	{ "unknown_word_on_line_3", "\n\nbogus\n",
	    "test.conf:3: syntax error", 1 },
	{ "extra_argument", "spool \"/a\" extra\n",
	    "test.conf:1: syntax error", 1 },
	{ "unexpected_character", "spool \"/a\";\n",
	    "test.conf:1: unexpected character ';'", 1 },
	{ "unexpected_control_byte", "spool \"/a\"\001\n",
	    "test.conf:1: unexpected character 0x01", 1 },
	{ "unterminated_string", "user \"abc\nspool \"/a\"\n",
	    "test.conf:1: unterminated string", 1 },
	{ "unterminated_string_at_eof", "user \"abc",
	    "test.conf:1: unterminated string", 1 },
	{ "bad_escape", "user \"a\\nb\"\n",
	    "test.conf:1: bad escape in string", 1 },
	{ "bad_escape_skips_rest_of_string", "user \"a\\qb\\\\\" \n",
	    "test.conf:1: bad escape in string", 1 },
	{ "bad_escape_skips_escaped_quote", "user \"a\\qb\\\"c\" \n",
	    "test.conf:1: bad escape in string", 1 },
	{ "hostname_with_space", "hostname \"a b\"\n",
	    "test.conf:1: hostname: \"a b\" is not a host name", 1 },
	{ "hostname_empty_label", "hostname \"a..b\"\n",
	    "test.conf:1: hostname: \"a..b\" is not a host name", 1 },
	{ "empty_user", "user \"\"\n",
	    "test.conf:1: user: \"\" is not a user name", 1 },
	{ "user_too_long", "user \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaa\"\n", "test.conf:1: user: \"", 1 },
	{ "empty_spool", "spool \"\"\n", "test.conf:1: spool: empty path", 1 },
	{ "postmaster_without_local_part", "postmaster \"@x.org\"\n",
	    "test.conf:1: postmaster: \"@x.org\" is not an address", 1 },
	{ "undefined_macro", "x = 1\nhostname $nope\n",
	    "test.conf:2: undefined macro \"$nope\"", 1 },
	{ "dollar_alone", "hostname $\n",
	    "test.conf:1: '$' without a macro name", 1 },
	{ "bad_macro_name", "1x = 3\n", "test.conf:1: bad macro name \"1x\"",
	    1 },
	{ "macro_named_like_keyword", "spool = 3\n",
	    "test.conf:1: syntax error", 1 },
	{ "listen_duplicate", "listen on 1.2.3.4\nlisten on 1.2.3.4 port 25\n",
	    "test.conf:2: listen on 1.2.3.4:25: already listening there", 1 },
	{ "listen_duplicate_via_localhost", "listen on localhost\n"
	    "listen on ::1\n",
	    "test.conf:2: listen on [::1]:25: already listening there", 1 },
	{ "listen_hostname", "listen on mx.example.org\n",
	    "test.conf:1: listen on \"mx.example.org\": not an IPv4 or IPv6 "
	    "address", 1 },
	{ "listen_port_zero", "listen on 1.2.3.4 port 0\n",
	    "test.conf:1: port 0 is out of range (1 to 65535)", 1 },
	{ "listen_port_too_big", "listen on 1.2.3.4 port 65536\n",
	    "test.conf:1: port 65536 is out of range (1 to 65535)", 1 },
	{ "listen_unknown_protocol", "listen on 1.2.3.4 imap\n",
	    "test.conf:1: syntax error", 1 },
	{ "table_duplicate", "table t file:/a\ntable t cdb:/b\n",
	    "test.conf:2: table \"t\" is already defined", 1 },
	{ "table_bad_type", "table t \"ldap:/x\"\n",
	    "test.conf:1: table \"t\": \"ldap:/x\" is not file:PATH, "
	    "cdb:PATH or aliases:PATH", 1 },
	{ "table_empty_path", "table t \"file:\"\n",
	    "test.conf:1: table: empty path", 1 },
	{ "table_bad_name", "table \"a b\" file:/x\n",
	    "test.conf:1: table \"a b\": bad name", 1 },
	{ "table_undefined", "domain x.org {\n\tusers nope\n}\n",
	    "test.conf:2: table \"nope\" is not defined", 1 },
	{ "table_defined_after_use", "domain x.org { aliases a }\n"
	    "table a file:/a\n", "test.conf:1: table \"a\" is not defined", 1 },
	{ "domain_duplicate_any_case", "domain \"Example.ORG\" { }\n"
	    "domain \"example.org\" { }\n",
	    "test.conf:2: domain \"example.org\" is already defined", 1 },
	{ "domain_bad_name", "domain \"a..b\" { }\n",
	    "test.conf:1: domain \"a..b\": not a domain", 1 },
	{ "domain_catchall_needs_deliver", "domain \"*\" {\n\tuser \"x\"\n}\n",
	    "test.conf:3: domain \"*\" takes every other domain", 1 },
	{ "route_and_deliver", "domain x.org {\n\troute \"r.x.net\"\n"
	    "\tdeliver mbox \"/m\"\n}\n",
	    "test.conf:4: domain \"x.org\": deliver (local) and route", 1 },
	{ "route_bad_port", "domain x.org { route \"r.x.net:0\" }\n",
	    "test.conf:1: route \"r.x.net:0\": port", 1 },
	{ "route_bad_host", "domain x.org { route \"r..x\" }\n",
	    "test.conf:1: route \"r..x\": not host", 1 },
	{ "route_bad_literal", "domain x.org { route \"[r.x.net]\" }\n",
	    "test.conf:1: route \"[r.x.net]\": not host", 1 },
	{ "route_literal_junk", "domain x.org { route \"[192.0.2.1]x\" }\n",
	    "test.conf:1: route \"[192.0.2.1]x\": not host", 1 },
	{ "route_auth_user_with_space", "domain x.org { route \"r.x.net\" "
	    "auth \"a b\" \"s\" }\n",
	    "test.conf:1: route auth: the user must be", 1 },
	{ "route_auth_without_secret", "domain x.org {\n\troute \"r.x.net\" "
	    "auth \"a\"\n}\n", "test.conf:2: syntax error", 1 },
	{ "domain_lifetime_zero", "domain x.org {\n\tlifetime 0\n}\n",
	    "test.conf:2: lifetime", 1 },
	{ "bounce_route_twice", "bounce route \"a.x.net\"\n"
	    "bounce route \"b.x.net\"\n",
	    "test.conf:2: bounce route is already defined", 1 },
	{ "tls_and_deliver", "domain x.org {\n\ttls verify\n"
	    "\tdeliver mbox \"/m\"\n}\n",
	    "test.conf:4: domain \"x.org\": deliver (local) and route or tls",
	    1 },
	{ "tls_fingerprint_short", "domain x.org { tls fingerprint \"ab\" }\n",
	    "test.conf:1: tls fingerprint: not a SHA-256 in hex", 1 },
	{ "tls_unknown_policy", "domain x.org {\n\ttls maybe\n}\n",
	    "test.conf:2: syntax error", 1 },
	{ "dns_servers_junk", "dns servers \"ns1.example\"\n",
	    "test.conf:1: dns servers \"ns1.example\": not a list", 1 },
	{ "domain_bad_template", "domain x.org { deliver maildir \"~/%x/\" }\n",
	    "test.conf:1: deliver: \"~/%x/\": only %u and %l", 1 },
	{ "domain_error_recovers_inside_block",
	    "domain x.org {\n\tdeliver foo \"x\"\n\tuser \"u\"\n}\n",
	    "test.conf:2: syntax error", 1 },
	{ "relay_prefix_too_long", "relay from 10.0.0.0/33\n",
	    "test.conf:1: relay from \"10.0.0.0/33\": not an address", 1 },
	{ "relay_bad_in_list", "relay from {\n\t10.0.0.0/8,\n\tbogus\n}\n",
	    "test.conf:3: relay from \"bogus\"", 1 },
	{ "relay_empty_list", "relay from { }\n", "test.conf:1: syntax error",
	    1 },
	{ "message_size_too_small", "limit message-size 512\n",
	    "test.conf:1: limit message-size 512 is out of range (1024 to "
	    "2147483648)", 1 },
	{ "message_size_too_big", "limit message-size 3G\n",
	    "test.conf:1: limit message-size 3221225472 is out of range", 1 },
	{ "message_size_bad_suffix", "limit message-size 10X\n",
	    "test.conf:1: bad size \"10X\"", 1 },
	{ "message_size_lowercase_suffix", "limit message-size 10m\n",
	    "test.conf:1: bad size \"10m\"", 1 },
	{ "time_uppercase_suffix", "limit command-timeout 5M\n",
	    "test.conf:1: bad time \"5M\"", 1 },
	{ "time_two_suffixes", "limit data-timeout 5mm\n",
	    "test.conf:1: bad time \"5mm\"", 1 },
	{ "time_zero", "limit data-timeout 0\n",
	    "test.conf:1: limit data-timeout 0 is out of range", 1 },
	{ "number_with_suffix", "limit recipients 10K\n",
	    "test.conf:1: bad number \"10K\"", 1 },
	{ "number_negative", "limit recipients -1\n",
	    "test.conf:1: bad number \"-1\"", 1 },
	{ "number_overflow", "limit recipients 99999999999999999999999\n",
	    "test.conf:1: number \"99999999999999999999999\" is too large", 1 },
	{ "size_overflow", "limit message-size 99999999999G\n",
	    "test.conf:1: size \"99999999999G\" is too large", 1 },
	{ "recipients_zero", "limit recipients 0\n",
	    "test.conf:1: limit recipients 0 is out of range (1 to 100000)", 1 },
	{ "recipients_too_many", "limit recipients 100001\n",
	    "test.conf:1: limit recipients 100001 is out of range", 1 },
	{ "sessions_zero", "limit sessions 0\n",
	    "test.conf:1: limit sessions 0 is out of range", 1 },
	{ "errors_too_many", "limit errors 1001\n",
	    "test.conf:1: limit errors 1001 is out of range", 1 },
	{ "auth_failures_too_many", "limit auth-failures 100001\n",
	    "test.conf:1: limit auth-failures 100001 is out of range", 1 },
	{ "auth_window_zero", "limit auth-window 0\n",
	    "test.conf:1: limit auth-window 0 is out of range", 1 },
	{ "qmail_break_two_characters", "qmail break \"+-\"\n",
	    "test.conf:1: qmail break: \"+-\" is not one printable character", 1 },
	{ "qmail_break_at", "qmail break \"@\"\n",
	    "test.conf:1: qmail break: \"@\" is not one printable character", 1 },
	{ "qmail_break_slash", "qmail break \"/\"\n",
	    "test.conf:1: qmail break: \"/\" is not one", 1 },
	{ "qmail_ignore_bad_name", "qmail ignore \"a:b\"\n",
	    "test.conf:1: qmail ignore: \"a:b\" is not a user name", 1 },
	{ "qmail_alias_user_bad_name", "qmail alias-user \"-x\"\n",
	    "test.conf:1: qmail alias-user: \"-x\" is not a user name", 1 },
	{ "qmail_assign_empty_path", "qmail assign \"\"\n",
	    "test.conf:1: qmail assign: empty path", 1 },
	{ "agent_program_timeout_too_long", "agent program-timeout 2d\n",
	    "test.conf:1: agent program-timeout 172800 is out of range", 1 },
	{ "domain_two_auth", "table u file:/u\ndomain a.test {\n\tauth "
	    "users u\n\tauth system\n}\n", "test.conf:4: domain a.test: more "
	    "than one auth backend", 1 },
	{ "remote_concurrency_zero", "remote concurrency 0\n",
	    "test.conf:1: remote concurrency 0 is out of range (1 to 10000)",
	    1 },
	{ "remote_host_concurrency_big", "remote host-concurrency 10001\n",
	    "test.conf:1: remote host-concurrency 10001 is out of range", 1 },
	{ "plaintext_without_auth", "domain x.org {\n\troute \"r.x.net\" "
	    "plaintext\n}\n", "test.conf:2: syntax error", 1 },
	{ "concurrency_zero", "delivery concurrency 0\n",
	    "test.conf:1: delivery concurrency 0 is out of range", 1 },
	{ "agent_idle_too_long", "agent idle 2h\n",
	    "test.conf:1: agent idle 7200 is out of range", 1 },
	{ "lifetime_too_short", "queue lifetime 0s\n",
	    "test.conf:1: queue lifetime 0 is out of range", 1 },
	{ "retry_min_above_max", "queue retry-min 2h\nqueue retry-max 1h\n",
	    "test.conf:2: queue retry-min (7200s) is above queue retry-max "
	    "(3600s)", 1 },
	{ "retry_min_above_default_max", "\nqueue retry-min 5h\n",
	    "test.conf:2: queue retry-min (18000s) is above queue retry-max "
	    "(14400s)", 1 },
	{ "control_socket_too_long", "control socket \"/aaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\"\n",
	    "test.conf:1: control socket: \"/aaaa", 1 },
	{ "include_missing", "include \"nope.conf\"\n",
	    "test.conf:1: nope.conf: not in the configuration sent", 1 },
	{ "include_self", "include \"test.conf\"\n",
	    "test.conf:1: include loop: test.conf", 1 },
	{ "errors_on_three_lines", "bogus\nlimit recipients 0\nhostname\n",
	    "test.conf:1: syntax error", 3 },
	{ "two_errors_on_one_line_one_message", "hostname \"a\" ; ;\n",
	    "test.conf:1: unexpected character ';'", 2 },
	{ "listen_auth_without_tls", "table u file:/u\nlisten on 127.0.0.1 "
	    "auth users u\n", "test.conf:2: listen on 127.0.0.1: auth without "
	    "tls or smtps is never offered", 1 },
	{ "listen_auth_on_qmtp", "table u file:/u\nlisten on 127.0.0.1 qmtp "
	    "auth users u auth plaintext\n", "test.conf:2: listen on "
	    "127.0.0.1: auth is for smtp, submission and smtps", 1 },
	{ "listen_auth_required_alone", "listen on 127.0.0.1 auth required\n",
	    "test.conf:1: listen on 127.0.0.1: auth plaintext and auth "
	    "required need", 1 },
	{ "listen_auth_table_undefined", "listen on 127.0.0.1 auth users u "
	    "auth plaintext\n", "test.conf:1: table \"u\" is not defined", 1 },
	{ "listen_auth_two_backends", "table u file:/u\nlisten on 127.0.0.1 "
	    "auth users u auth system auth plaintext\n", "test.conf:2: listen "
	    "on: more than one auth backend", 1 },
	{ "listen_auth_checkpassword_relative", "listen on 127.0.0.1 auth "
	    "checkpassword \"bin/cp\" auth plaintext\n", "test.conf:1: auth "
	    "checkpassword: \"bin/cp\": give the program's absolute path", 1 },
	{ "listen_auth_checkpassword_timeout", "listen on 127.0.0.1 auth "
	    "checkpassword \"/bin/cp\" timeout 301s auth plaintext\n",
	    "test.conf:1: auth checkpassword timeout 301 is out of range", 1 },
	{ "listen_auth_ldap_no_mode", "listen on 127.0.0.1 auth ldap "
	    "\"ldap://h\" auth plaintext\n", "test.conf:1: auth ldap: give "
	    "bind-dn, or base and filter", 1 },
	{ "listen_auth_ldap_two_modes", "listen on 127.0.0.1 auth ldap "
	    "\"ldap://h\" bind-dn \"uid=%u\" base \"dc=x\" filter \"(u=%u)\" "
	    "auth plaintext\n", "test.conf:1: auth ldap: bind-dn binds "
	    "directly", 1 },
	{ "listen_auth_ldap_no_u", "listen on 127.0.0.1 auth ldap "
	    "\"ldap://h\" bind-dn \"uid=x\" auth plaintext\n",
	    "test.conf:1: auth ldap bind-dn: \"uid=x\" has no %u", 1 },
	{ "listen_auth_ldap_bad_percent", "listen on 127.0.0.1 auth ldap "
	    "\"ldap://h\" base \"dc=x\" filter \"(uid=%s)\" auth "
	    "plaintext\n", "test.conf:1: auth ldap filter: only %u and %% may "
	    "follow a '%'", 1 },
	{ "listen_auth_ldap_not_ldap", "listen on 127.0.0.1 auth ldap "
	    "\"http://h\" bind-dn \"uid=%u\" auth plaintext\n",
	    "test.conf:1: auth ldap: \"http://h\": give an ldap:// or "
	    "ldaps:// URL", 1 },
	{ "listen_auth_ldap_starttls_ldaps", "listen on 127.0.0.1 auth ldap "
	    "\"ldaps://h\" bind-dn \"uid=%u\" starttls auth plaintext\n",
	    "test.conf:1: auth ldap: starttls with an ldaps:// URL", 1 },
	{ "listen_auth_ldap_search_dn_alone", "listen on 127.0.0.1 auth ldap "
	    "\"ldap://h\" base \"dc=x\" filter \"(uid=%u)\" search-dn "
	    "\"cn=r\" auth plaintext\n", "test.conf:1: auth ldap: search-dn "
	    "and search-password go together", 1 },
	{ "listen_auth_ldap_ca_relative", "listen on 127.0.0.1 auth ldap "
	    "\"ldap://h\" bind-dn \"uid=%u\" ca \"ca.pem\" auth plaintext\n",
	    "test.conf:1: auth ldap ca: \"ca.pem\": give an absolute path", 1 },
	{ "listen_auth_ldap_timeout", "listen on 127.0.0.1 auth ldap "
	    "\"ldap://h\" bind-dn \"uid=%u\" timeout 301s auth plaintext\n",
	    "test.conf:1: auth ldap timeout 301 is out of range", 1 },
	{ "listen_auth_ldap_twice", "listen on 127.0.0.1 auth ldap "
	    "\"ldap://h\" bind-dn \"uid=%u\" bind-dn \"cn=%u\" auth "
	    "plaintext\n", "test.conf:1: auth ldap: bind-dn twice", 1 },
	{ "listen_auth_pam_bad_service", "listen on 127.0.0.1 auth system pam "
	    "\"../x\" auth plaintext\n", "test.conf:1: auth system pam: the "
	    "service must be", 1 },
	{ "listen_auth_system_without_tls", "listen on 127.0.0.1 auth "
	    "system\n", "test.conf:1: listen on 127.0.0.1: auth without tls", 1 },
	{ "listen_tls_without_pki", "listen on 127.0.0.1 tls\n",
	    "test.conf:1: listen on 127.0.0.1: TLS needs a pki block", 1 },
	{ "listen_smtps_without_pki", "\nlisten on ::1 smtps\n",
	    "test.conf:2: listen on ::1: TLS needs a pki block", 1 },
	{ "listen_pki_defined_after", "listen on 127.0.0.1 tls pki a\n"
	    "pki a { certificate \"/c\" key \"/k\" }\n",
	    "test.conf:1: pki \"a\" is not defined (define pki blocks before", 2 },
	{ "listen_pki_undefined", "pki a { certificate \"/c\" key \"/k\" }\n"
	    "listen on 127.0.0.1 tls pki b\n",
	    "test.conf:2: pki \"b\" is not defined", 1 },
	{ "listen_tls_and_smtps", "pki a { certificate \"/c\" key \"/k\" }\n"
	    "listen on 127.0.0.1 smtps tls\n",
	    "test.conf:2: listen on 127.0.0.1: smtps is TLS from the first", 1 },
	{ "listen_tls_on_qmtp", "pki a { certificate \"/c\" key \"/k\" }\n"
	    "listen on 127.0.0.1 qmtp tls\n",
	    "test.conf:2: listen on 127.0.0.1: tls and pki are for smtp", 1 },
	{ "listen_pki_without_tls", "pki a { certificate \"/c\" key \"/k\" }\n"
	    "listen on 127.0.0.1 pki a\n",
	    "test.conf:2: listen on 127.0.0.1: pki without tls or smtps", 1 },
	{ "listen_tls_before_port", "pki a { certificate \"/c\" key \"/k\" }\n"
	    "listen on 127.0.0.1 tls port 25\n", "test.conf:2: syntax error",
	    1 },
	{ "listen_too_many_pkis", "pki a { certificate \"/c\" key \"/k\" }\n"
	    "pki b { certificate \"/c\" key \"/k\" }\n"
	    "pki c { certificate \"/c\" key \"/k\" }\n"
	    "pki d { certificate \"/c\" key \"/k\" }\n"
	    "pki e { certificate \"/c\" key \"/k\" }\n"
	    "pki f { certificate \"/c\" key \"/k\" }\n"
	    "pki g { certificate \"/c\" key \"/k\" }\n"
	    "pki h { certificate \"/c\" key \"/k\" }\n"
	    "pki i { certificate \"/c\" key \"/k\" }\n"
	    "listen on 127.0.0.1 tls pki a pki b pki c pki d pki e pki f "
	    "pki g pki h pki i\n",
	    "test.conf:10: listen on: more than 8 pki names", 1 },
	{ "pki_without_key", "pki a {\n\tcertificate \"/c\"\n}\n",
	    "test.conf:3: pki \"a\": needs a certificate and a key", 1 },
	{ "pki_empty", "pki a { }\n",
	    "test.conf:1: pki \"a\": needs a certificate and a key", 1 },
	{ "pki_duplicate", "pki a { certificate \"/c\" key \"/k\" }\n"
	    "pki A { certificate \"/c\" key \"/k\" }\n",
	    "test.conf:2: pki \"A\" is already defined", 1 },
	{ "pki_bad_name", "pki \"a b\" { certificate \"/c\" key \"/k\" }\n",
	    "test.conf:1: pki \"a b\": bad name", 1 },
	{ "pki_unknown_option", "pki a {\n\tcert \"/c\"\n\tkey \"/k\"\n}\n",
	    "test.conf:2: syntax error", 3 },
	{ "pki_option_error_recovers", "pki a {\n\tkey \"/k\" bogus\n"
	    "\tcertificate \"/c\"\n}\n", "test.conf:2: syntax error", 1 },
	{ "pki_empty_path", "pki a { certificate \"\" key \"/k\" }\n",
	    "test.conf:1: certificate: empty path", 2 },
	{ "tls_protocols_sslv3", "tls protocols \"sslv3\"\n",
	    "test.conf:1: tls protocols \"sslv3\": not a protocol list", 1 },
	{ "tls_protocols_empty", "tls protocols \"\"\n",
	    "test.conf:1: tls protocols \"\": not a protocol list", 1 },
	{ "tls_ciphers_with_space", "tls ciphers \"HIGH MEDIUM\"\n",
	    "test.conf:1: tls ciphers \"HIGH MEDIUM\": not a cipher list", 1 },
	{ "tls_unknown_global", "tls everything\n", "test.conf:1: syntax error",
	    1 },
	{ "error_cap", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\nn\no\np\nq\nr\n"
	    "s\nt\nu\nv\nw\nx\ny\nz\n", "test.conf:1: syntax error",
	    CONF_MAX_ERRORS + 1 },
};

static void
test_goods(void)
{
	struct sqconf	*c;
	size_t		 i;
	char		 name[128];

	for (i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		c = parse_text(goods[i].text, strlen(goods[i].text));
		snprintf(name, sizeof(name), "%s parses", goods[i].name);
		if (!ok(c != NULL, name)) {
			printf("# %s", errs);
			continue;
		}
		is_str(field(c, goods[i].key), goods[i].want, goods[i].name);
		config_free(c);
	}
}

static void
test_bads(void)
{
	struct sqconf	*c;
	size_t		 i;
	char		 name[128];
	int		 prefix;

	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		c = parse_text(bads[i].text, strlen(bads[i].text));
		snprintf(name, sizeof(name), "%s is refused", bads[i].name);
		ok(c == NULL, name);
		config_free(c);
		prefix = strncmp(errs, bads[i].want, strlen(bads[i].want)) == 0;
		snprintf(name, sizeof(name), "%s reports its place",
		    bads[i].name);
		if (!ok(nerrs > 0 && prefix, name))
			printf("#   got \"%s\"\n#   expected \"%s...\"\n", errs,
			    bads[i].want);
		snprintf(name, sizeof(name), "%s error count", bads[i].name);
		if (nerrs != bads[i].nerrs)
			printf("# %s", errs);
		is_int(nerrs, bads[i].nerrs, name);
	}
}

static void
test_nul_byte(void)
{
	static const char	 text[] = "spool \"/a\0b\"\n";
	struct sqconf		*c;

	c = parse_text(text, sizeof(text) - 1);
	ok(c == NULL, "nul_byte_in_string_is_refused");
	is_str(errs, "test.conf:1: control character in string\n",
	    "nul_byte_in_string_message");
	c = parse_text("\0", 1);
	ok(c == NULL, "nul_byte_alone_is_refused");
	is_str(errs, "test.conf:1: unexpected character 0x00\n",
	    "nul_byte_alone_message");
}

static void
test_includes(void)
{
	struct sqconf		*c;
	static const char *const nested[] = {
		"etc/main.conf", "include \"inc/a.conf\"\nspool \"/m\"\n",
		"etc/inc/a.conf", "user \"fromA\"\ninclude \"../b.conf\"\n",
		"etc/inc/../b.conf", "queue user \"fromB\"\n",
		NULL
	};
	static const char *const lines[] = {
		"main.conf", "\ninclude \"i.conf\"\nbogus1\n",
		"i.conf", "\n\nbogus2\n",
		NULL
	};
	static const char *const loop[] = {
		"main.conf", "include \"a.conf\"\n",
		"a.conf", "include \"main.conf\"\n",
		NULL
	};
	static const char *const noeol[] = {
		"main.conf", "include \"a.conf\"\nspool \"/x\"\n",
		"a.conf", "user \"u\"",
		NULL
	};
	static const char *const macros[] = {
		"main.conf", "include \"m.conf\"\nspool $sp\n",
		"m.conf", "sp = \"/from/include\"\n",
		NULL
	};
	const char	*deep[2 * (CONF_MAX_INCLUDE + 3) + 1];
	char		 names[CONF_MAX_INCLUDE + 3][32];
	char		 texts[CONF_MAX_INCLUDE + 3][64];
	int		 i, n;

	c = parse_list(nested);
	if (ok(c != NULL, "include_relative_to_including_file")) {
		is_str(c->spool, "/m", "include_main_after_include");
		is_str(c->user, "fromA", "include_first_level");
		is_str(c->queue_user, "fromB", "include_second_level");
		config_free(c);
	} else
		printf("# %s", errs);

	c = parse_list(lines);
	ok(c == NULL, "include_errors_refused");
	is_str(errs, "i.conf:3: syntax error\nmain.conf:3: syntax error\n",
	    "include_errors_name_file_and_line");

	c = parse_list(loop);
	ok(c == NULL, "include_loop_refused");
	is_str(errs, "a.conf:1: include loop: main.conf\n",
	    "include_loop_message");

	c = parse_list(noeol);
	ok(c != NULL && strcmp(c->user, "u") == 0 &&
	    strcmp(c->spool, "/x") == 0, "include_without_final_newline");
	config_free(c);

	c = parse_list(macros);
	ok(c != NULL && strcmp(c->spool, "/from/include") == 0,
	    "macro_defined_in_include");
	config_free(c);

	/* f0 includes f1 ... : CONF_MAX_INCLUDE levels are fine, one more not */
	for (n = CONF_MAX_INCLUDE + 1; n <= CONF_MAX_INCLUDE + 2; n++) {
		for (i = 0; i < n; i++) {
			snprintf(names[i], sizeof(names[i]), "f%d.conf", i);
			if (i + 1 < n)
				snprintf(texts[i], sizeof(texts[i]),
				    "include \"f%d.conf\"\n", i + 1);
			else
				snprintf(texts[i], sizeof(texts[i]),
				    "user \"deep\"\n");
			deep[2 * i] = names[i];
			deep[2 * i + 1] = texts[i];
		}
		deep[2 * n] = NULL;
		c = parse_list(deep);
		if (n == CONF_MAX_INCLUDE + 1)
			ok(c != NULL && strcmp(c->user, "deep") == 0,
			    "include_nesting_at_limit");
		else {
			ok(c == NULL, "include_nesting_beyond_limit_refused");
			snprintf(texts[0], sizeof(texts[0]), "f%d.conf:1: "
			    "include: nested more than %d deep\n",
			    CONF_MAX_INCLUDE, CONF_MAX_INCLUDE);
			is_str(errs, texts[0], "include_nesting_message");
		}
		config_free(c);
	}
}

static void
test_long_tokens(void)
{
	char		*text;
	struct sqconf	*c;
	size_t		 len = 9000;

	if ((text = malloc(len + 32)) == NULL)
		exit(2);
	memcpy(text, "spool \"/", 8);
	memset(text + 8, 'a', len);
	memcpy(text + 8 + len, "\"\nuser \"u\"\n", 11);
	c = parse_text(text, len + 19);
	ok(c == NULL, "string_too_long_refused");
	is_str(errs, "test.conf:1: string too long\n",
	    "string_too_long_message");
	text[6] = '/';
	text[7] = 'a';
	c = parse_text(text, len + 19);
	ok(c == NULL, "word_too_long_refused");
	is_int(strncmp(errs, "test.conf:1: word too long\n", 27), 0,
	    "word_too_long_message");
	memcpy(text, "spool \"/", 8);
	memset(text + 8, 'a', 8190 - 1);
	memcpy(text + 8 + 8189, "\"\n", 2);
	c = parse_text(text, 8 + 8189 + 2);
	ok(c == NULL && strstr(errs, "spool: path too long") != NULL,
	    "longest_string_is_read_then_path_too_long");
	free(text);
}

/* The transfer fails closed: run in a child, expect exit status 1. */
static int
xfer_dies(int how)
{
	pid_t	 pid;
	int	 status, i;
	char	 name[32];

	if ((pid = fork()) == -1)
		return 0;
	if (pid == 0) {
		if (freopen("/dev/null", "w", stderr) == NULL)
			abort();
		if (how == 0)
			config_xfer_file("a.conf", "x", 1);
		else if (how == 1) {
			config_xfer_start("/b");
			for (i = 0; i <= CONF_MAX_FILES; i++) {
				snprintf(name, sizeof(name), "%d", i);
				config_xfer_file(name, "", 0);
			}
		} else if (how == 2) {
			static char	 chunk[CONF_CHUNK];

			config_xfer_start("/b");
			for (i = 0; i <= CONF_MAX_TOTAL / CONF_CHUNK + 1; i++)
				config_xfer_file("a", chunk, sizeof(chunk));
		} else
			(void)config_xfer_end();
		_exit(0);
	}
	if (waitpid(pid, &status, 0) == -1)
		return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 1;
}

static void
test_xfer_bounds(void)
{
	ok(xfer_dies(0), "xfer_file_without_start_is_fatal");
	ok(xfer_dies(1), "xfer_too_many_files_is_fatal");
	ok(xfer_dies(2), "xfer_too_much_text_is_fatal");
	ok(xfer_dies(3), "xfer_end_without_start_is_fatal");
}

static int
write_file(const char *dir, const char *name, const char *text)
{
	char	 path[PATH_MAX];
	FILE	*fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "w")) == NULL)
		return -1;
	fputs(text, fp);
	return fclose(fp);
}

static void
rm_tree(const char *dir)
{
	char	 cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
}

/* Parse files on disk; keep what was read; send it through the transfer. */
static void
test_filesystem(void)
{
	struct conf_filelist	 loaded;
	struct conf_file	*f;
	struct sqconf		*c, *c2;
	char			 dir[] = "/tmp/config_test.XXXXXX";
	char			 want[PATH_MAX + 32], sub[PATH_MAX];
	size_t			 off, n;
	int			 cwdfd;

	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	mkdir(sub, 0700);
	write_file(dir, "main.conf", "table t file:tables/t\n"
	    "include \"sub/x.conf\"\n"
	    "spool \"sp\"\nrelay from 10.0.0.0/8\n");
	write_file(dir, "sub/x.conf", "include \"y.conf\"\n"
	    "domain x.org { users t }\n");
	write_file(dir, "sub/y.conf", "hostname \"fs.example\"\n");

	TAILQ_INIT(&loaded);
	errs_reset();
	c = config_parse("main.conf", dir, NULL, &loaded);
	if (!ok(c != NULL, "fs_parse"))
		printf("# %s", errs);
	else {
		snprintf(want, sizeof(want), "%s/sp", dir);
		is_str(c->spool, want, "fs_spool_against_basedir");
		is_str(c->hostname, "fs.example", "fs_nested_include");
		snprintf(want, sizeof(want), "%s/tables/t", dir);
		is_str(config_table(c, "t")->path, want, "fs_table_path");
	}
	n = 0;
	want[0] = '\0';
	TAILQ_FOREACH(f, &loaded, entry) {
		strlcat(want, f->name, sizeof(want));
		strlcat(want, " ", sizeof(want));
		n++;
	}
	is_str(want, "main.conf sub/x.conf sub/y.conf ",
	    "fs_loaded_in_read_order_main_first");

	/* Round trip through the transfer, in small chunks. */
	config_xfer_start(dir);
	TAILQ_FOREACH(f, &loaded, entry) {
		off = 0;
		do {
			n = f->len - off > 7 ? 7 : f->len - off;
			config_xfer_file(f->name, f->data + off, n);
			off += n;
		} while (off < f->len);
	}
	errs_reset();
	c2 = config_xfer_end();
	if (ok(c2 != NULL, "xfer_chunks_parse") && c != NULL) {
		is_str(c2->spool, c->spool, "xfer_same_spool");
		is_str(c2->hostname, c->hostname, "xfer_same_hostname");
		is_str(field(c2, "domains"), "x.org maildir ~/Maildir/ user= "
		    "users=t aliases=- recipients=-", "xfer_same_domains");
		is_str(field(c2, "relay"), "10.0.0.0/8", "xfer_same_relay");
	}
	config_free(c2);
	config_free(c);
	conf_files_free(&loaded);
	ok(TAILQ_EMPTY(&loaded), "conf_files_free_empties_list");

	/* A relative main path against a base that is not the cwd. */
	cwdfd = open(".", O_RDONLY);
	if (chdir("/") == 0) {
		errs_reset();
		c = config_parse("main.conf", dir, NULL, NULL);
		ok(c != NULL, "fs_relative_main_opened_in_basedir");
		config_free(c);
		if (cwdfd != -1 && fchdir(cwdfd) == -1)
			printf("# fchdir failed\n");
	}
	if (cwdfd != -1)
		close(cwdfd);

	/* An include loop through a different spelling of the same file. */
	write_file(dir, "sub/y.conf", "include \"../main.conf\"\n");
	TAILQ_INIT(&loaded);
	errs_reset();
	c = config_parse("main.conf", dir, NULL, &loaded);
	ok(c == NULL, "fs_include_loop_refused");
	is_str(errs, "sub/y.conf:1: include loop: sub/../main.conf\n",
	    "fs_include_loop_message");
	conf_files_free(&loaded);

	errs_reset();
	c = config_parse("missing.conf", dir, NULL, NULL);
	ok(c == NULL, "fs_missing_main_refused");
	is_str(errs, "missing.conf: No such file or directory\n",
	    "fs_missing_main_message");

	write_file(dir, "inc.conf", "include \"nothere.conf\"\n");
	errs_reset();
	c = config_parse("inc.conf", dir, NULL, NULL);
	ok(c == NULL, "fs_missing_include_refused");
	is_str(errs, "inc.conf:1: nothere.conf: No such file or directory\n",
	    "fs_missing_include_message");

	write_file(dir, "dir.conf", "include \"sub\"\n");
	errs_reset();
	c = config_parse("dir.conf", dir, NULL, NULL);
	ok(c == NULL, "fs_include_directory_refused");
	is_str(errs, "dir.conf:1: sub: not a regular file\n",
	    "fs_include_directory_message");

	errs_reset();
	c = config_parse("main.conf", "relative/base", NULL, NULL);
	ok(c == NULL, "relative_basedir_refused");

	/* A file included twice (not a loop) is read, and kept, once. */
	write_file(dir, "twice.conf", "include \"one.conf\"\n"
	    "include \"one.conf\"\n");
	write_file(dir, "one.conf", "relay from 10.0.0.0/8\n");
	TAILQ_INIT(&loaded);
	errs_reset();
	c = config_parse("twice.conf", dir, NULL, &loaded);
	ok(c != NULL && c->nrelay == 2, "fs_include_twice");
	n = 0;
	TAILQ_FOREACH(f, &loaded, entry)
		n++;
	is_int(n, 2, "fs_include_twice_kept_once");
	config_free(c);
	conf_files_free(&loaded);

	/* More than CONF_MAX_TOTAL octets. */
	snprintf(want, sizeof(want), "%s/huge.conf", dir);
	if ((cwdfd = open(want, O_WRONLY | O_CREAT, 0600)) != -1) {
		if (ftruncate(cwdfd, CONF_MAX_TOTAL + 1) == -1)
			printf("# ftruncate failed\n");
		close(cwdfd);
	}
	errs_reset();
	c = config_parse("huge.conf", dir, NULL, NULL);
	ok(c == NULL, "fs_huge_refused");
	is_str(errs, "huge.conf: configuration larger than 16777216 octets\n",
	    "fs_huge_message");
	rm_tree(dir);
}

#define PEM_CERT	"-----BEGIN CERTIFICATE-----\nMIIBleaf\n-----END CERTIFICATE-----"
#define PEM_CHAIN	"-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n"
#define PEM_KEY		"-----BEGIN PRIVATE KEY-----\nMIGkey\n-----END PRIVATE KEY-----\n"
#define PKI_CONF	"pki mx {\n\tcertificate \"c.pem\"\n\tkey \"k.pem\"\n" \
			"\tchain \"ch.pem\"\n}\nlisten on 127.0.0.1 smtps\n"

/*
 * pki contents: joined certificate and chain, the key; absent without
 * error when a child was not sent them; refused when not PEM.
 */
static void
test_pki_list(void)
{
	const char *const good[] = { "test.conf", PKI_CONF,
	    "/base/c.pem", PEM_CERT, "/base/k.pem", PEM_KEY,
	    "/base/ch.pem", PEM_CHAIN, NULL };
	const char *const nokey[] = { "test.conf", PKI_CONF,
	    "/base/c.pem", PEM_CERT, "/base/ch.pem", PEM_CHAIN, NULL };
	const char *const notpem[] = { "test.conf", PKI_CONF,
	    "/base/c.pem", "hello\n", "/base/k.pem", PEM_KEY,
	    "/base/ch.pem", PEM_CHAIN, NULL };
	const char *const certaskey[] = { "test.conf", PKI_CONF,
	    "/base/c.pem", PEM_CERT, "/base/k.pem", PEM_CERT,
	    "/base/ch.pem", PEM_CHAIN, NULL };
	struct sqconf	*c;
	struct pki	*pk;

	c = parse_list(good);
	if (ok(c != NULL && (pk = TAILQ_FIRST(&c->pkis)) != NULL,
	    "pki_contents_parse")) {
		is_str(pk->cert != NULL ? pk->cert : "(null)",
		    PEM_CERT "\n" PEM_CHAIN,
		    "pki_certificate_then_chain_newline_between");
		is_int(pk->cert_len, strlen(PEM_CERT "\n" PEM_CHAIN),
		    "pki_certificate_length");
		is_str(pk->key != NULL ? pk->key : "(null)", PEM_KEY,
		    "pki_key_contents");
		config_pki_clear(c);
		ok(pk->cert == NULL && pk->key == NULL && pk->key_len == 0,
		    "config_pki_clear_drops_contents");
		is_str(pk->key_path, "/base/k.pem",
		    "config_pki_clear_keeps_paths");
	}
	config_free(c);

	c = parse_list(nokey);
	ok(c != NULL && TAILQ_FIRST(&c->pkis)->cert == NULL &&
	    TAILQ_FIRST(&c->pkis)->key == NULL,
	    "pki_files_not_sent_parse_without_contents");
	config_free(c);

	c = parse_list(notpem);
	ok(c == NULL, "pki_certificate_not_pem_refused");
	is_str(errs, "test.conf:5: pki \"mx\": certificate /base/c.pem holds no "
	    "PEM certificate\n", "pki_certificate_not_pem_message");
	config_free(c);

	c = parse_list(certaskey);
	ok(c == NULL, "pki_key_not_a_key_refused");
	is_str(errs, "test.conf:5: pki \"mx\": key /base/k.pem holds no PEM "
	    "private key\n", "pki_key_not_a_key_message");
	config_free(c);
}

/* The parent reads pki files from disk, bounded, marked secret. */
static void
test_pki_files(void)
{
	struct conf_filelist	 loaded;
	struct conf_file	*f;
	struct sqconf		*c;
	char			 dir[] = "/tmp/config_pki.XXXXXX";
	char			 want[PATH_MAX * 2], path[PATH_MAX];
	int			 fd, nsecret = 0, nplain = 0;

	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return;
	}
	write_file(dir, "main.conf", PKI_CONF);
	write_file(dir, "c.pem", PEM_CERT);
	write_file(dir, "k.pem", PEM_KEY);
	write_file(dir, "ch.pem", PEM_CHAIN);
	TAILQ_INIT(&loaded);
	errs_reset();
	c = config_parse("main.conf", dir, NULL, &loaded);
	if (!ok(c != NULL, "fs_pki_parse"))
		printf("# %s", errs);
	else
		is_str(TAILQ_FIRST(&c->pkis)->key, PEM_KEY, "fs_pki_key_read");
	TAILQ_FOREACH(f, &loaded, entry) {
		if (f->secret)
			nsecret++;
		else
			nplain++;
	}
	is_int(nsecret, 3, "fs_pki_files_kept_as_secret");
	snprintf(path, sizeof(path), "%s/k.pem", dir);
	f = NULL;
	TAILQ_FOREACH(f, &loaded, entry)
		if (strcmp(f->name, path) == 0)
			break;
	ok(f != NULL && f->secret, "fs_pki_file_named_by_absolute_path");
	conf_files_clear_secret(&loaded);
	nsecret = nplain = 0;
	TAILQ_FOREACH(f, &loaded, entry) {
		if (f->secret)
			nsecret++;
		else
			nplain++;
	}
	ok(nsecret == 0 && nplain == 1, "conf_files_clear_secret_keeps_config");
	conf_files_free(&loaded);
	config_free(c);

	/* A key file that is missing, then one too large. */
	write_file(dir, "nokey.conf", "pki mx {\n\tcertificate \"c.pem\"\n"
	    "\tkey \"none.pem\"\n}\n");
	errs_reset();
	c = config_parse("nokey.conf", dir, NULL, NULL);
	ok(c == NULL, "fs_pki_missing_key_refused");
	snprintf(want, sizeof(want), "nokey.conf:3: pki \"mx\": key "
	    "%s/none.pem: No such file or directory\n", dir);
	is_str(errs, want, "fs_pki_missing_key_message");

	snprintf(path, sizeof(path), "%s/big.pem", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT, 0600)) != -1) {
		if (ftruncate(fd, PKI_FILE_MAX + 1) == -1)
			printf("# ftruncate failed\n");
		close(fd);
	}
	write_file(dir, "big.conf", "pki mx { certificate \"big.pem\" key "
	    "\"k.pem\" }\n");
	errs_reset();
	c = config_parse("big.conf", dir, NULL, NULL);
	ok(c == NULL, "fs_pki_large_file_refused");
	snprintf(want, sizeof(want), "big.conf:1: pki \"mx\": certificate "
	    "%s/big.pem is larger than 262144 octets\n", dir);
	is_str(errs, want, "fs_pki_large_file_message");

	write_file(dir, "dirkey.conf", "pki mx { certificate \"c.pem\" key "
	    "\".\" }\n");
	errs_reset();
	c = config_parse("dirkey.conf", dir, NULL, NULL);
	ok(c == NULL && strstr(errs, "not a regular file") != NULL,
	    "fs_pki_directory_refused");
	rm_tree(dir);
}

struct netrow {
	const char	*net;
	int		 parses;
	const char	*client;
	int		 match;
};

static const struct netrow netrows[] = {
	{ "10.0.0.0/8", 1, "10.1.2.3", 1 },
	{ "10.0.0.0/8", 1, "11.0.0.1", 0 },
	{ "10.1.2.3/8", 1, "10.200.0.1", 1 },
	{ "10.0.0.0/12", 1, "10.15.255.255", 1 },
	{ "10.0.0.0/12", 1, "10.16.0.0", 0 },
	{ "192.168.1.7", 1, "192.168.1.7", 1 },
	{ "192.168.1.7", 1, "192.168.1.8", 0 },
	{ "192.168.1.7/32", 1, "192.168.1.7", 1 },
	{ "0.0.0.0/0", 1, "203.0.113.9", 1 },
	{ "0.0.0.0/0", 1, "::1", 0 },
	{ "0.0.0.0/0", 1, "::ffff:1.2.3.4", 1 },
	{ "127.0.0.0/8", 1, "::ffff:127.0.0.1", 1 },
	{ "127.0.0.0/8", 1, "::ffff:128.0.0.1", 0 },
	{ "::1", 1, "::1", 1 },
	{ "::1", 1, "::2", 0 },
	{ "::1", 1, "127.0.0.1", 0 },
	{ "::1/128", 1, "::1", 1 },
	{ "2001:db8::/32", 1, "2001:db8:1::5", 1 },
	{ "2001:db8::/32", 1, "2001:db9::1", 0 },
	{ "2001:db8::/33", 1, "2001:db8:8000::1", 0 },
	{ "::/0", 1, "2001:db8::1", 1 },
	{ "::/0", 1, "1.2.3.4", 1 },
	{ "::ffff:0:0/96", 1, "8.8.8.8", 1 },
	{ "::ffff:10.0.0.0/104", 1, "10.9.9.9", 1 },
	{ "::ffff:10.0.0.0/104", 1, "11.9.9.9", 0 },
	{ "10.0.0.0/33", 0, NULL, 0 },
	{ "::/129", 0, NULL, 0 },
	{ "10.0.0.0/", 0, NULL, 0 },
	{ "/8", 0, NULL, 0 },
	{ "10.0.0", 0, NULL, 0 },
	{ "10.0.0.0/8/8", 0, NULL, 0 },
	{ "10.0.0.0/-1", 0, NULL, 0 },
	{ "10.0.0.0/+8", 0, NULL, 0 },
	{ "10.0.0.0/ 8", 0, NULL, 0 },
	{ "10.0.0.0/0008", 0, NULL, 0 },
	{ "fe80::1%eth0", 0, NULL, 0 },
	{ "", 0, NULL, 0 },
	{ "example.org", 0, NULL, 0 },
	{ "1.2.3.4.5", 0, NULL, 0 },
	{ "256.0.0.0/8", 0, NULL, 0 },
};

static void
sockaddr_from(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
}

static void
test_netaddr(void)
{
	struct sockaddr_storage	 ss;
	struct netaddr		 na;
	struct sqconf		*c;
	const char		*text;
	size_t			 i;
	char			 name[128];
	int			 r;

	for (i = 0; i < sizeof(netrows) / sizeof(netrows[0]); i++) {
		r = netaddr_parse(netrows[i].net, &na);
		snprintf(name, sizeof(name), "netaddr_parse \"%s\" %s",
		    netrows[i].net, netrows[i].parses ? "ok" : "refused");
		is_int(r == 0, netrows[i].parses, name);
		if (!netrows[i].parses || r != 0)
			continue;
		sockaddr_from(netrows[i].client, &ss);
		snprintf(name, sizeof(name), "%s %s %s", netrows[i].net,
		    netrows[i].match ? "holds" : "does not hold",
		    netrows[i].client);
		is_int(netaddr_match(&na, (struct sockaddr *)&ss),
		    netrows[i].match, name);
	}
	ss.ss_family = AF_UNIX;
	netaddr_parse("0.0.0.0/0", &na);
	is_int(netaddr_match(&na, (struct sockaddr *)&ss), 0,
	    "netaddr_match_unix_socket_never");

	text = "relay from { 10.0.0.0/8, 2001:db8::/32 }\n";
	c = parse_text(text, strlen(text));
	if (ok(c != NULL, "relay_allowed_config")) {
		sockaddr_from("10.3.3.3", &ss);
		ok(config_relay_allowed(c, (struct sockaddr *)&ss),
		    "relay_allowed_v4");
		sockaddr_from("::ffff:10.3.3.3", &ss);
		ok(config_relay_allowed(c, (struct sockaddr *)&ss),
		    "relay_allowed_v4_mapped");
		sockaddr_from("2001:db8::9", &ss);
		ok(config_relay_allowed(c, (struct sockaddr *)&ss),
		    "relay_allowed_v6");
		sockaddr_from("192.0.2.1", &ss);
		ok(!config_relay_allowed(c, (struct sockaddr *)&ss),
		    "relay_refused_other");
		config_free(c);
	}
	c = parse_text("", 0);
	sockaddr_from("127.0.0.1", &ss);
	ok(c != NULL && !config_relay_allowed(c, (struct sockaddr *)&ss),
	    "relay_refused_without_relay_from");
	config_free(c);
}

static void
test_domains(void)
{
	const char		*text =
	    "domain \"example.org\" { }\n"
	    "domain \".example.org\" { }\n"
	    "domain \".deep.example.org\" { }\n"
	    "domain \"other.net\" { }\n"
	    "domain \"*\" { deliver mbox \"/var/mail/%u\" }\n";
	static const struct {
		const char	*query;
		const char	*want;
	} rows[] = {
		{ "example.org", "example.org" },
		{ "EXAMPLE.Org", "example.org" },
		{ "a.example.org", ".example.org" },
		{ "a.b.example.org", ".example.org" },
		{ "x.deep.example.org", ".deep.example.org" },
		{ "deep.example.org", ".example.org" },
		{ "other.net", "other.net" },
		{ "sub.other.net", "*" },
		{ "xexample.org", "*" },
		{ "", "*" },
	};
	struct sqconf	*c;
	struct domain	*d;
	size_t		 i;
	char		 name[128];

	c = parse_text(text, strlen(text));
	if (!ok(c != NULL, "domains_parse"))
		return;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		d = config_domain(c, rows[i].query);
		snprintf(name, sizeof(name), "config_domain \"%s\" is \"%s\"",
		    rows[i].query, rows[i].want);
		is_str(d ? d->name : NULL, rows[i].want, name);
	}
	config_free(c);

	text = "domain \".example.org\" { }\n";
	c = parse_text(text, strlen(text));
	ok(c != NULL && config_domain(c, "example.org") == NULL,
	    "suffix_does_not_match_itself_without_catchall");
	ok(c != NULL && config_domain(c, "nowhere.net") == NULL,
	    "no_domain_without_catchall");
	ok(c != NULL && config_table(c, "x") == NULL, "config_table_missing");
	config_free(c);
}

static void
test_default(void)
{
	struct conf_filelist	 loaded;
	struct passwd		*pw;
	struct sqconf		*c;
	char			 want[600];

	errs_reset();
	c = config_default("/home/u/sqmail");
	if (!ok(c != NULL, "default_parses")) {
		printf("# %s", errs);
		return;
	}
	is_str(c->hostname, "localhost", "default_hostname");
	is_str(c->postmaster, "postmaster@localhost", "default_postmaster");
	is_str(c->spool, "/home/u/sqmail/run/spool", "default_spool_in_base");
	is_str(c->control_socket, "/home/u/sqmail/run/sqmaild.sock",
	    "default_control_socket_in_base");
	is_str(c->empty_dir, "/home/u/sqmail/run/empty",
	    "default_chroot_in_base");
	is_str(field(c, "listeners"), "127.0.0.1:2525 smtp",
	    "default_listener");
	pw = getpwuid(getuid());
	snprintf(want, sizeof(want), "localhost maildir "
	    "/home/u/sqmail/run/Maildir/ user=%s users=- aliases=- "
	    "recipients=-", pw ? pw->pw_name : "");
	is_str(field(c, "domains"), want, "default_domain_localhost");
	is_int(c->max_message_size, 35 * 1024 * 1024,
	    "default_other_settings_default");
	config_free(c);

	ok(strstr(config_default_text(), "listen on 127.0.0.1 port 2525") !=
	    NULL, "default_text");

	TAILQ_INIT(&loaded);
	c = config_default_files("/b", &loaded);
	ok(c != NULL && !TAILQ_EMPTY(&loaded) &&
	    strcmp(TAILQ_FIRST(&loaded)->name, CONF_BUILTIN) == 0 &&
	    TAILQ_NEXT(TAILQ_FIRST(&loaded), entry) == NULL &&
	    strcmp(TAILQ_FIRST(&loaded)->data, config_default_text()) == 0,
	    "default_files_gives_builtin_file");
	config_free(c);
	conf_files_free(&loaded);
}

/* The shipped sample (make check runs from the top directory). */
static void
test_sample(void)
{
	struct sqconf	*c;

	if (access("etc/sqmail.conf", R_OK) == -1) {
		ok(1, "sample_config_parses # skip etc/sqmail.conf not found");
		return;
	}
	errs_reset();
	c = config_parse("etc/sqmail.conf", NULL, NULL, NULL);
	if (!ok(c != NULL, "sample_config_parses"))
		printf("# %s", errs);
	is_int(nerrs, 0, "sample_config_without_errors");
	config_free(c);
}

/* config_send on one end of a socketpair, config_imsg on the other. */
static int
pump(struct imsgbuf *ib, int *installed)
{
	struct imsg	 imsg;
	ssize_t		 n;
	int		 r, count = 0;

	for (;;) {
		n = imsg_read(ib);
		if (n == -1 && errno == EAGAIN)
			break;
		if (n <= 0)
			return -1;
		while ((n = imsg_get(ib, &imsg)) > 0) {
			r = config_imsg(&imsg);
			if (r == 1)
				(*installed)++;
			imsg_free(&imsg);
			count++;
		}
	}
	return count;
}

static void
test_imsg(void)
{
	static struct imsgbuf	 ib;
	static struct mproc	 p;
	struct conf_filelist	 files;
	struct sqconf		*old;
	struct imsg		 imsg;
	const char		*pkiconf = "pki mx { certificate \"/p/c.pem\" "
				    "key \"/p/k.pem\" }\n";
	char			*big;
	int			 sv[2], installed = 0, n;
	size_t			 biglen = 3 * CONF_CHUNK + 123;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1) {
		ok(0, "socketpair");
		return;
	}
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	mproc_init(&p, sv[0], PROC_SMTP, NULL);
	imsg_init(&ib, sv[1]);

	/* A main file larger than a chunk, then an include. */
	if ((big = malloc(biglen + 1)) == NULL)
		exit(2);
	memset(big, '#', biglen);
	memcpy(big, "\ninclude \"b.conf\"\n", 18);
	big[biglen - 1] = '\n';
	TAILQ_INIT(&files);
	conf_file_add(&files, "a.conf", big, biglen);
	conf_file_add(&files, "b.conf", "spool \"q\"\n", 10);
	free(big);

	conf = NULL;
	config_send(&p, &files, "/srv", 1);
	m_flush(&p);
	errs_reset();
	n = pump(&ib, &installed);
	is_int(n, 1 + 4 + 1 + 1, "imsg_start_chunks_file_end");
	is_int(installed, 1, "imsg_end_installs");
	ok(conf != NULL && strcmp(conf->spool, "/srv/q") == 0,
	    "imsg_conf_installed_with_basedir");

	/* A configuration that does not parse keeps the old one. */
	conf_files_free(&files);
	conf_file_add(&files, "a.conf", "bogus\n", 6);
	old = conf;
	config_send(&p, &files, "/srv", 1);
	m_flush(&p);
	errs_reset();
	installed = 0;
	n = pump(&ib, &installed);
	is_int(installed, 0, "imsg_bad_config_not_installed");
	ok(conf == old, "imsg_bad_config_keeps_old");
	is_str(errs, "a.conf:1: syntax error\n", "imsg_bad_config_reported");

	/* An empty file still travels (one empty chunk). */
	conf_files_free(&files);
	conf_file_add(&files, "empty.conf", "", 0);
	config_send(&p, &files, "/srv", 1);
	m_flush(&p);
	installed = 0;
	n = pump(&ib, &installed);
	is_int(n, 3, "imsg_empty_file_three_messages");
	ok(installed == 1 && conf != old && conf != NULL,
	    "imsg_empty_file_installs_defaults");

	/* pki files travel only when asked for (to smtp). */
	conf_files_free(&files);
	conf_file_add(&files, "a.conf", pkiconf, strlen(pkiconf));
	conf_file_add(&files, "/p/c.pem", PEM_CERT,
	    strlen(PEM_CERT))->secret = 1;
	conf_file_add(&files, "/p/k.pem", PEM_KEY, strlen(PEM_KEY))->secret = 1;
	config_send(&p, &files, "/srv", 0);
	m_flush(&p);
	installed = 0;
	errs_reset();
	n = pump(&ib, &installed);
	is_int(n, 3, "imsg_without_secrets_sends_config_only");
	ok(installed == 1 && conf != NULL && TAILQ_FIRST(&conf->pkis) != NULL &&
	    TAILQ_FIRST(&conf->pkis)->key == NULL,
	    "imsg_without_secrets_pki_has_no_contents");
	config_send(&p, &files, "/srv", 1);
	m_flush(&p);
	installed = 0;
	n = pump(&ib, &installed);
	is_int(n, 5, "imsg_with_secrets_sends_pki_files");
	ok(installed == 1 && conf != NULL && TAILQ_FIRST(&conf->pkis) != NULL &&
	    TAILQ_FIRST(&conf->pkis)->key != NULL &&
	    strcmp(TAILQ_FIRST(&conf->pkis)->key, PEM_KEY) == 0,
	    "imsg_with_secrets_pki_has_the_key");

	memset(&imsg, 0, sizeof(imsg));
	imsg.hdr.type = IMSG_CTL_VERBOSE;
	is_int(config_imsg(&imsg), -1, "imsg_other_type_is_minus_one");

	conf_files_free(&files);
	config_free(conf);
	conf = NULL;
	imsg_clear(&ib);
	mproc_clear(&p);
	close(sv[1]);
}

int
main(void)
{
	log_init(1, 0);
	config_error_hook = capture;
	test_goods();
	test_bads();
	test_nul_byte();
	test_long_tokens();
	test_includes();
	test_filesystem();
	test_pki_list();
	test_pki_files();
	test_netaddr();
	test_domains();
	test_default();
	test_sample();
	test_imsg();
	test_xfer_bounds();
	return done_testing();
}
