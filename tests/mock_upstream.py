#!/usr/bin/env python3
"""Mock OpenAI-compatible (and Anthropic Messages) upstream for the
autoswitch integration tests.

Standard library only; shares no code with the gateway.

usage: mock_upstream.py --port 0 [--host 127.0.0.1|::1] [--mode SPEC]
                        [--port-file FILE] [--name NAME] [--models m1,m2]
                        [--tls-cert CERT --tls-key KEY] [--idle-timeout S]
                        [--ratelimit N] [--require-auth KEY]...
                        [--deny-header NAME]...
                        [--anthropic-auth x-api-key|bearer|either]
                        [--no-count-tokens] [--verbose]

Two dialects, by path:
  anthropic  POST .../v1/messages and .../v1/messages/count_tokens: answers,
             streams and errors in the shapes of Anthropic's Messages API
  openai     everything else (.../chat/completions, .../models, ...)

Authentication (off by default): with --require-auth KEY (repeatable, any
of the keys is accepted) an OpenAI route answers 401 unless the request has
"Authorization: Bearer KEY"; an Anthropic route unless it has "x-api-key:
KEY" (--anthropic-auth bearer: "Authorization: Bearer KEY" instead; either:
both are accepted).  Checked after the path (unknown paths stay 404) and
before the mode runs.  --deny-header NAME (repeatable) answers the same 401
to a request that carries the header NAME at all (as an upstream answers a
credential or an organization that is not the gateway's).
--no-count-tokens makes .../v1/messages/count_tokens an unknown path (404).

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
  GET  /_mock/stats     hits per model, per path, total, connections, TLS, open,
                        and "once": [{"model","mode","count"}] (once counters)
  GET  /_mock/requests?n=K   the last K request records (max 200 kept)
  POST /_mock/reset     clear counters (the once counters too), records and
                        per-model modes, and restore the default to the
                        --mode value
Setting a model's mode (POST /_mock/mode with "model") also clears that
model's once counters.

A request record (GET /_mock/requests) has:
  method, path (with the query string), query, headers ([name, value] in
  order, names as sent), header_map ({lower-case name: value}, repeated
  headers joined with ", "), body (text), body_b64, json (the parsed body:
  JSON, or the text fields of a multipart form; null otherwise), model,
  stream (body "stream" is true), route (chat, completions, messages,
  count_tokens, models, ..., 404, 405), dialect (openai|anthropic), mode
  (the spec chosen for the request), effective_mode (the spec that ran after
  once/flap/flaky picked one; null until then), status (the HTTP status the
  mock sent, null when none was), auth_ok (null when no --require-auth),
  has_stream_options, stream_options (the body's value), prefill (the body's
  "messages" ends with an assistant message), prefill_text (its text: a
  string content, or the "text" of its text parts/blocks joined),
  prefill_prefix (that message's "prefix" value, null when absent),
  continue_final_message, add_generation_prompt (the top-level values, null
  when absent), continued_from (answer words the prefill covered: the answer
  starts at word continued_from+1), time.

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
from urllib.parse import parse_qs, quote, unquote, urlsplit

MODES_HELP = """\
modes (all accept delay_ms=N: wait N ms before answering):
  ok                 200 JSON (chat.completion for chat; text_completion for
                     /completions; embeddings list for /embeddings; a small
                     JSON with "model" otherwise; model list for /models).
                     chunked=1 close=1 http10=1 body_bytes=N content=TEXT
                     close=1 ends the body with the connection; over TLS
                     that end carries no close_notify (a truncation
                     attack looks the same) unless close_notify=1 is
                     given too (then close_notify, then the TCP end)
                     With "stream": true in the body it behaves as stream.
  stream             SSE: chunks=N (default 3, the first one is the role
                     delta, then "tok<i> " contents) gap_ms first_gap_ms
                     stall_after=N stall_ms=M (pause M ms after N events)
                     crlf=1 split=1 split_ms event_bytes=N total_bytes=N
                     no_done=1 close=1
  status             code=NNN (default 500) OpenAI-shaped error body;
                     retry_after=S / retry_after_date=S also work here;
                     message=TEXT replaces the error message ("mock status
                     NNN"), e.g. to see what a gateway copies of it.
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
  reset              TCP RST without a byte
  once               stateful: counted per (model, whole spec string); the
                     first times=K (default 1) requests run first=SPEC
                     (default 500), later ones then=SPEC (default ok).  In
                     first=/then= write "," for ";" (first=stream,cut_after=3);
                     the once's other options are added to both unless they
                     set them (once;first=429;retry_after=1 -> "429;
                     retry_after=1", then "ok;retry_after=1").  E.g.
                     once;first=503  once;first=reset  once;first=hang
                     once;first=429;retry_after=1  once;first=500;times=3
  flap               period_ms=P (default 1000): fails while
                     (Unix time in ms) mod P < P/2 (the first half of every
                     period, periods aligned to the epoch), else works; the
                     failure is fail=SPEC (default 500), the success
                     then=SPEC (default ok); "," for ";" and extra options
                     as in once
  ctx400             400 context-length error, OpenAI shape:
                     {"error":{"message":"This model's maximum context length
                     is 8192 tokens. However, your messages resulted in 9000
                     tokens.","type":"invalid_request_error","param":
                     "messages","code":"context_length_exceeded"}}
                     form=message: {"error":{"message":<same>,"type":
                     "invalid_request_error"}} (no param, no code)
                     form=prompt_too_long: {"error":{"message":"prompt is too
                     long: 210000 tokens > 200000 maximum","type":
                     "invalid_request_error"}}
                     status=NNN sends another status (default 400).
                     Anthropic routes: {"type":"error","error":{"type":
                     "invalid_request_error","message":"prompt is too long:
                     210000 tokens > 200000 maximum"}} (any form)
  policy400          400 {"error":{"message":"Your request was rejected as a
                     result of our safety system.","type":
                     "invalid_request_error","param":"prompt","code":
                     "content_policy_violation"}}; Anthropic routes:
                     invalid_request_error "Output blocked by content
                     filtering policy"; status=NNN as in ctx400
  no_count_tokens    .../v1/messages/count_tokens answers 404 (Anthropic
                     not_found_error); on any other route the same as ok.
                     The option no_count_tokens=1 does the same in any mode.

word answers (OpenAI answers, streams or not, whose mode has words=N,
cut_after=N or error_after=N, or whose chat body has a prefill; every
Anthropic /v1/messages answer; otherwise the answers stay "hello from NAME"
and "tok<i> "):
  The full answer is W = words=N (default 8) words "w1 ".."wW " (each word
  followed by one space; Anthropic: chunks=N is an alias of words=N).  A
  stream sends one word per content event (OpenAI: after the role-only
  delta; the last word's chunk carries finish_reason "stop"); a non-stream
  answer is the concatenation, "w1 w2 ... wW " (unless content=TEXT).
  Prefill: when the body's messages end with an assistant message whose
  text P splits (on whitespace) into w1..wk, the answer is only wk+1..wW
  (events "wk+1 ", ...); when P ends in a part of word k ("w1 w2 w" or
  "w1 w" + "2"), the rest of that word comes first ("3 ").  Any other P:
  the answer from w1.  Nothing left: OpenAI streams send the role delta and
  one chunk with an empty delta and finish_reason; non-streams "".
  A prefill is an assistant last message on chat (OpenAI) and messages
  (Anthropic) routes; its checks run before the mode (also on error modes):
    prefill=reject       400 {"error":{"message":"assistant prefill is not
                         supported","type":"invalid_request_error"}}
                         (Anthropic shape on /v1/messages)
    prefill=need_prefix  400 unless that message has "prefix": true
                         (message: the last assistant message needs
                         "prefix": true)
    prefill=need_continue  400 unless top-level "continue_final_message": true
                         (message: the last message is an assistant message:
                         set continue_final_message)
    prefill=no_trailing_space  400 when the prefill text ends in whitespace
                         (message: messages: final assistant content cannot
                         end with trailing whitespace, as Anthropic's)
    The 400 bodies are {"error":{"message":M,"type":"invalid_request_error"}}
    (Anthropic: {"type":"error","error":{"type":"invalid_request_error",
    "message":M}}); requests without a prefill pass.

more stream options (OpenAI dialect):
  first_token_ms=N     after the role-only delta, wait N ms before the first
                       content event, sending ": keep-alive\n\n" every
                       keepalive_ms=K (default 500) ms meanwhile (at K, 2K, ...
                       while < N; none when N <= K)
  cut_after=N          N content events (words), then TCP RST (pause_ms,
                       default 50, before it); no finish_reason, no [DONE].
                       cut=close: FIN instead of RST (a chunked stream ends
                       without its 0-size terminator)
  error_after=N        N content events, then data: {"error":{"message":
                       "mock error after N events","type":"server_error"}},
                       then [DONE]
  finish_no_done=1     same as no_done=1: the last chunk has finish_reason
                       "stop", no [DONE], then the chunked terminator
  id=TEXT created=N    the "id" (default "chatcmpl-mock") and "created"
                       (default: now) of every chunk, and of a chat JSON
                       answer (so a test can tell two upstreams' parts apart)

usage (OpenAI chat and completions answers):
  {"prompt_tokens":P,"completion_tokens":C,"total_tokens":P+C,
   "prompt_tokens_details":{"cached_tokens":K}} with P = prompt_tokens=N
  (default 10), K = cached_tokens=N (default 2), C = the number of content
  words (word answers: words sent; "hello from NAME": 3; streams "tok<i>":
  their content events).  Streams: when the body has "stream_options":
  {"include_usage": true}, every chunk carries "usage":null and, after the
  finish chunk and before [DONE], a chunk with "choices":[] and the usage
  (not after a cut or error).  usage_on_last=1: the usage on the finish
  chunk instead (with or without include_usage; no usage-only chunk).
  reject_stream_options=1: 400 {"error":{"message":"Unrecognized request
  argument supplied: stream_options","type":"invalid_request_error",
  "param":null,"code":null}} when the body has "stream_options".

Anthropic dialect (.../v1/messages, .../v1/messages/count_tokens):
  ok / slow          non-stream: {"id":"msg_mock<n>","type":"message","role":
                     "assistant","model":<request model>,"content":[{"type":
                     "text","text":"w1 w2 ... "}],"stop_reason":"end_turn",
                     "stop_sequence":null,"usage":{"input_tokens":P,
                     "output_tokens":C,"cache_read_input_tokens":K,
                     "cache_creation_input_tokens":0}} (P, K as in usage)
                     "stream": true in the body: as stream
  stream             "event: <type>\ndata: <json>\n\n" events:
                     message_start (message with id, model, usage
                     input_tokens P, output_tokens 1), content_block_start,
                     ping, content_block_delta x words (text_delta, one word
                     each), content_block_stop, message_delta (stop_reason
                     end_turn, usage output_tokens C), message_stop.
                     Options: words=N (chunks=N), gap_ms, first_gap_ms,
                     stall_after/stall_ms, crlf, split, close, delay_ms;
                     first_token_ms=N with "event: ping" every keepalive_ms;
                     cut_after=N (RST after N deltas; cut=close: FIN);
                     error_after=N (N deltas then "event: error\ndata:
                     {"type":"error","error":{"type":"overloaded_error",
                     "message":"Overloaded"}}", then the response ends);
                     no_stop=1 (message_delta but no message_stop)
  stream_error_first the error event above as the first event (after_start=1:
                     after message_start and ping), then the response ends
                     (no message_stop)
  stream_empty       message_start then message_stop, no content
  reset_stream       chunks=N (default 2): the stream with N-1 deltas, RST
  status / NNN / 429 {"type":"error","error":{"type":T,"message":"mock status
                     NNN"}} with T: 400 invalid_request_error, 401
                     authentication_error, 403 permission_error, 404
                     not_found_error, 413 request_too_large, 429
                     rate_limit_error, 500 api_error, 529 overloaded_error
                     (message "Overloaded"), other 4xx invalid_request_error,
                     other 5xx api_error
  ok_error           200 with the error shape (api_error)
  count_tokens       {"input_tokens": P} for ok, slow, stream, words...;
                     404 with no_count_tokens (mode or option) or
                     --no-count-tokens; other modes (status, hang, reset,
                     once, flap...) behave as elsewhere
  Every other mode (hang, reset, once, flap, echo, delay_ms, framing...)
  works the same in both dialects.
"""

ENDPOINTS = (
    # (suffix, kind) -- checked in order, "/chat/completions" before
    # "/completions", "/v1/messages/count_tokens" before "/v1/messages"
    ("/v1/messages/count_tokens", "count_tokens"),
    ("/v1/messages", "messages"),
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

ANTHROPIC_ROUTES = ("messages", "count_tokens")
# Anthropic's error "type" per HTTP status
ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                   403: "permission_error", 404: "not_found_error",
                   413: "request_too_large", 429: "rate_limit_error",
                   500: "api_error", 529: "overloaded_error"}
CTX_MESSAGE = ("This model's maximum context length is 8192 tokens. "
               "However, your messages resulted in 9000 tokens.")
PROMPT_TOO_LONG = "prompt is too long: 210000 tokens > 200000 maximum"
# the options of once/flap that belong to them, not to the specs they run
PICKER_OPTS = ("first", "then", "times", "fail", "period_ms")

MAX_RECORDS = 200
NO_MODEL = "(none)"
MODELS_KEY = "__models__"


class ClientGone(Exception):
    """The client went away; stop quietly."""


class Raw(str):
    """Stream text sent as is (an Anthropic "event:" block, a comment);
    "\n" becomes the stream's line end."""


class KeepAlive:
    """Stream item: wait ms, sending text every every_ms meanwhile."""

    def __init__(self, ms, every_ms, text):
        self.ms = ms
        self.every_ms = every_ms
        self.text = text


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


def jstr(obj):
    return json.dumps(obj, separators=(",", ":"))


def fmt_spec(name, opts):
    """The inverse of parse_spec (values %-encoded where needed)."""
    out = [name]
    for k, v in opts.items():
        if any(c in v for c in ";%="):
            v = quote(v, safe=",:/")
        out.append("%s=%s" % (k, v))
    return ";".join(out)


def sub_spec(text, outer):
    """A once/flap sub-spec ("," for ";"), plus the outer spec's options it
    does not set itself -> (name, opts)."""
    name, opts = parse_spec(str(text).replace(",", ";"))
    for k, v in outer.items():
        if k not in PICKER_OPTS and k not in opts:
            opts[k] = v
    return name, opts


def message_text(content):
    """The text of a message's content: a string, or the "text" of its
    text parts (OpenAI) / blocks (Anthropic) joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content
                       if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def answer_pieces(opts, prefill, anthropic=False):
    """The content events of a word answer: (pieces, words skipped).
    prefill: the assistant prefill text, or None."""
    default = opt_int(opts, "chunks", 8) if anthropic else 8
    w = min(100000, max(0, opt_int(opts, "words", default)))
    words = ["w%d" % i for i in range(1, w + 1)]
    pieces = [x + " " for x in words]
    if prefill is None:
        return pieces, 0
    pw = prefill.split()
    k = len(pw)
    if k <= w and pw == words[:k]:
        return pieces[k:], k
    # the prefill ends inside word k: send the rest of that word first
    if (1 <= k <= w and pw[:-1] == words[:k - 1] and not prefill[-1:].isspace()
            and words[k - 1].startswith(pw[-1])):
        return [words[k - 1][len(pw[-1]):] + " "] + pieces[k:], k - 1
    return pieces, 0


class State:
    def __init__(self, default_mode, name, models):
        self.lock = threading.Lock()
        self.name = name
        self.launch_default = default_mode
        self.default = default_mode
        self.configured_models = list(models)
        self.modes = {}
        self.flaky = {}
        self.once = {}
        self.open = 0
        self.ratelimit = 0
        self.auth_keys = []
        self.deny_headers = []
        self.anthropic_auth = "x-api-key"
        self.no_count_tokens = False
        self.reset()

    def reset(self):
        # caller holds the lock, or we are in __init__
        self.default = self.launch_default
        self.modes = {}
        self.flaky = {}
        self.once = {}
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
            "once": [{"model": m, "mode": spec, "count": n}
                     for (m, spec), n in sorted(self.once.items())],
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
                reason = "Overloaded" if code == 529 else "Status %d" % code
        rec = getattr(self, "rec", None)
        if rec is not None and rec["status"] is None:
            rec["status"] = code
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

    def finish_close(self, notify=False):
        """Close-delimited body: send FIN now.  Over TLS the FIN comes
        without close_notify, unless notify: then close_notify first."""
        self.close_connection = True
        if notify and isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.settimeout(2)
                self.connection.unwrap()   # close_notify, then the peer's
            except (OSError, ValueError, ssl.SSLError):
                pass
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
        self.rec = None
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
        self.dialect = "anthropic" if kind in ANTHROPIC_ROUTES else "openai"
        if kind == "count_tokens" and STATE.no_count_tokens:
            kind = None
        self.j = j if isinstance(j, dict) else None
        if kind == "models":
            route = "models" if self.command in ("GET", "HEAD") else "405"
            key = MODELS_KEY
        else:
            route = kind if kind is not None else "404"
            if kind is not None and self.command != "POST":
                route = "405"
            key = model if model is not None else NO_MODEL

        header_mode = self.headers.get("X-Mock-Mode")
        hmap = {}
        for k, v in self.headers.items():
            k = k.lower()
            hmap[k] = hmap[k] + ", " + v if k in hmap else v
        auth_ok = None
        if STATE.auth_keys and route not in ("404", "405"):
            auth_ok = self.auth_ok(hmap)
        if STATE.deny_headers and route not in ("404", "405") and any(
                h in hmap for h in STATE.deny_headers):
            auth_ok = False
        prefill = self.find_prefill(route)
        jd = self.j or {}
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
            self.req_no = STATE.total
            self.rec = {
                "method": self.command,
                "path": self.path,
                "query": url.query,
                "headers": [[k, v] for k, v in self.headers.items()],
                "header_map": hmap,
                "body": body.decode("utf-8", "replace"),
                "body_b64": base64.b64encode(body).decode(),
                "json": j,
                "model": model,
                "stream": want_stream,
                "route": route,
                "dialect": self.dialect,
                "mode": spec,
                "effective_mode": None,
                "status": None,
                "auth_ok": auth_ok,
                "has_stream_options": "stream_options" in jd,
                "stream_options": jd.get("stream_options"),
                "prefill": prefill is not None,
                "prefill_text": prefill[0] if prefill else None,
                "prefill_prefix": prefill[1] if prefill else None,
                "continue_final_message": jd.get("continue_final_message"),
                "add_generation_prompt": jd.get("add_generation_prompt"),
                "continued_from": 0,
                "time": time.time(),
            }
            STATE.records.append(self.rec)
        self.prefill = prefill[0] if prefill else None
        self.prefill_prefix = prefill[1] if prefill else None
        vlog("%s %s %s model=%s mode=%s" % (STATE.name, self.command, self.path, model, spec))

        # OpenAI: type invalid_request_error as before; Anthropic: by status
        etype = None if self.dialect == "anthropic" else "invalid_request_error"
        if route == "404":
            self.send_json(404, self.err_obj(404, "mock: unknown path %s" % path, etype), {})
            return
        if route == "405":
            self.send_json(405, self.err_obj(405, "mock: method not allowed", etype), {})
            return
        if auth_ok is False:
            if self.dialect == "anthropic":
                err = self.err_obj(401, "invalid x-api-key", "authentication_error")
            else:
                err = {"error": {"message": "Incorrect API key provided", "type":
                                 "invalid_request_error", "param": None,
                                 "code": "invalid_api_key"}}
            self.send_json(401, err, {})
            return
        self.behave(spec, route, model, want_stream, j)

    def auth_ok(self, hmap):
        """Does the request carry one of the --require-auth keys, the way
        its dialect sends it?"""
        bearer = hmap.get("authorization", "")
        bearer = bearer[7:].strip() if bearer[:7].lower() == "bearer " else None
        if self.dialect == "anthropic":
            how = STATE.anthropic_auth
            if how in ("x-api-key", "either") and hmap.get("x-api-key") in STATE.auth_keys:
                return True
            return how in ("bearer", "either") and bearer in STATE.auth_keys
        return bearer in STATE.auth_keys

    def find_prefill(self, route):
        """(text, "prefix" value) of an assistant message that ends the
        body's messages (chat and messages routes), else None."""
        if route not in ("chat", "messages") or self.j is None:
            return None
        msgs = self.j.get("messages")
        if not isinstance(msgs, list) or not msgs or not isinstance(msgs[-1], dict):
            return None
        last = msgs[-1]
        if last.get("role") != "assistant":
            return None
        return message_text(last.get("content")), last.get("prefix")

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
                recs = [dict(r) for r in STATE.records]
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
                    for key in [k for k in STATE.once if k[0] == m]:
                        del STATE.once[key]
                reply(200, {"ok": True, "default": STATE.default, "modes": dict(STATE.modes)})
            return
        reply(404, {"ok": False, "error": "unknown control path %s" % path})

    # ---- responses ------------------------------------------------------

    @staticmethod
    def error_obj(code, message, etype="mock_error"):
        return {"error": {"message": message, "type": etype, "param": None, "code": code}}

    def err_obj(self, code, message, etype=None):
        """An error body in the request's dialect (OpenAI: error_obj)."""
        if self.dialect == "anthropic":
            if etype is None or etype == "mock_error":
                etype = ANTHROPIC_TYPES.get(code, "api_error" if code >= 500
                                            else "invalid_request_error")
            return {"type": "error", "error": {"type": etype, "message": message}}
        if etype is None:
            return self.error_obj(code, message)
        return self.error_obj(code, message, etype)

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
            self.finish_close(notify=opt_bool(opts, "close_notify"))
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

    @staticmethod
    def usage_obj(opts, ntok):
        p = opt_int(opts, "prompt_tokens", 10)
        return {"prompt_tokens": p, "completion_tokens": ntok, "total_tokens": p + ntok,
                "prompt_tokens_details": {"cached_tokens": opt_int(opts, "cached_tokens", 2)}}

    @staticmethod
    def anthropic_usage(opts, ntok):
        return {"input_tokens": opt_int(opts, "prompt_tokens", 10), "output_tokens": ntok,
                "cache_read_input_tokens": opt_int(opts, "cached_tokens", 2),
                "cache_creation_input_tokens": 0}

    def ok_body(self, route, model, opts, pieces=None):
        """The 200 JSON answer; pieces: the words of a word answer."""
        name = STATE.name
        words = pieces is not None and "content" not in opts
        if words:
            content = "".join(pieces)
        else:
            content = opts.get("content", "hello from %s" % name)
        now = opt_int(opts, "created", int(time.time()))
        chat_id = opts.get("id", "chatcmpl-mock")

        def build(pad):
            text = content + pad
            ntok = len(pieces) if words else max(1, len(text.split()))
            if route == "chat":
                return {"id": chat_id, "object": "chat.completion", "created": now,
                        "model": model,
                        "choices": [{"index": 0,
                                     "message": {"role": "assistant", "content": text},
                                     "finish_reason": "stop"}],
                        "usage": self.usage_obj(opts, ntok)}
            if route == "completions":
                return {"id": "cmpl-mock", "object": "text_completion", "created": now,
                        "model": model,
                        "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                        "usage": self.usage_obj(opts, ntok)}
            if route == "messages":
                return {"id": "msg_mock%06d" % self.req_no, "type": "message",
                        "role": "assistant", "model": model,
                        "content": [{"type": "text", "text": text}],
                        "stop_reason": "end_turn", "stop_sequence": None,
                        "usage": self.anthropic_usage(opts, ntok)}
            if route == "count_tokens":
                o = {"input_tokens": opt_int(opts, "prompt_tokens", 10)}
                if pad:
                    o["pad"] = pad
                return o
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

    def chunk_events(self, model, opts, count, finish=True, pieces=None):
        """Yield the SSE payload strings of a normal completion stream.
        pieces (word answers): the contents after the role delta; count is
        then ignored.  Usage as MODES_HELP says (include_usage comes from
        the body, usage_on_last from opts)."""
        created = opt_int(opts, "created", int(time.time()))
        chunk_id = opts.get("id", "chatcmpl-mock")
        ev_bytes = opt_int(opts, "event_bytes", 0)
        so = (self.j or {}).get("stream_options")
        include = isinstance(so, dict) and so.get("include_usage") is True
        on_last = opt_bool(opts, "usage_on_last")
        empty_end = False
        if pieces is not None:
            count = len(pieces) + 1
            if not pieces and finish:
                count, empty_end = 2, True  # nothing left: one empty finish chunk
        ntok = 0 if empty_end else (len(pieces) if pieces is not None
                                    else max(0, (count or 1) - 1))

        def ev(i, last):
            if i == 0:
                delta = {"role": "assistant", "content": ""}
            elif empty_end:
                delta = {}
            elif pieces is not None:
                delta = {"content": pieces[i - 1]}
            else:
                delta = {"content": "tok%d " % i}
            o = {"id": chunk_id, "object": "chat.completion.chunk", "created": created,
                 "model": model,
                 "choices": [{"index": 0, "delta": delta,
                              "finish_reason": "stop" if last else None}]}
            if include:
                o["usage"] = None
            if last and on_last:
                o["usage"] = self.usage_obj(opts, ntok)
            s = json.dumps(o, separators=(",", ":"))
            if ev_bytes > len(s) + 8:
                pad = "x" * (ev_bytes - len(s) - 8)
                if i == 0 or "content" not in delta:
                    delta["content"] = pad
                else:
                    delta["content"] += pad
                s = json.dumps(o, separators=(",", ":"))
            return s

        i = 0
        while count is None or i < count:
            yield ev(i, finish and count is not None and count > 1 and i == count - 1)
            i += 1
        if finish and include and not on_last:
            yield jstr({"id": chunk_id, "object": "chat.completion.chunk",
                        "created": created, "model": model, "choices": [],
                        "usage": self.usage_obj(opts, ntok)})

    @staticmethod
    def first_token_wait(events, opts, text):
        """events with a KeepAlive after the first one (first_token_ms)."""
        ms = opt_int(opts, "first_token_ms", 0)
        first = True
        for e in events:
            yield e
            if first and ms > 0:
                yield KeepAlive(ms, opt_int(opts, "keepalive_ms", 500), text)
            first = False

    def anthropic_events(self, model, opts, pieces, cut=False, error=False):
        """Yield the Raw events of an Anthropic Messages stream."""
        def ev(etype, obj):
            return Raw("event: %s\ndata: %s\n\n" % (etype, jstr(obj)))

        ping = ev("ping", {"type": "ping"})
        usage = self.anthropic_usage(opts, 1)
        yield ev("message_start", {"type": "message_start", "message": {
            "id": "msg_mock%06d" % self.req_no, "type": "message", "role": "assistant",
            "content": [], "model": model, "stop_reason": None, "stop_sequence": None,
            "usage": usage}})
        yield ev("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "text", "text": ""}})
        yield ping
        ms = opt_int(opts, "first_token_ms", 0)
        if ms > 0:
            yield KeepAlive(ms, opt_int(opts, "keepalive_ms", 500), ping)
        for p in pieces:
            yield ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                             "delta": {"type": "text_delta", "text": p}})
        if error:
            yield self.anthropic_error_event()
            return
        if cut:
            return
        yield ev("content_block_stop", {"type": "content_block_stop", "index": 0})
        yield ev("message_delta", {"type": "message_delta",
                                   "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                   "usage": {"output_tokens": len(pieces)}})
        if not opt_bool(opts, "no_stop"):
            yield ev("message_stop", {"type": "message_stop"})

    @staticmethod
    def anthropic_error_event():
        return Raw("event: error\ndata: %s\n\n" % jstr(
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))

    def stream(self, events, opts, done=True, abort=False):
        """Send an SSE response.  events: iterable of payload strings (sent
        as "data: ..." events), Raw texts and KeepAlive waits.  abort: True
        or "rst" ends with a TCP RST, "close" with a FIN (no chunked
        terminator)."""
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

        def put(payload, raw=False, count=True):
            if raw:
                data = payload.replace("\n", nl).encode()
            else:
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
            if count:
                state["n"] += 1

        def keep_alive(ka):
            start = time.monotonic()
            every = max(1, ka.every_ms)
            k = 1
            while k * every < ka.ms:
                time.sleep(max(0.0, start + k * every / 1000.0 - time.monotonic()))
                put(ka.text, raw=True, count=False)
                k += 1
            time.sleep(max(0.0, start + ka.ms / 1000.0 - time.monotonic()))

        sent = 0
        first = True
        stall_after = opt_int(opts, "stall_after", 0)
        for payload in events:
            if isinstance(payload, KeepAlive):
                keep_alive(payload)
                continue
            if not first and gap:
                time.sleep(gap / 1000.0)
            if stall_after and state["n"] == stall_after:
                time.sleep(opt_int(opts, "stall_ms", 5000) / 1000.0)
            first = False
            put(payload, raw=isinstance(payload, Raw))
            sent += len(payload) + 8
            if total and sent >= total:
                break
        if abort == "close":
            self.finish_close()
            return
        if abort:
            time.sleep(opt_int(opts, "pause_ms", 50) / 1000.0)
            self.rst()
            return
        if done and not opt_bool(opts, "no_done") and not opt_bool(opts, "finish_no_done"):
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
        self.behave_parsed(name, opts, spec, route, model, want_stream, 0)

    def note(self, key, value):
        if self.rec is not None:
            self.rec[key] = value

    def behave_parsed(self, name, opts, spec, route, model, want_stream, depth):
        if name in ("once", "flap") and depth < 4:
            name, opts = self.pick(name, opts, spec, model)
            self.behave_parsed(name, opts, fmt_spec(name, opts), route, model,
                               want_stream, depth + 1)
            return
        anth = self.dialect == "anthropic"
        delay = opt_int(opts, "delay_ms", 2000 if name == "slow" else 0)
        if name != "hang":
            self.sleep_ms(delay)

        if name == "flaky":
            name = self.flaky_pick(spec, opts)
        self.note("effective_mode", fmt_spec(name, opts))
        if self.request_rejected(opts):
            return
        prefill = self.prefill if route in ("chat", "messages") else None
        word = anth or prefill is not None or any(
            k in opts for k in ("words", "cut_after", "error_after"))
        pieces = None
        if word:
            pieces, skipped = answer_pieces(opts, prefill, anth)
            self.note("continued_from", skipped)

        if route == "count_tokens":
            if name == "no_count_tokens" or opt_bool(opts, "no_count_tokens"):
                self.send_json(404, self.err_obj(404, "mock: count_tokens is not supported",
                                                 "not_found_error"), opts)
                return
            if name in ("ok", "slow", "stream"):
                self.send_json(200, self.ok_body(route, model, opts), opts)
                return
        if name == "no_count_tokens":
            name = "ok"

        if name in ("ok", "slow"):
            if want_stream:
                name = "stream"
            else:
                self.send_json(200, self.ok_body(route, model, opts, pieces), opts)
                return
        if name == "stream":
            cut = "cut_after" in opts
            err = "error_after" in opts
            if cut or err:
                pieces = pieces[:max(0, opt_int(opts, "cut_after" if cut else "error_after", 0))]
            abort = ("close" if opts.get("cut") == "close" else "rst") if cut else False
            if anth:
                self.stream(self.anthropic_events(model, opts, pieces, cut, err and not cut),
                            opts, done=False, abort=abort)
                return
            total = opt_int(opts, "total_bytes", 0)
            count = None if total and pieces is None else max(0, opt_int(opts, "chunks", 3))
            events = self.chunk_events(model, opts, count, not (cut or err), pieces)
            events = self.first_token_wait(events, opts, Raw(": keep-alive\n\n"))
            if err and not cut:
                n = len(pieces)
                events = list(events) + [jstr({"error": {
                    "message": "mock error after %d events" % n, "type": "server_error"}})]
            self.stream(events, opts, abort=abort)
            return
        if name in ("status", "429") or (len(name) == 3 and name.isdigit()):
            code = 429 if name == "429" else (opt_int(opts, "code", 500) if name == "status"
                                               else int(name))
            self.status(code, opts)
            return
        if name in ("ctx400", "policy400"):
            self.client_error(name, opts)
            return
        if name == "hang":
            self.hang()
            return
        if name == "reset_headers":
            self.send(b"HTTP/1.1 200 OK\r\nContent-Ty")
            time.sleep(opt_int(opts, "pause_ms", 50) / 1000.0)
            self.rst()
            return
        if name == "reset":  # also used by flaky: RST without a byte
            self.rst()
            return
        if name == "reset_stream":
            count = max(0, opt_int(opts, "chunks", 2))
            if anth:
                pieces = answer_pieces({"words": str(max(0, count - 1))}, prefill)[0]
                self.stream(self.anthropic_events(model, opts, pieces, cut=True), opts,
                            done=False, abort=True)
                return
            self.stream(self.chunk_events(model, opts, count, finish=False), opts, abort=True)
            return
        if name == "stream_error_first":
            if anth:
                events = list(self.anthropic_events(model, opts, []))[:3]
                events = (events[:1] + events[2:3] if opt_bool(opts, "after_start") else [])
                self.stream(events + [self.anthropic_error_event()], opts, done=False)
                return
            if opt_bool(opts, "string"):
                err = {"error": "mock stream error"}
            else:
                err = {"error": {"message": "mock stream error", "type": "server_error",
                                 "code": "mock"}}
            self.stream([json.dumps(err, separators=(",", ":"))], opts)
            return
        if name == "stream_empty":
            if anth:
                events = list(self.anthropic_events(model, opts, []))
                self.stream([events[0], events[-1]], opts, done=False)
                return
            self.stream([], opts)
            return
        if name == "ok_error":
            if anth:
                self.send_json(200, self.err_obj(500, "mock error in a 200"), opts)
                return
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
            body = self.ok_body(route, model, opts, pieces)
            self.send(self.head(200, [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
                      + body + b"HTTP/1.1 200 OK\r\n\r\nGARBAGE")
            return
        self.send_json(400, self.err_obj(400, "mock: unknown mode %r" % name,
                                         "invalid_request_error"), {})

    def pick(self, name, opts, spec, model):
        """once / flap: the (name, opts) this request runs."""
        if name == "flap":
            period = max(2, opt_int(opts, "period_ms", 1000))
            failing = (int(time.time() * 1000) % period) * 2 < period
            return sub_spec(opts.get("fail", "500") if failing else opts.get("then", "ok"), opts)
        key = (model if model is not None else NO_MODEL, spec)
        with STATE.lock:
            n = STATE.once.get(key, 0)
            STATE.once[key] = n + 1
        if n < opt_int(opts, "times", 1):
            return sub_spec(opts.get("first", "500"), opts)
        return sub_spec(opts.get("then", "ok"), opts)

    def request_rejected(self, opts):
        """The checks of the body that run before the mode (prefill=,
        reject_stream_options=); True when a 400 was sent."""
        msg = None
        if opt_bool(opts, "reject_stream_options") and "stream_options" in (self.j or {}):
            msg = "Unrecognized request argument supplied: stream_options"
            if self.dialect == "openai":
                self.send_json(400, {"error": {"message": msg, "type": "invalid_request_error",
                                               "param": None, "code": None}}, {})
                return True
        how = opts.get("prefill")
        if msg is None and how and self.prefill is not None:
            if how == "reject":
                msg = "assistant prefill is not supported"
            elif how == "need_prefix" and self.prefill_prefix is not True:
                msg = "the last assistant message needs \"prefix\": true"
            elif (how == "need_continue"
                  and (self.j or {}).get("continue_final_message") is not True):
                msg = "the last message is an assistant message: set continue_final_message"
            elif how == "no_trailing_space" and self.prefill[-1:].isspace():
                msg = "messages: final assistant content cannot end with trailing whitespace"
        if msg is None:
            return False
        if self.dialect == "anthropic":
            self.send_json(400, self.err_obj(400, msg, "invalid_request_error"), {})
        else:
            self.send_json(400, {"error": {"message": msg, "type": "invalid_request_error"}}, {})
        return True

    def client_error(self, name, opts):
        """ctx400 / policy400."""
        code = opt_int(opts, "status", 400)
        if self.dialect == "anthropic":
            msg = (PROMPT_TOO_LONG if name == "ctx400"
                   else "Output blocked by content filtering policy")
            self.send_json(code, self.err_obj(code, msg, "invalid_request_error"), opts)
            return
        if name == "policy400":
            err = {"message": "Your request was rejected as a result of our safety system.",
                   "type": "invalid_request_error", "param": "prompt",
                   "code": "content_policy_violation"}
        elif opts.get("form") == "message":
            err = {"message": CTX_MESSAGE, "type": "invalid_request_error"}
        elif opts.get("form") == "prompt_too_long":
            err = {"message": PROMPT_TOO_LONG, "type": "invalid_request_error"}
        else:
            err = {"message": CTX_MESSAGE, "type": "invalid_request_error",
                   "param": "messages", "code": "context_length_exceeded"}
        self.send_json(code, {"error": err}, opts)

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
        if self.dialect == "anthropic":
            body = jdump(self.err_obj(code, "Overloaded" if code == 529
                                      else opts.get("message", "mock status %d" % code)))
        else:
            body = jdump(self.error_obj(code, opts.get("message", "mock status %d" % code)))
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
    ap = argparse.ArgumentParser(description="mock OpenAI-compatible (and Anthropic) upstream",
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
    ap.add_argument("--require-auth", action="append", default=[], metavar="KEY",
                    help="answer 401 unless the request carries KEY (repeatable: any of them); "
                         "OpenAI routes: Authorization: Bearer KEY, Anthropic routes: "
                         "x-api-key: KEY (see --anthropic-auth)")
    ap.add_argument("--deny-header", action="append", default=[], metavar="NAME",
                    help="answer 401 (as for a wrong key) to a request carrying this header "
                         "(repeatable)")
    ap.add_argument("--anthropic-auth", choices=("x-api-key", "bearer", "either"),
                    default="x-api-key",
                    help="how Anthropic routes carry the --require-auth key")
    ap.add_argument("--no-count-tokens", action="store_true",
                    help="/v1/messages/count_tokens is an unknown path (404)")
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
    STATE.auth_keys = list(args.require_auth)
    STATE.deny_headers = [h.lower() for h in args.deny_header]
    STATE.anthropic_auth = args.anthropic_auth
    STATE.no_count_tokens = args.no_count_tokens
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
