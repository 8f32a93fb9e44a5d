#!/usr/bin/env bash
# Benchmark: the same load, in one run on this machine, straight to the
# upstream ("direct"), through nginx (1 worker, upstream keepalive,
# proxy_buffering off), through haproxy (nbthread 1, http-no-delay) and
# through autoswitch.  Upstreams: a separate nginx answering a fixed
# chat.completion JSON, and scripts/bench/sse.c for streams.  Load: wrk
# (throughput) and scripts/bench/load.c (open-loop latency at a fixed rate,
# concurrent streams, idle connections, start-up time).  Prints a markdown
# table with the machine and the goals met or not met; also saved to
# build/bench-results.md.
#
#   scripts/bench.sh                 (about 12-14 minutes)
#   BENCH_SECONDS=1 BENCH_ROUNDS=1 BENCH_STREAM_ROUNDS=1 BENCH_SERIES="50 100" \
#     BENCH_STREAMS=100 BENCH_IDLE=500 scripts/bench.sh      (a quick look)
#
# Parts (BENCH_PARTS, default all of them, in this order):
#   throughput  wrk throughput and proxy CPU per request; open-loop latency at
#               BENCH_RATE; idle RSS
#   streams     BENCH_STREAMS concurrent streams × 20 events/s: per-event
#               delay, CPU per event, RSS per stream
#   series      the same at each size of BENCH_SERIES (the streams size is
#               measured once when it is in both): does CPU per event grow
#               with the number of streams?
#   idle        BENCH_IDLE idle keep-alive connections (each sent one request
#               first) held open to the target while an open loop of
#               BENCH_IDLE_RATE req/s runs on BENCH_CONNS other connections:
#               CPU per request without and with them, and the latency of
#               the first request on a connection idle for BENCH_IDLE_WAIT s
#               or more (load.c idle)
#   startup     start-up to the first served request
#   tls         autoswitch to an HTTPS upstream (also BENCH_TLS=0 skips it)
#
# The targets run in turns (rounds, the order rotated each round); each
# cell is min / median / max over the rounds, so a burst of load from
# elsewhere on the machine shows as one odd round.  Ratios in the goals are
# ratios of medians; "added" values are per-round differences against the
# same round's direct run.  The 1-minute load average is logged before and
# after every round and printed at the top and bottom of the table, with a
# warning when it is 1 or more before or after the run.
#
# Environment:
#   BENCH_SECONDS   measured seconds of each load run (default 3)
#   BENCH_WARMUP    unmeasured seconds before each (default 1)
#   BENCH_ROUNDS    rounds of throughput + latency (default 3)
#   BENCH_STREAM_ROUNDS  rounds of the streams and series runs (default 3)
#   BENCH_IDLE_ROUNDS    rounds of the idle-connections run (default
#                   BENCH_STREAM_ROUNDS)
#   BENCH_RATE      fixed rate of the latency run, req/s (default 2000)
#   BENCH_CONNS     keep-alive connections, throughput, latency and the idle
#                   run's open loop (default 50)
#   BENCH_STREAMS   concurrent streams of the streams part (default 1000)
#   BENCH_SERIES    stream counts of the series part (default "250 1000 2000");
#                   its goal compares the largest with the smallest
#   BENCH_IDLE      idle keep-alive connections of the idle part (default
#                   10000; scaled down, and said so, when the descriptor hard
#                   limit or the local port range cannot hold them)
#   BENCH_IDLE_RATE open-loop rate beside them, req/s (default 2000)
#   BENCH_IDLE_WAIT seconds the crowd stays idle before the measured load
#                   (default 3; autoswitch closes keep-alive connections idle
#                   for 60 s)
#   BENCH_IDLE_WAKE first requests on idle connections per second during the
#                   measured seconds, the longest idle first (default 100)
#   BENCH_IDLE_OPEN idle connections opened per second (default 5000)
#   BENCH_PARTS     parts to run (default "throughput streams series idle
#                   startup tls")
#   BENCH_TLS       0 skips the HTTPS-upstream row (default 1)
#   BENCH_GLIBC     0 leaves out the extra column for build/autoswitch (glibc)
#                   when the static binary is the one measured (default 1)
#   BENCH_KEYED     0 leaves out the extra "autoswitch-keyed" column (default
#                   1): the same binary with the client key given as a named
#                   key (keys:, limits that never trigger but are all
#                   checked, usage_file) instead of api_keys, for the goal
#                   "a named key's proxy CPU per request within 5% of no
#                   key's"; run in the throughput part and at the
#                   BENCH_STREAMS size of the streams part only (not in the
#                   series, idle, startup or tls parts)
#   BENCH_PIN       1 pins the proxy under test to CPU 1 and everything else
#                   to CPU 0 (default 0: the scheduler decides)
#   AUTOSWITCH_BIN  binary to measure (default build-static/autoswitch when
#                   present, else build/autoswitch; both after make)
#   AUTOSWITCH_GLIBC_BIN  binary of the extra glibc column; when set with
#                   AUTOSWITCH_BIN, nothing is built
#   BENCH_BASE_IDLE_RSS_KIB, BENCH_BASE_STARTUP_MS, BENCH_BASE_SIZE
#                   earlier figures (idle RSS KiB, start-up ms, binary bytes)
#                   the table compares with; unset: just reported
#   BENCH_OUT       where the table is saved (default build/bench-results.md)
#   BENCH_KEEP=1    keep the temp dir (configs, logs)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECS=${BENCH_SECONDS:-3}
WARM=${BENCH_WARMUP:-1}
ROUNDS=${BENCH_ROUNDS:-3}
SROUNDS=${BENCH_STREAM_ROUNDS:-3}
IROUNDS=${BENCH_IDLE_ROUNDS:-$SROUNDS}
RATE=${BENCH_RATE:-2000}
CONNS=${BENCH_CONNS:-50}
NSTREAMS=${BENCH_STREAMS:-1000}
SERIES=${BENCH_SERIES:-250 1000 2000}
IDLE=${BENCH_IDLE:-10000}
IDLE_RATE=${BENCH_IDLE_RATE:-2000}
IDLE_WAIT=${BENCH_IDLE_WAIT:-3}
IDLE_WAKE=${BENCH_IDLE_WAKE:-100}
IDLE_OPEN=${BENCH_IDLE_OPEN:-5000}
PARTS=${BENCH_PARTS:-throughput streams series idle startup tls}
DO_TLS=${BENCH_TLS:-1}
KEYED=${BENCH_KEYED:-1}
PIN=${BENCH_PIN:-0}
OUT=${BENCH_OUT:-$ROOT/build/bench-results.md}
OPEN_RATE=1000     # streams opened per second
EV_RATE=20         # events per second per stream (sse.c: one every 50 ms)

log() { echo "bench: $*" >&2; }
fail() { echo "bench: $*" >&2; exit 1; }

for p in $PARTS; do
    case $p in throughput|streams|series|idle|startup|tls) ;; *) fail "unknown part '$p' in BENCH_PARTS (throughput streams series idle startup tls)" ;; esac
