#!/usr/bin/env python3
"""
dnspeer: a real DNS server (unbound) for sqmail's tests.

It writes an unbound configuration and the zone data into a scratch
directory, starts `unbound -d` on 127.0.0.1 and a free port (UDP and TCP),
waits until it answers and stops it again.  Standard library only.

    import dnspeer
    with dnspeer.DnsPeer(["example.test. MX 10 mx.example.test.",
                          "mx.example.test. A 192.0.2.25"]) as dns:
        dns.server                  # "127.0.0.1:PORT", for dns_init()
        rcode, answers = dns.query("example.test", "MX")
        # rcode "NOERROR", answers [("MX", "10 mx.example.test")]

Records are zone-file lines with absolute owner names ("name. [TTL]
TYPE RDATA").  Each goes into the longest of `zones` (default "test.")
that holds its owner; every zone is an unbound `auth-zone` for upstream
use (SOA and NS are made up), so unbound answers like a recursive
resolver: CNAME chains inside the zones are followed, a name without
records is NXDOMAIN, a name without the asked type is NODATA.  Names
under no zone are REFUSED (`local-zone: "." refuse`), and unbound sends
no query to any address (`do-not-query-address`), so a test never waits
on the network: a CNAME leading out of the zones answers SERVFAIL at
once, which is how a test gets a SERVFAIL.

If unbound cannot be started, start() raises DnsPeerError with its log:
a test that needs a DNS peer fails then, it does not skip.  Run this file
as a script for a self-test that prints TAP.

Environment: DNSPEER_UNBOUND names the unbound binary; SQTEST_KEEP=1 keeps
the scratch directory (its path is printed).
"""

import os
import random
import re
import shutil
import signal
import socket
import struct
import sys
import subprocess
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerutil                                     # noqa: E402

READY_NAME = "dnspeer-ready"        # a TXT record under every zone
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15,
         "TXT": 16, "AAAA": 28, "SRV": 33}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN",
          4: "NOTIMP", 5: "REFUSED"}


class DnsPeerError(Exception):
    """unbound could not be started or did not answer; the text says why."""


def find_unbound():
    """The unbound binary: $DNSPEER_UNBOUND, $PATH, then the sbin dirs."""
    return peerutil.find_program("unbound", "DNSPEER_UNBOUND", (
        "/usr/sbin", "/usr/local/sbin", "/sbin"))


def port_pair_free(port, host="127.0.0.1"):
    """True when both UDP and TCP port on host can be bound right now."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port_pair(host="127.0.0.1"):
    """A port that is free for both UDP and TCP (racy, as all such are)."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, 0))
        port = s.getsockname()[1]
        s.close()
        if port_pair_free(port, host):
            return port
    raise DnsPeerError("no free UDP+TCP port on %s" % host)


# -------------------------------------------------------- DNS messages


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("ascii")
            if len(raw) > 63:
                raise ValueError("label too long: %r" % label)
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def make_query(name, qtype, qid=None):
    """A recursive query for name/qtype; returns (id, wire bytes)."""
    if qid is None:
        qid = random.randrange(65536)
    t = TYPES[qtype] if isinstance(qtype, str) else qtype
    return qid, (struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) +
                 encode_name(name) + struct.pack("!HH", t, 1))


def read_name(msg, off):
    """(name, offset after it); follows compression, bounded."""
    labels, jumps, end = [], 0, None
    while True:
        if off >= len(msg):
            raise ValueError("name runs past the message")
        n = msg[off]
        if n & 0xc0 == 0xc0:
            if off + 1 >= len(msg) or jumps > 32:
                raise ValueError("bad compression pointer")
            if end is None:
                end = off + 2
            off = ((n & 0x3f) << 8) | msg[off + 1]
            jumps += 1
            continue
        if n & 0xc0:
            raise ValueError("bad label type")
        if n == 0:
            return ".".join(labels), (end if end is not None else off + 1)
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n


