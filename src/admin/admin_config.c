/* The admin API's config endpoints: show the running providers (keys
 * masked), and save a new set.  Saving writes only the parts the page
 * edits - the providers block and the four global numbers - into the
 * existing file text, so api_keys, admin_key, comments elsewhere, unknown
 * keys and ${VAR} references stay exactly as they were.  The new text is
 * fully validated first; then it is written atomically (temp file, fsync,
 * rename; the old file kept as .bak) and reloaded. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "atomic_file.h"
#include "json.h"
#include "log.h"
#include "reply.h"
#include "util.h"

#define MASK_KEEP_HEAD 3
#define MASK_KEEP_TAIL 4
#define MASK_MIN_LEN 12      /* shorter keys show nothing but the ellipsis */
#define ELLIPSIS "\xe2\x80\xa6"

/* "sk-…abcd": enough to recognise a key, never enough to use it. */
static void mask_key(const char *key, struct buf *out)
{
    size_t n = strlen(key);
    if (n == 0)
        return;
    if (n < MASK_MIN_LEN) {
        buf_append_str(out, ELLIPSIS);
        return;
    }
    buf_append(out, key, MASK_KEEP_HEAD);
    buf_append_str(out, ELLIPSIS);
    buf_append(out, key + n - MASK_KEEP_TAIL, MASK_KEEP_TAIL);
}

static void jstr(struct buf *b, const char *s)
{
    json_append_str(b, s ? s : "", s ? strlen(s) : 0);
}

void admin_config_get(struct conn *c, struct request *r, struct snapshot *s)
{
    (void)r;
    const struct config *cfg = s->cfg;
    struct buf b = BUF_INIT;
    buf_append_str(&b, "{\"providers\":[");
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const struct cfg_provider *p = &cfg->providers[i];
        if (i)
            buf_append(&b, ",", 1);
        buf_append_str(&b, "{\"name\":");
        jstr(&b, p->name);
        buf_append_str(&b, ",\"base_url\":");
        jstr(&b, p->base_url_raw ? p->base_url_raw : p->base_url);
        buf_append_str(&b, ",\"api_key\":");
        struct buf m = BUF_INIT;
        if (p->api_key_raw && strstr(p->api_key_raw, "${"))
            buf_append_str(&m, p->api_key_raw);   /* a reference, not a secret */
        else
            mask_key(p->api_key, &m);
        json_append_str(&b, buf_head(&m) ? buf_head(&m) : "", buf_len(&m));
        buf_free(&m);
        buf_printf(&b, ",\"weight\":%d,\"priority\":%d,\"timeout\":%d,\"exclude_params\":[", p->weight, p->priority,
                   p->timeout);
        for (size_t e = 0; e < p->n_exclude; e++) {
            if (e)
                buf_append(&b, ",", 1);
            jstr(&b, p->exclude_params[e]);
        }
        buf_append_str(&b, "],\"ca_file\":");
        if (p->ca_file)
            jstr(&b, p->ca_file);
        else
            buf_append_str(&b, "null");
        buf_append_str(&b, ",\"model_mappings\":[");
        for (size_t k = 0; k < p->n_mappings; k++) {
            const struct cfg_mapping *mp = &p->mappings[k];
            if (k)
                buf_append(&b, ",", 1);
            buf_append_str(&b, "{\"upstream\":");
            jstr(&b, mp->upstream);
            buf_append_str(&b, ",\"alias\":");
            jstr(&b, mp->alias);
            buf_printf(&b, ",\"priority\":%d,\"weight\":%d", mp->priority, mp->weight);
            if (mp->max_failures > 0)
                buf_printf(&b, ",\"max_failures\":%d", mp->max_failures);
            buf_printf(&b, ",\"probe\":\"%s\"}", cfg_probe_name(mp->probe));
        }
        buf_append_str(&b, "]}");
    }
    buf_printf(&b, "],\"max_retries\":%d,\"max_failures\":%d,\"recovery_interval\":%d,\"health_check_period\":%d}",
               cfg->max_retries, cfg->max_failures, cfg->recovery_interval, cfg->health_check_period);
    reply_envelope(c, 200, "ok", &b, "Cache-Control: no-store\r\n");
    buf_free(&b);
}

