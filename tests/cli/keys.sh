#!/usr/bin/env bash
# tests/cli/keys.sh - `qkd keys` (DESIGN.md section 6, docs/keystore.md).
# The stores are written by tests/tools/mkstore (the CLI cannot write
# blocks); mkstore prints, per block, "ID WRITTEN EXPORT": the bits it wrote
# and what `qkd keys export ID` must print. `hostile rot` flips a stored
# bit behind the store's back (for `check`), `--quarantine` quarantines a
# block as the peer's report would.
# Usage (from the top of the tree): QKD=build/qkd tests/cli/keys.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

QKD=${QKD:-build/qkd}
MKSTORE=${MKSTORE:-$(dirname "$QKD")/tests/tools/mkstore}
HOSTILE=${HOSTILE:-$(dirname "$QKD")/tests/tools/hostile}

if ! command -v jq >/dev/null; then
	echo "not ok - jq is installed"
	exit 1
fi
if [ ! -x "$MKSTORE" ]; then
	echo "not ok - $MKSTORE is built (make build)"
	exit 1
fi

# jq field from $OUT
j() { printf '%s' "$OUT" | jq -r "$1"; }

S=$CLI_TMP/link.db
check "mkstore writes a store" "$MKSTORE" "$S"
BLOCKS=$OUT
# field N (1 = id, 2 = written, 3 = export) of block ID in mkstore's output
blk() { printf '%s\n' "$BLOCKS" | awk -v id="$1" -v f="$2" '$1 == id { print $f }'; }
check_eq "mkstore described 5 blocks" "$(printf '%s\n' "$BLOCKS" | wc -l | tr -d ' ')" 5
check_eq "store file is mode 600" "$(stat -c %a "$S")" 600

# --- listing, human -------------------------------------------------------
check "list runs" "$QKD" keys --store "$S"
check_match "list: header" "$OUT" \
	"^key store .*link\.db: 5 blocks, 1845 bits, 1481 available$"
check_match "list: per state" "$OUT" \
	'^  pending 1 \(64 bits\), final 3 \(1525 bits\), used 1 \(256 bits\); 300 bits handed out$'
check_match "list: quarantine line" "$OUT" \
	'^  quarantined 0 \(0 bits\), 0 not yet reported to the peer$'
check_match "list: column titles" "$OUT" '^ +id +state +bits +consumed +created$'
check_match "list: used block 1" "$OUT" '^ +1 +used +256 +256 +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} UTC$'
check_match "list: block 2 partly consumed" "$OUT" '^ +2 +final +1001 +44 '
check_match "list: pending block 5" "$OUT" '^ +5 +pending +64 +0 '
check_match "list: block 9" "$OUT" '^ +9 +final +512 +0 '
check_match "list: key manager line" "$OUT" \
	'key manager: 0 keys issued here awaiting the peer \(0 abandoned\), 0 ready for their slave SAE, 0 delivered, 0 refused, 0 withdrawn, 0 quarantined$'
check_match "list: large id" "$OUT" '^ +1000000000000 +final +12 +0 '
check_match "list: key lifecycle line" "$OUT" \
	'key lifecycle: 0 expired unfetched, 0 bits lost, 0 tombstones pruned$'
check_eq "list: ids in order" "$(printf '%s\n' "$OUT" | awk 'NR > 6 { print $1 }' | tr '\n' ' ')" \
	"1 2 5 9 1000000000000 "
check_eq "list: nothing on stderr" "$ERR" ""
for id in 1 2 5 9 1000000000000; do
	if printf '%s\n' "$OUT" | grep -qF "$(blk "$id" 2)"; then
		cli_not_ok "list: no key bits of block $id"
	else
		cli_ok "list: no key bits of block $id"
	fi
done

# --- listing, JSON --------------------------------------------------------
check "json runs" "$QKD" keys --store "$S" --json
check_eq "json: exactly one object" "$(printf '%s' "$OUT" | jq -s 'length')" 1
check_eq "json: top-level fields" \
	"$(j '[has("store","count","total_bits","available_bits","consumed_bits","quarantine_unreported","states","kme","blocks")] | all')" true
