#!/usr/bin/env bash
# PORT_<name> / PID_<name> are assigned indirectly (printf -v) by start().
# shellcheck disable=SC2154
# Quick check of tests/mock_upstream.py itself (not of the gateway), with curl.
# Prints TAP; exits non-zero when a check fails.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MOCK=$HERE/mock_upstream.py
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mock-selftest.XXXXXX")
N=0
FAIL=0
PIDS=()

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT

pass() { N=$((N + 1)); echo "ok $N - $*"; }
fail() { N=$((N + 1)); FAIL=$((FAIL + 1)); echo "not ok $N - $*"; }
is() {  # is GOT WANT MSG
    if [ "$1" = "$2" ]; then pass "$3"; else
        fail "$3"; printf '#   got:  %s\n#   want: %s\n' "$(printf '%s' "$1" | head -c 600)" "$2"; fi
}
like() {  # like GOT ERE MSG
    if printf '%s' "$1" | grep -Eq -- "$2"; then pass "$3"; else
        fail "$3"; printf '#   got:  %s\n#   want: /%s/\n' "$(printf '%s' "$1" | head -c 600)" "$2"; fi
}
unlike() {  # unlike GOT ERE MSG
    if printf '%s' "$1" | grep -Eq -- "$2"; then
        fail "$3"; printf '#   got:  %s\n#   unwanted: /%s/\n' "$(printf '%s' "$1" | head -c 600)" "$2"; else pass "$3"; fi
}
# jp JSON EXPR: evaluate a python expression on the parsed JSON `j`
jp() {
    python3 -c 'import json,sys; j=json.loads(sys.argv[1]); r=eval(sys.argv[2]); print(json.dumps(r) if isinstance(r,(dict,list)) else r)' "$1" "$2" 2>&1
}

# start NAME [args...]: start a mock, set PORT_<NAME> and PID_<NAME>
start() {
    local name=$1
    shift
    local pf=$TMP/$name.port
    python3 "$MOCK" --port 0 --port-file "$pf" --name "$name" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    local deadline=$((SECONDS + 15))
    while [ ! -s "$pf" ] && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    [ -s "$pf" ] || return 1
    printf -v "PORT_$name" '%s' "$(cat "$pf")"
    printf -v "PID_$name" '%s' "$pid"
    # stdout line comes right after the port file
    deadline=$((SECONDS + 5))
    while ! grep -q listening "$TMP/$name.out" && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
}

start selftest
if [ -z "${PORT_selftest:-}" ]; then
    echo "not ok 1 - mock starts"; echo "1..1"; sed 's/^/# /' "$TMP/selftest.err"; exit 1
fi
pass "mock starts and writes the port file"
U="http://127.0.0.1:$PORT_selftest"
like "$(cat "$TMP/selftest.out")" "^listening 127\.0\.0\.1:$PORT_selftest\$" "prints 'listening 127.0.0.1:PORT'"

chat() {  # chat MODEL [curl args...] -> body
    local model=$1
    shift
    curl -s "$@" "$U/v1/chat/completions" -H 'Content-Type: application/json' -d "{\"model\":\"$model\"}"
}
code_of() {  # code_of [curl args...] -> status code (body to $TMP/body, headers to $TMP/hdr)
    curl -s -o "$TMP/body" -D "$TMP/hdr" -w '%{http_code}' "$@"
}

# ---- ok ----
code=$(code_of "$U/v1/chat/completions" -d '{"model":"gpt-x","messages":[]}')
is "$code" 200 "ok: 200"
b=$(cat "$TMP/body")
is "$(jp "$b" 'j["model"]')" gpt-x "ok: model echoed"
is "$(jp "$b" 'j["object"]')" chat.completion "ok: chat.completion object"
is "$(jp "$b" 'j["choices"][0]["message"]["content"]')" "hello from selftest" "ok: content names the mock"
like "$(cat "$TMP/hdr")" '^Content-Length: [0-9]+' "ok: Content-Length"
b=$(curl -s "$U/v1/embeddings" -d '{"model":"emb-1","input":"hi"}')
is "$(jp "$b" '(j["object"], j["model"], len(j["data"]))')" "('list', 'emb-1', 1)" "embeddings: list object with the model"
b=$(curl -s "$U/v1/chat/completions" -H 'X-Mock-Mode: ok;content=abc%3Bdef;body_bytes=5000' -d '{"model":"m"}')
like "$(jp "$b" 'j["choices"][0]["message"]["content"]')" '^abc;defxxx' "ok: content= and body_bytes="
is "$(( $(printf '%s' "$b" | wc -c) >= 4990 && $(printf '%s' "$b" | wc -c) <= 5010 ))" 1 "ok: body_bytes pads to about N"

# ---- stream ----
code=$(code_of -N "$U/v1/chat/completions" -d '{"model":"s-1","stream":true}')
is "$code" 200 "stream: 200"
like "$(cat "$TMP/hdr")" '^Content-Type: text/event-stream' "stream: text/event-stream"
like "$(cat "$TMP/hdr")" '^Transfer-Encoding: chunked' "stream: chunked"
b=$(cat "$TMP/body")
is "$(grep -c '^data: {' <<<"$b")" 3 "stream: 3 events by default"
is "$(grep -c '^data: \[DONE\]$' <<<"$b")" 1 "stream: ends with [DONE]"
is "$(tail -n 1 <<<"$b")" "data: [DONE]" "stream: [DONE] is last"
first=$(grep -m1 '^data: {' <<<"$b" | cut -c7-)
is "$(jp "$first" '(j["object"], j["model"], j["choices"][0]["delta"]["role"])')" "('chat.completion.chunk', 's-1', 'assistant')" "stream: first chunk has the role and the model"
b=$(curl -s -N "$U/v1/chat/completions" -H 'X-Mock-Mode: stream;chunks=5;gap_ms=10' -d '{"model":"s-1"}')
is "$(grep -c '^data: {' <<<"$b")" 5 "stream: chunks=5 via header"
like "$(grep '^data: {' <<<"$b" | sed -n 5p)" '"content":"tok4 "' "stream: tok<i> contents"
b=$(curl -s -N "$U/v1/chat/completions" -H 'X-Mock-Mode: stream;crlf=1;split=1' -d '{"model":"s-1"}')
is "$(grep -c $'^data: .*\r$' <<<"$b")" 4 "stream: crlf=1 + split=1 still 3 events + [DONE]"
b=$(curl -s -N "$U/v1/chat/completions" -H 'X-Mock-Mode: stream;no_done=1' -d '{"model":"s-1"}')
unlike "$b" 'DONE' "stream: no_done=1"
n=$(curl -s -N "$U/v1/chat/completions" -H 'X-Mock-Mode: stream;total_bytes=2000000;event_bytes=4096' -d '{"model":"s-1"}' | wc -c)
is "$(( n >= 2000000 && n < 2100000 ))" 1 "stream: total_bytes=2000000 sends about that much ($n)"
b=$(curl -s -N -D "$TMP/hdr" "$U/v1/chat/completions" -H 'X-Mock-Mode: stream;close=1' -d '{"model":"s-1"}')
unlike "$(cat "$TMP/hdr")" 'Transfer-Encoding' "stream: close=1 is not chunked"
is "$(grep -c '^data: ' <<<"$b")" 4 "stream: close=1 delivers all events"
b=$(curl -s -N "$U/v1/chat/completions" -H 'X-Mock-Mode: stream_error_first' -d '{"model":"s-1"}')
is "$(grep -m1 '^data: ' <<<"$b")" 'data: {"error":{"message":"mock stream error","type":"server_error","code":"mock"}}' "stream_error_first"
b=$(curl -s -N "$U/v1/chat/completions" -H 'X-Mock-Mode: stream_error_first;string=1' -d '{"model":"s-1"}')
is "$(grep -m1 '^data: ' <<<"$b")" 'data: {"error":"mock stream error"}' "stream_error_first;string=1"
b=$(curl -s -N "$U/v1/chat/completions" -H 'X-Mock-Mode: stream_empty' -d '{"model":"s-1"}')
is "$(grep '^data: ' <<<"$b")" 'data: [DONE]' "stream_empty"

