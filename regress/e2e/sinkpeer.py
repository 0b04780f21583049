#!/usr/bin/env python3
"""
sinkpeer: Postfix's smtp-sink(1) as a remote SMTP server that answers
badly on purpose, for sqmail's tests of the mta.

smtp-sink is one small process from the postfix package.  It listens on a
loopback address and port, speaks just enough SMTP and can be told to
answer a given command with a soft (4xx) or a hard (5xx) error, to close
the connection without a reply, or to send 421 and close.  The commands
are smtp-sink's: connect (the greeting), helo, ehlo, mail, rcpt, data and
"." (the end of the data; "dot" is taken for it too).  Every transaction
that gets as far as the data is dumped to a file of its own (-d), whatever
the reply to the final dot, and every command it reads is in its verbose
output (-v), so a test sees whether the mail reached the sink, with which
envelope and bytes, and how each session went.  Standard library only.

    import sinkpeer
    with sinkpeer.SinkPeer(hard=["rcpt"],
                           hard_reply="554 5.7.1 no thanks") as sink:
        sink.port                       # 127.0.0.1:port speaks SMTP
        ... deliver something to it ...
        sink.sessions()                 # [["EHLO x", "MAIL FROM:<a@b>",
                                        #   "RCPT TO:<c@d>", "QUIT"]]
        sink.messages()                 # [] (nothing got to the data)

Options:

  host="127.0.0.1"     the loopback address to listen on (127.0.0.0/8 or
                       ::1)
  port=None            the port (default: a free one)
  soft=(), hard=()     commands answered with soft_reply / hard_reply
                       (smtp-sink -r / -f; either implies no PIPELINING)
  disconnect=()        commands after which the connection is closed
                       without a reply (-q)
  close421=()          commands answered "421 4.0.0 Server closing
                       connection", then closed (-Q)
  soft_reply="451 4.3.0 sink: try again later"
  hard_reply="554 5.7.1 sink: refused"
                       the replies of soft and hard (-b / -B): a whole
                       reply line, code first
  hostname="sink.test" the name in the greeting and EHLO reply (-h)
  dump=True            one file per transaction (-d); False: none
  args=()              more smtp-sink options, as a list
  scratch=None         the directory to use (default: a new one, removed
                       by stop())

start() waits (bounded) until smtp-sink itself holds the listening socket
(seen in /proc, so no probe connection shows up in what it received) and
raises SinkPeerError with its output when it cannot start; stop() sends
SIGTERM, waits (bounded), SIGKILLs what is left of its process group and
reaps it.  A peer is stopped at interpreter exit, and from sqtest's
clean-up (prove's timeout, ^C) when sqtest was imported first.  restart()
starts another smtp-sink on the same address and port with other options
(the retry of a deferred message).  As root smtp-sink must drop to a user
(-u): it runs as nobody, which owns the dump directory.

Environment: SINKPEER_SMTP_SINK names the binary; SQTEST_KEEP=1 keeps the
scratch directory.  Run this file as a script for a self-test in TAP.
"""

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerutil                                     # noqa: E402

RUN_USER = "nobody"         # what smtp-sink runs as when we are root
STAGES = ("connect", "helo", "ehlo", "mail", "rcpt", "data", ".")
DUMP_MAX = 16 * 1024 * 1024     # octets of one dump file we read
OUTPUT_MAX = 4 * 1024 * 1024    # octets of smtp-sink's output we read


class SinkPeerError(Exception):
    """smtp-sink could not be started; the text says why."""


def find_smtp_sink():
    """$SINKPEER_SMTP_SINK, $PATH, then the sbin directories; or None."""
    return peerutil.find_program("smtp-sink", "SINKPEER_SMTP_SINK", (
        "/usr/sbin", "/usr/local/sbin", "/usr/lib/postfix/sbin"))


free_port = peerutil.free_port


def _stage_list(stages):
    """smtp-sink's spelling of a list of stages; ValueError for others."""
    out = []
    for s in stages:
        s = s.lower()
        if s == "dot":
            s = "."
        if s not in STAGES:
            raise ValueError("unknown stage %r (one of %s or dot)" %
                             (s, ", ".join(STAGES)))
        out.append(s)
    return ",".join(out)


