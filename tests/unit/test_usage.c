/* Unit tests of usage.c: adding and accumulating rows, range queries and
 * their order, the per-(day, key) sums (also after rows were dropped),
 * pruning at USAGE_KEEP_DAYS, the USAGE_MAX_ROWS bound and its overflow
 * count, the generation counter, the usage file (exact text, round trips,
 * odd names, counters near 2^63 and at UINT64_MAX, every class of corrupt
 * input, every truncation of a valid file) and the day helpers. */
#include "buf.h"
#include "tap.h"
#include "usage.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static struct usage_id id_of(const char *day, const char *key, const char *alias, const char *prov, const char *up,
                             enum usage_dialect d)
{
    struct usage_id id = { day, { key, alias, prov, up }, { strlen(key), strlen(alias), strlen(prov), strlen(up) }, d };
    return id;
}

static struct usage_counts counts(uint64_t req, uint64_t prompt, uint64_t completion, uint64_t cached,
                                  uint64_t total)
{
    struct usage_counts c = { req, prompt, completion, cached, total };
    return c;
}

static int add(struct usage_store *s, const char *day, const char *key, const char *alias, enum usage_dialect d,
               uint64_t total)
{
    struct usage_id id = id_of(day, key, alias, "p1", "up", d);
    struct usage_counts c = counts(1, total / 2, total - total / 2, 0, total);
    return usage_add(s, &id, &c);
}

static uint64_t sum(const struct usage_store *s, const char *day, const char *key)
{
    return usage_sum(s, day, key, strlen(key));
}

/* The rows of a query as "day key alias provider upstream dialect r/p/c/ca/t;". */
static const char *dump(const struct usage_store *s, const char *from, const char *to)
{
    static struct buf out;
    const struct usage_row **rows;
    size_t n;
    buf_clear(&out);
    if (usage_query(s, from, to, &rows, &n) < 0)
        return "(out of memory)";
    for (size_t i = 0; i < n; i++) {
        const struct usage_row *r = rows[i];
        buf_printf(&out, "%s %s %s %s %s %s %llu/%llu/%llu/%llu/%llu;", r->day, r->name[USAGE_KEY],
                   r->name[USAGE_ALIAS], r->name[USAGE_PROVIDER], r->name[USAGE_UPSTREAM],
                   r->dialect ? "anthropic" : "openai", (unsigned long long)r->n.requests,
                   (unsigned long long)r->n.prompt_tokens, (unsigned long long)r->n.completion_tokens,
                   (unsigned long long)r->n.cached_tokens, (unsigned long long)r->n.total_tokens);
    }
    free(rows);
    return buf_cstr(&out);
}

