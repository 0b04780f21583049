#!/usr/bin/env python3
"""
SMTP AUTH CRAM-MD5 (RFC 2195) and the per-address limit on failed AUTHs.

CRAM-MD5: the users table holds a secret after the crypt(3) hash
("cram:TEXT" or "cram64:BASE64"); a listener whose table has one offers
CRAM-MD5, one whose table has none does not (504 if asked), and a reload
that adds a secret makes it offered.  Real clients log in: Python smtplib
and swaks --auth CRAM-MD5.  The challenge is "<16 hex digits.time@host>",
new on every exchange, so a response replayed on another connection is
refused (535).  A user without a secret, a wrong secret, an unknown user:
535 5.7.8.  Bad base64, "*", a digest that is not 32 hex digits, an
initial response: 501.

The limit: "limit auth-failures 5" here.  Five refusals from 127.0.0.1
over three connections, then AUTH from 127.0.0.1 gets 421 4.7.0 even with
a good password, while 127.0.0.2 still authenticates.  Checks that expect
a refusal otherwise come from addresses of their own (127.0.0.3 ...) so
that they do not add up.
"""
import base64
import hashlib
import hmac
import os
import re
import smtplib
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest

SENDER = "sender@example.test"
YOU = "you@example.test"
TIMEOUT = sqtest.TIMEOUT
HOST = "mx.sqtest.test"
LIMIT = 5

ALICE, ALICE_SECRET, ALICE_PASS = "alice@example.test", "tanstaafl", "pw1"
BOB, BOB_SECRET = "bob", "two words\tand a tab"      # cram64:
CAROL, CAROL_PASS = "carol", "carolpw"                # no secret
DAVE, DAVE_SECRET = "dave", "dave-only-cram"          # hash "*"

CONF = """\
limit auth-failures {limit}
table cusers "file:{dir}/cusers"
table nocram "file:{dir}/nocram"
listen on 127.0.0.1 port {cramport} auth users cusers auth plaintext
listen on 127.0.0.1 port {nocramport} auth users nocram auth plaintext
"""


def sha512_crypt(password):
    p = subprocess.run(["openssl", "passwd", "-6", "-stdin"],
                       input=password.encode(), capture_output=True,
                       timeout=TIMEOUT)
    if p.returncode != 0:
        raise RuntimeError("openssl passwd: %r" % p.stderr)
    return p.stdout.decode().strip()


def b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def plain(user, pw):
    return b64(b"\0" + user.encode() + b"\0" + pw.encode())


def cram(user, secret, challenge):
    if isinstance(secret, str):
        secret = secret.encode()
    d = hmac.new(secret, challenge, hashlib.md5).hexdigest()
    return b64(user + " " + d)


class Cram:
    def __init__(self, d):
        self.cramport = sqtest.free_port()
        self.nocramport = sqtest.free_port()
        self.carol_hash = sha512_crypt(CAROL_PASS)
        d.write("cusers",
                "%s %s cram:%s\n" % (ALICE, sha512_crypt(ALICE_PASS),
                                     ALICE_SECRET) +
                "%s %s cram64:%s\n" % (BOB, sha512_crypt("bobpw"),
                                       b64(BOB_SECRET)) +
                "%s %s\n" % (CAROL, self.carol_hash) +
                "%s * cram:%s\n" % (DAVE, DAVE_SECRET))
        d.write("nocram", "%s %s\n" % (CAROL, self.carol_hash))
        d.write_conf(sqtest.DEFAULT_CONF, extra=CONF.format(
            limit=LIMIT, dir=d.dir, cramport=self.cramport,
            nocramport=self.nocramport))


def client(port, source="127.0.0.1"):
    c = sqtest.Client(port, source=source)
    c.greeting()
    c.ehlo()
    return c


