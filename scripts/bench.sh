#!/usr/bin/env bash
# Benchmark: the same load, in one run on this machine, straight to the
# upstream ("direct"), through nginx (1 worker, upstream keepalive,
# proxy_buffering off), through haproxy (nbthread 1, http-no-delay) and
# through autoswitch.  Upstreams: a separate nginx answering a fixed
# chat.completion JSON, and scripts/bench/sse.c for streams.  Load: wrk
# (throughput) and scripts/bench/load.c (open-loop latency at a fixed rate,
# concurrent streams, start-up time).  Prints a markdown table with the
# machine and the goals met or missed; also saved to build/bench-results.md.
#
#   scripts/bench.sh                 (about 4-5 minutes)
#   BENCH_SECONDS=2 BENCH_ROUNDS=1 scripts/bench.sh     (a quick look)
#
# The targets run in turns (rounds, the order rotated each round) and each
# cell is the median over the rounds, so a burst of load from elsewhere on
# the machine spoils one round, not the column.
#
# Environment:
#   BENCH_SECONDS   measured seconds of each load run (default 3)
#   BENCH_WARMUP    unmeasured seconds before each (default 1)
#   BENCH_ROUNDS    rounds of throughput + latency (default 3)
#   BENCH_STREAM_ROUNDS  rounds of the streams run (default 3)
#   BENCH_RATE      fixed rate of the latency run, req/s (default 2000)
#   BENCH_CONNS     keep-alive connections, throughput and latency (default 50)
#   BENCH_STREAMS   concurrent streams (default 1000)
#   BENCH_TLS       0 skips the HTTPS-upstream row (default 1)
#   BENCH_GLIBC     0 leaves out the extra column for build/autoswitch (glibc)
#                   when the static binary is the one measured (default 1)
#   BENCH_PIN       1 pins the proxy under test to CPU 1 and everything else
#                   to CPU 0 (default 0: the scheduler decides)
#   AUTOSWITCH_BIN  binary to measure (default build-static/autoswitch when
#                   present, else build/autoswitch)
#   BENCH_OUT       where the table is saved (default build/bench-results.md)
#   BENCH_KEEP=1    keep the temp dir (configs, logs)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECS=${BENCH_SECONDS:-3}
WARM=${BENCH_WARMUP:-1}
ROUNDS=${BENCH_ROUNDS:-3}
SROUNDS=${BENCH_STREAM_ROUNDS:-3}
RATE=${BENCH_RATE:-2000}
CONNS=${BENCH_CONNS:-50}
NSTREAMS=${BENCH_STREAMS:-1000}
DO_TLS=${BENCH_TLS:-1}
PIN=${BENCH_PIN:-0}
OUT=${BENCH_OUT:-$ROOT/build/bench-results.md}
OPEN_RATE=1000     # streams opened per second

log() { echo "bench: $*" >&2; }
fail() { echo "bench: $*" >&2; exit 1; }