static void test_add_query_sum(void)
{
    struct usage_store s = USAGE_INIT;
    uint64_t g0 = s.generation;
    is_int(add(&s, "2026-12-04", "alice", "gpt-5", USAGE_OPENAI, 42), 0, "add a row");
    is_int(add(&s, "2026-12-04", "alice", "gpt-5", USAGE_OPENAI, 8), 0, "add to the same row");
    is_int(add(&s, "2026-12-04", "alice", "claude", USAGE_ANTHROPIC, 100), 0, "another alias");
    is_int(add(&s, "2026-12-04", "bob", "gpt-5", USAGE_OPENAI, 7), 0, "another key");
    is_int(add(&s, "2026-12-03", "alice", "gpt-5", USAGE_OPENAI, 1000), 0, "another day");
    is_int(add(&s, "2026-12-04", "alice", "gpt-5", USAGE_ANTHROPIC, 3), 0, "same names, other dialect");
    is_int(s.n, 5, "5 rows");
    ok(usage_dirty(&s, g0) && s.generation == g0 + 6, "generation + 1 per add");
    is_int(sum(&s, "2026-12-04", "alice"), 153, "sum alice on the 4th: 42 + 8 + 100 + 3");
    is_int(sum(&s, "2026-12-04", "bob"), 7, "sum bob");
    is_int(sum(&s, "2026-12-03", "alice"), 1000, "sum alice on the 3rd");
    is_int(sum(&s, "2026-12-05", "alice"), 0, "no rows: 0");
    is_int(sum(&s, "2026-12-04", "alic"), 0, "a prefix of a key is another key");
    is_str(dump(&s, "2026-12-04", "2026-12-04"),
           "2026-12-04 alice claude p1 up anthropic 1/50/50/0/100;"
           "2026-12-04 alice gpt-5 p1 up openai 2/25/25/0/50;"
           "2026-12-04 alice gpt-5 p1 up anthropic 1/1/2/0/3;"
           "2026-12-04 bob gpt-5 p1 up openai 1/3/4/0/7;",
           "query one day: sorted by key, alias, ..., openai before anthropic");

    /* Every counter accumulates. */
    struct usage_id id = id_of("2026-12-04", "carol", "m", "prov", "upstream-1", USAGE_OPENAI);
    struct usage_counts c = counts(1, 10, 20, 5, 30);
    usage_add(&s, &id, &c);
    usage_add(&s, &id, &c);
    is_str(dump(&s, "2026-12-04", "2026-12-04") + strlen(dump(&s, "2026-12-04", "2026-12-04")) -
               strlen("2026-12-04 carol m prov upstream-1 openai 2/20/40/10/60;"),
           "2026-12-04 carol m prov upstream-1 openai 2/20/40/10/60;", "all five counters add up");

    /* Refused ids leave the store as it was. */
    uint64_t g = s.generation;
    size_t n = s.n;
    struct usage_id bad[6];
    bad[0] = id_of("2026-02-30", "k", "a", "p", "u", USAGE_OPENAI);
    bad[1] = id_of("2026-13-01", "k", "a", "p", "u", USAGE_OPENAI);
    bad[2] = id_of("2026-1-01x", "k", "a", "p", "u", USAGE_OPENAI);
    bad[3] = id_of("2026-12-04", "k", "a", "p", "u", (enum usage_dialect)2);
    bad[4] = id_of("2026-12-04", "k", "a", "p", "u", USAGE_OPENAI);
    bad[4].len[USAGE_ALIAS] = USAGE_NAME_MAX + 1;
    bad[5] = id_of("2026-12-04", "k", "a", "p", "u", USAGE_OPENAI);
    bad[5].day = NULL;
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        is_int(usage_add(&s, &bad[i], &c), -1, "invalid id %zu refused", i);
    ok(s.generation == g && s.n == n, "... store unchanged");

    /* A name of exactly USAGE_NAME_MAX bytes is fine. */
    char longname[USAGE_NAME_MAX + 1];
    memset(longname, 'x', USAGE_NAME_MAX);
    longname[USAGE_NAME_MAX] = '\0';
    struct usage_id lid = id_of("2026-12-04", longname, "a", "p", "u", USAGE_OPENAI);
    is_int(usage_add(&s, &lid, &c), 0, "name of USAGE_NAME_MAX bytes accepted");
    is_int(usage_sum(&s, "2026-12-04", longname, USAGE_NAME_MAX), 30, "... and summed");
    is_int(usage_sum(&s, "2026-12-04", longname, USAGE_NAME_MAX + 1), 0, "sum of a too long key: 0");
    usage_free(&s);
    ok(s.n == 0 && s.rows == NULL, "usage_free empties");
    is_int(add(&s, "2026-12-04", "again", "a", USAGE_OPENAI, 1), 0, "a freed store is usable");
    usage_free(&s);
}

static void test_ranges_and_order(void)
{
    struct usage_store s = USAGE_INIT;
    const char *days[] = { "2026-03-01", "2025-12-31", "2026-01-31", "2026-02-01", "2026-02-28", "2024-02-29" };
    for (size_t i = 0; i < ARRAY_LEN(days); i++)
        add(&s, days[i], "k", "a", USAGE_OPENAI, i + 1);
    is_str(dump(&s, "2026-02-01", "2026-02-28"),
           "2026-02-01 k a p1 up openai 1/2/2/0/4;2026-02-28 k a p1 up openai 1/2/3/0/5;",
           "[Feb 1, Feb 28]: both ends included");
    is_str(dump(&s, "2026-01-31", "2026-01-31"), "2026-01-31 k a p1 up openai 1/1/2/0/3;", "one day");
    is_str(dump(&s, "2026-02-02", "2026-02-27"), "", "nothing between");
    is_str(dump(&s, "2026-03-01", "2026-02-01"), "", "from after to: nothing");
    const struct usage_row **rows;
    size_t n;
    is_int(usage_query(&s, NULL, NULL, &rows, &n), 0, "unbounded query");
    is_int(n, 6, "... all rows");
    ok(n == 6 && strcmp(rows[0]->day, "2024-02-29") == 0 && strcmp(rows[5]->day, "2026-03-01") == 0,
       "... oldest first");
    free(rows);
    is_int(usage_query(&s, "2030-01-01", NULL, &rows, &n), 0, "empty result");
    ok(n == 0 && rows == NULL, "... NULL and 0");
    usage_free(&s);

    /* Names compare as bytes, a prefix first, UTF-8 after ASCII. */
    add(&s, "2026-12-04", "b", "x", USAGE_OPENAI, 1);
    add(&s, "2026-12-04", "ab", "x", USAGE_OPENAI, 1);
    add(&s, "2026-12-04", "a", "x", USAGE_OPENAI, 1);
    add(&s, "2026-12-04", "\xc3\xa9", "x", USAGE_OPENAI, 1);
    add(&s, "2026-12-04", "", "x", USAGE_OPENAI, 1);
    add(&s, "2026-12-04", "a", "", USAGE_OPENAI, 1);
    is_str(dump(&s, NULL, NULL),
           "2026-12-04  x p1 up openai 1/0/1/0/1;2026-12-04 a  p1 up openai 1/0/1/0/1;"
           "2026-12-04 a x p1 up openai 1/0/1/0/1;2026-12-04 ab x p1 up openai 1/0/1/0/1;"
           "2026-12-04 b x p1 up openai 1/0/1/0/1;2026-12-04 \xc3\xa9 x p1 up openai 1/0/1/0/1;",
           "bytewise order, empty names allowed");
    usage_free(&s);
}

