/* probe: bringing unhealthy upstream models back.
 *
 * Whoever sees a model become unhealthy schedules its probes here: the
 * first after the config's recovery_interval, then again with the gap
 * doubling up to health_check_period while it keeps failing.  One probe
 * per model at a time, each bounded by probe_timeout, all inside the
 * loop; a schedule holds a reference on the health entry it watches.
 * What a probe asks depends on the mapping's `probe`, read from the
 * config current when it runs:
 *   chat        GET /v1/models is 200, then a chat completion with
 *               max_tokens 1 answers 200 or 400 (the reference's check)
 *   embeddings  GET /v1/models is 200, then an embeddings request answers
 *               200 or 400
 *   models      GET /v1/models is 200
 *   none        no request: after the gap the model simply goes back into
 *               rotation and the next real request is the test
 * A probe that succeeds reports health_recovered() and ends its schedule.
 * Cancelling never calls back and frees from the loop (loop_defer), so it
 * is safe from any callback. */
#ifndef AUTOSWITCH_PROBE_H
#define AUTOSWITCH_PROBE_H

#include <stdint.h>

struct health_entry;

/* Probe h after first_ms, then every gap (doubling) up to period_ms.
 * Replaces an earlier schedule of h. */
void probe_schedule(struct health_entry *h, uint64_t first_ms, uint64_t period_ms);
/* Stop the schedule and the running probe of h, if any. */
void probe_cancel(struct health_entry *h);
/* Stop every schedule (shutdown). */
void probe_stop_all(void);

#endif
