"""
sqtest: the harness of sqmail's end-to-end tests.

Each test file (regress/e2e/NN_topic.t) is a Python script that prints TAP.
It starts the real daemon (./sqmaild of the repository root, built by
`make`) in a scratch directory on loopback ports, talks to it with real
clients (smtplib, a raw-socket SMTP client, swaks, sqmailctl) and reads what
it delivered.  Nothing is mocked; every wait polls with a bounded deadline.

    import sqtest
    t = sqtest.Tap()
    d = sqtest.Daemon(t)
    d.start()
    c = d.client()
    t.reply(c.greeting(), 220, None, "server greets with 220")
    ...
    sqtest.run(t, [behaviour_one, behaviour_two], d)

Environment:
    SQTEST_KEEP=1          keep the scratch directory (its path is printed)
    SQTEST_TIMEOUT_SCALE=N multiply every deadline by N (slow machines)
    SQTEST_USER=name       the unprivileged user the daemon runs as when the
                           tests are started as root (default: _sqtest,
                           created with useradd when missing)

When the tests run as root (CI, `make check` in a container) the daemon is
still started as an unprivileged user, because every test but
90_privileges.t exercises the non-root mode that the DESIGN describes
("started as a normal user all processes run as that user without
chroot").  90_privileges.t starts it as root.
"""

import atexit
import ctypes
import grp
import os
import pwd
import random
import re
import shutil
import signal
import socket
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import traceback

REPO = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(
    __file__)), "..", ".."))
SQMAILD = os.path.join(REPO, "sqmaild")
SQMAILCTL = os.path.join(REPO, "sqmailctl")
TEST_DEPS = os.path.join(REPO, "scripts", "deps.sh")

SCALE = float(os.environ.get("SQTEST_TIMEOUT_SCALE", "1") or "1")
TIMEOUT = 30 * SCALE            # default deadline of one wait
LOCAL_DOMAIN = "example.test"
CLIENT_HELO = "client.sqtest.test"


def deadline(seconds=None):
    return time.monotonic() + (TIMEOUT if seconds is None else
                               seconds * SCALE)


class WaitTimeout(Exception):
    """A bounded wait ran out; the message says what was awaited."""


# ---------------------------------------------------------------- TAP


class Tap:
    """A TAP producer: ok/is_/like/reply/diag/note/skip, done_testing."""

    def __init__(self):
        self.n = 0
        self.failed = 0
        self.failure_hooks = []     # callables -> list of diag lines
        self.lock = threading.Lock()
        sys.stdout.reconfigure(line_buffering=True)
        _become_subreaper()
        atexit.register(cleanup)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, _on_signal)

    def _emit(self, line):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def diag(self, msg):
        """A diagnostic prove shows (stderr, like Test::More's diag)."""
        for line in str(msg).splitlines() or [""]:
            sys.stderr.write("# " + line + "\n")
        sys.stderr.flush()

    def note(self, msg):
        """A diagnostic on stdout (prove shows it with -v)."""
        for line in str(msg).splitlines() or [""]:
            self._emit("# " + line)

    def ok(self, cond, name, *diags):
        with self.lock:
            self.n += 1
            name = _tap_name(name)
            if cond:
                self._emit("ok %d - %s" % (self.n, name))
                return True
            self.failed += 1
            self._emit("not ok %d - %s" % (self.n, name))
            caller = _caller()
            self.diag("  Failed test '%s'" % name)
            if caller:
                self.diag("  at %s" % caller)
            for d in diags:
                if d is not None:
                    self.diag(_indent(d))
            for hook in self.failure_hooks:
                try:
                    for line in hook():
                        self.diag(line)
                except Exception as e:   # a hook must not hide the failure
                    self.diag("  (failure hook raised %r)" % e)
            return False

    def is_(self, got, expected, name, *diags):
        return self.ok(got == expected, name,
                       "     got: %s\nexpected: %s" % (_show(got),
                                                      _show(expected)),
                       *diags)

    def isnt(self, got, unexpected, name, *diags):
        return self.ok(got != unexpected, name,
                       "     got: %s\nexpected anything else" % _show(got),
                       *diags)

    def like(self, got, pattern, name, *diags):
        m = None
        if got is not None:
            m = re.search(pattern, got if isinstance(got, (str, bytes))
                          else str(got), re.M)
        self.ok(m is not None, name,
                "     got: %s\nexpected to match: %s" % (_show(got),
                                                         pattern), *diags)
        return m

    def unlike(self, got, pattern, name, *diags):
        m = re.search(pattern, got, re.M) if got is not None else None
        return self.ok(m is None, name,
                       "     got: %s\nexpected not to match: %s" % (
                           _show(got), pattern), *diags)

    def reply(self, r, code, enhanced, name, client=None):
        """Assert an SMTP reply's code and (prefix of) enhanced code."""
        good = r is not None and r.code == code
        if good and enhanced is not None:
            good = r.enhanced is not None and (
                r.enhanced == enhanced or
                (enhanced.endswith(".") and r.enhanced.startswith(enhanced)))
        want = "%d %s" % (code, enhanced or "")
        return self.ok(good, name, "     got: %s\nexpected: %s" % (
            r.raw.rstrip() if r is not None else "(no reply)", want.strip()),
            client.transcript_tail() if client is not None else None)

    def skip(self, name, reason):
        with self.lock:
            self.n += 1
            self._emit("ok %d - %s # SKIP %s" % (self.n, _tap_name(name),
                                                  reason))

    def skip_all(self, reason):
        """Nothing of this file can run: say why, and exit."""
        if self.n == 0:
            self._emit("1..0 # SKIP %s" % reason)
            cleanup()
            sys.exit(0)
        self.skip("the remaining tests", reason)
        self.done_testing()

    def bail_out(self, reason):
        self._emit("Bail out! %s" % reason)
        cleanup()
        sys.exit(255)

    def done_testing(self):
        cleanup()
        self._emit("1..%d" % self.n)
        sys.exit(1 if self.failed else 0)


