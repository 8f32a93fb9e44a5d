#include "config_edit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config_view.h"
#include "util.h"

#define VALUE_MAX 4096         /* longest string value taken */
#define PATH_MAX_LEN 160

/* What an object of the JSON is written against. */
struct scope {
    const struct cfg_schema *schema;
    struct json_val obj;
    const void *running;       /* the same object in the running config, or NULL */
    bool urls_kept;            /* every CFG_K_URL of obj points where running's does */
    const char *path;          /* "providers[2]" */
    int indent;                /* of its keys */
};

static int bad(struct config_edit *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct config_edit *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->err, sizeof e->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* YAML double-quoted scalar: always safe, whatever the text. */
static void yaml_str(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            buf_append(b, "\\", 1);
            buf_append(b, s + i, 1);
        } else if (ch == '\n') {
            buf_append_str(b, "\\n");
        } else if (ch == '\t') {
            buf_append_str(b, "\\t");
        } else if (ch < 0x20 || ch == 0x7f) {
            char x[4] = { '\\', 'x', hex[ch >> 4], hex[ch & 15] };
            buf_append(b, x, 4);
        } else {
            buf_append(b, s + i, 1);
        }
    }
    buf_append(b, "\"", 1);
}

/* What the page typed, for the file: "$" written "$$" so it is never
 * expanded. */
static void yaml_typed(struct buf *b, const char *s)
{
    struct buf t = BUF_INIT;
    for (; *s; s++) {
        buf_append(&t, s, 1);
        if (*s == '$')
            buf_append(&t, "$", 1);
    }
    yaml_str(b, buf_head(&t) ? buf_head(&t) : "", buf_len(&t));
    buf_free(&t);
}

static void end_line(struct buf *out)
{
    if (!buf_len(out) || buf_head(out)[buf_len(out) - 1] != '\n')
        buf_append(out, "\n", 1);
}

static const char *str_at(const void *obj, size_t off)
{
    const char *s;
    memcpy(&s, (const char *)obj + off, sizeof s);
    return s;
}

/* Whether text is the file text (before expansion) of key somewhere in
 * the running config: a ${VAR} reference the operator wrote. */
static bool known_raw(const struct config *c, const char *key, const char *text)
{
    const struct cfg_key *pk = cfg_key_find(&cfg_schema_provider, key);
    const struct cfg_key *mk = cfg_key_find(&cfg_schema_mapping, key);
    for (size_t i = 0; i < c->n_providers; i++) {
        const struct cfg_provider *p = &c->providers[i];
        const char *r = pk && pk->aux_off != CFG_NO_FIELD ? str_at(p, pk->aux_off) : NULL;
        if (r && strcmp(r, text) == 0)
            return true;
        for (size_t m = 0; mk && mk->aux_off != CFG_NO_FIELD && m < p->n_mappings; m++)
            if ((r = str_at(&p->mappings[m], mk->aux_off)) && strcmp(r, text) == 0)
                return true;
    }
    return false;
}

static int take_string(struct config_edit *e, struct json_val v, const char *what, char *out, size_t cap)
{
    if (v.type != JSON_STRING)
        return bad(e, "%s must be a string", what);
    size_t n = json_str_decode(e->text, v, out, cap);
    if (n >= cap || n != strlen(out))
        return bad(e, "%s is too long or holds a NUL", what);
    return 0;
}

/* A masked secret came back: keep the running one, if it may be kept. */
static int keep_secret(struct config_edit *e, const struct scope *sc, const struct cfg_key *k, const char *what,
                       struct buf *out)
{
    if (!sc->running)
        return bad(e, "%s: a masked value can only be kept for an existing %s: type it again", what,
                   sc->schema->what);
    if (!sc->urls_kept)
        return bad(e, "%s: the URL changed its scheme, host or port, so the masked value would go somewhere new: "
                      "type it again", what);
    const char *raw = k->aux_off != CFG_NO_FIELD ? str_at(sc->running, k->aux_off) : NULL;
    const char *v = str_at(sc->running, k->off);
    if (raw)
        yaml_str(out, raw, strlen(raw));
    else
        yaml_typed(out, v ? v : "");
    return 0;
}

