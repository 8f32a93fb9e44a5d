/* usage: see usage.h.
 *
 * Two tables, each an array plus an open-addressing index (linear probing,
 * load at most 1/2): the rows, and the (day, key) token totals that make
 * usage_sum one lookup.  A total remembers one row of its day and key
 * instead of copying the key; rows only ever leave a whole day at a time
 * (prune, the row bound), and after any removal both tables are rebuilt
 * from the surviving rows in place, which needs no memory.  So every
 * allocation happens before a change, and a failed one changes nothing. */
#include "usage.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define NOT_FOUND SIZE_MAX
#define IX_MIN_SLOTS 16          /* first size of an index (a power of two) */
#define ARRAY_MIN 16             /* first capacity of the row and total arrays */
#define U64_DIGITS_MAX 20        /* decimal digits of UINT64_MAX */
#define YEAR_MAX 9999            /* four-digit years only */

/* FNV-1a, then MurmurHash3's 64-bit finaliser so the low bits the index
 * uses depend on every input byte. */
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* The fields of a row in the file, in the order they are written. */
enum { F_DAY, F_NAME, F_DIALECT = F_NAME + USAGE_NAMES, F_COUNT, ROW_FIELDS = F_COUNT + 5 };
static const char *const row_fields[ROW_FIELDS] = {
    "day", "key", "alias", "provider", "upstream", "dialect",
    "requests", "prompt_tokens", "completion_tokens", "cached_tokens", "total_tokens",
};
static const size_t count_off[ROW_FIELDS - F_COUNT] = {
    offsetof(struct usage_counts, requests),      offsetof(struct usage_counts, prompt_tokens),
    offsetof(struct usage_counts, completion_tokens), offsetof(struct usage_counts, cached_tokens),
    offsetof(struct usage_counts, total_tokens),
};
static const char *const dialects[] = { "openai", "anthropic" };
_Static_assert(USAGE_MAX_ROWS < UINT32_MAX, "entries are numbered in 32 bits");

static uint64_t *counter(struct usage_counts *c, size_t i)
{
    return (uint64_t *)(void *)((char *)c + count_off[i]);
}

