#!/bin/sh
# Fetch the pinned Debian packages the static builds use, check them
# against vendor/SHA256SUMS and unpack them under vendor/<name>/.
#
#   scripts/vendor.sh [NAME...]          default: bearssl libyaml
#   scripts/vendor.sh --print-sums NAME...
#        download without checking and print SHA256SUMS lines (after a pin change)
#
#   NAME          what                                    from
#   bearssl       BearSSL source, Debian patches applied  source package bearssl 0.6+dfsg.1-3
#   libyaml       libyaml source, Debian patches applied  source package libyaml 0.2.5-1
#   musl-aarch64  musl libc.a, crt files, headers, specs  musl-dev 1.2.3-1 arm64 (.deb)
#   musl-armhf    the same for armhf                      musl-dev 1.2.3-1 armhf (.deb)
#
# Everything comes from Debian's bookworm archive through apt, with a
# private apt state in vendor/.apt (its own source entries, deb-src or a
# foreign architecture, and its own package lists): the machine's apt
# configuration is neither required to have deb-src nor changed, and no
# root is needed.  apt authenticates each file through the archive's
# signed index; vendor/SHA256SUMS (committed) pins the exact bytes on top.
# Downloads stay in vendor/dl/, so a re-run needs no network.  Nothing
# under vendor/*/ is committed (.gitignore).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENDOR=${VENDOR_DIR:-$ROOT/vendor}
SUMS=$ROOT/vendor/SHA256SUMS
SUITE=bookworm
DL=$VENDOR/dl
APTDIR=$VENDOR/.apt

# NAME -> kind (src: source package, deb: binary package), package, version, arch
pin() {
    case "$1" in
        bearssl)      echo "src bearssl 0.6+dfsg.1-3 -" ;;
        libyaml)      echo "src libyaml 0.2.5-1 -" ;;
        musl-aarch64) echo "deb musl-dev 1.2.3-1 arm64" ;;
        musl-armhf)   echo "deb musl-dev 1.2.3-1 armhf" ;;
        *) return 1 ;;
    esac
}

archtag() { [ "$1" = - ] || printf ' %s' "$1"; }

die() {
    echo "vendor.sh: $*" >&2
    exit 1
}

# A download that cannot be made (no network, no mirror): exit status 3,
# so that a test can tell "cannot be had here" from a wrong checksum.
die_fetch() {
    echo "vendor.sh: $*" >&2
    exit 3
}

# The files of a pin, as they are named in SHA256SUMS.
files_of() {  # files_of KIND PKG VERSION ARCH
    if [ "$1" = src ]; then
        awk -v dsc="${2}_$3.dsc" -v orig="${2}_${3%-*}.orig" -v deb="${2}_$3.debian.tar" '
            NF == 2 && length($1) == 64 && ($2 == dsc || index($2, orig) == 1 || index($2, deb) == 1)' "$SUMS"
    else
        awk -v f="${2}_${3}_$4.deb" 'NF == 2 && length($1) == 64 && $2 == f' "$SUMS"
    fi
}

