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
