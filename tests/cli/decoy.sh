#!/usr/bin/env bash
# tests/cli/decoy.sh - `qkd sim --defense decoy`: three-intensity BB84 with
# the finite-key bound of Lim et al. 2014 (docs/decoy.md).
# Usage (from the top of the tree): QKD=build/qkd tests/cli/decoy.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

QKD=${QKD:-build/qkd}
j() { printf '%s' "$OUT" | jq -r "$1"; }

# The paper's detector (Sec. IV): eta_Bob 10 %, p_dc 6e-7, e_mis 0.5 %, and
# intensities 0.5 / 0.1 / 2e-4 (probabilities 0.6 / 0.3 / 0.1) with P(X) = 0.7.
PAPER=(--mu 0.5 --decoy 0.1,0.0002 --decoy-probs 0.6,0.3,0.1 --p-x 0.7
	--detector-efficiency 0.1 --dark-count 6e-7 --misalignment 0.005 --defense decoy)

# --- an honest 50 km link keeps a key, and the counts follow the model
N=1000000000
check "honest 50 km" "$QKD" sim --json --pulses $N --distance 50 "${PAPER[@]}"
HONEST=$OUT
h() { printf '%s' "$HONEST" | jq -r "$1"; }
check_eq "honest 50 km: keys match" "$(h .keys_match)" true
check "honest 50 km: positive key ($(h .secret_bits))" awk -v s="$(h .secret_bits)" 'BEGIN { exit !(s > 10000) }'
check_eq "honest 50 km: the key is the bound's" "$(h '.secret_bits <= .decoy.key_length')" true
check_eq "honest 50 km: decoy terms present" \
	"$(h '.decoy | [has("n_x","n_z","m_z","s_x0","s_x1","phi_x","lambda_ec","key_length")] | all')" true
# n_{X,k} = N q_x^2 p_k P_k, with P_k from the channel model (docs/optical-model.md).
for k in 0 1 2; do
	mu=$(printf '%s' "$HONEST" | jq -r ".decoy.mu[$k]")
	p=$(printf '%s' "$HONEST" | jq -r ".decoy.p_mu[$k]")
	nx=$(printf '%s' "$HONEST" | jq -r ".decoy.n_x[$k]")
	nz=$(printf '%s' "$HONEST" | jq -r ".decoy.n_z[$k]")
	check "n_X,$k = $nx within 5 sd of the model" awk -v mu="$mu" -v p="$p" -v n="$nx" -v N=$N \
		'BEGIN { eta = 10^(-0.2*50/10) * 0.1; pc = 1 - (1-6e-7)^2 * exp(-mu*eta);
			 m = N * 0.49 * p * pc; exit !(n > m - 5*sqrt(m) - 1 && n < m + 5*sqrt(m) + 1) }'
	check "n_Z,$k = $nz within 5 sd of the model" awk -v mu="$mu" -v p="$p" -v n="$nz" -v N=$N \
		'BEGIN { eta = 10^(-0.2*50/10) * 0.1; pc = 1 - (1-6e-7)^2 * exp(-mu*eta);
			 m = N * 0.09 * p * pc; exit !(n > m - 5*sqrt(m) - 1 && n < m + 5*sqrt(m) + 1) }'
done
check "Z errors of the signal near e_mis" \
	awk -v m="$(printf '%s' "$HONEST" | jq -r '.decoy.m_z[0]')" -v n="$(printf '%s' "$HONEST" | jq -r '.decoy.n_z[0]')" \
	'BEGIN { e = m / n; exit !(e > 0.002 && e < 0.01) }'

# --- photon-number splitting: the bound sees the missing single photons
check "PNS 50 km" "$QKD" sim --json --pulses $N --distance 50 --eve pns "${PAPER[@]}"
PNS=$OUT
pj() { printf '%s' "$PNS" | jq -r "$1"; }
check_eq "PNS 50 km: no key" "$(pj .secret_bits)" 0
check "PNS 50 km: s_X1 collapses ($(pj .decoy.s_x1) vs $(h .decoy.s_x1))" \
	awk -v s="$(pj .decoy.s_x1)" -v h="$(h .decoy.s_x1)" 'BEGIN { exit !(s < 0.1 * h) }'
