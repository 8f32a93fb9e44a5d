#include "probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "health.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "snapshot.h"
#include "util.h"

enum step { STEP_MODELS, STEP_WORK };

struct probe {
    struct health_entry *h;
    struct snapshot *snap;              /* pinned while the probe runs */
    const struct cfg_provider *prov;
    const struct cfg_mapping *map;
    enum step step;
    struct upstream *up;
    struct loop_timer timeout;
    int status;
    uint64_t started;
};

static void probe_run(void *ctx);
static void probe_step(struct probe *p);

static const char *kind_name(enum cfg_probe k)
{
    switch (k) {
    case CFG_PROBE_CHAT: return "chat";
    case CFG_PROBE_EMBEDDINGS: return "embeddings";
    case CFG_PROBE_MODELS: return "models";
    default: return "none";
    }
}

static uint64_t period_ms(void)
{
    struct snapshot *s = snapshot_current();
    return s ? (uint64_t)s->cfg->health_check_period * 1000u : 60000u;
}

void probe_schedule(struct health_entry *h, uint64_t delay_ms)
{
    loop_timer_init(&h->probe_timer, probe_run, h);
    loop_timer_set(&h->probe_timer, delay_ms);
    h->probe_gap_ms = delay_ms;
    h->next_probe_wall = wall_ms() + delay_ms;
}

static void probe_free(struct probe *p)
{
    loop_timer_stop(&p->timeout);
    if (p->up)
        up_abort(p->up);
    snapshot_unref(p->snap);
    free(p);
}

void probe_cancel(struct health_entry *h)
{
    loop_timer_stop(&h->probe_timer);
    h->next_probe_wall = 0;
    if (h->probe) {
        struct probe *p = h->probe;
        h->probe = NULL;
        probe_free(p);
    }
}

/* The probe is over: recovered, or schedule the next with a longer gap. */
static void probe_end(struct probe *p, bool ok, const char *what)
{
    struct health_entry *h = p->h;
    h->probe = NULL;
    uint64_t took = loop_clock() - p->started;
    if (ok) {
        char how[160];
        snprintf(how, sizeof how, "probe (%s) %s in %llums", kind_name(p->map->probe), what,
                 (unsigned long long)took);
        health_recovered(h, how);
    } else if (!h->healthy) {
        uint64_t gap = h->probe_gap_ms * 2;
        if (gap > period_ms())
            gap = period_ms();
        if (gap == 0)
            gap = 1000;
        log_warn("health: probe of %s/%s (%s) failed: %s; next in %llus", h->provider, h->upstream,
                 kind_name(p->map->probe), what, (unsigned long long)(gap / 1000));
        probe_schedule(h, gap);
    }
    probe_free(p);
}

static int on_head(void *ctx, const struct hp_response *res)
{
    struct probe *p = ctx;
    p->status = res->status;
    return 0;
}

static int on_body(void *ctx, const char *d, size_t n)
{
    (void)ctx;
    (void)d;
    (void)n;
    return 0;   /* the status says it all */
}

static void on_done(void *ctx)
{
    struct probe *p = ctx;
    p->up = NULL;
    char what[96];
    if (p->step == STEP_MODELS) {
        if (p->status != 200) {
            snprintf(what, sizeof what, "GET /v1/models answered %d", p->status);
            probe_end(p, false, what);
            return;
        }
        if (p->map->probe == CFG_PROBE_MODELS) {
            probe_end(p, true, "GET /v1/models answered 200");
            return;
        }
        p->step = STEP_WORK;
        probe_step(p);
        return;
    }
    /* 400 still proves the model is served: the request shape may simply
     * not suit it (as the reference judges). */
    bool ok = p->status == 200 || p->status == 400;
    snprintf(what, sizeof what, "%s answered %d", p->map->probe == CFG_PROBE_EMBEDDINGS ? "embeddings" : "chat",
             p->status);
    probe_end(p, ok, what);
}

static void on_fail(void *ctx, const char *reason, bool got_head)
{
    (void)got_head;
    struct probe *p = ctx;
    p->up = NULL;
    probe_end(p, false, reason);
}