def challenge_of(t, r, what):
    """The decoded challenge of a 334 reply, or None (a failed check)."""
    if r is None or r.code != 334:
        t.ok(False, "%s: 334 with a challenge" % what, r and r.raw)
        return None
    try:
        return base64.b64decode(r.raw[4:].strip(), validate=True)
    except ValueError:
        t.ok(False, "%s: the challenge is base64" % what, r.raw)
        return None


def ehlo_offers_cram_where_a_secret_is(t, d, x):
    m = d.wait_for_log(r"listener \S+:%d: CRAM-MD5 offered" % x.cramport)
    t.ok(m is not None, "smtp learns from lka that the table has a secret")
    c = client(x.cramport)
    r = c.ehlo()
    t.ok("AUTH PLAIN LOGIN CRAM-MD5" in r.lines, "a table with secrets: "
         "AUTH PLAIN LOGIN CRAM-MD5", r.raw)
    c.close()
    c = client(x.nocramport)
    r = c.ehlo()
    t.ok("AUTH PLAIN LOGIN" in r.lines, "a table without: AUTH PLAIN LOGIN "
         "only", r.raw)
    r = c.cmd("AUTH CRAM-MD5")
    t.reply(r, 504, "5.5.4", "CRAM-MD5 where it is not offered: 504", c)
    c.close()


def the_challenge_is_new_every_time(t, d, x):
    seen = set()
    for i in range(3):
        c = client(x.cramport)
        ch = challenge_of(t, c.cmd("AUTH CRAM-MD5"), "exchange %d" % i)
        c.close()
        if ch is None:
            return
        t.like(ch.decode("latin-1"), r"^<[0-9a-f]{16}\.[0-9]+@%s>$" %
               re.escape(HOST), "challenge %d is <random.time@host>" % i)
        seen.add(ch)
    t.is_(len(seen), 3, "three exchanges, three different challenges")


def raw_exchange_and_replay(t, d, x):
    c = client(x.cramport, source="127.0.0.3")
    ch = challenge_of(t, c.cmd("AUTH CRAM-MD5"), "alice")
    if ch is None:
        return
    resp = cram(ALICE, ALICE_SECRET, ch)
    r = c.cmd(resp)
    t.reply(r, 235, "2.7.0", "CRAM-MD5 with the right secret: 235", c)
    r = c.cmd("MAIL FROM:<%s>" % SENDER)
    r = c.cmd("RCPT TO:<friend@remote.test>")
    t.reply(r, 250, "2.1.5", "authenticated by CRAM-MD5: relays", c)
    c.close()
    t.ok(d.wait_for_log(r"Accept::AUTH::Authenticated: S:127\.0\.0\.3 "
                        r"H:\S+ A:%s mech CRAM-MD5" % re.escape(ALICE))
         is not None, "the log names the user and CRAM-MD5")

    c = client(x.cramport, source="127.0.0.3")
    ch2 = challenge_of(t, c.cmd("AUTH CRAM-MD5"), "replay")
    if ch2 is None:
        return
    r = c.cmd(resp)
    t.reply(r, 535, "5.7.8", "the response replayed on a new connection: "
            "535", c)
    ch3 = challenge_of(t, c.cmd("AUTH CRAM-MD5"), "upper case")
    if ch3 is None:
        return
    hx = hmac.new(ALICE_SECRET.encode(), ch3, hashlib.md5).hexdigest()
    r = c.cmd(b64(ALICE + " " + hx.upper()))
    t.reply(r, 235, "2.7.0", "a digest in upper-case hex: 235", c)
    c.close()


