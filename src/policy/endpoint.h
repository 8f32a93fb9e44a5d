/* endpoint: the proxied API routes and what each one is, named once.
 *
 * The router serves exactly these paths (POST) through the proxy; the
 * proxy reads how to treat each request from here; health keeps its
 * failure counts per class, so a route that a model does not serve (a
 * chat alias sent to /v1/audio/speech answering 404) takes only that
 * class of the model out of rotation. */
#ifndef AUTOSWITCH_ENDPOINT_H
#define AUTOSWITCH_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "attempt.h"
#include "event.h"

/* Health is counted per (provider, upstream, class). */
enum ep_class {
    EPC_CHAT,          /* chat/completions, completions, responses */
    EPC_EMBEDDINGS,
    EPC_AUDIO,
    EPC_IMAGES,
    EPC_MODERATIONS,
    EPC_MESSAGES,      /* Anthropic /v1/messages */
    EPC__COUNT
};

struct endpoint {
    const char *path;
    enum dialect dialect;
    enum ep_class cls;
    bool needs_messages;    /* "messages is required" */
    enum att_end_rule end_rule;   /* what a complete stream ends with */
    bool form;              /* also takes multipart/form-data (a file upload) */
    bool continuable;       /* a broken stream can go on elsewhere (a "messages" array to prefill) */
    bool not_found_passes;  /* a 404 is this route's own answer (count_tokens) */
};

/* The endpoint served at path[0, len), or NULL. */
const struct endpoint *endpoint_find(const char *path, size_t len);
const char *endpoint_class_name(enum ep_class c);

#endif
