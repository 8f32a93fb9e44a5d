/* usage: token usage accounting, as a pure in-memory store.
 *
 * A row is keyed by (day "YYYY-MM-DD", key name, alias, provider, upstream
 * model, dialect) and holds five counters.  The store adds to rows, answers
 * range queries, keeps a per-(day, key) token total for the daily_tokens
 * limit, forgets old days, and converts itself to and from the JSON text
 * of the usage file.  No I/O, no clock: "today" is always a parameter.
 *
 * Memory.  Rows live in one array with a hash index; each row owns one
 * heap block holding its four names.  usage_add allocates only when it
 * creates a row (the per-request case, adding to an existing row, is a
 * hash lookup and five additions), and an allocation failure leaves the
 * store as it was.  USAGE_MAX_ROWS bounds everything.
 *
 * Row bound.  Adding a new row to a full store first drops every row of
 * the oldest day.  When the new row belongs to the oldest day itself (or
 * an older one), dropping would not help, so the row is refused and
 * counted in `overflow` for the caller to log: a single day with more
 * than USAGE_MAX_ROWS rows keeps its first USAGE_MAX_ROWS and counts the
 * rest there (requests already counted in an existing row still add up).
 *
 * Counters are uint64 and saturate at UINT64_MAX instead of wrapping.
 *
 * Names are bytes with a length (they may hold anything, NUL included),
 * at most USAGE_NAME_MAX bytes each.  The file is written with
 * json_append_str, which replaces bytes that are not UTF-8 by U+FFFD: a
 * name that is not UTF-8 reads back changed (config names always are). */
#ifndef AUTOSWITCH_USAGE_H
#define AUTOSWITCH_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define USAGE_VERSION 1          /* "version" of the file format */
#define USAGE_DAY_LEN 10         /* "YYYY-MM-DD" */
#define USAGE_NAME_MAX 256       /* bytes of a key, alias, provider or upstream name */
#define USAGE_KEEP_DAYS 90       /* usage_prune keeps today and the 89 days before */
#define USAGE_MAX_ROWS 50000     /* rows in a store (and in a file) */

enum usage_dialect { USAGE_OPENAI = 0, USAGE_ANTHROPIC = 1 };

/* The names of a row, in their sort order. */
enum usage_name { USAGE_KEY = 0, USAGE_ALIAS, USAGE_PROVIDER, USAGE_UPSTREAM, USAGE_NAMES };

struct usage_counts {
    uint64_t requests;
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
    uint64_t cached_tokens;
    uint64_t total_tokens;
};

/* What usage_add is told: views, nothing needs a NUL. */
struct usage_id {
    const char *day;                        /* USAGE_DAY_LEN bytes */
    const char *name[USAGE_NAMES];          /* indexed by enum usage_name */
    size_t len[USAGE_NAMES];
    enum usage_dialect dialect;
};

/* A stored row.  Read-only for callers. */
struct usage_row {
    char day[USAGE_DAY_LEN + 1];            /* NUL-terminated */
    uint8_t dialect;                        /* enum usage_dialect */
    uint16_t len[USAGE_NAMES];
    const char *name[USAGE_NAMES];          /* each NUL-terminated too */
    struct usage_counts n;
    uint64_t hash;                          /* private */
    uint32_t total;                         /* private: its (day, key) total */
};

/* One (day, key) token total; private. */
struct usage_total {
    uint64_t hash;
    uint32_t row;                           /* a row of that day and key */
    uint64_t tokens;
};

/* Open addressing index: slot = entry + 1 (0: empty) and 32 bits of the
 * entry's hash, so growing never looks at the entries. */
struct usage_slot {
    uint32_t entry1;
    uint32_t tag;
};
struct usage_index {
    struct usage_slot *slot;
    size_t mask;                            /* slots - 1; slot == NULL: none */
};

/* The store.  Zero-initialised (USAGE_INIT) is an empty store; the struct
 * holds no pointer into itself, so it may be moved by assignment. */
struct usage_store {
    struct usage_row *rows;
    size_t n, cap;
    struct usage_index rows_ix;
    struct usage_total *totals;
    size_t n_totals, cap_totals;
    struct usage_index totals_ix;
    char oldest[USAGE_DAY_LEN + 1];         /* smallest day of the rows ("" when none) */
    uint64_t generation;                    /* + 1 on every change */
    uint64_t overflow;                      /* rows refused by the row bound */
};

#define USAGE_INIT { 0 }