static uint64_t count_at(const struct usage_counts *c, size_t i)
{
    return *(const uint64_t *)(const void *)((const char *)c + count_off[i]);
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ---------------- days ---------------- */

/* H. Hinnant's civil calendar conversions (proleptic Gregorian, eras of
 * 400 years, March-based years so the leap day ends the year). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int digits(const char *p, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

int usage_day_parse(const char *d, size_t len, int64_t *days)
{
    static const unsigned char mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (len != USAGE_DAY_LEN || d[4] != '-' || d[7] != '-')
        return -1;
    int y = digits(d, 4), m = digits(d + 5, 2), day = digits(d + 8, 2);
    if (y < 0 || m < 1 || m > 12 || day < 1 || day > mdays[m - 1])
        return -1;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m == 2 && day == 29 && !leap)
        return -1;
    *days = days_from_civil(y, (unsigned)m, (unsigned)day);
    return 0;
}

bool usage_day_valid(const char *d, size_t len)
{
    int64_t days;
    return usage_day_parse(d, len, &days) == 0;
}

void usage_day_format(int64_t days, char out[USAGE_DAY_LEN + 1])
{
    int64_t lo = days_from_civil(0, 1, 1), hi = days_from_civil(YEAR_MAX, 12, 31);
    int64_t y;
    unsigned m, d;
    civil_from_days(days < lo ? lo : days > hi ? hi : days, &y, &m, &d);
    unsigned v[3] = { (unsigned)y, m, d }, width[3] = { 4, 2, 2 };
    char *p = out;
    for (int k = 0; k < 3; k++) {
        for (unsigned i = width[k]; i-- > 0; v[k] /= 10)
            p[i] = (char)('0' + v[k] % 10);
        p += width[k];
        *p++ = k < 2 ? '-' : '\0';
    }
}

/* ---------------- hashing and the indexes ---------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * FNV_PRIME;
    return h;
}

/* A name with its length in front, so ("ab", "c") and ("a", "bc") differ. */
static uint64_t fnv_name(uint64_t h, const char *p, size_t n)
{
    unsigned char len[2] = { (unsigned char)(n & 0xff), (unsigned char)(n >> 8) };
    return fnv(fnv(h, len, sizeof len), p, n);
}

static uint64_t fmix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

static uint64_t hash_id(const struct usage_id *id)
{
    uint64_t h = fnv(FNV_OFFSET, id->day, USAGE_DAY_LEN);
    for (int i = 0; i < USAGE_NAMES; i++)
        h = fnv_name(h, id->name[i], id->len[i]);
    unsigned char dialect = (unsigned char)id->dialect;
    return fmix(fnv(h, &dialect, 1));
}

static uint64_t hash_day_key(const char *day, const char *key, size_t key_len)
{
    return fmix(fnv_name(fnv(FNV_OFFSET, day, USAGE_DAY_LEN), key, key_len));
}

static void ix_place(struct usage_slot *slot, size_t mask, struct usage_slot s)
{
    size_t i = s.tag & mask;
    while (slot[i].entry1)
        i = (i + 1) & mask;
    slot[i] = s;
}

static void ix_insert(struct usage_index *ix, uint64_t hash, size_t entry)
{
    ix_place(ix->slot, ix->mask, (struct usage_slot){ (uint32_t)entry + 1, (uint32_t)hash });
}

/* Room for `entries` entries at a load of at most 1/2.  0 or -1. */
static int ix_reserve(struct usage_index *ix, size_t entries)
{
    size_t slots = ix->slot ? ix->mask + 1 : 0;
    if (entries <= slots / 2)
        return 0;
    size_t want = slots ? slots : IX_MIN_SLOTS;
    while (want / 2 < entries)
        want *= 2;
    struct usage_slot *ns = calloc(want, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < slots; i++)
        if (ix->slot[i].entry1)
            ix_place(ns, want - 1, ix->slot[i]);
    free(ix->slot);
    ix->slot = ns;
    ix->mask = want - 1;
    return 0;
}

static void ix_clear(struct usage_index *ix)
{
    if (ix->slot)
        memset(ix->slot, 0, (ix->mask + 1) * sizeof *ix->slot);
}

/* arr grown to hold need elements (need <= USAGE_MAX_ROWS); *cap updated.
 * NULL when out of memory, arr untouched. */
static void *reserve_array(void *arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return arr;
    size_t n = *cap ? *cap : ARRAY_MIN;
    while (n < need)
        n *= 2;
    if (n > USAGE_MAX_ROWS)
        n = USAGE_MAX_ROWS;
    void *p = realloc(arr, n * elem);
    if (p)
        *cap = n;
    return p;
}

/* ---------------- rows and totals ---------------- */

static bool name_eq(const struct usage_row *r, int i, const char *p, size_t n)
{
    return r->len[i] == n && (n == 0 || memcmp(r->name[i], p, n) == 0);
}

static size_t row_find(const struct usage_store *s, uint64_t h, const struct usage_id *id)
{
    if (!s->rows_ix.slot)
        return NOT_FOUND;
    size_t mask = s->rows_ix.mask;
    for (size_t i = h & mask; s->rows_ix.slot[i].entry1; i = (i + 1) & mask) {
        if (s->rows_ix.slot[i].tag != (uint32_t)h)
            continue;
        const struct usage_row *r = &s->rows[s->rows_ix.slot[i].entry1 - 1];
        bool same = r->dialect == id->dialect && memcmp(r->day, id->day, USAGE_DAY_LEN) == 0;
        for (int k = 0; same && k < USAGE_NAMES; k++)
            same = name_eq(r, k, id->name[k], id->len[k]);
        if (same)
            return s->rows_ix.slot[i].entry1 - 1;
    }
    return NOT_FOUND;
}

static size_t total_find(const struct usage_store *s, uint64_t h, const char *day, const char *key, size_t key_len)
{
    if (!s->totals_ix.slot)
        return NOT_FOUND;
    size_t mask = s->totals_ix.mask;
    for (size_t i = h & mask; s->totals_ix.slot[i].entry1; i = (i + 1) & mask) {
        if (s->totals_ix.slot[i].tag != (uint32_t)h)
            continue;
        size_t t = s->totals_ix.slot[i].entry1 - 1;
        const struct usage_row *r = &s->rows[s->totals[t].row];
        if (memcmp(r->day, day, USAGE_DAY_LEN) == 0 && name_eq(r, USAGE_KEY, key, key_len))
            return t;
    }
    return NOT_FOUND;
}

/* Link row i to the total of its (day, key), creating it (room for it
 * must have been reserved). */
static void total_attach(struct usage_store *s, size_t i)
{
    struct usage_row *r = &s->rows[i];
    uint64_t h = hash_day_key(r->day, r->name[USAGE_KEY], r->len[USAGE_KEY]);
    size_t t = total_find(s, h, r->day, r->name[USAGE_KEY], r->len[USAGE_KEY]);
    if (t == NOT_FOUND) {
        t = s->n_totals++;
        s->totals[t] = (struct usage_total){ h, (uint32_t)i, 0 };
        ix_insert(&s->totals_ix, h, t);
    }
    r->total = (uint32_t)t;
}

static void count_row(struct usage_store *s, struct usage_row *r, const struct usage_counts *c)
{
    for (size_t i = 0; i < ROW_FIELDS - F_COUNT; i++) {
        uint64_t *to = counter(&r->n, i);
        *to = add_sat(*to, count_at(c, i));
    }
    struct usage_total *t = &s->totals[r->total];
    t->tokens = add_sat(t->tokens, c->total_tokens);
    s->generation++;
}

/* After rows left: both indexes, the totals and `oldest` from the rows
 * that stayed.  Nothing grows, so nothing is allocated. */
static void reindex(struct usage_store *s)
{
    ix_clear(&s->rows_ix);
    ix_clear(&s->totals_ix);
    s->n_totals = 0;
    s->oldest[0] = '\0';
    for (size_t i = 0; i < s->n; i++) {
        struct usage_row *r = &s->rows[i];
        ix_insert(&s->rows_ix, r->hash, i);
        total_attach(s, i);
        struct usage_total *t = &s->totals[r->total];
        t->tokens = add_sat(t->tokens, r->n.total_tokens);
        if (i == 0 || memcmp(r->day, s->oldest, USAGE_DAY_LEN) < 0)
            memcpy(s->oldest, r->day, USAGE_DAY_LEN + 1);
    }
}

/* Drop the rows of days before `day` (or up to it, inclusive). */
static size_t drop_days(struct usage_store *s, const char *day, bool inclusive)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->n; i++) {
        int cmp = memcmp(s->rows[i].day, day, USAGE_DAY_LEN);
        if (cmp < 0 || (inclusive && cmp == 0)) {
            free((void *)s->rows[i].name[0]);   /* the row's names block */
            continue;
        }
        if (kept != i)
            s->rows[kept] = s->rows[i];
        kept++;
    }
    size_t dropped = s->n - kept;
    s->n = kept;
    if (dropped) {
        reindex(s);
        s->generation++;
    }
    return dropped;
}