def parse_response(msg, qid=None):
    """
    (rcode text, flags, [(type, rdata text)]) of the answer section.
    A, AAAA, MX, CNAME, NS, PTR and TXT are decoded, others are hex.
    """
    if len(msg) < 12:
        raise ValueError("short DNS message")
    rid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", msg[:12])
    if qid is not None and rid != qid:
        raise ValueError("id mismatch")
    off = 12
    for _ in range(qd):
        _, off = read_name(msg, off)
        off += 4
    answers = []
    for _ in range(an):
        _, off = read_name(msg, off)
        rtype, _, _, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        rd = msg[off:off + rdlen]
        name = {v: k for k, v in TYPES.items()}.get(rtype, str(rtype))
        if rtype == 1 and rdlen == 4:
            text = socket.inet_ntop(socket.AF_INET, rd)
        elif rtype == 28 and rdlen == 16:
            text = socket.inet_ntop(socket.AF_INET6, rd)
        elif rtype == 15:
            text = "%d %s" % (struct.unpack("!H", rd[:2])[0],
                              read_name(msg, off + 2)[0] or ".")
        elif rtype in (2, 5, 12):
            text = read_name(msg, off)[0]
        elif rtype == 16:
            parts, i = [], 0
            while i < len(rd):
                parts.append(rd[i + 1:i + 1 + rd[i]].decode("ascii",
                                                            "replace"))
                i += 1 + rd[i]
            text = "".join(parts)
        else:
            text = rd.hex()
        answers.append((name, text))
        off += rdlen
    return RCODES.get(flags & 0xf, str(flags & 0xf)), flags, answers


def query(host, port, name, qtype, tcp=False, timeout=2.0):
    """Ask host:port once; (rcode, [(type, rdata)]) or raise OSError."""
    qid, q = make_query(name, qtype)
    if tcp:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(struct.pack("!H", len(q)) + q)
            buf = b""
            while len(buf) < 2 or len(buf) < 2 + struct.unpack(
                    "!H", buf[:2])[0]:
                chunk = s.recv(65537)
                if not chunk:
                    raise OSError("connection closed by the DNS server")
                buf += chunk
            msg = buf[2:]
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(q, (host, port))
            while True:
                msg, _ = s.recvfrom(65535)
                if len(msg) >= 2 and struct.unpack("!H", msg[:2])[0] == qid:
                    break
    rcode, _, answers = parse_response(msg, qid)
    return rcode, answers


# ------------------------------------------------------------- the peer


AUTH_ZONE = """\
auth-zone:
	name: "{zone}"
	zonefile: "{file}"
	for-downstream: no
	for-upstream: yes
	fallback-enabled: no
"""

CONF = """\
server:
	verbosity: 1
	interface: {host}
	port: {port}
	do-ip4: yes
	do-ip6: no
	do-udp: yes
	do-tcp: yes
	do-daemonize: no
	use-syslog: no
	logfile: ""
	log-time-ascii: yes
	username: ""
	chroot: ""
	directory: "{dir}"
	pidfile: "{dir}/unbound.pid"
	num-threads: 1
	so-reuseport: no
	outgoing-range: 64
	num-queries-per-thread: 256
	msg-cache-size: 1m
	rrset-cache-size: 1m
	access-control: 127.0.0.0/8 allow
	module-config: "iterator"
	qname-minimisation: no
	rrset-roundrobin: no
	minimal-responses: no
	do-not-query-address: 0.0.0.0/0
	do-not-query-address: ::/0
	local-zone: "." refuse
{local_zones}
{extra}
{auth_zones}
remote-control:
	control-enable: no
"""


