/* libFuzzer target: the attempt engine (policy/attempt.h), driven the way
 * gateway/proxy.c drives it: a bounded list of candidates, every action
 * carried out as drive()/act() do (FAILOVER starts the next candidate or
 * calls att_exhausted, CONTINUE the next candidate that can continue or
 * att_no_continuation, RETRY waits delay_ms and starts the same one), a
 * clock that fires att_timer() whenever att_due() passes, and upstreams
 * that answer as the input says.
 *
 * Input: four policy bytes, one byte per candidate, then operations until
 * the input ends.
 *   byte 0   bit 0 dialect (Anthropic), 1 stream, 2-3 end rule (% 3),
 *            4 the endpoint is continuable, 5 hide_usage_chunk,
 *            6 not_found_passes, 7 a request deadline
 *   byte 1   bits 0-1 every candidate's model_retries (% 3), 2-3
 *            retry_after_max, 4-5 keep_text (0, 12, 64, 4096), 6-7
 *            candidates - 1
 *   byte 2   bits 0-1 cooldown, 2-3 max cooldown, 4-5 idle, 6-7 deadline
 *   byte 3   seed
 *   per candidate: bits 0-2 continuation (% 5), 3-4 timeout, 5-6
 *            first-token timeout, 7 a model to rewrite to
 * Operations (one byte, then arguments) go to the running attempt's
 * upstream; while a retry waits, any of them first lets the retry start:
 *   00-3f    canned event or answer (table `canned`, low 5 bits; bit 5:
 *            CRLF line ends), then a byte: bits 0-6 cut it in two at twice
 *            that offset (0: whole), bit 7 two words in its text.  Text
 *            events carry numbered words "w<N> " (see below)
 *   40-7f    raw body bytes: a length byte L, then L + 1 bytes (60-7f:
 *            (L + 1) * 16 bytes), one att_body call
 *   80-8f    the head: a status index (table `statuses`) and a byte: bits
 *            0-2 Content-Type, 3-6 Retry-After, 7 x-ratelimit-* lines.
 *            A body before any head gets a default 200 head first
 *   90-97    the body ends as framed; 98-9f the connection closes
 *            without close_notify (proxy.c on_up_done)
 *   a0-af    transport failure, kind op & 3
 *   b0-bf    time passes (table `waits`), firing every timer due
 *   c0-c7    the clock jumps to att_due() and the timer fires
 *   c8-cf    the client disconnects
 *   d0-df    a filler of 70 KiB of comment lines (d0-d7) or a 300 KiB
 *            data line without its end (d8-df), at most two per input
 *   e0-e7    the buffer budget is exhausted: when the next body piece
 *            grows the answer the engine holds (att_held), att_fail
 *            XERR_LOCAL follows att_body before the actions are taken, as
 *            proxy.c on_up_body does
 *   e8-ff    nothing
 * When the input ends, the upstreams go silent: only timers, retries,
 * att_exhausted and att_no_continuation remain, and the request must end
 * within SETTLE_STEPS of them.  Then every entry point is called once
 * more and must queue nothing.
 *
 * Checked after every call into the engine:
 * - one ACT_COMMIT at most, no ACT_SEND before it; a head's status,
 *   Content-Type (no CR, LF or NUL) and origin make sense; a non-stream
 *   answer's SENDs add up to its length exactly; the x-ratelimit-* lines
 *   for the head have no bare CR or LF;
 * - an action that ends an attempt (RETRY, FAILOVER, CONTINUE, FINISH,
 *   ABORT) is the last of its batch; FINISH and ABORT are final: nothing
 *   ever comes after them; FINISH only after a COMMIT;
 * - every attempt started is reported exactly once: the action ending it
 *   carries its outcome; only the actions att_exhausted,
 *   att_no_continuation and a client leaving between attempts make carry
 *   none; outcome kinds match their actions, reasons are NUL-terminated
 *   (and present on failures), the status is the attempt's;
 * - a committed stream never RETRYs or FAILOVERs, a CONTINUE only comes
 *   for one; a FINISH of a stream leaves it at an event boundary, ending
 *   with the engine's own error event (failure) or [DONE] / message_stop
 *   (success, when the engine added it) as a whole event of its own;
 * - the text the engine keeps for a continuation (att_text) is the text
 *   the client received in complete events, whenever the engine still
 *   trusts it (keep_text, not lost, not diverged); the usage chunk is
 *   hidden when asked (both for upstream events of one data line);
 * - when every body byte came from the canned events, the client's words
 *   are w0 w1 w2 ... in order: nothing sent twice, nothing skipped (a
 *   prefill continuation numbers its words after the client's, a replay
 *   repeats them from w0);
 * - while an attempt runs, att_due() is set and not in the past; a timer
 *   fired at att_due() ends the attempt or moves att_due() later; after
 *   att_end / att_fail the attempt is over; the glue always has something
 *   to wait for (an attempt, a retry) until the request ends;
 * - ASan / UBSan / LeakSanitizer: every SEND is copied out at once, every
 *   body piece and header value is a heap block of exactly its size. */
#include <inttypes.h>

#include "attempt.h"
#include "buf.h"
#include "event.h"
#include "fuzz_common.h"
#include "json.h"

#define MAX_CANDIDATES 4
#define MAX_FILLERS 2
#define SETTLE_STEPS 200
#define T0 1000000u                /* the monotonic clock at the start (ms) */
#define WALL 1700000000            /* Tue, 14 Nov 2023 22:13:20 GMT */

/* ---------------- tables ---------------- */

static const int statuses[] = { 200, 200, 200, 201, 204, 302, 400, 401, 403, 404,
                                408, 409, 413, 422, 429, 500, 502, 503, 504, 529 };

