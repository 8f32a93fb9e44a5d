/* accounting: what each key used, per (local day, key, alias, provider,
 * upstream, dialect), and where that is kept.
 *
 * Rows live in a usage store in memory (usage.h); with usage_file they are
 * loaded at start and written atomically (temp file, fsync, rename) when
 * they changed, at most once every ACCT_SAVE_MS (routers write to flash),
 * and at reload and shutdown.  A corrupt file is moved aside with a
 * warning, never a refusal to start.  Days are local (TZ); 90 of them are
 * kept.  The day's tokens of each key also feed its daily_tokens limit. */
#ifndef AUTOSWITCH_ACCOUNTING_H
#define AUTOSWITCH_ACCOUNTING_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "event.h"
#include "keys.h"
#include "limiter.h"
#include "usage.h"

#define ACCT_SAVE_MS 60000u   /* the usage file is written at most this often */

/* The local day of wall clock now_ms (cached until midnight). */
const struct limit_day *acct_today(int64_t now_ms);

/* One answer's tokens (t may be NULL), and whether it was a served
 * request, charged to (key, alias, provider, upstream, dialect); the key's
 * state, when given, is charged for its daily_tokens limit. */
struct acct_who {
    const char *key;
    const char *alias;
    const char *provider;
    const char *upstream;
    enum dialect dialect;
    struct key_state *state;
};
void acct_charge(const struct acct_who *w, const struct tokens *t, bool request, int64_t now_ms);

/* Tokens since the process started per (key, alias, provider), for the
 * metrics (counters must not go down, as the kept days do).  At most
 * ACCT_SERIES_MAX of them; tokens of further ones are not in the metrics
 * (the usage store still has them). */
#define ACCT_SERIES_MAX 4096
#define ACCT_BUCKETS 256
struct acct_series {
    struct acct_series *next;
    char *key, *alias, *provider;
    uint64_t prompt, completion, cached;
};
/* Bucket i of the series table (each bucket a list), i < ACCT_BUCKETS. */
const struct acct_series *acct_series_bucket(size_t i);

/* The usage file (NULL: none): loaded when it changes (start, reload),
 * and each key's tokens of today given back to its limiter. */
void acct_configure(const char *path, const struct config *cfg, int64_t now_ms);
/* Write the file now if anything changed (reload, shutdown). */
void acct_flush(void);
const struct usage_store *acct_store(void);
/* At exit. */
void acct_free(void);

#endif
