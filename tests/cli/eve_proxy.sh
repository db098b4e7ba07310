#!/usr/bin/env bash
# tests/cli/eve_proxy.sh - `qkd eve` on the fiber socket (docs/fiber.md s5):
# option errors, a port in use, --help, and relays on loopback (127.0.0.1,
# and ::1) between the test tool fiber_pipe (tests/tools/fiber_pipe.c)
# playing Alice's and Bob's nodes. Every wait is bounded; background processes are killed and the
# scratch directory removed on exit.
# Usage (from the top of the tree): QKD=build/qkd tests/cli/eve_proxy.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

QKD=${QKD:-build/qkd}
PIPE=${FIBER_PIPE:-$(dirname "$QKD")/tests/tools/fiber_pipe}
PIDS=()


# wait_for FILE REGEX SECONDS: 0 once FILE has a line matching REGEX.
wait_for() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# wait_exit PID SECONDS: the exit status of background PID, 124 on timeout.
wait_exit() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		if ! kill -0 "$1" 2>/dev/null; then
			wait "$1"
			return
		fi
		sleep 0.1
	done
	return 124
}

# The port a `qkd eve` log says it listens on ("127.0.0.1:N" or "[::1]:N").
eve_port() {
	sed -n 's/.*listening on [^ ]*:\([0-9]*\),.*/\1/p' "$1" | head -n1
}

# --- the command line ---------------------------------------------------

check "--help" "$QKD" eve --help
check_match "--help: usage" "$OUT" '^usage: qkd eve --listen HOST:PORT --forward HOST:PORT --attack SPEC'
check_match "qkd --help lists eve" "$("$QKD" --help)" '^  eve '

L=(--listen 127.0.0.1:1)
F=(--forward 127.0.0.1:2)
A=(--attack intercept-resend:0.5)
check_exit "no options" 2 "$QKD" eve
check_exit "missing --listen" 2 "$QKD" eve "${F[@]}" "${A[@]}"
check_match "missing --listen: says so" "$ERR" '^qkd: eve: missing --listen'
check_exit "missing --forward" 2 "$QKD" eve "${L[@]}" "${A[@]}"
check_exit "missing --attack" 2 "$QKD" eve "${L[@]}" "${F[@]}"
for bad in 127.0.0.1 :7201 127.0.0.1: 127.0.0.1:abc 127.0.0.1:70000 127.0.0.1:-1 \
	example.com:7201 10.0.0:7201 ::1:7201 '[::1' '[::1]' '[::1]:70000' '[127.0.0.1]:7201' \
	'[fe80::1%lo]:7201' '[::ffff:127.0.0.1]:7201'; do
	check_exit "--listen $bad" 2 "$QKD" eve --listen "$bad" "${F[@]}" "${A[@]}"
	want="qkd: --listen: '$bad' is not HOST:PORT: "
	check_eq "--listen $bad: names the option and the value" "${ERR:0:${#want}}" "$want"
done
# The reason, for the IPv6 mistakes.
check_exit "--forward ::1:7201" 2 "$QKD" eve "${L[@]}" --forward ::1:7201 "${A[@]}"
check_eq "--forward ::1:7201: says brackets" "$ERR" \
	"qkd: --forward: '::1:7201' is not HOST:PORT: an IPv6 address goes in brackets: [ADDRESS]:PORT"
check_exit "--forward [::1" 2 "$QKD" eve "${L[@]}" --forward '[::1' "${A[@]}"
check_match "--forward [::1: unterminated" "$ERR" "'\\[' without its closing '\\]'"
check_exit "--forward [::1]:7201x" 2 "$QKD" eve "${L[@]}" --forward '[::1]:7201x' "${A[@]}"
check_match "--forward [::1]:7201x: the port" "$ERR" 'PORT is not a decimal number$'
check_exit "--forward [::1]:0" 2 "$QKD" eve "${L[@]}" --forward '[::1]:0' "${A[@]}"
check_match "--forward [::1]:0: out of range" "$ERR" 'PORT is out of range 1\.\.65535$'
check_match "--help: IPv6 in brackets" "$("$QKD" eve --help)" '\[IPV6\]:PORT'

check_exit "--forward port 0" 2 "$QKD" eve "${L[@]}" --forward 127.0.0.1:0 "${A[@]}"
for bad in pns bogus intercept-resend intercept-resend:2 intercept-resend:-0.1 \
	beamsplit:x beamsplit:nan none:0.5 ''; do
	check_exit "--attack '$bad'" 2 "$QKD" eve "${L[@]}" "${F[@]}" --attack "$bad"
	check_match "--attack '$bad': names the option" "$ERR" '^qkd: --attack: '
