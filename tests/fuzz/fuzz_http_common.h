/* Checks shared by fuzz_http_request and fuzz_http_response: fields of a
 * parsed head, the framing rules, and the chunked decoder fed in pieces. */
#ifndef AUTOSWITCH_FUZZ_HTTP_COMMON_H
#define AUTOSWITCH_FUZZ_HTTP_COMMON_H

#include "fuzz_common.h"
#include "http_parse.h"

static bool fz_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool fz_field_byte(unsigned char c)
{
    return c == '\t' || (c >= ' ' && c != 0x7f);
}

/* The fields of a head parsed from buf[0, used): inside it, in order,
 * names are tokens, values hold no line end, no CTL, no outer OWS. */
static void check_fields(const struct hp_header *h, size_t n, const char *buf, size_t used)
{
    FUZZ_CHECK(n <= HP_MAX_HEADERS, "num_headers %zu", n);
    const char *prev_end = buf;
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(h[i].name_len > 0, "field %zu: empty name", i);
        FUZZ_CHECK(fuzz_inside(h[i].name, h[i].name_len, buf, used), "field %zu: name outside the head", i);
        FUZZ_CHECK(fuzz_inside(h[i].value, h[i].value_len, buf, used), "field %zu: value outside the head", i);
        FUZZ_CHECK(h[i].name >= prev_end, "field %zu: not after the previous one", i);
        FUZZ_CHECK(h[i].value >= h[i].name + h[i].name_len + 1, "field %zu: value before the colon", i);
        FUZZ_CHECK(h[i].name[h[i].name_len] == ':', "field %zu: name not followed by ':'", i);
        for (size_t k = 0; k < h[i].name_len; k++)
            FUZZ_CHECK(fz_tchar((unsigned char)h[i].name[k]), "field %zu: name byte 0x%02x", i,
                       (unsigned char)h[i].name[k]);
        for (size_t k = 0; k < h[i].value_len; k++)
            FUZZ_CHECK(fz_field_byte((unsigned char)h[i].value[k]), "field %zu: value byte 0x%02x", i,
                       (unsigned char)h[i].value[k]);
        if (h[i].value_len) {
            unsigned char a = (unsigned char)h[i].value[0], z = (unsigned char)h[i].value[h[i].value_len - 1];
            FUZZ_CHECK(a != ' ' && a != '\t' && z != ' ' && z != '\t', "field %zu: value keeps OWS", i);
        }
        prev_end = h[i].value + h[i].value_len;
    }
}

/* Same names and values, byte for byte. */
static void check_same_fields(const struct hp_header *a, size_t na, const struct hp_header *b, size_t nb)
{
    FUZZ_CHECK(na == nb, "re-parse: %zu fields, then %zu", na, nb);
    for (size_t i = 0; i < na; i++) {
        FUZZ_CHECK(a[i].name_len == b[i].name_len && memcmp(a[i].name, b[i].name, a[i].name_len) == 0,
                   "re-parse: field %zu name differs", i);
        FUZZ_CHECK(a[i].value_len == b[i].value_len && memcmp(a[i].value, b[i].value, a[i].value_len) == 0,
                   "re-parse: field %zu value differs", i);
    }
}

/* A growable output for re-serialised messages. */
struct fz_out {
    char *p;
    size_t n, cap;
};

static void out_add(struct fz_out *o, const void *s, size_t n)
{
    if (o->n + n > o->cap) {
        o->cap = (o->n + n) * 2 + 64;
        o->p = realloc(o->p, o->cap);
        if (!o->p)
            abort();
    }
    if (n)
        memcpy(o->p + o->n, s, n);
    o->n += n;
}

static void out_str(struct fz_out *o, const char *s)
{
    out_add(o, s, strlen(s));
}

/* How a head is spelled.  Canonical: CRLF, "name: value", nothing before
 * the start line.  The variants are all allowed by the header comment of
 * http_parse.h: a bare LF as line end, OWS around values, up to 8 empty
 * lines before the start line. */
struct head_style {
    bool lf;
    bool ows;
    unsigned leading;
};

static struct head_style style_from(unsigned b)
{
    struct head_style st = { (b & 1) != 0, (b & 2) != 0, (b >> 2) % 9 };
    return st;
}

