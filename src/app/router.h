/* router: maps a complete request to its handler; client authentication. */
#ifndef AUTOSWITCH_ROUTER_H
#define AUTOSWITCH_ROUTER_H

#include <stdbool.h>

#include "server.h"
#include "snapshot.h"

void router_dispatch(struct conn *c, struct request *r);

/* /v1 auth: "Authorization: Bearer <key>" against api_keys (open when the
 * list is empty).  false after answering 401 in the reference's words. */
bool auth_client(struct conn *c, const struct request *r, const struct config *cfg);

/* Percent-decode src[0, n) into out (cap bytes, NUL-terminated).  -1 on a
 * bad escape, an encoded NUL, or when it does not fit. */
int url_decode(const char *src, size_t n, char *out, size_t cap);

/* Value of a query parameter (not decoded), or NULL. */
const char *query_param(const struct request *r, const char *name, size_t *len);

#endif
