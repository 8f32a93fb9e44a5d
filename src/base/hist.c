#include "hist.h"

#include <stdlib.h>
#include <string.h>

const uint32_t hist_bounds_ms[HIST_BUCKETS] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000,
};

void hist_add(struct hist *h, uint64_t ms)
{
    size_t i = 0;
    while (i < HIST_BUCKETS && ms > hist_bounds_ms[i])
        i++;
    h->counts[i]++;
    h->sum_ms += ms;
    h->n++;
}

void recent_add(struct recent *w, uint64_t ms)
{
    w->v[w->pos] = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
    w->pos = (w->pos + 1) % HIST_RECENT;
    if (w->n < HIST_RECENT)
        w->n++;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int64_t recent_pct(const struct recent *w, double pct)
{
    if (w->n == 0)
        return -1;
    uint32_t tmp[HIST_RECENT];
    memcpy(tmp, w->v, w->n * sizeof *tmp);
    qsort(tmp, w->n, sizeof *tmp, cmp_u32);
    /* Nearest rank: the smallest value with at least pct% at or below it. */
    size_t rank = (size_t)(pct / 100.0 * w->n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > w->n)
        rank = w->n;
    return tmp[rank - 1];
}
