#include "balance.h"

#include <stdbool.h>
#include <stdlib.h>

#include "health.h"

/* Fallback order: priority ascending, weight descending, config order. */
static bool before(const struct candidate *a, size_t ia, const struct candidate *b, size_t ib)
{
    if (a->priority != b->priority)
        return a->priority < b->priority;
    if (a->weight != b->weight)
        return a->weight > b->weight;
    return ia < ib;
}

static bool usable(const struct candidate *c, enum ep_class cls)
{
    const struct health_entry *h = snapshot_health(c, cls);
    return h && health_usable(h);
}

size_t balance_plan(const struct alias_entry *a, enum ep_class cls, int max_retries, const struct candidate **out,
                    size_t cap)
{
    if (!a || a->n == 0 || cap == 0)
        return 0;
    /* Indexes of the candidates in play. */
    size_t idx[BAL_MAX_ATTEMPTS];
    size_t n = 0;
    for (size_t i = 0; i < a->n && n < BAL_MAX_ATTEMPTS; i++)
        if (usable(&a->cands[i], cls))
            idx[n++] = i;
    if (n == 0)
        for (size_t i = 0; i < a->n && n < BAL_MAX_ATTEMPTS; i++)
            idx[n++] = i;

    /* Insertion sort into fallback order (n is small). */
    for (size_t i = 1; i < n; i++) {
        size_t v = idx[i], j = i;
        while (j > 0 && before(&a->cands[v], v, &a->cands[idx[j - 1]], idx[j - 1])) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }

    /* Smooth weighted round robin over the best priority group: every
     * member gains its weight, the largest current wins and pays the
     * total back.  The state lives in the stat entries, so it survives a
     * reload. */
    int best = a->cands[idx[0]].priority;
    long long total = 0;
    size_t pick = 0;
    struct stat_entry *pick_st = NULL;
    for (size_t k = 0; k < n && a->cands[idx[k]].priority == best; k++) {
        const struct candidate *c = &a->cands[idx[k]];
        struct stat_entry *st = c->stat;
        st->swrr_current += c->weight;
        total += c->weight;
        if (!pick_st || st->swrr_current > pick_st->swrr_current) {
            pick_st = st;
            pick = k;
        }
    }
    pick_st->swrr_current -= total;

    size_t limit = max_retries > 0 ? (size_t)max_retries : 1;
    if (limit > n)
        limit = n;
    if (limit > cap)
        limit = cap;
    size_t count = 0;
    out[count++] = &a->cands[idx[pick]];
    for (size_t k = 0; k < n && count < limit; k++)
        if (k != pick)
            out[count++] = &a->cands[idx[k]];
    return count;
}
