/* config: openai_proxy.yaml -> struct config, with validation.
 *
 * Loaded with libyaml's event API and an explicit state stack, through
 * the key tables of config_schema.h.  The file format is drop-in
 * compatible with the reference project's openai_proxy.yaml; keys marked
 * (new) are ours.  Every string scalar expands ${VAR} and ${VAR:-default}
 * from the environment ("$$" is a literal "$"); an unset VAR without a
 * default is an error.  Errors name file:line:column and the key
 * path, e.g. "conf/x.yaml:12:7: providers[1].model_mappings[0]: upstream is
 * required".  Unknown keys are warnings, never errors.  A config is
 * immutable once loaded; a reload loads a new one. */
#ifndef AUTOSWITCH_CONFIG_H
#define AUTOSWITCH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config_schema.h"
#include "event.h"

#define CFG_DIALECTS 2   /* enum dialect: OpenAI, Anthropic */

#define CFG_MAX_DEPTH 32            /* YAML nesting accepted */
#define CFG_MAX_FILE_BYTES (4u << 20)

enum cfg_probe { CFG_PROBE_CHAT = 0, CFG_PROBE_EMBEDDINGS, CFG_PROBE_MODELS, CFG_PROBE_NONE, CFG_PROBE_MESSAGES };

/* What "model" answers carry: the alias the client asked for (the
 * reference's behaviour) or the upstream model that served. */
enum cfg_response_model { CFG_MODEL_ALIAS = 0, CFG_MODEL_UPSTREAM };

/* How an Anthropic-speaking upstream takes its key. */
enum cfg_anthropic_auth { CFG_AUTH_X_API_KEY = 0, CFG_AUTH_BEARER };

/* How a mapping continues a stream that broke on another candidate. */
enum cfg_continuation {
    CFG_CONT_NONE = 0,
    CFG_CONT_PREFILL,
    CFG_CONT_PREFIX,
    CFG_CONT_CONTINUE_FINAL,
    CFG_CONT_REPLAY,
};

struct health_entry;   /* owned by the health module, linked after load */
struct key_state;      /* owned by the keys module, linked after load */
struct stat_entry;

struct cfg_url {
    bool https;
    char *host;        /* without brackets for IPv6 literals */
    uint16_t port;     /* default 80 / 443 */
    char *prefix;      /* path before /v1, "" or "/api"; no trailing '/' */
    char *authority;   /* Host header value: "host", "host:8080", "[::1]:8080" */
};

struct cfg_mapping {
    uint64_t given;           /* keys the file gave (config_schema.h) */
    char *upstream;           /* required */
    char *upstream_raw;       /* text before ${} expansion, NULL if the same */
    char *alias;              /* default: upstream */
    char *alias_raw;
    int priority;             /* default 0 */
    int weight;               /* default 1; 0 means 1 (reference); < 0 is an error */
    int max_failures;         /* 0 = use the global value; < 0 is an error */
    enum cfg_probe probe;     /* (new) default chat (messages for an Anthropic-only provider) */
    enum cfg_continuation continuation;   /* (new) default: the provider's */
    int first_token_timeout;  /* (new) seconds; default: the provider's */
    /* runtime links per dialect (NULL after load, and where the provider
     * has no base URL of that dialect) */
    struct health_entry *health[CFG_DIALECTS];
    struct stat_entry *stat[CFG_DIALECTS];
};

struct cfg_provider {
    uint64_t given;           /* keys the file gave (config_schema.h) */
    char *name;               /* required, unique */
    char *base_url;           /* http:// or https://; required unless anthropic_base_url */
    char *base_url_raw;       /* text before ${} expansion, NULL if the same */
    char *anthropic_base_url; /* (new) the provider's Anthropic Messages API, or NULL */
    char *anthropic_base_url_raw;
    enum cfg_anthropic_auth anthropic_auth;   /* (new) default x-api-key */
    char *api_key;            /* may be "" */
    char *api_key_raw;
    int weight;               /* default 1; 0 means 1; < 0 error */
    int priority;             /* default 0 */
    int timeout;              /* seconds, default 60; <= 0 means 60 */
    char *ca_file;            /* (new) PEM bundle for this provider, or NULL */
    char **exclude_params;
    size_t n_exclude;
    struct cfg_pair *headers; /* (new) sent with every request to this provider */
    size_t n_headers;
    char **forward_headers;   /* (new) client headers passed on, beyond the global list */
    size_t n_forward_headers;
    int model_retries;        /* (new) default: the global value */
    int first_token_timeout;  /* (new) default: the global value, else timeout */
    enum cfg_continuation continuation;   /* (new) default none */
    enum cfg_response_model response_model;   /* (new) default: the global value */
    bool stream_usage;        /* (new) default true: streams may ask for include_usage */
    struct cfg_mapping *mappings;
    size_t n_mappings;
    struct cfg_url url;       /* base_url (host NULL when none) */
    struct cfg_url aurl;      /* anthropic_base_url (host NULL when none) */
};

