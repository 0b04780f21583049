#!/usr/bin/env python3
"""
hostilepeer: a tiny scripted SMTP server that misbehaves on purpose, for
testing sqmail's SMTP client (the mta process) against what a hostile or
broken remote host can send: over-long, malformed, NUL-containing and
never-ending replies, replies out of turn, a connection dropped mid-way.
Standard library only (socket + threading), on 127.0.0.1 and a free port.

    import hostilepeer as hp
    peer = hp.HostilePeer([hp.Send(b"220 hi\\r\\n"),
                           hp.Expect(b"EHLO", b"250 ok\\r\\n"),
                           hp.Expect(b"MAIL", b"250 ok\\r\\n"),
                           hp.Expect(b"RCPT", b"250 ok\\r\\n"
                                     b"250 injected\\r\\n"),
                           hp.Drain(3)], name="inject").start()
    peer.port                           # route "[127.0.0.1]:PORT"
    [c] = peer.wait_connections(1)      # bounded; done ones only
    c.received, c.commands, c.ended, c.sent, c.log
    peer.stop()                         # joins every thread

A script is a list of steps that every connection plays in turn (or,
with scripts=[...], connection i plays scripts[i], the last one again for
the ones after).  When a script ends the connection is closed.  Steps:

  Send(data)                 send bytes as they are
  Expect(verb, reply=None)   read one command line (CRLF or LF ended);
                             it must start with verb (any case), else the
                             connection ends ("unexpected"); then send reply
  Data(reply=None, seconds=None)
                             read the message up to the line "." alone
                             (for up to seconds, default step_timeout),
                             then send reply (the message is in c.data)
  Flood(unit, cap, delay=0, chunk=None)
                             send unit again and again until cap octets
                             went out or the client closed; chunk octets
                             at a time with delay seconds between writes
                             (a dribble).  c.ended says which: "closed by
                             client" while flooding, or "cap" (flood_capped)
  Drain(seconds)             read whatever comes for up to seconds or
                             until the client closes
  Recv(seconds)              wait until the client sends something (not
                             necessarily a line: a TLS ClientHello), for
                             up to seconds; what came is dropped
  Sleep(seconds)             do nothing for that long
  Close()                    close now (the end of a script does too)
  Serve(seconds=10)          play a polite server for what is left: QUIT
                             221 and close, RSET/NOOP 250, MAIL/RCPT
                             250, DATA 354 then 250 after the dot, other
                             commands 502; ends at seconds or the close

Everything is bounded: a command line (MAX_LINE), the stored transcript
(MAX_KEEP), the message (MAX_DATA), each read (step_timeout), each
connection's life (conn_timeout), the connections served at once
(MAX_CONNS: more are closed at once and counted in .refused) and in all
(max_conns).  stop() closes the listener and every connection and joins
the threads (bounded).  Peers are registered with peerutil, so they stop
at exit and from sqtest's clean-up too.  Run this file as a script for a
self-test that prints TAP; regress/e2e/48_hostile_peer.t runs it first.
"""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerutil                                     # noqa: E402

MAX_LINE = 4096             # a command line the peer reads
MAX_KEEP = 1024 * 1024      # octets of what the client sent kept per conn
MAX_DATA = 16 * 1024 * 1024  # a message body read by Data()
MAX_CONNS = 8               # connections served at the same time


class Send:
    def __init__(self, data):
        self.data = data

    def __repr__(self):
        return "Send(%s)" % _short(self.data)


class Expect:
    def __init__(self, verb, reply=None):
        self.verb = verb.upper()
        self.reply = reply

    def __repr__(self):
        return "Expect(%r, %s)" % (self.verb, _short(self.reply))


class Data:
    def __init__(self, reply=None, seconds=None):
        self.reply = reply
        self.seconds = seconds

    def __repr__(self):
        return "Data(%s)" % _short(self.reply)


class Flood:
    def __init__(self, unit, cap, delay=0.0, chunk=None):
        self.unit = unit
        self.cap = cap
        self.delay = delay
        self.chunk = chunk

    def __repr__(self):
        return "Flood(%s, cap=%d, delay=%s, chunk=%s)" % (
            _short(self.unit), self.cap, self.delay, self.chunk)


class Drain:
    def __init__(self, seconds):
        self.seconds = seconds

    def __repr__(self):
        return "Drain(%s)" % self.seconds


