#!/usr/bin/env python3
"""
Remote delivery when the remote server says no, at each stage of the SMTP
transaction.  The servers are Postfix's smtp-sink (regress/e2e/sinkpeer.py),
one per case, each told to answer one command with a 4xx or a 5xx or to
close the connection there; each gets a domain routed to it.  For every
case the outcome is checked where a mail admin looks: the qmail-send log
line of the delivery, `sqmailctl show queue`, the QSBMF bounce in the
local sender's Maildir (quoting the remote reply), and what the sink itself
saw (the commands of the session, the dumped transaction).

- A refused greeting (4xx or 5xx), or EHLO and HELO both refused, makes
  way for the next address; with none left the mail stays queued
  (s/qmail and Postfix's default smtp_skip_5xx_greeting move on after a
  5xx greeting too).  EHLO refused alone: HELO, and the mail goes.
- From MAIL on the replies are the results: 5xx to MAIL, DATA or the
  final dot bounces, 4xx defers; a RCPT reply is its recipient's, the
  message's other recipients (here in another domain) are delivered.
  After a refusal the client says QUIT and nothing more.
- The connection closed at any stage defers, and the mail is kept; a
  retry forced with `sqmailctl schedule all` once the sinks accept
  delivers every deferred recipient.
- A route host with two addresses, the first refusing the greeting (4xx,
  and 5xx), the second accepting: delivered by the second (unbound,
  regress/e2e/dnspeer.py, serves the addresses).
- A bounce that the sender's server refuses becomes a double bounce to
  the local postmaster; when the postmaster's own server refuses that
  too, it is discarded ("triple bounce") and nothing loops.
"""
import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest                                       # noqa: E402
import dnspeer                                      # noqa: E402
import sinkpeer                                     # noqa: E402
from sqtest import make_message                     # noqa: E402

SENDER = "sender@example.test"
POSTMASTER = "postmaster@example.test"
OURS = "mx.sqtest.test"         # sqtest's hostname, our EHLO name
LOCAL = r"127\.0\.0\.1"

GREETING = r"Connected_to_%s_but_the_greeting_failed\./Remote_host_said:_%s$"
NAME = r"Connected_to_%s_but_my_name_was_rejected\./Remote_host_said:_%s$"
SAID = r"%s_does_not_like_it\./Remote_host_said:_%s$"
CLOSED = r"%s:_the_connection_was_closed_\(#4\.4\.2\)$"
ACCEPTED = r"%s_accepted_message\./Remote_host_said:_250_2\.0\.0_Ok"


def soft(stage):
    return "451 4.3.0 sink defers at %s" % stage


def hard(stage):
    return "554 5.7.1 sink refuses at %s" % stage


def logtext(reply):
    """A reply as the qmail-send log line writes it."""
    return re.escape(reply.replace(" ", "_"))


class Case:
    """
    One sink and the mail routed to it: the sink's options, the result
    expected in the log (what, and a pattern for the text), the reason
    show queue or the bounce gives, the commands the sink is to see (their
    verbs, in order) and whether the data is to reach it.
    """

    def __init__(self, name, sink, what, text, reason, verbs, data):
        self.name = name
        self.reason = reason        # in show queue and the bounce
        self.sink_opts = sink
        self.what = what
        self.text = text
        self.verbs = verbs
        self.data = data
        self.domain = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + \
            ".test"
        self.rcpt = "rcpt@" + self.domain
        self.also = None            # a second recipient, at accept.test
        self.sink = None
        self.msg = None
        self.result = None          # the log line of the first delivery

    @property
    def msgid(self):
        return sqtest.header(self.msg, "Message-ID")


