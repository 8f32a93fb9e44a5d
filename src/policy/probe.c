#include "probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "counters.h"
#include "health.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "snapshot.h"
#include "upreq.h"
#include "util.h"

#define PROBE_MIN_GAP_MS 1000

enum step { STEP_MODELS, STEP_WORK };

/* The probe schedule of one health entry (h->probe points here). */
struct slot {
    struct slot *next;
    struct health_entry *h;             /* a reference, held until the slot is freed */
    struct loop_timer timer;            /* the next probe */
    uint64_t gap_ms, period_ms;
    /* the running probe */
    struct snapshot *snap;              /* pinned while it runs */
    const struct cfg_provider *prov;
    const struct cfg_mapping *map;
    enum step step;
    struct upstream *up;
    struct loop_timer timeout;
    int status;
    uint64_t started;
};

static struct slot *slots;

static void probe_run(void *ctx);
static void probe_step(struct slot *p);
static enum cfg_probe kind_of(const struct slot *p);

static void stop_running(struct slot *p)
{
    loop_timer_stop(&p->timeout);
    if (p->up)
        up_abort(p->up);
    p->up = NULL;
    p->h->probing = false;
    snapshot_unref(p->snap);
    p->snap = NULL;
}

static void slot_free_deferred(void *ctx)
{
    struct slot *p = ctx;
    snapshot_unref(p->snap);
    health_put(p->h);
    free(p);
}

