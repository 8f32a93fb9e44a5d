/* Unit tests of json.c: validation (tables of valid and invalid texts,
 * every strict prefix of each valid text, exhaustive UTF-8 checks against
 * an independent decoder, nesting limits), iteration, json_get,
 * json_str_eq / json_str_decode and json_append_str.
 *
 * Every text under test is placed so that its last byte is the last byte
 * before a PROT_NONE page: a read past the end crashes the test. */
#include "buf.h"
#include "json.h"
#include "tap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------- guard page ---------------- */

static char *guard_map;
static size_t guard_map_len, guard_room, page_size;

/* Make room for len bytes before the guard page. */
static void guard_reserve(size_t len)
{
    if (len <= guard_room && guard_map)
        return;
    if (guard_map)
        munmap(guard_map, guard_map_len);
    size_t pages = (len + page_size - 1) / page_size + 1;
    if (pages < 2)
        pages = 2;
    guard_map_len = pages * page_size;
    void *p = mmap(NULL, guard_map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    guard_map = p;
    guard_room = guard_map_len - page_size;
    if (mprotect(guard_map + guard_room, page_size, PROT_NONE) < 0) {
        perror("mprotect");
        exit(2);
    }
}

/* Copy text[0, len) so that it ends right at the inaccessible page. */
static char *at_guard(const char *text, size_t len)
{
    guard_reserve(len);
    char *p = guard_map + guard_room - len;
    if (len)
        memcpy(p, text, len);
    return p;
}

static int parse_g(const char *text, size_t len, struct json_val *root, struct json_error *err)
{
    return json_parse(at_guard(text, len), len, root, err);
}

/* A printable, single-line rendering of s[0, len) for test names. */
static const char *show(const char *s, size_t len)
{
    enum { SHOW_BUFS = 4, SHOW_MAX = 72 };
    static char bufs[SHOW_BUFS][SHOW_MAX * 4 + 8];
    static unsigned next;
    char *o = bufs[next++ % SHOW_BUFS];
    size_t w = 0;
    for (size_t i = 0; i < len && i < SHOW_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            o[w++] = (char)c;
        else
            w += (size_t)sprintf(o + w, "\\x%02x", c);
    }
    if (len > SHOW_MAX)
        w += (size_t)sprintf(o + w, "...");
    o[w] = '\0';
    return o;
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------- valid texts ---------------- */

struct good {
    const char *s;
    size_t len;
    enum json_type type;
};
#define G(lit, type) { lit, sizeof(lit) - 1, type }

static const struct good goods[] = {
    /* RFC 8259, section 13 */
    G("{\n"
      "  \"Image\": {\n"
      "      \"Width\":  800,\n"
      "      \"Height\": 600,\n"
      "      \"Title\":  \"View from 15th Floor\",\n"
      "      \"Thumbnail\": {\n"
      "          \"Url\":    \"http://www.example.com/image/481989943\",\n"
      "          \"Height\": 125,\n"
      "          \"Width\":  100\n"
      "      },\n"
      "      \"Animated\" : false,\n"
      "      \"IDs\": [116, 943, 234, 38793]\n"
      "    }\n"
      "}", JSON_OBJECT),
    G("[\n"
      "  {\n"
      "     \"precision\": \"zip\",\n"
      "     \"Latitude\":  37.7668,\n"
      "     \"Longitude\": -122.3959,\n"
      "     \"Address\":   \"\",\n"
      "     \"City\":      \"SAN FRANCISCO\",\n"
      "     \"State\":     \"CA\",\n"
      "     \"Zip\":       \"94107\",\n"
      "     \"Country\":   \"US\"\n"
      "  },\n"
      "  {\n"
      "     \"precision\": \"zip\",\n"
      "     \"Latitude\":  37.371991,\n"
      "     \"Longitude\": -122.026020,\n"
      "     \"Address\":   \"\",\n"
      "     \"City\":      \"SUNNYVALE\",\n"
      "     \"State\":     \"CA\",\n"
      "     \"Zip\":       \"94085\",\n"
      "     \"Country\":   \"US\"\n"
      "  }\n"
      "]", JSON_ARRAY),
    G("\"Hello world!\"", JSON_STRING),
    G("42", JSON_NUMBER),
    G("true", JSON_TRUE),
    /* numbers */
    G("0", JSON_NUMBER),
    G("-0", JSON_NUMBER),
    G("1", JSON_NUMBER),
    G("-1", JSON_NUMBER),
    G("0.5", JSON_NUMBER),
    G("-0.5", JSON_NUMBER),
    G("10.25", JSON_NUMBER),
    G("1e5", JSON_NUMBER),
    G("1E5", JSON_NUMBER),
    G("1e+5", JSON_NUMBER),
    G("1e-5", JSON_NUMBER),
    G("1E-05", JSON_NUMBER),
    G("0e0", JSON_NUMBER),
    G("-0.0e+0", JSON_NUMBER),
    G("123456789012345678901234567890123456789012345678901234567890", JSON_NUMBER),
    G("-123456789012345678901234567890.123456789012345678901234567890e+123456789", JSON_NUMBER),
    G("1.7976931348623157e308", JSON_NUMBER),
    G("1e400", JSON_NUMBER),
    G("-1e-400", JSON_NUMBER),
    G("4.9e-324", JSON_NUMBER),
    G("9007199254740993", JSON_NUMBER),
    /* literals */
    G("false", JSON_FALSE),
    G("null", JSON_NULL),
    /* strings */
    G("\"\"", JSON_STRING),
    G("\"a\"", JSON_STRING),
    G("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", JSON_STRING),
    G("\"\\u0000\"", JSON_STRING),
    G("\"\\u001f\"", JSON_STRING),
    G("\"\\u0041\\u00e9\\u00E9\\u20AC\\u20ac\"", JSON_STRING),
    G("\"\\uffff\\uFFFE\"", JSON_STRING),
    G("\"\\ud7ff\\ue000\"", JSON_STRING),
    G("\"\\ud83d\\ude00\"", JSON_STRING),
    G("\"\\uD83D\\uDE00\"", JSON_STRING),
    G("\"\\uD83d\\uDe00\"", JSON_STRING),
    G("\"\\ud800\\udc00\"", JSON_STRING),
    G("\"\\udbff\\udfff\"", JSON_STRING),
    G("\"\\ud83d\\ude00\\ud83d\\ude00x\"", JSON_STRING),
    G("\"\\\\u0041\"", JSON_STRING),
    G("\"\\\\ud83d\"", JSON_STRING),
    G("\"\x7f\"", JSON_STRING),
    G("\"/\"", JSON_STRING),
    G("\" !#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~\"",
      JSON_STRING),
    G("\"\xc2\x80\"", JSON_STRING),              /* U+0080 */
    G("\"\xdf\xbf\"", JSON_STRING),              /* U+07FF */
    G("\"\xe0\xa0\x80\"", JSON_STRING),          /* U+0800 */
    G("\"\xed\x9f\xbf\"", JSON_STRING),          /* U+D7FF */
    G("\"\xee\x80\x80\"", JSON_STRING),          /* U+E000 */
    G("\"\xef\xbf\xbf\"", JSON_STRING),          /* U+FFFF */
    G("\"\xf0\x90\x80\x80\"", JSON_STRING),      /* U+10000 */
    G("\"\xf4\x8f\xbf\xbf\"", JSON_STRING),      /* U+10FFFF */
    G("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", JSON_STRING),
    /* containers */
    G("{}", JSON_OBJECT),
    G("[]", JSON_ARRAY),
    G(" {} ", JSON_OBJECT),
    G("\t\n\r [ \t\n\r ] \t\n\r", JSON_ARRAY),
    G("{ \t\n\r}", JSON_OBJECT),
    G("[[]]", JSON_ARRAY),
    G("[{}]", JSON_ARRAY),
    G("[[[[[]]]]]", JSON_ARRAY),
    G("{\"\":\"\"}", JSON_OBJECT),
    G("{\"a\":1,\"a\":2}", JSON_OBJECT),
    G("{\"a\":{\"b\":{\"c\":[1,[2,[3]]]}}}", JSON_OBJECT),
    G("[1,\"two\",true,false,null,{},[],-0.5e-3]", JSON_ARRAY),
    G("[\"]\",\"}\",\"[\",\"{\",\"\\\"\",\",\",\":\"]", JSON_ARRAY),
    G("{\"a\\\"b\":\"c\\\\\",\"\\u0000\":0}", JSON_OBJECT),
    G("[0,-0,0.0,1e1,1E+1,1e-1]", JSON_ARRAY),
    G("[true,false,null]", JSON_ARRAY),
    G(" \t\n\r[ \t\n\r1 \t\n\r, \t\n\r{ \t\n\r\"a\" \t\n\r: \t\n\rnull \t\n\r} \t\n\r, \t\n\r[ \t\n\r] \t\n\r] \t\n\r",
      JSON_ARRAY),
    G("{\"k\":[{\"k\":[{\"k\":[]}]}]}", JSON_OBJECT),
    /* a top-level value with whitespace around */
    G(" 1", JSON_NUMBER),
    G("1 ", JSON_NUMBER),
    G("\"x\" ", JSON_STRING),
    G(" null\n", JSON_NULL),
};

static bool is_ws_byte(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Whether every strict prefix of t[0, n) must be invalid: not when the
 * value could end earlier, i.e. a number, or trailing whitespace. */
static bool prefixes_must_fail(const char *t, size_t n)
{
    char last = t[n - 1];
    return !is_ws_byte(last) && !(last >= '0' && last <= '9');
}

/* Every strict prefix of t[0, n) is rejected, with an offset inside it. */
static void check_prefixes(const char *t, size_t n, const char *name)
{
    size_t bad = 0, first_bad = 0;
    for (size_t k = 0; k < n; k++) {
        struct json_val root;
        struct json_error err = { 0, NULL };
        int r = parse_g(t, k, &root, &err);
        if (r != -1 || !err.msg || err.offset > k) {
            if (!bad)
                first_bad = k;
            bad++;
        }
    }
    if (!ok(bad == 0, "all %zu strict prefixes of %s are rejected", n, name))
        printf("#   %zu accepted, first of length %zu\n", bad, first_bad);
}

static void check_good(const struct good *g)
{
    struct json_val root = { JSON_INVALID, 99, 99 };
    struct json_error err = { 0, NULL };
    const char *name = show(g->s, g->len);
    int r = parse_g(g->s, g->len, &root, &err);
    if (!ok(r == 0, "valid: %s", name))
        printf("#   error \"%s\" at %zu\n", err.msg ? err.msg : "(null)", err.offset);
    size_t start = 0, end = g->len;
    while (start < end && is_ws_byte(g->s[start]))
        start++;
    while (end > start && is_ws_byte(g->s[end - 1]))
        end--;
    ok(root.type == g->type && root.start == start && root.end == end, "root type and span of %s", name);

    if (prefixes_must_fail(g->s, g->len))
        check_prefixes(g->s, g->len, name);

    /* Inside an array the value must still parse, and every prefix of
     * that fails (this covers numbers and trailing whitespace too). */
    size_t wn = g->len + 2;
    char *w = malloc(wn);
    w[0] = '[';
    memcpy(w + 1, g->s, g->len);
    w[wn - 1] = ']';
    struct json_val wroot, elem;
    ok(parse_g(w, wn, &wroot, &err) == 0 && wroot.type == JSON_ARRAY, "valid inside [ ]: %s", name);
    struct json_iter it;
    const char *gw = at_guard(w, wn);
    json_iter_init(&it, gw, wroot);
    ok(json_iter_elem(&it, &elem) == 1 && elem.type == g->type && elem.start == 1 + start &&
           elem.end == 1 + end && json_iter_elem(&it, &elem) == 0,
       "iterated back out of [ ]: %s", name);
    check_prefixes(w, wn, "it in [ ]");
    free(w);
}

/* ---------------- invalid texts ---------------- */

struct bad {
    const char *s;
    size_t len;
    const char *msg;
    size_t off;
};
#define B(lit, msg, off) { lit, sizeof(lit) - 1, msg, off }

#define E_EMPTY "empty input"
#define E_CHAR "unexpected character"
#define E_END "unexpected end of input"
#define E_NUM "invalid number"
#define E_LIT "invalid literal"
#define E_UNTERM "unterminated string"
#define E_ESC "invalid escape in string"
#define E_PAIR "invalid \\u surrogate pair"
#define E_UTF8 "invalid UTF-8 in string"
#define E_CTRL "control character in string"
#define E_TRAIL "trailing characters after the value"
#define E_KEY "expected a string key"
#define E_COLON "expected ':'"
#define E_OBJ "expected ',' or '}'"
#define E_ARR "expected ',' or ']'"

static const struct bad bads[] = {
    /* empty */
    B("", E_EMPTY, 0),
    B(" \t\n\r", E_EMPTY, 0),
    /* not a value */
    B("]", E_CHAR, 0),
    B("}", E_CHAR, 0),
    B(",", E_CHAR, 0),
    B(":", E_CHAR, 0),
    B("x", E_CHAR, 0),
    B(".5", E_CHAR, 0),
    B("+1", E_CHAR, 0),
    B("NaN", E_CHAR, 0),
    B("Infinity", E_CHAR, 0),
    B("True", E_CHAR, 0),
    B("undefined", E_CHAR, 0),
    B("'a'", E_CHAR, 0),
    B("/* */ 1", E_CHAR, 0),
    B("\xef\xbb\xbf{}", E_CHAR, 0),          /* a BOM is not whitespace */
    B("\xc3\xa9", E_CHAR, 0),
    B("\f1", E_CHAR, 0),                      /* only 4 whitespace bytes */
    B("\v1", E_CHAR, 0),
    B("\xc2\xa0" "1", E_CHAR, 0),
    B("\0", E_CHAR, 0),
    /* numbers */
    B("01", E_NUM, 1),
    B("00", E_NUM, 1),
    B("-01", E_NUM, 2),
    B("1.", E_NUM, 2),
    B("2.", E_NUM, 2),
    B("1.e5", E_NUM, 2),
    B("-.5", E_NUM, 1),
    B("-", E_NUM, 1),
    B("--1", E_NUM, 1),
    B("-a", E_NUM, 1),
    B("- 1", E_NUM, 1),
    B("-Infinity", E_NUM, 1),
    B("1e", E_NUM, 2),
    B("1e+", E_NUM, 3),
    B("1E-", E_NUM, 3),
    B("1e+-1", E_NUM, 3),
    B("1e5.5", E_NUM, 3),
    B("1e5e5", E_NUM, 3),
    B("1.5.2", E_NUM, 3),
    B("0x10", E_NUM, 1),
    B("1a", E_NUM, 1),
    B("1true", E_NUM, 1),
    B("1+2", E_NUM, 1),
    B("[01]", E_NUM, 2),
    B("[1.]", E_NUM, 3),
    B("{\"a\":-}", E_NUM, 6),
    /* literals */
    B("t", E_END, 1),
    B("tru", E_END, 3),
    B("nul", E_END, 3),
    B("fals", E_END, 4),
    B("trUe", E_LIT, 2),
    B("nulL", E_LIT, 3),
    B("falsy", E_LIT, 4),
    B("[tru]", E_LIT, 4),
    B("nulll", E_TRAIL, 4),
    B("truex", E_TRAIL, 4),
    B("[true false]", E_ARR, 6),
    /* strings: termination and escapes */
    B("\"", E_UNTERM, 0),
    B("\"abc", E_UNTERM, 0),
    B("[\"abc]", E_UNTERM, 1),
    B("\"\\", E_UNTERM, 0),
    B("\"\\\"", E_UNTERM, 0),
    B("\"\\u12", E_UNTERM, 0),
    B("\"\\x\"", E_ESC, 1),
    B("\"\\a\"", E_ESC, 1),
    B("\"\\'\"", E_ESC, 1),
    B("\"\\0\"", E_ESC, 1),
    B("\"\\U0041\"", E_ESC, 1),
    B("\"\\u\"", E_ESC, 1),
    B("\"\\u12\"", E_ESC, 1),
    B("\"\\u123g\"", E_ESC, 1),
    B("\"\\u-123\"", E_ESC, 1),
    B("\"a\\ b\"", E_ESC, 2),
    B("\"\\\n\"", E_ESC, 1),
    /* strings: raw control characters */
    B("\"\x01\"", E_CTRL, 1),
    B("\"\x1f\"", E_CTRL, 1),
    B("\"a\tb\"", E_CTRL, 2),
    B("\"\n\"", E_CTRL, 1),
    B("\"\r\"", E_CTRL, 1),
    B("\"a\0b\"", E_CTRL, 2),
    B("{\"k\x01\":1}", E_CTRL, 3),
    /* strings: \u surrogates */
    B("\"\\ude00\"", E_PAIR, 1),
    B("\"\\udc00\"", E_PAIR, 1),
    B("\"\\udfff\"", E_PAIR, 1),
    B("\"\\ud83d\"", E_PAIR, 1),
    B("\"\\ud83dx\"", E_PAIR, 1),
    B("\"x\\ud83d\"", E_PAIR, 2),
    B("\"\\ud83d\\u0041\"", E_PAIR, 1),
    B("\"\\ud83d\\ud83d\"", E_PAIR, 1),
    B("\"\\ud83d\\n\"", E_PAIR, 1),
    B("\"\\ud83d\\ude0\"", E_PAIR, 1),
    B("\"\\ud83d \\ude00\"", E_PAIR, 1),
    B("\"\\ude00\\ud83d\"", E_PAIR, 1),
    B("\"\\udbff\\ue000\"", E_PAIR, 1),
    B("\"\\ud800\\udbff\"", E_PAIR, 1),
    B("\"\\ud83d\\ude00\\ude00\"", E_PAIR, 13),
    B("\"\\ud83d", E_UNTERM, 0),
    B("\"\\ud83d\\", E_UNTERM, 0),
    B("\"\\ud83d\\ude", E_UNTERM, 0),
    /* strings: UTF-8, every class of error */
    B("\"\x80\"", E_UTF8, 1),                     /* stray continuation */
    B("\"\xbf\"", E_UTF8, 1),
    B("\"a\xc3\xa9\x80\"", E_UTF8, 4),
    B("\"\xc0\x80\"", E_UTF8, 1),                 /* overlong NUL */
    B("\"\xc0\xaf\"", E_UTF8, 1),                 /* overlong '/' */
    B("\"\xc1\xbf\"", E_UTF8, 1),
    B("\"\xe0\x80\x80\"", E_UTF8, 1),             /* overlong, 3 bytes */
    B("\"\xe0\x9f\xbf\"", E_UTF8, 1),
    B("\"\xf0\x80\x80\x80\"", E_UTF8, 1),         /* overlong, 4 bytes */
    B("\"\xf0\x8f\xbf\xbf\"", E_UTF8, 1),
    B("\"\xed\xa0\x80\"", E_UTF8, 1),             /* U+D800 encoded */
    B("\"\xed\xbf\xbf\"", E_UTF8, 1),             /* U+DFFF encoded */
    B("\"\xed\xa0\xbd\xed\xb8\x80\"", E_UTF8, 1), /* CESU-8 */
    B("\"\xf4\x90\x80\x80\"", E_UTF8, 1),         /* U+110000 */
    B("\"\xf7\xbf\xbf\xbf\"", E_UTF8, 1),
    B("\"\xf5\x80\x80\x80\"", E_UTF8, 1),
    B("\"\xf8\x88\x80\x80\x80\"", E_UTF8, 1),     /* old 5-byte form */
    B("\"\xfc\x84\x80\x80\x80\x80\"", E_UTF8, 1), /* old 6-byte form */
    B("\"\xfe\"", E_UTF8, 1),
    B("\"\xff\"", E_UTF8, 1),
    B("\"\xc3\"", E_UTF8, 1),                     /* truncated */
    B("\"\xe2\x82\"", E_UTF8, 1),
    B("\"\xf0\x9f\x98\"", E_UTF8, 1),
    B("\"\xc3\x28\"", E_UTF8, 1),                 /* bad continuation */
    B("\"\xe2\x28\xa1\"", E_UTF8, 1),
    B("\"\xe2\x82\x28\"", E_UTF8, 1),
    B("\"\xf0\x28\x8c\xbc\"", E_UTF8, 1),
    B("\"\xf0\x90\x28\xbc\"", E_UTF8, 1),
    B("\"\xf0\x9f\x98\x28\"", E_UTF8, 1),
    B("\"\xc3", E_UTF8, 1),                       /* truncated by the end */
    B("\"\xf0\x9f\x98", E_UTF8, 1),
    B("{\"\xff\":1}", E_UTF8, 2),
    /* objects */
    B("{", E_END, 1),
    B("{ ", E_END, 2),
    B("{\"a\"", E_END, 4),
    B("{\"a\":", E_END, 5),
    B("{\"a\":1", E_END, 6),
    B("{\"a\":1,", E_END, 7),
    B("{\"a\"}", E_COLON, 4),
    B("{\"a\" 1}", E_COLON, 5),
    B("{\"a\";1}", E_COLON, 4),
    B("{\"a\":}", E_CHAR, 5),
    B("{\"a\"::1}", E_CHAR, 5),
    B("{\"a\":1,}", E_KEY, 7),
    B("{\"a\":1,,\"b\":2}", E_KEY, 7),
    B("{,}", E_KEY, 1),
    B("{1:2}", E_KEY, 1),
    B("{a:1}", E_KEY, 1),
    B("{'a':1}", E_KEY, 1),
    B("{null:1}", E_KEY, 1),
    B("{[]:1}", E_KEY, 1),
    B("{\"a\":1 \"b\":2}", E_OBJ, 7),
    B("{\"a\":1]", E_OBJ, 6),
    B("{\"a\":[}", E_CHAR, 6),
    B("{\"a\":1}}", E_TRAIL, 7),
    /* arrays */
    B("[", E_END, 1),
    B("[ ", E_END, 2),
    B("[1", E_END, 2),
    B("[1,", E_END, 3),
    B("[[]", E_END, 3),
    B("[1,]", E_CHAR, 3),
    B("[,1]", E_CHAR, 1),
    B("[,]", E_CHAR, 1),
    B("[1,,2]", E_CHAR, 3),
    B("[1}", E_ARR, 2),
    B("[1 2]", E_ARR, 3),
    B("[1:2]", E_ARR, 2),
    B("[\"a\":1]", E_ARR, 4),
    B("[{]}", E_KEY, 2),
    B("[]]", E_TRAIL, 2),
    /* more than one value */
    B("1 2", E_TRAIL, 2),
    B("{} {}", E_TRAIL, 3),
    B("[][]", E_TRAIL, 2),
    B("\"a\"\"b\"", E_TRAIL, 3),
    B("{}\0", E_TRAIL, 2),
    B("[] /* c */", E_TRAIL, 3),
    B("null,", E_TRAIL, 4),
    B("true\xc2\xa0", E_TRAIL, 4),
    B("{}x", E_TRAIL, 2),
};

static void check_bad(const struct bad *b)
{
    struct json_val root = { JSON_OBJECT, 7, 7 };
    struct json_error err = { 12345, NULL };
    const char *name = show(b->s, b->len);
    int r = parse_g(b->s, b->len, &root, &err);
    ok(r == -1 && root.type == JSON_INVALID, "invalid: %s", name);
    is_str(err.msg, b->msg, "  message for %s", name);
    is_int(err.offset, b->off, "  offset for %s", name);
}

/* ---------------- UTF-8 against an independent decoder ---------------- */

/* Length of the valid UTF-8 character at p[0, n), 0 if none: decoded by
 * arithmetic (not by json.c's byte ranges), then checked for overlongs,
 * surrogates and range. */
static size_t ref_char_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        cp = c & 0x1F;
        min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        cp = c & 0x0F;
        min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static bool ref_utf8_valid(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t l = ref_char_len(p + i, n - i);
        if (!l)
            return false;
        i += l;
    }
    return true;
}

/* What json_append_str must make of p[0, n) once decoded: valid
 * characters as they are, each other byte U+FFFD. */
static size_t ref_sanitize(const unsigned char *p, size_t n, char *out)
{
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        size_t l = ref_char_len(p + i, n - i);
        if (l) {
            memcpy(out + w, p + i, l);
            w += l;
            i += l;
        } else {
            memcpy(out + w, "\xef\xbf\xbd", 3);
            w += 3;
            i++;
        }
    }
    return w;
}

struct xcheck {
    size_t count, parse_bad, append_bad;
    unsigned char first_parse[8], first_append[8];
    size_t first_parse_len, first_append_len;
};

/* Raw bytes p[0, n): in quotes, json_parse accepts them exactly when the
 * reference says they are valid (and hold no control byte, '"' or '\\');
 * json_append_str of them gives valid JSON decoding to the sanitized
 * bytes. */
static void xcheck_one(struct xcheck *x, const unsigned char *p, size_t n)
{
    char text[16], want[32], got[32];
    struct json_val root;
    struct json_error err;
    bool plain = true;
    x->count++;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] == '"' || p[i] == '\\')
            plain = false;
    if (plain) {
        text[0] = '"';
        memcpy(text + 1, p, n);
        text[n + 1] = '"';
        bool accepted = parse_g(text, n + 2, &root, &err) == 0;
        if (accepted != ref_utf8_valid(p, n) || (!accepted && strcmp(err.msg, "invalid UTF-8 in string") != 0)) {
            if (!x->parse_bad++) {
                memcpy(x->first_parse, p, n);
                x->first_parse_len = n;
            }
        }
    }
    struct buf b = BUF_INIT;
    size_t wl = ref_sanitize(p, n, want);
    bool good = json_append_str(&b, (const char *)at_guard((const char *)p, n), n) == 0 &&
                parse_g(buf_head(&b), buf_len(&b), &root, &err) == 0 && root.type == JSON_STRING &&
                root.start == 0 && root.end == buf_len(&b);
    if (good) {
        size_t gl = json_str_decode(buf_head(&b), root, got, sizeof got);
        good = gl == wl && memcmp(got, want, wl) == 0;
    }
    if (!good && !x->append_bad++) {
        memcpy(x->first_append, p, n);
        x->first_append_len = n;
    }
    buf_free(&b);
}

