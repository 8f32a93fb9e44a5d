#!/usr/bin/env bash
# The security issue, item by item, against the real binary on loopback:
#  1 auth before body (401/404/405 from the head, 100 Continue only after
#    the key, a lingering close, a small login body)
#  2 a minimum rate for request bodies, one budget for buffered bytes
#  3 admin-key checks limited per client, behind trusted_proxies too
#  4 the admin API cannot exfiltrate secrets (masks, URLs, no ${VAR} typed)
#  5 no control bytes reach the wire (config refused, reload refused)
#  6 one meaning per request (model / stream given twice)
#  7 client headers cannot take a provider out; health per endpoint class
#  8 running out of descriptors is the gateway's problem, not a provider's
#  (9 config saves: config_save.t)
# 10 a TLS answer cut without close_notify is a failed attempt
# 11 upstream error text in a 502 is shortened and has its keys masked
# Several gateways run side by side, each with its own log; the slow
# test of item 2 (a body at a byte a second) runs in the background.
. "$(dirname "$0")/../lib.sh"

command -v openssl >/dev/null 2>&1 || skip_all "openssl is not installed"
# python3 may be a version manager's shim costing much of a second per
# start, and this test starts it often: call the interpreter itself.
PATH=$(dirname "$(python3 -c 'import sys; print(sys.executable)')"):$PATH

# ---------------------------------------------------------------- helpers

# gw NAME CONFIG [LAUNCHER]: start a gateway (through LAUNCHER, a program
# that execs its arguments, when given); sets NAME_PORT, NAME_PID, NAME_LOG.
gw() {
    local name=$1 cfg=$2 launcher=${3:-} log=$TMP/gw-$1.log port pid
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        if [ -n "$launcher" ]; then
            "$launcher" "$BIN" -c "$cfg" -p "$port" >>"$log" 2>&1 &
        else
            "$BIN" -c "$cfg" -p "$port" >>"$log" 2>&1 &
        fi
        pid=$!
        PIDS+=("$pid")
        if wait_for_port "$port" 10; then
            printf -v "${name}_PORT" '%s' "$port"
            printf -v "${name}_PID" '%s' "$pid"
            printf -v "${name}_LOG" '%s' "$log"
            return 0
        fi
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    echo "Bail out! gateway $name did not start"
    sed 's/^/#   /' "$log"
    exit 1
}

# gw_stop NAME: SIGTERM, a clean exit, no sanitizer report.
gw_stop() {
    local pid_var="$1_PID"
    stop_clean "${!pid_var}" "gateway $1 exits 0 on SIGTERM" "gateway $1: no sanitizer report"
}

ADMIN_KEY="adm-0123456789abcdef"   # long enough: no warning
mark() { echo "# --- $* (at ${SECONDS}s)"; }
CK=(-H "Authorization: Bearer ck")
MSG='"messages":[{"role":"user","content":"hi"}]'

