#!/usr/bin/env python3
"""
TLS on sqmail's own SMTP listeners (libtls), with real clients: Python's
smtplib and ssl, `openssl s_client`, swaks and sslscan.  STARTTLS (RFC
3207) and implicit TLS (smtps, RFC 8314) deliver end to end, byte for
byte, with the TLS version and cipher in Received and ESMTPS as the
protocol word; the certificate is chosen by SNI among the pki blocks (a
listener may name its own); TLS 1.0 and 1.1 are refused, 1.2 and 1.3
work, `tls protocols` narrows that; whatever a client pipelines after
STARTTLS is dropped, never answered inside TLS; STARTTLS twice, with an
argument, inside a transaction or where it is not offered gets its
reply; a failed or stalled handshake closes the connection and is
logged; `sqmailctl reload` and SIGHUP serve renewed certificates to new
sessions while sessions opened before finish; `sqmaild -n` refuses a TLS
listener that cannot work; the private key is read by the parent (as
root: a key only root can read, smtp chrooted and unprivileged), and its
text is in the memory of no process once smtp has handed it to libtls.
"""
import hashlib
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
import certs
from sqtest import make_message, expect_delivered

SENDER = "sender@example.test"
YOU = "you@example.test"
MX = "mx.sqtest.test"           # the daemon's hostname: the default pki
OTHER = "other.sqtest.test"
TIMEOUT = sqtest.TIMEOUT

TLS_CONF = """\
pki "{mx}" {{
	certificate "{dir}/mx.crt"
	key "{dir}/mx.key"
	chain "{dir}/ca.crt"
}}
pki "{other}" {{ certificate "{dir}/other.crt" key "{dir}/other.key" }}
listen on 127.0.0.1 port {tlsport} tls
listen on 127.0.0.1 port {smtpsport} smtps
listen on 127.0.0.1 port {otherport} smtps pki "{other}"
{more}"""


def pem(path):
    with open(path) as f:
        return f.read()


def install(d, cert, name):
    """Copy a certificate and its key into the daemon's directory."""
    d.write(name + ".crt", pem(cert.cert))
    d.write(name + ".key", pem(cert.key))


class Tls:
    """The daemon's TLS ports and the test PKI."""

    def __init__(self, d, pki, more=""):
        self.d = d
        self.pki = pki
        self.tlsport = sqtest.free_port()
        self.smtpsport = sqtest.free_port()
        self.otherport = sqtest.free_port()
        self.mx = pki.server_cert([MX, "localhost"], name="mx")
        self.other = pki.server_cert([OTHER], name="other")
        install(d, self.mx, "mx")
        install(d, self.other, "other")
        self.keys = [self.mx.key, self.other.key]   # every key served
        d.write("ca.crt", pem(pki.ca.cert))
        d.write_conf(sqtest.DEFAULT_CONF, extra=TLS_CONF.format(
            dir=d.dir, mx=MX, other=OTHER, tlsport=self.tlsport,
            smtpsport=self.smtpsport, otherport=self.otherport, more=more))


