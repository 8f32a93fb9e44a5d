#include "auth.h"

#include <string.h>

#include "reply.h"
#include "util.h"

bool auth_client(struct conn *c, const struct request *r, const struct config *cfg)
{
    if (cfg->n_api_keys == 0)
        return true;
    const struct hp_header *h = hp_find(r->hp.headers, r->hp.num_headers, "authorization");
    if (!h || h->value_len == 0) {
        reply_error(c, 401, "invalid_request_error", NULL, "Missing Authorization header");
        return false;
    }
    /* As the reference: scheme, one space, key; scheme case-insensitive. */
    const char *sp = memchr(h->value, ' ', h->value_len);
    if (!sp || !mem_ieq(h->value, (size_t)(sp - h->value), "bearer")) {
        reply_error(c, 401, "invalid_request_error", NULL,
                    "Invalid Authorization header format. Expected: Bearer <api_key>");
        return false;
    }
    const char *key = sp + 1;
    size_t klen = h->value_len - (size_t)(key - h->value);
    while (klen && (*key == ' ' || *key == '\t')) {
        key++;
        klen--;
    }
    bool match = false;
    for (size_t i = 0; i < cfg->n_api_keys; i++)
        match |= ct_equal(key, klen, cfg->api_keys[i], strlen(cfg->api_keys[i]));
    if (!match) {
        reply_error(c, 401, "invalid_api_key", NULL, "Invalid API key");
        return false;
    }
    return true;
}
