#!/usr/bin/env bash
# tests/integration/relay_nodes.sh - end-to-end keys over trusted relays
# (docs/relay.md): three real `qkd node` daemons in a line on loopback,
# a -- b -- c, SAE_A at a's key manager and SAE_C at c's, b a relay with no
# key manager and no configuration naming either SAE. The link-state
# database converges (every node knows every node and SAE, a routes to c
# through b); enc_keys at a for SAE_C returns keys that dec_keys at c serves
# once, each one-time-pad encrypted hop by hop; status counts them; an SAE
# nobody advertises and a relay with the middle node stopped get clear
# errors, and nothing is served twice.
# Usage (from the top of the tree): QKD=build/qkd tests/integration/relay_nodes.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/../cli/lib.sh"
# shellcheck source=tests/integration/lib_kme.sh
. "$(dirname "$0")/lib_kme.sh"
# shellcheck source=tests/integration/lib_nodes.sh
. "$(dirname "$0")/lib_nodes.sh"

TOP=$(cd "$(dirname "$0")/../.." && pwd)
QKD=${QKD:-build/qkd}
QKD=$(cd "$(dirname "$QKD")" && pwd)/$(basename "$QKD")
D=$CLI_TMP
P=$D/pki
PIDS=()

AB_C=$(free_port); AB_F=$(free_port "$AB_C"); BC_C=$(free_port "$AB_C" "$AB_F")
BC_F=$(free_port "$AB_C" "$AB_F" "$BC_C"); KA=$(free_port "$AB_C" "$AB_F" "$BC_C" "$BC_F")
KC=$(free_port "$AB_C" "$AB_F" "$BC_C" "$BC_F" "$KA")
MA=$(free_port "$AB_C" "$AB_F" "$BC_C" "$BC_F" "$KA" "$KC")

check "test PKI written" "$TOP/examples/make-test-pki.sh" "$P" SAE_A SAE_C SAE_Z
head -c 262144 /dev/urandom >"$D/ab.key"
head -c 262144 /dev/urandom >"$D/bc.key"

link() { relay_link "$@"; }
kme() { relay_kme "$@"; }
{ echo "node = { name = \"a\"; status = \"a.sock\"; metrics = \"127.0.0.1:$MA\"; };"
  echo 'links = ('; link ab alice b "$AB_C" "$AB_F"; echo ');'
  kme "$KA" KME_A SAE_A; echo 'relay = { timeout = 5.0; };'; } >"$D/a.conf"
{ echo 'node = { name = "b"; status = "b.sock"; };'
  echo 'links = ('; link ab bob a "$AB_C" "$AB_F"; echo ','; link bc alice c "$BC_C" "$BC_F"
  echo ');'; } >"$D/b.conf"
{ echo 'node = { name = "c"; status = "c.sock"; };'
  echo 'links = ('; link bc bob b "$BC_C" "$BC_F"; echo ');'
  kme "$KC" KME_C SAE_C; } >"$D/c.conf"

req() {
	local port=$KA who=$2 method=$3 path=$4 data=${5-}
	[ "$1" = c ] && port=$KC
	local args=(-sS --max-time 20 --cacert "$P/ca.pem" -o "$D/resp" -w '%{http_code}')
	args+=(--cert "$P/$who.pem" --key "$P/$who.key")
	[ "$method" = POST ] && args+=(-X POST -H 'Content-Type: application/json' --data-binary "$data")
	rm -f "$D/resp"
	CODE=$(curl "${args[@]}" "https://127.0.0.1:$port/api/v1/keys$path" 2>"$D/curl.err")
	RESP=$(cat "$D/resp" 2>/dev/null)
}
ids_of() { printf '%s' "$RESP" | jq -c '[.keys[].key_ID | {key_ID: .}]'; }
pairs_of() { printf '%s' "$RESP" | jq -r '.keys[] | .key_ID + " " + .key'; }
relay_json() { status_json "$1" | jq -e "$2" >/dev/null 2>&1; }
wait_relay() {
	local i
	for i in $(seq 1 $(($3 * 5))); do relay_json "$1" "$2" && return 0; sleep 0.2; done
	return 1
}

