#include "loop.h"

#include "coldsig.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct watch {
    loop_io_cb cb;
    void *ctx;
    short woken;      /* revents injected by loop_wake */
    bool coldable;    /* its owner waits for nothing urgent (loop_coldable) */
    unsigned gen;     /* bumped on every add, so reused fds are told apart */
    size_t dense;     /* index + 1 in the poll array; 0 = not watched */
    uint64_t active;  /* loop_now() of its last event, or of becoming coldable */
    bool armed;       /* cold, and the kernel signals its events (coldsig) */
    int flags;        /* its status flags before arming */
};

/* A ready fd, copied out of the poll array before any callback runs, so
 * callbacks may add and remove fds (which reorders the array) freely. */
struct ready {
    int fd;
    unsigned gen;
    short revents;
};

struct deferred {
    loop_defer_cb fn;
    void *ctx;
};

static struct {
    struct watch *watch;   /* indexed by fd */
    size_t watch_cap;
    struct pollfd *pfd;    /* the poll set itself, kept between iterations: */
    size_t nfds, pfd_cap;  /* [0, nhot) hot, polled every time; [nhot, nfds) cold */
    size_t nhot;
    uint64_t cold_scan;    /* when the cold ones are polled next */
    uint64_t cool_at;      /* when idle hot ones are moved to the cold set next */
    int notes_fd;          /* coldsig's pipe, or -1: cold fds are then scanned */
    int last_ready;        /* what the last poll() returned */
    struct ready *ready;   /* this iteration's ready fds */
    size_t ready_cap;
    struct loop_timer **heap;
    size_t nheap, heap_cap;
    struct deferred *defer;
    size_t ndefer, defer_cap;
    size_t nwoken;
    uint64_t now;
    bool stop;
} poller;

uint64_t loop_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    poller.now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    return poller.now;
}

uint64_t loop_now(void)
{
    return poller.now;
}

static void on_notes(void *ctx, int revents);

int loop_init(void)
{
    memset(&poller, 0, sizeof poller);
    loop_clock();
    poller.notes_fd = coldsig_init();
    if (poller.notes_fd >= 0 && loop_add(poller.notes_fd, POLLIN, on_notes, NULL) < 0) {
        coldsig_free();
        poller.notes_fd = -1;
    }
    return 0;
}