def context(verify=True, cafile=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def starttls_client(port, name=MX, cafile=None, helo=True):
    """A sqtest.Client that said EHLO and STARTTLS and is in TLS now."""
    c = sqtest.Client(port)
    c.greeting()
    if helo:
        c.ehlo()
    r = c.cmd("STARTTLS")
    if r is None or r.code != 220:
        raise AssertionError("STARTTLS: %r" % r)
    c.sock = context(cafile is not None, cafile).wrap_socket(
        c.sock, server_hostname=name)
    return c


def smtps_client(port, name=MX, cafile=None):
    c = sqtest.Client(port)
    c.sock = context(cafile is not None, cafile).wrap_socket(
        c.sock, server_hostname=name)
    return c


def fingerprint_of(sock):
    return hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest()


def served(port, sni=None, starttls=False):
    """SHA-256 (hex) of the certificate the port serves for SNI sni."""
    if starttls:
        c = sqtest.Client(port)
        c.greeting()
        c.ehlo()
        c.cmd("STARTTLS")
        sock = c.sock
    else:
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    tls = context(False).wrap_socket(sock, server_hostname=sni)
    try:
        return fingerprint_of(tls)
    finally:
        tls.close()


class StartTlsSMTP(smtplib.SMTP):
    """smtplib.SMTP on 127.0.0.1 whose STARTTLS checks tls_name."""

    def __init__(self, port, tls_name=MX):
        super().__init__(timeout=TIMEOUT, local_hostname=sqtest.CLIENT_HELO)
        self.connect("127.0.0.1", port)
        self._host = tls_name


class SmtpsSMTP(smtplib.SMTP_SSL):
    """smtplib.SMTP_SSL on 127.0.0.1 verifying the certificate for name."""

    def __init__(self, port, ctx, tls_name=MX):
        self.tls_name = tls_name
        super().__init__(timeout=TIMEOUT, local_hostname=sqtest.CLIENT_HELO,
                         context=ctx)
        self.connect("127.0.0.1", port)

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((host, port), timeout)
        return self.context.wrap_socket(sock, server_hostname=self.tls_name)


def transact(s, msg, rcpt=YOU):
    """MAIL, RCPT, DATA on an smtplib session: the reply to the data."""
    code, text = s.mail(SENDER)
    if code != 250:
        return code, text
    code, text = s.rcpt(rcpt)
    if code != 250:
        return code, text
    return s.data(sqtest.crlf(msg))


RECEIVED_TLS = (r"\n\t\((TLSv1\.[23]) cipher ([A-Z0-9_-]+) (\d+) bits\)\n"
                r"\tby mx\.sqtest\.test \(sqmail\) with ESMTPS id \d+\n")


def received_says_tls(t, m, version, cipher, name):
    """Received carries the TLS comment and ESMTPS, as the client saw."""
    if m is None:
        t.ok(False, "%s: delivered" % name)
        return
    rec = m.received.decode("utf-8", "replace")
    g = t.like(rec, RECEIVED_TLS, "%s: Received has the TLS comment and "
               "\"with ESMTPS\"" % name)
    if g:
        t.is_((g.group(1), g.group(2)), (version, cipher),
              "%s: the version and cipher the client negotiated" % name)


# ------------------------------------------------------------ the tests


def config_check_refuses_tls_that_cannot_work(t, d, x):
    rc, out = d.check_conf()
    t.is_(rc, 0, "sqmaild -n accepts the TLS configuration", out)
    base = pem(d.conf_path)
    cases = [
        ("a tls listener without any pki block",
         "listen on 127.0.0.1 port 1 tls\n", False,
         r"listen on 127\.0\.0\.1: TLS needs a pki block"),
        ("a key that is not the certificate's",
         'pki "odd" { certificate "%s/mx.crt" key "%s/other.key" }\n'
         'listen on 127.0.0.1 port 1 smtps pki "odd"\n' % (d.dir, d.dir),
         True, r"tlsbad1\.conf:\d+: listen on 127\.0\.0\.1:1: TLS: "),
        ("a key file that is missing",
         'pki "gone" { certificate "%s/mx.crt" key "%s/none.key" }\n'
         % (d.dir, d.dir), True, r"none\.key: No such file"),
        ("a cipher list libtls does not know",
         'tls ciphers "NO-SUCH-CIPHER"\n', True,
         r"TLS: no ciphers for 'NO-SUCH-CIPHER'"),
        ("TLS 1.1 named as a protocol word that is not one",
         'tls protocols "tls1.1"\n', True, r"tls protocols \"tls1\.1\""),
    ]
    for i, (what, text, append, want) in enumerate(cases):
        p = d.write("tlsbad%d.conf" % i, base + text if append else
                    text + base)
        rc, out = d.check_conf(p)
        t.is_(rc, 1, "sqmaild -n refuses %s" % what, out)
        t.like(out, want, "and says why", out)


def ehlo_offers_starttls_where_configured(t, d, x):
    c = d.client()
    c.greeting()
    r = c.ehlo()
    t.ok(r is not None and "STARTTLS" not in r.lines,
         "the plain listener does not offer STARTTLS", r)
    t.reply(c.cmd("STARTTLS"), 502, "5.5.1", "STARTTLS there: 502 5.5.1", c)
    c.cmd("QUIT")
    c.close()
    c = d.client(port=x.tlsport)
    c.greeting()
    r = c.ehlo()
    t.ok(r is not None and "STARTTLS" in r.lines,
         "the tls listener offers STARTTLS in EHLO", r)
    r = c.cmd("HELP")
    t.like(r.text if r else None, r"\bSTARTTLS\b", "and names it in HELP")
    c.cmd("QUIT")
    c.close()


def starttls_with_smtplib_delivers_end_to_end(t, d, x):
    mark = d.log_mark()
    msg = make_message("over STARTTLS", body="secret\n.dot line\n")
    s = StartTlsSMTP(x.tlsport)
    try:
        s.ehlo()
        t.ok(s.has_extn("starttls"), "smtplib sees STARTTLS offered")
        code, _ = s.starttls(context=context(True, x.pki.ca.cert))
        t.is_(code, 220, "STARTTLS: 220, and the certificate verifies "
              "against the test CA for %s" % MX)
        version, cipher = s.sock.version(), s.sock.cipher()[0]
        s.ehlo()
        t.ok(not s.has_extn("starttls"), "EHLO inside TLS no longer offers "
             "STARTTLS")
        code, text = transact(s, msg)
        t.is_(code, 250, "the message is accepted over TLS", text)
    finally:
        s.quit()
    m = expect_delivered(t, d.maildir, msg, SENDER, YOU, "STARTTLS")
    received_says_tls(t, m, version, cipher, "STARTTLS")
    t.ok(d.wait_for_log(r"Accept::TLS::STARTTLS: S:127\.0\.0\.1 L:127\.0\.0"
                        r"\.1:%d %s %s \d+ bits SNI:%s" % (
                            x.tlsport, re.escape(version),
                            re.escape(cipher), re.escape(MX)), mark),
         "the log line of the handshake names version, cipher and SNI",
         d.log_text(mark))
    t.ok(d.wait_for_log(r"Close::CONNECT::Quit: .* messages 1 errors 0 tls "
                        r"%s %s" % (re.escape(version), re.escape(cipher)),
                        mark),
         "the session's closing log line carries them too")


def smtps_with_smtplib_delivers_end_to_end(t, d, x):
    msg = make_message("over SMTPS", body="implicit\n")
    s = SmtpsSMTP(x.smtpsport, context(True, x.pki.ca.cert))
    try:
        version, cipher = s.sock.version(), s.sock.cipher()[0]
        s.ehlo()
        t.ok(not s.has_extn("starttls"), "smtps: EHLO offers no STARTTLS")
        code, text = transact(s, msg)
        t.is_(code, 250, "smtps: the message is accepted", text)
    finally:
        s.quit()
    m = expect_delivered(t, d.maildir, msg, SENDER, YOU, "SMTPS")
    received_says_tls(t, m, version, cipher, "SMTPS")
    t.ok(d.wait_for_log(r"Accept::TLS::SMTPS: S:127\.0\.0\.1 L:127\.0\.0\.1:"
                        r"%d " % x.smtpsport), "smtps handshake logged")


def helo_over_tls_keeps_smtp_with_the_comment(t, d, x):
    msg = make_message("HELO over TLS")
    c = smtps_client(x.smtpsport)
    c.greeting()
    t.reply(c.cmd("HELO " + sqtest.CLIENT_HELO), 250, None, "HELO -> 250", c)
    t.reply(c.cmd("MAIL FROM:<%s>" % SENDER), 250, None, "MAIL", c)
    t.reply(c.cmd("RCPT TO:<%s>" % YOU), 250, None, "RCPT", c)
    t.reply(c.cmd("DATA"), 354, None, "DATA", c)
    c.send(sqtest.dot_stuff(sqtest.crlf(msg)) + b".\r\n")
    t.reply(c.reply(), 250, None, "end of data -> 250", c)
    c.cmd("QUIT")
    c.close()
    m = expect_delivered(t, d.maildir, msg, SENDER, YOU, "HELO over TLS")
    if m is not None:
        t.like(m.received.decode(), r"\n\t\(TLSv1\.[23] cipher \S+ \d+ "
               r"bits\)\n\tby \S+ \(sqmail\) with SMTP id ",
               "HELO: the TLS comment, and SMTP (no registered word)")


def large_message_and_pipelining_inside_tls(t, d, x):
    # 3 MiB through TLS records: input that libtls holds must be read.
    line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\n"
    msg = make_message("big over TLS", body=line * (3 * 1024 * 1024 //
                                                    len(line)))
    c = starttls_client(x.tlsport, MX, x.pki.ca.cert)
    t.reply(c.ehlo(), 250, None, "EHLO inside TLS", c)
    c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<alice@example.test>"
           "\r\nDATA\r\n" % (SENDER, YOU))
    codes = [r.code if r else None for r in (c.reply(), c.reply(),
                                              c.reply(), c.reply())]
    t.is_(codes, [250, 250, 250, 354], "four pipelined commands in one TLS "
          "write: four replies in order", c.transcript_tail())
    c.send(sqtest.dot_stuff(sqtest.crlf(msg)) + b".\r\nNOOP\r\n")
    t.reply(c.reply(), 250, None, "3 MiB accepted", c)
    t.reply(c.reply(), 250, None, "and the NOOP pipelined after the dot "
            "answered", c)
    c.cmd("QUIT")
    c.close()
    expect_delivered(t, d.maildir, msg, SENDER, YOU, "3 MiB over TLS")


