#!/usr/bin/env bash
# tests/integration/metrics.sh - the Prometheus metrics of `qkd node`
# (docs/metrics.md, `node.metrics` in docs/config.md): two real nodes on
# loopback with a QKD link and a key manager each, Alice's metrics on
# 127.0.0.1, Bob's on [::1], scraped with curl while the link runs.
# Counters grow between two scrapes; requests made to the key managers with
# curl (successes and provoked errors) appear under their endpoint and code,
# keys served and the latency histogram agree with them; `promtool check
# metrics` (Debian package prometheus) accepts every scrape; other paths
# and methods are refused; idle connections cannot lock the endpoint for
# longer than its timeout; a node without `metrics` listens on nothing
# more; bad, clashing and busy addresses are startup errors naming the key.
# Usage (from the top of the tree): QKD=build/qkd tests/integration/metrics.sh
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

if ! command -v promtool >/dev/null; then
	cli_not_ok "promtool installed (make deps: Debian package prometheus)"
	finish
fi

CP=$(free_port); FP=$(free_port "$CP"); KA=$(free_port "$CP" "$FP")
KB=$(free_port "$CP" "$FP" "$KA"); MA=$(free_port "$CP" "$FP" "$KA" "$KB")
MB=$(free_port "$CP" "$FP" "$KA" "$KB" "$MA")

check "test PKI written" "$TOP/examples/make-test-pki.sh" "$P" SAE_A SAE_B
head -c 262144 /dev/urandom >"$D/ab.key"
kme_node_conf alice "$KA" KME_A "SAE_A" "SAE_B" KME_B
kme_node_conf bob "$KB" KME_B "SAE_B" "SAE_A" KME_A
# with_metrics ROLE ADDR [OUT]: ROLE.conf with `metrics = ADDR` in its node group.
with_metrics() {
	sed "s|log_level = \"info\"; };|log_level = \"info\"; metrics = \"$2\"; };|" \
		"$D/$1.conf" >"$D/${3:-$1}.conf.new" && mv "$D/${3:-$1}.conf.new" "$D/${3:-$1}.conf"
}
cp "$D/alice.conf" "$D/plain.conf"
with_metrics alice "127.0.0.1:$MA"
with_metrics bob "[::1]:$MB"

# scrape NAME URL: GET URL into $D/NAME.txt, headers into $D/NAME.hdr; CODE.
scrape() {
	CODE=$(curl -sS --max-time 5 -D "$D/$1.hdr" -o "$D/$1.txt" -w '%{http_code}' "${@:2}" \
		2>"$D/curl.err")
}
# val FILE SAMPLE: the value of the sample (name and labels exactly as
# written), empty when it is absent.
val() { awk -v k="$2" 'index($0, k " ") == 1 { print substr($0, length(k) + 2) }' "$1"; }
# promtool_ok FILE: promtool parses it and lints nothing but the one rule
# this project departs from on purpose (docs/metrics.md: key is counted in
# bits): its exit status is 0, or 3 (lint) with only that rule's lines.
promtool_ok() {
	local out rc
	out=$(promtool check metrics <"$1" 2>&1); rc=$?
	out=$(printf '%s\n' "$out" | grep -v 'use base unit "bytes" instead of "bits"$' | grep .)
	{ [ "$rc" = 0 ] || [ "$rc" = 3 ]; } && [ -z "$out" ] && return 0
	echo "promtool: exit $rc: $out" >&2
	return 1
}

start bob; start alice
check "A: metrics listening on 127.0.0.1" wait_listen "$MA"
check "B: metrics listening on [::1]" wait_listen "$MB"
check "A: key manager listening" wait_listen "$KA"
check "B: key manager listening" wait_listen "$KB"
check_match "A: the address logged" "$(cat "$D/alice.log")" "metrics on http://127\.0\.0\.1:$MA/metrics"
check_match "B: the IPv6 address logged" "$(cat "$D/bob.log")" "metrics on http://\[::1\]:$MB/metrics"
check "link: a block stored within 90 s" wait_for alice stored_blocks 1 90

