#!/usr/bin/env bash
# tests/integration/kme_http.sh - the key manager's ETSI GS QKD 014 interface
# over real HTTPS: tests/tools/kme_fake (lib/kme with an in-memory key pool)
# on a loopback port, curl as the SAEs, a test PKI from
# examples/make-test-pki.sh. Status, enc_keys and dec_keys by GET and POST,
# every error case, TLS settings and client certificates, keep-alive, many
# concurrent clients that never see a key twice, SIGTERM.
# Usage (from the top of the tree): QKD=build/qkd tests/integration/kme_http.sh
#   (KME_FAKE=..., KME_BENCH=... override the helpers' paths)
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/../cli/lib.sh"
# shellcheck source=tests/integration/lib_kme.sh
. "$(dirname "$0")/lib_kme.sh"

TOP=$(cd "$(dirname "$0")/../.." && pwd)
QKD=${QKD:-build/qkd}
BDIR=$(cd "$(dirname "$QKD")" && pwd)
FAKE=${KME_FAKE:-$BDIR/tests/tools/kme_fake}
BENCH=${KME_BENCH:-$BDIR/bench/kme_bench}
D=$CLI_TMP
P=$D/pki
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -9 "$p" 2>/dev/null; done
	if [ -n "${KEEP:-}" ]; then echo "kept $CLI_TMP" >&2; else rm -rf "$CLI_TMP"; fi
}
trap cleanup EXIT

check "test PKI written" "$TOP/examples/make-test-pki.sh" "$P" SAE_A SAE_B SAE_C SAE_Z
check_eq "test PKI: private keys are mode 0600" \
	"$(stat -c %a "$P/ca.key" "$P/server.key" "$P/SAE_A.key" | sort -u)" 600
check "second, unrelated PKI written" "$TOP/examples/make-test-pki.sh" "$D/other" SAE_A

# start NAME ARGS...: kme_fake in the background; waits (at most 10 s) for
# its "listening ADDR PORT" line, sets PORT_<NAME> and PID_<NAME>.
start() {
	local name=$1 i port=
	shift
	"$FAKE" --pki "$P" "$@" >"$D/$name.out" 2>"$D/$name.log" &
	eval "PID_$name=$!"
	PIDS+=("$!")
	for i in $(seq 1 50); do
		port=$(awk '$1 == "listening" { print $3 }' "$D/$name.out" 2>/dev/null)
		[ -n "$port" ] && break
		sleep 0.2
	done
	eval "PORT_$name=${port:-0}"
}
# stop NAME: SIGTERM, wait at most 10 s; exit status in STOP_RC.
stop() {
	local pid i
	eval "pid=\$PID_$1"
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
	if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; STOP_RC=137; wait "$pid" 2>/dev/null; return; fi
	wait "$pid"
	STOP_RC=$?
}

start main --sae SAE_A --sae SAE_B --sae SAE_C
check_match "kme_fake listens on a loopback port" "$PORT_main" '^[1-9][0-9]*$'
URL=https://127.0.0.1:$PORT_main/api/v1/keys

# req WHO METHOD PATH [BODY] [CURL_ARGS...]: one request as SAE WHO (none:
# no client certificate; other: SAE_A of the other CA). Sets CODE (000 when
# no HTTP response came), CURL_RC and RESP.
req() {
	local who=$1 method=$2 path=$3 data=${4-}
	local args=(-sS --max-time 10 --cacert "$P/ca.pem" -o "$D/resp" -w '%{http_code}')
	shift 3; [ $# -gt 0 ] && shift
	case $who in
	none) ;;
	other) args+=(--cert "$D/other/SAE_A.pem" --key "$D/other/SAE_A.key") ;;
	*) args+=(--cert "$P/$who.pem" --key "$P/$who.key") ;;
	esac
	[ "$method" = GET ] || args+=(-X "$method")
	[ "$method" = POST ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
	rm -f "$D/resp"
	CODE=$(curl "${args[@]}" "$@" "$URL$path" 2>"$D/curl.err")
	CURL_RC=$?
	RESP=$(cat "$D/resp" 2>/dev/null)
}

