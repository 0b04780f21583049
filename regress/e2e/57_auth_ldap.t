#!/usr/bin/env python3
"""
SMTP AUTH against an LDAP server (auth ldap), with a real slapd on a
loopback port (regress/e2e/ldappeer.py), started as root (slapd and the
packages; otherwise the whole file is skipped, saying so).

The directory: alice and bob under ou=people (userPassword {SSHA} from
slappasswd), "twin" both under ou=people and ou=others, a reader entry
for the search bind.  Four listeners: bind-dn mode, search mode after a
bind as the reader, search mode anonymously, and bind-dn mode against a
port where nothing listens; a fifth points at a Python listener that
accepts and never answers (timeout 2s); three use TLS (certificates
from certs.py): StartTLS and ldaps:// with the server's CA, StartTLS
with another CA.

Each mode: the right password 235, a wrong one 535, an unknown user 535,
an empty password refused (smtp answers 501 5.5.2 before lka hears of
it; an empty simple bind would be an anonymous "success"), user names with DN and filter metacharacters given alice's
password 535; in search mode a user with two entries 535.  TLS with the
right CA: 235 and 535 as without; with another CA: 454 4.7.0.  Nothing
listening, the silent server (after its timeout), and slapd stopped:
454 4.7.0.
"""
import base64
import os
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest                                       # noqa: E402
import ldappeer                                     # noqa: E402
import certs                                        # noqa: E402

ALICE_PW = "alice pw 1"
BOB_PW = "bob-pw-2"
TWIN_PW = "twin pw"
READER_PW = "reader pw"
SUFFIX = ldappeer.SUFFIX
PEOPLE = "ou=people," + SUFFIX

EXTRA = """\
limit auth-failures 0
listen on 127.0.0.1 port {bindport} auth ldap "{url}" bind-dn "uid=%u,{people}" timeout 5s auth plaintext
listen on 127.0.0.1 port {searchport} auth ldap "{url}" base "{suffix}" filter "(&(objectClass=inetOrgPerson)(uid=%u))" search-dn "cn=reader,{suffix}" search-password "{readerpw}" auth plaintext
listen on 127.0.0.1 port {anonport} auth ldap "{url}" base "{suffix}" filter "(uid=%u)" auth plaintext
listen on 127.0.0.1 port {downport} auth ldap "ldap://127.0.0.1:{closedport}" bind-dn "uid=%u,{people}" auth plaintext
listen on 127.0.0.1 port {starttlsport} auth ldap "{url}" bind-dn "uid=%u,{people}" starttls ca "{dir}/ldap-ca.pem" auth plaintext
listen on 127.0.0.1 port {ldapsport} auth ldap "{ldapsurl}" base "{suffix}" filter "(uid=%u)" ca "{dir}/ldap-ca.pem" auth plaintext
listen on 127.0.0.1 port {wrongcaport} auth ldap "{url}" bind-dn "uid=%u,{people}" starttls ca "{dir}/other-ca.pem" auth plaintext
listen on 127.0.0.1 port {hungport} auth ldap "ldap://127.0.0.1:{silentport}" bind-dn "uid=%u,{people}" timeout 2s auth plaintext
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

dn: ou=others,{suffix}
objectClass: organizationalUnit
ou: others

dn: cn=reader,{suffix}
objectClass: person
cn: reader
sn: reader
userPassword: {reader}

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

dn: uid=twin,{people}
objectClass: inetOrgPerson
uid: twin
cn: Twin
sn: T
userPassword: {twin}

dn: uid=twin,ou=others,{suffix}
objectClass: inetOrgPerson
uid: twin
cn: Twin
sn: T
userPassword: {twin}
""".format(suffix=SUFFIX, people=PEOPLE, reader=h(READER_PW),
           alice=h(ALICE_PW), bob=h(BOB_PW), twin=h(TWIN_PW))


def b64(s):
    return base64.b64encode(s.encode()).decode()


def auth(port, user, pw):
    c = sqtest.Client(port)
    c.greeting()
    c.ehlo()
    r = c.cmd("AUTH PLAIN " + b64("\0" + user + "\0" + pw))
    c.close()
    return r


class Silent:
    """A TCP listener that accepts and never says a word."""

    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(16)
        self.port = self.s.getsockname()[1]
        self.conns = []
        self.stopping = False
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while not self.stopping:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self.stopping = True
        self.s.close()
        for c in self.conns:
            c.close()


METAS = ["*", "*)(uid=*", "alice)(|(uid=*", "alice,ou=people",
         "uid=alice," + PEOPLE, "alice\\", "alice*", " alice"]


