#!/usr/bin/env python3
"""
aliases(5) end to end, as root so that program and file targets run as a
real unprivileged account: newaliases as `sqmailctl newaliases`, by the
name newaliases and as `sendmail -bi`; a source with an error keeps the
old database; the running daemon uses a new database without a reload;
address, bare local, quoted-name and nested aliases; a program target
(its environment and uid: nobody, or the source's owner), exit 100
bounces, 111 defers; an mbox file and a Maildir target; a symlinked file
refused; :include: lists, an include loop stopped, an alias looping
through its include stopped by Delivered-To; an alias loop refused at
RCPT.
"""
import os
import pwd
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
from sqtest import expect_delivered, make_message
import dotqmailtest as dq
from dotqmailtest import DOM, expect_result

RCPT_USER = "sqaltest"
OWNER_USER = "sqalowner"
SENDER = "%s@%s" % (RCPT_USER, DOM)     # bounces come back to its Maildir

CONF = sqtest.ROOT_CONF_HEAD + """\
dns servers "127.0.0.1:9"
queue retry-min 1s
queue retry-max 2s
agent idle 2s
agent program-timeout 20
table aliases "aliases:{dir}/aliases"
domain "example.test" {{
	deliver maildir "~/Maildir/"
	aliases aliases
}}
"""


def addr(local):
    return "%s@%s" % (local, DOM)


class Env:
    def __init__(self, t):
        self.t = t
        self.h = dq.make_user(t, RCPT_USER)
        self.owner = dq.make_user(t, OWNER_USER)
        self.nobody = pwd.getpwnam("nobody")
        self.d = sqtest.root_daemon(t, CONF)
        self.src = self.d.path("aliases")
        self.out = self.d.path("out")
        os.makedirs(self.out)
        os.chown(self.out, self.nobody.pw_uid, self.nobody.pw_gid)
        os.chmod(self.out, 0o755)
        self.bin = self.d.path("bin")
        os.makedirs(self.bin)
        for n in ("newaliases", "sendmail"):
            os.symlink(os.path.abspath(sqtest.SQMAILCTL),
                       os.path.join(self.bin, n))

    def o(self, *p):
        return os.path.join(self.out, *p)

    def write_out(self, name, text, owner=None):
        p = self.o(name)
        with open(p, "w") as f:
            f.write(text)
        pw = owner or self.nobody
        os.chown(p, pw.pw_uid, pw.pw_gid)
        return p

    def write_src(self, text):
        with open(self.src, "w") as f:
            f.write(text)
        os.chmod(self.src, 0o644)

    def run(self, argv, env_conf=False):
        env = dict(os.environ)
        if env_conf:
            env["SQMAIL_CONF"] = self.d.conf_path
        p = subprocess.run(argv, cwd=self.d.dir, env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=sqtest.TIMEOUT)
        return (p.returncode, p.stdout.decode("utf-8", "replace"),
                p.stderr.decode("utf-8", "replace"))

    def newaliases(self):
        return self.run([sqtest.SQMAILCTL, "-f", self.d.conf_path,
                         "newaliases"])

    def send(self, subject, rcpt):
        return dq.send(self.t, self.d, subject, rcpt, SENDER)


def source(e, prog_extra=""):
    o = e.o
    return """\
# aliases for 44_aliases.t
postmaster: %(u)s
"Quoted Name": %(u)s
nested: level1
level1: level2,
	# a comment inside an entry
	level2
level2: <%(u)s@example.test>
prog: "|id -u > %(out)s/prog.uid; env > %(out)s/prog.env; cat > %(out)s/prog.msg"
perm: |echo permanent trouble; exit 100
temp: |echo try again later; exit 111
file: %(mbox)s
maildir: %(md)s/
symlink: %(link)s
list: :include:%(list)s
loopinc: :include:%(ainc)s
selfinc: :include:%(selfinc)s
aloop1: aloop2
aloop2: aloop1
%(extra)s""" % dict(u=RCPT_USER, out=e.out, mbox=o("mbox"), md=o("md"),
                   link=o("link"), list=o("list.inc"), ainc=o("a.inc"),
                   selfinc=o("self.inc"), extra=prog_extra)


def newaliases_three_names(t, e):
    rc, out, err = e.newaliases()
    t.is_(rc, 0, "sqmailctl -f CONF newaliases exits 0", err)
    t.like(out, r"aliases: 1[0-9] aliases", "it says how many aliases", err)
    st = os.stat(e.src + ".cdb")
    t.ok(st.st_mode & 0o777 == 0o644, "the database is mode 0644",
         oct(st.st_mode))
    before = st.st_ino
    rc, out, err = e.run([os.path.join(e.bin, "newaliases")], env_conf=True)
    t.is_(rc, 0, "newaliases (by that name, SQMAIL_CONF) exits 0", err)
    t.isnt(os.stat(e.src + ".cdb").st_ino, before,
           "newaliases replaced the database by a new file")
    rc, out, err = e.run([os.path.join(e.bin, "newaliases"), "x"],
                         env_conf=True)
    t.ok(rc != 0 and "usage" in err, "newaliases takes no argument", err)
    rc, out, err = e.run([os.path.join(e.bin, "sendmail"), "-bi"],
                         env_conf=True)
    name = "sendmail -bi runs newaliases"
    t.ok(rc == 0 and "aliases" in out, name, out, err)


