/*
 * Every message type that crosses a process boundary, grouped by the pair
 * of processes that exchange them.  Each line: who sends it, and the
 * payload in the order of the m_add_*() calls ("fd" = a descriptor rides
 * along).  A reply usually has the same type as its request.
 */
#ifndef SQ_MSG_H
#define SQ_MSG_H

enum imsg_type {
	IMSG_NONE = 0,

	/* parent -> every child: a new configuration */
	IMSG_CONF_START,	/* parent->child: (none) */
	IMSG_CONF_FILE,		/* parent->child: string name, data text; a pki
				 *   file (to smtp only): empty data and fd, an
				 *   anonymous memory file holding its text */
	IMSG_CONF_END,		/* parent->child: (none): parse and apply */

	/* control -> any process (parent included) */
	IMSG_CTL_VERBOSE,	/* control->any: int verbose */
	IMSG_CTL_PAUSE,		/* control->smtp|mda|mta: (none) */
	IMSG_CTL_RESUME,	/* control->smtp|mda|mta: (none) */

	/* smtp <-> lka: checks, each answered before smtp replies */
	IMSG_LKA_MAIL,		/* smtp->lka: u64 reqid, sockaddr client, mailaddr sender
				 * lka->smtp: u64 reqid, int sq_status, string reply
				 *   (full SMTP reply line when not SQ_OK, else "") */
	IMSG_LKA_RCPT,		/* smtp->lka: u64 reqid, sockaddr client, int may_relay
				 *   (1: authenticated), mailaddr rcpt
				 * lka->smtp: u64 reqid, int sq_status, string reply;
				 *   preceded, when SQ_OK, by IMSG_LKA_RCPT_DEST, one per
				 *   final destination (1 .. SQ_EXPAND_MAX) */
	IMSG_LKA_RCPT_DEST,	/* lka->smtp|queue: u64 reqid, dest */
	IMSG_LKA_AUTH,		/* smtp->lka: u64 reqid, string table, string user,
				 *   string password (wiped by both after use)
				 * lka->smtp: u64 reqid, int sq_status (SQ_OK:
				 *   authenticated; SQ_PERMFAIL: bad credentials;
				 *   SQ_TEMPFAIL: the table failed) */

	/* queue <-> lka: where a bounce goes */
	IMSG_LKA_RESOLVE,	/* queue->lka: u64 reqid, mailaddr rcpt
				 * lka->queue: u64 reqid, int sq_status, string reply;
				 *   preceded, when SQ_OK, by IMSG_LKA_RCPT_DEST as above.
				 *   Like RCPT but relaying is always allowed. */

	/* smtp <-> queue: storing a message */
	IMSG_QUEUE_CREATE,	/* smtp->queue: u64 reqid
				 * queue->smtp: u64 reqid, int sq_status, u64 msgid,
				 *   fd (write end of the incoming file; -1 on failure) */
	IMSG_QUEUE_RCPT,	/* smtp->queue: u64 msgid, dest (one per destination) */
	IMSG_QUEUE_COMMIT,	/* smtp->queue: u64 reqid, u64 msgid, string sender,
				 *   string helo, string client, string proto, u64 size
				 * queue->smtp: u64 reqid, int sq_status, u64 msgid
				 *   (sent only once message and envelope are durable) */
	IMSG_QUEUE_ABORT,	/* smtp->queue: u64 msgid: drop the incoming file */

	/* queue <-> mda, queue <-> mta: deliveries */
	IMSG_MTA_ROUTE,		/* mta->lka: u64 reqid, string domain,
				 *   int nullsender (a bounce: the bounce route) */
	IMSG_MTA_ROUTE_HOST,	/* lka->mta: u64 reqid, string host name,
				 *   sockaddr (with the port); in the order to try */
	IMSG_MTA_ROUTE_END,	/* lka->mta: u64 reqid, int sq_status, string reason,
				 *   int tls_policy, string fingerprint (hex or ""),
				 *   int smtps, string auth user, string auth secret */
	IMSG_DELIVER,		/* queue->mda|mta: u64 delivery id, u64 msgid,
				 *   string sender, dest, int more (deliveries of
				 *   this message follow at once), fd (message,
				 *   read-only) */
	IMSG_DELIVER_DONE,	/* mda|mta->queue: u64 delivery id, int sq_status,
				 *   string text (the qmail-style report) */

