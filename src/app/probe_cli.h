/* probe_cli: `autoswitch --probe`, a health check for containers (a
 * scratch image has no curl).
 *
 * A separate process mode, not part of the server loop, so it blocks:
 * GET http://127.0.0.1:PORT/healthz (falling back to [::1] when IPv4
 * refuses), at most PROBE_CLI_TIMEOUT_MS in all. */
#ifndef AUTOSWITCH_PROBE_CLI_H
#define AUTOSWITCH_PROBE_CLI_H

#define PROBE_CLI_TIMEOUT_MS 2000

/* 0 when the answer is 200, else 1 with the reason on stderr. */
int probe_cli(int port);

#endif
