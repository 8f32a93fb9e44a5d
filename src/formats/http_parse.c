/* http_parse: HTTP/1.1 message heads and chunked bodies (RFC 9112), with
 * the field rules of RFC 9110 section 5.  See http_parse.h for the API.
 *
 * The head parsers are a single forward byte loop over buf[0, len).  Each
 * byte is judged the moment it is reached, so a malformed head is rejected
 * at its first bad byte (a client sending garbage is answered at once,
 * without waiting for a line end), while a head that is merely cut short
 * yields HP_INCOMPLETE.  Every read is guarded by `p < end`: nothing at or
 * after buf[len] is ever touched, which matters because callers hand us
 * the exact extent of what they have read from a socket. */
#include "http_parse.h"

#include <limits.h>
#include <string.h>

#define CR '\r'
#define LF '\n'
#define SP ' '
#define HTAB '\t'
#define DEL 0x7f

/* RFC 9112 2.2 asks a server to ignore at least one empty line before the
 * request-line (some clients send a CRLF after a POST body).  A few cover
 * every real client; an endless stream of them is garbage. */
#define HP_MAX_LEADING_EMPTY_LINES 8

/* The head parsers report the consumed length as an int; a head is never
 * allowed to get anywhere near this (the server stops at 16 KiB), but the
 * parser must not overflow even if a caller forgets. */
#define HP_SCAN_MAX ((size_t)INT_MAX)

/* RFC 9112 2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT, and
 * HTTP-name is case-sensitive.  Only 1.0 and 1.1 exist for this syntax. */
#define HTTP_1_PREFIX "HTTP/1."
#define HTTP_1_PREFIX_LEN (sizeof HTTP_1_PREFIX - 1)

/* RFC 9110 15: status-code = 3DIGIT; the header promises 100..999. */
#define STATUS_DIGITS 3

/* A chunk-size of more than this many significant hex digits is refused:
 * 15 digits keep a size below 2^60, well inside the 2^62 bound promised
 * by the header, and the decoder never needs to test for overflow. */
#define CHUNK_SIZE_MAX_DIGITS 15
#define CHUNK_SIZE_DIGIT_LIMIT ((uint64_t)1 << (4 * (CHUNK_SIZE_MAX_DIGITS - 1)))

/* Content-Length must fit in 63 bits (RFC 9110 8.6 leaves the bound to
 * the recipient; a signed 64-bit off_t is what everybody else uses). */
#define CONTENT_LENGTH_MAX ((uint64_t)INT64_MAX)

#define CHUNKED "chunked"
#define CHUNKED_LEN (sizeof CHUNKED - 1)

/* ------------------------------------------------------------------ */
/* Byte classes                                                        */

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
 * "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
        return true;
    default:
        return false;
    }
}

/* RFC 9110 5.6.3: OWS = *( SP / HTAB ) */
static bool is_ows(unsigned char c)
{
    return c == SP || c == HTAB;
}

/* Bytes allowed inside a field value or reason phrase (RFC 9110 5.5,
 * RFC 9112 4): HTAB, SP, VCHAR and obs-text (0x80-0xff).  Every other
 * control, NUL and DEL included, is an error: RFC 9110 5.5 lets a
 * recipient reject them, and passing them on invites header injection. */
static bool is_field_byte(unsigned char c)
{
    return c == HTAB || (c >= SP && c != DEL);
}

/* request-target bytes (RFC 9112 3.2 with RFC 3986): visible ASCII only.
 * Spaces and controls would split the request-line differently in other
 * parsers (RFC 9112 3.2 says reject), and raw bytes >= 0x80 are not part
 * of any URI form. */
static bool is_target_byte(unsigned char c)
{
    return c > SP && c < DEL;
}

static bool is_line_end_byte(unsigned char c)
{
    return c == CR || c == LF;
}

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Field names and the tokens we look for are ASCII; locale tolower()
 * would be both slower and wrong for obs-text. */
static bool ascii_caseeq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return false;
    return true;
}

/* ------------------------------------------------------------------ */
/* Head parsing: a cursor over the caller's bytes                      */

