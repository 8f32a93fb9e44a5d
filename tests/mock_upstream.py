#!/usr/bin/env python3
"""Mock OpenAI-compatible upstream for the autoswitch integration tests.

Standard library only; shares no code with the gateway.

usage: mock_upstream.py --port 0 [--host 127.0.0.1|::1] [--mode SPEC]
                        [--port-file FILE] [--name NAME] [--models m1,m2]
                        [--tls-cert CERT --tls-key KEY] [--idle-timeout S]
                        [--verbose]

Each request's behaviour ("mode") comes from, first match wins:
  1. the request header  X-Mock-Mode: SPEC
  2. the per-model mode set with POST /_mock/mode for the body's "model"
     (GET .../models uses the pseudo-model "__models__")
  3. the process default (--mode, default "ok"; not used for .../models)
A SPEC is NAME[;key=value]...  e.g. "stream;chunks=5;gap_ms=20",
"status;code=503", "503", "429;retry_after=2".  Values are %-decoded, and
a key without "=value" means key=1.

Control API (never counted as hits):
  POST /_mock/mode      {"model":"m1","mode":"503"} | {"model":"m1","mode":null}
                        | {"default":"ok"}  (null restores the --mode value)
  GET  /_mock/mode      current default and per-model modes
  GET  /_mock/stats     hits per model, per path, total, connections, TLS, open
  GET  /_mock/requests?n=K   the last K request records (max 200 kept)
  POST /_mock/reset     clear counters, records and per-model modes, and
                        restore the default to the --mode value

The list of modes and options is MODES_HELP below (also shown by --help).
"""

import argparse
import base64
import collections
import email.parser
import email.policy
import email.utils
import http.server
import json
import os
import random
import select
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import traceback
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlsplit

MODES_HELP = """\
modes (all accept delay_ms=N: wait N ms before answering):
  ok                 200 JSON (chat.completion for chat; text_completion for
                     /completions; embeddings list for /embeddings; a small
                     JSON with "model" otherwise; model list for /models).
                     chunked=1 close=1 http10=1 body_bytes=N content=TEXT
                     With "stream": true in the body it behaves as stream.
  stream             SSE: chunks=N (default 3, the first one is the role
                     delta, then "tok<i> " contents) gap_ms first_gap_ms
                     stall_after=N stall_ms=M (pause M ms after N events)
                     crlf=1 split=1 split_ms event_bytes=N total_bytes=N
                     no_done=1 close=1
  status             code=NNN (default 500) OpenAI-shaped error body;
                     retry_after=S / retry_after_date=S also work here.
  NNN                (3 digits) same as status;code=NNN
  429                429 + Retry-After (retry_after=S or retry_after_date=S)
  hang               read the request, never answer
  slow               delay_ms (default 2000) then ok / stream
  reset_headers      "HTTP/1.1 200 OK\\r\\nContent-Ty" then TCP RST
                     (pause_ms=50 before the RST)
  reset_stream       SSE headers + chunks (default 2) events then RST
  stream_error_first SSE whose first event is an error object (string=1:
                     the error is a string), then [DONE]
  stream_empty       SSE with only [DONE]
  ok_error           200 JSON whose body is an error object (as some
                     providers answer a failure)
  echo               JSON describing the request (stream: one SSE event)
  bad_head           endless "X-Filler: aaa" header lines (line_bytes=100,
                     max_bytes=64MiB)
  huge               200 JSON of bytes=N (default 200 MiB), Content-Length
  lying_chunked      chunk size 0x100, then 10 bytes, then FIN
  extra_after_body   Content-Length body followed by
                     "HTTP/1.1 200 OK\\r\\n\\r\\nGARBAGE"
  flaky              rate=P (0.3) fail alternately with 500 / RST; seed=N
"""

ENDPOINTS = (
    # (suffix, kind) -- checked in order, "/chat/completions" before
    # "/completions"
    ("/chat/completions", "chat"),
    ("/completions", "completions"),
    ("/embeddings", "embeddings"),
    ("/responses", "responses"),
    ("/moderations", "moderations"),
    ("/images/generations", "images"),
    ("/images/edits", "images_edits"),
    ("/audio/speech", "speech"),
    ("/audio/transcriptions", "transcriptions"),
    ("/audio/translations", "translations"),
)