def openssl_s_client_speaks_both(t, d, x):
    for what, args in (
            ("STARTTLS", ["-starttls", "smtp", "-connect",
                          "127.0.0.1:%d" % x.tlsport]),
            ("smtps", ["-connect", "127.0.0.1:%d" % x.smtpsport])):
        p = subprocess.run(
            ["openssl", "s_client"] + args + [
                "-servername", MX, "-CAfile", x.pki.ca.cert,
                "-verify_return_error", "-showcerts", "-crlf", "-ign_eof"],
            input=b"EHLO s-client.test\nQUIT\n", capture_output=True,
            timeout=TIMEOUT)
        out = p.stdout.decode("utf-8", "replace")
        t.is_(p.returncode, 0, "openssl s_client %s: handshake and session "
              "end cleanly" % what, out + p.stderr.decode())
        t.like(out, r"Verify return code: 0 \(ok\)", "%s: the chain "
               "verifies" % what)
        t.is_(len(re.findall(r"-----BEGIN CERTIFICATE-----", out)), 2,
              "%s: the certificate and its chain (the chain line) are "
              "served" % what)
        t.like(out, r"(?m)^250-mx\.sqtest\.test Hello s-client\.test",
               "%s: EHLO inside TLS answered" % what)
        t.like(out, r"(?m)^221 2\.0\.0 ", "%s: QUIT -> 221" % what)