struct cursor {
    const char *p;
    const char *end;
};

/* RFC 9112 2.2: lines end in CRLF; a recipient MAY accept a bare LF, and
 * a bare CR (one not followed by LF) must be rejected, since parsers that
 * disagree on it disagree on where fields end. */
static int take_line_end(struct cursor *c)
{
    if (c->p == c->end)
        return HP_INCOMPLETE;
    if (*c->p == LF) {
        c->p++;
        return 0;
    }
    if (*c->p != CR)
        return HP_ERROR;
    if (c->end - c->p < 2)
        return HP_INCOMPLETE;
    if (c->p[1] != LF)
        return HP_ERROR;
    c->p += 2;
    return 0;
}

/* RFC 9112 2.2: empty lines before the start-line are ignored. */
static int skip_leading_empty_lines(struct cursor *c)
{
    for (int lines = 0;; lines++) {
        if (c->p == c->end)
            return HP_INCOMPLETE;
        if (!is_line_end_byte((unsigned char)*c->p))
            return 0;
        if (lines == HP_MAX_LEADING_EMPTY_LINES)
            return HP_ERROR;
        int r = take_line_end(c);
        if (r < 0)
            return r;
    }
}

/* One or more bytes that `allowed` accepts, then `stop`, which is
 * consumed.  Used for the method (RFC 9112 3.1: tchar, stop SP), field
 * names (5.1: tchar, stop ':', so whitespace before the colon is rejected
 * as 5.1 requires) and the request-target (3.2, stop SP: exactly one SP
 * separates the parts of the request-line; a lenient whitespace split is
 * what smuggling and cache-poisoning tricks rely on). */
static int take_run(struct cursor *c, bool (*allowed)(unsigned char), char stop,
                    const char **run, size_t *run_len)
{
    const char *start = c->p;
    while (c->p < c->end && allowed((unsigned char)*c->p))
        c->p++;
    if (c->p == c->end)
        return HP_INCOMPLETE;
    if (*c->p != stop || c->p == start)
        return HP_ERROR;
    *run = start;
    *run_len = (size_t)(c->p - start);
    c->p++;
    return 0;
}

/* Match a literal byte by byte so that a wrong byte is reported as soon
 * as it arrives, and a short but matching input as incomplete. */
static int take_literal(struct cursor *c, const char *lit, size_t lit_len)
{
    for (size_t i = 0; i < lit_len; i++, c->p++) {
        if (c->p == c->end)
            return HP_INCOMPLETE;
        if (*c->p != lit[i])
            return HP_ERROR;
    }
    return 0;
}

/* "HTTP/1.0" or "HTTP/1.1" (RFC 9112 2.3). */
static int take_version(struct cursor *c, int *minor)
{
    int r = take_literal(c, HTTP_1_PREFIX, HTTP_1_PREFIX_LEN);
    if (r < 0)
        return r;
    if (c->p == c->end)
        return HP_INCOMPLETE;
    if (*c->p != '0' && *c->p != '1')
        return HP_ERROR;
    *minor = *c->p - '0';
    c->p++;
    return 0;
}

/* field-value with the surrounding OWS removed (RFC 9112 5.1: "OWS
 * occurring before the first non-whitespace octet of the field-value, or
 * after the last, is excluded"), then the line end. */
static int take_field_value(struct cursor *c, const char **value, size_t *value_len)
{
    while (c->p < c->end && is_ows((unsigned char)*c->p))
        c->p++;
    const char *start = c->p;
    const char *last = c->p;    /* one past the last non-OWS byte */
    for (; c->p < c->end; c->p++) {
        unsigned char ch = (unsigned char)*c->p;
        if (is_line_end_byte(ch))
            break;
        if (!is_field_byte(ch))
            return HP_ERROR;
        if (!is_ows(ch))
            last = c->p + 1;
    }
    if (c->p == c->end)
        return HP_INCOMPLETE;
    *value = start;
    *value_len = (size_t)(last - start);
    return take_line_end(c);
}

