#include "gunzip.h"

#include <stdint.h>
#include <string.h>

/* DEFLATE (RFC 1951) decoded the simple way: canonical Huffman codes read
 * a bit at a time against per-length code counts.  Slower than a table
 * decoder, but small, and it only ever runs for a UI file asked for
 * without gzip. */

#define MAX_BITS 15       /* longest Huffman code */
#define LITLEN_CODES 288  /* 286 used, 2 reserved (fixed code has all 288) */
#define DIST_CODES 30
#define CLEN_CODES 19

struct bits {
    const unsigned char *in;
    size_t len, pos;
    uint32_t acc;          /* bits read from in but not yet used, low first */
    unsigned count;        /* how many */
    bool overrun;          /* a read went past the end: the input is cut */
};

struct out {
    unsigned char *p;
    size_t cap, len;
};

struct huff {
    uint16_t count[MAX_BITS + 1];  /* codes of each length */
    uint16_t sym[LITLEN_CODES];    /* symbols ordered by code */
};

/* n (0..16) bits, first bit lowest. */
static unsigned take(struct bits *b, unsigned n)
{
    while (b->count < n) {
        if (b->pos == b->len) {
            b->overrun = true;
            return 0;
        }
        b->acc |= (uint32_t)b->in[b->pos++] << b->count;
        b->count += 8;
    }
    unsigned v = b->acc & ((1u << n) - 1);
    b->acc >>= n;
    b->count -= n;
    return v;
}

/* The canonical code of lens[0, n) (RFC 1951 3.2.2).  An over-subscribed
 * set is refused; an incomplete one is allowed (a single distance code is
 * legal), its unused codes fail when met. */
static bool huff_build(struct huff *h, const uint8_t *lens, unsigned n)
{
    memset(h->count, 0, sizeof h->count);
    for (unsigned i = 0; i < n; i++)
        h->count[lens[i]]++;
    h->count[0] = 0;
    int left = 1;
    for (unsigned len = 1; len <= MAX_BITS; len++) {
        left = 2 * left - h->count[len];
        if (left < 0)
            return false;
    }
    uint16_t next[MAX_BITS + 1];
    next[1] = 0;
    for (unsigned len = 1; len < MAX_BITS; len++)
        next[len + 1] = (uint16_t)(next[len] + h->count[len]);
    for (unsigned i = 0; i < n; i++)
        if (lens[i])
            h->sym[next[lens[i]]++] = (uint16_t)i;
    return true;
}

/* The next symbol, or -1.  Codes are packed first bit highest: walk the
 * lengths, keeping the first code of each and where its symbols start. */
static int huff_read(struct bits *b, const struct huff *h)
{
    int code = 0, first = 0, index = 0;
    for (unsigned len = 1; len <= MAX_BITS; len++) {
        code |= (int)take(b, 1);
        if (b->overrun)
            return -1;
        int count = h->count[len];
        if (code - first < count)
            return h->sym[index + code - first];
        index += count;
        first = (first + count) << 1;
        code <<= 1;
    }
    return -1;
}

