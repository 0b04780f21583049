#!/usr/bin/env python3
"""
The SMTP client (the mta process) against a hostile remote host
(regress/e2e/hostilepeer.py): over-long lines, replies that never end
(fast, and dribbled a byte at a time), NUL and bare CR in replies, bare
LF line ends, reply codes that are not three digits or that change
within a reply, replies sent out of turn (the CVE-2020-8794 class: text
after a reply meant to be taken as the next replies, or as envelope
lines), reply text that looks like log lines or header lines, data
before the greeting, a close right after 354, a reply to the final dot
that never ends, and DATA answered with 250.

Each case has its own domain routed to its own peer.  What is checked,
every time: sqmaild and its mta process keep running (the same pid), the
message is not lost (still queued with the deferral, or delivered, or
bounced with the remote text), the delivery's log line is one sane line,
what the peer flooded stopped because the client closed (a bounded
amount, not the peer's cap), the envelope files in the spool are well
formed and hold nothing forged, and a bounce has no forged header or
line.  After all of it the same daemon delivers to a real Postfix
(mtapeer.py): no state was corrupted.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
import mtapeer
import hostilepeer as hp
from hostilepeer import Send, Expect, Data, Flood, Drain, Close, Serve, Recv
from sqtest import make_message

SENDER = "sender@example.test"
FLOOD_CAP = 8 * 1024 * 1024     # far beyond any sane client limit
MARK = b"Subject: hostile "     # in every test message: did it go out?


def greet(g=b"220 hostile.test ESMTP\r\n"):
    return [Send(g)]


EHLO = Expect(b"EHLO", b"250-hostile.test\r\n250 8BITMIME\r\n")
MAIL = Expect(b"MAIL", b"250 2.1.0 ok\r\n")


def to_rcpt(reply):
    """Greeting, EHLO, MAIL, then RCPT answered with reply."""
    return greet() + [EHLO, MAIL, Expect(b"RCPT", reply)]


def to_dot(steps):
    """A normal transaction up to the message; the dot answered by steps."""
    return greet() + [EHLO, MAIL, Expect(b"RCPT", b"250 2.1.5 ok\r\n"),
                      Expect(b"DATA", b"354 go ahead\r\n"), Data()] + steps


class Case:
    """
    One hostile script and what must come of it:
      outcome  "deferral", "success" or "failure" (bounced), or a tuple
               of those that are all right
      body     True: the message reached the peer; False: it must not
               have been sent at all; None: either
      flood    True: the peer floods, the client must close before the cap
      forged   regexes that must match no line of the log, of the
               envelope, of the bounce's header (the injected text)
      reason   a regex the logged reason must match
      never_sent  commands the client must not have sent on the first
               connection: it would have taken a reply sent before the
               command before it for its answer
    """

    def __init__(self, name, why, script, outcome, body=None, flood=False,
                 forged=(), reason=None, scripts=None, never_sent=()):
        self.name = name
        self.why = why
        self.script = script
        self.scripts = scripts      # one per connection, instead
        self.never_sent = never_sent
        self.outcome = outcome
        self.settled = None         # the outcome, once run (or expected)
        self.body = body
        # The cap of the script's Flood step, or 0.
        self.flood = max([s.cap for s in script or []
                          if isinstance(s, Flood)] or [0]) if flood else 0
        self.forged = forged
        self.reason = reason
        self.peer = None

    @property
    def domain(self):
        return "%s.x.test" % self.name

    @property
    def rcpt(self):
        return "rcpt@" + self.domain


# Lines the hostile replies try to plant, in an envelope or anywhere.
FORGED_ENV = (r"^addr evil@", r"^mailbox /tmp/evil", r"^user root$",
              r"(?i)^x-forged", r"^delivery 99\d")

CASES = {
    "long": [
        Case("greeting-600", "a 600-octet greeting (over RFC 5321's 512) "
             "is tolerated", greet(b"220 " + b"g" * 594 + b"\r\n") +
             [EHLO, MAIL, Expect(b"RCPT", b"250 2.1.5 ok\r\n"),
              Expect(b"DATA", b"354 go ahead\r\n"),
              Data(b"250 2.0.0 ok\r\n"), Serve()], "success", body=True),
        Case("dot-reply-600", "a 600-octet reply to the dot is tolerated, "
             "and logged bounded", to_dot(
                 [Send(b"250 2.0.0 " + b"d" * 588 + b"\r\n"), Serve()]),
             "success", body=True),
        Case("greeting-line-endless", "a greeting line that never ends "
             "(one line, no CRLF, fed until the client closes)",
             [Send(b"220 "), Flood(b"x", FLOOD_CAP)], "deferral",
             body=False, flood=True),
        Case("rcpt-line-70k", "a 70 KiB reply line to RCPT",
             to_rcpt(b"250 " + b"r" * 70000 + b"\r\n") + [Drain(3)],
             "deferral", body=False),
    ],
    "endless": [
        Case("greeting-multiline-fast", "a multi-line greeting that never "
             "ends, as fast as the socket takes it",
             [Flood(b"220-hostile.test still greeting\r\n", FLOOD_CAP)],
             "deferral", body=False, flood=True),
        Case("ehlo-multiline-dribble", "a multi-line EHLO reply that never "
             "ends, dribbled a byte at a time",
             greet() + [Expect(b"EHLO"), Flood(b"250-X\r\n", 64 * 1024,
                                                delay=0.001, chunk=1)],
             "deferral", body=False, flood=True),
        Case("dot-multiline-fast", "a multi-line reply to the dot that "
             "never ends", to_dot([Flood(b"250-2.0.0 still going\r\n",
                                         FLOOD_CAP)]),
             "deferral", body=True, flood=True),
        Case("dot-multiline-dribble", "a multi-line reply to the dot that "
             "never ends, a line every few milliseconds",
             to_dot([Flood(b"250-2.0.0 slowly\r\n", 256 * 1024,
                           delay=0.005, chunk=17)]),
             "deferral", body=True, flood=True),
    ],
    "nul": [
        Case("greeting-nul", "a NUL inside the greeting's text is "
             "sanitised", greet(b"220 hostile\0.test ESMTP\r\n") +
             [EHLO, MAIL, Expect(b"RCPT", b"250 2.1.5 ok\r\n"),
              Expect(b"DATA", b"354 go ahead\r\n"),
              Data(b"250 2.0.0 ok\r\n"), Serve()], "success", body=True),
        Case("rcpt-451-nul", "a NUL inside a 451 to RCPT",
             to_rcpt(b"451 4.3.0 try\0X-Forged: later\r\n") + [Serve()],
             "deferral", body=False, reason=r"451_4\.3\.0_try\?X-Forged",
             forged=(r"(?i)^x-forged",)),
        Case("rcpt-550-nul-cr", "NUL and bare CR inside a 550 to RCPT",
             to_rcpt(b"550 5.1.1 no\0such\ruser\rX-Forged: yes\r\n") +
             [Serve()], "failure", body=False,
             reason=r"550_5\.1\.1_no\?such\?user\?X-Forged",
             forged=(r"(?i)^x-forged",)),
        Case("rcpt-451-escapes", "8-bit text and terminal escapes inside "
             "a 451 to RCPT",
             to_rcpt(b"451 4.3.0 caf\xc3\xa9 \x1b[2J\x1b[31mred\x1b[0m "
                     b"\x7f\x08\x08\r\n") + [Serve()], "deferral",
             body=False, reason=r"451_4\.3\.0_caf\?\?_\?\[2J\?\[31mred"),
        Case("code-nul", "a NUL inside the greeting's code",
             [Send(b"2\x0020 hostile.test\r\n"), Drain(3)], "deferral",
             body=False),
    ],
    "ehlo": [
        Case("ehlo-garbage", "EHLO keywords that are garbage: SIZE too "
             "big for 64 bits and negative, empty AUTH, STARTTLS with a "
             "NUL, a tab line, an enhanced code; none of it is taken",
             greet() + [Expect(b"EHLO", b"250-hostile.test\r\n"
                               b"250-SIZE 99999999999999999999999999\r\n"
                               b"250-SIZE -5\r\n250-AUTH=\r\n250-AUTH\r\n"
                               b"250-STARTTLS\0\r\n250-\t\r\n"
                               b"250-2.0.0 PIPELINING\0\r\n"
                               b"250 8BITMIME\r\n"),
                        MAIL, Expect(b"RCPT", b"250 2.1.5 ok\r\n"),
                        Expect(b"DATA", b"354 go ahead\r\n"),
                        Data(b"250 2.0.0 ok\r\n"), Serve()],
             "success", body=True),
        Case("starttls-garbage", "STARTTLS answered 220, then bytes that "
             "are not TLS: the client gives up TLS with this host and "
             "delivers in plaintext on a new connection",
             None, "success", body=True,
             reason=r"^127\.0\.0\.1_accepted_message\.",
             scripts=[greet() + [
                 Expect(b"EHLO", b"250-hostile.test\r\n250-STARTTLS\r\n"
                        b"250 8BITMIME\r\n"),
                 Expect(b"STARTTLS", b"220 2.0.0 go ahead\r\n"),
                 Recv(5), Send(b"220 this is not TLS at all\r\n" * 4),
                 Drain(3)],
                 hp.polite()]),
        Case("starttls-then-injection", "STARTTLS answered 220 and, in the "
             "same packet, plaintext replies meant to be read after the "
             "handshake (CVE-2011-0411 class): never taken; deferred, or "
             "delivered on a new connection",
             None, ("deferral", "success"), forged=(r"success.*FORGED",),
             never_sent=(b"MAIL FROM",),
             scripts=[greet() + [
                 Expect(b"EHLO", b"250-hostile.test\r\n250-STARTTLS\r\n"
                        b"250 8BITMIME\r\n"),
                 Expect(b"STARTTLS", b"220 2.0.0 go ahead\r\n"
                        b"250-hostile.test\r\n250 8BITMIME\r\n"
                        b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n"
                        b"250 2.0.0 FORGED\r\n"), Drain(3)],
                 hp.polite(dot=b"250 2.0.0 genuine\r\n")]),
    ],
    "barelf": [
        Case("bare-lf", "replies ending in a bare LF are read as lines",
             [Send(b"220 hostile.test ESMTP\n"),
              Expect(b"EHLO", b"250-hostile.test\n250 8BITMIME\n"),
              Expect(b"MAIL", b"250 2.1.0 ok\n"),
              Expect(b"RCPT", b"250 2.1.5 ok\n"),
              Expect(b"DATA", b"354 go ahead\n"),
              Data(b"250 2.0.0 ok\n"), Serve()], "success", body=True),
    ],
    "codes": [
        Case("greeting-2-digits", "a greeting code of two digits",
             [Send(b"22 hostile.test\r\n"), Drain(3)], "deferral",
             body=False),
        Case("greeting-4-digits", "a greeting code of four digits",
             [Send(b"2200 hostile.test\r\n"), Drain(3)], "deferral",
             body=False),
        Case("greeting-1xx", "a 1xx greeting (not used in SMTP)",
             [Send(b"120 wait\r\n220 hostile.test\r\n"), Drain(3)],
             "deferral", body=False),
        Case("rcpt-letters", "a RCPT reply code with a letter",
             to_rcpt(b"25O 2.1.5 ok\r\n") + [Drain(3)], "deferral",
             body=False),
        Case("rcpt-code-changes", "a RCPT reply whose code changes "
             "from 250 to 550 within it",
             to_rcpt(b"250-2.1.5 ok\r\n550 5.1.1 no\r\n") + [Drain(3)],
             "deferral", body=False),
        Case("dot-code-changes", "a reply to the dot whose code changes "
             "from 550 to 250 within it",
             to_dot([Send(b"550-5.0.0 no\r\n250 2.0.0 yes\r\n"), Drain(3)]),
             "deferral", body=True),
    ],
    "inject": [
        Case("rcpt-then-354", "RCPT answered with 250 and, in the same "
             "packet, a 354 meant for a DATA not sent yet (the peer then "
             "takes a message and answers 250 if one comes)",
             to_rcpt(b"250 2.1.5 ok\r\n354 go ahead\r\n") +
             [Data(b"250 2.0.0 queued as FORGED\r\n", seconds=3), Serve()],
             "deferral", body=False, forged=(r"success.*FORGED",)),
        Case("rcpt-then-354-250", "RCPT answered with 250, then 354 and a "
             "250 for the dot in the same packet",
             to_rcpt(b"250 2.1.5 ok\r\n354 go ahead\r\n"
                     b"250 2.0.0 queued as FORGED\r\n") + [Drain(3)],
             "deferral", body=False, forged=(r"success.*FORGED",)),
        Case("rcpt-then-envelope", "a 451 to RCPT followed in the same "
             "packet by envelope-looking lines",
             to_rcpt(b"451 4.3.0 later\r\nrcpt\r\naddr evil@evil.test\r\n"
                     b"type local\r\nuser root\r\nstate pending\r\nend\r\n")
             + [Drain(3)], "deferral", body=False, forged=FORGED_ENV),
        Case("rcpt-multiline-envelope", "a multi-line 451 to RCPT whose "
             "lines look like envelope lines",
             to_rcpt(b"451-4.3.0 later\r\n451-\r\n451-rcpt\r\n"
                     b"451-addr evil@evil.test\r\n451-type local\r\n"
                     b"451-mailbox /tmp/evil\r\n451 end\r\n") + [Serve()],
             "deferral", body=False, reason=r"451_4\.3\.0_later_",
             forged=FORGED_ENV),
        Case("rcpt-550-then-header", "a 550 to RCPT followed in the same "
             "packet by a header-looking line",
             to_rcpt(b"550 5.1.1 no such user\r\nX-Forged: yes\r\n") +
             [Drain(3)], "deferral", body=False,
             forged=(r"(?i)^x-forged",)),
        Case("all-replies-at-once", "the greeting and every reply of a "
             "transaction sent at once, before any command",
             [Send(b"220 hostile.test\r\n250 hostile.test\r\n250 ok\r\n"
                   b"250 ok\r\n354 go\r\n250 2.0.0 FORGED\r\n221 bye\r\n"),
              Drain(3)], "deferral", body=False, forged=(r"success.*FORGED",),
             never_sent=(b"MAIL FROM",)),
        Case("data-250", "DATA answered with 250 instead of 354: the "
             "message was never sent, so it cannot count as delivered",
             to_rcpt(b"250 2.1.5 ok\r\n") +
             [Expect(b"DATA", b"250 2.0.0 ok\r\n"), Serve()],
             "deferral", body=False),
    ],
    "forge": [
        Case("dot-250-escapes", "a 250 to the dot whose text holds "
             "escapes and a bare CR meant to start new log lines",
             to_dot([Send(b"250 2.0.0 ok\\r\\nX-Forged: yes %0d%0a"
                          b"delivery 998: success: forged\r"
                          b"delivery 999: success: forged\r\n"), Serve()]),
             "success", body=True, reason=r"X-Forged:_yes_%0d%0adelivery",
             forged=(r"^delivery 99\d", r"(?i)^x-forged")),
        Case("rcpt-550-headers", "a multi-line 550 to RCPT whose lines "
             "look like header lines and a blank line",
             to_rcpt(b"550-5.1.1 no such user\r\n550-\r\n"
                     b"550-X-Forged: yes\r\n550 Subject: forged\r\n") +
             [Serve()], "failure", body=False,
             reason=r"550_5\.1\.1_no_such_user",
             forged=(r"(?i)^x-forged", r"(?i)^subject: forged")),
    ],
    "order": [
        Case("junk-before-greeting", "text before the greeting",
             [Send(b"hello? is this on\r\n220 hostile.test\r\n"),
              Drain(3)], "deferral", body=False),
        Case("tls-bytes-before-greeting", "binary (a TLS record) before "
             "the greeting",
             [Send(b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"
                   b"220 hostile.test\r\n"), Drain(3)], "deferral",
             body=False),
        Case("greeting-then-ehlo-reply", "an EHLO reply sent with the "
             "greeting, before the EHLO",
             [Send(b"220 hostile.test\r\n250 hostile.test\r\n"), Drain(3)],
             "deferral", body=False, never_sent=(b"MAIL FROM",)),
        Case("close-after-354", "a server that closes right after 354",
             to_rcpt(b"250 2.1.5 ok\r\n") +
             [Expect(b"DATA", b"354 go ahead\r\n"), Close()],
             "deferral"),
        Case("close-mid-reply", "a server that closes in the middle of a "
             "multi-line reply to RCPT",
             to_rcpt(b"250-2.1.5 ok\r\n250-more") + [Close()],
             "deferral", body=False),
    ],
}


# ------------------------------------------------------------ checks


HKEYS = {"id", "ctime", "flags", "sender", "helo", "client", "proto",
         "size", "hash"}
RKEYS = {"addr", "orig", "type", "user", "method", "mailbox", "state",
         "tries", "last", "next", "error"}


def parse_envelope(data):
    """
    An envelope file (queue/queue_envelope.c, sqmail-queue(5)), strictly:
    (header dict, [rcpt dict]); ValueError says what is wrong.
    """
    if not data.endswith(b"\n"):
        raise ValueError("does not end with a newline")
    if re.search(rb"[^\x20-\x7e\n]", data):
        raise ValueError("a byte outside printable ASCII")
    lines = data.decode("ascii").split("\n")[:-1]
    if not lines or lines[0] != "sqmail-envelope 1":
        raise ValueError("not a version 1 envelope")
    head, rcpts, ended = {}, [], False
    for n, line in enumerate(lines[1:], 2):
        if ended:
            raise ValueError("line %d: after end" % n)
        if line == "end":
            ended = True
            continue
        if line == "rcpt":
            rcpts.append({})
            continue
        key, sp, val = line.partition(" ")
        cur, keys = (rcpts[-1], RKEYS) if rcpts else (head, HKEYS)
        if key not in keys or key in cur:
            raise ValueError("line %d: key %r unknown or repeated" % (n,
                                                                     key))
        cur[key] = val
    if not ended:
        raise ValueError("no end line")
    return head, rcpts


def envelopes(d):
    """{file name: bytes} of every envelope in the spool."""
    out = {}
    env = os.path.join(d.spool, "env")
    for n in os.listdir(env):
        try:
            with open(os.path.join(env, n), "rb") as f:
                out[n] = f.read()
        except FileNotFoundError:
            pass
    return out


def forged_lines(text, patterns):
    """Lines of text matching any of the patterns."""
    return [l for l in text.splitlines()
            if any(re.search(p, l) for p in patterns)]


def bounce_for(d, rcpt):
    """The bounce naming rcpt in the sender's Maildir, or None."""
    def mine(m):
        return m.delivered_to == SENDER and \
            ("<%s>:" % rcpt).encode() in m.data
    got = [m for m in d.wait_for_maildir(1, pred=mine) if mine(m)]
    return got[0] if got else None


