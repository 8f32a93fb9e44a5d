/* libFuzzer target: config_load_mem (libyaml events -> struct config).
 * The whole input is the YAML text; inputs over CAP_BYTES are ignored.
 * The environment is whatever scripts/fuzz.sh runs the target with (it
 * sets a fixed one: FUZZ_API_KEY, FUZZ_EMPTY, HOME, PATH, LANG); the
 * target never changes it.
 *
 * Checked on success: what validation promises (names, base URLs parsed,
 * mappings with an upstream and an alias, positive limits, defaults
 * applied) and the top-level key spans the admin API edits in place: in
 * bounds, starting at the key, on the right line.  On failure: a
 * terminated message naming the input.  Warnings are terminated lines. */
#include "config.h"
#include "fuzz_common.h"

#define CAP_BYTES (384u * 1024)

static void on_warn(void *ctx, const char *msg)
{
    size_t *n = ctx;
    (*n)++;
    FUZZ_CHECK(msg != NULL && strlen(msg) < sizeof(struct cfg_error), "warning too long");
    FUZZ_CHECK(strncmp(msg, "fuzz.yaml:", 10) == 0, "warning does not name the file: %.80s", msg);
}

static bool plain_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80 || s[i] == '\r')
            return false;
    return true;
}

static void check_config(const struct config *c, const char *text, size_t n)
{
    FUZZ_CHECK(c->max_retries > 0 && c->max_failures > 0 && c->recovery_interval > 0 &&
                   c->health_check_period > 0,
               "defaults for <= 0 not applied");
    FUZZ_CHECK(c->max_body_bytes > 0 && c->max_connections > 0 && c->log_ring_lines >= 0 &&
                   c->stream_idle_timeout > 0 && c->max_cooldown > 0 && c->probe_timeout > 0,
               "a limit out of range");
    FUZZ_CHECK(c->resolv_conf && c->hosts_file && c->path, "default paths missing");
    for (size_t i = 0; i < c->n_api_keys; i++)
        FUZZ_CHECK(c->api_keys[i] && c->api_keys[i][0], "api_keys[%zu] empty", i);
    FUZZ_CHECK(c->n_providers == 0 || c->providers, "providers");
    for (size_t i = 0; i < c->n_providers; i++) {
        const struct cfg_provider *p = &c->providers[i];
        FUZZ_CHECK(p->name && p->name[0], "provider %zu: no name", i);
        FUZZ_CHECK((p->base_url || p->anthropic_base_url) && p->api_key, "provider %zu: base_url / api_key", i);
        FUZZ_CHECK(!p->base_url || (p->url.host && p->url.prefix && p->url.authority && p->url.port > 0),
                   "provider %zu: base_url not parsed", i);
        FUZZ_CHECK(!p->anthropic_base_url || (p->aurl.host && p->aurl.port > 0),
                   "provider %zu: anthropic_base_url not parsed", i);
        FUZZ_CHECK(p->first_token_timeout > 0 && p->model_retries >= 0, "provider %zu: inherited values", i);
        for (size_t j = 0; j < p->n_headers; j++)
            for (const char *v = p->headers[j].value; *v; v++)
                FUZZ_CHECK((unsigned char)*v >= 0x20 && *v != 0x7f, "provider %zu: a control byte in a header", i);
        for (const char *v = p->api_key; *v; v++)
            FUZZ_CHECK((unsigned char)*v >= 0x20 && *v != 0x7f, "provider %zu: a control byte in the api_key", i);
        FUZZ_CHECK(p->weight > 0 && p->timeout > 0, "provider %zu: weight %d timeout %d", i, p->weight,
                   p->timeout);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(c->providers[j].name, p->name) != 0, "duplicate provider name \"%s\"", p->name);
        for (size_t j = 0; j < p->n_exclude; j++)
            FUZZ_CHECK(p->exclude_params[j] != NULL, "provider %zu: exclude_params[%zu] NULL", i, j);
        for (size_t j = 0; j < p->n_mappings; j++) {
            const struct cfg_mapping *m = &p->mappings[j];
            FUZZ_CHECK(m->upstream && m->upstream[0], "mapping %zu.%zu: no upstream", i, j);
            FUZZ_CHECK(m->alias && m->alias[0], "mapping %zu.%zu: no alias", i, j);
            FUZZ_CHECK(m->weight > 0 && m->max_failures >= 0, "mapping %zu.%zu: weight %d", i, j, m->weight);
            FUZZ_CHECK(m->probe >= CFG_PROBE_CHAT && m->probe <= CFG_PROBE_MESSAGES, "mapping probe %d", (int)m->probe);
            FUZZ_CHECK(m->continuation >= CFG_CONT_NONE && m->continuation <= CFG_CONT_REPLAY, "mapping continuation");
            FUZZ_CHECK(m->first_token_timeout > 0, "mapping %zu.%zu: first_token_timeout", i, j);
            FUZZ_CHECK(cfg_max_failures(c, m) > 0, "effective max_failures");
        }
        if (!p->base_url)
            continue;
        /* The parsed URL survives a second parse of the same text. */
        struct cfg_url u;
        char why[128];
        FUZZ_CHECK(cfg_parse_url(p->base_url, &u, why, sizeof why) == 0, "base_url re-parse: %s", why);
        FUZZ_CHECK(strcmp(u.host, p->url.host) == 0 && u.port == p->url.port && u.https == p->url.https &&
                       strcmp(u.prefix, p->url.prefix) == 0 && strcmp(u.authority, p->url.authority) == 0,
                   "base_url parses differently the second time");
        cfg_url_free(&u);
    }
    /* Spans of the top-level keys. */
    bool simple = plain_ascii(text, n);
    for (size_t k = 0; k < cfg_schema_top.n_keys; k++) {
        const struct cfg_span *sp = &c->spans[k];
        const char *key = cfg_schema_top.keys[k].name;
        if (!sp->present)
            continue;
        FUZZ_CHECK(sp->start < sp->end && sp->end <= n, "span %s [%zu, %zu) of %zu", key, sp->start,
                   sp->end, n);
        size_t kl = strlen(key);
        char first = text[sp->start];
        /* At the key itself, or at a quote, tag or block indicator before it. */
        bool at_key = (n - sp->start >= kl && memcmp(text + sp->start, key, kl) == 0) ||
                      (first && strchr("\"'!|>", first));
        FUZZ_CHECK(at_key, "span %s starts at %zu, on \"%.*s\"", key, sp->start,
                   (int)(n - sp->start < 12 ? n - sp->start : 12), text + sp->start);
        if (simple) {
            size_t line = 1;
            for (size_t i = 0; i < sp->start; i++)
                line += text[i] == '\n';
            FUZZ_CHECK(sp->line == line, "span %s on line %zu, the key is on line %zu", key, sp->line, line);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
    if (n > CAP_BYTES)
        return 0;
    char *text = fuzz_dup(in, n);
    struct config *c = (struct config *)(uintptr_t)1;
    struct cfg_error err;
    memset(err.msg, 0x55, sizeof err.msg);
    size_t warnings = 0;
    int r = config_load_mem(text, n, "fuzz.yaml", &c, &err, on_warn, &warnings);
    if (r == 0) {
        FUZZ_CHECK(c != NULL, "success without a config");
        check_config(c, text, n);
        config_free(c);
    } else {
        FUZZ_CHECK(r == -1 && c == NULL, "failure returned %d, config %p", r, (void *)c);
        FUZZ_CHECK(memchr(err.msg, '\0', sizeof err.msg) != NULL, "error message not terminated");
        FUZZ_CHECK(strncmp(err.msg, "fuzz.yaml:", 10) == 0, "error does not name the file: %.80s", err.msg);
    }
    free(text);
    return 0;
}
