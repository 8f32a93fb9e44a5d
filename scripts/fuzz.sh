#!/bin/bash
# Build the libFuzzer targets of tests/fuzz/ and run each for SECONDS.
#
#   scripts/fuzz.sh [SECONDS]        default 30 seconds per target
#
# Environment (all optional):
#   FUZZ_TARGETS   the targets to build and run (default: all of them)
#   FUZZ_JOBS      targets fuzzed at the same time (default: CPU count)
#   FUZZ_CC        compiler (default: clang; needs its libFuzzer runtime)
#
# For every target: the committed regression inputs of
# tests/fuzz/<target>/regressions/ run first as a plain test, then the
# fuzzer runs with the committed seeds of tests/fuzz/<target>/ and a
# scratch corpus build-fuzz/corpus/<target>/ (kept between runs, not
# committed), the dictionary tests/fuzz/<target>.dict, -timeout=10 and
# -rss_limit_mb=2048.  Full logs: build-fuzz/logs/.  Findings are written
# to build-fuzz/artifacts/<target>/.  Exit status 1 when any target
# crashed, leaked, timed out or ran out of memory; 0 otherwise.
set -eu

secs=${1:-30}
case $secs in
    '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
exec </dev/null

all_targets="fuzz_http_request fuzz_http_response fuzz_json fuzz_sse fuzz_multipart fuzz_config fuzz_dns fuzz_pem fuzz_usage fuzz_attempt fuzz_gunzip"
targets=${FUZZ_TARGETS:-$all_targets}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
cc=${FUZZ_CC:-clang}
B=build-fuzz
for t in $targets; do
    case " $all_targets " in
        *" $t "*) ;;
        *) echo "fuzz.sh: unknown target '$t' (targets: $all_targets)" >&2; exit 2 ;;
    esac
done

# Project sources each target links (compiled with the fuzz flags).
srcs_of() {
    case $1 in
        fuzz_http_request | fuzz_http_response) echo "http_parse" ;;
        fuzz_json) echo "json rewrite buf" ;;
        fuzz_sse) echo "sse event json util buf" ;;
        fuzz_multipart) echo "multipart util buf" ;;
        fuzz_config) echo "config config_url netaddr util buf" ;;
        fuzz_dns) echo "dns loop coldsig log util buf" ;;
        fuzz_pem) echo "tls buf log loop coldsig util" ;;
        fuzz_usage) echo "usage json buf" ;;
        fuzz_gunzip) echo "gunzip" ;;
        fuzz_attempt) echo "attempt attempt_stream event sse json rewrite apierr http_parse util buf" ;;
        *) echo "fuzz.sh: unknown target '$1'" >&2; exit 2 ;;
    esac
}

# Longest input the fuzzer makes, per target.
max_len_of() {
    case $1 in
        fuzz_http_request | fuzz_http_response) echo 32768 ;;  # 16 KiB heads, 16 KiB trailers
        fuzz_json) echo 65536 ;;
        fuzz_sse) echo 16384 ;;                                 # long lines come from the filler flag
        fuzz_multipart) echo 16384 ;;                           # part headers are bounded at 8 KiB
        fuzz_config) echo 65536 ;;
        fuzz_dns) echo 4400 ;;                                  # DNS_RECV_MAX + name and selectors
        fuzz_pem) echo 32768 ;;
        fuzz_usage) echo 65536 ;;
        fuzz_gunzip) echo 16384 ;;
        fuzz_attempt) echo 8192 ;;                              # operations; fillers make the long bodies
    esac
}

"$root/scripts/deps.sh" fuzz

mkdir -p "$B/obj" "$B/gen" "$B/logs"

SAN=('-fsanitize=fuzzer,address,undefined' -fno-sanitize-recover=all)
CFLAGS=(-std=c11 -g -O1 -fno-omit-frame-pointer -Wall -Wextra "${SAN[@]}")
CPPFLAGS=(-D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L '-DAUTOSWITCH_VERSION="fuzz"' -Isrc/base -Isrc/formats -Isrc/transport -Isrc/policy "-I$B/gen" -Itests/fuzz)
LIBS=(-lbearssl -lyaml)

