#!/usr/bin/env python3
"""
Remote delivery by the mta process to a real Postfix on loopback
(regress/e2e/mtapeer.py), routed by sqmail.conf `route` lines and, for
the MX cases, a real DNS server (unbound, regress/e2e/dnspeer.py):
several recipients of one message in one transaction, the message byte
for byte, per-recipient results (a 5xx RCPT bounces with the remote text
in QSBMF, a 4xx RCPT stays queued), a host that cannot be reached makes
way for the next address, STARTTLS whenever offered (opportunistic) and
plaintext again when the handshake fails, the tls policies of a domain
(verify against a CA, fingerprint, required, none), SMTPS routes and
AUTH to a relay (never without TLS, no secret logged), CRAM-MD5 when
it is all a relay offers or when the route says plaintext (no TLS), the
bounce route
for null-sender mail (to Postfix, and to a second sqmaild that gets
nothing else), a 1 MB message's bounce within bounce max-size, a domain's own queue lifetime, delivery by MX to
port 25 with the first preference unreachable, an MX pointing back at us,
a refused greeting is a
deferral, 8-bit content
to a server without 8BITMIME and a message over the server's SIZE bounce
with their reasons, and a null MX or a domain that does not exist
bounces.  Log lines in qmail-send's format.
"""
import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
import dnspeer
import mtapeer
import certs
from sqtest import make_message

SENDER = "sender@example.test"


def route_conf(port, dns=None, host="[127.0.0.1]"):
    conf = 'domain "example.net" {\n\troute "%s:%d"\n}\n' % (host, port)
    if dns is not None:
        conf += 'dns servers "%s"\n' % dns.server
    return conf


def bounces(d, pattern):
    """Bounces in the sender's Maildir whose text matches pattern."""
    return [m for m in d.wait_for_maildir(1, pred=lambda m: re.search(
        pattern, m.data.decode("utf-8", "replace")))
        if re.search(pattern, m.data.decode("utf-8", "replace"))]


def one_transaction_for_several_recipients(t, d, mx, dns):
    msg = make_message("to three", body="line one\n.starts with a dot\n")
    code, text = d.send(msg, rcpts=("a@example.net", "b@example.net",
                                    "bad@example.net"))
    t.is_(code, 250, "accepted for three remote recipients", text)
    got = mx.wait_messages(1)
    t.is_(len(got), 1, "one message at the peer")
    if not got:
        return
    m = got[0]
    t.is_(sorted(m.rcpts), ["a@example.net", "b@example.net"],
          "in one transaction, the refused recipient left out")
    t.is_(m.sender, SENDER, "envelope sender kept")
    ours, _, rest = m.body.partition(b"\n\n")
    t.ok(m.body.startswith(b"Received: from ") and
         m.body.endswith(msg), "our Received header, then the message "
         "byte for byte (dot-stuffing undone by the peer)",
         sqtest.bytes_diff(m.body[-len(msg):], msg))
    d.wait_for_log(r"delivery \d+: success: 127\.0\.0\.1_accepted_message"
                   r"\./Remote_host_said:_250_")
    t.ok(True, "success logged as qmail-send does")


def a_refused_recipient_bounces_with_the_remote_text(t, d, mx, dns):
    got = bounces(d, r"bad@example\.net")
    t.ok(len(got) >= 1, "a bounce came back to the sender")
    if got:
        text = got[0].data.decode("utf-8", "replace")
        t.like(text, r"Remote host said: 550 5\.1\.1 <bad@example\.net>",
               "it quotes the remote host's reply")
        t.like(text, r"(?m)^<bad@example\.net>:", "QSBMF recipient block")
    d.wait_for_log(r"delivery \d+: failure: 127\.0\.0\.1_does_not_like_it"
                   r"\./Remote_host_said:_550_5\.1\.1_")
    t.ok(True, "failure logged as qmail-send does")


def a_deferred_recipient_stays_queued(t, d, mx, dns):
    code, text = d.send(make_message("later"), rcpts=("later@example.net",))
    t.is_(code, 250, "accepted", text)
    d.wait_for_log(r"delivery \d+: deferral: .*451_4\.3\.0_")
    rc, out, err = d.ctl("show", "queue")
    q = [e for e in sqtest.parse_queue(out)
         if e.get("rcpt") == "later@example.net"]
    t.ok(len(q) == 1 and "451" in q[0]["error"],
         "show queue lists it with the remote error", out)


