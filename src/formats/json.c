/* json: see json.h.
 *
 * json_parse is one forward pass over the bytes with an explicit stack of
 * one bit per open container (set: object, clear: array).  It never
 * recurses and never allocates, so a hostile body costs at most
 * JSON_MAX_DEPTH bits of state and one look at each byte.
 *
 * The readers (json_iter_*, json_get, json_str_*) work on spans that
 * json_parse accepted, so they trust the grammar, but every one of them
 * bounds its reads by the span it was given: a wrong span gives a wrong
 * answer or nothing, never a read outside it. */
#include "json.h"

#include <stdint.h>
#include <string.h>

/* The nesting stack: one bit per level, in 64-bit words. */
#define STACK_WORD_BITS 64
#define STACK_WORDS (JSON_MAX_DEPTH / STACK_WORD_BITS)
_Static_assert(JSON_MAX_DEPTH % STACK_WORD_BITS == 0, "JSON_MAX_DEPTH must be a multiple of 64");

#define UTF8_MAX_LEN 4          /* bytes of the longest UTF-8 character */
#define HEX4_LEN 4              /* the XXXX of \uXXXX */
#define U_ESCAPE_LEN 6          /* \uXXXX */
#define ASCII_END 0x80          /* bytes from here on start or continue UTF-8 sequences */
#define CONTROL_END 0x20        /* bytes below are control characters */
#define ASCII_DEL 0x7f          /* printable, but escaped on output for safety */

#define SURROGATE_HIGH_MIN 0xD800
#define SURROGATE_HIGH_MAX 0xDBFF
#define SURROGATE_LOW_MIN 0xDC00
#define SURROGATE_LOW_MAX 0xDFFF
#define SUPPLEMENTARY_BASE 0x10000
#define REPLACEMENT_CHAR 0xFFFD
#define REPLACEMENT_UTF8 "\xEF\xBF\xBD"
#define REPLACEMENT_UTF8_LEN 3

/* "No end found" from the skip functions of the readers. */
#define NO_END SIZE_MAX

/* ---------------- shared byte helpers ---------------- */

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static size_t skip_ws(const unsigned char *s, size_t i, size_t lim)
{
    while (i < lim && is_ws(s[i]))
        i++;
    return i;
}

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

enum hex_result { HEX_OK, HEX_BAD, HEX_SHORT };

/* The four hex digits at s[i, i + 4), reading nothing at or past lim.
 * HEX_SHORT when lim comes first, so the parser can tell a cut text
 * ("unterminated") from a wrong one. */
static enum hex_result read_hex4(const unsigned char *s, size_t i, size_t lim, uint32_t *cp)
{
    uint32_t v = 0;
    for (size_t k = 0; k < HEX4_LEN; k++) {
        if (i + k >= lim)
            return HEX_SHORT;
        int d = hex_val(s[i + k]);
        if (d < 0)
            return HEX_BAD;
        v = v << 4 | (uint32_t)d;
    }
    *cp = v;
    return HEX_OK;
}

static bool is_high_surrogate(uint32_t cp)
{
    return cp >= SURROGATE_HIGH_MIN && cp <= SURROGATE_HIGH_MAX;
}

static bool is_low_surrogate(uint32_t cp)
{
    return cp >= SURROGATE_LOW_MIN && cp <= SURROGATE_LOW_MAX;
}

/* Length of the well-formed UTF-8 character at p[0, avail) (avail >= 1),
 * or 0 when ill-formed.  The second byte's range is what rules out
 * overlongs (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code
 * points past U+10FFFF (F4 90..BF); C0, C1 and F5..FF never start a
 * character (Unicode, table 3-7). */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < ASCII_END)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0) {
        len = 2;
    } else if (c < 0xF0) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c < 0xF5) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (avail < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if ((p[k] & 0xC0) != 0x80)
            return 0;
    return len;
}

