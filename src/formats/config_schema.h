/* config_schema: the one description of openai_proxy.yaml.
 *
 * Each object of the file (the top level, a provider, a model mapping, a
 * client key) is a table of keys: name, type, rule, where the value goes
 * in the struct, and what the admin API may do with it.  The loader fills
 * structs from YAML through these tables (config.c); the admin API shows a
 * config as JSON and writes JSON back as YAML through the same tables
 * (admin_config.c), so a new key is one row here plus its field (and the
 * UI's form).  Enum values are named once, here. */
#ifndef AUTOSWITCH_CONFIG_SCHEMA_H
#define AUTOSWITCH_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cfg_type {
    CFG_STR,       /* char *                                              */
    CFG_INT,       /* int                                                 */
    CFG_U64,       /* uint64_t                                            */
    CFG_BOOL,      /* bool                                                */
    CFG_ENUM,      /* int, one of names[]                                 */
    CFG_STRLIST,   /* char ** at off, size_t count at aux_off             */
    CFG_LIST,      /* array of item_size structs at off, count at aux_off */
    CFG_STRMAP,    /* struct cfg_pair * at off, size_t count at aux_off   */
};

enum cfg_rule {
    CFG_ANY,
    CFG_NONNEG,      /* numbers: < 0 is an error                          */
    CFG_POSITIVE,    /* numbers: <= 0 is an error                         */
    CFG_NONEMPTY,    /* strings: "" is an error                           */
    CFG_EMPTY_NULL,  /* strings: "" means absent, so ${VAR:-} can unset   */
};

/* What the admin API does with a key (bits). */
#define CFG_K_ADMIN 1u    /* shown and written by the admin API */
#define CFG_K_SECRET 2u   /* shown masked; a masked value sent back keeps the file's */
#define CFG_K_URL 4u      /* a destination of the object's secrets: a masked secret comes back only
                             while every such URL keeps its scheme, host and port */
#define CFG_K_INHERIT 8u  /* absent means "the level above decides": shown only when given */
#define CFG_K_WIRE 16u    /* written into upstream requests: control characters are an error */

#define CFG_NO_FIELD ((size_t)-1)
#define CFG_MAX_KEYS 64   /* a schema's keys fit a uint64_t of "given" bits */

struct cfg_parser;
struct cfg_schema;

/* A (name, value) pair of a CFG_STRMAP key (provider headers). */
struct cfg_pair {
    char *name;
    char *value;
};

struct cfg_key {
    const char *name;
    enum cfg_type type;
    enum cfg_rule rule;
    unsigned flags;                 /* CFG_K_* */
    size_t off;                     /* the field in the object */
    size_t aux_off;                 /* list count, or the text before ${} expansion (CFG_STR) */
    size_t item_size;               /* CFG_LIST */
    const struct cfg_schema *item;  /* CFG_LIST */
    const char *const *names;       /* CFG_ENUM: value i is named names[i] */
    size_t n_names;
    /* Runs after a scalar was stored; may reject it (loader only). */
    int (*check)(struct cfg_parser *p, void *obj);
    /* CFG_STRLIST: judges each item (loader only); a message or NULL. */
    const char *(*check_item)(const char *value);
};

struct cfg_schema {
    const char *what;               /* "provider", for messages */
    const struct cfg_key *keys;
    size_t n_keys;
    size_t given_off;               /* uint64_t of the keys the file gave */
    /* Runs when the mapping ends: required keys, defaults (loader only). */
    int (*close)(struct cfg_parser *p, void *obj);
};

extern const struct cfg_schema cfg_schema_top;
extern const struct cfg_schema cfg_schema_provider;
extern const struct cfg_schema cfg_schema_mapping;
extern const struct cfg_schema cfg_schema_client_key;

/* The key named name, or NULL; its index is key - schema->keys. */
const struct cfg_key *cfg_key_find(const struct cfg_schema *s, const char *name);
/* Whether obj's file gave the key (a key of s). */
bool cfg_key_given(const struct cfg_schema *s, const void *obj, const struct cfg_key *k);
/* The name of an enum value of k ("?" when out of range). */
const char *cfg_enum_name(const struct cfg_key *k, int v);

#endif
