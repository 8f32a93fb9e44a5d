/* libFuzzer target: usage_parse (the usage file), usage_serialize and the
 * store built from a file.  The whole input is the file text; inputs over
 * CAP_BYTES are ignored.
 *
 * On failure: a message, an offset inside the text, and an empty store
 * (all or nothing).  On success: the serialisation parses again and
 * serialises to the same bytes; the rows come out of usage_query strictly
 * ordered (no duplicates) and within the limits; every usage_sum equals
 * the rows' total_tokens added up here independently; after usage_prune
 * only recent enough days remain, the sums still agree, and adding to a
 * surviving row finds it instead of creating another. */
#include "buf.h"
#include "fuzz_common.h"
#include "usage.h"

#define CAP_BYTES (256u * 1024)

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Rows of (day, key) summed by brute force. */
static uint64_t brute_sum(const struct usage_row **rows, size_t n, const struct usage_row *like)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i]->day, like->day) == 0 && rows[i]->len[USAGE_KEY] == like->len[USAGE_KEY] &&
            memcmp(rows[i]->name[USAGE_KEY], like->name[USAGE_KEY], like->len[USAGE_KEY]) == 0)
            s = add_sat(s, rows[i]->n.total_tokens);
    return s;
}

/* Compare two rows the way usage.h documents the order; written here
 * independently of usage.c. */
static int order(const struct usage_row *a, const struct usage_row *b)
{
    int c = strcmp(a->day, b->day);
    for (int i = 0; c == 0 && i < USAGE_NAMES; i++) {
        size_t n = a->len[i] < b->len[i] ? a->len[i] : b->len[i];
        c = n ? memcmp(a->name[i], b->name[i], n) : 0;
        if (c == 0)
            c = (a->len[i] > b->len[i]) - (a->len[i] < b->len[i]);
    }
    return c ? c : (int)a->dialect - (int)b->dialect;
}

static void check_store(const struct usage_store *s)
{
    const struct usage_row **rows;
    size_t n;
    FUZZ_CHECK(usage_query(s, NULL, NULL, &rows, &n) == 0, "query failed");
    FUZZ_CHECK(n == s->n && n <= USAGE_MAX_ROWS, "query gave %zu of %zu rows", n, s->n);
    for (size_t i = 0; i < n; i++) {
        const struct usage_row *r = rows[i];
        FUZZ_CHECK(usage_day_valid(r->day, strlen(r->day)), "row %zu: day %s", i, r->day);
        FUZZ_CHECK(r->dialect <= USAGE_ANTHROPIC, "row %zu: dialect %u", i, r->dialect);
        for (int k = 0; k < USAGE_NAMES; k++)
            FUZZ_CHECK(r->len[k] <= USAGE_NAME_MAX && r->name[k][r->len[k]] == '\0', "row %zu: name %d", i, k);
        if (i)
            FUZZ_CHECK(order(rows[i - 1], r) < 0, "rows %zu and %zu out of order or equal", i - 1, i);
        uint64_t want = brute_sum(rows, n, r);
        FUZZ_CHECK(usage_sum(s, r->day, r->name[USAGE_KEY], r->len[USAGE_KEY]) == want, "row %zu: usage_sum", i);
    }
    FUZZ_CHECK(n == 0 ? s->oldest[0] == '\0' : strcmp(s->oldest, rows[0]->day) == 0, "oldest %s", s->oldest);
    free(rows);
}

/* Prune at the newest day of the store and check what is left. */
static void check_prune(struct usage_store *s)
{
    const struct usage_row **rows;
    size_t n;
    if (usage_query(s, NULL, NULL, &rows, &n) < 0 || n == 0)
        return;
    char today[USAGE_DAY_LEN + 1], first[USAGE_DAY_LEN + 1];
    memcpy(today, rows[n - 1]->day, sizeof today);
    free(rows);
    int64_t d;
    FUZZ_CHECK(usage_day_parse(today, USAGE_DAY_LEN, &d) == 0, "newest day %s", today);
    usage_day_format(d - (USAGE_KEEP_DAYS - 1), first);
    size_t before = s->n;
    long dropped = usage_prune(s, today);
    FUZZ_CHECK(dropped >= 0 && (size_t)dropped + s->n == before, "prune: %ld dropped, %zu -> %zu", dropped,
               before, s->n);
    FUZZ_CHECK(s->n > 0, "prune dropped today's rows");
    check_store(s);
    FUZZ_CHECK(usage_query(s, NULL, NULL, &rows, &n) == 0 && n > 0, "query after prune");
    FUZZ_CHECK(strcmp(rows[0]->day, first) >= 0, "day %s survived a prune keeping %s on", rows[0]->day, first);
    /* Adding to a surviving row must find it. */
    const struct usage_row *r = rows[n / 2];
    struct usage_id id = { r->day, { 0 }, { 0 }, (enum usage_dialect)r->dialect };
    for (int k = 0; k < USAGE_NAMES; k++) {
        id.name[k] = r->name[k];
        id.len[k] = r->len[k];
    }
    char day[USAGE_DAY_LEN + 1];
    memcpy(day, r->day, sizeof day);
    id.day = day;
    uint64_t was = usage_sum(s, day, id.name[USAGE_KEY], id.len[USAGE_KEY]);
    struct usage_counts one = { 1, 0, 0, 0, 1 };
    free(rows);
    FUZZ_CHECK(usage_add(s, &id, &one) == 0 && s->n == before - (size_t)dropped, "add to a surviving row");
    FUZZ_CHECK(usage_sum(s, day, id.name[USAGE_KEY], id.len[USAGE_KEY]) == add_sat(was, 1), "sum after add");
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
    if (n > CAP_BYTES)
        return 0;
    char *text = fuzz_dup(in, n);
    struct usage_store s;
    struct usage_error err = { 0, NULL, NULL };
    int r = usage_parse(text, n, &s, &err);
    FUZZ_CHECK(r == 0 || r == -1, "usage_parse returned %d", r);
    if (r < 0) {
        FUZZ_CHECK(err.msg != NULL && err.offset <= n, "error without message or offset %zu > %zu", err.offset, n);
        FUZZ_CHECK(s.n == 0 && s.rows == NULL && s.totals == NULL && s.rows_ix.slot == NULL,
                   "a failed parse left rows behind");
        free(text);
        return 0;
    }
    FUZZ_CHECK(s.generation == 0 && !usage_dirty(&s, 0), "fresh store is dirty");
    check_store(&s);

    struct buf one = BUF_INIT, two = BUF_INIT;
    FUZZ_CHECK(usage_serialize(&s, &one) == 0, "serialize failed");
    char *again = fuzz_dup(buf_head(&one), buf_len(&one));
    struct usage_store t;
    FUZZ_CHECK(usage_parse(again, buf_len(&one), &t, &err) == 0, "own output refused: %s at %zu", err.msg,
               err.offset);
    FUZZ_CHECK(t.n == s.n, "reparse: %zu rows, was %zu", t.n, s.n);
    FUZZ_CHECK(usage_serialize(&t, &two) == 0, "serialize failed");
    FUZZ_CHECK(buf_len(&one) == buf_len(&two) && memcmp(buf_head(&one), buf_head(&two), buf_len(&one)) == 0,
               "serialize -> parse -> serialize changed the text");
    check_prune(&t);

    free(again);
    buf_free(&one);
    buf_free(&two);
    usage_free(&t);
    usage_free(&s);
    free(text);
    return 0;
}