void loop_free(void)
{
    for (size_t i = 0; i < poller.nfds; i++)
        if (poller.watch[poller.pfd[i].fd].armed)
            coldsig_disarm(poller.pfd[i].fd, poller.watch[poller.pfd[i].fd].flags);
    if (poller.notes_fd >= 0)
        coldsig_free();
    free(poller.watch);
    free(poller.pfd);
    free(poller.ready);
    free(poller.heap);
    free(poller.defer);
    memset(&poller, 0, sizeof poller);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* ---- the hot and cold regions of the poll array ---- */

static void swap(size_t i, size_t j)
{
    if (i == j)
        return;
    struct pollfd t = poller.pfd[i];
    poller.pfd[i] = poller.pfd[j];
    poller.pfd[j] = t;
    poller.watch[poller.pfd[i].fd].dense = i + 1;
    poller.watch[poller.pfd[j].fd].dense = j + 1;
}

static struct watch *watched(int fd)
{
    return fd >= 0 && (size_t)fd < poller.watch_cap && poller.watch[fd].dense ? &poller.watch[fd] : NULL;
}

static void make_hot(struct watch *w)
{
    if (w->dense - 1 < poller.nhot)
        return;
    if (w->armed) {
        coldsig_disarm(poller.pfd[w->dense - 1].fd, w->flags);
        w->armed = false;
    }
    swap(w->dense - 1, poller.nhot++);
}

/* Coldable fds that had no event for LOOP_COLD_AFTER_MS and wait only
 * for input move to the cold region (called every LOOP_COOL_EVERY_MS).  When
 * the kernel can signal their events they are armed first (one that
 * cannot be stays hot), then looked at once more: input that came before
 * arming raised no signal. */
static void cool_down(void)
{
    size_t was_hot = poller.nhot;
    for (size_t i = poller.nhot; i-- > 0;) {
        struct pollfd *p = &poller.pfd[i];
        struct watch *w = &poller.watch[p->fd];
        if (!w->coldable || w->woken || (p->events & POLLOUT) || poller.now - w->active < LOOP_COLD_AFTER_MS)
            continue;
        if (poller.notes_fd >= 0) {
            if (coldsig_arm(p->fd, &w->flags) < 0)
                continue;
            w->armed = true;
        }
        swap(i, --poller.nhot);
    }
    if (poller.notes_fd < 0 || poller.nhot == was_hot)
        return;
    size_t n = was_hot - poller.nhot;
    if (poll(poller.pfd + poller.nhot, (nfds_t)n, 0) <= 0)
        return;
    for (size_t i = was_hot; i-- > was_hot - n;)
        if (poller.pfd[i].revents)
            make_hot(&poller.watch[poller.pfd[i].fd]);
}

/* The fds the kernel signalled (coldsig) are hot again: the next poll()
 * finds what they have.  A lost signal means a look at the whole cold
 * set in the next iteration. */
static void on_notes(void *ctx, int revents)
{
    (void)ctx;
    (void)revents;
    int fds[256];
    size_t n;
    bool lost;
    do {
        n = coldsig_read(fds, sizeof fds / sizeof fds[0], &lost);
        for (size_t i = 0; i < n; i++) {
            struct watch *w = watched(fds[i]);
            if (fds[i] < 0)
                lost = true;
            else if (w && w->dense - 1 >= poller.nhot) {
                w->active = poller.now;
                make_hot(w);
            }
        }
        if (lost)
            poller.cold_scan = 0;
    } while (n == sizeof fds / sizeof fds[0]);
}

int loop_add(int fd, short events, loop_io_cb cb, void *ctx)
{
    if (fd < 0)
        return -1;
    size_t old = poller.watch_cap;
    if (grow((void **)&poller.watch, &poller.watch_cap, (size_t)fd + 1, sizeof *poller.watch) < 0)
        return -1;
    if (poller.watch_cap > old)
        memset(poller.watch + old, 0, (poller.watch_cap - old) * sizeof *poller.watch);
    if (grow((void **)&poller.pfd, &poller.pfd_cap, poller.nfds + 1, sizeof *poller.pfd) < 0)
        return -1;
    struct watch *w = &poller.watch[fd];
    if (w->dense)
        return -1;   /* already watched: a bug in the caller */
    unsigned gen = w->gen + 1;
    *w = (struct watch){ .cb = cb, .ctx = ctx, .gen = gen };
    poller.pfd[poller.nfds] = (struct pollfd){ .fd = fd, .events = events };
    w->dense = ++poller.nfds;
    swap(poller.nhot++, poller.nfds - 1);   /* new ones are hot */
    return 0;
}

void loop_mod(int fd, short events)
{
    struct watch *w = watched(fd);
    if (!w)
        return;
    poller.pfd[w->dense - 1].events = events;
    if (events & POLLOUT)
        make_hot(w);
}

void loop_coldable(int fd, bool coldable)
{
    struct watch *w = watched(fd);
    if (!w || w->coldable == coldable)
        return;
    w->coldable = coldable;
    w->active = poller.now;
    if (!coldable)
        make_hot(w);
}

void loop_del(int fd)
{
    struct watch *w = watched(fd);
    if (!w)
        return;
    make_hot(w);
    swap(w->dense - 1, --poller.nhot);          /* the hot region's end ... */
    swap(poller.nhot, --poller.nfds);           /* ... then the array's end */
    if (w->woken)
        poller.nwoken--;
    w->dense = 0;
    w->woken = 0;
    w->cb = NULL;
    w->ctx = NULL;
    w->gen++;
}

void loop_wake(int fd, short revents)
{
    struct watch *w = watched(fd);
    if (!w)
        return;
    make_hot(w);   /* woken ones are dispatched from the hot region */
    if (!w->woken)
        poller.nwoken++;
    w->woken |= revents;
}

size_t loop_fd_count(void)
{
    return poller.nfds - (poller.notes_fd >= 0);
}

size_t loop_cold_count(void)
{
    return poller.nfds - poller.nhot;
}

/* ---- timers: binary min-heap ordered by due time ---- */

static void heap_place(size_t i, struct loop_timer *t)
{
    poller.heap[i] = t;
    t->slot = i + 1;
}

static void heap_up(size_t i)
{
    struct loop_timer *t = poller.heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (poller.heap[parent]->due <= t->due)
            break;
        heap_place(i, poller.heap[parent]);
        i = parent;
    }
    heap_place(i, t);
}

