#!/usr/bin/env bash
# tests/integration/ipv6.sh - two `qkd node` daemons whose every address is
# IPv6 loopback (docs/config.md, "Addresses"): the classical channel, the
# fiber and both key managers on [::1]. The link distils blocks and both
# stores hold the same ones; curl as the SAEs fetches a key with enc_keys at
# one node and the same key with dec_keys at the other, over
# https://[::1]:PORT; the key manager's per-address limit counts a v6 peer;
# `qkd status` and the logs print the addresses in brackets; a stranger's
# handshake on [::1] is refused and counted (tests/tools/hostile, which aims
# at 127.0.0.0/8 and ::1 only); `qkd eve` sits on an IPv6 fiber and raises
# the QBER; bad IPv6 addresses are configuration errors naming file, line
# and reason; a port in use on [::1] names the link. In a network namespace
# of the test's own (root only): a listener on "[::]" is IPv6 only, and the
# per-address limit tells ::1 from ::2.
# The machine has ::1 on lo: the script fails, loudly, when it does not.
# Usage (from the top of the tree): QKD=build/qkd tests/integration/ipv6.sh
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
HOSTILE=${HOSTILE:-$BDIR/tests/tools/hostile}
FAKE=${KME_FAKE:-$BDIR/tests/tools/kme_fake}
D=$CLI_TMP
P=$D/pki
PIDS=()

# --- ::1 must be there: without it nothing below means anything -------------
if ! ip -6 addr show lo 2>/dev/null | grep -q 'inet6 ::1/128'; then
	cli_not_ok "::1 on lo" "ip -6 addr show lo has no ::1/128: IPv6 loopback is missing" \
		"(net.ipv6.conf.lo.disable_ipv6 = $(cat /proc/sys/net/ipv6/conf/lo/disable_ipv6 2>&1))"
	finish
fi
cli_ok "::1 on lo"

CP=$(free_port); FP=$(free_port "$CP"); KA=$(free_port "$CP" "$FP")
KB=$(free_port "$CP" "$FP" "$KA"); EP=$(free_port "$CP" "$FP" "$KA" "$KB")

check "test PKI written" "$TOP/examples/make-test-pki.sh" "$P" SAE_A SAE_B
check_match "test PKI: the server certificate names ::1" \
	"$(openssl x509 -in "$P/server.pem" -noout -ext subjectAltName 2>&1)" \
	'IP Address:0:0:0:0:0:0:0:1'

# mkconf ROLE KME_PORT KME_ID LOCAL_SAE REMOTE_SAE PEER_KME [FIBER_PORT]: the
# fast test link of node.sh, every address on [::1]. Bob's key manager lets
# one address hold 2 connections.
mkconf() {
	local per=0
	[ "$1" = bob ] && per=2
	cat >"$D/$1${8:-}.conf" <<EOF
node = { name = "$1"; status = "$1.sock"; log_level = "info"; };
links = ( {
  name = "ab"; role = "$1";
  classical = "[::1]:$CP"; fiber = "[::1]:${7:-$FP}";
  store = "$1.db"; auth_key = "ab.key";
  auth_reserve_bits = 1048576; round_pulses = 20000000;
  optical = { distance_km = 1.0; detector_efficiency = 0.5; };
} );
kme = {
  id = "$3"; listen = "[::1]:$2";
  cert = "pki/server.pem"; key = "pki/server.key"; ca = "pki/ca.pem";
  key_size = 256; min_key_size = 64; max_key_size = 65536; max_keys_per_request = 1024;
  sync_timeout = 10; per_address_connections = $per;
  saes = ( { id = "$4"; }, { id = "$5"; link = "ab"; kme = "$6"; } );
};
EOF
}
head -c 262144 /dev/urandom >"$D/ab.key"
mkconf alice "$KA" KME_A SAE_A SAE_B KME_B
mkconf bob "$KB" KME_B SAE_B SAE_A KME_A

