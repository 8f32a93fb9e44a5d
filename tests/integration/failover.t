#!/usr/bin/env bash
# Failover rules through the real binary: same-candidate retries of
# transient failures, short Retry-After waits and busy backoffs, deadlines
# (request_timeout, first_token_timeout), a clean end without [DONE],
# context-length 400s that route on, half-open recovery, mid-stream
# continuation (prefill, prefix, continue_final_message, replay),
# response_model, and failed attempts never counted as served.
# Every check counts mock hits, reads the X-Autoswitch-* headers, or times.
. "$(dirname "$0")/../lib.sh"

# The helpers run python3 often: call the interpreter itself, not a
# version manager's shim (pyenv's costs ~0.4 s a call).
mkdir -p "$TMP/bin"
ln -s "$(python3 -c 'import sys; print(sys.executable)')" "$TMP/bin/python3"
PATH=$TMP/bin:$PATH

start_mock A || exit 1
start_mock B || exit 1
start_mock C || exit 1
start_mock D || exit 1
start_mock E --idle-timeout 0.2 || exit 1   # closes idle connections: each request there is on a new one
PA=$(mock_port A); PB=$(mock_port B); PC=$(mock_port C); PD=$(mock_port D); PE=$(mock_port E)
ADMIN_KEY="failover-admin-key-0123456789"