# ------------------------------------------------------------ set-up, clean-up
TMP=$(mktemp -d "${TMPDIR:-/tmp}/autoswitch-bench.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$ROOT/scripts/deps.sh" bench >&2 || fail "scripts/deps.sh bench failed"
for t in nginx haproxy wrk gcc openssl; do
    command -v "$t" >/dev/null 2>&1 || fail "$t is missing (scripts/deps.sh bench)"
done

# The binaries: the static one when built (what ships), and the glibc build
# as an extra column.
GLIBC_BIN=""
if [ -n "${AUTOSWITCH_BIN:-}" ]; then
    BIN=$AUTOSWITCH_BIN
else
    if (cd "$ROOT" && make -s >&2); then
        GLIBC_BIN=$ROOT/build/autoswitch
    else
        log "warning: make failed; build/autoswitch is left out"
    fi
    if [ -x "$ROOT/build-static/autoswitch" ]; then
        BIN=$ROOT/build-static/autoswitch
    else
        BIN=$GLIBC_BIN
        GLIBC_BIN=""
    fi
    [ "${BENCH_GLIBC:-1}" = 1 ] || GLIBC_BIN=""
fi
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then fail "no autoswitch binary (make, or make static)"; fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# Descriptors: 1,000 streams need two per stream in a proxy.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((2 * NSTREAMS + 100)) ] ||
    log "warning: ulimit -n is $(ulimit -n), too low for $NSTREAMS streams"

mkdir -p "$TMP/bin"
for tool in load sse; do
    gcc -std=c11 -O2 -Wall -Wextra -o "$TMP/bin/$tool" "$ROOT/scripts/bench/$tool.c" || fail "cannot build $tool"
done
# The start-up floor: a trivial static server (sse.c) measured the same way.
gcc -std=c11 -O2 -static -o "$TMP/bin/sse-static" "$ROOT/scripts/bench/sse.c" 2>/dev/null ||
    cp "$TMP/bin/sse" "$TMP/bin/sse-static"
LOAD=$TMP/bin/load

if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    ON_PROXY="taskset -c 1"; ON_REST="taskset -c 0"
else
    ON_PROXY=""; ON_REST=""
fi
HZ=$(getconf CLK_TCK)

freeport() { "$LOAD" freeport; }
wait_port() {  # PORT PID: until the port accepts a connection
    local i
    for i in $(seq 500); do
        kill -0 "$2" 2>/dev/null || return 1
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.01
    done
    return 1
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
kv() {  # KEY LINE: the value of KEY=... in a load result line
    printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1
}
stop_pid() {
    kill "$1" 2>/dev/null
    local i keep=()
    for i in $(seq 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.01; done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    for i in "${PIDS[@]}"; do [ "$i" = "$1" ] || keep+=("$i"); done
    PIDS=("${keep[@]}")
    return 0
}
median() {  # numbers as arguments (empty ones skipped) -> the median
    printf '%s\n' "$@" | awk 'NF' | sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) exit
        x = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        print x }'
}

# ------------------------------------------------------------------- upstreams
CHAT_JSON='{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}'
USER_LINE=""
[ "$(id -u)" = 0 ] && USER_LINE="user root;"

nginx_common() {  # DIR: the main-context lines every nginx here shares
    cat <<N
$USER_LINE
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 8192; }
N
}
nginx_temp_paths() {
    cat <<N
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
N
}

UP_DIR=$TMP/upstream-nginx
mkdir -p "$UP_DIR"
UP_JSON=$(freeport)
{
    nginx_common "$UP_DIR"
    cat <<N
http {
$(nginx_temp_paths "$UP_DIR")
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    server {
        listen 127.0.0.1:$UP_JSON;
        default_type application/json;
        location / { return 200 '$CHAT_JSON'; }
    }
}
N
} > "$UP_DIR/nginx.conf"
$ON_REST nginx -p "$UP_DIR" -c "$UP_DIR/nginx.conf" -e "$UP_DIR/error.log" 2>"$UP_DIR/stderr" &
UP_JSON_PID=$!
PIDS+=("$UP_JSON_PID")
wait_port "$UP_JSON" "$UP_JSON_PID" || fail "upstream nginx did not start: $(cat "$UP_DIR/stderr" "$UP_DIR/error.log" 2>/dev/null)"

$ON_REST "$TMP/bin/sse" -f "$TMP/sse.port" 2>"$TMP/sse.stderr" &
SSE_PID=$!
PIDS+=("$SSE_PID")
for _ in $(seq 200); do [ -s "$TMP/sse.port" ] && break; sleep 0.01; done
UP_SSE=$(cat "$TMP/sse.port" 2>/dev/null) || fail "sse generator did not start"
wait_port "$UP_SSE" "$SSE_PID" || fail "sse generator did not start"

# ------------------------------------------------------------------- proxies
# write_config KIND DIR PORT UPSTREAM_PORT: the proxy's config file; prints
# the command line that runs it in the foreground.
write_config() {
    local kind=$1 dir=$2 port=$3 up=$4
    mkdir -p "$dir"
    case "$kind" in
    nginx)
        {
            nginx_common "$dir"
            cat <<N
http {
$(nginx_temp_paths "$dir")
    access_log $dir/access.log;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    upstream up {
        server 127.0.0.1:$up;
        keepalive 64;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 120s;
        }
    }
}
N
        } > "$dir/nginx.conf"
        echo "nginx -p $dir -c $dir/nginx.conf -e $dir/error.log"
        ;;
    haproxy)
        cat > "$dir/haproxy.cfg" <<H
global
    nbthread 1
    maxconn 8000
