#!/usr/bin/env bash
# tests/cli/entropy.sh - `qkd entropy` (DESIGN.md section 5, docs/entropy.md).
# Expected numbers: mpmath at 50 digits, the formulas of DESIGN 5 written out
# (the same vectors as tests/unit/test_entropy.c).
# Usage (from the top of the tree): QKD=build/qkd tests/cli/entropy.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

QKD=${QKD:-build/qkd}

if ! command -v jq >/dev/null; then
	echo "not ok - jq is installed"
	exit 1
fi

# jq field from $OUT
j() { printf '%s' "$OUT" | jq -r "$1"; }

# --- weak-coherent, slutsky: docs/entropy.md example 1 --------------------
WC=(--bits 316000 --errors 9480 --disclosed 72000 --transmitted 20000000 --detected 632000 --mu 0.1)
check "json: weak-coherent slutsky runs" "$QKD" entropy "${WC[@]}" --json
check_eq "json: exactly one object" "$(printf '%s' "$OUT" | jq -s 'length')" 1
check_eq "json: is an object" "$(j 'type')" object
check_eq "json: all documented fields present" \
	"$(j '[has("disclosed","transparent","transparent_sd","nontransparent",
	   "nontransparent_sd","nonrandomness","pa_margin","confidence","sigma_term",
	   "secret_bits","limiting_term","defense","source")] | all')" true
check_near "json: disclosed" "$(j .disclosed)" 72000 0
check_near "json: transparent" "$(j .transparent)" 46788.401604444700216 1e-6
check_near "json: transparent_sd" "$(j .transparent_sd)" 199.65143979535904999 1e-8
check_near "json: nontransparent" "$(j .nontransparent)" 51618.874742315235177 1e-6
check_near "json: nontransparent_sd" "$(j .nontransparent_sd)" 492.69396664161597756 1e-8
check_near "json: sigma_term" "$(j .sigma_term)" 2658.044592258610308 1e-7
check_near "json: nonrandomness default 0" "$(j .nonrandomness)" 0 0
check_near "json: pa_margin default 0" "$(j .pa_margin)" 0 0
check_near "json: confidence default 5" "$(j .confidence)" 5 0
check_eq "json: secret_bits" "$(j .secret_bits)" 142934
check_eq "json: limiting_term" "$(j .limiting_term)" disclosed
check_eq "json: defense default slutsky" "$(j .defense)" slutsky
check_eq "json: source default weak-coherent" "$(j .source)" weak-coherent
check_eq "json: nothing on stderr" "$ERR" ""

# --- entangled, bennett, r and pa_margin ----------------------------------
check "json: entangled bennett runs" "$QKD" entropy --bits 100000 --errors 2500 \
	--disclosed 20000 --mu 0.05 --source entangled --defense bennett \
	--nonrandom 100 --pa-margin 50 --json
check_near "entangled: transparent = b p_m" "$(j .transparent)" 120.9104274250290586 1e-8
check_near "entangled: transparent_sd" "$(j .transparent_sd)" 10.989278143282570788 1e-9
check_near "bennett: nontransparent = (4/sqrt2) e" "$(j .nontransparent)" 7071.067811865475244 1e-8
check_near "bennett: sd = sqrt((4+2sqrt2) e)" "$(j .nontransparent_sd)" 130.65629648763765279 1e-9
check_near "bennett: sigma_term" "$(j .sigma_term)" 655.58813377714333197 1e-8
check_near "json: nonrandomness" "$(j .nonrandomness)" 100 0
check_near "json: pa_margin" "$(j .pa_margin)" 50 0
check_eq "entangled bennett: secret_bits" "$(j .secret_bits)" 72002
check_eq "json: defense bennett" "$(j .defense)" bennett
check_eq "json: source entangled" "$(j .source)" entangled

# --- weak-coherent, bennett, c = 3 ----------------------------------------
check "json: weak-coherent bennett c=3 runs" "$QKD" entropy --bits 50000 --errors 1000 \
	--disclosed 8000 --transmitted 3000000 --detected 100000 --mu 0.2 \
	--defense bennett --confidence 3 --nonrandom 10.5 --pa-margin 20 --json
check_near "c=3: sigma_term" "$(j .sigma_term)" 416.72387509349165221 1e-8
check_near "c=3: transparent" "$(j .transparent)" 26284.644459632657121 1e-6
check_eq "c=3: secret_bits" "$(j .secret_bits)" 12439
check_eq "c=3: limiting_term" "$(j .limiting_term)" transparent