static void heap_down(size_t i)
{
    struct loop_timer *t = poller.heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= poller.nheap)
            break;
        if (c + 1 < poller.nheap && poller.heap[c + 1]->due < poller.heap[c]->due)
            c++;
        if (poller.heap[c]->due >= t->due)
            break;
        heap_place(i, poller.heap[c]);
        i = c;
    }
    heap_place(i, t);
}

void loop_timer_init(struct loop_timer *t, loop_timer_cb cb, void *ctx)
{
    t->due = 0;
    t->slot = 0;
    t->cb = cb;
    t->ctx = ctx;
}

void loop_timer_stop(struct loop_timer *t)
{
    if (!t->slot)
        return;
    size_t i = t->slot - 1;
    t->slot = 0;
    struct loop_timer *last = poller.heap[--poller.nheap];
    if (i == poller.nheap)
        return;
    heap_place(i, last);
    heap_up(i);
    heap_down(last->slot - 1);
}

void loop_timer_set(struct loop_timer *t, uint64_t delay_ms)
{
    loop_timer_stop(t);
    if (grow((void **)&poller.heap, &poller.heap_cap, poller.nheap + 1, sizeof *poller.heap) < 0)
        abort();  /* a lost timer would hang a connection forever */
    t->due = poller.now + delay_ms;
    heap_place(poller.nheap++, t);
    heap_up(poller.nheap - 1);
}

int loop_defer(loop_defer_cb fn, void *ctx)
{
    if (grow((void **)&poller.defer, &poller.defer_cap, poller.ndefer + 1, sizeof *poller.defer) < 0)
        abort();  /* a lost deferred free would leak or double-use memory */
    poller.defer[poller.ndefer++] = (struct deferred){ fn, ctx };
    return 0;
}

static void run_deferred(void)
{
    /* Deferred calls may defer more; run until the queue is empty. */
    for (size_t i = 0; i < poller.ndefer; i++) {
        struct deferred d = poller.defer[i];
        d.fn(d.ctx);
    }
    poller.ndefer = 0;
}

static void run_timers(void)
{
    while (poller.nheap && poller.heap[0]->due <= poller.now) {
        struct loop_timer *t = poller.heap[0];
        loop_timer_stop(t);
        t->cb(t->ctx);
    }
}

/* The wait before the next poll() that lets events gather (µs), 0 for
 * none: see "Batching" in loop.h. */
static long batch_slice_us(int timeout)
{
    if (poller.nhot < LOOP_BATCH_MIN_FDS || timeout == 0 ||
        (size_t)poller.last_ready * 32 >= poller.nhot)
        return 0;
    long us = (long)(poller.nhot * LOOP_BATCH_NS_PER_FD / 1000);
    if (us < LOOP_BATCH_MIN_US)
        us = LOOP_BATCH_MIN_US;
    if (us > LOOP_BATCH_MAX_US)
        us = LOOP_BATCH_MAX_US;
    if (timeout > 0 && (long)timeout * 1000 < us)
        us = (long)timeout * 1000;
    return us;
}

