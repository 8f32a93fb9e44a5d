/* auth: who is calling /v1, decided from the request head alone. */
#ifndef AUTOSWITCH_AUTH_H
#define AUTOSWITCH_AUTH_H

#include <stdbool.h>

#include "config.h"
#include "server.h"

/* "Authorization: Bearer <key>" against api_keys (open when the list is
 * empty), compared in constant time.  false after answering 401 in the
 * reference's words. */
bool auth_client(struct conn *c, const struct request *r, const struct config *cfg);

#endif
