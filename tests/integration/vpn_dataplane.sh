#!/usr/bin/env bash
# tests/integration/vpn_dataplane.sh - the data plane of `qkd vpn`
# (qkd/dataplane.h, qkd/sa_mgr.h; docs/vpn.md "Data plane") between two
# gateways in four network namespaces this test makes and removes itself
# (tests/integration/lib_espgw.sh): h1 -- gw1 == ESP in UDP == gw2 -- h2.
# The gateways are tests/tools/esp_gw with one static SA pair each
# (test-only manual keying, no IKE). Checks: IPv4 pings both ways, IPv6,
# a packet of the full MTU, iperf3 TCP h1 -> h2 for 3 s; then the counters
# of both gateways' JSON agree (every packet one sent, the other received;
# no drop). With a wrong key at gw2 every packet fails its ICV there and
# none is delivered; a packet to a subnet no tunnel covers is NO_POLICY at
# gw1; with gw2's selectors lacking IPv6, authentic IPv6 packets are
# POLICY_IN drops at gw2 while IPv4 still passes.
# Root only (ip netns, TUN). Usage: QKD=build/qkd tests/integration/vpn_dataplane.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/../cli/lib.sh"
# shellcheck source=tests/integration/lib_espgw.sh
. "$(dirname "$0")/lib_espgw.sh"

QKD=${QKD:-build/qkd}
GW=${ESP_GW:-$(dirname "$QKD")/tests/tools/esp_gw}
D=$CLI_TMP
# shellcheck disable=SC2317  # called by the EXIT trap and below
cli_cleanup_hook() { vpn_ns_down; }

check "four namespaces h1, gw1, gw2, h2 are made and wired" vpn_ns_up
mkdir -p "$D/1" "$D/2" "$D/2v4"
vpn_gw_config "$D/1" 1
vpn_gw_config "$D/2" 2
# gw2 without the IPv6 selectors, for the POLICY_IN check.
vpn_gw_config "$D/2v4" 2
sed -i 's/, "fd1[12]::\/64"//g' "$D/2v4/gw2.conf"

# shellcheck disable=SC2317  # called through check
gw1() { vpn_gw_start 1 "$D/gw1.out" "$GW" --config "$D/1/gw1.conf" --spi-in 0x1001 \
	--spi-out 0x2001 --key-in "$VPN_K2" --key-out "$VPN_K1"; }