/* cp (at most U+10FFFF, not a surrogate) as UTF-8 into u; its length. */
static size_t utf8_encode(uint32_t cp, unsigned char u[UTF8_MAX_LEN])
{
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | cp >> 6);
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < SUPPLEMENTARY_BASE) {
        u[0] = (unsigned char)(0xE0 | cp >> 12);
        u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    u[0] = (unsigned char)(0xF0 | cp >> 18);
    u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    u[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static enum json_type type_at(unsigned char c)
{
    switch (c) {
    case '{':
        return JSON_OBJECT;
    case '[':
        return JSON_ARRAY;
    case '"':
        return JSON_STRING;
    case 't':
        return JSON_TRUE;
    case 'f':
        return JSON_FALSE;
    case 'n':
        return JSON_NULL;
    default:
        return c == '-' || is_digit(c) ? JSON_NUMBER : JSON_INVALID;
    }
}

/* ---------------- the validating parser ---------------- */

struct parser {
    const unsigned char *s;
    size_t n;
    size_t pos;
    size_t depth;                     /* open containers */
    uint64_t stack[STACK_WORDS];      /* bit `level`: 1 object, 0 array */
    size_t err_off;
    const char *err_msg;
};

static int fail(struct parser *p, size_t off, const char *msg)
{
    p->err_off = off;
    p->err_msg = msg;
    return -1;
}

static int push(struct parser *p, bool is_object)
{
    if (p->depth == JSON_MAX_DEPTH)
        return fail(p, p->pos, "nesting too deep");
    uint64_t bit = (uint64_t)1 << (p->depth % STACK_WORD_BITS);
    if (is_object)
        p->stack[p->depth / STACK_WORD_BITS] |= bit;
    else
        p->stack[p->depth / STACK_WORD_BITS] &= ~bit;
    p->depth++;
    return 0;
}

static bool top_is_object(const struct parser *p)
{
    size_t level = p->depth - 1;
    return (p->stack[level / STACK_WORD_BITS] >> (level % STACK_WORD_BITS)) & 1;
}

/* After a \u high surrogate ending at j: the \u low surrogate that must
 * follow.  Running out of text is "unterminated"; anything else there is
 * a broken pair, reported at the high surrogate. */
static int parse_low_surrogate(struct parser *p, size_t str_start, size_t high_at, size_t *jp)
{
    const unsigned char *s = p->s;
    size_t n = p->n, j = *jp;
    static const char bad_pair[] = "invalid \\u surrogate pair";
    if (j >= n)
        return fail(p, str_start, "unterminated string");
    if (s[j] != '\\')
        return fail(p, high_at, bad_pair);
    if (j + 1 >= n)
        return fail(p, str_start, "unterminated string");
    if (s[j + 1] != 'u')
        return fail(p, high_at, bad_pair);
    uint32_t lo;
    enum hex_result r = read_hex4(s, j + 2, n, &lo);
    if (r == HEX_SHORT)
        return fail(p, str_start, "unterminated string");
    if (r == HEX_BAD || !is_low_surrogate(lo))
        return fail(p, high_at, bad_pair);
    *jp = j + U_ESCAPE_LEN;
    return 0;
}

/* The escape at s[*ip] == '\\' of the string opened at str_start. */
static int parse_escape(struct parser *p, size_t str_start, size_t *ip)
{
    const unsigned char *s = p->s;
    size_t n = p->n, i = *ip;
    if (i + 1 >= n)
        return fail(p, str_start, "unterminated string");
    switch (s[i + 1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        *ip = i + 2;
        return 0;
    case 'u':
        break;
    default:
        return fail(p, i, "invalid escape in string");
    }
    uint32_t cp;
    enum hex_result r = read_hex4(s, i + 2, n, &cp);
    if (r == HEX_SHORT)
        return fail(p, str_start, "unterminated string");
    if (r == HEX_BAD)
        return fail(p, i, "invalid escape in string");
    /* A lone surrogate has no code point: it cannot become UTF-8. */
    if (is_low_surrogate(cp))
        return fail(p, i, "invalid \\u surrogate pair");
    size_t j = i + U_ESCAPE_LEN;
    if (is_high_surrogate(cp) && parse_low_surrogate(p, str_start, i, &j) < 0)
        return -1;
    *ip = j;
    return 0;
}

/* The string at p->pos == '"'. */
static int parse_string(struct parser *p)
{
    const unsigned char *s = p->s;
    size_t n = p->n, start = p->pos, i = start + 1;
    for (;;) {
        /* The hot loop of the whole parser: request bodies are mostly
         * plain ASCII text inside strings. */
        while (i < n && s[i] >= CONTROL_END && s[i] < ASCII_END && s[i] != '"' && s[i] != '\\')
            i++;
        if (i >= n)
            return fail(p, start, "unterminated string");
        unsigned char c = s[i];
        if (c == '"') {
            p->pos = i + 1;
            return 0;
        }
        if (c == '\\') {
            if (parse_escape(p, start, &i) < 0)
                return -1;
            continue;
        }
        if (c < CONTROL_END)
            return fail(p, i, "control character in string");
        size_t len = utf8_len(s + i, n - i);
        if (len == 0)
            return fail(p, i, "invalid UTF-8 in string");
        i += len;
    }
}

static size_t skip_digits(const unsigned char *s, size_t i, size_t n)
{
    while (i < n && is_digit(s[i]))
        i++;
    return i;
}

/* A byte that may not follow a number: it would make it a longer, wrong
 * one ("01", "1.5.2", "1e5e5", "0x10", "1true").  Saying "invalid number"
 * there is clearer than complaining about what follows. */
static bool continues_number(unsigned char c)
{
    return is_digit(c) || c == '.' || c == '+' || c == '-' || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z');
}

/* -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)? at p->pos. */
static int parse_number(struct parser *p)
{
    const unsigned char *s = p->s;
    size_t n = p->n, i = p->pos;
    if (s[i] == '-')
        i++;
    if (i >= n || !is_digit(s[i]))
        return fail(p, i, "invalid number");
    if (s[i] == '0')
        i++;           /* a zero stands alone: no leading zeros */
    else
        i = skip_digits(s, i, n);
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i]))
            return fail(p, i, "invalid number");
        i = skip_digits(s, i, n);
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !is_digit(s[i]))
            return fail(p, i, "invalid number");
        i = skip_digits(s, i, n);
    }
    if (i < n && continues_number(s[i]))
        return fail(p, i, "invalid number");
    p->pos = i;
    return 0;
}

