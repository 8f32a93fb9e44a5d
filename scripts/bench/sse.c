/* sse: the benchmark's streaming upstream (scripts/bench.sh).
 *
 * Answers every HTTP/1.1 request on 127.0.0.1 with a chat.completion.chunk
 * event stream (chunked, keep-alive): the first event at once, then one
 * every INTERVAL ms.  Every event carries content, and its content holds
 * "ts=<CLOCK_MONOTONIC ns>" taken just before the write, so a client on
 * the same machine can measure each event's delay.  The number of events
 * is the request body's "max_tokens" (else -n); then a finish event,
 * "data: [DONE]" and the last chunk.
 *
 *   sse [-p PORT] [-f PORTFILE] [-i INTERVAL_MS] [-n EVENTS]
 *
 * One thread, epoll.  Streams are due in a FIFO: every stream's next event
 * is INTERVAL after its previous one, so due times stay in order.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FD 65536
#define IN_MAX 65536

struct conn {
    int fd;
    uint32_t gen;
    int streaming;
    long left;            /* content events still to send */
    uint64_t seq;         /* events sent on this stream */
    char *in;
    size_t inlen;
    char *out;            /* bytes the socket did not take yet */
    size_t outlen, outcap;
    int want_out;
};

struct due { int fd; uint32_t gen; uint64_t at; };

static struct conn *conns[MAX_FD];
static uint32_t gens[MAX_FD];
static int ep;
static uint64_t interval_ns = 50000000ull;
static long default_events = 200;

static struct due *fifo;
static size_t fcap, fhead, fcount;

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

static void fifo_push(int fd, uint32_t gen, uint64_t at)
{
    if (fcount == fcap) {
        size_t ncap = fcap ? fcap * 2 : 4096;
        struct due *n = malloc(ncap * sizeof *n);
        if (!n) die("malloc");
        for (size_t i = 0; i < fcount; i++) n[i] = fifo[(fhead + i) % fcap];
        free(fifo);
        fifo = n;
        fcap = ncap;
        fhead = 0;
    }
    fifo[(fhead + fcount) % fcap] = (struct due){ fd, gen, at };
    fcount++;
}

static void conn_close(struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conns[c->fd] = NULL;
    gens[c->fd]++;
    free(c->in);
    free(c->out);
    free(c);
}

static void set_out_interest(struct conn *c, int on)
{
    if (c->want_out == on) return;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0), .data.fd = c->fd };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

/* Queue or write bytes; -1 when the connection broke (it is closed). */
static int send_bytes(struct conn *c, const char *p, size_t n)
{
    if (c->outlen == 0) {
        ssize_t w = write(c->fd, p, n);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR) { conn_close(c); return -1; }
            w = 0;
        }
        p += w;
        n -= (size_t)w;
        if (n == 0) return 0;
    }
    if (c->outlen + n > c->outcap) {
        size_t ncap = c->outcap ? c->outcap : 4096;
        while (ncap < c->outlen + n) ncap *= 2;
        char *b = realloc(c->out, ncap);
        if (!b) die("realloc");
        c->out = b;
        c->outcap = ncap;
    }
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
    set_out_interest(c, 1);
    return 0;
}

static int flush_out(struct conn *c)
{
    while (c->outlen) {
        ssize_t w = write(c->fd, c->out, c->outlen);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) return 0;
            conn_close(c);
            return -1;
        }
        memmove(c->out, c->out + w, c->outlen - (size_t)w);
        c->outlen -= (size_t)w;
    }
    set_out_interest(c, 0);
    return 0;
}

/* One SSE event as one HTTP chunk. */
static int send_event(struct conn *c, const char *data)
{
    char buf[1024];
    int dl = (int)strlen(data);
    int n = snprintf(buf, sizeof buf, "%x\r\n%s\r\n", dl, data);
    return send_bytes(c, buf, (size_t)n);
}

static int send_content_event(struct conn *c)
{
    char data[512];
    uint64_t ts = now_ns();
    snprintf(data, sizeof data,
             "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
             "\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ts=%llu seq=%llu \"},"
             "\"finish_reason\":null}]}\n\n",
             (unsigned long long)ts, (unsigned long long)c->seq);
    c->seq++;
    c->left--;
    return send_event(c, data);
}

static int finish_stream(struct conn *c)
{
    if (send_event(c, "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
                      "\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n") < 0)
        return -1;
    if (send_event(c, "data: [DONE]\n\n") < 0) return -1;
    if (send_bytes(c, "0\r\n\r\n", 5) < 0) return -1;
    c->streaming = 0;
    return 0;
}

