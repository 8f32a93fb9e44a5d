/* Unit tests of the attempt engine (attempt.c, attempt_stream.c): one row
 * per line of the README's failure table and per stream case, each run
 * through a small glue like proxy.c's, with every upstream body fed whole,
 * cut in two at every byte, and one byte at a time: the decisions and the
 * bytes the client gets must not depend on how the upstream's reads fall. */
#include "attempt.h"
#include "buf.h"
#include "tap.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_CANDS 4
#define MAX_STEPS 8
#define T0 100000u

/* How one attempt's upstream behaves. */
enum end { E_END, E_LOST, E_CONNECT, E_PROTOCOL, E_LOCAL, E_TIMER, E_GONE };

struct step {
    int status;            /* 0: no head (E_CONNECT, E_LOCAL, a timer before the head) */
    const char *hdrs;      /* extra head lines, "name: value\n"... */
    const char *body;
    enum end end;
    uint64_t at;           /* E_TIMER: ms after the attempt's start */
};

struct tcase {
    const char *name;
    struct att_policy pol;
    int retries;                     /* model_retries of every candidate */
    int ncands;
    enum att_cont cont[MAX_CANDS];   /* each candidate's continuation */
    struct step steps[MAX_STEPS];    /* the attempts, in the order they run */
    const char *want;                /* the transcript */
    const char *want_out;            /* the client's bytes (NULL: not checked) */
};

/* Cases named so ran with include_usage injected by the gateway (a name
 * rather than a field keeps the positional table short). */
#define INJECTED_USAGE "[injected usage] "


/* ---------------- the glue ---------------- */

struct run {
    struct attempt a;
    const struct tcase *tc;
    int cur;               /* candidate */
    size_t step;           /* next script step */
    uint64_t now;
    struct buf log;        /* transcript */
    struct buf out;        /* client bytes */
    bool over;
    bool in_attempt;
    int split;             /* -1 whole, 0 byte by byte, k: cut at byte k */
};

static const char *out_name(enum att_out_kind k, bool counts)
{
    switch (k) {
    case OUT_SUCCESS: return "ok";
    case OUT_FAILURE: return counts ? "fail" : "soft";
    case OUT_COOLDOWN: return "cool";
    case OUT_NEUTRAL: return "neutral";
    default: return "none";
    }
}

static void note(struct run *r, const char *s)
{
    if (buf_len(&r->log))
        buf_append(&r->log, " ", 1);
    buf_append_str(&r->log, s);
}

static void note_outcome(struct run *r, const char *what, const struct att_action *act)
{
    char s[96];
    if (act->outcome)
        snprintf(s, sizeof s, "%s(%s)", what, out_name(act->outcome->kind, act->outcome->counts));
    else
        snprintf(s, sizeof s, "%s", what);
    note(r, s);
}

static void start(struct run *r, int cand, enum att_cont cont);
static void drive(struct run *r);

static void head(struct run *r, const struct step *st)
{
    char text[1024];
    snprintf(text, sizeof text, "HTTP/1.1 %d X\r\n%s\r\n", st->status, st->hdrs ? st->hdrs : "");
    /* The script writes "\n"; the parser wants CRLF. */
    char crlf[2048];
    size_t k = 0;
    for (const char *p = text; *p && k + 2 < sizeof crlf; p++) {
        if (*p == '\n' && (p == text || p[-1] != '\r'))
            crlf[k++] = '\r';
        crlf[k++] = *p;
    }
    struct hp_response res;
    int n = hp_parse_response(crlf, k, &res);
    if (n <= 0) {
        printf("# bad script head: %s\n", text);
        exit(2);
    }
    att_head(&r->a, &res, r->now, 1700000000);
}

static void feed_body(struct run *r, const char *b)
{
    size_t n = strlen(b);
    if (!n)
        return;
    if (r->split < 0 || (size_t)r->split >= n) {
        att_body(&r->a, b, n, r->now);
        return;
    }
    if (r->split == 0) {
        for (size_t i = 0; i < n && r->in_attempt && !r->over; i++) {
            att_body(&r->a, b + i, 1, ++r->now);
            drive(r);
        }
        return;
    }
    att_body(&r->a, b, (size_t)r->split, r->now);
    drive(r);
    if (r->in_attempt && !r->over)
        att_body(&r->a, b + r->split, n - (size_t)r->split, ++r->now);
}

/* Play the next script step as the running attempt's upstream. */
static void play(struct run *r)
{
    if (r->step >= MAX_STEPS || (!r->tc->steps[r->step].status && !r->tc->steps[r->step].end &&
                                 !r->tc->steps[r->step].body)) {
        printf("# script ran out at step %zu\n", r->step);
        note(r, "SCRIPT-END");
        r->over = true;
        return;
    }
    const struct step *st = &r->tc->steps[r->step++];
    uint64_t started = r->now;
    if (st->status) {
        head(r, st);
        drive(r);
    }
    if (st->body && r->in_attempt && !r->over) {
        feed_body(r, st->body);
        drive(r);
    }
    if (!r->in_attempt || r->over)
        return;
    switch (st->end) {
    case E_END: att_end(&r->a, ++r->now); break;
    case E_LOST: att_fail(&r->a, XERR_LOST, "connection reset by peer", ++r->now); break;
    case E_CONNECT: att_fail(&r->a, XERR_CONNECT, "connect: refused", ++r->now); break;
    case E_PROTOCOL: att_fail(&r->a, XERR_PROTOCOL, "malformed chunked body", ++r->now); break;
    case E_LOCAL: att_fail(&r->a, XERR_LOCAL, "socket: too many open files", ++r->now); break;
    case E_TIMER:
        r->now = started + st->at;
        att_timer(&r->a, r->now);
        break;
    case E_GONE: att_client_gone(&r->a); break;
    }
    drive(r);
}

