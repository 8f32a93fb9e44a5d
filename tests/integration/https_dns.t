#!/usr/bin/env bash
# HTTPS upstreams found by name: our resolver against a test DNS server,
# BearSSL against a test CA; every TLS and DNS failure is a clear error
# and a failover; the loop keeps serving while a query hangs.
. "$(dirname "$0")/../lib.sh"
command -v openssl >/dev/null 2>&1 || skip_all "openssl is not installed"

# ---- certificates ----
. "$ROOT/tests/pki.sh"
pki_init "$TMP/pki" "DNS:api.test, DNS:short.test"
pki_ca ca && pki_ca other && pki_leaf good ca 2 && pki_leaf expired ca -1 && pki_leaf stranger other 2 ||
    { echo "Bail out! openssl failed: $(tail -3 "$PKI/openssl.log")"; exit 1; }

# ---- upstreams and DNS ----
start_mock GOOD --tls-cert "$PKI/good.pem" --tls-key "$PKI/good.key" --idle-timeout 0.3 || exit 1
start_mock EXP --tls-cert "$PKI/expired.pem" --tls-key "$PKI/expired.key" || exit 1
start_mock STR --tls-cert "$PKI/stranger.pem" --tls-key "$PKI/stranger.key" || exit 1
start_mock PLAIN || exit 1
start_mock FB || exit 1
cat > "$TMP/zone.json" <<'Z'
{
  "api.test":   {"A": ["127.0.0.1"], "ttl": 60},
  "wrong.test": {"A": ["127.0.0.1"], "ttl": 60},
  "short.test": {"A": ["127.0.0.1"], "ttl": 1},
  "v6.test":    {"AAAA": ["::1"], "ttl": 60},
  "nx.test":    {"nxdomain": true},
  "hang.test":  {"timeout": true}
}
Z
start_dns "$TMP/zone.json" || exit 1
export AUTOSWITCH_DNS_TTL_MIN=1
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' > "$TMP/resolv.conf"
: > "$TMP/hosts"
queries() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2],0))' "$TMP/dns.stats" "$1" 2>/dev/null || echo 0; }

G=$(mock_port GOOD); E=$(mock_port EXP); S=$(mock_port STR); P=$(mock_port PLAIN); F=$(mock_port FB)
fb() { printf '  - name: fb-%s\n    base_url: http://127.0.0.1:%s\n    priority: 9\n    model_mappings: [{upstream: fb, alias: %s}]\n' "$1" "$F" "$1"; }
cat > "$TMP/cfg.yaml" <<Y
api_keys: ["ck"]
max_retries: 2
max_failures: 1000
resolv_conf: $TMP/resolv.conf
hosts_file: $TMP/hosts
ca_file: $PKI/ca.pem
providers:
  - name: good
    base_url: https://api.test:$G
    model_mappings: [{upstream: g, alias: tls}, {upstream: g, alias: short}]
  - name: untrusted
    base_url: https://api.test:$S
    model_mappings: [{upstream: u, alias: x-untrusted}]
  - name: wrongname
    base_url: https://wrong.test:$G
    model_mappings: [{upstream: w, alias: x-wrongname}]
  - name: expired
    base_url: https://api.test:$E
    model_mappings: [{upstream: e, alias: x-expired}]
  - name: plain
    base_url: https://api.test:$P
    model_mappings: [{upstream: p, alias: x-plain}]
  - name: nx
    base_url: http://nx.test:$F
    model_mappings: [{upstream: n, alias: x-nx}]
  - name: hang
    base_url: http://hang.test:$F
    model_mappings: [{upstream: h, alias: x-hang}]
  - name: short
    base_url: https://short.test:$G
    priority: -1
    model_mappings: [{upstream: s, alias: short}]
  - name: v6
    base_url: http://v6.test:$F
    model_mappings: [{upstream: v, alias: v6}]
