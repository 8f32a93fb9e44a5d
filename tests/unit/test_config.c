/* Unit tests for config: the reference file format, defaults, every
 * error rule with its exact "file:line:col: path: message", unknown-key
 * warnings, ${VAR} expansion, the byte spans of top-level keys, base_url
 * parsing, and garbage that must be refused without a crash. */
#include "buf.h"
#include "config.h"
#include "tap.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME "t.yaml"
#define MAX_WARNINGS 8
#define WARN_LEN 512
#define GARBAGE_DOCS 3000
#define GARBAGE_MAX_LEN 160
#define MUTATIONS 2000
#define DEPTH_OVER 40
#define PATH_LEN 4096
#define MANY_PROVIDERS 5000

/* The sample from the reference project's README, unchanged. */
static const char SAMPLE[] =
    "api_keys:\n"
    "  - \"sk-your-custom-api-key\"\n"
    "admin_key: \"your-admin-key\"\n"
    "max_retries: 3\n"
    "max_failures: 3\n"
    "recovery_interval: 30\n"
    "health_check_period: 3600\n"
    "providers:\n"
    "  - name: \"openai\"\n"
    "    base_url: \"https://api.openai.com\"\n"
    "    api_key: \"sk-xxxx\"\n"
    "    weight: 1\n"
    "    priority: 1\n"
    "    timeout: 120\n"
    "    exclude_params:\n"
    "      - thinking\n"
    "      - verbosity\n"
    "    model_mappings:\n"
    "      - upstream: \"gpt-5\"\n"
    "        alias: \"gpt-5\"\n"
    "        priority: 0\n"
    "        weight: 1\n"
    "        # max_failures: 5\n"
    "      - upstream: \"gpt-4o\"\n"
    "        alias: \"gpt-5\"\n";

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

struct warnings {
    int n;
    char msg[MAX_WARNINGS][WARN_LEN];
};

static struct warnings W;
static struct cfg_error E;

static void on_warn(void *ctx, const char *msg)
{
    struct warnings *w = ctx;
    if (w->n < MAX_WARNINGS)
        snprintf(w->msg[w->n], WARN_LEN, "%s", msg);
    w->n++;
}

static struct config *load_n(const char *text, size_t len)
{
    struct config *c = NULL;
    memset(&W, 0, sizeof W);
    memset(&E, 0, sizeof E);
    if (config_load_mem(text, len, NAME, &c, &E, on_warn, &W) < 0)
        return NULL;
    return c;
}

static struct config *load(const char *text)
{
    return load_n(text, strlen(text));
}

/* Loads, and says why not when it does not. */
static struct config *load_ok(const char *text, const char *what)
{
    struct config *c = load(text);
    if (!ok(c != NULL, "%s: loads", what))
        printf("#   error: %s\n", E.msg);
    return c;
}

/* Refused with exactly this message. */
static void check_err(const char *text, const char *want, const char *what)
{
    struct config *c = load(text);
    is_str(c ? "(loaded)" : E.msg, want, "%s", what);
    config_free(c);
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        printf("Bail out! cannot write %s\n", path);
        exit(1);
    }
}

/* ------------------------------------------------------------------ */
/* The reference sample                                                */

static void check_sample_values(const struct config *c)
{
    is_int(c->n_api_keys, 1, "sample: one client key");
    is_str(c->api_keys[0], "sk-your-custom-api-key", "sample: client key");
    is_str(c->admin_key, "your-admin-key", "sample: admin_key");
    is_int(c->max_retries, 3, "sample: max_retries");
    is_int(c->max_failures, 3, "sample: max_failures");
    is_int(c->recovery_interval, 30, "sample: recovery_interval");
    is_int(c->health_check_period, 3600, "sample: health_check_period");
    is_int(c->n_providers, 1, "sample: one provider");
    const struct cfg_provider *p = &c->providers[0];
    is_str(p->name, "openai", "sample: name");
    is_str(p->base_url, "https://api.openai.com", "sample: base_url");
    ok(p->base_url_raw == NULL, "sample: no base_url_raw without ${}");
    is_str(p->api_key, "sk-xxxx", "sample: api_key");
    ok(p->api_key_raw == NULL, "sample: no api_key_raw without ${}");
    is_int(p->weight, 1, "sample: weight");
    is_int(p->priority, 1, "sample: priority");
    is_int(p->timeout, 120, "sample: timeout");
    ok(p->ca_file == NULL, "sample: no provider ca_file");
    is_int(p->n_exclude, 2, "sample: two exclude_params");
    is_str(p->exclude_params[0], "thinking", "sample: exclude_params[0]");
    is_str(p->exclude_params[1], "verbosity", "sample: exclude_params[1]");
    ok(p->url.https, "sample: url is https");
    is_str(p->url.host, "api.openai.com", "sample: url host");
    is_int(p->url.port, 443, "sample: url port");
    is_str(p->url.prefix, "", "sample: url prefix");
    is_str(p->url.authority, "api.openai.com", "sample: url authority");
    is_int(p->n_mappings, 2, "sample: two mappings");
    const struct cfg_mapping *m0 = &p->mappings[0], *m1 = &p->mappings[1];
    is_str(m0->upstream, "gpt-5", "sample: mapping 0 upstream");
    is_str(m0->alias, "gpt-5", "sample: mapping 0 alias");
    is_int(m0->priority, 0, "sample: mapping 0 priority");
    is_int(m0->weight, 1, "sample: mapping 0 weight");
    is_int(m0->max_failures, 0, "sample: mapping 0 max_failures (commented out)");
    is_int(cfg_max_failures(c, m0), 3, "sample: mapping 0 uses the global max_failures");
    is_int(m0->probe, CFG_PROBE_CHAT, "sample: mapping 0 probe");
    ok(m0->health[0] == NULL && m0->stat[0] == NULL && m0->health[1] == NULL, "sample: no runtime links");
    is_str(m1->upstream, "gpt-4o", "sample: mapping 1 upstream");
    is_str(m1->alias, "gpt-5", "sample: mapping 1 alias");
    is_int(m1->priority, 0, "sample: mapping 1 priority default");
    is_int(m1->weight, 1, "sample: mapping 1 weight default");
    /* New keys keep their defaults. */
    ok(c->listen == NULL, "sample: listen default");
    is_int(c->max_body_bytes, 32u << 20, "sample: max_body_bytes default");
    is_int(c->max_connections, 1024, "sample: max_connections default");
    ok(c->log_file == NULL, "sample: log_file default");
    is_int(c->log_ring_lines, 2000, "sample: log_ring_lines default");
    is_int(c->stream_idle_timeout, 120, "sample: stream_idle_timeout default");
    is_int(c->max_cooldown, 300, "sample: max_cooldown default");
    is_int(c->probe_timeout, 15, "sample: probe_timeout default");
    ok(c->ca_file == NULL, "sample: ca_file default");
    is_str(c->resolv_conf, "/etc/resolv.conf", "sample: resolv_conf default");
    is_str(c->hosts_file, "/etc/hosts", "sample: hosts_file default");
}

