#!/usr/bin/env python3
"""
Delivery programs from Debian run from a .qmail program line (as root,
so that the agent runs as a real user): procmail with a procmailrc that
files by Subject into Maildirs (the envelope sender given with -f
"$SENDER": sqmail has no preline, and procmail makes its own From_
line), and maildrop with a mailfilter doing the same.  The message is
sent with `sendmail`, so the whole local path is exercised; each
delivery is logged as a program delivery (did_0+0+1/) and the Maildir
file holds the message byte for byte after the lines sqmail adds.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
import dotqmailtest as dq
from dotqmailtest import expect_result

RCPT_USER = "sqpmtest"
SENDER = "boss@example.test"


def addr(ext=None):
    return dq.addr(RCPT_USER, ext)


def sendmail(t, d, rcpt, subject, body):
    sm = d.path("sendmail")
    if not os.path.lexists(sm):
        os.symlink(sqtest.SQMAILCTL, sm)
    msg = ("Subject: %s\nTo: %s\n\n%s" % (subject, rcpt, body)).encode()
    p = subprocess.run([sm, "-f", SENDER, rcpt], input=msg,
                       capture_output=True, timeout=sqtest.TIMEOUT,
                       env=dict(os.environ, SQMAIL_SOCKET=d.sock))
    t.is_(p.returncode, 0, "sendmail to %s: exit 0" % rcpt, p.stderr)
    return msg


def one_message(t, maildir, what):
    try:
        msgs = sqtest.wait_for_maildir(maildir, 1)
    except sqtest.WaitTimeout as e:
        t.ok(False, "%s: a message in %s" % (what, maildir), str(e))
        return None
    t.is_(len(msgs), 1, "%s: one message in %s" % (what,
                                                    os.path.basename(maildir)))
    return msgs[0].data


def procmail_files_by_subject(t, d, h):
    if not os.access("/usr/bin/procmail", os.X_OK):
        t.ok(False, "procmail installed (apt-get install -y procmail)")
        return
    h.maildir("pmbox")
    h.maildir("pmother")
    h.write(".procmailrc-test",
            "MAILDIR=$HOME\nLOGFILE=$HOME/procmail.log\n"
            ":0\n* ^Subject:.*for-procmail\npmbox/\n\n:0\npmother/\n",
            mode=0o600)
    # What preline does: Return-Path and Delivered-To first (RPLINE and
    # DTLINE hold them, with their newlines); procmail's own From_ line
    # comes from -f.
    h.write(".qmail-pm", '|{ printf %s "$RPLINE$DTLINE"; cat; } | '
            '/usr/bin/procmail -f "$SENDER" ./.procmailrc-test\n')
    mark = d.log_mark()
    body = "procmail body\n.dot line\n"
    msg = sendmail(t, d, addr("pm"), "for-procmail", body)
    expect_result(t, d, mark, addr("pm"), "success", r"^did_0\+0\+1/$",
                  "procmail as a program line")
    data = one_message(t, h.path("pmbox"), "procmail's recipe")
    if data is None:
        return
    t.ok(data.endswith(msg), "procmail stored the message byte for byte "
         "after our lines", data)
    t.ok(data.startswith(b"Return-Path: <%s>\nDelivered-To: %s\n"
                         b"Received: " % (SENDER.encode(),
                                          addr("pm").encode())),
         "RPLINE and DTLINE first, as preline puts them", data[:300])
    t.like(data.decode(), r"(?m)^Return-Path: <%s>$" % SENDER,
           "Return-Path: the envelope sender")
    t.like(data.decode(), r"(?m)^Delivered-To: %s$" % addr("pm"),
           "Delivered-To: the recipient")
    t.is_(sqtest.maildir_read(h.path("pmother")), [],
          "the other recipe got nothing")
    mark = d.log_mark()
    sendmail(t, d, addr("pm"), "something else", "other\n")
    expect_result(t, d, mark, addr("pm"), "success", r"^did_0\+0\+1/$",
                  "procmail, the fall-through recipe")
    data = one_message(t, h.path("pmother"), "procmail's last recipe")
    if data is not None:
        t.like(data.decode(), r"(?m)^Subject: something else$",
               "the other message in the other Maildir")


def maildrop_files_by_subject(t, d, h):
    if not os.access("/usr/bin/maildrop", os.X_OK):
        t.ok(False, "maildrop installed (apt-get install -y maildrop)")
        return
    h.maildir("mdbox")
    h.maildir("mdother")
    h.write(".mailfilter-test",
            'if (/^Subject:.*for-maildrop/)\n{\n\tto "$HOME/mdbox/"\n}\n'
            'to "$HOME/mdother/"\n', mode=0o600)
    h.write(".qmail-md", "|/usr/bin/maildrop ./.mailfilter-test\n")
    mark = d.log_mark()
    msg = sendmail(t, d, addr("md"), "for-maildrop", "maildrop body\n")
    expect_result(t, d, mark, addr("md"), "success", r"^did_0\+0\+1/$",
                  "maildrop as a program line")
    data = one_message(t, h.path("mdbox"), "maildrop's rule")
    if data is not None:
        t.ok(data.endswith(msg), "maildrop stored the message byte for "
             "byte after our lines", data)
        t.is_(sqtest.maildir_read(h.path("mdother")), [],
              "the other rule got nothing")


def main():
    t = sqtest.Tap()
    sqtest.require_root(t, "the agent runs as a real user")
    h = dq.make_user(t, RCPT_USER)
    d = dq.start_daemon(t, "20s")
    sqtest.run(t, [procmail_files_by_subject, maildrop_files_by_subject,
                   sqtest.sqmaild_stops_on_sigterm_leaving_no_process], d, h)


if __name__ == "__main__":
    main()
