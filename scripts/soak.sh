#!/usr/bin/env bash
# Fault soak: three upstreams (one dead, one failing 30% of requests with
# 500s and resets, one slow but good) behind one alias, mixed stream and
# non-stream traffic from many keep-alive connections for SECONDS
# (default 60).  Passes when no client sees a failure, open descriptors
# and RSS stay flat (within 10% between the first and the last part of
# the run), and no sanitizer report appears.
#   scripts/soak.sh [SECONDS]          (AUTOSWITCH_BIN=build-asan/autoswitch for the ASan build)
set -uo pipefail
SECS=${1:-60}
. "$(dirname "$0")/../tests/lib.sh"
[ -x "$BIN" ] || { echo "soak: $BIN is not built (make)"; exit 1; }

start_mock FLAKY --mode "flaky;rate=0.3;seed=7" || exit 1
start_mock SLOW --mode "ok;delay_ms=30" || exit 1
DEAD=$(free_port)
cat > "$TMP/soak.yaml" <<Y
api_keys: ["ck"]
max_retries: 3
max_failures: 3
recovery_interval: 2
health_check_period: 8
probe_timeout: 2
providers:
  - name: dead
    base_url: http://127.0.0.1:$DEAD
    timeout: 5
    model_mappings: [{upstream: d, alias: soak, probe: models}]
  - name: flaky
    base_url: http://127.0.0.1:$(mock_port FLAKY)
    weight: 3
    timeout: 5
    model_mappings: [{upstream: f, alias: soak}]
  - name: slow
    base_url: http://127.0.0.1:$(mock_port SLOW)
    priority: 1
    timeout: 5
    model_mappings: [{upstream: s, alias: soak}]
Y
start_gateway "$TMP/soak.yaml" || exit 1
echo "soak: ${SECS}s against $BIN (gateway pid $GW_PID)"

python3 - "$GW_PORT" "$GW_PID" "$SECS" "${SANITIZED:-0}" <<'PY'
import http.client, json, os, sys, threading, time
port, pid, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
sanitized = sys.argv[4] == "1"   # ASan's quarantine makes RSS meaningless
CLIENTS = 24
stop = time.time() + secs
lock = threading.Lock()
stats = {"ok": 0, "fail": 0, "streams": 0, "errors": []}

def rss():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
def fds():
    return len(os.listdir("/proc/%d/fd" % pid))

def client(i):
    conn = None
    n = 0
    while time.time() < stop:
        stream = (i + n) % 2 == 0
        n += 1
        body = json.dumps({"model": "soak", "stream": stream,
                           "messages": [{"role": "user", "content": "soak %d" % n}]})
        err = None
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/v1/chat/completions", body,
                         {"Authorization": "Bearer ck", "Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            if r.status != 200:
                err = "status %d: %s" % (r.status, data[:200])
            elif stream and (b"data: [DONE]" not in data or b'"error"' in data):
                err = "bad stream: %s" % data[-200:]
            elif not stream and b'"choices"' not in data:
                err = "bad body: %s" % data[:200]
            if r.getheader("Connection", "").lower() == "close":
                conn.close(); conn = None
        except Exception as e:
            err = "client error: %r" % e
            try:
                conn.close()
            except Exception:
                pass
            conn = None
        with lock:
            if err:
                stats["fail"] += 1
                if len(stats["errors"]) < 5:
                    stats["errors"].append(err)
            else:
                stats["ok"] += 1
                stats["streams"] += stream

threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
for t in threads: t.start()
samples = []
while time.time() < stop:
    time.sleep(1)
    samples.append((rss(), fds()))
for t in threads: t.join()
part = max(1, len(samples) // 6)
head, tail = samples[part:2 * part], samples[-part:]     # skip the warm-up second
avg = lambda xs: sum(xs) / len(xs)
r0, r1 = avg([s[0] for s in head]), avg([s[0] for s in tail])
f0, f1 = avg([s[1] for s in head]), avg([s[1] for s in tail])
print("soak: %d requests ok (%d streams), %d failed" % (stats["ok"], stats["streams"], stats["fail"]))
print("soak: RSS %.0f -> %.0f KiB, fds %.1f -> %.1f" % (r0, r1, f0, f1))
for e in stats["errors"]:
    print("soak: failure: " + e)
bad = stats["fail"] > 0 or stats["ok"] == 0
if sanitized:
    print("soak: RSS not judged on a sanitizer build")
elif r1 > r0 * 1.10 + 256:      # 10%, with a floor of 256 KiB for tiny numbers
    print("soak: RSS grew more than 10%"); bad = True
if f1 > f0 * 1.10 + 2:
    print("soak: open descriptors grew more than 10%"); bad = True
sys.exit(1 if bad else 0)
PY
load=$?
stop_gateway >/dev/null
if [ "$T_FAIL" -gt 0 ]; then
    echo "soak: the gateway did not exit cleanly or a sanitizer reported:"
    cat "$TMP"/san* 2>/dev/null | head -40
    tail -20 "$GW_LOG"
    exit 1
fi
grep -c 'failed:' "$GW_LOG" | sed 's/^/soak: failed attempts (all recovered by failover): /'
if [ $load -ne 0 ]; then
    echo "soak: FAILED"
    exit 1
fi
echo "soak: PASSED"