static void xcheck_report(const struct xcheck *x, const char *what)
{
    if (!ok(x->parse_bad == 0, "json_parse agrees with the reference on %zu %s", x->count, what))
        printf("#   %zu disagree, first %s\n", x->parse_bad,
               show((const char *)x->first_parse, x->first_parse_len));
    if (!ok(x->append_bad == 0, "json_append_str sanitizes %zu %s", x->count, what))
        printf("#   %zu wrong, first %s\n", x->append_bad,
               show((const char *)x->first_append, x->first_append_len));
}

static void test_utf8_exhaustive(void)
{
    static const unsigned char tails[] = { 0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff };
    struct xcheck x1 = { 0 }, x2 = { 0 }, x3 = { 0 }, x4 = { 0 };
    unsigned char p[4];
    for (unsigned a = 0; a < 256; a++) {
        p[0] = (unsigned char)a;
        xcheck_one(&x1, p, 1);
        for (unsigned b = 0; b < 256; b++) {
            p[1] = (unsigned char)b;
            xcheck_one(&x2, p, 2);
            if (a < 0xC0)
                continue;
            for (size_t c = 0; c < sizeof tails; c++) {
                p[2] = tails[c];
                xcheck_one(&x3, p, 3);
                if (a < 0xF0)
                    continue;
                for (size_t d = 0; d < sizeof tails; d++) {
                    p[3] = tails[d];
                    xcheck_one(&x4, p, 4);
                }
            }
        }
    }
    xcheck_report(&x1, "1-byte strings");
    xcheck_report(&x2, "2-byte strings");
    xcheck_report(&x3, "3-byte strings");
    xcheck_report(&x4, "4-byte strings");
}

