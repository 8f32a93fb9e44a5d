#!/usr/bin/env bash
# The proxy core against mock upstreams: a completion, byte-exact request
# rewriting, header filtering, client errors, every row of the failure table.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/proxy_env.sh"

# ---- a plain completion ----
body=$(chat ok)
is "$(status)" 200 "completion through the gateway: 200"
is "$(jget "$body" 'j["model"]')" "ok" "the response model is rewritten back to the alias"
is "$(jget "$body" 'j["choices"][0]["message"]["content"]')" "hello from A" "the answer is the upstream's"
is "$(hdr X-Autoswitch-Provider)" "pa" "X-Autoswitch-Provider names the provider"
is "$(hdr X-Autoswitch-Model)" "a-ok" "X-Autoswitch-Model names the upstream model"
is "$(hdr X-Autoswitch-Attempts)" "1" "X-Autoswitch-Attempts counts attempts"
like "$(hdr X-Request-Id)" '^[0-9a-f]{16}$' "an X-Request-Id is generated"

# ---- request rewriting, byte for byte ----
payload='{ "model" : "ok",
  "messages":[{"role":"user","content":"say \"model\": \"x\""}],
  "temperature": 1.50e0, "thinking": {"a":1}, "n": null,
  "user": "[undefined]", "verbosity":"low", "top_p":0.9 }'
body=$(curl -s "${AUTH[@]}" -H "X-Mock-Mode: echo" -H "X-Request-Id: my-req-1" -H "X-Custom: dropped" \
    -H "Accept-Encoding: gzip" -H "Cookie: c=1" -H "X-Api-Key: gw-secret" -H "OpenAI-Organization: org-evil" \
    -H "OpenAI-Project: proj-evil" -H "X-Forwarded-For: 1.2.3.4" -H "Forwarded: for=1.2.3.4" \
    -H "OpenAI-Beta: assistants=v2" -H "X-Stainless-Lang: js" -H "Idempotency-Key: idem-1" -H "X-Trace-Id: t-1" \
    -H "HTTP-Referer: https://client.example" \
    "$GW_URL/v1/chat/completions" --data-binary "$payload")
want='{ "model" : "a-ok",
  "messages":[{"role":"user","content":"say \"model\": \"x\""}],
  "temperature": 1.50e0, "top_p":0.9 }'
is "$(jget "$body" 'j["body"]')" "$want" "model replaced, exclude_params and null/[undefined] keys removed, other bytes identical"
is "$(jget "$body" 'j["headers"].get("Authorization")')" "Bearer key-a" "the provider's key is sent upstream"
is "$(jget "$body" '[k for k in j["headers"] if k.lower() in ("x-custom","openai-organization","openai-project","x-forwarded-for","forwarded")]')" "[]" \
    "headers pass by allow-list: arbitrary X-*, OpenAI-Organization/-Project and forwarding headers stay behind"
is "$(jget "$body" '[j["headers"].get(k) for k in ("OpenAI-Beta","X-Stainless-Lang","Idempotency-Key")]')" \
    '["assistants=v2", "js", "idem-1"]' "OpenAI-Beta, X-Stainless-* and Idempotency-Key pass"
is "$(jget "$body" '[j["headers"].get("X-Trace-Id"), j["headers"].get("X-Mock-Mode")]')" '["t-1", "echo"]' \
    "forward_headers of the provider and of the config add fields that pass"
is "$(jget "$body" '[j["headers"].get("HTTP-Referer"), j["headers"].get("X-Title")]')" \
    '["https://autoswitch.test", "proxy.t"]' "the provider's fixed headers are sent, not the client's"
is "$(jget "$body" 'j["headers"].get("X-Request-Id")')" "my-req-1" "the client's X-Request-Id is kept"
is "$(jget "$body" '[k for k in j["headers"] if k.lower() in ("accept-encoding","cookie","x-api-key")]')" "[]" \
    "Accept-Encoding, Cookie and X-Api-Key are not forwarded"
is "$(jget "$body" 'j["headers"].get("Content-Length")')" "$(jget "$body" 'str(len(j["body"].encode()))')" \
    "Content-Length matches the rewritten body"