static void check_sample_spans(const struct config *c, const char *text, size_t len)
{
    const struct cfg_span *s = cfg_top_span(c, "providers");
    ok(s->present, "spans: providers present");
    ok(s->start < len && strncmp(text + s->start, "providers:", 10) == 0,
       "spans: providers starts at its key");
    is_int(s->line, 8, "spans: providers line");
    /* The value ends with the last mapping's alias: "gpt-5" and newline. */
    ok(s->end == len - 1 && text[s->end - 1] == '"' && strncmp(text + s->end - 7, "\"gpt-5\"", 7) == 0,
       "spans: providers ends after the last scalar");
    s = cfg_top_span(c, "max_retries");
    ok(s->present && s->line == 4, "spans: max_retries present on line 4");
    is_mem(text + s->start, s->end - s->start, "max_retries: 3", "spans: max_retries covers key and value");
    s = cfg_top_span(c, "max_failures");
    is_mem(text + s->start, s->end - s->start, "max_failures: 3", "spans: max_failures");
    s = cfg_top_span(c, "recovery_interval");
    is_mem(text + s->start, s->end - s->start, "recovery_interval: 30", "spans: recovery_interval");
    s = cfg_top_span(c, "health_check_period");
    is_mem(text + s->start, s->end - s->start, "health_check_period: 3600", "spans: health_check_period");
    is_int(s->line, 7, "spans: health_check_period line");
}

static void test_sample(void)
{
    struct config *c = load_ok(SAMPLE, "sample");
    if (!c)
        return;
    is_int(W.n, 0, "sample: no warnings");
    is_str(c->path, "<memory>", "sample: path of a memory config");
    check_sample_values(c);
    check_sample_spans(c, SAMPLE, strlen(SAMPLE));
    config_free(c);
}

/* The same through a real file, plus the file-level errors. */
static void test_files(void)
{
    char dir[] = "/tmp/test_config.XXXXXX";
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp failed\n");
        exit(1);
    }
    char path[PATH_LEN], missing[PATH_LEN], big[PATH_LEN], want[PATH_LEN + 64];
    snprintf(path, sizeof path, "%s/openai_proxy.yaml", dir);
    snprintf(missing, sizeof missing, "%s/nope.yaml", dir);
    snprintf(big, sizeof big, "%s/big.yaml", dir);
    write_file(path, SAMPLE, strlen(SAMPLE));

    struct config *c = NULL;
    memset(&W, 0, sizeof W);
    int rc = config_load_file(path, &c, &E, on_warn, &W);
    ok(rc == 0 && c, "file: sample loads from a file");
    if (c) {
        is_str(c->path, path, "file: path recorded");
        check_sample_values(c);
        check_sample_spans(c, SAMPLE, strlen(SAMPLE));
    }
    config_free(c);

    c = (struct config *)&c; /* must be reset to NULL on failure */
    rc = config_load_file(missing, &c, &E, on_warn, &W);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", missing);
    ok(rc == -1 && c == NULL, "file: missing file refused, *out NULL");
    is_str(E.msg, want, "file: missing file message");

    /* One byte over the cap; a file of exactly the cap loads. */
    size_t n = CFG_MAX_FILE_BYTES + 1;
    char *text = malloc(n);
    if (!text) {
        printf("Bail out! out of memory\n");
        exit(1);
    }
    memset(text, '\n', n);
    write_file(big, text, n);
    rc = config_load_file(big, &c, &E, on_warn, &W);
    snprintf(want, sizeof want, "%s: file is larger than 4194304 bytes", big);
    ok(rc == -1 && c == NULL, "file: over the cap refused");
    is_str(E.msg, want, "file: over the cap message");
    write_file(big, text, n - 1);
    rc = config_load_file(big, &c, &E, on_warn, &W);
    ok(rc == 0 && c && c->n_providers == 0, "file: exactly the cap loads");
    config_free(c);

    c = load_n(text, n);
    is_str(c ? "(loaded)" : E.msg, "t.yaml: file is larger than 4194304 bytes", "mem: over the cap refused");
    config_free(c);
    c = load_n(text, n - 1);
    ok(c != NULL, "mem: exactly the cap loads");
    config_free(c);
    free(text);

    unlink(path);
    unlink(big);
    rmdir(dir);
}

/* ------------------------------------------------------------------ */
/* Defaults                                                            */

static void check_top_defaults(const struct config *c, const char *what, bool spans)
{
    ok(c->n_api_keys == 0 && c->api_keys == NULL, "%s: no api_keys", what);
    ok(c->admin_key == NULL, "%s: no admin_key", what);
    ok(c->max_retries == 1 && c->max_failures == 3 && c->recovery_interval == 30 &&
           c->health_check_period == 60,
       "%s: reference defaults 1/3/30/60", what);
    ok(c->max_body_bytes == 32u << 20 && c->max_connections == 1024 && c->log_ring_lines == 2000 &&
           c->stream_idle_timeout == 120 && c->max_cooldown == 300 && c->probe_timeout == 15,
       "%s: new numeric defaults", what);
    ok(c->listen == NULL && c->log_file == NULL && c->ca_file == NULL, "%s: optional strings NULL", what);
    ok(c->resolv_conf && strcmp(c->resolv_conf, "/etc/resolv.conf") == 0 && c->hosts_file &&
           strcmp(c->hosts_file, "/etc/hosts") == 0,
       "%s: resolver file defaults", what);
    ok(c->n_providers == 0 && c->providers == NULL, "%s: no providers", what);
    bool any = false;
    for (size_t i = 0; i < CFG_MAX_KEYS; i++)
        any |= c->spans[i].present;
    ok(any == spans, "%s: spans %s", what, spans ? "present for keys given" : "absent");
}

static void test_defaults(void)
{
    static const char *const empty[] = {
        "", "# only a comment\n\n   # and another\n", "---\n", "{}\n", "--- ~\n",
    };
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "empty document %zu", i);
        struct config *c = load_ok(empty[i], what);
        if (c)
            check_top_defaults(c, what, false);
        config_free(c);
    }

    struct config *c = load_ok("max_retries: ~\nmax_failures: null\nrecovery_interval:\n"
                               "health_check_period: NULL\nadmin_key: ~\napi_keys:\nproviders: null\n"
                               "log_file: ''\nlisten: \"\"\nresolv_conf: ''\nmax_connections: ~\n",
                               "null values");
    if (c)
        check_top_defaults(c, "null values", true);
    config_free(c);

    c = load_ok("providers:\n  - name: a\n    base_url: http://h\n    model_mappings:\n      - upstream: m\n",
                "minimal provider");
    if (c) {
        const struct cfg_provider *p = &c->providers[0];
        ok(p->weight == 1 && p->priority == 0 && p->timeout == 60, "minimal: provider weight 1, priority 0, timeout 60");
        is_str(p->api_key, "", "minimal: api_key defaults to \"\"");
        ok(!p->api_key_raw && !p->base_url_raw && !p->ca_file && p->n_exclude == 0 && !p->exclude_params,
           "minimal: optional provider fields empty");
        const struct cfg_mapping *m = &p->mappings[0];
        is_str(m->alias, "m", "minimal: alias defaults to upstream");
        ok(m->weight == 1 && m->priority == 0 && m->max_failures == 0 && m->probe == CFG_PROBE_CHAT,
           "minimal: mapping weight 1, priority 0, max_failures 0, probe chat");
        is_int(cfg_max_failures(c, m), 3, "minimal: effective max_failures");
        is_str(p->url.authority, "h", "minimal: http authority without port");
        is_int(p->url.port, 80, "minimal: http port");
    }
    config_free(c);

    /* The reference's "<= 0 means the default" rules. */
    c = load_ok("max_retries: 0\nmax_failures: -1\nrecovery_interval: 0\nhealth_check_period: -5\n"
                "providers:\n  - name: a\n    base_url: http://h\n    weight: 0\n    timeout: -1\n"
                "    model_mappings:\n      - upstream: m\n        alias: \"\"\n        weight: 0\n"
                "        max_failures: 5\n  - name: b\n    base_url: http://g\n    timeout: 0\n",
                "normalised values");
    if (c) {
        ok(c->max_retries == 1 && c->max_failures == 3 && c->recovery_interval == 30 &&
               c->health_check_period == 60,
           "normalised: top-level <= 0 take the defaults");
        ok(c->providers[0].weight == 1 && c->providers[0].timeout == 60 && c->providers[1].timeout == 60,
           "normalised: provider weight 0 -> 1, timeout <= 0 -> 60");
        const struct cfg_mapping *m = &c->providers[0].mappings[0];
        is_str(m->alias, "m", "normalised: empty alias -> upstream");
        is_int(m->weight, 1, "normalised: mapping weight 0 -> 1");
        is_int(cfg_max_failures(c, m), 5, "normalised: mapping max_failures overrides");
    }
    config_free(c);
}

