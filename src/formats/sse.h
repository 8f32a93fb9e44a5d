/* sse: server-sent events (text/event-stream) seen line by line.
 *
 * The splitter cuts a byte stream into lines (LF, CRLF or CR endings, as
 * the WHATWG event-stream format allows), carrying a partial line over
 * to the next call.  A line longer than SSE_LINE_MAX is not held: it is
 * handed over in pieces, marked partial, so memory stays bounded (such a
 * line is passed through unchanged).  What an event says is event.h's
 * business. */
#ifndef AUTOSWITCH_SSE_H
#define AUTOSWITCH_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define SSE_LINE_MAX (256u * 1024)   /* longer lines pass through in pieces */

struct sse_splitter {
    struct buf line;       /* partial line (without its end) */
    bool cr_seen;          /* the last byte was CR: a following LF belongs to it */
    bool in_long_line;     /* inside a line being passed through in pieces */
};

/* One line: text[0, len) without the end-of-line, then eol[0, eol_len)
 * ("\n", "\r\n", "\r" or "" for a partial piece).  partial: a piece of an
 * over-long line (more pieces follow until one has eol_len > 0, or, at the
 * end of the stream, an empty piece with eol "").
 * Return 0 to go on, -1 to stop. */
typedef int (*sse_line_fn)(void *ctx, const char *text, size_t len, const char *eol, size_t eol_len,
                           bool partial);

void sse_init(struct sse_splitter *s);
void sse_free(struct sse_splitter *s);
/* Feed bytes.  0, or -1 when fn stopped (or out of memory). */
int sse_feed(struct sse_splitter *s, const char *p, size_t n, sse_line_fn fn, void *ctx);
/* End of stream: a last line without an end is delivered with eol "". */
int sse_finish(struct sse_splitter *s, sse_line_fn fn, void *ctx);

/* The payload of a data line (after "data:" and one optional space), or
 * NULL when the line is not a data line. */
const char *sse_data(const char *line, size_t len, size_t *plen);

#endif