def show_hosts_reports_each_address(t, d, mx, dns):
    rc, out, err = d.ctl("show", "hosts")
    t.is_(rc, 0, "show hosts exits 0", err)
    t.like(out, r"(?m)^host=127\.0\.0\.1 port=%d name=\[127\.0\.0\.1\] "
           r"sessions=[01] connections=[1-9]\d* delivered=[1-9]\d* last=\d+ "
           r"tls=none error=-$" % mx.port,
           "one line for the peer: connections (one may be idle, kept for "
           "reuse), deliveries, TLS, and no host error (a recipient's 451 is "
           "the recipient's, in show queue)")


def expect_at_peer(t, d, peer, rcpt, name):
    """A new message to rcpt is accepted and reaches the peer intact."""
    msg = make_message(name)
    code, text = d.send(msg, rcpts=(rcpt,))
    t.is_(code, 250, "%s: accepted" % name, text)
    got = peer.wait_messages(1)
    t.ok(any(m.body.endswith(msg) for m in got), "%s: delivered" % name,
         got)


def an_unreachable_address_makes_way_for_the_next(t, dns, mx):
    # relay.test has two addresses: nothing listens on 127.0.0.2.
    d = sqtest.Daemon(t, extra=route_conf(mx.port, dns, "relay.test"))
    d.start()
    try:
        expect_at_peer(t, d, mx, "c@example.net",
                       "through the address that answers")
    finally:
        d.stop()


def peer_case(t, dns, peer_opts, msg, rcpt, log_pattern, bounce_pattern,
              name):
    """A peer configured so; msg to rcpt; the log and bounce expected."""
    with mtapeer.MtaPeer(**peer_opts) as mx:
        d = sqtest.Daemon(t, extra=route_conf(mx.port, dns))
        d.start()
        try:
            code, text = d.send(msg, rcpts=(rcpt,))
            t.is_(code, 250, "%s: accepted" % name, text)
            d.wait_for_log(log_pattern)
            t.ok(True, "%s: logged" % name)
            if bounce_pattern is not None:
                t.ok(bounces(d, bounce_pattern), "%s: bounced with the "
                     "reason" % name)
            t.is_(mx.messages(), [], "%s: nothing reached the peer" % name)
        finally:
            d.stop()


def tls_case(t, dns, peer_opts, tls, log_pattern, name):
    """A peer configured so: the message arrives, with TLS or without."""
    with mtapeer.MtaPeer(**peer_opts) as mx:
        d = sqtest.Daemon(t, extra=route_conf(mx.port, dns))
        d.start()
        try:
            msg = make_message(name)
            code, text = d.send(msg, rcpts=("x@example.net",))
            t.is_(code, 250, "%s: accepted" % name, text)
            got = mx.wait_messages(1)
            t.ok(len(got) == 1 and got[0].body.endswith(msg),
                 "%s: delivered, bytes exact" % name, got)
            if got:
                t.is_(bool(got[0].tls), tls, "%s: %s" % (
                    name, "over TLS" if tls else "in plaintext"),
                    got[0].received)
            d.wait_for_log(log_pattern)
            t.ok(True, "%s: logged" % name)
        finally:
            d.stop()


def starttls_whenever_offered(t, dns, mx):
    tls_case(t, dns, dict(tls="starttls"), True,
             r"success: 127\.0\.0\.1_TLS_transmitted_message_accepted_\("
             r"opportunistic,_TLSv1\.[23],_\S+\)\./Remote_host_said:_250_",
             "STARTTLS offered")
    tls_case(t, dns, dict(require_tls=True), True,
             r"success: 127\.0\.0\.1_TLS_transmitted", "TLS required by "
             "the server")


def a_failed_handshake_falls_back_to_plaintext(t, dns, mx):
    # The peer offers STARTTLS but speaks only TLS 1.0, which ours refuses.
    tls_case(t, dns, dict(tls="starttls", main_extra="smtpd_tls_protocols "
                          "= !SSLv2, !SSLv3, !TLSv1.1, !TLSv1.2, !TLSv1.3\n"),
             False, r"success: 127\.0\.0\.1_accepted_message\.",
             "TLS 1.0 only")


