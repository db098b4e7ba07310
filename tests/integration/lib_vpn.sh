# tests/integration/lib_vpn.sh - four network namespaces for the gateway
# tests and benchmarks (source it, do not run it): tests/integration/vpn.sh,
# vpn_qkd.sh, vpn_strongswan.sh, bench/vpn.sh.
#
#     h1 ---------- g1 ============ g2 ---------- h2
#   192.168.11.2   .11.1  10.99.0.1  10.99.0.2  .12.1   192.168.12.2
#   fd11::2      fd11::1                      fd12::1   fd12::2
#
# h1 and h2 are hosts whose traffic the gateways g1 and g2 carry through
# their tunnel; g1 and g2 reach each other over 10.99.0.0/24. Every
# address lives inside the namespaces this file creates; nothing touches
# the root namespace's interfaces or routes. Namespace and interface names
# carry VPN_ID (default: the sourcing script's pid), so runs never collide.
# (tests/integration/lib_swan.sh builds the same four for strongSwan.)
#
#   vpn_ns_up             create them (VPN_NS_H1 VPN_NS_G1 VPN_NS_G2 VPN_NS_H2),
#                         loopback up in each, forwarding on in g1 and g2;
#                         non-zero when this machine cannot (not root, no netns)
#   vpn_ns_down           remove them and everything in them (idempotent)
#   vpn_route_tun NS DEV  route the far hosts' subnets (IPv4 and IPv6) into
#                         DEV in gateway NS, with a queue of 4096 packets
#   vpn_exec NS CMD...    run CMD in namespace NS
#   vpn_ping FROM TO [N]  N (default 3) pings, 0.2 s apart, 1 s deadline each
#   vpn_bg NS NAME CMD... CMD in namespace NS, run from $D, stderr appended to
#                         $D/NAME.stderr; its pid appended to PIDS and in
#                         PID_NAME (dashes in NAME become underscores)
#   vpn_st SOCKET         `$QKD vpn status --json` of a gateway (5 s at most)
#   vpn_wait_st SOCKET FILTER SECONDS   until `jq -e FILTER` holds on it
#   vpn_cleanup           SIGTERM to PIDS, wait for them, vpn_ns_down: an
#                         EXIT hook for the gateway tests
#
# Interfaces: eth0 in the hosts; in0 (to the host) and out0 (to the other
# gateway, where ESP travels: capture there) in the gateways.
#
# Addresses, for the scripts: VPN_H1 VPN_H2 and VPN_H1_6 VPN_H2_6 (hosts),
# VPN_G1 VPN_G2 (the gateways' outer addresses), VPN_NET1 VPN_NET2 and
# VPN_NET1_6 VPN_NET2_6 (the host subnets). VPN_MTU (default 1400) is the
# hosts' links' MTU, the tunnel's; the link between the gateways gets 100
# bytes more for ESP, UDP and IP, so TCP never depends on PMTU discovery.

VPN_ID=${VPN_ID:-$$}
VPN_NS_H1="qv${VPN_ID}h1"
VPN_NS_G1="qv${VPN_ID}g1"
VPN_NS_G2="qv${VPN_ID}g2"
VPN_NS_H2="qv${VPN_ID}h2"
VPN_H1=192.168.11.2
VPN_H2=192.168.12.2
VPN_G1=10.99.0.1
VPN_G2=10.99.0.2
VPN_NET1=192.168.11.0/24
VPN_NET2=192.168.12.0/24
VPN_H1_6=fd11::2
VPN_H2_6=fd12::2
VPN_NET1_6=fd11::/64
VPN_NET2_6=fd12::/64
VPN_MTU=${VPN_MTU:-1400}

vpn_exec() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# vpn_link NS_A DEV_A ADDR_A NS_B DEV_B ADDR_B: a veth pair made inside the
# namespaces, so no interface name is ever taken in the root namespace.
vpn_link() {
	ip -n "$1" link add "$2" type veth peer name "$5" netns "$4" &&
		ip -n "$1" addr add "$3" dev "$2" && ip -n "$4" addr add "$6" dev "$5" &&
		ip -n "$1" link set "$2" up && ip -n "$4" link set "$5" up
}

