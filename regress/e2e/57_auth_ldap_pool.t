#!/usr/bin/env python3
"""
The pool of LDAP connections behind auth ldap (lka/lka_auth_ldap.c),
against a real slapd on a loopback port (regress/e2e/ldappeer.py) that
logs every connection and bind (slapd -d stats: conn=N lines), started
as root (slapd and its packages; otherwise the whole file is skipped,
saying so).

Three listeners: search mode as a reader with "pool 2", bind-dn mode
with the default pool (4), and bind-dn mode with "pool 1" and "timeout
2s" against a Python listener that accepts and never answers.

- Many checks, one after another and at once, reuse few connections:
  slapd's log shows no more new connections than the pool's size, and
  each of them carried several users' binds; lka has no more worker
  processes than the pools' sizes together.
- In search mode every search runs as the reader: after a user's bind
  the connection binds as the reader again.
- slapd stopped: 454 4.7.0; started again on the same port: checks
  succeed again (within a bounded wait) from the same running sqmaild,
  and an idle pooled connection that slapd's restart broke is replaced
  within the check that finds it broken (235 at the first try).
- The silent server: 454 4.7.0 and a log line saying the worker got no
  verdict and was killed; a second check while the only worker hangs
  waits its turn and gets 454 too; once a real slapd answers on that
  port the pool recovers (235) without a restart of sqmaild.
"""
import base64
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest                                       # noqa: E402
import ldappeer                                     # noqa: E402

ALICE_PW = "alice pw 1"
BOB_PW = "bob-pw-2"
READER_PW = "reader pw"
SUFFIX = ldappeer.SUFFIX
PEOPLE = "ou=people," + SUFFIX
READER = "cn=reader," + SUFFIX

EXTRA = """\
limit auth-failures 0
listen on 127.0.0.1 port {searchport} auth ldap "{url}" base "{suffix}" filter "(uid=%u)" search-dn "{reader}" search-password "{readerpw}" pool 2 auth plaintext
listen on 127.0.0.1 port {bindport} auth ldap "{url}" bind-dn "uid=%u,{people}" auth plaintext
listen on 127.0.0.1 port {hungport} auth ldap "ldap://127.0.0.1:{silentport}" bind-dn "uid=%u,{people}" timeout 2s pool 1 auth plaintext
"""


def ldif():
    h = ldappeer.slappasswd
    return """\
dn: {suffix}
objectClass: dcObject
objectClass: organization
dc: example
o: example

dn: {people}
objectClass: organizationalUnit
ou: people

dn: {reader}
objectClass: person
cn: reader
sn: reader
userPassword: {readerpw}

dn: uid=alice,{people}
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A
userPassword: {alice}

dn: uid=bob,{people}
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: B
userPassword: {bob}
""".format(suffix=SUFFIX, people=PEOPLE, reader=READER,
           readerpw=h(READER_PW), alice=h(ALICE_PW), bob=h(BOB_PW))


def b64(s):
    return base64.b64encode(s.encode()).decode()


def auth(port, user, pw):
    c = sqtest.Client(port)
    try:
        c.greeting()
        c.ehlo()
        return c.cmd("AUTH PLAIN " + b64("\0" + user + "\0" + pw))
    finally:
        c.close()


def code(port, user, pw):
    try:
        r = auth(port, user, pw)
        return r.code if r is not None else None
    except Exception as e:
        return repr(e)


def at_once(port, n):
    """n sessions at once, alice and bob in turn: their codes, sorted."""
    codes = []
    lock = threading.Lock()

    def one(i):
        c = code(port, "alice" if i % 2 else "bob",
                 ALICE_PW if i % 2 else BOB_PW)
        with lock:
            codes.append(c)
    ths = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(sqtest.TIMEOUT)
    return sorted(codes, key=str)


def user_binds(peer, mark):
    return peer.binds(mark, "uid=")


def workers(d):
    """lka's worker processes (its children)."""
    lka = d.role_pids().get("lka")
    return [] if lka is None else sqtest.descendants(lka)


