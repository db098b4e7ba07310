#!/usr/bin/env bash
# tests/integration/node.sh - two `qkd node` daemons on loopback, real
# processes over real sockets: keys, restarts, Eve on the fiber, a man in
# the middle of the classical channel, kill -9 at random moments, memory
# over a long run, and bad configurations.
# Usage (from the top of the tree): QKD=build/qkd tests/integration/node.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/../cli/lib.sh"
# shellcheck source=tests/integration/lib_nodes.sh
. "$(dirname "$0")/lib_nodes.sh"

QKD=${QKD:-build/qkd}
QKD=$(cd "$(dirname "$QKD")" && pwd)/$(basename "$QKD")
MITM=${MITM:-$(dirname "$QKD")/tests/tools/mitm}
D=$CLI_TMP
PIDS=()

CP=$(free_port); FP=$(free_port "$CP"); EP=$(free_port "$CP" "$FP"); MP=$(free_port "$CP" "$FP" "$EP")

# mkconf ROLE FILE CLASSICAL_PORT FIBER_PORT: a fast link (1 km, eta_d 0.5)
# so that each round of 2e7 pulses distils ~300 000 bits.
mkconf() {
	cat >"$2" <<EOF
node = { name = "$1"; status = "$1.sock"; log_level = "info"; };
links = ( {
  name = "ab"; role = "$1";
  classical = "127.0.0.1:$3"; fiber = "127.0.0.1:$4";
  store = "$1.db"; auth_key = "ab.key";
  auth_reserve_bits = 2621440; round_pulses = 20000000;
  optical = { distance_km = 1.0; detector_efficiency = 0.5; };
} );
EOF
}
head -c 262144 /dev/urandom >"$D/ab.key"
mkconf alice "$D/alice.conf" "$CP" "$FP"
mkconf bob "$D/bob.conf" "$CP" "$FP"

# wait_true NAME FIELD SECONDS: until a boolean field is true (bounded).
wait_true() {
	local i
	for i in $(seq 1 $(($3 * 5))); do
		[ "$(field "$1" "$2")" = true ] && return 0
		sleep 0.2
	done
	return 1
}
# wait_log NAME TEXT SECONDS: until NAME's log holds TEXT (bounded).
wait_log() {
	local i
	for i in $(seq 1 $(($3 * 5))); do
		grep -qF "$2" "$D/$1.log" 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}
# same_stores: both stores hold the same FINAL blocks with the same bits and
# no PENDING block.
same_stores() {
	local a b id
	a=$("$QKD" keys --store "$D/alice.db" --json | jq -c '[.blocks[] | {id, state, bits}]')
	b=$("$QKD" keys --store "$D/bob.db" --json | jq -c '[.blocks[] | {id, state, bits}]')
	[ "$a" = "$b" ] || { echo "lists differ: $a vs $b" >&2; return 1; }
	printf '%s' "$a" | jq -e 'all(.[]; .state != "pending")' >/dev/null || { echo "pending block" >&2; return 1; }
	for id in $(printf '%s' "$a" | jq -r '.[].id'); do
		[ "$("$QKD" keys --store "$D/alice.db" export "$id")" = "$("$QKD" keys --store "$D/bob.db" export "$id")" ] ||
			{ echo "block $id differs" >&2; return 1; }
	done
}
blocks() { "$QKD" keys --store "$D/$1.db" --json | jq '[.blocks[] | select(.state != "pending")] | length'; }

# --- a link distils key into both stores
start bob; start alice
check "link: 3 blocks stored within 60 s" wait_for bob stored_blocks 3 60
check "status: human report" "$QKD" status --node "$D/bob.sock"
check_match "status: names the link and the QBER" "$OUT" "link ab \(bob\).*"
check_match "status: QBER line" "$OUT" "QBER [0-9.]+ %, key rate"
S=$(status_json alice)
check "status: QBER near the model (1 km, e_opt 1 %)" \
	awk -v q="$(printf '%s' "$S" | jq .links[0].qber)" 'BEGIN { exit !(q > 0.005 && q < 0.02) }'
check_eq "status: QBER counted by error correction" "$(printf '%s' "$S" | jq -r .links[0].qber_source)" corrected
check "status: authentication key replenished" \
	awk -v r="$(printf '%s' "$S" | jq .links[0].auth_bits_replenished)" 'BEGIN { exit !(r > 262144 * 8) }'
