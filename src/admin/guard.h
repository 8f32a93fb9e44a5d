/* guard: the per-client budget of wrong admin keys.
 *
 * Every admin-key check counts here (X-API-Key on the admin API and
 * /internal/stats, the bearer of /metrics, the login): a client may get
 * GUARD_BURST keys wrong, then one more every GUARD_REFILL_MS; while its
 * budget is spent, every admin call from it is refused with 429, a right
 * key included (or a guesser could still tell a hit from a miss).  Clients
 * are counted by address, IPv6 by /64 (netaddr_group), the address being
 * the one a trusted proxy names. */
#ifndef AUTOSWITCH_GUARD_H
#define AUTOSWITCH_GUARD_H

#include <stdbool.h>

#define GUARD_BURST 10                        /* wrong keys a client may give at once */
#define GUARD_REFILL_MS (3600u * 1000u / 10)  /* one more every 6 minutes: 10 per hour */
#define GUARD_TABLE 1024                      /* clients remembered (the oldest forgotten) */

/* Whether client may try a key now; else *retry_s is when it may. */
bool guard_open(const char *client, unsigned *retry_s);
/* client gave a wrong key. */
void guard_failed(const char *client);

#endif