/* Everything a new row may need, before anything changes.  When the store
 * is full the row takes the place of dropped ones, so the row table need
 * not grow past USAGE_MAX_ROWS. */
static int reserve_row(struct usage_store *s)
{
    size_t rows = s->n < USAGE_MAX_ROWS ? s->n + 1 : USAGE_MAX_ROWS;
    size_t totals = s->n_totals < USAGE_MAX_ROWS ? s->n_totals + 1 : USAGE_MAX_ROWS;
    void *p = reserve_array(s->rows, &s->cap, rows, sizeof *s->rows);
    if (!p)
        return -1;
    s->rows = p;
    p = reserve_array(s->totals, &s->cap_totals, totals, sizeof *s->totals);
    if (!p)
        return -1;
    s->totals = p;
    if (ix_reserve(&s->rows_ix, rows) < 0 || ix_reserve(&s->totals_ix, totals) < 0)
        return -1;
    return 0;
}

/* One heap block with the names of id, each followed by a NUL. */
static char *names_copy(const struct usage_id *id)
{
    size_t total = USAGE_NAMES;
    for (int i = 0; i < USAGE_NAMES; i++)
        total += id->len[i];
    char *block = malloc(total), *p = block;
    if (!block)
        return NULL;
    for (int i = 0; i < USAGE_NAMES; i++) {
        if (id->len[i])
            memcpy(p, id->name[i], id->len[i]);
        p[id->len[i]] = '\0';
        p += id->len[i] + 1;
    }
    return block;
}

/* A new row for id (not in the store).  0, 1 refused by the row bound, -1
 * out of memory; the store is unchanged unless 0. */
