#!/usr/bin/env bash
# tests/integration/swan_swan.sh - strongSwan against strongSwan with a PPK
# (RFC 8784) across four network namespaces, h1 - gw1 - gw2 - h2
# (tests/integration/lib_swan.sh): the reference run of issue 14 item 7, so
# that when one gateway becomes `qkd vpn` the only unknown is `qkd vpn`.
# The PPK plays a QKD key: its id is a key_ID (a UUID, as ETSI GS QKD 014
# hands out) and its secret 32 random bytes, loaded with swanctl.
#
#   - IKE SA with the PPK (both ends log "using PPK for PPK_ID <key_ID>",
#     --list-sas shows /PPK), AES-GCM-16-256, PRF SHA2-256, X25519, UDP
#     4500 at both ends, CHILD_SA TUNNEL-in-UDP;
#   - on the wire (tshark on the gateways' link): UDP 4500 to 4500 only,
#     IKE after the non-ESP marker, ESP in UDP; IKE_AUTH decrypted with the
#     keys gw1 logs at ike level 4: PPK_IDENTITY is PPK_ID_FIXED and the
#     key_ID's characters, no NO_PPK_AUTH (ppk_required), an empty
#     PPK_IDENTITY in the response;
#   - ping and iperf3 -t 2 h1 -> h2 through the tunnel, counted in the
#     CHILD_SA's bytes;
#   - a different PPK on the responder: IKE_AUTH fails, nothing installed;
#   - a new key_ID and PPK loaded with swanctl --load-creds/--load-conns: an
#     IKE rekey and a CHILD rekey do not use it (strongSwan 5.9.8 has no
#     RFC 9867); a responder whose connection names the old ppk_id refuses
#     it, one that names none takes it; a re-authentication by a new IKE SA
#     (swanctl --initiate, then the old one terminated) uses it, and traffic
#     flows after it; swanctl --rekey --reauth would not: it rebuilds the
#     IKE SA from the configuration the old one was made with;
#   - the other direction: gw2 initiates, gw1 answers, ping h2 -> h1.
#
# Needs root and ip netns: otherwise one "ok - ... # SKIP" line. Every wait
# is bounded; the namespaces and charons are removed by the EXIT trap.
# Usage: bash tests/integration/swan_swan.sh (KEEP=1 keeps the logs).
# shellcheck disable=SC2317  # functions run by check and the EXIT trap
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/../cli/lib.sh"
# shellcheck source=tests/integration/lib_swan.sh
. "$(dirname "$0")/lib_swan.sh"

if [ "$(id -u)" -ne 0 ] || ! ip netns list >/dev/null 2>&1 ||
   ! command -v swanctl >/dev/null || [ ! -x "$SWAN_CHARON" ]; then
	echo "ok - strongSwan to strongSwan # SKIP needs root, ip netns, charon-systemd and swanctl"
	exit 0
fi
SWAN_DIR=$CLI_TMP
cli_cleanup_hook() { swan_net_down; }

