#!/usr/bin/env bash
# tests/integration/relay_mesh.sh - the 6-node mesh of docs/relay.md under
# failures (issue 13): nodes A..F on loopback, links A-B, B-C, C-D, D-E,
# E-F, F-A and the chord B-E, every fiber through a `qkd eve` that relays
# it unchanged. SAE_A at A asks for keys for SAE_D at D, the far side of
# the mesh, without pause, while Eve attacks the link the route uses
# (intercept-resend: its QBER alarm fires), then that link's replacement is
# cut, then another link. After each failure the route moves off the
# failed link and keys flow again; the time from the failure to the first
# key over the new route is printed. At the end every key D served equals
# the one A gave out, none was served twice, and a key_ID A answered 503
# for is one D never serves. Then `qkd netsim` runs the same topology with
# the same failures at the same points, and A's routes to D before the
# failures and after each must be the real run's, in the same order.
# Usage (from the top of the tree): QKD=build/qkd tests/integration/relay_mesh.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/../cli/lib.sh"
# shellcheck source=tests/integration/lib_kme.sh
. "$(dirname "$0")/lib_kme.sh"
# shellcheck source=tests/integration/lib_nodes.sh
. "$(dirname "$0")/lib_nodes.sh"

TOP=$(cd "$(dirname "$0")/../.." && pwd)
QKD=${QKD:-build/qkd}
QKD=$(cd "$(dirname "$QKD")" && pwd)/$(basename "$QKD")
D=$CLI_TMP
P=$D/pki
PIDS=()

NODES="A B C D E F"
LINKS="A-B B-C C-D D-E E-F F-A B-E"
TAKEN=()
port() { local p; p=$(free_port "${TAKEN[@]+"${TAKEN[@]}"}"); TAKEN+=("$p"); echo "$p"; }
declare -A CP FP EP KP
for l in $LINKS; do CP[$l]=$(port); FP[$l]=$(port); EP[$l]=$(port); done
for n in $NODES; do KP[$n]=$(port); done