# --- 25 km, mu = 0.1: the multi-photon term takes everything --------------
SAT=(--bits 316000 --errors 9480 --disclosed 72000 --transmitted 200000000 --detected 632000 --mu 0.1)
check "json: saturated runs" "$QKD" entropy "${SAT[@]}" --json
check_near "saturated: transparent = b" "$(j .transparent)" 316000 0
check_eq "saturated: secret_bits clamped to 0" "$(j .secret_bits)" 0
check_eq "saturated: limiting_term transparent" "$(j .limiting_term)" transparent

# --- slutsky at eps = 1/3 -------------------------------------------------
check "json: eps = 1/3 runs" "$QKD" entropy --bits 3000 --errors 1000 --disclosed 0 \
	--mu 0.1 --source entangled --json
check_near "eps=1/3: nontransparent = b" "$(j .nontransparent)" 3000 0
check_near "eps=1/3: nontransparent_sd = 0" "$(j .nontransparent_sd)" 0 0
check_eq "eps=1/3: secret_bits" "$(j .secret_bits)" 0
check_eq "eps=1/3: limiting_term" "$(j .limiting_term)" nontransparent

# --- confidence 0, option=value form --------------------------------------
check "json: --confidence=0 runs" "$QKD" entropy "${WC[@]}" --confidence=0 --json
check_near "c=0: sigma_term 0" "$(j .sigma_term)" 0 0
check_eq "c=0: secret_bits" "$(j .secret_bits)" 145592

# --- human output ---------------------------------------------------------
check "human: runs" "$QKD" entropy "${WC[@]}"
check_match "human: header names source, defense, c" "$OUT" \
	'^entropy estimate: source weak-coherent, defense slutsky, confidence 5$'
check_match "human: disclosed row" "$OUT" '^ +disclosed +72000\.00 +- *$'
check_match "human: transparent row with sd" "$OUT" '^ +transparent +46788\.40 +199\.65$'
check_match "human: nontransparent row with sd" "$OUT" '^ +nontransparent +51618\.87 +492\.69$'
check_match "human: c*sigma row" "$OUT" '^ +c\*sigma +2658\.04 '
check_match "human: secret bits" "$OUT" '^ +secret bits +142934$'
check_match "human: limiting term" "$OUT" '^limiting term: disclosed \(22\.8% of b\)$'
check_eq "human: not JSON" "${OUT:0:1}" "e"
check "human: saturated runs" "$QKD" entropy "${SAT[@]}"
check_match "human: saturated limiting term" "$OUT" '^limiting term: transparent \(100\.0% of b\)$'
check_match "human: saturated note" "$OUT" '^note: .*q clamped to 1'

# --- help -----------------------------------------------------------------
check "--help exits 0" "$QKD" entropy --help
check_match "--help prints usage on stdout" "$OUT" '^usage: qkd entropy '
check_eq "--help: nothing on stderr" "$ERR" ""

# --- usage errors: exit 2, "qkd: " on stderr, nothing on stdout -----------
E=(--errors 10 --disclosed 10 --transmitted 100000 --detected 2000)
check_exit "unknown option" 2 "$QKD" entropy --bits 1000 "${E[@]}" --mu 0.1 --frobnicate
check_eq "unknown option: message" "$ERR" "qkd: entropy: unknown option '--frobnicate'"
check_eq "error: nothing on stdout" "$OUT" ""
check_exit "missing value" 2 "$QKD" entropy "${E[@]}" --mu 0.1 --bits
check_eq "missing value: message" "$ERR" "qkd: entropy: option '--bits' needs a value"
check_exit "mu not a number" 2 "$QKD" entropy --bits 1000 "${E[@]}" --mu abc
check_eq "mu not a number: message" "$ERR" "qkd: --mu: not a number: 'abc'"
check_exit "mu = 0" 2 "$QKD" entropy --bits 1000 "${E[@]}" --mu 0
check_exit "mu negative" 2 "$QKD" entropy --bits 1000 "${E[@]}" --mu -0.1
check_exit "mu inf" 2 "$QKD" entropy --bits 1000 "${E[@]}" --mu inf
check_exit "mu nan" 2 "$QKD" entropy --bits 1000 "${E[@]}" --mu nan
check_exit "mu with suffix" 2 "$QKD" entropy --bits 1000 "${E[@]}" --mu 0.1x
check_exit "mu overflows" 2 "$QKD" entropy --bits 1000 "${E[@]}" --mu 1e999
check_exit "bits not a number" 2 "$QKD" entropy --bits 10k "${E[@]}" --mu 0.1
check_exit "bits negative" 2 "$QKD" entropy --bits -5 "${E[@]}" --mu 0.1
check_eq "bits negative: message" "$ERR" "qkd: --bits: must not be negative: '-5'"
check_exit "bits fractional" 2 "$QKD" entropy --bits 1000.5 "${E[@]}" --mu 0.1
check_exit "bits zero" 2 "$QKD" entropy --bits 0 "${E[@]}" --mu 0.1
check_exit "bits empty" 2 "$QKD" entropy --bits= "${E[@]}" --mu 0.1
check_exit "bits above 2^53" 2 "$QKD" entropy --bits 9007199254740993 "${E[@]}" --mu 0.1
check_exit "bits overflow u64" 2 "$QKD" entropy --bits 18446744073709551616 "${E[@]}" --mu 0.1
check_exit "errors negative" 2 "$QKD" entropy --bits 1000 --errors -1 --disclosed 10 \
	--transmitted 100000 --detected 2000 --mu 0.1