done
check_match "--attack pns: explains" "$(
	"$QKD" eve "${L[@]}" "${F[@]}" --attack pns 2>&1)" 'not available on the fiber'
check_exit "unknown option" 2 "$QKD" eve "${L[@]}" "${F[@]}" "${A[@]}" --bogus
check_exit "stray argument" 2 "$QKD" eve "${L[@]}" "${F[@]}" "${A[@]}" extra
check_exit "--log empty" 2 "$QKD" eve "${L[@]}" "${F[@]}" "${A[@]}" --log ''
check_exit "--log unwritable" 1 "$QKD" eve --listen 127.0.0.1:0 "${F[@]}" "${A[@]}" \
	--log "$CLI_TMP/no/such/dir/eve.log"

# --- a port in use --------------------------------------------------------

"$QKD" eve --listen 127.0.0.1:0 --forward 127.0.0.1:9 --attack none \
	--log "$CLI_TMP/holder.log" &
HOLDER=$!
PIDS+=("$HOLDER")
if wait_for "$CLI_TMP/holder.log" 'listening on' 10; then
	port=$(eve_port "$CLI_TMP/holder.log")
	check_exit "port in use" 1 "$QKD" eve --listen "127.0.0.1:$port" "${F[@]}" "${A[@]}"
	check_eq "port in use: message" "$ERR" "qkd: --listen: 127.0.0.1:$port: Address already in use"
else
	cli_not_ok "port in use: holder listens" "$(cat "$CLI_TMP/holder.log")"
fi
kill -TERM "$HOLDER"
wait_exit "$HOLDER" 10
check_eq "idle eve: SIGTERM exits 0" "$?" 0
check_match "idle eve: totals" "$(cat "$CLI_TMP/holder.log")" \
	'Z info  stopped: connections 0, frames 0, pulses 0, intercepted 0'

# --- relays ------------------------------------------------------------------

FRAMES=20
SLOTS=65536

# relay NAME ATTACK [SENDER_FLAG]: receiver, eve and sender on loopback,
# at the address PH (fiber_pipe's HOST) written EH in HOST:PORT.
# Leaves eve running (its pid in EVE, its log in $CLI_TMP/NAME.eve.log) and
# the receiver's summary in RECV.
PH=127.0.0.1
EH=127.0.0.1
relay() {
	local name=$1 attack=$2 flag=${3:-} rpid rport eport
	local rout="$CLI_TMP/$name.recv" elog="$CLI_TMP/$name.eve.log"

	"$PIPE" recv "$PH" 0 $FRAMES $SLOTS seed-"$name" >"$rout" &
	rpid=$!
	PIDS+=("$rpid")
	EVE=
	RECV=
	if ! wait_for "$rout" '^port ' 10; then
		cli_not_ok "$name: receiver listens"
		return 1
	fi
	rport=$(awk '/^port /{print $2; exit}' "$rout")
	"$QKD" eve --listen "$EH:0" --forward "$EH:$rport" --attack "$attack" \
		--log "$elog" &
	EVE=$!
	PIDS+=("$EVE")
	if ! wait_for "$elog" 'listening on' 10; then
		cli_not_ok "$name: eve listens" "$(cat "$elog")"
		return 1
	fi
	eport=$(eve_port "$elog")
	if [ -n "$flag" ]; then
		# The sender stays connected until Eve closes.
		"$PIPE" send "$PH" "$eport" $FRAMES $SLOTS seed-"$name" "$flag" &
		SENDER=$!
		PIDS+=("$SENDER")
	else
		check "$name: sender" timeout 30 "$PIPE" send "$PH" "$eport" $FRAMES $SLOTS \
			seed-"$name"
	fi
	if ! wait_for "$elog" 'round 2:' 30; then
		cli_not_ok "$name: both rounds relayed" "$(cat "$elog")"
		return 1
	fi
	if [ -z "$flag" ]; then
		wait_exit "$rpid" 30
		check_eq "$name: receiver got every frame intact" "$?" 0
		RECV=$(tail -n1 "$rout")
	fi
	return 0
}

# field NAME TEXT: the number after "NAME " in TEXT.
field() {
	printf '%s\n' "$2" | sed -n "s/.*$1 \([0-9][0-9]*\).*/\1/p" | head -n1
}