static int next_cont(struct run *r, enum att_cont *how)
{
    for (int j = r->cur + 1; j < r->tc->ncands; j++)
        if (r->tc->cont[j] != CONT_NONE) {
            *how = r->tc->cont[j];
            return j;
        }
    return -1;
}

static void drive(struct run *r)
{
    struct att_action act;
    char s[96];
    while (!r->over && att_next(&r->a, &act)) {
        switch (act.kind) {
        case ACT_COMMIT:
            snprintf(s, sizeof s, "COMMIT(%d%s%s)", act.status, act.streaming ? ",stream" : "",
                     act.origin == ORIGIN_OWN ? ",own" : act.origin == ORIGIN_FALLBACK ? ",fallback" : "");
            note(r, s);
            break;
        case ACT_SEND:
            if (!(buf_len(&r->log) >= 4 && memcmp(buf_head(&r->log) + buf_len(&r->log) - 4, "SEND", 4) == 0))
                note(r, "SEND");
            buf_append(&r->out, act.data, act.len);
            break;
        case ACT_FINISH:
            note_outcome(r, "FINISH", &act);
            r->over = true;
            r->in_attempt = false;
            break;
        case ACT_ABORT:
            note_outcome(r, "ABORT", &act);
            r->over = true;
            r->in_attempt = false;
            break;
        case ACT_RETRY:
            note_outcome(r, "RETRY", &act);
            r->in_attempt = false;
            r->now += act.delay_ms;
            start(r, r->cur, CONT_NONE);
            return;
        case ACT_FAILOVER:
            note_outcome(r, "FAILOVER", &act);
            r->in_attempt = false;
            if (r->cur + 1 < r->tc->ncands) {
                start(r, r->cur + 1, CONT_NONE);
                return;
            }
            note(r, "EXHAUSTED");
            att_exhausted(&r->a, r->now);
            break;
        case ACT_CONTINUE: {
            note_outcome(r, "CONTINUE", &act);
            r->in_attempt = false;
            enum att_cont how;
            int j = next_cont(r, &how);
            if (j >= 0) {
                start(r, j, how);
                return;
            }
            note(r, "NOCONT");
            att_no_continuation(&r->a);
            break;
        }
        default:
            break;
        }
    }
}

static void start(struct run *r, int cand, enum att_cont cont)
{
    r->cur = cand;
    struct att_target t = {
        .model_retries = r->tc->retries,
        .timeout_ms = 60000,
        .first_token_ms = 30000,
        .model = "alias",
        .cont = cont,
        .provider = "pb",
        .upstream = "m2",
        .hide_usage_chunk = strncmp(r->tc->name, INJECTED_USAGE, strlen(INJECTED_USAGE)) == 0,
    };
    att_start(&r->a, &t, ++r->now);
    r->in_attempt = true;
    drive(r);
    if (r->in_attempt && !r->over)
        play(r);
}

static void run_case(struct run *r, const struct tcase *tc, int split)
{
    memset(r, 0, sizeof *r);
    r->tc = tc;
    r->split = split;
    r->now = T0;
    att_init(&r->a, &tc->pol);
    start(r, 0, CONT_NONE);
    /* A request must end. */
    if (!r->over)
        note(r, "UNFINISHED");
}

static void run_free(struct run *r)
{
    att_free(&r->a);
    buf_free(&r->log);
    buf_free(&r->out);
}

/* ---------------- the table ---------------- */

#define SSE "content-type: text/event-stream\n"
#define JSONCT "content-type: application/json\n"

/* OpenAI chat chunks. */
#define ROLE "data: {\"id\":\"c1\",\"created\":11,\"model\":\"m1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n"
#define TXT(t) "data: {\"id\":\"c1\",\"created\":11,\"model\":\"m1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" t "\"}}]}\n\n"
#define FIN "data: {\"id\":\"c1\",\"created\":11,\"model\":\"m1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
#define DONE "data: [DONE]\n\n"
#define OUT_ROLE "data: {\"id\":\"c1\",\"created\":11,\"model\":\"alias\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n"
#define OUT_TXT(t) "data: {\"id\":\"c1\",\"created\":11,\"model\":\"alias\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" t "\"}}]}\n\n"
#define OUT_FIN "data: {\"id\":\"c1\",\"created\":11,\"model\":\"alias\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
/* A continuation's chunks (another id and time). */
#define C_ROLE "data: {\"id\":\"c2\",\"created\":22,\"model\":\"m2\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n"
#define C_TXT(t) "data: {\"id\":\"c2\",\"created\":22,\"model\":\"m2\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" t "\"}}]}\n\n"
#define C_FIN "data: {\"id\":\"c2\",\"created\":22,\"model\":\"m2\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
#define ERR_EV "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n"
#define USAGE_EV "data: {\"id\":\"c1\",\"created\":11,\"model\":\"m1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n"