# --- status (clause 5.2, 6.1)
req SAE_A GET /SAE_B/status
check_eq "status: HTTP 200" "$CODE" 200
check_eq "status: the fields of clause 6.1, in order" \
	"$(printf '%s' "$RESP" | jq -r 'keys_unsorted | join(",")')" \
	"source_KME_ID,target_KME_ID,master_SAE_ID,slave_SAE_ID,key_size,stored_key_count,max_key_count,max_key_per_request,max_key_size,min_key_size,max_SAE_ID_count"
jcheck "status: values and types" '.source_KME_ID == "KME_A" and .target_KME_ID == "KME_B" and
	.master_SAE_ID == "SAE_A" and .slave_SAE_ID == "SAE_B" and .key_size == 256 and
	.stored_key_count == 131072 and .max_key_count == 131072 and .max_key_per_request == 128 and
	.max_key_size == 8192 and .min_key_size == 64 and .max_SAE_ID_count == 0'

# --- enc_keys (clause 5.3, 6.2, 6.3)
req SAE_A GET /SAE_B/enc_keys
check_eq "enc_keys GET, defaults: HTTP 200" "$CODE" 200
jcheck "enc_keys GET, defaults: one key, only key_ID and key" \
	'(keys == ["keys"]) and (.keys | length) == 1 and (.keys[0] | keys_unsorted) == ["key_ID", "key"]'
check "enc_keys GET, defaults: key_size (256) bits, lowercase UUID" keybytes 32
K1=$(printf '%s' "$RESP" | jq -c '.keys[0]')

req SAE_A GET "/SAE_B/enc_keys?number=3&size=512"
check_eq "enc_keys GET number=3 size=512: HTTP 200" "$CODE" 200
jcheck "enc_keys GET number=3 size=512: three keys" '(.keys | length) == 3'
check "enc_keys GET number=3 size=512: 64-byte keys" keybytes 64
K3=$(printf '%s' "$RESP" | jq -c '.keys')

req SAE_A POST /SAE_B/enc_keys '{"number": 2, "size": 128}'
check_eq "enc_keys POST: HTTP 200" "$CODE" 200
check "enc_keys POST: two 16-byte keys" keybytes 16
jcheck "enc_keys POST: two keys" '(.keys | length) == 2'
K2=$(printf '%s' "$RESP" | jq -c '.keys')

req SAE_A POST /SAE_B/enc_keys '{}'
jcheck "enc_keys POST {}: defaults (one key)" '(.keys | length) == 1'
check "enc_keys POST {}: of key_size bits" keybytes 32

req SAE_A POST /SAE_B/enc_keys '{"number": 1, "additional_slave_SAE_IDs": [], "extension_mandatory": [], "extension_optional": [{"abc_max_age": 30000}]}'
check_eq "enc_keys POST, empty multicast list, optional extension ignored: HTTP 200" "$CODE" 200

# --- dec_keys (clause 5.4, 6.4): the slave gets the same bytes, once
ID1=$(printf '%s' "$K1" | jq -r .key_ID)
req SAE_B GET "/SAE_A/dec_keys?key_ID=$ID1"
check_eq "dec_keys GET by the slave: HTTP 200" "$CODE" 200
check_eq "dec_keys GET: the same key_ID and bytes" "$(printf '%s' "$RESP" | jq -c '.keys[0]')" "$K1"

IDS3=$(printf '%s' "$K3" | jq -c '{key_IDs: [.[] | {key_ID}]}')
req SAE_B POST /SAE_A/dec_keys "$IDS3"
check_eq "dec_keys POST by the slave: HTTP 200" "$CODE" 200
check_eq "dec_keys POST: the same three keys, in order" "$(printf '%s' "$RESP" | jq -c .keys)" "$K3"

req SAE_B GET "/SAE_A/dec_keys?key_ID=$ID1"
error_is "dec_keys of a key_ID already fetched" 400 'unknown or already delivered'
jcheck "already fetched: details name the key_ID" ".details[0].key_ID == \"$ID1\""
req SAE_B POST /SAE_A/dec_keys "$IDS3"
error_is "dec_keys POST of key_IDs already fetched" 400 'unknown or already delivered'

