#!/usr/bin/env bash
# Anthropic's Messages API through the real binary against mock upstreams
# on 127.0.0.1: POST /v1/messages (JSON and SSE, event by event) and
# /v1/messages/count_tokens; client auth by x-api-key or Bearer and its
# errors in Anthropic's shape; what the upstream receives (the provider's
# key as x-api-key or Bearer, anthropic-version, anthropic-beta, never the
# client's key); failover before commit (529, 5xx, an error event first,
# an empty stream, no first token in time); the end of a stream broken
# after content; count_tokens 404s passed as they are; providers without
# anthropic_base_url never used; GET /v1/models in Anthropic's shape; the
# gateway's own errors (400, 405, 413) on Anthropic routes in Anthropic's
# shape; and the OpenAI side of the same gateway.
. "$(dirname "$0")/../lib.sh"

# The helpers run python3 often: call the interpreter itself, not a
# version manager's shim.
mkdir -p "$TMP/bin"
ln -s "$(python3 -c 'import sys; print(sys.executable)')" "$TMP/bin/python3"
PATH=$TMP/bin:$PATH

# A: OpenAI and Anthropic, key ka (x-api-key on /v1/messages).
# B: Anthropic only, key kb taken as Authorization: Bearer.
# C: Anthropic only, key kc, no count_tokens route (404).
# D: OpenAI only, no key.
start_mock A --require-auth ka || exit 1
start_mock B --require-auth kb --anthropic-auth bearer || exit 1
start_mock C --require-auth kc --no-count-tokens || exit 1
start_mock D || exit 1
PA=$(mock_port A); PB=$(mock_port B); PC=$(mock_port C); PD=$(mock_port D)
CK="client-key-7f3a9c"            # the client's key: must never reach an upstream
ADMIN_KEY="anthropic-admin-key-0123456789"
# Aliases served by pa (first) and pb (next): one per failover scenario, so
# that no scenario's cooldown or failure count touches another.
FO="f529 f529s f500 f503s ferr ferrs fempty fokerr dead busy cut cutc erra ft"

{
    cat <<Y
api_keys: ["$CK"]
admin_key: "$ADMIN_KEY"
forward_headers: ["X-Mock-Mode"]   # the tests steer the mocks through the gateway
max_retries: 3
model_retries: 0                   # a failure goes to the next candidate at once
max_failures: 1000
stream_idle_timeout: 2
max_body_bytes: 1048576
providers:
  - name: pa
    base_url: http://127.0.0.1:$PA
    anthropic_base_url: http://127.0.0.1:$PA
    api_key: ka
    timeout: 5
    model_mappings:
      - {upstream: a-ok, alias: ok}
      - {upstream: a-st, alias: st}
      - {upstream: a-ft, alias: ft, first_token_timeout: 1}
Y
    for f in $FO; do [ "$f" = ft ] || echo "      - {upstream: a-$f, alias: $f}"; done
    cat <<Y
  - name: pb
    anthropic_base_url: http://127.0.0.1:$PB/v1
    anthropic_auth: bearer
    api_key: kb
    priority: 1
    timeout: 5
    model_mappings:
      - {upstream: b-bb, alias: bb}
      - {upstream: b-ct, alias: ct}
Y
    for f in $FO; do echo "      - {upstream: b-$f, alias: $f}"; done
    cat <<Y
  - name: pc
    anthropic_base_url: http://127.0.0.1:$PC
    api_key: kc
    timeout: 5
    model_mappings:
      - {upstream: c-ct, alias: ct, max_failures: 2}
  - name: pd
    base_url: http://127.0.0.1:$PD
    priority: -5
    timeout: 5
    model_mappings:
      - {upstream: d-oa, alias: oa}
      - {upstream: d-ok, alias: ok}
Y
} > "$TMP/cfg.yaml"
start_gateway "$TMP/cfg.yaml" || { echo "Bail out! gateway did not start"; exit 1; }

