#!/usr/bin/env bash
# Health and recovery: failure counting, probes with backoff, 429 cooldown,
# stats and Prometheus metrics, reload that keeps state.
. "$(dirname "$0")/../lib.sh"

start_mock A || exit 1
start_mock B || exit 1
start_mock C || exit 1
PA=$(mock_port A); PB=$(mock_port B); PC=$(mock_port C)

write_cfg() {  # write_cfg EXTRA_MAPPING_FOR_PB
cat > "$TMP/cfg.yaml" <<Y
api_keys: ["ck"]
admin_key: "adm"
max_retries: 2
model_retries: 0   # one attempt per candidate: these tests count failures
retry_after_max: 0   # a 429 fails over at once here (failover.t tests the wait)
max_failures: 2
recovery_interval: 2
health_check_period: 4
max_cooldown: 6
probe_timeout: 2
providers:
  - name: pa
    base_url: http://127.0.0.1:$PA
    model_mappings:
      - {upstream: h1, alias: hx}
      - {upstream: h3, alias: h3x, max_failures: 3}
      - {upstream: cd, alias: cdx}
      - {upstream: cdate, alias: cdy}
      - {upstream: ccap, alias: cdz}
      - {upstream: cnone, alias: cdw}
      - {upstream: e1, alias: emb, probe: embeddings}
      - {upstream: s1, alias: sx}
  - name: pb
    base_url: http://127.0.0.1:$PB
    priority: 1
    model_mappings:
      - {upstream: h2, alias: hx}
      - {upstream: h4, alias: h3x}
      - {upstream: cd2, alias: cdx}
      - {upstream: e2, alias: emb}
$1
  - name: pc
    base_url: http://127.0.0.1:$PC
    model_mappings:
      - {upstream: c1, alias: backoff}
Y
}
write_cfg "      - {upstream: gone, alias: gonex}"
start_gateway "$TMP/cfg.yaml" || { echo "Bail out! gateway did not start"; exit 1; }
ADM=(-H "X-API-Key: adm")
chat() {
    curl -s -D "$TMP/h" -H "Authorization: Bearer ck" "$GW_URL/v1/chat/completions" \
        -d "{\"model\":\"$1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
}
emb() {
    curl -s -D "$TMP/h" -H "Authorization: Bearer ck" "$GW_URL/v1/embeddings" -d "{\"model\":\"$1\",\"input\":\"hi\"}"
}
hdr() { grep -i "^$1:" "$TMP/h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
stats() { curl -s "${ADM[@]}" "$GW_URL/internal/stats"; }
field() {  # field SNAPSHOT PROVIDER UPSTREAM FIELD: from a stats JSON taken earlier
    printf '%s' "$1" | python3 -c '
import json,sys
p,u,f=sys.argv[1:4]
for pr in json.load(sys.stdin)["providers"]:
    for m in pr["model_healths"]:
        if m["provider_name"]==p and m["upstream_model"]==u:
            v=m[f]; print(json.dumps(v) if not isinstance(v,str) else v); sys.exit()
print("missing")' "$2" "$3" "$4"
}
model() { field "$(stats)" "$@"; }   # model PROVIDER UPSTREAM FIELD: from a fresh snapshot
logms() {  # logms EXTENDED_REGEX: epoch ms of the last gateway log line matching
    grep -E "$1" "$GW_LOG" | tail -1 | python3 -c '
import sys,datetime
l=sys.stdin.read()
print(int(datetime.datetime.strptime(l[:23],"%Y-%m-%d %H:%M:%S.%f").timestamp()*1000) if l else 0)'
}
wait_for() {  # wait_for SECONDS CMD...: until CMD succeeds; prints elapsed ms
    local deadline=$(( $(date +%s%N) / 1000000 + $1 * 1000 )) t0=$(( $(date +%s%N) / 1000000 ))
    shift
    while [ $(( $(date +%s%N) / 1000000 )) -lt $deadline ]; do
        if "$@"; then echo $(( $(date +%s%N) / 1000000 - t0 )); return 0; fi
        sleep 0.05
    done
    echo timeout
    return 1
}

# ---- access to stats and metrics ----
code=$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/internal/stats")
is "$code" 401 "/internal/stats needs the admin key"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: nope" "$GW_URL/api/admin/health")
is "$code" 401 "/api/admin/health refuses a wrong key"
code=$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/metrics")
is "$code" 401 "/metrics needs Bearer admin_key"
body=$(curl -s "${ADM[@]}" "$GW_URL/api/admin/health")
is "$(jget "$body" 'str(j["code"])+" "+str(len(j["data"]))')" "200 3" "/api/admin/health: envelope with the providers"

# ---- probe backoff: started first, judged near the end ----
mock_mode C c1 500
chat backoff >/dev/null; chat backoff >/dev/null
backoff_t0=$SECONDS
is "$(model pc c1 healthy)" "false" "backoff model unhealthy"

# ---- unhealthy after exactly max_failures (2) ----
# Timing is read from the gateway's own log lines, and state from snapshots
# taken right after each event, so a loaded machine cannot blur them.
mock_mode A h1 500
chat hx >/dev/null
snap=$(stats)
is "$(field "$snap" pa h1 healthy)/$(field "$snap" pa h1 consecutive_failures)" "true/1" "one failure: still healthy, 1 consecutive"
mh=$(mock_stats A)
chat hx >/dev/null
snap=$(stats)
chat hx >/dev/null
skipped_by=$(hdr X-Autoswitch-Provider)
mh2=$(mock_stats A)
mock_mode A h1 null   # healed: the first probe, recovery_interval later, must find it well
is "$(field "$snap" pa h1 healthy)/$(field "$snap" pa h1 consecutive_failures)" "false/2" "two failures: unhealthy"
is "$(field "$snap" pa h1 state)" "unhealthy" "state says unhealthy"
like "$(field "$snap" pa h1 last_error)" 'status 500' "last_error is kept"
is "$(( $(jget "$mh2" 'j["hits"].get("h1",0)') - $(jget "$mh" 'j["hits"].get("h1",0)') ))/$skipped_by" "1/pb" "an unhealthy model is skipped"
like "$(cat "$GW_LOG")" 'pa/h1 marked unhealthy after 2 consecutive failures' "the state change is logged with its reason"

# ---- recovery: back within recovery_interval + 1 s of healing ----
wait_for 10 grep -q 'pa/h1 healthy again' "$GW_LOG" >/dev/null
t=$(( $(logms 'pa/h1 healthy again') - $(logms 'pa/h1 marked unhealthy') ))
ok $([ "$t" -ge 1900 ] && [ "$t" -le 3000 ]; echo $?) "healed upstream back in rotation within recovery_interval + 1 s (${t} ms)"
like "$(cat "$GW_LOG")" 'pa/h1 healthy again \(probe \(chat\) chat answered 200' "the recovery is logged with the probe's reason"
chat hx >/dev/null
is "$(hdr X-Autoswitch-Provider)" "pa" "the recovered model serves again"

# ---- per-model max_failures (3) ----
mock_mode A h3 503
chat h3x >/dev/null; chat h3x >/dev/null
is "$(model pa h3 healthy)" "true" "per-model max_failures 3: healthy after 2"
chat h3x >/dev/null
is "$(model pa h3 healthy)" "false" "per-model max_failures 3: unhealthy after 3"

# ---- all candidates unhealthy: all are tried anyway ----
mock_mode B h4 503
chat h3x >/dev/null; chat h3x >/dev/null
is "$(model pb h4 healthy)" "false" "second candidate unhealthy too"
mock_mode A h3 null
body=$(chat h3x)
is "$(hdr X-Autoswitch-Provider)" "pa" "with every candidate unhealthy, they are still tried"
is "$(model pa h3 healthy)" "true" "a success makes it healthy at once"
mock_mode B h4 null

# ---- 429 cooldown: Retry-After in seconds and as an HTTP date ----
mock_mode A cd "429;retry_after=4"
mh=$(mock_stats A)
chat cdx >/dev/null
first_by=$(hdr X-Autoswitch-Provider)
snap=$(stats)
mock_mode A cd null
chat cdx >/dev/null
second_by=$(hdr X-Autoswitch-Provider)
mh2=$(mock_stats A)
is "$first_by" "pb" "429: fails over"
is "$(field "$snap" pa cd cooling_down)/$(field "$snap" pa cd healthy)" "true/true" "429: cooling down, not unhealthy"
is "$(( $(jget "$mh2" 'j["hits"].get("cd",0)') - $(jget "$mh" 'j["hits"].get("cd",0)') ))/$second_by" "1/pb" "cooling model skipped"
for _ in $(seq 80); do
    curl -s -o /dev/null -H 'Authorization: Bearer ck' "$GW_URL/v1/chat/completions" \
        -d '{"model":"cdx","messages":[{"role":"user","content":"x"}]}'
    grep -q 'cdx #1 -> pa/cd' "$GW_LOG" && break
    sleep 0.1
done
until_ms=$(field "$snap" pa cd cooldown_until | python3 -c '
import sys,datetime
print(int(datetime.datetime.strptime(sys.stdin.read().strip(),"%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()*1000))')
t=$(( until_ms - $(logms 'pa/cd cooling down') ))
ok $([ "$t" -ge 3900 ] && [ "$t" -le 4200 ]; echo $?) "Retry-After: 4 sets a 4 s cooldown (${t} ms)"
back=$(logms 'cdx #1 -> pa/cd')
ok $([ "$back" -ge "$until_ms" ]; echo $?) "the model is used again once the cooldown is over, not before"
# Each further case uses its own model, so no test waits for a cooldown to end.
mock_mode A cdate "429;retry_after_date=5"
chat cdy >/dev/null
snap=$(stats)
until_ms=$(field "$snap" pa cdate cooldown_until | python3 -c '
import sys,datetime
print(int(datetime.datetime.strptime(sys.stdin.read().strip(),"%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()*1000))')
t=$(( until_ms - $(logms 'pa/cdate cooling down') ))
# An HTTP date has whole seconds: 5 s from the mock's clock is 4 to 5 s.
ok $([ "$t" -ge 3900 ] && [ "$t" -le 5100 ]; echo $?) "Retry-After as an HTTP date honoured (${t} ms)"
mock_mode A ccap "429;retry_after=1000"
chat cdz >/dev/null
until_s=$(curl -s -H "Authorization: Bearer adm" "$GW_URL/metrics" | grep 'autoswitch_upstream_cooldown_seconds{provider="pa",dialect="openai",class="chat",upstream="ccap"}' | awk '{print int($2+0.5)}')
like "$until_s" '^[56]$' "a cooldown is capped at max_cooldown (${until_s}s left)"
mock_mode A cnone "429"
chat cdw >/dev/null
until_s=$(curl -s -H "Authorization: Bearer adm" "$GW_URL/metrics" | grep 'autoswitch_upstream_cooldown_seconds{provider="pa",dialect="openai",class="chat",upstream="cnone"}' | awk '{print int($2+0.5)}')
like "$until_s" '^[12]$' "429 without Retry-After cools down for recovery_interval (${until_s}s left)"
mock_mode A cd null

# ---- an embeddings-only model is probed with embeddings ----
mock_mode A e1 500
emb emb >/dev/null
before=$(mock_stats A | python3 -c 'import json,sys; p=json.load(sys.stdin)["paths"]; print(p.get("/v1/embeddings",0), p.get("/v1/chat/completions",0))')
emb emb >/dev/null
mock_mode A e1 null
is "$(model pa e1 healthy)" "false" "embeddings model unhealthy"
wait_for 8 sh -c "[ \"\$(curl -s -H 'X-API-Key: adm' $GW_URL/internal/stats | grep -o '\"upstream_model\":\"e1\",\"healthy\":true')\" ]" >/dev/null
after=$(mock_stats A | python3 -c 'import json,sys; p=json.load(sys.stdin)["paths"]; print(p.get("/v1/embeddings",0), p.get("/v1/chat/completions",0))')
set -- $before; eb=$1 cb=$2; set -- $after
is "$(( $1 - eb - 1 > 0 )) $(( $2 - cb ))" "1 0" "the recovery probe used /v1/embeddings, not chat"
is "$(model pa e1 healthy)" "true" "embeddings model recovered"

# ---- stats and metrics exact after a scripted sequence ----
chat sx >/dev/null; chat sx >/dev/null; chat sx >/dev/null
mock_mode A s1 400
chat sx >/dev/null
mock_mode A s1 null
is "$(model pa s1 total_requests)/$(model pa s1 success_requests)/$(model pa s1 failure_count)" "4/3/1" "stats count requests, successes and failures"
is "$(model pa s1 success_rate)" "75.0" "success_rate is a percentage"
is "$(model pa s1 consecutive_failures)" "0" "a 400 does not count against health"
like "$(model pa s1 latency_p50_ms)" '^[0-9]+$' "latency p50 is reported"
metrics=$(curl -s -H "Authorization: Bearer adm" "$GW_URL/metrics")
parsed=$(printf '%s\n' "$metrics" | python3 "$ROOT/tests/promparse.py")
ok $? "/metrics parses as Prometheus text format"
val() { jget "$parsed" "j.get('$1')"; }
is "$(val 'autoswitch_upstream_requests_total{provider="pa",dialect="openai",alias="sx",upstream="s1",class="2xx"}')" "3.0" "metrics: 3 successes (2xx)"
is "$(val 'autoswitch_upstream_requests_total{provider="pa",dialect="openai",alias="sx",upstream="s1",class="4xx"}')" "1.0" "metrics: 1 client error (4xx)"
is "$(val 'autoswitch_upstream_latency_seconds_count{provider="pa",dialect="openai",alias="sx",upstream="s1"}')" "3.0" "metrics: latency histogram counts successes"
is "$(val 'autoswitch_upstream_healthy{provider="pa",dialect="openai",class="chat",upstream="s1"}')" "1.0" "metrics: health gauge"
like "$(val 'autoswitch_open_connections')" '^[0-9]' "metrics: open connections"
is "$(val 'autoswitch_upstream_failovers_total{provider="pa",dialect="openai",alias="hx",upstream="h1"}')" "2.0" "metrics: failovers counted"

# ---- probe backoff: gaps double up to health_check_period ----
while [ $((SECONDS - backoff_t0)) -lt 11 ]; do sleep 0.2; done
# Timestamps of the gateway's own log: when it went unhealthy, then each probe.
gaps=$(grep -E 'pc/c1 marked unhealthy|probing pc/c1' "$GW_LOG" | python3 -c '
import sys,datetime
t=[datetime.datetime.strptime(l[:23],"%Y-%m-%d %H:%M:%S.%f").timestamp() for l in sys.stdin]
print(" ".join("%.1f"%(b-a) for a,b in zip(t,t[1:])))')
like "$gaps" '^(1\.9|2\.[01]) (3\.9|4\.[01]) (3\.9|4\.[01])' "first probe after recovery_interval (2 s), then gaps double, capped at health_check_period (gaps: $gaps)"
like "$(model pc c1 next_probe_at)" '^20[0-9]{2}-' "next_probe_at is reported while unhealthy"
like "$(cat "$GW_LOG")" 'probe of pc/c1 \(chat\) failed: chat answered 500; next in 4s' "failed probes are logged with the next gap"
mock_mode C c1 null

# ---- reload: a bad file changes nothing; an edited one keeps state ----
cp "$TMP/cfg.yaml" "$TMP/good.yaml"
echo "max_retries: [" >> "$TMP/cfg.yaml"
kill -HUP "$GW_PID"; sleep 0.5
is "$(model pa s1 total_requests)" "4" "bad reload: state and config unchanged"
is "$(model pb gone total_requests)" "0" "bad reload: mappings unchanged"
mock_mode A h1 500
chat hx >/dev/null
write_cfg ""
sed -i 's/{upstream: s1, alias: sx}/{upstream: s1, alias: sx, weight: 7}/' "$TMP/cfg.yaml"
kill -HUP "$GW_PID"; sleep 0.5
is "$(model pa s1 total_requests)/$(model pa s1 weight)" "4/7" "good reload: counters kept, new weight in force"
is "$(model pa h1 consecutive_failures)" "1" "good reload: health state kept"
is "$(model pb gone total_requests)" "missing" "good reload: removed mappings disappear"
mock_mode A h1 null
like "$(cat "$GW_LOG")" 'config reloaded \(SIGHUP\)' "the reload is logged"

stop_gateway
done_testing
