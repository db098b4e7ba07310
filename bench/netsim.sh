#!/usr/bin/env bash
# bench/netsim.sh - figures of `qkd netsim` (docs/netsim.md "Figures"): on
# random networks of 100 and 1000 nodes (degree 2..5, 5..50 km of fiber per
# link, seed 1), the convergence after a cut of the first link, the relayed
# key throughput, the link key spent per relayed bit and the wall time.
# Usage: bench/netsim.sh [BUILD]   (BUILD defaults to build)
# NETSIM_SIZES="100 1000", NETSIM_SECONDS_100=60, NETSIM_SECONDS_1000=10,
# NETSIM_REQUESTS=100 (keys per second, the whole network) override the run.
set -eu
BUILD=${1:-build}
QKD=$BUILD/qkd
SIZES=${NETSIM_SIZES:-100 1000}
REQ=${NETSIM_REQUESTS:-100}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qkd-netsim-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
command -v jq >/dev/null || { echo "bench/netsim.sh: needs jq" >&2; exit 2; }

printf '%-6s %-6s %-7s %-7s %-9s %-10s %-14s %-8s %-7s %-9s %-7s %s\n' nodes links sim_s cut_at \
	flood_ms converge_s throughput key/bit p50_ms completed failed wall_s
for n in $SIZES; do
	eval "secs=\${NETSIM_SECONDS_$n:-}"
	[ -n "$secs" ] || { [ "$n" -ge 1000 ] && secs=10 || secs=60; }
	cut_at=$(awk -v s="$secs" 'BEGIN { print s / 2 }')
	# The first link of the generated network is the one cut.
	"$QKD" netsim --generate random "$n" --seed 1 --write-topology "$TMP/net$n.topo" --no-run
	link=$(awk '$1 == "link" { print $2 "-" $3; exit }' "$TMP/net$n.topo")
	"$QKD" netsim --topology "$TMP/net$n.topo" --seed 1 --duration "$secs" --requests "$REQ" \
		--cut "$link@$cut_at" --json >"$TMP/out$n.json"
	jq -r --arg cut "$cut_at" '[.nodes, .links, .sim_s, $cut,
		(if .faults[0].flood_s then (.faults[0].flood_s * 1e6 | round / 1e3) else "none" end),
		(.faults[0].convergence_s // "none"), (.throughput_bps | floor),
		(.key_per_relayed_bit * 1000 | round / 1000), (.latency_p50_s * 1e6 | round / 1e3),
		.completed, .failed, (.wall_s * 100 | round / 100)] | @tsv' "$TMP/out$n.json" |
		awk -F'\t' '{ printf "%-6s %-6s %-7s %-7s %-9s %-10s %-14s %-8s %-7s %-9s %-7s %s\n",
			$1, $2, $3, $4, $5, $6, $7 " bit/s", $8, $9, $10, $11, $12 }'
	if [ "$(jq .mismatches "$TMP/out$n.json")" != 0 ]; then
		echo "bench/netsim.sh: key mismatches at $n nodes" >&2
		exit 1
	fi
done
