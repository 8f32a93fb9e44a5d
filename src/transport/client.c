#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns.h"
#include "log.h"
#include "loop.h"
#include "tls.h"
#include "xport.h"

#define READS_PER_WAKE 4     /* bounded, so one busy upstream cannot starve others */

/* A connection to an origin: in the pool, or carrying one exchange. */
struct upconn {
    struct upconn *next;         /* in its pool's idle list */
    struct pool *pool;
    struct xport *x;
    struct loop_timer idle_timer;
};

struct pool {
    struct pool *next;
    char *key;
    struct upconn *idle;         /* most recently used first */
    size_t nidle;
};

enum up_state { U_RESOLVE, U_CONNECT, U_ACTIVE, U_DONE };

struct upstream {
    enum up_state state;
    struct up_callbacks cb;
    void *ctx;
    char *host;
    uint16_t port;
    bool https;
    char *ca_file;
    char *key;                   /* pool key */
    struct buf data;             /* request bytes; kept for one retry */
    size_t sent;
    bool sent_all;
    bool write_broken;           /* the upstream stopped reading: just read its answer */
    struct dns_lookup *dns;
    struct dns_addr addrs[DNS_MAX_ADDRS];
    size_t naddrs, next_addr;
    int fd;                      /* socket while connecting */
    struct loop_timer timer;     /* connect timeout */
    uint64_t connect_timeout;
    struct upconn *conn;
    bool reused, retried;
    bool got_byte, got_head;
    struct buf head;
    struct hp_framing framing;
    struct hp_chunked chunked;
    uint64_t remaining;
    bool paused;
    char last_connect_err[160];
    bool local_err;              /* the last connect attempt failed for want of our own resources */
    size_t alloc;                /* block size from mem_get */
};

static struct pool *pools;
static size_t idle_total;
static char scratch[UP_READ_CHUNK];

static void up_on_io(void *ctx, int revents);
static void up_fail(struct upstream *u, enum up_error kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void up_update(struct upstream *u);
static void connect_next(struct upstream *u);
static void begin_resolve(struct upstream *u);

/* ---------------- pool ---------------- */

static struct pool *pool_get(const char *key)
{
    for (struct pool *p = pools; p; p = p->next)
        if (strcmp(p->key, key) == 0)
            return p;
    struct pool *p = calloc(1, sizeof *p);
    if (!p || !(p->key = strdup(key))) {
        free(p);
        return NULL;
    }
    p->next = pools;
    pools = p;
    return p;
}

static void conn_free(struct upconn *c)
{
    loop_timer_stop(&c->idle_timer);
    if (c->x) {
        loop_del(c->x->fd);
        xport_free(c->x);
    }
    free(c);
}

static void pool_unlink(struct upconn *c)
{
    struct pool *p = c->pool;
    for (struct upconn **pp = &p->idle; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            p->nidle--;
            idle_total--;
            break;
        }
    }
    c->next = NULL;
}

static void pool_on_idle_io(void *ctx, int revents)
{
    (void)revents;
    /* An idle connection has nothing to say: readable means the upstream
     * closed it (or sent garbage).  Either way it is not reusable. */
    struct upconn *c = ctx;
    pool_unlink(c);
    conn_free(c);
}

static void pool_on_idle_timeout(void *ctx)
{
    struct upconn *c = ctx;
    pool_unlink(c);
    conn_free(c);
}

static void pool_put(struct upconn *c)
{
    struct pool *p = c->pool;
    if (p->nidle >= UP_POOL_IDLE_PER_ORIGIN) {
        conn_free(c);
        return;
    }
    loop_del(c->x->fd);
    if (loop_add(c->x->fd, POLLIN, pool_on_idle_io, c) < 0) {
        c->x->ops->free(c->x);
        c->x = NULL;
        conn_free(c);
        return;
    }
    loop_coldable(c->x->fd, true);   /* it waits only for the origin closing it */
    c->next = p->idle;
    p->idle = c;
    p->nidle++;
    idle_total++;
    loop_timer_init(&c->idle_timer, pool_on_idle_timeout, c);
    loop_timer_set(&c->idle_timer, UP_POOL_IDLE_TIMEOUT_MS);
}

static struct upconn *pool_take(const char *key)
{
    for (struct pool *p = pools; p; p = p->next) {
        if (strcmp(p->key, key) != 0)
            continue;
        struct upconn *c = p->idle;
        if (!c)
            return NULL;
        pool_unlink(c);
        loop_timer_stop(&c->idle_timer);
        loop_del(c->x->fd);
        return c;
    }
    return NULL;
}

