#!/usr/bin/env bash
# The proxy core against mock upstreams: rewrites, header filtering, every
# row of the failure table, streaming, weights and priorities, attempts,
# client disconnects and slow readers.
. "$(dirname "$0")/../lib.sh"

start_mock A || exit 1
start_mock B || exit 1
start_mock C || exit 1
PA=$(mock_port A); PB=$(mock_port B); PC=$(mock_port C)
DEAD=$(free_port)

cat > "$TMP/cfg.yaml" <<Y
api_keys: ["ck"]
max_retries: 3
max_failures: 1000
stream_idle_timeout: 2
providers:
  - name: pa
    base_url: http://127.0.0.1:$PA
    api_key: key-a
    timeout: 2
    exclude_params: [thinking, verbosity]
    model_mappings:
      - {upstream: a-ok, alias: ok}
      - {upstream: a-fo, alias: fo}
      - {upstream: a-st, alias: st}
      - {upstream: a-w, alias: wr, weight: 10}
      - {upstream: a-w3, alias: w32, weight: 3}
      - {upstream: cap1, alias: cap}
      - {upstream: cap2, alias: cap}
      - {upstream: a-pr, alias: pr, priority: -1}
  - name: pb
    base_url: http://127.0.0.1:$PB/v1
    api_key: key-b
    priority: 1
    model_mappings:
      - {upstream: b-fo, alias: fo}
      - {upstream: b-st, alias: st}
      - {upstream: b-w, alias: wr, priority: -1}
      - {upstream: b-w2, alias: w32, priority: -1, weight: 2}
      - {upstream: cap3, alias: cap}
      - {upstream: b-dead, alias: dead}
      - {upstream: b-pr1, alias: pr, weight: 1}
  - name: pdead
    base_url: http://127.0.0.1:$DEAD
    model_mappings:
      - {upstream: x, alias: dead}
  - name: pprefix
    base_url: http://127.0.0.1:$PA/api/
    model_mappings:
      - {upstream: a-pfx, alias: pfx}
  - name: pc
    base_url: http://127.0.0.1:$PC
    priority: 5
    model_mappings:
      - {upstream: c-st, alias: cst}
      - {upstream: b-pr2, alias: pr, weight: 5, priority: -4}
Y
start_gateway "$TMP/cfg.yaml" || { echo "Bail out! gateway did not start"; exit 1; }
AUTH=(-H "Authorization: Bearer ck" -H "Content-Type: application/json")
chat() {  # chat ALIAS [extra json] [curl args...]
    local alias=$1 extra=${2:-}
    shift 2 2>/dev/null || shift
    curl -s -D "$TMP/h" "${AUTH[@]}" "$@" "$GW_URL/v1/chat/completions" \
        -d "{\"model\":\"$alias\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]$extra}"
}
hdr() { grep -i "^$1:" "$TMP/h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
status() { head -1 "$TMP/h" | awk '{print $2}'; }

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
body=$(curl -s "${AUTH[@]}" -H "X-Mock-Mode: echo" -H "X-Request-Id: my-req-1" -H "X-Custom: kept" \
    -H "Accept-Encoding: gzip" -H "Cookie: c=1" -H "X-Api-Key: gw-secret" \
    "$GW_URL/v1/chat/completions" --data-binary "$payload")
want='{ "model" : "a-ok",
  "messages":[{"role":"user","content":"say \"model\": \"x\""}],
  "temperature": 1.50e0, "top_p":0.9 }'
is "$(jget "$body" 'j["body"]')" "$want" "model replaced, exclude_params and null/[undefined] keys removed, other bytes identical"
is "$(jget "$body" 'j["headers"].get("Authorization")')" "Bearer key-a" "the provider's key is sent upstream"
is "$(jget "$body" 'j["headers"].get("X-Custom")')" "kept" "other client headers pass"
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