static int parse_literal(struct parser *p, const char *lit, size_t len)
{
    for (size_t k = 0; k < len; k++) {
        size_t i = p->pos + k;
        if (i >= p->n)
            return fail(p, p->n, "unexpected end of input");
        if (p->s[i] != (unsigned char)lit[k])
            return fail(p, i, "invalid literal");
    }
    p->pos += len;
    return 0;
}

/* An object member's key and its ':' (whitespace before each). */
static int parse_key(struct parser *p)
{
    p->pos = skip_ws(p->s, p->pos, p->n);
    if (p->pos >= p->n)
        return fail(p, p->n, "unexpected end of input");
    if (p->s[p->pos] != '"')
        return fail(p, p->pos, "expected a string key");
    if (parse_string(p) < 0)
        return -1;
    p->pos = skip_ws(p->s, p->pos, p->n);
    if (p->pos >= p->n)
        return fail(p, p->n, "unexpected end of input");
    if (p->s[p->pos] != ':')
        return fail(p, p->pos, "expected ':'");
    p->pos++;
    return 0;
}

/* The '{' or '[' at p->pos.  An empty container is closed at once;
 * otherwise *opened is set and what comes next is a value (after the
 * first key, for an object). */
static int open_container(struct parser *p, bool is_object, bool *opened)
{
    if (push(p, is_object) < 0)
        return -1;
    p->pos = skip_ws(p->s, p->pos + 1, p->n);
    if (p->pos < p->n && p->s[p->pos] == (is_object ? '}' : ']')) {
        p->pos++;
        p->depth--;
        return 0;
    }
    *opened = true;
    return is_object ? parse_key(p) : 0;
}

