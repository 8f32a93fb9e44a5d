#include "event.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

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

static void error_message(const char *s, struct json_val err, char *msg, size_t cap)
{
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

/* The top-level members an event is judged by, read in one walk (a
 * stream's events are read on every byte's way to the client). */
enum top { T_ERROR, T_USAGE, T_TYPE, T_CHOICES, T_MODEL, T_MESSAGE, T_DELTA, T_RESPONSE, T__COUNT };
static const char *const top_names[T__COUNT] = { "error", "usage", "type", "choices", "model", "message", "delta",
                                                 "response" };

static bool has(const struct json_val *top, enum top t)
{
    return top[t].type != JSON_INVALID;
}

/* ---------------- OpenAI ---------------- */

/* The content kinds of one delta (or message) object: the keys other
 * than "role" with a non-empty value. */
static unsigned delta_content(const char *s, struct json_val d, struct json_val *text, bool *role)
{
    unsigned kinds = 0;
    struct json_iter it;
    struct json_val key, val;
    json_iter_init(&it, s, d);
    while (json_iter_member(&it, &key, &val) == 1) {
        if (json_str_eq(s, key, "role", 4)) {
            *role = true;
            continue;
        }
        if (!value_nonempty(s, val))
            continue;
        if (json_str_eq(s, key, "content", 7) && val.type == JSON_STRING) {
            kinds |= EVC_TEXT;
            *text = val;
        } else if (json_str_eq(s, key, "reasoning_content", 17) || json_str_eq(s, key, "reasoning", 9)) {
            kinds |= EVC_REASONING;
        } else {
            kinds |= EVC_OTHER;
        }
    }
    return kinds;
}

static void read_choice(const char *s, struct json_val ch, struct ev_info *ev, bool *role)
{
    enum { C_INDEX, C_FINISH, C_TEXT, C_DELTA, C_MESSAGE, C__COUNT };
    static const char *const names[C__COUNT] = { "index", "finish_reason", "text", "delta", "message" };
    struct json_val c[C__COUNT];
    if (ch.type != JSON_OBJECT)
        return;
    json_members(s, ch, names, C__COUNT, c);
    struct json_val v = c[C_INDEX];
    if (v.type == JSON_NUMBER && !(v.end - v.start == 1 && s[v.start] == '0'))
        ev->other_choice = true;
    if (c[C_FINISH].type != JSON_INVALID && c[C_FINISH].type != JSON_NULL)
        ev->finish = true;
    v = c[C_TEXT];
    if (v.type != JSON_INVALID && value_nonempty(s, v)) {
        ev->content |= v.type == JSON_STRING ? EVC_TEXT : EVC_OTHER;
        if (v.type == JSON_STRING)
            ev->text = v;
    }
    struct json_val d = c[C_DELTA].type != JSON_INVALID ? c[C_DELTA] : c[C_MESSAGE];
    if (d.type == JSON_OBJECT)
        ev->content |= delta_content(s, d, &ev->text, role);
}

/* The Responses API names its events in "type". */
static bool read_typed(const char *s, const struct json_val *top, struct ev_info *ev)
{
    struct json_val v = top[T_TYPE], r = top[T_RESPONSE], e;
    if (v.type != JSON_STRING)
        return false;
    if (json_str_eq(s, v, "error", 5) || json_str_eq(s, v, "response.failed", 15)) {
        ev->kind = EVK_ERROR;
        if (r.type == JSON_OBJECT && json_get(s, r, "error", &e))
            error_message(s, e, ev->msg, sizeof ev->msg);
        else if (has(top, T_MESSAGE))
            error_message(s, top[T_MESSAGE], ev->msg, sizeof ev->msg);
        else
            snprintf(ev->msg, sizeof ev->msg, "upstream stream error");
        return true;
    }
    if (json_str_eq(s, v, "response.completed", 18)) {
        ev->finish = true;
        return true;
    }
    char type[64];
    size_t tl = json_str_decode(s, v, type, sizeof type);
    if (tl < sizeof type && tl > 6 && strcmp(type + tl - 6, ".delta") == 0) {
        ev->kind = EVK_CONTENT;
        bool text = strcmp(type, "response.output_text.delta") == 0;
        ev->content = text ? EVC_TEXT : strstr(type, "reasoning") ? EVC_REASONING : EVC_OTHER;
        if (text && top[T_DELTA].type == JSON_STRING)
            ev->text = top[T_DELTA];
    }
    return true;
}

static void read_openai(const char *s, const struct json_val *top, struct ev_info *ev)
{
    struct json_val v = top[T_CHOICES];
    if (top[T_USAGE].type == JSON_OBJECT)
        ev->usage = top[T_USAGE];
    if (read_typed(s, top, ev))
        return;
    if (v.type != JSON_ARRAY)
        return;
    if (json_is_empty(s, v)) {
        ev->usage_only = ev->usage.type == JSON_OBJECT;
        return;
    }
    bool role = false;
    struct json_iter it;
    struct json_val ch;
    json_iter_init(&it, s, v);
    while (json_iter_elem(&it, &ch) == 1)
        read_choice(s, ch, ev, &role);
    if (ev->content)
        ev->kind = EVK_CONTENT;
    else
        ev->role_only = role && !ev->finish;
}

/* ---------------- Anthropic ---------------- */

static void read_anthropic_delta(const char *s, struct json_val d, struct ev_info *ev)
{
    struct json_val t, x;
    ev->kind = EVK_CONTENT;
    ev->content = EVC_OTHER;
    if (d.type != JSON_OBJECT || !json_get(s, d, "type", &t))
        return;
    if (json_str_eq(s, t, "text_delta", 10)) {
        ev->content = EVC_TEXT;
        if (json_get(s, d, "text", &x) && x.type == JSON_STRING)
            ev->text = x;
    } else if (json_str_eq(s, t, "thinking_delta", 14) || json_str_eq(s, t, "signature_delta", 15)) {
        ev->content = EVC_REASONING;
    }
}

static void read_anthropic(const char *s, const struct json_val *top, struct ev_info *ev)
{
    struct json_val t = top[T_TYPE], v, m;
    if (t.type != JSON_STRING)
        return;
    if (json_str_eq(s, t, "content_block_delta", 19)) {
        read_anthropic_delta(s, top[T_DELTA], ev);
    } else if (json_str_eq(s, t, "message_start", 13)) {
        ev->message_start = true;
        m = top[T_MESSAGE];
        if (m.type == JSON_OBJECT && json_get(s, m, "usage", &v) && v.type == JSON_OBJECT)
            ev->usage = v;
    } else if (json_str_eq(s, t, "message_delta", 13)) {
        m = top[T_DELTA];
        if (m.type == JSON_OBJECT && json_get(s, m, "stop_reason", &v) && v.type != JSON_NULL)
            ev->finish = true;
        if (top[T_USAGE].type == JSON_OBJECT)
            ev->usage = top[T_USAGE];
    } else if (json_str_eq(s, t, "content_block_start", 19)) {
        ev->block_start = true;
    } else if (json_str_eq(s, t, "message_stop", 12)) {
        ev->kind = EVK_DONE;
    } else if (json_str_eq(s, t, "error", 5)) {
        ev->kind = EVK_ERROR;
        snprintf(ev->msg, sizeof ev->msg, "upstream stream error");
        if (has(top, T_ERROR))
            error_message(s, top[T_ERROR], ev->msg, sizeof ev->msg);
    }
}

void event_read(enum dialect d, const char *payload, size_t n, struct ev_info *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->kind = EVK_NEUTRAL;
    while (n && (payload[n - 1] == ' ' || payload[n - 1] == '\t'))
        n--;
    if (d == DIALECT_OPENAI && mem_eq(payload, n, "[DONE]")) {
        ev->kind = EVK_DONE;
        return;
    }
    struct json_error jerr;
    if (json_parse(payload, n, &ev->root, &jerr) < 0 || ev->root.type != JSON_OBJECT) {
        ev->root.type = JSON_INVALID;
        ev->kind = EVK_CONTENT;   /* not ours to judge: let it through */
        ev->content = EVC_OTHER;
        return;
    }
    struct json_val top[T__COUNT];
    json_members(payload, ev->root, top_names, T__COUNT, top);
    ev->model = top[T_MODEL];
    if (d == DIALECT_OPENAI && has(top, T_ERROR) && top[T_ERROR].type != JSON_NULL) {
        ev->kind = EVK_ERROR;
        error_message(payload, top[T_ERROR], ev->msg, sizeof ev->msg);
        return;
    }
    if (d == DIALECT_OPENAI)
        read_openai(payload, top, ev);
    else
        read_anthropic(payload, top, ev);
}

/* ---------------- usage ---------------- */

static void take_count(const char *s, struct json_val obj, const char *key, uint64_t *out)
{
    struct json_val v;
    long long x;
    if (json_get(s, obj, key, &v) && v.type == JSON_NUMBER &&
        parse_int(s + v.start, v.end - v.start, 0, (1ll << 62), &x) == 0)
        *out = (uint64_t)x;
}

void event_usage(enum dialect d, const char *s, struct json_val usage, struct tokens *t)
{
    if (usage.type != JSON_OBJECT)
        return;
    if (d == DIALECT_OPENAI) {
        struct json_val det;
        take_count(s, usage, "prompt_tokens", &t->prompt);
        take_count(s, usage, "completion_tokens", &t->completion);
        take_count(s, usage, "total_tokens", &t->total);
        if (json_get(s, usage, "prompt_tokens_details", &det) && det.type == JSON_OBJECT)
            take_count(s, det, "cached_tokens", &t->cached);
        if (!t->total)
            t->total = t->prompt + t->completion;
        return;
    }
    uint64_t in = 0, created = 0, read = 0;
    struct json_val v;
    bool has_in = json_get(s, usage, "input_tokens", &v);
    take_count(s, usage, "input_tokens", &in);
    take_count(s, usage, "cache_creation_input_tokens", &created);
    take_count(s, usage, "cache_read_input_tokens", &read);
    if (has_in) {
        t->prompt = in + created + read;
        t->cached = read;
    }
    take_count(s, usage, "output_tokens", &t->completion);
    t->total = t->prompt + t->completion;
}

/* ---------------- whole answers ---------------- */

bool answer_has_error(const char *s, size_t n, char *msg, size_t cap)
{
    struct json_val root, err;
    struct json_error jerr;
    /* A plain search first: a good answer rarely names "error" at all, so
     * it is not parsed a second time. */
    if (!mem_find(s, n, "\"error\"", 7) || json_parse(s, n, &root, &jerr) < 0 || !error_member(s, root, &err))
        return false;
    error_message(s, err, msg, cap);
    return true;
}

void answer_error_message(const char *s, size_t n, char *msg, size_t cap)
{
    struct json_val root, v, m;
    struct json_error err;
    msg[0] = '\0';
    if (n && json_parse(s, n, &root, &err) == 0 && root.type == JSON_OBJECT) {
        if (json_get(s, root, "error", &v)) {
            if (v.type == JSON_STRING)
                json_str_decode(s, v, msg, cap);
            else if (v.type == JSON_OBJECT && json_get(s, v, "message", &m) && m.type == JSON_STRING)
                json_str_decode(s, m, msg, cap);
        } else if (json_get(s, root, "message", &m) && m.type == JSON_STRING) {
            json_str_decode(s, m, msg, cap);
        }
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++)
        msg[k++] = (unsigned char)s[i] < 0x20 ? ' ' : s[i];
    msg[k] = '\0';
}
