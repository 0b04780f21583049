#!/usr/bin/env python3
"""
mtapeer: a real Postfix as "the rest of the world" for sqmail's tests.

It writes a Postfix configuration (main.cf, master.cf, access maps, a
Cyrus SASL database) into a scratch directory, runs Postfix's master in
the foreground there (`master -c DIR/etc -s`, as root; Postfix drops to
its mail_owner `postfix`) with its own queue, data directory and log
(maillog_file + postlogd), listening on 127.0.0.1 and a free port (and a
second free port for SMTPS), waits until it greets and stops it again.
The system's Postfix instance and its files are never used or touched:
only the binaries and the read-only /etc/postfix/dynamicmaps.cf.
Standard library only.

    import mtapeer
    with mtapeer.MtaPeer(domains=["example.net"], tls="starttls") as mx:
        mx.port                          # 127.0.0.1:port speaks SMTP
        ... send to rcpt@example.net ...
        [m] = mx.wait_messages(1)
        m.sender, m.rcpts, m.data        # envelope, exact bytes (LF form)
        m.body                           # data without the top Received
        m.tls, m.auth_user, m.helo       # how it came in
        mx.stop()                        # (the with statement does it)

Everything the peer accepts (for its domains, or relayed when allowed) is
handed to a pipe(8) transport that runs a tiny sh script (as user
nobody) writing one file per delivery: the envelope (queue id, sender,
every recipient, HELO name, SASL method/user, client port) and the
message exactly as Postfix has it, which is what the client sent (LF line
ends, dot-stuffing undone) below Postfix's own Received header.  Nothing
rewrites the message: no header is added, dropped or rewritten
(local_header_rewrite_clients and message_drop_headers are empty).  All
recipients of a message go in one delivery (fixed next hop, recipient
limit 1000); messages() also merges deliveries by queue id.

AUTH is Cyrus SASL inside smtpd itself (smtpd_sasl_type = cyrus): an
auxprop sasldb made with saslpasswd2 (Debian package sasl2-bin) and an
smtpd.conf in DIR/etc/sasl, where Debian's Postfix looks for it
($config_directory/sasl).  No SASL daemon runs, nothing of the system's
(/etc/sasldb2, saslauthd) is used.  Plain-text secrets in the sasldb make
CRAM-MD5 work besides PLAIN and LOGIN.

Options (every one is exercised by regress/e2e/05_peers.t):

  domains=("example.net",)  accepted from anyone (relay_domains)
  relay=False          True: anything else accepted from 127.0.0.0/8
                       too; otherwise "554 5.7.1 <rcpt>: Relay access
                       denied" unless authenticated (auth)
  tls=None|"starttls"|"smtps"
                       "starttls": STARTTLS offered (level may) on .port;
                       "smtps": that, and implicit TLS on .smtps_port
  pki=None             the certs.Pki to use (default certs.make_pki()):
                       its server cert by default, its CA for client certs
  cert=None            certs.Cert (or (cert, key)) the server presents;
                       default pki.server (peer.test, localhost,
                       127.0.0.1, ::1, from the test CA)
  require_tls=False    smtpd_tls_security_level=encrypt: MAIL before
                       STARTTLS gets "530 5.7.0 Must issue a STARTTLS
                       command first" (implies tls="starttls")
  ask_client_cert=False  ask for a client certificate (pki.ca trusted;
                       implies tls="starttls"); Received then names its CN
                       and whether it verified (Message.client_cert)
  auth={"user": "pw"}  SMTP AUTH (PLAIN, LOGIN, CRAM-MD5; Cyrus SASL with
                       a sasldb in the scratch dir, realm = hostname);
                       authenticated clients may relay anywhere; a bad
                       password: "535 5.7.8 Error: authentication failed:
                       authentication failure"
  reject={"rcpt@dom": "550 5.1.1 no such user"}, defer={...: "451 ..."}
                       RCPT answered "CODE X.Y.Z <rcpt@dom>: Recipient
                       address rejected: TEXT" (access(5) keys: address,
                       domain or user@; one map, so reject and defer are
                       the same thing with different codes)
  reject_sender={"from@dom": "553 5.7.1 ..."}  the same for MAIL FROM:
                       "CODE X.Y.Z <from@dom>: Sender address rejected: TEXT"
  reject_data={"from@dom": "554 5.7.1 ..."}  keyed by envelope sender,
                       answered at the end of DATA: "CODE X.Y.Z <from@dom>:
                       Sender address rejected: TEXT" (message not kept)
  greeting_code=None|421|554 (greeting_text="...")
                       the connection is refused at connect time
                       (smtpd_client_restrictions with check_client_access;
                       smtpd_delay_reject=no always).  554: the greeting is
                       "554 5.7.1 <unknown[127.0.0.1]>: Client host
                       rejected: TEXT"; after it every command but QUIT
                       gets "503 5.7.0 Error: access denied for
                       unknown[127.0.0.1]" (QUIT gets 221).  421: the
                       greeting is "421 4.7.1 <unknown[127.0.0.1]>: Client
                       host rejected: TEXT" and Postfix closes the
                       connection right after it.
  size_limit=N         message_size_limit: EHLO says SIZE N; MAIL with
                       SIZE=more gets "552 5.3.4 Message size exceeds fixed
                       limit", a longer message "552 5.3.4 Error: message
                       file too big" at the end of DATA
  no_pipelining, no_8bitmime, discard_ehlo=("smtputf8", ...)
                       EHLO keywords not announced
                       (smtpd_discard_ehlo_keywords)
  hostname="peer.test" myhostname: the greeting and Received name it
  port=None            the port to listen on (default: a free one; 25 for
                       MX delivery, which needs it free on that address)
  host="127.0.0.1"     the loopback address to listen on: any of
                       127.0.0.0/8, or ::1 (IPv6: inet_protocols = all;
                       the peer sees clients as "IPv6:::1").  The
                       listeners bind it; inet_interfaces stays
                       127.0.0.1, as Postfix wants an interface address
                       there
  main_extra="..."     more main.cf lines (win over the generated ones)
  scratch=None         directory to use (default: a new one, removed by
                       stop()); name: a label for logs

A peer that cannot start raises MtaPeerError with its log.  stop()
SIGTERMs the master, waits (bounded), SIGKILLs whatever of its process
group is left and reaps; it runs at interpreter exit too, and from
sqtest's clean-up (prove's timeout, ^C) when sqtest is loaded.  Several
peers can run at once.  regress/e2e/05_peers.t tests it.

Environment: SQTEST_KEEP=1 keeps the scratch directory.
"""

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs                                        # noqa: E402
import peerutil                                     # noqa: E402

