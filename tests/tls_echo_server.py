"""A tiny HTTPS (TLS 1.2) server for the TLS transport tests.

usage: tls_echo_server.py --port-file FILE [--port N] [--name NAME]
                          (--cert PEM --key PEM [--client-ca PEM] | --plain)

Listens on 127.0.0.1, writes the port to FILE once it accepts, serves
keep-alive HTTP/1.1 with one thread per connection.  Session resumption is
OpenSSL's default server session cache (BearSSL resumes by session id);
every handshake is counted as full or resumed.

Paths:
  GET  /hello          "hello from NAME"
  GET  /stats          "full=N resumed=M"
  GET  /sni            "sni=NAME" (the SNI the client sent), "sni=-" for none
  GET  /big?n=N        N bytes, byte i = i % 251
  GET  /slow           the hello answer after 0.5 s
  POST /sink           reads the body, answers "len=N sum=S" (S: byte sum mod 2^32)
  POST /early          answers 413 at once without reading the body, then
                       drops the connection (no close_notify)
  POST /early_hold     the same, but holds the connection open, unread, for
                       5 s before dropping it: the client must read the
                       answer while its upload is stuck (full duplex)
  GET  /close          body delimited by the end of the connection, which
                       ends with no close_notify (as many servers do)
  GET  /close_notify   the same, ending with a proper close_notify

--client-ca: demand a client certificate, so a client without one gets a
fatal alert.
--plain: no TLS at all; whatever arrives gets "HTTP/1.1 400 Bad Request"
and the connection is closed (a plain HTTP server on the port).
Standard library only.
"""
import argparse
import os
import socket
import ssl
import threading
import time

HEAD_MAX = 65536
SLOW_SECONDS = 0.5
HOLD_SECONDS = 5
IO_TIMEOUT = 20

stats_lock = threading.Lock()
stats = {"full": 0, "resumed": 0}


def read_head(conn, pending):
    while b"\r\n\r\n" not in pending:
        if len(pending) > HEAD_MAX:
            return None, b""
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        pending += chunk
    head, rest = pending.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def parse(head):
    lines = head.split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return method, target, headers


def answer(conn, status, body, close=False, length=True):
    head = "HTTP/1.1 %s\r\nContent-Type: text/plain\r\n" % status
    if length:
        head += "Content-Length: %d\r\n" % len(body)
    if close:
        head += "Connection: close\r\n"
    conn.sendall(head.encode() + b"\r\n" + body)


def read_body(conn, rest, n):
    total, acc = 0, 0
    data = rest[:n]
    rest = rest[n:]
    while True:
        total += len(data)
        acc = (acc + sum(data)) & 0xFFFFFFFF
        if total >= n:
            return total, acc, rest
        data = conn.recv(min(1 << 20, n - total))
        if not data:
            return total, acc, b""


def big_body(n):
    pattern = bytes(range(251))
    reps = n // 251 + 1
    return (pattern * reps)[:n]


def drop(conn):
    """End the TCP connection without close_notify."""
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()


def serve_tls(conn, name):
    pending = b""
    while True:
        head, pending = read_head(conn, pending)
        if head is None:
            return
        method, target, headers = parse(head)
        path, _, query = target.partition("?")
        length = int(headers.get("content-length", "0"))
        if path in ("/early", "/early_hold"):
            answer(conn, "413 Payload Too Large", b"too large\n", close=True)
            if path == "/early_hold":
                time.sleep(HOLD_SECONDS)
            drop(conn)
            return
        if length:
            got, acc, pending = read_body(conn, pending, length)
            if got < length:
                return
        if path == "/sni":
            answer(conn, "200 OK", ("sni=%s" % (getattr(conn, "sni_name", None) or "-")).encode())
        elif path == "/stats":
            with stats_lock:
                body = "full=%d resumed=%d" % (stats["full"], stats["resumed"])
            answer(conn, "200 OK", body.encode())
        elif path == "/big":
            n = int(query.partition("=")[2] or "0")
            answer(conn, "200 OK", big_body(n))
        elif path == "/sink":
            answer(conn, "200 OK", ("len=%d sum=%d" % (got, acc)).encode() if length else b"len=0 sum=0")
        elif path in ("/close", "/close_notify"):
            answer(conn, "200 OK", b"until close\n", close=True, length=False)
            if path == "/close_notify":
                try:
                    conn.unwrap()  # sends close_notify, waits for the client's
                except (OSError, ValueError):
                    pass
            drop(conn)
            return
        else:
            if path == "/slow":
                time.sleep(SLOW_SECONDS)
            answer(conn, "200 OK", ("hello from %s\n" % name).encode())


def remember_sni(sock, server_name, _ctx):
    sock.sni_name = server_name


def handle_tls(ctx, raw, name):
    raw.settimeout(IO_TIMEOUT)
    try:
        conn = ctx.wrap_socket(raw, server_side=True)
    except (OSError, ssl.SSLError):
        raw.close()  # e.g. the client rejected our certificate
        return
    with stats_lock:
        stats["resumed" if conn.session_reused else "full"] += 1
    try:
        serve_tls(conn, name)
        # OpenSSL drops a session from its cache when the connection ends
        # without our close_notify; real servers send it.
        conn.settimeout(1)
        conn.unwrap()
    except (OSError, ssl.SSLError, ValueError):
        pass
    finally:
        conn.close()


def handle_plain(raw):
    raw.settimeout(2)
    try:
        raw.recv(4096)
        raw.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    except OSError:
        pass
    raw.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--name", default="tls")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--plain", action="store_true")
    ap.add_argument("--client-ca", help="require a client certificate from this CA")
    a = ap.parse_args()

    ctx = None
    if not a.plain:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(a.cert, a.key)
        ctx.sni_callback = remember_sni
        if a.client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(a.client_ca)

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.port))
    ls.listen(64)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(tmp, a.port_file)

    while True:
        raw, _ = ls.accept()
        if a.plain:
            target, args = handle_plain, (raw,)
        else:
            target, args = handle_tls, (ctx, raw, a.name)
        threading.Thread(target=target, args=args, daemon=True).start()


if __name__ == "__main__":
    main()