class DnsPeer(peerutil.Peer):
    """
    One unbound serving records for zones on host:port.  Use as a context
    manager, or call start() and stop() (stop() is idempotent and also
    runs at interpreter exit).  records and zones as above; scratch: a
    directory to use (default: a new one, removed by stop()); extra:
    more lines for unbound's server: section, tab-indented; host: an
    IPv4 loopback address.  A record outside every zone is a ValueError.
    """

    def __init__(self, records, zones=("test.",), scratch=None, extra="",
                 host="127.0.0.1"):
        self.records = list(records)
        self.zones = [z if z.endswith(".") else z + "." for z in zones]
        self.extra = extra
        self.host = host
        self.port = None
        self.proc = None
        self.zones.sort(key=len, reverse=True)
        self.data = {z: [] for z in self.zones}
        for r in self.records:
            owner = r.split(None, 1)[0].lower()
            if not owner.endswith("."):
                raise ValueError("owner of %r is not absolute" % r)
            zone = next((z for z in self.zones
                         if owner == z or owner.endswith("." + z)), None)
            if zone is None:
                raise ValueError("%r is in none of the zones %s" %
                                 (r, self.zones))
            self.data[zone].append(r)
        self.own_scratch = scratch is None
        self.dir = scratch or tempfile.mkdtemp(prefix="dnspeer-")
        os.makedirs(self.dir, exist_ok=True)
        self.conf_path = os.path.join(self.dir, "unbound.conf")
        self.log_path = os.path.join(self.dir, "unbound.log")

    @property
    def server(self):
        """"host:port", as dns_init() and the configuration take it."""
        return "%s:%d" % (self.host, self.port)

    def write_conf(self):
        auth = []
        for z in self.zones:
            path = os.path.join(self.dir, "%szone" % z)
            with open(path, "w") as f:
                f.write("$ORIGIN %s\n$TTL 300\n" % z)
                types = [r.split()[1:3] for r in self.data[z]
                         if r.split(None, 1)[0].lower() == z]
                if not any("SOA" in t for t in types):
                    f.write("%s SOA ns.%s hostmaster.%s 1 3600 600 86400 "
                            "60\n" % (z, z, z))
                if not any("NS" in t for t in types):
                    f.write("%s NS ns.%s\nns.%s A 192.0.2.53\n" % (z, z, z))
                f.write('%s.%s TXT "ready"\n' % (READY_NAME, z))
                for r in self.data[z]:
                    f.write(r + "\n")
            auth.append(AUTH_ZONE.format(zone=z, file=path))
        local = "\n".join('\tlocal-zone: "%s" transparent' % z
                          for z in self.zones)
        with open(self.conf_path, "w") as f:
            f.write(CONF.format(host=self.host, port=self.port, dir=self.dir,
                                local_zones=local, auth_zones="".join(auth),
                                extra=self.extra))

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def start(self, timeout=10.0, attempts=3):
        """Start unbound and wait until it answers; DnsPeerError if not."""
        binary = find_unbound()
        if binary is None:
            raise DnsPeerError("unbound not found (apt-get install unbound, "
                               "or set DNSPEER_UNBOUND)")
        why = "not tried"
        for _ in range(attempts):
            self.port = free_port_pair(self.host)
            self.write_conf()
            logged = len(self.log())
            logf = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    [binary, "-d", "-c", self.conf_path],
                    stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                    start_new_session=True)
            finally:
                logf.close()
            why = self._wait_ready(timeout)
            if why is None:
                peerutil.track(self)
                return self
            self._kill()
            # Only a port taken between our check and unbound's bind is
            # worth another try.
            if not re.search(r"already in use|could not open ports",
                             self.log()[logged:]):
                break
        raise DnsPeerError("unbound did not start (%s); its log:\n%s" %
                           (why, self.log()))

    def _wait_ready(self, timeout):
        end = time.monotonic() + timeout
        why = "no answer within %.1fs" % timeout
        todo = ["%s.%s" % (READY_NAME, z) for z in self.zones]
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return "exited with status %d" % self.proc.returncode
            try:
                rcode, answers = query(self.host, self.port, todo[0], "TXT",
                                       timeout=0.2)
                if rcode == "NOERROR" and answers:
                    todo.pop(0)
                    if not todo:
                        return None
                    continue
                why = "%s TXT answered %s (zone file not loaded?)" % (
                    todo[0], rcode)
            except (OSError, ValueError) as e:
                why = "probe: %s" % e
            time.sleep(0.05)
        return why

    def query(self, name, qtype, tcp=False, timeout=2.0):
        """Ask this peer: (rcode text, [(type, rdata text)])."""
        return query(self.host, self.port, name, qtype, tcp, timeout)

    def _kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def stop(self):
        """Stop unbound and remove the scratch directory we made."""
        self._kill()
        peerutil.untrack(self)
        if self.own_scratch and os.path.isdir(self.dir):
            if os.environ.get("SQTEST_KEEP") == "1":
                print("# dnspeer scratch kept at %s" % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)