check_eq "json: count" "$(j .count)" 5
check_eq "json: total_bits" "$(j .total_bits)" 1845
check_eq "json: available_bits" "$(j .available_bits)" 1481
check_eq "json: consumed_bits" "$(j .consumed_bits)" 300
check_eq "json: store path" "$(j .store)" "$S"
check_eq "json: states" "$(j '[.states.pending.count, .states.pending.bits, .states.final.count,
	.states.final.bits, .states.used.count, .states.used.bits, .states.quarantined.count,
	.states.quarantined.bits] | map(tostring) | join(" ")')" \
	"1 64 3 1525 1 256 0 0"
check_eq "json: kme fields" "$(j '.kme | keys | join(" ")')" \
	"abandoned delivered expired lost_bits outbox pruned quarantined ready refused withdrawn"
check_eq "json: block ids" "$(j '[.blocks[].id] | map(tostring) | join(" ")')" "1 2 5 9 1000000000000"
check_eq "json: block states" "$(j '[.blocks[].state] | join(" ")')" "used final pending final final"
check_eq "json: block lengths" "$(j '[.blocks[].bits] | map(tostring) | join(" ")')" "256 1001 64 512 12"
check_eq "json: consumed" "$(j '[.blocks[].consumed] | map(tostring) | join(" ")')" "256 44 0 0 0"
NOW=$(date +%s)
check_eq "json: created is a recent unix time" \
	"$(printf '%s' "$OUT" | jq --argjson now "$NOW" '[.blocks[].created | . > 1600000000 and . <= $now + 5] | all')" true
check_eq "json: block fields" "$(j '[.blocks[] | keys == ["bits","consumed","created","id","state"]] | all')" true
check_eq "json: no key bits" "$(printf '%s' "$OUT" | grep -cF "$(blk 9 2)")" 0

# --- export ---------------------------------------------------------------
for id in 2 5 9 1000000000000; do
	check "export $id runs" "$QKD" keys --store "$S" export "$id"
	check_eq "export $id: the expected hex" "$OUT" "$(blk "$id" 3)"
done
check "export 9 (option after the action)" "$QKD" keys export 9 --store "$S"
check_eq "export 9: equals what mkstore wrote" "$OUT" "$(blk 9 2)"
check_eq "export 9: 64 bytes, lowercase hex" "$(printf '%s' "$OUT" | grep -cE '^[0-9a-f]{128}$')" 1
check_eq "export 5 (pending): equals what mkstore wrote" "$(blk 5 3)" "$(blk 5 2)"
check "export 2 runs" "$QKD" keys --store "$S" export 2
check_eq "export 2: 1001 bits -> 126 bytes" "${#OUT}" 252
# bits 0..43: bytes 0..4 and the low nibble of byte 5 (its second digit)
W2=$(blk 2 2)
check_eq "export 2: handed-out bytes 0..4 print as zero" "${OUT:0:10}" "0000000000"
check_eq "export 2: handed-out bits 40..43 print as zero" "${OUT:11:1}" "0"
check_eq "export 2: bits 44..47 as written" "${OUT:10:1}" "${W2:10:1}"
check_eq "export 2: bytes 6.. as written" "${OUT:12}" "${W2:12}"
check_eq "export 2: nothing on stderr" "$ERR" ""
check "export of id 1e12 runs" "$QKD" keys --store "$S" export 1000000000000
check_eq "export 12 bits: two bytes, top 4 bits zero" "$(printf '%s' "$OUT" | grep -cE '^[0-9a-f]{2}0[0-9a-f]$')" 1

# --- empty store ----------------------------------------------------------
E=$CLI_TMP/empty.db
check "mkstore --empty" "$MKSTORE" --empty "$E"
check "empty: list runs" "$QKD" keys --store "$E"
check_match "empty: header" "$OUT" '^key store .*: 0 blocks, 0 bits, 0 available$'
check "empty: json runs" "$QKD" keys --store "$E" --json
check_eq "empty: json blocks" "$(j '.blocks | length')" 0
check_eq "empty: json count" "$(j .count)" 0

# --- check ----------------------------------------------------------------
check "check runs" "$QKD" keys --store "$S" check
check_match "check: summary" "$OUT" \
	"^key store .*link\.db: 4 blocks \(4 chunks\) and 0 ready keys read: 0 blocks and 0 keys fail their digests; 0 blocks and 0 keys quarantined before$"