is "$(jget "$body" 'j["path"]')" "/v1/chat/completions" "base_url without /v1 gets /v1 added"

body=$(curl -s "${AUTH[@]}" -H "X-Mock-Mode: echo" "$GW_URL/v1/chat/completions?api-version=1" \
    -d '{"model":"ok","messages":[{"role":"user","content":"x"}]}')
is "$(jget "$body" 'j["path"]')" "/v1/chat/completions?api-version=1" "the client's query string is passed on"
body=$(curl -s "${AUTH[@]}" -H "X-Mock-Mode: echo" "$GW_URL/v1/chat/completions" \
    -d '{"model":"pfx","messages":[{"role":"user","content":"x"}]}')
is "$(jget "$body" 'j["path"]')" "/api/v1/chat/completions" "a base_url path prefix is kept"
printf '{"model":"ok","messages":[{"role":"user","content":"chunked"}]}' > "$TMP/chunked.json"
body=$(curl -s "${AUTH[@]}" -H "X-Mock-Mode: echo" -H "Transfer-Encoding: chunked" \
    "$GW_URL/v1/chat/completions" --data-binary @"$TMP/chunked.json")
is "$(jget "$body" 'j["body"]')" '{"model":"a-ok","messages":[{"role":"user","content":"chunked"}]}' \
    "a chunked request body is read and sent on with Content-Length"

# ---- file uploads (multipart/form-data): the model field replaced, every other byte as sent ----
python3 - "$TMP" <<'PY'
import os, sys
d = sys.argv[1]
audio = os.urandom(3000) + b"\r\n--XyZ-not-quite\r\n" + os.urandom(100)
def form(model, extra=b""):
    return (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\n"
            b"Content-Type: audio/mpeg\r\n\r\n" + audio + b"\r\n--XyZ\r\n"
            b"Content-Disposition: form-data; name=\"model\"\r\n\r\n" + model + b"\r\n--XyZ\r\n"
            b"Content-Disposition: form-data; name=\"language\"\r\n\r\nen\r\n" + extra + b"--XyZ--\r\n")
open(d + "/form.bin", "wb").write(form(b"ok"))
open(d + "/form.want", "wb").write(form(b"a-ok"))
open(d + "/form-fo.bin", "wb").write(form(b"fo"))
open(d + "/form-stream.bin", "wb").write(form(b"ok", b"--XyZ\r\nContent-Disposition: form-data; name=\"stream\"\r\n\r\ntrue\r\n"))
open(d + "/form-nomodel.bin", "wb").write(form(b""))
open(d + "/form-cut.bin", "wb").write(form(b"ok")[:-9])
PY
FORM=(-H "Authorization: Bearer ck" -H "Content-Type: multipart/form-data; boundary=XyZ")
body=$(curl -s -D "$TMP/h" "${FORM[@]}" -H "X-Mock-Mode: echo" --data-binary @"$TMP/form.bin" \
    "$GW_URL/v1/audio/transcriptions")
is "$(status)/$(jget "$body" 'j["path"]')" "200//v1/audio/transcriptions" "an audio upload is proxied"
is "$(jget "$body" 'j["headers"]["Content-Type"]')" "multipart/form-data; boundary=XyZ" "... with the client's Content-Type"
jget "$body" 'j["body_b64"]' | base64 -d > "$TMP/form.got"
check "... the body byte for byte, the model field now the upstream model" -- cmp -s "$TMP/form.got" "$TMP/form.want"
for ep in audio/translations images/edits; do
    body=$(curl -s -D "$TMP/h" "${FORM[@]}" -H "X-Mock-Mode: echo" --data-binary @"$TMP/form.bin" "$GW_URL/v1/$ep")
    jget "$body" 'j["body_b64"]' | base64 -d > "$TMP/form.got"
    ok $([ "$(status)/$(jget "$body" 'j["path"]')" = "200//v1/$ep" ] && cmp -s "$TMP/form.got" "$TMP/form.want"; echo $?) \
        "/v1/$ep takes an upload too"
done
mock_mode A a-fo 500
body=$(curl -s -D "$TMP/h" "${FORM[@]}" --data-binary @"$TMP/form-fo.bin" "$GW_URL/v1/audio/transcriptions")
is "$(status)/$(hdr X-Autoswitch-Provider)/$(hdr X-Autoswitch-Model)/$(jget "$body" 'j["text"]')" "200/pb/b-fo/hello from B" \
    "an upload fails over like any request"
