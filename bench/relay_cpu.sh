#!/usr/bin/env bash
# bench/relay_cpu.sh BUILD_DIR [TOPOLOGY] [SECONDS] - the CPU an example
# relay network takes on this machine (examples/relay/README.md, "Round
# size"). Not in `make bench`: it loads the machine for SECONDS (default
# 120) with every node of TOPOLOGY (default examples/relay/mesh6.topo).
#
# make-network.sh writes the network into a scratch directory on free
# ports, start.sh starts it; after 5 s of start-up the nodes' CPU (utime +
# stime of each process, /proc/PID/stat) is sampled, and again at SECONDS.
# Printed: `uptime` and top's CPU line before and at the end, the nodes'
# CPU seconds against the wall time, and per link its blocks, key rate and
# failed rounds. stop.sh stops the network; the directory is removed.
# ROUND_PULSES and NICE pass through to make-network.sh and start.sh.
set -u

if [ $# -lt 1 ] || [ $# -gt 3 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BUILD_DIR [TOPOLOGY] [SECONDS]" >&2
	exit 2
fi
TOP=$(cd "$(dirname "$0")/.." && pwd)
QKD=$(cd "$1" && pwd)/qkd
TOPO=${2:-$TOP/examples/relay/mesh6.topo}
SECS=${3:-120}
[ -x "$QKD" ] || { echo "$0: $QKD is missing: build first" >&2; exit 1; }
command -v jq >/dev/null || { echo "$0: jq is not installed" >&2; exit 1; }
case $SECS in ''|*[!0-9]*) echo "$0: SECONDS '$SECS' is not a number" >&2; exit 2 ;; esac
[ "$SECS" -ge 10 ] || { echo "$0: SECONDS: at least 10" >&2; exit 2; }
TICKS=$(getconf CLK_TCK)
D=$(mktemp -d /tmp/qkd-relay-cpu.XXXXXX)
# stop.sh waits for every node to exit before the directory goes.
trap '[ -x "$D/net/stop.sh" ] && "$D/net/stop.sh" >/dev/null 2>&1; rm -rf "$D"' EXIT

# A base port whose ranges (links, key managers, metrics) nobody listens on.
base=0
for _ in $(seq 1 20); do
	b=$((20000 + (RANDOM % 400) * 100))
	busy=$(ss -ltnH | awk -v b="$b" '{ p = $4; sub(/.*:/, "", p); p -= b
		if ((p >= 0 && p < 1000) || (p >= 1000 && p < 1100) || (p >= 2000 && p < 2100)) n++ }
		END { print n + 0 }')
	[ "$busy" = 0 ] && { base=$b; break; }
done
[ "$base" != 0 ] || { echo "$0: no free range of ports" >&2; exit 1; }
QKD=$QKD "$TOP/examples/relay/make-network.sh" "$TOPO" "$D/net" "$base" >/dev/null || exit 1
nodes=$(awk '{ sub(/#.*/, "") } $1 == "node" { print $2 }' "$TOPO")

cpu() {	# CPU ticks of every node process
	local t=0 n
	for n in $nodes; do
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$(cat "$D/net/$n.pid")/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}

echo "before: $(uptime)"
top -b -n1 | sed -n 3p
QKD=$QKD "$D/net/start.sh" >/dev/null
sleep 5
c0=$(cpu); t0=$(date +%s.%N)
sleep $((SECS - 5))
c1=$(cpu); t1=$(date +%s.%N)
echo "after ${SECS} s: $(uptime)"
top -b -n1 | sed -n 3p
awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$TICKS" 'BEGIN {
	printf "nodes: %.1f CPU s in %.1f s of wall time = %.2f cores\n",
		(b - a) / hz, t1 - t0, (b - a) / hz / (t1 - t0) }'
rc=0
for n in $nodes; do
	timeout 5 "$QKD" status --node "$D/net/$n.sock" --json |
		jq -r '.id as $id | .links[] | "\($id) \(.name): \(.stored_blocks) blocks, \(.key_rate_bps | floor) bit/s, \(.rounds_failed) rounds failed"' ||
		{ echo "node $n: no status"; rc=1; }
done
exit $rc
