#include "rewrite.h"

#include <string.h>

static bool excluded(const char *s, struct json_val key, char *const *exclude, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (json_str_eq(s, key, exclude[i], strlen(exclude[i])))
            return true;
    return false;
}

static bool is_placeholder(const char *s, struct json_val v)
{
    static const char undefined[] = "[undefined]";
    return v.type == JSON_NULL || (v.type == JSON_STRING && json_str_eq(s, v, undefined, sizeof undefined - 1));
}

int rewrite_request(const char *body, struct json_val root, const char *model, char *const *exclude,
                    size_t n_exclude, struct buf *out)
{
    /* Members are copied with the separator that preceded them in the
     * original, so a removed member takes its own comma with it.  The
     * first kept member follows the opening brace's whitespace. */
    struct json_iter it;
    struct json_val key, val;
    size_t prev_end = 0;      /* end of the previous member's value */
    bool any_kept = false, first = true;
    int r = 0;
    json_iter_init(&it, body, root);
    while (json_iter_member(&it, &key, &val) == 1) {
        if (first) {
            r |= buf_append(out, body + root.start, key.start - root.start);
            first = false;
        }
        bool is_model = json_str_eq(body, key, "model", 5);
        bool drop = !is_model && (excluded(body, key, exclude, n_exclude) || is_placeholder(body, val));
        if (!drop) {
            if (any_kept)
                r |= buf_append(out, body + prev_end, key.start - prev_end);
            if (is_model) {
                r |= buf_append(out, body + key.start, val.start - key.start);
                r |= json_append_str(out, model, strlen(model));
            } else {
                r |= buf_append(out, body + key.start, val.end - key.start);
            }
            any_kept = true;
        }
        prev_end = val.end;
    }
    if (first)   /* empty object */
        return buf_append(out, body + root.start, root.end - root.start);
    return r | buf_append(out, body + prev_end, root.end - prev_end);
}

int rewrite_model(const char *text, size_t n, const char *alias, struct buf *out)
{
    struct json_val root, v;
    struct json_error err;
    /* Cheap test first: most bodies have an object at the top. */
    size_t i = 0;
    while (i < n && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t'))
        i++;
    if (i == n || text[i] != '{')
        return 0;
    if (json_parse(text, n, &root, &err) < 0 || root.type != JSON_OBJECT)
        return 0;
    if (!json_get(text, root, "model", &v) || v.type != JSON_STRING)
        return 0;
    int r = buf_append(out, text, v.start);
    r |= json_append_str(out, alias, strlen(alias));
    r |= buf_append(out, text + v.end, n - v.end);
    return r < 0 ? -1 : 1;
}

int rewrite_spans(const char *text, size_t n, struct span_edit *e, size_t k, struct buf *out)
{
    /* k is a handful (model, id, created, an index, a text): insertion sort. */
    for (size_t i = 1; i < k; i++)
        for (size_t j = i; j > 0 && e[j].start < e[j - 1].start; j--) {
            struct span_edit t = e[j];
            e[j] = e[j - 1];
            e[j - 1] = t;
        }
    size_t pos = 0;
    int r = 0;
    for (size_t i = 0; i < k; i++) {
        if (e[i].start < pos || e[i].end < e[i].start || e[i].end > n)
            continue;   /* overlapping or out of range: a caller's bug, skip it */
        r |= buf_append(out, text + pos, e[i].start - pos);
        r |= buf_append(out, e[i].with, e[i].len);
        pos = e[i].end;
    }
    r |= buf_append(out, text + pos, n - pos);
    return r < 0 ? -1 : 0;
}

int rewrite_prefill(const char *body, size_t len, const char *text, size_t n, enum prefill_kind kind,
                    struct buf *out)
{
    struct json_val root, msgs;
    struct json_error err;
    if (json_parse(body, len, &root, &err) < 0 || root.type != JSON_OBJECT ||
        !json_get(body, root, "messages", &msgs) || msgs.type != JSON_ARRAY)
        return -1;
    while (n && (text[n - 1] == ' ' || text[n - 1] == '\t' || text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    size_t close = msgs.end - 1;   /* the array's ']' */
    int r = buf_append(out, body, close);
    if (!json_is_empty(body, msgs))
        r |= buf_append(out, ",", 1);
    r |= buf_append_str(out, "{\"role\":\"assistant\",\"content\":");
    r |= json_append_str(out, text, n);
    if (kind == PREFILL_PREFIX)
        r |= buf_append_str(out, ",\"prefix\":true");
    r |= buf_append(out, "}", 1);
    if (kind != PREFILL_CONTINUE_FINAL)
        return r | buf_append(out, body + close, len - close);
    size_t rclose = root.end - 1;   /* the object's '}' */
    r |= buf_append(out, body + close, rclose - close);
    r |= buf_append_str(out, ",\"continue_final_message\":true,\"add_generation_prompt\":false");
    r |= buf_append(out, body + rclose, len - rclose);
    return r < 0 ? -1 : 0;
}

int rewrite_include_usage(const char *body, size_t len, struct buf *out)
{
    struct json_val root, opts, inc;
    struct json_error err;
    if (json_parse(body, len, &root, &err) < 0 || root.type != JSON_OBJECT)
        return -1;
    static const char member[] = "\"stream_options\":{\"include_usage\":true}";
    struct span_edit e;
    if (!json_get(body, root, "stream_options", &opts)) {
        /* A new first member: "{" member ("," when others follow). */
        bool empty = json_is_empty(body, root);
        struct buf ins = BUF_INIT;
        buf_append_str(&ins, member);
        if (!empty)
            buf_append(&ins, ",", 1);
        e = (struct span_edit){ root.start + 1, root.start + 1, buf_head(&ins), buf_len(&ins) };
        int rc = buf_failed(&ins) ? -1 : rewrite_spans(body, len, &e, 1, out);
        buf_free(&ins);
        return rc;
    }
    if (opts.type != JSON_OBJECT) {
        static const char obj[] = "{\"include_usage\":true}";
        e = (struct span_edit){ opts.start, opts.end, obj, sizeof obj - 1 };
    } else if (json_get(body, opts, "include_usage", &inc)) {
        e = (struct span_edit){ inc.start, inc.end, "true", 4 };
    } else {
        /* Inserted first: with a comma when other members follow. */
        static const char inc_member[] = "\"include_usage\":true,";
        size_t len_ins = sizeof inc_member - 1 - (json_is_empty(body, opts) ? 1 : 0);
        e = (struct span_edit){ opts.start + 1, opts.start + 1, inc_member, len_ins };
    }
    return rewrite_spans(body, len, &e, 1, out);
}
