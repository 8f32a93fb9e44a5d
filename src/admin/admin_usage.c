/* GET /api/admin/usage?from=YYYY-MM-DD&to=YYYY-MM-DD: the usage rows of
 * those days (both optional, inclusive), in the admin envelope:
 * {"rows":[{"day","key","alias","provider","upstream","dialect",
 * "requests","prompt_tokens","completion_tokens","cached_tokens",
 * "total_tokens"}]}. */
#include <stdlib.h>
#include <string.h>

#include "accounting.h"
#include "admin.h"
#include "json.h"
#include "reply.h"
#include "usage.h"
#include "util.h"

#define NO_STORE "Cache-Control: no-store\r\n"

/* A day parameter: absent (NULL), or YYYY-MM-DD copied to out. */
static int day_param(const struct request *r, const char *name, char out[USAGE_DAY_LEN + 1], const char **day)
{
    size_t len;
    const char *v = request_query_param(r, name, &len);
    *day = NULL;
    if (!v || !len)
        return 0;
    if (len != USAGE_DAY_LEN || date_days(v, len) < 0)
        return -1;
    memcpy(out, v, USAGE_DAY_LEN);
    out[USAGE_DAY_LEN] = '\0';
    *day = out;
    return 0;
}

static void row_json(struct buf *b, const struct usage_row *row)
{
    static const char *const names[USAGE_NAMES] = { "key", "alias", "provider", "upstream" };
    buf_printf(b, "{\"day\":\"%s\"", row->day);
    for (int i = 0; i < USAGE_NAMES; i++) {
        buf_printf(b, ",\"%s\":", names[i]);
        json_append_str(b, row->name[i], row->len[i]);
    }
    buf_printf(b,
               ",\"dialect\":\"%s\",\"requests\":%llu,\"prompt_tokens\":%llu,\"completion_tokens\":%llu,"
               "\"cached_tokens\":%llu,\"total_tokens\":%llu}",
               row->dialect == USAGE_ANTHROPIC ? "anthropic" : "openai", (unsigned long long)row->n.requests,
               (unsigned long long)row->n.prompt_tokens, (unsigned long long)row->n.completion_tokens,
               (unsigned long long)row->n.cached_tokens, (unsigned long long)row->n.total_tokens);
}

void admin_usage_get(struct conn *c, struct request *r, struct snapshot *s)
{
    (void)s;
    char from_buf[USAGE_DAY_LEN + 1], to_buf[USAGE_DAY_LEN + 1];
    const char *from, *to;
    if (day_param(r, "from", from_buf, &from) < 0 || day_param(r, "to", to_buf, &to) < 0) {
        reply_envelope(c, 400, "from and to must be dates, YYYY-MM-DD", NULL, NO_STORE);
        return;
    }
    const struct usage_row **rows = NULL;
    size_t n = 0;
    if (usage_query(acct_store(), from, to, &rows, &n) < 0) {
        reply_envelope(c, 503, "out of memory", NULL, NO_STORE);
        return;
    }
    struct buf b = BUF_INIT;
    buf_append_str(&b, "{\"rows\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_append(&b, ",", 1);
        row_json(&b, rows[i]);
    }
    buf_append_str(&b, "]}");
    free(rows);
    if (buf_failed(&b))
        reply_envelope(c, 503, "out of memory", NULL, NO_STORE);
    else
        reply_envelope(c, 200, "ok", &b, NO_STORE);
    buf_free(&b);
}
