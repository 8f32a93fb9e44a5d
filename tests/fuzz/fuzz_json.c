/* libFuzzer target: json_parse and the readers, rewrite_request,
 * rewrite_model, json_append_str.  The whole input is the JSON text.
 *
 * On a valid text every value is visited with json_iter_* (an explicit
 * stack, no recursion) and checked:
 *   - the iterator sees every member / element: between them there is
 *     nothing but whitespace and the separators, so none is skipped;
 *   - each value re-validates on its own, with the same type;
 *   - json_get finds each key (first members of each object);
 *   - every string decodes to valid UTF-8, json_str_eq agrees with the
 *     decoding, a short output buffer gets a prefix cut on a character
 *     boundary, and json_append_str of the decoding round-trips;
 *   - rewrite_request and rewrite_model give a valid object with the
 *     expected members, byte for byte.
 * On any input: json_append_str of the raw bytes is a valid JSON string
 * (equal to the input when that is valid UTF-8), and the readers, pointed
 * at the raw bytes as if they were validated, never read outside them. */
#include "buf.h"
#include "fuzz_common.h"
#include "json.h"
#include "rewrite.h"

#define REPARSE_BUDGET_FACTOR 8     /* bytes re-validated per input byte */
#define GET_CHECKS_PER_OBJECT 64
#define LAX_MAX_DEPTH 48

static char *const exclude[] = { "user", "stream_options", "model", "", "temperature", "\xc3\xa9t\xc3\xa9",
                                 "a\"b", "logit_bias" };
#define N_EXCLUDE (sizeof exclude / sizeof exclude[0])
static const char model[] = "up/m\"1\\\x7f\x01\xe2\x82\xac";
static const char alias[] = "alias\n\xf0\x9f\x98\x80";

struct frame {
    struct json_val c;
    struct json_iter it;
    size_t prev_end;        /* end of the previous item, or c.start + 1 */
    size_t count;
};

static struct frame stack[JSON_MAX_DEPTH + 1];
static size_t reparse_budget;

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* s[a, b) is whitespace with exactly one `sep` in it (sep 0: none). */
static void check_gap(const char *s, size_t a, size_t b, char sep, const char *what)
{
    FUZZ_CHECK(a <= b, "%s: gap [%zu, %zu) runs backwards", what, a, b);
    size_t seps = 0;
    for (size_t i = a; i < b; i++) {
        if (sep && s[i] == sep)
            seps++;
        else
            FUZZ_CHECK(is_ws(s[i]), "%s: byte 0x%02x at %zu skipped by the iterator", what, (unsigned char)s[i], i);
    }
    FUZZ_CHECK(seps == (sep ? 1u : 0u), "%s: %zu separators in [%zu, %zu)", what, seps, a, b);
}

static enum json_type type_of(char c)
{
    switch (c) {
    case '{': return JSON_OBJECT;
    case '[': return JSON_ARRAY;
    case '"': return JSON_STRING;
    case 't': return JSON_TRUE;
    case 'f': return JSON_FALSE;
    case 'n': return JSON_NULL;
    default: return (c == '-' || (c >= '0' && c <= '9')) ? JSON_NUMBER : JSON_INVALID;
    }
}

/* A decoded string is cut to cap - 1 bytes on a character boundary:
 * out is a prefix of full, NUL-terminated, at most 3 bytes short. */
static void check_cut(const char *out, size_t cap, const char *full, size_t total)
{
    if (total < cap) {
        FUZZ_CHECK(memcmp(out, full, total) == 0 && out[total] == '\0', "short cap: uncut string differs");
        return;
    }
    size_t hi = cap - 1, lo = hi >= 3 ? hi - 3 : 0;
    for (size_t w = hi + 1; w-- > lo;) {
        bool boundary = w == total || ((unsigned char)full[w] & 0xc0) != 0x80;
        if (out[w] == '\0' && boundary && memcmp(out, full, w) == 0)
            return;
    }
    FUZZ_CHECK(0, "cap %zu: output is not a prefix cut on a character boundary (total %zu)", cap, total);
}

