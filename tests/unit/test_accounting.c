/* Unit tests of accounting.c, without running the loop: the local day
 * (TZ=UTC here), what acct_charge adds (rows per key, alias, provider,
 * upstream and dialect; request-only and token-only charges; nothing at
 * all; names cut at USAGE_NAME_MAX; the metrics series; the key's daily
 * tokens), and the usage file: written by acct_flush only when something
 * changed (mode 0600, the exact text of usage_serialize), loaded back by
 * acct_configure, today's tokens of each key seeded into its limiter (so
 * keys_admit refuses a key whose file says its day is used up), old days
 * pruned, a corrupt file moved aside with a ".corrupt-" suffix and the
 * counting started afresh, an unreadable one left where it is, and the
 * old file written when the path changes.
 *
 * accounting arms a loop timer (the save at most every ACCT_SAVE_MS); the
 * loop's timer heap works without poll(), so loop_init is all the
 * scaffolding needed.  The timer itself (60 s) is not run here. */
#include "accounting.h"
#include "keys.h"
#include "limiter.h"
#include "log.h"
#include "loop.h"
#include "tap.h"
#include "usage.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char root[256];   /* the test's own directory */
static int64_t day0;     /* 2026-03-10 as days since 1970 */
static int64_t now0;     /* 12:00 UTC that day */

