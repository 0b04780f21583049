#!/usr/bin/env python3
"""
The test peers themselves, before the remote-delivery and TLS/AUTH tests
rely on them: certs.py makes a sound throw-away PKI (chains verify, the
expired and self-signed certificates fail for exactly that reason, the
fingerprints are openssl's), and mtapeer.py runs a real Postfix on
loopback that behaves as each option says.  smtplib stands in for
sqmail's SMTP client; sqmaild is not needed.  Root only (Postfix's
master starts as root); Postfix, openssl and Cyrus SASL's saslpasswd2
(sasl2-bin) must be there: a missing one is a failure, not a skip.
"""
import contextlib
import hashlib
import os
import re
import smtplib
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest                                       # noqa: E402
from sqtest import crlf, make_message, bytes_diff   # noqa: E402
import certs                                        # noqa: E402
import mtapeer                                      # noqa: E402
import peerutil                                     # noqa: E402

SENDER = "sender@example.org"
RCPT = "you@example.net"
RCPT2 = "Other.Person@example.net"
REMOTE = "someone@remote.test"
CA_CN = "sqmail test CA"
TIMEOUT = 10 * sqtest.SCALE

_pki = None


def pki():
    """One PKI for the whole file, in the scratch directory."""
    global _pki
    if _pki is None:
        _pki = certs.make_pki(os.path.join(sqtest.scratch_root(), "pki"))
    return _pki


def still_running(pids):
    """Those of pids that still run (zombies count as gone)."""
    left = []
    for p in pids:
        st = peerutil.stat(p)
        if st is not None and st[0] not in ("Z", "X"):
            left.append(p)
    return left


@contextlib.contextmanager
def peer(t, name, **kw):
    """A started MtaPeer; on the way out, stop it and check nothing is left."""
    kw.setdefault("pki", pki())
    p = mtapeer.MtaPeer(scratch=os.path.join(sqtest.scratch_root(), name),
                        name=name, **kw)
    t.failure_hooks.append(p.diag_lines)
    started = False
    try:
        p.start(timeout=20 * sqtest.SCALE)
        started = True
        yield p
    finally:
        seen = p.processes()
        pgid = p.pgid
        p.stop()
        t.failure_hooks.remove(p.diag_lines)
        if started:
            members = [x for x in sqtest.all_pids() if
                       (sqtest.proc_stat(x) or {}).get("pgid") == pgid]
            left = still_running(sorted(set(seen + members)))
            t.ok(seen and not left, "%s: stop() ends all %d processes of "
                 "its Postfix" % (name, len(seen)), "left: %s" % ", ".join(
                     "%d %s" % (x, sqtest.proc_cmdline(x)) for x in left))


class SMTP(smtplib.SMTP):
    """smtplib.SMTP on 127.0.0.1 whose STARTTLS checks tls_name."""

    def __init__(self, port, tls_name="peer.test"):
        super().__init__(timeout=TIMEOUT, local_hostname=sqtest.CLIENT_HELO)
        self.greeting = self.connect("127.0.0.1", port)
        self._host = tls_name           # what starttls() verifies


class SMTPS(smtplib.SMTP_SSL):
    """smtplib.SMTP_SSL on 127.0.0.1 verifying the certificate for name."""

    def __init__(self, port, context, tls_name="peer.test"):
        self.tls_name = tls_name
        super().__init__(timeout=TIMEOUT, local_hostname=sqtest.CLIENT_HELO,
                         context=context)
        self.greeting = self.connect("127.0.0.1", port)

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((host, port), timeout)
        return self.context.wrap_socket(sock, server_hostname=self.tls_name)


def ca_context(client=None):
    ctx = ssl.create_default_context(cafile=pki().ca.cert)
    if client is not None:
        ctx.load_cert_chain(client.cert, client.key)
    return ctx


def close_session(s):
    try:
        s.quit()
    except (smtplib.SMTPException, OSError):
        s.close()


def transaction(s, sender, rcpts, msg, mail_options=()):
    """MAIL, RCPTs, DATA on an open session: the replies, in order."""
    out = [s.mail(sender, list(mail_options))]
    for r in rcpts:
        out.append(s.rcpt(r))
    if any(c == 250 for c, _ in out[1:]) and out[0][0] == 250:
        out.append(s.data(crlf(msg)))
    else:
        s.rset()
    return out


