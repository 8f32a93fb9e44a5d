#include "admin.h"

#include <string.h>

#include "json.h"
#include "log.h"
#include "metrics.h"
#include "reply.h"
#include "util.h"

/* No CORS headers: the admin API is for the page served by this binary. */
#define ADMIN_HEADERS "Cache-Control: no-store\r\n"

static bool admin_enabled(struct conn *c, const struct config *cfg)
{
    if (cfg->admin_key && cfg->admin_key[0])
        return true;
    reply_envelope(c, 403, "admin API disabled: set admin_key in the config file to enable it", NULL,
                   ADMIN_HEADERS);
    return false;
}

static bool admin_key_ok(const struct config *cfg, const char *v, size_t n)
{
    return ct_equal(v, n, cfg->admin_key, strlen(cfg->admin_key));
}

/* X-API-Key: <admin_key>, as the reference's admin API. */
static bool admin_auth(struct conn *c, const struct request *r, const struct config *cfg)
{
    if (!admin_enabled(c, cfg))
        return false;
    const struct hp_header *h = hp_find(r->hp.headers, r->hp.num_headers, "x-api-key");
    if (h && admin_key_ok(cfg, h->value, h->value_len))
        return true;
    reply_envelope(c, 401, "unauthorized: send the admin key in X-API-Key", NULL, ADMIN_HEADERS);
    return false;
}

void admin_stats(struct conn *c, struct request *r, struct snapshot *s)
{
    if (!admin_auth(c, r, s->cfg))
        return;
    struct buf b = BUF_INIT;
    metrics_stats_json(&b, s);
    reply_json(c, 200, &b, ADMIN_HEADERS);
    buf_free(&b);
}

void admin_health(struct conn *c, struct request *r, struct snapshot *s)
{
    if (!admin_auth(c, r, s->cfg))
        return;
    struct buf b = BUF_INIT;
    metrics_providers_json(&b, s);
    reply_envelope(c, 200, "ok", &b, ADMIN_HEADERS);
    buf_free(&b);
}

void admin_metrics(struct conn *c, struct request *r, struct snapshot *s)
{
    const struct config *cfg = s->cfg;
    if (!cfg->admin_key || !cfg->admin_key[0]) {
        static const char msg[] = "metrics disabled: set admin_key in the config file to enable them\n";
        conn_respond(c, 403, "text/plain; charset=utf-8", NULL, msg, sizeof msg - 1);
        return;
    }
    const struct hp_header *h = hp_find(r->hp.headers, r->hp.num_headers, "authorization");
    if (!h || h->value_len < 7 || !mem_ieq(h->value, 7, "bearer ") ||
        !admin_key_ok(cfg, h->value + 7, h->value_len - 7)) {
        static const char msg[] = "unauthorized: send Authorization: Bearer <admin_key>\n";
        conn_respond(c, 401, "text/plain; charset=utf-8", "WWW-Authenticate: Bearer\r\n", msg, sizeof msg - 1);
        return;
    }
    struct buf b = BUF_INIT;
    metrics_prometheus(&b, s);
    conn_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", ADMIN_HEADERS, buf_head(&b), buf_len(&b));
    buf_free(&b);
}
