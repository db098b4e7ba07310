#!/usr/bin/env bash
# tests/integration/kme_client.sh - `qkd kme`, the ETSI GS QKD 014 client
# (lib/kme/kme_client*.c, src/cmd_kme.c; docs/kme.md, "Client"), over real
# HTTPS on loopback against three key managers:
#   (a) tests/tools/kme_fake, our server: status, enc_keys by GET and POST,
#       dec_keys by GET and POST of several keys, the same bytes at both
#       ends, --json checked with jq, the KME's errors (unknown SAE, a key
#       already fetched, 503), TLS failures (another CA, a name the
#       certificate lacks, a client certificate of another CA), and the
#       command line;
#   (b) tests/tools/etsi014_server.py, an independent server in Python
#       (ssl, http.server) with the same test PKI: the client works with
#       it, and refuses each malformed answer it is told to give (not JSON,
#       garbage after the object, short keys, one key too many, a bad UUID,
#       bad base64, a Status with wrong types or another slave, a body
#       above the limit, no answer within --timeout), and shows its Error
#       object with details and its HTML page;
#   (c) two real `qkd node`s: enc_keys at one, dec_keys at the other.
# Usage (from the top of the tree): QKD=build/qkd tests/integration/kme_client.sh
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
BDIR=$(dirname "$QKD")
FAKE=${KME_FAKE:-$BDIR/tests/tools/kme_fake}
PY=/usr/bin/python3
D=$CLI_TMP
P=$D/pki
PIDS=()

check "test PKI written" "$TOP/examples/make-test-pki.sh" "$P" SAE_A SAE_B SAE_C
check "second, unrelated PKI written" "$TOP/examples/make-test-pki.sh" "$D/other" SAE_A

A=(--cert "$P/SAE_A.pem" --cert-key "$P/SAE_A.key" --ca "$P/ca.pem")
B=(--cert "$P/SAE_B.pem" --cert-key "$P/SAE_B.key" --ca "$P/ca.pem")
kme() { "$QKD" kme "$@"; }
pairs() { printf '%s' "$RESP" | jq -r '.keys[] | (.key_ID | ascii_downcase) + " " + .key' | sort; }
# key-id arguments for every key of RESP
idargs() { printf '%s' "$RESP" | jq -r '.keys[] | "--key-id\n" + .key_ID'; }
# the table of `qkd kme enc|dec` as "key_ID key" lines, sorted
table_pairs() { printf '%s\n' "$OUT" | awk 'NR > 1 { print $1 " " $3 }' | sort; }
# a failure: exit 1, nothing on stdout, stderr "qkd: kme ACT: ..." matching REGEX
fails() {
	local name=$1 re=$2
	shift 2
	check_exit "$name: exit 1" 1 "$@"
	check_eq "$name: nothing on stdout" "$OUT" ""
	check_match "$name: message" "$ERR" "$re"
}

# ---------------------------------------------------------------- (a) kme_fake
kme_serve fake "$FAKE" --pki "$P" --sae SAE_A --sae SAE_B --sae SAE_C
check_match "kme_fake listens" "$PORT_fake" '^[1-9][0-9]*$'
U=https://127.0.0.1:$PORT_fake

check "status" kme status --url "$U" --sae SAE_B "${A[@]}"
check_match "status: table, source_KME_ID" "$OUT" '^source_KME_ID +KME_A$'
check_match "status: table, stored_key_count" "$OUT" '^stored_key_count +131072$'
check_eq "status: table, the 11 fields" "$(printf '%s\n' "$OUT" | wc -l)" 11
check "status --json, URL with a trailing slash" kme status --url "$U/" --sae SAE_B "${A[@]}" --json
RESP=$OUT
jcheck "status --json: the Status as served" '.source_KME_ID == "KME_A" and
	.target_KME_ID == "KME_B" and .master_SAE_ID == "SAE_A" and .slave_SAE_ID == "SAE_B" and
	.key_size == 256 and .max_key_per_request == 128 and .min_key_size == 64 and
	.max_key_size == 8192 and .max_SAE_ID_count == 0'
check_eq "status --json: one line, one object" "$(printf '%s\n' "$OUT" | wc -l) $(printf '%s' "$OUT" | jq -s length)" "1 1"