def _on_signal(sig, frame):
    """Killed (prove's timeout, ^C): leave no daemon behind."""
    cleanup()
    sys.stdout.write("# killed by signal %d\n" % sig)
    os._exit(128 + sig)


def _tap_name(name):
    return str(name).replace("\n", " ").replace("#", "\\#")


def _indent(text):
    return "\n".join("  " + l for l in str(text).splitlines())


def _show(v, limit=600):
    s = repr(v)
    if len(s) > limit:
        s = s[:limit] + "... (%d chars)" % len(s)
    return s


def _caller():
    for fr in reversed(traceback.extract_stack()[:-2]):
        if not fr.filename.endswith("sqtest.py"):
            return "%s line %d" % (os.path.basename(fr.filename), fr.lineno)
    return None


def run(t, tests, *args, done=True):
    """
    Run each test function (named after the behaviour it checks) with
    args; an exception in one is a failure named after it, and the others
    still run.  Ends with done_testing() unless done is False.
    """
    for fn in tests:
        name = fn.__name__
        t.note("--- %s" % name)
        try:
            fn(t, *args)
        except Exception:
            t.ok(False, "%s (raised)" % name, traceback.format_exc())
    if done:
        t.done_testing()


# ------------------------------------------------- processes and users


def _become_subreaper():
    """
    Orphans of a daemon we start re-parent to us instead of init, so /proc
    parent links still lead to them after the daemon's parent is gone.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)      # PR_SET_CHILD_SUBREAPER
    except Exception:
        pass


def proc_stat(pid):
    """(ppid, pgid, state, starttime) of a process, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            s = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    # rest[0]=state, [1]=ppid, [2]=pgrp, ..., [19]=starttime
    return {"state": rest[0], "ppid": int(rest[1]), "pgid": int(rest[2]),
            "start": int(rest[19])}


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(
                "utf-8", "replace").strip()
    except OSError:
        return ""