static int put_string(struct config_edit *e, const struct scope *sc, const struct cfg_key *k, struct json_val v,
                      const char *what, struct buf *out)
{
    char s[VALUE_MAX];
    if (take_string(e, v, what, s, sizeof s) < 0)
        return -1;
    if ((k->flags & CFG_K_SECRET) && config_is_masked(s))
        return keep_secret(e, sc, k, what, out);
    if ((k->flags & CFG_K_SECRET) && strstr(s, "${") && known_raw(e->running, k->name, s)) {
        /* A reference to a secret is a secret too: kept on the same terms
         * as a masked value (its own object, its URLs where they were). */
        const char *raw = sc->running && k->aux_off != CFG_NO_FIELD ? str_at(sc->running, k->aux_off) : NULL;
        if (!raw || strcmp(raw, s) != 0)
            return bad(e, "%s: the reference %.100s names another entry's secret: it can only be kept where it "
                          "was; type the value itself", what, s);
        return keep_secret(e, sc, k, what, out);
    }
    if (strstr(s, "${") && known_raw(e->running, k->name, s))
        yaml_str(out, s, strlen(s));   /* the operator's reference, unchanged */
    else
        yaml_typed(out, s);
    if (strcmp(k->name, "ca_file") == 0 && s[0] && access(s, R_OK) != 0)
        return bad(e, "%s: cannot read %.150s: %s", what, s, strerror(errno));
    return 0;
}

static int put_scalar(struct config_edit *e, const struct cfg_key *k, struct json_val v, const char *what,
                      struct buf *out)
{
    long long x;
    if (k->type == CFG_BOOL) {
        if (v.type != JSON_TRUE && v.type != JSON_FALSE)
            return bad(e, "%s must be true or false", what);
        buf_append_str(out, v.type == JSON_TRUE ? "true" : "false");
        return 0;
    }
    if (k->type == CFG_ENUM) {
        char s[64];
        if (take_string(e, v, what, s, sizeof s) < 0)
            return -1;
        for (size_t i = 0; i < k->n_names; i++)
            if (strcmp(s, k->names[i]) == 0) {
                buf_append_str(out, s);
                return 0;
            }
        return bad(e, "%s: \"%s\" is not one of its values", what, s);
    }
    long long lo = k->type == CFG_U64 ? 0 : -1000000000, hi = k->type == CFG_U64 ? (1ll << 53) : 1000000000;
    if (v.type != JSON_NUMBER || parse_int(e->text + v.start, v.end - v.start, lo, hi, &x) < 0)
        return bad(e, "%s must be a whole number", what);
    buf_printf(out, "%lld", x);
    return 0;
}

/* A header (name, masked value) the page sent back: the running one. */
static const char *running_header(const struct scope *sc, const struct cfg_key *k, const char *name)
{
    if (!sc->running)
        return NULL;
    size_t n;
    const struct cfg_pair *pairs;
    memcpy(&n, (const char *)sc->running + k->aux_off, sizeof n);
    memcpy(&pairs, (const char *)sc->running + k->off, sizeof pairs);
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(pairs[i].name, name) == 0)
            return pairs[i].value;
    return NULL;
}