hex() { head -c "$1" /dev/urandom | od -An -tx1 -v | tr -d ' \n'; }
uuid() { cat /proc/sys/kernel/random/uuid; }
# The base64 of the bytes of hex $1, as an ETSI 014 key is served.
b64() { printf '%b' "$(printf '%s' "$1" | sed 's/../\\x&/g')" | base64 -w0; }
PSK=$(hex 32)
ID1=$(uuid)
PPK1=$(hex 32)
ID2=$(uuid)
PPK2=$(hex 32)
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
sas() { swan_ctl "$1" --list-sas 2>/dev/null; }
# The number of IKE_AUTHs that used the PPK of key_ID $2 in $1's log.
ppk_uses() { grep -c "using PPK for PPK_ID '$2'" "$(swan_log "$1")"; }
# Until both ends logged the PPK of $1 at least once, at most 15 s.
wait_ppk() {
	for _ in $(seq 1 75); do
		[ "$(ppk_uses gw1 "$1")" -ge 1 ] && [ "$(ppk_uses gw2 "$1")" -ge 1 ] && return 0
		sleep 0.2
	done
	return 1
}
# Until gw1 has no rekeyed CHILD_SA left, at most 10 s: charon delays a
# re-authentication while one is there (charon.delete_rekeyed_delay, 5 s).
settled() {
	for _ in $(seq 1 50); do
		sas gw1 | grep -Eq '^  net: .*(REKEYED|DELETING|DELETED)' || return 0
		sleep 0.2
	done
	return 1
}
# Until gw1 logged a line matching $1, at most 10 s.
wait_log() {
	for _ in $(seq 1 50); do grep -q "$1" "$(swan_log gw1)" && return 0; sleep 0.2; done
	return 1
}
# conf NAME PPK_ID PPK [KEY=VALUE...]: gw1 initiates, gw2 responds.
conf() {
	local n=$1 id=$2 k=$3
	shift 3
	if [ "$n" = gw1 ]; then
		swan_conf gw1 local="$SWAN_GW1" remote="$SWAN_GW2" local_ts="$SWAN_NET1" \
			remote_ts="$SWAN_NET2" local_id=gw1.qkd.test remote_id=gw2.qkd.test \
			psk="$PSK" ppk_id="$id" ppk="$k" initiate=yes "$@"
	else
		swan_conf gw2 local="$SWAN_GW2" remote="$SWAN_GW1" local_ts="$SWAN_NET2" \
			remote_ts="$SWAN_NET1" local_id=gw2.qkd.test remote_id=gw1.qkd.test \
			psk="$PSK" ppk_id="$id" ppk="$k" "$@"
	fi
}

check "four namespaces h1 - gw1 - gw2 - h2 with veth links" swan_net_up
check "h1 cannot reach h2 before the tunnel (no route through gw1)" \
	sh -c "! ip netns exec $SWAN_NS_H1 ping -c 1 -W 1 $SWAN_H2 >/dev/null 2>&1"

# --- a mismatched PPK: the responder holds other bytes under the same key_ID.
conf gw2 "$ID1" "$PPK2"
conf gw1 "$ID1" "$PPK1"
check "charon gw2 (responder) starts in its namespace and loads its config" \
	swan_start gw2 "$SWAN_NS_GW2"
swan_start gw1 "$SWAN_NS_GW1"
check_match "different PPK bytes: the initiation fails" "$(cat "$SWAN_DIR/gw1/initiate.out")" \
	"establishing CHILD_SA 'net' failed|initiate failed"
check_eq "... no SA is left at either end" "$(sas gw1)$(sas gw2)" ""
check_match "... the initiator saw AUTHENTICATION_FAILED" \
	"$(cat "$(swan_log gw1)")" "received AUTHENTICATION_FAILED notify"
swan_stop gw1
swan_stop gw2
mv "$SWAN_DIR/gw1" "$SWAN_DIR/gw1.mismatch"
mv "$SWAN_DIR/gw2" "$SWAN_DIR/gw2.mismatch"

# --- the same PPK at both ends.
conf gw2 "$ID1" "$PPK1"
conf gw1 "$ID1" "$PPK1" ike_log=4
# The link between the gateways is captured from before
# IKE_SA_INIT to after the ping, to see ports and framing on the wire.
CAP=$SWAN_DIR/out0.pcap
if command -v tshark >/dev/null; then
	ip netns exec "$SWAN_NS_GW1" tshark -q -i out0 -f udp -a duration:30 -w "$CAP" \
		>"$SWAN_DIR/tshark.out" 2>&1 &
	TSHARK=$!
	PIDS+=("$TSHARK")
	for _ in $(seq 1 50); do grep -q "Capturing on" "$SWAN_DIR/tshark.out" && break; sleep 0.1; done
fi
check "charon gw2 (responder) restarts with the right PPK" swan_start gw2 "$SWAN_NS_GW2"
check "charon gw1 (initiator) starts and initiates" swan_start gw1 "$SWAN_NS_GW1"
check "the CHILD_SA is installed at gw1" swan_wait_sa gw1 net 15
check "the CHILD_SA is installed at gw2" swan_wait_sa gw2 net 5
S1=$(sas gw1)
S2=$(sas gw2)
check_match "gw1: IKE SA AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519 with PPK" "$S1" \
	"^  AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519/PPK$"