done
has_part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
[ "$DO_TLS" = 1 ] || PARTS=$(printf '%s\n' $PARTS | grep -vx tls | xargs)
for v in SECS WARM IDLE_WAIT; do
    awk -v x="${!v}" 'BEGIN {exit !(x ~ /^[0-9]+(\.[0-9]+)?$/)}' || fail "$v: not a number of seconds: ${!v}"
done
for v in ROUNDS SROUNDS IROUNDS RATE CONNS NSTREAMS IDLE IDLE_RATE IDLE_WAKE IDLE_OPEN; do
    case ${!v} in ''|*[!0-9]*) fail "$v: not a whole number: ${!v}" ;; esac
done
for n in $SERIES; do case $n in ''|*[!0-9]*|0) fail "BENCH_SERIES: not a stream count: $n" ;; esac; done
case $KEYED in 0|1) ;; *) fail "BENCH_KEYED: not 0 or 1: $KEYED" ;; esac
# the named-key target runs in the throughput and streams parts only
has_part throughput || has_part streams || KEYED=0

# The 1-minute load average: a busy machine makes every number here suspect.
la1() { cut -d' ' -f1 /proc/loadavg; }
is_busy() { awk -v x="$1" 'BEGIN {exit !(x >= 1)}'; }
busy_warning() {  # WHEN LOAD
    echo "**WARNING: load average (1 min) $2 >= 1 $1 the run: numbers from a busy machine: do not claim them.**"
}
is_busy "$(la1)" && log "warning: load average (1 min) $(la1) >= 1 already before the set-up"

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
    GLIBC_BIN=${AUTOSWITCH_GLIBC_BIN:-}
else
    if [ -n "${AUTOSWITCH_GLIBC_BIN:-}" ]; then
        GLIBC_BIN=$AUTOSWITCH_GLIBC_BIN
    elif (cd "$ROOT" && make -s >&2); then
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
if [ -n "$GLIBC_BIN" ]; then
    [ -x "$GLIBC_BIN" ] || fail "no glibc binary at $GLIBC_BIN"
    GLIBC_BIN=$(cd "$(dirname "$GLIBC_BIN")" && pwd)/$(basename "$GLIBC_BIN")
fi

# Stream sizes: the streams part's, and the series'.
SIZES=""
has_part streams && SIZES="$NSTREAMS"
has_part series && SIZES="$SIZES $SERIES"
SIZES=$(printf '%s\n' $SIZES | sort -nu | xargs)
SERIES_SIZES=$(printf '%s\n' $SERIES | sort -nu | xargs)
SMIN=$(printf '%s\n' $SERIES_SIZES | head -1); SMAX=$(printf '%s\n' $SERIES_SIZES | tail -1)
MAXSIZE=$(printf '%s\n' 0 $SIZES | sort -n | tail -1)

# Descriptors: the soft limit raised to the hard one (children inherit it; a
# proxy needs two per stream, and one per idle client connection).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
[ "$NOFILE" -ge $((2 * MAXSIZE + 100)) ] ||
    log "warning: ulimit -n is $NOFILE, too low for $MAXSIZE streams"
IDLE_ASKED=$IDLE
IDLE_NOTE=""
if has_part idle; then
    # the load generator holds IDLE + CONNS, the proxy IDLE + CONNS + its
    # upstream connections; and every client connection needs a local port
    read -r plo phi < /proc/sys/net/ipv4/ip_local_port_range
    cap=$((NOFILE - 2 * CONNS - 1000))
    why="the descriptor limit (ulimit -Hn) is $NOFILE"
    if [ $((phi - plo + 1 - CONNS - 2000)) -lt "$cap" ]; then
        cap=$((phi - plo + 1 - CONNS - 2000)); why="the local port range is $plo-$phi"
    fi
    if [ "$IDLE" -gt "$cap" ]; then
        IDLE=$cap
        IDLE_NOTE="SCALED DOWN: $IDLE idle connections instead of $IDLE_ASKED, because $why"
        log "WARNING: idle test $IDLE_NOTE"
    fi
    if [ "$IDLE" -lt 100 ]; then
        log "WARNING: the idle test is skipped: room for only $IDLE idle connections ($why)"
        IDLE_NOTE="SKIPPED: room for only $IDLE idle connections ($why)"
        PARTS=$(printf '%s\n' $PARTS | grep -vx idle | xargs)
    fi
fi
# What the proxies under test may hold: every idle client, or two per stream.
CONN_LIMIT=8000
has_part idle && [ $((IDLE + 2 * CONNS + 1000)) -gt "$CONN_LIMIT" ] && CONN_LIMIT=$((IDLE + 2 * CONNS + 1000))
[ $((2 * MAXSIZE + 1000)) -gt "$CONN_LIMIT" ] && CONN_LIMIT=$((2 * MAXSIZE + 1000))
NGX_WC=$((CONN_LIMIT > 8192 ? CONN_LIMIT : 8192))                 # nginx worker_connections
[ "$NGX_WC" -gt "$NOFILE" ] && NGX_WC=$NOFILE
NGX_NOFILE=$NOFILE                                                # nginx worker_rlimit_nofile
HA_MAXCONN=$CONN_LIMIT                                            # haproxy maxconn
# haproxy reserves two descriptors per connection and by default refuses to
# start when it cannot raise its limit to that; idle clients hold one.
HA_STRICT=""
[ $((2 * HA_MAXCONN + 200)) -gt "$NOFILE" ] && HA_STRICT="    no strict-limits"
AS_MAXCONN=$CONN_LIMIT                                            # autoswitch max_connections

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
# CPU time of a process, all its threads, µs: schedstat (exact), else
# utime + stime (clock ticks).
cpu_us() {
    local v
    v=$(cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {if (NR) printf "%.0f", s / 1000}')
    [ -n "$v" ] || v=$(awk -v hz="$HZ" '{printf "%.0f", ($14 + $15) * 1e6 / hz}' "/proc/$1/stat" 2>/dev/null)
    echo "${v:-0}"
}
CPU_SOURCE=$([ -r /proc/self/schedstat ] && echo "schedstat (all threads)" || echo "utime + stime")
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
per() {  # TOTAL COUNT [SCALE]: TOTAL / COUNT * SCALE with one decimal, or nothing
    awk -v a="$1" -v n="$2" -v k="${3:-1}" 'BEGIN {if (a != "" && n > 0) printf "%.1f", a / n * k}'
}
diff_of() {  # A B: A - B, or nothing when either is missing
    awk -v a="$1" -v b="$2" 'BEGIN {if (a != "" && b != "") print a - b}'
}

# Rounds and their load averages: LA_B / LA_A[part,round].
declare -A LA_B LA_A
round_begin() {  # PART ROUND COUNT
    LA_B[$1,$2]=$(la1)
    log "$1 round $(($2 + 1))/$3: load average (1 min) before: ${LA_B[$1,$2]}$(is_busy "${LA_B[$1,$2]}" && echo " (busy)")"
}
round_end() {  # PART ROUND COUNT
    LA_A[$1,$2]=$(la1)
    log "$1 round $(($2 + 1))/$3: load average (1 min) after: ${LA_A[$1,$2]}$(is_busy "${LA_A[$1,$2]}" && echo " (busy)")"
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
worker_rlimit_nofile $NGX_NOFILE;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections $NGX_WC; }
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
    maxconn $HA_MAXCONN
$HA_STRICT
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
max_connections: $AS_MAXCONN
providers:
  - name: upstream
    base_url: http://127.0.0.1:$up
    model_mappings: [{upstream: bench-model, alias: bench, probe: none}]
Y
        if [ "$kind" = autoswitch ]; then echo "$BIN -c $dir/autoswitch.yaml -p $port"
        else echo "$GLIBC_BIN -c $dir/autoswitch.yaml -p $port"; fi
        ;;
    autoswitch-keyed)
        # the load tools' token "bench" as a named key (no api_keys): every
        # limit is checked and none triggers; usage is accounted and stored
        cat > "$dir/autoswitch.yaml" <<Y
