#!/bin/sh
# What the end-to-end tests (regress/e2e) need, from Debian's packages:
# python3 (the harness; standard library only), perl (prove), swaks (an SMTP
# client), procps (ps/pgrep when debugging a run), passwd (useradd, for the
# unprivileged test user and the root-only privilege tests).
# As root it installs what is missing with apt-get; otherwise it names what
# to install and exits 1 when anything is missing.
set -u

# command package
needs="python3 python3
perl perl
prove perl
swaks swaks
ps procps
useradd passwd"

missing=""
for pkg in $(echo "$needs" | while read -r cmd pkg; do
	command -v "$cmd" >/dev/null 2>&1 || echo "$pkg"
done | sort -u); do
	missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "the end-to-end tests need these Debian packages:$missing" >&2
	echo "install them with: sudo apt-get install$missing" >&2
	exit 1
fi
echo "test-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq $missing >/dev/null 2>&1; then
	apt-get update -qq >/dev/null 2>&1 || true
	apt-get install -y -qq $missing >/dev/null || exit 1
fi