/* ---------------- saving ---------------- */

struct edit {
    const char *text;     /* the JSON body */
    struct buf yaml;      /* the new providers block */
    char err[640];
};

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
            char e[4] = { '\\', 'x', hex[ch >> 4], hex[ch & 15] };
            buf_append(b, e, 4);
        } else {
            buf_append(b, s + i, 1);
        }
    }
    buf_append(b, "\"", 1);
}

static bool want_type(struct edit *e, struct json_val v, enum json_type t, const char *what)
{
    static const char *names[] = { "?", "an object", "a list", "a string", "a number", "true", "false", "null" };
    if (v.type == t)
        return true;
    snprintf(e->err, sizeof e->err, "%s must be %s", what, names[t]);
    return false;
}

/* Copy a JSON string value into out as a YAML scalar. */
static bool put_str(struct edit *e, struct json_val v, const char *what, char *tmp, size_t cap)
{
    if (!want_type(e, v, JSON_STRING, what))
        return false;
    size_t n = json_str_decode(e->text, v, tmp, cap);
    if (n >= cap || n != strlen(tmp)) {
        snprintf(e->err, sizeof e->err, "%s is too long or holds a NUL", what);
        return false;
    }
    yaml_str(&e->yaml, tmp, n);
    return true;
}

static bool put_int(struct edit *e, struct json_val v, const char *what)
{
    long long x;
    if (v.type != JSON_NUMBER || parse_int(e->text + v.start, v.end - v.start, -1000000000, 1000000000, &x) < 0) {
        snprintf(e->err, sizeof e->err, "%s must be a whole number", what);
        return false;
    }
    buf_printf(&e->yaml, "%lld", x);
    return true;
}

/* The provider of the running config with this name (for masked keys). */
static const struct cfg_provider *running(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_providers; i++)
        if (strcmp(cfg->providers[i].name, name) == 0)
            return &cfg->providers[i];
    return NULL;
}

static bool emit_mapping(struct edit *e, struct json_val m, const char *path)
{
    char what[160], tmp[1024];
    if (!want_type(e, m, JSON_OBJECT, path))
        return false;
    struct json_iter it;
    struct json_val k, v;
    bool first = true, has_upstream = false;
    json_iter_init(&it, e->text, m);
    while (json_iter_member(&it, &k, &v) == 1) {
        char key[32];
        if (json_str_decode(e->text, k, key, sizeof key) >= sizeof key)
            continue;
        if (v.type == JSON_NULL)
            continue;
        snprintf(what, sizeof what, "%s.%s", path, key);
        const char *lead = first ? "      - " : "        ";
        if (strcmp(key, "upstream") == 0 || strcmp(key, "alias") == 0 || strcmp(key, "probe") == 0) {
            if (strcmp(key, "alias") == 0 && v.type == JSON_STRING && v.end - v.start == 2)
                continue;   /* empty alias: defaults to upstream */
            buf_printf(&e->yaml, "%s%s: ", lead, key);
            if (!put_str(e, v, what, tmp, sizeof tmp))
                return false;
            has_upstream |= strcmp(key, "upstream") == 0;
        } else if (strcmp(key, "priority") == 0 || strcmp(key, "weight") == 0 || strcmp(key, "max_failures") == 0) {
            buf_printf(&e->yaml, "%s%s: ", lead, key);
            if (!put_int(e, v, what))
                return false;
        } else {
            continue;   /* display-only fields the page may echo back */
        }
        buf_append(&e->yaml, "\n", 1);
        first = false;
    }
    if (!has_upstream) {
        snprintf(e->err, sizeof e->err, "%s: upstream is required", path);
        return false;
    }
    return true;
}

