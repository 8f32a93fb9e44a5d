/* Unit tests of balance.c on snapshots built from YAML: smooth weighted
 * round robin (exact interleaving, exact shares), priority groups and the
 * fallback order, combined priority and weight, the max_retries limit,
 * unhealthy and cooling-down candidates, and round-robin state that
 * survives a reload. */
#include "balance.h"
#include "buf.h"
#include "config.h"
#include "health.h"
#include "loop.h"
#include "snapshot.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static struct snapshot *load(const char *yaml)
{
    struct config *cfg = NULL;
    struct cfg_error err;
    if (config_load_mem(yaml, strlen(yaml), "t.yaml", &cfg, &err, NULL, NULL) < 0) {
        printf("# config: %s\n", err.msg);
        return NULL;
    }
    return snapshot_new(cfg);
}

static const struct alias_entry *alias(struct snapshot *s, const char *name)
{
    return snapshot_alias(s, DIALECT_OPENAI, name, strlen(name));
}

/* The plan as "prov/upstream prov/upstream ...". */
static const char *plan(struct snapshot *s, const char *name, int max_retries)
{
    static struct buf out;
    const struct candidate *c[BAL_MAX_ATTEMPTS];
    size_t n = balance_plan(alias(s, name), EPC_CHAT, max_retries, c, BAL_MAX_ATTEMPTS);
    buf_clear(&out);
    for (size_t i = 0; i < n; i++)
        buf_printf(&out, "%s%s/%s", i ? " " : "", c[i]->prov->name, c[i]->map->upstream);
    return buf_len(&out) ? buf_cstr(&out) : "";
}

/* The provider of the first attempt, k times in a row, as one letter each
 * (the provider's name is one letter in these configs). */
static const char *firsts(struct snapshot *s, const char *name, int k)
{
    static char seq[256];
    int i = 0;
    for (; i < k && i < (int)sizeof seq - 1; i++) {
        const struct candidate *c[1];
        seq[i] = balance_plan(alias(s, name), EPC_CHAT, 1, c, 1) == 1 ? c[0]->prov->name[0] : '?';
    }
    seq[i] = '\0';
    return seq;
}

static struct health_entry *health_of(struct snapshot *s, const char *name, const char *prov)
{
    const struct alias_entry *a = alias(s, name);
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->cands[i].prov->name, prov) == 0)
            return a->cands[i].health;
    return NULL;
}

static const char CONFIG[] =
    "providers:\n"
    "  - name: a\n"
    "    base_url: http://127.0.0.1:1\n"
    "    model_mappings:\n"
    "      - {upstream: a32, alias: w32, weight: 3}\n"
    "      - {upstream: a10, alias: w10, weight: 10}\n"
    "      - {upstream: a-p, alias: prio}\n"
    "      - {upstream: a-c, alias: combined, priority: 2, weight: 3}\n"
    "      - {upstream: a-h, alias: health}\n"
    "      - {upstream: a-o, alias: order, weight: 1}\n"
    "  - name: b\n"
    "    base_url: http://127.0.0.1:2\n"
    "    weight: 1\n"
    "    model_mappings:\n"
    "      - {upstream: b32, alias: w32, weight: 2}\n"
    "      - {upstream: b10, alias: w10}\n"
    "      - {upstream: b-p, alias: prio}\n"
    "      - {upstream: b-h, alias: health}\n"
    "      - {upstream: b-o, alias: order, weight: 4}\n"
    "  - name: c\n"
    "    base_url: http://127.0.0.1:3\n"
    "    priority: 1\n"
    "    weight: 2\n"
    "    model_mappings:\n"
    "      - {upstream: c-p, alias: prio, priority: -1}\n"
    "      - {upstream: c-c, alias: combined, weight: 2}\n"
    "      - {upstream: c-h, alias: health}\n"
    "      - {upstream: c-o, alias: order, weight: 4}\n"
    "  - name: d\n"
    "    base_url: http://127.0.0.1:4\n"
    "    priority: 3\n"
    "    model_mappings:\n"
    "      - {upstream: d-p, alias: prio}\n"
    "      - {upstream: d-o, alias: order, weight: 9, priority: -5}\n";

static void test_swrr(struct snapshot *s)
{
    /* nginx's smooth weighted round robin: 3:2 is a b a b a, repeated. */
    is_str(firsts(s, "w32", 10), "ababaababa", "weights 3:2 interleave exactly");
    /* 10:1: the one comes in the middle of the ten, never in a burst. */
    is_str(firsts(s, "w10", 22), "aaaaabaaaaaaaaaabaaaaa", "weights 10:1 send ten to one, spread out");
    int na = 0, nb = 0;
    const char *seq = firsts(s, "w32", 200);
    for (const char *p = seq; *p; p++)
        na += *p == 'a', nb += *p == 'b';
    ok(na == 120 && nb == 80, "200 picks at 3:2 are exactly 120:80 (%d:%d)", na, nb);
}

