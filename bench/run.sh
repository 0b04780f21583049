#!/bin/bash
# bench/run.sh -- sqmaild against Postfix and OpenSMTPD, on this machine, in
# the same run, reported as ratios.  See bench/README.md.
#
#   sudo bench/run.sh                 # default: N=5000 SIZE=4096 CONC="1 10 50"
#   sudo QUICK=1 bench/run.sh         # smoke run: N=500, fewer latency/idle
#   sudo MODE=relay bench/run.sh      # only the relay runs (MODE="local relay")
#
# Every MTA runs from a scratch directory under /tmp on its own loopback
# port, and relays mail for relay.test to an smtp-sink on a port of its
# own; only one of them gets mail at a time.  All are stopped and their
# scratch state removed on exit (also on error or ^C).  Every wait is
# bounded, and the whole run by BUDGET.

set -u
umask 022

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(dirname "$HERE")
PY=${PYTHON:-/usr/bin/python3}
HELPER="$PY $HERE/sqbench.py"

MODE=${MODE:-"local relay"}     # local: into a Maildir; relay: to smtp-sink
has_mode() { case " $MODE " in *" $1 "*) return 0 ;; esac; return 1; }
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
	N=${N:-500}; LAT_N=${LAT_N:-50}; IDLE_N=${IDLE_N:-200}
	PHASES_N=${PHASES_N:-50}; PROFILE_N=${PROFILE_N:-300}
	RUN_DEADLINE=${RUN_DEADLINE:-60}
	budget_local=600; budget_relay=300
else
	N=${N:-5000}; LAT_N=${LAT_N:-300}; IDLE_N=${IDLE_N:-1000}
	RUN_DEADLINE=${RUN_DEADLINE:-150}
	budget_local=960; budget_relay=420
fi
# a relay run that misses its deadline still gives the rate of what
# arrived: OpenSMTPD 6.8 relays about 14 messages/s, so 5000 would take
# six minutes at every concurrency
RELAY_DEADLINE=${RELAY_DEADLINE:-60}
if [ -z "${BUDGET:-}" ]; then
	BUDGET=0
	has_mode local && BUDGET=$((BUDGET + budget_local))
	has_mode relay && BUDGET=$((BUDGET + budget_relay))
fi
SIZE=${SIZE:-4096}
CONC=${CONC:-"1 10 50"}
MTAS=${MTAS:-"sqmail postfix opensmtpd"}
PROFILE=${PROFILE:-1}          # extra diagnostic run of sqmaild (not in the tables)
STRACE=${STRACE:-$(command -v strace >/dev/null && echo 1 || echo 0)}  # count syscalls per message (diagnostic)
SYSCALL_N=${SYSCALL_N:-200}
LAT_DEADLINE=${LAT_DEADLINE:-120}
PHASES_N=${PHASES_N:-200}       # sessions timed step by step, one at a time
PROFILE_N=${PROFILE_N:-2000}    # messages per diagnostic run of sqmaild
IDLE_DEADLINE=${IDLE_DEADLINE:-90}
SQMAILD=${SQMAILD:-$TOP/sqmaild}
SMTP_SOURCE=${SMTP_SOURCE:-/usr/sbin/smtp-source}
SMTP_SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
POSTFIX_MASTER=${POSTFIX_MASTER:-/usr/lib/postfix/sbin/master}
OSMTPD_CACHE=${OSMTPD_CACHE:-/tmp/sqbench-cache}   # unpacked opensmtpd .deb, kept
RESULTS=${RESULTS:-$HERE/results}
KEEP=${KEEP:-0}                # 1: keep the scratch directory for inspection

FROM=sender@bench.test
RCPT=sqbench@bench.test
RELAY_RCPT=x@relay.test
BENCH_USER=sqbench

