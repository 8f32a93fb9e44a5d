/* attempt: the failure table, retries, the request's end.  The events of
 * a streamed answer are in attempt_stream.c. */
#include "attempt.h"

#include <stdio.h>
#include <string.h>

#include "apierr.h"
#include "attempt_priv.h"
#include "json.h"
#include "rewrite.h"
#include "util.h"

/* ---------------- the failure table, by status ---------------- */

enum rule {
    RULE_OK,          /* 2xx: the answer */
    RULE_PASS,        /* the client's own mistake: returned as sent */
    RULE_BAD_REQUEST, /* 400: the context-length form routes on, others are returned as sent */
    RULE_BROKEN,      /* the provider's key or model is broken: next candidate, counts */
    RULE_TRANSIENT,   /* worth the same candidate again, then the next; counts */
    RULE_RATE,        /* 429: Retry-After waited out when short, else cooldown and next */
    RULE_OVERLOADED,  /* 529 (Anthropic): cooldown and next at once */
};

/* First match wins (README: "Routing and failure semantics"). */
static const struct status_rule {
    int lo, hi;
    enum rule rule;
} status_rules[] = {
    { 200, 299, RULE_OK },
    { 400, 400, RULE_BAD_REQUEST },
    { 401, 401, RULE_BROKEN },
    { 403, 404, RULE_BROKEN },
    { 408, 409, RULE_TRANSIENT },
    { 429, 429, RULE_RATE },
    { 400, 499, RULE_PASS },
    { 529, 529, RULE_OVERLOADED },
    { 500, 599, RULE_TRANSIENT },
    { 100, 399, RULE_BROKEN },
};

static enum rule rule_of(const struct attempt *a, int status)
{
    if (status == 404 && a->pol.not_found_passes)
        return RULE_PASS;
    for (size_t i = 0; i < ARRAY_LEN(status_rules); i++)
        if (status >= status_rules[i].lo && status <= status_rules[i].hi)
            return status_rules[i].rule;
    return RULE_BROKEN;
}

/* The context-length 400 in the forms providers use (lower case). */
static const char *const context_phrases[] = {
    "maximum context length",
    "context length exceeded",
    "context_length",
    "context window",
    "prompt is too long",
    "input is too long",
    "reduce the length of the messages",
    "too many tokens",
};

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return true;
    return false;
}

bool att_is_context_error(const char *body, size_t n)
{
    struct json_val root, err, code;
    struct json_error jerr;
    if (n && json_parse(body, n, &root, &jerr) == 0 && root.type == JSON_OBJECT &&
        json_get(body, root, "error", &err) && err.type == JSON_OBJECT && json_get(body, err, "code", &code) &&
        json_str_eq(body, code, "context_length_exceeded", 23))
        return true;
    char msg[512];
    answer_error_message(body, n, msg, sizeof msg);
    for (size_t i = 0; i < ARRAY_LEN(context_phrases); i++)
        if (contains_ci(msg, context_phrases[i]))
            return true;
    return false;
}

/* ---------------- the action queue ---------------- */

void att_queue(struct attempt *a, enum att_act_kind kind)
{
    if (a->qlen == ATT_QUEUE)
        return;   /* cannot happen: at most COMMIT, SEND, FINISH per call */
    struct att_action *act = &a->q[(a->qhead + a->qlen++) % ATT_QUEUE];
    memset(act, 0, sizeof *act);
    act->kind = kind;
    if (kind == ACT_FINISH || kind == ACT_ABORT)
        a->over = true;
}

void att_send(struct attempt *a, const char *p, size_t n)
{
    if (!n)
        return;
    /* Consecutive sends become one; the data is resolved in att_next, when
     * the output buffer no longer moves. */
    struct att_action *last = a->qlen ? &a->q[(a->qhead + a->qlen - 1) % ATT_QUEUE] : NULL;
    size_t off = buf_len(&a->sendbuf);
    if (buf_append(&a->sendbuf, p, n) < 0)
        return;
    if (last && last->kind == ACT_SEND && last->len + (size_t)(uintptr_t)last->data == off) {
        last->len += n;
        return;
    }
    att_queue(a, ACT_SEND);
    struct att_action *act = &a->q[(a->qhead + a->qlen - 1) % ATT_QUEUE];
    act->data = (const char *)(uintptr_t)off;   /* an offset until att_next */
    act->len = n;
}