# --- two scrapes while the link runs
scrape a1 "http://127.0.0.1:$MA/metrics"
check_eq "A: GET /metrics: 200" "$CODE" 200
check_match "A: Content-Type text/plain; version=0.0.4" "$(tr -d '\r' <"$D/a1.hdr")" \
	'^Content-Type: text/plain; version=0\.0\.4'
check "A: promtool check metrics accepts it" promtool_ok "$D/a1.txt"
check_eq "A: node name" "$(val "$D/a1.txt" 'qkd_node_info{node="alice"}')" 1
check_eq "A: link role" "$(val "$D/a1.txt" 'qkd_link_info{link="ab",role="alice"}')" 1
R1=$(val "$D/a1.txt" 'qkd_link_rounds_total{link="ab",result="ok"}')
S1=$(val "$D/a1.txt" 'qkd_link_stored_bits{link="ab"}')
check "A: rounds ok ($R1) and stored bits ($S1) positive" test "${R1:-0}" -ge 1 -a "${S1:-0}" -gt 0
check_match "A: QBER a ratio" "$(val "$D/a1.txt" 'qkd_link_qber_ratio{link="ab"}')" '^0(\.[0-9]+)?(e-[0-9]+)?$'
check_eq "A: no alarm" "$(grep -c '^qkd_link_alarm{link="ab",alarm="[a-z_]*"} 0$' "$D/a1.txt")" 4
check_match "A: one state" "$(grep -c '^qkd_link_state{' "$D/a1.txt")" '^1$'
check_eq "A: service messages by kind" \
	"$(grep -c '^qkd_link_service_messages_total{link="ab",kind="\(sent\|delivered\|unknown\)"} [0-9]*$' "$D/a1.txt")" 3
check "A: authentication key spent" test "$(val "$D/a1.txt" 'qkd_link_auth_spent_bits_total{link="ab"}')" -gt 0
grown() {
	local i
	for i in $(seq 1 60); do
		scrape a2 "http://127.0.0.1:$MA/metrics"
		R2=$(val "$D/a2.txt" 'qkd_link_rounds_total{link="ab",result="ok"}')
		S2=$(val "$D/a2.txt" 'qkd_link_stored_bits{link="ab"}')
		[ "${R2:-0}" -gt "$R1" ] && [ "${S2:-0}" -gt "$S1" ] && return 0
		sleep 1
	done
	return 1
}
check "A: second scrape: rounds and stored bits grew (60 s at most)" grown
echo "# rounds ok $R1 -> $R2, stored bits $S1 -> $S2" >&2
scrape b1 "http://[::1]:$MB/metrics"
check_eq "B over IPv6: GET /metrics: 200" "$CODE" 200
check "B: promtool check metrics accepts it" promtool_ok "$D/b1.txt"
check_eq "B: link role" "$(val "$D/b1.txt" 'qkd_link_info{link="ab",role="bob"}')" 1
check_eq "B: no key manager request yet" "$(grep -c '^qkd_kme_requests_total{' "$D/b1.txt")" 0
check_eq "B: empty histogram" "$(val "$D/b1.txt" 'qkd_kme_request_duration_seconds_count')" 0
# a broken exposition must fail promtool_ok, or the checks above prove nothing
{ cat "$D/a1.txt"; echo 'qkd_link_stored_bits{link="ab" 1'; } >"$D/broken.txt"
if promtool_ok "$D/broken.txt" 2>/dev/null; then cli_not_ok "promtool_ok refuses a broken text"
else cli_ok "promtool_ok refuses a broken text"; fi