check "enc GET, 3 keys of 512 bits" kme enc --url "$U" --sae SAE_B --number 3 --size 512 --json "${A[@]}"
RESP=$OUT
jcheck "enc GET: a Key container of 3 keys" '(keys == ["keys"]) and (.keys | length) == 3'
check "enc GET: 64-byte keys, UUIDs" keybytes 64
ENC3=$(pairs); mapfile -t IDS3 < <(idargs)
check "enc POST, 2 keys of 128 bits" kme enc --url "$U" --sae SAE_B --number 2 --size 128 --post --json "${A[@]}"
RESP=$OUT
check "enc POST: 16-byte keys" keybytes 16
jcheck "enc POST: 2 keys" '(.keys | length) == 2'
ENC2=$(pairs); K1=$(printf '%s' "$RESP" | jq -r '.keys[0].key_ID'); K2=$(printf '%s' "$RESP" | jq -r '.keys[1].key_ID')
check "enc, defaults, as a table" kme enc --url "$U" --sae SAE_B "${A[@]}"
check_match "enc table: header" "$(printf '%s\n' "$OUT" | head -n1)" '^key_ID +bits +key \(base64\)$'
check_match "enc table: one key of 256 bits" "$(printf '%s\n' "$OUT" | sed -n 2p)" \
	'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12} +256 +[A-Za-z0-9+/]{43}=$'
ENC1=$(table_pairs); K0=$(printf '%s\n' "$OUT" | awk 'NR == 2 { print $1 }')

check "dec POST of the 3 keys" kme dec --url "$U" --sae SAE_A "${IDS3[@]}" --json "${B[@]}"
RESP=$OUT
check_eq "dec POST: the very same 3 keys" "$(pairs)" "$ENC3"
check "dec GET of one key" kme dec --url "$U" --sae SAE_A --key-id "$K1" --json "${B[@]}"
RESP=$OUT; R1=$(pairs)
check "dec --post of one key" kme dec --url "$U" --sae SAE_A --key-id "$K2" --post --json "${B[@]}"
RESP=$OUT
check_eq "dec GET + POST: the same 2 keys" "$(printf '%s\n%s\n' "$R1" "$(pairs)" | sort)" "$ENC2"
check "dec as a table, https://localhost" kme dec --url "https://localhost:$PORT_fake" --sae SAE_A --key-id "$K0" --size 256 "${B[@]}"
check_eq "dec table: the same key as enc's table" "$(table_pairs)" "$ENC1"

# --- the KME's errors, shown as "qkd: kme ACT: STATUS REASON: message"
fails "key-id already fetched" '^qkd: kme dec: 400 Bad Request: key_ID unknown or already delivered \(details: \[\{"key_ID":"'"$K1"'"\}\]\)$' \
	kme dec --url "$U" --sae SAE_A --key-id "$K1" "${B[@]}"
fails "unknown SAE" '^qkd: kme enc: 400 Bad Request: unknown SAE' \
	kme enc --url "$U" --sae SAE_Q "${A[@]}"
check "enc for SAE_C" kme enc --url "$U" --sae SAE_C --json "${A[@]}"
RESP=$OUT; KC=$(printf '%s' "$RESP" | jq -r '.keys[0].key_ID')
fails "a key asked for by the wrong SAE" '^qkd: kme dec: 401 Unauthorized: ' \
	kme dec --url "$U" --sae SAE_A --key-id "$KC" "${B[@]}"
fails "size below min_key_size" '^qkd: kme enc: 400 Bad Request: size must be between min_key_size and max_key_size \(details: .*"min_key_size":64' \
	kme enc --url "$U" --sae SAE_B --size 16 "${A[@]}"
fails "more keys than max_key_per_request" '^qkd: kme enc: 400 Bad Request: number must be between' \
	kme enc --url "$U" --sae SAE_B --number 129 --post "${A[@]}"
fails "key multicast" '^qkd: kme enc: 400 Bad Request: key multicast .* \(details: \[\{"max_SAE_ID_count":0\}\]\)$' \
	kme enc --url "$U" --sae SAE_B --additional-sae SAE_C "${A[@]}"
