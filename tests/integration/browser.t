#!/usr/bin/env bash
# The admin web page in a real browser (Debian's chromium driven by
# playwright-core): login, health table, provider editing saved to disk and
# in force, a failing upstream turning red, the live log, XSS safety, no
# console errors, named keys and their usage (a usage file seeded with
# earlier days, requests made with the keys before the browser starts), a
# 360 px phone layout, and screenshots of every tab in tests/screenshots/.
# The browser steps are tests/browser/ui.test.js; its TAP lines are
# numbered after this file's own and counted in its plan.
. "$(dirname "$0")/../lib.sh"

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || skip_all "no chromium at $CHROMIUM (apt-get install chromium, or scripts/deps.sh browser)"
command -v node >/dev/null 2>&1 || skip_all "node is not installed (apt-get install nodejs npm)"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)' ||
    skip_all "node $(node --version) is too old (18 or later needed)"

BROWSER_DIR=$ROOT/tests/browser
if [ ! -f "$BROWSER_DIR/node_modules/playwright-core/package.json" ]; then
    command -v npm >/dev/null 2>&1 || skip_all "npm is not installed (apt-get install npm)"
    # Exactly what package-lock.json pins; no browser download (we use chromium).
    if ! (cd "$BROWSER_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --silent --no-audit --no-fund) >"$TMP/npm.log" 2>&1; then
        sed 's/^/# /' "$TMP/npm.log" | tail -5
        skip_all "npm ci in tests/browser failed (no access to the npm registry?)"
    fi
fi

start_mock A || exit 1
start_mock B || exit 1
PA=$(mock_port A); PB=$(mock_port B)

# A gateway without admin_key: the page must show the server's 403 message.
cat > "$TMP/noadmin.yaml" <<Y
api_keys: ["ck"]
providers:
  - name: pa
    base_url: http://127.0.0.1:$PA
    model_mappings: [{upstream: m1, alias: m}]
Y
start_gateway "$TMP/noadmin.yaml" || { echo "Bail out! gateway (no admin_key) did not start"; exit 1; }
NOADMIN_URL=$GW_URL
NOADMIN_PID=$GW_PID

# Usage of earlier (local) days: two inside the page's default last 7
# days, one before them.
USAGE=$TMP/usage.json
D1=$(date -d '-1 day' +%F); D3=$(date -d '-3 days' +%F); D10=$(date -d '-10 days' +%F)
row() {  # row DAY KEY ALIAS PROVIDER UPSTREAM REQUESTS PROMPT COMPLETION CACHED
    printf '{"day":"%s","key":"%s","alias":"%s","provider":"%s","upstream":"%s","dialect":"openai",' "$1" "$2" "$3" "$4" "$5"
    printf '"requests":%s,"prompt_tokens":%s,"completion_tokens":%s,"cached_tokens":%s,"total_tokens":%s}' "$6" "$7" "$8" "$9" $(($7 + $8))
}
printf '{"version":1,"rows":[%s,%s,%s,%s]}\n' \
    "$(row "$D1" alice chat alpha a-chat 4 400 100 8)" \
    "$(row "$D1" 'bob <i>x</i>' fast beta b-fast 1 30 20 0)" \
    "$(row "$D3" 'bob <i>x</i>' fast beta b-fast 6 900 300 50)" \
    "$(row "$D10" alice chat alpha a-chat 9 9000 999 0)" > "$USAGE"

cat > "$TMP/cfg.yaml" <<Y
# browser test config
api_keys: ["ck-browser"]
admin_key: "adm-browser-key"
usage_file: $USAGE
keys:
  - {name: alice, key: "sk-alice-browser-0001", models: ["chat", "fa*"], rpm: 100, daily_tokens: 100000}
  - {name: "bob <i>x</i>", key: "sk-bob-browser-0002", max_concurrent: 2, expires: "2099-12-31"}
max_retries: 2
max_failures: 2
recovery_interval: 60
health_check_period: 120
providers:
  - name: alpha
    base_url: http://127.0.0.1:$PA
    api_key: sk-alpha-secret-0001
    model_mappings:
      - {upstream: a-chat, alias: chat}
      - {upstream: a-embed, alias: embed, probe: embeddings}
  - name: beta
    base_url: http://127.0.0.1:$PB/v1
    api_key: sk-beta-secret-0002
    exclude_params: [user]
    model_mappings:
      - {upstream: b-chat, alias: chat}
      - {upstream: b-fast, alias: fast, max_failures: 3, probe: models}
  - name: "<img src=x onerror=alert(1)>"
    base_url: http://127.0.0.1:$PB
    priority: 5
    model_mappings:
      - {upstream: "x-<b>up</b>", alias: "<script>alert(2)</script>"}
Y
start_gateway "$TMP/cfg.yaml" || { echo "Bail out! gateway did not start"; exit 1; }

# Usage of today, by both keys, and a refusal (alice may not use embed).
chat() {  # chat KEY MODEL: prints the status
    curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "$GW_URL/v1/chat/completions" \
        -d "{\"model\":\"$2\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
}
codes=""
for m in chat chat chat fast; do codes="$codes $(chat sk-alice-browser-0001 $m)"; done
for m in fast fast; do codes="$codes $(chat sk-bob-browser-0002 $m)"; done
codes="$codes $(chat sk-alice-browser-0001 embed)"
is "$codes" " 200 200 200 200 200 200 403" "requests with the named keys before the browser runs (the last one not allowed)"

mkdir -p "$ROOT/tests/screenshots"
GW_URL=$GW_URL NOADMIN_URL=$NOADMIN_URL ADMIN_KEY=adm-browser-key CLIENT_KEY=ck-browser \
CONFIG=$TMP/cfg.yaml KEY_ALICE=sk-alice-browser-0001 KEY_BOB=sk-bob-browser-0002 MOCK_A_URL=http://127.0.0.1:$PA MOCK_B_URL=http://127.0.0.1:$PB \
CHROMIUM=$CHROMIUM SHOT_DIR=$ROOT/tests/screenshots TAP_OFFSET=$T_N \
    timeout 120 node "$BROWSER_DIR/ui.test.js" 2>&1 | tee "$TMP/node.tap"
status=${PIPESTATUS[0]}
# Fold the runner's test lines (numbered after ours) into our count, even
# when it died half-way.
T_N=$((T_N + $(grep -Ec '^(not )?ok [0-9]' "$TMP/node.tap")))
T_FAIL=$((T_FAIL + $(grep -Ec '^not ok [0-9]' "$TMP/node.tap")))
ok "$status" "the browser test runner finished cleanly (exit $status)"

kill "$NOADMIN_PID" 2>/dev/null
stop_gateway
done_testing