def check_bounce(t, c, b):
    data = b.data
    head, _, body = data.partition(b"\n\n")
    t.ok(not re.search(rb"[\x00\r]", data), "%s: no NUL or CR in the "
         "bounce" % c.name, data[:600])
    bad = [l for l in head.split(b"\n")
           if not re.match(rb"[A-Za-z0-9-]+:|[ \t]", l)]
    t.ok(not bad and head.count(b"\nSubject:") <= 1,
         "%s: the bounce's header is only its own fields" % c.name,
         head.decode("latin-1"))
    t.is_(forged_lines(head.decode("latin-1"), c.forged), [],
          "%s: nothing forged in the bounce's header" % c.name)
    said = [l for l in body.split(b"\n") if b"Remote host said:" in l]
    t.ok(len(said) == 1 and re.search(rb"Remote host said: 5\d\d ",
                                      said[0]),
         "%s: the bounce quotes the remote reply on one line" % c.name,
         body[:800].decode("latin-1"))
    # The quoted original follows the break paragraph: look above it.
    report = body.split(b"\n--- ", 1)[0].decode("latin-1")
    t.is_(forged_lines(report, c.forged), [], "%s: no forged line in the "
          "bounce's report" % c.name)


def run_case(t, d, c, mta_pid):
    peer = c.peer
    since = d.log_mark()
    name = c.name
    msg = make_message("hostile %s" % name)
    try:
        code, text = d.send(msg, rcpts=(c.rcpt,))
    except Exception as e:
        t.ok(False, "%s: accepted for %s" % (name, c.rcpt), repr(e))
        return
    msgid = sqtest.qp_of(text)
    t.ok(code == 250 and msgid, "%s: accepted for %s" % (name, c.rcpt),
         text)
    res = d.delivery_result(c.rcpt, since, msgid, seconds=40)
    conns = peer.wait_connections(1)
    peer_diag = "peer %s (%s):\n%s" % (name, c.why, peer.describe())
    if not t.ok(res is not None, "%s: a delivery result is logged" % name,
                peer_diag):
        return
    did, outcome, reason = res
    allowed = (c.outcome,) if isinstance(c.outcome, str) else c.outcome
    t.ok(outcome in allowed, "%s (%s): %s" % (name, c.why,
                                              " or ".join(allowed)),
         "got %s: %s" % (outcome, reason), peer_diag)
    # What follows checks the outcome that came, when it is allowed.
    c.settled = outcome if outcome in allowed else allowed[0]
    t.ok(re.match(r"^[!-~]{1,700}$", reason) and "127.0.0.1" in reason,
         "%s: the logged reason is one printable line naming the host"
         % name, reason)
    if c.reason:
        t.like(reason, c.reason, "%s: the reason quotes the reply, "
               "sanitised" % name)

    # What the peer saw.
    t.ok(len(conns) >= 1, "%s: the peer was connected to" % name,
         peer_diag)
    sent = b"".join(x.received for x in peer.connections())
    # Every connection so far, the first first (a later one may still
    # be open: its message is recorded before the reply to the dot).
    allc = sorted(peer.connections(), key=lambda x: x.n)
    if c.body is True:
        t.ok(any(x.data and MARK in x.data for x in allc),
             "%s: the message reached the peer" % name, peer_diag)
    elif c.body is False:
        t.ok(MARK not in sent, "%s: the message was not sent" % name,
             peer_diag)
    first = allc[0] if allc else None
    for cmd in c.never_sent:
        t.ok(first is not None and cmd not in first.received,
             "%s: the client never sent %s on the first connection (no "
             "reply sent ahead of a command is taken for its answer)" % (
                 name, cmd.decode()), peer_diag)
    if c.flood:
        t.ok(first is not None and first.ended == "closed by client" and
             not first.flood_capped,
             "%s: the client closed after %s octets, on its own (the "
             "peer's cap is %d)" % (name, first.flood_sent if first
                                    else "?", c.flood), peer_diag)

    # Queue, spool, bounce.
    envs = envelopes(d)
    if c.settled == "deferral":
        whole = d.queue() or []
        q = [e for e in whole if e.get("rcpt") == c.rcpt]
        t.ok(len(q) == 1 and q[0]["id"] == msgid and q[0]["error"] and
             "127.0.0.1" in q[0]["error"],
             "%s: still queued, show queue names the error" % name, q)
        t.ok(whole and all(e["id"] for e in whole) and
             not forged_lines("\n".join(e["error"] for e in whole),
                              c.forged),
             "%s: show queue is one well-formed line per recipient"
             % name, "\n".join(e["line"] for e in whole))
        env = envs.get(msgid)
        try:
            head, rcpts = parse_envelope(env or b"")
            why = None
        except ValueError as e:
            head, rcpts, why = {}, [], str(e)
        t.ok(why is None and head.get("sender") == SENDER and
             [r.get("addr") for r in rcpts] == [c.rcpt] and
             rcpts[0].get("state") == "pending" and
             rcpts[0].get("type") == "remote" and
             set(rcpts[0]) <= {"addr", "type", "state", "tries", "last",
                               "next", "error", "orig"},
             "%s: the envelope is well formed: one remote recipient, "
             "pending" % name, why, env)
    else:
        gone = d.wait_for_log(r"^end msg %s$" % msgid, since)
        t.ok(gone is not None and msgid not in envelopes(d),
             "%s: the message is done with, its envelope gone" % name)
    for n, e in envs.items():
        found = forged_lines(e.decode("latin-1"), c.forged + FORGED_ENV)
        if found:
            t.ok(False, "%s: nothing forged in envelope %s" % (name, n),
                 found, e)
    if c.settled == "failure":
        b = bounce_for(d, c.rcpt)
        if t.ok(b is not None, "%s: bounced to the sender" % name):
            check_bounce(t, c, b)

    # The log, and the daemon.
    log = d.log_text(since)
    t.is_(forged_lines(log, c.forged), [], "%s: no forged log line" % name)
    now = d.role_pids().get("mta")
    t.ok(d.running() and now == mta_pid and sqtest.alive(mta_pid),
         "%s: sqmaild and its mta process (pid %d) still run" % (
             name, mta_pid), "mta pid now %s" % now)
    peer.stop()


