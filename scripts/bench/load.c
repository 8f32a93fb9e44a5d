/* load: the benchmark's load generator (scripts/bench.sh).  One thread, epoll.
 *
 *   load rate    -p PORT -c CONNS -r RATE -d SECS [-w WARMUP] [-m MODEL | -b BODY]
 *       Open loop: request i is due at start + i/RATE whatever the answers
 *       do; it goes out on the first idle connection (or waits for one) and
 *       its latency counts from the time it was due, so a stall is charged
 *       to every request it delays (no coordinated omission).  The first
 *       WARMUP seconds are sent but not counted.
 *   load streams -p PORT -n STREAMS -d SECS [-w WARMUP] [-R OPEN_PER_SEC] [-e EVENTS]
 *                [-m MODEL | -b BODY] [-P PID]
 *       STREAMS stream requests ("stream": true, "max_tokens": EVENTS, which
 *       sse.c takes as the number of events) opened at OPEN_PER_SEC and held
 *       together; each event's delay is receive time - the "ts=<CLOCK_MONOTONIC
 *       ns>" the upstream (sse.c) wrote into it, counted for SECS seconds from
 *       WARMUP after the last stream opened.  With -P, VmRSS of PID is sampled
 *       every 250 ms in that window (rss_kb = the median sample).
 *   load idle    -p PORT -n IDLE -c CONNS -r RATE -d SECS [-w WARMUP] [-i IDLE_SECS]
 *                [-R OPEN_PER_SEC] [-W WAKE_PER_SEC] [-P PID]
 *       The idle-connections test, in one process, every phase bounded:
 *       base:  the open loop of "rate" (RATE over CONNS connections, WARMUP
 *              + SECS) with nothing else open;
 *       crowd: IDLE more connections opened at OPEN_PER_SEC (at most 256
 *              opening at once), each sends one request, reads its answer
 *              and then stays open and silent;
 *       wait:  IDLE_SECS with the crowd idle (closes by the server counted);
 *       load:  the same open loop again on the CONNS connections while the
 *              crowd is held, and, during its SECS after WARMUP, "wakes":
 *              at WAKE_PER_SEC, the crowd connection idle longest sends its
 *              second request (each at most once; latency from its
 *              scheduled time, as for the open loop).
 *       With -P: CPU time of PID (all its threads, /proc/PID/task/<*>/
 *       schedstat, else utime + stime) over base and over load, per request
 *       answered, its VmRSS and descriptors before the crowd and with it
 *       idle.  Prints base_*, crowd_*, load_* and wake_* keys.
 *   load startup -p PORT [-k RUNS] [-m MODEL | -b BODY] -- COMMAND ARGS...
 *       Time from fork+exec of COMMAND to the first 200 answer on PORT
 *       (tried every 0.1 ms); the command is then stopped with SIGTERM.
 *       RUNS times; prints the median.
 *   load freeport
 *       A free port on 127.0.0.1 (bound, read, released).
 *
 * Requests are POST /v1/chat/completions with "Authorization: Bearer
 * bench" and a small chat body for MODEL (default "bench"); answers are
 * parsed as HTTP/1.1 (Content-Length, chunked, or close-delimited).
 * Results: one line of key=value on stdout, times in microseconds.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RBUF 65536
#define HEAD_MAX 16384
#define LINE_MAX_SSE 8192

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* ---------------------------------------------------------------- samples */

struct samples { uint64_t *v; size_t n, cap; };

static void sample_add(struct samples *s, uint64_t x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 65536;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v) die("realloc");
    }
    s->v[s->n++] = x;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(const struct samples *s, double p)
{
    if (!s->n) return 0;
    size_t i = (size_t)(p / 100.0 * (double)s->n);
    if (i >= s->n) i = s->n - 1;
    return (double)s->v[i] / 1000.0;
}

static void print_pcts(const struct samples *s)
{
    qsort(s->v, s->n, sizeof *s->v, cmp_u64);
    printf(" p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f",
           pct_us(s, 50), pct_us(s, 90), pct_us(s, 99), pct_us(s, 99.9),
           s->n ? (double)s->v[s->n - 1] / 1000.0 : 0.0);
}

/* ------------------------------------------------------ HTTP response parser */

enum rstate { R_HEAD, R_BODY_LEN, R_BODY_CLOSE, R_CHUNK_SIZE, R_CHUNK_DATA, R_CHUNK_CRLF, R_TRAILER, R_DONE };

struct resp {
    enum rstate st;
    char head[HEAD_MAX];
    size_t hlen;
    int status;
    int close_after;
    uint64_t left;        /* body bytes (Content-Length) or chunk bytes left */
    char line[64];        /* chunk size / trailer line */
    size_t llen;
};

static void resp_reset(struct resp *r)
{
    r->st = R_HEAD;
    r->hlen = 0;
    r->status = 0;
    r->close_after = 0;
    r->left = 0;
    r->llen = 0;
}

typedef void (*body_fn)(void *ctx, const char *p, size_t n);

static int parse_head(struct resp *r)
{
    /* status line */
    if (r->hlen < 12 || memcmp(r->head, "HTTP/1.", 7) != 0) return -1;
    r->status = atoi(r->head + 9);
    int chunked = 0, have_len = 0;
    uint64_t clen = 0;
    char *p = memchr(r->head, '\n', r->hlen);
    while (p && p < r->head + r->hlen) {
        p++;
        char *e = memchr(p, '\n', (size_t)(r->head + r->hlen - p));
        if (!e) break;
        size_t n = (size_t)(e - p);
        if (n >= 15 && strncasecmp(p, "content-length:", 15) == 0) {
            clen = strtoull(p + 15, NULL, 10);
            have_len = 1;
        } else if (n >= 18 && strncasecmp(p, "transfer-encoding:", 18) == 0) {
            if (memmem(p, n, "chunked", 7)) chunked = 1;
        } else if (n >= 11 && strncasecmp(p, "connection:", 11) == 0) {
            if (memmem(p, n, "close", 5) || memmem(p, n, "Close", 5)) r->close_after = 1;
        }
        p = e;
    }
    if (r->status == 204 || r->status == 304 || (r->status >= 100 && r->status < 200)) {
        r->st = R_DONE;
    } else if (chunked) {
        r->st = R_CHUNK_SIZE;
        r->llen = 0;
    } else if (have_len) {
        r->left = clen;
        r->st = clen ? R_BODY_LEN : R_DONE;
    } else {
        r->st = R_BODY_CLOSE;
        r->close_after = 1;
    }
    return 0;
}