check_exit "confidence negative" 2 "$QKD" entropy --bits 1000 "${E[@]}" --mu 0.1 --confidence -1
check_exit "nonrandom negative" 2 "$QKD" entropy --bits 1000 "${E[@]}" --mu 0.1 --nonrandom -3
check_exit "pa-margin not a number" 2 "$QKD" entropy --bits 1000 "${E[@]}" --mu 0.1 --pa-margin x
check_exit "unknown defense" 2 "$QKD" entropy --bits 1000 "${E[@]}" --mu 0.1 --defense lim
check_match "unknown defense: lists names" "$ERR" "^qkd: --defense: unknown defense function: 'lim' \(one of: bennett, slutsky, decoy\)$"
check_exit "decoy is for whole runs" 2 "$QKD" entropy --bits 1000 "${E[@]}" --mu 0.1 --defense decoy
check_match "decoy: says where to use it" "$ERR" "^qkd: --defense: decoy needs per-intensity counts.*qkd sim --defense decoy"
check_exit "unknown source" 2 "$QKD" entropy --bits 1000 "${E[@]}" --mu 0.1 --source laser
check_exit "option given twice" 2 "$QKD" entropy --bits 1000 --bits 1000 "${E[@]}" --mu 0.1
check_exit "stray argument" 2 "$QKD" entropy --bits 1000 "${E[@]}" --mu 0.1 extra
check_exit "missing --bits" 2 "$QKD" entropy "${E[@]}" --mu 0.1
check_eq "missing --bits: message" "$ERR" "qkd: entropy: missing --bits (see 'qkd entropy --help')"
check_exit "missing --mu" 2 "$QKD" entropy --bits 1000 "${E[@]}"
check_exit "weak-coherent without --detected" 2 "$QKD" entropy --bits 1000 --errors 10 \
	--disclosed 10 --transmitted 100000 --mu 0.1
check_exit "no arguments" 2 "$QKD" entropy

# --- inconsistent values: exit 1 ------------------------------------------
check_exit "e > b" 1 "$QKD" entropy --bits 1000 --errors 1001 --disclosed 10 \
	--transmitted 100000 --detected 2000 --mu 0.1
check_eq "e > b: message" "$ERR" "qkd: entropy: more errors than corrected bits (e > b)"
check_eq "e > b: nothing on stdout" "$OUT" ""
check_exit "M > N_tx" 1 "$QKD" entropy --bits 1000 --errors 10 --disclosed 10 \
	--transmitted 1999 --detected 2000 --mu 0.1
check_exit "b > M" 1 "$QKD" entropy --bits 1000 --errors 10 --disclosed 10 \
	--transmitted 100000 --detected 999 --mu 0.1
check_exit "weak-coherent with M = 0" 1 "$QKD" entropy --bits 1000 --errors 10 \
	--disclosed 10 --transmitted 100000 --detected 0 --mu 0.1
check_fail "check_fail helper agrees" "$QKD" entropy --bits 1000 --errors 1001 \
	--disclosed 10 --transmitted 100000 --detected 2000 --mu 0.1

# entangled: N_tx and M are optional, checked when given
check "entangled without N_tx, M" "$QKD" entropy --bits 1000 --errors 10 --disclosed 10 \
	--mu 0.1 --source entangled --json
check_exit "entangled with b > M" 1 "$QKD" entropy --bits 1000 --errors 10 --disclosed 10 \
	--mu 0.1 --source entangled --detected 500

finish
