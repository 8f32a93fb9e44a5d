#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "apierr.h"
#include "budget.h"
#include "log.h"
#include "util.h"

#define ACCEPT_BATCH 64              /* accepts per wake-up, so reads are not starved */
#define LINGER_TIMEOUT_MS 2000       /* drain the client's unread bytes before close */
#define LINGER_MAX_BYTES (64u << 20)  /* a body refused at its head may still be on its way */
#define REJECT_LINGER_MAX 256        /* extra sockets kept only to deliver a 503 */
#define IN_KEEP_BYTES 4096           /* idle buffers above this are released */
#define OUT_SHRINK_MIN (64u * 1024)  /* a draining answer queue shrinks to no less than this */

enum conn_state {
    ST_HEAD,       /* reading a request head (or idle between requests) */
    ST_BODY,       /* reading the body */
    ST_HANDLING,   /* request complete, handler answering */
    ST_CLOSING,    /* response complete, flushing, then close */
    ST_LINGER,     /* write side shut, discarding input until EOF or timeout */
    ST_CLOSED
};

struct conn {
    int fd;
    enum conn_state state;
    struct conn *prev, *next;
    struct buf in;
    struct buf out;
    struct loop_timer timer;
    uint64_t timer_due;
    struct request req;
    struct hp_chunked chunked;
    uint64_t body_need;
    uint64_t max_body;         /* of the current request, from head() */
    uint64_t body_started;     /* when the body began (its minimum rate) */
    uint64_t out_charge;       /* bytes of out counted in the budget */
    uint64_t head_started;     /* first byte of the current head, 0 = idle */
    uint64_t last_io;          /* last read progress (body timeout, idle) */
    uint64_t last_write;       /* last write progress (send timeout) */
    uint64_t lingered;
    bool keep_alive;
    bool close_after;
    bool responding;           /* conn_begin called for the current request */
    bool chunked_out;
    bool out_paused;           /* producer told to pause (above SRV_OUT_HIGH) */
    bool in_process;           /* inside conn_process: completion continues the loop */
    bool rejected_overflow;    /* accepted only to answer 503 */
    bool body_unread;          /* the request has a body that will not be read */
    bool req_open;             /* head() saw the request, done() not yet */
    bool broken;               /* a write failed: close from the loop */
    struct conn_hooks hooks;
    char peer[INET6_ADDRSTRLEN];
};

static struct {
    int listen_fd;
    int port;
    int spare_fd;              /* released on EMFILE so one accept can shed load */
    uint64_t shed_warned_at;   /* when the last "out of file descriptors" line was written */
    unsigned shed_unreported;  /* connections shed since then */
    struct conn *conns;
    size_t nconns;
    size_t nlinger_rejects;
    uint64_t max_body;
    int max_conns;
    bool draining;
    uint64_t requests;
    struct server_handlers h;
    void (*drain_done)(void);
    struct loop_timer drain_timer;
} srv = { .listen_fd = -1, .spare_fd = -1, .max_body = 32u << 20, .max_conns = 1024 };

static void conn_process(struct conn *c);
static void conn_update(struct conn *c);
static void conn_close(struct conn *c);
static void conn_flush(struct conn *c);
static void request_complete(struct conn *c);
static void release_memory_soon(void);

/* ---------------------------------------------------------------- */

static const char *status_text(int s)
{
    switch (s) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default:  return s < 300 ? "OK" : s < 400 ? "Redirect" : s < 500 ? "Client Error" : "Server Error";
    }
}

static void give_back_body(struct request *r)
{
    budget_sub(r->body_charge);
    r->body_charge = 0;
}

/* The budget follows the output queue's length. */
/* The budget sees the memory the queue holds (its block), not only the
 * bytes left in it: a queue the client drains slowly keeps its block. */
static void out_sync(struct conn *c)
{
    uint64_t len = buf_len(&c->out) ? buf_capacity(&c->out) : 0;
    if (len > c->out_charge)
        budget_add(len - c->out_charge);
    else
        budget_sub(c->out_charge - len);
    c->out_charge = len;
}

static void request_reset(struct request *r)
{
    give_back_body(r);
    buf_clear(&r->head);
    buf_trim(&r->head, IN_KEEP_BYTES);
    buf_clear(&r->body);
    buf_trim(&r->body, IN_KEEP_BYTES);
    buf_clear(&r->note);
    buf_trim(&r->note, IN_KEEP_BYTES);
    mem_put(r->hp.headers, r->hp.headers_alloc);
    memset(&r->hp, 0, sizeof r->hp);
    r->path = r->query = NULL;
    r->path_len = r->query_len = 0;
    r->is_head = false;
    r->dialect = DIALECT_OPENAI;
    r->quiet = false;
    r->cors = false;
    r->who = NULL;
    r->status = 0;
    r->bytes_out = 0;
}

