#!/usr/bin/env python3
"""
SMTP basics against a running sqmaild: the greeting, EHLO/HELO, the simple
commands and their sequence errors, and messages of every ordinary shape
delivered byte-exact into a Maildir (plain, 8-bit, dot-stuffed, empty,
1 MiB, pipelined, via swaks).
"""
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
from sqtest import crlf, make_message, expect_delivered

SENDER = "sender@example.test"
YOU = "you@example.test"


def server_greets_with_220_and_its_hostname(t, d):
    c = d.client()
    r = c.greeting()
    t.reply(r, 220, None, "S: 220 on connect", c)
    t.like(r.raw if r else None, r"mx\.sqtest\.test",
           "the greeting names the configured hostname")
    t.reply(c.cmd("QUIT"), 221, None, "C: QUIT -> S: 221", c)
    t.ok(c.closed_by_server(), "the server closes the connection after QUIT")
    c.close()


def ehlo_lists_pipelining_size_8bitmime_enhancedstatuscodes(t, d):
    c = d.client()
    c.greeting()
    r = c.ehlo()
    t.reply(r, 250, None, "C: EHLO -> S: 250", c)
    kw = [l.split()[0].upper() for l in r.lines[1:] if l.split()] if r \
        else []
    for k in ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES"):
        t.ok(k in kw, "EHLO lists %s" % k, "keywords: %r" % kw)
    size = [l for l in (r.lines if r else []) if l.upper().startswith(
        "SIZE")]
    t.like(size[0] if size else None, r"^SIZE [1-9]\d*$",
           "SIZE carries the limit in octets")
    t.like(r.lines[0] if r else None, r"mx\.sqtest\.test",
           "the first EHLO line names the server")
    c.close()


def helo_is_answered_with_a_single_250_line(t, d):
    c = d.client()
    c.greeting()
    r = c.cmd("HELO " + sqtest.CLIENT_HELO)
    t.reply(r, 250, None, "C: HELO -> S: 250", c)
    t.is_(len(r.lines_raw) if r else None, 1,
          "HELO's reply is one line (no extensions)")
    t.reply(c.cmd("MAIL FROM:<%s>" % SENDER), 250, None,
            "after HELO, C: MAIL FROM -> S: 250", c)
    c.close()


def noop_vrfy_help_are_answered(t, d):
    c = d.client()
    c.greeting()
    c.ehlo()
    t.reply(c.cmd("NOOP"), 250, None, "C: NOOP -> S: 250", c)
    t.reply(c.cmd("VRFY you"), 252, None, "C: VRFY you -> S: 252", c)
    t.reply(c.cmd("VRFY <%s>" % YOU), 252, None,
            "C: VRFY <you@example.test> -> S: 252", c)
    r = c.cmd("HELP")
    t.ok(r is not None and r.code in (211, 214), "C: HELP -> S: 214 (or 211)",
         "got %r" % r, c.transcript_tail())
    t.reply(c.cmd("NOOP"), 250, None, "the session goes on after HELP", c)
    c.close()


def unknown_command_gets_500_5_5_1(t, d):
    c = d.client()
    c.greeting()
    c.ehlo()
    t.reply(c.cmd("FROB something"), 500, "5.5.1",
            "C: FROB -> S: 500 5.5.1", c)
    t.reply(c.cmd("NOOP"), 250, None, "the session goes on", c)
    c.close()


def commands_out_of_sequence_get_503_5_5_1(t, d):
    c = d.client()
    c.greeting()
    c.ehlo()
    t.reply(c.cmd("RCPT TO:<%s>" % YOU), 503, "5.5.1",
            "RCPT before MAIL -> S: 503 5.5.1", c)
    t.reply(c.cmd("DATA"), 503, "5.5.1",
            "DATA before MAIL -> S: 503 5.5.1", c)
    t.reply(c.cmd("MAIL FROM:<%s>" % SENDER), 250, None,
            "C: MAIL FROM -> S: 250", c)
    t.reply(c.cmd("MAIL FROM:<%s>" % SENDER), 503, "5.5.1",
            "a second MAIL in one transaction -> S: 503 5.5.1", c)
    # RFC 5321 3.3: with no accepted RCPT the server MAY answer DATA with
    # 503 (bad sequence) or 554 (no valid recipients).
    r = c.cmd("DATA")
    t.ok(r is not None and r.code in (503, 554) and r.enhanced == "5.5.1",
         "DATA before any accepted RCPT -> S: 503 5.5.1 (or 554 5.5.1, "
         "RFC 5321 3.3)", "got %r" % r, c.transcript_tail())
    c.close()