def sni_chooses_the_certificate(t, d, x):
    mx, other = x.mx.fingerprint(), x.other.fingerprint()
    t.is_(served(x.smtpsport, MX), mx, "smtps, SNI %s: its certificate" % MX)
    t.is_(served(x.smtpsport, OTHER), other,
          "smtps, SNI %s: the other pki's certificate" % OTHER)
    t.is_(served(x.smtpsport, None), mx, "smtps, no SNI: the pki named "
          "like the hostname")
    t.is_(served(x.smtpsport, "unknown.test"), mx, "smtps, SNI of no pki: "
          "the default")
    t.is_(served(x.tlsport, OTHER, starttls=True), other,
          "STARTTLS, SNI %s: the other certificate" % OTHER)
    t.is_(served(x.otherport, None), other, "a listener naming pki \"%s\" "
          "serves it without SNI" % OTHER)
    t.is_(served(x.otherport, MX), other, "and only it, even for SNI %s"
          % MX)
    c = smtps_client(x.smtpsport, OTHER, x.pki.ca.cert)
    t.reply(c.greeting(), 220, None, "a client verifying %s gets through "
            "and is greeted" % OTHER, c)
    c.close()


def s_client(port, *args):
    p = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % port, "-servername", MX, "-crlf",
                        "-ign_eof"] + list(args), input=b"QUIT\n",
                       capture_output=True, timeout=TIMEOUT)
    return p.returncode, p.stdout.decode("utf-8", "replace") + \
        p.stderr.decode("utf-8", "replace")


def old_protocols_are_refused(t, d, x):
    # SECLEVEL=0: the client itself would offer TLS 1.0 and 1.1.
    for flag, name in (("-tls1", "TLS 1.0"), ("-tls1_1", "TLS 1.1")):
        mark = d.log_mark()
        rc, out = s_client(x.smtpsport, flag, "-cipher", "DEFAULT@SECLEVEL=0")
        t.isnt(rc, 0, "openssl s_client %s (%s) fails" % (flag, name), out)
        t.ok(d.wait_for_log(r"Reject::TLS::Handshake_Failed: S:127\.0\.0\.1 "
                            r"L:127\.0\.0\.1:%d .*(unsupported protocol|"
                            r"version)" % x.smtpsport, mark),
             "the server refused %s, and logged it" % name,
             d.log_text(mark))
    for flag, want in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        rc, out = s_client(x.smtpsport, flag)
        t.is_(rc, 0, "openssl s_client %s works" % flag, out)
        t.like(out, r"Protocol *: *%s|Protocol version: %s" % (
            re.escape(want), re.escape(want)), "and speaks %s" % want)
        t.like(out, r"(?m)^221 ", "%s: QUIT -> 221" % want)


def pipelined_input_after_starttls_is_dropped(t, d, x):
    mark = d.log_mark()
    c = sqtest.Client(x.tlsport)
    c.greeting()
    c.ehlo()
    # One segment: the injected commands ride with STARTTLS.
    inject = b"MAIL FROM:<evil@example.test>\r\nVRFY injected\r\n"
    c.send(b"STARTTLS\r\n" + inject)
    t.reply(c.reply(), 220, "2.0.0", "STARTTLS -> 220 2.0.0", c)
    t.is_(c.buf, b"", "nothing follows the 220 in plaintext")
    c.sock = context(True, x.pki.ca.cert).wrap_socket(
        c.sock, server_hostname=MX)
    t.ok(c.quiet_for(1.0 * sqtest.SCALE), "inside TLS the server says "
         "nothing before the client speaks (no reply to the injected "
         "commands)", c.buf)
    t.reply(c.cmd("NOOP"), 250, "2.0.0", "the first reply inside TLS is the "
            "one to NOOP, not to the injected VRFY (252)", c)
    t.reply(c.cmd("MAIL FROM:<%s>" % SENDER), 503, "5.5.1", "the session "
            "starts over after the handshake: MAIL before EHLO -> 503", c)
    t.reply(c.ehlo(), 250, None, "EHLO again -> 250", c)
    t.reply(c.cmd("RCPT TO:<%s>" % YOU), 503, "5.5.1", "the injected MAIL "
            "was not taken: RCPT -> 503 Send MAIL first", c)
    c.cmd("QUIT")
    c.close()
    t.ok(d.wait_for_log(r"Reject::TLS::Pipelined_After_STARTTLS: S:127\.0\.0"
                        r"\.1 H:%s octets %d dropped" % (
                            re.escape(sqtest.CLIENT_HELO), len(inject)),
                        mark),
         "the drop is logged with its size", d.log_text(mark))