def policy_case(t, dns, peer_opts, tls_line, delivered, tls, log_pattern,
                name, route_opts="", smtps=False, domain="example.net",
                auth_user=None, sasl_method=None):
    """
    A domain with this tls line (and these options on its route line), to
    a peer configured so: delivered or not, over TLS or not, logged so.
    """
    pki = certs.make_pki()
    with mtapeer.MtaPeer(**peer_opts) as mx:
        d = sqtest.Daemon(t, extra="")
        ca = d.write("ca.pem", pki.ca.pem)
        d.write_conf(sqtest.DEFAULT_CONF, extra='tls ca "%s"\n'
                     'domain "%s" {\n\troute "[127.0.0.1]:%d"%s\n'
                     '\t%s\n}\n' % (ca, domain, mx.smtps_port if smtps
                                     else mx.port, route_opts, tls_line))
        d.start()
        try:
            msg = make_message(name)
            code, text = d.send(msg, rcpts=("x@" + domain,))
            t.is_(code, 250, "%s: accepted" % name, text)
            d.wait_for_log(log_pattern)
            t.ok(True, "%s: logged" % name)
            got = mx.wait_messages(1, timeout=2) if delivered else \
                mx.messages()
            if not delivered:
                rc, out, err = d.ctl("show", "hosts")
                t.like(out, r"(?m)^host=127\.0\.0\.1 port=\d+ .* error="
                       r"[^-]", "%s: show hosts names the error" % name)
            t.is_(len(got), 1 if delivered else 0, "%s: %s" % (
                name, "delivered" if delivered else "not delivered"))
            if delivered and got:
                t.is_(bool(got[0].tls), tls, "%s: %s" % (
                    name, "over TLS" if tls else "in plaintext"))
                if auth_user is not None:
                    t.is_(got[0].auth_user, auth_user, "%s: AUTH as %s" % (
                        name, auth_user))
                if sasl_method is not None:
                    t.is_(got[0].sasl_method, sasl_method, "%s: AUTH %s" % (
                        name, sasl_method))
            t.ok("sekrit" not in open(d.log_path).read(),
                 "%s: no secret in the log" % name)
        finally:
            d.stop()


def smtps_and_auth_on_routes(t, dns, mx):
    auth = {"relayuser": "sekrit"}
    policy_case(t, dns, dict(tls="smtps"), "", True, True,
                r"success: 127\.0\.0\.1_TLS_transmitted_message_accepted_",
                "smtps route", route_opts=" smtps", smtps=True)
    policy_case(t, dns, dict(tls="starttls", auth=auth), "", True, True,
                r"success: 127\.0\.0\.1_TLS_transmitted", "AUTH after "
                "STARTTLS", route_opts=' auth "relayuser" "sekrit"',
                domain="far.test", auth_user="relayuser", sasl_method="PLAIN")
    policy_case(t, dns, dict(tls="starttls", auth=auth, main_extra=
                             "smtpd_sasl_mechanism_filter = login\n"),
                "", True, True, r"success: 127\.0\.0\.1_TLS_transmitted",
                "AUTH LOGIN when PLAIN is not offered",
                route_opts=' auth "relayuser" "sekrit"', domain="far.test",
                auth_user="relayuser", sasl_method="LOGIN")
    policy_case(t, dns, dict(tls="starttls", auth=auth, main_extra=
                             "smtpd_sasl_mechanism_filter = cram-md5\n"),
                "", True, True, r"success: 127\.0\.0\.1_TLS_transmitted",
                "AUTH CRAM-MD5 when it is all the relay offers",
                route_opts=' auth "relayuser" "sekrit"', domain="far.test",
                auth_user="relayuser", sasl_method="CRAM-MD5")
    policy_case(t, dns, dict(auth=auth), "", True, False,
                r"success: 127\.0\.0\.1_accepted_message", "AUTH without "
                "TLS on a plaintext route: CRAM-MD5 first",
                route_opts=' auth "relayuser" "sekrit" plaintext',
                domain="far.test", auth_user="relayuser",
                sasl_method="CRAM-MD5")
    policy_case(t, dns, dict(tls="smtps", auth=auth), "", True, True,
                r"success: 127\.0\.0\.1_TLS_transmitted", "AUTH over smtps",
                route_opts=' smtps auth "relayuser" "sekrit"', smtps=True,
                domain="far.test", auth_user="relayuser")
    policy_case(t, dns, dict(tls="starttls", auth=auth), "", False, None,
                r"deferral: AUTH_as_relayuser_failed:_127\.0\.0\.1_does_not_"
                r"like_it\._Remote_host_said:_535_", "AUTH, a wrong secret",
                route_opts=' auth "relayuser" "wrong"', domain="far.test")
    policy_case(t, dns, dict(auth=auth), "", False, None,
                r"deferral: 127\.0\.0\.1:_AUTH_needs_TLS", "AUTH, no TLS",
                route_opts=' auth "relayuser" "sekrit"', domain="far.test")


