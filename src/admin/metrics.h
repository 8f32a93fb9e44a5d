/* metrics: the two renderings of health, stats and counters:
 * /internal/stats JSON and Prometheus text. */
#ifndef AUTOSWITCH_METRICS_H
#define AUTOSWITCH_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct snapshot;
/* {"providers":[...]} in the reference's shape plus our fields. */
void metrics_stats_json(struct buf *out, const struct snapshot *s);
/* The providers array alone (admin API data). */
void metrics_providers_json(struct buf *out, const struct snapshot *s);
/* Prometheus text exposition format 0.0.4. */
void metrics_prometheus(struct buf *out, const struct snapshot *s);

#endif
