#include "auth.h"

#include <string.h>

#include "reply.h"
#include "util.h"

/* The key the client sent, or NULL after answering why it is unreadable. */
static const char *client_key(struct conn *c, const struct request *r, enum dialect d, size_t *klen)
{
    const struct hp_header *h;
    if (d == DIALECT_ANTHROPIC && (h = hp_find(r->hp.headers, r->hp.num_headers, "x-api-key")) && h->value_len) {
        *klen = h->value_len;
        return h->value;
    }
    h = hp_find(r->hp.headers, r->hp.num_headers, "authorization");
    if (!h || h->value_len == 0) {
        if (d == DIALECT_ANTHROPIC)
            reply_api_error(c, d, 401, NULL, NULL, "x-api-key header is required");
        else
            reply_error(c, 401, "invalid_request_error", NULL, "Missing Authorization header");
        return NULL;
    }
    /* As the reference: scheme, one space, key; scheme case-insensitive. */
    const char *sp = memchr(h->value, ' ', h->value_len);
    if (!sp || !mem_ieq(h->value, (size_t)(sp - h->value), "bearer")) {
        reply_api_error(c, d, 401, "invalid_request_error", NULL,
                        "Invalid Authorization header format. Expected: Bearer <api_key>");
        return NULL;
    }
    const char *key = sp + 1;
    *klen = h->value_len - (size_t)(key - h->value);
    while (*klen && (*key == ' ' || *key == '\t')) {
        key++;
        (*klen)--;
    }
    return key;
}

bool auth_client(struct conn *c, const struct request *r, const struct config *cfg, enum dialect d)
{
    if (cfg->n_api_keys == 0)
        return true;
    size_t klen;
    const char *key = client_key(c, r, d, &klen);
    if (!key)
        return false;
    bool match = false;
    for (size_t i = 0; i < cfg->n_api_keys; i++)
        match |= ct_equal(key, klen, cfg->api_keys[i], strlen(cfg->api_keys[i]));
    if (!match) {
        if (d == DIALECT_ANTHROPIC)
            reply_api_error(c, d, 401, NULL, NULL, "invalid x-api-key");
        else
            reply_error(c, 401, "invalid_api_key", NULL, "Invalid API key");
        return false;
    }
    return true;
}