def group(key):
    def fn(t, d, mta_pid):
        for c in CASES[key]:
            run_case(t, d, c, mta_pid)
    fn.__name__ = key
    return fn


over_long_lines_are_tolerated_up_to_a_limit_never_truncated = group("long")
endless_multiline_replies_stop_at_the_clients_own_limit = group("endless")
nul_and_bare_cr_in_replies_are_sanitised = group("nul")
bare_lf_line_ends_are_read_as_lines = group("barelf")
ehlo_garbage_and_a_broken_starttls_are_survived = group("ehlo")
reply_codes_not_three_digits_or_changing_defer = group("codes")
replies_out_of_turn_are_never_taken_for_the_next_cve_2020_8794 = \
    group("inject")
reply_text_forges_no_log_line_bounce_header_or_envelope = group("forge")
data_out_of_order_or_a_close_defers = group("order")


def the_log_holds_no_control_bytes(t, d, mta_pid):
    with open(d.log_path, "rb") as f:
        raw = f.read()
    bad = re.findall(rb".{0,40}[\x00-\x08\x0b-\x1f\x7f].{0,40}", raw)
    t.is_(bad, [], "the whole log: no NUL, CR or other control byte")


def every_envelope_in_the_spool_is_well_formed(t, d, mta_pid):
    deferred = sorted(c.rcpt for cs in CASES.values() for c in cs
                      if (c.settled or c.outcome) == "deferral")

    def spool():
        """{envelope: its recipients, or what is wrong with it}"""
        out = {}
        for n, e in envelopes(d).items():
            try:
                out[n] = [r.get("addr") for r in parse_envelope(e)[1]]
            except ValueError as ex:
                out[n] = str(ex)
        return out
    try:        # a bounce's envelope may still be on its way out
        sqtest.wait_for("the spool to settle", lambda: len(spool()) ==
                        len(deferred), 10)
    except sqtest.WaitTimeout:
        pass
    got = spool()
    t.is_(sorted(a for v in got.values() if isinstance(v, list)
                 for a in v), deferred, "the spool holds the deferred "
          "messages, one recipient each, and nothing else", got)
    t.is_({n: v for n, v in got.items() if not isinstance(v, list)}, {},
          "every envelope decodes strictly")


