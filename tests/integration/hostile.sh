#!/usr/bin/env bash
# tests/integration/hostile.sh - a node that runs for days: each hostile case
# of the issue "links that pay for their own authentication, and survive a
# hostile network and a failing disk", against two real `qkd node` daemons
# on loopback with their key managers. tests/tools/hostile plays the
# stranger. After each case the link must keep distilling, the nodes stay
# up, and both stores hold the same blocks (or the same quarantined ones).
#
#   1 SYNC attacks: a stranger's handshake asking for a 2^20 jump; Bob's
#     own key asking for more than a crash explains; a jump within bounds
#     whose first tag is wrong (one pad burned, nothing skipped)
#   2 stray connections and strangers sitting in the accept queue, then a
#     plain restart of Bob
#   3 a flipped bit in a stopped store: quarantined at both ends
#   4 idle connections flooding the key manager
#   5 stores with a past: emptied, missing, older; two nodes on one store
#   6 a full disk, a read-only disk, an immutable store (root only: a tmpfs
#     in a mount namespace of the test's own)
#   7 keys whose enc_keys gave up are withdrawn at the peer
#   8 a link that runs out of authentication key stays down, with its
#     alarm; the nodes and their key managers go on
#
# Usage (from the top of the tree): QKD=build/qkd tests/integration/hostile.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/../cli/lib.sh"
# shellcheck source=tests/integration/lib_nodes.sh
. "$(dirname "$0")/lib_nodes.sh"

TOP=$(cd "$(dirname "$0")/../.." && pwd)
QKD=${QKD:-build/qkd}
QKD=$(cd "$(dirname "$QKD")" && pwd)/$(basename "$QKD")
HOSTILE=${HOSTILE:-$(dirname "$QKD")/tests/tools/hostile}
D=$CLI_TMP
P=$D/pki
PIDS=()
NS=
# After the processes (tests/cli/lib.sh's cli_cleanup): the namespace that
# holds the full disk, and the immutable bits set on it.
# shellcheck disable=SC2317  # called by the EXIT trap
cli_cleanup_hook() {
	[ -n "$NS" ] && nsenter -t "$NS" -m chattr -i "$D/disk" "$D/disk/bob.db" 2>/dev/null
	[ -n "$NS" ] && kill -9 "$NS" 2>/dev/null
}

CP=$(free_port); FP=$(free_port "$CP"); KA=$(free_port "$CP" "$FP")
KB=$(free_port "$CP" "$FP" "$KA")
check "test PKI written" "$TOP/examples/make-test-pki.sh" "$P" SAE_A SAE_B

# mkconf NAME ROLE STORE STATUS KME_PORT KME_ID LOCAL REMOTE PEER_KME: one
# node on the fast test link of node.sh, with its key manager. LINK (env)
# replaces the link's sizing and protocol settings.
mkconf() {
	cat >"$D/$1.conf" <<EOF
node = { name = "$1"; status = "$4"; log_level = "info"; };
links = ( {
  name = "ab"; role = "$2";
  classical = "127.0.0.1:$CP"; fiber = "127.0.0.1:$FP";
  store = "$3"; auth_key = "${KEY:-ab.key}";
  ${LINK:-auth_reserve_bits = 1048576; round_pulses = 20000000;}
  optical = { distance_km = 1.0; detector_efficiency = 0.5; };
} );
kme = {
  id = "$6"; listen = "127.0.0.1:$5";
  cert = "pki/server.pem"; key = "pki/server.key"; ca = "pki/ca.pem";
  key_size = 256; sync_timeout = 2;
  saes = ( { id = "$7"; }, { id = "$8"; link = "ab"; kme = "$9"; } );
};
EOF
}
head -c 65536 /dev/urandom >"$D/ab.key"
mkconf alice alice alice.db alice.sock "$KA" KME_A SAE_A SAE_B KME_B
mkconf bob bob bob.db bob.sock "$KB" KME_B SAE_B SAE_A KME_A

