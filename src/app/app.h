/* app: loading, applying and reloading the configuration at run time. */
#ifndef AUTOSWITCH_APP_H
#define AUTOSWITCH_APP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Path of the config file in use. */
const char *app_config_path(void);
void app_set_config_path(const char *path);

/* Load the file and make it current.  On failure nothing changes, the
 * error (file:line:column) is logged and copied to err.  0 or -1. */
int app_reload(const char *why, char *err, size_t cap);

/* Apply the settings of the current config that live outside the
 * snapshot (log ring size and file, server limits). */
void app_apply_settings(const struct config *cfg);

/* Raise the soft descriptor limit to the hard one (at most a sane cap),
 * once at start; the limit now.  max_connections follows it by default. */
uint64_t app_raise_nofile(void);

/* Log one warning line (unknown keys) during a load. */
void app_log_warning(void *ctx, const char *msg);

#endif
