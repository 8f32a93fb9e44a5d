/* netaddr: IP addresses and prefixes as the gateway compares them
 * (trusted_proxies, rate limits per client). */
#ifndef AUTOSWITCH_NETADDR_H
#define AUTOSWITCH_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NETADDR_TEXT_MAX 46   /* INET6_ADDRSTRLEN */

struct netaddr {
    int family;       /* AF_INET or AF_INET6; an IPv4-mapped IPv6 address is AF_INET */
    uint8_t b[16];
};

/* "192.0.2.1", "2001:db8::1", "[2001:db8::1]".  0, or -1. */
int netaddr_parse(const char *s, size_t n, struct netaddr *a);
/* An address or a prefix ("10.0.0.0/8", "fd00::/8", "::1").  0, or -1. */
int netaddr_prefix_parse(const char *s, struct netaddr *net, unsigned *bits);
bool netaddr_in(const struct netaddr *a, const struct netaddr *net, unsigned bits);
/* What a per-client limit counts: an IPv4 address, or an IPv6 address's
 * /64 (one subscriber usually holds a whole /64). */
void netaddr_group(const char *addr, char *out, size_t cap);

#endif
