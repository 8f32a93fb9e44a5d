#!/usr/bin/env bash
# Named client keys and usage accounting: each limit and each error, the
# allow-list on /v1/models, include_usage added and its chunk hidden, the
# usage API, metrics and access log, keys managed through the admin API,
# and usage surviving a restart (and a corrupt usage file).
. "$(dirname "$0")/../lib.sh"

start_mock A || exit 1
start_mock B || exit 1
PA=$(mock_port A); PB=$(mock_port B)
USAGE=$TMP/usage.json
BOB_SHA=$(printf '%s' bob-secret-token | sha256sum | cut -d' ' -f1)

cat > "$TMP/cfg.yaml" <<Y
api_keys: ["legacy-key-0001"]
admin_key: "admin-key-for-tests"
usage_file: $USAGE
model_retries: 0
keys:
  - {name: alice, key: "alice-secret-token"}
  - {name: bob, key_sha256: "$BOB_SHA", models: ["m-*"], rpm: 2}
  - {name: carol, key: "carol-secret-token", max_concurrent: 1}
  - {name: dave, key: "dave-secret-token", daily_tokens: 20}
  - {name: eve, key: "eve-secret-token", expires: "2000-01-01"}
  - {name: frank, key: "frank-secret-token", disabled: true}
providers:
  - name: pa
    base_url: http://127.0.0.1:$PA
    model_mappings:
      - {upstream: u1, alias: m-one}
      - {upstream: u2, alias: other}
      - {upstream: u3, alias: slowx}
  - name: pb
    base_url: http://127.0.0.1:$PB
    stream_usage: false
    model_mappings:
      - {upstream: v1, alias: nousage}
Y
start_gateway "$TMP/cfg.yaml" || { echo "Bail out! gateway did not start"; exit 1; }
ADM=(-H "X-API-Key: admin-key-for-tests")

chat() {  # chat KEY MODEL [STREAM_JSON_EXTRA]: body to $TMP/b, head to $TMP/h, prints the status
    curl -s -o "$TMP/b" -D "$TMP/h" -w '%{http_code}' -H "Authorization: Bearer $1" "$GW_URL/v1/chat/completions" \
        -d "{\"model\":\"$2\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]${3:-}}"
}
hdr() { grep -i "^$1:" "$TMP/h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
body() { cat "$TMP/b"; }
usage_rows() { curl -s "${ADM[@]}" "$GW_URL/api/admin/usage$1"; }
last_record() { curl -s "http://127.0.0.1:$1/_mock/requests?n=1"; }
TODAY=$(date +%F)

# ---- who may call ----
is "$(chat nobody-knows-this m-one)" 401 "an unknown key: 401"
is "$(jget "$(body)" 'j["error"]["type"]')" invalid_api_key "... invalid_api_key, in the reference's words"
is "$(chat alice-secret-token m-one)" 200 "a named key: 200"
is "$(chat legacy-key-0001 other)" 200 "an api_keys entry still works, with every model"
is "$(chat eve-secret-token m-one)" 401 "an expired key: 401"
is "$(jget "$(body)" 'j["error"]["code"]')" key_expired "... key_expired"
is "$(chat frank-secret-token m-one)" 401 "a disabled key: 401"
is "$(jget "$(body)" 'j["error"]["code"]')" key_disabled "... key_disabled"
code=$(curl -s -o "$TMP/b" -w '%{http_code}' -H "x-api-key: alice-secret-token" -H "anthropic-version: 2023-06-01" \
    "$GW_URL/v1/models")
is "$code" 200 "x-api-key is a client key on the Anthropic side"

# ---- the allow-list ----
is "$(chat bob-secret-token other)" 403 "a model outside the key's list: 403"
is "$(jget "$(body)" 'j["error"]["code"]')" model_not_allowed "... model_not_allowed"
list=$(curl -s -H "Authorization: Bearer bob-secret-token" "$GW_URL/v1/models")
is "$(jget "$list" '",".join(m["id"] for m in j["data"])')" m-one "/v1/models lists only the key's aliases"
is "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer bob-secret-token" "$GW_URL/v1/models/other")" \
    404 "/v1/models/{id} of an alias the key may not use: 404"
list=$(curl -s -H "Authorization: Bearer alice-secret-token" "$GW_URL/v1/models")
is "$(jget "$list" 'len(j["data"])')" 4 "a key without a list sees every alias"

# ---- rpm: the 403 above did not count ----
is "$(chat bob-secret-token m-one)" 200 "rpm 2: first request"
is "$(chat bob-secret-token m-one)" 200 "rpm 2: second request"
is "$(chat bob-secret-token m-one)" 429 "rpm 2: third request in the minute is 429"
is "$(jget "$(body)" 'j["error"]["code"]')" rate_limit_exceeded "... rate_limit_exceeded"
ra=$(hdr Retry-After)
like "$ra" '^[0-9]+$' "... with Retry-After ($ra s)"
[ "${ra:-0}" -ge 1 ] && [ "${ra:-99}" -le 61 ]
ok $? "... of about a minute at most (the window counts whole seconds)"

