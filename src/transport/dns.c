/* dns: a non-blocking stub resolver driven by the loop (see dns.h).
 *
 * Order of a lookup: numeric literal, hosts file, built-in "localhost",
 * cache, a query already in flight for the same name, and only then a new
 * query: one A and one AAAA sub-query in parallel, each from its own fresh
 * connect()ed UDP socket with a random id, trying the nameservers in turn
 * (RFC 1035 section 4.2.1: UDP, no TCP fallback here).
 *
 * Every callback is delivered from a loop_defer()ed pump that drains the
 * "ready" list, so no callback ever runs inside dns_resolve, and a lookup
 * waiting on that list can be cancelled by simply unlinking it. */
#include "dns.h"

#include "log.h"
#include "loop.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---------------- constants ---------------- */

#define DNS_RESOLV_CONF_DEFAULT "/etc/resolv.conf"
#define DNS_HOSTS_DEFAULT "/etc/hosts"
#define DNS_PORT_DEFAULT 53
#define DNS_ENV_PORT "AUTOSWITCH_DNS_PORT"
#define DNS_ENV_TTL_MIN "AUTOSWITCH_DNS_TTL_MIN"

/* resolv.conf(5) caps: glibc's RES_MAXRETRANS and RES_MAXRETRY. */
#define DNS_TIMEOUT_MAX_S 30
#define DNS_ATTEMPTS_MAX 5

#define DNS_HEADER_LEN 12          /* RFC 1035 4.1.1 */
#define DNS_QFIXED_LEN 4           /* QTYPE + QCLASS after QNAME, 4.1.2 */
#define DNS_RRFIXED_LEN 10         /* TYPE CLASS TTL RDLENGTH after NAME, 4.1.3 */
#define DNS_WIRE_NAME_MAX 255      /* 2.3.4: a name is at most 255 octets on the wire */
#define DNS_TEXT_NAME_MAX 253      /* the same name as dotted text, without the root dot */
#define DNS_LABEL_MAX 63           /* 2.3.4 */
#define DNS_PTR_HOPS_MAX 64        /* belt and braces: pointers must already go strictly backwards */
#define DNS_CNAME_HOPS_MAX 8       /* longest CNAME chain followed inside one answer */
#define DNS_RECV_MAX 4096          /* we send no EDNS, so answers are <= 512 (4.2.1); be lenient */
#define DNS_RECV_BURST 16          /* datagrams read per wakeup, so a flood cannot starve the loop */
#define DNS_CACHE_MAX 256          /* names cached; the oldest goes when full */
/* Once one of A / AAAA has produced addresses, wait at most this long for
 * the other before answering with what we have. */
#define DNS_PAIR_GRACE_MS 500

#define DNS_TYPE_A 1
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_AAAA 28
#define DNS_CLASS_IN 1

#define DNS_FLAG_QR 0x8000
#define DNS_FLAG_TC 0x0200
#define DNS_FLAG_RD 0x0100
#define DNS_OPCODE_MASK 0x7800
#define DNS_RCODE_MASK 0x000f
#define DNS_RCODE_NXDOMAIN 3

#define DNS_PTR_MASK 0xc0          /* 4.1.4: top two bits 11 = compression pointer */

/* ---------------- intrusive list ---------------- */

struct link {
    struct link *prev, *next;
};

static void link_init(struct link *h)
{
    h->prev = h->next = h;
}

static bool link_empty(const struct link *h)
{
    return h->next == h;
}

static void link_append(struct link *h, struct link *e)
{
    e->prev = h->prev;
    e->next = h;
    h->prev->next = e;
    h->prev = e;
}

static void link_remove(struct link *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = e;
}

#define CONTAINER_OF(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* ---------------- state ---------------- */

struct nameserver {
    struct sockaddr_storage sa;   /* zeroed before filling, so memcmp compares */
    socklen_t len;
};

struct config {
    struct nameserver ns[DNS_MAX_NAMESERVERS];
    size_t nns;
    unsigned timeout_s;
    unsigned attempts;
    unsigned ttl_min_s;
};

struct host_entry {
    size_t name_off;       /* into hosts.pool while building */
    const char *name;      /* lower case, no trailing dot; set once the pool stops moving */
    size_t seq;            /* file order, kept among equal names */
    struct dns_addr addr;
};

struct hosts {
    struct host_entry *e;  /* sorted by (name, seq) */
    size_t n, cap;
    char *pool;
    size_t pool_len, pool_cap;
};

struct cache_entry {
    char *name;            /* NULL: free slot */
    struct dns_addr addrs[DNS_MAX_ADDRS];
    size_t n;
    uint64_t expires;      /* loop_now() ms */
    uint64_t stored;
};

enum sub_state { SUB_PENDING, SUB_ADDRS, SUB_NODATA, SUB_NXDOMAIN, SUB_FAILED };

/* Why a server gave no usable answer, least to most informative: the
 * final error of a sub-query is the highest one seen over its tries. */
enum sub_fail { FAIL_NONE, FAIL_NET, FAIL_TIMEOUT, FAIL_TRUNC, FAIL_SERVFAIL };

struct query;

/* One of the two questions (A or AAAA) of a query. */
struct sub {
    struct query *q;
    uint16_t qtype;
    int fd;                /* -1 between tries */
    uint16_t id;
    unsigned tries;        /* tries started */
    enum sub_state state;
    enum sub_fail fail;
    struct dns_addr addrs[DNS_MAX_ADDRS];
    size_t n;
    uint32_t ttl;
    struct loop_timer timer;
};

struct query {
    struct link link;      /* in rs.queries */
    struct link waiters;   /* dns_lookup.link */
    char *name;
    unsigned cfg_gen;      /* answers from an older configuration are not cached */
    struct config cfg;     /* copied: dns_configure may change the live one */
    struct sub sub[2];     /* A, then AAAA */
    struct loop_timer grace;
};

