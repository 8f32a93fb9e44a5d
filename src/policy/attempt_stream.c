/* attempt_stream: the events of a streamed answer (see attempt.h).
 *
 * Lines come from the SSE splitter; each line is copied into `ev`, a data
 * line with its "model" rewritten.  An event ends at its blank line: then
 * it is kept or dropped as a whole (a usage chunk the client did not ask
 * for, a continuation's preliminaries), so only complete events reach the
 * client; a line too long to hold passes in pieces and cannot be dropped.
 * Before the first content event everything waits in `ev` (read-ahead);
 * the commit sends it.  A continuation's events are spliced in: its
 * preliminaries dropped, "id" and "created" (OpenAI) or the block index
 * (Anthropic) made the first part's, a replay's text checked against what
 * the client already has. */
#include <stdio.h>
#include <string.h>

#include "attempt_priv.h"
#include "json.h"
#include "rewrite.h"
#include "util.h"

#define RESUMED_NOTE ": autoswitch resumed the answer on "

void stream_begin(struct attempt *a)
{
    sse_free(&a->sse);
    sse_init(&a->sse);
    buf_clear(&a->ev);
    a->ev_start = 0;
    a->ev_drop = a->ev_pass = a->in_long_line = false;
    a->saw_content = a->saw_done = a->saw_finish = false;
    a->error_first = a->stream_broken = a->cont_bad = a->diverged = false;
    a->stream_err[0] = '\0';
    a->cont_forwarding = false;
    a->replay_pos = 0;
    a->cont_block = -1;
}

bool stream_content_started(const struct attempt *a)
{
    return a->tgt.cont == CONT_NONE ? a->committed : a->cont_forwarding;
}

bool stream_can_continue(const struct attempt *a)
{
    return a->pol.keep_text && !a->text_lost && !a->diverged && buf_len(&a->text) > 0;
}

/* ---------------- keeping the text ---------------- */

/* Append the decoded JSON string to dst, within keep_text. */
static bool keep_string(struct attempt *a, struct buf *dst, const char *s, struct json_val str)
{
    size_t room = str.end - str.start;   /* decoding never grows */
    if (buf_reserve(dst, room + 1) < 0)
        return false;
    size_t n = json_str_decode(s, str, buf_tail(dst), room + 1);
    if (n > room)
        return false;
    buf_commit(dst, n);
    return dst != &a->text || buf_len(&a->text) <= a->pol.keep_text;
}

static long long int_member(const char *s, struct json_val obj, const char *key)
{
    struct json_val v;
    long long x;
    if (obj.type == JSON_OBJECT && json_get(s, obj, key, &v) && v.type == JSON_NUMBER &&
        parse_int(s + v.start, v.end - v.start, 0, 1 << 20, &x) == 0)
        return x;
    return -1;
}

/* The first part of a stream: what a continuation would need. */
static void note_fresh(struct attempt *a, const char *s, const struct ev_info *ev)
{
    if (ev->kind == EVK_CONTENT)
        a->saw_content = true;
    if (!a->pol.keep_text || a->text_lost)
        return;
    if (ev->other_choice || (ev->content & EVC_OTHER))
        a->text_lost = true;
    struct json_val v;
    if (a->pol.dialect == DIALECT_OPENAI && ev->root.type == JSON_OBJECT && !buf_len(&a->first_id)) {
        if (json_get(s, ev->root, "id", &v))
            buf_append(&a->first_id, s + v.start, v.end - v.start);
        if (json_get(s, ev->root, "created", &v))
            buf_append(&a->first_created, s + v.start, v.end - v.start);
    }
    if (!(ev->content & EVC_TEXT) || ev->text.type != JSON_STRING || a->text_lost)
        return;
    if (a->pol.dialect == DIALECT_ANTHROPIC) {
        int idx = (int)int_member(s, ev->root, "index");
        if (a->text_index >= 0 && idx != a->text_index)
            a->text_lost = true;   /* text in two blocks: not one thing to continue */
        a->text_index = idx;
    }
    if (!keep_string(a, &a->text, s, ev->text))
        a->text_lost = true;
}

/* ---------------- continuation parts ---------------- */