# ---- status ----
for c in 500 502 503 400 401 403 404 413 422; do
    code=$(code_of "$U/v1/chat/completions" -H "X-Mock-Mode: $c" -d '{"model":"e"}')
    [ "$code" = "$c" ] || break
done
is "$code" "$c" "status shortcuts 500..422"
is "$(jp "$(cat "$TMP/body")" 'j["error"]["message"], j["error"]["type"], j["error"]["code"]')" "('mock status 422', 'mock_error', 422)" "status: OpenAI-shaped error body"
is "$(code_of "$U/v1/chat/completions" -H 'X-Mock-Mode: status;code=504' -d '{}')" 504 "status;code=504"
is "$(code_of "$U/v1/chat/completions" -H 'X-Mock-Mode: status' -d '{}')" 500 "status defaults to 500"
code=$(code_of "$U/v1/chat/completions" -H 'X-Mock-Mode: 429;retry_after=2' -d '{"model":"e"}')
is "$code" 429 "429"
like "$(tr -d '\r' <"$TMP/hdr")" '^Retry-After: 2$' "429: Retry-After seconds"
code_of "$U/v1/chat/completions" -H 'X-Mock-Mode: 429;retry_after_date=5' -d '{}' >/dev/null
ra=$(tr -d '\r' <"$TMP/hdr" | sed -n 's/^Retry-After: //p')
delta=$(python3 -c 'import email.utils,sys,time; print(round(email.utils.parsedate_to_datetime(sys.argv[1]).timestamp()-time.time()))' "$ra" 2>&1)
is "$(( delta >= 3 && delta <= 6 ))" 1 "429: Retry-After HTTP-date ~5 s ahead ($ra)"
code_of "$U/v1/chat/completions" -H 'X-Mock-Mode: 429' -d '{}' >/dev/null
unlike "$(cat "$TMP/hdr")" 'Retry-After' "429: no Retry-After without options"
is "$(code_of "$U/v1/nothing-here" -d '{}')" 404 "unknown path: 404"
like "$(cat "$TMP/body")" '"error"' "unknown path: JSON error"

# ---- echo ----
b=$(curl -s "$U/v1/chat/completions?x=1" -H 'X-Mock-Mode: echo' -H 'X-Test-Header: Some Value' \
    -H 'authorization: Bearer sk-abc' --data-binary '{"model":"echo-m","k":"é"}')
is "$(jp "$b" 'j["method"], j["path"], j["model"]')" "('POST', '/v1/chat/completions?x=1', 'echo-m')" "echo: method, path, model"
is "$(jp "$b" 'j["headers"]["X-Test-Header"]')" "Some Value" "echo: header value as sent"
is "$(jp "$b" 'j["headers"].get("authorization")')" "Bearer sk-abc" "echo: header name case as sent"
is "$(jp "$b" '[k for k,v in j["header_list"] if k.lower().startswith(("x-", "auth"))]')" '["X-Mock-Mode", "X-Test-Header", "authorization"]' "echo: header_list in order"
is "$(jp "$b" 'j["body"]')" '{"model":"echo-m","k":"é"}' "echo: raw body"
b=$(curl -s -N "$U/v1/chat/completions" -H 'X-Mock-Mode: echo' -d '{"model":"echo-m","stream":true}')
is "$(jp "$(grep -m1 '^data: {' <<<"$b" | cut -c7-)" 'j["model"]')" echo-m "echo: stream sends the echo as one event"

# ---- control API, per-model modes, stats ----
curl -s -o /dev/null -X POST "$U/_mock/reset"
is "$(jp "$(curl -s "$U/_mock/stats")" 'j["total"]')" 0 "reset clears the total"
r=$(curl -s -X POST "$U/_mock/mode" -d '{"model":"m1","mode":"503"}')
is "$(jp "$r" 'j["ok"]')" True "control: set per-model mode"
is "$(code_of "$U/v1/chat/completions" -d '{"model":"m1"}')" 503 "per-model mode applies to m1"
is "$(code_of "$U/v1/chat/completions" -d '{"model":"m2"}')" 200 "other models unaffected"
is "$(code_of "$U/v1/chat/completions" -H 'X-Mock-Mode: ok' -d '{"model":"m1"}')" 200 "header beats per-model mode"
curl -s -o /dev/null -X POST "$U/_mock/mode" -d '{"model":"m1","mode":null}'
is "$(code_of "$U/v1/chat/completions" -d '{"model":"m1"}')" 200 "per-model mode cleared"
curl -s -o /dev/null -X POST "$U/_mock/mode" -d '{"default":"502"}'
is "$(code_of "$U/v1/chat/completions" -d '{"model":"m3"}')" 502 "default mode via control API"
curl -s -o /dev/null -X POST "$U/_mock/mode" -d '{"default":"ok"}'
code=$(code_of "$U/v1/models")
is "$code" 200 "/v1/models: 200"
is "$(jp "$(cat "$TMP/body")" 'j["object"], sorted(d["id"] for d in j["data"])')" "('list', ['m1', 'm2', 'm3'])" "/v1/models lists the models seen"
curl -s -o /dev/null -X POST "$U/_mock/mode" -d '{"model":"__models__","mode":"500"}'
is "$(code_of "$U/v1/models")" 500 "__models__ mode makes /v1/models fail"
curl -s -o /dev/null -X POST "$U/_mock/mode" -d '{"model":"__models__","mode":null}'
s=$(curl -s "$U/_mock/stats")
is "$(jp "$s" 'j["hits"]["m1"], j["hits"]["m2"], j["hits"]["m3"], j["hits"]["__models__"]')" "(3, 1, 1, 2)" "stats: hits per model"
is "$(jp "$s" 'j["paths"]["/v1/chat/completions"], j["total"]')" "(5, 7)" "stats: paths and total (control calls not counted)"
like "$(jp "$s" 'j["connections"] > 0 and j["open"] >= 1')" True "stats: connections and open"
r=$(curl -s "$U/_mock/requests?n=2")
is "$(jp "$r" '[(x["method"], x["path"], x["model"], x["mode"]) for x in j]')" '[["GET", "/v1/models", null, "ok"], ["GET", "/v1/models", null, "500"]]' "requests: last records, oldest first"
curl -s -o /dev/null -X POST "$U/_mock/mode" -d '{"model":"m9","mode":"500"}'
curl -s -o /dev/null -X POST "$U/_mock/reset"
s=$(curl -s "$U/_mock/stats")
is "$(jp "$s" 'j["total"], j["hits"], j["modes"], len(j["paths"])')" "(0, {}, {}, 0)" "reset clears counters and modes"
is "$(jp "$(curl -s "$U/_mock/requests")" 'len(j)')" 0 "reset clears the records"

