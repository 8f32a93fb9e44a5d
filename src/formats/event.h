/* event: what one streamed event of an upstream's answer says, in either
 * API dialect (pure; no I/O, no allocation).
 *
 * OpenAI streams are "data: <json>" lines (chat and legacy completions
 * carry choices[], the Responses API names its events in "type"), ending
 * with "data: [DONE]".  Anthropic's Messages API sends "event: <type>" +
 * "data: <json>" pairs, the json carrying the same "type"
 * (message_start, content_block_start / _delta / _stop, ping,
 * message_delta, message_stop, error).  The attempt engine reads every
 * data payload through event_read(), which tells content from
 * preliminaries, errors from answers, and where the answer's text,
 * finish and usage are, as spans of the payload. */
#ifndef AUTOSWITCH_EVENT_H
#define AUTOSWITCH_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"

/* The API dialect a route speaks, to clients and upstreams alike. */
enum dialect { DIALECT_OPENAI, DIALECT_ANTHROPIC };

enum ev_kind {
    EVK_NEUTRAL,    /* data without content: role-only delta, usage chunk, message_start, ping... */
    EVK_CONTENT,    /* real content: text, reasoning, tool calls, audio; or data we cannot judge */
    EVK_DONE,       /* OpenAI data: [DONE]; Anthropic message_stop */
    EVK_ERROR,      /* an error object or string (the message is in ev_info.msg) */
};

/* Kinds of content, as bits: only plain text can be continued elsewhere. */
#define EVC_TEXT 1u         /* text the client reads (delta.content, text_delta, output_text) */
#define EVC_REASONING 2u    /* reasoning / thinking */
#define EVC_OTHER 4u        /* tool calls, audio, refusals, anything else */

#define EV_MSG_MAX 200

struct ev_info {
    enum ev_kind kind;
    unsigned content;           /* EVC_* bits of an EVK_CONTENT event */
    bool finish;                /* the answer says it is complete (finish_reason, stop_reason,
                                   response.completed) */
    bool role_only;             /* OpenAI: a delta with a role and nothing else */
    bool usage_only;            /* OpenAI: "choices": [] with a usage object */
    bool other_choice;          /* OpenAI: a choice index other than 0 (n > 1) */
    bool message_start;         /* Anthropic: message_start (carries message.model) */
    bool block_start;           /* Anthropic: content_block_start */
    struct json_val root;       /* the payload's top-level object (JSON_INVALID when none) */
    struct json_val text;       /* EVC_TEXT: the JSON string of the text delta */
    struct json_val usage;      /* a usage object (JSON_INVALID when none or null) */
    struct json_val model;      /* the top-level "model" (JSON_INVALID when none) */
    char msg[EV_MSG_MAX];       /* EVK_ERROR: the message */
};

/* Read one data payload (after "data:" and its optional space). */
void event_read(enum dialect d, const char *payload, size_t n, struct ev_info *out);

/* Token counts of a usage object (missing fields count 0).  OpenAI:
 * prompt_tokens, completion_tokens, total_tokens,
 * prompt_tokens_details.cached_tokens.  Anthropic: prompt = input_tokens +
 * cache_creation_input_tokens + cache_read_input_tokens (Anthropic counts
 * cached input apart), cached = cache_read_input_tokens, completion =
 * output_tokens.  Fields absent from this object are left as they were,
 * so the counts of several events (message_start, message_delta) add up. */
struct tokens {
    uint64_t prompt;
    uint64_t completion;
    uint64_t cached;
    uint64_t total;       /* prompt + completion when the object has none */
};
void event_usage(enum dialect d, const char *payload, struct json_val usage, struct tokens *t);

/* Whether a whole non-stream answer is a JSON object whose "error" member
 * is not null (some providers answer a failure with status 200, and
 * Anthropic's error shape has one too); msg (cap bytes) gets the message. */
bool answer_has_error(const char *s, size_t n, char *msg, size_t cap);

/* The message of an upstream's error answer (OpenAI's and Anthropic's
 * {"error":{"message":..}}, {"error":"..."}, {"message":".."}), or the
 * start of the text when it is not JSON; "" when there is nothing. */
void answer_error_message(const char *s, size_t n, char *msg, size_t cap);

#endif