bool att_next(struct attempt *a, struct att_action *act)
{
    if (!a->qlen) {
        memset(act, 0, sizeof *act);
        return false;
    }
    *act = a->q[a->qhead];
    a->qhead = (a->qhead + 1) % ATT_QUEUE;
    a->qlen--;
    if (act->kind == ACT_SEND)
        act->data = buf_head(&a->sendbuf) + (size_t)(uintptr_t)act->data;
    return true;
}

/* Every input starts with an empty output: the glue has taken what the
 * previous call queued. */
static void begin_input(struct attempt *a)
{
    buf_clear(&a->sendbuf);
}

/* ---------------- life cycle ---------------- */

void att_init(struct attempt *a, const struct att_policy *pol)
{
    memset(a, 0, sizeof *a);
    a->pol = *pol;
    a->rng = pol->seed ? pol->seed : 0x9e3779b9u;
    a->phase = PH_IDLE;
    a->retry_after_ms = -1;
    a->text_index = -1;
    sse_init(&a->sse);
}

void att_free(struct attempt *a)
{
    buf_free(&a->head_lines);
    buf_free(&a->body);
    buf_free(&a->ev);
    buf_free(&a->fallback);
    buf_free(&a->text);
    buf_free(&a->first_id);
    buf_free(&a->first_created);
    buf_free(&a->sendbuf);
    buf_free(&a->model_json);
    buf_free(&a->scratch);
    sse_free(&a->sse);
}

static void reset_attempt(struct attempt *a)
{
    /* Per stream flags start over with each attempt, before its head:
     * the timers read them (att_due). */
    a->cont_forwarding = a->cont_bad = a->diverged = false;
    a->stream_broken = a->error_first = false;
    a->text.end = a->text.start + a->text_sent;
    a->status = 0;
    a->ctype[0] = '\0';
    a->retry_after_ms = -1;
    buf_clear(&a->head_lines);
    buf_clear(&a->body);
    memset(&a->out, 0, sizeof a->out);
    a->out.ttft_ms = -1;
}

void att_start(struct attempt *a, const struct att_target *t, uint64_t now)
{
    begin_input(a);
    if (a->over)
        return;
    if (!a->retry_pending) {
        a->same_retries = 0;
        a->ra_waits = 0;
    }
    a->retry_pending = false;
    a->tgt = *t;
    reset_attempt(a);
    buf_clear(&a->model_json);
    if (t->model)
        json_append_str(&a->model_json, t->model, strlen(t->model));
    a->phase = PH_HEAD;
    a->started = a->last_byte = now;
}

void att_decline_retry(struct attempt *a)
{
    a->retry_pending = false;
}

bool att_running(const struct attempt *a)
{
    return a->phase != PH_IDLE && a->phase != PH_OVER;
}

const char *att_text(const struct attempt *a, size_t *len)
{
    *len = buf_len(&a->text);
    return *len ? buf_head(&a->text) : "";
}

size_t att_held(const struct attempt *a)
{
    return a->phase == PH_BUFFER || a->phase == PH_RELAY ? buf_len(&a->body) : 0;
}

const struct buf *att_head_lines(const struct attempt *a)
{
    return &a->head_lines;
}

/* ---------------- outcomes and decisions ---------------- */

void att_set_outcome(struct attempt *a, enum att_out_kind kind, bool counts, const char *reason)
{
    a->out.delivered = a->tgt.cont == CONT_NONE ? a->committed : a->cont_forwarding;
    a->out.kind = kind;
    a->out.counts = counts;
    a->out.status = a->status;
    if (reason) {
        snprintf(a->out.reason, sizeof a->out.reason, "%s", reason);
        redact_secrets(a->out.reason);   /* it goes to logs and /internal/stats */
    }
    a->phase = PH_IDLE;
}

/* Queue an action that ends the attempt, carrying its outcome. */
static void queue_end(struct attempt *a, enum att_act_kind kind)
{
    att_queue(a, kind);
    a->q[(a->qhead + a->qlen - 1) % ATT_QUEUE].outcome = &a->out;
}