static int put_map(struct config_edit *e, const struct scope *sc, const struct cfg_key *k, struct json_val v,
                   const char *what, struct buf *out)
{
    if (v.type != JSON_OBJECT)
        return bad(e, "%s must be an object of names and values", what);
    struct json_iter it;
    struct json_val name, val;
    char n[256], s[VALUE_MAX];
    buf_append_str(out, "{");
    bool first = true;
    json_iter_init(&it, e->text, v);
    while (json_iter_member(&it, &name, &val) == 1) {
        if (take_string(e, name, what, n, sizeof n) < 0 || take_string(e, val, what, s, sizeof s) < 0)
            return -1;
        buf_append_str(out, first ? " " : ", ");
        first = false;
        yaml_typed(out, n);
        buf_append_str(out, ": ");
        if (!config_is_masked(s)) {
            yaml_typed(out, s);
            continue;
        }
        const char *keep = running_header(sc, k, n);
        if (!keep || !sc->urls_kept)
            return bad(e, "%s.%s: a masked value can only be kept for the same header while the URLs keep their "
                          "host: type it again", what, n);
        yaml_typed(out, keep);
    }
    buf_append_str(out, first ? "}" : " }");
    return 0;
}

static int put_strlist(struct config_edit *e, struct json_val v, const char *what, struct buf *out)
{
    if (v.type != JSON_ARRAY)
        return bad(e, "%s must be a list", what);
    struct json_iter it;
    struct json_val x;
    char s[VALUE_MAX];
    buf_append_str(out, "[");
    bool first = true;
    json_iter_init(&it, e->text, v);
    while (json_iter_elem(&it, &x) == 1) {
        if (take_string(e, x, what, s, sizeof s) < 0)
            return -1;
        if (!first)
            buf_append_str(out, ", ");
        first = false;
        yaml_typed(out, s);
    }
    buf_append_str(out, "]");
    return 0;
}

static int put_list(struct config_edit *e, const struct scope *sc, const struct cfg_key *k, struct json_val v,
                    const char *what, struct buf *out);

static int put_value(struct config_edit *e, const struct scope *sc, const struct cfg_key *k, struct json_val v,
                     const char *what, struct buf *out)
{
    switch (k->type) {
    case CFG_STR: return put_string(e, sc, k, v, what, out);
    case CFG_STRLIST: return put_strlist(e, v, what, out);
    case CFG_STRMAP: return put_map(e, sc, k, v, what, out);
    case CFG_LIST: return put_list(e, sc, k, v, what, out);
    default: return put_scalar(e, k, v, what, out);
    }
}

static int emit_object(struct config_edit *e, const struct scope *sc, struct buf *out);

/* The running object a JSON item stands for: a provider or a client key
 * by its name (or previous_name, when renamed); other objects have no
 * secrets to keep. */
static const void *running_of(struct config_edit *e, const struct cfg_key *k, struct json_val item)
{
    bool prov = k->item == &cfg_schema_provider;
    if (!prov && k->item != &cfg_schema_client_key)
        return NULL;
    char name[512];
    struct json_val v;
    const char *keys[] = { "previous_name", "name" };
    for (size_t i = 0; i < 2; i++) {
        if (!json_get(e->text, item, keys[i], &v) || v.type != JSON_STRING ||
            json_str_decode(e->text, v, name, sizeof name) >= sizeof name)
            continue;
        for (size_t p = 0; prov && p < e->running->n_providers; p++)
            if (strcmp(e->running->providers[p].name, name) == 0)
                return &e->running->providers[p];
        for (size_t p = 0; !prov && p < e->running->n_keys; p++)
            if (strcmp(e->running->keys[p].name, name) == 0)
                return &e->running->keys[p];
    }
    return NULL;
}

/* Whether every URL key of item points where the running object's does. */
static bool urls_kept(struct config_edit *e, const struct cfg_schema *s, struct json_val item, const void *running)
{
    for (size_t i = 0; running && i < s->n_keys; i++) {
        const struct cfg_key *k = &s->keys[i];
        if (!(k->flags & CFG_K_URL))
            continue;
        const char *old = str_at(running, k->off), *old_raw = k->aux_off != CFG_NO_FIELD ? str_at(running, k->aux_off) : NULL;
        struct json_val v;
        char now[VALUE_MAX] = "";
        if (json_get(e->text, item, k->name, &v) && v.type == JSON_STRING)
            json_str_decode(e->text, v, now, sizeof now);
        if (!old != !now[0])
            return false;
        if (!old || (old_raw && strcmp(old_raw, now) == 0) || strcmp(old, now) == 0)
            continue;
        struct cfg_url a, b;
        char why[128];
        bool same = cfg_parse_url(old, &a, why, sizeof why) == 0 && cfg_parse_url(now, &b, why, sizeof why) == 0 &&
                    a.https == b.https && a.port == b.port && strcmp(a.host, b.host) == 0;
        cfg_url_free(&a);
        cfg_url_free(&b);
        if (!same)
            return false;
    }
    return running != NULL;
}