listen: 127.0.0.1
max_connections: $AS_MAXCONN
usage_file: $dir/usage.json
keys:
  - {name: bench-key, key: "bench", models: ["bench*"], rpm: 100000000, max_concurrent: 1000000, daily_tokens: 100000000000000}
providers:
  - name: upstream
    base_url: http://127.0.0.1:$up
    model_mappings: [{upstream: bench-model, alias: bench, probe: none}]
Y
        echo "$BIN -c $dir/autoswitch.yaml -p $port"
        ;;
    esac
}

# start_target KIND UPSTREAM_PORT: sets T_PORT, T_PID (T_PID empty for
# direct) and T_DIR
start_target() {
    local kind=$1 up=$2
    T_PID=""; T_DIR=""
    if [ "$kind" = direct ]; then T_PORT=$up; return 0; fi
    T_PORT=$(freeport)
    local dir=$TMP/$kind-$T_PORT cmd
    T_DIR=$dir
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
# KTARGETS: TARGETS with the named-key target beside autoswitch, for the
# throughput part and the streams part's size (the series sizes, idle,
# startup and tls run without it, to keep the run time down).
KT=autoswitch-keyed
KTARGETS=$TARGETS
# shellcheck disable=SC2086
[ "$KEYED" = 1 ] && KTARGETS=$(printf '%s\n' $TARGETS | sed "s/^autoswitch\$/autoswitch $KT/" | xargs)
# Warnings and errors the proxy under test logged (T_DIR: stderr, error.log),
# counted, the first few shown; PROBLEMS[kind] collects them for the notes.
declare -A PROBLEMS=()
proxy_problems() {  # KIND WHAT
    [ -n "$T_DIR" ] || return 0
    local lines n
    lines=$(cat "$T_DIR/stderr" "$T_DIR/error.log" 2>/dev/null | grep -aiE 'warn|error|alert|emerg|crit|too many|out of|refus|limit' | grep -avE 'Cannot raise FD limit|FD limit \([0-9]+\) too low for maxconn|^$')
    [ -n "$lines" ] || return 0
    n=$(printf '%s\n' "$lines" | wc -l)
    log "$1 logged $n warning/error lines during $2, e.g.:"
    printf '%s\n' "$lines" | head -3 | sed 's/^/bench:   /' >&2
    PROBLEMS[$1]="${PROBLEMS[$1]:-}${PROBLEMS[$1]:+; }$2: $n lines, first: $(printf '%s\n' "$lines" | head -1 | cut -c1-160)"
}

rotate() {  # N WORDS...: the words rotated left by N
    local n=$1; shift
    local a=("$@") i k
    k=${#a[@]}
    for ((i = 0; i < k; i++)); do printf '%s ' "${a[$(((i + n) % k))]}"; done
}
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
LA1_START=${LOAD_START%% *}
is_busy "$LA1_START" && log "$(busy_warning before "$LA1_START")"
T_BEGIN=$(date +%s)
declare -A R   # per round: R[measure,target,round]
declare -A M   # single results: M[measure,target]
MAXR=1
for n in $ROUNDS $SROUNDS $IROUNDS; do [ "$n" -gt "$MAXR" ] && MAXR=$n; done

# ---- throughput: latency at a fixed rate (load rate) and throughput (wrk)
if has_part throughput; then
    for ((r = 0; r < ROUNDS; r++)); do
        round_begin throughput "$r" "$ROUNDS"
        # shellcheck disable=SC2086
        for t in $(rotate "$r" $KTARGETS); do
            start_target "$t" "$UP_JSON"
            [ -n "$T_PID" ] && R[idle,$t,$r]=$(rss_kb "$T_PID")
            res=$($ON_REST "$LOAD" rate -p "$T_PORT" -c "$CONNS" -r "$RATE" -d "$SECS" -w "$WARM")
            log "round $((r + 1)) $t latency: $res"
            R[l50,$t,$r]=$(kv p50_us "$res"); R[l99,$t,$r]=$(kv p99_us "$res")
            R[lerr,$t,$r]=$(kv errors "$res"); R[late,$t,$r]=$(kv late_sends "$res")
            # (the latency run just before is the warm-up)
            url=http://127.0.0.1:$T_PORT/v1/chat/completions
            c0=0; [ -n "$T_PID" ] && c0=$(cpu_us "$T_PID")
            out=$($ON_REST wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$ROOT/scripts/bench/post.lua" "$url" 2>&1)
            c1=0; [ -n "$T_PID" ] && c1=$(cpu_us "$T_PID")
            R[rps,$t,$r]=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ {printf "%.0f", $2}')
            R[rerr,$t,$r]=$(printf '%s\n' "$out" | awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}')
            nreq=$(printf '%s\n' "$out" | awk '/requests in/ {print $1}')
            [ -n "$T_PID" ] && R[cpureq,$t,$r]=$(per $((c1 - c0)) "${nreq:-0}")
            log "round $((r + 1)) $t throughput: ${R[rps,$t,$r]} req/s, errors ${R[rerr,$t,$r]}, proxy CPU/request ${R[cpureq,$t,$r]:-} µs"
            proxy_problems "$t" "throughput round $((r + 1))"
            [ -n "$T_PID" ] && stop_pid "$T_PID"
        done
        round_end throughput "$r" "$ROUNDS"
    done
fi

# ---- streams and series: concurrent streams at each size
if [ -n "${SIZES// /}" ]; then
    for ((r = 0; r < SROUNDS; r++)); do
        round_begin streams "$r" "$SROUNDS"
        for n in $SIZES; do
            tl=$TARGETS
            [ "$n" = "$NSTREAMS" ] && has_part streams && tl=$KTARGETS
            # shellcheck disable=SC2086
            for t in $(rotate "$r" $tl); do
                start_target "$t" "$UP_SSE"
                pid_arg=()
                if [ -n "$T_PID" ]; then
                    idle=$(rss_kb "$T_PID")
                    pid_arg=(-P "$T_PID")
                    c0=$(cpu_us "$T_PID")
                fi
                res=$($ON_REST "$LOAD" streams -p "$T_PORT" -n "$n" -R "$OPEN_RATE" -d "$SECS" -w "$WARM" "${pid_arg[@]}")
                R[e50:$n,$t,$r]=$(kv p50_us "$res"); R[e99:$n,$t,$r]=$(kv p99_us "$res")
                R[eerr:$n,$t,$r]=$(kv errors "$res"); R[edone:$n,$t,$r]=$(kv completed "$res")
                R[evps:$n,$t,$r]=$(kv events_per_s "$res")
                if [ -n "$T_PID" ]; then
                    R[perstream:$n,$t,$r]=$(awk -v a="$(kv rss_kb "$res")" -v b="$idle" -v n="$n" 'BEGIN {printf "%.1f", (a - b) / n}')
                    R[cpuev:$n,$t,$r]=$(per $(($(cpu_us "$T_PID") - c0)) "$(kv events "$res")")
                fi
                log "round $((r + 1)) $t $n streams: $res per_stream_kib=${R[perstream:$n,$t,$r]:-} cpu_per_event_us=${R[cpuev:$n,$t,$r]:-}"
                proxy_problems "$t" "$n streams round $((r + 1))"
                [ -n "$T_PID" ] && stop_pid "$T_PID"
            done
        done
        round_end streams "$r" "$SROUNDS"
    done
fi

# ---- idle: IDLE idle keep-alive connections beside an open loop (load idle)
IDLE_SHORT=""
if has_part idle; then
    for ((r = 0; r < IROUNDS; r++)); do
        round_begin idle "$r" "$IROUNDS"
        # shellcheck disable=SC2086
        for t in $(rotate "$r" $TARGETS); do
            start_target "$t" "$UP_JSON"
            pid_arg=()
            [ -n "$T_PID" ] && pid_arg=(-P "$T_PID")
            res=$($ON_REST "$LOAD" idle -p "$T_PORT" -n "$IDLE" -c "$CONNS" -r "$IDLE_RATE" -d "$SECS" -w "$WARM" \
                -i "$IDLE_WAIT" -R "$IDLE_OPEN" -W "$IDLE_WAKE" "${pid_arg[@]}")
            log "round $((r + 1)) $t idle: $res"
            if [ -n "$(kv error "$res")" ] || [ -z "$(kv load_ok "$res")" ]; then
                log "WARNING: $t idle run failed: ${res:-no output}"
            else
                R[ib50,$t,$r]=$(kv base_p50_us "$res"); R[ib99,$t,$r]=$(kv base_p99_us "$res")
                R[il50,$t,$r]=$(kv load_p50_us "$res"); R[il99,$t,$r]=$(kv load_p99_us "$res")
                R[iw50,$t,$r]=$(kv wake_p50_us "$res"); R[iw99,$t,$r]=$(kv wake_p99_us "$res")
                R[iwmax,$t,$r]=$(kv wake_max_us "$res"); R[iwn,$t,$r]=$(kv wake_ok "$res")
                R[iwidle,$t,$r]=$(kv wake_min_idle_s "$res")
                R[ikept,$t,$r]=$(kv crowd_kept "$res"); R[ialive,$t,$r]=$(kv crowd_alive_end "$res")
                R[icerr,$t,$r]=$(( $(kv crowd_err_connect "$res") + $(kv crowd_err_status "$res") + $(kv crowd_err_closed "$res") + $(kv crowd_err_timeout "$res") ))
                R[icclosed,$t,$r]=$(( $(kv crowd_closed_idle "$res") + $(kv crowd_closed_load "$res") ))
                R[icdetail,$t,$r]="connect $(kv crowd_err_connect "$res") ($(kv crowd_errno "$res")), status $(kv crowd_err_status "$res") ($(kv crowd_bad_status "$res")), closed $(kv crowd_err_closed "$res"), timeout $(kv crowd_err_timeout "$res")"
                R[ierr,$t,$r]=$(( $(kv base_errors "$res") + $(kv load_errors "$res") + $(kv wake_errors "$res") ))
                R[iopen,$t,$r]=$(kv crowd_open_s "$res")
                if [ -n "$T_PID" ]; then
                    R[icpu0,$t,$r]=$(kv base_cpu_us_per_req "$res"); R[icpu1,$t,$r]=$(kv load_cpu_us_per_req "$res")
                    R[irss,$t,$r]=$(per $(( $(kv rss_crowd_kb "$res") - $(kv rss_base_kb "$res") )) "$(kv crowd_kept "$res")")
                    R[ifds,$t,$r]=$(kv fds_crowd "$res")
                fi
                if [ "${R[ikept,$t,$r]:-0}" -lt "$IDLE" ] || [ "${R[ialive,$t,$r]:-0}" -lt "${R[ikept,$t,$r]:-0}" ]; then
                    IDLE_SHORT="$IDLE_SHORT${IDLE_SHORT:+; }$t round $((r + 1)): ${R[ikept,$t,$r]:-0} held idle, ${R[ialive,$t,$r]:-0} still open at the end (lost: ${R[icdetail,$t,$r]})"
                    log "WARNING: $t did not hold all $IDLE idle connections: ${R[ikept,$t,$r]:-0} held, ${R[ialive,$t,$r]:-0} open at the end (${R[icdetail,$t,$r]})"
                fi
            fi
            proxy_problems "$t" "idle round $((r + 1))"
            [ -n "$T_PID" ] && stop_pid "$T_PID"
        done
        round_end idle "$r" "$IROUNDS"
    done
fi

# Per-round differences: "added" over the same round's direct run, the idle
# run's figures against its own run without the crowd.
for t in $KTARGETS; do
    for ((r = 0; r < MAXR; r++)); do
        for m in l50 l99; do R[add$m,$t,$r]=$(diff_of "${R[$m,$t,$r]:-}" "${R[$m,direct,$r]:-}"); done
        for n in $SIZES; do
            for m in e50:$n e99:$n; do R[add$m,$t,$r]=$(diff_of "${R[$m,$t,$r]:-}" "${R[$m,direct,$r]:-}"); done
        done
        R[iladd,$t,$r]=$(diff_of "${R[il99,$t,$r]:-}" "${R[ib99,$t,$r]:-}")
        R[iwadd,$t,$r]=$(diff_of "${R[iw99,$t,$r]:-}" "${R[ib99,$t,$r]:-}")
        R[icpur,$t,$r]=$(awk -v a="${R[icpu1,$t,$r]:-}" -v b="${R[icpu0,$t,$r]:-}" 'BEGIN {if (a != "" && b > 0) printf "%.2f", a / b}')
    done
done

# ---- start-up to the first served request (direct: the floor, a trivial
# server started and asked the same way)
if has_part startup; then
    port=$(freeport)
    res=$($ON_REST "$LOAD" startup -p "$port" -k 7 -- "$TMP/bin/sse-static" -p "$port" -i 0)
    log "floor start-up: $res"
    M[start,direct]="$(kv min_ms "$res") $(kv median_ms "$res") $(kv max_ms "$res")"
    for t in $PROXIES; do
        port=$(freeport)
        cmd=$(write_config "$t" "$TMP/startup-$t" "$port" "$UP_JSON")
        # shellcheck disable=SC2086
        res=$($ON_REST "$LOAD" startup -p "$port" -k 7 -- $cmd)
        log "$t start-up: $res"
        M[start,$t]="$(kv min_ms "$res") $(kv median_ms "$res") $(kv max_ms "$res")"
    done
fi

# ---- (optional): autoswitch to an HTTPS upstream
TLS_ROW=""
TLS_NOTE=""
if has_part tls; then
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
max_connections: $AS_MAXCONN
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
                TLS_NOTE="HTTPS row (one run): autoswitch's upstream is nginx with TLS (P-256 certificate from a throw-away CA given as ca_file); idle = (RSS with $pooled upstream TLS connections idle in the keep-alive pool after a $RATE req/s run over $CONNS connections − RSS before) / $pooled; stream = (RSS during $ntls streams through TLS − RSS with the pool idle) / $ntls, each stream being one plain client connection plus one TLS upstream connection ($(kv completed "$res")/$ntls completed, $(kv errors "$res") errors)."
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
LA1_END=$(la1)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
is_busy "$LA1_END" && log "$(busy_warning after "$LA1_END")"

# -------------------------------------------------------------------- table
AS=autoswitch
stats() {  # MEASURE TARGET: "min median max count" over the rounds, or nothing
    local r
    for ((r = 0; r < MAXR; r++)); do printf '%s\n' "${R[$1,$2,$r]:-}"; done | awk 'NF' | sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) exit
        x = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        print v[1], x, v[NR], NR }'
}
med() { stats "$1" "$2" | cut -d' ' -f2; }
num() {  # VALUE [+]: no decimals from 100 on, else one; "+" shows the sign
    awk -v x="$1" -v s="${2:-}" 'BEGIN {a = x < 0 ? -x : x; printf (a >= 100 ? "%" s ".0f" : "%" s ".1f"), x}'
}
mmm() {  # MEASURE TARGET [+]: "min / median / max"; "–" (direct) or "?" when none
    local st a b c
    st=$(stats "$1" "$2")
    if [ -z "$st" ]; then [ "$2" = direct ] && echo "–" || echo "?"; return; fi
    read -r a b c _ <<<"$st"
    echo "$(num "$a" "${3:-}") / $(num "$b" "${3:-}") / $(num "$c" "${3:-}")"
}
ratio_med() {  # MEASURE_A TARGET_A MEASURE_B TARGET_B: median A / median B
    awk -v a="$(med "$1" "$2")" -v b="$(med "$3" "$4")" 'BEGIN {if (a != "" && b > 0) printf "%.2f", a / b}'
}
judge() {  # OP VALUE LIMIT: met / not met / ? (no value)
    awk -v v="$2" -v l="$3" -v op="$1" 'BEGIN {
        if (v == "" || l == "") { print "?"; exit }
        ok = (op == "<=") ? (v <= l) : (op == ">=") ? (v >= l) : (op == "<") ? (v < l) : (v > l)
        print ok ? "met" : "not met" }'
}
size_of() { stat -c %s "$1" 2>/dev/null; }
start_med() { local a b c; read -r a b c <<<"${M[start,$AS]:-}"; echo "${b:-}"; }
base_cmp() {  # VALUE BASE UNIT [NO_BASE_TEXT]: how VALUE compares with an earlier figure
    if [ -z "$1" ]; then echo "?"; return; fi
    if [ -z "$2" ]; then echo "${4:-}"; return; fi
    awk -v v="$1" -v b="$2" -v u="$3" 'BEGIN {
        printf "%+g %s against the base %g %s (%.2f×)", v - b, u, b, u, (b > 0 ? v / b : 0) }'
}