/* ---------------- nesting ---------------- */

/* depth levels of open, a core, then the closers. */
static char *nested(size_t depth, const char *open, const char *core, const char *close, size_t *len)
{
    size_t ol = strlen(open), cl = strlen(core), xl = strlen(close);
    *len = depth * (ol + xl) + cl;
    char *t = malloc(*len + 1);
    size_t w = 0;
    for (size_t i = 0; i < depth; i++, w += ol)
        memcpy(t + w, open, ol);
    memcpy(t + w, core, cl);
    w += cl;
    for (size_t i = 0; i < depth; i++, w += xl)
        memcpy(t + w, close, xl);
    t[w] = '\0';
    return t;
}

/* expect_ok, or refused as too deep at byte fail_at. */
static void check_depth(size_t reps, const char *open, const char *core, const char *close, bool expect_ok,
                        size_t fail_at)
{
    size_t len;
    char *t = nested(reps, open, core, close, &len);
    struct json_val root;
    struct json_error err = { 0, NULL };
    int r = parse_g(t, len, &root, &err);
    if (expect_ok) {
        if (!ok(r == 0 && root.start == 0 && root.end == len, "%zu x %s%s%s ok", reps, open, core, close))
            printf("#   %s at %zu\n", err.msg, err.offset);
    } else {
        ok(r == -1, "%zu x %s%s%s rejected", reps, open, core, close);
        is_str(err.msg, "nesting too deep", "  as nesting too deep");
        is_int(err.offset, fail_at, "  at the opening bracket past the limit");
    }
    free(t);
}