defaults
    mode http
    option http-no-delay
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout http-keep-alive 120s
frontend fe
    bind 127.0.0.1:$port
    default_backend be
backend be
    server up 127.0.0.1:$up
H
        echo "haproxy -f $dir/haproxy.cfg -db"
        ;;
    autoswitch|autoswitch-glibc)
        cat > "$dir/autoswitch.yaml" <<Y
listen: 127.0.0.1
api_keys: ["bench"]
max_connections: 8000
providers:
  - name: upstream
    base_url: http://127.0.0.1:$up
    model_mappings: [{upstream: bench-model, alias: bench, probe: none}]
Y
        if [ "$kind" = autoswitch ]; then echo "$BIN -c $dir/autoswitch.yaml -p $port"
        else echo "$GLIBC_BIN -c $dir/autoswitch.yaml -p $port"; fi
        ;;
    esac
}

# start_target KIND UPSTREAM_PORT: sets T_PORT, T_PID (T_PID empty for direct)
start_target() {
    local kind=$1 up=$2
    T_PID=""
    if [ "$kind" = direct ]; then T_PORT=$up; return 0; fi
    T_PORT=$(freeport)
    local dir=$TMP/$kind-$T_PORT cmd
    cmd=$(write_config "$kind" "$dir" "$T_PORT" "$up")
    # shellcheck disable=SC2086
    $ON_PROXY $cmd >"$dir/stdout" 2>"$dir/stderr" &
    T_PID=$!
    PIDS+=("$T_PID")
    if ! wait_port "$T_PORT" "$T_PID"; then
        log "$kind did not start:"; cat "$dir/stderr" "$dir"/error.log >&2 2>/dev/null
        exit 1
    fi
    sleep 0.2
}

