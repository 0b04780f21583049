#!/usr/bin/env python3
"""
DNS answers are hostile input: sqmaild's resolver (lka, c-ares) against
a server that lies (regress/e2e/hostiledns.py): truncated answers whose
TCP side hangs up, talks garbage or stops half-way, a 64 KiB answer of
2900 MX records over TCP, count fields that lie, compression pointer
loops, MX targets over 255 octets, with a 64-octet label, a space, a
NUL, dots inside a label, a newline or CR LF followed by a log or queue
line look-alike, an address, an A record three octets long, a CNAME
loop, answers with the wrong id or for another name, an empty datagram,
SERVFAIL, REFUSED and NXDOMAIN.

For each: `sqmailctl show routes DOMAIN` says where mail would go (the
honest host only) or fails with one sane line, and a real delivery
attempt to x@DOMAIN is a deferral that leaves the message queued (a
permanent failure only where the RFCs say so: NXDOMAIN, RFC 1035 4.1.1;
MX records none of which names a usable host, RFC 5321 5.1), with a
single-line reason.  Throughout: lka keeps running (same pid), nothing
of a forged answer is used (forged.hostile.test is never even looked
up), and no name from DNS reaches the log, `show queue`, `show hosts`
or a bounce unchecked (no trace of hostiledns.MARKER anywhere).

Deliveries go to port 25 of 127.0.0.77 and 127.0.77.0/24, where nothing
listens: a delivery that gets that far is refused and deferred.
"""
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest                                       # noqa: E402
import hostiledns                                   # noqa: E402
from hostiledns import name, MARKER                 # noqa: E402
from sqtest import make_message                     # noqa: E402

GOOD_ADDR = "127.0.0.77"
REFUSED_GOOD = r"127\.0\.0\.77:_connect:_Connection_refused_\(#4\.4\.1\)"
# What a failed MX lookup says: one line, c-ares's words.
TEMP_ROUTE = r"sqmailctl: MX (lookup|answer) for %s: [A-Za-z][A-Za-z ]*\n"
TEMP_LOG = r"MX_(lookup|answer)_for_%s:_[A-Za-z][A-Za-z_]*_\(#4\.4\.3\)"


def good(pref):
    """show routes of a domain whose only usable MX is the good host."""
    return ("hosts", "{d} via mx\nhost mx.ok.hostile.test pref %d addr "
            "127.0.0.77 port 25\n" % pref)


TEMP = ("temp", None)
DEFER_GOOD = ("deferral", REFUSED_GOOD)
DEFER_DNS = ("deferral", None)          # TEMP_LOG of the domain
# An address lookup of the only host failed for now (dns.c's words).
TEMP_ADDR = ("perm", r"sqmailctl: no address for a mail host of {d} yet: "
             r"[ -~]+\n")
DEFER_ADDR = ("deferral", r"no_address_for_a_mail_host_of_{d}_yet:_[!-~]+"
              r"_\(#4\.4\.3\)")

# case: (show routes, delivery).  show routes: ("hosts",
# exact output) or ("temp", None) or ("perm", stderr pattern: a failure
# whose words say what it is); delivery:
# (result, reason pattern).  TCP cases run one at a time: c-ares has
# one TCP connection per server, which their answers would tangle.
CASES = [
    ("ok", good(10), DEFER_GOOD),
    ("tc-close", TEMP, DEFER_DNS),
    ("tc-garbage", TEMP, DEFER_DNS),
    ("tc-short", TEMP, DEFER_DNS),
    ("tc-huge", ("huge", None), ("deferral", r"127\.0\.77\.\d+:_connect:_"
                                 r"Connection_refused_\(#4\.4\.1\)")),
    ("an-count-lie", TEMP, DEFER_DNS),
    ("qd-count-lie", TEMP, DEFER_DNS),
    ("ptr-loop", TEMP, DEFER_DNS),
    ("ptr-loop2", TEMP, DEFER_DNS),
    ("ptr-forward", TEMP, DEFER_DNS),
    ("name-too-long", good(20), DEFER_GOOD),
    ("label-too-long", TEMP, DEFER_DNS),
    ("bad-space", good(20), DEFER_GOOD),
    ("bad-nul", good(20), DEFER_GOOD),
    ("bad-dots", good(20), DEFER_GOOD),
    ("bad-newline", good(20), DEFER_GOOD),
    ("bad-crlf", good(20), DEFER_GOOD),
    ("mx-literal", good(20), DEFER_GOOD),
    ("only-bad", ("perm", r"sqmailctl: no MX record of {d} names a valid "
                  r"host\n"),
     ("failure", r"no_MX_record_of_{d}_names_a_valid_host_\(#5\.1\.2\)")),
    ("a-rdlen3", TEMP_ADDR, DEFER_ADDR),
    ("a-rdlen3-backup", good(20), DEFER_GOOD),
    ("cname-loop", TEMP_ADDR, DEFER_ADDR),
    ("wrong-id", good(10), DEFER_GOOD),
    ("wrong-id-only", TEMP, DEFER_DNS),
    ("other-name", good(10), DEFER_GOOD),
    ("empty-datagram", good(10), DEFER_GOOD),
    ("servfail", TEMP, DEFER_DNS),
    ("refused", TEMP, DEFER_DNS),
    ("nxdomain", ("perm", r"sqmailctl: {d}: no such domain\n"),
     ("failure", r"{d}:_no_such_domain_\(#5\.1\.2\)")),
]
TCP_CASES = [c for c in CASES if c[0].startswith("tc-")]
UDP_CASES = [c for c in CASES if not c[0].startswith("tc-")]


