#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "balance.h"
#include "client.h"
#include "endpoint.h"
#include "health.h"
#include "probe.h"
#include "json.h"
#include "log.h"
#include "counters.h"
#include "multipart.h"
#include "reply.h"
#include "rewrite.h"
#include "sse.h"
#include "util.h"

#define REQID_MAX 64

/* What an upstream status means for the attempt (README: failure table). */
enum verdict {
    V_OK,           /* 2xx: deliver */
    V_PASS,         /* the client's own mistake (400, 413, 422, other 4xx): deliver as sent */
    V_FAILOVER,     /* upstream broken (5xx, 401, 403, 404, 3xx): next candidate, counts */
    V_COOLDOWN,     /* 429: next candidate, cool this one down */
};

enum mode {
    M_WAIT_HEAD,
    M_BUFFER,       /* 2xx non-stream: read whole, then deliver */
    M_RELAY,        /* pass-through status: read whole, deliver unchanged */
    M_ERROR_BODY,   /* failover status: read some of the body for the log */
    M_STREAM,
};

struct proxy {
    struct conn *client;          /* NULL once the client left */
    struct snapshot *snap;        /* pinned for the request's whole life */
    const struct alias_entry *alias;
    const struct endpoint *ep;
    struct buf body;              /* the client's body, read once */
    struct json_val root;         /* a JSON body: its top-level object */
    struct buf form_ctype;        /* a multipart body: the client's Content-Type */
    struct mp_field form_model;   /* ... and where its model field's value is */
    bool stream_req;
    struct buf query;             /* "?..." of the client's target, or empty */
    struct buf fwd;               /* client header lines passed on */
    char reqid[REQID_MAX + 1];
    const struct candidate *plan[BAL_MAX_ATTEMPTS];
    size_t nplan, next;
    bool finished;
    size_t alloc;                 /* block size from mem_get */
    uint64_t t_start;
    /* the current attempt */
    const struct candidate *cur;
    struct upstream *up;
    uint64_t t_attempt;
    struct loop_timer timer;
    uint64_t idle_deadline;       /* streams: the timer re-arms itself lazily */
    enum mode mode;
    int status;
    enum verdict verdict;
    char ctype[160];
    struct buf up_headers;        /* the upstream's x-ratelimit-* lines */
    int64_t retry_after_ms;       /* -1: none */
    struct buf rbody;             /* buffered answer */
    /* streaming */
    bool committed;
    bool got_body_byte;
    struct sse_splitter sse;
    struct buf pending;           /* read ahead, not yet sent */
    struct buf chunk;             /* output of one upstream read */
    bool in_long_line;
    int data_events;
    bool saw_done, saw_content, saw_error;
    bool error_first;             /* an error event came before any content */
    char stream_err[200];
    int64_t ttft;
    char last_err[300];
};

static void start_attempt(struct proxy *p);
static void attempt_failed(struct proxy *p, const char *reason, enum verdict v, int status);

static enum verdict judge(int status)
{
    if (status >= 200 && status < 300)
        return V_OK;
    if (status == 429)
        return V_COOLDOWN;
    if (status == 401 || status == 403 || status == 404)
        return V_FAILOVER;
    if (status >= 400 && status < 500)
        return V_PASS;
    return V_FAILOVER;
}

/* ---------------- lifetime ---------------- */

static void proxy_free_deferred(void *ctx)
{
    struct proxy *p = ctx;
    buf_free(&p->body);
    buf_free(&p->query);
    buf_free(&p->fwd);
    buf_free(&p->form_ctype);
    buf_free(&p->rbody);
    buf_free(&p->up_headers);
    buf_free(&p->pending);
    buf_free(&p->chunk);
    sse_free(&p->sse);
    snapshot_unref(p->snap);
    mem_put(p, p->alloc);
}

static void proxy_finish(struct proxy *p)
{
    if (p->finished)
        return;
    p->finished = true;
    loop_timer_stop(&p->timer);
    if (p->up) {
        up_abort(p->up);
        p->up = NULL;
    }
    if (p->client)
        conn_set_hooks(p->client, NULL);
    p->client = NULL;
    loop_defer(proxy_free_deferred, p);
}

/* Health is data: act on what a report says changed. */
static void report_failure(struct proxy *p, int status, bool counts, const char *reason)
{
    struct cfg_mapping *map = (struct cfg_mapping *)p->cur->map;
    const struct config *cfg = p->snap->cfg;
    if (health_failure(map->health, map->stat, status, counts, reason))
        probe_schedule(map->health, (uint64_t)cfg->recovery_interval * 1000u,
                       (uint64_t)cfg->health_check_period * 1000u);
}