static const struct up_callbacks probe_cbs = { on_head, on_body, on_done, on_fail };

static void on_timeout(void *ctx)
{
    struct probe *p = ctx;
    char what[64];
    snprintf(what, sizeof what, "timed out after %ds", p->snap->cfg->probe_timeout);
    probe_end(p, false, what);
}

static void probe_step(struct probe *p)
{
    const struct cfg_provider *prov = p->prov;
    struct up_request rq = { .url = &prov->url, .ca_file = prov->ca_file ? prov->ca_file : p->snap->cfg->ca_file };
    struct buf body = BUF_INIT;
    const char *path = "/v1/models";
    if (p->step == STEP_WORK) {
        bool emb = p->map->probe == CFG_PROBE_EMBEDDINGS;
        path = emb ? "/v1/embeddings" : "/v1/chat/completions";
        buf_append_str(&body, "{\"model\":");
        json_append_str(&body, p->map->upstream, strlen(p->map->upstream));
        buf_append_str(&body, emb ? ",\"input\":\"hi\"}"
                                  : ",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":1,\"stream\":false}");
    }
    struct buf *d = &rq.data;
    buf_printf(d, "%s %s%s HTTP/1.1\r\nHost: %s\r\n", p->step == STEP_WORK ? "POST" : "GET", prov->url.prefix,
               path, prov->url.authority);
    if (prov->api_key && prov->api_key[0])
        buf_printf(d, "Authorization: Bearer %s\r\n", prov->api_key);
    buf_append_str(d, "User-Agent: autoswitch-probe\r\n");
    if (buf_len(&body))
        buf_printf(d, "Content-Type: application/json\r\nContent-Length: %zu\r\n", buf_len(&body));
    buf_append_str(d, "\r\n");
    buf_append(d, buf_head(&body), buf_len(&body));
    buf_free(&body);
    p->status = 0;
    p->up = up_start(&rq, &probe_cbs, p);
    buf_free(&rq.data);
    if (!p->up)
        probe_end(p, false, "out of memory");
}

/* Find the mapping of h in the current config: the probe uses what the
 * config says now, not what it said when the model failed. */
static bool find_mapping(struct snapshot *s, struct health_entry *h, const struct cfg_provider **prov,
                         const struct cfg_mapping **map)
{
    for (size_t i = 0; i < s->cfg->n_providers; i++) {
        const struct cfg_provider *pr = &s->cfg->providers[i];
        for (size_t m = 0; m < pr->n_mappings; m++) {
            if (pr->mappings[m].health == h) {
                *prov = pr;
                *map = &pr->mappings[m];
                return true;
            }
        }
    }
    return false;
}

static void probe_run(void *ctx)
{
    struct health_entry *h = ctx;
    h->next_probe_wall = 0;
    struct snapshot *s = snapshot_current();
    if (h->healthy || h->probe || !s)
        return;
    const struct cfg_provider *prov;
    const struct cfg_mapping *map;
    if (!find_mapping(s, h, &prov, &map))
        return;   /* removed from the config: nothing to bring back */
    metrics.probes++;
    h->probes++;
    if (map->probe == CFG_PROBE_NONE) {
        health_recovered(h, "probe none: back in rotation after the wait");
        return;
    }
    struct probe *p = calloc(1, sizeof *p);
    if (!p) {
        probe_schedule(h, h->probe_gap_ms ? h->probe_gap_ms : 1000);
        return;
    }
    p->h = h;
    p->snap = snapshot_ref(s);
    p->prov = prov;
    p->map = map;
    p->started = loop_clock();
    h->probe = p;
    log_info("health: probing %s/%s (%s, attempt %u)", h->provider, h->upstream, kind_name(map->probe), h->probes);
    loop_timer_init(&p->timeout, on_timeout, p);
    loop_timer_set(&p->timeout, (uint64_t)s->cfg->probe_timeout * 1000u);
    p->step = STEP_MODELS;
    probe_step(p);
}
