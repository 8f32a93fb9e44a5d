#!/bin/sh
# Install the Debian packages the build and the tests need.  Idempotent:
# does nothing when everything is present.  Extra package groups:
#   deps.sh            build + the core tests
#   deps.sh test       + everything `make test` uses (node, chromium, musl,
#                        the cross compilers and qemu)
#   deps.sh static     + musl, dpkg-source and the CA bundle (make static)
#   deps.sh cross      + the aarch64/armhf cross compilers and qemu-user
#                        (make static ARCH=aarch64|armhf, static_cross.t)
#   deps.sh bench      + nginx, haproxy, wrk (scripts/bench.sh)
#   deps.sh node       + node and npm (the OpenAI SDK test)
#   deps.sh browser    + chromium, node and npm (the browser test)
#   deps.sh fuzz       + clang and its libFuzzer runtime (make fuzz)
set -eu

base="make gcc libc6-dev libbearssl-dev libyaml-dev curl python3 perl openssl gzip"
pkgs="$base"
groups=""
for g in "$@"; do
    case "$g" in
        test) groups="$groups node browser static cross" ;;
        *) groups="$groups $g" ;;
    esac
done
for group in $groups; do
    case "$group" in
        static) pkgs="$pkgs musl-tools dpkg-dev ca-certificates debian-archive-keyring" ;;
        cross)  pkgs="$pkgs gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user-static" ;;
        bench)  pkgs="$pkgs nginx-light haproxy wrk" ;;
        browser) pkgs="$pkgs chromium"
                 # Node may come from another repository (NodeSource ships npm
                 # inside its nodejs): only ask Debian for what is missing.
                 command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
                 command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm" ;;
        node)   command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
                command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm" ;;
        fuzz)   pkgs="$pkgs clang libclang-rt-14-dev llvm-14" ;;
        *) echo "deps.sh: unknown group '$group'" >&2; exit 2 ;;
    esac
done

missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "deps.sh: this machine has no apt-get; please install:$missing" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        echo "deps.sh: need root (or sudo) to install:$missing" >&2
        exit 1
    fi
fi
# Tests may call this script in parallel: one apt at a time.
if command -v flock >/dev/null 2>&1; then
    exec 9>"${TMPDIR:-/tmp}/autoswitch-deps.lock"
    flock 9
fi
echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet.
if ! $sudo apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 $missing </dev/null; then
    $sudo apt-get update </dev/null
    $sudo apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 $missing </dev/null
fi
