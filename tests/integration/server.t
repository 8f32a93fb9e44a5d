#!/usr/bin/env bash
# The server core: CLI, config errors, auth, /v1/models, limits, framing,
# keep-alive and pipelining, timeouts, connection cap, logging, reload.
. "$(dirname "$0")/../lib.sh"

# ---- command line ----
out=$("$BIN" --version)
like "$out" '^autoswitch [0-9]+\.[0-9]+\.[0-9]+' "--version prints the version"
out=$("$BIN" --help)
like "$out" 'check-config' "--help lists the options"
"$BIN" --bogus >/dev/null 2>&1
is "$?" 2 "unknown option exits 2"

cat > "$TMP/good.yaml" <<'Y'
api_keys: ["k-one", "k-two"]
admin_key: "adm"
max_body_bytes: 2000
max_connections: 8
providers:
  - name: p1
    base_url: http://127.0.0.1:9
    api_key: sk-secret-upstream
    model_mappings:
      - upstream: up-a
        alias: zeta
      - upstream: up-b
        alias: alpha
  - name: p2
    base_url: http://127.0.0.1:9/v1
    model_mappings:
      - upstream: up-c
        alias: alpha
      - upstream: "org/model"
Y
out=$("$BIN" --check-config -c "$TMP/good.yaml" 2>&1)
ok $? "--check-config accepts a good file"
like "$out" 'OK' "--check-config says OK"

cat > "$TMP/bad.yaml" <<'Y'
max_retries: 2
providers:
  - name: p1
    base_url: http://127.0.0.1:9
    model_mappings:
      - alias: nothing
Y
out=$("$BIN" --check-config -c "$TMP/bad.yaml" 2>&1)
is "$?" 1 "--check-config rejects a bad file with exit 1"
like "$out" 'bad\.yaml:6:[0-9]+: providers\[0\]\.model_mappings\[0\]: upstream is required' \
    "the error names file:line:column and the key path"
out=$("$BIN" -c "$TMP/bad.yaml" -p 1 2>&1)
is "$?" 1 "a bad config never starts the server"
out=$("$BIN" -c "$TMP/missing.yaml" --check-config 2>&1)
is "$?" 1 "a missing config file is an error"

# ---- a running gateway ----
start_gateway "$TMP/good.yaml" || { echo "Bail out! gateway did not start"; exit 1; }
A=(-H "Authorization: Bearer k-two")

code=$(curl -s -o "$TMP/b" -w '%{http_code}' "$GW_URL/healthz")
is "$code" 200 "/healthz answers 200 without auth"

body=$(curl -s -w '\n%{http_code}' "$GW_URL/v1/models")
like "$body" '"message":"Missing Authorization header"' "no Authorization: reference message"
like "$body" '401$' "no Authorization: 401"
body=$(curl -s -H "Authorization: Basic abc" "$GW_URL/v1/models")
like "$body" 'Invalid Authorization header format. Expected: Bearer <api_key>' "wrong scheme: reference message"
body=$(curl -s -w '\n%{http_code}' -H "Authorization: Bearer nope" "$GW_URL/v1/models")
like "$body" '"type":"invalid_api_key"' "wrong key: invalid_api_key"
like "$body" '"param":null' "errors have the OpenAI shape"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: bearer   k-one" "$GW_URL/v1/models")
is "$code" 200 "scheme is case-insensitive and the key is trimmed"

body=$(curl -s "${A[@]}" "$GW_URL/v1/models")
ids=$(jget "$body" '",".join(m["id"] for m in j["data"])')
is "$ids" "alpha,org/model,zeta" "/v1/models lists aliases sorted, without duplicates"
is "$(jget "$body" 'j["object"]')" "list" "/v1/models is a list object"
body=$(curl -s "${A[@]}" "$GW_URL/v1/models/alpha")
is "$(jget "$body" 'j["id"]+"/"+j["object"]')" "alpha/model" "/v1/models/{id} returns the model"
body=$(curl -s "${A[@]}" "$GW_URL/v1/models/org%2Fmodel")
is "$(jget "$body" 'j["id"]')" "org/model" "/v1/models/{id} decodes %2F"
body=$(curl -s "${A[@]}" "$GW_URL/v1/models/org/model")
is "$(jget "$body" 'j["id"]')" "org/model" "/v1/models/{id} with a slash"
body=$(curl -s -w '\n%{http_code}' "${A[@]}" "$GW_URL/v1/models/nope")
like "$body" '"code":"model_not_found"' "unknown model: model_not_found"
like "$body" '404$' "unknown model: 404"

body=$(curl -s -w '\n%{http_code}' "$GW_URL/nowhere")
like "$body" '^\{"error":' "unknown path: JSON error"
like "$body" '404$' "unknown path: 404"
hdr=$(curl -s -D - -o /dev/null -X POST "${A[@]}" "$GW_URL/v1/models")
like "$hdr" '^HTTP/1.1 405' "wrong method: 405"
like "$hdr" 'Allow: GET, HEAD' "405 carries Allow"
hdr=$(curl -s -I "$GW_URL/healthz")
like "$hdr" 'Content-Length: 16' "HEAD gets the GET headers"

