#include "auth.h"

#include <stdio.h>
#include <string.h>

#include "accounting.h"
#include "apierr.h"
#include "counters.h"
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

static bool refused(struct conn *c, enum dialect d, enum key_refusal why, int64_t retry_ms)
{
    char hdr[64] = "";
    if (retry_ms > 0)
        snprintf(hdr, sizeof hdr, "Retry-After: %lld\r\n", (long long)((retry_ms + 999) / 1000));
    struct buf b = BUF_INIT;
    switch (why) {
    case KR_DISABLED: apierr_json(&b, d, 401, "invalid_api_key", "key_disabled", "this API key is disabled"); break;
    case KR_EXPIRED: apierr_json(&b, d, 401, "invalid_api_key", "key_expired", "this API key has expired"); break;
    case KR_TOKENS:
        apierr_json(&b, d, 429, "insufficient_quota", "insufficient_quota",
                    "this API key has used its daily_tokens; it may be used again after local midnight");
        break;
    case KR_RPM:
        apierr_json(&b, d, 429, "rate_limit_exceeded", "rate_limit_exceeded", "this API key is over its rpm limit");
        break;
    default:
        apierr_json(&b, d, 429, "rate_limit_exceeded", "rate_limit_exceeded",
                    "this API key has max_concurrent requests in flight");
        break;
    }
    buf_append(&b, "\n", 1);
    int status = why == KR_DISABLED || why == KR_EXPIRED ? 401 : 429;
    conn_respond(c, status, "application/json", hdr[0] ? hdr : NULL, buf_head(&b), buf_len(&b));
    buf_free(&b);
    return false;
}

bool auth_client(struct conn *c, const struct request *r, const struct snapshot *s, enum dialect d,
                 struct principal *who)
{
    const struct config *cfg = s->cfg;
    size_t klen = 0;
    const char *key = "";
    if ((cfg->n_keys || cfg->n_api_keys) && !(key = client_key(c, r, d, &klen)))
        return false;
    if (keys_identify(cfg, s->legacy, s->open, key, klen, who) < 0) {
        counters.invalid_keys++;
        if (d == DIALECT_ANTHROPIC)
            reply_api_error(c, d, 401, NULL, NULL, "invalid x-api-key");
        else
            reply_error(c, 401, "invalid_api_key", NULL, "Invalid API key");
        return false;
    }
    int64_t now = (int64_t)wall_ms(), retry_ms;
    enum key_refusal why = keys_admit(who, now, acct_today(now), &retry_ms);
    return why == KR__COUNT ? true : refused(c, d, why, retry_ms);
}