/* Every new key, with values other than the defaults. */
static void test_new_keys(void)
{
    struct config *c = load_ok("listen: \"127.0.0.1\"\n"
                               "max_body_bytes: 10000000000\n"
                               "max_connections: 10\n"
                               "log_file: /var/log/as.log\n"
                               "log_ring_lines: 0\n"
                               "stream_idle_timeout: 7\n"
                               "max_cooldown: \"600\"\n"
                               "probe_timeout: '+3'\n"
                               "ca_file: /etc/ca.pem\n"
                               "resolv_conf: /tmp/resolv\n"
                               "hosts_file: /tmp/hosts\n"
                               "providers:\n"
                               "  - name: a\n"
                               "    base_url: https://h/api/v1/\n"
                               "    ca_file: /etc/p.pem\n"
                               "    model_mappings:\n"
                               "      - {upstream: c, probe: chat}\n"
                               "      - {upstream: e, probe: embeddings}\n"
                               "      - {upstream: m, probe: \"models\"}\n"
                               "      - {upstream: n, probe: none}\n"
                               "      - {upstream: d, probe: ~}\n",
                               "new keys");
    if (!c)
        return;
    is_int(W.n, 0, "new keys: no warnings");
    is_str(c->listen, "127.0.0.1", "new keys: listen");
    ok(c->max_body_bytes == 10000000000ull, "new keys: max_body_bytes is 64-bit");
    is_int(c->max_connections, 10, "new keys: max_connections");
    is_str(c->log_file, "/var/log/as.log", "new keys: log_file");
    is_int(c->log_ring_lines, 0, "new keys: log_ring_lines may be 0");
    is_int(c->stream_idle_timeout, 7, "new keys: stream_idle_timeout");
    is_int(c->max_cooldown, 600, "new keys: quoted number");
    is_int(c->probe_timeout, 3, "new keys: number with a + sign");
    is_str(c->ca_file, "/etc/ca.pem", "new keys: ca_file");
    is_str(c->resolv_conf, "/tmp/resolv", "new keys: resolv_conf");
    is_str(c->hosts_file, "/tmp/hosts", "new keys: hosts_file");
    const struct cfg_provider *p = &c->providers[0];
    is_str(p->ca_file, "/etc/p.pem", "new keys: provider ca_file");
    is_str(p->url.prefix, "/api", "new keys: prefix without /v1");
    is_int(p->n_mappings, 5, "new keys: five mappings");
    ok(p->mappings[0].probe == CFG_PROBE_CHAT && p->mappings[1].probe == CFG_PROBE_EMBEDDINGS &&
           p->mappings[2].probe == CFG_PROBE_MODELS && p->mappings[3].probe == CFG_PROBE_NONE &&
           p->mappings[4].probe == CFG_PROBE_CHAT,
       "new keys: probe values");
    config_free(c);

    c = load_ok("max_body_bytes: \"18446744073709551615\"\nmax_retries: -2147483648\nmax_failures: 2147483647\n"
                "providers:\n  - name: a\n    base_url: http://h\n    priority: -3\n    model_mappings:\n"
                "      - upstream: m\n        priority: \"-0\"\n",
                "number limits");
    if (c) {
        ok(c->max_body_bytes == UINT64_MAX, "numbers: max_body_bytes up to UINT64_MAX");
        is_int(c->max_retries, 1, "numbers: INT_MIN accepted (then <= 0 -> 1)");
        is_int(c->max_failures, 2147483647, "numbers: INT_MAX accepted");
        is_int(c->providers[0].priority, -3, "numbers: negative priority allowed");
        is_int(c->providers[0].mappings[0].priority, 0, "numbers: -0");
    }
    config_free(c);
}

/* ------------------------------------------------------------------ */
/* Errors                                                              */

#define P0 "providers:\n  - name: a\n    base_url: http://h\n"
#define M0 P0 "    model_mappings:\n      - upstream: m\n"

static void test_type_errors(void)
{
    check_err("max_retries: abc\n", "t.yaml:1:14: max_retries: expected an integer, got \"abc\"", "int: letters");
    check_err("max_retries: 1.5\n", "t.yaml:1:14: max_retries: expected an integer, got \"1.5\"", "int: fraction");
    check_err("max_retries: 12x\n", "t.yaml:1:14: max_retries: expected an integer, got \"12x\"", "int: trailing junk");
    check_err("max_retries: 0x10\n", "t.yaml:1:14: max_retries: expected an integer, got \"0x10\"", "int: hex");
    check_err("max_retries: \"\t1\"\n", "t.yaml:1:14: max_retries: expected an integer, got \"\t1\"", "int: blank");
    check_err("max_retries: '-'\n", "t.yaml:1:14: max_retries: expected an integer, got \"-\"", "int: sign only");
    check_err("max_retries: 2147483648\n", "t.yaml:1:14: max_retries: integer out of range: \"2147483648\"",
              "int: over INT_MAX");
    check_err("max_retries: -2147483649\n", "t.yaml:1:14: max_retries: integer out of range: \"-2147483649\"",
              "int: under INT_MIN");
    check_err("max_retries: 99999999999999999999999\n",
              "t.yaml:1:14: max_retries: integer out of range: \"99999999999999999999999\"", "int: far over");
    check_err("max_retries: [1]\n", "t.yaml:1:14: max_retries: expected an integer, got a sequence", "int: sequence");
    check_err("max_retries:\n  a: 1\n", "t.yaml:2:3: max_retries: expected an integer, got a mapping", "int: mapping");
    check_err("admin_key: [a]\n", "t.yaml:1:12: admin_key: expected a string, got a sequence", "string: sequence");
    check_err("admin_key: {a: b}\n", "t.yaml:1:12: admin_key: expected a string, got a mapping", "string: mapping");
    check_err("api_keys: sk-1\n", "t.yaml:1:11: api_keys: expected a sequence, got a scalar", "list: scalar");
    check_err("api_keys: {a: b}\n", "t.yaml:1:11: api_keys: expected a sequence, got a mapping", "list: mapping");
    check_err("api_keys:\n  - [a]\n", "t.yaml:2:5: api_keys[0]: expected a string, got a sequence", "list item: sequence");
    check_err("api_keys:\n  - a\n  - \"\"\n", "t.yaml:3:5: api_keys[1]: must not be empty", "list item: empty key");
    check_err("providers: {a: 1}\n", "t.yaml:1:12: providers: expected a sequence, got a mapping", "providers: mapping");
    check_err("providers: x\n", "t.yaml:1:12: providers: expected a sequence, got a scalar", "providers: scalar");
    check_err("providers:\n  - openai\n", "t.yaml:2:5: providers[0]: expected a mapping, got a scalar",
              "providers item: scalar");
    check_err("providers:\n  -\n", "t.yaml:2:4: providers[0]: expected a mapping, got null", "providers item: null");
    check_err(P0 "    exclude_params: {a: 1}\n",
              "t.yaml:4:21: providers[0].exclude_params: expected a sequence, got a mapping", "exclude_params: mapping");
    check_err(P0 "    model_mappings:\n      - gpt-5\n",
              "t.yaml:5:9: providers[0].model_mappings[0]: expected a mapping, got a scalar", "mapping item: scalar");
    check_err(M0 "        probe: [chat]\n",
              "t.yaml:6:16: providers[0].model_mappings[0].probe: expected a scalar, got a sequence", "probe: sequence");
    check_err("? [a]\n: 1\n", "t.yaml:1:3: a mapping key must be a scalar, got a sequence", "complex key");
    check_err("- a\n", "t.yaml:1:1: the top-level document must be a mapping", "top: sequence");
    check_err("hello\n", "t.yaml:1:1: the top-level document must be a mapping", "top: scalar");
    check_err("\"\"\n", "t.yaml:1:1: the top-level document must be a mapping", "top: quoted empty scalar");
}