def show_hosts_is_one_line_per_hostile_host(t, d, mta_pid):
    rc, out, err = d.ctl("show", "hosts")
    t.is_(rc, 0, "show hosts exits 0", err)
    rx = re.compile(r"^host=127\.0\.0\.1 port=(\d+) name=\[127\.0\.0\.1\] "
                    r"sessions=\d+ connections=[1-9]\d* delivered=\d+ "
                    r"last=\d+ tls=\S.* error=[ -~]+$")
    lines = out.splitlines()
    bad = [l for l in lines if not rx.match(l)]
    ports = sorted(int(rx.match(l).group(1)) for l in lines if rx.match(l))
    t.is_(bad, [], "every line of show hosts is a well-formed host line "
          "(no reply text breaks one)")
    cases = [c for cs in CASES.values() for c in cs]
    t.is_(ports, sorted(c.peer.port for c in cases), "one line for each "
          "hostile peer", out)
    t.is_(forged_lines(out, FORGED_ENV), [], "nothing forged in it")


def the_same_daemon_still_delivers_to_postfix(t, d, mta_pid, good):
    msg = make_message("after the hostile ones")
    code, text = d.send(msg, rcpts=("you@good.test",))
    t.is_(code, 250, "accepted for the well-behaved peer", text)
    got = good.wait_messages(1, timeout=20)
    t.ok(len(got) == 1 and got[0].body.endswith(msg) and
         got[0].rcpts == ["you@good.test"],
         "delivered to Postfix, byte for byte", got,
         good.diag_lines() if not got else None)
    t.ok(d.wait_for_log(r"^delivery \d+: success: 127\.0\.0\.1_accepted_"
                        r"message\./Remote_host_said:_250_") is not None,
         "its success logged")
    t.ok(d.role_pids().get("mta") == mta_pid and sqtest.alive(mta_pid),
         "the mta process is still the first one")


