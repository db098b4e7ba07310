#!/usr/bin/env bash
# make-network.sh TOPOLOGY OUTDIR [BASE_PORT] - turn a topology file
# (examples/relay/README.md, "Topology files") into a network of `qkd node`s on
# loopback: one configuration per node, the bootstrap key of every link,
# a test PKI for the key managers, and start.sh / stop.sh.
#
# Written into OUTDIR (created if needed; it must not hold a network yet):
#   NODE.conf          one per node: every link of the node, its key manager
#   LINK.key           one per link ("A-B.key"), the same file at both ends
#   pki/               make-test-pki.sh with every SAE of the topology
#   start.sh, stop.sh  start every node in the background (NODE.log,
#                      NODE.pid, NODE.sock in OUTDIR), stop them
#   ports.txt          which port is what
#
# Ports, from BASE_PORT (default 7300), in the order of the file's links:
# link i (0, 1, ...) has its classical channel on BASE+2i and its fiber on
# BASE+2i+1; node j (in the order of the `node` lines) has its key manager
# on BASE+1000+j and its metrics on BASE+2000+j. All on 127.0.0.1.
#
# Environment: QKD (the qkd executable start.sh runs; default: build/qkd of
# this source tree, else `qkd` on PATH), ROUND_PULSES (5e7), LOG_LEVEL (info).
# The topology is checked first; a line that cannot be read stops the script
# with `topology FILE:LINE: why` and nothing is written.
set -eu
prog=$(basename "$0")
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "$prog: $*" >&2; exit 1; }
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
	echo "usage: $prog TOPOLOGY OUTDIR [BASE_PORT]" >&2
	exit 2
fi
topo=$1 out=$2 base=${3:-7300}
round_pulses=${ROUND_PULSES:-5e7}
log_level=${LOG_LEVEL:-info}

case $base in ''|*[!0-9]*|0*) die "BASE_PORT '$base' is not a port number" ;; esac
[ "$base" -ge 1024 ] || die "BASE_PORT $base: use a port of 1024 or more"
case $round_pulses in *[!0-9e.]*|'') die "ROUND_PULSES '$round_pulses' is not a number" ;; esac
case $log_level in error|warn|info|debug) ;; *) die "LOG_LEVEL '$log_level': error, warn, info or debug" ;; esac
{ [ -f "$topo" ] && [ -r "$topo" ]; } || die "topology $topo: no such readable file"
[ "$(wc -c <"$topo")" -le 1048576 ] || die "topology $topo: larger than 1 MiB"