class Silent:
    """A TCP listener that accepts and never says a word."""

    def __init__(self, port=0):
        self.s = socket.socket()
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.s.bind(("127.0.0.1", port))
        self.s.listen(16)
        self.port = self.s.getsockname()[1]
        self.conns = []
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        try:
            self.s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.s.close()
        self.th.join(5)
        for c in self.conns:
            c.close()


def sequential_checks_reuse_one_connection(t, d, x):
    peer = x["peer"]
    mark = peer.log_mark()
    got = []
    for i in range(10):
        got.append(code(x["searchport"], "alice", ALICE_PW))
        got.append(code(x["searchport"], "bob", BOB_PW))
        got.append(code(x["searchport"], "alice", BOB_PW))
    t.is_(got, [235, 235, 535] * 10, "30 checks one after another in "
          "search mode: 235, 235, 535 each round")
    binds = sqtest.wait_for("slapd to log 30 user binds", lambda: (
        len(user_binds(peer, mark)) >= 30 and user_binds(peer, mark)))
    conns = peer.accepts(mark)
    t.ok(1 <= len(conns) <= 2, "slapd accepted 1 or 2 connections for "
         "them (pool 2), not 30", "accepted: %r" % conns)
    t.ok(len(set(c for c, _ in binds)) <= 2, "the 30 user binds came "
         "over at most 2 connections", "binds: %r" % binds[:40])


def search_runs_as_the_reader(t, d, x):
    peer = x["peer"]
    mark = peer.log_mark()
    t.is_(code(x["searchport"], "alice", ALICE_PW), 235, "alice 235")
    t.is_(code(x["searchport"], "bob", BOB_PW), 235, "then bob 235: his "
          "search did not run as alice")
    # The worker binds as the reader again once a verdict is out.

    def reader_after_bob():
        binds = peer.binds(mark)
        for i, (c, dn) in enumerate(binds):
            if dn == "uid=bob," + PEOPLE:
                later = [b for b in binds[i + 1:] if b[0] == c]
                return bool(later) and later[0][1] == READER
        return False
    t.ok(sqtest.wait_for("a bind after bob's on his connection",
                         reader_after_bob),
         "after a user's bind the connection binds as the reader again")


def concurrent_checks_stay_within_the_pool(t, d, x):
    peer = x["peer"]
    mark = peer.log_mark()
    t.is_(at_once(x["searchport"], 12), [235] * 12, "12 sessions at once "
          "against a pool of 2: all 235 (the rest waited their turn)")
    t.is_(at_once(x["bindport"], 12), [235] * 12, "12 sessions at once "
          "in bind-dn mode, default pool: all 235")
    binds = sqtest.wait_for("slapd to log 24 user binds", lambda: (
        len(user_binds(peer, mark)) >= 24 and user_binds(peer, mark)))
    conns = peer.accepts(mark)
    # The search pool may have opened its second connection here.
    t.ok(len(conns) <= 1 + 4, "slapd accepted at most 5 new connections "
         "for 24 checks (pool 2 had one open, default pool 4)",
         "accepted: %r" % conns)
    t.ok(len(set(c for c, _ in binds)) <= 2 + 4, "the 24 user binds came "
         "over at most 6 connections", "binds: %r" % binds)
    n = len(workers(d))
    t.ok(1 <= n <= 2 + 4 + 1, "lka has %d worker processes, no more than "
         "the pools' sizes (2 + 4 + 1)" % n)


def slapd_restart(t, d, x):
    peer = x["peer"]
    pid = d.proc.pid
    peer.stop()
    t.ok(not peer.running(), "slapd stopped")
    r = auth(x["searchport"], "alice", ALICE_PW)
    t.reply(r, 454, "4.7.0", "search mode, slapd down: 454 4.7.0")
    r = auth(x["searchport"], "bob", BOB_PW)
    t.reply(r, 454, "4.7.0", "again: 454 4.7.0")
    t.like(d.log_text(), r"lka: auth: ldap: ldap://127\.0\.0\.1:%d: .*"
           r"Can't contact LDAP server" % peer.port,
           "the log says the server cannot be reached")
    peer.start()
    t.ok(peer.running(), "slapd started again on the same port")
    mark = peer.log_mark()
    got = sqtest.wait_for("a 235 in search mode after the restart",
                          lambda: code(x["searchport"], "alice",
                                       ALICE_PW) == 235, interval=0.3)
    t.ok(got, "search mode: 235 again once slapd is back")
    t.is_(d.proc.pid, pid, "the same sqmaild (not restarted)")
    t.ok(d.running(), "sqmaild still runs")
    # bind-dn mode's workers still hold connections the restart broke.
    t.is_(code(x["bindport"], "bob", BOB_PW), 235, "bind-dn mode, first "
          "check after the restart: 235 (the broken idle connection is "
          "replaced within the check)")
    t.ok(user_binds(peer, mark), "slapd saw the binds after its restart")