/* Anthropic events. */
#define A_START "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m1\",\"usage\":{\"input_tokens\":5}}}\n\n"
#define A_BSTART "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
#define A_PING "event: ping\ndata: {\"type\":\"ping\"}\n\n"
#define A_TXT(i, t) "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":" #i ",\"delta\":{\"type\":\"text_delta\",\"text\":\"" t "\"}}\n\n"
#define A_BSTOP(i) "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":" #i "}\n\n"
#define A_MDELTA "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n"
#define A_STOP "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
#define A_ERR "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
#define A_OUT_START "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"alias\",\"usage\":{\"input_tokens\":5}}}\n\n"

#define CHAT_OK "{\"id\":\"x\",\"model\":\"m1\",\"choices\":[{\"message\":{\"content\":\"hi\"}}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}"
#define CHAT_OK_OUT "{\"id\":\"x\",\"model\":\"alias\",\"choices\":[{\"message\":{\"content\":\"hi\"}}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}"
#define ERR_BODY(m) "{\"error\":{\"message\":\"" m "\",\"type\":\"x\"}}"

/* Policies. */
#define P_PLAIN { .dialect = DIALECT_OPENAI, .end_rule = END_DONE, .cooldown_ms = 30000, .max_cooldown_ms = 300000, \
                  .idle_ms = 120000, .seed = 7 }, 0
#define P_RETRY { .dialect = DIALECT_OPENAI, .end_rule = END_DONE, .retry_after_max_ms = 5000, \
                  .cooldown_ms = 30000, .max_cooldown_ms = 300000, .idle_ms = 120000, .seed = 7 }, 1
#define P_STREAM { .dialect = DIALECT_OPENAI, .stream = true, .end_rule = END_DONE, \
                   .retry_after_max_ms = 5000, .cooldown_ms = 30000, .max_cooldown_ms = 300000, .idle_ms = 120000, \
                   .seed = 7 }, 1
#define P_CONT { .dialect = DIALECT_OPENAI, .stream = true, .end_rule = END_DONE, .cooldown_ms = 30000, \
                 .max_cooldown_ms = 300000, .idle_ms = 120000, .keep_text = 1024, .seed = 7 }, 0
#define P_ANTH { .dialect = DIALECT_ANTHROPIC, .stream = true, .end_rule = END_FINISH, \
                 .cooldown_ms = 30000, .max_cooldown_ms = 300000, .idle_ms = 120000, .seed = 7 }, 1
#define P_ANTH_CONT { .dialect = DIALECT_ANTHROPIC, .stream = true, .end_rule = END_FINISH, .cooldown_ms = 30000, \
                      .max_cooldown_ms = 300000, .idle_ms = 120000, .keep_text = 1024, .seed = 7 }, 0
#define P_ANTH_JSON { .dialect = DIALECT_ANTHROPIC, .end_rule = END_FINISH, .cooldown_ms = 30000, \
                      .max_cooldown_ms = 300000, .idle_ms = 120000, .seed = 7 }, 0