static void test_order(struct snapshot *s)
{
    /* prio: a and b at 0 with weight 1, c at 1 - 1 = 0 with weight 2 (its
     * provider's), d at 3.  The first attempt is c (the heaviest of the
     * best group); the rest follow priority, weight descending, then config
     * order (a before b). */
    is_str(plan(s, "prio", 4), "c/c-p a/a-p b/b-p d/d-p",
           "first from the best priority group, then priority, weight desc, config order");
    is_str(plan(s, "prio", 4), "a/a-p c/c-p b/b-p d/d-p",
           "the next request starts with another member of the group; the rest keep their order");
    /* order: d alone at the best priority (3 - 5); then b (0, weight 4),
     * a (0, weight 1), and c last (priority 1) although it weighs 8. */
    is_str(plan(s, "order", 4), "d/d-o b/b-o a/a-o c/c-o", "fallbacks: priority first, then weight descending");
    is_str(plan(s, "order", 2), "d/d-o b/b-o", "max_retries 2: two attempts");
    is_str(plan(s, "order", 1), "d/d-o", "max_retries 1: one attempt");
    is_str(plan(s, "order", 0), "d/d-o", "max_retries 0 counts as 1");
    is_str(plan(s, "order", -5), "d/d-o", "a negative max_retries counts as 1");
    is_str(plan(s, "order", 99), "d/d-o b/b-o a/a-o c/c-o", "max_retries over the candidates: all of them");
    const struct candidate *c[BAL_MAX_ATTEMPTS];
    is_int(balance_plan(alias(s, "order"), EPC_CHAT, 99, c, 2), 2, "and never more than the caller's room");
    is_int(balance_plan(NULL, EPC_CHAT, 3, c, 2), 0, "no alias: no plan");
}

static void test_combined(struct snapshot *s)
{
    /* combined: a-c priority 0 + 2, weight 1 x 3; c-c priority 1 + 0 = 1,
     * weight 2 x 2.  c wins on priority, every time. */
    const struct alias_entry *a = alias(s, "combined");
    ok(a->n == 2 && a->cands[0].priority == 2 && a->cands[0].weight == 3 && a->cands[1].priority == 1 &&
       a->cands[1].weight == 4, "combined priority = provider + mapping, weight = provider x mapping");
    is_str(firsts(s, "combined", 4), "cccc", "the better combined priority always goes first");
    is_str(plan(s, "combined", 2), "c/c-c a/a-c", "... and the other is the fallback");
}

static void test_health(struct snapshot *s)
{
    struct health_entry *ha = health_of(s, "health", "a");
    struct health_entry *hb = health_of(s, "health", "b");
    struct health_entry *hc = health_of(s, "health", "c");
    is_str(plan(s, "health", 3), "a/a-h b/b-h c/c-h", "all healthy: all in the plan");
    ha->healthy = false;
    ha->trial_after = loop_now() + 60000;
    ok(strstr(plan(s, "health", 3), "a/") == NULL, "an unhealthy candidate is left out during its wait");
    hb->cooldown_until = loop_now() + 60000;
    is_str(plan(s, "health", 3), "c/c-h", "a cooling-down candidate is left out too");
    ha->trial_after = loop_now();
    is_str(plan(s, "health", 3), "a/a-h c/c-h", "after its wait, one trial goes first, a healthy one after it");
    ha->trial_running = true;
    is_str(plan(s, "health", 3), "c/c-h", "one trial at a time");
    ha->trial_running = false;
    is_str(plan(s, "health", 1), "a/a-h c/c-h", "a trial is an extra attempt: never the last while one is healthy");
    ha->healthy = true;
    hc->healthy = false;
    hc->trial_after = loop_now();
    hb->cooldown_until = 0;
    const char *p2 = plan(s, "health", 3);
    ok(strncmp(p2, "c/", 2) != 0, "a recovering candidate never goes ahead of a better healthy one (%s)", p2);
    hb->cooldown_until = loop_now() + 60000;
    ha->healthy = hc->healthy = false;
    ha->trial_after = hc->trial_after = loop_now() + 60000;
    const char *all = plan(s, "health", 3);
    ok(strstr(all, "a/") && strstr(all, "b/") && strstr(all, "c/"),
       "none usable: every candidate is tried, as the reference does (%s)", all);
    ha->healthy = hc->healthy = true;
    hb->cooldown_until = 0;
    const char *back = plan(s, "health", 3);
    ok(strstr(back, "a/") && strstr(back, "b/") && strstr(back, "c/"), "back in rotation when healthy again");
}

static void test_reload(struct snapshot *s)
{
    /* Two picks on the old snapshot, then a reload of the same file: the
     * round-robin position lives in the stat entries and carries over. */
    struct snapshot *fresh = load(CONFIG);
    ok(fresh != NULL, "the same config loads again");
    if (!fresh)
        return;
    char before[8], after[8];
    snprintf(before, sizeof before, "%s", firsts(s, "w32", 2));
    snprintf(after, sizeof after, "%s", firsts(fresh, "w32", 3));
    char joined[16];
    snprintf(joined, sizeof joined, "%s%s", before, after);
    is_str(joined, "ababa", "a reload keeps the round-robin position");
    snapshot_unref(fresh);
}

int main(void)
{
    loop_init();
    struct snapshot *s = load(CONFIG);
    ok(s != NULL, "config loads");
    if (!s)
        return tap_done();
    test_swrr(s);
    test_order(s);
    test_combined(s);
    test_health(s);
    test_reload(s);
    snapshot_unref(s);
    health_free_all();
    return tap_done();
}