def send(port, sender, rcpts, msg):
    """One plain transaction; the reply to the end of DATA."""
    s = SMTP(port)
    try:
        s.ehlo()
        return transaction(s, sender, rcpts, msg)[-1]
    finally:
        close_session(s)


def reply_is(t, got, code, enhanced, text, name):
    """An smtplib (code, bytes) reply: code, enhanced code, text pattern."""
    msg = got[1].decode("latin-1") if isinstance(got[1], bytes) else got[1]
    good = got[0] == code and msg.startswith(enhanced + " ") and \
        re.search(text, msg) is not None
    return t.ok(good, name, "     got: %d %s\nexpected: %d %s /%s/" % (
        got[0], msg, code, enhanced, text))


def exactly(t, peer_, msg, sender, rcpts, name, n=1, protocol="ESMTP"):
    """Wait for the n-th message; check envelope and bytes; return it."""
    msgs = peer_.wait_messages(n, TIMEOUT)
    if not t.ok(len(msgs) == n, "%s: %d message(s) received" % (name, n),
                "got %r" % (msgs,)):
        return None
    m = msgs[-1]
    t.ok(m.sender == sender and sorted(m.rcpts) == sorted(rcpts),
         "%s: envelope <%s> -> %s recorded" % (name, sender, rcpts),
         "got <%s> -> %s" % (m.sender, m.rcpts))
    t.ok(m.body == msg, "%s: the bytes after Postfix's Received header are "
         "exactly the ones sent" % name, bytes_diff(m.body, msg))
    t.like(m.received, r"^Received: from %s \(unknown \[127\.0\.0\.1\]\) "
           r"(\(.*\) )?by %s \(Postfix\) with %s id %s" % (
               re.escape(sqtest.CLIENT_HELO), re.escape(peer_.hostname),
               protocol, m.queue_id),
           "%s: Postfix's Received header on top (with %s)" % (name,
                                                              protocol))
    head = m.data[:len(m.data) - len(msg)]
    t.ok(m.data.endswith(msg) and head.startswith(b"Received: ") and
         b"\nReceived:" not in head and mtapeer.strip_received(head) == b""
         and mtapeer.strip_received(m.data) == msg,
         "%s: data is one Received header + the message; strip_received() "
         "removes exactly that header" % name, m.data[:300])
    return m


# ------------------------------------------------------------- certs