static int poll_timeout(int max_wait_ms)
{
    int timeout = max_wait_ms;
    if (poller.nheap) {
        uint64_t due = poller.heap[0]->due;
        uint64_t wait = due > poller.now ? due - poller.now : 0;
        if (timeout < 0 || wait < (uint64_t)timeout)
            timeout = wait > 1000000 ? 1000000 : (int)wait;
    }
    if (poller.nhot < poller.nfds) {
        uint64_t wait = poller.cold_scan > poller.now ? poller.cold_scan - poller.now : 0;
        if (timeout < 0 || wait < (uint64_t)timeout)
            timeout = (int)wait;
    }
    if (poller.nwoken || poller.ndefer)
        timeout = 0;
    return timeout;
}

/* Copy out what is ready among the first n (and what was woken) before
 * dispatching; ready fds are hot again. */
static size_t collect(size_t n, int r)
{
    size_t nready = 0;
    for (size_t i = 0; i < n && (r > 0 || poller.nwoken); i++) {
        struct pollfd *p = &poller.pfd[i];
        struct watch *w = &poller.watch[p->fd];
        short rev = (short)(r > 0 ? p->revents : 0);
        if (w->woken) {
            rev |= w->woken;
            w->woken = 0;
            poller.nwoken--;
        }
        p->revents = 0;
        if (rev)
            poller.ready[nready++] = (struct ready){ p->fd, w->gen, rev };
    }
    for (size_t i = 0; i < nready; i++) {
        struct watch *w = &poller.watch[poller.ready[i].fd];
        w->active = poller.now;
        make_hot(w);
    }
    return nready;
}

int loop_run_once(int max_wait_ms)
{
    int timeout = poll_timeout(max_wait_ms);
    long slice = batch_slice_us(timeout);
    if (slice > 0) {
        struct timespec ts = { 0, slice * 1000 };
        nanosleep(&ts, NULL);
        uint64_t before = poller.now;
        loop_clock();
        if (timeout > 0)
            timeout = poller.now - before >= (uint64_t)timeout ? 0 : timeout - (int)(poller.now - before);
    }
    /* The cold ones ride along every LOOP_COLD_SCAN_MS. */
    bool cold_scan = poller.nhot < poller.nfds && poller.now >= poller.cold_scan;
    size_t n = cold_scan ? poller.nfds : poller.nhot;
    int r = poll(poller.pfd, (nfds_t)n, timeout);
    if (r < 0 && errno != EINTR)
        return -1;
    loop_clock();
    poller.last_ready = r > 0 ? r : 0;
    if (cold_scan || (poller.nhot == poller.nfds && poller.now >= poller.cold_scan))
        poller.cold_scan = poller.now + (poller.notes_fd >= 0 ? LOOP_COLD_CHECK_MS : LOOP_COLD_SCAN_MS);
    if (poller.now >= poller.cool_at) {
        poller.cool_at = poller.now + LOOP_COOL_EVERY_MS;
        cool_down();
    }
    if (grow((void **)&poller.ready, &poller.ready_cap, n ? n : 1, sizeof *poller.ready) < 0)
        return -1;
    size_t nready = collect(n, r);
    for (size_t i = 0; i < nready; i++) {
        struct watch *w = &poller.watch[poller.ready[i].fd];
        if (!w->dense || w->gen != poller.ready[i].gen)
            continue;  /* removed, or closed and reused, by an earlier callback */
        w->cb(w->ctx, poller.ready[i].revents);
    }
    run_timers();
    run_deferred();
    return 0;
}

void loop_run(void)
{
    poller.stop = false;
    while (!poller.stop) {
        if (loop_run_once(-1) < 0)
            break;
    }
}

void loop_stop(void)
{
    poller.stop = true;
}
