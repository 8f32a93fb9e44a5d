#include "upreq.h"

#include <stdbool.h>
#include <string.h>

int upreq_head(struct buf *out, const struct upreq *r)
{
    const struct cfg_provider *p = r->prov;
    const struct cfg_url *url = cfg_provider_url(p, r->dialect);
    int rc = 0;
    if (!url)
        return -1;
    rc |= buf_append_str(out, r->method);
    rc |= buf_append(out, " ", 1);
    rc |= buf_append_str(out, url->prefix);
    rc |= buf_append_str(out, r->path);
    if (r->query && r->query_len)
        rc |= buf_append(out, r->query, r->query_len);
    rc |= buf_append_str(out, " HTTP/1.1\r\nHost: ");
    rc |= buf_append_str(out, url->authority);
    rc |= buf_append(out, "\r\n", 2);
    if (p->api_key && p->api_key[0]) {
        /* Anthropic's API takes its key in x-api-key; compatible
         * upstreams may want a bearer token (anthropic_auth). */
        bool x_api_key = r->dialect == DIALECT_ANTHROPIC && p->anthropic_auth == CFG_AUTH_X_API_KEY;
        rc |= buf_append_str(out, x_api_key ? "x-api-key: " : "Authorization: Bearer ");
        rc |= buf_append_str(out, p->api_key);
        rc |= buf_append(out, "\r\n", 2);
    }
    for (size_t i = 0; i < p->n_headers; i++) {
        rc |= buf_append_str(out, p->headers[i].name);
        rc |= buf_append(out, ": ", 2);
        rc |= buf_append_str(out, p->headers[i].value);
        rc |= buf_append(out, "\r\n", 2);
    }
    if (r->user_agent) {
        rc |= buf_append_str(out, "User-Agent: ");
        rc |= buf_append_str(out, r->user_agent);
        rc |= buf_append(out, "\r\n", 2);
    }
    if (r->accept) {
        rc |= buf_append_str(out, "Accept: ");
        rc |= buf_append_str(out, r->accept);
        rc |= buf_append(out, "\r\n", 2);
    }
    if (r->reqid) {
        rc |= buf_append_str(out, "X-Request-Id: ");
        rc |= buf_append_str(out, r->reqid);
        rc |= buf_append(out, "\r\n", 2);
    }
    if (r->extra_len)
        rc |= buf_append(out, r->extra, r->extra_len);
    if (r->ctype) {
        rc |= buf_append_str(out, "Content-Type: ");
        rc |= buf_append_str(out, r->ctype);
        rc |= buf_append_str(out, "\r\nContent-Length: ");
        rc |= buf_append_u64(out, r->body_len);
        rc |= buf_append(out, "\r\n", 2);
    }
    rc |= buf_append(out, "\r\n", 2);
    return rc < 0 || buf_failed(out) ? -1 : 0;
}
