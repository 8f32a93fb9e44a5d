/* limiter: see limiter.h.
 *
 * The rpm window is a ring of per-second counts plus a running sum, so a
 * check costs O(1) plus one step per second that went by (at most
 * LIMIT_RPM_BUCKETS), and only a refusal walks the ring to find when a
 * slot frees.  Every count saturates instead of wrapping. */
#include "limiter.h"

#include <string.h>
#include <time.h>

/* ---------------- arithmetic ---------------- */

/* a / b rounded towards minus infinity (b > 0): -1 ms is in second -1. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return a % b < 0 ? q - 1 : q;
}

/* The milliseconds of now_ms past the start of its second, 0..999. */
static int64_t ms_into_second(int64_t now_ms)
{
    int64_t r = now_ms % LIMIT_MS_PER_SEC;
    return r < 0 ? r + LIMIT_MS_PER_SEC : r;
}

static int64_t clamp_time(int64_t ms)
{
    if (ms > LIMIT_TIME_MAX_MS)
        return LIMIT_TIME_MAX_MS;
    return ms < -LIMIT_TIME_MAX_MS ? -LIMIT_TIME_MAX_MS : ms;
}

/* to - from, at least 1 and without overflow, for a wait that is due. */
static int64_t ms_until(int64_t from, int64_t to)
{
    if (to <= from)
        return 1;
    if (from < 0 && to > INT64_MAX + from)
        return INT64_MAX;
    return to - from;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ---------------- rpm ---------------- */

/* Bring the ring to the second of now_ms: buckets of seconds that left
 * the window are emptied and reused. */
static void slide(struct limit_state *st, int64_t now_ms)
{
    int64_t sec = floor_div(now_ms, LIMIT_MS_PER_SEC);
    if (sec < st->newest) {
        /* The clock stepped back.  Keep the counts as the most recent
         * seconds and relabel them: freezing the window until the clock
         * catches up would lock the key out for as long as the step was,
         * and forgetting them would admit a second burst at once. */
        st->newest = sec;
        return;
    }
    /* Both seconds are within +-2^63 / 1000, so the gap cannot overflow. */
    int64_t gap = sec - st->newest;
    if (gap >= LIMIT_RPM_BUCKETS) {
        memset(st->count, 0, sizeof st->count);
        st->in_window = 0;
    } else {
        for (int64_t i = 0; i < gap; i++) {
            st->head = (st->head + 1) % LIMIT_RPM_BUCKETS;
            st->in_window -= st->count[st->head];
            st->count[st->head] = 0;
        }
    }
    st->newest = sec;
}

/* Milliseconds until fewer than rpm requests are in the window, if no
 * other request comes.  At second newest + k the window has lost the
 * buckets aged 60 down to 61 - k; at k = 61 it has lost them all. */
static int64_t rpm_wait(uint32_t rpm, const struct limit_state *st, int64_t now_ms)
{
    uint64_t left = st->in_window;
    int64_t k = 1;
    for (; k < LIMIT_RPM_BUCKETS; k++) {
        uint32_t age = (uint32_t)(LIMIT_RPM_BUCKETS - k);
        left -= st->count[(st->head + LIMIT_RPM_BUCKETS - age) % LIMIT_RPM_BUCKETS];
        if (left < rpm)
            break;
    }
    return k * LIMIT_MS_PER_SEC - ms_into_second(now_ms);
}

int limit_rpm_check(const struct limit_cfg *cfg, struct limit_state *st, int64_t now_ms, int64_t *retry_ms)
{
    slide(st, now_ms);
    if (cfg->rpm == 0 || st->in_window < cfg->rpm) {
        if (retry_ms)
            *retry_ms = 0;
        return 0;
    }
    if (retry_ms)
        *retry_ms = rpm_wait(cfg->rpm, st, now_ms);
    return -1;
}

void limit_rpm_record(struct limit_state *st, int64_t now_ms)
{
    slide(st, now_ms);
    if (st->count[st->head] == UINT32_MAX)
        return;
    st->count[st->head]++;
    st->in_window++;
}

uint64_t limit_rpm_used(struct limit_state *st, int64_t now_ms)
{
    slide(st, now_ms);
    return st->in_window;
}

/* ---------------- max_concurrent ---------------- */

int limit_acquire(const struct limit_cfg *cfg, struct limit_state *st)
{
    if (cfg->max_concurrent && st->in_flight >= cfg->max_concurrent)
        return -1;
    if (st->in_flight < UINT32_MAX)
        st->in_flight++;
    return 0;
}

void limit_release(struct limit_state *st)
{
    if (st->in_flight > 0)
        st->in_flight--;
}

/* ---------------- daily_tokens ---------------- */

static void roll_day(struct limit_state *st, int64_t day)
{
    if (st->day != day) {
        st->day = day;
        st->tokens = 0;
    }
}

int limit_tokens_check(const struct limit_cfg *cfg, struct limit_state *st, int64_t day)
{
    roll_day(st, day);
    return cfg->daily_tokens == 0 || st->tokens < cfg->daily_tokens ? 0 : -1;
}

void limit_tokens_charge(struct limit_state *st, int64_t day, uint64_t tokens)
{
    roll_day(st, day);
    st->tokens = add_sat(st->tokens, tokens);
}

void limit_tokens_seed(struct limit_state *st, int64_t day, uint64_t tokens)
{
    st->day = day;
    st->tokens = tokens;
}

uint64_t limit_tokens_used(const struct limit_state *st, int64_t day)
{
    return st->day == day ? st->tokens : 0;
}

/* ---------------- all of them ---------------- */

enum limit_result limit_admit(const struct limit_cfg *cfg, struct limit_state *st, int64_t now_ms,
                              const struct limit_day *day, struct limit_verdict *v)
{
    int64_t wait = 0;
    enum limit_result r = LIMIT_OK;
    if (limit_tokens_check(cfg, st, day->day) < 0) {
        r = LIMIT_TOKENS;
        wait = ms_until(now_ms, day->end_ms);
    } else if (limit_rpm_check(cfg, st, now_ms, &wait) < 0) {
        r = LIMIT_RPM;
    } else if (limit_acquire(cfg, st) < 0) {
        r = LIMIT_CONCURRENT;
        wait = LIMIT_CONCURRENCY_RETRY_MS;
    } else {
        /* Everything passed and the slot is taken: count the request. */
        limit_rpm_record(st, now_ms);
    }
    v->result = r;
    v->retry_ms = wait;
    return r;
}

/* ---------------- days ---------------- */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil: eras of 400 years, March-based years so
 * the leap day ends the year). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void limit_fixed_day(int64_t wall_ms, int32_t utc_offset_s, struct limit_day *out)
{
    int64_t shift = (int64_t)utc_offset_s * LIMIT_MS_PER_SEC;
    out->day = floor_div(clamp_time(wall_ms) + shift, LIMIT_MS_PER_DAY);
    out->start_ms = out->day * LIMIT_MS_PER_DAY - shift;
    out->end_ms = out->start_ms + LIMIT_MS_PER_DAY;
}