static void check_string(const char *s, struct json_val v)
{
    size_t raw = v.end - v.start;
    FUZZ_CHECK(raw >= 2 && s[v.start] == '"' && s[v.end - 1] == '"', "string span [%zu, %zu)", v.start, v.end);
    char *full = malloc(raw);
    if (!full)
        abort();
    size_t total = json_str_decode(s, v, full, raw);
    FUZZ_CHECK(total <= raw - 2, "decoded %zu bytes from %zu", total, raw - 2);
    FUZZ_CHECK(full[total] == '\0', "decoded string not terminated");
    FUZZ_CHECK(fuzz_utf8_valid((const uint8_t *)full, total), "decoded string at %zu is not valid UTF-8", v.start);
    FUZZ_CHECK(json_str_eq(s, v, full, total), "json_str_eq disagrees with json_str_decode at %zu", v.start);
    if (total > 0)
        FUZZ_CHECK(!json_str_eq(s, v, full, total - 1), "json_str_eq accepts a shorter string at %zu", v.start);

    /* A short buffer, and none at all. */
    size_t cap = 1 + v.start % 11;
    char small[12];
    memset(small, 0x55, sizeof small);
    FUZZ_CHECK(json_str_decode(s, v, small, cap) == total, "decoded length depends on cap");
    check_cut(small, cap, full, total);
    FUZZ_CHECK(json_str_decode(s, v, small, 0) == total, "decoded length with cap 0");

    /* Escaping the decoded text gives it back. */
    struct buf b = BUF_INIT;
    FUZZ_CHECK(json_append_str(&b, full, total) == 0, "json_append_str failed");
    struct json_val r;
    struct json_error e;
    FUZZ_CHECK(json_parse(buf_head(&b), buf_len(&b), &r, &e) == 0 && r.type == JSON_STRING && r.start == 0 &&
                   r.end == buf_len(&b),
               "re-escaped string does not parse: %s", e.msg);
    char *again = malloc(total + 1);
    if (!again)
        abort();
    FUZZ_CHECK(json_str_decode(buf_head(&b), r, again, total + 1) == total && memcmp(again, full, total) == 0,
               "escape/decode round trip changed the string at %zu", v.start);
    free(again);
    buf_free(&b);
    free(full);
}

/* One value seen by the iterator (or the root), inside [lo, hi). */
static void check_value(const char *s, size_t n, struct json_val v, size_t lo, size_t hi)
{
    FUZZ_CHECK(v.start >= lo && v.end <= hi && v.start < v.end, "value [%zu, %zu) outside [%zu, %zu)", v.start,
               v.end, lo, hi);
    FUZZ_CHECK(v.type == type_of(s[v.start]), "type %d for a value starting with 0x%02x", (int)v.type,
               (unsigned char)s[v.start]);
    size_t len = v.end - v.start;
    if (len <= reparse_budget) {
        reparse_budget -= len;
        char *copy = fuzz_dup(s + v.start, len);
        struct json_val r;
        struct json_error e;
        FUZZ_CHECK(json_parse(copy, len, &r, &e) == 0, "value [%zu, %zu) alone does not parse: %s", v.start, v.end,
                   e.msg);
        FUZZ_CHECK(r.type == v.type && r.start == 0 && r.end == len, "value alone: other type or span");
        free(copy);
    }
    if (v.type == JSON_STRING)
        check_string(s, v);
    if (v.type == JSON_NUMBER)
        for (size_t i = v.start; i < v.end; i++)
            FUZZ_CHECK(strchr("0123456789+-.eE", s[i]) && s[i], "number byte 0x%02x", (unsigned char)s[i]);
    (void)n;
}

/* Walk a validated text. */
static void walk(const char *s, size_t n, struct json_val root)
{
    size_t depth = 0;
    check_value(s, n, root, 0, n);
    if (root.type != JSON_OBJECT && root.type != JSON_ARRAY)
        return;
    stack[0] = (struct frame){ root, { 0 }, root.start + 1, 0 };
    json_iter_init(&stack[0].it, s, root);
    depth = 1;
    while (depth) {
        struct frame *f = &stack[depth - 1];
        bool obj = f->c.type == JSON_OBJECT;
        struct json_val k = { 0 }, v = { 0 };
        int got = obj ? json_iter_member(&f->it, &k, &v) : json_iter_elem(&f->it, &v);
        if (!got) {
            check_gap(s, f->prev_end, f->c.end - 1, 0, "before the closing bracket");
            FUZZ_CHECK(json_is_empty(s, f->c) == (f->count == 0), "json_is_empty wrong for [%zu, %zu)", f->c.start,
                       f->c.end);
            depth--;
            continue;
        }
        FUZZ_CHECK(got == 1, "iterator returned %d", got);
        size_t item = obj ? k.start : v.start;
        check_gap(s, f->prev_end, item, f->count ? ',' : 0, "between items");
        if (obj) {
            FUZZ_CHECK(k.type == JSON_STRING, "key of type %d", (int)k.type);
            FUZZ_CHECK(k.end <= v.start, "key after value");
            check_gap(s, k.end, v.start, ':', "between key and value");
            check_value(s, n, k, f->c.start + 1, f->c.end - 1);
            if (f->count < GET_CHECKS_PER_OBJECT) {
                char key[256];
                size_t kl = json_str_decode(s, k, key, sizeof key);
                struct json_val g;
                if (kl < sizeof key && strlen(key) == kl) {
                    FUZZ_CHECK(json_get(s, f->c, key, &g), "json_get misses key at %zu", k.start);
                    FUZZ_CHECK(g.start <= v.start, "json_get found a later member");
                }
            }
        }
        check_value(s, n, v, f->c.start + 1, f->c.end - 1);
        f->prev_end = v.end;
        f->count++;
        if (v.type == JSON_OBJECT || v.type == JSON_ARRAY) {
            FUZZ_CHECK(depth < JSON_MAX_DEPTH, "deeper than JSON_MAX_DEPTH");
            struct frame *c = &stack[depth++];
            *c = (struct frame){ v, { 0 }, v.start + 1, 0 };
            json_iter_init(&c->it, s, v);
        }
    }
}

