#include "metrics.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "budget.h"
#include "counters.h"
#include "health.h"
#include "json.h"
#include "loop.h"
#include "server.h"
#include "snapshot.h"
#include "util.h"

static void json_time(struct buf *b, uint64_t wall)
{
    if (!wall) {
        buf_append_str(b, "null");
        return;
    }
    time_t t = (time_t)(wall / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char s[40];
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    buf_printf(b, "\"%s.%03uZ\"", s, (unsigned)(wall % 1000));
}

static void json_str(struct buf *b, const char *s)
{
    json_append_str(b, s, strlen(s));
}

static void json_rate(struct buf *b, uint64_t ok, uint64_t total)
{
    /* Percent, as the reference reports it. */
    if (!total)
        buf_append_str(b, "0");
    else
        buf_printf(b, "%.2f", (double)ok * 100.0 / (double)total);
}

static void json_pct(struct buf *b, const struct recent *w, double pct)
{
    int64_t v = recent_pct(w, pct);
    if (v < 0)
        buf_append_str(b, "null");
    else
        buf_printf(b, "%lld", (long long)v);
}

static const char *state_name(const struct health_entry *h)
{
    if (!h->healthy)
        return "unhealthy";
    return health_cooling(h) ? "cooling_down" : "healthy";
}

static const char *dialect_name(enum dialect d)
{
    return d == DIALECT_ANTHROPIC ? "anthropic" : "openai";
}

static void model_json(struct buf *b, const struct cfg_provider *p, const struct cfg_mapping *m, enum dialect d,
                       const struct health_entry *h)
{
    const struct stat_entry *st = m->stat[d];
    buf_append_str(b, "{\"provider_name\":");
    json_str(b, p->name);
    buf_printf(b, ",\"dialect\":\"%s\",\"class\":\"%s\"", dialect_name(d), endpoint_class_name(h->cls));
    buf_append_str(b, ",\"model_alias\":");
    json_str(b, m->alias);
    buf_append_str(b, ",\"upstream_model\":");
    json_str(b, m->upstream);
    buf_printf(b, ",\"healthy\":%s,\"failure_count\":%llu,\"total_requests\":%llu,\"success_requests\":%llu,"
                  "\"success_rate\":",
               h->healthy ? "true" : "false", (unsigned long long)(st->total - st->success),
               (unsigned long long)st->total, (unsigned long long)st->success);
    json_rate(b, st->success, st->total);
    buf_printf(b, ",\"priority\":%d,\"weight\":%d", m->priority, m->weight);
    buf_printf(b, ",\"state\":\"%s\",\"consecutive_failures\":%u,\"max_failures\":%d,\"cooling_down\":%s,"
                  "\"cooldown_until\":",
               state_name(h), h->consecutive, h->max_failures, health_cooling(h) ? "true" : "false");
    json_time(b, health_cooling(h) ? h->cooldown_wall : 0);
    buf_append_str(b, ",\"next_probe_at\":");
    json_time(b, h->healthy ? 0 : h->next_probe_wall);
    buf_printf(b, ",\"probing\":%s,\"probe\":\"%s\",\"last_error\":", h->probing ? "true" : "false",
               d == DIALECT_ANTHROPIC && m->probe != CFG_PROBE_NONE ? "messages" : cfg_probe_name(m->probe));
    if (h->last_error[0])
        json_str(b, h->last_error);
    else
        buf_append_str(b, "null");
    buf_append_str(b, ",\"last_error_at\":");
    json_time(b, h->last_error_wall);
    buf_printf(b, ",\"in_flight\":%u,\"latency_p50_ms\":", h->in_flight);
    json_pct(b, &st->lat_recent, 50);
    buf_append_str(b, ",\"latency_p95_ms\":");
    json_pct(b, &st->lat_recent, 95);
    buf_append_str(b, ",\"ttft_p50_ms\":");
    json_pct(b, &st->ttft_recent, 50);
    buf_printf(b, ",\"retries\":%llu,\"continuations\":%llu,\"failovers\":%llu",
               (unsigned long long)st->retries, (unsigned long long)st->continuations,
               (unsigned long long)st->failovers);
    buf_printf(b, ",\"effective_priority\":%d,\"effective_weight\":%d}", p->priority + m->priority,
               p->weight * m->weight);
}

void metrics_providers_json(struct buf *b, const struct snapshot *s)
{
    buf_append(b, "[", 1);
    for (size_t i = 0; i < s->cfg->n_providers; i++) {
        const struct cfg_provider *p = &s->cfg->providers[i];
        uint64_t total = 0, ok = 0;
        bool healthy = true;
        for (size_t m = 0; m < p->n_mappings; m++) {
            for (int d = 0; d < CFG_DIALECTS; d++) {
                const struct cfg_mapping *mp = &p->mappings[m];
                if (!mp->stat[d])
                    continue;
                total += mp->stat[d]->total;
                ok += mp->stat[d]->success;
                healthy &= mp->health[d]->healthy;
            }
        }
        if (i)
            buf_append(b, ",", 1);
        buf_append_str(b, "{\"name\":");
        json_str(b, p->name);
        buf_printf(b, ",\"healthy\":%s,\"failure_count\":%llu,\"total_requests\":%llu,\"success_requests\":%llu,"
                      "\"success_rate\":",
                   healthy ? "true" : "false", (unsigned long long)(total - ok), (unsigned long long)total,
                   (unsigned long long)ok);
        json_rate(b, ok, total);
        buf_printf(b, ",\"priority\":%d,\"weight\":%d,\"model_healths\":[", p->priority, p->weight);
        bool first = true;
        for (size_t m = 0; m < p->n_mappings; m++) {
            for (int d = 0; d < CFG_DIALECTS; d++) {
                const struct cfg_mapping *mp = &p->mappings[m];
                if (!mp->health[d])
                    continue;
                if (!first)
                    buf_append(b, ",", 1);
                first = false;
                model_json(b, p, mp, (enum dialect)d, mp->health[d]);
                /* The mapping's other endpoint classes, once requests used them. */
                for (const struct health_entry *h = health_entries(); h; h = h->next) {
                    if (h == mp->health[d] || h->dialect != (enum dialect)d || strcmp(h->provider, p->name) != 0 ||
                        strcmp(h->upstream, mp->upstream) != 0)
                        continue;
                    buf_append(b, ",", 1);
                    model_json(b, p, mp, (enum dialect)d, h);
                }
            }
        }
        buf_append_str(b, "]}");
    }
    buf_append(b, "]", 1);
}

void metrics_stats_json(struct buf *b, const struct snapshot *s)
{
    buf_append_str(b, "{\"providers\":");
    metrics_providers_json(b, s);
    buf_printf(b, ",\"buffered_bytes\":%llu,\"buffer_budget\":%llu", (unsigned long long)budget_used(),
               (unsigned long long)budget_limit());
    buf_printf(b, ",\"failover\":{\"attempts\":%llu,\"failovers\":%llu,\"retries\":%llu,\"retry_after_waits\":%llu,"
                  "\"busy_backoffs\":%llu,\"continuations\":%llu,\"continued_ok\":%llu,\"stream_errors\":%llu,"
                  "\"request_timeouts\":%llu,\"recovery_trials\":%llu,\"exhausted\":%llu}",
               (unsigned long long)counters.attempts, (unsigned long long)counters.failovers,
               (unsigned long long)counters.retries, (unsigned long long)counters.retry_after_waits,
               (unsigned long long)counters.busy_backoffs, (unsigned long long)counters.continuations,
               (unsigned long long)counters.continued_ok, (unsigned long long)counters.stream_errors,
               (unsigned long long)counters.timeouts, (unsigned long long)counters.trials,
               (unsigned long long)counters.exhausted);
    buf_printf(b, ",\"uptime_seconds\":%llu,\"open_connections\":%zu,\"requests\":%llu}\n",
               (unsigned long long)((wall_ms() - counters.start_wall_ms) / 1000), server_conn_count(),
               (unsigned long long)server_requests());
}

/* Label values: backslash, double quote and newline escaped (exposition
 * format 0.0.4). */
void metrics_label(struct buf *b, const char *name, const char *v, bool first)
{
    buf_printf(b, "%s%s=\"", first ? "" : ",", name);
    for (; *v; v++) {
        if (*v == '\\')
            buf_append_str(b, "\\\\");
        else if (*v == '"')
            buf_append_str(b, "\\\"");
        else if (*v == '\n')
            buf_append_str(b, "\\n");
        else
            buf_append(b, v, 1);
    }
    buf_append(b, "\"", 1);
}

static void series_labels(struct buf *b, const struct stat_entry *st)
{
    metrics_label(b, "provider", st->provider, true);
    metrics_label(b, "dialect", dialect_name(st->dialect), false);
    metrics_label(b, "alias", st->alias, false);
    metrics_label(b, "upstream", st->upstream, false);
}

void metrics_help(struct buf *b, const char *name, const char *type, const char *text)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static void histogram(struct buf *b, const char *name, const struct stat_entry *st, const struct hist *h)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= HIST_BUCKETS; i++) {
        cum += h->counts[i];
        buf_printf(b, "%s_bucket{", name);
        series_labels(b, st);
        if (i < HIST_BUCKETS)
            buf_printf(b, ",le=\"%g\"} %llu\n", hist_bounds_ms[i] / 1000.0, (unsigned long long)cum);
        else
            buf_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    buf_printf(b, "%s_sum{", name);
    series_labels(b, st);
    buf_printf(b, "} %.3f\n%s_count{", h->sum_ms / 1000.0, name);
    series_labels(b, st);
    buf_printf(b, "} %llu\n", (unsigned long long)h->n);
}

