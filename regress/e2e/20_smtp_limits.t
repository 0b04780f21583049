#!/usr/bin/env python3
"""
Every SMTP limit of sqmail.conf, hit from a real client: message size (SIZE=
and the body), recipients, sessions and sessions per IP, errors, command and
text line lengths, hop count, bare LF, and the command and data timeouts.
"""
import os
import random
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
from sqtest import crlf, make_message, expect_delivered

SENDER = "sender@example.test"
YOU = "you@example.test"
MAX_SIZE = 100 * 1024
MAX_RCPTS = 5
MAX_SESSIONS = 4
MAX_PER_IP = 2
MAX_ERRORS = 3

LIMITS = """\
limit recipients %d
limit sessions %d
limit sessions-per-ip %d
limit errors %d
limit command-timeout 120s
limit data-timeout 120s
""" % (MAX_RCPTS, MAX_SESSIONS, MAX_PER_IP, MAX_ERRORS)

TIMEOUTS = """\
limit command-timeout 2s
limit data-timeout 3s
"""


def session(d, source=None):
    c = d.client(source)
    c.greeting()
    c.ehlo()
    return c


def session_counts_do_not_leak_after_abrupt_disconnects(t, d):
    src = "127.0.0.8"
    for i in range(60):
        c = d.client(src)
        try:
            c.greeting()
            if i % 3 == 1:
                c.send("EHLO x\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                       "Subject: cut\r\n\r\nhalf" % (SENDER, YOU))
            elif i % 3 == 2:
                c.send("EHLO x\r\nNOOP")
            # reset instead of a clean close
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                              struct.pack("ii", 1, 0))
        finally:
            c.close()

    def both_greeted():
        held = []
        try:
            for _ in range(MAX_PER_IP):
                c = d.client(src)
                held.append(c)
                r = c.greeting()
                if r is None or r.code != 220:
                    return False
            return True
        finally:
            for c in held:
                c.close()
    try:
        sqtest.wait_for("%d sessions from %s to be greeted" % (MAX_PER_IP,
                                                               src),
                        both_greeted, interval=0.5)
        t.ok(True, "after 60 abrupt disconnects (reset, mid-command, "
             "mid-DATA) %d sessions from that address are still greeted"
             % MAX_PER_IP)
    except sqtest.WaitTimeout as e:
        t.ok(False, "after 60 abrupt disconnects %d sessions from that "
             "address are still greeted (no leaked session count)"
             % MAX_PER_IP, str(e))


def ehlo_size_is_the_configured_limit(t, d):
    c = d.client()
    c.greeting()
    r = c.ehlo()
    size = [l for l in (r.lines if r else []) if l.upper().startswith(
        "SIZE")]
    t.ok(size and size[0].split()[1:] == [str(MAX_SIZE)],
         "EHLO says SIZE %d for \"limit message-size 100K\"" % MAX_SIZE,
         "got %r" % size)
    c.close()


def mail_from_size_over_limit_gets_552_5_3_4(t, d):
    c = session(d)
    t.reply(c.cmd("MAIL FROM:<%s> SIZE=%d" % (SENDER, 2 * MAX_SIZE)), 552,
            "5.3.4", "C: MAIL FROM SIZE=2*limit -> S: 552 5.3.4", c)
    t.reply(c.cmd("MAIL FROM:<%s> SIZE=%d" % (SENDER, 1000)), 250, None,
            "C: MAIL FROM SIZE=1000 -> S: 250 (session goes on)", c)
    c.close()


