/* client: outgoing HTTP/1.1 exchanges with upstreams, and the keep-alive
 * pool.
 *
 * An exchange resolves the host (dns), connects (each address in turn,
 * each within the connect timeout), speaks through an xport (plain or
 * TLS), writes the prepared request and parses the response: head, then
 * a Content-Length, chunked or close-delimited body handed over as it
 * arrives.  Idle connections wait in a pool per origin.  A pooled
 * connection that fails before the first response byte is retried once on
 * a fresh connection: the upstream merely closed an idle connection, which
 * says nothing about its health.  Time limits other than the connect
 * timeout belong to the caller, who aborts. */
#ifndef AUTOSWITCH_CLIENT_H
#define AUTOSWITCH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "http_parse.h"

#define UP_MAX_HEAD_BYTES 65536          /* response head limit */
#define UP_CONNECT_TIMEOUT_MS 10000      /* per address */
#define UP_POOL_IDLE_PER_ORIGIN 64
#define UP_POOL_IDLE_TIMEOUT_MS 30000
#define UP_READ_CHUNK 16384

struct upstream;

/* Why an exchange failed: it decides what the caller tries next. */
enum up_error {
    UP_ERR_CONNECT,    /* no exchange happened: DNS, connect, TLS handshake, the CA bundle */
    UP_ERR_LOST,       /* the connection broke after it carried the request */
    UP_ERR_PROTOCOL,   /* the answer broke HTTP: bad head, lying framing, bytes after the end */
    UP_ERR_LOCAL,      /* our own resources: out of memory or descriptors (not the upstream's fault) */
};

struct up_callbacks {
    /* The final response head (1xx skipped).  Return 0 to go on reading
     * the body, -1 to abandon the exchange (no further callbacks). */
    int (*head)(void *ctx, const struct hp_response *res);
    /* Body bytes, de-chunked.  0 to go on, -1 to abandon. */
    int (*body)(void *ctx, const char *p, size_t n);
    /* The body ended where its framing says.  The exchange is over.
     * clean: false for a body framed by the connection's close that ended
     * with a TLS connection closed without close_notify, i.e. possibly
     * cut by whoever sits on the path (streams judge by their events;
     * a whole answer must not be trusted). */
    void (*done)(void *ctx, bool clean);
    /* The exchange failed; it is over. */
    void (*fail)(void *ctx, enum up_error kind, const char *reason);
};

struct up_request {
    const struct cfg_url *url;
    const char *ca_file;             /* https: trust bundle, NULL = default */
    struct buf data;                 /* the whole request: head and body (taken) */
    uint64_t connect_timeout_ms;     /* 0: UP_CONNECT_TIMEOUT_MS */
};

/* Start an exchange.  The callbacks run later, from the loop, never
 * inside this call.  NULL when out of memory. */
struct upstream *up_start(struct up_request *rq, const struct up_callbacks *cb, void *ctx);
/* Stop (or resume) reading the response: backpressure from a slow client. */
void up_pause(struct upstream *u, bool paused);
/* End the exchange now, without callbacks; its connection is closed. */
void up_abort(struct upstream *u);
/* Whether the exchange runs on a connection taken from the pool. */
bool up_reused(const struct upstream *u);

size_t up_pool_idle_count(void);
/* Close every idle pooled connection. */
void up_pool_clear(void);

#endif