/* A named client key (`keys:`): who may call, which aliases, how much. */
struct cfg_client_key {
    uint64_t given;           /* keys the file gave (config_schema.h) */
    char *name;               /* required, unique: what logs, usage and metrics show */
    char *key;                /* the bearer token, or NULL when key_sha256 is given */
    char *key_raw;
    char *key_sha256;         /* hex SHA-256 of the token (the file need not hold it) */
    char **models;            /* allowed aliases, * globs; none = all */
    size_t n_models;
    int rpm;                  /* requests in any 60 s; 0 = no limit */
    int max_concurrent;       /* requests in flight; 0 = no limit */
    uint64_t daily_tokens;    /* tokens per local day; 0 = no limit */
    char *expires;            /* "YYYY-MM-DD": refused from 00:00 local time of that day */
    bool disabled;
    uint8_t digest[32];       /* SHA-256 of the token, from key or key_sha256 */
    int64_t expires_day;      /* days since 1970-01-01 of expires, -1 when none */
    struct key_state *state;  /* runtime link (policy/keys.h), NULL after load */
};

/* Where a top-level key's text is in the file, so the admin API can
 * rewrite just those parts and keep the rest of the file as it is. */
struct cfg_span {
    bool present;
    size_t start;   /* byte offset of the first character of the key */
    size_t end;     /* byte offset just past the last character of the value */
    size_t line;    /* 1-based line of the key */
};

struct config {
    char *path;                 /* file it came from ("<memory>" for strings) */
    uint64_t given;             /* keys the file gave (config_schema.h) */
    char **api_keys;
    size_t n_api_keys;
    char *admin_key;            /* NULL or "" = admin disabled */
    int max_retries;            /* default 1; <= 0 means 1 */
    int max_failures;           /* default 3; <= 0 means 3 */
    int recovery_interval;      /* seconds, default 30; <= 0 means 30 */
    int health_check_period;    /* seconds, default 60; <= 0 means 60 */
    /* (new) failover */
    int model_retries;          /* same-candidate retries of a transient failure, default 1 */
    int retry_after_max;        /* seconds of a 429's Retry-After waited out, default 5 */
    int request_timeout;        /* seconds until an answer is committed, default 0 = none */
    int first_token_timeout;    /* seconds to a stream's first content, default 0 = the provider's timeout */
    uint64_t continuation_max_bytes;   /* text kept to continue a broken stream, default 64 KiB */
    enum cfg_response_model response_model;   /* default alias */
    /* (new) clients */
    char **forward_headers;     /* client headers passed upstream beyond the built-in list */
    size_t n_forward_headers;
    char **trusted_proxies;     /* addresses whose X-Forwarded-For names the client */
    size_t n_trusted_proxies;
    uint64_t max_buffered_bytes;   /* request bodies and whole answers held at once, default 64 MiB */
    struct cfg_client_key *keys;   /* (new) named client keys */
    size_t n_keys;
    char *usage_file;           /* (new) where usage is kept across restarts, or NULL */
    /* (new) keys */
    char *listen;               /* address, NULL = all IPv4 and IPv6 */
    uint64_t max_body_bytes;    /* default 32 MiB; must be > 0 */
    int max_connections;        /* default 1024; must be > 0 */
    char *log_file;             /* default NULL (off) */
    uint64_t log_max_bytes;     /* rotate log_file past this size, default 10 MiB; > 0 */
    int log_ring_lines;         /* default 2000; >= 0 */
    int stream_idle_timeout;    /* seconds, default 120; must be > 0 */
    int max_cooldown;           /* seconds, default 300; must be > 0 */
    int probe_timeout;          /* seconds, default 15; must be > 0 */
    char *ca_file;              /* default NULL: system bundle / compiled in */
    char *resolv_conf;          /* default "/etc/resolv.conf" */
    char *hosts_file;           /* default "/etc/hosts" */
    struct cfg_provider *providers;
    size_t n_providers;
    struct cfg_span spans[CFG_MAX_KEYS];   /* per key of cfg_schema_top */
};

typedef void (*cfg_warn_fn)(void *ctx, const char *msg);

struct cfg_error {
    char msg[512];
};

/* Load and validate.  0 and *out, or -1 and err->msg.  warn (may be NULL)
 * receives one message per unknown key, "file:line:col: path: unknown key". */
int config_load_file(const char *path, struct config **out, struct cfg_error *err,
                     cfg_warn_fn warn, void *warn_ctx);
/* The same from memory; `name` stands for the file name in messages. */
int config_load_mem(const char *text, size_t len, const char *name, struct config **out,
                    struct cfg_error *err, cfg_warn_fn warn, void *warn_ctx);
void config_free(struct config *c);

/* Parse a base_url.  0, or -1 with a reason in err (cap bytes). */
int cfg_parse_url(const char *url, struct cfg_url *out, char *err, size_t cap);
void cfg_url_free(struct cfg_url *u);

/* The config's name of a probe kind ("chat", ...). */
const char *cfg_probe_name(enum cfg_probe k);
/* The span of the top-level key name in the file the config came from. */
const struct cfg_span *cfg_top_span(const struct config *c, const char *name);

/* The base URL of a dialect, or NULL when the provider has none. */
static inline const struct cfg_url *cfg_provider_url(const struct cfg_provider *p, enum dialect d)
{
    const struct cfg_url *u = d == DIALECT_ANTHROPIC ? &p->aurl : &p->url;
    return u->host ? u : NULL;
}

/* Effective failure threshold of a mapping. */
static inline int cfg_max_failures(const struct config *c, const struct cfg_mapping *m)
{
    return m->max_failures > 0 ? m->max_failures : c->max_failures;
}

#endif
