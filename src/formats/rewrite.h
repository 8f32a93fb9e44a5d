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

#endif