static const char *const ctypes[] = {
    NULL, "text/event-stream", "text/event-stream; charset=utf-8", "application/json",
    "application/json; charset=utf-8", "text/plain", "text/html\r\nSet-Cookie: x=1", "",
};

static const char *const retry_afters[] = {
    NULL, NULL, NULL, NULL, "0", "1", "2", "30", "3600", "99999999999", "-1", "soon",
    "Tue, 14 Nov 2023 22:00:00 GMT",   /* in the past */
    "Tue, 14 Nov 2023 22:13:23 GMT",   /* in 3 s */
    "Tue, 14 Nov 2023 22:30:00 GMT",   /* in 1000 s */
    "Tuesday, 14-Nov-23 22:13:21 GMT",
};

static const uint64_t waits[] = { 1, 10, 250, 1000, 5000, 30000, 120000, 700000 };

/* Realistic events of both dialects and whole answers.  "%W" becomes the
 * attempt's next numbered word.  OpenAI's come first, Anthropic's from
 * CANNED_ANTHROPIC on, whole (non-stream) answers from CANNED_ANSWERS. */
#define CANNED_ANTHROPIC 16
#define CANNED_ANSWERS 27
static const char *const canned[32] = {
    /* OpenAI chat completions */
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"up-model\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"up-model\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%W\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"up-model\","
    "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"up-model\","
    "\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21}}\n\n",
    "data: [DONE]\n\n",
    "data: {\"error\":{\"message\":\"The server had an error while processing your request\","
    "\"type\":\"server_error\"}}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hmm\"}}]}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\","
    "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n",
    ": keep-alive\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"x \"}}]}\n\n",
    /* legacy completions */
    "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1700000000,\"model\":\"up-model\","
    "\"choices\":[{\"text\":\"%W\",\"index\":0,\"finish_reason\":null}]}\n\n",
    /* Responses API */
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\","
    "\"output_index\":0,\"content_index\":0,\"delta\":\"%W\"}\n\n",
    "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"model\":"
    "\"up-model\",\"status\":\"completed\",\"usage\":{\"input_tokens\":5,\"output_tokens\":7,"
    "\"total_tokens\":12}}}\n\n",
    "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"error\":{\"code\":\"server_error\","
    "\"message\":\"failed\"}}}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" \"}}]}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"model\":\"up-model\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%W\"},"
    "\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}\n\n",
    /* Anthropic Messages */
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
    "\"role\":\"assistant\",\"model\":\"claude-up\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":25,"
    "\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
    "\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
    "\"text_delta\",\"text\":\"%W\"}}\n\n",
    "event: ping\ndata: {\"type\":\"ping\"}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
    "\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":"
    "\"tool_use\",\"id\":\"toolu_1\",\"name\":\"f\",\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
    "\"text_delta\",\"text\":\"x \"}}\n\n",
    /* whole answers */
    "{\"id\":\"chatcmpl-2\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"up-model\",\"choices\":"
    "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}",
    "{\"error\":{\"message\":\"This model's maximum context length is 4096 tokens.\",\"type\":"
    "\"invalid_request_error\",\"param\":\"messages\",\"code\":\"context_length_exceeded\"}}",
    "{\"id\":\"msg_2\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-up\",\"content\":[{\"type\":"
    "\"text\",\"text\":\"Hello\"}],\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}",
    "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"prompt is too long: 200000 "
    "tokens > 100000 maximum\"}}",
    "{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\"}}",
};

/* FUZZ_TRACE=1 in the environment: what happens, on stderr (to read a
 * reproducer). */
static int trace = -1;
#define TRACE(...)                                                  \
    do {                                                            \
        if (trace)                                                  \
            fprintf(stderr, __VA_ARGS__);                           \
    } while (0)

/* ---------------- input ---------------- */

struct rd {
    const uint8_t *p;
    size_t n;
};