static void report_success(struct proxy *p)
{
    struct cfg_mapping *map = (struct cfg_mapping *)p->cur->map;
    if (health_success(map->health, map->stat, p->status, loop_clock() - p->t_attempt, p->ttft))
        probe_cancel(map->health);
}

static void end_attempt_bookkeeping(struct proxy *p)
{
    loop_timer_stop(&p->timer);
    if (p->cur && p->cur->map->health->in_flight)
        p->cur->map->health->in_flight--;
}

/* ---------------- answering the client ---------------- */

/* Header values from the config or an upstream: keep them to one line. */
static void header_value(struct buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf_append(b, (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? "?" : s + i, 1);
}

static void our_headers(struct proxy *p, struct buf *h)
{
    buf_printf(h, "X-Request-Id: %s\r\n", p->reqid);
    if (p->cur) {
        buf_append_str(h, "X-Autoswitch-Provider: ");
        header_value(h, p->cur->prov->name, strlen(p->cur->prov->name));
        buf_append_str(h, "\r\nX-Autoswitch-Model: ");
        header_value(h, p->cur->map->upstream, strlen(p->cur->map->upstream));
        buf_printf(h, "\r\nX-Autoswitch-Attempts: %zu\r\n", p->next);
        buf_append(h, buf_head(&p->up_headers), buf_len(&p->up_headers));
    }
}

static void log_note(struct proxy *p, bool served)
{
    if (!p->client)
        return;
    struct buf *note = &conn_request(p->client)->note;
    buf_clear(note);
    buf_printf(note, "[%s] %s", p->reqid, p->alias->name);
    if (served)
        buf_printf(note, " #%zu%s%s -> %s/%s", p->next, p->next > 1 ? "(retry)" : "",
                   p->stream_req ? " stream" : "", p->cur->prov->name, p->cur->map->upstream);
    else
        buf_printf(note, "%s all %zu attempts failed", p->stream_req ? " stream" : "", p->next);
}

static void respond_exhausted(struct proxy *p)
{
    counters.exhausted++;
    log_error("[%s] %s: all providers failed after %zu attempts: %s", p->reqid, p->alias->name, p->next,
              p->last_err);
    if (!p->client)
        return;
    log_note(p, false);
    struct buf h = BUF_INIT, b = BUF_INIT;
    buf_printf(&h, "X-Request-Id: %s\r\nX-Autoswitch-Attempts: %zu\r\n", p->reqid, p->next);
    char msg[400];
    snprintf(msg, sizeof msg, "all providers failed: %s", p->last_err);
    reply_error_json(&b, msg, "upstream_error", NULL);
    buf_append(&b, "\n", 1);
    conn_respond(p->client, 502, "application/json", buf_cstr(&h), buf_head(&b), buf_len(&b));
    buf_free(&h);
    buf_free(&b);
}

static void deliver_buffered(struct proxy *p)
{
    struct buf out = BUF_INIT, h = BUF_INIT;
    const struct buf *body = &p->rbody;
    if (p->verdict == V_OK && rewrite_model(buf_head(&p->rbody), buf_len(&p->rbody), p->alias->name, &out) == 1)
        body = &out;
    our_headers(p, &h);
    log_note(p, true);
    counters.bytes_out += buf_len(body);
    p->cur->map->stat->bytes_out += buf_len(body);
    conn_respond(p->client, p->status, p->ctype[0] ? p->ctype : "application/json", buf_cstr(&h),
                 buf_head(body), buf_len(body));
    buf_free(&out);
    buf_free(&h);
}

/* ---------------- streams ---------------- */

static void pause_if_full(struct proxy *p)
{
    if (p->client && p->up && conn_pending(p->client) > SRV_OUT_HIGH)
        up_pause(p->up, true);
}

static void send_chunk(struct proxy *p)
{
    if (!buf_len(&p->chunk))
        return;
    counters.bytes_out += buf_len(&p->chunk);
    p->cur->map->stat->bytes_out += buf_len(&p->chunk);
    conn_body(p->client, buf_head(&p->chunk), buf_len(&p->chunk));
    buf_clear(&p->chunk);
    pause_if_full(p);
}

static void commit_stream(struct proxy *p)
{
    p->committed = true;
    p->ttft = (int64_t)(loop_clock() - p->t_attempt);
    struct buf h = BUF_INIT;
    buf_append_str(&h, "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
    our_headers(p, &h);
    log_note(p, true);
    conn_begin(p->client, 200, p->ctype[0] ? p->ctype : "text/event-stream", buf_cstr(&h), -1);
    buf_free(&h);
    if (!p->client)
        return;
    buf_append(&p->chunk, buf_head(&p->pending), buf_len(&p->pending));
    buf_free(&p->pending);
    send_chunk(p);
}

/* Rewrite one line into p->chunk and classify it. */
static int on_sse_line(void *ctx, const char *text, size_t len, const char *eol, size_t eol_len, bool partial)
{
    struct proxy *p = ctx;
    if (partial) {
        /* Over-long lines pass unchanged and are not judged, but a long
         * data line is content for the purposes of committing. */
        buf_append(&p->chunk, text, len);
        buf_append(&p->chunk, eol, eol_len);
        if (!p->in_long_line && len)
            p->saw_content = true;
        p->in_long_line = eol_len == 0;
        return 0;
    }
    size_t plen;
    const char *data = sse_data(text, len, &plen);
    if (data) {
        /* "data: " as sent, then the payload with its model rewritten. */
        buf_append(&p->chunk, text, (size_t)(data - text));
        if (rewrite_model(data, plen, p->alias->name, &p->chunk) != 1)
            buf_append(&p->chunk, data, plen);
    } else {
        buf_append(&p->chunk, text, len);
    }
    buf_append(&p->chunk, eol, eol_len);
    if (!data)
        return 0;
    if (p->committed) {
        /* Past the read-ahead only [DONE] and errors matter, and most
         * events are neither: avoid parsing each one a second time. */
        if (mem_eq(data, plen, "[DONE]")) {
            p->saw_done = true;
            return 0;
        }
        if (!mem_find(data, plen, "\"error\"", 7))
            return 0;
    }
    char msg[sizeof p->stream_err];
    switch (sse_classify(text, len, msg, sizeof msg)) {
    case SSE_DONE:
        p->saw_done = true;
        break;
    case SSE_ERROR:
        if (!p->saw_content)
            p->error_first = true;
        if (!p->saw_error)
            snprintf(p->stream_err, sizeof p->stream_err, "%s", msg);
        p->saw_error = true;
        break;
    case SSE_CONTENT:
        p->saw_content = true;
        p->data_events++;
        break;
    case SSE_NEUTRAL:
        p->data_events++;
        break;
    case SSE_OTHER:
        break;
    }
    return 0;
}

/* ---------------- attempt outcomes ---------------- */

static void reset_attempt(struct proxy *p)
{
    p->up = NULL;
    p->mode = M_WAIT_HEAD;
    p->status = 0;
    p->ctype[0] = '\0';
    buf_clear(&p->up_headers);
    p->retry_after_ms = -1;
    buf_clear(&p->rbody);
    buf_clear(&p->pending);
    buf_clear(&p->chunk);
    sse_free(&p->sse);
    sse_init(&p->sse);
    p->in_long_line = false;
    p->committed = false;
    p->got_body_byte = false;
    p->data_events = 0;
    p->saw_done = p->saw_content = p->saw_error = p->error_first = false;
    p->stream_err[0] = '\0';
    p->ttft = -1;
}

static uint64_t cooldown_ms(struct proxy *p)
{
    const struct config *cfg = p->snap->cfg;
    uint64_t cap = (uint64_t)cfg->max_cooldown * 1000u;
    uint64_t ms = p->retry_after_ms >= 0 ? (uint64_t)p->retry_after_ms : (uint64_t)cfg->recovery_interval * 1000u;
    return ms > cap ? cap : ms;
}

static void attempt_failed(struct proxy *p, const char *reason, enum verdict v, int status)
{
    if (p->finished)
        return;
    if (p->up) {
        up_abort(p->up);
        p->up = NULL;
    }
    end_attempt_bookkeeping(p);
    struct cfg_mapping *map = (struct cfg_mapping *)p->cur->map;
    if (v == V_COOLDOWN)
        health_cooldown(map->health, map->stat, cooldown_ms(p), reason);
    else
        report_failure(p, status, true, reason);
    log_warn("[%s] %s #%zu %s/%s failed: %s (%llums)", p->reqid, p->alias->name, p->next, p->cur->prov->name,
             p->cur->map->upstream, reason, (unsigned long long)(loop_clock() - p->t_attempt));
    snprintf(p->last_err, sizeof p->last_err, "%s", reason);
    reset_attempt(p);
    if (!p->client) {
        proxy_finish(p);
        return;
    }
    if (p->next < p->nplan) {
        counters.failovers++;
        map->stat->failovers++;
        start_attempt(p);
        return;
    }
    respond_exhausted(p);
    proxy_finish(p);
}

/* After commit nothing can be taken back: end the stream with an error
 * event the client's SDK understands. */
static void stream_failed_after_commit(struct proxy *p, const char *reason)
{
    if (p->up) {
        up_abort(p->up);
        p->up = NULL;
    }
    end_attempt_bookkeeping(p);
    report_failure(p, 0, true, reason);
    log_warn("[%s] %s stream from %s/%s broken after it started: %s", p->reqid, p->alias->name,
             p->cur->prov->name, p->cur->map->upstream, reason);
    if (p->client) {
        buf_clear(&p->chunk);
        /* The blank line first ends whatever event was in progress. */
        buf_append_str(&p->chunk, "\ndata: ");
        reply_error_json(&p->chunk, reason, "upstream_error", NULL);
        buf_append_str(&p->chunk, "\n\n");
        conn_body(p->client, buf_head(&p->chunk), buf_len(&p->chunk));
        if (p->client)
            conn_end(p->client);
    }
    proxy_finish(p);
}

static void attempt_succeeded(struct proxy *p)
{
    end_attempt_bookkeeping(p);
    report_success(p);
}

/* The text of an upstream's error answer, for logs and the 502. */
static void describe_status(struct proxy *p, char *out, size_t cap)
{
    char msg[200] = "";
    struct json_val root, v, m;
    struct json_error err;
    const char *b = buf_head(&p->rbody);
    size_t n = buf_len(&p->rbody);
    if (n && json_parse(b, n, &root, &err) == 0 && root.type == JSON_OBJECT) {
        if (json_get(b, root, "error", &v)) {
            if (v.type == JSON_STRING)
                json_str_decode(b, v, msg, sizeof msg);
            else if (v.type == JSON_OBJECT && json_get(b, v, "message", &m) && m.type == JSON_STRING)
                json_str_decode(b, m, msg, sizeof msg);
        } else if (json_get(b, root, "message", &m) && m.type == JSON_STRING) {
            json_str_decode(b, m, msg, sizeof msg);
        }
    } else if (n) {
        size_t k = 0;
        for (size_t i = 0; i < n && k + 1 < sizeof msg; i++)
            msg[k++] = (unsigned char)b[i] < 0x20 ? ' ' : b[i];
        msg[k] = '\0';
    }
    if (msg[0])
        snprintf(out, cap, "status %d: %s", p->status, msg);
    else
        snprintf(out, cap, "status %d", p->status);
}

/* ---------------- upstream callbacks ---------------- */

static void arm_timer(struct proxy *p, uint64_t ms)
{
    loop_timer_set(&p->timer, ms);
}

/* Stream idle timeout, pushed forward by every chunk.  Moving a heap entry
 * per event costs more than it should: the deadline moves, the timer
 * stays, and on firing it re-arms for what is left. */
static void touch_idle(struct proxy *p)
{
    uint64_t ms = (uint64_t)p->snap->cfg->stream_idle_timeout * 1000u;
    p->idle_deadline = loop_now() + ms;
    if (!loop_timer_armed(&p->timer))
        loop_timer_set(&p->timer, ms);
}

#define UP_HEADERS_MAX 2048
#define RATELIMIT_PREFIX "x-ratelimit-"

/* The serving upstream's rate-limit state (x-ratelimit-limit-requests,
 * -remaining-tokens, ...) lets a client pace itself, so those lines reach
 * it; nothing else of the upstream's head does (cookies, server names and
 * account ids stay behind the gateway). */
static void keep_rate_limits(struct proxy *p, const struct hp_response *res)
{
    const size_t plen = sizeof RATELIMIT_PREFIX - 1;
    for (size_t i = 0; i < res->num_headers; i++) {
        const struct hp_header *h = &res->headers[i];
        if (h->name_len <= plen || !mem_ieq(h->name, plen, RATELIMIT_PREFIX))
            continue;
        if (buf_len(&p->up_headers) + h->name_len + h->value_len + 4 > UP_HEADERS_MAX)
            break;
        buf_append(&p->up_headers, h->name, h->name_len);
        buf_append(&p->up_headers, ": ", 2);
        header_value(&p->up_headers, h->value, h->value_len);
        buf_append(&p->up_headers, "\r\n", 2);
    }
}

static int on_up_head(void *ctx, const struct hp_response *res)
{
    struct proxy *p = ctx;
    p->status = res->status;
    p->verdict = judge(res->status);
    const struct hp_header *h = hp_find(res->headers, res->num_headers, "content-type");
    if (h) {
        size_t n = h->value_len < sizeof p->ctype - 1 ? h->value_len : sizeof p->ctype - 1;
        memcpy(p->ctype, h->value, n);
        p->ctype[n] = '\0';
    }
    keep_rate_limits(p, res);
    h = hp_find(res->headers, res->num_headers, "retry-after");
    if (h) {
        long long secs;
        time_t when;
        if (parse_int(h->value, h->value_len, 0, 1ll << 31, &secs) == 0)
            p->retry_after_ms = secs * 1000;
        else if (parse_http_date(h->value, h->value_len, &when) == 0)
            p->retry_after_ms = when > time(NULL) ? (int64_t)(when - time(NULL)) * 1000 : 0;
    }
    switch (p->verdict) {
    case V_OK:
        if (p->stream_req && mem_starts(p->ctype, strlen(p->ctype), "text/event-stream")) {
            p->mode = M_STREAM;
            loop_timer_stop(&p->timer);   /* from the first-byte timeout to the idle one */
            touch_idle(p);
        } else {
            p->mode = M_BUFFER;
        }
        break;
    case V_PASS:
        p->mode = M_RELAY;
        break;
    default:
        p->mode = M_ERROR_BODY;
        break;
    }
    return 0;
}

static void fail_by_status(struct proxy *p)
{
    char reason[300];
    describe_status(p, reason, sizeof reason);
    attempt_failed(p, reason, p->verdict, p->status);
}

/* Judge what was read ahead (moved to pending): an error before any
 * content, or the end ([DONE], or the body's end when `ended`) before any,
 * means the upstream did not really answer.  true when the attempt failed. */
static bool preread_failed(struct proxy *p, bool ended)
{
    buf_append(&p->pending, buf_head(&p->chunk), buf_len(&p->chunk));
    buf_clear(&p->chunk);
    if (p->error_first) {
        char reason[260];
        snprintf(reason, sizeof reason, "stream error: %s", p->stream_err);
        attempt_failed(p, reason, V_FAILOVER, p->status);
        return true;
    }
    if (!p->saw_content && (p->saw_done || ended)) {
        attempt_failed(p, p->saw_done ? "empty stream: [DONE] before any content"
                                      : "empty stream: ended before any content",
                       V_FAILOVER, p->status);
        return true;
    }
    return false;
}

static int stream_body(struct proxy *p, const char *d, size_t n)
{
    touch_idle(p);
    if (sse_feed(&p->sse, d, n, on_sse_line, p) < 0) {
        attempt_failed(p, "out of memory", V_FAILOVER, p->status);
        return -1;
    }
    if (p->committed) {
        send_chunk(p);
        return p->client ? 0 : -1;
    }
    if (preread_failed(p, false))
        return -1;
    if (p->saw_content || p->data_events >= PROXY_PREREAD_EVENTS || buf_len(&p->pending) > PROXY_PREREAD_MAX_BYTES)
        commit_stream(p);
    return p->client ? 0 : -1;
}

static int on_up_body(void *ctx, const char *d, size_t n)
{
    struct proxy *p = ctx;
    if (p->finished)
        return -1;
    p->got_body_byte = true;
    switch (p->mode) {
    case M_STREAM:
        return stream_body(p, d, n);
    case M_BUFFER:
    case M_RELAY:
        if (buf_len(&p->rbody) + n > PROXY_MAX_RESPONSE_BYTES) {
            attempt_failed(p, "upstream answer larger than the response limit", V_FAILOVER, p->status);
            return -1;
        }
        if (buf_append(&p->rbody, d, n) < 0) {
            attempt_failed(p, "out of memory buffering the answer", V_FAILOVER, p->status);
            return -1;
        }
        return 0;
    case M_ERROR_BODY: {
        size_t room = PROXY_ERROR_BODY_MAX - buf_len(&p->rbody);
        buf_append(&p->rbody, d, n < room ? n : room);
        if (n >= room) {
            fail_by_status(p);   /* enough to explain it; stop reading */
            return -1;
        }
        return 0;
    }
    default:
        return 0;
    }
}

static void on_up_done(void *ctx)
{
    struct proxy *p = ctx;
    p->up = NULL;
    if (p->finished)
        return;
    switch (p->mode) {
    case M_BUFFER: {
        char msg[200], reason[260];
        if (answer_has_error(buf_head(&p->rbody), buf_len(&p->rbody), msg, sizeof msg)) {
            snprintf(reason, sizeof reason, "status %d with an error: %s", p->status, msg);
            attempt_failed(p, reason, V_FAILOVER, p->status);
            return;
        }
        attempt_succeeded(p);
        deliver_buffered(p);
        proxy_finish(p);
        return;
    }
    case M_RELAY: {
        char reason[300];
        describe_status(p, reason, sizeof reason);
        end_attempt_bookkeeping(p);
        report_failure(p, p->status, false, reason);
        deliver_buffered(p);
        proxy_finish(p);
        return;
    }
    case M_ERROR_BODY:
        fail_by_status(p);
        return;
    case M_STREAM:
        break;
    default:
        attempt_failed(p, "upstream answered without a status", V_FAILOVER, 0);
        return;
    }
    /* End of a stream's body, as framed. */
    sse_finish(&p->sse, on_sse_line, p);
    if (!p->committed) {
        if (preread_failed(p, true))
            return;
        commit_stream(p);
        if (!p->client) {
            proxy_finish(p);
            return;
        }
    } else {
        send_chunk(p);
    }
    if (p->ep->done_marker && !p->saw_done) {
        stream_failed_after_commit(p, "upstream stream ended without [DONE]");
        return;
    }
    attempt_succeeded(p);
    if (p->client)
        conn_end(p->client);
    proxy_finish(p);
}

static void on_up_fail(void *ctx, const char *reason, bool got_head)
{
    (void)got_head;
    struct proxy *p = ctx;
    p->up = NULL;
    if (p->finished)
        return;
    if (p->committed)
        stream_failed_after_commit(p, reason);
    else
        attempt_failed(p, reason, V_FAILOVER, 0);
}

static const struct up_callbacks up_cbs = { on_up_head, on_up_body, on_up_done, on_up_fail };

static void on_timer(void *ctx)
{
    struct proxy *p = ctx;
    char reason[120];
    if (p->mode == M_STREAM && p->idle_deadline > loop_now()) {
        loop_timer_set(&p->timer, p->idle_deadline - loop_now());
        return;
    }
    if (p->committed) {
        snprintf(reason, sizeof reason, "stream idle for %ds", p->snap->cfg->stream_idle_timeout);
        stream_failed_after_commit(p, reason);
        return;
    }
    if (p->mode == M_STREAM)
        snprintf(reason, sizeof reason, "timeout: stream idle for %ds before any content",
                 p->snap->cfg->stream_idle_timeout);
    else if (p->status)
        snprintf(reason, sizeof reason, "timeout after %ds reading the answer", p->cur->prov->timeout);
    else
        snprintf(reason, sizeof reason, "timeout after %ds waiting for the answer", p->cur->prov->timeout);
    attempt_failed(p, reason, V_FAILOVER, 0);
}

/* ---------------- client hooks ---------------- */

static void on_client_drained(void *ctx)
{
    struct proxy *p = ctx;
    if (p->up)
        up_pause(p->up, false);
}

static void on_client_aborted(void *ctx)
{
    struct proxy *p = ctx;
    p->client = NULL;
    counters.client_aborts++;
    log_info("[%s] %s: client disconnected%s; upstream %s/%s closed", p->reqid, p->alias->name,
             p->committed ? " mid-stream" : "", p->cur ? p->cur->prov->name : "-",
             p->cur ? p->cur->map->upstream : "-");
    if (p->up) {
        up_abort(p->up);
        p->up = NULL;
    }
    end_attempt_bookkeeping(p);
    proxy_finish(p);
}

/* ---------------- starting ---------------- */

/* The body for the current candidate: the model replaced (and, for JSON,
 * the provider's exclude_params removed); every other byte as sent. */
static int rewrite_body(struct proxy *p, struct buf *out)
{
    const struct cfg_provider *prov = p->cur->prov;
    if (!buf_len(&p->form_ctype))
        return rewrite_request(buf_head(&p->body), p->root, p->cur->map->upstream, prov->exclude_params,
                               prov->n_exclude, out);
    const char *b = buf_head(&p->body);
    if (buf_append(out, b, p->form_model.start) < 0 || buf_append_str(out, p->cur->map->upstream) < 0 ||
        buf_append(out, b + p->form_model.end, buf_len(&p->body) - p->form_model.end) < 0)
        return -1;
    return 0;
}

static void start_attempt(struct proxy *p)
{
    p->cur = p->plan[p->next++];
    reset_attempt(p);
    p->t_attempt = loop_clock();
    p->cur->map->health->in_flight++;
    counters.attempts++;

    const struct cfg_provider *prov = p->cur->prov;
    struct up_request rq = { .url = &prov->url, .ca_file = prov->ca_file ? prov->ca_file : p->snap->cfg->ca_file };
    struct buf body = BUF_INIT;
    if (rewrite_body(p, &body) < 0) {
        buf_free(&body);
        attempt_failed(p, "out of memory", V_FAILOVER, 0);
        return;
    }
    struct buf *d = &rq.data;
    buf_printf(d, "POST %s%s%.*s HTTP/1.1\r\nHost: %s\r\n", prov->url.prefix, p->ep->path,
               (int)buf_len(&p->query), buf_head(&p->query), prov->url.authority);
    if (prov->api_key && prov->api_key[0])
        buf_printf(d, "Authorization: Bearer %s\r\n", prov->api_key);
    buf_printf(d, "Content-Type: %s\r\n", buf_len(&p->form_ctype) ? buf_cstr(&p->form_ctype) : "application/json");
    if (p->stream_req)
        buf_append_str(d, "Accept: text/event-stream\r\n");
    buf_printf(d, "X-Request-Id: %s\r\n", p->reqid);
    buf_append(d, buf_head(&p->fwd), buf_len(&p->fwd));
    buf_printf(d, "Content-Length: %zu\r\n\r\n", buf_len(&body));
    buf_append(d, buf_head(&body), buf_len(&body));
    buf_free(&body);

    loop_timer_init(&p->timer, on_timer, p);
    arm_timer(p, (uint64_t)prov->timeout * 1000u);
    p->up = up_start(&rq, &up_cbs, p);
    buf_free(&rq.data);
    if (!p->up)
        attempt_failed(p, "out of memory", V_FAILOVER, 0);
}

static bool hop_by_hop(const struct hp_header *h, const struct request *r)
{
    static const char *const drop[] = {
        "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "authorization", "host", "content-length", "content-type",
        "accept-encoding", "expect", "x-request-id", "x-api-key", "api-key", "cookie",
    };
    for (size_t i = 0; i < ARRAY_LEN(drop); i++)
        if (hp_name_eq(h, drop[i]))
            return true;
    /* RFC 9110 7.6.1: fields named in Connection are hop-by-hop too. */
    const struct hp_header *c = hp_find(r->hp.headers, r->hp.num_headers, "connection");
    if (c) {
        char name[64];
        if (h->name_len < sizeof name) {
            memcpy(name, h->name, h->name_len);
            name[h->name_len] = '\0';
            if (hp_has_token(c->value, c->value_len, name))
                return true;
        }
    }
    return false;
}

static void forward_headers(struct proxy *p, const struct request *r)
{
    for (size_t i = 0; i < r->hp.num_headers; i++) {
        const struct hp_header *h = &r->hp.headers[i];
        if (hop_by_hop(h, r))
            continue;
        if (p->stream_req && hp_name_eq(h, "accept"))
            continue;   /* ours says text/event-stream */
        buf_append(&p->fwd, h->name, h->name_len);
        buf_append(&p->fwd, ": ", 2);
        buf_append(&p->fwd, h->value, h->value_len);
        buf_append(&p->fwd, "\r\n", 2);
    }
}

static void pick_request_id(struct proxy *p, const struct request *r)
{
    const struct hp_header *h = hp_find(r->hp.headers, r->hp.num_headers, "x-request-id");
    if (h && h->value_len > 0 && h->value_len <= REQID_MAX) {
        bool ok = true;
        for (size_t i = 0; i < h->value_len && ok; i++) {
            char ch = h->value[i];
            ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                 ch == '_' || ch == '.' || ch == ':';
        }
        if (ok) {
            memcpy(p->reqid, h->value, h->value_len);
            p->reqid[h->value_len] = '\0';
            return;
        }
    }
    random_hex(p->reqid, 8);
}

#define MODEL_NAME_MAX 511

/* What the proxy needs from a request body. */
struct request_fields {
    char model[MODEL_NAME_MAX + 1];
    bool stream;
    struct json_val root;          /* JSON */
    struct mp_field form_model;    /* multipart */
};

static int check_model(struct conn *c, const char *model, size_t len)
{
    if (len > MODEL_NAME_MAX || len != strlen(model) || strpbrk(model, "\r\n")) {
        reply_error(c, 400, "invalid_request_error", NULL,
                    "model must be a name of at most %d bytes without NUL or line breaks", MODEL_NAME_MAX);
        return -1;
    }
    return 0;
}

static int read_json(struct conn *c, const struct request *r, const struct endpoint *ep, struct request_fields *f)
{
    const char *b = buf_len(&r->body) ? buf_head(&r->body) : "";
    size_t n = buf_len(&r->body);
    struct json_val v;
    struct json_error err;
    if (json_parse(b, n, &f->root, &err) < 0) {
        reply_error(c, 400, "invalid_request_error", NULL, "invalid JSON body: %s at byte %zu", err.msg,
                    err.offset);
        return -1;
    }
    if (f->root.type != JSON_OBJECT) {
        reply_error(c, 400, "invalid_request_error", NULL, "the request body must be a JSON object");
        return -1;
    }
    if (!json_get(b, f->root, "model", &v) || v.type != JSON_STRING || v.end - v.start <= 2) {
        reply_error(c, 400, "invalid_request_error", NULL, "model is required");
        return -1;
    }
    if (check_model(c, f->model, json_str_decode(b, v, f->model, sizeof f->model)) < 0)
        return -1;
    if (ep->needs_messages &&
        (!json_get(b, f->root, "messages", &v) || v.type != JSON_ARRAY || json_is_empty(b, v))) {
        reply_error(c, 400, "invalid_request_error", NULL, "messages is required");
        return -1;
    }
    f->stream = json_get(b, f->root, "stream", &v) && v.type == JSON_TRUE;
    return 0;
}

/* A file upload (audio, an image to edit): the model is a form field. */
static int read_form(struct conn *c, const struct request *r, const char *boundary, struct request_fields *f)
{
    static const char *const names[] = { "model", "stream" };
    struct mp_field fields[2];
    const char *why;
    const char *b = buf_len(&r->body) ? buf_head(&r->body) : "";
    if (multipart_scan(b, buf_len(&r->body), boundary, names, 2, fields, &why) < 0) {
        reply_error(c, 400, "invalid_request_error", NULL, "invalid multipart body: %s", why);
        return -1;
    }
    if (!fields[0].found || fields[0].end == fields[0].start) {
        reply_error(c, 400, "invalid_request_error", NULL, "model is required");
        return -1;
    }
    size_t len = fields[0].end - fields[0].start;
    if (len <= MODEL_NAME_MAX) {
        memcpy(f->model, b + fields[0].start, len);
        f->model[len] = '\0';
    }
    if (check_model(c, f->model, len) < 0)
        return -1;
    f->form_model = fields[0];
    f->stream = fields[1].found && mem_eq(b + fields[1].start, fields[1].end - fields[1].start, "true");
    return 0;
}

void proxy_handle(struct conn *c, struct request *r, struct snapshot *s)
{
    const struct endpoint *ep = endpoint_find(r->path, r->path_len);
    if (!ep) {
        reply_error(c, 404, "invalid_request_error", "not_found", "unknown endpoint");
        return;
    }
    struct request_fields f = { .root = { JSON_INVALID, 0, 0 } };
    const struct hp_header *ct = hp_find(r->hp.headers, r->hp.num_headers, "content-type");
    char boundary[MP_BOUNDARY_MAX + 1];
    bool form = ep->form && ct && ct->value_len >= 10 && mem_ieq(ct->value, 10, "multipart/");
    if (form && multipart_boundary(ct->value, ct->value_len, boundary, sizeof boundary) < 0) {
        reply_error(c, 400, "invalid_request_error", NULL,
                    "invalid multipart body: the Content-Type must be multipart/form-data with a valid boundary");
        return;
    }
    if (form ? read_form(c, r, boundary, &f) < 0 : read_json(c, r, ep, &f) < 0)
        return;
    const char *model = f.model;
    const struct alias_entry *a = snapshot_alias(s, model, strlen(model));
    if (!a) {
        reply_error(c, 404, "invalid_request_error", "model_not_found",
                    "The model `%s` does not exist or you do not have access to it.", model);
        return;
    }
    size_t alloc;
    struct proxy *p = mem_get(sizeof *p, &alloc);
    if (!p) {
        reply_error(c, 503, "server_error", NULL, "out of memory");
        return;
    }
    memset(p, 0, sizeof *p);
    p->alloc = alloc;
    p->client = c;
    p->snap = snapshot_ref(s);
    p->alias = a;
    p->ep = ep;
    p->root = f.root;
    p->form_model = f.form_model;
    if (form)
        buf_append(&p->form_ctype, ct->value, ct->value_len);
    p->stream_req = f.stream;
    p->t_start = loop_now();
    p->body = r->body;                 /* take the body: read once, kept for retries */
    memset(&r->body, 0, sizeof r->body);
    if (r->query)
        buf_printf(&p->query, "?%.*s", (int)r->query_len, r->query);
    pick_request_id(p, r);
    forward_headers(p, r);
    loop_timer_init(&p->timer, on_timer, p);
    sse_init(&p->sse);
    p->nplan = balance_plan(a, s->cfg->max_retries, p->plan, BAL_MAX_ATTEMPTS);
    counters.proxied++;
    counters.bytes_in += buf_len(&p->body);
    struct conn_hooks hooks = { on_client_drained, on_client_aborted, p };
    conn_set_hooks(c, &hooks);
    start_attempt(p);
}
