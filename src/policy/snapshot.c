#include "snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"
#include "keys.h"

static struct snapshot *current;

static int cmp_alias(const void *a, const void *b)
{
    return strcmp(((const struct alias_entry *)a)->name, ((const struct alias_entry *)b)->name);
}

/* Link every mapping to its health and stats entries, per dialect its
 * provider speaks: the ones that already exist (a reload keeps their
 * state) or new ones. */
static int link_health(struct snapshot *s)
{
    struct config *cfg = s->cfg;
    for (size_t p = 0; p < cfg->n_providers; p++) {
        struct cfg_provider *prov = &cfg->providers[p];
        for (size_t m = 0; m < prov->n_mappings; m++) {
            struct cfg_mapping *map = &prov->mappings[m];
            for (int d = 0; d < CFG_DIALECTS; d++) {
                if (!cfg_provider_url(prov, (enum dialect)d))
                    continue;
                map->health[d] = health_get(prov->name, (enum dialect)d, map->upstream,
                                            snapshot_home_class(map, (enum dialect)d));
                map->stat[d] = stat_get(prov->name, (enum dialect)d, map->alias, map->upstream);
                if (!map->health[d] || !map->stat[d])
                    return -1;   /* unlink_health (via snapshot_free) undoes the rest */
                map->health[d]->max_failures = cfg_max_failures(cfg, map);
            }
        }
    }
    return 0;
}

static void unlink_health(struct snapshot *s)
{
    struct config *cfg = s->cfg;
    for (size_t p = 0; p < cfg->n_providers; p++) {
        struct cfg_provider *prov = &cfg->providers[p];
        for (size_t m = 0; m < prov->n_mappings; m++) {
            for (int d = 0; d < CFG_DIALECTS; d++) {
                health_put(prov->mappings[m].health[d]);
                stat_put(prov->mappings[m].stat[d]);
                prov->mappings[m].health[d] = NULL;
                prov->mappings[m].stat[d] = NULL;
            }
        }
    }
}

/* Link every named key to its state, and give the legacy api_keys and an
 * open gateway theirs: the ones that exist (a reload keeps the limiter's
 * window and the day's tokens) or new ones. */
static int link_keys(struct snapshot *s)
{
    struct config *cfg = s->cfg;
    for (size_t i = 0; i < cfg->n_keys; i++)
        if (!(cfg->keys[i].state = key_state_get(cfg->keys[i].name)))
            return -1;
    if (cfg->n_api_keys && !(s->legacy = calloc(cfg->n_api_keys, sizeof *s->legacy)))
        return -1;
    for (size_t i = 0; i < cfg->n_api_keys; i++) {
        char name[32];
        snprintf(name, sizeof name, "api_keys[%zu]", i);
        if (!(s->legacy[i] = key_state_get(name)))
            return -1;
    }
    if (!cfg->n_keys && !cfg->n_api_keys && !(s->open = key_state_get(KEY_OPEN_NAME)))
        return -1;
    return 0;
}

static void unlink_keys(struct snapshot *s)
{
    struct config *cfg = s->cfg;
    for (size_t i = 0; i < cfg->n_keys; i++) {
        key_state_put(cfg->keys[i].state);
        cfg->keys[i].state = NULL;
    }
    for (size_t i = 0; s->legacy && i < cfg->n_api_keys; i++)
        key_state_put(s->legacy[i]);
    free(s->legacy);
    key_state_put(s->open);
}

static void free_index(struct alias_index *ix)
{
    for (size_t i = 0; i < ix->n; i++) {
        for (size_t k = 0; k < ix->aliases[i].n; k++)
            for (int c = 0; c < EPC__COUNT; c++)
                health_put(ix->aliases[i].cands[k].by_class[c]);
        free(ix->aliases[i].cands);
    }
    free(ix->aliases);
}

static void snapshot_free(struct snapshot *s)
{
    unlink_health(s);
    unlink_keys(s);
    for (int d = 0; d < CFG_DIALECTS; d++)
        free_index(&s->idx[d]);
    config_free(s->cfg);
    free(s);
}

