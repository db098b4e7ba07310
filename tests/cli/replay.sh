#!/usr/bin/env bash
# tests/cli/replay.sh - the `file` optical backend: `qkd sim --record DIR`
# writes the link's detection data, `qkd sim --replay DIR` runs the engine
# from it (docs/recording-format.md). A replay must give the live run's key.
# Usage (from the top of the tree): QKD=build/qkd tests/cli/replay.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

QKD=${QKD:-build/qkd}
j() { printf '%s' "$OUT" | jq -r "$1"; }
jr() { printf '%s' "$REPLAY" | jq -r "$1"; }

# replay_case NAME "LINK OPTIONS" "PROTOCOL OPTIONS": a live run recorded
# with seed 7, then its replay with the same protocol options; the four key
# files must be one key, and the counts the same.
replay_case() {
	local name=$1 link=$2 proto=$3 d="$CLI_TMP/$1" live f
	# shellcheck disable=SC2086
	check "$name: live run, recorded" "$QKD" sim --seed 7 --json --record "$d" \
		--out-alice "$d.a1" --out-bob "$d.b1" $link $proto
	live=$OUT
	check "$name: both files written" test -s "$d/alice.qkdrec" -a -s "$d/bob.qkdrec"
	# shellcheck disable=SC2086
	check "$name: replay" "$QKD" sim --replay "$d" --json --out-alice "$d.a2" --out-bob "$d.b2" $proto
	REPLAY=$OUT
	check "$name: live keys match" cmp "$d.a1" "$d.b1"
	check "$name: replayed keys match" cmp "$d.a2" "$d.b2"
	check "$name: the replay gives the live run's key" cmp "$d.a1" "$d.a2"
	for f in pulses detections double_clicks sifted_bits sample_errors frame_bits \
		 ec_disclosed_bits secret_bits seed entropy.nonrandomness \
		 randomness.bob_basis.bits; do
		check_eq "$name: same $f" "$(jr ".$f")" "$(printf '%s' "$live" | jq -r ".$f")"
	done
	check_eq "$name: replay names the recording" "$(jr .replay)" "$d"
	check_eq "$name: no model in a replay" "$(jr '[.qber_expected, .detection_prob_expected, .eve, .eve_known_bits] | map(. == null) | all')" true
	check_eq "$name: the live run is no replay" "$(printf '%s' "$live" | jq -r .replay)" null
	LIVE=$live
}

# --- weak-coherent (the default link), entangled, decoys
replay_case wcp "" ""
check "wcp: a key ($(jr .secret_bits) bits)" test "$(jr .secret_bits)" -gt 1000
check_eq "wcp: every pulse's choice tested" "$(jr .randomness.alice_value.bits)" 100000000
replay_case entangled "--source entangled --mu 0.05 --distance 5 --pulses 20000000" ""
check "entangled: a key ($(jr .secret_bits) bits)" test "$(jr .secret_bits)" -gt 100
check_eq "entangled: source from the recording" "$(jr .entropy.source)" entangled
replay_case decoy "--mu 0.5 --decoy 0.1,0.0002 --p-x 0.7 --pulses 200000000 --distance 20" \
	"--defense decoy"
for f in n_x n_z m_z mu p_mu; do
	check_eq "decoy: same $f" "$(jr ".decoy.$f | tostring")" \
		"$(printf '%s' "$LIVE" | jq -r ".decoy.$f | tostring")"
done
check "decoy: intensities announced ($(jr '.decoy.n_x | tostring'))" \
	test "$(jr '.decoy.n_x[1]')" -gt 1000
check_eq "decoy: P(X) from the recording" "$(jr .decoy.p_x)" 0.7

# --- the protocol options still apply; --seed reseeds only the protocol
W="$CLI_TMP/wcp"
check "replay with other protocol options" "$QKD" sim --replay "$W" --json --ec cascade-bbn --defense bennett
check_eq "other options: keys match" "$(j .keys_match)" true
check_eq "other options: same detections" "$(j .detections)" 632226
check "replay with another protocol seed" "$QKD" sim --replay "$W" --seed 8 --json --out-alice "$CLI_TMP/s8"
check_eq "another seed: keys match" "$(j .keys_match)" true
check_eq "another seed: same detections" "$(j .detections)" 632226
check "another seed: another key" test "$(sha256sum <"$CLI_TMP/s8")" != "$(sha256sum <"$W.a1")"
check "human output of a replay" "$QKD" sim --replay "$W"
check_match "human: says replay" "$OUT" "^qkd sim: replay of $W"
check_match "human: keys match" "$OUT" 'keys match +yes'
check "human: no model figures" test "$(printf '%s' "$OUT" | grep -c model)" -eq 0

# --- damaged recordings: "qkd: ...", exit 1, nothing on stdout
bad="$CLI_TMP/bad"
damage() {	# damage FILE: a fresh copy of the wcp recording in $bad
	rm -rf "$bad"
	cp -r "$W" "$bad"
}
damage
printf '\377' | dd of="$bad/alice.qkdrec" bs=1 seek=1000000 conv=notrunc status=none
check_exit "flipped byte in Alice's file" 1 "$QKD" sim --replay "$bad" --json
check_match "flipped byte: names the file and the cause" "$ERR" '^qkd: .*alice\.qkdrec: .*(checksum|corrupted)'
check_eq "flipped byte: nothing on stdout" "$OUT" ""
damage
truncate -s -1 "$bad/bob.qkdrec"
check_exit "truncated Bob's file" 1 "$QKD" sim --replay "$bad"
check_match "truncated: says so" "$ERR" '^qkd: .*bob\.qkdrec: truncated'
damage
printf 'XX' | dd of="$bad/bob.qkdrec" bs=1 seek=1 conv=notrunc status=none
check_exit "wrong magic" 1 "$QKD" sim --replay "$bad"
check_match "wrong magic: not a recording" "$ERR" 'not a qkdnet recording'
damage
cp "$CLI_TMP/entangled/bob.qkdrec" "$bad/bob.qkdrec"
check_exit "Bob's file of another recording" 1 "$QKD" sim --replay "$bad"
check_match "another recording: says so" "$ERR" 'not from the same recording'
damage
cp "$bad/bob.qkdrec" "$bad/alice.qkdrec"
check_exit "Bob's file in Alice's place" 1 "$QKD" sim --replay "$bad"
check_match "Bob's file as Alice's: says so" "$ERR" "Bob's recording, not Alice's"
damage
truncate -s 0 "$bad/alice.qkdrec"
check_exit "empty file" 1 "$QKD" sim --replay "$bad"
check_fail "missing recording" "$QKD" sim --replay "$CLI_TMP/nonexistent"
check_match "missing: the system's reason" "$ERR" 'No such file'

# --- the command line
check_exit "--replay with a link option" 2 "$QKD" sim --replay "$W" --mu 0.2
check_exit "--replay with --record" 2 "$QKD" sim --replay "$W" --record "$CLI_TMP/x"
check_exit "--defense decoy on a recording without decoys" 2 "$QKD" sim --replay "$W" --defense decoy
check_exit "--record into an impossible place" 1 "$QKD" sim --pulses 100000 --record /nonexistent/dir/rec
check "help lists --record and --replay" "$QKD" sim --help
check_match "help: --replay" "$OUT" '--replay DIR'
finish