POSTCONF = shutil.which("postconf") or "/usr/sbin/postconf"
SASLPASSWD2 = shutil.which("saslpasswd2") or "/usr/sbin/saslpasswd2"
MAIL_OWNER = "postfix"
SETGID_GROUP = "postdrop"
PIPE_USER = "nobody"
QUEUE_DIRS = {          # name: (owner is mail_owner, group setgid, mode)
    "active": (True, False, 0o700), "bounce": (True, False, 0o700),
    "corrupt": (True, False, 0o700), "defer": (True, False, 0o700),
    "deferred": (True, False, 0o700), "flush": (True, False, 0o700),
    "hold": (True, False, 0o700), "incoming": (True, False, 0o700),
    "private": (True, False, 0o700), "maildrop": (True, True, 0o730),
    "public": (True, True, 0o710), "pid": (False, False, 0o755),
    "saved": (True, False, 0o700), "trace": (True, False, 0o700),
}


class MtaPeerError(Exception):
    """Postfix could not be configured or started; the text says why."""


def daemon_directory():
    """Where master, smtpd, ... live (postconf -d daemon_directory)."""
    try:
        out = subprocess.run([POSTCONF, "-d", "-h", "daemon_directory"],
                             capture_output=True, text=True, timeout=30)
        d = out.stdout.strip()
        if out.returncode == 0 and os.path.isdir(d):
            return d
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "/usr/lib/postfix/sbin"


