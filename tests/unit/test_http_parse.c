/* Unit tests for http_parse: request/response heads, framing rules and
 * the chunked decoder.
 *
 * Every input is handed to the parser from a buffer whose last byte sits
 * right before a PROT_NONE page, so a read past buf[len-1] is a SIGSEGV
 * even without a sanitizer.  Every head is also fed at each strict prefix
 * length, and every chunked body at each split point. */
#include "http_parse.h"
#include "tap.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A string literal and its length, so that inputs may hold NUL bytes. */
#define S(lit) (lit), (sizeof(lit) - 1)

#define OK_HEAD 1                /* the whole input is one valid head */
#define MAX_EXPECTED_FIELDS 4
#define GUARD_SPAN (64 * 1024)   /* largest input placed before the guard */
#define BIG_VALUE_LEN 20000      /* a field value beyond HP_MAX_HEAD_BYTES */
#define MAX_BODY 40000           /* decoded bytes collected per chunked test */

/* ------------------------------------------------------------------ */
/* Guard page                                                          */

static char *guard_base;
static size_t guard_span;

static void guard_init(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    guard_span = (GUARD_SPAN + page - 1) / page * page;
    void *m = mmap(NULL, guard_span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        printf("Bail out! mmap failed\n");
        exit(1);
    }
    guard_base = m;
    if (mprotect(guard_base + guard_span, page, PROT_NONE) != 0) {
        printf("Bail out! mprotect failed\n");
        exit(1);
    }
}

/* Copy src[0, n) so that its last byte is the last readable byte. */
static const char *guarded(const char *src, size_t n)
{
    if (n > guard_span) {
        printf("Bail out! input of %zu bytes larger than the guard span\n", n);
        exit(1);
    }
    char *dst = guard_base + guard_span - n;
    if (n)
        memcpy(dst, src, n);
    return dst;
}

/* ------------------------------------------------------------------ */
/* Independent byte classes, straight from the RFC text                */