size_t up_pool_idle_count(void)
{
    return idle_total;
}

void up_pool_clear(void)
{
    while (pools) {
        struct pool *p = pools;
        pools = p->next;
        while (p->idle) {
            struct upconn *c = p->idle;
            pool_unlink(c);
            conn_free(c);
        }
        free(p->key);
        free(p);
    }
}

/* ---------------- exchange lifetime ---------------- */

static void up_free_deferred(void *p)
{
    struct upstream *u = p;
    buf_free(&u->data);
    buf_free(&u->head);
    free(u->host);
    free(u->ca_file);
    free(u->key);
    mem_put(u, u->alloc);
}

/* Release everything the exchange holds except the struct itself. */
static void up_release(struct upstream *u, bool keep_conn)
{
    loop_timer_stop(&u->timer);
    if (u->dns) {
        dns_cancel(u->dns);
        u->dns = NULL;
    }
    if (u->fd >= 0) {
        loop_del(u->fd);
        close(u->fd);
        u->fd = -1;
    }
    if (u->conn) {
        if (keep_conn)
            pool_put(u->conn);
        else
            conn_free(u->conn);
        u->conn = NULL;
    }
    u->state = U_DONE;
    loop_defer(up_free_deferred, u);
}

void up_abort(struct upstream *u)
{
    if (u && u->state != U_DONE)
        up_release(u, false);
}

bool up_reused(const struct upstream *u)
{
    return u->reused;
}

/* A reused connection that failed before any byte of an answer: the
 * upstream had closed it while idle.  Try once more on a new one. */
static bool retry_fresh(struct upstream *u)
{
    if (!u->reused || u->retried || u->got_byte)
        return false;
    u->retried = true;
    u->reused = false;
    conn_free(u->conn);
    u->conn = NULL;
    u->sent = 0;
    u->sent_all = false;
    u->write_broken = false;
    buf_clear(&u->head);
    begin_resolve(u);
    return true;
}

static void up_fail(struct upstream *u, enum up_error kind, const char *fmt, ...)
{
    if (u->state == U_DONE)
        return;
    if (u->state == U_ACTIVE && retry_fresh(u))
        return;
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    up_release(u, false);
    if (u->cb.fail)
        u->cb.fail(u->ctx, kind, reason);
}

static void up_finish(struct upstream *u, size_t extra)
{
    if (extra) {
        /* Nothing may follow a response we did not ask for: the framing
         * lied or the upstream is broken.  The body is not trusted. */
        up_fail(u, UP_ERR_PROTOCOL, "upstream sent %zu bytes after the end of the response", extra);
        return;
    }
    bool keep = u->framing.keep_alive && u->sent_all && !u->write_broken;
    bool clean = u->framing.body != HP_BODY_UNTIL_CLOSE || (xport_state(u->conn->x) & XPORT_CLEAN_END);
    up_release(u, keep);
    if (u->cb.done)
        u->cb.done(u->ctx, clean);
}

/* ---------------- response parsing ---------------- */

/* Body bytes p[0, n).  Returns false when the exchange ended. */
static bool consume_body(struct upstream *u, const char *p, size_t n)
{
    switch (u->framing.body) {
    case HP_BODY_NONE:
        up_finish(u, n);
        return false;
    case HP_BODY_UNTIL_CLOSE:
        if (n && u->cb.body(u->ctx, p, n) < 0) {
            up_abort(u);
            return false;
        }
        return true;
    case HP_BODY_LENGTH: {
        size_t take = n < u->remaining ? n : (size_t)u->remaining;
        if (take && u->cb.body(u->ctx, p, take) < 0) {
            up_abort(u);
            return false;
        }
        if (u->state == U_DONE)
            return false;
        u->remaining -= take;
        if (u->remaining == 0) {
            up_finish(u, n - take);
            return false;
        }
        return true;
    }
    case HP_BODY_CHUNKED:
        while (n > 0) {
            size_t used = 0;
            const char *data;
            size_t dlen;
            enum hp_chunk_result r = hp_chunked_decode(&u->chunked, p, n, &used, &data, &dlen);
            p += used;
            n -= used;
            if (r == HP_CHUNK_ERROR) {
                up_fail(u, UP_ERR_PROTOCOL, "malformed chunked body from upstream");
                return false;
            }
            if (r == HP_CHUNK_DATA) {
                if (u->cb.body(u->ctx, data, dlen) < 0) {
                    up_abort(u);
                    return false;
                }
                if (u->state == U_DONE)
                    return false;
                continue;
            }
            if (r == HP_CHUNK_DONE) {
                up_finish(u, n);
                return false;
            }
            break;   /* NEED_MORE */
        }
        return true;
    }
    return true;
}