static const struct tcase cases[] = {
    /* ---- non-stream answers: the failure table ---- */
    { "200 JSON: the answer, model rewritten", P_PLAIN, 2, { 0 },
      { { 200, JSONCT, CHAT_OK, E_END, 0 } }, "COMMIT(200) SEND FINISH(ok)", CHAT_OK_OUT },
    { "200 JSON with a top-level error: next candidate, counts", P_PLAIN, 2, { 0 },
      { { 200, JSONCT, ERR_BODY("busy"), E_END, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } },
      "FAILOVER(fail) COMMIT(200) SEND FINISH(ok)", CHAT_OK_OUT },
    { "500: the same candidate once more, then the answer", P_RETRY, 2, { 0 },
      { { 500, JSONCT, ERR_BODY("boom"), E_END, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } },
      "RETRY(fail) COMMIT(200) SEND FINISH(ok)", NULL },
    { "500 twice: retry, then the next candidate", P_RETRY, 2, { 0 },
      { { 500, NULL, "x", E_END, 0 }, { 503, NULL, "", E_END, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } },
      "RETRY(fail) FAILOVER(fail) COMMIT(200) SEND FINISH(ok)", NULL },
    { "503 without model_retries: next candidate at once", P_PLAIN, 2, { 0 },
      { { 503, NULL, "", E_END, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } },
      "FAILOVER(fail) COMMIT(200) SEND FINISH(ok)", NULL },
    { "408 is transient: retried", P_RETRY, 1, { 0 },
      { { 408, NULL, "", E_END, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } }, "RETRY(fail) COMMIT(200) SEND FINISH(ok)",
      NULL },
    { "409 is transient: retried", P_RETRY, 1, { 0 },
      { { 409, NULL, "", E_END, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } }, "RETRY(fail) COMMIT(200) SEND FINISH(ok)",
      NULL },
    { "401: the key is broken, next at once", P_RETRY, 2, { 0 },
      { { 401, NULL, ERR_BODY("bad key"), E_END, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } },
      "FAILOVER(fail) COMMIT(200) SEND FINISH(ok)", NULL },
    { "403: next at once", P_RETRY, 2, { 0 },
      { { 403, NULL, "", E_END, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } }, "FAILOVER(fail) COMMIT(200) SEND FINISH(ok)",
      NULL },
    { "404: the model is broken, next at once", P_RETRY, 2, { 0 },
      { { 404, NULL, "", E_END, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } }, "FAILOVER(fail) COMMIT(200) SEND FINISH(ok)",
      NULL },
    { "404 where the route may have none (count_tokens): returned as sent",
      { .dialect = DIALECT_ANTHROPIC, .not_found_passes = true, .cooldown_ms = 1, .max_cooldown_ms = 1, .idle_ms = 1 }, 0,
      2, { 0 }, { { 404, JSONCT, "{\"type\":\"error\"}", E_END, 0 } }, "COMMIT(404) SEND FINISH(soft)",
      "{\"type\":\"error\"}" },
    { "302: next candidate", P_PLAIN, 2, { 0 },
      { { 302, "location: /x\n", "", E_END, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } },
      "FAILOVER(fail) COMMIT(200) SEND FINISH(ok)", NULL },
    { "400: the client's mistake, returned as sent", P_RETRY, 2, { 0 },
      { { 400, JSONCT, ERR_BODY("bad temperature"), E_END, 0 } }, "COMMIT(400) SEND FINISH(soft)",
      ERR_BODY("bad temperature") },
    { "413 returned as sent", P_RETRY, 2, { 0 }, { { 413, NULL, "too big", E_END, 0 } },
      "COMMIT(413) SEND FINISH(soft)", "too big" },
    { "422 returned as sent", P_RETRY, 2, { 0 }, { { 422, NULL, "no", E_END, 0 } }, "COMMIT(422) SEND FINISH(soft)",
      "no" },
    { "400 context_length_exceeded (code): next candidate, no health effect", P_RETRY, 2, { 0 },
      { { 400, JSONCT, "{\"error\":{\"message\":\"m\",\"code\":\"context_length_exceeded\"}}", E_END, 0 },
        { 200, JSONCT, CHAT_OK, E_END, 0 } },
      "FAILOVER(soft) COMMIT(200) SEND FINISH(ok)", CHAT_OK_OUT },
    { "400 'prompt is too long' with nothing left: the original 400", P_RETRY, 2, { 0 },
      { { 400, JSONCT, ERR_BODY("prompt is too long: 9 > 8"), E_END, 0 },
        { 400, JSONCT, ERR_BODY("This model's maximum context length is 8"), E_END, 0 } },
      "FAILOVER(soft) FAILOVER(soft) EXHAUSTED COMMIT(400,fallback) SEND FINISH",
      ERR_BODY("prompt is too long: 9 > 8") },
    { "429 with a short Retry-After: wait it out on the same candidate", P_RETRY, 2, { 0 },
      { { 429, "retry-after: 2\n", "", E_END, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } },
      "RETRY(cool) COMMIT(200) SEND FINISH(ok)", NULL },
    { "429 with a long Retry-After: cool down and fail over", P_RETRY, 2, { 0 },
      { { 429, "retry-after: 30\n", "", E_END, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } },
      "FAILOVER(cool) COMMIT(200) SEND FINISH(ok)", NULL },
    { "429 without Retry-After: cool down and fail over", P_RETRY, 2, { 0 },
      { { 429, NULL, "", E_END, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } },
      "FAILOVER(cool) COMMIT(200) SEND FINISH(ok)", NULL },
    { "429 everywhere: back off and try again", P_RETRY, 1, { 0 },
      { { 429, NULL, "", E_END, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } },
      "FAILOVER(cool) EXHAUSTED RETRY COMMIT(200) SEND FINISH(ok)", NULL },
    { "529: cool down, next at once (no same retry)", P_RETRY, 2, { 0 },
      { { 529, NULL, "", E_END, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } },
      "FAILOVER(cool) COMMIT(200) SEND FINISH(ok)", NULL },
    { "connect error: next at once (a silent provider stays silent)", P_RETRY, 2, { 0 },
      { { 0, NULL, NULL, E_CONNECT, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } },
      "FAILOVER(fail) COMMIT(200) SEND FINISH(ok)", NULL },
    { "connection lost before any byte: retried", P_RETRY, 2, { 0 },
      { { 0, NULL, NULL, E_LOST, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } }, "RETRY(fail) COMMIT(200) SEND FINISH(ok)",
      NULL },
    { "a broken answer (protocol): next candidate", P_RETRY, 2, { 0 },
      { { 200, JSONCT, "{\"a\":", E_PROTOCOL, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } },
      "FAILOVER(fail) COMMIT(200) SEND FINISH(ok)", NULL },
    { "out of our own descriptors: next candidate, nobody's health", P_RETRY, 2, { 0 },
      { { 0, NULL, NULL, E_LOCAL, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } },
      "FAILOVER(soft) COMMIT(200) SEND FINISH(ok)", NULL },
    { "no answer within the timeout: next at once, no retry", P_RETRY, 2, { 0 },
      { { 0, NULL, NULL, E_TIMER, 60000 }, { 200, JSONCT, CHAT_OK, E_END, 0 } },
      "FAILOVER(fail) COMMIT(200) SEND FINISH(ok)", NULL },
    { "every attempt fails: 502 with the last error, keys masked", P_PLAIN, 3, { 0 },
      { { 500, NULL, ERR_BODY("bad sk-abcdefghijklmnop"), E_END, 0 }, { 0, NULL, NULL, E_CONNECT, 0 },
        { 401, JSONCT, ERR_BODY("key Bearer sk-1234567890abc rejected"), E_END, 0 } },
      "FAILOVER(fail) FAILOVER(fail) FAILOVER(fail) EXHAUSTED COMMIT(502,own) SEND FINISH", NULL },
    { "request_timeout runs out: 504, the cut attempt is nobody's fault",
      { .dialect = DIALECT_OPENAI, .end_rule = END_DONE, .deadline = T0 + 5000, .cooldown_ms = 1, .max_cooldown_ms = 1,
        .idle_ms = 120000 }, 0,
      2, { 0 }, { { 0, NULL, NULL, E_TIMER, 5000 } }, "COMMIT(504,own) SEND FINISH(soft)", NULL },
    { "a short Retry-After that would pass the deadline: fail over instead",
      { .dialect = DIALECT_OPENAI, .end_rule = END_DONE, .retry_after_max_ms = 5000, .deadline = T0 + 1000,
        .cooldown_ms = 1, .max_cooldown_ms = 300000, .idle_ms = 120000 }, 0,
      2, { 0 }, { { 429, "retry-after: 2\n", "", E_END, 0 }, { 200, JSONCT, CHAT_OK, E_END, 0 } },
      "FAILOVER(cool) COMMIT(200) SEND FINISH(ok)", NULL },
    { "the client leaves: nobody's fault", P_PLAIN, 2, { 0 }, { { 200, JSONCT, "{", E_GONE, 0 } }, "ABORT(neutral)",
      "" },

    /* ---- streams ---- */
    { "a stream: committed at the first content, bytes as sent but the model", P_STREAM, 2, { 0 },
      { { 200, SSE, ROLE TXT("Hi") FIN DONE, E_END, 0 } }, "COMMIT(200,stream) SEND FINISH(ok)",
      OUT_ROLE OUT_TXT("Hi") OUT_FIN DONE },
    { "keep-alive comments and a role event are not content", P_STREAM, 2, { 0 },
      { { 200, SSE, ROLE ": keep-alive\n\n" ": keep-alive\n\n" TXT("a") FIN DONE, E_END, 0 } },
      "COMMIT(200,stream) SEND FINISH(ok)", OUT_ROLE ": keep-alive\n\n: keep-alive\n\n" OUT_TXT("a") OUT_FIN DONE },
    { "an error event first: next candidate", P_STREAM, 2, { 0 },
      { { 200, SSE, ROLE ERR_EV DONE, E_END, 0 }, { 200, SSE, TXT("b") DONE, E_END, 0 } },
      "FAILOVER(fail) COMMIT(200,stream) SEND FINISH(ok)", OUT_TXT("b") DONE },
    { "[DONE] before any content: next candidate", P_STREAM, 2, { 0 },
      { { 200, SSE, ROLE DONE, E_END, 0 }, { 200, SSE, TXT("b") DONE, E_END, 0 } },
      "FAILOVER(fail) COMMIT(200,stream) SEND FINISH(ok)", OUT_TXT("b") DONE },
    { "the end before any content: next candidate", P_STREAM, 2, { 0 },
      { { 200, SSE, ROLE, E_END, 0 }, { 200, SSE, TXT("b") DONE, E_END, 0 } },
      "FAILOVER(fail) COMMIT(200,stream) SEND FINISH(ok)", NULL },
    { "reset before any content: retried", P_STREAM, 2, { 0 },
      { { 200, SSE, ROLE, E_LOST, 0 }, { 200, SSE, TXT("b") DONE, E_END, 0 } },
      "RETRY(fail) COMMIT(200,stream) SEND FINISH(ok)", NULL },
    { "no content within first_token_timeout: next candidate", P_STREAM, 2, { 0 },
      { { 200, SSE, ROLE ": keep-alive\n\n", E_TIMER, 30000 }, { 200, SSE, TXT("b") DONE, E_END, 0 } },
      "FAILOVER(fail) COMMIT(200,stream) SEND FINISH(ok)", OUT_TXT("b") DONE },
    { "a finish_reason, then a clean end without [DONE]: complete, [DONE] added", P_STREAM, 2, { 0 },
      { { 200, SSE, TXT("a") FIN, E_END, 0 } }, "COMMIT(200,stream) SEND FINISH(ok)", OUT_TXT("a") OUT_FIN DONE },
    { "a clean end without finish or [DONE]: broken, error event", P_STREAM, 2, { 0 },
      { { 200, SSE, TXT("a"), E_END, 0 } }, "COMMIT(200,stream) SEND FINISH(fail)",
      OUT_TXT("a") "data: {\"error\":{\"message\":\"upstream stream ended without [DONE]\",\"type\":\"upstream_error\","
                   "\"param\":null,\"code\":null}}\n\n" },
    { "cut after content, nobody can continue: error event", P_STREAM, 2, { 0 },
      { { 200, SSE, TXT("a"), E_LOST, 0 } }, "COMMIT(200,stream) SEND FINISH(fail)",
      OUT_TXT("a") "data: {\"error\":{\"message\":\"connection reset by peer\",\"type\":\"upstream_error\","
                   "\"param\":null,\"code\":null}}\n\n" },
    { "an error event after content: ours ends the stream", P_STREAM, 2, { 0 },
      { { 200, SSE, TXT("a") ERR_EV, E_END, 0 } }, "COMMIT(200,stream) SEND FINISH(fail)", NULL },
    { "idle after content: error event", P_STREAM, 2, { 0 },
      { { 200, SSE, TXT("a"), E_TIMER, 200000 } }, "COMMIT(200,stream) SEND FINISH(fail)", NULL },
    { INJECTED_USAGE "the usage chunk the gateway asked for is hidden",
      { .dialect = DIALECT_OPENAI, .stream = true, .end_rule = END_DONE, .cooldown_ms = 1,
        .max_cooldown_ms = 1, .idle_ms = 120000 }, 0,
      1, { 0 }, { { 200, SSE, TXT("a") FIN USAGE_EV DONE, E_END, 0 } }, "COMMIT(200,stream) SEND FINISH(ok)",
      OUT_TXT("a") OUT_FIN DONE },
    { "a usage chunk the client asked for passes", P_STREAM, 1, { 0 },
      { { 200, SSE, TXT("a") FIN USAGE_EV DONE, E_END, 0 } }, "COMMIT(200,stream) SEND FINISH(ok)", NULL },
    { "a stream request answered with JSON: delivered whole", P_STREAM, 1, { 0 },
      { { 200, JSONCT, CHAT_OK, E_END, 0 } }, "COMMIT(200) SEND FINISH(ok)", CHAT_OK_OUT },
    { "a route whose streams we cannot judge: any clean end is complete",
      { .dialect = DIALECT_OPENAI, .stream = true, .end_rule = END_ANY, .cooldown_ms = 1, .max_cooldown_ms = 1,
        .idle_ms = 120000 }, 0,
      1, { 0 }, { { 200, SSE, "data: {\"type\":\"speech.audio.delta\",\"audio\":\"AA\"}\n\n", E_END, 0 } },
      "COMMIT(200,stream) SEND FINISH(ok)", "data: {\"type\":\"speech.audio.delta\",\"audio\":\"AA\"}\n\n" },
    { "Responses API: response.completed makes the end complete",
      { .dialect = DIALECT_OPENAI, .stream = true, .end_rule = END_FINISH, .cooldown_ms = 1, .max_cooldown_ms = 1,
        .idle_ms = 120000 }, 0,
      1, { 0 },
      { { 200, SSE,
          "data: {\"type\":\"response.output_text.delta\",\"delta\":\"x\"}\n\n"
          "data: {\"type\":\"response.completed\",\"response\":{}}\n\n",
          E_END, 0 } },
      "COMMIT(200,stream) SEND FINISH(ok)", NULL },
    { "Responses API: a response.failed event first fails over",
      { .dialect = DIALECT_OPENAI, .stream = true, .end_rule = END_FINISH, .cooldown_ms = 1, .max_cooldown_ms = 1,
        .idle_ms = 120000 }, 0,
      2, { 0 },
      { { 200, SSE, "data: {\"type\":\"response.failed\",\"response\":{\"error\":{\"message\":\"no\"}}}\n\n", E_END, 0 },
        { 200, SSE,
          "data: {\"type\":\"response.output_text.delta\",\"delta\":\"y\"}\n\n"
          "data: {\"type\":\"response.completed\",\"response\":{}}\n\n",
          E_END, 0 } },
      "FAILOVER(fail) COMMIT(200,stream) SEND FINISH(ok)", NULL },
    { "Responses API: an end without response.completed is broken",
      { .dialect = DIALECT_OPENAI, .stream = true, .end_rule = END_FINISH, .cooldown_ms = 1, .max_cooldown_ms = 1,
        .idle_ms = 120000 }, 0,
      1, { 0 }, { { 200, SSE, "data: {\"type\":\"response.output_text.delta\",\"delta\":\"y\"}\n\n", E_END, 0 } },
      "COMMIT(200,stream) SEND FINISH(fail)", NULL },

    /* ---- continuation ---- */
    { "prefill: the answer goes on elsewhere, spliced", P_CONT, 2, { CONT_NONE, CONT_PREFILL },
      { { 200, SSE, ROLE TXT("Hello ") TXT("wor"), E_LOST, 0 }, { 200, SSE, C_ROLE C_TXT("ld!") C_FIN DONE, E_END, 0 } },
      "COMMIT(200,stream) SEND CONTINUE(fail) SEND FINISH(ok)",
      OUT_ROLE OUT_TXT("Hello ") OUT_TXT("wor") ": autoswitch resumed the answer on pb/m2\n\n"
      "data: {\"id\":\"c1\",\"created\":11,\"model\":\"alias\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ld!\"}}]}\n\n"
      "data: {\"id\":\"c1\",\"created\":11,\"model\":\"alias\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
      DONE },
    { "prefill after whitespace: the continuation's leading space is not doubled", P_CONT, 2, { CONT_NONE, CONT_PREFIX },
      { { 200, SSE, TXT("one "), E_LOST, 0 }, { 200, SSE, C_TXT(" two") C_FIN DONE, E_END, 0 } },
      "COMMIT(200,stream) SEND CONTINUE(fail) SEND FINISH(ok)",
      OUT_TXT("one ") ": autoswitch resumed the answer on pb/m2\n\n"
      "data: {\"id\":\"c1\",\"created\":11,\"model\":\"alias\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"two\"}}]}\n\n"
      "data: {\"id\":\"c1\",\"created\":11,\"model\":\"alias\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
      DONE },
    { "an error event after content continues too", P_CONT, 2, { CONT_NONE, CONT_PREFILL },
      { { 200, SSE, TXT("a") ERR_EV, E_END, 0 }, { 200, SSE, C_TXT("b") C_FIN DONE, E_END, 0 } },
      "COMMIT(200,stream) SEND CONTINUE(fail) SEND FINISH(ok)", NULL },
    { "a continuation that refuses the prefill (400) is never shown: the next one", P_CONT, 3,
      { CONT_NONE, CONT_PREFILL, CONT_CONTINUE_FINAL },
      { { 200, SSE, TXT("a"), E_LOST, 0 }, { 400, JSONCT, ERR_BODY("prefill not supported"), E_END, 0 },
        { 200, SSE, C_TXT("b") C_FIN DONE, E_END, 0 } },
      "COMMIT(200,stream) SEND CONTINUE(fail) CONTINUE(soft) SEND FINISH(ok)", NULL },
    { "no candidate can continue: the original error event", P_CONT, 2, { CONT_NONE, CONT_NONE },
      { { 200, SSE, TXT("a"), E_LOST, 0 } }, "COMMIT(200,stream) SEND CONTINUE(fail) NOCONT SEND FINISH",
      OUT_TXT("a") "data: {\"error\":{\"message\":\"connection reset by peer\",\"type\":\"upstream_error\","
                   "\"param\":null,\"code\":null}}\n\n" },
    { "replay: the known text is dropped, the rest forwarded", P_CONT, 2, { CONT_NONE, CONT_REPLAY },
      { { 200, SSE, TXT("Hello ") TXT("wor"), E_LOST, 0 },
        { 200, SSE, C_ROLE C_TXT("Hel") C_TXT("lo w") C_TXT("orld") C_FIN DONE, E_END, 0 } },
      "COMMIT(200,stream) SEND CONTINUE(fail) SEND FINISH(ok)",
      OUT_TXT("Hello ") OUT_TXT("wor") ": autoswitch resumed the answer on pb/m2\n\n"
      "data: {\"id\":\"c1\",\"created\":11,\"model\":\"alias\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ld\"}}]}\n\n"
      "data: {\"id\":\"c1\",\"created\":11,\"model\":\"alias\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
      DONE },
    { "replay that diverges: the original error event", P_CONT, 2, { CONT_NONE, CONT_REPLAY },
      { { 200, SSE, TXT("Hello"), E_LOST, 0 }, { 200, SSE, C_TXT("Howdy") C_FIN DONE, E_END, 0 } },
      "COMMIT(200,stream) SEND CONTINUE(fail) SEND FINISH(soft)",
      OUT_TXT("Hello") "data: {\"error\":{\"message\":\"connection reset by peer\",\"type\":\"upstream_error\","
                       "\"param\":null,\"code\":null}}\n\n" },
    { "tool calls are never continued", P_CONT, 2, { CONT_NONE, CONT_PREFILL },
      { { 200, SSE, TXT("a") "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0}]}}]}\n\n", E_LOST, 0 } },
      "COMMIT(200,stream) SEND FINISH(fail)", NULL },
    { "n > 1 is never continued", P_CONT, 2, { CONT_NONE, CONT_PREFILL },
      { { 200, SSE, "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"x\"}}]}\n\n", E_LOST, 0 } },
      "COMMIT(200,stream) SEND FINISH(fail)", NULL },
    { "a cut before any text (reasoning only) is never continued", P_CONT, 2, { CONT_NONE, CONT_PREFILL },
      { { 200, SSE, "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"hm\"}}]}\n\n", E_LOST, 0 } },
      "COMMIT(200,stream) SEND FINISH(fail)", NULL },
    { "no keep_text (no mapping continues): no continuation", P_STREAM, 2, { CONT_NONE, CONT_PREFILL },
      { { 200, SSE, TXT("a"), E_LOST, 0 } }, "COMMIT(200,stream) SEND FINISH(fail)", NULL },

    /* ---- Anthropic ---- */
    { "anthropic stream: model in message_start rewritten, events as sent", P_ANTH, 1, { 0 },
      { { 200, SSE, A_START A_BSTART A_PING A_TXT(0, "Hi") A_BSTOP(0) A_MDELTA A_STOP, E_END, 0 } },
      "COMMIT(200,stream) SEND FINISH(ok)", A_OUT_START A_BSTART A_PING A_TXT(0, "Hi") A_BSTOP(0) A_MDELTA A_STOP },
    { "anthropic: an error event before content fails over", P_ANTH, 2, { 0 },
      { { 200, SSE, A_START A_PING A_ERR, E_END, 0 }, { 200, SSE, A_START A_TXT(0, "x") A_MDELTA A_STOP, E_END, 0 } },
      "FAILOVER(fail) COMMIT(200,stream) SEND FINISH(ok)", NULL },
    { "anthropic: message_start then the end: empty, next candidate", P_ANTH, 2, { 0 },
      { { 200, SSE, A_START A_STOP, E_END, 0 }, { 200, SSE, A_TXT(0, "x") A_MDELTA A_STOP, E_END, 0 } },
      "FAILOVER(fail) COMMIT(200,stream) SEND FINISH(ok)", NULL },
    { "anthropic: a stop_reason then a clean end: message_stop added", P_ANTH, 1, { 0 },
      { { 200, SSE, A_TXT(0, "x") A_MDELTA, E_END, 0 } }, "COMMIT(200,stream) SEND FINISH(ok)",
      A_TXT(0, "x") A_MDELTA A_STOP },
    { "anthropic: a cut after content ends with an Anthropic error event", P_ANTH, 1, { 0 },
      { { 200, SSE, A_TXT(0, "x"), E_LOST, 0 } }, "COMMIT(200,stream) SEND FINISH(fail)",
      A_TXT(0, "x") "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
                    "\"connection reset by peer\"}}\n\n" },
    { "anthropic: 529 overloaded cools down and fails over at once", P_ANTH, 2, { 0 },
      { { 529, JSONCT, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}", E_END,
          0 },
        { 200, SSE, A_TXT(0, "x") A_MDELTA A_STOP, E_END, 0 } },
      "FAILOVER(cool) COMMIT(200,stream) SEND FINISH(ok)", NULL },
    { "anthropic: every attempt fails: 502 in Anthropic's shape", P_ANTH_JSON, 1, { 0 },
      { { 0, NULL, NULL, E_CONNECT, 0 } }, "FAILOVER(fail) EXHAUSTED COMMIT(502,own) SEND FINISH",
      "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"all providers failed: connect: refused\"}}\n" },
    { "anthropic: a whole answer's model rewritten", P_ANTH_JSON, 1, { 0 },
      { { 200, JSONCT, "{\"id\":\"msg\",\"model\":\"m1\",\"content\":[],\"usage\":{\"input_tokens\":1}}", E_END, 0 } },
      "COMMIT(200) SEND FINISH(ok)", "{\"id\":\"msg\",\"model\":\"alias\",\"content\":[],\"usage\":{\"input_tokens\":1}}" },
    { "anthropic: a prefill continuation joins the client's text block", P_ANTH_CONT, 2, { CONT_NONE, CONT_PREFILL },
      { { 200, SSE, A_START A_BSTART A_TXT(0, "Hello "), E_LOST, 0 },
        { 200, SSE, A_START A_BSTART A_PING A_TXT(0, "world") A_BSTOP(0) A_MDELTA A_STOP, E_END, 0 } },
      "COMMIT(200,stream) SEND CONTINUE(fail) SEND FINISH(ok)",
      A_OUT_START A_BSTART A_TXT(0, "Hello ") ": autoswitch resumed the answer on pb/m2\n\n" A_TXT(0, "world")
      A_BSTOP(0) A_MDELTA A_STOP },
    { "anthropic: the client leaves mid-stream", P_ANTH, 1, { 0 }, { { 200, SSE, A_TXT(0, "x"), E_GONE, 0 } },
      "COMMIT(200,stream) SEND ABORT(neutral)", NULL },
};

