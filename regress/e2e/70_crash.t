#!/usr/bin/env python3
"""
Crash safety: a sender streams messages while, at a random moment, the
whole daemon is killed with SIGKILL (even rounds) or only its queue process
is (odd rounds), and in two last rounds only the mda and only a delivery
agent; then it is started again on the same spool.  At the end
every message that got a 250 must be in the Maildir: a lost one fails the
test, a duplicate is reported as a diagnostic (allowed: a kill between the
delivery and its record can repeat it).
"""
import os
import random
import re
import smtplib
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
from sqtest import make_message, crlf

ROUNDS = 12
PER_ROUND_MAX = 500
SENDER = "sender@example.test"
YOU = "you@example.test"
QPS = []                # the qp id of every 250, across all rounds


class Sender(threading.Thread):
    """Sends messages back to back, reconnecting after errors."""

    def __init__(self, d, rnd, acked):
        super().__init__(daemon=True)
        self.d, self.rnd, self.acked = d, rnd, acked
        self.halt = threading.Event()
        self.sent = self.errors = self.refused = 0
        self.qps = QPS

    def run(self):
        i = 0
        while not self.halt.is_set() and i < PER_ROUND_MAX:
            try:
                s = smtplib.SMTP(timeout=10 * sqtest.SCALE,
                                 local_hostname=sqtest.CLIENT_HELO)
                s.connect("127.0.0.1", self.d.port)
                s.ehlo()
                while not self.halt.is_set() and i < PER_ROUND_MAX:
                    mid = "<crash-%d-%d@sqtest>" % (self.rnd, i)
                    i += 1
                    m = make_message("crash %d/%d" % (self.rnd, i), "round %d "
                                     "message %d\n" % (self.rnd, i), msgid=mid)
                    code, text = s.mail(SENDER)
                    if code == 250:
                        code, text = s.rcpt(YOU)
                    if code == 250:
                        code, text = s.data(crlf(m))
                    self.sent += 1
                    if code == 250:
                        self.acked.append(mid)
                        self.qps.append(sqtest.qp_of(
                            text.decode("latin-1")))
                    else:
                        self.refused += 1
                        s.rset()
                s.quit()
            except (OSError, smtplib.SMTPException):
                self.errors += 1
                time.sleep(0.05)


def role_pid(d, role):
    """The pid of a child role: its process title, else show processes."""
    pid = d.role_pids().get(role)
    if pid or role == "agent":
        return pid
    rc, out, err = d.ctl("show", "processes", timeout=5)
    m = re.search(r"(?m)^%s pid=(\d+)" % role, out or "")
    return int(m.group(1)) if m else None