/* Feed bytes; returns bytes consumed (stops right after a complete answer,
 * r->st == R_DONE), or -1 on a malformed answer. */
static long resp_feed(struct resp *r, const char *p, size_t n, body_fn fn, void *ctx)
{
    size_t i = 0;
    while (i < n && r->st != R_DONE) {
        switch (r->st) {
        case R_HEAD: {
            /* copy byte-wise until CRLFCRLF */
            char ch = p[i++];
            if (r->hlen >= HEAD_MAX) return -1;
            r->head[r->hlen++] = ch;
            if (ch == '\n' && r->hlen >= 4 && memcmp(r->head + r->hlen - 4, "\r\n\r\n", 4) == 0) {
                if (parse_head(r) < 0) return -1;
            }
            break;
        }
        case R_BODY_LEN: {
            size_t k = n - i < r->left ? n - i : (size_t)r->left;
            if (fn) fn(ctx, p + i, k);
            i += k;
            r->left -= k;
            if (!r->left) r->st = R_DONE;
            break;
        }
        case R_BODY_CLOSE:
            if (fn) fn(ctx, p + i, n - i);
            i = n;
            break;
        case R_CHUNK_SIZE:
        case R_TRAILER: {
            char ch = p[i++];
            if (ch != '\n') {
                if (r->llen < sizeof r->line - 1) r->line[r->llen++] = ch;
                else if (r->st == R_CHUNK_SIZE) return -1;
                break;
            }
            if (r->llen && r->line[r->llen - 1] == '\r') r->llen--;
            r->line[r->llen] = 0;
            if (r->st == R_TRAILER) {
                if (r->llen == 0) r->st = R_DONE;
                r->llen = 0;
                break;
            }
            char *end;
            unsigned long long sz = strtoull(r->line, &end, 16);
            if (end == r->line) return -1;
            r->llen = 0;
            if (sz == 0) r->st = R_TRAILER;
            else { r->left = sz; r->st = R_CHUNK_DATA; }
            break;
        }
        case R_CHUNK_DATA: {
            size_t k = n - i < r->left ? n - i : (size_t)r->left;
            if (fn) fn(ctx, p + i, k);
            i += k;
            r->left -= k;
            if (!r->left) { r->st = R_CHUNK_CRLF; r->llen = 0; }
            break;
        }
        case R_CHUNK_CRLF: {
            char ch = p[i++];
            if (ch == '\n') r->st = R_CHUNK_SIZE;
            else if (ch != '\r') return -1;
            break;
        }
        case R_DONE:
            break;
        }
    }
    return (long)i;
}

/* ------------------------------------------------------------- common setup */

static int port;
static char *request;
static size_t request_len;
static int ep;

static void build_request(const char *body)
{
    size_t bl = strlen(body);
    request = malloc(bl + 512);
    if (!request) die("malloc");
    request_len = (size_t)sprintf(request,
                                  "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                                  "Authorization: Bearer bench\r\nContent-Type: application/json\r\n"
                                  "Accept: */*\r\nContent-Length: %zu\r\n\r\n%s",
                                  port, bl, body);
}

static int connect_nb(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static long rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) { kb = atol(line + 6); break; }
    fclose(f);
    return kb;
}

/* ---------------------------------------------------------------- rate mode */

struct rconn {
    int fd;
    int busy;             /* a request is out */
    int connected;
    uint64_t due;         /* scheduled time of the request out */
    size_t sent;          /* bytes of the request written */
    struct resp r;
    struct rconn *next_idle;
};

static struct rconn *idle_head, *idle_tail;

static void idle_push(struct rconn *c)
{
    c->next_idle = NULL;
    if (idle_tail) idle_tail->next_idle = c; else idle_head = c;
    idle_tail = c;
}

static struct rconn *idle_pop(void)
{
    struct rconn *c = idle_head;
    if (c) {
        idle_head = c->next_idle;
        if (!idle_head) idle_tail = NULL;
    }
    return c;
}

