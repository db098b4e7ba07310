#!/usr/bin/env bash
# tests/cli/sim.sh - `qkd sim` end to end: real processes, real sockets.
# Usage (from the top of the tree): QKD=build/qkd tests/cli/sim.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

QKD=${QKD:-build/qkd}
j() { printf '%s' "$OUT" | jq -r "$1"; }

# --- the default link (BBN's first link): a key of about a tenth of the sifted bits
check "default link runs" "$QKD" sim --json --out-alice "$CLI_TMP/a" --out-bob "$CLI_TMP/b"
DEF=$OUT
jd() { printf '%s' "$DEF" | jq -r "$1"; }
check_eq "default: one JSON object" "$(printf '%s' "$OUT" | jq -s length)" 1
check_eq "default: keys match" "$(jd .keys_match)" true
check_eq "default: pulses" "$(jd .pulses)" 100000000
check "default: key files identical" cmp "$CLI_TMP/a" "$CLI_TMP/b"
check_eq "default: key file length" "$(stat -c %s "$CLI_TMP/a")" "$(( ($(jd .secret_bits) + 7) / 8 ))"
frac=$(jd '.secret_bits / .sifted_bits')
check "default: key is 3..20 % of sifted bits ($frac)" awk -v f="$frac" 'BEGIN { exit !(f > 0.03 && f < 0.20) }'
check "default: detections within 5 sd of the model" \
	awk -v d="$(jd .detections)" -v p="$(jd .detection_prob_expected)" -v n="$(jd .pulses)" \
	'BEGIN { m = n * p; s = sqrt(m); exit !(d > m - 5 * s && d < m + 5 * s) }'
check "default: QBER near the model" \
	awk -v q="$(jd .qber)" -v w="$(jd .qber_expected)" 'BEGIN { exit !(q > w * 0.85 && q < w * 1.15) }'
check_eq "default: QBER counted by error correction" "$(jd .qber_source)" corrected
check "default: qber * frame_bits is a whole number of errors" \
	awk -v q="$(jd .qber)" -v b="$(jd .frame_bits)" 'BEGIN { e = q * b; d = e - int(e + 0.5); exit !(b > 0 && d < 1e-4 && d > -1e-4) }'
check "default: f <= 1.10" awk -v f="$(jd .ec_efficiency)" 'BEGIN { exit !(f > 1 && f <= 1.10) }'
check_eq "default: no frame failed verification" "$(jd .frames_failed_verification)" 0
check_eq "default: entropy terms present" \
	"$(jd '.entropy | [has("disclosed","transparent","transparent_sd","nontransparent","nontransparent_sd","nonrandomness","sigma_term")] | all')" true
check_eq "default: disclosed = EC + verification" \
	"$(jd '.entropy.disclosed == (.ec_disclosed_bits + .verify_disclosed_bits)')" true
check "default: non-randomness is a small fraction of the key" \
	awk -v r="$(jd .entropy.nonrandomness)" -v k="$(jd .secret_bits)" 'BEGIN { exit !(r > 0 && r < 0.05 * k) }'
check_eq "default: Alice's choices pass the tests" \
	"$(jd '.randomness.alice_value.biased or .randomness.alice_value.correlated or .randomness.alice_basis.biased')" false
check_eq "default: every pulse's choice tested" "$(jd .randomness.alice_value.bits)" 100000000
check "default: rate = secret bits / link seconds" \
	awk -v r="$(jd .secret_key_rate_bps)" -v s="$(jd .secret_bits)" 'BEGIN { exit !(r > s / 10.0001 && r < s / 9.9999) }'
first_key=$(sha256sum <"$CLI_TMP/a")

# --- reproducible: the same seed gives the same key, another seed another
check "same seed again" "$QKD" sim --json --out-alice "$CLI_TMP/a2"
check_eq "same seed: same key" "$(sha256sum <"$CLI_TMP/a2")" "$first_key"
check "other seed" "$QKD" sim --json --seed 99 --out-bob "$CLI_TMP/b3"
check "other seed: other key" test "$(sha256sum <"$CLI_TMP/b3")" != "$first_key"