req SAE_B GET "/SAE_A/dec_keys?key_ID=$(cat /proc/sys/kernel/random/uuid)"
error_is "dec_keys of an unknown key_ID" 400 'unknown or already delivered'
req SAE_B GET "/SAE_A/dec_keys?key_ID=not-a-uuid"
error_is "dec_keys of a malformed key_ID" 400 'malformed key_ID'
req SAE_B GET "/SAE_A/dec_keys?key_ID=%7B$ID1%7D"
error_is "dec_keys of a key_ID in braces" 400 'malformed key_ID'
req SAE_B POST /SAE_A/dec_keys '{"key_IDs": []}'
error_is "dec_keys POST with no key_ID" 400 'non-empty array'
req SAE_B POST /SAE_A/dec_keys '{"key_IDs": [{"key_ID": 7}]}'
error_is "dec_keys POST with a key_ID that is not a string" 400 'malformed key_ID'

# Another SAE's key: 401, and the key stays for its slave.
ID2=$(printf '%s' "$K2" | jq -r '.[0].key_ID')
req SAE_C GET "/SAE_A/dec_keys?key_ID=$ID2"
error_is "SAE_C asks for a key issued to SAE_B" 401 'another pair'
req SAE_A GET "/SAE_B/dec_keys?key_ID=$ID2"
error_is "the master asks for its own key as a slave" 401 'another pair'
req SAE_B POST /SAE_A/dec_keys "$(printf '%s' "$K2" | jq -c '{key_IDs: [.[] | {key_ID}]}')"
check_eq "after the refusals the slave still gets both keys" "$(printf '%s' "$RESP" | jq -c .keys)" "$K2"

# --- request errors: 400 with an Error object saying what was wrong
req SAE_A GET "/SAE_B/enc_keys?size=100"
error_is "size not a multiple of 8" 400 'multiple of 8'
jcheck "size not a multiple of 8: details" '.details[0].size == 100'
req SAE_A GET "/SAE_B/enc_keys?number=129"
error_is "number above max_key_per_request" 400 'max_key_per_request'
jcheck "number too large: details give the limit" '.details[0].max_key_per_request == 128'
req SAE_A GET "/SAE_B/enc_keys?number=0"
error_is "number 0" 400 'between 1 and max_key_per_request'
req SAE_A GET "/SAE_B/enc_keys?size=56"
error_is "size below min_key_size" 400 'min_key_size'
req SAE_A GET "/SAE_B/enc_keys?size=8200"
error_is "size above max_key_size" 400 'max_key_size'
req SAE_A GET "/SAE_B/enc_keys?number=-1"
error_is "number negative" 400 'decimal integer'
req SAE_A GET "/SAE_B/enc_keys?number=1&number=2"
error_is "number given twice" 400 'twice'
req SAE_A GET "/SAE_B/enc_keys?count=2"
error_is "unknown query parameter" 400 'unknown query parameter'
req SAE_A POST /SAE_B/enc_keys 'number=2'
error_is "body not JSON" 400 'not valid JSON'
req SAE_A POST /SAE_B/enc_keys '[1]'
error_is "body not an object" 400 'JSON object'
req SAE_A POST /SAE_B/enc_keys '{"number": "2"}'
error_is "number as a string" 400 'must be an integer'
req SAE_A POST /SAE_B/enc_keys '{"number": 2.0}'
error_is "number as a real" 400 'must be an integer'
req SAE_A POST /SAE_B/enc_keys '{"number": 1, "numbr": 2}'
error_is "unknown field in the key request" 400 'unknown field'
req SAE_A POST /SAE_B/enc_keys '{"number": 1, "number": 2}'
error_is "duplicate field" 400 'not valid JSON'
req SAE_A POST /SAE_B/enc_keys '{"extension_mandatory": [{"abc_route_type": "direct"}, {"abc_transfer_method": "qkd"}]}'
error_is "unknown extension_mandatory" 400 'extension_mandatory'
jcheck "extension_mandatory: details name both" \
	'.details[0].extension_mandatory_unsupported == ["abc_route_type", "abc_transfer_method"]'