def rset_clears_the_transaction(t, d):
    c = d.client()
    c.greeting()
    c.ehlo()
    t.reply(c.cmd("MAIL FROM:<%s>" % SENDER), 250, None, "C: MAIL -> 250", c)
    t.reply(c.cmd("RCPT TO:<%s>" % YOU), 250, None, "C: RCPT -> 250", c)
    t.reply(c.cmd("RSET"), 250, None, "C: RSET -> S: 250", c)
    t.reply(c.cmd("DATA"), 503, "5.5.1",
            "DATA after RSET -> S: 503 5.5.1 (no transaction left)", c)
    t.reply(c.cmd("MAIL FROM:<%s>" % SENDER), 250, None,
            "a new MAIL after RSET -> S: 250", c)
    t.reply(c.cmd("QUIT"), 221, None, "C: QUIT -> S: 221", c)
    c.close()


def rcpt_to_unknown_local_user_gets_550_5_1_1(t, d):
    c = d.client()
    c.greeting()
    c.ehlo()
    c.cmd("MAIL FROM:<%s>" % SENDER)
    t.reply(c.cmd("RCPT TO:<nosuchuser@example.test>"), 550, "5.1.1",
            "C: RCPT TO:<nosuchuser@example.test> -> S: 550 5.1.1", c)
    t.reply(c.cmd("RCPT TO:<%s>" % YOU), 250, None,
            "a known user in the same transaction -> S: 250", c)
    c.close()


def commands_are_case_insensitive(t, d):
    c = d.client()
    c.greeting()
    t.reply(c.cmd("ehlo " + sqtest.CLIENT_HELO), 250, None,
            "C: ehlo (lower case) -> S: 250", c)
    t.reply(c.cmd("mail from:<%s>" % SENDER), 250, None,
            "C: mail from: -> S: 250", c)
    t.reply(c.cmd("rCpT To:<%s>" % YOU), 250, None, "C: rCpT To: -> S: 250",
            c)
    t.reply(c.cmd("rset"), 250, None, "C: rset -> S: 250", c)
    c.close()


def syntax_errors_in_arguments_get_501(t, d):
    c = d.client()
    c.greeting()
    t.reply(c.cmd("EHLO"), 501, None, "C: EHLO without a domain -> S: 501", c)
    c.ehlo()
    t.reply(c.cmd("MAIL FROM:<sender@example.test"), 501, None,
            "C: MAIL FROM:<unterminated -> S: 501", c)
    t.reply(c.cmd("MAIL FROM:<%s>" % SENDER), 250, None,
            "then a good MAIL -> S: 250", c)
    t.reply(c.cmd("RCPT TO:<you@example.test"), 501, None,
            "C: RCPT TO:<unterminated -> S: 501", c)
    c.close()


def unknown_mail_parameter_gets_555(t, d):
    c = d.client()
    c.greeting()
    c.ehlo()
    t.reply(c.cmd("MAIL FROM:<%s> FROB=yes" % SENDER), 555, None,
            "C: MAIL FROM:<...> FROB=yes -> S: 555 (RFC 5321 4.1.1.11)", c)
    t.reply(c.cmd("MAIL FROM:<%s> BODY=8BITMIME" % SENDER), 250, None,
            "C: MAIL FROM:<...> BODY=8BITMIME -> S: 250", c)
    c.close()


def rcpt_to_bare_postmaster_is_accepted(t, d):
    # RFC 5321 4.5.1: "Postmaster" without a domain MUST be accepted.
    c = d.client()
    c.greeting()
    c.ehlo()
    c.cmd("MAIL FROM:<%s>" % SENDER)
    t.reply(c.cmd("RCPT TO:<Postmaster>"), 250, None,
            "C: RCPT TO:<Postmaster> -> S: 250 (RFC 5321 4.5.1)", c)
    c.close()


def quit_gets_221_and_the_server_closes(t, d):
    c = d.client()
    c.greeting()
    c.ehlo()
    t.reply(c.cmd("QUIT"), 221, None, "C: QUIT -> S: 221", c)
    t.ok(c.closed_by_server(), "then the server closes the connection")
    c.close()


def plain_message_is_delivered_byte_exact(t, d):
    msg = make_message("plain", "Hello,\n\nthis is a plain message.\n")
    code, text = d.send(msg)
    t.is_(code, 250, "end of data -> S: 250", text)
    t.like(text, r"ok \d+ qp \w+",
           "the 250 says \"ok <unixtime> qp <msgid>\"")
    expect_delivered(t, d.maildir, msg, SENDER, YOU, "plain message")


def null_sender_is_accepted_and_delivered_with_empty_return_path(t, d):
    msg = make_message("null sender", "from nobody\n", sender="<>")
    code, text = d.send(msg, sender="")
    t.is_(code, 250, "MAIL FROM:<> message -> S: 250", text)
    expect_delivered(t, d.maildir, msg, "", YOU, "null-sender message")


