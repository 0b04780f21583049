#!/usr/bin/env python3
"""
X.509 client certificates on sqmail's listeners (`tls client-ca`, `auth
certificate`), with real clients: Python's smtplib and ssl over STARTTLS
and smtps, swaks --tls-cert/--tls-key and `openssl s_client -cert`.  A
certificate from the client CA that the mapping table names (by its
SHA-256 fingerprint, or by its subject CN) authenticates the session as
that user: a remote recipient is relayed (250, not 554), the log names
the user, Received says ESMTPSA, and AUTH afterwards gets 503.  A
certificate from the CA that the table does not name authenticates
nothing (logged) and the session goes on unauthenticated; one from
another CA, or expired, fails verification, which ends the handshake
(libtls cannot go on with a certificate it refused; logged).  A client
without a certificate still connects and delivers locally.
"""
import os
import re
import smtplib
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
import certs

SENDER = "sender@example.test"
YOU = "you@example.test"
REMOTE = "friend@remote.test"
MX = "mx.sqtest.test"
TIMEOUT = sqtest.TIMEOUT
FP_USER = "fpuser"
CN_USER = "cnuser"
CN_MAPPED = "carol.client.test"     # mapped by CN
CN_FP = "fp.client.test"            # mapped by fingerprint only
CN_UNMAPPED = "nobody.client.test"
CN_EXPIRED = "expired.client.test"

CONF = """\
pki "{mx}" {{ certificate "{dir}/mx.crt" key "{dir}/mx.key" }}
table certmap "file:{dir}/certmap"
table vusers "file:{dir}/vusers"
listen on 127.0.0.1 port {tlsport} tls client-ca "{dir}/client-ca.crt" auth certificate certmap auth users vusers
listen on 127.0.0.1 port {smtpsport} smtps tls client-ca "{dir}/client-ca.crt" auth certificate certmap
listen on 127.0.0.1 port {plainport} tls
"""


class Setup:
    def __init__(self, d, pki, other):
        self.tlsport = sqtest.free_port()
        self.smtpsport = sqtest.free_port()
        self.plainport = sqtest.free_port()
        srv = pki.server_cert([MX, "localhost"], name="mx")
        with open(srv.cert) as f:
            d.write("mx.crt", f.read())
        with open(srv.key) as f:
            d.write("mx.key", f.read())
        with open(pki.ca.cert) as f:
            d.write("client-ca.crt", f.read())
        self.fp = pki.client_cert(CN_FP, emails=("fp@example.test",))
        self.cn = pki.client_cert(CN_MAPPED, emails=("carol@example.test",))
        self.unmapped = pki.client_cert(CN_UNMAPPED,
                                        emails=("nobody@example.test",))
        self.expired = pki.client_cert(CN_EXPIRED, expired=True,
                                       emails=("old@example.test",))
        # Another CA's certificate with the very CN the table maps.
        self.othera = other.client_cert(CN_MAPPED,
                                        emails=("carol@example.test",))
        # The expired and the other CA's are mapped too: only
        # verification keeps them out.
        d.write("certmap", "".join([
            "# client certificates -> users\n",
            "sha256=%s %s\n" % (self.fp.fingerprint(), FP_USER),
            "cn=%s %s\n" % (CN_MAPPED, CN_USER),
            "sha256=%s %s\n" % (self.expired.fingerprint(), FP_USER),
            "sha256=%s %s\n" % (self.othera.fingerprint(), FP_USER),
        ]))
        d.write("vusers", "")
        d.write_conf(sqtest.DEFAULT_CONF, extra=CONF.format(
            mx=MX, dir=d.dir, tlsport=self.tlsport,
            smtpsport=self.smtpsport, plainport=self.plainport))


def ctx(cert=None):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    if cert is not None:
        c.load_cert_chain(cert.cert, cert.key)
    return c


def smtp_client(x, how, cert):
    if how == "starttls":
        s = smtplib.SMTP("127.0.0.1", x.tlsport, timeout=TIMEOUT)
        s.ehlo(sqtest.CLIENT_HELO)
        s.starttls(context=ctx(cert))
    else:
        s = smtplib.SMTP_SSL("127.0.0.1", x.smtpsport, timeout=TIMEOUT,
                             context=ctx(cert))
    s.ehlo(sqtest.CLIENT_HELO)
    return s


