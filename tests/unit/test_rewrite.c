/* Unit tests of rewrite.c: the outgoing request body (model replaced,
 * excluded / null / "[undefined]" keys removed, wherever they stand, every
 * other byte unchanged) and the model of an answer rewritten back to the
 * alias.  Every result must also be valid JSON. */
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

int main(void)
{
    test_request();
    test_model_back();
    return tap_done();
}
