#!/usr/bin/env python3
"""
sendmail(8): sqmailctl called as sendmail and mailq through a scratch
symlink, submitting over the control socket: a cron-style `sendmail -t`
pipe with headers only (Date, Message-ID and From added, Bcc dropped),
recipients as arguments with -f and -F, -i against a "." line, a complete
message stored byte for byte after our Received line, a non-root user's
submission recorded with its real uid, mailq, bsd-mailx sending
through the symlink, and make install linking /usr/sbin/sendmail.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest

YOU = "you@example.test"
TESTUSER = "sqtestsm"


class Env:
    def __init__(self, d):
        self.d = d
        self.bin = d.path("bin")
        os.makedirs(self.bin, exist_ok=True)
        for n in ("sendmail", "mailq"):
            p = os.path.join(self.bin, n)
            if not os.path.lexists(p):
                os.symlink(sqtest.SQMAILCTL, p)
        self.sendmail = os.path.join(self.bin, "sendmail")
        self.env = dict(os.environ, SQMAIL_SOCKET=d.sock)
        self.seen = 0

    def run(self, argv, data, user=None):
        return sqtest.run_prog(argv, data, self.env, user)

    def next_message(self, t, what):
        """The next message in the Maildir, or None (failed)."""
        self.seen += 1
        try:
            msgs = sqtest.wait_for_maildir(self.d.maildir, self.seen)
        except Exception as e:     # noqa: B902 -- reported as a failure
            t.ok(False, "%s: delivered" % what, str(e))
            self.seen = len(sqtest.maildir_read(self.d.maildir))
            return None
        m = msgs[self.seen - 1]
        t.ok(m.error is None, "%s: delivered" % what, m.error or "")
        return m


def cron_style_t_pipe(t, e):
    msg = (b"To: " + YOU.encode() + b"\nCc: \"Some, One\" <you@example.test>"
           b"\nBcc: you@example.test\nSubject: cron output\n")
    rc, out, err = e.run([e.sendmail, "-t", "-oi", "-odi", "-oem",
                          "-oXunknown"], msg)
    t.is_(rc, 0, "sendmail -t -oi -odi -oem -oX...: exit 0", err)
    m = e.next_message(t, "sendmail -t, headers only")
    if m is None:
        return
    t.is_(m.return_path, "root@mx.sqtest.test", "envelope sender: "
          "the login at our host name")
    rest = m.rest.decode()
    t.like(rest, r"(?m)^Date: \w{3}, \d+ \w{3} \d{4} \d\d:\d\d:\d\d [-+]"
           r"\d{4}$", "Date added")
    t.like(rest, r"(?m)^Message-ID: <[^<>@\s]+@[^<>@\s]+>$",
           "Message-ID added")
    t.like(rest, r"(?m)^From: .*<?root@[^\s>]+>?$", "From added: root@host")
    t.unlike(rest, r"(?mi)^Bcc:", "Bcc removed")
    t.ok(rest.endswith("To: you@example.test\nCc: \"Some, One\" "
                       "<you@example.test>\nSubject: cron output\n"),
         "the header as given, in order, after the fix-ups", rest)
    t.like(m.received.decode(), r"^Received: \(from uid 0\)\n\tby \S+ "
           r"\(sqmail\) with local id \d+;\n\t", "Received: (from uid 0)",
           m.received)


def arguments_f_and_F(t, e):
    body = b"Subject: args\n\nline 1\n"
    rc, out, err = e.run([e.sendmail, "-f", "boss@example.test", "-F",
                          "Joe \"Q\" Public", YOU], body)
    t.is_(rc, 0, "sendmail -f -F rcpt: exit 0", err)
    m = e.next_message(t, "recipient as argument")
    if m is None:
        return
    t.is_(m.return_path, "boss@example.test", "-f sets the envelope sender")
    t.like(m.rest.decode(), r'(?m)^From: "Joe \\"Q\\" Public" <root@\S+>$',
           "-F sets the From name (quoted)")
    t.ok(m.rest.endswith(body), "header and body follow as given")
    rc, out, err = e.run([e.sendmail, "-fglued@example.test", "--", YOU],
                         b"\n")
    t.is_(rc, 0, "sendmail -fsender -- rcpt: exit 0", err)
    m = e.next_message(t, "glued -f")
    if m is not None:
        t.is_(m.return_path, "glued@example.test", "-fsender glued")


def dot_line(t, e):
    body = b"Subject: dots\n\nbefore\n.\nafter\n"
    rc, out, err = e.run([e.sendmail, "-i", YOU], body)
    t.is_(rc, 0, "sendmail -i: exit 0", err)
    m = e.next_message(t, "-i")
    if m is not None:
        t.ok(m.rest.endswith(b"before\n.\nafter\n"), "-i: the \".\" line "
             "is text", m.rest)
    rc, out, err = e.run([e.sendmail, YOU], body)
    t.is_(rc, 0, "sendmail without -i: exit 0", err)
    m = e.next_message(t, "no -i")
    if m is not None:
        t.ok(m.rest.endswith(b"\n\nbefore\n"), "without -i the \".\" line "
             "ends the message", m.rest)


def byte_for_byte(t, e):
    msg = (b"Date: Mon, 1 Jan 2024 00:00:00 +0000\nFrom: a@example.test\n"
           b"Message-ID: <fixed@example.test>\nTo: you@example.test\n"
           b"Subject: exact\n\n\tsome text \xc3\xa9\n\n.leading dot\n"
           b"no final newline")
    rc, out, err = e.run([e.sendmail, "-oi", YOU], msg)
    t.is_(rc, 0, "complete message: exit 0", err)
    m = e.next_message(t, "complete message")
    if m is not None:
        t.is_(m.rest[:len(msg)], msg, "stored byte for byte after Received "
              "(nothing added)")


def non_root_user(t, e, d):
    u = sqtest.ensure_user(TESTUSER)
    if u is None:
        t.ok(False, "test user %s available" % TESTUSER)
        return
    rc, out, err = e.run([e.sendmail, "-f", "root@example.test", YOU],
                         b"Subject: from a user\n\nhi\n", user=u)
    t.is_(rc, 0, "sendmail as %s with -f another sender: exit 0" % TESTUSER,
          err)
    m = e.next_message(t, "non-root submission")
    if m is None:
        return
    t.is_(m.return_path, "root@example.test", "-f of another user allowed")
    t.like(m.received.decode(), r"^Received: \(from uid %d\)" % u.pw_uid,
           "Received records the real uid %d" % u.pw_uid, m.received)
    t.like(m.rest.decode(), r"(?m)^From: .*%s@" % TESTUSER,
           "From: the real login")
    rc, out, err = e.run([e.sendmail, "-f", "x@example.test", "bad address@"],
                         b"\n", user=u)
    t.is_(rc, 65, "a bad recipient address: exit 65 (EX_DATAERR)", err)
    t.like(err, r"bad recipient address", "and says why")
    rc, out, err = e.run([e.sendmail], b"Subject: x\n\n", user=u)
    t.is_(rc, 64, "no recipient at all: exit 64", err)


def mailq_lists(t, e, d):
    rc, out, err = d.ctl("pause", "mda")
    t.is_(rc, 0, "pause mda", err)
    rc, out, err = e.run([e.sendmail, YOU], b"Subject: held\n\n")
    t.is_(rc, 0, "a message while mda is paused", err)
    rc, out, err = e.run([os.path.join(e.bin, "mailq")], b"")
    t.is_(rc, 0, "mailq: exit 0", err)
    t.like(out, r"(?m)^id=\d+ age=\d+ sender=\S+ rcpt=you@example\.test "
           r"state=pending tries=\d+ ",
           "mailq lists the held message as key=value fields", out)
    rc2, out2, err2 = e.run([e.sendmail, "-bp"], b"")
    t.is_((rc2, out2), (rc, out), "sendmail -bp is mailq")
    d.ctl("resume", "mda")
    e.next_message(t, "held message after resume")


def bsd_mailx(t, e, d):
    mailx = "/usr/bin/bsd-mailx"
    if not os.path.exists(mailx):
        t.ok(False, "bsd-mailx installed (apt-get install -y bsd-mailx)")
        return
    rc_file = d.path("mailrc")
    with open(rc_file, "w") as f:
        f.write("set sendmail=%s\n" % e.sendmail)
    e.env["MAILRC"] = rc_file
    rc, out, err = e.run([mailx, "-s", "via mailx", YOU],
                         b"sent by bsd-mailx\n")
    t.is_(rc, 0, "bsd-mailx -s: exit 0", err)
    m = e.next_message(t, "bsd-mailx")
    if m is not None:
        t.like(m.rest.decode(), r"(?m)^Subject: via mailx$", "its Subject")
        t.ok(m.rest.endswith(b"sent by bsd-mailx\n"), "its body")
        t.like(m.rest.decode(), r"(?m)^Message-ID: ", "Message-ID added")


def make_install_links_sendmail(t, e, d):
    """make install puts sendmail where programs look for it, keeping
    another MTA's file beside it."""
    top = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    dest = e.d.path("destdir")
    os.makedirs(os.path.join(dest, "usr", "sbin"), exist_ok=True)
    other = os.path.join(dest, "usr", "sbin", "sendmail")
    with open(other, "w") as f:
        f.write("another MTA\n")
    for n in (1, 2):
        p = subprocess.run(["make", "-s", "-C", top, "install",
                            "DESTDIR=" + dest, "PREFIX=/usr/local"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=600)
        t.is_(p.returncode, 0, "make install DESTDIR=... (run %d)" % n,
              p.stdout.decode(errors="replace")[-800:])
    t.is_(os.readlink(other) if os.path.islink(other) else None,
          "/usr/local/sbin/sqmailctl",
          "make install links /usr/sbin/sendmail to sqmailctl")
    try:
        with open(other + ".pre-sqmail") as f:
            kept = f.read()
    except OSError as x:
        kept = str(x)
    t.is_(kept, "another MTA\n",
          "the other sendmail is kept as sendmail.pre-sqmail, once")
    for n in ("sendmail", "mailq", "newaliases"):
        p = os.path.join(dest, "usr", "local", "sbin", n)
        t.is_(os.readlink(p) if os.path.islink(p) else None, "sqmailctl",
              "make install links %s to sqmailctl in SBINDIR" % n)


def main():
    t = sqtest.Tap()
    if os.getuid() != 0:
        t.skip_all("needs root (a second user)")
    d = sqtest.Daemon(t)
    d.start()
    e = Env(d)
    sqtest.run(t, [cron_style_t_pipe, arguments_f_and_F, dot_line,
                   byte_for_byte], e, done=False)
    sqtest.run(t, [non_root_user, mailq_lists, bsd_mailx,
                   make_install_links_sendmail], e, d)


if __name__ == "__main__":
    main()