log() { printf '%s bench: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (the MTAs run privilege-separated, as a real site runs them)"
[ -x "$SMTP_SOURCE" ] || die "$SMTP_SOURCE missing (apt-get install postfix)"
for w in $MODE; do
	case $w in
	local) ;;
	relay) [ -x "$SMTP_SINK" ] || die "$SMTP_SINK missing (apt-get install postfix)" ;;
	*) die "unknown MODE word $w (local, relay)" ;;
	esac
done
[ -n "$MODE" ] || die "MODE is empty (local, relay or both)"
[ -x "$PY" ] || die "$PY missing"
for t in unshare mount useradd top; do
	command -v $t >/dev/null || die "$t missing"
done

START=$(date +%s)
WORK=$(mktemp -d /tmp/sqbench.XXXXXX) || die "mktemp"
chmod 755 "$WORK"
mkdir -p "$WORK/logs" "$RESULTS"
JSONL=$WORK/results.jsonl
CMDS=$WORK/commands.txt
NOTES=$WORK/notes.md
: > "$JSONL"; : > "$CMDS"; : > "$NOTES"

ROOTS=""            # pids of the MTA parents we started
HELPER_PID=""
CREATED_USER=0

# ------------------------------------------------------------ clean-up

# kill_tree PID: TERM the process, wait (bounded) for it and all its
# descendants to go, then KILL what is left, one pid at a time.
kill_tree() {
	local root=$1 pids p i
	[ -n "$root" ] && kill -0 "$root" 2>/dev/null || return 0
	pids=$($HELPER tree "$root" 2>/dev/null)
	kill -TERM "$root" 2>/dev/null
	for i in $(seq 1 60); do
		local alive=0
		for p in $pids; do
			kill -0 "$p" 2>/dev/null && alive=1
		done
		[ $alive = 0 ] && break
		sleep 0.25
	done
	for p in $pids; do
		kill -KILL "$p" 2>/dev/null
	done
	wait "$root" 2>/dev/null
	return 0
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "$HELPER_PID" ] && kill_tree "$HELPER_PID"
	for r in $ROOTS; do
		kill_tree "$r"
	done
	if [ -d "$WORK/logs" ]; then
		rm -rf "$RESULTS/logs"
		cp -r "$WORK/logs" "$RESULTS/logs" 2>/dev/null
		gzip -f "$RESULTS"/logs/*.log 2>/dev/null
	fi
	if [ "$CREATED_USER" = 1 ]; then
		userdel "$BENCH_USER" 2>/dev/null
	fi
	if [ "$KEEP" = 1 ]; then
		log "scratch state kept in $WORK"
	else
		rm -rf "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

# run a helper in the background so that a signal reaches our trap at once
helper() {
	$HELPER "$@" &
	HELPER_PID=$!
	wait $HELPER_PID
	local rc=$?
	HELPER_PID=""
	return $rc
}

cmd() { printf '%s\n' "$*" >> "$CMDS"; }
note() { printf '%s\n' "$*" >> "$NOTES"; log "$*"; }

elapsed() { echo $(( $(date +%s) - START )); }
budget_left() { echo $(( BUDGET - $(elapsed) )); }

# ------------------------------------------------------------ set-up

NOFILE=$(ulimit -Hn)
{ [ "$NOFILE" = unlimited ] || [ "$NOFILE" -gt 65536 ]; } && NOFILE=65536
ulimit -n "$NOFILE" || die "cannot set the descriptor limit to $NOFILE"
[ "$NOFILE" -ge $((IDLE_N * 2 + 200)) ] || die "descriptor limit $NOFILE too low for IDLE_N=$IDLE_N"

ensure_system_user() {
	id "$1" >/dev/null 2>&1 && return 0
	useradd --system --no-create-home --home-dir "${2:-/nonexistent}" \
		--shell /usr/sbin/nologin "$1" || die "useradd $1"
	log "created system user $1 (kept)"
}

HOMEDIR=$WORK/home
MAILDIR=$HOMEDIR/Maildir
if id "$BENCH_USER" >/dev/null 2>&1; then
	usermod -d "$HOMEDIR" "$BENCH_USER" || die "usermod $BENCH_USER"
else
	useradd --user-group --no-create-home --home-dir "$HOMEDIR" \
		--shell /usr/sbin/nologin "$BENCH_USER" || die "useradd $BENCH_USER"
	CREATED_USER=1
fi
mkdir -p "$HOMEDIR"
chown "$BENCH_USER:" "$HOMEDIR"
chmod 700 "$HOMEDIR"

# A fresh, empty Maildir for every run (a directory that once held 5000
# names stays big on ext4), flushed to disk before the next run starts.
# The old one is moved aside, not deleted, until the end: on ext4 without
# a journal every new inode first walks past those freed in the last
# minutes, which would charge the next run for this one's cleanup.
ATTIC_N=0
reset_maildir() {
	if [ -e "$MAILDIR" ]; then
		mkdir -p "$WORK/attic"
		ATTIC_N=$((ATTIC_N + 1))
		mv "$MAILDIR" "$WORK/attic/Maildir.$ATTIC_N"
	fi
	mkdir -p "$MAILDIR/new" "$MAILDIR/cur" "$MAILDIR/tmp"
	chown -R "$BENCH_USER:" "$MAILDIR"
	chmod -R 700 "$MAILDIR"
	sync
	sleep 1
}

versions=()

prepare_sqmail() {
	if [ ! -x "$SQMAILD" ]; then
		log "building sqmaild"
		make -C "$TOP" >/dev/null || die "make failed"
	fi
	ensure_system_user _sqmaild
	ensure_system_user _sqmailq
	versions+=("sqmaild at commit $(cd "$TOP" && GIT_OPTIONAL_LOCKS=0 git rev-parse --short HEAD 2>/dev/null), binary built $(date -r "$SQMAILD" '+%F %T')")
}

prepare_postfix() {
	[ -x "$POSTFIX_MASTER" ] || die "Postfix missing (apt-get install postfix)"
	id postfix >/dev/null 2>&1 || die "user postfix missing"
	versions+=("Postfix $(postconf -d -h mail_version 2>/dev/null)")
}

OSMTPD_ROOT=$OSMTPD_CACHE/root
prepare_opensmtpd() {
	if [ ! -x "$OSMTPD_ROOT/usr/sbin/smtpd" ]; then
		log "fetching opensmtpd with apt-get download (not installed: it conflicts with postfix)"
		mkdir -p "$OSMTPD_CACHE"
		( cd "$OSMTPD_CACHE" && chmod 777 . && \
		  { apt-get download opensmtpd >/dev/null 2>&1 || \
		    { apt-get update -qq && apt-get download opensmtpd; }; } ) ||
			die "apt-get download opensmtpd failed"
		dpkg-deb -x "$OSMTPD_CACHE"/opensmtpd_*.deb "$OSMTPD_ROOT" || die "dpkg-deb -x"
	fi
	if ldd "$OSMTPD_ROOT/usr/sbin/smtpd" | grep -q 'not found'; then
		log "installing OpenSMTPD's libraries with apt-get"
		apt-get install -y -qq libevent-2.1-7 libasr0 libdb5.3 >/dev/null 2>&1
		ldd "$OSMTPD_ROOT/usr/sbin/smtpd" | grep 'not found' && die "opensmtpd libraries missing"
	fi
	# Debian's build runs as opensmtpd/opensmtpq (not _smtpd/_smtpq)
	ensure_system_user opensmtpd /var/lib/opensmtpd/empty
	ensure_system_user opensmtpq /var/lib/opensmtpd/empty
	versions+=("OpenSMTPD $(ls "$OSMTPD_CACHE"/opensmtpd_*.deb | sed 's/.*opensmtpd_\([^_]*\)_.*/\1/') (Debian package, stock binary)")
}