def stage_cases():
    c = []
    for code, fn, opt in (("4xx", soft, "soft"), ("5xx", hard, "hard")):
        c.append(Case("greeting %s" % code, {opt: ["connect"],
                      opt + "_reply": fn("connect")}, "deferral",
                      GREETING % (LOCAL, logtext(fn("connect"))),
                      fn("connect"), [], False))
        c.append(Case("EHLO and HELO %s" % code, {opt: ["ehlo", "helo"],
                      opt + "_reply": fn("helo")}, "deferral",
                      NAME % (LOCAL, logtext(fn("helo"))), fn("helo"),
                      ["EHLO", "HELO"], False))
    c.append(Case("EHLO 5xx alone", {"hard": ["ehlo"], "hard_reply":
                  hard("ehlo")}, "success", ACCEPTED % LOCAL, None,
                  ["EHLO", "HELO", "MAIL", "RCPT", "DATA", ".", "QUIT"],
                  True))
    for stage, verbs in (("mail", ["EHLO", "MAIL", "QUIT"]),
                         ("rcpt", ["EHLO", "MAIL", "RCPT", "QUIT"]),
                         ("data", ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]),
                         ("dot", ["EHLO", "MAIL", "RCPT", "DATA", ".",
                                  "QUIT"])):
        for code, fn, opt, what in (("4xx", soft, "soft", "deferral"),
                                    ("5xx", hard, "hard", "failure")):
            k = Case("%s %s" % (stage, code), {opt: [stage],
                     opt + "_reply": fn(stage)}, what,
                     SAID % (LOCAL, logtext(fn(stage))), fn(stage),
                     verbs, stage == "dot")
            if stage == "rcpt":
                k.also = "also-%s@accept.test" % code
            c.append(k)
    for stage, verbs in (("connect", []), ("ehlo", ["EHLO"]),
                         ("mail", ["EHLO", "MAIL"]),
                         ("rcpt", ["EHLO", "MAIL", "RCPT"]),
                         ("data", ["EHLO", "MAIL", "RCPT", "DATA"]),
                         ("dot", ["EHLO", "MAIL", "RCPT", "DATA", "."])):
        c.append(Case("closed at %s" % stage, {"disconnect": [stage]},
                      "deferral", CLOSED % LOCAL, "127.0.0.1: the "
                      "connection was closed (#4.4.2)", verbs,
                      stage == "dot"))
    return c


def new_sink(name, **opts):
    """A started sink whose files are in the test's scratch directory."""
    return sinkpeer.SinkPeer(name=name, scratch=os.path.join(
        sqtest.scratch_root(), "sink-" + name), **opts).start()


def route(domain, host, port):
    return 'domain "%s" {\n\troute "%s:%d"\n}\n' % (domain, host, port)


def verbs_of(session):
    return [c.split()[0].upper() for c in session]


def line(r):
    """A delivery_in() result as its log line, for diagnostics."""
    return "delivery %s: %s: %s" % r if r else "no delivery line"


def deliveries(d, rcpts, since=0, seconds=None):
    """
    Wait (bounded, all at once) until the first delivery after since to
    each of rcpts has its result logged; {rcpt: (id, what, text) or
    None}, as sqtest.delivery_in().
    """
    def results():
        log = d.log_text(since)
        return {r: sqtest.delivery_in(log, r) for r in rcpts}
    try:
        sqtest.wait_for("results of deliveries to %s" % ", ".join(rcpts),
                        lambda: all(results().values()), seconds)
    except sqtest.WaitTimeout:
        pass
    return results()


def delivery(d, rcpt, since=0, seconds=None):
    return deliveries(d, [rcpt], since, seconds)[rcpt]


def queue_entries(d, rcpt):
    return [e for e in d.queue() or [] if e.get("rcpt") == rcpt]


def is_bounce(m, rcpt, to=SENDER):
    """Whether m is a bounce (Return-Path <>) to `to` naming rcpt."""
    return m.return_path == "" and m.delivered_to == to and \
        ("\n<%s>:\n" % rcpt).encode() in (m.rest or b"")


def bounces_for(d, rcpt, to=SENDER):
    return [m for m in d.messages() if is_bounce(m, rcpt, to)]


def carries(data, msg):
    """
    Whether data, as a server received it from us, is our Received
    header and then msg byte for byte (LF form, dot-stuffing undone).
    """
    return data.startswith(b"Received: from ") and data.endswith(b"\n" +
                                                                 msg)