# req NODE WHO METHOD PATH: one request to node a or b as SAE WHO; sets
# CODE (000: no HTTP response) and RESP.
req() {
	local port=$KA
	[ "$1" = b ] && port=$KB
	rm -f "$D/resp"
	CODE=$(curl -sS --max-time 10 --cacert "$P/ca.pem" --cert "$P/$2.pem" --key "$P/$2.key" \
		-X "$3" -o "$D/resp" -w '%{http_code}' "https://127.0.0.1:$port/api/v1/keys$4" \
		2>"$D/curl.err")
	RESP=$(cat "$D/resp" 2>/dev/null)
}
blocks() { field "$1" stored_blocks; }
# more_blocks NODE N SECONDS: N more blocks than now within SECONDS.
more_blocks() { wait_for "$1" stored_blocks $(($(blocks "$1") + $2)) "$3"; }
# same_stores: the same blocks (id, state, length) at both ends, the same
# bits in every final one, nothing pending.
same_stores() {
	local a b id
	a=$("$QKD" keys --store "$D/alice.db" --json | jq -c '[.blocks[] | {id, state, bits}]')
	b=$("$QKD" keys --store "$(bob_store)" --json | jq -c '[.blocks[] | {id, state, bits}]')
	[ "$a" = "$b" ] || { echo "lists differ: $a vs $b" >&2; return 1; }
	printf '%s' "$a" | jq -e 'all(.[]; .state != "pending")' >/dev/null || return 1
	for id in $(printf '%s' "$a" | jq -r '.[] | select(.state == "final") | .id'); do
		[ "$("$QKD" keys --store "$D/alice.db" export "$id")" = \
		  "$("$QKD" keys --store "$(bob_store)" export "$id")" ] ||
			{ echo "block $id differs" >&2; return 1; }
	done
}
BOB_STORE=$D/bob.db
bob_store() { echo "$BOB_STORE"; }
alive() { kill -0 "$(eval "echo \$PID_$1")" 2>/dev/null; }
auth_sum() { sha256sum "$1" | cut -d' ' -f1; }

start bob; start alice
check "link: 2 blocks within 60 s" wait_for bob stored_blocks 2 60
check "key managers listen" wait_listen "$KA"

# --- 1. SYNC: a stranger, Bob's key with a jump, a wrong first tag --------
stop bob
check_eq "bob stopped cleanly" "$STOP_RC" 0
SUM=$(auth_sum "$D/alice.db.auth"); LEFT=$(field alice auth_bits_left)
OUT=$("$HOSTILE" sync --connect "127.0.0.1:$CP" --jump 1048576)
check_match "sync stranger: Alice answers HELLO, not its SYNC" "$OUT" "answered HELLO$"
check "sync stranger: Alice alive" alive alice
check "sync stranger: counted" wait_for alice strangers_refused 1 5
check_eq "sync stranger: Alice's auth state untouched" "$(auth_sum "$D/alice.db.auth")" "$SUM"
check_match "sync stranger: logged" "$(cat "$D/alice.log")" "refused at the handshake: the peer failed the gate"
OUT=$("$HOSTILE" sync --config "$D/bob.conf" --jump 200 2>&1)
check_match "sync jump 200 with Bob's key: refused" "$OUT" "handshake refused"
check_match "sync jump 200: Alice says why" "$(cat "$D/alice.log")" "skip more authentication pads"
check_eq "sync jump 200: Alice's auth state untouched" "$(auth_sum "$D/alice.db.auth")" "$SUM"
OUT=$("$HOSTILE" sync --config "$D/bob.conf" --jump 5 --bad-tag 2>&1)
check_match "sync jump 5, wrong tag: Alice hangs up" "$OUT" "closed"
check "sync jump 5, wrong tag: counted as a failed tag" wait_for alice tags_failed 1 5
check_eq "sync jump 5, wrong tag: one pad burned, nothing skipped" \
	"$((LEFT - $(field alice auth_bits_left)))" 64