PROXIES="nginx haproxy autoswitch"
[ -n "$GLIBC_BIN" ] && PROXIES="$PROXIES autoswitch-glibc"
TARGETS="direct $PROXIES"
rotate() {  # N WORDS...: the words rotated left by N
    local n=$1; shift
    local a=("$@") i k
    k=${#a[@]}
    for ((i = 0; i < k; i++)); do printf '%s ' "${a[$(((i + n) % k))]}"; done
}
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_BEGIN=$(date +%s)
declare -A R   # per round: R[measure,target,round]
declare -A M   # result cells: M[measure,target]

# ---- 1+2: latency at a fixed rate (load rate) and throughput (wrk)
for ((r = 0; r < ROUNDS; r++)); do
    # shellcheck disable=SC2086
    for t in $(rotate "$r" $TARGETS); do
        start_target "$t" "$UP_JSON"
        [ -n "$T_PID" ] && [ "$r" = 0 ] && M[idle,$t]=$(rss_kb "$T_PID")
        res=$($ON_REST "$LOAD" rate -p "$T_PORT" -c "$CONNS" -r "$RATE" -d "$SECS" -w "$WARM")
        log "round $((r + 1)) $t latency: $res"
        R[l50,$t,$r]=$(kv p50_us "$res"); R[l99,$t,$r]=$(kv p99_us "$res")
        R[lerr,$t,$r]=$(kv errors "$res"); R[late,$t,$r]=$(kv late_sends "$res")
        # (the latency run just before is the warm-up)
        url=http://127.0.0.1:$T_PORT/v1/chat/completions
        c0=0; [ -n "$T_PID" ] && c0=$(cpu_ticks "$T_PID")
        out=$($ON_REST wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$ROOT/scripts/bench/post.lua" "$url" 2>&1)
        c1=0; [ -n "$T_PID" ] && c1=$(cpu_ticks "$T_PID")
        R[rps,$t,$r]=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ {printf "%.0f", $2}')
        R[rerr,$t,$r]=$(printf '%s\n' "$out" | awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}')
        nreq=$(printf '%s\n' "$out" | awk '/requests in/ {print $1}')
        if [ -n "$T_PID" ] && [ "${nreq:-0}" -gt 0 ]; then
            R[cpureq,$t,$r]=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$nreq" 'BEGIN {printf "%.1f", c / hz / n * 1e6}')
        fi
        log "round $((r + 1)) $t throughput: ${R[rps,$t,$r]} req/s, errors ${R[rerr,$t,$r]}, proxy CPU/request ${R[cpureq,$t,$r]:-} µs"
        [ -n "$T_PID" ] && stop_pid "$T_PID"
    done
done

# ---- 3: concurrent streams
for ((r = 0; r < SROUNDS; r++)); do
    # shellcheck disable=SC2086
    for t in $(rotate "$r" $TARGETS); do
        start_target "$t" "$UP_SSE"
        pid_arg=()
        if [ -n "$T_PID" ]; then
            idle=$(rss_kb "$T_PID")
            pid_arg=(-P "$T_PID")
            c0=$(cpu_ticks "$T_PID")
        fi
        res=$($ON_REST "$LOAD" streams -p "$T_PORT" -n "$NSTREAMS" -R "$OPEN_RATE" -d "$SECS" -w "$WARM" "${pid_arg[@]}")
        R[e50,$t,$r]=$(kv p50_us "$res"); R[e99,$t,$r]=$(kv p99_us "$res")
        R[eerr,$t,$r]=$(kv errors "$res"); R[edone,$t,$r]=$(kv completed "$res"); R[ev,$t,$r]=$(kv events "$res")
        if [ -n "$T_PID" ]; then
            R[perstream,$t,$r]=$(awk -v a="$(kv rss_kb "$res")" -v b="$idle" -v n="$NSTREAMS" 'BEGIN {printf "%.1f", (a - b) / n}')
            ev=$(kv events "$res")
            [ "${ev:-0}" -gt 0 ] && R[cpuev,$t,$r]=$(awk -v c=$(( $(cpu_ticks "$T_PID") - c0 )) -v hz="$HZ" -v n="$ev" 'BEGIN {printf "%.1f", c / hz / n * 1e6}')
        fi
        log "round $((r + 1)) $t streams: $res per_stream_kib=${R[perstream,$t,$r]:-} cpu_per_event_us=${R[cpuev,$t,$r]:-}"
        [ -n "$T_PID" ] && stop_pid "$T_PID"
    done
done

# medians, and the "added" columns as medians of the per-round differences
for t in $TARGETS; do
    for m in l50 l99 rps cpureq e50 e99 perstream cpuev; do
        vals=()
        n=$ROUNDS; case $m in e*|perstream|cpuev) n=$SROUNDS ;; esac
        for ((r = 0; r < n; r++)); do vals+=("${R[$m,$t,$r]:-}"); done
        M[$m,$t]=$(median "${vals[@]}")
        if [ "$t" != direct ]; then
            case $m in
            l50|l99|e50|e99)
                vals=()
                for ((r = 0; r < n; r++)); do
                    vals+=("$(awk -v a="${R[$m,$t,$r]:-}" -v b="${R[$m,direct,$r]:-}" 'BEGIN {if (a != "" && b != "") print a - b}')")
                done
                M[add$m,$t]=$(median "${vals[@]}") ;;
            rps)
                vals=()
                for ((r = 0; r < n; r++)); do
                    vals+=("$(awk -v a="${R[rps,$t,$r]:-}" -v b="${R[rps,nginx,$r]:-}" 'BEGIN {if (a != "" && b > 0) print a / b}')")
                done
                M[ratio,$t]=$(median "${vals[@]}") ;;
            esac
        fi
    done
    errs=0; late=0; eerrs=0; done_s=""
    for ((r = 0; r < ROUNDS; r++)); do
        errs=$((errs + ${R[lerr,$t,$r]:-0} + ${R[rerr,$t,$r]:-0})); late=$((late + ${R[late,$t,$r]:-0}))
    done
    for ((r = 0; r < SROUNDS; r++)); do
        eerrs=$((eerrs + ${R[eerr,$t,$r]:-0})); done_s="$done_s${done_s:+, }${R[edone,$t,$r]:-?}"
    done
    M[errs,$t]=$errs; M[late,$t]=$late; M[eerrs,$t]=$eerrs; M[edone,$t]=$done_s
done

