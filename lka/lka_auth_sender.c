/*
 * lka_auth_sender.c: MAV, the sender check of authenticated sessions
 * ("auth sender-check" on a listener; s/qmail's LOCALMFCHECK '=').  The
 * MAIL FROM of a session that authenticated must be one of its user's
 * addresses:
 *
 *   - the user name itself when it is an address (user@domain);
 *   - for a bare user name, that name at any local domain (a domain block
 *     that delivers here, but not the catch-all "*": a catch-all would
 *     make every address the user's);
 *   - any address listed for the user in the listener's table, if it has
 *     one (Postfix's smtpd_sender_login_maps idea, keyed the other way):
 *     key the user name, value a list of addresses and "@domain" (any
 *     address at that domain), separated by commas or blanks.
 *
 * The null sender is always allowed (bounces and notifications of the
 * user's own software).  Comparisons ignore case, as table keys do.  lka
 * decides because it owns the tables; smtp asks with
 * IMSG_LKA_MAIL_AUTH instead of IMSG_LKA_MAIL and gets the same answer,
 * after the usual sender checks when MAV passes.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "imsg.h"
#include "lka.h"
#include "log.h"
#include "mailaddr.h"
#include "mproc.h"
#include "msg.h"
#include "sqmail.h"
#include "table.h"

/* A domain we deliver for, by name (not by the catch-all). */
static int
sender_local_domain(struct sqconf *c, const char *domain)
{
	struct domain	*d;

	if (domain[0] == '\0' || (d = config_domain(c, domain)) == NULL)
		return 0;
	return !d->remote && strcmp(d->name, "*") != 0;
}

/* Whether one item of a table value ("addr" or "@domain") covers sender. */
static int
sender_item(const char *item, size_t len, const struct mailaddr *sender,
    const char *text)
{
	if (len == 0)
		return 0;
	if (item[0] == '@')
		return len - 1 == strlen(sender->domain) && len > 1 &&
		    strncasecmp(item + 1, sender->domain, len - 1) == 0;
	return len == strlen(text) && strncasecmp(item, text, len) == 0;
}

int
lka_auth_sender_check(struct sqconf *c, const char *tname, const char *user,
    const struct mailaddr *sender)
{
	struct table	*t;
	char		 text[SQ_ADDR_MAX], val[TABLE_LINE_MAX];
	const char	*p;
	size_t		 n;
	int		 r;

	if (mailaddr_is_null(sender))
		return SQ_OK;
	if (user[0] == '\0' ||
	    mailaddr_to_text(sender, text, sizeof(text)) == -1)
		return SQ_PERMFAIL;
	if (strchr(user, '@') != NULL) {
		if (strcasecmp(user, text) == 0)
			return SQ_OK;
	} else if (strcasecmp(user, sender->user) == 0 &&
	    sender_local_domain(c, sender->domain))
		return SQ_OK;
	if (tname == NULL || tname[0] == '\0')
		return SQ_PERMFAIL;
	if ((t = config_table(c, tname)) == NULL) {
		log_warnx("lka: auth: sender-check table \"%s\" is not defined",
		    tname);
		return SQ_TEMPFAIL;
	}
	if ((r = table_lookup(t, user, val, sizeof(val))) == -1)
		return SQ_TEMPFAIL;
	if (r == 0)
		return SQ_PERMFAIL;
	for (p = val; *p != '\0'; p += n) {
		p += strspn(p, ", \t");
		n = strcspn(p, ", \t");
		if (sender_item(p, n, sender, text))
			return SQ_OK;
	}
	return SQ_PERMFAIL;
}

/* IMSG_LKA_MAIL_AUTH from smtp: MAV, then the usual checks; IMSG_LKA_MAIL. */
void
lka_auth_sender_imsg(struct mproc *p, struct imsg *imsg)
{
	struct msg		 m;
	struct sockaddr_storage	 ss;
	struct mailaddr		 sender;
	char			 reply[SQ_REPLY_MAX], text[SQ_ADDR_MAX];
	const char		*user, *tname;
	uint64_t		 reqid;
	int			 status;

	m_msg(&m, imsg);
	m_get_u64(&m, &reqid);
	m_get_sockaddr(&m, &ss);
	m_get_mailaddr(&m, &sender);
	m_get_string(&m, &user);
	m_get_string(&m, &tname);
	m_end(&m);

	reply[0] = '\0';
	status = lka_auth_sender_check(conf, tname, user, &sender);
	if (status == SQ_OK)
		status = lka_check_sender(conf, &sender,
		    (struct sockaddr *)&ss, reply, sizeof(reply));
	else {
		if (mailaddr_to_text(&sender, text, sizeof(text)) == -1)
			(void)strlcpy(text, "?", sizeof(text));
		if (status == SQ_PERMFAIL) {
			log_info("lka: auth: user %s may not send as <%s>",
			    user, text);
			(void)strlcpy(reply, "553 5.7.1 Sender address not "
			    "owned by the authenticated user", sizeof(reply));
		} else
			(void)strlcpy(reply, "451 4.3.0 Temporary failure "
			    "checking the sender of the authenticated user",
			    sizeof(reply));
	}
	m_create(p, IMSG_LKA_MAIL, 0, -1);
	m_add_u64(p, reqid);
	m_add_int(p, status);
	m_add_string(p, reply);
	m_close(p);
}
