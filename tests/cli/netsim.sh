#!/usr/bin/env bash
# tests/cli/netsim.sh - `qkd netsim` (docs/netsim.md): the 6-node mesh
# delivers every key with equal bits at both ends, over one path and two;
# a cut and an alarm of A-B reroute A's traffic (the trace shows A's next
# hop to B move from B to F) and converge; a run is the same for the same
# seed; a generated network written with --write-topology runs the same
# when read back; each bad topology file gets `qkd: topology FILE:LINE: why`
# and exit 1; bad options exit 2; the examples' topologies parse.
# Usage (from the top of the tree): QKD=build/qkd tests/cli/netsim.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

QKD=${QKD:-build/qkd}
j() { printf '%s' "$OUT" | jq -r "$1"; }
T=$CLI_TMP/mesh6.topo
cat >"$T" <<'TOPO'
# the 6-node mesh: a ring A..F with the chord B-E
node A sae=SAE_A
node B sae=SAE_B
node C sae=SAE_C
node D sae=SAE_D
node E sae=SAE_E
node F sae=SAE_F
link A B
link B C
link C D channel=free-space km=1.5
link D E
link E F
link F A
link B E
TOPO

# --- every key delivered, equal at both ends
check "mesh6 30 s" "$QKD" netsim --topology "$T" --duration 30 --requests 20 --json
check_eq "mismatches 0" "$(j .mismatches)" 0
check_eq "all started keys completed" "$(j '.completed == .started and .failed == 0')" true
check_eq "none refused" "$(j .refused)" 0
check_match "hundreds of keys" "$(j .completed)" '^[0-9]{3,}$'
check_eq "relayed bits = 256 per key" "$(j '.relayed_bits == 256 * .completed')" true
check_eq "key per relayed bit in [1, 3]" \
	"$(j '.key_per_relayed_bit >= 1 and .key_per_relayed_bit <= 3')" true
check_eq "throughput = relayed bits / 28 s" "$(j '(.throughput_bps - .relayed_bits / 28) | fabs < 1e-6')" true
check "mesh6 --paths 2" "$QKD" netsim --topology "$T" --duration 20 --paths 2 --json
check_eq "two paths: mismatches 0" "$(j .mismatches)" 0
check_eq "two paths: most keys as two shares" "$(j '.two_path_fraction > 0.9')" true

# --- a cut of A-B at 10 s: A's route to B moves from B to F
check "cut A-B@10 --trace" "$QKD" netsim --topology "$T" --duration 20 --cut A-B@10 --trace
check_match "converged" "$OUT" '^cut +A-B at 10 s: known everywhere after [0-9.]+ ms, converged after 0\.[0-9]+ s'
check_match "trace: A to B moves from B to F" "$OUT" '^reroute 10\.[0-9]+ A B B -> F$'
check_eq "no route at A through B after the cut" \
	"$(printf '%s\n' "$OUT" | awk '$1 == "reroute" && $2 >= 10 && $3 == "A" && $7 == "B"' | wc -l)" 0
check_match "mismatches 0 after the cut" "$OUT" '^key mismatches +0$'
check "cut --json" "$QKD" netsim --topology "$T" --duration 20 --cut A-B@10 --json --trace
check_eq "json: one fault, a cut of A-B" "$(j '.faults | length') $(j '.faults[0].kind') $(j '.faults[0].a')-$(j '.faults[0].b')" "1 cut A-B"
check_eq "json: converged within 1 s" "$(j '.faults[0].convergence_s <= 1')" true
check_eq "json: known everywhere within 10 ms" "$(j '.faults[0].flood_s > 0 and .faults[0].flood_s < 0.01')" true
check_eq "json: trace has A B B -> F" \
	"$(j '[.trace[] | select(.node == "A" and .dest == "B" and .old == "B" and .new == "F")] | length')" 1

# --- an alarm on A-B does the same
check "alarm A-B@10" "$QKD" netsim --topology "$T" --duration 20 --alarm A-B@10 --trace
check_match "alarm converged" "$OUT" '^alarm A-B at 10 s: known everywhere after [0-9.]+ ms, converged after'
check_match "alarm: A to B moves to F" "$OUT" '^reroute 10\.[0-9]+ A B B -> F$'

# --- determinism: the same seed, the same figures and trace (wall time aside)
strip() { jq -S 'del(.wall_s)'; }
check "run 1" "$QKD" netsim --topology "$T" --duration 15 --cut B-E@5 --alarm C-D@8 --trace --json --seed 7
R1=$(printf '%s' "$OUT" | strip)
check "run 2" "$QKD" netsim --topology "$T" --duration 15 --cut B-E@5 --alarm C-D@8 --trace --json --seed 7
R2=$(printf '%s' "$OUT" | strip)
check_eq "same seed, same output" "$R1" "$R2"
check "run 3, another seed" "$QKD" netsim --topology "$T" --duration 15 --cut B-E@5 --alarm C-D@8 --trace --json --seed 8
check "another seed, other requests" test "$(printf '%s' "$OUT" | strip)" != "$R1"

# --- generated networks, written and read back
check "generate random 40" "$QKD" netsim --generate random 40 --seed 3 --duration 10 --json \
	--write-topology "$CLI_TMP/r40.topo"