check "test PKI written" "$TOP/examples/make-test-pki.sh" "$P" SAE_A SAE_B SAE_C SAE_D SAE_E SAE_F
for l in $LINKS; do head -c 262144 /dev/urandom >"$D/$l.key"; done
# Each node: its links (Alice's end connects to Eve's port), a key manager
# with its own SAE; A relays as two shares where it can.
for n in $NODES; do
	{
		echo "node = { name = \"$n\"; status = \"$n.sock\"; };"
		echo "links = ("
		sep=
		for l in $LINKS; do
			a=${l%-*} b=${l#*-}
			if [ "$a" = "$n" ]; then
				echo "$sep"; relay_link "$l" alice "$b" "${CP[$l]}" "${EP[$l]}"; sep=,
			elif [ "$b" = "$n" ]; then
				echo "$sep"; relay_link "$l" bob "$a" "${CP[$l]}" "${FP[$l]}"; sep=,
			fi
		done
		echo ");"
		relay_kme "${KP[$n]}" "KME_$n" "SAE_$n"
		[ "$n" = A ] && echo 'relay = { paths = 2; timeout = 5.0; };'
	} >"$D/$n.conf"
done

# eve LINK ATTACK: (re)start the link's fiber proxy.
eve() {
	local pid
	pid=$(eval "echo \${PID_EVE_${1/-/_}:-}")
	[ -n "$pid" ] && { kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
	"$QKD" eve --listen "127.0.0.1:${EP[$1]}" --forward "127.0.0.1:${FP[$1]}" \
		--attack "$2" --log "$D/eve-$1.log" &
	eval "PID_EVE_${1/-/_}=$!"
	PIDS+=("$!")
}
# cut LINK: the fiber is gone for good.
cut() {
	local pid
	pid=$(eval "echo \${PID_EVE_${1/-/_}:-}")
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

for l in $LINKS; do eve "$l" none; done
for n in $NODES; do start "$n"; done
for n in $NODES; do check "node $n: key manager listening" wait_listen "${KP[$n]}"; done

relay_ok() { status_json "$1" | jq -e "$2" >/dev/null 2>&1; }
wait_relay() {
	local i
	for i in $(seq 1 $(($3 * 2))); do relay_ok "$1" "$2" && return 0; sleep 0.5; done
	return 1
}
# The links of A's route to D, as "X-Y" names in either order.
route_links() {
	status_json A | jq -r '.relay.routes[] | select(.dest == "D") | .path as $p |
		range(0; ($p | length) - 1) | "\($p[.])-\($p[. + 1])"'
}
on_route() {
	local r
	for r in $(route_links); do [ "$r" = "$1" ] || [ "$r" = "${1#*-}-${1%-*}" ] && return 0; done
	return 1
}

# A's route to D as "A-X-...-D" ("-" when it has none).
route_path() {
	local p
	p=$(status_json A | jq -r '.relay.routes[] | select(.dest == "D") | .path | join("-")')
	echo "${p:--}"
}

# wait_off_route LINK S: A has a route to D, and it does not use LINK.
wait_off_route() {
	local i
	for i in $(seq 1 $(($2 * 2))); do
		[ -n "$(route_links)" ] && ! on_route "$1" && return 0
		sleep 0.5
	done
	return 1
}

check "A knows all six nodes and routes to D within 120 s" \
	wait_relay A '.relay | (.lsdb | length) == 6 and any(.routes[]; .dest == "D")' 120
# Full pools (the metric's full_bits, 2^20): from here the routes depend on
# the database alone, not on which pool was reported a little fuller, so
# netsim can reproduce them (docs/relay.md "Metric").
check "every link's pool is full (2^20 bits) in A's database within 120 s" \
	wait_relay A '[.relay.lsdb[].links[] | select(.state == "up" and .available_bits >= 1048576)] |
		length == 14' 120

# The requester: enc_keys at A for SAE_D, then dec_keys at D for what came,
# in a loop (bounded: 1500 rounds or STOP); one line per try to $D/log:
# "enc CODE ID KEY TIME PATHS" then "dec CODE ID KEY".
requester() {
	local i code id key
	for i in $(seq 1 1500); do
		[ -e "$D/STOP" ] && break
		code=$(curl -sS --max-time 15 --cacert "$P/ca.pem" --cert "$P/SAE_A.pem" \
			--key "$P/SAE_A.key" -o "$D/enc.json" -w '%{http_code}' \
			"https://127.0.0.1:${KP[A]}/api/v1/keys/SAE_D/enc_keys?number=1&size=256" 2>/dev/null)
		if [ "$code" != 200 ]; then echo "enc $code - - $(date +%s.%N)"; sleep 0.2; continue; fi
		id=$(jq -r '.keys[0].key_ID' "$D/enc.json"); key=$(jq -r '.keys[0].key' "$D/enc.json")
		echo "enc 200 $id $key $(date +%s.%N) $(jq -r '.keys[0].key_extension.relay.paths' "$D/enc.json")"
		code=$(curl -sS --max-time 15 --cacert "$P/ca.pem" --cert "$P/SAE_D.pem" \
			--key "$P/SAE_D.key" -o "$D/dec.json" -w '%{http_code}' -X POST \
			-H 'Content-Type: application/json' \
			--data-binary "{\"key_IDs\": [{\"key_ID\": \"$id\"}]}" \
			"https://127.0.0.1:${KP[D]}/api/v1/keys/SAE_A/dec_keys" 2>/dev/null)
		echo "dec $code $id $(jq -r '.keys[0].key // "-"' "$D/dec.json" 2>/dev/null)"
		sleep 0.1
	done
}
requester >"$D/log" &
REQ=$!
PIDS+=("$REQ")

# ok_since T: a key went A -> D after time T (Unix seconds).
ok_since() { awk -v t="$1" '$1 == "enc" && $2 == 200 && $5 > t' "$D/log" | grep -q .; }
wait_key_since() {
	local i
	for i in $(seq 1 $(($2 * 5))); do ok_since "$1" && return 0; sleep 0.2; done
	return 1
}
first_key_after() { awk -v t="$1" '$1 == "enc" && $2 == 200 && $5 > t { print $5 - t; exit }' "$D/log"; }

T0=$(date +%s.%N)
check "keys flow A -> D before any failure" wait_key_since "$T0" 60
check "A relays as two shares over node-disjoint paths" \
	wait_relay A '.relay.stats.relays_two_paths > 0' 20

# 1. Eve on the first link of the route past A's own (intercept-resend: QBER ~25 %).
ROUTES=$(route_path)
R1=$(route_links | sed -n 2p)
[ -n "$R1" ] || R1=B-C
L1=$R1; [ -n "${EP[$L1]:-}" ] || L1="${R1#*-}-${R1%-*}"
T1=$(date +%s.%N)
eve "$L1" intercept-resend:1.0
check "Eve on $L1: its alarm takes it out of A's route within 120 s" \
	wait_relay A "[.relay.lsdb[].links[] | select(.state == \"alarmed\")] | length > 0" 120
check "Eve on $L1: A's route to D avoids it within 10 s" wait_off_route "$L1" 10
TA=$(date +%s.%N)
ROUTES="$ROUTES $(route_path)"
check "keys flow again after the alarm" wait_key_since "$TA" 60
echo "# reroute after the alarm: first key $(first_key_after "$TA") s after the route moved"

# 2. Cut a link of the new route (not at A).
R2=$(route_links | sed -n 2p)
L2=$R2; [ -n "${EP[$L2]:-}" ] || L2="${R2#*-}-${R2%-*}"
T2=$(date +%s.%N)
cut "$L2"
check "cut $L2: A's route to D avoids it within 30 s" wait_off_route "$L2" 30
ROUTES="$ROUTES $(route_path)"
check "keys flow again after the cut of $L2" wait_key_since "$T2" 60
echo "# reroute after the cut of $L2: first key $(first_key_after "$T2") s after the cut"

# 3. Cut a third link, off the route.
for l in $LINKS; do on_route "$l" || [ "$l" = "$L1" ] || [ "$l" = "$L2" ] || { L3=$l; break; }; done
T3=$(date +%s.%N)
cut "$L3"
check "keys still flow after the cut of $L3" wait_key_since "$(date +%s.%N)" 60
check "A's database shows $L3 down within 30 s" wait_relay A \
	"[.relay.lsdb[] | select(.origin == \"${L3%-*}\") | .links[] |
		select(.neighbour == \"${L3#*-}\" and .state == \"down\")] | length == 1" 30
ROUTES="$ROUTES $(route_path)"
echo "# A's routes to D: $ROUTES"

touch "$D/STOP"
for i in $(seq 1 100); do kill -0 "$REQ" 2>/dev/null || break; sleep 0.2; done

N=$(awk '$1 == "enc" && $2 == 200' "$D/log" | wc -l)
check "at least 5 keys went A -> D (got $N)" test "$N" -ge 5
check "every key D served equals the one A gave out" sh -c "
	awk '\$1 == \"enc\" && \$2 == 200 { k[\$3] = \$4 } \$1 == \"dec\" && \$2 == 200 { if (k[\$3] != \$4) bad++ }
		END { exit bad > 0 }' '$D/log'"
check "D served every key A gave out (none lost with a completion)" sh -c "
	awk '\$1 == \"enc\" && \$2 == 200 { n++ } \$1 == \"dec\" && \$2 == 200 { d++ }
		END { exit n != d }' '$D/log'"
check "enc_keys says which keys went as two shares (key_extension.relay.paths)" sh -c "
	awk '\$1 == \"enc\" && \$2 == 200 && \$6 == 2' '$D/log' | grep -q ."
check "no key_ID twice" sh -c "awk '\$1 == \"enc\" && \$2 == 200 { print \$3 }' '$D/log' | sort | uniq -d | grep -q . && exit 1 || exit 0"
ID1=$(awk '$1 == "dec" && $2 == 200 { print $3; exit }' "$D/log")
req_dec() {
	curl -sS --max-time 15 --cacert "$P/ca.pem" --cert "$P/SAE_D.pem" --key "$P/SAE_D.key" \
		-o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		--data-binary "{\"key_IDs\": [{\"key_ID\": \"$1\"}]}" \
		"https://127.0.0.1:${KP[D]}/api/v1/keys/SAE_A/dec_keys"
}
check_eq "a key served once is not served again" "$(req_dec "$ID1")" 400
FAILED=$(awk '$1 == "enc" && $2 != 200' "$D/log" | wc -l)
echo "# $N keys relayed, $FAILED enc_keys answered with an error during the failures"
check "the attacked link's nodes log the alarm" grep -q "alarmed: no key is relayed" "$D/${L1%-*}.log" "$D/${L1#*-}.log"
for n in $NODES; do stop "$n"; done

# The same network in netsim: the same links with full pools (each end's
# half at 2^22 bits, as full as the real pools were when the failures
# began), the same failures in the same order, A's routes to D read before
# the first and after each (docs/netsim.md "Against a real network").
{
	for n in $NODES; do echo "node $n sae=SAE_$n"; done
	for l in $LINKS; do echo "link ${l%-*} ${l#*-} km=1 pool_bits=8388608"; done
} >"$D/mesh6.topo"
check "netsim runs the mesh with the same failures" sh -c "'$QKD' netsim --topology '$D/mesh6.topo' \
	--duration 20 --requests 2 --alarm '$L1@5' --cut '$L2@10' --cut '$L3@15' \
	--routes A@4.9 --routes A@9.9 --routes A@14.9 --routes A@19.9 --json >'$D/netsim.json'"
SIM=$(jq -r '[.routes[] | [.routes[] | select(.dest == "D") | .path | join("-")] | .[0] // "-"] |
	join(" ")' "$D/netsim.json")
echo "# netsim's routes from A to D: $SIM"
check_eq "netsim: A's routes to D, before the failures and after each, are the real run's" \
	"$SIM" "$ROUTES"
finish