/* The next byte, 0 once the input is used up. */
static unsigned take(struct rd *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

/* ---------------- the glue and what the client saw ---------------- */

struct cand {
    int model_retries;
    enum att_cont cont;
    uint64_t timeout_ms, first_token_ms;
    const char *model;
    char label[32];
};

enum upstream_state { UP_HEAD, UP_BODY };

struct h {
    struct attempt a;
    struct att_policy pol;
    bool hide_usage;                 /* include_usage injected: every target hides the chunk */
    bool continuable;                /* the endpoint's `continuable` */
    struct cand cand[MAX_CANDIDATES];
    size_t ncand, next;
    uint64_t now;
    bool finished;                   /* FINISH or ABORT carried out */
    bool waiting_retry;
    uint64_t retry_at;
    /* the running attempt */
    unsigned attempt_no;             /* att_start calls so far */
    bool open;                       /* started and not yet reported */
    enum upstream_state up;
    int head_status;                 /* 0 until its head */
    uint64_t started;
    unsigned word_base, words;       /* numbered words: the next is w<base + words> */
    /* the client */
    bool committed, streaming;
    int64_t length;
    size_t sent;                     /* body bytes after the COMMIT */
    struct buf client;
    bool raw_fed;                    /* a body byte did not come from `canned` */
    bool long_lines;                 /* a 300 KiB line went through */
    bool budget_out;                 /* the next growth of att_held() fails the attempt */
    /* events of several data lines in what the upstreams sent: a client
     * cannot read one (its data is JSON lines joined by "\n"), and the
     * engine judges such an event by its last line, so the text and usage
     * checks hold for events of one data line */
    bool multi_data;
    struct { size_t col; bool data, cr; unsigned ndata; } up_sse;
    int fillers;
};

/* What a client's event-stream parser (WHATWG: an event is dispatched at
 * its blank line, a last event without one is dropped) makes of the bytes
 * sent so far, each data line read as the engine reads it. */
struct client_view {
    struct buf text;                 /* decoded text of the dispatched events */
    bool usage_chunk;                /* a dispatched usage-only chunk */
    unsigned last_ndata;             /* data lines of the last dispatched event with data */
    enum ev_kind last_kind;          /* event_read of that event's last data line */
    bool tail;                       /* lines after the last dispatch */
};

static void view_data_line(const struct h *h, const char *s, size_t n, struct buf *text, struct client_view *v,
                           enum ev_kind *kind)
{
    struct ev_info ev;
    event_read(h->pol.dialect, s, n, &ev);
    *kind = ev.kind;
    if (ev.usage_only)
        v->usage_chunk = true;
    if ((ev.content & EVC_TEXT) && ev.text.type == JSON_STRING) {
        size_t room = ev.text.end - ev.text.start;
        if (buf_reserve(text, room + 1) < 0)
            abort();
        size_t got = json_str_decode(s, ev.text, buf_tail(text), room + 1);
        FUZZ_CHECK(got <= room, "decoded text longer than its JSON string");
        buf_commit(text, got);
    }
}

static void client_view(const struct h *h, struct client_view *v)
{
    const char *s = buf_len(&h->client) ? buf_head(&h->client) : "";
    size_t n = buf_len(&h->client), i = 0;
    struct buf pending = BUF_INIT;   /* text of the event being read */
    unsigned ndata = 0, nlines = 0;
    enum ev_kind kind = EVK_NEUTRAL;
    memset(v, 0, sizeof *v);
    while (i < n) {
        size_t e = i;
        while (e < n && s[e] != '\n' && s[e] != '\r')
            e++;
        if (e == n)
            break;   /* a line without its end */
        size_t next = e + 1 + (s[e] == '\r' && e + 1 < n && s[e + 1] == '\n');
        size_t len = e - i;
        const char *line = s + i;
        i = next;
        if (len == 0) {
            if (ndata) {
                if (buf_len(&pending))
                    buf_append(&v->text, buf_head(&pending), buf_len(&pending));
                v->last_ndata = ndata;
                v->last_kind = kind;
            }
            buf_clear(&pending);
            ndata = nlines = 0;
            continue;
        }
        nlines++;
        if (len >= 5 && memcmp(line, "data:", 5) == 0) {
            size_t skip = len > 5 && line[5] == ' ' ? 6 : 5;
            ndata++;
            view_data_line(h, line + skip, len - skip, &pending, v, &kind);
        }
    }
    v->tail = nlines > 0 || i < n;
    buf_free(&pending);
}

/* The numbered words of the client's text: w0 w1 w2 ... with nothing
 * repeated or missing.  Other tokens ("x", from another choice or block)
 * are not counted.  Returns the number of words. */
static unsigned check_words(const struct buf *text)
{
    const char *s = buf_len(text) ? buf_head(text) : "";
    size_t n = buf_len(text), i = 0;
    unsigned want = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
            i++;
        size_t st = i;
        while (i < n && !(s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
            i++;
        if (i - st < 2 || s[st] != 'w')
            continue;
        unsigned num = 0;
        for (size_t k = st + 1; k < i; k++)
            num = num * 10 + (unsigned)(s[k] - '0');
        FUZZ_CHECK(num == want, "the client got word w%u where w%u was due (a repeat or a gap): \"%.*s\"", num,
                   want, (int)(n > 300 ? 300 : n), s);
        want++;
    }
    return want;
}

/* Whether the engine's continuation text is what the client received. */
static void check_text(struct h *h, const struct client_view *v, const char *when)
{
    size_t tlen, clen = buf_len(&v->text);
    const char *t = att_text(&h->a, &tlen);
    const char *c = clen ? buf_head(&v->text) : "";
    FUZZ_CHECK(tlen == clen && memcmp(t, c, tlen) == 0,
               "%s: the engine's text (%zu bytes: \"%.*s\") is not what the client received (%zu bytes: \"%.*s\")",
               when, tlen, (int)(tlen > 200 ? 200 : tlen), t, clen, (int)(clen > 200 ? 200 : clen), c);
}

/* The client's stream as it stands: text, words, hidden usage. */
static void check_stream(struct h *h, const char *when, bool text_must_match)
{
    if (!h->committed || !h->streaming)
        return;
    struct client_view v;
    client_view(h, &v);
    if (!h->multi_data && (text_must_match || (h->pol.keep_text && !h->a.text_lost && !h->a.diverged)))
        check_text(h, &v, when);
    if (!h->raw_fed)
        check_words(&v.text);
    if (h->hide_usage && !h->long_lines && !h->multi_data)
        FUZZ_CHECK(!v.usage_chunk, "%s: the usage chunk reached the client", when);
    buf_free(&v.text);
}

/* The end of a committed stream: it ends at an event boundary (a client
 * drops an event without its blank line), and the engine's own last
 * event stands alone (a client parser would otherwise glue it to the one
 * before). */
static void check_stream_end(struct h *h, const struct att_outcome *o)
{
    struct client_view v;
    client_view(h, &v);
    FUZZ_CHECK(!v.tail, "the stream ends inside an event: the client never sees its last event");
    bool success = o && o->kind == OUT_SUCCESS;
    bool marker = success && !h->a.saw_done &&
                  (h->pol.dialect == DIALECT_ANTHROPIC || h->pol.end_rule == END_DONE);
    if (!success)
        FUZZ_CHECK(!v.tail && v.last_ndata == 1 && v.last_kind == EVK_ERROR,
                   "a broken stream does not end with an error event of its own (tail %d, data lines %u, kind %d)",
                   v.tail, v.last_ndata, (int)v.last_kind);
    if (marker)
        FUZZ_CHECK(!v.tail && v.last_ndata == 1 && v.last_kind == EVK_DONE,
                   "the end marker added is not an event of its own (tail %d, data lines %u, kind %d)", v.tail,
                   v.last_ndata, (int)v.last_kind);
    buf_free(&v.text);
}

static bool cstr_ok(const char *s, size_t cap)
{
    return s && memchr(s, '\0', cap) != NULL;
}

static void check_outcome(struct h *h, const struct att_action *act)
{
    const struct att_outcome *o = act->outcome;
    if (!o) {
        /* No attempt ended: the answer of att_exhausted (FINISH, or a
         * RETRY after every candidate was busy), of att_no_continuation
         * (FINISH), or a client leaving between attempts (ABORT). */
        FUZZ_CHECK(!h->open, "action %d ends attempt %u without its outcome", (int)act->kind, h->attempt_no);
        FUZZ_CHECK(act->kind == ACT_FINISH || act->kind == ACT_RETRY || act->kind == ACT_ABORT,
                   "action %d without an outcome", (int)act->kind);
        return;
    }
    FUZZ_CHECK(h->open, "action %d reports an attempt that is not running (or was reported)", (int)act->kind);
    h->open = false;
    FUZZ_CHECK(cstr_ok(o->reason, sizeof o->reason), "outcome reason not NUL-terminated");
    FUZZ_CHECK(o->status == h->head_status, "outcome status %d, the attempt's head said %d", o->status,
               h->head_status);
    FUZZ_CHECK(o->ttft_ms == -1 || (o->ttft_ms >= 0 && (uint64_t)o->ttft_ms <= h->now - h->started),
               "ttft %" PRId64 " ms", o->ttft_ms);
    FUZZ_CHECK(!o->counts || o->kind == OUT_FAILURE, "outcome kind %d counts", (int)o->kind);
    switch (o->kind) {
    case OUT_SUCCESS:
        FUZZ_CHECK(act->kind == ACT_FINISH && h->committed, "success ends with action %d", (int)act->kind);
        break;
    case OUT_FAILURE:
        FUZZ_CHECK(act->kind != ACT_ABORT, "a failure ends with ABORT");
        FUZZ_CHECK(o->reason[0], "a failure without a reason");
        break;
    case OUT_COOLDOWN:
        FUZZ_CHECK(act->kind == ACT_RETRY || act->kind == ACT_FAILOVER, "cooldown with action %d",
                   (int)act->kind);
        FUZZ_CHECK(o->reason[0], "a cooldown without a reason");
        FUZZ_CHECK(o->cooldown_ms <= h->pol.max_cooldown_ms, "cooldown %" PRIu64 " over the cap", o->cooldown_ms);
        FUZZ_CHECK(o->status == 429 || o->status == 529, "cooldown after status %d", o->status);
        break;
    case OUT_NEUTRAL:
        FUZZ_CHECK(act->kind == ACT_ABORT, "neutral outcome with action %d", (int)act->kind);
        break;
    default:
        FUZZ_CHECK(0, "action %d carries outcome kind %d", (int)act->kind, (int)o->kind);
    }
    if (o->kind != OUT_COOLDOWN)
        FUZZ_CHECK(o->cooldown_ms == 0, "cooldown %" PRIu64 " on outcome kind %d", o->cooldown_ms, (int)o->kind);
}

static void check_head_lines(const struct attempt *a)
{
    const struct buf *b = att_head_lines(a);
    const char *s = buf_len(b) ? buf_head(b) : "";
    size_t n = buf_len(b);
    FUZZ_CHECK(n <= ATT_HEAD_LINES_MAX, "%zu bytes of head lines", n);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r') {
            FUZZ_CHECK(i + 1 < n && s[i + 1] == '\n', "a bare CR in the head lines");
            i++;
        } else {
            FUZZ_CHECK(s[i] != '\n' && s[i] != '\0', "a bare LF or a NUL in the head lines");
        }
    }
    FUZZ_CHECK(n == 0 || (n >= 2 && s[n - 2] == '\r' && s[n - 1] == '\n'), "head lines do not end with CRLF");
}