def _listen_inodes(host, port):
    """Inodes of the sockets listening on host:port, from /proc/net."""
    fam6 = ":" in host
    want = socket.inet_pton(socket.AF_INET6 if fam6 else socket.AF_INET,
                            host)
    path = "/proc/net/tcp6" if fam6 else "/proc/net/tcp"
    out = set()
    try:
        with open(path) as f:
            lines = f.readlines()[1:]
    except OSError:
        return out
    for line in lines:
        f = line.split()
        if len(f) < 10 or f[3] != "0A":         # TCP_LISTEN
            continue
        addr, _, p = f[1].partition(":")
        if int(p, 16) != port:
            continue
        raw = bytes.fromhex(addr)
        # /proc prints each 32-bit word in host (little-endian) order.
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
        if raw == want:
            out.add(f[9])
    return out


def _fd_targets(pid):
    """What the open descriptors of pid point at (readlink), or []."""
    d = "/proc/%d/fd" % pid
    out = []
    try:
        names = os.listdir(d)
    except OSError:
        return out
    for n in names:
        try:
            out.append(os.readlink(os.path.join(d, n)))
        except OSError:
            pass
    return out


class Message:
    """
    One transaction smtp-sink dumped: the client's address, protocol and
    HELO argument, the MAIL and RCPT arguments (sender and rcpts without
    the angle brackets), and data: the message as received (LF line ends,
    dot-stuffing undone) after smtp-sink's own Received header, which is
    in received.  A transaction is dumped whatever the reply to its final
    dot was, and also when the connection was closed at the dot.
    """

    def __init__(self, path, raw):
        self.path = path
        self.raw = raw
        self.client_addr = self.proto = self.helo = self.mail_args = None
        self.rcpt_args = []
        self.received = b""
        lines = raw.split(b"\n")
        i = 0
        while i < len(lines):
            m = re.match(br"X-([A-Za-z-]+): ?(.*)$", lines[i])
            if not m:
                break
            key, val = m.group(1).decode().lower(), m.group(2).decode(
                "utf-8", "replace")
            if key == "client-addr":
                self.client_addr = val
            elif key == "client-proto":
                self.proto = val
            elif key == "helo-args":
                self.helo = val
            elif key == "mail-args":
                self.mail_args = val
            elif key == "rcpt-args":
                self.rcpt_args.append(val)
            i += 1
        if i < len(lines) and lines[i].startswith(b"Received:"):
            j = i + 1
            while j < len(lines) and lines[j][:1] in (b" ", b"\t"):
                j += 1
            self.received = b"\n".join(lines[i:j]) + b"\n"
            i = j
        data = b"\n".join(lines[i:])
        # The dump ends each message with an empty line of its own.
        self.data = data[:-1] if data.endswith(b"\n\n") else data
        self.sender = self._path(self.mail_args)
        self.rcpts = [self._path(a) for a in self.rcpt_args]

    @staticmethod
    def _path(args):
        if args is None:
            return None
        m = re.match(r"\s*<([^>]*)>", args)
        return m.group(1) if m else args.split()[0] if args.split() else ""

    def header(self, name):
        head = self.data.split(b"\n\n", 1)[0]
        m = re.search(br"(?im)^" + re.escape(name.encode()) +
                      br":[ \t]*(.*)$", head)
        return m.group(1).decode("utf-8", "replace") if m else None

    def __repr__(self):
        return "<sink Message from <%s> to %s, %d octets>" % (
            self.sender, self.rcpts, len(self.data))


