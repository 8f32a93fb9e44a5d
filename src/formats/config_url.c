/* config_url: base_url -> host, port, path prefix and Host value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"

#define PORT_MAX_DIGITS 5
#define HTTP_PORT 80
#define HTTPS_PORT 443
#define SCHEME_HTTP "http://"
#define SCHEME_HTTPS "https://"
#define API_VERSION_SUFFIX "/v1"

static bool is_host_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_';
}

static bool is_ipv6_char(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
           ch == ':' || ch == '.';
}

static int parse_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > PORT_MAX_DIGITS)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > UINT16_MAX)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

static char *dup_lower(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    d[n] = '\0';
    return d;
}

/* Split the authority into host and port; NULL or the reason. */
static const char *parse_authority(const char *a, size_t n, const char **host, size_t *hlen,
                                   uint16_t *port, bool *ipv6)
{
    if (memchr(a, '@', n))
        return "base_url must not contain user info (@)";
    if (n == 0)
        return "base_url has an empty host";
    const char *colon;
    if (a[0] == '[') {
        const char *rb = memchr(a, ']', n);
        if (!rb || rb == a + 1)
            return "base_url has an invalid IPv6 address";
        for (const char *c = a + 1; c < rb; c++)
            if (!is_ipv6_char(*c))
                return "base_url has an invalid IPv6 address";
        if (!memchr(a + 1, ':', (size_t)(rb - a - 1)))
            return "base_url has an invalid IPv6 address";
        *host = a + 1;
        *hlen = (size_t)(rb - a - 1);
        *ipv6 = true;
        colon = rb + 1 < a + n ? rb + 1 : NULL;
        if (colon && *colon != ':')
            return "base_url has an invalid host";
    } else {
        colon = memchr(a, ':', n);
        *host = a;
        *hlen = colon ? (size_t)(colon - a) : n;
        *ipv6 = false;
        if (*hlen == 0)
            return "base_url has an empty host";
        for (size_t i = 0; i < *hlen; i++)
            if (!is_host_char(a[i]))
                return "base_url has an invalid host";
    }
    if (colon && parse_port(colon + 1, (size_t)(a + n - colon - 1), port) < 0)
        return "base_url has an invalid port";
    return NULL;
}

int cfg_parse_url(const char *url, struct cfg_url *out, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    const char *why = NULL;
    const char *rest = NULL;
    if (!url)
        url = "";
    for (const char *c = url; *c && !why; c++) {
        unsigned char ch = (unsigned char)*c;
        if (ch <= ' ' || ch >= 0x7f)
            why = "base_url contains a space, control or non-ASCII character";
    }
    if (!why) {
        if (strncasecmp(url, SCHEME_HTTPS, strlen(SCHEME_HTTPS)) == 0) {
            out->https = true;
            rest = url + strlen(SCHEME_HTTPS);
        } else if (strncasecmp(url, SCHEME_HTTP, strlen(SCHEME_HTTP)) == 0) {
            rest = url + strlen(SCHEME_HTTP);
        } else {
            why = "base_url must start with http:// or https://";
        }
    }
    if (!why && strpbrk(rest, "?#"))
        why = "base_url must not have a query or fragment";
    const char *host = NULL;
    size_t hlen = 0;
    bool ipv6 = false;
    const char *path = NULL;
    out->port = out->https ? HTTPS_PORT : HTTP_PORT;
    if (!why) {
        path = strchr(rest, '/');
        if (!path)
            path = rest + strlen(rest);
        why = parse_authority(rest, (size_t)(path - rest), &host, &hlen, &out->port, &ipv6);
    }
    if (why) {
        snprintf(err, cap, "%s", why);
        memset(out, 0, sizeof *out);
        return -1;
    }
    /* The request path is always prefix + "/v1/...", so a base_url that
     * already ends in /v1 (as most providers document it) must not get
     * a second one. */
    size_t plen = strlen(path);
    size_t vlen = strlen(API_VERSION_SUFFIX);
    while (plen && path[plen - 1] == '/')
        plen--;
    if (plen >= vlen && memcmp(path + plen - vlen, API_VERSION_SUFFIX, vlen) == 0)
        plen -= vlen;
    while (plen && path[plen - 1] == '/')
        plen--;

    out->host = dup_lower(host, hlen);
    out->prefix = strndup(path, plen);
    bool default_port = out->port == (out->https ? HTTPS_PORT : HTTP_PORT);
    /* "[" host "]" ":" 5 digits NUL */
    size_t alen = hlen + 2 + 1 + PORT_MAX_DIGITS + 1;
    out->authority = malloc(alen);
    if (!out->host || !out->prefix || !out->authority) {
        cfg_url_free(out);
        snprintf(err, cap, "out of memory");
        return -1;
    }
    int w = snprintf(out->authority, alen, ipv6 ? "[%s]" : "%s", out->host);
    if (!default_port)
        snprintf(out->authority + w, alen - (size_t)w, ":%u", (unsigned)out->port);
    return 0;
}

void cfg_url_free(struct cfg_url *u)
{
    if (!u)
        return;
    free(u->host);
    free(u->prefix);
    free(u->authority);
    memset(u, 0, sizeof *u);
}