# ---- hang ----
curl -s -o /dev/null --max-time 1 "$U/v1/chat/completions" -H 'X-Mock-Mode: hang' -d '{"model":"hang-m"}'
is "$?" 28 "hang: curl --max-time 1 times out"
is "$(jp "$(curl -s "$U/_mock/stats")" 'j["hits"].get("hang-m")')" 1 "hang: the hit was counted"
is "$(code_of --max-time 5 "$U/v1/chat/completions" -d '{"model":"m"}')" 200 "a hanging request does not block others"
curl -s -o /dev/null -X POST "$U/_mock/mode" -d '{"model":"slow-m","mode":"slow;delay_ms=300"}'
t0=$(date +%s%N)
code=$(code_of "$U/v1/chat/completions" -d '{"model":"slow-m"}')
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
is "$code/$(( ms >= 280 ))" "200/1" "slow;delay_ms=300 (${ms} ms)"

# ---- framing variants ----
code=$(code_of "$U/v1/chat/completions" -H 'X-Mock-Mode: ok;chunked=1' -d '{"model":"c-1"}')
like "$(cat "$TMP/hdr")" '^Transfer-Encoding: chunked' "chunked=1: Transfer-Encoding chunked"
unlike "$(cat "$TMP/hdr")" 'Content-Length' "chunked=1: no Content-Length"
is "$code/$(jp "$(cat "$TMP/body")" 'j["model"]')" "200/c-1" "chunked=1: body intact"
code=$(code_of "$U/v1/chat/completions" -H 'X-Mock-Mode: ok;close=1' -d '{"model":"c-2"}')
unlike "$(cat "$TMP/hdr")" 'Content-Length|Transfer-Encoding' "close=1: no Content-Length"
like "$(cat "$TMP/hdr")" '^Connection: close' "close=1: Connection: close"
is "$code/$(jp "$(cat "$TMP/body")" 'j["model"]')" "200/c-2" "close=1: body intact"
n=$(curl -s -o /dev/null -w '%{size_download}' "$U/v1/chat/completions" -H 'X-Mock-Mode: huge;bytes=3000000' -d '{"model":"h"}')
is "$n" 3000000 "huge;bytes=3000000"
b=$(curl -s "$U/v1/chat/completions" -H 'X-Mock-Mode: extra_after_body' -d '{"model":"x-1"}' 2>/dev/null)
is "$(jp "$b" 'j["model"]')" x-1 "extra_after_body: the Content-Length body is intact"

# ---- broken upstreams: curl must fail ----
curl -s -o /dev/null "$U/v1/chat/completions" -H 'X-Mock-Mode: reset_headers' -d '{"model":"r"}'
rc=$?
is "$(( rc != 0 ))" 1 "reset_headers: curl fails (rc=$rc)"
b=$(curl -s -N "$U/v1/chat/completions" -H 'X-Mock-Mode: reset_stream' -d '{"model":"r"}')
rc=$?
is "$(( rc != 0 ))/$(grep -c '^data: {' <<<"$b")" "1/2" "reset_stream: 2 events then an error (rc=$rc)"
curl -s -o /dev/null "$U/v1/chat/completions" -H 'X-Mock-Mode: lying_chunked' -d '{"model":"r"}'
rc=$?
is "$(( rc != 0 ))" 1 "lying_chunked: curl fails (rc=$rc)"
curl -s -o /dev/null --max-time 20 "$U/v1/chat/completions" -H 'X-Mock-Mode: bad_head' -d '{"model":"r"}'
rc=$?
is "$(( rc != 0 && rc != 28 ))" 1 "bad_head: curl fails on the endless header (rc=$rc)"
codes=""
for _ in 1 2 3 4; do
    c=$(curl -s -o /dev/null -w '%{http_code}' "$U/v1/chat/completions" -H 'X-Mock-Mode: flaky;rate=1;seed=1' -d '{"model":"f"}')
    codes="$codes $c"
done
is "$codes" " 500 000 500 000" "flaky;rate=1 alternates 500 and reset"
c=$(curl -s -o /dev/null -w '%{http_code}' "$U/v1/chat/completions" -H 'X-Mock-Mode: flaky;rate=0' -d '{"model":"f"}')
is "$c" 200 "flaky;rate=0 is ok"
is "$(code_of "$U/v1/chat/completions" -d '{"model":"after"}')" 200 "still serving after the broken modes"

# ---- word answers, stream options, continuation ----
# sse BODY EXPR: evaluate EXPR over a stream: ev (the data payloads, parsed
# when JSON), types (Anthropic event names), text / atext (the OpenAI /
# Anthropic content joined), sig (one letter per line: R role delta, C
# content, F finish chunk, U usage-only chunk, E error, D [DONE], : comment)
sse() {
    python3 -c '
import json, sys
lines = [l.rstrip("\r") for l in sys.argv[1].split("\n")]
ev, types, sig = [], [], ""
for l in lines:
    if l.startswith(":"):
        sig += ":"
    elif l.startswith("event: "):
        types.append(l[7:])
    elif l.startswith("data: "):
        try:
            e = json.loads(l[6:])
        except ValueError:
            e = l[6:]
        ev.append(e)
        if e == "[DONE]":
            sig += "D"
        elif isinstance(e, dict) and "error" in e and "choices" not in e:
            sig += "E"
        elif isinstance(e, dict) and e.get("choices") == []:
            sig += "U"
        elif isinstance(e, dict) and e.get("choices"):
            c = e["choices"][0]
            sig += "F" if c.get("finish_reason") else ("R" if "role" in c["delta"] else "C")
text = "".join(e["choices"][0]["delta"].get("content") or "" for e in ev
               if isinstance(e, dict) and e.get("choices"))
atext = "".join(e["delta"].get("text", "") for e in ev
                if isinstance(e, dict) and e.get("type") == "content_block_delta")
r = eval(sys.argv[2])
print(json.dumps(r) if isinstance(r, (dict, list)) else r)' "$1" "$2" 2>&1
}
post() {  # post MODE BODY [curl args...] -> body (status to $TMP/code)
    local mode=$1 data=$2
    shift 2
    curl -s -N -o "$TMP/out" -w '%{http_code}\n' "$@" "$U/v1/chat/completions" -H "X-Mock-Mode: $mode" -d "$data" >"$TMP/code"
    echo "rc=$?" >>"$TMP/code"
    cat "$TMP/out"
}
last_rec() {  # last_rec EXPR: EXPR over the newest request record r
    jp "$(curl -s "$U/_mock/requests?n=1")" "(lambda r: ($1))(j[-1])"
}
PF='{"role":"user","content":"hi"},{"role":"assistant","content":'