def show(d, case):
    """show routes for the case's domain: (exit, stdout, stderr)."""
    return d.ctl("show", "routes", name(case))


def send(d, case):
    code, text = d.send(make_message("to " + case),
                        rcpts=("x@" + name(case),))
    return code, text


def check_route(t, case, want, got):
    rc, out, err = got
    dom = re.escape(name(case))
    kind, what = want
    if kind == "hosts":
        t.ok((rc, out) == (0, what.format(d=name(case))),
              "%s: show routes names the honest host only" % case,
              "got %r %r %r" % (rc, out, err))
    elif kind == "huge":
        lines = out.splitlines()
        hosts = [re.fullmatch(r"host (m00(\d\d))\.tc-huge\.hostile\.test "
                              r"pref 10 addr 127\.0\.77\.(\d+) port 25", l)
                 for l in lines[1:]]
        t.ok(rc == 0 and lines[:1] == ["%s via mx" % name(case)] and
              len(hosts) == 32 and all(
                  h and int(h.group(3)) == int(h.group(2)) + 1
                  for h in hosts) and
              len(set(h.group(1) for h in hosts)) == 32,
              "%s: 2900 MX records over TCP: the 32 best (preference 10), "
              "each with its address" % case,
              "got %r %r %r" % (rc, out[:400], err))
    else:
        pat = TEMP_ROUTE % dom if kind == "temp" else what.format(d=dom)
        t.ok(rc == 1 and out == "" and re.fullmatch(pat, err),
              "%s: show routes fails with one line%s" % (
                  case, ", a temporary reason" if kind == "temp" else
                  ", saying why"),
              "got %r %r %r, expected to match %r" % (rc, out, err, pat))


def check_delivery(t, d, case, want, got, queue, bounce_text):
    what, why = got
    dom = re.escape(name(case))
    kind, pat = want
    if pat is None:
        pat = TEMP_LOG % dom
    pat = pat.format(d=dom)
    rcpt = "x@" + name(case)
    t.ok(what == kind and why is not None and re.fullmatch(pat, why),
          "%s: delivery is a %s, its reason one sane line" % (case, kind),
          "got %r: %r, expected %s matching %r" % (what, why, kind,
                                                          pat))
    q = [e for e in queue if e.get("rcpt") == rcpt]
    if kind == "deferral":
        t.ok(len(q) == 1 and q[0]["state"] == "pending" and
              q[0]["tries"] == 1 and re.fullmatch(r"[ -~]+", q[0]["error"]),
              "%s: still queued, show queue says why" % case, q)
    else:
        t.ok(q == [] and re.search(r"(?m)^<%s>:$" % re.escape(rcpt),
                                       bounce_text),
              "%s: bounced to the sender, out of the queue" % case, q)


def refuses(host, port=25):
    """None when host:port refuses a connection, else what happened."""
    try:
        socket.create_connection((host, port), timeout=5).close()
        return "something accepts connections there"
    except ConnectionRefusedError:
        return None
    except OSError as e:
        return str(e)


