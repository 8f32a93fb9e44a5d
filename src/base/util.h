/* util: small helpers shared by several modules. */
#ifndef AUTOSWITCH_UTIL_H
#define AUTOSWITCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>
#include <time.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Compare a secret in time that depends only on the length of `secret`,
 * not on where the first difference is. */
bool ct_equal(const char *given, size_t given_len, const char *secret, size_t secret_len);

/* Case-insensitive equality of s[0, n) with the C string lit. */
bool mem_ieq(const char *s, size_t n, const char *lit);
/* Whether s[0, n) equals the C string lit. */
bool mem_eq(const char *s, size_t n, const char *lit);
/* Whether s[0, n) starts with the C string prefix. */
bool mem_starts(const char *s, size_t n, const char *prefix);

/* First occurrence of needle[0, m) in s[0, n), or NULL. */
const char *mem_find(const char *s, size_t n, const char *needle, size_t m);

/* Random bytes from the kernel (getrandom); 0 or -1. */
int random_bytes(void *p, size_t n);
/* Lower-case hex of n unpredictable-enough bytes into out (2n + 1 bytes):
 * for ids, not for secrets. */
void random_hex(char *out, size_t nbytes);
/* A number for jitter and ids (the same generator: not for secrets). */
uint32_t random_u32(void);

/* Parse a decimal integer in [min, max] from s[0, n). 0 or -1. */
int parse_int(const char *s, size_t n, long long min, long long max, long long *out);

/* Parse an HTTP-date (RFC 9110 5.6.7: IMF-fixdate, and the obsolete
 * RFC 850 and asctime forms).  0 and *out (UTC), or -1. */
int parse_http_date(const char *s, size_t n, time_t *out);

/* Give freed heap memory back to the system where the C library lets us
 * (glibc keeps it otherwise; musl returns it by itself). */
void mem_release(void);
/* Once at start: big buffers (a buffered answer, a large body) get their
 * own mappings, so they go back to the system the moment they are freed
 * instead of fragmenting the heap (glibc; musl does so already). */
void mem_init(void);

/* Wall-clock milliseconds since the epoch (for stats shown to people;
 * every timeout uses loop_now()). */
uint64_t wall_ms(void);

/* Percent-decode src[0, n) into out (cap bytes, NUL-terminated).  -1 on a
 * bad escape, an encoded NUL, or when it does not fit. */
int url_decode(const char *src, size_t n, char *out, size_t cap);

/* SHA-256 of p[0, n) (BearSSL's). */
void sha256(const void *p, size_t n, uint8_t out[32]);
/* Days since 1970-01-01 of the date "YYYY-MM-DD" (s[0, n)); -1 when it is
 * not a valid date of years 1970-9999. */
int64_t date_days(const char *s, size_t n);

/* Mask what looks like a credential in s (in place): "sk-..." / "sk_..."
 * tokens, the token after "Bearer ", and the value after "api_key" /
 * "api-key" / "apikey" and '=' or ':'.  Each becomes its first 3 bytes and
 * "...".  For upstream error text shown to clients and written to logs. */
void redact_secrets(char *s);

#endif