req SAE_A POST /SAE_B/enc_keys '{"additional_slave_SAE_IDs": ["SAE_C"]}'
error_is "key multicast (additional_slave_SAE_IDs)" 400 'multicast'
req SAE_A POST "/SAE_B/enc_keys" '{"number": 1}' --url-query number=2
error_is "POST with query parameters" 400 'JSON body'
req SAE_A GET /SAE_A/enc_keys
error_is "an SAE asking keys for itself" 400 "caller's own"
req SAE_A GET /SAE_Q/enc_keys
error_is "an unknown slave SAE" 400 'unknown SAE'
req SAE_A GET /nope
error_is "unknown resource" 404 'no such resource'
req SAE_A GET /SAE_B/keys
error_is "unknown resource under /api/v1/keys" 404 'no such resource'
req SAE_A DELETE /SAE_B/enc_keys
error_is "method DELETE" 405 'not allowed'
req SAE_A POST /SAE_B/status '{}'
error_is "POST on status" 405 'not allowed'
head -c 70000 /dev/zero | tr '\0' ' ' >"$D/big.json"
req SAE_A POST /SAE_B/enc_keys "@$D/big.json"
error_is "body above 64 KiB" 413 'too large'

# --- 503: more keys than the pool holds; nothing is consumed
start small --pool-bytes 1024 --sae SAE_A --sae SAE_B
URL_MAIN=$URL
URL=https://127.0.0.1:$PORT_small/api/v1/keys
req SAE_A GET "/SAE_B/enc_keys?number=33"
error_is "more keys than available" 503 'not enough key'
req SAE_A GET /SAE_B/status
jcheck "after the 503 all 32 keys are still there" '.stored_key_count == 32'
req SAE_A GET "/SAE_B/enc_keys?number=32"
check_eq "exactly the 32 available keys can be taken" "$CODE" 200
req SAE_A GET /SAE_B/enc_keys
error_is "an empty pool" 503 'not enough key'
stop small
check_eq "SIGTERM: the small server exits 0" "$STOP_RC" 0
URL=$URL_MAIN

# --- TLS and client certificates
req none GET /SAE_B/status
check "no client certificate: TLS handshake refused (curl fails)" test "$CURL_RC" -ne 0
check_eq "no client certificate: no HTTP response" "$CODE" 000
req other GET /SAE_B/status
check "client certificate of another CA: refused (curl fails)" test "$CURL_RC" -ne 0
check_eq "client certificate of another CA: no HTTP response" "$CODE" 000
req SAE_Z GET /SAE_B/status
error_is "certificate of the CA whose CN is no configured SAE" 401 'not a known SAE'
rm -f "$D/resp"
CODE=$(curl -sS --max-time 10 --cacert "$P/ca.pem" --cert "$P/server.pem" --key "$P/server.key" \
	-o "$D/resp" -w '%{http_code}' "$URL/SAE_B/status" 2>/dev/null)
check_eq "the server's own certificate (no clientAuth purpose) gets no HTTP response" "$CODE" 000
req SAE_A GET /SAE_B/status "" --tlsv1.2 --tls-max 1.2
check_eq "TLS 1.2 accepted" "$CODE" 200
req SAE_A GET /SAE_B/status "" --tlsv1.3
check_eq "TLS 1.3 accepted" "$CODE" 200
S11=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT_main" -tls1_1 \
	-cipher 'DEFAULT@SECLEVEL=0' -CAfile "$P/ca.pem" -cert "$P/SAE_A.pem" -key "$P/SAE_A.key" 2>&1)
check_match "TLS 1.1 refused by the server" "$S11" 'Cipher is \(NONE\)'
req SAE_A GET /SAE_B/status "" -v
check_match "the server certificate verifies for 127.0.0.1" "$(cat "$D/curl.err")" 'SSL certificate verify ok'

# --- keep-alive: the second request reuses the connection
KA=$(curl -sS --max-time 10 --cacert "$P/ca.pem" --cert "$P/SAE_A.pem" --key "$P/SAE_A.key" \
	-o /dev/null -o /dev/null -w '%{num_connects}\n' "$URL/SAE_B/status" "$URL/SAE_B/status" 2>&1 | tr '\n' ' ')
