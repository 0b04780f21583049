#!/usr/bin/env python3
"""
hostiledns: a small DNS server that lies, for sqmail's tests.

unbound (dnspeer.py) only ever sends well-formed answers; this server
sends what a broken or hostile server, or someone racing it, could
send: truncated answers and a TCP side that talks garbage or hangs up,
count fields that lie, compression pointer loops, names and labels over
their limits, MX targets with spaces, NULs, dots inside a label or a
newline followed by what looks like a log or queue line, a huge answer,
an A record three octets long, a CNAME loop, answers with the wrong id or
for another name.  Standard library only; it runs in threads of the test
process, on 127.0.0.1 and a free port, UDP and TCP.

    import hostiledns
    with hostiledns.HostileDns(good_addr="127.0.0.77") as dns:
        dns.server                  # "127.0.0.1:PORT", for dns servers
        dns.queries()               # [(transport, qname, qtype), ...]

Everything it answers is under one zone (ZONE, "hostile.test").  The MX
query for CASE.hostile.test gets the answer of scenario CASE (the
SCENARIOS table: name -> what it sends); A and AAAA queries of the hosts
those answers name get what the scenario says too.  Some names are
served honestly:

    ok.hostile.test              MX 10 mx.ok.hostile.test
    mx.ok.hostile.test           A good_addr (no AAAA)
    forged.hostile.test          A forged_addr: only named by answers a
                                 resolver must throw away (wrong id,
                                 another name); seeing it used is a bug

A name of the zone that no scenario or record knows is NXDOMAIN, a known
name without the type asked is NODATA, a name outside the zone REFUSED.
Over TCP a query gets the same answer as over UDP (framed), except for
the scenarios that make TCP the hostile part.

Every text meant to look forged contains MARKER ("FORGED"), so that a
test can check that none of it reaches a log, a queue listing or a
bounce.  Run this file as a script for a self-test that prints TAP.
"""

import os
import socket
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerutil                                     # noqa: E402

ZONE = "hostile.test"
MARKER = "FORGED"
T_A, T_CNAME, T_SOA, T_MX, T_AAAA = 1, 5, 6, 15, 28
TYPES = {"A": T_A, "CNAME": T_CNAME, "SOA": T_SOA, "MX": T_MX,
         "AAAA": T_AAAA}
QR, AA, TC, RD, RA = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080
NOERROR, SERVFAIL, NXDOMAIN, REFUSED = 0, 2, 3, 5
QUERY_MAX = 512             # octets of a query we read
TCP_CONNS_MAX = 32          # TCP connections served at once
HUGE_RECORDS = 2900         # MX records of the huge answer (~64 KiB)


class HostileDnsError(Exception):
    """The server could not be started."""


# ------------------------------------------------------------ wire format


def labels_of(name):
    """A presentation name as a list of label bytes (no escapes)."""
    return [l.encode("ascii") for l in name.rstrip(".").split(".") if l]


def wire_name(labels, pointer=None):
    """
    Labels (bytes, any content and any length up to 255), then the
    root, or a compression pointer to offset pointer instead of it.
    """
    out = b""
    for l in labels:
        if len(l) > 255:
            raise ValueError("a label length must fit in one octet")
        out += bytes([len(l)]) + l
    if pointer is None:
        return out + b"\0"
    return out + struct.pack("!H", 0xc000 | pointer)


class Query:
    """A parsed query: id, flags, qname (lower case, no final dot),
    qtype, the question section as sent (question) and its wire name."""

    def __init__(self, msg):
        if len(msg) < 12 or len(msg) > QUERY_MAX:
            raise ValueError("not a query")
        (self.id, self.flags, qd, _, _, _) = struct.unpack("!HHHHHH",
                                                           msg[:12])
        if self.flags & QR or qd != 1:
            raise ValueError("not a query")
        off, labels = 12, []
        while True:
            if off >= len(msg):
                raise ValueError("question runs past the message")
            n = msg[off]
            if n == 0:
                off += 1
                break
            if n > 63 or off + 1 + n > len(msg):
                raise ValueError("bad label in the question")
            labels.append(msg[off + 1:off + 1 + n])
            off += 1 + n
        if off + 4 > len(msg):
            raise ValueError("question runs past the message")
        self.qtype, self.qclass = struct.unpack("!HH", msg[off:off + 4])
        self.question = msg[12:off + 4]
        self.qname = b".".join(labels).decode("ascii", "replace").lower()