def proc_status(pid):
    """The fields of /proc/PID/status as a dict of strings."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except OSError:
        return None
    return out


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def descendants(pid):
    """Every live process whose parent chain leads to pid."""
    children = {}
    for p in all_pids():
        st = proc_stat(p)
        if st is not None:
            children.setdefault(st["ppid"], []).append(p)
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def alive(pid, start=None):
    st = proc_stat(pid)
    if st is None or st["state"] in ("Z", "X"):
        if st is not None and st["ppid"] == os.getpid():
            _reap(pid)
        return False
    return start is None or st["start"] == start


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def ensure_user(name, system=True, home=None):
    """The passwd entry of name, created with useradd when root."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    if os.getuid() != 0:
        return None
    cmd = ["useradd", "--user-group", "--shell", "/usr/sbin/nologin"]
    if system:
        cmd.append("--system")
    if home:
        cmd += ["--home-dir", home, "--no-create-home"]
    else:
        cmd += ["--no-create-home"]
    cmd.append(name)
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def ensure_group(name):
    """The group entry of name, created with groupadd when root."""
    try:
        return grp.getgrnam(name)
    except KeyError:
        pass
    if os.getuid() != 0:
        return None
    subprocess.run(["groupadd", "--system", name], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    try:
        return grp.getgrnam(name)
    except KeyError:
        return None


def run_user():
    """
    The passwd entry the daemon runs as: ourselves, or (as root) the
    unprivileged test user.  None when that user cannot be had.
    """
    if os.getuid() != 0:
        return pwd.getpwuid(os.getuid())
    return ensure_user(os.environ.get("SQTEST_USER", "_sqtest"))


def have_cmd(name):
    return shutil.which(name) is not None


def require_cmd(t, name):
    """
    True when the command is there, installing the test dependencies first
    when it is not and we are root.  Says honestly when it is missing.
    """
    if have_cmd(name):
        return True
    if os.getuid() == 0 and os.path.exists(TEST_DEPS):
        t.note("%s missing: running %s" % (name, TEST_DEPS))
        subprocess.run(["sh", TEST_DEPS, "test"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=600)
    return have_cmd(name)


def free_port(host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


# ------------------------------------------------------- scratch space

_scratch = None
_daemons = []


def scratch_root():
    global _scratch
    if _scratch is None:
        _scratch = tempfile.mkdtemp(prefix="sqtest-%s-" % os.path.basename(
            sys.argv[0]).split(".")[0])
        os.chmod(_scratch, 0o755)
    return _scratch


def cleanup():
    """Stop what still runs; remove the scratch space unless kept."""
    global _scratch
    for d in list(_daemons):
        try:
            d.kill_all()
        except Exception:
            pass
    if _scratch is None:
        return
    if os.environ.get("SQTEST_KEEP") == "1":
        sys.stdout.write("# scratch kept at %s\n" % _scratch)
    else:
        shutil.rmtree(_scratch, ignore_errors=True)
    _scratch = None


# ------------------------------------------------------------ messages


def crlf(lf):
    """LF-form bytes as they go on the wire (no dot-stuffing)."""
    if isinstance(lf, str):
        lf = lf.encode("utf-8")
    return lf.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def dot_stuff(wire):
    return re.sub(br"(?m)^\.", b"..", wire)


def make_message(subject, body="hello\n", msgid=None, sender="sender@" +
                 LOCAL_DOMAIN, to="you@" + LOCAL_DOMAIN, extra=b""):
    """A small RFC 5322 message, LF form, as bytes."""
    if msgid is None:
        msgid = "<%s.%d@sqtest>" % (re.sub(r"\W", "-", subject)[:40],
                                    random.getrandbits(48))
    if isinstance(body, str):
        body = body.encode("utf-8")
    if isinstance(extra, str):
        extra = extra.encode("utf-8")
    head = ("From: %s\nTo: %s\nSubject: %s\nMessage-ID: %s\n" % (
        sender, to, subject, msgid)).encode()
    return head + extra + b"\n" + body


def header(msg, name):
    """The first value of a header in LF-form message bytes, or None."""
    head = msg.split(b"\n\n", 1)[0]
    m = re.search(br"(?im)^" + re.escape(name.encode()) +
                  br":[ \t]*(.*(?:\n[ \t].*)*)", head)
    return m.group(1).decode("utf-8", "replace") if m else None


class Delivered:
    """
    A delivered Maildir message: "Return-Path: <s>", "Delivered-To: r",
    our Received header (received; None in what we generated ourselves,
    such as a bounce), then the message (rest, LF form).
    """

    def __init__(self, path, data):
        self.path = path
        self.data = data
        self.error = None
        self.return_path = self.delivered_to = None
        self.received = self.rest = None
        lines = data.split(b"\n")
        m1 = re.match(br"Return-Path: <(.*)>$", lines[0])
        m2 = re.match(br"Delivered-To: (.*)$", lines[1]) if len(
            lines) > 1 else None
        if not m1 or not m2:
            self.error = ("not Return-Path, Delivered-To: %r" % data[:300])
            return
        self.return_path = m1.group(1).decode("utf-8", "replace")
        self.delivered_to = m2.group(1).decode("utf-8", "replace")
        i = 2
        if len(lines) > 2 and lines[2].startswith(b"Received:"):
            i = 3
            while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
                i += 1
            self.received = b"\n".join(lines[2:i]) + b"\n"
        self.rest = b"\n".join(lines[i:])

    def header(self, name):
        return header(self.rest or self.data, name)

    @property
    def msgid(self):
        return self.header("Message-ID")

    def __repr__(self):
        return "<Delivered %s to %s>" % (os.path.basename(self.path),
                                         self.delivered_to)


def maildir_read(maildir):
    """Delivered messages in new/ and cur/, oldest first."""
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(maildir, sub)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            continue
        for n in names:
            p = os.path.join(d, n)
            try:
                with open(p, "rb") as f:
                    data = f.read()
                st = os.stat(p)
            except FileNotFoundError:
                continue
            out.append((st.st_mtime_ns, n, Delivered(p, data)))
    out.sort(key=lambda x: (x[0], x[1]))
    return [x[2] for x in out]


def wait_for(what, fn, seconds=None, interval=0.1):
    """
    Poll fn() until it returns something true; return that.  Raise
    WaitTimeout("timed out after Ns waiting for WHAT") at the deadline.
    """
    end = deadline(seconds)
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise WaitTimeout("timed out after %.0fs waiting for %s" % (
                (seconds or TIMEOUT / SCALE) * SCALE, what))
        time.sleep(interval)


def wait_for_maildir(maildir, n, seconds=None, pred=None):
    """
    Wait until the Maildir holds at least n messages (matching pred when
    given); return them all.  On timeout return what is there (the caller
    asserts the count, so its failure says what was found).
    """
    def enough():
        msgs = maildir_read(maildir)
        sel = [m for m in msgs if pred is None or pred(m)]
        return msgs if len(sel) >= n else None
    try:
        return wait_for("%d message(s) in %s" % (n, maildir), enough,
                        seconds, 0.1)
    except WaitTimeout:
        return maildir_read(maildir)


def mbox_read(path):
    """An mbox file split into messages (each starting with "From ")."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    if not data:
        return []
    parts = re.split(br"(?m)^(?=From )", data)
    return [p for p in parts if p]


# ------------------------------------------------------- SMTP clients


class Reply:
    """One SMTP reply: code, the text lines, and the raw text."""

    def __init__(self, lines):
        self.lines_raw = lines
        self.raw = "".join(lines)
        first = lines[0]
        try:
            self.code = int(first[:3])
        except ValueError:
            self.code = -1
        self.lines = [l[4:].rstrip("\r\n") for l in lines]
        m = re.match(r"([245]\.\d{1,3}\.\d{1,3})\b", self.lines[0])
        self.enhanced = m.group(1) if m else None
        self.text = "\n".join(self.lines)

    def __repr__(self):
        return "<Reply %s>" % self.raw.strip()


class Client:
    """
    A raw-socket SMTP client: send bytes, read multi-line replies.  It
    keeps a transcript ("C: ..." / "S: ...") for failure diagnostics.
    """

    def __init__(self, port, host="127.0.0.1", source=None, timeout=None):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT if timeout is None else timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""
        self.eof = False
        self.transcript = []

    def _log(self, who, data):
        text = data.decode("latin-1") if isinstance(data, bytes) else data
        for line in text.splitlines() or [""]:
            if len(line) > 200:
                line = line[:200] + "...(%d octets)" % len(line)
            self.transcript.append("%s: %s" % (who, line))
        del self.transcript[:-200]

    def transcript_tail(self, n=20):
        return "transcript (last lines):\n" + "\n".join(
            self.transcript[-n:])

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._log("C", data)
        self.sock.sendall(data)

    def _fill(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        finally:
            if timeout is not None:
                self.sock.settimeout(TIMEOUT)
        if not chunk:
            self.eof = True
        self.buf += chunk
        return chunk

    def readline(self, timeout=None):
        """One reply line (with its CRLF), or None at EOF."""
        while b"\n" not in self.buf:
            if self.eof or not self._fill(timeout):
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line.decode("latin-1")
                return None
        line, self.buf = self.buf.split(b"\n", 1)
        return (line + b"\n").decode("latin-1")

    def reply(self, timeout=None):
        """The next complete (multi-line) reply, or None at EOF."""
        lines = []
        while True:
            try:
                line = self.readline(timeout)
            except (socket.timeout, ConnectionResetError):
                line = None
            if line is None:
                if lines:
                    break
                self._log("S", "(connection closed or timed out)")
                return None
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                break
        r = Reply(lines)
        self._log("S", r.raw)
        return r

    def greeting(self):
        return self.reply()

    def cmd(self, line):
        """Send one command line (CRLF added) and read its reply."""
        self.send(line + "\r\n")
        return self.reply()

    def replies_until_eof(self, timeout=None):
        """Every reply until the server closes (bounded)."""
        out = []
        end = deadline(timeout)
        while time.monotonic() < end:
            r = self.reply(timeout=max(0.1, end - time.monotonic()))
            if r is None:
                break
            out.append(r)
        return out

    def closed_by_server(self, seconds=None):
        """True if the server closes the connection before the deadline."""
        end = deadline(seconds)
        try:
            while time.monotonic() < end:
                self.sock.settimeout(max(0.1, end - time.monotonic()))
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    return False
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            self.sock.settimeout(TIMEOUT)
        return False

    def quiet_for(self, seconds):
        """True when nothing arrives (and no EOF) within seconds."""
        self.sock.settimeout(seconds)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return True
        except ConnectionResetError:
            self.eof = True
            return False
        finally:
            self.sock.settimeout(TIMEOUT)
        self.buf += chunk
        if not chunk:
            self.eof = True
        return False

    def ehlo(self, name=CLIENT_HELO):
        return self.cmd("EHLO " + name)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ------------------------------------------------------------- daemon

DEFAULT_CONF = """\
# written by regress/e2e/sqtest.py
hostname "mx.sqtest.test"
spool "{spool}"
control socket "{sock}"{control_opts}
listen on 127.0.0.1 port {port}
limit message-size {message_size}
queue retry-min {retry_min}
queue retry-max {retry_max}
agent idle {agent_idle}
# Tests talk to 127.0.0.0/8 only: no DNS server listens here, so a
# remote domain gets a quick temporary failure unless a test sets its own.
dns servers "127.0.0.1:9"
table recipients "file:{dir}/recipients"
table aliases "file:{dir}/aliases"
{extra}
domain "{domain}" {{
	deliver maildir "{maildir}/"
	user "{user}"
	aliases aliases
	recipients recipients
}}
{domains}
"""

# The daemon as a site runs it, started as root: users of its own and a
# chroot (require_root(), root_daemon()); a test's conf starts so.
ROOT_DAEMON_USER = "_sqmaild"
ROOT_QUEUE_USER = "_sqmailq"
ROOT_CONF_HEAD = """\
hostname "mx.sqtest.test"
user "{duser}"
queue user "{quser}"
chroot "{dir}/empty"
spool "{spool}"
control socket "{sock}"
listen on 127.0.0.1 port {port}
"""

# Local parts of example.test that exist (recipients table).
LOCAL_USERS = ["you", "alice", "bob", "carol", "sender", "postmaster",
               "list", "loop"]
ALIASES = {"list": "you@example.test, alice@example.test"}


class Daemon:
    """
    One sqmaild in its own scratch directory.  conf is a template (see
    DEFAULT_CONF; every {name} of params and of the daemon's own paths is
    filled in), or None for the default.  Of the params, extra is literal
    configuration text and domains a template, both added to the default.
    """

    seq = 0

    def __init__(self, t, conf=None, extra="", domains="", name=None,
                 as_root=False, **params):
        Daemon.seq += 1
        self.t = t
        self.name = name or "d%d" % Daemon.seq
        self.dir = os.path.join(scratch_root(), self.name)
        os.makedirs(self.dir)
        self.as_root = as_root
        self.user = pwd.getpwuid(0) if as_root else run_user()
        if self.user is None:
            t.skip_all("cannot run the daemon unprivileged: no user %s and "
                       "useradd failed" % os.environ.get("SQTEST_USER",
                                                         "_sqtest"))
        self.port = free_port()
        self.conf_path = os.path.join(self.dir, "sqmail.conf")
        self.log_path = os.path.join(self.dir, "sqmaild.log")
        self.maildir = os.path.join(self.dir, "Maildir")
        self.spool = os.path.join(self.dir, "spool")
        self.sock = os.path.join(self.dir, "sqmaild.sock")
        self.proc = None
        self.logf = None
        self.known = {}             # pid -> starttime, every process seen
        self.pgid = None
        self.exits = []             # exit statuses of the parent, in order
        self.dumped = 0             # log lines already dumped
        self.params = dict(
            dir=self.dir, spool=self.spool, sock=self.sock, port=self.port,
            maildir=self.maildir, user=self.user.pw_name,
            domain=LOCAL_DOMAIN, message_size="4M", retry_min="1s",
            retry_max="2s", agent_idle="2s", control_opts="", extra=extra,
            domains=domains)
        self.params.update(params)
        self.mkmaildir(self.maildir)
        self.write_table("recipients", {u: "1" for u in LOCAL_USERS})
        self.write_table("aliases", ALIASES)
        self.write_conf(conf if conf is not None else DEFAULT_CONF)
        self.chown(self.dir)
        _daemons.append(self)
        t.failure_hooks.append(self._dump_log)

    # -- files

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def chown(self, path):
        """Hand path (recursively) to the user the daemon runs as."""
        if os.getuid() != 0 or self.as_root:
            return
        for root, dirs, files in os.walk(path):
            for n in [root] + [os.path.join(root, x) for x in dirs + files]:
                os.lchown(n, self.user.pw_uid, self.user.pw_gid)

    def mkmaildir(self, path):
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)
        self.chown(path)
        return path

    def write(self, name, text):
        p = self.path(name) if not os.path.isabs(name) else name
        with open(p, "w") as f:
            f.write(text)
        self.chown(p)
        return p

    def write_table(self, name, entries):
        """A file table: dict key -> value, one "key value" per line."""
        text = "# table %s\n" % name + "".join(
            "%s %s\n" % (k, v) for k, v in entries.items())
        return self.write(name, text)

    def render(self, template, **more):
        """
        Fill a template's {names}: the daemon's paths and the params.  The
        extra param is literal text; domains is itself a template.
        """
        params = dict(self.params)
        params.update(more)
        params["domains"] = params.get("domains", "").format(**params)
        return template.format(**params)

    def write_conf(self, template, path=None, **more):
        return self.write(path or self.conf_path, self.render(template,
                                                              **more))

    # -- running

    def _popen(self, argv, **kw):
        if os.getuid() == 0 and not self.as_root:
            kw.update(user=self.user.pw_uid, group=self.user.pw_gid,
                      extra_groups=[])
        return subprocess.Popen(argv, **kw)

    def check_conf(self, path=None):
        """sqmaild -n -f FILE: (exit status, output)."""
        p = self._popen([SQMAILD, "-n", "-f", path or self.conf_path],
                        cwd=self.dir, stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out, _ = p.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            return None, out.decode("utf-8", "replace") + "(timed out)"
        return p.returncode, out.decode("utf-8", "replace")

    def start(self, wait=True, args=None, fatal=True):
        """
        Start sqmaild -d -f conf; wait until it greets on its port.  When
        it does not: bail out, or (fatal=False) return None.
        """
        if not os.access(SQMAILD, os.X_OK):
            self.t.skip_all("%s not built (run make)" % SQMAILD)
        self.logf = open(self.log_path, "ab")
        argv = [SQMAILD, "-d", "-f", self.conf_path] if args is None else \
            [SQMAILD] + args
        self.proc = self._popen(argv, cwd=self.dir, stdin=subprocess.DEVNULL,
                                stdout=self.logf, stderr=self.logf,
                                start_new_session=True)
        self.pgid = self.proc.pid
        self.known[self.proc.pid] = proc_stat(self.proc.pid)["start"] \
            if proc_stat(self.proc.pid) else 0
        if wait and not self.wait_ready(fatal=fatal):
            return None
        return self

    def wait_ready(self, seconds=None, fatal=True):
        """Bounded: the daemon greets with 220 and its control socket is up."""
        def ready():
            if self.proc.poll() is not None:
                raise WaitTimeout("sqmaild exited with status %s before it "
                                  "was ready" % self.proc.returncode)
            try:
                c = Client(self.port, timeout=5)
            except OSError:
                return False
            try:
                r = c.reply()
                if r is None or r.code != 220:
                    return False
                c.send("QUIT\r\n")
                c.reply()
                c.closed_by_server(5)   # so this session is no longer counted
                return os.path.exists(self.sock)
            except OSError:
                return False
            finally:
                c.close()
        try:
            wait_for("sqmaild to greet on 127.0.0.1:%d" % self.port, ready,
                     seconds, 0.1)
        except WaitTimeout as e:
            self.t.ok(False, "sqmaild starts and greets on 127.0.0.1:%d"
                      % self.port, str(e))
            self.kill_all()
            if fatal:
                self.t.done_testing()   # nothing else here can run
            return False
        self.snapshot()
        return True

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def snapshot(self):
        """Remember every process of this daemon (for the orphan check)."""
        if self.proc is None:
            return []
        found = []
        for p in descendants(self.proc.pid) + self.pgid_members():
            st = proc_stat(p)
            if st is not None and p not in found:
                self.known.setdefault(p, st["start"])
                found.append(p)
        return found

    def pgid_members(self):
        out = []
        if self.pgid is None:
            return out
        for p in all_pids():
            st = proc_stat(p)
            if st is not None and st["pgid"] == self.pgid and \
                    st["state"] not in ("Z", "X"):
                out.append(p)
        return out

    def processes(self):
        """Live processes of this daemon: the parent and its descendants."""
        self.snapshot()
        return [p for p, s in self.known.items() if alive(p, s)]

    def role_pids(self):
        """role -> pid from /proc cmdline titles of the children."""
        out = {}
        if self.proc is None:
            return out
        for p in descendants(self.proc.pid):
            cl = proc_cmdline(p)
            m = re.search(r"\b(smtp|lka|queue|mda|mta|control|agent)\b",
                          cl.replace(self.dir, ""))
            if m and m.group(1) not in out:
                out[m.group(1)] = p
        return out

    def orphans(self):
        """Processes of this daemon still alive (the parent excluded)."""
        left = [p for p, s in self.known.items()
                if p != self.proc.pid and alive(p, s)]
        for p in self.pgid_members():
            if p not in left and p != self.proc.pid and alive(p):
                left.append(p)
        return left

    def wait_exit(self, seconds=None):
        """Wait (bounded) for the parent to exit; its status or None."""
        try:
            rc = self.proc.wait(timeout=(TIMEOUT if seconds is None
                                         else seconds * SCALE))
        except subprocess.TimeoutExpired:
            return None
        self.exits.append(rc)
        return rc

    def wait_orphans_gone(self, seconds=10):
        try:
            wait_for("the daemon's processes to exit",
                     lambda: not self.orphans(), seconds, 0.1)
            return []
        except WaitTimeout:
            return self.orphans()

    def describe(self, pids):
        return ", ".join("%d (%s)" % (p, proc_cmdline(p) or "?")
                         for p in pids)

    def stop(self, name="sqmaild stops on SIGTERM and leaves no process"):
        """
        SIGTERM, wait for the parent (bounded), then fail if any of its
        processes remains (and kill those).
        """
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            self.t.ok(False, name, "sqmaild had already exited, with status "
                      "%s" % self.proc.returncode)
            self.kill_all()
            return self.proc.returncode
        self.snapshot()
        os.kill(self.proc.pid, signal.SIGTERM)
        rc = self.wait_exit()
        if rc is None:
            self.t.ok(False, name, "the parent did not exit within %ds of "
                      "SIGTERM" % TIMEOUT)
            self.kill_all()
            return None
        left = self.wait_orphans_gone()
        self.t.ok(rc == 0 and not left, name,
                  "parent exit status %s" % rc,
                  "processes left behind: %s" % self.describe(left)
                  if left else None)
        for p in left:
            _kill(p, signal.SIGKILL)
        self._close_log()
        return rc

    def kill9(self):
        """kill -9 of every process of the daemon at once."""
        pids = self.snapshot()
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for p in pids:
            _kill(p, signal.SIGKILL)
        self.wait_exit(10)
        left = self.wait_orphans_gone(10)
        self._close_log()
        return left

    def kill_all(self):
        """Clean-up: nothing of this daemon survives."""
        if self.proc is None:
            return
        self.snapshot()
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if self.wait_exit(5) is None:
                self.kill9()
        for p in self.orphans():
            _kill(p, signal.SIGKILL)
        self._close_log()

    def _close_log(self):
        if self.logf is not None:
            self.logf.close()
            self.logf = None

    # -- the log

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_text(self, since=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_mark(self):
        return self.log_size()

    def log_tail(self, n=50):
        return self.log_text().splitlines()[-n:]

    def wait_for_log(self, pattern, since=0, seconds=None, count=1):
        """
        Wait until pattern matches count times in the log after offset
        since; return the last match, or None at the deadline.
        """
        rx = re.compile(pattern, re.M)
        try:
            return wait_for("log line /%s/" % pattern, lambda: (
                lambda ms: ms[count - 1] if len(ms) >= count else None)(
                list(rx.finditer(self.log_text(since)))), seconds, 0.1)
        except WaitTimeout:
            return None

    def delivery_result(self, rcpt, since=0, msgid=r"\d+", seconds=None):
        """
        Wait until the first delivery to rcpt after log offset since has
        its result logged (delivery_in()); (id, what, text), or None at the
        deadline.
        """
        try:
            return wait_for("the result of a delivery to %s" % rcpt,
                            lambda: delivery_in(self.log_text(since), rcpt,
                                                msgid), seconds, 0.1)
        except WaitTimeout:
            return None

    def delivery_outcome(self, rcpt, since=0, seconds=None):
        """(what, text) of delivery_result(), or (None, None)."""
        r = self.delivery_result(rcpt, since, seconds=seconds)
        return (r[1], r[2]) if r else (None, None)

    def _dump_log(self):
        if self not in _daemons or (not self.running() and
                                    self is not _daemons[-1]):
            return []
        lines = self.log_text().splitlines()
        new = lines[max(self.dumped, len(lines) - 50):]
        self.dumped = len(lines)
        if not new:
            return []
        return ["log of %s (%s), last %d line(s):" % (
            self.name, self.log_path, len(new))] + ["  " + l for l in new]

    # -- clients

    def client(self, source=None, host="127.0.0.1", port=None):
        return Client(port or self.port, host, source)

    def smtp(self, source=None):
        s = smtplib.SMTP(timeout=TIMEOUT, local_hostname=CLIENT_HELO,
                         source_address=(source, 0) if source else None)
        s.connect("127.0.0.1", self.port)
        return s

    def send(self, msg, sender="sender@" + LOCAL_DOMAIN,
             rcpts=("you@" + LOCAL_DOMAIN,), source=None, mail_options=()):
        """
        One transaction with smtplib: msg in LF form; returns the reply to
        the end of data as (code, text); refusals at MAIL or RCPT raise.
        """
        s = self.smtp(source)
        try:
            s.ehlo()
            code, text = s.mail(sender, list(mail_options))
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, text, sender)
            for r in rcpts:
                code, text = s.rcpt(r)
                if code != 250:
                    raise smtplib.SMTPRecipientsRefused({r: (code, text)})
            code, text = s.data(crlf(msg))
            return code, text.decode("latin-1")
        finally:
            try:
                s.quit()
            except Exception:
                s.close()

    def ctl(self, *args, socket_path=None, timeout=None):
        """sqmailctl -s SOCK args: (exit status, stdout, stderr)."""
        argv = [SQMAILCTL]
        if socket_path is not False:
            argv += ["-s", socket_path or self.sock]
        argv += list(args)
        p = self._popen(argv, stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        cwd=self.dir)
        try:
            out, err = p.communicate(timeout=timeout or TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            err += b"(sqmailctl timed out)"
            return None, out.decode("utf-8", "replace"), err.decode(
                "utf-8", "replace")
        return p.returncode, out.decode("utf-8", "replace"), err.decode(
            "utf-8", "replace")

    def ctl_as(self, uid, gid, *args):
        """sqmailctl run as another uid/gid (root only)."""
        p = subprocess.Popen([SQMAILCTL, "-s", self.sock] + list(args),
                             user=uid, group=gid, extra_groups=[],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd="/")
        try:
            out, err = p.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            return None, out.decode(), err.decode() + "(timed out)"
        return p.returncode, out.decode("utf-8", "replace"), err.decode(
            "utf-8", "replace")

    def queue(self):
        """Entries of `show queue` as dicts (id, age, sender, ...)."""
        rc, out, err = self.ctl("show", "queue")
        if rc != 0:
            return None
        return parse_queue(out)

    def messages(self, maildir=None):
        return maildir_read(maildir or self.maildir)

    def wait_for_maildir(self, n, maildir=None, seconds=None, pred=None):
        return wait_for_maildir(maildir or self.maildir, n, seconds, pred)


def run_prog(argv, data, env, user=None, **kw):
    """Run argv with data on its stdin, as user (a passwd entry: its uid
    and gid, no other groups, cwd /) or as we are; bounded by TIMEOUT.
    Returns (exit status, stdout, stderr) as text."""
    if user is not None:
        kw.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                  cwd="/")
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, **kw)
    try:
        out, err = p.communicate(data, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        err += b"(timed out)"
    return p.returncode, out.decode(errors="replace"), \
        err.decode(errors="replace")


def require_root(t, why):
    """
    Skip unless root; make sure the root daemon's users exist and return
    their passwd entries (daemon, queue).
    """
    if os.getuid() != 0:
        t.skip_all("needs root (uid 0): %s" % why)
    du = ensure_user(ROOT_DAEMON_USER)
    qu = ensure_user(ROOT_QUEUE_USER)
    if du is None or qu is None:
        t.skip_all("cannot create the users %s and %s (useradd)" % (
            ROOT_DAEMON_USER, ROOT_QUEUE_USER))
    return du, qu


def root_daemon(t, conf, **params):
    """A Daemon started as root with ROOT_CONF_HEAD's users and chroot."""
    d = Daemon(t, conf=conf, as_root=True, duser=ROOT_DAEMON_USER,
               quser=ROOT_QUEUE_USER, **params)
    os.makedirs(d.path("empty"), mode=0o755)
    return d


def delivery_in(log, rcpt, msgid=r"\d+"):
    """
    The first delivery to rcpt (of message msgid, a pattern) in log text,
    from qmail-send's lines "starting delivery D: msg M to local|remote
    RCPT" and "delivery D: WHAT: TEXT": (D, WHAT, TEXT), or None while its
    result is not in log.
    """
    start = re.search(r"(?m)^starting delivery (\d+): msg %s to "
                      r"(?:local|remote) %s$" % (msgid, re.escape(rcpt)), log)
    if start is None:
        return None
    r = re.search(r"(?m)^delivery %s: (\w+): (.*)$" % start.group(1),
                  log[start.end():])
    return (start.group(1), r.group(1), r.group(2)) if r else None


def parse_queue(text):
    out = []
    for line in text.splitlines():
        m = re.match(r"id=(\S+) age=(\S+) sender=(\S*) rcpt=(\S+) "
                     r"state=(\S+) tries=(\d+) next=(\S+) error=(.*)$", line)
        if m:
            out.append(dict(id=m.group(1), age=m.group(2),
                            sender=m.group(3), rcpt=m.group(4),
                            state=m.group(5), tries=int(m.group(6)),
                            next=m.group(7), error=m.group(8), line=line))
        elif line.strip():
            out.append(dict(id=None, line=line))
    return out


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def qp_of(text):
    """The "qp <msgid>" of a 250 reply to the end of data, or None."""
    m = re.search(r"\bok (\d+) qp (\w+)", text or "")
    return m.group(2) if m else None


def bytes_diff(got, want):
    """Where two byte strings first differ, for a failure diagnostic."""
    if got is None:
        return "got nothing"
    i = 0
    n = min(len(got), len(want))
    while i < n and got[i] == want[i]:
        i += 1
    if i == n and len(got) == len(want):
        return "identical"
    return ("lengths: got %d, expected %d; first difference at offset %d\n"
            "     got: %r\nexpected: %r" % (len(got), len(want), i,
                                            got[max(0, i - 40):i + 60],
                                            want[max(0, i - 40):i + 60]))


def expect_delivered(t, maildir, msg, sender, rcpt, name, seconds=None):
    """
    Wait for the message (by its Message-ID) delivered to rcpt and check
    it byte for byte: Return-Path, Delivered-To, our Received header, then
    exactly msg (LF form).  Returns the Delivered, or None.
    """
    msgid = header(msg, "Message-ID")

    def mine(m):
        return m.msgid == msgid and m.delivered_to == rcpt
    got = [m for m in wait_for_maildir(maildir, 1, seconds, mine) if mine(m)]
    if not t.ok(len(got) == 1, "%s: delivered once to %s" % (name, rcpt),
                "found %d message(s) with Message-ID %s for %s in %s; "
                "all there: %r" % (len(got), msgid, rcpt, maildir,
                                   maildir_read(maildir))):
        return None
    m = got[0]
    t.ok(m.error is None and m.return_path == sender and m.received,
         "%s: Return-Path <%s>, Delivered-To %s, then our Received header"
         % (name, sender, rcpt),
         m.error or "Return-Path: <%s>, Received: %r" % (m.return_path,
                                                          m.received),
         m.data[:400])
    t.ok(m.rest == msg, "%s: the message after our Received header is "
         "byte-identical to what was sent" % name, bytes_diff(m.rest, msg))
    return m


def sqmaild_stops_on_sigterm_leaving_no_process(t, d, *_):
    """The last test of a file: SIGTERM, the parent exits 0, no orphans."""
    d.stop()
