/* Unit tests of limiter.c: the rpm window at exact second boundaries,
 * bursts, Retry-After values (exact, and checked against a brute-force
 * model over random traffic: a refusal is lifted exactly retry_ms later and
 * no 60 s interval ever holds more than rpm admissions), concurrency, the
 * daily token count (rollover, overshoot then refuse, seeding), zero as
 * "no limit", limits changed between calls (a reload), huge time jumps
 * and a clock that goes backwards, and the day helpers (fixed offsets,
 * and a zone with daylight saving time: 23 and 25 hour days). */
#include "limiter.h"
#include "tap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEC 1000LL
#define T0 (1000 * SEC)   /* an arbitrary start: second 1000 */

static struct limit_cfg cfg_of(uint32_t rpm, uint32_t conc, uint64_t tokens)
{
    struct limit_cfg c = { rpm, conc, tokens };
    return c;
}

/* A day far away from every test time, so tokens never interfere. */
static const struct limit_day ANY_DAY = { 20000, 0, INT64_MAX };

static int check(const struct limit_cfg *c, struct limit_state *st, int64_t now, int64_t *retry)
{
    return limit_rpm_check(c, st, now, retry);
}

static void test_unlimited(void)
{
    struct limit_cfg c = cfg_of(0, 0, 0);
    struct limit_state st = LIMIT_STATE_INIT;
    struct limit_verdict v;
    int refused = 0;
    for (int i = 0; i < 10000; i++)
        refused += limit_admit(&c, &st, T0 + i / 100, &ANY_DAY, &v) != LIMIT_OK;
    is_int(refused, 0, "limits 0: 10000 requests in 100 ms all admitted");
    is_int(st.in_flight, 10000, "limits 0: in-flight still counted");
    is_int(limit_rpm_used(&st, T0 + 100), 10000, "limits 0: the window still counts");
    limit_tokens_charge(&st, 20000, UINT64_MAX);
    is_int(limit_tokens_check(&c, &st, 20000), 0, "daily_tokens 0: no limit even at UINT64_MAX used");
    limit_tokens_charge(&st, 20000, 5);
    ok(limit_tokens_used(&st, 20000) == UINT64_MAX, "token count saturates");
}

static void test_window_boundaries(void)
{
    struct limit_cfg c = cfg_of(3, 0, 0);
    struct limit_state st = LIMIT_STATE_INIT;
    int64_t r = -1;
    for (int i = 0; i < 3; i++) {
        is_int(check(&c, &st, T0, &r), 0, "request %d of 3 at 1000.000 fits", i + 1);
        is_int(r, 0, "no wait while admitted");
        limit_rpm_record(&st, T0);
    }
    is_int(check(&c, &st, T0, &r), -1, "4th in the same second refused");
    is_int(r, 61000, "... slot frees at 1061.000: 61000 ms");
    is_int(check(&c, &st, T0 + 999, &r), -1, "at 1000.999 refused");
    is_int(r, 60001, "... 60001 ms to 1061.000");
    is_int(check(&c, &st, T0 + 60 * SEC, &r), -1, "at 1060.000 refused (second 1000 still in the window)");
    is_int(r, 1000, "... 1000 ms");
    is_int(check(&c, &st, T0 + 60 * SEC + 999, &r), -1, "at 1060.999 refused");
    is_int(r, 1, "... 1 ms");
    is_int(check(&c, &st, T0 + 61 * SEC, &r), 0, "at 1061.000 admitted");
    is_int(limit_rpm_used(&st, T0 + 61 * SEC), 0, "window empty at 1061.000");

    /* The reason for the 61st bucket: a burst at the very end of a second
     * and another 59.001 s later would be 2 * rpm inside 60 s. */
    struct limit_state s2 = LIMIT_STATE_INIT;
    for (int i = 0; i < 3; i++)
        limit_rpm_record(&s2, 10 * SEC + 999);
    is_int(check(&c, &s2, 70 * SEC, &r), -1, "burst at 10.999: refused at 70.000 (59.001 s later)");
    is_int(r, 1000, "... until 71.000");
    is_int(check(&c, &s2, 70 * SEC + 999, &r), -1, "refused at 70.999 (60.000 s later: still counts)");
    is_int(check(&c, &s2, 71 * SEC, &r), 0, "admitted at 71.000 (60.001 s later)");

    /* Spread requests: the oldest one leaving frees exactly one slot. */
    struct limit_state s3 = LIMIT_STATE_INIT;
    limit_rpm_record(&s3, T0);
    limit_rpm_record(&s3, T0 + 20 * SEC + 500);
    limit_rpm_record(&s3, T0 + 40 * SEC + 250);
    is_int(check(&c, &s3, T0 + 59 * SEC + 300, &r), -1, "3 spread over 40 s: refused at +59.3");
    is_int(r, 1700, "... until +61.000, when the first leaves");
    is_int(check(&c, &s3, T0 + 61 * SEC, &r), 0, "admitted at +61.000");
    limit_rpm_record(&s3, T0 + 61 * SEC);
    is_int(check(&c, &s3, T0 + 61 * SEC, &r), -1, "full again");
    is_int(r, 20000, "... next slot when +20.5 leaves, at +81.000");
    is_int(limit_rpm_used(&s3, T0 + 81 * SEC), 2, "+81.000: two left in the window");
}

