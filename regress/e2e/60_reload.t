#!/usr/bin/env python3
"""
Configuration: `sqmaild -n` checks a file (exit 0, or 1 with "FILE:LINE:
what"); macros and include work; SIGHUP and `sqmailctl reload` apply a good
new configuration (a new domain is accepted, an open session is not
dropped) and refuse a bad one (a log line; the old configuration keeps
serving).
"""
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
from sqtest import make_message, expect_delivered

SENDER = "sender@example.test"
YOU = "you@example.test"

# The main file: macros, tables, an include that holds the extra domains.
CONF = """\
# 60_reload: macros and include
host = "mx.sqtest.test"
mdir = "{maildir}/"
hostname $host
spool "{spool}"
control socket "{sock}"
listen on 127.0.0.1 port {port}
queue retry-min 1s
# no DNS server here: remote mail waits (tests stay on loopback)
dns servers "127.0.0.1:9"
queue retry-max 2s
table recipients "file:{dir}/recipients"
domain "example.test" {{
	deliver maildir $mdir
	user "{user}"
	recipients recipients
}}
include "{dir}/domains.conf"
include "{dir}/limits.conf"
"""

NEW_DOMAIN = """\
domain "new.test" {{
	deliver maildir "{dir}/Maildir-new/"
	user "{user}"
}}
"""
OTHER_DOMAIN = """\
domain "other.test" {{
	deliver maildir "{dir}/Maildir-other/"
	user "{user}"
}}
"""
BAD = """\
# a line the grammar does not know
domain "broken.test" {{
	deliver maildir "{dir}/Maildir-broken/"
	frobnicate yes
}}
"""

# (what is wrong, the text, the line(s) at fault: where a parser may see
# the fault at the next token, that line is allowed too)
BAD_CONFS = [
    ("an unknown keyword", 'hostname "h"\nfrobnicate yes\n', (2,)),
    ("a bad size", 'hostname "h"\n\nlimit message-size lots\n', (3,)),
    ("an undefined macro", 'hostname "h"\nspool $nosuchmacro\n', (2,)),
    ("a domain naming an undefined table",
     'hostname "h"\ndomain "x.test" {\n\tdeliver maildir "/tmp/x/"\n'
     '\taliases nosuchtable\n}\n', (4, 5)),
    ("a missing include", 'hostname "h"\ninclude "/nonexistent/sq.conf"\n',
     (2,)),
    ("an unterminated string", 'hostname "h\n', (1, 2)),
]


def rcpt_code(d, addr):
    c = d.client()
    try:
        c.greeting()
        c.ehlo()
        c.cmd("MAIL FROM:<%s>" % SENDER)
        r = c.cmd("RCPT TO:<%s>" % addr)
        c.cmd("QUIT")
        return r.code if r else None
    finally:
        c.close()


def wait_rcpt(d, addr, code):
    try:
        sqtest.wait_for("RCPT %s to get %d" % (addr, code),
                        lambda: rcpt_code(d, addr) == code)
        return True
    except sqtest.WaitTimeout:
        return False


def config_check_accepts_a_good_file(t, d):
    rc, out = d.check_conf()
    t.is_(rc, 0, "sqmaild -n -f sqmail.conf (macros, include) exits 0", out)


def config_check_names_file_and_line_of_an_error(t, d):
    for i, (what, text, lines) in enumerate(BAD_CONFS):
        p = d.write("bad%d.conf" % i, text)
        rc, out = d.check_conf(p)
        t.is_(rc, 1, "sqmaild -n on a file with %s exits 1" % what, out)
        t.like(out, r"(?m)%s:(%s): \S" % (re.escape(p), "|".join(
            str(n) for n in lines)), "and says %s:%s: what is wrong" % (
            os.path.basename(p), " or ".join(str(n) for n in lines)))


def sighup_adds_a_domain_without_dropping_an_open_session(t, d):
    t.is_(rcpt_code(d, "new@new.test"), 554, "before: new@new.test is not "
          "ours (554 from a non-relay client)")
    c = d.client()
    c.greeting()
    c.ehlo()
    t.reply(c.cmd("MAIL FROM:<%s>" % SENDER), 250, None,
            "an open session: MAIL -> 250", c)
    d.mkmaildir(d.path("Maildir-new"))
    d.write("domains.conf", d.render(NEW_DOMAIN))
    mark = d.log_mark()
    os.kill(d.proc.pid, signal.SIGHUP)
    t.ok(wait_rcpt(d, "new@new.test", 250), "after SIGHUP a new session's "
         "RCPT TO:<new@new.test> -> 250", d.log_text(mark))
    t.reply(c.cmd("RCPT TO:<%s>" % YOU), 250, None, "the open session goes "
            "on: RCPT TO:<you@example.test> -> 250", c)
    t.reply(c.cmd("RCPT TO:<new@new.test>"), 250, None, "and RCPT TO:<new@"
            "new.test> -> 250 in it too", c)
    t.reply(c.cmd("DATA"), 354, None, "DATA -> 354", c)
    m = make_message("across a reload", "sent across SIGHUP\n")
    c.send(sqtest.dot_stuff(sqtest.crlf(m)) + b".\r\n")
    t.reply(c.reply(), 250, None, "end of data -> 250", c)
    t.reply(c.cmd("QUIT"), 221, None, "QUIT -> 221", c)
    c.close()
    expect_delivered(t, d.maildir, m, SENDER, YOU, "message across reload")
    expect_delivered(t, d.path("Maildir-new"), m, SENDER, "new@new.test",
                     "message to the new domain")
    t.ok(d.running(), "sqmaild is still running")


