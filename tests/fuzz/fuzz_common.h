/* Shared helpers of the libFuzzer targets in tests/fuzz/ (built by
 * scripts/fuzz.sh, never by the Makefile's normal targets).
 *
 * Input layout used by the targets that feed a parser in pieces:
 *
 *   byte 0        low 4 bits: number of control bytes that follow (0..15)
 *                 high 4 bits: target-specific flags
 *   control bytes split sizes (cycled) and target-specific choices
 *   the rest      the bytes under test
 *
 * With no control bytes the data goes in as one piece, so a seed is just
 * "\x00" followed by the message.
 *
 * Every piece handed to a parser is copied into its own heap block of
 * exactly that size, so AddressSanitizer reports any read past the end
 * of what the parser was given, not only past the end of the input. */
#ifndef AUTOSWITCH_FUZZ_COMMON_H
#define AUTOSWITCH_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An invariant of the code under test does not hold: report and abort,
 * which libFuzzer turns into a crash with the input saved. */
#define FUZZ_CHECK(cond, ...)                                                          \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                              \
            fprintf(stderr, "\n");                                                     \
            abort();                                                                   \
        }                                                                              \
    } while (0)

struct fuzz_input {
    unsigned flags;          /* high nibble of byte 0 */
    const uint8_t *ctl;      /* control bytes */
    size_t nctl;
    const uint8_t *data;     /* bytes under test */
    size_t len;
};

static inline struct fuzz_input fuzz_split_input(const uint8_t *in, size_t n)
{
    struct fuzz_input f = { 0, NULL, 0, in, 0 };
    if (n == 0)
        return f;
    size_t nctl = in[0] & 0x0f;
    if (nctl > n - 1)
        nctl = n - 1;
    f.flags = in[0] >> 4;
    f.ctl = in + 1;
    f.nctl = nctl;
    f.data = in + 1 + nctl;
    f.len = n - 1 - nctl;
    return f;
}

/* Control byte i (cycled), or dflt when there are none. */
static inline unsigned fuzz_ctl(const struct fuzz_input *f, size_t i, unsigned dflt)
{
    return f->nctl ? f->ctl[i % f->nctl] : dflt;
}

/* Successive piece sizes taken from the control bytes: byte b gives a
 * piece of b + 1 bytes (times `scale`), except that 0xff means "all the
 * rest".  No control bytes: one piece with everything. */
struct fuzz_splitter {
    const struct fuzz_input *f;
    size_t next;             /* index of the next control byte */
    size_t scale;
};

static inline size_t fuzz_next_piece(struct fuzz_splitter *s, size_t left)
{
    if (s->f->nctl == 0)
        return left;
    unsigned b = s->f->ctl[s->next++ % s->f->nctl];
    if (b == 0xff)
        return left;
    size_t piece = ((size_t)b + 1) * (s->scale ? s->scale : 1);
    return piece < left ? piece : left;
}

/* A heap copy of p[0, n) with nothing readable after it (n may be 0:
 * then a 1-byte block is returned, which the parser must not read). */
static inline char *fuzz_dup(const void *p, size_t n)
{
    char *c = malloc(n ? n : 1);
    if (!c)
        abort();
    if (n)
        memcpy(c, p, n);
    return c;
}

/* Whether p[0, n) lies inside base[0, len). */
static inline bool fuzz_inside(const void *p, size_t n, const void *base, size_t len)
{
    const char *a = p, *b = base;
    if (!a || !b)
        return false;
    return a >= b && a <= b + len && n <= (size_t)(b + len - a);
}

/* Strict UTF-8 (Unicode table 3-7: no overlongs, no surrogates, nothing
 * past U+10FFFF).  Written independently of the code under test. */
static inline bool fuzz_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t len;
        uint32_t min;
        if ((c & 0xe0) == 0xc0) {
            cp = c & 0x1f;
            len = 2;
            min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            cp = c & 0x0f;
            len = 3;
            min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            cp = c & 0x07;
            len = 4;
            min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

#endif
