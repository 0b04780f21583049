#!/usr/bin/env python3
"""
Delivery by MX, end to end: unbound (dnspeer.py) serves the zones, real
Postfix peers (mtapeer.py) listen on port 25 of 127.0.0.8, 127.0.0.9 and
[::1], and the mta process of sqmaild delivers to whatever lka's lookup
says.  45_routes.t checks the route lka computes; this file checks that
the mail goes there:

  - a host with only an AAAA record (::1) is reached over IPv6, and a
    host with both records over IPv6 first; an MX pointing at ::1 is an
    MX pointing back at us (::1 is one of our addresses, RFC 5321 5.1),
    which bounces saying so;
  - an MX host that is a CNAME (a chain of two) is delivered to the
    address at the end of the chain;
  - the best MX unreachable (nothing listens on 127.0.0.7), the next
    preference takes the mail;
  - every MX unreachable: a deferral whose reason is the last host's
    error, the message stays queued;
  - two MX hosts of the same preference: over 30 messages both get some.

Root only (Postfix's master starts as root and port 25 is privileged):
without root the file skips, saying so.  Port 25 of those addresses must
be free; 127.0.0.6 and 127.0.0.7 must refuse connections on port 25.
"""
import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest                                       # noqa: E402
import dnspeer                                      # noqa: E402
import mtapeer                                      # noqa: E402
from sqtest import make_message                     # noqa: E402

DEAD = ("127.0.0.7", "127.0.0.6")       # nothing listens on port 25
EQUAL_MESSAGES = 30

RECORDS = [
    # AAAA only, and both: reached through route lines (see CONF).
    "six.test. AAAA ::1",
    "both.test. AAAA ::1",
    "both.test. A 127.0.0.8",
    # An MX whose only host has only an AAAA record, ::1.
    "v6mx.test. MX 10 mx6.v6mx.test.",
    "mx6.v6mx.test. AAAA ::1",
    # An MX host that is a CNAME to a CNAME to the real host.
    "cname.test. MX 10 alias.cname.test.",
    "alias.cname.test. CNAME alias2.cname.test.",
    "alias2.cname.test. CNAME real.cname.test.",
    "real.cname.test. A 127.0.0.8",
    # The best MX unreachable, the next one up.
    "fallback.test. MX 10 dead.fallback.test.",
    "fallback.test. MX 20 live.fallback.test.",
    "dead.fallback.test. A 127.0.0.7",
    "live.fallback.test. A 127.0.0.9",
    # Every MX unreachable.
    "unreach.test. MX 10 dead1.unreach.test.",
    "unreach.test. MX 20 dead2.unreach.test.",
    "dead1.unreach.test. A 127.0.0.7",
    "dead2.unreach.test. A 127.0.0.6",
    # Two MX hosts of one preference.
    "equal.test. MX 10 e8.equal.test.",
    "equal.test. MX 10 e9.equal.test.",
    "e8.equal.test. A 127.0.0.8",
    "e9.equal.test. A 127.0.0.9",
]

CONF = """\
dns servers "{dns}"
relay from {{ 127.0.0.1/32 }}
domain "v6route.test" {{
	route "six.test:25"
}}
domain "dualroute.test" {{
	route "both.test:25"
}}
"""

DOMAINS = ["v6route.test", "dualroute.test", "v6mx.test", "cname.test",
           "fallback.test", "unreach.test", "equal.test"]


def port_free(host, port=25):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    # As Postfix binds: connections of an earlier run in TIME_WAIT are fine.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
        return None
    except OSError as e:
        return str(e)
    finally:
        s.close()


def refuses(host, port=25):
    """None when host:port refuses a connection, else what happened."""
    try:
        socket.create_connection((host, port), timeout=5).close()
        return "something accepts connections there"
    except ConnectionRefusedError:
        return None
    except OSError as e:
        return str(e)


def to(peer, domain):
    """The messages peer received for a recipient at domain."""
    return [m for m in peer.messages()
            if any(r.endswith("@" + domain) for r in m.rcpts)]


def wait_to(peer, domain, n, seconds=15):
    """Wait (bounded) for n messages for domain at peer; return them."""
    try:
        sqtest.wait_for("%d message(s) for %s at %r" % (n, domain, peer),
                        lambda: len(to(peer, domain)) >= n, seconds, 0.05)
    except sqtest.WaitTimeout:
        pass
    return to(peer, domain)


def bounces(d, pattern):
    """Bounces in the sender's Maildir whose text matches pattern."""
    def match(m):
        return re.search(pattern, m.data.decode("utf-8", "replace"))
    return [m for m in d.wait_for_maildir(1, pred=match) if match(m)]


