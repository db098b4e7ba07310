# tests/integration/lib_nodes.sh - helpers for scripts that run `qkd node`
# daemons on loopback (source it, do not run it): tests/integration/node.sh,
# tests/integration/kme_nodes.sh and bench/kme.sh.
#
# The sourcing script sets QKD (the executable, an absolute path), D (a
# scratch directory: configurations NAME.conf, logs NAME.log, status
# sockets NAME.sock) and an array PIDS, whose processes its EXIT trap kills.
#
#   free_port [TAKEN...]       a loopback TCP port nobody listens on and not
#                              among TAKEN; 0 after 200 tries
#   start NAME [CONFIG]        `qkd node --config CONFIG` (default $D/NAME.conf)
#                              in the background, in $D; its pid in PID_NAME,
#                              its stderr appended to $D/NAME.log
#   stop NAME                  SIGTERM, then kill -9 after 20 s; the exit
#                              status in STOP_RC (137 after kill -9)
#   status_json NAME           the node's `qkd status --json` (5 s at most)
#   field NAME FIELD           one field of its first link
#   wait_for NAME FIELD MIN S  until FIELD >= MIN, S seconds at most
#   wait_json NAME FILTER S    until `jq -e FILTER` holds on its first link
#   wait_listen PORT           until something listens on PORT, 10 s at most
#   kme_node_conf ROLE KME_PORT KME_ID LOCAL_SAES REMOTE_SAES PEER_KME
#                              $D/ROLE.conf: one end (alice or bob) of the
#                              fast test link (classical port $CP, fiber
#                              $FP, store ROLE.db, key ab.key) with a key
#                              manager on KME_PORT serving the SAEs of the
#                              space-separated lists (the remote ones behind
#                              the link, at PEER_KME), certificates in $D/pki;
#                              sync_timeout $KME_SYNC_TIMEOUT (default 10),
#                              and $KME_EXTRA (settings) in its kme group
#   relay_link NAME ROLE PEER CLASSICAL FIBER [EXTRA]
#                              one element of a relay node's links list
#                              (tests/integration/relay_*.sh): link NAME,
#                              store NAME-ROLE.db, key NAME.key, the fast
#                              test optics; EXTRA (settings) appended
#   relay_kme PORT ID SAE      a kme group with one local SAE
# Every wait is bounded; each returns non-zero when its time runs out.

free_port() {
	local p i t ok
	for i in $(seq 1 200); do
		p=$((20000 + (RANDOM * 7 + i) % 40000))
		ok=1
		for t in "$@"; do [ "$t" = "$p" ] && ok=0; done
		[ "$ok" = 1 ] && ! ss -ltnH "sport = :$p" 2>/dev/null | grep -q . && { echo "$p"; return; }
	done
	echo 0
}

start() {
	local conf=${2:-$D/$1.conf}
	(cd "$D" && exec "$QKD" node --config "$conf" 2>>"$D/$1.log") &
	eval "PID_$1=$!"
	PIDS+=("$!")
}

stop() {
	local pid i
	pid=$(eval "echo \${PID_$1:-}")
	STOP_RC=0
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		STOP_RC=137
	else
		wait "$pid"
		STOP_RC=$?
	fi
	eval "PID_$1="
}

status_json() { timeout 5 "$QKD" status --node "$D/$1.sock" --json 2>/dev/null; }
field() { status_json "$1" | jq -r ".links[0].$2" 2>/dev/null; }

wait_for() {
	local i v
	for i in $(seq 1 $(($4 * 5))); do
		v=$(field "$1" "$2")
		[ -n "$v" ] && [ "$v" != null ] && awk -v v="$v" -v m="$3" 'BEGIN { exit !(v >= m) }' && return 0
		sleep 0.2
	done
	return 1
}

wait_json() {
	local i
	for i in $(seq 1 $(($3 * 5))); do
		status_json "$1" | jq -e ".links[0] | $2" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

wait_listen() {
	local i
	for i in $(seq 1 100); do
		ss -ltnH "sport = :$1" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	return 1
}

kme_node_conf() {
	local saes= s
	for s in $4; do saes="$saes{ id = \"$s\"; }, "; done
	for s in $5; do saes="$saes{ id = \"$s\"; link = \"ab\"; kme = \"$6\"; }, "; done
	cat >"$D/$1.conf" <<EOF
node = { name = "$1"; status = "$1.sock"; log_level = "info"; };
links = ( {
  name = "ab"; role = "$1";
  classical = "127.0.0.1:$CP"; fiber = "127.0.0.1:$FP";
  store = "$1.db"; auth_key = "ab.key";
  auth_reserve_bits = 1048576; round_pulses = 20000000;
  optical = { distance_km = 1.0; detector_efficiency = 0.5; };
} );
kme = {
  id = "$3"; listen = "127.0.0.1:$2";
  cert = "pki/server.pem"; key = "pki/server.key"; ca = "pki/ca.pem";
  key_size = 256; min_key_size = 64; max_key_size = 65536; max_keys_per_request = 1024;
  sync_timeout = ${KME_SYNC_TIMEOUT:-10};${KME_EXTRA:+ $KME_EXTRA}
  saes = ( ${saes%, } );
};
EOF
}

relay_link() {
	cat <<EOF
  { name = "$1"; role = "$2"; peer = "$3";
    classical = "127.0.0.1:$4"; fiber = "127.0.0.1:$5";
    store = "$1-$2.db"; auth_key = "$1.key";
    auth_reserve_bits = 1048576; round_pulses = 20000000;
    optical = { distance_km = 1.0; detector_efficiency = 0.5; };${6:+ $6} }
EOF
}

relay_kme() {
	cat <<EOF
kme = { id = "$2"; listen = "127.0.0.1:$1";
  cert = "pki/server.pem"; key = "pki/server.key"; ca = "pki/ca.pem";
  key_size = 256; max_key_size = 8192; max_keys_per_request = 64;
  saes = ( { id = "$3"; } ); };
EOF
}
