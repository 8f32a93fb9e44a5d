#include "models.h"

#include <string.h>
#include <time.h>

#include "json.h"
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

void models_list(struct conn *c, struct request *r, struct snapshot *s)
{
    (void)r;
    struct buf b = BUF_INIT;
    buf_append_str(&b, "{\"object\":\"list\",\"data\":[");
    const struct alias_index *ix = &s->idx[DIALECT_OPENAI];
    for (size_t i = 0; i < ix->n; i++) {
        if (i)
            buf_append(&b, ",", 1);
        append_model(&b, ix->aliases[i].name);
    }
    buf_append_str(&b, "]}\n");
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
    const struct alias_entry *a = snapshot_alias(s, DIALECT_OPENAI, id, strlen(id));
    if (!a) {
        reply_error(c, 404, "not_found_error", "model_not_found", "model %s not found", id);
        return;
    }
    struct buf b = BUF_INIT;
    append_model(&b, a->name);
    buf_append(&b, "\n", 1);
    reply_json(c, 200, &b, NULL);
    buf_free(&b);
}

