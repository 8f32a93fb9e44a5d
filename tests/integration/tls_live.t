#!/usr/bin/env bash
# The TLS transport (src/transport/tls.c) against local TLS servers: makes a
# throwaway CA and certificates, starts tests/tls_echo_server.py on free
# loopback ports, then runs $BUILD_DIR/tests/test_tls_live, whose TAP is
# this test's output.
. "$(dirname "$0")/../lib.sh"

LIVE=${BUILD_DIR:-}/tests/test_tls_live
[ -n "${BUILD_DIR:-}" ] || skip_all "BUILD_DIR is not set"
[ -x "$LIVE" ] || skip_all "$LIVE is not built"
command -v openssl >/dev/null 2>&1 || skip_all "openssl is not installed"
command -v python3 >/dev/null 2>&1 || skip_all "python3 is not installed"

setup_failed() {
    echo "1..1"
    echo "not ok 1 - setup: $*"
    [ -s "$PKI/openssl.log" ] && sed 's/^/#   /' "$PKI/openssl.log"
    exit 1
}

# ---- certificates ----
. "$ROOT/tests/pki.sh"
pki_init "$TMP/pki" "DNS:localhost, IP:127.0.0.1, IP:::1"
cat >> "$PKI/ext.cnf" <<'EOF'
[leaf_wrong]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
EOF

pki_ca ca rsa:2048 || setup_failed "test CA"
pki_ca other || setup_failed "second CA"
pki_leaf localhost ca 2 || setup_failed "leaf for localhost"
pki_leaf wrong ca 2 leaf_wrong || setup_failed "leaf for the wrong name"
pki_leaf expired ca -1 || setup_failed "expired leaf"
pki_leaf stranger other 2 || setup_failed "leaf of an unknown CA"
pki_openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$PKI/self.key" -out "$PKI/self.pem" -subj "/CN=localhost" \
    -addext "subjectAltName = DNS:localhost" || setup_failed "self-signed leaf"

# ---- servers ----
# All start at once (an interpreter start can take a good part of a second).
PY=$(python3 -c 'import sys; print(sys.executable)')
SERVERS=()
# start_server NAME ARGS...
start_server() {
    local name=$1
    shift
    "$PY" "$ROOT/tests/tls_echo_server.py" --port-file "$TMP/port-$name" --name "$name" "$@" \
        >>"$TMP/server-$name.log" 2>&1 &
    PIDS+=("$!")
    SERVERS+=("$name")
}

# wait_servers: sets PORT_<NAME> for each
wait_servers() {
    local name pf deadline=$((SECONDS + 20))
    for name in "${SERVERS[@]}"; do
        pf=$TMP/port-$name
        while [ ! -s "$pf" ] && [ $SECONDS -lt $deadline ]; do
            sleep 0.05
        done
        [ -s "$pf" ] || setup_failed "server $name did not start: $(cat "$TMP/server-$name.log")"
        printf -v "PORT_$name" '%s' "$(cat "$pf")"
    done
}

start_server good --cert "$PKI/localhost.pem" --key "$PKI/localhost.key"
start_server wrong --cert "$PKI/wrong.pem" --key "$PKI/wrong.key"
start_server expired --cert "$PKI/expired.pem" --key "$PKI/expired.key"
start_server other --cert "$PKI/stranger.pem" --key "$PKI/stranger.key"
start_server self --cert "$PKI/self.pem" --key "$PKI/self.key"
start_server plain --plain
start_server clientauth --cert "$PKI/localhost.pem" --key "$PKI/localhost.key" --client-ca "$PKI/ca.pem"
wait_servers

# ---- the C test ----
status=0
TLS_TEST_CA=$PKI/ca.pem \
TLS_PORT_GOOD=$PORT_good TLS_PORT_WRONG_NAME=$PORT_wrong TLS_PORT_EXPIRED=$PORT_expired \
TLS_PORT_OTHER_CA=$PORT_other TLS_PORT_SELF_SIGNED=$PORT_self TLS_PORT_PLAIN=$PORT_plain \
TLS_PORT_CLIENT_AUTH=$PORT_clientauth \
    timeout 120 "$LIVE" || status=$?

# Sanitizer builds write their reports to files (see lib.sh).
reports=$(cat "$TMP"/san* 2>/dev/null)
if [ -n "$reports" ]; then
    echo "# sanitizer report:"
    printf '%s\n' "$reports" | head -60 | sed 's/^/#   /'
    [ "$status" -eq 0 ] && status=1
fi
exit "$status"