/* The readers pointed at unvalidated bytes: answers may be nonsense, but
 * nothing outside s[0, n) may be read (s is an exact heap copy). */
static void walk_lax(const char *s, size_t n, struct json_val root)
{
    size_t depth = 1;
    stack[0] = (struct frame){ root, { 0 }, 0, 0 };
    json_iter_init(&stack[0].it, s, root);
    while (depth) {
        struct frame *f = &stack[depth - 1];
        struct json_val k = { 0 }, v = { 0 };
        int got = f->c.type == JSON_OBJECT ? json_iter_member(&f->it, &k, &v) : json_iter_elem(&f->it, &v);
        if (!got || f->count++ > 256) {
            (void)json_is_empty(s, f->c);
            (void)json_get(s, f->c, "model", NULL);
            depth--;
            continue;
        }
        FUZZ_CHECK(v.start < v.end && v.end <= n, "lax: value [%zu, %zu) of %zu", v.start, v.end, n);
        char tmp[8];
        if (k.type == JSON_STRING) {
            (void)json_str_decode(s, k, tmp, sizeof tmp);
            (void)json_str_eq(s, k, "model", 5);
        }
        if (v.type == JSON_STRING) {
            (void)json_str_decode(s, v, tmp, sizeof tmp);
            (void)json_str_eq(s, v, "a\\", 2);
        }
        if ((v.type == JSON_OBJECT || v.type == JSON_ARRAY) && depth < LAX_MAX_DEPTH) {
            struct frame *c = &stack[depth++];
            *c = (struct frame){ v, { 0 }, 0, 0 };
            json_iter_init(&c->it, s, v);
        }
    }
}

static bool dropped(const char *s, struct json_val k, struct json_val v)
{
    if (json_str_eq(s, k, "model", 5))
        return false;
    for (size_t i = 0; i < N_EXCLUDE; i++)
        if (json_str_eq(s, k, exclude[i], strlen(exclude[i])))
            return true;
    return v.type == JSON_NULL || (v.type == JSON_STRING && json_str_eq(s, v, "[undefined]", 11));
}

static void check_rewrite_request(const char *s, struct json_val root)
{
    struct buf out = BUF_INIT;
    FUZZ_CHECK(rewrite_request(s, root, model, exclude, N_EXCLUDE, &out) == 0, "rewrite_request failed");
    size_t on = buf_len(&out);
    char *o = fuzz_dup(buf_head(&out), on);
    buf_free(&out);
    struct json_val oroot;
    struct json_error e;
    FUZZ_CHECK(json_parse(o, on, &oroot, &e) == 0, "rewrite_request output does not parse: %s at %zu", e.msg,
               e.offset);
    FUZZ_CHECK(oroot.type == JSON_OBJECT, "rewrite_request output is not an object");
    struct json_iter in_it, out_it;
    struct json_val k, v, ok, ov;
    json_iter_init(&in_it, s, root);
    json_iter_init(&out_it, o, oroot);
    while (json_iter_member(&in_it, &k, &v) == 1) {
        if (dropped(s, k, v))
            continue;
        FUZZ_CHECK(json_iter_member(&out_it, &ok, &ov) == 1, "rewrite_request lost the member at %zu", k.start);
        FUZZ_CHECK(ok.end - ok.start == k.end - k.start && memcmp(o + ok.start, s + k.start, k.end - k.start) == 0,
                   "rewrite_request changed the key at %zu", k.start);
        if (json_str_eq(s, k, "model", 5)) {
            FUZZ_CHECK(ov.type == JSON_STRING && json_str_eq(o, ov, model, strlen(model)),
                       "rewrite_request: model not replaced");
        } else {
            FUZZ_CHECK(ov.end - ov.start == v.end - v.start &&
                           memcmp(o + ov.start, s + v.start, v.end - v.start) == 0,
                       "rewrite_request changed the value at %zu", v.start);
        }
    }
    FUZZ_CHECK(json_iter_member(&out_it, &ok, &ov) == 0, "rewrite_request output has an extra member");
    free(o);
}