static void request_free(struct request *r)
{
    mem_put(r->hp.headers, r->hp.headers_alloc);
    memset(&r->hp, 0, sizeof r->hp);
    give_back_body(r);
    buf_free(&r->head);
    buf_free(&r->body);
    buf_free(&r->note);
}

/* ---------------------------------------------------------------- */

const char *request_query_param(const struct request *r, const char *name, size_t *len)
{
    const char *q = r->query;
    size_t n = r->query_len, nl = strlen(name);
    while (q && n) {
        const char *amp = memchr(q, '&', n);
        size_t part = amp ? (size_t)(amp - q) : n;
        if (part > nl && memcmp(q, name, nl) == 0 && q[nl] == '=') {
            *len = part - nl - 1;
            return q + nl + 1;
        }
        if (!amp)
            break;
        n -= part + 1;
        q = amp + 1;
    }
    return NULL;
}

struct request *conn_request(struct conn *c)
{
    return &c->req;
}

const char *conn_peer(const struct conn *c)
{
    return c->peer;
}

bool conn_http10(const struct conn *c)
{
    return c->req.hp.minor_version == 0;
}

size_t conn_pending(const struct conn *c)
{
    return buf_len(&c->out);
}

void conn_set_hooks(struct conn *c, const struct conn_hooks *h)
{
    if (h)
        c->hooks = *h;
    else
        memset(&c->hooks, 0, sizeof c->hooks);
}

void conn_close_after(struct conn *c)
{
    c->close_after = true;
}

void conn_begin(struct conn *c, int status, const char *content_type,
                const char *extra_headers, int64_t content_length)
{
    if (c->state != ST_HANDLING || c->responding)
        return;
    c->responding = true;
    c->req.status = status;
    struct buf *o = &c->out;
    /* No printf on the request path: the head is plain appends. */
    buf_append_str(o, "HTTP/1.1 ");
    buf_append_u64(o, (uint64_t)status);
    buf_append(o, " ", 1);
    buf_append_str(o, status_text(status));
    buf_append(o, "\r\n", 2);
    if (content_type) {
        buf_append_str(o, "Content-Type: ");
        buf_append_str(o, content_type);
        buf_append(o, "\r\n", 2);
    }
    if (extra_headers)
        buf_append_str(o, extra_headers);
    if (c->req.cors)
        buf_append_str(o, "Access-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: *\r\n");
    bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
    c->chunked_out = false;
    if (!no_body) {
        if (content_length >= 0) {
            buf_append_str(o, "Content-Length: ");
            buf_append_u64(o, (uint64_t)content_length);
            buf_append(o, "\r\n", 2);
        } else if (!conn_http10(c) && !c->req.is_head) {
            buf_append_str(o, "Transfer-Encoding: chunked\r\n");
            c->chunked_out = true;
        } else
            c->close_after = true;   /* HTTP/1.0: the end of the body is the close */
    }
    if (srv.draining || !c->keep_alive || c->body_unread)
        c->close_after = true;
    if (c->close_after)
        buf_append_str(o, "Connection: close\r\n");
    else if (conn_http10(c))
        buf_append_str(o, "Connection: keep-alive\r\n");
    buf_append_str(o, "\r\n");
}

void conn_body(struct conn *c, const void *p, size_t n)
{
    if (c->state != ST_HANDLING || !c->responding || n == 0 || c->req.is_head || c->broken)
        return;
    if (c->chunked_out) {
        buf_append_hex(&c->out, n);
        buf_append(&c->out, "\r\n", 2);
        buf_append(&c->out, p, n);
        buf_append(&c->out, "\r\n", 2);
    } else {
        buf_append(&c->out, p, n);
    }
    c->req.bytes_out += n;
    conn_flush(c);
    if (buf_len(&c->out) > SRV_OUT_HIGH)
        c->out_paused = true;
    conn_update(c);   /* arm POLLOUT if the kernel took less than all */
}

void conn_end(struct conn *c)
{
    if (c->state != ST_HANDLING || !c->responding)
        return;
    if (c->chunked_out)
        buf_append(&c->out, "0\r\n\r\n", 5);
    request_complete(c);
    conn_flush(c);
    conn_update(c);
}

void conn_respond(struct conn *c, int status, const char *content_type,
                  const char *extra_headers, const void *body, size_t len)
{
    if (c->state != ST_HANDLING || c->responding)
        return;
    conn_begin(c, status, content_type, extra_headers, (int64_t)len);
    if (!c->req.is_head && len)
        buf_append(&c->out, body, len);
    c->req.bytes_out += len;
    conn_end(c);
}

/* ---------------------------------------------------------------- */