# ---- 4: start-up to the first served request (direct: the floor, a
# trivial server started and asked the same way)
port=$(freeport)
res=$($ON_REST "$LOAD" startup -p "$port" -k 7 -- "$TMP/bin/sse-static" -p "$port" -i 0)
log "floor start-up: $res"
M[start,direct]=$(kv median_ms "$res")
for t in $PROXIES; do
    port=$(freeport)
    cmd=$(write_config "$t" "$TMP/startup-$t" "$port" "$UP_JSON")
    # shellcheck disable=SC2086
    res=$($ON_REST "$LOAD" startup -p "$port" -k 7 -- $cmd)
    log "$t start-up: $res"
    M[start,$t]=$(kv median_ms "$res")
done

# ---- 5 (optional): autoswitch to an HTTPS upstream
TLS_ROW=""
TLS_NOTE=""
if [ "$DO_TLS" = 1 ]; then
    . "$ROOT/tests/pki.sh"
    pki_init "$TMP/pki" "DNS:bench.test"
    if pki_ca ca && pki_leaf leaf ca 2; then
        TLS_DIR=$TMP/tls-nginx
        mkdir -p "$TLS_DIR"
        TLS_JSON=$(freeport); TLS_SSE=$(freeport)
        {
            nginx_common "$TLS_DIR"
            cat <<N
http {
$(nginx_temp_paths "$TLS_DIR")
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    ssl_certificate $PKI/leaf.pem;
    ssl_certificate_key $PKI/leaf.key;
    upstream sse { server 127.0.0.1:$UP_SSE; keepalive 64; }
    server {
        listen 127.0.0.1:$TLS_JSON ssl;
        default_type application/json;
        location / { return 200 '$CHAT_JSON'; }
    }
    server {
        listen 127.0.0.1:$TLS_SSE ssl;
        location / {
            proxy_pass http://sse;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
N
        } > "$TLS_DIR/nginx.conf"
        $ON_REST nginx -p "$TLS_DIR" -c "$TLS_DIR/nginx.conf" -e "$TLS_DIR/error.log" 2>"$TLS_DIR/stderr" &
        TLS_NGINX_PID=$!
        PIDS+=("$TLS_NGINX_PID")
        if wait_port "$TLS_SSE" "$TLS_NGINX_PID" && wait_port "$TLS_JSON" "$TLS_NGINX_PID"; then
            AS_DIR=$TMP/autoswitch-tls
            mkdir -p "$AS_DIR"
            echo "127.0.0.1 bench.test" > "$AS_DIR/hosts"
            echo "nameserver 127.0.0.1" > "$AS_DIR/resolv.conf"
            AS_PORT=$(freeport)
            cat > "$AS_DIR/autoswitch.yaml" <<Y
listen: 127.0.0.1
api_keys: ["bench"]
max_connections: 8000
ca_file: $PKI/ca.pem
hosts_file: $AS_DIR/hosts
resolv_conf: $AS_DIR/resolv.conf
providers:
  - name: tls-json
    base_url: https://bench.test:$TLS_JSON
    model_mappings: [{upstream: bench-model, alias: bench, probe: none}]
  - name: tls-sse
    base_url: https://bench.test:$TLS_SSE
    model_mappings: [{upstream: bench-model, alias: bench-stream, probe: none}]
Y
            $ON_PROXY "$BIN" -c "$AS_DIR/autoswitch.yaml" -p "$AS_PORT" >"$AS_DIR/stdout" 2>"$AS_DIR/stderr" &
            AS_PID=$!
            PIDS+=("$AS_PID")
            if wait_port "$AS_PORT" "$AS_PID"; then
                sleep 0.2
                socks() { find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null | wc -l; }
                idle0=$(rss_kb "$AS_PID"); s0=$(socks "$AS_PID")
                # a short fixed-rate run leaves up to $CONNS TLS connections idle in the pool
                res=$($ON_REST "$LOAD" rate -p "$AS_PORT" -c "$CONNS" -r "$RATE" -d 2 -w 0.5)
                log "autoswitch TLS json: $res"
                sleep 0.3
                idle1=$(rss_kb "$AS_PID"); s1=$(socks "$AS_PID")
                pooled=$((s1 - s0))
                per_idle="?"
                [ "$pooled" -gt 0 ] && per_idle=$(awk -v a="$idle1" -v b="$idle0" -v n="$pooled" 'BEGIN {printf "%.1f", (a - b) / n}')
                log "autoswitch TLS: idle RSS $idle0 KiB, $idle1 KiB with $pooled pooled upstream TLS connections"
                # fewer streams than the plain run: every one costs two TLS handshakes here
                ntls=$((NSTREAMS < 500 ? NSTREAMS : 500))
                res=$($ON_REST "$LOAD" streams -p "$AS_PORT" -n "$ntls" -R 500 -d 2 -w "$WARM" -m bench-stream -P "$AS_PID")
                log "autoswitch TLS streams: $res"
                per_stream=$(awk -v a="$(kv rss_kb "$res")" -v b="$idle1" -v n="$ntls" 'BEGIN {printf "%.1f", (a - b) / n}')
                TLS_ROW="| autoswitch to an HTTPS upstream: RSS per idle pooled TLS connection / per TLS stream, KiB | – | – | – | $per_idle / $per_stream |"
                TLS_NOTE="HTTPS row: autoswitch's upstream is nginx with TLS (P-256 certificate from a throw-away CA given as ca_file); idle = (RSS with $pooled upstream TLS connections idle in the keep-alive pool after a $RATE req/s run over $CONNS connections − RSS before) / $pooled; stream = (RSS during $ntls streams through TLS − RSS with the pool idle) / $ntls, each stream being one plain client connection plus one TLS upstream connection ($(kv completed "$res")/$ntls completed, $(kv errors "$res") errors)."
                stop_pid "$AS_PID"
            else
                log "autoswitch (TLS config) did not start: $(cat "$AS_DIR/stderr")"
            fi
        else
            log "TLS nginx did not start: $(cat "$TLS_DIR/stderr" "$TLS_DIR/error.log" 2>/dev/null)"
        fi
        stop_pid "$TLS_NGINX_PID"
    else
        log "openssl failed, no HTTPS row: $(tail -3 "$PKI/openssl.log")"
    fi
fi

# -------------------------------------------------------------------- table
AS=autoswitch
cell() {  # MEASURE TARGET [ADDED-MEASURE]: "value" or "value (+added)"
    local v=${M[$1,$2]:-}
    [ -n "$v" ] || { echo "?"; return; }
    v=$(awk -v x="$v" 'BEGIN {printf (x >= 100 ? "%.0f" : "%.1f"), x}')
    if [ -n "${3:-}" ] && [ -n "${M[$3,$2]:-}" ]; then
        echo "$v ($(awk -v x="${M[$3,$2]}" 'BEGIN {printf "%+.0f", x}'))"
    else
        echo "$v"
    fi
}
ratio_cell() {
    if [ -n "${M[rps,$1]:-}" ] && [ -n "${M[ratio,$1]:-}" ]; then printf '%.0f (%.2f)' "${M[rps,$1]}" "${M[ratio,$1]}"; else echo "?"; fi
}
verdict() {  # VALUE OP LIMIT UNIT: met / missed by ...
    awk -v v="$1" -v op="$2" -v l="$3" -v u="$4" 'BEGIN {
        if (v == "") { print "?"; exit }
        ok = (op == "<") ? (v < l) : (op == "<=") ? (v <= l) : (v >= l)
        if (ok) { print "met"; exit }
        d = v - l; if (d < 0) d = -d
        if (u == "ratio") printf "missed by %.0f%%\n", 100 * d / l
        else printf "missed by %.1f %s (%.0f%%)\n", d, u, 100 * d / l }'
}
size_of() { stat -c %s "$1" 2>/dev/null; }

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
[ -n "$cpu" ] || cpu=$(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -1)
machine="$cpu, $(nproc) cores, Linux $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'); load average $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end ($(( $(date +%s) - T_BEGIN )) s)"

if [[ "$BIN" == */build-static/* ]]; then
    as_head="autoswitch (static)"
    size_cell="$(size_of "$BIN") B static"
else
    as_head="autoswitch"
    size_cell="$(size_of "$BIN") B (this build)"
    if [ -x "$ROOT/build-static/autoswitch" ]; then
        size_cell="$size_cell; static build: $(size_of "$ROOT/build-static/autoswitch") B"
    else
        size_cell="$size_cell; no static build (make static)"
    fi
fi
cols="direct nginx haproxy autoswitch"
head="| measure | direct | nginx $(nginx -v 2>&1 | sed 's|.*/||') | haproxy $(haproxy -v 2>/dev/null | awk 'NR == 1 {print $3}') | $as_head $("$BIN" --version 2>/dev/null | awk '{print $2}')"
sep="| --- | --- | --- | --- | ---"
if [ -n "$GLIBC_BIN" ]; then
    cols="$cols autoswitch-glibc"
    head="$head | autoswitch (glibc build)"
    sep="$sep | ---"
fi
head="$head | goal (autoswitch) | |"
sep="$sep | --- | --- |"
c_val() { if [ "$1" = direct ] && [ "$2" != l50 ] && [ "$2" != l99 ] && [ "$2" != e50 ] && [ "$2" != e99 ] && [ "$2" != rps ]; then echo "–"; else cell "$2" "$1" "${3:-}"; fi; }
c_rps() {
    if [ -z "${M[rps,$1]:-}" ]; then echo "?"
    elif [ "$1" = direct ]; then printf '%.0f' "${M[rps,$1]}"
    elif [ "$1" = nginx ]; then printf '%.0f (1.00)' "${M[rps,$1]}"
    else ratio_cell "$1"; fi
}
c_start() { if [ "$1" = direct ]; then echo "$(cell start direct) (floor)"; else cell start "$1"; fi; }
c_size() {
    case "$1" in
    direct) echo "–" ;;
    nginx) echo "$(size_of "$(command -v nginx)") B + shared libs" ;;
    haproxy) echo "$(size_of "$(command -v haproxy)") B + shared libs" ;;
    autoswitch) echo "$size_cell" ;;
    autoswitch-glibc) echo "$(size_of "$GLIBC_BIN") B + shared libs" ;;
    esac
}
c_add() { if [ "$1" = direct ]; then cell "$2" direct; else cell "$2" "$1" "add$2"; fi; }