static struct alias_entry *find(struct alias_index *ix, const char *name, size_t len)
{
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *a = ix->aliases[mid].name;
        size_t alen = strlen(a);
        int c = memcmp(a, name, alen < len ? alen : len);
        if (c == 0)
            c = alen < len ? -1 : alen > len ? 1 : 0;
        if (c == 0)
            return &ix->aliases[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The aliases of dialect d: unique names sorted, then each alias's
 * candidates in config order. */
static int build_index(struct snapshot *s, enum dialect d)
{
    struct alias_index *ix = &s->idx[d];
    const struct config *cfg = s->cfg;
    size_t total = 0;
    for (size_t p = 0; p < cfg->n_providers; p++)
        total += cfg->providers[p].n_mappings;
    if (!(ix->aliases = calloc(total ? total : 1, sizeof *ix->aliases)))
        return -1;
    for (size_t p = 0; p < cfg->n_providers; p++) {
        if (!cfg_provider_url(&cfg->providers[p], d))
            continue;
        for (size_t m = 0; m < cfg->providers[p].n_mappings; m++) {
            const char *name = cfg->providers[p].mappings[m].alias;
            bool seen = false;
            for (size_t i = 0; i < ix->n && !seen; i++)
                seen = strcmp(ix->aliases[i].name, name) == 0;
            if (!seen)
                ix->aliases[ix->n++].name = name;
        }
    }
    qsort(ix->aliases, ix->n, sizeof *ix->aliases, cmp_alias);
    for (size_t p = 0; p < cfg->n_providers; p++) {
        const struct cfg_provider *prov = &cfg->providers[p];
        const struct cfg_url *url = cfg_provider_url(prov, d);
        for (size_t m = 0; url && m < prov->n_mappings; m++) {
            const struct cfg_mapping *map = &prov->mappings[m];
            struct alias_entry *a = find(ix, map->alias, strlen(map->alias));
            if (a->n >= SNAPSHOT_MAX_CANDIDATES)
                continue;   /* a request's plan names candidates by a 16-bit index */
            struct candidate *grown = realloc(a->cands, (a->n + 1) * sizeof *a->cands);
            if (!grown)
                return -1;
            a->cands = grown;
            a->cands[a->n++] = (struct candidate){
                .prov = prov,
                .map = map,
                .url = url,
                .health = map->health[d],
                .stat = map->stat[d],
                .home = snapshot_home_class(map, d),
                .priority = prov->priority + map->priority,
                .weight = prov->weight * map->weight,
            };
        }
    }
    return 0;
}

struct snapshot *snapshot_new(struct config *cfg)
{
    struct snapshot *s = calloc(1, sizeof *s);
    if (!s) {
        config_free(cfg);
        return NULL;
    }
    s->refs = 1;
    s->cfg = cfg;
    if (link_health(s) < 0 || link_keys(s) < 0 || build_index(s, DIALECT_OPENAI) < 0 ||
        build_index(s, DIALECT_ANTHROPIC) < 0) {
        snapshot_free(s);
        return NULL;
    }
    return s;
}

enum ep_class snapshot_home_class(const struct cfg_mapping *m, enum dialect d)
{
    if (d == DIALECT_ANTHROPIC)
        return EPC_MESSAGES;
    return m->probe == CFG_PROBE_EMBEDDINGS ? EPC_EMBEDDINGS : EPC_CHAT;
}

struct health_entry *snapshot_health(const struct candidate *c, enum ep_class cls)
{
    if (cls == c->home || cls >= EPC__COUNT)
        return c->health;
    struct candidate *w = (struct candidate *)c;   /* a cache slot of an immutable snapshot */
    if (!w->by_class[cls]) {
        w->by_class[cls] = health_get(c->prov->name, c->health->dialect, c->map->upstream, cls);
        if (w->by_class[cls])
            w->by_class[cls]->max_failures = c->health->max_failures;
    }
    return w->by_class[cls];
}

struct snapshot *snapshot_ref(struct snapshot *s)
{
    s->refs++;
    return s;
}

void snapshot_unref(struct snapshot *s)
{
    if (s && --s->refs == 0)
        snapshot_free(s);
}

const struct alias_entry *snapshot_alias(const struct snapshot *s, enum dialect d, const char *name, size_t len)
{
    return find((struct alias_index *)&s->idx[d], name, len);
}

struct snapshot *snapshot_current(void)
{
    return current;
}

void snapshot_install(struct snapshot *s)
{
    struct snapshot *old = current;
    current = s;
    snapshot_unref(old);
}

void snapshot_release_current(void)
{
    snapshot_install(NULL);
}
