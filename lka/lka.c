/*
 * lka: the lookup process.  It answers smtp's MAIL and RCPT checks and
 * queue's bounce routing from the tables and the passwd database, and
 * reopens every table when the parent installs a new configuration.  It
 * is not chrooted (tables and passwd are read where they are) and accepts
 * no connections of its own.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "imsg.h"
#include "lka.h"
#include "log.h"
#include "mailaddr.h"
#include "mproc.h"
#include "msg.h"
#include "proc.h"
#include "sqmail.h"
#include "table.h"

static struct dest	*lka_dests;	/* SQ_EXPAND_MAX, one request's */
static uint64_t		 lka_nlookups;	/* MAIL, RCPT and RESOLVE answered */

static void	lka_dispatch_parent(struct mproc *, struct imsg *);
static void	lka_dispatch_smtp(struct mproc *, struct imsg *);
static void	lka_dispatch_queue(struct mproc *, struct imsg *);
static void	lka_dispatch_mta(struct mproc *, struct imsg *);
static void	lka_dispatch_control(struct mproc *, struct imsg *);

static void
lka_unexpected(struct mproc *p, struct imsg *imsg)
{
	fatalx("lka: unexpected message %u from %s", imsg->hdr.type,
	    p->name);
}

/* A request carries no descriptor; drop one a peer attached anyway. */
static void
lka_nofd(struct imsg *imsg)
{
	if (imsg->fd != -1) {
		close(imsg->fd);
		imsg->fd = -1;
	}
}

static void
lka_tables_load(void)
{
	int	 failed;

	failed = table_open_all(conf) + lka_qmail_load(conf);
	if (failed)
		log_warnx("lka: %d table%s or qmail file%s failed to open; "
		    "lookups through %s fail temporarily", failed,
		    failed == 1 ? "" : "s", failed == 1 ? "" : "s",
		    failed == 1 ? "it" : "them");
	else
		log_debug("lka: %zu table%s open", table_count(),
		    table_count() == 1 ? "" : "s");
	lka_auth_cram_mechs();
}

/*
 * Resolve rcpt and answer: one IMSG_LKA_RCPT_DEST per destination, then
 * the status under type (IMSG_LKA_RCPT or IMSG_LKA_RESOLVE).
 */
static void
lka_answer_rcpt(struct mproc *p, uint32_t type, uint64_t reqid,
    const struct mailaddr *rcpt, int may_relay,
    const struct sockaddr *client)
{
	char	 reply[SQ_REPLY_MAX], addr[SQ_ADDR_MAX];
	size_t	 n, i;
	int	 status;

	lka_nlookups++;
	status = lka_resolve(conf, rcpt, may_relay, client, lka_dests, &n,
	    SQ_EXPAND_MAX, reply, sizeof(reply));
	for (i = 0; i < n; i++) {
		m_create(p, IMSG_LKA_RCPT_DEST, 0, -1);
		m_add_u64(p, reqid);
		m_add_dest(p, &lka_dests[i]);
		m_close(p);
	}
	m_create(p, type, 0, -1);
	m_add_u64(p, reqid);
	m_add_int(p, status);
	m_add_string(p, reply);
	m_close(p);

	if (mailaddr_to_text(rcpt, addr, sizeof(addr)) == -1)
		(void)strlcpy(addr, "?", sizeof(addr));
	if (status == SQ_OK)
		log_debug("lka: %016llx: <%s>: %zu destination%s",
		    (unsigned long long)reqid, addr, n, n == 1 ? "" : "s");
	else
		log_debug("lka: %016llx: <%s>: %s", (unsigned long long)reqid,
		    addr, reply);
}

static void
lka_dispatch_parent(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	uint32_t	 id;
	int		 status;

	lka_nofd(imsg);
	if (imsg->hdr.type == IMSG_AUTH_SYSTEM) {
		m_msg(&m, imsg);
		m_get_u32(&m, &id);
		m_get_int(&m, &status);
		m_end(&m);
		lka_auth_system_done(id, status);
		return;
	}
	switch (proc_common_imsg(imsg)) {
	case PROC_IMSG_RELOADED:
		lka_tables_load();
		break;
	case PROC_IMSG_NONE:
		lka_unexpected(p, imsg);
	}
}