check "sync: Alice never exhausted" [ "$(field alice auth_exhausted)" = false ]
check "sync: no exhaustion in the log" bash -c "! grep -q exhausted '$D/alice.log'"
start bob
check "sync: Bob reconnects and the link distils" more_blocks bob 2 60
check "sync: Alice alive" alive alice

# --- 2. stray connections and a queue of strangers, then a restart ------------
stop bob
OUT=$("$HOSTILE" stray --connect "127.0.0.1:$CP" --count 5)
check_match "stray: 5 connect-and-close at Alice's port" "$OUT" "connected 5"
"$HOSTILE" stray --connect "127.0.0.1:$CP" --count 3 --garbage >/dev/null
("$HOSTILE" idle --connect "127.0.0.1:$CP" --source 127.0.0.2 --conns 3 --seconds 20 \
	>"$D/idle.out" 2>&1) &
IDLE=$!; PIDS+=("$IDLE")
sleep 1
T0=$(date +%s)
start bob
"$HOSTILE" stray --connect "127.0.0.1:$FP" --count 3 --garbage >/dev/null 2>&1
check "stray: the link distils again within 30 s" more_blocks bob 1 30
check "stray: first block $(( $(date +%s) - T0 )) s after the restart" \
	[ $(( $(date +%s) - T0 )) -le 30 ]
wait "$IDLE"
check_match "stray: the strangers sat in the queue" "$(cat "$D/idle.out")" "opened [1-9]"
check "stray: counted at Alice" [ "$(field alice strangers_refused)" -gt 1 ]
check "stray: the link keeps distilling" more_blocks bob 1 30
stop alice; stop bob
check "stray: stores identical" same_stores

# --- 3. bit rot in a stopped store --------------------------------------------
ROT=$("$QKD" keys --store "$D/alice.db" --json |
	jq -r '[.blocks[] | select(.state == "final" and .id % 2 == 0)][0].id')
check "rot: a final block of Alice's half to spoil ($ROT)" [ "$ROT" != null ]
check_match "rot: hostile flips a bit" "$("$HOSTILE" rot --store "$D/alice.db" --block "$ROT")" \
	"block $ROT byte"
check_exit "rot: qkd keys check finds it" 1 "$QKD" keys --store "$D/alice.db" check
check_match "rot: names the block" "$OUT" "$ROT"
check_exit "rot: Bob's copy is fine" 0 "$QKD" keys --store "$D/bob.db" check
start bob; start alice
check "rot: Alice quarantines it at start" wait_for alice blocks_quarantined 1 20
check "rot: Bob retires it too" wait_for bob blocks_quarantined 1 30
check_match "rot: logged loudly at Alice" "$(cat "$D/alice.log")" "failed their digests"
check_match "rot: logged at Bob" "$(cat "$D/bob.log")" "block $ROT quarantined at the peer"
check_match "rot: qkd status shows it" "$("$QKD" status --node "$D/alice.sock")" "QUARANTINED"
check "rot: the link keeps distilling" more_blocks bob 2 60
stop alice; stop bob
check "rot: stores identical, the same quarantined block" same_stores
check_eq "rot: quarantined at both ends" \
	"$("$QKD" keys --store "$D/alice.db" --json | jq -r ".blocks[] | select(.id == $ROT) | .state")$( \
	"$QKD" keys --store "$D/bob.db" --json | jq -r ".blocks[] | select(.id == $ROT) | .state")" \
	quarantinedquarantined
check_exit "rot: never served (export)" 1 "$QKD" keys --store "$D/bob.db" export "$ROT"

# --- 4. a flood of idle connections on the key manager ----------------------
start bob; start alice
check "flood: key manager up" wait_listen "$KA"
L0=$(wc -l <"$D/alice.log")
("$HOSTILE" kme-idle --connect "127.0.0.1:$KA" --source 127.0.0.2 --conns 64 --seconds 20 \
	>"$D/flood.out" 2>&1) &
