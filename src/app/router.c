#include "router.h"

#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "apierr.h"
#include "auth.h"
#include "buf.h"
#include "endpoint.h"
#include "models.h"
#include "netaddr.h"
#include "proxy.h"
#include "reply.h"
#include "snapshot.h"
#include "ui.h"
#include "util.h"

typedef void (*route_fn)(struct conn *, struct request *, struct snapshot *);

enum auth_kind { AUTH_NONE, AUTH_CLIENT, AUTH_ADMIN, AUTH_ADMIN_BEARER, AUTH_ADMIN_LOGIN };

enum body_cap { CAP_SMALL, CAP_LOGIN, CAP_CONFIG, CAP_PROXY };

struct route {
    const char *method;      /* GET also answers HEAD */
    const char *path;
    bool prefix;             /* path is a prefix ("/v1/models/") */
    enum auth_kind auth;
    enum body_cap cap;
    bool quiet;              /* polled by the admin page: access line at DEBUG */
    route_fn fn;
};

static void handle_healthz(struct conn *c, struct request *r, struct snapshot *s)
{
    (void)r;
    (void)s;
    static const char body[] = "{\"status\":\"ok\"}\n";
    conn_respond(c, 200, "application/json", "Cache-Control: no-store\r\n", body, sizeof body - 1);
}

static const struct route routes[] = {
    { "GET", "/healthz", false, AUTH_NONE, CAP_SMALL, false, handle_healthz },
    { "GET", "/v1/models", false, AUTH_CLIENT, CAP_SMALL, false, models_list },
    { "GET", "/v1/models/", true, AUTH_CLIENT, CAP_SMALL, false, models_get },
    { "GET", "/internal/stats", false, AUTH_ADMIN, CAP_SMALL, true, admin_stats },
    { "GET", "/metrics", false, AUTH_ADMIN_BEARER, CAP_SMALL, false, admin_metrics },
    { "GET", "/api/admin/health", false, AUTH_ADMIN, CAP_SMALL, true, admin_health },
    { "POST", "/api/admin/login", false, AUTH_ADMIN_LOGIN, CAP_LOGIN, false, admin_login },
    { "GET", "/api/admin/config", false, AUTH_ADMIN, CAP_SMALL, false, admin_config_get },
    { "POST", "/api/admin/config", false, AUTH_ADMIN, CAP_CONFIG, false, admin_config_post },
    { "GET", "/api/admin/keys", false, AUTH_ADMIN, CAP_SMALL, true, admin_keys_get },
    { "POST", "/api/admin/keys", false, AUTH_ADMIN, CAP_SMALL, false, admin_keys_create },
    { "PUT", "/api/admin/keys/", true, AUTH_ADMIN, CAP_SMALL, false, admin_keys_change },
    { "DELETE", "/api/admin/keys/", true, AUTH_ADMIN, CAP_SMALL, false, admin_keys_delete },
    { "GET", "/api/admin/usage", false, AUTH_ADMIN, CAP_SMALL, true, admin_usage_get },
    { "GET", "/api/admin/logs", false, AUTH_ADMIN, CAP_SMALL, true, admin_logs_get },
    { "DELETE", "/api/admin/logs", false, AUTH_ADMIN, CAP_SMALL, false, admin_logs_delete },
};

/* Every proxied endpoint (endpoint.h) is a POST route of this shape. */
static const struct route proxy_route = { "POST", NULL, false, AUTH_CLIENT, CAP_PROXY, false, proxy_handle };

/* What head() found, kept until done(). */
struct routed {
    const struct route *rt;
    struct snapshot *snap;
    struct principal who;    /* the client key of a /v1 route */
    size_t alloc;
};

static bool path_matches(const struct route *rt, const struct request *r)
{
    if (rt->prefix)
        return r->path_len > strlen(rt->path) && mem_starts(r->path, r->path_len, rt->path);
    return mem_eq(r->path, r->path_len, rt->path);
}

static bool method_matches(const char *want, const struct request *r)
{
    if (mem_eq(r->hp.method, r->hp.method_len, want))
        return true;
    return strcmp(want, "GET") == 0 && r->is_head;
}

