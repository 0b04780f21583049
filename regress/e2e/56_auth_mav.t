#!/usr/bin/env python3
"""
MAV ("auth sender-check" on a listener): the MAIL FROM of an
authenticated session must be one of its user's addresses, else 553
5.7.1; lka decides (lka/lka_auth_sender.c).  Users from a virtual-users
table (sha512-crypt hashes made by openssl at test time): "alice@example.test"
(a user name that is an address), "bob" and "carol" (bare names).
Local domains: example.test and second.test; remote.test is routed
elsewhere (not local).  A sender table gives carol carol@partner.test
and all of @team.test.

- An address user: itself only (case ignored), not another local
  address, not the same local part at another local domain.
- A bare name: name@ any local domain, not a routed one, not another
  user's address.
- The table adds addresses and @domains to the implicit ones, only on
  the listener that names it; a user without an entry keeps the
  implicit ones.
- The null sender is allowed; an unauthenticated session is not
  checked; a listener without sender-check lets bob send as alice.
- After a 553 the session goes on: the right sender then delivers
  (smtplib: SMTPSenderRefused, then a delivered message; swaks sees the
  553).  The log names the user and the refused sender.
- A sender table that cannot be read: 451 4.3.0 for an address only it
  could allow, the implicit addresses still 250.
- sqmaild -n refuses sender-check on a listener without AUTH, and a
  sender-check table that is not defined.
"""
import os
import smtplib
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest                                       # noqa: E402

ALICE = "alice@example.test"
ALICE_PW = "alice pw"
BOB_PW = "bob pw"
CAROL_PW = "carol pw"

MAV_CONF = """\
limit auth-failures 0
table vusers "file:{dir}/vusers"
table senders "file:{dir}/senders"
table broken "file:{dir}/no-such-table"
listen on 127.0.0.1 port {mavport} auth users vusers auth plaintext auth sender-check
listen on 127.0.0.1 port {tableport} auth users vusers auth plaintext auth sender-check table senders
listen on 127.0.0.1 port {openport} auth users vusers auth plaintext
listen on 127.0.0.1 port {brokenport} auth users vusers auth plaintext auth sender-check table broken
"""

DOMAINS = """\
domain "second.test" {{
	deliver maildir "{maildir}/"
	user "{user}"
}}
domain "remote.test" {{
	route "[127.0.0.1]:9"
}}
"""


def sha512_crypt(password):
    p = subprocess.run(["openssl", "passwd", "-6", "-stdin"],
                       input=password.encode(), capture_output=True,
                       timeout=sqtest.TIMEOUT)
    if p.returncode != 0:
        raise RuntimeError("openssl passwd: %r" % p.stderr)
    return p.stdout.decode().strip()


def session(port, user, pw):
    """A raw session authenticated as user (AUTH PLAIN answered 235)."""
    import base64
    c = sqtest.Client(port)
    c.greeting()
    c.ehlo()
    r = c.cmd("AUTH PLAIN " + base64.b64encode(
        b"\0" + user.encode() + b"\0" + pw.encode()).decode())
    if r is None or r.code != 235:
        c.close()
        raise AssertionError("AUTH as %s: %r" % (user, r))
    return c


def mail_codes(port, user, pw, senders):
    """MAIL FROM each sender in one session (RSET after each): replies."""
    c = session(port, user, pw)
    out = []
    try:
        for s in senders:
            out.append(c.cmd("MAIL FROM:<%s>" % s))
            c.cmd("RSET")
    finally:
        c.close()
    return out


def check(t, port, user, pw, cases, where):
    rs = mail_codes(port, user, pw, [s for s, _ in cases])
    for (sender, want), r in zip(cases, rs):
        if want == 250:
            t.reply(r, 250, "2.1.0", "%s: %s may send as <%s>" % (
                where, user, sender))
        else:
            t.reply(r, 553, "5.7.1", "%s: %s may not send as <%s>: 553 "
                    "5.7.1" % (where, user, sender))


def address_user_sends_only_as_itself(t, d, x):
    check(t, x["mavport"], ALICE, ALICE_PW, [
        (ALICE, 250),
        ("ALICE@Example.TEST", 250),
        ("bob@example.test", 553),
        ("alice@second.test", 553),
        ("alice@remote.test", 553),
        ("", 250),
    ], "sender-check")


def bare_name_sends_at_local_domains(t, d, x):
    check(t, x["mavport"], "bob", BOB_PW, [
        ("bob@example.test", 250),
        ("Bob@second.test", 250),
        ("bob@remote.test", 553),
        ("bob@elsewhere.test", 553),
        (ALICE, 553),
        ("bobby@example.test", 553),
        ("", 250),
    ], "sender-check")
    check(t, x["mavport"], "carol", CAROL_PW, [
        ("carol@partner.test", 553),
        ("carol@example.test", 250),
    ], "sender-check without a table")


def table_adds_addresses(t, d, x):
    check(t, x["tableport"], "carol", CAROL_PW, [
        ("carol@partner.test", 250),
        ("CAROL@Partner.test", 250),
        ("anyone@team.test", 250),
        ("carol@example.test", 250),
        ("carol@other.test", 553),
        ("someone@partner.test", 553),
        ("x@sub.team.test", 553),
        ("", 250),
    ], "sender-check table")
    check(t, x["tableport"], "bob", BOB_PW, [
        ("bob@example.test", 250),
        ("carol@partner.test", 553),
    ], "sender-check table, a user without an entry")


