/* The admin API's client keys: list them with their state, add one (the
 * gateway makes the token, shows it once and keeps only its SHA-256),
 * change one's limits, remove one.  Each change is the keys block written
 * back through admin_config_apply, like a providers edit: validated,
 * saved atomically, reloaded; the limiter state of a kept key survives. */
#include <stdio.h>
#include <string.h>

#include "accounting.h"
#include "admin.h"
#include "config_view.h"
#include "json.h"
#include "keys.h"
#include "reply.h"
#include "util.h"

#define NO_STORE "Cache-Control: no-store\r\n"
#define KEYS_PATH "/api/admin/keys/"
#define TOKEN_PREFIX "sk-as-"
#define TOKEN_RANDOM_BYTES 24

static void state_json(struct buf *b, const struct key_state *k, const struct limit_day *day)
{
    static const char *const classes[] = { "error", "1xx", "2xx", "3xx", "4xx", "5xx" };
    struct limit_state lim = k->lim;   /* a copy: reading the window rolls it */
    buf_printf(b, "{\"in_flight\":%u,\"rpm_used\":%llu,\"tokens_today\":%llu,\"answers\":{", (unsigned)lim.in_flight,
               (unsigned long long)limit_rpm_used(&lim, (int64_t)wall_ms()),
               (unsigned long long)limit_tokens_used(&lim, day->day));
    for (int c = 0; c < 6; c++)
        buf_printf(b, "%s\"%s\":%llu", c ? "," : "", classes[c], (unsigned long long)k->by_class[c]);
    buf_append_str(b, "},\"refused\":{");
    for (int r = 0; r < KR__COUNT; r++)
        buf_printf(b, "%s\"%s\":%llu", r ? "," : "", key_refusal_name((enum key_refusal)r),
                   (unsigned long long)k->refused[r]);
    buf_append_str(b, "}}");
}

/* GET /api/admin/keys: {"keys":[{...the config, key masked..., "state":{...}}],
 * "others":[{"name":"api_keys[0]","state":{...}}]} */
void admin_keys_get(struct conn *c, struct request *r, struct snapshot *s)
{
    (void)r;
    const struct config *cfg = s->cfg;
    const struct limit_day *day = acct_today((int64_t)wall_ms());
    struct buf b = BUF_INIT;
    buf_append_str(&b, "{\"keys\":[");
    for (size_t i = 0; i < cfg->n_keys; i++) {
        struct buf one = BUF_INIT;
        config_view_object(&one, &cfg_schema_client_key, &cfg->keys[i]);
        buf_append(&b, i ? "," : "", i ? 1 : 0);
        buf_append(&b, buf_head(&one), buf_len(&one) - 1);   /* without its '}' */
        buf_append_str(&b, ",\"state\":");
        if (cfg->keys[i].state)
            state_json(&b, cfg->keys[i].state, day);
        else
            buf_append_str(&b, "null");
        buf_append(&b, "}", 1);
        buf_free(&one);
    }
    buf_append_str(&b, "],\"others\":[");
    bool first = true;
    for (const struct key_state *k = key_states(); k; k = k->next) {
        bool named = false;
        for (size_t i = 0; i < cfg->n_keys && !named; i++)
            named = cfg->keys[i].state == k;
        if (named)
            continue;
        buf_append_str(&b, first ? "{\"name\":" : ",{\"name\":");
        json_append_str(&b, k->name, strlen(k->name));
        buf_append_str(&b, ",\"state\":");
        state_json(&b, k, day);
        buf_append(&b, "}", 1);
        first = false;
    }
    buf_append_str(&b, "]}");
    reply_envelope(c, 200, "ok", &b, NO_STORE);
    buf_free(&b);
}

/* ---------------- changes ---------------- */

/* The members of obj, but not those named in skip[], appended as
 * "name":value pairs (each preceded by a comma when *first is false). */
static void copy_members(struct buf *out, const char *text, struct json_val obj, const char *const *skip,
                         size_t n_skip, bool *first)
{
    struct json_iter it;
    struct json_val k, v;
    json_iter_init(&it, text, obj);
    while (json_iter_member(&it, &k, &v) == 1) {
        bool skipped = false;
        for (size_t i = 0; i < n_skip && !skipped; i++)
            skipped = json_str_eq(text, k, skip[i], strlen(skip[i]));
        if (skipped)
            continue;
        if (!*first)
            buf_append(out, ",", 1);
        buf_append(out, text + k.start, k.end - k.start);
        buf_append(out, ":", 1);
        buf_append(out, text + v.start, v.end - v.start);
        *first = false;
    }
}