def who_cannot_use_cram(t, d, x):
    c = client(x.cramport, source="127.0.0.4")
    for what, user, key in (
            ("a wrong secret", ALICE, "not-the-secret"),
            ("a user without a secret (his password as key)", CAROL,
             CAROL_PASS),
            ("an unknown user", "nobody@example.test", "x")):
        ch = challenge_of(t, c.cmd("AUTH CRAM-MD5"), what)
        if ch is None:
            return
        r = c.cmd(cram(user, key, ch))
        t.is_(r.code, 535, "CRAM-MD5 with %s: 535" % what, r.raw)
    c.close()
    # Carol still has PLAIN; Dave ("*" as hash) has CRAM-MD5 only.
    c = client(x.cramport, source="127.0.0.5")
    r = c.cmd("AUTH PLAIN " + plain(CAROL, CAROL_PASS))
    t.reply(r, 235, "2.7.0", "the user without a secret: PLAIN 235", c)
    c.close()
    c = client(x.cramport, source="127.0.0.5")
    r = c.cmd("AUTH PLAIN " + plain(DAVE, DAVE_SECRET))
    t.reply(r, 535, "5.7.8", "hash \"*\": PLAIN refused", c)
    ch = challenge_of(t, c.cmd("AUTH CRAM-MD5"), "dave")
    if ch is None:
        return
    r = c.cmd(cram(DAVE, DAVE_SECRET, ch))
    t.reply(r, 235, "2.7.0", "hash \"*\" and a secret: CRAM-MD5 235", c)
    c.close()


def malformed_responses(t, d, x):
    c = client(x.cramport, source="127.0.0.6")
    r = c.cmd("AUTH CRAM-MD5 " + b64("alice 0123"))
    t.reply(r, 501, "5.5.2", "CRAM-MD5 with an initial response: 501", c)
    for what, line in (
            ("bad base64", "AGVsbG8=x"),
            ("\"*\"", "*"),
            ("a digest of 31 hex digits", b64(ALICE + " " + "a" * 31)),
            ("a digest that is not hex", b64(ALICE + " " + "g" * 32)),
            ("no user", b64("a" * 32)),
            ("the empty response", "=")):
        if challenge_of(t, c.cmd("AUTH CRAM-MD5"), what) is None:
            return
        r = c.cmd(line)
        t.reply(r, 501, "5.5.2", "CRAM-MD5 response with %s: 501" % what, c)
    r = c.cmd("NOOP")
    t.is_(r.code, 250, "malformed responses are not failures: the session "
          "goes on", r.raw)
    c.close()


def smtplib_logs_in(t, d, x):
    for user, secret in ((ALICE, ALICE_SECRET), (BOB, BOB_SECRET)):
        s = smtplib.SMTP("127.0.0.1", x.cramport, timeout=TIMEOUT,
                         source_address=("127.0.0.7", 0))
        s.ehlo(sqtest.CLIENT_HELO)
        s.user, s.password = user, secret
        code, text = s.auth("CRAM-MD5", s.auth_cram_md5)
        t.is_(code, 235, "smtplib CRAM-MD5 as %s: 235" % user, text)
        tag = "cram %s %d" % (user, os.getpid())
        s.mail(SENDER)
        s.rcpt(YOU)
        code, text = s.data(sqtest.crlf(sqtest.make_message(tag)))
        t.is_(code, 250, "smtplib CRAM-MD5 as %s: queued" % user, text)
        s.quit()
        got = d.wait_for_maildir(1, pred=lambda m: (
            m.header("Subject") or "") == tag)
        mine = [m for m in got if (m.header("Subject") or "") == tag]
        t.ok(len(mine) == 1 and b"with ESMTPA id" in mine[0].received,
             "delivered, Received says ESMTPA",
             mine[0].received if mine else None)


def swaks_cram(t, d, x):
    if not sqtest.require_cmd(t, "swaks"):
        t.skip("swaks --auth CRAM-MD5", "swaks is not installed")
        return
    for pw, expect, what in ((ALICE_SECRET, r"<-  235 2\.7\.0", "235"),
                             ("wrong", r"<\*\* 535 5\.7\.8", "535 5.7.8")):
        p = subprocess.run(["swaks", "--server",
                            "127.0.0.1:%d" % x.cramport,
                            "--local-interface", "127.0.0.8",
                            "--auth", "CRAM-MD5", "--auth-user", ALICE,
                            "--auth-password", pw, "--from", SENDER,
                            "--to", YOU, "--helo", sqtest.CLIENT_HELO,
                            "--timeout", str(int(TIMEOUT))],
                           capture_output=True, timeout=TIMEOUT * 2)
        out = p.stdout.decode("utf-8", "replace")
        t.like(out, expect, "swaks --auth CRAM-MD5, %s secret: %s" % (
            "right" if pw == ALICE_SECRET else "wrong", what))