def tls_policies_per_domain(t, dns, mx):
    pki = certs.make_pki()
    policy_case(t, dns, dict(tls="starttls"), "tls verify", True, True,
                r"success: 127\.0\.0\.1_TLS_transmitted_message_accepted_"
                r"\(verify,_TLSv1\.[23],", "verify, chain from the CA")
    policy_case(t, dns, dict(tls="starttls", cert=pki.selfsigned),
                "tls verify", False, None, r"deferral: 127\.0\.0\.1:_TLS_"
                r"verify:_", "verify, a self-signed certificate")
    policy_case(t, dns, dict(tls="starttls"), 'tls fingerprint "SHA256:%s"'
                % pki.server.fingerprint(colons=True), True, True,
                r"_\(fingerprint,_TLSv1\.[23],", "fingerprint, pinned")
    policy_case(t, dns, dict(tls="starttls"), 'tls fingerprint "%s"'
                % pki.client.fingerprint(), False, None,
                r"deferral: 127\.0\.0\.1:_TLS_fingerprint:_the_certificate_"
                r"is_not_the_pinned_one", "fingerprint, another certificate")
    policy_case(t, dns, dict(), "tls required", False, None,
                r"deferral: 127\.0\.0\.1:_TLS_required,_but_STARTTLS_is_not_"
                r"offered", "required, no STARTTLS offered")
    policy_case(t, dns, dict(tls="starttls"), "tls none", True, False,
                r"success: 127\.0\.0\.1_accepted_message\.",
                "none, STARTTLS offered")


def bounces_take_the_bounce_route(t, dns, mx):
    with mtapeer.MtaPeer(domains=["far.test"], reject={
            "bad@far.test": "550 5.1.1 no such user"}) as main, \
            mtapeer.MtaPeer(domains=["sender.test"]) as bmx:
        d = sqtest.Daemon(t, extra='dns servers "%s"\nrelay from { '
                          '127.0.0.1/32 }\nbounce route "[127.0.0.1]:%d"\n'
                          'domain "far.test" {\n\troute "[127.0.0.1]:%d"\n}\n'
                          % (dns.server, bmx.port, main.port))
        d.start()
        try:
            rc, out, err = d.ctl("show", "routes")
            t.ok("bounce route [127.0.0.1]:%d" % bmx.port in out.splitlines(),
                 "show routes lists the bounce route", out)
            code, text = d.send(make_message("to be bounced"),
                                sender="someone@sender.test",
                                rcpts=("bad@far.test",))
            t.is_(code, 250, "accepted from a relay client", text)
            got = bmx.wait_messages(1)
            t.ok(len(got) == 1 and got[0].sender == "" and
                 got[0].rcpts == ["someone@sender.test"],
                 "the bounce went by the bounce route, sender <>", got)
            if got:
                t.like(got[0].body.decode("utf-8", "replace"),
                       r"Remote host said: 550 5\.1\.1 <bad@far\.test>",
                       "it is the QSBMF bounce with the remote text")
            t.is_(main.messages(), [], "nothing went to the domain's route")
        finally:
            d.stop()