/* What a change does to the keys block. */
struct keys_change {
    const char *name;          /* the key changed or removed (NULL: add) */
    bool remove;
    const char *body;          /* the request's JSON object: new values */
    struct json_val obj;
    const char *sha256_hex;    /* add: the new token's digest */
};

/* One running key as the new block has it: its view, with the change's
 * members in place of its own. */
static void changed_item(struct buf *out, const struct cfg_client_key *k, const struct keys_change *ch)
{
    static const char *const fixed[] = { "name", "key", "key_sha256", "previous_name" };
    struct buf view = BUF_INIT;
    config_view_object(&view, &cfg_schema_client_key, k);
    struct json_val vroot;
    struct json_error err;
    const char *vt = buf_cstr(&view);
    bool first = true;
    buf_append(out, "{", 1);
    if (json_parse(vt, buf_len(&view), &vroot, &err) == 0) {
        /* the view's members the body does not give */
        struct json_iter it;
        struct json_val key, v, given;
        json_iter_init(&it, vt, vroot);
        while (json_iter_member(&it, &key, &v) == 1) {
            char kname[64];
            json_str_decode(vt, key, kname, sizeof kname);
            bool is_fixed = false;
            for (size_t i = 0; i < 4 && !is_fixed; i++)
                is_fixed = strcmp(kname, fixed[i]) == 0;
            if (!is_fixed && json_get(ch->body, ch->obj, kname, &given))
                continue;
            buf_append(out, first ? "" : ",", first ? 0 : 1);
            buf_append(out, vt + key.start, key.end - key.start);
            buf_append(out, ":", 1);
            buf_append(out, vt + v.start, v.end - v.start);
            first = false;
        }
    }
    copy_members(out, ch->body, ch->obj, fixed, 4, &first);
    buf_append(out, "}", 1);
    buf_free(&view);
}

/* {"keys":[...]}: the running block with the change made. */
static void new_block(struct buf *out, const struct config *cfg, const struct keys_change *ch)
{
    bool first = true;
    buf_append_str(out, "{\"keys\":[");
    for (size_t i = 0; i < cfg->n_keys; i++) {
        const struct cfg_client_key *k = &cfg->keys[i];
        bool target = ch->name && strcmp(k->name, ch->name) == 0;
        if (target && ch->remove)
            continue;
        buf_append(out, first ? "" : ",", first ? 0 : 1);
        first = false;
        if (target) {
            changed_item(out, k, ch);
        } else {
            config_view_object(out, &cfg_schema_client_key, k);
        }
    }
    if (!ch->name) {
        static const char *const fixed[] = { "key", "key_sha256", "previous_name" };
        bool f = false;
        buf_append_str(out, first ? "{\"key_sha256\":\"" : ",{\"key_sha256\":\"");
        buf_append_str(out, ch->sha256_hex);
        buf_append(out, "\"", 1);
        copy_members(out, ch->body, ch->obj, fixed, 3, &f);
        buf_append(out, "}", 1);
    }
    buf_append_str(out, "]}");
}

static const struct cfg_client_key *find_key(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_keys; i++)
        if (strcmp(cfg->keys[i].name, name) == 0)
            return &cfg->keys[i];
    return NULL;
}

/* The body as an object, or an answer (400) and false. */
static bool body_object(struct conn *c, struct request *r, struct keys_change *ch)
{
    struct json_error err;
    ch->body = buf_len(&r->body) ? buf_head(&r->body) : "{}";
    size_t len = buf_len(&r->body) ? buf_len(&r->body) : 2;
    if (json_parse(ch->body, len, &ch->obj, &err) < 0 || ch->obj.type != JSON_OBJECT) {
        reply_envelope(c, 400, "the body must be a JSON object", NULL, NO_STORE);
        return false;
    }
    return true;
}

