/* Unit tests of sse.c: the line splitter (every way of cutting a stream
 * into reads gives the same lines and the same bytes, CR / LF / CRLF
 * endings, a CRLF cut between reads, over-long lines in pieces, stopping)
 * and sse_data.  What an event says: test_event.c. */
#include "buf.h"
#include "sse.h"
#include "tap.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------- a recording callback ---------------- */

/* What the splitter handed out: `bytes` is every text + eol back to back
 * (must equal the input); `lines` has one entry per logical line, pieces
 * of a partial line joined, written as "text<eol name>;". */
struct rec {
    struct buf bytes;
    struct buf lines;
    struct buf open;        /* pieces of a line not ended yet */
    bool open_partial;
    int calls;
    int stop_at;            /* return -1 on this call (0: never) */
    int partial_calls;
};

static const char *eol_name(const char *eol, size_t n)
{
    if (n == 0)
        return "<end>";
    if (n == 2)
        return "<crlf>";
    return eol[0] == '\n' ? "<lf>" : "<cr>";
}

static int record(void *ctx, const char *text, size_t len, const char *eol, size_t eol_len, bool partial)
{
    struct rec *r = ctx;
    r->calls++;
    buf_append(&r->bytes, text, len);
    buf_append(&r->bytes, eol, eol_len);
    if (partial)
        r->partial_calls++;
    /* An empty partial piece ending in LF completes a CRLF cut in two:
     * the line itself was already recorded with <cr>. */
    if (partial && len == 0 && eol_len == 1 && eol[0] == '\n' && !r->open_partial) {
        size_t n = buf_len(&r->lines);
        const char *tail = "<cr>;";
        if (n >= 5 && memcmp(buf_head(&r->lines) + n - 5, tail, 5) == 0) {
            buf_clear(&r->open);
            r->lines.end -= 5;
            buf_append_str(&r->lines, "<crlf>;");
            return r->stop_at && r->calls == r->stop_at ? -1 : 0;
        }
    }
    buf_append(&r->open, text, len);
    r->open_partial = partial && eol_len == 0;
    if (eol_len || !partial) {
        buf_append(&r->lines, buf_head(&r->open) ? buf_head(&r->open) : "", buf_len(&r->open));
        buf_append_str(&r->lines, eol_name(eol, eol_len));
        buf_append_str(&r->lines, ";");
        buf_clear(&r->open);
        r->open_partial = false;
    }
    return r->stop_at && r->calls == r->stop_at ? -1 : 0;
}

static void rec_free(struct rec *r)
{
    buf_free(&r->bytes);
    buf_free(&r->lines);
    buf_free(&r->open);
}

static const char *cstr(struct buf *b)
{
    return buf_len(b) ? buf_cstr(b) : "";
}

/* Feed text in pieces cut at cuts[0..ncuts) (ascending), then finish. */
static int feed_cut(struct rec *r, const char *text, size_t n, const size_t *cuts, size_t ncuts)
{
    struct sse_splitter s;
    sse_init(&s);
    size_t at = 0;
    int rc = 0;
    for (size_t i = 0; i <= ncuts && rc == 0; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        rc = sse_feed(&s, text + at, end - at, record, r);
        at = end;
    }
    if (rc == 0)
        rc = sse_finish(&s, record, r);
    sse_free(&s);
    return rc;
}

/* ---------------- the splitter ---------------- */

static void test_whole(void)
{
    struct rec r = {0};
    const char *in = "data: a\n\ndata: b\r\n\r\nevent: x\rdata: c";
    ok(feed_cut(&r, in, strlen(in), NULL, 0) == 0, "one read: no stop");
    is_str(cstr(&r.lines), "data: a<lf>;<lf>;data: b<crlf>;<crlf>;event: x<cr>;data: c<end>;",
           "LF, CRLF and CR endings; the last line without an end comes out at finish");
    is_str(cstr(&r.bytes), in, "the bytes handed out are the input, exactly");
    rec_free(&r);
}

