/* server: the listening socket and accepted client connections.
 *
 * A connection reads into its input buffer and parses one request at a
 * time (pipelined requests wait in the buffer and are answered in order).
 * The application sees each request twice (struct server_handlers, set by
 * main; the server never calls up otherwise): head() as soon as the head
 * is parsed, before any body byte is read, to route it and check who asks;
 * then, if head() wants the body, serve() once the body is complete
 * (Content-Length or chunked; 100 Continue is sent only after head()
 * agreed).  A request answered from its head alone never has its body
 * read: the connection closes after the answer, with a lingering close.
 * The handler answers at once with conn_respond(), or later (the proxy)
 * with conn_begin() / conn_body() / conn_end().  These never close the
 * connection inside the call: a write error is noticed and the
 * connection closed from the loop, so the `aborted` hook never runs
 * inside a handler's own call.  Limits and their answers:
 *   head > HP_MAX_HEAD_BYTES or too many fields  -> 431, close
 *   body > the limit head() gave                 -> 413, close
 *   malformed head or smuggling-prone framing    -> 400, close
 *   head not complete within SRV_HEAD_TIMEOUT_MS -> 408, close
 *   idle keep-alive past SRV_IDLE_TIMEOUT_MS     -> close
 *   more than max_connections                    -> 503, close
 * One access log line per request. */
#ifndef AUTOSWITCH_SERVER_H
#define AUTOSWITCH_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "event.h"
#include "http_parse.h"
#include "loop.h"

#define SRV_HEAD_TIMEOUT_MS 10000     /* slowloris: whole head within this */
#define SRV_IDLE_TIMEOUT_MS 60000     /* keep-alive connection with no request */
#define SRV_BODY_TIMEOUT_MS 60000     /* no body bytes for this long -> 408 */
#define SRV_BODY_GRACE_MS 20000       /* a body's first seconds, before its rate counts */
#define SRV_BODY_MIN_RATE 1024        /* bytes/s a body must average after the grace -> else 408 */
#define SRV_LARGE_BODY (1u << 20)     /* bodies above this are refused (503) when the budget cannot hold them */
#define SRV_SEND_TIMEOUT_MS 60000     /* client reads nothing for this long -> close */
#define SRV_DRAIN_TIMEOUT_MS 30000    /* SIGTERM: finish requests within this */
#define SRV_READ_CHUNK 16384          /* bytes per read() */
#define SRV_PIPELINE_MAX 65536        /* unparsed input held while a request runs */
#define SRV_OUT_HIGH 65536            /* above: producers pause (backpressure) */
#define SRV_OUT_LOW 16384             /* below again: producers resume */

struct conn;
struct request;

/* What the application does with requests (see the top of this file). */
struct server_handlers {
    /* The head is parsed; nothing of the body is read yet.  Return true
     * to read the body (at most *max_body bytes, preset to the global
     * limit) and then get serve(); false after answering from the head. */
    bool (*head)(struct conn *c, struct request *r, uint64_t *max_body);
    void (*serve)(struct conn *c, struct request *r);
    /* Every request that passed through head() ends here once: answered,
     * or its connection closed.  Release what head() took. */
    void (*done)(struct conn *c, struct request *r);
};

/* A handler that answers later registers these on the connection. */
struct conn_hooks {
    void (*drained)(void *ctx);   /* output fell below SRV_OUT_LOW */
    void (*aborted)(void *ctx);   /* the client went away; conn is dying */
    void *ctx;
};

/* A parsed request head: hp_request's fields, with the header views in a
 * block sized for them (a connection that waits or streams does not carry
 * room for HP_MAX_HEADERS fields: 3 KiB each). */
struct hp_head {
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    int minor_version;
    size_t num_headers;
    struct hp_header *headers;
    size_t headers_alloc;         /* its mem_get size */
};

/* One parsed request.  Views point into `head`, which the request owns. */
struct request {
    struct buf head;
    struct hp_head hp;
    struct hp_framing framing;
    struct buf body;
    const char *path;             /* target up to '?' */
    size_t path_len;
    const char *query;            /* after '?', or NULL */
    size_t query_len;
    bool is_head;                 /* HEAD: answer without a body */
    enum dialect dialect;         /* the shape of errors the server itself answers (the router sets it) */
    uint64_t start_ms;
    /* filled while answering, for the access log */
    int status;
    uint64_t bytes_out;
    struct buf note;              /* extra access-log text from the handler */
    bool quiet;                   /* routine polling: access line at DEBUG when it succeeds */
    uint64_t body_charge;         /* bytes of body counted in the budget (budget.h); whoever
                                     takes the body takes its charge and gives it back */
    bool cors;                    /* the answer may be read by a page of any origin */
    char client[46];              /* the client's address for limits and logs: the peer, or what a
                                     trusted proxy says (set by head()) */
    void *app;                    /* the application's own state, from head() to done() */
    void *who;                    /* the caller, as the application identified it (opaque here) */
};

/* Start listening on addr (NULL: all IPv4 and IPv6) and port.  0 or -1
 * (errors logged). */
int server_listen(const char *addr, int port);
int server_port(void);
void server_set_handlers(const struct server_handlers *h);
void server_set_limits(uint64_t max_body_bytes, int max_connections);
/* Requests answered since start (rejections included). */
uint64_t server_requests(void);
/* Free at least need bytes of the budget by cutting the clients that read
 * slowest what is queued for them (the largest stalled queues first).
 * Never closes inside the call: a cut connection is closed by the loop.
 * Returns the bytes freed. */
uint64_t server_reclaim(uint64_t need);
/* Stop accepting, close idle connections, let running requests finish
 * (up to SRV_DRAIN_TIMEOUT_MS), then call done(). */
void server_drain(void (*done)(void));
void server_close_all(void);
size_t server_conn_count(void);

/* Value of a query parameter of r (not decoded), or NULL. */
const char *request_query_param(const struct request *r, const char *name, size_t *len);

/* The request being answered on c. */
struct request *conn_request(struct conn *c);
/* Client address as text ("127.0.0.1", "::1"). */
const char *conn_peer(const struct conn *c);
bool conn_http10(const struct conn *c);

/* A complete response in one call.  extra_headers: preformatted
 * "Name: value\r\n" lines or NULL. */
void conn_respond(struct conn *c, int status, const char *content_type,
                  const char *extra_headers, const void *body, size_t len);

/* A response produced over time.  content_length < 0: length unknown, sent
 * chunked to HTTP/1.1 clients and close-delimited to HTTP/1.0 ones. */
void conn_begin(struct conn *c, int status, const char *content_type,
                const char *extra_headers, int64_t content_length);
void conn_body(struct conn *c, const void *p, size_t n);
void conn_end(struct conn *c);
/* Bytes queued but not yet written to the client. */
size_t conn_pending(const struct conn *c);
void conn_set_hooks(struct conn *c, const struct conn_hooks *h);
/* Close after this response even if keep-alive was possible. */
void conn_close_after(struct conn *c);

#endif
