/* reqbody: what the proxy needs from a request body, read once.
 *
 * A JSON body (every endpoint) or a multipart/form-data upload (the
 * endpoints that take files): the model, whether it asks for a stream,
 * and where the model is, so each attempt can replace it as a span edit.
 * A body that cannot be served is answered here (400 with the reason, in
 * the route's dialect). */
#ifndef AUTOSWITCH_REQBODY_H
#define AUTOSWITCH_REQBODY_H

#include <stdbool.h>

#include "buf.h"
#include "endpoint.h"
#include "json.h"
#include "multipart.h"
#include "server.h"

#define MODEL_NAME_MAX 511

struct reqbody {
    struct buf body;               /* taken from the request: read once, kept for retries */
    uint64_t charge;               /* ... with its count in the budget (budget.h) */
    bool stream;
    bool wants_usage;              /* stream_options.include_usage: true (the client reads the usage chunk) */
    struct json_val root;          /* a JSON body: its top-level object */
    struct buf form_ctype;         /* a multipart body: the client's Content-Type ... */
    struct mp_field form_model;    /* ... and where its model field's value is */
};

/* Parse r's body for ep (taking the body out of r); the model it names
 * goes to model (MODEL_NAME_MAX + 1 bytes: the caller's, as it is needed
 * only to pick the alias).  0, or -1 after answering the client. */
int reqbody_read(struct reqbody *rb, struct conn *c, struct request *r, const struct endpoint *ep, char *model);
void reqbody_free(struct reqbody *rb);
bool reqbody_is_form(const struct reqbody *rb);

#endif
