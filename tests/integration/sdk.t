#!/usr/bin/env bash
# The official OpenAI SDK (node, npm "openai") against the gateway.
. "$(dirname "$0")/../lib.sh"
"$ROOT/scripts/deps.sh" node >/dev/null 2>&1 || true
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || skip_all "node/npm not available"
SDK=$ROOT/tests/sdk
if [ ! -d "$SDK/node_modules/openai" ]; then
    (cd "$SDK" && npm ci --silent --no-audit --no-fund >"$TMP/npm.log" 2>&1) ||
        { sed 's/^/# /' "$TMP/npm.log"; skip_all "npm ci failed (registry unreachable?)"; }
fi
start_mock A || exit 1
PA=$(mock_port A)
mock_mode A cut "reset_stream;chunks=3"
mock_mode A broken 503
cat > "$TMP/cfg.yaml" <<Y
api_keys: ["ck"]
providers:
  - name: pa
    base_url: http://127.0.0.1:$PA
    model_mappings: [{upstream: a, alias: sdk}, {upstream: broken, alias: broken}, {upstream: cut, alias: cut}]
Y
start_gateway "$TMP/cfg.yaml" || { echo "Bail out! gateway did not start"; exit 1; }
# The node script prints its own TAP; renumber it into this file's plan.
out=$(GW_URL="$GW_URL" CLIENT_KEY=ck MOCK_URL="http://127.0.0.1:$PA" node "$SDK/sdk.test.js" 2>&1)
while IFS= read -r line; do
    case "$line" in
        "ok "*) ok 0 "${line#ok * - }" ;;
        "not ok "*) ok 1 "${line#not ok * - }" ;;
        "#"*) echo "$line" ;;
    esac
done <<< "$out"
stop_gateway
done_testing