def send(t, d, domain, subject):
    msg = make_message(subject)
    code, text = d.send(msg, rcpts=("x@" + domain,))
    t.is_(code, 250, "%s: accepted" % subject, text)
    return msg


def delivered_line(d, since, pattern):
    """The success line of a delivery after log offset since."""
    return d.wait_for_log(r"delivery \d+: success: " + pattern, since)


def aaaa_only_host_over_ipv6(t, d, peers, dns):
    p8, p9, p6 = peers
    since = d.log_mark()
    rc, out, err = d.ctl("show", "routes", "v6route.test")
    t.is_((rc, out), (0, "v6route.test via route\nhost six.test pref 0 "
                      "addr ::1 port 25\n"), "AAAA only: the route host's "
          "one address is ::1", err)
    msg = send(t, d, "v6route.test", "to an AAAA-only host")
    got = wait_to(p6, "v6route.test", 1)
    t.ok(len(got) == 1 and got[0].body.endswith(msg),
         "AAAA only: delivered to the peer on [::1]:25, bytes exact", got)
    if got:
        t.is_(got[0].client[0], "IPv6:::1", "AAAA only: over IPv6 (the "
              "peer saw the client at ::1)", got[0].received)
    t.ok(delivered_line(d, since, r"::1_accepted_message\./Remote_host_"
                        r"said:_250_"), "AAAA only: the log names ::1")


def ipv6_first_for_a_dual_stack_host(t, d, peers, dns):
    p8, p9, p6 = peers
    rc, out, err = d.ctl("show", "routes", "dualroute.test")
    t.is_((rc, out), (0, "dualroute.test via route\n"
                      "host both.test pref 0 addr ::1 port 25\n"
                      "host both.test pref 0 addr 127.0.0.8 port 25\n"),
          "AAAA and A: IPv6 first", err)
    msg = send(t, d, "dualroute.test", "to a dual-stack host")
    got = wait_to(p6, "dualroute.test", 1)
    t.ok(len(got) == 1 and got[0].body.endswith(msg) and
         got[0].client[0] == "IPv6:::1", "AAAA and A: delivered over "
         "IPv6", got, got and got[0].received)
    t.is_(to(p8, "dualroute.test"), [], "AAAA and A: nothing over IPv4")


def mx_at_our_own_ipv6_address_is_a_loop(t, d, peers, dns):
    p8, p9, p6 = peers
    rc, out, err = d.ctl("show", "routes", "v6mx.test")
    t.is_(rc, 1, "MX to an AAAA-only ::1 host: no route")
    t.like(err, r"^sqmailctl: MX for v6mx\.test points back at us "
           r"\(mx6\.v6mx\.test, preference 10\)$", "MX to ::1: it is us "
           "(::1 is our own address), said so")
    send(t, d, "v6mx.test", "to an MX at ::1")
    t.ok(bounces(d, r"(?s)x@v6mx\.test.*points back at us"),
         "MX to ::1: bounced, saying it points back at us")
    t.is_(to(p6, "v6mx.test"), [], "MX to ::1: nothing sent to ::1")


def mx_host_behind_a_cname(t, d, peers, dns):
    p8, p9, p6 = peers
    since = d.log_mark()
    rc, out, err = d.ctl("show", "routes", "cname.test")
    t.is_((rc, out), (0, "cname.test via mx\nhost alias.cname.test pref 10 "
                      "addr 127.0.0.8 port 25\n"), "CNAME: the MX name "
          "with the address at the end of the chain", err)
    msg = send(t, d, "cname.test", "to an MX host that is a CNAME")
    got = wait_to(p8, "cname.test", 1)
    t.ok(len(got) == 1 and got[0].body.endswith(msg), "CNAME: delivered "
         "to 127.0.0.8, bytes exact", got)
    t.ok(delivered_line(d, since, r"127\.0\.0\.8_accepted_message\."),
         "CNAME: the log names 127.0.0.8")


def unreachable_best_mx_makes_way_for_the_next(t, d, peers, dns):
    p8, p9, p6 = peers
    since = d.log_mark()
    rc, out, err = d.ctl("show", "routes", "fallback.test")
    t.is_((rc, out), (0, "fallback.test via mx\n"
                      "host dead.fallback.test pref 10 addr 127.0.0.7 "
                      "port 25\nhost live.fallback.test pref 20 addr "
                      "127.0.0.9 port 25\n"), "fallback: both hosts, by "
          "preference", err)
    msg = send(t, d, "fallback.test", "best MX unreachable")
    got = wait_to(p9, "fallback.test", 1)
    t.ok(len(got) == 1 and got[0].body.endswith(msg), "fallback: delivered "
         "to the preference 20 host", got)
    t.ok(delivered_line(d, since, r"127\.0\.0\.9_accepted_message\."),
         "fallback: the log names 127.0.0.9")
    rc, out, err = d.ctl("show", "hosts")
    t.like(out, r"(?m)^host=127\.0\.0\.7 port=25 name=dead\.fallback\.test "
           r"sessions=0 connections=[1-9]\d* delivered=0 last=\d+ tls=none "
           r"error=127\.0\.0\.7: connect: Connection refused \(#4\.4\.1\)$",
           "fallback: show hosts has the refused connection to 127.0.0.7")