mock_mode A a-fo null
curl -s -D "$TMP/h" -o "$TMP/b" "${FORM[@]}" -H "X-Mock-Mode: stream" --data-binary @"$TMP/form-stream.bin" \
    "$GW_URL/v1/audio/transcriptions"
is "$(status)/$(hdr Content-Type)" "200/text/event-stream" "a stream field of true streams the answer"
like "$(cat "$TMP/b")" 'data: .*"model":"ok"' "... with the model rewritten back to the alias"
body=$(curl -s -D "$TMP/h" "${FORM[@]}" --data-binary @"$TMP/form-nomodel.bin" "$GW_URL/v1/audio/transcriptions")
is "$(status)/$(jget "$body" 'j["error"]["message"]')" "400/model is required" "an upload without a model: 400"
body=$(curl -s -D "$TMP/h" "${FORM[@]}" --data-binary @"$TMP/form-cut.bin" "$GW_URL/v1/audio/transcriptions")
is "$(status)/$(jget "$body" 'j["error"]["message"]')" "400/invalid multipart body: multipart body without its closing boundary" \
    "a cut-off upload: 400 that says why"
body=$(curl -s -D "$TMP/h" -H "Authorization: Bearer ck" -H "Content-Type: multipart/form-data" \
    --data-binary @"$TMP/form.bin" "$GW_URL/v1/audio/transcriptions")
like "$(status) $(jget "$body" 'j["error"]["message"]')" '^400 invalid multipart body: .*valid boundary' \
    "an upload without a boundary: 400 that says so"
body=$(curl -s -D "$TMP/h" "${FORM[@]}" --data-binary @"$TMP/form.bin" "$GW_URL/v1/chat/completions")
like "$(status) $(jget "$body" 'j["error"]["message"]')" '^400 invalid JSON body' "chat takes no upload: 400"
body=$(curl -s -D "$TMP/h" -H "Authorization: Bearer ck" -F "file=@$TMP/form.bin;type=audio/wav" -F model=nope \
    "$GW_URL/v1/audio/transcriptions")
is "$(status)/$(jget "$body" 'j["error"]["code"]')" "404/model_not_found" "curl -F with an unknown model: 404"

# ---- client errors ----
code=$(curl -s -o "$TMP/b" -w '%{http_code}' "${AUTH[@]}" "$GW_URL/v1/chat/completions" -d '{"model":')
is "$code" 400 "invalid JSON: 400"
like "$(cat "$TMP/b")" '"type":"invalid_request_error"' "invalid JSON: invalid_request_error"
code=$(curl -s -o "$TMP/b" -w '%{http_code}' "${AUTH[@]}" "$GW_URL/v1/chat/completions" -d '{"messages":[{"role":"user","content":"x"}]}')
like "$code $(cat "$TMP/b")" '^400 .*model is required' "missing model: 400 model is required"
code=$(curl -s -o "$TMP/b" -w '%{http_code}' "${AUTH[@]}" "$GW_URL/v1/chat/completions" -d '{"model":"ok","messages":[]}')
like "$code $(cat "$TMP/b")" '^400 .*messages is required' "empty messages: 400 messages is required"
code=$(curl -s -o "$TMP/b" -w '%{http_code}' "${AUTH[@]}" "$GW_URL/v1/chat/completions" -d '{"model":"nope","messages":[{"role":"user","content":"x"}]}')
like "$code $(cat "$TMP/b")" '^404 .*"code":"model_not_found"' "unknown alias: 404 model_not_found"
python3 -c 'print("{\"model\":\"ok\",\"messages\":" + "["*100000 + "]"*100000 + "}")' > "$TMP/deep.json"
code=$(curl -s -o "$TMP/b" -w '%{http_code}' "${AUTH[@]}" "$GW_URL/v1/chat/completions" --data-binary @"$TMP/deep.json")
like "$code $(cat "$TMP/b")" '^400 .*nesting' "100,000 nested arrays: 400, no crash"
code=$(printf '{"model":"ok","messages":[{"role":"user","content":"\xff\xfe"}]}' | curl -s -o "$TMP/b" -w '%{http_code}' "${AUTH[@]}" "$GW_URL/v1/chat/completions" --data-binary @-)
like "$code $(cat "$TMP/b")" '^400 .*UTF-8' "invalid UTF-8 in a JSON string: 400"

