/* config_view: a loaded config as the admin API shows it (JSON), walked
 * through the schema tables (config_schema.h).
 *
 * Only keys marked CFG_K_ADMIN are shown; a key marked CFG_K_INHERIT only
 * when its object gave it.  Strings are shown as the file wrote them (a
 * ${VAR} reference stays a reference: the admin API never reads the
 * environment).  Secrets (CFG_K_SECRET) are masked ("sk-…abcd"), unless
 * they are a ${VAR} reference, which is not a secret. */
#ifndef AUTOSWITCH_CONFIG_VIEW_H
#define AUTOSWITCH_CONFIG_VIEW_H

#include <stdbool.h>

#include "buf.h"
#include "config.h"
#include "config_schema.h"

#define MASK_ELLIPSIS "\xe2\x80\xa6"   /* what marks a masked value */

/* Append the JSON object of cfg's admin keys. */
void config_view_json(struct buf *out, const struct config *cfg);
/* Append one object of schema s (a provider, a client key) the same way. */
void config_view_object(struct buf *out, const struct cfg_schema *s, const void *obj);
/* "sk-…abcd": enough to recognise a key, never enough to use it. */
void config_mask(const char *secret, struct buf *out);
/* Whether a value that came back from the page is a masked one. */
bool config_is_masked(const char *s);

#endif