# ------------------------------------------------------------ self-test


def _selftest():
    n = failed = 0

    def ok(cond, name, diag=None):
        nonlocal n, failed
        n += 1
        if not cond:
            failed += 1
        print("%sok %d - %s" % ("" if cond else "not ", n, name))
        if not cond and diag is not None:
            for line in str(diag).splitlines():
                print("#   " + line)

    records = [
        "example.test. MX 10 mx.example.test.",
        "example.test. MX 20 mx2.example.test.",
        "mx.example.test. A 192.0.2.25",
        "mx2.example.test. AAAA 2001:db8::25",
        "alias.example.test. CNAME mx.example.test.",
        "nomail.test. MX 0 .",
        "out.test. CNAME elsewhere.example.",
        "sub.zone2.test. A 192.0.2.26",
    ]
    peer = DnsPeer(records, zones=("test.", "zone2.test."))
    try:
        peer.start()
    except DnsPeerError as e:
        ok(False, "unbound_starts_and_answers", e)
        print("1..%d" % n)
        return 1
    ok(peer.running(), "unbound_starts_and_answers")
    try:
        r = peer.query("mx.example.test", "A")
        ok(r == ("NOERROR", [("A", "192.0.2.25")]), "a_record_served", r)
        r = peer.query("example.test", "MX")
        ok(r[0] == "NOERROR" and sorted(r[1]) == [
            ("MX", "10 mx.example.test"), ("MX", "20 mx2.example.test")],
            "mx_records_served", r)
        r = peer.query("example.test", "MX", tcp=True)
        ok(r[0] == "NOERROR" and len(r[1]) == 2, "tcp_answers_too", r)
        r = peer.query("mx2.example.test", "AAAA")
        ok(r == ("NOERROR", [("AAAA", "2001:db8::25")]), "aaaa_served", r)
        r = peer.query("nomail.test", "MX")
        ok(r == ("NOERROR", [("MX", "0 .")]), "null_mx_served", r)
        r = peer.query("alias.example.test", "A")
        ok(r == ("NOERROR", [("CNAME", "mx.example.test"),
                             ("A", "192.0.2.25")]), "cname_chain_followed", r)
        r = peer.query("sub.zone2.test", "A")
        ok(r == ("NOERROR", [("A", "192.0.2.26")]), "second_zone_served", r)
        r = peer.query("out.test", "A")
        ok(r == ("SERVFAIL", []), "cname_out_of_zones_is_servfail", r)
        r = peer.query("nosuch.test", "A")
        ok(r == ("NXDOMAIN", []), "unknown_name_is_nxdomain", r)
        r = peer.query("mx.example.test", "MX")
        ok(r == ("NOERROR", []), "missing_type_is_nodata", r)
        r = peer.query("example.org", "A")
        ok(r == ("REFUSED", []), "outside_zones_is_refused", r)
    except (OSError, ValueError) as e:
        ok(False, "queries_answered", "%s\n%s" % (e, peer.log()))
    proc = peer.proc
    peer.stop()
    ok(proc.poll() is not None, "stop_ends_unbound")
    ok(not os.path.exists(peer.dir), "stop_removes_scratch")

    bad = DnsPeer(["bad.test. A not-an-address"])
    try:
        bad.start()
        ok(False, "bad_zone_data_fails_loudly", "unbound started")
    except DnsPeerError as e:
        ok("not-an-address" in str(e) or "parse error" in str(e),
           "bad_zone_data_fails_loudly", e)
    bad.stop()
    try:
        DnsPeer(["example.org. A 192.0.2.1"])
        ok(False, "record_outside_zones_refused")
    except ValueError:
        ok(True, "record_outside_zones_refused")
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(_selftest())
