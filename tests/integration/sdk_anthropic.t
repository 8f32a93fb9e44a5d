#!/usr/bin/env bash
# The official Anthropic SDK (node, npm "@anthropic-ai/sdk") against the
# gateway: messages, streams, count_tokens, models, failover, errors.
. "$(dirname "$0")/../lib.sh"
"$ROOT/scripts/deps.sh" node >/dev/null 2>&1 || true
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || skip_all "node/npm not available"
SDK=$ROOT/tests/sdk_anthropic
if [ ! -d "$SDK/node_modules/@anthropic-ai/sdk" ]; then
    (cd "$SDK" && npm ci --silent --no-audit --no-fund >"$TMP/npm.log" 2>&1) ||
        { sed 's/^/# /' "$TMP/npm.log"; skip_all "npm ci failed (registry unreachable?)"; }
fi
# A: Anthropic (x-api-key ka) and OpenAI (Bearer ka); B: Anthropic, Bearer kb.
start_mock A --require-auth ka || exit 1
start_mock B --require-auth kb --anthropic-auth bearer || exit 1
PA=$(mock_port A); PB=$(mock_port B)
mock_mode A a-fo 529
mock_mode A a-broken 503
mock_mode A a-cut "stream;cut_after=3"
cat > "$TMP/cfg.yaml" <<Y
api_keys: ["ck-sdk-anthropic"]
max_retries: 3
model_retries: 0
max_failures: 1000
providers:
  - name: pa
    anthropic_base_url: http://127.0.0.1:$PA
    api_key: ka
    model_mappings: [{upstream: a-sdk, alias: sdk}, {upstream: a-fo, alias: fo}, {upstream: a-broken, alias: broken}, {upstream: a-cut, alias: cut}]
  - name: pb
    anthropic_base_url: http://127.0.0.1:$PB
    anthropic_auth: bearer
    api_key: kb
    priority: 1
    model_mappings: [{upstream: b-fo, alias: fo}]
  - name: popenai
    base_url: http://127.0.0.1:$PA
    api_key: ka
    model_mappings: [{upstream: a-oa, alias: oa}]
Y
start_gateway "$TMP/cfg.yaml" || { echo "Bail out! gateway did not start"; exit 1; }
# The node script prints its own TAP; renumber it into this file's plan.
# No ANTHROPIC_* variable of the caller's may steer the SDK.
out=$(env -u ANTHROPIC_API_KEY -u ANTHROPIC_AUTH_TOKEN -u ANTHROPIC_BASE_URL -u ANTHROPIC_CUSTOM_HEADERS \
    -u ANTHROPIC_LOG HOME="$TMP" GW_URL="$GW_URL" CLIENT_KEY=ck-sdk-anthropic PROVIDER_KEY=ka \
    MOCK_URL="http://127.0.0.1:$PA" timeout 120 node "$SDK/sdk_anthropic.test.js" 2>&1)
rc=$?
while IFS= read -r line; do
    case "$line" in
        "ok "*) ok 0 "${line#ok * - }" ;;
        "not ok "*) ok 1 "${line#not ok * - }" ;;
        "#"*) echo "$line" ;;
    esac
done <<< "$out"
ok $rc "the SDK script exits 0"
stop_gateway
done_testing
