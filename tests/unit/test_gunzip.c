/* Unit tests of gunzip.c: what gzip(1) makes at every level (stored,
 * fixed and dynamic blocks, long and self-overlapping matches) inflates
 * to the original; every cut, a byte changed, bytes after the member, a
 * bad header or too small an output is refused; the UI files compiled
 * into the binary inflate to the files of ui/. */
#include "gunzip.h"
#include "tap.h"
#include "ui_data.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct blob {
    unsigned char *p;
    size_t len;
};

static struct blob read_all(FILE *f)
{
    struct blob b = {0};
    size_t cap = 0;
    for (;;) {
        if (b.len == cap) {
            cap = cap ? 2 * cap : 4096;
            b.p = realloc(b.p, cap);
            if (!b.p)
                abort();
        }
        size_t n = fread(b.p + b.len, 1, cap - b.len, f);
        if (n == 0)
            break;
        b.len += n;
    }
    return b;
}

/* gzip(1) of data at the given level (the tool the build uses too). */
static struct blob gzip_of(const unsigned char *data, size_t len, int level)
{
    char path[] = "/tmp/test_gunzip.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len)
        abort();
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "gzip -%d -c < %s", level, path);
    FILE *p = popen(cmd, "r");
    if (!p)
        abort();
    struct blob b = read_all(p);
    pclose(p);
    unlink(path);
    return b;
}

static bool inflates_to(const struct blob *gz, const unsigned char *want, size_t want_len)
{
    unsigned char *out = malloc(want_len + 1);
    size_t n = 0;
    bool ok_ = gunzip(gz->p, gz->len, out, want_len + 1, &n) && n == want_len &&
               memcmp(out, want, want_len) == 0;
    free(out);
    return ok_;
}

static void round_trips(const char *what, const unsigned char *data, size_t len)
{
    static const int levels[] = {1, 6, 9};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        struct blob gz = gzip_of(data, len, levels[i]);
        ok(inflates_to(&gz, data, len), "%s, gzip -%d (%zu -> %zu bytes)", what, levels[i], len, gz.len);
        free(gz.p);
    }
}

static uint32_t rng = 12345;
static unsigned char next_byte(void)
{
    rng = rng * 1103515245u + 12345u;
    return (unsigned char)(rng >> 16);
}

static void test_round_trips(void)
{
    round_trips("empty", (const unsigned char *)"", 0);
    round_trips("one byte", (const unsigned char *)"a", 1);
    unsigned char *buf = malloc(200000);
    for (size_t i = 0; i < 200000; i++)
        buf[i] = next_byte();
    round_trips("random bytes (stored blocks)", buf, 200000);
    memset(buf, 'x', 100000);
    round_trips("one byte repeated (matches overlap themselves)", buf, 100000);
    for (size_t i = 0; i < 150000; i++)
        buf[i] = (unsigned char)"the quick brown fox jumps over the lazy dog "[i % 44] ^ (next_byte() % 7 == 0);
    round_trips("text with noise (dynamic blocks, far distances)", buf, 150000);
    free(buf);
}

static void test_refused(void)
{
    const char *text = "refused: every cut, every changed byte, bytes after it";
    size_t len = strlen(text);
    struct blob gz = gzip_of((const unsigned char *)text, len, 9);
    unsigned char out[256];
    size_t n;
    bool all = true;
    for (size_t cut = 0; cut < gz.len; cut++)
        all &= !gunzip(gz.p, cut, out, sizeof out, &n);
    ok(all, "every cut of a member is refused");

    /* A change anywhere but the header's time, flags for the OS and
     * extra flags must be found (by the format or by the CRC). */
    all = true;
    for (size_t i = 0; i < gz.len; i++) {
        if (i >= 4 && i <= 9)
            continue;
        for (unsigned bit = 0; bit < 8; bit++) {
            gz.p[i] ^= (unsigned char)(1u << bit);
            bool took = gunzip(gz.p, gz.len, out, sizeof out, &n);
            gz.p[i] ^= (unsigned char)(1u << bit);
            if (took && (n != len || memcmp(out, text, len) != 0)) {
                all = false;
                printf("#   byte %zu bit %u changed, other bytes came out\n", i, bit);
            }
        }
    }
    ok(all, "no changed bit gives other bytes than the original");

    unsigned char *more = malloc(gz.len + 1);
    memcpy(more, gz.p, gz.len);
    more[gz.len] = 0;
    ok(!gunzip(more, gz.len + 1, out, sizeof out, &n), "a byte after the member is refused");
    free(more);
    ok(!gunzip(gz.p, gz.len, out, len - 1, &n), "an output one byte too small is refused");
    ok(gunzip(gz.p, gz.len, out, len, &n) && n == len, "an output of exactly the size is enough");
    gz.p[3] = 0x20;
    ok(!gunzip(gz.p, gz.len, out, sizeof out, &n), "a reserved header flag is refused");
    gz.p[3] = 0;
    gz.p[2] = 7;
    ok(!gunzip(gz.p, gz.len, out, sizeof out, &n), "a method other than deflate is refused");
    free(gz.p);
}

static void test_header_fields(void)
{
    /* A member with a name, a comment, an extra field and a header CRC:
     * the inflater skips them all. */
    const char *text = "header fields";
    struct blob gz = gzip_of((const unsigned char *)text, strlen(text), 6);
    static const unsigned char extra[] = {4, 0, 'a', 'b', 2, 0, 'x', 'y'};
    static const char fields[] = "name.txt\0a comment";
    size_t hlen = 10 + sizeof extra + sizeof fields + 2;
    unsigned char *p = malloc(gz.len + hlen);
    memcpy(p, gz.p, 10);
    p[3] = 2 | 4 | 8 | 16;
    memcpy(p + 10, extra, sizeof extra);
    memcpy(p + 10 + sizeof extra, fields, sizeof fields);
    p[hlen - 2] = 0xab;
    p[hlen - 1] = 0xcd;
    memcpy(p + hlen, gz.p + 10, gz.len - 10);
    struct blob full = {p, gz.len - 10 + hlen};
    ok(inflates_to(&full, (const unsigned char *)text, strlen(text)), "name, comment, extra field and header CRC skipped");
    p[3] = 8;  /* a name that never ends */
    memset(p + 10, 'n', full.len - 10);
    unsigned char out[64];
    size_t n;
    ok(!gunzip(p, full.len, out, sizeof out, &n), "a name without its end is refused");
    free(p);
    free(gz.p);
}

static void test_ui_files(void)
{
    for (size_t i = 0; i < ui_nfiles; i++) {
        const struct ui_file *f = &ui_files[i];
        char path[256];
        snprintf(path, sizeof path, "ui/%s", strcmp(f->path, "/") == 0 ? "index.html" : f->path + 1);
        FILE *fp = fopen(path, "rb");
        if (!ok(fp, "%s readable", path))
            continue;
        struct blob want = read_all(fp);
        fclose(fp);
        if (f->gz) {
            struct blob gz = {(unsigned char *)f->gz, f->gz_len};
            ok(!f->data && f->len == want.len && inflates_to(&gz, want.p, want.len),
               "%s compiled in gzip only, inflates to the file (%zu -> %zu bytes)", path, want.len, f->gz_len);
        } else {
            ok(f->data && f->len == want.len && memcmp(f->data, want.p, want.len) == 0,
               "%s compiled in as it is", path);
        }
        free(want.p);
    }
}

int main(void)
{
    test_round_trips();
    test_refused();
    test_header_fields();
    test_ui_files();
    printf("1..%d\n", tap_n);
    return tap_failed != 0;
}
