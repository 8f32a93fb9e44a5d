#include "fwd.h"

#include <string.h>
#include <strings.h>

#include "util.h"

/* What an OpenAI-compatible upstream may need from the client.  Accept is
 * ours for streams (text/event-stream). */
static const char *const openai_allowed[] = {
    "accept", "user-agent", "openai-beta", "idempotency-key",
};

/* Anthropic's API: its version and beta flags. */
static const char *const anthropic_allowed[] = {
    "accept", "user-agent", "anthropic-version", "anthropic-beta", "idempotency-key",
};

/* The SDKs' own telemetry (X-Stainless-Lang, -Retry-Count, ...). */
#define SDK_PREFIX "x-stainless-"

static bool named(const struct hp_header *h, char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (hp_name_eq(h, names[i]))
            return true;
    return false;
}

static bool allowed(const struct hp_header *h, enum dialect d, const struct config *cfg,
                    const struct cfg_provider *prov)
{
    for (size_t i = 0; i < prov->n_headers; i++)
        if (hp_name_eq(h, prov->headers[i].name))
            return false;   /* the provider's fixed value wins */
    const char *const *list = d == DIALECT_ANTHROPIC ? anthropic_allowed : openai_allowed;
    size_t n = d == DIALECT_ANTHROPIC ? ARRAY_LEN(anthropic_allowed) : ARRAY_LEN(openai_allowed);
    for (size_t i = 0; i < n; i++)
        if (hp_name_eq(h, list[i]))
            return true;
    if (h->name_len > sizeof SDK_PREFIX - 1 && mem_ieq(h->name, sizeof SDK_PREFIX - 1, SDK_PREFIX))
        return true;
    return named(h, cfg->forward_headers, cfg->n_forward_headers) ||
           named(h, prov->forward_headers, prov->n_forward_headers);
}

/* RFC 9110 7.6.1: fields named in Connection are hop-by-hop. */
static bool hop_by_hop(const struct hp_header *h, const struct request *r)
{
    const struct hp_header *c = hp_find(r->hp.headers, r->hp.num_headers, "connection");
    char name[64];
    if (!c || h->name_len >= sizeof name)
        return false;
    memcpy(name, h->name, h->name_len);
    name[h->name_len] = '\0';
    return hp_has_token(c->value, c->value_len, name);
}

/* Fields the gateway writes itself, or that carry the framing: whatever
 * a config says, never the client's. */
static bool ours(const struct hp_header *h)
{
    static const char *const own[] = {
        "host", "content-length", "content-type", "transfer-encoding", "connection", "keep-alive", "te",
        "trailer", "upgrade", "expect", "authorization", "x-api-key", "api-key", "cookie", "proxy-authorization",
        "x-request-id",
    };
    for (size_t i = 0; i < ARRAY_LEN(own); i++)
        if (hp_name_eq(h, own[i]))
            return true;
    return false;
}

void fwd_headers(struct buf *out, const struct request *r, enum dialect d, const struct config *cfg,
                 const struct cfg_provider *prov, bool stream)
{
    bool version = false;
    for (size_t i = 0; i < r->hp.num_headers; i++) {
        const struct hp_header *h = &r->hp.headers[i];
        if (ours(h) || hop_by_hop(h, r) || !allowed(h, d, cfg, prov))
            continue;
        if (stream && hp_name_eq(h, "accept"))
            continue;   /* ours says text/event-stream */
        version |= hp_name_eq(h, "anthropic-version");
        buf_append(out, h->name, h->name_len);
        buf_append(out, ": ", 2);
        buf_append(out, h->value, h->value_len);
        buf_append(out, "\r\n", 2);
    }
    if (d == DIALECT_ANTHROPIC && !version)
        buf_append_str(out, "anthropic-version: " FWD_ANTHROPIC_VERSION "\r\n");
}