free_port = peerutil.free_port


# ------------------------------------------------------- the delivery


# Run by pipe(8) as nobody: one file per delivery into inbox/new, the
# arguments one a line, an empty line, then the message from stdin.  Any
# failure is EX_TEMPFAIL (75): Postfix defers, nothing is lost.
SAVE_SCRIPT = r'''#!/bin/sh
inbox=$1; shift
q=x
for a in "$@"; do case $a in q=*) q=${a#q=} ;; esac; done
name=$(date +%s%N).$q.$$
{ for a in "$@"; do printf '%s\n' "$a"; done; echo; cat; } \
    >"$inbox/tmp/$name" || exit 75
mv "$inbox/tmp/$name" "$inbox/new/$name" || exit 75
exit 0
'''

# The pipe arguments: key=value, so that empty values survive.
PIPE_ARGS = ("q=${queue_id} s=${sender} h=${client_helo} "
             "p=${client_protocol} a=${client_address} c=${client_port} "
             "m=${sasl_method} u=${sasl_username} r=${recipient}")


def strip_received(data):
    """data without its first header when that is a Received: header."""
    if not data.lower().startswith(b"received:"):
        return data
    i = data.find(b"\n")
    while i >= 0 and data[i + 1:i + 2] in (b" ", b"\t"):
        i = data.find(b"\n", i + 1)
    return b"" if i < 0 else data[i + 1:]


def top_received(data):
    """The first header if it is Received: (unfolded text), else None."""
    if not data.lower().startswith(b"received:"):
        return None
    rest = strip_received(data)
    raw = data[:len(data) - len(rest)]
    return re.sub(r"\s*\n\s+", " ", raw.decode("utf-8", "replace")).strip()


class Message:
    """
    One message as the peer received it: sender ("" for <>), rcpts (every
    accepted recipient, in Postfix's delivery order, which is sorted, not
    the RCPT order: compare as sets), data (bytes as delivered: Postfix's
    Received header, then exactly what the client sent, LF line ends),
    queue_id, helo, protocol (SMTP or ESMTP), client (address, port),
    sasl_method ("PLAIN", ...; "" without AUTH), sasl_username (as
    Postfix has it: Cyrus appends "@realm" to a name without "@") and
    auth_user (the name the client gave: sasl_username without "@realm").
    body is data without that Received header; received its unfolded
    text; with_protocol ("ESMTPSA"...), tls and client_cert come from it.
    """

    def __init__(self, path, raw, realm=None):
        self.path = path
        head, _, self.data = raw.partition(b"\n\n")
        f = {}
        self.rcpts = []
        for line in head.split(b"\n"):
            k, _, v = line.partition(b"=")
            v = v.decode("utf-8", "surrogateescape")
            if k == b"r":
                self.rcpts.append(v)
            else:
                f[k.decode()] = v
        self.queue_id = f.get("q", "")
        self.sender = f.get("s", "")
        self.helo = f.get("h", "")
        self.protocol = f.get("p", "")
        port = f.get("c", "")
        self.client = (f.get("a", ""), int(port) if port.isdigit() else None)
        self.sasl_method = f.get("m", "")
        self.sasl_username = self.auth_user = f.get("u", "")
        if realm and self.auth_user.endswith("@" + realm):
            self.auth_user = self.auth_user[:-len(realm) - 1]

    @property
    def body(self):
        return strip_received(self.data)

    @property
    def received(self):
        return top_received(self.data)

    @property
    def with_protocol(self):
        """The "with" of the Received header: ESMTP, ESMTPS, ESMTPSA..."""
        m = re.search(r"\bwith (\S+)", self.received or "")
        return m.group(1) if m else None

    @property
    def tls(self):
        """The TLS details Postfix recorded ("TLSv1.3 with cipher ..."),
        or None when the message came in without TLS."""
        m = re.search(r"\(using (TLS[^)]*\))", self.received or "")
        return m.group(1) if m else None

    @property
    def client_cert(self):
        """(CN, issuer CN, verified?) of a client certificate, or None."""
        m = re.search(r'\(Client CN "([^"]*)", Issuer "([^"]*)" \(([^)]*)\)',
                      self.received or "")
        return (m.group(1), m.group(2), m.group(3) == "verified OK") \
            if m else None

    def header(self, name):
        """The first value of a header of the message (not Received)."""
        head = self.body.split(b"\n\n", 1)[0]
        m = re.search(br"(?im)^" + re.escape(name.encode()) +
                      br":[ \t]*(.*(?:\n[ \t].*)*)", head)
        return m.group(1).decode("utf-8", "replace") if m else None

    def __repr__(self):
        return "<Message %s from <%s> to %s, %d bytes>" % (
            self.queue_id, self.sender, self.rcpts, len(self.data))


