#!/usr/bin/env bash
# tests/integration/kme_nodes.sh - the key manager of two real `qkd node`
# daemons (docs/kme.md, "Two nodes"): a QKD link on loopback between them,
# each with its ETSI GS QKD 014 server over mutual TLS, curl as the SAEs.
# A master SAE fetches keys with enc_keys at its node and the slave SAE the
# same keys with dec_keys at the other; every error case; concurrent
# clients in both directions never receive a key twice; a node restarted
# (SIGTERM and kill -9) between enc_keys and dec_keys still serves the key
# once; a link that is down refuses at once and consumes nothing.
# Usage (from the top of the tree): QKD=build/qkd tests/integration/kme_nodes.sh
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

CP=$(free_port); FP=$(free_port "$CP"); KA=$(free_port "$CP" "$FP"); KB=$(free_port "$CP" "$FP" "$KA")

check "test PKI written" "$TOP/examples/make-test-pki.sh" "$P" SAE_A SAE_B SAE_C SAE_Z

head -c 262144 /dev/urandom >"$D/ab.key"
# SAE_D: node A believes it is behind the link; node B does not know it.
kme_node_conf alice "$KA" KME_A "SAE_A" "SAE_B SAE_C SAE_D" KME_B
kme_node_conf bob "$KB" KME_B "SAE_B SAE_C" "SAE_A" KME_A

# req NODE WHO METHOD PATH [BODY]: one request to node a or b as SAE WHO
# (none: no client certificate). Sets CODE (000: no HTTP response), RESP.
req() {
	local port=$KA who=$2 method=$3 path=$4 data=${5-}
	[ "$1" = b ] && port=$KB
	local args=(-sS --max-time 20 --cacert "$P/ca.pem" -o "$D/resp" -w '%{http_code}')
	[ "$who" = none ] || args+=(--cert "$P/$who.pem" --key "$P/$who.key")
	[ "$method" = POST ] && args+=(-X POST -H 'Content-Type: application/json' --data-binary "$data")
	rm -f "$D/resp"
	CODE=$(curl "${args[@]}" "https://127.0.0.1:$port/api/v1/keys$path" 2>"$D/curl.err")
	RESP=$(cat "$D/resp" 2>/dev/null)
}
ids_of() { printf '%s' "$RESP" | jq -c '[.keys[].key_ID]'; }
pairs_of() { printf '%s' "$RESP" | jq -r '.keys[] | .key_ID + " " + .key'; }
stored() { req "$1" "$2" GET "/$3/status"; printf '%s' "$RESP" | jq -r .stored_key_count; }

start bob; start alice
check "node A: key manager listening" wait_listen "$KA"
check "node B: key manager listening" wait_listen "$KB"
check "link: 4 blocks stored within 90 s" wait_for bob stored_blocks 4 90

# --- status (clause 6.1) at both ends
req a SAE_A GET /SAE_B/status
check_eq "status at A: HTTP 200" "$CODE" 200
jcheck "status at A: KME IDs, pair, limits" '.source_KME_ID == "KME_A" and
	.target_KME_ID == "KME_B" and .master_SAE_ID == "SAE_A" and .slave_SAE_ID == "SAE_B" and
	.key_size == 256 and .max_key_size == 65536 and .max_key_per_request == 1024 and
	.stored_key_count > 0 and .max_SAE_ID_count == 0'
req b SAE_B GET /SAE_A/status
jcheck "status at B: its own half of the store" '.source_KME_ID == "KME_B" and
	.target_KME_ID == "KME_A" and .stored_key_count > 0'

