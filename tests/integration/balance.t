#!/usr/bin/env bash
# Candidate order: the attempts cap, priority groups, and weights that
# interleave exactly (smooth weighted round robin).
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/proxy_env.sh"

# ---- attempts cap and priority order ----
for m in cap1 cap2; do mock_mode A $m 500; done
mock_mode B cap3 500
sed -i 's/^max_retries: 3/max_retries: 2/' "$TMP/cfg.yaml"
kill -HUP "$GW_PID"; sleep 0.4
hits() { echo "$(mock_hits A cap1) $(mock_hits A cap2) $(mock_hits B cap3)"; }
before=$(hits)
body=$(chat cap)
is "$(status)" 502 "three failing candidates, max_retries 2: 502"
tried=$(python3 -c 'import sys; b=sys.argv[1].split(); a=sys.argv[2].split(); d=[int(y)-int(x) for x,y in zip(b,a)]; print(sum(1 for v in d if v), sorted(d))' "$before" "$(hits)")
is "$tried" "2 [0, 2, 2]" "exactly max_retries distinct candidates, each tried twice (a 500 is retried once, model_retries: 1)"
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

stop_gateway
done_testing