check_eq "status: no tag failed" "$(printf '%s' "$S" | jq .links[0].tags_failed)" 0
stop alice; check_eq "SIGTERM: alice exits 0" "$STOP_RC" 0
stop bob; check_eq "SIGTERM: bob exits 0" "$STOP_RC" 0
check "stores identical after a run" same_stores
check_match "log lines have a timestamp and a level" "$(head -n 1 "$D/alice.log")" \
	'^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (info|warn|error|debug) '
check "no key bits in the logs" bash -c "! grep -qiE '[0-9a-f]{32}' '$D/alice.log' '$D/bob.log'"
check "auth state files are private" bash -c "[ \"\$(stat -c %a '$D/alice.db.auth')\" = 600 ]"

# --- restart: the link goes on from where it was
n0=$(blocks bob)
start bob; start alice
check "restart: 2 more blocks" wait_for bob stored_blocks $((n0 + 2)) 60
stop alice; stop bob
check "stores identical after a restart" same_stores

# --- Eve on the fiber: intercept-resend raises the QBER by about F/4
mkconf alice "$D/alice-eve.conf" "$CP" "$EP"
eve_run() {	# attack: run nodes through qkd eve for a while
	(exec "$QKD" eve --listen "127.0.0.1:$EP" --forward "127.0.0.1:$FP" --attack "$1" \
		2>>"$D/eve.log") &
	EVE=$!; PIDS+=("$EVE")
	check "qkd eve $1 listens" wait_listen "$EP"
	start bob; start alice "$D/alice-eve.conf"
}
eve_stop() { stop alice; stop bob; kill -TERM "$EVE"; wait "$EVE"; EVE_RC=$?; }
eve_run intercept-resend:0.2
check "IR 0.2: rounds run" wait_for bob rounds_ok 2 60
q=$(field bob qber)
check "IR 0.2: QBER about 1 % + 5 % ($q)" awk -v q="$q" 'BEGIN { exit !(q > 0.045 && q < 0.08) }'
b1=$(field bob last_block_bits)
eve_stop
check_eq "qkd eve: exits 0 on SIGTERM" "$EVE_RC" 0
check "IR 0.2: the key is cut (block $b1 bits < 250000)" test "$b1" -lt 250000
check "stores identical after IR 0.2" same_stores
n1=$(blocks bob)
eve_run intercept-resend:1
check "IR 1: eavesdropping suspected" wait_true bob eavesdropping_suspected 60
check "IR 1: QBER near 25 % ($(field bob qber))" awk -v q="$(field bob qber)" 'BEGIN { exit !(q > 0.18 && q < 0.32) }'
# The rounds abort on their sample: the status says the QBER is the sample's.
check_eq "IR 1: QBER from the sample" "$(field bob qber_source)" sample
check "IR 1: status human names the sample" "$QKD" status --node "$D/bob.sock"
check_match "IR 1: status human: QBER (sample)" "$OUT" 'QBER [0-9.]+ % \(sample\), key rate'
eve_stop
check_eq "IR 1: no block stored" "$(blocks bob)" "$n1"
check "stores identical after IR 1" same_stores

# wait_tags_failed SECONDS: until either end counts a failed tag (bounded).
wait_tags_failed() {
	local i
	for i in $(seq 1 $(($1 * 5))); do
		[ "$(($(field alice tags_failed) + $(field bob tags_failed)))" -gt 0 ] 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}