static bool stat_live(const struct snapshot *s, const struct stat_entry *st)
{
    for (size_t i = 0; i < s->cfg->n_providers; i++)
        for (size_t m = 0; m < s->cfg->providers[i].n_mappings; m++)
            if (s->cfg->providers[i].mappings[m].stat[st->dialect] == st)
                return true;
    return false;
}

static bool health_live(const struct snapshot *s, const struct health_entry *h)
{
    for (size_t i = 0; i < s->cfg->n_providers; i++) {
        const struct cfg_provider *p = &s->cfg->providers[i];
        for (size_t m = 0; m < p->n_mappings; m++)
            if (p->mappings[m].health[h->dialect] &&
                (p->mappings[m].health[h->dialect] == h ||
                 (strcmp(p->name, h->provider) == 0 && strcmp(p->mappings[m].upstream, h->upstream) == 0)))
                return true;
    }
    return false;
}

static void counter(struct buf *b, const char *name, const char *text, uint64_t v)
{
    metrics_help(b, name, "counter", text);
    buf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

/* Per (provider, alias, upstream) counters, one family each. */
static const struct stat_family {
    const char *name;
    const char *help;
    size_t off;   /* of the uint64_t in struct stat_entry */
} stat_families[] = {
    { "autoswitch_upstream_failures_total", "Upstream attempts that failed.", offsetof(struct stat_entry, failures) },
    { "autoswitch_upstream_failovers_total", "Failed attempts followed by another candidate.",
      offsetof(struct stat_entry, failovers) },
    { "autoswitch_upstream_retries_total", "Attempts repeated on this candidate.", offsetof(struct stat_entry, retries) },
    { "autoswitch_upstream_continuations_total", "Broken streams this candidate continued.",
      offsetof(struct stat_entry, continuations) },
    { "autoswitch_upstream_response_bytes_total", "Response body bytes sent to clients.",
      offsetof(struct stat_entry, bytes_out) },
};

enum health_gauge { G_HEALTHY, G_COOLDOWN, G_CONSECUTIVE, G_IN_FLIGHT };

/* Per (provider, upstream) gauges. */
static const struct health_family {
    const char *name;
    const char *help;
    enum health_gauge which;
} health_families[] = {
    { "autoswitch_upstream_healthy", "1 when the upstream model is in rotation, 0 when unhealthy.", G_HEALTHY },
    { "autoswitch_upstream_cooldown_seconds", "Seconds left of a 429 cooldown (0 when none).", G_COOLDOWN },
    { "autoswitch_upstream_consecutive_failures", "Consecutive failures of the upstream model.", G_CONSECUTIVE },
    { "autoswitch_upstream_in_flight", "Attempts running now.", G_IN_FLIGHT },
};

static double health_value(const struct health_entry *h, enum health_gauge which)
{
    switch (which) {
    case G_HEALTHY: return h->healthy ? 1 : 0;
    case G_COOLDOWN: return health_cooling(h) ? (double)(h->cooldown_until - loop_now()) / 1000.0 : 0;
    case G_CONSECUTIVE: return h->consecutive;
    default: return h->in_flight;
    }
}

void metrics_prometheus(struct buf *b, const struct snapshot *s)
{
    static const char *classes[] = { "error", "1xx", "2xx", "3xx", "4xx", "5xx" };
    metrics_help(b, "autoswitch_upstream_requests_total", "counter",
         "Upstream attempts that ended, by provider, alias, upstream model and status class.");
    for (const struct stat_entry *st = stat_entries(); st; st = st->next) {
        if (!stat_live(s, st))
            continue;
        for (int c = 0; c < 6; c++) {
            buf_append_str(b, "autoswitch_upstream_requests_total{");
            series_labels(b, st);
            buf_printf(b, ",class=\"%s\"} %llu\n", classes[c], (unsigned long long)st->by_class[c]);
        }
    }
    for (size_t f = 0; f < ARRAY_LEN(stat_families); f++) {
        const struct stat_family *fam = &stat_families[f];
        metrics_help(b, fam->name, "counter", fam->help);
        for (const struct stat_entry *st = stat_entries(); st; st = st->next) {
            if (!stat_live(s, st))
                continue;
            uint64_t v;
            memcpy(&v, (const char *)st + fam->off, sizeof v);
            buf_printf(b, "%s{", fam->name);
            series_labels(b, st);
            buf_printf(b, "} %llu\n", (unsigned long long)v);
        }
    }
    metrics_help(b, "autoswitch_upstream_latency_seconds", "histogram", "Duration of successful upstream attempts.");
    for (const struct stat_entry *st = stat_entries(); st; st = st->next)
        if (stat_live(s, st))
            histogram(b, "autoswitch_upstream_latency_seconds", st, &st->latency);
    metrics_help(b, "autoswitch_upstream_ttft_seconds", "histogram", "Streams: time to the first content sent to the client.");
    for (const struct stat_entry *st = stat_entries(); st; st = st->next)
        if (stat_live(s, st))
            histogram(b, "autoswitch_upstream_ttft_seconds", st, &st->ttft);
    for (size_t f = 0; f < ARRAY_LEN(health_families); f++) {
        const struct health_family *fam = &health_families[f];
        metrics_help(b, fam->name, "gauge", fam->help);
        for (const struct health_entry *h = health_entries(); h; h = h->next) {
            if (!health_live(s, h))
                continue;
            buf_printf(b, "%s{", fam->name);
            metrics_label(b, "provider", h->provider, true);
            metrics_label(b, "dialect", dialect_name(h->dialect), false);
            metrics_label(b, "class", endpoint_class_name(h->cls), false);
            metrics_label(b, "upstream", h->upstream, false);
            buf_printf(b, "} %g\n", health_value(h, fam->which));
        }
    }
    counter(b, "autoswitch_requests_total", "Client requests answered.", server_requests());
    counter(b, "autoswitch_proxied_requests_total", "Client requests sent to the proxy.", counters.proxied);
    counter(b, "autoswitch_attempts_total", "Upstream attempts started.", counters.attempts);
    counter(b, "autoswitch_failovers_total", "Attempts made after a failed one.", counters.failovers);
    counter(b, "autoswitch_retries_total", "Attempts repeated on the same candidate after a transient failure.",
            counters.retries);
    counter(b, "autoswitch_retry_after_waits_total", "Attempts repeated after waiting out a short Retry-After.",
            counters.retry_after_waits);
    counter(b, "autoswitch_busy_backoffs_total", "Pauses taken when every candidate was rate limited or overloaded.",
            counters.busy_backoffs);
    counter(b, "autoswitch_continuations_total", "Broken streams handed to another candidate.", counters.continuations);
    counter(b, "autoswitch_continued_ok_total", "Continued streams that ended complete.", counters.continued_ok);
    counter(b, "autoswitch_stream_errors_total", "Streams that ended with an error event after content.",
            counters.stream_errors);
    counter(b, "autoswitch_request_timeouts_total", "Requests that ran out of request_timeout (504).", counters.timeouts);
    counter(b, "autoswitch_recovery_trials_total", "Real requests that tried a recovering model.", counters.trials);
    counter(b, "autoswitch_exhausted_total", "Requests where every attempt failed (502).", counters.exhausted);
    counter(b, "autoswitch_client_aborts_total", "Clients that left before their answer ended.", counters.client_aborts);
    counter(b, "autoswitch_request_bytes_total", "Request body bytes received from clients.", counters.bytes_in);
    counter(b, "autoswitch_response_bytes_total", "Response body bytes sent to clients.", counters.bytes_out);
    counter(b, "autoswitch_probes_total", "Recovery probes started.", counters.probes);
    counter(b, "autoswitch_reloads_total", "Successful config reloads.", counters.reloads);
    counter(b, "autoswitch_reload_failures_total", "Config reloads refused (bad file).", counters.reload_failures);
    metrics_help(b, "autoswitch_buffered_bytes", "gauge", "Request bodies and answers held now (the max_buffered_bytes budget).");
    buf_printf(b, "autoswitch_buffered_bytes %llu\n", (unsigned long long)budget_used());
    metrics_help(b, "autoswitch_open_connections", "gauge", "Client connections open now.");
    buf_printf(b, "autoswitch_open_connections %zu\n", server_conn_count());
    metrics_help(b, "autoswitch_uptime_seconds", "gauge", "Seconds since start.");
    buf_printf(b, "autoswitch_uptime_seconds %llu\n", (unsigned long long)((wall_ms() - counters.start_wall_ms) / 1000));
    metrics_keys(b);
}
