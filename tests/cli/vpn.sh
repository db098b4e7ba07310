#!/usr/bin/env bash
# tests/cli/vpn.sh - `qkd vpn`'s command line (docs/vpn.md, docs/qkd.1)
# without starting a gateway: usage, --check on the example pair, every
# refusal of an option or a configuration with its message and exit status
# (2 for the command line and the file, 1 for what fails at run time), and
# `qkd vpn status` against a socket nobody answers on. The daemon itself
# is tests/integration/vpn.sh (root, network namespaces).
# Usage (from the top of the tree): QKD=build/qkd tests/cli/vpn.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

QKD=${QKD:-build/qkd}
QKD=$(cd "$(dirname "$QKD")" && pwd)/$(basename "$QKD")
EX=$(cd "$(dirname "$0")/../../examples" && pwd)
T=$CLI_TMP

check "qkd vpn --help" "$QKD" vpn --help
check_match "... shows the daemon" "$OUT" "usage: qkd vpn --config FILE"
check_match "... and the status" "$OUT" "qkd vpn status --socket PATH"
check "qkd vpn status --help" "$QKD" vpn status --help
check_exit "no --config" 2 "$QKD" vpn
check_match "... says it is required" "$ERR" "^qkd: vpn: --config FILE is required$"
check_exit "an unknown option" 2 "$QKD" vpn --config x.conf --bogus
check_match "... names it" "$ERR" "unknown argument '--bogus'"
check_exit "--keylog without a file" 2 "$QKD" vpn --config x.conf --keylog
check_exit "a configuration that does not exist" 2 "$QKD" vpn --config "$T/none.conf"
check_match "... names the file" "$ERR" "^qkd: $T/none.conf"

# The example pair, with the files demo.sh would make.
mkdir -p "$T/ex/run"
cp "$EX"/vpn/gw-a.conf "$EX"/vpn/gw-b.conf "$T/ex/"
sh "$EX/make-test-pki.sh" "$T/ex/run/pki" SAE_A SAE_B >/dev/null
head -c 48 /dev/urandom >"$T/ex/run/a-b.psk"
check "--check: examples/vpn/gw-a.conf" "$QKD" vpn --config "$T/ex/gw-a.conf" --check
check_match "... one line" "$OUT" "gw-a.conf: gateway gw-a: 1 tunnel\(s\), 1 key manager\(s\)$"
check "--check: examples/vpn/gw-b.conf" "$QKD" vpn --config "$T/ex/gw-b.conf" --check

# Refusals with the file's line.
bad() {	# bad NAME SED_EXPRESSION REGEX: gw-a.conf edited is refused with REGEX
	sed -e "$2" "$T/ex/gw-a.conf" >"$T/ex/bad.conf"
	check_exit "$1" 2 "$QKD" vpn --config "$T/ex/bad.conf" --check
	check_match "... $1: the reason" "$ERR" "$3"
}
bad "a PSK file shorter than 32 bytes" 's|psk = "run/a-b.psk"|psk = "short.psk"|' "psk"
printf 'short' >"$T/ex/short.psk"
bad "a prefix with host bits" 's|"192.168.11.0/24"|"192.168.11.1/24"|' "bad.conf:[0-9]+:.*host bits"
bad "an unknown qkd policy" 's|qkd = "required"|qkd = "maybe"|' "bad.conf:[0-9]+:.*qkd"
bad "an unknown key manager" 's|kme = "kme-a";|kme = "kme-x";|' "bad.conf:[0-9]+:.*kme"
bad "a ppk_lead over 60 s" 's|key_wait = 300.0;|key_wait = 300.0; ppk_lead = 61.0;|' "bad.conf:[0-9]+:.*ppk_lead"
bad "a dpd of 0" 's|key_wait = 300.0;|key_wait = 300.0; dpd = 0.0;|' "bad.conf:[0-9]+:.*dpd"
bad "the peer is the gateway itself" 's|peer = "10.99.0.2:4500"|peer = "10.99.0.1:4500"|' "own listen address"

check_exit "status without --socket" 2 "$QKD" vpn status
check_match "... says it is required" "$ERR" "^qkd: vpn status: --socket PATH is required$"
check_exit "status of a socket nobody answers on" 1 "$QKD" vpn status --socket "$T/none.sock"
check_match "... speaks of the gateway" "$ERR" "cannot reach the gateway"
finish