check_match "check: invariants" "$OUT" '^  invariants: ok$'
check_eq "check: two lines" "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" 2
check_eq "check: nothing on stderr" "$ERR" ""
check "check --json runs" "$QKD" keys --store "$S" check --json
check_eq "check json: ok" "$(j '[.ok, .blocks, .chunks, .keys, .bad_blocks, .bad_keys, .invariants,
	(.bad | length)] | map(tostring) | join(" ")')" "true 4 4 0 0 0 ok 0"

R=$CLI_TMP/rot.db
"$MKSTORE" "$R" >/dev/null
check "hostile rot flips a bit of block 9" "$HOSTILE" rot --store "$R" --block 9
check_exit "check: bit rot found" 1 "$QKD" keys --store "$R" check
check_match "check: one line for block 9" "$OUT" \
	'^block 9: bits fail their digest \(chunk 0 of 1, bytes 0\.\.511\)$'
check_match "check: summary counts it" "$OUT" ': 1 blocks and 0 keys fail their digests;'
check_eq "check: the error on stderr" "$ERR" "qkd: $R: 1 blocks and 0 keys fail their digests"
check_exit "check --json: bit rot found" 1 "$QKD" keys --store "$R" check --json
check_eq "check json: the bad block" "$(j '[.ok, .bad_blocks, .bad[0].kind, .bad[0].id, .bad[0].chunk,
	.bad[0].chunks] | map(tostring) | join(" ")')" "false 1 block 9 0 1"
check_exit "export of a rotten block" 1 "$QKD" keys --store "$R" export 9
check_match "export of a rotten block: the reason" "$ERR" \
	"^qkd: $R: block 9: stored bits failed their digest \(chunk 0 of 1, bytes 0\.\.511\)$"
check_eq "export of a rotten block: no bits out" "$OUT" ""
check "list after check and export" "$QKD" keys --store "$R" --json
check_eq "check and export changed nothing (read-only)" \
	"$(j '[.blocks[] | select(.id == 9) | .state] | join(" ")')" "final"
check "export of a sound block beside it" "$QKD" keys --store "$R" export 2
check_eq "export of a sound block beside it: the bits" "$OUT" "$(blk 2 3)"

check "mkstore --quarantine 9" "$MKSTORE" --quarantine "$R" 9
check "list shows the quarantine" "$QKD" keys --store "$R"
check_match "list: block 9 quarantined" "$OUT" '^ +9 +quarantined +512 +0 '
check_match "list: quarantine counts" "$OUT" '^  quarantined 1 \(512 bits\), 0 not yet reported to the peer$'
check "json shows the quarantine" "$QKD" keys --store "$R" --json
check_eq "json: quarantined state" "$(j '[.states.quarantined.count, .states.quarantined.bits,
	.available_bits] | map(tostring) | join(" ")')" "1 512 969"
check_exit "export of a quarantined block" 1 "$QKD" keys --store "$R" export 9
check_eq "export of a quarantined block: message" "$ERR" \
	"qkd: $R: block 9 is quarantined: its bits failed their digest and were deleted"
check "check after the quarantine" "$QKD" keys --store "$R" check
check_match "check: the quarantined block counted, not read" "$OUT" \
	': 3 blocks \(3 chunks\) and 0 ready keys read: 0 blocks and 0 keys fail their digests; 1 blocks and 0 keys quarantined before$'
check_exit "check: a stray argument" 2 "$QKD" keys --store "$S" check 9
check_eq "check: a stray argument: message" "$ERR" "qkd: keys: unexpected argument '9'"

# --- help -----------------------------------------------------------------
check "--help exits 0" "$QKD" keys --help
check_match "--help prints usage on stdout" "$OUT" '^usage: qkd keys --store PATH'
check_match "--help names check" "$OUT" 'qkd keys --store PATH check \[--json\]'
check_eq "--help: nothing on stderr" "$ERR" ""

