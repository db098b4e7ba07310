# shellcheck shell=bash
# tests/integration/lib_swan.sh - strongSwan gateways in network namespaces,
# the peers of `qkd vpn`'s interop tests and benchmark (issue 14 item 7,
# docs/vpn.md "Interoperability with strongSwan"). Source it, do not run it;
# it needs root (ip netns) and Debian's charon-systemd, strongswan-swanctl
# and libcharon-extra-plugins (kernel-libipsec: this kernel has no ESP, so
# ESP is done in charon's userspace and reaches the kernel through a TUN
# device, ipsec0, in each gateway's namespace).
#
# The topology is lib_vpn.sh's (sourced here): four namespaces named with
# the caller's $$ so that several runs can coexist, addresses only inside
# them:
#
#   h1 192.168.11.2 --- 192.168.11.1 gw1 10.99.0.1 --- 10.99.0.2 gw2 192.168.12.1 --- 192.168.12.2 h2
#
#   swan_net_up             vpn_ns_up: the namespaces, veth pairs, addresses
#                           and the hosts' default routes; SWAN_NS_H1,
#                           SWAN_NS_GW1, SWAN_NS_GW2, SWAN_NS_H2 and the
#                           SWAN_* addresses below
#   swan_net_down           stop every charon started here and delete the
#                           namespaces (idempotent: call it from an EXIT trap)
#   swan_conf NAME KEY=VALUE...
#                           write the strongswan.conf and swanctl.conf of the
#                           instance NAME into $SWAN_DIR/NAME/ (see swan_conf's
#                           comment for the keys)
#   swan_start NAME NS [CPU]
#                           charon-systemd of instance NAME in namespace NS
#                           (pinned to CPU with taskset if given),
#                           its own vici socket, log and config; waits at most
#                           10 s for the vici socket, then loads the config
#                           and, if it initiates, initiates (at most 10 s)
#   swan_ctl NAME ARGS...   swanctl ARGS against instance NAME
#   swan_ppk NAME KEY_ID KEY
#                           load a new QKD key as the PPK of a running
#                           instance (credentials and connection)
#   swan_wait_sa NAME CHILD [SECONDS]
#                           bounded poll (default 15 s) of --list-sas until
#                           CHILD is INSTALLED; 0 if it came, 1 if not
#   swan_stop NAME          SIGTERM, at most 5 s, then SIGKILL
#   swan_log NAME           the instance's charon log file
#   swan_pid NAME           its charon's pid (empty once stopped)
#   swan_tshark_ike NAME PCAP TSHARK_ARGS...
#                           tshark -r PCAP decrypting the first IKE SA of
#                           the capture with the keys instance NAME logged
#                           (it needs ike_log=4)
#
# The caller sets SWAN_DIR (a scratch directory it removes) before
# swan_conf. charon-systemd writes no pid file and, with the
# strongswan.conf written here, touches nothing outside SWAN_DIR and its
# namespace: the plugins loaded are listed (no stroke socket, no
# /etc/ipsec.secrets, no resolv.conf, no journal logging) and the vici
# socket is a file under SWAN_DIR.

# The namespaces and addresses are lib_vpn.sh's, so `qkd vpn` and charon
# meet in the same four namespaces.
# shellcheck source=tests/integration/lib_vpn.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib_vpn.sh"
# shellcheck disable=SC2034  # the addresses are for the sourcing scripts
SWAN_H1=$VPN_H1
SWAN_GW1_IN=192.168.11.1
SWAN_GW1=$VPN_G1
SWAN_GW2=$VPN_G2
SWAN_GW2_IN=192.168.12.1
SWAN_H2=$VPN_H2
SWAN_NET1=$VPN_NET1
SWAN_NET2=$VPN_NET2
SWAN_NS_H1=$VPN_NS_H1
SWAN_NS_GW1=$VPN_NS_G1
SWAN_NS_GW2=$VPN_NS_G2
SWAN_NS_H2=$VPN_NS_H2
SWAN_CHARON=${SWAN_CHARON:-/usr/sbin/charon-systemd}
# The names of the instances started, for swan_net_down.
SWAN_STARTED=()

