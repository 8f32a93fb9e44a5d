/* Unit tests of rewrite.c: the outgoing request body (model replaced,
 * excluded / null / "[undefined]" keys removed, wherever they stand, every
 * other byte unchanged), the model of an answer rewritten back to the
 * alias, and stream_options.include_usage forced on (added, set, or
 * stream_options replaced, with every other byte unchanged).  Every result
 * must also be valid JSON. */
#include "buf.h"
#include "json.h"
#include "rewrite.h"
#include "tap.h"

#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static bool valid(struct buf *b)
{
    struct json_val root;
    struct json_error err;
    return json_parse(buf_head(b), buf_len(b), &root, &err) == 0;
}

/* rewrite_request on body with model "up" and the given excludes. */
static void req_case(const char *body, char *const *exclude, size_t n_exclude, const char *want, const char *what)
{
    struct json_val root;
    struct json_error err;
    if (!ok(json_parse(body, strlen(body), &root, &err) == 0, "%s: input parses", what))
        return;
    struct buf out = BUF_INIT;
    int rc = rewrite_request(body, root, "up", exclude, n_exclude, &out);
    ok(rc == 0, "%s: no error", what);
    is_str(buf_cstr(&out), want, "%s", what);
    ok(valid(&out), "%s: the result is valid JSON", what);
    buf_free(&out);
}

static void test_request(void)
{
    char *none[] = { NULL };
    char *ex[] = { "thinking", "verbosity" };
    req_case("{\"model\":\"gpt\",\"messages\":[]}", none, 0, "{\"model\":\"up\",\"messages\":[]}",
             "the model is replaced");
    req_case("{ \"messages\" : [ {\"role\":\"user\",\"content\":\"say \\\"model\\\": 1\"} ],\n"
             "  \"temperature\": 1.50e0, \"model\"  :  \"gpt\" , \"x\":\"\\u00e9\\/\"}",
             none, 0,
             "{ \"messages\" : [ {\"role\":\"user\",\"content\":\"say \\\"model\\\": 1\"} ],\n"
             "  \"temperature\": 1.50e0, \"model\"  :  \"up\" , \"x\":\"\\u00e9\\/\"}",
             "whitespace, number spelling, escapes and key order are kept");
    req_case("{\"model\":\"gpt\",\"meta\":{\"model\":\"inner\"}}", none, 0,
             "{\"model\":\"up\",\"meta\":{\"model\":\"inner\"}}", "a nested model is not touched");
    req_case("{\"thinking\":{\"a\":1},\"model\":\"gpt\"}", ex, 2, "{\"model\":\"up\"}",
             "an excluded key first");
    req_case("{\"model\":\"gpt\",\"verbosity\":\"low\",\"n\":1}", ex, 2, "{\"model\":\"up\",\"n\":1}",
             "an excluded key in the middle");
    req_case("{\"model\":\"gpt\",\"thinking\":true}", ex, 2, "{\"model\":\"up\"}", "an excluded key last");
    req_case("{ \"thinking\" : 1 ,\n \"model\" : \"gpt\" ,\n \"verbosity\" : 2 }", ex, 2,
             "{ \"model\" : \"up\" }",
             "excluded keys around the model, with whitespace");
    req_case("{\"model\":\"gpt\",\"user\":null,\"stop\":\"[undefined]\",\"top_p\":0.9}", none, 0,
             "{\"model\":\"up\",\"top_p\":0.9}", "null and \"[undefined]\" values are removed");
    req_case("{\"model\":\"gpt\",\"tools\":[null],\"x\":\"[undefined] no\"}", none, 0,
             "{\"model\":\"up\",\"tools\":[null],\"x\":\"[undefined] no\"}",
             "only top-level nulls, only the exact \"[undefined]\"");
}