def failures_from_one_address_are_limited(t, d, x):
    # 5 refusals over three connections (the per-connection limit is 3).
    n = 0
    for conn, fails in enumerate((2, 2)):
        c = client(x.cramport)
        for i in range(fails):
            n += 1
            r = c.cmd("AUTH PLAIN " + plain(ALICE, "wrong%d" % n))
            t.reply(r, 535, "5.7.8", "127.0.0.1 failure %d: 535" % n, c)
        c.close()
    c = client(x.cramport)
    c.send("AUTH PLAIN " + plain(ALICE, "wrong5") + "\r\n")
    rs = c.replies_until_eof()
    t.ok(len(rs) == 2 and rs[0].code == 535 and rs[1].code == 421 and
         rs[1].lines[0].startswith("4.7.0"),
         "failure %d from the address: 535, then 421 4.7.0 and close" %
         LIMIT, [r.raw for r in rs])
    c.close()
    c = client(x.cramport)
    c.send("AUTH PLAIN " + plain(ALICE, ALICE_PASS) + "\r\n")
    rs = c.replies_until_eof()
    t.ok(len(rs) == 1 and rs[0].code == 421 and
         rs[0].lines[0].startswith("4.7.0"),
         "then AUTH from 127.0.0.1, good password or not: 421 4.7.0",
         [r.raw for r in rs])
    c.close()
    c = client(x.nocramport)
    r = c.cmd("AUTH PLAIN " + plain(CAROL, CAROL_PASS))
    t.is_(r.code, 421, "on another listener too", r.raw)
    c.close()
    c = client(x.cramport, source="127.0.0.2")
    r = c.cmd("AUTH PLAIN " + plain(ALICE, ALICE_PASS))
    t.reply(r, 235, "2.7.0", "127.0.0.2 is not affected: 235", c)
    c.close()
    t.ok(d.wait_for_log(r"Reject::AUTH::Too_Many_Failures_From_IP: "
                        r"S:127\.0\.0\.1 ") is not None,
         "the log says why")


def reload_makes_cram_offered(t, d, x):
    d.write("nocram", "%s %s cram:late\n" % (CAROL, x.carol_hash))
    since = len(d.log_text())
    rc, out, err = d.ctl("reload")
    t.is_(rc, 0, "sqmailctl reload", out, err)
    m = d.wait_for_log(r"listener \S+:%d: CRAM-MD5 offered" % x.nocramport,
                       since=since)
    t.ok(m is not None, "after a reload, lka tells smtp of the new secret")
    c = client(x.nocramport, source="127.0.0.9")
    r = c.ehlo()
    t.ok("AUTH PLAIN LOGIN CRAM-MD5" in r.lines, "and CRAM-MD5 is offered",
         r.raw)
    ch = challenge_of(t, c.cmd("AUTH CRAM-MD5"), "carol")
    if ch is None:
        return
    r = c.cmd(cram(CAROL, "late", ch))
    t.reply(r, 235, "2.7.0", "with the secret the reload brought: 235", c)
    c.close()


def main():
    t = sqtest.Tap()
    if not sqtest.have_cmd("openssl"):
        t.skip_all("openssl is not installed")
    d = sqtest.Daemon(t)
    x = Cram(d)
    d.start()
    sqtest.run(t, [
        ehlo_offers_cram_where_a_secret_is,
        the_challenge_is_new_every_time,
        raw_exchange_and_replay,
        who_cannot_use_cram,
        malformed_responses,
        smtplib_logs_in,
        swaks_cram,
        failures_from_one_address_are_limited,
        reload_makes_cram_offered,
        sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
    ], d, x)


if __name__ == "__main__":
    main()