def sighup_rereads_tables(t, d):
    t.is_(rcpt_code(d, "fresh@example.test"), 550, "before: RCPT TO:<fresh@"
          "example.test> -> 550 (not in the recipients table)")
    d.write_table("recipients", {u: "1" for u in sqtest.LOCAL_USERS +
                                 ["fresh"]})
    os.kill(d.proc.pid, signal.SIGHUP)
    t.ok(wait_rcpt(d, "fresh@example.test", 250), "after the table file "
         "changes and SIGHUP: RCPT TO:<fresh@example.test> -> 250")


def sighup_with_a_bad_config_keeps_the_old_one(t, d):
    mark = d.log_mark()
    d.write("domains.conf", d.render(NEW_DOMAIN + BAD))
    pids = d.processes()
    os.kill(d.proc.pid, signal.SIGHUP)
    t.ok(d.wait_for_log(r"domains\.conf:\d+: ", since=mark),
         "the log names domains.conf:LINE: of the error",
         d.log_text(mark))
    t.ok(d.running(), "sqmaild is still running")
    t.is_(rcpt_code(d, "new@new.test"), 250, "the old configuration still "
          "serves: new@new.test -> 250")
    t.is_(rcpt_code(d, "x@broken.test"), 554, "nothing of the bad file was "
          "taken: x@broken.test -> 554")
    m = make_message("after a refused reload", "old config\n",
                     to="new@new.test")
    code, text = d.send(m, rcpts=["new@new.test"])
    t.is_(code, 250, "a message to new@new.test -> 250", text)
    expect_delivered(t, d.path("Maildir-new"), m, SENDER, "new@new.test",
                     "message after the refused reload")
    t.is_(sorted(d.processes()), sorted(pids), "no process was restarted")


def sqmailctl_reload_refuses_a_bad_config_with_exit_1(t, d):
    rc, out, err = d.ctl("reload")
    t.is_(rc, 1, "sqmailctl reload with the bad file still there exits 1",
          out + err)
    t.is_(rcpt_code(d, "new@new.test"), 250, "the old configuration still "
          "serves")


def sqmailctl_reload_applies_a_good_config(t, d):
    d.mkmaildir(d.path("Maildir-other"))
    d.write("domains.conf", d.render(OTHER_DOMAIN))
    d.write("limits.conf", "limit message-size 10K\n")
    rc, out, err = d.ctl("reload")
    t.is_(rc, 0, "sqmailctl reload of a good file exits 0", out + err)
    t.ok(wait_rcpt(d, "x@other.test", 250),
         "other.test is accepted: RCPT TO:<x@other.test> -> 250")
    t.ok(wait_rcpt(d, "new@new.test", 554),
         "new.test, no longer configured, is refused: 554")
    c = d.client()
    c.greeting()
    r = c.ehlo()
    c.close()
    t.ok(r is not None and "SIZE 10240" in r.text.upper(), "a new session's "
         "EHLO says SIZE 10240 (limit message-size 10K from the reload)",
         r.raw if r else None)
    m = make_message("to other", "reloaded\n", to="x@other.test")
    code, text = d.send(m, rcpts=["x@other.test"])
    t.is_(code, 250, "a message to x@other.test -> 250", text)
    expect_delivered(t, d.path("Maildir-other"), m, SENDER, "x@other.test",
                     "message to other.test")


def reloads_under_load_lose_no_message(t, d):
    acked, errors = [], []

    def sender(n):
        try:
            s = d.smtp()
            s.ehlo()
            for i in range(10):
                m = make_message("under reload %d.%d" % (n, i), "load\n",
                                 msgid="<reload-%d-%d@sqtest>" % (n, i))
                s.mail(SENDER)
                s.rcpt(YOU)
                code, text = s.data(sqtest.crlf(m))
                if code == 250:
                    acked.append(sqtest.header(m, "Message-ID"))
                else:
                    errors.append("%d.%d: %d %s" % (n, i, code, text))
            s.quit()
        except Exception as e:
            errors.append("sender %d: %r" % (n, e))
    threads = [threading.Thread(target=sender, args=(n,), daemon=True)
               for n in range(5)]
    for th in threads:
        th.start()
    for i in range(5):
        os.kill(d.proc.pid, signal.SIGHUP)
        time.sleep(0.05)
    for th in threads:
        th.join(60 * sqtest.SCALE)
    t.ok(not errors and len(acked) == 50, "50 messages sent in 5 sessions "
         "during 5 SIGHUPs all get 250, no session is dropped",
         "\n".join(errors[:10]))
    want = set(acked)
    got = d.wait_for_maildir(len(want), pred=lambda m: m.msgid in want)
    have = [m.msgid for m in got if m.msgid in want]
    t.is_(sorted(have), sorted(want), "each of them is delivered once")
    t.ok(d.running(), "sqmaild is still running")


def main():
    t = sqtest.Tap()
    d = sqtest.Daemon(t, conf=CONF)
    d.write("domains.conf", "# extra domains go here\n")
    d.write("limits.conf", "# limits go here\n")
    sqtest.run(t, [
        config_check_accepts_a_good_file,
        config_check_names_file_and_line_of_an_error,
    ], d, done=False)
    d.start()
    sqtest.run(t, [
        sighup_adds_a_domain_without_dropping_an_open_session,
        sighup_rereads_tables,
        sighup_with_a_bad_config_keeps_the_old_one,
        sqmailctl_reload_refuses_a_bad_config_with_exit_1,
        sqmailctl_reload_applies_a_good_config,
        reloads_under_load_lose_no_message,
        sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
    ], d)


if __name__ == "__main__":
    main()