int limit_local_day(int64_t wall_ms, struct limit_day *out)
{
    wall_ms = clamp_time(wall_ms);
    limit_fixed_day(wall_ms, 0, out);
    time_t now = (time_t)floor_div(wall_ms, LIMIT_MS_PER_SEC);
    struct tm tm;
    if (!localtime_r(&now, &tm))
        return -1;
    /* Midnight of the date and of the next one, DST decided by mktime:
     * tm_mday + 1 is normalised across month and year ends. */
    struct tm a = { 0 };
    a.tm_year = tm.tm_year;
    a.tm_mon = tm.tm_mon;
    a.tm_mday = tm.tm_mday;
    a.tm_isdst = -1;
    struct tm b = a;
    b.tm_mday++;
    time_t start = mktime(&a), end = mktime(&b);
    if (start == (time_t)-1 || end == (time_t)-1 || end <= start)
        return -1;
    out->day = days_from_civil((int64_t)tm.tm_year + 1900, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday);
    out->start_ms = (int64_t)start * LIMIT_MS_PER_SEC;
    out->end_ms = (int64_t)end * LIMIT_MS_PER_SEC;
    /* Zone oddities (a midnight mktime moved) must not leave wall_ms
     * outside its own day. */
    if (out->start_ms > wall_ms)
        out->start_ms = wall_ms;
    if (out->end_ms <= wall_ms)
        out->end_ms = wall_ms + 1;
    return 0;
}
