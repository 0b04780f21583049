#!/usr/bin/env python3
"""
SMTP AUTH backends other than a users table, started as root (only then;
otherwise the whole file is skipped, saying so).

checkpassword (auth checkpassword "PROG" [timeout T]): a Python program
that accepts one user and password, checks the interface (user NUL
password NUL timestamp NUL on fd 3; stdin and stdout /dev/null; one
argument, the program to run next, which it execs) and exits 1 otherwise:
235 and 535.  A program that sleeps past the timeout, one that exits 111
and one that does not exist: 454 4.7.0, and the sleeper's whole process
group is gone after.  Twelve sessions at once (more than run at a time):
all 235.

system users (auth system, and auth system pam "sqmail-test" with a PAM
service file using pam_unix): test users made with useradd and chpasswd,
removed at the end.  The right password 235, a wrong one 535, an unknown
user 535, a locked user 535, a user with uid 0 (and a known password) 535.
"""
import base64
import os
import secrets
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest

SYS_USER = "sqtbkuser"
SYS_LOCKED = "sqtbklocked"
SYS_ROOT = "sqtbkroot"          # uid 0 (useradd -o -u 0)
SYS_PASS = "Sys pw " + secrets.token_hex(6)
ROOT_PASS = secrets.token_hex(12)
PAM_SERVICE = "sqmail-test"
PAM_FILE = "/etc/pam.d/" + PAM_SERVICE
CP_USER = "carol@example.test"
CP_PASS = "pw of carol"

CONF = sqtest.ROOT_CONF_HEAD + """\
dns servers "127.0.0.1:9"
# Many failures from 127.0.0.1 on purpose: no per-address lockout here.
limit auth-failures 0
listen on 127.0.0.1 port {cpport} auth checkpassword "{dir}/cp-ok" auth plaintext
listen on 127.0.0.1 port {slowport} auth checkpassword "{dir}/cp-slow" timeout 2s auth plaintext
listen on 127.0.0.1 port {p111port} auth checkpassword "{dir}/cp-111" auth plaintext
listen on 127.0.0.1 port {noneport} auth checkpassword "{dir}/cp-none" auth plaintext
listen on 127.0.0.1 port {sysport} auth system auth plaintext
listen on 127.0.0.1 port {pamport} auth system pam "{pam}" auth plaintext
domain "example.test" {{
	deliver maildir "{dir}/mail/%u/Maildir/"
}}
domain "cpdom.test" {{
	deliver maildir "{dir}/mail/%u/Maildir/"
	auth checkpassword "{dir}/cp-dom"
}}
"""

# The backend of the domain block cpdom.test: one user, one password.
DOM_USER = "dom@cpdom.test"
DOM_PASS = "pw of dom"
# What each checkpassword script of the test starts with: fd 3 read.
READ_FD3 = """#!/usr/bin/python3
import os, sys
data = b""
while len(data) < 8192:
    b = os.read(3, 4096)
    if not b:
        break
    data += b
parts = data.split(b"\\0")
"""
CP_DOM = READ_FD3 + """sys.exit(0 if parts[:2] == [b"%s", b"%s"] else 1)
""" % (DOM_USER, DOM_PASS)

CP_OK = READ_FD3 + """null = all(os.path.realpath("/proc/self/fd/%%d" %% i) == "/dev/null"
           for i in (0, 1))
with open(os.path.join(os.path.dirname(__file__), "out", "cp-%%d" %%
          os.getpid()), "w") as f:
    f.write("argv=%%r null=%%r parts=%%d\\n" %% (sys.argv[1:], null,
            len(parts)))
ok = (len(parts) == 4 and parts[0] == b"%s" and parts[1] == b"%s" and
      parts[2].isdigit() and parts[3] == b"" and null and len(sys.argv) == 2)
if ok:
    os.execv(sys.argv[1], sys.argv[1:])
sys.exit(1)
""" % (CP_USER, CP_PASS)

CP_SLOW = "#!/bin/sh\nexec 3<&-\nsleep 60\nexit 0\n"
CP_111 = "#!/bin/sh\nexit 111\n"