# ---------------------------------------------------------------- helpers
AK=(-H "x-api-key: $CK" -H "Content-Type: application/json")
# msg ALIAS EXTRA_JSON [curl args...]: POST /v1/messages; body in $BODY
# (and $TMP/body), head in $TMP/h, curl's exit status in $CURL_RC.
msg() {
    local alias=$1 extra=$2
    shift 2
    MBODY="{\"model\":\"$alias\",\"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]$extra}"
    curl -s -N -o "$TMP/body" -D "$TMP/h" --max-time 30 "$@" "$GW_URL/v1/messages" -d "$MBODY"
    CURL_RC=$?
    BODY=$(cat "$TMP/body")
}
smsg() { local a=$1 e=$2; shift 2; msg "$a" ",\"stream\":true$e" "$@"; }
hdr() { grep -i "^$1:" "$TMP/h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
status() { head -1 "$TMP/h" | awk '{print $2}'; }
hits() {  # hits MOCK MODEL: the mock's hit count for the model
    local h
    h=$(curl -s "http://127.0.0.1:$(mock_port "$1")/_mock/stats" | grep -o '"hits": *{[^}]*}' |
        grep -o "\"$2\": *[0-9]*" | grep -o '[0-9]*$')
    echo "${h:-0}"
}
path_hits() {  # path_hits MOCK PATH
    mock_stats "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["paths"].get(sys.argv[1],0))' "$2"
}
# rec MOCK EXPR: EXPR on the mock's last request record r (h: its header_map)
rec() {
    curl -s "http://127.0.0.1:$(mock_port "$1")/_mock/requests?n=1" | python3 -c '
import json,sys
r=json.load(sys.stdin)[-1]; h=r["header_map"]
v=eval(sys.argv[1]); print(json.dumps(v) if isinstance(v,(dict,list)) else v)' "$2"
}
stats() { curl -s -H "X-API-Key: $ADMIN_KEY" "$GW_URL/internal/stats"; }
model() {  # model PROVIDER UPSTREAM FIELD: the anthropic entry of /internal/stats
    stats | python3 -c '
import json,sys
p,u,f=sys.argv[1:4]
for pr in json.load(sys.stdin)["providers"]:
    for m in pr["model_healths"]:
        if m["provider_name"]==p and m["upstream_model"]==u and m["dialect"]=="anthropic":
            v=m[f]; print(json.dumps(v) if not isinstance(v,str) else v); sys.exit()
print("missing")' "$1" "$2" "$3"
}
# anthropic_err JSON: "error/<error.type>" when the body is exactly
# Anthropic's error shape {"type":"error","error":{"type","message"}},
# else "not anthropic: <the body>"
anthropic_err() {
    python3 -c '
import json,sys
try:
    j=json.loads(sys.argv[1])
    assert set(j)=={"type","error"} and j["type"]=="error"
    e=j["error"]; assert set(e)=={"type","message"} and isinstance(e["message"],str) and e["message"]
    print("error/"+e["type"])
except Exception:
    print("not anthropic: "+sys.argv[1][:300])' "$1"
}
# asse FILE: what a client saw in an Anthropic stream, as JSON: events
# (the event: names in order), match (every event: name equals its data's
# "type" and every data line has its event: line), text (text deltas
# joined), start_models (message_start models), usage_start, usage_delta,
# stop_reason, errors (the error types of error events), bad_json.
cat > "$TMP/asse.py" <<'PY'
import json, sys
raw = open(sys.argv[1], "rb").read().decode("utf-8", "replace").replace("\r\n", "\n")
out = {"events": [], "match": True, "text": "", "start_models": [], "usage_start": None,
       "usage_delta": None, "stop_reason": None, "errors": [], "bad_json": 0, "comments": 0}
for block in raw.split("\n\n"):
    if not block.strip():
        continue
    name, data = None, []
    for line in block.split("\n"):
        if line.startswith(":"):
            out["comments"] += 1
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    if not data:
        continue
    try:
        o = json.loads("\n".join(data))
    except ValueError:
        out["bad_json"] += 1
        continue
    out["events"].append(name)
    if name is None or name != o.get("type"):
        out["match"] = False
    t = o.get("type")
    if t == "message_start":
        out["start_models"].append(o["message"].get("model"))
        out["usage_start"] = o["message"].get("usage")
    elif t == "content_block_delta" and o["delta"].get("type") == "text_delta":
        out["text"] += o["delta"]["text"]
    elif t == "message_delta":
        out["usage_delta"] = o.get("usage")
        out["stop_reason"] = o["delta"].get("stop_reason")
    elif t == "error":
        out["errors"].append(o["error"]["type"])
print(json.dumps(out))
PY
asse() { python3 "$TMP/asse.py" "$TMP/body"; }
WORDS8="w1 w2 w3 w4 w5 w6 w7 w8 "
FULL='["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]'
# norm_ids: msg_mock<n> ids differ between two requests to the same mock
norm_ids() { sed -E 's/"id":"msg_mock[0-9]+"/"id":"msg_X"/g'; }

# ====================================================== non-stream answers
msg ok "" "${AK[@]}"
is "$(status)" 200 "non-stream: 200"
like "$(hdr Content-Type)" '^application/json' "non-stream: application/json"
is "$(hdr X-Autoswitch-Provider)/$(hdr X-Autoswitch-Model)" "pa/a-ok" \
    "non-stream: served by the Anthropic provider (pd, OpenAI only, has the alias at a better priority)"
is "$(jget "$BODY" 'j["model"]')" ok "non-stream: the answer's model is rewritten to the alias"
is "$(jget "$BODY" 'j["type"]+"/"+j["role"]+"/"+j["content"][0]["text"]+"/"+j["stop_reason"]')" \
    "message/assistant/$WORDS8/end_turn" "non-stream: the message passes"
is "$(jget "$BODY" 'j["usage"]')" \
    '{"input_tokens": 10, "output_tokens": 8, "cache_read_input_tokens": 2, "cache_creation_input_tokens": 0}' \
    "non-stream: usage intact"
direct=$(curl -s -H "x-api-key: ka" "http://127.0.0.1:$PA/v1/messages" -d "${MBODY/\"ok\"/\"a-ok\"}")
is "$(printf '%s' "$BODY" | norm_ids)" "$(printf '%s' "$direct" | sed 's/"model":"a-ok"/"model":"ok"/' | norm_ids)" \
    "non-stream: bytes identical to the upstream's except the model"
is "$(rec A 'r["path"]+" "+r["model"]')" "/v1/messages a-ok" "the upstream got /v1/messages with the upstream model"
is "$(rec A 'r["body"]')" "${MBODY/\"ok\"/\"a-ok\"}" "... the body as the client sent it but the model"
is "$(hits D d-ok)" 0 "the OpenAI-only provider got nothing"

# ====================================================== what the upstream receives
msg ok "" "${AK[@]}"
is "$(rec A 'h.get("x-api-key")')" ka "upstream: x-api-key is the provider's key"
is "$(rec A '"authorization" in h')" False "upstream: no Authorization header next to x-api-key"
is "$(rec A 'h.get("anthropic-version")')" 2023-06-01 "upstream: anthropic-version 2023-06-01 when the client sent none"
is "$(rec A '"anthropic-beta" in h')" False "upstream: no anthropic-beta when the client sent none"
is "$(rec A "any('$CK' in v for v in h.values())")" False "upstream: the client's x-api-key is not forwarded"
msg ok "" -H "Authorization: Bearer $CK" -H "anthropic-version: 2024-10-22" \
    -H "anthropic-beta: prompt-caching-2024-07-31,token-efficient-tools-2025-02-19"
is "$(status)" 200 "client auth by Authorization: Bearer"
is "$(rec A 'h.get("anthropic-version")')" 2024-10-22 "upstream: the client's anthropic-version"
is "$(rec A 'h.get("anthropic-beta")')" "prompt-caching-2024-07-31,token-efficient-tools-2025-02-19" \
    "upstream: the client's anthropic-beta"
is "$(rec A 'h.get("x-api-key")')/$(rec A '"authorization" in h')" "ka/False" \
    "upstream: the provider's x-api-key, not the client's bearer"
is "$(rec A "any('$CK' in v for v in h.values())")" False "upstream: the client's bearer key is not forwarded"
is "$(rec A '[n for n,_ in r["headers"]].count("anthropic-version")')" 1 "upstream: one anthropic-version header"
msg bb "" "${AK[@]}"
is "$(status)/$(hdr X-Autoswitch-Provider)" "200/pb" "anthropic_auth: bearer provider answers"
is "$(rec B 'h.get("authorization")')" "Bearer kb" "upstream (anthropic_auth: bearer): Authorization: Bearer <provider key>"
is "$(rec B '"x-api-key" in h')" False "upstream (anthropic_auth: bearer): no x-api-key"
is "$(rec B 'h.get("anthropic-version")')" 2023-06-01 "upstream (anthropic_auth: bearer): anthropic-version default"
is "$(rec B 'r["path"]')" /v1/messages "anthropic_base_url ending in /v1: the path is not doubled"
is "$(rec B "any('$CK' in v for v in h.values())")" False "upstream (bearer provider): the client's key is not forwarded"
curl -s -o "$TMP/body" -D "$TMP/h" "${AK[@]}" "$GW_URL/v1/messages?beta=true" \
    -d '{"model":"ok","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}'
is "$(status)/$(rec A 'r["path"]')" "200//v1/messages?beta=true" "/v1/messages?beta=true: routed, the query reaches the upstream"

# ====================================================== client auth
before=$(path_hits A /v1/messages)
msg ok "" -H "x-api-key: wrong-key"
is "$(status)" 401 "a wrong x-api-key: 401"
is "$(anthropic_err "$BODY")" error/authentication_error "... in Anthropic's shape (authentication_error)"
msg ok "" -H "Authorization: Bearer wrong-key"
is "$(status)" 401 "a wrong bearer key on /v1/messages: 401"
is "$(anthropic_err "$BODY")" error/authentication_error "... in Anthropic's shape"
msg ok ""
is "$(status)" 401 "no key: 401"
is "$(anthropic_err "$BODY")" error/authentication_error "... in Anthropic's shape"
curl -s -o "$TMP/body" -D "$TMP/h" "$GW_URL/v1/messages/count_tokens" -H "x-api-key: nope" \
    -d '{"model":"ok","messages":[{"role":"user","content":"hi"}]}'
is "$(status)/$(anthropic_err "$(cat "$TMP/body")")" 401/error/authentication_error \
    "a wrong key on count_tokens: 401 in Anthropic's shape"
is "$(path_hits A /v1/messages)" "$before" "refused requests never reach an upstream"

# ====================================================== streams
smsg st "" "${AK[@]}"
is "$(status)" 200 "stream: 200"
like "$(hdr Content-Type)" '^text/event-stream' "stream: text/event-stream"
is "$(hdr X-Autoswitch-Provider)" pa "stream: served by pa"
a=$(asse)
is "$(jget "$a" 'j["events"]')" "$FULL" \
    "stream: message_start, content_block_start, ping, 8 deltas, content_block_stop, message_delta, message_stop, in order"
is "$(jget "$a" 'j["match"]')" True "stream: every event keeps its event: line, naming its data's type"
is "$(jget "$a" 'j["start_models"]')" '["st"]' "stream: the model in message_start is rewritten to the alias"
is "$(jget "$a" 'j["text"]')" "$WORDS8" "stream: the text deltas pass"
is "$(jget "$a" 'j["usage_start"]["input_tokens"], j["usage_delta"]["output_tokens"], j["stop_reason"]')" \
    "(10, 8, 'end_turn')" "stream: usage of message_start and message_delta intact, stop_reason"
is "$(rec A 'r["stream"] and h.get("accept")')" text/event-stream "stream: the upstream was asked for a stream"
is "$(rec A 'r["body"]')" "${MBODY/\"st\"/\"a-st\"}" "stream: the upstream body as the client sent it but the model (nothing added)"
sbody=$MBODY
for opt in "" "crlf=1" "split=1" "split=1;crlf=1;words=5"; do
    smsg st "" "${AK[@]}" ${opt:+-H "X-Mock-Mode: stream;$opt"}
    curl -s -N ${opt:+-H "X-Mock-Mode: stream;$opt"} -H "x-api-key: ka" "http://127.0.0.1:$PA/v1/messages" \
        -d "${sbody/\"st\"/\"a-st\"}" | sed 's/"model":"a-st"/"model":"st"/' | norm_ids > "$TMP/want.sse"
    norm_ids < "$TMP/body" > "$TMP/got.sse"
    check "stream${opt:+ ($opt)}: bytes identical to the upstream's except the model" -- cmp -s "$TMP/want.sse" "$TMP/got.sse"
done
# Events are forwarded as they come, not gathered.
out=$(python3 - "$GW_PORT" "$CK" <<'PY'
import socket, sys, time, json
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
body = json.dumps({"model": "st", "max_tokens": 9, "stream": True, "messages": [{"role": "user", "content": "x"}]})
s.sendall(("POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: %s\r\nContent-Type: application/json\r\n"
           "X-Mock-Mode: stream;words=4;gap_ms=400\r\nContent-Length: %d\r\n\r\n%s"
           % (sys.argv[2], len(body), body)).encode())
t0 = time.time(); seen = {}; buf = b""
s.settimeout(10)
while b"message_stop" not in buf and time.time() - t0 < 10:
    c = s.recv(65536)
    if not c:
        break
    buf += c
    for w in (b'"w1 "', b'"w4 "'):
        if w in buf and w not in seen:
            seen[w] = time.time() - t0
print(len(seen) == 2 and seen[b'"w4 "'] - seen[b'"w1 "'] >= 1.0)
PY
)
is "$out" True "stream: events reach the client as the upstream sends them"
smsg st "" "${AK[@]}" -H "X-Mock-Mode: stream;first_token_ms=1200;keepalive_ms=200"
a=$(asse)
is "$(hdr X-Autoswitch-Provider)/$(jget "$a" 'j["text"]')/$(jget "$a" 'j["events"][-1]')" "pa/$WORDS8/message_stop" \
    "stream: pings before the first token (within the timeout) do not fail it"
is "$(jget "$a" 'j["match"]')" True "... and every event keeps its event: line"

smsg st "" "${AK[@]}" -H "X-Mock-Mode: stream;no_stop=1"
a=$(asse)
is "$(jget "$a" 'j["text"]')|$(jget "$a" 'j["errors"]')|$(jget "$a" 'j["events"][-1]')" "$WORDS8|[]|message_stop" \
    "a stream that ends cleanly after message_delta's stop_reason, without message_stop: complete, message_stop added"

# ====================================================== failover before commit
mock_mode A a-f529 529
msg f529 "" "${AK[@]}"
is "$(status)/$(hdr X-Autoswitch-Provider)/$(hdr X-Autoswitch-Attempts)" "200/pb/2" "529 overloaded: fails over to the next provider"
is "$(jget "$BODY" 'j["model"]+"|"+j["content"][0]["text"]')" "f529|$WORDS8" "... whose answer the client gets, model rewritten"
is "$(hits A a-f529)/$(hits B b-f529)" 1/1 "... one attempt each"
is "$(model pa a-f529 cooling_down)/$(model pa a-f529 consecutive_failures)" "true/0" \
    "... the 529 cools the model down (not a health failure)"
mock_mode A a-f529s 529
smsg f529s "" "${AK[@]}"
a=$(asse)
is "$(status)/$(hdr X-Autoswitch-Provider)" 200/pb "stream, 529 overloaded: fails over to the next provider"
is "$(jget "$a" 'j["events"]')|$(jget "$a" 'j["start_models"]')|$(jget "$a" 'j["text"]')" "$FULL|[\"f529s\"]|$WORDS8" \
    "... the client gets the whole stream of the next one, model rewritten"
mock_mode A a-f500 500
msg f500 "" "${AK[@]}"
is "$(status)/$(hdr X-Autoswitch-Provider)/$(hdr X-Autoswitch-Attempts)" "200/pb/2" "500: fails over to the next provider"
is "$(model pa a-f500 consecutive_failures)" 1 "... and counts against the model's health"
mock_mode A a-f503s 503
smsg f503s "" "${AK[@]}"
a=$(asse)
is "$(status)/$(hdr X-Autoswitch-Provider)/$(jget "$a" 'j["text"]')/$(jget "$a" 'j["errors"]')" "200/pb/$WORDS8/[]" \
    "stream, 503: fails over to the next provider"
mock_mode A a-ferr stream_error_first
smsg ferr "" "${AK[@]}"
a=$(asse)
is "$(status)/$(hdr X-Autoswitch-Provider)" 200/pb "stream whose first event is an error event: fails over"
is "$(jget "$a" 'j["events"]')|$(jget "$a" 'j["errors"]')" "$FULL|[]" "... the client sees none of it, only the next stream"
is "$(hits A a-ferr)" 1 "... (the first upstream was asked once)"
mock_mode A a-ferrs "stream_error_first;after_start=1"
smsg ferrs "" "${AK[@]}"
a=$(asse)
is "$(status)/$(hdr X-Autoswitch-Provider)" 200/pb "stream with message_start, ping, then an error event: fails over"
is "$(jget "$a" 'j["events"]')|$(jget "$a" 'j["start_models"]')" "$FULL|[\"ferrs\"]" \
    "... one message_start only (the failed attempt's is never sent)"
mock_mode A a-fempty stream_empty
smsg fempty "" "${AK[@]}"
a=$(asse)
is "$(status)/$(hdr X-Autoswitch-Provider)/$(jget "$a" 'j["text"]')" "200/pb/$WORDS8" \
    "stream with no content (message_start, message_stop): fails over"
mock_mode A a-fokerr ok_error
msg fokerr "" "${AK[@]}"
is "$(status)/$(hdr X-Autoswitch-Provider)/$(jget "$BODY" 'j["type"]')" 200/pb/message \
    "200 JSON carrying Anthropic's error shape: fails over"
mock_mode A a-ft "stream;first_token_ms=3000;keepalive_ms=200"
smsg ft "" "${AK[@]}"
a=$(asse)
is "$(status)/$(hdr X-Autoswitch-Provider)/$(jget "$a" 'j["text"]')" "200/pb/$WORDS8" \
    "first_token_timeout 1: a stream of only pings for 1 s fails over"
is "$(jget "$a" 'j["start_models"]')" '["ft"]' "... one message_start, the next provider's"
msg ok "" "${AK[@]}" -H "X-Mock-Mode: policy400"
is "$(status)/$(hdr X-Autoswitch-Attempts)" 400/1 "an upstream 400 is the client's: returned, no failover"
is "$(anthropic_err "$BODY")" error/invalid_request_error "... in Anthropic's shape, as sent"

# every candidate fails
mock_mode A a-dead 500
mock_mode B b-dead 502
msg dead "" "${AK[@]}"
is "$(status)" 502 "every provider failing: 502"
is "$(anthropic_err "$BODY")" error/api_error "... in Anthropic's shape (api_error)"
like "$(jget "$BODY" 'j["error"]["message"]')" '^all providers failed' "... saying all providers failed"
smsg dead "" "${AK[@]}"
is "$(status)/$(anthropic_err "$BODY")" 502/error/api_error "stream, every provider failing: 502 in Anthropic's shape"
mock_mode A a-busy 529
mock_mode B b-busy 529
msg busy "" "${AK[@]}"
like "$(status)" '^(502|503|529)$' "every provider overloaded (529): an error status"
like "$(anthropic_err "$BODY")" '^error/(api_error|overloaded_error)$' "... in Anthropic's shape (api_error or overloaded_error)"
# After every candidate was busy the gateway pauses and tries the last one
# again, at most twice (attempt.h ATT_BUSY_BACKOFFS): bounded, not endless.
hb=$(hits B b-busy)
is "$(hits A a-busy)/$([ "$hb" -ge 1 ] && [ "$hb" -le 3 ] && echo bounded || echo "$hb")" 1/bounded \
    "... the first asked once, the last at most 1 + 2 busy backoffs"

# ====================================================== broken after commit
mock_mode A a-cut "stream;cut_after=3"
smsg cut "" "${AK[@]}"
a=$(asse)
is "$(status)/$(hdr X-Autoswitch-Provider)" 200/pa "stream reset after 3 deltas: committed to the first provider"
is "$(jget "$a" 'j["text"]')" "w1 w2 w3 " "... the content before the cut reached the client"
is "$(jget "$a" 'j["events"][-1]')" error "... the stream ends with an event: error"
like "$(jget "$a" 'j["errors"]')" '^\["(api_error|overloaded_error)"\]$' "... one, of type api_error or overloaded_error"
is "$(jget "$a" 'j["match"]')" True "... its event: line names its data's type"
is "$(jget "$a" '"message_stop" in j["events"]')" False "... and no message_stop"
is "$CURL_RC" 0 "... the response itself ends cleanly (chunked terminator)"
is "$(hits B b-cut)" 0 "... nobody continues it (continuation off): the next provider is not asked"
is "$(model pa a-cut consecutive_failures)" 1 "... and it counts against the model's health"
mock_mode A a-cutc "stream;cut_after=2;cut=close"
smsg cutc "" "${AK[@]}"
a=$(asse)
is "$(jget "$a" 'j["text"]')|$(jget "$a" 'j["events"][-1]')" "w1 w2 |error" \
    "stream closed (FIN, no chunk terminator) after 2 deltas: ends with an event: error"
like "$(jget "$a" 'j["errors"]')" '^\["(api_error|overloaded_error)"\]$' "... of type api_error or overloaded_error"
is "$CURL_RC/$(hits B b-cutc)" 0/0 "... a clean end, nobody else asked"
mock_mode A a-erra "stream;error_after=2"
smsg erra "" "${AK[@]}"
a=$(asse)
is "$(jget "$a" 'j["text"]')|$(jget "$a" 'j["events"][-1]')" "w1 w2 |error" \
    "an upstream error event after content: the stream ends with an event: error"
like "$(jget "$a" 'j["errors"]')" '^\["(api_error|overloaded_error)"\]$' "... exactly one, api_error or overloaded_error"
is "$(jget "$a" 'j["match"]')/$(jget "$a" 'j["bad_json"]')" True/0 "... well formed"
is "$CURL_RC/$(hits B b-erra)" 0/0 "... a clean end, nobody else asked"

# ====================================================== count_tokens
ctb='{"model":"ok","messages":[{"role":"user","content":"hi"}]}'
curl -s -o "$TMP/body" -D "$TMP/h" "${AK[@]}" "$GW_URL/v1/messages/count_tokens" -d "$ctb"
is "$(status)/$(cat "$TMP/body")" '200/{"input_tokens":10}' "count_tokens passes through"
is "$(hdr X-Autoswitch-Provider)" pa "... served by the Anthropic provider"
is "$(rec A 'r["path"]+" "+r["model"]+" "+h.get("x-api-key","-")+" "+h.get("anthropic-version","-")')" \
    "/v1/messages/count_tokens a-ok ka 2023-06-01" "... the upstream got count_tokens, the upstream model, the provider's key, the version"
is "$(rec A 'r["body"]')" "${ctb/\"ok\"/\"a-ok\"}" "... and the body as sent but the model"
curl -s -o "$TMP/body" -D "$TMP/h" "${AK[@]}" "$GW_URL/v1/messages/count_tokens" \
    -d '{"model":"f500","messages":[{"role":"user","content":"hi"}]}'
is "$(status)/$(hdr X-Autoswitch-Provider)/$(cat "$TMP/body")" '200/pb/{"input_tokens":10}' \
    "count_tokens: a 500 fails over to the next provider"
direct=$(curl -s -H "x-api-key: kc" "http://127.0.0.1:$PC/v1/messages/count_tokens" \
    -d '{"model":"c-ct","messages":[{"role":"user","content":"hi"}]}')
before_c=$(path_hits C /v1/messages/count_tokens)
before_b=$(path_hits B /v1/messages/count_tokens)
ok404=0
for _ in 1 2 3; do
    curl -s -o "$TMP/body" -D "$TMP/h" "${AK[@]}" "$GW_URL/v1/messages/count_tokens" \
        -d '{"model":"ct","messages":[{"role":"user","content":"hi"}]}'
    [ "$(status)" = 404 ] && [ "$(cat "$TMP/body")" = "$direct" ] && [ "$(hdr X-Autoswitch-Attempts)" = 1 ] &&
        ok404=$((ok404 + 1))
done
is "$ok404" 3 "count_tokens on an upstream without it: its 404 passes to the client as is, 3 times of 3"
is "$(anthropic_err "$(cat "$TMP/body")")" error/not_found_error "... (Anthropic's not_found_error)"
is "$(( $(path_hits C /v1/messages/count_tokens) - before_c ))/$(( $(path_hits B /v1/messages/count_tokens) - before_b ))" 3/0 \
    "... one upstream request each, never failed over"
is "$(model pc c-ct state)/$(model pc c-ct consecutive_failures)" healthy/0 \
    "... not a failure: the model stays healthy (max_failures 2)"
msg ct "" "${AK[@]}"
is "$(status)/$(hdr X-Autoswitch-Provider)" 200/pc "... and /v1/messages still goes to it"

# ====================================================== providers without anthropic_base_url
msg oa "" "${AK[@]}"
is "$(status)" 404 "an alias only an OpenAI provider serves: 404 on /v1/messages"
is "$(anthropic_err "$BODY")" error/not_found_error "... not_found_error in Anthropic's shape"
smsg oa "" "${AK[@]}"
is "$(status)/$(anthropic_err "$BODY")" 404/error/not_found_error "... streamed too"
curl -s -o "$TMP/body" -D "$TMP/h" "${AK[@]}" "$GW_URL/v1/messages/count_tokens" \
    -d '{"model":"oa","messages":[{"role":"user","content":"hi"}]}'
is "$(status)/$(anthropic_err "$(cat "$TMP/body")")" 404/error/not_found_error "... and on count_tokens"
msg no-such-alias "" "${AK[@]}"
is "$(status)/$(anthropic_err "$BODY")" 404/error/not_found_error "an unknown alias: 404 not_found_error"
is "$(path_hits D /v1/messages)/$(path_hits D /v1/messages/count_tokens)" 0/0 \
    "the OpenAI-only provider never got an Anthropic request"

# ====================================================== /v1/models
# shellcheck disable=SC2086  # $FO is a list of words
anth_aliases=$(printf '%s\n' bb ct ok st $FO | LC_ALL=C sort | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().split()))')
curl -s -o "$TMP/body" -D "$TMP/h" -H "x-api-key: $CK" -H "anthropic-version: 2023-06-01" "$GW_URL/v1/models"
L=$(cat "$TMP/body")
is "$(status)" 200 "GET /v1/models with anthropic-version: 200"
is "$(jget "$L" 'sorted(j)')" '["data", "first_id", "has_more", "last_id"]' "... Anthropic's list shape"
is "$(jget "$L" '[m["id"] for m in j["data"]]')" "$anth_aliases" "... the aliases /v1/messages serves, sorted"
is "$(jget "$L" 'all(sorted(m)==["created_at","display_name","id","type"] and m["type"]=="model" for m in j["data"])')" True \
    "... each {type: model, id, display_name, created_at}"