static void access_log(struct conn *c)
{
    struct request *r = &c->req;
    const char *who = r->client[0] ? r->client : c->peer;
    srv.requests++;
    uint64_t ms = loop_clock() - r->start_ms;
    enum log_level lvl = r->quiet && r->status < 400 ? LOG_DEBUG : LOG_INFO;
    if (!log_enabled(lvl))
        return;
    /* "who METHOD path status NB Nms note", with appends (no printf per
     * request); the line's buffer is kept from one request to the next. */
    static struct buf line;
    buf_clear(&line);
    buf_append_str(&line, who);
    buf_append(&line, " ", 1);
    buf_append(&line, r->hp.method ? r->hp.method : "-", r->hp.method ? (r->hp.method_len > 16 ? 16 : r->hp.method_len) : 1);
    buf_append(&line, " ", 1);
    buf_append(&line, r->path ? r->path : "-", r->path ? (r->path_len > 256 ? 256 : r->path_len) : 1);
    buf_append(&line, " ", 1);
    buf_append_u64(&line, (uint64_t)r->status);
    buf_append(&line, " ", 1);
    buf_append_u64(&line, r->bytes_out);
    buf_append_str(&line, "B ");
    buf_append_u64(&line, ms);
    buf_append_str(&line, "ms");
    if (buf_len(&r->note)) {
        buf_append(&line, " ", 1);
        buf_append(&line, buf_head(&r->note), buf_len(&r->note));
    }
    if (!buf_failed(&line))
        log_text(lvl, buf_head(&line), buf_len(&line));
}

/* The current response is complete (queued): log it and get ready for the
 * next request on this connection, or for closing. */
static void request_end(struct conn *c)
{
    if (c->req_open) {
        c->req_open = false;
        if (srv.h.done)
            srv.h.done(c, &c->req);
    }
}

static void request_complete(struct conn *c)
{
    if (c->req.status)
        access_log(c);
    request_end(c);
    memset(&c->hooks, 0, sizeof c->hooks);
    c->responding = false;
    c->chunked_out = false;
    c->out_paused = false;
    request_reset(&c->req);
    release_memory_soon();
    c->head_started = 0;
    c->last_io = loop_now();
    if (c->close_after || c->body_unread || srv.draining) {
        c->state = ST_CLOSING;
        return;
    }
    c->state = ST_HEAD;
    /* Pipelined bytes may already be waiting; conn_process picks them up
     * when it is the caller, otherwise the next iteration does. */
    if (!c->in_process && buf_len(&c->in))
        loop_wake(c->fd, POLLIN);
}

/* Answer a protocol error and close: the rest of the input is not
 * trusted (it may be a smuggled request). */
static void conn_reject(struct conn *c, int status, const char *msg)
{
    c->state = ST_HANDLING;
    c->responding = false;
    c->close_after = true;
    c->req.start_ms = c->head_started ? c->head_started : loop_now();
    buf_clear(&c->in);
    struct buf body = BUF_INIT;
    apierr_json(&body, c->req.dialect, status, status >= 500 ? "server_error" : "invalid_request_error", NULL, msg);
    buf_append(&body, "\n", 1);
    conn_respond(c, status, "application/json", NULL, buf_head(&body), buf_len(&body));
    buf_free(&body);
}

static void conn_dispatch(struct conn *c)
{
    c->state = ST_HANDLING;
    c->responding = false;
    c->body_unread = false;
    if (!buf_len(&c->in))
        buf_trim(&c->in, 0);   /* a stream may run for minutes: hold nothing for the next request */
    if (srv.h.serve)
        srv.h.serve(c, &c->req);
}

/* Ask the application about a parsed head.  true: read the body. */
static bool ask_head(struct conn *c, struct request *r)
{
    c->state = ST_HANDLING;
    c->responding = false;
    c->max_body = srv.max_body;
    c->req_open = true;
    c->body_unread = r->framing.body == HP_BODY_CHUNKED ||
                     (r->framing.body == HP_BODY_LENGTH && r->framing.length > 0);
    if (!srv.h.head || srv.h.head(c, r, &c->max_body))
        return c->state == ST_HANDLING && !c->responding;
    /* Answered from the head: the body (if any) is never read, and the
     * connection closes after the answer (request_complete). */
    return false;
}

/* Locate path and query in the request-target.  Origin-form only, plus
 * absolute-form which RFC 9112 3.2.2 says a server must accept. */
static int split_target(struct request *r)
{
    const char *t = r->hp.target;
    size_t n = r->hp.target_len;
    if (n >= 7 && (strncasecmp(t, "http://", 7) == 0 || (n >= 8 && strncasecmp(t, "https://", 8) == 0))) {
        size_t skip = t[4] == ':' ? 7 : 8;
        const char *slash = memchr(t + skip, '/', n - skip);
        if (!slash)
            return -1;
        n -= (size_t)(slash - t);
        t = slash;
    }
    if (n == 0 || t[0] != '/')
        return -1;
    const char *q = memchr(t, '?', n);
    r->path = t;
    r->path_len = q ? (size_t)(q - t) : n;
    r->query = q ? q + 1 : NULL;
    r->query_len = q ? n - r->path_len - 1 : 0;
    return 0;
}

