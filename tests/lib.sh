# Shared helpers for the integration tests: TAP output, the gateway and
# mock upstreams on free loopback ports, cleanup.  Source it from a .t file.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${AUTOSWITCH_BIN:-$ROOT/build/autoswitch}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/autoswitch-test.XXXXXX")
T_N=0
T_FAIL=0
PIDS=()

# Sanitizer builds: reports go to files that stop_gateway checks.
export ASAN_OPTIONS="abort_on_error=0:halt_on_error=1:detect_leaks=${DETECT_LEAKS:-1}:log_path=$TMP/san"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$TMP/san"

cleanup() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "# kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT

ok() {  # ok CONDITION_EXIT_STATUS MESSAGE  (use: ok $? "msg" or check cmd)
    local status=$1
    shift
    T_N=$((T_N + 1))
    if [ "$status" -eq 0 ]; then
        echo "ok $T_N - $*"
    else
        T_FAIL=$((T_FAIL + 1))
        echo "not ok $T_N - $*"
    fi
}

check() {  # check MESSAGE -- command...
    local msg=$1
    shift
    [ "$1" = "--" ] && shift
    "$@" >/dev/null 2>&1
    ok $? "$msg"
}

is() {  # is GOT WANT MESSAGE
    T_N=$((T_N + 1))
    if [ "$1" = "$2" ]; then
        echo "ok $T_N - $3"
    else
        T_FAIL=$((T_FAIL + 1))
        echo "not ok $T_N - $3"
        printf '#   got:  %s\n#   want: %s\n' "$(printf '%s' "$1" | head -c 2000)" "$2"
    fi
}

like() {  # like GOT EXTENDED_REGEX MESSAGE
    T_N=$((T_N + 1))
    if printf '%s' "$1" | grep -Eq -- "$2"; then
        echo "ok $T_N - $3"
    else
        T_FAIL=$((T_FAIL + 1))
        echo "not ok $T_N - $3"
        printf '#   got:  %s\n#   want: /%s/\n' "$(printf '%s' "$1" | head -c 2000)" "$2"
    fi
}

unlike() {  # unlike GOT EXTENDED_REGEX MESSAGE
    T_N=$((T_N + 1))
    if printf '%s' "$1" | grep -Eq -- "$2"; then
        T_FAIL=$((T_FAIL + 1))
        echo "not ok $T_N - $3"
        printf '#   matched: /%s/\n' "$2"
    else
        echo "ok $T_N - $3"
    fi
}

skip_one() {  # skip_one REASON: a test that cannot be judged in this build
    T_N=$((T_N + 1))
    echo "ok $T_N # SKIP $*"
}

# Memory figures mean nothing under ASan (quarantine, shadow memory).
sanitized() { [ "${SANITIZED:-0}" = 1 ]; }

skip_all() {
    echo "1..0 # SKIP $*"
    exit 0
}

