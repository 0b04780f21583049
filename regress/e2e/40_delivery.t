#!/usr/bin/env python3
"""
Local delivery: Maildir (byte-exact, with the qmail-send log lines of the
message), mbox (From_ line, >From escaping, blank line at the end), alias
fan-out across domains and methods, and permanent failures: a message that
already carries our Delivered-To line (a loop) is not delivered but bounced
to the sender in QSBMF, the bounce quoting at most "bounce max-size" of
the original; a failing message from <>, and a bounce to an address that
takes no mail, go to the postmaster as double bounces.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
from sqtest import make_message, expect_delivered, qp_of

SENDER = "sender@example.test"
YOU = "you@example.test"

EXTRA = """\
bounce max-size 10K
postmaster "postmaster@example.test"
"""
MBOX_DOMAIN = """\
domain "mbox.test" {{
	deliver mbox "{dir}/mail/mbox"
	user "{user}"
}}
"""


def maildir_message_and_its_log_lines(t, d):
    mark = d.log_mark()
    m = make_message("logged", "watch the log\n")
    code, text = d.send(m)
    t.is_(code, 250, "end of data -> S: 250", text)
    qp = qp_of(text)
    t.ok(qp is not None, "the 250 carries qp <msgid>", text)
    got = expect_delivered(t, d.maildir, m, SENDER, YOU, "Maildir message")
    t.ok(got is not None and os.path.basename(os.path.dirname(got.path)) ==
         "new", "the Maildir file is in new/")
    info = d.wait_for_log(r"^info msg (\d+): bytes (\d+) from <%s> qp %s uid "
                          r"(\d+)$" % (re.escape(SENDER), re.escape(qp or
                                                                   "?")),
                          since=mark)
    t.ok(info, "log: info msg N: bytes B from <sender@example.test> qp %s "
         "uid U" % qp, "\n".join(d.log_text(mark).splitlines()[-20:]))
    if not info:
        return
    n = info.group(1)
    if got is not None:
        stored = len(got.data.split(b"\n", 2)[2])
        t.is_(int(info.group(2)), stored, "bytes B is the size of the stored "
              "message (our Received header and the message, LF form)")
    t.ok(d.wait_for_log(r"^new msg %s$" % n, since=mark),
         "log: new msg %s" % n)
    sd = d.wait_for_log(r"^starting delivery (\d+): msg %s to local %s$"
                        % (n, re.escape(YOU)), since=mark)
    t.ok(sd, "log: starting delivery D: msg %s to local %s" % (n, YOU))
    if sd:
        t.ok(d.wait_for_log(r"^delivery %s: success: did_1\+0\+0/$"
                            % sd.group(1), since=mark),
             "log: delivery %s: success: did_1+0+0/" % sd.group(1))
    t.ok(d.wait_for_log(r"^end msg %s$" % n, since=mark),
         "log: end msg %s" % n)
    t.ok(d.wait_for_log(r"^status: local \d+/\d+ remote \d+/\d+$",
                        since=mark), "log: status: local l/L remote r/R")
    text = d.log_text(mark)
    order = [text.find(s) for s in ("new msg %s\n" % n, "info msg %s:" % n,
                                    "end msg %s\n" % n)]
    t.ok(-1 not in order and order == sorted(order),
         "new msg, info msg and end msg come in that order")


def session_log_gives_each_message_its_own_size(t, d):
    mark = d.log_mark()
    s = d.smtp()
    s.ehlo()
    qps = []
    for i in range(3):
        m = make_message("sized %d" % i, ("s" * 99 + "\n") * (5 + 10 * i))
        s.mail(SENDER)
        s.rcpt(YOU)
        code, text = s.data(sqtest.crlf(m))
        qps.append(qp_of(text.decode("latin-1")))
    s.quit()
    for qp in qps:
        info = d.wait_for_log(r"^info msg %s: bytes (\d+) " % qp, since=mark)
        q = d.wait_for_log(r"Accept::DATA::Queued: .* id %s size (\d+) " % qp,
                           since=mark)
        t.ok(info and q and info.group(1) == q.group(1),
             "the smtp log line of message %s (3 in one session) gives its "
             "own size, as \"info msg\" does" % qp,
             "info msg: %s\nsmtp: %s" % (info.group(0) if info else None,
                                         q.group(0) if q else None))


def mbox_delivery_has_from_line_escaping_and_blank_line(t, d):
    mbox = d.path("mail", "mbox")
    msgs = [make_message("mbox one", "first\nFrom the start of a line\n"
                         " From indented\n", to="box@mbox.test"),
            make_message("mbox two", "second\n", to="box@mbox.test")]
    for i, m in enumerate(msgs):
        code, text = d.send(m, rcpts=["box@mbox.test"])
        t.is_(code, 250, "mbox message %d -> S: 250" % (i + 1), text)
        try:
            sqtest.wait_for("mbox message %d" % (i + 1),
                            lambda: len(sqtest.mbox_read(mbox)) > i)
        except sqtest.WaitTimeout:
            pass
    parts = sqtest.mbox_read(mbox)
    if not t.is_(len(parts), 2, "the mbox holds two messages", repr(
            open(mbox, "rb").read()[:2000] if os.path.exists(mbox) else
            "no mbox file %s" % mbox)):
        return
    for i, (p, m) in enumerate(zip(parts, msgs)):
        mm = re.match(br"From sender@example\.test (\w{3} \w{3} [ \d]\d "
                      br"\d\d:\d\d:\d\d \d{4})\n", p)
        t.ok(mm, "message %d starts with \"From sender@example.test <date>\""
             % (i + 1), p[:100])
        if not mm:
            continue
        rest = p[mm.end():]
        dl = sqtest.Delivered(mbox, rest)
        t.ok(dl.error is None and dl.return_path == SENDER and
             dl.delivered_to == "box@mbox.test", "message %d: Return-Path, "
             "Delivered-To box@mbox.test, our Received header" % (i + 1),
             dl.error)
        want = re.sub(br"(?m)^(>*From )", br">\1", m) + b"\n"
        t.ok(dl.rest == want, "message %d: the message follows with From_ "
             "lines escaped as >From and a blank line at the end" % (i + 1),
             sqtest.bytes_diff(dl.rest, want))


def alias_fans_out_to_every_target(t, d):
    m = make_message("to the team", "everyone\n", to="team@example.test")
    code, text = d.send(m, rcpts=["team@example.test"])
    t.is_(code, 250, "RCPT team@example.test (an alias) -> 250", text)
    expect_delivered(t, d.maildir, m, SENDER, YOU, "alias target you")
    expect_delivered(t, d.maildir, m, SENDER, "alice@example.test",
                     "alias target alice")
    mbox = d.path("mail", "mbox")
    try:
        sqtest.wait_for("the alias copy in the mbox", lambda: [
            p for p in sqtest.mbox_read(mbox)
            if sqtest.header(m, "Message-ID").encode() in p])
        t.ok(True, "alias target carol@mbox.test got its copy in the mbox")
    except sqtest.WaitTimeout as e:
        t.ok(False, "alias target carol@mbox.test got its copy in the mbox",
             str(e))
    p = [p for p in sqtest.mbox_read(mbox) if sqtest.header(
        m, "Message-ID").encode() in p]
    t.ok(p and b"\nDelivered-To: carol@mbox.test\n" in p[0],
         "with Delivered-To: carol@mbox.test")


def loop_is_bounced_to_the_sender_in_qsbmf(t, d):
    mark = d.log_mark()
    m = make_message("looping", "I have been here before\n",
                     to="loop@example.test",
                     extra="Delivered-To: loop@example.test\n")
    code, text = d.send(m, rcpts=["loop@example.test"])
    t.is_(code, 250, "a message already delivered to loop@example.test is "
          "accepted (250)", text)
    t.ok(d.wait_for_log(r"^delivery \d+: failure: ", since=mark),
         "log: delivery D: failure: ...")
    b = check_bounce(t, d, SENDER, "loop@example.test", m)
    t.ok(not [x for x in d.messages() if x.delivered_to ==
              "loop@example.test"], "the looping message is not delivered")
    return b


def one_failing_recipient_bounces_alone(t, d):
    m = make_message("half loop", "one of two recipients loops\n",
                     to="loop@example.test, carol@example.test",
                     extra="Delivered-To: loop@example.test\n")
    code, text = d.send(m, rcpts=["loop@example.test", "carol@example.test"])
    t.is_(code, 250, "a message to loop@ and carol@ -> 250", text)
    expect_delivered(t, d.maildir, m, SENDER, "carol@example.test",
                     "the recipient that does not loop")
    b = check_bounce(t, d, SENDER, "loop@example.test", m)
    if b is not None:
        t.unlike(b.rest.split(b"--- Below this line")[0].decode(
            "utf-8", "replace"), r"<carol@example\.test>:",
            "the bounce does not name the delivered recipient")


def delivery_agent_exits_after_agent_idle(t, d):
    m = make_message("wake the agent", "hello agent\n")
    code, text = d.send(m)
    t.is_(code, 250, "a message -> 250", text)
    expect_delivered(t, d.maildir, m, SENDER, YOU, "message for the agent")

    def agents():
        return [p for p in d.processes() if re.search(
            r"\bagent\b", sqtest.proc_cmdline(p))]
    t.note("agents right after the delivery: %s" % (
        d.describe(agents()) or "none"))
    try:
        sqtest.wait_for("the agent to exit (agent idle 2s)",
                        lambda: not agents(), seconds=30)
        t.ok(True, "no delivery agent is left once idle past \"agent idle "
             "2s\"")
    except sqtest.WaitTimeout as e:
        t.ok(False, "no delivery agent is left once idle past \"agent idle "
             "2s\"", str(e), d.describe(agents()))


def alias_cycle_does_not_hang_the_daemon(t, d):
    mark = d.log_mark()
    c = d.client()
    c.greeting()
    c.ehlo()
    c.cmd("MAIL FROM:<%s>" % SENDER)
    r = c.cmd("RCPT TO:<cyclea@example.test>")
    t.ok(r is not None, "RCPT TO:<cyclea@example.test> (cyclea -> cycleb -> "
         "cyclea) gets a reply", c.transcript_tail())
    if r is not None and r.code == 250:
        c.cmd("DATA")
        m = make_message("cycle", "round and round\n")
        c.send(sqtest.dot_stuff(sqtest.crlf(m)) + b".\r\n")
        r2 = c.reply()
        t.ok(r2 is not None, "its end of data gets a reply", c.transcript_tail())
        qp = qp_of(r2.text if r2 else "")
        if qp:
            t.ok(d.wait_for_log(r"^end msg %s$" % qp, since=mark),
                 "the accepted message reaches a final result (end msg %s)"
                 % qp)
    c.close()
    m = make_message("after the cycle", "still here\n")
    code, text = d.send(m)
    t.is_(code, 250, "the next client is served", text)
    expect_delivered(t, d.maildir, m, SENDER, YOU, "message after the cycle")


def check_bounce(t, d, to, failed, orig, maxsize=None):
    mid = sqtest.header(orig, "Message-ID")

    def bounce(x):
        return x.delivered_to == to and x.return_path == "" and \
            mid.encode() in (x.rest or b"")
    got = [x for x in d.wait_for_maildir(1, pred=bounce) if bounce(x)]
    if not t.is_(len(got), 1, "one bounce for %s reaches %s" % (failed, to),
                 "mailbox: %r" % d.messages()):
        return None
    b = got[0]
    body = (b.rest or b"").split(b"\n\n", 1)[-1].decode("utf-8", "replace")
    t.like(body, r"^Hi\. This is the", "the bounce body starts with \"Hi. "
           "This is the\" (QSBMF)")
    t.like(body, r"(?m)^<%s>:$" % re.escape(failed),
           "it has a \"<%s>:\" paragraph" % failed)
    t.like(body, r"(?m)^--- Below this line is a copy of the message\.$",
           "and \"--- Below this line is a copy of the message.\"")
    copy = body.split("--- Below this line is a copy of the message.", 1)[-1]
    t.ok(mid in copy, "the copy below the line holds the original "
         "(its Message-ID)")
    return b


def bounce_quotes_at_most_bounce_max_size(t, d):
    big = make_message("big loop", ("z" * 70 + "\n") * 1000,
                       to="loop@example.test",
                       extra="Delivered-To: loop@example.test\n")
    code, text = d.send(big, rcpts=["loop@example.test"])
    t.is_(code, 250, "a 70 KB looping message -> 250", text)
    b = check_bounce(t, d, SENDER, "loop@example.test", big)
    if b is not None:
        t.ok(len(b.data) < 10 * 1024 + 4096, "the bounce is under 10K (bounce "
             "max-size) plus its own text: %d octets" % len(b.data))


def failing_message_from_null_sender_goes_to_the_postmaster(t, d):
    # sqmail-queue(5): "a bounce (flags 1), or any other message from the
    # null sender, that fails becomes a double bounce to the postmaster".
    m = make_message("null loop", "nobody to bounce to\n", sender="<>",
                     to="loop@example.test",
                     extra="Delivered-To: loop@example.test\n")
    code, text = d.send(m, sender="", rcpts=["loop@example.test"])
    t.is_(code, 250, "a looping message from <> -> 250", text)
    check_bounce(t, d, "postmaster@example.test", "loop@example.test", m)


def bounce_to_an_address_that_takes_no_mail_goes_to_the_postmaster(t, d):
    # sqmail-queue(5): "If lka says the sender's address cannot take mail, a
    # double bounce goes to the postmaster instead, naming the sender".
    m = make_message("double", "the sender does not exist\n",
                     sender="nosuch@example.test", to="loop@example.test",
                     extra="Delivered-To: loop@example.test\n")
    code, text = d.send(m, sender="nosuch@example.test",
                        rcpts=["loop@example.test"])
    t.is_(code, 250, "a looping message from nosuch@example.test -> 250",
          text)
    mid = sqtest.header(m, "Message-ID")

    def dbounce(x):
        return x.delivered_to == "postmaster@example.test" and \
            mid.encode() in (x.rest or b"")
    got = [x for x in d.wait_for_maildir(1, pred=dbounce) if dbounce(x)]
    if not t.is_(len(got), 1, "a double bounce reaches postmaster@example.test"
                 " (postmaster \"postmaster@example.test\")",
                 "mailbox: %r" % d.messages()):
        return
    b = got[0]
    body = (b.rest or b"").split(b"\n\n", 1)[-1].decode("utf-8", "replace")
    t.is_(b.return_path, "", "it has Return-Path <>")
    t.like(body, r"^Hi\. This is the", "its body starts with \"Hi. This is "
           "the\" (QSBMF)")
    t.like(body, r"nosuch@example\.test", "it names the sender that takes no "
           "mail")
    t.like(body, r"(?m)^--- Below this line is a copy of the message\.$",
           "it has \"--- Below this line is a copy of the message.\"")
    t.ok(not [x for x in d.messages() if x.delivered_to ==
              "nosuch@example.test"], "nothing is delivered to "
         "nosuch@example.test")


def main():
    t = sqtest.Tap()
    d = sqtest.Daemon(t, extra=EXTRA, domains=MBOX_DOMAIN)
    os.makedirs(d.path("mail"))
    d.chown(d.path("mail"))
    aliases = dict(sqtest.ALIASES)
    aliases["team"] = "you@example.test, alice@example.test, carol@mbox.test"
    aliases["cyclea"] = "cycleb@example.test"
    aliases["cycleb"] = "cyclea@example.test"
    d.write_table("aliases", aliases)
    d.write_table("recipients", {u: "1" for u in sqtest.LOCAL_USERS +
                                 ["team", "cyclea", "cycleb"]})
    d.start()
    sqtest.run(t, [
        maildir_message_and_its_log_lines,
        session_log_gives_each_message_its_own_size,
        mbox_delivery_has_from_line_escaping_and_blank_line,
        alias_fans_out_to_every_target,
        alias_cycle_does_not_hang_the_daemon,
        loop_is_bounced_to_the_sender_in_qsbmf,
        one_failing_recipient_bounces_alone,
        bounce_quotes_at_most_bounce_max_size,
        failing_message_from_null_sender_goes_to_the_postmaster,
        bounce_to_an_address_that_takes_no_mail_goes_to_the_postmaster,
        delivery_agent_exits_after_agent_idle,
        sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
    ], d)


if __name__ == "__main__":
    main()
