#!/usr/bin/env python3
"""
Privilege separation, started as root (only then; otherwise the whole file
is skipped, saying so): every child runs as the configured user (the queue
as the queue user) with all of real, effective, saved and file-system ids
dropped, no supplementary groups but its own, chrooted where the DESIGN
says (smtp, mda, mta, control in the empty directory; queue in the spool);
`show processes` says the same as /proc; a delivery agent runs as the
recipient, and the delivered file belongs to the recipient.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
from sqtest import make_message, expect_delivered

SENDER = "sender@example.test"
RCPT_USER = "sqtestrcpt"

CONF = sqtest.ROOT_CONF_HEAD + """\
relay from {{ 127.0.0.2/32 }}
# no DNS server here: remote mail waits (tests stay on loopback)
dns servers "127.0.0.1:9"
queue retry-min 1s
queue retry-max 2s
agent idle 30s
domain "example.test" {{
	deliver maildir "{dir}/mail/%u/Maildir/"
}}
"""

CHROOTED = ("smtp", "mda", "mta", "control")


def ids(status, key):
    return [int(x) for x in status.get(key, "").split()]


def children_run_as_configured(t, d, du, qu):
    rc, out, err = d.ctl("show", "processes")
    t.is_(rc, 0, "show processes exits 0", err)
    procs = {}
    for line in out.splitlines():
        m = re.match(r"^(\S+) pid=(\d+) uid=(\d+) gid=(\d+) root=(\S+)$", line)
        if m:
            procs[m.group(1)] = dict(pid=int(m.group(2)), uid=int(m.group(3)),
                                     gid=int(m.group(4)), root=m.group(5))
    empty = os.path.realpath(d.path("empty"))
    spool = os.path.realpath(d.spool)
    for role in ("smtp", "lka", "queue", "mda", "mta", "control"):
        p = procs.get(role)
        if not t.ok(p, "show processes lists %s" % role, out):
            continue
        pw = qu if role == "queue" else du
        st = sqtest.proc_status(p["pid"]) or {}
        t.ok(ids(st, "Uid") == [pw.pw_uid] * 4,
             "%s runs as %s: real, effective, saved and fs uid %d" % (
                 role, pw.pw_name, pw.pw_uid), "Uid: %s" % st.get("Uid"))
        t.ok(ids(st, "Gid") == [pw.pw_gid] * 4,
             "%s: real, effective, saved and fs gid %d" % (role, pw.pw_gid),
             "Gid: %s" % st.get("Gid"))
        t.ok(ids(st, "Groups") in ([], [pw.pw_gid]),
             "%s: no supplementary group but its own" % role,
             "Groups: %s" % st.get("Groups"))
        t.is_((p["uid"], p["gid"]), (pw.pw_uid, pw.pw_gid),
              "%s: show processes gives the same uid and gid" % role)
        try:
            root = os.readlink("/proc/%d/root" % p["pid"])
        except OSError as e:
            root = "(%s)" % e
        t.is_(p["root"], root, "%s: show processes root= is its /proc root"
              % role)
        if role in CHROOTED:
            t.is_(root, empty, "%s is chrooted in the empty directory" % role)
        elif role == "queue":
            t.is_(root, spool, "queue is chrooted in the spool")
    parent = sqtest.proc_status(d.proc.pid) or {}
    t.ok(ids(parent, "Uid")[:1] == [0], "the parent keeps root",
         "Uid: %s" % parent.get("Uid"))


def spool_belongs_to_the_queue_user(t, d, du, qu):
    m = make_message("stays in the spool", "remote\n", to="far@remote.test")
    code, text = d.send(m, rcpts=["far@remote.test"], source="127.0.0.2")
    t.is_(code, 250, "a remote message (it stays queued) -> 250", text)
    try:
        sqtest.wait_for("far@remote.test in show queue", lambda: [
            x for x in d.queue() or [] if x.get("rcpt") == "far@remote.test"])
    except sqtest.WaitTimeout as e:
        t.ok(False, "show queue lists far@remote.test", str(e))
    files = [os.path.join(r, f) for r, _, fs in os.walk(d.spool) for f in fs]
    t.ok(files, "the spool holds files", repr(files))
    wrong = []
    for root, dirs, files in os.walk(d.spool):
        if root == d.spool:
            # root's offline drop box and its rejects (sendmail(8))
            dirs[:] = [x for x in dirs if x not in ("offline", "offline.bad")]
        for n in [root] + [os.path.join(root, x) for x in dirs + files]:
            try:
                st = os.lstat(n)
            except FileNotFoundError:
                continue        # renamed or finished meanwhile
            if st.st_uid != qu.pw_uid:
                wrong.append("%s uid %d" % (n, st.st_uid))
    t.ok(not wrong, "everything in the spool belongs to %s" % qu.pw_name,
         "\n".join(wrong[:20]))


def delivery_runs_as_the_recipient(t, d, du, qu):
    ru = sqtest.ensure_user(RCPT_USER)
    if not t.ok(ru, "the recipient user %s exists (useradd)" % RCPT_USER):
        return
    # qmail's rule: a passwd user gets mail only with a home it owns.
    if not os.path.isdir(ru.pw_dir):
        os.makedirs(ru.pw_dir, mode=0o755)
    os.chown(ru.pw_dir, ru.pw_uid, ru.pw_gid)
    md = d.path("mail", RCPT_USER, "Maildir")
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(md, sub), exist_ok=True)
    for r, ds, fs in os.walk(d.path("mail", RCPT_USER)):
        for n in [r] + [os.path.join(r, x) for x in ds + fs]:
            os.lchown(n, ru.pw_uid, ru.pw_gid)
    rcpt = "%s@example.test" % RCPT_USER
    m = make_message("privileged delivery", "to a real user\n", to=rcpt)
    code, text = d.send(m, rcpts=[rcpt])
    t.is_(code, 250, "a message to %s -> 250" % rcpt, text)
    got = expect_delivered(t, md, m, SENDER, rcpt, "message to %s" % rcpt)
    if got is not None:
        st = os.stat(got.path)
        t.is_((st.st_uid, st.st_gid), (ru.pw_uid, ru.pw_gid),
              "the delivered file belongs to %s" % RCPT_USER)
    agents = [p for p in d.processes()
              if ids(sqtest.proc_status(p) or {}, "Uid")[:1] == [ru.pw_uid]]
    if t.ok(agents, "a delivery agent running as %s is there (agent idle "
            "30s)" % RCPT_USER, "processes: %s" % d.describe(d.processes())):
        st = sqtest.proc_status(agents[0]) or {}
        t.ok(ids(st, "Uid") == [ru.pw_uid] * 4 and
             ids(st, "Gid") == [ru.pw_gid] * 4,
             "the agent has dropped every uid and gid to %s" % RCPT_USER,
             "Uid: %s Gid: %s" % (st.get("Uid"), st.get("Gid")))


def main():
    t = sqtest.Tap()
    du, qu = sqtest.require_root(t, "to start sqmaild privileged")
    d = sqtest.root_daemon(t, CONF)
    os.makedirs(d.path("mail"), mode=0o755)
    d.start()
    sqtest.run(t, [
        children_run_as_configured,
        spool_belongs_to_the_queue_user,
        delivery_runs_as_the_recipient,
        sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
    ], d, du, qu)


if __name__ == "__main__":
    main()
