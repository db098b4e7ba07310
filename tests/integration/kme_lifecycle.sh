#!/usr/bin/env bash
# tests/integration/kme_lifecycle.sh - the key lifecycle of two real
# `qkd node` key managers (docs/kme.md, "Key lifecycle"), with
# kme.key_ttl = 3 s and sync_timeout = 2 s:
#   expiry      keys issued at both nodes and never fetched expire at the
#               other one: dec_keys answers 400 naming expiry, status counts
#               kme_expired and the lost bits at both ends;
#   withdrawal  the slave's node frozen (SIGSTOP) so enc_keys times out
#               (503); once it runs again the record is withdrawn there and
#               never becomes ready;
#   crash       the master's node killed (-9) while enc_keys waits for the
#               peer; restarted, it withdraws the orphan record: nothing is
#               ready at the peer, the bits are counted as lost at both ends;
# and at the end the two stores pass `qkd keys check` and hold the same
# blocks consumed alike.
# Usage (from the top of the tree): QKD=build/qkd tests/integration/kme_lifecycle.sh
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

check "test PKI written" "$TOP/examples/make-test-pki.sh" "$P" SAE_A SAE_B
head -c 262144 /dev/urandom >"$D/ab.key"
KME_SYNC_TIMEOUT=2 KME_EXTRA="key_ttl = 3;" kme_node_conf alice "$KA" KME_A "SAE_A" "SAE_B" KME_B
KME_SYNC_TIMEOUT=2 KME_EXTRA="key_ttl = 3;" kme_node_conf bob "$KB" KME_B "SAE_B" "SAE_A" KME_A
check_match "config: key_ttl set" "$(cat "$D/alice.conf")" "key_ttl = 3;"

# req NODE WHO METHOD PATH [BODY] (as in kme_nodes.sh): CODE, RESP.
req() {
	local port=$KA who=$2 method=$3 path=$4 data=${5-}
	[ "$1" = b ] && port=$KB
	local args=(-sS --max-time 20 --cacert "$P/ca.pem" -o "$D/resp" -w '%{http_code}'
		--cert "$P/$who.pem" --key "$P/$who.key")
	[ "$method" = POST ] && args+=(-X POST -H 'Content-Type: application/json' --data-binary "$data")
	rm -f "$D/resp"
	CODE=$(curl "${args[@]}" "https://127.0.0.1:$port/api/v1/keys$path" 2>"$D/curl.err")
	RESP=$(cat "$D/resp" 2>/dev/null)
}
jf() { field "$1" "$2"; }

start bob; start alice
check "node A: key manager listening" wait_listen "$KA"
check "node B: key manager listening" wait_listen "$KB"
check "link: 4 blocks stored within 90 s" wait_for bob stored_blocks 4 90

# --- expiry: a key at each end that nobody fetches
req a SAE_A GET "/SAE_B/enc_keys?number=1&size=256"
check_eq "enc_keys at A: HTTP 200" "$CODE" 200
KAB=$(printf '%s' "$RESP" | jq -r '.keys[0].key_ID')
req b SAE_B GET "/SAE_A/enc_keys?number=1&size=512"
check_eq "enc_keys at B: HTTP 200" "$CODE" 200
KBA=$(printf '%s' "$RESP" | jq -r '.keys[0].key_ID')
# A fetched within the TTL is served (the control case).
req a SAE_A GET "/SAE_B/enc_keys?number=1&size=256"
KOK=$(printf '%s' "$RESP" | jq -r '.keys[0].key_ID')
req b SAE_B GET "/SAE_A/dec_keys?key_ID=$KOK"
check_eq "a key fetched within key_ttl: HTTP 200" "$CODE" 200
check "B: kme_expired >= 1 within 10 s" wait_json bob '.kme_expired >= 1 and .kme_ready == 0' 10
check "A: kme_expired >= 1 within 10 s" wait_json alice '.kme_expired >= 1 and .kme_ready == 0' 10
req b SAE_B GET "/SAE_A/dec_keys?key_ID=$KAB"
error_is "dec_keys at B of an expired key" 400 "expired: not fetched within kme.key_ttl"
jcheck "the error names the key_ID" ".details[0].key_ID == \"$KAB\""
req a SAE_A GET "/SAE_B/dec_keys?key_ID=$KBA"
error_is "dec_keys at A of an expired key" 400 "expired"
check_eq "B: 256 bits lost to expiry" "$(jf bob kme_lost_bits)" 256
check_eq "A: 512 bits lost to expiry" "$(jf alice kme_lost_bits)" 512
check_match "qkd status: the lifecycle line" "$("$QKD" status --node "$D/bob.sock")" \
	"key lifecycle: 1 expired, 0 withdrawn, 0 abandoned; 256 bits lost; 0 tombstones pruned"
