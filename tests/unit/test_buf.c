/* Unit tests of buf.c: appends, consume and reuse, the sticky error, the
 * decimal formatter, and the small-block cache. */
#include "buf.h"
#include "tap.h"

#include <stdint.h>
#include <string.h>

static void test_basics(void)
{
    struct buf b = BUF_INIT;
    ok(buf_append_str(&b, "hello ") == 0 && buf_append(&b, "world", 5) == 0, "append");
    is_mem(buf_head(&b), buf_len(&b), "hello world", "... holds the bytes");
    buf_consume(&b, 6);
    is_mem(buf_head(&b), buf_len(&b), "world", "consume drops from the front");
    buf_printf(&b, " %d%s", 42, "!");
    is_str(buf_cstr(&b), "world 42!", "printf and cstr");
    buf_clear(&b);
    is_int(buf_len(&b), 0, "clear empties");
    uint64_t vals[] = { 0, 7, 10, 18446744073709551615ull };
    const char *want[] = { "0", "7", "10", "18446744073709551615" };
    for (size_t i = 0; i < 4; i++) {
        buf_clear(&b);
        buf_append_u64(&b, vals[i]);
        is_str(buf_cstr(&b), want[i], "append_u64(%s)", want[i]);
    }
    buf_free(&b);
}

static void test_sticky(void)
{
    struct buf b = BUF_INIT;
    buf_append_str(&b, "GET / HTTP/1.1\r\n");
    ok(!buf_failed(&b), "a buffer starts healthy");
    ok(buf_reserve(&b, SIZE_MAX) < 0, "an impossible reserve fails");
    ok(buf_failed(&b), "... and the failure sticks");
    ok(buf_append_str(&b, "Host: x\r\n") < 0, "later appends fail too");
    ok(buf_append(&b, "", 0) < 0, "even an empty one");
    ok(buf_printf(&b, "%d", 1) < 0, "and printf");
    is_mem(buf_head(&b), buf_len(&b), "GET / HTTP/1.1\r\n", "the contents stay as they were");
    buf_clear(&b);
    ok(!buf_failed(&b) && buf_append_str(&b, "ok") == 0, "clear starts over");
    buf_free(&b);
    ok(!buf_failed(&b), "free starts over");
}

static void test_cache(void)
{
    size_t cap;
    void *p = mem_get(100, &cap);
    ok(p && cap >= 100, "mem_get gives at least what was asked (%zu)", cap);
    mem_put(p, cap);
    void *q = mem_get(100, &cap);
    ok(q != NULL, "and again after mem_put");
    mem_put(q, cap);
    mem_flush();
    ok(1, "mem_flush empties the cache");
}

int main(void)
{
    test_basics();
    test_sticky();
    test_cache();
    return tap_done();
}
