#!/usr/bin/env bash
# Runs every test and ends with the line CI reads: "N passed, N failed".
#   tests/run.sh          unit tests (release, ASan+UBSan, valgrind), CLI tests, fuzzers
#   tests/run.sh unit     release unit tests only (QKD_VALGRIND=1: under valgrind)
#   tests/run.sh cli      CLI / integration scripts only
#   tests/run.sh fuzz     each libFuzzer target for $FUZZ_SECONDS s on its seed corpus
# Each cmocka binary contributes its test-case counts; each CLI script prints
# "ok - NAME" / "not ok - NAME" lines, which are counted one by one.
set -u
cd "$(dirname "$0")/.." || exit 2
what=${1:-all}
passed=0
failed=0
failures=()
logdir=build/test-logs
mkdir -p "$logdir"

log_of() {	# $1 = label
	echo "$logdir/$(echo "$1" | tr '/ ' '__').log"
}

# Run one cmocka binary into its log; "RC SECONDS" goes to LOG.rc.
run_cmocka_exec() {	# $1 = binary, $2 = log, $3 = "valgrind" to run under valgrind
	local t0=$SECONDS rc
	if [ "${QKD_VALGRIND:-0}" = 1 ] || [ "${3:-}" = valgrind ]; then
		# QKD_VALGRIND=1: tests with large inputs shrink them (the release and
		# ASan passes run them whole).
		QKD_VALGRIND=1 timeout 1200 valgrind -q --error-exitcode=99 --leak-check=full \
			--errors-for-leak-kinds=definite "$1" >"$2" 2>&1
	else
		timeout 600 "$1" >"$2" 2>&1
	fi
	rc=$?
	echo "$rc $((SECONDS - t0))" >"$2.rc"
}

# Count and print one binary's result from its log.
run_cmocka_report() {	# $1 = label
	local label=$1 log rc t p f
	log=$(log_of "$label")
	read -r rc t <"$log.rc" || { rc=125; t=0; }
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n1)
	p=${p:-0}; f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1	# crashed, sanitizer report or timeout: count the binary as one failure
	fi
	passed=$((passed + p)); failed=$((failed + f))
	if [ "$f" -ne 0 ]; then
		failures+=("$label (see $log)")
		printf '%-40s FAIL  %d passed, %d failed (exit %d, %d s)\n' "$label" "$p" "$f" "$rc" "$t"
		grep -E '^\[  (FAILED|ERROR)|ERROR: |runtime error|Invalid|definitely' "$log" | head -n 20
	else
		printf '%-40s ok    %d passed (%d s)\n' "$label" "$p" "$t"
	fi
}

# Every test binary of a build, QKD_TEST_JOBS (default 2) at a time: the
# unit tests share no files or ports they did not make themselves (a port
# a test needs free is taken by binding port 0). Results print in order,
# once all have run.
run_units() {	# $1 = build dir, $2 = label prefix, $3 = "valgrind" (optional)
	local b bins=() running=0 jobs=${QKD_TEST_JOBS:-2}
	for b in "$1"/tests/test_*; do
		[ -x "$b" ] && bins+=("$b")
	done
	for b in "${bins[@]+"${bins[@]}"}"; do
		if [ "$running" -ge "$jobs" ]; then
			wait -n
			running=$((running - 1))
		fi
		run_cmocka_exec "$b" "$(log_of "$2$(basename "$b")")" "${3:-}" &
		running=$((running + 1))
	done
	wait
	for b in "${bins[@]+"${bins[@]}"}"; do
		run_cmocka_report "$2$(basename "$b")"
	done
}

run_script() {	# $1 = script
	local s=$1 log rc p f t0=$SECONDS
	log="$logdir/cli_$(basename "$s" .sh).log"
	QKD="$PWD/build/qkd" timeout 900 bash "$s" >"$log" 2>&1
	rc=$?
	t0=$((SECONDS - t0))
	p=$(grep -c '^ok ' "$log"); f=$(grep -c '^not ok ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	passed=$((passed + p)); failed=$((failed + f))
	if [ "$f" -ne 0 ]; then
		failures+=("$s (see $log)")
		printf '%-40s FAIL  %d passed, %d failed (exit %d, %d s)\n' "$(basename "$(dirname "$s")")/$(basename "$s")" "$p" "$f" "$rc" "$t0"
		grep '^not ok' "$log" | head -n 20
		tail -n 5 "$log"
	else
		printf '%-40s ok    %d passed (%d s)\n' "$(basename "$(dirname "$s")")/$(basename "$s")" "$p" "$t0"
	fi
}

run_fuzz() {	# $1 = fuzz binary
	local bin=$1 name log work rc
	name=$(basename "$bin")
	log="$logdir/$name.log"
	work=$(mktemp -d)
	# New inputs go to the scratch directory; the seed corpus stays untouched.
	LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp" \
	timeout $(( ${FUZZ_SECONDS:-10} + 60 )) "$bin" -max_total_time="${FUZZ_SECONDS:-10}" \
		-rss_limit_mb=4096 -artifact_prefix="$work/" "$work" "tests/fuzz/corpus/${name#fuzz_}" \
		>"$log" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		printf '%-40s ok    %s\n' "fuzz/$name" "$(grep -o 'Done [0-9]* runs' "$log" | tail -n1)"
	else
		failed=$((failed + 1))
		failures+=("fuzz/$name (see $log; crash input kept in $work)")
		printf '%-40s FAIL  (exit %d)\n' "fuzz/$name" "$rc"
		grep -E 'ERROR|SUMMARY' "$log" | head -n 5
		return
	fi
	rm -rf "$work"
}

run_fuzzers() {
	local b
	for b in build/fuzz/fuzz/fuzz_*; do
		[ -x "$b" ] && run_fuzz "$b"
	done
}

case $what in
fuzz) run_fuzzers ;;
unit) run_units build "" ;;
cli) for s in tests/cli/*.sh tests/integration/*.sh; do [ -e "$s" ] && case $(basename "$s") in lib*.sh) false ;; esac && run_script "$s"; done ;;
all)
	run_units build ""
	[ -d build/asan/tests ] && run_units build/asan "asan/"
	run_units build "valgrind/" valgrind
	for s in tests/cli/*.sh tests/integration/*.sh; do [ -e "$s" ] && case $(basename "$s") in lib*.sh) false ;; esac && run_script "$s"; done
	run_fuzzers
	;;
*) echo "usage: tests/run.sh [all|unit|cli]" >&2; exit 2 ;;
esac

echo
for f in "${failures[@]+"${failures[@]}"}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