static void check_case(const struct tcase *tc)
{
    struct run whole;
    run_case(&whole, tc, -1);
    is_str(buf_cstr(&whole.log), tc->want, "%s", tc->name);
    if (tc->want_out)
        is_str(buf_cstr(&whole.out), tc->want_out, "... the client's bytes");
    /* The same at every cut of every body, and one byte at a time. */
    size_t longest = 0;
    for (size_t i = 0; i < MAX_STEPS; i++)
        if (tc->steps[i].body && strlen(tc->steps[i].body) > longest)
            longest = strlen(tc->steps[i].body);
    int bad = -2;
    for (int k = 0; k <= (int)longest && bad == -2; k++) {
        struct run r;
        run_case(&r, tc, k);
        /* Cut reads may add SENDs (merged in the transcript) but change
         * nothing else. */
        if (strcmp(buf_cstr(&r.log), buf_cstr(&whole.log)) != 0 || strcmp(buf_cstr(&r.out), buf_cstr(&whole.out)) != 0) {
            bad = k;
            printf("#   split %d: %s\n#   out: %s\n", k, buf_cstr(&r.log), buf_cstr(&r.out));
        }
        run_free(&r);
    }
    ok(bad == -2, "... the same for every cut of the upstream's reads");
    run_free(&whole);
}