static bool emit_provider(struct edit *e, struct json_val p, size_t idx, const struct config *cfg)
{
    char path[64], what[160], tmp[4096];
    snprintf(path, sizeof path, "providers[%zu]", idx);
    if (!want_type(e, p, JSON_OBJECT, path))
        return false;
    struct json_val name, v;
    if (!json_get(e->text, p, "name", &name) || name.type != JSON_STRING) {
        snprintf(e->err, sizeof e->err, "%s: name is required", path);
        return false;
    }
    char pname[512];
    json_str_decode(e->text, name, pname, sizeof pname);
    /* A renamed provider names its old self in previous_name, so a masked
     * key can still be kept. */
    const struct cfg_provider *old = running(cfg, pname);
    if (json_get(e->text, p, "previous_name", &v) && v.type == JSON_STRING) {
        char prev[512];
        json_str_decode(e->text, v, prev, sizeof prev);
        if (running(cfg, prev))
            old = running(cfg, prev);
    }
    buf_append_str(&e->yaml, "  - name: ");
    yaml_str(&e->yaml, pname, strlen(pname));
    buf_append(&e->yaml, "\n", 1);

    static const char *const str_keys[] = { "base_url", "ca_file" };
    for (size_t i = 0; i < ARRAY_LEN(str_keys); i++) {
        if (!json_get(e->text, p, str_keys[i], &v) || v.type == JSON_NULL)
            continue;
        if (v.type == JSON_STRING && v.end - v.start == 2 && i == 1)
            continue;
        snprintf(what, sizeof what, "%s.%s", path, str_keys[i]);
        buf_printf(&e->yaml, "    %s: ", str_keys[i]);
        if (!put_str(e, v, what, tmp, sizeof tmp))
            return false;
        if (i == 1 && !strstr(tmp, "${") && access(tmp, R_OK) != 0) {
            snprintf(e->err, sizeof e->err, "%s: cannot read %.150s: %s", what, tmp, strerror(errno));
            return false;
        }
        buf_append(&e->yaml, "\n", 1);
    }
    if (json_get(e->text, p, "api_key", &v) && v.type != JSON_NULL) {
        snprintf(what, sizeof what, "%s.api_key", path);
        if (!want_type(e, v, JSON_STRING, what))
            return false;
        size_t n = json_str_decode(e->text, v, tmp, sizeof tmp);
        if (n >= sizeof tmp) {
            snprintf(e->err, sizeof e->err, "%s is too long", what);
            return false;
        }
        buf_append_str(&e->yaml, "    api_key: ");
        if (old && strstr(tmp, ELLIPSIS)) {
            /* The masked key came back: keep what the file said. */
            const char *keep = old->api_key_raw ? old->api_key_raw : old->api_key;
            yaml_str(&e->yaml, keep, strlen(keep));
        } else if (strstr(tmp, ELLIPSIS)) {
            snprintf(e->err, sizeof e->err, "%s: a masked key can only be kept for an existing provider", what);
            return false;
        } else {
            yaml_str(&e->yaml, tmp, n);
        }
        buf_append(&e->yaml, "\n", 1);
    }
    static const char *const int_keys[] = { "weight", "priority", "timeout" };
    for (size_t i = 0; i < ARRAY_LEN(int_keys); i++) {
        if (!json_get(e->text, p, int_keys[i], &v) || v.type == JSON_NULL)
            continue;
        snprintf(what, sizeof what, "%s.%s", path, int_keys[i]);
        buf_printf(&e->yaml, "    %s: ", int_keys[i]);
        if (!put_int(e, v, what))
            return false;
        buf_append(&e->yaml, "\n", 1);
    }
    if (json_get(e->text, p, "exclude_params", &v) && v.type != JSON_NULL) {
        snprintf(what, sizeof what, "%s.exclude_params", path);
        if (!want_type(e, v, JSON_ARRAY, what))
            return false;
        buf_append_str(&e->yaml, "    exclude_params: [");
        struct json_iter it;
        struct json_val x;
        bool first = true;
        json_iter_init(&it, e->text, v);
        while (json_iter_elem(&it, &x) == 1) {
            if (!first)
                buf_append_str(&e->yaml, ", ");
            if (!put_str(e, x, what, tmp, sizeof tmp))
                return false;
            first = false;
        }
        buf_append_str(&e->yaml, "]\n");
    }
    if (!json_get(e->text, p, "model_mappings", &v) || v.type == JSON_NULL ||
        (v.type == JSON_ARRAY && json_is_empty(e->text, v))) {
        buf_append_str(&e->yaml, "    model_mappings: []\n");
        return true;
    }
    snprintf(what, sizeof what, "%s.model_mappings", path);
    if (!want_type(e, v, JSON_ARRAY, what))
        return false;
    buf_append_str(&e->yaml, "    model_mappings:\n");
    struct json_iter it;
    struct json_val m;
    size_t k = 0;
    json_iter_init(&it, e->text, v);
    while (json_iter_elem(&it, &m) == 1) {
        char mpath[96];
        snprintf(mpath, sizeof mpath, "%s.model_mappings[%zu]", path, k++);
        if (!emit_mapping(e, m, mpath))
            return false;
    }
    return true;
}