FLOOD=$!; PIDS+=("$FLOOD")
sleep 2
ok=0; n=0
for i in $(seq 1 30); do
	req a SAE_A GET /SAE_B/status
	n=$((n + 1)); [ "$CODE" = 200 ] && ok=$((ok + 1))
	sleep 0.4
done
wait "$FLOOD"
check "flood: $ok of $n requests served (at least 90 %)" [ $((ok * 10)) -ge $((n * 9)) ]
check_match "flood: the stranger held its connections" "$(cat "$D/flood.out")" "opened [1-9]"
check "flood: the log stays small ($(( $(wc -l <"$D/alice.log") - L0 )) lines)" \
	[ $(( $(wc -l <"$D/alice.log") - L0 )) -lt 300 ]
check "flood: the link keeps distilling" more_blocks bob 1 30

# --- 7. keys whose enc_keys gave up are withdrawn --------------------------------
# Alice stops answering; Bob's enc_keys waits sync_timeout (2 s), answers
# 503 and abandons its keys; once Alice is back they are withdrawn there.
W0=$(field alice kme_withdrawn); R0=$(field alice kme_ready)
kill -STOP "$PID_alice"
req b SAE_B GET "/SAE_A/enc_keys?number=4"
check_eq "withdraw: enc_keys at Bob gives up (503)" "$CODE" 503
kill -CONT "$PID_alice"
check "withdraw: Bob's outbox empties" wait_json bob '.kme_outbox == 0 and .kme_abandoned == 0' 40
check "withdraw: Alice holds 4 withdrawn keys" wait_for alice kme_withdrawn $((W0 + 4)) 20
check_eq "withdraw: none of them ready at Alice" "$(field alice kme_ready)" "$R0"
check "withdraw: the link keeps distilling" more_blocks bob 1 60
stop alice; stop bob
check "flood and withdraw: stores identical" same_stores

# --- 5. stores with a past -------------------------------------------------------
cp "$D/bob.db" "$D/bob.db.bak"; cp "$D/bob.db.auth" "$D/bob.db.auth.bak"
: >"$D/bob.db"
check_exit "past: an emptied store is refused" 1 "$QKD" node --config "$D/bob.conf"
check_match "past: emptied: says what to do" "$ERR" "missing or empty.*start the link over"
rm -f "$D/bob.db"
check_exit "past: a missing store is refused" 1 "$QKD" node --config "$D/bob.conf"
check "past: and not made anew" [ ! -e "$D/bob.db" ]
cp "$D/bob.db.bak" "$D/bob.db"
start bob; start alice
check "past: the store put back: the link distils" more_blocks bob 2 60
mkconf bob2 bob bob.db bob2.sock "$(free_port "$CP" "$FP" "$KA" "$KB")" KME_B SAE_B SAE_A KME_A
sed -i "s/127.0.0.1:$FP/127.0.0.1:$(free_port "$CP" "$FP" "$KA" "$KB")/" "$D/bob2.conf"
check_exit "past: a second node on the store is refused" 1 "$QKD" node --config "$D/bob2.conf"
check_match "past: second node: in use" "$ERR" "in use by another qkd node"
stop alice; stop bob
cp "$D/bob.db.auth" "$D/bob.db.auth.now"
cp "$D/bob.db.auth.bak" "$D/bob.db.auth"
check_exit "past: an older auth state is refused" 1 "$QKD" node --config "$D/bob.conf"
check_match "past: older auth state: says why" "$ERR" "older than the key store"
cp "$D/bob.db.auth.now" "$D/bob.db.auth"
start bob; start alice
check "past: all put back: the link distils" more_blocks bob 1 60
stop alice; stop bob
check "past: stores identical" same_stores