def bad_source_keeps_old_db(t, e):
    with open(e.src + ".cdb", "rb") as f:
        old = f.read()
    good = open(e.src).read()
    e.write_src(good + "postmaster: someone-else\n")
    rc, out, err = e.newaliases()
    t.ok(rc != 0 and "aliases:%d:" % (good.count("\n") + 1) in err and
         "given twice" in err,
         "a duplicate name fails newaliases with file:line", err)
    e.write_src(good + "broken \"|x\n")
    rc, out, err = e.newaliases()
    t.ok(rc != 0 and "missing ':'" in err, "a line without ':' fails "
         "newaliases with file:line", err)
    e.write_src(good + "bad: \"|unterminated\n")
    rc, out, err = e.newaliases()
    t.ok(rc != 0 and "unterminated quote" in err and
         "not changed" in err, "an unterminated quote fails newaliases",
         err)
    with open(e.src + ".cdb", "rb") as f:
        t.ok(f.read() == old, "after the errors the database is unchanged")
    t.ok(not [n for n in os.listdir(e.d.dir) if n.startswith("aliases.cdb.")],
         "no temporary file is left behind", os.listdir(e.d.dir))
    e.write_src(good)


def address_aliases(t, e):
    for rcpt, what in (("postmaster", "a name to a local user"),
                       ("Quoted Name", "a quoted name"),
                       ("nested", "nested aliases with a continuation "
                        "line")):
        a = '"%s"@%s' % (rcpt, DOM) if " " in rcpt else addr(rcpt)
        m = make_message(what, "body\n", sender=SENDER, to=a)
        code, text = e.d.send(m, sender=SENDER, rcpts=[a])
        t.is_(code, 250, "%s: accepted" % what, text)
        expect_delivered(t, e.h.path("Maildir"), m, SENDER,
                         addr(RCPT_USER), what)


def program_target(t, e):
    mark = e.d.log_mark()
    m = e.send("program", addr("prog"))
    expect_result(t, e.d, mark, addr("prog"), "success", r"^did_0\+0\+1/$",
                  "program target")
    t.is_(open(e.o("prog.uid")).read().strip(), str(e.nobody.pw_uid),
          "the program runs as nobody (the source is root's)")
    env = dict(l.split("=", 1) for l in open(e.o("prog.env")).read()
               .splitlines() if "=" in l)
    for k, v in (("SENDER", SENDER), ("RECIPIENT", addr("prog")),
                 ("LOCAL", "prog"), ("HOST", DOM), ("USER", "nobody"),
                 ("DTLINE", "Delivered-To: %s" % addr("prog")),
                 ("RPLINE", "Return-Path: <%s>" % SENDER)):
        t.is_(env.get(k), v, "program environment: %s" % k)
    t.ok("PATH" in env and not any(k.startswith("SQMAIL") for k in env),
         "program environment: PATH set, nothing of the daemon's",
         sorted(env))
    body = open(e.o("prog.msg"), "rb").read()
    mb = m if isinstance(m, bytes) else m.encode()
    t.ok(mb in body.replace(b"\r\n", b"\n"),
         "the program reads the message on stdin")


def program_exit_codes(t, e):
    mark = e.d.log_mark()
    e.send("perm", addr("perm"))
    expect_result(t, e.d, mark, addr("perm"), "failure",
                  r"program_exited_100:_permanent_trouble",
                  "exit 100 is a permanent failure")
    bounce = sqtest.wait_for_maildir(e.h.path("Maildir"), 1, pred=lambda x:
                                     b"permanent trouble" in x.data)
    t.ok(any(b"permanent trouble" in x.data for x in bounce),
         "the bounce for exit 100 reaches the sender")
    mark = e.d.log_mark()
    e.send("temp", addr("temp"))
    expect_result(t, e.d, mark, addr("temp"), "deferral",
                  r"program_exited_111:_try_again_later",
                  "exit 111 is a temporary failure")


def file_targets(t, e):
    mark = e.d.log_mark()
    m = e.send("mbox", addr("file"))
    expect_result(t, e.d, mark, addr("file"), "success", r"^did_1\+0\+0/$",
                  "/file target")
    data = open(e.o("mbox"), "rb").read()
    t.ok(data.startswith(b"From ") and b"Subject: mbox" in data,
         "the mbox file got the message with a From_ line")
    t.is_(os.stat(e.o("mbox")).st_uid, e.nobody.pw_uid,
          "the mbox file was created by nobody")
    e.d.mkmaildir(e.o("md"))
    for sub in ("", "tmp", "new", "cur"):
        os.chown(os.path.join(e.o("md"), sub), e.nobody.pw_uid,
                 e.nobody.pw_gid)
    mark = e.d.log_mark()
    m = e.send("maildir", addr("maildir"))
    expect_delivered(t, e.o("md"), m, SENDER, addr("maildir"),
                     "/dir/ target is a Maildir")
    target = e.write_out("target", "")
    os.symlink(target, e.o("link"))
    mark = e.d.log_mark()
    e.send("symlink", addr("symlink"))
    expect_result(t, e.d, mark, addr("symlink"), "deferral",
                  r"symbolic_link", "a symlinked /file target is refused")
    t.is_(os.path.getsize(target), 0, "nothing was written through it")


