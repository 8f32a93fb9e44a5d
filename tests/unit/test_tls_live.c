/* The TLS transport against real TLS servers on loopback, through the
 * real loop, the way the upstream client drives it: a non-blocking
 * connect, xport_tls at once, writes until EAGAIN then flush, reads until
 * EAGAIN, poll events from xport_events and a wake when xport_buffered.
 *
 * The servers (tests/tls_echo_server.py) and their certificates are made
 * by tests/integration/tls_live.t, which passes their ports in the
 * environment; run directly, without them, this test skips. */
#include "loop.h"
#include "log.h"
#include "tap.h"
#include "tls.h"
#include "xport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define XFER_TIMEOUT_MS 15000    /* per exchange: far above what any needs */
#define TICK_MS 100
#define READS_PER_WAKE 16
#define READ_CHUNK 16384
#define BIG_DOWNLOAD 1000000     /* bytes, /big */
#define UPLOAD_BYTES (3u << 20)  /* /sink */
#define EARLY_UPLOAD (6u << 20)  /* /early: more than loopback socket buffers hold */
#define HOLD_MS 5000             /* /early_hold keeps the connection this long */
#define QUIET_WAKES_MAX 40       /* wakes allowed while a server thinks for 0.5 s */
#define PATTERN_MOD 251

static const char *ca_path;

/* ---------------- one exchange on an xport ---------------- */

struct xfer {
    struct xport *x;
    const char *req;
    size_t req_len, sent;
    bool sent_all, write_broken, done, eof, failed;
    char *resp;
    size_t resp_len, resp_cap;
    size_t head_len;       /* 0 until the head is complete */
    long long body_len;    /* Content-Length, -1 when none */
    char err[160];
    unsigned wakes;
};

static void append(struct xfer *f, const char *p, size_t n)
{
    if (f->resp_len + n + 1 > f->resp_cap) {
        size_t cap = f->resp_cap ? f->resp_cap : 4096;
        while (cap < f->resp_len + n + 1)
            cap *= 2;
        char *r = realloc(f->resp, cap);
        if (!r)
            abort();
        f->resp = r;
        f->resp_cap = cap;
    }
    memcpy(f->resp + f->resp_len, p, n);
    f->resp_len += n;
    f->resp[f->resp_len] = '\0';
}

static void check_complete(struct xfer *f)
{
    if (!f->head_len) {
        char *end = strstr(f->resp, "\r\n\r\n");
        if (!end)
            return;
        f->head_len = (size_t)(end - f->resp) + 4;
        f->body_len = -1;
        const char *cl = strstr(f->resp, "Content-Length: ");
        if (cl && cl < end)
            f->body_len = atoll(cl + strlen("Content-Length: "));
    }
    if (f->body_len >= 0 && f->resp_len >= f->head_len + (size_t)f->body_len)
        f->done = true;
}

static void fail(struct xfer *f)
{
    snprintf(f->err, sizeof f->err, "%s", xport_error(f->x));
    f->failed = true;
    f->done = true;
}