# --------------------------------------------------------- configuration


MAIN_CF = """\
# written by regress/e2e/mtapeer.py: a scratch Postfix, not the system's
compatibility_level = 3.6
queue_directory = {dir}/spool
data_directory = {dir}/data
mail_owner = {mail_owner}
setgid_group = {setgid_group}
default_privs = nobody
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C
syslog_name = mtapeer-{name}

myhostname = {hostname}
mydomain = {hostname}
myorigin = {hostname}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = {protocols}
mynetworks = {mynetworks}
relay_domains = {domains}
relay_recipient_maps =
local_recipient_maps =
alias_maps =
alias_database =
default_transport = save:{hostname}
relay_transport = save:{hostname}
local_transport = save:{hostname}
save_destination_recipient_limit = 1000
fast_flush_domains =
notify_classes =
biff = no
smtp_dns_support_level = disabled
smtpd_peername_lookup = no

# Keep what the client sent exactly as it was.
local_header_rewrite_clients =
remote_header_rewrite_domain =
message_drop_headers =
always_add_missing_headers = no
append_dot_mydomain = no
allow_percent_hack = no
swap_bangpath = no
recipient_delimiter =
disable_mime_output_conversion = yes

smtpd_banner = $myhostname ESMTP mtapeer
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 200
smtpd_junk_command_limit = 1000
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
in_flow_delay = 0
message_size_limit = {size_limit}
mailbox_size_limit = 0
smtpd_discard_ehlo_keywords = {discard}
smtpd_delay_reject = no
smtpd_client_restrictions = {client_restrictions}
smtpd_sender_restrictions =
    check_sender_access texthash:{dir}/etc/sender_access
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated,
    reject_unauth_destination
smtpd_recipient_restrictions =
    check_recipient_access texthash:{dir}/etc/rcpt_access
smtpd_end_of_data_restrictions =
    check_sender_access texthash:{dir}/etc/data_access

tls_random_source = dev:/dev/urandom
smtpd_tls_security_level = {tls_level}
smtpd_tls_chain_files = {tls_chain}
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_tls_ask_ccert = {ask_ccert}
smtpd_tls_CAfile = {tls_ca}
smtpd_tls_session_cache_database =

smtpd_sasl_auth_enable = {sasl}
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = {dir}/etc/sasl
smtpd_sasl_local_domain = {hostname}
smtpd_sasl_security_options = noanonymous
smtpd_sasl_authenticated_header = yes
broken_sasl_auth_clients = no
{extra}
"""

MASTER_CF = """\
# written by regress/e2e/mtapeer.py
{host}:{port} inet n - n - - smtpd
{smtps}cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
save unix - n n - - pipe
  flags=q user={pipe_user} null_sender=
  argv=/bin/sh {dir}/save.sh {dir}/inbox {pipe_args}
"""

SMTPS_CF = """\
{host}:{port} inet n - n - - smtpd
  -o syslog_name=mtapeer-{name}/smtps
  -o smtpd_tls_wrappermode=yes
"""

