/* libFuzzer target: dns_parse_answer on a received datagram, and a
 * dns_build_query round trip.
 *
 * Input:
 *   bytes 0-1   the query id we "sent"
 *   byte 2      bit 0: qtype AAAA (else A); bits 1-3: name (7: taken from
 *               the input, see below); bits 4-7: max addresses (15: out and
 *               ttl NULL)
 *   [byte 3     with name 7: its length L, then L bytes of name]
 *   the rest    the datagram
 *
 * Checked: the answer is an error code or a count <= max; addresses
 * have the family asked for; the TTL is 0 without addresses and never
 * has the top bit set; any prefix of the datagram is malformed or gets
 * the same answer; once the question matched, setting TC / an RCODE or
 * changing the id gives the matching error.  The query built for the
 * name is exactly as long as promised, spells the name, is rejected as
 * an answer to itself, and an answer made from it parses back. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "dns.h"
#include "fuzz_common.h"

static const char *const names[7] = {
    "example.com", "EXAMPLE.com.", "a", "many.example", "xn--bcher-kva.example", "a.b.c.d.e.f.g.h",
    "_srv._tcp.x-y.example",
};

static int parse(const uint8_t *msg, size_t len, uint16_t id, const char *name, uint16_t qtype,
                 struct dns_addr *out, size_t max, uint32_t *ttl)
{
    uint8_t *copy = (uint8_t *)fuzz_dup(msg, len);
    int r = dns_parse_answer(copy, len, id, name, qtype, out, max, ttl);
    free(copy);
    return r;
}

static void check_result(int r, size_t max, uint16_t qtype, const struct dns_addr *out, const uint32_t *ttl)
{
    FUZZ_CHECK(r >= DNS_PARSE_SERVFAIL && r <= (int)max, "dns_parse_answer returned %d (max %zu)", r, max);
    if (out)
        for (int i = 0; i < r; i++)
            FUZZ_CHECK(out[i].family == (qtype == 1 ? AF_INET : AF_INET6), "address %d family %d", i, out[i].family);
    if (ttl) {
        if (r <= 0)
            FUZZ_CHECK(*ttl == 0, "ttl %u without an address", *ttl);
        FUZZ_CHECK(*ttl <= INT32_MAX, "ttl %u has the top bit set", *ttl);
    }
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* The dotted name as dns_build_query should spell it. */
static void check_query_name(const uint8_t *q, size_t qlen, const char *name)
{
    char text[300];
    size_t t = 0, i = 12;
    for (;;) {
        FUZZ_CHECK(i < qlen, "query name runs past the query");
        uint8_t l = q[i++];
        if (!l)
            break;
        FUZZ_CHECK(l <= 63 && qlen - i >= l, "query label of %u", l);
        if (t)
            text[t++] = '.';
        FUZZ_CHECK(t + l < sizeof text, "query name too long");
        memcpy(text + t, q + i, l);
        t += l;
        i += l;
    }
    FUZZ_CHECK(qlen - i == 4, "query has %zu bytes after the name", qlen - i);
    size_t nl = strlen(name);
    if (nl && name[nl - 1] == '.')
        nl--;
    FUZZ_CHECK(t == nl && memcmp(text, name, nl) == 0, "query spells \"%.*s\" for \"%s\"", (int)t, text, name);
}

