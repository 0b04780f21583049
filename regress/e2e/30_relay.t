#!/usr/bin/env python3
"""
Relaying: a client outside "relay from" may only send to local domains,
and no address trick (the %-hack, bang paths, quoted local parts holding
an @, source routes, address literals) makes a local-looking address
relay, not even for a relay client.  A client inside "relay from"
(127.0.0.2 here) may send anywhere: the remote message is accepted; no
DNS server answers here (sqtest's "dns servers" is a closed loopback
port), so its delivery is a deferral and the message waits in the queue,
visible in `sqmailctl show queue`, until its lifetime ends and it bounces
to the sender.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
from sqtest import make_message, expect_delivered

SENDER = "sender@example.test"
YOU = "you@example.test"
OUTSIDE = "127.0.0.1"     # not in "relay from"
RELAY = "127.0.0.2"       # in "relay from"
RELAY_CONF = "relay from { 127.0.0.2/32 }\n"

TRICKS = [
    ("the %-hack", "you%remote.test@example.test"),
    ("a bang path", "remote.test!you@example.test"),
    ("a quoted local part holding an @", '"you@remote.test"@example.test'),
    ("%-hack and bang path together", "remote.test!you%other.test@example.test"),
]


def rcpt(d, source, addr):
    c = d.client(source)
    c.greeting()
    c.ehlo()
    c.cmd("MAIL FROM:<%s>" % SENDER)
    r = c.cmd("RCPT TO:<%s>" % addr)
    c.cmd("QUIT")
    c.close()
    return r, c


def remote_rcpt_from_outside_the_relay_network_gets_554_5_7_1(t, d):
    r, c = rcpt(d, OUTSIDE, "friend@remote.test")
    t.reply(r, 554, "5.7.1", "from 127.0.0.1: RCPT TO:<friend@remote.test> "
            "-> S: 554 5.7.1", c)


def address_tricks_are_never_relayed(t, d):
    for source, who in ((OUTSIDE, "a client outside relay from"),
                        (RELAY, "a relay client")):
        for name, addr in TRICKS:
            r, c = rcpt(d, source, addr)
            t.ok(r is not None and r.code in (550, 554),
                 "%s: RCPT TO:<%s> (%s) -> S: 550 or 554" % (who, addr, name),
                 "got %r" % r, c.transcript_tail())


def source_route_to_a_remote_domain_is_refused_from_outside(t, d):
    r, c = rcpt(d, OUTSIDE, "@example.test:friend@remote.test")
    t.ok(r is not None and 500 <= r.code <= 599,
         "from 127.0.0.1: RCPT TO:<@example.test:friend@remote.test> -> 5xx",
         "got %r" % r, c.transcript_tail())


def address_literal_is_not_local(t, d):
    r, c = rcpt(d, OUTSIDE, "you@[127.0.0.1]")
    t.ok(r is not None and 500 <= r.code <= 599,
         "from 127.0.0.1: RCPT TO:<you@[127.0.0.1]> -> 5xx (not ours)",
         "got %r" % r, c.transcript_tail())


def local_domain_matches_in_any_case(t, d):
    r, c = rcpt(d, OUTSIDE, "you@EXAMPLE.Test")
    t.reply(r, 250, None, "from 127.0.0.1: RCPT TO:<you@EXAMPLE.Test> -> "
            "S: 250 (domains are case-insensitive)", c)


def local_mail_from_outside_is_accepted(t, d):
    m = make_message("local from outside", "hi\n")
    code, text = d.send(m, source=OUTSIDE)
    t.is_(code, 250, "from 127.0.0.1 to you@example.test -> S: 250", text)
    expect_delivered(t, d.maildir, m, SENDER, YOU, "local message")


def relay_client_mail_to_a_remote_domain_is_queued(t, d):
    mark = d.log_mark()
    m = make_message("to a remote friend", "relayed\n",
                     to="friend@remote.test")
    code, text = d.send(m, rcpts=["friend@remote.test", YOU], source=RELAY)
    t.is_(code, 250, "from 127.0.0.2: a message to friend@remote.test and "
          "you@example.test -> S: 250", text)
    expect_delivered(t, d.maildir, m, SENDER, YOU,
                     "the local copy of a mixed message")
    t.ok(d.wait_for_log(r"^delivery \d+: deferral: MX_lookup_for_remote\.test"
                        r":_", since=mark),
         "the log says \"delivery D: deferral: MX lookup for remote.test: "
         "...\" (qmail-send writes spaces as _)")

    def queued():
        q = d.queue() or []
        e = [x for x in q if x.get("rcpt") == "friend@remote.test" and
             x.get("tries", 0) >= 1]
        return e
    try:
        e = sqtest.wait_for("friend@remote.test in show queue with a try",
                            queued)[0]
    except sqtest.WaitTimeout as ex:
        t.ok(False, "show queue lists the remote recipient", str(ex),
             "show queue: %r" % (d.ctl("show", "queue"),))
        return
    t.ok(True, "show queue lists the remote recipient after a try")
    t.like(e["line"], r"^id=\d+ age=\d+s? sender=sender@example\.test "
           r"rcpt=friend@remote\.test state=pending tries=\d+ next=\S+ "
           r"error=MX lookup for remote\.test: .*#4\.4\.3",
           "its line: id, age, sender, rcpt, state=pending, tries, next, "
           "error=MX lookup for remote.test: ...")
    q = d.queue() or []
    t.ok(not [x for x in q if x.get("rcpt") == YOU and
              x.get("state") != "done"],
         "the delivered local recipient is not pending (absent or "
         "state=done)", repr(q))


def relay_client_mail_expires_and_bounces_to_the_sender(t, d):
    d2 = sqtest.Daemon(t, extra=RELAY_CONF + "queue lifetime 10s\n")
    rc, out = d2.check_conf()
    if not t.is_(rc, 0, "\"queue lifetime 10s\" is a valid setting", out):
        # Still test expiry, with the shortest lifetime the daemon takes.
        d2.write_conf(sqtest.DEFAULT_CONF, extra=RELAY_CONF +
                      "queue lifetime 60s\n")
    d2.start()
    m = make_message("expiring", "this one cannot leave\n",
                     to="gone@remote.test")
    code, text = d2.send(m, rcpts=["gone@remote.test"], source=RELAY)
    t.is_(code, 250, "from 127.0.0.2 to gone@remote.test -> S: 250", text)
    got = d2.wait_for_maildir(
        1, seconds=100, pred=lambda x: x.delivered_to == SENDER)
    b = [x for x in got if x.delivered_to == SENDER]
    if t.is_(len(b), 1, "after the queue lifetime a bounce reaches the "
             "sender's mailbox"):
        b = b[0]
        t.is_(b.return_path, "", "the bounce has Return-Path <>")
        body = (b.rest or b"").split(b"\n\n", 1)[-1]
        t.like(body.decode("utf-8", "replace"), r"^Hi\. This is the",
               "the bounce body starts with \"Hi. This is the\" (QSBMF)")
        t.like(body.decode("utf-8", "replace"), r"(?m)^<gone@remote\.test>:",
               "it has a \"<gone@remote.test>:\" paragraph")
        t.like(body.decode("utf-8", "replace"),
               r"(?m)^--- Below this line is a copy of the message\.",
               "and \"--- Below this line is a copy of the message.\"")
        t.ok(sqtest.header(m, "Message-ID").encode() in body,
             "the copy holds the original message")

    def empty():
        q = d2.queue()
        return q is not None and not [x for x in q if x.get("id")]
    try:
        sqtest.wait_for("the queue to empty", empty)
        t.ok(True, "then the queue is empty")
    except sqtest.WaitTimeout as e:
        t.ok(False, "then the queue is empty", str(e),
             repr(d2.ctl("show", "queue")))
    d2.stop()


def main():
    t = sqtest.Tap()
    d = sqtest.Daemon(t, extra=RELAY_CONF).start()
    sqtest.run(t, [
        remote_rcpt_from_outside_the_relay_network_gets_554_5_7_1,
        address_tricks_are_never_relayed,
        source_route_to_a_remote_domain_is_refused_from_outside,
        address_literal_is_not_local,
        local_domain_matches_in_any_case,
        local_mail_from_outside_is_accepted,
        relay_client_mail_to_a_remote_domain_is_queued,
        sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
        relay_client_mail_expires_and_bounces_to_the_sender,
    ], d)


if __name__ == "__main__":
    main()