static void rc_arm(struct rconn *c, int out)
{
    struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int rc_open(struct rconn *c)
{
    c->fd = connect_nb();
    if (c->fd < 0) return -1;
    c->busy = 0;
    c->connected = 0;
    c->sent = 0;
    resp_reset(&c->r);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

static void rc_write(struct rconn *c)
{
    while (c->sent < request_len) {
        ssize_t w = write(c->fd, request + c->sent, request_len - c->sent);
        if (w < 0) {
            if (errno == EAGAIN) { rc_arm(c, 1); return; }
            return;   /* the read side sees the error */
        }
        c->sent += (size_t)w;
    }
    rc_arm(c, 0);
}

static int mode_rate(int conns, double rate, double secs, double warm)
{
    struct rconn *cs = calloc((size_t)conns, sizeof *cs);
    if (!cs) die("calloc");
    for (int i = 0; i < conns; i++)
        if (rc_open(&cs[i]) < 0) die("connect");
    /* wait for every connection */
    int up = 0;
    uint64_t limit = now_ns() + 5000000000ull;
    struct epoll_event evs[256];
    while (up < conns && now_ns() < limit) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            struct rconn *c = evs[i].data.ptr;
            if (c->connected) continue;
            int err = 0;
            socklen_t el = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
            if (err) { fprintf(stderr, "load: connect: %s\n", strerror(err)); return 1; }
            c->connected = 1;
            rc_arm(c, 0);
            idle_push(c);
            up++;
        }
    }
    if (up < conns) { fprintf(stderr, "load: only %d of %d connections\n", up, conns); return 1; }

    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0) die("timerfd_create");
    struct epoll_event tev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);

    uint64_t period = (uint64_t)(1e9 / rate);
    uint64_t start = now_ns() + 10000000ull;
    uint64_t total = (uint64_t)((secs + warm) * rate);
    uint64_t warm_until = start + (uint64_t)(warm * 1e9);
    uint64_t next = 0;          /* index of the next request to send */
    uint64_t done = 0, errors = 0, late_sends = 0;
    struct samples lat = { 0 };
    static char rbuf[RBUF];
    uint64_t armed = 0;

    for (;;) {
        uint64_t now = now_ns();
        /* send everything due that a connection can take */
        while (next < total && start + next * period <= now) {
            struct rconn *c = idle_pop();
            if (!c) break;
            c->busy = 1;
            c->due = start + next * period;
            c->sent = 0;
            resp_reset(&c->r);
            if (now - c->due > 1000000ull) late_sends++;
            next++;
            rc_write(c);
        }
        if (done + errors >= total) break;
        if (now > start + (uint64_t)((secs + warm) * 1e9) + 5000000000ull) {
            errors += total - done - errors;   /* never answered */
            break;
        }
        /* wake for the next due request (only when a connection is free) */
        int timeout = 100;
        if (next < total && idle_head) {
            uint64_t at = start + next * period;
            if (at != armed) {
                struct itimerspec its = { .it_value = { (time_t)(at / 1000000000ull), (long)(at % 1000000000ull) } };
                timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
                armed = at;
            }
        }
        int n = epoll_wait(ep, evs, 256, timeout);
        for (int i = 0; i < n; i++) {
            struct rconn *c = evs[i].data.ptr;
            if (!c) {
                uint64_t x;
                while (read(tfd, &x, sizeof x) > 0) {}
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                if (c->busy && c->sent < request_len) rc_write(c);
                else rc_arm(c, 0);
            }
            if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            for (;;) {
                ssize_t r = read(c->fd, rbuf, sizeof rbuf);
                if (r < 0 && errno == EAGAIN) break;
                int broken = r <= 0;
                uint64_t t = now_ns();
                size_t off = 0;
                while (!broken && off < (size_t)r) {
                    if (!c->busy) { broken = 1; break; }   /* bytes nobody asked for */
                    long k = resp_feed(&c->r, rbuf + off, (size_t)r - off, NULL, NULL);
                    if (k < 0) { broken = 1; break; }
                    off += (size_t)k;
                    if (c->r.st == R_DONE) {
                        if (c->r.status == 200) {
                            done++;
                            if (c->due >= warm_until) sample_add(&lat, t - c->due);
                        } else {
                            errors++;
                        }
                        c->busy = 0;
                        int reopen = c->r.close_after;
                        resp_reset(&c->r);
                        if (reopen) { broken = 2; break; }
                        idle_push(c);
                    }
                }
                if (r == 0 && c->busy && c->r.st == R_BODY_CLOSE) {   /* close-delimited answer */
                    if (c->r.status == 200) { done++; if (c->due >= warm_until) sample_add(&lat, t - c->due); }
                    else errors++;
                    c->busy = 0;
                    broken = 2;
                }
                if (broken) {
                    if (c->busy) { errors++; c->busy = 0; }
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    close(c->fd);
                    if (rc_open(c) == 0) {
                        /* idle once connected: treat as connected at once, a
                         * write before the handshake ends just waits */
                        c->connected = 1;
                        idle_push(c);
                    }
                    break;
                }
                if ((size_t)r < sizeof rbuf) break;
            }
        }
    }
    printf("mode=rate rate=%.0f conns=%d requests=%llu ok=%llu errors=%llu late_sends=%llu samples=%zu",
           rate, conns, (unsigned long long)total, (unsigned long long)done, (unsigned long long)errors,
           (unsigned long long)late_sends, lat.n);
    print_pcts(&lat);
    printf("\n");
    return 0;
}

/* ------------------------------------------------------------- streams mode */

struct sconn {
    int fd;
    int state;            /* 0 connecting, 1 request out, 2 finished, 3 failed */
    size_t sent;
    struct resp r;
    char line[LINE_MAX_SSE];
    size_t llen;
    int got_done;
    int saw_error;
    uint64_t events;
};

static uint64_t s_now, s_measure_from, s_measure_to;
static struct samples s_delay;
static uint64_t s_events_measured, s_events_total, s_stream_errors;

static void sse_line(struct sconn *c)
{
    if (c->llen < 6 || memcmp(c->line, "data: ", 6) != 0) return;
    c->line[c->llen] = 0;
    if (strstr(c->line, "[DONE]")) { c->got_done = 1; return; }
    if (strstr(c->line, "\"error\"")) { c->saw_error = 1; return; }
    char *ts = strstr(c->line, "ts=");
    if (!ts) return;
    uint64_t sent = strtoull(ts + 3, NULL, 10);
    c->events++;
    s_events_total++;
    if (s_now >= s_measure_from && s_now < s_measure_to) {
        s_events_measured++;
        sample_add(&s_delay, s_now > sent ? s_now - sent : 0);
    }
}

static void sse_body(void *ctx, const char *p, size_t n)
{
    struct sconn *c = ctx;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '\n') {
            if (c->llen && c->line[c->llen - 1] == '\r') c->llen--;
            sse_line(c);
            c->llen = 0;
        } else if (c->llen < LINE_MAX_SSE - 1) {
            c->line[c->llen++] = ch;
        }
    }
}

static void sc_fail(struct sconn *c, int *active)
{
    if (c->state == 0 || c->state == 1) (*active)--;
    c->state = 3;
    s_stream_errors++;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
}

