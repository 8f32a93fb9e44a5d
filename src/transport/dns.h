/* dns: a non-blocking stub resolver driven by the loop.
 *
 * getaddrinfo() would block the only thread, so names are resolved here:
 * numeric addresses directly, then the hosts file, then UDP A and AAAA
 * queries to the nameservers of resolv.conf (nameserver lines, options
 * timeout:N attempts:N), with a random query id and a random source port
 * per query, answers checked against the question (id, name, type,
 * class, source address), a TTL cache (floor DNS_TTL_MIN_S, ceiling
 * DNS_TTL_MAX_S), and concurrent lookups of one name sharing one query.
 * Answers are IPv4 first, then IPv6.
 *
 * Details: names are resolved as given (absolute: search/domain/ndots
 * are ignored).  No TCP fallback: an answer with TC set counts as no
 * answer from that server and the next one is asked.  Once A or AAAA has
 * produced addresses the other gets 500 ms more, then the lookup answers
 * with what it has.  Only positive answers are cached (256 names, oldest
 * evicted).  "localhost" is 127.0.0.1 and ::1 unless the hosts file says
 * otherwise.
 *
 * Environment (read by dns_configure):
 *   AUTOSWITCH_DNS_PORT     UDP port of the nameservers (default 53; for
 *                           tests against a server on a high port)
 *   AUTOSWITCH_DNS_TTL_MIN  cache TTL floor in seconds, 0..DNS_TTL_MAX_S,
 *                           instead of DNS_TTL_MIN_S (tests only) */
#ifndef AUTOSWITCH_DNS_H
#define AUTOSWITCH_DNS_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_MAX_ADDRS 8
#define DNS_TTL_MIN_S 5
#define DNS_TTL_MAX_S 3600
#define DNS_MAX_NAMESERVERS 3
#define DNS_DEFAULT_TIMEOUT_S 5      /* resolv.conf "options timeout:" default */
#define DNS_DEFAULT_ATTEMPTS 2       /* resolv.conf "options attempts:" default */

struct dns_addr {
    int family;                  /* AF_INET or AF_INET6 */
    union {
        struct in_addr v4;
        struct in6_addr v6;
    } a;
};

/* err is NULL on success (n >= 1), else a static reason: "NXDOMAIN",
 * "no address", "timeout", "SERVFAIL", "nameserver unreachable",
 * "truncated answer (no TCP fallback)", "invalid name". */
typedef void (*dns_cb)(void *ctx, const struct dns_addr *addrs, size_t n, const char *err);

struct dns_lookup;

/* (Re)read the two files; NULL means /etc/resolv.conf, /etc/hosts.
 * Missing files are fine: no hosts; with no nameserver line 127.0.0.1 is
 * asked, as glibc does.  The cache is kept while the nameservers stay the
 * same.  0, or -1 (file unreadable, out of memory: the old configuration
 * stays).  dns_resolve before any dns_configure reads the default files. */
int dns_configure(const char *resolv_conf, const char *hosts_file);

/* Start resolving host (a name or a numeric IPv4/IPv6 address).  The
 * callback always runs later from the loop, never inside this call.
 * NULL when out of memory. */
struct dns_lookup *dns_resolve(const char *host, dns_cb cb, void *ctx);
/* The callback of l will not be called; l is freed.  Valid until the
 * callback has run (the handle is gone then); NULL is ignored. */
void dns_cancel(struct dns_lookup *l);
/* Forget every cached answer (tests, reload). */
void dns_flush_cache(void);
void dns_shutdown(void);

/* --- pure helpers, exported for unit tests and fuzzing --- */

/* Build a query for name/type (1 = A, 28 = AAAA) with id into out.
 * Returns its length or -1 (name too long or invalid). */
int dns_build_query(uint8_t *out, size_t cap, uint16_t id, const char *name, uint16_t qtype);

/* Parse an answer to (id, name, qtype).  Fills up to max addresses of
 * that type (following CNAMEs inside the answer) and the smallest TTL.
 * Returns the number of addresses (>= 0), or a negative dns_parse_err. */
enum dns_parse_err {
    DNS_PARSE_MALFORMED = -1,    /* truncated, bad pointers, loops */
    DNS_PARSE_MISMATCH = -2,     /* not an answer to this question: ignore */
    DNS_PARSE_TRUNCATED = -3,    /* TC bit set */
    DNS_PARSE_NXDOMAIN = -4,
    DNS_PARSE_SERVFAIL = -5,     /* or any other RCODE */
};
int dns_parse_answer(const uint8_t *msg, size_t len, uint16_t id, const char *name, uint16_t qtype,
                     struct dns_addr *out, size_t max, uint32_t *ttl);

#endif
