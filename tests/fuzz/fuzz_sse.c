/* libFuzzer target: the event-stream splitter (sse_feed, sse_finish),
 * sse_data, and the event reader of both dialects (event_read,
 * event_usage).
 *
 * Input: see fuzz_common.h.  The control bytes give the split sizes (a
 * byte 0xfe makes an empty feed).  Flags (high nibble of byte 0):
 *   1   a run of SSE_LINE_MAX - 16 KiB + 128 * control byte 1 bytes ('a',
 *       or the first data byte) is inserted at control byte 0, so that
 *       over-long lines take the pass-through path (only with N >= 2
 *       control bytes, and only for exactly this flag value, as these
 *       inputs are slow); pieces are then 256 times larger;
 *   2   the callback asks to stop (returns -1) at its call number
 *       control byte 2 % 32: sse_feed / sse_finish must return -1 and
 *       the splitter must still free cleanly.
 *
 * Checked: every text and end handed out lies in the fed piece or in the
 * splitter's own buffer, a text never holds CR or LF, and the ends are
 * "", "\n", "\r\n" or "\r"; the concatenation of all text + end equals
 * the input exactly; the logical lines (pieces joined, a CRLF cut in two
 * rejoined) are those of a plain splitter written here; event_read on
 * each data line, as OpenAI and as Anthropic, returns a known kind with a
 * terminated message and spans inside the payload, and answer_has_error
 * on the whole input a terminated message. */
#include "buf.h"
#include "event.h"
#include "fuzz_common.h"
#include "sse.h"

struct line {
    size_t start, len;      /* text in the logical-line store */
    char eol[3];
    size_t eol_len;
};

struct ctx {
    struct buf all;          /* text + eol of every callback */
    struct buf text;         /* logical line texts, back to back */
    struct line *lines;
    size_t n_lines, cap_lines;
    bool open;               /* a logical line has pieces but no end yet */
    size_t open_start;
    const char *piece;       /* the piece being fed */
    size_t piece_len;
    const struct sse_splitter *sp;
    size_t calls;
    size_t stop_at;          /* return -1 at this call (0: never) */
    bool stopped;
    size_t classify_left;
};

static void check_span(struct json_val v, size_t n, const char *what)
{
    if (v.type != JSON_INVALID)
        FUZZ_CHECK(v.start <= v.end && v.end <= n, "%s span outside the payload", what);
}

static void read_event(enum dialect d, const char *p, size_t n)
{
    struct ev_info ev;
    event_read(d, p, n, &ev);
    FUZZ_CHECK(ev.kind == EVK_NEUTRAL || ev.kind == EVK_CONTENT || ev.kind == EVK_DONE || ev.kind == EVK_ERROR,
               "event_read kind %d", (int)ev.kind);
    FUZZ_CHECK(memchr(ev.msg, '\0', sizeof ev.msg) != NULL, "event message not terminated");
    FUZZ_CHECK(ev.kind == EVK_CONTENT || ev.content == 0, "content bits on a kind without content");
    check_span(ev.root, n, "root");
    check_span(ev.text, n, "text");
    check_span(ev.usage, n, "usage");
    if (ev.text.type != JSON_INVALID)
        FUZZ_CHECK(ev.text.type == JSON_STRING, "the text span is not a string");
    struct tokens t = { 0, 0, 0, 0 };
    event_usage(d, p, ev.usage, &t);
    FUZZ_CHECK(t.prompt <= (1ull << 62) * 3 && t.completion <= (1ull << 62), "token counts out of range");
}

static void classify(struct ctx *c, const char *t, size_t len)
{
    if (!c->classify_left)
        return;
    c->classify_left--;
    size_t pl = 12345;
    const char *d = sse_data(t, len, &pl);
    if (!d)
        return;
    FUZZ_CHECK(len >= 5 && memcmp(t, "data:", 5) == 0, "sse_data on a non-data line");
    FUZZ_CHECK(d >= t + 5 && d <= t + 6 && d + pl == t + len, "sse_data view");
    read_event(DIALECT_OPENAI, d, pl);
    read_event(DIALECT_ANTHROPIC, d, pl);
}

