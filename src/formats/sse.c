#include "sse.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

void sse_init(struct sse_splitter *s)
{
    memset(s, 0, sizeof *s);
}

void sse_free(struct sse_splitter *s)
{
    buf_free(&s->line);
}

/* Deliver the held partial line plus text[0, n) with the given ending. */
static int emit(struct sse_splitter *s, const char *text, size_t n, const char *eol, size_t eol_len,
                sse_line_fn fn, void *ctx)
{
    int r;
    if (s->in_long_line) {
        r = fn(ctx, text, n, eol, eol_len, true);
        if (eol_len)
            s->in_long_line = false;
        return r;
    }
    if (buf_len(&s->line)) {
        if (buf_append(&s->line, text, n) < 0)
            return -1;
        r = fn(ctx, buf_head(&s->line), buf_len(&s->line), eol, eol_len, false);
        buf_clear(&s->line);
        buf_trim(&s->line, 4096);
        return r;
    }
    return fn(ctx, text, n, eol, eol_len, false);
}

int sse_feed(struct sse_splitter *s, const char *p, size_t n, sse_line_fn fn, void *ctx)
{
    size_t i = 0;
    if (s->cr_seen && n > 0) {
        /* A "\r\n" cut between two reads: the line went out with "\r" as
         * its ending.  The LF is handed over alone, as an empty partial
         * piece ending in "\n", so forwarded bytes stay identical and no
         * extra blank line is seen. */
        s->cr_seen = false;
        if (p[0] == '\n') {
            if (fn(ctx, "", 0, "\n", 1, true) < 0)
                return -1;
            i = 1;
        }
    }
    size_t start = i;
    while (i < n) {
        char ch = p[i];
        if (ch != '\n' && ch != '\r') {
            i++;
            continue;
        }
        size_t eol_len = 1;
        if (ch == '\r') {
            if (i + 1 < n) {
                if (p[i + 1] == '\n')
                    eol_len = 2;
            } else {
                s->cr_seen = true;
            }
        }
        if (emit(s, p + start, i - start, p + i, eol_len, fn, ctx) < 0)
            return -1;
        i += eol_len;
        start = i;
    }
    size_t rest = n - start;
    if (rest == 0)
        return 0;
    if (s->in_long_line)
        return fn(ctx, p + start, rest, "", 0, true);
    if (buf_len(&s->line) + rest > SSE_LINE_MAX) {
        /* Too long to hold: pass what we have on, unchanged, in pieces. */
        s->in_long_line = true;
        int r = 0;
        if (buf_len(&s->line))
            r = fn(ctx, buf_head(&s->line), buf_len(&s->line), "", 0, true);
        buf_clear(&s->line);
        if (r == 0)
            r = fn(ctx, p + start, rest, "", 0, true);
        return r;
    }
    return buf_append(&s->line, p + start, rest);
}

int sse_finish(struct sse_splitter *s, sse_line_fn fn, void *ctx)
{
    s->cr_seen = false;
    if (s->in_long_line) {
        s->in_long_line = false;
        return fn(ctx, "", 0, "", 0, true);
    }
    if (buf_len(&s->line) == 0)
        return 0;
    int r = fn(ctx, buf_head(&s->line), buf_len(&s->line), "", 0, false);
    buf_clear(&s->line);
    return r;
}

const char *sse_data(const char *line, size_t len, size_t *plen)
{
    if (!mem_starts(line, len, "data:"))
        return NULL;
    size_t off = 5;
    if (off < len && line[off] == ' ')
        off++;
    *plen = len - off;
    return line + off;
}
