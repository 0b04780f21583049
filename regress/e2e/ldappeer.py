#!/usr/bin/env python3
"""
ldappeer: a real LDAP server (OpenLDAP's slapd) for sqmail's tests.

It writes a slapd.conf-style configuration (an mdb database for the
suffix dc=example,dc=test, the core, cosine and inetorgperson schemas)
into a scratch directory, starts `slapd -d 0` in the foreground on
ldap://127.0.0.1:PORT only (and ldaps://127.0.0.1:PORT2 with tls: the
certificate also serves StartTLS), waits until it answers (ldapwhoami), loads
the entries given as LDIF with ldapadd as the root DN, and stops it again
(SIGTERM, then SIGKILL, both bounded).  Standard library only.

    import ldappeer
    with ldappeer.LdapPeer(ldif) as ldap:
        ldap.url                    # "ldap://127.0.0.1:PORT"
        ldap.stop()                 # the server goes; start() again works

If slapd cannot be started, start() raises LdapPeerError with its log: a
test that needs an LDAP peer fails then, it does not skip.

Environment: LDAPPEER_SLAPD names the slapd binary.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerutil                                     # noqa: E402

SUFFIX = "dc=example,dc=test"
ROOT_DN = "cn=admin," + SUFFIX
ROOT_PW = "ldappeer-root-secret"
SCHEMA_DIR = "/etc/ldap/schema"
MODULE_DIRS = ("/usr/lib/ldap", "/usr/lib/openldap",
               "/usr/lib/x86_64-linux-gnu/ldap")
WAIT = 15           # seconds for start-up and for stopping

CONF = """\
# written by regress/e2e/ldappeer.py
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
{tls}{modules}
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{rootdn}"
rootpw {rootpw}
directory {dir}/db
access to attrs=userPassword by anonymous auth by self read by * none
access to * by * read
"""


class LdapPeerError(Exception):
    """slapd could not be started or loaded; the text says why."""


def find_slapd():
    return peerutil.find_program("slapd", "LDAPPEER_SLAPD", (
        "/usr/sbin", "/usr/local/sbin", "/sbin"))


def have_tools():
    """Whether slapd, ldapadd and ldapwhoami are all there."""
    return (find_slapd() is not None and shutil.which("ldapadd") is not None
            and shutil.which("ldapwhoami") is not None)


class LdapPeer(peerutil.Peer):

    def __init__(self, ldif="", port=None, tls=None, debug="0"):
        """tls: (certificate, key) PEM paths for StartTLS and ldaps://.
        debug: slapd's -d level; "conns" or "stats" puts a line per
        connection (conn=N) into the log (see conn_ids())."""
        self.ldif = ldif
        self.debug = debug
        self.port = port or peerutil.free_port()
        self.url = "ldap://127.0.0.1:%d" % self.port
        self.tls = tls
        self.ldaps_port = peerutil.free_port() if tls else None
        self.ldaps_url = ("ldaps://127.0.0.1:%d" % self.ldaps_port
                          if tls else None)
        self.dir = tempfile.mkdtemp(prefix="ldappeer.")
        self.log_path = os.path.join(self.dir, "slapd.log")
        self.loaded = False
        self.proc = None

    def _conf(self):
        modules = ""
        for d in MODULE_DIRS:
            if os.path.exists(os.path.join(d, "back_mdb.la")) or \
                    os.path.exists(os.path.join(d, "back_mdb.so")):
                modules = "modulepath %s\nmoduleload back_mdb" % d
                break
        path = os.path.join(self.dir, "slapd.conf")
        with open(path, "w") as f:
            tls = ""
            if self.tls:
                tls = ("TLSCertificateFile %s\nTLSCertificateKeyFile %s\n"
                       % self.tls)
            f.write(CONF.format(schema=SCHEMA_DIR, dir=self.dir,
                                modules=modules, tls=tls, suffix=SUFFIX,
                                rootdn=ROOT_DN, rootpw=ROOT_PW))
        os.makedirs(os.path.join(self.dir, "db"), exist_ok=True)
        return path

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def log_mark(self):
        """Where the log ends now: pass it to accepts() and binds()."""
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def _log_since(self, mark):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(mark)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def accepts(self, mark=0):
        """The conn= numbers of the connections slapd accepted since mark
        (needs debug "conns" or "stats")."""
        return [int(m.group(1)) for m in re.finditer(
            r"conn=(\d+) fd=\d+ ACCEPT from", self._log_since(mark))]

    def binds(self, mark=0, dn_prefix=""):
        """(conn, dn) of every BIND slapd logged since mark whose DN starts
        with dn_prefix (needs debug "stats")."""
        return [(int(m.group(1)), m.group(2)) for m in re.finditer(
            r'conn=(\d+) op=\d+ BIND dn="([^"]*)" method=',
            self._log_since(mark)) if m.group(2).startswith(dn_prefix)]

    def _ldap(self, argv, data=None):
        return subprocess.run(argv + ["-x", "-H", self.url, "-o",
                                      "nettimeout=5"],
                              input=data, capture_output=True,
                              timeout=WAIT)

    def start(self):
        slapd = find_slapd()
        if slapd is None:
            raise LdapPeerError("no slapd")
        conf = self._conf()
        logf = open(self.log_path, "ab")
        # -d: in the foreground, so that stop() has the process.
        self.proc = subprocess.Popen(
            [slapd, "-d", str(self.debug), "-f", conf, "-h", self.url + "/" + (
                " " + self.ldaps_url + "/" if self.tls else "")],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
            start_new_session=True)
        logf.close()
        peerutil.track(self)
        end = time.monotonic() + WAIT
        while True:
            if self.proc.poll() is not None:
                raise LdapPeerError("slapd exited %d:\n%s" % (
                    self.proc.returncode, self.log()))
            p = self._ldap(["ldapwhoami", "-D", ROOT_DN, "-w", ROOT_PW])
            if p.returncode == 0:
                break
            if time.monotonic() > end:
                self.stop()
                raise LdapPeerError("slapd did not answer in %d s: %r\n%s"
                                    % (WAIT, p.stderr, self.log()))
            time.sleep(0.1)
        if self.ldif and not self.loaded:
            p = self._ldap(["ldapadd", "-D", ROOT_DN, "-w", ROOT_PW],
                           data=self.ldif.encode())
            if p.returncode != 0:
                self.stop()
                raise LdapPeerError("ldapadd: %r %r" % (p.stdout, p.stderr))
            self.loaded = True
        return self

    def stop(self):
        peerutil.untrack(self)
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(WAIT)
                return
            except subprocess.TimeoutExpired:
                continue

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def slappasswd(pw):
    """An {SSHA} hash of pw made by slappasswd(8)."""
    p = subprocess.run(["slappasswd", "-s", pw], capture_output=True,
                       timeout=WAIT, check=True)
    return p.stdout.decode().strip()


if __name__ == "__main__":
    # A self-test: start, bind as the root DN, stop.
    print("1..1")
    peer = LdapPeer()
    try:
        peer.start()
        print("ok 1 - slapd answered on %s" % peer.url)
    except LdapPeerError as e:
        print("not ok 1 - slapd: %s" % e)
    finally:
        peer.remove()