class Recv:
    def __init__(self, seconds):
        self.seconds = seconds

    def __repr__(self):
        return "Recv(%s)" % self.seconds


class Sleep:
    def __init__(self, seconds):
        self.seconds = seconds

    def __repr__(self):
        return "Sleep(%s)" % self.seconds


class Close:
    def __repr__(self):
        return "Close()"


class Serve:
    def __init__(self, seconds=10.0):
        self.seconds = seconds

    def __repr__(self):
        return "Serve(%s)" % self.seconds


def _short(b, n=60):
    if b is None:
        return "None"
    s = repr(b[:n])
    return s + ("...(%d octets)" % len(b) if len(b) > n else "")


def polite(greeting=b"220 hostile.test ESMTP\r\n",
           ehlo=b"250-hostile.test\r\n250 8BITMIME\r\n",
           mail=b"250 2.1.0 ok\r\n", rcpt=b"250 2.1.5 ok\r\n",
           data=b"354 go ahead\r\n", dot=b"250 2.0.0 ok\r\n"):
    """
    The steps of a whole well-formed transaction (one recipient), each
    reply replaceable, ending with Serve() for QUIT (or whatever else a
    client sends next).  No PIPELINING is announced: a client must send
    one command at a time, so more than one reply at once is out of turn.
    """
    return [Send(greeting), Expect(b"EHLO", ehlo), Expect(b"MAIL", mail),
            Expect(b"RCPT", rcpt), Expect(b"DATA", data), Data(dot),
            Serve()]


class _Gone(Exception):
    """The client closed (or reset) the connection, or stop() was called."""


class _Stopped(Exception):
    pass


class Conn:
    """What happened on one connection; read it once .done is set."""

    def __init__(self, n, addr):
        self.n = n
        self.addr = addr
        self.received = b""     # what the client sent (first MAX_KEEP)
        self.nreceived = 0
        self.commands = []      # command lines read by Expect/Serve
        self.data = None        # the message read by Data()
        self.sent = 0           # octets we sent
        self.flood_sent = 0     # of which by Flood steps
        self.flood_capped = False
        self.ended = None       # "script", "closed by client", "cap",
        self.step = None        # "unexpected", "timeout", "stopped", ...
        self.log = []           # one line per event, for diagnostics
        self.done = threading.Event()
        self.started = time.monotonic()
        self.finished = None

    def note(self, text):
        if len(self.log) < 200:
            self.log.append("%.3f %s" % (time.monotonic() - self.started,
                                         text))

    def received_after(self, marker):
        """What the client sent after the first occurrence of marker."""
        i = self.received.find(marker)
        return b"" if i == -1 else self.received[i + len(marker):]

    def describe(self):
        return ("conn %d: ended %s at step %s, sent %d octets (flood %d%s), "
                "received %d: %s\n  %s" % (
                    self.n, self.ended, self.step, self.sent,
                    self.flood_sent, ", capped" if self.flood_capped else "",
                    self.nreceived, _short(self.received, 300),
                    "\n  ".join(self.log[-30:])))

    def __repr__(self):
        return "<Conn %d %s>" % (self.n, self.ended)