static void check_commit(struct h *h, const struct att_action *act)
{
    FUZZ_CHECK(!h->committed, "a second COMMIT: the client would get two response heads");
    FUZZ_CHECK(act->status >= 100 && act->status <= 999, "COMMIT status %d", act->status);
    FUZZ_CHECK(act->ctype && cstr_ok(act->ctype, 4096) && !strpbrk(act->ctype, "\r\n"),
               "COMMIT Content-Type missing or with a line break");
    switch (act->origin) {
    case ORIGIN_UPSTREAM:
        FUZZ_CHECK(h->open && act->status == h->head_status, "the upstream's COMMIT with status %d (head %d)",
                   act->status, h->head_status);
        check_head_lines(&h->a);
        break;
    case ORIGIN_FALLBACK:
        FUZZ_CHECK(!h->open && act->status == 400, "fallback COMMIT with status %d", act->status);
        break;
    case ORIGIN_OWN:
        /* 502: every attempt failed; 503: the last failed for want of the
         * gateway's own resources; 504: request_timeout, which may cut the
         * running attempt (its FINISH then reports it). */
        FUZZ_CHECK((!h->open && (act->status == 502 || act->status == 503)) || act->status == 504,
                   "own COMMIT with status %d%s", act->status, h->open ? " while an attempt runs" : "");
        if (act->status == 504)
            FUZZ_CHECK(h->pol.deadline && h->now >= h->pol.deadline, "a 504 before the request deadline");
        break;
    default:
        FUZZ_CHECK(0, "COMMIT origin %d", (int)act->origin);
    }
    if (act->streaming)
        FUZZ_CHECK(h->pol.stream && act->length == -1 && act->origin == ORIGIN_UPSTREAM,
                   "a streaming COMMIT (length %" PRId64 ") for a request that %s a stream", act->length,
                   h->pol.stream ? "asked for" : "did not ask for");
    else
        FUZZ_CHECK(act->length >= 0, "a COMMIT without a stream has length %" PRId64, act->length);
    h->committed = true;
    h->streaming = act->streaming;
    h->length = act->length;
    h->sent = 0;
}

