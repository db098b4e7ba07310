#!/usr/bin/env bash
# bench/node_cpu.sh BUILD_DIR - a node's CPU per round beside `qkd sim` on
# the same link, for `make bench` (docs/performance.md, "A node's round").
#
#   example    examples/alice.conf and bob.conf: 10 km, 5e8 pulses a round
#   test-2e7   the 1 km test link (tests/integration/node.sh): 2e7 pulses
#
# For each link: `qkd sim` with the link's options (both parties in one run:
# user + system CPU of the process and its children), then a pair of
# `qkd node`s on loopback. A node's CPU per round is the growth of
# /proc/PID/stat's utime + stime between its 2nd and its (2 + ROUNDS)th
# stored block (BENCH_ROUNDS, default 5), so start-up and the handshake are
# left out. Then build/bench/fiber_bench splits the optical half of an
# example round into stages. Every wait is bounded; exits 1 if a run failed.
set -u

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
TOP=$(cd "$(dirname "$0")/.." && pwd)
QKD=$(cd "$1" && pwd)/qkd
FIBER_BENCH=$(cd "$1" && pwd)/bench/fiber_bench
[ -x "$QKD" ] || { echo "$0: $QKD is missing: build first" >&2; exit 1; }
command -v jq >/dev/null || { echo "$0: jq is not installed" >&2; exit 1; }
ROUNDS=${BENCH_ROUNDS:-5}
TICKS=$(getconf CLK_TCK)

D=$(mktemp -d /tmp/qkd-node-cpu.XXXXXX)
PIDS=()
# shellcheck source=tests/integration/lib_nodes.sh
. "$TOP/tests/integration/lib_nodes.sh"
# shellcheck disable=SC2317  # run by the trap
cleanup() {
	local p
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# id (a shell name) | label | qkd sim options | optical group of the nodes
LINKS=(
	"example|example|--pulses 500000000|"
	"t2e7|test-2e7|--pulses 20000000 --distance 1 --detector-efficiency 0.5|optical = { distance_km = 1.0; detector_efficiency = 0.5; };"
)

# cpu_s NODE: the node's user + system CPU seconds so far (fails if it is gone).
cpu_s() {
	local pid
	pid=$(eval "echo \${PID_$1:-}")
	[ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
	awk -v t="$TICKS" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$pid/stat"
}
# sim_cpu OPTIONS: user + system seconds of one `qkd sim` run.
sim_cpu() {
	local TIMEFORMAT='%U %S' t
	# shellcheck disable=SC2086  # the options are words
	t=$( { time timeout 300 "$QKD" sim $1 >/dev/null 2>&1; } 2>&1 ) || return 1
	awk '{ printf "%.3f", $1 + $2 }' <<<"$t"
}

# mkconf ROLE LINK CP FP PULSES OPTICAL
mkconf() {
	cat >"$D/$1_$2.conf" <<EOF
node = { name = "$1"; status = "$1_$2.sock"; log_level = "warn"; };
links = ( {
  name = "$2"; role = "$1";
  classical = "127.0.0.1:$3"; fiber = "127.0.0.1:$4";
  store = "$1_$2.db"; auth_key = "$2.key";
  auth_reserve_bits = 262144; round_pulses = $5;
  $6
} );
EOF
}

FMT='%-9s %10s %9s %11s %7s %11s %7s %9s\n'
echo "CPU seconds per round: qkd sim (Alice and Bob together) and each qkd node"
# shellcheck disable=SC2059  # one format for the header and the rows
printf "$FMT" link pulses sim alice_node ratio bob_node ratio rounds/s
FAILED=0
for l in "${LINKS[@]}"; do
	IFS='|' read -r id name opts optical <<<"$l"
	pulses=$(awk '{ print $2 }' <<<"$opts")
	sim=$(sim_cpu "$opts") || { echo "$0: qkd sim $opts failed" >&2; FAILED=1; continue; }
	cp=$(free_port); fp=$(free_port "$cp")
	head -c 65536 /dev/urandom >"$D/$id.key"
	for r in alice bob; do mkconf "$r" "$id" "$cp" "$fp" "$pulses" "$optical"; done
	start "alice_$id"
	start "bob_$id"
	a0= b0= t0= a1= b1= t1=
	if wait_for "alice_$id" stored_blocks 2 300 && a0=$(cpu_s "alice_$id") &&
	   b0=$(cpu_s "bob_$id"); then
		t0=$(date +%s.%N)
		if wait_for "alice_$id" stored_blocks $((2 + ROUNDS)) 600 &&
		   a1=$(cpu_s "alice_$id") && b1=$(cpu_s "bob_$id"); then
			t1=$(date +%s.%N)
		fi
	fi
	stop "alice_$id"; stop "bob_$id"
	if [ -z "$t1" ]; then
		echo "$0: $name: the nodes did not store $((2 + ROUNDS)) blocks in time (see $D)" >&2
		FAILED=1
		continue
	fi
	# shellcheck disable=SC2059
	awk -v n="$ROUNDS" -v s="$sim" -v a0="$a0" -v a1="$a1" -v b0="$b0" -v b1="$b1" \
	    -v t0="$t0" -v t1="$t1" -v name="$name" -v p="$pulses" -v fmt="$FMT" 'BEGIN {
		a = (a1 - a0) / n; b = (b1 - b0) / n
		printf fmt, name, p, sprintf("%.3f", s), sprintf("%.3f", a), sprintf("%.2fx", a / s),
		       sprintf("%.3f", b), sprintf("%.2fx", b / s), sprintf("%.3f", n / (t1 - t0)) }'
done
echo "ratio: the node's CPU per round over qkd sim's for the same pulses (target <= 2x)."
if [ -x "$FIBER_BENCH" ]; then
	echo "the optical half of an example round, CPU seconds by stage (fiber_bench):"
	"$FIBER_BENCH" | sed 's/^/  /' || FAILED=1
fi
exit "$FAILED"