like "$(jget "$L" 'j["data"][0]["created_at"]')" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' \
    "... created_at an RFC 3339 time"
is "$(jget "$L" '[j["has_more"], j["first_id"]==j["data"][0]["id"], j["last_id"]==j["data"][-1]["id"]]')" \
    "[false, true, true]" "... has_more false, first_id and last_id"
L=$(curl -s -H "Authorization: Bearer $CK" -H "anthropic-version: 2023-06-01" "$GW_URL/v1/models")
is "$(jget "$L" '[m["id"] for m in j["data"]]')" "$anth_aliases" "... the same with Bearer auth"
curl -s -o "$TMP/body" -D "$TMP/h" -H "x-api-key: $CK" -H "anthropic-version: 2023-06-01" "$GW_URL/v1/models/ok"
is "$(status)/$(jget "$(cat "$TMP/body")" 'j["type"]+" "+j["id"]')" "200/model ok" "GET /v1/models/ok, Anthropic's shape"
curl -s -o "$TMP/body" -D "$TMP/h" -H "x-api-key: $CK" -H "anthropic-version: 2023-06-01" "$GW_URL/v1/models/oa"
is "$(status)/$(anthropic_err "$(cat "$TMP/body")")" 404/error/not_found_error \
    "GET /v1/models/<OpenAI-only alias> with anthropic-version: 404 not_found_error"