# --- a man in the middle of the classical channel: no key accepted, no crash
mkconf bob "$D/bob-mitm.conf" "$MP" "$FP"
for mode in flip drop replay reorder; do
	(exec "$MITM" "$MP" "$CP" "$mode" 40 >>"$D/mitm.log" 2>&1) &
	M=$!; PIDS+=("$M")
	check "mitm $mode listens" wait_listen "$MP"
	n2=$(blocks bob)
	start alice; start bob "$D/bob-mitm.conf"
	check "mitm $mode: rounds fail" wait_for bob rounds_failed 1 45
	check "mitm $mode: alice alive" kill -0 "$PID_alice"
	check "mitm $mode: bob alive" kill -0 "$PID_bob"
	# A flipped bit fails its batch's tag, or makes a message malformed; the
	# end that meets that reads on to the peer's AUTH frame, which then
	# fails: tags_failed either way, within a few rounds.
	[ "$mode" = flip ] && check "mitm flip: tags failed reported" wait_tags_failed 45
	stop alice; check_eq "mitm $mode: alice stops cleanly" "$STOP_RC" 0
	stop bob; check_eq "mitm $mode: bob stops cleanly" "$STOP_RC" 0
	kill -TERM "$M"; wait "$M"
	check_eq "mitm $mode: no block accepted" "$(blocks bob)" "$n2"
	check "mitm $mode: stores identical" same_stores
done
check_eq "mitm touched frames in every mode" "$(grep -cE '[1-9][0-9]* touched' "$D/mitm.log")" 4

# --- a man in the middle who moves each SYNC's AUTH index 2^20 ahead (the
# jump that once burned a link's pads): the gate refuses every connection,
# no pad moves, and the link comes back once he is gone.
(exec "$MITM" "$MP" "$CP" sync 1 >>"$D/mitm.log" 2>&1) &
M=$!; PIDS+=("$M")
check "mitm sync listens" wait_listen "$MP"
n2=$(blocks bob)
start alice; start bob "$D/bob-mitm.conf"
check "mitm sync: alice refuses the tampered SYNCs" wait_for alice strangers_refused 2 30
left_a=$(field alice auth_bits_left); left_b=$(field bob auth_bits_left)
sleep 3
check_eq "mitm sync: no pad moves at alice" "$(field alice auth_bits_left)" "$left_a"
check_eq "mitm sync: no pad moves at bob" "$(field bob auth_bits_left)" "$left_b"
check_eq "mitm sync: no tag failed" "$(($(field alice tags_failed) + $(field bob tags_failed)))" 0
check "mitm sync: alice alive" kill -0 "$PID_alice"
check "mitm sync: bob alive" kill -0 "$PID_bob"
stop bob; check_eq "mitm sync: bob stops cleanly" "$STOP_RC" 0
kill -TERM "$M"; wait "$M"
check "mitm sync: it touched SYNCs" grep -qE 'sync every 1: [0-9]+ frames seen, [1-9][0-9]* touched' "$D/mitm.log"
check_eq "mitm sync: no block accepted" "$(blocks bob)" "$n2"
start bob
check "mitm sync: without him the link distils again" wait_for bob stored_blocks $((n2 + 2)) 60
stop alice; stop bob
check "mitm sync: stores identical" same_stores

# --- node ids: Bob's link expects "carol", and then two nodes with one id:
# refused in the handshake with a line naming the ids, no block, no crash.
sed 's/name = "ab"; role = "bob";/name = "ab"; peer = "carol"; role = "bob";/' "$D/bob.conf" >"$D/bob-carol.conf"
check "node ids: bob-carol.conf names a peer" grep -q 'peer = "carol"' "$D/bob-carol.conf"
n2=$(blocks bob)
start alice; start bob "$D/bob-carol.conf"
check "node ids: bob refuses alice, naming both" wait_log bob "the far end is node 'alice', but the link's peer is 'carol'" 30
check_eq "node ids: status shows this node's id" "$(status_json bob | jq -r .id)" bob
check "node ids: alice alive" kill -0 "$PID_alice"
check "node ids: bob alive" kill -0 "$PID_bob"
stop alice; stop bob
check_eq "node ids: no block accepted" "$(blocks bob)" "$n2"
for r in alice bob; do
	sed 's/^node = { name = "'$r'";/node = { name = "'$r'"; id = "same";/' "$D/$r.conf" >"$D/$r-same.conf"
done
check "node ids: both configurations say id same" grep -q 'id = "same"' "$D/alice-same.conf" "$D/bob-same.conf"
start alice "$D/alice-same.conf"; start bob "$D/bob-same.conf"
check "node ids: two nodes with one id refused" wait_log alice "this node's own (two nodes with one node.id?)" 30
stop alice; stop bob
check_eq "node ids: still no block" "$(blocks bob)" "$n2"
start alice; start bob
check "node ids: with their own ids the link distils" wait_for bob stored_blocks $((n2 + 1)) 60
check_eq "node ids: alice sees bob as the far end" "$(field alice peer_id)" bob
stop alice; stop bob

