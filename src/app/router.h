/* router: the route table, and the server's handlers.
 *
 * head(): the route and the caller's credentials are decided from the
 * request head alone, before a byte of the body is read; unknown paths,
 * wrong methods and bad keys are answered there (and the body never
 * read).  Each route says how large a body it takes.  serve(): the
 * route's handler, with the config snapshot pinned at head() time, so a
 * reload while a body uploads cannot change the rules under it. */
#ifndef AUTOSWITCH_ROUTER_H
#define AUTOSWITCH_ROUTER_H

#include "server.h"

#define ROUTER_SMALL_BODY (64u * 1024)   /* routes that take no real body */
#define ROUTER_LOGIN_BODY 4096           /* {"api_key": "..."} */

extern const struct server_handlers router_handlers;

#endif