MAX_RECORDS = 200
NO_MODEL = "(none)"
MODELS_KEY = "__models__"


class ClientGone(Exception):
    """The client went away; stop quietly."""


def form_fields(ctype, body):
    """The text fields of a multipart/form-data body as a dict ("stream"
    "true" becomes True, as in JSON), or None when it does not parse."""
    try:
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body)
        out = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name and not part.get_filename() and name not in out:
                out[name] = part.get_payload(decode=True).decode("utf-8", "replace")
        if out.get("stream") == "true":
            out["stream"] = True
        return out
    except Exception:
        return None


def http_date(offset=0.0):
    return email.utils.formatdate(time.time() + offset, usegmt=True)


def parse_spec(spec):
    """'name;k=v;flag' -> ('name', {'k': 'v', 'flag': '1'})."""
    parts = [p.strip() for p in str(spec).split(";")]
    name = parts[0] if parts and parts[0] else "ok"
    opts = {}
    for p in parts[1:]:
        if not p:
            continue
        if "=" in p:
            k, v = p.split("=", 1)
            opts[k.strip()] = unquote(v.strip())
        else:
            opts[p] = "1"
    return name, opts


def opt_int(opts, key, default):
    try:
        return int(float(opts[key]))
    except (KeyError, ValueError):
        return default


def opt_float(opts, key, default):
    try:
        return float(opts[key])
    except (KeyError, ValueError):
        return default


def opt_bool(opts, key):
    return opts.get(key, "0").lower() not in ("0", "", "false", "no", "off")


