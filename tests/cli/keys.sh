#!/usr/bin/env bash
# tests/cli/keys.sh - `qkd keys` (DESIGN.md section 6, docs/keystore.md).
# The stores are written by tests/tools/mkstore (the CLI cannot write
# blocks); mkstore prints, per block, "ID WRITTEN EXPORT": the bits it wrote
# and what `qkd keys export ID` must print.
# Usage (from the top of the tree): QKD=build/qkd tests/cli/keys.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

QKD=${QKD:-build/qkd}
MKSTORE=${MKSTORE:-$(dirname "$QKD")/tests/tools/mkstore}

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
check_match "list: column titles" "$OUT" '^ +id +state +bits +consumed +created$'
check_match "list: used block 1" "$OUT" '^ +1 +used +256 +256 +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} UTC$'
check_match "list: block 2 partly consumed" "$OUT" '^ +2 +final +1001 +44 '
check_match "list: pending block 5" "$OUT" '^ +5 +pending +64 +0 '
check_match "list: block 9" "$OUT" '^ +9 +final +512 +0 '
check_match "list: key manager line" "$OUT" 'key manager: 0 keys issued here awaiting the peer, 0 ready'
check_match "list: large id" "$OUT" '^ +1000000000000 +final +12 +0 '
check_eq "list: ids in order" "$(printf '%s\n' "$OUT" | awk 'NR > 4 { print $1 }' | tr '\n' ' ')" \
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
	"$(j '[has("store","count","total_bits","available_bits","consumed_bits","states","blocks")] | all')" true
check_eq "json: count" "$(j .count)" 5
check_eq "json: total_bits" "$(j .total_bits)" 1845
check_eq "json: available_bits" "$(j .available_bits)" 1481
check_eq "json: consumed_bits" "$(j .consumed_bits)" 300
check_eq "json: store path" "$(j .store)" "$S"
check_eq "json: states" "$(j '[.states.pending.count, .states.pending.bits, .states.final.count,
	.states.final.bits, .states.used.count, .states.used.bits] | map(tostring) | join(" ")')" \
	"1 64 3 1525 1 256"
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

# --- help -----------------------------------------------------------------
check "--help exits 0" "$QKD" keys --help
check_match "--help prints usage on stdout" "$OUT" '^usage: qkd keys --store PATH'
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