static void test_burst_and_admit(void)
{
    struct limit_cfg c = cfg_of(5, 0, 0);
    struct limit_state st = LIMIT_STATE_INIT;
    struct limit_verdict v;
    int ok_n = 0, rpm_n = 0;
    for (int i = 0; i < 12; i++) {
        enum limit_result res = limit_admit(&c, &st, T0 + 250, &ANY_DAY, &v);
        ok_n += res == LIMIT_OK;
        rpm_n += res == LIMIT_RPM && v.retry_ms == 60750 && v.result == res;
    }
    is_int(ok_n, 5, "burst of 12: 5 admitted");
    is_int(rpm_n, 7, "7 refused by rpm, Retry-After 60750 ms");
    is_int(limit_rpm_used(&st, T0 + 250), 5, "refusals are not counted in the window");
    is_int(st.in_flight, 5, "refusals take no in-flight slot");

    /* check alone changes nothing; record alone counts. */
    struct limit_state s2 = LIMIT_STATE_INIT;
    for (int i = 0; i < 100; i++)
        check(&c, &s2, T0, NULL);
    is_int(limit_rpm_used(&s2, T0), 0, "checks do not count");
    limit_rpm_record(&s2, T0);
    is_int(limit_rpm_used(&s2, T0 + 30 * SEC), 1, "a record counts");
}

/* Random traffic against a brute-force model of the guarantee. */
#define FUZZ_EVENTS 20000
static int64_t admitted_at[FUZZ_EVENTS];

static void test_random_model(void)
{
    srand(12345);
    int bad_retry = 0, bad_window = 0, bad_range = 0, admitted_n = 0, refused_n = 0;
    for (int round = 0; round < 20; round++) {
        struct limit_cfg c = cfg_of((uint32_t)(1 + rand() % 8), 0, 0);
        struct limit_state st = LIMIT_STATE_INIT;
        int64_t now = (int64_t)(rand() % 100000) * 7 - 300000;   /* negative times too */
        size_t na = 0;
        for (int e = 0; e < FUZZ_EVENTS / 20; e++) {
            now += rand() % 4 == 0 ? rand() % 30000 : rand() % 700;
            int64_t r;
            if (check(&c, &st, now, &r) == 0) {
                limit_rpm_record(&st, now);
                admitted_at[na++] = now;
                admitted_n++;
                size_t in60 = 0;
                for (size_t k = 0; k < na; k++)
                    in60 += admitted_at[k] > now - 60 * SEC;
                bad_window += in60 > c.rpm;
                continue;
            }
            refused_n++;
            bad_range += r <= 0 || r > 61 * SEC;
            struct limit_state a = st, b = st;
            bad_retry += r > 1 && check(&c, &a, now + r - 1, NULL) == 0;
            bad_retry += check(&c, &b, now + r, NULL) != 0;
        }
    }
    ok(admitted_n > 1000 && refused_n > 1000, "random traffic: %d admitted, %d refused", admitted_n, refused_n);
    is_int(bad_window, 0, "never more than rpm admitted in any 60 s");
    is_int(bad_range, 0, "every retry_ms in (0, 61000]");
    is_int(bad_retry, 0, "refused at now + retry_ms - 1, admitted at now + retry_ms");
}

