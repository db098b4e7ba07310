# tests/integration/lib_kme.sh - checks of ETSI GS QKD 014 responses for the
# scripts that drive key managers with curl (source it after
# tests/cli/lib.sh, do not run it): kme_http.sh and kme_nodes.sh. The
# sourcing script's req sets CODE (the HTTP status) and RESP (the body).
#
#   jcheck NAME FILTER          ok if `jq -e FILTER` holds on RESP
#   error_is NAME CODE REGEX    RESP is an Error object (clause 6.5) with that
#                               HTTP status and a message matching REGEX
#   keybytes N                  every key of RESP is base64 of N bytes and its
#                               key_ID a lowercase UUID (UUID_RE)

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