def main():
    t = sqtest.Tap()
    for host in (GOOD_ADDR, "127.0.77.1"):
        why = refuses(host)
        if why is not None:
            t.bail_out("%s:25 should refuse connections: %s" % (host, why))
    dns = hostiledns.HostileDns(good_addr=GOOD_ADDR).start()
    try:
        d = sqtest.Daemon(t, extra='dns servers "%s"\nrelay from { '
                          '127.0.0.1/32 }\n' % dns.server,
                          retry_min="300s", retry_max="600s").start()
        roles = d.role_pids()
        t.ok("lka" in roles, "lka runs", roles)
        started = time.monotonic()

        # TCP cases first, one at a time: show routes, then a delivery.
        # (Not while other lookups are out: c-ares 1.18 takes a TCP
        # connection closed under it for a failed server and sends every
        # query out to it again, which a test would then depend on.)
        routes, sent, deliveries = {}, {}, {}
        for c in TCP_CASES:
            routes[c[0]] = show(d, c[0])
            sent[c[0]] = send(d, c[0])
            deliveries[c[0]] = d.delivery_outcome("x@" + name(c[0]))
        # UDP cases: every show routes at once, in threads (the lies that
        # end in a resolver timeout take 14 s), and every message.

        def ask(case):
            routes[case] = show(d, case)
        threads = [threading.Thread(target=ask, args=(c[0],))
                   for c in UDP_CASES]
        for th in threads:
            th.start()
        for c in UDP_CASES:
            sent[c[0]] = send(d, c[0])
        for th in threads:
            th.join(60 * sqtest.SCALE)
        for c in UDP_CASES:
            deliveries[c[0]] = d.delivery_outcome("x@" + name(c[0]))
        t.note("all lookups and deliveries done in %.0f s" %
               (time.monotonic() - started))

        queue = d.queue()
        t.ok(queue is not None and all(e["id"] for e in queue),
             "show queue: every line is one well-formed entry", queue)
        queue = queue or []
        # A failure's bounce comes back to the sender: wait for them all.
        failed = ["<x@%s>:" % name(c) for c, (what, _) in deliveries.items()
                  if what == "failure"]

        def bounced():
            text = "".join(m.data.decode("utf-8", "replace")
                           for m in d.messages())
            return (text,) if all(f in text for f in failed) else None
        try:
            bounce_text, = sqtest.wait_for("bounces for %s" % failed,
                                           bounced)
        except sqtest.WaitTimeout:
            bounce_text = "".join(m.data.decode("utf-8", "replace")
                                  for m in d.messages())

        for case, route, delivery in CASES:
            t.note("--- %s" % case)
            code, text = sent[case]
            t.is_(code, 250, "%s: accepted" % case, text)
            if case in routes:
                check_route(t, case, route, routes[case])
            else:
                t.ok(False, "%s: show routes answered" % case)
            check_delivery(t, d, case, delivery, deliveries[case],
                           queue, bounce_text)

        t.note("--- the daemon, the log, the listings")
        t.ok(d.running() and d.role_pids() == roles, "every process of "
             "sqmaild still runs, lka with the same pid", roles,
             d.role_pids())
        rc, out, err = show(d, "ok")
        t.is_((rc, out), (0, good(10)[1].format(d=name("ok"))),
              "the resolver still answers afterwards", err)
        forged = [q for q in dns.queries() if "forged" in q[1]]
        t.is_(forged, [], "no name from a forged or bad answer was ever "
              "looked up")
        log = d.log_text()
        t.ok(MARKER not in log and MARKER.lower() not in log,
             "nothing of the bad names in the log",
             [l for l in log.splitlines() if MARKER.lower() in l.lower()])
        t.ok(all(re.fullmatch(r"[ -~]*", l) for l in log.splitlines()),
             "every log line is printable ASCII",
             [l for l in log.splitlines()
              if not re.fullmatch(r"[ -~]*", l)][:5])
        rc, out, err = d.ctl("show", "queue")
        t.ok(rc == 0 and MARKER.lower() not in out.lower(),
             "nothing of them in show queue", out)
        rc, out, err = d.ctl("show", "hosts")
        t.ok(rc == 0 and MARKER.lower() not in out.lower() and all(
            re.fullmatch(r"host=\S+ port=25 name=[a-z0-9.-]+ sessions=\d+ "
                         r"connections=\d+ delivered=\d+ last=\d+ "
                         r"tls=\S+ error=[ -~]+", l)
            for l in out.splitlines()), "show hosts: only checked names",
            out)
        t.ok(MARKER.lower() not in bounce_text.lower(),
             "nothing of them in the bounces")
        t.ok(all(MARKER.lower() not in (r[1] + r[2]).lower()
                 for r in routes.values()), "nothing of them in show routes")
        d.stop()
    finally:
        dns.stop()
    t.done_testing()


if __name__ == "__main__":
    main()
