#include "probe_cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for fd to become ready for events before the deadline: 1 ready,
 * 0 timed out, -1 error. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = { .fd = fd, .events = events, .revents = 0 };
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 ? -1 : r > 0;
    }
}

/* Connect to addr, send the request, check the status line.  0 ok,
 * 1 failed (reason in why), 2 connection refused (try the next address). */
static int try_addr(const struct sockaddr *sa, socklen_t len, int port, long long deadline, char *why,
                    size_t cap)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, cap, "socket: %s", strerror(errno));
        return 2;
    }
    int rc = 1;
    if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
        snprintf(why, cap, "connect: %s", strerror(errno));
        rc = 2;
        goto out;
    }
    int w = wait_fd(fd, POLLOUT, deadline);
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (w <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
        snprintf(why, cap, "connect: %s", w == 0 ? "timed out" : strerror(soerr ? soerr : errno));
        rc = soerr == ECONNREFUSED ? 2 : 1;
        goto out;
    }
    char req[96];
    int n = snprintf(req, sizeof req, "GET /healthz HTTP/1.0\r\nHost: localhost:%d\r\nConnection: close\r\n\r\n",
                     port);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        snprintf(why, cap, "send: %s", strerror(errno));
        goto out;
    }
    /* Only the status line matters: "HTTP/1.x 200 ..." */
    char head[64];
    size_t got = 0;
    while (got < sizeof head - 1 && !memchr(head, '\n', got)) {
        int r = wait_fd(fd, POLLIN, deadline);
        if (r <= 0) {
            snprintf(why, cap, "%s", r == 0 ? "no answer in time" : strerror(errno));
            goto out;
        }
        ssize_t k = recv(fd, head + got, sizeof head - 1 - got, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    head[got] = '\0';
    if (got >= 12 && memcmp(head, "HTTP/1.", 7) == 0 && memcmp(head + 8, " 200", 4) == 0 &&
        (got == 12 || head[12] == ' ' || head[12] == '\r' || head[12] == '\n')) {
        rc = 0;
    } else {
        head[strcspn(head, "\r\n")] = '\0';
        snprintf(why, cap, "answer: %s", got ? head : "(none)");
    }
out:
    close(fd);
    return rc;
}

int probe_cli(int port)
{
    long long deadline = now_ms() + PROBE_CLI_TIMEOUT_MS;
    struct sockaddr_in v4;
    memset(&v4, 0, sizeof v4);
    v4.sin_family = AF_INET;
    v4.sin_port = htons((unsigned short)port);
    v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct sockaddr_in6 v6;
    memset(&v6, 0, sizeof v6);
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons((unsigned short)port);
    v6.sin6_addr = in6addr_loopback;

    char why[160] = "";
    int rc = try_addr((const struct sockaddr *)&v4, sizeof v4, port, deadline, why, sizeof why);
    if (rc == 2) {
        char why6[160] = "";
        if (try_addr((const struct sockaddr *)&v6, sizeof v6, port, deadline, why6, sizeof why6) == 0)
            return 0;
    }
    if (rc != 0)
        fprintf(stderr, "autoswitch: probe http://127.0.0.1:%d/healthz: %s\n", port, why);
    return rc == 0 ? 0 : 1;
}