	/* mda <-> parent: delivery agents */
	IMSG_AGENT_FORK,	/* mda->parent: u32 agent id, string user,
				 *   u32 uid, u32 gid, string home ("": user's
				 *   passwd entry; else checked by the parent)
				 * parent->mda: u32 agent id, int sq_status, string
				 *   error, fd (mda's end of the agent's channel) */

	/*
	 * lka <-> parent: AUTH against system users (only root reads
	 * shadow).  The "table" of IMSG_LKA_AUTH may name an auth source
	 * ('@' first, see struct authsrc) instead of a table.
	 */
	IMSG_AUTH_SYSTEM,	/* lka->parent: u32 id, string service ("": passwd
				 *   and shadow, else a PAM service), string user,
				 *   string password (wiped by both after use)
				 * parent->lka: u32 id, int sq_status (as
				 *   IMSG_LKA_AUTH's) */

	/* mda <-> agent (the channel the parent made) */
	IMSG_AGENT_DELIVER,	/* mda->agent: u64 delivery id, u64 msgid, string sender,
				 *   dest, fd (message, read-only) */
	IMSG_AGENT_DONE,	/* agent->mda: u64 delivery id, int sq_status, string text */

	/* sqmailctl <-> control, control <-> processes */
	IMSG_CTL_SHOW_QUEUE,	/* client->control->queue: u32 ctlid */
	IMSG_CTL_SHOW_STATS,	/* client->control->smtp|lka|queue|mda: u32 ctlid */
	IMSG_CTL_SHOW_PROCS,	/* client->control->parent: u32 ctlid */
	IMSG_CTL_SHOW_HOSTS,	/* client->control->mta: u32 ctlid */
	IMSG_CTL_SHOW_ROUTES,	/* client->control->lka: u32 ctlid, string domain
				 *   ("": the configured routes) */
	IMSG_CTL_SCHEDULE,	/* client->control->queue: u32 ctlid, u64 msgid (0: all) */
	IMSG_CTL_REMOVE,	/* client->control->queue: u32 ctlid, u64 msgid (0: all) */
	IMSG_CTL_PAUSE_REQ,	/* client->control: u32 ctlid, string what (smtp|mda|mta) */
	IMSG_CTL_RESUME_REQ,	/* client->control: u32 ctlid, string what */
	IMSG_CTL_LOG,		/* client->control: u32 ctlid, int verbose */
	IMSG_CTL_RELOAD,	/* client->control->parent: u32 ctlid */
	IMSG_CTL_STOP,		/* client->control->parent: u32 ctlid */
	IMSG_CTL_LINE,		/* process->control->client: u32 ctlid, string line */
	IMSG_CTL_END,		/* process->control->client: u32 ctlid, int sq_status,
				 *   string text (error or "" when SQ_OK) */

	/* queue -> control: counters pushed as they change (none yet) */

	/* smtp <-> lka: AUTH CRAM-MD5 (RFC 2195) */
	IMSG_LKA_AUTH_CRAM,	/* smtp->lka: u64 reqid, string table, string user,
				 *   string challenge (as sent, decoded), string digest
				 *   (32 lower-case hex digits)
				 * lka->smtp: u64 reqid, int sq_status, as IMSG_LKA_AUTH */
	IMSG_LKA_AUTH_MECHS,	/* lka->smtp: string table, int cram (1: some user
				 *   of that users table has a CRAM-MD5 secret); one
				 *   per auth table at start and after each reload */