def unchecked_where_not_asked(t, d, x):
    c = sqtest.Client(x["mavport"])
    c.greeting()
    c.ehlo()
    r = c.cmd("MAIL FROM:<anyone@elsewhere.test>")
    t.reply(r, 250, "2.1.0", "sender-check listener, no AUTH: the sender "
            "is not checked", c)
    c.close()
    check(t, x["openport"], "bob", BOB_PW, [(ALICE, 250)],
          "listener without sender-check")


def session_goes_on_after_553(t, d, x):
    s = smtplib.SMTP("127.0.0.1", x["mavport"], timeout=sqtest.TIMEOUT)
    try:
        s.ehlo("client.sqtest.test")
        s.login("bob", BOB_PW)
        try:
            s.sendmail(ALICE, ["you@example.test"], sqtest.crlf(
                sqtest.make_message("mav refused", sender=ALICE)))
            t.ok(False, "smtplib: bob as alice refused")
        except smtplib.SMTPSenderRefused as e:
            t.is_(e.smtp_code, 553, "smtplib: bob as alice: "
                  "SMTPSenderRefused 553")
        s.sendmail("bob@example.test", ["you@example.test"],
                   sqtest.crlf(sqtest.make_message(
                       "mav ok", sender="bob@example.test")))
        t.ok(True, "smtplib: then as bob@example.test: accepted")
    finally:
        try:
            s.quit()
        except Exception:
            pass
    got = sqtest.wait_for_maildir(
        d.maildir, 1, pred=lambda m: "mav ok" in (m.header("Subject") or ""))
    t.ok(got, "the message bob sent as himself was delivered")
    t.ok(not any("mav refused" in (m.header("Subject") or "")
                 for m in sqtest.maildir_read(d.maildir)),
         "nothing bob tried as alice was delivered")
    t.like(d.log_text(), r"lka: auth: user bob may not send as "
           r"<alice@example\.test>", "lka's log names user and sender")
    t.like(d.log_text(), r"Reject::MAIL::Sender_Denied: .*"
           r"F:alice@example\.test", "smtp logs the refused MAIL")


def swaks_sees_553(t, d, x):
    if not sqtest.have_cmd("swaks"):
        t.ok(False, "swaks is installed")
        return
    p = subprocess.run([
        "swaks", "--server", "127.0.0.1", "--port", str(x["mavport"]),
        "--auth", "PLAIN", "--auth-user", "bob", "--auth-password", BOB_PW,
        "--from", ALICE, "--to", "you@example.test",
        "--helo", "client.sqtest.test"],
        capture_output=True, timeout=sqtest.TIMEOUT)
    out = p.stdout.decode(errors="replace")
    t.ok(p.returncode != 0, "swaks: bob as alice fails")
    t.like(out, r"<\*\* 553 5\.7\.1 ", "swaks: the server said 553 5.7.1")
    t.like(out, r"235 2\.7\.0", "swaks: AUTH itself succeeded")


def broken_table_is_temporary(t, d, x):
    rs = mail_codes(x["brokenport"], "carol", CAROL_PW,
                    ["carol@partner.test", "carol@example.test"])
    t.reply(rs[0], 451, "4.3.0", "sender table unreadable: 451 4.3.0 for "
            "an address only it could allow")
    t.reply(rs[1], 250, "2.1.0", "the implicit address still 250")


def conf_errors(t, d, x):
    bad = {
        "sender-check without auth":
            'listen on 127.0.0.1 port %d auth sender-check\n'
            % sqtest.free_port(),
        "an undefined sender-check table":
            'listen on 127.0.0.1 port %d auth users vusers auth plaintext '
            'auth sender-check table nosuch\n' % sqtest.free_port(),
    }
    with open(d.conf_path) as f:
        good = f.read()
    for what, line in bad.items():
        p = os.path.join(d.dir, "bad.conf")
        with open(p, "w") as f:
            f.write(good + line)
        rc, out = d.check_conf(p)
        t.ok(rc not in (0, None), "sqmaild -n refuses %s" % what, out)
        t.like(out, r"sender-check|nosuch", "and says why (%s)" % what)
    rc, out = d.check_conf()
    t.is_(rc, 0, "sqmaild -n accepts the test's configuration", out)


def main():
    t = sqtest.Tap()
    if not sqtest.have_cmd("openssl"):
        t.skip_all("openssl is not installed")
    d = sqtest.Daemon(t)
    x = dict(mavport=sqtest.free_port(), tableport=sqtest.free_port(),
             openport=sqtest.free_port(), brokenport=sqtest.free_port())
    d.write_table("vusers", {ALICE: sha512_crypt(ALICE_PW),
                             "bob": sha512_crypt(BOB_PW),
                             "carol": sha512_crypt(CAROL_PW)})
    d.write("senders", "# user: addresses and @domains\n"
            "carol carol@partner.test, @team.test\n"
            "dave dave@partner.test\n")
    d.write_conf(sqtest.DEFAULT_CONF,
                 extra=MAV_CONF.format(dir=d.dir, **x),
                 domains=DOMAINS)
    d.start()
    sqtest.run(t, [
        address_user_sends_only_as_itself,
        bare_name_sends_at_local_domains,
        table_adds_addresses,
        unchecked_where_not_asked,
        session_goes_on_after_553,
        swaks_sees_553,
        broken_table_is_temporary,
        conf_errors,
        sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
    ], d, x)


if __name__ == "__main__":
    main()