/* Free everything; the store is empty (and usable) afterwards. */
void usage_free(struct usage_store *s);
/* Free dst, move src into it, leave src empty.  dst's generation becomes
 * one more than the larger of the two, so a saver notices the change. */
void usage_move(struct usage_store *dst, struct usage_store *src);

/* Add c to the row of id, creating it if needed.  0 added; 1 refused by
 * the row bound (counted in overflow); -1 when id is not valid (bad day,
 * name longer than USAGE_NAME_MAX, unknown dialect) or out of memory,
 * with the store unchanged. */
int usage_add(struct usage_store *s, const struct usage_id *id, const struct usage_counts *c);

/* total_tokens summed over the rows of (day, key), day being USAGE_DAY_LEN
 * bytes: one hash lookup, no allocation. */
uint64_t usage_sum(const struct usage_store *s, const char *day, const char *key, size_t key_len);

/* The rows with from <= day <= to (USAGE_DAY_LEN bytes each, compared as
 * bytes, which for YYYY-MM-DD is the calendar order; NULL: no bound; not
 * validated, so "0000-00-00" works as a bound), sorted by day, then
 * key, alias, provider, upstream (bytewise, a prefix first), then dialect
 * (openai first).  *out is a heap array of *n pointers to free() (NULL
 * when *n is 0); the pointers are valid until the store next changes.
 * 0, or -1 when out of memory. */
int usage_query(const struct usage_store *s, const char *from, const char *to, const struct usage_row ***out,
                size_t *n);

/* Drop the rows older than USAGE_KEEP_DAYS days before today (so today and
 * the 89 days before it stay; days after today stay too, for a clock that
 * was ahead).  The number of rows dropped, or -1 when today is not a valid
 * day.  Never allocates, never fails otherwise. */
long usage_prune(struct usage_store *s, const char *today);

/* Whether anything changed since the caller saved at generation `saved`. */
static inline bool usage_dirty(const struct usage_store *s, uint64_t saved)
{
    return s->generation != saved;
}

/* ---------------- the usage file ---------------- */

/* Append the store as JSON to out, rows in usage_query order, one per line:
 *   {"version":1,"rows":[
 *   {"day":"2026-12-04","key":"alice","alias":"gpt-5","provider":"p1",
 *    "upstream":"gpt-5-2025","dialect":"openai","requests":3,
 *    "prompt_tokens":30,"completion_tokens":12,"cached_tokens":4,
 *    "total_tokens":42}
 *   ]}
 * 0, or -1 when out of memory (out is then as it was). */
int usage_serialize(const struct usage_store *s, struct buf *out);

struct usage_error {
    size_t offset;       /* byte offset in the text where it applies */
    const char *msg;     /* static text */
    const char *field;   /* the row field concerned, or NULL */
};

/* Read a usage file into *out, a fresh store (its old contents are not
 * looked at: pass an empty or uninitialised struct).  All or nothing: on
 * any problem *out is left empty and the live store, which the caller
 * replaces only on success (usage_move), is untouched.  Refused: text that
 * is not JSON; a version other than USAGE_VERSION; a row that is not an
 * object, lacks a field, has one twice or of the wrong type; a day that is
 * not a real YYYY-MM-DD date; a dialect other than "openai"/"anthropic"; a
 * counter that is not a plain non-negative integer or exceeds UINT64_MAX;
 * a name longer than USAGE_NAME_MAX; more than USAGE_MAX_ROWS rows; two
 * rows with the same key (a file we write never has them, so they mean
 * damage or an edit, and summing or picking one could count tokens twice
 * against a daily limit).  Unknown members are ignored, for files from a
 * newer writer of the same version.  The new store's generation is 0.
 * 0, or -1 and *err. */
int usage_parse(const char *text, size_t len, struct usage_store *out, struct usage_error *err);

/* ---------------- days ---------------- */

/* Whether d[0, len) is a real date written YYYY-MM-DD (years 0000-9999,
 * proleptic Gregorian). */
bool usage_day_valid(const char *d, size_t len);
/* d (a valid day) as days since 1970-01-01; -1 and nothing set if invalid. */
int usage_day_parse(const char *d, size_t len, int64_t *days);
/* days since 1970-01-01 as YYYY-MM-DD and a NUL; the limiter's day number
 * (limit_local_day) gives the local date.  Years outside 0000-9999 are
 * clamped to the first or last day of that range. */
void usage_day_format(int64_t days, char out[USAGE_DAY_LEN + 1]);

#endif