vpn_ns_up() {
	local ns
	[ "$(id -u)" = 0 ] || return 1
	for ns in "$VPN_NS_H1" "$VPN_NS_G1" "$VPN_NS_G2" "$VPN_NS_H2"; do
		ip netns add "$ns" 2>/dev/null || { vpn_ns_down; return 1; }
		vpn_exec "$ns" ip link set lo up
	done
	vpn_link "$VPN_NS_H1" eth0 "$VPN_H1/24" "$VPN_NS_G1" in0 192.168.11.1/24 &&
		vpn_link "$VPN_NS_G1" out0 "$VPN_G1/24" "$VPN_NS_G2" out0 "$VPN_G2/24" &&
		vpn_link "$VPN_NS_G2" in0 192.168.12.1/24 "$VPN_NS_H2" eth0 "$VPN_H2/24" &&
		vpn_ns_six && vpn_ns_mtu || { vpn_ns_down; return 1; }
	vpn_exec "$VPN_NS_H1" ip route add default via 192.168.11.1 &&
		vpn_exec "$VPN_NS_H2" ip route add default via 192.168.12.1 || { vpn_ns_down; return 1; }
	# Resolve the neighbours now: the first packet forwarded to a host
	# would otherwise wait up to a second for ARP or neighbour discovery.
	vpn_exec "$VPN_NS_G1" ping -c 1 -W 2 "$VPN_H1" >/dev/null
	vpn_exec "$VPN_NS_G2" ping -c 1 -W 2 "$VPN_H2" >/dev/null
	vpn_exec "$VPN_NS_G1" ping -6 -c 1 -W 2 "$VPN_H1_6" >/dev/null
	vpn_exec "$VPN_NS_G2" ping -6 -c 1 -W 2 "$VPN_H2_6" >/dev/null
	return 0
}

# IPv6 on the hosts' links; forwarding in the gateways. No link-local
# address on devices made later (qkd0) and no all-routers group: the kernel
# then sends no router solicitation or MLD report into a tunnel (they would
# be NO_POLICY drops).
vpn_ns_six() {
	local ns
	for ns in "$VPN_NS_G1" "$VPN_NS_G2"; do
		vpn_exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
			net.ipv6.conf.default.addr_gen_mode=1 net.ipv6.conf.default.forwarding=0 || return 1
	done
	ip -n "$VPN_NS_H1" addr add "$VPN_H1_6/64" dev eth0 nodad &&
		ip -n "$VPN_NS_G1" addr add fd11::1/64 dev in0 nodad &&
		ip -n "$VPN_NS_G2" addr add fd12::1/64 dev in0 nodad &&
		ip -n "$VPN_NS_H2" addr add "$VPN_H2_6/64" dev eth0 nodad &&
		ip -n "$VPN_NS_H1" -6 route add default via fd11::1 &&
		ip -n "$VPN_NS_H2" -6 route add default via fd12::1
}

vpn_ns_mtu() {
	ip -n "$VPN_NS_H1" link set eth0 mtu "$VPN_MTU" &&
		ip -n "$VPN_NS_G1" link set in0 mtu "$VPN_MTU" &&
		ip -n "$VPN_NS_G2" link set in0 mtu "$VPN_MTU" &&
		ip -n "$VPN_NS_H2" link set eth0 mtu "$VPN_MTU" &&
		ip -n "$VPN_NS_G1" link set out0 mtu $((VPN_MTU + 100)) &&
		ip -n "$VPN_NS_G2" link set out0 mtu $((VPN_MTU + 100))
}

# Processes still in the namespaces get SIGTERM (a gateway deletes its
# SAs at the peer), 3 s, then SIGKILL.
vpn_ns_down() {
	local ns pids="" i
	for ns in "$VPN_NS_H1" "$VPN_NS_G1" "$VPN_NS_G2" "$VPN_NS_H2"; do
		ip netns list 2>/dev/null | grep -qw "$ns" && pids="$pids $(ip netns pids "$ns" 2>/dev/null)"
	done
	# shellcheck disable=SC2086  # a list of pids
	# (|| true: demo.sh runs with set -e, and a process may be gone already)
	if [ -n "${pids// /}" ]; then
		kill -TERM $pids 2>/dev/null || true
		for i in $(seq 1 30); do kill -0 $pids 2>/dev/null || break; sleep 0.1; done
		kill -9 $pids 2>/dev/null || true
	fi
	for ns in "$VPN_NS_H1" "$VPN_NS_G1" "$VPN_NS_G2" "$VPN_NS_H2"; do
		ip netns del "$ns" 2>/dev/null || true
	done
	return 0
}

vpn_route_tun() {
	local far=$VPN_NET2 far6=$VPN_NET2_6
	[ "$1" = "$VPN_NS_G2" ] && far=$VPN_NET1 far6=$VPN_NET1_6
	vpn_exec "$1" ip link set "$2" txqueuelen 4096 &&
		vpn_exec "$1" ip route replace "$far" dev "$2" &&
		vpn_exec "$1" ip -6 route replace "$far6" dev "$2"
}

vpn_ping() {
	vpn_exec "$1" ping -q -n -c "${3:-3}" -i 0.2 -W 1 "$2" >/dev/null 2>&1
}

vpn_bg() {
	local ns=$1 name=$2
	shift 2
	(cd "$D" && exec ip netns exec "$ns" "$@" 2>>"$D/$name.stderr") &
	PIDS+=("$!")
	eval "PID_${name//-/_}=$!"
}

vpn_st() { timeout 5 "$QKD" vpn status --socket "$1" --json 2>/dev/null; }

vpn_wait_st() {
	local i
	for i in $(seq 1 $(($3 * 10))); do
		vpn_st "$1" | jq -e "$2" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

vpn_cleanup() {
	local p
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]+"${PIDS[@]}"}"; do { wait "$p"; } 2>/dev/null; done
	vpn_ns_down
}
