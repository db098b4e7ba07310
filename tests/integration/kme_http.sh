#!/usr/bin/env bash
# tests/integration/kme_http.sh - the key manager's ETSI GS QKD 014 interface
# over real HTTPS: tests/tools/kme_fake (lib/kme with an in-memory key pool)
# on a loopback port, curl as the SAEs, a test PKI from
# examples/make-test-pki.sh. Status, enc_keys and dec_keys by GET and POST,
# every error case, HTTP framing and request-targets that must be refused
# (raw requests over openssl s_client, one response each), TLS settings and
# client certificates, keep-alive, connection limits and timeouts, a
# stranger holding connections from 127.0.0.2 (tests/tools/hostile), many
# concurrent clients that never see a key twice, SIGTERM.
# Usage (from the top of the tree): QKD=build/qkd tests/integration/kme_http.sh
#   (KME_FAKE=..., KME_BENCH=..., KME_HOSTILE=... override the helpers' paths)
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
HOSTILE=${KME_HOSTILE:-$BDIR/tests/tools/hostile}
D=$CLI_TMP
P=$D/pki
PIDS=()

check "test PKI written" "$TOP/examples/make-test-pki.sh" "$P" SAE_A SAE_B SAE_C SAE_Z
check_eq "test PKI: private keys are mode 0600" \
	"$(stat -c %a "$P/ca.key" "$P/server.key" "$P/SAE_A.key" | sort -u)" 600
check "second, unrelated PKI written" "$TOP/examples/make-test-pki.sh" "$D/other" SAE_A

# leaf NAME CN EXTENSIONS: one more client certificate of the test CA, with
# exactly these extensions (openssl x509 -extfile syntax).
leaf() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$P/$1.key" 2>/dev/null &&
	openssl req -new -key "$P/$1.key" -subj "/O=qkdnet test/CN=$2" -out "$P/$1.csr" 2>/dev/null &&
	printf '%s\n' "$3" >"$P/$1.ext" &&
	openssl x509 -req -in "$P/$1.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -days 30 -sha256 \
		-set_serial "0x$(openssl rand -hex 16)" -extfile "$P/$1.ext" -out "$P/$1.pem" 2>/dev/null
}
# SAE_A's CN, but no extendedKeyUsage at all (RFC 5280 would read "any
# purpose"), or only anyExtendedKeyUsage: neither names clientAuth.
check "client certificate without extendedKeyUsage written" \
	leaf noeku SAE_A "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature"
check "client certificate with only anyExtendedKeyUsage written" \
	leaf anyeku SAE_A "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=anyExtendedKeyUsage"

# start NAME ARGS...: kme_fake in the background (lib_kme.sh's kme_serve:
# PORT_<NAME>, PID_<NAME>); stop NAME: SIGTERM, exit status in STOP_RC.
start() {
	local name=$1
	shift
	kme_serve "$name" "$FAKE" --pki "$P" "$@"
}
stop() { kme_stop "$1"; }

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

# --- the request-target as sent, before the server decodes it
req SAE_A GET "/SAE_B/enc_keys?number=1%00"
error_is "a NUL byte (%00) in a query value" 400 'NUL byte'
req SAE_A GET "/SAE_B/enc_keys?num%00ber=1"
error_is "a NUL byte (%00) in a query name" 400 'NUL byte'
req SAE_A GET "/SAE_B%2Fstatus"
error_is "an encoded slash (%2F) in the path" 400 "encoded '/'"
req SAE_A GET "/SAE_B%5cstatus"
error_is "an encoded backslash (%5C) in the path" 400 "encoded '/'"
req SAE_A GET "/SAE_B/status%zz"
error_is "a malformed percent-escape" 400 'malformed percent-encoding'
req SAE_A GET "/SAE%5FB/status"
check_eq "an escaped unreserved character is still fine" "$CODE" 200
req SAE_A POST /SAE_B/enc_keys '{"number": 1, "n\u0000": 1}'
error_is "a NUL (\\u0000) in a body member's name" 400 'not valid JSON'
req SAE_B POST /SAE_A/dec_keys '{"key_IDs": [{"key_ID": "550e8400-e29b-41d4-a716-44665544000\u0000"}]}'
error_is "a NUL (\\u0000) in a body value" 400 'not valid JSON'

