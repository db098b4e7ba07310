#!/usr/bin/env bash
# tests/integration/vpn_strongswan.sh - `qkd vpn` against strongSwan 5.9.8
# (charon-systemd with kernel-libipsec, tests/integration/lib_swan.sh) in
# the four namespaces of lib_vpn.sh, with QKD keys from our key managers:
# a QKD node in each gateway's namespace (examples/vpn/node-*.conf), the
# keys fetched with `qkd kme` and loaded into charon with swanctl.
#
#   1. charon (g1) initiates, `qkd vpn` (g2) answers: IKE SA with the QKD
#      key as PPK (RFC 8784) at both ends, Child SA, ping and TCP both ways;
#      then a fresh QKD key by re-authentication, the only way 5.9.8 takes
#      one (it has no RFC 9867): a new IKE SA with the new key_ID, the old
#      one deleted, traffic still flowing.
#   2. `qkd vpn` (g1) initiates, charon (g2) answers: the gateway fetches
#      the key and holds it for ppk_lead (3 s) while the test, playing the
#      integrator's script, fetches the same key_ID from node B's key
#      manager and loads it into charon; IKE SA and Child SA with the PPK,
#      ping and TCP.
# Needs root, ip netns, charon-systemd and swanctl (else one SKIP line).
# Usage: QKD=build/qkd tests/integration/vpn_strongswan.sh (KEEP=1 keeps logs).
# shellcheck disable=SC2317  # functions run by check and the EXIT trap
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/../cli/lib.sh"
# shellcheck source=tests/integration/lib_swan.sh
. "$(dirname "$0")/lib_swan.sh"

QKD=$(cd "$(dirname "${QKD:-build/qkd}")" && pwd)/$(basename "${QKD:-build/qkd}")
HERE=$(cd "$(dirname "$0")" && pwd)
EX=$HERE/../../examples
D=$CLI_TMP
SWAN_DIR=$D
PIDS=()
if [ "$(id -u)" -ne 0 ] || ! command -v swanctl >/dev/null || [ ! -x "$SWAN_CHARON" ] ||
   ! swan_net_up; then
	echo "ok - qkd vpn against strongSwan # SKIP needs root, ip netns, charon-systemd and swanctl"
	exit 0
fi
cli_cleanup_hook() {
	vpn_cleanup
	swan_net_down
}