static uint32_t next_rand(struct attempt *a)
{
    /* xorshift32: jitter only, no secret */
    uint32_t x = a->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return a->rng = x;
}

/* A delay in [lo, hi) ms. */
static uint64_t jitter(struct attempt *a, uint64_t lo, uint64_t hi)
{
    return hi > lo ? lo + next_rand(a) % (hi - lo) : lo;
}

static bool fits_deadline(const struct attempt *a, uint64_t now, uint64_t delay)
{
    return !a->pol.deadline || now + delay < a->pol.deadline;
}

static uint64_t capped(const struct attempt *a, uint64_t ms)
{
    return ms > a->pol.max_cooldown_ms ? a->pol.max_cooldown_ms : ms;
}

static void retry_same(struct attempt *a, uint64_t delay)
{
    a->retry_pending = true;
    queue_end(a, ACT_RETRY);
    a->q[(a->qhead + a->qlen - 1) % ATT_QUEUE].delay_ms = delay;
}

/* A 429 or a 529: cool down, and wait out a short Retry-After. */
static void busy(struct attempt *a, enum fail_class fc, const char *reason, uint64_t now)
{
    int64_t ra = fc == FC_RATE ? a->retry_after_ms : -1;
    uint64_t wait = ra >= 0 ? (uint64_t)ra : a->pol.cooldown_ms;
    att_set_outcome(a, OUT_COOLDOWN, false, reason);
    a->out.cooldown_ms = capped(a, wait);
    if (ra >= 0 && (uint64_t)ra <= a->pol.retry_after_max_ms && a->ra_waits < ATT_RETRY_AFTER_WAITS &&
        fits_deadline(a, now, (uint64_t)ra)) {
        a->ra_waits++;
        retry_same(a, (uint64_t)ra);
        return;
    }
    a->last_busy = true;
    queue_end(a, ACT_FAILOVER);
}

void att_failed(struct attempt *a, enum fail_class fc, int status, const char *reason, uint64_t now)
{
    if (a->over || a->phase == PH_IDLE)
        return;
    a->last_status = status;
    a->last_busy = false;
    a->last_local = false;
    snprintf(a->last_error, sizeof a->last_error, "%s", reason);
    redact_secrets(a->last_error);
    if (a->committed) {
        /* Nothing sent can be taken back: continue elsewhere, or end.  The
         * text of an event not complete was never the client's. */
        a->text.end = a->text.start + a->text_sent;
        att_set_outcome(a, OUT_FAILURE, fc != FC_SOFT, reason);
        if (!a->cont_forwarding && a->tgt.cont == CONT_NONE)
            snprintf(a->broken_reason, sizeof a->broken_reason, "%s", reason);
        if (stream_can_continue(a))
            queue_end(a, ACT_CONTINUE);
        else
            att_end_stream_with_error(a, a->broken_reason, true);
        return;
    }
    if (fc == FC_RATE || fc == FC_OVERLOADED) {
        busy(a, fc, reason, now);
        return;
    }
    att_set_outcome(a, OUT_FAILURE, fc != FC_SOFT, reason);
    uint64_t base = (uint64_t)ATT_BACKOFF_MIN_MS << (a->same_retries < 4 ? a->same_retries : 4);
    uint64_t delay = jitter(a, base, base * 2 > ATT_BACKOFF_MAX_MS ? ATT_BACKOFF_MAX_MS : base * 2);
    if (fc == FC_TRANSIENT && a->same_retries < a->tgt.model_retries && fits_deadline(a, now, delay)) {
        a->same_retries++;
        retry_same(a, delay);
        return;
    }
    queue_end(a, ACT_FAILOVER);
}

/* ---------------- answers the engine makes itself ---------------- */

/* A whole response: head and body (the end is queued by the caller). */
static void respond(struct attempt *a, enum att_origin origin, int status, const char *ctype, const char *body,
                    size_t n)
{
    att_queue(a, ACT_COMMIT);
    struct att_action *c = &a->q[(a->qhead + a->qlen - 1) % ATT_QUEUE];
    c->origin = origin;
    c->status = status;
    c->ctype = ctype;
    c->length = (int64_t)n;
    a->committed = true;
    att_send(a, body, n);
}

