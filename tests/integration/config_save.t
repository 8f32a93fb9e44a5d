#!/usr/bin/env bash
# Saving the config through the admin API when the disk is "full": the
# gateway runs under a file size limit (ulimit -f) smaller than the config,
# so every write of it fails with EFBIG, as on a full disk (the gateway
# ignores SIGXFSZ; its own log stays far below the limit).  The save must
# answer 500 naming the error, leave the config and the old .bak
# byte-identical with no temp file behind, and the gateway must go on
# serving the old config.  Then the limit is lifted (prlimit) and the same
# save succeeds, keeping the previous file as .bak.
#
# The second half is the container case: the config bind-mounted on its
# own into a read-only directory (in a private mount namespace), so it can
# only be rewritten in place; a full disk must still change nothing.
. "$(dirname "$0")/../lib.sh"

LIMIT_KB=64             # ulimit -S -f of the gateway (bash: KiB)
PAD_LINES=1500          # comment lines that make the config ~100 KiB

start_mock A || exit 1
PA=$(mock_port A)

# write_config FILE: a valid config larger than the limit.
write_config() {
    {
        cat <<Y
api_keys:
  - "ck"
admin_key: "adm"
providers:
  - name: pa
    base_url: "http://127.0.0.1:$PA"
    api_key: "sk-test-key-0123456789"
    weight: 1
    model_mappings:
      - {upstream: m1, alias: m}
Y
        for i in $(seq "$PAD_LINES"); do
            printf '# padding line %05d: this comment only makes the file larger than the limit\n' "$i"
        done
    } >"$1"
}

# limited_wrapper FILE [PREFIX...]: a script that runs the gateway (after
# PREFIX, e.g. a namespace helper) under the file size limit.  exec keeps
# the pid, so start_gateway's GW_PID is the gateway's.
limited_wrapper() {
    local out=$1
    shift
    {
        echo '#!/usr/bin/env bash'
        echo "ulimit -S -f $LIMIT_KB   # soft: prlimit may lift it later"
        printf 'exec'
        printf ' %q' "$@" "$BIN"
        echo ' "$@"'
    } >"$out"
    chmod +x "$out"
}

temps_in() { find "$1" -maxdepth 1 -name '*.tmp*' | wc -l; }

ADM=(-H "X-API-Key: adm")
REAL_BIN=$BIN

# ---------------- a plain directory ----------------
mkdir "$TMP/conf"
CFG=$TMP/conf/cfg.yaml
write_config "$CFG"
printf 'the previous backup, not to be touched\n' >"$CFG.bak"
cp "$CFG" "$TMP/orig.yaml"
cp "$CFG.bak" "$TMP/orig.bak"
(($(stat -c %s "$CFG") > LIMIT_KB * 1024)) || { echo "Bail out! the config is not larger than the limit"; exit 1; }

limited_wrapper "$TMP/limited"
BIN=$TMP/limited
start_gateway "$CFG" || { echo "Bail out! gateway did not start"; exit 1; }
BIN=$REAL_BIN

body=$(curl -s "${ADM[@]}" "$GW_URL/api/admin/config")
is "$(jget "$body" 'j["data"]["providers"][0]["weight"]')" 1 "the admin API shows the config"
edit=$(jedit "$body" 'j=j["data"]; j["providers"][0]["weight"]=5')
resp=$(curl -s -w '\n%{http_code}' "${ADM[@]}" "$GW_URL/api/admin/config" -d "$edit")
like "$resp" '500$' "a save on a full disk: 500"
printf '#   the answer: %s\n' "$(head -1 <<<"$resp")"
like "$resp" 'cannot write [^ ]*/conf/cfg\.yaml\.(bak\.)?tmp[^ ]*: File too large' "... naming the error and the file"
check "... the config is byte-identical" -- cmp "$CFG" "$TMP/orig.yaml"
check "... the old .bak is byte-identical" -- cmp "$CFG.bak" "$TMP/orig.bak"
is "$(temps_in "$TMP/conf")" 0 "... no temp file left behind"
check "the gateway is still running" -- kill -0 "$GW_PID"
is "$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL/healthz")" 200 "... and answering"
body=$(curl -s "${ADM[@]}" "$GW_URL/api/admin/config")
is "$(jget "$body" 'j["data"]["providers"][0]["weight"]')" 1 "... with the old config"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ck" "$GW_URL/v1/chat/completions" \
    -d '{"model":"m","messages":[{"role":"user","content":"x"}]}')