# --- key manager requests, counted by endpoint and code
req() {
	local port=$KA who=$2 method=$3 path=$4 data=${5-}
	[ "$1" = b ] && port=$KB
	local args=(-sS --max-time 20 --cacert "$P/ca.pem" -o "$D/resp" -w '%{http_code}'
		--cert "$P/$who.pem" --key "$P/$who.key")
	[ "$method" = POST ] && args+=(-X POST -H 'Content-Type: application/json' --data-binary "$data")
	rm -f "$D/resp"
	CODE=$(curl "${args[@]}" "https://127.0.0.1:$port$path" 2>"$D/curl.err")
	RESP=$(cat "$D/resp" 2>/dev/null)
}
req a SAE_A GET /api/v1/keys/SAE_B/status
check_eq "A: status: 200" "$CODE" 200
req a SAE_A GET "/api/v1/keys/SAE_B/enc_keys?number=3&size=256"
check_eq "A: enc_keys for 3 keys: 200" "$CODE" 200
IDS=$(printf '%s' "$RESP" | jq -c '[.keys[] | {key_ID: .key_ID}]')
req a SAE_A GET "/api/v1/keys/SAE_B/enc_keys?size=100"
check_eq "A: enc_keys with a bad size: 400" "$CODE" 400
req a SAE_A GET /api/v1/keys/SAE_B/nothing
check_eq "A: an unknown resource: 404" "$CODE" 404
req b SAE_B POST /api/v1/keys/SAE_A/dec_keys "{\"key_IDs\": $IDS}"
check_eq "B: dec_keys of the 3 keys: 200" "$CODE" 200
req b SAE_B POST /api/v1/keys/SAE_A/dec_keys "{\"key_IDs\": $IDS}"
check_eq "B: dec_keys again: 400" "$CODE" 400

scrape a3 "http://127.0.0.1:$MA/metrics"
check "A: promtool accepts it with requests" promtool_ok "$D/a3.txt"
kme_a() { val "$D/a3.txt" "qkd_kme_requests_total{endpoint=\"$1\",code=\"$2\"}"; }
check_eq "A: status 200 counted once" "$(kme_a status 200)" 1
check_eq "A: enc_keys 200 counted once" "$(kme_a enc_keys 200)" 1
check_eq "A: enc_keys 400 counted once" "$(kme_a enc_keys 400)" 1
check_eq "A: the 404 under endpoint other" "$(kme_a other 404)" 1
check_eq "A: four request samples, no other" "$(grep -c '^qkd_kme_requests_total{' "$D/a3.txt")" 4
check_eq "A: keys served by enc_keys: 3" "$(val "$D/a3.txt" 'qkd_kme_keys_served_total{call="enc_keys"}')" 3
check_eq "A: keys served by dec_keys: 0" "$(val "$D/a3.txt" 'qkd_kme_keys_served_total{call="dec_keys"}')" 0
check_eq "A: histogram count = requests" "$(val "$D/a3.txt" qkd_kme_request_duration_seconds_count)" 4
check_eq "A: +Inf bucket = count" \
	"$(val "$D/a3.txt" 'qkd_kme_request_duration_seconds_bucket{le="+Inf"}')" 4
check "A: buckets never decrease" awk '/^qkd_kme_request_duration_seconds_bucket/ {
	if ($2 < last) exit 1; last = $2 }' "$D/a3.txt"
check "A: latency sum positive, under 80 s" awk '/^qkd_kme_request_duration_seconds_sum / {
	found = 1; if (!($2 > 0 && $2 < 80)) exit 1 } END { exit !found }' "$D/a3.txt"
scrape b2 "http://[::1]:$MB/metrics"
check "B: promtool accepts it with requests" promtool_ok "$D/b2.txt"
check_eq "B: dec_keys 200 once" "$(val "$D/b2.txt" 'qkd_kme_requests_total{endpoint="dec_keys",code="200"}')" 1
check_eq "B: dec_keys 400 once" "$(val "$D/b2.txt" 'qkd_kme_requests_total{endpoint="dec_keys",code="400"}')" 1
check_eq "B: keys served by dec_keys: 3" "$(val "$D/b2.txt" 'qkd_kme_keys_served_total{call="dec_keys"}')" 3
check_eq "B: histogram count 2" "$(val "$D/b2.txt" qkd_kme_request_duration_seconds_count)" 2

