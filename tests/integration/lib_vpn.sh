# tests/integration/lib_vpn.sh - four network namespaces for the gateway
# tests and benchmarks (source it, do not run it): tests/integration/vpn.sh,
# vpn_qkd.sh, vpn_strongswan.sh, bench/vpn.sh.
#
#     h1 ---------- g1 ============ g2 ---------- h2
#   192.168.11.2   .11.1  10.99.0.1  10.99.0.2  .12.1   192.168.12.2
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
#   vpn_route_tun NS DEV  route the far hosts' subnet into DEV in gateway NS
#   vpn_exec NS CMD...    run CMD in namespace NS
#   vpn_ping FROM TO [N]  N (default 3) pings, 0.2 s apart, 1 s deadline each
#
# Interfaces: eth0 in the hosts; in0 (to the host) and out0 (to the other
# gateway, where ESP travels: capture there) in the gateways.
#
# Addresses, for the scripts: VPN_H1 VPN_H2 (hosts), VPN_G1 VPN_G2 (the
# gateways' outer addresses), VPN_NET1 VPN_NET2 (the host subnets).

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
		vpn_link "$VPN_NS_G2" in0 192.168.12.1/24 "$VPN_NS_H2" eth0 "$VPN_H2/24" ||
		{ vpn_ns_down; return 1; }
	vpn_exec "$VPN_NS_H1" ip route add default via 192.168.11.1 &&
		vpn_exec "$VPN_NS_H2" ip route add default via 192.168.12.1 &&
		vpn_exec "$VPN_NS_G1" sysctl -qw net.ipv4.ip_forward=1 &&
		vpn_exec "$VPN_NS_G2" sysctl -qw net.ipv4.ip_forward=1 || { vpn_ns_down; return 1; }
}

# Processes still in the namespaces get SIGTERM (a gateway deletes its
# SAs at the peer), 3 s, then SIGKILL.
vpn_ns_down() {
	local ns pids="" i
	for ns in "$VPN_NS_H1" "$VPN_NS_G1" "$VPN_NS_G2" "$VPN_NS_H2"; do
		ip netns list 2>/dev/null | grep -qw "$ns" && pids="$pids $(ip netns pids "$ns" 2>/dev/null)"
	done
	# shellcheck disable=SC2086  # a list of pids
	if [ -n "${pids// /}" ]; then
		kill -TERM $pids 2>/dev/null
		for i in $(seq 1 30); do kill -0 $pids 2>/dev/null || break; sleep 0.1; done
		kill -9 $pids 2>/dev/null
	fi
	for ns in "$VPN_NS_H1" "$VPN_NS_G1" "$VPN_NS_G2" "$VPN_NS_H2"; do
		ip netns del "$ns" 2>/dev/null
	done
	return 0
}

vpn_route_tun() {
	local far=$VPN_NET2
	[ "$1" = "$VPN_NS_G2" ] && far=$VPN_NET1
	vpn_exec "$1" ip route replace "$far" dev "$2"
}

vpn_ping() {
	vpn_exec "$1" ping -q -n -c "${3:-3}" -i 0.2 -W 1 "$2" >/dev/null 2>&1
}