# Eve matches the signal's detection rate (she cannot tell the intensities
# apart): the signal's counts stay honest, the decoys' give her away.
check "PNS 50 km: signal detections as on the honest link" \
	awk -v a="$(pj '.decoy.n_x[0] + .decoy.n_z[0]')" -v b="$(h '.decoy.n_x[0] + .decoy.n_z[0]')" \
	'BEGIN { exit !(a > 0.97 * b && a < 1.03 * b) }'
check "PNS 50 km: the weak decoy's detections drop" \
	awk -v a="$(pj '.decoy.n_x[1] + .decoy.n_z[1]')" -v b="$(h '.decoy.n_x[1] + .decoy.n_z[1]')" \
	'BEGIN { exit !(a < 0.9 * b) }'
check "PNS 50 km: Eve knows key bits ($(pj .eve_known_bits))" awk -v k="$(pj .eve_known_bits)" 'BEGIN { exit !(k > 0) }'
check_match "PNS 50 km: the reason names the decoy bound" "$(pj .no_key_reason)" "decoy"

# --- the key length grows with the number of pulses
prev=-1
for n in 100000000 300000000 1000000000; do
	check "20 km, $n pulses" "$QKD" sim --json --pulses $n --distance 20 "${PAPER[@]}"
	cur=$(j .secret_bits)
	check "20 km: key grows with pulses ($prev -> $cur)" \
		awk -v a="$prev" -v b="$cur" 'BEGIN { exit !(b > a) }'
	prev=$cur
done

# --- well beyond 100 km
# The same detector; intensities and probabilities tuned for the long link
# (a stronger weak decoy and more Z statistics for the phase error bound).
check "honest 120 km" "$QKD" sim --json --pulses 3000000000 --distance 120 --mu 0.5 \
	--decoy 0.15,0.0002 --decoy-probs 0.5,0.3,0.2 --p-x 0.6 --detector-efficiency 0.1 \
	--dark-count 6e-7 --misalignment 0.005 --defense decoy
LONG=$OUT
check "120 km: positive key ($(printf '%s' "$LONG" | jq -r .secret_bits) bits)" \
	awk -v s="$(printf '%s' "$LONG" | jq -r .secret_bits)" 'BEGIN { exit !(s > 0) }'
check_eq "120 km: keys match" "$(printf '%s' "$LONG" | jq -r .keys_match)" true

# --- bad input
check_exit "decoys not ordered" 2 "$QKD" sim --mu 0.5 --decoy 0.0002,0.1
check_exit "decoys too strong for the signal" 2 "$QKD" sim --mu 0.2 --decoy 0.15,0.1
check_exit "negative decoy" 2 "$QKD" sim --mu 0.5 --decoy 0.1,-0.01
check_exit "one decoy only" 2 "$QKD" sim --mu 0.5 --decoy 0.1
check_exit "decoy not a number" 2 "$QKD" sim --mu 0.5 --decoy 0.1,abc
check_exit "probabilities do not sum to 1" 2 "$QKD" sim --mu 0.5 --decoy 0.1,0 --decoy-probs 0.5,0.3,0.1
check_exit "a probability of 0" 2 "$QKD" sim --mu 0.5 --decoy 0.1,0 --decoy-probs 1,0,0
check_exit "probabilities without decoys" 2 "$QKD" sim --decoy-probs 0.8,0.1,0.1
check_exit "defense decoy without decoys" 2 "$QKD" sim --defense decoy
check_exit "decoys with an entangled source" 2 "$QKD" sim --source entangled --decoy 0.05,0
check_exit "eps-sec 0" 2 "$QKD" sim --eps-sec 0
check_exit "eps-sec 1" 2 "$QKD" sim --eps-sec 1
check_exit "eps-cor above 1" 2 "$QKD" sim --eps-cor 2
check_exit "eps-cor not a number" 2 "$QKD" sim --eps-cor x
check_exit "P(X) of 1" 2 "$QKD" sim --p-x 1

finish