SASL_CONF = """\
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: {dir}/etc/sasl/sasldb2
mech_list: PLAIN LOGIN CRAM-MD5
"""


def _age(path):
    """
    Date a file we wrote a minute back: Postfix re-reads a main.cf (or
    table) changed within the last second, 300 ms at a time, until it is
    older, which would make every start take seconds.
    """
    t = time.time() - 60
    os.utime(path, (t, t))


def _map_text(entries, default_text):
    """access(5) texthash lines: key -> "NNN text" (an int: NNN + text)."""
    out = ["# written by mtapeer.py"]
    for k, v in (entries or {}).items():
        if isinstance(v, int):
            v = "%d %s" % (v, default_text)
        if "\n" in k or "\n" in v or not k.strip():
            raise ValueError("bad access map entry %r: %r" % (k, v))
        out.append("%s %s" % (k.strip().lower(), v.strip()))
    return "\n".join(out) + "\n"


class MtaPeer(peerutil.Peer):
    """A scratch Postfix on loopback (see the module's documentation)."""

    seq = 0

    def __init__(self, domains=("example.net",), tls=None, pki=None,
                 cert=None, require_tls=False, ask_client_cert=False,
                 auth=None, reject=None, defer=None, reject_sender=None,
                 reject_data=None, greeting_code=None, greeting_text=None,
                 size_limit=None, no_pipelining=False, no_8bitmime=False,
                 discard_ehlo=(), relay=False, hostname="peer.test",
                 host="127.0.0.1", port=None, main_extra="", scratch=None,
                 name=None):
        MtaPeer.seq += 1
        self.name = name or "p%d" % MtaPeer.seq
        if (require_tls or ask_client_cert) and tls is None:
            tls = "starttls"
        if tls not in (None, "starttls", "smtps"):
            raise ValueError("tls must be None, 'starttls' or 'smtps'")
        if greeting_code not in (None, 421, 554):
            raise ValueError("greeting_code must be None, 421 or 554")
        if not host.startswith("127.") and host != "::1":
            raise ValueError("host must be a loopback address")
        if isinstance(domains, str):
            domains = [domains]
        self.domains = list(domains)
        self.tls = tls
        self.require_tls = require_tls
        self.ask_client_cert = ask_client_cert
        self.auth = dict(auth) if auth else None
        self.rcpt_access = dict(reject or {})
        self.rcpt_access.update(defer or {})
        self.reject_sender = dict(reject_sender or {})
        self.reject_data = dict(reject_data or {})
        self.greeting_code = greeting_code
        self.greeting_text = greeting_text or (
            "mtapeer refuses this client" if greeting_code == 554 else
            "mtapeer is busy, try later")
        self.size_limit = size_limit
        self.discard = list(discard_ehlo)
        if no_pipelining:
            self.discard.append("pipelining")
        if no_8bitmime:
            self.discard.append("8bitmime")
        self.relay = relay
        self.hostname = hostname
        self.host = host
        self.main_extra = main_extra
        self.cert = cert
        self.pki = pki
        self.want_port = port
        self.port = None
        self.smtps_port = None
        self.proc = None
        self.pgid = None
        self.own_scratch = scratch is None
        self.dir = os.path.realpath(scratch or tempfile.mkdtemp(
            prefix="mtapeer-"))
        os.makedirs(self.dir, exist_ok=True)
        self.etc = os.path.join(self.dir, "etc")
        self.spool = os.path.join(self.dir, "spool")
        self.inbox = os.path.join(self.dir, "inbox")
        self.log_path = os.path.join(self.dir, "maillog")
        self.out_path = os.path.join(self.dir, "master.out")

    # -- files

    def _ids(self):
        try:
            owner = pwd.getpwnam(MAIL_OWNER)
            group = grp.getgrnam(SETGID_GROUP)
            pipe_user = pwd.getpwnam(PIPE_USER)
        except KeyError as e:
            raise MtaPeerError("missing user or group (is postfix "
                               "installed?): %s" % e)
        return owner, group, pipe_user

    def _write(self, path, text, mode=0o644):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        _age(path)
        return path

    def _tls_files(self):
        if self.tls is None:
            return "", ""
        if self.pki is None and (self.cert is None or self.ask_client_cert):
            self.pki = certs.make_pki()
        c = self.cert if self.cert is not None else self.pki.server
        if isinstance(c, certs.Cert):
            cert, key = c.cert, c.key
        else:
            cert, key = c
        ca = self.pki.ca.cert if self.ask_client_cert else ""
        return "%s, %s" % (key, cert), ca

    def write_config(self):
        """Every file of the instance; ports must be chosen already."""
        owner, group, pipe_user = self._ids()
        os.chmod(self.dir, 0o755)       # postfix and nobody go through
        for d in (self.etc, self.spool, os.path.join(self.etc, "sasl")):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)
        for name, (owned, setgid, mode) in QUEUE_DIRS.items():
            p = os.path.join(self.spool, name)
            os.makedirs(p, exist_ok=True)
            os.chown(p, owner.pw_uid if owned else 0,
                     group.gr_gid if setgid else (owner.pw_gid if owned
                                                  else 0))
            os.chmod(p, mode)
        data = os.path.join(self.dir, "data")
        os.makedirs(data, exist_ok=True)
        os.chown(data, owner.pw_uid, owner.pw_gid)
        os.chmod(data, 0o700)
        for sub in ("", "tmp", "new"):
            p = os.path.join(self.inbox, sub)
            os.makedirs(p, exist_ok=True)
            os.chown(p, pipe_user.pw_uid, pipe_user.pw_gid)
            os.chmod(p, 0o755)
        self._write(os.path.join(self.dir, "save.sh"), SAVE_SCRIPT, 0o755)

        chain, ca = self._tls_files()
        level = "none"
        if self.tls:
            level = "encrypt" if self.require_tls else "may"
        client_restrictions = ""
        if self.greeting_code:
            client_restrictions = "check_client_access texthash:%s" % (
                os.path.join(self.etc, "client_access"))
            text = "%d %s %s" % (
                self.greeting_code, "5.7.1" if self.greeting_code == 554
                else "4.7.1", self.greeting_text)
            # "127" matches every client of 127.0.0.0/8 (access(5)).
            self._write(os.path.join(self.etc, "client_access"),
                        _map_text({"127": text}, ""))
        self._write(os.path.join(self.etc, "rcpt_access"),
                    _map_text(self.rcpt_access, "rejected by mtapeer"))
        self._write(os.path.join(self.etc, "sender_access"),
                    _map_text(self.reject_sender, "rejected by mtapeer"))
        self._write(os.path.join(self.etc, "data_access"),
                    _map_text(self.reject_data, "rejected by mtapeer"))
        if self.auth:
            self._write_sasldb()
        main = MAIN_CF.format(
            dir=self.dir, name=self.name, mail_owner=MAIL_OWNER,
            setgid_group=SETGID_GROUP, hostname=self.hostname,
            host=self.host, domains=", ".join(self.domains),
            protocols="all" if ":" in self.host else "ipv4",
            mynetworks="127.0.0.0/8" if self.relay else "",
            size_limit=self.size_limit if self.size_limit is not None
            else 10240000,
            discard=", ".join(self.discard),
            client_restrictions=client_restrictions, tls_level=level,
            tls_chain=chain, ask_ccert="yes" if self.ask_client_cert
            else "no", tls_ca=ca, sasl="yes" if self.auth else "no",
            extra=self.main_extra)
        smtps = ""
        if self.tls == "smtps":
            smtps = SMTPS_CF.format(host=self.listen_host(),
                                    port=self.smtps_port,
                                    name=self.name)
        master = MASTER_CF.format(
            host=self.listen_host(), port=self.port, smtps=smtps,
            dir=self.dir,
            pipe_user=PIPE_USER, pipe_args=PIPE_ARGS)
        self._write(os.path.join(self.etc, "main.cf"), main)
        self._write(os.path.join(self.etc, "master.cf"), master)

    def listen_host(self):
        """The host as master.cf wants it: an IPv6 address in brackets."""
        return "[%s]" % self.host if ":" in self.host else self.host

    def _write_sasldb(self):
        sasl = os.path.join(self.etc, "sasl")
        db = os.path.join(sasl, "sasldb2")
        if os.path.exists(db):
            os.unlink(db)
        self._write(os.path.join(sasl, "smtpd.conf"),
                    SASL_CONF.format(dir=self.dir))
        if not os.access(SASLPASSWD2, os.X_OK):
            raise MtaPeerError("%s not found: auth needs Cyrus SASL's "
                               "saslpasswd2 (apt-get install sasl2-bin)"
                               % SASLPASSWD2)
        for user, pw in self.auth.items():
            p = subprocess.run([SASLPASSWD2, "-p", "-c", "-f", db, "-u",
                                self.hostname, user],
                               input=pw.encode(), capture_output=True,
                               timeout=30)
            if p.returncode != 0:
                raise MtaPeerError("saslpasswd2 for %s failed: %s" % (
                    user, p.stderr.decode("utf-8", "replace")))
        owner = pwd.getpwnam(MAIL_OWNER)
        os.chown(db, owner.pw_uid, owner.pw_gid)
        os.chmod(db, 0o600)
        _age(db)

    # -- running

    def start(self, timeout=20.0, attempts=3):
        """Start Postfix and wait until it greets; MtaPeerError if not."""
        if os.getuid() != 0:
            raise MtaPeerError("a Postfix peer needs root (its master "
                               "starts as root and drops to postfix)")
        master = os.path.join(daemon_directory(), "master")
        if not os.access(master, os.X_OK):
            raise MtaPeerError("%s not found (apt-get install postfix)"
                               % master)
        _become_subreaper()
        why = "not tried"
        for _ in range(attempts):
            self.port = self.want_port or free_port(self.host)
            self.smtps_port = None
            if self.tls == "smtps":
                while self.smtps_port in (None, self.port):
                    self.smtps_port = free_port(self.host)
            self.write_config()
            logged = len(self.log())
            out = open(self.out_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    [master, "-c", self.etc, "-s"], cwd=self.dir,
                    stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                    start_new_session=True, env=_postfix_env())
            finally:
                out.close()
            self.pgid = self.proc.pid
            peerutil.track(self)
            why = self._wait_ready(timeout)
            if why is None:
                return self
            self._kill()
            if self.want_port or not re.search(
                    r"(?i)address already in use|bind", self.log()[logged:]):
                break
        raise MtaPeerError("postfix peer %s did not start (%s); its log:\n%s"
                           % (self.name, why, self.log()))

    def _wait_ready(self, timeout):
        """None once the peer greets as configured, else why not."""
        end = time.monotonic() + timeout
        want = str(self.greeting_code or 220)
        why = "no greeting within %.0fs" % timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return "master exited with status %d" % self.proc.returncode
            try:
                line = _greeting(self.host, self.port)
                if line.startswith(want):
                    if self.smtps_port:     # bound by the master as well
                        socket.create_connection((self.host,
                                                  self.smtps_port),
                                                 timeout=5).close()
                    return None
                why = "greeting %r, expected %s" % (line, want)
            except OSError as e:
                why = "probe: %s" % e
            time.sleep(0.05)
        return why

    def processes(self):
        """pids of the master's process group still alive (not zombies)."""
        if self.pgid is None:
            return []
        out = []
        for p in peerutil.pids():
            st = peerutil.stat(p)
            if st is None or st[2] != self.pgid:
                continue
            if st[0] in ("Z", "X"):
                _reap(p, st)
                continue
            out.append(p)
        return out

    def _kill(self):
        """SIGTERM the master, then SIGKILL every process of its group."""
        if self.proc is None:
            return []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        end = time.monotonic() + 5
        while self.processes() and time.monotonic() < end:
            time.sleep(0.05)
        left = self.processes()
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        end = time.monotonic() + 5
        while self.processes() and time.monotonic() < end:
            time.sleep(0.05)
        self.proc = None
        return left

    def stop(self):
        """
        Stop Postfix (nothing of it survives) and remove the scratch
        directory we made.  Returns the pids that needed SIGKILL.
        """
        left = self._kill()
        peerutil.untrack(self)
        if self.own_scratch and os.path.isdir(self.dir):
            if os.environ.get("SQTEST_KEEP") == "1":
                print("# mtapeer scratch kept at %s" % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
        return left

    kill_all = stop         # what sqtest.cleanup() calls


    # -- what it received

    def messages(self):
        """Received messages, oldest first (deliveries merged by queue id)."""
        out, by_qid = [], {}
        d = os.path.join(self.inbox, "new")
        try:
            names = sorted(os.listdir(d), key=lambda n: (
                int(n.split(".")[0]) if n.split(".")[0].isdigit() else 0, n))
        except FileNotFoundError:
            return []
        for n in names:
            p = os.path.join(d, n)
            try:
                with open(p, "rb") as f:
                    m = Message(p, f.read(), self.hostname)
            except FileNotFoundError:
                continue
            if m.queue_id and m.queue_id in by_qid:
                by_qid[m.queue_id].rcpts += m.rcpts
                continue
            by_qid[m.queue_id] = m
            out.append(m)
        return out

    def wait_messages(self, n, timeout=10.0):
        """
        Wait until at least n messages are there; return them all (fewer
        at the deadline: the caller's count assertion says what came).
        """
        end = time.monotonic() + timeout
        while True:
            msgs = self.messages()
            if len(msgs) >= n or time.monotonic() > end:
                return msgs
            time.sleep(0.05)

    def reset(self):
        """Forget the messages received so far."""
        d = os.path.join(self.inbox, "new")
        for n in os.listdir(d):
            try:
                os.unlink(os.path.join(d, n))
            except FileNotFoundError:
                pass

    def log(self):
        """Postfix's log (maillog_file) and the master's own output."""
        text = ""
        for p in (self.out_path, self.log_path):
            try:
                with open(p, errors="replace") as f:
                    text += f.read()
            except OSError:
                pass
        return text

    def log_tail(self, n=30):
        return self.log().splitlines()[-n:]

    def wait_log(self, pattern, timeout=10.0):
        """The first match of pattern in the log, waiting for it; or None."""
        rx = re.compile(pattern, re.M)
        end = time.monotonic() + timeout
        while True:
            m = rx.search(self.log())
            if m or time.monotonic() > end:
                return m
            time.sleep(0.05)

    def diag_lines(self, n=30):
        """For a failure hook: the tail of this peer's log."""
        if self.proc is None and not os.path.exists(self.log_path):
            return []
        return ["log of mtapeer %s (%s), last lines:" % (
            self.name, self.log_path)] + ["  " + l for l in self.log_tail(n)]

    def __repr__(self):
        return "<MtaPeer %s %s:%s%s>" % (
            self.name, self.host, self.port,
            " smtps %s" % self.smtps_port if self.smtps_port else "")


# --------------------------------------------------------- processes


def _greeting(host, port):
    """The first line the server sends (stripped), after which we QUIT."""
    with socket.create_connection((host, port), timeout=5) as s:
        line = s.makefile("rb").readline().decode("latin-1").strip()
        try:
            s.sendall(b"QUIT\r\n")
        except OSError:             # a 421 greeting closes at once
            pass
    return line


def _postfix_env():
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
    if "TZ" in os.environ:
        env["TZ"] = os.environ["TZ"]
    return env


def _become_subreaper():
    """
    When the master exits, its children re-parent to us instead of to
    init (which, in some containers, never reaps them): processes() can
    then see them and reap them.
    """
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    except Exception:
        pass


def _reap(pid, st):
    """A zombie that is our child (we may be a subreaper): reap it."""
    if st[1] == os.getpid():
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