# --- a key pair: enc_keys at A as SAE_A, dec_keys at B as SAE_B
req a SAE_A GET "/SAE_B/enc_keys?number=3&size=512"
check_eq "enc_keys at A: HTTP 200" "$CODE" 200
jcheck "enc_keys at A: three keys" '(.keys | length) == 3'
check "enc_keys at A: each of 64 bytes, key_ID a UUID" keybytes 64
ENC=$(pairs_of | sort); IDS=$(ids_of)
req b SAE_B POST /SAE_A/dec_keys "{\"key_IDs\": $(printf '%s' "$IDS" | jq -c '[.[] | {key_ID: .}]')}"
check_eq "dec_keys at B: HTTP 200" "$CODE" 200
check_eq "dec_keys at B: the very same keys" "$(pairs_of | sort)" "$ENC"
req b SAE_B POST /SAE_A/dec_keys "{\"key_IDs\": $(printf '%s' "$IDS" | jq -c '[.[] | {key_ID: .}]')}"
error_is "dec_keys again: refused" 400 "unknown or already delivered"

# --- and the other way: SAE_B is master at B, SAE_A slave at A
req b SAE_B POST /SAE_A/enc_keys '{"number": 2, "size": 256}'
check_eq "enc_keys at B: HTTP 200" "$CODE" 200
ENC=$(pairs_of | sort)
K1=$(printf '%s' "$RESP" | jq -r '.keys[0].key_ID'); K2=$(printf '%s' "$RESP" | jq -r '.keys[1].key_ID')
req a SAE_A GET "/SAE_B/dec_keys?key_ID=$K1"
check_eq "dec_keys GET at A: HTTP 200" "$CODE" 200
R1=$(pairs_of)
req a SAE_A GET "/SAE_B/dec_keys?key_ID=$K2"
check_eq "dec_keys at A: the same two keys" "$(printf '%s\n%s\n' "$R1" "$(pairs_of)" | sort)" "$ENC"

# --- every error of the issue, and the key stays where it belongs
req a SAE_A GET "/SAE_B/enc_keys?size=100"
error_is "size not a multiple of 8" 400 "multiple of 8"
req a SAE_A GET "/SAE_B/enc_keys?number=1025"
error_is "more keys than max_key_per_request" 400 "number"
req a SAE_A GET "/SAE_B/enc_keys?size=65544"
error_is "size above max_key_size" 400 "size"
S0=$(stored a SAE_A SAE_B)
req a SAE_A GET "/SAE_B/enc_keys?number=1024&size=65536"
error_is "more key than the store holds" 503 "not enough key"
S1=$(stored a SAE_A SAE_B)
check "more key than the store holds: nothing consumed ($S0 -> $S1 keys)" test "$S1" -ge "$S0"
req a SAE_A POST /SAE_B/enc_keys '{"number": 1, '
error_is "body not JSON" 400 "JSON"
req a SAE_A GET "/SAE_A/enc_keys"
error_is "slave is the caller itself" 400 "caller's own"
req a SAE_A GET "/SAE_Q/enc_keys"
error_is "unknown slave SAE" 400 "unknown SAE"
req b SAE_B GET "/SAE_C/enc_keys"
error_is "both SAEs at one KME" 400 "both SAEs are attached to this KME"
req b SAE_Z GET "/SAE_A/status"
error_is "certificate of no configured SAE" 401 "not a known SAE"
req b none GET "/SAE_A/status"
check_eq "no client certificate: no HTTP response" "$CODE" 000
req a SAE_A GET "/SAE_B/dec_keys?key_ID=00000000-0000-4000-8000-000000000000"
error_is "unknown key_ID" 400 "unknown or already delivered"
req a SAE_A GET "/SAE_B/enc_keys?size=256"
KC=$(printf '%s' "$RESP" | jq -r '.keys[0].key_ID'); VC=$(printf '%s' "$RESP" | jq -r '.keys[0].key')
req b SAE_C GET "/SAE_A/dec_keys?key_ID=$KC"
error_is "another SAE asks for SAE_B's key" 401 "another pair"
req b SAE_B GET "/SAE_A/dec_keys?key_ID=$KC"
check_eq "the key stays for its slave: HTTP 200" "$CODE" 200
check_eq "the key stays for its slave: same bytes" "$(printf '%s' "$RESP" | jq -r '.keys[0].key')" "$VC"