def run_openssl(*args, input=None):
    p = subprocess.run(["openssl"] + list(args), capture_output=True,
                       input=input, timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace") + \
        p.stderr.decode("utf-8", "replace")


def certs_make_a_sound_test_pki(t):
    k = pki()
    rc, out = run_openssl("verify", "-x509_strict", "-CAfile", k.ca.cert,
                          k.server.cert, k.client.cert)
    t.ok(rc == 0 and out.count(": OK") == 2, "server and client "
         "certificates verify (x509_strict) against the test CA", out)
    rc, out = run_openssl("x509", "-in", k.server.cert, "-noout", "-ext",
                          "subjectAltName,extendedKeyUsage")
    t.ok(rc == 0 and "DNS:peer.test" in out and "DNS:localhost" in out and
         "IP Address:127.0.0.1" in out and "IP Address:0:0:0:0:0:0:0:1" in
         out and "TLS Web Server Authentication" in out,
         "the server certificate names peer.test, localhost, 127.0.0.1 "
         "and ::1 (SAN) for serverAuth", out)
    rc, out = run_openssl("x509", "-in", k.client.cert, "-noout", "-subject",
                          "-ext", "subjectAltName,extendedKeyUsage")
    t.ok(rc == 0 and "CN = %s" % certs.CLIENT_CN in out and
         "email:%s" % certs.CLIENT_EMAIL in out and
         "TLS Web Client Authentication" in out,
         "the client certificate has CN %s, email SAN %s, clientAuth" % (
             certs.CLIENT_CN, certs.CLIENT_EMAIL), out)
    for c in ("ca", "server", "client", "selfsigned", "expired"):
        rc, out = run_openssl("pkey", "-in", getattr(k, c).key, "-noout",
                              "-text")
        t.ok(rc == 0 and "prime256v1" in out, "%s key is EC P-256" % c,
             out[-300:])

    rc, out = run_openssl("x509", "-in", k.expired.cert, "-noout",
                          "-checkend", "0", "-enddate")
    t.ok(rc == 1 and "will expire" in out and "2020" in out,
         "the expired certificate is expired (openssl x509 -checkend 0)", out)
    rc, out = run_openssl("x509", "-in", k.server.cert, "-noout",
                          "-checkend", str(300 * 86400))
    t.ok(rc == 0, "the server certificate is good for 300 more days", out)
    rc, out = run_openssl("verify", "-CAfile", k.ca.cert, k.expired.cert)
    t.ok(rc != 0 and "certificate has expired" in out and
         "self-signed" not in out, "the expired certificate fails only for "
         "its dates (it is from the CA)", out)
    rc, out = run_openssl("verify", "-CAfile", k.ca.cert, k.selfsigned.cert)
    t.ok(rc != 0 and "self-signed certificate" in out,
         "the self-signed certificate is not trusted by the CA", out)
    rc, out = run_openssl("x509", "-in", k.selfsigned.cert, "-noout",
                          "-subject", "-issuer", "-checkend", "86400",
                          "-ext", "subjectAltName")
    t.ok(rc == 0 and "issuer=CN = peer.test" in out and
         "DNS:peer.test" in out, "it is its own issuer, names peer.test and "
         "has good dates", out)

    rc, out = run_openssl("x509", "-in", k.server.cert, "-noout",
                          "-fingerprint", "-sha256")
    m = re.search(r"Fingerprint=([0-9A-F:]+)", out)
    want = m.group(1) if m else None
    fp = certs.fingerprint(k.server.cert, colons=True)
    t.is_(fp, want, "fingerprint(colons=True) is openssl x509 -fingerprint "
          "-sha256")
    t.is_(certs.fingerprint(k.server.cert), (want or "").replace(
        ":", "").lower(), "fingerprint() is the same as plain lower-case hex")
    t.ok(re.fullmatch(r"[0-9a-f]{64}", k.server.fingerprint()) is not None
         and k.server.fingerprint() != k.selfsigned.fingerprint(),
         "Cert.fingerprint(): 64 hex digits, one per certificate")
    rc, pub = run_openssl("x509", "-in", k.server.cert, "-noout", "-pubkey")
    p = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"],
                       input=pub.encode(), capture_output=True)
    t.is_(certs.spki_sha256(k.server.cert),
          hashlib.sha256(p.stdout).hexdigest() if p.returncode == 0 and
          p.stdout else "(openssl pkey failed)",
          "spki_sha256() hashes the DER public key")

    t.ok(certs.make_pki(k.dir) is k, "make_pki() is cached per directory")
    extra = k.server_cert(["mx.example.test", "127.0.0.2"])
    rc, out = run_openssl("verify", "-CAfile", k.ca.cert, extra.cert)
    rc2, out2 = run_openssl("x509", "-in", extra.cert, "-noout", "-ext",
                            "subjectAltName")
    t.ok(rc == 0 and "DNS:mx.example.test" in out2 and
         "IP Address:127.0.0.2" in out2 and
         k.server_cert(["mx.example.test", "127.0.0.2"]) is extra,
         "server_cert(names): a cached CA-signed leaf for those names",
         out, out2)


# --------------------------------------------------------------- SMTP

MSG_8BIT = make_message(
    "exact bytes", body=(
        b"8-bit: caf\xc3\xa9 \xff\xfe\n"
        b".a line that starts with a dot\n"
        b"..two dots\n.\n"
        b"trailing white space \t \n"
        + b"x" * 990 + b"\n"
        b"From the start of a line\n"
        b"last line\n"), sender=SENDER, to=RCPT)