static void check_send(struct h *h, const struct att_action *act)
{
    FUZZ_CHECK(h->committed, "SEND before COMMIT");
    FUZZ_CHECK(act->data && act->len > 0, "an empty SEND");
    if (!h->streaming)
        FUZZ_CHECK(h->sent + act->len <= (uint64_t)h->length, "SENDs past the Content-Length %" PRId64,
                   h->length);
    h->sent += act->len;
    /* Copy at once: ASan checks that [data, data + len) is readable. */
    char *copy = fuzz_dup(act->data, act->len);
    buf_append(&h->client, copy, act->len);
    free(copy);
}

/* ---------------- the glue (proxy.c) ---------------- */

static void start_attempt(struct h *h, enum att_cont cont);

static void start_attempt_at(struct h *h, size_t idx, enum att_cont cont)
{
    FUZZ_CHECK(!h->open, "attempt %u starts while attempt %u was not reported", h->attempt_no + 1, h->attempt_no);
    FUZZ_CHECK(!h->committed || cont != CONT_NONE, "a fresh attempt after the COMMIT");
    const struct cand *c = &h->cand[idx];
    struct att_target t = {
        .model_retries = c->model_retries, .timeout_ms = c->timeout_ms, .first_token_ms = c->first_token_ms,
        .model = c->model, .cont = cont, .provider = c->label, .upstream = "up-model", .hide_usage_chunk = h->hide_usage,
    };
    h->word_base = 0;
    if (cont == CONT_PREFILL || cont == CONT_PREFIX || cont == CONT_CONTINUE_FINAL) {
        /* The model continues the client's text: its words come after it. */
        struct client_view v;
        client_view(h, &v);
        h->word_base = h->raw_fed ? 0 : check_words(&v.text);
        buf_free(&v.text);
    }
    h->words = 0;
    memset(&h->up_sse, 0, sizeof h->up_sse);
    h->attempt_no++;
    h->open = true;
    h->up = UP_HEAD;
    h->head_status = 0;
    h->started = h->now;
    TRACE("t=%" PRIu64 " attempt %u starts: candidate %zu, continuation %d\n", h->now - T0, h->attempt_no, idx,
          (int)cont);
    att_start(&h->a, &t, h->now);
    struct att_action act;
    FUZZ_CHECK(!att_next(&h->a, &act), "att_start queued action %d", (int)act.kind);
    FUZZ_CHECK(att_running(&h->a), "the attempt does not run after att_start");
}

static void start_attempt(struct h *h, enum att_cont cont)
{
    start_attempt_at(h, h->next++, cont);
}

/* proxy.c next_continuation. */
static bool next_continuation(struct h *h, enum att_cont *how)
{
    while (h->continuable && h->next < h->ncand) {
        *how = h->cand[h->next].cont;
        if (*how != CONT_NONE)
            return true;
        h->next++;
    }
    return false;
}

static bool is_end(enum att_act_kind k)
{
    return k == ACT_FINISH || k == ACT_RETRY || k == ACT_FAILOVER || k == ACT_CONTINUE || k == ACT_ABORT;
}

/* Carry out what the engine queued (proxy.c drive / act), checking each
 * action; the follow-ups the glue makes (att_exhausted,
 * att_no_continuation, a new attempt) are fed back in the same loop. */
static void drive(struct h *h)
{
    struct att_action act, more;
    while (!h->finished && att_next(&h->a, &act)) {
        static const char *const names[] = { "NONE",  "COMMIT",   "SEND",     "FINISH",
                                             "RETRY", "FAILOVER", "CONTINUE", "ABORT" };
        TRACE("  t=%" PRIu64 " %s %s%.*s%s\n", h->now - T0, act.kind <= ACT_ABORT ? names[act.kind] : "?",
              act.kind == ACT_SEND ? "\"" : "", act.kind == ACT_SEND ? (int)act.len : 0,
              act.kind == ACT_SEND ? act.data : "",
              act.kind == ACT_SEND ? "\"" : act.outcome ? act.outcome->reason : "");
        switch (act.kind) {
        case ACT_COMMIT: check_commit(h, &act); continue;
        case ACT_SEND: check_send(h, &act); continue;
        default: break;
        }
        FUZZ_CHECK(is_end(act.kind), "unknown action %d", (int)act.kind);
        check_outcome(h, &act);
        FUZZ_CHECK(!att_next(&h->a, &more), "action %d queued after the attempt-ending action %d", (int)more.kind,
                   (int)act.kind);
        if (h->committed && h->streaming)
            FUZZ_CHECK(act.kind == ACT_CONTINUE || act.kind == ACT_FINISH || act.kind == ACT_ABORT,
                       "action %d after the stream was committed", (int)act.kind);
        switch (act.kind) {
        case ACT_FINISH:
            FUZZ_CHECK(h->committed, "FINISH without a response head");
            if (!h->streaming)
                FUZZ_CHECK(h->sent == (uint64_t)h->length, "FINISH after %zu of %" PRId64 " bytes", h->sent,
                           h->length);
            else
                check_stream_end(h, act.outcome);
            check_stream(h, "FINISH", false);
            h->finished = true;
            return;
        case ACT_ABORT:
            h->finished = true;
            return;
        case ACT_RETRY:
            FUZZ_CHECK(!h->committed, "RETRY after the COMMIT");
            FUZZ_CHECK(act.delay_ms <= 60u * 60 * 1000, "RETRY after %" PRIu64 " ms", act.delay_ms);
            if (h->pol.deadline)
                FUZZ_CHECK(h->now + act.delay_ms < h->pol.deadline, "RETRY past the request deadline");
            h->waiting_retry = true;
            h->retry_at = h->now + act.delay_ms;
            return;
        case ACT_FAILOVER:
            FUZZ_CHECK(!h->committed, "FAILOVER after the COMMIT");
            if (h->next < h->ncand)
                start_attempt(h, CONT_NONE);
            else
                att_exhausted(&h->a, h->now);
            continue;
        case ACT_CONTINUE: {
            FUZZ_CHECK(h->committed && h->streaming, "CONTINUE without a committed stream");
            size_t tlen;
            att_text(&h->a, &tlen);
            FUZZ_CHECK(tlen > 0, "CONTINUE with no text to continue");
            check_stream(h, "CONTINUE", true);
            enum att_cont how;
            if (next_continuation(h, &how))
                start_attempt(h, how);
            else
                att_no_continuation(&h->a);
            continue;
        }
        default:
            break;
        }
    }
    if (h->finished)
        return;
    FUZZ_CHECK(h->committed == h->a.committed, "the engine says committed=%d, the client got %s", h->a.committed,
               h->committed ? "a head" : "none");
    FUZZ_CHECK(h->open == att_running(&h->a), "attempt reported=%d but running=%d", !h->open, att_running(&h->a));
    if (h->waiting_retry)
        return;
    FUZZ_CHECK(h->open, "stuck: no attempt runs, no retry waits, and the request has not ended");
    uint64_t due = att_due(&h->a);
    FUZZ_CHECK(due != 0, "an attempt runs without a deadline: an upstream that hangs would hang the request");
    FUZZ_CHECK(due >= h->now, "att_due %" PRIu64 " is before now %" PRIu64, due, h->now);
}