b=$(post 'ok;words=4' '{"model":"w"}')
is "$(jp "$b" 'j["choices"][0]["message"]["content"]')" "w1 w2 w3 w4 " "words=4: non-stream content is w1..w4, each word + space"
is "$(jp "$b" 'j["usage"]')" '{"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14, "prompt_tokens_details": {"cached_tokens": 2}}' "usage: prompt 10, completion = words, cached 2"
b=$(post 'ok' '{"model":"w"}')
is "$(jp "$b" 'j["usage"]["completion_tokens"], j["usage"]["total_tokens"], j["usage"]["prompt_tokens_details"]')" "(3, 13, {'cached_tokens': 2})" "usage on the plain ok answer (3 words)"
b=$(curl -s "$U/v1/completions" -H 'X-Mock-Mode: ok;prompt_tokens=50;cached_tokens=7' -d '{"model":"w"}')
is "$(jp "$b" 'j["object"], j["usage"]["prompt_tokens"], j["usage"]["prompt_tokens_details"]["cached_tokens"]')" "('text_completion', 50, 7)" "usage on /completions, prompt_tokens= cached_tokens="
b=$(post 'stream;words=3' '{"model":"w"}')
is "$(sse "$b" 'sig, text')" "('RCCFD', 'w1 w2 w3 ')" "stream;words=3: role, 3 words (finish on the last), [DONE]"
unlike "$b" '"usage"' "stream without include_usage: no usage field"

t0=$(date +%s%N)
b=$(post 'stream;first_token_ms=1200;keepalive_ms=500' '{"model":"w"}')
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
is "$(sse "$b" 'sig, text')" "('R::CFD', 'tok1 tok2 ')" "first_token_ms=1200;keepalive_ms=500: role delta, 2 comments, then content"
is "$(grep -c '^: keep-alive$' <<<"$b")/$(( ms >= 1150 ))" "2/1" "first_token_ms: ': keep-alive' lines, first content after ${ms} ms"
b=$(post 'stream;first_token_ms=300' '{"model":"w"}')
is "$(sse "$b" 'sig')" "RCFD" "first_token_ms <= keepalive_ms (500 default): no comment"

b=$(post 'stream;cut_after=3' '{"model":"w"}')
is "$(sse "$b" 'sig, text')/$(tail -n1 "$TMP/code")" "('RCCC', 'w1 w2 w3 ')/rc=56" "cut_after=3: 3 words, no finish, no [DONE], RST (curl 56)"
b=$(post 'stream;cut_after=2;cut=close' '{"model":"w"}')
is "$(sse "$b" 'sig, text')/$(tail -n1 "$TMP/code")" "('RCC', 'w1 w2 ')/rc=18" "cut=close: FIN without the chunked terminator (curl 18)"
raw=$(printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Mock-Mode: stream;cut_after=1;cut=close\r\nContent-Length: 2\r\n\r\n{}' |
    python3 "$HERE/rawhttp.py" "$PORT_selftest" --idle 3)
like "$(printf '%s' "$raw" | tail -n 1)" '^<<closed>>$' "cut=close: the connection is closed"
unlike "$(printf '%s' "$raw" | tr -d '\r' | tr '\n' '|')" '\|0\|\|' "cut=close: no 0-size chunk"
b=$(post 'stream;error_after=2' '{"model":"w"}')
is "$(sse "$b" 'sig, text')/$(tail -n1 "$TMP/code")" "('RCCED', 'w1 w2 ')/rc=0" "error_after=2: 2 words, error event, [DONE]"
is "$(sse "$b" 'ev[3]')" '{"error": {"message": "mock error after 2 events", "type": "server_error"}}' "error_after: the error event"
b=$(post 'stream;finish_no_done=1;words=2' '{"model":"w"}')
is "$(sse "$b" 'sig')/$(tail -n1 "$TMP/code")" "RCF/rc=0" "finish_no_done=1: finish chunk, no [DONE], clean end (curl 0)"

b=$(post 'stream' "{\"model\":\"w\",\"stream\":true,\"messages\":[${PF}\"w1 w2 w3\",\"prefix\":true}]}")
is "$(sse "$b" 'sig, text')" "('RCCCCFD', 'w4 w5 w6 w7 w8 ')" "prefill 'w1 w2 w3': the stream continues with w4..w8"
is "$(last_rec '(r["prefill"], r["prefill_text"], r["prefill_prefix"], r["continued_from"], r["continue_final_message"])')" "(True, 'w1 w2 w3', True, 3, None)" "record: prefill, its text, prefix flag, continued_from"
b=$(post 'ok' "{\"model\":\"w\",\"continue_final_message\":true,\"add_generation_prompt\":false,\"messages\":[${PF}[{\"type\":\"text\",\"text\":\"w1 w2 w\"}]}]}")
is "$(jp "$b" 'j["choices"][0]["message"]["content"], j["usage"]["completion_tokens"]')" "('3 w4 w5 w6 w7 w8 ', 6)" "prefill ending inside a word (parts list): the rest of the word first"
is "$(last_rec '(r["prefill"], r["prefill_prefix"], r["continue_final_message"], r["add_generation_prompt"], r["continued_from"])')" "(True, None, True, False, 2)" "record: continue_final_message and add_generation_prompt"
b=$(post 'ok' "{\"model\":\"w\",\"messages\":[${PF}\"  w1   w2 \"}]}")
is "$(jp "$b" 'j["choices"][0]["message"]["content"]')" "w3 w4 w5 w6 w7 w8 " "prefill matched leniently (whitespace)"
b=$(post 'ok' "{\"model\":\"w\",\"messages\":[${PF}\"Sure, w1\"}]}")
is "$(jp "$b" 'j["choices"][0]["message"]["content"]')/$(last_rec 'r["continued_from"]')" "w1 w2 w3 w4 w5 w6 w7 w8 /0" "a prefill that is not a prefix: the answer from w1"
b=$(post 'stream;words=2' "{\"model\":\"w\",\"messages\":[${PF}\"w1 w2\"}]}")
is "$(sse "$b" 'sig, text, ev[1]["choices"][0]["delta"]')" "('RFD', '', {})" "prefill covering the whole answer: role delta, one empty finish chunk"
b=$(post 'ok' '{"model":"w","messages":[{"role":"user","content":"hi"}]}')
is "$(jp "$b" 'j["choices"][0]["message"]["content"]')/$(last_rec 'r["prefill"], r["prefill_text"]')" "hello from selftest/(False, None)" "no prefill: the plain answer, recorded as no prefill"