static void respond_error(struct attempt *a, int status, const char *type, const char *code, const char *msg)
{
    struct buf b = BUF_INIT;
    char clean[ATT_REASON_MAX + 64];
    snprintf(clean, sizeof clean, "%s", msg);
    redact_secrets(clean);
    apierr_json(&b, a->pol.dialect, status, type, code, clean);
    buf_append(&b, "\n", 1);
    respond(a, ORIGIN_OWN, status, "application/json", buf_head(&b), buf_len(&b));
    buf_free(&b);
}

void att_end_stream_with_error(struct attempt *a, const char *reason, bool with_outcome)
{
    struct buf b = BUF_INIT;
    char clean[ATT_REASON_MAX];
    snprintf(clean, sizeof clean, "%s", reason[0] ? reason : "upstream stream broken");
    redact_secrets(clean);
    if (a->mid_event)
        buf_append(&b, "\n\n", 2);   /* end whatever line and event were in progress */
    apierr_event(&b, a->pol.dialect, clean);
    att_send(a, buf_head(&b), buf_len(&b));
    buf_free(&b);
    if (with_outcome)
        queue_end(a, ACT_FINISH);
    else
        att_queue(a, ACT_FINISH);
    a->phase = PH_OVER;
}

/* The gateway's own final answer: request_timeout, or every attempt
 * failed (the kept 400 when there is one).  with_outcome: the attempt
 * that ends here reports with the FINISH. */
static void final_answer(struct attempt *a, bool with_outcome)
{
    if (a->deadline_hit) {
        respond_error(a, 504, "upstream_error", "request_timeout", a->last_error);
    } else if (a->last_local) {
        /* The gateway's own shortage, not the providers': a 503 tells the
         * client to come back, and says whose fault it was. */
        respond_error(a, 503, "server_error", NULL, a->last_error);
    } else if (buf_len(&a->fallback)) {
        respond(a, ORIGIN_FALLBACK, a->fallback_status, a->fallback_ctype, buf_head(&a->fallback),
                buf_len(&a->fallback));
    } else {
        char msg[ATT_REASON_MAX + 32];
        snprintf(msg, sizeof msg, "all providers failed: %s", a->last_error[0] ? a->last_error : "no candidate");
        respond_error(a, 502, "upstream_error", NULL, msg);
    }
    if (with_outcome)
        queue_end(a, ACT_FINISH);
    else
        att_queue(a, ACT_FINISH);
    a->phase = PH_OVER;
}

void att_exhausted(struct attempt *a, uint64_t now)
{
    begin_input(a);
    if (a->over)
        return;
    if (a->last_busy && a->busy_backoffs < ATT_BUSY_BACKOFFS && !a->deadline_hit) {
        /* Every candidate is rate limited or overloaded: pause and try the
         * last one again rather than give up (at most twice a second). */
        uint64_t base = (uint64_t)ATT_BUSY_BACKOFF_MIN_MS << a->busy_backoffs;
        uint64_t delay = jitter(a, base, base * 2);
        if (fits_deadline(a, now, delay)) {
            a->busy_backoffs++;
            a->retry_pending = true;
            att_queue(a, ACT_RETRY);
            a->q[(a->qhead + a->qlen - 1) % ATT_QUEUE].delay_ms = delay;
            return;
        }
    }
    final_answer(a, false);
}

void att_no_continuation(struct attempt *a)
{
    begin_input(a);
    if (a->over)
        return;
    att_end_stream_with_error(a, a->broken_reason, false);
}

void att_client_gone(struct attempt *a)
{
    begin_input(a);
    if (a->over)
        return;
    bool running = att_running(a);
    att_set_outcome(a, OUT_NEUTRAL, false, "client disconnected");
    if (running)
        queue_end(a, ACT_ABORT);
    else
        att_queue(a, ACT_ABORT);
    a->phase = PH_OVER;
}

/* ---------------- the upstream's answer ---------------- */

#define RATELIMIT_PREFIX "x-ratelimit-"

