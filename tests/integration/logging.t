#!/usr/bin/env bash
# Logging: the file and its rotation, the ring size, TZ, no secrets.
. "$(dirname "$0")/../lib.sh"

cat > "$TMP/cfg.yaml" <<Y
api_keys: ["client-secret-key"]
admin_key: "admin-secret-key"
log_file: $TMP/runtime/logs/app.log
log_max_bytes: 20000
log_ring_lines: 50
providers:
  - name: p
    base_url: http://127.0.0.1:9
    api_key: upstream-secret-key
    model_mappings: [{upstream: u, alias: a}]
Y
TZ=UTC0 start_gateway "$TMP/cfg.yaml" || { echo "Bail out! gateway did not start"; exit 1; }
python3 - "$GW_PORT" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
for i in range(400):
    c.request("GET", "/v1/models", headers={"Authorization": "Bearer client-secret-key"})
    c.getresponse().read()
PY
check "log_file is written, its directory created" -- test -s "$TMP/runtime/logs/app.log"
check "the file is rotated: app.log.1 exists" -- test -s "$TMP/runtime/logs/app.log.1"
check "three rotated files at most" -- test ! -e "$TMP/runtime/logs/app.log.4"
big=$(find "$TMP/runtime/logs" -name 'app.log*' -size +20000c | wc -l)
is "$big" 0 "no log file grows past log_max_bytes"
like "$(tail -1 "$TMP/runtime/logs/app.log")" 'GET /v1/models 200' "the file has the access lines"
n=$(curl -s -H "X-API-Key: admin-secret-key" "$GW_URL/api/admin/logs?lines=5000" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["lines"]))')
is "$n" 50 "the ring keeps log_ring_lines lines"
unlike "$(cat "$TMP"/runtime/logs/app.log* "$GW_LOG")" 'client-secret-key|admin-secret-key|upstream-secret-key' \
    "no key reaches stdout or the file"
utc=$(tail -1 "$GW_LOG" | cut -c12-13)
stop_gateway
TZ=CST-8 start_gateway "$TMP/cfg.yaml" || exit 1
curl -s -o /dev/null "$GW_URL/healthz"
sleep 0.2
cst=$(tail -1 "$GW_LOG" | cut -c12-13)
is "$(( (10#$cst - 10#$utc + 24) % 24 ))" 8 "TZ is honoured (a POSIX TZ string works without zoneinfo)"
stop_gateway
done_testing
