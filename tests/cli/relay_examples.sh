#!/usr/bin/env bash
# tests/cli/relay_examples.sh - examples/relay/: make-network.sh on the two
# example topologies (mesh6.topo, ring10.topo). Every generated
# configuration passes `qkd node --check`; no port is used twice; every
# link is at both of its ends with the same settings (Alice at the
# first-named node); each key manager knows its neighbours' SAEs through
# the right link; a topology it cannot read is refused with
# `topology FILE:LINE: why` and nothing written. Then the 6-node network
# runs from start.sh until every link has stored a block, relays a key from
# SAE_A at A to SAE_D at D, is drawn by qkd netmap, and stop.sh stops it.
# Usage (from the top of the tree): QKD=build/qkd tests/cli/relay_examples.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

TOP=$(cd "$(dirname "$0")/../.." && pwd)
QKD=${QKD:-build/qkd}
QKD=$(cd "$(dirname "$QKD")" && pwd)/$(basename "$QKD")
export QKD
MK=$TOP/examples/relay/make-network.sh
T=$CLI_TMP
PIDS=()
# shellcheck disable=SC2317  # called by the EXIT trap (lib.sh)
cli_cleanup_hook() { [ -x "$T/mesh6/stop.sh" ] && "$T/mesh6/stop.sh" >/dev/null 2>&1; }

# links_of TOPO: "A B" per link line of a topology file.
links_of() { sed 's/#.*//' "$1" | awk '$1 == "link" { print $2, $3 }'; }
nodes_of() { sed 's/#.*//' "$1" | awk '$1 == "node" { print $2 }'; }
# block CONF LINK: the group of link LINK in CONF.
block() {
	awk -v n="name = \"$2\";" '
		/^  \{$/ { buf = ""; inb = 1; next }
		inb && /^  \}/ { if (index(buf, n)) printf "%s", buf; inb = 0; next }
		inb { buf = buf $0 "\n" }' "$1"
}