curl -s -o "$TMP/body" -D "$TMP/h" -H "x-api-key: wrong" -H "anthropic-version: 2023-06-01" "$GW_URL/v1/models"
is "$(status)/$(anthropic_err "$(cat "$TMP/body")")" 401/error/authentication_error \
    "GET /v1/models with a wrong x-api-key and anthropic-version: 401 in Anthropic's shape"
L=$(curl -s -H "Authorization: Bearer $CK" "$GW_URL/v1/models")
is "$(jget "$L" 'j["object"]')" list "GET /v1/models without anthropic-version: OpenAI's list"
is "$(jget "$L" '["oa" in (ids:=[m["id"] for m in j["data"]]), "ok" in ids, "bb" in ids, "ct" in ids]')" \
    "[true, true, false, false]" "... of the OpenAI aliases (Anthropic-only ones absent)"

# ====================================================== the gateway's own errors on Anthropic routes
curl -s -o "$TMP/body" -D "$TMP/h" "${AK[@]}" "$GW_URL/v1/messages" -d '{"model":'
is "$(status)/$(anthropic_err "$(cat "$TMP/body")")" 400/error/invalid_request_error "invalid JSON: 400 in Anthropic's shape"
curl -s -o "$TMP/body" -D "$TMP/h" "${AK[@]}" "$GW_URL/v1/messages" -d '{"model":"ok","max_tokens":5}'
is "$(status)/$(anthropic_err "$(cat "$TMP/body")")" 400/error/invalid_request_error "no messages: 400 in Anthropic's shape"
curl -s -o "$TMP/body" -D "$TMP/h" "${AK[@]}" "$GW_URL/v1/messages"
is "$(status)/$(anthropic_err "$(cat "$TMP/body")")" 405/error/invalid_request_error "GET /v1/messages: 405 in Anthropic's shape"
head -c 2000000 /dev/zero | tr '\0' 'a' | sed 's/^/{"model":"ok","max_tokens":5,"messages":[{"role":"user","content":"/; s/$/"}]}/' \
    > "$TMP/big.json"