# A pair the slave's KME does not serve: refused there, 503 here, and the
# bits consumed at both ends alike (checked with the stores at the end).
req a SAE_A GET "/SAE_D/enc_keys?number=2"
error_is "a pair the peer KME does not serve" 503 "refused the keys"
check_match "the peer KME logs why it refused" "$(cat "$D/bob.log")" \
	"key record for SAE_A -> SAE_D refused: the SAE pair is not one this end serves"
# The status is refreshed after each round: wait for one (bounded).
check "status: the key manager's figures at B" wait_json bob '.kme_refused == 2 and
	.kme_delivered == 4 and .kme_ready == 0 and .kme_outbox == 0 and
	.kme_available_bits > 0 and .auth_low == false' 10
check "status: A's outbox empty once B answered" wait_json alice '.kme_outbox == 0' 10
# The records crossed as service messages (docs/protocol.md, "Services on a
# link"): sent by A, delivered at B and answered, none unknown.
check "status: services: A sent, B delivered, none unknown" wait_json bob \
	'.service_delivered > 0 and .service_sent > 0 and .service_unknown == 0' 10
check "status: services: A's batches answered" wait_json alice \
	'.service_sent > 0 and .service_delivered > 0 and .service_unknown == 0' 10
check_match "status: the key manager's line" "$("$QKD" status --node "$D/alice.sock")" \
	"key manager: [0-9]+ bits in this end's half; keys: 0 awaiting the peer"

# --- concurrency: 6 clients at A and 3 at B, 3 600 keys, then the slaves
# fetch every one at the other node; no key_ID and no key bytes twice.
worker() { # NODE MASTER SLAVE W REQUESTS
	local port=$KA peer=$KB i
	[ "$1" = b ] && { port=$KB; peer=$KA; }
	for i in $(seq 1 "$5"); do
		printf 'url = "https://127.0.0.1:%s/api/v1/keys/%s/enc_keys?number=50&size=128"\n' "$port" "$3"
	done >"$D/enc$4.cfg"
	curl -sS --max-time 300 --cacert "$P/ca.pem" --cert "$P/$2.pem" --key "$P/$2.key" \
		-K "$D/enc$4.cfg" 2>/dev/null | jq -r '.keys[]? | .key_ID + " " + .key' >"$D/enc$4.txt"
	awk -v p="$peer" -v m="$2" '{ printf "url = \"https://127.0.0.1:%s/api/v1/keys/%s/dec_keys?key_ID=%s\"\n", p, m, $1 }' \
		"$D/enc$4.txt" >"$D/dec$4.cfg"
	curl -sS --max-time 300 --cacert "$P/ca.pem" --cert "$P/$3.pem" --key "$P/$3.key" \
		-K "$D/dec$4.cfg" 2>/dev/null | jq -r '.keys[]? | .key_ID + " " + .key' >"$D/dec$4.txt"
}
WPIDS=()
for w in 1 2 3 4 5 6; do worker a SAE_A SAE_B "$w" 8 & WPIDS+=("$!"); done
for w in 7 8 9; do worker b SAE_B SAE_A "$w" 8 & WPIDS+=("$!"); done
for p in "${WPIDS[@]}"; do wait "$p"; done
cat "$D"/enc?.txt | sort >"$D/enc.all"
cat "$D"/dec?.txt | sort >"$D/dec.all"
check_eq "concurrent: 3600 keys handed out" "$(wc -l <"$D/enc.all")" 3600
check_eq "concurrent: no key_ID twice" "$(cut -d' ' -f1 "$D/enc.all" | sort -u | wc -l)" 3600
check_eq "concurrent: no key bytes twice" "$(cut -d' ' -f2 "$D/enc.all" | sort -u | wc -l)" 3600
check "concurrent: the slaves got exactly the same keys" cmp -s "$D/enc.all" "$D/dec.all"