static void check_rewrite_model(const char *s, size_t n, bool valid, struct json_val root)
{
    struct buf out = BUF_INIT;
    FUZZ_CHECK(buf_append(&out, "X", 1) == 0, "oom");
    struct json_val mv;
    bool want = valid && root.type == JSON_OBJECT && json_get(s, root, "model", &mv) && mv.type == JSON_STRING;
    int r = rewrite_model(s, n, alias, &out);
    FUZZ_CHECK(r == (want ? 1 : 0), "rewrite_model returned %d, expected %d", r, want);
    if (!want) {
        FUZZ_CHECK(buf_len(&out) == 1, "rewrite_model touched the output while returning 0");
        buf_free(&out);
        return;
    }
    const char *o = buf_head(&out) + 1;
    size_t on = buf_len(&out) - 1;
    struct json_val oroot, ov;
    struct json_error e;
    FUZZ_CHECK(json_parse(o, on, &oroot, &e) == 0 && oroot.type == JSON_OBJECT,
               "rewrite_model output does not parse: %s", e.msg);
    FUZZ_CHECK(json_get(o, oroot, "model", &ov) && ov.type == JSON_STRING &&
                   json_str_eq(o, ov, alias, strlen(alias)),
               "rewrite_model: model is not the alias");
    FUZZ_CHECK(ov.start == mv.start && memcmp(o, s, mv.start) == 0 &&
                   on - ov.end == n - mv.end && memcmp(o + ov.end, s + mv.end, n - mv.end) == 0,
               "rewrite_model changed bytes around the model");
    buf_free(&out);
}

static void check_append_raw(const uint8_t *in, size_t n)
{
    struct buf b = BUF_INIT;
    FUZZ_CHECK(json_append_str(&b, (const char *)in, n) == 0, "json_append_str failed");
    size_t bl = buf_len(&b);
    char *o = fuzz_dup(buf_head(&b), bl);
    buf_free(&b);
    struct json_val r;
    struct json_error e;
    FUZZ_CHECK(json_parse(o, bl, &r, &e) == 0 && r.type == JSON_STRING && r.start == 0 && r.end == bl,
               "json_append_str output is not one JSON string: %s at %zu", e.msg, e.offset);
    char *dec = malloc(bl);
    if (!dec)
        abort();
    size_t dl = json_str_decode(o, r, dec, bl);
    FUZZ_CHECK(dl < bl, "decoded longer than encoded");
    FUZZ_CHECK(fuzz_utf8_valid((const uint8_t *)dec, dl), "json_append_str kept invalid UTF-8");
    if (fuzz_utf8_valid(in, n))
        FUZZ_CHECK(dl == n && memcmp(dec, in, n) == 0, "json_append_str changed valid UTF-8 input");
    free(dec);
    free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
    char *s = fuzz_dup(in, n);
    struct json_val root;
    struct json_error err = { 0, NULL };
    int r = json_parse(s, n, &root, &err);
    FUZZ_CHECK(r == 0 || r == -1, "json_parse returned %d", r);
    if (r == 0) {
        FUZZ_CHECK(root.start < root.end && root.end <= n, "root span");
        for (size_t i = 0; i < root.start; i++)
            FUZZ_CHECK(is_ws(s[i]), "non-space before the root");
        for (size_t i = root.end; i < n; i++)
            FUZZ_CHECK(is_ws(s[i]), "non-space after the root");
        reparse_budget = REPARSE_BUDGET_FACTOR * n + 4096;
        walk(s, n, root);
        if (root.type == JSON_OBJECT)
            check_rewrite_request(s, root);
    } else {
        FUZZ_CHECK(err.msg != NULL && err.offset <= n, "error without message or offset %zu > %zu", err.offset, n);
        FUZZ_CHECK(root.type == JSON_INVALID, "root set on failure");
        /* Raw bytes taken for validated ones. */
        if (n >= 2) {
            walk_lax(s, n, (struct json_val){ JSON_OBJECT, 0, n });
            walk_lax(s, n, (struct json_val){ JSON_ARRAY, 0, n });
            char tmp[16];
            (void)json_str_decode(s, (struct json_val){ JSON_STRING, 0, n }, tmp, sizeof tmp);
            (void)json_str_eq(s, (struct json_val){ JSON_STRING, 0, n }, "ab", 2);
        }
    }
    check_rewrite_model(s, n, r == 0, root);
    check_append_raw(in, n);
    free(s);
    return 0;
}