static void test_depth(void)
{
    const size_t max = JSON_MAX_DEPTH;
    check_depth(max, "[", "", "]", true, 0);
    check_depth(max + 1, "[", "", "]", false, max);
    check_depth(max, "{\"a\":", "1", "}", true, 0);
    check_depth(max + 1, "{\"a\":", "1", "}", false, max * 5);
    /* Two levels per repetition, then the core. */
    check_depth(max / 2, "[{\"k\":", "1", "}]", true, 0);
    check_depth(max / 2 - 1, "[{\"k\":", "[{}]", "}]", true, 0);
    check_depth(max / 2, "[{\"k\":", "[]", "}]", false, max / 2 * 6);
    check_depth(max / 2, "[{\"k\":", "{}", "}]", false, max / 2 * 6);
    check_depth(max / 2 - 1, "[{\"k\":", "[{\"x\":[]}]", "}]", false, (max / 2 - 1) * 6 + 6);

    /* The full strict-prefix check on the deepest valid text. */
    size_t len;
    char *t = nested(JSON_MAX_DEPTH, "[", "", "]", &len);
    check_prefixes(t, len, "512 nested arrays");

    /* Walk down all 512 levels with the iterator, and skip over deep
     * values as elements: both must work without recursion. */
    struct json_val v;
    struct json_iter it;
    const char *g = at_guard(t, len);
    ok(json_parse(g, len, &v, NULL) == 0, "512 nested arrays parse with err NULL");
    size_t levels = 1;
    for (;;) {
        json_iter_init(&it, g, v);
        if (json_iter_elem(&it, &v) != 1)
            break;
        levels++;
    }
    is_int(levels, JSON_MAX_DEPTH, "iterated down %d levels", JSON_MAX_DEPTH);
    ok(json_is_empty(g, v) && v.start == JSON_MAX_DEPTH - 1 && v.end == JSON_MAX_DEPTH + 1,
       "the innermost array is empty");
    free(t);

    char *inner = nested(JSON_MAX_DEPTH - 1, "[", "\"]]]\"", "]", &len);
    size_t wl = len + 8;
    char *w = malloc(wl + 1);
    snprintf(w, wl + 1, "[%s,1,[]]", inner);
    wl = strlen(w);
    g = at_guard(w, wl);
    ok(json_parse(g, wl, &v, NULL) == 0, "511 levels with a string of brackets inside another array");
    struct json_val e1, e2, e3, e4;
    json_iter_init(&it, g, v);
    ok(json_iter_elem(&it, &e1) == 1 && e1.type == JSON_ARRAY && e1.start == 1 && e1.end == 1 + len &&
           json_iter_elem(&it, &e2) == 1 && e2.type == JSON_NUMBER &&
           json_iter_elem(&it, &e3) == 1 && e3.type == JSON_ARRAY && json_is_empty(g, e3) &&
           json_iter_elem(&it, &e4) == 0,
       "the iterator skips the deep element in one step");
    free(inner);
    free(w);

    /* 100000 '[': refused at the 513th, without looking further. */
    size_t huge = 100000;
    char *brackets = malloc(2 * huge);
    memset(brackets, '[', huge);
    memset(brackets + huge, ']', huge);
    struct json_error err = { 0, NULL };
    double t0 = now_sec();
    int r1 = parse_g(brackets, huge, &v, &err);
    double dt = now_sec() - t0;
    ok(r1 == -1 && err.msg && strcmp(err.msg, "nesting too deep") == 0 && err.offset == JSON_MAX_DEPTH,
       "100000 '[' rejected as too deep at byte %d", JSON_MAX_DEPTH);
    ok(dt < 0.05, "and quickly (%.6f s)", dt);
    int r2 = parse_g(brackets, 2 * huge, &v, &err);
    ok(r2 == -1 && err.offset == JSON_MAX_DEPTH, "100000 balanced [ ] also rejected at byte %d", JSON_MAX_DEPTH);
    free(brackets);
    brackets = nested(huge, "{\"a\":", "", "", &len);
    ok(parse_g(brackets, len, &v, &err) == -1 && err.offset == max * 5 && strcmp(err.msg, "nesting too deep") == 0,
       "100000 {\"a\": rejected as too deep at byte %zu", max * 5);
    free(brackets);
}

