#!/usr/bin/env python3
"""
Queue recovery at start-up: committed messages survive a restart with
their ids, a leftover file in the incoming area is removed, a corrupt
envelope is moved to quarantine with a log line, and the daemon keeps
serving.  The spool layout is found, not assumed: the incoming area is the
spool directory named "incoming", an envelope is the file that names its
recipient and holds no message text.
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
from sqtest import make_message, expect_delivered

SENDER = "sender@example.test"
YOU = "you@example.test"
RELAY = "127.0.0.2"
GARBAGE = b"\x00\x01\xffSQTEST-CORRUPT-ENVELOPE\n{{{not an envelope"
LEFTOVER = b"SQTEST-LEFTOVER-INCOMING half a message"


def spool_files(d):
    out = []
    for root, dirs, files in os.walk(d.spool):
        for f in files:
            out.append(os.path.join(root, f))
    return sorted(out)


def read(p):
    try:
        with open(p, "rb") as f:
            return f.read()
    except OSError:
        return b""


def queue_remote(t, d, rcpt, marker):
    m = make_message("recovery " + marker, "BODY-%s\n" % marker,
                     to="undisclosed-recipients:;")
    code, text = d.send(m, rcpts=[rcpt], source=RELAY)
    t.is_(code, 250, "a message to %s from the relay client -> 250" % rcpt,
          text)
    try:
        e = sqtest.wait_for("%s in show queue" % rcpt, lambda: [
            x for x in d.queue() or [] if x.get("rcpt") == rcpt and
            x["tries"] >= 1])[0]
        return e
    except sqtest.WaitTimeout as ex:
        t.ok(False, "show queue lists %s" % rcpt, str(ex))
        return None


def recovery_at_start(t, d):
    keep = queue_remote(t, d, "keep@remote.test", "KEEP")
    bad = queue_remote(t, d, "corrupt@remote.test", "CORRUPT")
    d.stop("sqmaild stops cleanly with two messages queued")
    if keep is None or bad is None:
        return
    files = spool_files(d)
    listing = "spool files:\n" + "\n".join(
        os.path.relpath(f, d.spool) for f in files)
    envs = [f for f in files if b"corrupt@remote.test" in read(f) and
            b"BODY-CORRUPT" not in read(f)]
    incoming = [os.path.join(r, x) for r, ds, _ in os.walk(d.spool)
                for x in ds if x == "incoming"]
    if not t.ok(envs, "the spool holds an envelope for corrupt@remote.test "
                "(a file naming it without the message text)", listing):
        return
    if not t.ok(incoming, "the spool has an incoming directory", listing):
        return
    env = envs[0]
    with open(env, "wb") as f:
        f.write(GARBAGE)
    leftover = os.path.join(incoming[0], "%016x" % random.getrandbits(63))
    with open(leftover, "wb") as f:
        f.write(LEFTOVER)
    d.chown(leftover)
    mark = d.log_mark()
    d.start()

    try:
        sqtest.wait_for("the leftover incoming file to go",
                        lambda: not os.path.exists(leftover))
        t.ok(True, "a leftover file in incoming/ is removed at start-up")
    except sqtest.WaitTimeout as e:
        t.ok(False, "a leftover file in incoming/ is removed at start-up",
             str(e))
    t.ok(d.wait_for_log(r"(?i)quarantin", since=mark),
         "the log says the corrupt envelope went to quarantine",
         d.log_text(mark)[-3000:])
    t.ok(not os.path.exists(env) or read(env) != GARBAGE,
         "the corrupt envelope is gone from %s" % os.path.relpath(
             env, d.spool))
    moved = [f for f in spool_files(d) if read(f) == GARBAGE]
    t.ok(moved and all("quarantin" in f.lower() for f in moved),
         "it is kept in a quarantine directory of the spool",
         "files with its bytes: %r" % moved)
    q = d.queue() or []
    t.ok([x for x in q if x.get("id") == keep["id"] and
          x.get("rcpt") == "keep@remote.test"],
         "the intact message is still queued under its id %s" % keep["id"],
         repr(q))
    t.ok(not [x for x in q if x.get("rcpt") == "corrupt@remote.test"],
         "the quarantined one is not", repr(q))
    m = make_message("after recovery", "served\n")
    code, text = d.send(m)
    t.is_(code, 250, "the daemon serves after recovery: 250", text)
    expect_delivered(t, d.maildir, m, SENDER, YOU, "message after recovery")


def client_gone_in_data_leaves_nothing_in_incoming(t, d):
    incoming = os.path.join(d.spool, "incoming")
    c = d.client()
    c.greeting()
    c.ehlo()
    c.cmd("MAIL FROM:<%s>" % SENDER)
    c.cmd("RCPT TO:<%s>" % YOU)
    t.reply(c.cmd("DATA"), 354, None, "C: DATA -> 354", c)
    mid = "<gone-in-data.%d@sqtest>" % random.getrandbits(40)
    c.send("Subject: half\r\nMessage-ID: %s\r\n\r\n" % mid + "x" * 70000)
    c.close()
    try:
        sqtest.wait_for("incoming/ to be empty", lambda: os.path.isdir(
            incoming) and not os.listdir(incoming))
        t.ok(True, "after a client vanishes in DATA, incoming/ is empty again")
    except sqtest.WaitTimeout as e:
        t.ok(False, "after a client vanishes in DATA, incoming/ is empty again",
             str(e), "incoming/: %r" % (os.listdir(incoming)
                                        if os.path.isdir(incoming) else None))
    m = make_message("after the vanished client", "served\n")
    code, text = d.send(m)
    t.is_(code, 250, "the next client is served", text)
    expect_delivered(t, d.maildir, m, SENDER, YOU, "message after it")
    t.ok(not [x for x in d.messages() if x.msgid == mid],
         "the half message is not delivered")


def main():
    t = sqtest.Tap()
    d = sqtest.Daemon(t, extra="relay from { 127.0.0.2/32 }\n",
                      retry_min="300s", retry_max="600s").start()
    sqtest.run(t, [
        recovery_at_start,
        client_gone_in_data_leaves_nothing_in_incoming,
        sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
    ], d)


if __name__ == "__main__":
    main()
