/* health: the state the gateway keeps about its upstreams across requests
 * and reloads.  Plain data: whoever sees an outcome reports it here, and
 * acts on what the report returns (the proxy schedules a probe when a
 * model just became unhealthy); this module calls nobody.
 *
 * health_entry, keyed (provider name, dialect, upstream model, endpoint
 * class): consecutive failures, healthy or not, 429 cooldown, last error,
 * and the probe schedule the probe module writes for display.  The class
 * keeps a route a model does not serve (a chat model sent to
 * /v1/audio/speech, answering 404) from taking its chat route out.
 * stat_entry, keyed (provider name, dialect, alias, upstream model): request
 * counters, latency samples, the smooth-weighted-round-robin position.
 *
 * Entries live in tables owned by this module and are reference counted:
 * every mapping of a live snapshot holds its two entries (a reload takes
 * the entries that already exist, so their state survives), a probe holds
 * the entry it watches, and an entry nobody holds is freed. */
#ifndef AUTOSWITCH_HEALTH_H
#define AUTOSWITCH_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "endpoint.h"
#include "event.h"
#include "hist.h"

#define HEALTH_ERROR_MAX 200   /* bytes of the last error message kept */

struct health_entry {
    struct health_entry *next;
    char *provider;
    enum dialect dialect;
    char *upstream;
    enum ep_class cls;
    unsigned refs;
    int max_failures;            /* threshold from the newest config */
    bool healthy;
    unsigned consecutive;        /* consecutive failures */
    uint64_t changed_wall;       /* when healthy last changed (wall ms) */
    uint64_t cooldown_until;     /* monotonic ms; 0 = not cooling down */
    uint64_t cooldown_wall;      /* the same, wall clock, for display */
    char last_error[HEALTH_ERROR_MAX];
    uint64_t last_error_wall;
    unsigned in_flight;
    /* half-open recovery: after its wait an unhealthy model gets one real
     * request at a time (balance.c) */
    uint64_t trial_after;        /* monotonic ms from which a trial may run */
    bool trial_running;
    /* written by the probe module (probe.h), read for display */
    void *probe;                 /* the probe module's schedule, or NULL */
    bool probing;                /* a probe request is running */
    uint64_t next_probe_wall;    /* 0 = none scheduled */
    unsigned probes;             /* probes run since it went unhealthy */
};

struct stat_entry {
    struct stat_entry *next;
    char *provider;
    enum dialect dialect;
    char *alias;
    char *upstream;
    unsigned refs;
    int64_t swrr_current;        /* smooth weighted round robin state */
    uint64_t total;              /* attempts that ended (success or failure) */
    uint64_t success;
    uint64_t failures;
    uint64_t by_class[6];        /* [0] no HTTP answer, [1..5] 1xx..5xx */
    uint64_t failovers;          /* failed attempts followed by another */
    uint64_t retries;            /* attempts repeated on it (transient failure, Retry-After) */
    uint64_t continuations;      /* broken streams it continued */
    uint64_t bytes_out;
    struct hist latency; /* whole attempt, ms */
    struct hist ttft;    /* streams: first content byte, ms */
    struct recent lat_recent;
    struct recent ttft_recent;
};

/* The entry for the key, created healthy when new, with one more
 * reference; NULL when out of memory.  put drops the reference. */
struct health_entry *health_get(const char *provider, enum dialect d, const char *upstream, enum ep_class cls);
void health_put(struct health_entry *h);
struct stat_entry *stat_get(const char *provider, enum dialect d, const char *alias, const char *upstream);
void stat_put(struct stat_entry *st);
/* At exit, after everyone let go: free what is left. */
void health_free_all(void);

/* Usable for a new attempt: healthy and not cooling down. */
bool health_usable(const struct health_entry *h);
bool health_cooling(const struct health_entry *h);

/* Outcomes of attempts.  Failures and successes update both entries.
 * success: true when the model was unhealthy and is healthy again (the
 * caller stops its probes). */
bool health_success(struct health_entry *h, struct stat_entry *st, int status,
                    uint64_t latency_ms, int64_t ttft_ms);
/* counts: whether it counts against health (false: client-side 4xx).
 * true when this failure made the model unhealthy (the caller schedules
 * its recovery).  wait_ms: how long until a real request may try it again
 * (recovery_interval), from when it became unhealthy or a trial failed. */
bool health_failure(struct health_entry *h, struct stat_entry *st, int status, bool counts,
                    const char *reason, uint64_t wait_ms);
/* Whether an unhealthy model's wait is over and no trial runs. */
bool health_trial_due(const struct health_entry *h);
/* A 429: cool down for ms (already capped), not a hard failure. */
void health_cooldown(struct health_entry *h, struct stat_entry *st, uint64_t ms, const char *reason);
/* A probe said the model works again.  true when it was unhealthy. */
bool health_recovered(struct health_entry *h, const char *how);

/* Iterate all live entries (for metrics). */
struct health_entry *health_entries(void);
struct stat_entry *stat_entries(void);

#endif