# ------------------------------------------------------------ the MTAs
# Each start_* sets ROOT (the pid of the MTA's parent process) and PORT,
# and routes relay.test to 127.0.0.1:SINKPORT (chosen by start_mta), where
# sqbench.py starts an smtp-sink for each relay run.

ROOT=""
PORT=""
SINKPORT=""
declare -A ROOT_OF PORT_OF SINK_OF

# free_port: one that is free and not already handed out, bound or not
free_port() {
	$HELPER freeport $SINKPORT ${PORT_OF[*]:-} ${SINK_OF[*]:-} ||
		die "no free port"
}

start_sqmail() {   # $1: normal|idle (the same configuration for both)
	local d=$WORK/sqmail
	rm -rf "$d"
	mkdir -p "$d/empty"
	PORT=$(free_port)
	cat > "$d/sqmail.conf" <<-EOF
	# sqmaild as a site runs it: started as root, privilege-separated
	hostname "mx.bench.test"
	user "_sqmaild"
	queue user "_sqmailq"
	chroot "$d/empty"
	spool "$d/spool"
	control socket "$d/sqmaild.sock"
	listen on 127.0.0.1 port $PORT
	# one client address opens up to 1000 sessions here
	limit sessions 2000
	limit sessions-per-ip 2000
	domain "bench.test" {
		deliver maildir "~/Maildir/"
	}
	# relayed for any client, as a route makes it
	domain "relay.test" {
		route "[127.0.0.1]:$SINKPORT"
	}
	EOF
	"$SQMAILD" -n -f "$d/sqmail.conf" >&2 || die "sqmaild -n failed"
	cmd "$SQMAILD -d -f $d/sqmail.conf    # as root; config:"
	sed 's/^/    /' "$d/sqmail.conf" >> "$CMDS"
	( cd "$d" && exec "$SQMAILD" -d -f "$d/sqmail.conf" ) >> "$WORK/logs/sqmaild.log" 2>&1 &
	ROOT=$!
	ROOTS="$ROOTS $ROOT"
}