static bool consume_head(struct upstream *u, const char *p, size_t n)
{
    if (buf_append(&u->head, p, n) < 0) {
        up_fail(u, UP_ERR_LOCAL, "out of memory reading the response head");
        return false;
    }
    for (;;) {
        struct hp_response res;
        int r = hp_parse_response(buf_head(&u->head), buf_len(&u->head), &res);
        if (r == HP_INCOMPLETE) {
            if (buf_len(&u->head) > UP_MAX_HEAD_BYTES) {
                up_fail(u, UP_ERR_PROTOCOL, "upstream response head larger than %d bytes", UP_MAX_HEAD_BYTES);
                return false;
            }
            return true;
        }
        if (r == HP_TOO_MANY_HEADERS) {
            up_fail(u, UP_ERR_PROTOCOL, "upstream response has more than %d header fields", HP_MAX_HEADERS);
            return false;
        }
        if (r < 0 || r > UP_MAX_HEAD_BYTES) {
            up_fail(u, UP_ERR_PROTOCOL, r < 0 ? "invalid response head from upstream" : "upstream response head too large");
            return false;
        }
        if (res.status >= 100 && res.status < 200 && res.status != 101) {
            buf_consume(&u->head, (size_t)r);   /* interim answer: skip */
            continue;
        }
        if (hp_response_framing(&res, false, &u->framing) < 0) {
            up_fail(u, UP_ERR_PROTOCOL, "invalid body framing in upstream response");
            return false;
        }
        u->got_head = true;
        if (u->framing.body == HP_BODY_CHUNKED)
            hp_chunked_init(&u->chunked);
        u->remaining = u->framing.length;
        if (u->cb.head(u->ctx, &res) < 0) {
            up_abort(u);
            return false;
        }
        if (u->state == U_DONE)
            return false;
        /* Bytes after the head are body; move them out of the head buffer
         * (the views handed to the callback are no longer used). */
        size_t rest = buf_len(&u->head) - (size_t)r;
        if (rest == 0) {
            buf_free(&u->head);
            if (u->framing.body == HP_BODY_NONE || (u->framing.body == HP_BODY_LENGTH && u->remaining == 0)) {
                up_finish(u, 0);
                return false;
            }
            return true;
        }
        struct buf tail = BUF_INIT;
        buf_append(&tail, buf_head(&u->head) + r, rest);
        buf_free(&u->head);
        bool go = consume_body(u, buf_head(&tail), buf_len(&tail));
        buf_free(&tail);
        return go;
    }
}

static void on_eof(struct upstream *u)
{
    if (!u->got_head) {
        if (u->got_byte)
            up_fail(u, UP_ERR_LOST, "upstream closed the connection in the middle of the response head");
        else
            up_fail(u, UP_ERR_LOST, "upstream closed the connection without answering");
        return;
    }
    if (u->framing.body == HP_BODY_UNTIL_CLOSE) {
        u->framing.keep_alive = false;
        up_finish(u, 0);
        return;
    }
    up_fail(u, UP_ERR_LOST, "upstream closed the connection before the end of the body");
}