# ---- CORS: web pages may call /v1 (bearer keys, never cookies), not the admin API ----
hdr=$(curl -s -D - -o "$TMP/b" -X OPTIONS -H "Origin: https://chat.example" \
    -H "Access-Control-Request-Method: POST" -H "Access-Control-Request-Headers: authorization, content-type, x-stainless-os" \
    "$GW_URL/v1/chat/completions")
like "$hdr" '^HTTP/1.1 204' "a CORS preflight on /v1 gets 204 without a key"
like "$hdr" $'Access-Control-Allow-Origin: \\*\r' "... any origin"
like "$hdr" $'Access-Control-Allow-Methods: POST, OPTIONS\r' "... the path's methods"
like "$hdr" $'Access-Control-Allow-Headers: authorization, content-type, x-stainless-os\r' "... the headers asked for"
like "$hdr" 'Access-Control-Max-Age: 86400' "... cached for a day"
is "$(wc -c < "$TMP/b")" 0 "... and no body"
hdr=$(curl -s -D - -o /dev/null -X OPTIONS "$GW_URL/v1/models/zeta")
like "$hdr" $'Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r' "a preflight without request headers: GET paths"
like "$hdr" $'Access-Control-Allow-Headers: Authorization, Content-Type\r' "... Authorization and Content-Type allowed"
hdr=$(curl -s -D - -o /dev/null -H "Origin: https://chat.example" "${A[@]}" "$GW_URL/v1/models")
like "$hdr" $'Access-Control-Allow-Origin: \\*\r' "a /v1 answer may be read by any page"
like "$hdr" $'Access-Control-Expose-Headers: \\*\r' "... with its headers (X-Request-Id, x-ratelimit-*)"
hdr=$(curl -s -D - -o /dev/null -H "Origin: https://chat.example" "$GW_URL/v1/models")
like "$hdr" '^HTTP/1.1 401' "a 401 ..."
like "$hdr" 'Access-Control-Allow-Origin: ' "... can be read by the page too"
hdr=$(curl -s -D - -o /dev/null -X OPTIONS "$GW_URL/v1/nowhere")
like "$hdr" '^HTTP/1.1 404' "a preflight on an unknown /v1 path: 404"
hdr=$(curl -s -D - -o /dev/null -X OPTIONS -H "Origin: https://evil.example" "$GW_URL/api/admin/health")
like "$hdr" '^HTTP/1.1 405' "no preflight for the admin API: 405"
unlike "$hdr" 'Access-Control' "... and no CORS header"
hdr=$(curl -s -D - -o /dev/null -H "Origin: https://evil.example" "$GW_URL/api/admin/health")
unlike "$hdr" 'Access-Control' "admin answers carry no CORS header"

# ---- keep-alive and pipelining ----
n=$(curl -s -o /dev/null -o /dev/null -w '%{num_connects}\n' "$GW_URL/healthz" "$GW_URL/healthz" | awk '{s+=$1} END {print s}')
is "$n" 1 "two requests share one keep-alive connection"
out=$(printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | raw "$GW_PORT")
codes=$(printf '%s' "$out" | grep -o '^HTTP/1.1 [0-9]*' | awk '{print $2}' | paste -sd,)
is "$codes" "200,404,200" "pipelined requests are answered in order"
like "$out" '<<closed>>' "Connection: close closes after the answer"

out=$(printf 'GET /healthz HTTP/1.0\r\n\r\n' | raw "$GW_PORT")
like "$out" '^HTTP/1.1 200' "HTTP/1.0 request answered"
like "$out" '<<closed>>' "HTTP/1.0 without keep-alive is closed"
out=$(printf 'GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n' | raw "$GW_PORT" --idle 0.5)
like "$out" 'Connection: keep-alive' "HTTP/1.0 keep-alive is honoured"
like "$out" '<<open>>' "HTTP/1.0 keep-alive connection stays open"

