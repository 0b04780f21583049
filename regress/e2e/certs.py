#!/usr/bin/env python3
"""
certs: a throw-away test PKI for sqmail's TLS tests, made with the openssl
command line.  Standard library only.

    import certs
    pki = certs.make_pki()              # cached: one PKI per process
    pki.ca.cert                         # CA certificate (PEM path)
    pki.server.cert, pki.server.key     # leaf for certs.SERVER_NAMES
    pki.server_cert(["mx.example.test", "127.0.0.2"])   # another leaf
    pki.client.cert, pki.client.key     # clientAuth, CN + email SAN
    pki.selfsigned                      # server names, not from the CA
    pki.expired                         # from the CA, expired in 2020
    certs.fingerprint(pki.server.cert)              # "ab12...": hex
    certs.fingerprint(pki.server.cert, colons=True) # "AB:12:...": openssl's
    certs.spki_sha256(pki.server.cert)  # hex SHA-256 of the public key

Every key is EC P-256 (fast to make).  Leaf certificates carry the names
in subjectAltName (DNS: or IP: as the name looks) and the first name as
CN; every certificate has subject/authority key identifiers, and the CA
is critical CA:TRUE with keyCertSign, so strict verifiers accept the
chain.  The expired certificate has the same names as pki.server and is
signed by the same CA, so the only thing wrong with it is its dates
(2020-01-01 to 2020-01-02); the self-signed one has the same names and
good dates, so the only thing wrong with it is its issuer.

make_pki(directory) with the same arguments returns the same Pki within
a process; without a directory the PKI lives in a temporary directory
removed at interpreter exit (SQTEST_KEEP=1 keeps it).  OpenSslError (with
openssl's output) when a command fails.
"""

import atexit
import base64
import dataclasses
import hashlib
import ipaddress
import os
import random
import re
import shutil
import subprocess
import tempfile

SERVER_NAMES = ("peer.test", "localhost", "127.0.0.1", "::1")
CLIENT_CN = "client.sqtest.test"
CLIENT_EMAIL = "client@example.test"
EXPIRED_START = "20200101000000Z"
EXPIRED_END = "20200102000000Z"
OPENSSL = os.environ.get("CERTS_OPENSSL", "openssl")

# A configuration of our own, so the system's openssl.cnf changes nothing.
REQ_CONF = """\
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
"""

