#!/usr/bin/env python3
"""
Local delivery through a user's .qmail files (dot-qmail(5)), started as
root so that the agent runs as a real user with a real home: no .qmail is
the default mailbox; a .qmail with a Maildir, an mbox and a program line
runs them in order (did_2+0+1/) and the program sees the qmail-command
environment; exit 99 stops the lines after it, 100 bounces (the QSBMF
bounce reaches the sender), 111 defers; user-ext finds .qmail-ext,
.qmail-foo-default and .qmail-default, and an extension without a file
bounces; a group-writable .qmail, one another user owns, a program
past the timeout, a sticky home and an mbox line naming a symbolic link
all defer (forwards: 42_dotqmail_forward.t).
"""
import os
import pwd
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
from sqtest import expect_delivered
import dotqmailtest as dq
from dotqmailtest import DOM, expect_result

RCPT_USER = "sqdqtest"
SENDER = "%s-bounces@%s" % (RCPT_USER, DOM)
ENV_FILE = "env.out"


def addr(ext=None):
    return dq.addr(RCPT_USER, ext)


def send(t, d, subject, rcpt, sender=SENDER):
    return dq.send(t, d, subject, rcpt, sender)


def no_dotqmail_is_the_default_mailbox(t, d, h):
    mark = d.log_mark()
    m = send(t, d, "default", addr())
    expect_delivered(t, h.path("Maildir"), m, SENDER, addr(),
                     "no .qmail: ~/Maildir/")
    expect_result(t, d, mark, addr(), "success", r"^did_1\+0\+0/$",
                  "no .qmail")


def extension_without_a_file_bounces(t, d, h):
    mark = d.log_mark()
    send(t, d, "nofile", addr("nofile"))
    expect_result(t, d, mark, addr("nofile"), "failure",
                  r"Sorry,_no_mailbox_here_by_that_name\._\(#5\.1\.1\)",
                  "user-nofile without a .qmail-nofile")
    bounce = sqtest.wait_for_maildir(h.path("bounces"), 1, pred=lambda x:
                                     b"nofile" in x.data)
    t.ok(any(b"no mailbox here by that name" in x.data for x in bounce),
         "the QSBMF bounce for user-nofile reaches the sender",
         repr(bounce)[:600])


def dotqmail_lines_run_in_order(t, d, h):
    h.maildir("md2")
    h.write(".qmail", "# lines in order\n./md2/\n./mbox\n"
            "|env > ./%s; echo ignored\n" % ENV_FILE)
    mark = d.log_mark()
    m = send(t, d, "lines", addr())
    expect_result(t, d, mark, addr(), "success", r"^did_2\+0\+1/$",
                  ".qmail with a Maildir, an mbox and a program line")
    expect_delivered(t, h.path("md2"), m, SENDER, addr(), "Maildir line")
    box = sqtest.mbox_read(h.path("mbox")) if os.path.exists(
        h.path("mbox")) else []
    t.ok(any(m.split(b"\n", 1)[1] in x for x in box),
         "mbox line: the message is in ~/mbox", repr(box)[:400])
    st = os.stat(h.path("mbox")) if os.path.exists(h.path("mbox")) else None
    t.ok(st is not None and st.st_uid == h.pw.pw_uid,
         "the mbox belongs to %s" % RCPT_USER)
    try:
        with open(h.path(ENV_FILE)) as f:
            env = dict(l.split("=", 1) for l in f.read().split("\n")
                       if "=" in l)
    except OSError as e:
        env = {}
        t.diag("cannot read %s: %s" % (ENV_FILE, e))
    want = {
        "SENDER": SENDER,
        "NEWSENDER": SENDER,
        "RECIPIENT": addr(),
        "USER": RCPT_USER,
        "HOME": h.dir,
        "HOST": DOM,
        "LOCAL": RCPT_USER,
        "EXT": "",
        "DTLINE": "Delivered-To: %s" % addr(),
        "RPLINE": "Return-Path: <%s>" % SENDER,
    }
    for k, v in want.items():
        t.is_(env.get(k), v, "program environment: %s=%s" % (k, v))
    t.ok("DEFAULT" not in env, "program environment: no DEFAULT for the "
         "basic address")
    os.unlink(h.path(".qmail"))


def exit_99_stops_the_next_lines(t, d, h):
    h.write(".qmail-stop", "|exit 99\n./stopbox\n")
    mark = d.log_mark()
    send(t, d, "stop", addr("stop"))
    expect_result(t, d, mark, addr("stop"), "success", r"^did_0\+0\+1/$",
                  "exit 99")
    t.ok(not os.path.exists(h.path("stopbox")),
         "exit 99: the mbox line after it is not delivered")


def exit_100_bounces(t, d, h):
    h.write(".qmail-perm", "|echo 'no such list here'; exit 100\n")
    mark = d.log_mark()
    send(t, d, "perm", addr("perm"))
    expect_result(t, d, mark, addr("perm"), "failure",
                  r"program_exited_100:_no_such_list_here", "exit 100")
    bounce = sqtest.wait_for_maildir(h.path("bounces"), 1, pred=lambda x:
                                     b"no such list here" in x.data)
    t.ok(any(b"no such list here" in x.data and b"<%s>" % addr(
        "perm").encode() in x.data for x in bounce),
         "exit 100: the QSBMF bounce names the address and the program's "
         "output", repr(bounce)[:600])