static void test_model_back(void)
{
    struct { const char *in; const char *alias; int rc; const char *want; } cases[] = {
        { "{\"id\":\"1\",\"model\":\"gpt-up\",\"choices\":[]}", "gpt", 1, "{\"id\":\"1\",\"model\":\"gpt\",\"choices\":[]}" },
        { "{\"model\" : \"x\" }", "a \"quoted\" \\ alias", 1, "{\"model\" : \"a \\\"quoted\\\" \\\\ alias\" }" },
        { "{\"model\":\"gpt\"}", "gpt", 1, "{\"model\":\"gpt\"}" },
        { "{\"object\":\"list\",\"data\":[{\"model\":\"x\"}]}", "a", 0, NULL },
        { "{\"model\":42}", "a", 0, NULL },
        { "[\"model\"]", "a", 0, NULL },
        { "not json", "a", 0, NULL },
        { "", "a", 0, NULL },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct buf out = BUF_INIT;
        buf_append_str(&out, "prefix|");
        int rc = rewrite_model(cases[i].in, strlen(cases[i].in), cases[i].alias, &out);
        is_int(rc, cases[i].rc, "rewrite_model(%s)", cases[i].in);
        if (cases[i].want) {
            struct buf want = BUF_INIT;
            buf_printf(&want, "prefix|%s", cases[i].want);
            is_str(buf_cstr(&out), buf_cstr(&want), "... appended after what out held");
            buf_consume(&out, 7);
            ok(valid(&out), "... valid JSON");
            buf_free(&want);
        } else {
            is_str(buf_cstr(&out), "prefix|", "... out untouched");
        }
        buf_free(&out);
    }
}

/* rewrite_include_usage: the exact result (length included, so a stray
 * byte such as a NUL shows), valid JSON, and a top-level
 * stream_options.include_usage that is true. */
static void usage_case(const char *body, const char *want, const char *what)
{
    struct buf out = BUF_INIT;
    buf_append_str(&out, "prefix|");
    int rc = rewrite_include_usage(body, strlen(body), &out);
    is_int(rc, 0, "include_usage, %s: 0", what);
    ok(buf_len(&out) >= 7 && memcmp(buf_head(&out), "prefix|", 7) == 0, "... appended after what out held");
    buf_consume(&out, 7);
    const char *got = buf_head(&out);
    size_t n = buf_len(&out);
    if (!ok(n == strlen(want) && memcmp(got, want, n) == 0, "... %s", what)) {
        /* Every byte shown, a NUL included (is_mem would stop at it). */
        printf("#   got  %zu bytes: ", n);
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)got[i] < 0x20)
                printf("\\x%02x", (unsigned char)got[i]);
            else
                putchar(got[i]);
        }
        printf("\n#   want %zu bytes: %s\n", strlen(want), want);
    }
    ok(!memchr(got, '\0', n), "... no NUL byte in the result");
    struct json_val root, opts, inc;
    struct json_error err;
    bool parsed = json_parse(buf_head(&out), buf_len(&out), &root, &err) == 0;
    ok(parsed, "... valid JSON%s%s", parsed ? "" : ": ", parsed ? "" : err.msg);
    ok(parsed && root.type == JSON_OBJECT && json_get(buf_head(&out), root, "stream_options", &opts) &&
           opts.type == JSON_OBJECT && json_get(buf_head(&out), opts, "include_usage", &inc) && inc.type == JSON_TRUE,
       "... stream_options.include_usage is true");
    buf_free(&out);
}

