#!/usr/bin/env bash
# The admin API: login and its rate limit, config read (keys masked) and
# save (validated, atomic, keeps what the page does not edit, reloads),
# logs tail and clear, admin disabled, and the UI's HTTP caching.
. "$(dirname "$0")/../lib.sh"

start_mock A || exit 1
PA=$(mock_port A)
export ADMIN_TEST_KEY="sk-from-the-environment-1234"
cat > "$TMP/cfg.yaml" <<Y
# top comment stays
api_keys:
  - "ck"
admin_key: "adm"
max_retries: 2
custom_unknown_key: {kept: true}   # an unknown key stays too
providers:
  - name: pa
    base_url: "http://127.0.0.1:$PA"
    api_key: "\${ADMIN_TEST_KEY}"
    model_mappings:
      - {upstream: m1, alias: m}
  - name: pb
    base_url: "http://127.0.0.1:$PA/v1"
    api_key: "sk-literal-secret-abcd"
    weight: 2
    model_mappings:
      - {upstream: m2, alias: m}
# trailing comment
Y
start_gateway "$TMP/cfg.yaml" || { echo "Bail out! gateway did not start"; exit 1; }
ADM=(-H "X-API-Key: adm")

# ---- login ----
body=$(curl -s -w '\n%{http_code}' "$GW_URL/api/admin/login" -d '{"api_key":"adm"}')
like "$body" '"code":200' "login with the admin key: 200"
body=$(curl -s -w '\n%{http_code}' "$GW_URL/api/admin/login" -d '{"api_key":"nope"}')
like "$body" '401$' "login with a wrong key: 401"
code=$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/api/admin/config")
is "$code" 401 "admin calls need X-API-Key"

# ---- config read ----
body=$(curl -s "${ADM[@]}" "$GW_URL/api/admin/config")
is "$(jget "$body" 'j["data"]["providers"][1]["api_key"]')" "sk-…abcd" "provider keys are masked"
is "$(jget "$body" 'j["data"]["providers"][0]["api_key"]')" '${ADMIN_TEST_KEY}' "a \${VAR} key shows as the reference"
unlike "$body" 'sk-literal-secret-abcd|sk-from-the-environment' "no full key in the answer"
is "$(jget "$body" 'j["data"]["max_retries"]')" 2 "global parameters are returned"

# ---- config save: invalid input changes nothing ----
cp "$TMP/cfg.yaml" "$TMP/orig.yaml"
bad=$(jedit "$body" 'j=j["data"]; del j["providers"][1]["model_mappings"][0]["upstream"]')
resp=$(curl -s -w '\n%{http_code}' "${ADM[@]}" "$GW_URL/api/admin/config" -d "$bad")
like "$resp" '400$' "a mapping without upstream: 400"
like "$resp" 'providers\[1\]\.model_mappings\[0\]: upstream is required' "the reason names the key path"
check "nothing was written" -- cmp -s "$TMP/cfg.yaml" "$TMP/orig.yaml"
resp=$(curl -s -w '\n%{http_code}' "${ADM[@]}" "$GW_URL/api/admin/config" -d '{"providers":[{"name":"x","base_url":"ftp://h","model_mappings":[]}]}')
like "$resp" 'base_url must start with http:// or https://' "a bad base_url is refused with the reason"
resp=$(curl -s -w '\n%{http_code}' "${ADM[@]}" "$GW_URL/api/admin/config" -d '{"providers":[{"name":"x","base_url":"http://h","weight":"heavy"}]}')
like "$resp" 'weight must be a whole number' "a non-numeric weight is refused"
check "still nothing written" -- cmp -s "$TMP/cfg.yaml" "$TMP/orig.yaml"

# ---- config save: a good edit ----
good=$(jedit "$body" 'j=j["data"]; j["providers"][1]["weight"]=5; j["providers"][1]["model_mappings"].append({"upstream":"m3","alias":"new-alias","probe":"models"}); j["max_failures"]=7')
resp=$(curl -s -w '\n%{http_code}' "${ADM[@]}" "$GW_URL/api/admin/config" -d "$good")
like "$resp" '200$' "a valid config is saved: 200"
file=$(cat "$TMP/cfg.yaml")
like "$file" '# top comment stays' "comments outside the edited parts are kept"
like "$file" 'custom_unknown_key: \{kept: true\}' "unknown keys are kept"
like "$file" 'api_keys:' "api_keys are kept"
like "$file" 'admin_key: "adm"' "admin_key is kept"
like "$file" 'api_key: "\$\{ADMIN_TEST_KEY\}"' "a \${VAR} reference is kept"
like "$file" 'api_key: "sk-literal-secret-abcd"' "a masked key sent back keeps the real key"
like "$file" 'weight: 5' "the new weight is in the file"
like "$file" 'max_failures: 7' "a global parameter missing from the file is added"
check "the previous file is kept as .bak" -- cmp -s "$TMP/cfg.yaml.bak" "$TMP/orig.yaml"
"$BIN" --check-config -c "$TMP/cfg.yaml" >/dev/null 2>&1
ok $? "the saved file loads"
models=$(curl -s -H "Authorization: Bearer ck" "$GW_URL/v1/models")
like "$models" '"new-alias"' "the running config was reloaded"
stats=$(curl -s "${ADM[@]}" "$GW_URL/api/admin/config")
is "$(jget "$stats" 'j["data"]["providers"][1]["weight"]')" 5 "the admin API shows the new weight"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ck" "$GW_URL/v1/chat/completions" -d '{"model":"m","messages":[{"role":"user","content":"x"}]}')
is "$code" 200 "requests still work after the save"

