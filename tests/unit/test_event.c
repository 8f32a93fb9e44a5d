/* Unit tests of event.c: what one streamed event says, in both dialects
 * (kind, content kinds, finish, usage, the spans the engine edits), token
 * counts of usage objects, and the judgement of whole answers. */
#include "event.h"
#include "tap.h"

#include <stdbool.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

enum { F_FINISH = 1, F_ROLE = 2, F_USAGE_ONLY = 4, F_OTHER_CHOICE = 8, F_START = 16, F_USAGE = 32, F_BLOCK = 64 };

struct ev_case {
    enum dialect d;
    const char *payload;
    enum ev_kind kind;
    unsigned content;
    unsigned flags;
    const char *text;     /* the text span's JSON string, or NULL */
    const char *msg;      /* EVK_ERROR */
};

#define OA DIALECT_OPENAI
#define AN DIALECT_ANTHROPIC

static const struct ev_case cases[] = {
    /* OpenAI chat */
    { OA, "[DONE]", EVK_DONE, 0, 0, NULL, NULL },
    { OA, "[DONE]  ", EVK_DONE, 0, 0, NULL, NULL },
    { OA, "{\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}", EVK_NEUTRAL, 0, F_ROLE, NULL, NULL },
    { OA, "{\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}", EVK_NEUTRAL, 0, F_ROLE, NULL, NULL },
    { OA, "{\"choices\":[],\"usage\":{\"total_tokens\":3}}", EVK_NEUTRAL, 0, F_USAGE_ONLY | F_USAGE, NULL, NULL },
    { OA, "{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}", EVK_CONTENT, EVC_TEXT, 0, "\"Hi\"", NULL },
    { OA, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0}]}}]}", EVK_CONTENT, EVC_OTHER, 0, NULL, NULL },
    { OA, "{\"choices\":[{\"delta\":{\"reasoning_content\":\"hm\"}}]}", EVK_CONTENT, EVC_REASONING, 0, NULL, NULL },
    { OA, "{\"choices\":[{\"delta\":{\"reasoning\":\"hm\",\"content\":\"a\"}}]}", EVK_CONTENT,
      EVC_REASONING | EVC_TEXT, 0, "\"a\"", NULL },
    { OA, "{\"choices\":[{\"delta\":{\"audio\":{\"data\":\"AAA\"}}}]}", EVK_CONTENT, EVC_OTHER, 0, NULL, NULL },
    { OA, "{\"choices\":[{\"text\":\"legacy\"}]}", EVK_CONTENT, EVC_TEXT, 0, "\"legacy\"", NULL },
    { OA, "{\"choices\":[{\"index\":1,\"delta\":{\"content\":\"b\"}}]}", EVK_CONTENT, EVC_TEXT, F_OTHER_CHOICE,
      "\"b\"", NULL },
    { OA, "{\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}", EVK_NEUTRAL, 0, F_FINISH, NULL, NULL },
    { OA, "{\"choices\":[{\"delta\":{\"content\":\"x\"},\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":1}}",
      EVK_CONTENT, EVC_TEXT, F_FINISH | F_USAGE, "\"x\"", NULL },
    { OA, "{\"choices\":[{\"delta\":{\"content\":null}}],\"error\":null}", EVK_NEUTRAL, 0, 0, NULL, NULL },
    { OA, "not json at all", EVK_CONTENT, EVC_OTHER, 0, NULL, NULL },
    { OA, "{\"error\":{\"message\":\"quota exceeded\",\"type\":\"x\"}}", EVK_ERROR, 0, 0, NULL, "quota exceeded" },
    { OA, "{\"error\":\"plain string\"}", EVK_ERROR, 0, 0, NULL, "plain string" },
    { OA, "{\"error\":{\"code\":42}}", EVK_ERROR, 0, 0, NULL, "{\"code\":42}" },
    /* OpenAI Responses API */
    { OA, "{\"type\":\"response.output_text.delta\",\"delta\":\"x\"}", EVK_CONTENT, EVC_TEXT, 0, "\"x\"", NULL },
    { OA, "{\"type\":\"response.reasoning_summary_text.delta\",\"delta\":\"x\"}", EVK_CONTENT, EVC_REASONING, 0,
      NULL, NULL },
    { OA, "{\"type\":\"response.function_call_arguments.delta\",\"delta\":\"{\"}", EVK_CONTENT, EVC_OTHER, 0, NULL,
      NULL },
    { OA, "{\"type\":\"response.created\",\"response\":{\"error\":null}}", EVK_NEUTRAL, 0, 0, NULL, NULL },
    { OA, "{\"type\":\"response.completed\",\"response\":{}}", EVK_NEUTRAL, 0, F_FINISH, NULL, NULL },
    { OA, "{\"type\":\"error\",\"message\":\"overloaded\"}", EVK_ERROR, 0, 0, NULL, "overloaded" },
    { OA, "{\"type\":\"response.failed\",\"response\":{\"error\":{\"message\":\"boom\"}}}", EVK_ERROR, 0, 0, NULL,
      "boom" },
    /* Anthropic Messages */
    { AN, "{\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":5}}}", EVK_NEUTRAL,
      0, F_START | F_USAGE, NULL, NULL },
    { AN, "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
      EVK_NEUTRAL, 0, F_BLOCK, NULL, NULL },
    { AN, "{\"type\":\"ping\"}", EVK_NEUTRAL, 0, 0, NULL, NULL },
    { AN, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}",
      EVK_CONTENT, EVC_TEXT, 0, "\"Hi\"", NULL },
    { AN, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"h\"}}",
      EVK_CONTENT, EVC_REASONING, 0, NULL, NULL },
    { AN, "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}",
      EVK_CONTENT, EVC_OTHER, 0, NULL, NULL },
    { AN, "{\"type\":\"content_block_stop\",\"index\":0}", EVK_NEUTRAL, 0, 0, NULL, NULL },
    { AN, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}",
      EVK_NEUTRAL, 0, F_FINISH | F_USAGE, NULL, NULL },
    { AN, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":null}}", EVK_NEUTRAL, 0, 0, NULL, NULL },
    { AN, "{\"type\":\"message_stop\"}", EVK_DONE, 0, 0, NULL, NULL },
    { AN, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}", EVK_ERROR, 0, 0,
      NULL, "Overloaded" },
    { AN, "[DONE]", EVK_CONTENT, EVC_OTHER, 0, NULL, NULL },   /* not an Anthropic marker: not ours to judge */
};