def jdump(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


class State:
    def __init__(self, default_mode, name, models):
        self.lock = threading.Lock()
        self.name = name
        self.launch_default = default_mode
        self.default = default_mode
        self.configured_models = list(models)
        self.modes = {}
        self.flaky = {}
        self.open = 0
        self.reset()

    def reset(self):
        # caller holds the lock, or we are in __init__
        self.default = self.launch_default
        self.modes = {}
        self.flaky = {}
        self.hits = {}
        self.paths = {}
        self.total = 0
        self.connections = 0
        self.tls_full = 0
        self.tls_resumed = 0
        self.tls_failed = 0
        self.seen = set()
        self.records = collections.deque(maxlen=MAX_RECORDS)

    def model_list(self):
        names = set(self.configured_models) | self.seen
        names |= {m for m in self.modes if m != MODELS_KEY}
        names.discard(NO_MODEL)
        names.discard(MODELS_KEY)
        return sorted(names)

    def stats(self):
        return {
            "hits": dict(self.hits),
            "paths": dict(self.paths),
            "total": self.total,
            "connections": self.connections,
            "tls_full_handshakes": self.tls_full,
            "tls_resumed": self.tls_resumed,
            "tls_failed_handshakes": self.tls_failed,
            "open": self.open,
            "default": self.default,
            "modes": dict(self.modes),
            "name": self.name,
        }


STATE = None
VERBOSE = False


def vlog(msg):
    if VERBOSE:
        try:
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


class MockServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 4096
    allow_reuse_address = True
    tls = False

    def server_bind(self):
        # skip HTTPServer.server_bind: its getfqdn() may do slow DNS lookups
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port

    def process_request(self, request, client_address):
        with STATE.lock:
            STATE.connections += 1
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        with STATE.lock:
            STATE.open += 1
        try:
            if self.tls:
                try:
                    request.settimeout(10)
                    request.do_handshake()
                    request.settimeout(None)
                except (OSError, ValueError):
                    with STATE.lock:
                        STATE.tls_failed += 1
                    self.shutdown_request(request)
                    return
                with STATE.lock:
                    if request.session_reused:
                        STATE.tls_resumed += 1
                    else:
                        STATE.tls_full += 1
            super().process_request_thread(request, client_address)
        finally:
            with STATE.lock:
                STATE.open -= 1

    def shutdown_request(self, request):
        # OpenSSL forgets a session whose connection ended without
        # close_notify; real servers send it, so the mock does too, or
        # clients could never resume.
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(0.5)
                request.unwrap()
            except (OSError, ValueError, ssl.SSLError):
                pass
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        if VERBOSE:
            traceback.print_exc()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-upstream"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = None  # set from --idle-timeout

    # ---- plumbing -------------------------------------------------------

    def log_message(self, format, *args):  # noqa: A002 (signature fixed)
        vlog("%s - %s" % (STATE.name, format % args))

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ClientGone, ConnectionError, ssl.SSLError, TimeoutError, OSError):
            self.close_connection = True
        except Exception:  # a bug in the mock: keep the process alive
            if VERBOSE:
                traceback.print_exc()
            self.close_connection = True

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    def send(self, data):
        try:
            self.connection.sendall(data)
        except (ConnectionError, ssl.SSLError, OSError) as e:
            raise ClientGone() from e

    def head(self, code, headers, reason=None, version="HTTP/1.1"):
        if reason is None:
            try:
                reason = HTTPStatus(code).phrase
            except ValueError:
                reason = "Status %d" % code
        lines = ["%s %d %s" % (version, code, reason),
                 "Date: " + http_date(),
                 "Server: mock-upstream",
                 "X-Mock-Name: " + STATE.name]
        if STATE.ratelimit:
            # as OpenAI sends them: what the account may do, what is left
            lines += ["x-ratelimit-limit-requests: %d" % STATE.ratelimit,
                      "X-RateLimit-Remaining-Requests: %d" % (STATE.ratelimit - 1)]
        names = {k.lower() for k, _ in headers}
        for k, v in headers:
            lines.append("%s: %s" % (k, v))
        if self.close_connection and "connection" not in names:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def sleep_ms(self, ms):
        """Sleep, but notice a client that closes meanwhile (plain TCP)."""
        if ms <= 0:
            return
        deadline = time.monotonic() + ms / 1000.0
        if self.server.tls:
            time.sleep(ms / 1000.0)
            return
        poller = select.poll()
        poller.register(self.connection, select.POLLIN | select.POLLHUP | select.POLLERR)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ev = poller.poll(left * 1000.0)
            if not ev:
                continue
            try:
                peek = self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError as e:
                raise ClientGone() from e
            if not peek:
                raise ClientGone()
            # pipelined data: leave it alone and just sleep the rest
            time.sleep(max(0.0, deadline - time.monotonic()))
            return

    def rst(self):
        """Abort the connection with a TCP RST."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            fd = sock.detach()
            os.close(fd)
        except OSError:
            pass

    def finish_close(self):
        """Close-delimited body: send FIN now."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    # ---- request --------------------------------------------------------

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ClientGone()
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise ValueError("bad chunk size")
                if size == 0:
                    while True:
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    return bytes(out)
                data = self.rfile.read(size)
                if len(data) < size:
                    raise ClientGone()
                out += data
                self.rfile.readline(65537)
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        n = int(cl.strip())
        if n < 0:
            raise ValueError("negative Content-Length")
        data = self.rfile.read(n) if n else b""
        if len(data) < n:
            raise ClientGone()
        return data

    def dispatch(self):
        url = urlsplit(self.path)
        path = url.path or "/"
        try:
            body = self.read_body()
        except ValueError as e:
            self.close_connection = True
            self.send_json(400, {"error": {"message": "mock: %s" % e, "type": "invalid_request_error",
                                           "param": None, "code": 400}}, {})
            return
        self.body = body
        self.url = url
        if path.startswith("/_mock/") or path == "/_mock":
            self.control(path, url, body)
            return

        j = None
        ctype = self.headers.get("Content-Type") or ""
        if body and ctype.lower().startswith("multipart/form-data"):
            j = form_fields(ctype, body)
        elif body:
            try:
                j = json.loads(body)
            except ValueError:
                j = None
        model = j.get("model") if isinstance(j, dict) else None
        if not isinstance(model, str):
            model = None
        want_stream = isinstance(j, dict) and j.get("stream") is True

        kind = None
        for suffix, k in ENDPOINTS:
            if path.endswith(suffix):
                kind = k
                break
        if path.endswith("/models"):
            kind = "models"
        if kind == "models":
            route = "models" if self.command in ("GET", "HEAD") else "405"
            key = MODELS_KEY
        else:
            route = kind if kind is not None else "404"
            if kind is not None and self.command != "POST":
                route = "405"
            key = model if model is not None else NO_MODEL

        header_mode = self.headers.get("X-Mock-Mode")
        with STATE.lock:
            STATE.hits[key] = STATE.hits.get(key, 0) + 1
            STATE.paths[path] = STATE.paths.get(path, 0) + 1
            STATE.total += 1
            if model is not None:
                STATE.seen.add(model)
            if header_mode is not None and header_mode.strip():
                spec = header_mode.strip()
            elif key in STATE.modes:
                spec = STATE.modes[key]
            elif route == "models":
                spec = "ok"
            else:
                spec = STATE.default
            STATE.records.append({
                "method": self.command,
                "path": self.path,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body": body.decode("utf-8", "replace"),
                "body_b64": base64.b64encode(body).decode(),
                "model": model,
                "mode": spec,
                "time": time.time(),
            })
        vlog("%s %s %s model=%s mode=%s" % (STATE.name, self.command, self.path, model, spec))

        if route == "404":
            self.send_json(404, self.error_obj(404, "mock: unknown path %s" % path,
                                               "invalid_request_error"), {})
            return
        if route == "405":
            self.send_json(405, self.error_obj(405, "mock: method not allowed",
                                               "invalid_request_error"), {})
            return
        self.behave(spec, route, model, want_stream, j)

    # ---- control API ----------------------------------------------------

    def control(self, path, url, body):
        def reply(code, obj):
            self.send_json(code, obj, {})

        if path == "/_mock/stats" and self.command == "GET":
            with STATE.lock:
                reply(200, STATE.stats())
            return
        if path == "/_mock/requests" and self.command == "GET":
            q = parse_qs(url.query)
            try:
                n = int(q.get("n", ["20"])[0])
            except ValueError:
                n = 20
            n = max(0, min(n, MAX_RECORDS))
            with STATE.lock:
                recs = list(STATE.records)
            reply(200, recs[-n:] if n else [])
            return
        if path == "/_mock/reset" and self.command == "POST":
            with STATE.lock:
                STATE.reset()
            reply(200, {"ok": True})
            return
        if path == "/_mock/mode" and self.command == "GET":
            with STATE.lock:
                reply(200, {"default": STATE.default, "modes": dict(STATE.modes)})
            return
        if path == "/_mock/mode" and self.command == "POST":
            try:
                j = json.loads(body or b"{}")
                if not isinstance(j, dict):
                    raise ValueError("not an object")
            except ValueError as e:
                reply(400, {"ok": False, "error": "bad JSON: %s" % e})
                return
            with STATE.lock:
                if "default" in j:
                    d = j["default"]
                    STATE.default = STATE.launch_default if d is None else str(d)
                if "model" in j:
                    m = str(j["model"])
                    mode = j.get("mode")
                    if mode is None:
                        STATE.modes.pop(m, None)
                    else:
                        STATE.modes[m] = str(mode)
                    STATE.flaky.clear()
                reply(200, {"ok": True, "default": STATE.default, "modes": dict(STATE.modes)})
            return
        reply(404, {"ok": False, "error": "unknown control path %s" % path})

    # ---- responses ------------------------------------------------------

    @staticmethod
    def error_obj(code, message, etype="mock_error"):
        return {"error": {"message": message, "type": etype, "param": None, "code": code}}

    def send_json(self, code, obj, opts, extra=(), reason=None):
        body = obj if isinstance(obj, bytes) else jdump(obj)
        self.send_body(code, "application/json", body, opts, extra, reason)

    def send_body(self, code, ctype, body, opts, extra=(), reason=None):
        headers = [("Content-Type", ctype)] + list(extra)
        version = "HTTP/1.0" if opt_bool(opts, "http10") else "HTTP/1.1"
        if self.command == "HEAD":
            headers.append(("Content-Length", str(len(body))))
            self.send(self.head(code, headers, reason, version))
            return
        if opt_bool(opts, "close") or version == "HTTP/1.0":
            self.close_connection = True
            self.send(self.head(code, headers, reason, version) + body)
            self.finish_close()
            return
        if opt_bool(opts, "chunked"):
            headers.append(("Transfer-Encoding", "chunked"))
            self.send(self.head(code, headers, reason))
            n = len(body)
            cuts = sorted({0, n // 3, (2 * n) // 3, n})
            for a, b in zip(cuts, cuts[1:]):
                if b > a:
                    self.send(b"%x\r\n" % (b - a) + body[a:b] + b"\r\n")
                    time.sleep(0.002)
            self.send(b"0\r\n\r\n")
            return
        headers.append(("Content-Length", str(len(body))))
        self.send(self.head(code, headers, reason) + body)

    def ok_body(self, route, model, opts):
        name = STATE.name
        content = opts.get("content", "hello from %s" % name)
        now = int(time.time())

        def build(pad):
            text = content + pad
            if route == "chat":
                ntok = max(1, len(text.split()))
                return {"id": "chatcmpl-mock", "object": "chat.completion", "created": now,
                        "model": model,
                        "choices": [{"index": 0,
                                     "message": {"role": "assistant", "content": text},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": ntok,
                                  "total_tokens": 5 + ntok}}
            if route == "completions":
                ntok = max(1, len(text.split()))
                return {"id": "cmpl-mock", "object": "text_completion", "created": now,
                        "model": model,
                        "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": ntok,
                                  "total_tokens": 5 + ntok}}
            if route == "embeddings":
                o = {"object": "list",
                     "data": [{"object": "embedding", "index": 0,
                               "embedding": [0.1, 0.2, 0.3]}],
                     "model": model, "usage": {"prompt_tokens": 1, "total_tokens": 1}}
                if pad:
                    o["pad"] = pad
                return o
            if route == "models":
                o = {"object": "list",
                     "data": [{"id": m, "object": "model", "created": 0, "owned_by": name}
                              for m in STATE.model_list()]}
                if pad:
                    o["pad"] = pad
                return o
            if route in ("transcriptions", "translations"):
                return {"text": text}
            return {"object": "mock." + route, "model": model, "name": name, "content": text}

        body = jdump(build(""))
        want = opt_int(opts, "body_bytes", 0)
        if want > len(body):
            body = jdump(build("x" * (want - len(body))))
        return body

    # -- SSE --

    def chunk_events(self, model, opts, count, finish=True):
        """Yield the SSE payload strings of a normal completion stream."""
        created = int(time.time())
        ev_bytes = opt_int(opts, "event_bytes", 0)

        def ev(i, last):
            if i == 0:
                delta = {"role": "assistant", "content": ""}
            else:
                delta = {"content": "tok%d " % i}
            o = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": created,
                 "model": model,
                 "choices": [{"index": 0, "delta": delta,
                              "finish_reason": "stop" if last else None}]}
            s = json.dumps(o, separators=(",", ":"))
            if ev_bytes > len(s) + 8:
                pad = "x" * (ev_bytes - len(s) - 8)
                if i == 0:
                    delta["content"] = pad
                else:
                    delta["content"] += pad
                s = json.dumps(o, separators=(",", ":"))
            return s

        i = 0
        while count is None or i < count:
            yield ev(i, finish and count is not None and count > 1 and i == count - 1)
            i += 1

    def stream(self, events, opts, done=True, abort=False):
        """Send an SSE response.  events: iterable of payload strings."""
        close = opt_bool(opts, "close")
        crlf = opt_bool(opts, "crlf")
        split = opt_bool(opts, "split")
        split_ms = opt_int(opts, "split_ms", 3)
        gap = opt_int(opts, "gap_ms", 0)
        total = opt_int(opts, "total_bytes", 0)
        nl = "\r\n" if crlf else "\n"
        headers = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")]
        if close:
            self.close_connection = True
        else:
            headers.append(("Transfer-Encoding", "chunked"))
        self.send(self.head(200, headers))
        self.sleep_ms(opt_int(opts, "first_gap_ms", 0))

        state = {"n": 0}

        def put(payload):
            data = ("data: " + payload + nl + nl).encode()
            if not close:
                data = b"%x\r\n" % len(data) + data + b"\r\n"
            if split and len(data) >= 4:
                i = state["n"]
                n = len(data)
                c1 = 1 + (3 + 5 * i) % (n - 2)
                c2 = 1 + (7 + 11 * i) % (n - 2)
                cuts = sorted({0, c1, c2, n})
                for a, b in zip(cuts, cuts[1:]):
                    self.send(data[a:b])
                    if b < n:
                        time.sleep(split_ms / 1000.0)
            else:
                self.send(data)
            state["n"] += 1

        sent = 0
        first = True
        stall_after = opt_int(opts, "stall_after", 0)
        for payload in events:
            if not first and gap:
                time.sleep(gap / 1000.0)
            if stall_after and state["n"] == stall_after:
                time.sleep(opt_int(opts, "stall_ms", 5000) / 1000.0)
            first = False
            put(payload)
            sent += len(payload) + 8
            if total and sent >= total:
                break
        if abort:
            time.sleep(opt_int(opts, "pause_ms", 50) / 1000.0)
            self.rst()
            return
        if done and not opt_bool(opts, "no_done"):
            if gap and not first:
                time.sleep(gap / 1000.0)
            put("[DONE]")
        if close:
            self.finish_close()
        else:
            self.send(b"0\r\n\r\n")

    # ---- behaviours -----------------------------------------------------

    def behave(self, spec, route, model, want_stream, j):
        name, opts = parse_spec(spec)
        delay = opt_int(opts, "delay_ms", 2000 if name == "slow" else 0)
        if name != "hang":
            self.sleep_ms(delay)

        if name == "flaky":
            name = self.flaky_pick(spec, opts)

        if name in ("ok", "slow"):
            if want_stream:
                name = "stream"
            else:
                self.send_json(200, self.ok_body(route, model, opts), opts)
                return
        if name == "stream":
            total = opt_int(opts, "total_bytes", 0)
            count = None if total else max(0, opt_int(opts, "chunks", 3))
            self.stream(self.chunk_events(model, opts, count), opts)
            return
        if name == "status" or name == "429" or (len(name) == 3 and name.isdigit()):
            code = 429 if name == "429" else (opt_int(opts, "code", 500) if name == "status"
                                               else int(name))
            self.status(code, opts)
            return
        if name == "hang":
            self.hang()
            return
        if name == "reset_headers":
            self.send(b"HTTP/1.1 200 OK\r\nContent-Ty")
            time.sleep(opt_int(opts, "pause_ms", 50) / 1000.0)
            self.rst()
            return
        if name == "reset":  # used by flaky: RST without a byte
            self.rst()
            return
        if name == "reset_stream":
            count = max(0, opt_int(opts, "chunks", 2))
            self.stream(self.chunk_events(model, opts, count, finish=False), opts, abort=True)
            return
        if name == "stream_error_first":
            if opt_bool(opts, "string"):
                err = {"error": "mock stream error"}
            else:
                err = {"error": {"message": "mock stream error", "type": "server_error",
                                 "code": "mock"}}
            self.stream([json.dumps(err, separators=(",", ":"))], opts)
            return
        if name == "stream_empty":
            self.stream([], opts)
            return
        if name == "ok_error":
            self.send_json(200, {"error": {"message": "mock error in a 200", "type": "server_error",
                                           "code": None}}, opts)
            return
        if name == "echo":
            obj = self.echo_obj(model)
            if want_stream:
                self.stream([json.dumps(obj, separators=(",", ":"))], opts)
            else:
                self.send_json(200, obj, opts)
            return
        if name == "bad_head":
            self.bad_head(opts)
            return
        if name == "huge":
            self.huge(model, opts)
            return
        if name == "lying_chunked":
            self.close_connection = True
            self.send(self.head(200, [("Content-Type", "application/json"),
                                      ("Transfer-Encoding", "chunked")])
                      + b"100\r\n" + b"0123456789")
            time.sleep(opt_int(opts, "pause_ms", 50) / 1000.0)
            self.finish_close()
            return
        if name == "extra_after_body":
            body = self.ok_body(route, model, opts)
            self.send(self.head(200, [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
                      + body + b"HTTP/1.1 200 OK\r\n\r\nGARBAGE")
            return
        self.send_json(400, self.error_obj(400, "mock: unknown mode %r" % name,
                                           "invalid_request_error"), {})

    def flaky_pick(self, spec, opts):
        rate = opt_float(opts, "rate", 0.3)
        with STATE.lock:
            st = STATE.flaky.get(spec)
            if st is None:
                rng = random.Random(opt_int(opts, "seed", 0)) if "seed" in opts else random
                st = STATE.flaky[spec] = [rng, 0]
            fail = st[0].random() < rate
            if fail:
                kind = "500" if st[1] % 2 == 0 else "reset"
                st[1] += 1
                return kind
        return "ok"

    def status(self, code, opts):
        extra = []
        if "retry_after" in opts:
            extra.append(("Retry-After", opts["retry_after"]))
        elif "retry_after_date" in opts:
            extra.append(("Retry-After", http_date(opt_float(opts, "retry_after_date", 0))))
        body = jdump(self.error_obj(code, "mock status %d" % code))
        if code in (204, 304) or code < 200:
            self.send(self.head(code, extra + [("Content-Length", "0")]))
            return
        self.send_body(code, "application/json", body, opts, extra)

    def hang(self):
        self.close_connection = True
        sock = self.connection
        try:
            sock.settimeout(None)
            while True:
                data = sock.recv(65536)
                if not data:
                    return
        except (OSError, ValueError):
            return

    def echo_obj(self, model):
        hdrs = {}
        for k, v in self.headers.items():
            hdrs[k] = hdrs[k] + ", " + v if k in hdrs else v
        try:
            text = self.body.decode("utf-8")
            enc = "utf-8"
        except UnicodeDecodeError:
            text = self.body.decode("latin-1")
            enc = "latin-1"
        return {"method": self.command, "path": self.path,
                "request_version": self.request_version,
                "headers": hdrs,
                "header_list": [[k, v] for k, v in self.headers.items()],
                "body": text, "body_encoding": enc,
                "body_b64": base64.b64encode(self.body).decode(),
                "body_len": len(self.body), "model": model, "name": STATE.name}

    def bad_head(self, opts):
        self.close_connection = True
        line = b"X-Filler: " + b"a" * max(1, opt_int(opts, "line_bytes", 100)) + b"\r\n"
        limit = opt_int(opts, "max_bytes", 64 << 20)
        batch = line * max(1, 65536 // len(line))
        self.connection.settimeout(60)
        self.send(b"HTTP/1.1 200 OK\r\n")
        sent = 0
        while sent < limit:
            piece = batch[:limit - sent]
            self.send(piece)
            sent += len(piece)
        self.finish_close()

    def huge(self, model, opts):
        n = opt_int(opts, "bytes", 200 << 20)
        self.connection.settimeout(60)
        prefix = b'{"object":"mock.huge","model":' + json.dumps(model).encode() + b',"pad":"'
        suffix = b'"}'
        self.send(self.head(200, [("Content-Type", "application/json"),
                                  ("Content-Length", str(n))]))
        if n < len(prefix) + len(suffix):
            self.send(b" " * n)
            return
        self.send(prefix)
        left = n - len(prefix) - len(suffix)
        block = b"x" * 262144
        while left > 0:
            k = min(left, len(block))
            self.send(block[:k])
            left -= k
        self.send(suffix)
        self.connection.settimeout(self.timeout)


def main():
    global STATE, VERBOSE
    ap = argparse.ArgumentParser(description="mock OpenAI-compatible upstream",
                                 epilog=MODES_HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--mode", default="ok")
    ap.add_argument("--port-file")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--name", default="mock")
    ap.add_argument("--models", default="", help="comma-separated model ids for /v1/models")
    ap.add_argument("--idle-timeout", type=float, default=None,
                    help="close idle keep-alive connections after S seconds")
    ap.add_argument("--ratelimit", type=int, default=0,
                    help="send x-ratelimit-limit-requests: N (and remaining N-1) on every answer")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    VERBOSE = args.verbose
    host = args.host
    if host == "localhost":
        host = "127.0.0.1"
    if host != "::1" and not host.startswith("127."):
        ap.error("--host must be a loopback address (127.x.x.x or ::1)")
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")

    models = [m for m in args.models.split(",") if m]
    STATE = State(args.mode, args.name, models)
    STATE.ratelimit = args.ratelimit
    Handler.timeout = args.idle_timeout

    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else 65536
        want = min(want, 65536)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass
    try:
        threading.stack_size(1 << 20)
    except (ValueError, RuntimeError):
        pass

    if ":" in host:
        MockServer.address_family = socket.AF_INET6
    server = MockServer((host, args.port), Handler)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)
        server.tls = True
    port = server.server_address[1]

    if args.port_file:
        tmp = "%s.tmp.%d" % (args.port_file, os.getpid())
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    shown = "[%s]" % host if ":" in host else host
    print("listening %s:%d" % (shown, port), flush=True)

    def stop(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    try:
        server.server_close()
    except OSError:
        pass
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    # daemon threads may be blocked in hang/streams: leave without joining
    os._exit(0)


if __name__ == "__main__":
    main()