/* The value at p->pos: a scalar whole, or the opening of a container. */
static int begin_value(struct parser *p, bool *opened)
{
    *opened = false;
    if (p->pos >= p->n)
        return fail(p, p->n, "unexpected end of input");
    switch (type_at(p->s[p->pos])) {
    case JSON_OBJECT:
        return open_container(p, true, opened);
    case JSON_ARRAY:
        return open_container(p, false, opened);
    case JSON_STRING:
        return parse_string(p);
    case JSON_NUMBER:
        return parse_number(p);
    case JSON_TRUE:
        return parse_literal(p, "true", 4);
    case JSON_FALSE:
        return parse_literal(p, "false", 5);
    case JSON_NULL:
        return parse_literal(p, "null", 4);
    case JSON_INVALID:
        break;
    }
    return fail(p, p->pos, "unexpected character");
}

/* After a value inside a container: 1 when a ',' (and for an object the
 * next key) was read, so a value comes next; 0 when the container closed. */
static int after_value(struct parser *p)
{
    bool is_object = top_is_object(p);
    p->pos = skip_ws(p->s, p->pos, p->n);
    if (p->pos >= p->n)
        return fail(p, p->n, "unexpected end of input");
    unsigned char c = p->s[p->pos];
    if (c == ',') {
        p->pos++;
        if (is_object && parse_key(p) < 0)
            return -1;
        return 1;
    }
    if (c == (is_object ? '}' : ']')) {
        p->pos++;
        p->depth--;
        return 0;
    }
    return fail(p, p->pos, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
}

/* One value from p->pos (no leading whitespace) to its end.  A loop, not
 * recursion: containers live on the bit stack. */
static int parse_value(struct parser *p)
{
    for (;;) {
        bool opened;
        if (begin_value(p, &opened) < 0)
            return -1;
        /* Close containers until one wants another value. */
        while (!opened) {
            if (p->depth == 0)
                return 0;
            int r = after_value(p);
            if (r < 0)
                return -1;
            opened = r == 1;
        }
        p->pos = skip_ws(p->s, p->pos, p->n);
    }
}

int json_parse(const char *s, size_t n, struct json_val *root, struct json_error *err)
{
    struct parser p = { .s = (const unsigned char *)s, .n = n };
    size_t start = skip_ws(p.s, 0, n);
    int r;
    if (start == n) {
        r = fail(&p, 0, "empty input");
    } else {
        p.pos = start;
        r = parse_value(&p);
    }
    size_t end = p.pos;
    if (r == 0) {
        size_t after = skip_ws(p.s, end, n);
        if (after != n)
            r = fail(&p, after, "trailing characters after the value");
    }
    if (r < 0) {
        if (err) {
            err->offset = p.err_off;
            err->msg = p.err_msg;
        }
        if (root)
            *root = (struct json_val){ JSON_INVALID, 0, 0 };
        return -1;
    }
    if (root)
        *root = (struct json_val){ type_at(p.s[start]), start, end };
    return 0;
}

/* ---------------- readers of validated text ----------------
 * Each takes a limit and reads only below it. */

/* The end of the string at s[i] == '"', or NO_END. */
static size_t skip_string(const unsigned char *s, size_t i, size_t lim)
{
    for (i++; i < lim; i++) {
        if (s[i] == '"')
            return i + 1;
        if (s[i] == '\\')
            i++;      /* the escaped byte cannot close the string */
    }
    return NO_END;
}

/* The end of the container at s[i]: count brackets, skipping strings
 * (they may hold brackets).  Iterative so depth costs nothing. */
static size_t skip_container(const unsigned char *s, size_t i, size_t lim)
{
    size_t depth = 0;
    while (i < lim) {
        unsigned char c = s[i];
        if (c == '"') {
            i = skip_string(s, i, lim);
            if (i == NO_END)
                return NO_END;
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0)
                return i + 1;
        }
        i++;
    }
    return NO_END;
}