swan_net_up() { vpn_ns_up; }

swan_net_down() {
	local n
	for n in "${SWAN_STARTED[@]+"${SWAN_STARTED[@]}"}"; do swan_stop "$n"; done
	SWAN_STARTED=()
	vpn_ns_down
}

swan_log() { echo "$SWAN_DIR/$1/charon.log"; }
swan_pid() { eval "echo \${SWAN_PID_$1:-}"; }

swan_ctl() {
	local n=$1
	shift
	STRONGSWAN_CONF="$SWAN_DIR/$n/strongswan.conf" \
		swanctl "$@" --uri "unix://$SWAN_DIR/$n/charon.vici"
}

# swan_conf NAME KEY=VALUE...: the configuration of instance NAME.
#   local= remote=          the gateways' outer addresses (IKE and ESP, UDP 4500)
#   local_ts= remote_ts=    the protected subnets
#   local_id= remote_id=    IKE identities: "gw1.qkd.test" goes out as
#                           ID_FQDN, "keyid:gw1" as ID_KEY_ID with the
#                           bytes "gw1" ("@#0a0b" for the bytes in hex)
#   psk=                    the pre-shared key, hex
#   ppk_id= ppk=            the PPK's identity (an ETSI 014 key_ID) and its
#                           bytes in hex, or "0s" and base64 (an ETSI 014
#                           key as served); ppk_id empty = no PPK
#   ppk_required=yes|no     (default yes) no: fall back to no PPK
#   ppk_any=yes|no          (default no) yes: the connection names no
#                           ppk_id, so as a responder it takes any PPK_ID
#                           whose PPK it holds (a 5.9.8 responder with a
#                           ppk_id refuses every other PPK_ID); ppk_id= then
#                           only names the secret
#   initiate=yes|no         (default no) yes: swan_start initiates the
#                           CHILD "net" (and its IKE SA) once loaded. Not a
#                           start_action: with one, reloading a changed
#                           connection (a new ppk_id) would initiate again
#   dh=x25519|modp2048      (default x25519) the IKE and the PFS group
#   pfs=yes|no              (default yes) a DH in CREATE_CHILD_SA
#   rekey=SECONDS           IKE rekey_time (default 0: none)
#   reauth=SECONDS          IKE reauth_time (default 0: none)
#   child_rekey=SECONDS     CHILD rekey_time (default 0: none)
#   log=N                   charon's log level for ike/cfg/enc/chd/knl/esp
#                           (default 2)
#   ike_log=N               the ike level alone (default: log); 4 logs the
#                           IKE SA keys, for swan_tshark_ike
# The connection is "qkd", its CHILD "net".
swan_conf() {
	local n=$1 kv d
	shift
	local -A c=([ppk_required]=yes [initiate]=no [dh]=x25519 [pfs]=yes [rekey]=0
		[reauth]=0 [child_rekey]=0 [ppk_id]="" [ppk]="" [ppk_any]=no [log]=2 [ike_log]="")
	for kv in "$@"; do c[${kv%%=*}]=${kv#*=}; done
	for kv in local remote local_ts remote_ts local_id remote_id psk; do
		[ -n "${c[$kv]:-}" ] || { echo "swan_conf $n: $kv= is missing" >&2; return 1; }
	done
	d=$SWAN_DIR/$n
	mkdir -p "$d" || return 1
	swan_conf_strongswan "$d" "${c[log]}" "${c[ike_log]:-${c[log]}}" \
		>"$d/strongswan.conf" || return 1
	{
		echo "connections { qkd {"
		echo "  version = 2"
		echo "  local_addrs = ${c[local]}"
		echo "  remote_addrs = ${c[remote]}"
		echo "  local_port = 4500"
		echo "  remote_port = 4500"
		echo "  encap = yes"
		echo "  mobike = no"
		echo "  proposals = aes256gcm16-prfsha256-${c[dh]}"
		echo "  rekey_time = ${c[rekey]}"
		echo "  reauth_time = ${c[reauth]}"
		if [ -n "${c[ppk_id]}" ]; then
			[ "${c[ppk_any]}" = yes ] || echo "  ppk_id = ${c[ppk_id]}"
			echo "  ppk_required = ${c[ppk_required]}"
		fi
		printf '  local {\n    auth = psk\n    id = %s\n  }\n' "${c[local_id]}"
		printf '  remote {\n    auth = psk\n    id = %s\n  }\n' "${c[remote_id]}"
		echo "  children { net {"
		echo "    local_ts = ${c[local_ts]}"
		echo "    remote_ts = ${c[remote_ts]}"
		if [ "${c[pfs]}" = yes ]; then
			echo "    esp_proposals = aes256gcm16-${c[dh]}"
		else
			echo "    esp_proposals = aes256gcm16"
		fi
		echo "    rekey_time = ${c[child_rekey]}"
		echo "  } }"
		echo "} }"
		echo "secrets {"
		printf '  ike-1 {\n    id-a = %s\n    id-b = %s\n    secret = 0x%s\n  }\n' \
			"${c[local_id]}" "${c[remote_id]}" "${c[psk]}"
		kv=0x${c[ppk]}
		[ "${c[ppk]#0s}" != "${c[ppk]}" ] && kv=${c[ppk]}
		[ -n "${c[ppk_id]}" ] && printf '  ppk-1 {\n    id = %s\n    secret = %s\n  }\n' \
			"${c[ppk_id]}" "$kv"
		echo "}"
	} >"$d/swanctl.conf"
	echo "${c[initiate]}" >"$d/initiate"
	printf '%s\n' "$@" >"$d/args"
}

# swan_ppk NAME KEY_ID KEY: a new QKD key as instance NAME's PPK, in a
# running charon: its configuration rewritten with the arguments swan_conf
# had, ppk_id=KEY_ID and ppk=KEY (hex, or 0s and base64), then
# swanctl --load-creds --clear (the old PPK is unloaded) and --load-conns
# (the connection's new ppk_id; IKE SAs made before keep the old). Output
# of swanctl in $SWAN_DIR/NAME/ppk.out.
swan_ppk() {
	local n=$1 d=$SWAN_DIR/$1 args=()
	mapfile -t args <"$d/args" || return 1
	swan_conf "$n" "${args[@]}" ppk_id="$2" ppk="$3" || return 1
	swan_ctl "$n" --load-creds --clear --file "$d/swanctl.conf" >"$d/ppk.out" 2>&1 &&
	swan_ctl "$n" --load-conns --file "$d/swanctl.conf" >>"$d/ppk.out" 2>&1
}

# swan_conf_strongswan DIR LEVEL IKE_LEVEL: the instance's strongswan.conf
# on stdout.
# Only the plugins the tests need are loaded (load_modular would read
# /etc/strongswan.d); kernel-libipsec does ESP in userspace through the
# TUN device ipsec0. port = 0 gives IKE on UDP 500 a random port, so every
# IKE message and ESP packet goes through the NAT-T socket, port_nat_t =
# 4500, with the non-ESP marker (RFC 3948 section 2.2), as `qkd vpn` does.
# Short retransmission so a lost peer fails within the tests' waits;
# make_before_break: a re-authentication builds the new IKE and CHILD SAs
# before it deletes the old ones, as `qkd vpn` rekeys.
swan_conf_strongswan() {
	cat <<EOC
charon-systemd {
  load = random nonce openssl gcm aes sha1 sha2 hmac kdf pem pkcs1 x509 gmp kernel-libipsec kernel-netlink socket-default vici
  port = 0
  port_nat_t = 4500
  retransmit_timeout = 1.0
  retransmit_base = 1.4
  retransmit_tries = 3
  install_virtual_ip = no
  make_before_break = yes
  plugins {
    vici {
      socket = unix://$1/charon.vici
    }
    kernel-libipsec {
      allow_peer_ts = yes
    }
  }
  journal {
    default = -1
  }
  filelog {
    swan {
      path = $1/charon.log
      time_format = %T
      ike_name = yes
      flush_line = yes
      default = 1
      ike = $3
      cfg = $2
      enc = $2
      chd = $2
      knl = $2
      esp = $2
    }
  }
}
swanctl {
  load = random nonce openssl pem pkcs1 x509
  socket = unix://$1/charon.vici
}
EOC
}

# swan_start NAME NS [CPU]: charon of instance NAME in namespace NS (all
# its threads on CPU if given, with taskset), then its swanctl.conf loaded.
# The charon's pid in SWAN_PID_NAME.
swan_start() {
	local n=$1 ns=$2 d=$SWAN_DIR/$1 i
	rm -f "$d/charon.vici"
	local pin=()
	[ -n "${3:-}" ] && pin=(taskset -c "$3")
	STRONGSWAN_CONF=$d/strongswan.conf "${pin[@]}" ip netns exec "$ns" "$SWAN_CHARON" \
		>"$d/charon.out" 2>&1 &
	eval "SWAN_PID_$n=$!"
	SWAN_STARTED+=("$n")
	for i in $(seq 1 100); do
		[ -S "$d/charon.vici" ] && break
		sleep 0.1
	done
	[ -S "$d/charon.vici" ] || return 1
	swan_ctl "$n" --load-all --file "$d/swanctl.conf" >"$d/load.out" 2>&1 || return 1
	[ "$(cat "$d/initiate")" = yes ] || return 0
	swan_ctl "$n" --initiate --child net --timeout 10 >"$d/initiate.out" 2>&1
}

swan_wait_sa() {
	local n=$1 child=$2 max=${3:-15} i
	for i in $(seq 1 $((max * 5))); do
		swan_ctl "$n" --list-sas 2>/dev/null | grep -Eq "^  $child: .*INSTALLED" && return 0
		sleep 0.2
	done
	return 1
}

swan_stop() {
	local pid
	eval "pid=\${SWAN_PID_$1:-}"
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 25); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	eval "SWAN_PID_$1="
	return 0
}

