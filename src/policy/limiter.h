/* limiter: the limits of one named client key (rpm, max_concurrent,
 * daily_tokens), as a pure state machine.
 *
 * Nothing here reads a clock, a file or a socket: the time is always a
 * parameter.  The one exception is the day helper at the end,
 * limit_local_day, which consults the time zone (localtime_r, mktime);
 * limit_fixed_day is its pure twin for a zone at a fixed UTC offset.
 *
 * Ownership.  struct limit_state is a plain value embedded by the caller,
 * one per key, zero-initialised (LIMIT_STATE_INIT).  It holds no pointer
 * and allocates nothing.  The limits are NOT stored in it: every call takes
 * the key's current struct limit_cfg, so a config reload that keeps the
 * key keeps its state (window, in-flight count, tokens of the day) and a
 * changed limit applies from the next call on.  A limit of 0 means "no
 * limit"; the state still counts, so a limit added by a reload sees the
 * real recent traffic at once.
 *
 * Clocks.  now_ms is the wall clock in milliseconds (wall_ms()).  Any
 * millisecond clock works for the rpm window alone, but limit_admit also
 * measures the time to the end of the day with it, and days are wall-clock
 * things.  The window survives the clock stepping backwards (the counts
 * stay as "the most recent seconds"; nothing goes negative) and any jump
 * forwards (everything older than the window is forgotten).
 *
 * The use per request, once the key is known and the model is allowed:
 *
 *     struct limit_verdict v;
 *     if (limit_admit(&key->limits, &key->state, now_ms, &day, &v) != LIMIT_OK)
 *         -> 429, Retry-After: ceil(v.retry_ms / 1000)
 *     ... the request runs ...
 *     limit_release(&key->state);
 *     limit_tokens_charge(&key->state, day_now.day, usage.total_tokens);
 *
 * limit_admit checks every limit first and only then records (one more
 * request in the window, one more in flight), so a refused request leaves
 * no trace.  The single-limit functions below are the same steps, for a
 * caller that wants them apart; each check_* call changes nothing but the
 * state's notion of "now" (the window slides, the day rolls). */
#ifndef AUTOSWITCH_LIMITER_H
#define AUTOSWITCH_LIMITER_H

#include <stdbool.h>
#include <stdint.h>

/* The rpm window: 60 s, counted in buckets of one second.  Checking at
 * second S counts the buckets of seconds S-60 .. S: the current one and
 * the 60 complete ones before it.  That is 61 buckets, one more than the
 * 60 an exact window needs, because a request at S-60.999 s is less than
 * 60 s old at S.000 and must still be counted: with 60 buckets two full
 * bursts 59.001 s apart would both be admitted.  So no 60 s interval ever
 * holds more than rpm admitted requests, and the price is that a request
 * keeps counting up to one second longer than 60 s (a slot frees up to a
 * second late, i.e. the limiter may refuse up to a second early). */
#define LIMIT_WINDOW_SECS 60
#define LIMIT_RPM_BUCKETS (LIMIT_WINDOW_SECS + 1)
#define LIMIT_MS_PER_SEC 1000
#define LIMIT_MS_PER_DAY 86400000LL
/* A concurrency refusal has no natural end; this is the Retry-After hint. */
#define LIMIT_CONCURRENCY_RETRY_MS 1000
/* The day helpers clamp their time to +-2^53 ms (285,000 years) so their
 * arithmetic cannot overflow on absurd clocks. */
#define LIMIT_TIME_MAX_MS (1LL << 53)

/* The limits of a key, from the config; 0 = no limit. */
struct limit_cfg {
    uint32_t rpm;              /* requests in any 60 s */
    uint32_t max_concurrent;   /* requests in flight */
    uint64_t daily_tokens;     /* total tokens per local day */
};

/* Per-key state.  Treat the members as private. */
struct limit_state {
    uint32_t count[LIMIT_RPM_BUCKETS];  /* requests per second, a ring */
    uint32_t head;                      /* index of the newest second's bucket */
    int64_t newest;                     /* that second (floor(now_ms / 1000)) */
    uint64_t in_window;                 /* sum of count[] */
    uint32_t in_flight;
    int64_t day;                        /* the day `tokens` belongs to */
    uint64_t tokens;                    /* tokens charged on that day */
};

#define LIMIT_STATE_INIT { { 0 }, 0, 0, 0, 0, 0, 0 }