static void test_prune(void)
{
    struct usage_store s = USAGE_INIT;
    add(&s, "2026-09-05", "k", "a", USAGE_OPENAI, 1);   /* today - 90: dropped */
    add(&s, "2026-09-05", "j", "a", USAGE_OPENAI, 1);
    add(&s, "2025-01-01", "k", "a", USAGE_OPENAI, 1);   /* long ago */
    add(&s, "2026-09-06", "k", "a", USAGE_OPENAI, 10);  /* today - 89: kept */
    add(&s, "2026-12-04", "k", "a", USAGE_OPENAI, 20);  /* today */
    add(&s, "2026-12-04", "k", "b", USAGE_OPENAI, 5);
    add(&s, "2027-01-01", "k", "a", USAGE_OPENAI, 30);  /* a clock that was ahead */
    uint64_t g = s.generation;
    is_int(usage_prune(&s, "2026-12-04"), 3, "prune at 2026-12-04: 3 rows older than 90 days");
    ok(s.generation > g, "... a change");
    is_str(s.oldest, "2026-09-06", "oldest day now 2026-09-06");
    is_int(s.n, 4, "4 rows left");
    is_int(sum(&s, "2026-09-05", "k"), 0, "dropped day sums 0");
    is_int(sum(&s, "2026-09-06", "k"), 10, "kept day: 10");
    is_int(sum(&s, "2026-12-04", "k"), 25, "today: 25");
    is_int(sum(&s, "2027-01-01", "k"), 30, "future day kept");
    /* The rows moved: adding to them must still find them. */
    add(&s, "2026-12-04", "k", "b", USAGE_OPENAI, 5);
    is_int(s.n, 4, "add after prune finds the moved row");
    is_int(sum(&s, "2026-12-04", "k"), 30, "... and its total");
    g = s.generation;
    is_int(usage_prune(&s, "2026-12-04"), 0, "prune again: nothing");
    is_int(s.generation, g, "... no change");
    is_int(usage_prune(&s, "2026-12-4"), -1, "invalid today refused");
    is_int(usage_prune(&s, "2027-03-31"), 3, "prune at 2027-03-31: only 2027-01-01 (today - 89) stays");
    is_int(usage_prune(&s, "2027-12-31"), 1, "later: everything goes");
    ok(s.n == 0 && s.oldest[0] == '\0', "empty");
    is_int(add(&s, "2027-12-31", "k", "a", USAGE_OPENAI, 4), 0, "add to an emptied store");
    is_int(sum(&s, "2027-12-31", "k"), 4, "... summed");
    usage_free(&s);
}

static int add_n(struct usage_store *s, const char *day, const char *prefix, int from, int to)
{
    char key[32];
    int refused = 0;
    for (int i = from; i < to; i++) {
        snprintf(key, sizeof key, "%s%d", prefix, i);
        refused += add(s, day, key, "a", USAGE_OPENAI, 1) != 0;
    }
    return refused;
}

static void test_row_bound(void)
{
    struct usage_store s = USAGE_INIT;
    is_int(add_n(&s, "2026-12-01", "a", 0, 20000), 0, "20000 rows on the 1st");
    is_int(add_n(&s, "2026-12-02", "b", 0, USAGE_MAX_ROWS - 20000), 0, "the rest on the 2nd: full");
    is_int(s.n, USAGE_MAX_ROWS, "USAGE_MAX_ROWS rows");
    is_int(add(&s, "2026-12-03", "c", "a", USAGE_OPENAI, 9), 0, "a new row on the 3rd: accepted");
    is_int(s.n, USAGE_MAX_ROWS - 20000 + 1, "... the oldest day (the 1st) was dropped");
    is_int(sum(&s, "2026-12-01", "a5"), 0, "... its sums too");
    is_int(sum(&s, "2026-12-02", "b5"), 1, "the 2nd is intact");
    is_int(sum(&s, "2026-12-03", "c"), 9, "the 3rd summed");
    is_int(s.overflow, 0, "no overflow yet");
    is_int(add_n(&s, "2026-12-03", "c", 0, 20000 - 1), 0, "fill up again on the 3rd");
    is_int(s.n, USAGE_MAX_ROWS, "full");
    is_int(add(&s, "2026-12-02", "new", "a", USAGE_OPENAI, 1), 1, "a new row of the oldest day: refused");
    is_int(add(&s, "2026-11-30", "new", "a", USAGE_OPENAI, 1), 1, "a new row of an older day: refused");
    is_int(s.overflow, 2, "... counted in overflow");
    is_int(add(&s, "2026-12-02", "b7", "a", USAGE_OPENAI, 5), 0, "an existing row of that day still adds up");
    is_int(sum(&s, "2026-12-02", "b7"), 6, "... 6");
    usage_free(&s);

    /* One day alone fills the store. */
    is_int(add_n(&s, "2026-12-04", "k", 0, USAGE_MAX_ROWS), 0, "one day, USAGE_MAX_ROWS rows");
    is_int(add(&s, "2026-12-04", "one-more", "a", USAGE_OPENAI, 1), 1, "one more of the same day: refused");
    is_int(s.overflow, 1, "... overflow 1");
    is_int(add(&s, "2026-12-04", "k123", "a", USAGE_OPENAI, 1), 0, "existing rows keep counting");
    is_int(add(&s, "2026-12-05", "k", "a", USAGE_OPENAI, 1), 0, "the next day: the full day makes room");
    is_int(s.n, 1, "... a fresh start");
    usage_free(&s);
}

