/* upreq: the head of a request to an upstream provider (pure).
 *
 * One place decides what goes on the wire to a provider: the request
 * line with the provider's path prefix and the client's query string, Host, the
 * provider's credential, Content-Type / Content-Length, the request id,
 * and the client header lines the caller chose to forward.  The proxy and
 * the recovery probes both build their requests here. */
#ifndef AUTOSWITCH_UPREQ_H
#define AUTOSWITCH_UPREQ_H

#include <stddef.h>

#include "buf.h"
#include "config.h"
#include "event.h"

struct upreq {
    const char *method;           /* "POST", "GET" */
    const struct cfg_provider *prov;
    enum dialect dialect;         /* which base URL and credential */
    const char *path;             /* "/v1/chat/completions" */
    const char *query;            /* "?api-version=..." as the client sent it, or NULL */
    size_t query_len;
    const char *ctype;            /* NULL: no body */
    size_t body_len;
    const char *accept;           /* NULL: none */
    const char *reqid;            /* X-Request-Id, or NULL */
    const char *user_agent;       /* NULL: none (the client's, when forwarded, is in extra) */
    const char *extra;            /* "Name: value\r\n" lines, or NULL */
    size_t extra_len;
};

/* Append the head (ending with the blank line) to out.  0, or -1 when out
 * of memory (out then holds a partial head: discard it). */
int upreq_head(struct buf *out, const struct upreq *r);

#endif
