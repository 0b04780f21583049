#!/usr/bin/env python3
"""
sqmailctl against a running sqmaild: every command, its exit status (0 done,
1 refused or failed, 64 usage, 69 no daemon), and what each does: show
queue/stats/processes, pause and resume smtp, schedule and remove (one id
and all), log verbose/brief, reload, stop; who may use the control socket
(sqmailctl(8) AUTHORISATION) and its bound of 64 clients.
"""
import grp
import os
import pwd
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
from sqtest import make_message, expect_delivered

SENDER = "sender@example.test"
YOU = "you@example.test"
RELAY = "127.0.0.2"
ROLES = ("smtp", "lka", "queue", "mda", "mta", "control")
CTL_GROUP = "sqtestctl"

USAGE = [
    [],
    ["bogus"],
    ["show"],
    ["show", "bogus"],
    ["show", "queue", "extra"],
    ["pause"],
    ["pause", "bogus"],
    ["resume"],
    ["schedule"],
    ["schedule", "abc"],
    ["schedule", "0"],
    ["schedule", "-1"],
    ["schedule", "1", "2"],
    ["remove"],
    ["remove", "12x"],
    ["log"],
    ["log", "loud"],
    ["reload", "now"],
    ["stop", "now"],
]


def malformed_command_lines_exit_64(t, d):
    for args in USAGE:
        rc, out, err = d.ctl(*args)
        t.is_(rc, 64, "sqmailctl %s exits 64 (usage)" % (" ".join(args) or
                                                         "(no command)"),
              "stdout: %r stderr: %r" % (out, err))
    rc, out, err = d.ctl("-Z", "show", "queue", socket_path=False)
    t.is_(rc, 64, "sqmailctl -Z (an unknown option) exits 64", err)


def unreachable_control_socket_exits_69(t, d):
    # sqmailctl(8): 1 is a request sqmaild refused or failed; 69 that the
    # control socket cannot be reached.
    rc, out, err = d.ctl("show", "queue", socket_path=d.path("none.sock"))
    t.is_(rc, 69, "sqmailctl -s <no such socket> show queue exits 69 "
          "(EX_UNAVAILABLE, sqmailctl(8))", err)
    t.ok(err.strip() != "", "and says why on stderr")


def show_processes_lists_every_role(t, d):
    rc, out, err = d.ctl("show", "processes")
    t.is_(rc, 0, "show processes exits 0", err)
    seen = {}
    for line in out.splitlines():
        m = re.match(r"^(\S+) pid=(\d+) uid=(\d+) gid=(\d+) root=(\S+)$",
                     line)
        t.ok(m, "line \"%s\" reads ROLE pid=N uid=N gid=N root=PATH" % line)
        if m:
            seen[m.group(1)] = dict(pid=int(m.group(2)), uid=int(m.group(3)),
                                    gid=int(m.group(4)), root=m.group(5))
    mine = d.processes()
    for role in ROLES:
        p = seen.get(role)
        if not t.ok(p is not None, "show processes lists %s" % role, out):
            continue
        t.ok(p["pid"] in mine and p["pid"] != d.proc.pid,
             "%s: pid %d is a child of this sqmaild" % (role, p["pid"]),
             "processes of the daemon: %r" % mine)
        st = sqtest.proc_status(p["pid"]) or {}
        uids = st.get("Uid", "").split()
        t.ok(uids and all(int(u) == p["uid"] == d.user.pw_uid for u in uids),
             "%s: uid=%d is what /proc says and the user we started it as"
             % (role, p["uid"]), "/proc Uid: %r, run user %d" % (
                 uids, d.user.pw_uid))
        try:
            root = os.readlink("/proc/%d/root" % p["pid"])
        except OSError as e:
            root = str(e)
        t.is_(p["root"], root, "%s: root= is the process's /proc root" % role)


def control_connections_are_bounded_and_freed(t, d):
    held = []
    try:
        for i in range(64):
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.connect(d.sock)
            held.append(u)
        time.sleep(0.2)     # let the control process accept them all
        rc, out, err = d.ctl("show", "queue")
        t.is_(rc, 1, "with 64 idle control clients, one more request exits 1",
              out + err)
        t.like(err, r"too many control clients",
               "and says \"too many control clients\"")
    finally:
        for u in held:
            u.close()

    def served():
        return d.ctl("show", "queue")[0] == 0
    try:
        sqtest.wait_for("a control request to be served again", served,
                        interval=0.2)
        t.ok(True, "once they close, requests are served again")
    except sqtest.WaitTimeout as e:
        t.ok(False, "once they close, requests are served again", str(e))