class HostilePeer(peerutil.Peer):

    def __init__(self, script=None, scripts=None, name="hostile",
                 host="127.0.0.1", step_timeout=10.0, conn_timeout=30.0,
                 max_conns=64):
        if (script is None) == (scripts is None):
            raise ValueError("give script or scripts")
        self.scripts = scripts if scripts is not None else [script]
        self.name = name
        self.host = host
        self.port = None
        self.step_timeout = step_timeout
        self.conn_timeout = conn_timeout
        self.max_conns = max_conns
        self.conns = []
        self.refused = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.sock = None
        self.thread = None
        self.workers = []
        self.live = set()

    # -- running

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, 0))
        s.listen(16)
        s.settimeout(0.1)
        self.sock = s
        self.port = s.getsockname()[1]
        self.stopping.clear()
        self.thread = threading.Thread(target=self._accept_loop,
                                       name="hostile-%s" % self.name,
                                       daemon=True)
        self.thread.start()
        peerutil.track(self)
        return self

    def running(self):
        return self.thread is not None and self.thread.is_alive()

    def stop(self, timeout=10.0):
        """Close everything and join the threads; True if all ended."""
        self.stopping.set()
        end = time.monotonic() + timeout
        if self.thread is not None:
            self.thread.join(max(0.1, end - time.monotonic()))
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        with self.lock:
            live = list(self.live)
        for c in live:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        ok = not (self.thread and self.thread.is_alive())
        for w in list(self.workers):
            w.join(max(0.1, end - time.monotonic()))
            ok = ok and not w.is_alive()
        peerutil.untrack(self)
        return ok

    kill_all = stop

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                c, addr = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with self.lock:
                busy = len(self.live)
                n = len(self.conns)
                if busy >= MAX_CONNS or n >= self.max_conns:
                    self.refused += 1
                    c.close()
                    continue
                conn = Conn(n, addr)
                self.conns.append(conn)
                self.live.add(c)
            w = threading.Thread(target=self._serve, args=(c, conn),
                                 name="hostile-%s-%d" % (self.name, n),
                                 daemon=True)
            self.workers.append(w)
            w.start()

    # -- what happened

    def connections(self):
        with self.lock:
            return list(self.conns)

    def wait_connections(self, n, timeout=20.0):
        """
        Wait (bounded) until n connections have ended; return the ended
        ones (fewer at the deadline: the caller asserts the count).
        """
        end = time.monotonic() + timeout
        while True:
            done = [c for c in self.connections() if c.done.is_set()]
            if len(done) >= n or time.monotonic() > end:
                return done
            time.sleep(0.05)

    def describe(self):
        return "\n".join(c.describe() for c in self.connections()) or \
            "(no connection)"

    # -- one connection

    def _serve(self, sock, conn):
        io = _Io(self, sock, conn)
        script = self.scripts[min(conn.n, len(self.scripts) - 1)]
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i, step in enumerate(script):
                conn.step = i
                conn.note("step %d %r" % (i, step))
                if not io.play(step):
                    break
            else:
                conn.ended = "script"
        except _Gone as e:
            conn.ended = str(e) or "closed by client"
        except _Stopped:
            conn.ended = "stopped"
        except socket.timeout:
            conn.ended = "timeout"
        except OSError as e:
            conn.ended = "error: %s" % e
        finally:
            conn.note("end: %s" % conn.ended)
            with self.lock:
                self.live.discard(sock)
            try:
                sock.close()
            except OSError:
                pass
            conn.finished = time.monotonic()
            conn.done.set()