/* The field lines and the empty line that ends the head (RFC 9112 2.1). */
static int take_fields(struct cursor *c, struct hp_header *fields, size_t *num_fields)
{
    *num_fields = 0;
    for (;;) {
        if (c->p == c->end)
            return HP_INCOMPLETE;
        unsigned char ch = (unsigned char)*c->p;
        if (is_line_end_byte(ch))
            return take_line_end(c);
        /* A line starting with whitespace is either obs-fold (RFC 9112
         * 5.2: a server MUST reject it outside message/http) or
         * whitespace between the start-line and the first field (RFC 9112
         * 2.2: reject or ignore the whole line).  Both are rejected. */
        if (is_ows(ch))
            return HP_ERROR;
        if (*num_fields == HP_MAX_HEADERS)
            return HP_TOO_MANY_HEADERS;
        struct hp_header *f = &fields[*num_fields];
        int r = take_run(c, is_tchar, ':', &f->name, &f->name_len);
        if (r < 0)
            return r;
        r = take_field_value(c, &f->value, &f->value_len);
        if (r < 0)
            return r;
        (*num_fields)++;
    }
}

/* status-code = 3DIGIT (RFC 9112 4), here 100..999. */
static int take_status(struct cursor *c, int *status)
{
    int v = 0;
    for (int i = 0; i < STATUS_DIGITS; i++, c->p++) {
        if (c->p == c->end)
            return HP_INCOMPLETE;
        unsigned char ch = (unsigned char)*c->p;
        if (ch < '0' || ch > '9' || (i == 0 && ch == '0'))
            return HP_ERROR;
        v = v * 10 + (ch - '0');
    }
    *status = v;
    return 0;
}

/* [ SP reason-phrase ] before the line end.  RFC 9112 4 makes the SP
 * mandatory, but also says a client SHOULD ignore the reason phrase, and
 * servers do send "HTTP/1.1 200\r\n": accept both spellings. */
static int take_reason(struct cursor *c, const char **reason, size_t *reason_len)
{
    if (c->p == c->end)
        return HP_INCOMPLETE;
    if (*c->p == SP)
        c->p++;
    else if (!is_line_end_byte((unsigned char)*c->p))
        return HP_ERROR;
    const char *start = c->p;
    for (; c->p < c->end; c->p++) {
        unsigned char ch = (unsigned char)*c->p;
        if (is_line_end_byte(ch))
            break;
        if (!is_field_byte(ch))
            return HP_ERROR;
    }
    if (c->p == c->end)
        return HP_INCOMPLETE;
    *reason = start;
    *reason_len = (size_t)(c->p - start);
    return 0;
}

static struct cursor cursor_over(const char *buf, size_t len)
{
    struct cursor c = { buf, buf + (len > HP_SCAN_MAX ? HP_SCAN_MAX : len) };
    return c;
}

int hp_parse_request(const char *buf, size_t len, struct hp_request *req)
{
    req->num_headers = 0;
    if (len == 0)
        return HP_INCOMPLETE;
    struct cursor c = cursor_over(buf, len);
    int r = skip_leading_empty_lines(&c);
    /* RFC 9112 3: request-line = method SP request-target SP HTTP-version */
    if (r == 0)
        r = take_run(&c, is_tchar, SP, &req->method, &req->method_len);
    if (r == 0)
        r = take_run(&c, is_target_byte, SP, &req->target, &req->target_len);
    if (r == 0)
        r = take_version(&c, &req->minor_version);
    if (r == 0)
        r = take_line_end(&c);
    if (r == 0)
        r = take_fields(&c, req->headers, &req->num_headers);
    return r < 0 ? r : (int)(c.p - buf);
}