/* The retry timer (proxy.c on_timer with waiting_retry). */
static void fire_retry(struct h *h)
{
    if (h->retry_at > h->now)
        h->now = h->retry_at;
    h->waiting_retry = false;
    h->next--;   /* the same candidate again */
    start_attempt(h, CONT_NONE);
    drive(h);
}

/* The engine's timer at its due time (proxy.c on_timer). */
static void fire_timer(struct h *h)
{
    uint64_t due = att_due(&h->a);
    if (due > h->now)
        h->now = due;
    TRACE("t=%" PRIu64 " timer\n", h->now - T0);
    att_timer(&h->a, h->now);
    /* Progress: the attempt ended, or its next deadline is later. */
    FUZZ_CHECK(!att_running(&h->a) || att_due(&h->a) > h->now,
               "att_timer at its due time %" PRIu64 " did nothing and stays due", h->now);
    drive(h);
}

/* Time passes until `until`: every timer due on the way fires in order. */
static void advance(struct h *h, uint64_t until)
{
    while (!h->finished) {
        uint64_t t = h->waiting_retry ? h->retry_at : att_running(&h->a) ? att_due(&h->a) : 0;
        if (!t || t > until)
            break;
        if (h->waiting_retry)
            fire_retry(h);
        else
            fire_timer(h);
    }
    if (until > h->now)
        h->now = until;
}

/* ---------------- upstreams ---------------- */

struct field {
    const char *name, *value;
};

static void give_head(struct h *h, int status, unsigned hdr)
{
    struct hp_response res;
    memset(&res, 0, sizeof res);
    res.minor_version = 1;
    res.status = status;
    res.reason = "X";
    res.reason_len = 1;
    char *vals[4];
    size_t nv = 0;
    const char *ct = ctypes[hdr & 7];
    const char *ra = retry_afters[(hdr >> 3) & 15];
    struct field hs[4];
    size_t nh = 0;
    if (ct)
        hs[nh++] = (struct field){ "Content-Type", ct };
    if (ra)
        hs[nh++] = (struct field){ "retry-after", ra };
    if (hdr & 0x80) {
        hs[nh++] = (struct field){ "X-RateLimit-Remaining-Requests", "59" };
        hs[nh++] = (struct field){ "x-ratelimit-reset-tokens", "6m0s\r\nSet-Cookie: evil=1\x7f" };
    }
    for (size_t i = 0; i < nh; i++) {
        size_t len = strlen(hs[i].value);
        vals[nv] = fuzz_dup(hs[i].value, len);   /* not NUL-terminated for the engine */
        res.headers[i] = (struct hp_header){ hs[i].name, strlen(hs[i].name), vals[nv], len };
        nv++;
    }
    res.num_headers = nh;
    TRACE("t=%" PRIu64 " attempt %u head %d ctype %s retry-after %s\n", h->now - T0, h->attempt_no, status,
          ct ? ct : "-", ra ? ra : "-");
    h->head_status = status;
    h->up = UP_BODY;
    att_head(&h->a, &res, h->now, WALL);
    for (size_t i = 0; i < nv; i++)
        free(vals[i]);
    drive(h);
}

static void default_head(struct h *h)
{
    give_head(h, 200, h->pol.stream ? 1 : 3);
}

/* Count the data lines of each event the upstream sends. */
static void note_upstream_lines(struct h *h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (h->up_sse.cr && c == '\n') {
            h->up_sse.cr = false;   /* CRLF */
            continue;
        }
        h->up_sse.cr = c == '\r';
        if (c == '\n' || c == '\r') {
            if (h->up_sse.col == 0)
                h->up_sse.ndata = 0;
            else if (h->up_sse.data && ++h->up_sse.ndata > 1)
                h->multi_data = true;
            h->up_sse.col = 0;
            h->up_sse.data = false;
            continue;
        }
        if (h->up_sse.col < 5)
            h->up_sse.data = (h->up_sse.col == 0 || h->up_sse.data) && c == "data:"[h->up_sse.col];
        h->up_sse.col++;
    }
}