struct dns_lookup {
    struct link link;      /* in q->waiters while waiting, else in rs.ready */
    struct query *q;       /* NULL once the result is in */
    dns_cb cb;
    void *ctx;
    struct dns_addr addrs[DNS_MAX_ADDRS];
    size_t n;
    const char *err;
};

static struct {
    bool init;
    bool configured;
    unsigned cfg_gen;
    struct config cfg;
    struct hosts hosts;
    struct link queries;
    struct link ready;
    struct cache_entry cache[DNS_CACHE_MAX];
} rs;

static void dns_init_once(void)
{
    if (rs.init)
        return;
    link_init(&rs.queries);
    link_init(&rs.ready);
    rs.init = true;
}

/* ---------------- wire helpers ---------------- */

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint8_t ascii_lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* Host names (RFC 952/1123: letters, digits, hyphen) plus the underscore
 * that service names use.  Anything else is refused before it reaches
 * the wire. */
static bool name_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Dotted text -> uncompressed wire form (RFC 1035 3.1: length-prefixed
 * labels ending with the zero-length root label), lower-cased when fold.
 * One trailing dot is allowed.  Returns the wire length or -1. */
static int name_to_wire(const char *name, uint8_t out[DNS_WIRE_NAME_MAX], bool fold)
{
    size_t w = 0;
    const char *p = name;
    if (!name || !*name || strcmp(name, ".") == 0)
        return -1;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t llen = dot ? (size_t)(dot - p) : strlen(p);
        if (llen == 0 || llen > DNS_LABEL_MAX)
            return -1;
        if (w + 1 + llen + 1 > DNS_WIRE_NAME_MAX)   /* this label plus the root label */
            return -1;
        out[w++] = (uint8_t)llen;
        for (size_t i = 0; i < llen; i++) {
            unsigned char c = (unsigned char)p[i];
            if (!name_char_ok(c))
                return -1;
            out[w++] = fold ? ascii_lower(c) : c;
        }
        if (!dot)
            break;
        p = dot + 1;   /* after a trailing dot *p is NUL and the loop ends */
    }
    out[w++] = 0;
    return (int)w;
}

/* Read the possibly compressed name at *off (RFC 1035 4.1.4) into out as
 * uncompressed, lower-cased wire form, and move *off past the name as it
 * is stored at that place.
 *
 * Loop protection: each pointer must point strictly before the start of
 * the stretch of labels that contains it.  A compressor only points at
 * names written before the current one, so real messages always qualify,
 * and strictly falling targets cannot cycle.  The hop cap and the 255
 * octet limit are extra bounds.  Every byte is read after a length check. */
static int name_unpack(const uint8_t *msg, size_t len, size_t *off, uint8_t out[DNS_WIRE_NAME_MAX], size_t *outlen)
{
    size_t pos = *off;
    size_t floor_ = pos;       /* start of the current stretch of labels */
    size_t after = 0;          /* offset after the name in its original place */
    bool jumped = false;
    unsigned hops = 0;
    size_t w = 0;

    for (;;) {
        if (pos >= len)
            return -1;
        uint8_t c = msg[pos];
        if ((c & DNS_PTR_MASK) == DNS_PTR_MASK) {
            if (len - pos < 2)
                return -1;
            size_t target = (size_t)(c & ~DNS_PTR_MASK) << 8 | msg[pos + 1];
            if (target >= floor_ || ++hops > DNS_PTR_HOPS_MAX)
                return -1;
            if (!jumped) {
                after = pos + 2;
                jumped = true;
            }
            pos = floor_ = target;
            continue;
        }
        if (c & DNS_PTR_MASK)
            return -1;   /* 01 and 10 label types: reserved / obsolete (RFC 6891 5) */
        if (c == 0) {
            out[w++] = 0;   /* room is ensured by the check below */
            if (!jumped)
                after = pos + 1;
            break;
        }
        if (len - pos - 1 < c)
            return -1;
        if (w + 1 + (size_t)c + 1 > DNS_WIRE_NAME_MAX)
            return -1;
        out[w++] = c;
        for (size_t i = 0; i < c; i++)
            out[w++] = ascii_lower(msg[pos + 1 + i]);
        pos += 1 + (size_t)c;
    }
    *off = after;
    *outlen = w;
    return 0;
}

/* The fixed part of a resource record (RFC 1035 4.1.3). */
struct rr {
    uint8_t owner[DNS_WIRE_NAME_MAX];
    size_t owner_len;
    uint16_t type, klass;
    uint32_t ttl;
    size_t rdata, rdlen;   /* offset and length of RDATA inside the message */
};

static int rr_read(const uint8_t *msg, size_t len, size_t *off, struct rr *rr)
{
    if (name_unpack(msg, len, off, rr->owner, &rr->owner_len) < 0)
        return -1;
    size_t p = *off;
    if (len - p < DNS_RRFIXED_LEN)
        return -1;
    rr->type = get16(msg + p);
    rr->klass = get16(msg + p + 2);
    rr->ttl = get32(msg + p + 4);
    /* RFC 2181 8: a TTL with the top bit set is to be read as zero. */
    if (rr->ttl > INT32_MAX)
        rr->ttl = 0;
    rr->rdlen = get16(msg + p + 8);
    rr->rdata = p + DNS_RRFIXED_LEN;
    if (len - rr->rdata < rr->rdlen)
        return -1;
    *off = rr->rdata + rr->rdlen;
    return 0;
}

static bool wire_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