def the_hostile_peer_passes_its_self_test(t):
    p = subprocess.run([sys.executable, hp.__file__], capture_output=True,
                       text=True, timeout=120)
    t.ok(p.returncode == 0 and "not ok" not in p.stdout and
         re.search(r"(?m)^1\.\.\d+$", p.stdout),
         "hostilepeer.py's self-test passes", p.stdout + p.stderr)


def main():
    t = sqtest.Tap()
    sqtest.run(t, [the_hostile_peer_passes_its_self_test], done=False)
    cases = [c for cs in CASES.values() for c in cs]
    for c in cases:
        c.peer = hp.HostilePeer(c.script, scripts=c.scripts, name=c.name,
                                step_timeout=10, conn_timeout=25).start()
    try:
        good = mtapeer.MtaPeer(domains=["good.test"]).start()
    except mtapeer.MtaPeerError as e:
        t.bail_out("no Postfix peer: %s" % e)
    extra = "".join('domain "%s" {\n\troute "[127.0.0.1]:%d"\n}\n' % (
        c.domain, c.peer.port) for c in cases)
    extra += 'domain "good.test" {\n\troute "[127.0.0.1]:%d"\n}\n' % (
        good.port)
    # No retry while the test runs: each case is its first attempt.
    d = sqtest.Daemon(t, extra=extra, retry_min="3600s",
                      retry_max="7200s").start()
    mta_pid = d.role_pids().get("mta")
    if not t.ok(mta_pid is not None, "the mta process is there",
                d.role_pids()):
        t.done_testing()
    try:
        sqtest.run(t, [
            over_long_lines_are_tolerated_up_to_a_limit_never_truncated,
            endless_multiline_replies_stop_at_the_clients_own_limit,
            nul_and_bare_cr_in_replies_are_sanitised,
            bare_lf_line_ends_are_read_as_lines,
            ehlo_garbage_and_a_broken_starttls_are_survived,
            reply_codes_not_three_digits_or_changing_defer,
            replies_out_of_turn_are_never_taken_for_the_next_cve_2020_8794,
            reply_text_forges_no_log_line_bounce_header_or_envelope,
            data_out_of_order_or_a_close_defers,
            the_log_holds_no_control_bytes,
            show_hosts_is_one_line_per_hostile_host,
            every_envelope_in_the_spool_is_well_formed,
        ], d, mta_pid, done=False)
        sqtest.run(t, [the_same_daemon_still_delivers_to_postfix], d,
                   mta_pid, good, done=False)
        sqtest.run(t, [sqtest.sqmaild_stops_on_sigterm_leaving_no_process],
                   d)
    finally:
        good.stop()
        for c in cases:
            c.peer.stop()


if __name__ == "__main__":
    main()
