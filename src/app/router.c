#include "router.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "json.h"
#include "log.h"
#include "proxy.h"
#include "reply.h"
#include "ui.h"
#include "util.h"

static time_t started_at;

bool auth_client(struct conn *c, const struct request *r, const struct config *cfg)
{
    if (cfg->n_api_keys == 0)
        return true;
    const struct hp_header *h = hp_find(r->hp.headers, r->hp.num_headers, "authorization");
    if (!h || h->value_len == 0) {
        reply_error(c, 401, "invalid_request_error", NULL, "Missing Authorization header");
        return false;
    }
    /* As the reference: scheme, one space, key; scheme case-insensitive. */
    const char *sp = memchr(h->value, ' ', h->value_len);
    if (!sp || !mem_ieq(h->value, (size_t)(sp - h->value), "bearer")) {
        reply_error(c, 401, "invalid_request_error", NULL,
                    "Invalid Authorization header format. Expected: Bearer <api_key>");
        return false;
    }
    const char *key = sp + 1;
    size_t klen = h->value_len - (size_t)(key - h->value);
    while (klen && (*key == ' ' || *key == '\t')) {
        key++;
        klen--;
    }
    bool match = false;
    for (size_t i = 0; i < cfg->n_api_keys; i++)
        match |= ct_equal(key, klen, cfg->api_keys[i], strlen(cfg->api_keys[i]));
    if (!match) {
        reply_error(c, 401, "invalid_api_key", NULL, "Invalid API key");
        return false;
    }
    return true;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int url_decode(const char *src, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = src[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(src[i + 1]), lo = hexval(src[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = ch;
    }
    out[o] = '\0';
    return 0;
}

const char *query_param(const struct request *r, const char *name, size_t *len)
{
    const char *q = r->query;
    size_t n = r->query_len, nl = strlen(name);
    while (q && n) {
        const char *amp = memchr(q, '&', n);
        size_t part = amp ? (size_t)(amp - q) : n;
        if (part > nl && memcmp(q, name, nl) == 0 && q[nl] == '=') {
            *len = part - nl - 1;
            return q + nl + 1;
        }
        if (!amp)
            break;
        n -= part + 1;
        q = amp + 1;
    }
    return NULL;
}

/* ---- handlers ---- */

static void append_model(struct buf *b, const char *id)
{
    buf_append_str(b, "{\"id\":");
    json_append_str(b, id, strlen(id));
    buf_printf(b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"organization-owner\"}",
               (long long)started_at);
}

static void handle_models(struct conn *c, struct request *r, struct snapshot *s)
{
    (void)r;
    struct buf b = BUF_INIT;
    buf_append_str(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < s->n_aliases; i++) {
        if (i)
            buf_append(&b, ",", 1);
        append_model(&b, s->aliases[i].name);
    }
    buf_append_str(&b, "]}\n");
    reply_json(c, 200, &b, NULL);
    buf_free(&b);
}

static void handle_model(struct conn *c, struct request *r, struct snapshot *s)
{
    static const char prefix[] = "/v1/models/";
    char id[1024];
    size_t plen = sizeof prefix - 1;
    if (url_decode(r->path + plen, r->path_len - plen, id, sizeof id) < 0) {
        reply_error(c, 400, "invalid_request_error", NULL, "invalid model id in path");
        return;
    }
    const struct alias_entry *a = snapshot_alias(s, id, strlen(id));
    if (!a) {
        reply_error(c, 404, "not_found_error", "model_not_found", "model %s not found", id);
        return;
    }
    struct buf b = BUF_INIT;
    append_model(&b, a->name);
    buf_append(&b, "\n", 1);
    reply_json(c, 200, &b, NULL);
    buf_free(&b);
}

static void handle_healthz(struct conn *c, struct request *r, struct snapshot *s)
{
    (void)r;
    (void)s;
    static const char body[] = "{\"status\":\"ok\"}\n";
    conn_respond(c, 200, "application/json", "Cache-Control: no-store\r\n", body, sizeof body - 1);
}

/* ---- the table ---- */

enum auth_kind { AUTH_NONE, AUTH_CLIENT };

struct route {
    const char *method;      /* GET also answers HEAD */
    const char *path;
    bool prefix;             /* path is a prefix ("/v1/models/") */
    enum auth_kind auth;
    void (*fn)(struct conn *, struct request *, struct snapshot *);
};

static const struct route routes[] = {
    { "GET", "/healthz", false, AUTH_NONE, handle_healthz },
    { "GET", "/v1/models", false, AUTH_CLIENT, handle_models },
    { "GET", "/v1/models/", true, AUTH_CLIENT, handle_model },
    { "POST", "/v1/chat/completions", false, AUTH_CLIENT, proxy_handle },
    { "POST", "/v1/completions", false, AUTH_CLIENT, proxy_handle },
    { "POST", "/v1/embeddings", false, AUTH_CLIENT, proxy_handle },
    { "POST", "/v1/responses", false, AUTH_CLIENT, proxy_handle },
    { "POST", "/v1/images/generations", false, AUTH_CLIENT, proxy_handle },
    { "POST", "/v1/images/edits", false, AUTH_CLIENT, proxy_handle },
    { "POST", "/v1/moderations", false, AUTH_CLIENT, proxy_handle },
    { "POST", "/v1/audio/speech", false, AUTH_CLIENT, proxy_handle },
    { "POST", "/v1/audio/transcriptions", false, AUTH_CLIENT, proxy_handle },
    { "POST", "/v1/audio/translations", false, AUTH_CLIENT, proxy_handle },
    { "GET", "/internal/stats", false, AUTH_NONE, admin_stats },
    { "GET", "/metrics", false, AUTH_NONE, admin_metrics },
    { "GET", "/api/admin/health", false, AUTH_NONE, admin_health },
    { "POST", "/api/admin/login", false, AUTH_NONE, admin_login },
    { "GET", "/api/admin/config", false, AUTH_NONE, admin_config_get },
    { "POST", "/api/admin/config", false, AUTH_NONE, admin_config_post },
    { "GET", "/api/admin/logs", false, AUTH_NONE, admin_logs_get },
    { "DELETE", "/api/admin/logs", false, AUTH_NONE, admin_logs_delete },
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

void router_dispatch(struct conn *c, struct request *r)
{
    if (!started_at)
        started_at = time(NULL);
    struct snapshot *s = snapshot_current();
    /* The OpenAI API is callable from web pages (keys are bearer tokens,
     * never cookies); the admin API is for the built-in UI only. */
    r->cors = mem_starts(r->path, r->path_len, "/v1/");
    bool preflight = r->cors && mem_eq(r->hp.method, r->hp.method_len, "OPTIONS");
    char allow[128] = "";
    for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
        const struct route *rt = &routes[i];
        if (!path_matches(rt, r))
            continue;
        if (preflight || !method_matches(rt->method, r)) {
            if (!strstr(allow, rt->method)) {
                size_t l = strlen(allow);
                snprintf(allow + l, sizeof allow - l, "%s%s%s", l ? ", " : "", rt->method,
                         strcmp(rt->method, "GET") == 0 ? ", HEAD" : "");
            }
            continue;
        }
        if (rt->auth == AUTH_CLIENT && !auth_client(c, r, s->cfg))
            return;
        rt->fn(c, r, s);
        return;
    }
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
        reply_error_json(&b, "method not allowed", "invalid_request_error", NULL);
        buf_append(&b, "\n", 1);
        conn_respond(c, 405, "application/json", hdr, buf_head(&b), buf_len(&b));
        buf_free(&b);
        return;
    }
    reply_error(c, 404, "invalid_request_error", "not_found", "no route for %.*s %.*s",
                (int)(r->hp.method_len > 16 ? 16 : r->hp.method_len), r->hp.method,
                (int)(r->path_len > 200 ? 200 : r->path_len), r->path);
}
