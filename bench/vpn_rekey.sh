#!/usr/bin/env bash
# bench/vpn_rekey.sh BUILD_DIR [SECONDS] - the QKD side of `qkd vpn`'s
# figures (docs/vpn.md "Figures"; issue 14): the rekey latency, key manager
# included (from the enc_keys request to the new Child SA installed), p50
# and p99, and the QKD key a tunnel uses per hour. It runs
# tests/integration/vpn_qkd.sh (two QKD nodes as key managers, two
# gateways, a UDP stream for SECONDS, default 60, a Child SA rekey every
# 5 s) and prints its figures as a table, with the key per hour at the
# default rekey interval of 60 s beside the measured one. Root only.
set -u
if [ $# -lt 1 ] || [ $# -gt 2 ] || [ ! -x "$1/qkd" ]; then
	echo "usage: $0 BUILD_DIR [SECONDS]" >&2
	exit 2
fi
TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(VPN_QKD_SECONDS=${2:-60} QKD="$1/qkd" bash "$TOP/tests/integration/vpn_qkd.sh" 2>&1)
if ! printf '%s\n' "$OUT" | grep -q '^# [0-9]* passed, 0 failed'; then
	printf '%s\n' "$OUT" >&2
	echo "$0: the run failed" >&2
	exit 1
fi
lat=$(printf '%s\n' "$OUT" | sed -n 's/^# rekey latency (enc_keys included): p50 \([0-9.]*\) s, p99 \([0-9.]*\) s over \([0-9]*\)$/\1 \2 \3/p')
key=$(printf '%s\n' "$OUT" | sed -n 's/^# QKD key used: \([0-9]*\) bits in \([0-9.]*\) s, \([0-9]*\) bits per hour.*/\1 \2 \3/p')
udp=$(printf '%s\n' "$OUT" | sed -n 's/^# UDP \(.*\)$/\1/p')
echo "vpn_rekey: two qkd vpn gateways keyed by two QKD nodes (examples/vpn), rekey every 5 s; UDP $udp"
read -r p50 p99 n <<<"$lat"
read -r bits secs perhour <<<"$key"
printf '%-44s %s\n' "rekey latency, key manager included, p50" "$(awk -v x="$p50" 'BEGIN { printf "%.1f ms", 1000 * x }')"
printf '%-44s %s\n' "rekey latency, p99 (over $n rekeys)" "$(awk -v x="$p99" 'BEGIN { printf "%.1f ms", 1000 * x }')"
printf '%-44s %s\n' "QKD key used, rekey 5 s (measured)" "$perhour bits/hour ($bits bits in ${secs%.*} s)"
printf '%-44s %s\n' "QKD key used, rekey 60 s (default)" "$(awk -v p="$perhour" 'BEGIN { printf "%.0f bits/hour", p / 12 }')"