# --- HTTP framing, as raw requests: one response each, as an Error object.
# raw WHO REQUEST: send REQUEST (a printf format) byte for byte over TLS as
# SAE WHO to kme_fake main, read until the server closes. Sets NSTATUS (the
# status lines that came), CODE (the first one's status) and RESP (the first
# response's body, as long as its Content-Length says).
raw() {
	# shellcheck disable=SC2059  # the request is the format
	printf "$2" | timeout 10 openssl s_client -quiet -ign_eof -connect "127.0.0.1:$PORT_main" \
		-CAfile "$P/ca.pem" -cert "$P/$1.pem" -key "$P/$1.key" >"$D/raw" 2>/dev/null
	NSTATUS=$(grep -a -o 'HTTP/1\.[01] [0-9][0-9][0-9]' "$D/raw" | wc -l)
	CODE=$(grep -a -o -m1 'HTTP/1\.[01] [0-9][0-9][0-9]' "$D/raw" | head -n1 | cut -d' ' -f2)
	RESP=$(awk 'BEGIN { RS = "\r\n\r\n" }
		NR == 1 && match($0, /[Cc]ontent-[Ll]ength: [0-9]+/) { n = substr($0, RSTART + 16) + 0 }
		NR == 2 { printf "%s", substr($0, 1, n); exit }' "$D/raw")
}
E='POST /api/v1/keys/SAE_B/enc_keys HTTP/1.1\r\nHost: kme\r\nConnection: close\r\n'
raw SAE_A "${E}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
check_eq "raw request: served" "$CODE $NSTATUS" "200 1"
raw SAE_A "${E}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}x"
error_is "two different Content-Length headers" 400 'Content-Length given more than once'
check_eq "two different Content-Length headers: one response" "$NSTATUS" 1
raw SAE_A "${E}Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}"
error_is "Content-Length twice with the same value" 400 'Content-Length given more than once'
raw SAE_A "${E}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
error_is "Content-Length with Transfer-Encoding" 400 'Transfer-Encoding together with Content-Length'
check_eq "Content-Length with Transfer-Encoding: one response" "$NSTATUS" 1
raw SAE_A "${E}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
error_is "Transfer-Encoding twice" 400 'or twice'
raw SAE_A "${E}Transfer-Encoding: gzip\r\n\r\n{}"
error_is "a transfer coding other than chunked" 501 'no transfer coding but chunked'
raw SAE_A "${E}Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
check_eq "a chunked body alone: served" "$CODE $NSTATUS" "200 1"
raw SAE_A 'GET /api/v1/keys/SAE_B/status HTTP/1.1\r\nConnection: close\r\n\r\n'
error_is "HTTP/1.1 without Host" 400 'exactly one Host'
check_eq "HTTP/1.1 without Host: one response (libmicrohttpd's own refusal came twice)" "$NSTATUS" 1
raw SAE_A 'GET /api/v1/keys/SAE_B/status HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n'
error_is "two Host headers" 400 'exactly one Host'
raw SAE_A 'GET /api/v1/keys/SAE_B/ status HTTP/1.1\r\nHost: kme\r\nConnection: close\r\n\r\n'
error_is "a space in the request-target" 400 'not allowed in the request-target'
raw SAE_A 'GET /api/v1/keys/SAE_B/enc_keys?number=1%%00 HTTP/1.1\r\nHost: kme\r\nConnection: close\r\n\r\n'
error_is "raw: number=1%00" 400 'NUL byte'
check_eq "raw: number=1%00: one response" "$NSTATUS" 1
raw SAE_A "${E}Content-Length: 70000\r\n\r\n{}"
error_is "raw: Content-Length above 64 KiB" 413 'too large'
check_eq "raw: Content-Length above 64 KiB: one response" "$NSTATUS" 1
raw SAE_Z "${E}Content-Length: 2\r\n\r\n{}"
error_is "raw: a body from an unknown SAE" 401 'not a known SAE'
check_eq "raw: a body from an unknown SAE: one response" "$NSTATUS" 1
raw SAE_A 'GET /api/v1/keys/SAE_B/status HTTP/1.1\r\nHost: kme\r\n\r\nGET /api/v1/keys/SAE_B/status HTTP/1.1\r\nHost: kme\r\nConnection: close\r\n\r\n'
check_eq "two pipelined requests: two responses" "$CODE $NSTATUS" "200 2"

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
req noeku GET /SAE_B/status
check "no extendedKeyUsage (SAE_A's CN): refused (curl fails)" test "$CURL_RC" -ne 0
check_eq "no extendedKeyUsage: no HTTP response" "$CODE" 000
req noeku GET /SAE_B/status "" --tlsv1.2 --tls-max 1.2
check_eq "no extendedKeyUsage, TLS 1.2: no HTTP response" "$CODE" 000
req anyeku GET /SAE_B/status
check_eq "only anyExtendedKeyUsage: no HTTP response" "$CODE" 000
req SAE_A GET /SAE_B/status "" --tlsv1.2 --tls-max 1.2
check_eq "TLS 1.2 accepted" "$CODE" 200
# tls_status S_CLIENT_ARGS...: the status line of GET status as SAE_A, or
# nothing when the handshake fails (the server's certificate is ECDSA).
tls_status() {
	printf 'GET /api/v1/keys/SAE_B/status HTTP/1.1\r\nHost: kme\r\nConnection: close\r\n\r\n' |
		timeout 10 openssl s_client -quiet -connect "127.0.0.1:$PORT_main" -CAfile "$P/ca.pem" \
			-cert "$P/SAE_A.pem" -key "$P/SAE_A.key" "$@" 2>/dev/null | head -n1 | tr -d '\r'
}
check_eq "TLS 1.2 ECDHE-ECDSA-AES128-SHA (CBC, SHA-1 MAC) refused" \
	"$(tls_status -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA)" ""
check_eq "TLS 1.2 ECDHE-ECDSA-AES256-SHA384 (CBC, SHA-384 MAC) refused" \
	"$(tls_status -tls1_2 -cipher ECDHE-ECDSA-AES256-SHA384)" ""
check_eq "TLS 1.2 ECDHE-ECDSA-AES128-CCM refused (GCM and ChaCha20 only)" \
	"$(tls_status -tls1_2 -cipher ECDHE-ECDSA-AES128-CCM)" ""
check_eq "TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256 served" \
	"$(tls_status -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256)" "HTTP/1.1 200 OK"
check_eq "TLS 1.2 ECDHE-ECDSA-CHACHA20-POLY1305 served" \
	"$(tls_status -tls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305)" "HTTP/1.1 200 OK"
check_eq "TLS 1.3 TLS_AES_256_GCM_SHA384 served" \
	"$(tls_status -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384)" "HTTP/1.1 200 OK"
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
# hold PORT: an idle TLS connection as SAE_A, for at most 20 s (the server
# closes it after its handshake timeout, 5 s by default: it asks nothing).
# -ign_eof: no input, and no close for it either.
HOLDS=()
hold() {
	timeout 20 openssl s_client -quiet -ign_eof -connect "127.0.0.1:$1" \
		-CAfile "$P/ca.pem" -cert "$P/SAE_A.pem" -key "$P/SAE_A.key" </dev/null >/dev/null 2>&1 &
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

# One address holds at most --per-address-connections; another is served.
start peraddr --per-address-connections 2
HOLDS=()
hold "$PORT_peraddr"
hold "$PORT_peraddr"
sleep 1
URL=https://127.0.0.1:$PORT_peraddr/api/v1/keys
req SAE_A GET /SAE_B/status
check_eq "--per-address-connections 2: a third from 127.0.0.1 gets no answer" "$CODE" 000
req SAE_A GET /SAE_B/status "" --interface 127.0.0.2
check_eq "--per-address-connections 2: one from 127.0.0.2 is served" "$CODE" 200
for p in "${HOLDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
stop peraddr

# --- timeouts: silence is allowed --handshake-timeout until a known SAE has
# asked something on the connection, --idle-timeout after that.
start slow --handshake-timeout 2 --idle-timeout 30
STATUS_REQ='GET /api/v1/keys/SAE_B/status HTTP/1.1\r\nHost: kme\r\n'
# slow_get DELAY1 DELAY2: a TLS connection as SAE_A that waits DELAY1 s,
# asks status (keep-alive), waits DELAY2 s and asks again (close); prints
# how many 200 came back.
slow_get() {
	# shellcheck disable=SC2059
	{ sleep "$1"; printf "$STATUS_REQ\r\n"; sleep "$2"; printf "${STATUS_REQ}Connection: close\r\n\r\n"; } |
		timeout 20 openssl s_client -quiet -ign_eof -connect "127.0.0.1:$PORT_slow" \
			-CAfile "$P/ca.pem" -cert "$P/SAE_A.pem" -key "$P/SAE_A.key" 2>/dev/null |
		grep -a -o 'HTTP/1\.1 200' | wc -l
}
check_eq "a known SAE's connection idles 4 s between requests (--handshake-timeout 2)" \
	"$(slow_get 0 4)" 2
check_eq "a TLS connection silent for 4 s before its first request is closed" \
	"$(slow_get 4 0)" 0
# trickle PORT: the start of a TLS ClientHello, a byte a second for 8 s
# (bash's /dev/tcp); prints the seconds until the server closed, or 8.
trickle() {
	local t0=$SECONDS b rc
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	for b in 16 03 01 02 00 01 00 01; do
		printf "\\x$b" >&3 2>/dev/null || break
		read -r -t 1 -N 64 -u 3 _
		rc=$?
		[ "$rc" -gt 128 ] || break	# not a time-out: EOF, after an alert or not
	done
	exec 3>&-
	echo $((SECONDS - t0))
}
check "a TLS handshake trickled a byte a second is cut after --handshake-timeout" \
	test "$(trickle "$PORT_slow")" -le 4
check_match "idle TCP connections are closed after --handshake-timeout and reopened" \
	"$("$HOSTILE" kme-idle --connect "127.0.0.1:$PORT_slow" --source 127.0.0.2 --conns 4 \
		--seconds 5 2>&1)" '^kme-idle: conns 4 seconds 5 opened (8|9|1[0-9]) closed_by_peer ([4-9]|1[0-9]) '
stop slow

# --- a stranger who holds connections and reopens each one as soon as it
# is closed, from 127.0.0.2 (tests/tools/hostile.c), with the server's
# default limits: an SAE at 127.0.0.1 keeps being served, and the log (at
# debug level: a line per request) stays small.
HERR=$("$HOSTILE" kme-idle --connect 192.0.2.1:443 --source 127.0.0.2 --conns 1 --seconds 1 2>&1)
check_eq "hostile: a target off loopback is refused (exit 2)" "$?" 2
check_match "hostile: ... and says so" "$HERR" '^hostile: --connect: '
start flood --verbose
"$HOSTILE" kme-idle --connect "127.0.0.1:$PORT_flood" --source 127.0.0.2 --conns 64 \
	--seconds 15 >"$D/hostile.out" 2>"$D/hostile.err" &
HPID=$!
PIDS+=("$HPID")
sleep 1
SERVED=0
ASKED=0
END=$((SECONDS + 12))
while [ "$SECONDS" -lt "$END" ]; do
	C=$(curl -sS --max-time 5 --cacert "$P/ca.pem" --cert "$P/SAE_A.pem" --key "$P/SAE_A.key" \
		-o /dev/null -w '%{http_code}' "https://127.0.0.1:$PORT_flood/api/v1/keys/SAE_B/status" \
		2>/dev/null)
	ASKED=$((ASKED + 1))
	[ "$C" = 200 ] && SERVED=$((SERVED + 1))
	sleep 0.2
done
wait "$HPID"
check_eq "hostile kme-idle: exits 0" "$?" 0
HOUT=$(cat "$D/hostile.out")
check_match "hostile kme-idle: one line of counts" "$HOUT" \
	'^kme-idle: conns 64 seconds 15 opened [0-9]+ closed_by_peer [0-9]+ failed [0-9]+ open_at_end [0-9]+ open_max [0-9]+$'
check "hostile kme-idle: the server closed its connections, it reopened them" \
	test "$(echo "$HOUT" | awk '{ print $7 }')" -gt 1000
check "flood: at least 10 requests of the SAE ran" test "$ASKED" -ge 10
check "flood: at least 90 % of the SAE's requests were served" test $((SERVED * 10)) -ge $((ASKED * 9))
stop flood
check_eq "flood: kme_fake exits 0 after it" "$STOP_RC" 0
LOGLINES=$(wc -l <"$D/flood.log")
check "flood: the log stays small (under 300 lines)" test "$LOGLINES" -lt 300
check_match "flood: the log counts what it suppressed" "$(cat "$D/flood.log")" \
	'kme: httpd: [0-9]+ more messages suppressed'
echo "# flood: $SERVED of $ASKED requests served, $LOGLINES log lines ($HOUT)" >&2
URL=$URL_MAIN

# --- SIGTERM: clean stop, even with a client idling on a keep-alive connection
hold "$PORT_main"
sleep 1
stop main
check_eq "SIGTERM with an idle client connected: kme_fake exits 0" "$STOP_RC" 0
finish