static void do_write(struct xfer *f)
{
    while (!f->sent_all && !f->write_broken) {
        if (f->sent < f->req_len) {
            ssize_t n = xport_write(f->x, f->req + f->sent, f->req_len - f->sent);
            if (n > 0) {
                f->sent += (size_t)n;
                continue;
            }
        } else if (xport_flush(f->x) == 0) {
            f->sent_all = true;
            return;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        /* as the client does: the server may have answered early */
        f->write_broken = true;
        snprintf(f->err, sizeof f->err, "%s", xport_error(f->x));
    }
}

static void do_read(struct xfer *f)
{
    char buf[READ_CHUNK];
    for (int i = 0; i < READS_PER_WAKE && !f->done; i++) {
        ssize_t n = xport_read(f->x, buf, sizeof buf);
        if (n > 0) {
            append(f, buf, (size_t)n);
            check_complete(f);
            continue;
        }
        if (n == 0) {
            f->eof = true;
            f->done = true;
            return;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            fail(f);
        return;
    }
}

static void update(struct xfer *f)
{
    short want = POLLIN;
    if (!f->sent_all && !f->write_broken)
        want |= POLLOUT;
    loop_mod(f->x->fd, xport_events(f->x, want));
    if (xport_buffered(f->x))
        loop_wake(f->x->fd, POLLIN);
}

static void on_io(void *ctx, int revents)
{
    struct xfer *f = ctx;
    f->wakes++;
    if ((revents & (POLLOUT | POLLERR | POLLHUP)) && !f->sent_all && !f->write_broken)
        do_write(f);
    if (!f->done && ((revents & (POLLIN | POLLERR | POLLHUP)) || f->write_broken || xport_buffered(f->x)))
        do_read(f);
    if (!f->done)
        update(f);
}

static void xfer_reset(struct xfer *f, struct xport *x, const char *req, size_t len)
{
    free(f->resp);
    memset(f, 0, sizeof *f);
    f->x = x;
    f->req = req;
    f->req_len = len;
}

/* Run one request/response on x through the loop.  false on timeout. */
static bool xfer_run(struct xfer *f)
{
    if (loop_add(f->x->fd, POLLOUT, on_io, f) < 0)
        return false;
    loop_wake(f->x->fd, POLLOUT);
    uint64_t deadline = loop_clock() + XFER_TIMEOUT_MS;
    while (!f->done && loop_now() < deadline)
        loop_run_once(TICK_MS);
    loop_del(f->x->fd);
    return f->done;
}

static const char *body(const struct xfer *f)
{
    return f->head_len ? f->resp + f->head_len : "";
}

/* ---------------- connections ---------------- */

static int connect_port(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;  /* still connecting: the transport must cope */
}

static struct xport *open_tls(unsigned port, const char *host, const char *ca)
{
    char err[200];
    struct tls_origin *o = tls_origin_get(host, port, ca, err, sizeof err);
    if (!o) {
        printf("# tls_origin_get: %s\n", err);
        return NULL;
    }
    int fd = connect_port(port);
    if (fd < 0)
        return NULL;
    return xport_tls(fd, host, o);
}

static const char get_hello[] = "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";

/* One GET on a new connection; the transport is freed, the result kept in f. */
static bool fetch_once(struct xfer *f, unsigned port, const char *host, const char *req, bool *resumed)
{
    struct xport *x = open_tls(port, host, ca_path);
    if (!x)
        return false;
    xfer_reset(f, x, req, strlen(req));
    bool ran = xfer_run(f);
    if (resumed)
        *resumed = tls_resumed(x);
    xport_free(x);
    f->x = NULL;
    return ran;
}

static unsigned env_port(const char *name)
{
    const char *v = getenv(name);
    return v ? (unsigned)atoi(v) : 0;
}

/* A loopback port nobody listens on (bound, then released). */
static unsigned dead_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || getsockname(s, (struct sockaddr *)&sa, &len) < 0) {
        if (s >= 0)
            close(s);
        return 0;
    }
    close(s);
    return ntohs(sa.sin_port);
}

static char *make_upload(const char *path, size_t n, size_t *total, uint32_t *sum)
{
    char head[160];
    int hl = snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n\r\n", path, n);
    char *req = malloc((size_t)hl + n);
    if (!req)
        abort();
    memcpy(req, head, (size_t)hl);
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)(i * 7 + 3);
        req[(size_t)hl + i] = (char)c;
        s += c;
    }
    *total = (size_t)hl + n;
    if (sum)
        *sum = s;
    return req;
}

/* ---------------- the tests ---------------- */

static void test_good(unsigned port)
{
    struct xfer f = { 0 };
    struct xport *x = open_tls(port, "localhost", ca_path);
    ok(x != NULL, "xport_tls over a connecting socket");
    if (!x)
        return;

    xfer_reset(&f, x, get_hello, strlen(get_hello));
    ok(xfer_run(&f), "request/response completes");
    ok(!f.failed, "no error (%s)", f.err);
    ok(strncmp(f.resp ? f.resp : "", "HTTP/1.1 200 OK", 15) == 0, "status 200");
    is_str(body(&f), "hello from good\n", "body");
    ok(!tls_resumed(x), "a first connection is a full handshake");
    ok(f.wakes < 100, "no busy loop (%u wakes)", f.wakes);

    /* keep-alive: a download larger than many records, same connection */
    static const char get_big[] = "GET /big?n=1000000 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    xfer_reset(&f, x, get_big, strlen(get_big));
    ok(xfer_run(&f) && !f.failed, "second request on the kept-alive connection");
    size_t blen = f.head_len ? f.resp_len - f.head_len : 0;
    is_int(blen, BIG_DOWNLOAD, "1 MB body arrives whole");
    bool pattern_ok = blen == BIG_DOWNLOAD;
    for (size_t i = 0; pattern_ok && i < blen; i++)
        pattern_ok = (unsigned char)f.resp[f.head_len + i] == i % PATTERN_MOD;
    ok(pattern_ok, "and intact");

    /* an upload of several records, then flush */
    size_t total;
    uint32_t sum;
    char *up = make_upload("/sink", UPLOAD_BYTES, &total, &sum);
    xfer_reset(&f, x, up, total);
    ok(xfer_run(&f) && !f.failed, "3 MB upload completes");
    char want[64];
    snprintf(want, sizeof want, "len=%u sum=%u", UPLOAD_BYTES, sum);
    is_str(body(&f), want, "the server got every byte");
    free(up);

    /* a slow answer: waiting must not spin */
    static const char get_slow[] = "GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n";
    xfer_reset(&f, x, get_slow, strlen(get_slow));
    ok(xfer_run(&f) && !f.failed, "slow answer arrives");
    ok(f.wakes < QUIET_WAKES_MAX, "no busy loop while the server thinks (%u wakes)", f.wakes);

    xport_free(x);
    free(f.resp);
}