# ends_check DIR TOPOLOGY: "none", or each link whose two ends disagree
# (LINK:what), read by one awk over every configuration of DIR.
ends_check() {
	links_of "$2" | awk -v dir="$1" '
		function read_conf(node,   f, line, name, buf, inb, k, v) {
			f = dir "/" node ".conf"
			while ((getline line < f) > 0) {
				if (line ~ /^  \{$/) { buf = ""; inb = 1; continue }
				if (inb && line ~ /^  \}/) { text[node, name] = buf; inb = 0; continue }
				if (!inb) {
					if (line ~ /^    \{ id = /) kme[node] = kme[node] line "\n"
					continue
				}
				k = line; sub(/^ *[a-z_]+ = "?/, "", line); v = line; sub(/"?;.*/, "", v)
				sub(/^ */, "", k); sub(/ .*/, "", k)
				if (k == "name") name = v
				if (k == "role" || k == "peer" || k == "store") { key[node, name, k] = v; continue }
				buf = buf k "=" v "\n"
			}
			close(f)
		}
		!($1 in seen) { read_conf($1); seen[$1] = 1 }
		!($2 in seen) { read_conf($2); seen[$2] = 1 }
		{
			l = $1 "-" $2
			if (!(($1, l) in text) || !(($2, l) in text)) { out = out " " l ":missing"; next }
			if (text[$1, l] != text[$2, l]) out = out " " l ":settings"
			if (key[$1, l, "role"] != "alice" || key[$2, l, "role"] != "bob") out = out " " l ":roles"
			if (key[$1, l, "peer"] != $2 || key[$2, l, "peer"] != $1) out = out " " l ":peers"
			if (index(text[$1, l], "auth_key=" l ".key\n") == 0) out = out " " l ":key"
			if (index(kme[$1], "{ id = \"SAE_" $2 "\"; link = \"" l "\"; kme = \"KME_" $2 "\"; }") == 0 ||
			    index(kme[$2], "{ id = \"SAE_" $1 "\"; link = \"" l "\"; kme = \"KME_" $1 "\"; }") == 0)
				out = out " " l ":saes"
		}
		END { print (out == "" ? "none" : out) }'
}

# A free range of ports for the 6-node network that runs at the end.
# mesh6 takes BASE..BASE+13, BASE+1000..BASE+1005 and BASE+2000..BASE+2005.
base=0
for _ in 1 2 3 4 5 6 7 8; do
	b=$((20000 + (RANDOM % 400) * 100))
	busy=$(ss -ltnH | awk -v b="$b" '{ p = $4; sub(/.*:/, "", p); p -= b
		if ((p >= 0 && p < 14) || (p >= 1000 && p < 1006) || (p >= 2000 && p < 2006)) n++ }
		END { print n + 0 }')
	[ "$busy" = 0 ] && { base=$b; break; }
done
# Both networks made at once (each mostly waits for openssl).
for net in mesh6 ring10; do
	"$MK" "$TOP/examples/relay/$net.topo" "$T/$net" "$base" >"$T/$net.out" 2>&1 &
	eval "gen_$net=\$!"
done
for net in mesh6 ring10; do
	topo=$TOP/examples/relay/$net.topo
	D=$T/$net
	eval "wait \$gen_$net"
	rc=$?
	check_eq "$net: make-network.sh" "$rc: $(cat "$T/$net.out")" \
		"0: $D: $(nodes_of "$topo" | wc -l) nodes, $(links_of "$topo" | wc -l) links (ports in $D/ports.txt); start with $D/start.sh"
	nn=$(nodes_of "$topo" | wc -l); nl=$(links_of "$topo" | wc -l)
	check_eq "$net: one configuration per node" "$(find "$D" -name '*.conf' | wc -l)" "$nn"
	check_eq "$net: one key per link" "$(find "$D" -name '*.key' -size 65536c | wc -l)" "$nl"
	ok=1
	for c in "$D"/*.conf; do
		"$QKD" node --config "$c" --check >/dev/null 2>"$T/err" || { ok=0; cat "$T/err" >&2; }
	done
	check_eq "$net: every configuration passes qkd node --check" "$ok" 1
	# Ports: each link address at exactly its two ends, the rest once.
	addrs=$(grep -hE '^\s*(classical|fiber|listen|metrics) = ' "$D"/*.conf |
		sed -E 's/^\s*([a-z]+) = "([^"]*)".*/\1 \2/')
	check_eq "$net: 2 link ports a link, each named at both ends" \
		"$(grep -E '^(classical|fiber) ' <<<"$addrs" | sort | uniq -c | awk '$1 == 2' | wc -l)" \
		"$((2 * nl))"
	check_eq "$net: no port used for two things" \
		"$(awk '{ print $2 }' <<<"$addrs" | sort -u | wc -l)" "$((2 * nl + 2 * nn))"
	check_eq "$net: the ports from BASE_PORT $base" \
		"$(awk '{ sub(/.*:/, "", $2); print $2 }' <<<"$addrs" | sort -n | sed -n '1p;$p' | tr '\n' ' ')" \
		"$base $((base + 2000 + nn - 1)) "
	bad=$(ends_check "$D" "$topo")
	check_eq "$net: every link at both ends, same settings, Alice first, SAEs across" "$bad" none
	check "$net: start.sh and stop.sh are shell" sh -n "$D/start.sh"
	check "$net: stop.sh is shell" sh -n "$D/stop.sh"
done
# The check above sees a difference: one end of A-B at another distance,
# the roles swapped on B-C, SAE_A missing at B.
cp -r "$T/mesh6" "$T/mut"
sed -i '/name = "A-B"/,/distance_km/ s/distance_km = 2;/distance_km = 2.5;/' "$T/mut/B.conf"
sed -i '/name = "B-C"/,/role/ s/role = "bob";/role = "alice";/' "$T/mut/C.conf"
sed -i '/id = "SAE_A"; link/d' "$T/mut/B.conf"
check_eq "the link check sees two ends that differ" "$(ends_check "$T/mut" "$TOP/examples/relay/mesh6.topo")" \
	" A-B:settings A-B:saes B-C:roles"
rm -rf "$T/mut"
check_match "C-D: free-space" "$(block "$T/mesh6/C.conf" C-D)" 'channel = "free-space";'
check_match "C-D: at night" "$(block "$T/mesh6/C.conf" C-D)" 'daylight = false;'
check_match "C-D: 1.5 km" "$(block "$T/mesh6/D.conf" C-D)" 'distance_km = 1\.5;'
check_match "ring10: N0-N5 free-space" "$(block "$T/ring10/N5.conf" N0-N5)" 'channel = "free-space"'

# Refusals: `topology FILE:LINE: why`, non-zero exit, nothing written.
refuse() {	# NAME TOPOLOGY-TEXT MESSAGE
	printf '%b' "$2" >"$T/bad.topo"
	rm -rf "$T/badnet"
	cli_run "$MK" "$T/bad.topo" "$T/badnet"
	if [ "$STATUS" -ne 0 ] && [ "$ERR" = "make-network.sh: $3" ] && [ ! -e "$T/badnet" ]; then
		cli_ok "refused: $1"
	else
		cli_not_ok "refused: $1" "exit $STATUS, stderr: $ERR" "want: make-network.sh: $3"
	fi
}
refuse "a node id used twice" 'node A\nnode B\nnode A sae=X\nlink A B\n' \
	"topology $T/bad.topo:3: node id 'A' used twice (first on line 1)"
refuse "a link to an unknown node" 'node A\nnode B\nlink A B\nlink B C  # C?\n' \
	"topology $T/bad.topo:4: link names unknown node 'C'"
refuse "a node linked to itself" 'node A\nlink A A\n' \
	"topology $T/bad.topo:2: node 'A' linked to itself"
refuse "a pair linked twice, either order" 'node A\nnode B\nlink A B\n\nlink B A km=3\n' \
	"topology $T/bad.topo:5: nodes 'B' and 'A' linked twice (first on line 3)"
refuse "an SAE used twice" 'node A sae=S1\nnode B sae=S2,S1\n' \
	"topology $T/bad.topo:2: SAE 'S1' used twice (first at node A)"
refuse "an unknown statement" 'node A\nnodes B\n' \
	"topology $T/bad.topo:2: unknown statement 'nodes' (node or link)"
refuse "an unknown key" 'node A\nnode B\nlink A B km=2 colour=red\n' \
	"topology $T/bad.topo:3: unknown key 'colour' on a link (channel, km, latency_ms, day, rate_bps, pool_bits)"
refuse "a bad channel" 'node A\nnode B\nlink A B channel=copper\n' \
	"topology $T/bad.topo:3: channel='copper': fiber or free-space"
refuse "a bad distance" 'node A\nnode B\nlink A B km=-1\n' \
	"topology $T/bad.topo:3: km='-1': a distance 0..100000"
refuse "day on a fiber" 'node A\nnode B\nlink A B day=yes\n' \
	"topology $T/bad.topo:3: day= is for free-space links only"
refuse "a bad node id" 'node -A\n' \
	"topology $T/bad.topo:1: bad node id '-A' (1..63 of [A-Za-z0-9._-], not starting with . or -)"
refuse "a node without links" 'node A\nnode B\nnode C\nlink A B\n' \
	"topology $T/bad.topo: node 'C' has no link (a node needs at least one)"
refuse "two links that would share a name and a key file" \
	'node A\nnode B-C\nnode A-B\nnode C\nlink A B-C\nlink A-B C\n' \
	"topology $T/bad.topo: links A B-C and A-B C would both be named A-B-C: rename a node"
refuse "more links than a node configuration holds" \
	"node H\n$(for i in $(seq 1 17); do printf 'node L%d\\nlink H L%d\\n' "$i" "$i"; done)" \
	"topology $T/bad.topo: node 'H' has 17 links; a node's configuration holds at most 16 (QKD_NODE_LINKS_MAX)"
head -c 1048577 /dev/zero | tr '\0' '#' >"$T/big.topo"
check_match "a file over 1 MiB" "$("$MK" "$T/big.topo" "$T/badnet" 2>&1)" "larger than 1 MiB"
check_match "an OUTDIR that holds a network" "$("$MK" "$TOP/examples/relay/mesh6.topo" "$T/mesh6" 2>&1)" \
	"A.conf exists: use an empty OUTDIR"

# The 6-node network runs: every link stores a block, then stop.sh stops it.
# Smaller rounds than the example's: the first block sooner.
sed -i 's/round_pulses = 5e7;/round_pulses = 1e7;/' "$T"/mesh6/*.conf
check "start.sh" "$T/mesh6/start.sh"
for f in "$T"/mesh6/*.pid; do PIDS+=("$(cat "$f")"); done
blocks() {	# the fewest blocks stored at any end of any link
	local n
	for n in A B C D E F; do
		timeout 5 "$QKD" status --node "$T/mesh6/$n.sock" --json 2>/dev/null ||
			echo '{"links": [{"stored_blocks": 0}]}'
	done | jq -s '[.[].links[].stored_blocks] | min'
}
for i in $(seq 1 50); do [ "$(blocks)" -ge 1 ] 2>/dev/null && break; sleep 0.5; done
check_match "at least one block at each of the 14 ends" "$(blocks)" '^[1-9][0-9]*$'
# The relay: SAE_A at A gets a key for SAE_D, three hops away, which SAE_D
# fetches at D. A refuses (400 unknown SAE, then 503) until the LSAs have
# spread and the routes are there: retried, bounded.
P=$T/mesh6/pki
kme() {	# NODE-PORT SAE ARGS...: qkd kme as SAE
	local port=$1 sae=$2
	shift 2
	timeout 30 "$QKD" kme "$1" --url "https://127.0.0.1:$port" "${@:2}" \
		--ca "$P/ca.pem" --cert "$P/$sae.pem" --cert-key "$P/$sae.key" --json
}
for i in $(seq 1 40); do
	kme $((base + 1000)) SAE_A enc --sae SAE_D >"$T/enc.json" 2>"$T/enc.err" && break
	sleep 0.5
done
check_match "enc_keys at A for SAE_D at D (three hops)" "$(jq -r '.keys[0].key_ID' "$T/enc.json" 2>&1)" \
	'^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
kme $((base + 1003)) SAE_D dec --sae SAE_A --key-id "$(jq -r '.keys[0].key_ID' "$T/enc.json")" \
	>"$T/dec.json" 2>"$T/dec.err"
check_eq "dec_keys at D: the same key" "$(jq -r '.keys[0].key' "$T/dec.json" 2>&1)" \
	"$(jq -r '.keys[0].key' "$T/enc.json" 2>&1)"
# The map of the live network, as A knows it: every LSA is in by now.
check "qkd netmap on the running node A" "$QKD" netmap --node "$T/mesh6/A.sock" --format dot
check_eq "netmap: 6 nodes" "$(grep -cE '^  "[A-F]" \[label=' <<<"$OUT")" 6
check_eq "netmap: 7 links, all up" "$(grep -cE '^  "[A-F]" -- "[A-F]" \[color="darkgreen"' <<<"$OUT")" 7
check "stop.sh" "$T/mesh6/stop.sh"
left=0
for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && left=$((left + 1)); done
check_eq "every node stopped" "$left" 0
check_match "a node logged its stop" "$(cat "$T/mesh6/A.log")" 'node A: stopped'

finish