# req NODE WHO METHOD PATH [BODY]: one request to node a or b as SAE WHO,
# over https://[::1]:PORT. Sets CODE (000: no HTTP response) and RESP.
req() {
	local port=$KA who=$2 method=$3 path=$4 data=${5-}
	[ "$1" = b ] && port=$KB
	local args=(-sS --max-time 20 --cacert "$P/ca.pem" -o "$D/resp" -w '%{http_code}'
		--cert "$P/$who.pem" --key "$P/$who.key")
	[ "$method" = POST ] && args+=(-X POST -H 'Content-Type: application/json' --data-binary "$data")
	rm -f "$D/resp"
	CODE=$(curl "${args[@]}" "https://[::1]:$port/api/v1/keys$path" 2>"$D/curl.err")
	RESP=$(cat "$D/resp" 2>/dev/null)
}
pairs_of() { printf '%s' "$RESP" | jq -r '.keys[] | .key_ID + " " + .key'; }
# same_stores: both stores hold the same FINAL blocks with the same bits and
# no PENDING block (as node.sh checks).
same_stores() {
	local a b id
	a=$("$QKD" keys --store "$D/alice.db" --json | jq -c '[.blocks[] | {id, state, bits}]')
	b=$("$QKD" keys --store "$D/bob.db" --json | jq -c '[.blocks[] | {id, state, bits}]')
	[ "$a" = "$b" ] || { echo "lists differ: $a vs $b" >&2; return 1; }
	[ "$(printf '%s' "$a" | jq length)" -gt 0 ] || { echo "no block" >&2; return 1; }
	printf '%s' "$a" | jq -e 'all(.[]; .state != "pending")' >/dev/null || { echo "pending block" >&2; return 1; }
	for id in $(printf '%s' "$a" | jq -r '.[].id'); do
		[ "$("$QKD" keys --store "$D/alice.db" export "$id")" = "$("$QKD" keys --store "$D/bob.db" export "$id")" ] ||
			{ echo "block $id differs" >&2; return 1; }
	done
}
# listening PORT: the local addresses listening on PORT, one per line.
listening() { ss -ltnH "sport = :$1" 2>/dev/null | awk '{ print $4 }' | sort -u; }
blocks() { "$QKD" keys --store "$D/$1.db" --json | jq '[.blocks[] | select(.state != "pending")] | length'; }

# --- the link and the key managers, all on [::1] ------------------------------
start bob; start alice
check "node A: key manager listening" wait_listen "$KA"
check "node B: key manager listening" wait_listen "$KB"
check "link: 3 blocks stored within 60 s" wait_for bob stored_blocks 3 60
check_eq "alice listens on [::1] only (classical)" "$(listening "$CP")" "[::1]:$CP"
check_eq "bob listens on [::1] only (fiber)" "$(listening "$FP")" "[::1]:$FP"
check_eq "node A's key manager listens on [::1] only" "$(listening "$KA")" "[::1]:$KA"
check_match "the classical channel is an IPv6 connection" \
	"$(ss -tnH state established "( sport = :$CP )" 2>/dev/null)" "\[::1\]:$CP +\[::1\]:[0-9]+"
check_match "the fiber is an IPv6 connection" \
	"$(ss -tnH state established "( sport = :$FP )" 2>/dev/null)" "\[::1\]:$FP +\[::1\]:[0-9]+"

# --- qkd status and the logs: addresses in brackets ---------------------------
S=$(status_json alice)
check_eq "status --json: classical" "$(printf '%s' "$S" | jq -r '.links[0].classical')" "[::1]:$CP"
check_eq "status --json: fiber" "$(printf '%s' "$S" | jq -r '.links[0].fiber')" "[::1]:$FP"
check_eq "status --json: kme_listen" "$(printf '%s' "$S" | jq -r '.kme_listen')" "[::1]:$KA"
check "status: human report" "$QKD" status --node "$D/bob.sock"
check_match "status: the link's addresses" "$OUT" "^    classical \[::1\]:$CP, fiber \[::1\]:$FP$"
check_match "status: the key manager's" "$OUT" "^  key manager on https://\[::1\]:$KB$"
check_match "log: node A's key manager" "$(cat "$D/alice.log")" \
	"node alice: key manager KME_A on https://\[::1\]:$KA$"