/* Many providers: unique names load, a late duplicate names the first. */
static void test_many_providers(void)
{
    struct buf b = BUF_INIT;
    buf_append_str(&b, "providers:\n");
    for (int i = 0; i < MANY_PROVIDERS; i++)
        buf_printf(&b, "  - {name: p%d, base_url: \"http://h\"}\n", i);
    struct config *c = load_n(buf_head(&b), buf_len(&b));
    ok(c && c->n_providers == MANY_PROVIDERS && strcmp(c->providers[MANY_PROVIDERS - 1].name, "p4999") == 0,
       "%d providers load", MANY_PROVIDERS);
    config_free(c);
    buf_printf(&b, "  - {name: p1234, base_url: \"http://h\"}\n");
    c = load_n(buf_head(&b), buf_len(&b)); /* a buf is not NUL-terminated */
    is_str(c ? "(loaded)" : E.msg,
           "t.yaml:5002:12: providers[5000].name: duplicate provider name \"p1234\" (first at line 1236)",
           "duplicate among many providers");
    config_free(c);
    buf_free(&b);
}

static void test_value_errors(void)
{
    check_err(P0 "    weight: -1\n", "t.yaml:4:13: providers[0].weight: must not be negative", "provider weight < 0");
    check_err(P0 "    timeout: x\n", "t.yaml:4:14: providers[0].timeout: expected an integer, got \"x\"",
              "provider timeout not a number");
    check_err(M0 "        weight: -1\n", "t.yaml:6:17: providers[0].model_mappings[0].weight: must not be negative",
              "mapping weight < 0");
    check_err(M0 "        max_failures: -1\n",
              "t.yaml:6:23: providers[0].model_mappings[0].max_failures: must not be negative",
              "mapping max_failures < 0");
    check_err(M0 "        probe: bogus\n",
              "t.yaml:6:16: providers[0].model_mappings[0].probe: must be one of chat, embeddings, models, none, messages "
              "(got \"bogus\")",
              "unknown probe");
    check_err(M0 "        probe: Chat\n",
              "t.yaml:6:16: providers[0].model_mappings[0].probe: must be one of chat, embeddings, models, none, messages "
              "(got \"Chat\")",
              "probe is case-sensitive");
    check_err("providers:\n  - name: \"\"\n    base_url: http://h\n", "t.yaml:2:11: providers[0].name: must not be empty",
              "empty provider name");
    check_err("providers:\n  - base_url: http://h\n", "t.yaml:2:5: providers[0]: name is required", "missing name");
    check_err("providers:\n  - name:\n    base_url: http://h\n", "t.yaml:2:5: providers[0]: name is required",
              "null name");
    check_err(P0 "  - name: a\n    base_url: http://g\n",
              "t.yaml:4:11: providers[1].name: duplicate provider name \"a\" (first at line 2)", "duplicate name");
    check_err(P0 "  - name: b\n    base_url: http://g\n  - {base_url: \"http://f\", name: 'b'}\n",
              "t.yaml:6:34: providers[2].name: duplicate provider name \"b\" (first at line 4)",
              "duplicate name, flow style");
    test_many_providers();
    check_err("providers:\n  - name: a\n", "t.yaml:2:5: providers[0]: base_url is required (or anthropic_base_url for an Anthropic-only provider)",
              "missing base_url");
    check_err("providers:\n  - name: a\n    base_url: ftp://h\n",
              "t.yaml:3:15: providers[0].base_url: base_url must start with http:// or https://", "base_url scheme");
    check_err("providers:\n  - name: a\n    base_url: \"http://h:0\"\n",
              "t.yaml:3:15: providers[0].base_url: base_url has an invalid port", "base_url port");
    check_err("providers:\n  - name: a\n    base_url: \"\"\n",
              "t.yaml:3:15: providers[0].base_url: base_url must start with http:// or https://", "base_url empty");
    /* The example from config.h, byte for byte. */
    struct config *c = NULL;
    const char *text = P0 "    model_mappings:\n      - upstream: m\n"
                       "  - name: b\n    base_url: http://g\n    weight: 2\n    priority: 1\n    timeout: 5\n"
                       "    model_mappings:\n    - alias: x\n";
    int rc = config_load_mem(text, strlen(text), "conf/x.yaml", &c, &E, NULL, NULL);
    ok(rc == -1 && !c, "missing upstream refused");
    is_str(E.msg, "conf/x.yaml:12:7: providers[1].model_mappings[0]: upstream is required",
           "missing upstream: the message of config.h");
    check_err(P0 "    model_mappings:\n      - upstream: ''\n",
              "t.yaml:5:19: providers[0].model_mappings[0].upstream: must not be empty", "empty upstream");
    check_err("max_retries: 1\nmax_retries: 2\n", "t.yaml:2:1: max_retries: duplicate key", "duplicate top key");
    check_err(P0 "    name: b\n", "t.yaml:4:5: providers[0].name: duplicate key", "duplicate provider key");
    check_err(M0 "        upstream: n\n", "t.yaml:6:9: providers[0].model_mappings[0].upstream: duplicate key",
              "duplicate mapping key");
    check_err("max_connections: 0\n", "t.yaml:1:18: max_connections: must be greater than 0", "max_connections 0");
    check_err("log_ring_lines: -1\n", "t.yaml:1:17: log_ring_lines: must not be negative", "log_ring_lines < 0");
    check_err("max_body_bytes: 0\n", "t.yaml:1:17: max_body_bytes: must be greater than 0", "max_body_bytes 0");
    check_err("max_body_bytes: -5\n", "t.yaml:1:17: max_body_bytes: must be greater than 0", "max_body_bytes < 0");
    check_err("max_body_bytes: 18446744073709551616\n",
              "t.yaml:1:17: max_body_bytes: integer out of range: \"18446744073709551616\"", "max_body_bytes overflow");
    check_err("max_body_bytes: 1e6\n", "t.yaml:1:17: max_body_bytes: expected an integer, got \"1e6\"",
              "max_body_bytes not decimal");
    check_err("stream_idle_timeout: 0\n", "t.yaml:1:22: stream_idle_timeout: must be greater than 0",
              "stream_idle_timeout 0");
    check_err("max_cooldown: -1\n", "t.yaml:1:15: max_cooldown: must be greater than 0", "max_cooldown < 0");
    check_err("probe_timeout: 0\n", "t.yaml:1:16: probe_timeout: must be greater than 0", "probe_timeout 0");
    check_err("admin_key: \"a\\0b\"\n", "t.yaml:1:12: admin_key: contains a NUL character", "NUL in a string");
    check_err("max_retries: 1\n---\nmax_retries: 2\n", "t.yaml:2:1: only one YAML document is supported",
              "two documents");
    check_err("\xff\xfe" "a\0:\0", "t.yaml:1:1: only UTF-8 is supported", "UTF-16");
}

