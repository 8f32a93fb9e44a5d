#!/usr/bin/env bash
# The static binary with nothing around it.  Built by the Dockerfile's own
# build-stage commands (scripts/deps.sh static, make static: musl, BearSSL
# and libyaml from the pinned Debian sources, the CA bundle compiled in),
# then run as the root of a new mount namespace holding only the binary,
# its config, a test CA, resolv.conf and hosts: names come from our
# resolver (hosts file and UDP DNS), TLS is verified with the compiled-in
# or a configured bundle, the UI is inside.  The network namespace is the
# host's, so the mock upstreams and the DNS server run outside on loopback.
# The first run builds (a minute or two); build-static/ keeps it for the next.
. "$(dirname "$0")/../lib.sh"

sanitized && skip_all "the static binary is no sanitizer build (make test runs this)"
[ "$(uname -s)" = Linux ] || skip_all "Linux only"
command -v unshare >/dev/null 2>&1 || skip_all "unshare (util-linux) is not installed"

# A mount namespace with its own root: as root, else in a user namespace.
NS=(unshare --mount)
if ! "${NS[@]}" true 2>/dev/null; then
    NS=(unshare --user --map-root-user --mount)
    "${NS[@]}" true 2>/dev/null || skip_all "no mount namespace here (not root, and user namespaces are not allowed)"
fi

# ---- build with the Dockerfile's commands ----
static_prerequisites "musl-tools and the static build tools" static bearssl libyaml