# ---- attempts cap and priority order ----
for m in cap1 cap2; do mock_mode A $m 500; done
mock_mode B cap3 500
sed -i 's/^max_retries: 3/max_retries: 2/' "$TMP/cfg.yaml"
kill -HUP "$GW_PID"; sleep 0.4
h1=$(mock_stats A | python3 -c 'import json,sys; h=json.load(sys.stdin)["hits"]; print(h.get("cap1",0)+h.get("cap2",0))')
h3=$(mock_hits B cap3)
body=$(chat cap)
is "$(status)" 502 "three failing candidates, max_retries 2: 502"
n1=$(mock_stats A | python3 -c 'import json,sys; h=json.load(sys.stdin)["hits"]; print(h.get("cap1",0)+h.get("cap2",0))')
is "$((n1 - h1 + $(mock_hits B cap3) - h3))" 2 "exactly max_retries attempts are made"
is "$(hdr X-Autoswitch-Attempts)" 2 "the 502 reports 2 attempts"
sed -i 's/^max_retries: 2/max_retries: 3/' "$TMP/cfg.yaml"
kill -HUP "$GW_PID"; sleep 0.4

mock_mode A a-pr 500
body=$(chat pr)
is "$(hdr X-Autoswitch-Provider)/$(hdr X-Autoswitch-Model)" "pc/b-pr2" \
    "after the best priority fails, the next priority group goes by weight (5 before 1)"
mock_mode A a-pr null

# ---- weights: 10:1 and 3:2 interleave exactly ----
seq=$(python3 - "$GW_PORT" wr 1100 <<'PY'
import http.client, json, sys
port, alias, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port)
out = []
body = json.dumps({"model": alias, "messages": [{"role": "user", "content": "x"}]})
for _ in range(n):
    c.request("POST", "/v1/chat/completions", body, {"Authorization": "Bearer ck", "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    out.append("a" if r.getheader("X-Autoswitch-Provider") == "pa" else "b")
print("".join(out))
PY
)
is "$(printf '%s' "$seq" | tr -cd a | wc -c)/$(printf '%s' "$seq" | tr -cd b | wc -c)" "1000/100" "weights 10:1 over 1100 requests: exactly 1000/100"
bursts=$(printf '%s' "$seq" | grep -o 'b\+' | awk 'length($0) > 1' | wc -l)
gaps=$(printf '%s' "$seq" | sed 's/^a*b//; s/ba*$//' | tr 'b' '\n' | awk 'length($0) != 10' | wc -l)
is "$bursts/$gaps" "0/0" "10:1 interleaves: every b is followed by exactly ten a"
seq=$(python3 - "$GW_PORT" w32 50 <<'PY'
import http.client, json, sys
port, alias, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port)
out = []
body = json.dumps({"model": alias, "messages": [{"role": "user", "content": "x"}]})
for _ in range(n):
    c.request("POST", "/v1/chat/completions", body, {"Authorization": "Bearer ck"})
    r = c.getresponse(); r.read()
    out.append("a" if r.getheader("X-Autoswitch-Provider") == "pa" else "b")
print("".join(out))
PY
)
is "${seq:0:10}" "ababaababa" "weights 3:2 follow the smooth sequence ababa"

# ---- streaming ----
sbody='{"model":"st","stream":true,"messages":[{"role":"user","content":"hi"}]}'
norm() { sed -E 's/"created": ?[0-9]+/"created":0/g'; }
curl -s -N "${AUTH[@]}" -D "$TMP/h" "$GW_URL/v1/chat/completions" -d "$sbody" > "$TMP/gw.sse"
curl -s -N "http://127.0.0.1:$PA/v1/chat/completions" -d "${sbody/\"st\"/\"a-st\"}" > "$TMP/direct.sse"
is "$(status)" 200 "stream: 200"
like "$(hdr Content-Type)" '^text/event-stream' "stream: text/event-stream"
is "$(hdr Cache-Control)" "no-cache" "stream: Cache-Control no-cache"
like "$(hdr Transfer-Encoding)" 'chunked' "stream: chunked to the client"
sed 's/"model":"a-st"/"model":"st"/g; s/"model": "a-st"/"model": "st"/g' "$TMP/direct.sse" | norm > "$TMP/want.sse"
norm < "$TMP/gw.sse" > "$TMP/got.sse"
check "stream bytes identical to the upstream's except the model" -- cmp -s "$TMP/want.sse" "$TMP/got.sse"
like "$(tail -c 20 "$TMP/gw.sse")" 'data: \[DONE\]' "stream ends with [DONE]"