static void allow_method(char *allow, size_t cap, const char *method)
{
    if (strstr(allow, method))
        return;
    size_t l = strlen(allow);
    snprintf(allow + l, cap - l, "%s%s%s", l ? ", " : "", method, strcmp(method, "GET") == 0 ? ", HEAD" : "");
}

/* The route for r, or NULL with the methods the path does have in allow. */
static const struct route *find_route(const struct request *r, bool preflight, char *allow, size_t cap)
{
    for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
        const struct route *rt = &routes[i];
        if (!path_matches(rt, r))
            continue;
        if (!preflight && method_matches(rt->method, r))
            return rt;
        allow_method(allow, cap, rt->method);
    }
    if (endpoint_find(r->path, r->path_len)) {
        if (!preflight && method_matches(proxy_route.method, r))
            return &proxy_route;
        allow_method(allow, cap, proxy_route.method);
    }
    return NULL;
}

/* A browser asks before a cross-origin POST with an Authorization header
 * (the Fetch standard's CORS preflight): say yes for the
 * methods the path has.  The requested headers are echoed, because the
 * wildcard "*" does not cover Authorization. */
static void answer_preflight(struct conn *c, const struct request *r, const char *allow)
{
    const struct hp_header *h = hp_find(r->hp.headers, r->hp.num_headers, "access-control-request-headers");
    struct buf hdr = BUF_INIT;
    buf_printf(&hdr, "Access-Control-Allow-Methods: %s, OPTIONS\r\nAccess-Control-Allow-Headers: ", allow);
    if (h && h->value_len && h->value_len <= 1024)
        buf_append(&hdr, h->value, h->value_len);
    else
        buf_append_str(&hdr, "Authorization, Content-Type");
    buf_append_str(&hdr, "\r\nAccess-Control-Max-Age: 86400\r\n");
    conn_respond(c, 204, NULL, buf_cstr(&hdr), NULL, 0);
    buf_free(&hdr);
}

/* No route: a preflight, the web UI, 405 or 404. */
static void answer_unrouted(struct conn *c, struct request *r, bool preflight, const char *allow)
{
    if (preflight && allow[0]) {
        answer_preflight(c, r, allow);
        return;
    }
    if (!allow[0] && (mem_eq(r->hp.method, r->hp.method_len, "GET") || r->is_head) && ui_serve(c, r))
        return;
    if (allow[0]) {
        char hdr[160];
        snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
        struct buf b = BUF_INIT;
        apierr_json(&b, r->dialect, 405, "invalid_request_error", NULL, "method not allowed");
        buf_append(&b, "\n", 1);
        conn_respond(c, 405, "application/json", hdr, buf_head(&b), buf_len(&b));
        buf_free(&b);
        return;
    }
    reply_api_error(c, r->dialect, 404, "invalid_request_error", "not_found", "no route for %.*s %.*s",
                    (int)(r->hp.method_len > 16 ? 16 : r->hp.method_len), r->hp.method,
                    (int)(r->path_len > 200 ? 200 : r->path_len), r->path);
}

/* The dialect a /v1 request speaks: its endpoint's, and for the model
 * list Anthropic's when the client sends anthropic-version (as the
 * Anthropic SDKs do). */
static enum dialect dialect_of(const struct request *r)
{
    const struct endpoint *ep = endpoint_find(r->path, r->path_len);
    if (ep)
        return ep->dialect;
    return hp_find(r->hp.headers, r->hp.num_headers, "anthropic-version") ? DIALECT_ANTHROPIC : DIALECT_OPENAI;
}

static bool authorize(struct conn *c, const struct request *r, const struct route *rt, struct routed *rd)
{
    const struct config *cfg = rd->snap->cfg;
    switch (rt->auth) {
    case AUTH_CLIENT: return auth_client(c, r, rd->snap, dialect_of(r), &rd->who);
    case AUTH_ADMIN: return admin_authorize(c, r, cfg, ADMIN_KEY_HEADER);
    case AUTH_ADMIN_BEARER: return admin_authorize(c, r, cfg, ADMIN_BEARER);
    case AUTH_ADMIN_LOGIN: return admin_authorize(c, r, cfg, ADMIN_LOGIN);
    default: return true;
    }
}

