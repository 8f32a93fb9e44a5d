#include "billing.h"

#include <stdlib.h>
#include <string.h>

#include "accounting.h"
#include "log.h"
#include "util.h"

static struct {
    char *names[BILL_REFUSERS_MAX];
    size_t n;
} refusers;

static bool refused_before(const char *provider)
{
    for (size_t i = 0; i < refusers.n; i++)
        if (!strcmp(refusers.names[i], provider))
            return true;
    return false;
}

bool bill_inject_usage(const struct endpoint *ep, const struct reqbody *rb, const struct cfg_provider *prov)
{
    /* Only chat and completions streams have the usage-only last chunk;
     * the Responses API and Anthropic streams report usage anyway. */
    return rb->stream && !rb->wants_usage && ep->dialect == DIALECT_OPENAI && ep->end_rule == END_DONE &&
           !reqbody_is_form(rb) && prov->stream_usage && !refused_before(prov->name);
}

void bill_option_refused(const char *provider)
{
    if (refused_before(provider))
        return;
    log_warn("provider %s refuses stream_options.include_usage: its streams are sent without it from now on "
             "(their usage is counted only when the client asks for it; stream_usage: false says so up front)",
             provider);
    char *copy = refusers.n < BILL_REFUSERS_MAX ? strdup(provider) : NULL;
    if (copy)
        refusers.names[refusers.n++] = copy;
}

void bill_attempt(struct bill *b, const struct candidate *c, const struct att_outcome *o)
{
    bool success = o->kind == OUT_SUCCESS;
    if (!b->who || !(success || o->delivered))
        return;
    struct acct_who w = {
        .key = b->who->name, .alias = b->alias, .provider = c->prov->name, .upstream = c->map->upstream,
        .dialect = b->dialect, .state = b->who->state,
    };
    /* A continuation's second part is part of the same request: counted
     * once, with the tokens of both parts. */
    acct_charge(&w, o->has_usage ? &o->usage : NULL, !b->any, (int64_t)wall_ms());
    if (o->has_usage) {
        b->sum.prompt += o->usage.prompt;
        b->sum.completion += o->usage.completion;
        b->sum.cached += o->usage.cached;
        b->sum.total += o->usage.total;
    }
    b->any = true;
}

void bill_note(const struct bill *b, struct buf *note)
{
    if (!b->who)
        return;
    buf_append_str(note, " key=");
    buf_append_str(note, b->who->name);
    if (b->sum.total) {
        buf_append_str(note, " tokens=");
        buf_append_u64(note, b->sum.prompt);
        buf_append(note, "/", 1);
        buf_append_u64(note, b->sum.completion);
    }
}

void bill_free(void)
{
    for (size_t i = 0; i < refusers.n; i++)
        free(refusers.names[i]);
    refusers.n = 0;
}
