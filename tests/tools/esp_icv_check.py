#!/usr/bin/python3
# tests/tools/esp_icv_check.py - check the ICV of captured ESP packets with
# the keys of a `qkd vpn --keylog` file, independently of lib/vpn: Python's
# cryptography (OpenSSL underneath) decrypts each packet as RFC 4106 lays
# it out (nonce = salt | IV, AAD = SPI | sequence number) and verifies the
# 16-octet tag. tshark 4.0 decrypts AES-GCM ESP but leaves its ICV
# unchecked, so tests/integration/vpn.sh uses this for "the ICVs are good".
#
#   tshark -r CAP -T fields -e ip.src -e ip.dst -e udp.payload |
#       esp_icv_check.py KEYLOG
#
# Reads "SRC DST HEX" lines (UDP/4500 payloads); IKE (non-ESP marker) and
# keepalives are skipped. Prints "esp N good M bad K nokey L"; exits 0 when
# N > 0 and M == N.
import re
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

REC = re.compile(r'^uat:esp_sa:"IPv[46]","([^"]*)","([^"]*)","0x([0-9a-f]{8})",'
                 r'"AES-GCM with 16 octet ICV \[RFC4106\]","0x([0-9a-f]+)"')


def keys(path):
    out = {}
    with open(path) as f:
        for line in f:
            m = REC.match(line)
            if m:
                out[(m.group(1), m.group(2), int(m.group(3), 16))] = bytes.fromhex(m.group(4))
    return out


def main():
    table = keys(sys.argv[1])
    n = good = bad = nokey = 0
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 3:
            continue
        src, dst, pkt = parts[0], parts[1], bytes.fromhex(parts[2].replace(":", ""))
        if len(pkt) < 8 + 8 + 16 or pkt[:4] == b"\0\0\0\0":
            continue
        n += 1
        spi = int.from_bytes(pkt[:4], "big")
        km = table.get((src, dst, spi))
        if km is None:
            nokey += 1
            continue
        nonce = km[-4:] + pkt[8:16]
        try:
            AESGCM(km[:-4]).decrypt(nonce, pkt[16:], pkt[:8])
            good += 1
        except Exception:
            bad += 1
    print("esp %d good %d bad %d nokey %d" % (n, good, bad, nokey))
    return 0 if n > 0 and good == n else 1


if __name__ == "__main__":
    sys.exit(main())