def plaintext_after_the_220_breaks_the_handshake(t, d, x):
    mark = d.log_mark()
    c = sqtest.Client(x.tlsport)
    c.greeting()
    c.ehlo()
    t.reply(c.cmd("STARTTLS"), 220, None, "STARTTLS -> 220", c)
    c.send(b"VRFY late\r\n")
    failed = False
    try:
        context(False).wrap_socket(c.sock, server_hostname=MX)
    except (ssl.SSLError, OSError):
        failed = True
    t.ok(failed, "plaintext sent after the 220 is no TLS record: the "
         "handshake fails")
    t.ok(d.wait_for_log(r"Reject::TLS::Handshake_Failed: S:127\.0\.0\.1 "
                        r"L:127\.0\.0\.1:%d " % x.tlsport, mark),
         "the failure is logged", d.log_text(mark))
    t.unlike(d.log_text(mark), r"> 252 ", "VRFY was never answered")
    c.close()


def starttls_sequence_errors(t, d, x):
    c = sqtest.Client(x.tlsport)
    c.greeting()
    c.ehlo()
    t.reply(c.cmd("STARTTLS now"), 501, "5.5.4", "STARTTLS with an argument "
            "-> 501 5.5.4", c)
    t.reply(c.cmd("MAIL FROM:<%s>" % SENDER), 250, None, "MAIL -> 250", c)
    t.reply(c.cmd("STARTTLS"), 503, "5.5.1", "STARTTLS inside a transaction "
            "-> 503 5.5.1", c)
    t.reply(c.cmd("RSET"), 250, None, "RSET -> 250", c)
    t.reply(c.cmd("STARTTLS"), 220, None, "then STARTTLS -> 220", c)
    c.sock = context(False).wrap_socket(c.sock, server_hostname=MX)
    t.reply(c.ehlo(), 250, None, "EHLO inside TLS", c)
    t.reply(c.cmd("STARTTLS"), 503, "5.5.1", "STARTTLS a second time -> "
            "503 5.5.1", c)
    t.reply(c.cmd("NOOP"), 250, None, "the session goes on", c)
    c.cmd("QUIT")
    c.close()
    c = smtps_client(x.smtpsport)
    c.greeting()
    c.ehlo()
    t.reply(c.cmd("STARTTLS"), 503, "5.5.1", "STARTTLS on smtps -> 503 "
            "5.5.1", c)
    c.cmd("QUIT")
    c.close()
    c = starttls_client(x.tlsport, helo=False)
    t.reply(c.ehlo(), 250, None, "STARTTLS before EHLO works too (then "
            "EHLO inside TLS)", c)
    c.cmd("QUIT")
    c.close()


def swaks_tls_and_tlsc(t, d, x):
    if not sqtest.require_cmd(t, "swaks"):
        t.skip("swaks --tls and --tlsc", "swaks is not installed")
        return
    for what, args, port in (("--tls", ["--tls"], x.tlsport),
                             ("--tlsc", ["--tlsc"], x.smtpsport)):
        tag = "swaks %s %d" % (what, os.getpid())
        p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % port,
                            "--helo", sqtest.CLIENT_HELO, "--from", SENDER,
                            "--to", YOU, "--header", "Subject: " + tag,
                            "--timeout", str(int(TIMEOUT))] + args,
                           capture_output=True, timeout=TIMEOUT * 2)
        out = p.stdout.decode("utf-8", "replace")
        t.is_(p.returncode, 0, "swaks %s exits 0" % what, out)
        t.like(out, r"TLS started with cipher TLSv1\.[23]", "swaks %s: TLS "
               "is up" % what)
        got = d.wait_for_maildir(1, pred=lambda m, tag=tag: (
            m.header("Subject") or "") == tag)
        mine = [m for m in got if (m.header("Subject") or "") == tag]
        t.is_(len(mine), 1, "swaks %s: delivered" % what)
        if mine:
            t.like(mine[0].received.decode(), r"with ESMTPS id",
                   "swaks %s: ESMTPS in Received" % what)