/* A local day: its number and where it starts and ends, in wall ms.  A day
 * is 23 or 25 hours long when the clocks change, which is why the end is
 * computed by the helpers below and not as start + 24 h. */
struct limit_day {
    int64_t day;        /* days since 1970-01-01 of the local date */
    int64_t start_ms;   /* the local midnight that begins it */
    int64_t end_ms;     /* the next local midnight */
};

enum limit_result {
    LIMIT_OK = 0,
    LIMIT_RPM,          /* rpm reached */
    LIMIT_CONCURRENT,   /* max_concurrent reached */
    LIMIT_TOKENS        /* daily_tokens used up */
};

struct limit_verdict {
    enum limit_result result;
    int64_t retry_ms;   /* > 0 when refused: when to try again (round up to
                           whole seconds for Retry-After); 0 when admitted */
};

/* ---------------- the pure core ---------------- */

/* Check every limit, tokens first (the longest wait), then rpm, then
 * concurrency.  Admitted: the request is recorded in the window and takes
 * an in-flight slot (give it back with limit_release).  Refused: nothing
 * is recorded.  `day` is the current local day (limit_local_day), with
 * now_ms on the same wall clock.  Returns v->result. */
enum limit_result limit_admit(const struct limit_cfg *cfg, struct limit_state *st, int64_t now_ms,
                              const struct limit_day *day, struct limit_verdict *v);

/* rpm.  0 when one more request fits in the window; else -1 and
 * *retry_ms (may be NULL) = milliseconds until it would fit, in
 * (0, 61000], with no other request recorded in between. */
int limit_rpm_check(const struct limit_cfg *cfg, struct limit_state *st, int64_t now_ms, int64_t *retry_ms);
/* Count one admitted request at now_ms (also when rpm is 0). */
void limit_rpm_record(struct limit_state *st, int64_t now_ms);
/* Requests counted in the window at now_ms (slides the window). */
uint64_t limit_rpm_used(struct limit_state *st, int64_t now_ms);

/* max_concurrent.  0 and one more in flight, or -1 when the limit is
 * reached.  limit_release never goes below zero. */
int limit_acquire(const struct limit_cfg *cfg, struct limit_state *st);
void limit_release(struct limit_state *st);

/* daily_tokens.  Any change of the day number (forwards, or backwards when
 * the clock is set back) starts the day's count at 0: a clock that was
 * wrong and is corrected must never block a key for the days in between.
 * check: 0 while used < cap, -1 once used >= cap (a request may overshoot
 * the cap: it is charged afterwards with its real usage, and the key is
 * refused from then on).  charge: add the tokens of a finished request to
 * the day it finished on (saturating). */
int limit_tokens_check(const struct limit_cfg *cfg, struct limit_state *st, int64_t day);
void limit_tokens_charge(struct limit_state *st, int64_t day, uint64_t tokens);
/* Set the day's count, e.g. from usage_sum() after a restart, since the
 * state itself lives in memory only. */
void limit_tokens_seed(struct limit_state *st, int64_t day, uint64_t tokens);
/* Tokens charged on `day` (0 for any other day); changes nothing. */
uint64_t limit_tokens_used(const struct limit_state *st, int64_t day);

/* The day containing wall_ms in a zone at a fixed offset east of UTC (no
 * daylight saving time).  Pure. */
void limit_fixed_day(int64_t wall_ms, int32_t utc_offset_s, struct limit_day *out);
/* Whether wall_ms still falls inside d (so a cached day can be kept). */
static inline bool limit_day_holds(const struct limit_day *d, int64_t wall_ms)
{
    return wall_ms >= d->start_ms && wall_ms < d->end_ms;
}

/* ---------------- not pure: reads the time zone ---------------- */

/* The local day containing wall_ms (TZ, /etc/localtime): the date from
 * localtime_r, its start and end from mktime on 00:00 of that date and of
 * the next one with tm_isdst = -1, so a 23 or 25 hour day ends at the real
 * midnight.  A midnight that does not exist (a zone that springs forward
 * at 00:00) is whatever mktime makes of it, in practice 01:00.  Call it
 * once per day, not per request (mktime may read the zone file): keep the
 * result while limit_day_holds().  0, or -1 when the C library fails
 * (then *out is the UTC day). */
int limit_local_day(int64_t wall_ms, struct limit_day *out);

#endif