fnum() { if [ -n "$1" ]; then num "$1" "${2:-}"; else echo "?"; fi; }
fmed() {  # MEASURE TARGET: the median, formatted
    local v
    v=$(med "$1" "$2")
    if [ -n "$v" ]; then num "$v"; else echo "?"; fi
}
# Goals: the verdicts, from this run's medians.
declare -A GV GT    # verdict and the summary line, per goal
GOALS=""
goal() {  # KEY VERDICT TEXT
    GV[$1]=$2; GT[$1]="$3: $2"; GOALS="$GOALS $1"
}
N=$NSTREAMS
if has_part throughput; then
    v=$(ratio_med rps $AS rps nginx)
    goal tput "$(judge ">=" "$v" 1.2)" "throughput at least 1.2× nginx's: ${v:-?}×"
    v=$(ratio_med cpureq $AS cpureq nginx)
    goal cpureq "$(judge "<=" "$v" 1)" "proxy CPU per request at most nginx's: $(fmed cpureq $AS) µs against $(fmed cpureq nginx) µs (${v:-?}×)"
    if [ "$KEYED" = 1 ]; then
        v=$(ratio_med cpureq $KT cpureq $AS)
        goal keyed "$(judge "<=" "$v" 1.05)" "a named key's proxy CPU per request within 5% of no key's: $(fmed cpureq $KT) µs against $(fmed cpureq $AS) µs (${v:-?}×)"
    fi
