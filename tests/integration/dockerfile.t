#!/usr/bin/env bash
# No Docker engine runs the tests, so the image is checked by reading it:
# the Dockerfile's build stage runs only the commands static_root.t runs
# (scripts/deps.sh static, make static: static_root.t executes the very
# RUN lines parsed here), on the Debian release the sources are pinned to;
# the final stage ships what that build made, where the binary's defaults
# look for it; docker-compose.yml mounts what the reference's does.
. "$(dirname "$0")/../lib.sh"

DF=$ROOT/Dockerfile
[ -f "$DF" ] || { echo "Bail out! no Dockerfile"; exit 1; }
# Every field the checks need, read in one go: F[key]=value.
declare -A F
while IFS=$'\t' read -r k v; do F[$k]=$v; done < <(python3 - "$ROOT/tests" "$DF" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import dockerfile
with open(sys.argv[2], encoding="utf-8") as f:
    st = dockerfile.parse(f.read())
out = {"stages": len(st)}
for i, s in enumerate(st[:2]):
    ins = s["instructions"]
    out["from%d" % i] = s["from"] + (" AS " + s["name"] if s["name"] else "")
    out["runs%d" % i] = "|".join(a for k, a in ins if k == "RUN")
    out["other%d" % i] = " ".join(sorted(set(k for k, a in ins) - {"WORKDIR", "COPY", "RUN"}))
    for kw in ("WORKDIR", "COPY", "EXPOSE", "USER", "HEALTHCHECK", "ENTRYPOINT"):
        out["%s%d" % (kw.lower(), i)] = json.dumps([a for k, a in ins if k == kw])
    wd = [a for k, a in ins if k == "WORKDIR"]
    out["lastworkdir%d" % i] = wd[-1] if wd else ""
for k, v in out.items():
    print("%s\t%s" % (k, v))
PY
)
[ -n "${F[stages]:-}" ] || { echo "Bail out! the Dockerfile cannot be read"; exit 1; }

is "${F[stages]}" 2 "two stages: build, then the image"

# ---- the build stage ----
is "${F[from0]}" "debian:bookworm-slim AS build" "the build stage is debian:bookworm-slim"
suite=$(sed -n 's/^SUITE=//p' "$ROOT/scripts/vendor.sh")
is "bookworm" "$suite" "... the release scripts/vendor.sh takes the pinned sources from"
is "${F[runs0]}" "scripts/deps.sh static|make static" \
    "its RUN commands are exactly: scripts/deps.sh static, make static"
is "${F[other0]}" "" \
    "no ENV, ARG or other instruction that could make it build differently from the tests"
grep -q 'dockerfile.py" "$ROOT/Dockerfile" runs build' "$ROOT/tests/integration/static_root.t"
ok $? "static_root.t builds by running the build stage's RUN lines"
like "$(grep -E '^\s+static\)' "$ROOT/scripts/deps.sh")" 'musl-tools.*ca-certificates|ca-certificates.*musl-tools' \
    "scripts/deps.sh static installs musl-tools and the CA bundle make static compiles in"
workdir=${F[lastworkdir0]}
binpath=$(cd "$ROOT" && env -u MAKEFLAGS -u MAKELEVEL make -s --no-print-directory static-bin-path ARCH="$(uname -m)")
is "$binpath" "build-static/autoswitch" "make static writes build-static/autoswitch"

# ---- the image ----
is "${F[from1]}" "scratch" "the image is FROM scratch"
inst() { local k=${1,,}1; printf '%s' "${F[$k]}"; }
is "${F[lastworkdir1]}" "/app" "WORKDIR /app"
like "$(inst COPY)" "--from=build $workdir/$binpath /app/autoswitch" "the binary make static made goes to /app/autoswitch"
default_cfg=$(sed -n 's/^#define DEFAULT_CONFIG "\(.*\)"$/\1/p' "$ROOT/src/app/main.c")
is "$default_cfg" "conf/openai_proxy.yaml" "the binary's default config path"
like "$(inst COPY)" "conf/ /app/conf/" "conf/ goes to /app/conf: the default path resolves under WORKDIR /app"
[ -f "$ROOT/$default_cfg" ]
ok $? "... and $default_cfg exists to be copied"
unlike "$(inst COPY)" 'ca-certificates|/etc/ssl' "no CA file copied: the bundle is compiled in (make static's default)"
default_port=$(sed -n 's/^#define DEFAULT_PORT \([0-9]*\)$/\1/p' "$ROOT/src/app/main.c")
is "$(inst EXPOSE)" "[\"$default_port\"]" "EXPOSE $default_port, the default port"
like "$(inst USER)" '^\["[1-9][0-9]*(:[0-9]+)?"\]$' "a non-root USER by number (scratch has no /etc/passwd)"
like "$(inst HEALTHCHECK)" 'CMD \[\\?"/app/autoswitch\\?", \\?"--probe\\?"\]' "HEALTHCHECK runs /app/autoswitch --probe"
like "$(inst ENTRYPOINT)" '^\["\[\\"/app/autoswitch\\"\]"\]$' "ENTRYPOINT is the binary, exec form"
grep -q '"probe", no_argument' "$ROOT/src/app/main.c"
ok $? "the binary has --probe"

# ---- .dockerignore: the image builds from sources, not from host objects ----
di=$(cat "$ROOT/.dockerignore" 2>/dev/null)
for p in build 'build-\*' 'vendor/\*' '!vendor/SHA256SUMS'; do
    like "$di" "(^|$(printf '\n'))$p($(printf '\n')|$)" ".dockerignore: $p"
done

# ---- docker-compose.yml: the reference's port, volumes and variables ----
DC=$ROOT/docker-compose.yml
dc=$(cat "$DC" 2>/dev/null)
like "$dc" '"20261:\$\{PORT:-3000\}"|"?20261:3000"?' "compose: host port 20261 to the container's 3000"
like "$dc" '\./runtime:/app/runtime' "compose: ./runtime at /app/runtime (the reference's volume)"
like "$dc" ":/app/$default_cfg" "compose: the config mounted at the default path /app/$default_cfg"
like "$dc" 'TZ=' "compose: TZ"
like "$dc" 'PORT=\$\{PORT:-3000\}' "compose: PORT"
like "$dc" 'build: \.' "compose: builds this Dockerfile"

done_testing
