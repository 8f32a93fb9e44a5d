#include "health.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "probe.h"
#include "snapshot.h"
#include "util.h"

static struct health_entry *htable;
static struct stat_entry *stable;

struct health_entry *health_entries(void)
{
    return htable;
}

struct stat_entry *stat_entries(void)
{
    return stable;
}

static struct health_entry *health_get(const char *provider, const char *upstream)
{
    for (struct health_entry *h = htable; h; h = h->next)
        if (strcmp(h->provider, provider) == 0 && strcmp(h->upstream, upstream) == 0)
            return h;
    struct health_entry *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->provider = strdup(provider);
    h->upstream = strdup(upstream);
    if (!h->provider || !h->upstream) {
        free(h->provider);
        free(h->upstream);
        free(h);
        return NULL;
    }
    h->healthy = true;
    h->changed_wall = wall_ms();
    h->next = htable;
    htable = h;
    return h;
}

static struct stat_entry *stat_get(const char *provider, const char *alias, const char *upstream)
{
    for (struct stat_entry *s = stable; s; s = s->next)
        if (strcmp(s->provider, provider) == 0 && strcmp(s->alias, alias) == 0 &&
            strcmp(s->upstream, upstream) == 0)
            return s;
    struct stat_entry *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->provider = strdup(provider);
    s->alias = strdup(alias);
    s->upstream = strdup(upstream);
    if (!s->provider || !s->alias || !s->upstream) {
        free(s->provider);
        free(s->alias);
        free(s->upstream);
        free(s);
        return NULL;
    }
    s->next = stable;
    stable = s;
    return s;
}

static void health_entry_free(struct health_entry *h)
{
    probe_cancel(h);
    free(h->provider);
    free(h->upstream);
    free(h);
}

/* Unlink and free entries that no live snapshot links any more. */
static void sweep(void)
{
    for (struct health_entry **pp = &htable; *pp;) {
        struct health_entry *h = *pp;
        if (h->refs == 0 && !h->probe) {
            *pp = h->next;
            health_entry_free(h);
        } else {
            pp = &h->next;
        }
    }
    for (struct stat_entry **pp = &stable; *pp;) {
        struct stat_entry *s = *pp;
        if (s->refs == 0) {
            *pp = s->next;
            free(s->provider);
            free(s->alias);
            free(s->upstream);
            free(s);
        } else {
            pp = &s->next;
        }
    }
}

int health_attach(struct snapshot *snap)
{
    struct config *cfg = snap->cfg;
    for (size_t p = 0; p < cfg->n_providers; p++) {
        struct cfg_provider *prov = &cfg->providers[p];
        for (size_t m = 0; m < prov->n_mappings; m++) {
            struct cfg_mapping *map = &prov->mappings[m];
            map->health = health_get(prov->name, map->upstream);
            map->stat = stat_get(prov->name, map->alias, map->upstream);
            if (!map->health || !map->stat)
                return -1;   /* health_detach (via snapshot free) undoes the rest */
            map->health->refs++;
            map->stat->refs++;
            map->health->max_failures = cfg_max_failures(cfg, map);
        }
    }
    return 0;
}

void health_detach(struct snapshot *snap)
{
    struct config *cfg = snap->cfg;
    for (size_t p = 0; p < cfg->n_providers; p++) {
        struct cfg_provider *prov = &cfg->providers[p];
        for (size_t m = 0; m < prov->n_mappings; m++) {
            struct cfg_mapping *map = &prov->mappings[m];
            if (map->health && map->stat) {
                map->health->refs--;
                map->stat->refs--;
            } else if (map->health) {
                map->health->refs--;
            }
            map->health = NULL;
            map->stat = NULL;
        }
    }
    sweep();
}

void health_free_all(void)
{
    /* A probe pins a snapshot; ending one may free entries, so look again
     * from the start after each. */
    for (bool again = true; again;) {
        again = false;
        for (struct health_entry *h = htable; h; h = h->next) {
            if (h->probe) {
                probe_cancel(h);
                again = true;
                break;
            }
        }
    }
    for (struct health_entry *h = htable; h; h = h->next)
        h->refs = 0;
    for (struct stat_entry *s = stable; s; s = s->next)
        s->refs = 0;
    sweep();
}

bool health_cooling(const struct health_entry *h)
{
    return h->cooldown_until && h->cooldown_until > loop_now();
}

bool health_usable(const struct health_entry *h)
{
    return h->healthy && !health_cooling(h);
}

static void set_error(struct health_entry *h, const char *reason)
{
    size_t n = strlen(reason);
    if (n >= sizeof h->last_error)
        n = sizeof h->last_error - 1;
    memcpy(h->last_error, reason, n);
    h->last_error[n] = '\0';
    h->last_error_wall = wall_ms();
}

static void count_status(struct stat_entry *st, int status)
{
    int cls = status >= 100 && status < 600 ? status / 100 : 0;
    st->by_class[cls]++;
}

void health_success(struct health_entry *h, struct stat_entry *st, int status,
                    uint64_t latency_ms, int64_t ttft_ms)
{
    st->total++;
    st->success++;
    count_status(st, status);
    metrics_hist_add(&st->latency, latency_ms);
    metrics_window_add(&st->lat_recent, latency_ms);
    if (ttft_ms >= 0) {
        metrics_hist_add(&st->ttft, (uint64_t)ttft_ms);
        metrics_window_add(&st->ttft_recent, (uint64_t)ttft_ms);
    }
    h->consecutive = 0;
    if (!h->healthy)
        health_recovered(h, "a request succeeded");
}

void health_failure(struct health_entry *h, struct stat_entry *st, int status, bool counts,
                    const char *reason)
{
    st->total++;
    st->failures++;
    count_status(st, status);
    set_error(h, reason);
    if (!counts)
        return;
    h->consecutive++;
    if (h->healthy && h->consecutive >= (unsigned)h->max_failures) {
        h->healthy = false;
        h->changed_wall = wall_ms();
        h->probes = 0;
        struct snapshot *cur = snapshot_current();
        uint64_t wait = cur ? (uint64_t)cur->cfg->recovery_interval * 1000u : 30000u;
        log_warn("health: %s/%s marked unhealthy after %u consecutive failures (last: %s); first probe in %llus",
                 h->provider, h->upstream, h->consecutive, reason, (unsigned long long)(wait / 1000));
        probe_schedule(h, wait);
    }
}

void health_cooldown(struct health_entry *h, struct stat_entry *st, uint64_t ms, const char *reason)
{
    st->total++;
    st->failures++;
    count_status(st, 429);
    set_error(h, reason);
    uint64_t until = loop_now() + ms;
    if (until > h->cooldown_until) {
        h->cooldown_until = until;
        h->cooldown_wall = wall_ms() + ms;
    }
    log_info("health: %s/%s cooling down for %llus (%s)", h->provider, h->upstream,
             (unsigned long long)((ms + 999) / 1000), reason);
}

void health_recovered(struct health_entry *h, const char *how)
{
    h->consecutive = 0;
    if (h->healthy)
        return;
    h->healthy = true;
    h->changed_wall = wall_ms();
    probe_cancel(h);
    h->probe_gap_ms = 0;
    log_info("health: %s/%s healthy again (%s)", h->provider, h->upstream, how);
}