fi
if has_part streams; then
    v=$(ratio_med "cpuev:$N" $AS "cpuev:$N" nginx)
    goal cpuev "$(judge "<=" "$v" 1.2)" "$N streams: proxy CPU per event at most 1.2× nginx's: $(fmed "cpuev:$N" $AS) µs against $(fmed "cpuev:$N" nginx) µs (${v:-?}×)"
    a=$(med "adde99:$N" $AS); b=$(med "adde99:$N" nginx)
    lim=$(awk -v b="$b" 'BEGIN {if (b != "") print b + 500}')
    goal e99 "$(judge "<=" "$a" "$lim")" "$N streams: added per-event p99 at most nginx's + 0.5 ms: $(fnum "$a" +) µs against nginx's $(fnum "$b" +) µs (limit $(fnum "$lim" +) µs)"
    v=$(med "perstream:$N" $AS)
    goal rss "$(judge "<=" "$v" 6)" "$N streams: RSS per stream at most 6 KiB: $(fmed "perstream:$N" $AS) KiB"
fi
if has_part series && [ "$SMAX" != "$SMIN" ]; then
    v=$(ratio_med "cpuev:$SMAX" $AS "cpuev:$SMIN" $AS)
    goal series "$(judge "<=" "$v" 1.3)" "CPU per event at $SMAX streams within 1.3× of the figure at $SMIN: $(fmed "cpuev:$SMAX" $AS) µs against $(fmed "cpuev:$SMIN" $AS) µs (${v:-?}×)"
fi
if has_part idle; then
    v=$(ratio_med icpu1 $AS icpu0 $AS)
    goal idlecpu "$(judge "<=" "$v" 1.5)" "with $IDLE idle keep-alive clients, CPU per request at $IDLE_RATE req/s within 1.5× of the figure without them: $(fmed icpu1 $AS) µs against $(fmed icpu0 $AS) µs (${v:-?}×)"
    a=$(med iwadd $AS)
    goal wake "$(judge "<=" "$a" 20000)" "first request on a connection idle ≥ ${IDLE_WAIT} s within 20 ms of the usual (p99 against p99 without the idle crowd): $(fnum "$a" +) µs"