static bool ref_tchar(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool ref_target_byte(int c)
{
    return c >= 0x21 && c <= 0x7e;
}

static bool ref_value_byte(int c)
{
    return c == '\t' || (c >= 0x20 && c <= 0x7e) || c >= 0x80;
}

/* ------------------------------------------------------------------ */
/* Prefix property                                                     */

typedef int (*head_parser)(const char *buf, size_t len, void *out);

static int parse_req_any(const char *buf, size_t len, void *out)
{
    return hp_parse_request(buf, len, out);
}

static int parse_res_any(const char *buf, size_t len, void *out)
{
    return hp_parse_response(buf, len, out);
}

/* For every strict prefix: a valid head gives only HP_INCOMPLETE; an
 * invalid one gives HP_INCOMPLETE up to the point where the parser can
 * tell, and from there on exactly the result of the full input (so the
 * rejection is both early and consistent).  Never a positive result. */
static void check_prefixes(const char *name, head_parser parse, void *out, const char *in, size_t len, int want)
{
    int decided = 0;       /* a prefix already gave a final answer */
    size_t bad_at = SIZE_MAX;
    int bad_rc = 0;
    for (size_t k = 0; k < len && bad_at == SIZE_MAX; k++) {
        int r = parse(guarded(in, k), k, out);
        bool good;
        if (want > 0)
            good = r == HP_INCOMPLETE;
        else if (decided)
            good = r == want;
        else
            good = r == HP_INCOMPLETE || r == want;
        if (r == want)
            decided = 1;
        if (!good) {
            bad_at = k;
            bad_rc = r;
        }
    }
    if (!ok(bad_at == SIZE_MAX, "%s: every strict prefix is incomplete%s", name,
            want > 0 ? "" : " or already rejected"))
        printf("#   prefix of %zu bytes gave %d\n", bad_at, bad_rc);
}

/* ------------------------------------------------------------------ */
/* Request heads                                                       */

struct req_case {
    const char *name;
    const char *in;
    size_t len;
    int want;
    const char *method;
    const char *target;
    int minor;
    size_t num_headers;
    const char *fields[2 * MAX_EXPECTED_FIELDS];   /* name, value, ... */
};

#define REQ_OK(nm, lit, m, t, v, n, ...) \
    { .name = (nm), .in = (lit), .len = sizeof(lit) - 1, .want = OK_HEAD, .method = (m), \
      .target = (t), .minor = (v), .num_headers = (n), .fields = { __VA_ARGS__ } }
#define REQ_BAD(nm, lit, code) { .name = (nm), .in = (lit), .len = sizeof(lit) - 1, .want = (code) }

static const struct req_case req_cases[] = {
    REQ_OK("simple GET", "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "GET", "/", 1, 1,
           "Host", "example.com"),
    REQ_OK("POST with query and fields",
           "POST /v1/chat/completions?x=1&y=%20 HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
           "Content-Length: 2\r\n\r\n",
           "POST", "/v1/chat/completions?x=1&y=%20", 1, 3, "Host", "a", "Content-Type", "application/json",
           "Content-Length", "2"),
    REQ_OK("HTTP/1.0 without fields", "GET /index.html HTTP/1.0\r\n\r\n", "GET", "/index.html", 0, 0, NULL),
    REQ_OK("bare LF line ends", "GET / HTTP/1.1\nHost: a\n\n", "GET", "/", 1, 1, "Host", "a"),
    REQ_OK("mixed CRLF and LF", "GET / HTTP/1.1\r\nA: 1\nB: 2\r\n\n", "GET", "/", 1, 2, "A", "1", "B", "2"),
    REQ_OK("leading empty lines skipped", "\r\n\n\r\nGET / HTTP/1.1\r\n\r\n", "GET", "/", 1, 0, NULL),
    REQ_OK("eight leading empty lines", "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n", "GET", "/", 1, 0,
           NULL),
    REQ_OK("OWS trimmed around values", "GET / HTTP/1.1\r\nX-A:   spaced \t value \t \r\nX-B:\tv\r\nX-C:v\r\n\r\n",
           "GET", "/", 1, 3, "X-A", "spaced \t value", "X-B", "v", "X-C", "v"),
    REQ_OK("empty values", "GET / HTTP/1.1\r\nX-Empty:\r\nX-Blank:   \t \r\n\r\n", "GET", "/", 1, 2, "X-Empty", "",
           "X-Blank", ""),
    REQ_OK("obs-text in values", "GET / HTTP/1.1\r\nX-U: caf\xc3\xa9\r\nX-H: \x80\xff\r\n\r\n", "GET", "/", 1, 2,
           "X-U", "caf\xc3\xa9", "X-H", "\x80\xff"),
    REQ_OK("colon and tab inside a value", "GET / HTTP/1.1\r\nHost: a:80\r\nX: a\tb: c\r\n\r\n", "GET", "/", 1, 2,
           "Host", "a:80", "X", "a\tb: c"),
    REQ_OK("every tchar in method and name", "!#$%&'*+-.^_`|~09azAZ / HTTP/1.1\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n",
           "!#$%&'*+-.^_`|~09azAZ", "/", 1, 1, "!#$%&'*+-.^_`|~09azAZ", "v"),
    REQ_OK("lower-case method is a token", "get / HTTP/1.1\r\n\r\n", "get", "/", 1, 0, NULL),
    REQ_OK("asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "OPTIONS", "*", 1, 1, "Host", "a"),
    REQ_OK("authority-form", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "CONNECT",
           "example.com:443", 1, 1, "Host", "example.com:443"),
    REQ_OK("absolute-form", "GET http://example.com/a?b=c HTTP/1.1\r\n\r\n", "GET", "http://example.com/a?b=c", 1,
           0, NULL),
    REQ_OK("every visible byte in the target", "GET /~!\"#$&'()*+,;=:@[]{}|\\^`<>%41 HTTP/1.1\r\n\r\n", "GET",
           "/~!\"#$&'()*+,;=:@[]{}|\\^`<>%41", 1, 0, NULL),
    REQ_OK("duplicate fields kept in order", "GET / HTTP/1.1\r\nX: 1\r\nx: 2\r\nX: 3\r\n\r\n", "GET", "/", 1, 3,
           "X", "1", "x", "2", "X", "3"),

    REQ_BAD("space before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", HP_ERROR),
    REQ_BAD("tab before the colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", HP_ERROR),
    REQ_BAD("field without colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", HP_ERROR),
    REQ_BAD("field name alone", "GET / HTTP/1.1\r\nHost\r\n\r\n", HP_ERROR),
    REQ_BAD("empty field name", "GET / HTTP/1.1\r\n: v\r\n\r\n", HP_ERROR),
    REQ_BAD("separator in field name", "GET / HTTP/1.1\r\nX[1]: v\r\n\r\n", HP_ERROR),
    REQ_BAD("non-ASCII field name", "GET / HTTP/1.1\r\nX-\xc3\xa9: v\r\n\r\n", HP_ERROR),
    REQ_BAD("obs-fold with SP", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", HP_ERROR),
    REQ_BAD("obs-fold with HTAB", "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", HP_ERROR),
    REQ_BAD("whitespace before the first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", HP_ERROR),
    REQ_BAD("NUL in a value", "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", HP_ERROR),
    REQ_BAD("SOH in a value", "GET / HTTP/1.1\r\nX: a\x01" "b\r\n\r\n", HP_ERROR),
    REQ_BAD("ESC in a value", "GET / HTTP/1.1\r\nX: \x1b[0m\r\n\r\n", HP_ERROR),
    REQ_BAD("DEL in a value", "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", HP_ERROR),
    REQ_BAD("bare CR in a value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", HP_ERROR),
    REQ_BAD("bare CR ending a value", "GET / HTTP/1.1\r\nX: a\r\r\n\r\n", HP_ERROR),
    REQ_BAD("bare CR ending the request-line", "GET / HTTP/1.1\rHost: a\r\n\r\n", HP_ERROR),
    REQ_BAD("bare CR as the final line", "GET / HTTP/1.1\r\nX: a\r\n\rX", HP_ERROR),
    REQ_BAD("control byte in target, no line end yet", "GET /\x01", HP_ERROR),
    /* Inputs that end right after the offending byte: rejected at once. */
    REQ_BAD("bad method byte, early", "GE(", HP_ERROR),
    REQ_BAD("bad version, early", "GET / HTTP/1.3", HP_ERROR),
    REQ_BAD("space before the colon, early", "GET / HTTP/1.1\r\nHost ", HP_ERROR),
    REQ_BAD("NUL in a value, early", "GET / HTTP/1.1\r\nX: a\0", HP_ERROR),
    REQ_BAD("bare CR in a value, early", "GET / HTTP/1.1\r\nX: a\rb", HP_ERROR),
    REQ_BAD("obs-fold, early", "GET / HTTP/1.1\r\nX: a\r\n ", HP_ERROR),
    REQ_BAD("control byte in target", "GET /a\x01 HTTP/1.1\r\n\r\n", HP_ERROR),
    REQ_BAD("tab in target", "GET /a\tb HTTP/1.1\r\n\r\n", HP_ERROR),
    REQ_BAD("DEL in target", "GET /\x7f HTTP/1.1\r\n\r\n", HP_ERROR),
    REQ_BAD("high byte in target", "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", HP_ERROR),
    REQ_BAD("space inside target", "GET /a b HTTP/1.1\r\n\r\n", HP_ERROR),
    REQ_BAD("two spaces after method", "GET  / HTTP/1.1\r\n\r\n", HP_ERROR),
    REQ_BAD("space before version twice", "GET /  HTTP/1.1\r\n\r\n", HP_ERROR),
    REQ_BAD("trailing space after version", "GET / HTTP/1.1 \r\n\r\n", HP_ERROR),
    REQ_BAD("leading space", " GET / HTTP/1.1\r\n\r\n", HP_ERROR),
    REQ_BAD("empty method", " / HTTP/1.1\r\n\r\n", HP_ERROR),
    REQ_BAD("separator in method", "GE(T / HTTP/1.1\r\n\r\n", HP_ERROR),
    REQ_BAD("tab after method", "GET\t/ HTTP/1.1\r\n\r\n", HP_ERROR),
    REQ_BAD("HTTP/1.2", "GET / HTTP/1.2\r\n\r\n", HP_ERROR),
    REQ_BAD("HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", HP_ERROR),
    REQ_BAD("HTTP/0.9 version", "GET / HTTP/0.9\r\n\r\n", HP_ERROR),
    REQ_BAD("lower-case http", "GET / http/1.1\r\n\r\n", HP_ERROR),
    REQ_BAD("HTTP/1.10", "GET / HTTP/1.10\r\n\r\n", HP_ERROR),
    REQ_BAD("HTTP/1.", "GET / HTTP/1.\r\n\r\n", HP_ERROR),
    REQ_BAD("HTTP/11", "GET / HTTP/11\r\n\r\n", HP_ERROR),
    REQ_BAD("HTTP/0.9 request", "GET /\r\n\r\n", HP_ERROR),
    REQ_BAD("missing version", "GET / \r\n\r\n", HP_ERROR),
    REQ_BAD("nine leading empty lines", "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n", HP_ERROR),
    REQ_BAD("bare CR before the request-line", "\rGET / HTTP/1.1\r\n\r\n", HP_ERROR),
    REQ_BAD("TLS handshake on the plain port", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", HP_ERROR),
    REQ_BAD("NUL first", "\0GET / HTTP/1.1\r\n\r\n", HP_ERROR),
};

static void check_fields(const char *name, const struct hp_header *h, size_t n, const char *const *want)
{
    size_t bad = SIZE_MAX;
    for (size_t i = 0; i < n && i < MAX_EXPECTED_FIELDS && bad == SIZE_MAX; i++) {
        const char *wn = want[2 * i], *wv = want[2 * i + 1];
        if (!wn)
            break;
        if (h[i].name_len != strlen(wn) || memcmp(h[i].name, wn, h[i].name_len) != 0 ||
            h[i].value_len != strlen(wv) || memcmp(h[i].value, wv, h[i].value_len) != 0)
            bad = i;
    }
    if (!ok(bad == SIZE_MAX, "%s: field names and values", name))
        printf("#   field %zu: \"%.*s\" = \"%.*s\"\n", bad, (int)h[bad].name_len, h[bad].name,
               (int)h[bad].value_len, h[bad].value);
}

/* The head followed by more bytes: only the head is consumed. */
static void check_pipelined(const char *name, head_parser parse, void *out, const char *in, size_t len)
{
    static const char next[] = "GET /next HTTP/1.1\r\n\r\n";
    char *both = malloc(len + sizeof next);
    memcpy(both, in, len);
    memcpy(both + len, next, sizeof next - 1);
    is_int(parse(guarded(both, len + sizeof next - 1), len + sizeof next - 1, out), (int)len,
           "%s: followed by a pipelined request, only the head is consumed", name);
    free(both);
}

static void test_request_cases(void)
{
    static struct hp_request req;
    for (size_t i = 0; i < sizeof req_cases / sizeof req_cases[0]; i++) {
        const struct req_case *t = &req_cases[i];
        int r = hp_parse_request(guarded(t->in, t->len), t->len, &req);
        if (t->want != OK_HEAD) {
            is_int(r, t->want, "request %s: rejected", t->name);
        } else {
            is_int(r, (int)t->len, "request %s: whole head consumed", t->name);
            if (r == (int)t->len) {
                is_mem(req.method, req.method_len, t->method, "%s: method", t->name);
                is_mem(req.target, req.target_len, t->target, "%s: target", t->name);
                is_int(req.minor_version, t->minor, "%s: version", t->name);
                is_int(req.num_headers, t->num_headers, "%s: field count", t->name);
                check_fields(t->name, req.headers, req.num_headers, t->fields);
            }
            check_pipelined(t->name, parse_req_any, &req, t->in, t->len);
        }
        check_prefixes(t->name, parse_req_any, &req, t->in, t->len, t->want);
    }
}

/* ------------------------------------------------------------------ */
/* Response heads                                                      */

struct res_case {
    const char *name;
    const char *in;
    size_t len;
    int want;
    int minor;
    int status;
    const char *reason;
    size_t num_headers;
    const char *fields[2 * MAX_EXPECTED_FIELDS];
};

#define RES_OK(nm, lit, v, st, rs, n, ...) \
    { .name = (nm), .in = (lit), .len = sizeof(lit) - 1, .want = OK_HEAD, .minor = (v), .status = (st), \
      .reason = (rs), .num_headers = (n), .fields = { __VA_ARGS__ } }
#define RES_BAD(nm, lit, code) { .name = (nm), .in = (lit), .len = sizeof(lit) - 1, .want = (code) }

static const struct res_case res_cases[] = {
    RES_OK("200 with a length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 1, 200, "OK", 1,
           "Content-Length", "5"),
    RES_OK("HTTP/1.0 404", "HTTP/1.0 404 Not Found\r\n\r\n", 0, 404, "Not Found", 0, NULL),
    RES_OK("no reason, no SP", "HTTP/1.1 200\r\n\r\n", 1, 200, "", 0, NULL),
    RES_OK("no reason, with SP", "HTTP/1.1 200 \r\nA: b\r\n\r\n", 1, 200, "", 1, "A", "b"),
    RES_OK("no reason, bare LF", "HTTP/1.1 204\n\n", 1, 204, "", 0, NULL),
    RES_OK("reason with tab and trailing space", "HTTP/1.1 503 Service\tUnavailable now  \r\n\r\n", 1, 503,
           "Service\tUnavailable now  ", 0, NULL),
    RES_OK("obs-text reason", "HTTP/1.1 200 \xc3\x93K\r\n\r\n", 1, 200, "\xc3\x93K", 0, NULL),
    RES_OK("100 Continue", "HTTP/1.1 100 Continue\r\n\r\n", 1, 100, "Continue", 0, NULL),
    RES_OK("status 999", "HTTP/1.1 999 x\r\n\r\n", 1, 999, "x", 0, NULL),
    RES_OK("bare LF throughout", "HTTP/1.1 204 No Content\nA: b\n\n", 1, 204, "No Content", 1, "A", "b"),
    RES_OK("leading empty line", "\r\nHTTP/1.1 200 OK\r\nX:  y \r\n\r\n", 1, 200, "OK", 1, "X", "y"),

    RES_BAD("two-digit status", "HTTP/1.1 20 OK\r\n\r\n", HP_ERROR),
    RES_BAD("four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", HP_ERROR),
    RES_BAD("status below 100", "HTTP/1.1 099 X\r\n\r\n", HP_ERROR),
    RES_BAD("letters as status", "HTTP/1.1 abc OK\r\n\r\n", HP_ERROR),
    RES_BAD("two spaces before status", "HTTP/1.1  200 OK\r\n\r\n", HP_ERROR),
    RES_BAD("tab before status", "HTTP/1.1\t200 OK\r\n\r\n", HP_ERROR),
    RES_BAD("tab after status", "HTTP/1.1 200\tOK\r\n\r\n", HP_ERROR),
    RES_BAD("HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", HP_ERROR),
    RES_BAD("HTTP/2", "HTTP/2 200\r\n\r\n", HP_ERROR),
    RES_BAD("lower-case http", "http/1.1 200 OK\r\n\r\n", HP_ERROR),
    RES_BAD("control byte in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", HP_ERROR),
    RES_BAD("bare CR after reason", "HTTP/1.1 200 OK\rX: y\r\n\r\n", HP_ERROR),
    RES_BAD("space in field name", "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", HP_ERROR),
    RES_BAD("obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n  b\r\n\r\n", HP_ERROR),
    RES_BAD("NUL in a value", "HTTP/1.1 200 OK\r\nX: \0\r\n\r\n", HP_ERROR),
    RES_BAD("letter in status, early", "HTTP/1.1 2x", HP_ERROR),
    RES_BAD("control byte in reason, early", "HTTP/1.1 200 O\x01", HP_ERROR),
    RES_BAD("a request instead", "GET / HTTP/1.1\r\n\r\n", HP_ERROR),
};

static void test_response_cases(void)
{
    static struct hp_response res;
    for (size_t i = 0; i < sizeof res_cases / sizeof res_cases[0]; i++) {
        const struct res_case *t = &res_cases[i];
        int r = hp_parse_response(guarded(t->in, t->len), t->len, &res);
        if (t->want != OK_HEAD) {
            is_int(r, t->want, "response %s: rejected", t->name);
        } else {
            is_int(r, (int)t->len, "response %s: whole head consumed", t->name);
            if (r == (int)t->len) {
                is_int(res.minor_version, t->minor, "%s: version", t->name);
                is_int(res.status, t->status, "%s: status", t->name);
                is_mem(res.reason, res.reason_len, t->reason, "%s: reason", t->name);
                is_int(res.num_headers, t->num_headers, "%s: field count", t->name);
                check_fields(t->name, res.headers, res.num_headers, t->fields);
            }
            check_pipelined(t->name, parse_res_any, &res, t->in, t->len);
        }
        check_prefixes(t->name, parse_res_any, &res, t->in, t->len, t->want);
    }
}

/* ------------------------------------------------------------------ */
/* Byte classes, exhaustively                                          */

/* Build prefix + byte + suffix and parse it as a request or response. */
static int parse_with_byte(bool response, const char *prefix, int c, const char *suffix)
{
    static struct hp_request req;
    static struct hp_response res;
    char in[256];
    size_t pl = strlen(prefix), sl = strlen(suffix);
    memcpy(in, prefix, pl);
    in[pl] = (char)c;
    memcpy(in + pl + 1, suffix, sl);
    size_t n = pl + 1 + sl;
    const char *g = guarded(in, n);
    return response ? hp_parse_response(g, n, &res) : hp_parse_request(g, n, &req);
}

static void check_byte_class(const char *what, bool response, const char *prefix, const char *suffix,
                             bool (*allowed)(int c))
{
    int bad = -1, got = 0;
    size_t full = strlen(prefix) + 1 + strlen(suffix);
    for (int c = 0; c < 256 && bad < 0; c++) {
        int r = parse_with_byte(response, prefix, c, suffix);
        if (allowed(c) ? r != (int)full : r != HP_ERROR) {
            bad = c;
            got = r;
        }
    }
    if (!ok(bad < 0, "byte class: %s", what))
        printf("#   byte 0x%02x gave %d\n", bad, got);
}

static bool method_byte_ok(int c)
{
    return ref_tchar(c);
}

/* "X<c>Y: v": a colon ends the name early, leaving a valid "Y: v" value. */
static bool name_byte_ok(int c)
{
    return ref_tchar(c) || c == ':';
}

static void test_byte_classes(void)
{
    check_byte_class("method = 1*tchar", false, "M", " / HTTP/1.1\r\n\r\n", method_byte_ok);
    check_byte_class("field-name = 1*tchar", false, "GET / HTTP/1.1\r\nX", "Y: v\r\n\r\n", name_byte_ok);
    check_byte_class("target = visible ASCII", false, "GET /", " HTTP/1.1\r\n\r\n", ref_target_byte);
    check_byte_class("field-value bytes", false, "GET / HTTP/1.1\r\nX: a", "b\r\n\r\n", ref_value_byte);
    check_byte_class("reason-phrase bytes", true, "HTTP/1.1 200 a", "b\r\n\r\n", ref_value_byte);
}

/* ------------------------------------------------------------------ */
/* Sizes: field count, long heads                                      */

/* A head with `n` fields "X-<i>: v"; returns its length. */
static size_t build_fields_head(char *out, size_t cap, const char *start_line, int n)
{
    size_t len = (size_t)snprintf(out, cap, "%s\r\n", start_line);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, cap - len, "X-%d: v\r\n", i);
    len += (size_t)snprintf(out + len, cap - len, "\r\n");
    return len;
}

static void test_field_count(void)
{
    static char in[4096];
    static struct hp_request req;
    static struct hp_response res;

    size_t len = build_fields_head(in, sizeof in, "GET / HTTP/1.1", HP_MAX_HEADERS);
    is_int(hp_parse_request(guarded(in, len), len, &req), (int)len, "request with HP_MAX_HEADERS fields parses");
    is_int(req.num_headers, HP_MAX_HEADERS, "... and has them all");
    is_mem(req.headers[HP_MAX_HEADERS - 1].name, req.headers[HP_MAX_HEADERS - 1].name_len, "X-99",
           "... the last one included");

    len = build_fields_head(in, sizeof in, "GET / HTTP/1.1", HP_MAX_HEADERS + 1);
    is_int(hp_parse_request(guarded(in, len), len, &req), HP_TOO_MANY_HEADERS, "one field more: too many");
    check_prefixes("too many fields", parse_req_any, &req, in, len, HP_TOO_MANY_HEADERS);

    len = build_fields_head(in, sizeof in, "HTTP/1.1 200 OK", HP_MAX_HEADERS);
    is_int(hp_parse_response(guarded(in, len), len, &res), (int)len, "response with HP_MAX_HEADERS fields parses");
    len = build_fields_head(in, sizeof in, "HTTP/1.1 200 OK", HP_MAX_HEADERS + 1);
    is_int(hp_parse_response(guarded(in, len), len, &res), HP_TOO_MANY_HEADERS, "response: one more, too many");
}

static void test_long_head(void)
{
    static struct hp_request req;
    static const char start[] = "GET / HTTP/1.1\r\nX-Big: ";
    size_t len = sizeof start - 1 + BIG_VALUE_LEN + 4;
    char *in = malloc(len);
    memcpy(in, start, sizeof start - 1);
    memset(in + sizeof start - 1, 'a', BIG_VALUE_LEN);
    memcpy(in + sizeof start - 1 + BIG_VALUE_LEN, "\r\n\r\n", 4);

    ok(len > HP_MAX_HEAD_BYTES, "the long head is over HP_MAX_HEAD_BYTES (%zu bytes)", len);
    is_int(hp_parse_request(guarded(in, len), len, &req), (int)len, "a head past the limit still parses");
    is_int(req.headers[0].value_len, BIG_VALUE_LEN, "... with its whole value");
    int bad = 0;
    for (size_t k = 0; k < len; k += 997)
        bad += hp_parse_request(guarded(in, k), k, &req) != HP_INCOMPLETE;
    bad += hp_parse_request(guarded(in, len - 1), len - 1, &req) != HP_INCOMPLETE;
    bad += hp_parse_request(guarded(in, HP_MAX_HEAD_BYTES + 1), HP_MAX_HEAD_BYTES + 1, &req) != HP_INCOMPLETE;
    is_int(bad, 0, "its prefixes, also past HP_MAX_HEAD_BYTES, are incomplete");
    free(in);
}

/* ------------------------------------------------------------------ */
/* Lookup helpers                                                      */

static void test_lookup(void)
{
    static struct hp_request req;
    static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nCONTENT-type: text/plain\r\nX-Long-Name: 1\r\n"
                             "x-long-name: 2\r\n\r\n";
    ok(hp_parse_request(guarded(in, sizeof in - 1), sizeof in - 1, &req) > 0, "lookup fixture parses");
    const struct hp_header *h = hp_find(req.headers, req.num_headers, "content-type");
    ok(h && h == &req.headers[1], "hp_find is case-insensitive");
    h = hp_find(req.headers, req.num_headers, "x-long-name");
    ok(h && h->value_len == 1 && h->value[0] == '1', "hp_find returns the first match");
    ok(!hp_find(req.headers, req.num_headers, "content"), "hp_find does not match a prefix");
    ok(!hp_find(req.headers, req.num_headers, "content-type-x"), "hp_find does not match a longer name");
    ok(!hp_find(req.headers, 0, "host"), "hp_find in no fields");
    ok(hp_name_eq(&req.headers[0], "HOST"), "hp_name_eq ignores case");
    ok(!hp_name_eq(&req.headers[0], "hos"), "hp_name_eq compares the whole name");
    ok(!hp_name_eq(&req.headers[0], "hosts"), "hp_name_eq rejects a longer name");
}

struct token_case {
    const char *value;
    const char *token;
    bool want;
};

static const struct token_case token_cases[] = {
    { "keep-alive, Upgrade", "upgrade", true },
    { "keep-alive,close", "close", true },
    { "keep-alive,close", "keep-alive", true },
    { "close", "close", true },
    { "CLOSE", "close", true },
    { "  close  ", "close", true },
    { "\tclose\t,x", "close", true },
    { "a, , close", "close", true },
    { "a,b,c", "b", true },
    { "closed", "close", false },
    { "xclose", "close", false },
    { "close-x", "close", false },
    { "clos", "close", false },
    { "keep-alive", "keep", false },
    { "cl ose", "close", false },
    { "", "close", false },
    { ",,,", "close", false },
};

static void test_has_token(void)
{
    for (size_t i = 0; i < sizeof token_cases / sizeof token_cases[0]; i++) {
        const struct token_case *t = &token_cases[i];
        size_t n = strlen(t->value);
        ok(hp_has_token(guarded(t->value, n), n, t->token) == t->want, "hp_has_token(\"%s\", \"%s\") is %s",
           t->value, t->token, t->want ? "true" : "false");
    }
    /* The length is the end of the value, not a NUL. */
    const char *v = guarded("close,keep-alive", 16);
    ok(hp_has_token(v, 5, "close"), "hp_has_token within the given length");
    ok(!hp_has_token(v, 5, "keep-alive"), "hp_has_token does not look past the length");
    ok(!hp_has_token(v, 4, "close"), "hp_has_token with a cut element");
}

/* ------------------------------------------------------------------ */
/* Framing                                                             */

struct framing_case {
    const char *name;
    const char *head;
    bool head_request;      /* responses only */
    int want;
    enum hp_body body;
    uint64_t length;
    bool keep_alive;
    bool expect;
};

#define FR(nm, h, w, b, l, ka, ex) \
    { .name = (nm), .head = (h), .want = (w), .body = (b), .length = (l), .keep_alive = (ka), .expect = (ex) }
#define FR_BAD(nm, h) { .name = (nm), .head = (h), .want = HP_ERROR }
#define RQ(fields) "POST / HTTP/1.1\r\n" fields "\r\n"
#define RQ10(fields) "POST / HTTP/1.0\r\n" fields "\r\n"

static const struct framing_case request_framing_cases[] = {
    FR("no body fields", RQ(""), 0, HP_BODY_NONE, 0, true, false),
    FR("Connection: close", RQ("Connection: close\r\n"), 0, HP_BODY_NONE, 0, false, false),
    FR("Connection: Upgrade, Close", RQ("Connection: Upgrade, Close\r\n"), 0, HP_BODY_NONE, 0, false, false),
    FR("close in a second Connection field", RQ("Connection: keep-alive\r\nConnection: close\r\n"), 0,
       HP_BODY_NONE, 0, false, false),
    FR("Connection: closed is not close", RQ("Connection: closed\r\n"), 0, HP_BODY_NONE, 0, true, false),
    FR("HTTP/1.0 closes by default", RQ10(""), 0, HP_BODY_NONE, 0, false, false),
    FR("HTTP/1.0 keep-alive", RQ10("Connection: keep-alive\r\n"), 0, HP_BODY_NONE, 0, true, false),
    FR("HTTP/1.0 Keep-Alive any case", RQ10("Connection: Keep-Alive\r\n"), 0, HP_BODY_NONE, 0, true, false),
    FR("HTTP/1.0 keep-alive and close", RQ10("Connection: keep-alive, close\r\n"), 0, HP_BODY_NONE, 0, false,
       false),
    FR("Content-Length", RQ("Content-Length: 5\r\n"), 0, HP_BODY_LENGTH, 5, true, false),
    FR("Content-Length 0", RQ("Content-Length: 0\r\n"), 0, HP_BODY_LENGTH, 0, true, false),
    FR("Content-Length leading zeros", RQ("Content-Length: 007\r\n"), 0, HP_BODY_LENGTH, 7, true, false),
    FR("Content-Length list of equal values", RQ("Content-Length: 5, 5\r\n"), 0, HP_BODY_LENGTH, 5, true, false),
    FR("Content-Length repeated equal", RQ("Content-Length: 5\r\ncontent-length: 5\r\n"), 0, HP_BODY_LENGTH, 5,
       true, false),
    FR("Content-Length 2^63-1", RQ("Content-Length: 9223372036854775807\r\n"), 0, HP_BODY_LENGTH,
       UINT64_C(9223372036854775807), true, false),
    FR_BAD("Content-Length list of differing values", RQ("Content-Length: 5, 6\r\n")),
    FR_BAD("Content-Length repeated differing", RQ("Content-Length: 5\r\nContent-Length: 6\r\n")),
    FR_BAD("Content-Length empty", RQ("Content-Length:\r\n")),
    FR_BAD("Content-Length -1", RQ("Content-Length: -1\r\n")),
    FR_BAD("Content-Length +5", RQ("Content-Length: +5\r\n")),
    FR_BAD("Content-Length 5 5", RQ("Content-Length: 5 5\r\n")),
    FR_BAD("Content-Length 0x5", RQ("Content-Length: 0x5\r\n")),
    FR_BAD("Content-Length 5.0", RQ("Content-Length: 5.0\r\n")),
    FR_BAD("Content-Length 1e3", RQ("Content-Length: 1e3\r\n")),
    FR_BAD("Content-Length trailing comma", RQ("Content-Length: 5,\r\n")),
    FR_BAD("Content-Length 2^63", RQ("Content-Length: 9223372036854775808\r\n")),
    FR_BAD("Content-Length 2^64", RQ("Content-Length: 18446744073709551616\r\n")),
    FR_BAD("Content-Length huge", RQ("Content-Length: 99999999999999999999999999\r\n")),
    FR("chunked", RQ("Transfer-Encoding: chunked\r\n"), 0, HP_BODY_CHUNKED, 0, true, false),
    FR("CHUNKED any case", RQ("Transfer-Encoding: CHUNKED\r\n"), 0, HP_BODY_CHUNKED, 0, true, false),
    FR_BAD("chunked and Content-Length", RQ("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")),
    FR_BAD("Content-Length and chunked", RQ("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")),
    FR_BAD("chunked and Content-Length 0", RQ("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n")),
    FR_BAD("gzip, chunked", RQ("Transfer-Encoding: gzip, chunked\r\n")),
    FR_BAD("chunked, gzip", RQ("Transfer-Encoding: chunked, gzip\r\n")),
    FR_BAD("identity", RQ("Transfer-Encoding: identity\r\n")),
    FR_BAD("chunked, chunked", RQ("Transfer-Encoding: chunked, chunked\r\n")),
    FR_BAD("chunked in two fields", RQ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")),
    FR_BAD("gzip then chunked in two fields", RQ("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n")),
    FR_BAD("empty Transfer-Encoding", RQ("Transfer-Encoding:\r\n")),
    FR_BAD("chunked with a parameter", RQ("Transfer-Encoding: chunked;q=1\r\n")),
    FR_BAD("xchunked", RQ("Transfer-Encoding: xchunked\r\n")),
    FR_BAD("chunked with a trailing comma", RQ("Transfer-Encoding: chunked,\r\n")),
    FR("HTTP/1.0 chunked: served, then closed", RQ10("Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n"),
       0, HP_BODY_CHUNKED, 0, false, false),
    FR("Expect: 100-continue", RQ("Expect: 100-continue\r\nContent-Length: 3\r\n"), 0, HP_BODY_LENGTH, 3, true,
       true),
    FR("Expect: 100-Continue any case", RQ("Expect: 100-Continue\r\nTransfer-Encoding: chunked\r\n"), 0,
       HP_BODY_CHUNKED, 0, true, true),
    FR("Expect ignored on HTTP/1.0", RQ10("Expect: 100-continue\r\nContent-Length: 3\r\n"), 0, HP_BODY_LENGTH, 3,
       false, false),
    FR("other expectation", RQ("Expect: 200-ok\r\n"), 0, HP_BODY_NONE, 0, true, false),
};

#define RS(status_line, fields) status_line "\r\n" fields "\r\n"
#define FR_HEAD(nm, h, w, b, l, ka) \
    { .name = (nm), .head = (h), .head_request = true, .want = (w), .body = (b), .length = (l), .keep_alive = (ka) }

static const struct framing_case response_framing_cases[] = {
    FR("200 with length", RS("HTTP/1.1 200 OK", "Content-Length: 5\r\n"), 0, HP_BODY_LENGTH, 5, true, false),
    FR("200 chunked", RS("HTTP/1.1 200 OK", "Transfer-Encoding: Chunked\r\n"), 0, HP_BODY_CHUNKED, 0, true, false),
    FR("200 until close", RS("HTTP/1.1 200 OK", ""), 0, HP_BODY_UNTIL_CLOSE, 0, false, false),
    FR("200 until close despite keep-alive", RS("HTTP/1.1 200 OK", "Connection: keep-alive\r\n"), 0,
       HP_BODY_UNTIL_CLOSE, 0, false, false),
    FR("HTTP/1.0 with length closes", RS("HTTP/1.0 200 OK", "Content-Length: 5\r\n"), 0, HP_BODY_LENGTH, 5, false,
       false),
    FR("HTTP/1.0 keep-alive with length", RS("HTTP/1.0 200 OK", "Content-Length: 5\r\nConnection: keep-alive\r\n"),
       0, HP_BODY_LENGTH, 5, true, false),
    FR("Connection: close with length", RS("HTTP/1.1 200 OK", "Content-Length: 5\r\nConnection: close\r\n"), 0,
       HP_BODY_LENGTH, 5, false, false),
    FR("204 has no body", RS("HTTP/1.1 204 No Content", ""), 0, HP_BODY_NONE, 0, true, false),
    FR("204 ignores its Content-Length", RS("HTTP/1.1 204 No Content", "Content-Length: 10\r\n"), 0, HP_BODY_NONE,
       0, true, false),
    FR("204 ignores even an invalid Content-Length", RS("HTTP/1.1 204 No Content", "Content-Length: 5, 6\r\n"), 0,
       HP_BODY_NONE, 0, true, false),
    FR("304 ignores its Content-Length", RS("HTTP/1.1 304 Not Modified", "Content-Length: 100\r\n"), 0,
       HP_BODY_NONE, 0, true, false),
    FR("100 has no body", RS("HTTP/1.1 100 Continue", ""), 0, HP_BODY_NONE, 0, true, false),
    FR("101 has no body", RS("HTTP/1.1 101 Switching Protocols", "Connection: upgrade\r\n"), 0, HP_BODY_NONE, 0,
       true, false),
    FR("199 has no body", RS("HTTP/1.1 199 X", "Transfer-Encoding: chunked\r\n"), 0, HP_BODY_NONE, 0, true,
       false),
    FR_HEAD("HEAD response with a length", RS("HTTP/1.1 200 OK", "Content-Length: 1234\r\n"), 0, HP_BODY_NONE, 0,
            true),
    FR_HEAD("HEAD response chunked", RS("HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\n"), 0, HP_BODY_NONE, 0,
            true),
    FR_HEAD("HEAD response with an odd coding", RS("HTTP/1.1 200 OK", "Transfer-Encoding: gzip\r\n"), 0,
            HP_BODY_NONE, 0, true),
    FR_HEAD("HEAD response without length", RS("HTTP/1.1 200 OK", ""), 0, HP_BODY_NONE, 0, true),
    FR("chunked wins over length, then close", RS("HTTP/1.1 200 OK", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
       0, HP_BODY_CHUNKED, 0, false, false),
    FR("HTTP/1.0 chunked closes", RS("HTTP/1.0 200 OK", "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n"),
       0, HP_BODY_CHUNKED, 0, false, false),
    FR("equal Content-Length list", RS("HTTP/1.1 200 OK", "Content-Length: 7,7\r\n"), 0, HP_BODY_LENGTH, 7, true,
       false),
    FR_BAD("differing Content-Length", RS("HTTP/1.1 200 OK", "Content-Length: 5, 6\r\n")),
    FR_BAD("negative Content-Length", RS("HTTP/1.1 200 OK", "Content-Length: -1\r\n")),
    FR_BAD("Content-Length 2^64", RS("HTTP/1.1 200 OK", "Content-Length: 18446744073709551616\r\n")),
    FR_BAD("gzip coding", RS("HTTP/1.1 200 OK", "Transfer-Encoding: gzip\r\n")),
    FR_BAD("gzip, chunked", RS("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked\r\n")),
};

static const char *body_name(enum hp_body b)
{
    switch (b) {
    case HP_BODY_NONE: return "none";
    case HP_BODY_LENGTH: return "length";
    case HP_BODY_CHUNKED: return "chunked";
    default: return "until-close";
    }
}

static void check_framing(const char *kind, const struct framing_case *t, int r, const struct hp_framing *f)
{
    if (t->want != 0) {
        is_int(r, t->want, "%s framing %s: rejected", kind, t->name);
        return;
    }
    bool same = r == 0 && f->body == t->body && f->keep_alive == t->keep_alive &&
                f->expect_continue == t->expect && (t->body != HP_BODY_LENGTH || f->length == t->length);
    if (!ok(same, "%s framing %s: %s, keep_alive %d, expect %d", kind, t->name, body_name(t->body), t->keep_alive,
            t->expect))
        printf("#   got rc %d, %s, length %llu, keep_alive %d, expect %d\n", r, body_name(f->body),
               (unsigned long long)f->length, f->keep_alive, f->expect_continue);
}

static void test_framing(void)
{
    static struct hp_request req;
    static struct hp_response res;
    for (size_t i = 0; i < sizeof request_framing_cases / sizeof request_framing_cases[0]; i++) {
        const struct framing_case *t = &request_framing_cases[i];
        size_t n = strlen(t->head);
        struct hp_framing f = { HP_BODY_UNTIL_CLOSE, 12345, true, true };
        if (!ok(hp_parse_request(guarded(t->head, n), n, &req) == (int)n, "request framing %s: head parses",
                t->name))
            continue;
        check_framing("request", t, hp_request_framing(&req, &f), &f);
    }
    for (size_t i = 0; i < sizeof response_framing_cases / sizeof response_framing_cases[0]; i++) {
        const struct framing_case *t = &response_framing_cases[i];
        size_t n = strlen(t->head);
        struct hp_framing f = { HP_BODY_UNTIL_CLOSE, 12345, true, true };
        if (!ok(hp_parse_response(guarded(t->head, n), n, &res) == (int)n, "response framing %s: head parses",
                t->name))
            continue;
        check_framing("response", t, hp_response_framing(&res, t->head_request, &f), &f);
    }
}

/* ------------------------------------------------------------------ */
/* Chunked decoder                                                     */

struct decoded {
    struct hp_chunked d;
    char data[MAX_BODY];
    size_t data_len;
    size_t consumed;            /* input bytes used over all calls */
    int data_results;
    enum hp_chunk_result last;
    const char *contract;       /* first broken API promise, if any */
};

static void decoded_init(struct decoded *o)
{
    memset(o, 0, sizeof *o);
    hp_chunked_init(&o->d);
    o->last = HP_CHUNK_NEED_MORE;
}

/* Feed one piece of input, the way server.c and client.c do: call until
 * the decoder needs more, finishes or fails.  Checks the promises of the
 * API on every call. */
static void feed(struct decoded *o, const char *piece, size_t n)
{
    const char *p = guarded(piece, n);
    size_t off = 0;
    while (o->last == HP_CHUNK_NEED_MORE || o->last == HP_CHUNK_DATA) {
        size_t used = SIZE_MAX, dlen = SIZE_MAX;
        const char *data = NULL;
        enum hp_chunk_result r = hp_chunked_decode(&o->d, p + off, n - off, &used, &data, &dlen);
        o->last = r;
        if (used > n - off) {
            o->contract = o->contract ? o->contract : "consumed more than given";
            o->last = HP_CHUNK_ERROR;
            return;
        }
        if (r == HP_CHUNK_DATA) {
            /* One run of this input, ending where the consumed bytes end
             * (callers copy it, then drop `used` bytes). */
            if (dlen == 0 || dlen > used || data != p + off + used - dlen)
                o->contract = o->contract ? o->contract : "DATA is not a non-empty run ending at consumed";
            else if (o->data_len + dlen > sizeof o->data)
                o->contract = o->contract ? o->contract : "more data than expected";
            else {
                memcpy(o->data + o->data_len, data, dlen);
                o->data_len += dlen;
            }
            o->data_results++;
        } else if (r == HP_CHUNK_NEED_MORE && used != n - off) {
            o->contract = o->contract ? o->contract : "NEED_MORE without consuming everything";
        }
        off += used;
        if (r == HP_CHUNK_NEED_MORE)
            break;
    }
    o->consumed += off;
}

enum split { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_TWO };

static void decode_split(struct decoded *o, const char *in, size_t n, enum split how, size_t at)
{
    decoded_init(o);
    switch (how) {
    case SPLIT_WHOLE:
        feed(o, in, n);
        break;
    case SPLIT_BYTES:
        for (size_t i = 0; i < n && (o->last == HP_CHUNK_NEED_MORE); i++)
            feed(o, in + i, 1);
        break;
    case SPLIT_TWO:
        feed(o, in, at);
        if (o->last == HP_CHUNK_NEED_MORE)
            feed(o, in + at, n - at);
        break;
    }
}

struct chunk_case {
    const char *name;
    const char *in;
    size_t len;
    const char *data;
    size_t data_len;
    size_t tail;        /* pipelined bytes after the message */
    int chunks;         /* DATA results when fed whole */
};

#define CH(nm, lit, d, tl, ch) \
    { .name = (nm), .in = (lit), .len = sizeof(lit) - 1, .data = (d), .data_len = sizeof(d) - 1, .tail = (tl), \
      .chunks = (ch) }

static const struct chunk_case chunk_cases[] = {
    CH("three chunks", "4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n", "Wikipedia in\r\n\r\nchunks.",
       0, 3),
    CH("pipelined request after the body", "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n", "abc", 18, 1),
    CH("extensions and BWS", "5;name=value;flag\r\nhello\r\n6 ; q=\"a;b\"\r\n world\r\n1\t;x\r\n!\r\n0;last\r\n\r\n",
       "hello world!", 0, 3),
    CH("hex digits in both cases", "a\r\n0123456789\r\nA\r\nabcdefghij\r\n1f\r\n0123456789012345678901234567890\r\n"
       "0\r\n\r\n", "0123456789abcdefghij0123456789012345678901234567890", 0, 3),
    CH("leading zeros do not count as digits", "000000000000000000000005\r\nhello\r\n0\r\n\r\n", "hello", 0, 1),
    CH("trailer fields skipped", "3\r\nabc\r\n0\r\nX-Checksum: 123\r\nX-Other:\tv\r\n\r\nNEXT", "abc", 4, 1),
    CH("bare LF everywhere", "3\nabc\n0\nT: v\n\nNEXT", "abc", 4, 1),
    CH("empty body", "0\r\n\r\n", "", 0, 0),
    CH("last chunk with several zeros", "000\r\n\r\nX", "", 1, 0),
    CH("chunk data that looks like framing", "6\r\n0\r\n\r\nx\r\n0\r\n\r\n", "0\r\n\r\nx", 0, 1),
    CH("binary chunk data", "3\r\n\0\xff\r\r\n0\r\n\r\n", "\0\xff\r", 0, 1),
};

struct chunk_bad {
    const char *name;
    const char *in;
    size_t len;
};

#define CHB(nm, lit) { .name = (nm), .in = (lit), .len = sizeof(lit) - 1 }

static const struct chunk_bad chunk_bad_cases[] = {
    CHB("bad hex digit", "g\r\n"),
    CHB("empty size line", "\r\nhello\r\n0\r\n\r\n"),
    CHB("extension without size", ";ext\r\n"),
    CHB("space before the size", " 5\r\nhello\r\n0\r\n\r\n"),
    CHB("space after the size without extension", "5 \r\nhello\r\n0\r\n\r\n"),
    CHB("negative size", "-5\r\n"),
    CHB("0x prefix", "0x5\r\n"),
    CHB("missing CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n"),
    CHB("CR then junk after data", "5\r\nhello\rX\n0\r\n\r\n"),
    CHB("CR CR after data", "5\r\nhello\r\r\n0\r\n\r\n"),
    CHB("junk then LF after data", "5\r\nhelloX\n0\r\n\r\n"),
    CHB("data longer than the size", "3\r\nhello\r\n0\r\n\r\n"),
    CHB("bare CR in the size line", "5\rX"),
    CHB("bare CR in an extension", "5;a\rb\r\nhello\r\n0\r\n\r\n"),
    CHB("NUL in an extension", "5;\0\r\nhello\r\n0\r\n\r\n"),
    CHB("control byte in a trailer", "5\r\nhello\r\n0\r\nX: \x01\r\n\r\n"),
    CHB("bare CR in a trailer", "0\r\nX: a\rb\r\n\r\n"),
    CHB("bare CR as the final line", "0\r\n\rX"),
    CHB("16 significant digits", "1000000000000000\r\n"),
    CHB("17 digits, no line end yet", "10000000000000000"),
    CHB("2^62", "4000000000000000\r\n"),
    CHB("2^64", "10000000000000000\r\n"),
};

static void check_chunk_case(const struct chunk_case *t)
{
    static struct decoded o;
    size_t msg = t->len - t->tail;

    decode_split(&o, t->in, t->len, SPLIT_WHOLE, 0);
    bool good = o.last == HP_CHUNK_DONE && !o.contract && o.consumed == msg && o.data_len == t->data_len &&
                memcmp(o.data, t->data, t->data_len) == 0;
    if (!ok(good, "chunked %s: whole input decodes", t->name))
        printf("#   result %d, consumed %zu of %zu, %zu data bytes, %s\n", o.last, o.consumed, msg, o.data_len,
               o.contract ? o.contract : "");
    is_int(o.data_results, t->chunks, "chunked %s: one DATA result per chunk", t->name);

    /* After DONE, the decoder stays done and takes nothing more. */
    size_t used = 1, dlen = 1;
    const char *data;
    int again = hp_chunked_decode(&o.d, t->in + msg, t->tail, &used, &data, &dlen);
    ok(again == HP_CHUNK_DONE && used == 0, "chunked %s: done stays done", t->name);

    decode_split(&o, t->in, t->len, SPLIT_BYTES, 0);
    good = o.last == HP_CHUNK_DONE && !o.contract && o.consumed == msg && o.data_len == t->data_len &&
           memcmp(o.data, t->data, t->data_len) == 0;
    ok(good, "chunked %s: byte by byte", t->name);

    size_t bad_at = SIZE_MAX;
    for (size_t at = 0; at <= t->len && bad_at == SIZE_MAX; at++) {
        decode_split(&o, t->in, t->len, SPLIT_TWO, at);
        if (!(o.last == HP_CHUNK_DONE && !o.contract && o.consumed == msg && o.data_len == t->data_len &&
              memcmp(o.data, t->data, t->data_len) == 0))
            bad_at = at;
    }
    if (!ok(bad_at == SIZE_MAX, "chunked %s: split in two at every offset", t->name))
        printf("#   split at %zu\n", bad_at);
}

static void check_chunk_bad(const char *name, const char *in, size_t len, bool every_split)
{
    static struct decoded o;
    decode_split(&o, in, len, SPLIT_WHOLE, 0);
    is_int(o.last, HP_CHUNK_ERROR, "chunked %s: error", name);
    ok(!o.contract, "chunked %s: API promises kept", name);

    size_t used = 1, dlen = 1;
    const char *data;
    int again = hp_chunked_decode(&o.d, "0\r\n\r\n", 5, &used, &data, &dlen);
    ok(again == HP_CHUNK_ERROR && used == 0, "chunked %s: the error sticks", name);

    decode_split(&o, in, len, SPLIT_BYTES, 0);
    is_int(o.last, HP_CHUNK_ERROR, "chunked %s: error byte by byte", name);

    if (!every_split)
        return;
    size_t bad_at = SIZE_MAX;
    for (size_t at = 0; at <= len && bad_at == SIZE_MAX; at++) {
        decode_split(&o, in, len, SPLIT_TWO, at);
        if (o.last != HP_CHUNK_ERROR)
            bad_at = at;
    }
    if (!ok(bad_at == SIZE_MAX, "chunked %s: error at every split", name))
        printf("#   split at %zu\n", bad_at);
}

/* "<size>;<padding>\r\n" of exactly `line` bytes, then "x\r\n0\r\n\r\n". */
static size_t build_long_size_line(char *out, size_t line)
{
    memcpy(out, "1;", 2);
    memset(out + 2, 'e', line - 4);
    memcpy(out + line - 2, "\r\n", 2);
    memcpy(out + line, "x\r\n0\r\n\r\n", 8);
    return line + 8;
}

/* "0\r\n", then one trailer field, then the final CRLF: the trailer
 * section (field line and final CRLF) is exactly `bytes` long. */
static size_t build_trailer(char *out, size_t bytes)
{
    memcpy(out, "0\r\nX: ", 6);
    memset(out + 6, 't', bytes - 3 - 4);
    memcpy(out + 3 + bytes - 4, "\r\n\r\n", 4);
    return 3 + bytes;
}

static void test_chunked_limits(void)
{
    static struct decoded o;
    static char in[HP_MAX_TRAILER_BYTES + 64];
    size_t used, dlen;
    const char *data;

    /* 4 GiB in one chunk is fine for the decoder: the caller's body limit
     * is what refuses it. */
    struct hp_chunked d;
    hp_chunked_init(&d);
    const char *g = guarded("100000000\r\nabc", 14);
    int r = hp_chunked_decode(&d, g, 14, &used, &data, &dlen);
    ok(r == HP_CHUNK_DATA && used == 14 && dlen == 3 && data == g + 11, "4 GiB chunk: data handed out");
    ok(d.remaining == (UINT64_C(1) << 32) - 3, "4 GiB chunk: the rest is still expected");

    hp_chunked_init(&d);
    g = guarded("fffffffffffffff\r\n", 17);
    r = hp_chunked_decode(&d, g, 17, &used, &data, &dlen);
    ok(r == HP_CHUNK_NEED_MORE && used == 17 && d.remaining == UINT64_C(0xfffffffffffffff),
       "15 significant hex digits are accepted");

    size_t n = build_long_size_line(in, HP_MAX_CHUNK_LINE);
    decode_split(&o, in, n, SPLIT_WHOLE, 0);
    ok(o.last == HP_CHUNK_DONE && o.data_len == 1, "size line of HP_MAX_CHUNK_LINE bytes is accepted");
    decode_split(&o, in, n, SPLIT_BYTES, 0);
    ok(o.last == HP_CHUNK_DONE && o.data_len == 1, "... also byte by byte");
    n = build_long_size_line(in, HP_MAX_CHUNK_LINE + 1);
    check_chunk_bad("size line one byte too long", in, n, false);

    n = build_trailer(in, HP_MAX_TRAILER_BYTES);
    decode_split(&o, in, n, SPLIT_WHOLE, 0);
    ok(o.last == HP_CHUNK_DONE && o.consumed == n, "trailers of HP_MAX_TRAILER_BYTES are accepted");
    decode_split(&o, in, n, SPLIT_BYTES, 0);
    ok(o.last == HP_CHUNK_DONE && o.consumed == n, "... also byte by byte");
    n = build_trailer(in, HP_MAX_TRAILER_BYTES + 1);
    check_chunk_bad("trailers one byte too long", in, n, false);

    /* Many short trailer lines add up too. */
    size_t len = 0;
    len += (size_t)snprintf(in, sizeof in, "0\r\n");
    while (len < HP_MAX_TRAILER_BYTES + 16)
        len += (size_t)snprintf(in + len, sizeof in - len, "T: v\r\n");
    memcpy(in + len, "\r\n", 2);
    check_chunk_bad("many short trailer lines", in, len + 2, false);

    /* A size line of only leading zeros can not be made endless. */
    memset(in, '0', HP_MAX_CHUNK_LINE + 1);
    check_chunk_bad("endless leading zeros", in, HP_MAX_CHUNK_LINE + 1, false);

    /* No input at all: nothing consumed, nothing read. */
    hp_chunked_init(&d);
    r = hp_chunked_decode(&d, guarded("", 0), 0, &used, &data, &dlen);
    ok(r == HP_CHUNK_NEED_MORE && used == 0, "empty input needs more");
}

static void test_chunked(void)
{
    for (size_t i = 0; i < sizeof chunk_cases / sizeof chunk_cases[0]; i++)
        check_chunk_case(&chunk_cases[i]);
    for (size_t i = 0; i < sizeof chunk_bad_cases / sizeof chunk_bad_cases[0]; i++)
        check_chunk_bad(chunk_bad_cases[i].name, chunk_bad_cases[i].in, chunk_bad_cases[i].len, true);
    test_chunked_limits();
}

int main(void)
{
    guard_init();
    test_request_cases();
    test_response_cases();
    test_byte_classes();
    test_field_count();
    test_long_head();
    test_lookup();
    test_has_token();
    test_framing();
    test_chunked();
    return tap_done();
}