start_postfix() {  # $1: normal|idle
	local d=$WORK/postfix procs=100
	[ "$1" = idle ] && procs=1100
	rm -rf "$d"
	mkdir -p "$d/etc" "$d/data" "$d/spool"
	chown postfix "$d/data"
	PORT=$(free_port)
	cat > "$d/etc/main.cf" <<-EOF
	compatibility_level = 3.6
	queue_directory = $d/spool
	data_directory = $d/data
	mail_owner = postfix
	setgid_group = postdrop
	myhostname = mx.bench.test
	mydomain = bench.test
	myorigin = bench.test
	mydestination = bench.test
	inet_interfaces = 127.0.0.1
	inet_protocols = ipv4
	mynetworks = 127.0.0.0/8
	alias_maps =
	alias_database =
	home_mailbox = Maildir/
	biff = no
	relay_domains = relay.test
	transport_maps = inline:{ relay.test=smtp:[127.0.0.1]:$SINKPORT }
	# one client address opens up to 1000 sessions here
	smtpd_client_connection_count_limit = 0
	default_process_limit = $procs
	EOF
	# master.cf: the services Debian's master.cf enables, listening on our
	# port, without chroot (upstream's default; Debian's enables chroot)
	{
		echo "127.0.0.1:$PORT inet n - n - - smtpd"
		echo "pickup unix n - n 60 1 pickup"
		echo "cleanup unix n - n - 0 cleanup"
		echo "qmgr unix n - n 300 1 qmgr"
		echo "rewrite unix - - n - - trivial-rewrite"
		echo "smtp unix - - n - - smtp"
		echo "relay unix - - n - - smtp"
		echo "bounce unix - - n - 0 bounce"
		echo "defer unix - - n - 0 bounce"
		echo "trace unix - - n - 0 bounce"
		echo "verify unix - - n - 1 verify"
		echo "flush unix n - n 1000? 0 flush"
		echo "proxymap unix - - n - - proxymap"
		echo "proxywrite unix - - n - 1 proxymap"
		echo "showq unix n - n - - showq"
		echo "error unix - - n - - error"
		echo "retry unix - - n - - error"
		echo "discard unix - - n - - discard"
		echo "local unix - n n - - local"
		echo "virtual unix - n n - - virtual"
		echo "anvil unix - - n - 1 anvil"
		echo "scache unix - - n - 1 scache"
		echo "postlog unix-dgram n - n - 1 postlogd"
	} > "$d/etc/master.cf"
	postfix -c "$d/etc" check >&2 || die "postfix check failed"
	# log to a file through postlogd, as sqmaild and OpenSMTPD do here
	# (added after 'postfix check', which cannot log there itself)
	printf 'maillog_file = %s\nmaillog_file_prefixes = %s\n' \
		"$WORK/logs/postfix-$1.log" "$WORK" >> "$d/etc/main.cf"
	cmd "$POSTFIX_MASTER -c $d/etc -d    # as root; main.cf:"
	sed 's/^/    /' "$d/etc/main.cf" >> "$CMDS"
	echo "    # master.cf:" >> "$CMDS"
	sed 's/^/    /' "$d/etc/master.cf" >> "$CMDS"
	"$POSTFIX_MASTER" -c "$d/etc" -d >> "$WORK/logs/postfix-master.log" 2>&1 &
	ROOT=$!
	ROOTS="$ROOTS $ROOT"
}