static void test_resume(unsigned port)
{
    struct xfer f = { 0 };
    bool resumed = false;
    static const char get_stats[] = "GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n";
    ok(fetch_once(&f, port, "localhost", get_stats, &resumed) && !f.failed, "second connection works (%s)", f.err);
    ok(resumed, "second connection resumed the session");
    is_str(body(&f), "full=1 resumed=1", "the server did one full handshake only");

    /* after tls_forget the origin is new: no session to offer */
    tls_forget();
    ok(fetch_once(&f, port, "localhost", get_stats, &resumed) && !f.failed, "connection after tls_forget");
    ok(!resumed, "a forgotten origin starts with a full handshake");
    is_str(body(&f), "full=2 resumed=1", "server counted it as full");

    /* a connection alive across tls_forget keeps its origin until freed */
    struct xport *x = open_tls(port, "localhost", ca_path);
    xfer_reset(&f, x, get_hello, strlen(get_hello));
    ok(x && xfer_run(&f) && !f.failed, "request before tls_forget");
    tls_forget();
    xfer_reset(&f, x, get_hello, strlen(get_hello));
    ok(xfer_run(&f) && !f.failed, "the same connection still works after tls_forget");
    xport_free(x);
    free(f.resp);
}

static void test_ip_host(unsigned good, unsigned wrong)
{
    struct xfer f = { 0 };
    ok(fetch_once(&f, good, "127.0.0.1", get_hello, NULL) && !f.failed,
       "IP host: verified against the certificate's iPAddress SAN (%s)", f.err);
    is_str(body(&f), "hello from good\n", "IP host: body");
    static const char get_sni[] = "GET /sni HTTP/1.1\r\nHost: localhost\r\n\r\n";
    ok(fetch_once(&f, good, "127.0.0.1", get_sni, NULL) && !f.failed, "IP host: /sni");
    is_str(body(&f), "sni=-", "IP host: no SNI sent (RFC 6066)");
    ok(fetch_once(&f, good, "localhost", get_sni, NULL) && !f.failed, "name host: /sni");
    is_str(body(&f), "sni=localhost", "name host: SNI sent");
    /* the connection is IPv4 either way: only the name checked differs */
    ok(fetch_once(&f, good, "[::1]", get_hello, NULL) && !f.failed, "IPv6 literal host in brackets (%s)", f.err);
    ok(fetch_once(&f, good, "::2", get_hello, NULL), "IPv6 host not in the certificate: ends");
    is_str(f.err, "tls: host name mismatch", "IPv6 host not in the certificate: host name mismatch");
    ok(fetch_once(&f, wrong, "127.0.0.1", get_hello, NULL), "IP host, no IP SAN: ends");
    is_str(f.err, "tls: host name mismatch", "IP host, no IP SAN: host name mismatch");
    free(f.resp);
}

static void expect_error(unsigned port, const char *host, const char *want, const char *what)
{
    struct xfer f = { 0 };
    bool ran = fetch_once(&f, port, host, get_hello, NULL);
    ok(ran && f.failed, "%s: fails (no hang)", what);
    is_str(f.err, want, "%s: error text", what);
    free(f.resp);
}

static void test_until_close(unsigned port, const char *path, const char *what)
{
    char req[96];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    struct xfer f = { 0 };
    ok(fetch_once(&f, port, "localhost", req, NULL), "%s: ends", what);
    ok(f.eof && !f.failed, "%s: read() returns 0, an orderly end (%s)", what, f.err);
    is_str(body(&f), "until close\n", "%s: whole body before the end", what);
    free(f.resp);
}

