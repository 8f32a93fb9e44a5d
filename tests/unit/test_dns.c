/* Unit tests of the DNS wire helpers (dns_build_query, dns_parse_answer)
 * and of the resolver paths that need no network (numeric literals, hosts
 * file, localhost, invalid names, cancel).
 *
 * Every parsed message is placed so that its last byte is the last byte
 * before a PROT_NONE page: a read past the end crashes the test. */
#include "dns.h"
#include "log.h"
#include "loop.h"
#include "tap.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define T_A 1
#define T_CNAME 5
#define T_AAAA 28
#define T_TXT 16
#define C_IN 1
#define F_QR 0x8000
#define F_RD 0x0100
#define F_RA 0x0080
#define F_TC 0x0200
#define F_ANSWER (F_QR | F_RD | F_RA)

/* ---------------- guard page ---------------- */

static uint8_t *guard_base;
static size_t page_size;

static void guard_init(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    guard_base = p;
    if (mprotect(guard_base + page_size, page_size, PROT_NONE) < 0) {
        perror("mprotect");
        exit(2);
    }
}

/* Copy msg[0, len) so that it ends right at the inaccessible page. */
static const uint8_t *at_guard(const uint8_t *msg, size_t len)
{
    uint8_t *p = guard_base + page_size - len;
    if (len)
        memcpy(p, msg, len);
    return p;
}

static int parse_g(const uint8_t *msg, size_t len, uint16_t id, const char *name, uint16_t qtype,
                   struct dns_addr *out, size_t max, uint32_t *ttl)
{
    return dns_parse_answer(at_guard(msg, len), len, id, name, qtype, out, max, ttl);
}

/* ---------------- message builder ---------------- */

struct msg {
    uint8_t b[2048];
    size_t n;
};

static void put8(struct msg *m, unsigned v)
{
    m->b[m->n++] = (uint8_t)v;
}

static void put16(struct msg *m, unsigned v)
{
    put8(m, v >> 8);
    put8(m, v & 0xff);
}

static void put32(struct msg *m, uint32_t v)
{
    put16(m, v >> 16);
    put16(m, v & 0xffff);
}

/* Labels of a dotted name; with end_root the terminating zero too. */
static void put_labels(struct msg *m, const char *name, int end_root)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        put8(m, (unsigned)l);
        memcpy(m->b + m->n, name, l);
        m->n += l;
        name += l + (dot ? 1 : 0);
    }
    if (end_root)
        put8(m, 0);
}

static void put_name(struct msg *m, const char *name)
{
    put_labels(m, name, 1);
}

static void put_ptr(struct msg *m, size_t off)
{
    put16(m, 0xc000 | (unsigned)off);
}

static void header(struct msg *m, uint16_t id, unsigned flags, unsigned qd, unsigned an)
{
    m->n = 0;
    put16(m, id);
    put16(m, flags);
    put16(m, qd);
    put16(m, an);
    put16(m, 0);
    put16(m, 0);
}

static void question(struct msg *m, const char *name, unsigned type)
{
    put_name(m, name);
    put16(m, type);
    put16(m, C_IN);
}

/* Fixed part of an RR after its owner name; rdlen follows. */
static void rr_fixed(struct msg *m, unsigned type, uint32_t ttl, unsigned rdlen)
{
    put16(m, type);
    put16(m, C_IN);
    put32(m, ttl);
    put16(m, rdlen);
}

static void rr_a(struct msg *m, const char *owner, uint32_t ttl, const char *ip)
{
    struct in_addr a;
    inet_pton(AF_INET, ip, &a);
    put_name(m, owner);
    rr_fixed(m, T_A, ttl, 4);
    memcpy(m->b + m->n, &a, 4);
    m->n += 4;
}

static void rr_aaaa(struct msg *m, const char *owner, uint32_t ttl, const char *ip)
{
    struct in6_addr a;
    inet_pton(AF_INET6, ip, &a);
    put_name(m, owner);
    rr_fixed(m, T_AAAA, ttl, 16);
    memcpy(m->b + m->n, &a, 16);
    m->n += 16;
}

static void rr_cname(struct msg *m, const char *owner, uint32_t ttl, const char *target)
{
    put_name(m, owner);
    rr_fixed(m, T_CNAME, ttl, (unsigned)strlen(target) + 2);
    put_name(m, target);
}

static int addr_is(const struct dns_addr *a, const char *ip)
{
    char buf[INET6_ADDRSTRLEN];
    if (!inet_ntop(a->family, &a->a, buf, sizeof buf))
        return 0;
    return strcmp(buf, ip) == 0;
}

/* Every strict prefix of msg must be rejected as malformed, without
 * reading past its end (the guard page catches that). */