/* ---------------- iteration ---------------- */

struct member {
    const char *key;          /* raw, quotes included */
    enum json_type type;
    const char *val;          /* raw */
};

static void check_members(const char *name, const char *s, struct json_val obj, const struct member *m, size_t n)
{
    struct json_iter it;
    struct json_val k, v;
    size_t i = 0;
    json_iter_init(&it, s, obj);
    while (json_iter_member(&it, &k, &v) == 1) {
        if (i >= n) {
            ok(0, "%s: extra member %s", name, show(s + k.start, k.end - k.start));
            return;
        }
        is_mem(s + k.start, k.end - k.start, m[i].key, "%s: key %zu", name, i);
        ok(k.type == JSON_STRING, "%s: key %zu is a string", name, i);
        is_int(v.type, m[i].type, "%s: type of value %zu", name, i);
        is_mem(s + v.start, v.end - v.start, m[i].val, "%s: value %zu", name, i);
        i++;
    }
    is_int(i, n, "%s: member count", name);
    ok(json_iter_member(&it, &k, &v) == 0, "%s: stays at the end", name);
}

static void check_elems(const char *name, const char *s, struct json_val arr, const struct member *m, size_t n)
{
    struct json_iter it;
    struct json_val v;
    size_t i = 0;
    json_iter_init(&it, s, arr);
    while (json_iter_elem(&it, &v) == 1) {
        if (i >= n) {
            ok(0, "%s: extra element", name);
            return;
        }
        is_int(v.type, m[i].type, "%s: type of element %zu", name, i);
        is_mem(s + v.start, v.end - v.start, m[i].val, "%s: element %zu", name, i);
        i++;
    }
    is_int(i, n, "%s: element count", name);
    ok(json_iter_elem(&it, &v) == 0, "%s: stays at the end", name);
}

/* Parse at the guard; the text stays there until the next at_guard. */
static const char *parsed(const char *text, struct json_val *root)
{
    size_t n = strlen(text);
    const char *g = at_guard(text, n);
    struct json_error err = { 0, NULL };
    if (!ok(json_parse(g, n, root, &err) == 0, "parse %s", show(text, n)))
        printf("#   %s at %zu\n", err.msg, err.offset);
    return g;
}

static void test_iteration(void)
{
    struct json_val root, v;
    const char *s = parsed(" { \"a\" : 1 , \"b\" : [ 1 , { \"c\" : \"}\" } ] , \"c\" : { \"d\" : \"]\\\"[\" } , "
                           "\"e\" : \"x\\\\\" , \"f\":null,\"g\":true,\"h\":false,\"i\":-1.5e+3,\"j\":{},\"k\":[] ,"
                           "\"l\\u0041\":\"\\ud83d\\ude00\"} ",
                           &root);
    static const struct member top[] = {
        { "\"a\"", JSON_NUMBER, "1" },
        { "\"b\"", JSON_ARRAY, "[ 1 , { \"c\" : \"}\" } ]" },
        { "\"c\"", JSON_OBJECT, "{ \"d\" : \"]\\\"[\" }" },
        { "\"e\"", JSON_STRING, "\"x\\\\\"" },
        { "\"f\"", JSON_NULL, "null" },
        { "\"g\"", JSON_TRUE, "true" },
        { "\"h\"", JSON_FALSE, "false" },
        { "\"i\"", JSON_NUMBER, "-1.5e+3" },
        { "\"j\"", JSON_OBJECT, "{}" },
        { "\"k\"", JSON_ARRAY, "[]" },
        { "\"l\\u0041\"", JSON_STRING, "\"\\ud83d\\ude00\"" },
    };
    check_members("object", s, root, top, ARRAY_LEN(top));

    ok(json_get(s, root, "b", &v) && v.type == JSON_ARRAY, "get b");
    static const struct member b_elems[] = {
        { NULL, JSON_NUMBER, "1" },
        { NULL, JSON_OBJECT, "{ \"c\" : \"}\" }" },
    };
    check_elems("nested array", s, v, b_elems, ARRAY_LEN(b_elems));
    struct json_iter it;
    json_iter_init(&it, s, v);
    ok(json_iter_elem(&it, NULL) == 1 && json_iter_elem(&it, &v) == 1, "walk to the inner object");
    static const struct member inner[] = { { "\"c\"", JSON_STRING, "\"}\"" } };
    check_members("object in array", s, v, inner, ARRAY_LEN(inner));
    ok(json_get(s, root, "c", &v), "get c");
    static const struct member c_members[] = { { "\"d\"", JSON_STRING, "\"]\\\"[\"" } };
    check_members("nested object", s, v, c_members, ARRAY_LEN(c_members));

    ok(json_get(s, root, "j", &v) && json_is_empty(s, v), "j is an empty object");
    check_members("empty object", s, v, NULL, 0);
    ok(json_get(s, root, "k", &v) && json_is_empty(s, v), "k is an empty array");
    check_elems("empty array", s, v, NULL, 0);
    ok(json_get(s, root, "lA", &v) && json_str_eq(s, v, "\xf0\x9f\x98\x80", 4), "get an escaped key");

    s = parsed("[1,\"two\",true,false,null,{\"x\":[]},[[]],-1.5e3,\"\\\"]\",\"\",0]", &root);
    static const struct member mixed[] = {
        { NULL, JSON_NUMBER, "1" },      { NULL, JSON_STRING, "\"two\"" },
        { NULL, JSON_TRUE, "true" },     { NULL, JSON_FALSE, "false" },
        { NULL, JSON_NULL, "null" },     { NULL, JSON_OBJECT, "{\"x\":[]}" },
        { NULL, JSON_ARRAY, "[[]]" },    { NULL, JSON_NUMBER, "-1.5e3" },
        { NULL, JSON_STRING, "\"\\\"]\"" }, { NULL, JSON_STRING, "\"\"" },
        { NULL, JSON_NUMBER, "0" },
    };
    check_elems("mixed array", s, root, mixed, ARRAY_LEN(mixed));
    json_iter_init(&it, s, root);
    struct json_val k;
    ok(json_iter_member(&it, &k, &v) == 0, "json_iter_member on an array gives nothing");

    s = parsed("\t\n\r [\t\n\r 1\t\n\r ,\t\n\r {\t\n\r \"k\"\t\n\r :\t\n\r \"v\"\t\n\r ,\"n\":[ 2 , 3 ]\t}\t\n\r ]\t\n\r ",
               &root);
    static const struct member ws_elems[] = {
        { NULL, JSON_NUMBER, "1" },
        { NULL, JSON_OBJECT, "{\t\n\r \"k\"\t\n\r :\t\n\r \"v\"\t\n\r ,\"n\":[ 2 , 3 ]\t}" },
    };
    check_elems("whitespace everywhere", s, root, ws_elems, ARRAY_LEN(ws_elems));
    json_iter_init(&it, s, root);
    json_iter_elem(&it, &v);
    json_iter_elem(&it, &v);
    static const struct member ws_members[] = {
        { "\"k\"", JSON_STRING, "\"v\"" },
        { "\"n\"", JSON_ARRAY, "[ 2 , 3 ]" },
    };
    check_members("whitespace everywhere, inner", s, v, ws_members, ARRAY_LEN(ws_members));

    s = parsed("{ }", &root);
    ok(json_is_empty(s, root), "{ } is empty");
    check_members("{ }", s, root, NULL, 0);
    s = parsed("[\n\t\r ]", &root);
    ok(json_is_empty(s, root), "[ with whitespace ] is empty");
    check_elems("[ ]", s, root, NULL, 0);
    s = parsed("[0]", &root);
    ok(!json_is_empty(s, root), "[0] is not empty");
    s = parsed("{\"\":0}", &root);
    ok(!json_is_empty(s, root), "{\"\":0} is not empty");
    s = parsed("\"{}\"", &root);
    ok(!json_is_empty(s, root), "a string is not an empty container");
    json_iter_init(&it, s, root);
    ok(json_iter_elem(&it, &v) == 0, "iterating a string gives nothing");
    s = parsed("{}", &root);
    root.type = JSON_ARRAY;
    json_iter_init(&it, s, root);
    ok(json_iter_elem(&it, &v) == 0 && !json_is_empty(s, root), "an object span typed as an array gives nothing");
}