$(for a in x-untrusted x-wrongname x-expired x-plain x-nx x-hang; do fb $a; done)
Y
start_gateway "$TMP/cfg.yaml" || { echo "Bail out! gateway did not start"; exit 1; }
chat() {  # chat ALIAS [extra]
    curl -s -D "$TMP/h" -H "Authorization: Bearer ck" "$GW_URL/v1/chat/completions" \
        -d "{\"model\":\"$1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]${2:-}}"
}
hdr() { grep -i "^$1:" "$TMP/h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }

# ---- success over https://name ----
body=$(chat tls)
is "$(jget "$body" 'j["choices"][0]["message"]["content"]')/$(hdr X-Autoswitch-Provider)" "hello from GOOD/good" \
    "a chat request through an https://name provider"
is "$(queries api.test/A)" 1 "the name was resolved by our resolver (one A query)"
body=$(chat tls ',"stream":true')
like "$body" 'tok1' "a stream through the https provider"
like "$body" 'data: \[DONE\]' "... complete"
chat tls >/dev/null
is "$(queries api.test/A)" 1 "a cached answer is reused within its TTL"

# ---- session resumption: a reconnect skips the full handshake ----
sleep 0.6   # the mock closes idle connections after 0.3 s
chat tls >/dev/null
st=$(curl -s --cacert "$PKI/ca.pem" --resolve "api.test:$G:127.0.0.1" "https://api.test:$G/_mock/stats")
# two full handshakes: the gateway's first one, and curl's for this stats call
is "$(jget "$st" 'j["tls_full_handshakes"]')" 2 "one full handshake by the gateway for the origin"
ok $([ "$(jget "$st" 'j["tls_resumed"]')" -ge 1 ]; echo $?) "the reconnect resumed the session"

# ---- every failure: a clear error and a failover ----
row() {  # row ALIAS LOG_REGEX LABEL
    chat "$1" >/dev/null
    is "$(hdr X-Autoswitch-Provider)" "fb-$1" "$3: fails over"
    like "$(grep "$1 #1" "$GW_LOG" | tail -1)" "$2" "$3: the log names the cause"
}
row x-untrusted 'tls: certificate not trusted' "unknown CA"
row x-wrongname 'tls: host name mismatch' "wrong host name"
row x-expired 'tls: certificate expired' "expired certificate"
row x-plain 'tls: not a TLS server' "plain HTTP on the TLS port"
row x-nx 'dns: nx\.test: NXDOMAIN' "NXDOMAIN"

# While a query hangs, the loop keeps serving.
t0=$(date +%s%N)
chat x-hang >/dev/null &
hang_pid=$!
sleep 0.2
worst=0
for _ in 1 2 3 4 5; do
    ms=$(curl -s -o /dev/null -w '%{time_total}' "$GW_URL/healthz" | awk '{print int($1*1000)}')
    [ "$ms" -gt "$worst" ] && worst=$ms
    sleep 0.1
done
wait $hang_pid
total=$(( ($(date +%s%N) - t0) / 1000000 ))
ok $([ "$worst" -lt 600 ]; echo $?) "other requests are served while a DNS query hangs (worst ${worst} ms)"
is "$(hdr X-Autoswitch-Provider)" "fb-x-hang" "a DNS timeout fails over"
ok $([ "$total" -ge 900 ] && [ "$total" -lt 4000 ]; echo $?) "... after the resolv.conf timeout (${total} ms)"
like "$(grep 'x-hang #1' "$GW_LOG" | tail -1)" 'dns: hang\.test: timeout' "the log says dns timeout"

# ---- TTL expiry causes a new query ----
before=$(queries short.test/A)
chat short >/dev/null
is "$(hdr X-Autoswitch-Provider)" "short" "short.test served"
sleep 1.3
chat short >/dev/null
is "$(( $(queries short.test/A) - before ))" 2 "after the TTL (1 s) a new query is sent"

# ---- IPv6 answers connect too ----
if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; then
    body=$(chat v6)
    # the mock listens on 127.0.0.1 only: the ::1 connect is refused and that is the cause named
    like "$(grep 'v6 #1' "$GW_LOG" | tail -1)$(hdr X-Autoswitch-Provider)" 'connect \[::1\]' "an AAAA-only name is connected over IPv6"
else
    skip_one "no IPv6 loopback here"
fi

stop_gateway
done_testing