# ---- max_concurrent ----
mock_mode A u3 "slow;delay_ms=1500"
chat carol-secret-token slowx > "$TMP/slow.code" &
slow_pid=$!
sleep 0.5
is "$(chat carol-secret-token m-one)" 429 "max_concurrent 1: a second request in flight is 429"
like "$(body)" 'max_concurrent' "... naming the limit"
wait $slow_pid
is "$(cat "$TMP/slow.code")" 200 "... and the first one finishes"
is "$(chat carol-secret-token m-one)" 200 "... after which the key works again"

# ---- daily_tokens: checked before, charged after ----
is "$(chat dave-secret-token m-one)" 200 "daily_tokens 20: first request (13 tokens)"
is "$(chat dave-secret-token m-one)" 200 "... the second may overshoot (26)"
is "$(chat dave-secret-token m-one)" 429 "... the third is refused"
is "$(jget "$(body)" 'j["error"]["code"]')" insufficient_quota "... insufficient_quota"
ra=$(hdr Retry-After)
secs_to_midnight=$(( $(date -d 'tomorrow 00:00' +%s) - $(date +%s) ))
[ -n "$ra" ] && [ "$ra" -ge $((secs_to_midnight - 5)) ] && [ "$ra" -le $((secs_to_midnight + 5)) ]
ok $? "... with Retry-After until local midnight ($ra s, ${secs_to_midnight} s)"

# ---- include_usage ----
mock_mode A u1 "stream;chunks=4"
is "$(chat alice-secret-token m-one ',"stream":true')" 200 "a stream without include_usage"
rec=$(last_record "$PA")
is "$(jget "$rec" 'j[0]["stream_options"]')" '{"include_usage": true}' "the upstream got include_usage added"
unlike "$(body)" '"choices":\[\]' "the usage-only chunk is hidden from a client that did not ask"
like "$(body)" 'data: \[DONE\]' "... and the stream ends as usual"
is "$(chat alice-secret-token m-one ',"stream":true,"stream_options":{"include_usage":true}')" 200 \
    "a stream with include_usage"
like "$(body)" '"choices":\[\],"usage":\{' "the usage chunk reaches a client that asked for it"
is "$(chat alice-secret-token m-one ',"stream":true,"stream_options":{"include_usage":false}')" 200 \
    "include_usage: false"
rec=$(last_record "$PA")
is "$(jget "$rec" 'j[0]["stream_options"]')" '{"include_usage": true}' "... turned on upstream"
unlike "$(body)" '"choices":\[\]' "... and the chunk hidden"
mock_mode B v1 "stream;chunks=3"
is "$(chat alice-secret-token nousage ',"stream":true')" 200 "stream_usage: false"
rec=$(last_record "$PB")
is "$(jget "$rec" 'j[0]["has_stream_options"]')" False "... adds nothing"

mock_mode A u2 "stream;chunks=3;reject_stream_options=1"
is "$(chat alice-secret-token other ',"stream":true')" 200 "a provider that refuses stream_options: retried without"
rec=$(curl -s "http://127.0.0.1:$PA/_mock/requests?n=2")
is "$(jget "$rec" '[r["has_stream_options"] for r in j]')" '[true, false]' "... first with, then without"
like "$(cat "$GW_LOG")" 'provider pa refuses stream_options' "... logged"
is "$(chat alice-secret-token other ',"stream":true')" 200 "the next stream to that provider"
rec=$(last_record "$PA")
is "$(jget "$rec" 'j[0]["has_stream_options"]')" False "... goes without it (remembered)"
mock_mode A u1 null
mock_mode A u2 null

# ---- the usage API ----
rows=$(usage_rows "?from=$TODAY&to=$TODAY")
is "$(jget "$rows" 'j["code"]')" 200 "GET /api/admin/usage"
sum() {  # sum KEY ALIAS FIELD
    jget "$rows" "sum(r['$3'] for r in j['data']['rows'] if r['key']=='$1' and r['alias']=='$2')"
}
is "$(sum dave m-one requests)" 2 "dave: 2 requests"
is "$(sum dave m-one total_tokens)" 26 "dave: 26 tokens"
is "$(sum dave m-one prompt_tokens)" 20 "dave: prompt tokens"
is "$(sum dave m-one cached_tokens)" 4 "dave: cached tokens"
is "$(sum 'api_keys[0]' other requests)" 1 "a legacy key is accounted as api_keys[0]"
is "$(sum alice m-one completion_tokens)" 12 "streams are accounted (one answer and three streams of 3 words)"
is "$(jget "$rows" '[r for r in j["data"]["rows"] if r["key"]=="alice"][0]["day"]')" "$TODAY" "rows carry the local day"
is "$(jget "$(usage_rows '?from=2000-01-01&to=2000-01-02')" 'len(j["data"]["rows"])')" 0 "a range without usage"
is "$(jget "$(usage_rows '?from=yesterday')" 'j["code"]')" 400 "a bad date: 400"
is "$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/api/admin/usage")" 401 "the usage API needs the admin key"