def plain_peer_keeps_bytes_and_envelope(t):
    with peer(t, "plain") as p:
        s = SMTP(p.port)
        try:
            t.is_(s.greeting, (220, b"peer.test ESMTP mtapeer"),
                  "greeting: 220 peer.test ESMTP mtapeer")
            s.ehlo()
            f = s.esmtp_features
            t.ok(all(k in f for k in ("pipelining", "8bitmime", "smtputf8",
                                      "size")) and f.get("size") ==
                 "10240000" and "starttls" not in f and "auth" not in f,
                 "EHLO: PIPELINING, 8BITMIME, SMTPUTF8, SIZE 10240000; no "
                 "STARTTLS, no AUTH", f)
            r = transaction(s, SENDER, [RCPT, RCPT2], MSG_8BIT)
            t.ok([c for c, _ in r] == [250, 250, 250, 250],
                 "two recipients and 8-bit data accepted", r)
            reply_is(t, transaction(s, SENDER, [REMOTE], MSG_8BIT)[1], 554,
                     "5.7.1", r"Relay access denied",
                     "a recipient of another domain: 554 5.7.1 relay denied")
        finally:
            close_session(s)
        m = exactly(t, p, MSG_8BIT, SENDER, [RCPT, RCPT2], "8-bit message")
        if m:
            t.is_(m.helo, sqtest.CLIENT_HELO, "the HELO name is recorded")
            t.is_(m.header("Subject"), "exact bytes", "header() reads the "
                  "message's headers")
            t.ok(m.tls is None and m.auth_user == "" and m.client[0] ==
                 "127.0.0.1", "no TLS, no AUTH, client 127.0.0.1 recorded",
                 m.received, m.client)
            t.like(p.log(), r"%s: to=<%s>, .*status=sent" % (
                m.queue_id, re.escape(RCPT)), "log() has Postfix's log")
        p.reset()
        t.is_(p.messages(), [], "reset() forgets what was received")
        bounce = make_message("a bounce", to=SENDER, sender="MAILER-DAEMON")
        r = send(p.port, "", [RCPT], bounce)
        t.is_(r[0], 250, "a message from the null sender is accepted")
        exactly(t, p, bounce, "", [RCPT], "null sender")


def two_peers_run_at_once(t):
    a_msg = make_message("to the primary", sender=SENDER, to=RCPT)
    b_msg = make_message("to the backup", sender=SENDER, to=RCPT)
    with peer(t, "backup", hostname="mx2.peer.test") as b:
        with peer(t, "primary") as a:
            t.ok(a.port != b.port, "two peers on two ports (%d, %d)" % (
                a.port, b.port))
            t.is_([mtapeer._greeting("127.0.0.1", x.port) for x in (a, b)],
                  ["220 peer.test ESMTP mtapeer",
                   "220 mx2.peer.test ESMTP mtapeer"],
                  "each greets with its own hostname")
            send(a.port, SENDER, [RCPT], a_msg)
            send(b.port, SENDER, [RCPT], b_msg)
            ma, mb = a.wait_messages(1, TIMEOUT), b.wait_messages(1, TIMEOUT)
            t.ok(len(ma) == 1 and ma[0].body == a_msg and len(mb) == 1 and
                 mb[0].body == b_msg, "each peer received only its own "
                 "message", ma, mb)
        b_msg2 = make_message("after the primary stopped", sender=SENDER,
                              to=RCPT)
        send(b.port, SENDER, [RCPT], b_msg2)
        exactly(t, b, b_msg2, SENDER, [RCPT], "backup after the primary "
                "stopped", n=2)


def relay_peer_on_another_address(t):
    extra = "smtpd_banner = $myhostname ESMTP extra banner\n"
    with peer(t, "relay", relay=True, host="127.0.0.2",
              main_extra=extra) as p:
        t.is_(mtapeer._greeting("127.0.0.2", p.port),
              "220 peer.test ESMTP extra banner",
              "host=127.0.0.2: it listens there; main_extra applies")
        try:
            socket.create_connection(("127.0.0.1", p.port), 2).close()
            t.ok(False, "nothing listens on 127.0.0.1:%d" % p.port)
        except OSError:
            t.ok(True, "nothing listens on 127.0.0.1:%d" % p.port)
        msg = make_message("relayed", sender=SENDER, to=REMOTE)
        s = smtplib.SMTP("127.0.0.2", p.port, timeout=TIMEOUT,
                         local_hostname=sqtest.CLIENT_HELO)
        try:
            t.is_([c for c, _ in transaction(s, SENDER, [REMOTE, RCPT],
                                             msg)], [250, 250, 250, 250],
                  "relay=True: another domain is accepted without AUTH")
        finally:
            close_session(s)
        msgs = p.wait_messages(1, TIMEOUT)
        t.ok(len(msgs) == 1 and sorted(msgs[0].rcpts) == sorted(
            [REMOTE, RCPT]) and msgs[0].body == msg and msgs[0].auth_user
            == "", "both recipients in one delivery, bytes exact", msgs)