class _Io:
    """One connection's reads and writes, every one bounded."""

    def __init__(self, peer, sock, conn):
        self.peer = peer
        self.sock = sock
        self.conn = conn
        self.buf = b""
        self.eof = False
        self.end = time.monotonic() + peer.conn_timeout

    def _check(self):
        if self.peer.stopping.is_set():
            raise _Stopped()
        if time.monotonic() > self.end:
            raise _Gone("connection time limit")

    def _gone(self, why):
        """The connection ended: by stop() (it shuts sockets) or else."""
        if self.peer.stopping.is_set():
            return _Stopped()
        return _Gone(why)

    def send(self, data, flood=False):
        self._check()
        self.sock.settimeout(min(self.peer.step_timeout,
                                 max(0.05, self.end - time.monotonic())))
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            raise self._gone("closed by client")
        except socket.timeout:
            raise self._gone("send timed out (client not reading)")
        self.conn.sent += len(data)
        if flood:
            self.conn.flood_sent += len(data)

    def _fill(self, until):
        """Read once, waiting until the monotonic time until; False: none."""
        self._check()
        if self.eof:
            raise _Gone("closed by client")
        left = min(until, self.end) - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(min(left, 0.2))
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            self.eof = True
            raise self._gone("closed by client")
        if not chunk:
            self.eof = True
            raise self._gone("closed by client")
        c = self.conn
        c.nreceived += len(chunk)
        if len(c.received) < MAX_KEEP:
            c.received += chunk[:MAX_KEEP - len(c.received)]
        self.buf += chunk
        return True

    def readline(self, seconds):
        """One line (LF ended, at most MAX_LINE), or None at the deadline."""
        until = time.monotonic() + seconds
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE:
                raise _Gone("command line too long")
            if not self._fill(until) and time.monotonic() >= until:
                return None
        line, self.buf = self.buf.split(b"\n", 1)
        if len(line) > MAX_LINE:
            raise _Gone("command line too long")
        line = line.rstrip(b"\r")
        self.conn.commands.append(line)
        self.conn.note("C: %s" % _short(line, 100))
        return line

    def read_data(self, seconds=None):
        """The message up to "." alone on a line (CRLF ended), bounded."""
        until = time.monotonic() + (seconds or self.peer.step_timeout)
        while True:
            probe = b"\r\n" + self.buf
            i = probe.find(b"\r\n.\r\n")
            if i != -1:
                self.buf = probe[i + 5:]
                return probe[2:i + 2]
            if len(self.buf) > MAX_DATA:
                raise _Gone("message too long")
            if not self._fill(until) and time.monotonic() >= until:
                raise _Gone("timed out reading the message")

    def play(self, step):
        """Play one step; False when the script is to stop here."""
        c = self.conn
        if isinstance(step, Send):
            self.send(step.data)
        elif isinstance(step, Expect):
            line = self.readline(self.peer.step_timeout)
            if line is None:
                c.ended = "timed out waiting for %s" % step.verb.decode()
                return False
            if not line.upper().startswith(step.verb):
                c.ended = "unexpected: %r" % line[:100]
                return False
            if step.reply is not None:
                self.send(step.reply)
        elif isinstance(step, Data):
            c.data = self.read_data(step.seconds)
            c.note("message of %d octets" % len(c.data))
            if step.reply is not None:
                self.send(step.reply)
        elif isinstance(step, Flood):
            self.flood(step)
        elif isinstance(step, Drain):
            until = time.monotonic() + step.seconds
            while time.monotonic() < until:
                self._fill(until)
        elif isinstance(step, Recv):
            until = time.monotonic() + step.seconds
            had = self.conn.nreceived
            while self.conn.nreceived == had and time.monotonic() < until:
                self._fill(until)
            self.buf = b""
            if self.conn.nreceived == had:
                c.ended = "nothing received"
                return False
        elif isinstance(step, Sleep):
            until = min(time.monotonic() + step.seconds, self.end)
            while time.monotonic() < until:
                self._check()
                time.sleep(min(0.05, max(0, until - time.monotonic())))
        elif isinstance(step, Close):
            c.ended = "closed by peer"
            return False
        elif isinstance(step, Serve):
            return self.serve(step.seconds)
        else:
            raise ValueError("unknown step %r" % (step,))
        return True

    def flood(self, step):
        c = self.conn
        unit = step.unit
        chunk = step.chunk or max(len(unit), 65536 // max(1, len(unit)) *
                                  len(unit))
        pending = b""
        while True:
            if c.flood_sent >= step.cap:
                c.flood_capped = True
                raise _Gone("cap")
            while len(pending) < chunk:
                pending += unit
            n = min(chunk, step.cap - c.flood_sent)
            self.send(pending[:n], flood=True)
            pending = pending[n:]
            if step.delay:
                # Between writes: notice a close early, and stay bounded.
                until = time.monotonic() + step.delay
                while time.monotonic() < until:
                    if self._peek_closed():
                        raise self._gone("closed by client")
                    time.sleep(min(step.delay, 0.01))

    def _peek_closed(self):
        """Without waiting: has the client closed (or reset)?"""
        self._check()
        self.sock.setblocking(False)
        try:
            chunk = self.sock.recv(65536)
        except BlockingIOError:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.setblocking(True)
        if not chunk:
            return True
        self.conn.nreceived += len(chunk)
        if len(self.conn.received) < MAX_KEEP:
            self.conn.received += chunk[:MAX_KEEP - len(self.conn.received)]
        self.buf += chunk
        return False

    def serve(self, seconds):
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            line = self.readline(max(0.05, until - time.monotonic()))
            if line is None:
                break
            verb = line[:4].upper()
            if verb == b"QUIT":
                self.send(b"221 2.0.0 bye\r\n")
                self.conn.ended = "quit"
                return False
            if verb == b"DATA":
                self.send(b"354 go ahead\r\n")
                self.conn.data = self.read_data()
                self.send(b"250 2.0.0 ok\r\n")
            elif verb in (b"RSET", b"NOOP", b"MAIL", b"RCPT", b"EHLO",
                          b"HELO"):
                self.send(b"250 2.0.0 ok\r\n")
            else:
                self.send(b"502 5.5.1 not here\r\n")
        self.conn.ended = "serve time over"
        return False