# intercept-resend:0.5: Eve measures half the pulses; a quarter change state.
if relay ir intercept-resend:0.5; then
	log=$(cat "$CLI_TMP/ir.eve.log")
	check_match "ir: logs the connection" "$log" 'Z info  connection from 127\.0\.0\.1:[0-9]+$'
	check_match "ir: round lines" "$log" 'round 1: frames 10, pulses [0-9]+, intercepted'
	wait_for "$CLI_TMP/ir.eve.log" 'connection: frames' 10
	conn=$(grep 'connection: frames' "$CLI_TMP/ir.eve.log")
	pulses=$(field pulses "$conn")
	icpt=$(field intercepted "$conn")
	check_eq "ir: Eve saw every pulse sent" "$pulses" "$(field sent "$RECV")"
	check_near "ir: intercepted fraction" \
		"$(awk -v a="$icpt" -v b="$pulses" 'BEGIN { printf "%.4f", a / b }')" 0.5 0.01
	check_near "ir: changed states" "$(awk -v a="$(field changed "$RECV")" \
		-v b="$(field pulses "$RECV")" 'BEGIN { printf "%.4f", a / b }')" 0.25 0.01
	check_eq "ir: photons untouched" "$(field photons_lost "$RECV")" 0
	kill -TERM "$EVE"
	wait_exit "$EVE" 10
	check_eq "ir: SIGTERM exits 0" "$?" 0
	check_match "ir: totals" "$(tail -n1 "$CLI_TMP/ir.eve.log")" \
		"stopped: connections 1, frames $FRAMES, pulses $pulses, intercepted $icpt "
fi

# beamsplit:0.5 with Alice still connected when SIGTERM comes.
if relay bs beamsplit:0.5 --linger; then
	kill -TERM "$EVE"
	wait_exit "$EVE" 10
	check_eq "bs: SIGTERM with a live connection exits 0" "$?" 0
	wait_exit "$SENDER" 10
	check_eq "bs: the sender saw Eve close" "$?" 0
	log=$(cat "$CLI_TMP/bs.eve.log")
	check_match "bs: connection closed on stop" "$log" 'connection closed \(stopping\)'
	tot=$(tail -n1 "$CLI_TMP/bs.eve.log")
	check_match "bs: totals" "$tot" "stopped: connections 1, frames $FRAMES, "
	# mu 0.1: pulses survive with (1 - e^-0.05) / (1 - e^-0.1) = 0.5125.
	check_near "bs: pulses to bob" "$(awk -v a="$(field 'pulses to bob' "$tot")" \
		-v b="$(field pulses "$tot")" 'BEGIN { printf "%.4f", a / b }')" 0.5125 0.015
fi

# --- the fiber over IPv6 (::1): the same relay, addresses in brackets --------

ip -6 addr show lo 2>/dev/null | grep -q 'inet6 ::1/128' ||
	cli_not_ok "::1 on lo (ip -6 addr show lo): the IPv6 relay needs it"
PH=::1
EH='[::1]'
if relay v6 intercept-resend:0.5; then
	log=$(cat "$CLI_TMP/v6.eve.log")
	check_match "v6: listens on [::1]" "$log" 'Z info  listening on \[::1\]:[0-9]+, forwarding to \[::1\]:[0-9]+, attack intercept-resend:0\.5$'
	check_match "v6: connection from [::1]" "$log" 'Z info  connection from \[::1\]:[0-9]+$'
	check_match "v6: connected to bob at [::1]" "$log" 'Z info  connected to bob at \[::1\]:[0-9]+$'
	check_near "v6: changed states" "$(awk -v a="$(field changed "$RECV")" \
		-v b="$(field pulses "$RECV")" 'BEGIN { printf "%.4f", a / b }')" 0.25 0.01
	kill -TERM "$EVE"
	wait_exit "$EVE" 10
	check_eq "v6: SIGTERM exits 0" "$?" 0
fi
# A port in use on ::1 names the address as given.
"$QKD" eve --listen '[::1]:0' --forward '[::1]:9' --attack none --log "$CLI_TMP/holder6.log" &
HOLDER=$!
PIDS+=("$HOLDER")
if wait_for "$CLI_TMP/holder6.log" 'listening on' 10; then
	port=$(eve_port "$CLI_TMP/holder6.log")
	check_exit "v6: port in use" 1 "$QKD" eve --listen "[::1]:$port" "${F[@]}" "${A[@]}"
	check_eq "v6: port in use: message" "$ERR" "qkd: --listen: [::1]:$port: Address already in use"
	# IPv6 only: the same port on 127.0.0.1 is another socket.
	"$QKD" eve --listen "127.0.0.1:$port" --forward 127.0.0.1:9 --attack none \
		--log "$CLI_TMP/holder4.log" &
	H4=$!
	PIDS+=("$H4")
	check "v6: 127.0.0.1 with the same port listens beside it" \
		wait_for "$CLI_TMP/holder4.log" "listening on 127\.0\.0\.1:$port," 10
	kill -TERM "$H4"
	wait_exit "$H4" 10
else
	cli_not_ok "v6: holder listens" "$(cat "$CLI_TMP/holder6.log")"
fi
kill -TERM "$HOLDER"
wait_exit "$HOLDER" 10

finish
