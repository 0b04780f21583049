#!/usr/bin/env python3
"""
Many clients at once: concurrent sessions each sending several messages are
all acknowledged and every message is delivered exactly once, byte-exact
(the group commit must not mix up or drop anyone's data).  Also a listener
on ::1 next to 127.0.0.1.
"""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqtest
from sqtest import make_message, qp_of

CLIENTS = 20
PER_CLIENT = 10
SENDER = "sender@example.test"
YOU = "you@example.test"


def concurrent_sessions_are_all_acknowledged_and_delivered(t, d):
    results = {}            # msgid -> (message, code, text)
    errors = []
    lock = threading.Lock()

    def client(n):
        try:
            s = d.smtp()
            s.ehlo()
            for i in range(PER_CLIENT):
                body = ("client %d message %d\n" % (n, i)) * (1 + (n * i) % 50)
                m = make_message("concurrent %d.%d" % (n, i), body,
                                 msgid="<conc-%d-%d@sqtest>" % (n, i))
                s.mail(SENDER)
                s.rcpt(YOU)
                code, text = s.data(sqtest.crlf(m))
                with lock:
                    results["<conc-%d-%d@sqtest>" % (n, i)] = (
                        m, code, text.decode("latin-1"))
            s.quit()
        except Exception as e:
            with lock:
                errors.append("client %d: %r" % (n, e))

    threads = [threading.Thread(target=client, args=(n,), daemon=True)
               for n in range(CLIENTS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120 * sqtest.SCALE)
    t.ok(not [th for th in threads if th.is_alive()],
         "all %d clients finish" % CLIENTS)
    t.ok(not errors, "no client saw an error", "\n".join(errors[:10]))
    total = CLIENTS * PER_CLIENT
    acked = {k: v for k, v in results.items() if v[1] == 250}
    t.is_(len(acked), total, "all %d messages get 250" % total,
          "not 250: %r" % [(k, v[1], v[2]) for k, v in results.items()
                           if v[1] != 250][:10])
    qps = [qp_of(v[2]) for v in acked.values()]
    t.is_(len(set(qps)), len(qps), "every 250 carries its own qp id")
    msgs = d.wait_for_maildir(len(acked), seconds=120)
    by_id = {}
    for m in msgs:
        by_id.setdefault(m.msgid, []).append(m)
    wrong = []
    for k, (m, code, text) in acked.items():
        got = by_id.get(k, [])
        if len(got) != 1:
            wrong.append("%s delivered %d times" % (k, len(got)))
        elif got[0].rest != m or got[0].return_path != SENDER or \
                got[0].delivered_to != YOU:
            wrong.append("%s: %s" % (k, sqtest.bytes_diff(got[0].rest, m)))
    t.ok(not wrong, "each of the %d messages is delivered once, byte-exact"
         % len(acked), "\n".join(wrong[:10]))


def listener_on_ipv6_loopback_serves_too(t, d):
    if d.port6 is None:
        t.skip("a listener on ::1", "no IPv6 loopback on this machine")
        return
    c = d.client(host="::1", port=d.port6)
    t.reply(c.greeting(), 220, None, "[::1]:%d greets with 220" % d.port6, c)
    c.ehlo()
    c.cmd("MAIL FROM:<%s>" % SENDER)
    t.reply(c.cmd("RCPT TO:<%s>" % YOU), 250, None, "RCPT over IPv6 -> 250",
            c)
    c.cmd("DATA")
    m = make_message("over ipv6", "from ::1\n")
    c.send(sqtest.dot_stuff(sqtest.crlf(m)) + b".\r\n")
    t.reply(c.reply(), 250, None, "end of data over IPv6 -> 250", c)
    c.cmd("QUIT")
    c.close()
    sqtest.expect_delivered(t, d.maildir, m, SENDER, YOU, "IPv6 message")


def ipv6_loopback_port():
    try:
        return sqtest.free_port("::1")
    except OSError:
        return None


def main():
    t = sqtest.Tap()
    port6 = ipv6_loopback_port()
    extra = "listen on ::1 port %d\n" % port6 if port6 else ""
    d = sqtest.Daemon(t, extra=extra)
    d.port6 = port6
    d.start()
    sqtest.run(t, [
        concurrent_sessions_are_all_acknowledged_and_delivered,
        listener_on_ipv6_loopback_serves_too,
        sqtest.sqmaild_stops_on_sigterm_leaving_no_process,
    ], d)


if __name__ == "__main__":
    main()