static size_t skip_number(const unsigned char *s, size_t i, size_t lim)
{
    while (i < lim && (is_digit(s[i]) || s[i] == '-' || s[i] == '+' || s[i] == '.' || s[i] == 'e' ||
                       s[i] == 'E'))
        i++;
    return i;
}

static size_t skip_literal(const unsigned char *s, size_t i, size_t lim, const char *lit, size_t len)
{
    if (lim - i < len || memcmp(s + i, lit, len) != 0)
        return NO_END;
    return i + len;
}

/* The value starting at s[i] (i < lim), which must end by lim. */
static bool scan_value(const unsigned char *s, size_t i, size_t lim, struct json_val *v)
{
    enum json_type t = type_at(s[i]);
    size_t end = NO_END;
    switch (t) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        end = skip_container(s, i, lim);
        break;
    case JSON_STRING:
        end = skip_string(s, i, lim);
        break;
    case JSON_NUMBER:
        end = skip_number(s, i, lim);
        break;
    case JSON_TRUE:
        end = skip_literal(s, i, lim, "true", 4);
        break;
    case JSON_FALSE:
        end = skip_literal(s, i, lim, "false", 5);
        break;
    case JSON_NULL:
        end = skip_literal(s, i, lim, "null", 4);
        break;
    case JSON_INVALID:
        break;
    }
    if (end == NO_END)
        return false;
    *v = (struct json_val){ t, i, end };
    return true;
}

/* A container span whose brackets match its type, so the iterator can
 * work on s[start + 1, end - 1). */
static bool container_ok(const char *s, struct json_val c)
{
    char open, close;
    if (c.type == JSON_OBJECT) {
        open = '{';
        close = '}';
    } else if (c.type == JSON_ARRAY) {
        open = '[';
        close = ']';
    } else {
        return false;
    }
    return c.end > c.start && c.end - c.start >= 2 && s[c.start] == open && s[c.end - 1] == close;
}

void json_iter_init(struct json_iter *it, const char *s, struct json_val container)
{
    it->s = s;
    it->first = true;
    it->pos = 0;
    it->end = 0;            /* pos == end: nothing to iterate */
    if (container_ok(s, container)) {
        it->pos = container.start + 1;
        it->end = container.end - 1;
    }
}

static int iter_stop(struct json_iter *it)
{
    it->first = false;
    it->pos = it->end;
    return 0;
}

/* Past the ',' before the next item (none before the first one): the
 * offset of the item, or NO_END at the end of the container. */
static size_t iter_next(struct json_iter *it)
{
    const unsigned char *s = (const unsigned char *)it->s;
    size_t i = skip_ws(s, it->pos, it->end);
    if (!it->first) {
        if (i >= it->end || s[i] != ',')
            return NO_END;
        i = skip_ws(s, i + 1, it->end);
    }
    it->first = false;
    return i < it->end ? i : NO_END;
}

int json_iter_member(struct json_iter *it, struct json_val *key, struct json_val *val)
{
    const unsigned char *s = (const unsigned char *)it->s;
    struct json_val k, v;
    size_t i = iter_next(it);
    if (i == NO_END || s[i] != '"' || !scan_value(s, i, it->end, &k))
        return iter_stop(it);
    i = skip_ws(s, k.end, it->end);
    if (i >= it->end || s[i] != ':')
        return iter_stop(it);
    i = skip_ws(s, i + 1, it->end);
    if (i >= it->end || !scan_value(s, i, it->end, &v))
        return iter_stop(it);
    it->pos = v.end;
    if (key)
        *key = k;
    if (val)
        *val = v;
    return 1;
}

int json_iter_elem(struct json_iter *it, struct json_val *val)
{
    struct json_val v;
    size_t i = iter_next(it);
    if (i == NO_END || !scan_value((const unsigned char *)it->s, i, it->end, &v))
        return iter_stop(it);
    it->pos = v.end;
    if (val)
        *val = v;
    return 1;
}

