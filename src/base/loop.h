/* loop: the only place the program waits.
 *
 * One poll() set, a min-heap of timers and a queue of deferred calls.
 * There is exactly one loop per process (one thread by design), so the
 * API is a set of functions over a module-level instance.
 *
 * Rules for callbacks:
 *  - An I/O callback receives the poll revents.  POLLERR and POLLHUP are
 *    reported even for an fd registered with no events, so every callback
 *    must handle them (normally by closing).
 *  - A callback may register, modify or remove any fd or timer, itself
 *    included.  The loop re-checks registration (and a generation number,
 *    so a closed-and-reused fd number never gets a stale event) before
 *    every dispatch.
 *  - Objects must not be freed while another callback of the same
 *    iteration could still reach them: free them with loop_defer().
 *
 * Cost that grows with work, not with connections (poll() scans every
 * descriptor it is given, and that scan is most of its cost):
 *  - Cold set: an fd its owner marked coldable (a keep-alive client
 *    waiting for its next request, a client whose answer is being made)
 *    that had no event for LOOP_COLD_AFTER_MS (looked for every
 *    LOOP_COOL_EVERY_MS) is polled only every LOOP_COLD_SCAN_MS, until it
 *    has an event, is woken, or wants to write.
 *    Where the kernel can signal a cold fd's events (coldsig.h: Linux) it
 *    does, and the cold set is looked at only every LOOP_COLD_CHECK_MS,
 *    in case a signal was lost.
 *  - Batching: when the hot set is large (LOOP_BATCH_MIN_FDS) and the
 *    last poll() found few of them ready, the loop waits a short slice
 *    before the next poll() so that events gather (LOOP_BATCH_NS_PER_FD
 *    per hot fd, between LOOP_BATCH_MIN_US and LOOP_BATCH_MAX_US), never
 *    past a due timer and never while work is already waiting (woken
 *    fds, deferred calls).  A poll() over n fds costs 20-100 ns per fd
 *    (the upper end on virtual machines), so it then takes a fifth of the
 *    loop's time at most, for an added delay of at most one slice. */
#ifndef AUTOSWITCH_LOOP_H
#define AUTOSWITCH_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOOP_COLD_AFTER_MS 250      /* a coldable fd idle this long goes cold ... */
#define LOOP_COOL_EVERY_MS 50       /* ... looked for this often */
#define LOOP_COLD_SCAN_MS 10        /* cold fds are polled this often ... */
#define LOOP_COLD_CHECK_MS 1000     /* ... or this often when the kernel signals their events */
#define LOOP_BATCH_MIN_FDS 256      /* hot sets below this are polled at once */
#define LOOP_BATCH_NS_PER_FD 400    /* the wait slice per hot fd (poll() costs 20-100 ns each) */
#define LOOP_BATCH_MIN_US 300       /* the shortest: a poll() call costs as much as a few events */
#define LOOP_BATCH_MAX_US 500       /* the longest wait slice: the delay it may add to an event */

typedef void (*loop_io_cb)(void *ctx, int revents);
typedef void (*loop_timer_cb)(void *ctx);
typedef void (*loop_defer_cb)(void *ctx);

/* A timer lives inside its owner; the loop only links it into the heap. */
struct loop_timer {
    uint64_t due;     /* monotonic ms */
    size_t slot;      /* heap index + 1; 0 when not armed */
    loop_timer_cb cb;
    void *ctx;
};

int loop_init(void);
void loop_free(void);

/* Watch fd with the given poll events (POLLIN, POLLOUT or 0). 0 or -1. */
int loop_add(int fd, short events, loop_io_cb cb, void *ctx);
void loop_mod(int fd, short events);
void loop_del(int fd);
/* Whether fd only waits for something that may take a while (see the
 * cold set above); false makes it hot at once. */
void loop_coldable(int fd, bool coldable);
/* Dispatch fd in the next iteration with revents even if poll() reports
 * nothing, without sleeping first: for bytes already buffered in user
 * space (TLS plaintext, pipelined requests). */
void loop_wake(int fd, short revents);
size_t loop_fd_count(void);
/* How many of them are cold now (for tests and stats). */
size_t loop_cold_count(void);

void loop_timer_init(struct loop_timer *t, loop_timer_cb cb, void *ctx);
void loop_timer_set(struct loop_timer *t, uint64_t delay_ms);
void loop_timer_stop(struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t) { return t->slot != 0; }

/* Run fn(ctx) after every I/O and timer callback of this iteration. */
int loop_defer(loop_defer_cb fn, void *ctx);

/* Monotonic milliseconds, refreshed once per iteration. */
uint64_t loop_now(void);
/* Re-read the clock (for code that measures within one iteration). */
uint64_t loop_clock(void);

/* One iteration, waiting at most max_wait_ms (-1: until an event or timer). */
int loop_run_once(int max_wait_ms);
/* Iterate until loop_stop(). */
void loop_run(void);
void loop_stop(void);

#endif