pre="{\"model\":\"w\",\"messages\":[${PF}\"w1\"}]}"
b=$(post 'ok;prefill=reject' "$pre")
is "$(head -n1 "$TMP/code")/$b" '400/{"error":{"message":"assistant prefill is not supported","type":"invalid_request_error"}}' "prefill=reject: 400"
post 'ok;prefill=reject' '{"model":"w","messages":[{"role":"user","content":"w1"}]}' >/dev/null
is "$(head -n1 "$TMP/code")" 200 "prefill=reject: no prefill, no rejection"
post 'stream;prefill=need_prefix' "$pre" >/dev/null
c1=$(head -n1 "$TMP/code")
post 'stream;prefill=need_prefix' "{\"model\":\"w\",\"messages\":[${PF}\"w1\",\"prefix\":true}]}" >/dev/null
is "$c1/$(head -n1 "$TMP/code")" "400/200" "prefill=need_prefix: 400 without \"prefix\": true, 200 with it"
post 'ok;prefill=need_continue' "$pre" >/dev/null
c1=$(head -n1 "$TMP/code")
post 'ok;prefill=need_continue' "{\"model\":\"w\",\"continue_final_message\":true,\"messages\":[${PF}\"w1\"}]}" >/dev/null
is "$c1/$(head -n1 "$TMP/code")" "400/200" "prefill=need_continue: 400 without continue_final_message, 200 with it"
post 'ok;prefill=no_trailing_space' "{\"model\":\"w\",\"messages\":[${PF}\"w1 \"}]}" >/dev/null
c1=$(head -n1 "$TMP/code")
post 'ok;prefill=no_trailing_space' "$pre" >/dev/null
is "$c1/$(head -n1 "$TMP/code")" "400/200" "prefill=no_trailing_space: 400 for 'w1 ', 200 for 'w1'"

# ---- usage in streams ----
b=$(post 'stream;words=2' '{"model":"u","stream_options":{"include_usage":true}}')
is "$(sse "$b" 'sig')" "RCFUD" "include_usage: a usage-only chunk before [DONE]"
is "$(sse "$b" '[e.get("usage", "absent") for e in ev[:3]]')" "[null, null, null]" "include_usage: the other chunks carry usage null"
is "$(sse "$b" 'ev[3]["choices"], ev[3]["usage"]')" "([], {'prompt_tokens': 10, 'completion_tokens': 2, 'total_tokens': 12, 'prompt_tokens_details': {'cached_tokens': 2}})" "include_usage: the usage chunk"
is "$(last_rec 'r["has_stream_options"], r["stream_options"]')" "(True, {'include_usage': True})" "record: stream_options"
b=$(post 'stream;words=2;usage_on_last=1' '{"model":"u","stream_options":{"include_usage":true}}')
is "$(sse "$b" 'sig, ev[2]["usage"]["completion_tokens"], ev[1]["usage"]')" "('RCFD', 2, None)" "usage_on_last=1: the usage on the finish chunk, no usage-only chunk"
b=$(post 'stream;usage_on_last=1' '{"model":"u"}')
is "$(sse "$b" 'sig, "usage" in ev[0], ev[2]["usage"]["completion_tokens"]')" "('RCFD', False, 2)" "usage_on_last=1 without include_usage"
b=$(post 'stream;cut_after=1' '{"model":"u","stream_options":{"include_usage":true}}')
is "$(sse "$b" 'sig')" "RC" "include_usage: no usage chunk after a cut"
b=$(post 'ok;reject_stream_options=1' '{"model":"u","stream":true,"stream_options":{"include_usage":true}}')
is "$(head -n1 "$TMP/code")/$(jp "$b" 'j["error"]["message"]')" "400/Unrecognized request argument supplied: stream_options" "reject_stream_options=1: 400"
post 'ok;reject_stream_options=1' '{"model":"u","stream":true}' >/dev/null
is "$(head -n1 "$TMP/code")/$(last_rec 'r["has_stream_options"], r["stream"]')" "200/(False, True)" "reject_stream_options=1: no stream_options, no rejection"

# ---- once ----
codes=""
for _ in 1 2 3; do post 'once;first=503' '{"model":"o1"}' >/dev/null; codes="$codes $(head -n1 "$TMP/code")"; done
is "$codes" " 503 200 200" "once;first=503: 503 then ok"
b=$(post 'once;first=503' '{"model":"o1","stream":true}')
is "$(sse "$b" 'sig')" "RCFD" "once: after the failure, a stream when the body asks for one"
post 'once;first=503' '{"model":"o2"}' >/dev/null
is "$(head -n1 "$TMP/code")" 503 "once: counted per model"
post 'once;first=429;retry_after=1' '{"model":"o1"}' -D "$TMP/hdr" >/dev/null
c1=$(head -n1 "$TMP/code")
like "$(tr -d '\r' <"$TMP/hdr")" '^Retry-After: 1$' "once;first=429;retry_after=1: Retry-After: 1"
post 'once;first=429;retry_after=1' '{"model":"o1"}' >/dev/null
is "$c1/$(head -n1 "$TMP/code")" "429/200" "once;first=429: 429 then ok"
codes=""
for _ in 1 2 3 4; do post 'once;first=reset;times=2' '{"model":"o1"}' >/dev/null; codes="$codes $(head -n1 "$TMP/code")/$(sed -n 2p "$TMP/code")"; done
is "$codes" " 000/rc=56 000/rc=56 200/rc=0 200/rc=0" "once;first=reset;times=2: two RSTs, then ok"
post 'once;first=hang' '{"model":"o1"}' --max-time 1 >/dev/null
c1=$(sed -n 2p "$TMP/code")
post 'once;first=hang' '{"model":"o1"}' --max-time 5 >/dev/null
is "$c1/$(head -n1 "$TMP/code")" "rc=28/200" "once;first=hang: hangs once, then ok"
b=$(post 'once;first=stream,cut_after=2;then=stream;words=4' '{"model":"o3"}')
t1=$(sse "$b" 'sig, text')
b=$(post 'once;first=stream,cut_after=2;then=stream;words=4' '{"model":"o3"}')
is "$t1 $(sse "$b" 'sig, text')" "('RCC', 'w1 w2 ') ('RCCCFD', 'w1 w2 w3 w4 ')" "once;first=stream,cut_after=2;then=stream;words=4: a cut, then the whole answer"
is "$(last_rec 'r["mode"], r["effective_mode"]')" "('once;first=stream,cut_after=2;then=stream;words=4', 'stream;words=4')" "record: mode and effective_mode"
s=$(curl -s "$U/_mock/stats")
is "$(jp "$s" '[(x["model"], x["count"]) for x in j["once"] if x["mode"] == "once;first=503"]')" '[["o1", 4], ["o2", 1]]' "stats: once counters"
curl -s -o /dev/null -X POST "$U/_mock/mode" -d '{"model":"o2","mode":"once;first=502"}'
post 'x' '{"model":"o2"}' -H 'X-Mock-Mode;' >/dev/null
c1=$(head -n1 "$TMP/code")
post 'once;first=503' '{"model":"o2"}' >/dev/null
c2=$(head -n1 "$TMP/code")
post 'once;first=503' '{"model":"o1"}' >/dev/null
is "$c1/$c2/$(head -n1 "$TMP/code")" "502/503/200" "setting o2's mode clears o2's once counters only"
curl -s -o /dev/null -X POST "$U/_mock/reset"
post 'once;first=503' '{"model":"o1"}' >/dev/null
is "$(head -n1 "$TMP/code")/$(jp "$(curl -s "$U/_mock/stats")" 'len(j["once"])')" "503/1" "reset clears the once counters"

