#!/usr/bin/env python3
"""
Remote routes as lka sees them, against a real DNS server (unbound on
loopback, regress/e2e/dnspeer.py): `sqmailctl show routes` lists the route
lines of sqmail.conf, and `show routes DOMAIN` shows where mail for a
domain would go: MX hosts by preference with equal preferences shuffled,
implicit MX, null MX and NXDOMAIN as permanent failures, an MX pointing
back at us, a route to a host name (its addresses only, no MX) or to an
address literal.  Routed domains take mail from anyone; the default route
("*") does not open a relay.  The addresses are from 203.0.113.0/24
(TEST-NET-3): a test machine must not have them (some have 192.0.2.x,
which the self check rightly takes for us).
"""
import os
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
import dnspeer

RECORDS = [
    "pref.test. MX 20 b.mx.test.",
    "pref.test. MX 10 a.mx.test.",
    "pref.test. MX 30 c.mx.test.",
    "a.mx.test. A 203.0.113.1",
    "b.mx.test. A 203.0.113.2",
    "b.mx.test. AAAA 2001:db8:5::2",
    "c.mx.test. A 203.0.113.3",
    "equal.test. MX 10 e1.mx.test.",
    "equal.test. MX 10 e2.mx.test.",
    "equal.test. MX 10 e3.mx.test.",
    "e1.mx.test. A 203.0.113.11",
    "e2.mx.test. A 203.0.113.12",
    "e3.mx.test. A 203.0.113.13",
    "implicit.test. A 203.0.113.20",
    "verified.test. A 203.0.113.21",
    "nullmx.test. MX 0 .",
    "self.test. MX 10 mx.sqtest.test.",
    "mx.sqtest.test. A 203.0.113.99",
    "backup.test. MX 5 a.mx.test.",
    "backup.test. MX 10 mx.sqtest.test.",
    "relayhost.test. A 203.0.113.50",
    "relayhost.test. MX 10 a.mx.test.",
]

ROUTES = """
dns servers "{dns}"
domain "routed.test" {{
	route "relayhost.test:2525"
}}
domain ".lit.test" {{
	route "[203.0.113.77]"
}}
domain "secure.test" {{
	route "[203.0.113.78]:465" smtps auth "relayuser" "hidden"
	tls fingerprint "SHA256:{fp}"
}}
domain "verified.test" {{
	tls verify
}}
"""


def show(d, *args):
    rc, out, err = d.ctl("show", "routes", *args)
    return rc, [l for l in out.splitlines() if l], err


def expect_lines(t, d, domain, want, name):
    """show routes DOMAIN succeeds and prints exactly want."""
    rc, lines, err = show(d, domain)
    t.is_((rc, lines), (0, want), name, err)


def expect_refused(t, d, domain, reason, name):
    """show routes DOMAIN exits 1 with a reason matching the pattern."""
    rc, lines, err = show(d, domain)
    t.is_(rc, 1, "%s: refused" % name)
    t.like(err, reason, "%s: says why" % name)


def hosts(lines):
    return [l.split()[1] for l in lines if l.startswith("host ")]


# show routes DOMAIN: exactly these lines.
EXACT = [
    ("implicit.test", ["implicit.test via implicit-mx",
                       "host implicit.test pref 0 addr 203.0.113.20 port 25"],
     "no MX: implicit MX, the domain's own address"),
    ("routed.test", ["routed.test via route",
                     "host relayhost.test pref 0 addr 203.0.113.50 port 2525"],
     "route to a host: its A record and the route's port, not its MX"),
    ("sub.lit.test", ["sub.lit.test via route",
                      "host [203.0.113.77] pref 0 addr 203.0.113.77 port 25"],
     "route to an address literal: no DNS, the literal is the host"),
    ("example.test", ["example.test local"], "a local domain"),
    ("secure.test", ["secure.test via route",
                     "tls fingerprint " + "ab" * 32 + " smtps auth relayuser",
                     "host [203.0.113.78] pref 0 addr 203.0.113.78 port 465"],
     "route options and tls policy shown, never the secret"),
    ("verified.test", ["verified.test via implicit-mx", "tls verify",
                       "host verified.test pref 0 addr 203.0.113.21 port 25"],
     "a tls-only block keeps its MX hosts"),
]


def routes_print_exactly(t, d, dns):
    for domain, want, name in EXACT:
        expect_lines(t, d, domain, want, name)


def configured_routes_are_listed(t, d, dns):
    rc, lines, err = show(d)
    t.is_(rc, 0, "show routes exits 0", err)
    t.ok("dns servers %s" % dns.server in lines, "the dns servers shown",
         lines)
    t.ok("route routed.test relayhost.test:2525" in lines,
         "route with host:port listed", lines)
    t.ok("route .lit.test [203.0.113.77]:25" in lines,
         "address literal listed with the default port", lines)