check_match "log: the HTTPS server" "$(cat "$D/bob.log")" \
	"kme: KME_B serving ETSI GS QKD 014 on https://\[::1\]:$KB/ \(256 connections, 2 per address"

# --- ETSI GS QKD 014 over https://[::1]: enc_keys at A, dec_keys at B ---------
req a SAE_A GET /SAE_B/status
check_eq "status at A over [::1]: HTTP 200" "$CODE" 200
jcheck "status at A: stored keys" '.source_KME_ID == "KME_A" and .stored_key_count > 0'
req a SAE_A GET "/SAE_B/enc_keys?number=3&size=512"
check_eq "enc_keys at A over [::1]: HTTP 200" "$CODE" 200
jcheck "enc_keys at A: three keys" '(.keys | length) == 3'
check "enc_keys at A: each of 64 bytes, key_ID a UUID" keybytes 64
ENC=$(pairs_of | sort)
IDS=$(printf '%s' "$RESP" | jq -c '[.keys[] | {key_ID}]')
req b SAE_B POST /SAE_A/dec_keys "{\"key_IDs\": $IDS}"
check_eq "dec_keys at B over [::1]: HTTP 200" "$CODE" 200
check_eq "dec_keys at B: the very same keys" "$(pairs_of | sort)" "$ENC"
req b SAE_B POST /SAE_B/enc_keys '{"number": 1}'
error_is "enc_keys at B to itself: refused" 400 "caller's own"

# --- the per-address limit counts a v6 peer (Bob's: 2) ------------------------
# hold: an idle TLS connection to Bob's key manager as SAE_A from ::1 (the
# server closes it after its handshake timeout, 5 s: it asks nothing).
HOLDS=()
hold() {
	timeout 20 openssl s_client -quiet -ign_eof -connect "[::1]:$KB" \
		-CAfile "$P/ca.pem" -cert "$P/SAE_A.pem" -key "$P/SAE_A.key" </dev/null >/dev/null 2>&1 &
	HOLDS+=("$!")
	PIDS+=("$!")
}
hold; hold
sleep 1
req b SAE_B GET /SAE_A/status
check_eq "per_address_connections 2: a third from ::1 gets no answer" "$CODE" 000
for p in "${HOLDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
for i in $(seq 1 25); do req b SAE_B GET /SAE_A/status; [ "$CODE" = 200 ] && break; sleep 0.2; done
check_eq "once they close, ::1 is served again" "$CODE" 200

# --- a stranger's handshake at Alice's [::1] port ----------------------------
cli_run "$HOSTILE" stray --connect '[2001:db8::1]:80' --count 1
check_eq "hostile: a non-loopback IPv6 target is refused" "$STATUS: $ERR" \
	"2: hostile: --connect: not HOST:PORT with HOST in 127.0.0.0/8 or [::1]"
cli_run "$HOSTILE" stray --connect '[::2]:80' --count 1
check_eq "hostile: ::2 is not loopback" "$STATUS" 2
cli_run "$HOSTILE" kme-idle --connect "[::1]:$KA" --source 127.0.0.1 --conns 1 --seconds 1
check_eq "hostile: --source of another family is refused" "$STATUS: $ERR" \
	"2: hostile: --source: not of --connect's family (IPv4 or IPv6)"