static int add_row(struct usage_store *s, const struct usage_id *id, uint64_t h, const struct usage_counts *c)
{
    bool full = s->n >= USAGE_MAX_ROWS;
    if (full && memcmp(id->day, s->oldest, USAGE_DAY_LEN) <= 0) {
        s->overflow++;
        return 1;
    }
    char *block = names_copy(id);
    if (!block || reserve_row(s) < 0) {
        free(block);
        return -1;
    }
    if (full) {
        char oldest[USAGE_DAY_LEN + 1];   /* drop_days rewrites s->oldest */
        memcpy(oldest, s->oldest, sizeof oldest);
        drop_days(s, oldest, true);
    }
    struct usage_row *r = &s->rows[s->n];
    memset(r, 0, sizeof *r);
    memcpy(r->day, id->day, USAGE_DAY_LEN);
    r->dialect = (uint8_t)id->dialect;
    for (int i = 0; i < USAGE_NAMES; i++) {
        r->name[i] = block;
        r->len[i] = (uint16_t)id->len[i];
        block += id->len[i] + 1;
    }
    r->hash = h;
    ix_insert(&s->rows_ix, h, s->n);
    total_attach(s, s->n);
    s->n++;
    if (s->n == 1 || memcmp(r->day, s->oldest, USAGE_DAY_LEN) < 0)
        memcpy(s->oldest, r->day, USAGE_DAY_LEN + 1);
    count_row(s, r, c);
    return 0;
}

static bool id_valid(const struct usage_id *id)
{
    if (!id->day || !usage_day_valid(id->day, USAGE_DAY_LEN))
        return false;
    if ((unsigned)id->dialect > USAGE_ANTHROPIC)
        return false;
    for (int i = 0; i < USAGE_NAMES; i++)
        if (id->len[i] > USAGE_NAME_MAX || (id->len[i] && !id->name[i]))
            return false;
    return true;
}

int usage_add(struct usage_store *s, const struct usage_id *id, const struct usage_counts *c)
{
    if (!id_valid(id))
        return -1;
    uint64_t h = hash_id(id);
    size_t i = row_find(s, h, id);
    if (i != NOT_FOUND) {
        count_row(s, &s->rows[i], c);
        return 0;
    }
    return add_row(s, id, h, c);
}

uint64_t usage_sum(const struct usage_store *s, const char *day, const char *key, size_t key_len)
{
    if (key_len > USAGE_NAME_MAX)
        return 0;
    size_t t = total_find(s, hash_day_key(day, key, key_len), day, key, key_len);
    return t == NOT_FOUND ? 0 : s->totals[t].tokens;
}

long usage_prune(struct usage_store *s, const char *today)
{
    int64_t days;
    if (!today || usage_day_parse(today, USAGE_DAY_LEN, &days) < 0)
        return -1;
    char first[USAGE_DAY_LEN + 1];
    usage_day_format(days - (USAGE_KEEP_DAYS - 1), first);
    return (long)drop_days(s, first, false);
}

void usage_free(struct usage_store *s)
{
    for (size_t i = 0; i < s->n; i++)
        free((void *)s->rows[i].name[0]);
    free(s->rows);
    free(s->totals);
    free(s->rows_ix.slot);
    free(s->totals_ix.slot);
    memset(s, 0, sizeof *s);
}

void usage_move(struct usage_store *dst, struct usage_store *src)
{
    uint64_t gen = (dst->generation > src->generation ? dst->generation : src->generation) + 1;
    usage_free(dst);
    *dst = *src;
    dst->generation = gen;
    memset(src, 0, sizeof *src);
}

/* ---------------- queries ---------------- */

static int name_cmp(const struct usage_row *a, const struct usage_row *b, int i)
{
    size_t n = a->len[i] < b->len[i] ? a->len[i] : b->len[i];
    int c = n ? memcmp(a->name[i], b->name[i], n) : 0;
    if (c)
        return c;
    return (a->len[i] > b->len[i]) - (a->len[i] < b->len[i]);
}

static int row_cmp(const void *pa, const void *pb)
{
    const struct usage_row *a = *(const struct usage_row *const *)pa;
    const struct usage_row *b = *(const struct usage_row *const *)pb;
    int c = memcmp(a->day, b->day, USAGE_DAY_LEN);
    for (int i = 0; c == 0 && i < USAGE_NAMES; i++)
        c = name_cmp(a, b, i);
    return c ? c : (a->dialect > b->dialect) - (a->dialect < b->dialect);
}

int usage_query(const struct usage_store *s, const char *from, const char *to, const struct usage_row ***out,
                size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t k = 0;
    const struct usage_row **v = s->n ? malloc(s->n * sizeof *v) : NULL;
    if (s->n && !v)
        return -1;
    for (size_t i = 0; i < s->n; i++) {
        const struct usage_row *r = &s->rows[i];
        if ((from && memcmp(r->day, from, USAGE_DAY_LEN) < 0) || (to && memcmp(r->day, to, USAGE_DAY_LEN) > 0))
            continue;
        v[k++] = r;
    }
    if (k == 0) {
        free(v);
        return 0;
    }
    qsort(v, k, sizeof *v, row_cmp);
    *out = v;
    *n = k;
    return 0;
}