static void push_line(struct ctx *c, const char *eol, size_t eol_len)
{
    if (c->n_lines == c->cap_lines) {
        c->cap_lines = c->cap_lines ? c->cap_lines * 2 : 64;
        c->lines = realloc(c->lines, c->cap_lines * sizeof *c->lines);
        if (!c->lines)
            abort();
    }
    struct line *l = &c->lines[c->n_lines++];
    l->start = c->open_start;
    l->len = buf_len(&c->text) - c->open_start;
    memcpy(l->eol, eol, eol_len);
    l->eol_len = eol_len;
    c->open = false;
}

static int on_line(void *vctx, const char *t, size_t len, const char *eol, size_t eol_len, bool partial)
{
    struct ctx *c = vctx;
    FUZZ_CHECK(!c->stopped, "callback called again after it returned -1");
    c->calls++;
    if (c->calls == c->stop_at) {
        c->stopped = true;
        return -1;
    }
    /* Views: the piece fed, or the splitter's line buffer, or a literal. */
    const struct buf *held = &c->sp->line;
    bool in_piece = fuzz_inside(t, len, c->piece, c->piece_len);
    bool in_held = held->data && fuzz_inside(t, len, held->data + held->start, buf_len(held));
    FUZZ_CHECK(len == 0 || in_piece || in_held, "text of %zu bytes outside the piece and the held line", len);
    FUZZ_CHECK(eol_len <= 2, "eol_len %zu", eol_len);
    FUZZ_CHECK(eol_len == 0 || (eol_len == 1 && (eol[0] == '\n' || eol[0] == '\r')) ||
                   (eol_len == 2 && eol[0] == '\r' && eol[1] == '\n'),
               "bad end of line");
    if (eol_len && fuzz_inside(eol, eol_len, c->piece, c->piece_len) == false)
        FUZZ_CHECK(partial && eol_len == 1 && eol[0] == '\n' && len == 0, "end of line outside the piece");
    FUZZ_CHECK(!memchr(t, '\n', len) && !memchr(t, '\r', len), "line text holds CR or LF");
    if (!partial)
        FUZZ_CHECK(!c->open, "a whole line while pieces of another are pending");
    if (buf_append(&c->all, t, len) < 0 || buf_append(&c->all, eol, eol_len) < 0)
        abort();

    /* The LF of a CRLF cut between feeds: rejoin it with its CR. */
    if (partial && len == 0 && eol_len == 1 && eol[0] == '\n' && !c->open && c->n_lines &&
        c->lines[c->n_lines - 1].eol_len == 1 && c->lines[c->n_lines - 1].eol[0] == '\r') {
        c->lines[c->n_lines - 1].eol[1] = '\n';
        c->lines[c->n_lines - 1].eol_len = 2;
        return 0;
    }
    if (!c->open) {
        c->open_start = buf_len(&c->text);
        c->open = true;
    }
    if (buf_append(&c->text, t, len) < 0)
        abort();
    if (!partial)
        classify(c, t, len);
    if (eol_len || !partial) {
        if (partial)
            classify(c, c->text.data ? buf_head(&c->text) + c->open_start : "", buf_len(&c->text) - c->open_start);
        push_line(c, eol, eol_len);
    }
    return 0;
}

