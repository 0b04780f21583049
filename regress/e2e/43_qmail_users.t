#!/usr/bin/env python3
"""
Address -> user by qmail's rules, started as root so that agents run as
real users (and as virtual ones from users/assign): a simple assignment
gives a user that is not in passwd its uid, gid and home, and one for a
passwd user another home; a wildcard assignment gives the rest of the
local part as the extension (.qmail-ext, -default files, EXT keeping its
case); virtualdomains turns x@domain and x@host.suffix into prefix-x;
local parts are looked up in any case; the alias user's .qmail-default,
.qmail-postmaster and .qmail-root catch what no user takes; an ignored
passwd user gets no mail; local parts with ../, /, NUL or a newline are
refused.  After `sqmailctl reload` with the break character '+' and no
alias user: user+ext is user's, user-ext is nobody's, a new assignment
counts, and mail for root is accepted and held with an error that says
to add an alias (in the log and in `sqmailctl show queue`).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
from sqtest import expect_delivered
import dotqmailtest as dq
from dotqmailtest import DOM, expect_result

USER = "sqqutest"
ALIAS = "sqqualias"
IGNORED = "sqquign"
SENDER = "someone@remote.test"
VUID_EXACT = 64123	# users/assign only: no passwd entry
VUID_WILD = 64124

CONF = sqtest.ROOT_CONF_HEAD + """\
dns servers "127.0.0.1:9"
queue retry-min 1s
queue retry-max 2s
agent idle 2s
qmail assign "{dir}/assign"
qmail virtualdomains "{dir}/virtualdomains"
qmail ignore "{ignored}" "nosuchaccountzz"
{qmail_more}
domain "example.test" {{
	deliver maildir "~/Maildir/"
}}
domain "virt.test" {{
	deliver maildir "~/Maildir/"
}}
domain ".virt.test" {{
	deliver maildir "~/Maildir/"
}}
"""

ASSIGN = """\
=vexact:vexactuser:{vuid}:{vuid}:{vhome1}:::
=qalt:{user}:{uid}:{gid}:{althome}:::
+vwild-:vwilduser:{wuid}:{wuid}:{vhome2}:-::
{more}.
"""

VDOMS = """\
# domain and suffix
virt.test:{user}
.sub.virt.test:vwild
"""


def vhome(t, name, uid):
    """A home for a users/assign user: no passwd entry, owned by uid."""
    home = os.path.join(sqtest.scratch_root(), "vhome", name)
    os.makedirs(home, mode=0o755, exist_ok=True)
    os.chmod(os.path.dirname(home), 0o755)
    for sub in ("", "Maildir", "Maildir/tmp", "Maildir/new", "Maildir/cur"):
        p = os.path.join(home, sub)
        os.makedirs(p, exist_ok=True)
        os.chown(p, uid, uid)
    return home


class VHome(dq.Home):
    def __init__(self, home, uid):
        self.dir = home
        self.uid = uid

    def own(self, p):
        os.lchown(p, self.uid, self.uid)


def write_files(d, u, a, vh1, vh2, more=""):
    d.write("assign", ASSIGN.format(
        vuid=VUID_EXACT, vhome1=vh1.dir, user=USER, uid=u.pw.pw_uid,
        gid=u.pw.pw_gid, althome=a, wuid=VUID_WILD, vhome2=vh2.dir,
        more=more))
    d.write("virtualdomains", VDOMS.format(user=USER))
    for f in ("assign", "virtualdomains"):
        os.chmod(d.path(f), 0o644)


def a(local, dom=DOM):
    return "%s@%s" % (local, dom)


def send(t, d, subject, rcpt):
    return dq.send(t, d, subject, rcpt, SENDER)


def rcpt_code(d, rcpt):
    c = d.client()
    try:
        c.greeting()
        c.ehlo()
        c.cmd("MAIL FROM:<%s>" % SENDER)
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        return r.code if r else None
    finally:
        c.close()


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        return "(%s)" % e


# --- the first configuration: break '-', alias user set


def assign_exact_gives_a_user_outside_passwd(t, d, u, al, ig, vh1, vh2):
    mark = d.log_mark()
    m = send(t, d, "vexact", a("vexact"))
    got = expect_delivered(t, vh1.path("Maildir"), m, SENDER, a("vexact"),
                           "simple assignment for a user not in passwd")
    if got is not None:
        st = os.stat(got.path)
        t.ok(st.st_uid == VUID_EXACT and st.st_gid == VUID_EXACT,
             "the message file belongs to uid/gid %d of users/assign"
             % VUID_EXACT, "owner %d:%d" % (st.st_uid, st.st_gid))
    expect_result(t, d, mark, a("vexact"), "success", r"^did_1\+0\+0/$",
                  "simple assignment")


def assign_exact_home_is_the_files_not_passwds(t, d, u, al, ig, vh1, vh2):
    m = send(t, d, "qalt", a("qalt"))
    expect_delivered(t, u.path("alt", "Maildir"), m, SENDER, a("qalt"),
                     "assignment of a passwd user to another home")
    t.ok(not any(x.msgid == sqtest.header(m, "Message-ID")
                 for x in sqtest.maildir_read(u.path("Maildir"))),
         "nothing for qalt in the passwd home's Maildir")


def assign_wildcard_extension_and_default(t, d, u, al, ig, vh1, vh2):
    m = send(t, d, "vwild-foo", a("vwild-foo"))
    expect_delivered(t, vh2.path("foo"), m, SENDER, a("vwild-foo"),
                     "wildcard assignment: vwild-foo finds .qmail-foo")
    mark = d.log_mark()
    send(t, d, "vwild-Bar-Baz", a("vwild-Bar-Baz"))
    expect_result(t, d, mark, a("vwild-bar-baz"), "success",
                  r"^did_0\+0\+1/$", "vwild-Bar-Baz runs .qmail-bar-default")
    t.is_(read(vh2.path("ext.out")), "EXT=Bar-Baz DEFAULT=Baz "
          "USER=vwilduser HOME=%s\n" % vh2.dir,
          "the program sees EXT in the case it was sent, DEFAULT, and "
          "the user and home of users/assign")


def virtualdomain_maps_to_a_prefix_user(t, d, u, al, ig, vh1, vh2):
    m = send(t, d, "virt", a("x", "virt.test"))
    expect_delivered(t, u.path("virt"), m, SENDER, a(USER + "-x", "virt.test"),
                     "x@virt.test is %s-x: .qmail-x of %s" % (USER, USER))


def virtualdomain_suffix_maps_to_a_prefix_user(t, d, u, al, ig, vh1, vh2):
    m = send(t, d, "suffix", a("foo", "h.sub.virt.test"))
    expect_delivered(t, vh2.path("foo"), m, SENDER,
                     a("vwild-foo", "h.sub.virt.test"),
                     "foo@h.sub.virt.test is vwild-foo (.sub.virt.test)")


def local_parts_in_any_case(t, d, u, al, ig, vh1, vh2):
    m = send(t, d, "upper", "%s@EXAMPLE.Test" % USER.upper())
    expect_delivered(t, u.path("Maildir"), m, SENDER, a(USER),
                     "%s@EXAMPLE.Test is %s" % (USER.upper(), USER))
    mark = d.log_mark()
    send(t, d, "mixed", a(USER + "-MiXed"))
    expect_result(t, d, mark, a(USER + "-mixed"), "success",
                  r"^did_0\+0\+1/$", "%s-MiXed finds .qmail-mixed" % USER)
    t.is_(read(u.path("mixed.out")), "MiXed\n",
          "EXT keeps the case of the address as sent")


def alias_user_default_catches_unknown_users(t, d, u, al, ig, vh1, vh2):
    m = send(t, d, "unknown", a("nosuchuserzz"))
    expect_delivered(t, al.path("default"), m, SENDER, a("nosuchuserzz"),
                     "an unknown user goes to ~%s/.qmail-default" % ALIAS)


def alias_user_takes_postmaster(t, d, u, al, ig, vh1, vh2):
    m = send(t, d, "postmaster", a("PostMaster"))
    expect_delivered(t, al.path("pm"), m, SENDER, a("postmaster"),
                     "PostMaster goes to ~%s/.qmail-postmaster" % ALIAS)


def alias_user_takes_root(t, d, u, al, ig, vh1, vh2):
    m = send(t, d, "root", a("root"))
    expect_delivered(t, al.path("root"), m, SENDER, a("root"),
                     "root goes to ~%s/.qmail-root" % ALIAS)


def ignored_user_gets_no_mail(t, d, u, al, ig, vh1, vh2):
    m = send(t, d, "ignored", a(IGNORED))
    expect_delivered(t, al.path("default"), m, SENDER, a(IGNORED),
                     "%s (qmail ignore) is caught by the alias user" %
                     IGNORED)
    t.ok(not any(x.msgid == sqtest.header(m, "Message-ID")
                 for x in sqtest.maildir_read(ig.path("Maildir"))),
         "nothing in the ignored user's own Maildir")


def bad_local_parts_are_refused(t, d, u, al, ig, vh1, vh2):
    for bad, what in (("../%s" % USER, "../"), ("a/b", "/"),
                      ("%s/../x" % USER, "/../"),
                      ('"../x"', "quoted ../"), ('"a/b"', "quoted /")):
        code = rcpt_code(d, a(bad))
        t.ok(code is not None and 500 <= code < 600,
             "RCPT TO:<%s> (%s) -> 5xx" % (a(bad), what), "got %r" % code)
    for raw, what in (("a\x00b", "NUL"), ("a\nb", "newline")):
        c = d.client()
        try:
            c.greeting()
            c.ehlo()
            c.cmd("MAIL FROM:<%s>" % SENDER)
            # A bare LF does not end a line (sqmail-smtp(7)): the
            # server may answer once or twice; QUIT's 221 ends the wait.
            c.send("RCPT TO:<%s>\r\nQUIT\r\n" % a(raw))
            codes = []
            r = c.reply()
            while r is not None and r.code != 221:
                codes.append(r.code)
                r = c.reply()
        finally:
            c.close()
        t.ok(r is not None and codes and all(500 <= x < 600 for x in codes),
             "RCPT TO with a %s in the local part -> 5xx, nothing "
             "accepted" % what, "got %r" % codes)


# --- after reload: break '+', no alias user, one more assignment


def reload_break_plus_no_alias(t, d, u, al, ig, vh1, vh2):
    write_files(d, u, u.path("alt"), vh1, vh2,
                more="=vnew:vexactuser:%d:%d:%s:::\n" % (
                    VUID_EXACT, VUID_EXACT, vh1.dir))
    d.write_conf(CONF, qmail_more='qmail break "+"')
    rc, out, err = d.ctl("reload")
    t.is_(rc, 0, "sqmailctl reload with qmail break \"+\" and no alias "
          "user", out + err)
    try:
        sqtest.wait_for("the reload in lka", lambda:
                        rcpt_code(d, a(USER + "+foo")) == 250)
        ok = True
    except sqtest.WaitTimeout:
        ok = False
    t.ok(ok, "after the reload RCPT TO:<%s+foo@%s> -> 250" % (USER, DOM))


def break_character_plus(t, d, u, al, ig, vh1, vh2):
    m = send(t, d, "plus", a(USER + "+foo"))
    expect_delivered(t, u.path("foo"), m, SENDER, a(USER + "+foo"),
                     "%s+foo finds .qmail-foo (the dash stays '-')" % USER)
    code = rcpt_code(d, a(USER + "-foo"))
    t.is_(code, 550, "%s-foo is nobody's with break '+' and no alias user"
          % USER)


def reload_reads_users_assign_again(t, d, u, al, ig, vh1, vh2):
    m = send(t, d, "vnew", a("vnew"))
    expect_delivered(t, vh1.path("Maildir"), m, SENDER, a("vnew"),
                     "an assignment added before the reload counts")


def no_alias_user_unknown_and_ignored_get_550(t, d, u, al, ig, vh1, vh2):
    t.is_(rcpt_code(d, a("nosuchuserzz")), 550,
          "no alias user: an unknown user -> 550")
    t.is_(rcpt_code(d, a(IGNORED)), 550,
          "no alias user: the ignored user -> 550")


def root_without_alias_is_held(t, d, u, al, ig, vh1, vh2):
    mark = d.log_mark()
    send(t, d, "held", a("root"))
    expect_result(t, d, mark, a("root"), "deferral",
                  r"uid_0.*held.*add_an_alias",
                  "mail for root with no alias is deferred")
    entries = d.queue() or []
    mine = [e for e in entries if e.get("rcpt") == a("root")]
    t.ok(mine and "add an alias" in mine[0]["error"] and
         mine[0]["state"] == "pending",
         "sqmailctl show queue: root's message stays queued and says to "
         "add an alias", repr(entries)[:800])


def main():
    t = sqtest.Tap()
    sqtest.require_root(t, "agents run as real and users/assign users")
    u = dq.make_user(t, USER)
    al = dq.make_user(t, ALIAS)
    ig = dq.make_user(t, IGNORED)
    u.maildir("virt")
    u.maildir("foo")
    u.maildir("Maildir-unused")
    os.makedirs(u.path("alt"), mode=0o755)
    u.own(u.path("alt"))
    u.maildir(os.path.join("alt", "Maildir"))
    u.write(".qmail-x", "./virt/\n")
    u.write(".qmail-foo", "./foo/\n")
    u.write(".qmail-mixed", '|echo "$EXT" > mixed.out\n')
    for box in ("default", "pm", "root"):
        al.maildir(box)
    al.write(".qmail-default", "./default/\n")
    al.write(".qmail-postmaster", "./pm/\n")
    al.write(".qmail-root", "./root/\n")
    vh1 = VHome(vhome(t, "v1", VUID_EXACT), VUID_EXACT)
    vh2 = VHome(vhome(t, "v2", VUID_WILD), VUID_WILD)
    vh2.maildir("foo")
    vh2.write(".qmail-foo", "./foo/\n")
    vh2.write(".qmail-bar-default", '|echo "EXT=$EXT DEFAULT=$DEFAULT '
              'USER=$USER HOME=$HOME" > ext.out\n')

    d = sqtest.root_daemon(t, CONF, ignored=IGNORED,
                           qmail_more='qmail alias-user "%s"' % ALIAS)
    write_files(d, u, u.path("alt"), vh1, vh2)
    d.start()
    sqtest.run(t, [
        assign_exact_gives_a_user_outside_passwd,
        assign_exact_home_is_the_files_not_passwds,
        assign_wildcard_extension_and_default,
        virtualdomain_maps_to_a_prefix_user,
        virtualdomain_suffix_maps_to_a_prefix_user,
        local_parts_in_any_case,
        alias_user_default_catches_unknown_users,
        alias_user_takes_postmaster,
        alias_user_takes_root,
        ignored_user_gets_no_mail,
        bad_local_parts_are_refused,
        reload_break_plus_no_alias,
        break_character_plus,
        reload_reads_users_assign_again,
        no_alias_user_unknown_and_ignored_get_550,
        root_without_alias_is_held,
    ], d, u, al, ig, vh1, vh2, done=False)
    sqtest.run(t, [sqtest.sqmaild_stops_on_sigterm_leaving_no_process], d)


if __name__ == "__main__":
    main()