/* ---------------- writing ---------------- */

static int append_u64(struct buf *b, uint64_t v)
{
    char d[U64_DIGITS_MAX];
    size_t i = sizeof d;
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return buf_append(b, d + i, sizeof d - i);
}

/* ,"field": (the first field has { instead of the comma) */
static int append_field(struct buf *b, int f)
{
    if (buf_append(b, f == F_DAY ? "{" : ",", 1) < 0 || json_append_str(b, row_fields[f], strlen(row_fields[f])) < 0)
        return -1;
    return buf_append(b, ":", 1);
}

static int append_row(struct buf *b, const struct usage_row *r)
{
    if (append_field(b, F_DAY) < 0 || json_append_str(b, r->day, USAGE_DAY_LEN) < 0)
        return -1;
    for (int i = 0; i < USAGE_NAMES; i++)
        if (append_field(b, F_NAME + i) < 0 || json_append_str(b, r->name[i], r->len[i]) < 0)
            return -1;
    const char *d = dialects[r->dialect];
    if (append_field(b, F_DIALECT) < 0 || json_append_str(b, d, strlen(d)) < 0)
        return -1;
    for (int i = F_COUNT; i < ROW_FIELDS; i++)
        if (append_field(b, i) < 0 || append_u64(b, count_at(&r->n, (size_t)(i - F_COUNT))) < 0)
            return -1;
    return buf_append(b, "}", 1);
}

int usage_serialize(const struct usage_store *s, struct buf *out)
{
    size_t mark = buf_len(out);
    const struct usage_row **rows;
    size_t n;
    if (usage_query(s, NULL, NULL, &rows, &n) < 0)
        return -1;
    int r = buf_append_str(out, "{\"version\":");
    if (r == 0)
        r = append_u64(out, USAGE_VERSION);
    if (r == 0)
        r = buf_append_str(out, ",\"rows\":[");
    for (size_t i = 0; r == 0 && i < n; i++) {
        r = buf_append_str(out, i ? ",\n" : "\n");
        if (r == 0)
            r = append_row(out, rows[i]);
    }
    if (r == 0)
        r = buf_append_str(out, "\n]}\n");
    free(rows);
    if (r < 0)
        out->end = out->start + mark;   /* a reserve may move the data, never cut it */
    return r;
}

/* ---------------- reading ---------------- */

static int fail(struct usage_error *err, size_t offset, const char *msg, const char *field)
{
    err->offset = offset;
    err->msg = msg;
    err->field = field;
    return -1;
}

/* A JSON number span that is a plain integer in [0, UINT64_MAX]: 0; -1
 * for a sign, fraction or exponent; -2 when too large. */
static int parse_u64(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -2;
        v = v * 10 + d;
    }
    *out = v;
    return n ? 0 : -1;
}

/* The members of obj named names[0, n) into vals[] (each must be there
 * exactly once; other members are ignored). */
