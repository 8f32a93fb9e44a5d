#!/usr/bin/env bash
# The idle limits, watched side by side in one minute of wall time (the
# test mostly sleeps, so it costs little next to the others): an idle
# keep-alive connection is closed quietly after 60 s, a request body that
# stops arriving gets 408 once its 20 s grace is over (a body must average
# 1 KiB/s), and a client that stops reading its answer is closed after
# 60 s.  Each within a few seconds of its limit, never early.
. "$(dirname "$0")/../lib.sh"

start_mock A || exit 1
cat > "$TMP/cfg.yaml" <<Y
api_keys: ["ck"]
forward_headers: ["X-Mock-Mode"]
admin_key: "ak"
providers:
  - name: pa
    base_url: http://127.0.0.1:$(mock_port A)
    model_mappings: [{upstream: m, alias: m}]
Y
start_gateway "$TMP/cfg.yaml" || { echo "Bail out! gateway did not start"; exit 1; }

out=$(python3 - "$GW_PORT" "$GW_LOG" <<'PY'
import json, socket, sys, threading, time
port = int(sys.argv[1])
LOG = sys.argv[2]
GAVE_UP = "client stopped reading for 60s"
results = {}

def connect(rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    return s

def read_until_close(s, limit):
    """All bytes until EOF (or reset), and when it ended; None on timeout."""
    s.settimeout(limit)
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except socket.timeout:
        return data, None
    except OSError:
        pass
    return data, time.monotonic()

def idle():
    s = connect()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    s.settimeout(5)
    first = s.recv(4096)
    t0 = time.monotonic()
    rest, end = read_until_close(s, 90)
    results["idle"] = [first.startswith(b"HTTP/1.1 200"), len(rest), end and round(end - t0, 1)]

def body_stall():
    s = connect()
    t0 = time.monotonic()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ck\r\n"
              b"Content-Length: 100\r\n\r\n{\"model\":")
    data, end = read_until_close(s, 90)
    results["body"] = [data.split(b"\r\n", 1)[0].decode(errors="replace"), end and round(end - t0, 1)]

def not_reading():
    # An answer far larger than the socket buffers, and a client that
    # never reads it: the gateway must give up on the connection.
    s = connect(rcvbuf=4096)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ck\r\n"
              b"X-Mock-Mode: ok;body_bytes=8000000\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    time.sleep(50)
    early = GAVE_UP in open(LOG, errors="replace").read()
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline and GAVE_UP not in open(LOG, errors="replace").read():
        time.sleep(0.5)
    late = GAVE_UP in open(LOG, errors="replace").read()
    # Its connection is gone on the gateway's side (reading what the
    # kernel still holds for us would take a while at this window): the
    # only one open is the one asking.
    m = connect()
    m.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ak\r\nConnection: close\r\n\r\n")
    text, _ = read_until_close(m, 10)
    n = [l for l in text.decode(errors="replace").splitlines() if l.startswith("autoswitch_open_connections ")]
    results["send"] = [not early, late, n == ["autoswitch_open_connections 1"]]
    s.close()

threads = [threading.Thread(target=f) for f in (idle, body_stall, not_reading)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(results))
PY
)
echo "# $out"
idle_ok=$(jget "$out" 'j["idle"][0]')
idle_rest=$(jget "$out" 'j["idle"][1]')
idle_t=$(jget "$out" 'j["idle"][2]')
is "$idle_ok" True "a keep-alive connection is answered"
is "$idle_rest" 0 "... and, left idle, closed without a byte"
ok $(python3 -c "import sys; t=$idle_t; sys.exit(0 if t and 59 <= t <= 68 else 1)"; echo $?) \
    "... after 60 s (took ${idle_t} s)"
is "$(jget "$out" 'j["body"][0]')" "HTTP/1.1 408 Request Timeout" "a request body that stops arriving gets 408"
body_t=$(jget "$out" 'j["body"][1]')
ok $(python3 -c "import sys; t=$body_t; sys.exit(0 if t and 19 <= t <= 28 else 1)"; echo $?) \
    "... after the 20 s grace without a body byte (took ${body_t} s)"
is "$(jget "$out" 'j["send"][:2]')" "[true, true]" \
    "a client that stops reading its answer is given up on between 50 and 75 s, and the log says so"
is "$(jget "$out" 'j["send"][2]')" "True" "... and its connection closed"
code=$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/healthz")
is "$code" 200 "the gateway serves on"
stop_gateway
done_testing