# --- restarts between enc_keys and dec_keys
req a SAE_A GET "/SAE_B/enc_keys?number=2"
ENC=$(pairs_of | sort); IDS=$(ids_of)
stop bob; check_eq "SIGTERM: B exits 0" "$STOP_RC" 0
start bob
check "B restarted: key manager listening" wait_listen "$KB"
req b SAE_B POST /SAE_A/dec_keys "{\"key_IDs\": $(printf '%s' "$IDS" | jq -c '[.[] | {key_ID: .}]')}"
check_eq "after B's restart: the pending keys, HTTP 200" "$CODE" 200
check_eq "after B's restart: the same keys" "$(pairs_of | sort)" "$ENC"
req b SAE_B POST /SAE_A/dec_keys "{\"key_IDs\": $(printf '%s' "$IDS" | jq -c '[.[] | {key_ID: .}]')}"
error_is "after B's restart: served once" 400 "unknown or already delivered"

check "link up again after the restart" wait_for bob rounds_ok 1 60
req b SAE_B GET "/SAE_A/enc_keys?number=2&size=1024"
check_eq "enc_keys at B before a kill -9: HTTP 200" "$CODE" 200
ENC=$(pairs_of | sort); IDS=$(ids_of)
kill -9 "$PID_alice"; wait "$PID_alice" 2>/dev/null
start alice
check "A restarted after kill -9: key manager listening" wait_listen "$KA"
req a SAE_A POST /SAE_B/dec_keys "{\"key_IDs\": $(printf '%s' "$IDS" | jq -c '[.[] | {key_ID: .}]')}"
check_eq "after A's kill -9: the pending keys, HTTP 200" "$CODE" 200
check_eq "after A's kill -9: the same keys" "$(pairs_of | sort)" "$ENC"
req a SAE_A POST /SAE_B/dec_keys "{\"key_IDs\": $(printf '%s' "$IDS" | jq -c '[.[] | {key_ID: .}]')}"
error_is "after A's kill -9: served once" 400 "unknown or already delivered"

# --- the link down: enc_keys refuses at once and consumes nothing
stop bob
S0=$(stored a SAE_A SAE_B)
req a SAE_A GET "/SAE_B/enc_keys?number=4"
error_is "link down: refused" 503 "link to the slave SAE's KME is down"
check_eq "link down: nothing consumed" "$(stored a SAE_A SAE_B)" "$S0"
start bob
check "link up again" wait_for bob rounds_ok 1 60
req a SAE_A GET "/SAE_B/enc_keys?number=1"
check_eq "link up again: enc_keys served" "$CODE" 200

stop alice; check_eq "SIGTERM: A exits 0" "$STOP_RC" 0
stop bob; check_eq "SIGTERM: B exits 0" "$STOP_RC" 0
# Keys cut at one end were consumed at the other: the blocks stay identical.
same_blocks() {
	local a b id
	a=$("$QKD" keys --store "$D/alice.db" --json | jq -c '[.blocks[] | select(.state != "pending") | {id, state, bits}]')
	b=$("$QKD" keys --store "$D/bob.db" --json | jq -c '[.blocks[] | select(.state != "pending") | {id, state, bits}]')
	[ "$a" = "$b" ] || { echo "lists differ" >&2; return 1; }
	for id in $(printf '%s' "$a" | jq -r '.[] | select(.state == "final") | .id'); do
		[ "$("$QKD" keys --store "$D/alice.db" export "$id")" = "$("$QKD" keys --store "$D/bob.db" export "$id")" ] ||
			{ echo "block $id differs" >&2; return 1; }
	done
}
check "stores: the same bits consumed at both ends" same_blocks
KA_J=$("$QKD" keys --store "$D/alice.db" --json | jq -c .kme)
KB_J=$("$QKD" keys --store "$D/bob.db" --json | jq -c .kme)
check "qkd keys: no record left waiting in either outbox" \
	jq -en --argjson a "$KA_J" --argjson b "$KB_J" '$a.outbox == 0 and $b.outbox == 0'
check "qkd keys: delivered keys counted at both ends ($KA_J, $KB_J)" \
	jq -en --argjson a "$KA_J" --argjson b "$KB_J" '$a.delivered >= 1200 and $b.delivered >= 2400'
check "no key bytes in the logs" bash -c "! grep -qF '$VC' '$D/alice.log' '$D/bob.log'"
finish
