#!/usr/bin/env bash
# Streaming: byte identity but the model, events as they arrive, read-ahead
# failover, errors after commit, idle timeout, client disconnects, slow
# readers, other endpoints, and a reload while a stream runs.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/proxy_env.sh"

# ---- streaming ----
sbody='{"model":"st","stream":true,"messages":[{"role":"user","content":"hi"}]}'
norm() { sed -E 's/"created": ?[0-9]+/"created":0/g'; }
# The gateway asks for include_usage on its own (to count tokens) and hides
# the usage-only chunk from a client that did not ask: the upstream's
# stream, as the gateway gets it, is the direct one with include_usage.
ubody='{"model":"a-st","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}'
drop_usage_chunk() {
    python3 -c '
import re,sys
data=sys.stdin.buffer.read()
parts=re.split(rb"(\r?\n\r?\n)", data)
out=b""
for i in range(0, len(parts), 2):
    ev=parts[i]; sep=parts[i+1] if i+1 < len(parts) else b""
    if re.search(rb"\"choices\": ?\[\]", ev) and b"\"usage\"" in ev:
        continue
    out+=ev+sep
sys.stdout.buffer.write(out)'
}
curl -s -N "${AUTH[@]}" -D "$TMP/h" "$GW_URL/v1/chat/completions" -d "$sbody" > "$TMP/gw.sse"
curl -s -N "http://127.0.0.1:$PA/v1/chat/completions" -d "$ubody" | drop_usage_chunk > "$TMP/direct.sse"
is "$(status)" 200 "stream: 200"
like "$(hdr Content-Type)" '^text/event-stream' "stream: text/event-stream"
is "$(hdr Cache-Control)" "no-cache" "stream: Cache-Control no-cache"
like "$(hdr Transfer-Encoding)" 'chunked' "stream: chunked to the client"
sed 's/"model":"a-st"/"model":"st"/g; s/"model": "a-st"/"model": "st"/g' "$TMP/direct.sse" | norm > "$TMP/want.sse"
norm < "$TMP/gw.sse" > "$TMP/got.sse"
check "stream bytes identical to the upstream's except the model" -- cmp -s "$TMP/want.sse" "$TMP/got.sse"
like "$(tail -c 20 "$TMP/gw.sse")" 'data: \[DONE\]' "stream ends with [DONE]"
curl -s -N "${AUTH[@]}" "$GW_URL/v1/chat/completions" -d "${ubody/\"a-st\"/\"st\"}" | norm > "$TMP/got.sse"
curl -s -N "http://127.0.0.1:$PA/v1/chat/completions" -d "$ubody" | sed 's/"model": \?"a-st"/"model":"st"/g' \
    | norm > "$TMP/want.sse"
sed -i 's/"model": "st"/"model":"st"/g' "$TMP/want.sse" "$TMP/got.sse"
check "a client that asks for include_usage gets the upstream's stream, usage chunk and all" -- \
    cmp -s "$TMP/want.sse" "$TMP/got.sse"
like "$(cat "$TMP/got.sse")" '"choices": ?\[\]' "... (it has one)"

for opt in "split=1" "crlf=1" "split=1;crlf=1;chunks=7"; do
    curl -s -N "${AUTH[@]}" -H "X-Mock-Mode: stream;$opt" "$GW_URL/v1/chat/completions" -d "$sbody" | norm > "$TMP/got.sse"
    curl -s -N -H "X-Mock-Mode: stream;$opt" "http://127.0.0.1:$PA/v1/chat/completions" -d "$ubody" \
        | drop_usage_chunk | sed 's/"model": \?"a-st"/"model":"st"/g' | norm > "$TMP/want.sse"
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
like "$(printf '%s' "$body" | tr '\n' ' ')" '"finish_reason":"stop".*data: \[DONE\]' \
    "a stream that ends cleanly after its finish_reason but without [DONE] is complete: the gateway adds [DONE]"
unlike "$body" '"error"' "... and no error event"
mock_mode A a-st "stream;words=6;cut_after=3;cut=close"
body=$(curl -s -N "${AUTH[@]}" "$GW_URL/v1/chat/completions" -d "$sbody")
like "$(printf '%s' "$body" | tr '\n' ' ')" 'w3 .*data: \{"error":\{"message":"upstream closed the connection before the end of the body"' \
    "a stream cut after content without a finish ends with an error event"
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

# ---- SIGTERM while a stream runs: it finishes, then the process exits ----
sed -i 's/{upstream: a-ok, alias: ok}/{upstream: a-ok, alias: ok}\n      - {upstream: a-st, alias: st}/' "$TMP/cfg.yaml"
kill -HUP "$GW_PID"; sleep 0.3
curl -s -N "${AUTH[@]}" -H "X-Mock-Mode: stream;chunks=8;gap_ms=250" "$GW_URL/v1/chat/completions" -d "$sbody" > "$TMP/drain.sse" &
streaming=$!
sleep 0.5
kill -TERM "$GW_PID"
sleep 0.3
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$GW_URL/healthz")
is "$code" 000 "while draining, new connections are not accepted"
wait $streaming
like "$(tail -c 40 "$TMP/drain.sse")" 'data: \[DONE\]' "SIGTERM lets the running stream finish"
status=0
wait "$GW_PID" || status=$?
is "$status" 0 "then the gateway exits 0"
like "$(cat "$GW_LOG")" 'shutdown complete' "... and says so"
is "$(cat "$TMP"/san* 2>/dev/null | head -c 2000)" "" "no sanitizer report"
done_testing