# ---------------------------------------------------------------- helpers
AUTH=(-H "Authorization: Bearer ck" -H "Content-Type: application/json")
# chat ALIAS [EXTRA_JSON] [curl args...]: body in $BODY (and $TMP/body),
# head in $TMP/h, seconds in $TOOK, curl's exit status in $CURL_RC.
chat() {
    local alias=$1 extra=${2:-}
    shift 2 2>/dev/null || shift
    TOOK=$(curl -s -N -o "$TMP/body" -D "$TMP/h" -w '%{time_total}' --max-time 30 "${AUTH[@]}" "$@" \
        "$GW_URL/v1/chat/completions" \
        -d "{\"model\":\"$alias\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]$extra}")
    CURL_RC=$?
    BODY=$(cat "$TMP/body")
}
schat() {  # schat ALIAS [EXTRA_JSON] [curl args...]: the same with "stream": true
    local alias=$1 extra=${2:-}
    shift 2 2>/dev/null || shift
    chat "$alias" ",\"stream\":true$extra" "$@"
}
hdr() { grep -i "^$1:" "$TMP/h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
status() { head -1 "$TMP/h" | awk '{print $2}'; }
fge() { awk -v a="$1" -v b="$2" 'BEGIN{exit !(a+0 >= b+0)}'; }   # fge A B: A >= B
flt() { awk -v a="$1" -v b="$2" 'BEGIN{exit !(a+0 < b+0)}'; }    # flt A B: A < B
yn() { "$@" && echo yes || echo no; }
now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN{printf "%.2f", a-b}'; }   # since T0: seconds
hits() {  # hits MOCK MODEL: the mock's hit count for the model (mock_hits without a python start)
    local h
    h=$(curl -s "http://127.0.0.1:$(mock_port "$1")/_mock/stats" | grep -o '"hits": *{[^}]*}' |
        grep -o "\"$2\": *[0-9]*" | grep -o '[0-9]*$')
    echo "${h:-0}"
}
stats() { curl -s -H "X-API-Key: $ADMIN_KEY" "$GW_URL/internal/stats"; }
fo() {  # fo KEY: a counter of the stats' "failover" object
    stats | grep -o '"failover":{[^}]*}' | grep -o "\"$1\":[0-9]*" | cut -d: -f2
}
field() {  # field SNAPSHOT PROVIDER UPSTREAM FIELD
    printf '%s' "$1" | python3 -c '
import json,sys
p,u,f=sys.argv[1:4]
for pr in json.load(sys.stdin)["providers"]:
    for m in pr["model_healths"]:
        if m["provider_name"]==p and m["upstream_model"]==u:
            v=m[f]; print(json.dumps(v) if not isinstance(v,str) else v); sys.exit()
print("missing")' "$2" "$3" "$4"
}
model() { field "$(stats)" "$@"; }   # model PROVIDER UPSTREAM FIELD
metric() {  # metric 'NAME{labels}': its value from /metrics, "absent" when missing
    curl -s -H "Authorization: Bearer $ADMIN_KEY" "$GW_URL/metrics" | python3 "$ROOT/tests/promparse.py" |
        python3 -c 'import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print("absent" if v is None else v)' "$1"
}
recs() {  # recs MOCK MODEL: that model's request records (JSON list, oldest first)
    curl -s "http://127.0.0.1:$(mock_port "$1")/_mock/requests?n=200" |
        python3 -c 'import json,sys; print(json.dumps([r for r in json.load(sys.stdin) if r["model"]==sys.argv[1]]))' "$2"
}
# sse FILE: what a client saw in an OpenAI chat stream, as JSON: text (the
# deltas joined), ids, created, models (distinct, in order), finish (a
# finish_reason), done ([DONE] count), last ([DONE] is the last data line),
# errors (error events), comments, usage (a usage-only chunk), roles.
cat > "$TMP/sse.py" <<'PY'
import json, sys
raw = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
out = {"text": "", "ids": [], "created": [], "models": [], "finish": False, "done": 0, "last": False,
       "errors": 0, "comments": [], "usage": False, "roles": 0, "chunks": 0}
datas = []
for line in raw.replace("\r\n", "\n").split("\n"):
    if line.startswith(":"):
        out["comments"].append(line)
    elif line.startswith("data:"):
        datas.append(line[5:].strip())
for d in datas:
    if d == "[DONE]":
        out["done"] += 1
        continue
    try:
        o = json.loads(d)
    except ValueError:
        out["errors"] += 1
        continue
    if "error" in o:
        out["errors"] += 1
        continue
    out["chunks"] += 1
    for k, key in (("ids", "id"), ("created", "created"), ("models", "model")):
        if o.get(key) not in out[k]:
            out[k].append(o.get(key))
    if o.get("choices") == [] and isinstance(o.get("usage"), dict):
        out["usage"] = True
    for c in o.get("choices") or []:
        delta = c.get("delta") or {}
        out["text"] += delta.get("content") or ""
        if delta.get("role"):
            out["roles"] += 1
        if c.get("finish_reason"):
            out["finish"] = True
out["last"] = bool(datas) and datas[-1] == "[DONE]"
print(json.dumps(out))
PY
sse() { python3 "$TMP/sse.py" "$TMP/body"; }
all_ge() {  # all_ge MIN X...: every X >= MIN, and there is at least one
    local min=$1
    shift
    [ $# -gt 0 ] || return 1
    for x in "$@"; do fge "$x" "$min" || return 1; done
}
gaps() {  # gaps RECORDS_JSON: seconds between consecutive records
    python3 -c 'import json,sys; t=[r["time"] for r in json.loads(sys.argv[1])]; print(" ".join("%.2f"%(b-a) for a,b in zip(t,t[1:])))' "$1"
}

# ====================================================== gateway 1: most rules
cat > "$TMP/cfg.yaml" <<Y
api_keys: ["ck"]
admin_key: "$ADMIN_KEY"
forward_headers: ["X-Mock-Mode"]
max_retries: 3
max_failures: 1000
recovery_interval: 2
health_check_period: 300
probe_timeout: 2
stream_idle_timeout: 2
providers:
  - name: pa
    base_url: http://127.0.0.1:$PA
    timeout: 5
    model_mappings:
      - {upstream: r1a, alias: r1}
      - {upstream: r4a, alias: r4}
      - {upstream: rma, alias: rm}
      - {upstream: raa, alias: ra}
      - {upstream: rba, alias: rb}
      - {upstream: cea, alias: ce}
      - {upstream: cxa, alias: cx}
      - {upstream: pxa, alias: px}
      - {upstream: ft3a, alias: ft3, first_token_timeout: 1}
      - {upstream: k1a, alias: k1}
      - {upstream: k2a, alias: k2}
      - {upstream: k3a, alias: k3}
      - {upstream: k4a, alias: k4}
      - {upstream: k5a, alias: k5}
      - {upstream: k6a, alias: k6}
      - {upstream: ma-up, alias: ma}
      - {upstream: mfa-up, alias: mf}
  - name: pr
    base_url: http://127.0.0.1:$PE
    timeout: 5
    model_mappings:
      - {upstream: r3e, alias: r3}
  - name: pa0
    base_url: http://127.0.0.1:$PA
    timeout: 5
    model_retries: 0
    model_mappings:
      - {upstream: r0a, alias: r0}
  - name: pa2
    base_url: http://127.0.0.1:$PA
    timeout: 5
    model_retries: 2
    model_mappings:
      - {upstream: r2a, alias: r2}
  - name: ph
    base_url: http://127.0.0.1:$PA
    timeout: 1
    model_mappings:
      - {upstream: rha, alias: rh}
  - name: pf1
    base_url: http://127.0.0.1:$PA
    timeout: 5
    first_token_timeout: 1
    model_mappings:
      - {upstream: ft1a, alias: ft1}
      - {upstream: ft2a, alias: ft2, first_token_timeout: 5}
  - name: pu
    base_url: http://127.0.0.1:$PA
    timeout: 5
    response_model: upstream
    model_mappings:
      - {upstream: mu-up, alias: mu}
      - {upstream: mfb-up, alias: mf, priority: 1}
  - name: pb
    base_url: http://127.0.0.1:$PB
    priority: 1
    timeout: 5
    model_mappings:
      - {upstream: r1b, alias: r1}
      - {upstream: r4b, alias: r4}
      - {upstream: r3b, alias: r3}
      - {upstream: r0b, alias: r0}
      - {upstream: r2b, alias: r2}
      - {upstream: rhb, alias: rh}
      - {upstream: rmb, alias: rm}
      - {upstream: rab, alias: ra}
      - {upstream: rbb, alias: rb}
      - {upstream: ceb, alias: ce}
      - {upstream: cxb, alias: cx}
      - {upstream: pxb, alias: px}
      - {upstream: ft1b, alias: ft1}
      - {upstream: ft2b, alias: ft2}
      - {upstream: ft3b, alias: ft3}
      - {upstream: k2b, alias: k2, continuation: prefix}
      - {upstream: k3b, alias: k3, continuation: continue_final_message}
      - {upstream: k4b, alias: k4, continuation: replay}
      - {upstream: k5b, alias: k5, continuation: prefill}
      - {upstream: k6b, alias: k6}
  - name: pk
    base_url: http://127.0.0.1:$PB
    priority: 1
    timeout: 5
    continuation: prefill
    model_mappings:
      - {upstream: k1b, alias: k1}
  - name: pc
    base_url: http://127.0.0.1:$PC
    priority: 2
    timeout: 5
    model_mappings:
      - {upstream: rmc, alias: rm}
      - {upstream: rcc, alias: rc}
      - {upstream: k5c, alias: k5, continuation: prefill}
  - name: pd
    base_url: http://127.0.0.1:$PD
    timeout: 5
    model_mappings:
      - {upstream: hr-up, alias: hr, max_failures: 1}
  - name: pe
    base_url: http://127.0.0.1:$PC
    priority: 1
    timeout: 5
    model_mappings:
      - {upstream: hrb-up, alias: hr}
Y
start_gateway "$TMP/cfg.yaml" || { echo "Bail out! gateway did not start"; exit 1; }

# ---- 1. same-candidate retry of a transient failure ----
retries0=$(fo retries)
n=0
for spec in "once;first=503" "once;first=500" "once;first=502" "once;first=408" "once;first=409" \
    "once;first=reset_headers"; do
    mock_mode A r1a "$spec"
    a0=$(hits A r1a); b0=$(hits B r1b)
    chat r1
    got="$(status) $(hdr X-Autoswitch-Provider) attempts=$(hdr X-Autoswitch-Attempts) A+$(( $(hits A r1a) - a0 )) B+$(( $(hits B r1b) - b0 ))"
    got="$got waited=$(yn fge "$TOOK" 0.3) $(yn flt "$TOOK" 1.5)"
    is "$got" "200 pa attempts=1 A+2 B+0 waited=yes yes" "retry: $spec -> the same provider answers after 300-600 ms (${TOOK}s)"
    n=$((n + 1))
done
# A reset before any byte, on a new connection (mock E closes idle ones;
# on a reused keep-alive connection the transport resends at once, as to
# an upstream that closed it while idle: see below).
sleep 0.4
mock_mode E r3e "once;first=reset"
chat r3
got="$(status) $(hdr X-Autoswitch-Provider) attempts=$(hdr X-Autoswitch-Attempts) E=$(hits E r3e) B=$(hits B r3b)"
is "$got waited=$(yn fge "$TOOK" 0.3) $(yn flt "$TOOK" 1.5)" "200 pr attempts=1 E=2 B=0 waited=yes yes" \
    "retry: once;first=reset on a new connection -> the same provider answers after 300-600 ms (${TOOK}s)"
is "$(( $(fo retries) - retries0 ))" "$((n + 1))" "stats failover.retries counts each same-candidate retry"
is "$(model pa r1a retries)/$(model pr r3e retries)" "$n/1" "stats: per-model retries (pa/r1a, pr/r3e)"
mock_mode A r1a "once;first=reset"
a0=$(hits A r1a); b0=$(hits B r1b)
chat r1
is "$(status) $(hdr X-Autoswitch-Provider) attempts=$(hdr X-Autoswitch-Attempts) A+$(( $(hits A r1a) - a0 )) B+$(( $(hits B r1b) - b0 ))" \
    "200 pa attempts=1 A+2 B+0" "once;first=reset on a reused connection: resent to the same provider (${TOOK}s)"
is "$(metric autoswitch_retries_total)" "$(fo retries).0" "metrics: autoswitch_retries_total matches the stats"

for code in 401 403 404; do
    mock_mode A r4a "$code"
    a0=$(hits A r4a); b0=$(hits B r4b)
    chat r4
    is "$(status) $(hdr X-Autoswitch-Provider) attempts=$(hdr X-Autoswitch-Attempts) A+$(( $(hits A r4a) - a0 )) B+$(( $(hits B r4b) - b0 ))" \
        "200 pb attempts=2 A+1 B+1" "$code: no retry, straight to the next provider"
done
mock_mode A r4a 422
a0=$(hits A r4a); b0=$(hits B r4b)
chat r4
is "$(status) A+$(( $(hits A r4a) - a0 )) B+$(( $(hits B r4b) - b0 ))" "422 A+1 B+0" "422: returned as sent, no retry, no failover"
mock_mode A r4a null

mock_mode A r0a "once;first=503"
chat r0
is "$(status) $(hdr X-Autoswitch-Provider) attempts=$(hdr X-Autoswitch-Attempts) A=$(hits A r0a) B=$(hits B r0b)" \
    "200 pb attempts=2 A=1 B=1" "model_retries: 0 on a provider: a 503 is not retried there"

mock_mode A r2a "once;first=503;times=2"
chat r2
is "$(status) $(hdr X-Autoswitch-Provider) attempts=$(hdr X-Autoswitch-Attempts) A=$(hits A r2a) B=$(hits B r2b)" \
    "200 pa2 attempts=1 A=3 B=0" "model_retries: 2 on a provider: two retries there"
ok "$(fge "$TOOK" 0.9; echo $?)" "... after two backoffs (300-600 ms, then 600-1000 ms): ${TOOK}s"

mock_mode A rha hang
chat rh
is "$(status) $(hdr X-Autoswitch-Provider) attempts=$(hdr X-Autoswitch-Attempts) A=$(hits A rha) B=$(hits B rhb)" \
    "200 pb attempts=2 A=1 B=1" "a hanging upstream (timeout 1): next candidate, not retried"
ok "$(fge "$TOOK" 0.95 && flt "$TOOK" 1.8; echo $?)" "... at once after the 1 s timeout (${TOOK}s)"

mock_mode A rma 503; mock_mode B rmb 503
chat rm
is "$(status) $(hdr X-Autoswitch-Provider) attempts=$(hdr X-Autoswitch-Attempts) A=$(hits A rma) B=$(hits B rmb) C=$(hits C rmc)" \
    "200 pc attempts=3 A=2 B=2 C=1" "max_retries 3 still means three distinct candidates: retries do not use it up"

# ---- 9. failed attempts are never counted as served ----
snap=$(stats)
is "$(field "$snap" pa rma total_requests)/$(field "$snap" pa rma success_requests)/$(field "$snap" pa rma failure_count)" \
    "2/0/2" "a failing model: total and failures grow, success_requests stays 0 (pa/rma)"
is "$(field "$snap" ph rha total_requests)/$(field "$snap" ph rha success_requests)" "1/0" "a timed-out attempt is not a served request (ph/rha)"
is "$(field "$snap" pr r3e total_requests)/$(field "$snap" pr r3e success_requests)" "2/1" \
    "retried model: only the retry that answered counts as served (pr/r3e)"
is "$(jget "$snap" '[p["success_requests"] for p in j["providers"] if p["name"]=="ph"][0]')" "0" \
    "provider ph: success_requests 0"
like "$(metric 'autoswitch_upstream_requests_total{provider="pa",dialect="openai",alias="rm",upstream="rma",class="5xx"}')/$(metric 'autoswitch_upstream_requests_total{provider="pa",dialect="openai",alias="rm",upstream="rma",class="2xx"}')" \
    '^2\.0/(0\.0|absent)$' "metrics: pa/rma has two 5xx and no 2xx"
mock_mode A rma null; mock_mode B rmb null

# ---- 2. Retry-After ----
w0=$(fo retry_after_waits)
mock_mode A raa "once;first=429;retry_after=1"
chat ra
is "$(status) $(hdr X-Autoswitch-Provider) attempts=$(hdr X-Autoswitch-Attempts) A=$(hits A raa) B=$(hits B rab)" \
    "200 pa attempts=1 A=2 B=0" "Retry-After: 1 is waited out on the same provider"
ok "$(fge "$TOOK" 1.0 && flt "$TOOK" 2.0; echo $?)" "... after at least 1 s (${TOOK}s)"
is "$(( $(fo retry_after_waits) - w0 ))" "1" "stats failover.retry_after_waits"

mock_mode A rba "429;retry_after=30"
chat rb
is "$(status) $(hdr X-Autoswitch-Provider) attempts=$(hdr X-Autoswitch-Attempts) A=$(hits A rba) B=$(hits B rbb)" \
    "200 pb attempts=2 A=1 B=1" "Retry-After: 30 (over retry_after_max): fail over"
ok "$(flt "$TOOK" 0.8; echo $?)" "... at once (${TOOK}s)"
snap=$(stats)
is "$(field "$snap" pa rba state)/$(field "$snap" pa rba cooling_down)/$(field "$snap" pa rba consecutive_failures)" \
    "cooling_down/true/0" "... and pa/rba is shown cooling down (not a health failure)"
chat rb
is "$(hdr X-Autoswitch-Provider) A=$(hits A rba)" "pb A=1" "... and skipped while it cools down"
mock_mode A rba null

bb0=$(fo busy_backoffs)
mock_mode C rcc "once;first=429"
chat rc
is "$(status) $(hdr X-Autoswitch-Provider) C=$(hits C rcc)" "200 pc C=2" \
    "429 without Retry-After on the only candidate: backs off and tries again"
ok "$(fge "$TOOK" 0.5; echo $?)" "... after at least 0.5 s (${TOOK}s)"
mock_mode C rcc 429
c0=$(hits C rcc)
chat rc
is "$(( $(hits C rcc) - c0 ))" "3" "a 429 that persists: at most two backoff retries (3 attempts)"
g=$(gaps "$(recs C rcc | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[-3:]))')")
# shellcheck disable=SC2086  # the gaps are words
all_ge 0.5 $g
ok $? "... never more than twice a second on one provider (gaps: $g)"
ok "$(fge "$TOOK" 1.5; echo $?)" "... backoff with jitter: 0.5-1 s then 1-2 s (${TOOK}s)"
is "$(( $(fo busy_backoffs) - bb0 ))" "3" "stats failover.busy_backoffs"
like "$(status) $BODY" '^(429|502|503) ' "... then the client gets an error ($(status))"
mock_mode C rcc null

# ---- 3. first_token_timeout (per provider, per mapping) ----
slow="stream;first_token_ms=3000;keepalive_ms=200"
mock_mode A ft1a "$slow"
schat ft1
s=$(sse)
is "$(status) $(hdr X-Autoswitch-Provider) A=$(hits A ft1a) B=$(hits B ft1b)" "200 pb A=1 B=1" \
    "provider first_token_timeout 1: a stream without content after 1 s fails over"
ok "$(fge "$TOOK" 0.95 && flt "$TOOK" 2.5; echo $?)" "... after about 1 s (${TOOK}s)"
unlike "$BODY" 'keep-alive' "... no keep-alive comment of the first reached the client"
is "$(jget "$s" 'j["roles"]')/$(jget "$s" 'j["done"]')" "1/1" "... one role event, one [DONE]: only the second's stream"
mock_mode A ft3a "$slow"
schat ft3
is "$(status) $(hdr X-Autoswitch-Provider) A=$(hits A ft3a) B=$(hits B ft3b)" "200 pb A=1 B=1" \
    "mapping first_token_timeout 1 (provider default 5): fails over"
mock_mode A ft2a "$slow"
schat ft2
s=$(sse)
is "$(status) $(hdr X-Autoswitch-Provider) A=$(hits A ft2a) B=$(hits B ft2b)" "200 pf1 A=1 B=0" \
    "mapping first_token_timeout 5 over the provider's 1: keep-alives and the role event are not content, the slow stream is delivered"
ok "$(fge "$TOOK" 2.9; echo $?)" "... after its 3 s wait (${TOOK}s)"
is "$(jget "$s" 'j["text"]')/$(jget "$s" 'j["last"]')" "tok1 tok2 /True" "... whole, ending with [DONE]"
mock_mode A ft1a null; mock_mode A ft2a null; mock_mode A ft3a null

# ---- 4. a clean end is a success ----
for spec in "stream;words=3;finish_no_done=1" "stream;words=3;finish_no_done=1;close=1"; do
    mock_mode A cea "$spec"
    ok0=$(model pa cea success_requests); f0=$(model pa cea failure_count)
    schat ce ',"stream_options":{"include_usage":true}'
    s=$(sse)
    is "$(status) $(hdr X-Autoswitch-Provider) B=$(hits B ceb)" "200 pa B=0" "$spec: served by the first provider"
    is "$(jget "$s" '"%s|%s|%s|%s|%s" % (j["text"], j["finish"], j["done"], j["last"], j["errors"])')" \
        "w1 w2 w3 |True|1|True|0" "... the client gets the text, the finish_reason and one data: [DONE] from the gateway"
    is "$(jget "$s" 'j["usage"]')" "True" "... the usage chunk (include_usage) is kept"
    is "$(( $(model pa cea success_requests) - ok0 ))/$(( $(model pa cea failure_count) - f0 ))" "1/0" \
        "... the attempt counts as a success"
done
mock_mode A cea null

# ---- 5. context_length_exceeded routes on; other 400s do not ----
for spec in "ctx400" "ctx400;form=message" "ctx400;form=prompt_too_long"; do
    mock_mode A cxa "$spec"
    a0=$(hits A cxa); b0=$(hits B cxb)
    chat cx
    is "$(status) $(hdr X-Autoswitch-Provider) attempts=$(hdr X-Autoswitch-Attempts) A+$(( $(hits A cxa) - a0 )) B+$(( $(hits B cxb) - b0 ))" \
        "200 pb attempts=2 A+1 B+1" "$spec: the next candidate answers"
done
mock_mode A cxa "ctx400"; mock_mode B cxb "ctx400;form=prompt_too_long"
chat cx
direct=$(curl -s -H "X-Mock-Mode: ctx400" "http://127.0.0.1:$PA/v1/chat/completions" \
    -d '{"model":"direct","messages":[{"role":"user","content":"hi"}]}')
is "$(status)" "400" "context length everywhere: 400"
is "$BODY" "$direct" "... with the original (first) 400 body as sent"
snap=$(stats)
is "$(field "$snap" pa cxa consecutive_failures)/$(field "$snap" pb cxb consecutive_failures)/$(field "$snap" pa cxa healthy)" \
    "0/0/true" "... the models' health is not touched"
mock_mode A cxa null; mock_mode B cxb null
for spec in policy400 400; do
    mock_mode A pxa "$spec"
    b0=$(hits B pxb)
    chat px
    direct=$(curl -s -H "X-Mock-Mode: $spec" "http://127.0.0.1:$PA/v1/chat/completions" \
        -d '{"model":"direct","messages":[{"role":"user","content":"hi"}]}')
    is "$(status) B+$(( $(hits B pxb) - b0 ))" "400 B+0" "$spec: no failover"
    is "$BODY" "$direct" "... returned as sent"
done
is "$(model pa pxa consecutive_failures)" "0" "... not a health failure"
mock_mode A pxa null

# ---- 7. mid-stream continuation ----
CUT="stream;words=8;cut_after=3;id=chatcmpl-first;created=1111"
c0=$(fo continuations); ok0=$(fo continued_ok)
m0=$(metric autoswitch_continuations_total)
cont_checks() {  # cont_checks WHAT LABEL: the client's stream is one whole answer
    local s
    s=$(sse)
    is "$(status) $(hdr X-Autoswitch-Provider) curl=$CURL_RC" "200 pa curl=0" "$1: one answer, its head from the first provider"
    is "$(jget "$s" 'j["text"]')" "w1 w2 w3 w4 w5 w6 w7 w8 " "$1: the text exactly once, uninterrupted"
    is "$(jget "$s" '"%s|%s|%s" % (j["finish"], j["last"], j["errors"])')" "True|True|0" \
        "$1: ends with a finish_reason and data: [DONE], no error event"
    is "$(jget "$s" '"%s|%s" % (j["ids"], j["created"])')" "['chatcmpl-first']|[1111]" \
        "$1: every chunk has the first part's id and created"
    is "$(grep -a '^: autoswitch' "$TMP/body" | tr -d '\r' | cat -v)" ": autoswitch resumed the answer on $2" \
        "$1: one SSE comment says where the answer was resumed ($2)"
    is "$(jget "$s" 'j["models"]')" "[\"${3:-k1}\"]" "$1: every chunk shows the alias (response_model alias)"
}
mock_mode A k1a "$CUT"; mock_mode B k1b "ok;id=chatcmpl-second;created=2222"
schat k1
cont_checks "prefill" "pk/k1b"
r=$(recs B k1b)
is "$(jget "$r" '"%s|%s|%s" % (j[-1]["json"]["messages"][-1]["role"], j[-1]["json"]["messages"][-1]["content"], j[-1]["prefill_text"])')" \
    "assistant|w1 w2 w3|w1 w2 w3" "prefill: the second provider got the text so far as a final assistant message, no trailing space"
is "$(( $(fo continuations) - c0 ))/$(( $(fo continued_ok) - ok0 ))" "1/1" "stats failover.continuations / continued_ok"
is "$(model pk k1b continuations)" "1" "stats: per-model continuations of pk/k1b"
is "$(metric autoswitch_continuations_total)" "$(awk -v m="$m0" 'BEGIN{printf "%.1f", m+1}')" "metrics autoswitch_continuations_total"
is "$(model pa k1a success_requests)/$(model pa k1a total_requests)" "0/1" "the cut first part is not counted as served"

k=2
for how in prefix continue_final_message replay; do
    mock_mode A "k${k}a" "$CUT"
    case $how in
        prefix) mock_mode B k2b "ok;prefill=need_prefix;id=chatcmpl-second;created=2222" ;;
        continue_final_message) mock_mode B k3b "ok;prefill=need_continue;id=chatcmpl-second;created=2222" ;;
        replay) mock_mode B k4b "stream;words=8;id=chatcmpl-second;created=2222" ;;
    esac
    schat "k$k"
    cont_checks "$how" "pb/k${k}b" "k$k"
    r=$(recs B "k${k}b")
    case $how in
        prefix) is "$(jget "$r" '"%s|%s" % (j[-1]["prefill_prefix"], j[-1]["prefill_text"])')" "True|w1 w2 w3" \
            "prefix: the record shows prefix true" ;;
        continue_final_message) is "$(jget "$r" '"%s|%s|%s" % (j[-1]["continue_final_message"], j[-1]["add_generation_prompt"], j[-1]["prefill_text"])')" \
            "True|False|w1 w2 w3" "continue_final_message: true, add_generation_prompt false" ;;
        replay) is "$(jget "$r" '"%s|%s|%s" % (j[-1]["prefill"], len(j[-1]["json"]["messages"]), j[-1]["json"]["messages"][-1]["role"])')" \
            "False|1|user" "replay: the second provider got the original request, no prefill" ;;
    esac
    k=$((k + 1))
