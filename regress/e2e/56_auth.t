#!/usr/bin/env python3
"""
SMTP AUTH (RFC 4954) on sqmail's listeners, with the virtual-users table
backend: PLAIN and LOGIN with real clients (Python smtplib over STARTTLS
and smtps, swaks --auth --tls), checked by lka against crypt(3) hashes
made at test time (sha512-crypt and yescrypt, by openssl and mkpasswd
when present).  The replies: 235, 535 5.7.8 for a bad password, 501
5.5.2 for bad base64 and "*", 504 5.5.4 for an unknown mechanism, 503
5.5.1 for AUTH twice, before EHLO or in a transaction, 538 5.7.11 before
TLS on a listener that wants TLS (where AUTH is not offered), 530 5.7.0
for MAIL before AUTH on an "auth required" listener, 500 5.5.6 for a
response line over 12288 octets, 421 after three failures.  An
authenticated client relays (the message waits in the queue for a
remote domain), with ESMTPSA as protocol word and the user in the log.
lka hashes in worker threads: while 20 AUTH checks of a yescrypt hash
are under way, a RCPT on another connection is answered before the last
of them (an order, not a time, is asserted).
"""
import base64
import os
import select
import smtplib
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
import certs

SENDER = "sender@example.test"
YOU = "you@example.test"
MX = "mx.sqtest.test"
TIMEOUT = sqtest.TIMEOUT
USER = "alice@example.test"
PASS = "s3cret pass!"                # a space inside
USER2 = "bob"
PASS2 = "hunter2"

AUTH_CONF = """\
# Many failures from 127.0.0.1 on purpose: no per-address lockout here
# (56_auth_cram.t tests it).
limit auth-failures 0
# slow_auth_leaves_lka_responsive: 20 AUTH sessions and one more at once.
limit sessions-per-ip 40
received auth
pki "{mx}" {{ certificate "{dir}/mx.crt" key "{dir}/mx.key" }}
table vusers "file:{dir}/vusers"
table broken "file:{dir}/no-such-table"
listen on 127.0.0.1 port {tlsport} tls auth users vusers
listen on 127.0.0.1 port {smtpsport} smtps auth users vusers
listen on 127.0.0.1 port {subport} submission tls auth users vusers auth required
listen on 127.0.0.1 port {plainport} auth users vusers auth plaintext
listen on 127.0.0.1 port {brokenport} tls auth users broken
"""


def sha512_crypt(password):
    p = subprocess.run(["openssl", "passwd", "-6", "-stdin"],
                       input=password.encode(), capture_output=True,
                       timeout=TIMEOUT)
    if p.returncode != 0:
        raise RuntimeError("openssl passwd: %r" % p.stderr)
    return p.stdout.decode().strip()


def yescrypt(password):
    if not sqtest.have_cmd("mkpasswd"):
        return None
    p = subprocess.run(["mkpasswd", "-m", "yescrypt", "--stdin"],
                       input=password.encode(), capture_output=True,
                       timeout=TIMEOUT)
    if p.returncode != 0:
        return None
    return p.stdout.decode().strip()


class Auth:
    def __init__(self, d, pki):
        self.tlsport = sqtest.free_port()
        self.smtpsport = sqtest.free_port()
        self.subport = sqtest.free_port()
        self.plainport = sqtest.free_port()
        self.brokenport = sqtest.free_port()
        cert = pki.server_cert([MX, "localhost"], name="mx")
        with open(cert.cert) as f:
            d.write("mx.crt", f.read())
        with open(cert.key) as f:
            d.write("mx.key", f.read())
        self.yes = yescrypt(PASS2)
        users = {USER: sha512_crypt(PASS),
                 USER2: self.yes or sha512_crypt(PASS2),
                 "locked": "!" + sha512_crypt("locked")}
        d.write_table("vusers", users)
        # The broken listener's table is defined, its file is not there.
        d.write_conf(sqtest.DEFAULT_CONF, extra=AUTH_CONF.format(
            mx=MX, dir=d.dir, tlsport=self.tlsport,
            smtpsport=self.smtpsport, subport=self.subport,
            plainport=self.plainport, brokenport=self.brokenport))


def ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def starttls(port):
    c = sqtest.Client(port)
    c.greeting()
    c.ehlo()
    r = c.cmd("STARTTLS")
    if r is None or r.code != 220:
        raise AssertionError("STARTTLS: %r" % r)
    c.sock = ctx().wrap_socket(c.sock, server_hostname=MX)
    return c


def b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def plain(user, pw, zid=""):
    return b64(zid.encode() + b"\0" + user.encode() + b"\0" + pw.encode())


def ehlo_offers_auth_only_where_it_may(t, d, x):
    c = sqtest.Client(x.tlsport)
    c.greeting()
    r = c.ehlo()
    t.ok("STARTTLS" in r.lines and not any(
        l.startswith("AUTH") for l in r.lines),
        "tls listener, before TLS: STARTTLS offered, AUTH not", r.raw)
    r = c.cmd("AUTH PLAIN " + plain(USER, PASS))
    t.reply(r, 538, "5.7.11", "AUTH before TLS: 538 5.7.11", c)
    c.close()
    c = starttls(x.tlsport)
    r = c.ehlo()
    t.ok("AUTH PLAIN LOGIN" in r.lines, "after STARTTLS: AUTH PLAIN LOGIN",
         r.raw)
    c.close()
    c = sqtest.Client(x.plainport)
    c.greeting()
    r = c.ehlo()
    t.ok("AUTH PLAIN LOGIN" in r.lines, "auth plaintext: AUTH offered "
         "without TLS", r.raw)
    c.close()
    c = sqtest.Client(d.port)
    c.greeting()
    r = c.ehlo()
    t.ok(not any(l.startswith("AUTH") for l in r.lines),
         "listener without auth: no AUTH", r.raw)
    r = c.cmd("AUTH PLAIN " + plain(USER, PASS))
    t.reply(r, 502, "5.5.1", "listener without auth: AUTH gets 502", c)
    c.close()


def smtplib_logs_in_and_relays(t, d, x):
    for mech in ("PLAIN", "LOGIN"):
        for how in ("starttls", "smtps"):
            if how == "starttls":
                s = smtplib.SMTP("127.0.0.1", x.tlsport, timeout=TIMEOUT)
                s.starttls(context=ctx())
            else:
                s = smtplib.SMTP_SSL("127.0.0.1", x.smtpsport,
                                     timeout=TIMEOUT, context=ctx())
            s.ehlo(sqtest.CLIENT_HELO)
            s.user, s.password = USER, PASS
            code, text = s.auth(mech, getattr(s, "auth_" + mech.lower()),
                                initial_response_ok=(mech == "PLAIN"))
            t.is_(code, 235, "smtplib %s over %s: 235" % (mech, how), text)
            tag = "relay %s %s %d" % (mech, how, os.getpid())
            code, text = s.mail(SENDER)
            t.is_(code, 250, "smtplib %s %s: MAIL 250" % (mech, how), text)
            code, text = s.rcpt("friend@remote.test")
            t.is_(code, 250, "smtplib %s %s: remote RCPT relayed" % (
                mech, how), text)
            code, text = s.data(sqtest.crlf(sqtest.make_message(tag)))
            t.is_(code, 250, "smtplib %s %s: queued" % (mech, how), text)
            s.quit()
    m = d.wait_for_log(r"Accept::AUTH::Authenticated: S:127\.0\.0\.1 "
                       r"H:\S+ A:%s mech LOGIN" % USER)
    t.ok(m is not None, "the log names the authenticated user")
    q = d.queue() or []
    remote = [e for e in q if "remote.test" in repr(e)]
    t.ok(len(remote) >= 4, "the relayed messages wait in the queue for "
         "remote.test", repr(q))
    t.like(d.log_text(), r"Close::CONNECT::Quit: .* auth %s" % USER,
           "the session's close line names the user")


