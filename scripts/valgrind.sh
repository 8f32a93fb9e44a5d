#!/usr/bin/env bash
# Start the gateway under valgrind, serve 1000 requests (plain, proxied,
# streamed, failed over), stop it with SIGTERM, and require no leak and no
# memory error.  Usage: scripts/valgrind.sh (make valgrind)
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 1; }

start_mock A
PA=$(mock_port A)
cat > "$TMP/cfg.yaml" <<Y
api_keys: ["ck"]
admin_key: adm
max_retries: 2
providers:
  - name: pa
    base_url: http://127.0.0.1:$PA
    model_mappings:
      - {upstream: m1, alias: m}
      - {upstream: bad, alias: fo}
  - name: pb
    base_url: http://127.0.0.1:$PA
    priority: 1
    model_mappings:
      - {upstream: m2, alias: fo}
Y
mock_mode A bad 500
PORT=$(free_port)
valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
    --error-exitcode=99 --log-file="$TMP/vg.log" "$BIN" -c "$TMP/cfg.yaml" -p "$PORT" > "$TMP/gw.log" 2>&1 &
VG=$!
wait_for_port "$PORT" 60
python3 - "$PORT" <<'PY'
import http.client, json, sys
port = int(sys.argv[1])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
H = {"Authorization": "Bearer ck", "Content-Type": "application/json"}
for i in range(1000):
    k = i % 5
    if k == 0:
        c.request("GET", "/v1/models", headers=H)
    elif k == 1:
        c.request("POST", "/v1/chat/completions", json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}), H)
    elif k == 2:
        c.request("POST", "/v1/chat/completions", json.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]}), H)
    elif k == 3:
        c.request("POST", "/v1/chat/completions", json.dumps({"model": "fo", "messages": [{"role": "user", "content": "x"}]}), H)
    else:
        c.request("GET", "/internal/stats", headers={"X-API-Key": "adm"})
    r = c.getresponse(); r.read()
    if r.status != 200:
        sys.exit("request %d: status %d" % (i, r.status))
print("1000 requests served")
PY
kill -TERM "$VG"
status=0
wait "$VG" || status=$?
grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|All heap blocks" "$TMP/vg.log" || true
if [ "$status" -ne 0 ]; then
    echo "valgrind: FAILED (exit $status); full log:"
    cat "$TMP/vg.log"
    exit 1
fi
echo "valgrind: no leaks, no errors"