def sslscan_finds_no_old_protocols_or_weak_ciphers(t, d, x):
    if not sqtest.require_cmd(t, "sslscan"):
        t.skip("sslscan", "sslscan is not installed (apt-get install "
               "sslscan)")
        return
    for what, args in (("smtps", ["127.0.0.1:%d" % x.smtpsport]),
                       ("STARTTLS", ["--starttls-smtp",
                                     "127.0.0.1:%d" % x.tlsport])):
        p = subprocess.run(["sslscan", "--no-colour", "--no-heartbleed",
                            "--sni-name=" + MX] + args, capture_output=True,
                           timeout=TIMEOUT * 4)
        out = p.stdout.decode("utf-8", "replace")
        for proto in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"):
            t.like(out, r"(?m)^%s\s+disabled" % re.escape(proto),
                   "sslscan %s: %s disabled" % (what, proto), out)
        for proto in ("TLSv1.2", "TLSv1.3"):
            t.like(out, r"(?m)^%s\s+enabled" % re.escape(proto),
                   "sslscan %s: %s enabled" % (what, proto))
        accepted = re.findall(r"(?m)^(?:Preferred|Accepted)\s+(TLSv1\.[0-3]|"
                              r"SSLv[23])\s+(\d+) bits\s+(\S+)", out)
        t.ok(len(accepted) > 0, "sslscan %s lists the accepted ciphers"
             % what, out)
        weak = [a for a in accepted if int(a[1]) < 128 or re.search(
            r"NULL|RC4|DES|EXP|anon|ADH|AECDH|MD5|PSK|SRP", a[2]) or
            not a[0].startswith("TLSv1.")]
        t.is_(weak, [], "sslscan %s: no cipher under 128 bits, no NULL, "
              "RC4, DES, export, anonymous or MD5" % what)
        nofs = [a for a in accepted if a[0] == "TLSv1.2" and not
                re.match(r"ECDHE|DHE", a[2])]
        t.is_(nofs, [], "sslscan %s: every TLS 1.2 cipher has forward "
              "secrecy (libtls \"secure\")" % what)


def reload_serves_renewed_certificates_open_sessions_finish(t, d, x):
    old = x.mx.fingerprint()
    t.is_(served(x.smtpsport, MX), old, "before: the first certificate")
    # Two sessions opened before the reload: STARTTLS mid-transaction,
    # and smtps.
    a = StartTlsSMTP(x.tlsport)
    a.ehlo()
    a.starttls(context=context(True, x.pki.ca.cert))
    a.ehlo()
    t.is_(a.mail(SENDER)[0], 250, "session A (STARTTLS): MAIL before the "
          "reload")
    t.is_(fingerprint_of(a.sock), old, "session A got the first "
          "certificate")
    b = smtps_client(x.smtpsport, MX, x.pki.ca.cert)
    b.greeting()
    b.ehlo()
    renewed = x.pki.server_cert([MX, "localhost", "renewed.test"],
                                name="mx-renewed")
    install(d, renewed, "mx")
    x.keys.append(renewed.key)
    rc, out, err = d.ctl("reload")
    t.is_(rc, 0, "sqmailctl reload with the renewed files exits 0", out + err)
    new = renewed.fingerprint()
    try:
        got = sqtest.wait_for("the renewed certificate", lambda: (
            lambda f: f if f == new else None)(served(x.smtpsport, MX)))
    except sqtest.WaitTimeout:
        got = served(x.smtpsport, MX)
    t.is_(got, new, "after the reload a new smtps session gets the renewed "
          "certificate")
    t.is_(served(x.tlsport, MX, starttls=True), new, "and so does a new "
          "STARTTLS session")
    msg_a = make_message("across the reload A")
    t.is_(a.rcpt(YOU)[0], 250, "session A goes on: RCPT -> 250")
    code, text = a.data(sqtest.crlf(msg_a))
    t.is_(code, 250, "session A: its message is accepted after the reload",
          text)
    a.quit()
    msg_b = make_message("across the reload B")
    t.reply(b.cmd("MAIL FROM:<%s>" % SENDER), 250, None, "session B goes "
            "on: MAIL", b)
    t.reply(b.cmd("RCPT TO:<%s>" % YOU), 250, None, "RCPT", b)
    t.reply(b.cmd("DATA"), 354, None, "DATA", b)
    b.send(sqtest.dot_stuff(sqtest.crlf(msg_b)) + b".\r\n")
    t.reply(b.reply(), 250, None, "session B: accepted after the reload", b)
    b.cmd("QUIT")
    b.close()
    expect_delivered(t, d.maildir, msg_a, SENDER, YOU, "session A")
    expect_delivered(t, d.maildir, msg_b, SENDER, YOU, "session B")

    # SIGHUP does the same.
    third = x.pki.server_cert([MX, "third.test"], name="mx-third")
    install(d, third, "mx")
    x.keys.append(third.key)
    os.kill(d.proc.pid, signal.SIGHUP)
    try:
        got = sqtest.wait_for("the certificate after SIGHUP", lambda: (
            lambda f: f if f == third.fingerprint() else None)(
                served(x.smtpsport, MX)))
    except sqtest.WaitTimeout:
        got = served(x.smtpsport, MX)
    t.is_(got, third.fingerprint(), "SIGHUP: new sessions get the next "
          "certificate")

    # A renewal gone wrong (the key of another certificate) is refused.
    d.write("mx.key", pem(x.other.key))
    rc, out, err = d.ctl("reload")
    t.is_(rc, 1, "reload with a key that does not match exits 1", out + err)
    t.is_(served(x.smtpsport, MX), third.fingerprint(), "and the running "
          "certificate stays")
    install(d, third, "mx")
    rc, out, err = d.ctl("reload")
    t.is_(rc, 0, "a good pair again reloads", out + err)