def smtplib_esmtpsa_locally(t, d, x):
    s = smtplib.SMTP("127.0.0.1", x.tlsport, timeout=TIMEOUT)
    s.starttls(context=ctx())
    s.ehlo(sqtest.CLIENT_HELO)
    s.login(USER2, PASS2)
    tag = "esmtpsa %d" % os.getpid()
    code, text = s.mail(SENDER)
    s.rcpt(YOU)
    code, text = s.data(sqtest.crlf(sqtest.make_message(tag)))
    t.is_(code, 250, "login as %s (%s hash): delivered" % (
        USER2, "yescrypt" if x.yes else "sha512-crypt"), text)
    s.quit()
    got = d.wait_for_maildir(1, pred=lambda m: (
        m.header("Subject") or "") == tag)
    mine = [m for m in got if (m.header("Subject") or "") == tag]
    t.ok(len(mine) == 1 and b"with ESMTPSA id" in mine[0].received,
         "Received says ESMTPSA", mine[0].received if mine else None)
    t.ok(len(mine) == 1 and (b"\n\t(authenticated as %s)\n" %
                             USER2.encode()) in mine[0].received,
         "and, with received auth, who", mine[0].received if mine else None)


def swaks_auth(t, d, x):
    if not sqtest.require_cmd(t, "swaks"):
        t.skip("swaks --auth", "swaks is not installed")
        return
    for mech in ("PLAIN", "LOGIN"):
        tag = "swaks %s %d" % (mech, os.getpid())
        p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % x.tlsport,
                            "--tls", "--auth", mech, "--auth-user", USER2,
                            "--auth-password", PASS2, "--from", SENDER,
                            "--to", YOU, "--helo", sqtest.CLIENT_HELO,
                            "--header", "Subject: " + tag,
                            "--timeout", str(int(TIMEOUT))],
                           capture_output=True, timeout=TIMEOUT * 2)
        out = p.stdout.decode("utf-8", "replace")
        t.is_(p.returncode, 0, "swaks --auth %s --tls exits 0" % mech, out)
        t.like(out, r"<~  235 2\.7\.0", "swaks %s: 235 2.7.0" % mech)
        p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % x.tlsport,
                            "--tls", "--auth", mech, "--auth-user", USER2,
                            "--auth-password", "wrong", "--from", SENDER,
                            "--to", YOU, "--helo", sqtest.CLIENT_HELO,
                            "--timeout", str(int(TIMEOUT))],
                           capture_output=True, timeout=TIMEOUT * 2)
        out = p.stdout.decode("utf-8", "replace")
        t.like(out, r"<~\* 535 5\.7\.8", "swaks %s, wrong password: 535 "
               "5.7.8" % mech)