bool json_get(const char *s, struct json_val obj, const char *key, struct json_val *out)
{
    struct json_iter it;
    struct json_val k, v;
    size_t len = strlen(key);
    if (obj.type != JSON_OBJECT)
        return false;
    json_iter_init(&it, s, obj);
    while (json_iter_member(&it, &k, &v) == 1) {
        if (json_str_eq(s, k, key, len)) {
            if (out)
                *out = v;
            return true;
        }
    }
    return false;
}

void json_members(const char *s, struct json_val obj, const char *const *names, size_t n, struct json_val *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (struct json_val){ JSON_INVALID, 0, 0 };
    if (obj.type != JSON_OBJECT)
        return;
    struct json_iter it;
    struct json_val k, v;
    size_t found = 0;
    json_iter_init(&it, s, obj);
    while (found < n && json_iter_member(&it, &k, &v) == 1)
        for (size_t i = 0; i < n; i++)
            if (out[i].type == JSON_INVALID && json_str_eq(s, k, names[i], strlen(names[i]))) {
                out[i] = v;
                found++;
                break;
            }
}

/* ---------------- string content ---------------- */

/* The content s[*ip, *limp) of a string span, false if the span is not
 * a quoted string. */
static bool str_content(const char *s, struct json_val str, size_t *ip, size_t *limp)
{
    if (str.type != JSON_STRING || str.end <= str.start || str.end - str.start < 2 ||
        s[str.start] != '"' || s[str.end - 1] != '"')
        return false;
    *ip = str.start + 1;
    *limp = str.end - 1;
    return true;
}

/* The byte a one-letter escape stands for, 0 for none. */
static unsigned char unescape_simple(unsigned char e)
{
    switch (e) {
    case '"':
    case '\\':
    case '/':
        return e;
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    default:
        return 0;
    }
}

/* The \u escape at s[i] (a whole \uXXXX before lim): its code point, a
 * following low surrogate combined in; *ip past what was used.  Lone
 * surrogates, which json_parse rejects, become U+FFFD. */
static uint32_t decode_u_escape(const unsigned char *s, size_t *ip, size_t lim, uint32_t cp)
{
    size_t i = *ip;
    uint32_t lo;
    if (is_high_surrogate(cp)) {
        if (i + 1 < lim && s[i] == '\\' && s[i + 1] == 'u' && read_hex4(s, i + 2, lim, &lo) == HEX_OK &&
            is_low_surrogate(lo)) {
            *ip = i + U_ESCAPE_LEN;
            return SUPPLEMENTARY_BASE + ((cp - SURROGATE_HIGH_MIN) << 10) + (lo - SURROGATE_LOW_MIN);
        }
        return REPLACEMENT_CHAR;
    }
    return is_low_surrogate(cp) ? REPLACEMENT_CHAR : cp;
}

/* The next decoded character of string content s[*ip, lim) (*ip < lim)
 * as UTF-8 into u; its length (1 to 4), *ip moved past it.  A raw
 * character is taken whole so a cut can fall between characters.  Bytes
 * json_parse would reject are passed through one by one. */
static size_t decode_char(const unsigned char *s, size_t *ip, size_t lim, unsigned char u[UTF8_MAX_LEN])
{
    size_t i = *ip;
    if (s[i] != '\\' || i + 1 >= lim) {
        size_t len = utf8_len(s + i, lim - i);
        if (len == 0)
            len = 1;
        memcpy(u, s + i, len);
        *ip = i + len;
        return len;
    }
    unsigned char e = s[i + 1];
    uint32_t cp;
    if (e != 'u') {
        unsigned char c = unescape_simple(e);
        u[0] = c ? c : e;
        *ip = i + 2;
        return 1;
    }
    if (read_hex4(s, i + 2, lim, &cp) != HEX_OK) {
        u[0] = '\\';
        *ip = i + 1;
        return 1;
    }
    *ip = i + U_ESCAPE_LEN;
    return utf8_encode(decode_u_escape(s, ip, lim, cp), u);
}