/* The serving upstream's rate-limit state (x-ratelimit-limit-requests,
 * -remaining-tokens, ...) lets a client pace itself, so those lines reach
 * it; nothing else of the upstream's head does (cookies, server names and
 * account ids stay behind the gateway).  Control bytes never pass. */
static void keep_rate_limits(struct attempt *a, const struct hp_response *res)
{
    const size_t plen = sizeof RATELIMIT_PREFIX - 1;
    for (size_t i = 0; i < res->num_headers; i++) {
        const struct hp_header *h = &res->headers[i];
        if (h->name_len <= plen || !mem_ieq(h->name, plen, RATELIMIT_PREFIX))
            continue;
        if (buf_len(&a->head_lines) + h->name_len + h->value_len + 4 > ATT_HEAD_LINES_MAX)
            break;
        buf_append(&a->head_lines, h->name, h->name_len);
        buf_append(&a->head_lines, ": ", 2);
        for (size_t k = 0; k < h->value_len; k++) {
            unsigned char ch = (unsigned char)h->value[k];
            buf_append(&a->head_lines, ch < 0x20 || ch == 0x7f ? "?" : h->value + k, 1);
        }
        buf_append(&a->head_lines, "\r\n", 2);
    }
}

/* Retry-After: delay-seconds or an HTTP-date (RFC 9110 10.2.3). */
static int64_t retry_after(const struct hp_response *res, time_t wall)
{
    const struct hp_header *h = hp_find(res->headers, res->num_headers, "retry-after");
    long long secs;
    time_t when;
    if (!h)
        return -1;
    if (parse_int(h->value, h->value_len, 0, 1ll << 31, &secs) == 0)
        return (int64_t)secs * 1000;
    if (parse_http_date(h->value, h->value_len, &when) == 0)
        return when > wall ? (int64_t)(when - wall) * 1000 : 0;
    return -1;
}

void att_head(struct attempt *a, const struct hp_response *res, uint64_t now, time_t wall)
{
    begin_input(a);
    if (a->over || a->phase != PH_HEAD)
        return;
    a->last_byte = now;
    a->status = res->status;
    const struct hp_header *h = hp_find(res->headers, res->num_headers, "content-type");
    if (h) {
        size_t n = h->value_len < sizeof a->ctype - 1 ? h->value_len : sizeof a->ctype - 1;
        for (size_t i = 0; i < n; i++)
            a->ctype[i] = (unsigned char)h->value[i] < 0x20 ? '?' : h->value[i];
        a->ctype[n] = '\0';
    }
    a->retry_after_ms = retry_after(res, wall);
    keep_rate_limits(a, res);
    switch (rule_of(a, res->status)) {
    case RULE_OK:
        if (a->pol.stream && mem_starts(a->ctype, strlen(a->ctype), "text/event-stream")) {
            a->phase = PH_STREAM;
            stream_begin(a);
        } else {
            a->phase = PH_BUFFER;
        }
        break;
    case RULE_PASS:
    case RULE_BAD_REQUEST:
        a->phase = PH_RELAY;
        break;
    default:
        a->phase = PH_ERROR_BODY;
        break;
    }
}

/* "status N: message" of an answer, for logs and the 502. */
static void describe(const struct attempt *a, char *out, size_t cap)
{
    /* Redacted whole, then cut: a key split by the cut would escape it. */
    char msg[2 * ATT_REASON_MAX];
    answer_error_message(buf_head(&a->body), buf_len(&a->body), msg, sizeof msg);
    redact_secrets(msg);
    if (msg[0])
        snprintf(out, cap, "status %d: %.160s", a->status, msg);
    else
        snprintf(out, cap, "status %d", a->status);
}

/* An error status whose body was read (or enough of it). */
static void fail_by_status(struct attempt *a, uint64_t now)
{
    char reason[ATT_REASON_MAX];
    describe(a, reason, sizeof reason);
    switch (rule_of(a, a->status)) {
    case RULE_TRANSIENT: att_failed(a, FC_TRANSIENT, a->status, reason, now); break;
    case RULE_RATE: att_failed(a, FC_RATE, a->status, reason, now); break;
    case RULE_OVERLOADED: att_failed(a, FC_OVERLOADED, a->status, reason, now); break;
    default: att_failed(a, FC_NEXT, a->status, reason, now); break;
    }
}