stop bob
check_eq "bob stopped cleanly" "$STOP_RC" 0
OUT=$("$HOSTILE" sync --connect "[::1]:$CP" --jump 1048576)
check_match "sync stranger over [::1]: Alice answers HELLO, not its SYNC" "$OUT" "answered HELLO$"
check "sync stranger: counted" wait_for alice strangers_refused 1 5
check_match "sync stranger: logged" "$(cat "$D/alice.log")" "refused at the handshake: the peer failed the gate"
n0=$(blocks bob)
start bob
check "after the stranger: the link distils again" wait_for bob stored_blocks $((n0 + 1)) 60
stop alice; check_eq "SIGTERM: alice exits 0" "$STOP_RC" 0
stop bob; check_eq "SIGTERM: bob exits 0" "$STOP_RC" 0
check "stores identical after the IPv6 run" same_stores

# --- qkd eve on the IPv6 fiber: intercept-resend raises the QBER by about F/4 -
mkconf alice "$KA" KME_A SAE_A SAE_B KME_B "$EP" -eve
(exec "$QKD" eve --listen "[::1]:$EP" --forward "[::1]:$FP" --attack intercept-resend:0.2 \
	2>>"$D/eve.log") &
EVE=$!; PIDS+=("$EVE")
check "qkd eve listens on [::1]" wait_listen "$EP"
start bob; start alice "$D/alice-eve.conf"
check "eve: rounds run" wait_for bob rounds_ok 2 60
q=$(field bob qber)
check "eve: QBER about 1 % + 5 % ($q)" awk -v q="$q" 'BEGIN { exit !(q > 0.045 && q < 0.08) }'
stop alice; stop bob
kill -TERM "$EVE"; wait "$EVE"
check_eq "qkd eve: exits 0 on SIGTERM" "$?" 0
E=$(cat "$D/eve.log")
check_match "eve: listening and forwarding on [::1]" "$E" \
	"listening on \[::1\]:$EP, forwarding to \[::1\]:$FP, attack intercept-resend:0\.2"
check_match "eve: Alice's node came from [::1]" "$E" 'connection from \[::1\]:[0-9]+$'
check_match "eve: connected to Bob at [::1]" "$E" "connected to bob at \[::1\]:$FP$"
check "stores identical after eve" same_stores

# --- bad IPv6 addresses: qkd: CONFIG:LINE: what, exit 2 ----------------------
# bad NAME SED WHAT: alice.conf edited by SED must fail at load with WHAT.
bad() {
	sed "$2" "$D/alice.conf" >"$D/$1.conf"
	check_exit "config $1: refused" 2 "$QKD" node --config "$D/$1.conf"
	check_match "config $1: names file, line and reason" "$ERR" "^qkd: $D/$1.conf:[0-9]+: $3"
}
bad unterminated "s/\[::1\]:$CP/[::1:$CP/" \
	"links\[0\]\.classical: '\[::1:$CP' is not HOST:PORT: '\[' without its closing '\]'$"
bad nobrackets "s/\[::1\]:$CP/::1:$CP/" \
	"links\[0\]\.classical: '::1:$CP' is not HOST:PORT: an IPv6 address goes in brackets: \[ADDRESS\]:PORT$"
bad noport "s/\[::1\]:$FP/[::1]/" \
	"links\[0\]\.fiber: '\[::1\]' is not HOST:PORT: no :PORT after '\]'$"
bad range "s/\[::1\]:$FP/[::1]:70000/" \
	"links\[0\]\.fiber: '\[::1\]:70000' is not HOST:PORT: PORT is out of range 1\.\.65535$"
bad literal "s/\[::1\]:$KA/[::1::2]:$KA/" \
	"kme\.listen: '\[::1::2\]:$KA' is not HOST:PORT: not an IPv6 address between '\[' and '\]'$"
bad zone "s/\[::1\]:$KA/[fe80::1%lo]:$KA/" "kme\.listen: .* a zone index"
bad mapped "s/\[::1\]:$KA/[::ffff:127.0.0.1]:$KA/" "kme\.listen: .* an IPv4-mapped IPv6 address"
bad clash "s/\[::1\]:$KA/[0::1]:$CP/" \
	"kme\.listen: \[0::1\]:$CP is also the classical address \[::1\]:$CP of link 'ab'$"