static void give_body(struct h *h, const char *p, size_t n)
{
    if (!n)
        return;
    TRACE("t=%" PRIu64 " attempt %u body \"%.*s\"\n", h->now - T0, h->attempt_no, (int)(n > 400 ? 400 : n), p);
    note_upstream_lines(h, p, n);
    char *copy = fuzz_dup(p, n);
    size_t held = att_held(&h->a);
    att_body(&h->a, copy, n, h->now);
    free(copy);
    if (h->budget_out && att_held(&h->a) > held) {
        /* proxy.c on_up_body: the budget check fails the attempt before
         * drive() takes what att_body queued. */
        h->budget_out = false;
        TRACE("t=%" PRIu64 " attempt %u: buffer budget exhausted\n", h->now - T0, h->attempt_no);
        att_fail(&h->a, XERR_LOCAL, "the gateway's buffer budget (max_buffered_bytes) is exhausted", h->now);
    }
    drive(h);
}

/* The end of the upstream's answer: after it the attempt must be over. */
static void check_ended(struct h *h, unsigned no, const char *what)
{
    FUZZ_CHECK(h->attempt_no != no || h->finished || !att_running(&h->a),
               "attempt %u still runs after %s: nothing will ever feed it", no, what);
}

static void give_end(struct h *h, bool clean)
{
    unsigned no = h->attempt_no;
    TRACE("t=%" PRIu64 " attempt %u ends%s\n", h->now - T0, no, clean ? "" : " (no close_notify)");
    if (!clean && h->a.phase != PH_STREAM)
        att_fail(&h->a, XERR_LOST, "tls: the connection closed without close_notify", h->now);
    else
        att_end(&h->a, h->now);
    drive(h);
    check_ended(h, no, "the end of its answer");
}

static void give_fail(struct h *h, enum att_xerr kind)
{
    static const char *const why[] = { "connect: connection refused", "read: connection reset by peer",
                                       "bad chunk size", "out of memory" };
    unsigned no = h->attempt_no;
    TRACE("t=%" PRIu64 " attempt %u fails: %s\n", h->now - T0, no, why[kind]);
    att_fail(&h->a, kind, why[kind], h->now);
    drive(h);
    check_ended(h, no, "a transport failure");
}

/* A canned event, its words numbered for this attempt.  An event of the
 * other dialect is no text for the engine: it gets no number. */
static void give_canned(struct h *h, unsigned op, unsigned arg)
{
    size_t cut = (size_t)(arg & 0x7f) * 2;
    int per_text = arg & 0x80 ? 2 : 1;   /* a replay event may then straddle the known text */
    unsigned k = op & 31;
    const char *tpl = canned[k];
    bool crlf = op & 0x20;
    bool text = (k < CANNED_ANTHROPIC) == (h->pol.dialect == DIALECT_OPENAI);
    struct buf b = BUF_INIT;
    for (const char *s = tpl; *s; s++) {
        if (s[0] == '%' && s[1] == 'W') {
            if (text)
                for (int i = 0; i < per_text; i++)
                    buf_printf(&b, "w%u ", h->word_base + h->words++);
            else
                buf_append_str(&b, "y ");
            s++;
        } else if (*s == '\n' && crlf) {
            buf_append(&b, "\r\n", 2);
        } else {
            buf_append(&b, s, 1);
        }
    }
    size_t n = buf_len(&b);
    unsigned no = h->attempt_no;
    if (k >= CANNED_ANSWERS && h->a.phase == PH_STREAM)
        h->raw_fed = true;   /* no event framing: it runs into the next event */
    if (cut && cut < n) {
        give_body(h, buf_head(&b), cut);
        if (!h->finished && h->attempt_no == no && att_running(&h->a))
            give_body(h, buf_head(&b) + cut, n - cut);
    } else {
        give_body(h, buf_head(&b), n);
    }
    buf_free(&b);
}

static void give_filler(struct h *h, bool long_line)
{
    const size_t piece = 16384;
    size_t total = long_line ? 300u * 1024 : 70u * 1024;
    char *p = malloc(piece);
    if (!p)
        abort();
    if (long_line) {
        memset(p, 'a', piece);
        memcpy(p, "data: ", 6);
        h->long_lines = true;
    } else {
        for (size_t i = 0; i < piece; i += 16)
            memcpy(p + i, ": keep-alive...\n", 16);
    }
    h->raw_fed = true;
    unsigned no = h->attempt_no;
    for (size_t off = 0; off < total && !h->finished && h->attempt_no == no && att_running(&h->a); off += piece) {
        give_body(h, p, piece);
        if (long_line)
            memset(p, 'a', 6);   /* only the first piece starts the line */
    }
    free(p);
}