/* Readers on spans json_parse never saw: each prefix of a text as a
 * container or string span ending at the guard page.  Any answer is
 * fine; reading past the span is not. */
static void test_bad_spans(void)
{
    static const char *const texts[] = {
        "{\"a\":[1,{\"b\":\"}]\"}],\"c\":\"x\\\\\\\"y\",\"d\":{\"e\":[[]]},\"f\":tru}",
        "[\"a\\\"],\",{\"x\":\"\\ud83d\\ude00\"},[[[[1]]]],nul,fals,-1e5,\"\\",
        "{\"k\":\"\\ud83d\\u\",\"\\u00\":1,\"z\":\"\xf0\x9f\x98\"}",
        "\"ab\\u00e9\\ud83d\\ude00\\n\\ud83d\\\"\\u12\\\"",
        "{\"a\" \"b\" : 1 , , ]",
        "[1 2 {] [} \"]",
        "[[1],[[2],[3]],{\"a\":[4]}]",
    };
    static const enum json_type types[] = { JSON_OBJECT, JSON_ARRAY, JSON_STRING };
    size_t calls = 0, outside = 0;
    for (size_t t = 0; t < ARRAY_LEN(texts); t++) {
        size_t n = strlen(texts[t]);
        for (size_t k = 0; k <= n; k++) {
            for (size_t y = 0; y < ARRAY_LEN(types); y++) {
                /* Also spans that start inside the text. */
                for (size_t from = 0; from < k; from += 7) {
                    const char *g = at_guard(texts[t] + from, k - from);
                    struct json_val span = { types[y], 0, k - from };
                    struct json_iter it;
                    struct json_val a, b;
                    char out[8];
                    json_iter_init(&it, g, span);
                    /* Items lie strictly inside the brackets. */
                    size_t inner_end = span.end - 1;
                    for (int i = 0; i < 64 && json_iter_member(&it, &a, &b) == 1; i++)
                        if (a.start < 1 || a.end > inner_end || b.end > inner_end || b.start < a.end)
                            outside++;
                    json_iter_init(&it, g, span);
                    for (int i = 0; i < 64 && json_iter_elem(&it, &a) == 1; i++)
                        if (a.end > inner_end || a.start < 1)
                            outside++;
                    if (json_get(g, span, "d", &a) && (a.end > inner_end || a.start < 1))
                        outside++;
                    json_get(g, span, "\xf0\x9f\x98\x80", &a);
                    json_is_empty(g, span);
                    json_str_eq(g, span, "ab", 2);
                    json_str_eq(g, span, "ab\xc3\xa9", 4);
                    json_str_decode(g, span, out, sizeof out);
                    json_str_decode(g, span, NULL, 0);
                    calls++;
                }
            }
        }
    }
    ok(calls > 0 && outside == 0, "readers stay inside %zu bad spans", calls);
    is_int(outside, 0, "no value reported outside its span");
}

/* On text json_parse would reject, the iterator stops at the first thing
 * out of place rather than guess. */
static void test_iter_stops(void)
{
    struct {
        const char *text;
        enum json_type type;
        size_t items;
    } cases[] = {
        { "[1 2]", JSON_ARRAY, 1 },
        { "[1,,2]", JSON_ARRAY, 1 },
        { "[1,2,]", JSON_ARRAY, 2 },
        { "[,1]", JSON_ARRAY, 0 },
        { "[1:2]", JSON_ARRAY, 1 },
        { "[[1],[2]]]", JSON_ARRAY, 2 },          /* then the stray ] */
        { "[\"a]", JSON_ARRAY, 0 },
        { "[{]", JSON_ARRAY, 0 },
        { "[x,1]", JSON_ARRAY, 0 },
        { "{\"a\":1 \"b\":2}", JSON_OBJECT, 1 },
        { "{\"a\" 1}", JSON_OBJECT, 0 },
        { "{\"a\":}", JSON_OBJECT, 0 },
        { "{a:1}", JSON_OBJECT, 0 },
        { "{\"a\":1,,\"b\":2}", JSON_OBJECT, 1 },
        { "{\"a\":tru}", JSON_OBJECT, 0 },
    };
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        size_t n = strlen(cases[c].text), items = 0;
        const char *g = at_guard(cases[c].text, n);
        struct json_val span = { cases[c].type, 0, n }, k, v;
        struct json_iter it;
        json_iter_init(&it, g, span);
        if (cases[c].type == JSON_ARRAY)
            while (items < 10 && json_iter_elem(&it, &v) == 1)
                items++;
        else
            while (items < 10 && json_iter_member(&it, &k, &v) == 1)
                items++;
        is_int(items, cases[c].items, "unparsed %s: iterator stops", cases[c].text);
    }
}

/* 512 levels of objects and arrays in an irregular order, so that every
 * level's bit in the nesting stack matters: closing each level with the
 * other kind of bracket must fail. */
static void test_depth_pattern(void)
{
    size_t max = JSON_MAX_DEPTH;
    char kinds[JSON_MAX_DEPTH];
    uint32_t seed = 777;
    for (size_t i = 0; i < max; i++) {
        seed = seed * 1103515245u + 12345u;
        kinds[i] = (seed >> 16) & 1 ? '{' : '[';
    }
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < max; i++)
        buf_append_str(&b, kinds[i] == '{' ? "{\"k\":" : "[");
    buf_append_str(&b, "0");
    size_t closers = buf_len(&b);
    for (size_t i = max; i-- > 0;)
        buf_append_str(&b, kinds[i] == '{' ? "}" : "]");
    struct json_val root;
    struct json_error err = { 0, NULL };
    ok(parse_g(buf_head(&b), buf_len(&b), &root, &err) == 0 && root.end == buf_len(&b),
       "512 levels of mixed objects and arrays");
    size_t wrong = 0;
    for (size_t i = 0; i < max; i++) {
        char *c = buf_head(&b) + closers + i;
        char keep = *c;
        *c = keep == '}' ? ']' : '}';
        if (parse_g(buf_head(&b), buf_len(&b), &root, &err) != -1 || err.offset != closers + i)
            wrong++;
        *c = keep;
    }
    is_int(wrong, 0, "each of the 512 closers must match its own level");
    buf_free(&b);
}

