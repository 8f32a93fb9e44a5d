/* http_parse: incremental, zero-copy HTTP/1.1 message head parser and
 * chunked body decoder (RFC 9112).  No allocation, no I/O.
 *
 * Return convention for the head parsers, as everywhere in this program:
 *   > 0  bytes consumed (the whole head, including the blank line)
 *    -1  malformed (the caller answers 400 and closes)
 *    -2  incomplete: call again with more bytes (the parser is stateless
 *        and re-scans from the start; heads are small and capped)
 *    -3  more than HP_MAX_HEADERS header fields (request: 431)
 *
 * All (pointer, length) views point into the caller's buffer; nothing is
 * NUL-terminated.  The views stay valid while that buffer is not changed. */
#ifndef AUTOSWITCH_HTTP_PARSE_H
#define AUTOSWITCH_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HP_MAX_HEADERS 100       /* header fields per message */
#define HP_MAX_HEAD_BYTES 16384  /* request head limit (431 beyond) */
#define HP_MAX_CHUNK_LINE 4096   /* chunk-size line incl. extensions */
#define HP_MAX_TRAILER_BYTES 16384

enum { HP_ERROR = -1, HP_INCOMPLETE = -2, HP_TOO_MANY_HEADERS = -3 };

struct hp_header {
    const char *name;
    size_t name_len;
    const char *value;   /* leading and trailing spaces / tabs removed */
    size_t value_len;
};

struct hp_request {
    const char *method;
    size_t method_len;
    const char *target;  /* request-target as sent, e.g. "/v1/models?x=1" */
    size_t target_len;
    int minor_version;   /* HTTP/1.x: 0 or 1 */
    size_t num_headers;
    struct hp_header headers[HP_MAX_HEADERS];
};

struct hp_response {
    int minor_version;
    int status;          /* 100..999 */
    const char *reason;
    size_t reason_len;
    size_t num_headers;
    struct hp_header headers[HP_MAX_HEADERS];
};

/* Parse a request head from buf[0, len).  Rejects: bytes other than
 * tchar in the method, control characters or spaces in the target,
 * versions other than HTTP/1.0 and HTTP/1.1, header names that are not
 * tokens, whitespace between a field name and its colon (RFC 9112 5.1),
 * obsolete line folding (RFC 9112 5.2), NUL / other CTLs except HTAB in
 * values.  Lines end in CRLF; a bare LF is accepted as a line end
 * (RFC 9112 2.2), a bare CR is an error.  Empty lines before the request
 * line are skipped (RFC 9112 2.2). */
int hp_parse_request(const char *buf, size_t len, struct hp_request *req);

/* Parse a response head.  Same rules; the reason phrase may be empty. */
int hp_parse_response(const char *buf, size_t len, struct hp_response *res);

/* Case-insensitive header lookup: the first field with that name, or NULL. */
const struct hp_header *hp_find(const struct hp_header *h, size_t n, const char *name);
/* Whether a comma-separated header value contains token (case-insensitive),
 * e.g. hp_has_token("keep-alive, Upgrade", "upgrade"). */
bool hp_has_token(const char *value, size_t len, const char *token);
bool hp_name_eq(const struct hp_header *h, const char *name);

/* How the body of a message is delimited. */
enum hp_body { HP_BODY_NONE, HP_BODY_LENGTH, HP_BODY_CHUNKED, HP_BODY_UNTIL_CLOSE };

struct hp_framing {
    enum hp_body body;
    uint64_t length;        /* for HP_BODY_LENGTH */
    bool keep_alive;        /* connection may carry another message after this one */
    bool expect_continue;   /* request: "Expect: 100-continue" */
};

/* Request framing per RFC 9112 6.1-6.3.  -1 (400 and close) when:
 * Content-Length and Transfer-Encoding both present; several
 * Content-Length values that differ (equal duplicates, also as a list
 * "5, 5", are accepted); a Content-Length that is not 1*DIGIT or does not
 * fit in 63 bits; a Transfer-Encoding whose final coding is not chunked,
 * or any coding other than chunked.  No body header -> HP_BODY_NONE.
 * Keep-alive: HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with
 * "Connection: keep-alive". */
int hp_request_framing(const struct hp_request *req, struct hp_framing *out);

/* Response framing per RFC 9112 6.3 for a response to a request with
 * method `head_request` true/false: 1xx, 204, 304 and responses to HEAD
 * have no body; chunked wins; then Content-Length; else read until close
 * (keep_alive false).  -1 for invalid or conflicting Content-Length, or
 * a Transfer-Encoding other than chunked. */
int hp_response_framing(const struct hp_response *res, bool head_request, struct hp_framing *out);

/* Chunked decoder (RFC 9112 7.1).  Feed it the bytes after the head;
 * it hands back views of the decoded data without copying. */
struct hp_chunked {
    int state;              /* private */
    uint64_t remaining;     /* bytes left in the current chunk */
    size_t line_len;        /* bytes seen of the current size or trailer line */
    size_t trailer_bytes;
};

enum hp_chunk_result {
    HP_CHUNK_DATA = 1,      /* *data, *data_len: decoded bytes (len > 0) */
    HP_CHUNK_NEED_MORE = 0, /* all input consumed, message not finished */
    HP_CHUNK_DONE = 2,      /* last chunk and trailers consumed: message ends */
    HP_CHUNK_ERROR = -1     /* malformed size line, size of 2^60 or more, missing
                               CRLF after data, oversized line or trailers */
};

void hp_chunked_init(struct hp_chunked *d);
/* Decode from in[0, len).  *consumed is set to the input bytes used in
 * this call (on DONE, in + *consumed is the first byte after the message,
 * i.e. the next pipelined message).  Call repeatedly: each DATA result
 * returns one contiguous run; NEED_MORE means feed more bytes. */
enum hp_chunk_result hp_chunked_decode(struct hp_chunked *d, const char *in, size_t len,
                                       size_t *consumed, const char **data, size_t *data_len);

#endif
