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

static void sort(const struct alias_entry *a, size_t *idx, size_t n)
{
    /* Insertion sort into fallback order (n is small). */
    for (size_t i = 1; i < n; i++) {
        size_t v = idx[i], j = i;
        while (j > 0 && before(&a->cands[v], v, &a->cands[idx[j - 1]], idx[j - 1])) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
}

/* Smooth weighted round robin over the best priority group: every member
 * gains its weight, the largest current wins and pays the total back.
 * The state lives in the stat entries, so it survives a reload.  Returns
 * the position (in idx) of the winner. */
static size_t swrr(const struct alias_entry *a, const size_t *idx, size_t n)
{
    int best = a->cands[idx[0]].priority;
    long long total = 0;
    size_t pick = 0;
    struct stat_entry *pick_st = NULL;
    for (size_t k = 0; k < n && a->cands[idx[k]].priority == best; k++) {
        const struct candidate *c = &a->cands[idx[k]];
        c->stat->swrr_current += c->weight;
        total += c->weight;
        if (!pick_st || c->stat->swrr_current > pick_st->swrr_current) {
            pick_st = c->stat;
            pick = k;
        }
    }
    pick_st->swrr_current -= total;
    return pick;
}

/* Half-open recovery: the best unhealthy candidate whose wait is over,
 * when no healthy one is better placed, so that a recovering backup never
 * goes ahead of a healthy primary.  SIZE_MAX when there is none. */
static size_t trial(const struct alias_entry *a, enum ep_class cls, const size_t *usable, size_t n)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < a->n; i++) {
        const struct health_entry *h = snapshot_health(&a->cands[i], cls);
        if (!h || !health_trial_due(h))
            continue;
        if (best == SIZE_MAX || before(&a->cands[i], i, &a->cands[best], best))
            best = i;
    }
    if (best != SIZE_MAX && n && a->cands[best].priority > a->cands[usable[0]].priority)
        return SIZE_MAX;
    return best;
}

size_t balance_plan(const struct alias_entry *a, enum ep_class cls, int max_retries, const struct candidate **out,
                    size_t cap)
{
    if (!a || a->n == 0 || cap == 0)
        return 0;
    size_t idx[BAL_MAX_ATTEMPTS];
    size_t n = 0;
    for (size_t i = 0; i < a->n && n < BAL_MAX_ATTEMPTS; i++) {
        const struct health_entry *h = snapshot_health(&a->cands[i], cls);
        if (h && health_usable(h))
            idx[n++] = i;
    }
    size_t count = 0;
    if (n == 0) {
        /* Nothing usable: every candidate, in fallback order (as the
         * reference does), rather than no answer at all. */
        for (size_t i = 0; i < a->n && n < BAL_MAX_ATTEMPTS; i++)
            idx[n++] = i;
        sort(a, idx, n);
    } else {
        sort(a, idx, n);
        size_t t = trial(a, cls, idx, n);
        if (t != SIZE_MAX)   /* an extra attempt: never the last while a healthy one remains */
            out[count++] = &a->cands[t];
    }
    size_t pick = swrr(a, idx, n);
    size_t limit = max_retries > 0 ? (size_t)max_retries : 1;
    if (limit > n)
        limit = n;
    limit += count;
    if (limit > cap)
        limit = cap;
    if (count < limit)
        out[count++] = &a->cands[idx[pick]];
    for (size_t k = 0; k < n && count < limit; k++)
        if (k != pick)
            out[count++] = &a->cands[idx[k]];
    return count;
}