int hp_parse_response(const char *buf, size_t len, struct hp_response *res)
{
    res->num_headers = 0;
    if (len == 0)
        return HP_INCOMPLETE;
    struct cursor c = cursor_over(buf, len);
    int r = skip_leading_empty_lines(&c);
    /* RFC 9112 4: status-line = HTTP-version SP status-code SP [ reason-phrase ] */
    if (r == 0)
        r = take_version(&c, &res->minor_version);
    if (r == 0)
        r = take_literal(&c, " ", 1);
    if (r == 0)
        r = take_status(&c, &res->status);
    if (r == 0)
        r = take_reason(&c, &res->reason, &res->reason_len);
    if (r == 0)
        r = take_line_end(&c);
    if (r == 0)
        r = take_fields(&c, res->headers, &res->num_headers);
    return r < 0 ? r : (int)(c.p - buf);
}

/* ------------------------------------------------------------------ */
/* Field lookup and lists                                              */

bool hp_name_eq(const struct hp_header *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && ascii_caseeq(h->name, name, n);
}

const struct hp_header *hp_find(const struct hp_header *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (hp_name_eq(&h[i], name))
            return &h[i];
    return NULL;
}

/* Walks a comma-separated list (RFC 9110 5.6.1: #element, with OWS around
 * the commas).  Empty elements are produced too, so that callers that
 * need a strict list (Content-Length, Transfer-Encoding) can refuse them. */
struct list_iter {
    const char *p;
    const char *end;
    bool done;
};

static struct list_iter list_begin(const char *value, size_t len)
{
    struct list_iter it = { value, value + len, false };
    return it;
}

static bool list_next(struct list_iter *it, const char **elem, size_t *elem_len)
{
    if (it->done)
        return false;
    const char *s = it->p;
    const char *comma = memchr(s, ',', (size_t)(it->end - s));
    const char *e = comma ? comma : it->end;
    it->done = comma == NULL;
    it->p = comma ? comma + 1 : it->end;
    while (s < e && is_ows((unsigned char)*s))
        s++;
    while (e > s && is_ows((unsigned char)e[-1]))
        e--;
    *elem = s;
    *elem_len = (size_t)(e - s);
    return true;
}

bool hp_has_token(const char *value, size_t len, const char *token)
{
    if (value == NULL)
        return false;
    size_t tlen = strlen(token);
    struct list_iter it = list_begin(value, len);
    const char *e;
    size_t elen;
    while (list_next(&it, &e, &elen))
        if (elen == tlen && ascii_caseeq(e, token, tlen))
            return true;
    return false;
}

/* ------------------------------------------------------------------ */
/* Message framing (RFC 9112 6)                                        */

/* What the framing-relevant fields of a head say, gathered in one pass. */
struct framing_fields {
    bool has_length;
    uint64_t length;
    bool length_bad;        /* not 1*DIGIT, too large, or values differ */
    unsigned codings;       /* transfer codings listed, over all TE fields */
    bool coding_bad;        /* a coding other than chunked */
    bool conn_close;
    bool conn_keep_alive;
    bool expect_continue;
};

