# The gateway and mocks shared by proxy.t, balance.t and stream.t:
# three mocks (A, B, C), a config with one alias per scenario, and helpers.
# Sourced after tests/lib.sh.

start_mock A --ratelimit 100 || exit 1   # x-ratelimit-* on every answer
start_mock B --ratelimit 200 || exit 1
start_mock C || exit 1
PA=$(mock_port A); PB=$(mock_port B); PC=$(mock_port C)
DEAD=$(free_port)

cat > "$TMP/cfg.yaml" <<Y
api_keys: ["ck"]
forward_headers: ["X-Mock-Mode"]   # the tests steer the mocks through the gateway
max_retries: 3
max_failures: 1000
stream_idle_timeout: 2
providers:
  - name: pa
    base_url: http://127.0.0.1:$PA
    api_key: key-a
    timeout: 2
    exclude_params: [thinking, verbosity]
    forward_headers: [X-Trace-Id]
    headers: {HTTP-Referer: "https://autoswitch.test", X-Title: "proxy.t"}
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

