/* auth: who is calling /v1, decided from the request head alone. */
#ifndef AUTOSWITCH_AUTH_H
#define AUTOSWITCH_AUTH_H

#include <stdbool.h>

#include "config.h"
#include "keys.h"
#include "snapshot.h"
#include "event.h"
#include "server.h"

/* Who calls, from the head alone: the key ("Authorization: Bearer <key>",
 * or for the Anthropic dialect also "x-api-key: <key>", what the Anthropic
 * SDKs send) against the named keys and api_keys (open when there are
 * none), compared in constant time; then the limits the head decides:
 * disabled, expired (401), daily tokens used up, rpm, concurrency (429
 * with Retry-After).  false after answering, in the reference's words for
 * OpenAI routes and in Anthropic's shape for Anthropic ones.  On true,
 * *who holds an in-flight slot until keys_done(). */
bool auth_client(struct conn *c, const struct request *r, const struct snapshot *s, enum dialect d,
                 struct principal *who);

#endif
