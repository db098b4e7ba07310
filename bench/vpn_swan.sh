#!/usr/bin/env bash
# bench/vpn_swan.sh [BUILD_DIR] - the strongSwan figure `qkd vpn` must beat
# (issue 14; docs/vpn.md "Interoperability with strongSwan"): TCP
# throughput of iperf3 h1 -> h2 through two strongSwan 5.9.8 gateways,
# charon-systemd with kernel-libipsec (ESP in userspace, in UDP on port
# 4500, AES-GCM-16-256), in four network namespaces made by
# tests/integration/lib_swan.sh, the IKE SA keyed with a PPK as in the
# interop test. Each charon runs on one core of its own (taskset: gw1 on
# CPU $CPU1, gw2 on CPU $CPU2; defaults 0 and 1), the iperf3 ends are not
# pinned.
#
# Rows: one TCP stream and 4 streams for $TIME seconds (default 10) each,
# Gbit/s received at h2, and the CPU each charon used over the run (100 % =
# its one core). The load average is printed first: the machine is shared,
# so a loaded run reads low. BUILD_DIR is accepted for `make bench` and not
# used. Needs root; exits 1 if a run failed, 0 with a note if not root.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
TIME=${TIME:-10}
CPU1=${CPU1:-0}
CPU2=${CPU2:-1}
if [ "$(id -u)" -ne 0 ] || ! command -v swanctl >/dev/null || ! command -v iperf3 >/dev/null ||
   [ ! -x /usr/sbin/charon-systemd ]; then
	echo "vpn_swan.sh: skipped: needs root, swanctl, charon-systemd and iperf3" >&2
	exit 0
fi
# shellcheck source=tests/integration/lib_swan.sh
. "$TOP/tests/integration/lib_swan.sh"
SWAN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/qkd-vpn-swan.XXXXXX") || exit 1
IPERF_PID=
# shellcheck disable=SC2317  # run by the trap
cleanup() {
	[ -n "$IPERF_PID" ] && kill "$IPERF_PID" 2>/dev/null
	swan_net_down
	if [ -n "${KEEP:-}" ]; then echo "vpn_swan.sh: kept $SWAN_DIR" >&2; else rm -rf "$SWAN_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "vpn_swan.sh: $*" >&2; exit 1; }

hex() { head -c "$1" /dev/urandom | od -An -tx1 -v | tr -d ' \n'; }
PSK=$(hex 32)
ID=$(cat /proc/sys/kernel/random/uuid)
PPK=$(hex 32)
swan_net_up || die "the namespaces could not be made"
swan_conf gw2 local="$SWAN_GW2" remote="$SWAN_GW1" local_ts="$SWAN_NET2" remote_ts="$SWAN_NET1" \
	local_id=gw2.qkd.test remote_id=gw1.qkd.test psk="$PSK" ppk_id="$ID" ppk="$PPK" log=1
swan_conf gw1 local="$SWAN_GW1" remote="$SWAN_GW2" local_ts="$SWAN_NET1" remote_ts="$SWAN_NET2" \
	local_id=gw1.qkd.test remote_id=gw2.qkd.test psk="$PSK" ppk_id="$ID" ppk="$PPK" \
	initiate=yes log=1
swan_start gw2 "$SWAN_NS_GW2" "$CPU2" || die "charon gw2 did not start (see $SWAN_DIR/gw2)"
swan_start gw1 "$SWAN_NS_GW1" "$CPU1" || die "charon gw1 did not start or initiate (see $SWAN_DIR/gw1)"
swan_wait_sa gw1 net 15 || die "no CHILD_SA within 15 s"
swan_ctl gw1 --list-sas | grep -q 'CURVE_25519/PPK$' || die "the IKE SA has no PPK"

ip netns exec "$SWAN_NS_H2" iperf3 -s -B "$SWAN_H2" >"$SWAN_DIR/iperf3-s.out" 2>&1 &
IPERF_PID=$!
for _ in $(seq 1 50); do
	ip netns exec "$SWAN_NS_H2" ss -ltn | grep -q ":5201 " && break
	sleep 0.1
done

# CPU ticks (user + system) of a process and all its threads.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# run LABEL STREAMS: one iperf3 run, one row of the table.
run() {
	local label=$1 p=$2 t1 t2 a1 a2 b1 b2 bps hz
	hz=$(getconf CLK_TCK)
	a1=$(ticks "$(swan_pid gw1)"); b1=$(ticks "$(swan_pid gw2)"); t1=$(date +%s.%N)
	ip netns exec "$SWAN_NS_H1" timeout $((TIME + 20)) iperf3 -c "$SWAN_H2" -t "$TIME" \
		-P "$p" -J >"$SWAN_DIR/run-$p.json" 2>&1 || die "iperf3 -P $p failed: $(cat "$SWAN_DIR/run-$p.json")"
	a2=$(ticks "$(swan_pid gw1)"); b2=$(ticks "$(swan_pid gw2)"); t2=$(date +%s.%N)
	bps=$(jq -r '.end.sum_received.bits_per_second' "$SWAN_DIR/run-$p.json")
	awk -v l="$label" -v b="$bps" -v a=$((a2 - a1)) -v c=$((b2 - b1)) -v hz="$hz" \
		-v t="$(awk -v x="$t1" -v y="$t2" 'BEGIN { print y - x }')" \
		'BEGIN { printf "%-22s %8.2f %9.0f %% %9.0f %%\n", l, b / 1e9, 100 * a / hz / t, 100 * c / hz / t }'
}

echo "$(swan_ctl gw1 --version --daemon 2>/dev/null | head -n1), kernel-libipsec, ESP AES_GCM_16-256 in UDP 4500, IKE with PPK"
echo "gw1 charon on CPU $CPU1, gw2 charon on CPU $CPU2; iperf3 TCP h1 -> h2, $TIME s per row; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-22s %8s %11s %11s\n' "run" "Gbit/s" "gw1 CPU" "gw2 CPU"
run "TCP, 1 stream" 1
run "TCP, 4 streams" 4
OUTB=$(swan_ctl gw1 --list-sas | awk '$1 == "out" { print $3; exit }')
echo "gw1's outbound ESP SA carried $OUTB bytes over both runs"