# What each round kills: the whole daemon and the queue alternate (the
# rounds the spec asks for), then the mda and a delivery agent once each.
KINDS = ["whole", "queue"] * (ROUNDS // 2) + ["mda", "agent"]


def kill_child(t, d, rnd, role):
    """
    kill -9 one child.  For queue and mda the parent must log it and then
    exit (or respawn it); an agent's death must only fail (and later
    retry) its delivery.  Returns (what was killed, processes left).
    """
    pid = role_pid(d, role)
    if not t.ok(pid, "round %d: the %s process is found" % (rnd, role),
                "processes: %s" % d.describe(d.processes())):
        return "nothing", d.kill9()
    mark = d.log_mark()
    os.kill(pid, 9)
    what = "the %s process (pid %d)" % (role, pid)
    if role == "agent":
        time.sleep(0.5)
        t.ok(d.running(), "round %d: sqmaild keeps running after an agent "
             "is killed" % rnd)
        return what, []
    st = d.wait_exit(15)
    if st is None:
        t.note("round %d: the parent still runs after the %s died "
               "(respawned?)" % (rnd, role))
        left = []
    else:
        left = d.wait_orphans_gone(10)
    t.ok(d.wait_for_log(r"^(?=.*\b%s\b)(?=.*(died|exit|signal|kill|terminat|"
                        r"lost)).*$" % role, since=mark, seconds=5),
         "round %d: the parent logs that the %s process died (a line naming "
         "it)" % (rnd, role), "the log after the kill ends with:\n" +
         "\n".join(d.log_text(mark).splitlines()[-5:]))
    return what, left


def crash_rounds_lose_no_acknowledged_message(t, d):
    acked = []
    seed = os.environ.get("SQTEST_SEED", str(int(time.time())))
    t.note("SQTEST_SEED=%s" % seed)
    rng = random.Random(seed)
    for rnd, kind in enumerate(KINDS):
        if d.start(fatal=False) is None:
            t.ok(False, "round %d: sqmaild starts%s" % (
                rnd, " on the spool left by the previous kill" if rnd else ""))
            return acked
        before = len(acked)
        s = Sender(d, rnd, acked)
        s.start()
        time.sleep(rng.uniform(0.2, 1.5))
        if kind == "whole":
            left = d.kill9()
            what = "the whole daemon"
        else:
            what, left = kill_child(t, d, rnd, kind)
            if kind == "agent":
                time.sleep(rng.uniform(0.2, 0.5))   # traffic goes on
        s.halt.set()
        s.join(30)
        t.ok(not s.is_alive(), "round %d: the sender thread ended" % rnd)
        t.ok(not left, "round %d: after killing %s no process of the daemon "
             "is left" % (rnd, what), d.describe(left))
        if d.running():
            d.stop("round %d: after killing %s the daemon still stops "
                   "cleanly" % (rnd, what))
        for p in d.orphans():
            sqtest._kill(p, 9)
        t.note("round %d: killed %s after %d messages (%d acknowledged, %d "
               "refused, %d connection errors)" % (rnd, what, s.sent,
                                                    len(acked) - before,
                                                    s.refused, s.errors))
    return acked


def every_acknowledged_message_is_delivered(t, d, acked):
    t.ok(len(acked) > 0, "some messages were acknowledged (%d)" % len(acked))
    if d.start(fatal=False) is None:
        t.ok(False, "sqmaild starts after the last kill")
        return
    want = set(acked)

    def all_there():
        have = {m.msgid for m in d.messages()}
        return want <= have
    try:
        sqtest.wait_for("all %d acknowledged messages in the Maildir"
                        % len(want), all_there, seconds=120, interval=0.5)
    except sqtest.WaitTimeout:
        pass
    counts = {}
    for m in d.messages():
        counts[m.msgid] = counts.get(m.msgid, 0) + 1
    lost = sorted(x for x in want if x not in counts)
    dups = {k: v for k, v in counts.items() if k in want and v > 1}
    t.ok(not lost, "every one of the %d acknowledged messages is delivered"
         % len(want), "%d lost, e.g. %s" % (len(lost), ", ".join(lost[:20])))
    if dups:
        t.diag("%d acknowledged message(s) delivered more than once (allowed):"
               " %s" % (len(dups), ", ".join("%s x%d" % kv for kv in
                                             list(dups.items())[:20])))
    qps = [q for q in QPS if q]
    t.is_(len(set(qps)), len(qps), "the %d acknowledged messages had %d "
          "distinct qp ids (ids stay unique across restarts)" % (
              len(qps), len(set(qps))))
    bad = [m for m in d.messages() if m.error]
    t.ok(not bad, "every delivered file is well formed",
         "%r" % [b.error for b in bad[:5]])
    d.stop()


def main():
    t = sqtest.Tap()
    d = sqtest.Daemon(t)
    acked = []
    try:
        acked = crash_rounds_lose_no_acknowledged_message(t, d)
    except Exception:
        import traceback
        t.ok(False, "crash rounds (raised)", traceback.format_exc())
        d.kill_all()
    sqtest.run(t, [every_acknowledged_message_is_delivered], d, acked)


if __name__ == "__main__":
    main()