def the_bounce_route_to_a_second_instance(t, dns, mx):
    # Bounces go to a second sqmaild (s/qmail's "!@" to a bounce host);
    # mail from a real sender to the same domain goes by the domain's
    # own route.
    with mtapeer.MtaPeer(domains=["far.test", "sender.test"], reject={
            "bad@far.test": "550 5.1.1 no such user"}) as peer:
        d2 = sqtest.Daemon(t, domain="sender.test", name="bounces").start()
        d1 = sqtest.Daemon(t, extra='bounce route "[127.0.0.1]:%d"\n'
                           'domain "far.test" {\n\troute "[127.0.0.1]:%d"\n'
                           '}\ndomain "sender.test" {\n\troute '
                           '"[127.0.0.1]:%d"\n}\n' % (d2.port, peer.port,
                                                     peer.port))
        d1.start()
        try:
            code, text = d1.send(make_message("to be bounced"),
                                 sender="sender@sender.test",
                                 rcpts=("bad@far.test",))
            t.is_(code, 250, "second instance: accepted", text)
            got = d2.wait_for_maildir(1)
            t.is_(len(got), 1, "second instance: the bounce reached the "
                  "bounce instance")
            if got:
                t.is_(got[0].return_path, "",
                      "second instance: with the null sender", got[0].error)
                t.like(got[0].data.decode("utf-8", "replace"),
                       r"Remote host said: 550 5\.1\.1 <bad@far\.test>",
                       "second instance: the QSBMF bounce with the remote "
                       "text")
            msg = make_message("not a bounce")
            code, text = d1.send(msg, rcpts=("sender@sender.test",))
            t.is_(code, 250, "second instance: mail from a real sender "
                  "accepted", text)
            normal = peer.wait_messages(1)
            t.ok(len(normal) == 1 and normal[0].body.endswith(msg) and
                 normal[0].sender == "sender@example.test",
                 "second instance: it took the domain's route", normal)
            t.is_(len(d2.messages()), 1, "second instance: nothing but the "
                  "bounce reached the bounce instance")
        finally:
            d1.stop()
            d2.stop()


def a_big_bounce_quotes_at_most_bounce_max_size(t, dns, mx):
    with mtapeer.MtaPeer(reject={"bad@example.net": "550 5.1.1 no such "
                                 "user"}) as peer:
        d = sqtest.Daemon(t, extra="bounce max-size 10K\n" +
                          route_conf(peer.port)).start()
        try:
            big = make_message("one megabyte", ("y" * 99 + "\n") * 10486)
            code, text = d.send(big, rcpts=("bad@example.net",))
            t.is_(code, 250, "a 1 MB message accepted", text)
            got = bounces(d, r"bad@example\.net")
            t.is_(len(got), 1, "the remote 550 bounced it")
            if got:
                data = got[0].data
                t.ok(len(data) <= 10 * 1024 + 4096, "the bounce holds at "
                     "most 10K of it (bounce max-size) plus its own text: "
                     "%d octets" % len(data))
                t.ok(b"Subject: one megabyte" in data and b"y" * 99 in data,
                     "it quotes the start of the original")
        finally:
            d.stop()


def a_domain_lifetime_expires_its_mail(t, dns, mx):
    with mtapeer.MtaPeer(defer={"slow@example.net": "451 4.3.0 not yet"}) \
            as peer:
        d = sqtest.Daemon(t, extra='domain "example.net" {\n\troute '
                          '"[127.0.0.1]:%d"\n\tlifetime 2s\n}\n' % peer.port)
        d.start()
        try:
            code, text = d.send(make_message("short-lived"),
                                rcpts=("slow@example.net",))
            t.is_(code, 250, "accepted", text)
            t.ok(bounces(d, r"(?s)slow@example\.net.*451 4\.3\.0 .*"
                         r"message expired after 0 days"),
                 "after the domain's 2 s lifetime (the global one is 7 "
                 "days) it bounces with the last deferral's text")
        finally:
            d.stop()


def port_free(host, port):
    s = socket.socket()
    # As Postfix binds: connections of an earlier run in TIME_WAIT are fine.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def delivery_by_mx_tries_the_next_preference(t, dns, mx):
    """The first MX refuses connections, the second takes the mail."""
    if not port_free("127.0.0.4", 25):
        t.skip("delivery by MX", "port 25 of 127.0.0.4 is taken here (a "
               "system MTA on all addresses?): MX delivery cannot be tried")
        return
    with mtapeer.MtaPeer(domains=["mxtest.test"], host="127.0.0.4",
                         port=25) as peer:
        d = sqtest.Daemon(t, extra='dns servers "%s"\nrelay from { '
                          '127.0.0.1/32 }\n' % dns.server)
        d.start()
        try:
            expect_at_peer(t, d, peer, "x@mxtest.test",
                           "to the preference 20 host on port 25")
            d.wait_for_log(r"delivery \d+: success: 127\.0\.0\.4_")
            t.ok(True, "logged as delivered by 127.0.0.4")
            code, text = d.send(make_message("to us"),
                                rcpts=("x@selfmx.test",))
            t.is_(code, 250, "accepted for a domain whose MX is us", text)
            t.ok(bounces(d, r"(?s)x@selfmx\.test.*points back at us"),
                 "an MX pointing back at us bounces, saying so")
        finally:
            d.stop()