done

mock_mode A k5a "$CUT"; mock_mode B k5b "ok;prefill=reject"; mock_mode C k5c "ok;id=chatcmpl-third;created=3333"
schat k5
cont_checks "a refused prefill" "pc/k5c" "k5"
is "$(hits B k5b)/$(hits C k5c)" "1/1" "... the refusing candidate was tried, the next continuation candidate continued"
unlike "$BODY" 'not supported|pb/k5b' "... the refusal never reached the client"

mock_mode A k6a "$CUT"
c0=$(fo continuations); e0=$(fo stream_errors)
schat k6
s=$(sse)
is "$(status) $(hdr X-Autoswitch-Provider) B=$(hits B k6b)" "200 pa B=0" "continuation: none everywhere: no second attempt"
is "$(jget "$s" '"%s|%s|%s" % (j["text"], j["errors"], j["done"])')" "w1 w2 w3 |1|0" "... the stream ends with an error event"
like "$(printf '%s' "$BODY" | grep '^data:' | tail -1)" '"error"' "... as its last event"
is "$(( $(fo continuations) - c0 ))/$(( $(fo stream_errors) - e0 ))" "0/1" "... no continuation counted, a stream error counted"

# ---- 8. response_model ----
chat mu
is "$(jget "$BODY" 'j["model"]')/$(hdr X-Autoswitch-Model)" "mu-up/mu-up" "response_model: upstream (provider): the JSON answer names the upstream model"
schat mu
is "$(jget "$(sse)" 'j["models"]')" '["mu-up"]' "... every stream event too"
chat ma
is "$(jget "$BODY" 'j["model"]')/$(hdr X-Autoswitch-Model)" "ma/ma-up" "response_model alias (default): the JSON answer names the alias"
schat ma
is "$(jget "$(sse)" 'j["models"]')" '["ma"]' "... every stream event too"
mock_mode A mfa-up 401
chat mf
is "$(hdr X-Autoswitch-Provider) $(jget "$BODY" 'j["model"]')" "pu mfb-up" "response_model upstream after a failover: the model that served"
mock_mode A mfa-up null