static void do_read(struct upstream *u)
{
    for (int i = 0; i < READS_PER_WAKE && u->state == U_ACTIVE && !u->paused; i++) {
        ssize_t n = xport_read(u->conn->x, scratch, sizeof scratch);
        if (n > 0) {
            u->got_byte = true;
            if (!u->got_head)
                consume_head(u, scratch, (size_t)n);
            else
                consume_body(u, scratch, (size_t)n);
            /* A short read emptied the socket: asking again would only
             * return EAGAIN (a wasted system call per stream event). */
            if ((size_t)n < sizeof scratch && u->state == U_ACTIVE && !xport_buffered(u->conn->x))
                return;
            continue;
        }
        if (n == 0) {
            on_eof(u);
            return;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        up_fail(u, xport_state(u->conn->x) & XPORT_ESTABLISHED ? UP_ERR_LOST : UP_ERR_CONNECT, "%s",
                xport_error(u->conn->x));
        return;
    }
}

static void do_write(struct upstream *u)
{
    struct xport *x = u->conn->x;
    while (!u->sent_all && !u->write_broken) {
        if (u->sent < buf_len(&u->data)) {
            ssize_t n = xport_write(x, buf_head(&u->data) + u->sent, buf_len(&u->data) - u->sent);
            if (n > 0) {
                u->sent += (size_t)n;
                continue;
            }
        } else {
            if (xport_flush(x) == 0) {
                u->sent_all = true;
                return;
            }
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        /* The upstream may have answered early (413, 401) and stopped
         * reading: its answer, if any, is still to be read. */
        u->write_broken = true;
        return;
    }
}

static void up_on_io(void *ctx, int revents)
{
    struct upstream *u = ctx;
    if (u->state != U_ACTIVE)
        return;
    if ((revents & (POLLOUT | POLLERR | POLLHUP)) && !u->sent_all && !u->write_broken)
        do_write(u);
    if (u->state != U_ACTIVE)
        return;
    if (revents & (POLLIN | POLLERR | POLLHUP) || u->write_broken || xport_buffered(u->conn->x))
        do_read(u);
    if (u->state == U_ACTIVE)
        up_update(u);
}

static void up_update(struct upstream *u)
{
    if (u->state != U_ACTIVE)
        return;
    short want = 0;
    if (!u->paused)
        want |= POLLIN;
    if (!u->sent_all && !u->write_broken)
        want |= POLLOUT;
    loop_mod(u->conn->x->fd, xport_events(u->conn->x, want));
    if (!u->paused && xport_buffered(u->conn->x))
        loop_wake(u->conn->x->fd, POLLIN);
}

void up_pause(struct upstream *u, bool paused)
{
    if (!u || u->state != U_ACTIVE || u->paused == paused)
        return;
    u->paused = paused;
    up_update(u);
    if (!paused)
        loop_wake(u->conn->x->fd, POLLIN);
}

/* ---------------- connecting ---------------- */

static void start_active(struct upstream *u)
{
    u->state = U_ACTIVE;
    if (loop_add(u->conn->x->fd, POLLOUT, up_on_io, u) < 0) {
        up_fail(u, UP_ERR_LOCAL, "out of memory");
        return;
    }
    /* Write from the loop, so no callback can run inside up_start. */
    loop_wake(u->conn->x->fd, POLLOUT);
}

static void format_addr(const struct dns_addr *a, uint16_t port, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    inet_ntop(a->family, a->family == AF_INET ? (const void *)&a->a.v4 : (const void *)&a->a.v6, ip, sizeof ip);
    snprintf(out, cap, a->family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
}

static void connected(struct upstream *u)
{
    loop_timer_stop(&u->timer);
    loop_del(u->fd);
    struct upconn *c = calloc(1, sizeof *c);
    struct pool *p = pool_get(u->key);
    if (!c || !p) {
        free(c);
        up_fail(u, UP_ERR_LOCAL, "out of memory");
        return;
    }
    c->pool = p;
    int fd = u->fd;
    u->fd = -1;
    if (u->https) {
        char err[200];
        struct tls_origin *o = tls_origin_get(u->host, u->port, u->ca_file, err, sizeof err);
        if (!o) {
            close(fd);
            free(c);
            up_fail(u, UP_ERR_CONNECT, "tls: %s", err);
            return;
        }
        c->x = xport_tls(fd, u->host, o);
    } else {
        c->x = xport_plain(fd);
        if (!c->x)
            close(fd);
    }
    if (!c->x) {
        free(c);
        up_fail(u, UP_ERR_LOCAL, "out of memory");
        return;
    }
    u->conn = c;
    start_active(u);
}

static void connect_failed(struct upstream *u, const char *why)
{
    char where[INET6_ADDRSTRLEN + 16];
    format_addr(&u->addrs[u->next_addr - 1], u->port, where, sizeof where);
    snprintf(u->last_connect_err, sizeof u->last_connect_err, "connect %s: %s", where, why);
    loop_timer_stop(&u->timer);
    loop_del(u->fd);
    close(u->fd);
    u->fd = -1;
    connect_next(u);
}

static void on_connect_io(void *ctx, int revents)
{
    (void)revents;
    struct upstream *u = ctx;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == 0 && !(revents & POLLOUT))
        return;
    if (err)
        connect_failed(u, strerror(err));
    else
        connected(u);
}

static void on_connect_timeout(void *ctx)
{
    struct upstream *u = ctx;
    if (u->state == U_CONNECT)
        connect_failed(u, "timed out");
}

static void connect_next(struct upstream *u)
{
    while (u->next_addr < u->naddrs) {
        const struct dns_addr *a = &u->addrs[u->next_addr++];
        struct sockaddr_storage ss;
        socklen_t slen;
        memset(&ss, 0, sizeof ss);
        if (a->family == AF_INET) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            s4->sin_family = AF_INET;
            s4->sin_port = htons(u->port);
            s4->sin_addr = a->a.v4;
            slen = sizeof *s4;
        } else {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons(u->port);
            s6->sin6_addr = a->a.v6;
            slen = sizeof *s6;
        }
        int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            /* Out of descriptors or memory is the gateway's own problem. */
            u->local_err = errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS;
            snprintf(u->last_connect_err, sizeof u->last_connect_err, "socket: %s", strerror(errno));
            continue;
        }
        u->local_err = false;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        u->fd = fd;
        if (connect(fd, (struct sockaddr *)&ss, slen) == 0 || errno == EINPROGRESS) {
            if (loop_add(fd, POLLOUT, on_connect_io, u) < 0) {
                close(fd);
                u->fd = -1;
                continue;
            }
            loop_timer_init(&u->timer, on_connect_timeout, u);
            loop_timer_set(&u->timer, u->connect_timeout);
            return;
        }
        char where[INET6_ADDRSTRLEN + 16];
        format_addr(a, u->port, where, sizeof where);
        snprintf(u->last_connect_err, sizeof u->last_connect_err, "connect %s: %s", where, strerror(errno));
        close(fd);
        u->fd = -1;
    }
    up_fail(u, u->local_err ? UP_ERR_LOCAL : UP_ERR_CONNECT, "%s", u->last_connect_err[0] ? u->last_connect_err : "no address to connect to");
}