def silent_server_times_out_and_pool_recovers(t, d, x):
    results = {}

    def one(k):
        results[k] = code(x["hungport"], "alice", ALICE_PW)
    first = threading.Thread(target=one, args=("first",))
    first.start()
    time.sleep(0.3)     # only the order: the second waits behind it
    second = threading.Thread(target=one, args=("second",))
    second.start()
    first.join(sqtest.TIMEOUT)
    second.join(sqtest.TIMEOUT)
    t.is_(results.get("first"), 454, "a server that never answers: 454 "
          "after the timeout")
    t.is_(results.get("second"), 454, "a check waiting for the only "
          "worker meanwhile: 454 too")
    t.like(d.log_text(), r"ldap://127\.0\.0\.1:%d: no verdict in 2 s; "
           r"worker \d+ killed" % x["silentport"],
           "the log says the worker had no verdict and was killed")
    t.is_(code(x["searchport"], "alice", ALICE_PW), 235,
          "meanwhile the other pools still work")
    # A real server on that port now: a new worker connects to it.
    x["silent"].close()
    peer2 = ldappeer.LdapPeer(ldif(), port=x["silentport"])
    x["peer2"] = peer2
    try:
        peer2.start()
    except ldappeer.LdapPeerError as e:
        t.ok(False, "second slapd on the silent port", str(e))
        return
    got = sqtest.wait_for("a 235 from the recovered pool", lambda: code(
        x["hungport"], "alice", ALICE_PW) == 235, interval=0.3)
    t.ok(got, "the pool recovered: 235 from the server now on that port")


def install():
    """slapd and ldap-utils, via scripts/deps.sh test: (ok, why)."""
    if ldappeer.have_tools():
        return True, ""
    p = subprocess.run(["sh", sqtest.TEST_DEPS, "test"],
                       capture_output=True, timeout=600)
    if not ldappeer.have_tools():
        return False, "deps.sh test: %r %r" % (p.stdout[-500:],
                                              p.stderr[-500:])
    return True, ""


def main():
    t = sqtest.Tap()
    if os.getuid() != 0:
        t.skip_all("needs root (uid 0): slapd and its packages")
    ok, why = install()
    if not ok:
        t.bail_out("cannot install slapd and ldap-utils: " + why)
    peer = ldappeer.LdapPeer(ldif(), debug="stats")
    silent = Silent()
    x = dict(peer=peer, silent=silent)
    try:
        try:
            peer.start()
        except ldappeer.LdapPeerError as e:
            t.bail_out("slapd: %s" % e)
        x.update(searchport=sqtest.free_port(), bindport=sqtest.free_port(),
                 hungport=sqtest.free_port(), silentport=silent.port)
        d = sqtest.Daemon(t)
        d.params["extra"] = EXTRA.format(
            url=peer.url, people=PEOPLE, suffix=SUFFIX, reader=READER,
            readerpw=READER_PW, **x)
        d.write_conf(sqtest.DEFAULT_CONF)
        d.start()
        sqtest.run(t, [
            sequential_checks_reuse_one_connection,
            search_runs_as_the_reader,
            concurrent_checks_stay_within_the_pool,
            slapd_restart,
            silent_server_times_out_and_pool_recovers,
            sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
        ], d, x)
    finally:
        silent.close()
        peer.remove()
        if "peer2" in x:
            x["peer2"].remove()


if __name__ == "__main__":
    main()