static void check_prefixes(const struct msg *m, const char *name, uint16_t qtype, const char *what)
{
    int bad = 0;
    for (size_t len = 0; len < m->n; len++) {
        struct dns_addr out[DNS_MAX_ADDRS];
        uint32_t ttl;
        int rc = parse_g(m->b, len, 0x1234, name, qtype, out, DNS_MAX_ADDRS, &ttl);
        if (rc != DNS_PARSE_MALFORMED) {
            printf("# %s: prefix %zu of %zu gave %d\n", what, len, m->n, rc);
            bad++;
        }
    }
    ok(bad == 0, "%s: all %zu truncated prefixes are malformed", what, m->n);
}

/* ---------------- dns_build_query ---------------- */

static void test_build_query(void)
{
    uint8_t out[512];
    static const uint8_t want[] = {
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
        0x00, 0x01, 0x00, 0x01,
    };
    int n = dns_build_query(out, sizeof out, 0x1234, "example.com", T_A);
    is_int(n, sizeof want, "query length");
    ok(n == (int)sizeof want && memcmp(out, want, sizeof want) == 0, "query bytes: id, RD, QDCOUNT 1, name, A, IN");

    n = dns_build_query(out, sizeof out, 0x1234, "example.com.", T_A);
    ok(n == (int)sizeof want && memcmp(out, want, sizeof want) == 0, "trailing dot gives the same bytes");

    n = dns_build_query(out, sizeof out, 0xbeef, "Host-1_x.Example.COM", T_AAAA);
    static const uint8_t want6[] = {
        0xbe, 0xef, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        8, 'H', 'o', 's', 't', '-', '1', '_', 'x', 7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'C', 'O', 'M', 0,
        0x00, 0x1c, 0x00, 0x01,
    };
    ok(n == (int)sizeof want6 && memcmp(out, want6, sizeof want6) == 0, "AAAA query bytes, case kept");

    is_int(dns_build_query(out, sizeof want - 1, 1, "example.com", T_A), -1, "cap one short: -1");
    is_int(dns_build_query(out, sizeof want, 1, "example.com", T_A), (int)sizeof want, "exact cap fits");
    is_int(dns_build_query(out, sizeof out, 1, "", T_A), -1, "empty name");
    is_int(dns_build_query(out, sizeof out, 1, ".", T_A), -1, "root only");
    is_int(dns_build_query(out, sizeof out, 1, "a..b", T_A), -1, "empty label");
    is_int(dns_build_query(out, sizeof out, 1, ".a", T_A), -1, "leading dot");
    is_int(dns_build_query(out, sizeof out, 1, "a.b..", T_A), -1, "two trailing dots");
    is_int(dns_build_query(out, sizeof out, 1, "a b.com", T_A), -1, "space");
    is_int(dns_build_query(out, sizeof out, 1, "a%b.com", T_A), -1, "percent");
    is_int(dns_build_query(out, sizeof out, 1, "caf\xc3\xa9.com", T_A), -1, "non-ASCII");
    is_int(dns_build_query(out, sizeof out, 1, NULL, T_A), -1, "NULL name");

    char label[70];
    memset(label, 'a', 63);
    label[63] = '\0';
    ok(dns_build_query(out, sizeof out, 1, label, T_A) > 0, "63-octet label ok");
    memset(label, 'a', 64);
    label[64] = '\0';
    is_int(dns_build_query(out, sizeof out, 1, label, T_A), -1, "64-octet label refused");

    /* 253 text characters = 255 wire octets, the maximum (RFC 1035 2.3.4). */
    char longname[300];
    size_t p = 0;
    for (int i = 0; i < 4; i++) {
        size_t l = i < 3 ? 63 : 61;
        memset(longname + p, 'a' + i, l);
        p += l;
        if (i < 3)
            longname[p++] = '.';
    }
    longname[p] = '\0';
    is_int(strlen(longname), 253, "test name is 253 characters");
    is_int(dns_build_query(out, sizeof out, 1, longname, T_A), 12 + 255 + 4, "255-octet wire name ok");
    longname[p] = 'x';
    longname[p + 1] = '\0';
    is_int(dns_build_query(out, sizeof out, 1, longname, T_A), -1, "256-octet wire name refused");
}

/* ---------------- dns_parse_answer ---------------- */