static void test_yaml_errors(void)
{
    check_err("a: [1, 2\nb: 3\n", "t.yaml:2:2: did not find expected ',' or ']'", "syntax: open flow sequence");
    check_err("a: b: c\n", "t.yaml:1:5: mapping values are not allowed in this context", "syntax: two colons");
    check_err("a:\n\tb: 1\n", "t.yaml:2:1: found character that cannot start any token", "syntax: tab");
    check_err("a: \"x\n", "t.yaml:2:1: found unexpected end of stream", "syntax: open quote");
    check_err("a: 1\nb: \xff\n", "t.yaml:2:4: invalid leading UTF-8 octet", "syntax: bad UTF-8");
    check_err("max_retries: &x 1\n", "t.yaml:1:14: max_retries: anchors and aliases are not supported", "anchor");
    check_err("max_retries: 1\nmax_failures: *x\n",
              "t.yaml:2:15: max_failures: anchors and aliases are not supported", "alias");
    check_err("&top\nmax_retries: 1\n", "t.yaml:1:1: anchors and aliases are not supported", "anchor on the root");
    check_err("base: &b {weight: 2}\nproviders:\n  - <<: *b\n", "t.yaml:1:7: base: anchors and aliases are not supported",
              "anchor inside an unknown key");
    check_err("providers:\n  - &p {name: a, base_url: \"http://h\"}\n  - *p\n",
              "t.yaml:2:5: providers[0]: anchors and aliases are not supported", "anchored provider");
}

/* "extra: " followed by `levels` nested flow sequences. */
static void nested_doc(char *text, int levels)
{
    size_t n = (size_t)sprintf(text, "extra: ");
    for (int i = 0; i < levels; i++)
        text[n++] = '[';
    for (int i = 0; i < levels; i++)
        text[n++] = ']';
    text[n++] = '\n';
    text[n] = '\0';
}

static void test_depth(void)
{
    /* The root mapping is level 1, so an unknown key may hold 31 more. */
    char text[64 + 2 * DEPTH_OVER];
    nested_doc(text, CFG_MAX_DEPTH - 1);
    struct config *c = load(text);
    ok(c && W.n == 1, "depth: %d levels load (an unknown key, one warning)", CFG_MAX_DEPTH);
    config_free(c);
    nested_doc(text, CFG_MAX_DEPTH);
    c = load(text);
    is_str(c ? "(loaded)" : E.msg, "t.yaml:1:39: extra: nesting deeper than 32 levels",
           "depth: %d levels refused at the first bracket too many", CFG_MAX_DEPTH + 1);
    config_free(c);
    nested_doc(text, DEPTH_OVER);
    c = load(text);
    is_str(c ? "(loaded)" : E.msg, "t.yaml:1:39: extra: nesting deeper than 32 levels",
           "depth: %d levels refused", DEPTH_OVER + 1);
    config_free(c);

    /* Block style nesting under a provider. */
    char block[4096];
    size_t n = (size_t)snprintf(block, sizeof block, "providers:\n");
    for (int i = 0; i < DEPTH_OVER; i++) {
        for (int s = 0; s < 2 * (i + 1); s++)
            block[n++] = ' ';
        n += (size_t)snprintf(block + n, sizeof block - n, "- k%d:\n", i);
    }
    c = load(block);
    is_str(c ? "(loaded)" : E.msg, "t.yaml:17:35: providers[0].k0: nesting deeper than 32 levels",
           "depth: deep block structure refused");
    config_free(c);
}

static void test_env(void)
{
    setenv("AS_T_KEY", "sk-secret", 1);
    setenv("AS_T_HOST", "Up.Example", 1);
    setenv("AS_T_N", "7", 1);
    setenv("AS_T_EMPTY", "", 1);
    unsetenv("AS_T_UNSET");
    struct config *c = load_ok("api_keys:\n"
                               "  - \"${AS_T_KEY}\"\n"
                               "  - plain-key\n"
                               "admin_key: \"pre-${AS_T_KEY}-$HOME-$-${AS_T_UNSET:-dflt}-${AS_T_UNSET:-}-"
                               "${AS_T_EMPTY:-e}-$${AS_T_N}-${AS_T_EMPTY}-$\"\n"
                               "max_retries: ${AS_T_N}\n"
                               "max_failures: \"${AS_T_UNSET:-}\"\n"
                               "recovery_interval: \"${AS_T_UNSET:-45}\"\n"
                               "log_file: \"${AS_T_UNSET:-}\"\n"
                               "providers:\n"
                               "  - name: \"${AS_T_UNSET:-p1}\"\n"
                               "    base_url: \"https://${AS_T_HOST}:8443/v1/\"\n"
                               "    api_key: \"${AS_T_KEY}\"\n"
                               "    exclude_params: [\"${AS_T_N}x\"]\n"
                               "  - name: p2\n"
                               "    base_url: http://h\n"
                               "    api_key: literal\n"
                               "    model_mappings:\n"
                               "      - upstream: \"${AS_T_UNSET:-gpt}\"\n",
                               "env");
    if (c) {
        is_str(c->api_keys[0], "sk-secret", "env: list item expanded");
        is_str(c->api_keys[1], "plain-key", "env: plain list item");
        is_str(c->admin_key, "pre-sk-secret-$HOME-$-dflt--e-${AS_T_N}--$",
               "env: defaults, empty values, a lone $ kept, $$ a literal $ (so $${X} is not expanded)");
        is_int(c->max_retries, 7, "env: number from a variable");
        is_int(c->max_failures, 3, "env: empty number keeps the default");
        is_int(c->recovery_interval, 45, "env: number from a default");
        ok(c->log_file == NULL, "env: ${VAR:-} unsets an optional path");
        const struct cfg_provider *p = &c->providers[0];
        is_str(p->name, "p1", "env: name from a default");
        is_str(p->base_url, "https://Up.Example:8443/v1/", "env: base_url expanded");
        is_str(p->base_url_raw, "https://${AS_T_HOST}:8443/v1/", "env: base_url_raw kept");
        is_str(p->url.host, "up.example", "env: url host from the expanded text");
        is_str(p->url.authority, "up.example:8443", "env: url authority");
        is_str(p->url.prefix, "", "env: url prefix");
        is_str(p->api_key, "sk-secret", "env: api_key expanded");
        is_str(p->api_key_raw, "${AS_T_KEY}", "env: api_key_raw kept");
        is_str(p->exclude_params[0], "7x", "env: exclude_params expanded");
        ok(c->providers[1].api_key_raw == NULL && c->providers[1].base_url_raw == NULL,
           "env: no raw text when nothing was expanded");
        is_str(c->providers[1].mappings[0].upstream, "gpt", "env: upstream expanded");
        is_str(c->providers[1].mappings[0].alias, "gpt", "env: alias defaults to the expanded upstream");
    }
    config_free(c);

    check_err("admin_key: ${AS_T_UNSET}\n", "t.yaml:1:12: admin_key: environment variable AS_T_UNSET is not set",
              "env: unset variable");
    check_err("max_retries: \"${AS_T_UNSET}\"\n",
              "t.yaml:1:14: max_retries: environment variable AS_T_UNSET is not set", "env: unset in a number");
    check_err("max_retries: \"${AS_T_KEY}\"\n", "t.yaml:1:14: max_retries: expected an integer, got \"sk-secret\"",
              "env: expanded text must be a number");
    check_err("api_keys:\n  - ok\n  - \"${AS_T_UNSET}\"\n",
              "t.yaml:3:5: api_keys[1]: environment variable AS_T_UNSET is not set", "env: unset in a list");
    check_err("api_keys: [\"${AS_T_EMPTY}\"]\n", "t.yaml:1:12: api_keys[0]: must not be empty",
              "env: empty client key refused");
    check_err(P0 "    api_key: \"Bearer ${AS_T_UNSET}\"\n",
              "t.yaml:4:14: providers[0].api_key: environment variable AS_T_UNSET is not set", "env: unset api_key");
    check_err("admin_key: \"${AS_T_KEY\"\n", "t.yaml:1:12: admin_key: unterminated \"${\" (missing '}')",
              "env: unterminated");
    check_err("admin_key: \"a ${\"\n", "t.yaml:1:12: admin_key: unterminated \"${\" (missing '}')",
              "env: unterminated at the end");
    check_err("admin_key: \"${1A}\"\n", "t.yaml:1:12: admin_key: invalid variable reference \"${1A}\"",
              "env: name starts with a digit");
    check_err("admin_key: \"${}\"\n", "t.yaml:1:12: admin_key: invalid variable reference \"${}\"", "env: empty name");
    check_err("admin_key: \"${A-B}\"\n", "t.yaml:1:12: admin_key: invalid variable reference \"${A-B}\"",
              "env: default without ':'");
    check_err("admin_key: \"${A B}\"\n", "t.yaml:1:12: admin_key: invalid variable reference \"${A B}\"",
              "env: space in a name");
    check_err("admin_key: \"${AS_T_UNSET:-${AS_T_KEY}}\"\n",
              "t.yaml:1:12: admin_key: nested \"${\" in a default is not supported", "env: nested default");

    /* Unknown keys are skipped whole: nothing in them is expanded. */
    c = load_ok("extra: \"${AS_T_UNSET}\"\nmore: {a: \"${AS_T_UNSET}\"}\n", "env: not expanded in unknown keys");
    config_free(c);
}

