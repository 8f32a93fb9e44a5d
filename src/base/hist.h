/* hist: latency histograms and a window of recent samples (pure data).
 *
 * A hist counts samples per bucket of fixed upper bounds (milliseconds),
 * as Prometheus histograms want them; a recent window keeps the last
 * HIST_RECENT samples for percentiles shown to people (p50 / p95). */
#ifndef AUTOSWITCH_HIST_H
#define AUTOSWITCH_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_BUCKETS 14     /* finite upper bounds; +Inf is implicit */
#define HIST_RECENT 128     /* recent samples kept for percentiles */

extern const uint32_t hist_bounds_ms[HIST_BUCKETS];

struct hist {
    uint64_t counts[HIST_BUCKETS + 1];   /* per bucket, not cumulative */
    uint64_t sum_ms;
    uint64_t n;
};

struct recent {
    uint32_t v[HIST_RECENT];
    uint32_t n;     /* samples held, <= HIST_RECENT */
    uint32_t pos;   /* next slot */
};

void hist_add(struct hist *h, uint64_t ms);
void recent_add(struct recent *w, uint64_t ms);
/* Nearest-rank percentile (0 < pct <= 100) of the held samples; -1 if none. */
int64_t recent_pct(const struct recent *w, double pct);

#endif
