# shellcheck shell=bash
# tests/integration/lib_vpn.sh - four network namespaces for the data plane
# of `qkd vpn` (source it, do not run it; used by vpn_dataplane.sh and
# bench/vpn_tun.sh). Root only. Every address lives inside the namespaces;
# the root namespace is never touched (the veth pairs are created inside).
#
#   h1 (10.81.1.2, fd81:1::2) -- gw1 == UDP 10.81.0.1:4500 <-> 10.81.0.2:4500 == gw2 -- h2 (10.81.2.2, fd81:2::2)
#
# gw1 and gw2 forward between their host and their TUN device qkd0 (routes
# to the remote subnet point into qkd0), where tests/tools/esp_gw carries
# the packets in ESP over the transit link. gw1 also routes 10.81.3.0/24
# into qkd0, a subnet no tunnel covers (NO_POLICY).
#
#   vpn_ns_up SUFFIX      make h1-SUFFIX, gw1-SUFFIX, gw2-SUFFIX, h2-SUFFIX
#   vpn_ns_down           remove them (and whatever runs there)
#   vpn_gw_config DIR N   write DIR/gwN.conf (and the PSK file it names)
#   vpn_gw_start N OUT ARGS...   esp_gw in gwN, stdout to OUT, stderr OUT.err;
#                         waits (5 s at most) for "ready" and the routes
#   vpn_gw_stop N         SIGTERM, wait (5 s at most) for its JSON
#   H1 H2 GW1 GW2         the namespace names; VPN_PID[N] the gateways' pids
#   VPN_MTU               the TUN and hosts' MTU (default 1400; the transit
#                         link gets 100 bytes more for ESP, UDP and IP)

# shellcheck disable=SC2034  # the keys are for the sourcing script
VPN_K1=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1fa0a1a2a3
# shellcheck disable=SC2034
VPN_K2=f0f1f2f3f4f5f6f7f8f9fafbfcfdfeffe0e1e2e3e4e5e6e7e8e9eaebecedeeefb0b1b2b3
declare -a VPN_PID=()
VPN_MTU=${VPN_MTU:-1400}

vpn_ns_up() {
	local s=$1 n
	H1=qh1-$s GW1=qg1-$s GW2=qg2-$s H2=qh2-$s
	for n in "$H1" "$GW1" "$GW2" "$H2"; do
		ip netns add "$n" || return 1
		ip -n "$n" link set lo up
	done
	# The pairs are made inside the namespaces: no name in the root one.
	ip -n "$H1" link add eth0 type veth peer name h1 netns "$GW1" || return 1
	ip -n "$GW1" link add tr0 type veth peer name tr0 netns "$GW2" || return 1
	ip -n "$H2" link add eth0 type veth peer name h2 netns "$GW2" || return 1
	for n in "$GW1" "$GW2"; do
		ip netns exec "$n" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
		# No link-local address on qkd0 and no all-routers group: the kernel
		# then sends no router solicitation or MLD report into the tunnel
		# (they would be NO_POLICY drops). Forwarding is the "all" setting.
		ip netns exec "$n" sysctl -qw net.ipv6.conf.default.addr_gen_mode=1 \
			net.ipv6.conf.default.forwarding=0
	done
	ip -n "$H1" addr add 10.81.1.2/24 dev eth0
	ip -n "$H1" addr add fd81:1::2/64 dev eth0 nodad
	ip -n "$GW1" addr add 10.81.1.1/24 dev h1
	ip -n "$GW1" addr add fd81:1::1/64 dev h1 nodad
	ip -n "$GW1" addr add 10.81.0.1/24 dev tr0
	ip -n "$GW2" addr add 10.81.0.2/24 dev tr0
	ip -n "$GW2" addr add 10.81.2.1/24 dev h2
	ip -n "$GW2" addr add fd81:2::1/64 dev h2 nodad
	ip -n "$H2" addr add 10.81.2.2/24 dev eth0
	ip -n "$H2" addr add fd81:2::2/64 dev eth0 nodad
	# The hosts' MTU is the tunnel's, so TCP never depends on PMTU discovery.
	for n in "$H1:eth0" "$GW1:h1" "$GW1:tr0" "$GW2:tr0" "$GW2:h2" "$H2:eth0"; do
		ip -n "${n%%:*}" link set "${n#*:}" up
	done
	ip -n "$H1" link set eth0 mtu "$VPN_MTU"
	ip -n "$H2" link set eth0 mtu "$VPN_MTU"
	ip -n "$GW1" link set h1 mtu "$VPN_MTU"
	ip -n "$GW2" link set h2 mtu "$VPN_MTU"
	ip -n "$GW1" link set tr0 mtu $((VPN_MTU + 100))
	ip -n "$GW2" link set tr0 mtu $((VPN_MTU + 100))
	ip -n "$H1" route add default via 10.81.1.1
	ip -n "$H1" -6 route add default via fd81:1::1
	ip -n "$H2" route add default via 10.81.2.1
	ip -n "$H2" -6 route add default via fd81:2::1
	# Resolve the neighbours now: the first IPv6 packet forwarded to a host
	# otherwise waits about a second for neighbour discovery.
	ip netns exec "$GW1" ping -6 -c 1 -W 2 fd81:1::2 >/dev/null
	ip netns exec "$GW2" ping -6 -c 1 -W 2 fd81:2::2 >/dev/null
	ip netns exec "$GW1" ping -c 1 -W 2 10.81.1.2 >/dev/null
	ip netns exec "$GW2" ping -c 1 -W 2 10.81.2.2 >/dev/null
	return 0
}