CA_EXT = """\
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

LEAF_EXT = """\
[ leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = {eku}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = {san}
"""

# For `openssl ca`, the only command of 3.0 that sets arbitrary dates.
CA_CONF = """\
[ ca ]
default_ca = testca
[ testca ]
database = {dir}/ca.index
new_certs_dir = {dir}/ca.new
serial = {dir}/ca.serial
default_md = sha256
policy = anything
unique_subject = no
email_in_dn = no
[ anything ]
commonName = supplied
"""


class OpenSslError(Exception):
    """An openssl command failed; the text holds the command and output."""


@dataclasses.dataclass(frozen=True)
class Cert:
    """One certificate and its key (PEM paths) and the names it is for."""
    cert: str
    key: str
    names: tuple = ()

    def fingerprint(self, colons=False):
        return fingerprint(self.cert, colons)

    @property
    def pem(self):
        with open(self.cert) as f:
            return f.read()


@dataclasses.dataclass
class Pki:
    """
    The PKI of one directory: ca, server, client, selfsigned, expired
    (each a Cert; ca.key signs), and server_cert() for more leaves.
    """
    dir: str
    ca: Cert
    server: Cert
    client: Cert
    selfsigned: Cert
    expired: Cert
    client_cn: str = CLIENT_CN
    client_email: str = CLIENT_EMAIL

    def server_cert(self, names, name=None):
        """A leaf from the CA for names (DNS names or IPs); cached."""
        names = tuple(names)
        key = ("server",) + names
        if key not in self._extra:
            base = name or "server-" + _slug("-".join(names))
            self._extra[key] = _leaf(self.dir, base, self.ca, names,
                                     "serverAuth")
        return self._extra[key]

    def client_cert(self, cn, emails=(), name=None, expired=False):
        """
        A clientAuth leaf from the CA with subject CN cn, no DNS/IP
        names, emails in the SAN; expired=True: valid only from
        EXPIRED_START to EXPIRED_END.  Cached.
        """
        emails = tuple(emails)
        key = ("client", cn, emails, expired)
        if key not in self._extra:
            base = name or "client-" + _slug(cn) + ("-exp" if expired else "")
            if expired:
                self._extra[key] = _expired_client(self.dir, base, self.ca,
                                                   cn, emails)
            else:
                self._extra[key] = _leaf(self.dir, base, self.ca, (),
                                         "clientAuth", cn=cn, emails=emails)
        return self._extra[key]

    def __post_init__(self):
        self._extra = {}


def _slug(s):
    s = re.sub(r"[^A-Za-z0-9.-]+", "_", s)
    if len(s) > 60:
        s = s[:40] + "-" + hashlib.sha256(s.encode()).hexdigest()[:12]
    return s


def openssl(*args, cwd=None, input=None):
    """Run openssl with args; its stdout as text, OpenSslError if it fails."""
    argv = [OPENSSL] + [str(a) for a in args]
    env = dict(os.environ)
    env.pop("OPENSSL_CONF", None)
    try:
        p = subprocess.run(argv, cwd=cwd, input=input, capture_output=True,
                           env=env, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise OpenSslError("%s: %s" % (" ".join(argv), e))
    if p.returncode != 0:
        raise OpenSslError("%s: exit %d\n%s%s" % (
            " ".join(argv), p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace")))
    return p.stdout.decode("utf-8", "replace")


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def _is_ip(name):
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def san_of(names, emails=()):
    """The subjectAltName value for DNS names / IP addresses and emails."""
    parts = [("IP:%s" if _is_ip(n) else "DNS:%s") % n for n in names]
    parts += ["email:%s" % e for e in emails]
    return ", ".join(parts)


def _serial():
    return "0x%016x" % random.SystemRandom().getrandbits(63)


def _req_conf(d):
    p = os.path.join(d, "req.cnf")
    if not os.path.exists(p):
        _write(p, REQ_CONF)
    return p


def _newkey_args():
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-pkeyopt", "ec_param_enc:named_curve", "-nodes"]


def _subj(cn):
    return "/CN=" + cn.replace("/", "\\/")


def _make_ca(d, cn="sqmail test CA"):
    cert = os.path.join(d, "ca.crt")
    key = os.path.join(d, "ca.key")
    conf = _write(os.path.join(d, "ca-req.cnf"), REQ_CONF + CA_EXT)
    openssl("req", "-config", conf, "-x509", *_newkey_args(),
            "-keyout", key, "-out", cert, "-days", "3650", "-sha256",
            "-subj", _subj(cn), "-set_serial", _serial(),
            "-extensions", "ca_ext")
    return Cert(cert, key, (cn,))


def _csr(d, base, cn):
    key = os.path.join(d, base + ".key")
    csr = os.path.join(d, base + ".csr")
    openssl("req", "-config", _req_conf(d), "-new", *_newkey_args(),
            "-keyout", key, "-out", csr, "-subj", _subj(cn))
    return key, csr


def _ext_file(d, base, names, eku, emails=()):
    return _write(os.path.join(d, base + ".ext"), LEAF_EXT.format(
        eku=eku, san=san_of(names, emails)))


def _leaf(d, base, ca, names, eku, cn=None, emails=()):
    """A leaf signed by ca with names in the SAN (first one the CN)."""
    names = tuple(names)
    key, csr = _csr(d, base, cn or (names[0] if names else base))
    cert = os.path.join(d, base + ".crt")
    openssl("x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key,
            "-set_serial", _serial(), "-days", "825", "-sha256",
            "-extfile", _ext_file(d, base, names, eku, emails),
            "-extensions", "leaf", "-out", cert)
    return Cert(cert, key, names)


def _selfsigned(d, base, names):
    names = tuple(names)
    key, csr = _csr(d, base, names[0])
    cert = os.path.join(d, base + ".crt")
    # Its own key signs it; the extension file's authorityKeyIdentifier
    # then names that key, as a self-signed certificate's does.
    openssl("x509", "-req", "-in", csr, "-key", key, "-set_serial",
            _serial(), "-days", "825", "-sha256",
            "-extfile", _ext_file(d, base, names, "serverAuth"),
            "-extensions", "leaf", "-out", cert)
    return Cert(cert, key, names)


def _expired(d, base, ca, names):
    """From the CA, valid only from EXPIRED_START to EXPIRED_END."""
    names = tuple(names)
    key, csr = _csr(d, base, names[0])
    cert = os.path.join(d, base + ".crt")
    newdir = os.path.join(d, "ca.new")
    os.makedirs(newdir, exist_ok=True)
    _write(os.path.join(d, "ca.index"), "")
    _write(os.path.join(d, "ca.serial"), _serial()[2:] + "\n")
    conf = _write(os.path.join(d, "ca.cnf"), CA_CONF.format(dir=d))
    openssl("ca", "-batch", "-config", conf, "-cert", ca.cert, "-keyfile",
            ca.key, "-in", csr, "-out", cert, "-notext",
            "-startdate", EXPIRED_START, "-enddate", EXPIRED_END,
            "-extfile", _ext_file(d, base, names, "serverAuth"),
            "-extensions", "leaf")
    return Cert(cert, key, names)


def _expired_client(d, base, ca, cn, emails=()):
    """A clientAuth leaf for cn from ca, expired like _expired's."""
    key, csr = _csr(d, base, cn)
    cert = os.path.join(d, base + ".crt")
    newdir = os.path.join(d, "ca.new")
    os.makedirs(newdir, exist_ok=True)
    _write(os.path.join(d, "ca.index"), "")
    _write(os.path.join(d, "ca.serial"), _serial()[2:] + "\n")
    conf = _write(os.path.join(d, "ca.cnf"), CA_CONF.format(dir=d))
    openssl("ca", "-batch", "-config", conf, "-cert", ca.cert, "-keyfile",
            ca.key, "-in", csr, "-out", cert, "-notext",
            "-startdate", EXPIRED_START, "-enddate", EXPIRED_END,
            "-extfile", _ext_file(d, base, (), "clientAuth", emails),
            "-extensions", "leaf")
    return Cert(cert, key, ())


def der_of(cert_path):
    """The DER bytes of the (first) certificate in a PEM file."""
    with open(cert_path) as f:
        pem = f.read()
    m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----",
                  pem, re.S)
    if not m:
        raise ValueError("no PEM certificate in %s" % cert_path)
    return base64.b64decode("".join(m.group(1).split()))