/* The parser's output, for the one head being parsed at a time (one
 * thread): kept out of the connections. */
static struct hp_request parsed;

/* r->hp from a parse of r->head: the header views copied, right-sized. */
static int keep_head(struct request *r, const struct hp_request *p)
{
    size_t alloc = 0;
    struct hp_header *h = NULL;
    if (p->num_headers && !(h = mem_get(p->num_headers * sizeof *h, &alloc)))
        return -1;
    if (p->num_headers)
        memcpy(h, p->headers, p->num_headers * sizeof *h);
    r->hp = (struct hp_head){ p->method, p->method_len, p->target, p->target_len, p->minor_version,
                              p->num_headers, h, alloc };
    return 0;
}

static void begin_request(struct conn *c, size_t head_len)
{
    struct request *r = &c->req;
    request_reset(r);
    /* Copy the head out of the input buffer so its views survive reads. */
    buf_append(&r->head, buf_head(&c->in), head_len);
    buf_consume(&c->in, head_len);
    if (hp_parse_request(buf_head(&r->head), buf_len(&r->head), &parsed) != (int)head_len) {
        conn_reject(c, 400, "malformed request");
        return;
    }
    if (keep_head(r, &parsed) < 0) {
        conn_reject(c, 503, "out of memory");
        return;
    }
    r->start_ms = c->head_started;
    memcpy(r->client, c->peer, sizeof r->client);
    if (split_target(r) < 0) {
        conn_reject(c, 400, "invalid request target");
        return;
    }
    if (hp_request_framing(&parsed, &r->framing) < 0) {
        conn_reject(c, 400, "invalid message framing");
        return;
    }
    r->is_head = r->hp.method_len == 4 && memcmp(r->hp.method, "HEAD", 4) == 0;
    c->keep_alive = r->framing.keep_alive && !srv.draining;
    c->close_after = false;
    if (!ask_head(c, r))
        return;
    switch (r->framing.body) {
    case HP_BODY_LENGTH:
        if (r->framing.length > c->max_body) {
            conn_reject(c, 413, "request body too large");
            return;
        }
        /* The whole body will be held: admit it against the budget now,
         * before a byte of it is read. */
        if (r->framing.length > SRV_LARGE_BODY && !budget_allows(r->framing.length)) {
            conn_reject(c, 503, "the gateway is holding too much data now: try again shortly");
            return;
        }
        budget_add(r->framing.length);
        r->body_charge = r->framing.length;
        c->body_need = r->framing.length;
        break;
    case HP_BODY_CHUNKED:
        hp_chunked_init(&c->chunked);
        break;
    default:
        conn_dispatch(c);
        return;
    }
    if (c->body_need == 0 && r->framing.body == HP_BODY_LENGTH) {
        conn_dispatch(c);
        return;
    }
    c->state = ST_BODY;
    c->last_io = c->body_started = loop_now();
    /* RFC 9110 10.1.1: a client waiting for 100 Continue sends the body
     * only after it; an interim answer is due unless bytes already came.
     * It comes only now, after head() has checked who is asking. */
    if (r->framing.expect_continue && buf_len(&c->in) == 0)
        buf_append_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
}

/* Keep n body bytes: within the request's limit and the budget.  -1
 * after answering (413, 503). */
static int keep_body(struct conn *c, const char *p, size_t n)
{
    struct request *r = &c->req;
    if (buf_len(&r->body) + n > c->max_body) {
        conn_reject(c, 413, "request body too large");
        return -1;
    }
    /* A body announced by its length was admitted at its head; one that
     * comes in chunks is admitted piece by piece. */
    if (r->framing.body == HP_BODY_CHUNKED && !budget_allows(n)) {
        conn_reject(c, 503, "the gateway is holding too much data now: try again shortly");
        return -1;
    }
    if (buf_append(&r->body, p, n) < 0) {
        conn_reject(c, 503, "out of memory");
        return -1;
    }
    if (r->framing.body == HP_BODY_CHUNKED) {
        budget_add(n);
        r->body_charge += n;
    }
    return 0;
}