/* Every cut into two and into three reads gives the same lines and bytes. */
static void test_every_cut(void)
{
    static const char *inputs[] = {
        "data: {\"a\":1}\r\n\r\ndata: [DONE]\r\n\r\n",
        "data: x\n\n: comment\nevent: e\r\rdata:y\r\n",
        "\r\n\r\n\n\r\r\n",
        "data: no end",
    };
    for (size_t t = 0; t < ARRAY_LEN(inputs); t++) {
        const char *in = inputs[t];
        size_t n = strlen(in);
        struct rec want = {0};
        feed_cut(&want, in, n, NULL, 0);
        int bad = 0;
        for (size_t a = 0; a <= n; a++) {
            for (size_t b = a; b <= n; b++) {
                struct rec got = {0};
                size_t cuts[2] = { a, b };
                feed_cut(&got, in, n, cuts, 2);
                if (strcmp(cstr(&got.lines), cstr(&want.lines)) != 0 || strcmp(cstr(&got.bytes), in) != 0) {
                    if (!bad++)
                        printf("#   cut at %zu,%zu: lines \"%s\", want \"%s\"\n", a, b, cstr(&got.lines),
                               cstr(&want.lines));
                }
                rec_free(&got);
            }
        }
        ok(bad == 0, "input %zu: every cut into 1-3 reads gives the same lines and bytes (%d differ)", t, bad);
        rec_free(&want);
    }
}

static void test_crlf_cut(void)
{
    struct rec r = {0};
    const char *in = "data: a\r\ndata: b\r\n";
    size_t cut = 8;   /* between the first CR and its LF */
    feed_cut(&r, in, strlen(in), &cut, 1);
    is_str(cstr(&r.lines), "data: a<crlf>;data: b<crlf>;", "a CRLF cut between reads is one line end, not two");
    is_int(r.calls, 3, "... the LF arrives as its own empty piece");
    is_str(cstr(&r.bytes), in, "... and the bytes are unchanged");
    rec_free(&r);
}

static void test_long_line(void)
{
    size_t n = SSE_LINE_MAX + 1000;
    char *in = malloc(n + 32);
    memcpy(in, "data: ", 6);
    memset(in + 6, 'x', n - 6);
    memcpy(in + n, "\ndata: short\n", 14);
    size_t total = n + 13;
    size_t cuts[3] = { 4096, SSE_LINE_MAX - 10, SSE_LINE_MAX + 500 };
    struct rec r = {0};
    feed_cut(&r, in, total, cuts, 3);
    ok(buf_len(&r.bytes) == total && memcmp(buf_head(&r.bytes), in, total) == 0,
       "a line over SSE_LINE_MAX passes through unchanged");
    ok(r.partial_calls >= 2, "... in partial pieces (%d)", r.partial_calls);
    const char *tail = "data: short<lf>;";
    size_t ll = buf_len(&r.lines);
    ok(ll > strlen(tail) && strcmp(buf_cstr(&r.lines) + ll - strlen(tail), tail) == 0,
       "the next line is whole again");
    rec_free(&r);

    /* A long line at the end of the stream: finish ends it with an empty piece. */
    struct rec e = {0};
    size_t cut = 10;
    feed_cut(&e, in, n, &cut, 1);
    ok(buf_len(&e.bytes) == n, "a long line cut off by the end of the stream is all handed out");
    free(in);
    rec_free(&e);
}

static void test_stop(void)
{
    const char *in = "data: a\n\ndata: b\n\n";
    for (int at = 1; at <= 4; at++) {
        struct rec r = {0};
        r.stop_at = at;
        struct sse_splitter s;
        sse_init(&s);
        int rc = sse_feed(&s, in, strlen(in), record, &r);
        ok(rc == -1 && r.calls == at, "the callback stops the splitter at call %d", at);
        sse_free(&s);
        rec_free(&r);
    }
    struct rec f = {0};
    f.stop_at = 1;
    struct sse_splitter s;
    sse_init(&s);
    sse_feed(&s, "data: tail", 10, record, &f);
    ok(sse_finish(&s, record, &f) == -1, "a stop at finish is reported");
    sse_free(&s);
    rec_free(&f);
}

/* ---------------- sse_data ---------------- */

static void test_data(void)
{
    struct { const char *line; const char *want; } cases[] = {
        { "data: x", "x" },
        { "data:x", "x" },
        { "data:  x", " x" },
        { "data:", "" },
        { "data: ", "" },
        { "event: data", NULL },
        { ": data: x", NULL },
        { "dat", NULL },
        { "Data: x", NULL },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        size_t pl = 999;
        const char *d = sse_data(cases[i].line, strlen(cases[i].line), &pl);
        if (cases[i].want)
            is_mem(d, pl, cases[i].want, "sse_data(\"%s\")", cases[i].line);
        else
            ok(d == NULL, "sse_data(\"%s\") is not a data line", cases[i].line);
    }
}

int main(void)
{
    test_whole();
    test_every_cut();
    test_crlf_cut();
    test_long_line();
    test_stop();
    test_data();
    return tap_done();
}