static void test_parse_a(void)
{
    struct msg m;
    struct dns_addr out[DNS_MAX_ADDRS];
    uint32_t ttl = 99;

    header(&m, 0x1234, F_ANSWER, 1, 2);
    question(&m, "example.com", T_A);
    rr_a(&m, "example.com", 300, "192.0.2.1");
    rr_a(&m, "example.com", 60, "192.0.2.2");
    int rc = parse_g(m.b, m.n, 0x1234, "example.com", T_A, out, DNS_MAX_ADDRS, &ttl);
    is_int(rc, 2, "A: two addresses");
    ok(rc == 2 && out[0].family == AF_INET && addr_is(&out[0], "192.0.2.1") && addr_is(&out[1], "192.0.2.2"),
       "A: addresses in order");
    is_int(ttl, 60, "A: smallest TTL");
    check_prefixes(&m, "example.com", T_A, "A answer");

    rc = parse_g(m.b, m.n, 0x1234, "EXAMPLE.com.", T_A, out, DNS_MAX_ADDRS, &ttl);
    is_int(rc, 2, "name compared case-insensitively, trailing dot ok");
    rc = parse_g(m.b, m.n, 0x1234, "example.com", T_A, out, 1, &ttl);
    is_int(rc, 1, "max 1 -> 1 address");
    rc = parse_g(m.b, m.n, 0x1234, "example.com", T_A, NULL, 0, NULL);
    is_int(rc, 0, "max 0, NULL out and ttl: 0, no crash");

    /* The server may echo the question in another case (RFC 4343). */
    header(&m, 0x1234, F_ANSWER, 1, 1);
    question(&m, "ExAmPlE.CoM", T_A);
    rr_a(&m, "EXAMPLE.COM", 5, "192.0.2.3");
    rc = parse_g(m.b, m.n, 0x1234, "example.com", T_A, out, DNS_MAX_ADDRS, &ttl);
    ok(rc == 1 && addr_is(&out[0], "192.0.2.3"), "mixed-case echo accepted");

    /* Records of another type and of other names are skipped. */
    header(&m, 0x1234, F_ANSWER, 1, 3);
    question(&m, "example.com", T_A);
    rr_aaaa(&m, "example.com", 300, "2001:db8::1");
    rr_a(&m, "other.example", 300, "192.0.2.9");
    rr_a(&m, "example.com", 300, "192.0.2.4");
    rc = parse_g(m.b, m.n, 0x1234, "example.com", T_A, out, DNS_MAX_ADDRS, &ttl);
    ok(rc == 1 && addr_is(&out[0], "192.0.2.4"), "other types / other owners ignored");

    /* NODATA: NOERROR with no answer. */
    header(&m, 0x1234, F_ANSWER, 1, 0);
    question(&m, "example.com", T_A);
    ttl = 99;
    rc = parse_g(m.b, m.n, 0x1234, "example.com", T_A, out, DNS_MAX_ADDRS, &ttl);
    is_int(rc, 0, "NOERROR without answers: 0");
    is_int(ttl, 0, "ttl 0 when no address");

    /* More addresses than fit. */
    header(&m, 0x1234, F_ANSWER, 1, 12);
    question(&m, "many.example", T_A);
    for (int i = 0; i < 12; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "198.51.100.%d", i + 1);
        rr_a(&m, "many.example", (uint32_t)(1000 - i), ip);
    }
    rc = parse_g(m.b, m.n, 0x1234, "many.example", T_A, out, DNS_MAX_ADDRS, &ttl);
    is_int(rc, DNS_MAX_ADDRS, "12 records, DNS_MAX_ADDRS returned");
    ok(addr_is(&out[DNS_MAX_ADDRS - 1], "198.51.100.8"), "first ones kept");

    /* A with a wrong RDLENGTH. */
    header(&m, 0x1234, F_ANSWER, 1, 1);
    question(&m, "example.com", T_A);
    put_name(&m, "example.com");
    rr_fixed(&m, T_A, 60, 5);
    put32(&m, 0x01020304);
    put8(&m, 5);
    rc = parse_g(m.b, m.n, 0x1234, "example.com", T_A, out, DNS_MAX_ADDRS, &ttl);
    is_int(rc, DNS_PARSE_MALFORMED, "A with RDLENGTH 5: malformed");

    /* ANCOUNT larger than the records present. */
    header(&m, 0x1234, F_ANSWER, 1, 2);
    question(&m, "example.com", T_A);
    rr_a(&m, "example.com", 60, "192.0.2.1");
    rc = parse_g(m.b, m.n, 0x1234, "example.com", T_A, out, DNS_MAX_ADDRS, &ttl);
    is_int(rc, DNS_PARSE_MALFORMED, "ANCOUNT beyond the message: malformed");
}