	/* smtp <-> lka: an X.509 client certificate libtls verified */
	IMSG_LKA_AUTH_CERT,	/* smtp->lka: u64 reqid, string table, string
				 *   fingerprint ("SHA256:" and 64 hex digits),
				 *   string cn ("": none usable)
				 * lka->smtp: u64 reqid, int sq_status (SQ_OK:
				 *   mapped; SQ_PERMFAIL: not mapped; SQ_TEMPFAIL:
				 *   the table failed), string user ("" unless
				 *   SQ_OK), string key (the key that matched) */
	/*
	 * sendmail(8): a local submission through the control socket, from
	 * any user.  The client sends its recipients, then the message as a
	 * sealed memory file; control adds the uid the kernel gave it and
	 * passes both on to queue, which writes the Received line, resolves
	 * the recipients through lka (IMSG_LKA_RESOLVE) and commits as for
	 * smtp.  queue answers IMSG_QUEUE_COMMIT (reqid = ctlid) once the
	 * message is durable, or IMSG_CTL_END with the reason it was not.
	 */
	IMSG_CTL_SUBMIT_RCPT,	/* client->control: u32 ctlid, string rcpt
				 * control->queue: u32 ctlid, mailaddr rcpt */
	IMSG_CTL_SUBMIT,	/* client->control: u32 ctlid, string sender
				 *   ("" or "<>": the null sender), fd (the
				 *   message, LF line ends, sealed memfd)
				 * control->queue: u32 ctlid, u32 uid, u32 pid,
				 *   mailaddr sender, fd */
	/*
	 * Forward lines of .qmail files (dot-qmail(5)).  The agent sends its
	 * forward addresses before the IMSG_AGENT_DONE of that delivery; mda
	 * checks them and, when the agent reports success, asks the queue
	 * for the new message; the delivery is reported only after that
	 * answer.  The sender and the Delivered-To address come from mda,
	 * never from the agent.
	 */
	IMSG_AGENT_FORWARD,	/* agent->mda: u64 delivery id, int owner (1: a
				 *   -owner file exists), string address (one
				 *   per forward, at most MDA_FORWARD_MAX) */
	IMSG_QUEUE_FORWARD_RCPT,/* mda->queue: u64 reqid, string address (one
				 *   per forward, before IMSG_QUEUE_FORWARD) */
	IMSG_QUEUE_FORWARD,	/* mda->queue: u64 reqid, u64 msgid (the original),
				 *   string sender, string dtaddr (Delivered-To)
				 * queue->mda: u64 reqid, int sq_status, string
				 *   text, u64 msgid (the new message; sent only
				 *   once it is durable) */
	/*
	 * The offline directory (sendmail(8) when sqmaild was down).  The
	 * parent reads each file, checks it, and hands its envelope and the
	 * message (a sealed memory file) to control, which submits it to
	 * queue as a sendmail submission from the uid that owns the file.
	 * The parent removes the file only once control reports that queue
	 * committed the message (smtpd/parent_pickup.c).
	 */
	IMSG_PICKUP_RCPT,	/* parent->control: u32 pickup id, string rcpt
				 *   (one per recipient, before IMSG_PICKUP) */
	IMSG_PICKUP,		/* parent->control: u32 pickup id, u32 uid, string
				 *   sender ("": the null sender), fd (sealed memfd)
				 * control->parent: u32 pickup id, int sq_status,
				 *   string text (why not, or "queued as N") */

	/* smtp <-> lka: MAV ("auth sender-check"), see lka/lka_auth_sender.c */
	IMSG_LKA_MAIL_AUTH,	/* smtp->lka: u64 reqid, sockaddr client, mailaddr
				 *   sender, string user (authenticated), string
				 *   table ("" none); instead of IMSG_LKA_MAIL
				 * lka->smtp: answered as IMSG_LKA_MAIL */

	IMSG_TYPE_MAX
};

#endif