def relay_try(x, how, cert, tag):
    """(RCPT code, text, DATA code) for a remote recipient."""
    s = smtp_client(x, how, cert)
    code, text = s.mail(SENDER)
    if code != 250:
        s.quit()
        return code, text, None
    code, text = s.rcpt(REMOTE)
    dcode = None
    if code == 250:
        dcode, _ = s.data(sqtest.crlf(sqtest.make_message(tag)))
    s.quit()
    return code, text, dcode


def mapped_certificates_relay(t, d, x):
    for cert, user, key in ((x.fp, FP_USER, "sha256="), (x.cn, CN_USER,
                                                         "cn=")):
        for how in ("starttls", "smtps"):
            tag = "cert %s %s %d" % (user, how, os.getpid())
            code, text, dcode = relay_try(x, how, cert, tag)
            t.is_(code, 250, "smtplib over %s, certificate mapped by %s: "
                  "remote RCPT relayed" % (how, key), text)
            t.is_(dcode, 250, "... and the message is queued (%s)" % how)
        m = d.wait_for_log(r"Accept::AUTH::Certificate: S:127\.0\.0\.1 "
                           r"A:%s key %s" % (re.escape(user), key))
        t.ok(m is not None, "the log names %s and the key that matched "
             "(%s...)" % (user, key))
    q = d.queue() or []
    remote = [e for e in q if "remote.test" in repr(e)]
    t.ok(len(remote) >= 4, "the relayed messages wait in the queue for "
         "remote.test", repr(q))
    t.like(d.log_text(), r"Close::CONNECT::Quit: .* auth %s" % FP_USER,
           "the session's close line names the user")


def mapped_certificate_esmtpsa_and_auth_503(t, d, x):
    s = smtp_client(x, "starttls", x.fp)
    code, text = s.docmd("AUTH", "PLAIN AGZvbwBiYXI=")
    t.is_(code, 503, "AUTH after a mapped certificate: 503", text)
    tag = "esmtpsa cert %d" % os.getpid()
    s.mail(SENDER)
    s.rcpt(YOU)
    code, text = s.data(sqtest.crlf(sqtest.make_message(tag)))
    t.is_(code, 250, "a local message from the certificate's session", text)
    s.quit()
    got = d.wait_for_maildir(1, pred=lambda m: (
        m.header("Subject") or "") == tag)
    mine = [m for m in got if (m.header("Subject") or "") == tag]
    t.ok(len(mine) == 1 and b"with ESMTPSA id" in mine[0].received,
         "Received says ESMTPSA", mine[0].received if mine else None)
    t.ok(len(mine) == 1 and b"authenticated as" not in mine[0].received,
         "... and not who (received auth is off by default)",
         mine[0].received if mine else None)


def unmapped_certificate_authenticates_nothing(t, d, x):
    for how in ("starttls", "smtps"):
        code, text, _ = relay_try(x, how, x.unmapped, "unmapped")
        t.is_(code, 554, "a certificate the table does not name, over %s: "
              "remote RCPT refused (554)" % how, text)
    m = d.wait_for_log(r"Reject::AUTH::Certificate_Unmapped: "
                       r"S:127\.0\.0\.1 SHA256:%s" % x.unmapped.fingerprint())
    t.ok(m is not None, "the unmapped certificate is logged with its "
         "fingerprint")
    # The session goes on: local mail is taken.
    s = smtp_client(x, "starttls", x.unmapped)
    tag = "unmapped local %d" % os.getpid()
    s.mail(SENDER)
    code, text = s.rcpt(YOU)
    t.is_(code, 250, "the unmapped certificate's session delivers locally",
          text)
    s.data(sqtest.crlf(sqtest.make_message(tag)))
    s.quit()
    got = d.wait_for_maildir(1, pred=lambda m: (
        m.header("Subject") or "") == tag)
    mine = [m for m in got if (m.header("Subject") or "") == tag]
    t.ok(len(mine) == 1 and b"with ESMTPS id" in mine[0].received,
         "... as ESMTPS, not ESMTPSA", mine[0].received if mine else None)


def unverified_certificates_end_the_handshake(t, d, x):
    for cert, what, count in ((x.othera, "from another CA", 2),
                              (x.expired, "expired", 4)):
        for how in ("starttls", "smtps"):
            relayed = None
            err = None
            try:
                code, text, _ = relay_try(x, how, cert, "bad " + what)
                relayed = code == 250
            except (ssl.SSLError, smtplib.SMTPException, OSError) as e:
                err = e
            t.ok(err is not None and not relayed, "a certificate %s over "
                 "%s: the handshake fails, nothing relayed" % (what, how),
                 repr(err))
        # libtls says only that verification failed, not why.
        m = d.wait_for_log(r"Reject::TLS::Handshake_Failed: S:127\.0\.0\.1 "
                           r"L:\S+ .*certificate verify failed",
                           count=count)
        t.ok(m is not None, "the refused certificate (%s) is logged" % what)
    t.unlike(d.log_text(), r"Accept::AUTH::Certificate: .* A:\S+ key "
             r"sha256=(%s|%s)" % (x.othera.fingerprint(),
                                  x.expired.fingerprint()),
             "neither refused certificate was mapped, though the table "
             "names both")