# --- pinned keys: the protocol must not change under optimisation. A change
# that alters these hashes changes what goes over the wire or how bits are
# chosen; it is then a protocol change, to be made on purpose (update the
# hashes and say so in docs/protocol.md).
check "pinned run (weak-coherent, cascade)" "$QKD" sim --pulses 20000000 --seed 7 --out-alice "$CLI_TMP/p1"
check_eq "pinned key 1" "$(sha256sum <"$CLI_TMP/p1" | cut -d' ' -f1)" \
	4c6366f65e9981a8f946dc0602ae944e477614f83db263291d284231bf474061
check "pinned run (entangled, cascade-bbn)" "$QKD" sim --pulses 20000000 --seed 7 \
	--source entangled --mu 0.05 --distance 5 --ec cascade-bbn --out-bob "$CLI_TMP/p2"
check_eq "pinned key 2" "$(sha256sum <"$CLI_TMP/p2" | cut -d' ' -f1)" \
	d8d6da4d7f368356c6f2c967758079c6c673a105b0c29ce00ed3f57bec9858c8

# --- human output
check "human output" "$QKD" sim --pulses 20000000
check_match "human: shows the secret key" "$OUT" 'secret key +[0-9]+ bits'
check_match "human: keys match" "$OUT" 'keys match +yes'
check_match "human: QBER names error correction" "$OUT" 'QBER +[0-9.]+ % +\(counted by error correction; model '
check_match "human: shows the randomness tests" "$OUT" "non-randomness .*Alice's choices: H_min 0\\.99"

# --- a biased RNG: the key visibly shortens and the output says why
check "fair RNG at 0 km" "$QKD" sim --distance 0 --pulses 20000000 --json
fair_key=$(j .secret_bits)
check "RNG with P(1) = 0.6 at 0 km" "$QKD" sim --distance 0 --pulses 20000000 --rng-bias 0.6 --json
BIASED=$OUT
jb() { printf '%s' "$BIASED" | jq -r "$1"; }
check_eq "biased: flagged" "$(jb .randomness.alice_value.biased)" true
check "biased: key shorter by a fifth of the bits or more" \
	awk -v b="$(jb .secret_bits)" -v f="$fair_key" -v s="$(jb .sifted_bits)" 'BEGIN { exit !(b < f - 0.2 * s) }'
check "biased: non-randomness near (1 + log2 0.6) b" \
	awk -v r="$(jb .entropy.nonrandomness)" -v s="$(jb .frame_bits)" 'BEGIN { x = r / s; exit !(x > 0.25 && x < 0.30) }'
check "biased, 10 km" "$QKD" sim --rng-bias 0.6 --pulses 20000000
check_match "biased: human output says BIASED" "$OUT" 'non-randomness .*BIASED'
check_match "biased: no-key reason names the RNG" "$OUT" "no key: .*Alice's RNG failed the frequency test"

# --- 25 km: the multi-photon term takes the key, and the output says so
check "25 km" "$QKD" sim --distance 25 --pulses 30000000 --json
check_eq "25 km: no key" "$(j .secret_bits)" 0
check_eq "25 km: limiting term" "$(j .entropy.limiting_term)" transparent
check_match "25 km: reason names the multi-photon term" "$(j .no_key_reason)" 'multi-photon'
check "25 km human" "$QKD" sim --distance 25 --pulses 30000000
check_match "25 km human: says which term ate the key" "$OUT" 'no key: .*multi-photon'

# --- QBER above the abort threshold: no key, and why
check "misaligned link" "$QKD" sim --misalignment 0.2 --pulses 10000000 --json
check_eq "misaligned: no key" "$(j .secret_bits)" 0
check_eq "misaligned: aborted" "$(j .aborted)" true
check_match "misaligned: reason" "$(j .no_key_reason)" 'abort threshold'
check_eq "misaligned: QBER from the sample" "$(j .qber_source)" sample
check "lower abort threshold" "$QKD" sim --abort-qber 0.005 --pulses 10000000 --json
check_eq "lower threshold: no key" "$(j .secret_bits)" 0

