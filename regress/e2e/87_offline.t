#!/usr/bin/env python3
"""
The offline directory, as root: sqmaild (started as root) creates
<spool>/offline mode 1733 and offline.bad 0700, both root's; while it is
stopped, `sendmail` (plain and -bs) by root and by an unprivileged user
stores messages there and exits 0; the user cannot list the directory;
the user plants a symbolic link and hard links to files holding a valid
offline envelope, and a malformed file.  Once sqmaild starts again it
delivers the real messages with the right uid in Received, moves the
planted files to offline.bad (never mailing the targets' content, never
touching the targets) and leaves the directory empty.
"""
import os
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest

YOU = "you@example.test"
# The system's python: the one running us may be in root's home.
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) \
    else sys.executable
TESTUSER = "sqtestoff"

CONF = sqtest.ROOT_CONF_HEAD + """\
dns servers "127.0.0.1:9"
queue retry-min 1s
queue retry-max 2s
domain "example.test" {{
	deliver maildir "{maildir}/"
	user "{muser}"
}}
"""


def envelope(subject):
    return ("sqmail-offline 1\nSroot\nR%s\n\nSubject: %s\n\nsecret\n" % (
        YOU, subject)).encode()


class Env:
    def __init__(self, d, u):
        self.d = d
        self.u = u
        self.bin = d.path("bin")
        os.makedirs(self.bin, exist_ok=True)
        self.sendmail = os.path.join(self.bin, "sendmail")
        os.symlink(sqtest.SQMAILCTL, self.sendmail)
        self.offline = os.path.join(d.spool, "offline")
        self.bad = os.path.join(d.spool, "offline.bad")
        self.env = dict(os.environ, SQMAIL_SOCKET=d.sock,
                        SQMAIL_OFFLINE=self.offline)
        self.planted = {}

    def run(self, argv, data, user=False, **kw):
        return sqtest.run_prog(argv, data, self.env,
                               self.u if user else None, **kw)

    def as_user(self, code):
        """Run python code as the test user: (exit status, output)."""
        rc, out, err = self.run([PYTHON, "-c", code], b"", user=True)
        return rc, out + err


def directories_made_safely(t, e):
    st = os.lstat(e.offline)
    t.ok(stat.S_ISDIR(st.st_mode), "offline is a directory")
    t.is_(oct(stat.S_IMODE(st.st_mode)), oct(0o1733), "offline: mode 1733")
    t.is_((st.st_uid, st.st_gid), (0, 0), "offline: root's")
    st = os.lstat(e.bad)
    t.is_(oct(stat.S_IMODE(st.st_mode)), oct(0o700), "offline.bad: mode 700")
    t.is_(st.st_uid, 0, "offline.bad: root's")
    mode = stat.S_IMODE(os.stat(e.d.spool).st_mode)
    t.is_(mode & 0o066, 0, "the spool stays unreadable to others")
    t.is_(mode & 0o011, 0o011, "the spool is searchable (the way in)")


def stop_daemon(t, e):
    e.d.stop("sqmaild stops; the offline tests run without it")
    t.ok(not os.path.exists(e.d.sock) or not e.d.running(),
         "sqmaild is down")


def sendmail_while_down(t, e):
    rc, out, err = e.run([e.sendmail, "-v", YOU],
                         b"Subject: offline from root\n\nby root\n")
    t.is_(rc, 0, "root: sendmail while sqmaild is down exits 0", err)
    t.like(err, r"stored in the offline directory as \d+\.\d+\.[0-9a-f]+",
           "-v says where it went")
    rc, out, err = e.run([e.sendmail, "-f", "boss@example.test", YOU],
                         b"Subject: offline from user\n\nby a user\n",
                         user=True)
    t.is_(rc, 0, "%s: sendmail while sqmaild is down exits 0" % TESTUSER,
          err)
    session = (b"HELO me\r\nMAIL FROM:<u@example.test>\r\nRCPT TO:<" +
               YOU.encode() + b">\r\nDATA\r\nSubject: offline -bs\r\n\r\n"
               b"..dotted\r\n.\r\nQUIT\r\n")
    rc, out, err = e.run([e.sendmail, "-bs"], session, user=True)
    t.is_(rc, 0, "%s: sendmail -bs while sqmaild is down exits 0" %
          TESTUSER, err)
    t.like(out, r"(?m)^250 2\.0\.0 Ok: sqmaild is not running; stored in "
           r"the offline directory", "-bs: 250 after the dot: stored", out)
    names = os.listdir(e.offline)
    t.is_(len(names), 3, "three files in the offline directory", names)
    owners = sorted(os.lstat(os.path.join(e.offline, n)).st_uid
                    for n in names)
    t.is_(owners, sorted([0, e.u.pw_uid, e.u.pw_uid]),
          "owned by their writers")
    modes = set(stat.S_IMODE(os.lstat(os.path.join(e.offline, n)).st_mode)
                for n in names)
    t.is_(modes, {0o600}, "each file mode 600")