start_opensmtpd() {  # $1: normal|idle (the same configuration for both)
	local d=$WORK/opensmtpd
	rm -rf "$d"
	mkdir -p "$d/spool" "$d/ovl/lu" "$d/ovl/lw" "$d/ovl/vu" "$d/ovl/vw"
	chmod 711 "$d/spool"
	PORT=$(free_port)
	printf 'lookup file bind\n' > "$d/resolv.conf"
	cat > "$d/smtpd.conf" <<-EOF
	listen on 127.0.0.1 port $PORT
	action "local" maildir "~/Maildir"
	action "relay" relay host smtp://127.0.0.1:$SINKPORT
	match from any for domain "bench.test" action "local"
	match from any for domain "relay.test" action "relay"
	EOF
	"$OSMTPD_ROOT/usr/sbin/smtpd" -n -f "$d/smtpd.conf" >&2 || die "smtpd -n failed"
	# Its paths are compiled in: /usr/libexec/opensmtpd, /var/spool/smtpd,
	# /var/lib/opensmtpd/empty, /var/run/smtpd.sock.  In a private mount
	# namespace: overlays make the mount points, the spool is a scratch
	# directory on the same disk as the others, /run a fresh tmpfs.
	cat > "$d/ns.sh" <<-EOF
	set -e
	mount -t overlay overlay -o lowerdir=/usr/libexec,upperdir=$d/ovl/lu,workdir=$d/ovl/lw /usr/libexec
	mkdir -p /usr/libexec/opensmtpd
	mount --bind $OSMTPD_ROOT/usr/libexec/opensmtpd /usr/libexec/opensmtpd
	mount -t overlay overlay -o lowerdir=/var,upperdir=$d/ovl/vu,workdir=$d/ovl/vw /var
	mkdir -p /var/spool/smtpd /var/lib/opensmtpd/empty
	mount --bind $d/spool /var/spool/smtpd
	mount -t tmpfs -o mode=755 tmpfs /run
	mount --bind $d/resolv.conf /etc/resolv.conf
	exec $OSMTPD_ROOT/usr/sbin/smtpd -d -f $d/smtpd.conf
	EOF
	cmd "unshare -m --propagation private sh $d/ns.sh    # as root; ns.sh:"
	sed 's/^/    /' "$d/ns.sh" >> "$CMDS"
	echo "    # smtpd.conf:" >> "$CMDS"
	sed 's/^/    /' "$d/smtpd.conf" >> "$CMDS"
	unshare -m --propagation private sh "$d/ns.sh" >> "$WORK/logs/opensmtpd.log" 2>&1 &
	ROOT=$!
	ROOTS="$ROOTS $ROOT"
}

stop_mta() {
	kill_tree "$ROOT"
	local r new=""
	for r in $ROOTS; do
		[ "$r" != "$ROOT" ] && new="$new $r"
	done
	ROOTS=$new
	ROOT=""
}

