/* Live resolver test against tests/dns_server.py (started by
 * tests/integration/dns_live.t, which passes its port and stats file in
 * DNS_TEST_PORT and DNS_TEST_STATS).  Without DNS_TEST_PORT it skips, so
 * it can sit among the unit tests.  Only 127.0.0.1 (and ::1, where
 * nothing listens) are ever queried.
 *
 * The zone it expects is the one written by dns_live.t. */
#include "dns.h"
#include "log.h"
#include "loop.h"
#include "tap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TICK_MS 50              /* the heartbeat that proves the loop never blocks */
#define WAIT_MS 5000            /* upper bound on any single wait */

static const char *stats_path;
static char resolv_path[64], hosts_path[64];

struct result {
    int calls;
    size_t n;
    struct dns_addr addrs[DNS_MAX_ADDRS];
    char err[64];
    uint64_t at;                /* loop_now() when the callback ran */
};

static void on_result(void *ctx, const struct dns_addr *addrs, size_t n, const char *err)
{
    struct result *r = ctx;
    r->calls++;
    r->n = n;
    if (n)
        memcpy(r->addrs, addrs, n * sizeof *addrs);
    snprintf(r->err, sizeof r->err, "%s", err ? err : "");
    r->at = loop_now();
}

static struct loop_timer tick;
static unsigned ticks;

static void on_tick(void *ctx)
{
    (void)ctx;
    ticks++;
    loop_timer_set(&tick, TICK_MS);
}

/* Run the loop until every result has been called back or max_ms passed. */
static void wait_all(struct result **rs, size_t n, uint64_t max_ms)
{
    uint64_t end = loop_clock() + max_ms;
    for (;;) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += rs[i]->calls > 0;
        if (done == n || loop_now() >= end)
            return;
        loop_run_once(TICK_MS);
    }
}

static void wait_one(struct result *r, uint64_t max_ms)
{
    wait_all(&r, 1, max_ms);
}

/* Let the loop run for ms (callbacks that should not come get the chance). */
static void spin(uint64_t ms)
{
    uint64_t end = loop_clock() + ms;
    while (loop_now() < end)
        loop_run_once((int)(end - loop_now()));
}

/* Query counter "name/TYPE" from the server's stats file (0 if absent). */
static long stat_count(const char *name, const char *type)
{
    char key[300], buf[65536];
    FILE *f = fopen(stats_path, "r");
    if (!f)
        return -1;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    snprintf(key, sizeof key, "\"%s/%s\": ", name, type);
    const char *p = strstr(buf, key);
    return p ? strtol(p + strlen(key), NULL, 10) : 0;
}

static int addr_is(const struct dns_addr *a, const char *ip)
{
    char buf[INET6_ADDRSTRLEN];
    return inet_ntop(a->family, &a->a, buf, sizeof buf) && strcmp(buf, ip) == 0;
}

static void write_file(char *path, const char *content)
{
    strcpy(path, "/tmp/test_dns_live_XXXXXX");
    int fd = mkstemp(path);
    size_t len = strlen(content);
    if (fd < 0 || write(fd, content, len) != (ssize_t)len) {
        perror("temp file");
        exit(2);
    }
    close(fd);
}

static void resolve_wait(const char *name, struct result *r)
{
    memset(r, 0, sizeof *r);
    ok(dns_resolve(name, on_result, r) != NULL, "%s: lookup started", name);
    is_int(r->calls, 0, "%s: no callback inside dns_resolve", name);
    wait_one(r, WAIT_MS);
    is_int(r->calls, 1, "%s: one callback", name);
}

static void test_dual(void)
{
    struct result r;
    resolve_wait("dual.test", &r);
    is_str(r.err, "", "dual.test: no error");
    is_int(r.n, 3, "dual.test: 2 A + 1 AAAA");
    ok(r.n == 3 && addr_is(&r.addrs[0], "192.0.2.1") && addr_is(&r.addrs[1], "192.0.2.2") &&
           addr_is(&r.addrs[2], "2001:db8::1"),
       "dual.test: IPv4 first, then IPv6");
    is_int(stat_count("dual.test", "A"), 1, "dual.test: one A query");
    is_int(stat_count("dual.test", "AAAA"), 1, "dual.test: one AAAA query");

    resolve_wait("DUAL.test.", &r);
    is_int(r.n, 3, "dual.test again (other case, trailing dot): from the cache");
    is_int(stat_count("dual.test", "A"), 1, "cache hit: no new A query");
    is_int(stat_count("dual.test", "AAAA"), 1, "cache hit: no new AAAA query");

    resolve_wait("alias.test", &r);
    ok(r.n == 1 && addr_is(&r.addrs[0], "192.0.2.30"), "alias.test: CNAME chain followed to its A");

    resolve_wait("v6only.test", &r);
    ok(r.n == 1 && addr_is(&r.addrs[0], "2001:db8::66"), "v6only.test: only AAAA");
}