check_match "gw2: the same, with PPK" "$S2" "^  AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519/PPK$"
check_match "gw1: IKE from port 4500 to port 4500" "$S1" \
	"local  'gw1.qkd.test' @ $SWAN_GW1\\[4500\\]"
check_match "... remote port 4500" "$S1" "remote 'gw2.qkd.test' @ $SWAN_GW2\\[4500\\]"
check_match "gw1: ESP AES_GCM_16-256 in UDP, tunnel mode" "$S1" \
	"net: #[0-9]+, reqid [0-9]+, INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-256"
check_match "gw1: the subnets as traffic selectors" "$S1" \
	"local  192\\.168\\.11\\.0/24"
check_eq "gw1 used the PPK of key_ID $ID1 once" "$(ppk_uses gw1 "$ID1")" 1
check_eq "gw2 used the PPK of key_ID $ID1 once" "$(ppk_uses gw2 "$ID1")" 1
check "ping h1 -> h2 through the tunnel: 3 of 3" \
	sh -c "ip netns exec $SWAN_NS_H1 ping -c 3 -W 2 -i 0.2 $SWAN_H2 | grep -q ' 3 received'"

if [ -n "${TSHARK:-}" ]; then
	sleep 0.5	# the last packets reach the file
	kill -INT "$TSHARK"
	wait "$TSHARK"
	# One line per packet: source port, destination port, IKE exchange type
	# (34 IKE_SA_INIT, 35 IKE_AUTH), the non-ESP marker, ESP SPI.
	W=$(tshark -r "$CAP" -T fields -e udp.srcport -e udp.dstport -e isakmp.exchangetype \
		-e udpencap.non_esp_marker -e esp.spi 2>/dev/null)
	check_eq "on the wire: every UDP packet goes from port 4500 to port 4500" \
		"$(printf '%s\n' "$W" | awk -F'\t' '$1 != 4500 || $2 != 4500' | wc -l)" 0
	check_eq "... IKE_SA_INIT and IKE_AUTH, a request and a response each, after the non-ESP marker" \
		"$(printf '%s\n' "$W" | awk -F'\t' '($3 == 34 || $3 == 35) && $4 != "" { n[$3]++ }
			END { print n[34] + 0, n[35] + 0 }')" "2 2"
	check_eq "... the pings as ESP in UDP (RFC 3948): 3 packets on each of 2 SPIs" \
		"$(printf '%s\n' "$W" | awk -F'\t' '$5 != "" { n[$5]++ }
			END { for (s in n) if (n[s] >= 3) k++; print k + 0 }')" 2
	# IKE_AUTH decrypted with the keys gw1 logged (ike level 4): notify
	# types and data, the request's line first.
	N=$(swan_tshark_ike gw1 "$CAP" -Y 'isakmp.exchangetype == 35' -T fields \
		-e isakmp.notify.msgtype -e isakmp.notify.data 2>/dev/null)
	# notify TYPE LINE: the data of notify TYPE in line LINE of N, "-" if
	# it has none, nothing if it is absent.
	notify() {
		printf '%s\n' "$N" | awk -F'\t' -v t="$1" -v l="$2" 'NR == l {
			nt = split($1, ty, ","); split($2, da, ",")
			for (i = 1; i <= nt; i++) if (ty[i] == t) print (da[i] == "<MISSING>" || da[i] == "") ? "-" : da[i] }'
	}
	check_eq "IKE_AUTH request, decrypted: PPK_IDENTITY (16436) is PPK_ID_FIXED (2) then the key_ID's 36 ASCII characters" \
		"$(notify 16436 1)" "02$(printf '%s' "$ID1" | od -An -tx1 -v | tr -d ' \n')"
	check_eq "... no NO_PPK_AUTH (16437) with ppk_required = yes" "$(notify 16437 1)" ""
	check_eq "IKE_AUTH response: PPK_IDENTITY without data" "$(notify 16436 2)" "-"
else
	cli_ok "on the wire: ports and framing # SKIP no tshark"
fi

