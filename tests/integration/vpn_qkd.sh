#!/usr/bin/env bash
# tests/integration/vpn_qkd.sh - the whole stack of issue 14: two QKD nodes
# (our key managers) and two `qkd vpn` gateways in four network namespaces,
# with the example configurations of examples/vpn/ (rekey set to 5 s).
# A 60 s UDP stream (iperf3) crosses the tunnel while its Child SA is
# rekeyed every 5 s, each time with a fresh QKD key: no packet is lost at
# any rekey, every rekey uses a different key_ID, and both gateways agree.
# It also prints the rekey latency (key manager included) and the QKD key
# used per hour. Needs root. Usage: QKD=build/qkd tests/integration/vpn_qkd.sh
# VPN_QKD_SECONDS shortens the stream (default 60).
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/../cli/lib.sh"
# shellcheck source=tests/integration/lib_vpn.sh
. "$(dirname "$0")/lib_vpn.sh"

QKD=$(cd "$(dirname "${QKD:-build/qkd}")" && pwd)/$(basename "${QKD:-build/qkd}")
HERE=$(cd "$(dirname "$0")" && pwd)
EX=$HERE/../../examples
D=$CLI_TMP
SECONDS_RUN=${VPN_QKD_SECONDS:-60}
PIDS=()
cli_cleanup_hook() { vpn_cleanup; }

if ! vpn_ns_up; then
	cli_ok "vpn_qkd: # SKIP needs root and network namespaces"
	finish
fi
if ! command -v iperf3 >/dev/null; then
	cli_ok "vpn_qkd: # SKIP iperf3 is not installed"
	finish
fi

mkdir -p "$D/run"
for f in node-a node-b gw-a gw-b; do
	sed -e 's/rekey = 60.0;/rekey = 5.0;/' -e 's/log_level = "info"/log_level = "debug"/' \
		"$EX/vpn/$f.conf" >"$D/$f.conf"
done
sh "$EX/make-test-pki.sh" "$D/run/pki" SAE_A SAE_B >/dev/null
head -c 262144 /dev/urandom >"$D/run/ab.key"
head -c 48 /dev/urandom >"$D/run/a-b.psk"

vpn_bg "$VPN_NS_G1" node-a "$QKD" node --config "$D/node-a.conf"
vpn_bg "$VPN_NS_G2" node-b "$QKD" node --config "$D/node-b.conf"
vpn_bg "$VPN_NS_G2" gw-b "$QKD" vpn --config "$D/gw-b.conf"
vpn_bg "$VPN_NS_G1" gw-a "$QKD" vpn --config "$D/gw-a.conf"

st() { vpn_st "$D/run/$1.sock"; }
wait_st() { vpn_wait_st "$D/run/$1.sock" "$2" "$3"; }
UP='.tunnels[0] | .state == "established" and .qkd'
check "gw-a: the tunnel is up with a QKD key from node A's key manager" wait_st gw-a "$UP" 60
check "gw-b: the same" wait_st gw-b "$UP" 10
vpn_route_tun "$VPN_NS_G1" qkd0
vpn_route_tun "$VPN_NS_G2" qkd0
check "h1 pings h2" vpn_ping "$VPN_NS_H1" "$VPN_H2"

r0=$(st gw-a | jq '.tunnels[0].counters.child_rekeys')
vpn_exec "$VPN_NS_H2" iperf3 -s -1 -D -p 5201 >/dev/null 2>&1
sleep 0.3
vpn_exec "$VPN_NS_H1" timeout $((SECONDS_RUN + 20)) iperf3 -c "$VPN_H2" -p 5201 -u -b 20M -w 4M --get-server-output \
	-l 1200 -t "$SECONDS_RUN" -J >"$D/iperf.json" 2>&1
r1=$(st gw-a | jq '.tunnels[0].counters.child_rekeys')
sent=$(jq '.end.sum.packets' "$D/iperf.json" 2>/dev/null)
lost=$(jq '.end.sum.lost_packets' "$D/iperf.json" 2>/dev/null)
echo "# UDP 20 Mbit/s for ${SECONDS_RUN} s: $sent datagrams, $lost lost; $((r1 - r0)) rekeys"
check "iperf3 ran ($sent datagrams)" test "${sent:-0}" -gt 1000
check_eq "not one datagram lost across the rekeys" "$lost" 0
check_eq "every packet gw-a encapsulated, gw-b accepted" \
	"$(st gw-b | jq '.tunnels[0].traffic.in_packets')" "$(st gw-a | jq '.tunnels[0].traffic.out_packets')"
check "a rekey every 5 s: at least $((SECONDS_RUN / 5 - 2)) during the stream" \
	test $((r1 - r0)) -ge $((SECONDS_RUN / 5 - 2))
KEYS=$(grep -o 'QKD key [0-9a-f-]\{36\}' "$D/run/gw-a.log" | awk '{print $3}')
echo "# $(echo "$KEYS" | wc -l) Child SAs, $(echo "$KEYS" | sort -u | wc -l) distinct key_IDs"
check "every Child SA had a key_ID of its own" test "$(echo "$KEYS" | sort | uniq -d | wc -l)" -eq 0
KEYS_B=$(grep -o 'QKD key [0-9a-f-]\{36\}' "$D/run/gw-b.log" | awk '{print $3}' | sort)
check_eq "gw-b installed the same key_IDs" "$KEYS_B" "$(echo "$KEYS" | sort)"
st gw-b >"$D/gw-b.status.json"
st gw-a >"$D/gw-a.status.json"
check_eq "no packet dropped for want of an SA, by SPI, ICV or replay (gw-b)" \
	"$(st gw-b | jq '.tunnels[0].traffic.drops | .no_sa + .unknown_spi + .bad_icv + .replay + .expired')" 0
LAT=$(st gw-a | jq -r '.tunnels[0].rekey_latency | "p50 \(.p50_s) s, p99 \(.p99_s) s over \(.n)"')
BITS=$(st gw-a | jq '.tunnels[0].qkd_bits')
UPS=$(st gw-a | jq '.uptime_s')
echo "# rekey latency (enc_keys included): $LAT"
echo "# QKD key used: $BITS bits in $UPS s, $(awk -v b="$BITS" -v s="$UPS" 'BEGIN { printf "%.0f", b * 3600 / s }') bits per hour at rekey = 5 s"
check "the rekey latency was measured" test "$(st gw-a | jq '.tunnels[0].rekey_latency.n')" -ge 2
finish