static long find_max_tokens(const char *body, size_t n)
{
    static const char key[] = "\"max_tokens\"";
    for (size_t i = 0; i + sizeof key - 1 <= n; i++) {
        if (memcmp(body + i, key, sizeof key - 1) != 0) continue;
        size_t j = i + sizeof key - 1;
        while (j < n && (body[j] == ' ' || body[j] == ':')) j++;
        long v = 0;
        int any = 0;
        while (j < n && body[j] >= '0' && body[j] <= '9') { v = v * 10 + (body[j] - '0'); j++; any = 1; }
        if (any && v > 0) return v;
    }
    return default_events;
}

/* Parse one request from c->in; start its stream.  0 = need more, 1 = started, -1 = closed. */
static int try_request(struct conn *c)
{
    char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
    if (!end) {
        if (c->inlen >= IN_MAX) { conn_close(c); return -1; }
        return 0;
    }
    size_t head = (size_t)(end - c->in) + 4;
    size_t clen = 0;
    for (char *line = memchr(c->in, '\n', head); line && line < c->in + head; line = memchr(line, '\n', (size_t)(c->in + head - line))) {
        line++;
        if (strncasecmp(line, "content-length:", 15) == 0) clen = strtoul(line + 15, NULL, 10);
    }
    if (head + clen > IN_MAX) { conn_close(c); return -1; }
    if (c->inlen < head + clen) return 0;
    long events = find_max_tokens(c->in + head, clen);
    memmove(c->in, c->in + head + clen, c->inlen - head - clen);
    c->inlen -= head + clen;

    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    if (send_bytes(c, resp, sizeof resp - 1) < 0) return -1;
    c->streaming = 1;
    c->left = events;
    c->seq = 0;
    if (send_content_event(c) < 0) return -1;
    if (c->left == 0) return finish_stream(c) < 0 ? -1 : 1;
    fifo_push(c->fd, c->gen, now_ns() + interval_ns);
    return 1;
}

static void on_readable(struct conn *c)
{
    for (;;) {
        if (c->inlen == IN_MAX) { conn_close(c); return; }
        ssize_t r = read(c->fd, c->in + c->inlen, IN_MAX - c->inlen);
        if (r == 0) { conn_close(c); return; }
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            conn_close(c);
            return;
        }
        c->inlen += (size_t)r;
    }
    while (!c->streaming && c->inlen) {
        int s = try_request(c);
        if (s <= 0) return;
    }
}

static void run_due(void)
{
    while (fcount) {
        struct due d = fifo[fhead];
        uint64_t now = now_ns();
        if (d.at > now) return;
        fhead = (fhead + 1) % fcap;
        fcount--;
        struct conn *c = conns[d.fd];
        if (!c || c->gen != d.gen || !c->streaming) continue;
        if (send_content_event(c) < 0) continue;
        if (c->left > 0) {
            fifo_push(c->fd, c->gen, d.at + interval_ns);
        } else {
            if (finish_stream(c) < 0) continue;
            /* a pipelined next request */
            while (!c->streaming && c->inlen && conns[d.fd] == c)
                if (try_request(c) <= 0) break;
        }
    }
}

int main(int argc, char **argv)
{
    int port = 0;
    const char *portfile = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "p:f:i:n:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'f': portfile = optarg; break;
        case 'i': interval_ns = strtoull(optarg, NULL, 10) * 1000000ull; break;
        case 'n': default_events = atol(optarg); break;
        default:
            fprintf(stderr, "usage: sse [-p PORT] [-f PORTFILE] [-i INTERVAL_MS] [-n EVENTS]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ls < 0) die("socket");
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
    if (listen(ls, 4096) < 0) die("listen");
    socklen_t sl = sizeof sa;
    getsockname(ls, (struct sockaddr *)&sa, &sl);
    if (portfile) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", portfile);
        FILE *f = fopen(tmp, "w");
        if (!f) die(tmp);
        fprintf(f, "%d\n", ntohs(sa.sin_port));
        fclose(f);
        rename(tmp, portfile);
    } else {
        printf("%d\n", ntohs(sa.sin_port));
        fflush(stdout);
    }

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = ls };
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);

    struct epoll_event evs[512];
    for (;;) {
        int timeout = -1;
        if (fcount) {
            uint64_t now = now_ns(), at = fifo[fhead].at;
            timeout = at <= now ? 0 : (int)((at - now + 999999) / 1000000);
        }
        int n = epoll_wait(ep, evs, 512, timeout);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                for (;;) {
                    int cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0) break;
                    if (cfd >= MAX_FD) { close(cfd); continue; }
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *c = calloc(1, sizeof *c);
                    if (!c || !(c->in = malloc(IN_MAX))) die("malloc");
                    c->fd = cfd;
                    c->gen = gens[cfd];
                    conns[cfd] = c;
                    struct epoll_event cev = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = cfd };
                    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
                }
                continue;
            }
            struct conn *c = conns[fd];
            if (!c) continue;
            if (evs[i].events & EPOLLOUT) {
                if (flush_out(c) < 0) continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                on_readable(c);
        }
        run_due();
    }
}
