/* keys: who is calling /v1, and what they may still do.
 *
 * A caller is a named key of the config (`keys:`), one of the legacy
 * `api_keys` (full access, accounted as "api_keys[0]", ...), or nobody
 * when neither is configured (an open gateway, accounted as "(open)").
 * Its runtime state - the limiter's window, in-flight count and tokens of
 * the day, and its counters - lives in a table keyed by name, so a reload
 * that keeps the key keeps its state (as health does).  Tokens are
 * compared in constant time, as text, or by SHA-256 for a key the file
 * gives as key_sha256; the token itself is never logged or shown. */
#ifndef AUTOSWITCH_KEYS_H
#define AUTOSWITCH_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "limiter.h"

#define KEY_OPEN_NAME "(open)"
#define KEY_NAME_MAX 128

/* Why a request of a key was refused (counted per key for the metrics). */
enum key_refusal { KR_INVALID, KR_EXPIRED, KR_DISABLED, KR_RPM, KR_CONCURRENT, KR_TOKENS, KR_MODEL, KR__COUNT };

struct key_state {
    struct key_state *next;
    char *name;
    unsigned refs;
    struct limit_state lim;
    uint64_t by_class[6];           /* answers by status class ([0]: none) */
    uint64_t refused[KR__COUNT];
};

/* The caller of one request (pointers into the pinned snapshot). */
struct principal {
    const char *name;
    const struct cfg_client_key *key;   /* NULL for a legacy api_keys entry or an open gateway */
    struct key_state *state;            /* NULL when out of memory */
    bool holds_slot;                    /* took an in-flight slot (released by keys_done) */
};

/* The state of name, with one more reference; NULL when out of memory. */
struct key_state *key_state_get(const char *name);
void key_state_put(struct key_state *ks);
struct key_state *key_states(void);
const char *key_refusal_name(enum key_refusal r);

/* Who the token t[0, n) belongs to: 0 and *who, or -1 (no such key). */
int keys_identify(const struct config *cfg, struct key_state *const *legacy, struct key_state *open,
                  const char *t, size_t n, struct principal *who);

/* The limits decided from the head: disabled, expired, the daily tokens,
 * rpm, concurrency.  KR__COUNT when admitted (an in-flight slot taken);
 * else the reason and *retry_ms (0 when there is no point retrying). */
enum key_refusal keys_admit(struct principal *who, int64_t now_ms, const struct limit_day *day, int64_t *retry_ms);
/* Whether the key may use alias (its models, * globs). */
bool keys_allows(const struct principal *who, const char *alias);
/* Count a refusal decided elsewhere (the allow-list, once the model is known). */
void keys_refused(struct principal *who, enum key_refusal r);
/* The request passed the allow-list: it counts against rpm now. */
void keys_count(struct principal *who, int64_t now_ms);
/* The request is over: its slot back, its answer counted. */
void keys_done(struct principal *who, int status);

/* Whether a glob (only * is special) matches s. */
bool keys_glob(const char *pattern, const char *s);

#endif
