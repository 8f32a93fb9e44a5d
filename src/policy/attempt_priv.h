/* attempt_priv: what attempt.c (the failure table, the request's end)
 * and attempt_stream.c (events of a streamed answer) share. */
#ifndef AUTOSWITCH_ATTEMPT_PRIV_H
#define AUTOSWITCH_ATTEMPT_PRIV_H

#include "attempt.h"

/* How a failed attempt goes on (the failure table's right-hand side). */
enum fail_class {
    FC_TRANSIENT,    /* 5xx, 408, 409, a lost connection: the same candidate again, then the next */
    FC_NEXT,         /* next candidate at once, counts against health */
    FC_SOFT,         /* next candidate, no health effect (context length, a prefill refused) */
    FC_RATE,         /* 429 */
    FC_OVERLOADED,   /* 529 */
};

void att_queue(struct attempt *a, enum att_act_kind kind);
/* Queue bytes for the client (copied). */
void att_send(struct attempt *a, const char *p, size_t n);
/* The attempt failed: decide retry / failover / continuation. */
void att_failed(struct attempt *a, enum fail_class fc, int status, const char *reason, uint64_t now);
/* End the attempt with this outcome (no action queued). */
void att_set_outcome(struct attempt *a, enum att_out_kind kind, bool counts, const char *reason);
/* The client's stream cannot go on: our error event, then the end. */
void att_end_stream_with_error(struct attempt *a, const char *reason, bool with_outcome);

/* attempt_stream.c */
void stream_begin(struct attempt *a);
void stream_feed(struct attempt *a, const char *p, size_t n, uint64_t now);
void stream_ended(struct attempt *a, uint64_t now);
/* Whether the stream part of this attempt has delivered content. */
bool stream_content_started(const struct attempt *a);
bool stream_can_continue(const struct attempt *a);

#endif