# ---- flap ----
r=$(python3 - "$U" <<'PY'
import sys, time, urllib.error, urllib.request
url, period = sys.argv[1] + "/v1/chat/completions", 400
seen, bad = set(), []
for i in range(10):
    t0 = time.time() * 1000
    req = urllib.request.Request(url, data=b'{"model":"flap-m"}',
                                 headers={"X-Mock-Mode": "flap;period_ms=400"})
    try:
        code = urllib.request.urlopen(req, timeout=5).status
    except urllib.error.HTTPError as e:
        code = e.code
    t1 = time.time() * 1000
    h0, h1 = (int(t0) % period) * 2 < period, (int(t1) % period) * 2 < period
    if h0 == h1 and t1 - t0 < period / 2:  # surely inside one half period
        want = 500 if h0 else 200
        seen.add(want)
        if code != want:
            bad.append((int(t0) % period, int(t1) % period, code))
    time.sleep(0.13)
print("ok" if not bad and len(seen) == 2 else "bad %r %r" % (bad, sorted(seen)))
PY
)
is "$r" ok "flap;period_ms=400: 500 in the first half of each period, 200 in the second"

# ---- ctx400, policy400 ----
b=$(post 'ctx400' '{"model":"c"}')
is "$(head -n1 "$TMP/code")/$b" "400/{\"error\":{\"message\":\"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.\",\"type\":\"invalid_request_error\",\"param\":\"messages\",\"code\":\"context_length_exceeded\"}}" "ctx400"
b=$(post 'ctx400;form=message' '{"model":"c"}')
is "$(jp "$b" 'sorted(j["error"]), j["error"]["message"][:28]')" "(['message', 'type'], \"This model's maximum context\")" "ctx400;form=message: message and type only"
b=$(post 'ctx400;form=prompt_too_long;status=413' '{"model":"c"}')
is "$(head -n1 "$TMP/code")/$(jp "$b" 'j["error"]["message"]')" "413/prompt is too long: 210000 tokens > 200000 maximum" "ctx400;form=prompt_too_long;status=413"
b=$(post 'policy400' '{"model":"c"}')
is "$(head -n1 "$TMP/code")/$(jp "$b" 'j["error"]["code"], j["error"]["type"]')" "400/('content_policy_violation', 'invalid_request_error')" "policy400"

# ---- Anthropic dialect ----
A="$U/v1/messages"
amsg() {  # amsg MODE BODY [curl args...] -> body (status, rc to $TMP/code)
    local mode=$1 data=$2
    shift 2
    curl -s -N -o "$TMP/out" -w '%{http_code}\n' "$@" "$A" -H "X-Mock-Mode: $mode" -H 'anthropic-version: 2023-06-01' -d "$data" >"$TMP/code"
    echo "rc=$?" >>"$TMP/code"
    cat "$TMP/out"
}
ASEQ="message_start,content_block_start,ping"
b=$(amsg ok '{"model":"claude-m","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}')
is "$(jp "$b" '{k: v for k, v in j.items() if k != "id"}')" '{"type": "message", "role": "assistant", "model": "claude-m", "content": [{"type": "text", "text": "w1 w2 w3 w4 w5 w6 w7 w8 "}], "stop_reason": "end_turn", "stop_sequence": null, "usage": {"input_tokens": 10, "output_tokens": 8, "cache_read_input_tokens": 2, "cache_creation_input_tokens": 0}}' "messages: the Messages API answer"
like "$(jp "$b" 'j["id"]')" '^msg_mock[0-9]+$' "messages: id msg_mock..."
is "$(last_rec 'r["route"], r["dialect"], r["header_map"]["anthropic-version"]')" "('messages', 'anthropic', '2023-06-01')" "record: route, dialect, anthropic-version"
b=$(amsg ok '{"model":"claude-m","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"text","text":"w1 w2"},{"type":"text","text":" w3"}]}]}')
is "$(jp "$b" 'j["content"][0]["text"], j["usage"]["output_tokens"]')" "('w4 w5 w6 w7 w8 ', 5)" "messages: prefill (text blocks) continues"
b=$(amsg ok '{"model":"claude-m","stream":true,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"w1 w2 w3 w4 w5 w6"}]}')
is "$(sse "$b" '",".join(types), atext')" "('$ASEQ,content_block_delta,content_block_delta,content_block_stop,message_delta,message_stop', 'w7 w8 ')" "messages stream: the event sequence; prefill continues"
is "$(sse "$b" 'ev[0]["message"]["model"], ev[0]["message"]["usage"]["input_tokens"], ev[-2]["delta"]["stop_reason"], ev[-2]["usage"]["output_tokens"], ev[3]["delta"]["type"]')" "('claude-m', 10, 'end_turn', 2, 'text_delta')" "messages stream: model, usage, stop_reason, text_delta"
is "$(grep -c '^event: ' <<<"$b")/$(grep -c '^data: ' <<<"$b")" "8/8" "messages stream: each event is 'event:' + 'data:'"
t0=$(date +%s%N)
b=$(amsg 'stream;words=2;first_token_ms=700;keepalive_ms=300' '{"model":"claude-m"}')
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
is "$(sse "$b" '",".join(types[:6])')/$(( ms >= 650 ))" "$ASEQ,ping,ping,content_block_delta/1" "messages stream: first_token_ms with pings every keepalive_ms (${ms} ms)"
b=$(amsg 'stream;chunks=3' '{"model":"claude-m"}')
is "$(sse "$b" 'atext')" "w1 w2 w3 " "messages stream: chunks=N is words=N"
b=$(amsg 'stream;cut_after=2' '{"model":"claude-m"}')
is "$(sse "$b" '",".join(types), atext')/$(tail -n1 "$TMP/code")" "('$ASEQ,content_block_delta,content_block_delta', 'w1 w2 ')/rc=56" "messages stream: cut_after=2 then RST"
b=$(amsg 'stream;cut_after=1;cut=close' '{"model":"claude-m"}')
is "$(sse "$b" 'types[-1]')/$(tail -n1 "$TMP/code")" "content_block_delta/rc=18" "messages stream: cut=close"
b=$(amsg 'stream;error_after=1' '{"model":"claude-m"}')
is "$(sse "$b" '",".join(types[3:]), ev[-1]')/$(tail -n1 "$TMP/code")" "('content_block_delta,error', {'type': 'error', 'error': {'type': 'overloaded_error', 'message': 'Overloaded'}})/rc=0" "messages stream: error_after=1"
b=$(amsg 'stream_error_first' '{"model":"claude-m"}')
is "$(sse "$b" '",".join(types)')/$(tail -n1 "$TMP/code")" "error/rc=0" "messages: stream_error_first"
b=$(amsg 'stream_error_first;after_start=1' '{"model":"claude-m"}')
is "$(sse "$b" '",".join(types)')" "message_start,ping,error" "messages: stream_error_first;after_start=1"
b=$(amsg 'stream_empty' '{"model":"claude-m"}')
is "$(sse "$b" '",".join(types)')" "message_start,message_stop" "messages: stream_empty"
b=$(amsg 'stream;no_stop=1;words=1' '{"model":"claude-m"}')
is "$(sse "$b" '",".join(types[3:])')/$(tail -n1 "$TMP/code")" "content_block_delta,content_block_stop,message_delta/rc=0" "messages stream: no_stop=1"
b=$(amsg 'reset_stream' '{"model":"claude-m"}')
is "$(sse "$b" 'atext')/$(tail -n1 "$TMP/code")" "w1 /rc=56" "messages: reset_stream"
b=$(amsg 'status;code=529' '{"model":"claude-m"}')
is "$(head -n1 "$TMP/code")/$b" '529/{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}' "messages: status;code=529"
got=""
for c in 400 401 403 404 413 429 500 503 418; do
    b=$(amsg "$c" '{"model":"claude-m"}')
    got="$got $(head -n1 "$TMP/code"):$(jp "$b" 'j["type"] + "/" + j["error"]["type"]')"