int dns_build_query(uint8_t *out, size_t cap, uint16_t id, const char *name, uint16_t qtype)
{
    uint8_t wire[DNS_WIRE_NAME_MAX];
    int wlen = name_to_wire(name, wire, false);
    if (wlen < 0)
        return -1;
    size_t need = DNS_HEADER_LEN + (size_t)wlen + DNS_QFIXED_LEN;
    if (!out || cap < need)
        return -1;
    /* 4.1.1: ID, flags with only RD (we want recursion), QDCOUNT 1. */
    memset(out, 0, DNS_HEADER_LEN);
    put16(out, id);
    put16(out + 2, DNS_FLAG_RD);
    put16(out + 4, 1);
    memcpy(out + DNS_HEADER_LEN, wire, (size_t)wlen);
    put16(out + DNS_HEADER_LEN + wlen, qtype);
    put16(out + DNS_HEADER_LEN + wlen + 2, DNS_CLASS_IN);
    return (int)need;
}

/* Check the header and the question (4.1.1, 4.1.2) against what we asked;
 * on success *off is the start of the answer section. */
static int parse_question(const uint8_t *msg, size_t len, uint16_t id, const uint8_t *qwire, size_t qwlen,
                          uint16_t qtype, size_t *off)
{
    if (len < DNS_HEADER_LEN)
        return DNS_PARSE_MALFORMED;
    uint16_t flags = get16(msg + 2);
    /* Not a response to our query: someone else's id, a query, another
     * opcode, or no single question to compare with ours. */
    if (get16(msg) != id || !(flags & DNS_FLAG_QR) || (flags & DNS_OPCODE_MASK) || get16(msg + 4) != 1)
        return DNS_PARSE_MISMATCH;
    uint8_t name[DNS_WIRE_NAME_MAX];
    size_t nlen;
    size_t p = DNS_HEADER_LEN;
    if (name_unpack(msg, len, &p, name, &nlen) < 0 || len - p < DNS_QFIXED_LEN)
        return DNS_PARSE_MALFORMED;
    if (!wire_eq(name, nlen, qwire, qwlen) || get16(msg + p) != qtype || get16(msg + p + 2) != DNS_CLASS_IN)
        return DNS_PARSE_MISMATCH;
    *off = p + DNS_QFIXED_LEN;
    return 0;
}

/* One pass over the answer section for the records owned by the current
 * target: its addresses, else its CNAME. */
struct pass {
    uint8_t target[DNS_WIRE_NAME_MAX];
    size_t tlen;
    uint16_t qtype;
    size_t alen;                   /* address bytes: 4 or 16 */
    int family;
    struct dns_addr *out;
    size_t max, n;                 /* addresses taken so far */
    size_t found;                  /* this pass: addresses owned by target */
    uint32_t ttl;                  /* this pass: their smallest TTL */
    bool have_cname;
    uint8_t next[DNS_WIRE_NAME_MAX];
    size_t next_len;
    uint32_t cname_ttl;
};

static int answer_pass(const uint8_t *msg, size_t len, size_t off, unsigned ancount, struct pass *p)
{
    p->found = 0;
    p->have_cname = false;
    p->ttl = UINT32_MAX;
    for (unsigned i = 0; i < ancount; i++) {
        struct rr rr;
        if (rr_read(msg, len, &off, &rr) < 0)
            return DNS_PARSE_MALFORMED;
        if (rr.klass != DNS_CLASS_IN || !wire_eq(rr.owner, rr.owner_len, p->target, p->tlen))
            continue;
        if (rr.type == p->qtype) {
            if (rr.rdlen != p->alen)
                return DNS_PARSE_MALFORMED;
            p->found++;
            if (rr.ttl < p->ttl)
                p->ttl = rr.ttl;
            if (p->n < p->max && p->out) {
                p->out[p->n].family = p->family;
                memcpy(&p->out[p->n].a, msg + rr.rdata, p->alen);
                p->n++;
            }
        } else if (rr.type == DNS_TYPE_CNAME && !p->have_cname) {
            size_t q = rr.rdata;
            /* 3.3.1: RDATA is exactly one name (which may point back). */
            if (name_unpack(msg, len, &q, p->next, &p->next_len) < 0 || q != rr.rdata + rr.rdlen)
                return DNS_PARSE_MALFORMED;
            p->have_cname = true;
            p->cname_ttl = rr.ttl;
        }
    }
    return 0;
}

/* The header's verdict on a response to our question: 0 to read on, or
 * DNS_PARSE_TRUNCATED / NXDOMAIN / SERVFAIL. */
static int header_verdict(const uint8_t *msg)
{
    uint16_t flags = get16(msg + 2);
    /* 4.1.1 TC: the rest may be cut; we do not retry over TCP. */
    if (flags & DNS_FLAG_TC)
        return DNS_PARSE_TRUNCATED;
    unsigned rcode = flags & DNS_RCODE_MASK;
    if (rcode == DNS_RCODE_NXDOMAIN)
        return DNS_PARSE_NXDOMAIN;
    return rcode != 0 ? DNS_PARSE_SERVFAIL : 0;
}

