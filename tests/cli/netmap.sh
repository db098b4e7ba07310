#!/usr/bin/env bash
# tests/cli/netmap.sh - `qkd netmap` (docs/relay.md, "Network map") on
# hand-written status JSON (tests/cli/netmap/): the dot source of a 6-node
# mesh seen from A (nodes, edges, colours, widths, routes in bold), svg and
# png through graphviz, and every refusal: malformed JSON, a missing file,
# a status without a relay object, a relay object that breaks the schema,
# graphviz missing, a node socket nobody answers on.
# Usage (from the top of the tree): QKD=build/qkd tests/cli/netmap.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

QKD=${QKD:-build/qkd}
QKD=$(cd "$(dirname "$QKD")" && pwd)/$(basename "$QKD")
J=$(cd "$(dirname "$0")/netmap" && pwd)
T=$CLI_TMP

check "dot from a saved status" "$QKD" netmap --status "$J/mesh6.json" --format dot
DOT=$OUT
check_match "an undirected graph" "$DOT" '^graph qkdnet \{'
check_eq "6 nodes, one per LSA origin" "$(grep -cE '^  "[A-F]" \[label=' <<<"$DOT")" 6
check_eq "7 edges, one per linked pair" "$(grep -cE '^  "[A-F]" -- "[A-F]" ' <<<"$DOT")" 7
edge() { grep -E "^  \"$1\" -- \"$2\" " <<<"$DOT"; }
check_match "A-B: up, green, on a route (bold)" "$(edge A B)" 'color="darkgreen", style="bold"'
check_match "B-C: up, green, on a route" "$(edge B C)" 'color="darkgreen", style="bold"'
check_match "C-D: alarmed at C, red" "$(edge C D)" 'color="red", style="solid".*ALARMED'
check_match "C-D: the larger QBER of the two ends" "$(edge C D)" 'QBER 16\.00 %'
check_match "E-F: down at E, grey and dashed" "$(edge E F)" 'color="grey", style="dashed"'
check_match "A-F: up, on the route to F" "$(edge A F)" 'color="darkgreen", style="bold"'
check_match "D-E: on the route to D" "$(edge D E)" 'color="darkgreen", style="bold"'
check_match "B-E: on the routes to D and E" "$(edge B E)" 'color="darkgreen", style="bold"'
# Widths: 1 + log2(1 + available / 65536), the smaller end's available key.
check_match "A-B: 4 000 000 bits at A: width 1 + log2(1 + 61.04) = 6.96" "$(edge A B)" \
	'penwidth=6\.96, label="QBER 1\.10 %\\n4\.0 Mbit"'
check_match "A-F: 65 536 bits at A (70 000 at F): width 2.00" "$(edge A F)" \
	'penwidth=2\.00, label="QBER 1\.20 %\\n65\.5 kbit"'
check_match "C-D: no key: width 1" "$(edge C D)" 'penwidth=1\.00'
check_match "the node itself: a double border" "$(grep -E '^  "A" \[' <<<"$DOT")" 'peripheries=2'
check_match "a node's label: id and SAEs" "$(grep -E '^  "D" \[' <<<"$DOT")" 'label="D\\nSAE_D, SAE_D2"'
check_eq "no other node drawn with a double border" "$(grep -c peripheries <<<"$DOT")" 1

# graphviz reads it. dot to a file by --format and by the suffix.
check "--out FILE.dot writes the dot source" "$QKD" netmap --status "$J/mesh6.json" --out "$T/net.dot"
check_eq "the same text" "$(cat "$T/net.dot")" "$DOT"
if command -v dot >/dev/null; then
	check "svg through graphviz" "$QKD" netmap --status "$J/mesh6.json" --out "$T/net.svg"
	check_match "an svg with the six nodes" "$(grep -c '<g id="node' "$T/net.svg")" '^6$'
	check_match "and the seven edges" "$(grep -c '<g id="edge' "$T/net.svg")" '^7$'
	check "png through graphviz" "$QKD" netmap --status "$J/mesh6.json" --out "$T/net.png"
	check_eq "a png file" "$(head -c 8 "$T/net.png" | od -An -tx1 | tr -d ' \n')" 89504e470d0a1a0a
	check "svg on standard output" "$QKD" netmap --status "$J/mesh6.json" --format svg
	check_match "svg text" "$OUT" '<svg '
else
	cli_not_ok "graphviz installed (make deps)" "dot not on PATH"