static void test_early_answer(unsigned port)
{
    size_t total;
    char *up = make_upload("/early", EARLY_UPLOAD, &total, NULL);
    struct xport *x = open_tls(port, "localhost", ca_path);
    struct xfer f = { 0 };
    xfer_reset(&f, x, up, total);
    ok(x && xfer_run(&f), "upload answered early: ends, no hang");
    bool got413 = f.resp && strncmp(f.resp, "HTTP/1.1 413", 12) == 0;
    ok(got413 || (f.failed && f.err[0]), "reported sanely: %s",
       got413 ? "the 413 answer was read" : f.err);
    if (got413)
        printf("# early answer read after %zu of %zu request bytes%s%s\n", f.sent, total,
               f.write_broken ? "; write failed: " : "", f.write_broken ? f.err : "");
    ok(f.sent < total || f.write_broken || got413, "the upload did not pretend to succeed silently");
    xport_free(x);
    free(up);
    free(f.resp);
}

/* The server answers and then neither reads nor closes: the upload stalls
 * with records unsent, and only a full-duplex engine can still take the
 * answer in (a half-duplex buffer would wait for the server to give up). */
static void test_early_answer_held(unsigned port)
{
    size_t total;
    char *up = make_upload("/early_hold", EARLY_UPLOAD, &total, NULL);
    struct xport *x = open_tls(port, "localhost", ca_path);
    struct xfer f = { 0 };
    xfer_reset(&f, x, up, total);
    uint64_t start = loop_clock();
    ok(x && xfer_run(&f), "upload answered early, connection held: ends");
    ok(f.resp && strncmp(f.resp, "HTTP/1.1 413", 12) == 0 && !f.failed && !f.write_broken,
       "the answer is read while the upload is stuck (%s)", f.err);
    ok(loop_clock() - start < HOLD_MS, "before the server gives up (%llu ms)",
       (unsigned long long)(loop_clock() - start));
    ok(f.sent < total, "with the upload unfinished (%zu of %zu bytes)", f.sent, total);
    xport_free(x);
    free(up);
    free(f.resp);
}

/* A server that demands a client certificate ends our handshake with a
 * fatal alert (handshake_failure, 40, from OpenSSL for TLS 1.2). */
static void test_alert(unsigned port)
{
    struct xfer f = { 0 };
    ok(fetch_once(&f, port, "localhost", get_hello, NULL) && f.failed, "client certificate demanded: fails");
    ok(strncmp(f.err, "tls: alert ", 11) == 0 && atoi(f.err + 11) > 0, "reported as the alert: %s", f.err);
    free(f.resp);
}

static void test_refused(void)
{
    unsigned port = dead_port();
    struct xfer f = { 0 };
    ok(port && fetch_once(&f, port, "localhost", get_hello, NULL) && f.failed, "closed port: fails");
    is_str(f.err, "connection refused", "closed port: socket error text");
    free(f.resp);
}

int main(void)
{
    log_set_stdout(0);
    ca_path = getenv("TLS_TEST_CA");
    unsigned good = env_port("TLS_PORT_GOOD"), expired = env_port("TLS_PORT_EXPIRED");
    unsigned wrong = env_port("TLS_PORT_WRONG_NAME"), other = env_port("TLS_PORT_OTHER_CA");
    unsigned self = env_port("TLS_PORT_SELF_SIGNED"), plain = env_port("TLS_PORT_PLAIN");
    unsigned clientauth = env_port("TLS_PORT_CLIENT_AUTH");
    if (!ca_path || !good || !expired || !wrong || !other || !self || !plain || !clientauth) {
        printf("1..0 # SKIP needs the servers of tests/integration/tls_live.t\n");
        return 0;
    }
    loop_init();

    test_good(good);
    test_resume(good);
    test_ip_host(good, wrong);
    expect_error(other, "localhost", "tls: certificate not trusted", "unknown CA");
    expect_error(self, "localhost", "tls: certificate not trusted", "self-signed");
    expect_error(wrong, "localhost", "tls: host name mismatch", "wrong name");
    expect_error(expired, "localhost", "tls: certificate expired", "expired");
    expect_error(plain, "localhost", "tls: not a TLS server", "plain HTTP port");
    test_alert(clientauth);
    test_refused();
    test_until_close(good, "/close", "end without close_notify");
    test_until_close(good, "/close_notify", "end with close_notify");
    test_early_answer(good);
    test_early_answer_held(good);

    char err[200];
    ok(tls_origin_get("localhost", good, "/nonexistent/ca.pem", err, sizeof err) == NULL,
       "a missing ca_file is an error");
    ok(strstr(err, "/nonexistent/ca.pem") != NULL, "naming the file: %s", err);

    tls_shutdown();
    loop_free();
    return tap_done();
}
