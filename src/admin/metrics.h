/* metrics: the two renderings of health, stats and counters:
 * /internal/stats JSON and Prometheus text. */
#ifndef AUTOSWITCH_METRICS_H
#define AUTOSWITCH_METRICS_H

#include <stdbool.h>
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
/* The client keys' families: tokens, answers, refusals, in flight
 * (metrics_keys.c). */
void metrics_keys(struct buf *out);

/* Helpers of both files: a label (escaped), a family's HELP and TYPE. */
void metrics_label(struct buf *b, const char *name, const char *v, bool first);
void metrics_help(struct buf *b, const char *name, const char *type, const char *text);

#endif
