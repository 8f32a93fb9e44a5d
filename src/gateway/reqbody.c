#include "reqbody.h"

#include <string.h>

#include "budget.h"
#include "reply.h"
#include "util.h"

static int check_model(struct conn *c, const struct endpoint *ep, const char *model, size_t len)
{
    if (len > MODEL_NAME_MAX || len != strlen(model) || strpbrk(model, "\r\n")) {
        reply_api_error(c, ep->dialect, 400, "invalid_request_error", NULL,
                        "model must be a name of at most %d bytes without NUL or line breaks", MODEL_NAME_MAX);
        return -1;
    }
    return 0;
}

static int bad(struct conn *c, const struct endpoint *ep, const char *msg)
{
    reply_api_error(c, ep->dialect, 400, "invalid_request_error", NULL, "%s", msg);
    return -1;
}

/* The top-level members the proxy reads, found in one walk over the
 * body (each json_get would walk it again). */
enum member { M_MODEL, M_STREAM, M_MESSAGES, M_STREAM_OPTIONS, M__COUNT };
static const char *const member_names[M__COUNT] = { "model", "stream", "messages", "stream_options" };

struct members {
    struct json_val val[M__COUNT];   /* the first of each; JSON_INVALID when absent */
    int count[M__COUNT];
};

static void find_members(const char *b, struct json_val root, struct members *m)
{
    memset(m, 0, sizeof *m);
    struct json_iter it;
    struct json_val k, v;
    json_iter_init(&it, b, root);
    while (json_iter_member(&it, &k, &v) == 1)
        for (int i = 0; i < M__COUNT; i++)
            if (json_str_eq(b, k, member_names[i], strlen(member_names[i]))) {
                if (!m->count[i]++)
                    m->val[i] = v;
                break;
            }
}

static int read_json(struct reqbody *rb, struct conn *c, const struct endpoint *ep, char *model)
{
    const char *b = buf_len(&rb->body) ? buf_head(&rb->body) : "";
    size_t n = buf_len(&rb->body);
    struct json_error err;
    if (json_parse(b, n, &rb->root, &err) < 0) {
        reply_api_error(c, ep->dialect, 400, "invalid_request_error", NULL, "invalid JSON body: %s at byte %zu",
                        err.msg, err.offset);
        return -1;
    }
    if (rb->root.type != JSON_OBJECT)
        return bad(c, ep, "the request body must be a JSON object");
    struct members m;
    find_members(b, rb->root, &m);
    /* JSON parsers disagree on which of two equal keys wins (ours took the
     * first, many servers take the last): a body that gives the model or
     * stream twice means two things and is refused. */
    for (int i = M_MODEL; i <= M_STREAM; i++)
        if (m.count[i] > 1) {
            reply_api_error(c, ep->dialect, 400, "invalid_request_error", NULL,
                            "the body gives \"%s\" more than once: refused, as readers disagree on which counts",
                            member_names[i]);
            return -1;
        }
    struct json_val v = m.val[M_MODEL];
    if (v.type != JSON_STRING || v.end - v.start <= 2)
        return bad(c, ep, "model is required");
    if (check_model(c, ep, model, json_str_decode(b, v, model, MODEL_NAME_MAX + 1)) < 0)
        return -1;
    v = m.val[M_MESSAGES];
    if (ep->needs_messages && (v.type != JSON_ARRAY || json_is_empty(b, v)))
        return bad(c, ep, "messages is required");
    rb->stream = m.val[M_STREAM].type == JSON_TRUE;
    struct json_val inc;
    v = m.val[M_STREAM_OPTIONS];
    rb->wants_usage = v.type == JSON_OBJECT && json_get(b, v, "include_usage", &inc) && inc.type == JSON_TRUE;
    return 0;
}

/* A file upload (audio, an image to edit): the model is a form field. */
static int read_form(struct reqbody *rb, struct conn *c, const struct endpoint *ep, const char *boundary,
                     char *model)
{
    static const char *const names[] = { "model", "stream" };
    struct mp_field fields[2];
    const char *why;
    const char *b = buf_len(&rb->body) ? buf_head(&rb->body) : "";
    if (multipart_scan(b, buf_len(&rb->body), boundary, names, 2, fields, &why) < 0) {
        reply_api_error(c, ep->dialect, 400, "invalid_request_error", NULL, "invalid multipart body: %s", why);
        return -1;
    }
    for (size_t i = 0; i < 2; i++)
        if (fields[i].count > 1) {
            reply_api_error(c, ep->dialect, 400, "invalid_request_error", NULL,
                            "the form gives \"%s\" more than once: refused, as readers disagree on which counts",
                            names[i]);
            return -1;
        }
    if (!fields[0].found || fields[0].end == fields[0].start)
        return bad(c, ep, "model is required");
    size_t len = fields[0].end - fields[0].start;
    if (len <= MODEL_NAME_MAX) {
        memcpy(model, b + fields[0].start, len);
        model[len] = '\0';
    }
    if (check_model(c, ep, model, len) < 0)
        return -1;
    rb->form_model = fields[0];
    rb->stream = fields[1].found && mem_eq(b + fields[1].start, fields[1].end - fields[1].start, "true");
    return 0;
}

int reqbody_read(struct reqbody *rb, struct conn *c, struct request *r, const struct endpoint *ep, char *model)
{
    memset(rb, 0, sizeof *rb);
    rb->body = r->body;   /* take the body: read once, kept for retries */
    memset(&r->body, 0, sizeof r->body);
    rb->charge = r->body_charge;
    r->body_charge = 0;
    const struct hp_header *ct = hp_find(r->hp.headers, r->hp.num_headers, "content-type");
    bool form = ep->form && ct && ct->value_len >= 10 && mem_ieq(ct->value, 10, "multipart/");
    if (!form)
        return read_json(rb, c, ep, model);
    char boundary[MP_BOUNDARY_MAX + 1];
    if (multipart_boundary(ct->value, ct->value_len, boundary, sizeof boundary) < 0)
        return bad(c, ep, "invalid multipart body: the Content-Type must be multipart/form-data with a valid boundary");
    buf_append(&rb->form_ctype, ct->value, ct->value_len);
    return read_form(rb, c, ep, boundary, model);
}

void reqbody_free(struct reqbody *rb)
{
    budget_sub(rb->charge);
    rb->charge = 0;
    buf_free(&rb->body);
    buf_free(&rb->form_ctype);
}

bool reqbody_is_form(const struct reqbody *rb)
{
    return buf_len(&rb->form_ctype) > 0;
}
