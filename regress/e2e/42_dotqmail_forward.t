#!/usr/bin/env python3
"""
Forward lines of .qmail files (dot-qmail(5)), started as root so that the
agents run as two real users: a forward re-injects the message with the
original sender and a Delivered-To line for the forwarding address; a
Maildir line and a forward report did_1+1+0/; an owner file makes the
forward's sender local-owner@host; two addresses forwarding to each other
bounce with #5.4.6 and nothing is delivered twice; a forward to a remote
domain is queued as a remote delivery; an invalid forward address bounces.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
import dotqmailtest as dq
from dotqmailtest import DOM, addr, expect_result

USER_A = "sqfwda"
USER_B = "sqfwdb"
SENDER = "%s-bounces@%s" % (USER_A, DOM)


def send(t, d, subject, rcpt, sender=SENDER):
    return dq.send(t, d, subject, rcpt, sender)


def mine(m):
    msgid = sqtest.header(m, "Message-ID")
    return lambda x: sqtest.header(x.data, "Message-ID") == msgid


def forwarded(t, box, m, name, dt, sender=SENDER, first=None):
    """The message in box once, with Return-Path, Delivered-To lines."""
    got = [x for x in sqtest.wait_for_maildir(box, 1, pred=mine(m))
           if mine(m)(x)]
    if not t.ok(len(got) == 1, "%s: delivered once in %s" % (name, box),
                repr(got)):
        return None
    x = got[0]
    head = x.data.split(b"\nReceived:", 1)[0].decode("utf-8", "replace")
    want = "Return-Path: <%s>\nDelivered-To: %s\nDelivered-To: %s" % (
        sender, first, dt)
    t.is_(head, want, "%s: Return-Path <%s>, our Delivered-To, then the "
          "forwarder's Delivered-To %s" % (name, sender, dt))
    body = m.split(b"\n\n", 1)[1]
    t.ok(x.data.endswith(body), "%s: the body is intact" % name)
    return x


def forward_to_the_other_user(t, d, a, b):
    a.write(".qmail-fwd", "&%s\n" % addr(USER_B))
    mark = d.log_mark()
    m = send(t, d, "fwd", addr(USER_A, "fwd"))
    expect_result(t, d, mark, addr(USER_A, "fwd"), "success",
                  r"^did_0\+1\+0/$", "a forward line")
    t.ok(d.wait_for_log(r"^forward msg \d+ qp \d+ from %s$" % re.escape(
        addr(USER_A, "fwd")), since=mark), "log: forward msg M qp N")
    forwarded(t, b.path("Maildir"), m, "forward to %s" % USER_B,
              addr(USER_A, "fwd"), first=addr(USER_B))


def maildir_and_forward(t, d, a, b):
    a.maildir("mixbox")
    b.maildir("mixbox")
    a.write(".qmail-mix", "./mixbox/\n&%s\n" % addr(USER_B, "mix"))
    b.write(".qmail-mix", "./mixbox/\n")
    mark = d.log_mark()
    m = send(t, d, "mix", addr(USER_A, "mix"))
    expect_result(t, d, mark, addr(USER_A, "mix"), "success",
                  r"^did_1\+1\+0/$", "a Maildir line and a forward")
    got = [x for x in sqtest.wait_for_maildir(a.path("mixbox"), 1,
                                              pred=mine(m)) if mine(m)(x)]
    t.ok(len(got) == 1, "the Maildir line delivered once", repr(got))
    forwarded(t, b.path("mixbox"), m, "and the forward",
              addr(USER_A, "mix"), first=addr(USER_B, "mix"))


def owner_file_sets_the_sender(t, d, a, b):
    b.maildir("ownbox")
    a.write(".qmail-own", "%s\n" % addr(USER_B, "own"))
    a.write(".qmail-own-owner", "./ownbox/\n")
    b.write(".qmail-own", "./ownbox/\n")
    mark = d.log_mark()
    m = send(t, d, "own", addr(USER_A, "own"))
    expect_result(t, d, mark, addr(USER_A, "own"), "success",
                  r"^did_0\+1\+0/$", "a bare forward line with an owner file")
    forwarded(t, b.path("ownbox"), m, "owner file", addr(USER_A, "own"),
              sender=addr(USER_A, "own-owner"), first=addr(USER_B, "own"))


def forward_loop_bounces(t, d, a, b):
    a.write(".qmail-loop", "&%s\n" % addr(USER_B, "loop"))
    b.write(".qmail-loop", "&%s\n" % addr(USER_A, "loop"))
    mark = d.log_mark()
    send(t, d, "loop", addr(USER_A, "loop"))
    r = d.wait_for_log(r"^delivery \d+: failure: This_message_is_looping:_"
                       r"it_already_has_my_Delivered-To_line\._\(#5\.4\.6\)$",
                       since=mark)
    t.ok(r, "the loop fails permanently with #5.4.6",
         "\n".join(d.log_text(mark).splitlines()[-15:]))
    bounce = sqtest.wait_for_maildir(a.path("bounces"), 1, pred=lambda x:
                                     b"looping" in x.data)
    t.ok(any(b"already has my Delivered-To line" in x.data
             for x in bounce), "the QSBMF bounce of the loop reaches the "
         "sender", repr(bounce)[:400])
    n = len(re.findall(r"(?m)^forward msg \d+ qp \d+ from ",
                       d.log_text(mark)))
    t.is_(n, 2, "the loop made two forwards (A to B, B to A), no more")


def forward_to_a_remote_domain(t, d, a, b):
    far = "someone@remote.example"
    a.write(".qmail-far", "&%s\n" % far)
    mark = d.log_mark()
    send(t, d, "far", addr(USER_A, "far"))
    expect_result(t, d, mark, addr(USER_A, "far"), "success",
                  r"^did_0\+1\+0/$", "a forward to a remote domain")
    t.ok(d.wait_for_log(r"^starting delivery \d+: msg \d+ to remote %s$"
                        % re.escape(far), since=mark),
         "the forward is a remote delivery to %s" % far)
    code, out, err = d.ctl("show", "queue")
    t.ok(code == 0 and re.search(r"sender=%s rcpt=%s " % (
        re.escape(SENDER), re.escape(far)), out),
         "sqmailctl show queue: the forward, from the original sender",
         out, err)


def invalid_forward_address_bounces(t, d, a, b):
    a.write(".qmail-bad", "./badbox/\n&bad address@@x\n")
    mark = d.log_mark()
    send(t, d, "bad", addr(USER_A, "bad"))
    expect_result(t, d, mark, addr(USER_A, "bad"), "failure",
                  r"forward_to_an_invalid_address_\(#5\.1\.3\)",
                  "an invalid forward address")
    bounce = sqtest.wait_for_maildir(a.path("bounces"), 1, pred=lambda x:
                                     b"invalid address" in x.data)
    t.ok(bounce, "the QSBMF bounce names the invalid forward",
         repr(bounce)[:400])
    t.ok(not os.path.exists(a.path("badbox")), "nothing delivered")


def main():
    t = sqtest.Tap()
    sqtest.require_root(t, "the agents run as real users")
    a = dq.make_user(t, USER_A)
    b = dq.make_user(t, USER_B)
    a.maildir("bounces")
    a.write(".qmail-bounces", "./bounces/\n")
    d = dq.start_daemon(t, "5s")
    sqtest.run(t, [
        forward_to_the_other_user,
        maildir_and_forward,
        owner_file_sets_the_sender,
        forward_loop_bounces,
        forward_to_a_remote_domain,
        invalid_forward_address_bounces,
        sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
    ], d, a, b)


if __name__ == "__main__":
    main()