static void test_concurrency(void)
{
    struct limit_cfg c = cfg_of(0, 2, 0);
    struct limit_state st = LIMIT_STATE_INIT;
    is_int(limit_acquire(&c, &st), 0, "1st in flight");
    is_int(limit_acquire(&c, &st), 0, "2nd in flight");
    is_int(limit_acquire(&c, &st), -1, "3rd refused");
    is_int(st.in_flight, 2, "a refusal takes nothing");
    limit_release(&st);
    is_int(limit_acquire(&c, &st), 0, "a release frees a slot");
    for (int i = 0; i < 5; i++)
        limit_release(&st);
    is_int(st.in_flight, 0, "more releases than acquires: stays at 0");
    struct limit_verdict v;
    limit_admit(&c, &st, T0, &ANY_DAY, &v);
    limit_admit(&c, &st, T0, &ANY_DAY, &v);
    is_int(limit_admit(&c, &st, T0, &ANY_DAY, &v), LIMIT_CONCURRENT, "admit: 3rd concurrent refused");
    is_int(v.retry_ms, LIMIT_CONCURRENCY_RETRY_MS, "... with the fixed hint");
    is_int(limit_rpm_used(&st, T0), 2, "... and not counted in the window");

    /* A reload lowers the limit below what is in flight. */
    struct limit_cfg lower = cfg_of(0, 1, 0);
    is_int(limit_acquire(&lower, &st), -1, "limit lowered to 1 with 2 in flight: refused");
    limit_release(&st);
    is_int(limit_acquire(&lower, &st), -1, "1 in flight, limit 1: refused");
    limit_release(&st);
    is_int(limit_acquire(&lower, &st), 0, "0 in flight: admitted");
}

static void test_tokens(void)
{
    struct limit_cfg c = cfg_of(0, 0, 100);
    struct limit_state st = LIMIT_STATE_INIT;
    struct limit_day d = { 20541, 1774738800000LL, 1774821600000LL };
    struct limit_verdict v;
    is_int(limit_tokens_check(&c, &st, d.day), 0, "fresh day: allowed");
    limit_tokens_charge(&st, d.day, 60);
    is_int(limit_tokens_check(&c, &st, d.day), 0, "60 of 100: allowed");
    limit_tokens_charge(&st, d.day, 60);
    is_int(limit_tokens_used(&st, d.day), 120, "overshoot kept: 120");
    is_int(limit_tokens_check(&c, &st, d.day), -1, "120 of 100: refused");
    int64_t now = d.end_ms - 3 * 3600 * SEC - 1;
    is_int(limit_admit(&c, &st, now, &d, &v), LIMIT_TOKENS, "admit: LIMIT_TOKENS");
    is_int(v.retry_ms, 3 * 3600 * SEC + 1, "... retry until the day's end");
    is_int(st.in_flight, 0, "... nothing taken");
    is_int(limit_admit(&c, &st, d.end_ms + 5, &d, &v), LIMIT_TOKENS, "stale day given: still refused");
    is_int(v.retry_ms, 1, "... retry never below 1 ms");

    struct limit_cfg exact = cfg_of(0, 0, 120);
    is_int(limit_tokens_check(&exact, &st, d.day), -1, "used == cap: refused");

    is_int(limit_tokens_check(&c, &st, d.day + 1), 0, "next day: allowed again");
    is_int(limit_tokens_used(&st, d.day + 1), 0, "next day: count reset");
    is_int(limit_tokens_used(&st, d.day), 0, "the old day's count is gone");
    limit_tokens_charge(&st, d.day + 1, 30);
    is_int(limit_tokens_check(&c, &st, d.day), 0, "clock set back a day: a fresh count");
    is_int(limit_tokens_used(&st, d.day + 1), 0, "... and the later day's count is dropped");

    /* A charge after midnight goes to the new day. */
    limit_tokens_seed(&st, d.day, 99);
    limit_tokens_charge(&st, d.day + 1, 500);
    is_int(limit_tokens_check(&c, &st, d.day + 1), -1, "charged on the new day: refused there");

    /* Restart: seeded from the usage store. */
    struct limit_state fresh = LIMIT_STATE_INIT;
    limit_tokens_seed(&fresh, d.day, 100);
    is_int(limit_tokens_check(&c, &fresh, d.day), -1, "seeded at the cap: refused");
    is_int(limit_tokens_check(&c, &fresh, d.day + 1), 0, "seeded day over: allowed");

    /* The limit raised by a reload applies at once. */
    limit_tokens_seed(&st, d.day, 150);
    struct limit_cfg raised = cfg_of(0, 0, 200);
    is_int(limit_tokens_check(&raised, &st, d.day), 0, "cap raised to 200 with 150 used: allowed");
}