check_eq "keep-alive: two requests, one TCP connection" "$KA" "1 0 "

# --- concurrency: 8 clients, 400 keys each (keep-alive), then the slave
# fetches every one; no key_ID and no key bytes ever twice.
worker() {
	local w=$1 i
	for i in $(seq 1 40); do
		printf 'url = "%s/SAE_B/enc_keys?number=10&size=256"\n' "$URL"
	done >"$D/enc$w.cfg"
	curl -sS --max-time 120 --cacert "$P/ca.pem" --cert "$P/SAE_A.pem" --key "$P/SAE_A.key" \
		-K "$D/enc$w.cfg" 2>/dev/null | jq -r '.keys[]? | .key_ID + " " + .key' >"$D/enc$w.txt"
	awk -v u="$URL" '{ printf "url = \"%s/SAE_A/dec_keys?key_ID=%s\"\n", u, $1 }' \
		"$D/enc$w.txt" >"$D/dec$w.cfg"
	curl -sS --max-time 120 --cacert "$P/ca.pem" --cert "$P/SAE_B.pem" --key "$P/SAE_B.key" \
		-K "$D/dec$w.cfg" 2>/dev/null | jq -r '.keys[]? | .key_ID + " " + .key' >"$D/dec$w.txt"
}
WPIDS=()
for w in 1 2 3 4 5 6 7 8; do worker "$w" & WPIDS+=("$!"); done
for p in "${WPIDS[@]}"; do wait "$p"; done
cat "$D"/enc?.txt | sort >"$D/enc.all"
cat "$D"/dec?.txt | sort >"$D/dec.all"
check_eq "concurrent: 3200 keys handed out" "$(wc -l <"$D/enc.all")" 3200
check_eq "concurrent: no key_ID twice" "$(cut -d' ' -f1 "$D/enc.all" | sort -u | wc -l)" 3200
check_eq "concurrent: no key bytes twice" "$(cut -d' ' -f2 "$D/enc.all" | sort -u | wc -l)" 3200
check "concurrent: the slave got exactly the same keys" cmp -s "$D/enc.all" "$D/dec.all"
req SAE_A GET /SAE_B/status
check_eq "concurrent: the server still answers" "$CODE" 200

# --- the benchmark client, briefly (bench/kme_bench.c)
if [ -x "$BENCH" ]; then
	check "kme_bench runs against kme_fake" timeout 60 "$BENCH" --port "$PORT_main" --pki "$P" --seconds 1
	check_match "kme_bench prints round trips per second" "$OUT" '[0-9]+ round trips/s'
fi

# --- a bounded number of connections
# hold PORT: an idle TLS connection as SAE_A, for at most 20 s.
HOLDS=()
hold() {
	sleep 20 2>/dev/null | timeout 25 openssl s_client -quiet -connect "127.0.0.1:$1" \
		-CAfile "$P/ca.pem" -cert "$P/SAE_A.pem" -key "$P/SAE_A.key" >/dev/null 2>&1 &
	HOLDS+=("$!")
	PIDS+=("$!")
}
start tiny --max-connections 2
hold "$PORT_tiny"
hold "$PORT_tiny"
sleep 1
URL=https://127.0.0.1:$PORT_tiny/api/v1/keys
req SAE_A GET /SAE_B/status
check_eq "--max-connections 2: a third connection gets no answer" "$CODE" 000
for p in "${HOLDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
for i in $(seq 1 25); do req SAE_A GET /SAE_B/status; [ "$CODE" = 200 ] && break; sleep 0.2; done
check_eq "once they close, connections are served again" "$CODE" 200
stop tiny
check_eq "SIGTERM: exits 0" "$STOP_RC" 0
URL=$URL_MAIN

# --- SIGTERM: clean stop, even with a client idling on a keep-alive connection
hold "$PORT_main"
sleep 1
stop main
check_eq "SIGTERM with an idle client connected: kme_fake exits 0" "$STOP_RC" 0
finish
