#include "loop.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct watch {
    loop_io_cb cb;
    void *ctx;
    short woken;      /* revents injected by loop_wake */
    unsigned gen;     /* bumped on every add, so reused fds are told apart */
    size_t dense;     /* index + 1 in the poll array; 0 = not watched */
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
    struct pollfd *pfd;    /* the poll set itself, kept between iterations */
    size_t nfds, pfd_cap;
    struct ready *ready;   /* this iteration's ready fds */
    size_t ready_cap;
    struct loop_timer **heap;
    size_t nheap, heap_cap;
    struct deferred *defer;
    size_t ndefer, defer_cap;
    size_t nwoken;
    uint64_t now;
    bool stop;
} L;

uint64_t loop_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    L.now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    return L.now;
}

uint64_t loop_now(void)
{
    return L.now;
}

int loop_init(void)
{
    memset(&L, 0, sizeof L);
    loop_clock();
    return 0;
}

void loop_free(void)
{
    free(L.watch);
    free(L.pfd);
    free(L.ready);
    free(L.heap);
    free(L.defer);
    memset(&L, 0, sizeof L);
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

int loop_add(int fd, short events, loop_io_cb cb, void *ctx)
{
    if (fd < 0)
        return -1;
    size_t old = L.watch_cap;
    if (grow((void **)&L.watch, &L.watch_cap, (size_t)fd + 1, sizeof *L.watch) < 0)
        return -1;
    if (L.watch_cap > old)
        memset(L.watch + old, 0, (L.watch_cap - old) * sizeof *L.watch);
    if (grow((void **)&L.pfd, &L.pfd_cap, L.nfds + 1, sizeof *L.pfd) < 0)
        return -1;
    struct watch *w = &L.watch[fd];
    if (w->dense)
        return -1;   /* already watched: a bug in the caller */
    unsigned gen = w->gen + 1;
    *w = (struct watch){ .cb = cb, .ctx = ctx, .gen = gen };
    L.pfd[L.nfds] = (struct pollfd){ .fd = fd, .events = events };
    w->dense = ++L.nfds;
    return 0;
}

void loop_mod(int fd, short events)
{
    if (fd >= 0 && (size_t)fd < L.watch_cap && L.watch[fd].dense)
        L.pfd[L.watch[fd].dense - 1].events = events;
}

void loop_del(int fd)
{
    if (fd < 0 || (size_t)fd >= L.watch_cap || !L.watch[fd].dense)
        return;
    struct watch *w = &L.watch[fd];
    size_t i = w->dense - 1;
    struct pollfd last = L.pfd[--L.nfds];
    L.pfd[i] = last;
    if (last.fd != fd)
        L.watch[last.fd].dense = i + 1;
    if (w->woken)
        L.nwoken--;
    w->dense = 0;
    w->woken = 0;
    w->cb = NULL;
    w->ctx = NULL;
    w->gen++;
}

void loop_wake(int fd, short revents)
{
    if (fd < 0 || (size_t)fd >= L.watch_cap || !L.watch[fd].dense)
        return;
    if (!L.watch[fd].woken)
        L.nwoken++;
    L.watch[fd].woken |= revents;
}

size_t loop_fd_count(void)
{
    return L.nfds;
}

/* ---- timers: binary min-heap ordered by due time ---- */

static void heap_place(size_t i, struct loop_timer *t)
{
    L.heap[i] = t;
    t->slot = i + 1;
}

static void heap_up(size_t i)
{
    struct loop_timer *t = L.heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (L.heap[parent]->due <= t->due)
            break;
        heap_place(i, L.heap[parent]);
        i = parent;
    }
    heap_place(i, t);
}

static void heap_down(size_t i)
{
    struct loop_timer *t = L.heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= L.nheap)
            break;
        if (c + 1 < L.nheap && L.heap[c + 1]->due < L.heap[c]->due)
            c++;
        if (L.heap[c]->due >= t->due)
            break;
        heap_place(i, L.heap[c]);
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
    struct loop_timer *last = L.heap[--L.nheap];
    if (i == L.nheap)
        return;
    heap_place(i, last);
    heap_up(i);
    heap_down(last->slot - 1);
}

void loop_timer_set(struct loop_timer *t, uint64_t delay_ms)
{
    loop_timer_stop(t);
    if (grow((void **)&L.heap, &L.heap_cap, L.nheap + 1, sizeof *L.heap) < 0)
        abort();  /* a lost timer would hang a connection forever */
    t->due = L.now + delay_ms;
    heap_place(L.nheap++, t);
    heap_up(L.nheap - 1);
}

int loop_defer(loop_defer_cb fn, void *ctx)
{
    if (grow((void **)&L.defer, &L.defer_cap, L.ndefer + 1, sizeof *L.defer) < 0)
        abort();  /* a lost deferred free would leak or double-use memory */
    L.defer[L.ndefer++] = (struct deferred){ fn, ctx };
    return 0;
}

static void run_deferred(void)
{
    /* Deferred calls may defer more; run until the queue is empty. */
    for (size_t i = 0; i < L.ndefer; i++) {
        struct deferred d = L.defer[i];
        d.fn(d.ctx);
    }
    L.ndefer = 0;
}

static void run_timers(void)
{
    while (L.nheap && L.heap[0]->due <= L.now) {
        struct loop_timer *t = L.heap[0];
        loop_timer_stop(t);
        t->cb(t->ctx);
    }
}

int loop_run_once(int max_wait_ms)
{
    int timeout = max_wait_ms;
    if (L.nheap) {
        uint64_t due = L.heap[0]->due;
        uint64_t wait = due > L.now ? due - L.now : 0;
        if (timeout < 0 || wait < (uint64_t)timeout)
            timeout = wait > 1000000 ? 1000000 : (int)wait;
    }
    if (L.nwoken || L.ndefer)
        timeout = 0;

    size_t n = L.nfds;
    int r = poll(L.pfd, (nfds_t)n, timeout);
    if (r < 0 && errno != EINTR)
        return -1;
    loop_clock();

    /* Copy out what is ready (and what was woken) before dispatching. */
    if (grow((void **)&L.ready, &L.ready_cap, n ? n : 1, sizeof *L.ready) < 0)
        return -1;
    size_t nready = 0;
    for (size_t i = 0; i < n && (r > 0 || L.nwoken); i++) {
        struct pollfd *p = &L.pfd[i];
        struct watch *w = &L.watch[p->fd];
        short rev = (short)(r > 0 ? p->revents : 0);
        if (w->woken) {
            rev |= w->woken;
            w->woken = 0;
            L.nwoken--;
        }
        p->revents = 0;
        if (rev)
            L.ready[nready++] = (struct ready){ p->fd, w->gen, rev };
    }
    for (size_t i = 0; i < nready; i++) {
        struct watch *w = &L.watch[L.ready[i].fd];
        if (!w->dense || w->gen != L.ready[i].gen)
            continue;  /* removed, or closed and reused, by an earlier callback */
        w->cb(w->ctx, L.ready[i].revents);
    }
    run_timers();
    run_deferred();
    return 0;
}

void loop_run(void)
{
    L.stop = false;
    while (!L.stop) {
        if (loop_run_once(-1) < 0)
            break;
    }
}

void loop_stop(void)
{
    L.stop = true;
}
