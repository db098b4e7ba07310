#!/bin/sh
# make-test-pki.sh DIR [SAE_ID...] - a throw-away PKI for the key manager's
# HTTPS interface (docs/kme.md, "Test PKI"), written with openssl into DIR:
#
#   ca.pem, ca.key            a test CA (ECDSA P-256, 1 year)
#   server.pem, server.key    the KME's certificate: CN localhost,
#                             subjectAltName IP:127.0.0.1, IP:::1 and
#                             DNS:localhost (and $PKI_SERVER_SAN, e.g.
#                             "IP:10.0.0.1", when set), extendedKeyUsage
#                             serverAuth
#   SAE_ID.pem, SAE_ID.key    one client certificate per SAE (default SAE_A
#                             and SAE_B): CN = the SAE ID,
#                             extendedKeyUsage clientAuth
#
# Private keys are mode 0600. For tests and examples only: the CA key sits
# next to everything it signed. DIR is created if needed; files already in
# it are replaced.
set -eu
if [ $# -lt 1 ]; then
	echo "usage: $0 DIR [SAE_ID...]" >&2
	exit 2
fi
dir=$1
shift
[ $# -gt 0 ] || set -- SAE_A SAE_B
for id in "$@"; do
	case $id in
	''|*[!A-Za-z0-9._~-]*) echo "$0: bad SAE ID '$id' (use [A-Za-z0-9._~-])" >&2; exit 2 ;;
	esac
done
command -v openssl >/dev/null || { echo "$0: openssl is not installed" >&2; exit 1; }
mkdir -p "$dir"
umask 077
days=365

# newkey NAME: an ECDSA P-256 key in NAME.key, mode 0600.
newkey() {
	rm -f "$dir/$1.key"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$dir/$1.key" 2>/dev/null
	chmod 0600 "$dir/$1.key"
}

# sign NAME CN EXTENSIONS: NAME.pem for NAME.key, signed by the CA.
sign() {
	printf '%s\n' "$3" >"$dir/$1.ext"
	openssl req -new -key "$dir/$1.key" -subj "/O=qkdnet test/CN=$2" \
		-out "$dir/$1.csr" 2>/dev/null
	openssl x509 -req -in "$dir/$1.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
		-set_serial "0x$(openssl rand -hex 16)" -days "$days" -sha256 \
		-extfile "$dir/$1.ext" -out "$dir/$1.pem" 2>/dev/null
	rm -f "$dir/$1.csr" "$dir/$1.ext"
	chmod 0644 "$dir/$1.pem"
}

newkey ca
openssl req -x509 -new -key "$dir/ca.key" -subj "/O=qkdnet test/CN=qkdnet test CA" \
	-days "$days" -sha256 \
	-addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" \
	-out "$dir/ca.pem" 2>/dev/null
chmod 0644 "$dir/ca.pem"

leaf="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature"
newkey server
sign server localhost "$leaf
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost${PKI_SERVER_SAN:+,$PKI_SERVER_SAN}"
for id in "$@"; do
	newkey "$id"
	sign "$id" "$id" "$leaf
extendedKeyUsage=clientAuth"
done
echo "$dir: ca.pem, server.pem/.key, client certificates for: $*"
