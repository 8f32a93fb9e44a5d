#include "accounting.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "buf.h"
#include "log.h"
#include "loop.h"
#include "util.h"

#define USAGE_FILE_MAX (64u << 20)   /* a usage file larger than this is not read */

static struct {
    struct usage_store store;
    struct limit_day day;
    char day_text[USAGE_DAY_LEN + 1];
    char *path;
    uint64_t saved;                   /* store generation last written */
    struct loop_timer save_timer;
    bool timer_ready;
    struct acct_series *series[ACCT_BUCKETS];
    size_t n_series;
} acct;

const struct limit_day *acct_today(int64_t now_ms)
{
    if (!acct.day.end_ms || !limit_day_holds(&acct.day, now_ms)) {
        limit_local_day(now_ms, &acct.day);
        usage_day_format(acct.day.day, acct.day_text);
        usage_prune(&acct.store, acct.day_text);   /* a new day: 90 are kept */
    }
    return &acct.day;
}

static void save(void)
{
    if (!acct.path || !usage_dirty(&acct.store, acct.saved))
        return;
    struct buf b = BUF_INIT;
    char err[512];
    if (usage_serialize(&acct.store, &b) < 0) {
        log_error("usage: out of memory writing %s", acct.path);
    } else if (atomic_file_replace(acct.path, buf_head(&b), buf_len(&b), 0600, 0, err, sizeof err) < 0) {
        log_error("usage: %s", err);
    } else {
        acct.saved = acct.store.generation;
    }
    buf_free(&b);
}

static void on_save_timer(void *ctx)
{
    (void)ctx;
    save();
}

static size_t series_hash(const struct acct_who *w)
{
    uint32_t h = 2166136261u;
    const char *parts[3] = { w->key, w->alias, w->provider };
    for (int i = 0; i < 3; i++)
        for (const char *c = parts[i]; ; c++) {
            h = (h ^ (unsigned char)*c) * 16777619u;
            if (!*c)
                break;
        }
    return h % ACCT_BUCKETS;
}

static struct acct_series *series_of(const struct acct_who *w)
{
    size_t i = series_hash(w);
    for (struct acct_series *s = acct.series[i]; s; s = s->next)
        if (!strcmp(s->key, w->key) && !strcmp(s->alias, w->alias) && !strcmp(s->provider, w->provider))
            return s;
    if (acct.n_series >= ACCT_SERIES_MAX)
        return NULL;
    struct acct_series *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->key = strdup(w->key);
    s->alias = strdup(w->alias);
    s->provider = strdup(w->provider);
    if (!s->key || !s->alias || !s->provider) {
        free(s->key);
        free(s->alias);
        free(s->provider);
        free(s);
        return NULL;
    }
    s->next = acct.series[i];
    acct.series[i] = s;
    acct.n_series++;
    return s;
}

const struct acct_series *acct_series_bucket(size_t i)
{
    return i < ACCT_BUCKETS ? acct.series[i] : NULL;
}

void acct_charge(const struct acct_who *w, const struct tokens *t, bool request, int64_t now_ms)
{
    acct_today(now_ms);
    struct usage_counts c = { request ? 1 : 0, 0, 0, 0, 0 };
    if (t) {
        c.prompt_tokens = t->prompt;
        c.completion_tokens = t->completion;
        c.cached_tokens = t->cached;
        c.total_tokens = t->total;
    }
    if (!c.requests && !c.total_tokens && !c.prompt_tokens)
        return;
    struct usage_id id = { .day = acct.day_text, .dialect = w->dialect == DIALECT_ANTHROPIC ? USAGE_ANTHROPIC : USAGE_OPENAI };
    const char *names[USAGE_NAMES] = { w->key, w->alias, w->provider, w->upstream };
    for (int i = 0; i < USAGE_NAMES; i++) {
        id.name[i] = names[i];
        id.len[i] = strlen(names[i]);
        if (id.len[i] > USAGE_NAME_MAX)
            id.len[i] = USAGE_NAME_MAX;
    }
    if (usage_add(&acct.store, &id, &c) != 0 && acct.store.overflow % 1000 == 1)
        log_warn("usage: the store is full (%d rows): new rows of the oldest day are dropped", USAGE_MAX_ROWS);
    struct acct_series *se = t ? series_of(w) : NULL;
    if (se) {
        se->prompt += c.prompt_tokens;
        se->completion += c.completion_tokens;
        se->cached += c.cached_tokens;
    }
    if (w->state && c.total_tokens)
        limit_tokens_charge(&w->state->lim, acct.day.day, c.total_tokens);
    if (acct.path && !loop_timer_armed(&acct.save_timer)) {
        if (!acct.timer_ready) {
            loop_timer_init(&acct.save_timer, on_save_timer, NULL);
            acct.timer_ready = true;
        }
        loop_timer_set(&acct.save_timer, ACCT_SAVE_MS);
    }
}