static void test_order_and_reload(void)
{
    struct limit_cfg c = cfg_of(1, 1, 10);
    struct limit_state st = LIMIT_STATE_INIT;
    struct limit_day d = { 7, 0, 86400 * SEC };
    struct limit_verdict v;
    is_int(limit_admit(&c, &st, 1000, &d, &v), LIMIT_OK, "first admitted");
    is_int(v.retry_ms, 0, "retry 0 when admitted");
    is_int(limit_admit(&c, &st, 1000, &d, &v), LIMIT_RPM, "rpm before concurrency");
    limit_tokens_charge(&st, 7, 10);
    is_int(limit_admit(&c, &st, 1000, &d, &v), LIMIT_TOKENS, "tokens before rpm");
    is_int(v.retry_ms, 86400 * SEC - 1000, "... until the end of the day");

    /* rpm lowered by a reload with 7 in the window, then raised. */
    struct limit_cfg ten = cfg_of(10, 0, 0), five = cfg_of(5, 0, 0), eight = cfg_of(8, 0, 0);
    struct limit_state s2 = LIMIT_STATE_INIT;
    for (int i = 0; i < 7; i++)
        limit_rpm_record(&s2, T0 + i * SEC);
    int64_t r;
    is_int(check(&ten, &s2, T0 + 10 * SEC, &r), 0, "7 of 10: admitted");
    is_int(check(&five, &s2, T0 + 10 * SEC, &r), -1, "limit lowered to 5: refused at once");
    is_int(r, 53 * SEC, "... until 3 have left: the third at +63.000");
    is_int(check(&eight, &s2, T0 + 10 * SEC, &r), 0, "raised to 8: admitted at once");
}

static void test_time_jumps(void)
{
    struct limit_cfg c = cfg_of(3, 0, 0);
    struct limit_state st = LIMIT_STATE_INIT;
    int64_t r;
    for (int i = 0; i < 3; i++)
        limit_rpm_record(&st, T0);
    is_int(check(&c, &st, INT64_MAX / 2, &r), 0, "jump forward by ages: window empty");
    for (int i = 0; i < 3; i++)
        limit_rpm_record(&st, INT64_MAX);
    is_int(check(&c, &st, INT64_MAX, &r), -1, "at INT64_MAX: full");
    ok(r > 0 && r <= 61 * SEC, "... retry %lld in range", (long long)r);
    is_int(check(&c, &st, INT64_MIN, &r), -1, "to INT64_MIN: counts kept (clock went back)");
    ok(r > 0 && r <= 61 * SEC, "... retry %lld in range", (long long)r);
    is_int(check(&c, &st, INT64_MIN + 61 * SEC, &r), 0, "61 s after INT64_MIN: admitted");

    /* Backwards by 50 s with a full window: the counts stay as the newest
     * seconds, so no second burst; they age from the new time on. */
    struct limit_state s2 = LIMIT_STATE_INIT;
    for (int i = 0; i < 3; i++)
        limit_rpm_record(&s2, T0 + 100 * SEC + 500);
    is_int(check(&c, &s2, T0 + 50 * SEC + 200, &r), -1, "clock back 50.3 s: still refused");
    is_int(r, 61 * SEC - 200, "... retry counted from the new time");
    is_int(limit_rpm_used(&s2, T0 + 50 * SEC), 3, "... 3 in the window");
    is_int(check(&c, &s2, T0 + 110 * SEC + 999, &r), -1, "refused at +110.999");
    is_int(check(&c, &s2, T0 + 111 * SEC, &r), 0, "admitted 61 s after the relabelled second");

    /* Back and forth by a few ms around a second boundary. */
    struct limit_state s3 = LIMIT_STATE_INIT;
    int64_t t = T0;
    int odd = 0;
    for (int i = 0; i < 2000; i++) {
        t += (i % 3 == 2) ? -1500 : 1000;
        int64_t w = 0;
        if (check(&c, &s3, t, &w) == 0)
            limit_rpm_record(&s3, t);
        else
            odd += w <= 0 || w > 61 * SEC;
        odd += limit_rpm_used(&s3, t) > c.rpm;
    }
    is_int(odd, 0, "jittering clock: window never above rpm, retry always positive");

    /* Day helpers at the extremes. */
    struct limit_day d;
    limit_fixed_day(INT64_MAX, 14 * 3600, &d);
    ok(d.start_ms <= LIMIT_TIME_MAX_MS && d.end_ms > LIMIT_TIME_MAX_MS, "fixed day of INT64_MAX: clamped");
    limit_fixed_day(INT64_MIN, -12 * 3600, &d);
    ok(d.start_ms <= -LIMIT_TIME_MAX_MS && d.end_ms > -LIMIT_TIME_MAX_MS, "fixed day of INT64_MIN: clamped");
    struct limit_verdict v;
    struct limit_day far = { 1, INT64_MIN, INT64_MAX };
    struct limit_state s4 = LIMIT_STATE_INIT;
    struct limit_cfg tok = cfg_of(0, 0, 1);
    limit_tokens_charge(&s4, 1, 1);
    limit_admit(&tok, &s4, INT64_MIN, &far, &v);
    ok(v.result == LIMIT_TOKENS && v.retry_ms == INT64_MAX, "retry to a far end saturates, no overflow");
}

