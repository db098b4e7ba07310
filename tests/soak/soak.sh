#!/usr/bin/env bash
# tests/soak/soak.sh - a long run of three QKD links at once, each a pair of
# `qkd node` daemons on loopback, to see that the authentication key holds
# steady round after round (docs/performance.md, "Soak"). `make soak` runs it;
# `make test` does not.
#
#   example    the link of examples/alice.conf and bob.conf (10 km, eta_d 0.1,
#              5e8 pulses a round, auth_reserve_bits 2^18), without the kme
#   test-2e7   the 1 km test link of tests/integration/node.sh (eta_d 0.5),
#              2e7 pulses a round, auth_reserve_bits 2621440
#   test-1e7   the same link at 1e7 pulses a round
#
# Each link has its own 64 KiB bootstrap key. Every 10 s the script samples
# both ends' `qkd status --json` into LINK.csv. At the end it stops every
# node with SIGTERM, compares each link's two stores, prints a summary table
# and "ok - ..." / "not ok - ..." lines (tests/cli/lib.sh), and exits 1 if
# any check failed.
#
# Environment:
#   QKD                 the executable (default build/qkd)
#   SOAK_MINUTES        how long the links run, all at once (default 30)
#   SOAK_FAULTS=1       also kill -9 or SIGTERM-restart one end of a random
#                       link now and then (every SOAK_FAULT_SECONDS on
#                       average, default 180; none in the last stretch of
#                       the run), logged to faults.log
#   SOAK_LOG_LEVEL      the nodes' log_level (default info)
#   SOAK_LINKS          which links (default "example t2e7 t1e7")
#   KEEP=1              keep the scratch directory (configs, logs, stores,
#                       CSVs, faults.log); it is removed otherwise
# Usage (from the top of the tree): QKD=build/qkd tests/soak/soak.sh
# shellcheck disable=SC2154  # S_* are set by eval from summarize's output
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/cli/lib.sh
. "$TOP/tests/cli/lib.sh"
# shellcheck source=tests/integration/lib_nodes.sh
. "$TOP/tests/integration/lib_nodes.sh"

QKD=${QKD:-$TOP/build/qkd}
QKD=$(cd "$(dirname "$QKD")" && pwd)/$(basename "$QKD")
SOAK_MINUTES=${SOAK_MINUTES:-30}
SOAK_FAULTS=${SOAK_FAULTS:-0}
SOAK_FAULT_SECONDS=${SOAK_FAULT_SECONDS:-180}
LOG_LEVEL=${SOAK_LOG_LEVEL:-info}
for v in "$SOAK_MINUTES" "$SOAK_FAULT_SECONDS"; do
	case $v in ''|*[!0-9]*|0) echo "$0: SOAK_MINUTES, SOAK_FAULT_SECONDS: positive integers" >&2; exit 2 ;; esac
done
case $SOAK_FAULTS in 0|1) ;; *) echo "$0: SOAK_FAULTS: 0 or 1" >&2; exit 2 ;; esac
[ -x "$QKD" ] || { echo "$0: $QKD is missing: build first" >&2; exit 2; }
for t in jq ss timeout awk; do
	command -v "$t" >/dev/null || { echo "$0: $t is not installed" >&2; exit 2; }
done

