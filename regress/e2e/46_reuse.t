#!/usr/bin/env python3
"""
How the mta uses its connections to a real Postfix (regress/e2e/mtapeer.py).
Messages are queued while the mta is paused and let go at once, so the
limits, not the timing, decide: 12 messages share at most 2 connections
with `remote host-concurrency 2`, across domains routed to the same host
too; `remote host-concurrency` and `remote concurrency` bound the
connections open at once (counted from Postfix's own log of connects and
disconnects); a host with PIPELINING gets MAIL, the RCPTs and DATA at
once (hostilepeer.py, a server that answers nothing more), one without it
one command at a time (Postfix logs no improper pipelining); a
connection the server closed while idle costs no deferral.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
import mtapeer
import hostilepeer as hp
from sqtest import make_message

N = 12


def route_conf(port, domains=("example.net",), extra=""):
    conf = extra
    for dom in domains:
        conf += 'domain "%s" {\n\troute "[127.0.0.1]:%d"\n}\n' % (dom, port)
    return conf


def connections(peer, since=0):
    """
    Postfix smtpd's connects and disconnects in the order it logged them,
    from the connect numbered since on (mtapeer's own readiness check is
    one): (connections in all, the most open at once).
    """
    total = now = most = 0
    lines = peer.log().splitlines()
    skip = since
    while skip > 0 and lines:
        if re.search(r"/smtpd\[\d+\]: connect from ", lines.pop(0)):
            skip -= 1
    for line in lines:
        if re.search(r"/smtpd\[\d+\]: connect from ", line):
            total += 1
            now += 1
            most = max(most, now)
        elif re.search(r"/smtpd\[\d+\]: disconnect from ", line):
            now -= 1
    return total, most


def send_many(t, d, n, rcpt, name):
    msgs = []
    for i in range(n):
        msg = make_message("%s %d" % (name, i))
        code, text = d.send(msg, rcpts=(rcpt if isinstance(rcpt, str) else
                                        rcpt[i % len(rcpt)],))
        if code != 250:
            t.ok(False, "%s: message %d accepted" % (name, i), text)
            return msgs
        msgs.append(msg)
    t.ok(True, "%s: %d messages accepted" % (name, n))
    return msgs


def all_delivered(t, peer, msgs, name):
    got = peer.wait_messages(len(msgs), timeout=30)
    bodies = [m.body for m in got]
    t.ok(len(got) == len(msgs) and all(
        any(b.endswith(m) for b in bodies) for m in msgs),
        "%s: all %d delivered intact, once each" % (name, len(msgs)),
        "%d at the peer" % len(got))
    return got


def paused_send(t, d, n, rcpt, name):
    """
    n messages queued while the mta is paused, then let go at once: the
    limit, not the timing, decides how many connections carry them.
    """
    rc, out, err = d.ctl("pause", "mta")
    t.is_(rc, 0, "%s: mta paused" % name, err)
    msgs = send_many(t, d, n, rcpt, name)
    rc, out, err = d.ctl("resume", "mta")
    t.is_(rc, 0, "%s: mta resumed" % name, err)
    return msgs


def messages_share_connections(t):
    with mtapeer.MtaPeer() as mx:
        d = sqtest.Daemon(t, extra=route_conf(
            mx.port, extra="remote host-concurrency 2\n")).start()
        try:
            before = connections(mx)[0]
            msgs = paused_send(t, d, N, "x@example.net", "reuse")
            got = all_delivered(t, mx, msgs, "reuse")
            total, most = connections(mx, before)
            t.ok(1 <= total <= 2, "reuse: %d messages on %d connections "
                 "(host-concurrency 2)" % (len(msgs), total), mx.log_tail())
            ports = [m.client[1] for m in got]
            t.ok(len(set(ports)) <= 2,
                 "reuse: they came from at most two client ports", ports)
            rc, out, err = d.ctl("show", "hosts")
            t.like(out, r"(?m)^host=127\.0\.0\.1 port=%d .* connections=%d "
                   r"delivered=%d " % (mx.port, total, len(msgs)),
                   "reuse: show hosts counts the same connections and every "
                   "delivery")
            log = open(d.log_path).read()
            t.is_(len(re.findall(r"delivery \d+: success: 127\.0\.0\.1_"
                                 r"accepted_message", log)), len(msgs),
                  "reuse: one success line per message")
        finally:
            d.stop()


def domains_on_one_host_share_connections(t):
    with mtapeer.MtaPeer(domains=["a.test", "b.test"]) as mx:
        d = sqtest.Daemon(t, extra=route_conf(
            mx.port, ("a.test", "b.test"), "remote host-concurrency 2\n"))
        d.start()
        try:
            before = connections(mx)[0]
            msgs = paused_send(t, d, N, ("x@a.test", "y@b.test"),
                               "two domains")
            got = all_delivered(t, mx, msgs, "two domains")
            t.is_(sorted(set(r for m in got for r in m.rcpts)),
                  ["x@a.test", "y@b.test"], "two domains: both domains' "
                  "recipients reached the host")
            total, most = connections(mx, before)
            t.ok(1 <= total <= 2, "two domains: %d connections for both: "
                 "one host, one pool" % total, mx.log_tail())
        finally:
            d.stop()


def limit_case(t, limit_line, limit, name):
    with mtapeer.MtaPeer() as mx:
        d = sqtest.Daemon(t, extra=route_conf(mx.port, extra=limit_line))
        d.start()
        try:
            msgs = paused_send(t, d, N, "x@example.net", name)
            all_delivered(t, mx, msgs, name)
            total, most = connections(mx)
            t.ok(1 <= most <= limit, "%s: at most %d connections open at "
                 "once (Postfix saw %d)" % (name, limit, most), mx.log_tail())
        finally:
            d.stop()


def concurrency_limits(t):
    limit_case(t, "remote host-concurrency 2\n", 2, "host-concurrency 2")
    limit_case(t, "remote concurrency 1\n", 1, "concurrency 1")


def the_global_limit_closes_idle_connections_for_others(t):
    # One connection in all: mail to the second host needs the idle one to
    # the first closed, not left until it times out by itself.
    with mtapeer.MtaPeer(domains=["a.test"]) as a, \
            mtapeer.MtaPeer(domains=["b.test"]) as b:
        d = sqtest.Daemon(t, extra="remote concurrency 1\n" +
                          route_conf(a.port, ("a.test",)) +
                          route_conf(b.port, ("b.test",)))
        d.start()
        try:
            ma = send_many(t, d, 3, "x@a.test", "first host")
            all_delivered(t, a, ma, "first host")
            mb = send_many(t, d, 3, "y@b.test", "second host")
            all_delivered(t, b, mb, "second host")
            d.wait_for_log(r"delivery \d+: success: ", count=6)
            t.unlike(open(d.log_path).read(), r"deferral:",
                     "one connection in all: no deferral on the way")
        finally:
            d.stop()


def pipelining_sends_the_envelope_at_once(t):
    # A server that offers PIPELINING and then answers nothing: what the
    # client sent before any reply is MAIL, both RCPTs and DATA.
    peer = hp.HostilePeer([hp.Send(b"220 pipe.test ESMTP\r\n"),
                           hp.Expect(b"EHLO", b"250-pipe.test\r\n"
                                     b"250 PIPELINING\r\n"),
                           hp.Drain(3)], name="pipelining").start()
    try:
        d = sqtest.Daemon(t, extra=route_conf(peer.port)).start()
        try:
            code, text = d.send(make_message("pipelined"),
                                rcpts=("a@example.net", "b@example.net"))
            t.is_(code, 250, "PIPELINING: accepted", text)
            conns = peer.wait_connections(1)
            sent = conns[0].received if conns else b""
            after = sent.split(b"\r\n", 1)[-1]
            t.ok(re.match(br"MAIL FROM:<sender@example\.test>[^\r]*\r\n"
                          br"RCPT TO:<a@example\.net>\r\n"
                          br"RCPT TO:<b@example\.net>\r\nDATA\r\n$", after),
                 "PIPELINING: MAIL, both RCPTs and DATA before any reply",
                 sent)
            d.wait_for_log(r"delivery \d+: deferral: ", count=2)
            t.ok(True, "PIPELINING: a server that falls silent is a "
                 "deferral for both")
        finally:
            d.stop()
    finally:
        peer.stop()


def no_pipelining_one_command_at_a_time(t):
    with mtapeer.MtaPeer(no_pipelining=True) as mx:
        d = sqtest.Daemon(t, extra=route_conf(mx.port)).start()
        try:
            msg = make_message("no pipelining")
            code, text = d.send(msg, rcpts=("a@example.net", "b@example.net",
                                            "c@example.net"))
            t.is_(code, 250, "no PIPELINING: accepted", text)
            got = all_delivered(t, mx, [msg], "no PIPELINING")
            if got:
                t.is_(sorted(got[0].rcpts), ["a@example.net", "b@example.net",
                                             "c@example.net"],
                      "no PIPELINING: three recipients, one transaction")
            t.unlike(mx.log(), r"improper command pipelining",
                     "no PIPELINING: Postfix saw no command sent early")
        finally:
            d.stop()


def an_idle_connection_the_server_closed(t):
    # Postfix drops a client idle for 2 s ("421 4.4.2 ... timeout").
    with mtapeer.MtaPeer(main_extra="smtpd_timeout = 2s\n") as mx:
        d = sqtest.Daemon(t, extra=route_conf(mx.port)).start()
        try:
            first = send_many(t, d, 1, "x@example.net", "before the timeout")
            all_delivered(t, mx, first, "before the timeout")
            mx.wait_log(r"timeout after END-OF-MESSAGE|disconnect from",
                        timeout=20)
            second = send_many(t, d, 1, "x@example.net", "after the timeout")
            got = mx.wait_messages(2, timeout=30)
            t.ok(len(got) == 2 and any(m.body.endswith(second[0])
                                       for m in got),
                 "after the server closed the idle connection: delivered "
                 "on a new one", mx.log_tail())
            t.unlike(open(d.log_path).read(), r"deferral:",
                     "no deferral for the closed connection")
        finally:
            d.stop()


def main():
    t = sqtest.Tap()
    sqtest.run(t, [
        messages_share_connections,
        domains_on_one_host_share_connections,
        concurrency_limits,
        the_global_limit_closes_idle_connections_for_others,
        pipelining_sends_the_envelope_at_once,
        no_pipelining_one_command_at_a_time,
        an_idle_connection_the_server_closed,
    ])


if __name__ == "__main__":
    main()