class SinkPeer(peerutil.Peer):
    """One smtp-sink; see the module's documentation for the options."""

    def __init__(self, host="127.0.0.1", port=None, soft=(), hard=(),
                 disconnect=(), close421=(),
                 soft_reply="451 4.3.0 sink: try again later",
                 hard_reply="554 5.7.1 sink: refused", hostname="sink.test",
                 dump=True, args=(), scratch=None, name=None):
        self.host = host
        self.want_port = port
        self.port = None
        self.opts = dict(soft=tuple(soft), hard=tuple(hard),
                         disconnect=tuple(disconnect),
                         close421=tuple(close421), soft_reply=soft_reply,
                         hard_reply=hard_reply, hostname=hostname,
                         dump=dump, args=tuple(args))
        self._check_opts(self.opts)
        self.name = name or "sink"
        self.proc = None
        self.pgid = None
        self.own_scratch = scratch is None
        self.dir = scratch or tempfile.mkdtemp(prefix="sinkpeer-%s-" % (
            re.sub(r"[^\w.-]", "_", self.name)))
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)       # for smtp-sink as nobody
        self.dump_dir = os.path.join(self.dir, "dump")
        self.out_path = os.path.join(self.dir, "smtp-sink.out")
        self.generation = 0             # restarts so far
        self._out_from = 0              # output of the running sink

    @staticmethod
    def _check_opts(o):
        for k in ("soft", "hard", "disconnect", "close421"):
            _stage_list(o[k])
        for k in ("soft_reply", "hard_reply"):
            if not re.match(r"[45]\d\d( |$)", o[k]) or "\n" in o[k] or \
                    "\r" in o[k]:
                raise ValueError("%s must be one reply line starting with "
                                 "a 4xx or 5xx code: %r" % (k, o[k]))
        if o["soft_reply"][0] != "4" or o["hard_reply"][0] != "5":
            raise ValueError("soft_reply is 4xx, hard_reply 5xx")

    def argv(self, binary):
        o = self.opts
        argv = [binary]
        if os.getuid() == 0:
            argv += ["-u", RUN_USER]
        argv += ["-v", "-h", o["hostname"], "-b", o["soft_reply"], "-B",
                 o["hard_reply"]]
        for flag, key in (("-r", "soft"), ("-f", "hard"),
                          ("-q", "disconnect"), ("-Q", "close421")):
            if o[key]:
                argv += [flag, _stage_list(o[key])]
        if o["dump"]:
            # strftime, then smtp-sink adds a random hex number.
            argv += ["-d", os.path.join(self.dump_dir,
                                        "g%d.%%Y%%m%%d%%H%%M%%S." %
                                        self.generation)]
        argv += list(o["args"])
        addr = "[%s]" % self.host if ":" in self.host else self.host
        argv += ["inet:%s:%d" % (addr, self.port), "64"]
        return argv

    def _prepare_dump_dir(self):
        os.makedirs(self.dump_dir, exist_ok=True)
        if os.getuid() == 0:
            try:
                pw = pwd.getpwnam(RUN_USER)
            except KeyError:
                raise SinkPeerError("no user %s to run smtp-sink as" %
                                    RUN_USER)
            os.chown(self.dump_dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dump_dir, 0o755)

    def start(self, timeout=10.0, attempts=3):
        """Start smtp-sink and wait until it listens; SinkPeerError if not."""
        if self.running():
            raise SinkPeerError("smtp-sink %s is running already" %
                                self.name)
        binary = find_smtp_sink()
        if binary is None:
            raise SinkPeerError("smtp-sink not found (apt-get install "
                                "postfix, or set SINKPEER_SMTP_SINK)")
        self._prepare_dump_dir()
        why = "not tried"
        for i in range(attempts):
            self.port = self.want_port or free_port(self.host)
            self._out_from = self._out_size()
            out = open(self.out_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    self.argv(binary), cwd=self.dir,
                    stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                    start_new_session=True)
            finally:
                out.close()
            self.pgid = self.proc.pid
            peerutil.track(self)
            why = self._wait_ready(timeout)
            if why is None:
                return self
            self._kill()
            if not re.search(r"(?i)address already in use",
                             self.output()):
                break
            # A port in TIME_WAIT or taken since we looked: again, later.
            time.sleep(0.2 * (i + 1))
        raise SinkPeerError("smtp-sink %s on %s:%s did not start (%s); its "
                            "output:\n%s" % (self.name, self.host, self.port,
                                             why, self.output()))

    def _wait_ready(self, timeout):
        """None once smtp-sink itself listens on host:port, else why not."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return "it exited with status %d" % self.proc.returncode
            inodes = _listen_inodes(self.host, self.port)
            if any("socket:[%s]" % n in _fd_targets(self.proc.pid)
                   for n in inodes):
                return None
            time.sleep(0.02)
        return "not listening after %.0fs" % timeout

    def restart(self, **opts):
        """
        Stop this smtp-sink and start another on the same address and
        port with the options changed as given (any of the constructor's
        but host, port and scratch).  What the earlier ones dumped and
        said stays readable through messages(all=True) and
        sessions(all=True).
        """
        new = dict(self.opts)
        for k, v in opts.items():
            if k not in new:
                raise TypeError("restart() got an unknown option %r" % k)
            new[k] = tuple(v) if k in ("soft", "hard", "disconnect",
                                       "close421", "args") else v
        self._check_opts(new)
        self._kill()
        self.opts = new
        self.want_port = self.port
        self.generation += 1
        return self.start()

    def _kill(self):
        """SIGTERM, bounded waits, SIGKILL of the process group; reaped."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass        # unkillable: nothing more we can do here
        self.proc = None

    def stop(self):
        """Stop smtp-sink and remove the scratch directory we made."""
        self._kill()
        peerutil.untrack(self)
        if self.own_scratch and os.path.isdir(self.dir):
            if os.environ.get("SQTEST_KEEP") == "1":
                print("# sinkpeer scratch kept at %s" % self.dir)
                self.own_scratch = False        # said once
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    kill_all = stop

    # -- what it received

    def _out_size(self):
        try:
            return os.path.getsize(self.out_path)
        except OSError:
            return 0

    def output(self, all=False):
        """smtp-sink's output (-v: every command it read), as text."""
        try:
            with open(self.out_path, "rb") as f:
                if not all:
                    f.seek(self._out_from)
                return f.read(OUTPUT_MAX).decode("utf-8", "replace")
        except OSError:
            return ""

    def sessions(self, all=False):
        """
        The connections smtp-sink took, each as the list of the command
        lines it read, in order (the data itself is not in them; "." is
        the end of the data).  A session that is still open is there with
        what it has so far.  Only the running smtp-sink's, unless all.
        """
        out = []
        for line in self.output(all).splitlines():
            _, sep, what = line.partition("smtp-sink: ")
            if not sep:
                continue
            if what.startswith("connect ("):
                out.append([])
            elif out and re.match(r"(?i)(HELO|EHLO|MAIL|RCPT|DATA|RSET|"
                                  r"NOOP|QUIT|VRFY|STARTTLS|AUTH)\b|\.$",
                                  what):
                out[-1].append(what)
        return out

    def _open_dumps(self):
        if self.proc is None:
            return set()
        return {t for t in _fd_targets(self.proc.pid)
                if t.startswith(self.dump_dir + os.sep)}

    def messages(self, all=False):
        """
        Transactions dumped so far, oldest first; one smtp-sink still
        writes is left out.  Only the running smtp-sink's, unless all.
        """
        try:
            names = os.listdir(self.dump_dir)
        except FileNotFoundError:
            return []
        busy = self._open_dumps()
        prefix = "g%d." % self.generation
        found = []
        for n in names:
            p = os.path.join(self.dump_dir, n)
            if p in busy or (not all and not n.startswith(prefix)):
                continue
            try:
                with open(p, "rb") as f:
                    raw = f.read(DUMP_MAX)
                st = os.stat(p)
            except FileNotFoundError:
                continue
            found.append((st.st_mtime_ns, n, Message(p, raw)))
        found.sort(key=lambda x: (x[0], x[1]))
        return [x[2] for x in found]

    def wait_messages(self, n, timeout=10.0, pred=None):
        """
        Wait (bounded) until n transactions (matching pred when given)
        are dumped; return those that match (fewer at the deadline: the
        caller's assertion says what came).
        """
        end = time.monotonic() + timeout
        while True:
            msgs = [m for m in self.messages() if pred is None or pred(m)]
            if len(msgs) >= n or time.monotonic() > end:
                return msgs
            time.sleep(0.05)

    def wait_sessions(self, n, timeout=10.0):
        """
        Wait (bounded) until n sessions are seen; return them all (fewer
        at the deadline).  smtp-sink writes each command out as it reads
        it, so once the client has its reply the command is there.
        """
        end = time.monotonic() + timeout
        while True:
            ss = self.sessions()
            if len(ss) >= n or time.monotonic() > end:
                return ss
            time.sleep(0.05)

    def diag_lines(self, n=30):
        """For a failure hook: the tail of this sink's output."""
        lines = self.output(all=True).splitlines()[-n:]
        return ["output of sinkpeer %s (%s:%s), last lines:" % (
            self.name, self.host, self.port)] + ["  " + l for l in lines]

    def __repr__(self):
        o = self.opts
        what = ["%s=%s" % (k, ",".join(o[k])) for k in
                ("soft", "hard", "disconnect", "close421") if o[k]]
        return "<SinkPeer %s %s:%s %s>" % (self.name, self.host, self.port,
                                          " ".join(what) or "accepting")