def bad_input_replies(t, d, x):
    c = sqtest.Client(x.plainport)
    c.greeting()
    r = c.cmd("AUTH PLAIN " + plain(USER, PASS))
    t.reply(r, 503, "5.5.1", "AUTH before EHLO: 503 5.5.1", c)
    c.ehlo()
    r = c.cmd("AUTH PLAIN " + plain(USER, "wrong"))
    t.reply(r, 535, "5.7.8", "wrong password: 535 5.7.8", c)
    r = c.cmd("AUTH PLAIN AGVsbG8=x")
    t.reply(r, 501, "5.5.2", "malformed base64: 501 5.5.2", c)
    r = c.cmd("AUTH PLAIN")
    t.is_(r.code, 334, "AUTH PLAIN without initial response: 334", r.raw)
    r = c.cmd("*")
    t.reply(r, 501, "5.5.2", "\"*\" cancels: 501 5.5.2", c)
    r = c.cmd("AUTH LOGIN")
    t.is_(r.raw, "334 VXNlcm5hbWU6\r\n", "AUTH LOGIN asks Username:")
    r = c.cmd(b64(USER))
    t.is_(r.raw, "334 UGFzc3dvcmQ6\r\n", "then Password:")
    r = c.cmd("*")
    t.reply(r, 501, "5.5.2", "LOGIN cancelled at the password: 501", c)
    r = c.cmd("AUTH CRAM-SHA1")
    t.reply(r, 504, "5.5.4", "unknown mechanism: 504 5.5.4", c)
    r = c.cmd("AUTH PLAIN " + plain(USER, PASS, zid="bob"))
    t.reply(r, 535, "5.7.8", "PLAIN with another authzid: 535", c)
    # Two failures so far: the same user as authzid is fine.
    r = c.cmd("AUTH PLAIN " + plain(USER, PASS, zid=USER))
    t.reply(r, 235, "2.7.0", "PLAIN with authzid = authcid: 235", c)
    r = c.cmd("AUTH PLAIN " + plain(USER, PASS))
    t.reply(r, 503, "5.5.1", "AUTH twice: 503 5.5.1", c)
    c.close()

    c = sqtest.Client(x.plainport)
    c.greeting()
    c.ehlo()
    r = c.cmd("MAIL FROM:<%s>" % SENDER)
    r = c.cmd("AUTH PLAIN " + plain(USER, PASS))
    t.reply(r, 503, "5.5.1", "AUTH inside a transaction: 503 5.5.1", c)
    c.cmd("RSET")
    for what, data in (
            ("a NUL in the password",
             b64(b"\0" + USER.encode() + b"\0pa\0ss")),
            ("one NUL only", b64(USER.encode() + b"\0" + PASS.encode())),
            ("an empty user", b64(b"\0\0" + PASS.encode())),
            ("the empty response", "=")):
        r = c.cmd("AUTH PLAIN " + data)
        t.reply(r, 501, "5.5.2", "PLAIN with %s: 501 5.5.2" % what, c)
    # An AUTH line of 12288 octets is read whole; one longer is refused.
    line = "AUTH PLAIN " + plain(USER, "x" * 9000)
    t.ok(512 < len(line) <= 12288, "(an AUTH line of %d octets)" % len(line))
    r = c.cmd(line)
    t.reply(r, 535, "5.7.8", "a long AUTH line is read whole: 535 (the "
            "password is over 1024 octets)", c)
    r = c.cmd("AUTH PLAIN")
    c.send(("A" * 13000 + "\r\n").encode())
    r = c.reply()
    t.reply(r, 500, "5.5.6", "a response over 12288 octets: 500 5.5.6", c)
    r = c.cmd("NOOP")
    t.is_(r.code, 250, "the session goes on after it", r.raw)
    c.close()


def failures_are_limited(t, d, x):
    c = starttls(x.tlsport)
    c.ehlo()
    for i in range(2):
        r = c.cmd("AUTH PLAIN " + plain(USER, "wrong%d" % i))
        t.reply(r, 535, "5.7.8", "failure %d: 535" % (i + 1), c)
    c.send(("AUTH PLAIN " + plain("locked", "locked") + "\r\n").encode())
    rs = c.replies_until_eof()
    t.ok(len(rs) == 2 and rs[0].code == 535 and rs[1].code == 421,
         "a locked user is the third failure: 535, then 421 and close",
         [r.raw for r in rs])


def auth_required_listener(t, d, x):
    c = starttls(x.subport)
    c.ehlo()
    r = c.cmd("MAIL FROM:<%s>" % SENDER)
    t.reply(r, 530, "5.7.0", "auth required: MAIL before AUTH gets 530", c)
    r = c.cmd("AUTH PLAIN " + plain(USER2, PASS2))
    t.reply(r, 235, "2.7.0", "auth required: AUTH 235", c)
    r = c.cmd("MAIL FROM:<%s>" % SENDER)
    t.reply(r, 250, "2.1.0", "auth required: MAIL after AUTH 250", c)
    c.close()


