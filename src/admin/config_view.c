#include "config_view.h"

#include <stdint.h>
#include <string.h>

#include "json.h"

#define MASK_KEEP_HEAD 3
#define MASK_KEEP_TAIL 4
#define MASK_MIN_LEN 12      /* shorter secrets show nothing but the ellipsis */

void config_mask(const char *key, struct buf *out)
{
    size_t n = strlen(key);
    if (n == 0)
        return;
    if (n < MASK_MIN_LEN) {
        buf_append_str(out, MASK_ELLIPSIS);
        return;
    }
    buf_append(out, key, MASK_KEEP_HEAD);
    buf_append_str(out, MASK_ELLIPSIS);
    buf_append(out, key + n - MASK_KEEP_TAIL, MASK_KEEP_TAIL);
}

bool config_is_masked(const char *s)
{
    return strstr(s, MASK_ELLIPSIS) != NULL;
}

static const void *at(const void *obj, size_t off)
{
    return (const char *)obj + off;
}

static const char *str_at(const void *obj, size_t off)
{
    const char *s;
    memcpy(&s, at(obj, off), sizeof s);
    return s;
}

static void jstr(struct buf *b, const char *s)
{
    json_append_str(b, s, strlen(s));
}

static void show_string(struct buf *b, const struct cfg_key *k, const void *obj)
{
    const char *v = str_at(obj, k->off);
    const char *raw = k->aux_off != CFG_NO_FIELD ? str_at(obj, k->aux_off) : NULL;
    if (!v) {
        buf_append_str(b, "null");
        return;
    }
    if (!(k->flags & CFG_K_SECRET)) {
        jstr(b, raw ? raw : v);
        return;
    }
    if (raw && strstr(raw, "${")) {
        jstr(b, raw);   /* a reference, not a secret */
        return;
    }
    struct buf m = BUF_INIT;
    config_mask(v, &m);
    json_append_str(b, buf_head(&m) ? buf_head(&m) : "", buf_len(&m));
    buf_free(&m);
}

static void show_list(struct buf *b, const struct cfg_key *k, const void *obj);

static void show_value(struct buf *b, const struct cfg_key *k, const void *obj)
{
    switch (k->type) {
    case CFG_STR: show_string(b, k, obj); return;
    case CFG_INT: {
        int v;
        memcpy(&v, at(obj, k->off), sizeof v);
        buf_printf(b, "%d", v);
        return;
    }
    case CFG_U64: {
        uint64_t v;
        memcpy(&v, at(obj, k->off), sizeof v);
        buf_append_u64(b, v);
        return;
    }
    case CFG_BOOL: {
        bool v;
        memcpy(&v, at(obj, k->off), sizeof v);
        buf_append_str(b, v ? "true" : "false");
        return;
    }
    case CFG_ENUM: {
        int v;
        memcpy(&v, at(obj, k->off), sizeof v);
        jstr(b, cfg_enum_name(k, v));
        return;
    }
    default: show_list(b, k, obj); return;
    }
}

static void show_object(struct buf *b, const struct cfg_schema *s, const void *obj);

static void show_list(struct buf *b, const struct cfg_key *k, const void *obj)
{
    size_t n;
    memcpy(&n, at(obj, k->aux_off), sizeof n);
    const char *arr;
    memcpy(&arr, at(obj, k->off), sizeof arr);
    bool map = k->type == CFG_STRMAP;
    buf_append(b, map ? "{" : "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_append(b, ",", 1);
        if (k->type == CFG_LIST) {
            show_object(b, k->item, arr + i * k->item_size);
        } else if (map) {
            const struct cfg_pair *pr = (const struct cfg_pair *)arr + i;
            jstr(b, pr->name);
            buf_append(b, ":", 1);
            struct buf m = BUF_INIT;
            config_mask(pr->value, &m);
            json_append_str(b, buf_head(&m) ? buf_head(&m) : "", buf_len(&m));
            buf_free(&m);
        } else {
            const char *s;
            memcpy(&s, arr + i * sizeof s, sizeof s);
            jstr(b, s);
        }
    }
    buf_append(b, map ? "}" : "]", 1);
}

static void show_object(struct buf *b, const struct cfg_schema *s, const void *obj)
{
    bool first = true;
    buf_append(b, "{", 1);
    for (size_t i = 0; i < s->n_keys; i++) {
        const struct cfg_key *k = &s->keys[i];
        if (!(k->flags & CFG_K_ADMIN) || ((k->flags & CFG_K_INHERIT) && !cfg_key_given(s, obj, k)))
            continue;
        if (!first)
            buf_append(b, ",", 1);
        first = false;
        jstr(b, k->name);
        buf_append(b, ":", 1);
        show_value(b, k, obj);
    }
    buf_append(b, "}", 1);
}

void config_view_object(struct buf *out, const struct cfg_schema *s, const void *obj)
{
    show_object(out, s, obj);
}

void config_view_json(struct buf *out, const struct config *cfg)
{
    show_object(out, &cfg_schema_top, cfg);
}
