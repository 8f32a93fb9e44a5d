#!/usr/bin/env bash
# make demo: two mock providers on 127.0.0.1 (one answers, one fails half of
# its requests with 500s and resets) and the gateway on conf/demo.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${AUTOSWITCH_BIN:-build/autoswitch}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM
python3 tests/mock_upstream.py --port 18081 --name steady --mode ok >/dev/null 2>&1 &
pids+=($!)
python3 tests/mock_upstream.py --port 18082 --name flaky --mode "flaky;rate=0.5" >/dev/null 2>&1 &
pids+=($!)
port=${PORT:-3000}
cat <<MSG
Demo providers: steady (127.0.0.1:18081) and flaky (127.0.0.1:18082, fails 50%).
Gateway: http://localhost:$port   (client key: demo, admin key: demo-admin)

  curl -s localhost:$port/v1/chat/completions -H 'Authorization: Bearer demo' \\
       -d '{"model":"gpt-demo","messages":[{"role":"user","content":"hi"}]}' -D - 
  curl -sN localhost:$port/v1/chat/completions -H 'Authorization: Bearer demo' \\
       -d '{"model":"gpt-demo","stream":true,"messages":[{"role":"user","content":"hi"}]}'
  curl -s localhost:$port/internal/stats -H 'X-API-Key: demo-admin'
  open http://localhost:$port/ for the admin UI

Watch X-Autoswitch-Provider / X-Autoswitch-Attempts and the log below.
Ctrl-C stops everything.
MSG
"$BIN" -c conf/demo.yaml -p "$port"
