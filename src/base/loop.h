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
 *    iteration could still reach them: free them with loop_defer(). */
#ifndef AUTOSWITCH_LOOP_H
#define AUTOSWITCH_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
/* Dispatch fd in the next iteration with revents even if poll() reports
 * nothing, without sleeping first: for bytes already buffered in user
 * space (TLS plaintext, pipelined requests). */
void loop_wake(int fd, short revents);
size_t loop_fd_count(void);

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