static void test_read(void)
{
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const struct ev_case *c = &cases[i];
        struct ev_info ev;
        event_read(c->d, c->payload, strlen(c->payload), &ev);
        const char *name = c->d == OA ? "openai" : "anthropic";
        is_int(ev.kind, c->kind, "%s: kind of %s", name, c->payload);
        is_int(ev.content, c->content, "... its content kinds");
        unsigned flags = (ev.finish ? F_FINISH : 0) | (ev.role_only ? F_ROLE : 0) |
                         (ev.usage_only ? F_USAGE_ONLY : 0) | (ev.other_choice ? F_OTHER_CHOICE : 0) |
                         (ev.message_start ? F_START : 0) | (ev.usage.type == JSON_OBJECT ? F_USAGE : 0) |
                         (ev.block_start ? F_BLOCK : 0);
        is_int(flags, c->flags, "... its flags");
        if (c->text)
            is_mem(c->payload + ev.text.start, ev.text.end - ev.text.start, c->text, "... its text span");
        if (c->msg)
            is_str(ev.msg, c->msg, "... its message");
    }
}

static void test_usage(void)
{
    const char *o = "{\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15,"
                    "\"prompt_tokens_details\":{\"cached_tokens\":2}}}";
    struct ev_info ev;
    event_read(OA, o, strlen(o), &ev);
    struct tokens t = { 0, 0, 0, 0 };
    event_usage(OA, o, ev.usage, &t);
    is_int(t.prompt, 10, "openai prompt_tokens");
    is_int(t.completion, 5, "openai completion_tokens");
    is_int(t.cached, 2, "openai cached_tokens");
    is_int(t.total, 15, "openai total_tokens");

    const char *no_total = "{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}";
    event_read(OA, no_total, strlen(no_total), &ev);
    memset(&t, 0, sizeof t);
    event_usage(OA, no_total, ev.usage, &t);
    is_int(t.total, 7, "a missing total is prompt + completion");

    /* Anthropic: input (with its cached parts) from message_start, output
     * from message_delta; the two add up. */
    const char *start = "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5,"
                        "\"cache_creation_input_tokens\":3,\"cache_read_input_tokens\":4,\"output_tokens\":1}}}";
    const char *delta = "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}";
    memset(&t, 0, sizeof t);
    event_read(AN, start, strlen(start), &ev);
    event_usage(AN, start, ev.usage, &t);
    event_read(AN, delta, strlen(delta), &ev);
    event_usage(AN, delta, ev.usage, &t);
    is_int(t.prompt, 12, "anthropic prompt = input + cache creation + cache read");
    is_int(t.cached, 4, "anthropic cached = cache read");
    is_int(t.completion, 9, "anthropic completion = the last output_tokens");
    is_int(t.total, 21, "anthropic total");

    const char *bad = "{\"usage\":{\"prompt_tokens\":-3,\"completion_tokens\":\"x\",\"total_tokens\":1e3}}";
    event_read(OA, bad, strlen(bad), &ev);
    memset(&t, 0, sizeof t);
    event_usage(OA, bad, ev.usage, &t);
    is_int(t.prompt + t.completion, 0, "negative, string or fractional counts are ignored");
}