# --- kill -9 at random moments, then restart: the stores stay identical
start bob; start alice
for i in 1 2 3 4 5 6; do
	sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.3 + (r % 250) / 100 }')"
	who=$([ $((i % 2)) = 0 ] && echo alice || echo bob)
	pid=$(eval "echo \$PID_$who")
	kill -9 "$pid"; wait "$pid" 2>/dev/null
	start "$who"
done
n3=$(blocks bob)
check "after the crashes: the link goes on" wait_for bob stored_blocks $((n3 + 2)) 90
stop alice; stop bob
check "crash-restart: stores identical, nothing pending" same_stores
check "crash-restart: alice's store consistent" "$QKD" keys --store "$D/alice.db"

# --- a long run stays at flat memory
start bob; start alice
wait_for bob stored_blocks $(($(blocks bob) + 2)) 60
rss() { ps -o rss= -p "$(eval "echo \$PID_$1")" | tr -d ' '; }
a0=$(rss alice); b0=$(rss bob)
for i in $(seq 1 25); do sleep 1; done
a1=$(rss alice); b1=$(rss bob)
check "long run: alice's memory flat ($a0 -> $a1 KiB)" awk -v a="$a0" -v b="$a1" 'BEGIN { exit !(a > 0 && b > 0 && b < a * 1.2 + 4096) }'
check "long run: bob's memory flat ($b0 -> $b1 KiB)" awk -v a="$b0" -v b="$b1" 'BEGIN { exit !(a > 0 && b > 0 && b < a * 1.2 + 4096) }'
stop alice; stop bob
check "long run: stores identical" same_stores

# --- an authentication reserve the pool never reaches: the alarm, and one
# warning that names the remedy (fresh stores, the same link otherwise)
for r in alice bob; do
	sed "s/$r.db/${r}_low.db/; s/status = \"$r.sock\"/status = \"${r}_low.sock\"/;
		s/auth_reserve_bits = [0-9]*/auth_reserve_bits = 67108864/" "$D/$r.conf" >"$D/${r}_low.conf"
	start "$r" "$D/${r}_low.conf"
done
check "auth_low: the alarm is raised" wait_json bob_low '.auth_low == true' 20
check_match "auth_low: qkd status says so" "$("$QKD" status --node "$D/bob_low.sock")" \
	"AUTHENTICATION KEY LOW"
stop alice; stop bob
check_eq "auth_low: one warning, naming the remedy" \
	"$(grep -c 'authentication key low: .*Raise round_pulses' "$D/bob.log")" 1

# --- bad configurations: file and line named, non-zero exit
sed 's/ab.key/missing.key/' "$D/alice.conf" >"$D/nokey.conf"
check_exit "missing key file" 2 "$QKD" node --config "$D/nokey.conf"
check_match "missing key file: names file and line" "$ERR" "nokey.conf:[0-9]+: .*missing.key"
sed 's/classical = /ec_typo = 1; classical = /' "$D/alice.conf" >"$D/typo.conf"
check_exit "unknown key" 2 "$QKD" node --config "$D/typo.conf"
check_match "unknown key: names file and line" "$ERR" "typo.conf:[0-9]+:"
sed 's/optical = {/protocol = { ec = "ldpc-magic"; }; optical = {/' "$D/alice.conf" >"$D/ec.conf"
check_exit "unknown code" 2 "$QKD" node --config "$D/ec.conf"
check_match "unknown code: says so" "$ERR" "ec.conf:[0-9]+:.*ldpc-magic"
start alice
sleep 1
sed 's/status = "alice.sock"/status = "alice2.sock"/; s/alice.db/alice2.db/' "$D/alice.conf" >"$D/busy.conf"
check_exit "port in use" 1 "$QKD" node --config "$D/busy.conf"
check_match "port in use: names the config, the link and the address" "$ERR" \
	"busy.conf:[0-9]+: link ab: 127.0.0.1:$CP: Address already in use"
stop alice
check_exit "no --config" 2 "$QKD" node
check_exit "status of no node" 1 "$QKD" status --node "$D/nobody.sock"

finish