# shellcheck disable=SC2317  # called through check
gw2() {	# CONFIG KEY_IN
	vpn_gw_start 2 "$D/gw2.out" "$GW" --config "$1" --spi-in 0x2001 --spi-out 0x1001 \
		--key-in "$2" --key-out "$VPN_K2"
}
stats() { tail -n 1 "$D/gw$1.out" | jq -r "$2"; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
received() {	# NS ARGS...: how many of the pings came back
	local ns=$1
	shift
	in_ns "$ns" ping "$@" 2>/dev/null | sed -n 's/.* \([0-9]*\) received.*/\1/p'
}

check "gw1 runs the data plane" gw1
check "gw2 runs the data plane" gw2 "$D/2/gw2.conf" "$VPN_K1"
check_eq "IPv4: h1 -> h2, 3 pings, 3 replies" "$(received "$VPN_NS_H1" -c 3 -i 0.2 -W 2 $VPN_H2)" 3
check_eq "IPv4: h2 -> h1, 3 pings, 3 replies" "$(received "$VPN_NS_H2" -c 3 -i 0.2 -W 2 $VPN_H1)" 3
check_eq "IPv6: h1 -> h2, 3 pings, 3 replies" "$(received "$VPN_NS_H1" -6 -c 3 -i 0.2 -W 3 $VPN_H2_6)" 3
check_eq "a packet of the full MTU (1400 bytes, DF) crosses both ways" \
	"$(received "$VPN_NS_H1" -c 1 -W 2 -M "do" -s 1372 $VPN_H2)" 1

in_ns "$VPN_NS_H2" timeout 20 iperf3 -s -1 >"$D/iperf_s.out" 2>&1 &
IPERF_S=$!
PIDS+=("$IPERF_S")
for _ in $(seq 1 30); do in_ns "$VPN_NS_H2" ss -ltn 2>/dev/null | grep -q ':5201 ' && break; sleep 0.1; done
in_ns "$VPN_NS_H1" timeout 20 iperf3 -c $VPN_H2 -t 3 -J >"$D/iperf.json" 2>"$D/iperf.err"
BPS=$(jq -r '.end.sum_received.bits_per_second // 0' "$D/iperf.json" 2>/dev/null)
wait "$IPERF_S" 2>/dev/null
check "iperf3 TCP h1 -> h2 for 3 s moves data ($(awk -v b="${BPS:-0}" 'BEGIN { printf "%.0f", b / 1e6 }') Mbit/s)" \
	awk -v b="${BPS:-0}" 'BEGIN { exit !(b > 0) }'
echo "# iperf3 through ESP: ${BPS:-0} bit/s" >&2

check "gw1 stops on SIGTERM" vpn_gw_stop 1
check "gw2 stops on SIGTERM" vpn_gw_stop 2
check "both printed their counters as JSON" sh -c "tail -n1 '$D/gw1.out' | jq -e .tunnels >/dev/null && tail -n1 '$D/gw2.out' | jq -e .tunnels >/dev/null"
OUT1=$(stats 1 '.tunnels[0].out_packets')
check_eq "every packet gw1 sent, gw2 received" "$(stats 2 '.tunnels[0].in_packets')" "$OUT1"
check_eq "... and every inner byte" "$(stats 2 '.tunnels[0].in_bytes')" "$(stats 1 '.tunnels[0].out_bytes')"
check_eq "every packet gw2 sent, gw1 received" "$(stats 1 '.tunnels[0].in_packets')" "$(stats 2 '.tunnels[0].out_packets')"
check "iperf3's data is in the counters (over 10000 packets h1 -> h2)" test "${OUT1:-0}" -gt 10000
check_eq "gw1 read from TUN exactly what it sent" "$(stats 1 .tun_reads)" "$OUT1"
check_eq "no drop at gw1" "$(stats 1 '[.drops[]] | add')" 0
check_eq "no drop at gw2" "$(stats 2 '[.drops[]] | add')" 0

# A wrong key at gw2 for what gw1 sends.
BADKEY=ff${VPN_K1:2}
check "gw1 restarts" gw1
check "gw2 restarts with a wrong inbound key" gw2 "$D/2/gw2.conf" "$BADKEY"
check_eq "with the wrong key, no ping comes back" "$(received "$VPN_NS_H1" -c 3 -i 0.2 -W 1 $VPN_H2)" 0
check_eq "h1 -> 192.168.13.5 (routed into qkd0, no tunnel covers it): no reply" \
	"$(received "$VPN_NS_H1" -c 2 -i 0.2 -W 1 192.168.13.5)" 0
vpn_gw_stop 1
vpn_gw_stop 2
SENT=$(stats 1 '.tunnels[0].out_packets')
check "gw1 sent the pings" test "${SENT:-0}" -ge 3
check_eq "gw2 counted every one as BAD_ICV" "$(stats 2 .drops.bad_icv)" "$SENT"
check_eq "... on the tunnel" "$(stats 2 '.tunnels[0].drops.bad_icv')" "$SENT"
check_eq "gw2 delivered nothing" "$(stats 2 '.tunnels[0].in_packets')" 0
check_eq "gw1 counted the 2 uncovered packets as NO_POLICY" "$(stats 1 .drops.no_policy)" 2
check_eq "... and no other drop" "$(stats 1 '[.drops[]] | add')" 2

# gw2's policy lacks IPv6: authentic IPv6 packets are outside its SA's selectors.
check "gw1 restarts" gw1
check "gw2 restarts with IPv4 selectors only" gw2 "$D/2v4/gw2.conf" "$VPN_K1"
check_eq "IPv4 still crosses" "$(received "$VPN_NS_H1" -c 2 -i 0.2 -W 2 $VPN_H2)" 2
check_eq "IPv6 does not" "$(received "$VPN_NS_H1" -6 -c 2 -i 0.2 -W 1 $VPN_H2_6)" 0
vpn_gw_stop 1
vpn_gw_stop 2
check_eq "gw2 counted the IPv6 packets as POLICY_IN" "$(stats 2 '.tunnels[0].drops.policy_in')" 2
check_eq "... and delivered the IPv4 ones" "$(stats 2 '.tunnels[0].in_packets')" 2
finish
