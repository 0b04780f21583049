#!/usr/bin/env python3
"""
sendmail -bs (SMTP on stdin and stdout) and the flags programs pass:
a whole session with every command's reply and enhanced status code, a
pipelined session of two transactions, dot-unstuffing, the 250 after the
final dot naming the queue id (given only once the queue committed), a
recipient the daemon refuses answered after the dot, the RFC 5321 line
limits, input ending inside DATA, a non-root user's uid in Received; -v
printing the queue's answer, and -odi, -odb, -oem, -om, -oX..., -o x,
-O opt=val each accepted without effect.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest

YOU = "you@example.test"
TESTUSER = "sqtestbs"


class Env:
    def __init__(self, d):
        self.d = d
        self.bin = d.path("bin")
        os.makedirs(self.bin, exist_ok=True)
        self.sendmail = os.path.join(self.bin, "sendmail")
        if not os.path.lexists(self.sendmail):
            os.symlink(sqtest.SQMAILCTL, self.sendmail)
        self.env = dict(os.environ, SQMAIL_SOCKET=d.sock,
                        SQMAIL_OFFLINE=d.path("no-offline-dir"))
        self.seen = 0

    def run(self, argv, data, user=None):
        return sqtest.run_prog(argv, data, self.env, user)

    def bs(self, lines, user=None):
        """A -bs session: (exit status, [reply lines], stderr)."""
        data = b"".join(x + b"\r\n" for x in lines)
        rc, out, err = self.run([self.sendmail, "-bs"], data, user=user)
        return rc, out.split("\r\n")[:-1] if out.endswith("\r\n") else \
            out.split("\r\n"), err

    def next_messages(self, t, n, what):
        """The next n messages of the Maildir ([] when they never come)."""
        try:
            msgs = sqtest.wait_for_maildir(self.d.maildir, self.seen + n)
        except sqtest.WaitTimeout as e:
            t.ok(False, "%s: delivered" % what, str(e))
            self.seen = len(sqtest.maildir_read(self.d.maildir))
            return []
        got = msgs[self.seen:self.seen + n]
        self.seen += n
        return got

    def nothing_more(self, t, what):
        """Nothing new in the Maildir (checked after a later message)."""
        msgs = sqtest.maildir_read(self.d.maildir)
        t.is_(len(msgs), self.seen, what,
              [m.rest[:200] for m in msgs[self.seen:]])


def full_session(t, e):
    rc, r, err = e.bs([
        b"NOOP",
        b"MAIL FROM:<early@example.test>",
        b"HELP",
        b"EHLO client.example",
        b"RCPT TO:<" + YOU.encode() + b">",
        b"DATA",
        b"MAIL FROM:<bad address>",
        b"MAIL FROM:<s@example.test> FOO=BAR",
        b"MAIL FROM:<s@example.test> SIZE=1000",
        b"MAIL FROM:<again@example.test>",
        b"RCPT TO:<not an address>",
        b"DATA",
        b"RCPT TO:<" + YOU.encode() + b">",
        b"VRFY you",
        b"EXPN list",
        b"STARTTLS",
        b"FROB",
        b"X" * 600,
        b"DATA x",
        b"DATA",
        b"Subject: bs session",
        b"",
        b"..leading dot",
        b"...two",
        b"plain",
        b".",
        b"RSET",
        b"QUIT",
    ])
    t.is_(rc, 0, "sendmail -bs: exit 0 after QUIT", err)
    want = [
        r"220 \S+ ESMTP sqmail",
        r"250 2\.0\.0 Ok$",
        r"503 5\.5\.1 Send HELO or EHLO first$",
        r"214 2\.0\.0 ",
        r"250-\S+$", r"250-PIPELINING$", r"250-8BITMIME$", r"250-SIZE \d+$",
        r"250 ENHANCEDSTATUSCODES$",
        r"503 5\.5\.1 Send MAIL first$",
        r"503 5\.5\.1 Send MAIL and RCPT first$",
        r"501 5\.1\.7 Bad sender address syntax$",
        r"555 5\.5\.4 MAIL parameter not recognized$",
        r"250 2\.1\.0 Ok$",
        r"503 5\.5\.1 A transaction is open already",
        r"501 5\.1\.3 Bad recipient address syntax$",
        r"503 5\.5\.1 Send MAIL and RCPT first$",
        r"250 2\.1\.5 Ok$",
        r"252 2\.5\.2 ",
        r"502 5\.5\.1 EXPN",
        r"502 5\.5\.1 STARTTLS is not offered",
        r"500 5\.5\.1 Command not recognized$",
        r"500 5\.5\.2 Line too long \(the limit is 512 octets\)$",
        r"501 5\.5\.4 Syntax: DATA$",
        r"354 ",
        r"250 2\.0\.0 Ok: queued as (\d+)$",
        r"250 2\.0\.0 Ok$",
        r"221 2\.0\.0 ",
    ]
    t.is_(len(r), len(want), "one reply per command, in order", r)
    qid = None
    for i, (got, pat) in enumerate(zip(r, want)):
        m = re.match(pat, got)
        t.ok(m is not None, "reply %d: /%s/" % (i + 1, pat), got)
        if m and m.groups():
            qid = m.group(1)
    msgs = e.next_messages(t, 1, "the -bs message")
    if not msgs:
        return
    m = msgs[0]
    t.is_(m.return_path, "s@example.test", "envelope sender from MAIL FROM")
    t.like(m.received.decode(), r"^Received: \(from uid 0\)\n\tby \S+ "
           r"\(sqmail\) with local id %s;" % qid,
           "Received: uid 0 and the queue id the 250 named", m.received)
    t.ok(m.rest.endswith(b"Subject: bs session\n\n.leading dot\n..two\n"
                         b"plain\n"), "dots unstuffed, CRLF made LF", m.rest)
    t.like(m.rest.decode(), r"(?m)^Message-ID: <", "header fix-ups made")
    t.like(e.d.log_text(), r"queue: msg %s: local submission from uid 0"
           % qid, "queued as a local submission (log)")


def pipelined_two_transactions(t, e):
    rc, r, err = e.bs([
        b"HELO me",
        b"MAIL FROM:<>",
        b"RCPT TO:<" + YOU.encode() + b">",
        b"DATA",
        b"Subject: first",
        b"",
        b"one",
        b".",
        b"MAIL FROM:<second@example.test>",
        b"RCPT TO:<" + YOU.encode() + b">",
        b"DATA",
        b"Subject: second",
        b"",
        b"two",
        b".",
        b"QUIT",
    ])
    t.is_(rc, 0, "two transactions: exit 0", err)
    codes = [x[:3] for x in r]
    t.is_(codes, ["220", "250", "250", "250", "354", "250", "250",
                  "250", "354", "250", "221"], "replies in order", r)
    msgs = e.next_messages(t, 2, "two transactions")
    subjects = sorted(m.header("Subject") for m in msgs)
    t.is_(subjects, ["first", "second"], "both delivered to you")
    first = [m for m in msgs if m.header("Subject") == "first"]
    if first:
        t.is_(first[0].return_path, "", "MAIL FROM:<> is the null sender")


def refused_after_dot(t, e):
    rc, r, err = e.bs([
        b"EHLO me",
        b"MAIL FROM:<s@example.test>",
        b"RCPT TO:<nosuchuser@example.test>",
        b"DATA",
        b"Subject: refused",
        b"",
        b".",
        b"QUIT",
    ])
    t.is_(rc, 0, "a refused message: the session still ends with 0", err)
    data = [x for x in r if x.startswith(("250 2.0.0", "554", "451"))]
    t.ok(data and data[0].startswith("554 5.0.0 "),
         "the daemon's refusal answered after the dot: 554 5.0.0", r)


def line_limits(t, e):
    long_data = b"y" * 999     # with CRLF: 1001 octets, one too many
    ok_data = b"z" * 998       # with CRLF: 1000, the limit
    rc, r, err = e.bs([
        b"HELO me",
        b"MAIL FROM:<s@example.test>",
        b"RCPT TO:<" + YOU.encode() + b">",
        b"DATA",
        b"Subject: long",
        b"",
        long_data,
        b".",
        b"MAIL FROM:<s@example.test>",
        b"RCPT TO:<" + YOU.encode() + b">",
        b"DATA",
        b"Subject: just right",
        b"",
        ok_data,
        b".",
        b"QUIT",
    ])
    t.is_(rc, 0, "line limits: exit 0", err)
    t.ok(any(x.startswith("500 5.5.2 Line too long (the limit is 1000 "
                          "octets") for x in r),
         "a 1001-octet text line: 500 5.5.2 after the dot", r)
    msgs = e.next_messages(t, 1, "the 1000-octet line message")
    if msgs:
        t.is_(msgs[0].header("Subject"), "just right",
              "only the message within the limit is delivered")
        t.ok(msgs[0].rest.endswith(ok_data + b"\n"), "its 998-octet line "
             "intact")


def input_ends_in_data(t, e):
    data = (b"HELO me\r\nMAIL FROM:<s@example.test>\r\nRCPT TO:<" +
            YOU.encode() + b">\r\nDATA\r\nSubject: cut\r\n\r\nhalf")
    rc, out, err = e.run([e.sendmail, "-bs"], data)
    t.is_(rc, 75, "input ending inside DATA: exit 75 (nothing sent)", err)
    # A marker message after it: the cut one must not come before it.
    rc, out, err = e.run([e.sendmail, YOU], b"Subject: marker\n\n")
    t.is_(rc, 0, "a marker message", err)
    msgs = e.next_messages(t, 1, "the marker")
    if msgs:
        t.is_(msgs[0].header("Subject"), "marker",
              "the cut message was not delivered")


def bs_as_user(t, e):
    u = sqtest.ensure_user(TESTUSER)
    if u is None:
        t.ok(False, "test user %s available" % TESTUSER)
        return
    rc, r, err = e.bs([
        b"EHLO me",
        b"MAIL FROM:<root@example.test>",
        b"RCPT TO:<" + YOU.encode() + b">",
        b"DATA",
        b"Subject: bs user",
        b"",
        b"hi",
        b".",
        b"QUIT",
    ], user=u)
    t.is_(rc, 0, "-bs as %s: exit 0" % TESTUSER, err)
    msgs = e.next_messages(t, 1, "-bs as a user")
    if msgs:
        t.like(msgs[0].received.decode(), r"^Received: \(from uid %d\)" %
               u.pw_uid, "Received: the user's real uid, not the sender's",
               msgs[0].received)
        t.like(msgs[0].rest.decode(), r"(?m)^From: .*%s@" % TESTUSER,
               "From fix-up: the real login")


def verbose_prints_result(t, e):
    rc, out, err = e.run([e.sendmail, "-v", YOU], b"Subject: verbose\n\n")
    t.is_(rc, 0, "-v: exit 0", err)
    t.like(err, r"^sendmail: queued as \d+\n$", "-v prints the queue's "
           "answer on stderr", err)
    e.next_messages(t, 1, "-v message")


def ignored_options(t, e):
    opts = [["-odi"], ["-odb"], ["-oem"], ["-om"], ["-oXfoo"],
            ["-o", "x"], ["-O", "DeliveryMode=b"], ["-ODeliveryMode=i"],
            ["-oQ/tmp"], ["-oee", "-odi", "-oi"]]
    for o in opts:
        subj = "opt %s" % " ".join(o)
        rc, out, err = e.run([e.sendmail] + o + [YOU],
                             b"Subject: " + subj.encode() + b"\n\n")
        t.is_((rc, err), (0, ""), "sendmail %s: accepted, exit 0, silent" %
              " ".join(o))
    msgs = e.next_messages(t, len(opts), "the option messages")
    t.is_(sorted(m.header("Subject") for m in msgs),
          sorted("opt %s" % " ".join(o) for o in opts),
          "each option's message delivered as without it")


def main():
    t = sqtest.Tap()
    if os.getuid() != 0:
        t.skip_all("needs root (a second user)")
    d = sqtest.Daemon(t)
    d.start()
    e = Env(d)
    sqtest.run(t, [full_session, pipelined_two_transactions,
                   refused_after_dot, line_limits, input_ends_in_data,
                   bs_as_user, verbose_prints_result, ignored_options], e,
               done=False)
    sqtest.run(t, [sqtest.sqmaild_stops_on_sigterm_leaving_no_process], d)


if __name__ == "__main__":
    main()