bad same "s/\[::1\]:$FP/[0:0::1]:$CP/" "link 'ab': classical and fiber must be different addresses$"
check_match "config error: one line" "$(printf '%s\n' "$ERR" | wc -l)" '^1$'

# --- a port in use on [::1] names the link and the address -------------------
start alice
check "alice up again" wait_listen "$CP"
sed 's/status = "alice.sock"/status = "alice2.sock"/; s/alice.db/alice2.db/' "$D/alice.conf" >"$D/busy.conf"
check_exit "port in use on [::1]" 1 "$QKD" node --config "$D/busy.conf"
check_match "port in use: names the config, the link and the address" "$ERR" \
	"busy.conf:[0-9]+: link ab: \[::1\]:$CP: Address already in use"
stop alice

# --- in a network namespace of our own: "[::]" is IPv6 only, and the
# per-address limit tells ::1 from ::2 (root only) ---------------------------
if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
	NSP=44443
	cat >"$D/ns.sh" <<EOF
set -u
ip link set lo up && ip -6 addr add ::2/128 dev lo || exit 3
for i in \$(seq 1 50); do ip -6 addr show lo | grep -q '::2/128 scope host' &&
	! ip -6 addr show lo | grep -q tentative && break; sleep 0.1; done
C=(-sS --max-time 5 --cacert "$P/ca.pem" --cert "$P/SAE_A.pem" --key "$P/SAE_A.key" -o /dev/null -w '%{http_code}')
"$FAKE" --pki "$P" --addr :: --port $NSP --per-address-connections 2 >"$D/ns.out" 2>"$D/ns.log" &
F=\$!
for i in \$(seq 1 50); do grep -q '^listening' "$D/ns.out" && break; sleep 0.1; done
echo "v6only \$(ss -ltneH 'sport = :$NSP' | grep -o 'v6only:[01]')"
echo "v4 \$(curl "\${C[@]}" https://127.0.0.1:$NSP/api/v1/keys/SAE_B/status 2>/dev/null)"
echo "v6 \$(curl "\${C[@]}" 'https://[::1]:$NSP/api/v1/keys/SAE_B/status' 2>/dev/null)"
H=()
for i in 1 2; do
	timeout 20 openssl s_client -quiet -ign_eof -connect '[::1]:$NSP' -CAfile "$P/ca.pem" \
		-cert "$P/SAE_A.pem" -key "$P/SAE_A.key" </dev/null >/dev/null 2>&1 &
	H+=(\$!)
done
sleep 1
echo "third1 \$(curl "\${C[@]}" 'https://[::1]:$NSP/api/v1/keys/SAE_B/status' 2>/dev/null)"
echo "from2 \$(curl "\${C[@]}" --interface ::2 'https://[::1]:$NSP/api/v1/keys/SAE_B/status' 2>/dev/null)"
kill "\${H[@]}" \$F 2>/dev/null
wait
EOF
	NSOUT=$(timeout 60 unshare -n bash "$D/ns.sh" 2>&1)
	ns() { printf '%s\n' "$NSOUT" | awk -v k="$1" '$1 == k { print $2 }'; }
	check_eq "netns: kme_fake on [::] has IPV6_V6ONLY" "$(ns v6only)" v6only:1
	check_eq "netns: [::] takes no IPv4 connection" "$(ns v4)" 000
	check_eq "netns: [::] takes ::1" "$(ns v6)" 200
	check_eq "netns: per-address 2: a third from ::1 gets no answer" "$(ns third1)" 000
	check_eq "netns: per-address 2: one from ::2 is served" "$(ns from2)" 200
else
	cli_ok "netns checks: skipped (needs root and network namespaces)"
fi

finish