fi

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
[ -n "$cpu" ] || cpu=$(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -1)
machine="$cpu, $(nproc) cores, Linux $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'); load average $LOAD_START at the start, $LOAD_END at the end ($(( $(date +%s) - T_BEGIN )) s)"

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
head="| measure (min / median / max) | direct | nginx $(nginx -v 2>&1 | sed 's|.*/||') | haproxy $(haproxy -v 2>/dev/null | awk 'NR == 1 {print $3}') | $as_head $("$BIN" --version 2>/dev/null | awk '{print $2}')"
sep="| --- | --- | --- | --- | ---"
if [ "$KEYED" = 1 ]; then
    cols="$cols $KT"
    head="$head | autoswitch (named key)"
    sep="$sep | ---"
fi
if [ -n "$GLIBC_BIN" ]; then
    cols="$cols autoswitch-glibc"
    head="$head | autoswitch (glibc build)"
    sep="$sep | ---"
fi
head="$head | goal (autoswitch) | |"
sep="$sep | --- | --- |"

# Cells, one target each (cells may contain spaces).
c_mmm() { mmm "$2" "$1"; }
c_add() {  # T MEASURE: "min / med / max (added min / med / max)"
    if [ "$1" = direct ]; then mmm "$2" direct; else echo "$(mmm "$2" "$1") ($(mmm "add$2" "$1" +))"; fi
}
c_rps() {
    local v
    v=$(mmm rps "$1")
    if [ "$1" = direct ] || [ "$v" = "?" ]; then echo "$v"; else echo "$v ($(ratio_med rps "$1" rps nginx)×)"; fi
}
c_vs_nginx() {  # T MEASURE: the value, and its ratio of medians to nginx's
    local v
    v=$(mmm "$2" "$1")
    case "$1:$v" in direct:*|*:"?") echo "$v" ;; *) echo "$v ($(ratio_med "$2" "$1" "$2" nginx)× nginx)" ;; esac
}
c_vs_self() {  # T MEASURE BASE_MEASURE WORD: the value, and its ratio to another of the same target
    local v
    v=$(mmm "$2" "$1")
    case "$1:$v" in direct:*|*:"?") echo "$v" ;; *) echo "$v ($(ratio_med "$2" "$1" "$3" "$1")× $4)" ;; esac
}
c_cpureq() {  # T: c_vs_nginx, and for the named key its ratio of medians to no key
    local v
    v=$(c_vs_nginx "$1" cpureq)
    if [ "$1" = "$KT" ] && [ "$v" != "?" ]; then v="${v%)}, $(ratio_med cpureq "$KT" cpureq "$AS")× no key)"; fi
    echo "$v"
}
c_keyed() {  # T: the named key's CPU per request / no key's, in its column only
    if [ "$1" = "$KT" ]; then local v; v=$(ratio_med cpureq "$KT" cpureq "$AS"); echo "${v:-?}×"; else echo "–"; fi
}
c_series() {
    [ "$1" = direct ] && { echo "–"; return; }
    local v
    v=$(ratio_med "cpuev:$SMAX" "$1" "cpuev:$SMIN" "$1")
    echo "${v:-?}×"
}
c_pair() {  # T MEASURE ADDED: "value (added)" where added is against the target's own base
    local v
    v=$(mmm "$2" "$1")
    [ "$v" = "?" ] || [ "$v" = "–" ] && { echo "$v"; return; }
    echo "$v ($(mmm "$3" "$1" +))"
}
c_start() {
    local a b c
    read -r a b c <<<"${M[start,$1]:-}"
    if [ -z "$b" ]; then echo "?"; return; fi
    echo "$(num "$a") / $(num "$b") / $(num "$c")$([ "$1" = direct ] && echo " (floor)")"
}
c_size() {
    case "$1" in
    direct) echo "–" ;;
    nginx) echo "$(size_of "$(command -v nginx)") B + shared libs" ;;
    haproxy) echo "$(size_of "$(command -v haproxy)") B + shared libs" ;;
    autoswitch) echo "$size_cell" ;;
    autoswitch-glibc) echo "$(size_of "$GLIBC_BIN") B + shared libs" ;;
    "$KT") echo "(the autoswitch binary)" ;;
    esac
}
keyed_ran() {  # FN [MEASURE]: whether the named-key target has this row's figures
    case $1 in
    c_rps|c_size|c_keyed|c_cpureq) return 0 ;;
    c_series|c_start) return 1 ;;
    esac
    case ${2:-} in
    rps|cpureq|l50|l99|idle) has_part throughput ;;
    e50:"$N"|e99:"$N"|cpuev:"$N"|perstream:"$N") has_part streams ;;
    *) return 1 ;;
    esac
}
build_row() {  # LABEL GOAL VERDICT FN [ARGS]
    local label=$1 goal=$2 verdict=$3 fn=$4; shift 4
    local line="| $label" t
    for t in $cols; do
        if [ "$t" = "$KT" ] && ! keyed_ran "$fn" "$@"; then line="$line | –"   # not run there
        else line="$line | $("$fn" "$t" "$@")"; fi
    done
    echo "$line | $goal | $verdict |"
}
gv() {  # KEY EXTRA: the verdict cell
    [ -n "${GV[$1]:-}" ] || { echo ""; return; }
    echo "${GV[$1]}${2:+ ($2)}"
}
la_cell() {  # PART ROUND: "before → after", marked when busy
    local b=${LA_B[$1,$2]:-?} a=${LA_A[$1,$2]:-?} m=""
    { is_busy "$b" || is_busy "$a"; } && m=" (busy)"
    echo "$b → $a$m"
}
pr_row() {  # PART ROUND MEASURE LABEL [FORMAT]: one row of the per-round table
    local line t v
    line="| $1 $(($2 + 1)) | $(la_cell "$1" "$2") | $4"
    for t in $cols; do
        v=${R[$3,$t,$2]:-}
        if [ -z "$v" ]; then line="$line | –"
        elif [ -n "${5:-}" ]; then line="$line | $(printf "$5" "$v")"
        else line="$line | $(num "$v")"; fi
    done
    echo "$line |"
}
warnings() {
    is_busy "$LA1_START" && busy_warning before "$LA1_START"
    is_busy "$LA1_END" && busy_warning after "$LA1_END"
    [ -n "$IDLE_NOTE" ] && echo "**Idle test $IDLE_NOTE.**"
    [ -n "$IDLE_SHORT" ] && echo "**Idle test: not every target held all $IDLE idle connections: $IDLE_SHORT.**"
    return 0
}