static int read_file(const char *path, struct buf *out, char *err, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, cap, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (buf_reserve(out, 65536) < 0) {
            close(fd);
            snprintf(err, cap, "out of memory");
            return -1;
        }
        ssize_t n = read(fd, buf_tail(out), 65536);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, cap, "cannot read %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        buf_commit(out, (size_t)n);
        if (buf_len(out) > CFG_MAX_FILE_BYTES) {
            snprintf(err, cap, "%s is too large", path);
            close(fd);
            return -1;
        }
    }
    close(fd);
    return 0;
}

/* Write path so that no failure loses the old contents, the old file kept
 * as path.bak (atomic_file.h: temp file, fsync, rename; rewritten in
 * place, space reserved first, when the file cannot be renamed over, as
 * a config bind-mounted on its own into a container).  `old` is what the
 * caller read from path a moment ago; the backup is copied from the file
 * itself, so it is not needed here. */
static int save_file(const char *path, const struct buf *old, const struct buf *text, char *err, size_t cap)
{
    (void)old;
    const char *data = buf_len(text) ? buf_head(text) : "";
    int rc = atomic_file_replace(path, data, buf_len(text), 0644, ATOMIC_FILE_BACKUP, err, cap);
    if (rc == 0 && err[0]) {
        log_warn("admin: config %s saved, but %s", path, err);
        err[0] = '\0';
    }
    return rc;
}

/* Replace the span of a top-level key with new text, or append it. */
static void splice(struct buf *out, const char *old, size_t old_len, const struct cfg_span *spans,
                   const struct buf *repl)
{
    /* Apply edits from the end so earlier offsets stay valid: collect and
     * sort the present spans. */
    size_t order[CFG_TOP__COUNT], n = 0;
    for (size_t i = 0; i < CFG_TOP__COUNT; i++)
        if (spans[i].present && buf_len(&repl[i]))
            order[n++] = i;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && spans[order[j]].start < spans[order[j - 1]].start; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    size_t pos = 0;
    for (size_t k = 0; k < n; k++) {
        const struct cfg_span *sp = &spans[order[k]];
        buf_append(out, old + pos, sp->start - pos);
        const struct buf *r = &repl[order[k]];
        size_t rl = buf_len(r);
        /* The span ends at the value; our text ends with a newline. */
        buf_append(out, buf_head(r), rl && buf_head(r)[rl - 1] == '\n' ? rl - 1 : rl);
        pos = sp->end;
    }
    buf_append(out, old + pos, old_len - pos);
    bool ends_nl = buf_len(out) == 0 || buf_head(out)[buf_len(out) - 1] == '\n';
    for (size_t i = 0; i < CFG_TOP__COUNT; i++) {
        if (spans[i].present || !buf_len(&repl[i]))
            continue;
        if (!ends_nl)
            buf_append(out, "\n", 1);
        buf_append(out, buf_head(&repl[i]), buf_len(&repl[i]));
        ends_nl = true;
    }
}

static bool global_int(struct edit *e, struct json_val root, const char *key, struct buf *out)
{
    struct json_val v;
    if (!json_get(e->text, root, key, &v) || v.type == JSON_NULL)
        return true;
    long long x;
    if (v.type != JSON_NUMBER || parse_int(e->text + v.start, v.end - v.start, -1000000000, 1000000000, &x) < 0) {
        snprintf(e->err, sizeof e->err, "%s must be a whole number", key);
        return false;
    }
    buf_printf(out, "%s: %lld\n", key, x);
    return true;
}