for opt in "split=1" "crlf=1" "split=1;crlf=1;chunks=7"; do
    curl -s -N "${AUTH[@]}" -H "X-Mock-Mode: stream;$opt" "$GW_URL/v1/chat/completions" -d "$sbody" | norm > "$TMP/got.sse"
    curl -s -N -H "X-Mock-Mode: stream;$opt" "http://127.0.0.1:$PA/v1/chat/completions" -d "${sbody/\"st\"/\"a-st\"}" \
        | sed 's/"model": \?"a-st"/"model":"st"/g' | norm > "$TMP/want.sse"
    sed -i 's/"model": "st"/"model":"st"/g' "$TMP/want.sse" "$TMP/got.sse"
    check "stream with $opt: events split across reads pass unchanged but the model" -- cmp -s "$TMP/want.sse" "$TMP/got.sse"
done

# Events arrive as they are produced, not batched.
out=$(python3 - "$GW_PORT" <<'PY'
import socket, sys, time, json
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
body = json.dumps({"model": "st", "stream": True, "messages": [{"role": "user", "content": "x"}]})
s.sendall(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ck\r\n"
           "X-Mock-Mode: stream;chunks=4;gap_ms=400\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
t0 = time.time(); times = []; buf = b""
s.settimeout(5)
while b"[DONE]" not in buf:
    c = s.recv(65536)
    if not c: break
    buf += c
    times.append(round(time.time() - t0, 1))
print(len(times) >= 3 and times[-1] - times[0] >= 0.8)
PY
)
is "$out" "True" "stream events are forwarded as they arrive"

mock_mode A a-st stream_empty
body=$(curl -s -N "${AUTH[@]}" -D "$TMP/h" "$GW_URL/v1/chat/completions" -d "$sbody")
is "$(hdr X-Autoswitch-Provider)" "pb" "empty stream ([DONE] only): fails over"
like "$body" '"model":"st"' "the failover stream is rewritten to the alias too"
mock_mode A a-st "stream_error_first;string=1"
curl -s -N "${AUTH[@]}" -D "$TMP/h" "$GW_URL/v1/chat/completions" -d "$sbody" >/dev/null
is "$(hdr X-Autoswitch-Provider)" "pb" "stream whose first event carries an error string: fails over"
mock_mode A a-st "reset_stream;chunks=3"
body=$(curl -s -N "${AUTH[@]}" -D "$TMP/h" "$GW_URL/v1/chat/completions" -d "$sbody"; echo "curl=$?")
is "$(hdr X-Autoswitch-Provider)" "pa" "reset after content: the stream was already committed"
like "$body" 'tok1' "content before the cut reached the client"
like "$body" 'data: \{"error":\{"message":"[^"]+","type":"upstream_error"' "a cut-off stream ends with an SSE error event"
like "$body" 'curl=0$' "the response still ends cleanly (chunked terminator)"
mock_mode A a-st "stream;chunks=5;stall_after=2;stall_ms=4000"
body=$(curl -s -N "${AUTH[@]}" "$GW_URL/v1/chat/completions" -d "$sbody")
like "$(printf '%s' "$body" | tr '\n' ' ')" 'tok1.*"message":"stream idle for 2s"' "stream_idle_timeout ends a stream stalled after content with an error event"
mock_mode A a-st "stream;chunks=5;first_gap_ms=3000"
curl -s -N -D "$TMP/h" "${AUTH[@]}" "$GW_URL/v1/chat/completions" -d "$sbody" >/dev/null
is "$(hdr X-Autoswitch-Provider)" "pb" "a stream idle before any content fails over"
mock_mode A a-st "stream;no_done=1;close=1"
body=$(curl -s -N "${AUTH[@]}" "$GW_URL/v1/chat/completions" -d "$sbody")
like "$body" 'ended without \[DONE\]' "a close-delimited stream cut off without [DONE] ends with an error event"
mock_mode A a-st null

# ---- client disconnect mid-stream: the upstream connection closes at once ----
out=$(python3 - "$GW_PORT" "$PC" <<'PY'
import socket, sys, time, json, urllib.request
gw, mock = int(sys.argv[1]), int(sys.argv[2])
def stats():
    return json.load(urllib.request.urlopen("http://127.0.0.1:%d/_mock/stats" % mock))
s = socket.create_connection(("127.0.0.1", gw))
body = json.dumps({"model": "cst", "stream": True, "messages": [{"role": "user", "content": "x"}]})
s.sendall(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ck\r\n"
           "X-Mock-Mode: stream;chunks=100;gap_ms=100\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
buf = b""
while buf.count(b"data:") < 2:
    buf += s.recv(4096)
before = stats()["open"]
s.close()
t0 = time.time()
while time.time() - t0 < 3 and stats()["open"] > 1:   # 1 = our own stats request
    time.sleep(0.05)
print("%d %.1f" % (before, time.time() - t0))
PY
)
before=${out% *}; took=${out#* }
ok $([ "$before" -ge 2 ] && awk "BEGIN{exit !($took < 1.0)}"; echo $?) "client gone mid-stream: upstream connection closed within 1 s (took ${took}s)"
like "$(cat "$GW_LOG")" 'client disconnected mid-stream' "the disconnect is logged"

# ---- a slow reader: memory stays flat while 50 MB pass ----
out=$(python3 - "$GW_PORT" "$GW_PID" <<'PY'
import socket, sys, time, json
gw, pid = int(sys.argv[1]), int(sys.argv[2])
def rss():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
s = socket.create_connection(("127.0.0.1", gw))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
body = json.dumps({"model": "cst", "stream": True, "messages": [{"role": "user", "content": "x"}]})
s.sendall(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ck\r\n"
           "X-Mock-Mode: stream;total_bytes=52428800;event_bytes=16384\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
base = rss(); peak = base; got = 0; tail = b""
t0 = time.time()
while time.time() - t0 < 60:
    c = s.recv(65536)
    if not c: break
    got += len(c); tail = (tail + c)[-64:]
    if b"0\r\n\r\n" in tail: break
    time.sleep(0.002)
    peak = max(peak, rss())
print("%d %d %d" % (got // 1048576, base, peak))
PY
)
set -- $out
ok $([ "${1:-0}" -ge 50 ]; echo $?) "a 50 MB stream passes to a slow reader (${1:-0} MB)"
if sanitized; then
    skip_one "RSS under ASan is the sanitizer's"
else
    ok $([ $(( ${3:-999999} - ${2:-0} )) -lt 8192 ]; echo $?) "gateway RSS stays flat: base ${2:-?} KiB, peak ${3:-?} KiB"
fi

# ---- other endpoints ----
body=$(curl -s -D "$TMP/h" "${AUTH[@]}" "$GW_URL/v1/embeddings" -d '{"model":"ok","input":"x"}')
is "$(status)/$(jget "$body" 'j["model"]')" "200/ok" "/v1/embeddings goes through the same machinery"
for ep in completions responses moderations images/generations audio/speech; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" "$GW_URL/v1/$ep" -d '{"model":"ok","prompt":"x","input":"x"}')
    is "$code" 200 "/v1/$ep is proxied"
done

# ---- a reload while a stream runs: it finishes on the config it started with ----
curl -s -N "${AUTH[@]}" -H "X-Mock-Mode: stream;chunks=8;gap_ms=250" "$GW_URL/v1/chat/completions" -d "$sbody" > "$TMP/inflight.sse" &
inflight=$!
sleep 0.6
sed -i '/alias: st}/d' "$TMP/cfg.yaml"
kill -HUP "$GW_PID"
sleep 0.3
code=$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" "$GW_URL/v1/chat/completions" -d "$sbody")
is "$code" 404 "after the reload the removed alias is gone for new requests"
wait $inflight
like "$(tail -c 40 "$TMP/inflight.sse")" 'data: \[DONE\]' "the stream in flight finished on its old config"
unlike "$(cat "$TMP/inflight.sse")" '"error"' "... without an error"

stop_gateway
done_testing