void att_body(struct attempt *a, const char *p, size_t n, uint64_t now)
{
    begin_input(a);
    if (a->over)
        return;
    a->last_byte = now;
    switch (a->phase) {
    case PH_STREAM:
        stream_feed(a, p, n, now);
        return;
    case PH_BUFFER:
    case PH_RELAY:
        if (buf_len(&a->body) + n > ATT_RESPONSE_MAX) {
            att_failed(a, FC_NEXT, a->status, "upstream answer larger than the response limit", now);
            return;
        }
        if (buf_append(&a->body, p, n) < 0)
            att_failed(a, FC_NEXT, a->status, "out of memory buffering the answer", now);
        return;
    case PH_ERROR_BODY: {
        size_t room = ATT_ERROR_BODY_MAX - buf_len(&a->body);
        buf_append(&a->body, p, n < room ? n : room);
        if (n >= room)
            fail_by_status(a, now);   /* enough to explain it: stop reading */
        return;
    }
    default:
        return;
    }
}

/* The answer with its "model" rewritten (when it is a JSON object that
 * has one), and its usage noted. */
static void deliver_answer(struct attempt *a)
{
    const char *b = buf_len(&a->body) ? buf_head(&a->body) : "";
    size_t n = buf_len(&a->body);
    struct json_val root, model, usage;
    struct json_error jerr;
    struct buf out = BUF_INIT;
    const char *send = b;
    size_t send_len = n;
    if (n && b[0] == '{' && json_parse(b, n, &root, &jerr) == 0 && root.type == JSON_OBJECT) {
        if (json_get(b, root, "usage", &usage) && usage.type == JSON_OBJECT) {
            event_usage(a->pol.dialect, b, usage, &a->out.usage);
            a->out.has_usage = true;
        }
        if (buf_len(&a->model_json) && json_get(b, root, "model", &model) && model.type == JSON_STRING) {
            struct span_edit e = { model.start, model.end, buf_head(&a->model_json), buf_len(&a->model_json) };
            if (rewrite_spans(b, n, &e, 1, &out) == 0) {
                send = buf_head(&out);
                send_len = buf_len(&out);
            }
        }
    }
    respond(a, ORIGIN_UPSTREAM, a->status, a->ctype[0] ? a->ctype : "application/json", send, send_len);
    buf_free(&out);
}

/* 2xx, read whole: an error in disguise, or the answer. */
static void end_buffered(struct attempt *a, uint64_t now)
{
    char msg[160], reason[ATT_REASON_MAX];
    if (answer_has_error(buf_head(&a->body), buf_len(&a->body), msg, sizeof msg)) {
        snprintf(reason, sizeof reason, "status %d with an error: %s", a->status, msg);
        att_failed(a, FC_NEXT, a->status, reason, now);
        return;
    }
    if (a->committed) {
        /* A continuation that answered without a stream cannot be spliced. */
        att_failed(a, FC_SOFT, a->status, "the continuation answered without a stream", now);
        return;
    }
    deliver_answer(a);
    att_set_outcome(a, OUT_SUCCESS, false, NULL);
    queue_end(a, ACT_FINISH);
    a->phase = PH_OVER;
}

/* 4xx returned as sent, unless a 400 says the context was too long (the
 * next candidate may have a larger one) or it is a continuation's
 * (never shown: a refused prefill means another candidate). */
static void end_relayed(struct attempt *a, uint64_t now)
{
    char reason[ATT_REASON_MAX];
    describe(a, reason, sizeof reason);
    if (a->committed) {
        att_failed(a, FC_SOFT, a->status, reason, now);
        return;
    }
    if (a->status == 400 && a->tgt.hide_usage_chunk &&
        mem_find(buf_head(&a->body), buf_len(&a->body), "stream_options", 14)) {
        /* The provider does not take the include_usage the gateway added on
         * its own: the same request again without it (the caller notes it). */
        att_set_outcome(a, OUT_FAILURE, false, reason);
        a->out.option_refused = true;
        retry_same(a, 0);
        return;
    }
    if (a->status == 400 && att_is_context_error(buf_head(&a->body), buf_len(&a->body))) {
        if (!buf_len(&a->fallback)) {
            buf_append(&a->fallback, buf_head(&a->body), buf_len(&a->body));
            a->fallback_status = a->status;
            snprintf(a->fallback_ctype, sizeof a->fallback_ctype, "%s",
                     a->ctype[0] ? a->ctype : "application/json");
        }
        att_failed(a, FC_SOFT, a->status, reason, now);
        return;
    }
    respond(a, ORIGIN_UPSTREAM, a->status, a->ctype[0] ? a->ctype : "application/json", buf_head(&a->body),
            buf_len(&a->body));
    att_set_outcome(a, OUT_FAILURE, false, reason);
    queue_end(a, ACT_FINISH);
    a->phase = PH_OVER;
}

