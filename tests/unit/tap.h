/* Minimal TAP producer for the unit tests (read by prove). */
#ifndef AUTOSWITCH_TAP_H
#define AUTOSWITCH_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...) do { long long g_ = (long long)(got), w_ = (long long)(want); \
    if (!ok(g_ == w_, __VA_ARGS__)) printf("#   got %lld, want %lld\n", g_, w_); } while (0)
#define is_str(got, want, ...) do { const char *g_ = (got), *w_ = (want); \
    if (!ok(g_ && w_ && strcmp(g_, w_) == 0, __VA_ARGS__)) \
        printf("#   got \"%s\", want \"%s\"\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); } while (0)
#define is_mem(got, glen, want, ...) do { const char *g_ = (got), *w_ = (want); size_t gl_ = (glen); \
    if (!ok(g_ && gl_ == strlen(w_) && memcmp(g_, w_, gl_) == 0, __VA_ARGS__)) \
        printf("#   got \"%.*s\", want \"%s\"\n", (int)gl_, g_ ? g_ : "", w_); } while (0)

static int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#include <stdarg.h>
static int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    tap_n++;
    printf("%s %d - ", cond ? "ok" : "not ok", tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!cond) {
        tap_failed++;
        printf("#   at %s:%d\n", file, line);
    }
    fflush(stdout);
    return cond;
}

static inline int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