static void test_include_usage(void)
{
#define SO "\"stream_options\":{\"include_usage\":true}"
    /* No stream_options: a new first member, the rest byte-identical. */
    usage_case("{\"model\":\"m\",\"stream\":true}", "{" SO ",\"model\":\"m\",\"stream\":true}",
               "no stream_options: added first");
    usage_case("{}", "{" SO "}", "{}: the only member, no comma");
    usage_case("{ \n }", "{" SO " \n }", "{ \\n }: the only member, the whitespace kept");
    usage_case("  {\n  \"model\" : \"m\" ,\n\t\"n\":1.50e0, \"s\":\"\\u00e9\\/\" }\n",
               "  {" SO ",\n  \"model\" : \"m\" ,\n\t\"n\":1.50e0, \"s\":\"\\u00e9\\/\" }\n",
               "odd formatting, number spelling and escapes kept");
    usage_case("{\"messages\":[{\"stream_options\":null}],\"meta\":{\"stream_options\":{}}}",
               "{" SO ",\"messages\":[{\"stream_options\":null}],\"meta\":{\"stream_options\":{}}}",
               "a nested stream_options is not the top-level one");

    /* stream_options an object. */
    usage_case("{\"stream\":true,\"stream_options\":{\"foo\":1}}",
               "{\"stream\":true,\"stream_options\":{\"include_usage\":true,\"foo\":1}}",
               "stream_options without include_usage: added first in it");
    usage_case("{\"stream_options\":{\"x\":{\"include_usage\":false}},\"stream\":true}",
               "{\"stream_options\":{\"include_usage\":true,\"x\":{\"include_usage\":false}},\"stream\":true}",
               "... a nested include_usage is not the one");
    usage_case("{\"stream_options\":{}}", "{" SO "}", "stream_options {}: include_usage added");
    usage_case("{\"stream_options\" : { } , \"a\":1}", "{\"stream_options\" : {\"include_usage\":true } , \"a\":1}",
               "stream_options { }: added, the whitespace kept");
    usage_case("{\"stream_options\":{\"include_usage\":false,\"x\":2},\"stream\":true}",
               "{\"stream_options\":{\"include_usage\":true,\"x\":2},\"stream\":true}", "include_usage false: true");
    usage_case("{\"stream_options\": { \"x\" : 2 , \"include_usage\" :  false } }",
               "{\"stream_options\": { \"x\" : 2 , \"include_usage\" :  true } }",
               "include_usage false, last and spaced: true, the spaces kept");
    usage_case("{\"stream_options\":{\"include_usage\":null}}", "{" SO "}", "include_usage null: true");
    usage_case("{\"stream_options\":{\"include_usage\":\"false\"}}", "{" SO "}", "include_usage \"false\": true");
    usage_case("{\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
               "{\"stream\":true,\"stream_options\":{\"include_usage\":true}}", "include_usage true: unchanged");
    usage_case("{ \"stream_options\" : {\"include_usage\" : true} }",
               "{ \"stream_options\" : {\"include_usage\" : true} }", "include_usage true, spaced: unchanged");

    /* stream_options something else: replaced by the object. */
    usage_case("{\"stream_options\":null,\"stream\":true}", "{" SO ",\"stream\":true}", "stream_options null");
    usage_case("{\"stream\":true, \"stream_options\" : \"yes\" }",
               "{\"stream\":true, \"stream_options\" : {\"include_usage\":true} }", "stream_options a string");
    usage_case("{\"stream_options\":[{\"include_usage\":true}]}", "{" SO "}", "stream_options an array");
    usage_case("{\"stream_options\":1}", "{" SO "}", "stream_options a number");
    usage_case("{\"stream_options\":false}", "{" SO "}", "stream_options false");
    usage_case("{\"stream\\u005foptions\":null}", "{\"stream\\u005foptions\":{\"include_usage\":true}}",
               "a key spelled with an escape is the same key");
#undef SO

    /* Not an object: -1. */
    static const char *const bad[] = {
        "[]", "[{\"stream\":true}]", "\"{}\"", "1", "null", "true", "", "   ", "not json", "{\"a\":", "{\"a\":1}}",
        "{\"a\":1,}",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct buf out = BUF_INIT;
        buf_append_str(&out, "prefix|");
        is_int(rewrite_include_usage(bad[i], strlen(bad[i]), &out), -1, "include_usage of '%s': -1", bad[i]);
        is_str(buf_cstr(&out), "prefix|", "... out untouched");
        buf_free(&out);
    }
    /* The body is (pointer, length): what follows it is not read. */
    const char *text = "{\"a\":1}garbage";
    struct buf out = BUF_INIT;
    is_int(rewrite_include_usage(text, 7, &out), 0, "a body given by length");
    is_mem(buf_head(&out), buf_len(&out), "{\"stream_options\":{\"include_usage\":true},\"a\":1}", "... only its bytes");
    buf_free(&out);
}

int main(void)
{
    test_request();
    test_model_back();
    test_include_usage();
    return tap_done();
}