kme_serve small "$FAKE" --pki "$P" --pool-bytes 64
fails "not enough key" '^qkd: kme enc: 503 Service Unavailable: not enough key available' \
	kme enc --url "https://127.0.0.1:$PORT_small" --sae SAE_B --number 3 "${A[@]}"

kme_stop small; check_eq "kme_fake (small pool) exits 0 on SIGTERM" "$STOP_RC" 0

# --- TLS
fails "wrong CA" "^qkd: kme status: $U: TLS: the KME's certificate does not verify .*verification failed" \
	kme status --url "$U" --sae SAE_B --cert "$P/SAE_A.pem" --cert-key "$P/SAE_A.key" --ca "$D/other/ca.pem"
fails "a name the certificate lacks" "does not match target host name 'kme.example'" \
	kme status --url "$U" --sae SAE_B --server-name kme.example "${A[@]}"
check "--server-name localhost, connecting to 127.0.0.1" kme status --url "$U" --sae SAE_B --server-name localhost "${A[@]}"
fails "client certificate of another CA" '^qkd: kme status: .*no answer \(TLS handshake' \
	kme status --url "$U" --sae SAE_B --cert "$D/other/SAE_A.pem" --cert-key "$D/other/SAE_A.key" --ca "$P/ca.pem"
check_exit "client key of another certificate" 2 \
	kme status --url "$U" --sae SAE_B --cert "$P/SAE_A.pem" --cert-key "$P/SAE_B.key" --ca "$P/ca.pem"
check_match "client key of another certificate: why" "$ERR" \
	"^qkd: kme status: TLS: cannot use the client certificate $P/SAE_A.pem with the key $P/SAE_B.key: .*"
check_exit "a CA file without a certificate" 2 \
	kme status --url "$U" --sae SAE_B --cert "$P/SAE_A.pem" --cert-key "$P/SAE_A.key" --ca "$P/SAE_A.key"
check_match "a CA file without a certificate: why" "$ERR" "the CA file $P/SAE_A.key holds no usable certificate"
check_exit "missing certificate file" 2 \
	kme status --url "$U" --sae SAE_B --cert "$D/nope.pem" --cert-key "$P/SAE_A.key" --ca "$P/ca.pem"
check_match "missing certificate file: why" "$ERR" "cannot read the client certificate $D/nope.pem: No such file"
fails "nobody listening" '^qkd: kme status: https://127.0.0.1:1: .*(onnect|refused)' \
	kme status --url https://127.0.0.1:1 --sae SAE_B "${A[@]}"

# --- the command line
check_exit "--help" 0 kme --help
check_match "--help: usage" "$OUT" '^usage: qkd kme status'
check_exit "enc --help" 0 kme enc --help
check_exit "no action" 2 kme
check_exit "unknown action" 2 kme keys --url "$U"
check_exit "http:// refused" 2 kme status --url "http://127.0.0.1:$PORT_fake" --sae SAE_B "${A[@]}"
check_match "http:// refused: why" "$ERR" 'must be https://'
check_exit "missing --ca" 2 kme status --url "$U" --sae SAE_B --cert "$P/SAE_A.pem" --cert-key "$P/SAE_A.key"
check_match "missing --ca: named" "$ERR" 'missing --ca'
check_exit "missing --key-id" 2 kme dec --url "$U" --sae SAE_A "${B[@]}"
check_exit "--number with dec" 2 kme dec --url "$U" --sae SAE_A --key-id "$K0" --number 2 "${B[@]}"
check_match "--number with dec: why" "$ERR" '\-\-number does not apply to dec'
check_exit "--key-id not a UUID" 2 kme dec --url "$U" --sae SAE_A --key-id 1234 "${B[@]}"
check_exit "--key-id twice" 2 kme dec --url "$U" --sae SAE_A --key-id "$K0" --key-id "$K0" "${B[@]}"
check_exit "--size not a multiple of 8" 2 kme enc --url "$U" --sae SAE_B --size 100 "${A[@]}"
check_exit "--number 0" 2 kme enc --url "$U" --sae SAE_B --number 0 "${A[@]}"
check_exit "--sae not an SAE ID" 2 kme enc --url "$U" --sae 'SAE B' "${A[@]}"
check_exit "--timeout 0" 2 kme status --url "$U" --sae SAE_B --timeout 0 "${A[@]}"
check_exit "--url twice" 2 kme status --url "$U" --url "$U" --sae SAE_B "${A[@]}"