static void test_hosts(void)
{
    struct result r;
    resolve_wait("hosted.test", &r);
    ok(r.n == 1 && addr_is(&r.addrs[0], "10.1.2.3"), "hosts file hit");
    is_int(stat_count("hosted.test", "A") + stat_count("hosted.test", "AAAA"), 0, "hosts hit: no query sent");

    resolve_wait("localhost", &r);
    ok(r.n == 2 && addr_is(&r.addrs[0], "127.0.0.1") && addr_is(&r.addrs[1], "::1"), "localhost built in");
    is_int(stat_count("localhost", "A"), 0, "localhost: no query sent");

    resolve_wait("127.0.0.9", &r);
    ok(r.n == 1 && addr_is(&r.addrs[0], "127.0.0.9"), "numeric: no query");
}

static void test_errors(void)
{
    struct result r;
    resolve_wait("nx.test", &r);
    is_str(r.err, "NXDOMAIN", "nx.test: NXDOMAIN");
    is_int(r.n, 0, "nx.test: no address");

    resolve_wait("unknown-name.test", &r);
    is_str(r.err, "NXDOMAIN", "name the server does not know: NXDOMAIN");

    resolve_wait("empty.test", &r);
    is_str(r.err, "no address", "empty.test: exists without addresses");

    resolve_wait("sf.test", &r);
    is_str(r.err, "SERVFAIL", "sf.test: SERVFAIL");

    resolve_wait("tc.test", &r);
    is_str(r.err, "truncated answer (no TCP fallback)", "tc.test: truncated, no TCP fallback");
    is_int(stat_count("tc.test", "A"), 1, "tc.test: one A query (one server, one attempt)");

    resolve_wait("nx.test", &r);
    is_int(stat_count("nx.test", "A"), 2, "negative answers are not cached");
}

static void test_timeout(void)
{
    struct result r;
    unsigned before = ticks;
    uint64_t t0 = loop_clock();
    resolve_wait("hang.test", &r);
    uint64_t took = r.at - t0;
    is_str(r.err, "timeout", "hang.test: timeout");
    ok(took >= 950 && took < 2500, "timeout:1 attempts:1 takes about 1 s (took %llu ms)", (unsigned long long)took);
    unsigned fired = ticks - before;
    ok(fired >= 15, "50 ms heartbeat kept firing while the query hung (%u times)", fired);
    is_int(stat_count("hang.test", "A"), 1, "hang.test: one A query");
    is_int(stat_count("hang.test", "AAAA"), 1, "hang.test: one AAAA query");

    /* A answers, AAAA never does: success after the 500 ms grace. */
    t0 = loop_clock();
    resolve_wait("half.test", &r);
    took = r.at - t0;
    ok(r.n == 1 && addr_is(&r.addrs[0], "192.0.2.40") && !r.err[0], "half.test: the A address");
    ok(took >= 400 && took < 950, "half.test: answered after the grace, before the timeout (%llu ms)",
       (unsigned long long)took);
}

static void test_ttl(void)
{
    struct result r;
    resolve_wait("short.test", &r);
    ok(r.n == 1 && addr_is(&r.addrs[0], "192.0.2.50"), "short.test resolved");
    is_int(stat_count("short.test", "A"), 1, "short.test: one query");
    resolve_wait("short.test", &r);
    is_int(stat_count("short.test", "A"), 1, "short.test: cached within its TTL");
    spin(1200);
    resolve_wait("short.test", &r);
    ok(r.n == 1, "short.test resolved after expiry");
    is_int(stat_count("short.test", "A"), 2, "TTL 1 s expired: a new query");
}

static void test_mismatch(void)
{
    struct result r;
    resolve_wait("spoof.test", &r);
    ok(r.n == 1 && addr_is(&r.addrs[0], "192.0.2.60"), "spoof.test: the real answer, not the mismatched ones");
    is_int(stat_count("spoof.test", "A"), 1, "spoof.test: still one query (waited, did not retry)");
}

