#!/usr/bin/env bash
# The router builds: make static ARCH=aarch64 and ARCH=armhf (Debian's
# cross gcc with Debian's musl-dev for the target, BearSSL and libyaml from
# the pinned sources), each run under qemu-user (called explicitly: binfmt
# need not be registered) for a smoke test: start, /healthz, /v1/models,
# one proxied request to a mock upstream on loopback, --probe, SIGTERM.
# The first run installs the cross toolchains and builds (a few minutes);
# build-static-ARCH/ keeps the builds for the next.
. "$(dirname "$0")/../lib.sh"

sanitized && skip_all "the static binaries are no sanitizer builds (make test runs this)"
[ "$(uname -s)" = Linux ] || skip_all "Linux only"
[ "$(uname -m)" = x86_64 ] || skip_all "cross builds are tested from an x86_64 machine"

static_prerequisites "the cross toolchains or qemu-user" "static cross" \
    bearssl libyaml musl-aarch64 musl-armhf

start_mock A || exit 1
PA=$(mock_port A)
cat > "$TMP/cfg.yaml" <<Y
api_keys: ["ck"]
max_retries: 1
providers:
  - name: pa
    base_url: http://127.0.0.1:$PA
    model_mappings: [{upstream: m-a, alias: ok}]
Y

mk() { (cd "$ROOT" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make "$@"); }

for arch in aarch64 armhf; do
    case $arch in
        aarch64) qemu=qemu-aarch64-static machine=AArch64 ;;
        armhf)   qemu=qemu-arm-static machine=ARM ;;
    esac
    t0=$SECONDS
    if ! MAKEFLAGS="-j$(nproc)" mk static ARCH=$arch >"$TMP/build-$arch.log" 2>&1; then
        tail -40 "$TMP/build-$arch.log" | sed 's/^/#   /'
        ok 1 "make static ARCH=$arch"
        continue
    fi
    ok 0 "make static ARCH=$arch ($((SECONDS - t0)) s)"
    XBIN=$ROOT/$(mk -s --no-print-directory static-bin-path ARCH=$arch)
    elf=$(readelf -hl "$XBIN" 2>&1)
    like "$elf" "Machine: +$machine" "$arch: an $machine executable"
    unlike "$elf" 'INTERP|Requesting program interpreter' "$arch: statically linked"
    [ $arch = armhf ] && like "$elf" 'hard-float ABI' "armhf: hard-float ABI"
    echo "# $arch: $(stat -c %s "$XBIN") bytes"

    if ! command -v $qemu >/dev/null 2>&1; then
        skip_one "$arch smoke test: $qemu is not installed"
        continue
    fi
    v=$($qemu "$XBIN" --version 2>&1)
    if ! printf '%s' "$v" | grep -q '^autoswitch '; then
        skip_one "$arch smoke test: $qemu cannot run programs here ($v)"
        continue
    fi
    printf '#!/bin/sh\nexec %s %s "$@"\n' "$qemu" "$XBIN" > "$TMP/run-$arch"
    chmod +x "$TMP/run-$arch"
    BIN=$TMP/run-$arch
    if ! start_gateway "$TMP/cfg.yaml"; then
        ok 1 "$arch: the gateway starts under $qemu"
        continue
    fi
    is "$(curl -s "$GW_URL/healthz")" '{"status":"ok"}' "$arch under qemu: /healthz"
    models=$(curl -s -H "Authorization: Bearer ck" "$GW_URL/v1/models")
    is "$(jget "$models" '",".join(m["id"] for m in j["data"])')" "ok" "$arch under qemu: /v1/models"
    body=$(curl -s -D "$TMP/h" -H "Authorization: Bearer ck" "$GW_URL/v1/chat/completions" \
        -d '{"model":"ok","messages":[{"role":"user","content":"hi"}]}')
    is "$(head -1 "$TMP/h" | awk '{print $2}') $(jget "$body" 'j["choices"][0]["message"]["content"]')/$(jget "$body" 'j["model"]')" \
        "200 hello from A/ok" "$arch under qemu: a proxied request"
    ok $("$BIN" --probe -p "$GW_PORT" >/dev/null 2>&1; echo $?) "$arch under qemu: --probe"
    stop_gateway
done
done_testing