static const uint16_t len_base[29] = {3,  4,  5,  6,  7,  8,  9,  10,  11,  13,  15,  17,  19,  23, 27,
                                      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[DIST_CODES] = {1,   2,   3,   4,   5,   7,    9,    13,   17,   25,
                                               33,  49,  65,  97,  129, 193,  257,  385,  513,  769,
                                               1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[DIST_CODES] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                               6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

/* Literals and back-references up to the end-of-block symbol. */
static bool inflate_codes(struct bits *b, struct out *o, const struct huff *lit, const struct huff *dist)
{
    for (;;) {
        int sym = huff_read(b, lit);
        if (sym < 0)
            return false;
        if (sym < 256) {
            if (o->len == o->cap)
                return false;
            o->p[o->len++] = (unsigned char)sym;
            continue;
        }
        if (sym == 256)
            return true;
        sym -= 257;
        if (sym >= 29)
            return false;
        size_t len = len_base[sym] + take(b, len_extra[sym]);
        int dsym = huff_read(b, dist);
        if (dsym < 0 || dsym >= DIST_CODES)
            return false;
        size_t d = dist_base[dsym] + take(b, dist_extra[dsym]);
        if (b->overrun || d > o->len || len > o->cap - o->len)
            return false;
        for (size_t i = 0; i < len; i++, o->len++)  /* may overlap itself */
            o->p[o->len] = o->p[o->len - d];
    }
}

static bool inflate_stored(struct bits *b, struct out *o)
{
    b->acc = 0;       /* the rest of the current byte is padding */
    b->count = 0;
    if (b->len - b->pos < 4)
        return false;
    const unsigned char *p = b->in + b->pos;
    unsigned len = p[0] | (unsigned)p[1] << 8, nlen = p[2] | (unsigned)p[3] << 8;
    b->pos += 4;
    if ((len ^ 0xffffu) != nlen || len > b->len - b->pos || len > o->cap - o->len)
        return false;
    memcpy(o->p + o->len, b->in + b->pos, len);
    b->pos += len;
    o->len += len;
    return true;
}

static bool inflate_fixed(struct bits *b, struct out *o)
{
    uint8_t lens[LITLEN_CODES];
    struct huff lit, dist;
    memset(lens, 8, 144);
    memset(lens + 144, 9, 112);
    memset(lens + 256, 7, 24);
    memset(lens + 280, 8, 8);
    huff_build(&lit, lens, LITLEN_CODES);
    memset(lens, 5, DIST_CODES);
    huff_build(&dist, lens, DIST_CODES);
    return inflate_codes(b, o, &lit, &dist);
}

/* The literal/length and distance code lengths of a dynamic block, given
 * with the code-length code (RFC 1951 3.2.7). */
static bool read_lengths(struct bits *b, uint8_t *lens, unsigned n, const struct huff *clen)
{
    unsigned i = 0;
    while (i < n) {
        int sym = huff_read(b, clen);
        if (sym < 0)
            return false;
        if (sym < 16) {
            lens[i++] = (uint8_t)sym;
            continue;
        }
        uint8_t val = 0;
        unsigned rep;
        if (sym == 16) {
            if (i == 0)
                return false;
            val = lens[i - 1];
            rep = 3 + take(b, 2);
        } else if (sym == 17) {
            rep = 3 + take(b, 3);
        } else {
            rep = 11 + take(b, 7);
        }
        if (b->overrun || rep > n - i)
            return false;
        memset(lens + i, val, rep);
        i += rep;
    }
    return true;
}

static bool inflate_dynamic(struct bits *b, struct out *o)
{
    static const uint8_t order[CLEN_CODES] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    unsigned nlit = take(b, 5) + 257, ndist = take(b, 5) + 1, nclen = take(b, 4) + 4;
    if (b->overrun || nlit > 286 || ndist > DIST_CODES)
        return false;
    uint8_t lens[LITLEN_CODES + DIST_CODES] = {0};
    for (unsigned i = 0; i < nclen; i++)
        lens[order[i]] = (uint8_t)take(b, 3);
    struct huff clen, lit, dist;
    if (b->overrun || !huff_build(&clen, lens, CLEN_CODES))
        return false;
    if (!read_lengths(b, lens, nlit + ndist, &clen) || lens[256] == 0)
        return false;
    return huff_build(&lit, lens, nlit) && huff_build(&dist, lens + nlit, ndist) &&
           inflate_codes(b, o, &lit, &dist);
}

static bool inflate_all(struct bits *b, struct out *o)
{
    bool last;
    do {
        last = take(b, 1);
        unsigned type = take(b, 2);
        if (b->overrun)
            return false;
        bool ok = type == 0 ? inflate_stored(b, o) : type == 1 ? inflate_fixed(b, o)
                : type == 2 ? inflate_dynamic(b, o) : false;
        if (!ok || b->overrun)
            return false;
    } while (!last);
    return true;
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static uint32_t le32(const unsigned char *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Skip a zero-terminated field; false when it runs off the end. */
static bool skip_string(const unsigned char *in, size_t len, size_t *pos)
{
    const unsigned char *z = memchr(in + *pos, 0, len - *pos);
    if (!z)
        return false;
    *pos = (size_t)(z - in) + 1;
    return true;
}

/* Where the deflate data starts after the member header, or 0. */
static size_t header_len(const unsigned char *in, size_t len)
{
    enum { FHCRC = 2, FEXTRA = 4, FNAME = 8, FCOMMENT = 16, RESERVED = 0xe0 };
    if (len < 10 || in[0] != 0x1f || in[1] != 0x8b || in[2] != 8 || (in[3] & RESERVED))
        return 0;
    unsigned flags = in[3];
    size_t pos = 10;
    if (flags & FEXTRA) {
        if (len - pos < 2)
            return 0;
        size_t xlen = in[pos] | (size_t)in[pos + 1] << 8;
        if (xlen > len - pos - 2)
            return 0;
        pos += 2 + xlen;
    }
    if ((flags & FNAME) && !skip_string(in, len, &pos))
        return 0;
    if ((flags & FCOMMENT) && !skip_string(in, len, &pos))
        return 0;
    if (flags & FHCRC) {
        if (len - pos < 2)
            return 0;
        pos += 2;
    }
    return pos;
}

bool gunzip(const unsigned char *in, size_t in_len, unsigned char *out, size_t out_cap,
            size_t *out_len)
{
    size_t start = header_len(in, in_len);
    if (start == 0)
        return false;
    struct bits b = {.in = in, .len = in_len, .pos = start};
    struct out o = {.p = out, .cap = out_cap};
    if (!inflate_all(&b, &o))
        return false;
    /* The trailer starts at the next whole byte: bits still held are
     * padding of the last byte read. */
    if (in_len - b.pos != 8)
        return false;
    const unsigned char *t = in + b.pos;
    if (le32(t) != crc32_of(out, o.len) || le32(t + 4) != (uint32_t)o.len)
        return false;
    *out_len = o.len;
    return true;
}