static void on_resolved(void *ctx, const struct dns_addr *addrs, size_t n, const char *err)
{
    struct upstream *u = ctx;
    u->dns = NULL;
    if (err || n == 0) {
        up_fail(u, UP_ERR_CONNECT, "dns: %s: %s", u->host, err ? err : "no address");
        return;
    }
    if (n > DNS_MAX_ADDRS)
        n = DNS_MAX_ADDRS;
    memcpy(u->addrs, addrs, n * sizeof *addrs);
    u->naddrs = n;
    u->next_addr = 0;
    u->state = U_CONNECT;
    connect_next(u);
}

static void on_resolve_oom(void *ctx)
{
    struct upstream *u = ctx;
    up_fail(u, UP_ERR_LOCAL, "dns: %s: out of memory", u->host);
}

static void begin_resolve(struct upstream *u)
{
    u->state = U_RESOLVE;
    u->got_byte = u->got_head = false;
    u->dns = dns_resolve(u->host, on_resolved, u);
    if (!u->dns) {
        /* Report from the loop: callbacks never run inside up_start. */
        loop_timer_init(&u->timer, on_resolve_oom, u);
        loop_timer_set(&u->timer, 0);
    }
}

struct upstream *up_start(struct up_request *rq, const struct up_callbacks *cb, void *ctx)
{
    if (buf_failed(&rq->data) || !rq->url)
        return NULL;   /* a request built after an allocation failed: never half of it */
    size_t alloc;
    struct upstream *u = mem_get(sizeof *u, &alloc);
    if (!u)
        return NULL;
    memset(u, 0, sizeof *u);
    u->alloc = alloc;
    u->cb = *cb;
    u->ctx = ctx;
    u->fd = -1;
    u->https = rq->url->https;
    u->port = rq->url->port;
    u->host = strdup(rq->url->host);
    u->ca_file = rq->ca_file ? strdup(rq->ca_file) : NULL;
    u->connect_timeout = rq->connect_timeout_ms ? rq->connect_timeout_ms : UP_CONNECT_TIMEOUT_MS;
    size_t klen = strlen(rq->url->host) + (rq->ca_file ? strlen(rq->ca_file) : 0) + 32;
    u->key = malloc(klen);
    if (!u->host || !u->key || (rq->ca_file && !u->ca_file)) {
        free(u->host);
        free(u->ca_file);
        free(u->key);
        mem_put(u, u->alloc);
        return NULL;
    }
    snprintf(u->key, klen, "%s|%s|%u|%s", u->https ? "https" : "http", u->host, u->port,
             rq->ca_file ? rq->ca_file : "");
    u->data = rq->data;
    memset(&rq->data, 0, sizeof rq->data);
    loop_timer_init(&u->timer, on_connect_timeout, u);

    struct upconn *c = pool_take(u->key);
    if (c) {
        u->conn = c;
        u->reused = true;
        start_active(u);
        return u;
    }
    begin_resolve(u);
    return u;
}