static int put_list(struct config_edit *e, const struct scope *sc, const struct cfg_key *k, struct json_val v,
                    const char *what, struct buf *out)
{
    (void)sc;
    if (v.type != JSON_ARRAY)
        return bad(e, "%s must be a list", what);
    if (json_is_empty(e->text, v)) {
        buf_append_str(out, "[]");
        return 0;
    }
    struct json_iter it;
    struct json_val item;
    size_t idx = 0;
    json_iter_init(&it, e->text, v);
    while (json_iter_elem(&it, &item) == 1) {
        char path[PATH_MAX_LEN];
        snprintf(path, sizeof path, "%s[%zu]", what, idx++);
        if (item.type != JSON_OBJECT)
            return bad(e, "%s must be an object", path);
        const void *running = running_of(e, k, item);
        struct scope child = { k->item, item, running, urls_kept(e, k->item, item, running), path, sc->indent + 4 };
        buf_append(out, "\n", 1);
        if (emit_object(e, &child, out) < 0)
            return -1;
    }
    return 0;
}

/* The keys of one object, "key: value" per line; a list item's first key
 * after "- " at indent - 2. */
static int emit_object(struct config_edit *e, const struct scope *sc, struct buf *out)
{
    bool first = true;
    for (size_t i = 0; i < sc->schema->n_keys; i++) {
        const struct cfg_key *k = &sc->schema->keys[i];
        struct json_val v;
        if (!(k->flags & CFG_K_ADMIN) || !json_get(e->text, sc->obj, k->name, &v) || v.type == JSON_NULL)
            continue;
        if (k->type == CFG_STR && v.type == JSON_STRING && v.end - v.start == 2 &&
            (k->rule == CFG_EMPTY_NULL || strcmp(k->name, "alias") == 0))
            continue;   /* empty: the default */
        char what[PATH_MAX_LEN + 64];
        snprintf(what, sizeof what, "%s.%s", sc->path, k->name);
        for (int s = 0; s < sc->indent - (first ? 2 : 0); s++)
            buf_append(out, " ", 1);
        buf_append_str(out, first ? "- " : "");
        buf_append_str(out, k->name);
        buf_append_str(out, ": ");
        if (put_value(e, sc, k, v, what, out) < 0)
            return -1;
        end_line(out);
        first = false;
    }
    if (first)
        return bad(e, "%s is empty", sc->path);
    return 0;
}

int config_edit_build(struct config_edit *e, struct json_val root)
{
    const struct cfg_schema *s = &cfg_schema_top;
    struct scope top = { s, root, e->running, true, "", 0 };
    for (size_t i = 0; i < s->n_keys; i++) {
        const struct cfg_key *k = &s->keys[i];
        struct json_val v;
        if (!(k->flags & CFG_K_ADMIN) || !json_get(e->text, root, k->name, &v) || v.type == JSON_NULL)
            continue;
        struct buf *out = &e->yaml[i];
        buf_append_str(out, k->name);
        buf_append_str(out, ": ");
        top.path = k->name;
        if (put_value(e, &top, k, v, k->name, out) < 0)
            return -1;
        end_line(out);
    }
    return 0;
}

void config_edit_free(struct config_edit *e)
{
    for (size_t i = 0; i < CFG_MAX_KEYS; i++)
        buf_free(&e->yaml[i]);
}