# A scratch directory of its own name (lib.sh's qkd-cli.* is for the short
# CLI tests), which check's $CLI_TMP/out and err then share.
rmdir "$CLI_TMP"
CLI_TMP=$(mktemp -d "${TMPDIR:-/tmp}/qkd-soak.XXXXXX") || exit 1
D=$CLI_TMP
PIDS=()	# start's list; cleanup kills only the nodes' current pids instead
NODES=()
# shellcheck disable=SC2317  # run by the trap
cleanup() {
	local n p
	for n in "${NODES[@]+"${NODES[@]}"}"; do
		p=$(eval "echo \${PID_$n:-}")
		[ -n "$p" ] && kill -9 "$p" 2>/dev/null
	done
	if [ -n "${KEEP:-}" ]; then echo "soak.sh: kept $D" >&2; else rm -rf "$D"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The links: id (used in file and variable names), label, round_pulses,
# auth_reserve_bits. SOAK_LINKS="example t1e7" runs only some of them.
read -r -a LINKS <<<"${SOAK_LINKS:-example t2e7 t1e7}"
declare -A LABEL=([example]=example [t2e7]=test-2e7 [t1e7]=test-1e7)
declare -A PULSES=([example]=500000000 [t2e7]=20000000 [t1e7]=10000000)
declare -A RESERVE=([example]=262144 [t2e7]=2621440 [t1e7]=2621440)
for l in "${LINKS[@]}"; do
	[ -n "${PULSES[$l]:-}" ] || { echo "$0: SOAK_LINKS: unknown link $l (example, t2e7, t1e7)" >&2; exit 2; }
done
KEY_BYTES=65536

# mkconf_example ROLE LINK CP FP: examples/ROLE.conf with this run's ports,
# store, key and status socket, and without its kme group.
mkconf_example() {
	local out=$D/$1_$2.conf
	sed -e '/^kme = {/,$d' \
	    -e "s/status = \"$1.sock\"/status = \"$1_$2.sock\"/" \
	    -e "s/127.0.0.1:7101/127.0.0.1:$3/; s/127.0.0.1:7201/127.0.0.1:$4/" \
	    -e "s/store = \"$1-ab.db\"/store = \"$1_$2.db\"/" \
	    -e "s/auth_key = \"ab.key\"/auth_key = \"$2.key\"/" \
	    -e "s/log_level = \"info\"/log_level = \"$LOG_LEVEL\"/" \
	    "$TOP/examples/$1.conf" >"$out"
	grep -q "127.0.0.1:$3\"" "$out" && grep -q "127.0.0.1:$4\"" "$out" &&
		grep -q "$1_$2.db" "$out" && grep -q "\"$2.key\"" "$out" &&
		grep -q "$1_$2.sock" "$out" && ! grep -q '^kme' "$out" ||
		{ echo "$0: examples/$1.conf changed shape; cannot derive $out" >&2; exit 2; }
}

# mkconf_test ROLE LINK CP FP: the 1 km link of tests/integration/node.sh.
mkconf_test() {
	cat >"$D/$1_$2.conf" <<EOF
node = { name = "$1"; status = "$1_$2.sock"; log_level = "$LOG_LEVEL"; };
links = ( {
  name = "$2"; role = "$1";
  classical = "127.0.0.1:$3"; fiber = "127.0.0.1:$4";
  store = "$1_$2.db"; auth_key = "$2.key";
  auth_reserve_bits = ${RESERVE[$2]}; round_pulses = ${PULSES[$2]};
  optical = { distance_km = 1.0; detector_efficiency = 0.5; };
} );
EOF
}

TAKEN=()
for l in "${LINKS[@]}"; do
	cp=$(free_port "${TAKEN[@]+"${TAKEN[@]}"}"); TAKEN+=("$cp")
	fp=$(free_port "${TAKEN[@]}"); TAKEN+=("$fp")
	[ "$cp" != 0 ] && [ "$fp" != 0 ] || { echo "$0: no free port" >&2; exit 1; }
	head -c "$KEY_BYTES" /dev/urandom >"$D/$l.key"
	for r in alice bob; do
		NODES+=("${r}_$l")
		if [ "$l" = example ]; then mkconf_example "$r" "$l" "$cp" "$fp"; else mkconf_test "$r" "$l" "$cp" "$fp"; fi
	done
	echo "t_s,node,state,rounds_ok,rounds_failed,last_round_auth_bits,last_round_key_bits,session_auth_bits,session_key_bits,auth_bits_poorer,auth_low,auth_exhausted,tags_failed,stored_blocks" >"$D/$l.csv"
done
: >"$D/faults.log"

now() { echo $((SECONDS - T0)); }
# note LINE: a line for faults.log and, as a comment, for the output.
note() { echo "$(now) $*" >>"$D/faults.log"; echo "# t=$(now)s $*"; }
pid_of() { eval "echo \${PID_$1:-}"; }

# launch NODE: start it; after its first start a "restarted" row in the
# link's CSV tells the summary that the daemon's counters began again.
declare -A STARTED=()
launch() {
	local l=${1#*_}
	[ -n "${STARTED[$1]:-}" ] && echo "$(now),${1%%_*},restarted" >>"$D/$l.csv"
	STARTED[$1]=1
	start "$1"
}

# sample: one row per node of each link.
sample() {
	local l r row t
	t=$(now)
	for l in "${LINKS[@]}"; do
		for r in alice bob; do
			row=$(status_json "${r}_$l" | jq -r '.links[0] | [.state, .rounds_ok, .rounds_failed,
				.last_round_auth_bits, .last_round_key_bits, .session_auth_bits,
				.session_key_bits, .auth_bits_poorer, .auth_low, .auth_exhausted,
				.tags_failed, .stored_blocks] | map(tostring) | join(",")' 2>/dev/null)
			echo "$t,$r,${row:-down}" >>"$D/$l.csv"
		done
	done
}

# watch: a node that is gone without a fault having stopped it exited on its
# own (or was killed by someone else: the status says which signal). Note
# it, and start it again (at most 3 times per node, not at the end) so that
# the rest of the run still measures the link.
declare -A DIED=()
watch() {
	local l r n pid rc
	for l in "${LINKS[@]}"; do
		for r in alice bob; do
			n=${r}_$l
			pid=$(pid_of "$n")
			# No pid: given up on after its third death.
			[ -z "$pid" ] || kill -0 "$pid" 2>/dev/null && continue
			wait "$pid"; rc=$?
			[ "$rc" -gt 128 ] && rc="$rc (signal $((rc - 128)))"
			DIED[$n]=$((${DIED[$n]:-0} + 1))
			note "UNEXPECTED: $n (pid $pid) exited on its own, status $rc"
			eval "PID_$n="
			[ "${DIED[$n]}" -le 3 ] && [ "${1:-}" != final ] && { launch "$n"; note "restarted $n"; }
		done
	done
}

# fault: kill -9 or SIGTERM one end of a random link, then start it again.
TERM_BAD=0
fault() {
	local l=${LINKS[$((RANDOM % ${#LINKS[@]}))]} r n pid
	r=$([ $((RANDOM % 2)) = 0 ] && echo alice || echo bob)
	n=${r}_$l
	pid=$(pid_of "$n")
	[ -n "$pid" ] || return 0
	if [ $((RANDOM % 2)) = 0 ]; then
		kill -9 "$pid"; wait "$pid" 2>/dev/null
		eval "PID_$n="
		note "fault: kill -9 $n (${LABEL[$l]})"
		sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.1f", (r % 30) / 10 }')"
	else
		stop "$n"
		note "fault: SIGTERM $n (${LABEL[$l]}), exit $STOP_RC"
		[ "$STOP_RC" = 0 ] || TERM_BAD=$((TERM_BAD + 1))
	fi
	launch "$n"
}

T0=$SECONDS
for l in "${LINKS[@]}"; do launch "bob_$l"; launch "alice_$l"; done
DUR=$((SOAK_MINUTES * 60))
NSAMPLES=$((DUR / 10))
# No fault in the last stretch, so every link ends with a few clean rounds.
QUIET=$((DUR / 4 < 120 ? DUR / 4 : 120))
MAXFAULTS=$((DUR / (SOAK_FAULT_SECONDS / 2 + 1) + 1))
[ "$MAXFAULTS" -gt 50 ] && MAXFAULTS=50
NFAULTS=0
next_fault() { echo $(($(now) + SOAK_FAULT_SECONDS / 2 + RANDOM % (SOAK_FAULT_SECONDS + 1))); }
NEXT_FAULT=$(next_fault)
echo "# soak: ${SOAK_MINUTES} min, links ${LINKS[*]}, faults $SOAK_FAULTS, in $D"
for i in $(seq 1 "$NSAMPLES"); do
	[ -d "$D" ] || { echo "soak.sh: $D vanished: run stopped at $(now)s" >&2; break; }
	w=$((T0 + 10 * i - SECONDS))
	[ "$w" -gt 0 ] && sleep "$w"
	watch
	sample
	if [ "$SOAK_FAULTS" = 1 ] && [ "$NFAULTS" -lt "$MAXFAULTS" ] &&
	   [ "$(now)" -ge "$NEXT_FAULT" ] && [ "$(now)" -lt $((DUR - QUIET)) ]; then
		fault
		NFAULTS=$((NFAULTS + 1))
		NEXT_FAULT=$(next_fault)
	fi
	[ $((i % 30)) = 0 ] && echo "# t=$(now)s: $(for l in "${LINKS[@]}"; do
		printf '%s %s rounds; ' "${LABEL[$l]}" "$(tail -n 1 "$D/$l.csv" | cut -d, -f4)"; done)"
	[ "$(now)" -gt $((DUR + 120)) ] && break
done
RUN_S=$(now)

# Stop every node: SIGTERM to all at once, then wait for each (stop, 20 s at
# most); each should exit 0.
watch final
for l in "${LINKS[@]}"; do
	for r in alice bob; do
		pid=$(pid_of "${r}_$l")
		[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
	done
done
declare -A STOP_BAD=()
for l in "${LINKS[@]}"; do
	for r in alice bob; do
		stop "${r}_$l"
		[ "$STOP_RC" = 0 ] || STOP_BAD[$l]="${STOP_BAD[$l]:-}$r $STOP_RC "
	done
done

# same_stores LINK: both stores hold the same FINAL blocks with the same bits
# and no PENDING block (as in tests/integration/node.sh).
keys() { timeout 60 "$QKD" keys "$@"; }
same_stores() {
	local a b id
	a=$(keys --store "$D/alice_$1.db" --json | jq -c '[.blocks[] | {id, state, bits}]')
	b=$(keys --store "$D/bob_$1.db" --json | jq -c '[.blocks[] | {id, state, bits}]')
	[ -n "$a" ] && [ "$a" = "$b" ] || { echo "lists differ: $a vs $b" >&2; return 1; }
	printf '%s' "$a" | jq -e 'all(.[]; .state != "pending")' >/dev/null || { echo "pending block" >&2; return 1; }
	for id in $(printf '%s' "$a" | jq -r '.[].id'); do
		[ "$(keys --store "$D/alice_$1.db" export "$id")" = "$(keys --store "$D/bob_$1.db" export "$id")" ] ||
			{ echo "block $id differs" >&2; return 1; }
	done
}

# summarize CSV RESERVE HALF_T: key=value figures of one link. Counters
# restart from 0 with a daemon, so each node's totals add up its daemons.
# "floor" is half the reserve minus one round's spend (the most a round spent
# in the run), and with faults minus what a crash may burn too (the sender's
# lease of 16 pads, docs/authentication.md); "steady" is from the first
# sample at or above the floor on.
CRASH_SLACK=$((SOAK_FAULTS * 16 * 64))
summarize() {
	awk -F, -v reserve="$2" -v half_t="$3" -v slack="$CRASH_SLACK" '
	FNR == 1 { next }
	NR == FNR { if ($3 != "down" && $3 != "restarted" && $6 > spend) spend = $6; next }
	FNR == 2 { floor = reserve / 2 - spend - slack; minp = minps = -1 }
	$3 == "restarted" {
		for (c = 4; c <= 13; c++) { acc[$2, c] += last[$2, c]; last[$2, c] = 0 }
		next
	}
	$3 == "down" { down++; next }
	{
		n = $2; samples++
		for (c = 4; c <= 13; c++) { last[n, c] = $c; tot[n, c] = acc[n, c] + $c }
		if ($1 <= half_t) mid[n] = tot[n, 4]
		if ($7 > 0 && $6 / $7 > maxshare) maxshare = $6 / $7
		if (minp < 0 || $10 < minp) minp = $10
		if (!steady[n] && $10 >= floor) { steady[n] = 1; if ($1 > steady_t) steady_t = $1 }
		if (steady[n] && (minps < 0 || $10 < minps)) minps = $10
		if (samples <= 2 && $11 == "true") low_first = 1
		if (steady[n]) { nsteady++; if ($11 == "true") nlows++ }
		if ($11 == "true") { low = 1; if (steady[n]) lows = 1 }
		if ($12 == "true") exh = 1
	}
	END {
		printf "ok_a=%d ok_b=%d mid_a=%d mid_b=%d failed_a=%d failed_b=%d\n",
			tot["alice", 4], tot["bob", 4], mid["alice"], mid["bob"], tot["alice", 5], tot["bob", 5]
		printf "maxshare=%.6f share=%.6f spend=%d floor=%d\n", maxshare,
			(tot["bob", 9] > 0 ? tot["bob", 8] / tot["bob", 9] : 0), spend, floor
		printf "minp=%d minps=%d steady=%d steady_t=%d\n", minp, minps,
			steady["alice"] + steady["bob"], steady_t
		printf "low=%d lows=%d low_first=%d lows_all=%d\n", low, lows, low_first,
			(nsteady > 0 && nlows == nsteady)
		printf "exh=%d tags=%d samples=%d down=%d\n", exh,
			tot["alice", 12] + tot["bob", 12], samples, down + 0
	}' "$1" "$1"
}

pct() { awk -v x="$1" 'BEGIN { printf "%.3f%%", 100 * x }'; }
MIN=$(awk -v s="$RUN_S" 'BEGIN { printf "%.1f", s / 60 }')
echo
echo "# soak summary: $MIN min, faults $SOAK_FAULTS ($NFAULTS injected), samples every 10 s"
FMT='%-9s %5s %11s %9s %9s %8s %10s %10s %10s %7s %8s %4s %4s\n'
# shellcheck disable=SC2059  # one format for the header and the rows
printf "$FMT" link min rounds_ok failed max_share overall min_poorer min_steady floor steady auth_low exh tags
for l in "${LINKS[@]}"; do
	S=$(summarize "$D/$l.csv" "${RESERVE[$l]}" $((RUN_S / 2)))
	eval "$(printf '%s' "$S" | tr ' ' '\n' | sed 's/^/S_/')"
	eval "SUM_$l=\"\$S\""
	if [ "$S_lows_all" = 1 ] && [ "$S_low_first" = 1 ]; then low=stuck
	elif [ "$S_lows" = 1 ]; then low=yes
	elif [ "$S_low" = 1 ]; then low=start
	else low=no; fi
	# shellcheck disable=SC2059
	printf "$FMT" "${LABEL[$l]}" "$MIN" "$S_ok_a/$S_ok_b" "$S_failed_a/$S_failed_b" \
		"$(pct "$S_maxshare")" "$(pct "$S_share")" "$S_minp" "$S_minps" "$S_floor" \
		"${S_steady_t}s" "$low" "$([ "$S_exh" = 1 ] && echo yes || echo no)" "$S_tags"
done
cat <<'EOF'
# rounds_ok, failed: Alice/Bob, every daemon of the run added up. max_share:
# the most one round spent on tags, of the key it distilled (block + refill),
# either end; overall: Bob's session_auth_bits / session_key_bits.
# min_poorer: the least auth_bits_poorer seen; min_steady: the least from
# "steady" on, the first sample at which both ends held at least "floor"
# (half of auth_reserve_bits less the most one round spent, and with faults
# less a crash's lease of 16 pads too). auth_low:
# no; start (raised only before steady); stuck (raised at the start and never
# cleared); yes (raised after steady). A 64 KiB bootstrap is below a quarter
# of the test links' reserve, so they start with the alarm up.
EOF
for l in "${LINKS[@]}"; do
	for r in alice bob; do
		grep -h 'connection ended: ' "$D/${r}_$l.log" 2>/dev/null |
			sed 's/.*connection ended: //' | sort | uniq -c | sort -rn |
			sed "s/^ */# ${LABEL[$l]} $r: connection ended /; s/ended \([0-9]*\) /ended \1x: /"
	done
done
[ -s "$D/faults.log" ] && sed 's/^/# faults.log: /' "$D/faults.log"
echo

# grew A B MIDA MIDB: both ends' rounds_ok > 0 and larger than at mid-run.
grew() { [ "$1" -gt 0 ] && [ "$2" -gt 0 ] && [ "$1" -gt "$3" ] && [ "$2" -gt "$4" ]; }
for l in "${LINKS[@]}"; do
	S=$(eval "echo \"\$SUM_$l\"")
	eval "$(printf '%s' "$S" | tr ' ' '\n' | sed 's/^/S_/')"
	n=${LABEL[$l]}
	check "$n: distilled at both ends, and on through the second half ($S_mid_a -> $S_ok_a / $S_mid_b -> $S_ok_b rounds)" \
		grew "$S_ok_a" "$S_ok_b" "$S_mid_a" "$S_mid_b"
	check "$n: authentication at most 5 % of a round's key (max $(awk -v x="$S_maxshare" 'BEGIN { printf "%.3f", 100 * x }') %)" \
		awk -v x="$S_maxshare" -v a="$S_ok_b" 'BEGIN { exit !(a > 0 && x <= 0.05) }'
	check "$n: the pool reached the floor, half the reserve less a round ($S_floor bits), by ${S_steady_t}s" test "$S_steady" = 2
	check "$n: ... and never fell below it again (min $S_minps)" test "$S_minps" -ge "$S_floor"
	check_eq "$n: auth_low not raised once the pool held the floor (from ${S_steady_t}s)" "$S_lows" 0
	check_eq "$n: auth_exhausted never" "$S_exh" 0
	check_eq "$n: no node exited on its own" "$((${DIED[alice_$l]:-0} + ${DIED[bob_$l]:-0}))" 0
	check_eq "$n: SIGTERM at the end: both exit 0" "${STOP_BAD[$l]:-both 0}" "both 0"
	check "$n: stores identical at the end" same_stores "$l"
	if [ "$SOAK_FAULTS" = 0 ]; then
		check_eq "$n: every tag verified" "$S_tags" 0
	else
		echo "# $n: tags_failed $S_tags (faults injected: not checked)"
	fi
done
[ "$SOAK_FAULTS" = 1 ] && check_eq "faults: every SIGTERM restart exited 0" "$TERM_BAD" 0
finish