/* ---------------- the usage file ---------------- */

static const char EXAMPLE[] =
    "{\"version\":1,\"rows\":[\n"
    "{\"day\":\"2026-12-04\",\"key\":\"alice\",\"alias\":\"gpt-5\",\"provider\":\"p1\",\"upstream\":\"gpt-5-2025\","
    "\"dialect\":\"openai\",\"requests\":3,\"prompt_tokens\":30,\"completion_tokens\":12,\"cached_tokens\":4,"
    "\"total_tokens\":42},\n"
    "{\"day\":\"2026-12-04\",\"key\":\"bob\",\"alias\":\"claude\",\"provider\":\"p2\",\"upstream\":\"claude-x\","
    "\"dialect\":\"anthropic\",\"requests\":1,\"prompt_tokens\":5,\"completion_tokens\":6,\"cached_tokens\":0,"
    "\"total_tokens\":11}\n"
    "]}\n";

static const char *serialized(const struct usage_store *s)
{
    static struct buf b;
    buf_clear(&b);
    if (usage_serialize(s, &b) < 0)
        return "(out of memory)";
    return buf_cstr(&b);
}

static int parse_str(const char *text, struct usage_store *out, struct usage_error *err)
{
    return usage_parse(text, strlen(text), out, err);
}

static void test_file_text(void)
{
    struct usage_store s = USAGE_INIT, t;
    struct usage_id a = id_of("2026-12-04", "alice", "gpt-5", "p1", "gpt-5-2025", USAGE_OPENAI);
    struct usage_id b = id_of("2026-12-04", "bob", "claude", "p2", "claude-x", USAGE_ANTHROPIC);
    struct usage_counts ca = counts(1, 10, 4, 0, 14), cb = counts(1, 5, 6, 0, 11), ca2 = counts(2, 20, 8, 4, 28);
    usage_add(&s, &b, &cb);
    usage_add(&s, &a, &ca);
    usage_add(&s, &a, &ca2);
    is_str(serialized(&s), EXAMPLE, "serialized text");
    struct usage_store empty = USAGE_INIT;
    is_str(serialized(&empty), "{\"version\":1,\"rows\":[\n]}\n", "empty store");

    struct usage_error err = { 0, NULL, NULL };
    is_int(parse_str(EXAMPLE, &t, &err), 0, "parse it back");
    is_str(serialized(&t), EXAMPLE, "... same text");
    is_int(t.generation, 0, "... generation 0");
    is_int(usage_sum(&t, "2026-12-04", "alice", 5), 42, "... sums rebuilt");
    usage_free(&t);
    is_int(parse_str("{\"version\":1,\"rows\":[]}", &t, &err), 0, "empty rows");
    is_int(t.n, 0, "... no rows");

    /* Appending keeps what the buffer held. */
    struct buf out = BUF_INIT;
    buf_append_str(&out, "prefix:");
    usage_serialize(&empty, &out);
    is_mem(buf_head(&out), buf_len(&out), "prefix:{\"version\":1,\"rows\":[\n]}\n", "appends after existing bytes");
    buf_free(&out);

    /* usage_move: the caller's swap after a successful parse. */
    uint64_t g = s.generation;
    is_int(parse_str(EXAMPLE, &t, &err), 0, "parse into a fresh store");
    usage_move(&s, &t);
    ok(s.n == 2 && t.n == 0 && t.rows == NULL, "moved");
    ok(s.generation == g + 1, "generation moves on past the old store's");
    usage_free(&s);
}

