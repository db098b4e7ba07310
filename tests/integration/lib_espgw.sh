# tests/integration/lib_espgw.sh - the test gateway tests/tools/esp_gw (the
# data plane with one static SA pair per tunnel, test-only manual keying) in
# the four namespaces of lib_vpn.sh, which it sources: for
# tests/integration/vpn_dataplane.sh and bench/vpn_tun.sh. Root only.
#
#   vpn_gw_config DIR N   write DIR/gwN.conf (and the PSK file it names):
#                         gateway N (1 in g1, 2 in g2), a tunnel between
#                         the hosts' subnets, IPv4 and IPv6, qkd off
#   vpn_gw_start N OUT ARGS...   esp_gw (ARGS) in gN, stdout to OUT, stderr
#                         OUT.err; waits (5 s at most) for "ready" and the
#                         device, then routes the far subnets into qkd0 (and,
#                         in g1, VPN_UNCOVERED, a subnet no tunnel covers)
#   vpn_gw_stop N         SIGTERM, wait (5 s at most) for its JSON
#   VPN_K1 VPN_K2         two AES-256-GCM KEYMATs (key and salt); VPN_PID[N]
#                         the gateways' pids

# shellcheck source=tests/integration/lib_vpn.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib_vpn.sh"

# shellcheck disable=SC2034
VPN_K1=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1fa0a1a2a3
# shellcheck disable=SC2034
VPN_K2=f0f1f2f3f4f5f6f7f8f9fafbfcfdfeffe0e1e2e3e4e5e6e7e8e9eaebecedeeefb0b1b2b3
VPN_UNCOVERED=192.168.13.0/24
declare -a VPN_PID=()

# vpn_gw_config DIR N: gateway N's file (tunnel from its host's subnet to
# the other's), qkd off: the test gateway keys its SAs itself.
vpn_gw_config() {
	local dir=$1 n=$2 me peer lo re lo6 re6
	if [ "$n" = 1 ]; then me=$VPN_G1 peer=$VPN_G2 lo=$VPN_NET1 re=$VPN_NET2 lo6=$VPN_NET1_6 re6=$VPN_NET2_6
	else me=$VPN_G2 peer=$VPN_G1 lo=$VPN_NET2 re=$VPN_NET1 lo6=$VPN_NET2_6 re6=$VPN_NET1_6; fi
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
	if [ "$1" = 1 ]; then ns=$VPN_NS_G1; else ns=$VPN_NS_G2; fi
	grep -q '^ready$' "$2" && ip -n "$ns" link show qkd0 >/dev/null 2>&1
}

vpn_gw_start() {
	local n=$1 out=$2 ns i
	shift 2
	if [ "$n" = 1 ]; then ns=$VPN_NS_G1; else ns=$VPN_NS_G2; fi
	: >"$out"
	ip netns exec "$ns" "$@" >"$out" 2>"$out.err" &
	VPN_PID[n]=$!
	for i in $(seq 1 50); do
		vpn_gw_ready "$n" "$out" && break
		sleep 0.1
	done
	vpn_gw_ready "$n" "$out" || return 1
	vpn_route_tun "$ns" qkd0 || return 1
	# A subnet no tunnel covers, routed into the device (NO_POLICY).
	[ "$n" = 1 ] && ip -n "$ns" route add "$VPN_UNCOVERED" dev qkd0
	return 0
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
