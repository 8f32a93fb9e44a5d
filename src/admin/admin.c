#include "admin.h"

#include <stdio.h>
#include <string.h>

#include "guard.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "loop.h"
#include "reply.h"
#include "util.h"

/* No CORS headers: the admin API is for the page served by this binary. */
#define ADMIN_HEADERS "Cache-Control: no-store\r\n"

static struct admin_host host;

void admin_set_host(const struct admin_host *h)
{
    host = *h;
}

const struct admin_host *admin_host(void)
{
    return &host;
}

static bool admin_enabled(struct conn *c, const struct config *cfg, bool plain)
{
    if (cfg->admin_key && cfg->admin_key[0])
        return true;
    if (plain) {
        static const char msg[] = "metrics disabled: set admin_key in the config file to enable them\n";
        conn_respond(c, 403, "text/plain; charset=utf-8", NULL, msg, sizeof msg - 1);
    } else {
        reply_envelope(c, 403, "admin API disabled: set admin_key in the config file to enable it", NULL,
                       ADMIN_HEADERS);
    }
    return false;
}

static bool admin_key_ok(const struct config *cfg, const char *v, size_t n)
{
    return ct_equal(v, n, cfg->admin_key, strlen(cfg->admin_key));
}

static void refuse(struct conn *c, enum admin_auth how)
{
    if (how == ADMIN_BEARER) {
        static const char msg[] = "unauthorized: send Authorization: Bearer <admin_key>\n";
        conn_respond(c, 401, "text/plain; charset=utf-8", "WWW-Authenticate: Bearer\r\n", msg, sizeof msg - 1);
    } else {
        reply_envelope(c, 401, "unauthorized: send the admin key in X-API-Key", NULL, ADMIN_HEADERS);
    }
}

/* 429 while the client's budget of wrong keys is spent (guard.h). */
static bool guard(struct conn *c, const struct request *r, enum admin_auth how)
{
    unsigned retry_s;
    if (guard_open(r->client, &retry_s))
        return true;
    log_warn("admin: too many wrong admin keys from %s: refused for %us", r->client, retry_s);
    char hdr[96];
    snprintf(hdr, sizeof hdr, ADMIN_HEADERS "Retry-After: %u\r\n", retry_s);
    if (how == ADMIN_BEARER) {
        static const char msg[] = "too many wrong keys, try again later\n";
        conn_respond(c, 429, "text/plain; charset=utf-8", hdr, msg, sizeof msg - 1);
    } else {
        reply_envelope(c, 429, "too many wrong admin keys from this address, try again later", NULL, hdr);
    }
    return false;
}

bool admin_authorize(struct conn *c, const struct request *r, const struct config *cfg, enum admin_auth how)
{
    if (!admin_enabled(c, cfg, how == ADMIN_BEARER) || !guard(c, r, how))
        return false;
    if (how == ADMIN_LOGIN)
        return true;   /* the key is in the body: admin_login checks it */
    const struct hp_header *h;
    bool ok;
    if (how == ADMIN_BEARER) {
        h = hp_find(r->hp.headers, r->hp.num_headers, "authorization");
        ok = h && h->value_len >= 7 && mem_ieq(h->value, 7, "bearer ") &&
             admin_key_ok(cfg, h->value + 7, h->value_len - 7);
    } else {
        h = hp_find(r->hp.headers, r->hp.num_headers, "x-api-key");
        ok = h && admin_key_ok(cfg, h->value, h->value_len);
    }
    if (!ok) {
        guard_failed(r->client);
        log_warn("admin: wrong admin key from %s on %.*s", r->client, (int)(r->path_len > 64 ? 64 : r->path_len),
                 r->path);
        refuse(c, how);
    }
    return ok;
}

void admin_stats(struct conn *c, struct request *r, struct snapshot *s)
{
    (void)r;
    struct buf b = BUF_INIT;
    metrics_stats_json(&b, s);
    reply_json(c, 200, &b, ADMIN_HEADERS);
    buf_free(&b);
}