def starttls_peer_offers_tls_with_the_test_cert(t):
    with peer(t, "starttls", tls="starttls") as p:
        t.is_(p.smtps_port, None, "no SMTPS port unless asked for")
        s = SMTP(p.port)
        msg = make_message("over STARTTLS", sender=SENDER, to=RCPT)
        try:
            s.ehlo()
            t.ok("starttls" in s.esmtp_features, "EHLO offers STARTTLS")
            r = s.starttls(context=ca_context())
            t.is_(r[0], 220, "STARTTLS: 220, handshake verified against "
                  "the test CA for peer.test")
            cert = s.sock.getpeercert()
            t.ok(("DNS", "peer.test") in cert.get("subjectAltName", ()) and
                 s.sock.version() in ("TLSv1.2", "TLSv1.3"),
                 "the peer presents the peer.test certificate over %s" %
                 s.sock.version(), cert)
            t.is_(hashlib.sha256(s.sock.getpeercert(True)).hexdigest(),
                  pki().server.fingerprint(), "its fingerprint is "
                  "certs.fingerprint() of pki.server")
            s.ehlo()
            t.ok("starttls" not in s.esmtp_features, "no STARTTLS once in "
                 "TLS")
            r = transaction(s, SENDER, [RCPT], msg)
            t.is_(r[-1][0], 250, "message accepted over TLS")
        finally:
            close_session(s)
        m = exactly(t, p, msg, SENDER, [RCPT], "STARTTLS", protocol="ESMTPS")
        t.like(m and m.tls, r"^TLSv1\.[23] with cipher", "Message.tls "
               "tells the TLS version and cipher")
        s = SMTP(p.port, tls_name="wrong.test")
        try:
            s.ehlo()
            try:
                s.starttls(context=ca_context())
                t.ok(False, "the certificate does not verify for wrong.test")
            except ssl.SSLCertVerificationError as e:
                t.like(str(e), r"Hostname mismatch", "the certificate does "
                       "not verify for wrong.test")
        finally:
            s.close()
        plain = make_message("without TLS", sender=SENDER, to=RCPT)
        t.is_(send(p.port, SENDER, [RCPT], plain)[0], 250,
              "level may: mail without STARTTLS is accepted too")
        m = exactly(t, p, plain, SENDER, [RCPT], "no STARTTLS", n=2)
        t.is_(m and m.tls, None, "Message.tls is None without TLS")


def smtps_peer_speaks_tls_at_once(t):
    with peer(t, "smtps", tls="smtps") as p:
        t.ok(p.smtps_port and p.smtps_port != p.port,
             "an SMTPS port besides the plain one")
        c = sqtest.Client(p.smtps_port)
        t.ok(c.quiet_for(0.5 * sqtest.SCALE), "the SMTPS port says nothing "
             "in the clear (it waits for a TLS ClientHello)")
        c.close()
        msg = make_message("over SMTPS", sender=SENDER, to=RCPT)
        s = SMTPS(p.smtps_port, ca_context())
        try:
            t.ok(s.greeting[0] == 220 and s.sock.version() in (
                "TLSv1.2", "TLSv1.3"), "SMTPS: handshake verified for "
                "peer.test, then the 220 greeting", s.greeting)
            s.ehlo()
            t.ok("starttls" not in s.esmtp_features, "no STARTTLS offered "
                 "inside implicit TLS")
            t.is_(transaction(s, SENDER, [RCPT], msg)[-1][0], 250,
                  "message accepted over SMTPS")
        finally:
            close_session(s)
        m = exactly(t, p, msg, SENDER, [RCPT], "SMTPS", protocol="ESMTPS")
        t.ok(m is not None and m.tls is not None, "Message.tls set")
        s = SMTP(p.port)
        try:
            s.ehlo()
            t.ok("starttls" in s.esmtp_features, "the plain port offers "
                 "STARTTLS")
        finally:
            close_session(s)


def require_tls_peer_refuses_mail_in_the_clear(t):
    with peer(t, "require-tls", require_tls=True) as p:
        s = SMTP(p.port)
        msg = make_message("TLS required", sender=SENDER, to=RCPT)
        try:
            s.ehlo()
            reply_is(t, s.mail(SENDER), 530, "5.7.0",
                     r"Must issue a STARTTLS command first",
                     "MAIL before STARTTLS: 530 5.7.0")
            t.is_(s.starttls(context=ca_context())[0], 220,
                  "STARTTLS then works")
            s.ehlo()
            t.is_([c for c, _ in transaction(s, SENDER, [RCPT], msg)],
                  [250, 250, 250], "after STARTTLS MAIL, RCPT, DATA: 250")
        finally:
            close_session(s)
        exactly(t, p, msg, SENDER, [RCPT], "require_tls", protocol="ESMTPS")


