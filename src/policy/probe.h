/* probe: bringing unhealthy upstream models back.
 *
 * An unhealthy (provider, upstream) is probed recovery_interval seconds
 * after it went unhealthy, then again with the gap doubling up to
 * health_check_period while it keeps failing.  One probe per model at a
 * time, each bounded by probe_timeout, all inside the loop.  What a probe
 * asks depends on the mapping's `probe`:
 *   chat        GET /v1/models is 200, then a chat completion with
 *               max_tokens 1 answers 200 or 400 (the reference's check)
 *   embeddings  GET /v1/models is 200, then an embeddings request answers
 *               200 or 400
 *   models      GET /v1/models is 200
 *   none        no request: after the gap the model simply goes back into
 *               rotation and the next real request is the test */
#ifndef AUTOSWITCH_PROBE_H
#define AUTOSWITCH_PROBE_H

#include <stdint.h>

struct health_entry;

/* (Re)schedule the next probe of h after delay_ms. */
void probe_schedule(struct health_entry *h, uint64_t delay_ms);
/* Stop the running probe and the schedule of h. */
void probe_cancel(struct health_entry *h);

#endif