def user_cannot_list_or_take(t, e):
    rc, out = e.as_user("import os; os.listdir(%r)" % e.offline)
    t.ok(rc != 0 and "PermissionError" in out,
         "%s cannot list the offline directory" % TESTUSER, out)
    root_file = next(n for n in os.listdir(e.offline)
                     if os.lstat(os.path.join(e.offline, n)).st_uid == 0)
    rc, out = e.as_user("open(%r).read()" % os.path.join(e.offline,
                                                         root_file))
    t.ok(rc != 0 and "PermissionError" in out,
         "%s cannot read root's file" % TESTUSER, out)
    rc, out = e.as_user("import os; os.unlink(%r)" % os.path.join(
        e.offline, root_file))
    t.ok(rc != 0 and "PermissionError" in out,
         "%s cannot remove root's file (sticky)" % TESTUSER, out)
    rc, out = e.as_user("import os; os.rename(%r, %r)" % (
        os.path.join(e.offline, root_file), os.path.join(e.offline, "x")))
    t.ok(rc != 0 and "PermissionError" in out,
         "%s cannot rename root's file" % TESTUSER, out)


def plant_files(t, e):
    # A root-only file that would be mailed if it were followed.
    secret = e.d.path("root-secret")
    with open(secret, "wb") as f:
        f.write(envelope("ROOT SECRET via symlink"))
    os.chmod(secret, 0o600)
    e.planted["secret"] = secret
    rc, out = e.as_user("import os; os.symlink(%r, %r)" % (
        secret, os.path.join(e.offline, "evil-symlink")))
    t.is_(rc, 0, "%s plants a symbolic link to a root file" % TESTUSER, out)
    # The user's own valid file, hard-linked into the directory.
    own_dir = e.d.path("userdir")
    os.makedirs(own_dir)
    os.chown(own_dir, e.u.pw_uid, e.u.pw_gid)
    own = os.path.join(own_dir, "own")
    rc, out = e.as_user(
        "import os\nf = os.open(%r, os.O_CREAT | os.O_WRONLY, 0o600)\n"
        "os.write(f, %r)\nos.close(f)\nos.link(%r, %r)\n" % (
            own, envelope("USER HARDLINK"), own,
            os.path.join(e.offline, "evil-hardlink")))
    t.is_(rc, 0, "%s plants a hard link to a file of its own" % TESTUSER,
          out)
    e.planted["own"] = own
    # A hard link to root's file, when the kernel lets a user make one
    # (fs.protected_hardlinks = 0); else the kernel is the first guard.
    rc, out = e.as_user("import os; os.link(%r, %r)" % (
        secret, os.path.join(e.offline, "evil-rootlink")))
    if rc == 0:
        t.ok(True, "%s hard-links root's file into the directory" %
             TESTUSER)
        e.planted["rootlink"] = True
    else:
        t.ok("PermissionError" in out, "the kernel refuses %s a hard link "
             "to root's file (protected_hardlinks)" % TESTUSER, out)
    rc, out = e.as_user(
        "import os\nf = os.open(%r, os.O_CREAT | os.O_EXCL | os.O_WRONLY, "
        "0o600)\nos.write(f, b'not an offline file\\n')\n" % os.path.join(
            e.offline, "garbage"))
    t.is_(rc, 0, "%s drops a malformed file" % TESTUSER, out)