static void test_roundtrip_names_and_counters(void)
{
    struct usage_store s = USAGE_INIT, t;
    static const char nul_name[] = "nul\0inside";
    const char *names[] = { "quote\"d", "back\\slash", "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                            "ctl\x01\x1f\t\n\r\x7f", "</script>", "" };
    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        struct usage_id id = id_of("2026-12-04", names[i], names[(i + 1) % ARRAY_LEN(names)], names[i], "u",
                                   USAGE_OPENAI);
        struct usage_counts c = counts(i, i, i, i, i);
        usage_add(&s, &id, &c);
    }
    struct usage_id nid = id_of("2026-12-04", "k", "a", "p", "u", USAGE_ANTHROPIC);
    nid.name[USAGE_KEY] = nul_name;
    nid.len[USAGE_KEY] = sizeof nul_name - 1;
    struct usage_counts big = counts(INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX - 1, UINT64_MAX, 1);
    usage_add(&s, &nid, &big);
    struct usage_id sat = id_of("2026-12-05", "k", "a", "p", "u", USAGE_OPENAI);
    struct usage_counts near = counts(UINT64_MAX - 1, 0, 0, 0, UINT64_MAX - 2);
    usage_add(&s, &sat, &near);
    usage_add(&s, &sat, &near);

    const struct usage_row **rows;
    size_t n;
    usage_query(&s, "2026-12-05", NULL, &rows, &n);
    ok(n == 1 && rows[0]->n.requests == UINT64_MAX && rows[0]->n.total_tokens == UINT64_MAX,
       "counters saturate at UINT64_MAX");
    free(rows);
    is_int(usage_sum(&s, "2026-12-05", "k", 1) == UINT64_MAX, 1, "sums saturate too");

    char *text = strdup(serialized(&s));
    ok(strstr(text, "\"key\":\"nul\\u0000inside\"") != NULL, "NUL written as \\u0000");
    ok(strstr(text, "\"requests\":9223372036854775807") && strstr(text, "\"prompt_tokens\":9223372036854775808") &&
           strstr(text, "\"cached_tokens\":18446744073709551615"),
       "2^63 - 1, 2^63 and 2^64 - 1 written in full");
    struct usage_error err;
    is_int(parse_str(text, &t, &err), 0, "odd names and big counters parse back");
    is_str(serialized(&t), text, "... identical serialisation");
    char *a = strdup(dump(&s, NULL, NULL));
    is_str(dump(&t, NULL, NULL), a, "... identical query");
    is_int(usage_sum(&t, "2026-12-04", nul_name, sizeof nul_name - 1), 1, "key with a NUL summed after reload");
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        is_int(usage_sum(&t, "2026-12-04", names[i], strlen(names[i])), i, "name %zu summed after reload", i);
    free(a);
    free(text);
    usage_free(&s);
    usage_free(&t);
}

/* A row with one field replaced: field "name" with raw JSON value. */
static char *row_with(const char *field, const char *value)
{
    static const char *const fields[] = { "day", "key", "alias", "provider", "upstream", "dialect", "requests",
                                          "prompt_tokens", "completion_tokens", "cached_tokens", "total_tokens" };
    static const char *const vals[] = { "\"2026-12-04\"", "\"k\"", "\"a\"", "\"p\"", "\"u\"", "\"openai\"",
                                        "1", "2", "3", "4", "5" };
    struct buf b = BUF_INIT;
    buf_append_str(&b, "{\"version\":1,\"rows\":[{");
    bool first = true;
    for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
        bool is = strcmp(fields[i], field) == 0;
        if (is && !value)
            continue;
        buf_printf(&b, "%s\"%s\":%s", first ? "" : ",", fields[i], is ? value : vals[i]);
        first = false;
    }
    buf_append_str(&b, "}]}");
    return buf_steal_str(&b);
}

struct bad_case {
    const char *what;
    const char *field;     /* the row field to replace (NULL: text is the whole file) */
    const char *text;      /* the value, or the whole file; NULL with a field: drop it */
    const char *msg;       /* expected in err.msg */
};

