#!/usr/bin/env bash
# tests/cli/eve.sh - the eavesdropper on the fiber (issue: security model).
#
# The invariant: for every attack, source and defense function, the bits the
# entropy estimate removes for eavesdropping (transparent + non-transparent +
# c sigma for bennett/slutsky; everything Eq. (1) of Lim et al. takes beyond
# the disclosed bits for decoy) are at least the key bits the simulator knows
# Eve holds exactly (eve_known_bits), or no key is produced.
# Usage (from the top of the tree): QKD=build/qkd tests/cli/eve.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

QKD=${QKD:-build/qkd}
j() { printf '%s' "$OUT" | jq -r "$1"; }

# One point of the grid: run, then check the invariant on the JSON.
invariant() {
	local name=$1
	shift
	check "$name: runs" "$QKD" sim --json "$@"
	[ "$STATUS" -eq 0 ] || return
	local known removed secret match
	known=$(j .eve_known_bits)
	removed=$(j .eve_removed_bits)
	secret=$(j .secret_bits)
	match=$(j .keys_match)
	check "$name: removed $removed >= Eve knows $known, or no key ($secret)" \
		awk -v k="$known" -v r="$removed" -v s="$secret" 'BEGIN { exit !(s == 0 || r >= k) }'
	# With no key at either end there is nothing to compare: keys_match is null.
	if [ "$secret" -gt 0 ]; then
		check_eq "$name: keys match" "$match" true
	else
		check_eq "$name: no key, keys_match null" "$match" null
	fi
	GRID_KEYS=$((GRID_KEYS + (secret > 0)))
	GRID_KNOWN=$((GRID_KNOWN + (known > 0)))
}

PULSES=30000000
GRID_KEYS=0
GRID_KNOWN=0
# Decoy runs use the signal intensity and decoys of docs/decoy.md.
DECOY=(--mu 0.5 --decoy 0.1,0.0002 --p-x 0.9 --defense decoy)
for attack in intercept-resend:0.1 intercept-resend:0.3 intercept-resend:1 pns \
	beamsplit:0.2 beamsplit:0.6; do
	for km in 5 25; do
		for def in bennett slutsky; do
			invariant "wcp $attack ${km}km $def" --pulses $PULSES --distance $km \
				--eve "$attack" --defense $def
			[ "${attack%%:*}" = pns ] && continue
			invariant "entangled $attack ${km}km $def" --source entangled \
				--pulses $PULSES --distance $km --eve "$attack" --defense $def
		done
		invariant "wcp $attack ${km}km decoy" --pulses $PULSES --distance $km \
			--eve "$attack" "${DECOY[@]}"
	done
done

# The grid must exercise the invariant, not pass it vacuously.
check "grid: some runs keep a key ($GRID_KEYS)" test "$GRID_KEYS" -gt 10
check "grid: Eve knows bits in most runs ($GRID_KNOWN)" test "$GRID_KNOWN" -gt 30

# The JSON of the last `sim` check, kept apart from $OUT (each check resets it).
sim() {
	local name=$1
	shift
	check "$name" "$QKD" sim --json "$@"
	JS=$OUT
}
jv() { printf '%s' "$JS" | jq -r "$1"; }

# --- intercept-resend on every pulse: QBER near 25 %, no key
sim "IR F=1 runs" --eve intercept-resend:1 --abort-qber 0.5
check "IR F=1: QBER near 25 % ($(jv .qber))" \
	awk -v q="$(jv .qber)" 'BEGIN { exit !(q > 0.22 && q < 0.29) }'
check_eq "IR F=1: the QBER counted by error correction" "$(jv .qber_source)" corrected
check_eq "IR F=1: no key" "$(jv .secret_bits)" 0
check_eq "IR F=1: attack in the JSON" "$(jv .eve.attack)" intercept-resend
sim "IR F=1 at the default threshold" --eve intercept-resend:1
check_eq "IR F=1: aborted" "$(jv .aborted)" true
check_match "IR F=1: the reason names the QBER" "$(jv .no_key_reason)" "QBER"
# The round stopped at the sample: the QBER reported is the sample's, not 0.
check_eq "IR F=1 aborted: QBER from the sample" "$(jv .qber_source)" sample
check "IR F=1 aborted: sample QBER near 25 % ($(jv .qber))" \
	awk -v q="$(jv .qber)" 'BEGIN { exit !(q > 0.20 && q < 0.30) }'
check_eq "IR F=1 aborted: nothing to compare" "$(jv .keys_match)" null

# --- intercept-resend on a fraction F: the QBER rises by about F/4
sim "honest link" --pulses $PULSES
q0=$(jv .qber)
sim "IR F=0.2" --pulses $PULSES --eve intercept-resend:0.2
q2=$(jv .qber)
check "IR F=0.2 raises the QBER by about F/4 ($q0 -> $q2)" \
	awk -v a="$q0" -v b="$q2" 'BEGIN { d = b - a; exit !(d > 0.04 && d < 0.06) }'
check "IR F=0.2: Eve knows about F/2 of the key bits ($(jv .eve_known_bits) of $(jv .frame_bits))" \
	awk -v k="$(jv .eve_known_bits)" -v b="$(jv .frame_bits)" 'BEGIN { f = k / b; exit !(f > 0.07 && f < 0.13) }'

# --- photon-number splitting keeps the detection rate and the QBER
sim "PNS" --pulses $PULSES --eve pns
check "PNS: detections near the honest model" \
	awk -v d="$(jv .detections)" -v p="$(jv .detection_prob_expected)" -v n="$(jv .pulses)" \
	'BEGIN { m = n * p; exit !(d > m * 0.95 && d < m * 1.05) }'
check "PNS: QBER near the honest model" \
	awk -v q="$(jv .qber)" -v w="$(jv .qber_expected)" 'BEGIN { exit !(q < w * 1.3) }'
check "PNS: Eve knows some key bits ($(jv .eve_known_bits))" awk -v k="$(jv .eve_known_bits)" 'BEGIN { exit !(k > 0) }'
check "PNS: the transparent term covers them" \
	awk -v k="$(jv .eve_known_bits)" -v t="$(jv .entropy.transparent)" 'BEGIN { exit !(t > k) }'

# --- bad attack specifications
check_exit "unknown attack" 2 "$QKD" sim --eve tapping:0.1
check_exit "fraction out of range" 2 "$QKD" sim --eve intercept-resend:1.5
check_exit "fraction missing" 2 "$QKD" sim --eve beamsplit
check_exit "fraction not a number" 2 "$QKD" sim --eve beamsplit:x
check_exit "pns takes no fraction" 2 "$QKD" sim --eve pns:0.5
check_exit "pns needs a weak-coherent source" 2 "$QKD" sim --eve pns --source entangled

finish