G1=$(printf '%s' "$OUT" | strip)
check_eq "generated: mismatches 0" "$(j .mismatches)" 0
check_eq "generated: 40 nodes" "$(j .nodes)" 40
check "the written topology runs" "$QKD" netsim --topology "$CLI_TMP/r40.topo" --seed 3 --duration 10 --json
check_eq "read back: the same run" "$(printf '%s' "$OUT" | strip)" "$G1"
check "--no-run writes and stops" "$QKD" netsim --generate grid 9 --write-topology "$CLI_TMP/g9.topo" --no-run
check_eq "--no-run: nothing on stdout" "$OUT" ""
check_eq "--no-run: 9 nodes written" "$(grep -c '^node ' "$CLI_TMP/g9.topo")" 9
check "generate ring:12 (colon form)" "$QKD" netsim --generate ring:12 --duration 5 --json
check_eq "ring 12: 12 links" "$(j .links)" 12
check "generate grid 16" "$QKD" netsim --generate grid 16 --duration 5 --json
check_eq "grid 16: 24 links" "$(j .links)" 24

# --- bad topology files: qkd: topology FILE:LINE: why, exit 1
bad() {	# NAME LINE WHY TEXT
	printf '%b' "$4" >"$CLI_TMP/bad.topo"
	check_exit "bad topology: $1" 1 "$QKD" netsim --topology "$CLI_TMP/bad.topo" --duration 1
	check_match "bad topology: $1: message" "$ERR" "^qkd: topology $CLI_TMP/bad.topo:$2: $3"
}
bad "node id used twice" 3 "node id used twice" 'node A\nnode B\nnode A\n'
bad "SAE used twice" 2 "SAE used twice" 'node A sae=X\nnode B sae=X\n'
bad "unknown node" 2 "link names an unknown node" 'node A\nlink A B\n'
bad "self link" 2 "node linked to itself" 'node A\nlink A A\n'
bad "pair twice" 4 "pair linked twice" 'node A\nnode B\nlink A B\nlink B A\n'
bad "unknown statement" 1 "unknown statement" 'router A\n'
bad "unknown key" 3 "unknown key" 'node A\nnode B\nlink A B color=red\n'
bad "bad value" 3 "bad value of km" 'node A\nnode B\nlink A B km=far\n'
check_exit "missing file" 1 "$QKD" netsim --topology "$CLI_TMP/none.topo"
check_match "missing file: message" "$ERR" "^qkd: topology $CLI_TMP/none.topo: No such file"

# --- bad options: exit 2
check_exit "no network" 2 "$QKD" netsim
check_exit "both networks" 2 "$QKD" netsim --topology "$T" --generate ring 5
check_exit "generate without N" 2 "$QKD" netsim --generate ring
check_exit "generate bad kind" 2 "$QKD" netsim --generate star 5
check_exit "generate too few" 2 "$QKD" netsim --generate ring 2
check_exit "cut of no link" 2 "$QKD" netsim --topology "$T" --cut A-D@5
check_exit "cut without time" 2 "$QKD" netsim --topology "$T" --cut A-B
check_exit "paths 3" 2 "$QKD" netsim --topology "$T" --paths 3
check_exit "fault after the end" 1 "$QKD" netsim --topology "$T" --duration 5 --cut A-B@9

# --- route tables at given times (--routes NODE@T)
check "routes A@9.9 A@10.5 with a cut of A-B@10" "$QKD" netsim --topology "$T" --duration 12 \
	--cut A-B@10 --routes A@10.5 --routes A@9.9 --json
check_eq "routes: two probes, in time order" "$(j '[.routes[] | "\(.node)@\(.t)"] | join(" ")')" "A@9.9 A@10.5"
check_eq "routes: before the cut A reaches B directly" \
	"$(j '.routes[0].routes[] | select(.dest == "B") | .path | join("-")')" "A-B"
check_eq "routes: after it, around by F" \
	"$(j '.routes[1].routes[] | select(.dest == "B") | .path | join("-")')" "A-F-E-B"
check_eq "routes: the status schema (dest next_hop cost hops path)" \
	"$(j '.routes[0].routes[0] | keys | join(" ")')" "cost dest hops next_hop path"
check_eq "routes: five destinations, costs as the paths' sums are positive" \
	"$(j '[.routes[0].routes[] | select(.cost > 0 and .hops == (.path | length) - 1)] | length')" 5
check "routes in the table" "$QKD" netsim --topology "$T" --duration 3 --routes C@2
check_match "routes: the table's heading" "$OUT" '^routes of C at 2\.000 s:$'
check_match "routes: C to A over B" "$OUT" '^  A +cost +[0-9.]+  C B A$'
check_eq "no probes: an empty array" \
	"$("$QKD" netsim --topology "$T" --duration 1 --json | jq -c .routes)" "[]"
check_exit "routes of no node" 2 "$QKD" netsim --topology "$T" --routes Z@1
check_match "routes of no node: message" "$ERR" "^qkd: --routes: no node 'Z' in the topology"
check_exit "routes without time" 2 "$QKD" netsim --topology "$T" --routes A
check_exit "routes at a negative time" 2 "$QKD" netsim --topology "$T" --routes A@-1
check_exit "routes at time x" 2 "$QKD" netsim --topology "$T" --routes A@x
check_exit "routes after the end" 2 "$QKD" netsim --topology "$T" --duration 5 --routes A@6
check_match "routes after the end: message" "$ERR" "^qkd: --routes: A@6: after the end of the run"
many=(); for i in $(seq 1 65); do many+=(--routes "A@$i"); done
check_exit "routes 65 times" 2 "$QKD" netsim --topology "$T" "${many[@]}"

# --- the examples' networks, when present
for f in examples/relay/mesh6.topo examples/relay/ring10.topo; do
	[ -e "$f" ] || continue
	check "example $f runs" "$QKD" netsim --topology "$f" --duration 10 --json
	check_eq "example $f: mismatches 0, none failed" "$(j '.mismatches == 0 and .failed == 0')" true
done

finish