static void out_eol(struct fz_out *o, const struct head_style *st)
{
    out_str(o, st->lf ? "\n" : "\r\n");
}

static void out_leading(struct fz_out *o, const struct head_style *st)
{
    for (unsigned i = 0; i < st->leading; i++)
        out_str(o, (i & 1) ? "\n" : "\r\n");
}

static void out_fields(struct fz_out *o, const struct hp_header *h, size_t n, const struct head_style *st)
{
    for (size_t i = 0; i < n; i++) {
        out_add(o, h[i].name, h[i].name_len);
        out_str(o, st->ows ? ":\t \t" : ": ");
        out_add(o, h[i].value, h[i].value_len);
        if (st->ows)
            out_str(o, " \t");
        out_eol(o, st);
    }
    out_eol(o, st);
}

static bool same_framing(const struct hp_framing *a, const struct hp_framing *b)
{
    return a->body == b->body && a->length == b->length && a->keep_alive == b->keep_alive &&
           a->expect_continue == b->expect_continue;
}

/* What a head parser may answer for buf[0, k) given its answer `full`
 * for buf[0, n), k < n: it re-scans from the start and judges each byte
 * when reached, so a prefix either ends too early (incomplete) or gets
 * the very same answer. */
static void check_prefix_answer(int full, int part, size_t k)
{
    if (full > 0) {
        int want = (size_t)full <= k ? full : HP_INCOMPLETE;
        FUZZ_CHECK(part == want, "prefix of %zu bytes: %d, expected %d (whole: %d)", k, part, want, full);
    } else {
        FUZZ_CHECK(part == HP_INCOMPLETE || part == full, "prefix of %zu bytes: %d, whole: %d", k, part, full);
    }
}

/* ---------------- chunked decoder ---------------- */

struct chunk_run {
    enum hp_chunk_result end;   /* DONE, ERROR, or NEED_MORE when the input ran out */
    size_t end_off;             /* DONE: after the message; ERROR: the bad byte; else len */
    char *out;                  /* decoded bytes */
    size_t out_len;
};

/* Decode in[0, len) fed in pieces chosen by sp (NULL: all at once). */
static void chunk_run(const uint8_t *in, size_t len, struct fuzz_splitter *sp, struct chunk_run *r)
{
    struct hp_chunked d;
    hp_chunked_init(&d);
    r->out = malloc(len ? len : 1);
    r->out_len = 0;
    r->end = HP_CHUNK_NEED_MORE;
    r->end_off = len;
    if (!r->out)
        abort();
    size_t pos = 0;
    bool finished = false;
    do {
        size_t piece = sp ? fuzz_next_piece(sp, len - pos) : len - pos;
        char *p = fuzz_dup(in + pos, piece);
        size_t off = 0;
        for (;;) {
            size_t consumed = 12345, dl = 12345;
            const char *data = p;
            enum hp_chunk_result res = hp_chunked_decode(&d, p + off, piece - off, &consumed, &data, &dl);
            FUZZ_CHECK(consumed <= piece - off, "chunked: consumed %zu of %zu", consumed, piece - off);
            if (res == HP_CHUNK_DATA) {
                FUZZ_CHECK(dl > 0, "chunked: DATA of length 0");
                FUZZ_CHECK(fuzz_inside(data, dl, p + off, consumed), "chunked: DATA outside what was consumed");
                FUZZ_CHECK(data + dl == p + off + consumed, "chunked: DATA does not end at the consumed point");
                FUZZ_CHECK(r->out_len + dl <= len, "chunked: more data than input");
                memcpy(r->out + r->out_len, data, dl);
                r->out_len += dl;
                off += consumed;
                continue;
            }
            FUZZ_CHECK(data == NULL && dl == 0, "chunked: result %d with data", (int)res);
            if (res == HP_CHUNK_NEED_MORE) {
                FUZZ_CHECK(consumed == piece - off, "chunked: NEED_MORE but %zu of %zu consumed", consumed,
                           piece - off);
                break;
            }
            FUZZ_CHECK(res == HP_CHUNK_DONE || res == HP_CHUNK_ERROR, "chunked: result %d", (int)res);
            r->end = res;
            r->end_off = pos + off + consumed;
            /* Final states stay final and consume nothing. */
            size_t c2 = 1, dl2 = 1;
            const char *d2 = p;
            enum hp_chunk_result again = hp_chunked_decode(&d, p, piece, &c2, &d2, &dl2);
            FUZZ_CHECK(again == res && c2 == 0 && d2 == NULL && dl2 == 0, "chunked: state %d not sticky (%d)",
                       (int)res, (int)again);
            finished = true;
            break;
        }
        free(p);
        pos += piece;
    } while (!finished && pos < len);
    FUZZ_CHECK(r->out_len <= r->end_off, "chunked: %zu bytes decoded from %zu", r->out_len, r->end_off);
}

