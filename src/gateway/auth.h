/* auth: who is calling /v1, decided from the request head alone. */
#ifndef AUTOSWITCH_AUTH_H
#define AUTOSWITCH_AUTH_H

#include <stdbool.h>

#include "config.h"
#include "event.h"
#include "server.h"

/* The client key: "Authorization: Bearer <key>", or for the Anthropic
 * dialect also "x-api-key: <key>" (what the Anthropic SDKs send), against
 * api_keys (open when the list is empty), compared in constant time.
 * false after answering 401, in the reference's words for OpenAI routes
 * and in Anthropic's error shape for Anthropic ones. */
bool auth_client(struct conn *c, const struct request *r, const struct config *cfg, enum dialect d);

#endif
