/* models: GET /v1/models and GET /v1/models/{id}, the aliases of the
 * current config in OpenAI's list shape. */
#ifndef AUTOSWITCH_MODELS_H
#define AUTOSWITCH_MODELS_H

#include "server.h"
#include "snapshot.h"

void models_list(struct conn *c, struct request *r, struct snapshot *s);
void models_get(struct conn *c, struct request *r, struct snapshot *s);

#endif