def a_refused_greeting_is_a_deferral(t, dns, mx):
    peer_case(t, dns, dict(greeting_code=554), make_message("greeting"),
              "x@example.net", r"deferral: Connected_to_127\.0\.0\.1_but_"
              r"the_greeting_failed\./Remote_host_said:_554_", None,
              "554 greeting")


def eight_bit_needs_8bitmime(t, dns, mx):
    peer_case(t, dns, dict(no_8bitmime=True),
              make_message("8bit", body="caf\u00e9\n"), "x@example.net",
              r"failure: .*no_8BITMIME", r"no 8BITMIME", "8-bit")


def a_message_over_the_servers_size_bounces(t, dns, mx):
    peer_case(t, dns, dict(size_limit=2000),
              make_message("big", body="x" * 70 + "\n" * 1 + ("y" * 70 +
                                                              "\n") * 60),
              "x@example.net", r"failure: .*larger_than_the_remote_host",
              r"larger than the remote host accepts", "SIZE")


def null_mx_and_no_such_domain_bounce(t, dns, mx):
    d = sqtest.Daemon(t, extra='dns servers "%s"\nrelay from { '
                      '127.0.0.1/32 }\n' % dns.server)
    d.start()
    try:
        for rcpt, why in (("x@nullmx.test", r"([Nn]ull MX|no mail)"),
                          ("x@nosuch.test", r"no such domain")):
            code, text = d.send(make_message("to " + rcpt), rcpts=(rcpt,))
            t.is_(code, 250, "%s: accepted (relaying client)" % rcpt, text)
            t.ok(bounces(d, r"(?s)" + re.escape(rcpt) + r".*" + why),
                 "%s: bounced, saying why" % rcpt)
    finally:
        d.stop()


def main():
    t = sqtest.Tap()
    try:
        dns = dnspeer.DnsPeer([
            "relay.test. A 127.0.0.2",
            "relay.test. A 127.0.0.1",
            "nullmx.test. MX 0 .",
            "mxtest.test. MX 10 mx1.mxtest.test.",
            "mxtest.test. MX 20 mx2.mxtest.test.",
            "mx1.mxtest.test. A 127.0.0.3",
            "mx2.mxtest.test. A 127.0.0.4",
            "selfmx.test. MX 10 mx.sqtest.test.",
            "mx.sqtest.test. A 127.0.0.5",
        ]).start()
    except dnspeer.DnsPeerError as e:
        t.bail_out("no DNS server: %s" % e)
    try:
        with mtapeer.MtaPeer(
                domains=["example.net"],
                reject={"bad@example.net": "550 5.1.1 no such user"},
                defer={"later@example.net": "451 4.3.0 try later"}) as mx:
            d = sqtest.Daemon(t, extra=route_conf(mx.port, dns),
                              retry_min="300s", retry_max="600s").start()
            sqtest.run(t, [
                one_transaction_for_several_recipients,
                a_refused_recipient_bounces_with_the_remote_text,
                a_deferred_recipient_stays_queued,
                show_hosts_reports_each_address,
            ], d, mx, dns, done=False)
            d.stop()
            mx.reset()
            sqtest.run(t, [
                an_unreachable_address_makes_way_for_the_next,
            ], dns, mx, done=False)
        sqtest.run(t, [
            starttls_whenever_offered,
            a_failed_handshake_falls_back_to_plaintext,
            tls_policies_per_domain,
            smtps_and_auth_on_routes,
            bounces_take_the_bounce_route,
            the_bounce_route_to_a_second_instance,
            a_big_bounce_quotes_at_most_bounce_max_size,
            a_domain_lifetime_expires_its_mail,
            delivery_by_mx_tries_the_next_preference,
            a_refused_greeting_is_a_deferral,
            eight_bit_needs_8bitmime,
            a_message_over_the_servers_size_bounces,
            null_mx_and_no_such_domain_bounce,
        ], dns, None)
    finally:
        dns.stop()


if __name__ == "__main__":
    main()
