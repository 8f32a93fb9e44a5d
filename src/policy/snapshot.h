/* snapshot: one loaded config plus the indexes derived from it.
 *
 * Immutable and reference-counted: a request pins the snapshot it started
 * with, so a reload never changes the rules under a request in flight.
 * The "current" snapshot is the one new requests get. */
#ifndef AUTOSWITCH_SNAPSHOT_H
#define AUTOSWITCH_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "endpoint.h"

/* One (provider, mapping) that can serve an alias in a dialect. */
#define SNAPSHOT_MAX_CANDIDATES 65535   /* per alias and dialect; more are left out */

struct candidate {
    const struct cfg_provider *prov;
    const struct cfg_mapping *map;
    const struct cfg_url *url;      /* the provider's base URL of the dialect */
    struct health_entry *health;    /* the mapping's entry of the dialect, for its home class */
    struct stat_entry *stat;
    enum ep_class home;             /* the class its probes test (chat, embeddings, messages) */
    struct health_entry *by_class[EPC__COUNT];   /* other classes, made on first use (snapshot_health) */
    int priority;   /* provider.priority + mapping.priority: lower first */
    int weight;     /* provider.weight * mapping.weight */
};

struct alias_entry {
    const char *name;           /* points into the config */
    struct candidate *cands;    /* in config order */
    size_t n;
};

/* The aliases of one dialect: OpenAI routes use the providers with a
 * base_url, /v1/messages those with an anthropic_base_url. */
struct alias_index {
    struct alias_entry *aliases;   /* sorted by name, unique */
    size_t n;
};

struct key_state;

struct snapshot {
    unsigned refs;
    struct config *cfg;
    struct alias_index idx[CFG_DIALECTS];
    struct key_state **legacy;     /* the state of each api_keys entry ("api_keys[i]") */
    struct key_state *open;        /* the state of an open gateway's callers ("(open)") */
};

/* Build a snapshot that owns cfg (freed with it).  NULL when out of memory
 * (cfg is then freed too). */
struct snapshot *snapshot_new(struct config *cfg);
struct snapshot *snapshot_ref(struct snapshot *s);
void snapshot_unref(struct snapshot *s);
const struct alias_entry *snapshot_alias(const struct snapshot *s, enum dialect d, const char *name, size_t len);

/* The health entry of a candidate for an endpoint class (its home entry,
 * or one made on first use and held until the snapshot goes).  NULL when
 * out of memory. */
struct health_entry *snapshot_health(const struct candidate *c, enum ep_class cls);
/* A mapping's home class in a dialect: what its probes test. */
enum ep_class snapshot_home_class(const struct cfg_mapping *m, enum dialect d);

/* The current snapshot (borrowed: take a ref to keep it across callbacks). */
struct snapshot *snapshot_current(void);
/* Make s current; the previous one is released when its last user ends. */
void snapshot_install(struct snapshot *s);
void snapshot_release_current(void);

#endif