def mx_hosts_come_in_preference_order(t, d, dns):
    rc, lines, err = show(d, "pref.test")
    t.is_(rc, 0, "pref.test resolves", err)
    t.is_(lines[0] if lines else None, "pref.test via mx", "via mx")
    t.is_(hosts(lines), ["a.mx.test", "b.mx.test", "b.mx.test",
                         "c.mx.test"], "hosts by preference, each address")
    t.ok("host b.mx.test pref 20 addr 2001:db8:5::2 port 25" in lines and
         "host b.mx.test pref 20 addr 203.0.113.2 port 25" in lines,
         "IPv6 and IPv4 addresses of a host", lines)


def equal_preferences_are_shuffled(t, d, dns):
    orders = set()
    for _ in range(30):
        rc, lines, err = show(d, "equal.test")
        if rc != 0:
            break
        orders.add(tuple(hosts(lines)))
    t.is_(rc, 0, "equal.test resolves", err)
    t.ok(all(sorted(o) == ["e1.mx.test", "e2.mx.test", "e3.mx.test"]
             for o in orders), "every host every time", orders)
    t.ok(len(orders) > 1, "more than one order in 30 lookups", orders)


def null_mx_and_nxdomain_are_permanent(t, d, dns):
    expect_refused(t, d, "nullmx.test",
                   r"(?i)null mx|accept no mail|does not accept", "null MX")
    expect_refused(t, d, "nosuch.test", r"no such domain", "NXDOMAIN")


def mx_pointing_at_us_is_a_loop(t, d, dns):
    expect_refused(t, d, "self.test", r"points back at us", "MX at us only")
    rc, lines, err = show(d, "backup.test")
    t.is_(rc, 0, "we are a backup MX: the better host stays", err)
    t.is_(hosts(lines), ["a.mx.test"], "only the host better than us")


def bad_domains_are_refused(t, d, dns):
    expect_refused(t, d, "bad..name", r"not a domain name",
                   "not a domain name")
    rc, lines, err = show(d, "a.test", "b.test")
    t.is_(rc, 64, "two domains: usage error")


def expect_rcpts(t, d, rcpts):
    """One transaction from an outsider: each (rcpt, code, name)."""
    s = d.smtp()
    try:
        s.ehlo()
        code, _ = s.mail("someone@elsewhere.test")
        t.is_(code, 250, "MAIL from an outsider")
        for rcpt, want, name in rcpts:
            code, text = s.rcpt(rcpt)
            t.is_(code, want, name, text)
    finally:
        s.close()


def routed_domains_take_mail_from_anyone(t, d, dns):
    expect_rcpts(t, d, [
        ("user@routed.test", 250, "RCPT to a routed domain accepted"),
        ("user@sub.lit.test", 250, "RCPT to a routed subdomain accepted"),
        ("user@pref.test", 554, "RCPT elsewhere: still no relay")])


def default_route_does_not_open_a_relay(t, d, dns):
    d2 = sqtest.Daemon(t, extra='dns servers "%s"\n' % dns.server,
                       domains='domain "*" {{\n\troute "[203.0.113.88]:26"\n'
                       '}}\n').start()
    try:
        expect_rcpts(t, d2, [
            ("user@pref.test", 554, "default route: relaying still refused"),
            ("you@example.test", 250, "local mail still local")])
        expect_lines(t, d2, "pref.test", [
            "pref.test via route",
            "host [203.0.113.88] pref 0 addr 203.0.113.88 port 26"],
            "default route taken for any other domain")
    finally:
        d2.stop()


def main():
    t = sqtest.Tap()
    try:
        dns = dnspeer.DnsPeer(RECORDS).start()
    except dnspeer.DnsPeerError as e:
        t.bail_out("no DNS server: %s" % e)
    try:
        d = sqtest.Daemon(t, extra=ROUTES.format(dns=dns.server,
                                                 fp="ab" * 32)).start()
        sqtest.run(t, [
            configured_routes_are_listed,
            mx_hosts_come_in_preference_order,
            equal_preferences_are_shuffled,
            routes_print_exactly,
            null_mx_and_nxdomain_are_permanent,
            mx_pointing_at_us_is_a_loop,
            bad_domains_are_refused,
            routed_domains_take_mail_from_anyone,
            default_route_does_not_open_a_relay,
        ], d, dns)
    finally:
        dns.stop()


if __name__ == "__main__":
    main()
