/* xport: the byte transport under an upstream connection, plain TCP or TLS.
 *
 * The upstream client speaks HTTP through these operations and never
 * knows which transport it has: that is the seam BearSSL slots into.
 * All operations are non-blocking.  The fd belongs to the transport and
 * is closed by free(). */
#ifndef AUTOSWITCH_XPORT_H
#define AUTOSWITCH_XPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct xport;

struct xport_ops {
    /* > 0 bytes read; 0 orderly end of stream; -1 with errno EAGAIN when
     * nothing can be read now, or another errno on failure (then error()
     * has the text). */
    ssize_t (*read)(struct xport *x, void *p, size_t n);
    /* > 0 bytes accepted; -1 with errno EAGAIN or a failure as above. */
    ssize_t (*write)(struct xport *x, const void *p, size_t n);
    /* Push out everything accepted so far (TLS: close the record).
     * 0 when all was written, -1 with EAGAIN when more remains, or failure. */
    int (*flush)(struct xport *x);
    /* The poll events to wait for, given what the caller wants next
     * (POLLIN to read, POLLOUT to write, both or 0).  TLS may need the
     * other direction (handshake, pending records). */
    short (*events)(struct xport *x, short want);
    /* Data is already buffered in user space: read() will not block, so
     * the caller must not sleep in poll() before reading. */
    bool (*buffered)(struct xport *x);
    /* Human-readable cause of the last failure, e.g. "connection reset by
     * peer" or "tls: certificate not trusted". */
    const char *(*error)(struct xport *x);
    /* Whether the secure session was resumed (TLS) - for tests and stats. */
    bool (*resumed)(struct xport *x);
    /* XPORT_* bits: what the transport can say about itself. */
    unsigned (*state)(struct xport *x);
    void (*free)(struct xport *x);
};

#define XPORT_ESTABLISHED 1u   /* application bytes can flow (TLS: the handshake is done) */
#define XPORT_CLEAN_END 2u     /* the peer ended properly (TLS: close_notify, not a bare TCP close) */

struct xport {
    const struct xport_ops *ops;
    int fd;
};

/* Plain TCP over a connected (or connecting) non-blocking socket. */
struct xport *xport_plain(int fd);

static inline ssize_t xport_read(struct xport *x, void *p, size_t n) { return x->ops->read(x, p, n); }
static inline ssize_t xport_write(struct xport *x, const void *p, size_t n) { return x->ops->write(x, p, n); }
static inline int xport_flush(struct xport *x) { return x->ops->flush(x); }
static inline short xport_events(struct xport *x, short want) { return x->ops->events(x, want); }
static inline bool xport_buffered(struct xport *x) { return x->ops->buffered(x); }
static inline const char *xport_error(struct xport *x) { return x->ops->error(x); }
static inline unsigned xport_state(struct xport *x) { return x->ops->state(x); }
static inline void xport_free(struct xport *x) { if (x) x->ops->free(x); }

#endif