int dns_parse_answer(const uint8_t *msg, size_t len, uint16_t id, const char *name, uint16_t qtype,
                     struct dns_addr *out, size_t max, uint32_t *ttl)
{
    struct pass p = { .qtype = qtype, .out = out, .max = max };
    int tl = name_to_wire(name, p.target, true);
    if (ttl)
        *ttl = 0;
    if (!msg || tl < 0 || (qtype != DNS_TYPE_A && qtype != DNS_TYPE_AAAA))
        return DNS_PARSE_MISMATCH;   /* we cannot have asked that */
    p.tlen = (size_t)tl;
    p.alen = qtype == DNS_TYPE_A ? sizeof out->a.v4 : sizeof out->a.v6;
    p.family = qtype == DNS_TYPE_A ? AF_INET : AF_INET6;
    size_t ans;
    int rc = parse_question(msg, len, id, p.target, p.tlen, qtype, &ans);
    if (rc < 0 || (rc = header_verdict(msg)) < 0)
        return rc;
    /* Follow the CNAME chain (RFC 1034 3.6.2) through the answer section
     * with repeated passes: each pass looks for records owned by the
     * current target, takes its addresses if any, else moves to its
     * CNAME.  Records may come in any order; the first pass also checks
     * the whole section. */
    unsigned ancount = get16(msg + 6);
    uint32_t min_ttl = UINT32_MAX;
    for (unsigned hop = 0;; hop++) {
        if (answer_pass(msg, len, ans, ancount, &p) < 0)
            return DNS_PARSE_MALFORMED;
        if (p.found) {
            if (p.ttl < min_ttl)
                min_ttl = p.ttl;
            break;
        }
        /* No address here: no alias either, or a chain too long (or a
         * loop) means the name has no usable address in this answer. */
        if (!p.have_cname || hop == DNS_CNAME_HOPS_MAX) {
            p.n = 0;
            break;
        }
        if (p.cname_ttl < min_ttl)
            min_ttl = p.cname_ttl;
        memcpy(p.target, p.next, p.next_len);
        p.tlen = p.next_len;
    }
    if (ttl && p.n > 0)
        *ttl = min_ttl;
    return (int)p.n;
}

/* ---------------- configuration ---------------- */

/* Next whitespace-separated token of s at *pos, or NULL at the end. */
static const char *next_token(const char *s, size_t *pos, size_t *len)
{
    size_t i = *pos;
    while (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')
        i++;
    if (!s[i])
        return NULL;
    size_t start = i;
    while (s[i] && s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
        i++;
    *pos = i;
    *len = i - start;
    return s + start;
}

static unsigned env_uint(const char *var, unsigned dflt, long long min, long long max)
{
    const char *v = getenv(var);
    long long x;
    if (!v || !*v)
        return dflt;
    if (parse_int(v, strlen(v), min, max, &x) < 0) {
        log_warn("dns: ignoring %s=%s (want %lld..%lld)", var, v, min, max);
        return dflt;
    }
    return (unsigned)x;
}

/* A nameserver address of resolv.conf: IPv4, or IPv6 with an optional
 * %scope (interface name or number) for link-local servers. */
static int parse_nameserver(const char *tok, size_t len, uint16_t port, struct nameserver *ns)
{
    char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    if (len >= sizeof text)
        return -1;
    memcpy(text, tok, len);
    text[len] = '\0';
    memset(ns, 0, sizeof *ns);

    struct sockaddr_in *s4 = (struct sockaddr_in *)&ns->sa;
    if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        ns->len = sizeof *s4;
        return 0;
    }
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ns->sa;
    char *pct = strchr(text, '%');
    if (pct) {
        *pct++ = '\0';
        long long idx;
        if (parse_int(pct, strlen(pct), 1, UINT32_MAX, &idx) == 0)
            s6->sin6_scope_id = (uint32_t)idx;
        else if ((s6->sin6_scope_id = if_nametoindex(pct)) == 0)
            return -1;
    }
    if (inet_pton(AF_INET6, text, &s6->sin6_addr) != 1)
        return -1;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    ns->len = sizeof *s6;
    return 0;
}

static void parse_options(const char *line, size_t pos, struct config *c)
{
    const char *tok;
    size_t len;
    long long v;
    while ((tok = next_token(line, &pos, &len))) {
        /* resolv.conf(5): out-of-range values are capped, as glibc does. */
        if (mem_starts(tok, len, "timeout:")) {
            if (parse_int(tok + 8, len - 8, 0, 1000000, &v) == 0)
                c->timeout_s = v < 1 ? 1 : v > DNS_TIMEOUT_MAX_S ? DNS_TIMEOUT_MAX_S : (unsigned)v;
        } else if (mem_starts(tok, len, "attempts:")) {
            if (parse_int(tok + 9, len - 9, 0, 1000000, &v) == 0)
                c->attempts = v < 1 ? 1 : v > DNS_ATTEMPTS_MAX ? DNS_ATTEMPTS_MAX : (unsigned)v;
        }
        /* ndots, rotate, edns0, ...: nothing to do for absolute names. */
    }
}

/* resolv.conf(5): "nameserver ADDR" (first DNS_MAX_NAMESERVERS kept) and
 * "options"; search/domain are ignored because names are resolved as
 * given.  A missing file is fine.  0 or -1. */
static int read_resolv_conf(const char *path, struct config *c, uint16_t port)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) >= 0) {
        size_t pos = 0, len;
        const char *kw = next_token(line, &pos, &len);
        if (!kw || *kw == '#' || *kw == ';')
            continue;
        if (mem_eq(kw, len, "nameserver")) {
            const char *addr = next_token(line, &pos, &len);
            if (!addr || c->nns == DNS_MAX_NAMESERVERS)
                continue;
            if (parse_nameserver(addr, len, port, &c->ns[c->nns]) == 0)
                c->nns++;
            else
                log_warn("dns: %s: bad nameserver \"%.*s\"", path, (int)len, addr);
        } else if (mem_eq(kw, len, "options")) {
            parse_options(line, pos, c);
        }
    }
    bool err = ferror(f);
    free(line);
    fclose(f);
    return err ? -1 : 0;
}

static void hosts_free(struct hosts *h)
{
    free(h->e);
    free(h->pool);
    memset(h, 0, sizeof *h);
}