def starttls_forgets_plaintext_auth(t, d, x):
    # Not via the tls listener (no plaintext AUTH there): on plainport
    # there is no STARTTLS, so the reset is checked through EHLO state.
    c = sqtest.Client(x.plainport)
    c.greeting()
    c.ehlo()
    r = c.cmd("AUTH PLAIN " + plain(USER, PASS))
    t.reply(r, 235, "2.7.0", "auth plaintext: AUTH without TLS 235", c)
    r = c.cmd("MAIL FROM:<%s>" % SENDER)
    r = c.cmd("RCPT TO:<friend@remote.test>")
    t.reply(r, 250, "2.1.5", "authenticated without TLS: relays", c)
    c.close()


def slow_auth_leaves_lka_responsive(t, d, x):
    """
    lka hashes a password in worker threads, not on its event loop: with
    20 yescrypt checks queued (2 threads, each check tens of milliseconds
    or more), a RCPT sent once the first check has answered must be
    answered before the last one.  On the loop, the RCPT would wait
    behind all of them.  Replies that arrive in the same poll round as
    the RCPT's count as earlier, so the check errs towards failing.
    """
    if x.yes is None:
        t.skip("lka answers a RCPT while slow AUTH checks run",
               "mkpasswd (package whois) with yescrypt is not installed")
        return
    n = 20
    rc = sqtest.Client(x.plainport)
    rc.greeting()
    rc.ehlo()
    r = rc.cmd("MAIL FROM:<%s>" % SENDER)
    t.reply(r, 250, "2.1.0", "responsiveness: MAIL on the RCPT session",
            rc)
    clients = []
    for i in range(n):
        c = sqtest.Client(x.plainport)
        c.greeting()
        c.ehlo()
        clients.append(c)
    for c in clients:
        c.send("AUTH PLAIN " + plain(USER2, PASS2) + "\r\n")
    pending = {c.sock: c for c in clients}
    codes = []
    sent = False
    rcpt = None
    before = None
    end = sqtest.deadline(TIMEOUT * 4)
    while (pending or rcpt is None) and time.monotonic() < end:
        socks = list(pending)
        if sent and rcpt is None:
            socks.append(rc.sock)
        ready, _, _ = select.select(socks, [], [],
                                    max(0.05, end - time.monotonic()))
        for s in ready:
            if s in pending:
                r = pending.pop(s).reply()
                codes.append(r.code if r else None)
        if rc.sock in ready:
            rcpt = rc.reply()
            before = len(codes)
        if codes and not sent:
            # The first AUTH answer is in: lka has the others queued.
            rc.send("RCPT TO:<%s>\r\n" % YOU)
            sent = True
    t.ok(len(codes) == n and all(c == 235 for c in codes),
         "responsiveness: %d concurrent AUTH with a yescrypt hash: all 235"
         % n, codes)
    t.ok(rcpt is not None and rcpt.code == 250,
         "responsiveness: the RCPT to a local user gets 250",
         rcpt.raw if rcpt else rc.transcript_tail())
    t.ok(before is not None and before < n,
         "responsiveness: the RCPT is answered while AUTH checks are still "
         "hashing (%s of %d answered before it)" % (before, n))
    rc.close()
    for c in clients:
        c.close()


def broken_table_is_temporary(t, d, x):
    c = starttls(x.brokenport)
    c.ehlo()
    r = c.cmd("AUTH PLAIN " + plain(USER, PASS))
    t.reply(r, 454, "4.7.0", "users table unreadable: 454 4.7.0", c)
    c.close()


def main():
    t = sqtest.Tap()
    if not sqtest.have_cmd("openssl"):
        t.skip_all("openssl is not installed")
    pki = certs.make_pki()
    d = sqtest.Daemon(t)
    x = Auth(d, pki)
    d.start()
    sqtest.run(t, [
        ehlo_offers_auth_only_where_it_may,
        smtplib_logs_in_and_relays,
        smtplib_esmtpsa_locally,
        swaks_auth,
        bad_input_replies,
        failures_are_limited,
        auth_required_listener,
        starttls_forgets_plaintext_auth,
        slow_auth_leaves_lka_responsive,
        broken_table_is_temporary,
        sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
    ], d, x)


if __name__ == "__main__":
    main()
