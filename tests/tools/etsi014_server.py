#!/usr/bin/python3
# tests/tools/etsi014_server.py - a small ETSI GS QKD 014 V1.1.1 key
# manager written independently of lib/kme, in Python (ssl, http.server),
# for tests/integration/kme_client.sh: `qkd kme` must work against a KME
# that is not ours, and refuse clearly what such a KME may get wrong.
#
#   etsi014_server.py --pki DIR     (ca.pem, server.pem, server.key of
#                                    examples/make-test-pki.sh)
#                     [--host ADDR] [--port N]   (default 127.0.0.1, any port)
#                     [--fault-file PATH]  while PATH exists, its first
#                                    word picks a fault (tests/integration/vpn.sh):
#                                    flip     dec_keys hands out every key with
#                                             its first bit flipped (wrong bits)
#                                    503      every request gets 503 and an
#                                             Error object
#                                    garbage  every request gets 200 and a
#                                             body that is not JSON
#
# Mutual TLS: a client certificate of the CA is required; its subject CN is
# the caller's SAE ID. Prints "listening 127.0.0.1 PORT" once serving; stops
# on SIGTERM. Keys are random bytes (os.urandom), key_IDs uppercase UUIDs
# (RFC 4122 allows either case), the Status pretty-printed: all legal, and
# all different from our server. dec_keys hands a key out once, to the
# slave of its pair.
#
# The SAE ID in the path chooses a misbehaviour (enc_keys and status):
#   BAD_JSON      200 with a body that is not JSON
#   TRAILING      200 with a valid Key container and garbage after it
#   SHORT_KEY     keys one byte shorter than the size asked for
#   TOO_MANY      one key more than asked for
#   BAD_UUID      a key_ID that is not a UUID
#   BAD_B64       a key that is not base64
#   ERR_DETAILS   503 with an Error object that has two details
#   HTML          502 with an HTML page
#   BIG           200 with 17 MiB of JSON and no Content-Length
#   SLOW          answers after 5 s
#   STATUS_TYPES  status: key_size as a string
#   WRONG_SLAVE   status: slave_SAE_ID another SAE's
import argparse
import base64
import json
import os
import signal
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