def body_of(m):
    return (m.rest or b"").split(b"\n\n", 1)[-1].decode("utf-8", "replace")


# ------------------------------------------------------------ the cases


def each_stage_gets_the_result_a_mail_admin_expects(t, d, cases, accept):
    for k in cases:
        k.msg = make_message(k.name, "stage %s\n.a line with a dot\n" %
                             k.name)
        rcpts = (k.rcpt,) if k.also is None else (k.rcpt, k.also)
        code, text = d.send(k.msg, rcpts=rcpts)
        t.is_(code, 250, "%s: accepted for %s" % (k.name, ", ".join(rcpts)),
              text)
    results = deliveries(d, [k.rcpt for k in cases])
    for k in cases:
        r = k.result = results[k.rcpt]
        if not t.ok(r is not None and r[1] == k.what and
                    re.search(k.text, r[2]), "%s: logged as delivery "
                    "N: %s: %s" % (k.name, k.what, k.text.replace("\\", "")),
                    "got: %s" % line(r)):
            continue
        ss = [verbs_of(s) for s in k.sink.wait_sessions(1)]
        verbs = k.verbs
        if (k.what != "success" and "MAIL" not in k.verbs) or \
                k.verbs[-2:] == [".", "QUIT"]:
            # Refused before MAIL: whether QUIT follows is not the point;
            # after the final dot the connection waits to be reused, and
            # QUIT comes only when none is.
            ss = [s[:-1] if s[-1:] == ["QUIT"] else s for s in ss]
            verbs = k.verbs[:-1] if k.verbs[-1:] == ["QUIT"] else k.verbs
        t.is_(ss, [verbs], "%s: the sink saw one session: %s" % (
              k.name, " ".join(verbs) or "nothing said"),
              "\n".join(k.sink.diag_lines()))
        got = k.sink.messages()
        if k.data:
            t.ok(len(got) == 1 and carries(got[0].data, k.msg) and
                 got[0].rcpts == [k.rcpt], "%s: the data reached the sink, "
                 "byte for byte" % k.name, got and sqtest.bytes_diff(
                     got[0].data, k.msg))
        else:
            t.is_(got, [], "%s: no data reached the sink" % k.name)


def ehlo_refused_alone_falls_back_to_helo(t, d, cases, accept):
    k = [c for c in cases if c.name == "EHLO 5xx alone"][0]
    got = k.sink.messages()
    t.ok(len(got) == 1 and got[0].proto == "SMTP" and got[0].helo == OURS,
         "EHLO refused: the message went in plain SMTP after HELO %s" % OURS,
         got and (got[0].proto, got[0].helo))


def deferred_mail_stays_queued_with_the_reason(t, d, cases, accept):
    for k in cases:
        if k.what != "deferral":
            continue
        q = queue_entries(d, k.rcpt)
        t.ok(len(q) == 1 and q[0]["state"] == "pending" and
             q[0]["tries"] == 1 and q[0]["error"].endswith(k.reason),
             "%s: show queue lists %s pending, tried once, the error ending "
             "in \"%s\"" % (k.name, k.rcpt, k.reason), q)
        t.is_(bounces_for(d, k.rcpt), [], "%s: no bounce" % k.name)


def refused_mail_bounces_quoting_the_remote_reply(t, d, cases, accept):
    for k in cases:
        if k.what != "failure":
            continue
        if k.result is not None:    # else that failed already: no wait
            d.wait_for_maildir(1, pred=lambda m, k=k: is_bounce(m, k.rcpt))
        got = bounces_for(d, k.rcpt)
        if not t.is_(len(got), 1, "%s: one bounce to %s" % (k.name, SENDER),
                     d.messages()):
            continue
        body = body_of(got[0])
        reply = k.reason
        t.like(body, r"^Hi\. This is the sqmail queue at ", "%s: QSBMF, "
               "\"Hi. This is the ...\"" % k.name)
        t.like(body, r"(?m)^<%s>:\n127\.0\.0\.1 does not like it\.\s"
               r"Remote host said: %s$" % (re.escape(k.rcpt),
                                           re.escape(reply)),
               "%s: it quotes the remote reply \"%s\"" % (k.name, reply))
        t.ok(k.msgid in body.split("--- Below this line is a copy of the "
                                   "message.", 1)[-1],
             "%s: and carries a copy of the message" % k.name)
        if k.also is not None:
            t.unlike(body, r"<%s>:" % re.escape(k.also), "%s: the recipient "
                     "the other server took is not in it" % k.name)
        t.is_(queue_entries(d, k.rcpt), [], "%s: the message is no longer "
              "queued" % k.name)