# --- read and check the topology (README.md, "Topology files") -----------
# Output, one record a line: "node ID SAE,SAE..." and
# "link A B CHANNEL KM DAY", in the order of the file.
plan=$(awk -v file="$topo" -v prog="$prog" '
function fail(why) { printf "%s: topology %s:%d: %s\n", prog, file, (at ? at : FNR), why > "/dev/stderr"; bad = 1; exit 1 }
function id_ok(s) { return length(s) >= 1 && length(s) <= 63 && s ~ /^[A-Za-z0-9_][A-Za-z0-9._-]*$/ }
function sae_ok(s) { return length(s) >= 1 && length(s) <= 64 && s ~ /^[A-Za-z0-9._~-]+$/ }
function real_ok(s) { return s ~ /^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ }
function int_ok(s) { return s ~ /^[0-9]+$/ && length(s) <= 19 }
FNR > 100000 { fail("more than 100000 lines") }
{
	sub(/\r$/, ""); sub(/#.*/, "")
	n = split($0, t, /[ \t]+/)
	# split() on a line with leading blanks gives an empty first field
	k = 0; for (i = 1; i <= n; i++) if (t[i] != "") w[++k] = t[i]
	if (k == 0) next
	if (w[1] == "node") node_line(k)
	else if (w[1] == "link") link_line(k)
	else fail("unknown statement \x27" w[1] "\x27 (node or link)")
}
function node_line(k,   id, i, kv, s, ns, j, saes) {
	if (k < 2) fail("node without an id")
	id = w[2]
	if (!id_ok(id)) fail("bad node id \x27" id "\x27 (1..63 of [A-Za-z0-9._-], not starting with . or -)")
	if (id in nline) fail("node id \x27" id "\x27 used twice (first on line " nline[id] ")")
	saes = ""
	for (i = 3; i <= k; i++) {
		if (w[i] !~ /^sae=/) fail("unknown key \x27" w[i] "\x27 on a node (sae=SAE[,SAE...])")
		if (saes != "") fail("sae= given twice")
		if (w[i] == "sae=") fail("sae= without an SAE id")
		ns = split(substr(w[i], 5), s, ",")
		if (ns > 64) fail("more than 64 SAEs at node \x27" id "\x27")
		for (j = 1; j <= ns; j++) {
			if (!sae_ok(s[j])) fail("bad SAE id \x27" s[j] "\x27 (1..64 of [A-Za-z0-9._~-])")
			if (s[j] in sae_at) fail("SAE \x27" s[j] "\x27 used twice (first at node " sae_at[s[j]] ")")
			sae_at[s[j]] = id
		}
		saes = substr(w[i], 5)
	}
	nline[id] = FNR; nodes[++nn] = id; nsae[id] = saes
}
function link_line(k,   a, b, i, key, val, seen, ch, km, day) {
	if (k < 3) fail("a link names two nodes: link ID_A ID_B [key=value ...]")
	a = w[2]; b = w[3]
	if (!id_ok(a)) fail("bad node id \x27" a "\x27")
	if (!id_ok(b)) fail("bad node id \x27" b "\x27")
	if (a == b) fail("node \x27" a "\x27 linked to itself")
	if ((a SUBSEP b) in pair || (b SUBSEP a) in pair)
		fail("nodes \x27" a "\x27 and \x27" b "\x27 linked twice (first on line " (((a SUBSEP b) in pair) ? pair[a, b] : pair[b, a]) ")")
	ch = "fiber"; km = "10"; day = "no"; split("", seen)
	for (i = 4; i <= k; i++) {
		if (w[i] !~ /^[a-z_]+=/) fail("\x27" w[i] "\x27 is not key=value")
		key = w[i]; sub(/=.*/, "", key); val = substr(w[i], length(key) + 2)
		if (key in seen) fail("key \x27" key "\x27 given twice")
		seen[key] = 1
		if (key == "channel") {
			if (val != "fiber" && val != "free-space") fail("channel=\x27" val "\x27: fiber or free-space")
			ch = val
		} else if (key == "km") {
			if (!real_ok(val) || val + 0 > 100000) fail("km=\x27" val "\x27: a distance 0..100000")
			km = sprintf("%.10g", val + 0)	# 5. and .5 as libconfig reads them
		} else if (key == "day") {
			if (val != "yes" && val != "no") fail("day=\x27" val "\x27: yes or no")
			day = val
		} else if (key == "latency_ms") {
			if (!real_ok(val)) fail("latency_ms=\x27" val "\x27: a number of milliseconds >= 0")
		} else if (key == "rate_bps") {
			if (!real_ok(val)) fail("rate_bps=\x27" val "\x27: a rate >= 0")
		} else if (key == "pool_bits") {
			if (!int_ok(val)) fail("pool_bits=\x27" val "\x27: a whole number of bits")
		} else {
			fail("unknown key \x27" key "\x27 on a link (channel, km, latency_ms, day, rate_bps, pool_bits)")
		}
	}
	if (day == "yes" && ch != "free-space") fail("day= is for free-space links only")
	pair[a, b] = FNR
	nl++; la[nl] = a; lb[nl] = b; lline[nl] = FNR; lrest[nl] = ch " " km " " day
}
END {
	if (bad) exit 1
	for (i = 1; i <= nl; i++) {
		at = lline[i]
		if (!(la[i] in nline)) fail("link names unknown node \x27" la[i] "\x27")
		if (!(lb[i] in nline)) fail("link names unknown node \x27" lb[i] "\x27")
		if (++deg[la[i]] > 32) fail("more than 32 links at node \x27" la[i] "\x27")
		if (++deg[lb[i]] > 32) fail("more than 32 links at node \x27" lb[i] "\x27")
	}
	if (nn == 0) { at = FNR; fail("no node") }
	# "!" for no SAE: no SAE id holds it.
	for (i = 1; i <= nn; i++) print "node", nodes[i], (nsae[nodes[i]] == "" ? "!" : nsae[nodes[i]])
	for (i = 1; i <= nl; i++) print "link", la[i], lb[i], lrest[i]
}' "$topo") || exit 1

# --- what a node configuration can hold ------------------------------------
declare -A saes_of links_of kme_port_of metrics_port_of
nodes=() link_a=() link_b=() link_ch=() link_km=() link_day=()
while read -r kind x y z u v; do
	if [ "$kind" = node ]; then
		[ "$y" = '!' ] && y=
		nodes+=("$x"); saes_of[$x]=$y; links_of[$x]=
	else
		link_a+=("$x"); link_b+=("$y"); link_ch+=("$z"); link_km+=("$u"); link_day+=("$v")
		links_of[$x]+=" ${#link_a[@]}"; links_of[$y]+=" ${#link_a[@]}"
	fi
done <<<"$plan"
nlinks=${#link_a[@]}
# nsaes NODE: how many SAEs the node has.
nsaes() { local -a a; IFS=, read -ra a <<<"${saes_of[$1]}"; echo "${#a[@]}"; }
# A link is named A-B at both ends and keyed by A-B.key: the name must be
# a valid link name, and two links must never share one (nodes "A" and "B-C",
# "A-B" and "C" would both give A-B-C, and one key file for two links would
# use its one-time pads twice).
declare -A link_named
for ((i = 0; i < nlinks; i++)); do
	name="${link_a[$i]}-${link_b[$i]}"
	[ ${#name} -le 63 ] || die "topology $topo: link $name: its name (the two node ids) is over 63 characters"
	[ -z "${link_named[$name]:-}" ] || die "topology $topo: links ${link_named[$name]} and ${link_a[$i]} ${link_b[$i]} would both be named $name: rename a node"
	link_named[$name]="${link_a[$i]} ${link_b[$i]}"
done
[ $((2 * nlinks)) -le 1000 ] || die "topology $topo: $nlinks links need more than the 1000 ports below BASE+1000"
[ $((base + 2000 + ${#nodes[@]})) -le 65535 ] || die "BASE_PORT $base: the ports would pass 65535"
for n in "${nodes[@]}"; do
	# shellcheck disable=SC2086  # one argument per link
	set -- ${links_of[$n]}
	[ $# -ge 1 ] || die "topology $topo: node '$n' has no link (a node needs at least one)"
	[ $# -le 16 ] || die "topology $topo: node '$n' has $# links; a node's configuration holds at most 16 (QKD_NODE_LINKS_MAX)"
	[ ${#n} -le 60 ] || die "topology $topo: node id '$n' is too long for its KME ID KME_$n (64 characters at most)"
	count=$(nsaes "$n")
	for l in ${links_of[$n]}; do
		i=$((l - 1)); peer=${link_a[$i]}; [ "$peer" = "$n" ] && peer=${link_b[$i]}
		count=$((count + $(nsaes "$peer")))
	done
	[ "$count" -le 64 ] || die "topology $topo: node '$n' would know $count SAEs (its own and its neighbours'); a key manager knows at most 64"
done

# --- the output directory ------------------------------------------------
mkdir -p "$out"
out=$(cd "$out" && pwd)
for n in "${nodes[@]}"; do
	[ ! -e "$out/$n.conf" ] || die "$out/$n.conf exists: use an empty OUTDIR (or run its stop.sh and remove it)"
	[ $((${#out} + ${#n} + 6)) -le 107 ] || die "$out/$n.sock: longer than a unix socket path may be (107 bytes): use a shorter OUTDIR"
done
if [ -z "${QKD:-}" ]; then
	if [ -x "$here/../../build/qkd" ]; then QKD=$(cd "$here/../../build" && pwd)/qkd
	else QKD=$(command -v qkd || echo qkd); fi
fi

all_saes=$(for n in "${nodes[@]}"; do echo "${saes_of[$n]}" | tr ',' '\n'; done | grep . || true)
# shellcheck disable=SC2086  # one argument per SAE
"$here/../make-test-pki.sh" "$out/pki" $all_saes >/dev/null

: >"$out/ports.txt"
j=0
for n in "${nodes[@]}"; do
	kme_port_of[$n]=$((base + 1000 + j)); metrics_port_of[$n]=$((base + 2000 + j)); j=$((j + 1))
	printf 'node %s: key manager https://127.0.0.1:%d, metrics http://127.0.0.1:%d/metrics\n' \
		"$n" "${kme_port_of[$n]}" "${metrics_port_of[$n]}" >>"$out/ports.txt"
done
for ((i = 0; i < nlinks; i++)); do
	name="${link_a[$i]}-${link_b[$i]}"
	[ -e "$out/$name.key" ] || "$here/../make-auth-key.sh" "$out/$name.key"
	printf 'link %s: classical 127.0.0.1:%d (%s listens), fiber 127.0.0.1:%d (%s listens)\n' \
		"$name" $((base + 2 * i)) "${link_a[$i]}" $((base + 2 * i + 1)) "${link_b[$i]}" >>"$out/ports.txt"
done

# optical I: the optical group of link I, the same text at both ends.
optical() {
	local i=$1
	printf '    optical = {\n'
	if [ "${link_ch[$i]}" = free-space ]; then
		printf '      channel = "free-space";\n'
		printf '      distance_km = %s;            # the beam'"'"'s path\n' "${link_km[$i]}"
		printf '      tx_aperture_m = 0.05;\n      rx_aperture_m = 0.10;\n'
		printf '      beam_divergence = 2e-5;\n      atmos_loss_db_per_km = 0.1;\n'
		printf '      background_day = 1e-4;\n      background_night = 1e-6;\n'
		printf '      daylight = %s;\n' "$([ "${link_day[$i]}" = yes ] && echo true || echo false)"
	else
		printf '      channel = "fiber";\n'
		printf '      distance_km = %s;\n      fiber_loss_db_per_km = 0.2;\n' "${link_km[$i]}"
	fi
	printf '    };\n'
}

# link_group N I: node N's end of link I.
link_group() {
	local n=$1 i=$2 name="${link_a[$2]}-${link_b[$2]}" role=alice peer=${link_b[$2]}
	[ "$n" = "${link_b[$i]}" ] && { role=bob; peer=${link_a[$i]}; }
	cat <<EOF
  {
    name = "$name";
    peer = "$peer";
    role = "$role";
    classical = "127.0.0.1:$((base + 2 * i))";    # ${link_a[$i]} listens, ${link_b[$i]} connects
    fiber = "127.0.0.1:$((base + 2 * i + 1))";        # ${link_b[$i]} listens, ${link_a[$i]} connects
    store = "$n.$name.db";
    auth_key = "$name.key";
    auth_reserve_bits = 262144;
    round_pulses = $round_pulses;
$(optical "$i")
  }
EOF
}

# kme_group N: node N's key manager, or nothing when N has no SAE.
kme_group() {
	local n=$1 s l i peer entries=
	[ -n "${saes_of[$n]}" ] || return 0
	for s in ${saes_of[$n]//,/ }; do entries+="    { id = \"$s\"; },"$'\n'; done
	for l in ${links_of[$n]}; do
		i=$((l - 1)); peer=${link_a[$i]}; [ "$peer" = "$n" ] && peer=${link_b[$i]}
		for s in ${saes_of[$peer]//,/ }; do
			entries+="    { id = \"$s\"; link = \"${link_a[$i]}-${link_b[$i]}\"; kme = \"KME_$peer\"; },"$'\n'
		done
	done
	cat <<EOF

kme = {
  id = "KME_$n";
  listen = "127.0.0.1:${kme_port_of[$n]}";
  cert = "pki/server.pem";
  key = "pki/server.key";
  ca = "pki/ca.pem";
  key_size = 256;
  sync_timeout = 10;
  saes = (
${entries%,$'\n'}
  );
};
EOF
}

for n in "${nodes[@]}"; do
	{
		printf '# %s.conf - node %s of the network in %s, made by make-network.sh.\n' "$n" "$n" "$(basename "$topo")"
		printf '# Reference: docs/config.md. Relative paths are relative to this file.\n'
		printf 'node = {\n  name = "%s";\n  id = "%s";\n  status = "%s.sock";\n' "$n" "$n" "$n"
		printf '  log_level = "%s";\n  metrics = "127.0.0.1:%d";\n};\n\nlinks = (\n' \
			"$log_level" "${metrics_port_of[$n]}"
		sep=
		for l in ${links_of[$n]}; do
			printf '%s%s' "$sep" "$(link_group "$n" $((l - 1)))"
			sep=$',\n'
		done
		printf '\n);\n'
		kme_group "$n"
	} >"$out/$n.conf"
done

cat >"$out/start.sh" <<EOF
#!/bin/sh
# start.sh - start every node of this network in the background (made by
# make-network.sh from $(basename "$topo")). Logs in NODE.log, pids in NODE.pid.
# QKD overrides the executable; NICE=N runs the nodes under nice -n N, so that
# on a shared machine they take the CPU other work leaves.
cd "\$(dirname "\$0")" || exit 1
QKD=\${QKD:-$QKD}
nice=
case \${NICE:-} in
'') ;;
*[!0-9]*) echo "\$0: NICE='\$NICE': a number 0..19" >&2; exit 2 ;;
*) nice="nice -n \$NICE" ;;
esac
for n in ${nodes[*]}; do
	if [ -f "\$n.pid" ] && kill -0 "\$(cat "\$n.pid")" 2>/dev/null; then
		echo "\$0: node \$n runs already (pid \$(cat "\$n.pid"))" >&2
		continue
	fi
	\$nice "\$QKD" node --config "\$PWD/\$n.conf" </dev/null >>"\$n.log" 2>&1 &
	echo \$! >"\$n.pid"
done
echo "started: ${nodes[*]} (qkd status --node \$PWD/NODE.sock)"
EOF

cat >"$out/stop.sh" <<EOF
#!/bin/sh
# stop.sh - stop the nodes start.sh started: SIGTERM to each pid of NODE.pid
# (only if that process is still this network's qkd node), then wait; each
# node finishes its round and exits within a few seconds. kill -9 after 20 s.
cd "\$(dirname "\$0")" || exit 1
pids=
for n in ${nodes[*]}; do
	[ -f "\$n.pid" ] || continue
	p=\$(cat "\$n.pid")
	if tr '\0' ' ' <"/proc/\$p/cmdline" 2>/dev/null | grep -qF -- "\$PWD/\$n.conf"; then
		kill -TERM "\$p" && pids="\$pids \$p"
	fi
	rm -f "\$n.pid"
done
for _ in \$(seq 1 200); do
	left=
	for p in \$pids; do kill -0 "\$p" 2>/dev/null && left="\$left \$p"; done
	[ -z "\$left" ] && exit 0
	sleep 0.1
done
echo "\$0: still running after 20 s, kill -9:\$left" >&2
for p in \$left; do kill -9 "\$p" 2>/dev/null; done
exit 0
EOF
chmod 0755 "$out/start.sh" "$out/stop.sh"
echo "$out: ${#nodes[@]} nodes, $nlinks links (ports in $out/ports.txt); start with $out/start.sh"