static void test_fixed_day(void)
{
    struct limit_day d;
    int64_t midnight = 20791 * 86400 * SEC;          /* 2026-12-04 00:00 UTC */
    limit_fixed_day(midnight, 0, &d);
    ok(d.day == 20791 && d.start_ms == midnight && d.end_ms == midnight + LIMIT_MS_PER_DAY, "UTC midnight");
    limit_fixed_day(midnight - 1, 0, &d);
    is_int(d.day, 20790, "1 ms before: the day before");
    limit_fixed_day(midnight - 30 * 60 * SEC, 3600, &d);
    ok(d.day == 20791 && d.start_ms == midnight - 3600 * SEC, "23:30 UTC at +01:00 is 00:30 the next day");
    limit_fixed_day(midnight + 3 * 3600 * SEC, -5 * 3600, &d);
    ok(d.day == 20790 && d.end_ms == midnight + 5 * 3600 * SEC, "03:00 UTC at -05:00 is the day before");
    ok(limit_day_holds(&d, d.start_ms) && limit_day_holds(&d, d.end_ms - 1) && !limit_day_holds(&d, d.end_ms),
       "limit_day_holds: [start, end)");
    limit_fixed_day(-1, 0, &d);
    ok(d.day == -1 && d.start_ms == -LIMIT_MS_PER_DAY && d.end_ms == 0, "1969-12-31");
}

static void test_local_day(void)
{
    struct limit_day d;
    int64_t utc_mid = 20541 * 86400 * SEC;           /* 2026-03-29 00:00 UTC */
    setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
    tzset();
    is_int(limit_local_day(utc_mid + 12 * 3600 * SEC, &d), 0, "CET: 2026-03-29 noon");
    is_int(d.day, 20541, "... day number");
    is_int(d.start_ms, utc_mid - 3600 * SEC, "... starts 23:00 UTC the day before");
    is_int(d.end_ms - d.start_ms, 23 * 3600 * SEC, "... spring forward: 23 hours");
    is_int(limit_local_day(utc_mid - 3600 * SEC, &d), 0, "CET: exactly local midnight");
    is_int(d.day, 20541, "... belongs to the new day");
    is_int(limit_local_day(utc_mid - 3600 * SEC - 1, &d), 0, "1 ms before local midnight");
    is_int(d.day, 20540, "... still the day before");
    is_int(d.end_ms, utc_mid - 3600 * SEC, "... which ends at that midnight");

    int64_t oct = 20751 * 86400 * SEC;               /* 2026-10-25 00:00 UTC */
    limit_local_day(oct + 12 * 3600 * SEC, &d);
    is_int(d.end_ms - d.start_ms, 25 * 3600 * SEC, "CET: 2026-10-25 fall back: 25 hours");
    is_int(d.start_ms, oct - 2 * 3600 * SEC, "... starts 22:00 UTC (CEST)");
    int64_t dec = 20791 * 86400 * SEC;
    limit_local_day(dec + 23 * 3600 * SEC + 30 * 60 * SEC, &d);
    is_int(d.day, 20792, "CET: 23:30 UTC on 2026-12-04 is the 5th locally");
    is_int(d.end_ms - d.start_ms, 24 * 3600 * SEC, "... an ordinary 24 hours");

    struct limit_cfg c = cfg_of(0, 0, 1);
    struct limit_state st = LIMIT_STATE_INIT;
    struct limit_verdict v;
    limit_local_day(utc_mid + 20 * 3600 * SEC, &d);
    limit_tokens_charge(&st, d.day, 1);
    limit_admit(&c, &st, utc_mid + 20 * 3600 * SEC, &d, &v);
    is_int(v.retry_ms, 2 * 3600 * SEC, "22:00 local on the short day: 2 h to midnight");

    setenv("TZ", "UTC0", 1);
    tzset();
    limit_local_day(dec + 1, &d);
    ok(d.day == 20791 && d.start_ms == dec && d.end_ms == dec + LIMIT_MS_PER_DAY, "UTC0: plain days");
    limit_local_day(-1, &d);
    ok(d.day == -1 && d.end_ms == 0, "UTC0: before 1970");
    unsetenv("TZ");
    tzset();
}

int main(void)
{
    test_unlimited();
    test_window_boundaries();
    test_burst_and_admit();
    test_random_model();
    test_concurrency();
    test_tokens();
    test_order_and_reload();
    test_time_jumps();
    test_fixed_day();
    test_local_day();
    return tap_done();
}