start_mta() {  # $1 mta, $2 variant
	SINKPORT=$(free_port)
	start_"$1" "$2"
	if ! helper waitsmtp "$PORT" 20; then
		note "- $1: no SMTP greeting on port $PORT within 20 s; skipped (see logs/)"
		stop_mta
		return 1
	fi
	log "$1 ($2) up on 127.0.0.1:$PORT, pid $ROOT"
	if [ "$2" = normal ] && command -v ss >/dev/null; then
		# for a listening socket ss shows the accept backlog as Send-Q
		local bl
		bl=$(ss -Hltn "sport = :$PORT" 2>/dev/null | awk '{print $3; exit}')
		note "- $1 listens on 127.0.0.1:$PORT with an accept backlog of ${bl:-?} (ss -ltn Send-Q)"
	fi
}

# ------------------------------------------------------------ the runs

use() { ROOT=${ROOT_OF[$1]:-}; PORT=${PORT_OF[$1]:-}; SINKPORT=${SINK_OF[$1]:-}; }

# bring_up MTA: start it for the throughput and latency runs
bring_up() {
	ROOT_OF[$1]=""
	if start_mta "$1" normal; then
		ROOT_OF[$1]=$ROOT
		PORT_OF[$1]=$PORT
		SINK_OF[$1]=$SINKPORT
	fi
}

# after_run MTA: a run that missed its deadline leaves a backlog in the
# MTA's queue that would go on arriving during the next run; start the MTA
# afresh, with an empty queue, instead.
after_run() {
	tail -n 1 "$JSONL" | grep -q '"complete": true' && return 0
	note "- $1: restarted with an empty queue after an incomplete run"
	use "$1"
	stop_mta
	bring_up "$1"
}

# helper_failed WHAT: sqbench.py said why on stderr; the row it did not
# write counts as incomplete
helper_failed() {
	note "- $1: sqbench.py failed (its message is in the terminal output)"
	echo '{"kind": "failed"}' >> "$JSONL"
}

# target MODE: where the messages of a run go, in TO (the recipient), and
# how sqbench.py counts them, in WHERE (its options)
target() {
	if [ "$1" = relay ]; then
		TO=$RELAY_RCPT
		WHERE="--sink $SINKPORT --sink-bin $SMTP_SINK"
	else
		reset_maildir
		TO=$RCPT
		WHERE="--maildir $MAILDIR"
	fi
}