# iperf3 -t 2; the server answers one client and exits.
in_ns "$SWAN_NS_H2" iperf3 -s -1 -B "$SWAN_H2" >"$SWAN_DIR/iperf3-s.out" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 50); do
	in_ns "$SWAN_NS_H2" ss -ltn | grep -q ":5201 " && break
	sleep 0.1
done
check "iperf3 -t 2 h1 -> h2 (TCP) through the tunnel" \
	in_ns "$SWAN_NS_H1" timeout 15 iperf3 -c "$SWAN_H2" -t 2 -J
BPS=$(printf '%s' "$OUT" | jq -r '.end.sum_received.bits_per_second // 0' 2>/dev/null)
echo "# iperf3 -t 2 through strongSwan kernel-libipsec: $(awk -v b="${BPS:-0}" 'BEGIN { printf "%.2f", b / 1e9 }') Gbit/s" >&2
check "... more than 1 Mbit/s arrived" awk -v b="${BPS:-0}" 'BEGIN { exit !(b > 1e6) }'
OUTB=$(sas gw1 | awk '$1 == "out" { print $3; exit }')
check "... gw1's outbound ESP SA carried over 1 MB" awk -v b="${OUTB:-0}" 'BEGIN { exit !(b > 1e6) }'

# --- a fresh QKD key: a new key_ID and PPK replace the old at both ends.
conf gw2 "$ID2" "$PPK2"
# gw2 takes the new credentials only; its connection still says ppk_id ID1.
check "gw2: swanctl --load-creds loads the new PPK, unloads the old" \
	swan_ctl gw2 --load-creds --clear --file "$SWAN_DIR/gw2/swanctl.conf"
check_match "... gw2 says so" "$OUT" "loaded ppk secret 'ppk-1'"
check "gw1: swan_ppk: --load-creds and --load-conns (ppk_id $ID2, the key in base64)" \
	swan_ppk gw1 "$ID2" "0s$(b64 "$PPK2")"
check_match "... the secret went in as base64" "$(cat "$SWAN_DIR/gw1/swanctl.conf")" "secret = 0s[A-Za-z0-9+/]{43}="
check "an IKE rekey (CREATE_CHILD_SA) succeeds" swan_ctl gw1 --rekey --ike qkd
check "a CHILD rekey succeeds" swan_ctl gw1 --rekey --child net
check "... with a DH exchange (PFS): ESP:AES_GCM_16-256/CURVE_25519" \
	sh -c "for _ in \$(seq 1 25); do STRONGSWAN_CONF=$SWAN_DIR/gw1/strongswan.conf swanctl --list-sas \
		--uri unix://$SWAN_DIR/gw1/charon.vici | grep -q 'INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-256/CURVE_25519' && exit 0; sleep 0.2; done; exit 1"
check "... and traffic flows after both" \
	sh -c "sleep 1; ip netns exec $SWAN_NS_H1 ping -c 2 -W 2 -i 0.2 $SWAN_H2 | grep -q ' 2 received'"
check_eq "... but neither rekey used the new PPK (no RFC 9867 in 5.9.8)" \
	"$(ppk_uses gw1 "$ID2") $(ppk_uses gw2 "$ID2")" "0 0"
check_match "... the rekeyed IKE SA still says PPK (it derives from the old SK_d)" \
	"$(sas gw1)" "CURVE_25519/PPK$"
# Re-authentication with the new key_ID: a new IKE SA from the reloaded
# connection, then the old one terminated (make before break).
IKE2=$(sas gw1 | awk '/^qkd: #/ { gsub(/[#,]/, "", $2); print $2; exit }')
# A strongSwan 5.9.8 responder whose connection names a ppk_id refuses any
# other PPK_ID, even one whose PPK it holds.
check_exit "a new IKE SA with the new key_ID, gw2's connection naming the old: refused" 1 \
	sh -c "STRONGSWAN_CONF=$SWAN_DIR/gw1/strongswan.conf swanctl --initiate --child net --timeout 10 \
		--uri unix://$SWAN_DIR/gw1/charon.vici >/dev/null 2>&1 || { echo 'qkd: refused' >&2; exit 1; }"
check_match "... gw2: \"received PPK_ID '$ID2', but require '$ID1'\"" "$(cat "$(swan_log gw2)")" \
	"received PPK_ID '$ID2', but require '$ID1'"