curl -s -o "$TMP/body" -D "$TMP/h" "${AK[@]}" "$GW_URL/v1/messages" --data-binary @"$TMP/big.json"
is "$(status)/$(anthropic_err "$(cat "$TMP/body")")" 413/error/request_too_large \
    "a body over max_body_bytes on /v1/messages: 413 request_too_large in Anthropic's shape"

# ====================================================== the OpenAI side of the same gateway
BA=(-H "Authorization: Bearer $CK" -H "Content-Type: application/json")
curl -s -o "$TMP/body" -D "$TMP/h" "${BA[@]}" "$GW_URL/v1/chat/completions" \
    -d '{"model":"oa","messages":[{"role":"user","content":"hi"}]}'
B=$(cat "$TMP/body")
is "$(status)/$(hdr X-Autoswitch-Provider)" 200/pd "OpenAI chat on the same gateway: 200 from the OpenAI provider"
is "$(jget "$B" 'j["object"]+" "+j["model"]+" "+j["choices"][0]["message"]["content"]')" \
    "chat.completion oa hello from D" "... in OpenAI's shape, model rewritten"
curl -s -o "$TMP/body" -D "$TMP/h" "${BA[@]}" "$GW_URL/v1/chat/completions" \
    -d '{"model":"ok","messages":[{"role":"user","content":"hi"}]}'