def show_stats_answers(t, d):
    rc, out, err = d.ctl("show", "stats")
    t.is_(rc, 0, "show stats exits 0", err)
    t.ok(out.strip() != "", "and prints something", out)


def show_queue_is_empty_at_first(t, d):
    rc, out, err = d.ctl("show", "queue")
    t.is_(rc, 0, "show queue exits 0", err)
    t.is_(out.strip(), "", "the queue of a new daemon is empty")


def queue_remote(t, d, who):
    m = make_message("for %s" % who, "stays queued\n", to=who)
    code, text = d.send(m, rcpts=[who], source=RELAY)
    t.is_(code, 250, "a message to %s from the relay client -> 250" % who,
          text)
    try:
        e = sqtest.wait_for("%s in show queue after its first try" % who,
                            lambda: [x for x in d.queue() or []
                                     if x.get("rcpt") == who and
                                     x["tries"] >= 1])[0]
    except sqtest.WaitTimeout as ex:
        t.ok(False, "show queue lists %s" % who, str(ex),
             repr(d.ctl("show", "queue")))
        return None
    t.ok(True, "show queue lists %s (id=%s, tries=%d)" % (who, e["id"],
                                                         e["tries"]))
    return e


def tries_of(d, msgid):
    return {x["rcpt"]: x["tries"] for x in d.queue() or []
            if x.get("id") == msgid}


def schedule_retries_one_message_now(t, d):
    a = queue_remote(t, d, "a@remote.test")
    b = queue_remote(t, d, "b@remote.test")
    if a is None or b is None:
        return
    before_b = b["tries"]
    rc, out, err = d.ctl("schedule", a["id"])
    t.is_(rc, 0, "schedule %s exits 0" % a["id"], err)
    try:
        sqtest.wait_for("another try of message %s" % a["id"], lambda:
                        tries_of(d, a["id"]).get("a@remote.test", 0) >
                        a["tries"])
        t.ok(True, "message %s is tried again (retry-min is 300s)" % a["id"])
    except sqtest.WaitTimeout as e:
        t.ok(False, "message %s is tried again" % a["id"], str(e))
    t.is_(tries_of(d, b["id"]).get("b@remote.test"), before_b,
          "the other message is left alone")
    rc, out, err = d.ctl("schedule", "all")
    t.is_(rc, 0, "schedule all exits 0", err)
    try:
        sqtest.wait_for("another try of message %s" % b["id"], lambda:
                        tries_of(d, b["id"]).get("b@remote.test", 0) >
                        before_b)
        t.ok(True, "schedule all tries message %s again" % b["id"])
    except sqtest.WaitTimeout as e:
        t.ok(False, "schedule all tries message %s again" % b["id"], str(e))
    rc, out, err = d.ctl("schedule", "987654321987")
    t.is_(rc, 1, "schedule of an unknown id exits 1", err)


def remove_drops_one_message_then_all(t, d):
    q = [x for x in d.queue() or [] if x.get("id")]
    if not t.ok(len(q) >= 2, "two messages are queued", repr(q)):
        return
    victim = q[0]["id"]
    rc, out, err = d.ctl("remove", victim)
    t.is_(rc, 0, "remove %s exits 0" % victim, err)
    left = [x["id"] for x in d.queue() or [] if x.get("id")]
    t.ok(victim not in left and left, "show queue no longer lists %s, the "
         "others stay" % victim, repr(left))
    rc, out, err = d.ctl("remove", victim)
    t.is_(rc, 1, "remove %s again exits 1" % victim, err)
    rc, out, err = d.ctl("remove", "all")
    t.is_(rc, 0, "remove all exits 0", err)
    t.is_([x for x in d.queue() or [] if x.get("id")], [],
          "the queue is empty")


