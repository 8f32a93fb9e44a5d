#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "xport.h"

struct plain {
    struct xport x;
    char err[96];
};

static void remember(struct plain *p, int e)
{
    if (e == 0)
        e = ECONNRESET;
    strerror_r(e, p->err, sizeof p->err);
}

static ssize_t plain_read(struct xport *x, void *buf, size_t n)
{
    ssize_t r = recv(x->fd, buf, n, 0);
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        remember((struct plain *)x, errno);
    if (r < 0 && errno == EINTR)
        errno = EAGAIN;
    return r;
}

static ssize_t plain_write(struct xport *x, const void *buf, size_t n)
{
    ssize_t r = send(x->fd, buf, n, MSG_NOSIGNAL);
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        remember((struct plain *)x, errno);
    if (r < 0 && errno == EINTR)
        errno = EAGAIN;
    return r;
}

static int plain_flush(struct xport *x)
{
    (void)x;
    return 0;
}

static short plain_events(struct xport *x, short want)
{
    (void)x;
    return want;
}

static bool plain_buffered(struct xport *x)
{
    (void)x;
    return false;
}

static const char *plain_error(struct xport *x)
{
    struct plain *p = (struct plain *)x;
    return p->err[0] ? p->err : "connection closed";
}

static bool plain_resumed(struct xport *x)
{
    (void)x;
    return false;
}

static unsigned plain_state(struct xport *x)
{
    (void)x;
    return XPORT_ESTABLISHED | XPORT_CLEAN_END;   /* TCP has no truncation attack to tell apart */
}

static void plain_free(struct xport *x)
{
    close(x->fd);
    free(x);
}

static const struct xport_ops plain_ops = {
    plain_read, plain_write, plain_flush, plain_events, plain_buffered, plain_error, plain_resumed, plain_state, plain_free,
};

struct xport *xport_plain(int fd)
{
    struct plain *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->x.ops = &plain_ops;
    p->x.fd = fd;
    return &p->x;
}