# ---- key managers: QKD nodes A (g1) and B (g2) ----
mkdir -p "$D/run"
cp "$EX/vpn/node-a.conf" "$EX/vpn/node-b.conf" "$D/"
sh "$EX/make-test-pki.sh" "$D/run/pki" SAE_A SAE_B >/dev/null
head -c 262144 /dev/urandom >"$D/run/ab.key"
PSK=$(head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \n')
printf '%b' "$(printf '%s' "$PSK" | sed 's/../\\x&/g')" >"$D/run/a-b.psk"
vpn_bg "$VPN_NS_G1" node-a "$QKD" node --config "$D/node-a.conf"
vpn_bg "$VPN_NS_G2" node-b "$QKD" node --config "$D/node-b.conf"

# kme NS PORT SAE ARGS...: `qkd kme` as SAE against the key manager on PORT in NS.
kme() {
	local ns=$1 port=$2 sae=$3
	shift 3
	ip netns exec "$ns" "$QKD" kme "$@" --url "https://127.0.0.1:$port" --ca "$D/run/pki/ca.pem" \
		--cert "$D/run/pki/$sae.pem" --cert-key "$D/run/pki/$sae.key" --json
}
# new_key: enc_keys at node A as SAE_A for SAE_B; sets KEY_ID and KEY (0s + base64).
new_key() {
	local i j
	for i in $(seq 1 60); do
		j=$(kme "$VPN_NS_G1" 8443 SAE_A enc --sae SAE_B --size 256 2>/dev/null) &&
			KEY_ID=$(printf '%s' "$j" | jq -r '.keys[0].key_ID') &&
			KEY=0s$(printf '%s' "$j" | jq -r '.keys[0].key') && return 0
		sleep 0.5
	done
	return 1
}
check "node A's key manager serves a QKD key (enc_keys as SAE_A)" new_key
ID1=$KEY_ID

# gw_conf NAME: the example gateway's configuration for this test in $D.
gw_conf() {
	sed -e 's/"gw-a"/"gw1.qkd.test"/; s/"gw-b"/"gw2.qkd.test"/' \
		-e 's/rekey = 60.0;/rekey = 600.0; ppk_lead = 3.0; dpd = 5.0;/' \
		-e 's/log_level = "info"/log_level = "debug"/' "$EX/vpn/$1.conf" >"$D/$1.conf"
}
gw_conf gw-a
gw_conf gw-b
st() { vpn_st "$D/run/$1.sock"; }
wait_st() { vpn_wait_st "$D/run/$1.sock" "$2" "$3"; }
sas() { swan_ctl "$1" --list-sas 2>/dev/null; }
ping_ok() { vpn_ping "$1" "$2" 3; }
iperf() {	# iperf FROM_NS TO_ADDR: 2 s of TCP, bytes received > 1 MB
	local srv=$VPN_NS_H2
	[ "$1" = "$VPN_NS_H2" ] && srv=$VPN_NS_H1
	ip netns exec "$srv" iperf3 -s -1 -D -p 5201 >/dev/null 2>&1
	sleep 0.3
	ip netns exec "$1" timeout 10 iperf3 -c "$2" -p 5201 -t 2 -J >"$D/iperf.json" 2>&1
	jq -e '.end.sum_received.bytes > 1000000' "$D/iperf.json" >/dev/null
}

# ---- 1. charon initiates, qkd vpn answers ----
vpn_bg "$VPN_NS_G2" gw-b "$QKD" vpn --config "$D/gw-b.conf"
swan_conf gw1 local="$VPN_G1" remote="$VPN_G2" local_ts="$VPN_NET1" remote_ts="$VPN_NET2" \
	local_id=gw1.qkd.test remote_id=gw2.qkd.test psk="$PSK" ppk_id="$ID1" ppk="$KEY" \
	initiate=yes pfs=no
check "charon starts in g1 and initiates" swan_start gw1 "$VPN_NS_G1"
UP1=".tunnels[0] | .state == \"established\" and .qkd and .key_id == \"$ID1\""
check "qkd vpn (responder): IKE SA and Child SA with the QKD key as PPK" wait_st gw-b "$UP1" 15
check "charon: CHILD_SA installed" swan_wait_sa gw1 net 10
check_match "charon: the IKE SA used the PPK" "$(sas gw1)" "PPK"
vpn_route_tun "$VPN_NS_G2" qkd0
check "ping h1 -> h2 (charon encrypts, qkd vpn decrypts)" ping_ok "$VPN_NS_H1" "$VPN_H2"
check "ping h2 -> h1" ping_ok "$VPN_NS_H2" "$VPN_H1"
command -v iperf3 >/dev/null && check "TCP h1 -> h2 (iperf3, 2 s)" iperf "$VPN_NS_H1" "$VPN_H2"

check "a second QKD key for the re-authentication" new_key
ID2=$KEY_ID
OLD=$(sas gw1 | sed -n 's/^qkd: #\([0-9]*\),.*/\1/p' | head -1)
swan_ppk gw1 "$ID2" "$KEY"
swan_ctl gw1 --initiate --child net --timeout 10 >"$D/reauth.out" 2>&1
swan_ctl gw1 --terminate --ike-id "$OLD" --timeout 10 >>"$D/reauth.out" 2>&1
UP2=".tunnels[0] | .state == \"established\" and .key_id == \"$ID2\""
check "re-authentication: qkd vpn's SAs now use the new key_ID" wait_st gw-b "$UP2" 15
check "... and traffic flows" ping_ok "$VPN_NS_H1" "$VPN_H2"
check_eq "... and no key_ID is left from the first IKE SA" \
	"$(st gw-b | jq -r "[.tunnels[0].pairs[].key_id] | map(select(. == \"$ID1\")) | length")" 0
swan_stop gw1
kill -TERM "$PID_gw_b" 2>/dev/null
{ wait "$PID_gw_b"; } 2>/dev/null

# ---- 2. qkd vpn initiates, charon answers ----
swan_conf gw2 local="$VPN_G2" remote="$VPN_G1" local_ts="$VPN_NET2" remote_ts="$VPN_NET1" \
	local_id=gw2.qkd.test remote_id=gw1.qkd.test psk="$PSK" ppk_id="$ID2" ppk="$KEY" \
	ppk_any=yes initiate=no pfs=no
check "charon starts in g2 as responder" swan_start gw2 "$VPN_NS_G2"
vpn_bg "$VPN_NS_G1" gw-a "$QKD" vpn --config "$D/gw-a.conf"
# The integrator's part: each key_ID gw-a names, fetched at node B as
# SAE_B and handed to charon before gw-a uses it (ppk_lead).
feed() {
	local i id j
	for i in $(seq 1 100); do
		id=$(grep -o 'QKD key_ID [0-9a-f-]\{36\} fetched' "$D/run/gw-a.log" 2>/dev/null |
			tail -1 | awk '{print $3}')
		if [ -n "$id" ] && j=$(kme "$VPN_NS_G2" 8444 SAE_B dec --sae SAE_A --key-id "$id"); then
			swan_ppk gw2 "$id" "0s$(printf '%s' "$j" | jq -r '.keys[0].key')"
			FED=$id
			return 0
		fi
		sleep 0.1
	done
	return 1
}
check "the key_ID gw-a fetched is loaded into charon within ppk_lead" feed
UP3=".tunnels[0] | .state == \"established\" and .qkd and .key_id == \"$FED\""
check "qkd vpn (initiator): IKE SA and Child SA with the QKD key as PPK" wait_st gw-a "$UP3" 15
check "charon: CHILD_SA installed" swan_wait_sa gw2 net 10
check_match "charon: the IKE SA used the PPK of that key_ID" \
	"$(grep "PPK" "$(swan_log gw2)" | tail -3)" "$FED"
vpn_route_tun "$VPN_NS_G1" qkd0
check "ping h1 -> h2 (qkd vpn encrypts, charon decrypts)" ping_ok "$VPN_NS_H1" "$VPN_H2"
check "ping h2 -> h1" ping_ok "$VPN_NS_H2" "$VPN_H1"
command -v iperf3 >/dev/null && check "TCP h2 -> h1 (iperf3, 2 s)" iperf "$VPN_NS_H2" "$VPN_H1"
finish