def pause_smtp_holds_new_sessions_until_resume(t, d):
    old = d.client()
    old.greeting()
    t.reply(old.ehlo(), 250, None, "a session opened before the pause", old)
    rc, out, err = d.ctl("pause", "smtp")
    t.is_(rc, 0, "pause smtp exits 0", err)
    new = d.client()
    quiet = new.quiet_for(3)
    r = None if quiet else new.reply(timeout=5)
    t.ok(quiet or (r is not None and r.code == 421),
         "while paused a new connection is not greeted with 220 (silence "
         "or 421)", "got %r" % r)
    m = make_message("during pause", "old session\n")
    old.cmd("MAIL FROM:<%s>" % SENDER)
    old.cmd("RCPT TO:<%s>" % YOU)
    old.cmd("DATA")
    old.send(sqtest.dot_stuff(sqtest.crlf(m)) + b".\r\n")
    t.reply(old.reply(), 250, None, "the session opened before the pause "
            "still delivers a message", old)
    old.cmd("QUIT")
    old.close()
    rc, out, err = d.ctl("resume", "smtp")
    t.is_(rc, 0, "resume smtp exits 0", err)
    if quiet:
        t.reply(new.reply(), 220, None, "the held connection is greeted "
                "with 220 after resume", new)
    new.close()
    m2 = make_message("after resume", "new session\n")
    code, text = d.send(m2)
    t.is_(code, 250, "after resume a new session delivers a message", text)
    expect_delivered(t, d.maildir, m, SENDER, YOU, "message during pause")
    expect_delivered(t, d.maildir, m2, SENDER, YOU, "message after resume")


def log_verbose_and_brief_exit_0(t, d):
    for what in ("verbose", "brief"):
        rc, out, err = d.ctl("log", what)
        t.is_(rc, 0, "log %s exits 0" % what, err)


def reload_exits_0(t, d):
    rc, out, err = d.ctl("reload")
    t.is_(rc, 0, "reload (of an unchanged, good configuration) exits 0", err)
    m = make_message("after reload", "still here\n")
    code, text = d.send(m)
    t.is_(code, 250, "the daemon serves after the reload", text)


def stop_stops_the_daemon(t, d):
    pids = d.processes()
    rc, out, err = d.ctl("stop")
    t.is_(rc, 0, "stop exits 0", err)
    st = d.wait_exit()
    t.is_(st, 0, "sqmaild exits with status 0")
    left = d.wait_orphans_gone()
    t.ok(not left, "no process of the daemon is left (had %d)" % len(pids),
         d.describe(left))
    rc, out, err = d.ctl("show", "queue")
    t.is_(rc, 69, "afterwards sqmailctl show queue exits 69 (no daemon)", err)


def control_socket_refuses_other_users(t, d):
    if os.getuid() != 0:
        t.skip("other users are refused, the control group admitted",
               "needs root to run sqmailctl as other users")
        return
    nobody = pwd.getpwnam("nobody")
    ctlgrp = grp.getgrnam(CTL_GROUP)
    for args in (["show", "queue"], ["pause", "smtp"], ["stop"]):
        rc, out, err = d.ctl_as(nobody.pw_uid, nobody.pw_gid, *args)
        t.is_(rc, 1, "as nobody: sqmailctl %s exits 1" % " ".join(args),
              out + err)
        t.like(err, r"(?i)permission denied", "and says permission denied")
    t.ok(d.running(), "sqmaild is still running after nobody's stop")
    c = d.client()
    t.reply(c.greeting(), 220, None, "and smtp is not paused", c)
    c.close()
    rc, out, err = d.ctl_as(nobody.pw_uid, ctlgrp.gr_gid, "show", "queue")
    t.is_(rc, 0, "as nobody with the control group (%s) as primary group: "
          "show queue exits 0" % CTL_GROUP, out + err)
    rc, out, err = d.ctl_as(0, 0, "show", "stats")
    t.is_(rc, 0, "as root: show stats exits 0", out + err)


def main():
    t = sqtest.Tap()
    opts = ""
    if os.getuid() == 0 and sqtest.ensure_group(CTL_GROUP):
        opts = ' group "%s"' % CTL_GROUP
    d = sqtest.Daemon(t, extra="relay from { 127.0.0.2/32 }\n",
                      retry_min="300s", retry_max="600s",
                      control_opts=opts).start()
    sqtest.run(t, [
        malformed_command_lines_exit_64,
        unreachable_control_socket_exits_69,
        show_processes_lists_every_role,
        control_socket_refuses_other_users,
        control_connections_are_bounded_and_freed,
        show_stats_answers,
        show_queue_is_empty_at_first,
        schedule_retries_one_message_now,
        remove_drops_one_message_then_all,
        pause_smtp_holds_new_sessions_until_resume,
        log_verbose_and_brief_exit_0,
        reload_exits_0,
        stop_stops_the_daemon,
    ], d)


if __name__ == "__main__":
    main()
