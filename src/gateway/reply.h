/* reply: the canned answers every handler shares. */
#ifndef AUTOSWITCH_REPLY_H
#define AUTOSWITCH_REPLY_H

#include "buf.h"
#include "event.h"
#include "server.h"

/* OpenAI-shaped error:
 * {"error":{"message":..,"type":..,"param":null,"code":..}}; code NULL -> null. */
void reply_error(struct conn *c, int status, const char *type, const char *code,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The same in the dialect of the route: Anthropic's shape
 * {"type":"error","error":{"type":..,"message":..}} for /v1/messages. */
void reply_api_error(struct conn *c, enum dialect d, int status, const char *type, const char *code,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Append the same error object to a buffer (for SSE error events). */
void reply_error_json(struct buf *out, const char *message, const char *type, const char *code);
void reply_json(struct conn *c, int status, const struct buf *body, const char *extra_headers);
/* Admin API envelope {"code":N,"message":..,"data":<data_json>} with HTTP
 * status N; data_json NULL -> []. */
void reply_envelope(struct conn *c, int status, const char *message, const struct buf *data_json,
                    const char *extra_headers);

#endif