def _selftest():
    """The peer itself, against a raw socket client; prints TAP."""
    n = [0, 0]

    def ok(cond, name, diag=None):
        n[0] += 1
        if not cond:
            n[1] += 1
        print("%sok %d - %s" % ("" if cond else "not ", n[0], name))
        if not cond and diag is not None:
            print("# " + str(diag).replace("\n", "\n# "))

    def client(peer):
        s = socket.create_connection((peer.host, peer.port), timeout=5)
        return s, s.makefile("rb")

    # A polite transaction, then QUIT.
    p = HostilePeer(polite()).start()
    s, f = client(p)
    got = [f.readline()]
    for cmd in (b"EHLO me", b"MAIL FROM:<a@b>", b"RCPT TO:<c@d>", b"DATA"):
        s.sendall(cmd + b"\r\n")
        got.append(f.readline())
        while got[-1][3:4] == b"-":
            got.append(f.readline())
    s.sendall(b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n")
    got += [f.readline(), f.readline(), f.readline()]
    f.close()
    s.close()
    [c] = p.wait_connections(1, 5)
    ok([g[:3] for g in got] == [b"220", b"250", b"250", b"250", b"250",
                                b"354", b"250", b"221", b""],
       "polite(): every reply in turn, 221 to QUIT, then closed", got)
    ok(c.data == b"Subject: x\r\n\r\n..dot\r\n" and c.ended == "quit"
       and c.commands[:4] == [b"EHLO me", b"MAIL FROM:<a@b>",
                              b"RCPT TO:<c@d>", b"DATA"],
       "the message and the commands are recorded", c.describe())
    ok(p.stop(), "stop() joins every thread")

    # An unexpected command ends the script; scripts per connection.
    p = HostilePeer(scripts=[[Send(b"220 a\r\n"), Expect(b"EHLO", b"x")],
                             [Send(b"220 b\r\n"), Close()]]).start()
    s, f = client(p)
    f.readline()
    s.sendall(b"HELO me\r\n")
    ok(f.readline() == b"", "a command not expected: the peer closes")
    f.close()
    s.close()
    got = []
    for _ in range(2):
        s, f = client(p)
        got.append(f.readline())
        f.close()
        f.close()
    s.close()
    conns = p.wait_connections(3, 5)
    ok(got == [b"220 b\r\n", b"220 b\r\n"] and
       sorted(c.ended for c in conns) == ["closed by peer", "closed by peer",
                                          "unexpected: b'HELO me'"],
       "scripts: one per connection, the last one again",
       [c.describe() for c in conns])
    p.stop()

    # A flood stops when the client closes, or at its cap.
    p = HostilePeer([Flood(b"250-x\r\n", 64 * 1024 * 1024)]).start()
    s, f = client(p)
    f.read(1000)
    f.close()
    s.close()
    [c] = p.wait_connections(1, 10)
    ok(c.ended == "closed by client" and not c.flood_capped and
       c.flood_sent < 64 * 1024 * 1024, "a flood ends when the client "
       "closes (%d octets sent)" % c.flood_sent, c.describe())
    p.stop()
    p = HostilePeer([Flood(b"abc", 1000, delay=0.001, chunk=7)]).start()
    s, f = client(p)
    data = f.read()
    f.close()
    s.close()
    [c] = p.wait_connections(1, 10)
    ok(len(data) == 1000 and data == (b"abc" * 334)[:1000] and
       c.flood_capped and c.ended == "cap",
       "a dribble sends exactly its cap, then closes", c.describe())
    p.stop()

    # Bounded: a client that says nothing; a peer stopped mid-script.
    p = HostilePeer([Expect(b"EHLO", b"250 x\r\n")],
                    step_timeout=0.5).start()
    s, f = client(p)
    ok(f.readline() == b"", "Expect waits step_timeout, then closes")
    f.close()
    s.close()
    [c] = p.wait_connections(1, 5)
    ok(c.ended == "timed out waiting for EHLO", "and says so", c.ended)
    p.stop()
    p = HostilePeer([Send(b"220 x\r\n"), Drain(60)]).start()
    s, f = client(p)
    f.readline()
    stopped = p.stop(timeout=5)
    ok(stopped and p.connections()[0].ended == "stopped",
       "stop() ends a connection in the middle of a step",
       p.describe())
    f.close()
    s.close()
    print("1..%d" % n[0])
    return 1 if n[1] else 0


if __name__ == "__main__":
    sys.exit(_selftest())