done_testing() {
    echo "1..$T_N"
    [ "$T_FAIL" -eq 0 ]
    exit $?
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for_port() {  # wait_for_port PORT [SECONDS]
    local port=$1 deadline=$((SECONDS + ${2:-10}))
    while [ $SECONDS -lt $deadline ]; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# start_gateway CONFIG [extra args...]: sets GW_PORT, GW_PID, GW_LOG, GW_URL.
start_gateway() {
    local cfg=$1
    shift
    GW_LOG=$TMP/gateway.log
    local tries=0
    while [ $tries -lt 5 ]; do
        GW_PORT=$(free_port)
        "$BIN" -c "$cfg" -p "$GW_PORT" "$@" >>"$GW_LOG" 2>&1 &
        GW_PID=$!
        PIDS+=("$GW_PID")
        if wait_for_port "$GW_PORT" 10; then
            GW_URL="http://127.0.0.1:$GW_PORT"
            return 0
        fi
        kill "$GW_PID" 2>/dev/null
        wait "$GW_PID" 2>/dev/null
        tries=$((tries + 1))
    done
    echo "# gateway did not start; log:" >&2
    sed 's/^/#   /' "$GW_LOG" >&2
    return 1
}

# stop_clean PID EXIT_TEST REPORT_TEST: SIGTERM to a gateway started by
# this shell, then two tests under those names: it exits 0, and it left no
# sanitizer report.
stop_clean() {
    local status=0 reports
    kill -TERM "$1" 2>/dev/null
    wait "$1" 2>/dev/null || status=$?
    ok $status "$2"
    reports=$(cat "$TMP"/san* 2>/dev/null)
    T_N=$((T_N + 1))
    if [ -z "$reports" ]; then
        echo "ok $T_N - $3"
    else
        T_FAIL=$((T_FAIL + 1))
        echo "not ok $T_N - $3"
        printf '%s\n' "$reports" | head -60 | sed 's/^/#   /'
    fi
    rm -f "$TMP"/san*
}

# stop_gateway: SIGTERM, expect a clean exit and no sanitizer report.
stop_gateway() {
    stop_clean "$GW_PID" "gateway exits 0 on SIGTERM" "no sanitizer report"
}

# static_prerequisites WHAT "DEPS GROUPS" VENDOR_ITEMS...: what a static
# build test needs, installed (one apt at a time across parallel tests)
# and vendored.  Skips the test when the packages cannot be had (WHAT
# names them), bails out when vendoring fails otherwise.
static_prerequisites() {
    local what=$1 groups=$2
    shift 2
    # shellcheck disable=SC2086  # the groups are words
    flock "${TMPDIR:-/tmp}/autoswitch-deps.lock" "$ROOT/scripts/deps.sh" $groups >"$TMP/deps.log" 2>&1 ||
        skip_all "$what cannot be installed: $(tail -1 "$TMP/deps.log")"
    "$ROOT/scripts/vendor.sh" "$@" >"$TMP/vendor.log" 2>&1
    local rc=$?
    [ $rc -eq 3 ] && skip_all "the pinned Debian packages cannot be downloaded here: $(tail -1 "$TMP/vendor.log")"
    if [ $rc -ne 0 ]; then
        sed 's/^/#   /' "$TMP/vendor.log"
        echo "Bail out! scripts/vendor.sh failed"
        exit 1
    fi
}

# start_dns ZONE_JSON: tests/dns_server.py on a free loopback port, its
# query counts in $TMP/dns.stats; the gateway is pointed at it through
# AUTOSWITCH_DNS_PORT.  Bails out when it does not start.
start_dns() {
    python3 "$ROOT/tests/dns_server.py" --port 0 --port-file "$TMP/dns.port" --zone "$1" \
        --stats-file "$TMP/dns.stats" --parent-pid $$ >"$TMP/dns.log" 2>&1 &
    PIDS+=("$!")
    for _ in $(seq 100); do [ -s "$TMP/dns.port" ] && break; sleep 0.05; done
    [ -s "$TMP/dns.port" ] || { echo "Bail out! DNS test server did not start"; return 1; }
    export AUTOSWITCH_DNS_PORT=$(cat "$TMP/dns.port")
}

# start_mock NAME [mock args...]: sets MOCK_<NAME>_PORT.
start_mock() {
    local name=$1
    shift
    local pf=$TMP/mock-$name.port
    python3 "$ROOT/tests/mock_upstream.py" --port 0 --port-file "$pf" --name "$name" "$@" \
        >>"$TMP/mock-$name.log" 2>&1 &
    PIDS+=("$!")
    local deadline=$((SECONDS + 10))
    while [ ! -s "$pf" ] && [ $SECONDS -lt $deadline ]; do
        sleep 0.05
    done
    if [ ! -s "$pf" ]; then
        echo "# mock $name did not start" >&2
        return 1
    fi
    printf -v "MOCK_${name}_PORT" '%s' "$(cat "$pf")"
}

mock_port() {  # mock_port NAME
    local v="MOCK_${1}_PORT"
    echo "${!v}"
}

mock_mode() {  # mock_mode NAME MODEL MODE   (MODE "null" clears)
    local port
    port=$(mock_port "$1")
    local mode="\"$3\""
    [ "$3" = null ] && mode=null
    curl -s -o /dev/null -X POST "http://127.0.0.1:$port/_mock/mode" -d "{\"model\":\"$2\",\"mode\":$mode}"
}

mock_stats() {  # mock_stats NAME -> JSON
    curl -s "http://127.0.0.1:$(mock_port "$1")/_mock/stats"
}

mock_hits() {  # mock_hits NAME MODEL
    mock_stats "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["hits"].get(sys.argv[1],0))' "$2"
}

mock_reset() {
    curl -s -o /dev/null -X POST "http://127.0.0.1:$(mock_port "$1")/_mock/reset"
}

# jget JSON PYTHON_EXPR: evaluate an expression on the parsed JSON `j`.
jget() {
    python3 -c 'import json,sys; j=json.loads(sys.argv[1]); r=eval(sys.argv[2]); print(json.dumps(r) if isinstance(r,(dict,list)) else r)' "$1" "$2" 2>/dev/null
}

# jedit JSON PYTHON_STATEMENTS: run statements on the parsed JSON `j`,
# print the resulting j as JSON.
jedit() {
    python3 -c 'import json,sys; j=json.loads(sys.argv[1]); exec(sys.argv[2]); print(json.dumps(j))' "$1" "$2"
}

# raw PORT: send stdin to the gateway as raw bytes, print what comes back
# until the server closes or 2 s of silence.
raw() {
    python3 "$ROOT/tests/rawhttp.py" "$@"
}