# The machine's Debian mirror and archive keyring (deb822 or one-line
# sources); VENDOR_MIRROR overrides the mirror.
find_mirror() {
    mirror=${VENDOR_MIRROR:-}
    keyring=""
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        set -- $(awk '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && uris ~ /debian/ && uris !~ /security/) {
                    split(uris, u, " "); print u[1], (key == "" ? "-" : key); exit
                }
                types = uris = key = ""
            }
            /^[ \t]*$/ { flush(); next }
            /^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
            /^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
            /^Signed-By:/ { sub(/^Signed-By:[ \t]*/, ""); key = $0 }
            END { flush() }' "$f")
        if [ $# -ge 1 ]; then
            [ -z "$mirror" ] && mirror=$1
            [ "${2:--}" != - ] && [ -f "$2" ] && keyring=$2
            break
        fi
    done
    if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
        mirror=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\// && $i ~ /debian/ && $i !~ /security/) { print $i; exit } }' /etc/apt/sources.list)
    fi
    [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
    if [ -z "$keyring" ]; then
        for k in /usr/share/keyrings/debian-archive-keyring.gpg /etc/apt/trusted.gpg.d/debian-archive-$SUITE-stable.gpg; do
            [ -f "$k" ] && { keyring=$k; break; }
        done
    fi
    [ -n "$keyring" ] || die "no Debian archive keyring (install debian-archive-keyring) to authenticate $mirror"
}

apt_key() { if [ "$2" = - ]; then echo "$1"; else echo "$1-$2"; fi; }

apt_private() {  # apt_private KIND ARCH apt-get-args...
    d=$APTDIR/$(apt_key "$1" "$2")
    arch_opts=""
    [ "$2" != - ] && arch_opts="-o APT::Architecture=$2 -o APT::Architectures::=$2"
    shift 2
    apt-get -q -o Dir::Etc::SourceList="$d/empty.list" -o Dir::Etc::SourceParts="$d/sources.list.d" \
        -o Dir::Etc::Preferences="$d/empty.pref" -o Dir::Etc::PreferencesParts="$d/empty" \
        -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" \
        -o Acquire::Languages=none -o Debug::NoLocking=true $arch_opts "$@" </dev/null
}

# One private apt state per kind and architecture, its index read once
# per run.
ready=""
apt_setup() {  # apt_setup KIND ARCH
    key=$(apt_key "$1" "$2")
    case " $ready " in *" $key "*) return 0 ;; esac
    command -v apt-get >/dev/null 2>&1 ||
        die_fetch "apt-get is needed to download the Debian packages (or put the files vendor/SHA256SUMS names in $DL)"
    find_mirror
    d=$APTDIR/$key
    mkdir -p "$d/sources.list.d" "$d/empty" "$d/lists/partial" "$d/cache/archives/partial"
    : > "$d/empty.list"
    : > "$d/empty.pref"
    if [ "$1" = src ]; then
        printf 'Types: deb-src\n' > "$d/sources.list.d/autoswitch.sources"
    else
        printf 'Types: deb\nArchitectures: %s\n' "$2" > "$d/sources.list.d/autoswitch.sources"
    fi
    printf 'URIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' "$mirror" "$SUITE" "$keyring" \
        >> "$d/sources.list.d/autoswitch.sources"
    echo "vendor.sh: reading the $SUITE index ($key) from $mirror" >&2
    if ! apt_private "$1" "$2" update >"$d/update.log" 2>&1 || grep -q '^\(E:\|W: Failed\)' "$d/update.log"; then
        sed 's/^/  /' "$d/update.log" >&2
        die_fetch "cannot download Debian's package index from $mirror (network? VENDOR_MIRROR=another Debian mirror)"
    fi
    ready="$ready $key"
}

download() {  # download KIND PKG VERSION ARCH (into $DL)
    apt_setup "$1" "$4"
    mkdir -p "$DL"
    log=$APTDIR/$(apt_key "$1" "$4")/download.log
    echo "vendor.sh: downloading $2 $3$(archtag "$4")" >&2
    if [ "$1" = src ]; then
        (cd "$DL" && apt_private src - source --download-only "$2=$3") >"$log" 2>&1 || fail=1
    else
        (cd "$DL" && apt_private deb "$4" download "$2:$4=$3") >"$log" 2>&1 || fail=1
    fi
    if [ "${fail:-0}" = 1 ]; then
        sed 's/^/  /' "$log" >&2
        die_fetch "cannot download the Debian package $2 $3$(archtag "$4") (network? is the pin still in $SUITE?)"
    fi
}

files_ok() {  # files_ok SUMLINES: every file present with the right hash
    [ -n "$1" ] || return 1
    printf '%s\n' "$1" | (cd "$DL" 2>/dev/null && sha256sum -c --quiet --status -) 2>/dev/null
}