done
is "$got" " 400:error/invalid_request_error 401:error/authentication_error 403:error/permission_error 404:error/not_found_error 413:error/request_too_large 429:error/rate_limit_error 500:error/api_error 503:error/api_error 418:error/invalid_request_error" "messages: error types by status"
amsg '429;retry_after=3' '{"model":"claude-m"}' -D "$TMP/hdr" >/dev/null
like "$(tr -d '\r' <"$TMP/hdr")" '^Retry-After: 3$' "messages: 429 with Retry-After"
b=$(amsg ctx400 '{"model":"claude-m"}')
is "$(head -n1 "$TMP/code")/$b" '400/{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}' "messages: ctx400"
b=$(amsg ok_error '{"model":"claude-m"}')
is "$(head -n1 "$TMP/code")/$(jp "$b" 'j["error"]["type"]')" "200/api_error" "messages: ok_error"
b=$(amsg 'ok;prefill=reject' '{"model":"claude-m","messages":[{"role":"assistant","content":"w1"}]}')
is "$(head -n1 "$TMP/code")/$(jp "$b" 'j["error"]["type"], j["error"]["message"]')" "400/('invalid_request_error', 'assistant prefill is not supported')" "messages: prefill=reject in the Anthropic shape"
b=$(amsg 'once;first=529' '{"model":"claude-o","stream":true}')
c1=$(head -n1 "$TMP/code")
b=$(amsg 'once;first=529' '{"model":"claude-o","stream":true}')
is "$c1/$(sse "$b" 'types[-1]')" "529/message_stop" "messages: once;first=529 then a stream"
is "$(code_of "$U/v1/messages/count_tokens" -d '{"model":"claude-m","messages":[]}')/$(cat "$TMP/body")" '200/{"input_tokens":10}' "count_tokens: input_tokens"
is "$(last_rec 'r["route"], r["dialect"]')" "('count_tokens', 'anthropic')" "record: count_tokens route"
is "$(code_of "$U/v1/messages/count_tokens" -H 'X-Mock-Mode: ok;prompt_tokens=42' -d '{}')/$(cat "$TMP/body")" '200/{"input_tokens":42}' "count_tokens: prompt_tokens=42"
is "$(code_of "$U/v1/messages/count_tokens" -H 'X-Mock-Mode: no_count_tokens' -d '{}')/$(jp "$(cat "$TMP/body")" 'j["error"]["type"]')" "404/not_found_error" "count_tokens: no_count_tokens mode: 404"
is "$(code_of "$U/v1/messages/count_tokens" -H 'X-Mock-Mode: stream;no_count_tokens=1' -d '{}')" 404 "count_tokens: no_count_tokens=1 option: 404"
is "$(code_of "$A" -H 'X-Mock-Mode: no_count_tokens' -d '{"model":"claude-m"}')/$(jp "$(cat "$TMP/body")" 'j["type"]')" "200/message" "no_count_tokens on /v1/messages: ok"
is "$(code_of "$U/v1/messages/count_tokens" -H 'X-Mock-Mode: 503' -d '{}')" 503 "count_tokens: error modes apply"
is "$(code_of -X GET "$A")/$(jp "$(cat "$TMP/body")" 'j["type"]')" "405/error" "messages: GET is 405 in the Anthropic shape"

# ---- request records: headers, query, body ----
curl -s -o /dev/null "$U/v1/chat/completions?beta=true&x=1" -H 'Authorization: Bearer sk-rec' -H 'OpenAI-Organization: org-1' \
    -H 'OpenAI-Project: proj-1' -H 'X-Forwarded-For: 10.0.0.1' -H 'User-Agent: ua/1' -H 'HTTP-Referer: https://r.example' \
    -H 'X-Title: T' -H 'X-Dup: a' -H 'X-Dup: b' -d '{"model":"rec-m","stream":false,"temperature":0.5}'
is "$(last_rec '[r["header_map"].get(k) for k in ("authorization", "openai-organization", "openai-project", "x-forwarded-for", "user-agent", "http-referer", "x-title", "x-dup")]')" '["Bearer sk-rec", "org-1", "proj-1", "10.0.0.1", "ua/1", "https://r.example", "T", "a, b"]' "record: header_map with lower-case names, repeats joined"
is "$(last_rec 'r["path"], r["query"], r["json"]["temperature"], r["model"], r["stream"], r["status"], r["auth_ok"]')" "('/v1/chat/completions?beta=true&x=1', 'beta=true&x=1', 0.5, 'rec-m', False, 200, None)" "record: path, query, parsed body, status"
curl -s -o /dev/null "$A" -H 'x-api-key: k-1' -H 'anthropic-beta: prompt-caching-2024-07-31' -d '{"model":"rec-a"}'
is "$(last_rec '(r["header_map"]["x-api-key"], r["header_map"]["anthropic-beta"])')" "('k-1', 'prompt-caching-2024-07-31')" "record: x-api-key and anthropic-beta"
curl -s -o /dev/null "$U/v1/chat/completions" -H 'X-Mock-Mode: reset' -d '{"model":"rec-r"}'
is "$(last_rec 'r["status"], r["effective_mode"]')" "(None, 'reset')" "record: no status when nothing was sent"

