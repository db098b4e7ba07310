#!/usr/bin/env bash
# tests/integration/tun.sh - the gateway's TUN path (qkd/tun.h,
# lib/vpn/tun_linux.c; issue 14's data plane reads and writes whole IP
# packets there): in a network namespace this test makes and removes
# itself, tests/tools/tun_echo opens a TUN device with the library and
# answers the pings the kernel routes into it, IPv4 and IPv6, up to a
# packet of the full MTU; a packet over the MTU is refused by the kernel.
# Also the library's refusals (a bad name, an MTU out of range).
# Needs root (CAP_NET_ADMIN, ip netns). Usage: QKD=build/qkd tests/integration/tun.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/../cli/lib.sh"

QKD=${QKD:-build/qkd}
ECHO=${TUN_ECHO:-$(dirname "$QKD")/tests/tools/tun_echo}
NS=qkd-tun-$$
PIDS=()
cli_cleanup_hook() { ip netns del "$NS" 2>/dev/null; }

check "the test namespace $NS is made" ip netns add "$NS"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up

in_ns "$ECHO" qtun0 1400 7 30 >"$CLI_TMP/echo.out" 2>"$CLI_TMP/echo.err" &
PIDS+=("$!")
ECHO_PID=$!
ready() { grep -q '^ready qtun0$' "$CLI_TMP/echo.out"; }
wait_ready() { local i; for i in $(seq 1 50); do ready && return 0; sleep 0.1; done; return 1; }
check "tun_echo opened qtun0 through qkd_tun_open_linux" wait_ready
check "qtun0 is up with MTU 1400" sh -c "ip netns exec $NS ip -o link show qtun0 | grep -q 'mtu 1400.*state UNKNOWN\\|mtu 1400.*UP'"
in_ns ip addr add 10.77.0.1/24 dev qtun0
in_ns ip -6 addr add fd77::1/64 dev qtun0 nodad

check "IPv4: 3 pings through the TUN path, 3 replies" \
	sh -c "ip netns exec $NS ping -c 3 -W 2 -i 0.2 10.77.0.2 | grep -q ' 3 received'"
check "IPv6: 3 pings, 3 replies" \
	sh -c "ip netns exec $NS ping -6 -c 3 -W 2 -i 0.2 fd77::2 | grep -q ' 3 received'"
check "a packet of the full MTU (1400 bytes, DF) crosses both ways" \
	sh -c "ip netns exec $NS ping -c 1 -W 2 -M do -s 1372 10.77.0.2 | grep -q ' 1 received'"
check_exit "one byte over the MTU is refused by the kernel" 1 \
	sh -c "ip netns exec $NS ping -c 1 -W 1 -M do -s 1373 10.77.0.2 >/dev/null 2>&1 || { echo 'qkd: ping refused' >&2; exit 1; }"
wait "$ECHO_PID"
check_eq "tun_echo answered all 7 and exited 0" "$? $(grep -o 'answered [0-9]*' "$CLI_TMP/echo.out")" "0 answered 7"

check_exit "a device name of 16 characters is refused" 1 in_ns "$ECHO" qtun-name-too-long 1400 1 1
check_match "... with the reason" "$ERR" "^qkd: tun qtun-name-too-long: a device name of at most 15 characters"
check_exit "a name with a slash is refused" 1 in_ns "$ECHO" "q/tun" 1400 1 1
check_exit "an MTU of 575 is refused" 1 in_ns "$ECHO" qtun1 575 1 1
check_match "... with the reason" "$ERR" "an MTU of 576 .. 65535 bytes"
check "no device is left behind by the refusals" \
	sh -c "! ip netns exec $NS ip link show qtun1 >/dev/null 2>&1"
finish