# MTAS rotated left by $1 places: each concurrency level starts with
# another MTA, so that a slow drift in the machine's background load does
# not always favour the same one.
rotated() {
	local -a a=($MTAS)
	local i n=${#a[@]} out=""
	for ((i = 0; i < n; i++)); do
		out="$out ${a[$(( (i + $1) % n ))]}"
	done
	echo $out
}

throughput_run() {  # mode mta conc
	local mode=$1 m=$2 c=$3 left dl=$RUN_DEADLINE tag=$2-c$3
	use "$m"
	[ -n "$ROOT" ] || return 0
	left=$(budget_left)
	if [ "$left" -lt 20 ]; then
		note "- $m $mode conc $c: skipped, the time budget (BUDGET=$BUDGET s) is spent"
		return 0
	fi
	[ "$mode" = relay ] && dl=$RELAY_DEADLINE tag=$m-relay-c$c
	[ "$left" -lt "$dl" ] && dl=$left
	target "$mode"
	local src="$SMTP_SOURCE -s $c -m $N -l $SIZE -f $FROM -t $TO 127.0.0.1:$PORT"
	cmd "$src"
	log "$m: $mode, $N messages, $c sessions (deadline ${dl}s)"
	helper throughput --mta "$m" --root "$ROOT" $WHERE \
		--count "$N" --conc "$c" --size "$SIZE" --deadline "$dl" \
		--log "$WORK/logs/$tag" -- $src >> "$JSONL" ||
		helper_failed "$m $mode conc $c"
	tail -n 1 "$JSONL" | cut -c1-240 >&2
	after_run "$m"
	sleep 2
}

latency_run() {
	local m=$1
	use "$m"
	[ -n "$ROOT" ] || return 0
	if [ "$(budget_left)" -lt 20 ]; then
		note "- $m latency: skipped, the time budget is spent"
		return 0
	fi
	reset_maildir
	cmd "$HELPER latency --mta $m --port $PORT --maildir $MAILDIR --count $LAT_N --size $SIZE"
	log "$m: latency, $LAT_N messages one at a time"
	helper latency --mta "$m" --port "$PORT" --maildir "$MAILDIR" \
		--count "$LAT_N" --size "$SIZE" --deadline "$LAT_DEADLINE" >> "$JSONL"
	tail -n 1 "$JSONL" >&2
	cmd "$HELPER phases --mta $m --port $PORT --count $PHASES_N --size $SIZE"
	log "$m: session phases, $PHASES_N sessions one at a time"
	helper phases --mta "$m" --port "$PORT" --count "$PHASES_N" --size "$SIZE" >> "$JSONL"
	tail -n 1 "$JSONL" | cut -c1-240 >&2
	sleep 1
}

profile_run() {  # mode
	local c
	for c in 1 10; do
		use sqmail
		[ -n "$ROOT" ] && [ "$PROFILE" = 1 ] || return 0
		if [ "$(budget_left)" -lt 40 ]; then
			note "- sqmaild $1 diagnostic run: skipped, the time budget is spent"
			return 0
		fi
		target "$1"
		local src="$SMTP_SOURCE -s $c -m $PROFILE_N -l $SIZE -f $FROM -t $TO 127.0.0.1:$PORT"
		cmd "$HELPER profile --mta sqmail --root $ROOT $WHERE --count $PROFILE_N --conc $c --hz 200 -- $src    # diagnostic"
		log "sqmail: $1 diagnostic run, conc $c, with process-state sampling"
		helper profile --mta sqmail --root "$ROOT" $WHERE \
			--count "$PROFILE_N" --conc $c --deadline 40 --hz 200 \
			--log "$WORK/logs/sqmail-profile-$1-c$c" -- $src >> "$JSONL" ||
			helper_failed "sqmail $1 diagnostic run, conc $c"
		after_run sqmail
	done
}

syscalls_run() {
	local m=$1
	use "$m"
	[ -n "$ROOT" ] && [ "$STRACE" = 1 ] || return 0
	if [ "$(budget_left)" -lt 40 ]; then
		note "- $m system call count: skipped, the time budget is spent"
		return 0
	fi
	reset_maildir
	local src="$SMTP_SOURCE -s 1 -m $SYSCALL_N -l $SIZE -f $FROM -t $RCPT 127.0.0.1:$PORT"
	cmd "$HELPER syscalls --mta $m --root $ROOT --maildir $MAILDIR --count $SYSCALL_N -- $src    # diagnostic: strace -f -c on the MTA's processes"
	log "$m: counting system calls (strace), $SYSCALL_N messages"
	helper syscalls --mta "$m" --root "$ROOT" --maildir "$MAILDIR" \
		--count "$SYSCALL_N" --log "$WORK/logs/$m" --strace "$(command -v strace)" \
		-- $src >> "$JSONL"
	tail -n 1 "$JSONL" | cut -c1-240 >&2
}

idle_run() {
	local m=$1
	if [ "$(budget_left)" -lt 30 ]; then
		note "- $m idle sessions: skipped, the time budget is spent"
		return 0
	fi
	start_mta "$m" idle || return 0
	cmd "$HELPER idle --mta $m --port $PORT --root $ROOT --count $IDLE_N"
	log "$m: $IDLE_N idle sessions"
	helper idle --mta "$m" --port "$PORT" --root "$ROOT" --count "$IDLE_N" \
		--deadline "$IDLE_DEADLINE" >> "$JSONL"
	tail -n 1 "$JSONL" | cut -c1-240 >&2
	stop_mta
}

for m in $MTAS; do
	case $m in
	sqmail|postfix|opensmtpd) prepare_$m ;;
	*) die "unknown MTA $m (sqmail, postfix, opensmtpd)" ;;
	esac
