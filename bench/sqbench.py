#!/usr/bin/env python3
"""Measurement helpers for bench/run.sh.  Standard library only.

Subcommands (each prints one JSON object on stdout unless said otherwise):

  freeport [AVOID...]           a free TCP port on 127.0.0.1 (plain number)
  waitsmtp PORT TIMEOUT         wait for a 220 greeting; exit 0 or 1
  tree PID                      PID and all its descendants, one per line
  mem PID                       private/PSS memory of the process tree
  throughput ...                one smtp-source run, timed to the last file
                                in Maildir/new or (--sink) to the last
                                message at an smtp-sink it starts
  latency ...                   end-of-DATA to 250 and to file-in-Maildir
  idle ...                      memory per idle SMTP session
  profile ...                   sample process states of a tree during a
                                smtp-source run (diagnostics only)
  report ...                    results.jsonl -> markdown

Every loop here is bounded by a count and by a deadline.
"""

import argparse
import ctypes
import json
import os
import select
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import time

now = time.monotonic

# ---------------------------------------------------------------- /proc


def read_stat(pid):
    """(comm, state, ppid, utime+stime, cutime+cstime) in clock ticks."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    lp, rp = data.find("("), data.rfind(")")
    comm = data[lp + 1:rp]
    rest = data[rp + 2:].split()
    # rest[0] is field 3 (state); utime is field 14
    return (comm, rest[0], int(rest[1]), int(rest[11]) + int(rest[12]),
            int(rest[13]) + int(rest[14]))


def all_stats():
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = read_stat(int(name))
            if st:
                out[int(name)] = st
    return out


def tree(root, stats=None):
    stats = stats if stats is not None else all_stats()
    kids = {}
    for pid, st in stats.items():
        kids.setdefault(st[2], []).append(pid)
    out, todo = [], [root]
    while todo and len(out) < 100000:
        p = todo.pop()
        if p in stats:
            out.append(p)
            todo.extend(kids.get(p, ()))
    return out


def label(pid, comm):
    """A role name: 'sqmaild: smtp', 'smtpd: queue', or the command name."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            words = f.read().replace(b"\0", b" ").decode("ascii", "replace").split()
    except OSError:
        words = []
    if len(words) >= 2 and words[0].endswith(":"):
        return words[0] + " " + words[1]
    return comm


def mem(root):
    priv = pss = n = 0
    for pid in tree(root):
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("Private_Clean", "Private_Dirty"):
                        priv += int(v.split()[0])
                    elif k == "Pss":
                        pss += int(v.split()[0])
            n += 1
        except (OSError, ValueError, IndexError):
            pass
    return {"private_kib": priv, "pss_kib": pss, "procs": n}


def cpu_by_role(root):
    """Ticks per role: own utime+stime; reaped children under 'reaped'."""
    stats = all_stats()
    roles = {}
    for pid in tree(root, stats):
        comm, _, _, own, reaped = stats[pid]
        lab = label(pid, comm)
        roles[lab] = roles.get(lab, 0) + own
        if reaped:
            roles["(reaped children)"] = roles.get("(reaped children)", 0) + reaped
    return roles


def machine_cpu():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return {"user": v[0] + v[1], "system": v[2] + v[5] + v[6],
            "idle": v[3], "iowait": v[4], "steal": v[7] if len(v) > 7 else 0}


def tcp_counters():
    want = ("ListenOverflows", "ListenDrops", "TCPTimeouts", "DelayedACKs")
    out = {}
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
        for a, b in zip(lines[0::2], lines[1::2]):
            if a.startswith("TcpExt:"):
                for k, v in zip(a.split()[1:], b.split()[1:]):
                    if k in want:
                        out[k] = int(v)
        with open("/proc/net/snmp") as f:
            lines = f.read().splitlines()
        for a, b in zip(lines[0::2], lines[1::2]):
            if a.startswith("Tcp:"):
                d = dict(zip(a.split()[1:], b.split()[1:]))
                out["RetransSegs"] = int(d.get("RetransSegs", 0))
    except OSError:
        pass
    return out


def diff(after, before):
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}


HZ = os.sysconf("SC_CLK_TCK")

# ---------------------------------------------------------------- inotify

IN_CREATE, IN_MOVED_TO, IN_Q_OVERFLOW = 0x100, 0x80, 0x4000


class DirWatch:
    """New names in a directory, by inotify (ctypes) or, failing that, by
    polling os.listdir every millisecond."""

    def __init__(self, path):
        self.path = path
        self.seen = set(os.listdir(path))
        self.fd = -1
        self.buf = b""
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if fd >= 0:
                wd = libc.inotify_add_watch(fd, path.encode(),
                                            IN_CREATE | IN_MOVED_TO)
                if wd >= 0:
                    self.fd = fd
                else:
                    os.close(fd)
        except (OSError, AttributeError):
            self.fd = -1
        # names that appeared between listdir and the watch
        self.seen |= set(os.listdir(path))

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _rescan(self):
        cur = set(os.listdir(self.path))
        new = [n for n in cur if n not in self.seen and not n.startswith(".")]
        self.seen |= cur
        return new

    def wait(self, timeout):
        """New file names (possibly none) within timeout seconds."""
        if self.fd < 0:
            end = now() + timeout
            while True:
                new = self._rescan()
                if new or now() >= end:
                    return new
                time.sleep(0.001)
        r, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not r:
            return []
        new, overflow = [], False
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data = self.buf + chunk
            off = 0
            while off + 16 <= len(data):
                _wd, mask, _ck, ln = struct.unpack_from("iIII", data, off)
                if off + 16 + ln > len(data):
                    break
                name = data[off + 16:off + 16 + ln].rstrip(b"\0").decode(
                    "utf-8", "replace")
                off += 16 + ln
                if mask & IN_Q_OVERFLOW:
                    overflow = True
                elif name and name not in self.seen and not name.startswith("."):
                    self.seen.add(name)
                    new.append(name)
            self.buf = data[off:]
        if overflow:
            new += self._rescan()
        return new


