/* apierr: error bodies in the client's API dialect (pure).
 *
 * OpenAI:    {"error":{"message":..,"type":..,"param":null,"code":..}}
 * Anthropic: {"type":"error","error":{"type":..,"message":..}}
 * Anthropic's error type follows the status (401 authentication_error,
 * 403 permission_error, 404 not_found_error, 413 request_too_large,
 * 429 rate_limit_error, 529 overloaded_error, other 4xx
 * invalid_request_error, 5xx api_error); for OpenAI the caller names it. */
#ifndef AUTOSWITCH_APIERR_H
#define AUTOSWITCH_APIERR_H

#include "buf.h"
#include "event.h"

/* Append the error object.  type: OpenAI's "type" (ignored for
 * Anthropic); code: OpenAI's "code" or NULL for null. */
void apierr_json(struct buf *out, enum dialect d, int status, const char *type, const char *code,
                 const char *message);
/* The same as one stream event ("data: ...\n\n", Anthropic "event: error\n"
 * first), for a stream that cannot go on. */
void apierr_event(struct buf *out, enum dialect d, const char *message);
const char *apierr_anthropic_type(int status);

#endif