# ---- 6. half-open recovery ----
mock_mode D __models__ 500   # probes fail: only a real request can bring it back
mock_mode D hr-up 503
t0=$(fo recovery_trials)
chat hr
is "$(hdr X-Autoswitch-Provider)/$(model pd hr-up healthy)" "pe/false" "max_failures 1: the primary is unhealthy after one failing request"
d0=$(hits D hr-up)
t_down=$(now)
served=""
while flt "$(since "$t_down")" 5; do
    chat hr
    served="$served $(hdr X-Autoswitch-Provider)"
    sleep 0.1
done
r=$(recs D hr-up | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[int(sys.argv[1]):]))' "$d0")
g=$(gaps "$r")
nt=$(( $(hits D hr-up) - d0 ))
like "$served" '^( pe)+$' "while the primary stays down, the backup answers every request"
ok "$([ "$nt" -ge 1 ] && [ "$nt" -le 3 ]; echo $?)" "... the primary was tried again after its wait, at most once per 2 s ($nt attempts in 5 s)"
# shellcheck disable=SC2086  # the gaps are words
all_ge 1.9 $g
ok $? "... at least recovery_interval between failed attempts on it (gaps: ${g:-none})"
mock_mode D hr-up null
t_heal=$(now)
back=timeout
while flt "$(since "$t_heal")" 8; do
    chat hr
    if [ "$(hdr X-Autoswitch-Provider)" = pd ]; then back=$(since "$t_heal"); break; fi
    sleep 0.1