# --- 6. a full disk, a read-only disk, an immutable store ---------------------
# Bob's store on a small tmpfs in a mount namespace of the test's own, kept
# by a holder process so that Bob can be restarted in it. Root only.
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
	mkdir -p "$D/disk"
	unshare -m --propagation private sleep 900 &
	NS=$!
	for i in $(seq 1 50); do
		[ "$(readlink "/proc/$NS/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] && break
		sleep 0.1
	done
	in_ns() { nsenter -t "$NS" -m "$@"; }
	check "disk: a 64 MiB tmpfs for Bob's store" in_ns mount -t tmpfs -o size=64m tmpfs "$D/disk"
	echo "# Bob's store: $(stat -c %s "$D/bob.db") bytes, STORE.auth $(stat -c %s "$D/bob.db.auth")"
	check "disk: the store moved there" in_ns cp "$D/bob.db" "$D/bob.db.auth" "$D/disk/"
	mkconf bob-disk bob disk/bob.db bob.sock "$KB" KME_B SAE_B SAE_A KME_A
	start_bob_ns() {
		(cd "$D" && exec nsenter -t "$NS" -m "$QKD" node --config "$D/bob-disk.conf" \
			2>>"$D/bob.log") &
		PID_bob=$!
		PIDS+=("$PID_bob")
	}
	L0=$(wc -l <"$D/bob.log")
	start_bob_ns; start alice
	check "disk: the link distils" more_blocks bob 1 60
	# full
	in_ns sh -c "cat /dev/zero > '$D/disk/fill'" 2>/dev/null
	check "disk full: the link pauses with the alarm" wait_json bob '.disk_fault == true' 40
	check "disk full: Bob alive" alive bob
	check_match "disk full: the log names ENOSPC" "$(tail -n +"$L0" "$D/bob.log")" \
		"no space left on device"
	check_match "disk full: qkd status names it" "$("$QKD" status --node "$D/bob.sock")" \
		"DISK FAULT"
	req b SAE_B GET /SAE_A/status
	check_eq "disk full: the key manager still serves" "$CODE" 200
	stop bob
	check_eq "disk full: SIGTERM still stops Bob cleanly" "$STOP_RC" 0
	L1=$(wc -l <"$D/bob.log")
	start_bob_ns
	check "disk full: after a restart, paused again" wait_json bob '.disk_fault == true' 40
	check "disk full freed: resumes by itself" in_ns rm -f "$D/disk/fill"
	check "disk full freed: the alarm clears" wait_json bob '.disk_fault == false' 30
	check "disk full freed: the link distils" more_blocks bob 1 60
	check "disk full: no false authentication alarm after the restart" \
		bash -c "! tail -n +$L1 '$D/bob.log' | grep -q 'failed authentication'"
	check_eq "disk full: no tag failed" "$(field bob tags_failed)" 0
	# a read-only directory (chattr +i: not even root may add a file there,
	# so STORE.auth cannot be saved). A remount read-only is refused while
	# the node holds its files open for writing, as on any file system.
	check "disk read-only (chattr +i on the directory)" in_ns chattr +i "$D/disk"
	check "disk read-only: the link pauses" wait_json bob '.disk_fault == true' 40
	check_match "disk read-only: named" "$(field bob last_error)" "read-only"
	check "disk read-only: Bob alive" alive bob
	check "disk writable again" in_ns chattr -i "$D/disk"
	check "disk writable again: resumes" wait_json bob '.disk_fault == false' 30
	check "disk writable again: the link distils" more_blocks bob 1 60
	# immutable store file (chattr +i): no SIGBUS
	check "store immutable (chattr +i)" in_ns chattr +i "$D/disk/bob.db"
	check "store immutable: the link pauses" wait_json bob '.disk_fault == true' 40
	check "store immutable: Bob alive (no SIGBUS)" alive bob
	check "store writable again (chattr -i)" in_ns chattr -i "$D/disk/bob.db"
	check "store writable again: resumes" wait_json bob '.disk_fault == false' 30
	check "store writable again: the link distils" more_blocks bob 1 60
	stop alice; stop bob
	check_eq "disk: Bob stops cleanly" "$STOP_RC" 0
	check "disk: the store back out of the tmpfs" in_ns cp "$D/disk/bob.db" "$D/disk/bob.db.auth" "$D/"
	check "disk: stores identical" same_stores
	kill "$NS" 2>/dev/null; wait "$NS" 2>/dev/null; NS=