# ---- the failure table: each row fails over (or not) ----
failover_row() {  # failover_row MODE LABEL [EXTRA_JSON]
    mock_mode A a-fo "$1"
    local hb; hb=$(mock_hits B b-fo)
    body=$(chat fo "${3:-}")
    local st; st=$(status)
    is "$st/$(hdr X-Autoswitch-Provider)/$(hdr X-Autoswitch-Attempts)" "200/pb/2" "$2: fails over to the next candidate"
    is "$(mock_hits B b-fo)" "$((hb + 1))" "$2: the next candidate served it"
}
failover_row 500 "500"
failover_row 502 "502"
failover_row 503 "503"
failover_row 401 "401"
failover_row 403 "403"
failover_row 404 "404"
failover_row reset_headers "reset mid-headers"
failover_row stream_error_first "200 stream with an error event first" ',"stream":true'
failover_row stream_empty "200 stream with no content" ',"stream":true'
failover_row ok_error "200 JSON whose body is an error object"
like "$(grep 'fo #1 pa/a-fo failed' "$GW_LOG" | tail -1)" 'status 200 with an error: mock error in a 200' \
    "... the log names the upstream's message"
failover_row bad_head "never-ending response head"
failover_row lying_chunked "a chunked body that lies"
failover_row extra_after_body "bytes after the end of a Content-Length body"
failover_row hang "timeout (hang)"
like "$(grep 'fo #1 pa/a-fo failed: timeout' "$GW_LOG" | tail -1)" '\((199[0-9]|20[0-9][0-9])ms\)$' "the timeout is the provider's (2 s)"
failover_row "429;retry_after=1" "429"
sleep 1.2   # let the cooldown pass
body=$(chat dead)
is "$(status)/$(hdr X-Autoswitch-Provider)" "200/pb" "connection refused: fails over"
mock_mode A a-fo null

# ---- the serving upstream's rate-limit headers, and only those ----
mock_mode A a-fo 500
body=$(chat fo)
is "$(hdr X-Autoswitch-Provider)/$(hdr x-ratelimit-limit-requests)/$(hdr x-ratelimit-remaining-requests)" "pb/200/199" \
    "x-ratelimit-* headers come from the upstream that served"
is "$(grep -ci '^x-ratelimit-limit-requests:' "$TMP/h")" 1 "... and not also from the attempt that failed"
is "$(hdr X-Mock-Name)$(hdr Server)" "" "other upstream headers stay behind"
body=$(chat fo ',"stream":true')
is "$(hdr Content-Type)/$(hdr x-ratelimit-limit-requests)" "text/event-stream/200" "a stream carries them too"
mock_mode A a-fo 400
body=$(chat fo)
is "$(status)/$(hdr x-ratelimit-limit-requests)" "400/100" "a 4xx passed to the client carries its upstream's"
mock_mode A a-fo null

pass_row() {  # pass_row CODE
    mock_mode A a-fo "$1"
    local hb; hb=$(mock_hits B b-fo)
    body=$(chat fo)
    is "$(status)" "$1" "$1 is returned to the client as the upstream sent it"
    is "$(jget "$body" 'j["error"]["message"]')" "mock status $1" "$1 keeps the upstream's body"
    is "$(mock_hits B b-fo)" "$hb" "$1 does not fail over"
}
pass_row 400
pass_row 413
pass_row 422
mock_mode A a-fo null

# Every attempt fails: 502 in the OpenAI shape.
mock_mode A a-fo 500
mock_mode B b-fo 503
body=$(chat fo)
is "$(status)" 502 "all candidates failing: 502"
like "$(jget "$body" 'j["error"]["message"]')" '^all providers failed: status 503' "502 names the last error"
is "$(jget "$body" 'j["error"]["type"]')" "upstream_error" "502 type upstream_error"
mock_mode A a-fo null
mock_mode B b-fo null

stop_gateway
done_testing
