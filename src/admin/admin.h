/* admin: the admin API (reference-compatible envelope), /internal/stats
 * and /metrics.  Every call needs the admin_key (X-API-Key, or Bearer for
 * /metrics), compared in constant time; without an admin_key in the
 * config the admin surface is disabled (403). */
#ifndef AUTOSWITCH_ADMIN_H
#define AUTOSWITCH_ADMIN_H

#include <stdbool.h>

#include "server.h"
#include "snapshot.h"

/* What the admin API needs from the application above it (main sets it:
 * the admin layer never calls up). */
struct admin_host {
    const char *(*config_path)(void);
    /* Load the config file again and make it current; 0, or -1 and err. */
    int (*reload)(const char *why, char *err, size_t cap);
};
void admin_set_host(const struct admin_host *h);
const struct admin_host *admin_host(void);

/* How a route proves it is the admin: X-API-Key, Authorization: Bearer
 * (/metrics, for Prometheus), or the key in the body (login). */
enum admin_auth { ADMIN_KEY_HEADER, ADMIN_BEARER, ADMIN_LOGIN };

/* The head-phase check the router runs before any body is read: the
 * admin surface is enabled and the key is right.  false after answering
 * (403 disabled, 401). */
bool admin_authorize(struct conn *c, const struct request *r, const struct config *cfg, enum admin_auth how);

void admin_stats(struct conn *c, struct request *r, struct snapshot *s);
void admin_metrics(struct conn *c, struct request *r, struct snapshot *s);
void admin_health(struct conn *c, struct request *r, struct snapshot *s);
void admin_login(struct conn *c, struct request *r, struct snapshot *s);
void admin_config_get(struct conn *c, struct request *r, struct snapshot *s);
void admin_config_post(struct conn *c, struct request *r, struct snapshot *s);
/* Save the admin keys a JSON object gives (as POST /api/admin/config
 * does) and reload.  200, or the status to answer with err. */
int admin_config_apply(const char *json, size_t len, const struct snapshot *s, const char *who, char *err,
                       size_t cap);
void admin_keys_get(struct conn *c, struct request *r, struct snapshot *s);
void admin_keys_create(struct conn *c, struct request *r, struct snapshot *s);
void admin_keys_change(struct conn *c, struct request *r, struct snapshot *s);
void admin_keys_delete(struct conn *c, struct request *r, struct snapshot *s);
void admin_usage_get(struct conn *c, struct request *r, struct snapshot *s);
void admin_logs_get(struct conn *c, struct request *r, struct snapshot *s);
void admin_logs_delete(struct conn *c, struct request *r, struct snapshot *s);

#endif
