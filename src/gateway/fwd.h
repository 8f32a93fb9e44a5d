/* fwd: which of a client's header fields reach an upstream.
 *
 * An allow-list, not a deny-list: a field passes when the dialect needs
 * it and it cannot be turned against the operator (README, "Headers"),
 * or when the config's forward_headers (global or the provider's) name
 * it.  Credentials, cookies, account selectors (OpenAI-Organization,
 * OpenAI-Project), forwarding headers and any other X-* stay behind: a
 * client must not be able to make an upstream answer 401 and take a
 * provider out of rotation for everyone.  Hop-by-hop fields never pass. */
#ifndef AUTOSWITCH_FWD_H
#define AUTOSWITCH_FWD_H

#include "buf.h"
#include "config.h"
#include "event.h"
#include "server.h"

#define FWD_ANTHROPIC_VERSION "2023-06-01"   /* sent when the client gives none */

/* Append "Name: value\r\n" for each field of r that may reach prov. */
void fwd_headers(struct buf *out, const struct request *r, enum dialect d, const struct config *cfg,
                 const struct cfg_provider *prov, bool stream);

#endif
