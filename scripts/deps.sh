#!/bin/sh
# Install what sqmail needs from Debian's packages, only what is missing.
# Usage: deps.sh build|test.  As root it runs apt-get; otherwise it names
# what to install and fails if anything is missing.
set -u

build_pkgs="gcc make pkg-config byacc mandoc libevent-dev libtls-dev \
libbsd-dev libcdb-dev libc-ares-dev libldap-dev libpam0g-dev libcrypt-dev"
# clang: fuzz targets; perl: prove; python3, swaks: the end-to-end tests;
# procps: ps/pgrep; passwd: useradd for the test users; tinycdb: cdb(1);
# unbound: the DNS server the resolver tests talk to on loopback; postfix,
# sasl2-bin: the remote MTA the delivery tests send to (regress/e2e/mtapeer.py);
# openssl, sslscan: the clients of the TLS tests (regress/e2e/55_tls_inbound.t);
# slapd, ldap-utils: the LDAP server of regress/e2e/57_auth_ldap.t (ldappeer.py);
# bsd-mailx: the mail user agent of regress/e2e/85_sendmail.t;
# whois: mkpasswd, the yescrypt hashes of regress/e2e/56_auth.t;
# procmail, maildrop: the delivery programs of regress/e2e/88_procmail.t.
test_pkgs="clang perl python3 swaks procps passwd tinycdb unbound postfix \
sasl2-bin openssl sslscan slapd ldap-utils bsd-mailx whois procmail maildrop"

case "${1:-build}" in
build)	want=$build_pkgs ;;
test)	want=$test_pkgs ;;
*)	echo "usage: deps.sh build|test" >&2; exit 64 ;;
esac

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "sqmail needs these Debian packages:$missing" >&2
	echo "install them with: sudo apt-get install$missing" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq $missing >/dev/null 2>&1; then
	apt-get update -qq >/dev/null 2>&1 || true
	apt-get install -y -qq $missing >/dev/null || exit 1
fi
