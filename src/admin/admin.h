/* admin: the admin API (reference-compatible envelope), /internal/stats
 * and /metrics.  Every call needs the admin_key (X-API-Key, or Bearer for
 * /metrics), compared in constant time; without an admin_key in the
 * config the admin surface is disabled (403). */
#ifndef AUTOSWITCH_ADMIN_H
#define AUTOSWITCH_ADMIN_H

#include "server.h"
#include "snapshot.h"

void admin_stats(struct conn *c, struct request *r, struct snapshot *s);
void admin_metrics(struct conn *c, struct request *r, struct snapshot *s);
void admin_health(struct conn *c, struct request *r, struct snapshot *s);
void admin_login(struct conn *c, struct request *r, struct snapshot *s);
void admin_config_get(struct conn *c, struct request *r, struct snapshot *s);
void admin_config_post(struct conn *c, struct request *r, struct snapshot *s);
void admin_logs_get(struct conn *c, struct request *r, struct snapshot *s);
void admin_logs_delete(struct conn *c, struct request *r, struct snapshot *s);

#endif
