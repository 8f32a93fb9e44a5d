#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN_CAP 64
#define MEM_CLASS_MIN 64          /* classes: 64, 96, 128, 192, ... MEM_CACHE_BLOCK_MAX */
#define MEM_CLASSES 19            /* steps of 1.5 and 2 in turn: at most a third wasted */

#if defined(__SANITIZE_ADDRESS__)
#define MEM_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEM_CACHE 0
#endif
#endif
#ifndef MEM_CACHE
#define MEM_CACHE 1
#endif

struct free_block {
    struct free_block *next;
};

char buf_empty[1];

static struct free_block *cache[MEM_CLASSES];
static size_t cached_bytes;

/* Class k holds blocks of 64 << k/2, times 1.5 for odd k. */
static size_t class_size(int k)
{
    size_t base = (size_t)MEM_CLASS_MIN << (k / 2);
    return k % 2 ? base + base / 2 : base;
}

static int mem_class(size_t n)
{
    for (int k = 0; k < MEM_CLASSES; k++)
        if (n <= class_size(k))
            return k;
    return -1;
}

void *mem_get(size_t n, size_t *cap)
{
    int k = mem_class(n);
    size_t size = k < 0 ? n : class_size(k);
    if (cap)
        *cap = size;
    if (MEM_CACHE && k >= 0 && cache[k]) {
        struct free_block *b = cache[k];
        cache[k] = b->next;
        cached_bytes -= size;
        return b;
    }
    return malloc(size);
}

void mem_put(void *p, size_t cap)
{
    if (!p)
        return;
    int k = mem_class(cap);
    if (MEM_CACHE && k >= 0 && class_size(k) == cap && cached_bytes + cap <= MEM_CACHE_MAX) {
        struct free_block *b = p;
        b->next = cache[k];
        cache[k] = b;
        cached_bytes += cap;
        return;
    }
    free(p);
}

void mem_flush(void)
{
    for (int k = 0; k < MEM_CLASSES; k++) {
        while (cache[k]) {
            struct free_block *b = cache[k];
            cache[k] = b->next;
            free(b);
        }
    }
    cached_bytes = 0;
}

/* The data moved to the start of a new block of at least cap bytes, the
 * old block handed back; false (b unchanged) when there is none. */
static bool move_to_block(struct buf *b, size_t cap)
{
    size_t len = b->end - b->start;
    char *p = mem_get(cap, &cap);
    if (!p)
        return false;
    if (len)
        memcpy(p, b->data + b->start, len);
    mem_put(b->data, b->cap);
    b->data = p;
    b->start = 0;
    b->end = len;
    b->cap = cap;
    return true;
}

int buf_reserve(struct buf *b, size_t n)
{
    if (b->failed)
        return -1;
    if (b->cap - b->end >= n)
        return 0;
    size_t len = b->end - b->start;
    /* Sliding the data back is cheaper than growing when the consumed
     * prefix alone makes enough room. */
    if (b->start > 0 && b->cap - len >= n) {
        memmove(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = len;
        return 0;
    }
    if (n > SIZE_MAX / 2 - len) {
        b->failed = true;
        return -1;
    }
    size_t need = len + n;
    size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
    while (cap < need)
        cap *= 2;
    if (!move_to_block(b, cap)) {
        b->failed = true;
        return -1;
    }
    return 0;
}

void buf_commit(struct buf *b, size_t n)
{
    b->end += n;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return b->failed ? -1 : 0;
    if (buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->end, p, n);
    b->end += n;
    return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        b->failed = true;
        return -1;
    }
    if ((size_t)n < sizeof small)
        return buf_append(b, small, (size_t)n);
    if (buf_reserve(b, (size_t)n + 1) < 0)
        return -1;
    vsnprintf(b->data + b->end, (size_t)n + 1, fmt, ap);
    b->end += (size_t)n;
    return 0;
}

int buf_append_u64(struct buf *b, uint64_t v)
{
    char d[20];
    size_t n = 0;
    do {
        d[sizeof d - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return buf_append(b, d + sizeof d - n, n);
}

int buf_append_hex(struct buf *b, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char d[16];
    size_t n = 0;
    do {
        d[sizeof d - 1 - n++] = digits[v & 15];
        v >>= 4;
    } while (v);
    return buf_append(b, d + sizeof d - n, n);
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return r;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->end - b->start) {
        b->start = b->end = 0;
        return;
    }
    b->start += n;
}

void buf_clear(struct buf *b)
{
    b->start = b->end = 0;
    b->failed = false;
}

void buf_trim(struct buf *b, size_t keep)
{
    if (b->start == b->end && b->cap > keep) {
        mem_put(b->data, b->cap);
        b->data = NULL;
        b->start = b->end = b->cap = 0;
    }
}

void buf_shrink(struct buf *b, size_t min_cap)
{
    size_t len = b->end - b->start;
    if (b->failed || b->cap <= min_cap || len > b->cap / 4)
        return;
    size_t cap = min_cap;
    while (cap < len * 2)
        cap *= 2;
    move_to_block(b, cap);   /* when it fails, keeping the larger block is fine */
}

void buf_free(struct buf *b)
{
    mem_put(b->data, b->cap);
    b->data = NULL;
    b->start = b->end = b->cap = 0;
    b->failed = false;
}

char *buf_steal_str(struct buf *b)
{
    if (buf_reserve(b, 1) < 0)
        return NULL;
    b->data[b->end] = '\0';
    /* The caller frees the string with free(): copy it out of our block. */
    char *s = strdup(b->data + b->start);
    buf_free(b);
    return s;
}

const char *buf_cstr(struct buf *b)
{
    if (buf_reserve(b, 1) < 0)
        return "";
    b->data[b->end] = '\0';
    return b->data + b->start;
}