def fingerprint(cert_path, colons=False):
    """
    SHA-256 of the certificate's DER: "ab12..." (lower-case hex), or with
    colons=True "AB:12:..." (upper case, as `openssl x509 -fingerprint
    -sha256` prints it after "sha256 Fingerprint=").
    """
    h = hashlib.sha256(der_of(cert_path)).hexdigest()
    if colons:
        return ":".join(h[i:i + 2] for i in range(0, len(h), 2)).upper()
    return h


def spki_sha256(cert_path, colons=False):
    """SHA-256 of the SubjectPublicKeyInfo (DANE 3 1 1, key pinning)."""
    der = openssl("x509", "-in", cert_path, "-noout", "-pubkey")
    pub = subprocess.run([OPENSSL, "pkey", "-pubin", "-outform", "DER"],
                         input=der.encode(), capture_output=True, timeout=60)
    if pub.returncode != 0:
        raise OpenSslError("openssl pkey -pubin: %s" % pub.stderr.decode())
    h = hashlib.sha256(pub.stdout).hexdigest()
    if colons:
        return ":".join(h[i:i + 2] for i in range(0, len(h), 2)).upper()
    return h


_cache = {}
_tmpdirs = []


def make_pki(directory=None, server_names=SERVER_NAMES, client_cn=CLIENT_CN,
             client_email=CLIENT_EMAIL):
    """
    The PKI in directory (made on first use; a new temporary directory
    when None), cached per process by its arguments.
    """
    key = (os.path.realpath(directory) if directory else None,
           tuple(server_names), client_cn, client_email)
    if key in _cache:
        return _cache[key]
    if directory is None:
        directory = tempfile.mkdtemp(prefix="sqtest-pki-")
        _tmpdirs.append(directory)
    os.makedirs(directory, exist_ok=True)
    d = os.path.realpath(directory)
    os.chmod(d, 0o755)
    ca = _make_ca(d)
    pki = Pki(
        dir=d, ca=ca,
        server=_leaf(d, "server", ca, server_names, "serverAuth"),
        client=_leaf(d, "client", ca, (), "clientAuth", cn=client_cn,
                     emails=(client_email,) if client_email else ()),
        selfsigned=_selfsigned(d, "selfsigned", server_names),
        expired=_expired(d, "expired", ca, server_names),
        client_cn=client_cn, client_email=client_email)
    # Daemons that drop privileges may read the files after the drop.
    for n in os.listdir(d):
        p = os.path.join(d, n)
        if os.path.isfile(p):
            os.chmod(p, 0o644)
    _cache[key] = pki
    return pki


def _cleanup():
    for d in _tmpdirs:
        if os.environ.get("SQTEST_KEEP") == "1":
            print("# certs kept at %s" % d)
        else:
            shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


if __name__ == "__main__":
    import sys
    p = make_pki(sys.argv[1] if len(sys.argv) > 1 else None)
    for f in dataclasses.fields(p):
        v = getattr(p, f.name)
        print("%-10s %s" % (f.name, v))
    print("server fingerprint %s" % fingerprint(p.server.cert, True))