/* ---------------- json_get ---------------- */

static void test_get(void)
{
    struct json_val root, v, x;
    const char *s = parsed("{\"mo\\u0064el\":\"first\",\"model\":\"second\",\"a\\\"b\":1,\"\\u00e9\":2,"
                           "\"\\ud83d\\ude00\":3,\"\":4,\"mod\":5,\"x\":{\"model\":\"inner\",\"y\":6},"
                           "\"dup\":7,\"dup\":8,\"v\":\"\\\"z\\\":9\",\"\\/\":10}",
                           &root);
    ok(json_get(s, root, "model", &v) && json_str_eq(s, v, "first", 5), "escaped key matches; the first wins");
    ok(json_get(s, root, "a\"b", &v) && json_str_eq(s, v, "x", 1) == false && v.type == JSON_NUMBER &&
           s[v.start] == '1',
       "key with an escaped quote");
    ok(json_get(s, root, "\xc3\xa9", &v) && s[v.start] == '2', "\\u00e9 matches its UTF-8");
    ok(json_get(s, root, "\xf0\x9f\x98\x80", &v) && s[v.start] == '3', "a surrogate pair matches its UTF-8");
    ok(json_get(s, root, "", &v) && s[v.start] == '4', "the empty key");
    ok(json_get(s, root, "mod", &v) && s[v.start] == '5', "a key that is a prefix of another");
    ok(!json_get(s, root, "mode", &v), "no key that is a prefix of a present one");
    ok(!json_get(s, root, "models", &v), "no key longer than a present one");
    ok(json_get(s, root, "dup", &v) && s[v.start] == '7', "duplicate keys: the first wins");
    ok(!json_get(s, root, "y", &v), "members of nested objects are not found at the top");
    ok(!json_get(s, root, "z", &v), "text inside a string value is not a key");
    ok(json_get(s, root, "/", &v) && s[v.start] == '1' && v.end - v.start == 2, "\\/ matches /");
    ok(json_get(s, root, "x", &x) && json_get(s, x, "model", &v) && json_str_eq(s, v, "inner", 5),
       "get in a nested object");
    ok(json_get(s, root, "model", NULL), "out may be NULL");
    s = parsed("[{\"model\":1}]", &root);
    ok(!json_get(s, root, "model", &v), "json_get on an array is false");
    s = parsed("\"model\"", &root);
    ok(!json_get(s, root, "model", &v), "json_get on a string is false");
}

/* ---------------- json_str_eq / json_str_decode ---------------- */

static void test_strings(void)
{
    struct json_val v;
    const char *s = parsed("\"caf\\u00e9 \\ud83d\\ude00\\n\\/\\\"\\\\\\t\\b\\f\\r\"", &v);
    static const char want[] = "caf\xc3\xa9 \xf0\x9f\x98\x80\n/\"\\\t\b\f\r";
    ok(json_str_eq(s, v, want, sizeof want - 1), "str_eq decodes every escape");
    ok(!json_str_eq(s, v, want, sizeof want - 2), "str_eq: a shorter literal differs");
    ok(!json_str_eq(s, v, "caf\xc3\xa9 \xf0\x9f\x98\x80\n/\"\\\t\b\f\rx", sizeof want), "str_eq: a longer one too");
    ok(!json_str_eq(s, v, "caf\xc3\xa9 \xf0\x9f\x98\x81\n/\"\\\t\b\f\r", sizeof want - 1), "str_eq: one byte off");
    char out[64];
    memset(out, 'X', sizeof out);
    is_int(json_str_decode(s, v, out, sizeof out), sizeof want - 1, "decode length");
    ok(memcmp(out, want, sizeof want) == 0, "decoded bytes, NUL-terminated");

    s = parsed("\"abc\"", &v);
    ok(json_str_eq(s, v, "abc", 3) && !json_str_eq(s, v, "ab", 2) && !json_str_eq(s, v, "abcd", 4) &&
           !json_str_eq(s, v, "abd", 3),
       "str_eq without escapes");
    s = parsed("\"\"", &v);
    ok(json_str_eq(s, v, "", 0) && !json_str_eq(s, v, "a", 1), "str_eq on the empty string");
    is_int(json_str_decode(s, v, out, sizeof out), 0, "decode the empty string");
    is_str(out, "", "  to \"\"");
    s = parsed("\"a\\u0000b\"", &v);
    ok(json_str_eq(s, v, "a\0b", 3) && !json_str_eq(s, v, "a", 1), "str_eq with \\u0000");
    is_int(json_str_decode(s, v, out, sizeof out), 3, "decode with \\u0000: full length");
    ok(memcmp(out, "a\0b\0", 4) == 0, "  and the bytes");
    s = parsed("\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\\uD83D\\uDE00\\ud7ff\\ue000\\uffff\"", &v);
    static const char u_want[] =
        "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf";
    ok(json_str_eq(s, v, u_want, sizeof u_want - 1), "\\u to 1, 2, 3 and 4 UTF-8 bytes");
    memset(out, 'X', sizeof out);
    is_int(json_str_decode(s, v, out, sizeof out), sizeof u_want - 1, "decode \\u: length");
    ok(memcmp(out, u_want, sizeof u_want) == 0, "decode \\u: bytes");
    s = parsed("\"\\\\u0041\"", &v);
    ok(json_str_eq(s, v, "\\u0041", 6), "an escaped backslash before u is not a \\u escape");

    /* Truncation on character boundaries. */
    struct trunc {
        const char *text;
        size_t cap;
        const char *want;
        size_t full;
    };
    static const struct trunc cuts[] = {
        { "\"a\\u00e9\"", 4, "a\xc3\xa9", 3 },
        { "\"a\\u00e9\"", 3, "a", 3 },
        { "\"a\\u00e9\"", 2, "a", 3 },
        { "\"a\\u00e9\"", 1, "", 3 },
        { "\"a\xc3\xa9\"", 4, "a\xc3\xa9", 3 },
        { "\"a\xc3\xa9\"", 3, "a", 3 },
        { "\"\xe2\x82\xac" "a\"", 3, "", 4 },        /* 'a' would fit, but after a cut: no */
        { "\"\xe2\x82\xac" "a\"", 4, "\xe2\x82\xac", 4 },
        { "\"\\ud83d\\ude00\"", 4, "", 4 },
        { "\"\\ud83d\\ude00\"", 5, "\xf0\x9f\x98\x80", 4 },
        { "\"\xf0\x9f\x98\x80" "b\"", 4, "", 5 },
        { "\"\xf0\x9f\x98\x80" "b\"", 6, "\xf0\x9f\x98\x80" "b", 5 },
        { "\"ab\\ncd\"", 4, "ab\n", 5 },
        { "\"ab\\ncd\"", 3, "ab", 5 },
    };
    for (size_t i = 0; i < ARRAY_LEN(cuts); i++) {
        char o[16];
        memset(o, 'X', sizeof o);
        s = parsed(cuts[i].text, &v);
        size_t r = json_str_decode(s, v, o, cuts[i].cap);
        size_t wl = strlen(cuts[i].want);
        ok(r == cuts[i].full && memcmp(o, cuts[i].want, wl + 1) == 0 && o[cuts[i].cap] == 'X',
           "decode %s into %zu bytes", show(cuts[i].text, strlen(cuts[i].text)), cuts[i].cap);
    }
    s = parsed("\"abc\"", &v);
    is_int(json_str_decode(s, v, NULL, 0), 3, "decode with cap 0 only measures");
    s = parsed("[1]", &v);
    memset(out, 'X', sizeof out);
    ok(json_str_decode(s, v, out, sizeof out) == 0 && out[0] == '\0', "decode of a non-string: empty");
    ok(!json_str_eq(s, v, "[1]", 3), "str_eq of a non-string is false");
}