static void read_body(struct conn *c)
{
    struct request *r = &c->req;
    if (r->framing.body == HP_BODY_LENGTH) {
        size_t take = buf_len(&c->in);
        if (take > c->body_need)
            take = (size_t)c->body_need;
        if (keep_body(c, buf_head(&c->in), take) < 0)
            return;
        buf_consume(&c->in, take);
        c->body_need -= take;
        if (c->body_need == 0)
            conn_dispatch(c);
        return;
    }
    for (;;) {
        size_t used = 0;
        const char *data;
        size_t dlen;
        enum hp_chunk_result res = hp_chunked_decode(&c->chunked, buf_head(&c->in), buf_len(&c->in),
                                                     &used, &data, &dlen);
        if (res == HP_CHUNK_ERROR) {
            conn_reject(c, 400, "malformed chunked body");
            return;
        }
        if (res == HP_CHUNK_DATA && keep_body(c, data, dlen) < 0)
            return;
        buf_consume(&c->in, used);
        /* Refuse an announced chunk that cannot fit, before reading it. */
        if (buf_len(&r->body) + c->chunked.remaining > c->max_body) {
            conn_reject(c, 413, "request body too large");
            return;
        }
        if (res == HP_CHUNK_DONE) {
            conn_dispatch(c);
            return;
        }
        if (res == HP_CHUNK_NEED_MORE)
            return;
    }
}

static void conn_process(struct conn *c)
{
    c->in_process = true;
    while (c->state == ST_HEAD || c->state == ST_BODY) {
        if (c->state == ST_HEAD) {
            size_t n = buf_len(&c->in);
            if (n == 0)
                break;
            /* Do not start the next pipelined request while the previous
             * answers still fill the output: the client must read them. */
            if (buf_len(&c->out) > SRV_OUT_HIGH)
                break;
            if (!c->head_started)
                c->head_started = loop_now();
            int r = hp_parse_request(buf_head(&c->in), n, &parsed);
            if (r == HP_INCOMPLETE && n <= HP_MAX_HEAD_BYTES)
                break;
            if (r < 0 || r > HP_MAX_HEAD_BYTES) {
                /* The views of a head that failed point into the input,
                 * which the rejection discards. */
                c->req.path = NULL;
                if (r == HP_ERROR)
                    conn_reject(c, 400, "malformed request");
                else
                    conn_reject(c, 431, "request head too large");
                break;
            }
            begin_request(c, (size_t)r);
        } else {
            if (buf_len(&c->in) == 0)
                break;
            read_body(c);
        }
    }
    c->in_process = false;
}

/* ---------------------------------------------------------------- */

#define TRIM_DELAY_MS 1000      /* at most one trim per second */

static struct loop_timer trim_timer;

static void trim_now(void *ctx)
{
    (void)ctx;
    mem_release();
}

/* Work just freed memory (a request's buffers, a connection).  After a
 * burst (a flood, a spike of streams, one huge answer) the heap is left at
 * its peak: hand it back a second later.  Every request arms this, not
 * only closes: a keep-alive connection can free megabytes too, and a burst
 * can end with a handful of closes. */
static void release_memory_soon(void)
{
    if (!loop_timer_armed(&trim_timer)) {
        loop_timer_init(&trim_timer, trim_now, NULL);
        loop_timer_set(&trim_timer, TRIM_DELAY_MS);
    }
}

static void conn_free_deferred(void *p)
{
    struct conn *c = p;
    buf_free(&c->in);
    buf_free(&c->out);
    request_free(&c->req);
    free(c);
    release_memory_soon();
}

static void maybe_drain_done(void)
{
    if (srv.draining && srv.nconns == 0 && srv.drain_done) {
        void (*done)(void) = srv.drain_done;
        srv.drain_done = NULL;
        loop_timer_stop(&srv.drain_timer);
        done();
    }
}

static void conn_close(struct conn *c)
{
    if (c->state == ST_CLOSED)
        return;
    bool was_handling = c->state == ST_HANDLING;
    c->state = ST_CLOSED;
    if (was_handling && c->hooks.aborted) {
        struct conn_hooks h = c->hooks;
        memset(&c->hooks, 0, sizeof c->hooks);
        h.aborted(h.ctx);
    }
    if (was_handling && c->req.status == 0)
        c->req.status = 499;  /* nginx's code for "client closed request" */
    if (was_handling)
        access_log(c);
    request_end(c);
    buf_clear(&c->out);
    out_sync(c);
    give_back_body(&c->req);
    loop_timer_stop(&c->timer);
    loop_del(c->fd);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->rejected_overflow)
        srv.nlinger_rejects--;
    else
        srv.nconns--;
    loop_defer(conn_free_deferred, c);
    maybe_drain_done();
}

static void start_linger(struct conn *c)
{
    /* Closing with unread input makes the kernel send RST, which can
     * destroy the response before the client reads it: shut our side,
     * then read and drop what the client still sends, for a while. */
    shutdown(c->fd, SHUT_WR);
    c->state = ST_LINGER;
    c->lingered = 0;
    c->last_io = loop_now();
}

/* Write what is queued.  Never closes: a failed write marks the
 * connection broken and wakes it, and the loop closes it (conn_on_io), so
 * a handler writing through conn_body() is never called back inside. */
