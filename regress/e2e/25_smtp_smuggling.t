#!/usr/bin/env python3
"""
SMTP smuggling: only CRLF.CRLF ends the data.  For each other "end of data"
look-alike a client hides a second transaction (MAIL, RCPT, DATA, message)
behind it and then ends the data properly.  The server must answer the
whole thing with exactly one reply (554 5.6.0 where a bare LF makes the
message unacceptable under "bare-lf reject", 250 otherwise), never with the
replies of the hidden commands, and the hidden message must never be
delivered as a message of its own.  Run against the default configuration
(bare-lf reject) and against "bare-lf accept".
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
from sqtest import make_message, expect_delivered

SENDER = "sender@example.test"
YOU = "you@example.test"

# name, the would-be end of data
VARIANTS = [
    ("LF.LF", b"\n.\n"),
    ("CR.CR", b"\r.\r"),
    ("LF.CRLF", b"\n.\r\n"),
    ("CRLF.LF", b"\r\n.\n"),
    ("CRLF.CR", b"\r\n.\r"),
    ("CR.CRLF", b"\r.\r\n"),
    ("LF.CR", b"\n.\r"),
    ("CR.LF", b"\r.\n"),
]


def payload(tag, sep):
    outer = "<outer-%s@sqtest>" % tag
    hidden = "<smuggled-%s@sqtest>" % tag
    data = (b"Subject: outer %s\r\nMessage-ID: %s\r\n\r\nouter body" % (
        tag.encode(), outer.encode()) + sep +
        b"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<%s>\r\nDATA\r\n"
        b"Subject: smuggled %s\r\nMessage-ID: %s\r\n\r\nsmuggled body\r\n"
        b".\r\n" % (YOU.encode(), tag.encode(), hidden.encode()))
    return outer, hidden, data


def smuggle(t, d, name, sep, bare_lf_reject, accepted):
    tag = "%s-%s-%d" % (d.name, name.replace(".", ""),
                        random.getrandbits(24))
    outer, hidden, data = payload(tag, sep)
    has_lf = b"\n" in sep.replace(b"\r\n", b"")
    c = d.client()
    c.greeting()
    c.ehlo()
    t.reply(c.cmd("MAIL FROM:<%s>" % SENDER), 250, None, "%s: MAIL -> 250"
            % name, c)
    t.reply(c.cmd("RCPT TO:<%s>" % YOU), 250, None, "%s: RCPT -> 250" % name,
            c)
    t.reply(c.cmd("DATA"), 354, None, "%s: DATA -> 354" % name, c)
    c.send(data + b"QUIT\r\n")
    replies = c.replies_until_eof()
    c.close()
    codes = [r.code for r in replies]
    if has_lf and bare_lf_reject:
        want = "554 5.6.0 then 221"
        good = codes == [554, 221] and replies[0].enhanced == "5.6.0"
    elif has_lf:
        want = "250 then 221"
        good = codes == [250, 221]
    else:
        # Only bare CRs: content either way; refusing them is allowed.
        want = "250 (or 554 5.6.x) then 221"
        good = codes == [250, 221] or (codes == [554, 221] and
                                       (replies[0].enhanced or "").startswith(
                                           "5.6."))
    t.ok(good, "%s: \"%s\" inside the data is content: one reply to the "
         "message (%s), none for the hidden commands" % (
             name, sep.decode().replace("\r", "\\r").replace("\n", "\\n"),
             want), "reply codes: %r" % codes, c.transcript_tail(30))
    if codes[:1] == [250]:
        accepted.append((name, outer, hidden))
    return codes


def no_hidden_message_is_delivered(t, d, accepted):
    # Wait for every accepted outer message; then the sentinel after them.
    for name, outer, hidden in accepted:
        got = d.wait_for_maildir(1, pred=lambda m: m.msgid == outer)
        mine = [m for m in got if m.msgid == outer]
        t.is_(len(mine), 1, "%s: the outer message is delivered once" % name)
        if mine:
            t.ok(b"smuggled body" in (mine[0].rest or b""),
                 "%s: the hidden text is part of the outer message's body"
                 % name, mine[0].data[-400:])
    sentinel = make_message("sentinel %s" % d.name, "last one\n")
    code, text = d.send(sentinel)
    t.is_(code, 250, "a sentinel message after them -> 250", text)
    expect_delivered(t, d.maildir, sentinel, SENDER, YOU, "sentinel")
    msgs = d.messages()
    hidden = [m for m in msgs if (m.msgid or "").startswith("<smuggled-")]
    t.ok(not hidden, "no smuggled message was delivered as a message of its "
         "own", "smuggled: %r" % hidden)
    t.unlike(d.log_text(), r"from <evil@attacker\.test>",
             "no envelope from <evil@attacker.test> appears in the log")
    info = len([l for l in d.log_text().splitlines() if
                l.startswith("info msg ")])
    t.is_(info, len(accepted) + 1, "the log shows exactly one \"info msg\" per "
          "accepted message (%d outer + the sentinel)" % len(accepted))


def run_variants(t, d, bare_lf_reject):
    accepted = []
    for name, sep in VARIANTS:
        try:
            smuggle(t, d, name, sep, bare_lf_reject, accepted)
        except Exception as e:
            t.ok(False, "%s: smuggling session (raised %r)" % (name, e))
    no_hidden_message_is_delivered(t, d, accepted)


def with_bare_lf_reject_the_default(t, d):
    run_variants(t, d, True)


def with_bare_lf_accept(t, d):
    run_variants(t, d, False)


def main():
    t = sqtest.Tap()
    d = sqtest.Daemon(t).start()
    sqtest.run(t, [
        with_bare_lf_reject_the_default,
        sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
    ], d, done=False)
    d2 = sqtest.Daemon(t, extra="bare-lf accept\n").start()
    sqtest.run(t, [
        with_bare_lf_accept,
        sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
    ], d2)


if __name__ == "__main__":
    main()