static void test_shared_and_cancel(void)
{
    struct result a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
    struct dns_lookup *la = dns_resolve("shared.test", on_result, &a);
    struct dns_lookup *lb = dns_resolve("shared.test", on_result, &b);
    struct dns_lookup *lc = dns_resolve("Shared.Test", on_result, &c);
    ok(la && lb && lc, "three concurrent lookups of shared.test");
    dns_cancel(lb);   /* must not cancel the query for the others */
    struct result *both[] = { &a, &c };
    wait_all(both, 2, WAIT_MS);
    spin(100);
    ok(a.calls == 1 && a.n == 1 && addr_is(&a.addrs[0], "192.0.2.70"), "first caller answered");
    ok(c.calls == 1 && c.n == 1 && addr_is(&c.addrs[0], "192.0.2.70"), "third caller answered");
    is_int(b.calls, 0, "cancelled caller not called");
    is_int(stat_count("shared.test", "A"), 1, "one A query for three lookups");
    is_int(stat_count("shared.test", "AAAA"), 1, "one AAAA query for three lookups");

    size_t fds = loop_fd_count();
    struct dns_lookup *ld = dns_resolve("cancel.test", on_result, &d);
    ok(ld != NULL, "cancel.test started");
    ok(loop_fd_count() == fds + 2, "two sockets while in flight");
    dns_cancel(ld);
    is_int(loop_fd_count(), fds, "last caller cancelled: sockets closed");
    spin(400);
    is_int(d.calls, 0, "cancelled lookup never called back");
    is_int(stat_count("cancel.test", "A"), 1, "cancel.test had been asked once");

    /* The cancelled query did not fill the cache: a new lookup asks again. */
    resolve_wait("cancel.test", &d);
    ok(d.n == 1 && addr_is(&d.addrs[0], "192.0.2.80"), "cancel.test resolves afterwards");
    is_int(stat_count("cancel.test", "A"), 2, "and asked again");
}

/* ::1 first (nothing listens there on our port: refused, or no IPv6 at
 * all), then 127.0.0.1: the lookup moves on without waiting a timeout. */
static void test_failover(void)
{
    char resolv2[64];
    write_file(resolv2, "nameserver ::1\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
    is_int(dns_configure(resolv2, hosts_path), 0, "configure ::1 then 127.0.0.1");
    struct result r;
    uint64_t t0 = loop_clock();
    resolve_wait("failover.test", &r);
    uint64_t took = r.at - t0;
    ok(r.n == 1 && addr_is(&r.addrs[0], "192.0.2.90"), "answered by the second nameserver");
    ok(took < 900, "without waiting for a timeout (%llu ms)", (unsigned long long)took);
    unlink(resolv2);

    /* A port where nothing listens: "nameserver unreachable", quickly. */
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sin;
    bind(s, (struct sockaddr *)&sin, sizeof sin);
    getsockname(s, (struct sockaddr *)&sin, &sl);
    close(s);
    char port[16];
    snprintf(port, sizeof port, "%u", (unsigned)ntohs(sin.sin_port));
    const char *real_port = getenv("AUTOSWITCH_DNS_PORT");
    char saved[16];
    snprintf(saved, sizeof saved, "%s", real_port);
    setenv("AUTOSWITCH_DNS_PORT", port, 1);
    is_int(dns_configure(resolv_path, hosts_path), 0, "configure a dead port");
    t0 = loop_clock();
    resolve_wait("dual.test", &r);
    took = r.at - t0;
    is_str(r.err, "nameserver unreachable", "dead port: nameserver unreachable (cache flushed with the server change)");
    ok(took < 900, "at once (%llu ms)", (unsigned long long)took);

    setenv("AUTOSWITCH_DNS_PORT", saved, 1);
    is_int(dns_configure(resolv_path, hosts_path), 0, "back to the test server");
}

int main(void)
{
    const char *port = getenv("DNS_TEST_PORT");
    stats_path = getenv("DNS_TEST_STATS");
    if (!port || !*port || !stats_path) {
        printf("1..0 # SKIP DNS_TEST_PORT / DNS_TEST_STATS not set (run tests/integration/dns_live.t)\n");
        return 0;
    }
    log_set_stdout(0);
    setenv("AUTOSWITCH_DNS_PORT", port, 1);
    setenv("AUTOSWITCH_DNS_TTL_MIN", "1", 1);
    write_file(resolv_path, "# test\nsearch example.org\nnameserver 127.0.0.1\noptions ndots:2 timeout:1 attempts:1\n");
    write_file(hosts_path, "10.1.2.3 hosted.test\n");

    loop_init();
    loop_timer_init(&tick, on_tick, NULL);
    loop_timer_set(&tick, TICK_MS);
    is_int(dns_configure(resolv_path, hosts_path), 0, "dns_configure");

    test_dual();
    test_hosts();
    test_errors();
    test_timeout();
    test_ttl();
    test_mismatch();
    test_shared_and_cancel();
    test_failover();

    loop_timer_stop(&tick);
    dns_shutdown();
    is_int(loop_fd_count(), 0, "no socket left after dns_shutdown");
    loop_free();
    unlink(resolv_path);
    unlink(hosts_path);
    return tap_done();
}