# Rows are built cell by cell (cells may contain spaces).
build_row() {  # LABEL GOAL VERDICT FN [ARGS]
    local label=$1 goal=$2 verdict=$3 fn=$4; shift 4
    local line="| $label" t
    for t in $cols; do line="$line | $("$fn" "$t" "$@")"; done
    echo "$line | $goal | $verdict |"
}
{
    echo "Machine: $machine"
    echo
    echo "$head"
    echo "$sep"
    build_row "throughput, $CONNS keep-alive connections, req/s (ratio to nginx)" "≥ nginx" \
        "$(verdict "${M[ratio,$AS]:-}" ">=" 1 ratio)" c_rps
    build_row "proxy CPU time per request in the throughput run, µs" "–" "" c_val cpureq
    build_row "latency at $RATE req/s, p50 µs (added over direct)" "–" "" c_add l50
    build_row "latency at $RATE req/s, p99 µs (added over direct)" "added p99 < 500 µs" \
        "$(verdict "${M[addl99,$AS]:-}" "<" 500 µs)" c_add l99
    build_row "$NSTREAMS streams × 20 events/s: per-event delay p50 µs (added)" "–" "" c_add e50
    build_row "$NSTREAMS streams × 20 events/s: per-event delay p99 µs (added)" "added p99 < 2 ms" \
        "$(verdict "${M[adde99,$AS]:-}" "<" 2000 µs)" c_add e99
    build_row "proxy CPU time per stream event, µs" "–" "" c_val cpuev
    build_row "RSS per stream, KiB ((RSS during streams − idle) / $NSTREAMS)" "≤ 40 KiB" \
        "$(verdict "${M[perstream,$AS]:-}" "<=" 40 KiB)" c_val perstream
    build_row "idle RSS, KiB" "< 1 MiB" "$(verdict "${M[idle,$AS]:-}" "<" 1024 KiB)" c_val idle
    v=$(verdict "${M[start,$AS]:-}" "<" 10 ms)
    if [ "${v#missed}" != "$v" ] && [ -n "${M[start,direct]:-}" ]; then
        v="$v; but the floor of this measurement here is $(printf '%.1f' "${M[start,direct]}") ms: autoswitch adds $(awk -v a="${M[start,$AS]}" -v b="${M[start,direct]}" 'BEGIN {printf "%+.1f", a - b}') ms to it"
    fi
    build_row "start-up to first served request, ms (median of 7)" "< 10 ms" "$v" c_start
    build_row "binary size" "–" "" c_size
    if [ -n "$TLS_ROW" ]; then
        # the HTTPS row has a value for the measured binary only
        line=$(printf '%s' "$TLS_ROW" | sed 's/ |$//')
        [ -n "$GLIBC_BIN" ] && line="$line | –"
        echo "$line | – | |"
    fi
    echo
    echo "Notes: everything on 127.0.0.1 on one $(nproc)-core machine shared by the load generator, the upstream and the proxy$([ -n "$ON_PROXY" ] && echo " (proxy pinned to CPU 1, the rest to CPU 0)"), so compare columns, not absolute numbers."
    echo "Each cell is the median over $ROUNDS rounds (streams: $SROUNDS), the targets taking turns in a rotated order; \"added\" and the ratios are medians of the per-round differences and ratios against the same round's direct and nginx runs."
    ratios=""; adds=""; eadds=""
    for ((r = 0; r < ROUNDS; r++)); do
        ratios="$ratios${ratios:+ / }$(awk -v a="${R[rps,$AS,$r]:-}" -v b="${R[rps,nginx,$r]:-}" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "?"}')"
        adds="$adds${adds:+ / }$(awk -v a="${R[l99,$AS,$r]:-}" -v b="${R[l99,direct,$r]:-}" 'BEGIN {printf "%+.0f", a - b}')"
    done
    for ((r = 0; r < SROUNDS; r++)); do
        eadds="$eadds${eadds:+ / }$(awk -v a="${R[e99,$AS,$r]:-}" -v b="${R[e99,direct,$r]:-}" 'BEGIN {printf "%+.0f", a - b}')"
    done
    echo "Per round, $as_head: throughput ratio to nginx $ratios; added p99 at $RATE req/s $adds µs; added per-event p99 $eadds µs; p99 over direct for nginx $(for ((r = 0; r < ROUNDS; r++)); do awk -v a="${R[l99,nginx,$r]:-}" -v b="${R[l99,direct,$r]:-}" 'BEGIN {printf "%+.0f ", a - b}'; done)µs (a stall of the machine shows as a round with a p99 of tens of ms)."
    echo "autoswitch: $BIN$([ -n "$GLIBC_BIN" ] && echo "; glibc column: $GLIBC_BIN (make, -O2, dynamic)")."
    echo "Throughput: wrk -t1 -c$CONNS for ${SECS} s right after the latency run on the same proxy process, POST /v1/chat/completions with a small JSON body and a Bearer key; proxy CPU = utime + stime of the proxy process during the run / requests."
    echo "Latency: scripts/bench/load.c, open loop at $RATE req/s over $CONNS keep-alive connections for ${SECS} s after ${WARM} s not counted; each request's latency counts from its scheduled send time."
    echo "Streams: $NSTREAMS concurrent POST stream requests opened at $OPEN_RATE/s; scripts/bench/sse.c sends a chat.completion.chunk every 50 ms on each, stamped with CLOCK_MONOTONIC; delay = receive − send time, over ${SECS} s after all are open plus ${WARM} s; streams completed per round: $(for t in $cols; do printf '%s %s; ' "$t" "${M[edone,$t]}"; done)"
    echo "Errors (non-200, resets, timeouts) over all rounds: $(for t in $cols; do printf '%s %s; ' "$t" "$(( ${M[errs,$t]} + ${M[eerrs,$t]} ))"; done)latency requests the load generator itself sent over 1 ms late (machine noise, still charged from their scheduled time): $(for t in $cols; do printf '%s %s; ' "$t" "${M[late,$t]}"; done | sed 's/; $//')."
    echo "RSS: VmRSS of the proxy process (nginx runs master_process off, so its one process is the worker; haproxy is one process); idle = just started, before any request; during streams = median of samples every 250 ms."
    echo "Logging: nginx writes an access log line per request to a file and autoswitch one to stdout (a file here); haproxy has no log target, so logs nothing."
    echo "Start-up: fork+exec to the first 200 answer to a proxied chat request, polled every 0.1 ms; the direct column is the floor of that measurement on this machine: a trivial static C server (scripts/bench/sse.c) started and asked the same way."
    [ -n "$TLS_NOTE" ] && echo "$TLS_NOTE"
} > "$TMP/table.md"

mkdir -p "$(dirname "$OUT")"
cp "$TMP/table.md" "$OUT"
cat "$TMP/table.md"
