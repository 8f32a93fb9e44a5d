#include "models.h"

#include <string.h>
#include <time.h>

#include "json.h"
#include "keys.h"
#include "reply.h"
#include "util.h"

/* "created" of every alias: when the gateway first listed models, as
 * the reference reports it (aliases have no creation date of their own). */
static time_t created_at(void)
{
    static time_t t;
    if (!t)
        t = time(NULL);
    return t;
}

static void append_model(struct buf *b, const char *id)
{
    buf_append_str(b, "{\"id\":");
    json_append_str(b, id, strlen(id));
    buf_printf(b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"organization-owner\"}",
               (long long)created_at());
}

/* Anthropic's shape of a model: type, id, display_name, created_at. */
static void append_anthropic(struct buf *b, const char *id)
{
    char when[32];
    time_t t = created_at();
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    buf_append_str(b, "{\"type\":\"model\",\"id\":");
    json_append_str(b, id, strlen(id));
    buf_append_str(b, ",\"display_name\":");
    json_append_str(b, id, strlen(id));
    buf_printf(b, ",\"created_at\":\"%s\"}", when);
}

/* The Anthropic SDKs send anthropic-version: they get Anthropic's list of
 * the aliases /v1/messages serves. */
static bool anthropic(const struct request *r)
{
    return hp_find(r->hp.headers, r->hp.num_headers, "anthropic-version") != NULL;
}

/* A key with a models list sees only those aliases. */
static bool listed(const struct request *r, const char *alias)
{
    const struct principal *who = r->who;
    return !who || keys_allows(who, alias);
}

void models_list(struct conn *c, struct request *r, struct snapshot *s)
{
    bool an = anthropic(r);
    const struct alias_index *ix = &s->idx[an ? DIALECT_ANTHROPIC : DIALECT_OPENAI];
    struct buf b = BUF_INIT;
    const char *first = NULL, *last = NULL;
    buf_append_str(&b, an ? "{\"data\":[" : "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < ix->n; i++) {
        const char *name = ix->aliases[i].name;
        if (!listed(r, name))
            continue;
        if (first)
            buf_append(&b, ",", 1);
        if (!first)
            first = name;
        last = name;
        if (an)
            append_anthropic(&b, name);
        else
            append_model(&b, name);
    }
    if (an) {
        buf_append_str(&b, "],\"has_more\":false,\"first_id\":");
        if (first) {
            json_append_str(&b, first, strlen(first));
            buf_append_str(&b, ",\"last_id\":");
            json_append_str(&b, last, strlen(last));
        } else {
            buf_append_str(&b, "null,\"last_id\":null");
        }
        buf_append_str(&b, "}\n");
    } else {
        buf_append_str(&b, "]}\n");
    }
    reply_json(c, 200, &b, NULL);
    buf_free(&b);
}

void models_get(struct conn *c, struct request *r, struct snapshot *s)
{
    static const char prefix[] = "/v1/models/";
    char id[1024];
    size_t plen = sizeof prefix - 1;
    if (url_decode(r->path + plen, r->path_len - plen, id, sizeof id) < 0) {
        reply_error(c, 400, "invalid_request_error", NULL, "invalid model id in path");
        return;
    }
    bool an = anthropic(r);
    const struct alias_entry *a = snapshot_alias(s, an ? DIALECT_ANTHROPIC : DIALECT_OPENAI, id, strlen(id));
    if (!a || !listed(r, a->name)) {
        reply_api_error(c, an ? DIALECT_ANTHROPIC : DIALECT_OPENAI, 404, "not_found_error", "model_not_found",
                        "model %s not found", id);
        return;
    }
    struct buf b = BUF_INIT;
    if (an)
        append_anthropic(&b, a->name);
    else
        append_model(&b, a->name);
    buf_append(&b, "\n", 1);
    reply_json(c, 200, &b, NULL);
    buf_free(&b);
}

