#include "apierr.h"

#include <string.h>

#include "json.h"

const char *apierr_anthropic_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default: return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
    }
}

void apierr_json(struct buf *out, enum dialect d, int status, const char *type, const char *code,
                 const char *message)
{
    if (d == DIALECT_ANTHROPIC) {
        buf_append_str(out, "{\"type\":\"error\",\"error\":{\"type\":\"");
        buf_append_str(out, apierr_anthropic_type(status));
        buf_append_str(out, "\",\"message\":");
        json_append_str(out, message, strlen(message));
        buf_append_str(out, "}}");
        return;
    }
    buf_append_str(out, "{\"error\":{\"message\":");
    json_append_str(out, message, strlen(message));
    if (!type)
        type = "invalid_request_error";
    buf_append_str(out, ",\"type\":");
    json_append_str(out, type, strlen(type));
    buf_append_str(out, ",\"param\":null,\"code\":");
    if (code)
        json_append_str(out, code, strlen(code));
    else
        buf_append_str(out, "null");
    buf_append_str(out, "}}");
}

void apierr_event(struct buf *out, enum dialect d, const char *message)
{
    if (d == DIALECT_ANTHROPIC)
        buf_append_str(out, "event: error\ndata: ");
    else
        buf_append_str(out, "data: ");
    apierr_json(out, d, 502, "upstream_error", NULL, message);
    buf_append_str(out, "\n\n");
}
