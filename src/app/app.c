#include "app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "accounting.h"
#include "budget.h"
#include "dns.h"
#include "log.h"
#include "counters.h"
#include "server.h"
#include "snapshot.h"
#include "tls.h"
#include "util.h"

static char *config_path;

const char *app_config_path(void)
{
    return config_path;
}

void app_set_config_path(const char *path)
{
    free(config_path);
    config_path = path ? strdup(path) : NULL;
}

void app_log_warning(void *ctx, const char *msg)
{
    (void)ctx;
    log_warn("config: %s", msg);
}

#define ADMIN_KEY_MIN 16   /* shorter admin keys fall to guessing too easily */
#define NOFILE_CAP 262144  /* descriptors asked for at most */
#define NOFILE_RESERVE 64  /* listener, signals, DNS, log, config, a few spares */
#define AUTO_CONNECTIONS_MAX 65536   /* max_connections by default: at most this many */

static uint64_t nofile = 1024;   /* the descriptor limit after app_raise_nofile */

uint64_t app_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return nofile;
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > NOFILE_CAP ? NOFILE_CAP : rl.rlim_max;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want) {
        nofile = rl.rlim_cur == RLIM_INFINITY ? NOFILE_CAP : (uint64_t)rl.rlim_cur;
        return nofile;
    }
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        log_warn("could not raise the descriptor limit to %llu: %s", (unsigned long long)want, strerror(errno));
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        nofile = rl.rlim_cur == RLIM_INFINITY ? NOFILE_CAP : (uint64_t)rl.rlim_cur;
    return nofile;
}

/* max_connections when the file gives none: each client of a stream holds
 * two descriptors (its own and its upstream's), so about half the limit. */
static int connections(const struct config *cfg)
{
    if (cfg_key_given(&cfg_schema_top, cfg, cfg_key_find(&cfg_schema_top, "max_connections")))
        return cfg->max_connections;
    uint64_t n = nofile > NOFILE_RESERVE * 2 ? (nofile - NOFILE_RESERVE) / 2 : 16;
    return (int)(n > AUTO_CONNECTIONS_MAX ? AUTO_CONNECTIONS_MAX : n);
}

void app_apply_settings(const struct config *cfg)
{
    if (cfg->admin_key && cfg->admin_key[0] && strlen(cfg->admin_key) < ADMIN_KEY_MIN)
        log_warn("admin_key is shorter than %d characters: use a long random one (the admin API can change the "
                 "providers and their keys)", ADMIN_KEY_MIN);
    if (log_configure((size_t)cfg->log_ring_lines, cfg->log_file, cfg->log_max_bytes) < 0)
        log_error("log_file %s: cannot open, logging to stdout only", cfg->log_file);
    int conns = connections(cfg);
    server_set_limits(cfg->max_body_bytes, conns);
    if ((uint64_t)conns * 2 + NOFILE_RESERVE > nofile)
        log_warn("the descriptor limit (%llu) cannot hold max_connections (%d) and an upstream connection each: "
                 "raise it (ulimit -n, LimitNOFILE=) or lower max_connections",
                 (unsigned long long)nofile, conns);
    budget_set_limit(cfg->max_buffered_bytes);
    acct_configure(cfg->usage_file, cfg, (int64_t)wall_ms());
    acct_flush();   /* a reload is a moment a person may look at the file */
    if (dns_configure(cfg->resolv_conf, cfg->hosts_file) < 0)
        log_warn("dns: cannot read %s / %s, keeping the previous resolver settings", cfg->resolv_conf,
                 cfg->hosts_file);
}

int app_reload(const char *why, char *err, size_t cap)
{
    struct config *cfg = NULL;
    struct cfg_error e;
    if (config_load_file(config_path, &cfg, &e, app_log_warning, NULL) < 0) {
        counters.reload_failures++;
        log_error("reload (%s) failed, keeping the running config: %s", why, e.msg);
        if (err)
            snprintf(err, cap, "%s", e.msg);
        return -1;
    }
    struct snapshot *old = snapshot_current();
    if (old && ((old->cfg->listen == NULL) != (cfg->listen == NULL) ||
                (old->cfg->listen && strcmp(old->cfg->listen, cfg->listen) != 0)))
        log_warn("reload: a new listen address takes effect after a restart");
    struct snapshot *s = snapshot_new(cfg);
    if (!s) {
        counters.reload_failures++;
        log_error("reload (%s) failed: out of memory", why);
        if (err)
            snprintf(err, cap, "out of memory");
        return -1;
    }
    snapshot_install(s);
    tls_forget();   /* a changed CA bundle is read again on next use */
    app_apply_settings(s->cfg);
    counters.reloads++;
    log_info("config reloaded (%s): %zu providers, %zu aliases, %zu on /v1/messages", why, s->cfg->n_providers,
             s->idx[DIALECT_OPENAI].n, s->idx[DIALECT_ANTHROPIC].n);
    return 0;
}