void admin_health(struct conn *c, struct request *r, struct snapshot *s)
{
    (void)r;
    struct buf b = BUF_INIT;
    metrics_providers_json(&b, s);
    reply_envelope(c, 200, "ok", &b, ADMIN_HEADERS);
    buf_free(&b);
}

void admin_metrics(struct conn *c, struct request *r, struct snapshot *s)
{
    (void)r;
    struct buf b = BUF_INIT;
    metrics_prometheus(&b, s);
    conn_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", ADMIN_HEADERS, buf_head(&b), buf_len(&b));
    buf_free(&b);
}

void admin_login(struct conn *c, struct request *r, struct snapshot *s)
{
    /* The guard was asked at the head (admin_authorize). */
    const char *b = buf_len(&r->body) ? buf_head(&r->body) : "";
    struct json_val root, key;
    struct json_error err;
    if (json_parse(b, buf_len(&r->body), &root, &err) < 0 || root.type != JSON_OBJECT ||
        !json_get(b, root, "api_key", &key) || key.type != JSON_STRING) {
        reply_envelope(c, 400, "send {\"api_key\": \"<admin key>\"}", NULL, ADMIN_HEADERS);
        return;
    }
    char given[512];
    size_t n = json_str_decode(b, key, given, sizeof given);
    if (n < sizeof given && admin_key_ok(s->cfg, given, n)) {
        reply_envelope(c, 200, "logged in", NULL, ADMIN_HEADERS);
        return;
    }
    guard_failed(r->client);
    log_warn("admin: failed login from %s", r->client);
    reply_envelope(c, 401, "invalid admin key", NULL, ADMIN_HEADERS);
}

/* ---------------- logs ---------------- */

#define LOGS_DEFAULT_LINES 200   /* as the reference */
#define LOGS_MAX_LINES 5000

struct log_out {
    struct buf text;
    struct buf lines;
    size_t count;
    uint64_t last;
};

static void collect_line(void *ctx, uint64_t seq, const char *line, size_t len)
{
    struct log_out *o = ctx;
    if (o->count++) {
        buf_append(&o->text, "\n", 1);
        buf_append(&o->lines, ",", 1);
    }
    buf_append(&o->text, line, len);
    buf_printf(&o->lines, "{\"seq\":%llu,\"text\":", (unsigned long long)seq);
    json_append_str(&o->lines, line, len);
    buf_append(&o->lines, "}", 1);
    o->last = seq;
}

void admin_logs_get(struct conn *c, struct request *r, struct snapshot *s)
{
    (void)s;
    uint64_t since = 0;
    size_t max = LOGS_DEFAULT_LINES, n;
    long long v;
    const char *q = request_query_param(r, "since", &n);
    if (q && parse_int(q, n, 0, 1ll << 62, &v) == 0)
        since = (uint64_t)v;
    q = request_query_param(r, "lines", &n);
    if (q && parse_int(q, n, 1, LOGS_MAX_LINES, &v) == 0)
        max = (size_t)v;
    struct log_out o = { BUF_INIT, BUF_INIT, 0, since };
    log_ring_each(since, max, collect_line, &o);
    struct buf d = BUF_INIT;
    buf_append_str(&d, "{\"logs\":");
    json_append_str(&d, buf_head(&o.text) ? buf_head(&o.text) : "", buf_len(&o.text));
    buf_append_str(&d, ",\"lines\":[");
    buf_append(&d, buf_head(&o.lines), buf_len(&o.lines));
    buf_printf(&d, "],\"last_seq\":%llu}", (unsigned long long)(o.count ? o.last : log_last_seq()));
    reply_envelope(c, 200, "ok", &d, ADMIN_HEADERS);
    buf_free(&d);
    buf_free(&o.text);
    buf_free(&o.lines);
}

void admin_logs_delete(struct conn *c, struct request *r, struct snapshot *s)
{
    (void)r;
    (void)s;
    if (log_clear() < 0) {
        reply_envelope(c, 500, "could not clear the log file", NULL, ADMIN_HEADERS);
        return;
    }
    log_info("admin: logs cleared by %s", r->client);
    reply_envelope(c, 200, "cleared", NULL, ADMIN_HEADERS);
}