done
ok "$([ "$back" != timeout ] && flt "$back" 4.0; echo $?)" "healed primary serves again within recovery_interval + 2 s (${back}s)"
is "$(model pd hr-up healthy)/$(model pd hr-up consecutive_failures)" "true/0" "... a successful trial makes it healthy at once"
like "$(cat "$GW_LOG")" 'trying pd/hr-up again after its recovery wait' "... the trial is logged"
like "$(cat "$GW_LOG")" 'probe of pd/hr-up \(chat\) failed: GET /v1/models answered 500' "... while the probes kept failing (a real request brought it back)"
ok "$([ $(( $(fo recovery_trials) - t0 )) -ge 2 ]; echo $?)" "stats failover.recovery_trials ($(( $(fo recovery_trials) - t0 )))"
is "$(model pd hr-up success_requests)" "1" "... only the successful trial counts as served on pd"
mock_mode D __models__ null

stop_gateway

# ====================== gateway 2: request_timeout and global defaults
cat > "$TMP/cfg2.yaml" <<Y
api_keys: ["ck"]
admin_key: "$ADMIN_KEY"
forward_headers: ["X-Mock-Mode"]
max_retries: 3
max_failures: 1000
request_timeout: 2
first_token_timeout: 1
response_model: upstream
continuation_max_bytes: 16
stream_idle_timeout: 2
providers:
  - name: qa
    base_url: http://127.0.0.1:$PA
    timeout: 1
    model_mappings:
      - {upstream: ta, alias: to}
      - {upstream: ua-up, alias: um}
      - {upstream: xa, alias: xs}
  - name: qg
    base_url: http://127.0.0.1:$PA
    timeout: 10
    model_mappings:
      - {upstream: ga, alias: fg}
  - name: qb
    base_url: http://127.0.0.1:$PB
    priority: 1
    timeout: 10
    model_mappings:
      - {upstream: tb, alias: to}
      - {upstream: gb, alias: fg}
      - {upstream: xb, alias: xs, continuation: prefill}
  - name: qn
    base_url: http://127.0.0.1:$PC
    response_model: alias
    model_mappings:
      - {upstream: na-up, alias: nm}