def restart_picks_up(t, e):
    d = e.d
    since = d.log_size()
    d.start()
    try:
        msgs = sqtest.wait_for_maildir(d.maildir, 3)
    except sqtest.WaitTimeout as ex:
        t.ok(False, "the three offline messages are delivered", str(ex))
        msgs = sqtest.maildir_read(d.maildir)
    by_subject = {m.header("Subject"): m for m in msgs}
    t.is_(sorted(by_subject), sorted(["offline from root",
                                      "offline from user", "offline -bs"]),
          "exactly the three real messages are delivered",
          [m.rest[:200] for m in msgs])
    m = by_subject.get("offline from root")
    if m is not None:
        t.like((m.received or b"").decode(), r"^Received: \(from uid 0\)",
               "root's message: Received (from uid 0)", m.received)
        t.ok(m.rest.endswith(b"\n\nby root\n"), "root's message: its body")
    for subj in ("offline from user", "offline -bs"):
        m = by_subject.get(subj)
        if m is None:
            continue
        t.like((m.received or b"").decode(), r"^Received: \(from uid %d\)"
               % e.u.pw_uid, "%s: Received (from uid %d), the file's owner"
               % (subj, e.u.pw_uid), m.received)
    m = by_subject.get("offline from user")
    if m is not None:
        t.is_(m.return_path, "boss@example.test", "the -f sender kept")
    m = by_subject.get("offline -bs")
    if m is not None:
        t.is_(m.return_path, "u@example.test", "-bs: MAIL FROM kept")
        t.ok(m.rest.endswith(b"\n\n.dotted\n"), "-bs: dot-unstuffed", m.rest)
    bad = ["evil-symlink", "evil-hardlink", "garbage"] + (
        ["evil-rootlink"] if e.planted.get("rootlink") else [])
    try:
        sqtest.wait_for("offline directory emptied",
                        lambda: not os.listdir(e.offline))
        t.ok(True, "the offline directory is empty")
    except sqtest.WaitTimeout:
        t.ok(False, "the offline directory is empty",
             os.listdir(e.offline))
    t.is_(sorted(os.listdir(e.bad)), sorted(bad),
          "the planted files are in offline.bad")
    log = d.log_text(since)
    t.like(log, r"pickup: offline/evil-symlink \(uid %d\): a symbolic link; "
           r"moved to offline.bad" % e.u.pw_uid, "symlink: logged")
    t.like(log, r"pickup: offline/evil-hardlink \(uid %d\): a file with more "
           r"than one link; moved" % e.u.pw_uid, "hard link: logged")
    t.like(log, r"pickup: offline/garbage \(uid %d\): not an offline file"
           % e.u.pw_uid, "malformed file: logged")
    t.ok(os.path.islink(os.path.join(e.bad, "evil-symlink")),
         "the symlink itself was moved, not what it points at")
    with open(e.planted["secret"], "rb") as f:
        t.is_(f.read(), envelope("ROOT SECRET via symlink"),
              "root's file untouched")
    t.ok(os.path.exists(e.planted["own"]), "the user's own file untouched")
    msgs = sqtest.maildir_read(d.maildir)
    t.ok(not any(b"SECRET" in m.data or b"HARDLINK" in m.data
                 for m in msgs), "no planted content was mailed")


def main():
    t = sqtest.Tap()
    sqtest.require_root(t, "files of two users in a root-owned directory")
    u = sqtest.ensure_user(TESTUSER)
    if u is None:
        t.skip_all("cannot create the test user %s" % TESTUSER)
    d = sqtest.root_daemon(t, CONF, muser=TESTUSER)
    os.chown(d.maildir, u.pw_uid, u.pw_gid)
    for sub in ("tmp", "new", "cur"):
        os.chown(os.path.join(d.maildir, sub), u.pw_uid, u.pw_gid)
    os.chmod(d.dir, 0o755)
    d.start()
    e = Env(d, u)
    sqtest.run(t, [directories_made_safely, stop_daemon, sendmail_while_down,
                   user_cannot_list_or_take, plant_files, restart_picks_up],
               e, done=False)
    sqtest.run(t, [sqtest.sqmaild_stops_on_sigterm_leaving_no_process], d)


if __name__ == "__main__":
    main()