kme_stop fake; check_eq "kme_fake exits 0 on SIGTERM" "$STOP_RC" 0

# ------------------------------------------------- (b) a server not ours, in Python
kme_serve py "$PY" "$TOP/tests/tools/etsi014_server.py" --pki "$P"
check_match "Python ETSI 014 server listens" "$PORT_py" '^[1-9][0-9]*$'
V=https://127.0.0.1:$PORT_py

check "py: status" kme status --url "$V" --sae SAE_B "${A[@]}"
check_match "py: status table" "$OUT" '^target_KME_ID +KME_Q$'
check "py: status --json (pretty-printed as received)" kme status --url "$V" --sae SAE_B --json "${A[@]}"
RESP=$OUT
jcheck "py: status --json: its object, extension included" '.source_KME_ID == "KME_P" and
	.master_SAE_ID == "SAE_A" and .max_key_count == 5000 and .status_extension.vendor == "python"'
check "py: enc GET" kme enc --url "$V" --sae SAE_B --number 2 --size 256 --json "${A[@]}"
RESP=$OUT
jcheck "py: enc GET: uppercase key_IDs as received" '(.keys | length) == 2 and (.keys[0].key_ID | test("^[0-9A-F-]{36}$"))'
PE=$(pairs); mapfile -t PIDS2 < <(idargs)
check "py: enc POST" kme enc --url "$V" --sae SAE_B --number 3 --size 128 --post --json "${A[@]}"
RESP=$OUT; PE3=$(pairs)
P1=$(printf '%s' "$RESP" | jq -r '.keys[0].key_ID | ascii_downcase')
P2=$(printf '%s' "$RESP" | jq -r '.keys[1].key_ID'); P3=$(printf '%s' "$RESP" | jq -r '.keys[2].key_ID')
check "py: dec POST of 2 keys" kme dec --url "$V" --sae SAE_A "${PIDS2[@]}" --json "${B[@]}"
RESP=$OUT
check_eq "py: dec POST: the same keys" "$(pairs)" "$PE"
check "py: dec GET of one key, its key_ID in lowercase" kme dec --url "$V" --sae SAE_A --key-id "$P1" --json "${B[@]}"
RESP=$OUT; R1=$(pairs)
check "py: dec POST of the other two" kme dec --url "$V" --sae SAE_A --key-id "$P2" --key-id "$P3" --json "${B[@]}"
RESP=$OUT
check_eq "py: dec: the same 3 keys of enc POST" "$(printf '%s\n%s\n' "$R1" "$(pairs)" | sort)" "$PE3"
fails "py: a key already fetched" '^qkd: kme dec: 400 Bad Request: key_ID unknown \(details: \[\{"key_ID":' \
	kme dec --url "$V" --sae SAE_A --key-id "$P2" "${B[@]}"

# --- answers the client must refuse
fails "py: not JSON" "^qkd: kme enc: $V: malformed answer: Key container: not JSON" \
	kme enc --url "$V" --sae BAD_JSON "${A[@]}"
fails "py: garbage after the object" 'malformed answer: Key container: not JSON: end of file expected' \
	kme enc --url "$V" --sae TRAILING "${A[@]}"
fails "py: keys of the wrong size" 'malformed answer: keys\[0\]\.key: 248 bits, not the 256 asked for' \
	kme enc --url "$V" --sae SHORT_KEY --size 256 --json "${A[@]}"
fails "py: one key too many" 'malformed answer: Key container: 3 keys, not the 2 asked for' \
	kme enc --url "$V" --sae TOO_MANY --number 2 --json "${A[@]}"
fails "py: a key_ID that is not a UUID" 'malformed answer: keys\[0\]\.key_ID: not a UUID' \
	kme enc --url "$V" --sae BAD_UUID "${A[@]}"
fails "py: a key that is not base64" 'malformed answer: keys\[0\]\.key: not base64' \
	kme enc --url "$V" --sae BAD_B64 "${A[@]}"