def header(qid, flags, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def response(q, answers=(), rcode=NOERROR, flags=0, counts=None,
             question=None, qid=None):
    """
    A response to q: the question echoed (or question, wire bytes of
    another one), answers (wire RRs) in the answer section.  counts
    (qd, an, ns, ar) replaces the true counts: the lie.
    """
    f = QR | AA | (q.flags & RD) | RA | flags | rcode
    qd, an = 1, len(answers)
    if counts is not None:
        qd, an = counts[0], counts[1]
    ns, ar = (counts[2], counts[3]) if counts is not None else (0, 0)
    return (header(q.id if qid is None else qid, f, qd, an, ns, ar) +
            (q.question if question is None else question) +
            b"".join(answers))


def rr(owner, rtype, rdata, ttl=300):
    """One RR: owner (wire bytes), type, class IN, ttl, rdata (bytes)."""
    return owner + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


QNAME = struct.pack("!H", 0xc00c)   # a pointer to the question's name


def mx_rdata(pref, target_wire):
    return struct.pack("!H", pref) + target_wire


def a_rdata(addr):
    return socket.inet_pton(socket.AF_INET, addr)


def aaaa_rdata(addr):
    return socket.inet_pton(socket.AF_INET6, addr)


def soa_rr():
    zone = wire_name(labels_of(ZONE))
    rdata = (wire_name(labels_of("ns." + ZONE)) +
             wire_name(labels_of("hostmaster." + ZONE)) +
             struct.pack("!IIIII", 1, 3600, 600, 86400, 60))
    return rr(zone, T_SOA, rdata)


# -------------------------------------------------------------- answers


class Answer:
    """
    What to send for one query.  udp: the datagrams, in order (b"" is an
    empty datagram).  tcp: the raw bytes to write on a TCP connection
    (None: the udp datagrams, each framed with its length), then close
    the connection when close is true.
    """

    def __init__(self, udp=(), tcp=None, close=False):
        self.udp = list(udp)
        self.tcp = tcp
        self.close = close

    def tcp_bytes(self):
        if self.tcp is not None:
            return self.tcp
        return b"".join(struct.pack("!H", len(m)) + m for m in self.udp
                        if m)


def frame(msg):
    return struct.pack("!H", len(msg)) + msg


def name(case, host=None):
    """CASE.hostile.test, or HOST.CASE.hostile.test."""
    return "%s%s.%s" % (host + "." if host else "", case, ZONE)


# What each scenario answers.  A function of (server, query, transport)
# returning an Answer, or None for "as the honest records say".  The MX
# query of CASE.hostile.test and the A/AAAA queries of names under it
# come here; the docstring of each is what the test file relies on.

def _mx(q, *targets, **kw):
    """An MX answer: (pref, wire target) pairs, owner the question."""
    return response(q, [rr(QNAME, T_MX, mx_rdata(p, t))
                        for p, t in targets], **kw)


def _good(srv):
    return wire_name(labels_of("mx.ok." + ZONE))


def _tc_only(q):
    """An empty answer with TC set: "ask again over TCP"."""
    return response(q, flags=TC)


def sc_tc_close(srv, q, tr):
    """UDP: truncated (TC, no record).  TCP: the connection is closed
    as soon as the query is read, without a word."""
    if q.qtype != T_MX:
        return None
    return Answer([_tc_only(q)], tcp=b"", close=True)


def sc_tc_garbage(srv, q, tr):
    """UDP: truncated.  TCP: a length prefix and 40 octets that are no
    DNS message (they start with the query's id, so a resolver that
    matched by id alone would read them), then the connection stays
    open and nothing else comes."""
    if q.qtype != T_MX:
        return None
    junk = struct.pack("!H", q.id) + bytes(range(0xf0, 0xff)) * 2 + \
        b"\xc0\x0c\xc0\x0c\xff\xff\xff\xff\x00\x00"
    return Answer([_tc_only(q)], tcp=frame(junk[:40]))


def sc_tc_short(srv, q, tr):
    """UDP: truncated.  TCP: a length prefix of 400 and the first 20
    octets of a real answer, then the connection is closed."""
    if q.qtype != T_MX:
        return None
    real = _mx(q, (10, _good(srv)))
    return Answer([_tc_only(q)], tcp=struct.pack("!H", 400) + real[:20],
                  close=True)


def sc_tc_huge(srv, q, tr):
    """UDP: truncated.  TCP: HUGE_RECORDS MX records (~64 KiB, just
    under the 65535-octet limit of a TCP DNS message), targets
    m0000..m2899.tc-huge.hostile.test, preference 10 for the first 100
    and 20 for the rest; mNNNN has the A record 127.0.77.(NNNN % 200 + 1)
    (nothing listens there), no AAAA."""
    if q.qtype == T_MX:
        if tr == "udp":
            return Answer([_tc_only(q)])
        recs = [(10 if i < 100 else 20,
                 wire_name([b"m%04d" % i], pointer=12))
                for i in range(HUGE_RECORDS)]
        msg = _mx(q, *recs)
        assert len(msg) <= 65535, len(msg)
        return Answer([msg])
    host = q.qname.split(".")[0]
    if q.qtype == T_A and host[:1] == "m" and host[1:].isdigit():
        return Answer([response(q, [rr(QNAME, T_A, a_rdata(
            "127.0.77.%d" % (int(host[1:]) % 200 + 1)))])])
    return Answer([response(q)])        # NODATA


def sc_an_count_lie(srv, q, tr):
    """The MX answer says 50 answer records; one follows."""
    if q.qtype != T_MX:
        return None
    return Answer([_mx(q, (10, _good(srv)), counts=(1, 50, 0, 0))])


def sc_qd_count_lie(srv, q, tr):
    """The MX answer says its question section is empty (it is not)."""
    if q.qtype != T_MX:
        return None
    return Answer([_mx(q, (10, _good(srv)), counts=(0, 1, 0, 0))])


def sc_ptr_loop(srv, q, tr):
    """The MX target is a compression pointer to itself."""
    if q.qtype != T_MX:
        return None
    # header 12 + question + owner pointer 2 + type..rdlen 10 + pref 2
    at = 12 + len(q.question) + 2 + 10 + 2
    return Answer([_mx(q, (10, struct.pack("!H", 0xc000 | at)))])


def sc_ptr_loop2(srv, q, tr):
    """The MX target is a label, then a pointer to a second pointer
    that points back at the label: a loop of two."""
    if q.qtype != T_MX:
        return None
    at = 12 + len(q.question) + 2 + 10 + 2
    target = b"\x02mx" + struct.pack("!H", 0xc000 | (at + 5)) + \
        struct.pack("!H", 0xc000 | at)
    return Answer([_mx(q, (10, target))])


def sc_ptr_forward(srv, q, tr):
    """The MX target is a pointer past the end of the message."""
    if q.qtype != T_MX:
        return None
    return Answer([_mx(q, (10, struct.pack("!H", 0xc000 | 0x3ff0)))])


def sc_name_too_long(srv, q, tr):
    """MX 10 to a name of five 60-octet labels under the zone (over
    255 octets), MX 20 mx.ok.hostile.test."""
    if q.qtype != T_MX:
        return None
    long_ = wire_name([b"a" * 60] * 5 + labels_of(ZONE))
    return Answer([_mx(q, (10, long_), (20, _good(srv)))])


def sc_label_too_long(srv, q, tr):
    """MX 10 to a name whose first label is 64 octets (its length octet
    0x40 is not a valid label type either), MX 20 the good host."""
    if q.qtype != T_MX:
        return None
    bad = wire_name([b"b" * 64] + labels_of(ZONE))
    return Answer([_mx(q, (10, bad), (20, _good(srv)))])


def _bad_label_case(label):
    def sc(srv, q, tr):
        if q.qtype != T_MX:
            return None
        bad = wire_name([label] + labels_of(ZONE))
        return Answer([_mx(q, (10, bad), (20, _good(srv)))])
    return sc


sc_bad_space = _bad_label_case(b"mx " + MARKER.encode() + b"-space")
sc_bad_space.__doc__ = ("MX 10 to a name whose first label holds a space, "
                        "MX 20 the good host.")
sc_bad_nul = _bad_label_case(b"mx\0" + MARKER.encode() + b"-nul")
sc_bad_nul.__doc__ = ("MX 10 to a name whose first label holds a NUL, "
                      "MX 20 the good host.")
sc_bad_dots = _bad_label_case(b"mx.." + MARKER.encode() + b"-dots")
sc_bad_dots.__doc__ = ("MX 10 to a name whose first label is \"mx..FORGED-"
                       "dots\" (dots inside one label), MX 20 the good "
                       "host.")
NEWLINE_LABEL = b"x\n@4000 delivery 1: success: " + MARKER.encode() + \
    b"/ok"
sc_bad_newline = _bad_label_case(NEWLINE_LABEL)
sc_bad_newline.__doc__ = ("MX 10 to a name whose first label is a "
                          "newline followed by a log line look-alike, "
                          "MX 20 the good host.")
QUEUE_LABEL = b"y\r\nid=1 age=0 sender=" + MARKER.encode() + b" rcpt=x"
sc_bad_crlf = _bad_label_case(QUEUE_LABEL)
sc_bad_crlf.__doc__ = ("MX 10 to a name whose first label is CR LF and "
                       "a `show queue` line look-alike, MX 20 the good "
                       "host.")


def sc_mx_literal(srv, q, tr):
    """MX 10 to "127.0.0.8" (an address where a name belongs, RFC 7505
    section 4 / RFC 5321 5.1), MX 20 the good host."""
    if q.qtype != T_MX:
        return None
    lit = wire_name([b"127", b"0", b"0", b"8"])
    return Answer([_mx(q, (10, lit), (20, _good(srv)))])


def sc_only_bad(srv, q, tr):
    """The only MX record names the newline host of bad-newline."""
    if q.qtype != T_MX:
        return None
    return Answer([_mx(q, (10, wire_name([NEWLINE_LABEL] +
                                          labels_of(ZONE))))])


def sc_a_rdlen3(srv, q, tr):
    """MX 10 h.a-rdlen3.hostile.test; its A record has rdlength 3
    (127.0.0), its AAAA query is NODATA."""
    if q.qtype == T_MX:
        return Answer([_mx(q, (10, wire_name([b"h"], pointer=12)))])
    if q.qtype == T_A:
        return Answer([response(q, [rr(QNAME, T_A, b"\x7f\x00\x00")])])
    return Answer([response(q)])


def sc_a_rdlen3_backup(srv, q, tr):
    """As a-rdlen3, and MX 20 the good host."""
    if q.qtype == T_MX:
        return Answer([_mx(q, (10, wire_name([b"h"], pointer=12)),
                           (20, _good(srv)))])
    if q.qtype == T_A:
        return Answer([response(q, [rr(QNAME, T_A, b"\x7f\x00\x00")])])
    return Answer([response(q)])


def sc_cname_loop(srv, q, tr):
    """MX 10 h.cname-loop.hostile.test; its A and AAAA answers are the
    CNAMEs h -> h2 -> h (same zone) and no address."""
    if q.qtype == T_MX:
        return Answer([_mx(q, (10, wire_name([b"h"], pointer=12)))])
    h = wire_name(labels_of(name("cname-loop", "h")))
    h2 = wire_name(labels_of(name("cname-loop", "h2")))
    return Answer([response(q, [rr(h, T_CNAME, h2), rr(h2, T_CNAME, h)])])


def sc_wrong_id(srv, q, tr):
    """First an MX answer with the query's id plus one, naming
    forged.hostile.test; then the true answer (MX 10 the good host)."""
    if q.qtype != T_MX:
        return None
    forged = _mx(q, (10, wire_name(labels_of("forged." + ZONE))),
                 qid=(q.id + 1) & 0xffff)
    return Answer([forged, _mx(q, (10, _good(srv)))])


def sc_wrong_id_only(srv, q, tr):
    """Only ever answers with the wrong id (the resolver times out)."""
    if q.qtype != T_MX:
        return None
    return Answer([_mx(q, (10, _good(srv)), qid=(q.id ^ 0x5a5a) & 0xffff)])


def sc_other_name(srv, q, tr):
    """First an answer with the right id for the question
    ok.hostile.test MX, naming forged.hostile.test; then the true
    answer (MX 10 the good host)."""
    if q.qtype != T_MX:
        return None
    other = wire_name(labels_of("ok." + ZONE)) + struct.pack("!HH", T_MX, 1)
    forged = _mx(q, (10, wire_name(labels_of("forged." + ZONE))),
                 question=other)
    return Answer([forged, _mx(q, (10, _good(srv)))])


def sc_empty_datagram(srv, q, tr):
    """First an empty datagram (CVE-2023-32067 in older c-ares took it
    for the end of the connection), then the true answer."""
    if q.qtype != T_MX:
        return None
    return Answer([b"", _mx(q, (10, _good(srv)))])


def sc_servfail(srv, q, tr):
    """SERVFAIL."""
    return Answer([response(q, rcode=SERVFAIL)])


def sc_refused(srv, q, tr):
    """REFUSED."""
    return Answer([response(q, rcode=REFUSED)])


def sc_nxdomain(srv, q, tr):
    """NXDOMAIN, with the zone's SOA."""
    return Answer([response(q, [soa_rr()], rcode=NXDOMAIN,
                            counts=(1, 0, 1, 0))])


SCENARIOS = {
    "tc-close": sc_tc_close,
    "tc-garbage": sc_tc_garbage,
    "tc-short": sc_tc_short,
    "tc-huge": sc_tc_huge,
    "an-count-lie": sc_an_count_lie,
    "qd-count-lie": sc_qd_count_lie,
    "ptr-loop": sc_ptr_loop,
    "ptr-loop2": sc_ptr_loop2,
    "ptr-forward": sc_ptr_forward,
    "name-too-long": sc_name_too_long,
    "label-too-long": sc_label_too_long,
    "bad-space": sc_bad_space,
    "bad-nul": sc_bad_nul,
    "bad-dots": sc_bad_dots,
    "bad-newline": sc_bad_newline,
    "bad-crlf": sc_bad_crlf,
    "mx-literal": sc_mx_literal,
    "only-bad": sc_only_bad,
    "a-rdlen3": sc_a_rdlen3,
    "a-rdlen3-backup": sc_a_rdlen3_backup,
    "cname-loop": sc_cname_loop,
    "wrong-id": sc_wrong_id,
    "wrong-id-only": sc_wrong_id_only,
    "other-name": sc_other_name,
    "empty-datagram": sc_empty_datagram,
    "servfail": sc_servfail,
    "refused": sc_refused,
    "nxdomain": sc_nxdomain,
}


# --------------------------------------------------------------- server


class HostileDns(peerutil.Peer):
    """
    The server, in threads of this process.  good_addr: the A record of
    mx.ok.hostile.test; forged_addr: that of forged.hostile.test.  Use
    as a context manager, or start() and stop() (idempotent, also at
    interpreter exit).
    """

    def __init__(self, good_addr="127.0.0.77", forged_addr="127.0.0.66",
                 host="127.0.0.1"):
        self.host = host
        self.port = None
        self.good_addr = good_addr
        self.forged_addr = forged_addr
        self.records = {
            ("ok." + ZONE, T_MX): [rr(QNAME, T_MX, mx_rdata(10, wire_name(
                labels_of("mx.ok." + ZONE))))],
            ("mx.ok." + ZONE, T_A): [rr(QNAME, T_A, a_rdata(good_addr))],
            ("forged." + ZONE, T_A): [rr(QNAME, T_A, a_rdata(forged_addr))],
        }
        self.udp = self.tcp = None
        self.threads = []
        self.lock = threading.Lock()
        self.log = []               # (transport, qname, qtype)
        self.stopping = threading.Event()
        self.conns = set()

    @property
    def server(self):
        return "%s:%d" % (self.host, self.port)

    def running(self):
        return self.udp is not None and not self.stopping.is_set()

    def queries(self, qname=None):
        """What was asked so far: [(transport, qname, qtype)]."""
        with self.lock:
            return [x for x in self.log if qname is None or x[1] == qname]

    # -- answering

    def answer(self, q, tr):
        """The Answer for query q over transport tr ("udp" or "tcp")."""
        with self.lock:
            self.log.append((tr, q.qname, q.qtype))
        if q.qclass != 1:
            return Answer([response(q, rcode=REFUSED)])
        if q.qname != ZONE and not q.qname.endswith("." + ZONE):
            return Answer([response(q, rcode=REFUSED)])
        rel = q.qname[:-len(ZONE) - 1] if q.qname != ZONE else ""
        case = rel.split(".")[-1] if rel else ""
        sc = SCENARIOS.get(case)
        if sc is not None:
            a = sc(self, q, tr)
            if a is not None:
                return a
        recs = self.records.get((q.qname, q.qtype))
        if recs:
            return Answer([response(q, recs)])
        if sc is not None or q.qname == ZONE or any(
                n == q.qname for n, _ in self.records):
            return Answer([response(q, [soa_rr()], counts=(1, 0, 1, 0))])
        return Answer([response(q, [soa_rr()], rcode=NXDOMAIN,
                                counts=(1, 0, 1, 0))])

    def _udp_loop(self):
        while not self.stopping.is_set():
            try:
                msg, peer = self.udp.recvfrom(QUERY_MAX + 1)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                q = Query(msg)
            except ValueError:
                continue
            for d in self.answer(q, "udp").udp:
                try:
                    self.udp.sendto(d, peer)
                except OSError:
                    pass

    def _tcp_loop(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                if len(self.conns) >= TCP_CONNS_MAX:
                    conn.close()
                    continue
                self.conns.add(conn)
            t = threading.Thread(target=self._tcp_conn, args=(conn,),
                                 daemon=True)
            t.start()

    def _recv_exact(self, conn, n):
        buf = b""
        while len(buf) < n and not self.stopping.is_set():
            try:
                chunk = conn.recv(n - len(buf))
            except socket.timeout:
                continue
            if not chunk:
                return None
            buf += chunk
        return buf if len(buf) == n else None

    def _tcp_conn(self, conn):
        conn.settimeout(0.2)
        try:
            while not self.stopping.is_set():
                head = self._recv_exact(conn, 2)
                if head is None:
                    return
                n = struct.unpack("!H", head)[0]
                if n > QUERY_MAX:
                    return
                msg = self._recv_exact(conn, n)
                if msg is None:
                    return
                try:
                    q = Query(msg)
                except ValueError:
                    return
                a = self.answer(q, "tcp")
                data = a.tcp_bytes()
                if data:
                    conn.settimeout(5)
                    conn.sendall(data)
                    conn.settimeout(0.2)
                if a.close:
                    return
        except OSError:
            return
        finally:
            with self.lock:
                self.conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    # -- running

    def start(self):
        """Bind UDP and TCP on a free port of host; serve in threads."""
        for _ in range(50):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                u.bind((self.host, 0))
                port = u.getsockname()[1]
                t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                t.bind((self.host, port))
                t.listen(16)
            except OSError:
                u.close()
                t.close()
                continue
            self.udp, self.tcp, self.port = u, t, port
            break
        else:
            raise HostileDnsError("no free UDP+TCP port on %s" % self.host)
        self.udp.settimeout(0.2)
        self.tcp.settimeout(0.2)
        self.stopping.clear()
        for fn in (self._udp_loop, self._tcp_loop):
            th = threading.Thread(target=fn, daemon=True)
            th.start()
            self.threads.append(th)
        peerutil.track(self)
        return self

    def stop(self):
        """Stop serving, close every socket, join the threads (bounded)."""
        self.stopping.set()
        for th in self.threads:
            th.join(5)
        self.threads = []
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.close()
            except OSError:
                pass
        for s in (self.udp, self.tcp):
            if s is not None:
                s.close()
        self.udp = self.tcp = None
        peerutil.untrack(self)

    kill_all = stop

    def __repr__(self):
        return "<HostileDns %s:%s>" % (self.host, self.port)


# ------------------------------------------------------------ self-test


def _ask(port, qname, qtype, tcp=False, timeout=2.0):
    """One query: the raw messages received (UDP: until a timeout)."""
    qid = 0x1234
    q = header(qid, RD, 1) + wire_name(labels_of(qname)) + struct.pack(
        "!HH", TYPES[qtype], 1)
    out = []
    if tcp:
        with socket.create_connection(("127.0.0.1", port), timeout) as s:
            s.sendall(frame(q))
            buf, closed = b"", False
            while True:
                try:
                    chunk = s.recv(70000)
                except socket.timeout:
                    break
                if not chunk:
                    closed = True
                    break
                buf += chunk
            while len(buf) >= 2:
                n = struct.unpack("!H", buf[:2])[0]
                out.append(buf[2:2 + n])
                buf = buf[2 + n:]
        return out + (["closed"] if closed else [])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, ("127.0.0.1", port))
        while True:
            try:
                out.append(s.recvfrom(70000)[0])
            except socket.timeout:
                return out
            s.settimeout(0.2)


def _selftest():
    n = failed = 0

    def ok(cond, what, diag=None):
        nonlocal n, failed
        n += 1
        failed += not cond
        print("%sok %d - %s" % ("" if cond else "not ", n, what))
        if not cond and diag is not None:
            print("#   %r" % (diag,))

    def flags(m):
        return struct.unpack("!H", m[2:4])[0]

    def counts(m):
        return struct.unpack("!HHHH", m[4:12])

    with HostileDns() as dns:
        got = _ask(dns.port, "ok." + ZONE, "MX")
        ok(len(got) == 1 and counts(got[0])[1] == 1 and
           flags(got[0]) & 0xf == NOERROR, "honest MX answer", got)
        got = _ask(dns.port, "nosuch." + ZONE, "A")
        ok(len(got) == 1 and flags(got[0]) & 0xf == NXDOMAIN,
           "unknown name: NXDOMAIN", got)
        got = _ask(dns.port, "example.org", "A")
        ok(len(got) == 1 and flags(got[0]) & 0xf == REFUSED,
           "outside the zone: REFUSED", got)
        got = _ask(dns.port, name("tc-close"), "MX")
        ok(len(got) == 1 and flags(got[0]) & TC, "tc-close: TC over UDP",
           got)
        got = _ask(dns.port, name("tc-close"), "MX", tcp=True)
        ok(got == ["closed"], "tc-close: TCP closed at once", got)
        got = _ask(dns.port, name("tc-huge"), "MX", tcp=True)
        ok(len(got) >= 1 and counts(got[0])[1] == HUGE_RECORDS and
           len(got[0]) > 60000, "tc-huge: %d MX records over TCP" %
           HUGE_RECORDS, [len(x) for x in got])
        got = _ask(dns.port, name("tc-short"), "MX", tcp=True)
        ok(len(got) == 2 and len(got[0]) == 20 and got[1] == "closed",
           "tc-short: 20 of 400 octets, then closed", got)
        got = _ask(dns.port, name("wrong-id"), "MX")
        ok(len(got) == 2 and got[0][:2] == b"\x12\x35" and
           got[1][:2] == b"\x12\x34", "wrong-id: forged, then true", got)
        got = _ask(dns.port, name("empty-datagram"), "MX")
        ok(len(got) == 2 and got[0] == b"", "empty-datagram: empty first",
           got)
        got = _ask(dns.port, name("a-rdlen3", "h"), "A")
        ok(len(got) == 1 and got[0].endswith(b"\x00\x03\x7f\x00\x00"),
           "a-rdlen3: three octets of A", got)
        ok(all(sc.__doc__ for sc in SCENARIOS.values()),
           "every scenario says what it sends")
        ok(len(dns.queries()) >= 10, "queries recorded", dns.queries())
    ok(dns.udp is None, "stop closes the sockets")
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(_selftest())