# --- only GET /metrics
scrape e1 "http://127.0.0.1:$MA/"
check_eq "GET /: 404" "$CODE" 404
scrape e2 "http://127.0.0.1:$MA/metrics/x"
check_eq "GET /metrics/x: 404" "$CODE" 404
scrape e3 -X POST --data-binary x "http://127.0.0.1:$MA/metrics"
check_eq "POST /metrics: 405" "$CODE" 405
check_match "POST /metrics: Allow: GET" "$(tr -d '\r' <"$D/e3.hdr")" '^Allow: GET$'
scrape e4 -X DELETE "http://[::1]:$MB/metrics"
check_eq "DELETE /metrics over IPv6: 405" "$CODE" 405

# --- idle connections hold slots at most the 5 s timeout
hold() {
	local i
	for i in $(seq 1 24); do exec {fd}<>"/dev/tcp/127.0.0.1/$MA" && HELD+=("$fd"); done
}
HELD=()
hold 2>/dev/null
check "24 idle connections opened" test "${#HELD[@]}" -ge 17
sleep 6
scrape f1 "http://127.0.0.1:$MA/metrics"
check_eq "a scrape after the idle ones timed out: 200" "$CODE" 200
for fd in "${HELD[@]}"; do exec {fd}>&-; done
check "the link kept storing meanwhile" wait_for alice stored_blocks "$(($(field alice stored_blocks) + 1))" 60

# --- startup errors name the key; a clash with any other address of the file
check_run_node() { timeout 10 "$QKD" node --config "$1"; }
with_metrics plain "::1:$MA" bad
check_exit "metrics address without brackets: refused" 2 check_run_node "$D/bad.conf"
check_match "... with FILE:LINE: node.metrics: why" "$ERR" \
	"^qkd: $D/bad\.conf:1: node\.metrics: '::1:$MA' is not HOST:PORT"
with_metrics plain "127.0.0.1:$CP" bad
check_exit "metrics on the classical address: refused" 2 check_run_node "$D/bad.conf"
check_match "... naming the link" "$ERR" "node\.metrics: 127\.0\.0\.1:$CP is also the classical address of link 'ab'"
with_metrics plain "localhost:$KA" bad
check_exit "metrics on the key manager's address: refused" 2 check_run_node "$D/bad.conf"
check_match "... naming kme.listen" "$ERR" "node\.metrics: 127\.0\.0\.1:$KA is also the key manager's kme\.listen"

# a node of its own (another link, store and key) whose metrics port is busy
SP=$(free_port "$CP" "$FP" "$KA" "$KB" "$MA" "$MB")
SF=$(free_port "$CP" "$FP" "$KA" "$KB" "$MA" "$MB" "$SP")
head -c 65536 /dev/urandom >"$D/solo.key"
cat >"$D/solo.conf" <<EOF
node = { name = "solo"; status = "solo.sock"; metrics = "127.0.0.1:$MA"; };
links = ( {
  name = "s"; role = "alice";
  classical = "127.0.0.1:$SP"; fiber = "127.0.0.1:$SF";
  store = "solo.db"; auth_key = "solo.key";
} );
EOF
check_exit "metrics port in use: a startup error" 1 check_run_node "$D/solo.conf"
check_match "... saying so" "$ERR" "^qkd: $D/solo\.conf:1: node\.metrics: 127\.0\.0\.1:$MA: Address already in use"
sed -i 's| metrics = "[^"]*";||' "$D/solo.conf"
start solo
check "a node without metrics runs" wait_listen "$SP"
sleep 0.5
# shellcheck disable=SC2154  # PID_solo: set by start (lib_nodes.sh)
check_eq "... and listens on its classical port only" \
	"$(ss -ltnpH 2>/dev/null | grep -c "pid=$PID_solo,")" 1
check "... and logs no metrics address" test -z "$(grep 'metrics on' "$D/solo.log")"
stop solo; check_eq "SIGTERM: solo exits 0" "$STOP_RC" 0

stop alice; check_eq "SIGTERM: A exits 0" "$STOP_RC" 0
stop bob; check_eq "SIGTERM: B exits 0" "$STOP_RC" 0
check "A's metrics closed with it" test -z "$(ss -ltnH "sport = :$MA")"
finish