static void test_answers(void)
{
    struct { const char *body; bool want; const char *msg; } cases2[] = {
        { "{\"error\":{\"message\":\"model overloaded\",\"type\":\"server_error\"}}", true, "model overloaded" },
        { "{\"error\":\"busy\"}", true, "busy" },
        { "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"anthropic\"}}", true, "anthropic" },
        { "{\"id\":\"resp_1\",\"status\":\"completed\",\"error\":null,\"output\":[]}", false, NULL },
        { "{\"choices\":[{\"message\":{\"content\":\"the \\\"error\\\": key\"}}]}", false, NULL },
        { "{\"choices\":[{\"message\":{\"content\":\"x\",\"error\":{\"m\":1}}}]}", false, NULL },
        { "[{\"error\":\"not at the top\"}]", false, NULL },
        { "{\"error\":{\"message\":", false, NULL },
        { "", false, NULL },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases2); i++) {
        char msg[64] = "unset";
        bool got = answer_has_error(cases2[i].body, strlen(cases2[i].body), msg, sizeof msg);
        ok(got == cases2[i].want, "answer_has_error(%s) is %s", cases2[i].body, cases2[i].want ? "true" : "false");
        if (cases2[i].msg)
            is_str(msg, cases2[i].msg, "... its message");
    }
    char small[8];
    const char *long_msg = "{\"error\":\"a long message\"}";
    answer_has_error(long_msg, strlen(long_msg), small, sizeof small);
    is_str(small, "a long ", "an error message is cut to the caller's room");

    char m[64];
    answer_error_message("{\"message\":\"flat\"}", 18, m, sizeof m);
    is_str(m, "flat", "answer_error_message: a top-level message");
    answer_error_message("Bad\nGateway", 11, m, sizeof m);
    is_str(m, "Bad Gateway", "answer_error_message: text that is not JSON, control bytes blanked");
    answer_error_message("", 0, m, sizeof m);
    is_str(m, "", "answer_error_message: nothing");
}

int main(void)
{
    test_read();
    test_usage();
    test_answers();
    return tap_done();
}