def a_refused_recipient_leaves_the_others_delivered(t, d, cases, accept):
    for k in cases:
        if k.also is None:
            continue
        got = accept.wait_messages(1, pred=lambda m, k=k: carries(m.data,
                                                                  k.msg))
        t.ok(len(got) == 1 and got[0].rcpts == [k.also],
             "%s: the same message went to %s at its own server" % (
                 k.name, k.also), got)
        r = delivery(d, k.also)
        t.ok(r is not None and r[1] == "success", "%s: delivery to "
             "%s logged as success" % (k.name, k.also), line(r))


def a_retry_delivers_what_was_deferred(t, d, cases, accept):
    todo = [k for k in cases if k.what == "deferral"]
    for k in todo:
        k.sink.restart(soft=(), hard=(), disconnect=())
    mark = d.log_mark()
    rc, out, err = d.ctl("schedule", "all")
    t.is_(rc, 0, "sinks restarted accepting: sqmailctl schedule all exits 0",
          err)
    results = deliveries(d, [k.rcpt for k in todo], since=mark)
    for k in todo:
        r = results[k.rcpt]
        t.ok(r is not None and r[1] == "success" and
             re.search(ACCEPTED % LOCAL, r[2]), "%s: retried and "
             "delivered" % k.name, line(r))
        got = k.sink.wait_messages(1, timeout=10 if r else 0)
        t.ok(len(got) == 1 and carries(got[0].data, k.msg) and
             got[0].rcpts == [k.rcpt], "%s: once, byte for byte, to %s only"
             % (k.name, k.rcpt), got)
    dot = [k for k in todo if k.name == "closed at dot"][0]
    t.is_(len([m for m in dot.sink.messages(all=True)
               if carries(m.data, dot.msg)]), 2,
          "closed at dot: the first sink had the whole message too (no "
          "reply to the dot is no delivery for the client: RFC 1047's "
          "duplicate)")
    try:
        sqtest.wait_for("an empty queue", lambda: d.queue() == [], 10)
        t.ok(True, "nothing is left in the queue")
    except sqtest.WaitTimeout:
        t.ok(False, "nothing is left in the queue", d.queue())


def a_refused_greeting_makes_way_for_the_next_address(t, d, pairs):
    for code, first, second, domain in pairs:
        name = "next address, greeting %s" % code
        rc, out, err = d.ctl("show", "routes", domain)
        addrs = re.findall(r"(?m)^host \S+ pref \d+ addr (\S+) port", out)
        t.is_(addrs, [first.host, second.host], "%s: %s is tried first "
              "(show routes)" % (name, first.host), out + err)
        msg = make_message(name)
        code_, text = d.send(msg, rcpts=("x@" + domain,))
        t.is_(code_, 250, "%s: accepted" % name, text)
        r = delivery(d, "x@" + domain)
        t.ok(r is not None and r[1] == "success" and
             re.search(ACCEPTED % re.escape(second.host), r[2]),
             "%s: delivered by %s" % (name, second.host), line(r))
        got = second.wait_messages(1)
        t.ok(len(got) == 1 and carries(got[0].data, msg), "%s: the second "
             "address has the message" % name, got)
        ss = first.sessions()
        t.ok(len(ss) == 1 and "MAIL" not in verbs_of(ss[0]),
             "%s: the first address was connected to, and refused" % name,
             "\n".join(first.diag_lines()))
        rc, out, err = d.ctl("show", "hosts")
        t.like(out, r"(?m)^host=%s port=%d name=%s .* delivered=0 .*"
               r"error=Connected to %s but the greeting failed\. Remote host "
               r"said: %s$" % (re.escape(first.host), first.port,
                               re.escape(domain.replace("nx", "relay")),
                               re.escape(first.host),
                               re.escape(first.opts["soft_reply"] if
                                         code == "4xx" else
                                         first.opts["hard_reply"])),
               "%s: show hosts gives %s the greeting as its error" % (
                   name, first.host))