static void
lka_dispatch_smtp(struct mproc *p, struct imsg *imsg)
{
	struct msg		 m;
	struct sockaddr_storage	 ss;
	struct mailaddr		 addr;
	char			 reply[SQ_REPLY_MAX];
	const char		*tname, *user, *pass;
	uint64_t		 reqid;
	int			 may_relay, status;

	lka_nofd(imsg);
	switch (imsg->hdr.type) {
	case IMSG_LKA_MAIL:
		m_msg(&m, imsg);
		m_get_u64(&m, &reqid);
		m_get_sockaddr(&m, &ss);
		m_get_mailaddr(&m, &addr);
		m_end(&m);
		lka_nlookups++;
		status = lka_check_sender(conf, &addr,
		    (struct sockaddr *)&ss, reply, sizeof(reply));
		m_create(p, IMSG_LKA_MAIL, 0, -1);
		m_add_u64(p, reqid);
		m_add_int(p, status);
		m_add_string(p, reply);
		m_close(p);
		break;
	case IMSG_LKA_RCPT:
		m_msg(&m, imsg);
		m_get_u64(&m, &reqid);
		m_get_sockaddr(&m, &ss);
		m_get_int(&m, &may_relay);
		m_get_mailaddr(&m, &addr);
		m_end(&m);
		lka_answer_rcpt(p, IMSG_LKA_RCPT, reqid, &addr, may_relay != 0,
		    (struct sockaddr *)&ss);
		break;
	case IMSG_LKA_AUTH:
		m_msg(&m, imsg);
		m_get_u64(&m, &reqid);
		m_get_string(&m, &tname);
		m_get_string(&m, &user);
		m_get_string(&m, &pass);
		m_end(&m);
		lka_nlookups++;
		lka_auth_request(p, reqid, tname, user, pass);
		/* The password is in the message itself: wipe all of it. */
		explicit_bzero(imsg->data, imsg->hdr.len - IMSG_HEADER_SIZE);
		break;
	case IMSG_LKA_AUTH_CRAM:
		lka_auth_cram_imsg(p, imsg);
		break;
	case IMSG_LKA_AUTH_CERT:
		lka_auth_cert_imsg(p, imsg);
		break;
	case IMSG_LKA_MAIL_AUTH:
		lka_nlookups++;
		lka_auth_sender_imsg(p, imsg);
		break;
	default:
		lka_unexpected(p, imsg);
	}
}

static void
lka_dispatch_queue(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	struct mailaddr	 addr;
	uint64_t	 reqid;

	lka_nofd(imsg);
	switch (imsg->hdr.type) {
	case IMSG_LKA_RESOLVE:
		m_msg(&m, imsg);
		m_get_u64(&m, &reqid);
		m_get_mailaddr(&m, &addr);
		m_end(&m);
		/* A bounce may go anywhere: relaying is ours to allow. */
		lka_answer_rcpt(p, IMSG_LKA_RESOLVE, reqid, &addr, 1, NULL);
		break;
	default:
		lka_unexpected(p, imsg);
	}
}

static void
lka_dispatch_mta(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	const char	*domain;
	uint64_t	 reqid;
	int		 nullsender;

	lka_nofd(imsg);
	switch (imsg->hdr.type) {
	case IMSG_MTA_ROUTE:
		m_msg(&m, imsg);
		m_get_u64(&m, &reqid);
		m_get_string(&m, &domain);
		m_get_int(&m, &nullsender);
		m_end(&m);
		lka_route_mta(p, reqid, domain, nullsender);
		break;
	default:
		lka_unexpected(p, imsg);
	}
}

static void
lka_dispatch_control(struct mproc *p, struct imsg *imsg)
{
	struct msg	 m;
	uint32_t	 ctlid;
	const char	*domain;

	lka_nofd(imsg);
	if (proc_common_imsg(imsg) != PROC_IMSG_NONE)
		return;
	switch (imsg->hdr.type) {
	case IMSG_CTL_SHOW_ROUTES:
		m_msg(&m, imsg);
		m_get_u32(&m, &ctlid);
		m_get_string(&m, &domain);
		m_end(&m);
		lka_route_show(p, ctlid, domain);
		break;
	case IMSG_CTL_SHOW_STATS:
		m_msg(&m, imsg);
		m_get_u32(&m, &ctlid);
		m_end(&m);
		ctl_line(p, ctlid, "lka.lookups %llu",
		    (unsigned long long)lka_nlookups);
		ctl_line(p, ctlid, "lka.tables %zu", table_count());
		ctl_end(p, ctlid, SQ_OK, "");
		break;
	default:
		lka_unexpected(p, imsg);
	}
}

void
lka_main(void)
{
	log_procinit("lka");
	if (conf == NULL)
		fatalx("lka: no configuration");
	if ((lka_dests = calloc(SQ_EXPAND_MAX, sizeof(*lka_dests))) == NULL)
		fatal("lka: calloc");
	lka_tables_load();

	if (peers[PROC_PARENT] != NULL)
		peers[PROC_PARENT]->handler = lka_dispatch_parent;
	if (peers[PROC_SMTP] != NULL)
		peers[PROC_SMTP]->handler = lka_dispatch_smtp;
	if (peers[PROC_QUEUE] != NULL)
		peers[PROC_QUEUE]->handler = lka_dispatch_queue;
	if (peers[PROC_MTA] != NULL)
		peers[PROC_MTA]->handler = lka_dispatch_mta;
	if (peers[PROC_CONTROL] != NULL)
		peers[PROC_CONTROL]->handler = lka_dispatch_control;

	proc_loop_init();
	lka_route_init();
	lka_child_init();
	event_dispatch();
	fatalx("lka: event loop ended");
}