def client_cert_is_asked_for_and_recorded(t):
    with peer(t, "client-cert", ask_client_cert=True) as p:
        for with_cert in (True, False):
            msg = make_message("client cert %s" % with_cert, sender=SENDER,
                               to=RCPT)
            s = SMTP(p.port)
            try:
                s.ehlo()
                s.starttls(context=ca_context(pki().client if with_cert
                                              else None))
                s.ehlo()
                transaction(s, SENDER, [RCPT], msg)
            finally:
                close_session(s)
            m = exactly(t, p, msg, SENDER, [RCPT], "client cert %s" %
                        with_cert, n=2 if not with_cert else 1,
                        protocol="ESMTPS")
            want = (certs.CLIENT_CN, CA_CN, True) if with_cert else None
            t.is_(m and m.client_cert, want, "Message.client_cert: %s" % (
                "CN, issuer, verified" if with_cert else "None without one"),
                m and m.received)


def peers_can_present_bad_certificates(t):
    for kind, why in (("expired", "certificate has expired"),
                      ("selfsigned", "self-signed certificate")):
        cert = getattr(pki(), kind)
        with peer(t, "cert-" + kind, tls="starttls", cert=cert) as p:
            s = SMTP(p.port)
            try:
                s.ehlo()
                try:
                    s.starttls(context=ca_context())
                    t.ok(False, "a %s certificate fails verification" % kind)
                except ssl.SSLCertVerificationError as e:
                    t.like(str(e), why, "a %s certificate fails verification"
                           " (%s)" % (kind, why))
            finally:
                s.close()
            s = SMTP(p.port)
            try:
                s.ehlo()
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                s.starttls(context=ctx)
                t.is_(hashlib.sha256(s.sock.getpeercert(True)).hexdigest(),
                      cert.fingerprint(), "unverified, the %s certificate "
                      "is the one pinned by its fingerprint" % kind)
            finally:
                close_session(s)


def auth_peer_needs_auth_to_relay(t):
    if not t.ok(os.access(mtapeer.SASLPASSWD2, os.X_OK) or
                sqtest.require_cmd(t, "saslpasswd2"),
                "saslpasswd2 is installed (Debian package sasl2-bin)",
                "%s missing: apt-get install sasl2-bin" % mtapeer.SASLPASSWD2):
        return
    users = {"alice": "secret", "bob@example.org": "pass word 2"}
    with peer(t, "auth", auth=users) as p:
        s = SMTP(p.port)
        try:
            s.ehlo()
            t.is_(sorted(s.esmtp_features.get("auth", "").split()),
                  ["CRAM-MD5", "LOGIN", "PLAIN"],
                  "EHLO: AUTH PLAIN LOGIN CRAM-MD5")
            reply_is(t, transaction(s, SENDER, [REMOTE], b"")[1], 554,
                     "5.7.1", r"<%s>: Relay access denied" % REMOTE,
                     "unauthenticated relay: 554 5.7.1 Relay access denied")
            msg = make_message("to its own domain", sender=SENDER, to=RCPT)
            t.is_(transaction(s, SENDER, [RCPT], msg)[-1][0], 250,
                  "unauthenticated mail to its own domain is accepted")
        finally:
            close_session(s)
        exactly(t, p, msg, SENDER, [RCPT], "no auth, own domain")
        p.reset()
        for mech in ("PLAIN", "LOGIN", "CRAM-MD5"):
            fn = "auth_" + mech.lower().replace("-", "_")
            for user, pw, good in (("alice", "secret", True),
                                   ("alice", "Secret", False),
                                   ("nobody", "secret", False)):
                s = SMTP(p.port)
                try:
                    s.ehlo()
                    s.user, s.password = user, pw
                    try:
                        r = s.auth(mech, getattr(s, fn))
                    except smtplib.SMTPAuthenticationError as e:
                        r = (e.smtp_code, e.smtp_error)
                    if not good:
                        reply_is(t, r, 535, "5.7.8", r"authentication failed",
                                 "AUTH %s as %s with a wrong password: 535 "
                                 "5.7.8" % (mech, user))
                        continue
                    reply_is(t, r, 235, "2.7.0", r"Authentication successful",
                             "AUTH %s as %s: 235" % (mech, user))
                    msg = make_message("relayed after AUTH %s" % mech,
                                       sender=SENDER, to=REMOTE)
                    r = transaction(s, SENDER, [REMOTE], msg)
                    t.is_([c for c, _ in r], [250, 250, 250],
                          "after AUTH %s relaying to %s is accepted" % (
                              mech, REMOTE))
                finally:
                    close_session(s)
                m = exactly(t, p, msg, SENDER, [REMOTE], "relayed after "
                            "AUTH %s" % mech, protocol="ESMTPA")
                t.ok(m is not None and m.auth_user == "alice" and
                     m.sasl_username == "alice@peer.test" and
                     m.sasl_method == mech and "(Authenticated sender: "
                     "alice@peer.test)" in m.received, "Message records the "
                     "authenticated user and the mechanism %s" % mech,
                     m and (m.auth_user, m.sasl_method, m.received))
                p.reset()
        s = SMTP(p.port)
        msg = make_message("from bob", sender=SENDER, to=REMOTE)
        try:
            s.ehlo()
            t.is_(s.login("bob@example.org", "pass word 2")[0], 235,
                  "a user name with @ and a password with spaces log in")
            transaction(s, SENDER, [REMOTE], msg)
        finally:
            close_session(s)
        m = exactly(t, p, msg, SENDER, [REMOTE], "relayed for bob",
                    protocol="ESMTPA")
        t.ok(m is not None and m.auth_user == m.sasl_username ==
             "bob@example.org", "a user name with @ is recorded as it is",
             m and m.sasl_username)