static void test_parse_aaaa(void)
{
    struct msg m;
    struct dns_addr out[DNS_MAX_ADDRS];
    uint32_t ttl;
    header(&m, 0x1234, F_ANSWER, 1, 3);
    question(&m, "v6.example", T_AAAA);
    rr_aaaa(&m, "v6.example", 120, "2001:db8::1");
    rr_a(&m, "v6.example", 1, "192.0.2.1");
    rr_aaaa(&m, "v6.example", 100, "::1");
    int rc = parse_g(m.b, m.n, 0x1234, "v6.example", T_AAAA, out, DNS_MAX_ADDRS, &ttl);
    is_int(rc, 2, "AAAA: two addresses, the A skipped");
    ok(rc == 2 && out[0].family == AF_INET6 && addr_is(&out[0], "2001:db8::1") && addr_is(&out[1], "::1"),
       "AAAA: values");
    is_int(ttl, 100, "AAAA: TTL of the A record does not count");
    check_prefixes(&m, "v6.example", T_AAAA, "AAAA answer");

    /* AAAA of 4 bytes. */
    header(&m, 0x1234, F_ANSWER, 1, 1);
    question(&m, "v6.example", T_AAAA);
    put_name(&m, "v6.example");
    rr_fixed(&m, T_AAAA, 60, 4);
    put32(&m, 1);
    is_int(parse_g(m.b, m.n, 0x1234, "v6.example", T_AAAA, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MALFORMED,
           "AAAA with RDLENGTH 4: malformed");
}

static void test_parse_cname(void)
{
    struct msg m;
    struct dns_addr out[DNS_MAX_ADDRS];
    uint32_t ttl;

    /* Out of order on purpose: the chain is followed, not the order. */
    header(&m, 0x1234, F_ANSWER, 1, 4);
    question(&m, "www.example.com", T_A);
    rr_a(&m, "c.example.org", 600, "203.0.113.7");
    rr_cname(&m, "b.example.net", 50, "c.example.org");
    rr_cname(&m, "www.example.com", 400, "b.example.net");
    rr_a(&m, "unrelated.example", 1, "203.0.113.99");
    int rc = parse_g(m.b, m.n, 0x1234, "www.example.com", T_A, out, DNS_MAX_ADDRS, &ttl);
    ok(rc == 1 && addr_is(&out[0], "203.0.113.7"), "CNAME chain of two followed");
    is_int(ttl, 50, "TTL is the minimum along the chain");
    check_prefixes(&m, "www.example.com", T_A, "CNAME chain");

    /* CNAME to a name with no address in the answer. */
    header(&m, 0x1234, F_ANSWER, 1, 1);
    question(&m, "www.example.com", T_A);
    rr_cname(&m, "www.example.com", 400, "elsewhere.example");
    is_int(parse_g(m.b, m.n, 0x1234, "www.example.com", T_A, out, DNS_MAX_ADDRS, &ttl), 0,
           "dangling CNAME: no address");

    /* CNAME loop a -> b -> a. */
    header(&m, 0x1234, F_ANSWER, 1, 2);
    question(&m, "a.example", T_A);
    rr_cname(&m, "a.example", 60, "b.example");
    rr_cname(&m, "b.example", 60, "a.example");
    is_int(parse_g(m.b, m.n, 0x1234, "a.example", T_A, out, DNS_MAX_ADDRS, &ttl), 0, "CNAME loop: no address");

    /* A chain of 8 aliases is followed, 9 is too long. */
    for (int len = 8; len <= 9; len++) {
        header(&m, 0x1234, F_ANSWER, 1, (unsigned)len + 1);
        question(&m, "n0.example", T_A);
        for (int i = 0; i < len; i++) {
            char o[32], t[32];
            snprintf(o, sizeof o, "n%d.example", i);
            snprintf(t, sizeof t, "n%d.example", i + 1);
            rr_cname(&m, o, 60, t);
        }
        char last[32];
        snprintf(last, sizeof last, "n%d.example", len);
        rr_a(&m, last, 60, "192.0.2.50");
        rc = parse_g(m.b, m.n, 0x1234, "n0.example", T_A, out, DNS_MAX_ADDRS, &ttl);
        if (len == 8)
            is_int(rc, 1, "chain of 8 CNAMEs followed");
        else
            is_int(rc, 0, "chain of 9 CNAMEs: given up");
    }

    /* CNAME RDATA longer than its name. */
    header(&m, 0x1234, F_ANSWER, 1, 1);
    question(&m, "www.example.com", T_A);
    put_name(&m, "www.example.com");
    rr_fixed(&m, T_CNAME, 60, 6);
    put_name(&m, "a.b");   /* 5 octets */
    put8(&m, 0);           /* one more inside RDLENGTH */
    is_int(parse_g(m.b, m.n, 0x1234, "www.example.com", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MALFORMED,
           "CNAME RDATA with trailing bytes: malformed");
}

static void test_parse_compression(void)
{
    struct msg m;
    struct dns_addr out[DNS_MAX_ADDRS];
    uint32_t ttl;

    /* Question at 12; owner names and the CNAME target point back. */
    header(&m, 0x1234, F_ANSWER, 1, 2);
    size_t qoff = m.n;
    question(&m, "www.example.com", T_A);
    size_t example_off = qoff + 4;   /* "example.com" inside the question */
    put_ptr(&m, qoff);               /* owner www.example.com */
    rr_fixed(&m, T_CNAME, 300, 6);
    size_t cdn_off = m.n;
    put_labels(&m, "cdn", 0);        /* cdn + pointer to example.com */
    put_ptr(&m, example_off);
    put_ptr(&m, cdn_off);            /* owner cdn.example.com */
    rr_fixed(&m, T_A, 30, 4);
    put32(&m, 0xc0000205);           /* 192.0.2.5 */
    int rc = parse_g(m.b, m.n, 0x1234, "www.example.com", T_A, out, DNS_MAX_ADDRS, &ttl);
    ok(rc == 1 && addr_is(&out[0], "192.0.2.5"), "compressed owners and CNAME target");
    is_int(ttl, 30, "compressed: TTL");
    check_prefixes(&m, "www.example.com", T_A, "compressed answer");

    /* A pointer to itself. */
    header(&m, 0x1234, F_ANSWER, 1, 1);
    question(&m, "x.example", T_A);
    size_t self = m.n;
    put_ptr(&m, self);
    rr_fixed(&m, T_A, 30, 4);
    put32(&m, 1);
    is_int(parse_g(m.b, m.n, 0x1234, "x.example", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MALFORMED,
           "pointer to itself: malformed");

    /* Two names pointing at each other: a -> b -> a. */
    header(&m, 0x1234, F_ANSWER, 1, 1);
    question(&m, "x.example", T_A);
    size_t a_off = m.n;
    put_labels(&m, "p", 0);
    put_ptr(&m, a_off + 4);          /* forward, to b */
    put_labels(&m, "q", 0);          /* b at a_off + 4 */
    put_ptr(&m, a_off);              /* back to a */
    rr_fixed(&m, T_A, 30, 4);
    put32(&m, 1);
    is_int(parse_g(m.b, m.n, 0x1234, "x.example", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MALFORMED,
           "pointer loop between two names: malformed");

    /* A backward pointer landing on labels that point back to the same
     * place: 'l' at L, pointer at L+2 -> L. */
    header(&m, 0x1234, F_ANSWER, 1, 1);
    question(&m, "x.example", T_A);
    size_t l_off = m.n;
    put_labels(&m, "l", 0);
    put_ptr(&m, l_off);
    rr_fixed(&m, T_A, 30, 4);
    put32(&m, 1);
    is_int(parse_g(m.b, m.n, 0x1234, "x.example", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MALFORMED,
           "label then pointer back to the label: malformed");

    /* Pointer in the question pointing past the end. */
    header(&m, 0x1234, F_ANSWER, 1, 0);
    put_ptr(&m, 0x3fff);
    put16(&m, T_A);
    put16(&m, C_IN);
    is_int(parse_g(m.b, m.n, 0x1234, "x.example", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MALFORMED,
           "pointer out of the message: malformed");

    /* Pointer into the header (offset 0): decodes garbage labels; must
     * not be accepted as our name and must not crash. */
    header(&m, 0x1234, F_ANSWER, 1, 0);
    put_ptr(&m, 0);
    put16(&m, T_A);
    put16(&m, C_IN);
    rc = parse_g(m.b, m.n, 0x1234, "x.example", T_A, out, DNS_MAX_ADDRS, &ttl);
    ok(rc == DNS_PARSE_MALFORMED || rc == DNS_PARSE_MISMATCH, "pointer into the header: rejected (%d)", rc);

    /* Reserved label types 01 and 10. */
    for (unsigned bits = 0x40; bits <= 0x80; bits += 0x40) {
        header(&m, 0x1234, F_ANSWER, 1, 0);
        put8(&m, bits | 1);
        put8(&m, 'x');
        put8(&m, 0);
        put16(&m, T_A);
        put16(&m, C_IN);
        is_int(parse_g(m.b, m.n, 0x1234, "x", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MALFORMED,
               "label type 0x%02x: malformed", bits);
    }

    /* Names built from pointer chains inside the RDATA of a TXT record:
     * stretch i is one 63-octet label then a pointer to stretch i-1, so
     * stretch i names a (i + 1) * 64 + 1 octet name.  The second record's
     * owner points at stretch 2 (193 octets, fine) or 3 (257: too long). */
    for (int last = 2; last <= 3; last++) {
        header(&m, 0x1234, F_ANSWER, 1, 2);
        size_t q0 = m.n;
        question(&m, "x.example", T_A);
        put_ptr(&m, q0);
        rr_fixed(&m, T_TXT, 30, 4 * 65);
        size_t prev = 0, at[4];
        for (int i = 0; i < 4; i++) {
            at[i] = m.n;
            put8(&m, 63);
            memset(m.b + m.n, 'a' + i, 63);
            m.n += 63;
            if (i == 0)
                put8(&m, 0);
            else
                put_ptr(&m, prev);
            prev = at[i];
        }
        /* stretch 0 is 65 octets, the others 66: fix RDLENGTH. */
        size_t rdlen = m.n - at[0];
        m.b[at[0] - 2] = (uint8_t)(rdlen >> 8);
        m.b[at[0] - 1] = (uint8_t)rdlen;
        put_ptr(&m, at[last]);
        rr_fixed(&m, T_A, 30, 4);
        put32(&m, 1);
        rc = parse_g(m.b, m.n, 0x1234, "x.example", T_A, out, DNS_MAX_ADDRS, &ttl);
        if (last == 2)
            is_int(rc, 0, "193-octet name via 3 pointers: valid, not ours");
        else
            is_int(rc, DNS_PARSE_MALFORMED, "257-octet name via pointers: malformed");
    }
}

static void test_parse_mismatch(void)
{
    struct msg m;
    struct dns_addr out[DNS_MAX_ADDRS];
    uint32_t ttl;

    header(&m, 0x1234, F_ANSWER, 1, 1);
    question(&m, "example.com", T_A);
    rr_a(&m, "example.com", 60, "192.0.2.1");
    is_int(parse_g(m.b, m.n, 0x1235, "example.com", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MISMATCH, "wrong id");
    is_int(parse_g(m.b, m.n, 0x1234, "example.org", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MISMATCH,
           "wrong question name");
    is_int(parse_g(m.b, m.n, 0x1234, "www.example.com", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MISMATCH,
           "question is a suffix of ours");
    is_int(parse_g(m.b, m.n, 0x1234, "example.com", T_AAAA, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MISMATCH,
           "wrong question type");
    is_int(parse_g(m.b, m.n, 0x1234, "example.com", T_TXT, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MISMATCH,
           "type we never ask");
    is_int(parse_g(m.b, m.n, 0x1234, "bad name", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MISMATCH,
           "invalid name asked");

    struct msg q = m;
    q.b[2] &= 0x7f;   /* QR = 0: a query, not a response */
    is_int(parse_g(q.b, q.n, 0x1234, "example.com", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MISMATCH, "QR=0");
    q = m;
    q.b[2] |= 0x10;   /* opcode 2 (STATUS) */
    is_int(parse_g(q.b, q.n, 0x1234, "example.com", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MISMATCH,
           "opcode not QUERY");

    header(&m, 0x1234, F_ANSWER, 1, 1);
    put_name(&m, "example.com");
    put16(&m, T_A);
    put16(&m, 3);   /* CHAOS */
    rr_a(&m, "example.com", 60, "192.0.2.1");
    is_int(parse_g(m.b, m.n, 0x1234, "example.com", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MISMATCH,
           "wrong question class");

    header(&m, 0x1234, F_ANSWER | 1, 0, 0);   /* FORMERR without a question */
    is_int(parse_g(m.b, m.n, 0x1234, "example.com", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MISMATCH,
           "QDCOUNT 0");
    header(&m, 0x1234, F_ANSWER, 2, 0);
    question(&m, "example.com", T_A);
    question(&m, "example.com", T_A);
    is_int(parse_g(m.b, m.n, 0x1234, "example.com", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MISMATCH,
           "QDCOUNT 2");

    /* Answer records of a class other than IN are ignored. */
    header(&m, 0x1234, F_ANSWER, 1, 1);
    question(&m, "example.com", T_A);
    put_name(&m, "example.com");
    put16(&m, T_A);
    put16(&m, 3);
    put32(&m, 60);
    put16(&m, 4);
    put32(&m, 0x01020304);
    is_int(parse_g(m.b, m.n, 0x1234, "example.com", T_A, out, DNS_MAX_ADDRS, &ttl), 0, "answer class CH ignored");
}

static void test_parse_rcode(void)
{
    struct msg m;
    struct dns_addr out[DNS_MAX_ADDRS];
    uint32_t ttl;

    header(&m, 0x1234, F_ANSWER | F_TC, 1, 1);
    question(&m, "example.com", T_A);
    rr_a(&m, "example.com", 60, "192.0.2.1");
    is_int(parse_g(m.b, m.n, 0x1234, "example.com", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_TRUNCATED, "TC bit");
    header(&m, 0x1234, F_ANSWER | F_TC, 1, 3);   /* TC, records missing */
    question(&m, "example.com", T_A);
    is_int(parse_g(m.b, m.n, 0x1234, "example.com", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_TRUNCATED,
           "TC bit with records cut off");
    is_int(parse_g(m.b, m.n, 0x9999, "example.com", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MISMATCH,
           "TC bit with a wrong id is a mismatch");

    header(&m, 0x1234, F_ANSWER | 3, 1, 0);
    question(&m, "nx.example", T_A);
    is_int(parse_g(m.b, m.n, 0x1234, "nx.example", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_NXDOMAIN, "NXDOMAIN");
    check_prefixes(&m, "nx.example", T_A, "NXDOMAIN answer");
    is_int(parse_g(m.b, m.n, 0x1234, "nx.example", T_AAAA, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MISMATCH,
           "NXDOMAIN for another question: mismatch");

    header(&m, 0x1234, F_ANSWER | 2, 1, 0);
    question(&m, "sf.example", T_A);
    is_int(parse_g(m.b, m.n, 0x1234, "sf.example", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_SERVFAIL, "SERVFAIL");
    header(&m, 0x1234, F_ANSWER | 5, 1, 0);
    question(&m, "sf.example", T_A);
    is_int(parse_g(m.b, m.n, 0x1234, "sf.example", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_SERVFAIL,
           "REFUSED counts as SERVFAIL");

    for (size_t len = 0; len < 12; len++)
        is_int(parse_g(m.b, len, 0x1234, "sf.example", T_A, out, DNS_MAX_ADDRS, &ttl), DNS_PARSE_MALFORMED,
               "header cut at %zu: malformed", len);
}

static void test_parse_ttl(void)
{
    struct msg m;
    struct dns_addr out[DNS_MAX_ADDRS];
    uint32_t ttl;
    header(&m, 0x1234, F_ANSWER, 1, 3);
    question(&m, "t.example", T_A);
    rr_a(&m, "t.example", 3600, "192.0.2.1");
    rr_a(&m, "t.example", 7, "192.0.2.2");
    rr_a(&m, "t.example", 86400, "192.0.2.3");
    is_int(parse_g(m.b, m.n, 0x1234, "t.example", T_A, out, DNS_MAX_ADDRS, &ttl), 3, "three A records");
    is_int(ttl, 7, "TTL minimum of 3600, 7, 86400");

    header(&m, 0x1234, F_ANSWER, 1, 2);
    question(&m, "t.example", T_A);
    rr_a(&m, "t.example", 0x80000001u, "192.0.2.1");
    rr_a(&m, "t.example", 100, "192.0.2.2");
    is_int(parse_g(m.b, m.n, 0x1234, "t.example", T_A, out, DNS_MAX_ADDRS, &ttl), 2, "two A records");
    is_int(ttl, 0, "TTL with the top bit set reads as 0 (RFC 2181 8)");
}

/* Random mutations of a valid message: must never read out of bounds
 * (ASan and the guard page) nor return more than max. */
static void test_parse_mutations(void)
{
    struct msg m;
    header(&m, 0x1234, F_ANSWER, 1, 3);
    size_t qoff = m.n;
    question(&m, "www.example.com", T_A);
    put_ptr(&m, qoff);
    rr_fixed(&m, T_CNAME, 300, 6);
    size_t cdn = m.n;
    put_labels(&m, "cdn", 0);
    put_ptr(&m, qoff + 4);
    put_ptr(&m, cdn);
    rr_fixed(&m, T_A, 30, 4);
    put32(&m, 0xc0000205);
    rr_aaaa(&m, "cdn.example.com", 30, "2001:db8::5");

    uint32_t seed = 12345;
    int bad = 0;
    for (int iter = 0; iter < 200000; iter++) {
        struct msg x = m;
        int flips = 1 + iter % 4;
        for (int f = 0; f < flips; f++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % x.n;
            seed = seed * 1103515245u + 12345u;
            x.b[pos] = (uint8_t)(seed >> 16);
        }
        seed = seed * 1103515245u + 12345u;
        size_t len = iter % 3 ? x.n : (seed >> 8) % (x.n + 1);
        struct dns_addr out[2];
        uint32_t ttl;
        int rc = parse_g(x.b, len, 0x1234, "www.example.com", iter % 2 ? T_A : T_AAAA, out, 2, &ttl);
        if (rc > 2 || rc < DNS_PARSE_SERVFAIL)
            bad++;
    }
    is_int(bad, 0, "200000 mutated messages: results in range, no out-of-bounds read");
}

/* ---------------- resolver without network ---------------- */

struct result {
    int calls;
    size_t n;
    struct dns_addr addrs[DNS_MAX_ADDRS];
    char err[64];
};

static void on_result(void *ctx, const struct dns_addr *addrs, size_t n, const char *err)
{
    struct result *r = ctx;
    r->calls++;
    r->n = n;
    if (n)
        memcpy(r->addrs, addrs, n * sizeof *addrs);
    snprintf(r->err, sizeof r->err, "%s", err ? err : "");
}

static void run_loop(void)
{
    for (int i = 0; i < 3; i++)
        loop_run_once(0);
}

static char *write_temp(const char *content)
{
    char *path = strdup("/tmp/test_dns_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        exit(2);
    }
    size_t len = strlen(content);
    if (write(fd, content, len) != (ssize_t)len)
        exit(2);
    close(fd);
    return path;
}

static void test_resolve_local(void)
{
    loop_init();
    /* Nameserver on a discard port of loopback: these tests must never
     * need it (they would report "timeout" or "unreachable" if they did). */
    char *resolv = write_temp("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
    char *hosts = write_temp("# comment\n"
                             "10.0.0.1   MyHost.Example  alias1 # trailing comment\n"
                             "2001:db8::7 myhost.example\n"
                             "10.0.0.2 myhost.example\n"
                             "10.0.0.1 myhost.example\n"   /* duplicate: reported once */
                             "bogus-address somename\n"
                             "fe80::1%lo scoped.example\n"
                             "::1 ip6-only.example\n");
    is_int(dns_configure(resolv, hosts), 0, "dns_configure with temp files");

    struct result r1 = { 0 }, r2 = { 0 }, r3 = { 0 }, r4 = { 0 }, r5 = { 0 }, r6 = { 0 }, r7 = { 0 }, r8 = { 0 };
    ok(dns_resolve("192.0.2.10", on_result, &r1) != NULL, "numeric v4 lookup started");
    ok(dns_resolve("[::1]", on_result, &r2) != NULL, "bracketed v6 lookup started");
    ok(dns_resolve("2001:db8::1", on_result, &r3) != NULL, "bare v6 lookup started");
    ok(dns_resolve("MYHOST.example.", on_result, &r4) != NULL, "hosts lookup started");
    ok(dns_resolve("localhost", on_result, &r5) != NULL, "localhost lookup started");
    ok(dns_resolve("[1.2.3.4]", on_result, &r6) != NULL, "bracketed v4 lookup started");
    ok(dns_resolve("bad name!", on_result, &r7) != NULL, "invalid name lookup started");
    ok(dns_resolve("ip6-only.example", on_result, &r8) != NULL, "v6-only hosts name started");
    ok(r1.calls + r2.calls + r3.calls + r4.calls + r5.calls + r6.calls + r7.calls + r8.calls == 0,
       "no callback inside dns_resolve");
    run_loop();

    ok(r1.calls == 1 && r1.n == 1 && !r1.err[0] && addr_is(&r1.addrs[0], "192.0.2.10"), "numeric v4");
    ok(r2.calls == 1 && r2.n == 1 && r2.addrs[0].family == AF_INET6 && addr_is(&r2.addrs[0], "::1"), "[::1]");
    ok(r3.calls == 1 && r3.n == 1 && addr_is(&r3.addrs[0], "2001:db8::1"), "bare v6");
    is_int(r4.n, 3, "hosts: three distinct addresses");
    ok(r4.n == 3 && addr_is(&r4.addrs[0], "10.0.0.1") && addr_is(&r4.addrs[1], "10.0.0.2") &&
           addr_is(&r4.addrs[2], "2001:db8::7"),
       "hosts: IPv4 first in file order, then IPv6");
    ok(r5.calls == 1 && r5.n == 2 && addr_is(&r5.addrs[0], "127.0.0.1") && addr_is(&r5.addrs[1], "::1"),
       "localhost without a hosts entry: 127.0.0.1 and ::1");
    ok(r6.calls == 1 && r6.n == 0, "[1.2.3.4] fails");
    is_str(r6.err, "invalid name", "[1.2.3.4]: invalid name");
    is_str(r7.err, "invalid name", "bad name!: invalid name");
    ok(r8.n == 1 && addr_is(&r8.addrs[0], "::1"), "v6-only hosts entry");

    struct result a = { 0 };
    dns_resolve("alias1", on_result, &a);
    run_loop();
    ok(a.n == 1 && addr_is(&a.addrs[0], "10.0.0.1"), "alias resolves");

    /* Cancel before the deferred answer ran. */
    struct result c = { 0 };
    struct dns_lookup *l = dns_resolve("192.0.2.11", on_result, &c);
    dns_cancel(l);
    l = dns_resolve("myhost.example", on_result, &c);
    dns_cancel(l);
    run_loop();
    is_int(c.calls, 0, "cancelled lookups never call back");
    dns_cancel(NULL);
    ok(1, "dns_cancel(NULL) is harmless");

    /* Re-read: localhost now comes from the hosts file. */
    char *hosts2 = write_temp("127.0.0.53 localhost\n");
    is_int(dns_configure(resolv, hosts2), 0, "reconfigure");
    struct result lh = { 0 }, gone = { 0 };
    dns_resolve("LOCALHOST", on_result, &lh);
    run_loop();
    ok(lh.n == 1 && addr_is(&lh.addrs[0], "127.0.0.53"), "localhost from the hosts file wins");
    (void)gone;

    is_int(dns_configure("/nonexistent/resolv.conf", "/nonexistent/hosts"), 0, "missing files are fine");
    ok(dns_configure(resolv, "/") < 0, "unreadable hosts (a directory): -1");

    /* A lookup left pending at shutdown is freed without a callback. */
    struct result p = { 0 };
    dns_resolve("192.0.2.12", on_result, &p);
    dns_shutdown();
    run_loop();
    is_int(p.calls, 0, "dns_shutdown drops pending callbacks");

    unlink(resolv);
    unlink(hosts);
    unlink(hosts2);
    free(resolv);
    free(hosts);
    free(hosts2);
    loop_free();
}

int main(void)
{
    log_set_stdout(0);
    guard_init();
    test_build_query();
    test_parse_a();
    test_parse_aaaa();
    test_parse_cname();
    test_parse_compression();
    test_parse_mismatch();
    test_parse_rcode();
    test_parse_ttl();
    test_parse_mutations();
    test_resolve_local();
    return tap_done();
}
