#!/usr/bin/env bash
# tests/integration/status.sh - the status socket of `qkd node` under many
# clients: idle ones, one that never reads, bad requests, and SIGTERM while
# clients are connected. One node whose peer never comes, so it just waits.
# Usage (from the top of the tree): QKD=build/qkd bash tests/integration/status.sh
set -u
# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/../cli/lib.sh"
# shellcheck source=tests/integration/lib_nodes.sh
. "$(dirname "$0")/lib_nodes.sh"

QKD=${QKD:-build/qkd}
QKD=$(cd "$(dirname "$QKD")" && pwd)/$(basename "$QKD")
MKKEY=$(cd "$(dirname "$0")/../../examples" && pwd)/make-auth-key.sh
D=$CLI_TMP
SOCK=$D/alice.sock
PIDS=()

command -v python3 >/dev/null || { echo "# python3 missing: skipped" >&2; exit 0; }

# client.py: raw clients of the status socket, every wait bounded.
#   idle SOCK N HOLD READY OUT   open N connections that send nothing, touch
#                                READY, then for HOLD s note when the server
#                                closes each; OUT gets "CLOSED MAX_LIFETIME"
#   ask SOCK [--shut] PIECE...   send the pieces 50 ms apart (then shut down
#                                the write side); print the reply up to EOF
#   noread SOCK HOLD READY       send "status\n", touch READY, read nothing
#                                for HOLD s, then print "json eof" if the
#                                whole reply and EOF were waiting
cat >"$D/client.py" <<'EOF'
import selectors, socket, sys, time

# A full listen backlog fails a non-blocking connect with EAGAIN: retry,
# 5 s at most, as a blocking connect would wait.
def conn(path):
    end = time.monotonic() + 5
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            if time.monotonic() > end:
                raise
            time.sleep(0.01)

def read_to_eof(s, limit):
    data, end = b"", time.monotonic() + limit
    while time.monotonic() < end:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            b = s.recv(65536)
        except socket.timeout:
            return data, False
        except ConnectionResetError:
            return data, True
        if not b:
            return data, True
        data += b
    return data, False

def idle(path, n, hold, ready, out):
    sel, opened = selectors.DefaultSelector(), {}
    for _ in range(int(n)):
        s = conn(path)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        opened[s] = time.monotonic()
    open(ready, "w").close()
    closed, longest, end = 0, 0.0, time.monotonic() + float(hold)
    while opened and time.monotonic() < end:
        for key, _ in sel.select(max(0.0, end - time.monotonic())):
            s = key.fileobj
            try:
                b = s.recv(4096)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                b = b""
            if b:
                continue
            longest = max(longest, time.monotonic() - opened.pop(s))
            sel.unregister(s)
            s.close()
            closed += 1
    open(out, "w").write("%d %.2f\n" % (closed, longest))

def ask(path, pieces):
    shut = pieces[0] == "--shut"
    s = conn(path)
    for i, p in enumerate(pieces[1:] if shut else pieces):
        if i:
            time.sleep(0.05)
        s.sendall(p.encode().decode("unicode_escape").encode())
    if shut:
        s.shutdown(socket.SHUT_WR)
    data, eof = read_to_eof(s, 3)
    sys.stdout.write(data.decode())
    sys.exit(0 if eof else 1)

def noread(path, hold, ready):
    s = conn(path)
    s.sendall(b"status\n")
    open(ready, "w").close()
    time.sleep(float(hold))
    data, eof = read_to_eof(s, 0.5)
    ok = data.startswith(b"{\"node\"") and data.endswith(b"}\n")
    print(("json" if ok else "nojson") + (" eof" if eof else " open"))

cmd, path, args = sys.argv[1], sys.argv[2], sys.argv[3:]
if cmd == "idle":
    idle(path, *args)
elif cmd == "noread":
    noread(path, *args)
else:
    ask(path, args)
EOF