vpn_ns_down() {
	local n p
	for p in "${VPN_PID[@]+"${VPN_PID[@]}"}"; do
		kill -9 "$p" 2>/dev/null
	done
	for n in "${H1:-}" "${GW1:-}" "${GW2:-}" "${H2:-}"; do
		[ -n "$n" ] && ip netns del "$n" 2>/dev/null
	done
	return 0
}

# vpn_gw_config DIR N: gateway N's file (tunnel from its host's subnet to
# the other's), qkd off: the test gateway keys its SAs itself.
vpn_gw_config() {
	local dir=$1 n=$2 me peer lo re lo6 re6
	if [ "$n" = 1 ]; then me=10.81.0.1 peer=10.81.0.2 lo=10.81.1.0/24 re=10.81.2.0/24 lo6=fd81:1::/64 re6=fd81:2::/64
	else me=10.81.0.2 peer=10.81.0.1 lo=10.81.2.0/24 re=10.81.1.0/24 lo6=fd81:2::/64 re6=fd81:1::/64; fi
	printf 'a psk the test gateway never uses, 32 bytes or more\n' >"$dir/psk.key"
	cat >"$dir/gw$n.conf" <<EOF
gateway = { name = "gw$n"; listen = "$me:4500"; status = "gw$n.sock"; tun = "qkd0"; mtu = $VPN_MTU; log_level = "info"; };
tunnels = ( { name = "h1-h2"; peer = "$peer:4500"; remote_id = "peer"; psk = "psk.key";
  local_ts = [ "$lo", "$lo6" ]; remote_ts = [ "$re", "$re6" ];
  rekey = 600.0; lifetime_seconds = [ 600, 1200 ]; qkd = "off"; } );
EOF
}

vpn_gw_ready() {	# N OUT
	local ns
	if [ "$1" = 1 ]; then ns=$GW1; else ns=$GW2; fi
	grep -q '^ready$' "$2" && ip -n "$ns" link show qkd0 >/dev/null 2>&1
}

vpn_gw_start() {
	local n=$1 out=$2 ns i
	shift 2
	if [ "$n" = 1 ]; then ns=$GW1; else ns=$GW2; fi
	: >"$out"
	ip netns exec "$ns" "$@" >"$out" 2>"$out.err" &
	VPN_PID[n]=$!
	for i in $(seq 1 50); do
		vpn_gw_ready "$n" "$out" && break
		sleep 0.1
	done
	vpn_gw_ready "$n" "$out" || return 1
	# A deeper queue into the TUN device than its default 500 packets, so
	# that a burst of TCP is not dropped by the kernel before esp_gw reads.
	ip -n "$ns" link set qkd0 txqueuelen 4096
	if [ "$n" = 1 ]; then
		ip -n "$ns" route add 10.81.2.0/24 dev qkd0
		ip -n "$ns" -6 route add fd81:2::/64 dev qkd0
		ip -n "$ns" route add 10.81.3.0/24 dev qkd0
	else
		ip -n "$ns" route add 10.81.1.0/24 dev qkd0
		ip -n "$ns" -6 route add fd81:1::/64 dev qkd0
	fi
}

vpn_gw_stop() {
	local n=$1 p i
	p=${VPN_PID[$n]:-}
	[ -n "$p" ] || return 1
	kill -TERM "$p" 2>/dev/null
	for i in $(seq 1 50); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	local rc=$?
	VPN_PID[n]=
	return "$rc"
}