# ---- --require-auth, --anthropic-auth, --no-count-tokens ----
start auth --require-auth sk-one --require-auth sk-two --no-count-tokens || fail "auth mock starts"
start authb --require-auth sk-one --anthropic-auth bearer || fail "bearer auth mock starts"
start authe --require-auth sk-one --anthropic-auth either || fail "either auth mock starts"
UA="http://127.0.0.1:${PORT_auth:-1}"
UB="http://127.0.0.1:${PORT_authb:-1}"
UE="http://127.0.0.1:${PORT_authe:-1}"
got=$(code_of "$UA/v1/chat/completions" -d '{"model":"a"}')
is "$got/$(jp "$(cat "$TMP/body")" 'j["error"]["code"]')" "401/invalid_api_key" "--require-auth: 401 without a key (OpenAI)"
got="$(code_of "$UA/v1/chat/completions" -H 'Authorization: Bearer sk-one' -d '{}')"
got="$got $(code_of "$UA/v1/chat/completions" -H 'Authorization: Bearer sk-two' -d '{}')"
got="$got $(code_of "$UA/v1/chat/completions" -H 'Authorization: Bearer sk-bad' -d '{}')"
got="$got $(code_of "$UA/v1/chat/completions" -H 'x-api-key: sk-one' -d '{}')"
got="$got $(code_of "$UA/v1/models" -H 'Authorization: Bearer sk-one')"
got="$got $(code_of "$UA/v1/models")"
is "$got" "200 200 401 401 200 401" "--require-auth (OpenAI): Bearer with either key, not a wrong key or x-api-key"
got="$(code_of "$UA/v1/messages" -H 'x-api-key: sk-one' -d '{}')"
got="$got $(code_of "$UA/v1/messages" -H 'Authorization: Bearer sk-one' -d '{}')"
is "$got/$(jp "$(cat "$TMP/body")" 'j["error"]["type"]')" "200 401/authentication_error" "--require-auth (Anthropic): x-api-key, not Bearer"
is "$(jp "$(curl -s "$UA/_mock/requests?n=1")" 'j[0]["auth_ok"], j[0]["status"]')" "(False, 401)" "record: auth_ok"
is "$(code_of "$UA/v1/messages/count_tokens" -H 'x-api-key: sk-one' -d '{}')/$(jp "$(cat "$TMP/body")" 'j["error"]["type"]')" "404/not_found_error" "--no-count-tokens: count_tokens is 404"
got="$(code_of "$UB/v1/messages" -H 'Authorization: Bearer sk-one' -d '{}')"
got="$got $(code_of "$UB/v1/messages" -H 'x-api-key: sk-one' -d '{}')"
got="$got $(code_of "$UB/v1/messages/count_tokens" -H 'Authorization: Bearer sk-one' -d '{}')"
is "$got" "200 401 200" "--anthropic-auth bearer: Bearer, not x-api-key"
got="$(code_of "$UE/v1/messages" -H 'Authorization: Bearer sk-one' -d '{}')"
got="$got $(code_of "$UE/v1/messages" -H 'x-api-key: sk-one' -d '{}')"
got="$got $(code_of "$UE/v1/messages" -H 'x-api-key: sk-no' -d '{}')"
is "$got" "200 200 401" "--anthropic-auth either: both"
is "$(code_of "$UA/_mock/stats")" 200 "--require-auth: the control API needs no key"

# ---- keep-alive: two requests on one connection ----
out=$(curl -s -v "$U/v1/chat/completions" -d '{"model":"k1"}' --next "$U/v1/chat/completions" -d '{"model":"k2"}' 2>&1)
like "$out" 'Re-using existing connection' "keep-alive: curl reuses the connection"

# ---- TLS (optional) ----
if command -v openssl >/dev/null 2>&1 &&
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/k.pem" -out "$TMP/c.pem" -days 1 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1; then
    start tls --tls-cert "$TMP/c.pem" --tls-key "$TMP/k.pem" || fail "tls mock starts"
    b=$(curl -s --cacert "$TMP/c.pem" "https://127.0.0.1:${PORT_tls:-1}/v1/chat/completions" -d '{"model":"t"}')
    is "$(jp "$b" 'j["choices"][0]["message"]["content"]')" "hello from tls" "tls: https works"
    curl -s -o /dev/null "http://127.0.0.1:${PORT_tls:-1}/v1/chat/completions" -d '{"model":"t"}'
    rc=$?
    is "$(( rc != 0 ))" 1 "tls: plain HTTP to the TLS port fails (rc=$rc)"
    s=$(curl -s --cacert "$TMP/c.pem" "https://127.0.0.1:${PORT_tls:-1}/_mock/stats")
    is "$(jp "$s" 'j["tls_full_handshakes"] >= 2, j["tls_resumed"]')" "(True, 0)" "tls: handshakes counted"
    openssl s_client -connect "127.0.0.1:${PORT_tls:-1}" -tls1_2 -sess_out "$TMP/sess" </dev/null >/dev/null 2>&1
    out=$(openssl s_client -connect "127.0.0.1:${PORT_tls:-1}" -tls1_2 -sess_in "$TMP/sess" </dev/null 2>/dev/null)
    s=$(curl -s --cacert "$TMP/c.pem" "https://127.0.0.1:${PORT_tls:-1}/_mock/stats")
    is "$(grep -c '^Reused' <<<"$out")/$(jp "$s" 'j["tls_resumed"]')" "1/1" "tls: a resumed TLS 1.2 session is counted"
else
    pass "# SKIP tls: no openssl"
fi

# ---- IPv6 loopback (optional) ----
if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; then
    start v6 --host ::1 || fail "::1 mock starts"
    is "$(curl -s -o /dev/null -w '%{http_code}' "http://[::1]:${PORT_v6:-1}/v1/chat/completions" -d '{"model":"v"}')" 200 "--host ::1 serves"
else
    pass "# SKIP no IPv6 loopback"
fi

# ---- SIGTERM ----
kill -TERM "$PID_selftest"
wait "$PID_selftest"
is "$?" 0 "exits 0 on SIGTERM"
is "$(grep -c Traceback "$TMP/selftest.err")" 0 "no tracebacks on stderr"

echo "1..$N"
[ "$FAIL" -eq 0 ]
