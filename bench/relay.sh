#!/usr/bin/env bash
# bench/relay.sh BUILD_DIR - the relay network's figures for `make bench`
# (docs/relay.md, "Figures"):
#
#   a) end-to-end enc_keys latency over 1, 2 and 4 hops: five `qkd node`
#      daemons in a line on loopback, N0 - N1 - N2 - N3 - N4, an SAE at each
#      node's key manager and no configuration naming another's; REQUESTS
#      (default 40) requests one after another from SAE_0 to SAE_1, SAE_2
#      and SAE_4 (bench/kme_bench.c), p50 and p99;
#   b) relayed key throughput over 4 hops: 4 clients of 8 keys for
#      SECONDS (default 20), keys and bits per second;
#   c) reroute times on the 6-node mesh: tests/integration/relay_mesh.sh,
#      its "reroute" lines.
#
# Everything lives in a mktemp directory, removed on exit; KEEP=1 keeps
# it. Only 127.0.0.1. Exits 1 if a run failed.
set -u

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
QKD=$BUILD/qkd
KMEB=$BUILD/bench/kme_bench
for f in "$QKD" "$KMEB"; do
	[ -x "$f" ] || { echo "$0: $f is missing: build first" >&2; exit 1; }
done
REQUESTS=${REQUESTS:-40}
SECONDS_TP=${SECONDS:-20}
D=$(mktemp -d "${TMPDIR:-/tmp}/qkd-relay-bench.XXXXXX") || exit 1
P=$D/pki
PIDS=()
# shellcheck disable=SC2317  # run by the trap
cleanup() {
	local p
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -9 "$p" 2>/dev/null; done
	if [ -n "${KEEP:-}" ]; then echo "relay.sh: kept $D" >&2; else rm -rf "$D"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=tests/integration/lib_nodes.sh
. "$TOP/tests/integration/lib_nodes.sh"

N=5
TAKEN=()
port() { local p; p=$(free_port "${TAKEN[@]+"${TAKEN[@]}"}"); TAKEN+=("$p"); echo "$p"; }
declare -a CP FP KP
for i in $(seq 0 $((N - 2))); do CP[i]=$(port); FP[i]=$(port); done
for i in $(seq 0 $((N - 1))); do KP[i]=$(port); done
"$TOP/examples/make-test-pki.sh" "$P" SAE_0 SAE_1 SAE_2 SAE_3 SAE_4 >/dev/null || exit 1
for i in $(seq 0 $((N - 2))); do head -c 262144 /dev/urandom >"$D/l$i.key"; done
for i in $(seq 0 $((N - 1))); do
	{
		echo "node = { name = \"N$i\"; status = \"N$i.sock\"; };"
		echo "links = ("
		sep=
		if [ "$i" -gt 0 ]; then
			relay_link "l$((i - 1))" bob "N$((i - 1))" "${CP[i - 1]}" "${FP[i - 1]}"; sep=,
		fi
		if [ "$i" -lt $((N - 1)) ]; then
			echo "$sep"; relay_link "l$i" alice "N$((i + 1))" "${CP[i]}" "${FP[i]}"
		fi
		echo ");"
		relay_kme "${KP[i]}" "KME_$i" "SAE_$i"
	} >"$D/N$i.conf"
done
for i in $(seq 0 $((N - 1))); do start "N$i"; done
for i in $(seq 0 $((N - 1))); do wait_listen "${KP[i]}" || { echo "relay.sh: N$i did not start" >&2; exit 1; }; done
route4() {
	timeout 5 "$QKD" status --node "$D/N0.sock" --json 2>/dev/null |
		jq -e '.relay | (.routes[] | select(.dest == "N4") | .hops == 4) and
			([.lsdb[].links[] | select(.available_bits >= 65536)] | length == 8)' >/dev/null 2>&1
}
for t in $(seq 1 240); do route4 && break; sleep 0.5; done
route4 || { echo "relay.sh: no route N0 -> N4 with key within 120 s" >&2; exit 1; }

FAILED=0
ROWS=()
# latency HOPS SLAVE: REQUESTS enc_keys (at N0) + dec_keys (at the slave's node).
latency() {
	local hops=$1 j=$2 out=$D/lat_$1.out rc
	timeout -k 5 660 "$KMEB" --pki "$P" --port "${KP[0]}" --dec-port "${KP[j]}" \
		--master SAE_0 --slave "SAE_$j" --clients 1 --number 1 --size 256 --seconds 600 \
		--requests "$REQUESTS" >"$out" 2>&1
	rc=$?
	sed 's/^/  /' "$out"
	if [ "$rc" != 0 ]; then FAILED=1; ROWS+=("$hops|failed (exit $rc)|||"); return; fi
	ROWS+=("$(awk -v h="$hops" '
		function at(k) { for (i = 1; i < NF; i++) if ($i == k) return $(i + 1); return "-" }
		/^kme_bench: enc_keys/ { n = $7; e50 = at("p50"); e99 = at("p99"); emax = at("max") }
		END { printf "%s|%s|%s ms|%s ms|%s ms", h, n, e50, e99, emax }' "$out")")
}
echo "relay.sh: a) enc_keys latency over 1, 2 and 4 hops, $REQUESTS requests each"
latency 1 1
latency 2 2
latency 4 4
echo "relay.sh: b) throughput over 4 hops, 4 clients of 8 keys, $SECONDS_TP s"
timeout -k 5 $((SECONDS_TP + 120)) "$KMEB" --pki "$P" --port "${KP[0]}" --dec-port "${KP[4]}" \
	--master SAE_0 --slave SAE_4 --clients 4 --number 8 --size 256 --seconds "$SECONDS_TP" \
	>"$D/tp.out" 2>&1 || FAILED=1
sed 's/^/  /' "$D/tp.out"
TP=$(awk '/ round trips in / { printf "%.1f keys/s, %.0f bit/s", $2 * 8 / $7, $2 * 8 * 256 / $7 }' "$D/tp.out")
PAD=$(timeout 5 "$QKD" status --node "$D/N2.sock" --json | jq -r .relay.stats.pad_bits)
for i in $(seq 0 $((N - 1))); do stop "N$i"; done

echo "relay.sh: c) reroute times on the 6-node mesh (tests/integration/relay_mesh.sh)"
QKD=$QKD bash "$TOP/tests/integration/relay_mesh.sh" >"$D/mesh.out" 2>&1 || FAILED=1
grep -E '^# reroute|^# [0-9]+ keys relayed|passed' "$D/mesh.out" | sed 's/^/  /'

echo
printf '%-6s %9s %12s %12s %12s\n' hops requests "p50 enc_keys" "p99 enc_keys" "max enc_keys"
for r in "${ROWS[@]}"; do
	IFS='|' read -r a b c d e <<<"$r"
	printf '%-6s %9s %12s %12s %12s\n' "$a" "$b" "$c" "$d" "$e"
done
echo "throughput over 4 hops: ${TP:-failed}; pad bits spent at the middle node N2: $PAD"
echo "(load average during the run: $(cut -d' ' -f1-3 /proc/loadavg))"
exit "$FAILED"
