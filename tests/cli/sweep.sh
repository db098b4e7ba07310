#!/usr/bin/env bash
# tests/cli/sweep.sh - `qkd sweep`: a distance sweep, its CSV and SVG plot.
# Usage (from the top of the tree): QKD=build/qkd tests/cli/sweep.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

QKD=${QKD:-build/qkd}
N=5000000
SEED=3
j() { printf '%s' "$OUT" | jq -r "$1"; }
# col NAME DISTANCE: a column of the CSV row at that distance
col() {
	awk -F, -v c="$1" -v d="$2" 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
		$1 == d { print $h[c] }' "$CLI_TMP/s.csv"
}

# --- a small sweep: 0, 20, 40 km
check "sweep 0..40 step 20" "$QKD" sweep --param distance --from 0 --to 40 --step 20 \
	--pulses $N --seed $SEED --out "$CLI_TMP/s"
check_match "human: table row for 20 km" "$OUT" '^ +20 +[0-9]+ +[0-9]+ '
check "CSV written" test -s "$CLI_TMP/s.csv"
check_eq "CSV header" "$(head -n 1 "$CLI_TMP/s.csv")" \
	"distance_km,pulses,detections,sifted_bits,qber,secret_bits,rate_bennett,rate_slutsky,rate_decoy_asymptotic,secret_bits_decoy,rate_decoy,qber_source"
check_eq "CSV: 3 rows" "$(tail -n +2 "$CLI_TMP/s.csv" | wc -l)" 3
check_eq "CSV: distances" "$(tail -n +2 "$CLI_TMP/s.csv" | cut -d, -f1 | tr '\n' ' ')" "0 20 40 "
check "SVG written" test -s "$CLI_TMP/s.svg"
check "SVG is an SVG" grep -q -e '^<?xml' -e '<svg' "$CLI_TMP/s.svg"

# --- a row is the same run as qkd sim at that distance
check "sim at 20 km" "$QKD" sim --distance 20 --pulses $N --seed $SEED --json
check_eq "20 km: detections as qkd sim" "$(col detections 20)" "$(j .detections)"
check_eq "20 km: sifted bits as qkd sim" "$(col sifted_bits 20)" "$(j .sifted_bits)"
check_eq "20 km: secret bits as qkd sim" "$(col secret_bits 20)" "$(j .secret_bits)"
check_eq "20 km: QBER as qkd sim" "$(col qber 20) $(col qber_source 20)" \
	"$(printf '%.6f' "$(j .qber)") $(j .qber_source)"

# --- 200 km: dark counts dominate, the run aborts on its sample; the point
# reports the sample's QBER, as qkd sim does, and says so
check "sweep 200..200" "$QKD" sweep --param distance --from 200 --to 200 --step 1 \
	--pulses $N --seed $SEED --out "$CLI_TMP/far" --json
check_eq "200 km: QBER from the sample" "$(j '.points[0].qber_source')" sample
FAR_Q=$(j '.points[0].qber')
check "sim at 200 km" "$QKD" sim --distance 200 --pulses $N --seed $SEED --json
check_eq "200 km: QBER as qkd sim" "$FAR_Q $(j .qber_source)" "$(j .qber) sample"
check "200 km: the sample QBER is above the threshold ($FAR_Q)" awk -v q="$FAR_Q" 'BEGIN { exit !(q > 0.11) }'
check "200 km human" "$QKD" sweep --param distance --from 200 --to 200 --step 1 \
	--pulses $N --seed $SEED --out "$CLI_TMP/far"
check_match "200 km human: the sample's QBER is marked" "$OUT" '^ +200 +[0-9]+ +[0-9]+ +[0-9.]+\* '
check "sim at 0 km, bennett" "$QKD" sim --distance 0 --pulses $N --seed $SEED --defense bennett --json
B0=$(j .secret_bits)
check "sweep 0..0 with --defense bennett" "$QKD" sweep --param distance --from 0 --to 0 \
	--step 1 --pulses $N --seed $SEED --defense bennett --out "$CLI_TMP/b" --json
check_eq "bennett: one point" "$(j '.points | length')" 1
check_eq "bennett: secret bits as qkd sim" "$(j '.points[0].secret_bits')" "$B0"
check_eq "json: csv path" "$(j .csv)" "$CLI_TMP/b.csv"
check_eq "json: plot path" "$(j .plot)" "$CLI_TMP/b.svg"
check "bennett: the run's key is positive at 0 km" test "$B0" -gt 0