static void round_trip(const char *name, uint16_t qtype, uint16_t id, const uint8_t *rdata, size_t rdl)
{
    uint8_t q[600];
    int ql = dns_build_query(q, sizeof q, id, name, qtype);
    struct dns_addr out[DNS_MAX_ADDRS];
    uint32_t ttl = 7;
    if (ql < 0) {
        /* A name that cannot be asked for cannot be answered either. */
        uint8_t dummy[64] = { 0 };
        FUZZ_CHECK(parse(dummy, sizeof dummy, id, name, qtype, out, DNS_MAX_ADDRS, &ttl) == DNS_PARSE_MISMATCH,
                   "unaskable name \"%s\" not refused", name);
        return;
    }
    FUZZ_CHECK(ql >= 12 + 2 + 4 && ql <= 12 + 255 + 4, "query length %d", ql);
    FUZZ_CHECK(q[0] == id >> 8 && q[1] == (id & 0xff) && q[4] == 0 && q[5] == 1, "query header");
    check_query_name(q, (size_t)ql, name);
    uint8_t small[600];
    FUZZ_CHECK(dns_build_query(small, (size_t)ql, id, name, qtype) == ql, "exact cap refused");
    FUZZ_CHECK(dns_build_query(small, (size_t)ql - 1, id, name, qtype) == -1, "short cap accepted");
    FUZZ_CHECK(parse(q, (size_t)ql, id, name, qtype, out, DNS_MAX_ADDRS, &ttl) == DNS_PARSE_MISMATCH,
               "a query taken for an answer");

    /* Answer: QR set, one record owned by a pointer to the question. */
    size_t alen = qtype == 1 ? 4 : 16;
    uint8_t a[700];
    memcpy(a, q, (size_t)ql);
    a[2] |= 0x80;
    put16(a + 6, 1);
    size_t p = (size_t)ql;
    a[p++] = 0xc0;
    a[p++] = 12;
    put16(a + p, qtype);
    put16(a + p + 2, 1);
    uint32_t t = rdl >= 4 ? (uint32_t)rdata[0] << 24 | (uint32_t)rdata[1] << 16 | (uint32_t)rdata[2] << 8 | rdata[3]
                          : 300;
    a[p + 4] = (uint8_t)(t >> 24);
    a[p + 5] = (uint8_t)(t >> 16);
    a[p + 6] = (uint8_t)(t >> 8);
    a[p + 7] = (uint8_t)t;
    put16(a + p + 8, (unsigned)alen);
    p += 10;
    uint8_t addr[16] = { 192, 0, 2, 1 };
    memcpy(addr, rdata, rdl < alen ? rdl : alen);
    memcpy(a + p, addr, alen);
    p += alen;
    int r = parse(a, p, id, name, qtype, out, DNS_MAX_ADDRS, &ttl);
    FUZZ_CHECK(r == 1, "answer built from our query: %d", r);
    FUZZ_CHECK(memcmp(&out[0].a, addr, alen) == 0, "answer address differs");
    FUZZ_CHECK(ttl == (t > INT32_MAX ? 0 : t), "answer ttl %u for %u", ttl, t);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
    if (n < 3)
        return 0;
    uint16_t id = (uint16_t)(in[0] << 8 | in[1]);
    uint16_t qtype = (in[2] & 1) ? 28 : 1;
    unsigned which = (in[2] >> 1) & 7;
    unsigned maxsel = in[2] >> 4;
    size_t off = 3;
    char name[260];
    if (which == 7) {
        size_t l = n > 3 ? in[3] : 0;
        off = n > 3 ? 4 : 3;
        if (l > n - off)
            l = n - off;
        if (l > sizeof name - 1)
            l = sizeof name - 1;
        memcpy(name, in + off, l);
        name[l] = '\0';
        off += l;
    } else {
        snprintf(name, sizeof name, "%s", names[which]);
    }
    const uint8_t *msg = in + off;
    size_t len = n - off;

    struct dns_addr addrs[DNS_MAX_ADDRS];
    struct dns_addr *out = maxsel == 15 ? NULL : addrs;
    size_t max = maxsel == 15 ? 3 : (maxsel > DNS_MAX_ADDRS ? DNS_MAX_ADDRS : maxsel);
    uint32_t ttl = 0xdeadbeef;
    uint32_t *ttlp = maxsel == 15 ? NULL : &ttl;
    int r = parse(msg, len, id, name, qtype, out, max, ttlp);
    check_result(r, max, qtype, out, ttlp);

    /* Prefixes: malformed, or the same answer. */
    size_t ks[2] = { len ? len - 1 : 0, len ? id % len : 0 };
    for (int i = 0; i < 2; i++) {
        if (ks[i] >= len)
            continue;
        struct dns_addr a2[DNS_MAX_ADDRS];
        uint32_t t2 = 0;
        int r2 = parse(msg, ks[i], id, name, qtype, a2, DNS_MAX_ADDRS, &t2);
        check_result(r2, DNS_MAX_ADDRS, qtype, a2, &t2);
        if (r2 != DNS_PARSE_MALFORMED) {
            int r3 = parse(msg, len, id, name, qtype, addrs, DNS_MAX_ADDRS, &ttl);
            FUZZ_CHECK(r2 == r3, "prefix of %zu bytes: %d, whole %zu bytes: %d", ks[i], r2, len, r3);
            if (r2 > 0) {
                FUZZ_CHECK(t2 == ttl, "prefix: ttl %u, whole: %u", t2, ttl);
                for (int i = 0; i < r2; i++)
                    FUZZ_CHECK(a2[i].family == addrs[i].family &&
                                   memcmp(&a2[i].a, &addrs[i].a, qtype == 1 ? 4 : 16) == 0,
                               "prefix: address %d differs", i);
            }
        }
    }

    /* Header bits, once the question was accepted. */
    if (r >= 0 || r == DNS_PARSE_TRUNCATED || r == DNS_PARSE_NXDOMAIN || r == DNS_PARSE_SERVFAIL) {
        uint8_t *m = (uint8_t *)fuzz_dup(msg, len);
        m[2] |= 0x02;   /* TC */
        FUZZ_CHECK(dns_parse_answer(m, len, id, name, qtype, addrs, DNS_MAX_ADDRS, &ttl) == DNS_PARSE_TRUNCATED,
                   "TC ignored");
        m[2] &= (uint8_t)~0x02;
        m[3] = (uint8_t)((m[3] & 0xf0) | 3);
        FUZZ_CHECK(dns_parse_answer(m, len, id, name, qtype, addrs, DNS_MAX_ADDRS, &ttl) == DNS_PARSE_NXDOMAIN,
                   "NXDOMAIN ignored");
        m[3] = (uint8_t)((m[3] & 0xf0) | 2);
        FUZZ_CHECK(dns_parse_answer(m, len, id, name, qtype, addrs, DNS_MAX_ADDRS, &ttl) == DNS_PARSE_SERVFAIL,
                   "SERVFAIL ignored");
        FUZZ_CHECK(dns_parse_answer(m, len, (uint16_t)(id ^ 0x100), name, qtype, addrs, DNS_MAX_ADDRS, &ttl) ==
                       DNS_PARSE_MISMATCH,
                   "another id accepted");
        free(m);
    }

    round_trip(name, qtype, id, msg, len);
    return 0;
}