static const struct bad_case bad_cases[] = {
    { "empty", NULL, "", NULL },
    { "not JSON", NULL, "version: 1", NULL },
    { "truncated", NULL, "{\"version\":1,\"rows\":[", NULL },
    { "trailing garbage", NULL, "{\"version\":1,\"rows\":[]} x", NULL },
    { "top is an array", NULL, "[]", "not a JSON object" },
    { "no version", NULL, "{\"rows\":[]}", "missing field" },
    { "no rows", NULL, "{\"version\":1}", "missing field" },
    { "version 2", NULL, "{\"version\":2,\"rows\":[]}", "unsupported version" },
    { "version 0", NULL, "{\"version\":0,\"rows\":[]}", "unsupported version" },
    { "version as string", NULL, "{\"version\":\"1\",\"rows\":[]}", "unsupported version" },
    { "version 1.0", NULL, "{\"version\":1.0,\"rows\":[]}", "unsupported version" },
    { "version twice", NULL, "{\"version\":1,\"version\":1,\"rows\":[]}", "field given twice" },
    { "rows an object", NULL, "{\"version\":1,\"rows\":{}}", "not an array" },
    { "rows null", NULL, "{\"version\":1,\"rows\":null}", "not an array" },
    { "row a number", NULL, "{\"version\":1,\"rows\":[1]}", "row is not an object" },
    { "row an array", NULL, "{\"version\":1,\"rows\":[[]]}", "row is not an object" },
    { "row empty", NULL, "{\"version\":1,\"rows\":[{}]}", "missing field" },
    { "day missing", "day", NULL, "missing field" },
    { "key missing", "key", NULL, "missing field" },
    { "alias missing", "alias", NULL, "missing field" },
    { "provider missing", "provider", NULL, "missing field" },
    { "upstream missing", "upstream", NULL, "missing field" },
    { "dialect missing", "dialect", NULL, "missing field" },
    { "requests missing", "requests", NULL, "missing field" },
    { "prompt_tokens missing", "prompt_tokens", NULL, "missing field" },
    { "completion_tokens missing", "completion_tokens", NULL, "missing field" },
    { "cached_tokens missing", "cached_tokens", NULL, "missing field" },
    { "total_tokens missing", "total_tokens", NULL, "missing field" },
    { "day a number", "day", "20261204", "not a string" },
    { "day short", "day", "\"2026-12-4\"", "not a YYYY-MM-DD date" },
    { "day long", "day", "\"2026-12-045\"", "not a YYYY-MM-DD date" },
    { "day very long", "day", "\"2026-12-04xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"", "not a YYYY-MM-DD date" },
    { "day slashes", "day", "\"2026/12/04\"", "not a YYYY-MM-DD date" },
    { "day Feb 30", "day", "\"2026-02-30\"", "not a YYYY-MM-DD date" },
    { "day Feb 29 non-leap", "day", "\"2100-02-29\"", "not a YYYY-MM-DD date" },
    { "day month 13", "day", "\"2026-13-01\"", "not a YYYY-MM-DD date" },
    { "day month 0", "day", "\"2026-00-10\"", "not a YYYY-MM-DD date" },
    { "day 0", "day", "\"2026-01-00\"", "not a YYYY-MM-DD date" },
    { "day sign", "day", "\"+026-01-01\"", "not a YYYY-MM-DD date" },
    { "day NUL", "day", "\"2026-01-0\\u0000\"", "not a YYYY-MM-DD date" },
    { "key a number", "key", "1", "not a string" },
    { "alias null", "alias", "null", "not a string" },
    { "provider an object", "provider", "{}", "not a string" },
    { "upstream an array", "upstream", "[\"u\"]", "not a string" },
    { "dialect unknown", "dialect", "\"OpenAI\"", "not \"openai\" or \"anthropic\"" },
    { "dialect a number", "dialect", "0", "not \"openai\" or \"anthropic\"" },
    { "requests negative", "requests", "-1", "not a non-negative integer" },
    { "requests -0", "requests", "-0", "not a non-negative integer" },
    { "requests fraction", "requests", "1.5", "not a non-negative integer" },
    { "requests 1.0", "requests", "1.0", "not a non-negative integer" },
    { "requests exponent", "requests", "1e3", "not a non-negative integer" },
    { "requests a string", "requests", "\"3\"", "not a number" },
    { "requests true", "requests", "true", "not a number" },
    { "requests null", "requests", "null", "not a number" },
    { "total 2^64", "total_tokens", "18446744073709551616", "number larger than 18446744073709551615" },
    { "total 10^20", "total_tokens", "100000000000000000000", "number larger than 18446744073709551615" },
    { "cached huge", "cached_tokens", "999999999999999999999999999999", "number larger than 18446744073709551615" },
    { "requests twice", "requests", "1,\"requests\":1", "field given twice" },
    { "day twice", "day", "\"2026-12-04\",\"day\":\"2026-12-05\"", "field given twice" },
};

static void test_corrupt(void)
{
    for (size_t i = 0; i < ARRAY_LEN(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        char *text = c->field ? row_with(c->field, c->text) : strdup(c->text);
        struct usage_store t;
        struct usage_error err = { 0, NULL, NULL };
        memset(&t, 0x5a, sizeof t);
        int r = parse_str(text, &t, &err);
        is_int(r, -1, "%s: refused", c->what);
        if (r == 0) {
            usage_free(&t);
        } else {
            ok(err.msg && (!c->msg || strcmp(err.msg, c->msg) == 0) && err.offset <= strlen(text),
               "%s: \"%s\" at %zu%s%s", c->what, err.msg ? err.msg : "(none)", err.offset,
               err.field ? " field " : "", err.field ? err.field : "");
            ok(t.n == 0 && t.rows == NULL && t.totals == NULL && t.rows_ix.slot == NULL, "%s: store left empty",
               c->what);
        }
        free(text);
    }

    /* The offset points at the culprit. */
    char *text = row_with("requests", "-5");
    struct usage_store t;
    struct usage_error err;
    parse_str(text, &t, &err);
    ok(err.offset == (size_t)(strstr(text, "-5") - text) && err.field && strcmp(err.field, "requests") == 0,
       "offset and field of a bad counter");
    free(text);

    /* Boundaries that are fine. */
    const char *good[][2] = {
        { "total_tokens", "18446744073709551615" }, { "requests", "0" },
        { "day", "\"2024-02-29\"" }, { "day", "\"0000-01-01\"" }, { "day", "\"9999-12-31\"" },
        { "day", "\"2026-12-0\\u0034\"" }, { "dialect", "\"anthropic\"" },
        { "key", "\"\"" }, { "requests", "1,\"extra\":{\"ignored\":[1,2]}" },
    };
    for (size_t i = 0; i < ARRAY_LEN(good); i++) {
        text = row_with(good[i][0], good[i][1]);
        is_int(parse_str(text, &t, &err), 0, "accepted: %s = %s", good[i][0], good[i][1]);
        usage_free(&t);
        free(text);
    }
}

static void test_corrupt_names_and_dups(void)
{
    struct usage_store t;
    struct usage_error err;
    /* 256 bytes: fine; 257: refused; 128 two-byte characters: fine; 129: refused. */
    struct { const char *unit; int count; int want; } cases[] = {
        { "x", USAGE_NAME_MAX, 0 }, { "x", USAGE_NAME_MAX + 1, -1 },
        { "\xc3\xa9", USAGE_NAME_MAX / 2, 0 }, { "\xc3\xa9", USAGE_NAME_MAX / 2 + 1, -1 },
        { "\\u00e9", USAGE_NAME_MAX / 2, 0 }, { "x", 100000, -1 },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct buf v = BUF_INIT;
        buf_append_str(&v, "\"");
        for (int k = 0; k < cases[i].count; k++)
            buf_append_str(&v, cases[i].unit);
        buf_append_str(&v, "\"");
        char *text = row_with("upstream", buf_cstr(&v));
        int r = parse_str(text, &t, &err);
        is_int(r, cases[i].want, "name of %d x \"%s\"", cases[i].count, cases[i].unit);
        if (r < 0)
            is_str(err.msg, "name longer than USAGE_NAME_MAX bytes", "... too long");
        usage_free(&t);
        free(text);
        buf_free(&v);
    }

    /* Duplicate rows: also when written differently. */
    const char *dup =
        "{\"version\":1,\"rows\":["
        "{\"day\":\"2026-12-04\",\"key\":\"k\",\"alias\":\"a\",\"provider\":\"p\",\"upstream\":\"u\",\"dialect\":"
        "\"openai\",\"requests\":1,\"prompt_tokens\":1,\"completion_tokens\":1,\"cached_tokens\":1,\"total_tokens\":1},"
        "{\"total_tokens\":2,\"day\":\"2026-12-0\\u0034\",\"key\":\"\\u006b\",\"alias\":\"a\",\"provider\":\"p\","
        "\"upstream\":\"u\",\"dialect\":\"openai\",\"requests\":1,\"prompt_tokens\":1,\"completion_tokens\":1,"
        "\"cached_tokens\":1}]}";
    is_int(parse_str(dup, &t, &err), -1, "duplicate row refused");
    is_str(err.msg, "duplicate row", "... reason");
    is_int(err.offset, strstr(dup, "},{") + 2 - dup, "... at the second row");
    ok(t.n == 0 && t.rows == NULL, "... nothing half-loaded");
    const char *two =
        "{\"version\":1,\"rows\":["
        "{\"day\":\"2026-12-04\",\"key\":\"k\",\"alias\":\"a\",\"provider\":\"p\",\"upstream\":\"u\",\"dialect\":"
        "\"openai\",\"requests\":1,\"prompt_tokens\":1,\"completion_tokens\":1,\"cached_tokens\":1,\"total_tokens\":1},"
        "{\"day\":\"2026-12-04\",\"key\":\"k\",\"alias\":\"a\",\"provider\":\"p\",\"upstream\":\"u\",\"dialect\":"
        "\"anthropic\",\"requests\":1,\"prompt_tokens\":1,\"completion_tokens\":1,\"cached_tokens\":1,\"total_tokens\":2}]}";
    is_int(parse_str(two, &t, &err), 0, "same names, other dialect: not a duplicate");
    is_int(usage_sum(&t, "2026-12-04", "k", 1), 3, "... both summed");
    usage_free(&t);

    /* More rows than USAGE_MAX_ROWS. */
    struct buf big = BUF_INIT;
    buf_append_str(&big, "{\"version\":1,\"rows\":[");
    for (int i = 0; i <= USAGE_MAX_ROWS; i++)
        buf_printf(&big, "%s{\"day\":\"2026-12-04\",\"key\":\"k%d\",\"alias\":\"a\",\"provider\":\"p\",\"upstream\":"
                         "\"u\",\"dialect\":\"openai\",\"requests\":1,\"prompt_tokens\":1,\"completion_tokens\":1,"
                         "\"cached_tokens\":1,\"total_tokens\":1}",
                   i ? "," : "", i);
    buf_append_str(&big, "]}");
    is_int(usage_parse(buf_head(&big), buf_len(&big), &t, &err), -1, "USAGE_MAX_ROWS + 1 rows refused");
    is_str(err.msg, "more rows than USAGE_MAX_ROWS", "... reason");
    ok(t.n == 0 && t.rows == NULL, "... nothing half-loaded");
    /* Exactly USAGE_MAX_ROWS: cut the last row off. */
    char *last = NULL;
    for (char *p = buf_head(&big); (p = strstr(p, ",{\"day\"")) != NULL; p++)
        last = p;
    size_t cut = (size_t)(last - buf_head(&big));
    char *exact = malloc(cut + 3);
    memcpy(exact, buf_head(&big), cut);
    memcpy(exact + cut, "]}", 3);
    is_int(usage_parse(exact, cut + 2, &t, &err), 0, "exactly USAGE_MAX_ROWS rows accepted");
    is_int(t.n, USAGE_MAX_ROWS, "... all of them");
    is_int(usage_sum(&t, "2026-12-04", "k49999", 6), 1, "... the last one summed");
    usage_free(&t);
    free(exact);
    buf_free(&big);
}

/* Every strict prefix of a valid file is refused, none half-loads. */
static void test_truncations(void)
{
    size_t n = strlen(EXAMPLE), bad = 0;
    /* The last byte is a newline: the text without it is still valid. */
    for (size_t len = 0; len + 1 < n; len++) {
        char *copy = malloc(len ? len : 1);
        memcpy(copy, EXAMPLE, len);
        struct usage_store t;
        struct usage_error err;
        if (usage_parse(copy, len, &t, &err) != -1 || t.n != 0 || t.rows != NULL || err.offset > len)
            bad++;
        if (t.n)
            usage_free(&t);
        free(copy);
    }
    is_int(bad, 0, "every truncation of the file refused, nothing loaded");
}

static void test_days(void)
{
    int64_t d;
    is_int(usage_day_parse("1970-01-01", 10, &d), 0, "epoch");
    is_int(d, 0, "... day 0");
    usage_day_parse("2026-12-04", 10, &d);
    is_int(d, 20791, "2026-12-04 is day 20791");
    usage_day_parse("1969-12-31", 10, &d);
    is_int(d, -1, "1969-12-31 is day -1");
    ok(usage_day_valid("2000-02-29", 10) && usage_day_valid("2024-02-29", 10), "leap days");
    ok(!usage_day_valid("1900-02-29", 10) && !usage_day_valid("2023-02-29", 10), "not leap days");
    ok(!usage_day_valid("2026-04-31", 10) && usage_day_valid("2026-04-30", 10), "30-day months");
    ok(!usage_day_valid("2026-12-04", 9) && !usage_day_valid("2026-12-04 ", 11), "length exactly 10");
    ok(!usage_day_valid("2026-12-0a", 10) && !usage_day_valid("2026_12_04", 10), "digits and dashes");

    char out[USAGE_DAY_LEN + 1];
    int bad = 0;
    int64_t lo, hi;
    usage_day_parse("0000-01-01", 10, &lo);
    usage_day_parse("9999-12-31", 10, &hi);
    for (int64_t day = lo; day <= hi; day += 1 + (day & 7)) {
        usage_day_format(day, out);
        bad += usage_day_parse(out, strlen(out), &d) != 0 || d != day;
    }
    is_int(bad, 0, "format then parse: every day of 0000..9999 (sampled) round trips");
    usage_day_format(20791, out);
    is_str(out, "2026-12-04", "format 20791");
    usage_day_format(hi + 1000, out);
    is_str(out, "9999-12-31", "format clamps above");
    usage_day_format(INT64_MIN, out);
    is_str(out, "0000-01-01", "format clamps below");
    usage_day_format(INT64_MAX, out);
    is_str(out, "9999-12-31", "format of INT64_MAX");
}

int main(void)
{
    test_add_query_sum();
    test_ranges_and_order();
    test_prune();
    test_row_bound();
    test_file_text();
    test_roundtrip_names_and_counters();
    test_corrupt();
    test_corrupt_names_and_dups();
    test_truncations();
    test_days();
    return tap_done();
}