static void sc_write(struct sconn *c, int *active)
{
    while (c->sent < request_len) {
        ssize_t w = write(c->fd, request + c->sent, request_len - c->sent);
        if (w < 0) {
            if (errno == EAGAIN) return;
            sc_fail(c, active);
            return;
        }
        c->sent += (size_t)w;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int mode_streams(int nstreams, double secs, double warm, double open_rate, int rss_pid)
{
    struct sconn *cs = calloc((size_t)nstreams, sizeof *cs);
    if (!cs) die("calloc");
    for (int i = 0; i < nstreams; i++) cs[i].fd = -1;
    struct epoll_event evs[512];
    static char rbuf[RBUF];
    uint64_t t0 = now_ns();
    uint64_t gap = (uint64_t)(1e9 / open_rate);
    int opened = 0, active = 0, finished = 0;
    uint64_t all_open_at = 0;
    struct samples rss = { 0 };
    long rss_max = 0;
    uint64_t next_rss = 0;
    s_measure_from = UINT64_MAX;
    s_measure_to = UINT64_MAX;
    uint64_t give_up = 0;
    int headers_ok_at_start = -1, heads = 0;

    for (;;) {
        s_now = now_ns();
        while (opened < nstreams && t0 + (uint64_t)opened * gap <= s_now) {
            struct sconn *c = &cs[opened++];
            c->fd = connect_nb();
            if (c->fd < 0) { c->state = 3; s_stream_errors++; continue; }
            resp_reset(&c->r);
            struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            active++;
        }
        if (opened == nstreams && !all_open_at) {
            all_open_at = s_now;
            s_measure_from = s_now + (uint64_t)(warm * 1e9);
            s_measure_to = s_measure_from + (uint64_t)(secs * 1e9);
            give_up = s_measure_to + 30000000000ull;
        }
        if (all_open_at && headers_ok_at_start < 0 && s_now >= s_measure_from) headers_ok_at_start = heads;
        if (rss_pid > 0 && s_now >= s_measure_from && s_now < s_measure_to && s_now >= next_rss) {
            long kb = rss_kb(rss_pid);
            if (kb > 0) { sample_add(&rss, (uint64_t)kb); if (kb > rss_max) rss_max = kb; }
            next_rss = s_now + 250000000ull;
        }
        if (all_open_at && active == 0) break;
        if (give_up && s_now > give_up) break;

        int timeout = opened < nstreams ? 1 : 50;
        int n = epoll_wait(ep, evs, 512, timeout);
        for (int i = 0; i < n; i++) {
            struct sconn *c = evs[i].data.ptr;
            if (c->state >= 2) continue;
            if (evs[i].events & EPOLLOUT) {
                if (c->state == 0) {
                    int err = 0;
                    socklen_t el = sizeof err;
                    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                    if (err) { sc_fail(c, &active); continue; }
                    c->state = 1;
                }
                sc_write(c, &active);
                if (c->state >= 2) continue;
            }
            if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            for (;;) {
                ssize_t r = read(c->fd, rbuf, sizeof rbuf);
                if (r < 0 && errno == EAGAIN) break;
                s_now = now_ns();
                if (r <= 0) { sc_fail(c, &active); break; }
                int had_head = c->r.st != R_HEAD;
                long k = resp_feed(&c->r, rbuf, (size_t)r, sse_body, c);
                if (!had_head && c->r.st != R_HEAD) {
                    if (c->r.status == 200) heads++;
                }
                if (k < 0 || (c->r.st != R_HEAD && c->r.status != 200)) { sc_fail(c, &active); break; }
                if (c->r.st == R_DONE) {
                    if (!c->got_done || c->saw_error) { sc_fail(c, &active); break; }
                    c->state = 2;
                    active--;
                    finished++;
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    close(c->fd);
                    break;
                }
                if ((size_t)r < sizeof rbuf) break;
            }
        }
    }
    for (int i = 0; i < nstreams; i++)
        if (cs[i].state < 2 && cs[i].fd >= 0) { close(cs[i].fd); s_stream_errors++; }
    uint64_t rss_med = 0;
    if (rss.n) { qsort(rss.v, rss.n, sizeof *rss.v, cmp_u64); rss_med = rss.v[rss.n / 2]; }
    printf("mode=streams streams=%d live_at_start=%d completed=%d errors=%llu events=%llu events_measured=%llu"
           " events_per_s=%.0f rss_kb=%llu rss_max_kb=%ld",
           nstreams, headers_ok_at_start, finished, (unsigned long long)s_stream_errors,
           (unsigned long long)s_events_total, (unsigned long long)s_events_measured,
           secs > 0 ? (double)s_events_measured / secs : 0.0, (unsigned long long)rss_med, rss_max);
    print_pcts(&s_delay);
    printf("\n");
    return 0;
}

/* -------------------------------------------------------------- idle mode */

/* CPU time of a process, all its threads, in ns: the sum of the first field
 * of /proc/PID/task/<*>/schedstat (exact), else utime + stime in ticks. */
static const char *cpu_source = "none";

static uint64_t cpu_ns(int pid)
{
    if (pid <= 0) return 0;
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    uint64_t sum = 0;
    int any = 0;
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char f[128];
            snprintf(f, sizeof f, "/proc/%d/task/%.20s/schedstat", pid, e->d_name);
            FILE *fp = fopen(f, "r");
            if (!fp) continue;
            unsigned long long v;
            if (fscanf(fp, "%llu", &v) == 1) { sum += v; any = 1; }
            fclose(fp);
        }
        closedir(d);
    }
    if (any) { cpu_source = "schedstat"; return sum; }
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *fp = fopen(path, "r");
    if (!fp) return 0;
    char line[1024];
    size_t n = fread(line, 1, sizeof line - 1, fp);
    fclose(fp);
    line[n] = 0;
    char *p = strrchr(line, ')');
    if (!p) return 0;
    /* after ")": state is field 3; utime and stime are fields 14 and 15 */
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return 0;
    cpu_source = "ticks";
    return (ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

static long count_fds(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

enum { IK_RATE, IK_CROWD };
enum { IS_CONNECTING, IS_READY, IS_DEAD };

struct iconn {
    int fd;
    int kind;             /* IK_* */
    int state;            /* IS_* */
    int busy;             /* a request is out (or waits for the connect) */
    int wake;             /* the request out is a crowd connection's second */
    int kept;             /* crowd: first answer was a 200 and it stayed open */
    uint64_t due;         /* scheduled send time of the request out */
    uint64_t idle_since;  /* crowd: when its first answer ended */
    size_t sent;
    struct resp *r;       /* while busy (crowd: freed when idle) */
    struct iconn *next_idle;
};

struct istats { uint64_t sent, ok, errors, late; struct samples lat; uint64_t measure_from; };

static struct istats i_rate, i_wake;
static struct iconn *ri_head, *ri_tail;    /* idle open-loop connections */
static int i_tfd = -1;
static uint64_t crowd_inflight, crowd_alive, crowd_ok_n, crowd_err_connect, crowd_err_status,
    crowd_err_closed, crowd_err_timeout, crowd_closed_idle, crowd_closed_load;
static int crowd_bad_status, crowd_errno;
static int i_phase;                         /* 0 base, 1 crowd, 2 wait, 3 load */

static void ri_push(struct iconn *c)
{
    c->next_idle = NULL;
    if (ri_tail) ri_tail->next_idle = c; else ri_head = c;
    ri_tail = c;
}

static struct iconn *ri_pop(void)
{
    struct iconn *c = ri_head;
    if (c) {
        ri_head = c->next_idle;
        if (!ri_head) ri_tail = NULL;
    }
    return c;
}

static void ic_arm(struct iconn *c, int out)
{
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0), .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int ic_open(struct iconn *c)
{
    c->fd = connect_nb();
    if (c->fd < 0) { c->state = IS_DEAD; return -1; }
    c->state = IS_CONNECTING;
    c->busy = 0;
    c->sent = 0;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLOUT, .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

static void ic_kill(struct iconn *c)
{
    if (c->state != IS_DEAD) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->state = IS_DEAD;
    }
    free(c->r);
    c->r = NULL;
    c->busy = 0;
}

static void ic_write(struct iconn *c)
{
    while (c->sent < request_len) {
        ssize_t w = write(c->fd, request + c->sent, request_len - c->sent);
        if (w < 0) {
            if (errno == EAGAIN) { ic_arm(c, 1); return; }
            return;   /* the read side sees the error */
        }
        c->sent += (size_t)w;
    }
    ic_arm(c, 0);
}

static void ic_send(struct iconn *c, uint64_t due, int wake)
{
    if (!c->r) {
        c->r = malloc(sizeof *c->r);
        if (!c->r) die("malloc");
    }
    resp_reset(c->r);
    c->busy = 1;
    c->wake = wake;
    c->due = due;
    c->sent = 0;
    if (c->state == IS_READY) ic_write(c);
}

/* An open-loop connection broke or was closed: open it again (it counts as
 * idle at once; a request sent before the handshake ends waits for it). */
static void ic_reopen(struct iconn *c)
{
    ic_kill(c);
    if (ic_open(c) == 0) ri_push(c);
}

/* The connection failed or was closed by the other side. */
static void ic_broken(struct iconn *c)
{
    if (c->kind == IK_RATE) {
        if (c->busy) i_rate.errors++;
        ic_reopen(c);
        return;
    }
    if (c->busy && !c->wake) {          /* its first request */
        crowd_inflight--;
        if (c->state == IS_CONNECTING) crowd_err_connect++; else crowd_err_closed++;
    } else if (c->busy) {               /* a wake */
        i_wake.errors++;
        crowd_alive--;
    } else if (c->kept) {               /* closed while idle */
        crowd_alive--;
        if (i_phase == 3) crowd_closed_load++; else crowd_closed_idle++;
    }
    c->kept = 0;
    ic_kill(c);
}

/* The answer to the request out is complete. */
static void ic_done(struct iconn *c, uint64_t t)
{
    int ok = c->r->status == 200, reopen = c->r->close_after;
    if (c->kind == IK_RATE) {
        if (ok) {
            i_rate.ok++;
            if (c->due >= i_rate.measure_from) sample_add(&i_rate.lat, t - c->due);
        } else {
            i_rate.errors++;
        }
        c->busy = 0;
        if (reopen) ic_reopen(c); else ri_push(c);
        return;
    }
    if (!c->wake) {
        crowd_inflight--;
        if (!ok) {
            crowd_err_status++;
            crowd_bad_status = c->r->status;
            ic_kill(c);
            return;
        }
        crowd_ok_n++;
        if (reopen) { crowd_err_closed++; ic_kill(c); return; }
        c->kept = 1;
        crowd_alive++;
        c->idle_since = t;
    } else {
        if (ok) { i_wake.ok++; sample_add(&i_wake.lat, t - c->due); } else i_wake.errors++;
        if (reopen) { crowd_alive--; c->kept = 0; ic_kill(c); return; }
    }
    c->busy = 0;
    free(c->r);
    c->r = NULL;
}

static void ic_event(struct iconn *c, uint32_t events)
{
    static char rbuf[RBUF];
    if (c->state == IS_DEAD) return;
    if (c->state == IS_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err || (events & (EPOLLERR | EPOLLHUP))) {
            if (err && c->kind == IK_CROWD) crowd_errno = err;
            ic_broken(c);
            return;
        }
        c->state = IS_READY;
        if (!c->busy) ic_arm(c, 0);
    }
    if (events & EPOLLOUT) {
        if (c->busy && c->sent < request_len) ic_write(c);
        else ic_arm(c, 0);
    }
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
    for (;;) {
        ssize_t r = read(c->fd, rbuf, sizeof rbuf);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
        uint64_t t = now_ns();
        if (r == 0 && c->busy && c->r->st == R_BODY_CLOSE) {   /* close-delimited answer */
            c->r->close_after = 1;
            ic_done(c, t);
            if (c->state != IS_DEAD && c->kind == IK_CROWD) ic_broken(c);
            return;
        }
        if (r <= 0 || !c->busy) { ic_broken(c); return; }   /* closed, failed, or bytes nobody asked for */
        size_t off = 0;
        while (off < (size_t)r) {
            if (!c->busy) { ic_broken(c); return; }
            long k = resp_feed(c->r, rbuf + off, (size_t)r - off, NULL, NULL);
            if (k < 0) { ic_broken(c); return; }
            off += (size_t)k;
            if (c->r->st == R_DONE) {
                int fd = c->fd;
                ic_done(c, t);
                if (c->state == IS_DEAD || c->fd != fd) return;
            } else if (c->r->st == R_BODY_CLOSE) {
                off = (size_t)r;
            }
        }
        if ((size_t)r < sizeof rbuf) return;
    }
}

static void ic_step(int timeout_ms)
{
    struct epoll_event evs[512];
    int n = epoll_wait(ep, evs, 512, timeout_ms);
    for (int i = 0; i < n; i++) {
        if (!evs[i].data.ptr) {
            uint64_t x;
            while (read(i_tfd, &x, sizeof x) > 0) {}
            continue;
        }
        ic_event(evs[i].data.ptr, evs[i].events);
    }
}

static void ic_timer_at(uint64_t at)
{
    static uint64_t armed;
    if (at == armed) return;
    struct itimerspec its = { .it_value = { (time_t)(at / 1000000000ull), (long)(at % 1000000000ull) } };
    timerfd_settime(i_tfd, TFD_TIMER_ABSTIME, &its, NULL);
    armed = at;
}

struct iresult { uint64_t total, answered, ok, errors, late; double cpu_us_per_req; uint64_t cpu_ns; };

/* The open loop on the CONNS connections (and wakes of the crowd): RATE for
 * WARM + SECS; returns once every request is answered or 5 s after the
 * last was due. */
static struct iresult run_open_loop(double rate, double secs, double warm, double wake_rate,
                                    struct iconn *crowd, int ncrowd, int pid)
{
    struct iresult res = { 0 };
    free(i_rate.lat.v);
    free(i_wake.lat.v);
    memset(&i_rate, 0, sizeof i_rate);
    memset(&i_wake, 0, sizeof i_wake);
    uint64_t period = (uint64_t)(1e9 / rate);
    uint64_t start = now_ns() + 10000000ull;
    uint64_t total = (uint64_t)((secs + warm) * rate);
    uint64_t warm_until = start + (uint64_t)(warm * 1e9);
    uint64_t end = start + (uint64_t)((secs + warm) * 1e9);
    i_rate.measure_from = warm_until;
    uint64_t wtotal = 0, wperiod = 1, wnext = 0;
    int wcursor = 0;
    if (wake_rate > 0 && ncrowd > 0) {
        wtotal = (uint64_t)(secs * wake_rate);
        if (wtotal > crowd_alive) wtotal = crowd_alive;
        wperiod = (uint64_t)(1e9 / wake_rate);
    }
    uint64_t next = 0;
    uint64_t cpu0 = cpu_ns(pid);
    for (;;) {
        uint64_t now = now_ns();
        while (next < total && start + next * period <= now) {
            struct iconn *c = ri_pop();
            if (!c) break;
            uint64_t due = start + next * period;
            if (now - due > 1000000ull) i_rate.late++;
            next++;
            i_rate.sent++;
            ic_send(c, due, 0);
        }
        while (wnext < wtotal && warm_until + wnext * wperiod <= now) {
            while (wcursor < ncrowd && !(crowd[wcursor].kept && !crowd[wcursor].busy && crowd[wcursor].state == IS_READY))
                wcursor++;
            if (wcursor >= ncrowd) { wtotal = wnext; break; }   /* none left to wake */
            struct iconn *c = &crowd[wcursor++];
            uint64_t due = warm_until + wnext * wperiod;
            if (now - due > 1000000ull) i_wake.late++;
            wnext++;
            i_wake.sent++;
            ic_send(c, due, 1);
        }
        if (next >= total && i_rate.ok + i_rate.errors >= total && wnext >= wtotal &&
            i_wake.ok + i_wake.errors >= i_wake.sent)
            break;
        if (now > end + 5000000000ull) {
            i_rate.errors += total - i_rate.ok - i_rate.errors;   /* never sent or never answered */
            i_wake.errors += i_wake.sent - i_wake.ok - i_wake.errors;
            break;
        }
        uint64_t at = UINT64_MAX;
        if (next < total && ri_head) at = start + next * period;
        if (wnext < wtotal && warm_until + wnext * wperiod < at) at = warm_until + wnext * wperiod;
        if (at != UINT64_MAX) ic_timer_at(at);
        ic_step(100);
    }
    uint64_t cpu1 = cpu_ns(pid);
    res.total = total + i_wake.sent;
    res.ok = i_rate.ok + i_wake.ok;
    res.errors = i_rate.errors + i_wake.errors;
    res.answered = res.ok + res.errors;
    res.late = i_rate.late + i_wake.late;
    res.cpu_ns = cpu1 - cpu0;
    res.cpu_us_per_req = pid > 0 && res.ok ? (double)(cpu1 - cpu0) / 1000.0 / (double)res.ok : 0;
    return res;
}

static const char *errno_name(int e)
{
    static char other[32];
    switch (e) {
    case 0: return "-";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ENOBUFS: return "ENOBUFS";
    default: snprintf(other, sizeof other, "errno%d", e); return other;
    }
}

static void print_pcts_as(const char *prefix, struct samples *s)
{
    qsort(s->v, s->n, sizeof *s->v, cmp_u64);
    printf(" %s_samples=%zu %s_p50_us=%.1f %s_p99_us=%.1f %s_max_us=%.1f", prefix, s->n,
           prefix, pct_us(s, 50), prefix, pct_us(s, 99), prefix,
           s->n ? (double)s->v[s->n - 1] / 1000.0 : 0.0);
}

static int mode_idle(int nidle, int conns, double rate, double secs, double warm, double idle_secs,
                     double open_rate, double wake_rate, int pid)
{
    i_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (i_tfd < 0) die("timerfd_create");
    struct epoll_event tev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(ep, EPOLL_CTL_ADD, i_tfd, &tev);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)nidle + (rlim_t)conns + 32 > rl.rlim_cur) {
        fprintf(stderr, "load: RLIMIT_NOFILE is %llu: too low for %d idle + %d connections\n",
                (unsigned long long)rl.rlim_cur, nidle, conns);
        printf("mode=idle error=nofile nofile=%llu\n", (unsigned long long)rl.rlim_cur);
        return 1;
    }

    /* base: the open loop alone */
    struct iconn *rc = calloc((size_t)conns, sizeof *rc);
    struct iconn *crowd = calloc((size_t)nidle, sizeof *crowd);
    if (!rc || !crowd) die("calloc");
    for (int i = 0; i < conns; i++) {
        rc[i].kind = IK_RATE;
        if (ic_open(&rc[i]) < 0) die("connect");
    }
    uint64_t limit = now_ns() + 5000000000ull;
    for (;;) {
        int up = 0;
        for (int i = 0; i < conns; i++) up += rc[i].state == IS_READY;
        if (up == conns) break;
        if (now_ns() > limit) { fprintf(stderr, "load: only %d of %d connections\n", up, conns); return 1; }
        ic_step(50);
    }
    for (int i = 0; i < conns; i++) ri_push(&rc[i]);
    i_phase = 0;
    struct iresult base = run_open_loop(rate, secs, warm, 0, NULL, 0, pid);
    struct samples base_lat = i_rate.lat;
    i_rate.lat = (struct samples){ 0 };
    long rss0 = pid > 0 ? rss_kb(pid) : -1, fds0 = pid > 0 ? count_fds(pid) : -1;

    /* crowd: IDLE connections, one request each, then silent */
    i_phase = 1;
    uint64_t t0 = now_ns(), gap = (uint64_t)(1e9 / open_rate);
    uint64_t deadline = t0 + (uint64_t)((double)nidle / open_rate * 1e9) + 30000000000ull;
    int opened = 0;
    for (;;) {
        uint64_t now = now_ns();
        while (opened < nidle && t0 + (uint64_t)opened * gap <= now && crowd_inflight < 256) {
            struct iconn *c = &crowd[opened++];
            c->kind = IK_CROWD;
            if (ic_open(c) < 0) { crowd_err_connect++; crowd_errno = errno; continue; }
            crowd_inflight++;
            ic_send(c, now, 0);
        }
        if (opened == nidle && crowd_inflight == 0) break;
        if (now > deadline) {
            for (int i = 0; i < opened; i++)
                if (crowd[i].busy) { crowd_err_timeout++; crowd_inflight--; ic_kill(&crowd[i]); }
            break;
        }
        ic_step(opened < nidle ? 1 : 50);
    }
    double open_s = (double)(now_ns() - t0) / 1e9;

    /* wait: the crowd idle */
    i_phase = 2;
    uint64_t wait_end = now_ns() + (uint64_t)(idle_secs * 1e9);
    while (now_ns() < wait_end) {
        uint64_t left = (wait_end - now_ns()) / 1000000ull;
        ic_step(left > 50 ? 50 : (int)left + 1);
    }
    long rss1 = pid > 0 ? rss_kb(pid) : -1, fds1 = pid > 0 ? count_fds(pid) : -1;
    uint64_t alive_before = crowd_alive;

    /* load: the open loop again, with the crowd held, and the wakes */
    i_phase = 3;
    struct iresult load = run_open_loop(rate, secs, warm, wake_rate, crowd, opened, pid);
    uint64_t min_idle = UINT64_MAX;
    for (int i = 0; i < opened; i++)
        if (crowd[i].wake && crowd[i].due > crowd[i].idle_since && crowd[i].due - crowd[i].idle_since < min_idle)
            min_idle = crowd[i].due - crowd[i].idle_since;

    printf("mode=idle idle=%d conns=%d rate=%.0f cpu_source=%s", nidle, conns, rate, cpu_source);
    printf(" base_requests=%llu base_ok=%llu base_errors=%llu base_late=%llu base_cpu_us_per_req=%.2f",
           (unsigned long long)base.total, (unsigned long long)base.ok, (unsigned long long)base.errors,
           (unsigned long long)base.late, base.cpu_us_per_req);
    print_pcts_as("base", &base_lat);
    printf(" crowd_opened=%d crowd_ok=%llu crowd_kept=%llu crowd_err_connect=%llu crowd_err_status=%llu"
           " crowd_bad_status=%d crowd_err_closed=%llu crowd_err_timeout=%llu crowd_errno=%s crowd_open_s=%.2f"
           " crowd_closed_idle=%llu crowd_closed_load=%llu crowd_alive_end=%llu",
           opened, (unsigned long long)crowd_ok_n, (unsigned long long)alive_before,
           (unsigned long long)crowd_err_connect, (unsigned long long)crowd_err_status, crowd_bad_status,
           (unsigned long long)crowd_err_closed, (unsigned long long)crowd_err_timeout,
           errno_name(crowd_errno), open_s,
           (unsigned long long)crowd_closed_idle, (unsigned long long)crowd_closed_load,
           (unsigned long long)crowd_alive);
    printf(" rss_base_kb=%ld rss_crowd_kb=%ld fds_base=%ld fds_crowd=%ld", rss0, rss1, fds0, fds1);
    printf(" load_requests=%llu load_ok=%llu load_errors=%llu load_late=%llu load_cpu_us_per_req=%.2f",
           (unsigned long long)load.total, (unsigned long long)load.ok, (unsigned long long)load.errors,
           (unsigned long long)load.late, load.cpu_us_per_req);
    print_pcts_as("load", &i_rate.lat);
    printf(" wake_sent=%llu wake_ok=%llu wake_errors=%llu wake_min_idle_s=%.2f",
           (unsigned long long)i_wake.sent, (unsigned long long)i_wake.ok, (unsigned long long)i_wake.errors,
           min_idle == UINT64_MAX ? 0.0 : (double)min_idle / 1e9);
    print_pcts_as("wake", &i_wake.lat);
    printf("\n");
    fflush(stdout);
    for (int i = 0; i < opened; i++) ic_kill(&crowd[i]);
    for (int i = 0; i < conns; i++) ic_kill(&rc[i]);
    return 0;
}