PAM_TEXT = """\
# written by regress/e2e/57_auth_backends.t (removed at its end)
auth	required	pam_unix.so nodelay
account	required	pam_unix.so
"""


def b64(s):
    return base64.b64encode(s.encode()).decode()


def plain(user, pw):
    return b64("\0" + user + "\0" + pw)


def auth(port, user, pw):
    c = sqtest.Client(port)
    c.greeting()
    c.ehlo()
    r = c.cmd("AUTH PLAIN " + plain(user, pw))
    c.close()
    return r


def checkpassword_accepts_one_user(t, d, x):
    r = auth(x["cpport"], CP_USER, CP_PASS)
    t.reply(r, 235, "2.7.0", "checkpassword: right password 235")
    outs = [open(os.path.join(d.path("out"), f)).read()
            for f in os.listdir(d.path("out"))]
    t.ok(any("argv=['/bin/true'] null=True parts=4" in o for o in outs),
         "checkpassword got user, password, timestamp on fd 3, /dev/null "
         "on stdin/stdout, and /bin/true to run next", outs)
    r = auth(x["cpport"], CP_USER, "wrong")
    t.reply(r, 535, "5.7.8", "checkpassword: wrong password 535")
    r = auth(x["cpport"], "dave@example.test", CP_PASS)
    t.reply(r, 535, "5.7.8", "checkpassword: another user 535")


def a_domain_block_names_its_own_backend(t, d, x):
    # The system listener: user@cpdom.test goes to cpdom.test's program.
    r = auth(x["sysport"], DOM_USER, DOM_PASS)
    t.reply(r, 235, "2.7.0", "user@cpdom.test on the system listener: the "
            "domain's checkpassword says yes, 235")
    r = auth(x["sysport"], DOM_USER, "wrong")
    t.reply(r, 535, "5.7.8", "... and no to a wrong password, 535")
    r = auth(x["cpport"], CP_USER, CP_PASS)
    t.reply(r, 235, "2.7.0", "a domain without its own backend keeps the "
            "listener's")


def checkpassword_failures_are_temporary(t, d, x):
    r = auth(x["slowport"], CP_USER, CP_PASS)
    t.reply(r, 454, "4.7.0", "checkpassword past its timeout: 454 4.7.0")
    script = d.path("cp-slow")

    def gone():
        for pid in sqtest.all_pids():
            cmd = sqtest.proc_cmdline(pid) or []
            if any(script in a for a in cmd) or (
                    cmd[:2] == ["sleep", "60"]):
                return False
        return True
    try:
        sqtest.wait_for("the slow checkpassword and its sleep to go", gone)
        t.ok(True, "the timeout killed the program's process group")
    except sqtest.WaitTimeout as e:
        t.ok(False, "the timeout killed the program's process group",
             str(e))
    r = auth(x["p111port"], CP_USER, CP_PASS)
    t.reply(r, 454, "4.7.0", "checkpassword exiting 111: 454 4.7.0")
    r = auth(x["noneport"], CP_USER, CP_PASS)
    t.reply(r, 454, "4.7.0", "checkpassword program missing: 454 4.7.0")
    t.like(d.log_text(), r"cp-111 exited with status 111",
           "the log says why")
    t.like(d.log_text(), r"cp-slow: no verdict in 2 s; killed",
           "the log says the slow one was killed at its timeout")