/* Content-Length = 1*DIGIT (RFC 9110 8.6): no sign, no spaces inside. */
static bool parse_decimal(const char *s, size_t n, uint64_t *out)
{
    if (n == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < '0' || ch > '9')
            return false;
        unsigned d = (unsigned)(ch - '0');
        if (v > (CONTENT_LENGTH_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* RFC 9110 8.6: a list of identical values ("5, 5", or the field
 * repeated) may be taken as that one value; anything else is an
 * unrecoverable error, as two hops could each pick a different one. */
static void scan_content_length(const struct hp_header *h, struct framing_fields *f)
{
    struct list_iter it = list_begin(h->value, h->value_len);
    const char *e;
    size_t elen;
    while (list_next(&it, &e, &elen)) {
        uint64_t v;
        if (!parse_decimal(e, elen, &v) || (f->has_length && v != f->length)) {
            f->length_bad = true;
            return;
        }
        f->has_length = true;
        f->length = v;
    }
}

/* Only "chunked", once, is understood (RFC 9112 6.1 and 7: we implement no
 * other coding, and chunked must be final and applied only once).  The
 * codings of repeated fields form one list (RFC 9110 5.3). */
static void scan_transfer_encoding(const struct hp_header *h, struct framing_fields *f)
{
    struct list_iter it = list_begin(h->value, h->value_len);
    const char *e;
    size_t elen;
    while (list_next(&it, &e, &elen)) {
        f->codings++;
        if (elen != CHUNKED_LEN || !ascii_caseeq(e, CHUNKED, CHUNKED_LEN))
            f->coding_bad = true;
    }
}

static void scan_framing_fields(const struct hp_header *h, size_t n, struct framing_fields *f)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < n; i++) {
        if (hp_name_eq(&h[i], "content-length")) {
            scan_content_length(&h[i], f);
        } else if (hp_name_eq(&h[i], "transfer-encoding")) {
            scan_transfer_encoding(&h[i], f);
        } else if (hp_name_eq(&h[i], "connection")) {
            f->conn_close |= hp_has_token(h[i].value, h[i].value_len, "close");
            f->conn_keep_alive |= hp_has_token(h[i].value, h[i].value_len, "keep-alive");
        } else if (hp_name_eq(&h[i], "expect")) {
            /* RFC 9110 10.1.1: the expectation is case-insensitive. */
            f->expect_continue |= hp_has_token(h[i].value, h[i].value_len, "100-continue");
        }
    }
}

static bool has_transfer_encoding(const struct framing_fields *f)
{
    return f->codings > 0;
}

static bool transfer_encoding_ok(const struct framing_fields *f)
{
    return f->codings == 1 && !f->coding_bad;
}

/* RFC 9112 9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with
 * "keep-alive" (RFC 9112 C.2.2). */
static bool persistent(int minor_version, const struct framing_fields *f)
{
    if (f->conn_close)
        return false;
    return minor_version >= 1 || f->conn_keep_alive;
}

int hp_request_framing(const struct hp_request *req, struct hp_framing *out)
{
    struct framing_fields f;
    scan_framing_fields(req->headers, req->num_headers, &f);
    memset(out, 0, sizeof *out);
    if (f.length_bad)
        return HP_ERROR;
    if (has_transfer_encoding(&f)) {
        /* RFC 9112 6.3 (4): a request whose final coding is not chunked
         * cannot be delimited: 400.  RFC 9112 6.1 lets a server reject
         * Content-Length alongside Transfer-Encoding, and this is the
         * classic smuggling request, so it is refused. */
        if (!transfer_encoding_ok(&f) || f.has_length)
            return HP_ERROR;
        out->body = HP_BODY_CHUNKED;
    } else if (f.has_length) {
        out->body = HP_BODY_LENGTH;
        out->length = f.length;
    } else {
        /* RFC 9112 6.3 (7): a request without either has no body. */
        out->body = HP_BODY_NONE;
    }
    out->keep_alive = persistent(req->minor_version, &f);
    /* RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message means the
     * framing is suspect; process it, then close the connection. */
    if (out->body == HP_BODY_CHUNKED && req->minor_version == 0)
        out->keep_alive = false;
    /* RFC 9110 10.1.1: a server MAY ignore 100-continue from HTTP/1.0. */
    out->expect_continue = req->minor_version >= 1 && f.expect_continue;
    return 0;
}

/* RFC 9112 6.3 (1): these responses never have content, whatever their
 * fields say (a HEAD response carries the Content-Length of the GET). */
static bool response_has_no_body(int status, bool head_request)
{
    return head_request || status < 200 || status == 204 || status == 304;
}

int hp_response_framing(const struct hp_response *res, bool head_request, struct hp_framing *out)
{
    struct framing_fields f;
    scan_framing_fields(res->headers, res->num_headers, &f);
    memset(out, 0, sizeof *out);
    out->keep_alive = persistent(res->minor_version, &f);
    if (response_has_no_body(res->status, head_request)) {
        out->body = HP_BODY_NONE;
        return 0;
    }
    if (f.length_bad)
        return HP_ERROR;
    if (has_transfer_encoding(&f)) {
        if (!transfer_encoding_ok(&f))
            return HP_ERROR;
        /* RFC 9112 6.3 (3): Transfer-Encoding overrides Content-Length.
         * Both together may be an attempt at response splitting, and in
         * HTTP/1.0 the framing is suspect (6.1): use the body, but do not
         * trust the connection with another message. */
        out->body = HP_BODY_CHUNKED;
        if (f.has_length || res->minor_version == 0)
            out->keep_alive = false;
    } else if (f.has_length) {
        out->body = HP_BODY_LENGTH;
        out->length = f.length;
    } else {
        /* RFC 9112 6.3 (8): the body runs until the server closes. */
        out->body = HP_BODY_UNTIL_CLOSE;
        out->keep_alive = false;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Chunked decoder (RFC 9112 7.1)                                      */

/* chunked-body = *chunk last-chunk trailer-section CRLF
 * chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 * One state per position in that grammar, so any split of the input
 * resumes exactly where the previous call stopped. */
enum chunk_state {
    CS_SIZE_FIRST = 0,  /* first hex digit of chunk-size (init is all zero) */
    CS_SIZE,            /* further hex digits */
    CS_SIZE_BWS,        /* whitespace after the size: only ';' may follow */
    CS_EXT,             /* chunk-ext, skipped up to the line end */
    CS_SIZE_LF,         /* CR seen at the end of the size line */
    CS_DATA,            /* chunk-data, `remaining` bytes to go */
    CS_DATA_CR,         /* line end after chunk-data */
    CS_DATA_LF,
    CS_TRAILER_LINE,    /* start of a trailer field line or the final CRLF */
    CS_TRAILER,         /* inside a trailer field line, skipped */
    CS_TRAILER_LF,
    CS_FINAL_LF,        /* CR of the final empty line seen */
    CS_DONE,
    CS_FAILED
};

enum step { STEP_MORE, STEP_DONE, STEP_ERROR };

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = ascii_lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

void hp_chunked_init(struct hp_chunked *d)
{
    memset(d, 0, sizeof *d);
    d->state = CS_SIZE_FIRST;
}

static enum step size_line_done(struct hp_chunked *d)
{
    /* last-chunk = 1*("0") [ chunk-ext ] CRLF, then the trailer section. */
    if (d->remaining == 0) {
        d->state = CS_TRAILER_LINE;
        d->trailer_bytes = 0;
    } else {
        d->state = CS_DATA;
    }
    return STEP_MORE;
}

static enum step next_chunk(struct hp_chunked *d)
{
    d->state = CS_SIZE_FIRST;
    d->line_len = 0;
    d->remaining = 0;
    return STEP_MORE;
}

static enum step size_digit(struct hp_chunked *d, int v)
{
    /* Leading zeros do not count: only significant digits are bounded. */
    if (d->remaining >= CHUNK_SIZE_DIGIT_LIMIT)
        return STEP_ERROR;
    d->remaining = d->remaining * 16 + (uint64_t)v;
    d->state = CS_SIZE;
    return STEP_MORE;
}

/* The size line: chunk-size [ chunk-ext ] CRLF.  Bounded as a whole so
 * that extensions cannot make us scan forever. */
static enum step size_line_byte(struct hp_chunked *d, unsigned char c)
{
    if (++d->line_len > HP_MAX_CHUNK_LINE)
        return STEP_ERROR;
    int v = hex_value(c);
    switch (d->state) {
    case CS_SIZE_FIRST:
        return v < 0 ? STEP_ERROR : size_digit(d, v);
    case CS_SIZE:
        if (v >= 0)
            return size_digit(d, v);
        if (c == ';')
            d->state = CS_EXT;
        else if (is_ows(c))       /* chunk-ext starts with BWS ";" */
            d->state = CS_SIZE_BWS;
        else if (c == CR)
            d->state = CS_SIZE_LF;
        else if (c == LF)
            return size_line_done(d);
        else
            return STEP_ERROR;
        return STEP_MORE;
    case CS_SIZE_BWS:
        if (c == ';')
            d->state = CS_EXT;
        else if (!is_ows(c))
            return STEP_ERROR;
        return STEP_MORE;
    case CS_EXT:
        /* Extensions carry nothing we use.  Their bytes must still be
         * ones a field could hold: a NUL or bare CR there is an attack on
         * whoever parses this after us. */
        if (c == CR)
            d->state = CS_SIZE_LF;
        else if (c == LF)
            return size_line_done(d);
        else if (!is_field_byte(c))
            return STEP_ERROR;
        return STEP_MORE;
    default: /* CS_SIZE_LF */
        return c == LF ? size_line_done(d) : STEP_ERROR;
    }
}

/* trailer-section = *( field-line CRLF ), then the final CRLF.  The
 * fields are discarded (RFC 9112 7.1.2 lets a recipient do so); the whole
 * section is bounded, which bounds every line in it. */
static enum step trailer_byte(struct hp_chunked *d, unsigned char c)
{
    if (++d->trailer_bytes > HP_MAX_TRAILER_BYTES)
        return STEP_ERROR;
    switch (d->state) {
    case CS_TRAILER_LINE:
        if (c == CR) {
            d->state = CS_FINAL_LF;
            return STEP_MORE;
        }
        if (c == LF)
            return STEP_DONE;
        if (!is_field_byte(c))
            return STEP_ERROR;
        d->state = CS_TRAILER;
        return STEP_MORE;
    case CS_TRAILER:
        if (c == CR)
            d->state = CS_TRAILER_LF;
        else if (c == LF)
            d->state = CS_TRAILER_LINE;
        else if (!is_field_byte(c))
            return STEP_ERROR;
        return STEP_MORE;
    case CS_TRAILER_LF:
        if (c != LF)
            return STEP_ERROR;
        d->state = CS_TRAILER_LINE;
        return STEP_MORE;
    default: /* CS_FINAL_LF */
        return c == LF ? STEP_DONE : STEP_ERROR;
    }
}

static enum step chunk_byte(struct hp_chunked *d, unsigned char c)
{
    switch (d->state) {
    case CS_SIZE_FIRST:
    case CS_SIZE:
    case CS_SIZE_BWS:
    case CS_EXT:
    case CS_SIZE_LF:
        return size_line_byte(d, c);
    case CS_DATA_CR:
        /* chunk-data must be followed by its CRLF (a bare LF accepted as
         * everywhere, RFC 9112 2.2): anything else means the size lied. */
        if (c == LF)
            return next_chunk(d);
        if (c != CR)
            return STEP_ERROR;
        d->state = CS_DATA_LF;
        return STEP_MORE;
    case CS_DATA_LF:
        return c == LF ? next_chunk(d) : STEP_ERROR;
    case CS_TRAILER_LINE:
    case CS_TRAILER:
    case CS_TRAILER_LF:
    case CS_FINAL_LF:
        return trailer_byte(d, c);
    default:
        return STEP_ERROR;
    }
}

enum hp_chunk_result hp_chunked_decode(struct hp_chunked *d, const char *in, size_t len,
                                       size_t *consumed, const char **data, size_t *data_len)
{
    *consumed = 0;
    *data = NULL;
    *data_len = 0;
    if (d->state == CS_DONE)
        return HP_CHUNK_DONE;
    if (d->state == CS_FAILED)
        return HP_CHUNK_ERROR;
    size_t i = 0;
    while (i < len) {
        if (d->state == CS_DATA) {
            /* Hand back the largest run this input holds: no copy, and
             * one result per chunk when the chunk arrived whole. */
            size_t n = len - i;
            if ((uint64_t)n > d->remaining)
                n = (size_t)d->remaining;
            *data = in + i;
            *data_len = n;
            d->remaining -= n;
            if (d->remaining == 0)
                d->state = CS_DATA_CR;
            *consumed = i + n;
            return HP_CHUNK_DATA;
        }
        enum step s = chunk_byte(d, (unsigned char)in[i]);
        if (s == STEP_ERROR) {
            d->state = CS_FAILED;
            *consumed = i;
            return HP_CHUNK_ERROR;
        }
        i++;
        if (s == STEP_DONE) {
            d->state = CS_DONE;
            *consumed = i;
            return HP_CHUNK_DONE;
        }
    }
    *consumed = i;
    return HP_CHUNK_NEED_MORE;
}
