#include "health.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loop.h"
#include "util.h"

static struct health_entry *htable;
static struct stat_entry *stats;

struct health_entry *health_entries(void)
{
    return htable;
}

struct stat_entry *stat_entries(void)
{
    return stats;
}

static struct health_entry *health_find(const char *provider, enum dialect d, const char *upstream,
                                        enum ep_class cls)
{
    for (struct health_entry *h = htable; h; h = h->next)
        if (h->dialect == d && h->cls == cls && strcmp(h->provider, provider) == 0 &&
            strcmp(h->upstream, upstream) == 0)
            return h;
    return NULL;
}

static struct health_entry *health_new(const char *provider, enum dialect d, const char *upstream,
                                       enum ep_class cls)
{
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
    h->dialect = d;
    h->cls = cls;
    h->healthy = true;
    h->changed_wall = wall_ms();
    h->next = htable;
    htable = h;
    return h;
}

static struct stat_entry *stat_find(const char *provider, enum dialect d, const char *alias, const char *upstream)
{
    for (struct stat_entry *s = stats; s; s = s->next)
        if (s->dialect == d && strcmp(s->provider, provider) == 0 && strcmp(s->alias, alias) == 0 &&
            strcmp(s->upstream, upstream) == 0)
            return s;
    return NULL;
}

static struct stat_entry *stat_new(const char *provider, enum dialect d, const char *alias, const char *upstream)
{
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
    s->dialect = d;
    s->next = stats;
    stats = s;
    return s;
}

struct health_entry *health_get(const char *provider, enum dialect d, const char *upstream, enum ep_class cls)
{
    struct health_entry *h = health_find(provider, d, upstream, cls);
    if (!h)
        h = health_new(provider, d, upstream, cls);
    if (h)
        h->refs++;
    return h;
}

struct stat_entry *stat_get(const char *provider, enum dialect d, const char *alias, const char *upstream)
{
    struct stat_entry *st = stat_find(provider, d, alias, upstream);
    if (!st)
        st = stat_new(provider, d, alias, upstream);
    if (st)
        st->refs++;
    return st;
}

static void health_unlink(struct health_entry *h)
{
    for (struct health_entry **pp = &htable; *pp; pp = &(*pp)->next) {
        if (*pp == h) {
            *pp = h->next;
            break;
        }
    }
    free(h->provider);
    free(h->upstream);
    free(h);
}

void health_put(struct health_entry *h)
{
    if (h && --h->refs == 0)
        health_unlink(h);
}

void stat_put(struct stat_entry *st)
{
    if (!st || --st->refs)
        return;
    for (struct stat_entry **pp = &stats; *pp; pp = &(*pp)->next) {
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    }
    free(st->provider);
    free(st->alias);
    free(st->upstream);
    free(st);
}

void health_free_all(void)
{
    while (htable)
        health_unlink(htable);
    while (stats) {
        stats->refs = 1;
        stat_put(stats);
    }
}

bool health_cooling(const struct health_entry *h)
{
    return h->cooldown_until && h->cooldown_until > loop_now();
}

bool health_usable(const struct health_entry *h)
{
    return h->healthy && !health_cooling(h);
}

bool health_trial_due(const struct health_entry *h)
{
    return !h->healthy && !h->trial_running && loop_now() >= h->trial_after && !health_cooling(h);
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

bool health_success(struct health_entry *h, struct stat_entry *st, int status,
                    uint64_t latency_ms, int64_t ttft_ms)
{
    st->total++;
    st->success++;
    count_status(st, status);
    hist_add(&st->latency, latency_ms);
    recent_add(&st->lat_recent, latency_ms);
    if (ttft_ms >= 0) {
        hist_add(&st->ttft, (uint64_t)ttft_ms);
        recent_add(&st->ttft_recent, (uint64_t)ttft_ms);
    }
    return health_recovered(h, "a request succeeded");
}

bool health_failure(struct health_entry *h, struct stat_entry *st, int status, bool counts,
                    const char *reason, uint64_t wait_ms)
{
    st->total++;
    st->failures++;
    count_status(st, status);
    set_error(h, reason);
    if (!counts)
        return false;
    h->consecutive++;
    if (!h->healthy) {
        h->trial_after = loop_now() + wait_ms;   /* a failed trial waits again */
        return false;
    }
    if (h->consecutive < (unsigned)h->max_failures)
        return false;
    h->trial_after = loop_now() + wait_ms;
    h->healthy = false;
    h->changed_wall = wall_ms();
    h->probes = 0;
    log_warn("health: %s/%s marked unhealthy after %u consecutive failures (last: %s)", h->provider,
             h->upstream, h->consecutive, reason);
    return true;
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

bool health_recovered(struct health_entry *h, const char *how)
{
    h->consecutive = 0;
    if (h->healthy)
        return false;
    h->healthy = true;
    h->changed_wall = wall_ms();
    log_info("health: %s/%s healthy again (%s)", h->provider, h->upstream, how);
    return true;
}
