/* The client keys in Prometheus: what each key used and how it was
 * answered.  Tokens come from the accounting's since-start series (the
 * kept days would make a counter go down when the oldest is dropped). */
#include "metrics.h"

#include "accounting.h"
#include "counters.h"
#include "keys.h"
#include "util.h"

static void tokens(struct buf *b)
{
    static const char *const types[] = { "prompt", "completion", "cached" };
    metrics_help(b, "autoswitch_tokens_total", "counter",
                 "Tokens the upstreams reported, by client key, alias, provider and type.");
    for (size_t i = 0; i < ACCT_BUCKETS; i++)
        for (const struct acct_series *s = acct_series_bucket(i); s; s = s->next) {
            const uint64_t v[3] = { s->prompt, s->completion, s->cached };
            for (int t = 0; t < 3; t++) {
                buf_append_str(b, "autoswitch_tokens_total{");
                metrics_label(b, "key", s->key, true);
                metrics_label(b, "alias", s->alias, false);
                metrics_label(b, "provider", s->provider, false);
                metrics_label(b, "type", types[t], false);
                buf_printf(b, "} %llu\n", (unsigned long long)v[t]);
            }
        }
}

static void answers(struct buf *b)
{
    static const char *const classes[] = { "error", "1xx", "2xx", "3xx", "4xx", "5xx" };
    metrics_help(b, "autoswitch_key_requests_total", "counter",
                 "Requests of each client key answered, by status class.");
    for (const struct key_state *k = key_states(); k; k = k->next)
        for (int c = 0; c < 6; c++) {
            if (!k->by_class[c])
                continue;
            buf_append_str(b, "autoswitch_key_requests_total{");
            metrics_label(b, "key", k->name, true);
            metrics_label(b, "code", classes[c], false);
            buf_printf(b, "} %llu\n", (unsigned long long)k->by_class[c]);
        }
}

static void refusals(struct buf *b)
{
    metrics_help(b, "autoswitch_key_refusals_total", "counter",
                 "Requests refused by a client key's limits, by key and reason (invalid: no such key).");
    buf_printf(b, "autoswitch_key_refusals_total{key=\"\",reason=\"invalid\"} %llu\n",
               (unsigned long long)counters.invalid_keys);
    for (const struct key_state *k = key_states(); k; k = k->next)
        for (int r = 0; r < KR__COUNT; r++) {
            if (r == KR_INVALID)
                continue;
            buf_append_str(b, "autoswitch_key_refusals_total{");
            metrics_label(b, "key", k->name, true);
            metrics_label(b, "reason", key_refusal_name((enum key_refusal)r), false);
            buf_printf(b, "} %llu\n", (unsigned long long)k->refused[r]);
        }
}

static void gauges(struct buf *b)
{
    int64_t now = (int64_t)wall_ms();
    const struct limit_day *day = acct_today(now);
    metrics_help(b, "autoswitch_key_in_flight", "gauge", "Requests of each client key in flight now.");
    for (const struct key_state *k = key_states(); k; k = k->next) {
        buf_append_str(b, "autoswitch_key_in_flight{");
        metrics_label(b, "key", k->name, true);
        buf_printf(b, "} %u\n", (unsigned)k->lim.in_flight);
    }
    metrics_help(b, "autoswitch_key_tokens_today", "gauge",
                 "Tokens each client key used today (local time), what daily_tokens is checked against.");
    for (const struct key_state *k = key_states(); k; k = k->next) {
        buf_append_str(b, "autoswitch_key_tokens_today{");
        metrics_label(b, "key", k->name, true);
        buf_printf(b, "} %llu\n", (unsigned long long)limit_tokens_used(&k->lim, day->day));
    }
}

void metrics_keys(struct buf *b)
{
    tokens(b);
    answers(b);
    refusals(b);
    gauges(b);
}
