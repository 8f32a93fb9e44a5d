/* balance: which candidates a request tries, in which order.
 *
 * Candidates are the usable ones (healthy, not cooling down), or all of
 * them when none is usable (as the reference does).  The first attempt is
 * chosen by smooth weighted round robin (nginx's algorithm) inside the
 * best (lowest) priority group, so weights 10:1 or 3:2 interleave and
 * never burst.  The remaining attempts follow priority order, then weight
 * descending, then config order.  Attempts = min(max_retries, candidates).
 *
 * Half-open recovery: an unhealthy candidate whose recovery wait is over
 * (health_trial_due) goes first as one extra attempt, when no healthy
 * candidate has a better priority: a recovered primary is back in
 * rotation within recovery_interval, a recovering backup is never tried
 * ahead of a healthy primary, and the trial is never a request's last
 * attempt while a healthy candidate remains.  One trial runs at a time
 * (the caller marks it running). */
#ifndef AUTOSWITCH_BALANCE_H
#define AUTOSWITCH_BALANCE_H

#include <stddef.h>

#include "snapshot.h"

#define BAL_MAX_ATTEMPTS 64

/* Fill out[] (cap entries) with the attempt order; returns the count. */
/* cls: the request's endpoint class, whose health decides. */
size_t balance_plan(const struct alias_entry *a, enum ep_class cls, int max_retries, const struct candidate **out,
                    size_t cap);

#endif