void att_end(struct attempt *a, uint64_t now)
{
    begin_input(a);
    if (a->over)
        return;
    switch (a->phase) {
    case PH_BUFFER: end_buffered(a, now); return;
    case PH_RELAY: end_relayed(a, now); return;
    case PH_ERROR_BODY: fail_by_status(a, now); return;
    case PH_STREAM: stream_ended(a, now); return;
    case PH_HEAD: att_failed(a, FC_NEXT, 0, "upstream answered without a status", now); return;
    default: return;
    }
}

void att_fail(struct attempt *a, enum att_xerr kind, const char *reason, uint64_t now)
{
    begin_input(a);
    if (a->over || !att_running(a))
        return;
    enum fail_class fc = kind == XERR_LOST ? FC_TRANSIENT : kind == XERR_LOCAL ? FC_SOFT : FC_NEXT;
    att_failed(a, fc, a->status, reason, now);
    a->last_local = kind == XERR_LOCAL;
}

/* ---------------- time ---------------- */

static bool waiting_for_content(const struct attempt *a)
{
    return a->pol.stream && !stream_content_started(a);
}

uint64_t att_due(const struct attempt *a)
{
    if (a->over || !att_running(a))
        return 0;
    uint64_t due = !a->committed && a->pol.deadline ? a->pol.deadline : UINT64_MAX;
    uint64_t t;
    if (a->phase != PH_STREAM && (t = a->started + a->tgt.timeout_ms) < due)
        due = t;
    if (waiting_for_content(a) && a->tgt.first_token_ms && (t = a->started + a->tgt.first_token_ms) < due)
        due = t;
    if (a->phase == PH_STREAM && (t = a->last_byte + a->pol.idle_ms) < due)
        due = t;
    return due == UINT64_MAX ? 0 : due;
}

void att_timer(struct attempt *a, uint64_t now)
{
    begin_input(a);
    if (a->over || !att_running(a))
        return;
    char reason[ATT_REASON_MAX];
    if (!a->committed && a->pol.deadline && now >= a->pol.deadline) {
        /* The request's own budget: the attempt it cuts is nobody's fault. */
        a->deadline_hit = true;
        snprintf(a->last_error, sizeof a->last_error, "request_timeout reached before an answer");
        att_set_outcome(a, OUT_FAILURE, false, a->last_error);
        final_answer(a, true);
        return;
    }
    if (a->phase != PH_STREAM && now >= a->started + a->tgt.timeout_ms) {
        snprintf(reason, sizeof reason, "timeout after %llus %s", (unsigned long long)(a->tgt.timeout_ms / 1000),
                 a->phase == PH_HEAD ? "waiting for the answer" : "reading the answer");
        att_failed(a, FC_NEXT, a->status, reason, now);
        return;
    }
    if (waiting_for_content(a) && a->tgt.first_token_ms && now >= a->started + a->tgt.first_token_ms) {
        snprintf(reason, sizeof reason, "no content within %llus (first_token_timeout)",
                 (unsigned long long)(a->tgt.first_token_ms / 1000));
        att_failed(a, FC_NEXT, a->status, reason, now);
        return;
    }
    if (a->phase == PH_STREAM && now >= a->last_byte + a->pol.idle_ms) {
        snprintf(reason, sizeof reason, "stream idle for %llus%s", (unsigned long long)(a->pol.idle_ms / 1000),
                 stream_content_started(a) ? "" : " before any content");
        att_failed(a, FC_NEXT, a->status, reason, now);
    }
}