Y
start_gateway "$TMP/cfg2.yaml" || { echo "Bail out! gateway 2 did not start"; exit 1; }

# ---- 3. request_timeout ----
mock_mode A ta hang; mock_mode B tb hang
chat to
is "$(status)" "504" "request_timeout 2, every candidate hanging: 504 (not 502)"
ok "$(fge "$TOOK" 1.9 && flt "$TOOK" 2.8; echo $?)" "... within about 2 s (${TOOK}s)"
is "$(jget "$BODY" '"%s|%s|%s" % (type(j["error"]["message"]).__name__, j["error"]["type"], j["error"]["code"])')" \
    "str|upstream_error|request_timeout" "... in the OpenAI error shape"
is "$(hits A ta)/$(hits B tb)" "1/1" "... the first timed out (1 s) and was not retried, the second was cut"
snap=$(stats)
is "$(field "$snap" qb tb consecutive_failures)/$(field "$snap" qb tb healthy)" "0/true" "the attempt cut by request_timeout does not count against health"
is "$(field "$snap" qa ta consecutive_failures)" "1" "... while the provider timeout before it does"
is "$(jget "$snap" 'j["failover"]["request_timeouts"]')" "1" "stats failover.request_timeouts"
is "$(field "$snap" qb tb success_requests)/$(field "$snap" qa ta success_requests)" "0/0" "neither attempt counted as served"
mock_mode A ta null; mock_mode B tb null

