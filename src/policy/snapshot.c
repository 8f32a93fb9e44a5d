#include "snapshot.h"

#include <stdlib.h>
#include <string.h>

#include "health.h"

static struct snapshot *current;

static int cmp_alias(const void *a, const void *b)
{
    return strcmp(((const struct alias_entry *)a)->name, ((const struct alias_entry *)b)->name);
}

/* Link every mapping to its health and stats entries: the ones that
 * already exist (a reload keeps their state) or new ones. */
static int link_health(struct snapshot *s)
{
    struct config *cfg = s->cfg;
    for (size_t p = 0; p < cfg->n_providers; p++) {
        struct cfg_provider *prov = &cfg->providers[p];
        for (size_t m = 0; m < prov->n_mappings; m++) {
            struct cfg_mapping *map = &prov->mappings[m];
            map->health = health_get(prov->name, map->upstream);
            map->stat = stat_get(prov->name, map->alias, map->upstream);
            if (!map->health || !map->stat)
                return -1;   /* unlink_health (via snapshot_free) undoes the rest */
            map->health->max_failures = cfg_max_failures(cfg, map);
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
            health_put(prov->mappings[m].health);
            stat_put(prov->mappings[m].stat);
            prov->mappings[m].health = NULL;
            prov->mappings[m].stat = NULL;
        }
    }
}

static void snapshot_free(struct snapshot *s)
{
    unlink_health(s);
    for (size_t i = 0; i < s->n_aliases; i++)
        free(s->aliases[i].cands);
    free(s->aliases);
    config_free(s->cfg);
    free(s);
}

struct snapshot *snapshot_new(struct config *cfg)
{
    struct snapshot *s = calloc(1, sizeof *s);
    size_t total = 0;
    for (size_t p = 0; p < cfg->n_providers; p++)
        total += cfg->providers[p].n_mappings;
    if (!s || !(s->aliases = calloc(total ? total : 1, sizeof *s->aliases))) {
        free(s);
        config_free(cfg);
        return NULL;
    }
    s->refs = 1;
    s->cfg = cfg;

    /* Unique alias names first, then each alias's candidates in config order. */
    for (size_t p = 0; p < cfg->n_providers; p++) {
        for (size_t m = 0; m < cfg->providers[p].n_mappings; m++) {
            const char *name = cfg->providers[p].mappings[m].alias;
            bool seen = false;
            for (size_t i = 0; i < s->n_aliases && !seen; i++)
                seen = strcmp(s->aliases[i].name, name) == 0;
            if (!seen)
                s->aliases[s->n_aliases++].name = name;
        }
    }
    qsort(s->aliases, s->n_aliases, sizeof *s->aliases, cmp_alias);
    for (size_t p = 0; p < cfg->n_providers; p++) {
        const struct cfg_provider *prov = &cfg->providers[p];
        for (size_t m = 0; m < prov->n_mappings; m++) {
            const struct cfg_mapping *map = &prov->mappings[m];
            struct alias_entry *a = (struct alias_entry *)snapshot_alias(s, map->alias, strlen(map->alias));
            struct candidate *grown = realloc(a->cands, (a->n + 1) * sizeof *a->cands);
            if (!grown) {
                snapshot_free(s);
                return NULL;
            }
            a->cands = grown;
            a->cands[a->n++] = (struct candidate){
                .prov = prov,
                .map = map,
                .priority = prov->priority + map->priority,
                .weight = prov->weight * map->weight,
            };
        }
    }
    if (link_health(s) < 0) {
        snapshot_free(s);
        return NULL;
    }
    return s;
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

const struct alias_entry *snapshot_alias(const struct snapshot *s, const char *name, size_t len)
{
    size_t lo = 0, hi = s->n_aliases;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *a = s->aliases[mid].name;
        size_t alen = strlen(a);
        int c = memcmp(a, name, alen < len ? alen : len);
        if (c == 0)
            c = alen < len ? -1 : alen > len ? 1 : 0;
        if (c == 0)
            return &s->aliases[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
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
