/* ui: the admin web page, embedded at build time (scripts/embed_ui.sh)
 * and served with an ETag (304 on If-None-Match), gzip when the client
 * takes it and the build stored a smaller copy, and a strict
 * Content-Security-Policy. */
#ifndef AUTOSWITCH_UI_H
#define AUTOSWITCH_UI_H

#include <stdbool.h>

#include "server.h"

/* Answer GET/HEAD for an embedded file; false when path is not one. */
bool ui_serve(struct conn *c, struct request *r);

#endif