# ---- 3. first_token_timeout (global) ----
mock_mode A ga "$slow"
schat fg
is "$(status) $(hdr X-Autoswitch-Provider) A=$(hits A ga) B=$(hits B gb)" "200 qb A=1 B=1" \
    "global first_token_timeout 1 (provider timeout 10): fails over"
ok "$(fge "$TOOK" 0.95 && flt "$TOOK" 1.9; echo $?)" "... after about 1 s (${TOOK}s)"
unlike "$BODY" 'keep-alive' "... nothing of the first reached the client"
mock_mode A ga null

# ---- 8. response_model global / per provider ----
chat um
is "$(jget "$BODY" 'j["model"]')" "ua-up" "global response_model: upstream"
chat nm
is "$(jget "$BODY" 'j["model"]')" "nm" "per provider response_model: alias overrides the global upstream"

# ---- 7. continuation_max_bytes ----
mock_mode A xa "stream;words=8;cut_after=3"
schat xs
s=$(sse)
is "$(jget "$s" '"%s|%s|%s" % (j["text"], j["errors"], j["last"])')/B=$(hits B xb)" "w1 w2 w3 w4 w5 w6 w7 w8 |0|True/B=1" \
    "continuation_max_bytes 16: 9 bytes of text are continued"
is "$(jget "$s" 'j["models"]')" '["xa"]' "... the continued stream keeps the first part's model (response_model upstream)"
mock_mode A xa "stream;words=12;cut_after=8"
schat xs
s=$(sse)
is "$(jget "$s" '"%s|%s"  % (j["text"], j["errors"])')/B=$(hits B xb)" "w1 w2 w3 w4 w5 w6 w7 w8 |1/B=1" \
    "... 24 bytes are more than it keeps: the stream ends with an error event, no continuation"
mock_mode A xa null

stop_gateway
done_testing