static int apply(struct request *r, const struct snapshot *s, const struct keys_change *ch, char *err, size_t cap)
{
    struct buf block = BUF_INIT;
    new_block(&block, s->cfg, ch);
    int status = buf_failed(&block) ? 500 : admin_config_apply(buf_head(&block), buf_len(&block), s, r->client, err, cap);
    if (buf_failed(&block))
        snprintf(err, cap, "out of memory");
    buf_free(&block);
    return status;
}

/* POST /api/admin/keys {"name":..., limits...}: a new key; the token is in
 * the answer and nowhere else. */
void admin_keys_create(struct conn *c, struct request *r, struct snapshot *s)
{
    struct keys_change ch = { 0 };
    if (!body_object(c, r, &ch))
        return;
    struct json_val v;
    char name[KEY_NAME_MAX + 1];
    if (!json_get(ch.body, ch.obj, "name", &v) || v.type != JSON_STRING ||
        json_str_decode(ch.body, v, name, sizeof name) >= sizeof name || !name[0]) {
        reply_envelope(c, 400, "name is required (at most 128 bytes)", NULL, NO_STORE);
        return;
    }
    if (find_key(s->cfg, name)) {
        reply_envelope(c, 409, "a key with this name exists", NULL, NO_STORE);
        return;
    }
    char token[sizeof TOKEN_PREFIX + 2 * TOKEN_RANDOM_BYTES], hex[65];
    memcpy(token, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1);
    random_hex(token + sizeof TOKEN_PREFIX - 1, TOKEN_RANDOM_BYTES);
    uint8_t digest[32];
    sha256(token, strlen(token), digest);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    ch.sha256_hex = hex;
    char err[800];
    int status = apply(r, s, &ch, err, sizeof err);
    if (status != 200) {
        reply_envelope(c, status, err, NULL, NO_STORE);
        return;
    }
    struct buf b = BUF_INIT;
    buf_append_str(&b, "{\"name\":");
    json_append_str(&b, name, strlen(name));
    buf_printf(&b, ",\"key\":\"%s\",\"key_sha256\":\"%s\"}", token, hex);
    reply_envelope(c, 200, "created: the key is shown only now, keep it", &b, NO_STORE);
    buf_free(&b);
}

/* The {name} of /api/admin/keys/{name}, or an answer and false. */
static bool path_name(struct conn *c, struct request *r, const struct snapshot *s, char *name, size_t cap)
{
    size_t plen = sizeof KEYS_PATH - 1;
    if (r->path_len <= plen || url_decode(r->path + plen, r->path_len - plen, name, cap) < 0) {
        reply_envelope(c, 400, "the path must name a key: /api/admin/keys/{name}", NULL, NO_STORE);
        return false;
    }
    if (!find_key(s->cfg, name)) {
        reply_envelope(c, 404, "no key with this name", NULL, NO_STORE);
        return false;
    }
    return true;
}

/* PUT /api/admin/keys/{name} {"rpm": 10, "disabled": true, ...}: the
 * members given replace the key's; its token and name stay. */
void admin_keys_change(struct conn *c, struct request *r, struct snapshot *s)
{
    char name[KEY_NAME_MAX * 3 + 1], err[800];
    struct keys_change ch = { 0 };
    if (!path_name(c, r, s, name, sizeof name) || !body_object(c, r, &ch))
        return;
    ch.name = name;
    int status = apply(r, s, &ch, err, sizeof err);
    reply_envelope(c, status, status == 200 ? "saved and reloaded" : err, NULL, NO_STORE);
}

/* DELETE /api/admin/keys/{name} */
void admin_keys_delete(struct conn *c, struct request *r, struct snapshot *s)
{
    char name[KEY_NAME_MAX * 3 + 1], err[800];
    struct keys_change ch = { .remove = true, .body = "{}", .obj = { JSON_OBJECT, 0, 2 } };
    if (!path_name(c, r, s, name, sizeof name))
        return;
    if (s->cfg->n_keys == 1 && !s->cfg->n_api_keys) {
        /* No key at all means an open gateway: never by accident. */
        reply_envelope(c, 409,
                       "this is the last key: without keys the gateway would be open to everyone; add another "
                       "key first (or edit the config file by hand)",
                       NULL, NO_STORE);
        return;
    }
    ch.name = name;
    int status = apply(r, s, &ch, err, sizeof err);
    reply_envelope(c, status, status == 200 ? "removed" : err, NULL, NO_STORE);
}