# ---- metrics and the access log ----
m=$(curl -s -H "Authorization: Bearer admin-key-for-tests" "$GW_URL/metrics")
like "$m" 'autoswitch_tokens_total\{key="dave",alias="m-one",provider="pa",type="prompt"\} 20' "tokens_total by key"
like "$m" 'autoswitch_key_requests_total\{key="bob",code="4xx"\} 3' "key_requests_total by code"
like "$m" 'autoswitch_key_refusals_total\{key="bob",reason="rpm"\} 1' "refusals by reason"
like "$m" 'autoswitch_key_refusals_total\{key="bob",reason="model"\} 1' "... the allow-list"
like "$m" 'autoswitch_key_refusals_total\{key="",reason="invalid"\} 1' "... unknown keys"
like "$m" 'autoswitch_key_tokens_today\{key="dave"\} 26' "tokens of today per key"
like "$(cat "$GW_LOG")" 'POST /v1/chat/completions 200 .* key=dave tokens=10/3' "the access log names the key and tokens"
unlike "$(cat "$GW_LOG")" 'secret-token' "no token in the log"

# ---- keys through the admin API ----
keys=$(curl -s "${ADM[@]}" "$GW_URL/api/admin/keys")
is "$(jget "$keys" '[k["name"] for k in j["data"]["keys"]][:2]')" '["alice", "bob"]' "GET /api/admin/keys lists them"
unlike "$keys" 'alice-secret-token' "... masked"
is "$(jget "$keys" '[k for k in j["data"]["keys"] if k["name"]=="dave"][0]["state"]["tokens_today"]')" 26 \
    "... with their state"
made=$(curl -s "${ADM[@]}" "$GW_URL/api/admin/keys" -d '{"name":"gina","rpm":5,"models":["m-one"]}')
is "$(jget "$made" 'j["code"]')" 200 "POST /api/admin/keys creates one"
tok=$(jget "$made" 'j["data"]["key"]')
like "$tok" '^sk-as-[0-9a-f]{48}$' "... the generated token is shown once"
unlike "$(cat "$TMP/cfg.yaml")" "$tok" "... and the file keeps only its SHA-256"
like "$(cat "$TMP/cfg.yaml")" "key_sha256: \"?$(printf '%s' "$tok" | sha256sum | cut -d' ' -f1)" "... (this one)"
is "$(chat "$tok" m-one)" 200 "the new key works"
is "$(chat "$tok" other)" 403 "... with its models"
is "$(jget "$(curl -s "${ADM[@]}" "$GW_URL/api/admin/keys" -d '{"name":"gina"}')" 'j["code"]')" 409 "a second key of that name: 409"
chg=$(curl -s -X PUT "${ADM[@]}" "$GW_URL/api/admin/keys/gina" -d '{"disabled":true}')
is "$(jget "$chg" 'j["code"]')" 200 "PUT /api/admin/keys/gina changes it"
is "$(chat "$tok" m-one)" 401 "... now disabled"
like "$(cat "$TMP/cfg.yaml")" 'rpm: 5' "... its other settings kept"
is "$(chat alice-secret-token m-one)" 200 "keys the change did not touch keep their token"
is "$(chat dave-secret-token m-one)" 429 "... and their limiter state"
del=$(curl -s -X DELETE "${ADM[@]}" "$GW_URL/api/admin/keys/gina")
is "$(jget "$del" 'j["code"]')" 200 "DELETE /api/admin/keys/gina"
is "$(chat "$tok" m-one)" 401 "... and it is gone"
is "$(jget "$(curl -s -X DELETE "${ADM[@]}" "$GW_URL/api/admin/keys/nobody")" 'j["code"]')" 404 "removing an unknown key: 404"

# ---- restarts ----
stop_gateway
[ -s "$USAGE" ]
ok $? "the usage file is written at shutdown"
start_gateway "$TMP/cfg.yaml" || { echo "Bail out! gateway did not restart"; exit 1; }
rows=$(usage_rows "?from=$TODAY")
is "$(sum dave m-one total_tokens)" 26 "usage survives a restart"
is "$(chat dave-secret-token m-one)" 429 "... and so does today's daily_tokens count"
stop_gateway
printf '{"version":1,"rows":[{"day":' > "$USAGE"
start_gateway "$TMP/cfg.yaml" || { echo "Bail out! gateway did not start with a corrupt usage file"; exit 1; }
like "$(cat "$GW_LOG")" 'usage: .* does not load .* moved to' "a corrupt usage file is moved aside with a warning"
ls "$USAGE".corrupt-* >/dev/null 2>&1
ok $? "... where a person can look at it"
is "$(chat dave-secret-token m-one)" 200 "... and counting starts afresh"
stop_gateway
done_testing