def eight_bit_message_is_delivered_byte_exact(t, d):
    body = ("Gr\u00fc\u00dfe, \u65e5\u672c\u8a9e, \u00e9t\u00e9\n"
            ).encode("utf-8") + bytes(b for b in range(128, 256)) + b"\n"
    msg = make_message("8bit", body, extra="Content-Type: text/plain; "
                       "charset=utf-8\nContent-Transfer-Encoding: 8bit\n")
    code, text = d.send(msg, mail_options=["BODY=8BITMIME"])
    t.is_(code, 250, "8-bit message with BODY=8BITMIME -> S: 250", text)
    expect_delivered(t, d.maildir, msg, SENDER, YOU, "8-bit message")


def dot_stuffed_lines_are_unstuffed(t, d):
    body = b".\n..\n.leading dot\n..two dots\n...\nend.\n.\n"
    msg = make_message("dots", body)
    code, text = d.send(msg)      # smtplib dot-stuffs on the wire
    t.is_(code, 250, "message with lines starting with dots -> S: 250", text)
    expect_delivered(t, d.maildir, msg, SENDER, YOU, "dot-stuffed message")


def dot_stuffing_over_a_raw_socket(t, d):
    c = d.client()
    c.greeting()
    c.ehlo()
    c.cmd("MAIL FROM:<%s>" % SENDER)
    c.cmd("RCPT TO:<%s>" % YOU)
    t.reply(c.cmd("DATA"), 354, None, "C: DATA -> S: 354", c)
    mid = "<raw-dots.%d@sqtest>" % random.getrandbits(40)
    c.send("Subject: raw dots\r\nMessage-ID: %s\r\n\r\n..x\r\n...\r\n"
           "..\r\n.\r\n" % mid)
    t.reply(c.reply(), 250, None, "end of data -> S: 250", c)
    c.cmd("QUIT")
    c.close()
    want = ("Subject: raw dots\nMessage-ID: %s\n\n.x\n..\n.\n" % mid
            ).encode()
    expect_delivered(t, d.maildir, want, SENDER, YOU,
                     "raw dot-stuffed message")


def empty_body_message_is_delivered(t, d):
    msg = make_message("empty body", b"")
    code, text = d.send(msg)
    t.is_(code, 250, "message with headers and an empty body -> S: 250",
          text)
    expect_delivered(t, d.maildir, msg, SENDER, YOU, "empty-body message")


def empty_message_is_delivered_as_our_received_header_only(t, d):
    before = {m.path for m in d.messages()}
    c = d.client()
    c.greeting()
    c.ehlo()
    c.cmd("MAIL FROM:<empty@example.test>")
    c.cmd("RCPT TO:<carol@example.test>")
    t.reply(c.cmd("DATA"), 354, None, "C: DATA -> S: 354", c)
    t.reply(c.cmd("."), 250, None,
            "C: . right away (an empty message) -> S: 250", c)
    c.cmd("QUIT")
    c.close()

    def new_for_carol(m):
        return m.path not in before and m.delivered_to == \
            "carol@example.test"
    got = [m for m in d.wait_for_maildir(1, pred=new_for_carol)
           if new_for_carol(m)]
    if t.is_(len(got), 1, "the empty message is delivered once"):
        m = got[0]
        t.ok(m.error is None and m.return_path == "empty@example.test" and
             m.received is not None,
             "it holds Return-Path, Delivered-To and our Received header",
             m.error)
        t.is_(m.rest, b"", "and nothing after our Received header")