# post URL ALIAS [curl args...]: a chat completion; headers in $TMP/h
post() {
    local url=$1 alias=$2
    shift 2
    curl -s -m 20 -D "$TMP/h" "${CK[@]}" "$@" "$url/v1/chat/completions" -d "{\"model\":\"$alias\",$MSG}"
}
hdr() { grep -i "^$1:" "$TMP/h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
status() { head -1 "$TMP/h" | awk '{print $2}'; }
stats() { curl -s -m 10 -H "X-API-Key: $ADMIN_KEY" "http://127.0.0.1:$1/internal/stats"; }
rss() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status"; }
# health PORT PROVIDER UPSTREAM CLASS -> "healthy/consecutive_failures"
health() {
    jget "$(stats "$1")" '[str(m["healthy"]).lower() + "/" + str(m["consecutive_failures"]) for p in j["providers"] for m in p["model_healths"] if p["name"] == "'"$2"'" and m["upstream_model"] == "'"$3"'" and m["class"] == "'"$4"'"][0]'
}
# record MOCK MODEL: the mock's last request record for MODEL (JSON)
record() {
    curl -s "http://127.0.0.1:$(mock_port "$1")/_mock/requests?n=200" |
        python3 -c 'import json,sys; r=[x for x in json.load(sys.stdin) if x["model"]==sys.argv[1]]; print(json.dumps(r[-1] if r else None))' "$2"
}
total() { jget "$(mock_stats "$1")" 'j["total"]'; }

# Raw-socket clients (python3, standard library).
cat > "$TMP/sec.py" <<'PY'
import json, re, socket, sys, threading, time

ADMIN = "adm-0123456789abcdef"


def connect(port, rcvbuf=None, timeout=10):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", int(port)))
    return s


def read_response(s, timeout):
    """One HTTP response: (status, head, body, seconds); status 0 when
    nothing (or no complete head) came within timeout."""
    t0 = time.monotonic()
    s.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except OSError:
        pass
    if b"\r\n\r\n" not in data:
        return 0, data.decode("latin-1"), b"", time.monotonic() - t0
    head, body = data.split(b"\r\n\r\n", 1)
    head = head.decode("latin-1")
    m = re.search(r"(?im)^content-length:\s*(\d+)", head)
    if m and not head.startswith("HTTP/1.1 1"):
        want = int(m.group(1))
        try:
            while len(body) < want:
                d = s.recv(65536)
                if not d:
                    break
                body += d
        except OSError:
            pass
    status = int(head.split(" ", 2)[1])
    return status, head, body, time.monotonic() - t0


def until_closed(s, limit):
    """Seconds until the peer closed (EOF or reset), None if it did not."""
    t0 = time.monotonic()
    s.settimeout(0.2)
    while time.monotonic() - t0 < limit:
        try:
            if not s.recv(65536):
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - t0
    return None


def stats(port):
    s = connect(port)
    s.sendall(("GET /internal/stats HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
               "Connection: close\r\n\r\n" % ADMIN).encode())
    st, head, body, _ = read_response(s, 10)
    s.close()
    return json.loads(body)


def rss(pid):
    for line in open("/proc/%s/status" % pid):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return 0


def chat_request(model, extra=""):
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    return (("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ck\r\n"
             "Content-Type: application/json\r\n%sContent-Length: %d\r\n\r\n" % (extra, len(body))).encode()
            + body)


def count_lines(path, pattern):
    try:
        return len(re.findall(pattern, open(path, errors="replace").read()))
    except OSError:
        return 0


def wait_lines(path, pattern, n, limit=15):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if count_lines(path, pattern) >= n:
            return True
        time.sleep(0.02)
    return False


# ---- item 1 ----

def head_only(port, head, wait="3"):
    """Send a head alone; the answer's status and how long it took (ms)."""
    s = connect(port)
    s.sendall(head.encode().decode("unicode_escape").encode("latin-1"))
    st, h, body, took = read_response(s, float(wait))
    print(json.dumps({"status": st, "ms": int(took * 1000), "body": body.decode("utf-8", "replace")}))


def answer_while_sending(port):
    """A refused head whose body keeps coming at about 6 MB/s, the client
    reading nothing for half a second: the answer must still arrive whole
    (no reset destroying it), and the gateway discards what comes for its
    lingering close (2 s), then closes: a send fails."""
    s = connect(port)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 33000000\r\n\r\n")
    s.setblocking(False)
    chunk = b"x" * 65536
    t0 = time.monotonic()
    sent, data, closed, eof = 0, b"", None, False
    while time.monotonic() - t0 < 6 and closed is None:
        if time.monotonic() - t0 > 0.5 and not eof:
            try:
                while True:
                    d = s.recv(65536)
                    if not d:
                        eof = True
                        break
                    data += d
            except BlockingIOError:
                pass
            except OSError:
                eof = True
        try:
            sent += s.send(chunk)
            time.sleep(0.01)
        except BlockingIOError:
            time.sleep(0.005)
        except OSError:
            closed = time.monotonic() - t0
    s.close()
    whole = False
    status = 0
    if b"\r\n\r\n" in data:
        head, body = data.split(b"\r\n\r\n", 1)
        m = re.search(rb"(?i)content-length:\s*(\d+)", head)
        whole = bool(m) and len(body) == int(m.group(1))
        status = int(head.split(b" ", 2)[1])
    print(json.dumps({"status": status, "whole": whole, "closed_after": closed and round(closed, 2),
                      "sent": sent}))


def slow_bodies(port, pid, n="6", seconds="3"):
    """n clients without a key whose 33 MB bodies keep coming at about
    1.3 MB/s each, whatever the answer, until the gateway closes: the
    statuses they got, the peak growth of RssAnon and the bytes sent."""
    n = int(n)
    r0 = rss(pid)
    peak = r0
    socks = []
    for _ in range(n):
        s = connect(port)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 33000000\r\n\r\n")
        s.setblocking(False)
        socks.append(s)
    answers = [b""] * n
    sending = [True] * n
    chunk = b"x" * 65536
    sent = 0
    end = time.monotonic() + float(seconds)
    while time.monotonic() < end and any(sending):
        for i, s in enumerate(socks):
            if not sending[i]:
                continue
            try:
                answers[i] += s.recv(65536)
            except OSError:
                pass
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                pass
            except OSError:
                sending[i] = False
        peak = max(peak, rss(pid))
        time.sleep(0.05)
    for s in socks:
        s.close()
    codes = [x.split(b" ", 2)[1].decode() if x.startswith(b"HTTP/1.1 ") else "-" for x in answers]
    print(json.dumps({"codes": codes, "growth_kib": peak - r0, "sent": sent, "closed": n - sum(sending)}))


def expect_continue(port, with_key):
    """Expect: 100-continue: what comes back before the body, then (with a
    key) the final answer to the body sent after the 100."""
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    key = "Authorization: Bearer ck\r\n" if with_key == "1" else ""
    s = connect(port)
    s.sendall(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
               "Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (key, len(body))).encode())
    first, h, _, _ = read_response(s, 3)
    final = 0
    if first == 100:
        s.sendall(body)
        final, _, _, _ = read_response(s, 10)
    rest = b""
    if with_key != "1":
        s.settimeout(1)
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                rest += d
        except OSError:
            pass
    print(json.dumps({"first": first, "final": final, "saw_100": "100 Continue" in h or b"100 Continue" in rest}))


# ---- item 2 ----

def trickle(port, out):
    """A body of 1000 bytes at one byte a second: when does the 408 come?"""
    body_len = 1000
    s = connect(port)
    s.sendall(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ck\r\n"
               "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % body_len).encode())
    t0 = time.monotonic()
    s.settimeout(1)
    data = b""
    sent = 0
    while time.monotonic() - t0 < 32:
        try:
            d = s.recv(65536)
            if not d:
                break
            data += d
            if b"\r\n\r\n" in data:
                break
        except socket.timeout:
            pass
        except OSError:
            break
        try:
            s.send(b" ")
            sent += 1
        except OSError:
            pass
    took = time.monotonic() - t0
    status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.1 ") else "-"
    with open(out, "w") as f:
        f.write(json.dumps({"status": status, "s": round(took, 1), "sent": sent}))


def uploads(port):
    """One 3 MB upload in progress, then another 3 MB upload (its head
    only), then a chunked body that grows past what is left."""
    res = {}
    u1 = connect(port)
    u1.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ck\r\n"
               b"Content-Type: application/json\r\nContent-Length: 3000000\r\n\r\n" + b" " * 100000)
    time.sleep(0.3)
    res["held"] = stats(port)["buffered_bytes"]
    u2 = connect(port)
    u2.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ck\r\n"
               b"Content-Type: application/json\r\nContent-Length: 3000000\r\n\r\n")
    st, h, body, took = read_response(u2, 3)
    res["second"] = [st, int(took * 1000), body.decode("utf-8", "replace")]
    u3 = connect(port)
    u3.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ck\r\n"
               b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    sent = 0
    u3.settimeout(2)
    try:
        while sent < 2000000:
            u3.sendall(b"10000\r\n" + b" " * 65536 + b"\r\n")
            sent += 65536
    except OSError:
        pass
    st, h, body, took = read_response(u3, 3)
    res["chunked"] = [st, sent, body.decode("utf-8", "replace")]
    u1.close()
    u2.close()
    u3.close()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3 and stats(port)["buffered_bytes"]:
        time.sleep(0.05)
    res["after"] = stats(port)["buffered_bytes"]
    print(json.dumps(res))


def big_answers(port, pid, log, model, n, size):
    """n clients ask for a whole answer of size bytes and never read it.
    RssAnon growth once all are queued (after the gateway's one-second
    trim), who was cut, what the last one gets when it finally reads,
    and buffered_bytes when everyone is gone."""
    n, size = int(n), int(size)
    done_re = r"POST /v1/chat/completions \d+ \d+B .*\] %s " % re.escape(model)
    base = count_lines(log, done_re)
    r0 = rss(pid)
    socks = []
    for i in range(n):
        s = connect(port, rcvbuf=4096)
        s.sendall(chat_request(model))
        socks.append(s)
        wait_lines(log, done_re, base + i + 1)
    time.sleep(1.5)
    r1 = rss(pid)
    st = stats(port)
    got = []
    for s in socks:
        s.settimeout(2)
        head = b""
        body_len = 0
        want = None
        closed = False
        try:
            while want is None or body_len < want:
                d = s.recv(1 << 20)
                if not d:
                    closed = True
                    break
                if want is None:
                    head += d
                    if b"\r\n\r\n" in head:
                        head, rest = head.split(b"\r\n\r\n", 1)
                        m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                        want = int(m.group(1)) if m else -1
                        body_len = len(rest)
                else:
                    body_len += len(d)
        except socket.timeout:
            pass
        except OSError:
            closed = True
        status = head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/1.1 ") else "-"
        got.append([status, body_len, closed])
    for s in socks:
        s.close()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3 and stats(port)["buffered_bytes"]:
        time.sleep(0.05)
    print(json.dumps({"growth_kib": r1 - r0, "queued": st["buffered_bytes"], "budget": st["buffer_budget"],
                      "got": got, "after": stats(port)["buffered_bytes"], "size": size}))


# ---- item 8 ----

def fd_flood(port, n="90"):
    """Open n connections at once (the gateway has 64 descriptors): which
    were kept (silent), which got a 503, which were reset; then a request
    on a kept one, whose upstream connection cannot get a descriptor."""
    held = []
    for _ in range(int(n)):
        try:
            held.append(connect(port, timeout=5))
        except OSError:
            break
    time.sleep(0.7)
    kinds = {"silent": 0, "503": 0, "reset": 0, "eof": 0, "other": 0}
    alive = []
    deadline = time.monotonic() + 1.0
    for s in held:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            d = s.recv(4096)
            if not d:
                kinds["eof"] += 1
            elif d.startswith(b"HTTP/1.1 503") and b"out of file descriptors" in d:
                kinds["503"] += 1
            else:
                kinds["other"] += 1
        except socket.timeout:
            kinds["silent"] += 1
            alive.append(s)
        except ConnectionResetError:
            kinds["reset"] += 1
        except OSError:
            kinds["other"] += 1
    up = [0, ""]
    if alive:
        s = alive[0]
        s.sendall(chat_request("m"))
        st, h, body, _ = read_response(s, 10)
        up = [st, body.decode("utf-8", "replace")]
    for s in held:
        s.close()
    print(json.dumps({"kinds": kinds, "upstream": up, "held": len(held)}))


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
PY
SEC=(python3 "$TMP/sec.py")

# ---------------------------------------------------------------- mocks

start_mock A || exit 1
start_mock B || exit 1
# item 7: an upstream that refuses any request carrying a client's
# credential or organization (as a real one would answer a foreign org)
start_mock AUTH --require-auth key-auth --deny-header OpenAI-Organization --deny-header OpenAI-Project \
    --deny-header X-Api-Key --deny-header Api-Key --deny-header Proxy-Authorization || exit 1
PA=$(mock_port A); PB=$(mock_port B); PAUTH=$(mock_port AUTH)

# ================================================================ the main gateway
mark "the main gateway"
cat > "$TMP/main.yaml" <<Y
api_keys: ["ck"]
admin_key: "$ADMIN_KEY"
forward_headers: ["X-Mock-Mode"]   # the tests steer the mocks through the gateway
max_retries: 2
max_failures: 1
providers:
  - name: pa
    base_url: http://127.0.0.1:$PA
    model_mappings:
      - {upstream: m1, alias: m}
      - {upstream: cls, alias: cls}
      - {upstream: leak, alias: leak}
  - name: pb
    base_url: http://127.0.0.1:$PB
    priority: 1
    headers: {X-Mock-Mode: "ok"}   # a fixed header wins over the client's
    model_mappings:
      - {upstream: cls-b, alias: cls}
  - name: pauth
    base_url: http://127.0.0.1:$PAUTH
    api_key: key-auth
    model_mappings:
      - {upstream: au, alias: authm}
Y
gw MAIN "$TMP/main.yaml"
MAIN_URL=http://127.0.0.1:$MAIN_PORT

# item 2, the slow one, in the background: a byte a second
"${SEC[@]}" trickle "$MAIN_PORT" "$TMP/trickle.json" &
TRICKLE=$!
PIDS+=("$TRICKLE")

# ================================================================ 1. auth before body
mark "1. auth before body"
for _ in 1 2 3; do post "$MAIN_URL" m -o /dev/null; done   # warm the normal paths

early() {  # early WANT HEAD MESSAGE: send HEAD alone (\r\n escapes), want "STATUS at once"
    local out
    out=$("${SEC[@]}" head_only "$MAIN_PORT" "$2")
    is "$(jget "$out" '"%s %s" % (j["status"], "at once" if j["ms"] < 1000 else "after %d ms" % j["ms"])')" "$1 at once" "$3"
}
early 401 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 33000000\r\n\r\n' \
    "1: a 33 MB body without a key: 401 at once, before a byte of the body is sent"
early 401 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 33000000\r\n\r\n' \
    "1: the same with a wrong key: 401 from the head"
early 404 'GET /nonexistent HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n' \
    "1: GET /nonexistent with a 20 MB body: 404 from the head"
early 405 'PUT /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ck\r\nContent-Length: 20000000\r\n\r\n' \
    "1: a wrong method with a 20 MB body: 405 from the head"
early 401 'POST /api/admin/config HTTP/1.1\r\nHost: x\r\nX-API-Key: wrong-but-long-enough\r\nContent-Length: 20000000\r\n\r\n' \
    "1: the admin API with a wrong key and a 20 MB body: 401 from the head"

out=$("${SEC[@]}" answer_while_sending "$MAIN_PORT")
is "$(jget "$out" '[j["status"], j["whole"]]')" '[401, true]' "1: the 401 arrives whole while the client keeps sending its body"
is "$(jget "$out" 'j["closed_after"] is not None and 1.0 <= j["closed_after"] <= 4.0')" True \
    "1: ... the gateway discards the body for its lingering close (2 s), then closes ($out)"

out=$("${SEC[@]}" slow_bodies "$MAIN_PORT" "$MAIN_PID" 6 4)
is "$(jget "$out" '"%s closed=%d" % (",".join(j["codes"]), j["closed"])')" "401,401,401,401,401,401 closed=6" \
    "1: six clients without a key whose bodies keep coming: all get 401 and are closed after the lingering close"
if sanitized; then
    skip_one "RSS under ASan is the sanitizer's"
else
    g=$(jget "$out" 'j["growth_kib"]')
    ok $([ "$g" -lt 1024 ]; echo $?) "1: ... and the gateway does not hold their bodies: RssAnon grew $g KiB (< 1 MiB) ($out)"
fi

out=$("${SEC[@]}" expect_continue "$MAIN_PORT" 0)
is "$(jget "$out" '[j["first"], j["saw_100"]]')" '[401, false]' "1: Expect: 100-continue without a key: 401 and no 100 Continue"
out=$("${SEC[@]}" expect_continue "$MAIN_PORT" 1)
is "$(jget "$out" '[j["first"], j["final"]]')" '[100, 200]' "1: Expect: 100-continue with the key: 100 Continue, then the answer to the body"

python3 -c 'import json; print(json.dumps({"api_key": "x" * 5120}))' > "$TMP/login5k.json"
code=$(curl -s -o "$TMP/b" -w '%{http_code}' "$MAIN_URL/api/admin/login" --data-binary @"$TMP/login5k.json")
is "$code" 413 "1: a 5 KiB login body: 413"
python3 -c 'import json; print(json.dumps({"api_key": "'"$ADMIN_KEY"'", "pad": "x" * 3500}))' > "$TMP/login3k.json"
code=$(curl -s -o /dev/null -w '%{http_code}' "$MAIN_URL/api/admin/login" --data-binary @"$TMP/login3k.json")
is "$code" 200 "1: a 3.5 KiB login body is still read (the limit is 4 KiB)"

# ================================================================ 6. one meaning per request
mark "6. one meaning per request"
t0=$(total A)
body=$(curl -s -D "$TMP/h" "${CK[@]}" "$MAIN_URL/v1/chat/completions" -d "{\"model\":\"m\",\"model\":\"leak\",$MSG}")
like "$(status) $body" '^400 .*gives \\"model\\" more than once' "6: \"model\" twice: 400 saying so"
body=$(curl -s -D "$TMP/h" "${CK[@]}" "$MAIN_URL/v1/chat/completions" -d "{\"model\":\"m\",\"stream\":false,$MSG,\"stream\":true}")
like "$(status) $body" '^400 .*gives \\"stream\\" more than once' "6: \"stream\" twice: 400 saying so"
body=$(curl -s -D "$TMP/h" "${CK[@]}" "$MAIN_URL/v1/chat/completions" -d "{\"model\":\"m\",\"mod\\u0065l\":\"leak\",$MSG}")
like "$(status) $body" '^400 .*more than once' "6: \"model\" and \"mod\\\\u0065l\" (the same key, escaped): 400"
printf -- '--XyZ\r\nContent-Disposition: form-data; name="model"\r\n\r\nm\r\n--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\nContent-Type: audio/mpeg\r\n\r\nID3audio\r\n--XyZ\r\nContent-Disposition: form-data; name="model"\r\n\r\nleak\r\n--XyZ--\r\n' > "$TMP/form2.bin"
body=$(curl -s -D "$TMP/h" "${CK[@]}" -H "Content-Type: multipart/form-data; boundary=XyZ" \
    --data-binary @"$TMP/form2.bin" "$MAIN_URL/v1/audio/transcriptions")
like "$(status) $body" '^400 .*form gives \\"model\\" more than once' "6: an upload with two model fields: 400 saying so"
is "$(total A)" "$t0" "6: the upstream saw none of them"

# ================================================================ 7. client headers, health per class
mark "7. client headers, health per class"
codes=""
for i in 1 2 3; do
    post "$MAIN_URL" authm -o /dev/null -H "X-Api-Key: sk-client-$i" -H "OpenAI-Organization: org-evil" \
        -H "OpenAI-Project: proj-evil" -H "Api-Key: sk-client" -H "Proxy-Authorization: Basic eDp5"
    codes="$codes$(status)/$(hdr X-Autoswitch-Provider) "
done
is "$codes" "200/pauth 200/pauth 200/pauth " \
    "7: a client's Authorization, X-Api-Key, Api-Key, Proxy-Authorization, OpenAI-Organization/-Project never reach the upstream"
is "$(health "$MAIN_PORT" pauth au chat)" "true/0" "7: ... so they cannot take the provider out (max_failures 1): healthy"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer key-auth" -H "OpenAI-Organization: org-evil" \
    "http://127.0.0.1:$PAUTH/v1/chat/completions" -d "{\"model\":\"au\",$MSG}")
is "$code" 401 "7: (the same header sent to that upstream directly: 401, so the check above can fail)"

post "$MAIN_URL" cls -o /dev/null
is "$(status)/$(hdr X-Autoswitch-Provider)" "200/pa" "7: chat to cls goes to pa first"
curl -s -D "$TMP/h" -o /dev/null "${CK[@]}" -H "X-Mock-Mode: 404" "$MAIN_URL/v1/audio/speech" \
    -d '{"model":"cls","input":"hi","voice":"alloy"}'
is "$(status)/$(hdr X-Autoswitch-Provider)" "200/pb" "7: /v1/audio/speech, where pa answers 404: fails over to pb"
post "$MAIN_URL" cls -o /dev/null
is "$(status)/$(hdr X-Autoswitch-Provider)" "200/pa" "7: chat to the same model still goes to pa"
curl -s -D "$TMP/h" -o /dev/null "${CK[@]}" "$MAIN_URL/v1/audio/speech" -d '{"model":"cls","input":"hi","voice":"alloy"}'
is "$(status)/$(hdr X-Autoswitch-Provider)" "200/pb" "7: audio to it now goes to pb (pa's audio class is out)"
is "$(health "$MAIN_PORT" pa cls audio)" "false/1" "7: /internal/stats: pa/cls class audio unhealthy"
is "$(health "$MAIN_PORT" pa cls chat)" "true/0" "7: /internal/stats: pa/cls class chat healthy"

# ================================================================ 11. upstream error text in a 502
mark "11. upstream error text in a 502"
long=$(python3 -c 'print("y" * 2000)')
mock_mode A leak "status;code=500;message=upstream says: key sk-abcdefghijklmnop1234 refused, header Bearer sk-zzzzzzzzzzzzzzzzzz $long"
body=$(post "$MAIN_URL" leak)
msg=$(jget "$body" 'j["error"]["message"]')
is "$(status)" 502 "11: a provider's 500 ends in 502"
like "$msg" 'sk-\.\.\..*sk-\.\.\.' "11: the 502's message shows the keys masked (sk-...)"
unlike "$msg" 'abcdefghijklmnop1234|zzzzzzzzzzzzzzzzzz' "11: ... and never the key text"
ok $([ ${#msg} -le 400 ]; echo $?) "11: ... shortened (${#msg} characters of a 2 KB upstream message)"
# README: "No key or Authorization header ever reaches a log line"; the
# admin API shows the log and last_error, and masks provider keys.
unlike "$(cat "$MAIN_LOG")" 'abcdefghijklmnop1234|zzzzzzzzzzzzzzzzzz' "11: the key text reaches no log line either"
unlike "$(stats "$MAIN_PORT")" 'abcdefghijklmnop1234|zzzzzzzzzzzzzzzzzz' "11: ... nor /internal/stats (last_error)"
mock_mode A leak null

# ================================================================ 3. admin-key checks per client
mark "3. admin-key checks per client"
cat > "$TMP/xff.yaml" <<Y
api_keys: ["ck"]
admin_key: "adm"
trusted_proxies: ["127.0.0.1"]
providers:
  - name: pa
    base_url: http://127.0.0.1:$PA
    model_mappings: [{upstream: m1, alias: m}]
Y
sed -e '/trusted_proxies/d' -e "s/admin_key: \"adm\"/admin_key: \"$ADMIN_KEY\"/" "$TMP/xff.yaml" > "$TMP/noxff.yaml"
gw XFF "$TMP/xff.yaml"
gw NOXFF "$TMP/noxff.yaml"
like "$(cat "$XFF_LOG")" 'admin_key is shorter than 16 characters' "3: a start-up warning for an admin_key under 16 characters"
unlike "$(cat "$NOXFF_LOG")" 'admin_key is shorter' "3: ... and none for a long one"
wrong() {  # wrong PORT [X-Forwarded-For value]: a wrong admin key
    if [ -n "${2:-}" ]; then
        curl -s -o /dev/null -w '%{http_code} ' -H "X-API-Key: wrong" -H "X-Forwarded-For: $2" "http://127.0.0.1:$1/internal/stats"
    else
        curl -s -o /dev/null -w '%{http_code} ' -H "X-API-Key: wrong" "http://127.0.0.1:$1/internal/stats"
    fi
}
codes=""; for _ in $(seq 10); do codes+=$(wrong "$XFF_PORT" 10.0.0.1); done
is "$codes$(wrong "$XFF_PORT" 10.0.0.1)" "$(printf '401 %.0s' $(seq 10))429 " "3: behind a trusted proxy, client 10.0.0.1: 10 wrong keys, then 429"
is "$(wrong "$XFF_PORT" 10.0.0.2)" "401 " "3: client 10.0.0.2 has a budget of its own"
is "$(wrong "$XFF_PORT" "10.0.0.2, 10.0.0.1")" "429 " "3: the last X-Forwarded-For hop counts (a client cannot name itself anew)"
like "$(cat "$XFF_LOG")" 'INFO 10\.0\.0\.1 GET /internal/stats 401' "3: the access log shows the X-Forwarded-For client"
codes=""; for _ in $(seq 10); do codes+=$(wrong "$XFF_PORT" 2001:db8::1); done
is "$codes" "$(printf '401 %.0s' $(seq 10))" "3: IPv6 client 2001:db8::1: 10 wrong keys"
is "$(wrong "$XFF_PORT" 2001:db8::2)" "429 " "3: 2001:db8::2, in the same /64, shares its budget: 429"
is "$(wrong "$XFF_PORT" 2001:db8:0:1::1)" "401 " "3: 2001:db8:0:1::1, another /64, does not"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: adm" "http://127.0.0.1:$XFF_PORT/internal/stats")
is "$code" 200 "3: the proxy's own address keeps its budget"
codes=""; for _ in $(seq 10); do codes+=$(wrong "$NOXFF_PORT" 10.0.0.1); done
is "$codes$(wrong "$NOXFF_PORT" 10.0.0.2)" "$(printf '401 %.0s' $(seq 10))429 " \
    "3: without trusted_proxies X-Forwarded-For is ignored: 10.0.0.2 shares 127.0.0.1's budget"
unlike "$(cat "$NOXFF_LOG")" 'INFO 10\.0\.0\.[12] ' "3: ... and the access log shows the peer, not the header"
gw_stop XFF

# ================================================================ 4. the admin API and secrets
mark "4. the admin API and secrets"
export SEC_UPSTREAM_VAR=upstream-from-env-7781
export SEC_ENV_KEY=sk-env-secret-5566778899
cat > "$TMP/adm.yaml" <<Y
api_keys: ["ck"]
admin_key: "$ADMIN_KEY"
forward_headers: ["X-Mock-Mode"]
max_failures: 1000
providers:
  - name: pa
    base_url: "http://127.0.0.1:$PA"
    anthropic_base_url: "http://127.0.0.1:$PA/anthropic"
    api_key: "sk-literal-secret-abcd"
    headers: {X-Provider-Secret: "hdr-secret-value-9876"}
    model_mappings:
      - {upstream: am1, alias: am}
      - {upstream: "\${SEC_UPSTREAM_VAR}", alias: envm}
  - name: pref
    base_url: "http://127.0.0.1:$PA"
    api_key: "\${SEC_ENV_KEY}"
    model_mappings:
      - {upstream: r1, alias: refm}
Y
gw ADM "$TMP/adm.yaml"
ADM_URL=http://127.0.0.1:$ADM_PORT
ADM=(-H "X-API-Key: $ADMIN_KEY")
save() {  # save JSON: POST /api/admin/config; prints "STATUS BODY"
    local b
    b=$(curl -s -o "$TMP/save.out" -w '%{http_code}' "${ADM[@]}" "$ADM_URL/api/admin/config" -d "$1")
    printf '%s %s' "$b" "$(cat "$TMP/save.out")"
}
# reload NAME: SIGHUP, wait for the reload to be logged
reload() {
    local pid_var="$1_PID" log_var="$1_LOG" n
    n=$(grep -c 'config reloaded (SIGHUP\|reload (SIGHUP' "${!log_var}")
    kill -HUP "${!pid_var}"
    for _ in $(seq 100); do
        [ "$(grep -c 'config reloaded (SIGHUP\|reload (SIGHUP' "${!log_var}")" -gt "$n" ] && return 0
        sleep 0.05
    done
    return 1
}
view=$(curl -s "${ADM[@]}" "$ADM_URL/api/admin/config")
is "$(jget "$view" 'j["data"]["providers"][0]["api_key"]')" "sk-…abcd" "4: GET /api/admin/config masks api_key (sk-…abcd)"
like "$(jget "$view" 'j["data"]["providers"][0]["headers"]["X-Provider-Secret"]')" '…' "4: ... and provider header values"
unlike "$view" 'sk-literal-secret-abcd|hdr-secret-value-9876|sk-env-secret|upstream-from-env' "4: no secret and no expanded value in the answer"
is "$(jget "$view" 'j["data"]["providers"][0]["model_mappings"][1]["upstream"]')" '${SEC_UPSTREAM_VAR}' \
    "4: a mapping written upstream: \"\${SEC_UPSTREAM_VAR}\" shows as the reference, not its value"
data=$(jget "$view" 'j["data"]')

# a masked key sent back: kept while every URL keeps scheme, host and port
resp=$(save "$(jedit "$data" 'j["providers"][0]["base_url"] += "/v1"')")
like "$resp" '^200 ' "4: the masked key sent back with only the base_url path changed: 200"
like "$(cat "$TMP/adm.yaml")" 'api_key: "sk-literal-secret-abcd"' "4: ... the file keeps the real key"
post "$ADM_URL" am -o /dev/null -H "X-Mock-Mode: echo"
is "$(jget "$(record A am1)" 'j["header_map"].get("authorization")')" "Bearer sk-literal-secret-abcd" "4: ... and the upstream gets it"
view=$(curl -s "${ADM[@]}" "$ADM_URL/api/admin/config"); data=$(jget "$view" 'j["data"]')
cp "$TMP/adm.yaml" "$TMP/adm.before"
for change in "base_url|http://127.0.0.1:$PB/v1|another port" "base_url|http://localhost:$PA/v1|another host" \
    "base_url|https://127.0.0.1:$PA/v1|another scheme" "anthropic_base_url|http://127.0.0.1:$PB/anthropic|another anthropic_base_url port"; do
    IFS='|' read -r key url what <<<"$change"
    resp=$(save "$(jedit "$data" "j['providers'][0]['$key'] = '$url'")")
    like "$resp" '^400 .*type it again' "4: the masked key sent back with $what: 400 \"type it again\""
done
resp=$(save "$(jedit "$data" "j['providers'][0]['base_url'] = 'http://127.0.0.1:$PB/v1'; j['providers'][0]['api_key'] = 'sk-typed-again-1234'")")
like "$resp" '^400 .*X-Provider-Secret.*type it again' "4: a masked header value sent back with another host: 400 \"type it again\""
check "4: ... the file is unchanged after every refusal" -- cmp -s "$TMP/adm.yaml" "$TMP/adm.before"
resp=$(save "$(jedit "$data" "j['providers'][0]['api_key'] = 'sk-typed-again-1234'; j['providers'][0]['headers'] = {'X-Provider-Secret': 'typed-header-value'}; j['providers'][0]['base_url'] = 'http://127.0.0.1:$PB/v1'; j['providers'][0]['anthropic_base_url'] = 'http://127.0.0.1:$PB/anthropic'")")
like "$resp" '^200 ' "4: with the key and the header typed again, moving the provider is fine"
cp "$TMP/adm.before" "$TMP/adm.yaml"
reload ADM

# typed text is never ${VAR}-expanded
view=$(curl -s "${ADM[@]}" "$ADM_URL/api/admin/config"); data=$(jget "$view" 'j["data"]')
new=$(jedit "$data" "j['providers'][0]['model_mappings'].append({'upstream': '\${HOME}'}); j['providers'].append({'name': 'typed', 'base_url': 'http://127.0.0.1:$PA', 'api_key': '\${HOME}', 'model_mappings': [{'upstream': 't1', 'alias': 'typedm'}]})")
resp=$(save "$new")
like "$resp" '^200 ' "4: upstream \"\${HOME}\" and api_key \"\${HOME}\" typed in the admin UI: saved"
like "$(cat "$TMP/adm.yaml")" 'upstream: "\$\$\{HOME\}"' "4: ... written \"\$\${HOME}\" in the file"
like "$(cat "$TMP/adm.yaml")" 'api_key: "\$\$\{HOME\}"' "4: ... the api_key too"
models=$(curl -s "${CK[@]}" "$ADM_URL/v1/models")
like "$models" '"id":"\$\{HOME\}"' "4: GET /v1/models shows the alias as the literal text \${HOME}"
unlike "$models" "\"$HOME\"" "4: ... never the value of \$HOME"
post "$ADM_URL" '${HOME}' -o /dev/null -H "X-Mock-Mode: echo"
is "$(status)/$(jget "$(record A '${HOME}')" 'j["model"]')" '200/${HOME}' "4: the upstream is asked for the model \"\${HOME}\", literally"
post "$ADM_URL" typedm -o /dev/null -H "X-Mock-Mode: echo"
is "$(jget "$(record A t1)" 'j["header_map"].get("authorization")')" 'Bearer ${HOME}' "4: api_key \"\${HOME}\" typed in the UI reaches the upstream literally"
view=$(curl -s "${ADM[@]}" "$ADM_URL/api/admin/config")
is "$(jget "$view" 'j["data"]["providers"][0]["model_mappings"][1]["upstream"]')" '${SEC_UPSTREAM_VAR}' "4: the file's own reference survives the save"
post "$ADM_URL" envm -o /dev/null
is "$(status)/$(jget "$(record A upstream-from-env-7781)" 'j["model"]')" "200/upstream-from-env-7781" "4: ... and still expands"

# A ${VAR} reference shown by GET is as good as the secret it names: it
# must not follow a provider to a new host, nor be copied to another one.
view=$(curl -s "${ADM[@]}" "$ADM_URL/api/admin/config"); data=$(jget "$view" 'j["data"]')
is "$(jget "$data" '[p["api_key"] for p in j["providers"] if p["name"] == "pref"][0]')" '${SEC_ENV_KEY}' "4: GET shows a reference key as the reference"
cp "$TMP/adm.yaml" "$TMP/adm.before"
resp=$(save "$(jedit "$data" "j['providers'].append({'name': 'copy', 'base_url': 'http://127.0.0.1:$PB', 'api_key': '\${SEC_ENV_KEY}', 'model_mappings': [{'upstream': 'c1', 'alias': 'copym'}]})")")
post "$ADM_URL" copym -o /dev/null -H "X-Mock-Mode: echo"
unlike "$(record B c1)" 'sk-env-secret-5566778899' "4: the reference \${SEC_ENV_KEY} copied into a new provider on another host does not send the secret there (save: ${resp:0:3})"
cp "$TMP/adm.before" "$TMP/adm.yaml"; reload ADM
view=$(curl -s "${ADM[@]}" "$ADM_URL/api/admin/config"); data=$(jget "$view" 'j["data"]')
resp=$(save "$(jedit "$data" "[p.update(base_url='http://127.0.0.1:$PB') for p in j['providers'] if p['name'] == 'pref']")")
post "$ADM_URL" refm -o /dev/null -H "X-Mock-Mode: echo"
unlike "$(record B r1)" 'sk-env-secret-5566778899' "4: the provider with the reference moved to another host does not take the secret along (save: ${resp:0:3})"
cp "$TMP/adm.before" "$TMP/adm.yaml"; reload ADM
gw_stop ADM

# ================================================================ 5. no control bytes reach the wire
mark "5. no control bytes reach the wire"
check_bad() {  # check_bad LABEL: --check-config of a file with BASE, KEY, HVAL, UP (YAML escapes) -> "RC OUTPUT"
    local f=$TMP/ctl-$1.yaml
    cat > "$f" <<Y
api_keys: ["ck"]
providers:
  - name: p
    base_url: "${BASE:-http://127.0.0.1:$PA}"
    api_key: "${KEY:-sk-fine-123456}"
    headers: {X-Fine: "${HVAL:-ok}"}
    model_mappings:
      - {upstream: "${UP:-m1}", alias: m}
Y
    local out rc=0
    out=$("$BIN" --check-config -c "$f" 2>&1) || rc=$?
    printf '%s' "$rc $out"
}
out=$(check_bad clean)
like "$out" '^0 ' "5: (the clean file passes --check-config)"
out=$(KEY='sk-abc\r\nX-Injected: 1' check_bad crlf-key)
like "$out" "^1 .*ctl-crlf-key\.yaml:5:[0-9]+: .*control" "5: CR LF in api_key: --check-config exits 1 naming file:line:column"
out=$(UP='m1\nX-Injected: 1' check_bad lf-upstream)
like "$out" "^1 .*ctl-lf-upstream\.yaml:8:[0-9]+:" "5: LF in an upstream model: refused with file:line:column"
out=$(UP='m\x7f1' check_bad del-upstream)
like "$out" "^1 .*ctl-del-upstream\.yaml:8:[0-9]+:" "5: DEL in an upstream model: refused"
out=$(KEY='sk-abc\0def' check_bad nul-key)
like "$out" "^1 .*ctl-nul-key\.yaml:5:[0-9]+:" "5: NUL in api_key: refused"
out=$(BASE="http://127.0.0.1:$PA/v1\r\nX-Injected: 1" check_bad crlf-base)
like "$out" "^1 .*ctl-crlf-base\.yaml:4:[0-9]+:" "5: CR LF in base_url: refused"
out=$(HVAL='v\x01w' check_bad ctl-header)
like "$out" "^1 .*ctl-ctl-header\.yaml:6:[0-9]+:" "5: a control byte in a provider header value: refused"
out=$(HVAL='v\r\nX-Injected: 1' check_bad crlf-header)
like "$out" "^1 .*ctl-crlf-header\.yaml:6:[0-9]+:" "5: CR LF in a provider header value: refused"
export SEC_CTL_VAR=$'sk-abc\r\nX-Injected: 1'
out=$(KEY='${SEC_CTL_VAR}' check_bad env-key)
like "$out" "^1 .*ctl-env-key\.yaml:5:[0-9]+:" "5: a \${VAR} whose value holds CR LF, in api_key: refused"
# the running gateway refuses such a config on SIGHUP and keeps serving
cp "$TMP/main.yaml" "$TMP/main.good"
sed -i 's/api_key: key-auth/api_key: "key-auth\\r\\nX-Injected: 1"/' "$TMP/main.yaml"
reload MAIN
like "$(grep 'reload (' "$MAIN_LOG" | tail -1)" 'failed, keeping the running config: .*main\.yaml:[0-9]+:[0-9]+: .*control' \
    "5: SIGHUP with a control byte in a key: the reload is refused, naming file:line:column"
post "$MAIN_URL" authm -o /dev/null
is "$(status)/$(hdr X-Autoswitch-Provider)" "200/pauth" "5: ... and the gateway keeps serving with the previous config"
is "$(jget "$(record AUTH au)" 'j["header_map"].get("x-injected")')" "None" "5: ... nothing injected upstream"
cp "$TMP/main.good" "$TMP/main.yaml"

# ================================================================ 2. the buffer budget
mark "2. the buffer budget"
mock_mode A big3 "ok;body_bytes=3000000"
# The kernel takes up to tcp_wmem's maximum of an answer into the socket
# (the client's own buffer is kept at 4 KiB): the "big" answers are
# larger by 4 MB, so the gateway itself must queue 4 MB of each.
WMEM=$(awk '{print $3}' /proc/sys/net/ipv4/tcp_wmem 2>/dev/null || echo 4194304)
BIG_SIZE=$((WMEM + 4000000)); BIG_BUDGET=$((BIG_SIZE + 2000000))
mock_mode A big "ok;body_bytes=$BIG_SIZE"
mock_mode A huge5 "ok;body_bytes=5000000"
cat > "$TMP/buf.yaml" <<Y
api_keys: ["ck"]
admin_key: "$ADMIN_KEY"
max_failures: 1
max_buffered_bytes: 4000000
providers:
  - name: pa
    base_url: http://127.0.0.1:$PA
    model_mappings: [{upstream: m1, alias: m}, {upstream: big3, alias: big3}, {upstream: huge5, alias: huge5}]
Y
sed "s/max_buffered_bytes: 4000000/max_buffered_bytes: $BIG_BUDGET/; s/big3, alias: big3/big, alias: big/" "$TMP/buf.yaml" > "$TMP/big.yaml"
gw BUF "$TMP/buf.yaml"
gw BIG "$TMP/big.yaml"
for _ in 1 2 3; do post "http://127.0.0.1:$BUF_PORT" m -o /dev/null; post "http://127.0.0.1:$BIG_PORT" m -o /dev/null; done

out=$("${SEC[@]}" uploads "$BUF_PORT")
ok $([ "$(jget "$out" 'j["held"]')" -ge 3000000 ]; echo $?) "2: a 3 MB upload in progress is counted in buffered_bytes ($(jget "$out" 'j["held"]'))"
is "$(jget "$out" 'j["second"][0]')" 503 "2: max_buffered_bytes 4000000: another client's 3 MB upload gets 503 at its head"
like "$(jget "$out" 'j["second"][2]')" 'holding too much data' "2: ... saying why"
is "$(jget "$out" 'j["chunked"][0]')" 503 "2: a chunked body that grows past the budget: 503 (after $(jget "$out" 'j["chunked"][1]') bytes)"
is "$(jget "$out" 'j["after"]')" 0 "2: buffered_bytes is back to 0 when the uploads are gone"

body=$(post "http://127.0.0.1:$BUF_PORT" huge5)
is "$(status)" 503 "2: a whole answer larger than the budget, nothing to cut: 503 (the gateway's shortage)"
like "$(jget "$body" 'j["error"]["message"]')" 'max_buffered_bytes' "2: ... naming max_buffered_bytes"
is "$(health "$BUF_PORT" pa huge5 chat)" "true/0" "2: ... not the provider's failure (max_failures 1, still healthy)"

# Most of each 3 MB answer fits in the kernel's socket buffers; what
# counts is what the process keeps: at most about the budget.
out=$("${SEC[@]}" big_answers "$BUF_PORT" "$BUF_PID" "$BUF_LOG" big3 5 3000000)
echo "# 5 x 3 MB answers never read, budget 4 MB: $out"
if sanitized; then
    skip_one "RSS under ASan is the sanitizer's"
else
    g=$(jget "$out" 'j["growth_kib"]')
    ok $([ "$g" -lt $((4000000 / 1024 + 2048)) ]; echo $?) \
        "2: five clients never reading 3 MB answers (budget 4 MB): RssAnon grew $g KiB (at most the budget + 2 MiB; buffered_bytes said $(jget "$out" 'j["queued"]'))"
fi
is "$(jget "$out" 'j["after"]')" 0 "2: buffered_bytes is back to 0 after they are gone"

if [ "$WMEM" -gt 16000000 ]; then
    skip_one "tcp_wmem allows $WMEM bytes per socket: the answers would have to be too large"
else
    out=$("${SEC[@]}" big_answers "$BIG_PORT" "$BIG_PID" "$BIG_LOG" big 3 "$BIG_SIZE")
    echo "# 3 x $BIG_SIZE-byte answers never read, budget $BIG_BUDGET: $out"
    is "$(grep -c 'cut: ' "$BIG_LOG")" 2 "2: three clients never reading $BIG_SIZE-byte answers (budget $BIG_BUDGET): the two earlier ones are cut (log \"cut:\")"
    is "$(jget "$out" '[g[2] and g[1] < j["size"] for g in j["got"][:2]]')" '[true, true]' "2: ... their connections closed before the whole answer"
    is "$(jget "$out" 'j["got"][2][:2]')" "[\"200\", $BIG_SIZE]" "2: ... the last one gets its whole answer when it reads"
    if sanitized; then
        skip_one "RSS under ASan is the sanitizer's"
    else
        g=$(jget "$out" 'j["growth_kib"]')
        ok $([ "$g" -lt $((BIG_BUDGET / 1024 + 2048)) ]; echo $?) "2: ... RssAnon grew $g KiB (at most the budget + 2 MiB)"
    fi
    is "$(jget "$out" 'j["after"]')" 0 "2: buffered_bytes is back to 0 after they are gone"
fi
gw_stop BUF
gw_stop BIG

# ================================================================ 8. out of descriptors
mark "8. out of descriptors"
cat > "$TMP/lowfd.sh" <<'SH'
#!/usr/bin/env bash
ulimit -Hn 64 -Sn 64 || exit 111
exec "$@"
SH
chmod +x "$TMP/lowfd.sh"
sed 's/max_buffered_bytes: 4000000/max_connections: 1000/' "$TMP/buf.yaml" > "$TMP/fd.yaml"
gw FD "$TMP/fd.yaml" "$TMP/lowfd.sh"
like "$(cat "$FD_LOG")" 'descriptor limit \(64\) cannot hold max_connections \(1000\)' "8: a start-up warning: the descriptor limit cannot hold max_connections"
out=$("${SEC[@]}" fd_flood "$FD_PORT" 90)
echo "# 90 connections to a gateway with 64 descriptors: $out"
ok $([ "$(jget "$out" 'j["kinds"]["503"]')" -ge 10 ]; echo $?) "8: connections past the descriptor limit get HTTP 503 ($(jget "$out" 'j["kinds"]["503"]') of them)"
is "$(jget "$out" 'j["kinds"]["reset"] + j["kinds"]["eof"] + j["kinds"]["other"]')" 0 "8: ... none is reset or closed without an answer"
like "$(cat "$FD_LOG")" 'out of file descriptors' "8: ... and the log says \"out of file descriptors\""
shed_lines=$(grep -c 'out of file descriptors' "$FD_LOG")
ok $([ "$shed_lines" -le 3 ]; echo $?) "8: ... in one line a second, not one per connection ($shed_lines lines for $(jget "$out" 'j["kinds"]["503"]') connections)"
is "$(jget "$out" 'j["upstream"][0]')" 503 "8: a request whose upstream connection fails at socket() with EMFILE: 503, not 502"
is "$(health "$FD_PORT" pa m1 chat)" "true/0" "8: ... the provider stays healthy (max_failures 1)"
post "http://127.0.0.1:$FD_PORT" m -o /dev/null
is "$(status)" 200 "8: with the descriptors back, requests are served"
gw_stop FD

# ================================================================ 10. TLS truncation
mark "10. TLS truncation"
. "$ROOT/tests/pki.sh"
pki_init "$TMP/pki" "DNS:api.test"
pki_ca ca && pki_leaf good ca 2 || { echo "Bail out! openssl failed: $(tail -3 "$PKI/openssl.log")"; exit 1; }
start_mock TLS --tls-cert "$PKI/good.pem" --tls-key "$PKI/good.key" || exit 1
PT=$(mock_port TLS)
tls_mode() { curl -s -k -o /dev/null -X POST "https://127.0.0.1:$PT/_mock/mode" -d "{\"model\":\"$1\",\"mode\":\"$2\"}"; }
tls_mode cut "ok;close=1"
tls_mode notify "ok;close=1;close_notify=1"
echo "127.0.0.1 api.test" > "$TMP/hosts"
cat > "$TMP/tls.yaml" <<Y
api_keys: ["ck"]
admin_key: "$ADMIN_KEY"
max_retries: 2
max_failures: 1000
hosts_file: $TMP/hosts
providers:
  - name: tls
    base_url: https://api.test:$PT
    ca_file: $PKI/ca.pem
    model_mappings: [{upstream: cut, alias: cut}, {upstream: notify, alias: notify}, {upstream: cut, alias: cutonly}]
  - name: fb
    base_url: http://127.0.0.1:$PB
    priority: 1
    model_mappings: [{upstream: fb, alias: cut}, {upstream: fb, alias: notify}]
Y
gw TLSGW "$TMP/tls.yaml"
body=$(post "http://127.0.0.1:$TLSGW_PORT" notify)
is "$(status)/$(hdr X-Autoswitch-Provider)/$(jget "$body" 'j["choices"][0]["message"]["content"]')" "200/tls/hello from TLS" \
    "10: a close-delimited answer over TLS that ends with close_notify is delivered"
body=$(post "http://127.0.0.1:$TLSGW_PORT" cut)
is "$(status)/$(hdr X-Autoswitch-Provider)" "200/fb" "10: the same answer ending without close_notify: the attempt fails, the gateway fails over"
like "$(grep 'cut #1 tls/cut failed' "$TLSGW_LOG" | tail -1)" 'close_notify' "10: ... the log says why"
body=$(post "http://127.0.0.1:$TLSGW_PORT" cutonly)
is "$(status)" 502 "10: ... and with no other provider: 502"
unlike "$body" 'hello from TLS' "10: ... the possibly cut answer is not passed on"
gw_stop TLSGW

# ================================================================ 2. (the slow one) 408
mark "2. (the slow one) 408"
wait "$TRICKLE"
out=$(cat "$TMP/trickle.json" 2>/dev/null)
is "$(jget "$out" 'j["status"]')" 408 "2: a body trickling a byte a second gets 408"
is "$(jget "$out" '19 <= j["s"] <= 26')" True "2: ... after its 20 s grace, within 26 s ($out)"

gw_stop MAIN
gw_stop NOXFF
done_testing