def reject_and_defer_maps_answer_as_configured(t):
    opts = dict(reject={"no@example.net": "550 5.1.1 no such user",
                        "gone.example.net": "551 5.1.6 moved away"},
                defer={"later@example.net": "451 4.3.0 try later",
                       "full@example.net": 452},
                reject_sender={"spammer@example.org": "553 5.7.1 go away"},
                reject_data={"badbody@example.org": "554 5.7.1 content "
                             "refused"},
                domains=["example.net", "gone.example.net"])
    with peer(t, "access", **opts) as p:
        s = SMTP(p.port)
        msg = make_message("partly accepted", sender=SENDER, to=RCPT)
        try:
            s.ehlo()
            r = transaction(s, SENDER, ["no@example.net", "x@gone.example.net",
                                        "later@example.net",
                                        "full@example.net", RCPT], msg)
            reply_is(t, r[1], 550, "5.1.1", r"^5\.1\.1 <no@example\.net>: "
                     r"Recipient address rejected: no such user$",
                     "reject: 550 5.1.1 as configured")
            reply_is(t, r[2], 551, "5.1.6", r"moved away$",
                     "reject by domain: 551 5.1.6")
            reply_is(t, r[3], 451, "4.3.0", r"^4\.3\.0 <later@example\.net>: "
                     r"Recipient address rejected: try later$",
                     "defer: 451 4.3.0 as configured")
            reply_is(t, r[4], 452, "4.7.1", r"rejected by mtapeer",
                     "defer with only a code: 452 and Postfix's 4.7.1")
            t.is_([r[5][0], r[6][0]], [250, 250], "the other recipient and "
                  "the message are accepted")
            reply_is(t, s.mail("spammer@example.org"), 553, "5.7.1",
                     r"Sender address rejected: go away$",
                     "reject_sender: MAIL FROM answered 553 5.7.1")
            s.rset()
            bad = make_message("refused at the end", sender="badbody@"
                               "example.org", to=RCPT)
            r = transaction(s, "badbody@example.org", [RCPT], bad)
            t.is_([c for c, _ in r[:2]], [250, 250], "reject_data: MAIL "
                  "and RCPT accepted")
            reply_is(t, r[2], 554, "5.7.1", r"content refused$",
                     "reject_data: 554 5.7.1 at the end of DATA")
        finally:
            close_session(s)
        exactly(t, p, msg, SENDER, [RCPT], "only the accepted recipient")
        t.ok(p.wait_log(r"reject: END-OF-MESSAGE", TIMEOUT) and
             all(m.sender != "badbody@example.org" for m in p.messages()),
             "the message refused at the end of DATA is not delivered",
             p.messages())