bool json_str_eq(const char *s, struct json_val str, const char *lit, size_t len)
{
    const unsigned char *us = (const unsigned char *)s;
    size_t i, lim, k = 0;
    if (!str_content(s, str, &i, &lim))
        return false;
    if (len == 0)
        return i == lim;
    /* Most keys and values have no escape: compare the bytes directly. */
    if (!memchr(s + i, '\\', lim - i))
        return lim - i == len && memcmp(s + i, lit, len) == 0;
    while (i < lim) {
        unsigned char u[UTF8_MAX_LEN];
        size_t ul = decode_char(us, &i, lim, u);
        if (ul > len - k || memcmp(u, lit + k, ul) != 0)
            return false;
        k += ul;
    }
    return k == len;
}

size_t json_str_decode(const char *s, struct json_val str, char *out, size_t cap)
{
    const unsigned char *us = (const unsigned char *)s;
    size_t i, lim, total = 0, written = 0;
    bool cut = cap == 0;
    if (!str_content(s, str, &i, &lim)) {
        if (cap)
            out[0] = '\0';
        return 0;
    }
    while (i < lim) {
        unsigned char u[UTF8_MAX_LEN];
        size_t ul = decode_char(us, &i, lim, u);
        /* Once one character does not fit, none after it is written
         * either: the output stays a prefix of the decoded string. */
        if (!cut && ul <= cap - 1 - written) {
            memcpy(out + written, u, ul);
            written += ul;
        } else {
            cut = true;
        }
        total += ul;
    }
    if (cap)
        out[written] = '\0';
    return total;
}

/* ---------------- output ---------------- */

/* The escape of a byte that may not appear raw in a JSON string (or, for
 * DEL, that we would rather not send raw) into e; its length. */
static size_t escape_byte(unsigned char c, char e[U_ESCAPE_LEN])
{
    static const char hex[] = "0123456789abcdef";
    char letter = 0;
    switch (c) {
    case '"':
        letter = '"';
        break;
    case '\\':
        letter = '\\';
        break;
    case '\b':
        letter = 'b';
        break;
    case '\f':
        letter = 'f';
        break;
    case '\n':
        letter = 'n';
        break;
    case '\r':
        letter = 'r';
        break;
    case '\t':
        letter = 't';
        break;
    default:
        break;
    }
    e[0] = '\\';
    if (letter) {
        e[1] = letter;
        return 2;
    }
    e[1] = 'u';
    e[2] = '0';
    e[3] = '0';
    e[4] = hex[c >> 4];
    e[5] = hex[c & 0xF];
    return U_ESCAPE_LEN;
}

static bool is_plain_ascii(unsigned char c)
{
    return c >= CONTROL_END && c < ASCII_DEL && c != '"' && c != '\\';
}

int json_append_str(struct buf *out, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t run = 0, i = 0;      /* s[run, i): bytes to copy as they are */
    /* Room for the common case, nothing to escape, in one go. */
    if (n > SIZE_MAX - 2 || buf_reserve(out, n + 2) < 0)
        return -1;
    if (buf_append(out, "\"", 1) < 0)
        return -1;
    while (i < n) {
        unsigned char c = s[i];
        if (is_plain_ascii(c)) {
            i++;
            continue;
        }
        size_t len = c >= ASCII_END ? utf8_len(s + i, n - i) : 0;
        if (len) {
            i += len;
            continue;
        }
        if (i > run && buf_append(out, s + run, i - run) < 0)
            return -1;
        /* An invalid byte becomes U+FFFD on its own; the bytes after it
         * are looked at afresh. */
        char e[U_ESCAPE_LEN];
        int r = c >= ASCII_END ? buf_append(out, REPLACEMENT_UTF8, REPLACEMENT_UTF8_LEN)
                               : buf_append(out, e, escape_byte(c, e));
        if (r < 0)
            return -1;
        run = ++i;
    }
    if (i > run && buf_append(out, s + run, i - run) < 0)
        return -1;
    return buf_append(out, "\"", 1);
}

bool json_is_empty(const char *s, struct json_val container)
{
    if (!container_ok(s, container))
        return false;
    return skip_ws((const unsigned char *)s, container.start + 1, container.end - 1) == container.end - 1;
}