static void start_forwarding(struct attempt *a)
{
    a->cont_forwarding = true;
    /* Say so in a comment (clients ignore them) ahead of the event being
     * assembled: move that event's lines behind the note. */
    size_t partial = buf_len(&a->ev) - a->ev_start;
    struct buf held = BUF_INIT;   /* not scratch: it holds the event's text */
    buf_append(&held, buf_head(&a->ev) + a->ev_start, partial);
    a->ev.end -= partial;
    buf_append_str(&a->ev, RESUMED_NOTE);
    if (a->tgt.provider && a->tgt.upstream) {
        buf_append_str(&a->ev, a->tgt.provider);
        buf_append(&a->ev, "/", 1);
        buf_append_str(&a->ev, a->tgt.upstream);
    } else {
        buf_append_str(&a->ev, "another provider");
    }
    buf_append_str(&a->ev, "\n\n");
    a->ev_start = buf_len(&a->ev);
    buf_append(&a->ev, buf_head(&held), buf_len(&held));
    buf_free(&held);
}

/* Replay: the text must first say again what the client already has.
 * Returns the part of this event's text that is new (offset into the
 * decoded text in scratch), or -1 while still inside the known prefix. */
static long replay_text(struct attempt *a, const char *s, struct json_val str)
{
    buf_clear(&a->scratch);
    if (!keep_string(a, &a->scratch, s, str))
        return a->diverged = true, -1;
    size_t known = buf_len(&a->text) - a->replay_pos;
    size_t n = buf_len(&a->scratch);
    size_t cmp = n < known ? n : known;
    if (memcmp(buf_head(&a->scratch), buf_head(&a->text) + a->replay_pos, cmp) != 0) {
        a->diverged = true;
        return -1;
    }
    a->replay_pos += cmp;
    return n > cmp ? (long)cmp : -1;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* The prefill was sent without its trailing whitespace, which the client
 * already has: a continuation starting with whitespace would double it.
 * Returns the offset of what is new in scratch, -1 when nothing is
 * skipped, -2 when the event is whitespace only. */
static long trim_joint(struct attempt *a, const char *s, struct json_val str)
{
    size_t n = buf_len(&a->text);
    if (!n || !is_space(buf_head(&a->text)[n - 1]))
        return -1;
    buf_clear(&a->scratch);
    if (!keep_string(a, &a->scratch, s, str))
        return -1;
    size_t skip = 0;
    while (skip < buf_len(&a->scratch) && is_space(buf_head(&a->scratch)[skip]))
        skip++;
    if (skip == buf_len(&a->scratch))
        return -2;
    return skip ? (long)skip : -1;
}

/* A continuation's event: dropped until its first new text, then
 * passed (edited in write_data).  Sets *suffix for a replay event that
 * straddles the known text. */
static void note_cont(struct attempt *a, const char *s, const struct ev_info *ev, long *suffix)
{
    bool text = (ev->content & EVC_TEXT) && ev->text.type == JSON_STRING;
    if (ev->kind == EVK_CONTENT && !text) {
        a->ev_drop = true;                  /* reasoning, tool calls: the client has none here */
        if (!a->cont_forwarding && (ev->content & EVC_OTHER))
            a->cont_bad = true;
        return;
    }
    if (a->pol.dialect == DIALECT_ANTHROPIC) {
        int idx = (int)int_member(s, ev->root, "index");
        if (text && a->cont_block < 0)
            a->cont_block = idx;
        if (idx >= 0 && idx != a->cont_block)
            a->ev_drop = true;              /* another block of the continuation */
        if (ev->message_start || ev->block_start)
            a->ev_drop = true;              /* the client's message and block are open already */
    }
    if (!text) {
        if (!a->cont_forwarding || ev->role_only)
            a->ev_drop = true;
        return;
    }
    long sfx = -1;
    if (a->tgt.cont == CONT_REPLAY && a->replay_pos < buf_len(&a->text)) {
        sfx = replay_text(a, s, ev->text);
        if (sfx < 0) {
            a->ev_drop = true;
            return;
        }
    } else if (!a->cont_forwarding) {
        sfx = trim_joint(a, s, ev->text);
        if (sfx == -2) {
            a->ev_drop = true;              /* only the whitespace the client has */
            return;
        }
    }
    if (!a->cont_forwarding)
        start_forwarding(a);
    if (sfx >= 0)
        buf_append(&a->text, buf_head(&a->scratch) + sfx, buf_len(&a->scratch) - (size_t)sfx);
    else if (!keep_string(a, &a->text, s, ev->text))
        a->text_lost = true;
    if (buf_len(&a->text) > a->pol.keep_text)
        a->text_lost = true;
    a->replay_pos = buf_len(&a->text);
    *suffix = sfx;
}

/* ---------------- writing a data line ---------------- */

/* The data line with its edits: "model" always, and for continuation
 * parts the first part's "id" and "created" (OpenAI), the client's block
 * index (Anthropic), a replay's new text. */
static void write_data(struct attempt *a, const char *line, const char *s, size_t n, const struct ev_info *ev,
                       long suffix)
{
    struct span_edit e[4];
    size_t k = 0;
    struct json_val root = ev->root, v, m;
    buf_append(&a->ev, line, (size_t)(s - line));
    if (root.type != JSON_OBJECT) {
        buf_append(&a->ev, s, n);
        return;
    }
    const struct buf *model = &a->model_json;
    if (buf_len(model)) {
        if (a->pol.dialect == DIALECT_OPENAI && ev->model.type == JSON_STRING)
            e[k++] = (struct span_edit){ ev->model.start, ev->model.end, buf_head(model), buf_len(model) };
        else if (ev->message_start && json_get(s, root, "message", &m) && m.type == JSON_OBJECT &&
                 json_get(s, m, "model", &v) && v.type == JSON_STRING)
            e[k++] = (struct span_edit){ v.start, v.end, buf_head(model), buf_len(model) };
    }
    if (a->tgt.cont != CONT_NONE && a->pol.dialect == DIALECT_OPENAI) {
        if (buf_len(&a->first_id) && json_get(s, root, "id", &v))
            e[k++] = (struct span_edit){ v.start, v.end, buf_head(&a->first_id), buf_len(&a->first_id) };
        if (buf_len(&a->first_created) && json_get(s, root, "created", &v))
            e[k++] = (struct span_edit){ v.start, v.end, buf_head(&a->first_created), buf_len(&a->first_created) };
    }
    char idx[24];
    if (a->tgt.cont != CONT_NONE && a->pol.dialect == DIALECT_ANTHROPIC && a->text_index >= 0 &&
        json_get(s, root, "index", &v) && v.type == JSON_NUMBER) {
        int w = snprintf(idx, sizeof idx, "%d", a->text_index);
        e[k++] = (struct span_edit){ v.start, v.end, idx, (size_t)w };
    }
    struct buf quoted = BUF_INIT;
    if (suffix >= 0 && k < 4) {
        json_append_str(&quoted, buf_head(&a->scratch) + suffix, buf_len(&a->scratch) - (size_t)suffix);
        e[k++] = (struct span_edit){ ev->text.start, ev->text.end, buf_head(&quoted), buf_len(&quoted) };
    }
    if (!k || rewrite_spans(s, n, e, k, &a->ev) < 0)
        buf_append(&a->ev, s, n);
    buf_free(&quoted);
}

/* ---------------- lines and events ---------------- */

static void end_event(struct attempt *a, const char *eol, size_t eol_len)
{
    buf_append(&a->ev, eol, eol_len);
    if (a->ev_drop && !a->ev_pass) {
        a->ev.end = a->ev.start + a->ev_start;
        a->text.end = a->text.start + a->text_sent;   /* its text was never the client's */
    }
    a->text_sent = buf_len(&a->text);
    a->ev_start = buf_len(&a->ev);
    a->ev_drop = a->ev_pass = false;
}

static void on_error_event(struct attempt *a, const struct ev_info *ev)
{
    a->ev_drop = true;   /* ours replaces it, or a continuation goes on */
    if (!stream_content_started(a) && !(a->tgt.cont == CONT_NONE && a->saw_content))
        a->error_first = true;
    else
        a->stream_broken = true;
    snprintf(a->stream_err, sizeof a->stream_err, "%s", ev->msg);
    redact_secrets(a->stream_err);
}

/* A data line.  -1 stops the splitter: the attempt is decided. */
static int on_data(struct attempt *a, const char *line, const char *s, size_t n, const char *eol, size_t eol_len)
{
    struct ev_info ev;
    event_read(a->pol.dialect, s, n, &ev);
    long suffix = -1;
    if (ev.usage.type == JSON_OBJECT) {
        event_usage(a->pol.dialect, s, ev.usage, &a->out.usage);
        a->out.has_usage = true;
    }
    /* The data line decides for its event, whatever its event: line said. */
    a->ev_drop = ev.usage_only && a->tgt.hide_usage_chunk;
    a->saw_finish |= ev.finish;
    if (ev.kind == EVK_DONE)
        a->saw_done = true;
    if (ev.kind == EVK_ERROR)
        on_error_event(a, &ev);
    else if (a->tgt.cont == CONT_NONE)
        note_fresh(a, s, &ev);
    else
        note_cont(a, s, &ev, &suffix);
    write_data(a, line, s, n, &ev, suffix);
    buf_append(&a->ev, eol, eol_len);
    return a->error_first || a->stream_broken || a->diverged || a->cont_bad ? -1 : 0;
}

static int on_line(void *ctx, const char *text, size_t len, const char *eol, size_t eol_len, bool partial)
{
    struct attempt *a = ctx;
    if (partial) {
        /* A piece of an over-long line, passed unchanged: it cannot be
         * held or dropped, and a data line this long is content. */
        buf_append(&a->ev, text, len);
        buf_append(&a->ev, eol, eol_len);
        if (len) {
            a->ev_pass = true;
            if (!a->in_long_line) {
                a->saw_content = true;
                a->text_lost = true;
                if (a->tgt.cont != CONT_NONE && !a->cont_forwarding)
                    a->cont_forwarding = true;
            }
        }
        a->in_long_line = eol_len == 0;
        return 0;
    }
    size_t plen;
    const char *data = sse_data(text, len, &plen);
    if (data)
        return on_data(a, text, data, plen, eol, eol_len);
    if (len == 0) {
        end_event(a, eol, eol_len);
        return 0;
    }
    /* event:, id:, retry:, comments: part of the event. */
    if (a->tgt.cont != CONT_NONE && !a->cont_forwarding)
        a->ev_drop = true;
    buf_append(&a->ev, text, len);
    buf_append(&a->ev, eol, eol_len);
    return 0;
}

/* ---------------- decisions ---------------- */

static void commit(struct attempt *a, uint64_t now)
{
    a->committed = true;
    a->out.ttft_ms = (int64_t)(now - a->started);
    att_queue(a, ACT_COMMIT);
    struct att_action *c = &a->q[(a->qhead + a->qlen - 1) % ATT_QUEUE];
    c->status = a->status;
    c->ctype = a->ctype[0] ? a->ctype : "text/event-stream";
    c->streaming = true;
    c->length = -1;
}

/* Send the complete events (and a line passing in pieces). */
static void flush(struct attempt *a)
{
    size_t upto = a->ev_pass ? buf_len(&a->ev) : a->ev_start;
    if (!upto)
        return;
    att_send(a, buf_head(&a->ev), upto);
    a->mid_event = upto > a->ev_start;
    buf_consume(&a->ev, upto);
    a->ev_start = upto > a->ev_start ? 0 : a->ev_start - upto;
}

/* What an answer that ended cleanly lacks: [DONE] (OpenAI chat and
 * completions), message_stop (Anthropic). */
static void add_end_marker(struct attempt *a)
{
    if (a->saw_done)
        return;
    if (a->pol.dialect == DIALECT_ANTHROPIC)
        att_send(a, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                 sizeof "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n" - 1);
    else if (a->pol.end_rule == END_DONE)
        att_send(a, "data: [DONE]\n\n", sizeof "data: [DONE]\n\n" - 1);
}

static bool complete(const struct attempt *a)
{
    return a->pol.end_rule == END_ANY || a->saw_done || a->saw_finish;
}

static void finish_ok(struct attempt *a)
{
    flush(a);
    if (a->mid_event)
        att_send(a, "\n\n", 2);   /* a long line passed in pieces: end its event first */
    add_end_marker(a);
    att_set_outcome(a, OUT_SUCCESS, false, NULL);
    att_queue(a, ACT_FINISH);
    a->q[(a->qhead + a->qlen - 1) % ATT_QUEUE].outcome = &a->out;
    a->phase = PH_OVER;
}

static const char *missing_end(const struct attempt *a)
{
    if (a->pol.dialect == DIALECT_ANTHROPIC)
        return "upstream stream ended before message_stop";
    return a->pol.end_rule == END_DONE ? "upstream stream ended without [DONE]" : "upstream stream ended early";
}

/* A continuation part: nothing is sent until its first new text. */
static void check_cont(struct attempt *a, uint64_t now, bool ended)
{
    char reason[ATT_REASON_MAX];
    if (a->diverged) {
        att_set_outcome(a, OUT_FAILURE, false, "the replay diverged from the text already sent");
        att_end_stream_with_error(a, a->broken_reason, true);
        return;
    }
    if (!a->cont_forwarding) {
        if (a->error_first || a->cont_bad || ended || a->saw_done) {
            snprintf(reason, sizeof reason, "%s%.160s", a->error_first ? "stream error: " : "",
                     a->error_first ? a->stream_err
                     : a->cont_bad  ? "the continuation answered with something other than text"
                                    : "the continuation ended before any new text");
            att_failed(a, a->cont_bad ? FC_SOFT : FC_NEXT, a->status, reason, now);
        }
        return;
    }
    if (a->stream_broken) {
        flush(a);
        snprintf(reason, sizeof reason, "stream error after content: %.160s", a->stream_err);
        att_failed(a, FC_NEXT, a->status, reason, now);
        return;
    }
    if (!ended) {
        flush(a);
        return;
    }
    if (complete(a))
        finish_ok(a);
    else
        att_failed(a, FC_NEXT, a->status, missing_end(a), now);
}

static void check(struct attempt *a, uint64_t now, bool ended)
{
    char reason[ATT_REASON_MAX];
    if (a->tgt.cont != CONT_NONE) {
        check_cont(a, now, ended);
        return;
    }
    if (!a->committed) {
        if (a->error_first) {
            snprintf(reason, sizeof reason, "stream error: %.160s", a->stream_err);
            att_failed(a, FC_NEXT, a->status, reason, now);
            return;
        }
        if (!a->saw_content && (a->saw_done || ended)) {
            att_failed(a, FC_NEXT, a->status,
                       a->saw_done ? "empty stream: the end before any content" : "empty stream: ended before any content",
                       now);
            return;
        }
        if (!a->saw_content && buf_len(&a->ev) <= ATT_PREREAD_MAX)
            return;   /* still reading ahead */
        commit(a, now);
    }
    if (a->stream_broken) {
        flush(a);   /* the events before the error are the client's */
        snprintf(reason, sizeof reason, "stream error after content: %.160s", a->stream_err);
        att_failed(a, FC_NEXT, a->status, reason, now);
        return;
    }
    if (!ended)
        flush(a);
    else if (complete(a))
        finish_ok(a);
    else
        att_failed(a, FC_NEXT, a->status, missing_end(a), now);
}

void stream_feed(struct attempt *a, const char *p, size_t n, uint64_t now)
{
    if (sse_feed(&a->sse, p, n, on_line, a) < 0 && !a->error_first && !a->stream_broken && !a->diverged &&
        !a->cont_bad) {
        att_failed(a, FC_NEXT, a->status, "out of memory reading the stream", now);
        return;
    }
    check(a, now, false);
}

void stream_ended(struct attempt *a, uint64_t now)
{
    sse_finish(&a->sse, on_line, a);
    /* A last event without its blank line still counts as complete: end
     * it, so whatever follows (our [DONE]) is an event of its own. */
    if (buf_len(&a->ev) > a->ev_start) {
        if (buf_head(&a->ev)[buf_len(&a->ev) - 1] != '\n')
            buf_append(&a->ev, "\n", 1);
        end_event(a, "\n", 1);
    }
    check(a, now, true);
}