def greeting_refusals(t):
    with peer(t, "greet-554", greeting_code=554) as p:
        c = sqtest.Client(p.port)
        t.reply(c.greeting(), 554, "5.7.1", "greeting_code=554: the greeting "
                "is 554 5.7.1", c)
        t.like(c.transcript_tail(), r"Client host rejected: mtapeer refuses",
               "with Postfix's text")
        t.reply(c.ehlo(), 503, "5.7.0", "then EHLO gets 503 5.7.0", c)
        t.reply(c.cmd("MAIL FROM:<%s>" % SENDER), 503, "5.7.0",
                "and MAIL 503 5.7.0", c)
        t.reply(c.cmd("QUIT"), 221, None, "QUIT: 221", c)
        t.ok(c.closed_by_server(5), "and the peer closes")
        c.close()
    with peer(t, "greet-421", greeting_code=421,
              greeting_text="too busy") as p:
        c = sqtest.Client(p.port)
        t.reply(c.greeting(), 421, "4.7.1", "greeting_code=421: the greeting "
                "is 421 4.7.1", c)
        t.like(c.transcript_tail(), r"Client host rejected: too busy",
               "with the configured text")
        t.ok(c.closed_by_server(5), "and the peer closes the connection at "
             "once", c.transcript_tail())
        c.close()


def size_limit_is_enforced(t):
    with peer(t, "size", size_limit=4000) as p:
        s = SMTP(p.port)
        small = make_message("small", body="y" * 1000 + "\n", sender=SENDER,
                             to=RCPT)
        try:
            s.ehlo()
            t.is_(s.esmtp_features.get("size"), "4000", "EHLO: SIZE 4000")
            reply_is(t, s.mail(SENDER, ["SIZE=4001"]), 552, "5.3.4",
                     r"Message size exceeds fixed limit",
                     "MAIL SIZE=4001: 552 5.3.4")
            s.rset()
            big = make_message("big", body=("z" * 70 + "\n") * 80,
                               sender=SENDER, to=RCPT)
            r = transaction(s, SENDER, [RCPT], big, ["SIZE=100"])
            reply_is(t, r[-1], 552, "5.3.4", r"message file too big",
                     "5.6 kB of data: 552 5.3.4 at the end of DATA")
            s.rset()
            t.is_(transaction(s, SENDER, [RCPT], small)[-1][0], 250,
                  "a 1 kB message is accepted")
        finally:
            close_session(s)
        exactly(t, p, small, SENDER, [RCPT], "under the size limit")


def ehlo_keywords_can_be_discarded(t):
    with peer(t, "ehlo", no_pipelining=True, no_8bitmime=True,
              discard_ehlo=("smtputf8",)) as p:
        s = SMTP(p.port)
        try:
            s.ehlo()
            f = s.esmtp_features
            t.ok(not any(k in f for k in ("pipelining", "8bitmime",
                                          "smtputf8")) and "size" in f and
                 "enhancedstatuscodes" in f,
                 "no_pipelining, no_8bitmime, discard_ehlo: not in EHLO; "
                 "SIZE and ENHANCEDSTATUSCODES still are", f)
        finally:
            close_session(s)
        msg = make_message("still works", sender=SENDER, to=RCPT)
        t.is_(send(p.port, SENDER, [RCPT], msg)[0], 250,
              "mail is still accepted")
        exactly(t, p, msg, SENDER, [RCPT], "discarded keywords")


def main():
    t = sqtest.Tap()
    if os.getuid() != 0:
        t.skip_all("a Postfix peer needs root (its master starts as root)")
    for cmd in ("openssl", "postconf"):
        if not sqtest.require_cmd(t, cmd):
            t.ok(False, "%s is installed" % cmd, "install it: apt-get "
                 "install %s" % {"postconf": "postfix"}.get(cmd, cmd))
            t.done_testing()
    master = os.path.join(mtapeer.daemon_directory(), "master")
    if not t.ok(os.access(master, os.X_OK), "Postfix's master is at %s" %
                master):
        t.done_testing()
    sqtest.run(t, [
        certs_make_a_sound_test_pki,
        plain_peer_keeps_bytes_and_envelope,
        two_peers_run_at_once,
        relay_peer_on_another_address,
        starttls_peer_offers_tls_with_the_test_cert,
        smtps_peer_speaks_tls_at_once,
        require_tls_peer_refuses_mail_in_the_clear,
        client_cert_is_asked_for_and_recorded,
        peers_can_present_bad_certificates,
        auth_peer_needs_auth_to_relay,
        reject_and_defer_maps_answer_as_configured,
        greeting_refusals,
        size_limit_is_enforced,
        ehlo_keywords_can_be_discarded,
    ])


if __name__ == "__main__":
    main()