is "$(status)/$(hdr X-Autoswitch-Provider)" 200/pd "an alias in both dialects: OpenAI requests follow the OpenAI priorities"
is "$(rec D '"authorization" in h or "x-api-key" in h or "anthropic-version" in h')" False \
    "... no credential (pd has none) and no Anthropic header upstream"
curl -s -N -o "$TMP/body" -D "$TMP/h" "${BA[@]}" "$GW_URL/v1/chat/completions" \
    -d '{"model":"oa","stream":true,"messages":[{"role":"user","content":"hi"}]}'
like "$(tail -c 30 "$TMP/body")" 'data: \[DONE\]' "an OpenAI stream on the same gateway ends with [DONE]"
unlike "$(cat "$TMP/body")" '^event:' "... without event: lines"
curl -s -o "$TMP/body" -D "$TMP/h" -H "Authorization: Bearer nope" "$GW_URL/v1/chat/completions" \
    -d '{"model":"oa","messages":[{"role":"user","content":"hi"}]}'
is "$(status)/$(jget "$(cat "$TMP/body")" 'j["error"]["type"]')" 401/invalid_api_key \
    "a wrong key on the OpenAI side: 401 in OpenAI's shape"
curl -s -o "$TMP/body" -D "$TMP/h" "${BA[@]}" "$GW_URL/v1/chat/completions" \
    -d '{"model":"bb","messages":[{"role":"user","content":"hi"}]}'
is "$(status)/$(jget "$(cat "$TMP/body")" 'j["error"]["code"]')" 404/model_not_found \
    "an Anthropic-only alias on /v1/chat/completions: 404 model_not_found"
is "$(path_hits B /v1/chat/completions)" 0 "... the Anthropic-only provider never got an OpenAI request"

stop_gateway
done_testing
