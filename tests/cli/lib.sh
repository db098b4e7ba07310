# tests/cli/lib.sh - helpers for the CLI test scripts (source it, do not run it).
#
# Output protocol: one line per check on stdout, "ok - NAME" or "not ok - NAME";
# diagnostics for a failed check go to stderr. End the script with `finish`,
# which exits non-zero if any check failed.
#
#   check NAME CMD...             ok if CMD exits 0
#   check_fail NAME CMD...        ok if CMD exits non-zero and its stderr
#                                 starts with "qkd: "
#   check_exit NAME CODE CMD...   ok if CMD exits with CODE (and, for CODE != 0,
#                                 stderr starts with "qkd: ")
#   check_eq NAME GOT WANT        ok if the strings are equal
#   check_near NAME GOT WANT TOL  ok if GOT is a number and |GOT - WANT| <= TOL
#   check_match NAME TEXT REGEX   ok if TEXT matches the extended REGEX (grep -E)
#   finish                        print a summary on stderr, exit 0 or 1
#
# After check, check_fail and check_exit the command's output is kept in
# $OUT (stdout), $ERR (stderr) and $STATUS (exit code) for further checks.
# $CLI_TMP is a scratch directory removed on exit by the EXIT trap
# (cli_cleanup), which first resumes and kills -9 every process in the
# sourcing script's array PIDS, if it has one, then runs the script's
# function cli_cleanup_hook, if it defines one. KEEP=1 keeps the directory
# (logs, stores) for a look after a failure.

CLI_PASS=0
CLI_FAIL=0
# shellcheck disable=SC2034  # OUT, ERR, STATUS are for the sourcing script
OUT=
ERR=
STATUS=0
CLI_TMP=$(mktemp -d "${TMPDIR:-/tmp}/qkd-cli.XXXXXX") || exit 1
# shellcheck disable=SC2317  # called by the EXIT trap
cli_cleanup() {
	local p
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do
		kill -CONT "$p" 2>/dev/null
		kill -9 "$p" 2>/dev/null
	done
	if declare -F cli_cleanup_hook >/dev/null; then cli_cleanup_hook; fi
	if [ -n "${KEEP:-}" ]; then echo "kept $CLI_TMP" >&2; else rm -rf "$CLI_TMP"; fi
}
trap cli_cleanup EXIT

cli_ok() {
	echo "ok - $1"
	CLI_PASS=$((CLI_PASS + 1))
}

# cli_not_ok NAME [DIAGNOSTIC...]
cli_not_ok() {
	local name=$1
	shift
	echo "not ok - $name"
	CLI_FAIL=$((CLI_FAIL + 1))
	local line
	for line in "$@"; do
		printf '#   %s\n' "$line" >&2
	done
}

# cli_run CMD...: run CMD, set OUT, ERR, STATUS.
cli_run() {
	"$@" >"$CLI_TMP/out" 2>"$CLI_TMP/err"
	STATUS=$?
	# shellcheck disable=SC2034
	OUT=$(cat "$CLI_TMP/out")
	ERR=$(cat "$CLI_TMP/err")
}

cli_diag() {
	printf 'command:'
	printf ' %q' "$@"
	printf '\n'
}

check() {
	local name=$1
	shift
	cli_run "$@"
	if [ "$STATUS" -eq 0 ]; then
		cli_ok "$name"
	else
		cli_not_ok "$name" "$(cli_diag "$@")" "exit $STATUS, stderr: $ERR"
	fi
}

check_fail() {
	local name=$1
	shift
	cli_run "$@"
	if [ "$STATUS" -ne 0 ] && [ "${ERR#qkd: }" != "$ERR" ]; then
		cli_ok "$name"
	else
		cli_not_ok "$name" "$(cli_diag "$@")" \
			"exit $STATUS (want non-zero), stderr: $ERR"
	fi
}

check_exit() {
	local name=$1 want=$2
	shift 2
	cli_run "$@"
	if [ "$STATUS" -eq "$want" ] &&
	   { [ "$want" -eq 0 ] || [ "${ERR#qkd: }" != "$ERR" ]; }; then
		cli_ok "$name"
	else
		cli_not_ok "$name" "$(cli_diag "$@")" \
			"exit $STATUS (want $want), stderr: $ERR"
	fi
}

check_eq() {
	if [ "$2" = "$3" ]; then
		cli_ok "$1"
	else
		cli_not_ok "$1" "got:  '$2'" "want: '$3'"
	fi
}

check_near() {
	if awk -v g="$2" -v w="$3" -v t="$4" 'BEGIN {
		if (g !~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/)
			exit 1
		d = g - w
		if (d < 0)
			d = -d
		exit !(d <= t)
	}'; then
		cli_ok "$1"
	else
		cli_not_ok "$1" "got:  '$2'" "want: $3 +- $4"
	fi
}

check_match() {
	if printf '%s\n' "$2" | grep -Eq -- "$3"; then
		cli_ok "$1"
	else
		cli_not_ok "$1" "text: $2" "does not match: $3"
	fi
}

finish() {
	echo "# $CLI_PASS passed, $CLI_FAIL failed" >&2
	if [ "$CLI_FAIL" -eq 0 ]; then
		exit 0
	fi
	exit 1
}
