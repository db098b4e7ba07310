#!/usr/bin/env bash
# demo.sh up|down|clean - the example VPN of examples/vpn/README.md on one
# machine, as root: four network namespaces (host 1, gateway A, gateway B,
# host 2; tests/integration/lib_vpn.sh draws them), a QKD node with its key
# manager in each gateway's namespace (node-a.conf, node-b.conf), and the
# two gateways (gw-a.conf, gw-b.conf).
#
#   up      make the keys (run/), the namespaces, start both nodes and both
#           gateways, route the host subnets into qkd0, wait for the tunnel
#   down    stop everything and remove the namespaces (run/ stays: logs)
#   clean   down, then remove run/
#
# Run from anywhere; QKD (default: build/qkd of this checkout) is the
# executable. Namespaces: qvdemoh1 qvdemog1 qvdemog2 qvdemoh2.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
QKD=${QKD:-$ROOT/build/qkd}
VPN_ID=demo
# shellcheck source=tests/integration/lib_vpn.sh
. "$ROOT/tests/integration/lib_vpn.sh"
RUN=$HERE/run

bg_in() {		# bg_in NS LOG CMD...: CMD in namespace NS, detached, in $HERE
	local ns=$1 log=$2
	shift 2
	(cd "$HERE" && exec setsid ip netns exec "$ns" "$@") </dev/null >>"$log" 2>&1 &
}

wait_for() {		# wait_for SECONDS CMD...: until CMD succeeds
	local n=$(($1 * 5))
	shift
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || return 1
		sleep 0.2
	done
}

tunnel_up() {
	"$QKD" vpn status --socket "$RUN/gw-a.sock" --json |
		jq -e '.tunnels[0].state == "established"'
}

up() {
	[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (network namespaces)" >&2; exit 1; }
	[ -x "$QKD" ] || { echo "demo.sh: $QKD not found: run make build first" >&2; exit 1; }
	mkdir -p "$RUN"
	[ -f "$RUN/pki/ca.pem" ] || sh "$ROOT/examples/make-test-pki.sh" "$RUN/pki" SAE_A SAE_B
	[ -f "$RUN/ab.key" ] || sh "$ROOT/examples/make-auth-key.sh" "$RUN/ab.key"
	[ -f "$RUN/a-b.psk" ] || (umask 077 && head -c 48 /dev/urandom >"$RUN/a-b.psk")
	vpn_ns_up || { echo "demo.sh: cannot make the namespaces (already up? try down)" >&2; exit 1; }
	bg_in "$VPN_NS_G1" "$RUN/node-a.stderr" "$QKD" node --config node-a.conf
	bg_in "$VPN_NS_G2" "$RUN/node-b.stderr" "$QKD" node --config node-b.conf
	bg_in "$VPN_NS_G2" "$RUN/gw-b.stderr" "$QKD" vpn --config gw-b.conf
	bg_in "$VPN_NS_G1" "$RUN/gw-a.stderr" "$QKD" vpn --config gw-a.conf
	wait_for 10 vpn_exec "$VPN_NS_G1" ip link show qkd0 &&
		wait_for 10 vpn_exec "$VPN_NS_G2" ip link show qkd0 ||
		{ echo "demo.sh: a gateway did not start: see $RUN/gw-*.stderr" >&2; exit 1; }
	vpn_route_tun "$VPN_NS_G1" qkd0
	vpn_route_tun "$VPN_NS_G2" qkd0
	echo "waiting for the tunnel (the nodes need a few seconds for their first key)..."
	wait_for 60 tunnel_up || { echo "demo.sh: no tunnel after 60 s: see $RUN/*.log" >&2; exit 1; }
	"$QKD" vpn status --socket "$RUN/gw-a.sock"
	cat <<EOF

The tunnel is up. Try:
  ip netns exec $VPN_NS_H1 ping -c 3 $VPN_H2
  $QKD vpn status --socket $RUN/gw-a.sock
  ip netns exec $VPN_NS_G1 curl -s http://127.0.0.1:9400/metrics
  $QKD status --node $RUN/node-a.sock
Stop with: $0 down
EOF
}

case ${1:-} in
up) up ;;
down) vpn_ns_down; rm -f "$RUN"/*.sock ;;
clean) vpn_ns_down; rm -rf "$RUN" ;;
*) echo "usage: $0 up|down|clean" >&2; exit 2 ;;
esac