static const char *P(const char *name)
{
    static char ring[8][512];
    static unsigned i;
    char *p = ring[i++ % 8];
    snprintf(p, sizeof ring[0], "%s/%s", root, name);
    return p;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        printf("Bail out! cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* The whole file into a static buffer, NULL when it cannot be read. */
static const char *slurp(const char *path)
{
    static struct buf b;
    buf_clear(&b);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    return buf_cstr(&b);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The name of the one entry of root starting with prefix (static), NULL
 * when none or more than one; *count gets how many. */
static const char *entry_with(const char *prefix, int *count)
{
    static char found[512];
    const char *ret = NULL;
    *count = 0;
    DIR *d = opendir(root);
    if (!d)
        return NULL;
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            snprintf(found, sizeof found, "%s", e->d_name);
            ret = found;
            ++*count;
        }
    closedir(d);
    return *count == 1 ? ret : NULL;
}

/* Whether a log line newer than seq holds text. */
struct log_find {
    const char *text;
    bool found;
};
static void log_line(void *ctx, uint64_t seq, const char *line, size_t len)
{
    struct log_find *f = ctx;
    (void)seq;
    if (mem_find(line, len, f->text, strlen(f->text)))
        f->found = true;
}
static bool logged_since(uint64_t seq, const char *text)
{
    struct log_find f = { text, false };
    log_ring_each(seq, 1000, log_line, &f);
    return f.found;
}

static const char *day_text(int64_t days)
{
    static char ring[4][USAGE_DAY_LEN + 1];
    static unsigned i;
    char *d = ring[i++ % 4];
    usage_day_format(days, d);
    return d;
}

/* The store's rows of a day as "key alias provider upstream dialect r/p/c/ca/t;". */
static const char *dump(const char *day)
{
    static struct buf out;
    const struct usage_row **rows;
    size_t n;
    buf_clear(&out);
    if (usage_query(acct_store(), day, day, &rows, &n) < 0)
        return "(out of memory)";
    for (size_t i = 0; i < n; i++) {
        const struct usage_row *r = rows[i];
        buf_printf(&out, "%s %s %s %s %s %llu/%llu/%llu/%llu/%llu;", r->name[USAGE_KEY], r->name[USAGE_ALIAS],
                   r->name[USAGE_PROVIDER], r->name[USAGE_UPSTREAM], r->dialect ? "anthropic" : "openai",
                   (unsigned long long)r->n.requests, (unsigned long long)r->n.prompt_tokens,
                   (unsigned long long)r->n.completion_tokens, (unsigned long long)r->n.cached_tokens,
                   (unsigned long long)r->n.total_tokens);
    }
    free(rows);
    return buf_cstr(&out);
}

static const struct acct_series *series(const char *key, const char *alias, const char *provider)
{
    for (size_t i = 0; i < ACCT_BUCKETS; i++)
        for (const struct acct_series *s = acct_series_bucket(i); s; s = s->next)
            if (!strcmp(s->key, key) && !strcmp(s->alias, alias) && !strcmp(s->provider, provider))
                return s;
    return NULL;
}

static size_t n_series(void)
{
    size_t n = 0;
    for (size_t i = 0; i < ACCT_BUCKETS; i++)
        for (const struct acct_series *s = acct_series_bucket(i); s; s = s->next)
            n++;
    return n;
}

static struct acct_who who_of(const char *key, const char *alias, struct key_state *st)
{
    struct acct_who w = { key, alias, "p1", "up-1", DIALECT_OPENAI, st };
    return w;
}

static struct tokens tok(uint64_t prompt, uint64_t completion, uint64_t cached, uint64_t total)
{
    struct tokens t = { prompt, completion, cached, total };
    return t;
}

/* A config with named keys alice and bob, linked to their states. */
struct fixture {
    struct config cfg;
    struct cfg_client_key keys[2];
};

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    f->keys[0].name = "alice";
    f->keys[0].expires_day = -1;
    sha256("tok-alice", 9, f->keys[0].digest);
    f->keys[1].name = "bob";
    f->keys[1].expires_day = -1;
    sha256("tok-bob", 7, f->keys[1].digest);
    f->cfg.keys = f->keys;
    f->cfg.n_keys = 2;
    for (int i = 0; i < 2; i++)
        f->keys[i].state = key_state_get(f->keys[i].name);
}

static void fixture_free(struct fixture *f)
{
    for (int i = 0; i < 2; i++)
        key_state_put(f->keys[i].state);
}

/* ---------------- the day ---------------- */

static void test_today(void)
{
    const struct limit_day *d = acct_today(now0);
    is_int(d->day, day0, "acct_today: 2026-03-10 (TZ=UTC)");
    is_int(d->start_ms, day0 * LIMIT_MS_PER_DAY, "... starts at midnight UTC");
    is_int(d->end_ms, (day0 + 1) * LIMIT_MS_PER_DAY, "... ends at the next");
    ok(acct_today(d->end_ms - 1)->day == day0, "23:59:59.999 is still that day");
    ok(acct_today(d->end_ms)->day == day0 + 1, "midnight is the next");
    ok(acct_today(now0)->day == day0, "and back");
}

/* ---------------- charging ---------------- */

static void test_charge(void)
{
    struct fixture f;
    fixture_init(&f);
    acct_configure(NULL, &f.cfg, now0);
    const char *today = day_text(day0);
    struct key_state *alice = f.keys[0].state;
    is_int(acct_store()->n, 0, "no file: an empty store");
    is_int(limit_tokens_used(&alice->lim, day0), 0, "... alice seeded with 0");

    struct acct_who a = who_of("alice", "gpt", alice);
    struct tokens t = tok(10, 5, 2, 15);
    acct_charge(&a, &t, true, now0);
    is_str(dump(today), "alice gpt p1 up-1 openai 1/10/5/2/15;", "a request with tokens: one row");
    is_int(limit_tokens_used(&alice->lim, day0), 15, "... alice's day: 15 tokens");
    acct_charge(&a, &t, true, now0 + 1000);
    is_str(dump(today), "alice gpt p1 up-1 openai 2/20/10/4/30;", "the same again: added to the row");
    is_int(limit_tokens_used(&alice->lim, day0), 30, "... 30 tokens");

    acct_charge(&a, NULL, true, now0);
    is_str(dump(today), "alice gpt p1 up-1 openai 3/20/10/4/30;", "a request without usage: requests + 1");
    uint64_t g = acct_store()->generation;
    acct_charge(&a, NULL, false, now0);
    struct tokens zero = tok(0, 0, 0, 0);
    acct_charge(&a, &zero, false, now0);
    ok(acct_store()->generation == g, "no request and no tokens: the store is not touched");
    struct tokens prompt_only = tok(7, 0, 0, 0);
    acct_charge(&a, &prompt_only, false, now0);
    is_str(dump(today), "alice gpt p1 up-1 openai 3/27/10/4/30;", "prompt tokens alone (not a request): added");
    is_int(limit_tokens_used(&alice->lim, day0), 30, "... total 0: the limiter is not charged");

    struct acct_who an = who_of("alice", "claude", alice);
    an.dialect = DIALECT_ANTHROPIC;
    an.provider = "p2";
    an.upstream = "claude-x";
    struct tokens t2 = tok(100, 50, 0, 150);
    acct_charge(&an, &t2, true, now0);
    struct acct_who b = who_of("bob", "gpt", NULL);
    acct_charge(&b, &t, true, now0);
    is_str(dump(today),
           "alice claude p2 claude-x anthropic 1/100/50/0/150;alice gpt p1 up-1 openai 3/27/10/4/30;"
           "bob gpt p1 up-1 openai 1/10/5/2/15;",
           "rows per key, alias, provider, upstream and dialect");
    is_int(limit_tokens_used(&alice->lim, day0), 180, "alice's day: 180 tokens over both aliases");
    is_int(limit_tokens_used(&f.keys[1].state->lim, day0), 0, "bob charged without a state: his limiter untouched");
    is_int(usage_sum(acct_store(), today, "alice", 5), 180, "the store's sum for alice agrees");

    /* The next day. */
    acct_charge(&a, &t, true, now0 + LIMIT_MS_PER_DAY);
    is_str(dump(day_text(day0 + 1)), "alice gpt p1 up-1 openai 1/10/5/2/15;", "tomorrow: a row of its own");
    is_int(limit_tokens_used(&alice->lim, day0 + 1), 15, "... alice's limiter counts the new day");
    is_int(limit_tokens_used(&alice->lim, day0), 0, "... and has forgotten the old one");

    /* Names longer than a row holds are cut. */
    char long_alias[USAGE_NAME_MAX + 50];
    memset(long_alias, 'x', sizeof long_alias - 1);
    long_alias[sizeof long_alias - 1] = '\0';
    struct acct_who l = who_of("carol", long_alias, NULL);
    acct_charge(&l, &t, true, now0);
    const struct usage_row **rows;
    size_t n;
    size_t alias_len = 0;
    if (usage_query(acct_store(), today, today, &rows, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            if (!strcmp(rows[i]->name[USAGE_KEY], "carol"))
                alias_len = rows[i]->len[USAGE_ALIAS];
        free(rows);
    }
    is_int(alias_len, USAGE_NAME_MAX, "an alias of %zu bytes is kept as its first USAGE_NAME_MAX", strlen(long_alias));

    /* The metrics series: tokens since start per (key, alias, provider). */
    const struct acct_series *s = series("alice", "gpt", "p1");
    ok(s && s->prompt == 27 + 10 && s->completion == 15 && s->cached == 6,
       "series alice/gpt/p1: prompt 37, completion 15, cached 6 (both days)");
    s = series("alice", "claude", "p2");
    ok(s && s->prompt == 100 && s->completion == 50, "series alice/claude/p2");
    ok(series("bob", "gpt", "p1") != NULL, "series bob/gpt/p1");
    is_int(n_series(), 4, "four series (carol's with the whole alias)");
    struct acct_who d = who_of("dave", "gpt", NULL);
    acct_charge(&d, NULL, true, now0);
    ok(!series("dave", "gpt", "p1"), "a request without usage makes no series");
    ok(acct_series_bucket(ACCT_BUCKETS) == NULL, "bucket ACCT_BUCKETS: NULL");

    acct_free();
    is_int(acct_store()->n, 0, "acct_free: the store is empty");
    is_int(n_series(), 0, "... and the series gone");
    fixture_free(&f);
}

/* ---------------- the usage file ---------------- */

static void test_file_roundtrip(void)
{
    struct fixture f;
    fixture_init(&f);
    const char *path = P("usage.json");
    const char *today = day_text(day0);
    uint64_t seq = log_last_seq();
    acct_configure(path, &f.cfg, now0);
    ok(!exists(path), "a usage_file that does not exist: nothing written at start");
    ok(!logged_since(seq, "does not load") && !logged_since(seq, "cannot read"), "... no warning");
    acct_flush();
    ok(!exists(path), "... nor by a flush with nothing to save");

    struct acct_who a = who_of("alice", "gpt", f.keys[0].state);
    struct acct_who b = who_of("bob", "claude", f.keys[1].state);
    b.dialect = DIALECT_ANTHROPIC;
    struct tokens t = tok(10, 5, 2, 15), t2 = tok(40, 20, 0, 60);
    acct_charge(&a, &t, true, now0);
    acct_charge(&b, &t2, true, now0);
    acct_charge(&a, &t, true, now0 - LIMIT_MS_PER_DAY);   /* yesterday */
    ok(!exists(path), "a charge does not write at once (the timer does, later)");
    acct_flush();
    ok(exists(path), "acct_flush writes the file");
    struct stat st;
    ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "... mode 0600 (%o)", (unsigned)(st.st_mode & 0777));
    struct buf want = BUF_INIT;
    usage_serialize(acct_store(), &want);
    const char *text = slurp(path);
    is_str(text, buf_cstr(&want), "... holding the store as usage_serialize writes it");
    struct usage_store back = USAGE_INIT;
    struct usage_error err;
    ok(text && usage_parse(text, strlen(text), &back, &err) == 0, "... which usage_parse reads");
    is_int(back.n, 3, "... three rows");
    is_int(usage_sum(&back, today, "alice", 5), 15, "... alice's today");
    is_int(usage_sum(&back, today, "bob", 3), 60, "... bob's today");
    usage_free(&back);

    unlink(path);
    acct_flush();
    ok(!exists(path), "nothing changed since: a flush writes nothing");
    acct_charge(&a, &t, true, now0);
    acct_flush();
    ok(exists(path), "a change: written again");
    buf_clear(&want);
    usage_serialize(acct_store(), &want);
    is_str(slurp(path), buf_cstr(&want), "... with the change");

    /* A restart: the store and the limiters come back from the file. */
    acct_free();
    fixture_free(&f);
    is_int(acct_store()->n, 0, "acct_free: empty");
    fixture_init(&f);
    f.keys[0].daily_tokens = 30;
    limit_tokens_seed(&f.keys[1].state->lim, day0, 999);   /* whatever it held is replaced */
    seq = log_last_seq();
    acct_configure(path, &f.cfg, now0);
    is_int(acct_store()->n, 3, "acct_configure loads the three rows back");
    ok(logged_since(seq, "loaded 3 rows"), "... and says so");
    is_str(dump(today), "alice gpt p1 up-1 openai 2/20/10/4/30;bob claude p1 up-1 anthropic 1/40/20/0/60;",
           "... today's rows as they were");
    is_int(limit_tokens_used(&f.keys[0].state->lim, day0), 30, "alice's limiter seeded with today's 30 tokens");
    is_int(limit_tokens_used(&f.keys[1].state->lim, day0), 60, "bob's with 60 (not what it held)");

    struct principal who;
    int64_t retry;
    ok(keys_identify(&f.cfg, NULL, NULL, "tok-alice", 9, &who) == 0, "alice identified");
    is_int(keys_admit(&who, now0, acct_today(now0), &retry), KR_TOKENS,
           "daily_tokens 30 and 30 used per the file: KR_TOKENS after a restart");
    is_int(retry, 12 * 3600 * 1000LL, "... retry at midnight");
    ok(keys_identify(&f.cfg, NULL, NULL, "tok-bob", 7, &who) == 0, "bob identified");
    is_int(keys_admit(&who, now0, acct_today(now0), &retry), KR__COUNT, "bob (no daily_tokens) admitted");
    keys_done(&who, 200);

    /* The same path again (a reload): not read again, but seeded again. */
    put(path, "{\"version\":1,\"rows\":[]}\n");
    limit_tokens_seed(&f.keys[0].state->lim, day0, 5);
    acct_configure(path, &f.cfg, now0);
    is_int(acct_store()->n, 3, "the same path at a reload: the file is not read again");
    is_int(limit_tokens_used(&f.keys[0].state->lim, day0), 30, "... the limiters seeded again from the store");

    /* A key that comes with a reload starts from the store too. */
    struct fixture g;
    fixture_init(&g);
    g.keys[1].name = "carol";
    key_state_put(g.keys[1].state);
    g.keys[1].state = key_state_get("carol");
    struct acct_who c = who_of("carol", "gpt", NULL);
    acct_charge(&c, &t, true, now0);
    acct_configure(path, &g.cfg, now0);
    is_int(limit_tokens_used(&g.keys[1].state->lim, day0), 15, "a new key carol: seeded with her 15 tokens today");
    fixture_free(&g);
    buf_free(&want);
    acct_free();
    fixture_free(&f);
}

static void test_corrupt(void)
{
    struct fixture f;
    fixture_init(&f);
    static const struct {
        const char *file, *text, *why;
    } bad[] = {
        { "c1.json", "{not json", "not JSON" },
        { "c2.json", "{\"version\":2,\"rows\":[]}", "another version" },
        { "c3.json", "{\"version\":1,\"rows\":[{\"day\":\"2026-03-10\"}]}", "a row without its fields" },
        { "c4.json", "", "an empty file" },
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        const char *path = P(bad[i].file);
        put(path, bad[i].text);
        limit_tokens_seed(&f.keys[0].state->lim, day0, 77);
        uint64_t seq = log_last_seq();
        acct_configure(path, &f.cfg, now0);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s.corrupt-", bad[i].file);
        int count;
        const char *aside = entry_with(prefix, &count);
        ok(aside != NULL, "%s: moved aside as %s<seconds> (%d such files)", bad[i].why, prefix, count);
        bool digits = aside && aside[strlen(prefix)];
        for (const char *c = aside ? aside + strlen(prefix) : ""; *c; c++)
            digits = digits && *c >= '0' && *c <= '9';
        ok(digits, "... the suffix is a number of seconds (%s)", aside ? aside : "-");
        ok(!exists(path), "... the file itself is gone");
        is_str(aside ? slurp(P(aside)) : NULL, bad[i].text, "... the moved file holds what it held");
        ok(logged_since(seq, "does not load") && logged_since(seq, "moved to"), "... with a warning");
        is_int(acct_store()->n, 0, "... counting starts afresh");
        is_int(limit_tokens_used(&f.keys[0].state->lim, day0), 0, "... and alice's limiter from 0");
        struct acct_who a = who_of("alice", "gpt", f.keys[0].state);
        struct tokens t = tok(1, 1, 0, 2);
        acct_charge(&a, &t, true, now0);
        acct_flush();
        const char *text = slurp(path);
        struct usage_store back = USAGE_INIT;
        struct usage_error err;
        ok(text && usage_parse(text, strlen(text), &back, &err) == 0 && back.n == 1,
           "... the next save writes a good file in its place");
        usage_free(&back);
        acct_free();
    }

    /* A file that cannot be read (a directory) is not moved. */
    const char *dir = P("dir.json");
    mkdir(dir, 0700);
    uint64_t seq = log_last_seq();
    acct_configure(dir, &f.cfg, now0);
    int count;
    entry_with("dir.json.corrupt-", &count);
    ok(exists(dir) && count == 0, "an unreadable usage_file is not moved aside");
    ok(logged_since(seq, "cannot read"), "... a warning says it cannot be read");
    is_int(acct_store()->n, 0, "... empty store");
    acct_free();
    fixture_free(&f);
}

static void test_switch_and_prune(void)
{
    struct fixture f;
    fixture_init(&f);
    const char *a_path = P("a.json"), *b_path = P("b.json");
    acct_configure(a_path, &f.cfg, now0);
    struct acct_who a = who_of("alice", "gpt", f.keys[0].state);
    struct tokens t = tok(3, 4, 0, 7);
    acct_charge(&a, &t, true, now0);
    ok(!exists(a_path), "a.json not written yet");
    acct_configure(b_path, &f.cfg, now0);
    const char *text = slurp(a_path);
    ok(text && strstr(text, "\"total_tokens\":7"), "a new usage_file path: the old file is written first");
    acct_charge(&a, &t, true, now0);
    acct_configure(NULL, &f.cfg, now0);
    ok(exists(b_path), "usage_file removed: what changed is written to the last one");
    unlink(a_path);
    unlink(b_path);
    acct_charge(&a, &t, true, now0);
    acct_flush();
    ok(!exists(a_path) && !exists(b_path), "no usage_file: nothing written");
    acct_free();

    /* Days older than USAGE_KEEP_DAYS go when a new day starts. */
    char file[2048];
    int64_t later = day0 + 200;   /* a day acct_today has not cached */
    snprintf(file, sizeof file,
             "{\"version\":1,\"rows\":[\n"
             "{\"day\":\"%s\",\"key\":\"alice\",\"alias\":\"a\",\"provider\":\"p\",\"upstream\":\"u\","
             "\"dialect\":\"openai\",\"requests\":1,\"prompt_tokens\":1,\"completion_tokens\":1,\"cached_tokens\":0,"
             "\"total_tokens\":2},\n"
             "{\"day\":\"%s\",\"key\":\"alice\",\"alias\":\"a\",\"provider\":\"p\",\"upstream\":\"u\","
             "\"dialect\":\"openai\",\"requests\":1,\"prompt_tokens\":1,\"completion_tokens\":1,\"cached_tokens\":0,"
             "\"total_tokens\":2},\n"
             "{\"day\":\"%s\",\"key\":\"alice\",\"alias\":\"a\",\"provider\":\"p\",\"upstream\":\"u\","
             "\"dialect\":\"openai\",\"requests\":1,\"prompt_tokens\":20,\"completion_tokens\":1,\"cached_tokens\":0,"
             "\"total_tokens\":21}\n"
             "]}\n",
             day_text(later - USAGE_KEEP_DAYS), day_text(later - USAGE_KEEP_DAYS + 1), day_text(later));
    const char *path = P("prune.json");
    put(path, file);
    acct_configure(path, &f.cfg, later * LIMIT_MS_PER_DAY + 1000);
    is_str(dump(day_text(later - USAGE_KEEP_DAYS)), "", "loaded on a new day: the row 90 days old is dropped");
    is_int(acct_store()->n, 2, "... the row 89 days old and today's stay");
    is_int(limit_tokens_used(&f.keys[0].state->lim, later), 21, "... alice seeded with today's 21");
    acct_free();
    fixture_free(&f);
}

/* The test's directory: files and one level of directories. */
static void remove_root(void)
{
    DIR *d = opendir(root);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            if (unlink(P(e->d_name)) < 0)
                rmdir(P(e->d_name));
    closedir(d);
    rmdir(root);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    log_set_stdout(0);
    log_configure(1000, NULL, 0);
    loop_init();
    const char *t = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/accounting.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(root)) {
        printf("Bail out! mkdtemp %s: %s\n", root, strerror(errno));
        return 1;
    }
    if (usage_day_parse("2026-03-10", 10, &day0) < 0) {
        printf("Bail out! usage_day_parse\n");
        return 1;
    }
    now0 = day0 * LIMIT_MS_PER_DAY + 12 * 3600 * 1000LL;

    test_today();
    test_charge();
    test_file_roundtrip();
    test_corrupt();
    test_switch_and_prune();
    ok(key_states() == NULL, "every key state freed");

    acct_free();
    loop_free();
    log_shutdown();
    remove_root();
    return tap_done();
}