/* What the outcomes carry beyond their kind. */
static void test_details(void)
{
    struct run r;
    /* Retry delays: jittered, 300-600 ms first. */
    run_case(&r, &cases[2], -1);
    ok(r.now - T0 >= 300 && r.now - T0 < 700, "a same-candidate retry waits 300-600 ms (waited %llu)",
       (unsigned long long)(r.now - T0));
    run_free(&r);
    /* A short Retry-After is waited exactly. */
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        if (strstr(cases[i].name, "short Retry-After: wait it out")) {
            run_case(&r, &cases[i], -1);
            ok(r.now - T0 >= 2000 && r.now - T0 < 2100, "Retry-After: 2 is waited out (%llu ms)",
               (unsigned long long)(r.now - T0));
            run_free(&r);
        }
        if (strstr(cases[i].name, "every attempt fails: 502 with the last error")) {
            run_case(&r, &cases[i], -1);
            const char *o = buf_cstr(&r.out);
            ok(strstr(o, "all providers failed:") && strstr(o, "key Bearer sk-...") && !strstr(o, "1234567890"),
               "the 502 carries the last error with its keys masked: %s", o);
            run_free(&r);
        }
        if (strstr(cases[i].name, "usage chunk the gateway asked for is hidden")) {
            run_case(&r, &cases[i], -1);
            ok(r.a.out.has_usage && r.a.out.usage.total == 5 && r.a.out.usage.prompt == 3,
               "a hidden usage chunk is still accounted (total %llu)", (unsigned long long)r.a.out.usage.total);
            run_free(&r);
        }
    }
    ok(att_is_context_error("{\"error\":{\"message\":\"Input is too long for requested model.\"}}", 63),
       "context error: 'input is too long'");
    ok(att_is_context_error("{\"error\":{\"message\":\"Please reduce the length of the messages.\"}}", 64),
       "context error: 'reduce the length of the messages'");
    ok(!att_is_context_error("{\"error\":{\"message\":\"temperature must be at most 2\"}}", 53),
       "not a context error: another 400");
    ok(!att_is_context_error("{\"error\":{\"code\":\"content_policy_violation\",\"message\":\"no\"}}", 61),
       "not a context error: content_policy_violation");
}

int main(void)
{
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        check_case(&cases[i]);
    test_details();
    printf("# %zu cases\n", ARRAY_LEN(cases));
    return tap_done();
}
