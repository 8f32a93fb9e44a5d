#include "sse.h"

#include <stdio.h>
#include <string.h>

#include "json.h"
#include "util.h"

void sse_init(struct sse_splitter *s)
{
    memset(s, 0, sizeof *s);
}

void sse_free(struct sse_splitter *s)
{
    buf_free(&s->line);
}

/* Deliver the held partial line plus text[0, n) with the given ending. */
static int emit(struct sse_splitter *s, const char *text, size_t n, const char *eol, size_t eol_len,
                sse_line_fn fn, void *ctx)
{
    int r;
    if (s->in_long_line) {
        r = fn(ctx, text, n, eol, eol_len, true);
        if (eol_len)
            s->in_long_line = false;
        return r;
    }
    if (buf_len(&s->line)) {
        if (buf_append(&s->line, text, n) < 0)
            return -1;
        r = fn(ctx, buf_head(&s->line), buf_len(&s->line), eol, eol_len, false);
        buf_clear(&s->line);
        buf_trim(&s->line, 4096);
        return r;
    }
    return fn(ctx, text, n, eol, eol_len, false);
}

int sse_feed(struct sse_splitter *s, const char *p, size_t n, sse_line_fn fn, void *ctx)
{
    size_t i = 0;
    if (s->cr_seen && n > 0) {
        /* A "\r\n" cut between two reads: the line went out with "\r" as
         * its ending.  The LF is handed over alone, as an empty partial
         * piece ending in "\n", so forwarded bytes stay identical and no
         * extra blank line is seen. */
        s->cr_seen = false;
        if (p[0] == '\n') {
            if (fn(ctx, "", 0, "\n", 1, true) < 0)
                return -1;
            i = 1;
        }
    }
    size_t start = i;
    while (i < n) {
        char ch = p[i];
        if (ch != '\n' && ch != '\r') {
            i++;
            continue;
        }
        size_t eol_len = 1;
        if (ch == '\r') {
            if (i + 1 < n) {
                if (p[i + 1] == '\n')
                    eol_len = 2;
            } else {
                s->cr_seen = true;
            }
        }
        if (emit(s, p + start, i - start, p + i, eol_len, fn, ctx) < 0)
            return -1;
        i += eol_len;
        start = i;
    }
    size_t rest = n - start;
    if (rest == 0)
        return 0;
    if (s->in_long_line)
        return fn(ctx, p + start, rest, "", 0, true);
    if (buf_len(&s->line) + rest > SSE_LINE_MAX) {
        /* Too long to hold: pass what we have on, unchanged, in pieces. */
        s->in_long_line = true;
        int r = 0;
        if (buf_len(&s->line))
            r = fn(ctx, buf_head(&s->line), buf_len(&s->line), "", 0, true);
        buf_clear(&s->line);
        if (r == 0)
            r = fn(ctx, p + start, rest, "", 0, true);
        return r;
    }
    return buf_append(&s->line, p + start, rest);
}

int sse_finish(struct sse_splitter *s, sse_line_fn fn, void *ctx)
{
    s->cr_seen = false;
    if (s->in_long_line) {
        s->in_long_line = false;
        return fn(ctx, "", 0, "", 0, true);
    }
    if (buf_len(&s->line) == 0)
        return 0;
    int r = fn(ctx, buf_head(&s->line), buf_len(&s->line), "", 0, false);
    buf_clear(&s->line);
    return r;
}

const char *sse_data(const char *line, size_t len, size_t *plen)
{
    if (!mem_starts(line, len, "data:"))
        return NULL;
    size_t off = 5;
    if (off < len && line[off] == ' ')
        off++;
    *plen = len - off;
    return line + off;
}

static bool value_nonempty(const char *s, struct json_val v)
{
    switch (v.type) {
    case JSON_STRING:
        return v.end - v.start > 2;
    case JSON_ARRAY:
    case JSON_OBJECT:
        return !json_is_empty(s, v);
    case JSON_NULL:
    case JSON_FALSE:
        return false;
    default:
        return true;
    }
}

/* A choice carries content when its delta (or message) has any field
 * other than "role" with a non-empty value, or its "text" is non-empty. */