fetch_one() {  # fetch_one NAME
    set -- "$1" $(pin "$1") || die "unknown name '$1' (known: bearssl libyaml musl-aarch64 musl-armhf)"
    name=$1 kind=$2 pkg=$3 ver=$4 arch=$5
    lines=$(files_of "$kind" "$pkg" "$ver" "$arch")
    [ -n "$lines" ] || die "vendor/SHA256SUMS has no entry for $pkg $ver (scripts/vendor.sh --print-sums $name)"
    stamp=$(printf '%s\n' "$lines" | sha256sum | cut -c1-64)
    if [ -f "$VENDOR/$name/.vendored" ] && [ "$(cat "$VENDOR/$name/.vendored")" = "$stamp" ]; then
        return 0
    fi
    files_ok "$lines" || download "$kind" "$pkg" "$ver" "$arch"
    bad=$(printf '%s\n' "$lines" | (cd "$DL" && sha256sum -c - 2>/dev/null) | grep -v ': OK$' || true)
    if [ -n "$bad" ]; then
        printf '%s\n' "$bad" | sed 's/^/  /' >&2
        die "checksum mismatch for $pkg $ver$(archtag "$arch") against vendor/SHA256SUMS: not the pinned bytes (delete those files from $DL to download again)"
    fi
    # Unpack in a scratch directory (dpkg-source leaves links to the
    # tarballs next to the tree) and move into place when complete.
    tmp=$VENDOR/.unpack-$name
    rm -rf "$tmp" "$VENDOR/$name"
    mkdir -p "$tmp"
    if [ "$kind" = src ]; then
        command -v dpkg-source >/dev/null 2>&1 ||
            die "dpkg-source is needed to unpack $pkg (scripts/deps.sh static installs dpkg-dev)"
        # Every file was checked above, so dpkg-source need not look for a
        # signature; it applies Debian's patches.
        dpkg-source --no-check -x "$DL/${pkg}_$ver.dsc" "$tmp/tree" >"$tmp/log" 2>&1 || unpack_failed=1
    else
        dpkg-deb -x "$DL/${pkg}_${ver}_$arch.deb" "$tmp/tree" >"$tmp/log" 2>&1 || unpack_failed=1
    fi
    if [ "${unpack_failed:-0}" = 1 ]; then
        sed 's/^/  /' "$tmp/log" >&2
        rm -rf "$tmp"
        die "cannot unpack $pkg $ver$(archtag "$arch")"
    fi
    printf '%s\n' "$stamp" > "$tmp/tree/.vendored"
    mv "$tmp/tree" "$VENDOR/$name"
    rm -rf "$tmp"
    echo "vendor.sh: vendor/$name: $pkg $ver$(archtag "$arch")" >&2
}

print_sums() {
    for n in "$@"; do
        set -- $(pin "$n") || die "unknown name '$n'"
        download "$@"
        if [ "$1" = src ]; then
            (cd "$DL" && sha256sum "${2}_$3.dsc" "${2}_${3%-*}".orig* "${2}_$3".debian.tar*)
        else
            (cd "$DL" && sha256sum "${2}_${3}_$4.deb")
        fi
    done
}

mkdir -p "$VENDOR" "$DL"
if [ "${1:-}" = --print-sums ]; then
    shift
    print_sums "$@"
    exit 0
fi
[ $# -gt 0 ] || set -- bearssl libyaml
for n in "$@"; do
    pin "$n" >/dev/null || die "unknown name '$n' (known: bearssl libyaml musl-aarch64 musl-armhf)"
done
# Parallel builds and tests share vendor/: one at a time.
if [ -z "${VENDOR_LOCKED:-}" ] && command -v flock >/dev/null 2>&1; then
    VENDOR_LOCKED=1 exec flock "$DL/.lock" "$0" "$@"
fi
for n in "$@"; do
    fetch_one "$n"
done