py() { python3 "$D/client.py" "$@"; }
# wait_file FILE SECONDS: until FILE exists (bounded).
wait_file() {
	local i
	for i in $(seq 1 $(($2 * 20))); do [ -e "$1" ] && return 0; sleep 0.05; done
	return 1
}
# quick_status: `qkd status --json` must answer with the node's JSON in 1 s
# (jq -n and input: jq 1.6 -e passes on empty input).
quick_status() {
	local out
	out=$(timeout 1 "$QKD" status --node "$SOCK" --json) &&
		jq -en 'input | .node == "alice"' >/dev/null <<<"$out"
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

CP=$(free_port); FP=$(free_port "$CP")
cat >"$D/alice.conf" <<EOF
node = { name = "alice"; status = "alice.sock"; log_level = "info"; };
links = ( {
  name = "ab"; role = "alice";
  classical = "127.0.0.1:$CP"; fiber = "127.0.0.1:$FP";
  store = "alice.db"; auth_key = "ab.key";
} );
EOF
sh "$MKKEY" "$D/ab.key"
start alice
up=no
for i in $(seq 1 50); do quick_status 2>/dev/null && { up=yes; break; }; sleep 0.2; done
check_eq "node: status socket answers (10 s at most)" "$up" yes
[ "$up" = yes ] || { cat "$D/alice.log" >&2; finish; }

# --- 40 idle clients (more than the node's 32 slots) do not block `qkd status`
rm -f "$D/ready" "$D/idle.out"
py idle "$SOCK" 40 6 "$D/ready" "$D/idle.out" &
IDLE=$!; PIDS+=("$IDLE")
check "idle: 40 connections open" wait_file "$D/ready" 10
slow=0
for i in 1 2 3 4 5; do quick_status || slow=$((slow + 1)); done
check_eq "idle: qkd status answers in 1 s, 5 times out of 5" "$slow" 0
wait "$IDLE"
read -r closed longest <"$D/idle.out" || closed=0
check_eq "idle: the server closed all 40" "$closed" 40
check "idle: each closed within 3.5 s (got ${longest:-?} s)" \
	awk -v l="${longest:-99}" 'BEGIN { exit !(l <= 3.5) }'

# --- a client that asks and never reads blocks no one, and is answered
rm -f "$D/ready"
py noread "$SOCK" 2 "$D/ready" >"$D/noread.out" &
NR=$!; PIDS+=("$NR")
check "noread: request sent" wait_file "$D/ready" 10
slow=0
for i in 1 2 3; do quick_status || slow=$((slow + 1)); done
check_eq "noread: qkd status answers in 1 s meanwhile" "$slow" 0
wait "$NR"
check_eq "noread: reply and EOF waiting when it finally reads" "$(cat "$D/noread.out")" "json eof"

# --- requests
check "request: split in pieces" py ask "$SOCK" "sta" "tus" "\\n"
check "request: split reply is the status" jq -en 'input | .node == "alice"' <<<"$OUT"
check "request: without newline, write side shut" py ask "$SOCK" --shut "status"
check "request: shut reply is the status" jq -en 'input | .links[0].name == "ab"' <<<"$OUT"
check "request: unknown is answered" py ask "$SOCK" "hello\\n"
check_eq "request: unknown gets the error object" "$OUT" '{"error": "unknown request"}'
check "request: status with a tail is answered" py ask "$SOCK" "statusx\\n"
check_eq "request: status with a tail is unknown" "$OUT" '{"error": "unknown request"}'
check "request: 200 bytes without newline are answered" py ask "$SOCK" "$(printf 'x%.0s' $(seq 1 200))"
check_eq "request: an overlong line is unknown" "$OUT" '{"error": "unknown request"}'

# --- SIGTERM with clients connected stops the node promptly
rm -f "$D/ready" "$D/ready2" "$D/idle.out"
py idle "$SOCK" 10 4 "$D/ready" "$D/idle.out" &
IDLE=$!; PIDS+=("$IDLE")
py noread "$SOCK" 3 "$D/ready2" >/dev/null &
NR=$!; PIDS+=("$NR")
check "sigterm: clients connected" wait_file "$D/ready" 10
wait_file "$D/ready2" 10
# shellcheck disable=SC2154  # PID_alice is set by start (eval)
check "sigterm: node still running" kill -0 "$PID_alice"
t0=$(now)
stop alice
took=$(elapsed "$t0")
check_eq "sigterm: exit status 0" "$STOP_RC" 0
check "sigterm: stopped within 2 s (took $took s)" awk -v t="$took" 'BEGIN { exit !(t < 2) }'
check "sigterm: status socket removed" test ! -e "$SOCK"
wait "$IDLE" "$NR" 2>/dev/null
read -r closed _ <"$D/idle.out" || closed=0
check_eq "sigterm: idle clients saw the close" "$closed" 10

[ "$CLI_FAIL" -eq 0 ] || { echo "# alice.log:" >&2; tail -n 40 "$D/alice.log" >&2; }
finish
