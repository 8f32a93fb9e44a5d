/* buf: the one growable byte buffer of the program.
 *
 * A buf owns `data` (heap, or NULL while empty).  Valid bytes are
 * data[start, end); free space is data[end, cap).  Consuming from the
 * front only moves `start`; the space is reclaimed when the buffer
 * empties or when a reserve needs it, so a pointer into a buf stays
 * valid until the next call that may grow it (buf_reserve, buf_append,
 * buf_printf).  A buf has no limit of its own: every owner checks its
 * own named limit before appending.
 *
 * Errors are sticky: once an allocation failed, every later append fails
 * too and buf_failed() says so, so a builder may append a dozen pieces and
 * check once at the end, and a half-built request head is refused as a
 * whole rather than sent with a piece missing.  buf_clear and buf_free
 * start over. */
#ifndef AUTOSWITCH_BUF_H
#define AUTOSWITCH_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
    char *data;
    size_t start;
    size_t end;
    size_t cap;
    bool failed;    /* an append ran out of memory (sticky) */
};

#define BUF_INIT { NULL, 0, 0, 0, false }

/* An empty buffer's head: never NULL (pointer arithmetic on NULL is
 * undefined even for + 0), never to be written. */
extern char buf_empty[1];
static inline char *buf_head(const struct buf *b) { return b->data ? b->data + b->start : buf_empty; }
static inline size_t buf_len(const struct buf *b) { return b->end - b->start; }
static inline char *buf_tail(const struct buf *b) { return b->data + b->end; }
static inline size_t buf_room(const struct buf *b) { return b->cap - b->end; }
static inline bool buf_failed(const struct buf *b) { return b->failed; }

/* Make room for at least n more bytes at the tail.  0, or -1 when out of memory. */
int buf_reserve(struct buf *b, size_t n);
/* Declare n bytes written at the tail (after buf_reserve). */
void buf_commit(struct buf *b, size_t n);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
/* Decimal digits of v (no printf: this is on every request's path). */
int buf_append_u64(struct buf *b, uint64_t v);
/* v in lower-case hex (chunk sizes). */
int buf_append_hex(struct buf *b, uint64_t v);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Drop n bytes from the front. */
void buf_consume(struct buf *b, size_t n);
/* Forget the contents (and a failure), keep the memory. */
void buf_clear(struct buf *b);
/* Release the memory when the buffer is empty and larger than keep bytes:
 * idle connections should not sit on the peak of their traffic. */
void buf_trim(struct buf *b, size_t keep);
/* Give memory back while data is still queued: when less than a quarter
 * of a block larger than min_cap is in use, move the data to a block
 * twice its size (at least min_cap).  What a queue that drains slowly
 * holds then stays near what it has left to send. */
void buf_shrink(struct buf *b, size_t min_cap);
/* Bytes of memory the buffer holds (its block). */
static inline size_t buf_capacity(const struct buf *b)
{
    return b->cap;
}
void buf_free(struct buf *b);
/* The contents as a C string: a NUL is kept after the last byte (not
 * counted in the length).  "" when out of memory. */
const char *buf_cstr(struct buf *b);
/* Take the contents as a NUL-terminated heap string; the buf is left empty. */
char *buf_steal_str(struct buf *b);

/* Small-block cache.  musl's allocator gives memory back to the kernel as
 * soon as a group of blocks empties, so a request that allocates and frees
 * the same few buffers costs an mmap, a munmap and a page fault each time.
 * Blocks of up to MEM_CACHE_BLOCK_MAX bytes are kept for reuse instead,
 * MEM_CACHE_MAX bytes at most; mem_flush() hands them all back.  The cache
 * is off in sanitizer builds, so use-after-free stays detectable. */
#define MEM_CACHE_BLOCK_MAX 32768
#define MEM_CACHE_MAX (256u * 1024)
/* A block of at least n bytes; *cap (may be NULL) gets its real size,
 * which must be given back to mem_put.  NULL when out of memory. */
void *mem_get(size_t n, size_t *cap);
void mem_put(void *p, size_t cap);
void mem_flush(void);

#endif