/* ------------------------------------------------------------- startup mode */

/* One blocking exchange; 1 = got a 200, 0 = not (yet). */
static int try_once(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { close(fd); return 0; }
    int ok = 0;
    if (write(fd, request, request_len) == (ssize_t)request_len) {
        struct resp *r = calloc(1, sizeof *r);
        resp_reset(r);
        char buf[16384];
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        while (poll(&pfd, 1, 2000) > 0) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n <= 0) break;
            if (resp_feed(r, buf, (size_t)n, NULL, NULL) < 0) break;
            if (r->st == R_DONE) { ok = r->status == 200; break; }
        }
        free(r);
    }
    close(fd);
    return ok;
}

static int mode_startup(int runs, char **cmd)
{
    struct samples s = { 0 };
    for (int k = 0; k < runs; k++) {
        uint64_t t0 = now_ns();
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            int nul = open("/dev/null", O_RDWR);
            if (nul >= 0) { dup2(nul, 1); dup2(nul, 2); }
            execvp(cmd[0], cmd);
            _exit(127);
        }
        uint64_t t1 = 0;
        while (now_ns() - t0 < 10000000000ull) {
            if (try_once()) { t1 = now_ns(); break; }
            int st;
            if (waitpid(pid, &st, WNOHANG) == pid) { pid = -1; break; }
            struct timespec ts = { 0, 100000 };
            nanosleep(&ts, NULL);
        }
        if (pid > 0) {
            kill(pid, SIGTERM);
            int st;
            for (int i = 0; i < 500 && waitpid(pid, &st, WNOHANG) != pid; i++) {
                struct timespec ts = { 0, 10000000 };
                nanosleep(&ts, NULL);
                if (i == 300) kill(pid, SIGKILL);
            }
        }
        if (!t1) { printf("mode=startup error=no_answer\n"); return 1; }
        sample_add(&s, t1 - t0);
        /* let the port be released */
        struct timespec ts = { 0, 50000000 };
        nanosleep(&ts, NULL);
    }
    qsort(s.v, s.n, sizeof *s.v, cmp_u64);
    printf("mode=startup runs=%d median_ms=%.2f min_ms=%.2f max_ms=%.2f\n", runs,
           (double)s.v[s.n / 2] / 1e6, (double)s.v[0] / 1e6, (double)s.v[s.n - 1] / 1e6);
    return 0;
}