/* One operation of the input. */
static void step(struct h *h, struct rd *r)
{
    unsigned op = take(r);
    if (op >= 0xb0 && op < 0xc0) {
        advance(h, h->now + waits[op & 7]);
        return;
    }
    if (op >= 0xc8 && op < 0xd0) {
        att_client_gone(&h->a);
        drive(h);
        FUZZ_CHECK(h->finished, "no ABORT after the client left");
        return;
    }
    if (op >= 0xe0) {
        if (op < 0xe8)
            h->budget_out = true;
        return;
    }
    if (h->waiting_retry)
        advance(h, h->retry_at);   /* the upstream below is the retry's */
    if (h->finished || !att_running(&h->a))
        return;
    if (op >= 0xc0 && op < 0xc8) {
        fire_timer(h);
        return;
    }
    if (op >= 0x80 && op < 0x90) {
        unsigned st = take(r), hdr = take(r);
        if (h->up == UP_HEAD)
            give_head(h, statuses[st % (sizeof statuses / sizeof statuses[0])], hdr);
        return;
    }
    if (op >= 0x90 && op < 0xa0) {
        give_end(h, op < 0x98);
        return;
    }
    if (op >= 0xa0 && op < 0xb0) {
        give_fail(h, (enum att_xerr)(op & 3));
        return;
    }
    /* body bytes: a head first when the upstream has not sent one */
    size_t len = 0;
    unsigned arg = 0;
    if (op < 0x40)
        arg = take(r);
    else if (op < 0x80)
        len = ((size_t)take(r) + 1) * (op >= 0x60 ? 16 : 1);
    if (len > r->n)
        len = r->n;
    const char *raw = (const char *)r->p;
    r->p += len;
    r->n -= len;
    if (op >= 0xd0 && h->fillers >= MAX_FILLERS)
        return;
    if (h->up == UP_HEAD)
        default_head(h);
    if (h->finished || !att_running(&h->a))
        return;
    if (op < 0x40) {
        give_canned(h, op, arg);
    } else if (op < 0x80) {
        h->raw_fed = true;
        give_body(h, raw, len);
    } else {
        h->fillers++;
        give_filler(h, op >= 0xd8);
    }
}

/* Every entry point once more after the end: nothing may come out. */
static void poke_after_end(struct h *h)
{
    struct att_action act;
    struct hp_response res;
    struct att_target t = { .timeout_ms = 1000, .first_token_ms = 1000, .cont = CONT_NONE, .provider = "late", .upstream = "m" };
    memset(&res, 0, sizeof res);
    res.status = 200;
    for (int i = 0; i < 9; i++) {
        h->now += 1000;
        switch (i) {
        case 0: att_start(&h->a, &t, h->now); break;
        case 1: att_head(&h->a, &res, h->now, WALL); break;
        case 2: att_body(&h->a, "data: x\n\n", 9, h->now); break;
        case 3: att_end(&h->a, h->now); break;
        case 4: att_fail(&h->a, XERR_LOST, "late", h->now); break;
        case 5: att_timer(&h->a, h->now); break;
        case 6: att_exhausted(&h->a, h->now); break;
        case 7: att_no_continuation(&h->a); break;
        default: att_client_gone(&h->a); break;
        }
        FUZZ_CHECK(!att_next(&h->a, &act), "action %d after the request ended (call %d)", (int)act.kind, i);
        FUZZ_CHECK(att_due(&h->a) == 0 && !att_running(&h->a), "the engine runs after the request ended");
    }
}

/* ---------------- the request ---------------- */

static void setup(struct h *h, struct rd *r)
{
    static const uint64_t ra_max[] = { 0, 1000, 5000, 60000 };
    static const size_t keep[] = { 0, 12, 64, 4096 };
    static const uint64_t cool[] = { 0, 1000, 30000, 300000 };
    static const uint64_t max_cool[] = { 5000, 60000, 600000, 3600000 };
    static const uint64_t idle[] = { 1000, 30000, 120000, 600000 };
    static const uint64_t deadline[] = { 3000, 30000, 120000, 600000 };
    static const uint64_t timeout[] = { 5000, 30000, 120000, 600000 };
    static const uint64_t first_token[] = { 0, 2000, 30000, 600000 };
    unsigned b0 = take(r), b1 = take(r), b2 = take(r), b3 = take(r);
    memset(h, 0, sizeof *h);
    h->now = T0;
    h->pol = (struct att_policy){
        .dialect = (b0 & 1) ? DIALECT_ANTHROPIC : DIALECT_OPENAI,
        .stream = b0 & 2,
        .end_rule = (enum att_end_rule)(((b0 >> 2) & 3) % 3),
        .not_found_passes = b0 & 0x40,
        .retry_after_max_ms = ra_max[(b1 >> 2) & 3],
        .cooldown_ms = cool[b2 & 3],
        .max_cooldown_ms = max_cool[(b2 >> 2) & 3],
        .deadline = (b0 & 0x80) ? T0 + deadline[(b2 >> 6) & 3] : 0,
        .idle_ms = idle[(b2 >> 4) & 3],
        .keep_text = keep[(b1 >> 4) & 3],
        .seed = b3,
    };
    h->hide_usage = b0 & 0x20;
    h->continuable = b0 & 0x10;
    h->ncand = 1 + ((b1 >> 6) & 3);
    for (size_t i = 0; i < h->ncand; i++) {
        unsigned c = take(r);
        h->cand[i] = (struct cand){
            .model_retries = (int)(b1 & 3) % 3,
            .cont = (enum att_cont)((c & 7) % 5),
            .timeout_ms = timeout[(c >> 3) & 3],
            .first_token_ms = first_token[(c >> 5) & 3],
            .model = (c & 0x80) ? "alias-model" : NULL,
        };
        snprintf(h->cand[i].label, sizeof h->cand[i].label, "prov%zu", i);
    }
    att_init(&h->a, &h->pol);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rd r = { data, size };
    static struct h h;   /* struct attempt is large: not on the stack */
    if (trace < 0)
        trace = getenv("FUZZ_TRACE") != NULL;
    setup(&h, &r);
    start_attempt(&h, CONT_NONE);
    drive(&h);
    while (r.n && !h.finished)
        step(&h, &r);
    /* The upstreams go silent: timers, retries and the glue's answers
     * must end the request. */
    for (int n = 0; !h.finished; n++) {
        FUZZ_CHECK(n < SETTLE_STEPS, "the request has not ended after %d timers and retries", n);
        if (h.waiting_retry)
            fire_retry(&h);
        else
            fire_timer(&h);
    }
    FUZZ_CHECK(!h.open, "attempt %u was never reported", h.attempt_no);
    poke_after_end(&h);
    att_free(&h.a);
    buf_free(&h.client);
    return 0;
}