is "$code" 200 "... which still routes requests"
like "$(cat "$GW_LOG")" 'config save refused: cannot write' "the refusal is logged"

if command -v prlimit >/dev/null && prlimit --pid "$GW_PID" --fsize=unlimited 2>/dev/null; then
    resp=$(curl -s -w '\n%{http_code}' "${ADM[@]}" "$GW_URL/api/admin/config" -d "$edit")
    like "$resp" '200$' "with space again, the same save succeeds"
    like "$(cat "$CFG")" 'weight: 5' "... the config holds the new weight"
    check "... the previous config is the .bak" -- cmp "$CFG.bak" "$TMP/orig.yaml"
    is "$(temps_in "$TMP/conf")" 0 "... no temp file left behind"
else
    skip_one "prlimit cannot lift the gateway's file size limit here"
fi
stop_gateway

# ---------------- bind-mounted alone into a read-only directory ----------------
# As Docker does with ./conf/openai_proxy.yaml: the directory cannot take
# a temp file or a .bak, the file cannot be renamed over.
NS=()
if [ "$(id -u)" = 0 ]; then
    NS=(unshare --mount --propagation private)
else
    NS=(unshare --user --map-root-user --mount --propagation private)
fi
if ! "${NS[@]}" true 2>/dev/null; then
    skip_one "no private mount namespace here (${NS[*]} fails): the bind-mount case is not run"
    done_testing
fi
mkdir "$TMP/host" "$TMP/ctr"
HOSTCFG=$TMP/host/cfg.yaml
write_config "$HOSTCFG"
cp "$HOSTCFG" "$TMP/orig2.yaml"
: >"$TMP/ctr/cfg.yaml"
printf 'a backup from before\n' >"$TMP/ctr/cfg.yaml.bak"
cat >"$TMP/mounts" <<'S'
#!/bin/sh
# mounts HOSTFILE DIR PROGRAM...: DIR read-only, HOSTFILE bound writable on DIR/cfg.yaml.
set -e
host=$1 dir=$2
shift 2
mount --bind "$dir" "$dir"
mount -o remount,bind,ro "$dir"
mount --bind "$host" "$dir/cfg.yaml"
exec "$@"
S
chmod +x "$TMP/mounts"
limited_wrapper "$TMP/limited2" "${NS[@]}" "$TMP/mounts" "$HOSTCFG" "$TMP/ctr"
BIN=$TMP/limited2
start_gateway "$TMP/ctr/cfg.yaml" || { echo "Bail out! gateway did not start in its mount namespace"; exit 1; }
BIN=$REAL_BIN

body=$(curl -s "${ADM[@]}" "$GW_URL/api/admin/config")
edit=$(jedit "$body" 'j=j["data"]; j["providers"][0]["weight"]=7')
resp=$(curl -s -w '\n%{http_code}' "${ADM[@]}" "$GW_URL/api/admin/config" -d "$edit")
like "$resp" '500$' "bind-mounted config, full disk: 500"
printf '#   the answer: %s\n' "$(head -1 <<<"$resp")"
like "$resp" 'cannot reserve [0-9]+ bytes for [^ ]*/ctr/cfg\.yaml: File too large' "... the space reservation fails"
like "$resp" 'not writable' "... and the answer says the directory was not writable"
check "... the config is byte-identical" -- cmp "$HOSTCFG" "$TMP/orig2.yaml"
is "$(cat "$TMP/ctr/cfg.yaml.bak")" "a backup from before" "... the old .bak is byte-identical"
is "$(temps_in "$TMP/ctr")$(temps_in "$TMP/host")" 00 "... no temp file left behind"
body=$(curl -s "${ADM[@]}" "$GW_URL/api/admin/config")
is "$(jget "$body" 'j["data"]["providers"][0]["weight"]')" 1 "... the gateway runs on with the old config"

if command -v prlimit >/dev/null && prlimit --pid "$GW_PID" --fsize=unlimited 2>/dev/null; then
    resp=$(curl -s -w '\n%{http_code}' "${ADM[@]}" "$GW_URL/api/admin/config" -d "$edit")
    like "$resp" '200$' "with space again, the bind-mounted config is saved"
    like "$(cat "$HOSTCFG")" 'weight: 7' "... in place: the mounted file holds the new weight"
    like "$(cat "$GW_LOG")" 'saved, but rewritten in place.*no backup kept' "... the log says it went in place without a .bak"
else
    skip_one "prlimit cannot lift the gateway's file size limit here"
fi
stop_gateway
done_testing