static void slot_end(struct slot *p)
{
    for (struct slot **pp = &slots; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    loop_timer_stop(&p->timer);
    loop_timer_stop(&p->timeout);
    if (p->up)
        up_abort(p->up);
    p->up = NULL;
    p->h->probe = NULL;
    p->h->probing = false;
    p->h->next_probe_wall = 0;
    loop_defer(slot_free_deferred, p);
}

static void arm(struct slot *p, uint64_t delay_ms)
{
    loop_timer_init(&p->timer, probe_run, p);
    loop_timer_set(&p->timer, delay_ms);
    p->gap_ms = delay_ms;
    p->h->next_probe_wall = wall_ms() + delay_ms;
}

void probe_schedule(struct health_entry *h, uint64_t first_ms, uint64_t period_ms)
{
    struct slot *p = h->probe;
    if (!p) {
        if (!(p = calloc(1, sizeof *p))) {
            log_error("health: out of memory scheduling a probe of %s/%s", h->provider, h->upstream);
            return;
        }
        p->h = h;
        h->refs++;   /* the slot holds the entry (health_put in slot_free_deferred) */
        h->probe = p;
        p->next = slots;
        slots = p;
        loop_timer_init(&p->timeout, NULL, p);
    }
    p->period_ms = period_ms;
    log_info("health: %s/%s: first probe in %llus", h->provider, h->upstream,
             (unsigned long long)(first_ms / 1000));
    arm(p, first_ms);
}

void probe_cancel(struct health_entry *h)
{
    if (h->probe)
        slot_end(h->probe);
}

void probe_stop_all(void)
{
    while (slots)
        slot_end(slots);
}

static const char *kind_name(enum cfg_probe k)
{
    return cfg_probe_name(k);
}

/* The probe is over: recovered, or the next one with a longer gap. */
static void probe_end(struct slot *p, bool ok, const char *what)
{
    struct health_entry *h = p->h;
    uint64_t took = loop_clock() - p->started;
    enum cfg_probe kind = kind_of(p);
    stop_running(p);
    if (ok) {
        char how[160];
        snprintf(how, sizeof how, "probe (%s) %s in %llums", kind_name(kind), what, (unsigned long long)took);
        health_recovered(h, how);
        slot_end(p);
        return;
    }
    if (h->healthy) {   /* a real request brought it back meanwhile */
        slot_end(p);
        return;
    }
    uint64_t gap = p->gap_ms * 2;
    if (gap > p->period_ms)
        gap = p->period_ms;
    if (gap < PROBE_MIN_GAP_MS)
        gap = PROBE_MIN_GAP_MS;
    log_warn("health: probe of %s/%s (%s) failed: %s; next in %llus", h->provider, h->upstream,
             kind_name(kind), what, (unsigned long long)(gap / 1000));
    arm(p, gap);
}

static int on_head(void *ctx, const struct hp_response *res)
{
    struct slot *p = ctx;
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

static void on_done(void *ctx, bool clean)
{
    (void)clean;   /* the status says it all */
    struct slot *p = ctx;
    p->up = NULL;
    char what[96];
    if (p->step == STEP_MODELS) {
        if (p->status != 200) {
            snprintf(what, sizeof what, "GET /v1/models answered %d", p->status);
            probe_end(p, false, what);
            return;
        }
        if (kind_of(p) == CFG_PROBE_MODELS) {
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
    snprintf(what, sizeof what, "%s answered %d", kind_name(kind_of(p)), p->status);
    probe_end(p, ok, what);
}

static void on_fail(void *ctx, enum up_error kind, const char *reason)
{
    (void)kind;
    struct slot *p = ctx;
    p->up = NULL;
    probe_end(p, false, reason);
}

static const struct up_callbacks probe_cbs = { on_head, on_body, on_done, on_fail };

static void on_timeout(void *ctx)
{
    struct slot *p = ctx;
    char what[64];
    snprintf(what, sizeof what, "timed out after %ds", p->snap->cfg->probe_timeout);
    probe_end(p, false, what);
}

/* What the probe of h asks, in h's dialect: the mapping's kind for
 * OpenAI (messages there means chat), a one-token /v1/messages for
 * Anthropic. */
static enum cfg_probe kind_of(const struct slot *p)
{
    enum cfg_probe k = p->map->probe;
    /* Probes test a mapping's home class; another class (a chat model
     * answering 404 on /v1/audio/speech) simply comes back after the
     * wait, and the next real request of that class is the test. */
    if (p->h->cls != snapshot_home_class(p->map, p->h->dialect))
        return CFG_PROBE_NONE;
    if (p->h->dialect == DIALECT_ANTHROPIC)
        return k == CFG_PROBE_NONE ? k : CFG_PROBE_MESSAGES;
    return k == CFG_PROBE_MESSAGES ? CFG_PROBE_CHAT : k;
}

static void probe_body(const struct slot *p, enum cfg_probe k, struct buf *body, const char **path)
{
    buf_append_str(body, "{\"model\":");
    json_append_str(body, p->map->upstream, strlen(p->map->upstream));
    if (k == CFG_PROBE_EMBEDDINGS) {
        *path = "/v1/embeddings";
        buf_append_str(body, ",\"input\":\"hi\"}");
    } else {
        *path = k == CFG_PROBE_MESSAGES ? "/v1/messages" : "/v1/chat/completions";
        buf_append_str(body, ",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":1,\"stream\":false}");
    }
}

static void probe_step(struct slot *p)
{
    const struct cfg_provider *prov = p->prov;
    enum dialect d = p->h->dialect;
    struct up_request rq = { .url = cfg_provider_url(prov, d),
                             .ca_file = prov->ca_file ? prov->ca_file : p->snap->cfg->ca_file };
    struct buf body = BUF_INIT;
    const char *path = "/v1/models";
    if (p->step == STEP_WORK)
        probe_body(p, kind_of(p), &body, &path);
    struct upreq head = {
        .method = p->step == STEP_WORK ? "POST" : "GET", .prov = prov, .dialect = d, .path = path,
        .ctype = buf_len(&body) ? "application/json" : NULL, .body_len = buf_len(&body),
        .user_agent = "autoswitch-probe",
        .extra = d == DIALECT_ANTHROPIC ? "anthropic-version: 2023-06-01\r\n" : NULL,
        .extra_len = d == DIALECT_ANTHROPIC ? sizeof "anthropic-version: 2023-06-01\r\n" - 1 : 0,
    };
    int rc = rq.url ? upreq_head(&rq.data, &head) : -1;
    buf_append(&rq.data, buf_head(&body), buf_len(&body));
    buf_free(&body);
    p->status = 0;
    p->up = rc == 0 ? up_start(&rq, &probe_cbs, p) : NULL;
    buf_free(&rq.data);
    if (!p->up)
        probe_end(p, false, rc == 0 ? "out of memory" : "no base URL for this dialect");
}

/* Find the mapping of h in the current config: the probe uses what the
 * config says now, not what it said when the model failed. */
static bool find_mapping(struct snapshot *s, struct health_entry *h, const struct cfg_provider **prov,
                         const struct cfg_mapping **map)
{
    for (size_t i = 0; i < s->cfg->n_providers; i++) {
        const struct cfg_provider *pr = &s->cfg->providers[i];
        if (strcmp(pr->name, h->provider) != 0 || !cfg_provider_url(pr, h->dialect))
            continue;
        for (size_t m = 0; m < pr->n_mappings; m++) {
            if (strcmp(pr->mappings[m].upstream, h->upstream) == 0) {
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
    struct slot *p = ctx;
    struct health_entry *h = p->h;
    h->next_probe_wall = 0;
    struct snapshot *s = snapshot_current();
    const struct cfg_provider *prov;
    const struct cfg_mapping *map;
    if (h->healthy || !s || !find_mapping(s, h, &prov, &map)) {
        slot_end(p);   /* healthy again, or removed from the config */
        return;
    }
    counters.probes++;
    h->probes++;
    p->period_ms = (uint64_t)s->cfg->health_check_period * 1000u;
    p->map = map;
    if (kind_of(p) == CFG_PROBE_NONE) {
        health_recovered(h, "probe none: back in rotation after the wait");
        slot_end(p);
        return;
    }
    p->snap = snapshot_ref(s);
    p->prov = prov;
    p->map = map;
    p->started = loop_clock();
    h->probing = true;
    log_info("health: probing %s/%s (%s, attempt %u)", h->provider, h->upstream, kind_name(kind_of(p)), h->probes);
    loop_timer_init(&p->timeout, on_timeout, p);
    loop_timer_set(&p->timeout, (uint64_t)s->cfg->probe_timeout * 1000u);
    /* Anthropic-compatible upstreams need not have /v1/models. */
    p->step = kind_of(p) == CFG_PROBE_MESSAGES ? STEP_WORK : STEP_MODELS;
    probe_step(p);
}
