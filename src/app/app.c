#include "app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "dns.h"
#include "log.h"
#include "counters.h"
#include "server.h"
#include "snapshot.h"
#include "tls.h"

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

void app_apply_settings(const struct config *cfg)
{
    if (log_configure((size_t)cfg->log_ring_lines, cfg->log_file, cfg->log_max_bytes) < 0)
        log_error("log_file %s: cannot open, logging to stdout only", cfg->log_file);
    server_set_limits(cfg->max_body_bytes, cfg->max_connections);
    budget_set_limit(cfg->max_buffered_bytes);
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