/* ------------------------------------------------------------------ */
/* Warnings                                                            */

static void test_unknown_keys(void)
{
    struct config *c = load_ok("max_retries: 2\n"
                               "colour: blue\n"
                               "extra:\n"
                               "  nested: {max_retries: 99}\n"
                               "  list: [1, [2, 3], {providers: x}]\n"
                               "providers:\n"
                               "  - name: a\n"
                               "    base_url: http://h\n"
                               "    region: eu\n"
                               "    model_mappings:\n"
                               "      - upstream: m\n"
                               "        note:\n"
                               "          - x\n"
                               "          - weight: 9\n"
                               "        weight: 4\n"
                               "max_failures: 5\n",
                               "unknown keys");
    if (!c)
        return;
    is_int(W.n, 4, "unknown keys: four warnings");
    is_str(W.msg[0], "t.yaml:2:1: unknown key \"colour\"", "unknown keys: top-level scalar");
    is_str(W.msg[1], "t.yaml:3:1: unknown key \"extra\"", "unknown keys: top-level nested value");
    is_str(W.msg[2], "t.yaml:9:5: providers[0]: unknown key \"region\"", "unknown keys: in a provider");
    is_str(W.msg[3], "t.yaml:12:9: providers[0].model_mappings[0]: unknown key \"note\"",
           "unknown keys: in a mapping");
    is_int(c->max_retries, 2, "unknown keys: nested look-alike ignored");
    is_int(c->providers[0].mappings[0].weight, 4, "unknown keys: value after a skipped list");
    is_int(c->max_failures, 5, "unknown keys: key after the providers");
    is_int(c->n_providers, 1, "unknown keys: one provider");
    config_free(c);

    /* Without a callback the unknown keys are still skipped. */
    c = NULL;
    const char *text = "weird: [1]\nmax_retries: 4\n";
    ok(config_load_mem(text, strlen(text), NAME, &c, &E, NULL, NULL) == 0 && c && c->max_retries == 4,
       "unknown keys: no warn callback");
    config_free(c);

    c = load_ok("\"a\\tkey\": 1\n", "unknown key with a control character");
    if (c)
        is_str(W.msg[0], "t.yaml:1:1: unknown key \"a?key\"", "unknown keys: control characters masked");
    config_free(c);
}

/* ------------------------------------------------------------------ */
/* Spans                                                               */

static void test_spans(void)
{
    /* Multi-byte characters before the keys, CRLF, comments after values,
     * flow values, a null value. */
    static const char text[] =
        "# ünïcödé ☃ comment\r\n"
        "max_failures:\r\n"
        "providers: [{name: \"é\", base_url: \"http://h\"}]   # trailing\r\n"
        "max_retries: \"5\" # c\r\n"
        "health_check_period: >-\r\n"
        "  6\r\n"
        "\r\n"
        "# end\r\n";
    size_t len = strlen(text);
    struct config *c = load_ok(text, "spans: unicode and CRLF");
    if (!c)
        return;
    const struct cfg_span *s = cfg_top_span(c, "max_failures");
    ok(s->present && s->line == 2, "spans: null value present on line 2");
    is_mem(text + s->start, s->end - s->start, "max_failures:", "spans: null value ends at the colon");
    s = cfg_top_span(c, "providers");
    ok(s->present && s->line == 3, "spans: flow providers on line 3");
    ok(s->end <= len, "spans: flow providers end in range");
    is_mem(text + s->start, s->end - s->start, "providers: [{name: \"é\", base_url: \"http://h\"}]",
           "spans: flow providers end at ']'");
    s = cfg_top_span(c, "max_retries");
    is_mem(text + s->start, s->end - s->start, "max_retries: \"5\"", "spans: quoted value after multi-byte text");
    s = cfg_top_span(c, "health_check_period");
    ok(s->present && strncmp(text + s->start, "health_check_period:", 20) == 0 && s->line == 5,
       "spans: block scalar key");
    ok(s->end > s->start && s->end <= len && text[s->end - 1] != '#',
       "spans: block scalar ends before the trailing comment");
    is_int(c->health_check_period, 6, "spans: folded scalar value");
    ok(!cfg_top_span(c, "recovery_interval")->present, "spans: absent key not present");
    config_free(c);

    /* A block sequence ends with its last scalar, not at the next key
     * after blank lines and comments. */
    static const char block[] =
        "providers:\n"
        "  - name: a\n"
        "    base_url: http://h\n"
        "\n"
        "# comment\n"
        "max_retries: 2\n";
    c = load_ok(block, "spans: block providers");
    if (c) {
        s = cfg_top_span(c, "providers");
        is_mem(block + s->start, s->end - s->start, "providers:\n  - name: a\n    base_url: http://h",
               "spans: block providers end at the last scalar");
        s = cfg_top_span(c, "max_retries");
        ok(s->line == 6, "spans: line after comments");
        is_mem(block + s->start, s->end - s->start, "max_retries: 2", "spans: after a block value");
    }
    config_free(c);

    static const char bom[] = "\xef\xbb\xbfmax_retries: 2\n";
    c = load_ok(bom, "spans: byte order mark");
    if (c) {
        s = cfg_top_span(c, "max_retries");
        is_int(s->start, 3, "spans: offsets count the byte order mark");
        is_mem(bom + s->start, s->end - s->start, "max_retries: 2", "spans: after a byte order mark");
    }
    config_free(c);
}

/* ------------------------------------------------------------------ */
/* base_url                                                            */

struct url_case {
    const char *in;
    bool https;
    const char *host;
    unsigned port;
    const char *prefix;
    const char *authority;
};