# --- usage errors: exit 2 -------------------------------------------------
check_exit "no arguments" 2 "$QKD" keys
check_eq "missing --store: message" "$ERR" "qkd: keys: missing --store (see 'qkd keys --help')"
check_eq "usage error: nothing on stdout" "$OUT" ""
check_exit "missing --store with export" 2 "$QKD" keys export 9
check_exit "unknown option" 2 "$QKD" keys --store "$S" --frobnicate
check_eq "unknown option: message" "$ERR" "qkd: keys: unknown option '--frobnicate'"
check_exit "--store without value" 2 "$QKD" keys --store
check_eq "--store without value: message" "$ERR" "qkd: keys: option '--store' needs a value"
check_exit "--store empty" 2 "$QKD" keys --store=
check_exit "--store twice" 2 "$QKD" keys --store "$S" --store "$S"
check_exit "unknown action" 2 "$QKD" keys --store "$S" frob
check_eq "unknown action: message" "$ERR" "qkd: keys: unknown action 'frob' (see 'qkd keys --help')"
check_exit "export without id" 2 "$QKD" keys --store "$S" export
check_eq "export without id: message" "$ERR" "qkd: keys: export needs a block id"
check_exit "export: id not a number" 2 "$QKD" keys --store "$S" export abc
check_eq "export: id not a number: message" "$ERR" \
	"qkd: keys: export: bad block id: not a whole number: 'abc'"
check_exit "export: negative id" 2 "$QKD" keys --store "$S" export -3
check_exit "export: id with suffix" 2 "$QKD" keys --store "$S" export 9x
check_exit "export: id above 2^63-1" 2 "$QKD" keys --store "$S" export 9223372036854775808
check_eq "export: id above 2^63-1: message" "$ERR" \
	"qkd: keys: export: bad block id: out of range: '9223372036854775808'"
check_exit "export: empty id" 2 "$QKD" keys --store "$S" export ""
check_exit "export: two ids" 2 "$QKD" keys --store "$S" export 9 2
check_exit "export with --json" 2 "$QKD" keys --store "$S" export 9 --json

# --- runtime errors: exit 1 -----------------------------------------------
M=$CLI_TMP/missing.db
check_exit "missing store" 1 "$QKD" keys --store "$M"
check_eq "missing store: message" "$ERR" "qkd: $M: no such key store"
check_eq "missing store: nothing on stdout" "$OUT" ""
check_eq "missing store: not created" "$(find "$CLI_TMP" -name 'missing.db*' | wc -l | tr -d ' ')" 0
check_exit "missing store, export" 1 "$QKD" keys --store "$M" export 9
check_eq "missing store, export: not created" "$(find "$CLI_TMP" -name 'missing.db*' | wc -l | tr -d ' ')" 0
check_exit "missing directory" 1 "$QKD" keys --store "$CLI_TMP/nodir/link.db"
check_exit "unknown id" 1 "$QKD" keys --store "$S" export 77
check_eq "unknown id: message" "$ERR" "qkd: $S: no such block 77"
check_eq "unknown id: nothing on stdout" "$OUT" ""
check_exit "used block" 1 "$QKD" keys --store "$S" export 1
check_eq "used block: message" "$ERR" "qkd: $S: block 1 is used: its bits were handed out and deleted"
T=$CLI_TMP/text.db
printf 'this is not a database\n' >"$T"
check_exit "not an SQLite file" 1 "$QKD" keys --store "$T"
check_eq "not an SQLite file: message" "$ERR" \
	"qkd: $T: not a key store: the file is not an SQLite database"
check_eq "not an SQLite file: left alone" "$(cat "$T")" "this is not a database"
: >"$CLI_TMP/zero.db"
check_exit "empty file" 1 "$QKD" keys --store "$CLI_TMP/zero.db"
check_eq "empty file: message" "$ERR" "qkd: $CLI_TMP/zero.db: not a key store: the file is empty"
check_exit "a directory" 1 "$QKD" keys --store "$CLI_TMP"
if command -v sqlite3 >/dev/null; then
	F=$CLI_TMP/foreign.db
	sqlite3 "$F" 'CREATE TABLE t (x)'
	check_exit "another program's database" 1 "$QKD" keys --store "$F"
	check_match "another program's database: message" "$ERR" "not a key store: an SQLite database of another program$"
	N=$CLI_TMP/newer.db
	cp "$S" "$N"
	sqlite3 "$N" 'UPDATE schema_version SET version = version + 1'
	check_exit "newer schema" 1 "$QKD" keys --store "$N"
	check_eq "newer schema: message" "$ERR" \
		"qkd: $N: the key store's schema version is newer than this program's"
fi

# the store is unchanged by all of the above
check "list again" "$QKD" keys --store "$S" --json
check_eq "store unchanged" "$(j '[.count, .available_bits, .consumed_bits] | map(tostring) | join(" ")')" \
	"5 1481 300"

finish