static void conn_flush(struct conn *c)
{
    if (buf_failed(&c->out) && !c->broken) {
        /* Part of an answer could not be queued: the rest would be a lie. */
        c->broken = true;
        loop_wake(c->fd, POLLERR);
        return;
    }
    while (buf_len(&c->out) && !c->broken) {
        ssize_t n = send(c->fd, buf_head(&c->out), buf_len(&c->out), MSG_NOSIGNAL);
        if (n > 0) {
            buf_consume(&c->out, (size_t)n);
            c->last_write = loop_now();
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        c->broken = true;
        buf_clear(&c->out);
        out_sync(c);
        loop_wake(c->fd, POLLERR);
        return;
    }
    if (buf_len(&c->out) == 0) {
        buf_trim(&c->out, IN_KEEP_BYTES);
        if (c->state == ST_CLOSING)
            start_linger(c);
    } else {
        buf_shrink(&c->out, OUT_SHRINK_MIN);
    }
    out_sync(c);
    if (c->out_paused && buf_len(&c->out) < SRV_OUT_LOW) {
        c->out_paused = false;
        if (c->hooks.drained)
            c->hooks.drained(c->hooks.ctx);
    }
}

static void conn_read(struct conn *c)
{
    if (c->state == ST_LINGER) {
        char scratch[4096];
        ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
        if (n > 0) {
            c->lingered += (uint64_t)n;
            if (c->lingered > LINGER_MAX_BYTES)
                conn_close(c);
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            conn_close(c);
        }
        return;
    }
    /* Read into one shared scratch buffer and keep only what arrived: an
     * idle or slow connection then costs bytes, not a read-sized buffer. */
    static char scratch[SRV_READ_CHUNK];
    ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
    if (n > 0) {
        if (buf_append(&c->in, scratch, (size_t)n) < 0) {
            conn_close(c);
            return;
        }
        c->last_io = loop_now();
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    /* EOF or error.  A client that half-closes after a complete request
     * still gets its queued answer; one that leaves mid-request is gone. */
    if (n == 0 && c->state == ST_HEAD && buf_len(&c->in) == 0 && buf_len(&c->out)) {
        c->close_after = true;
        c->state = ST_CLOSING;
        return;
    }
    if (n == 0 && c->state == ST_CLOSING)
        return;
    conn_close(c);
}

static uint64_t conn_deadline(struct conn *c)
{
    if (buf_len(&c->out) && c->state != ST_LINGER)
        return c->last_write + SRV_SEND_TIMEOUT_MS;
    switch (c->state) {
    case ST_HEAD:
        if (c->head_started)
            return c->head_started + SRV_HEAD_TIMEOUT_MS;
        return c->last_io + SRV_IDLE_TIMEOUT_MS;
    case ST_BODY: {
        /* An idle gap, or a rate too low to ever finish: after a grace,
         * every SRV_BODY_MIN_RATE bytes buy one more second. */
        uint64_t rate = c->body_started + SRV_BODY_GRACE_MS + buf_len(&c->req.body) * 1000u / SRV_BODY_MIN_RATE;
        uint64_t idle = c->last_io + SRV_BODY_TIMEOUT_MS;
        return rate < idle ? rate : idle;
    }
    case ST_LINGER:
        return c->last_io + LINGER_TIMEOUT_MS;
    default:
        return 0;
    }
}

static void conn_on_timer(void *ctx)
{
    struct conn *c = ctx;
    c->timer_due = 0;
    uint64_t due = conn_deadline(c);
    if (due && due > loop_now()) {
        conn_update(c);
        return;
    }
    if (buf_len(&c->out) && c->state != ST_LINGER) {
        log_warn("%s: client stopped reading for %ds, closing", c->peer, SRV_SEND_TIMEOUT_MS / 1000);
        conn_close(c);
        return;
    }
    switch (c->state) {
    case ST_HEAD:
        if (c->head_started) {
            conn_reject(c, 408, "request head not received in time");
            if (c->state != ST_CLOSED)
                conn_update(c);
        } else {
            conn_close(c);
        }
        break;
    case ST_BODY:
        conn_reject(c, 408, "request body not received in time");
        if (c->state != ST_CLOSED)
            conn_update(c);
        break;
    default:
        conn_close(c);
        break;
    }
}

/* Recompute poll interest and the deadline from the connection's state. */
static void conn_update(struct conn *c)
{
    if (c->state == ST_CLOSED)
        return;
    short ev = 0;
    size_t in_limit = c->state == ST_HANDLING ? SRV_PIPELINE_MAX : HP_MAX_HEAD_BYTES + SRV_READ_CHUNK;
    if (c->state == ST_LINGER || buf_len(&c->in) < in_limit)
        ev |= POLLIN;
    if (c->state == ST_CLOSING && buf_len(&c->out) == 0)
        ev &= (short)~POLLIN;
    if (buf_len(&c->out))
        ev |= POLLOUT;
    loop_mod(c->fd, ev);
    /* A keep-alive client between requests, and one whose answer is being
     * made (a stream writes without waiting for the socket; only a hang-up
     * could come), may wait in the cold set: found within LOOP_COLD_SCAN_MS. */
    bool idle = c->state == ST_HEAD && !c->head_started && !buf_len(&c->in) && !buf_len(&c->out);
    bool waiting = c->state == ST_HANDLING && !buf_len(&c->out);
    loop_coldable(c->fd, idle || waiting);
    uint64_t due = conn_deadline(c);
    if (due != c->timer_due || (due && !loop_timer_armed(&c->timer))) {
        c->timer_due = due;
        if (due) {
            uint64_t now = loop_now();
            loop_timer_set(&c->timer, due > now ? due - now : 0);
        } else {
            loop_timer_stop(&c->timer);
        }
    }
}

static void conn_on_io(void *ctx, int revents)
{
    struct conn *c = ctx;
    if (revents & POLLOUT)
        conn_flush(c);
    if (!c->broken && (revents & (POLLIN | POLLHUP | POLLERR)))
        conn_read(c);
    if (c->state == ST_CLOSED)
        return;
    if (!c->broken)
        conn_process(c);
    if (!c->broken && buf_len(&c->out))
        conn_flush(c);
    if (c->broken) {
        conn_close(c);
        return;
    }
    if (c->state == ST_CLOSING && buf_len(&c->out) == 0)
        start_linger(c);
    conn_update(c);
}

/* ---------------------------------------------------------------- */

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static struct conn *conn_new(int fd, const struct sockaddr_storage *sa)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    c->state = ST_HEAD;
    c->last_io = c->last_write = loop_now();
    loop_timer_init(&c->timer, conn_on_timer, c);
    if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], c->peer, sizeof c->peer);
        else
            inet_ntop(AF_INET6, &s6->sin6_addr, c->peer, sizeof c->peer);
    } else if (sa->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->peer, sizeof c->peer);
    } else {
        strcpy(c->peer, "-");
    }
    if (loop_add(fd, POLLIN, conn_on_io, c) < 0) {
        free(c);
        return NULL;
    }
    c->next = srv.conns;
    if (srv.conns)
        srv.conns->prev = c;
    srv.conns = c;
    return c;
}