/* ---------------- json_append_str ---------------- */

static void check_append(const char *in, size_t n, const char *want)
{
    struct buf b = BUF_INIT;
    buf_append_str(&b, "pre:");
    int r = json_append_str(&b, at_guard(in, n), n);
    ok(r == 0 && buf_len(&b) == 4 + strlen(want) && memcmp(buf_head(&b), "pre:", 4) == 0 &&
           memcmp(buf_head(&b) + 4, want, strlen(want)) == 0,
       "append %s", show(in, n));
    if (r != 0 || buf_len(&b) != 4 + strlen(want) || memcmp(buf_head(&b) + 4, want, strlen(want)) != 0)
        printf("#   got %s\n", show(buf_head(&b), buf_len(&b)));
    buf_free(&b);
}
#define APPEND(in, want) check_append(in, sizeof(in) - 1, want)

/* Appended, parsed back and decoded, in[0, n) comes back as it was. */
static void check_round_trip(const char *in, size_t n, const char *name)
{
    struct buf b = BUF_INIT;
    struct json_val v;
    bool good = json_append_str(&b, at_guard(in, n), n) == 0 &&
                parse_g(buf_head(&b), buf_len(&b), &v, NULL) == 0 && v.type == JSON_STRING &&
                v.start == 0 && v.end == buf_len(&b);
    char *out = malloc(n + 1);
    const char *g = good ? at_guard(buf_head(&b), buf_len(&b)) : NULL;
    good = good && json_str_decode(g, v, out, n + 1) == n && memcmp(out, in, n) == 0 &&
           json_str_eq(g, v, in, n);
    ok(good, "round trip of %s", name);
    free(out);
    buf_free(&b);
}

static void test_append(void)
{
    APPEND("", "\"\"");
    APPEND("hello", "\"hello\"");
    APPEND("a\"b\\c/d", "\"a\\\"b\\\\c/d\"");
    APPEND("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
    APPEND("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
    APPEND("\0", "\"\\u0000\"");
    APPEND("x\0y", "\"x\\u0000y\"");
    APPEND("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"");
    APPEND("\xff", "\"\xef\xbf\xbd\"");
    APPEND("\x80" "a", "\"\xef\xbf\xbd" "a\"");
    APPEND("a\xe2\x82", "\"a\xef\xbf\xbd\xef\xbf\xbd\"");
    APPEND("\xe2\x82" "a", "\"\xef\xbf\xbd\xef\xbf\xbd" "a\"");
    APPEND("\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    APPEND("\xc0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    APPEND("\xf4\x90\x80\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    APPEND("\xc3\xa9\xc3", "\"\xc3\xa9\xef\xbf\xbd\"");
    APPEND("\xef\xbf\xbd", "\"\xef\xbf\xbd\"");

    char all[128];
    for (int i = 0; i < 128; i++)
        all[i] = (char)i;
    check_round_trip(all, sizeof all, "every ASCII byte, NUL included");
    check_round_trip("", 0, "the empty string");
    static const char utf8[] = "caf\xc3\xa9 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 \xef\xbf\xbf "
                               "\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf \"quoted\" \\back\\ \n\t";
    check_round_trip(utf8, sizeof utf8 - 1, "UTF-8 of every length with escapes");
    static const char looks_escaped[] = "\\u0041 \\ud83d \\\" \\n";
    check_round_trip(looks_escaped, sizeof looks_escaped - 1, "text that looks like escapes");

    /* Random bytes: the output is always valid JSON and decodes to the
     * input with each bad byte as U+FFFD. */
    uint32_t seed = 12345;
    size_t bad = 0, rounds = 2000;
    for (size_t r = 0; r < rounds; r++) {
        unsigned char in[64];
        char want[64 * 3], got[64 * 3 + 1];
        size_t n = r % sizeof in;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            /* Bias towards bytes of multi-byte sequences. */
            unsigned x = seed >> 16;
            in[i] = (unsigned char)(x & 1 ? 0x80 | (x >> 1 & 0x7f) : x >> 1);
        }
        size_t wl = ref_sanitize(in, n, want);
        struct buf b = BUF_INIT;
        struct json_val v;
        bool good = json_append_str(&b, at_guard((const char *)in, n), n) == 0 &&
                    parse_g(buf_head(&b), buf_len(&b), &v, NULL) == 0 && v.end == buf_len(&b);
        good = good && json_str_decode(buf_head(&b), v, got, sizeof got) == wl && memcmp(got, want, wl) == 0;
        if (!good)
            bad++;
        buf_free(&b);
    }
    is_int(bad, 0, "%zu random byte strings append to valid JSON that decodes back", rounds);
}

/* ---------------- size ---------------- */

static void test_big(void)
{
    static const char item[] = "{\"id\":12345,\"name\":\"caf\\u00e9 \xc3\xa9 \xf0\x9f\x98\x80 some text\","
                               "\"ok\":true,\"v\":[1.5e3,null,false,\"\\\"]\"]},\n";
    size_t count = 40000, il = sizeof item - 1;
    struct buf b = BUF_INIT;
    buf_append(&b, "[", 1);
    for (size_t i = 0; i < count; i++)
        buf_append(&b, item, il);
    buf_append(&b, "0]", 2);
    struct json_val root, v;
    struct json_error err = { 0, NULL };
    double t0 = now_sec();
    int r = parse_g(buf_head(&b), buf_len(&b), &root, &err);
    double dt = now_sec() - t0;
    ok(r == 0 && root.end == buf_len(&b), "a %zu-byte array parses", buf_len(&b));
    printf("# %.1f MB/s\n", (double)buf_len(&b) / 1e6 / (dt > 0 ? dt : 1e-9));
    const char *g = guard_map + guard_room - buf_len(&b);
    struct json_iter it;
    size_t n = 0;
    json_iter_init(&it, g, root);
    while (json_iter_elem(&it, &v) == 1)
        n++;
    is_int(n, count + 1, "all its elements iterated");
    /* Break the last item: still found. */
    buf_head(&b)[buf_len(&b) - 3] = ',';
    ok(parse_g(buf_head(&b), buf_len(&b), &root, &err) == -1 && err.offset == buf_len(&b) - 3,
       "an error at the very end of it is found (%s at %zu)", err.msg, err.offset);
    buf_free(&b);

    /* One long string, mostly ASCII. */
    size_t sl = 4u << 20;
    char *str = malloc(sl);
    str[0] = '"';
    for (size_t i = 1; i < sl - 1; i++)
        str[i] = (char)('a' + i % 26);
    memcpy(str + sl / 2, "\xf0\x9f\x98\x80\\n", 6);
    str[sl - 1] = '"';
    ok(parse_g(str, sl, &root, &err) == 0 && root.type == JSON_STRING, "a 4 MB string parses");
    g = guard_map + guard_room - sl;
    is_int(json_str_decode(g, root, NULL, 0), sl - 2 - 1, "and decodes to its length");
    str[sl / 2 + 1] = '\x28';
    ok(parse_g(str, sl, &root, &err) == -1 && err.offset == sl / 2 && strcmp(err.msg, "invalid UTF-8 in string") == 0,
       "a bad byte in its middle is found");
    free(str);
}

int main(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < ARRAY_LEN(goods); i++)
        check_good(&goods[i]);
    for (size_t i = 0; i < ARRAY_LEN(bads); i++)
        check_bad(&bads[i]);
    struct json_val root;
    ok(json_parse("{}", 2, NULL, NULL) == 0 && json_parse("{", 1, NULL, NULL) == -1, "root and err may be NULL");
    ok(json_parse(NULL, 0, &root, NULL) == -1, "NULL with length 0 is empty input");
    test_utf8_exhaustive();
    test_depth();
    test_iteration();
    test_bad_spans();
    test_iter_stops();
    test_depth_pattern();
    test_get();
    test_strings();
    test_append();
    test_big();
    return tap_done();
}