# The libFuzzer runtime must be there (Debian: libclang-rt-14-dev).
if [ ! -x "$B/.probe" ] || [ "$(command -v "$cc")" -nt "$B/.probe" ]; then
    printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' > "$B/.probe.c"
    if ! "$cc" "${SAN[@]}" -o "$B/.probe" "$B/.probe.c" > "$B/logs/probe.log" 2>&1; then
        echo "fuzz.sh: $cc cannot link -fsanitize=fuzzer (libFuzzer runtime missing?)" >&2
        echo "fuzz.sh: on Debian 12 it is libclang_rt.fuzzer-x86_64.a from libclang-rt-14-dev" >&2
        sed 's/^/  /' "$B/logs/probe.log" | head -5 >&2
        exit 2
    fi
fi

# Rebuild everything when the flags or the compiler change.
stamp="$cc|$("$cc" --version 2>/dev/null | head -1)|${CFLAGS[*]}|${CPPFLAGS[*]}|${LIBS[*]}"
if [ "$(cat "$B/.flags" 2>/dev/null)" != "$stamp" ]; then
    rm -f "$B"/obj/*.o
    for t in $all_targets; do rm -f "$B/$t"; done
    printf '%s' "$stamp" > "$B/.flags"
fi

start=$(date +%s)
newest_header=src/formats/http_parse.h
for h in src/*/*.h; do [ "$h" -nt "$newest_header" ] && newest_header=$h; done