static uint64_t body_cap(enum body_cap cap, const struct config *cfg)
{
    switch (cap) {
    case CAP_PROXY: return cfg->max_body_bytes;
    case CAP_CONFIG: return CFG_MAX_FILE_BYTES;
    case CAP_LOGIN: return ROUTER_LOGIN_BODY;
    default: return ROUTER_SMALL_BODY;
    }
}

/* Behind a reverse proxy every client has the proxy's address: when the
 * peer is a trusted proxy, the last X-Forwarded-For hop (the one that
 * proxy added) is the client, for limits and logs. */
static void resolve_client(struct request *r, const struct config *cfg)
{
    struct netaddr peer, net;
    unsigned bits;
    if (!cfg->n_trusted_proxies || netaddr_parse(r->client, strlen(r->client), &peer) < 0)
        return;
    bool trusted = false;
    for (size_t i = 0; i < cfg->n_trusted_proxies && !trusted; i++)
        trusted = netaddr_prefix_parse(cfg->trusted_proxies[i], &net, &bits) == 0 && netaddr_in(&peer, &net, bits);
    const struct hp_header *xff = NULL;
    for (size_t i = 0; trusted && i < r->hp.num_headers; i++)
        if (hp_name_eq(&r->hp.headers[i], "x-forwarded-for"))
            xff = &r->hp.headers[i];
    if (!xff)
        return;
    const char *v = xff->value, *end = v + xff->value_len;
    const char *last = v;
    for (const char *p = v; p < end; p++)
        if (*p == ',')
            last = p + 1;
    while (last < end && (*last == ' ' || *last == '\t'))
        last++;
    struct netaddr hop;
    size_t n = (size_t)(end - last);
    if (netaddr_parse(last, n, &hop) == 0 && n < sizeof r->client) {
        memcpy(r->client, last, n);
        r->client[n] = '\0';
    }
}

static bool router_head(struct conn *c, struct request *r, uint64_t *max_body)
{
    struct snapshot *s = snapshot_current();
    resolve_client(r, s->cfg);
    /* The OpenAI API is callable from web pages (keys are bearer tokens,
     * never cookies); the admin API is for the built-in UI only. */
    r->cors = mem_starts(r->path, r->path_len, "/v1/");
    if (r->cors)
        r->dialect = dialect_of(r);   /* the server's own errors (413, 408) in the client's shape too */
    bool preflight = r->cors && mem_eq(r->hp.method, r->hp.method_len, "OPTIONS");
    char allow[128] = "";
    const struct route *rt = find_route(r, preflight, allow, sizeof allow);
    if (!rt) {
        answer_unrouted(c, r, preflight, allow);
        return false;
    }
    r->quiet = rt->quiet;
    size_t alloc;
    struct routed *rd = mem_get(sizeof *rd, &alloc);
    if (!rd) {
        reply_error(c, 503, "server_error", NULL, "out of memory");
        return false;
    }
    *rd = (struct routed){ .rt = rt, .snap = snapshot_ref(s), .alloc = alloc };
    r->app = rd;   /* done() releases it, answered here or not */
    if (!authorize(c, r, rt, rd))
        return false;
    if (rt->auth == AUTH_CLIENT)
        r->who = &rd->who;
    uint64_t cap = body_cap(rt->cap, s->cfg);
    if (cap < *max_body)
        *max_body = cap;
    return true;
}

static void router_serve(struct conn *c, struct request *r)
{
    struct routed *rd = r->app;
    rd->rt->fn(c, r, rd->snap);
}

static void router_done(struct conn *c, struct request *r)
{
    (void)c;
    struct routed *rd = r->app;
    r->app = NULL;
    r->who = NULL;
    if (!rd)
        return;
    keys_done(&rd->who, r->status);
    snapshot_unref(rd->snap);
    mem_put(rd, rd->alloc);
}

const struct server_handlers router_handlers = { router_head, router_serve, router_done };
