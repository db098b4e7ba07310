#!/usr/bin/env bash
# bench/kme.sh BUILD_DIR - the key manager's figures for `make bench`
# (docs/kme.md, "Performance"), with bench/kme_bench.c as the SAEs:
#
#   a) one KME: kme_fake serves enc_keys and dec_keys, 1 and 8 clients;
#   b) two KMEs: two `qkd node` daemons on loopback with a QKD link between
#      them; enc_keys as SAE_A at node A, dec_keys as SAE_B at node B.
#   c) enc_keys latency while the engine runs: LAT_REQUESTS (default 200)
#      requests one after another, p50 and p99, on the 1 km link of b) and
#      on the example link (examples/alice.conf: 10 km, 5e8 pulses a round).
#
# Prints each run's kme_bench lines, then one table. Exits 1 if a run
# failed. Everything lives in a mktemp directory, removed on exit; KEEP=1
# keeps it (node logs, configurations, kme_bench output). Only 127.0.0.1.
set -u

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
QKD=$BUILD/qkd
KMEB=$BUILD/bench/kme_bench
FAKE=$BUILD/tests/tools/kme_fake
for f in "$QKD" "$KMEB" "$FAKE"; do
	[ -x "$f" ] || { echo "$0: $f is missing: build first" >&2; exit 1; }
done
for t in openssl jq ss timeout awk; do
	command -v "$t" >/dev/null || { echo "$0: $t is not installed" >&2; exit 1; }
done

FAKE_SECONDS=${FAKE_SECONDS:-3}
NODE_SECONDS=${NODE_SECONDS:-5}
LAT_REQUESTS=${LAT_REQUESTS:-200}
# The link: 2e7 pulses a round distil about 300 000 bits, and a round's
# messages spend about 60 000 bits of authentication key, which the round
# refills from at most half its key. With 1e7 pulses a round (about 130 000
# bits) the refill barely covers the spending, and the pool drifts down
# until the link stops ("authentication key exhausted"), with or without
# key manager load: docs/config.md, auth_reserve_bits.
AUTH_RESERVE_BITS=${AUTH_RESERVE_BITS:-1048576}
for v in "$FAKE_SECONDS" "$NODE_SECONDS" "$AUTH_RESERVE_BITS" "$LAT_REQUESTS"; do
	case $v in ''|*[!0-9]*|0) echo "$0: FAKE_SECONDS, NODE_SECONDS, AUTH_RESERVE_BITS, LAT_REQUESTS: positive integers" >&2; exit 2 ;; esac