{
    echo "Machine: $machine"
    echo
    echo "Load average (1 min) at the start: $LA1_START."
    warnings
    echo
    echo "$head"
    echo "$sep"
    if has_part throughput; then
        build_row "throughput, $CONNS keep-alive connections, req/s (ratio of medians to nginx)" "≥ 1.2× nginx" \
            "$(gv tput "$(ratio_med rps $AS rps nginx)×")" c_rps
        build_row "proxy CPU time per request in the throughput run, µs" "≤ nginx" \
            "$(gv cpureq "$(ratio_med cpureq $AS cpureq nginx)×")" c_cpureq
        [ -n "${GV[keyed]:-}" ] && build_row "proxy CPU per request with a named key / with no key (ratio of medians)" "named key ≤ 1.05× no key" \
            "$(gv keyed "$(ratio_med cpureq $KT cpureq $AS)×")" c_keyed
        build_row "latency at $RATE req/s, p50 µs (added over direct)" "–" "" c_add l50
        build_row "latency at $RATE req/s, p99 µs (added over direct)" "–" "" c_add l99
        build_row "idle RSS, KiB" "reported" "$(base_cmp "$(med idle $AS)" "${BENCH_BASE_IDLE_RSS_KIB:-}" KiB)" c_mmm idle
    fi
    if [ -n "${SIZES// /}" ]; then
        has_part streams && build_row "$N streams × $EV_RATE events/s: per-event delay p50 µs (added over direct)" "–" "" c_add "e50:$N"
        for n in $SIZES; do
            if [ "$n" = "$N" ] && has_part streams; then
                build_row "$n streams × $EV_RATE events/s: per-event delay p99 µs (added over direct)" "added ≤ nginx's + 0.5 ms" "$(gv e99)" c_add "e99:$n"
            else
                build_row "$n streams × $EV_RATE events/s: per-event delay p99 µs (added over direct)" "–" "" c_add "e99:$n"
            fi
        done
        for n in $SIZES; do
            if [ "$n" = "$N" ] && has_part streams; then
                build_row "$n streams: proxy CPU time per stream event, µs" "≤ 1.2× nginx" \
                    "$(gv cpuev "$(ratio_med "cpuev:$n" $AS "cpuev:$n" nginx)×")" c_vs_nginx "cpuev:$n"
            else
                build_row "$n streams: proxy CPU time per stream event, µs" "–" "" c_vs_nginx "cpuev:$n"
            fi
        done
        [ -n "${GV[series]:-}" ] && build_row "CPU per event at $SMAX streams / at $SMIN streams (ratio of medians)" "≤ 1.3×" \
            "$(gv series "$(ratio_med "cpuev:$SMAX" $AS "cpuev:$SMIN" $AS)×")" c_series
        for n in $SIZES; do
            if [ "$n" = "$N" ] && has_part streams; then
                build_row "$n streams: RSS per stream, KiB ((RSS during streams − idle) / $n)" "≤ 6 KiB" "$(gv rss)" c_mmm "perstream:$n"
            else
                build_row "$n streams: RSS per stream, KiB ((RSS during streams − idle) / $n)" "–" "" c_mmm "perstream:$n"
            fi
        done
    fi
    if has_part idle; then
        build_row "$IDLE_RATE req/s open loop, no idle connections: proxy CPU per request, µs" "–" "" c_mmm icpu0
        build_row "$IDLE_RATE req/s open loop with $IDLE idle keep-alive connections: proxy CPU per request, µs (ratio of medians to without)" "≤ 1.5× without" \
            "$(gv idlecpu "$(ratio_med icpu1 $AS icpu0 $AS)×")" c_vs_self icpu1 icpu0 without
        build_row "$IDLE_RATE req/s open loop: p99 µs without idle connections" "–" "" c_mmm ib99
        build_row "$IDLE_RATE req/s open loop with $IDLE idle connections: p99 µs (added over without)" "–" "" c_pair il99 iladd
        build_row "first request on a connection idle ≥ ${IDLE_WAIT} s ($IDLE_WAKE/s): p99 µs (added over the p99 without idle connections)" "≤ + 20 ms" \
            "$(gv wake)" c_pair iw99 iwadd
        build_row "RSS per idle keep-alive connection, KiB ((RSS with the $IDLE idle − before) / $IDLE)" "–" "" c_mmm irss
    fi
    if has_part startup; then
        build_row "start-up to first served request, ms (min / median / max of 7)" "reported" \
            "$(base_cmp "$(start_med)" "${BENCH_BASE_STARTUP_MS:-}" ms)" c_start
    fi
    build_row "binary size" "reported" "$(base_cmp "$(size_of "$BIN")" "${BENCH_BASE_SIZE:-}" B)" c_size
    if [ -n "$TLS_ROW" ]; then
        # the HTTPS row has a value for the measured binary only
        line=$(printf '%s' "$TLS_ROW" | sed 's/ |$//')
        [ "$KEYED" = 1 ] && line="$line | –"
        [ -n "$GLIBC_BIN" ] && line="$line | –"
        echo "$line | – | |"
    fi
    echo
    nmet=0; ngoals=0
    echo "Goals for $as_head, from this run (ratios are ratios of medians, \"added\" values medians of per-round differences):"
    echo
    for g in $GOALS; do
        echo "- ${GT[$g]}"
        ngoals=$((ngoals + 1)); [ "${GV[$g]}" = met ] && nmet=$((nmet + 1))
    done
    has_part throughput && echo "- idle RSS (reported): $(med idle $AS) KiB; $(base_cmp "$(med idle $AS)" "${BENCH_BASE_IDLE_RSS_KIB:-}" KiB "no base given (BENCH_BASE_IDLE_RSS_KIB)")"
    has_part startup && echo "- start-up (reported): $(start_med) ms; $(base_cmp "$(start_med)" "${BENCH_BASE_STARTUP_MS:-}" ms "no base given (BENCH_BASE_STARTUP_MS)")"
    echo "- binary size (reported): $(size_of "$BIN") B; $(base_cmp "$(size_of "$BIN")" "${BENCH_BASE_SIZE:-}" B "no base given (BENCH_BASE_SIZE)")"
    echo
    echo "$nmet of $ngoals goals met."
    echo
    echo "Notes: everything on 127.0.0.1 on one $(nproc)-core machine shared by the load generator, the upstream and the proxy$([ -n "$ON_PROXY" ] && echo " (proxy pinned to CPU 1, the rest to CPU 0)"), so compare columns, not absolute numbers."
    echo "Each cell is min / median / max over the rounds (throughput: $ROUNDS, streams: $SROUNDS, idle: $IROUNDS), the targets taking turns in a rotated order; \"added\" is per round against the same round's direct run (idle rows: against the same process's run without the idle connections); every round's own figures are in the table below."
    echo "autoswitch: $BIN$([ -n "$GLIBC_BIN" ] && echo "; glibc column: $GLIBC_BIN")."
    [ "$KEYED" = 1 ] && echo "Named-key column ($KT): the same binary and config, but the load tools' token \"bench\" is a named key instead of an api_keys entry: keys: [{name: bench-key, key: \"bench\", models: [\"bench*\"], rpm: 100000000, max_concurrent: 1000000, daily_tokens: 100000000000000}] and a usage_file, so every limit is checked (none triggers) and usage is accounted and stored; run only in $(has_part throughput && echo "the throughput part")$(has_part throughput && has_part streams && echo " and ")$(has_part streams && echo "the streams part ($N streams)") (not in the series sizes, idle, start-up or HTTPS runs: –)."
    echo "Proxy CPU = CPU time of the proxy process during the run ($CPU_SOURCE) / requests or stream events."
    if has_part throughput; then
        echo "Throughput: wrk -t1 -c$CONNS for ${SECS} s right after the latency run on the same proxy process, POST /v1/chat/completions with a small JSON body and a Bearer key."
        echo "Latency: scripts/bench/load.c, open loop at $RATE req/s over $CONNS keep-alive connections for ${SECS} s after ${WARM} s not counted; each request's latency counts from its scheduled send time."
        echo "Errors (non-200, resets, timeouts) in the throughput and latency runs, all rounds: $(for t in $cols; do e=0; for ((r = 0; r < ROUNDS; r++)); do e=$((e + ${R[lerr,$t,$r]:-0} + ${R[rerr,$t,$r]:-0})); done; printf '%s %s; ' "$t" "$e"; done | sed 's/; $//'); latency requests the load generator itself sent over 1 ms late (machine noise, still charged from their scheduled time): $(for t in $cols; do e=0; for ((r = 0; r < ROUNDS; r++)); do e=$((e + ${R[late,$t,$r]:-0})); done; printf '%s %s; ' "$t" "$e"; done | sed 's/; $//')."
    fi
    if [ -n "${SIZES// /}" ]; then
        echo "Streams (sizes $SIZES): concurrent POST stream requests opened at $OPEN_RATE/s; scripts/bench/sse.c sends a chat.completion.chunk every 50 ms on each ($EV_RATE events/s), stamped with CLOCK_MONOTONIC; delay = receive − send time, over ${SECS} s after all are open plus ${WARM} s; CPU per event over the whole run (opening included) / all events received. Streams completed / errors per round: $(for n in $SIZES; do printf '%s: ' "$n"; for t in $cols; do { [ "$t" != "$KT" ] || { [ "$n" = "$N" ] && has_part streams; }; } || continue; d=""; for ((r = 0; r < SROUNDS; r++)); do d="$d${d:+, }${R[edone:$n,$t,$r]:-?}/${R[eerr:$n,$t,$r]:-?}"; done; printf '%s %s; ' "$t" "$d"; done; done | sed 's/; $//')."
    fi
    if has_part idle; then
        echo "Idle connections (scripts/bench/load.c idle, one process): on a fresh proxy, an open loop at $IDLE_RATE req/s over $CONNS keep-alive connections for ${SECS} s after ${WARM} s (\"without\"); then $IDLE more connections opened at $IDLE_OPEN/s (at most 256 opening at once), each sends one request, reads the answer and stays open and silent; after ${IDLE_WAIT} s idle, the same open loop again (\"with\"), and during its measured ${SECS} s $IDLE_WAKE/s of the idle connections, the longest idle first, each send one more request (latency from its scheduled time). CPU per request = proxy CPU over the whole open-loop run / requests answered. RSS per idle connection = (RSS with the crowd idle − RSS before it) / connections kept. Limits set for this: nginx worker_connections $NGX_WC (worker_rlimit_nofile $NGX_NOFILE), haproxy maxconn $HA_MAXCONN$([ -n "$HA_STRICT" ] && echo " with no strict-limits (it reserves two descriptors per connection, more than the limit: it warns and runs)"), autoswitch max_connections $AS_MAXCONN; descriptor limit (ulimit -n, soft raised to hard) $NOFILE.${IDLE_NOTE:+ $IDLE_NOTE.}"
        echo "Idle crowd per round (kept idle / lost while opening: detail / closed by the target while idle / descriptors of the proxy with the crowd / errors on the open loop and wakes / seconds to open): $(for t in $TARGETS; do d=""; for ((r = 0; r < IROUNDS; r++)); do d="$d${d:+; }${R[ikept,$t,$r]:-?} / ${R[icerr,$t,$r]:-?}: ${R[icdetail,$t,$r]:-?} / ${R[icclosed,$t,$r]:-?} / ${R[ifds,$t,$r]:-–} / ${R[ierr,$t,$r]:-?} / ${R[iopen,$t,$r]:-?} s"; done; printf '%s [%s]; ' "$t" "$d"; done | sed 's/; $//')."
    fi
    if [ "${#PROBLEMS[@]}" -gt 0 ]; then
        echo "Warnings and errors the proxies logged: $(for t in $cols; do [ -n "${PROBLEMS[$t]:-}" ] && printf '%s: %s. ' "$t" "${PROBLEMS[$t]}"; done)"
    else
        echo "The proxies logged no warning or error lines."
    fi
    echo "RSS: VmRSS of the proxy process (nginx runs master_process off, so its one process is the worker; haproxy is one process); idle = just started, before any request; during streams = median of samples every 250 ms."
    echo "Logging: nginx writes an access log line per request to a file and autoswitch one to stdout (a file here); haproxy has no log target, so logs nothing."
    has_part startup && echo "Start-up: fork+exec to the first 200 answer to a proxied chat request, polled every 0.1 ms, 7 times; the direct column is the floor of that measurement on this machine: a trivial static C server (scripts/bench/sse.c) started and asked the same way."
    [ -n "$TLS_NOTE" ] && echo "$TLS_NOTE"
    echo
    echo "Per round: every target's own figure (the anchors show a noisy round), with the load average (1 min) before → after the round; (busy) marks 1 or more."
    echo
    echo "| part, round | load average | measure |$(for t in $cols; do printf ' %s |' "$t"; done)"
    echo "| --- | --- | --- |$(for t in $cols; do printf ' --- |'; done)"
    if has_part throughput; then
        for ((r = 0; r < ROUNDS; r++)); do
            pr_row throughput "$r" rps "throughput, req/s"
            pr_row throughput "$r" cpureq "proxy CPU per request, µs"
            pr_row throughput "$r" l99 "p99 at $RATE req/s, µs"
            pr_row throughput "$r" idle "idle RSS, KiB"
        done
    fi
    if [ -n "${SIZES// /}" ]; then
        for ((r = 0; r < SROUNDS; r++)); do
            for n in $SIZES; do
                pr_row streams "$r" "e99:$n" "$n streams: per-event p99, µs"
                pr_row streams "$r" "cpuev:$n" "$n streams: CPU per event, µs"
                pr_row streams "$r" "evps:$n" "$n streams: events/s received ($((n * EV_RATE)) sent)"
            done
        done
    fi
    if has_part idle; then
        for ((r = 0; r < IROUNDS; r++)); do
            pr_row idle "$r" icpu0 "CPU per request without idle, µs"
            pr_row idle "$r" icpu1 "CPU per request with $IDLE idle, µs"
            pr_row idle "$r" icpur "ratio with / without" '%.2f×'
            pr_row idle "$r" ib99 "p99 without idle, µs"
            pr_row idle "$r" il99 "p99 with idle, µs"
            pr_row idle "$r" iw99 "first request after idle: p99, µs"
            pr_row idle "$r" iwmax "first request after idle: max, µs"
        done
    fi
    echo
    echo "Load average (1 min) at the end: $LA1_END."
    warnings
} > "$TMP/table.md"

mkdir -p "$(dirname "$OUT")"
cp "$TMP/table.md" "$OUT"
cat "$TMP/table.md"