def exit_111_defers(t, d, h):
    h.write(".qmail-temp", "|echo 'try later'; exit 111\n")
    mark = d.log_mark()
    send(t, d, "temp", addr("temp"))
    expect_result(t, d, mark, addr("temp"), "deferral",
                  r"program_exited_111:_try_later", "exit 111")


def default_files_for_extensions(t, d, h):
    h.write(".qmail-foo-default", "|echo \"$EXT $DEFAULT\" > ./foo.out\n")
    mark = d.log_mark()
    send(t, d, "foo-default", addr("foo-bar"))
    expect_result(t, d, mark, addr("foo-bar"), "success", r"^did_0\+0\+1/$",
                  "user-foo-bar by .qmail-foo-default")
    try:
        got = open(h.path("foo.out")).read()
    except OSError as e:
        got = str(e)
    t.is_(got, "foo-bar bar\n", ".qmail-foo-default: EXT=foo-bar "
          "DEFAULT=bar")
    h.write(".qmail-default", "|echo \"$EXT $DEFAULT\" > ./dflt.out\n")
    mark = d.log_mark()
    send(t, d, "default", addr("zzz"))
    expect_result(t, d, mark, addr("zzz"), "success", r"^did_0\+0\+1/$",
                  "user-zzz by .qmail-default")
    try:
        got = open(h.path("dflt.out")).read()
    except OSError as e:
        got = str(e)
    t.is_(got, "zzz zzz\n", ".qmail-default: EXT=zzz DEFAULT=zzz")
    os.unlink(h.path(".qmail-default"))


def group_writable_dotqmail_defers(t, d, h):
    h.write(".qmail-gw", "./gwbox\n", mode=0o664)
    mark = d.log_mark()
    send(t, d, "gw", addr("gw"))
    expect_result(t, d, mark, addr("gw"), "deferral",
                  r"\.qmail-gw_is_group_or_world_writable", "group-writable")
    t.ok(not os.path.exists(h.path("gwbox")),
         "group-writable: nothing delivered")


def dotqmail_of_another_user_defers(t, d, h):
    h.write(".qmail-other", "|touch ./ran-other\n")
    nobody = pwd.getpwnam("nobody")
    os.chown(h.path(".qmail-other"), nobody.pw_uid, nobody.pw_gid)
    mark = d.log_mark()
    send(t, d, "other", addr("other"))
    expect_result(t, d, mark, addr("other"), "deferral",
                  r"\.qmail-other_belongs_to_another_user", "another owner")
    t.ok(not os.path.exists(h.path("ran-other")),
         "a .qmail another user owns: its program did not run")


def program_timeout_defers(t, d, h):
    h.write(".qmail-slow", "|sleep 30\n")
    mark = d.log_mark()
    send(t, d, "slow", addr("slow"))
    expect_result(t, d, mark, addr("slow"), "deferral",
                  r"program_timed_out_after_2_seconds", "program-timeout 2s")
    left = [p for p in sqtest.all_pids()
            if "sleep 30" in sqtest.proc_cmdline(p)]
    t.ok(not left, "the timed-out program was killed", repr(left))


def sticky_home_defers(t, d, h):
    os.chmod(h.dir, 0o1755)
    mark = d.log_mark()
    send(t, d, "sticky", addr())
    expect_result(t, d, mark, addr(), "deferral",
                  r"delivery_deferred,_home_directory_is_sticky",
                  "sticky home")
    os.chmod(h.dir, 0o755)


def symlinked_mbox_defers(t, d, h):
    """A .qmail mbox line naming a symbolic link: the link is not followed."""
    h.write("victim", "precious\n", mode=0o600)
    link = h.path("linkbox")
    os.symlink(h.path("victim"), link)
    os.lchown(link, h.pw.pw_uid, h.pw.pw_gid)
    h.write(".qmail-sym", "./linkbox\n")
    mark = d.log_mark()
    send(t, d, "sym", addr("sym"))
    expect_result(t, d, mark, addr("sym"), "deferral",
                  r"the_mailbox_is_a_symbolic_link,_refusing_to_follow_it",
                  "a symlinked mbox")
    with open(h.path("victim")) as f:
        t.is_(f.read(), "precious\n", "the symlink's target is untouched")


def main():
    t = sqtest.Tap()
    sqtest.require_root(t, "the agent runs as a real user")
    h = dq.make_user(t, RCPT_USER)
    h.maildir("bounces")
    h.write(".qmail-bounces", "./bounces/\n")
    d = dq.start_daemon(t, "2s")
    sqtest.run(t, [
        no_dotqmail_is_the_default_mailbox,
        extension_without_a_file_bounces,
        dotqmail_lines_run_in_order,
        exit_99_stops_the_next_lines,
        exit_100_bounces,
        exit_111_defers,
        default_files_for_extensions,
        group_writable_dotqmail_defers,
        dotqmail_of_another_user_defers,
        program_timeout_defers,
        sticky_home_defers,
        symlinked_mbox_defers,
        sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
    ], d, h)


if __name__ == "__main__":
    main()