static int hosts_add(struct hosts *h, const char *name, size_t len, const struct dns_addr *a)
{
    if (h->n == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 64;
        struct host_entry *e = realloc(h->e, ncap * sizeof *e);
        if (!e)
            return -1;
        h->e = e;
        h->cap = ncap;
    }
    if (h->pool_cap - h->pool_len < len + 1) {
        size_t ncap = h->pool_cap ? h->pool_cap : 1024;
        while (ncap - h->pool_len < len + 1)
            ncap *= 2;
        char *p = realloc(h->pool, ncap);
        if (!p)
            return -1;
        h->pool = p;
        h->pool_cap = ncap;
    }
    char *dst = h->pool + h->pool_len;
    for (size_t i = 0; i < len; i++)
        dst[i] = (char)ascii_lower((uint8_t)name[i]);
    dst[len] = '\0';
    h->e[h->n] = (struct host_entry){ .name_off = h->pool_len, .seq = h->n, .addr = *a };
    h->n++;
    h->pool_len += len + 1;
    return 0;
}

static int host_entry_cmp(const void *a, const void *b)
{
    const struct host_entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* One hosts(5) line: address, then canonical name and aliases. */
static int hosts_line(struct hosts *h, char *line)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    size_t pos = 0, len;
    const char *tok = next_token(line, &pos, &len);
    char text[INET6_ADDRSTRLEN];
    struct dns_addr a;
    if (!tok || len >= sizeof text)
        return 0;
    memcpy(text, tok, len);
    text[len] = '\0';
    memset(&a, 0, sizeof a);
    if (inet_pton(AF_INET, text, &a.a.v4) == 1)
        a.family = AF_INET;
    else if (inet_pton(AF_INET6, text, &a.a.v6) == 1)
        a.family = AF_INET6;
    else
        return 0;   /* including scoped addresses, which dns_addr cannot carry */
    while ((tok = next_token(line, &pos, &len))) {
        if (len > 1 && tok[len - 1] == '.')
            len--;
        if (len > DNS_TEXT_NAME_MAX)
            continue;
        if (hosts_add(h, tok, len, &a) < 0)
            return -1;
    }
    return 0;
}

static int read_hosts(const char *path, struct hosts *h)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0)
        rc = hosts_line(h, line);
    if (rc == 0 && ferror(f))
        rc = -1;
    free(line);
    fclose(f);
    if (rc < 0)
        return -1;
    /* The pool no longer moves: turn offsets into pointers, then sort
     * for binary search (seq keeps file order among equal names). */
    for (size_t i = 0; i < h->n; i++)
        h->e[i].name = h->pool + h->e[i].name_off;
    if (h->n)
        qsort(h->e, h->n, sizeof *h->e, host_entry_cmp);
    return 0;
}

static bool same_nameservers(const struct config *a, const struct config *b)
{
    if (a->nns != b->nns)
        return false;
    for (size_t i = 0; i < a->nns; i++) {
        if (a->ns[i].len != b->ns[i].len || memcmp(&a->ns[i].sa, &b->ns[i].sa, a->ns[i].len) != 0)
            return false;
    }
    return true;
}

/* Defaults before resolv.conf: glibc's timeout and attempts, the TTL
 * floor and port from the environment (tests), no nameserver yet. */
static uint16_t config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    c->timeout_s = DNS_DEFAULT_TIMEOUT_S;
    c->attempts = DNS_DEFAULT_ATTEMPTS;
    c->ttl_min_s = env_uint(DNS_ENV_TTL_MIN, DNS_TTL_MIN_S, 0, DNS_TTL_MAX_S);
    return (uint16_t)env_uint(DNS_ENV_PORT, DNS_PORT_DEFAULT, 1, 65535);
}

/* Like glibc: with no usable nameserver line, ask the local host. */
static void config_local_nameserver(struct config *c, uint16_t port)
{
    parse_nameserver("127.0.0.1", strlen("127.0.0.1"), port, &c->ns[0]);
    c->nns = 1;
}

int dns_configure(const char *resolv_conf, const char *hosts_file)
{
    dns_init_once();
    struct config c;
    uint16_t port = config_defaults(&c);
    const char *rpath = resolv_conf ? resolv_conf : DNS_RESOLV_CONF_DEFAULT;
    const char *hpath = hosts_file ? hosts_file : DNS_HOSTS_DEFAULT;

    if (read_resolv_conf(rpath, &c, port) < 0) {
        log_error("dns: %s: %s", rpath, strerror(errno));
        return -1;
    }
    if (c.nns == 0)
        config_local_nameserver(&c, port);
    struct hosts h;
    memset(&h, 0, sizeof h);
    if (read_hosts(hpath, &h) < 0) {
        log_error("dns: %s: %s", hpath, errno ? strerror(errno) : "out of memory");
        hosts_free(&h);
        return -1;
    }
    /* Only DNS answers are cached, and hosts entries are consulted before
     * the cache, so the cache depends on the nameservers alone. */
    bool keep_cache = rs.configured && same_nameservers(&rs.cfg, &c);
    hosts_free(&rs.hosts);
    rs.hosts = h;
    rs.cfg = c;
    rs.configured = true;
    if (!keep_cache) {
        rs.cfg_gen++;
        dns_flush_cache();
    }
    return 0;
}

static void ensure_configured(void)
{
    if (rs.configured || dns_configure(NULL, NULL) == 0)
        return;
    /* Unreadable system files: still work, with glibc's defaults. */
    config_local_nameserver(&rs.cfg, config_defaults(&rs.cfg));
    rs.configured = true;
}