/* One line a second at most: a flood of connections past the descriptor
 * limit would otherwise fill the log ring with copies of it. */
static void warn_shed(int err)
{
    srv.shed_unreported++;
    uint64_t now = loop_now();
    if (srv.shed_warned_at && now - srv.shed_warned_at < 1000)
        return;
    log_warn("out of file descriptors (%s): %u new connection(s) answered 503 and closed since the last such "
             "line; raise the descriptor limit or lower max_connections",
             err == EMFILE ? "EMFILE" : "ENFILE", srv.shed_unreported);
    srv.shed_warned_at = now;
    srv.shed_unreported = 0;
}

static const char out_of_fds_503[] =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    "Content-Length: 123\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
    "{\"error\":{\"message\":\"the gateway is out of file descriptors, retry later\","
    "\"type\":\"server_error\",\"param\":null,\"code\":null}}\n";

static const char overflow_503[] =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    "Content-Length: 113\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
    "{\"error\":{\"message\":\"server is at max_connections, retry later\","
    "\"type\":\"server_error\",\"param\":null,\"code\":null}}\n";

static void reject_overflow(int fd, const struct sockaddr_storage *sa)
{
    if (srv.nlinger_rejects >= REJECT_LINGER_MAX) {
        send(fd, overflow_503, sizeof overflow_503 - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(fd);
        return;
    }
    struct conn *c = conn_new(fd, sa);
    if (!c) {
        close(fd);
        return;
    }
    c->rejected_overflow = true;
    srv.nlinger_rejects++;
    buf_append(&c->out, overflow_503, sizeof overflow_503 - 1);
    c->state = ST_CLOSING;
    conn_flush(c);
    if (c->state != ST_CLOSED)
        conn_update(c);
}

static void server_on_accept(void *ctx, int revents)
{
    (void)ctx;
    (void)revents;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage sa;
        socklen_t slen = sizeof sa;
        int fd = accept(srv.listen_fd, (struct sockaddr *)&sa, &slen);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            int e = errno;
            if ((e == EMFILE || e == ENFILE) && srv.spare_fd >= 0) {
                /* Out of descriptors: use the spare one to accept and drop
                 * a connection, so the backlog does not wake us forever. */
                close(srv.spare_fd);
                srv.spare_fd = -1;
                fd = accept(srv.listen_fd, NULL, NULL);
                if (fd >= 0) {
                    /* Tell the client why (a 503 it may retry) rather than
                     * reset it; best effort, never waiting. */
                    send(fd, out_of_fds_503, sizeof out_of_fds_503 - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                    close(fd);
                }
                srv.spare_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                warn_shed(e);
            }
            return;
        }
        if (set_nonblock(fd) < 0) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (srv.nconns >= (size_t)srv.max_conns || srv.draining) {
            reject_overflow(fd, &sa);
            continue;
        }
        struct conn *c = conn_new(fd, &sa);
        if (!c) {
            close(fd);
            continue;
        }
        srv.nconns++;
        conn_update(c);
    }
}