/* data[0, len) chunk-encoded in pieces chosen by sp, in a style chosen by
 * the bits of b: upper-case hex, bare LF line ends, an extension (with
 * whitespace before the ';'), leading zeros, 0 to 3 trailer fields. */
static void chunk_encode(struct fz_out *o, const uint8_t *data, size_t len, struct fuzz_splitter *sp, unsigned b)
{
    const char *eol = (b & 2) ? "\n" : "\r\n";
    size_t pos = 0;
    for (;;) {
        size_t piece = pos < len ? fuzz_next_piece(sp, len - pos) : 0;
        char line[64];
        snprintf(line, sizeof line, (b & 1) ? "%s%zX" : "%s%zx", (b & 16) ? "000" : "", piece);
        out_str(o, line);
        if (b & 4)
            out_str(o, (b & 8) ? " \t;name=\"v a\";x" : ";ext=1");
        out_str(o, eol);
        if (piece == 0)
            break;
        out_add(o, data + pos, piece);
        out_str(o, eol);
        pos += piece;
    }
    for (unsigned t = 0; t < ((b >> 5) & 3); t++) {
        out_str(o, "X-Trailer-");
        out_add(o, &"abc"[t], 1);
        out_str(o, ": v\t1");
        out_str(o, eol);
    }
    out_str(o, eol);
}

/* Any body, chunk-encoded as the grammar allows, decodes back to itself
 * and ends exactly at the end of the encoding, whatever the split. */
static void check_chunk_round_trip(const struct fuzz_input *f, const uint8_t *data, size_t len)
{
    struct fz_out enc = { NULL, 0, 0 };
    struct fuzz_splitter sp = { f, 1, 1 };
    chunk_encode(&enc, data, len, &sp, fuzz_ctl(f, 4, 0));
    struct fuzz_splitter sp2 = { f, 2, 1 };
    struct chunk_run whole, split;
    chunk_run((const uint8_t *)enc.p, enc.n, NULL, &whole);
    chunk_run((const uint8_t *)enc.p, enc.n, &sp2, &split);
    FUZZ_CHECK(whole.end == HP_CHUNK_DONE && whole.end_off == enc.n,
               "chunked round trip: end %d at %zu of %zu (style 0x%02x)", (int)whole.end, whole.end_off, enc.n,
               fuzz_ctl(f, 4, 0));
    FUZZ_CHECK(whole.out_len == len && memcmp(whole.out, data, len) == 0, "chunked round trip: data differs");
    FUZZ_CHECK(split.end == HP_CHUNK_DONE && split.end_off == enc.n && split.out_len == len &&
                   memcmp(split.out, data, len) == 0,
               "chunked round trip, split: differs");
    free(whole.out);
    free(split.out);
    free(enc.p);
}

/* The decoder gives the same bytes and the same end whatever the split. */
static void check_chunked(const struct fuzz_input *f, const uint8_t *body, size_t len)
{
    struct chunk_run whole, split;
    struct fuzz_splitter sp = { f, 0, 1 };
    chunk_run(body, len, NULL, &whole);
    chunk_run(body, len, &sp, &split);
    FUZZ_CHECK(whole.end == split.end, "chunked: end %d whole, %d split", (int)whole.end, (int)split.end);
    FUZZ_CHECK(whole.end_off == split.end_off, "chunked: ends at %zu whole, %zu split", whole.end_off,
               split.end_off);
    FUZZ_CHECK(whole.out_len == split.out_len && memcmp(whole.out, split.out, whole.out_len) == 0,
               "chunked: decoded bytes differ (%zu whole, %zu split)", whole.out_len, split.out_len);
    free(whole.out);
    free(split.out);
    check_chunk_round_trip(f, body, len);
}

#endif