# ---- limits and framing errors ----
out=$(printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' | raw "$GW_PORT")
like "$out" '^HTTP/1.1 400' "Content-Length with Transfer-Encoding: 400"
like "$out" '<<closed>>' "... and the connection is closed"
out=$(printf 'POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd' | raw "$GW_PORT")
like "$out" '^HTTP/1.1 400' "two different Content-Lengths: 400"
like "$out" '<<closed>>' "... and the connection is closed"
out=$(printf 'GARBAGE\r\n\r\n' | raw "$GW_PORT")
like "$out" '^HTTP/1.1 400' "malformed request line: 400"
like "$out" '<<closed>>' "... and close"
out=$(printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n folded: y\r\n\r\n' | raw "$GW_PORT")
like "$out" '^HTTP/1.1 400' "obsolete header folding: 400"
out=$( { printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: '; head -c 17000 /dev/zero | tr '\0' a; printf '\r\n\r\n'; } | raw "$GW_PORT")
like "$out" '^HTTP/1.1 431' "request head over 16 KiB: 431"
out=$( { printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n'; for i in $(seq 1 150); do printf 'X-H%d: v\r\n' "$i"; done; printf '\r\n'; } | raw "$GW_PORT")
like "$out" '^HTTP/1.1 431' "absurd header count: 431"
out=$( { printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k-one\r\nContent-Length: 5000\r\n\r\n'; head -c 5000 /dev/zero; } | raw "$GW_PORT")
like "$out" '^HTTP/1.1 413' "body over max_body_bytes: 413"
out=$( { printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k-one\r\nTransfer-Encoding: chunked\r\n\r\n'; printf '800\r\n'; head -c 2048 /dev/zero; printf '\r\n800\r\n'; head -c 2048 /dev/zero; printf '\r\n0\r\n\r\n'; } | raw "$GW_PORT")
like "$out" '^HTTP/1.1 413' "chunked body over max_body_bytes: 413"
out=$(printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k-one\r\nTransfer-Encoding: chunked\r\n\r\n100000000\r\n' | raw "$GW_PORT")
like "$out" '^HTTP/1.1 413' "a 4 GiB chunk: 413"
out=$(printf 'POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n' | raw "$GW_PORT")
like "$out" '^HTTP/1.1 400' "Content-Length of 2^64: 400"
out=$(printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k-one\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n' | raw "$GW_PORT" --idle 1)
like "$out" '^HTTP/1.1 100 Continue' "Expect: 100-continue gets 100 Continue"
out=$(printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k-one\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n' | raw "$GW_PORT" --idle 1)
like "$out" '^HTTP/1.1 413' "Expect with a too large body: 413 at once, no 100"
out=$(printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Nul: a\0b\r\n\r\n' | raw "$GW_PORT")
like "$out" '^HTTP/1.1 400' "NUL byte in a header: 400"

# ---- slowloris: head must complete within 10 s ----
start=$SECONDS
out=$(python3 - "$GW_PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
s.settimeout(1)
data = b""
deadline = time.time() + 15
while time.time() < deadline:
    try:
        s.sendall(b"X-a: b\r\n")
    except OSError:
        break
    try:
        c = s.recv(4096)
        if not c:
            break
        data += c
    except socket.timeout:
        pass
    except OSError:
        break
print(data.decode(errors="replace").split("\r\n")[0])
PY
)
elapsed=$((SECONDS - start))
is "$out" "HTTP/1.1 408 Request Timeout" "a head dribbled byte by byte gets 408"
ok $([ $elapsed -ge 9 ] && [ $elapsed -le 16 ]; echo $?) "... after about 10 s (took ${elapsed}s)"

# ---- connection cap ----
out=$(python3 - "$GW_PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
time.sleep(0.3)
extra = socket.create_connection(("127.0.0.1", port))
extra.settimeout(3)
extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
first = extra.recv(4096).decode().split("\r\n")[0]
# one held connection still works while the cap is reached
held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
held[0].settimeout(3)
second = held[0].recv(4096).decode().split("\r\n")[0]
print(first + "|" + second)
PY
)
is "$out" "HTTP/1.1 503 Service Unavailable|HTTP/1.1 200 OK" "past max_connections: 503 for the newcomer, others keep working"
sleep 0.3
code=$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/healthz")
is "$code" 200 "connections are accepted again after the others left"

# ---- logging ----
log=$(cat "$GW_LOG")
like "$log" '[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} INFO ' "log lines carry a millisecond timestamp and level"
like "$log" 'GET /v1/models 200 [0-9]+B [0-9]+ms' "one access line per request: method path status bytes duration"
unlike "$log" 'k-one|k-two|sk-secret-upstream' "no API key reaches the log"

# ---- reload ----
cp "$TMP/good.yaml" "$TMP/live.yaml"
stop_gateway
start_gateway "$TMP/live.yaml" || exit 1
printf 'providers: [\n' > "$TMP/live.yaml"
kill -HUP "$GW_PID"
sleep 0.5
body=$(curl -s "${A[@]}" "$GW_URL/v1/models")
is "$(jget "$body" 'len(j["data"])')" 3 "SIGHUP with a broken file keeps the running config"
like "$(cat "$GW_LOG")" 'live\.yaml:[0-9]+:[0-9]+' "the reload error names file:line:column"
sed 's/alias: zeta/alias: omega/' "$TMP/good.yaml" > "$TMP/live.yaml"
kill -HUP "$GW_PID"
sleep 0.5
body=$(curl -s "${A[@]}" "$GW_URL/v1/models")
ids=$(jget "$body" '",".join(m["id"] for m in j["data"])')
is "$ids" "alpha,omega,org/model" "SIGHUP with a good file swaps the config in"
stop_gateway
done_testing