mapfile -t RUNS < <(python3 "$ROOT/tests/dockerfile.py" "$ROOT/Dockerfile" runs build)
[ ${#RUNS[@]} -gt 0 ] || { echo "Bail out! no RUN in the Dockerfile's build stage"; exit 1; }
t0=$SECONDS
for cmd in "${RUNS[@]}"; do
    # The command as the Dockerfile has it; only the parallelism is ours.
    if ! (cd "$ROOT" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL MAKEFLAGS="-j$(nproc)" sh -c "$cmd") \
            >>"$TMP/build.log" 2>&1; then
        tail -40 "$TMP/build.log" | sed 's/^/#   /'
        echo "Bail out! '$cmd' (the Dockerfile's build stage) failed"
        exit 1
    fi
done
ok 0 "built by the Dockerfile's build commands: $(printf '%s; ' "${RUNS[@]}")($((SECONDS - t0)) s)"

SBIN=$ROOT/$(cd "$ROOT" && env -u MAKEFLAGS -u MAKELEVEL make -s --no-print-directory static-bin-path)
[ -x "$SBIN" ] || { echo "Bail out! no $SBIN"; exit 1; }
elf=$(readelf -lS "$SBIN" 2>&1)
unlike "$elf" 'INTERP|Requesting program interpreter' "no program interpreter: statically linked"
unlike "$elf" ' DYNAMIC ' "no dynamic section"
unlike "$elf" '\.symtab' "stripped"
size=$(stat -c %s "$SBIN")
if [ "$(uname -m)" = x86_64 ]; then
    ok $([ "$size" -lt $((560 * 1024)) ]; echo $?) "x86_64 binary under 560 KiB with UI and CA bundle ($size bytes)"
else
    skip_one "size budget is for x86_64 ($size bytes here)"
fi
like "$(grep '^static: ' "$TMP/build.log" | tail -1)" 'CA bundle: /' "the static build compiles a CA bundle in"

# ---- certificates: a test CA the compiled-in bundle does not know ----
. "$ROOT/tests/pki.sh"
pki_init "$TMP/pki" "DNS:tls.test"
pki_ca ca && pki_leaf leaf ca 2 || { echo "Bail out! openssl failed: $(tail -3 "$PKI/openssl.log")"; exit 1; }

# ---- upstreams and DNS outside the jail ----
start_mock A || exit 1
start_mock T --tls-cert "$PKI/leaf.pem" --tls-key "$PKI/leaf.key" || exit 1
PA=$(mock_port A); PT=$(mock_port T)
printf '{"dns.test": {"A": ["127.0.0.1"], "ttl": 60}}\n' > "$TMP/zone.json"
start_dns "$TMP/zone.json" || exit 1

# ---- the jail: the image's layout, nothing else ----
J=$TMP/jail
mkdir -p "$J/app/conf" "$J/app/runtime/logs" "$J/etc"
cp "$SBIN" "$J/app/autoswitch"
cp "$PKI/ca.pem" "$J/app/conf/test-ca.pem"
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:2\n' > "$J/etc/resolv.conf"
printf '127.0.0.1 hosts.test tls.test\n' > "$J/etc/hosts"
write_config() {
    cat > "$J/app/conf/openai_proxy.yaml" <<Y
api_keys: ["ck"]
admin_key: "ak"
max_retries: 1
max_failures: 1000
log_file: runtime/logs/app.log
providers:
  - name: byip
    base_url: http://127.0.0.1:$PA
    model_mappings: [{upstream: m-ip, alias: ip}]
  - name: byhosts
    base_url: http://hosts.test:$PA
    model_mappings: [{upstream: m-hosts, alias: hosts}]
  - name: bydns
    base_url: http://dns.test:$PA
    model_mappings: [{upstream: m-dns, alias: dns}]
  - name: tlsca
    base_url: https://tls.test:$PT
    ca_file: conf/test-ca.pem
    model_mappings: [{upstream: m-tls, alias: tls}]
  - name: tlsbuiltin
    base_url: https://tls.test:$PT
    model_mappings: [{upstream: m-builtin, alias: builtin}]
$1
Y
}
write_config ""
find "$J" -mindepth 1 | sed "s|^$J||" | sort > "$TMP/jail.list"
is "$(tr '\n' ' ' < "$TMP/jail.list")" \
    "/app /app/autoswitch /app/conf /app/conf/openai_proxy.yaml /app/conf/test-ca.pem /app/runtime /app/runtime/logs /etc /etc/hosts /etc/resolv.conf " \
    "the jail holds the binary, its config, a CA, resolv.conf, hosts and nothing else"

cat > "$TMP/jailed" <<W
#!/bin/sh
exec ${NS[*]} --root="$J" --wd=/app /app/autoswitch "\$@"
W
chmod +x "$TMP/jailed"
jailed() { "$TMP/jailed" "$@"; }

like "$(jailed --version 2>&1)" '^autoswitch [0-9]' "--version runs in the empty root"
like "$(jailed --check-config 2>&1)" 'conf/openai_proxy.yaml: OK' "the default config path conf/openai_proxy.yaml is read from /app"

BIN=$TMP/jailed
start_gateway conf/openai_proxy.yaml || { echo "Bail out! the jailed gateway did not start"; exit 1; }

is "$(curl -s "$GW_URL/healthz")" '{"status":"ok"}' "/healthz"
models=$(curl -s -H "Authorization: Bearer ck" "$GW_URL/v1/models")
is "$(jget "$models" '",".join(m["id"] for m in j["data"])')" "builtin,dns,hosts,ip,tls" "/v1/models lists the aliases"

chat() {  # chat ALIAS
    curl -s -D "$TMP/h" -H "Authorization: Bearer ck" "$GW_URL/v1/chat/completions" \
        -d "{\"model\":\"$1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
}
hdr() { grep -i "^$1:" "$TMP/h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
status() { head -1 "$TMP/h" | awk '{print $2}'; }

body=$(chat ip)
is "$(status) $(jget "$body" 'j["choices"][0]["message"]["content"]')" "200 hello from A" "a proxied request to 127.0.0.1"
is "$(jget "$body" 'j["model"]')" "ip" "... the model rewritten back to the alias"
body=$(chat hosts)
is "$(status)/$(hdr X-Autoswitch-Provider)" "200/byhosts" "a name from the jail's /etc/hosts"
body=$(chat dns)
is "$(status)/$(hdr X-Autoswitch-Provider)" "200/bydns" "a name from DNS, the server from the jail's /etc/resolv.conf"
dnsq=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("dns.test/A",0))' "$TMP/dns.stats" 2>/dev/null)
ok $([ "${dnsq:-0}" -ge 1 ]; echo $?) "... asked by our resolver over UDP (${dnsq:-0} A queries)"
body=$(chat tls)
is "$(status) $(jget "$body" 'j["choices"][0]["message"]["content"]')" "200 hello from T" \
    "HTTPS verified against a configured ca_file inside the jail"
body=$(chat builtin)
is "$(status)" 502 "HTTPS to a CA the compiled-in bundle does not hold: refused"
line=$(grep 'builtin #1' "$GW_LOG" | tail -1)
like "$line" 'certificate not trusted' "... as an untrusted certificate: the compiled-in anchors were used"
unlike "$line" 'no CA bundle' "... with no CA file in the jail"

code=$(curl -s -o "$TMP/ui" -D "$TMP/h" -w '%{http_code}' "$GW_URL/")
is "$code $(hdr Content-Type | cut -d';' -f1)" "200 text/html" "the UI page: GET / answers 200 text/html"
like "$(head -c 2000 "$TMP/ui")" '<html|<!doctype html|<!DOCTYPE html' "... an HTML page"

ok $(jailed --probe -p "$GW_PORT" >/dev/null 2>&1; echo $?) "--probe -p PORT in the jail: 0 (the image's HEALTHCHECK)"
ok $(PORT=$GW_PORT jailed --probe >/dev/null 2>&1; echo $?) "--probe with \$PORT: 0"
jailed --probe -p "$(free_port)" >/dev/null 2>&1
is $? 1 "--probe on a port nobody listens on: 1"

# SIGHUP reloads the file inside the jail.
write_config "  - name: late
    base_url: http://127.0.0.1:$PA
    model_mappings: [{upstream: m-late, alias: late}]"
kill -HUP "$GW_PID"
for _ in $(seq 50); do
    curl -s -H "Authorization: Bearer ck" "$GW_URL/v1/models" | grep -q '"late"' && break
    sleep 0.1
done
like "$(curl -s -H "Authorization: Bearer ck" "$GW_URL/v1/models")" '"late"' "SIGHUP reloads the config inside the jail"

ok $([ -s "$J/app/runtime/logs/app.log" ]; echo $?) "log_file runtime/logs/app.log is written under /app/runtime"
stop_gateway
done_testing
