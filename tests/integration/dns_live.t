#!/usr/bin/env bash
# Live resolver test: start tests/dns_server.py on a free loopback port with
# the zone below, then run $BUILD_DIR/tests/test_dns_live against it (its
# TAP is this test's output).  The server is killed on exit (trap), and it
# also exits by itself once this script is gone (--parent-pid).
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
bin="${BUILD_DIR:-}/tests/test_dns_live"
if [ -z "${BUILD_DIR:-}" ] || [ ! -x "$bin" ]; then
    echo "1..0 # SKIP BUILD_DIR not set or $bin not built"
    exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "1..0 # SKIP python3 not found"
    exit 0
fi

tmp=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

cat > "$tmp/zone.json" <<'ZONE'
{
  "dual.test":     {"A": ["192.0.2.1", "192.0.2.2"], "AAAA": ["2001:db8::1"], "ttl": 300},
  "alias.test":    {"CNAME": "target.test", "ttl": 300},
  "target.test":   {"A": ["192.0.2.30"], "ttl": 300},
  "v6only.test":   {"AAAA": ["2001:db8::66"]},
  "nx.test":       {"nxdomain": true},
  "empty.test":    {},
  "sf.test":       {"servfail": true},
  "tc.test":       {"A": ["192.0.2.8"], "truncate": true},
  "hang.test":     {"timeout": true},
  "half.test":     {"A": ["192.0.2.40"], "timeout": ["AAAA"]},
  "short.test":    {"A": ["192.0.2.50"], "ttl": 1},
  "spoof.test":    {"A": ["192.0.2.60"], "mismatch_first": true},
  "shared.test":   {"A": ["192.0.2.70"], "delay_ms": 200},
  "cancel.test":   {"A": ["192.0.2.80"], "delay_ms": 200},
  "failover.test": {"A": ["192.0.2.90"]}
}
ZONE

python3 "$root/tests/dns_server.py" --port 0 --port-file "$tmp/port" \
    --stats-file "$tmp/stats.json" --zone "$tmp/zone.json" --parent-pid $$ &
server_pid=$!

for _ in $(seq 1 100); do
    [ -s "$tmp/port" ] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "1..0 # SKIP tests/dns_server.py did not start"
        exit 0
    fi
    sleep 0.05
done
if [ ! -s "$tmp/port" ]; then
    echo "Bail out! tests/dns_server.py wrote no port file"
    exit 1
fi

DNS_TEST_PORT=$(cat "$tmp/port") DNS_TEST_STATS="$tmp/stats.json" "$bin"
