/* rewrite: span edits on JSON bodies.  Untouched bytes stay identical:
 * key order, number spelling, whitespace, escapes. */
#ifndef AUTOSWITCH_REWRITE_H
#define AUTOSWITCH_REWRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "json.h"

/* The outgoing request body for one upstream: the top-level "model" value
 * becomes `model`; top-level keys named in exclude[] are removed, and so
 * are top-level keys whose value is null or the string "[undefined]" (as
 * the reference does).  root must be the parsed top-level object of
 * body.  0, or -1 when out of memory. */
int rewrite_request(const char *body, struct json_val root, const char *model, char *const *exclude,
                    size_t n_exclude, struct buf *out);

/* Replace the value of the top-level "model" of the JSON object text with
 * the string alias.  Appends the result to out and returns 1 when text
 * had such a key (even if equal), 0 when it is not a JSON object with a
 * string "model" (out untouched), -1 when out of memory. */
int rewrite_model(const char *text, size_t n, const char *alias, struct buf *out);

/* How a continuation hands the text already sent to the next candidate. */
enum prefill_kind {
    PREFILL_PLAIN,            /* a final {"role":"assistant","content":text} message */
    PREFILL_PREFIX,           /* ... with "prefix": true (DeepSeek, Mistral) */
    PREFILL_CONTINUE_FINAL,   /* ... and "continue_final_message": true, "add_generation_prompt": false (vLLM) */
};

/* The continuation request: body (a JSON object with a "messages" array,
 * already rewritten for the candidate) with the assistant message
 * appended, text[0, n) without its trailing whitespace.  0, or -1 when the
 * body has no messages array or out of memory. */
int rewrite_prefill(const char *body, size_t len, const char *text, size_t n, enum prefill_kind kind,
                    struct buf *out);

/* A stream request that also asks for usage: body (a JSON object) with
 * "stream_options": {"include_usage": true}, whatever stream_options held
 * before (absent, null, an object without it or with false).  0, or -1
 * when body is not an object or out of memory. */
int rewrite_include_usage(const char *body, size_t len, struct buf *out);

/* One replacement: text[start, end) becomes with[0, len). */
struct span_edit {
    size_t start;
    size_t end;
    const char *with;
    size_t len;
};

/* Append text[0, n) to out with the edits applied.  The edits must not
 * overlap; they are sorted here by start.  0, or -1 when out of memory. */
int rewrite_spans(const char *text, size_t n, struct span_edit *edits, size_t k, struct buf *out);

#endif