def include_targets(t, e):
    e.write_out("list.inc", "# the list\n%s\n\n  # more\n" % RCPT_USER)
    mark = e.d.log_mark()
    m = e.send("list", addr("list"))
    expect_result(t, e.d, mark, addr("list"), "success", r"^did_0\+1\+0/$",
                  ":include: forwards its address")
    got = sqtest.wait_for_maildir(e.h.path("Maildir"), 1, pred=lambda x:
                                  x.msgid == sqtest.header(m, "Message-ID"))
    mine = [x for x in got if x.msgid == sqtest.header(m, "Message-ID")]
    t.ok(len(mine) == 1 and b"Delivered-To: %s" % addr("list").encode()
         in mine[0].data, "the included address got it, with Delivered-To "
         "of the list", repr(mine)[:400])

    e.write_out("a.inc", ":include:%s, %s\n" % (e.o("b.inc"), RCPT_USER))
    e.write_out("b.inc", ":include:%s\n" % e.o("a.inc"))
    mark = e.d.log_mark()
    m = e.send("incloop", addr("loopinc"))
    expect_result(t, e.d, mark, addr("loopinc"), "success",
                  r"^did_0\+1\+0/$", "an include loop is stopped")
    t.ok(e.d.wait_for_log(r":include: loop at", mark),
         "the include loop is logged")

    e.write_out("self.inc", "selfinc\n")
    mark = e.d.log_mark()
    e.send("selfinc", addr("selfinc"))
    r = sqtest.wait_for(
        "the looping copy to fail",
        lambda: "looping" in e.d.log_text(mark) and
        e.d.log_text(mark), None, 0.2)
    t.ok(r and "already_has_my_Delivered-To_line" in r,
         "an alias that includes itself stops at its Delivered-To line")

    e.write_out("prog.inc", "|/bin/true\n")
    with open(e.o("list.inc"), "a") as f:
        f.write(":include:%s\n" % e.o("prog.inc"))
    mark = e.d.log_mark()
    e.send("incprog", addr("list"))
    expect_result(t, e.d, mark, addr("list"), "deferral",
                  r"program_targets_are_not_allowed_in_:include:_files",
                  "a program target in an :include: file is refused")


def alias_loop_at_rcpt(t, e):
    s = e.d.smtp()
    try:
        s.ehlo()
        s.mail(SENDER)
        code, text = s.rcpt(addr("aloop1"))
        t.ok(code == 550 and b"5.4.6" in text,
             "an alias loop without a destination is refused at RCPT (550 "
             "5.4.6)", (code, text))
    finally:
        s.close()


def new_db_without_restart(t, e):
    good = open(e.src).read()
    e.write_src(good + "fresh: %s\nownprog: |id -u > %s\n" % (
        RCPT_USER, e.o("own.uid")))
    os.chown(e.src, e.owner.pw.pw_uid, e.owner.pw.pw_gid)
    rc, out, err = e.newaliases()
    t.is_(rc, 0, "newaliases with a new alias", err)
    m = make_message("fresh", "body\n", sender=SENDER, to=addr("fresh"))
    code, text = e.d.send(m, sender=SENDER, rcpts=[addr("fresh")])
    t.is_(code, 250, "the running daemon knows the new alias", text)
    expect_delivered(t, e.h.path("Maildir"), m, SENDER, addr(RCPT_USER),
                     "the new alias delivers")
    # the source now belongs to a user: its programs run as that user
    os.chown(e.out, e.owner.pw.pw_uid, e.owner.pw.pw_gid)
    mark = e.d.log_mark()
    e.send("ownprog", addr("ownprog"))
    expect_result(t, e.d, mark, addr("ownprog"), "success",
                  r"^did_0\+0\+1/$", "program of a user-owned source")
    t.is_(open(e.o("own.uid")).read().strip(), str(e.owner.pw.pw_uid),
          "it runs as the owner of the source")
    os.chown(e.src, 0, 0)
    os.chown(e.out, e.nobody.pw_uid, e.nobody.pw_gid)


def main():
    t = sqtest.Tap()
    sqtest.require_root(t, "program and file targets run as nobody")
    if not os.access(sqtest.SQMAILCTL, os.X_OK):
        t.skip_all("%s not built (run make)" % sqtest.SQMAILCTL)
    e = Env(t)
    e.write_src(source(e))
    sqtest.run(t, [newaliases_three_names, bad_source_keeps_old_db], e,
               done=False)
    e.d.start()
    sqtest.run(t, [address_aliases, program_target, program_exit_codes,
                   file_targets, include_targets, alias_loop_at_rcpt,
                   new_db_without_restart], e, done=False)
    e.d.stop()
    t.done_testing()


if __name__ == "__main__":
    main()
