/* metrics: latency histograms, recent-sample percentiles, process
 * counters, and the two outputs: /internal/stats JSON and Prometheus text. */
#ifndef AUTOSWITCH_METRICS_H
#define AUTOSWITCH_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define METRICS_BUCKETS 14     /* finite upper bounds; +Inf is implicit */
#define METRICS_WINDOW 128     /* recent samples kept for p50 / p95 */

extern const uint32_t metrics_bounds_ms[METRICS_BUCKETS];

struct metrics_hist {
    uint64_t counts[METRICS_BUCKETS + 1];   /* per bucket, not cumulative */
    uint64_t sum_ms;
    uint64_t n;
};

struct metrics_window {
    uint32_t v[METRICS_WINDOW];
    uint32_t n;     /* samples held, <= METRICS_WINDOW */
    uint32_t pos;   /* next slot */
};

void metrics_hist_add(struct metrics_hist *h, uint64_t ms);
void metrics_window_add(struct metrics_window *w, uint64_t ms);
/* Nearest-rank percentile (0 < pct <= 100) of the held samples; -1 if none. */
int64_t metrics_window_pct(const struct metrics_window *w, double pct);

/* Process-wide counters. */
struct metrics_global {
    uint64_t requests;          /* client requests answered */
    uint64_t proxied;           /* of which went to the proxy */
    uint64_t attempts;          /* upstream attempts started */
    uint64_t failovers;         /* attempts after a failed one */
    uint64_t exhausted;         /* requests where every attempt failed */
    uint64_t client_aborts;     /* clients that left mid-request */
    uint64_t bytes_in;          /* request bodies */
    uint64_t bytes_out;         /* response bodies */
    uint64_t probes;
    uint64_t reloads;
    uint64_t reload_failures;
    uint64_t start_wall_ms;
};
extern struct metrics_global metrics;

struct snapshot;
/* {"providers":[...]} in the reference's shape plus our fields. */
void metrics_stats_json(struct buf *out, const struct snapshot *s);
/* The providers array alone (admin API data). */
void metrics_providers_json(struct buf *out, const struct snapshot *s);
/* Prometheus text exposition format 0.0.4. */
void metrics_prometheus(struct buf *out, const struct snapshot *s);

#endif
