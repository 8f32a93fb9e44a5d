#include "reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "apierr.h"
#include "json.h"

void reply_error_json(struct buf *out, const char *message, const char *type, const char *code)
{
    apierr_json(out, DIALECT_OPENAI, 0, type, code, message);
}

void reply_error(struct conn *c, int status, const char *type, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct buf b = BUF_INIT;
    reply_error_json(&b, msg, type, code);
    buf_append(&b, "\n", 1);
    conn_respond(c, status, "application/json", NULL, buf_head(&b), buf_len(&b));
    buf_free(&b);
}

void reply_api_error(struct conn *c, enum dialect d, int status, const char *type, const char *code,
                     const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct buf b = BUF_INIT;
    apierr_json(&b, d, status, type, code, msg);
    buf_append(&b, "\n", 1);
    conn_respond(c, status, "application/json", NULL, buf_head(&b), buf_len(&b));
    buf_free(&b);
}

void reply_json(struct conn *c, int status, const struct buf *body, const char *extra_headers)
{
    conn_respond(c, status, "application/json", extra_headers, buf_head(body), buf_len(body));
}

void reply_envelope(struct conn *c, int status, const char *message, const struct buf *data_json,
                    const char *extra_headers)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "{\"code\":%d,\"message\":", status);
    json_append_str(&b, message, strlen(message));
    buf_append_str(&b, ",\"data\":");
    if (data_json && buf_len(data_json))
        buf_append(&b, buf_head(data_json), buf_len(data_json));
    else
        buf_append_str(&b, "[]");
    buf_append_str(&b, "}\n");
    conn_respond(c, status, "application/json", extra_headers, buf_head(&b), buf_len(&b));
    buf_free(&b);
}