def one_mib_message_is_delivered_byte_exact(t, d):
    rnd = random.Random(1)
    line = "%06d " + "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                             for _ in range(70)) + "\n"
    body = "".join(line % i for i in range(1024 * 1024 // 78 + 1))
    msg = make_message("one mebibyte", body)
    t.ok(len(msg) > 1024 * 1024, "the message is over 1 MiB (%d octets)"
         % len(msg))
    code, text = d.send(msg)
    t.is_(code, 250, "1 MiB message -> S: 250", text)
    expect_delivered(t, d.maildir, msg, SENDER, YOU, "1 MiB message",
                     seconds=60)


def three_transactions_pipelined_in_one_write(t, d):
    c = d.client()
    c.greeting()
    r = c.ehlo()
    t.ok(r is not None and "PIPELINING" in r.text.upper(),
         "PIPELINING is offered")
    msgs, wire = [], b""
    for i in range(3):
        m = make_message("pipelined %d" % i, "transaction %d of 3\n.dot\n"
                         % i)
        msgs.append(m)
        wire += (b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (
            SENDER.encode(), YOU.encode()) + sqtest.dot_stuff(crlf(m)) +
            b".\r\n")
    wire += b"QUIT\r\n"
    c.send(wire)
    codes = [r.code for r in c.replies_until_eof()]
    t.is_(codes, [250, 250, 354, 250] * 3 + [221],
          "S: 250 250 354 250 for each of the 3 transactions, then 221",
          c.transcript_tail(30))
    c.close()
    for i, m in enumerate(msgs):
        expect_delivered(t, d.maildir, m, SENDER, YOU,
                         "pipelined message %d" % i)


def rfc2920_command_group_then_data(t, d):
    c = d.client()
    c.greeting()
    c.ehlo()
    c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<nosuch@example.test>"
           "\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n" % (SENDER, YOU))
    codes = [c.reply() for _ in range(5)]
    t.is_([r.code if r else None for r in codes], [250, 250, 550, 250, 354],
          "a pipelined group gets its replies in order: 250 250 550 250 354",
          c.transcript_tail())
    m = make_message("group", "two of three recipients\n")
    c.send(sqtest.dot_stuff(crlf(m)) + b".\r\nQUIT\r\n")
    t.reply(c.reply(), 250, None, "end of data -> S: 250", c)
    t.reply(c.reply(), 221, None, "C: QUIT -> S: 221", c)
    c.close()
    expect_delivered(t, d.maildir, m, SENDER, YOU, "group message")
    expect_delivered(t, d.maildir, m, SENDER, "alice@example.test",
                     "group message")


def two_recipients_get_one_copy_each(t, d):
    m = make_message("two rcpts", "to you and bob\n")
    code, text = d.send(m, rcpts=[YOU, "bob@example.test"])
    t.is_(code, 250, "two recipients -> S: 250", text)
    expect_delivered(t, d.maildir, m, SENDER, YOU, "two-recipient message")
    expect_delivered(t, d.maildir, m, SENDER, "bob@example.test",
                     "two-recipient message")


def swaks_delivers_a_message(t, d):
    if not sqtest.require_cmd(t, "swaks"):
        t.skip("swaks delivers a message", "swaks is not installed and "
               "could not be installed (run scripts/deps.sh test as root)")
        return
    mid = "<swaks.%d@sqtest>" % random.getrandbits(40)
    msg = make_message("via swaks", "sent by swaks\n", msgid=mid)
    path = d.write("swaks.eml", msg.decode())
    for pipe in ([], ["--pipeline"]):
        p = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(d.port),
             "--helo", sqtest.CLIENT_HELO, "--from", SENDER, "--to",
             "bob@example.test", "--data", "@" + path, "--timeout", "30"] +
            pipe, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=60)
        out = p.stdout.decode("utf-8", "replace")
        t.is_(p.returncode, 0, "swaks %s exits 0" % " ".join(pipe), out)
        t.like(out, r"<[-~]+\s+250 .*ok \d+ qp \w+",
               "swaks %s sees 250 ok ... qp after the data" % " ".join(pipe))
    got = [m for m in d.wait_for_maildir(
        2, pred=lambda m: m.msgid == mid) if m.msgid == mid]
    t.is_(len(got), 2, "both swaks messages are delivered")


def main():
    t = sqtest.Tap()
    d = sqtest.Daemon(t).start()
    sqtest.run(t, [
        server_greets_with_220_and_its_hostname,
        ehlo_lists_pipelining_size_8bitmime_enhancedstatuscodes,
        helo_is_answered_with_a_single_250_line,
        noop_vrfy_help_are_answered,
        unknown_command_gets_500_5_5_1,
        commands_out_of_sequence_get_503_5_5_1,
        rset_clears_the_transaction,
        rcpt_to_unknown_local_user_gets_550_5_1_1,
        commands_are_case_insensitive,
        syntax_errors_in_arguments_get_501,
        unknown_mail_parameter_gets_555,
        rcpt_to_bare_postmaster_is_accepted,
        quit_gets_221_and_the_server_closes,
        plain_message_is_delivered_byte_exact,
        null_sender_is_accepted_and_delivered_with_empty_return_path,
        eight_bit_message_is_delivered_byte_exact,
        dot_stuffed_lines_are_unstuffed,
        dot_stuffing_over_a_raw_socket,
        empty_body_message_is_delivered,
        empty_message_is_delivered_as_our_received_header_only,
        one_mib_message_is_delivered_byte_exact,
        three_transactions_pipelined_in_one_write,
        rfc2920_command_group_then_data,
        two_recipients_get_one_copy_each,
        swaks_delivers_a_message,
        sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
    ], d)


if __name__ == "__main__":
    main()