done
D=$(mktemp -d "${TMPDIR:-/tmp}/qkd-kme-bench.XXXXXX") || exit 1
P=$D/pki
PIDS=()
# shellcheck disable=SC2317  # run by the trap
cleanup() {
	local p
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -9 "$p" 2>/dev/null; done
	if [ -n "${KEEP:-}" ]; then echo "kme.sh: kept $D" >&2; else rm -rf "$D"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port, start, stop, field, wait_for, wait_listen: the node helpers
# of the integration tests.
# shellcheck source=tests/integration/lib_nodes.sh
. "$TOP/tests/integration/lib_nodes.sh"

ROWS=()
LAT_ROWS=()
FAILED=0
# latency LINK ARGS...: LAT_REQUESTS round trips by one client (600 s at
# most), and a row of the latency table from kme_bench's percentiles.
latency() {
	local link=$1 out=$D/lat_$1.out rc
	shift
	timeout -k 5 660 "$KMEB" --pki "$P" --clients 1 --number 1 --size 256 --seconds 600 \
		--requests "$LAT_REQUESTS" "$@" >"$out" 2>&1
	rc=$?
	sed 's/^/  /' "$out"
	if [ "$rc" != 0 ]; then
		FAILED=1
		LAT_ROWS+=("$link|failed (exit $rc)|||||")
		return
	fi
	LAT_ROWS+=("$(awk -v l="$link" '
		function at(k) { for (i = 1; i < NF; i++) if ($i == k) return $(i + 1); return "-" }
		/^kme_bench: enc_keys/ { n = $7; e50 = at("p50"); e99 = at("p99"); emax = at("max") }
		/^kme_bench: dec_keys/ { d50 = at("p50"); d99 = at("p99") }
		END { printf "%s|%s|%s ms|%s ms|%s ms|%s ms|%s ms", l, n, e50, e99, emax, d50, d99 }' "$out")")
}
# run SETUP NAME CLIENTS NUMBER SECONDS KME_BENCH_ARGS...: one kme_bench run,
# bounded by timeout; its output in $D/NAME.out and one row of the table.
run() {
	local setup=$1 clients=$3 number=$4 secs=$5 out=$D/$2.out rc
	shift 5
	timeout -k 5 $((secs + 60)) "$KMEB" --pki "$P" --clients "$clients" --number "$number" \
		--size 256 --seconds "$secs" "$@" >"$out" 2>&1
	rc=$?
	sed 's/^/  /' "$out"
	if [ "$rc" != 0 ]; then
		FAILED=1
		ROWS+=("$setup|$clients|$number|failed (exit $rc)||||")
		return
	fi
	# "kme_bench: N enc_keys+dec_keys round trips in T s: ..." gives the
	# rates (one decimal below 100/s); the enc_keys and dec_keys lines the
	# mean latencies.
	ROWS+=("$(awk -v s="$setup" -v c="$clients" -v n="$number" '
		function rate(x) { return sprintf(x < 100 ? "%.1f" : "%.0f", x) }
		/ round trips in / { t = $2; secs = $7 }
		/^kme_bench: enc_keys/ { for (i = 1; i < NF; i++) if ($i == "mean") enc = $(i + 1) }
		/^kme_bench: dec_keys/ { for (i = 1; i < NF; i++) if ($i == "mean") dec = $(i + 1) }
		END { if (secs <= 0) secs = 1
		      printf "%s|%s|%s|%s|%s|%s ms|%s ms", s, c, n, rate(t / secs), rate(t * n / secs), enc, dec }' "$out")")
}

table() {
	local r
	echo
	printf '%-10s %7s %12s %14s %10s %14s %14s\n' setup clients keys/request "round trips/s" keys/s \
		"mean enc_keys" "mean dec_keys"
	for r in "${ROWS[@]}"; do
		IFS='|' read -r a b c d e f g <<<"$r"
		printf '%-10s %7s %12s %14s %10s %14s %14s\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g"
	done
}

"$TOP/examples/make-test-pki.sh" "$P" SAE_A SAE_B >/dev/null || exit 1

# ---- a) one KME: kme_fake
echo "kme.sh: one KME (kme_fake), ${FAKE_SECONDS} s per run"
run "kme_fake" fake1 1 1 "$FAKE_SECONDS" --server "$FAKE"
run "kme_fake" fake8 8 1 "$FAKE_SECONDS" --server "$FAKE"

# ---- b) two KMEs: two qkd node daemons and a 1 km link on loopback
CP=$(free_port); FP=$(free_port "$CP"); KA=$(free_port "$CP" "$FP"); KB=$(free_port "$CP" "$FP" "$KA")
# mkconf ROLE KME_PORT KME_ID LOCAL_SAE REMOTE_SAE PEER_KME_ID: the 1 km
# link, or with PULSES and OPTICAL set, another one.
PULSES=20000000
OPTICAL="optical = { distance_km = 1.0; detector_efficiency = 0.5; };"
mkconf() {
	cat >"$D/$1.conf" <<EOF
node = { name = "$1"; status = "$1.sock"; log_level = "info"; };
links = ( {
  name = "ab"; role = "$1";
  classical = "127.0.0.1:$CP"; fiber = "127.0.0.1:$FP";
  store = "$1.db"; auth_key = "ab.key";
  auth_reserve_bits = $AUTH_RESERVE_BITS; round_pulses = $PULSES;
  $OPTICAL
} );
kme = {
  id = "$3"; listen = "127.0.0.1:$2";
  cert = "pki/server.pem"; key = "pki/server.key"; ca = "pki/ca.pem";
  key_size = 256; max_keys_per_request = 128; sync_timeout = 10;
  saes = ( { id = "$4"; }, { id = "$5"; link = "ab"; kme = "$6"; } );
};
EOF
}
# stop_node NAME: stop, and count a node that had to be killed as a failure.
stop_node() {
	stop "$1"
	if [ "$STOP_RC" = 137 ]; then
		echo "kme.sh: node $1 ignored SIGTERM for 20 s: kill -9" >&2
		FAILED=1
	fi
}

echo "kme.sh: two KMEs (qkd node A and B, 1 km link), ${NODE_SECONDS} s per run"
if [ "$CP" = 0 ] || [ "$FP" = 0 ] || [ "$KA" = 0 ] || [ "$KB" = 0 ]; then
	echo "kme.sh: no free loopback ports" >&2
	FAILED=1
else
	head -c 262144 /dev/urandom >"$D/ab.key"
	mkconf alice "$KA" KME_A SAE_A SAE_B KME_B
	mkconf bob "$KB" KME_B SAE_B SAE_A KME_A
	start bob
	start alice
	T0=$SECONDS
	if ! wait_listen "$KA" || ! wait_listen "$KB" || ! wait_for bob stored_blocks 4 90; then
		echo "kme.sh: the nodes did not store 4 blocks within 90 s (B: $(field bob stored_blocks) blocks)" >&2
		tail -n 5 "$D/alice.log" "$D/bob.log" >&2
		FAILED=1
	else
		echo "kme.sh: 4 blocks stored at B after $((SECONDS - T0)) s"
		two=(--port "$KA" --dec-port "$KB" --master SAE_A --slave SAE_B)
		run "two nodes" node1 1 1 "$NODE_SECONDS" "${two[@]}"
		run "two nodes" node8 8 1 "$NODE_SECONDS" "${two[@]}"
		run "two nodes" node8x32 8 32 "$NODE_SECONDS" "${two[@]}"
		echo "kme.sh: after the runs, B has $(field bob stored_blocks) blocks stored"
		echo "kme.sh: enc_keys latency on the 1 km link, $LAT_REQUESTS requests"
		latency "test-2e7 (1 km)" "${two[@]}"
	fi
	stop_node alice
	stop_node bob
	# What the nodes complained about (KEEP=1 keeps the logs): lines at
	# level warn or error, and key manager answers other than 200.
	for n in alice bob; do
		w=$(awk '$2 == "warn" || $2 == "error"' "$D/$n.log" | wc -l)
		r=$(grep -c ' kme: .*: [3-5][0-9][0-9] ' "$D/$n.log")
		[ "$w" -gt 0 ] || [ "$r" -gt 0 ] || continue
		echo "kme.sh: node $n: $w warn/error line(s), $r refused request(s) in its log"
		awk '$2 == "warn" || $2 == "error"' "$D/$n.log" | head -n 3 | sed 's/^/  /'
	done
fi

# ---- c) the example link: the same pair at 5e8 pulses a round over 10 km
if [ "$CP" != 0 ] && [ "$FP" != 0 ] && [ "$KA" != 0 ] && [ "$KB" != 0 ]; then
	PULSES=500000000
	OPTICAL=""
	rm -f "$D"/alice.db* "$D"/bob.db* "$D"/alice.log "$D"/bob.log
	head -c 262144 /dev/urandom >"$D/ab.key"	# a new link: a new bootstrap key
	mkconf alice "$KA" KME_A SAE_A SAE_B KME_B
	mkconf bob "$KB" KME_B SAE_B SAE_A KME_A
	start bob
	start alice
	if ! wait_listen "$KA" || ! wait_listen "$KB" || ! wait_for bob stored_blocks 2 180; then
		echo "kme.sh: the example pair did not store 2 blocks within 180 s" >&2
		tail -n 5 "$D/alice.log" "$D/bob.log" >&2
		FAILED=1
	else
		echo "kme.sh: enc_keys latency on the example link, $LAT_REQUESTS requests"
		latency "example (10 km)" --port "$KA" --dec-port "$KB" --master SAE_A --slave SAE_B
	fi
	stop_node alice
	stop_node bob
fi

table
echo
printf '%-17s %9s %12s %12s %12s %12s %12s\n' link requests "enc p50" "enc p99" "enc max" \
	"dec p50" "dec p99"
for r in "${LAT_ROWS[@]+"${LAT_ROWS[@]}"}"; do
	IFS='|' read -r a b c d e f g <<<"$r"
	printf '%-17s %9s %12s %12s %12s %12s %12s\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g"
done
exit "$FAILED"