# --- intercept-resend on every pulse: the round aborts on its 1024-bit sample
# (about 25 % in error). The report gives that sample's QBER and says so; with
# no key at either end there is nothing to compare (keys_match null).
check "IR F=1" "$QKD" sim --eve intercept-resend:1 --json
IR=$OUT
ji() { printf '%s' "$IR" | jq -r "$1"; }
check_eq "IR F=1: aborted" "$(ji .aborted)" true
check_match "IR F=1: on the sample" "$(ji .no_key_reason)" '^QBER of the sample is above the abort threshold'
check_eq "IR F=1: qber_source" "$(ji .qber_source)" sample
check_eq "IR F=1: qber = sample_errors / sample_bits" "$(ji '.qber == .sample_errors / .sample_bits')" true
check "IR F=1: sample QBER near 25 % ($(ji .qber))" awk -v q="$(ji .qber)" -v n="$(ji .sample_bits)" \
	'BEGIN { exit !(n == 1024 && q > 0.20 && q < 0.30) }'
check_eq "IR F=1: no key" "$(ji .secret_bits)" 0
check_eq "IR F=1: keys_match null (no key)" "$(ji .keys_match)" null
check "IR F=1 human" "$QKD" sim --eve intercept-resend:1
HUMAN=$OUT
check_match "IR F=1 human: the sample's QBER, named" "$HUMAN" \
	'QBER +2[0-9]\.[0-9]{3} % +\(from the 1024-bit sample; the round aborted; model without Eve '
check_match "IR F=1 human: keys match says no key" "$HUMAN" 'keys match +no key'
check "IR F=1 human: never \"keys match yes\"" test -z "$(printf '%s\n' "$HUMAN" | grep -E 'keys match +yes')"

# --- nothing sifted: no sample, nothing corrected, no QBER at all
check "100 pulses" "$QKD" sim --pulses 100 --json
check_eq "100 pulses: qber null, source none" "$(j '[.qber, .qber_source, .keys_match] | tostring')" \
	'[null,"none",null]'
check "100 pulses human" "$QKD" sim --pulses 100
check_match "100 pulses human: QBER -" "$OUT" 'QBER +- +\(no sample compared, nothing corrected\)'

# --- other codes, defenses and sources
check "cascade-bbn, bennett" "$QKD" sim --ec cascade-bbn --defense bennett --pulses 20000000 --json
check_eq "cascade-bbn: keys match" "$(j .keys_match)" true
check "entangled source" "$QKD" sim --source entangled --mu 0.05 --distance 5 --pulses 20000000 --json
check_eq "entangled: keys match" "$(j .keys_match)" true
check_match "entangled: a key" "$(j .secret_bits)" '^[1-9][0-9]*$'
check "help lists the codes" "$QKD" sim --help
check_match "help: cascade" "$OUT" 'cascade-bbn'

# --- bad input: one line on stderr, "qkd: ...", exit 2, nothing on stdout
for bad in "--mu -1" "--mu 0" "--misalignment 0.6" "--distance abc" "--distance -3" \
	   "--ec nope" "--defense nope" "--pulses 0" "--pulses 1e8" "--source laser" \
	   "--detector-efficiency 1.5" "--dark-count -0.1" "--rate 0" "--confidence -1" \
	   "--abort-qber 0.7" "--frame-bits 10" "--rng-bias 1.5" "--rng-bias -0.1" \
	   "--bogus" "--mu" "stray"; do
	# shellcheck disable=SC2086
	check_exit "rejects $bad" 2 "$QKD" sim $bad
	check_eq "rejects $bad: nothing on stdout" "$OUT" ""
	check_eq "rejects $bad: one line" "$(printf '%s\n' "$ERR" | wc -l)" 1
done
check_exit "unwritable key file" 1 "$QKD" sim --pulses 1000000 --out-alice /nonexistent/dir/key
check_exit "unknown command" 2 "$QKD" nosuch
finish