static int members(const char *t, struct json_val obj, const char *const *names, size_t n, struct json_val *vals,
                   struct usage_error *err)
{
    for (size_t i = 0; i < n; i++)
        vals[i].type = JSON_INVALID;
    struct json_iter it;
    struct json_val k, v;
    json_iter_init(&it, t, obj);
    while (json_iter_member(&it, &k, &v) == 1) {
        for (size_t i = 0; i < n; i++) {
            if (!json_str_eq(t, k, names[i], strlen(names[i])))
                continue;
            if (vals[i].type != JSON_INVALID)
                return fail(err, k.start, "field given twice", names[i]);
            vals[i] = v;
            break;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (vals[i].type == JSON_INVALID)
            return fail(err, obj.start, "missing field", names[i]);
    return 0;
}

static int take_count(const char *t, struct json_val v, uint64_t *out, const char *field, struct usage_error *err)
{
    if (v.type != JSON_NUMBER)
        return fail(err, v.start, "not a number", field);
    int r = parse_u64(t + v.start, v.end - v.start, out);
    if (r == -2)
        return fail(err, v.start, "number larger than 18446744073709551615", field);
    if (r < 0)
        return fail(err, v.start, "not a non-negative integer", field);
    return 0;
}

/* A name: a string of at most cap - 1 decoded bytes into out; its length. */
static int take_name(const char *t, struct json_val v, char *out, size_t cap, size_t *len, const char *field,
                    struct usage_error *err)
{
    if (v.type != JSON_STRING)
        return fail(err, v.start, "not a string", field);
    *len = json_str_decode(t, v, out, cap);
    if (*len >= cap)
        return fail(err, v.start, "name longer than USAGE_NAME_MAX bytes", field);
    return 0;
}

/* The id and counts of one row, into the caller's buffers. */
static int take_row(const char *t, const struct json_val *v, struct usage_id *id, char *day,
                    char names[USAGE_NAMES][USAGE_NAME_MAX + 1], struct usage_counts *c, struct usage_error *err)
{
    if (v[F_DAY].type != JSON_STRING)
        return fail(err, v[F_DAY].start, "not a string", "day");
    if (!usage_day_valid(day, json_str_decode(t, v[F_DAY], day, USAGE_DAY_LEN + 1)))
        return fail(err, v[F_DAY].start, "not a YYYY-MM-DD date", "day");
    id->day = day;
    for (int i = 0; i < USAGE_NAMES; i++) {
        if (take_name(t, v[F_NAME + i], names[i], USAGE_NAME_MAX + 1, &id->len[i], row_fields[F_NAME + i], err) < 0)
            return -1;
        id->name[i] = names[i];
    }
    struct json_val d = v[F_DIALECT];
    if (d.type == JSON_STRING && json_str_eq(t, d, dialects[USAGE_OPENAI], strlen(dialects[USAGE_OPENAI])))
        id->dialect = USAGE_OPENAI;
    else if (d.type == JSON_STRING && json_str_eq(t, d, dialects[USAGE_ANTHROPIC], strlen(dialects[USAGE_ANTHROPIC])))
        id->dialect = USAGE_ANTHROPIC;
    else
        return fail(err, d.start, "not \"openai\" or \"anthropic\"", "dialect");
    for (int i = F_COUNT; i < ROW_FIELDS; i++)
        if (take_count(t, v[i], counter(c, (size_t)(i - F_COUNT)), row_fields[i], err) < 0)
            return -1;
    return 0;
}

static int parse_row(const char *t, struct json_val row, struct usage_store *s, struct usage_error *err)
{
    if (row.type != JSON_OBJECT)
        return fail(err, row.start, "row is not an object", NULL);
    struct json_val v[ROW_FIELDS];
    if (members(t, row, row_fields, ROW_FIELDS, v, err) < 0)
        return -1;
    char day[USAGE_DAY_LEN + 1];
    char names[USAGE_NAMES][USAGE_NAME_MAX + 1];
    struct usage_id id;
    struct usage_counts c;
    if (take_row(t, v, &id, day, names, &c, err) < 0)
        return -1;
    uint64_t h = hash_id(&id);
    if (row_find(s, h, &id) != NOT_FOUND)
        return fail(err, row.start, "duplicate row", NULL);
    if (s->n >= USAGE_MAX_ROWS)
        return fail(err, row.start, "more rows than USAGE_MAX_ROWS", NULL);
    if (add_row(s, &id, h, &c) != 0)
        return fail(err, row.start, "out of memory", NULL);
    return 0;
}

int usage_parse(const char *text, size_t len, struct usage_store *out, struct usage_error *err)
{
    static const char *const top_fields[] = { "version", "rows" };
    memset(out, 0, sizeof *out);
    struct json_val root, top[2];
    struct json_error je;
    if (json_parse(text, len, &root, &je) < 0)
        return fail(err, je.offset, je.msg, NULL);
    if (root.type != JSON_OBJECT)
        return fail(err, root.start, "not a JSON object", NULL);
    if (members(text, root, top_fields, 2, top, err) < 0)
        return -1;
    uint64_t version;
    if (top[0].type != JSON_NUMBER || parse_u64(text + top[0].start, top[0].end - top[0].start, &version) < 0 ||
        version != USAGE_VERSION)
        return fail(err, top[0].start, "unsupported version", "version");
    if (top[1].type != JSON_ARRAY)
        return fail(err, top[1].start, "not an array", "rows");
    struct json_iter it;
    struct json_val row;
    json_iter_init(&it, text, top[1]);
    while (json_iter_elem(&it, &row) == 1) {
        if (parse_row(text, row, out, err) < 0) {
            usage_free(out);
            return -1;
        }
    }
    out->generation = 0;
    return 0;
}