# Without a ppk_id in its connection the responder takes any PPK_ID whose
# PPK it holds: the way to follow QKD key_IDs it cannot know in advance.
conf gw2 "$ID2" "$PPK2" ppk_any=yes
check "gw2: --load-conns without a ppk_id (ppk_required = yes)" \
	swan_ctl gw2 --load-conns --file "$SWAN_DIR/gw2/swanctl.conf"
check "re-authentication: swanctl --initiate builds a second IKE SA" \
	swan_ctl gw1 --initiate --child net --timeout 10
check "... which used the new PPK at both ends" wait_ppk "$ID2"
check_eq "... exactly once at gw1" "$(ppk_uses gw1 "$ID2")" 1
check_eq "... and at gw2" "$(ppk_uses gw2 "$ID2")" 1
check "the old IKE SA #$IKE2 is terminated" \
	swan_ctl gw1 --terminate --ike-id "$IKE2" --timeout 10
check "... a CHILD_SA is still installed" swan_wait_sa gw1 net 5
check_eq "... one IKE SA is left at each end" \
	"$(sas gw1 | grep -c '^qkd: #') $(sas gw2 | grep -c '^qkd: #')" "1 1"
check_match "... with the PPK" "$(sas gw1)" "CURVE_25519/PPK$"
check "ping h1 -> h2 after the re-authentication: 3 of 3" \
	sh -c "ip netns exec $SWAN_NS_H1 ping -c 3 -W 2 -i 0.2 $SWAN_H2 | grep -q ' 3 received'"

# --- swanctl --rekey --reauth rebuilds the IKE SA from the configuration
# the SA was made with, not the reloaded one: with the PPK of ID2 replaced
# by ID3's in the credentials and the connection, it still asks for ID2.
ID3=$(uuid)
check "gw1: swan_ppk (ppk_id $ID3)" swan_ppk gw1 "$ID3" "$(hex 32)"
check "no rekeyed CHILD_SA is left after 10 s" settled
check "swanctl --rekey --ike qkd --reauth is started" swan_ctl gw1 --rekey --ike qkd --reauth
check "... and asks for the PPK of the old key_ID $ID2, not $ID3" \
	wait_log "PPK required but no PPK found for '$ID2'"
check_eq "... never for $ID3" "$(grep -Ec "(PPK_ID|no PPK found for) '$ID3'" "$(swan_log gw1)")" 0

# --- the other direction: gw2 initiates, gw1 answers, a fourth key.
swan_stop gw1
swan_stop gw2
mv "$SWAN_DIR/gw1" "$SWAN_DIR/gw1.first"
mv "$SWAN_DIR/gw2" "$SWAN_DIR/gw2.first"
ID4=$(uuid)
PPK4=$(hex 32)
swan_conf gw1 local="$SWAN_GW1" remote="$SWAN_GW2" local_ts="$SWAN_NET1" remote_ts="$SWAN_NET2" \
	local_id=gw1.qkd.test remote_id=gw2.qkd.test psk="$PSK" ppk_id="$ID4" ppk="$PPK4" ppk_any=yes
swan_conf gw2 local="$SWAN_GW2" remote="$SWAN_GW1" local_ts="$SWAN_NET2" remote_ts="$SWAN_NET1" \
	local_id=gw2.qkd.test remote_id=gw1.qkd.test psk="$PSK" ppk_id="$ID4" ppk="$PPK4" initiate=yes
check "gw1 restarts as the responder" swan_start gw1 "$SWAN_NS_GW1"
check "gw2 restarts and initiates" swan_start gw2 "$SWAN_NS_GW2"
check "the CHILD_SA is installed at gw2" swan_wait_sa gw2 net 15
check_eq "... with the PPK of $ID4 at both ends" "$(ppk_uses gw1 "$ID4") $(ppk_uses gw2 "$ID4")" "1 1"
check "ping h2 -> h1: 3 of 3" \
	sh -c "ip netns exec $SWAN_NS_H2 ping -c 3 -W 2 -i 0.2 $SWAN_H1 | grep -q ' 3 received'"
finish
