/* counters: process-wide totals (plain data).
 *
 * Written by whoever sees the event (the proxy, probes, reloads, the
 * app's request hook); read by the metrics renderers. */
#ifndef AUTOSWITCH_COUNTERS_H
#define AUTOSWITCH_COUNTERS_H

#include <stdint.h>

struct counters {
    uint64_t proxied;           /* of which went to the proxy */
    uint64_t attempts;          /* upstream attempts started */
    uint64_t failovers;         /* attempts after a failed one */
    uint64_t exhausted;         /* requests where every attempt failed */
    uint64_t client_aborts;     /* clients that left mid-request */
    uint64_t bytes_in;          /* request bodies */
    uint64_t bytes_out;         /* response bodies */
    uint64_t retries;           /* attempts repeated on the same candidate (transient failures) */
    uint64_t retry_after_waits; /* ... after waiting out a short Retry-After */
    uint64_t busy_backoffs;     /* ... after every candidate was rate limited or overloaded */
    uint64_t continuations;     /* broken streams handed to another candidate */
    uint64_t continued_ok;      /* requests continued that then ended complete */
    uint64_t stream_errors;     /* committed streams that ended with an error event */
    uint64_t timeouts;          /* requests that ran out of request_timeout (504) */
    uint64_t trials;            /* half-open trials of recovering models */
    uint64_t probes;
    uint64_t invalid_keys;      /* /v1 requests with an unknown client key (401) */
    uint64_t reloads;
    uint64_t reload_failures;
    uint64_t start_wall_ms;
};

extern struct counters counters;

#endif
