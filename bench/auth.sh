#!/usr/bin/env bash
# bench/auth.sh BUILD_DIR - what authenticating a round's messages costs,
# for `make bench` (docs/performance.md, "Authentication key per round"):
# with batches (one tag per AUTH frame, what the node does) against a tag on
# every message, on the three links of tests/soak/soak.sh:
#
#   example    10 km, detector efficiency 0.1, 5e8 pulses a round
#   test-2e7   1 km, detector efficiency 0.5, 2e7 pulses a round
#   test-1e7   the same at 1e7 pulses
#
# One `qkd sim --json` per link (seed 1, so the figures repeat); the node
# adds COMMIT and COMMIT_ACK, 2 more tags (128 bits) a round. Exits 1 if a
# run failed.
set -u

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
QKD=$1/qkd
[ -x "$QKD" ] || { echo "$0: $QKD is missing: build first" >&2; exit 1; }
command -v jq >/dev/null || { echo "$0: jq is not installed" >&2; exit 1; }

# link label, then qkd sim's options
LINKS=(
	"example|--pulses 500000000"
	"test-2e7|--pulses 20000000 --distance 1 --detector-efficiency 0.5"
	"test-1e7|--pulses 10000000 --distance 1 --detector-efficiency 0.5"
)
# The node's COMMIT and COMMIT_ACK: one more AUTH frame each way a round.
NODE_EXTRA_BITS=128
FMT='%-9s %9s %7s %8s %9s %12s %8s %5s %6s %8s %5s %8s\n'
echo "authentication key per round (qkd sim --json, .authentication; seed 1)"
# shellcheck disable=SC2059  # one format for the header and the rows
printf "$FMT" link pulses secret ec_rtts messages per_message share tags batch share node share
# pct BITS: BITS as a share of the round's secret bits k.
pct() { awk -v x="$1" -v k="$k" 'BEGIN { if (k > 0) printf "%.3f%%", 100 * x / k; else print "-" }'; }
FAILED=0
for l in "${LINKS[@]}"; do
	name=${l%%|*}
	opts=${l#*|}
	# shellcheck disable=SC2086  # the options are words
	if ! j=$(timeout 120 "$QKD" sim $opts --json); then
		echo "$0: qkd sim $opts failed" >&2
		FAILED=1
		continue
	fi
	IFS=$'\t' read -r k rtts msgs per tags bits < <(printf '%s' "$j" | jq -r '
		[.secret_bits, .authentication.ec_round_trips, .authentication.messages,
		 .authentication.per_message_tag_bits, .authentication.tags,
		 .authentication.bits] | @tsv')
	[ -n "${bits:-}" ] || { echo "$0: qkd sim $opts: no .authentication" >&2; FAILED=1; continue; }
	node=$((bits + NODE_EXTRA_BITS))
	# shellcheck disable=SC2059
	printf "$FMT" "$name" "$(printf '%s' "$opts" | awk '{ print $2 }')" "$k" "$rtts" "$msgs" \
		"$per" "$(pct "$per")" "$tags" "$bits" "$(pct "$bits")" "$node" "$(pct "$node")"
done
echo "secret: bits per round; per_message: a 64-bit tag on every message; batch:"
echo "the AUTH frames of the run (bits); node: batch + COMMIT and COMMIT_ACK, the"
echo "2 more tags a round of \`qkd node\` (qkd status: last_round_auth_bits)."
echo "share: of the round's secret bits."
exit "$FAILED"