fails "py: Status with key_size a string" 'malformed answer: Status: key_size must be an integer' \
	kme status --url "$V" --sae STATUS_TYPES --json "${A[@]}"
fails "py: Status of another slave" 'malformed answer: Status: slave_SAE_ID is "SAE_X", not the "WRONG_SLAVE" asked for' \
	kme status --url "$V" --sae WRONG_SLAVE "${A[@]}"
fails "py: an Error object with details" '^qkd: kme enc: 503 Service Unavailable: the pool is empty \(details: \[\{"stored_key_count":0\},\{"retry_after_s":30\}\]\)$' \
	kme enc --url "$V" --sae ERR_DETAILS "${A[@]}"
fails "py: an HTML page" '^qkd: kme enc: 502 Bad Gateway: no ETSI Error object \(body: not JSON.*\): "<html>' \
	kme enc --url "$V" --sae HTML "${A[@]}"
fails "py: a body above 16 MiB" 'the answer is larger than 16777216 bytes' \
	kme enc --url "$V" --sae BIG "${A[@]}"
t0=$(date +%s.%N)
fails "py: no answer within --timeout 1" 'timed out' \
	kme enc --url "$V" --sae SLOW --timeout 1 "${A[@]}"
check "py: --timeout 1 gave up within 3 s" awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { exit !(b - a < 3) }'
check "py: the server still serves" kme status --url "$V" --sae SAE_B "${A[@]}"
kme_stop py; check_eq "py: the server exits 0 on SIGTERM" "$STOP_RC" 0

# ------------------------------------------------------- (c) two real nodes
CP=$(free_port); FP=$(free_port "$CP"); KA=$(free_port "$CP" "$FP"); KB=$(free_port "$CP" "$FP" "$KA")
head -c 262144 /dev/urandom >"$D/ab.key"
kme_node_conf alice "$KA" KME_A SAE_A SAE_B KME_B
kme_node_conf bob "$KB" KME_B SAE_B SAE_A KME_A
start bob; start alice
check "nodes: both key managers listening" wait_listen "$KA"
check "nodes: B listening" wait_listen "$KB"
check "nodes: 4 blocks stored within 90 s" wait_for bob stored_blocks 4 90
check "nodes: status at A" kme status --url "https://127.0.0.1:$KA" --sae SAE_B --json "${A[@]}"
RESP=$OUT
jcheck "nodes: status at A: the node's KME" '.source_KME_ID == "KME_A" and .target_KME_ID == "KME_B" and .stored_key_count > 0'
check "nodes: enc at A as SAE_A" kme enc --url "https://127.0.0.1:$KA" --sae SAE_B --number 2 --size 256 --json --timeout 20 "${A[@]}"
RESP=$OUT; NE=$(pairs); mapfile -t NIDS < <(idargs)
check "nodes: dec at B as SAE_B" kme dec --url "https://127.0.0.1:$KB" --sae SAE_A "${NIDS[@]}" --json "${B[@]}"
RESP=$OUT
check_eq "nodes: the very same keys at both nodes" "$(pairs)" "$NE"
fails "nodes: dec again" '^qkd: kme dec: 400 Bad Request: key_ID unknown or already delivered' \
	kme dec --url "https://127.0.0.1:$KB" --sae SAE_A "${NIDS[@]}" "${B[@]}"
check "nodes: enc at B as SAE_B (POST)" kme enc --url "https://127.0.0.1:$KB" --sae SAE_A --post --json --timeout 20 "${B[@]}"
RESP=$OUT; NE=$(pairs); KN=$(printf '%s' "$RESP" | jq -r '.keys[0].key_ID')
check "nodes: dec at A as SAE_A (GET)" kme dec --url "https://127.0.0.1:$KA" --sae SAE_B --key-id "$KN" --json "${A[@]}"
RESP=$OUT
check_eq "nodes: the same key the other way" "$(pairs)" "$NE"
stop alice; check_eq "nodes: A exits 0 on SIGTERM" "$STOP_RC" 0
stop bob; check_eq "nodes: B exits 0 on SIGTERM" "$STOP_RC" 0

finish