def checkpassword_many_at_once(t, d, x):
    codes = []
    lock = threading.Lock()

    def one():
        try:
            r = auth(x["cpport"], CP_USER, CP_PASS)
            code = r.code if r is not None else None
        except Exception as e:
            code = repr(e)
        with lock:
            codes.append(code)
    ths = [threading.Thread(target=one) for _ in range(12)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(sqtest.TIMEOUT)
    t.is_(codes, [235] * 12, "12 checkpassword sessions at once: all 235")


def system_users(t, d, x):
    for port, how in ((x["sysport"], "auth system"),
                      (x["pamport"], "auth system pam")):
        r = auth(port, SYS_USER, SYS_PASS)
        t.reply(r, 235, "2.7.0", "%s: right password 235" % how)
        r = auth(port, SYS_USER, SYS_PASS + "x")
        t.reply(r, 535, "5.7.8", "%s: wrong password 535" % how)
        r = auth(port, "sqtbknosuchuser", SYS_PASS)
        t.reply(r, 535, "5.7.8", "%s: unknown user 535" % how)
        r = auth(port, SYS_LOCKED, SYS_PASS)
        t.reply(r, 535, "5.7.8", "%s: locked user 535" % how)
        r = auth(port, SYS_ROOT, ROOT_PASS)
        t.reply(r, 535, "5.7.8", "%s: uid 0 with its right password 535"
                % how)
        r = auth(port, "root", ROOT_PASS)
        t.reply(r, 535, "5.7.8", "%s: root 535" % how)
    t.like(d.log_text(), r"%s has uid 0: refused" % SYS_ROOT,
           "the log says uid 0 is refused")


def make_users():
    """The system users: (ok, why)."""
    remove_users()
    for cmd in (["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                 SYS_USER],
                ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                 SYS_LOCKED],
                ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                 "-o", "-u", "0", "-g", "0", SYS_ROOT]):
        p = subprocess.run(cmd, capture_output=True, timeout=sqtest.TIMEOUT)
        if p.returncode != 0:
            return False, "%s: %r" % (cmd, p.stderr)
    text = "%s:%s\n%s:%s\n%s:%s\n" % (SYS_USER, SYS_PASS, SYS_LOCKED,
                                      SYS_PASS, SYS_ROOT, ROOT_PASS)
    p = subprocess.run(["chpasswd"], input=text.encode(), capture_output=True,
                       timeout=sqtest.TIMEOUT)
    if p.returncode != 0:
        return False, "chpasswd: %r" % p.stderr
    p = subprocess.run(["usermod", "-L", SYS_LOCKED], capture_output=True,
                       timeout=sqtest.TIMEOUT)
    if p.returncode != 0:
        return False, "usermod -L: %r" % p.stderr
    with open(PAM_FILE, "w") as f:
        f.write(PAM_TEXT)
    return True, ""


def remove_users():
    for u in (SYS_ROOT, SYS_LOCKED, SYS_USER):
        # -f: uid 0 is in use by running processes, and userdel refuses.
        subprocess.run(["userdel", "-f", u], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=sqtest.TIMEOUT)
    try:
        os.unlink(PAM_FILE)
    except FileNotFoundError:
        pass


def main():
    t = sqtest.Tap()
    sqtest.require_root(t, "test users, PAM, shadow")
    if not os.path.exists("/usr/bin/python3"):
        t.skip_all("the checkpassword test program needs /usr/bin/python3")
    try:
        ok, why = make_users()
        if not ok:
            t.bail_out("cannot make the test users: " + why)
        x = dict(cpport=sqtest.free_port(), slowport=sqtest.free_port(),
                 p111port=sqtest.free_port(), noneport=sqtest.free_port(),
                 sysport=sqtest.free_port(), pamport=sqtest.free_port())
        d = sqtest.root_daemon(t, CONF, pam=PAM_SERVICE, **x)
        os.makedirs(d.path("mail"), mode=0o755)
        os.makedirs(d.path("out"))
        os.chmod(d.path("out"), 0o1777)
        for name, text in (("cp-ok", CP_OK), ("cp-slow", CP_SLOW),
                           ("cp-111", CP_111), ("cp-dom", CP_DOM)):
            d.write(name, text)
            os.chmod(d.path(name), 0o755)
        d.start()
        sqtest.run(t, [
            checkpassword_accepts_one_user,
            a_domain_block_names_its_own_backend,
            checkpassword_failures_are_temporary,
            checkpassword_many_at_once,
            system_users,
            sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
        ], d, x)
    finally:
        remove_users()
        left = [u for u in (SYS_ROOT, SYS_LOCKED, SYS_USER)
                if subprocess.run(["getent", "passwd", u],
                                  stdout=subprocess.DEVNULL).returncode == 0]
        if left:
            sys.stdout.write("# WARNING: test users left behind: %s\n" %
                             " ".join(left))


if __name__ == "__main__":
    main()