def handshake_failures_and_timeouts_close(t, x2):
    d, x = x2
    mark = d.log_mark()
    c = sqtest.Client(x.smtpsport)
    c.send("EHLO plaintext.test\r\n")
    t.ok(c.closed_by_server(), "smtps: plaintext instead of a ClientHello "
         "-> closed")
    c.close()
    t.ok(d.wait_for_log(r"Reject::TLS::Handshake_Failed: S:127\.0\.0\.1 "
                        r"L:127\.0\.0\.1:%d " % x.smtpsport, mark),
         "and logged", d.log_text(mark))
    c = sqtest.Client(x.smtpsport)
    t.ok(c.closed_by_server(), "smtps: a client that never starts the "
         "handshake is closed (command timeout)")
    c.close()
    t.ok(d.wait_for_log(r"Reject::TLS::Handshake_Timeout: S:127\.0\.0\.1 "
                        r"L:127\.0\.0\.1:%d" % x.smtpsport, mark),
         "the handshake timeout is logged")
    c = sqtest.Client(x.tlsport)
    c.greeting()
    t.reply(c.cmd("STARTTLS"), 220, None, "STARTTLS -> 220", c)
    t.ok(c.closed_by_server(), "STARTTLS then silence -> closed")
    c.close()
    t.ok(d.wait_for_log(r"Reject::TLS::Handshake_Timeout: S:127\.0\.0\.1 "
                        r"L:127\.0\.0\.1:%d" % x.tlsport, mark),
         "and logged")
    c = sqtest.Client(x.smtpsport)
    # The header of a 512-octet handshake record, and then nothing.
    c.send(b"\x16\x03\x01\x02\x00")
    t.ok(c.closed_by_server(), "a handshake left half way is closed too")
    c.close()
    t.ok(d.wait_for_log(r"Reject::TLS::Handshake_Timeout: ", mark, count=3),
         "logged as a timeout")


def tls_protocols_narrows_the_versions(t, x2):
    d, x = x2
    rc, out = s_client(x.smtpsport, "-tls1_2")
    t.isnt(rc, 0, "with tls protocols \"tlsv1.3\": TLS 1.2 is refused", out)
    rc, out = s_client(x.smtpsport, "-tls1_3")
    t.is_(rc, 0, "and TLS 1.3 works", out)


def no_process_holds_the_key_text(t, d, x):
    """
    The PEM text of every key served so far is in no process's memory:
    not in smtp, which wipes its copies once libtls has the key (in binary
    form, which this does not look for: sqmail.conf(5) says it is there),
    and in no other process at all.
    """
    if os.getuid() != 0:
        t.skip("process memory holds no key", "reading another process's "
               "memory needs root")
        return
    needles = []
    for k in x.keys:
        body = "".join(pem(k).splitlines()[1:-1])
        needles.append(body[-40:].encode())
    t.is_(memory_has(os.getpid(), needles), len(needles), "the search "
          "finds the keys where they are (this test's own memory)")
    procs = dict(d.role_pids())
    procs["parent"] = d.proc.pid
    found, unread = [], []
    for role, pid in sorted(procs.items()):
        try:
            hits = memory_has(pid, needles)
        except OSError as e:
            unread.append("%s: %s" % (role, e))
            continue
        if hits:
            found.append("%s: %d key(s)" % (role, hits))
    t.is_(unread, [], "the memory of every process could be read")
    t.is_(found, [], "no process holds the text of any of the %d private "
          "keys served (%s checked)" % (len(needles), ", ".join(
              sorted(procs))))


def memory_has(pid, needles):
    """How many of needles the writable mappings of pid hold."""
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().splitlines()
    left = set(needles)
    with open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            parts = line.split()
            if len(parts) < 2 or not parts[1].startswith("rw"):
                continue
            lo, hi = (int(v, 16) for v in parts[0].split("-"))
            if hi - lo > 512 * 1024 * 1024:
                continue
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError:
                continue
            for n in list(left):
                if n in data:
                    left.discard(n)
    return len(needles) - len(left)


