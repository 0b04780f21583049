"""
dotqmailtest: what the .qmail tests (41_dotqmail.t, 42_dotqmail_forward.t)
share.  They run as root, so that the agents run as real users with real
homes: the daemon's configuration, test users created in the scratch
directory (removed at exit), their homes, and sending a message and
checking its delivery line.  Standard library only.
"""
import atexit
import os
import re
import subprocess

import sqtest
from sqtest import make_message

DOM = "example.test"

CONF = sqtest.ROOT_CONF_HEAD + """\
dns servers "127.0.0.1:9"
queue retry-min 1s
queue retry-max 2s
agent idle 2s
agent program-timeout {program_timeout}
domain "example.test" {{
	deliver maildir "~/Maildir/"
}}
"""


class Home:
    """A test user's home: files written there belong to the user."""

    def __init__(self, pw):
        self.pw = pw
        self.dir = pw.pw_dir

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def own(self, p):
        os.lchown(p, self.pw.pw_uid, self.pw.pw_gid)

    def write(self, name, text, mode=0o644):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        self.own(p)
        return p

    def maildir(self, name):
        for sub in ("", "tmp", "new", "cur"):
            p = self.path(name, sub)
            os.makedirs(p, exist_ok=True)
            self.own(p)
        return self.path(name)


def make_user(t, name):
    """A fresh user with its home in the scratch directory and a Maildir."""
    home = os.path.join(sqtest.scratch_root(), "home", name)
    if sqtest.ensure_user(name, home=home) is not None:
        subprocess.run(["userdel", name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    pw = sqtest.ensure_user(name, home=home)
    if pw is None:
        t.skip_all("cannot create the user %s (useradd)" % name)
    atexit.register(lambda: subprocess.run(
        ["userdel", name], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL))
    os.makedirs(home, mode=0o755)
    os.chmod(os.path.dirname(home), 0o755)
    h = Home(pw)
    h.own(home)
    h.maildir("Maildir")
    return h


def start_daemon(t, program_timeout):
    return sqtest.root_daemon(t, CONF,
                              program_timeout=program_timeout).start()


def addr(user, ext=None):
    return "%s%s@%s" % (user, "-" + ext if ext else "", DOM)


def send(t, d, subject, rcpt, sender):
    m = make_message(subject, "body of %s\n" % subject, sender=sender,
                     to=rcpt)
    code, text = d.send(m, sender=sender, rcpts=[rcpt])
    t.is_(code, 250, "%s: a message to %s -> 250" % (subject, rcpt), text)
    return m


def expect_result(t, d, mark, rcpt, what, pattern, name):
    """The first delivery to rcpt after mark is logged as what: pattern."""
    got, text = d.delivery_outcome(rcpt, mark)
    t.ok(got == what and re.search(pattern, text),
         "%s: log: delivery D: %s: /%s/" % (name, what, pattern),
         "got %r" % ((got, text),),
         "\n".join(d.log_text(mark).splitlines()[-15:]))
