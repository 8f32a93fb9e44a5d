/* config: openai_proxy.yaml -> struct config, with validation.
 *
 * Loaded with libyaml's event API and an explicit state stack.  The file
 * format is drop-in compatible with the reference project's
 * openai_proxy.yaml; keys marked (new) are ours.  Every string scalar
 * expands ${VAR} and ${VAR:-default} from the environment; an unset VAR
 * without a default is an error.  Errors name file:line:column and the key
 * path, e.g. "conf/x.yaml:12:7: providers[1].model_mappings[0]: upstream is
 * required".  Unknown keys are warnings, never errors.  A config is
 * immutable once loaded; a reload loads a new one. */
#ifndef AUTOSWITCH_CONFIG_H
#define AUTOSWITCH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_MAX_DEPTH 32            /* YAML nesting accepted */
#define CFG_MAX_FILE_BYTES (4u << 20)

enum cfg_probe { CFG_PROBE_CHAT = 0, CFG_PROBE_EMBEDDINGS, CFG_PROBE_MODELS, CFG_PROBE_NONE };

/* How a mapping continues a stream that broke on another candidate. */
enum cfg_continuation {
    CFG_CONT_NONE = 0,
    CFG_CONT_PREFILL,
    CFG_CONT_PREFIX,
    CFG_CONT_CONTINUE_FINAL,
    CFG_CONT_REPLAY,
};

struct health_entry;   /* owned by the health module, linked after load */
struct stat_entry;

struct cfg_url {
    bool https;
    char *host;        /* without brackets for IPv6 literals */
    uint16_t port;     /* default 80 / 443 */
    char *prefix;      /* path before /v1, "" or "/api"; no trailing '/' */
    char *authority;   /* Host header value: "host", "host:8080", "[::1]:8080" */
};

struct cfg_mapping {
    char *upstream;           /* required */
    char *alias;              /* default: upstream */
    int priority;             /* default 0 */
    int weight;               /* default 1; 0 means 1 (reference); < 0 is an error */
    int max_failures;         /* 0 = use the global value; < 0 is an error */
    enum cfg_probe probe;     /* (new) default chat */
    enum cfg_continuation continuation;   /* (new) default none */
    struct health_entry *health;  /* runtime links, NULL after load */
    struct stat_entry *stat;
};

struct cfg_provider {
    char *name;               /* required, unique */
    char *base_url;           /* required, http:// or https:// */
    char *api_key;            /* may be "" */
    char *api_key_raw;        /* text before ${} expansion, NULL if none */
    char *base_url_raw;
    int weight;               /* default 1; 0 means 1; < 0 error */
    int priority;             /* default 0 */
    int timeout;              /* seconds, default 60; <= 0 means 60 */
    char *ca_file;            /* (new) PEM bundle for this provider, or NULL */
    char **exclude_params;
    size_t n_exclude;
    struct cfg_mapping *mappings;
    size_t n_mappings;
    struct cfg_url url;
};

/* Top-level keys whose position in the file is remembered, so the admin
 * API can rewrite just those parts and keep the rest of the file as is. */
enum cfg_top_key {
    CFG_TOP_PROVIDERS,
    CFG_TOP_MAX_RETRIES,
    CFG_TOP_MAX_FAILURES,
    CFG_TOP_RECOVERY_INTERVAL,
    CFG_TOP_HEALTH_CHECK_PERIOD,
    CFG_TOP__COUNT
};

struct cfg_span {
    bool present;
    size_t start;   /* byte offset of the first character of the key */
    size_t end;     /* byte offset just past the last character of the value */
    size_t line;    /* 1-based line of the key */
};

struct config {
    char *path;                 /* file it came from ("<memory>" for strings) */
    char **api_keys;
    size_t n_api_keys;
    char *admin_key;            /* NULL or "" = admin disabled */
    int max_retries;            /* default 1; <= 0 means 1 */
    int max_failures;           /* default 3; <= 0 means 3 */
    int recovery_interval;      /* seconds, default 30; <= 0 means 30 */
    int health_check_period;    /* seconds, default 60; <= 0 means 60 */
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
    struct cfg_span spans[CFG_TOP__COUNT];
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

/* Effective failure threshold of a mapping. */
static inline int cfg_max_failures(const struct config *c, const struct cfg_mapping *m)
{
    return m->max_failures > 0 ? m->max_failures : c->max_failures;
}

#endif