static int read_all(const char *path, struct buf *b)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? 1 : -1;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && buf_len(b) <= USAGE_FILE_MAX)
        buf_append(b, chunk, n);
    int rc = ferror(f) || buf_failed(b) || buf_len(b) > USAGE_FILE_MAX ? -1 : 0;
    fclose(f);
    return rc;
}

/* A file that does not parse is kept for a person to look at, and the
 * gateway starts counting afresh. */
static void move_aside(const char *path, const char *why)
{
    char aside[4200];
    snprintf(aside, sizeof aside, "%s.corrupt-%llu", path, (unsigned long long)(wall_ms() / 1000));
    if (rename(path, aside) == 0)
        log_warn("usage: %s does not load (%s): moved to %s, counting afresh", path, why, aside);
    else
        log_warn("usage: %s does not load (%s) and cannot be moved aside (%s): counting afresh", path, why,
                 strerror(errno));
}

static void load(const char *path)
{
    struct buf b = BUF_INIT;
    int rc = read_all(path, &b);
    struct usage_store fresh = USAGE_INIT;
    struct usage_error err;
    if (rc < 0) {
        log_warn("usage: cannot read %s: %s", path, strerror(errno));
    } else if (rc == 0 && usage_parse(buf_len(&b) ? buf_head(&b) : "", buf_len(&b), &fresh, &err) < 0) {
        char why[160];
        snprintf(why, sizeof why, "%s at byte %zu", err.msg, err.offset);
        move_aside(path, why);
    } else if (rc == 0) {
        usage_move(&acct.store, &fresh);
        log_info("usage: loaded %zu rows from %s", acct.store.n, path);
    }
    usage_free(&fresh);
    buf_free(&b);
    acct.saved = acct.store.generation;
}

void acct_configure(const char *path, const struct config *cfg, int64_t now_ms)
{
    bool same = (!path && !acct.path) || (path && acct.path && strcmp(path, acct.path) == 0);
    if (!same) {
        save();
        free(acct.path);
        acct.path = path ? strdup(path) : NULL;
        if (acct.path)
            load(acct.path);
    }
    /* The store has every token of today (a restart read them back from
     * the file), so each key's limiter starts from it: a key that comes
     * back in a reload keeps what it used. */
    const struct limit_day *d = acct_today(now_ms);
    for (size_t i = 0; i < cfg->n_keys; i++)
        if (cfg->keys[i].state)
            limit_tokens_seed(&cfg->keys[i].state->lim, d->day,
                              usage_sum(&acct.store, acct.day_text, cfg->keys[i].name, strlen(cfg->keys[i].name)));
}

void acct_flush(void)
{
    save();
}

const struct usage_store *acct_store(void)
{
    return &acct.store;
}

void acct_free(void)
{
    if (acct.timer_ready)
        loop_timer_stop(&acct.save_timer);
    usage_free(&acct.store);
    for (size_t i = 0; i < ACCT_BUCKETS; i++)
        while (acct.series[i]) {
            struct acct_series *s = acct.series[i];
            acct.series[i] = s->next;
            free(s->key);
            free(s->alias);
            free(s->provider);
            free(s);
        }
    acct.n_series = 0;
    free(acct.path);
    acct.path = NULL;
}