/* The lines of s[0, n) by LF, CRLF or CR; a last line without an end. */
static void check_lines(const struct ctx *c, const char *s, size_t n)
{
    size_t i = 0, start = 0, li = 0;
    const char *text = c->text.data ? buf_head(&c->text) : "";
    while (i <= n) {
        size_t el;
        if (i == n) {
            if (start == n)
                break;
            el = 0;
        } else if (s[i] == '\n') {
            el = 1;
        } else if (s[i] == '\r') {
            el = (i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
        } else {
            i++;
            continue;
        }
        FUZZ_CHECK(li < c->n_lines, "line %zu missing", li);
        const struct line *l = &c->lines[li];
        FUZZ_CHECK(l->len == i - start && memcmp(text + l->start, s + start, l->len) == 0,
                   "line %zu: text differs (%zu bytes, expected %zu)", li, l->len, i - start);
        FUZZ_CHECK(l->eol_len == el && memcmp(l->eol, s + i, el) == 0, "line %zu: end differs", li);
        li++;
        i += el;
        start = i;
        if (el == 0)
            break;
    }
    FUZZ_CHECK(li == c->n_lines, "%zu lines expected, %zu seen", li, c->n_lines);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
    struct fuzz_input f = fuzz_split_input(in, n);
    const char *s = (const char *)f.data;
    size_t len = f.len;
    char *big = NULL;
    size_t scale = 1;
    if (f.flags == 1 && f.nctl >= 2) {
        size_t fill = SSE_LINE_MAX - 16384 + 128 * (size_t)f.ctl[1];
        size_t at = len ? f.ctl[0] % (len + 1) : 0;
        char fb = len && f.data[0] != '\n' && f.data[0] != '\r' ? (char)f.data[0] : 'a';
        big = malloc(len + fill);
        if (!big)
            abort();
        memcpy(big, f.data, at);
        memset(big + at, fb, fill);
        memcpy(big + at + fill, f.data + at, len - at);
        s = big;
        len += fill;
        scale = 256;
    }

    /* The whole input as a non-stream answer body. */
    char amsg[48];
    memset(amsg, 0x55, sizeof amsg);
    if (answer_has_error(s, len, amsg, sizeof amsg))
        FUZZ_CHECK(memchr(amsg, '\0', sizeof amsg) != NULL, "answer_has_error message not terminated");

    struct sse_splitter sp;
    sse_init(&sp);
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.all = (struct buf)BUF_INIT;
    c.text = (struct buf)BUF_INIT;
    c.sp = &sp;
    c.classify_left = 64;
    if (f.flags == 2)
        c.stop_at = 1 + fuzz_ctl(&f, 2, 0) % 32;
    struct fuzz_splitter split = { &f, 0, scale };
    size_t pos = 0;
    size_t feeds = 0;
    while (pos < len) {
        size_t piece;
        if (f.nctl && f.ctl[split.next % f.nctl] == 0xfe) {
            split.next++;
            piece = 0;           /* an empty read */
        } else {
            piece = fuzz_next_piece(&split, len - pos);
        }
        char *p = fuzz_dup(s + pos, piece);
        c.piece = p;
        c.piece_len = piece;
        int fr = sse_feed(&sp, p, piece, on_line, &c);
        if (c.stopped) {
            FUZZ_CHECK(fr == -1, "sse_feed returned %d after the callback stopped it", fr);
            free(p);
            break;
        }
        FUZZ_CHECK(fr == 0, "sse_feed failed");
        FUZZ_CHECK(buf_len(&sp.line) <= SSE_LINE_MAX, "held line of %zu bytes", buf_len(&sp.line));
        free(p);
        pos += piece;
        if (++feeds > 4 * len + 16)
            break;  /* only empty feeds: stop */
    }
    c.piece = NULL;
    c.piece_len = 0;
    if (c.stopped) {
        /* A stopped stream is dropped: freeing must be enough. */
        sse_free(&sp);
        goto out;
    }
    int fin = sse_finish(&sp, on_line, &c);
    if (c.stopped) {
        FUZZ_CHECK(fin == -1, "sse_finish returned %d after the callback stopped it", fin);
        sse_free(&sp);
        goto out;
    }
    FUZZ_CHECK(fin == 0, "sse_finish failed");
    /* An over-long last line without an end is closed by sse_finish with
     * an empty partial piece (eol ""): the stream has ended. */
    if (c.open)
        push_line(&c, "", 0);
    if (pos == len) {
        FUZZ_CHECK(buf_len(&c.all) == len && (len == 0 || memcmp(buf_head(&c.all), s, len) == 0),
                   "lines handed out (%zu bytes) differ from the input (%zu bytes)", buf_len(&c.all), len);
        check_lines(&c, s, len);
    }
    /* A splitter is reusable after sse_finish. */
    FUZZ_CHECK(buf_len(&sp.line) == 0 && !sp.in_long_line && !sp.cr_seen, "state left after sse_finish");
    sse_free(&sp);
out:
    buf_free(&c.all);
    buf_free(&c.text);
    free(c.lines);
    free(big);
    return 0;
}