def no_certificate_still_delivers(t, d, x):
    for how in ("starttls", "smtps"):
        s = smtp_client(x, how, None)
        tag = "no cert %s %d" % (how, os.getpid())
        s.mail(SENDER)
        code, text = s.rcpt(REMOTE)
        t.is_(code, 554, "no certificate over %s: remote RCPT refused" % how,
              text)
        code, text = s.rcpt(YOU)
        t.is_(code, 250, "no certificate over %s: local RCPT 250" % how,
              text)
        code, text = s.data(sqtest.crlf(sqtest.make_message(tag)))
        t.is_(code, 250, "no certificate over %s: delivered" % how, text)
        s.quit()
        got = d.wait_for_maildir(1, pred=lambda m: (
            m.header("Subject") or "") == tag)
        t.ok(any((m.header("Subject") or "") == tag for m in got),
             "no certificate over %s: in the Maildir" % how)
    # A listener without a client CA ignores the client's certificate.
    s = smtplib.SMTP("127.0.0.1", x.plainport, timeout=TIMEOUT)
    s.starttls(context=ctx(x.fp))
    s.ehlo(sqtest.CLIENT_HELO)
    s.mail(SENDER)
    code, text = s.rcpt(REMOTE)
    t.is_(code, 554, "a listener without client-ca: the certificate "
          "is not asked for and counts for nothing", text)
    s.quit()


def swaks_client_cert(t, d, x):
    if not sqtest.require_cmd(t, "swaks"):
        t.skip("swaks --tls-cert", "swaks is not installed")
        return
    for cert, want, what in ((x.fp, r"<~  250 2\.1\.5", "mapped: 250"),
                             (x.unmapped, r"<~\* 554 5\.7\.1", "unmapped: "
                              "554")):
        p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % x.tlsport,
                            "--tls", "--tls-cert", cert.cert, "--tls-key",
                            cert.key, "--from", SENDER, "--to", REMOTE,
                            "--helo", sqtest.CLIENT_HELO, "--quit-after",
                            "RCPT", "--timeout", str(int(TIMEOUT))],
                           capture_output=True, timeout=TIMEOUT * 2)
        out = p.stdout.decode("utf-8", "replace")
        t.like(out, want, "swaks --tls --tls-cert, certificate %s" % what)


def openssl_s_client_cert(t, d, x):
    for cert, want, what in ((x.cn, "250", "mapped by CN"),
                             (x.unmapped, "554", "unmapped")):
        script = ("EHLO %s\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nQUIT\r\n" % (
            sqtest.CLIENT_HELO, SENDER, REMOTE)).encode()
        p = subprocess.run(["openssl", "s_client", "-connect",
                            "127.0.0.1:%d" % x.smtpsport, "-cert", cert.cert,
                            "-key", cert.key, "-quiet", "-ign_eof"],
                           input=script, capture_output=True,
                           timeout=TIMEOUT * 2)
        out = p.stdout.decode("utf-8", "replace")
        codes = re.findall(r"^(\d{3}) ", out, re.M)
        # The replies: greeting, EHLO, MAIL, RCPT, QUIT.
        t.ok(len(codes) >= 4 and codes[3] == want, "openssl s_client -cert "
             "(smtps), certificate %s: RCPT to a remote domain %s" % (
                 what, want), out)


def main():
    t = sqtest.Tap()
    if not sqtest.have_cmd("openssl"):
        t.skip_all("openssl is not installed")
    pki = certs.make_pki()
    d = sqtest.Daemon(t)
    other = certs.make_pki(os.path.join(d.dir, "otherca"))
    x = Setup(d, pki, other)
    d.start()
    sqtest.run(t, [
        mapped_certificates_relay,
        mapped_certificate_esmtpsa_and_auth_503,
        unmapped_certificate_authenticates_nothing,
        unverified_certificates_end_the_handshake,
        no_certificate_still_delivers,
        swaks_client_cert,
        openssl_s_client_cert,
        sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
    ], d, x)


if __name__ == "__main__":
    main()