# ---- a read-only config file ----
if [ "$(id -u)" = 0 ]; then
    # root ignores file modes: make the directory and file immutable to the
    # gateway by pointing it at a file on a read-only bind mount if we can.
    skip_one "running as root: file modes do not stop writes"
else
    chmod 444 "$TMP/cfg.yaml"
    resp=$(curl -s -w '\n%{http_code}' "${ADM[@]}" "$GW_URL/api/admin/config" -d "$good")
    like "$resp" 'read-only' "a read-only config file: a clear error"
    chmod 644 "$TMP/cfg.yaml"
fi

# ---- logs ----
curl -s -o /dev/null -H "Authorization: Bearer ck" "$GW_URL/v1/models"
logs=$(curl -s "${ADM[@]}" "$GW_URL/api/admin/logs")
like "$(jget "$logs" 'j["data"]["logs"]')" 'GET /v1/models 200' "logs hold the access lines"
last=$(jget "$logs" 'j["data"]["last_seq"]')
curl -s -o /dev/null "$GW_URL/healthz"
new=$(curl -s "${ADM[@]}" "$GW_URL/api/admin/logs?since=$last")
is "$(jget "$new" 'all(l["seq"] > '"$last"' for l in j["data"]["lines"])')" True "?since returns only newer lines"
like "$(jget "$new" 'j["data"]["logs"]')" 'GET /healthz' "... among them the new request"
resp=$(curl -s -X DELETE "${ADM[@]}" "$GW_URL/api/admin/logs")
like "$resp" '"code":200' "DELETE /api/admin/logs clears"
after=$(curl -s "${ADM[@]}" "$GW_URL/api/admin/logs")
unlike "$(jget "$after" 'j["data"]["logs"]')" 'GET /v1/models' "old lines are gone after clearing"

# ---- the UI ----
hdr=$(curl -s -D - -o "$TMP/index" "$GW_URL/")
like "$hdr" 'Content-Type: text/html' "/ serves the admin page"
like "$hdr" "Content-Security-Policy: default-src 'self'" "with a strict CSP"
like "$hdr" 'X-Content-Type-Options: nosniff' "and nosniff"
unlike "$hdr" 'Access-Control-Allow' "no CORS headers"
etag=$(printf '%s' "$hdr" | grep -i '^etag:' | cut -d' ' -f2 | tr -d '\r')
code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$GW_URL/")
is "$code" 304 "If-None-Match with the ETag: 304"
hdr=$(curl -s -D - -o /dev/null -H "Accept-Encoding: gzip" "$GW_URL/")
like "$hdr" 'Content-Encoding: gzip' "gzip when the client takes it"
# Only the gzip copy is compiled in: a client without gzip gets it inflated.
for f in index.html app.js style.css; do
    path=/$f; [ $f = index.html ] && path=/
    hdr=$(curl -s -D - -o "$TMP/plain" -H "Accept-Encoding: identity" "$GW_URL$path")
    unlike "$hdr" 'Content-Encoding' "$f without gzip: no coding"
    ok $(cmp -s "$TMP/plain" "$ROOT/ui/$f"; echo $?) "$f without gzip: the file itself"
    curl -s -o "$TMP/gz" -H "Accept-Encoding: gzip" "$GW_URL$path"
    ok $(gzip -dc < "$TMP/gz" | cmp -s - "$ROOT/ui/$f"; echo $?) "$f with gzip: the file compressed"
done
hdr=$(curl -s -I "$GW_URL/app.js")
like "$hdr" "Content-Length: $(wc -c < "$ROOT/ui/app.js")" "HEAD without gzip: the file's length"
size=$(cat "$ROOT"/ui/* 2>/dev/null | wc -c)
ok $([ "$size" -lt 102400 ]; echo $?) "the UI is under 100 KiB before compression ($size bytes)"

# ---- every admin-key check is rate limited, per client ----
# (last: it spends this client's budget of wrong keys)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: wrong" "$GW_URL/internal/stats")
is "$code" 401 "a wrong X-API-Key on /internal/stats is 401 (and counts)"
codes=""
for i in $(seq 1 10); do codes="$codes $(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/api/admin/login" -d '{"api_key":"x"}')"; done
like "$codes" '^( 401)+( 429)+$' "wrong keys are 401 until the client's budget (10, with the ones before) is spent, then 429"
resp=$(curl -s -D "$TMP/h" -w '\n%{http_code}' -H "Authorization: Bearer adm" "$GW_URL/metrics")
like "$resp" '429$' "then even the right key is refused: 429 (a guesser could tell a hit from a miss)"
like "$(grep -i '^retry-after:' "$TMP/h")" 'Retry-After: [0-9]+' "... with Retry-After"
code=$(curl -s -o /dev/null -w '%{http_code}' "${ADM[@]}" "$GW_URL/api/admin/health")
is "$code" 429 "... on every admin route"
like "$(cat "$GW_LOG")" 'too many wrong admin keys from 127\.0\.0\.1' "the refusal is logged with the client's address"

stop_gateway

# ---- no admin_key: admin surface disabled ----
sed -i '/^admin_key/d' "$TMP/cfg.yaml"
start_gateway "$TMP/cfg.yaml" || exit 1
resp=$(curl -s -w '\n%{http_code}' -H "X-API-Key: adm" "$GW_URL/api/admin/health")
like "$resp" '403$' "without admin_key the admin API answers 403"
like "$resp" 'set admin_key' "... saying how to enable it"
code=$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/metrics")
is "$code" 403 "... and /metrics too"
stop_gateway
done_testing