def count_files(path):
    try:
        return sum(1 for n in os.listdir(path) if not n.startswith("."))
    except OSError:
        return -1

# ---------------------------------------------------------------- arrivals
#
# What a throughput run waits for, behind one interface: wait(timeout)
# returns how many messages arrived since the last call, final() the count
# to report, close() a dict of extra figures for the result.


class MaildirCount:
    """Local delivery: new files in MAILDIR/new."""

    def __init__(self, maildir):
        self.dir = os.path.join(maildir, "new")
        self.watch = DirWatch(self.dir)
        self.base = len(self.watch.seen)

    def wait(self, timeout):
        return len(self.watch.wait(timeout))

    def final(self):
        return count_files(self.dir) - self.base

    def close(self):
        self.watch.close()
        return {}


TCP_STATES = {"01": "established", "03": "syn_recv", "08": "close_wait",
              "0A": "listen"}


def tcp_states(port):
    """Sockets of 127.0.0.1 whose local port is PORT, counted by state."""
    out = {}
    try:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                w = line.split()
                if len(w) > 3 and w[1].endswith(":%04X" % port):
                    st = TCP_STATES.get(w[3], "other")
                    out[st] = out.get(st, 0) + 1
    except OSError:
        pass
    return out


class SinkCount:
    """Relay: a Postfix smtp-sink on 127.0.0.1:PORT, started here for one
    run, that throws the messages away and, with -c, writes its running
    counters "sess=S quit=Q mesg=M\r" to us whenever a final dot arrives, a
    client QUITs or a session ends: one short write per event, so the sink
    stays far faster than any MTA feeding it."""

    def __init__(self, port, sink, log, start_timeout=10):
        self.port = port
        self.mesg = self.seen = self.sess = 0
        self.buf = b""
        if tcp_states(port).get("listen"):
            raise RuntimeError("something already listens on 127.0.0.1:%d" % port)
        self.err = open(os.devnull if log == os.devnull else log + ".sink", "wb")
        # -u: it drops root; -m: sessions served at once (the MTAs open at
        # most 100); the backlog is generous, the sink is not measured
        self.proc = subprocess.Popen(
            [sink, "-c", "-u", "nobody", "-m", "1000",
             "127.0.0.1:%d" % port, "1024"],
            stdout=subprocess.PIPE, stderr=self.err)
        os.set_blocking(self.proc.stdout.fileno(), False)
        end = now() + start_timeout
        while not tcp_states(port).get("listen") or self.proc.poll() is not None:
            if self.proc.poll() is not None or now() >= end:
                self.close()
                raise RuntimeError("smtp-sink is not listening on 127.0.0.1:%d "
                                   "(see %s.sink)" % (port, log))
            time.sleep(0.01)

    def _read(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], max(0.0, timeout))
        if not r:
            return
        data, eof = b"", False
        while len(data) < (1 << 20):
            try:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
            except BlockingIOError:
                break
            if not chunk:
                eof = True
                break
            data += chunk
        if eof and not data:
            # the sink is gone: nothing more can arrive
            time.sleep(max(0.0, timeout))
            return
        recs = (self.buf + data).split(b"\r")
        self.buf = recs.pop()[-200:]
        for rec in reversed(recs):
            f = dict(kv.split(b"=", 1) for kv in rec.split() if b"=" in kv)
            try:
                self.mesg, self.sess = int(f[b"mesg"]), int(f[b"sess"])
                break
            except (KeyError, ValueError):
                pass

    def wait(self, timeout):
        self._read(timeout)
        n, self.seen = self.mesg - self.seen, self.mesg
        return n

    def final(self):
        self._read(0)
        return self.mesg

    def close(self):
        """Connections the MTA opened: the sessions that ended plus those
        still open (an MTA may keep its connections for reuse)."""
        for _ in range(20):
            # a session that ends meanwhile must not count twice
            self._read(0)
            sess = self.sess
            st = tcp_states(self.port)
            self._read(0.05)
            if self.sess == sess:
                break
        opened = self.sess + sum(st.get(k, 0) for k in
                                 ("established", "syn_recv", "close_wait"))
        ticks = read_stat(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.err.close()
        return {"sink_connections": opened, "sink_sessions_ended": self.sess,
                "sink_cpu_s": round(ticks[3] / HZ, 2) if ticks else None}


def arrivals(a):
    """The counter a.maildir or a.sink asks for; None, said on stderr, if
    the sink does not start."""
    if not a.sink:
        return MaildirCount(a.maildir)
    try:
        return SinkCount(a.sink, a.sink_bin, a.log)
    except (OSError, RuntimeError) as e:
        print("%s: %s" % (a.cmd_name, e), file=sys.stderr)
        return None

# ---------------------------------------------------------------- smtp bits


def read_reply(f):
    """One SMTP reply (possibly multi-line): (code, text)."""
    lines = []
    for _ in range(100):
        line = f.readline()
        if not line:
            raise EOFError("connection closed")
        lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
        if len(line) < 4 or line[3:4] != b"-":
            break
    return int(lines[-1][:3]), "\n".join(lines)


def cmd_freeport(a):
    """A port nothing listens on now, and none of a.avoid: ports handed
    out before and not yet bound (an MTA's and its sink's)."""
    for _ in range(100):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in a.avoid:
            print(port)
            return 0
    return 1


def cmd_waitsmtp(a):
    end = now() + a.timeout
    while now() < end:
        try:
            with socket.create_connection(("127.0.0.1", a.port), timeout=2) as s:
                f = s.makefile("rb")
                code, _ = read_reply(f)
                s.sendall(b"QUIT\r\n")
                if code == 220:
                    return 0
        except (OSError, EOFError, ValueError):
            pass
        time.sleep(0.2)
    return 1


def cmd_tree(a):
    for p in tree(a.pid):
        print(p)


def cmd_bgload(a):
    """CPU used on the machine over a.seconds, in cores, and by whom."""
    def snap():
        return {p: (st[0], st[3]) for p, st in all_stats().items()}
    s0, m0 = snap(), machine_cpu()
    time.sleep(a.seconds)
    s1, m1 = snap(), machine_cpu()
    d = diff(m1, m0)
    tot = sum(d.values()) or 1
    ncpu = os.cpu_count() or 1
    busy = (tot - d.get("idle", 0) - d.get("iowait", 0)) / tot * ncpu
    per = {}
    for p, (comm, t) in s1.items():
        if p in s0 and p != os.getpid():
            per[comm] = per.get(comm, 0) + t - s0[p][1]
    top = sorted(per.items(), key=lambda kv: -kv[1])[:5]
    print(json.dumps({"busy_cores": round(busy, 2), "cpus": ncpu,
                      "top": [[c, round(t / HZ / a.seconds, 2)] for c, t in top if t > 0]}))


def cmd_mem(a):
    print(json.dumps(mem(a.pid)))

# ---------------------------------------------------------------- throughput


def cmd_throughput(a):
    """Start smtp-source, wait for COUNT new files in MAILDIR/new or COUNT
    messages at the sink."""
    arr = arrivals(a)
    if arr is None:
        return 1
    cpu0, mach0, tcp0 = cpu_by_role(a.root), machine_cpu(), tcp_counters()
    ru0 = _ru()
    errlog = open(a.log + ".smtp-source", "wb")
    t0 = now()
    src = subprocess.Popen(a.cmd, stdout=errlog, stderr=subprocess.STDOUT)
    t_src = None
    t_done = None
    got = 0
    top_done = False
    deadline = t0 + a.deadline
    while now() < deadline:
        got += arr.wait(0.05)
        if t_src is None and src.poll() is not None:
            t_src = now()
        if not top_done and got >= a.count // 2:
            top_done = True
            with open(a.log + ".top", "wb") as f:
                subprocess.run(["top", "-b", "-n1", "-w", "200"], stdout=f,
                               stderr=subprocess.DEVNULL, timeout=10)
        if got >= a.count:
            t_done = now()
            break
    if src.poll() is None and t_done is not None:
        # all delivered: smtp-source is about to exit
        try:
            src.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    if t_src is None and src.poll() is not None:
        t_src = now()
    killed = False
    if src.poll() is None:
        src.kill()
        src.wait()
        killed = True
    final = arr.final()
    extra = arr.close()
    errlog.close()
    cpu1, mach1, tcp1 = cpu_by_role(a.root), machine_cpu(), tcp_counters()
    ru1 = _ru()
    wall = (t_done or now()) - t0
    res = {
        "kind": "throughput", "mode": "relay" if a.sink else "local",
        "mta": a.mta, "conc": a.conc, "n": a.count,
        "size": a.size, "delivered": final,
        "complete": t_done is not None and final >= a.count,
        "seconds": round(wall, 3),
        "msgs_per_s": round((final if t_done is None else a.count) / wall, 1),
        "source_seconds": round(t_src - t0, 3) if t_src else None,
        "source_rc": src.returncode, "source_killed": killed,
        "cpu_s": {k: round(v / HZ, 2) for k, v in diff(cpu1, cpu0).items() if v},
        "machine_cpu_pct": _pct(diff(mach1, mach0)),
        "client_cpu_s": round(ru1 - ru0, 2),
        "others_cores": _others(diff(mach1, mach0), diff(cpu1, cpu0), ru1 - ru0, wall),
        "tcp": diff(tcp1, tcp0),
        "cmd": " ".join(a.cmd),
    }
    res.update(extra)
    try:
        with open(a.log + ".smtp-source", "rb") as f:
            tail = f.read()[-2000:].decode("utf-8", "replace").strip()
        if tail:
            res["source_output"] = tail.splitlines()[-5:]
    except OSError:
        pass
    print(json.dumps(res))


def _ru():
    import resource
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def _others(mach, mta, client_s, wall):
    """Cores used by processes that are neither the MTA nor the bench."""
    busy = (sum(mach.values()) - mach.get("idle", 0) - mach.get("iowait", 0)) / HZ
    return round(max(0.0, busy - sum(mta.values()) / HZ - client_s) / wall, 2)


def _pct(d):
    tot = sum(d.values()) or 1
    return {k: round(100.0 * v / tot, 1) for k, v in d.items()}

# ---------------------------------------------------------------- latency


def message(i, size, tag):
    mid = "<%s.%d.%d@bench.test>" % (tag, os.getpid(), i)
    head = ("From: <sender@bench.test>\r\nTo: <sqbench@bench.test>\r\n"
            "Subject: latency %d\r\nMessage-ID: %s\r\n\r\n" % (i, mid))
    line = ("x" * 76 + "\r\n").encode()
    body = line * (size // len(line)) + b"y" * (size % len(line))
    return mid, head.encode() + body + b"\r\n.\r\n"


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def cmd_latency(a):
    newdir = os.path.join(a.maildir, "new")
    watch = DirWatch(newdir)
    ack, dlv, errors = [], [], []
    end = now() + a.deadline
    s = f = None
    for i in range(a.count):
        if now() >= end:
            errors.append("deadline reached after %d messages" % i)
            break
        if s is not None and i % a.per_session == 0:
            # a new session every per_session messages (OpenSMTPD takes
            # at most 100 per session by default)
            try:
                s.sendall(b"QUIT\r\n")
                read_reply(f)
            except (OSError, EOFError, ValueError):
                pass
            s.close()
            s = None
        if s is None:
            try:
                s = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                f = s.makefile("rb")
                read_reply(f)
                s.sendall(b"EHLO latency.bench.test\r\n")
                read_reply(f)
            except (OSError, EOFError, ValueError) as e:
                errors.append("message %d: connect: %s" % (i, e))
                break
        mid, data = message(i, a.size, "lat")
        try:
            for c, want in ((b"MAIL FROM:<sender@bench.test>\r\n", 250),
                            (b"RCPT TO:<sqbench@bench.test>\r\n", 250),
                            (b"DATA\r\n", 354)):
                s.sendall(c)
                code, txt = read_reply(f)
                if code != want:
                    raise ValueError("%s -> %s" % (c.strip().decode(), txt))
            s.sendall(data)
            t_dot = now()
            code, txt = read_reply(f)
            t_ack = now()
            if code != 250:
                raise ValueError("end of data -> %s" % txt)
        except (OSError, EOFError, ValueError) as e:
            errors.append("message %d: %s" % (i, e))
            break
        names = []
        wait_end = t_dot + a.timeout
        while not names and now() < wait_end:
            names = watch.wait(wait_end - now())
        t_file = now()
        if not names:
            errors.append("message %d (%s) not in Maildir/new after %ss"
                          % (i, mid, a.timeout))
            break
        try:
            with open(os.path.join(newdir, names[0]), "rb") as mf:
                if mid.encode() not in mf.read(8192):
                    errors.append("message %d: file %s lacks %s"
                                  % (i, names[0], mid))
        except OSError as e:
            errors.append("message %d: %s" % (i, e))
        ack.append((t_ack - t_dot) * 1000.0)
        dlv.append((t_file - t_dot) * 1000.0)
    try:
        if s is not None:
            s.sendall(b"QUIT\r\n")
            s.close()
    except OSError:
        pass
    watch.close()
    r = lambda x: None if x is None else round(x, 2)
    print(json.dumps({
        "kind": "latency", "mta": a.mta, "n": len(dlv), "wanted": a.count,
        "size": a.size,
        "ack_p50_ms": r(pct(ack, 50)), "ack_p99_ms": r(pct(ack, 99)),
        "dlv_p50_ms": r(pct(dlv, 50)), "dlv_p99_ms": r(pct(dlv, 99)),
        "dlv_max_ms": r(max(dlv) if dlv else None),
        "dlv_mean_ms": r(statistics.mean(dlv) if dlv else None),
        "errors": errors[:10],
    }))

# ---------------------------------------------------------------- phases


def cmd_phases(a):
    """One new connection per message, as smtp-source does; time each step
    of the session from the client's side."""
    steps = ("connect", "greeting", "helo", "mail", "rcpt", "data", "dot", "quit")
    t = {k: [] for k in steps}
    errors = []
    end = now() + a.deadline
    for i in range(a.count):
        if now() >= end:
            errors.append("deadline reached after %d sessions" % i)
            break
        mid, data = message(i, a.size, "ph")
        try:
            t0 = now()
            s = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            f = s.makefile("rb")
            t1 = now()
            t["connect"].append(t1 - t0)
            code, txt = read_reply(f)
            t2 = now()
            t["greeting"].append(t2 - t1)
            for step, c, want in (("helo", b"HELO phases.bench.test\r\n", 250),
                                  ("mail", b"MAIL FROM:<sender@bench.test>\r\n", 250),
                                  ("rcpt", b"RCPT TO:<sqbench@bench.test>\r\n", 250),
                                  ("data", b"DATA\r\n", 354),
                                  ("dot", data, 250),
                                  ("quit", b"QUIT\r\n", 221)):
                t3 = now()
                s.sendall(c)
                code, txt = read_reply(f)
                if code != want:
                    raise ValueError("%s -> %s" % (step, txt))
                if step == "quit":
                    f.read()      # until the server closes
                t["%s" % step].append(now() - t3)
            s.close()
        except (OSError, EOFError, ValueError) as e:
            errors.append("session %d: %s" % (i, e))
            break
    res = {"kind": "phases", "mta": a.mta, "n": len(t["quit"]), "wanted": a.count,
           "errors": errors[:5]}
    for k in steps:
        res[k + "_p50_ms"] = round(pct([x * 1000 for x in t[k]], 50) or 0, 3)
        res[k + "_p99_ms"] = round(pct([x * 1000 for x in t[k]], 99) or 0, 3)
    tot = [sum(t[k][i] for k in steps) * 1000 for i in range(len(t["quit"]))]
    res["session_p50_ms"] = round(pct(tot, 50) or 0, 3)
    print(json.dumps(res))

# ---------------------------------------------------------------- idle


def settle(root, quiet, limit):
    """Wait until the tree's process count and memory stop moving (or
    limit seconds)."""
    end = now() + limit
    last = mem(root)
    stable_since = now()
    while now() < end:
        time.sleep(0.5)
        m = mem(root)
        if m["procs"] != last["procs"] or abs(m["private_kib"] - last["private_kib"]) > 256:
            stable_since = now()
        last = m
        if now() - stable_since >= quiet:
            break
    return last


def cmd_idle(a):
    before = settle(a.root, 2.0, 15)
    sel = selectors.DefaultSelector()
    conns = {}           # sock -> [state, started, buf]
    ok, failed, reasons = [], 0, {}
    started = 0
    t0 = now()
    end = t0 + a.deadline
    while (len(ok) < a.count) and now() < end:
        while started < a.count and len(conns) < a.inflight:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", a.port))
            conns[s] = [0, now(), b""]
            sel.register(s, selectors.EVENT_WRITE)
            started += 1
        if not conns:
            break
        for key, ev in sel.select(timeout=0.1):
            s = key.fileobj
            st = conns[s]
            if st[0] == 0:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                sel.unregister(s)
                if err:
                    reasons[os.strerror(err)] = reasons.get(os.strerror(err), 0) + 1
                    failed += 1
                    del conns[s]
                    s.close()
                    continue
                st[0] = 1
                sel.register(s, selectors.EVENT_READ)
            else:
                try:
                    data = s.recv(4096)
                except OSError as e:
                    data = None
                    reasons[str(e)] = reasons.get(str(e), 0) + 1
                if not data:
                    if data is not None:
                        reasons["closed before greeting"] = reasons.get("closed before greeting", 0) + 1
                    failed += 1
                    sel.unregister(s)
                    del conns[s]
                    s.close()
                    continue
                st[2] += data
                lines = st[2].split(b"\r\n")
                if any(l[:4] == b"220 " for l in lines):
                    sel.unregister(s)
                    del conns[s]
                    ok.append(s)
                elif any(l[:3].isdigit() and l[:3] != b"220" for l in lines):
                    w = lines[0][:60].decode("ascii", "replace")
                    reasons[w] = reasons.get(w, 0) + 1
                    failed += 1
                    sel.unregister(s)
                    del conns[s]
                    s.close()
        t = now()
        for s in [s for s, st in conns.items() if t - st[1] > a.timeout]:
            reasons["no greeting in %ss" % a.timeout] = reasons.get("no greeting in %ss" % a.timeout, 0) + 1
            failed += 1
            sel.unregister(s)
            del conns[s]
            s.close()
    t_open = now() - t0
    pending = len(conns)
    for s in list(conns):
        sel.unregister(s)
        s.close()
    after = settle(a.root, 3.0, 30)
    # are they still open?  Look for EOF without blocking.
    alive = 0
    for s in ok:
        try:
            s.setblocking(False)
            d = s.recv(1, socket.MSG_PEEK)
            if d:
                alive += 1
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    for s in ok:
        s.close()
    n = len(ok)
    res = {
        "kind": "idle", "mta": a.mta, "wanted": a.count, "established": n,
        "alive_at_measure": alive, "failed": failed, "unfinished": pending,
        "fail_reasons": reasons, "open_seconds": round(t_open, 2),
        "before": before, "after": after,
        "kib_per_session_private": round((after["private_kib"] - before["private_kib"]) / n, 1) if n else None,
        "kib_per_session_pss": round((after["pss_kib"] - before["pss_kib"]) / n, 1) if n else None,
    }
    print(json.dumps(res))

# ---------------------------------------------------------------- profile


def cmd_profile(a):
    """Run smtp-source; sample state, wchan and syscall of every process of
    the tree at about a.hz until COUNT files are in Maildir/new or COUNT
    messages at the sink."""
    arr = arrivals(a)
    if arr is None:
        return 1
    samples = {}         # role -> {key: count}
    nsamp = {}
    t0 = now()
    src = subprocess.Popen(a.cmd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    got, end = 0, t0 + a.deadline
    period = 1.0 / a.hz
    pids, pids_at = [], 0.0
    cpu0 = cpu_by_role(a.root)
    while now() < end and got < a.count:
        got += arr.wait(0)
        if now() - pids_at > 0.5:
            stats = all_stats()
            pids = [(p, label(p, stats[p][0])) for p in tree(a.root, stats)]
            pids_at = now()
        for pid, lab in pids:
            st = read_stat(pid)
            if not st:
                continue
            state = st[1]
            if state == "R":
                key = "R run(nable)"
            else:
                try:
                    with open("/proc/%d/wchan" % pid) as f:
                        w = f.read().strip() or "?"
                except OSError:
                    w = "?"
                try:
                    with open("/proc/%d/syscall" % pid) as f:
                        sc = f.read().split()[0]
                except (OSError, IndexError):
                    sc = "?"
                key = "%s %s sys=%s" % (state, w, sc)
            d = samples.setdefault(lab, {})
            d[key] = d.get(key, 0) + 1
            nsamp[lab] = nsamp.get(lab, 0) + 1
        time.sleep(period)
    if src.poll() is None:
        try:
            src.wait(timeout=10)
        except subprocess.TimeoutExpired:
            src.kill()
            src.wait()
    arr.close()
    cpu1 = cpu_by_role(a.root)
    out = {}
    for lab, d in samples.items():
        tot = nsamp[lab]
        top = sorted(d.items(), key=lambda kv: -kv[1])[:6]
        out[lab] = {"samples": tot,
                    "top": [[k, round(100.0 * v / tot, 1)] for k, v in top]}
    print(json.dumps({"kind": "profile", "mode": "relay" if a.sink else "local",
                      "mta": a.mta, "conc": a.conc,
                      "delivered": got, "complete": got >= a.count,
                      "seconds": round(now() - t0, 2),
                      "roles": out, "cmd": " ".join(a.cmd),
                      "cpu_s": {k: round(v / HZ, 2) for k, v in diff(cpu1, cpu0).items() if v}}))

# ---------------------------------------------------------------- syscalls


def cmd_syscalls(a):
    """Count the system calls of the whole process tree (strace -f -c)
    while COUNT messages go through; slows the MTA down, so not timed."""
    newdir = os.path.join(a.maildir, "new")
    watch = DirWatch(newdir)
    out = a.log + ".strace"
    argv = [a.strace, "-f", "-c", "-o", out]
    for p in tree(a.root):
        argv += ["-p", str(p)]
    st = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    t0 = now()
    src = subprocess.Popen(a.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    got, end = 0, t0 + a.deadline
    while got < a.count and now() < end:
        got += len(watch.wait(0.2))
    time.sleep(1.0)         # let the last deliveries finish their clean-up
    for proc in (src, st):
        if proc.poll() is None:
            proc.send_signal(2 if proc is st else 9)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    watch.close()
    calls = {}
    try:
        with open(out) as f:
            for line in f:
                w = line.split()
                # % time, seconds, usecs/call, calls, [errors], syscall
                if len(w) >= 5 and w[0][0].isdigit() and w[-1] != "total":
                    try:
                        calls[w[-1]] = int(w[3])
                    except ValueError:
                        pass
    except OSError:
        pass
    n = max(1, got)
    per = {k: round(v / n, 2) for k, v in calls.items()}
    print(json.dumps({"kind": "syscalls", "mta": a.mta, "delivered": got,
                      "n": a.count, "per_msg": per, "cmd": " ".join(a.cmd)}))

# ---------------------------------------------------------------- report

NAMES = {"sqmail": "sqmaild", "postfix": "Postfix", "opensmtpd": "OpenSMTPD"}


def ratio(a, b):
    if not a or not b:
        return "n/a"
    return "%.2f" % (a / b)


THROUGHPUT_TEXT = {
    "local": ("End-to-end local delivery throughput (msgs/s)",
              "From the start of `smtp-source` until all N files are in "
              "Maildir/new."),
    "relay": ("Relay throughput (msgs/s)",
              "From the start of `smtp-source`, sending to x@relay.test, "
              "until the `smtp-sink` each MTA relays that domain to has "
              "received all N messages."),
}


def throughput_section(w, head, rows, mtas, mode):
    """The table of one kind of throughput run (local or relay), the
    details per run and the runs that went wrong."""
    rows = [r for r in rows if r["kind"] == "throughput"
            and r.get("mode", "local") == mode]
    if not rows:
        return
    title, text = THROUGHPUT_TEXT[mode]
    head(title)
    w(text + " A run that missed its deadline shows the rate of what "
      "arrived, marked `*`.")
    w("")
    tp = {(r["mta"], r["conc"]): r for r in rows}
    concs = sorted({r["conc"] for r in rows})
    hdr = "| conc | " + " | ".join(NAMES[m] for m in mtas)
    if "sqmail" in mtas:
        for m in mtas:
            if m != "sqmail":
                hdr += " | sqmail/%s" % NAMES[m]
    w(hdr + " |")
    w("|" + "---|" * (hdr.count("|")))
    for c in concs:
        cells = []
        for m in mtas:
            r = tp.get((m, c))
            if not r:
                cells.append("-")
            else:
                cells.append("%.1f%s" % (r["msgs_per_s"], "" if r["complete"] else "*"))
        if "sqmail" in mtas:
            s = tp.get(("sqmail", c))
            for m in mtas:
                if m != "sqmail":
                    o = tp.get((m, c))
                    cells.append(ratio(s and s["msgs_per_s"], o and o["msgs_per_s"]))
        w("| %s | %s |" % (c, " | ".join(cells)))
    w("")
    # relay runs also say how many connections reached the sink: one per
    # message, or fewer when the MTA reuses them
    sink = mode == "relay"
    w("Details per run: acceptance (N / smtp-source wall time), messages "
      "%s, CPU used by the MTA's processes, cores used meanwhile by "
      "other processes of the machine (not the MTA, not the bench), machine "
      "CPU, kernel TCP counters (whole machine)%s:" % (
          "relayed" if sink else "delivered",
          "; delayed ACKs (whole machine: a sender that waits for the "
          "ACK of a small segment, Nagle's algorithm against delayed ACK, "
          "shows here), connections the MTA opened to the sink (those "
          "that ended plus those still open when the run ended) and the "
          "sink's own CPU" if sink else ""))
    w("")
    cols = ["MTA", "conc", "relayed" if sink else "delivered", "e2e s",
            "accept s", "accept msgs/s", "MTA CPU s", "MTA CPU ms/msg",
            "others' cores", "machine user/sys/iowait/idle %",
            "listen overflows", "retrans"]
    if sink:
        cols += ["delayed ACKs", "connections", "msgs/connection", "sink CPU s"]
    w("| " + " | ".join(cols) + " |")
    w("|" + "---|" * len(cols))
    for m in mtas:
        for c in concs:
            r = tp.get((m, c))
            if not r:
                continue
            src = r.get("source_seconds")
            mc = r.get("machine_cpu_pct", {})
            mcpu = sum(r.get("cpu_s", {}).values())
            cells = [NAMES[m], c, "%s/%s" % (r["delivered"], r["n"]), r["seconds"],
                     src if src is not None else "killed",
                     "%.1f" % (r["n"] / src) if src else "-",
                     "%.2f" % mcpu, "%.2f" % (1000.0 * mcpu / max(1, r["delivered"])),
                     r.get("others_cores", "?"),
                     "%s/%s/%s/%s" % (mc.get("user"), mc.get("system"),
                                      mc.get("iowait"), mc.get("idle")),
                     r.get("tcp", {}).get("ListenOverflows", "?"),
                     r.get("tcp", {}).get("RetransSegs", "?")]
            if sink:
                conns = r.get("sink_connections")
                cells += [r.get("tcp", {}).get("DelayedACKs", "?"), conns,
                          "%.1f" % (r["delivered"] / conns) if conns else "-",
                          r.get("sink_cpu_s")]
            w("| " + " | ".join(str(x) for x in cells) + " |")
    w("")
    w("CPU seconds per process role during each run:")
    w("")
    for m in mtas:
        for c in concs:
            r = tp.get((m, c))
            if r and r.get("cpu_s"):
                parts = sorted(((k, v) for k, v in r["cpu_s"].items() if v > 0),
                               key=lambda kv: -kv[1])[:8]
                w("- %s conc %s: %s" % (NAMES[m], c, ", ".join(
                    "%s %.2f" % kv for kv in parts)))
    probs = [r for r in rows
             if not r["complete"] or r.get("source_rc") or r.get("source_output")]
    if probs:
        w("")
        w("Runs with errors or missed deadlines:")
        w("")
        for r in probs:
            w("- %s conc %s: %s %s of %s in %ss; smtp-source rc %s%s%s" % (
                NAMES[r["mta"]], r["conc"], "relayed" if sink else "delivered",
                r["delivered"], r["n"], r["seconds"],
                r.get("source_rc"), " (killed at deadline)" if r.get("source_killed") else "",
                ("; output: " + " / ".join("`%s`" % x for x in r["source_output"]))
                if r.get("source_output") else ""))


def latency_section(w, head, mtas, lat, ph):
    head("Latency, one message at a time (ms)")
    w("`ack`: final dot sent -> 250 received. `delivery`: final dot sent -> "
      "file in Maildir/new (inotify). 50 messages per connection.")
    w("")
    w("| MTA | messages | ack p50 | ack p99 | delivery p50 | delivery p99 | delivery max |")
    w("|---|---|---|---|---|---|---|")
    for m in mtas:
        r = lat.get(m)
        if r:
            w("| %s | %s/%s | %s | %s | %s | %s | %s |" % (
                NAMES[m], r["n"], r["wanted"], r["ack_p50_ms"], r["ack_p99_ms"],
                r["dlv_p50_ms"], r["dlv_p99_ms"], r["dlv_max_ms"]))
    if "sqmail" in lat:
        for m in mtas:
            if m != "sqmail" and m in lat:
                w("")
                w("sqmail/%s delivery latency ratio: p50 %s, p99 %s (below 1 is faster)." % (
                    NAMES[m], ratio(lat["sqmail"]["dlv_p50_ms"], lat[m]["dlv_p50_ms"]),
                    ratio(lat["sqmail"]["dlv_p99_ms"], lat[m]["dlv_p99_ms"])))
    for m in mtas:
        r = lat.get(m)
        if r and r.get("errors"):
            w("")
            w("%s latency errors: %s" % (NAMES[m], "; ".join("`%s`" % e for e in r["errors"])))
    if ph:
        steps = ("connect", "greeting", "helo", "mail", "rcpt", "data", "dot", "quit")
        w("")
        w("Session steps, one new connection per message as smtp-source "
          "makes them, one session at a time, p50 (p99) in ms, from the "
          "client: connect, greeting, HELO, MAIL, RCPT, DATA (354), final "
          "dot (250), QUIT (221 and close):")
        w("")
        w("| MTA | sessions | " + " | ".join(steps) + " | session p50 |")
        w("|---|---|" + "---|" * len(steps) + "---|")
        for m in mtas:
            r = ph.get(m)
            if r:
                w("| %s | %s/%s | %s | %s |" % (NAMES[m], r["n"], r["wanted"], " | ".join(
                    "%.2f (%.2f)" % (r[k + "_p50_ms"], r[k + "_p99_ms"]) for k in steps),
                    r["session_p50_ms"]))
        for m in mtas:
            r = ph.get(m)
            if r and r.get("errors"):
                w("")
                w("%s session errors: %s" % (NAMES[m], "; ".join("`%s`" % e for e in r["errors"])))


def idle_section(w, head, mtas, idl):
    head("Memory per idle SMTP session")
    w("Private (Private_Clean+Private_Dirty) and PSS of all the MTA's "
      "processes, before and after opening the idle sessions (greeting read), "
      "divided by the sessions established.")
    w("")
    w("| MTA | established | processes before/after | private KiB before/after | KiB/session private | KiB/session PSS |")
    w("|---|---|---|---|---|---|")
    for m in mtas:
        r = idl.get(m)
        if r:
            w("| %s | %s/%s | %s/%s | %s/%s | %s | %s |" % (
                NAMES[m], r["established"], r["wanted"], r["before"]["procs"],
                r["after"]["procs"], r["before"]["private_kib"],
                r["after"]["private_kib"], r["kib_per_session_private"],
                r["kib_per_session_pss"]))
    for m in mtas:
        r = idl.get(m)
        if r and (r["failed"] or r["unfinished"] or r["established"] < r["wanted"]
                  or r["alive_at_measure"] < r["established"]):
            w("")
            w("%s: %s established, %s failed, %s unfinished after %ss, %s still "
              "open at measurement; reasons: %s" % (
                  NAMES[m], r["established"], r["failed"], r["unfinished"],
                  r["open_seconds"], r["alive_at_measure"],
                  json.dumps(r["fail_reasons"])))


def cmd_report(a):
    rows = []
    with open(a.results) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
    meta = {}
    if a.meta and os.path.exists(a.meta):
        with open(a.meta) as f:
            meta = json.load(f)
    mtas = [m for m in ("sqmail", "postfix", "opensmtpd")
            if any(r.get("mta") == m for r in rows)]
    out = []
    w = out.append
    w("# sqmail benchmark: %s" % meta.get("date", ""))
    w("")
    w("Machine: %s; %s CPUs; kernel %s; file system of the scratch area: %s."
      % (meta.get("host", "?"), meta.get("cpus", "?"), meta.get("kernel", "?"),
         meta.get("fs", "?")))
    w("Versions: %s." % "; ".join(meta.get("versions", [])))
    bg = meta.get("background") or {}
    w("Background load before the run (other processes on this machine): "
      "%s of %s cores busy%s." % (bg.get("busy_cores", "?"), bg.get("cpus", "?"),
                                   (" (" + ", ".join("%s %s" % (c, v) for c, v in bg.get("top", [])) + ")") if bg.get("top") else ""))
    w("Parameters: N=%s messages, SIZE=%s bytes, CONC=\"%s\", latency %s "
      "messages, %s idle sessions%s."
      % (meta.get("N"), meta.get("SIZE"), meta.get("CONC"), meta.get("LAT_N"),
         meta.get("IDLE_N"), ", QUICK mode" if meta.get("QUICK") else ""))
    if meta.get("MODE"):
        w("Modes: %s; relay runs stopped after %s s at most."
          % (meta["MODE"], meta.get("RELAY_DEADLINE", "?")))
    nsec = [0]

    def head(title):
        nsec[0] += 1
        w("")
        w("## %d. %s" % (nsec[0], title))
        w("")

    for mode in ("local", "relay"):
        throughput_section(w, head, rows, mtas, mode)
    lat = {r["mta"]: r for r in rows if r["kind"] == "latency"}
    ph = {r["mta"]: r for r in rows if r["kind"] == "phases"}
    if lat or ph:
        latency_section(w, head, mtas, lat, ph)
    idl = {r["mta"]: r for r in rows if r["kind"] == "idle"}
    if idl:
        idle_section(w, head, mtas, idl)
    prof = [r for r in rows if r["kind"] == "profile"]
    if prof:
        w("")
        w("## Where sqmaild spends its time (diagnostic run, not in the tables)")
        w("")
        for r in prof:
            w("%s, %s, conc %s, %s messages in %ss (%.1f msgs/s); CPU s by role: %s. "
              "Per role, share of samples by state (R running or waiting "
              "for a CPU; S sleeping, D disk wait, with the kernel wait "
              "channel and the syscall number: 0 read, 1 write, 7 poll, "
              "42 connect, 74 fsync, 75 fdatasync, 82 rename, 202 futex, "
              "232 epoll_wait, 257 openat):" % (
                  NAMES[r["mta"]], "relay" if r.get("mode") == "relay"
                  else "local delivery", r["conc"], r["delivered"], r["seconds"],
                  r["delivered"] / max(0.001, r["seconds"]),
                  ", ".join("%s %.2f" % kv for kv in sorted(
                      r.get("cpu_s", {}).items(), key=lambda kv: -kv[1]))))
            w("")
            for lab, d in sorted(r["roles"].items()):
                w("- `%s` (%d samples): %s" % (lab, d["samples"], ", ".join(
                    "%s %s%%" % (k, v) for k, v in d["top"])))
            w("")
    sc = {r["mta"]: r for r in rows if r["kind"] == "syscalls"}
    if sc:
        keys = ("fsync", "fdatasync", "openat", "rename", "unlink", "write",
                "writev", "sendmsg", "recvmsg", "epoll_ctl", "epoll_wait",
                "futex", "clone", "clone3", "execve", "wait4")
        keys = [k for k in keys if any(k in r["per_msg"] for r in sc.values())]
        w("")
        w("## System calls per message (diagnostic, not timed)")
        w("")
        w("`strace -f -c` on every process of the MTA while %s messages go "
          "through at concurrency 1 (smtp-source, one connection per "
          "message); calls divided by the messages delivered." % (
              next(iter(sc.values()))["n"]))
        w("")
        w("| MTA | delivered | all calls | " + " | ".join(keys) + " |")
        w("|---|---|---|" + "---|" * len(keys))
        for m in mtas:
            r = sc.get(m)
            if r:
                w("| %s | %s | %.0f | %s |" % (NAMES[m], r["delivered"],
                                            sum(r["per_msg"].values()),
                                            " | ".join(str(r["per_msg"].get(k, 0)) for k in keys)))
    if a.notes and os.path.exists(a.notes):
        with open(a.notes) as f:
            notes = f.read().strip()
        if notes:
            w("")
            w("## Notes from this run")
            w("")
            w(notes)
    if a.commands and os.path.exists(a.commands):
        w("")
        w("## Commands")
        w("")
        w("```")
        with open(a.commands) as f:
            w(f.read().rstrip())
        w("```")
    text = "\n".join(out) + "\n"
    with open(a.output, "w") as f:
        f.write(text)
    sys.stdout.write(text)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd_name", required=True)
    s = sub.add_parser("freeport")
    s.add_argument("avoid", type=int, nargs="*")
    s.set_defaults(fn=cmd_freeport)
    s = sub.add_parser("waitsmtp")
    s.add_argument("port", type=int)
    s.add_argument("timeout", type=float)
    s.set_defaults(fn=cmd_waitsmtp)
    s = sub.add_parser("bgload")
    s.add_argument("seconds", type=float)
    s.set_defaults(fn=cmd_bgload)
    for name, fn in (("tree", cmd_tree), ("mem", cmd_mem)):
        s = sub.add_parser(name)
        s.add_argument("pid", type=int)
        s.set_defaults(fn=fn)
    for name, fn in (("throughput", cmd_throughput), ("profile", cmd_profile)):
        s = sub.add_parser(name)
        s.add_argument("--mta", required=True)
        s.add_argument("--root", type=int, required=True)
        where = s.add_mutually_exclusive_group(required=True)
        where.add_argument("--maildir", help="count files in MAILDIR/new")
        where.add_argument("--sink", type=int, metavar="PORT",
                           help="start smtp-sink on 127.0.0.1:PORT, count "
                           "what it receives")
        s.add_argument("--sink-bin", default="/usr/sbin/smtp-sink")
        s.add_argument("--count", type=int, required=True)
        s.add_argument("--conc", type=int, required=True)
        s.add_argument("--size", type=int, default=0)
        s.add_argument("--deadline", type=float, required=True)
        s.add_argument("--log", default="/dev/null")
        s.add_argument("--hz", type=float, default=100)
        s.add_argument("cmd", nargs="+")
        s.set_defaults(fn=fn)
    s = sub.add_parser("latency")
    s.add_argument("--mta", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--maildir", required=True)
    s.add_argument("--count", type=int, default=300)
    s.add_argument("--size", type=int, default=4096)
    s.add_argument("--timeout", type=float, default=30)
    s.add_argument("--deadline", type=float, default=180)
    s.add_argument("--per-session", type=int, default=50)
    s.set_defaults(fn=cmd_latency)
    s = sub.add_parser("syscalls")
    s.add_argument("--mta", required=True)
    s.add_argument("--root", type=int, required=True)
    s.add_argument("--maildir", required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--deadline", type=float, default=60)
    s.add_argument("--log", required=True)
    s.add_argument("--strace", default="strace")
    s.add_argument("cmd", nargs="+")
    s.set_defaults(fn=cmd_syscalls)
    s = sub.add_parser("phases")
    s.add_argument("--mta", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--count", type=int, default=200)
    s.add_argument("--size", type=int, default=4096)
    s.add_argument("--timeout", type=float, default=30)
    s.add_argument("--deadline", type=float, default=60)
    s.set_defaults(fn=cmd_phases)
    s = sub.add_parser("idle")
    s.add_argument("--mta", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--root", type=int, required=True)
    s.add_argument("--count", type=int, default=1000)
    s.add_argument("--inflight", type=int, default=50)
    s.add_argument("--timeout", type=float, default=20)
    s.add_argument("--deadline", type=float, default=90)
    s.set_defaults(fn=cmd_idle)
    s = sub.add_parser("report")
    s.add_argument("--results", required=True)
    s.add_argument("--output", required=True)
    s.add_argument("--meta")
    s.add_argument("--commands")
    s.add_argument("--notes")
    s.set_defaults(fn=cmd_report)
    a = p.parse_args()
    rc = a.fn(a)
    sys.exit(rc or 0)


if __name__ == "__main__":
    main()