start a; start b; start c
check "node a: key manager listening" wait_listen "$KA"
check "node c: key manager listening" wait_listen "$KC"
check "a knows b and c and their SAEs, and routes to c through b, within 60 s" \
	wait_relay a '.relay | (.lsdb | length) == 3 and
	(.routes[] | select(.dest == "c") | .path == ["a", "b", "c"]) and
	(.lsdb[] | select(.origin == "c") | .saes == ["SAE_C"])' 60
check "c routes back to a through b" \
	wait_relay c '.relay.routes[] | select(.dest == "a") | .next_hop == "b"' 10
check "both links hold key for pads within 60 s" \
	wait_relay b '[.relay.neighbours[] | select(.up and .available_bits >= 8192)] | length == 2' 60
# The LSAs that carry those figures: the routes need 4096 bits available.
check "a's view of the route's links has key" \
	wait_relay a '[.relay.lsdb[] | .links[] | select(.available_bits >= 4096)] | length == 4' 30

req a SAE_A GET /SAE_C/status
check_eq "status at a for SAE_C: HTTP 200" "$CODE" 200
jcheck "status at a: target node c, keys available" '.target_KME_ID == "c" and .stored_key_count > 0'

req a SAE_A GET "/SAE_C/enc_keys?number=4&size=256"
check_eq "enc_keys at a for SAE_C (two hops): HTTP 200" "$CODE" 200
check "enc_keys: four keys of 32 bytes with UUIDs" keybytes 32
jcheck "enc_keys: each key says it went over one path of two hops (key_extension)" \
	'[.keys[].key_extension.relay | select(.paths == 1 and .hops == 2)] | length == 4'
ENC=$(pairs_of | sort); IDS=$(ids_of)
req c SAE_C POST /SAE_A/dec_keys "{\"key_IDs\": $IDS}"
check_eq "dec_keys at c: HTTP 200" "$CODE" 200
check_eq "dec_keys at c: the very same keys" "$(pairs_of | sort)" "$ENC"
req c SAE_C POST /SAE_A/dec_keys "{\"key_IDs\": $IDS}"
error_is "dec_keys again at c: refused" 400 "unknown or already delivered"
check "b forwarded every key and kept none" \
	relay_json b '.relay.stats.shares_forwarded >= 4 and .relay.stats.keys_delivered == 0'
check "a counts four relays completed" relay_json a '.relay.stats.relays_completed == 4'
check "c counts four keys delivered" relay_json c '.relay.stats.keys_delivered == 4'
check "link key spent on pads: 256 bits a key on each of two hops, at each end" \
	relay_json b '.relay.stats.pad_bits == 2048'
curl -sS --max-time 5 "http://127.0.0.1:$MA/metrics" >"$D/metrics.txt" 2>/dev/null
check_match "metrics: four keys relayed" "$(grep '^qkd_relay_keys_total{outcome="completed"}' "$D/metrics.txt")" ' 4$'
check_match "metrics: the route to c through b, 2 hops" \
	"$(grep '^qkd_relay_route_hops{dest="c"}' "$D/metrics.txt")" ' 2$'
if command -v promtool >/dev/null; then
	check "metrics: promtool accepts the relay families" \
		sh -c "promtool check metrics <'$D/metrics.txt' 2>&1 | grep -v 'base unit' | grep -q . && exit 1 || exit 0"
else
	cli_not_ok "promtool installed (make deps: Debian package prometheus)"
fi

req a SAE_A GET "/SAE_Z/enc_keys?number=1"
error_is "enc_keys for an SAE nobody advertises" 400 "unknown SAE"
req c SAE_C POST /SAE_A/dec_keys '{"key_IDs": [{"key_ID": "00000000-0000-4000-8000-000000000000"}]}'
error_is "dec_keys of a key never relayed" 400 "unknown or already delivered"

stop b
check "a sees its link to b down and c unreachable within 10 s" \
	wait_relay a '(.relay.routes | length) == 0' 10
req a SAE_A GET "/SAE_C/enc_keys?number=1"
error_is "enc_keys with the relay down: 503 at once" 503 "no route"
check "nothing is left waiting at c" relay_json c '.relay.stats.keys_delivered == 4'
check "a's log names the failure" grep -q "not relayed: no route" "$D/a.log"
stop a
check_eq "a stops cleanly" "$STOP_RC" 0
stop c
check_eq "c stops cleanly" "$STOP_RC" 0
finish