check_match "B logs the expiry" "$(cat "$D/bob.log")" "1 ready key\(s\) expired unfetched after 3 s"

# --- withdrawal: B frozen, enc_keys at A times out
W0=$(jf bob kme_withdrawn); L0=$(jf alice kme_lost_bits)
kill -STOP "$PID_bob"
req a SAE_A GET "/SAE_B/enc_keys?number=2&size=256"
error_is "enc_keys with the peer frozen: 503" 503 "did not confirm the keys in time|went down"
kill -CONT "$PID_bob"
check "A: the 2 keys' bits counted lost" wait_json alice ".kme_lost_bits == $((L0 + 512))" 10
check "the withdrawal reaches B (withdrawn +2) within 60 s" \
	wait_json bob ".kme_withdrawn >= $((W0 + 2)) and .kme_ready == 0" 60
check "A drops its abandoned records once B answered" wait_json alice '.kme_outbox == 0' 30

# --- crash: A killed while enc_keys waits; restarted, it withdraws the orphan
R=$(jf bob rounds_ok)
check "link up: a round after the withdrawal" wait_for bob rounds_ok $((R + 1)) 60
W1=$(jf bob kme_withdrawn); D1=$(jf bob kme_delivered); LB=$(jf bob kme_lost_bits)
kill -STOP "$PID_bob"
curl -sS --max-time 20 --cacert "$P/ca.pem" --cert "$P/SAE_A.pem" --key "$P/SAE_A.key" \
	-o "$D/crash.resp" "https://127.0.0.1:$KA/api/v1/keys/SAE_B/enc_keys?number=1&size=1024" \
	2>/dev/null &
CURL=$!
sleep 0.5
kill -9 "$PID_alice"; wait "$PID_alice" 2>/dev/null
wait "$CURL" 2>/dev/null
check "the killed node's SAE got no key" bash -c "! grep -q '\"key\"' '$D/crash.resp' 2>/dev/null"
kill -CONT "$PID_bob"
start alice
check "A restarted: key manager listening" wait_listen "$KA"
check_match "A withdraws the orphan at restart" "$(cat "$D/alice.log")" \
	"1 key\(s\) issued before a restart were never confirmed to their SAE: withdrawn at the peer"
check "B: the orphan withdrawn, never ready (within 60 s)" \
	wait_json bob ".kme_withdrawn >= $((W1 + 1)) and .kme_ready == 0" 60
check_eq "B: nothing delivered meanwhile" "$(jf bob kme_delivered)" "$D1"
check "B: the orphan's 1024 bits counted lost" \
	wait_json bob ".kme_lost_bits == $((LB + 1024))" 10
check "A: outbox empty after the withdrawal" wait_json alice '.kme_outbox == 0' 30

# --- the stores: consistent, and the same bits consumed at both ends
stop alice; check_eq "SIGTERM: A exits 0" "$STOP_RC" 0
stop bob; check_eq "SIGTERM: B exits 0" "$STOP_RC" 0
check "qkd keys check: A's store" "$QKD" keys --store "$D/alice.db" check
check "qkd keys check: B's store" "$QKD" keys --store "$D/bob.db" check
same_blocks() {
	local a b
	a=$("$QKD" keys --store "$D/alice.db" --json | jq -c '[.blocks[] | select(.state != "pending") | {id, state, consumed}]')
	b=$("$QKD" keys --store "$D/bob.db" --json | jq -c '[.blocks[] | select(.state != "pending") | {id, state, consumed}]')
	[ "$a" = "$b" ] || { echo "A: $a" >&2; echo "B: $b" >&2; return 1; }
}
check "stores: the same bits consumed at both ends" same_blocks
KB_J=$("$QKD" keys --store "$D/bob.db" --json | jq -c .kme)
check "qkd keys at B: expired 1, nothing ready ($KB_J)" \
	jq -en --argjson b "$KB_J" '$b.expired == 1 and $b.ready == 0 and $b.lost_bits > 0'
finish
