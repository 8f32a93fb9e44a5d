#include "keys.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static struct key_state *states;

static const char *const refusal_names[KR__COUNT] = {
    [KR_INVALID] = "invalid", [KR_EXPIRED] = "expired", [KR_DISABLED] = "disabled", [KR_RPM] = "rpm",
    [KR_CONCURRENT] = "concurrent", [KR_TOKENS] = "daily_tokens", [KR_MODEL] = "model",
};

const char *key_refusal_name(enum key_refusal r)
{
    return r < KR__COUNT ? refusal_names[r] : "?";
}

struct key_state *key_states(void)
{
    return states;
}

struct key_state *key_state_get(const char *name)
{
    for (struct key_state *k = states; k; k = k->next)
        if (strcmp(k->name, name) == 0) {
            k->refs++;
            return k;
        }
    struct key_state *k = calloc(1, sizeof *k);
    if (!k || !(k->name = strdup(name))) {
        free(k);
        return NULL;
    }
    k->refs = 1;
    k->next = states;
    states = k;
    return k;
}

void key_state_put(struct key_state *ks)
{
    if (!ks || --ks->refs)
        return;
    for (struct key_state **pp = &states; *pp; pp = &(*pp)->next)
        if (*pp == ks) {
            *pp = ks->next;
            break;
        }
    free(ks->name);
    free(ks);
}

/* Every key is compared, matched or not, so the time taken says nothing
 * about which key (or how much of one) was right. */
int keys_identify(const struct config *cfg, struct key_state *const *legacy, struct key_state *open, const char *t,
                  size_t n, struct principal *who)
{
    memset(who, 0, sizeof *who);
    if (!cfg->n_keys && !cfg->n_api_keys) {
        who->name = KEY_OPEN_NAME;
        who->state = open;
        return 0;
    }
    /* A key the file gives as text is compared as text; the token is
     * hashed only when some key is given by its SHA-256 alone (a hash per
     * request is most of what a named key costs). */
    int found = -1;
    bool by_digest = false;
    for (size_t i = 0; i < cfg->n_keys; i++) {
        const struct cfg_client_key *k = &cfg->keys[i];
        if (!k->key)
            by_digest = true;
        else if (ct_equal(t, n, k->key, strlen(k->key)))
            found = (int)i;
    }
    if (by_digest) {
        uint8_t digest[32];
        sha256(t, n, digest);
        for (size_t i = 0; i < cfg->n_keys; i++)
            if (!cfg->keys[i].key &&
                ct_equal((const char *)digest, sizeof digest, (const char *)cfg->keys[i].digest, sizeof digest))
                found = (int)i;
    }
    if (found >= 0) {
        who->key = &cfg->keys[found];
        who->name = who->key->name;
        who->state = who->key->state;
        return 0;
    }
    for (size_t i = 0; i < cfg->n_api_keys; i++)
        if (ct_equal(t, n, cfg->api_keys[i], strlen(cfg->api_keys[i])))
            found = (int)i;
    if (found < 0)
        return -1;
    who->state = legacy ? legacy[found] : NULL;
    who->name = who->state ? who->state->name : "api_keys";
    return 0;
}

static struct limit_cfg limits_of(const struct cfg_client_key *k)
{
    struct limit_cfg l = { 0, 0, 0 };
    if (k) {
        l.rpm = (uint32_t)k->rpm;
        l.max_concurrent = (uint32_t)k->max_concurrent;
        l.daily_tokens = k->daily_tokens;
    }
    return l;
}

static enum key_refusal refuse(struct principal *who, enum key_refusal r)
{
    if (who->state)
        who->state->refused[r]++;
    return r;
}

enum key_refusal keys_admit(struct principal *who, int64_t now_ms, const struct limit_day *day, int64_t *retry_ms)
{
    const struct cfg_client_key *k = who->key;
    *retry_ms = 0;
    if (k && k->disabled)
        return refuse(who, KR_DISABLED);
    if (k && k->expires_day >= 0 && day->day >= k->expires_day)
        return refuse(who, KR_EXPIRED);
    if (!who->state)
        return KR__COUNT;   /* no state (out of memory): no limits either */
    struct limit_cfg l = limits_of(k);
    struct limit_state *st = &who->state->lim;
    if (limit_tokens_check(&l, st, day->day) < 0) {
        *retry_ms = day->end_ms - now_ms;
        return refuse(who, KR_TOKENS);
    }
    if (limit_rpm_check(&l, st, now_ms, retry_ms) < 0)
        return refuse(who, KR_RPM);
    if (limit_acquire(&l, st) < 0) {
        *retry_ms = LIMIT_CONCURRENCY_RETRY_MS;
        return refuse(who, KR_CONCURRENT);
    }
    who->holds_slot = true;
    return KR__COUNT;
}

bool keys_glob(const char *p, const char *s)
{
    /* Iterative *-matching with one backtrack point: linear in practice. */
    const char *star = NULL, *mark = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            mark = s;
        } else if (*p == *s) {
            p++;
            s++;
        } else if (star) {
            p = star + 1;
            s = ++mark;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return !*p;
}

bool keys_allows(const struct principal *who, const char *alias)
{
    const struct cfg_client_key *k = who->key;
    if (!k || !k->n_models)
        return true;
    for (size_t i = 0; i < k->n_models; i++)
        if (keys_glob(k->models[i], alias))
            return true;
    return false;
}

void keys_refused(struct principal *who, enum key_refusal r)
{
    refuse(who, r);
}

void keys_count(struct principal *who, int64_t now_ms)
{
    if (who->state)
        limit_rpm_record(&who->state->lim, now_ms);
}

void keys_done(struct principal *who, int status)
{
    if (!who->state)
        return;
    if (who->holds_slot)
        limit_release(&who->state->lim);
    who->holds_slot = false;
    int cls = status >= 100 && status < 600 ? status / 100 : 0;
    who->state->by_class[cls]++;
}
