#include "util.h"

#include "buf.h"

#include <bearssl.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>

bool ct_equal(const char *given, size_t given_len, const char *secret, size_t secret_len)
{
    if (secret_len == 0)
        return given_len == 0;
    /* Walk the whole secret whatever the input, and fold the length
     * difference in, so timing says nothing about the prefix matched. */
    unsigned char diff = (unsigned char)(given_len != secret_len);
    for (size_t i = 0; i < secret_len; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)secret[i]);
    }
    return diff == 0;
}

bool mem_ieq(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && strncasecmp(s, lit, n) == 0;
}

bool mem_eq(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(s, lit, n) == 0;
}

bool mem_starts(const char *s, size_t n, const char *prefix)
{
    size_t l = strlen(prefix);
    return n >= l && memcmp(s, prefix, l) == 0;
}

const char *mem_find(const char *s, size_t n, const char *needle, size_t m)
{
    if (m == 0)
        return s;
    while (n >= m) {
        const char *p = memchr(s, needle[0], n - m + 1);
        if (!p)
            return NULL;
        if (memcmp(p, needle, m) == 0)
            return p;
        n -= (size_t)(p - s) + 1;
        s = p + 1;
    }
    return NULL;
}

int random_bytes(void *p, size_t n)
{
    unsigned char *b = p;
    while (n > 0) {
        ssize_t r = getrandom(b, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Request ids need to be unique, not secret: a splitmix64 generator
 * seeded once from the kernel saves a getrandom() call per request. */
static uint64_t rng_state;
static bool rng_seeded;

static uint64_t rng_next(void)
{
    if (!rng_seeded) {
        if (random_bytes(&rng_state, sizeof rng_state) < 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            rng_state = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec;
        }
        rng_seeded = true;
    }
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint32_t random_u32(void)
{
    return (uint32_t)(rng_next() >> 32);
}

void random_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t v = 0;
    for (size_t i = 0; i < nbytes; i++) {
        if (i % 8 == 0)
            v = rng_next();
        unsigned char b = (unsigned char)(v >> (i % 8 * 8));
        out[2 * i] = hex[b >> 4];
        out[2 * i + 1] = hex[b & 15];
    }
    out[2 * nbytes] = '\0';
}

int parse_int(const char *s, size_t n, long long min, long long max, long long *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (i == n)
        return -1;
    unsigned long long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > (1ull << 62))
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > (1ull << 62))
        return -1;
    long long x = neg ? -(long long)v : (long long)v;
    if (x < min || x > max)
        return -1;
    *out = x;
    return 0;
}

uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static int month_index(const char *m)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int i = 0; i < 12; i++)
        if (strncmp(months + 3 * i, m, 3) == 0)
            return i;
    return -1;
}

int parse_http_date(const char *s, size_t n, time_t *out)
{
    char tmp[64], mon[4];
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    int day, year, hh, mm, ss;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
    if (sscanf(tmp, "%*3s, %2d %3s %4d %2d:%2d:%2d GMT", &day, mon, &year, &hh, &mm, &ss) == 6) {
        /* fall through to the common part */
    } else if (sscanf(tmp, "%*[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d GMT", &day, mon, &year, &hh, &mm, &ss) == 6) {
        /* RFC 850: two-digit year; RFC 9110 says pick the nearest
         * century that is not more than 50 years in the future. */
        year += year < 70 ? 2000 : 1900;
    } else if (sscanf(tmp, "%*3s %3s %2d %2d:%2d:%2d %4d", mon, &day, &hh, &mm, &ss, &year) == 6) {
        /* asctime: Sun Nov  6 08:49:37 1994 */
    } else {
        return -1;
    }
    mon[3] = '\0';
    int m = month_index(mon);
    if (m < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1970)
        return -1;
    tm.tm_year = year - 1900;
    tm.tm_mon = m;
    tm.tm_mday = day;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = t;
    return 0;
}

#define MMAP_THRESHOLD (128 * 1024)

void mem_init(void)
{
#ifdef __GLIBC__
    /* A fixed threshold: glibc raises it after each large free, which
     * moves the next large buffers onto the heap, where they stay. */
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
#endif
}

void mem_release(void)
{
    mem_flush();
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int url_decode(const char *src, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = src[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(src[i + 1]), lo = hexval(src[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = ch;
    }
    out[o] = '\0';
    return 0;
}

static bool token_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
           ch == '_' || ch == '.' || ch == '+' || ch == '/' || ch == '=';
}

/* Mask the token at s[at...]: keep 3 bytes, then "...", drop the rest.
 * Returns the index after the mask. */
static size_t mask_token(char *s, size_t at)
{
    size_t end = at;
    while (s[end] && token_char(s[end]))
        end++;
    if (end - at < 8)
        return end;   /* too short to be a key */
    size_t keep = at + 3;
    memcpy(s + keep, "...", 3);
    memmove(s + keep + 3, s + end, strlen(s + end) + 1);
    return keep + 3;
}

void redact_secrets(char *s)
{
    size_t i = 0;
    while (s[i]) {
        bool boundary = i == 0 || !token_char(s[i - 1]);
        if (boundary && (strncmp(s + i, "sk-", 3) == 0 || strncmp(s + i, "sk_", 3) == 0)) {
            i = mask_token(s, i);
            continue;
        }
        if (boundary && strncasecmp(s + i, "bearer ", 7) == 0) {
            i = mask_token(s, i + 7);
            continue;
        }
        size_t k = 0;
        if (boundary && (strncasecmp(s + i, "api_key", 7) == 0 || strncasecmp(s + i, "api-key", 7) == 0))
            k = 7;
        else if (boundary && strncasecmp(s + i, "apikey", 6) == 0)
            k = 6;
        if (k) {
            size_t j = i + k;
            while (s[j] == '"' || s[j] == '\'' || s[j] == ' ')
                j++;
            if (s[j] == '=' || s[j] == ':') {
                j++;
                while (s[j] == '"' || s[j] == '\'' || s[j] == ' ')
                    j++;
                i = mask_token(s, j);
                continue;
            }
        }
        i++;
    }
}

void sha256(const void *p, size_t n, uint8_t out[32])
{
    br_sha256_context ctx;
    br_sha256_init(&ctx);
    br_sha256_update(&ctx, p, n);
    br_sha256_out(&ctx, out);
}

/* Days from the civil date (the proleptic Gregorian calendar), after
 * Howard Hinnant's well-known algorithm, written out here. */
static int64_t civil_days(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int64_t date_days(const char *s, size_t n)
{
    long long y, m, d;
    if (n != 10 || s[4] != '-' || s[7] != '-' || parse_int(s, 4, 1970, 9999, &y) < 0 ||
        parse_int(s + 5, 2, 1, 12, &m) < 0 || parse_int(s + 8, 2, 1, 31, &d) < 0)
        return -1;
    static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if ((unsigned)d > mdays[m - 1] || (m == 2 && d == 29 && !leap))
        return -1;
    return civil_days(y, (unsigned)m, (unsigned)d);
}
