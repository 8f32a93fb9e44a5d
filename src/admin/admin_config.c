/* The admin API's config endpoints: show the running config (secrets
 * masked, ${VAR} references as written), and save a new one.  Saving
 * writes only the parts the page edits - the admin keys of the top level
 * (config_schema.h), the providers block among them - into the existing
 * file text, so api_keys, admin_key, comments elsewhere, unknown keys and
 * ${VAR} references stay exactly as they were.  The new text is fully
 * validated first; then it is written so that no failure can lose the old
 * file (atomic_file.h; the old one kept as .bak) and reloaded. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "atomic_file.h"
#include "config_edit.h"
#include "config_view.h"
#include "json.h"
#include "log.h"
#include "reply.h"
#include "util.h"

#define NO_STORE "Cache-Control: no-store\r\n"

void admin_config_get(struct conn *c, struct request *r, struct snapshot *s)
{
    (void)r;
    struct buf b = BUF_INIT;
    config_view_json(&b, s->cfg);
    reply_envelope(c, 200, "ok", &b, NO_STORE);
    buf_free(&b);
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

/* Replace the span of each top-level key that has new text, or append
 * it.  Edits go in file order, so earlier offsets stay valid. */
static void splice(struct buf *out, const char *old, size_t old_len, const struct cfg_span *spans,
                   const struct buf *repl)
{
    size_t order[CFG_MAX_KEYS], n = 0;
    for (size_t i = 0; i < cfg_schema_top.n_keys; i++)
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
    for (size_t i = 0; i < cfg_schema_top.n_keys; i++) {
        if (spans[i].present || !buf_len(&repl[i]))
            continue;
        if (!ends_nl)
            buf_append(out, "\n", 1);
        buf_append(out, buf_head(&repl[i]), buf_len(&repl[i]));
        ends_nl = true;
    }
}

/* The new file text: the edits spliced into the file as it is now (read
 * and parsed again, not trusted from the running config).  0, or -1 with
 * *status and err. */
static int new_text(struct config_edit *e, const char *path, struct buf *old, struct buf *text, int *status,
                    char *err, size_t cap)
{
    if (read_file(path, old, err, cap) < 0) {
        *status = 500;
        return -1;
    }
    struct config *now = NULL, *next = NULL;
    struct cfg_error ce;
    if (config_load_mem(buf_head(old) ? buf_head(old) : "", buf_len(old), path, &now, &ce, NULL, NULL) < 0) {
        snprintf(err, cap, "the config file on disk does not load, fix it by hand first: %s", ce.msg);
        *status = 409;
        return -1;
    }
    splice(text, buf_head(old) ? buf_head(old) : "", buf_len(old), now->spans, e->yaml);
    config_free(now);
    if (config_load_mem(buf_head(text) ? buf_head(text) : "", buf_len(text), path, &next, &ce, NULL, NULL) < 0) {
        snprintf(err, cap, "invalid config: %s", ce.msg);
        *status = 400;
        return -1;
    }
    config_free(next);
    return 0;
}

int admin_config_apply(const char *json, size_t len, const struct snapshot *s, const char *who, char *err,
                       size_t cap)
{
    struct config_edit e = { .text = json, .running = s->cfg };
    struct json_val root;
    struct json_error jerr;
    struct buf old = BUF_INIT, text = BUF_INIT;
    const char *path = admin_host()->config_path();
    char rerr[400];
    int status = 400;
    if (json_parse(json, len, &root, &jerr) < 0)
        snprintf(err, cap, "invalid JSON: %s at byte %zu", jerr.msg, jerr.offset);
    else if (root.type != JSON_OBJECT)
        snprintf(err, cap, "the body must be a JSON object");
    else if (config_edit_build(&e, root) < 0)
        snprintf(err, cap, "%s", e.err);
    else if (new_text(&e, path, &old, &text, &status, err, cap) == 0) {
        status = 500;
        if (save_file(path, &old, &text, err, cap) == 0) {
            if (admin_host()->reload("admin save", rerr, sizeof rerr) == 0)
                status = 200;
            else
                snprintf(err, cap, "saved, but the reload failed: %s", rerr);
        }
    }
    if (status == 200)
        log_info("admin: config saved to %s by %s and reloaded", path, who);
    else
        log_warn("admin: config save refused: %s", err);
    config_edit_free(&e);
    buf_free(&old);
    buf_free(&text);
    return status;
}

void admin_config_post(struct conn *c, struct request *r, struct snapshot *s)
{
    char err[800];
    int status = admin_config_apply(buf_len(&r->body) ? buf_head(&r->body) : "", buf_len(&r->body), s, r->client,
                                    err, sizeof err);
    reply_envelope(c, status, status == 200 ? "saved and reloaded" : err, NULL, NO_STORE);
}