static void test_urls(void)
{
    static const struct url_case good[] = {
        { "http://h", false, "h", 80, "", "h" },
        { "https://api.openai.com", true, "api.openai.com", 443, "", "api.openai.com" },
        { "https://api.openai.com/v1", true, "api.openai.com", 443, "", "api.openai.com" },
        { "https://api.openai.com/v1/", true, "api.openai.com", 443, "", "api.openai.com" },
        { "https://h/api/v1/", true, "h", 443, "/api", "h" },
        { "https://h/api//", true, "h", 443, "/api", "h" },
        { "https://h/api//v1", true, "h", 443, "/api", "h" },
        { "https://h/apiv1", true, "h", 443, "/apiv1", "h" },
        { "https://h/v1/v1", true, "h", 443, "/v1", "h" },
        { "https://h/", true, "h", 443, "", "h" },
        { "HTTPS://H.Example:443/X", true, "h.example", 443, "/X", "h.example" },
        { "HttP://h:8080", false, "h", 8080, "", "h:8080" },
        { "http://h:80/", false, "h", 80, "", "h" },
        { "https://h:80/", true, "h", 80, "", "h:80" },
        { "http://h:443", false, "h", 443, "", "h:443" },
        { "http://10.0.0.1:65535/", false, "10.0.0.1", 65535, "", "10.0.0.1:65535" },
        { "https://[::1]:8443/p/v1", true, "::1", 8443, "/p", "[::1]:8443" },
        { "http://[2001:DB8::1]", false, "2001:db8::1", 80, "", "[2001:db8::1]" },
        { "http://[::ffff:1.2.3.4]:1/", false, "::ffff:1.2.3.4", 1, "", "[::ffff:1.2.3.4]:1" },
        { "https://my_host-1.example./a/b%20c", true, "my_host-1.example.", 443, "/a/b%20c", "my_host-1.example." },
        { "http://h/x@y", false, "h", 80, "/x@y", "h" },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const struct url_case *t = &good[i];
        struct cfg_url u;
        char err[128] = "";
        int rc = cfg_parse_url(t->in, &u, err, sizeof err);
        if (!ok(rc == 0, "url %s parses", t->in)) {
            printf("#   %s\n", err);
            continue;
        }
        ok(u.https == t->https && u.port == t->port && u.host && strcmp(u.host, t->host) == 0 && u.prefix &&
               strcmp(u.prefix, t->prefix) == 0 && u.authority && strcmp(u.authority, t->authority) == 0,
           "url %s -> https=%d host=%s port=%u prefix=%s authority=%s", t->in, t->https, t->host, t->port,
           t->prefix, t->authority);
        cfg_url_free(&u);
        ok(u.host == NULL && u.prefix == NULL && u.authority == NULL, "url %s: free clears", t->in);
    }

    static const char *const bad[][2] = {
        { "", "base_url must start with http:// or https://" },
        { "ftp://h", "base_url must start with http:// or https://" },
        { "h.example", "base_url must start with http:// or https://" },
        { "http:/h", "base_url must start with http:// or https://" },
        { "http://", "base_url has an empty host" },
        { "http:///v1", "base_url has an empty host" },
        { "http://:80", "base_url has an empty host" },
        { "http://h:0", "base_url has an invalid port" },
        { "http://h:65536", "base_url has an invalid port" },
        { "http://h:123456", "base_url has an invalid port" },
        { "http://h:", "base_url has an invalid port" },
        { "http://h:8x", "base_url has an invalid port" },
        { "http://h:-1", "base_url has an invalid port" },
        { "http://a:b:c", "base_url has an invalid port" },
        { "http://u:p@h", "base_url must not contain user info (@)" },
        { "http://@h/", "base_url must not contain user info (@)" },
        { "http://h/?a=1", "base_url must not have a query or fragment" },
        { "http://h?a", "base_url must not have a query or fragment" },
        { "http://h/#f", "base_url must not have a query or fragment" },
        { "http://h x", "base_url contains a space, control or non-ASCII character" },
        { " http://h", "base_url contains a space, control or non-ASCII character" },
        { "http://h/\t", "base_url contains a space, control or non-ASCII character" },
        { "http://h/\x7f", "base_url contains a space, control or non-ASCII character" },
        { "http://h\xc3\xa9", "base_url contains a space, control or non-ASCII character" },
        { "http://[::1", "base_url has an invalid IPv6 address" },
        { "http://[]", "base_url has an invalid IPv6 address" },
        { "http://[zz::1]", "base_url has an invalid IPv6 address" },
        { "http://[1.2.3.4]", "base_url has an invalid IPv6 address" },
        { "http://[::1]x", "base_url has an invalid host" },
        { "http://[::1]:", "base_url has an invalid port" },
        { "http://h!ost", "base_url has an invalid host" },
        { "http://h%41", "base_url has an invalid host" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cfg_url u;
        memset(&u, 0xa5, sizeof u);
        char err[128] = "";
        int rc = cfg_parse_url(bad[i][0], &u, err, sizeof err);
        ok(rc == -1 && strcmp(err, bad[i][1]) == 0 && !u.host && !u.prefix && !u.authority,
           "url \"%s\" refused: %s", bad[i][0], bad[i][1]);
        if (rc == 0 || strcmp(err, bad[i][1]) != 0)
            printf("#   got rc=%d \"%s\"\n", rc, err);
        if (rc == 0)
            cfg_url_free(&u);
    }
    struct cfg_url u;
    char small[8];
    ok(cfg_parse_url("ftp://x", &u, small, sizeof small) == -1 && strlen(small) == sizeof small - 1,
       "url: the reason is cut to the buffer");
}

/* ------------------------------------------------------------------ */
/* Garbage                                                             */

static uint32_t rng_state = 12345;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Every refusal must be a message about our file, never a crash. */
static bool sane_result(struct config *c)
{
    bool good = c ? true : strncmp(E.msg, NAME ":", strlen(NAME) + 1) == 0;
    config_free(c);
    return good;
}

static void test_garbage(void)
{
    static const char alphabet[] = "ab:-[]{}#&*!|>'\"%@`, \n\n\t?~$_0123456789\\\xc3\xa9\xff";
    static const char *const tokens[] = {
        "providers:", "- ", "name: ", "base_url: ", "\"http://h\"", "model_mappings:", "upstream: ",
        "\n", "\n  ", "\n    ", "[", "]", "{", "}", ", ", "&a ", "*a", "${X}", "${", "---\n", "? ",
        "max_retries: ", "1", "-7", "\"", "'", "|\n", ">\n", "# c\n", "api_keys: ", "!!str ", "\t", "weight: ",
    };
    char doc[GARBAGE_MAX_LEN * 4];
    bool all_sane = true;
    for (int i = 0; i < GARBAGE_DOCS; i++) {
        size_t n = 0, want = rnd() % GARBAGE_MAX_LEN;
        bool use_tokens = i % 2;
        while (n < want) {
            if (use_tokens) {
                const char *t = tokens[rnd() % (sizeof tokens / sizeof tokens[0])];
                size_t tl = strlen(t);
                memcpy(doc + n, t, tl);
                n += tl;
            } else {
                doc[n++] = alphabet[rnd() % (sizeof alphabet - 1)];
            }
        }
        all_sane &= sane_result(load_n(doc, n));
    }
    ok(all_sane, "garbage: %d random documents, no crash, sane errors", GARBAGE_DOCS);

    /* Every prefix of the sample, and random byte changes to it. */
    size_t len = strlen(SAMPLE);
    all_sane = true;
    for (size_t n = 0; n <= len; n++)
        all_sane &= sane_result(load_n(SAMPLE, n));
    ok(all_sane, "garbage: every prefix of the sample");
    char copy[sizeof SAMPLE];
    all_sane = true;
    for (int i = 0; i < MUTATIONS; i++) {
        memcpy(copy, SAMPLE, len);
        for (int k = 0; k < 1 + i % 3; k++)
            copy[rnd() % len] = alphabet[rnd() % (sizeof alphabet - 1)];
        all_sane &= sane_result(load_n(copy, len));
    }
    ok(all_sane, "garbage: %d mutations of the sample", MUTATIONS);
}

/* ------------------------------------------------------------------ */
/* The shipped example                                                 */

static void test_example(void)
{
    static const char *const where[] = { "conf/openai_proxy.yaml", "../conf/openai_proxy.yaml",
                                         "../../conf/openai_proxy.yaml" };
    const char *path = NULL;
    for (size_t i = 0; i < sizeof where / sizeof where[0] && !path; i++)
        if (access(where[i], R_OK) == 0)
            path = where[i];
    if (!path) {
        ok(1, "# SKIP conf/openai_proxy.yaml not found from here");
        return;
    }
    unsetenv("OPENAI_API_KEY");
    unsetenv("DEEPSEEK_API_KEY");
    struct config *c = NULL;
    memset(&W, 0, sizeof W);
    int rc = config_load_file(path, &c, &E, on_warn, &W);
    if (!ok(rc == 0 && c, "example: %s loads", path)) {
        printf("#   %s\n", E.msg);
        return;
    }
    is_int(W.n, 0, "example: no warnings");
    ok(c->n_providers == 2 && c->n_api_keys == 1, "example: two providers, one client key");
    if (c->n_providers == 2) {
        is_str(c->providers[0].api_key, "sk-xxxx", "example: api_key default without the environment");
        is_str(c->providers[1].url.authority, "api.deepseek.com", "example: deepseek authority");
        is_str(c->providers[1].url.prefix, "", "example: deepseek /v1 stripped");
    }
    config_free(c);
}

/* The keys of this round: defaults, inheritance, enums, maps, and
 * control bytes refused where they would reach the upstream's wire. */
static void test_round_keys(void)
{
    struct config *c = load_ok("model_retries: 2\n"
                               "first_token_timeout: 20\n"
                               "response_model: upstream\n"
                               "providers:\n"
                               "  - name: a\n"
                               "    base_url: http://h/v1\n"
                               "    timeout: 90\n"
                               "    continuation: prefill\n"
                               "    headers: {HTTP-Referer: \"https://me\", X-Title: app}\n"
                               "    forward_headers: [X-Trace]\n"
                               "    model_mappings:\n"
                               "      - upstream: m1\n"
                               "      - upstream: m2\n"
                               "        continuation: replay\n"
                               "        first_token_timeout: 5\n"
                               "  - name: b\n"
                               "    anthropic_base_url: https://api.anthropic.com\n"
                               "    anthropic_auth: bearer\n"
                               "    model_retries: 0\n"
                               "    first_token_timeout: 0\n"
                               "    stream_usage: false\n"
                               "    model_mappings: [{upstream: c1}]\n",
                               "new keys");
    if (!c)
        return;
    const struct cfg_provider *a = &c->providers[0], *b = &c->providers[1];
    is_int(c->retry_after_max, 5, "retry_after_max defaults to 5 s");
    is_int(c->request_timeout, 0, "request_timeout defaults to none");
    is_int((int)c->continuation_max_bytes, 65536, "continuation_max_bytes defaults to 64 KiB");
    is_int((int)(c->max_buffered_bytes >> 20), 64, "max_buffered_bytes defaults to 64 MiB");
    is_int(a->model_retries, 2, "a provider inherits model_retries");
    is_int(b->model_retries, 0, "... unless it gives its own (0 too)");
    is_int(a->first_token_timeout, 20, "a provider inherits first_token_timeout");
    is_int(b->first_token_timeout, 60, "... 0 means the provider's timeout");
    is_int(a->response_model, CFG_MODEL_UPSTREAM, "response_model: upstream, inherited");
    is_int(a->mappings[0].continuation, CFG_CONT_PREFILL, "a mapping inherits the provider's continuation");
    is_int(a->mappings[1].continuation, CFG_CONT_REPLAY, "... or gives its own");
    is_int(a->mappings[0].first_token_timeout, 20, "a mapping inherits first_token_timeout");
    is_int(a->mappings[1].first_token_timeout, 5, "... or gives its own");
    ok(a->stream_usage && !b->stream_usage, "stream_usage defaults to true");
    ok(a->n_headers == 2 && strcmp(a->headers[0].name, "HTTP-Referer") == 0 &&
           strcmp(a->headers[0].value, "https://me") == 0 && strcmp(a->headers[1].value, "app") == 0,
       "headers: a map of names and values, in order");
    ok(a->n_forward_headers == 1 && strcmp(a->forward_headers[0], "X-Trace") == 0, "forward_headers");
    ok(!b->base_url && b->aurl.host && strcmp(b->aurl.host, "api.anthropic.com") == 0 && b->aurl.port == 443,
       "an Anthropic-only provider: anthropic_base_url without base_url");
    is_int(b->anthropic_auth, CFG_AUTH_BEARER, "anthropic_auth: bearer");
    is_int(b->mappings[0].probe, CFG_PROBE_MESSAGES, "an Anthropic-only provider is probed with messages");
    ok(cfg_key_given(&cfg_schema_provider, b, cfg_key_find(&cfg_schema_provider, "model_retries")) &&
           !cfg_key_given(&cfg_schema_provider, a, cfg_key_find(&cfg_schema_provider, "model_retries")),
       "given bits tell a key written in the file from an inherited one");
    config_free(c);

    check_err("response_model: both\n",
              "t.yaml:1:17: response_model: must be one of alias, upstream (got \"both\")", "response_model enum");
    check_err("providers:\n  - name: a\n    base_url: http://h\n    api_key: \"sk-1\\r\\nX-Evil: 1\"\n",
              "t.yaml:4:14: providers[0].api_key: contains a control character (byte 0x0d): it would reach the "
              "upstream's wire", "a CR in an api_key");
    check_err("providers:\n  - name: a\n    base_url: http://h\n    model_mappings: [{upstream: \"m\\n1\"}]\n",
              "t.yaml:4:33: providers[0].model_mappings[0].upstream: contains a control character (byte 0x0a): it "
              "would reach the upstream's wire", "a LF in an upstream model");
    check_err("providers:\n  - name: a\n    base_url: http://h\n    headers: {X-A: \"v\\tw\"}\n",
              "t.yaml:4:20: providers[0].headers: contains a control character (byte 0x09): it would reach the "
              "upstream's wire", "a control byte in a header value");
    check_err("providers:\n  - name: a\n    base_url: http://h\n    headers: {Host: evil}\n",
              "t.yaml:2:5: providers[0]: headers: Host cannot be set here", "a reserved header");
    check_err("providers:\n  - name: a\n    base_url: http://h\n    headers: {\"X A\": v}\n",
              "t.yaml:2:5: providers[0]: headers: X A cannot be set here", "a header name that is not a token");
    check_err("providers:\n  - name: a\n    base_url: http://h\n    headers: {X-A: 1, x-a: 2}\n",
              "t.yaml:2:5: providers[0]: headers: x-a is given twice", "a header given twice");
    check_err("providers:\n  - name: a\n    base_url: http://h\n    stream_usage: maybe\n",
              "t.yaml:4:19: providers[0].stream_usage: must be true or false (got \"maybe\")", "a bool");
}

int main(void)
{
    test_sample();
    test_files();
    test_defaults();
    test_new_keys();
    test_type_errors();
    test_value_errors();
    test_yaml_errors();
    test_depth();
    test_env();
    test_unknown_keys();
    test_spans();
    test_urls();
    test_garbage();
    test_example();
    test_round_keys();
    return tap_done();
}
