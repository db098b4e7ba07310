#!/usr/bin/env bash
# tests/cli/freespace.sh - `qkd sim --channel free-space`: the run names its
# channel, its figures follow docs/optical-model.md section 1a, daylight
# background raises the QBER, bad channel options are refused.
# Usage (from the top of the tree): QKD=build/qkd tests/cli/freespace.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

QKD=${QKD:-build/qkd}
# check replaces OUT with each command's output: keep each run's JSON in J.
j() { printf '%s' "$J" | jq -r "$1"; }

# eta_d 0.5 so that BBN's multi-photon term leaves a key at mu 0.1.
FS="--channel free-space --distance 5 --detector-efficiency 0.5 --pulses 30000000"

# --- a night run: the report names the channel and its figures
# shellcheck disable=SC2086
check "night run" "$QKD" sim $FS --json --out-alice "$CLI_TMP/a" --out-bob "$CLI_TMP/b"
NIGHT=$OUT J=$OUT
check_eq "night: channel kind" "$(j .channel.kind)" free-space
check_eq "night: keys match" "$(j .keys_match)" true
check_match "night: a key" "$(j .secret_bits)" '^[1-9][0-9]*$'
# Defaults: spot 0.05 + 5000 * 20e-6 = 0.15 m, T_geo = (0.10/0.15)^2 = 4/9.
check_near "night: T_geo" "$(j .channel.geometric_transmittance)" 0.4444444444 1e-9
check_near "night: T_atm" "$(j .channel.atmospheric_transmittance)" 0.8912509381 1e-9
check_near "night: T" "$(j .channel.transmittance)" 0.3961115281 1e-9
check_near "night: noise per gate" "$(j .channel.noise_per_gate)" 1.099999e-05 1e-12
check_eq "night: daylight false" "$(j .channel.daylight)" false
check "night: detections within 5 sd of the model" \
	awk -v d="$(j .detections)" -v p="$(j .detection_prob_expected)" -v n="$(j .pulses)" \
	'BEGIN { m = n * p; s = sqrt(m); exit !(d > m - 5 * s && d < m + 5 * s) }'
# The model's P(click) written out: 1 - (1-p_n)^2 exp(-mu T eta_d).
check "night: P(click) is the formula" \
	awk -v p="$(j .detection_prob_expected)" -v t="$(j .channel.transmittance)" \
	    -v n="$(j .channel.noise_per_gate)" \
	'BEGIN { f = 1 - (1 - n) ^ 2 * exp(-0.1 * t * 0.5); exit !((p - f) ^ 2 < (1e-9 * f) ^ 2) }'

# --- daylight: more background, higher QBER, same detections of signal
# shellcheck disable=SC2086
check "day run" "$QKD" sim $FS --daylight --background-day 3e-4 --json
J=$OUT
check_near "day: noise per gate" "$(j .channel.noise_per_gate)" 3.09997e-04 1e-12
check_eq "day: daylight true" "$(j .channel.daylight)" true
check "day: QBER above night's by the model" \
	awk -v d="$(j .qber_expected)" -v n="$(printf '%s' "$NIGHT" | jq -r .qber_expected)" \
	'BEGIN { exit !(d > n + 0.01) }'
check "day: QBER near the model" \
	awk -v q="$(j .qber)" -v w="$(j .qber_expected)" 'BEGIN { exit !(q > w * 0.8 && q < w * 1.2) }'

# --- human report: the channel line
# shellcheck disable=SC2086
check "human report" "$QKD" sim $FS --pulses 5000000
check_match "human: names the channel" "$OUT" 'free-space 5 km'
check_match "human: T_geo" "$OUT" 'T_geo 0\.4444'

# --- fiber is still fiber, and says so
check "fiber json" "$QKD" sim --pulses 2000000 --json
J=$OUT
check_eq "fiber: channel kind" "$(j .channel.kind)" fiber
check_eq "fiber: no aperture" "$(j .channel.rx_aperture_m)" null

# --- qkd sweep takes the same channel: its 10 km point is qkd sim's run
check "sweep free-space" "$QKD" sweep --param distance --from 0 --to 20 --step 10 \
	--channel free-space --daylight --pulses 3000000 --out "$CLI_TMP/sw" --json
J=$OUT
SW10=$(j '.points[1] | [.detections, .sifted_bits, .secret_bits] | tostring')
check "sweep: detections fall with distance" \
	awk -v a="$(j '.points[0].detections')" -v b="$(j '.points[1].detections')" \
	    -v c="$(j '.points[2].detections')" 'BEGIN { exit !(a > b && b > c) }'
check "sim at the sweep's 10 km point" "$QKD" sim --channel free-space --daylight --distance 10 \
	--pulses 3000000 --json
J=$OUT
check_eq "sweep 10 km = sim 10 km" "$(j '[.detections, .sifted_bits, .secret_bits] | tostring')" "$SW10"
check_exit "sweep rejects --beam-divergence -1" 2 "$QKD" sweep --param distance --from 0 --to 10 \
	--step 10 --channel free-space --beam-divergence -1

# --- bad input: one line, exit 2
for bad in "--channel air" "--beam-divergence -1" "--beam-divergence 1" "--tx-aperture 0" \
	   "--rx-aperture -0.1" "--atmos-loss -1" "--background-day 2" "--background-night -1"; do
	# shellcheck disable=SC2086
	check_exit "rejects $bad" 2 "$QKD" sim --channel free-space $bad
	check_eq "rejects $bad: nothing on stdout" "$OUT" ""
	check_eq "rejects $bad: one line" "$(printf '%s\n' "$ERR" | wc -l)" 1
done
finish