# The source file of a module: src/<layer>/<module>.c
src_of() {
    local f
    for f in src/*/"$1".c; do echo "$f"; return; done
}

# --- compile: objects of project sources, then the targets -----------
compile_obj() {
    "$cc" "${CPPFLAGS[@]}" "${CFLAGS[@]}" -c -o "$B/obj/$1.o" "$(src_of "$1")"
}

link_target() {
    local objs=() s
    for s in $(srcs_of "$1"); do objs+=("$B/obj/$s.o"); done
    "$cc" "${CPPFLAGS[@]}" "${CFLAGS[@]}" -o "$B/$1" "tests/fuzz/$1.c" "${objs[@]}" "${LIBS[@]}"
}

# Wait for the background builds "pid:name"...; show the log of a failure.
wait_builds() {
    local status=0 p
    for p in "$@"; do
        if ! wait "${p%%:*}"; then
            status=1
            echo "fuzz.sh: building ${p#*:} failed:" >&2
            sed 's/^/  /' "$B/logs/build.${p#*:}.log" | head -30 >&2
        fi
    done
    return $status
}

need_srcs=""
for t in $targets; do
    for s in $(srcs_of "$t"); do
        case " $need_srcs " in *" $s "*) ;; *) need_srcs="$need_srcs $s" ;; esac
    done
done

pids=""
for s in $need_srcs; do
    o="$B/obj/$s.o"
    if [ ! -e "$o" ] || [ "$(src_of "$s")" -nt "$o" ] || [ "$newest_header" -nt "$o" ]; then
        compile_obj "$s" > "$B/logs/build.$s.log" 2>&1 &
        pids="$pids $!:$s"
    fi
done
# shellcheck disable=SC2086
wait_builds $pids || exit 2

pids=""
for t in $targets; do
    rebuild=0
    [ -e "$B/$t" ] || rebuild=1
    for f in "tests/fuzz/$t.c" tests/fuzz/*.h; do
        [ "$f" -nt "$B/$t" ] && rebuild=1
    done
    for s in $(srcs_of "$t"); do
        [ "$B/obj/$s.o" -nt "$B/$t" ] && rebuild=1
    done
    if [ $rebuild = 1 ]; then
        link_target "$t" > "$B/logs/build.$t.log" 2>&1 &
        pids="$pids $!:$t"
    fi
done
# shellcheck disable=SC2086
wait_builds $pids || exit 2
built=$(date +%s)
echo "fuzz: built $(echo "$targets" | wc -w) targets in $((built - start))s; ${secs}s each, $jobs at a time"

# --- run --------------------------------------------------------------
symbolizer=$(command -v llvm-symbolizer || command -v llvm-symbolizer-14 || true)
fuzz_env() {
    env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/nonexistent LANG=C LC_ALL=C \
        FUZZ_API_KEY=sk-fuzz-0123456789 FUZZ_EMPTY= \
        ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:handle_abort=1:symbolize=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ${symbolizer:+ASAN_SYMBOLIZER_PATH=$symbolizer} "$@"
}

common_opts="-timeout=10 -rss_limit_mb=2048"

# One target: regressions, then fuzzing.  Writes logs/<t>.{regress,fuzz}.log
# and logs/<t>.result ("ok ..." or "FAIL <reproducer>").
run_target() {
    local t=$1 art="$B/artifacts/$1" reg="tests/fuzz/$1/regressions"
    local rlog="$B/logs/$t.regress.log" flog="$B/logs/$t.fuzz.log" res="$B/logs/$t.result"
    mkdir -p "$art" "$B/corpus/$t"
    rm -f "$rlog" "$flog"
    local nreg=0
    if [ -d "$reg" ]; then
        local files
        files=$(find "$reg" -type f ! -name '.*' | LC_ALL=C sort)
        if [ -n "$files" ]; then
            nreg=$(printf '%s\n' "$files" | wc -l)
            # shellcheck disable=SC2086
            if ! fuzz_env "$B/$t" $common_opts -artifact_prefix="$art/" $files > "$rlog" 2>&1; then
                local which
                which=$(sed -n 's/^Running: //p' "$rlog" | tail -1)
                echo "FAIL regression ${which:-$reg} $rlog" > "$res"
                return
            fi
        fi
    fi
    local dict=""
    [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
    local seeds=""
    [ -d "tests/fuzz/$t" ] && seeds="tests/fuzz/$t"
    # shellcheck disable=SC2086
    if fuzz_env "$B/$t" $common_opts -max_len="$(max_len_of "$t")" -max_total_time="$secs" \
        -print_final_stats=1 -artifact_prefix="$art/" $dict "$B/corpus/$t" $seeds > "$flog" 2>&1; then
        local cov execs corp
        cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$flog" | tail -1)
        corp=$(grep -o 'corp: [0-9]*' "$flog" | tail -1)
        execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$flog" | tail -1)
        echo "ok regressions=$nreg ${cov:-cov: ?} ${corp:-corp: ?} exec/s: ${execs:-?}" > "$res"
    else
        local repro
        repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$flog" | tail -1)
        echo "FAIL fuzzing ${repro:-?} $flog" > "$res"
    fi
}

running=0
for t in $targets; do
    rm -f "$B/logs/$t.result"
    run_target "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true

# --- report -----------------------------------------------------------
failed=0
for t in $targets; do
    res=$(cat "$B/logs/$t.result" 2>/dev/null || echo "FAIL internal - -")
    case $res in
        ok*)
            printf 'fuzz: %-19s %s\n' "$t" "${res#ok }"
            ;;
        *)
            failed=1
            # shellcheck disable=SC2086
            set -- $res
            kind=$2 repro=$3 log=$4
            printf 'fuzz: %-19s FAILED (%s)  reproducer: %s\n' "$t" "$kind" "$repro"
            printf '      rerun: %s/%s %s   log: %s\n' "$B" "$t" "$repro" "$log"
            # The first lines of the report: sanitizer, libFuzzer or our checks.
            grep -m1 -A7 -E '^==[0-9]+==(ERROR|WARNING)|runtime error:|FUZZ_CHECK failed|ERROR: libFuzzer|ALARM: working|out-of-memory' \
                "$log" 2>/dev/null | grep -v '^ *$' | head -10 | sed 's/^/      | /'
            ;;
    esac
done
end=$(date +%s)
if [ $failed = 0 ]; then
    echo "fuzz: no finding ($((end - start))s in all)"
else
    echo "fuzz: FAILED, see above; a new reproducer belongs in tests/fuzz/<target>/regressions/ ($((end - start))s in all)"
fi
exit $failed
