#!/usr/bin/env bash
# The shape of src/ the architecture promises (src/README.md): every
# module in a layer folder, a layer includes only its own layer or those
# below, no include cycle between modules, no function over 80 lines.
. "$(dirname "$0")/../lib.sh"

out=$(python3 "$ROOT/scripts/layers.py" 2>&1)
ok $? "layers: no module calls up, no include cycle"
[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/#   /'
out=$(python3 "$ROOT/scripts/fnlen.py" 80 2>&1)
ok $? "no function over 80 lines"
[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/#   /'

# The checks must be able to fail: a module that includes one above it,
# and a cycle, in a scratch copy of src/.
mkdir -p "$TMP/tree/scripts"
cp -r "$ROOT/src" "$TMP/tree/src"
cp "$ROOT/scripts/layers.py" "$TMP/tree/scripts/"
printf '#include "proxy.h"\n' >> "$TMP/tree/src/base/buf.c"
out=$(python3 "$TMP/tree/scripts/layers.py" 2>&1)
like "$out" 'base/buf includes gateway/proxy: a layer may only call down' "layers.py finds a call up"
cp "$ROOT/src/base/buf.c" "$TMP/tree/src/base/buf.c"
printf '#include "buf.h"\n' >> "$TMP/tree/src/base/util.h"
printf '#include "util.h"\n' >> "$TMP/tree/src/base/buf.h"
out=$(python3 "$TMP/tree/scripts/layers.py" 2>&1)
like "$out" 'include cycle: (buf -> util -> buf|util -> buf -> util)' "layers.py finds a cycle"
done_testing
