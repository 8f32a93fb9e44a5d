/* proxy: one client request's life through the upstreams.
 *
 * Validate and parse the body once; plan the attempts (balance); for each
 * attempt rewrite the body, send it (client), and judge the answer by the
 * failure table in the README: fail over, pass the answer through, or
 * deliver it.  Non-stream answers are read whole, so any failure before
 * the last byte is still a failover.  Streams are read ahead until the
 * first event with real content (or PROXY_PREREAD_EVENTS events) before
 * anything is sent: an error event, an empty stream or a cut-off before
 * that point is a failover too.  After that the stream is committed and
 * passes through event by event; a failure then ends it with an SSE
 * error event.  A slow client pauses the upstream (backpressure); a client
 * that leaves closes the upstream connection at once, without counting
 * against the upstream's health. */
#ifndef AUTOSWITCH_PROXY_H
#define AUTOSWITCH_PROXY_H

#include "server.h"
#include "snapshot.h"

#define PROXY_PREREAD_EVENTS 3                 /* data events read ahead at most */
#define PROXY_PREREAD_MAX_BYTES (64u * 1024)   /* bytes read ahead at most */
#define PROXY_MAX_RESPONSE_BYTES (64u << 20)   /* a non-stream answer larger than this fails */
#define PROXY_ERROR_BODY_MAX 8192              /* bytes of a failed answer kept for the log */
#define PROXY_MAX_COOLDOWN_DEFAULT_MS 300000

void proxy_handle(struct conn *c, struct request *r, struct snapshot *s);

#endif