def body_over_limit_gets_552_5_3_4_after_the_dot(t, d):
    c = session(d)
    t.reply(c.cmd("MAIL FROM:<%s>" % SENDER), 250, None, "C: MAIL -> 250", c)
    t.reply(c.cmd("RCPT TO:<%s>" % YOU), 250, None, "C: RCPT -> 250", c)
    t.reply(c.cmd("DATA"), 354, None, "C: DATA -> 354", c)
    big = make_message("too big", ("x" * 76 + "\n") * (2 * MAX_SIZE // 77))
    c.send(sqtest.dot_stuff(crlf(big)) + b".\r\n")
    t.reply(c.reply(), 552, "5.3.4",
            "a body of twice the limit -> S: 552 5.3.4 after the dot", c)
    t.reply(c.cmd("RSET"), 250, None, "the session goes on: RSET -> 250", c)
    ok = make_message("just under", ("y" * 76 + "\n") * (MAX_SIZE // 2 // 77))
    c.cmd("MAIL FROM:<%s>" % SENDER)
    c.cmd("RCPT TO:<%s>" % YOU)
    c.cmd("DATA")
    c.send(sqtest.dot_stuff(crlf(ok)) + b".\r\n")
    t.reply(c.reply(), 250, None, "a body of half the limit -> S: 250", c)
    c.cmd("QUIT")
    c.close()
    expect_delivered(t, d.maildir, ok, SENDER, YOU, "message under the limit")
    t.ok(not [m for m in d.messages() if m.msgid == sqtest.header(
        big, "Message-ID")], "the oversized message was not delivered")


def too_many_recipients_get_452_4_5_3(t, d):
    c = session(d)
    c.cmd("MAIL FROM:<%s>" % SENDER)
    rcpts = ["you", "alice", "bob", "carol", "postmaster"][:MAX_RCPTS]
    for u in rcpts:
        t.reply(c.cmd("RCPT TO:<%s@example.test>" % u), 250, None,
                "RCPT %s@example.test (within the limit) -> S: 250" % u, c)
    t.reply(c.cmd("RCPT TO:<sender@example.test>"), 452, "4.5.3",
            "RCPT number %d -> S: 452 4.5.3" % (MAX_RCPTS + 1), c)
    t.reply(c.cmd("DATA"), 354, None, "DATA still -> S: 354", c)
    m = make_message("five recipients", "to the first five\n")
    c.send(sqtest.dot_stuff(crlf(m)) + b".\r\n")
    t.reply(c.reply(), 250, None, "end of data -> S: 250", c)
    c.cmd("QUIT")
    c.close()
    for u in rcpts:
        expect_delivered(t, d.maildir, m, SENDER, "%s@example.test" % u,
                         "message with %d recipients" % MAX_RCPTS)
    t.ok(not [x for x in d.messages() if x.msgid == sqtest.header(
        m, "Message-ID") and x.delivered_to == "sender@example.test"],
        "the refused recipient got no copy")


def sessions_over_the_per_ip_and_total_limits_get_421(t, d):
    held = []
    try:
        for i in range(MAX_PER_IP):
            c = d.client("127.0.0.5")
            t.reply(c.greeting(), 220, None, "session %d from 127.0.0.5 -> "
                    "S: 220" % (i + 1), c)
            held.append(c)
        c = d.client("127.0.0.5")
        t.reply(c.greeting(), 421, None, "session %d from 127.0.0.5 (per-IP "
                "limit %d) -> S: 421" % (MAX_PER_IP + 1, MAX_PER_IP), c)
        t.ok(c.closed_by_server(), "and the server closes it")
        c.close()
        for i in range(MAX_SESSIONS - MAX_PER_IP):
            c = d.client("127.0.0.6")
            t.reply(c.greeting(), 220, None, "session %d in all, from "
                    "127.0.0.6 -> S: 220" % (len(held) + 1), c)
            held.append(c)
        c = d.client("127.0.0.7")
        t.reply(c.greeting(), 421, None, "session %d in all (limit %d), from "
                "a new address -> S: 421" % (MAX_SESSIONS + 1,
                                             MAX_SESSIONS), c)
        c.close()
        for c in held:
            t.reply(c.ehlo(), 250, None, "the held sessions still work", c)
    finally:
        for c in held:
            try:
                c.send("QUIT\r\n")
                c.reply()
            except OSError:
                pass
            c.close()

    def greeted():
        c = d.client("127.0.0.5")
        try:
            r = c.greeting()
            return r.code if r and r.code == 220 else None
        finally:
            c.close()
    try:
        sqtest.wait_for("a new session once the others closed", greeted)
        t.ok(True, "after those sessions close, a new one is greeted with 220")
    except sqtest.WaitTimeout as e:
        t.ok(False, "after those sessions close, a new one is greeted with "
             "220", str(e))


def too_many_errors_get_421_and_the_connection_closed(t, d):
    c = session(d)
    replies = []
    for i in range(MAX_ERRORS + 2):
        r = c.cmd("BOGUS%d" % i)
        replies.append(r.code if r else None)
        if r is None or r.code == 421:
            break
    n500 = replies.index(421) if 421 in replies else None
    t.ok(n500 is not None and n500 in (MAX_ERRORS - 1, MAX_ERRORS) and
         all(x == 500 for x in replies[:n500]),
         "bad commands get 500 until the limit of %d errors, then 421"
         % MAX_ERRORS, "replies: %r" % replies, c.transcript_tail())
    t.ok(c.closed_by_server(), "the server closes the session after 421")
    c.close()


def command_line_over_512_octets_gets_500_5_5_2_and_the_session_goes_on(t, d):
    c = session(d)
    line = "NOOP " + "a" * (510 - 5)
    t.reply(c.cmd(line), 250, None,
            "a 512-octet command line (CRLF included) -> S: 250", c)
    t.reply(c.cmd("NOOP " + "b" * (511 - 5)), 500, "5.5.2",
            "a 513-octet command line -> S: 500 5.5.2", c)
    t.reply(c.cmd("NOOP"), 250, None, "the session goes on: NOOP -> 250", c)
    t.reply(c.cmd("MAIL FROM:<%s> " % SENDER + "X" * 20000), 500, "5.5.2",
            "a 20000-octet MAIL line -> S: 500 5.5.2", c)
    t.reply(c.cmd("MAIL FROM:<%s>" % SENDER), 250, None,
            "then a normal MAIL -> S: 250", c)
    c.close()


def text_line_over_1000_octets_gets_500_5_5_2_after_the_dot(t, d):
    refused = []
    c = session(d)
    edge = make_message("998 octet line", "e" * 998 + "\nshort\n")
    c.cmd("MAIL FROM:<%s>" % SENDER)
    c.cmd("RCPT TO:<%s>" % YOU)
    c.cmd("DATA")
    c.send(sqtest.dot_stuff(crlf(edge)) + b".\r\n")
    t.reply(c.reply(), 250, None,
            "a text line of 1000 octets (CRLF included) -> S: 250", c)
    for n in (999, 5000):
        long_ = make_message("%d octet line" % n, "l" * n + "\nshort\n")
        c.cmd("MAIL FROM:<%s>" % SENDER)
        c.cmd("RCPT TO:<%s>" % YOU)
        t.reply(c.cmd("DATA"), 354, None, "C: DATA -> 354", c)
        c.send(sqtest.dot_stuff(crlf(long_)) + b".\r\n")
        t.reply(c.reply(), 500, "5.5.2", "a text line of %d octets (CRLF "
                "included) -> S: 500 5.5.2 after the dot" % (n + 2), c)
        t.reply(c.cmd("NOOP"), 250, None, "the session goes on", c)
        refused.append(sqtest.header(long_, "Message-ID"))
    c.close()
    expect_delivered(t, d.maildir, edge, SENDER, YOU, "998-octet line")
    t.ok(not [m for m in d.messages() if m.msgid in refused],
         "the messages with the long lines are not delivered")


def over_100_hops_get_554_5_4_6(t, d):
    cases = [
        ("101 Received headers", 101, 0, 554),
        ("50 Received and 51 Delivered-To headers", 50, 51, 554),
        ("100 Received headers", 100, 0, 250),
    ]
    for name, nrec, ndt, want in cases:
        extra = "".join("Received: from hop%d.test by hop%d.test; Thu, 1 Jan "
                        "2026 00:00:00 +0000\n" % (i, i + 1)
                        for i in range(nrec)) + \
            "".join("Delivered-To: elsewhere%d@hop.test\n" % i
                    for i in range(ndt))
        m = make_message(name, "hops\n", extra=extra)
        c = session(d)
        c.cmd("MAIL FROM:<%s>" % SENDER)
        c.cmd("RCPT TO:<%s>" % YOU)
        c.cmd("DATA")
        c.send(sqtest.dot_stuff(crlf(m)) + b".\r\n")
        t.reply(c.reply(), want, "5.4.6" if want == 554 else None,
                "a message with %s -> S: %d%s" % (
                    name, want, " 5.4.6" if want == 554 else ""), c)
        c.close()


def bare_lf_in_data_gets_554_5_6_0(t, d):
    c = session(d)
    c.cmd("MAIL FROM:<%s>" % SENDER)
    c.cmd("RCPT TO:<%s>" % YOU)
    c.cmd("DATA")
    mid = "<bare-lf.%d@sqtest>" % random.getrandbits(40)
    c.send("Subject: bare LF\r\nMessage-ID: %s\r\n\r\nline one\nline two\r\n"
           ".\r\n" % mid)
    t.reply(c.reply(), 554, "5.6.0",
            "a message with a bare LF -> S: 554 5.6.0 after the dot", c)
    t.reply(c.cmd("MAIL FROM:<%s>" % SENDER), 250, None,
            "the session goes on: MAIL -> 250", c)
    c.close()
    t.ok(not [m for m in d.messages() if m.msgid == mid],
         "the message with the bare LF is not delivered")


def idle_session_gets_421_4_4_2(t, d):
    c = session(d)
    t.reply(c.reply(timeout=60), 421, "4.4.2",
            "an idle session (command-timeout 2s) gets 421 4.4.2", c)
    t.ok(c.closed_by_server(), "and is closed")
    c.close()


def idle_data_gets_421_4_4_2_and_nothing_is_delivered(t, d):
    c = session(d)
    c.cmd("MAIL FROM:<%s>" % SENDER)
    c.cmd("RCPT TO:<%s>" % YOU)
    t.reply(c.cmd("DATA"), 354, None, "C: DATA -> 354", c)
    mid = "<stalled.%d@sqtest>" % random.getrandbits(40)
    c.send("Subject: stalled\r\nMessage-ID: %s\r\n\r\nhalf a mess" % mid)
    t.reply(c.reply(timeout=60), 421, "4.4.2",
            "a client that stalls in DATA (data-timeout 3s) gets 421 4.4.2", c)
    t.ok(c.closed_by_server(), "and is closed")
    c.close()
    m = make_message("after the stall", "complete\n")
    code, text = d.send(m)
    t.is_(code, 250, "the next client is served", text)
    expect_delivered(t, d.maildir, m, SENDER, YOU, "message after the stall")
    t.ok(not [x for x in d.messages() if x.msgid == mid],
         "the stalled message was not delivered")


def main():
    t = sqtest.Tap()
    d = sqtest.Daemon(t, extra=LIMITS, message_size="100K").start()
    sqtest.run(t, [
        sessions_over_the_per_ip_and_total_limits_get_421,
        session_counts_do_not_leak_after_abrupt_disconnects,
        ehlo_size_is_the_configured_limit,
        mail_from_size_over_limit_gets_552_5_3_4,
        body_over_limit_gets_552_5_3_4_after_the_dot,
        too_many_recipients_get_452_4_5_3,
        too_many_errors_get_421_and_the_connection_closed,
        command_line_over_512_octets_gets_500_5_5_2_and_the_session_goes_on,
        text_line_over_1000_octets_gets_500_5_5_2_after_the_dot,
        over_100_hops_get_554_5_4_6,
        bare_lf_in_data_gets_554_5_6_0,
        sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
    ], d, done=False)
    # The timeouts, on a daemon of their own (short ones would cut the
    # sessions held above).
    d2 = sqtest.Daemon(t, extra=TIMEOUTS).start()
    sqtest.run(t, [
        idle_session_gets_421_4_4_2,
        idle_data_gets_421_4_4_2_and_nothing_is_delivered,
        sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
    ], d2)


if __name__ == "__main__":
    main()