else
	cli_ok "disk faults: skipped (needs root and mount namespaces)"
fi

# --- 8. out of authentication key -----------------------------------------------
# A link of its own with a 4096-byte bootstrap key and a tiny reserve: a few
# rounds with key, an enc_keys, then rounds that all stop at the QBER
# sample (abort_qber 0.001), so nothing refills the pads they spend.
head -c 4096 /dev/urandom >"$D/x.key"
KEY=x.key LINK='auth_reserve_bits = 1024; round_pulses = 1000000;'
mkconf xa alice xa.db xa.sock "$KA" KME_A SAE_A SAE_B KME_B
mkconf xb bob xb.db xb.sock "$KB" KME_B SAE_B SAE_A KME_A
start xb; start xa
check "exhaust: the small link distils" wait_for xb stored_blocks 3 60
check "exhaust: key manager up" wait_listen "$KA"
req a SAE_A GET "/SAE_B/enc_keys?number=2"
check_eq "exhaust: keys for the SAEs" "$CODE" 200
XIDS=$(printf '%s' "$RESP" | jq -c '[.keys[] | {key_ID}]'); XKEYS=$(printf '%s' "$RESP" | jq -c '[.keys[].key]')
stop xa; stop xb
KEY=x.key LINK='auth_reserve_bits = 1024; round_pulses = 1000000; protocol = { abort_qber = 0.001; };'
mkconf xa alice xa.db xa.sock "$KA" KME_A SAE_A SAE_B KME_B
mkconf xb bob xb.db xb.sock "$KB" KME_B SAE_B SAE_A KME_A
start xb; start xa
check "exhaust: the alarm at Bob" wait_json xb '.auth_exhausted == true and .state == "down"' 120
check "exhaust: the alarm at Alice" wait_json xa '.auth_exhausted == true' 30
check "exhaust: Alice alive" alive xa
check "exhaust: Bob alive" alive xb
check_match "exhaust: qkd status says so" "$("$QKD" status --node "$D/xb.sock")" "EXHAUSTED"
check_match "exhaust: logged" "$(cat "$D/xb.log")" "authentication key exhausted: the link stays down"
rm -f "$D/resp"
CODE=$(curl -sS --max-time 10 --cacert "$P/ca.pem" --cert "$P/SAE_B.pem" --key "$P/SAE_B.key" \
	-X POST -H 'Content-Type: application/json' -d "{\"key_IDs\": $XIDS}" -o "$D/resp" \
	-w '%{http_code}' "https://127.0.0.1:$KB/api/v1/keys/SAE_A/dec_keys" 2>"$D/curl.err")
check_eq "exhaust: the key manager still serves stored keys" "$CODE" 200
check_eq "exhaust: the very same keys" "$(jq -c '[.keys[].key]' "$D/resp" 2>/dev/null)" "$XKEYS"
sleep 3
check "exhaust: still alive a while later" alive xb
stop xa; check_eq "exhaust: alice stops cleanly" "$STOP_RC" 0
stop xb; check_eq "exhaust: bob stops cleanly" "$STOP_RC" 0
unset KEY LINK

# --- the nodes never stopped on their own, and the link goes on ---------------
start bob; start alice
check "end: the link distils" more_blocks bob 1 60
stop alice; check_eq "end: alice stops cleanly" "$STOP_RC" 0
stop bob; check_eq "end: bob stops cleanly" "$STOP_RC" 0
check "end: stores identical" same_stores
finish