# ------------------------------------------------------------ self-test


def _selftest():
    n = failed = 0

    def ok(cond, name, diag=None):
        nonlocal n, failed
        n += 1
        if not cond:
            failed += 1
        print("%sok %d - %s" % ("" if cond else "not ", n, name))
        if not cond and diag is not None:
            for line in str(diag).splitlines():
                print("#   " + line)

    def session(port, rcpts=("c@d.test",), host="127.0.0.1"):
        """Greeting, EHLO, MAIL, RCPTs, DATA, a message, QUIT: replies."""
        got = []
        with socket.create_connection((host, port), timeout=5) as s:
            f = s.makefile("rb")

            def reply():
                while True:
                    line = f.readline()
                    if not line:
                        got.append("EOF")
                        return None
                    if line[3:4] != b"-":
                        got.append(line.decode().rstrip())
                        return line
            try:
                if reply() is None:
                    return got
                for c in (["EHLO me.test", "MAIL FROM:<a@b.test>"] +
                          ["RCPT TO:<%s>" % r for r in rcpts] +
                          ["DATA", "Subject: t\r\n\r\n..dot\r\n.", "QUIT"]):
                    s.sendall(c.encode() + b"\r\n")
                    if reply() is None:
                        break
            except OSError as e:
                got.append("error: %s" % e)
        return got

    binary = find_smtp_sink()
    if binary is None:
        print("1..0 # SKIP smtp-sink not found")
        return 0
    with SinkPeer() as p:
        r = session(p.port, ("c@d.test", "e@f.test"))
        ok(r[0].startswith("220 sink.test") and r[-2] == "250 2.0.0 Ok",
           "accepting_sink_takes_a_message", r)
        m = p.wait_messages(1)
        ok(len(m) == 1 and m[0].sender == "a@b.test" and
           m[0].rcpts == ["c@d.test", "e@f.test"] and
           m[0].data == b"Subject: t\n\n.dot\n" and m[0].helo == "me.test",
           "the_dump_has_envelope_and_data", m and m[0].raw)
        ss = p.wait_sessions(1)
        ok(ss == [["EHLO me.test", "MAIL FROM:<a@b.test>",
                   "RCPT TO:<c@d.test>", "RCPT TO:<e@f.test>", "DATA", ".",
                   "QUIT"]], "sessions_list_the_commands", ss)
        old = p.port
        p.restart(hard=["rcpt"], hard_reply="550 5.1.1 nobody here")
        ok(p.port == old, "restart_keeps_the_port")
        r = session(p.port)
        ok("550 5.1.1 nobody here" in r, "hard_rcpt_answers_the_reply", r)
        ok(p.messages() == [] and len(p.messages(all=True)) == 1,
           "messages_are_per_sink_unless_all")
        p.restart(soft=["connect"], hard=())
        r = session(p.port)
        ok(r[0] == "451 4.3.0 sink: try again later",
           "soft_connect_is_the_greeting", r)
        p.restart(soft=(), disconnect=["dot"])
        r = session(p.port)
        ok(r[-1] == "EOF" and r[-2].startswith("354"),
           "disconnect_at_dot_closes_after_the_data", r)
        ok(len(p.wait_messages(1)) == 1, "a_transaction_cut_at_the_dot_is_"
           "still_dumped")
        proc = p.proc
    ok(proc.poll() is not None, "stop_ends_smtp_sink")
    ok(not os.path.exists(p.dir), "stop_removes_scratch")
    try:
        SinkPeer(soft=["bogus"])
        ok(False, "unknown_stage_refused")
    except ValueError:
        ok(True, "unknown_stage_refused")
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(_selftest())