done

log "measuring the machine's background load for 3 s"
BG=$($HELPER bgload 3)
log "background load: $BG"

cat > "$WORK/meta.json" <<END_META
{"date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "host": "$(. /etc/os-release; echo "$PRETTY_NAME")",
 "cpus": "$(nproc)", "kernel": "$(uname -r)",
 "fs": "$(df -T "$WORK" | awk 'NR==2 {print $2 " on " $1}')",
 "versions": [$(for v in "${versions[@]}"; do printf '"%s",' "$v"; done | sed 's/,$//')],
 "N": $N, "SIZE": $SIZE, "CONC": "$CONC", "LAT_N": $LAT_N, "IDLE_N": $IDLE_N,
 "MODE": "$MODE", "RELAY_DEADLINE": $RELAY_DEADLINE,
 "background": $BG,
 "QUICK": $([ "$QUICK" = 1 ] && echo true || echo false)}
END_META

{
	echo "# ulimit -n $NOFILE; scratch directory $WORK"
	echo "# $0 with MODE=\"$MODE\" N=$N SIZE=$SIZE CONC=\"$CONC\" LAT_N=$LAT_N IDLE_N=$IDLE_N QUICK=$QUICK"
	echo "# all MTAs run at once for the throughput and latency runs; only the one measured gets mail"
	echo "# relay runs: sqbench.py starts '$SMTP_SINK -c -u nobody -m 1000 127.0.0.1:SINKPORT 1024' for each run, on the port the MTA routes relay.test to"
} >> "$CMDS"

# 1 to 3: throughput (local, relay) and latency, all MTAs up, one
# measured at a time
for m in $MTAS; do
	bring_up "$m"
done
i=0
for mode in local relay; do
	has_mode $mode || continue
	for c in $CONC; do
		for m in $(rotated $i); do
			throughput_run $mode "$m" "$c"
		done
		i=$((i + 1))
	done
done
if has_mode local; then
	for m in $(rotated $i); do
		latency_run "$m"
	done
fi
for mode in local relay; do
	has_mode $mode && profile_run $mode
done
if has_mode local; then
	for m in $MTAS; do
		syscalls_run "$m"
	done
fi
for m in $MTAS; do
	use "$m"
	stop_mta
	ROOT_OF[$m]=""
done
# spare/ keeps finished files for reuse (sqmail-queue(5)): not left over
spool_files() { find "$WORK/sqmail/spool" -type f -not -path '*/spare/*' 2>/dev/null; }
left_over=$(spool_files | wc -l)
if [ "$left_over" != 0 ]; then
	note "- sqmaild: $left_over files left in its spool after every message was delivered and it stopped: $(spool_files | head -n 5 | tr '\n' ' ')"
fi

# 4: idle sessions, one MTA at a time, each freshly started
if has_mode local; then
	for m in $MTAS; do
		idle_run "$m"
	done
fi

# errors in sqmaild's log, for the report
if [ -f "$WORK/logs/sqmaild.log" ]; then
	pat='fatal|error:|warn|died|signal|lost|temporary|fail|refus|timeout|quarantin'
	ok='errors 0$|received signal 15, shutting down'
	if grep -iE "$pat" "$WORK/logs/sqmaild.log" | grep -qvE "$ok"; then
		note "- sqmaild log lines that look like trouble (first 10):"
		grep -iE "$pat" "$WORK/logs/sqmaild.log" | grep -vE "$ok" |
			head -n 10 | sed 's/^/        /' >> "$NOTES"
	fi
fi

log "done in $(elapsed) s"
helper report --results "$JSONL" --output "$RESULTS/latest.md" \
	--meta "$WORK/meta.json" --commands "$CMDS" --notes "$NOTES"
cp "$JSONL" "$RESULTS/latest.jsonl"
