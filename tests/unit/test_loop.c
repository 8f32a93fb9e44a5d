/* The loop's hot and cold sets and its batching: every watched fd is still
 * dispatched (cold ones within a scan period, or at once where the kernel
 * signals them: then they are armed while cold and only then), removal
 * from either set keeps the others, a woken cold fd runs at once, timers
 * are never late because of a batching wait. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"
#include "tap.h"

#define NPIPES 300   /* above LOOP_BATCH_MIN_FDS */
/* Long enough for a coldable fd to go cold: idle past LOOP_COLD_AFTER_MS,
 * then the next look for idle ones. */
#define COOL_MS (LOOP_COLD_AFTER_MS + LOOP_COOL_EVERY_MS + 50)
#ifdef __linux__
#define SIGNALLED 1  /* coldsig works here: cold fds need no scan */
#else
#define SIGNALLED 0
#endif

static int rd[NPIPES], wr[NPIPES];
static int hits[NPIPES];
static int woken_rev;

static void on_read(void *ctx, int revents)
{
    int i = (int)(intptr_t)ctx;
    char b[64];
    if (revents & POLLIN)
        while (read(rd[i], b, sizeof b) > 0) {
        }
    if (revents & POLLPRI)
        woken_rev = revents;
    hits[i]++;
}

static void poke(int i)
{
    ssize_t n = write(wr[i], "x", 1);
    (void)n;
}

/* Run the loop until fd i was dispatched or ms passed; the time it took. */
static long until_hit(int i, long ms)
{
    uint64_t t0 = loop_clock();
    int before = hits[i];
    poke(i);
    while (hits[i] == before && loop_clock() - t0 < (uint64_t)ms)
        loop_run_once(5);
    return hits[i] != before ? (long)(loop_clock() - t0) : -1;
}

static void idle_for(long ms)
{
    uint64_t t0 = loop_clock();
    while (loop_clock() - t0 < (uint64_t)ms)
        loop_run_once(5);
}

static void on_hup(void *ctx, int revents)
{
    if (revents & (POLLHUP | POLLIN))
        (*(int *)ctx)++;
}

static void fired(void *ctx)
{
    *(uint64_t *)ctx = loop_clock();
}

int main(void)
{
    loop_init();
    for (int i = 0; i < NPIPES; i++) {
        int p[2];
        if (pipe(p) < 0)
            return 1;
        rd[i] = p[0];
        wr[i] = p[1];
        fcntl(rd[i], F_SETFL, O_NONBLOCK);
        loop_add(rd[i], POLLIN, on_read, (void *)(intptr_t)i);
    }
    /* Half of them may go cold. */
    for (int i = 0; i < NPIPES; i += 2)
        loop_coldable(rd[i], true);
    ok(until_hit(7, 200) >= 0, "a hot fd is dispatched");
    ok(until_hit(8, 200) >= 0, "a coldable fd that is not idle yet is dispatched");
    idle_for(COOL_MS);
    is_int(loop_cold_count(), NPIPES / 2, "the idle coldable fds are cold");
    ok(!SIGNALLED || (fcntl(rd[10], F_GETFL) & O_ASYNC), "a cold fd is armed: the kernel signals its input");
    ok(!(fcntl(rd[11], F_GETFL) & O_ASYNC), "a hot fd is not");
    long t = until_hit(10, 1500);
    if (SIGNALLED)
        ok(t >= 0 && t < LOOP_COLD_CHECK_MS / 10, "a cold fd is dispatched on the kernel's signal, no scan needed (%ld ms)", t);
    else
        ok(t >= 0 && t <= LOOP_COLD_SCAN_MS + 15, "a cold fd is dispatched within a scan period (%ld ms)", t);
    ok(!(fcntl(rd[10], F_GETFL) & O_ASYNC), "... and disarmed once hot again");
    t = until_hit(11, 500);
    ok(t >= 0, "a hot fd beside cold ones is dispatched");

    /* A cold fd whose peer hangs up is dispatched too. */
    int hp[2];
    static int hup_hits;
    if (pipe(hp) < 0)
        return 1;
    fcntl(hp[0], F_SETFL, O_NONBLOCK);
    loop_add(hp[0], POLLIN, on_hup, &hup_hits);
    loop_coldable(hp[0], true);
    idle_for(COOL_MS);
    is_int(loop_cold_count(), NPIPES / 2 + 1, "an idle coldable fd went cold");
    ok(!SIGNALLED || (fcntl(hp[0], F_GETFL) & O_ASYNC), "... armed");
    close(hp[1]);
    uint64_t t0 = loop_clock();
    while (!hup_hits && loop_clock() - t0 < 1500)
        loop_run_once(5);
    t = (long)(loop_clock() - t0);
    ok(hup_hits && t < (SIGNALLED ? LOOP_COLD_CHECK_MS / 10 : LOOP_COLD_SCAN_MS + 15),
       "a cold fd's hang-up is dispatched (%ld ms)", t);
    loop_del(hp[0]);
    close(hp[0]);

    /* Remove cold and hot fds, in both orders: the rest still work. */
    idle_for(COOL_MS);
    for (int i = 20; i < 60; i++)
        loop_del(rd[i]);
    is_int(loop_fd_count(), NPIPES - 40, "removed ones are gone");
    int missed = 0;
    memset(hits, 0, sizeof hits);
    for (int i = 0; i < NPIPES; i++)
        if (i < 20 || i >= 60)
            poke(i);
    for (int k = 0; k < 40; k++)
        loop_run_once(20);
    for (int i = 0; i < NPIPES; i++)
        if ((i < 20 || i >= 60) && hits[i] != 1)
            missed++;
    is_int(missed, 0, "every remaining fd, hot or cold, is dispatched once for its byte");

    /* A cold fd woken by loop_wake runs in the next iteration. */
    idle_for(COOL_MS);
    int before = hits[100];
    loop_wake(rd[100], POLLPRI);
    loop_run_once(0);
    ok(hits[100] == before + 1 && (woken_rev & POLLPRI), "a woken cold fd is dispatched at once");

    /* Writing makes an fd hot: loop_mod with POLLOUT is never left cold. */
    loop_mod(rd[102], POLLIN | POLLOUT);
    loop_mod(rd[102], POLLIN);
    loop_coldable(rd[104], false);
    t = until_hit(104, 500);
    ok(t >= 0 && t < LOOP_COLD_SCAN_MS, "an fd made uncoldable is hot again (%ld ms)", t);

    /* A batching wait never makes a timer late. */
    struct loop_timer tm;
    uint64_t at = 0, set_at;
    loop_timer_init(&tm, fired, &at);
    loop_clock();
    set_at = loop_now();
    loop_timer_set(&tm, 3);
    while (!at && loop_clock() - set_at < 200)
        loop_run_once(-1);
    ok(at && at - set_at <= 5, "a timer fires on time beside a large idle set (%llu ms)",
       (unsigned long long)(at - set_at));

    /* The cold set after everything was used once more: all still reachable. */
    for (int i = 60; i < NPIPES; i++)
        loop_del(rd[i]);
    for (int i = 0; i < 20; i++)
        loop_del(rd[i]);
    is_int(loop_fd_count(), 0, "every fd removed");
    for (int i = 0; i < NPIPES; i++) {
        close(rd[i]);
        close(wr[i]);
    }
    loop_free();
    return tap_done();
}
