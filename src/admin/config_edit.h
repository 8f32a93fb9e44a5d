/* config_edit: the admin API's JSON written back as YAML, through the
 * schema tables (config_schema.h).
 *
 * For each admin key (CFG_K_ADMIN) of the top level that the JSON gives,
 * the YAML text of that key (the whole providers block, or "key: value")
 * is made here; admin_config.c splices it into the file.  What the page
 * typed is never expanded: every "$" is written "$$".  A value that comes
 * back exactly as the running config's file text (a ${VAR} reference
 * shown by the view) is written back as it was.  A masked secret keeps the
 * running value, but only while every URL of its object (CFG_K_URL) keeps
 * its scheme, host and port: a secret is never sent somewhere new without
 * being typed again. */
#ifndef AUTOSWITCH_CONFIG_EDIT_H
#define AUTOSWITCH_CONFIG_EDIT_H

#include "buf.h"
#include "config.h"
#include "json.h"

#define EDIT_ERR_MAX 640

struct config_edit {
    const char *text;                      /* the JSON body */
    const struct config *running;          /* for masked secrets and unchanged references */
    struct buf yaml[CFG_MAX_KEYS];         /* per top-level key: its new text, or empty */
    char err[EDIT_ERR_MAX];
};

/* Build the YAML of every admin key root gives.  0, or -1 with e->err. */
int config_edit_build(struct config_edit *e, struct json_val root);
void config_edit_free(struct config_edit *e);

#endif