def modes(t, d, x):
    for port, how in ((x["bindport"], "bind-dn"),
                      (x["searchport"], "search with search-dn"),
                      (x["anonport"], "anonymous search")):
        r = auth(port, "alice", ALICE_PW)
        t.reply(r, 235, "2.7.0", "%s: alice, right password 235" % how)
        r = auth(port, "bob", BOB_PW)
        t.reply(r, 235, "2.7.0", "%s: bob, right password 235" % how)
        r = auth(port, "alice", BOB_PW)
        t.reply(r, 535, "5.7.8", "%s: alice with bob's password 535" % how)
        r = auth(port, "carol", ALICE_PW)
        t.reply(r, 535, "5.7.8", "%s: unknown user 535" % how)
        # smtp refuses an empty password itself (lka_auth_ldap.c would
        # too): what matters is that it is no anonymous-bind success.
        r = auth(port, "alice", "")
        t.reply(r, 501, "5.5.2", "%s: alice with an empty password "
                "refused, not an anonymous bind's success" % how)
        r = auth(port, "nobody", "")
        t.reply(r, 501, "5.5.2", "%s: unknown user, empty password "
                "refused" % how)
        for u in METAS:
            r = auth(port, u, ALICE_PW)
            t.reply(r, 535, "5.7.8", "%s: user %r with alice's password "
                    "535" % (how, u))
    for port, how in ((x["searchport"], "search with search-dn"),
                      (x["anonport"], "anonymous search")):
        r = auth(port, "twin", TWIN_PW)
        t.reply(r, 535, "5.7.8", "%s: a user with two entries 535" % how)
    # The bind-dn mode finds one twin by its DN: that one is fine.
    r = auth(x["bindport"], "twin", TWIN_PW)
    t.reply(r, 235, "2.7.0", "bind-dn: twin under ou=people 235")


def failures_are_temporary(t, d, x):
    r = auth(x["downport"], "alice", ALICE_PW)
    t.reply(r, 454, "4.7.0", "nothing listening: 454 4.7.0")
    r = auth(x["hungport"], "alice", ALICE_PW)
    t.reply(r, 454, "4.7.0", "a server that never answers: 454 4.7.0 "
            "after the timeout")
    t.like(d.log_text(), r"ldap://127\.0\.0\.1:%d: no verdict in 2 s" %
           x["silentport"], "the log says the silent server timed out")
    r = auth(x["bindport"], "alice", ALICE_PW)
    t.reply(r, 235, "2.7.0", "meanwhile the real server still works")


def many_at_once(t, d, x):
    codes = []
    lock = threading.Lock()

    def one(i):
        try:
            r = auth(x["searchport"], "alice" if i % 2 else "bob",
                     ALICE_PW if i % 2 else BOB_PW)
            code = r.code if r is not None else None
        except Exception as e:
            code = repr(e)
        with lock:
            codes.append(code)
    ths = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(sqtest.TIMEOUT)
    t.is_(codes, [235] * 10, "10 sessions at once (more than 4 checks "
          "run at a time): all 235")


def tls(t, d, x):
    for port, how in ((x["starttlsport"], "StartTLS"),
                      (x["ldapsport"], "ldaps://")):
        r = auth(port, "alice", ALICE_PW)
        t.reply(r, 235, "2.7.0", "%s, the server's CA: right password 235"
                % how)
        r = auth(port, "alice", BOB_PW)
        t.reply(r, 535, "5.7.8", "%s: wrong password 535" % how)
    r = auth(x["wrongcaport"], "alice", ALICE_PW)
    t.reply(r, 454, "4.7.0", "StartTLS, a CA that did not sign the "
            "server's certificate: 454 4.7.0")
    t.like(d.log_text(), r"ldap://127\.0\.0\.1:%d: StartTLS: " %
           x["peer"].port, "the log says StartTLS failed")


def slapd_stopped(t, d, x):
    x["peer"].stop()
    t.ok(not x["peer"].running(), "slapd stopped")
    for port, how in ((x["bindport"], "bind-dn"),
                      (x["searchport"], "search")):
        r = auth(port, "alice", ALICE_PW)
        t.reply(r, 454, "4.7.0", "%s with slapd stopped: 454 4.7.0" % how)
    t.like(d.log_text(), r"lka: auth: ldap: ldap://127\.0\.0\.1:%d: "
           r".*Can't contact LDAP server" % x["peer"].port,
           "the log says the server cannot be reached")


def install():
    """slapd and ldap-utils, via scripts/deps.sh test: (ok, why)."""
    if ldappeer.have_tools():
        return True, ""
    deps = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "..", "scripts", "deps.sh")
    p = subprocess.run(["sh", deps, "test"], capture_output=True,
                       timeout=600)
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
    pki = certs.make_pki()
    peer = ldappeer.LdapPeer(ldif(), tls=(pki.server.cert, pki.server.key))
    silent = Silent()
    try:
        try:
            peer.start()
        except ldappeer.LdapPeerError as e:
            t.bail_out("slapd: %s" % e)
        x = dict(bindport=sqtest.free_port(), searchport=sqtest.free_port(),
                 anonport=sqtest.free_port(), downport=sqtest.free_port(),
                 hungport=sqtest.free_port(),
                 starttlsport=sqtest.free_port(),
                 ldapsport=sqtest.free_port(),
                 wrongcaport=sqtest.free_port(),
                 closedport=sqtest.free_port(), silentport=silent.port)
        x["peer"] = peer
        d = sqtest.Daemon(t)
        # lka (the daemon's user) reads them: copies in its directory.
        with open(pki.ca.cert) as f:
            d.write("ldap-ca.pem", f.read())
        with open(pki.selfsigned.cert) as f:
            d.write("other-ca.pem", f.read())
        d.params["extra"] = EXTRA.format(
            url=peer.url, ldapsurl=peer.ldaps_url, people=PEOPLE,
            suffix=SUFFIX, readerpw=READER_PW, dir=d.dir, **x)
        d.write_conf(sqtest.DEFAULT_CONF)
        d.start()
        sqtest.run(t, [
            modes,
            failures_are_temporary,
            tls,
            many_at_once,
            slapd_stopped,
            sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
        ], d, x)
    finally:
        silent.close()
        peer.remove()


if __name__ == "__main__":
    main()