static bool choice_has_content(const char *s, struct json_val choice)
{
    struct json_val v;
    if (choice.type != JSON_OBJECT)
        return false;
    if (json_get(s, choice, "text", &v) && value_nonempty(s, v))
        return true;
    if (!json_get(s, choice, "delta", &v) && !json_get(s, choice, "message", &v))
        return false;
    if (v.type != JSON_OBJECT)
        return false;
    struct json_iter it;
    struct json_val key, val;
    json_iter_init(&it, s, v);
    while (json_iter_member(&it, &key, &val) == 1) {
        if (json_str_eq(s, key, "role", 4))
            continue;
        if (value_nonempty(s, val))
            return true;
    }
    return false;
}

static void error_message(const char *s, struct json_val err, char *msg, size_t cap)
{
    if (!cap)
        return;
    struct json_val m;
    if (err.type == JSON_STRING) {
        json_str_decode(s, err, msg, cap);
    } else if (err.type == JSON_OBJECT && json_get(s, err, "message", &m) && m.type == JSON_STRING) {
        json_str_decode(s, m, msg, cap);
    } else {
        size_t n = err.end - err.start;
        if (n >= cap)
            n = cap - 1;
        memcpy(msg, s + err.start, n);
        msg[n] = '\0';
    }
    if (!msg[0])
        snprintf(msg, cap, "upstream error");
}

/* root's "error" member when it is there and not null. */
static bool error_member(const char *s, struct json_val root, struct json_val *err)
{
    return root.type == JSON_OBJECT && json_get(s, root, "error", err) && err->type != JSON_NULL;
}

bool answer_has_error(const char *s, size_t n, char *msg, size_t cap)
{
    struct json_val root, err;
    struct json_error jerr;
    /* A plain search first: a good answer rarely names "error" at all, so
     * it is not parsed a second time (rewrite_model parses it anyway). */
    if (!mem_find(s, n, "\"error\"", 7) || json_parse(s, n, &root, &jerr) < 0 || !error_member(s, root, &err))
        return false;
    error_message(s, err, msg, cap);
    return true;
}

enum sse_kind sse_classify(const char *line, size_t len, char *msg, size_t cap)
{
    size_t plen;
    const char *d = sse_data(line, len, &plen);
    if (!d)
        return SSE_OTHER;
    while (plen && (d[plen - 1] == ' ' || d[plen - 1] == '\t'))
        plen--;
    if (mem_eq(d, plen, "[DONE]"))
        return SSE_DONE;
    struct json_val root, v;
    struct json_error jerr;
    if (json_parse(d, plen, &root, &jerr) < 0 || root.type != JSON_OBJECT)
        return SSE_CONTENT;   /* not ours to judge: let it through */
    if (error_member(d, root, &v)) {
        error_message(d, v, msg, cap);
        return SSE_ERROR;
    }
    if (json_get(d, root, "type", &v) && v.type == JSON_STRING) {
        /* The Responses API names its events in "type". */
        if (json_str_eq(d, v, "error", 5) || json_str_eq(d, v, "response.failed", 15)) {
            struct json_val r, e;
            if (json_get(d, root, "response", &r) && r.type == JSON_OBJECT && json_get(d, r, "error", &e))
                error_message(d, e, msg, cap);
            else if (json_get(d, root, "message", &e))
                error_message(d, e, msg, cap);
            else
                snprintf(msg, cap, "upstream stream error");
            return SSE_ERROR;
        }
        char type[64];
        size_t tl = json_str_decode(d, v, type, sizeof type);
        if (tl < sizeof type && tl > 6 && strcmp(type + tl - 6, ".delta") == 0)
            return SSE_CONTENT;
    }
    if (json_get(d, root, "choices", &v) && v.type == JSON_ARRAY) {
        struct json_iter it;
        struct json_val ch;
        json_iter_init(&it, d, v);
        while (json_iter_elem(&it, &ch) == 1)
            if (choice_has_content(d, ch))
                return SSE_CONTENT;
    }
    return SSE_NEUTRAL;
}