# --- shape of the curves
# shellcheck disable=SC2016  # awk fields, not shell
check "slutsky rate non-increasing with distance" awk -F, 'NR > 2 && $8 > prev { exit 1 } NR > 1 { prev = $8 }' "$CLI_TMP/s.csv"
check "slutsky rate positive at 0 km" awk -v r="$(col rate_slutsky 0)" 'BEGIN { exit !(r > 0) }'
check "decoy asymptotic rate positive at 40 km" awk -v r="$(col rate_decoy_asymptotic 40)" 'BEGIN { exit !(r > 0) }'
# shellcheck disable=SC2016
check "decoy asymptotic rate decreasing" awk -F, 'NR > 2 && $9 >= prev { exit 1 } NR > 1 { prev = $9 }' "$CLI_TMP/s.csv"
check "slutsky rate = its key / pulses at 0 km (the run used slutsky)" \
	awk -v r="$(col rate_slutsky 0)" -v s="$(col secret_bits 0)" -v n=$N \
	'BEGIN { d = r - s / n; if (d < 0) d = -d; exit !(d <= 1e-6 * r + 1e-12) }'

# --- gnuplot missing: CSV still written, exit 1
check_exit "no gnuplot: exit 1" 1 env PATH=/nonexistent "$QKD" sweep --param distance \
	--from 0 --to 0 --step 1 --pulses 100000 --out "$CLI_TMP/ng"
check_match "no gnuplot: says so" "$ERR" '^qkd: sweep: gnuplot not found: '
check "no gnuplot: CSV written" test -s "$CLI_TMP/ng.csv"

# --- the finite-key decoy curve: a second run per point (qkd sim --defense decoy)
check "decoy curve" "$QKD" sweep --param distance --from 0 --to 40 --step 20 --pulses 30000000 \
	--decoy 0.15,0.0002 --decoy-probs 0.5,0.3,0.2 --p-x 0.6 --decoy-pulses 500000000 \
	--out "$CLI_TMP/d" --json
DJ=$OUT
check_eq "decoy curve: the decoy run is described" "$(printf '%s' "$DJ" | jq -c .decoy_run.mu)" "[0.5,0.15,0.0002]"
check "decoy curve: positive finite-key rate at every point" \
	awk -F, 'NR > 1 && !($11 > 0) { exit 1 }' "$CLI_TMP/d.csv"
check "decoy curve: below the asymptotic decoy rate times P(X)^2 / (1/2)" \
	awk -F, 'NR > 1 && !($11 < $9 * 0.72 * 2) { exit 1 }' "$CLI_TMP/d.csv"
check "decoy curve: decreasing with distance" awk -F, 'NR > 2 && $11 >= prev { exit 1 } NR > 1 { prev = $11 }' "$CLI_TMP/d.csv"
check_eq "decoy curve: rows match single decoy runs" \
	"$("$QKD" sim --json --pulses 500000000 --distance 20 --mu 0.5 --decoy 0.15,0.0002 \
	   --decoy-probs 0.5,0.3,0.2 --p-x 0.6 --defense decoy | jq .secret_bits)" \
	"$(awk -F, '$1 == 20 { print $10 }' "$CLI_TMP/d.csv")"
check "decoy curve: plot has four curves" grep -c "finite key" "$CLI_TMP/d.svg"
check_exit "sweep --defense decoy points to --decoy" 2 "$QKD" sweep --param distance --from 0 --to 20 \
	--step 10 --defense decoy --out "$CLI_TMP/bad"
check_exit "--decoy-pulses without --decoy" 2 "$QKD" sweep --param distance --from 0 --to 20 \
	--step 10 --decoy-pulses 1000 --out "$CLI_TMP/bad"

# --- bad input: one line on stderr, "qkd: ...", exit 2, nothing on stdout
R="--param distance --from 0 --to 40"
for bad in "$R --step 0" "$R --step -10" "--param distance --from 40 --to 0 --step 10" \
	   "--param distance --from 0 --to 150 --step 7" \
	   "--param distance --from 0 --to 1000 --step 0.5" \
	   "$R --step abc" "--param distance --from x --to 40 --step 10" \
	   "--param distance --from 0 --to 4e --step 10" \
	   "--param mu --from 0 --to 40 --step 10" "$R --step 10 --defense nope" \
	   "--from 0 --to 40 --step 10" "--param distance --to 40 --step 10" \
	   "$R --step 10 --pulses 0" "$R --step 10 --mu 0" "$R --step 10 --misalignment 0.6" \
	   "$R --step 10 --bogus" "$R --step 10 stray" "$R --step"; do
	# shellcheck disable=SC2086
	check_exit "rejects $bad" 2 "$QKD" sweep $bad --out "$CLI_TMP/bad"
	check_eq "rejects $bad: nothing on stdout" "$OUT" ""
	check_eq "rejects $bad: one line" "$(printf '%s\n' "$ERR" | wc -l)" 1
done
check_match "unknown param lists the supported ones" \
	"$("$QKD" sweep --param mu --from 0 --to 1 --step 1 2>&1)" 'supported: distance'
check_match "uneven step says why" \
	"$("$QKD" sweep --param distance --from 0 --to 150 --step 7 2>&1)" 'must be a multiple of step'
check "bad input wrote no CSV" test ! -e "$CLI_TMP/bad.csv"
check "help" "$QKD" sweep --help
check_match "help: names --param" "$OUT" '--param'
finish