def a_refused_bounce_becomes_a_double_bounce(t, d, refuser):
    msg = make_message("double", sender="someone@far.test",
                       to="x@dbl.test")
    code, text = d.send(msg, sender="someone@far.test",
                        rcpts=("x@dbl.test",))
    t.is_(code, 250, "double bounce: accepted from someone@far.test", text)
    mid = sqtest.header(msg, "Message-ID")

    def dbl(m):
        return m.delivered_to == POSTMASTER and m.return_path == "" and \
            mid.encode() in (m.rest or b"")
    got = [m for m in d.wait_for_maildir(1, pred=dbl) if dbl(m)]
    if not t.is_(len(got), 1, "double bounce: one reaches %s" % POSTMASTER,
                 d.messages()):
        return
    body = body_of(got[0])
    t.like(body, r"(?m)^<someone@far\.test>:\n127\.0\.0\.1 does not like "
           r"it\.\sRemote host said: 550 5\.1\.1 sink: no such user$",
           "double bounce: it names the sender whose server refused the "
           "bounce, quoting that server")
    t.like(body, r"^Hi\. This is the sqmail queue at .*\nA failure notice "
           r"I sent could not be delivered either", "double bounce: QSBMF, "
           "saying it is about a failure notice")
    t.like(body.split("--- Below this line is a copy of the message.", 1)[-1],
           r"(?m)^<x@dbl\.test>:$", "double bounce: the bounce it carries "
           "names the first failure")
    ss = refuser.wait_sessions(2)
    t.is_([s[1] for s in ss if len(s) > 1],
          ["MAIL FROM:<someone@far.test>", "MAIL FROM:<>"],
          "double bounce: the refusing server saw the message, then the "
          "bounce from <>", ss)
    t.ok(not [m for m in d.messages() if m.delivered_to == SENDER and
              mid.encode() in (m.rest or b"")],
         "double bounce: nothing went to the local sender")


def a_refused_double_bounce_is_discarded(t, dns):
    # The postmaster is at far.test too: its server refuses everything.
    refuser = new_sink("refuser2", hard=["rcpt"],
                       hard_reply="550 5.1.1 sink: no such user")
    d = None
    try:
        extra = 'postmaster "pm@far.test"\n' + "".join(
            route(dom, "[127.0.0.1]", refuser.port)
            for dom in ("dbl.test", "far.test"))
        d = sqtest.Daemon(t, extra=extra, retry_min="300s",
                          retry_max="600s")
        d.start()
        code, text = d.send(make_message("triple"),
                            sender="someone@far.test", rcpts=("x@dbl.test",))
        t.is_(code, 250, "triple bounce: accepted", text)
        m = d.wait_for_log(r"^triple bounce: discarding bounce/(\d+)$")
        if not t.ok(m, "triple bounce: logged \"triple bounce: discarding "
                    "bounce/N\""):
            return
        last = m.group(1)
        t.ok(d.wait_for_log(r"^bounce msg \d+ qp %s$" % last) and
             d.wait_for_log(r"^end msg %s$" % last),
             "triple bounce: bounce/%s was the double bounce, and it left "
             "the queue" % last)
        log = d.log_text()
        t.is_(len(re.findall(r"(?m)^delivery \d+: failure: ", log)), 3,
              "triple bounce: three failures: the message, its bounce, the "
              "double bounce")
        t.is_(len(re.findall(r"(?m)^bounce msg ", log)), 2,
              "triple bounce: two bounces made, no third")
        ss = refuser.sessions()
        t.is_([s[2] for s in ss if len(s) > 2],
              ["RCPT TO:<x@dbl.test>", "RCPT TO:<someone@far.test>",
               "RCPT TO:<pm@far.test>"], "triple bounce: the server was "
              "asked for the recipient, the sender, the postmaster; once "
              "each", ss)
        t.is_(d.queue(), [], "triple bounce: the queue is empty: nothing "
              "loops")
        t.is_(d.messages(), [], "triple bounce: nothing was delivered "
              "locally")
    finally:
        if d is not None:
            d.stop()
        refuser.stop()