/* Addresses of name in the hosts file, IPv4 first, without duplicates. */
static size_t hosts_find(const char *name, struct dns_addr *out, size_t max)
{
    const struct hosts *h = &rs.hosts;
    size_t lo = 0, hi = h->n;
    while (lo < hi) {   /* first entry >= name */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(h->e[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t n = 0;
    static const int families[] = { AF_INET, AF_INET6 };
    for (size_t f = 0; f < ARRAY_LEN(families); f++) {
        for (size_t i = lo; i < h->n && n < max && strcmp(h->e[i].name, name) == 0; i++) {
            const struct dns_addr *a = &h->e[i].addr;
            if (a->family != families[f])
                continue;
            size_t alen = a->family == AF_INET ? sizeof a->a.v4 : sizeof a->a.v6;
            bool dup = false;
            for (size_t j = 0; j < n && !dup; j++)
                dup = out[j].family == a->family && memcmp(&out[j].a, &a->a, alen) == 0;
            if (!dup)
                out[n++] = *a;
        }
    }
    return n;
}

/* ---------------- cache ---------------- */

static void cache_drop(struct cache_entry *e)
{
    free(e->name);
    memset(e, 0, sizeof *e);
}

void dns_flush_cache(void)
{
    for (size_t i = 0; i < DNS_CACHE_MAX; i++)
        cache_drop(&rs.cache[i]);
}

static size_t cache_find(const char *name, struct dns_addr *out)
{
    for (size_t i = 0; i < DNS_CACHE_MAX; i++) {
        struct cache_entry *e = &rs.cache[i];
        if (!e->name || strcmp(e->name, name) != 0)
            continue;
        if (e->expires <= loop_now()) {
            cache_drop(e);   /* lazy eviction */
            return 0;
        }
        memcpy(out, e->addrs, e->n * sizeof *out);
        return e->n;
    }
    return 0;
}

static void cache_store(const char *name, const struct dns_addr *addrs, size_t n, uint32_t ttl_s)
{
    uint64_t now = loop_now();
    if (ttl_s < rs.cfg.ttl_min_s)
        ttl_s = rs.cfg.ttl_min_s;
    if (ttl_s > DNS_TTL_MAX_S)
        ttl_s = DNS_TTL_MAX_S;
    if (ttl_s == 0 || n == 0)
        return;
    /* The slot of this name, else a free one, else an expired one, else the oldest. */
    struct cache_entry *slot = NULL, *free_slot = NULL, *expired = NULL, *oldest = NULL;
    for (size_t i = 0; i < DNS_CACHE_MAX; i++) {
        struct cache_entry *e = &rs.cache[i];
        if (!e->name) {
            if (!free_slot)
                free_slot = e;
            continue;
        }
        if (strcmp(e->name, name) == 0) {
            slot = e;
            break;
        }
        if (e->expires <= now && !expired)
            expired = e;
        if (!oldest || e->stored < oldest->stored)
            oldest = e;
    }
    if (!slot)
        slot = free_slot ? free_slot : expired ? expired : oldest;
    char *copy = strdup(name);
    if (!copy)
        return;   /* caching is an optimisation */
    cache_drop(slot);
    slot->name = copy;
    memcpy(slot->addrs, addrs, n * sizeof *addrs);
    slot->n = n;
    slot->stored = now;
    slot->expires = now + (uint64_t)ttl_s * 1000u;
}

/* ---------------- delivery ---------------- */

/* Run the callbacks of every finished lookup.  The lookup is freed before
 * its callback so the callback may do anything, dns_shutdown included. */
static void pump(void *unused)
{
    (void)unused;
    if (!rs.init)
        return;
    while (!link_empty(&rs.ready)) {
        struct dns_lookup *l = CONTAINER_OF(rs.ready.next, struct dns_lookup, link);
        struct dns_addr addrs[DNS_MAX_ADDRS];
        size_t n = l->n;
        const char *err = l->err;
        dns_cb cb = l->cb;
        void *ctx = l->ctx;
        memcpy(addrs, l->addrs, n * sizeof *addrs);
        link_remove(&l->link);
        free(l);
        if (cb)
            cb(ctx, addrs, n, err);
    }
}

static struct dns_lookup *make_ready(struct dns_lookup *l)
{
    l->q = NULL;
    link_append(&rs.ready, &l->link);
    /* One deferral per batch; an extra run just finds the list empty. */
    loop_defer(pump, NULL);
    return l;
}

/* ---------------- queries ---------------- */

static void sub_close(struct sub *s)
{
    loop_timer_stop(&s->timer);
    if (s->fd >= 0) {
        loop_del(s->fd);
        close(s->fd);
        s->fd = -1;
    }
}

static void query_free(struct query *q)
{
    for (size_t i = 0; i < ARRAY_LEN(q->sub); i++)
        sub_close(&q->sub[i]);
    loop_timer_stop(&q->grace);
    link_remove(&q->link);
    while (!link_empty(&q->waiters)) {
        struct dns_lookup *l = CONTAINER_OF(q->waiters.next, struct dns_lookup, link);
        link_remove(&l->link);
        free(l);
    }
    free(q->name);
    free(q);
}

static const char *fail_text(enum sub_fail f)
{
    switch (f) {
    case FAIL_SERVFAIL:
        return "SERVFAIL";
    case FAIL_TRUNC:
        return "truncated answer (no TCP fallback)";
    case FAIL_NET:
        return "nameserver unreachable";
    default:
        return "timeout";
    }
}

/* Merge the two sub-queries: addresses IPv4 first; otherwise the most
 * telling error: a name that exists without addresses, a name that does
 * not exist, then why the servers did not answer. */
static void query_result(const struct query *q, struct dns_addr *out, size_t *n, const char **err, uint32_t *ttl)
{
    bool nodata = false, nxdomain = false;
    enum sub_fail fail = FAIL_NONE;
    *n = 0;
    *err = NULL;
    *ttl = UINT32_MAX;
    for (size_t i = 0; i < ARRAY_LEN(q->sub); i++) {
        const struct sub *s = &q->sub[i];
        if (s->state == SUB_ADDRS) {
            for (size_t j = 0; j < s->n && *n < DNS_MAX_ADDRS; j++)
                out[(*n)++] = s->addrs[j];
            if (s->ttl < *ttl)
                *ttl = s->ttl;
        }
        nodata |= s->state == SUB_NODATA;
        nxdomain |= s->state == SUB_NXDOMAIN;
        if (s->fail > fail)
            fail = s->fail;
    }
    if (*n > 0)
        return;
    *err = nodata ? "no address" : nxdomain ? "NXDOMAIN" : fail_text(fail);
}

static void query_finish(struct query *q)
{
    struct dns_addr addrs[DNS_MAX_ADDRS];
    size_t n;
    const char *err;
    uint32_t ttl;
    query_result(q, addrs, &n, &err, &ttl);
    if (n > 0 && q->cfg_gen == rs.cfg_gen)
        cache_store(q->name, addrs, n, ttl);
    while (!link_empty(&q->waiters)) {
        struct dns_lookup *l = CONTAINER_OF(q->waiters.next, struct dns_lookup, link);
        link_remove(&l->link);
        memcpy(l->addrs, addrs, n * sizeof *addrs);
        l->n = n;
        l->err = err;
        make_ready(l);
    }
    query_free(q);
}

static void on_grace(void *ctx)
{
    query_finish(ctx);
}

/* A sub-query ended: finish the query when both have, or give the other
 * a short grace once we hold addresses. */
static void query_progress(struct query *q)
{
    bool all_done = true, any_addrs = false;
    for (size_t i = 0; i < ARRAY_LEN(q->sub); i++) {
        all_done &= q->sub[i].state != SUB_PENDING;
        any_addrs |= q->sub[i].state == SUB_ADDRS;
    }
    if (all_done)
        query_finish(q);
    else if (any_addrs && !loop_timer_armed(&q->grace))
        loop_timer_set(&q->grace, DNS_PAIR_GRACE_MS);
}

/* May free the query: callers return right after. */
static void sub_finish(struct sub *s, enum sub_state state)
{
    sub_close(s);
    s->state = state;
    query_progress(s->q);
}

static void sub_on_io(void *ctx, int revents);

/* Open a fresh socket to ns (a new random source port from the kernel),
 * connect it so the kernel drops datagrams from any other source, and
 * send the question with a new random id.  0 or -1. */
static int sub_send(struct sub *s, const struct nameserver *ns)
{
    uint8_t pkt[DNS_HEADER_LEN + DNS_WIRE_NAME_MAX + DNS_QFIXED_LEN];
    int fd = socket(ns->sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int len = -1;
    if (connect(fd, (const struct sockaddr *)&ns->sa, ns->len) == 0 && random_bytes(&s->id, sizeof s->id) == 0)
        len = dns_build_query(pkt, sizeof pkt, s->id, s->q->name, s->qtype);
    if (len < 0 || send(fd, pkt, (size_t)len, 0) != len || loop_add(fd, POLLIN, sub_on_io, s) < 0) {
        close(fd);
        return -1;
    }
    s->fd = fd;
    return 0;
}

/* Try the next (server, round) pair, skipping those we cannot even send
 * to; when none is left the sub-query has failed.  May free the query. */
static void sub_next_try(struct sub *s)
{
    struct query *q = s->q;
    unsigned total = q->cfg.attempts * (unsigned)q->cfg.nns;
    sub_close(s);
    while (s->tries < total) {
        const struct nameserver *ns = &q->cfg.ns[s->tries % q->cfg.nns];
        s->tries++;
        if (sub_send(s, ns) == 0) {
            loop_timer_set(&s->timer, (uint64_t)q->cfg.timeout_s * 1000u);
            return;
        }
        log_debug("dns: %s: send to nameserver %u: %s", q->name, (unsigned)((s->tries - 1) % q->cfg.nns),
                  strerror(errno));
        if (s->fail < FAIL_NET)
            s->fail = FAIL_NET;
    }
    sub_finish(s, SUB_FAILED);
}

static void sub_server_failed(struct sub *s, enum sub_fail why)
{
    if (s->fail < why)
        s->fail = why;
    sub_next_try(s);
}

static void sub_on_timeout(void *ctx)
{
    sub_server_failed(ctx, FAIL_TIMEOUT);
}

static void sub_on_io(void *ctx, int revents)
{
    struct sub *s = ctx;
    uint8_t msg[DNS_RECV_MAX];
    for (int i = 0; i < DNS_RECV_BURST; i++) {
        ssize_t r = recv(s->fd, msg, sizeof msg, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if ((errno == EAGAIN || errno == EWOULDBLOCK) && !(revents & (POLLERR | POLLHUP | POLLNVAL)))
                return;
            /* ECONNREFUSED (ICMP port unreachable) and the like: this
             * server will not answer, ask the next one now. */
            sub_server_failed(s, FAIL_NET);
            return;
        }
        struct dns_addr addrs[DNS_MAX_ADDRS];
        uint32_t ttl;
        int rc = dns_parse_answer(msg, (size_t)r, s->id, s->q->name, s->qtype, addrs, DNS_MAX_ADDRS, &ttl);
        switch (rc) {
        case DNS_PARSE_MALFORMED:
        case DNS_PARSE_MISMATCH:
            continue;   /* possibly forged or stale: keep waiting for the real answer */
        case DNS_PARSE_TRUNCATED:
            sub_server_failed(s, FAIL_TRUNC);
            return;
        case DNS_PARSE_SERVFAIL:
            sub_server_failed(s, FAIL_SERVFAIL);
            return;
        case DNS_PARSE_NXDOMAIN:
            sub_finish(s, SUB_NXDOMAIN);
            return;
        default:
            if (rc < 0 || rc > DNS_MAX_ADDRS)
                continue;   /* no other codes exist; keeps the bound visible */
            s->n = (size_t)rc;
            memcpy(s->addrs, addrs, s->n * sizeof *addrs);
            s->ttl = ttl;
            sub_finish(s, rc > 0 ? SUB_ADDRS : SUB_NODATA);
            return;
        }
    }
    /* More datagrams may wait: poll() reports them on the next round. */
}

static struct query *query_new(const char *name)
{
    struct query *q = calloc(1, sizeof *q);
    if (!q || !(q->name = strdup(name))) {
        free(q);
        return NULL;
    }
    link_init(&q->link);
    link_init(&q->waiters);
    q->cfg = rs.cfg;
    q->cfg_gen = rs.cfg_gen;
    static const uint16_t types[] = { DNS_TYPE_A, DNS_TYPE_AAAA };
    for (size_t i = 0; i < ARRAY_LEN(q->sub); i++) {
        struct sub *s = &q->sub[i];
        s->q = q;
        s->qtype = types[i];
        s->fd = -1;
        loop_timer_init(&s->timer, sub_on_timeout, s);
    }
    loop_timer_init(&q->grace, on_grace, q);
    link_append(&rs.queries, &q->link);
    return q;
}

static struct query *query_find(const char *name)
{
    for (struct link *p = rs.queries.next; p != &rs.queries; p = p->next) {
        struct query *q = CONTAINER_OF(p, struct query, link);
        if (strcmp(q->name, name) == 0)
            return q;
    }
    return NULL;
}

/* ---------------- public ---------------- */

/* 1 and the address for a numeric IPv4 / IPv6 literal ("[v6]" too),
 * 0 for anything else, -1 for brackets around something that is not an
 * IPv6 address. */
static int numeric_addr(const char *host, struct dns_addr *out)
{
    char inner[INET6_ADDRSTRLEN];
    memset(out, 0, sizeof *out);
    if (host[0] == '[') {
        size_t len = strlen(host);
        if (len < 3 || host[len - 1] != ']' || len - 2 >= sizeof inner)
            return -1;
        memcpy(inner, host + 1, len - 2);
        inner[len - 2] = '\0';
        if (inet_pton(AF_INET6, inner, &out->a.v6) != 1)
            return -1;
        out->family = AF_INET6;
        return 1;
    }
    if (inet_pton(AF_INET, host, &out->a.v4) == 1) {
        out->family = AF_INET;
        return 1;
    }
    if (inet_pton(AF_INET6, host, &out->a.v6) == 1) {
        out->family = AF_INET6;
        return 1;
    }
    return 0;
}

/* Lower case, one trailing dot removed: the key for hosts, cache and
 * in-flight queries.  0 or -1. */
static int normalize_name(const char *host, char out[DNS_TEXT_NAME_MAX + 1])
{
    size_t len = strlen(host);
    if (len > 1 && host[len - 1] == '.')
        len--;
    if (len == 0 || len > DNS_TEXT_NAME_MAX)
        return -1;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)ascii_lower((uint8_t)host[i]);
    out[len] = '\0';
    return 0;
}

static size_t localhost_addrs(struct dns_addr *out)
{
    memset(out, 0, 2 * sizeof *out);
    out[0].family = AF_INET;
    out[0].a.v4.s_addr = htonl(INADDR_LOOPBACK);
    out[1].family = AF_INET6;
    out[1].a.v6 = in6addr_loopback;
    return 2;
}

struct dns_lookup *dns_resolve(const char *host, dns_cb cb, void *ctx)
{
    dns_init_once();
    struct dns_lookup *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->cb = cb;
    l->ctx = ctx;
    link_init(&l->link);
    ensure_configured();

    char name[DNS_TEXT_NAME_MAX + 1];
    uint8_t wire[DNS_WIRE_NAME_MAX];
    int num = host ? numeric_addr(host, &l->addrs[0]) : -1;
    if (num > 0) {
        l->n = 1;
        return make_ready(l);
    }
    if (num < 0 || normalize_name(host, name) < 0) {
        l->err = "invalid name";
        return make_ready(l);
    }
    if ((l->n = hosts_find(name, l->addrs, DNS_MAX_ADDRS)) > 0)
        return make_ready(l);
    if (strcmp(name, "localhost") == 0) {
        l->n = localhost_addrs(l->addrs);
        return make_ready(l);
    }
    if (name_to_wire(name, wire, true) < 0) {
        l->err = "invalid name";
        return make_ready(l);
    }
    if ((l->n = cache_find(name, l->addrs)) > 0)
        return make_ready(l);

    struct query *q = query_find(name);
    bool fresh = !q;
    if (fresh && !(q = query_new(name))) {
        free(l);
        return NULL;
    }
    l->q = q;
    link_append(&q->waiters, &l->link);
    if (fresh) {
        /* If no socket can be sent from at all, the query finishes right
         * here; l then sits on the ready list like any other result. */
        sub_next_try(&q->sub[0]);
        sub_next_try(&q->sub[1]);
    }
    return l;
}

void dns_cancel(struct dns_lookup *l)
{
    if (!l)
        return;
    struct query *q = l->q;
    link_remove(&l->link);
    free(l);
    /* Nobody else waits: stop asking, free the sockets. */
    if (q && link_empty(&q->waiters))
        query_free(q);
}

void dns_shutdown(void)
{
    if (!rs.init)
        return;
    while (!link_empty(&rs.queries))
        query_free(CONTAINER_OF(rs.queries.next, struct query, link));
    while (!link_empty(&rs.ready)) {
        struct dns_lookup *l = CONTAINER_OF(rs.ready.next, struct dns_lookup, link);
        link_remove(&l->link);
        free(l);
    }
    dns_flush_cache();
    hosts_free(&rs.hosts);
    rs.configured = false;
    memset(&rs.cfg, 0, sizeof rs.cfg);
}
