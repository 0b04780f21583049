"""
peerutil: what the test peers (dnspeer.py, mtapeer.py, sinkpeer.py, ...)
share: a registry of running peers stopped at interpreter exit and from
sqtest's clean-up (prove's timeout, ^C: sqtest exits without atexit),
finding a program, a free port, and a look at /proc.  Standard library
only.
"""

import atexit
import os
import shutil
import socket
import sys

_peers = []


def track(peer):
    """peer.stop() will run at exit unless untrack()ed first."""
    if peer not in _peers:
        _peers.append(peer)


def untrack(peer):
    if peer in _peers:
        _peers.remove(peer)


def stop_all():
    for p in list(_peers):
        try:
            p.stop()
        except Exception:
            pass


atexit.register(stop_all)

if "sqtest" in sys.modules:
    class _Sweeper:
        """Looks like a sqtest daemon to its cleanup(): stops the peers."""

        def kill_all(self):
            stop_all()

        def _dump_log(self):
            return []
    sys.modules["sqtest"]._daemons.append(_Sweeper())


class Peer:
    """What every peer has: start(), stop() and proc, a subprocess."""

    proc = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def find_program(name, env, dirs):
    """$env if set (None unless executable), $PATH, then dirs; or None."""
    given = os.environ.get(env)
    if given:
        return given if os.access(given, os.X_OK) else None
    found = shutil.which(name)
    if found:
        return found
    for d in dirs:
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def free_port(host="127.0.0.1"):
    """A TCP port free on host now (racy, as all such are)."""
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                      socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def stat(pid):
    """(state, ppid, pgid) of a process, or None when gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            s = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[2])