# swan_sk NAME KEY: the hex of the first "KEY secret => N bytes" dump in
# NAME's log (Sk_ei, Sk_er: logged at ike level 4).
swan_sk() {
	awk -v k="$2 secret =>" '
		index($0, k) { n = $0; sub(/.*=> /, "", n); n = n + 0; on = 1; next }
		on {
			line = $0; sub(/.*> +[0-9]+: /, "", line)
			for (i = 1; i <= 16 && got < n; i++) {
				b = substr(line, 3 * i - 2, 2); if (b !~ /^[0-9A-F][0-9A-F]$/) break
				out = out tolower(b); got++
			}
			if (got >= n) { print out; exit }
		}' "$(swan_log "$1")"
}

swan_tshark_ike() {
	local n=$1 pcap=$2 spis ei er
	shift 2
	spis=$(tshark -r "$pcap" -Y 'isakmp.exchangetype == 35' -T fields \
		-e isakmp.ispi -e isakmp.rspi 2>/dev/null | head -n1)
	ei=$(swan_sk "$n" Sk_ei)
	er=$(swan_sk "$n" Sk_er)
	# The IKEv2 decryption table of Wireshark: SPIs, SK_ei, SK_er, the
	# cipher, SK_ai, SK_ar (none with an AEAD), the integrity algorithm.
	tshark -r "$pcap" -o "uat:ikev2_decryption_table:${spis%%$'\t'*},${spis##*$'\t'},$ei,$er,\"AES-GCM-256 with 16 octet ICV [RFC5282]\",,,\"NONE [RFC4306]\"" "$@"
}