/* ------------------------------------------------------------------- main */

static void usage(void)
{
    fprintf(stderr,
            "usage: load rate    -p PORT -c CONNS -r RATE -d SECS [-w WARMUP] [-m MODEL | -b BODY]\n"
            "       load streams -p PORT -n STREAMS -d SECS [-w WARMUP] [-R OPEN_PER_SEC] [-e EVENTS] [-m MODEL | -b BODY] [-P PID]\n"
            "       load idle    -p PORT -n IDLE -c CONNS -r RATE -d SECS [-w WARMUP] [-i IDLE_SECS] [-R OPEN_PER_SEC] [-W WAKE_PER_SEC] [-P PID]\n"
            "       load startup -p PORT [-k RUNS] [-m MODEL | -b BODY] -- COMMAND ARGS...\n"
            "       load freeport\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2) usage();
    const char *mode = argv[1];
    if (strcmp(mode, "freeport") == 0) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET };
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t sl = sizeof sa;
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
            die("freeport");
        printf("%d\n", ntohs(sa.sin_port));
        return 0;
    }
    int conns = 50, nstreams = 1000, runs = 5, rss_pid = 0;
    long events = 0;
    double rate = 2000, secs = 10, warm = 1, open_rate = 0, idle_secs = 3, wake_rate = 100;
    const char *body = NULL, *model = "bench";
    int opt;
    optind = 2;
    while ((opt = getopt(argc, argv, "+p:c:r:d:w:b:m:n:R:e:P:k:i:W:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'c': conns = atoi(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'd': secs = atof(optarg); break;
        case 'w': warm = atof(optarg); break;
        case 'b': body = optarg; break;
        case 'm': model = optarg; break;
        case 'n': nstreams = atoi(optarg); break;
        case 'R': open_rate = atof(optarg); break;
        case 'e': events = atol(optarg); break;
        case 'P': rss_pid = atoi(optarg); break;
        case 'k': runs = atoi(optarg); break;
        case 'i': idle_secs = atof(optarg); break;
        case 'W': wake_rate = atof(optarg); break;
        default: usage();
        }
    }
    if (open_rate <= 0) open_rate = strcmp(mode, "idle") == 0 ? 5000 : 1000;
    if (port <= 0 || rate <= 0 || secs < 0 || conns <= 0 || nstreams <= 0 || open_rate <= 0 || runs <= 0 ||
        idle_secs < 0 || wake_rate < 0)
        usage();
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    char dflt[512];
    if (strcmp(mode, "streams") == 0) {
        if (!events) events = (long)((nstreams / open_rate + warm + secs + 1.0) * 20.0);
        if (!body) {
            snprintf(dflt, sizeof dflt,
                     "{\"model\":\"%s\",\"stream\":true,\"max_tokens\":%ld,"
                     "\"messages\":[{\"role\":\"user\",\"content\":\"Count slowly.\"}]}", model, events);
            body = dflt;
        }
    } else if (!body) {
        snprintf(dflt, sizeof dflt,
                 "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello in one short sentence.\"}],"
                 "\"max_tokens\":16}", model);
        body = dflt;
    }
    build_request(body);
    if (strcmp(mode, "startup") == 0) {
        if (optind >= argc) usage();
        return mode_startup(runs, argv + optind);
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    if (strcmp(mode, "rate") == 0) return mode_rate(conns, rate, secs, warm);
    if (strcmp(mode, "streams") == 0) return mode_streams(nstreams, secs, warm, open_rate, rss_pid);
    if (strcmp(mode, "idle") == 0)
        return mode_idle(nstreams, conns, rate, secs, warm, idle_secs, open_rate, wake_rate, rss_pid);
    usage();
    return 2;
}