PRIV_CONF = """\
hostname "mx.sqtest.test"
user "{duser}"
queue user "{duser}"
chroot "{dir}/empty"
spool "{spool}"
control socket "{sock}"
listen on 127.0.0.1 port {port}
pki "mx.sqtest.test" {{
	certificate "{dir}/priv/mx.crt"
	key "{dir}/priv/mx.key"
}}
listen on 127.0.0.1 port {smtpsport} smtps
dns servers "127.0.0.1:9"
domain "example.test" {{
	deliver maildir "{dir}/Maildir/"
	user "{duser}"
}}
"""


def as_root_the_key_is_for_the_parent_only(t, pki):
    if os.getuid() != 0:
        t.skip("a root-only key file", "needs root to start sqmaild "
               "privileged")
        return
    user = sqtest.run_user()
    port = sqtest.free_port()
    d = sqtest.Daemon(t, conf=PRIV_CONF, as_root=True, duser=user.pw_name,
                      smtpsport=port, name="priv")
    os.makedirs(d.path("empty"), mode=0o755)
    os.makedirs(d.path("priv"), mode=0o700)
    cert = pki.server_cert([MX, "localhost"], name="mx")
    shutil.copy(cert.cert, d.path("priv", "mx.crt"))
    shutil.copy(cert.key, d.path("priv", "mx.key"))
    os.chmod(d.path("priv", "mx.key"), 0o600)
    for sub in ("Maildir", "Maildir/new", "Maildir/cur", "Maildir/tmp"):
        os.makedirs(d.path(sub), exist_ok=True)
        os.chown(d.path(sub), user.pw_uid, user.pw_gid)
    st = os.stat(d.path("priv", "mx.key"))
    t.ok(st.st_uid == 0 and st.st_mode & 0o077 == 0, "the key file is "
         "root's, mode 0600, in a root-only directory")
    d.start()
    roles = d.role_pids()
    smtp = roles.get("smtp")
    status = sqtest.proc_status(smtp) if smtp else None
    t.ok(status is not None and int(status["Uid"].split()[1]) ==
         user.pw_uid and os.path.realpath("/proc/%d/root" % smtp) ==
         os.path.realpath(d.path("empty")),
         "smtp runs as %s, chrooted to the empty directory: it cannot open "
         "the key file" % user.pw_name, status)
    msg = make_message("root-only key")
    s = SmtpsSMTP(port, context(True, pki.ca.cert))
    try:
        s.ehlo()
        code, text = transact(s, msg)
        t.is_(code, 250, "smtps works with the key the parent read", text)
    finally:
        s.quit()
    expect_delivered(t, d.maildir, msg, SENDER, YOU, "root-only key")
    rc, out, err = d.ctl("reload")
    t.is_(rc, 0, "reload re-reads the root-only key (the parent does)",
          out + err)
    t.is_(served(port, MX), cert.fingerprint(), "and TLS still works")
    d.stop()


def main():
    t = sqtest.Tap()
    if not sqtest.have_cmd("openssl"):
        t.skip_all("openssl is not installed")
    try:
        pki = certs.make_pki()
    except certs.OpenSslError as e:
        t.bail_out("cannot make the test PKI: %s" % e)
    d = sqtest.Daemon(t)
    x = Tls(d, pki)
    sqtest.run(t, [config_check_refuses_tls_that_cannot_work], d, x,
               done=False)
    d.start()
    sqtest.run(t, [
        ehlo_offers_starttls_where_configured,
        starttls_with_smtplib_delivers_end_to_end,
        smtps_with_smtplib_delivers_end_to_end,
        helo_over_tls_keeps_smtp_with_the_comment,
        large_message_and_pipelining_inside_tls,
        openssl_s_client_speaks_both,
        sni_chooses_the_certificate,
        old_protocols_are_refused,
        pipelined_input_after_starttls_is_dropped,
        plaintext_after_the_220_breaks_the_handshake,
        starttls_sequence_errors,
        swaks_tls_and_tlsc,
        sslscan_finds_no_old_protocols_or_weak_ciphers,
        no_process_holds_the_key_text,
        reload_serves_renewed_certificates_open_sessions_finish,
        no_process_holds_the_key_text,
        sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
    ], d, x, done=False)
    # A short command timeout (the handshake's too) and TLS 1.3 only.
    d2 = sqtest.Daemon(t, name="short")
    x2 = Tls(d2, pki, more='limit command-timeout 2s\n'
             'tls protocols "tlsv1.3"\n')
    d2.start()
    sqtest.run(t, [
        handshake_failures_and_timeouts_close,
        tls_protocols_narrows_the_versions,
    ], (d2, x2), done=False)
    d2.stop()
    sqtest.run(t, [as_root_the_key_is_for_the_parent_only], pki)


if __name__ == "__main__":
    main()
