# tests/integration/lib_kme.sh - checks of ETSI GS QKD 014 responses for the
# scripts that drive key managers with curl or `qkd kme` (source it after
# tests/cli/lib.sh, do not run it): kme_http.sh, kme_nodes.sh and
# kme_client.sh. The sourcing script sets CODE (the HTTP status) and RESP
# (the body); for kme_serve, D (a scratch directory) and an array PIDS,
# whose processes its EXIT trap kills.
#
#   jcheck NAME FILTER          ok if `jq -e FILTER` holds on RESP
#   error_is NAME CODE REGEX    RESP is an Error object (clause 6.5) with that
#                               HTTP status and a message matching REGEX
#   keybytes N                  every key of RESP is base64 of N bytes and its
#                               key_ID a lowercase UUID (UUID_RE)
#   kme_serve NAME CMD...       CMD (a server that prints "listening ADDR
#                               PORT": kme_fake, tests/tools/etsi014_server.py)
#                               in the background, stdout in $D/NAME.out,
#                               stderr in $D/NAME.log; waits at most 10 s for
#                               that line; sets PORT_NAME (0 when none came)
#                               and PID_NAME
#   kme_stop NAME               SIGTERM, at most 10 s, then kill -9; the exit
#                               status in STOP_RC (137 after kill -9)

UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'

jcheck() {
	if printf '%s' "$RESP" | jq -e "$2" >/dev/null 2>&1; then cli_ok "$1"; else
		cli_not_ok "$1" "response ($CODE): $RESP" "filter: $2"; fi
}

error_is() {
	check_eq "$1: HTTP $2" "$CODE" "$2"
	jcheck "$1: Error object" '(.message | type) == "string" and
		((.details // []) | type) == "array" and
		(keys - ["message", "details"] | length) == 0'
	check_match "$1: message" "$(printf '%s' "$RESP" | jq -r .message 2>/dev/null)" "$3"
}

keybytes() {
	printf '%s' "$RESP" | jq -r '.keys[] | .key_ID + " " + .key' | while read -r id k; do
		printf '%s\n' "$id" | grep -Eq "$UUID_RE" || exit 1
		[ "$(printf '%s' "$k" | base64 -d | wc -c)" -eq "$1" ] || exit 1
	done
}

kme_serve() {
	local name=$1 i port=
	shift
	"$@" >"$D/$name.out" 2>"$D/$name.log" &
	eval "PID_$name=$!"
	PIDS+=("$!")
	for i in $(seq 1 50); do
		port=$(awk '$1 == "listening" { print $3 }' "$D/$name.out" 2>/dev/null)
		[ -n "$port" ] && break
		sleep 0.2
	done
	eval "PORT_$name=${port:-0}"
}

kme_stop() {
	local pid i
	eval "pid=\$PID_$1"
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
	if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; STOP_RC=137; wait "$pid" 2>/dev/null; return; fi
	wait "$pid"
	STOP_RC=$?
}