fi
# Without graphviz: svg refused with the package to install, dot still works.
cli_run env PATH=/nonexistent "$QKD" netmap --status "$J/mesh6.json" --out "$T/x.svg"
check_eq "no dot: exit 1" "$STATUS" 1
check_eq "no dot: the message" "$ERR" "qkd: netmap: graphviz 'dot' not found (apt-get install graphviz)"
check "no dot: --format dot needs none" env PATH=/nonexistent "$QKD" netmap \
	--status "$J/mesh6.json" --format dot

# A link reported by one end only: grey, dashed, said so; its far end
# has no LSA and is drawn as such.
jq '.relay.lsdb |= map(select(.origin != "F"))' "$J/mesh6.json" >"$T/no_f.json"
check "an origin missing" "$QKD" netmap --status "$T/no_f.json" --format dot
check_match "A-F: one end reports, grey dashed" "$(grep -E '^  "A" -- "F" ' <<<"$OUT")" \
	'color="grey", style="dashed,bold".*one end reports'
check_match "F: drawn dashed, without an LSA" "$(grep -E '^  "F" \[' <<<"$OUT")" \
	'label="F\\n\(no LSA\)", style="rounded,dashed"'

# Refusals, each with "qkd: netmap: SOURCE: why" and a non-zero exit.
check_fail "missing file" "$QKD" netmap --status "$T/none.json" --format dot
check_eq "missing file: the message" "$ERR" "qkd: netmap: $T/none.json: No such file or directory"
printf '{"relay": {"self": "A", ' >"$T/trunc.json"
check_fail "malformed JSON" "$QKD" netmap --status "$T/trunc.json" --format dot
check_match "malformed JSON: the message" "$ERR" "^qkd: netmap: $T/trunc.json: not JSON: .*\(line 1\)$"
check_fail "no relay object" "$QKD" netmap --status "$J/no_relay.json" --format dot
check_eq "no relay object: the message" "$ERR" \
	"qkd: netmap: $J/no_relay.json: the node runs no relay service"
bad() {	# NAME JQ-FILTER MESSAGE-REGEX
	jq "$2" "$J/mesh6.json" >"$T/bad.json"
	check_fail "$1" "$QKD" netmap --status "$T/bad.json" --format dot
	check_match "$1: the message" "$ERR" "^qkd: netmap: $T/bad.json: $3"
}
bad "an unknown state" '.relay.lsdb[2].links[1].state = "broken"' \
	"relay\.lsdb\[2\]\.links\[1\]\.state: 'broken' is not up, down or alarmed"
bad "a QBER over 1" '.relay.lsdb[0].links[0].qber = 1.5' 'relay\.lsdb\[0\]\.links\[0\]\.qber'
bad "negative key" '.relay.lsdb[1].links[0].available_bits = -1' \
	'relay\.lsdb\[1\]\.links\[0\]\.available_bits: missing or not a whole number'
bad "more available than stored" '.relay.lsdb[1].links[0].available_bits = 9000000' \
	"relay\.lsdb\[1\] \(origin 'B'\): more key available than stored"
bad "an id dot would misread" '.relay.lsdb[0].origin = "A\" -- \"Z"' \
	'relay\.lsdb\[0\] .*: origin is not a node id'
bad "an origin twice" '.relay.lsdb[1].origin = "A" | .relay.lsdb[1].links = []' \
	"relay\.lsdb: origin 'A' twice"
bad "lsdb not an array" '.relay.lsdb = {}' 'relay\.lsdb: missing or not an array'
bad "self missing" 'del(.relay.self)' 'relay\.self: missing or not a string'
bad "a route through a bad id" '.relay.routes[0].path = ["A", "-x"]' \
	'relay\.routes\[0\]\.path\[1\]: not a node id'
echo '[1, 2]' >"$T/array.json"
check_fail "not an object" "$QKD" netmap --status "$T/array.json" --format dot
check_match "not an object: the message" "$ERR" 'not a status object$'

# The command line.
check_exit "neither --node nor --status" 2 "$QKD" netmap --format dot
check_exit "both --node and --status" 2 "$QKD" netmap --node "$T/s" --status "$J/mesh6.json"
check_exit "an unknown format" 2 "$QKD" netmap --status "$J/mesh6.json" --format jpeg
check_fail "a socket nobody listens on" "$QKD" netmap --node "$T/nobody.sock" --format dot
check_match "a socket nobody listens on: the message" "$ERR" \
	"^qkd: netmap: $T/nobody.sock: cannot reach the node: "
check "--help" "$QKD" netmap --help
check_match "--help names the options" "$OUT" '--node SOCKET.*--status FILE'

finish