KEY_SIZE, MIN_SIZE, MAX_SIZE, MAX_KEYS = 256, 64, 4096, 32
FAULT_FILE = None
STORE = {}  # lowercase key_ID -> (master, slave, bytes)
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server_version = "etsi014-py/1"

    def log_message(self, fmt, *args):
        pass

    def caller(self):
        cert = self.connection.getpeercert()
        for rdn in cert.get("subject", ()):
            for name, value in rdn:
                if name == "commonName":
                    return value
        return None

    def send(self, status, obj=None, raw=None, ctype="application/json", length=True):
        body = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, message, details=None):
        obj = {"message": message}
        if details is not None:
            obj["details"] = details
        self.send(status, obj)

    def route(self):
        parts = urlsplit(self.path)
        seg = parts.path.split("/")
        if len(seg) != 6 or seg[:4] != ["", "api", "v1", "keys"]:
            return None, None, None
        return seg[4], seg[5], parse_qs(parts.query)

    def do_GET(self):
        self.handle_request(None)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        try:
            self.handle_request(json.loads(self.rfile.read(n) or b"null"))
        except ValueError:
            self.error(400, "body is not JSON")

    def handle_request(self, body):
        sae, res, query = self.route()
        me = self.caller()
        if sae is None:
            return self.error(404, "no such resource")
        if misbehave(self, sae, res):
            return None
        if fault() == "503":
            return self.error(503, "injected fault: no key", [{"fault_file": FAULT_FILE}])
        if fault() == "garbage":
            return self.send(200, raw=b"\x00garbage\xff{")
        if res == "status":
            return self.send(200, raw=status_text(me, sae).encode())
        if res == "enc_keys":
            return self.enc(me, sae, query, body)
        if res == "dec_keys":
            return self.dec(me, sae, query, body)
        return self.error(404, "no such resource")

    def enc(self, master, slave, query, body):
        if body is None:
            number = int(query.get("number", ["1"])[0])
            size = int(query.get("size", [str(KEY_SIZE)])[0])
        else:
            number, size = body.get("number", 1), body.get("size", KEY_SIZE)
            if body.get("additional_slave_SAE_IDs"):
                return self.error(400, "no multicast here", [{"max_SAE_ID_count": 0}])
        if not 1 <= number <= MAX_KEYS or size % 8 or not MIN_SIZE <= size <= MAX_SIZE:
            return self.error(400, "bad number or size", [{"number": number}, {"size": size}])
        keys = []
        with LOCK:
            for _ in range(number):
                kid, key = str(uuid.uuid4()).upper(), os.urandom(size // 8)
                STORE[kid.lower()] = (master, slave, key)
                keys.append({"key_ID": kid, "key": base64.b64encode(key).decode()})
        return self.send(200, {"keys": keys})

    def dec(self, slave, master, query, body):
        if body is None:
            ids = query.get("key_ID", [])
        else:
            ids = [k.get("key_ID", "") for k in body.get("key_IDs", [])]
        keys = []
        with LOCK:
            for kid in ids:
                entry = STORE.get(kid.lower())
                if entry is None or entry[0] != master or entry[1] != slave:
                    return self.error(400, "key_ID unknown", [{"key_ID": kid}])
            for kid in ids:
                key = STORE.pop(kid.lower())[2]
                if fault() == "flip":
                    key = bytes([key[0] ^ 0x80]) + key[1:]
                keys.append({"key_ID": kid, "key": base64.b64encode(key).decode()})
        return self.send(200, {"keys": keys})


def fault():
    """The fault the --fault-file asks for now, or None."""
    try:
        with open(FAULT_FILE) as f:
            words = f.read().split()
    except (TypeError, OSError):
        return None
    return words[0] if words else "flip"


def status_text(master, slave, **changes):
    obj = {
        "source_KME_ID": "KME_P", "target_KME_ID": "KME_Q",
        "master_SAE_ID": master, "slave_SAE_ID": slave,
        "key_size": KEY_SIZE, "stored_key_count": 1000, "max_key_count": 5000,
        "max_key_per_request": MAX_KEYS, "max_key_size": MAX_SIZE,
        "min_key_size": MIN_SIZE, "max_SAE_ID_count": 0,
        "status_extension": {"vendor": "python"},
    }
    obj.update(changes)
    return json.dumps(obj, indent=2) + "\n"


def one_key(kid=None, nbytes=32, text=None):
    key = text if text is not None else base64.b64encode(os.urandom(nbytes)).decode()
    return {"key_ID": kid or str(uuid.uuid4()), "key": key}


def misbehave(h, sae, res):
    number = 1
    if res == "enc_keys":
        q = parse_qs(urlsplit(h.path).query)
        number = int(q.get("number", ["1"])[0])
    if sae == "BAD_JSON":
        h.send(200, raw=b'{"keys": [{"key_ID": ')
    elif sae == "TRAILING":
        h.send(200, raw=json.dumps({"keys": [one_key()]}).encode() + b" garbage")
    elif sae == "SHORT_KEY":
        h.send(200, {"keys": [one_key(nbytes=31) for _ in range(number)]})
    elif sae == "TOO_MANY":
        h.send(200, {"keys": [one_key() for _ in range(number + 1)]})
    elif sae == "BAD_UUID":
        h.send(200, {"keys": [one_key(kid="key-0001")]})
    elif sae == "BAD_B64":
        h.send(200, {"keys": [one_key(text="not base64!")]})
    elif sae == "ERR_DETAILS":
        h.error(503, "the pool is empty", [{"stored_key_count": 0}, {"retry_after_s": 30}])
    elif sae == "HTML":
        h.send(502, raw=b"<html><body><h1>502 Bad Gateway</h1></body></html>",
               ctype="text/html")
    elif sae == "BIG":
        filler = b" " * (1 << 20)
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.end_headers()
        h.wfile.write(b'{"keys": [')
        for _ in range(17):
            h.wfile.write(filler)
        h.wfile.write(b"]}")
    elif sae == "SLOW":
        time.sleep(5)
        h.error(503, "too late")
    elif sae == "STATUS_TYPES" and res == "status":
        h.send(200, raw=status_text(h.caller(), sae, key_size="256").encode())
    elif sae == "WRONG_SLAVE" and res == "status":
        h.send(200, raw=status_text(h.caller(), "SAE_X").encode())
    else:
        return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pki", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--fault-file")
    args = ap.parse_args()
    global FAULT_FILE
    FAULT_FILE = args.fault_file
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(os.path.join(args.pki, "server.pem"), os.path.join(args.pki, "server.key"))
    ctx.load_verify_locations(os.path.join(args.pki, "ca.pem"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    httpd = ThreadingHTTPServer((args.host, args.port), Handler)
    httpd.daemon_threads = True
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("listening %s %d" % (args.host, httpd.server_address[1]), flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