static int parse_listen_addr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    char host[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(addr);
    if (n >= sizeof host)
        return -1;
    if (addr[0] == '[' && n > 2 && addr[n - 1] == ']') {
        memcpy(host, addr + 1, n - 2);
        host[n - 2] = '\0';
    } else {
        memcpy(host, addr, n + 1);
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *len = sizeof *s4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *len = sizeof *s6;
        return 0;
    }
    return -1;
}

static int open_listener(const struct sockaddr_storage *ss, socklen_t len, bool dual)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual ? &zero : &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int server_listen(const char *addr, int port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd;
    if (addr && *addr) {
        if (parse_listen_addr(addr, port, &ss, &len) < 0) {
            log_error("listen: \"%s\" is not an IPv4 or IPv6 address", addr);
            return -1;
        }
        fd = open_listener(&ss, len, false);
    } else {
        /* All IPv6 and, through v4-mapped addresses, all IPv4; a host
         * without IPv6 gets a plain IPv4 socket. */
        parse_listen_addr("::", port, &ss, &len);
        fd = open_listener(&ss, len, true);
        if (fd < 0 && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
            parse_listen_addr("0.0.0.0", port, &ss, &len);
            fd = open_listener(&ss, len, false);
        }
    }
    if (fd < 0) {
        log_error("listen on %s port %d: %s", addr && *addr ? addr : "*", port, strerror(errno));
        return -1;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    getsockname(fd, (struct sockaddr *)&bound, &blen);
    srv.port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                               : ((struct sockaddr_in *)&bound)->sin_port);
    srv.listen_fd = fd;
    srv.spare_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (loop_add(fd, POLLIN, server_on_accept, NULL) < 0) {
        close(fd);
        srv.listen_fd = -1;
        return -1;
    }
    return 0;
}

int server_port(void)
{
    return srv.port;
}

void server_set_handlers(const struct server_handlers *h)
{
    srv.h = *h;
}

uint64_t server_requests(void)
{
    return srv.requests;
}

/* A connection whose client reads too slowly what we hold for it: its
 * queue is dropped now and the loop closes it. */
static void cut(struct conn *c)
{
    log_warn("%s: cut: %zu bytes queued and not read for %llus while the budget is exhausted", c->peer,
             buf_len(&c->out), (unsigned long long)((loop_now() - c->last_write) / 1000));
    c->broken = true;
    buf_free(&c->out);
    out_sync(c);
    loop_wake(c->fd, POLLERR);
}

uint64_t server_reclaim(uint64_t need)
{
    uint64_t freed = 0;
    while (freed < need) {
        struct conn *worst = NULL;
        for (struct conn *c = srv.conns; c; c = c->next)
            if (!c->broken && buf_len(&c->out) > SRV_OUT_HIGH && (!worst || c->last_write < worst->last_write))
                worst = c;
        if (!worst)
            break;
        freed += buf_len(&worst->out);
        cut(worst);
    }
    return freed;
}

void server_set_limits(uint64_t max_body_bytes, int max_connections)
{
    srv.max_body = max_body_bytes;
    srv.max_conns = max_connections;
}

size_t server_conn_count(void)
{
    return srv.nconns;
}

static void close_listener(void)
{
    if (srv.listen_fd >= 0) {
        loop_del(srv.listen_fd);
        close(srv.listen_fd);
        srv.listen_fd = -1;
    }
    if (srv.spare_fd >= 0) {
        close(srv.spare_fd);
        srv.spare_fd = -1;
    }
}

void server_close_all(void)
{
    loop_timer_stop(&trim_timer);
    close_listener();
    while (srv.conns)
        conn_close(srv.conns);
}

static void drain_timeout(void *ctx)
{
    (void)ctx;
    log_warn("shutdown: %zu connection(s) still busy after %ds, closing them", srv.nconns,
             SRV_DRAIN_TIMEOUT_MS / 1000);
    server_close_all();
    maybe_drain_done();
}

void server_drain(void (*done)(void))
{
    srv.draining = true;
    srv.drain_done = done;
    close_listener();
    loop_timer_init(&srv.drain_timer, drain_timeout, NULL);
    loop_timer_set(&srv.drain_timer, SRV_DRAIN_TIMEOUT_MS);
    for (struct conn *c = srv.conns, *next; c; c = next) {
        next = c->next;
        if (c->state == ST_HEAD && c->head_started == 0 && buf_len(&c->out) == 0)
            conn_close(c);
        else
            c->close_after = true;
    }
    maybe_drain_done();
}