# ------------------------------------------------------------------ main


def pair_port(hosts):
    """A port free on every one of hosts."""
    for _ in range(50):
        p = sinkpeer.free_port(hosts[0])
        ok = True
        for h in hosts[1:]:
            s = socket.socket()
            try:
                s.bind((h, p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return p
    raise sinkpeer.SinkPeerError("no port free on all of %s" % (hosts,))


def main():
    t = sqtest.Tap()
    if sinkpeer.find_smtp_sink() is None:
        sqtest.require_cmd(t, "smtp-sink")
    if sinkpeer.find_smtp_sink() is None:
        t.skip_all("no smtp-sink (package postfix)")
    try:
        dns = dnspeer.DnsPeer([
            "relay4.test. A 127.0.0.5", "relay4.test. A 127.0.0.6",
            "relay5.test. A 127.0.0.7", "relay5.test. A 127.0.0.8",
        ]).start()
    except dnspeer.DnsPeerError as e:
        t.bail_out("no DNS server: %s" % e)
    sinks = []
    try:
        cases = stage_cases()
        for k in cases:
            k.sink = new_sink(k.domain, **k.sink_opts)
            sinks.append(k.sink)
        accept = new_sink("accept.test")
        refuser = new_sink("refuser", hard=["rcpt"],
                           hard_reply="550 5.1.1 sink: no such user")
        sinks += [accept, refuser]
        pairs = []
        for code, opt, a, b, dom in (("4xx", "soft", "127.0.0.5",
                                      "127.0.0.6", "nx4.test"),
                                     ("5xx", "hard", "127.0.0.7",
                                      "127.0.0.8", "nx5.test")):
            port = pair_port([a, b])
            first = new_sink(a, host=a, port=port, **{
                opt: ["connect"], opt + "_reply": (soft if opt == "soft"
                                                   else hard)("connect")})
            second = new_sink(b, host=b, port=port)
            sinks += [first, second]
            pairs.append((code, first, second, dom))
        extra = 'dns servers "%s"\npostmaster "%s"\n' % (dns.server,
                                                         POSTMASTER)
        extra += "".join(route(k.domain, "[127.0.0.1]", k.sink.port)
                         for k in cases)
        extra += route("accept.test", "[127.0.0.1]", accept.port)
        extra += route("dbl.test", "[127.0.0.1]", refuser.port)
        extra += route("far.test", "[127.0.0.1]", refuser.port)
        for code, first, second, dom in pairs:
            extra += route(dom, dom.replace("nx", "relay"), first.port)
        d = sqtest.Daemon(t, extra=extra, retry_min="300s", retry_max="600s")
        d.start()
        sqtest.run(t, [
            each_stage_gets_the_result_a_mail_admin_expects,
            ehlo_refused_alone_falls_back_to_helo,
            deferred_mail_stays_queued_with_the_reason,
            refused_mail_bounces_quoting_the_remote_reply,
            a_refused_recipient_leaves_the_others_delivered,
        ], d, cases, accept, done=False)
        sqtest.run(t, [a_refused_greeting_makes_way_for_the_next_address],
                   d, pairs, done=False)
        sqtest.run(t, [a_refused_bounce_becomes_a_double_bounce], d,
                   refuser, done=False)
        sqtest.run(t, [a_retry_delivers_what_was_deferred], d, cases,
                   accept, done=False)
        d.stop()
        sqtest.run(t, [a_refused_double_bounce_is_discarded], dns)
    finally:
        for s in sinks:
            s.stop()
        dns.stop()


if __name__ == "__main__":
    main()