void admin_config_post(struct conn *c, struct request *r, struct snapshot *s)
{
    struct edit e = { .text = buf_len(&r->body) ? buf_head(&r->body) : "" };
    struct json_val root, v;
    struct json_error jerr;
    struct buf repl[CFG_TOP__COUNT];
    struct buf old = BUF_INIT, text = BUF_INIT;
    memset(repl, 0, sizeof repl);
    const char *path = admin_host()->config_path();
    char err[800];
    int status = 400;

    if (json_parse(e.text, buf_len(&r->body), &root, &jerr) < 0) {
        snprintf(err, sizeof err, "invalid JSON: %s at byte %zu", jerr.msg, jerr.offset);
        goto fail;
    }
    if (root.type != JSON_OBJECT) {
        snprintf(err, sizeof err, "the body must be a JSON object");
        goto fail;
    }
    if (json_get(e.text, root, "providers", &v) && v.type != JSON_NULL) {
        if (!want_type(&e, v, JSON_ARRAY, "providers"))
            goto fail_edit;
        if (json_is_empty(e.text, v)) {
            buf_append_str(&e.yaml, "providers: []\n");
        } else {
            buf_append_str(&e.yaml, "providers:\n");
            struct json_iter it;
            struct json_val p;
            size_t i = 0;
            json_iter_init(&it, e.text, v);
            while (json_iter_elem(&it, &p) == 1)
                if (!emit_provider(&e, p, i++, s->cfg))
                    goto fail_edit;
        }
        repl[CFG_TOP_PROVIDERS] = e.yaml;
        memset(&e.yaml, 0, sizeof e.yaml);
    }
    if (!global_int(&e, root, "max_retries", &repl[CFG_TOP_MAX_RETRIES]) ||
        !global_int(&e, root, "max_failures", &repl[CFG_TOP_MAX_FAILURES]) ||
        !global_int(&e, root, "recovery_interval", &repl[CFG_TOP_RECOVERY_INTERVAL]) ||
        !global_int(&e, root, "health_check_period", &repl[CFG_TOP_HEALTH_CHECK_PERIOD]))
        goto fail_edit;

    /* The spans must describe the file as it is now, so read and parse it
     * again rather than trust the running config. */
    if (read_file(path, &old, err, sizeof err) < 0) {
        status = 500;
        goto fail;
    }
    struct config *now = NULL, *next = NULL;
    struct cfg_error ce;
    if (config_load_mem(buf_head(&old) ? buf_head(&old) : "", buf_len(&old), path, &now, &ce, NULL, NULL) < 0) {
        snprintf(err, sizeof err, "the config file on disk does not load, fix it by hand first: %s", ce.msg);
        status = 409;
        goto fail;
    }
    splice(&text, buf_head(&old) ? buf_head(&old) : "", buf_len(&old), now->spans, repl);
    config_free(now);
    if (config_load_mem(buf_head(&text) ? buf_head(&text) : "", buf_len(&text), path, &next, &ce, NULL, NULL) < 0) {
        snprintf(err, sizeof err, "invalid config: %s", ce.msg);
        goto fail;
    }
    config_free(next);
    if (save_file(path, &old, &text, err, sizeof err) < 0) {
        status = 500;
        goto fail;
    }
    char rerr[400];
    if (admin_host()->reload("admin save", rerr, sizeof rerr) < 0) {
        snprintf(err, sizeof err, "saved, but the reload failed: %s", rerr);
        status = 500;
        goto fail;
    }
    log_info("admin: config saved to %s by %s and reloaded", path, conn_peer(c));
    reply_envelope(c, 200, "saved and reloaded", NULL, "Cache-Control: no-store\r\n");
    goto out;

fail_edit:
    snprintf(err, sizeof err, "%s", e.err);
fail:
    log_warn("admin: config save refused: %s", err);
    reply_envelope(c, status, err, NULL, "Cache-Control: no-store\r\n");
out:
    for (size_t i = 0; i < CFG_TOP__COUNT; i++)
        buf_free(&repl[i]);
    buf_free(&e.yaml);
    buf_free(&old);
    buf_free(&text);
}
