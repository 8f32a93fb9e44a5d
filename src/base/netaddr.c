#include "netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t V4_MAPPED[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int netaddr_parse(const char *s, size_t n, struct netaddr *a)
{
    char text[NETADDR_TEXT_MAX + 2];
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof text)
        return -1;
    memcpy(text, s, n);
    text[n] = '\0';
    memset(a, 0, sizeof *a);
    if (inet_pton(AF_INET, text, a->b) == 1) {
        a->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, a->b) != 1)
        return -1;
    a->family = AF_INET6;
    if (memcmp(a->b, V4_MAPPED, sizeof V4_MAPPED) == 0) {
        memmove(a->b, a->b + 12, 4);
        memset(a->b + 4, 0, 12);
        a->family = AF_INET;
    }
    return 0;
}

int netaddr_prefix_parse(const char *s, struct netaddr *net, unsigned *bits)
{
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (netaddr_parse(s, n, net) < 0)
        return -1;
    unsigned max = net->family == AF_INET ? 32 : 128;
    if (!slash) {
        *bits = max;
        return 0;
    }
    char *end;
    unsigned long v = strtoul(slash + 1, &end, 10);
    if (end == slash + 1 || *end || v > max)
        return -1;
    *bits = (unsigned)v;
    return 0;
}

bool netaddr_in(const struct netaddr *a, const struct netaddr *net, unsigned bits)
{
    if (a->family != net->family)
        return false;
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a->b, net->b, whole) != 0)
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a->b[whole] & mask) == (net->b[whole] & mask);
}

void netaddr_group(const char *addr, char *out, size_t cap)
{
    struct netaddr a;
    if (netaddr_parse(addr, strlen(addr), &a) < 0 || a.family == AF_INET) {
        snprintf(out, cap, "%s", addr);
        return;
    }
    memset(a.b + 8, 0, 8);
    char text[NETADDR_TEXT_MAX];
    inet_ntop(AF_INET6, a.b, text, sizeof text);
    snprintf(out, cap, "%s/64", text);
}