def every_mx_unreachable_is_a_deferral(t, d, peers, dns):
    p8, p9, p6 = peers
    since = d.log_mark()
    send(t, d, "unreach.test", "every MX unreachable")
    what, why = d.delivery_outcome("x@unreach.test", since)
    t.is_(what, "deferral", "unreachable: a deferral", why)
    t.is_(why, "127.0.0.6:_connect:_Connection_refused_(#4.4.1)",
          "unreachable: the reason is the last host's error "
          "(preference 20, 127.0.0.6)")
    q = [e for e in d.queue() or [] if e.get("rcpt") == "x@unreach.test"]
    t.ok(len(q) == 1 and q[0]["state"] == "pending" and q[0]["tries"] >= 1
         and q[0]["error"] == "127.0.0.6: connect: Connection refused "
         "(#4.4.1)", "unreachable: still queued, show queue says why", q)
    t.is_(sum(len(to(p, "unreach.test")) for p in peers), 0,
          "unreachable: no peer got it")


def equal_preferences_share_the_mail(t, d, peers, dns):
    """
    Each message is looked up on its own and its equal-preference hosts
    shuffled (RFC 5321 5.1): with EQUAL_MESSAGES messages, that all go
    to one of the two hosts by chance has the probability
    2 * 2**-EQUAL_MESSAGES (about 2e-9 for 30).
    """
    p8, p9, p6 = peers
    for i in range(EQUAL_MESSAGES):
        code, text = d.send(make_message("equal %d" % i),
                            rcpts=("x@equal.test",))
        if code != 250:
            break
    t.is_(code, 250, "equal: %d messages accepted" % EQUAL_MESSAGES, text)
    try:
        sqtest.wait_for("%d messages for equal.test" % EQUAL_MESSAGES,
                        lambda: len(to(p8, "equal.test")) +
                        len(to(p9, "equal.test")) >= EQUAL_MESSAGES, 30,
                        0.1)
    except sqtest.WaitTimeout:
        pass
    n8, n9 = len(to(p8, "equal.test")), len(to(p9, "equal.test"))
    t.is_(n8 + n9, EQUAL_MESSAGES, "equal: every message delivered once",
          "127.0.0.8 got %d, 127.0.0.9 got %d" % (n8, n9))
    t.ok(n8 >= 1 and n9 >= 1, "equal: both hosts got some (%d and %d)"
         % (n8, n9))


def main():
    t = sqtest.Tap()
    if os.getuid() != 0:
        t.skip_all("delivery by MX needs port 25 and Postfix peers, which "
                   "need root")
    for host in ("127.0.0.8", "127.0.0.9", "::1"):
        why = port_free(host)
        if why is not None:
            t.bail_out("port 25 of %s cannot be bound: %s" % (host, why))
    for host in DEAD:
        why = refuses(host)
        if why is not None:
            t.bail_out("%s:25 should refuse connections: %s" % (host, why))
    try:
        dns = dnspeer.DnsPeer(RECORDS).start()
    except dnspeer.DnsPeerError as e:
        t.bail_out("no DNS server: %s" % e)
    try:
        with mtapeer.MtaPeer(domains=DOMAINS, host="127.0.0.8", port=25,
                             name="p8") as p8, \
                mtapeer.MtaPeer(domains=DOMAINS, host="127.0.0.9", port=25,
                                name="p9") as p9, \
                mtapeer.MtaPeer(domains=DOMAINS, host="::1", port=25,
                                name="p6") as p6:
            peers = (p8, p9, p6)
            for p in peers:
                t.failure_hooks.append(p.diag_lines)
            d = sqtest.Daemon(t, extra=CONF.format(dns=dns.server),
                              retry_min="300s", retry_max="600s").start()
            sqtest.run(t, [
                aaaa_only_host_over_ipv6,
                ipv6_first_for_a_dual_stack_host,
                mx_at_our_own_ipv6_address_is_a_loop,
                mx_host_behind_a_cname,
                unreachable_best_mx_makes_way_for_the_next,
                every_mx_unreachable_is_a_deferral,
                equal_preferences_share_the_mail,
            ], d, peers, dns, done=False)
            d.stop()
    except mtapeer.MtaPeerError as e:
        t.ok(False, "the Postfix peers start", e)
    finally:
        dns.stop()
    t.done_testing()


if __name__ == "__main__":
    main()
