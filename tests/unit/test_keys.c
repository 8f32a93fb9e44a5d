/* Unit tests of keys.c: the model globs (exact, leading / trailing /
 * middle / several stars, empty pattern and name, backtracking, a
 * pathological pattern against a long name stays linear), who a token
 * belongs to (a named key given by key or by key_sha256, a legacy api_keys
 * entry, an unknown token, an open gateway), what keys_admit refuses and
 * why (disabled, expired, daily tokens with a retry at the day's end, rpm
 * with a retry after which it admits, max_concurrent until keys_done gives
 * the slot back), the refusal and answer counters per key, the allow-list,
 * and the refcounted state table (same name, same state; kept across a
 * "reload"; freed with its last reference).
 *
 * The config is built here by hand and its keys linked to their states
 * the way snapshot.c's link_keys does. */
#include "keys.h"
#include "limiter.h"
#include "tap.h"
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A day far from the epoch, and a time an hour into it. */
#define DAY 20000
#define DAY_MS (DAY * LIMIT_MS_PER_DAY)
#define NOW (DAY_MS + 3600 * 1000LL)

static const struct limit_day TODAY = { DAY, DAY_MS, DAY_MS + LIMIT_MS_PER_DAY };

/* ---------------- globs ---------------- */

static void test_glob(void)
{
    static const struct {
        const char *p, *s;
        bool want;
    } cases[] = {
        { "gpt-4o", "gpt-4o", true },
        { "gpt-4o", "gpt-4o-mini", false },
        { "gpt-4o-mini", "gpt-4o", false },
        { "gpt-4o", "gpt-4O", false },
        { "GPT-*", "gpt-4o", false },
        { "*", "gpt-4o", true },
        { "*", "", true },
        { "**", "", true },
        { "***", "abc", true },
        { "", "", true },
        { "", "a", false },
        { "a", "", false },
        { "a*", "", false },
        { "*a", "", false },
        { "gpt-*", "gpt-4o", true },
        { "gpt-*", "gpt-", true },
        { "gpt-*", "gpt", false },
        { "gpt-*", "xgpt-4o", false },
        { "*-mini", "gpt-4o-mini", true },
        { "*-mini", "-mini", true },
        { "*-mini", "gpt-4o-mini-2024", false },
        { "gpt*mini", "gpt-4o-mini", true },
        { "gpt*mini", "gptmini", true },
        { "gpt*mini", "gpt-4o-mini2", false },
        { "gpt*mini", "xgpt-4o-mini", false },
        { "*gpt*", "my-gpt-model", true },
        { "*gpt*", "gp-t", false },
        { "a*b*c", "abc", true },
        { "a*b*c", "aXbYbZc", true },
        { "a*b*c", "aXbYbZcc", true },
        { "a*b*c", "aXbYbZcX", false },
        { "a*b*c", "acb", false },
        { "a*b*c*", "aXbYcZ", true },
        { "*ab", "aab", true },
        { "*aab", "aaab", true },
        { "*aab", "aabab", false },
        { "a*a", "a", false },
        { "a*a", "aa", true },
        { "*a*a*", "aXa", true },
        { "*a*a*", "aX", false },
        { "claude-3-*-sonnet*", "claude-3-5-sonnet-20241022", true },
        { "claude-3-*-sonnet*", "claude-3-opus", false },
        /* only * is special */
        { "gpt-?", "gpt-4", false },
        { "gpt-?", "gpt-?", true },
        { "gpt-[4]", "gpt-4", false },
        { "gpt.4", "gpt-4", false },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        is_int(keys_glob(cases[i].p, cases[i].s), cases[i].want, "glob \"%s\" vs \"%s\": %s", cases[i].p, cases[i].s,
               cases[i].want ? "match" : "no match");
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Patterns that take exponential time in a naive recursive matcher. */
static void test_glob_pathological(void)
{
    enum { N = 200000 };
    char *as = malloc(N + 2);
    if (!as) {
        printf("Bail out! out of memory\n");
        exit(1);
    }
    memset(as, 'a', N);
    as[N] = '\0';
    char pat[256] = "";
    for (int i = 0; i < 40; i++)
        strcat(pat, "*a");
    strcat(pat, "*b");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ok(!keys_glob("*a*a*a*a*b", as), "\"*a*a*a*a*b\" vs %d a's: no match", N);
    ok(!keys_glob(pat, as), "(*a)x40*b vs %d a's: no match", N);
    ok(!keys_glob("*aaaaaaaaaaaaaaaaab", as), "*a{17}b vs %d a's: no match", N);
    as[N] = 'b';
    as[N + 1] = '\0';
    ok(keys_glob("*a*a*a*a*b", as), "\"*a*a*a*a*b\" vs %d a's and a b: match", N);
    ok(keys_glob(pat, as), "(*a)x40*b vs %d a's and a b: match", N);
    ok(keys_glob("*aaaaaaaaaaaaaaaaab", as), "*a{17}b vs %d a's and a b: match", N);
    double took = seconds_since(&t0);
    ok(took < 2.0, "the six pathological globs take %.3f s (< 2 s)", took);
    free(as);
}

/* ---------------- a config with keys ---------------- */

#define TOK_ALICE "sk-alice-0123456789"
#define TOK_BOB "sk-bob-by-sha256"
#define TOK_LEGACY0 "legacy-zero"
#define TOK_LEGACY1 "legacy-one"

struct fixture {
    struct config cfg;
    struct cfg_client_key keys[2];
    char *api_keys[2];
    char bob_hex[65];
    struct key_state *legacy[2];
    struct key_state *open;
};

static char *alice_models[] = { "gpt-*", "claude-3-5-sonnet", "*-mini" };

static void hex_of(const uint8_t d[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* alice: given by key, with models; bob: given by key_sha256 only (the
 * file need not hold the token); two legacy api_keys when legacy. */
static void fixture_init(struct fixture *f, bool named, bool legacy)
{
    memset(f, 0, sizeof *f);
    f->cfg.path = "<test>";
    if (named) {
        struct cfg_client_key *a = &f->keys[0], *b = &f->keys[1];
        a->name = "alice";
        a->key = TOK_ALICE;
        sha256(TOK_ALICE, strlen(TOK_ALICE), a->digest);
        a->models = alice_models;
        a->n_models = ARRAY_LEN(alice_models);
        a->expires_day = -1;
        b->name = "bob";
        sha256(TOK_BOB, strlen(TOK_BOB), b->digest);
        hex_of(b->digest, f->bob_hex);
        b->key_sha256 = f->bob_hex;
        b->expires_day = -1;
        f->cfg.keys = f->keys;
        f->cfg.n_keys = 2;
    }
    if (legacy) {
        f->api_keys[0] = TOK_LEGACY0;
        f->api_keys[1] = TOK_LEGACY1;
        f->cfg.api_keys = f->api_keys;
        f->cfg.n_api_keys = 2;
    }
}

/* As snapshot.c's link_keys. */
static void fixture_link(struct fixture *f)
{
    struct config *cfg = &f->cfg;
    for (size_t i = 0; i < cfg->n_keys; i++)
        cfg->keys[i].state = key_state_get(cfg->keys[i].name);
    for (size_t i = 0; i < cfg->n_api_keys; i++) {
        char name[32];
        snprintf(name, sizeof name, "api_keys[%zu]", i);
        f->legacy[i] = key_state_get(name);
    }
    if (!cfg->n_keys && !cfg->n_api_keys)
        f->open = key_state_get(KEY_OPEN_NAME);
}

/* As snapshot.c's unlink_keys. */
static void fixture_unlink(struct fixture *f)
{
    for (size_t i = 0; i < f->cfg.n_keys; i++) {
        key_state_put(f->cfg.keys[i].state);
        f->cfg.keys[i].state = NULL;
    }
    for (size_t i = 0; i < f->cfg.n_api_keys; i++)
        key_state_put(f->legacy[i]);
    key_state_put(f->open);
    f->open = NULL;
}

static int identify(struct fixture *f, const char *tok, struct principal *who)
{
    return keys_identify(&f->cfg, f->legacy, f->open, tok, strlen(tok), who);
}

static void test_identify(void)
{
    struct fixture f;
    struct principal who;
    fixture_init(&f, true, true);
    fixture_link(&f);

    is_int(identify(&f, TOK_ALICE, &who), 0, "a named key (key:) is found");
    is_str(who.name, "alice", "... by its name");
    ok(who.key == &f.keys[0], "... the config's key");
    ok(who.state == f.keys[0].state && who.state, "... with its state");
    ok(!who.holds_slot, "... no slot yet");

    is_int(identify(&f, TOK_BOB, &who), 0, "a key_sha256-only key is found by its token");
    is_str(who.name, "bob", "... named bob");
    ok(who.key == &f.keys[1] && who.state == f.keys[1].state, "... its key and state");
    ok(who.key && !who.key->key, "... whose token the config does not hold");

    is_int(identify(&f, TOK_LEGACY0, &who), 0, "a legacy api_keys entry is found");
    is_str(who.name, "api_keys[0]", "... named after its legacy state");
    ok(!who.key, "... no named key");
    ok(who.state == f.legacy[0], "... its legacy state");
    is_int(identify(&f, TOK_LEGACY1, &who), 0, "the second legacy entry");
    is_str(who.name, "api_keys[1]", "... named api_keys[1]");
    ok(who.state == f.legacy[1], "... its own state");

    is_int(keys_identify(&f.cfg, NULL, NULL, TOK_LEGACY1, strlen(TOK_LEGACY1), &who), 0,
           "a legacy entry without legacy states (out of memory)");
    is_str(who.name, "api_keys", "... is named api_keys");
    ok(!who.state && !who.key, "... with no state");

    static const char *const unknown[] = {
        "sk-nobody", "", "sk-alice-012345678", "sk-alice-01234567890", "legacy-zer", "legacy-zero ", "alice", "bob",
        "api_keys[0]", "(open)",
    };
    for (size_t i = 0; i < ARRAY_LEN(unknown); i++) {
        memset(&who, 0x5a, sizeof who);
        is_int(identify(&f, unknown[i], &who), -1, "unknown token \"%s\": -1", unknown[i]);
        ok(!who.name && !who.key && !who.state && !who.holds_slot, "... and *who cleared");
    }
    /* The token is (pointer, length): bytes past n are not part of it. */
    is_int(keys_identify(&f.cfg, f.legacy, NULL, TOK_ALICE "xyz", strlen(TOK_ALICE), &who), 0,
           "a token is its n bytes, not up to a NUL");
    is_str(who.name, "alice", "... alice");
    is_int(keys_identify(&f.cfg, f.legacy, NULL, TOK_LEGACY0 "xyz", strlen(TOK_LEGACY0), &who), 0,
           "the same for a legacy key");
    is_str(who.name, "api_keys[0]", "... api_keys[0]");
    /* A token both a named key and a legacy entry: the named key wins. */
    f.api_keys[1] = TOK_BOB;
    is_int(identify(&f, TOK_BOB, &who), 0, "a token that is both a named and a legacy key");
    is_str(who.name, "bob", "... is the named key");
    f.api_keys[1] = TOK_LEGACY1;
    fixture_unlink(&f);

    /* Named keys only: legacy tokens mean nothing. */
    fixture_init(&f, true, false);
    fixture_link(&f);
    is_int(identify(&f, TOK_LEGACY0, &who), -1, "no api_keys: a legacy-looking token is unknown");
    is_int(identify(&f, TOK_ALICE, &who), 0, "... while alice is found");
    fixture_unlink(&f);

    /* Legacy only. */
    fixture_init(&f, false, true);
    fixture_link(&f);
    is_int(identify(&f, TOK_ALICE, &who), -1, "api_keys only: a named token is unknown");
    is_int(identify(&f, TOK_LEGACY1, &who), 0, "... a legacy one is found");
    is_str(who.name, "api_keys[1]", "... api_keys[1]");
    fixture_unlink(&f);

    /* An open gateway: anyone, accounted as (open). */
    fixture_init(&f, false, false);
    fixture_link(&f);
    ok(f.open != NULL, "an open gateway has an (open) state");
    static const char *const anyone[] = { "", "anything", TOK_ALICE };
    for (size_t i = 0; i < ARRAY_LEN(anyone); i++) {
        is_int(identify(&f, anyone[i], &who), 0, "open gateway: token \"%s\" is let in", anyone[i]);
        is_str(who.name, KEY_OPEN_NAME, "... as " KEY_OPEN_NAME);
        ok(!who.key && who.state == f.open, "... no key, the open state");
    }
    is_int(keys_identify(&f.cfg, NULL, NULL, NULL, 0, &who), 0, "open gateway: no token at all");
    is_str(who.name, "(open)", "... (open)");
    fixture_unlink(&f);
    ok(key_states() == NULL, "every state freed with its last reference");
}

/* ---------------- admission ---------------- */

/* One request of the token through identify and admit. */
static enum key_refusal admit(struct fixture *f, const char *tok, struct principal *who, int64_t now,
                              const struct limit_day *day, int64_t *retry)
{
    if (identify(f, tok, who) < 0)
        return KR_INVALID;
    *retry = -12345;
    return keys_admit(who, now, day, retry);
}

static void test_disabled_expired(void)
{
    struct fixture f;
    struct principal who;
    int64_t retry;
    fixture_init(&f, true, true);
    fixture_link(&f);
    struct key_state *a = f.keys[0].state, *b = f.keys[1].state;

    f.keys[0].disabled = true;
    is_int(admit(&f, TOK_ALICE, &who, NOW, &TODAY, &retry), KR_DISABLED, "a disabled key: KR_DISABLED");
    is_int(retry, 0, "... no point retrying (0)");
    ok(!who.holds_slot && a->lim.in_flight == 0, "... no slot taken");
    is_int(a->refused[KR_DISABLED], 1, "... counted as disabled");
    keys_done(&who, 401);
    is_int(a->lim.in_flight, 0, "... keys_done gives back no slot it did not take");
    is_int(a->by_class[4], 1, "... its 401 counted");
    f.keys[0].expires_day = DAY;
    is_int(admit(&f, TOK_ALICE, &who, NOW, &TODAY, &retry), KR_DISABLED, "disabled and expired: disabled first");
    f.keys[0].disabled = false;

    is_int(admit(&f, TOK_ALICE, &who, NOW, &TODAY, &retry), KR_EXPIRED, "expires today: KR_EXPIRED");
    is_int(retry, 0, "... no point retrying (0)");
    ok(!who.holds_slot && a->lim.in_flight == 0, "... no slot taken");
    f.keys[0].expires_day = DAY - 30;
    is_int(admit(&f, TOK_ALICE, &who, NOW, &TODAY, &retry), KR_EXPIRED, "expired a month ago: KR_EXPIRED");
    is_int(a->refused[KR_EXPIRED], 2, "... two expired refusals counted");
    is_int(a->refused[KR_DISABLED], 2, "... two disabled ones");
    f.keys[0].expires_day = DAY + 1;
    is_int(admit(&f, TOK_ALICE, &who, NOW, &TODAY, &retry), KR__COUNT, "expires tomorrow: admitted");
    is_int(retry, 0, "... retry 0");
    ok(who.holds_slot && a->lim.in_flight == 1, "... holding a slot");
    keys_done(&who, 200);
    struct limit_day tomorrow = { DAY + 1, TODAY.end_ms, TODAY.end_ms + LIMIT_MS_PER_DAY };
    is_int(admit(&f, TOK_ALICE, &who, TODAY.end_ms, &tomorrow, &retry), KR_EXPIRED,
           "... and refused from its first millisecond");
    f.keys[0].expires_day = 0;
    is_int(admit(&f, TOK_ALICE, &who, NOW, &TODAY, &retry), KR_EXPIRED, "expires 1970-01-01 (day 0): expired");
    f.keys[0].expires_day = -1;
    is_int(admit(&f, TOK_ALICE, &who, NOW, &TODAY, &retry), KR__COUNT, "no expiry (-1): admitted");
    keys_done(&who, 200);
    is_int(a->refused[KR_EXPIRED], 4, "alice: 4 expired refusals");
    int other = 0;
    for (int r = 0; r < KR__COUNT; r++)
        other += r != KR_EXPIRED && r != KR_DISABLED ? (int)a->refused[r] : 0;
    is_int(other, 0, "... and no other kind");
    uint64_t bob_refused = 0;
    for (int r = 0; r < KR__COUNT; r++)
        bob_refused += b->refused[r];
    is_int(bob_refused, 0, "bob's counters untouched by alice's refusals");
    is_int(a->by_class[2], 2, "alice: two 2xx answers");
    is_int(a->lim.in_flight, 0, "alice: nothing in flight");

    /* Legacy keys and the open gateway have no such limits. */
    is_int(admit(&f, TOK_LEGACY0, &who, NOW, &TODAY, &retry), KR__COUNT, "a legacy key: admitted");
    ok(who.holds_slot && f.legacy[0]->lim.in_flight == 1, "... with a slot on its state");
    keys_done(&who, 204);
    is_int(f.legacy[0]->lim.in_flight, 0, "... given back");
    is_int(f.legacy[0]->by_class[2], 1, "... its 2xx counted on api_keys[0]");
    ok(keys_allows(&who, "anything-at-all"), "... any model allowed");
    fixture_unlink(&f);
    ok(key_states() == NULL, "every state freed");
}

static void test_tokens(void)
{
    struct fixture f;
    struct principal who;
    int64_t retry;
    fixture_init(&f, true, false);
    fixture_link(&f);
    struct key_state *b = f.keys[1].state;
    f.keys[1].daily_tokens = 1000;

    limit_tokens_charge(&b->lim, DAY, 999);
    is_int(admit(&f, TOK_BOB, &who, NOW, &TODAY, &retry), KR__COUNT, "999 of 1000 tokens used: admitted");
    keys_done(&who, 200);
    limit_tokens_charge(&b->lim, DAY, 1);
    is_int(admit(&f, TOK_BOB, &who, NOW, &TODAY, &retry), KR_TOKENS, "1000 of 1000 used: KR_TOKENS");
    is_int(retry, TODAY.end_ms - NOW, "... retry at the end of the day (23 h)");
    ok(!who.holds_slot && b->lim.in_flight == 0, "... no slot taken");
    is_int(admit(&f, TOK_BOB, &who, TODAY.end_ms - 1, &TODAY, &retry), KR_TOKENS, "... still at 23:59:59.999");
    is_int(retry, 1, "... retry in 1 ms");
    is_int(b->refused[KR_TOKENS], 2, "two daily_tokens refusals counted");
    limit_tokens_charge(&b->lim, DAY, 5000);
    is_int(admit(&f, TOK_BOB, &who, NOW, &TODAY, &retry), KR_TOKENS, "an overshoot: still KR_TOKENS");
    struct limit_day tomorrow = { DAY + 1, TODAY.end_ms, TODAY.end_ms + LIMIT_MS_PER_DAY };
    is_int(admit(&f, TOK_BOB, &who, TODAY.end_ms, &tomorrow, &retry), KR__COUNT, "the next day: admitted again");
    keys_done(&who, 200);
    f.keys[1].daily_tokens = 0;
    limit_tokens_charge(&b->lim, DAY + 1, UINT64_MAX);
    is_int(admit(&f, TOK_BOB, &who, TODAY.end_ms, &tomorrow, &retry), KR__COUNT, "daily_tokens 0: no limit");
    keys_done(&who, 200);
    is_int(f.keys[0].state->refused[KR_TOKENS], 0, "alice's counters untouched");
    fixture_unlink(&f);
}

static void test_rpm(void)
{
    struct fixture f;
    struct principal who;
    int64_t retry;
    fixture_init(&f, true, false);
    fixture_link(&f);
    struct key_state *a = f.keys[0].state;
    f.keys[0].rpm = 2;

    /* keys_admit only checks: a request counts once keys_count says the
     * allow-list passed it. */
    for (int i = 0; i < 5; i++) {
        is_int(admit(&f, TOK_ALICE, &who, NOW, &TODAY, &retry), KR__COUNT, "rpm 2: uncounted request %d admitted",
               i + 1);
        keys_refused(&who, KR_MODEL);
        keys_done(&who, 403);
    }
    is_int(a->refused[KR_MODEL], 5, "five model refusals counted");
    is_int(a->by_class[4], 5, "... five 4xx answers");
    is_int(limit_rpm_used(&a->lim, NOW), 0, "... none of them in the rpm window");

    is_int(admit(&f, TOK_ALICE, &who, NOW, &TODAY, &retry), KR__COUNT, "rpm 2: first admitted");
    is_int(retry, 0, "... retry 0");
    keys_count(&who, NOW);
    keys_done(&who, 200);
    is_int(admit(&f, TOK_ALICE, &who, NOW + 10, &TODAY, &retry), KR__COUNT, "rpm 2: second admitted");
    keys_count(&who, NOW + 10);
    keys_done(&who, 200);
    is_int(admit(&f, TOK_ALICE, &who, NOW + 20, &TODAY, &retry), KR_RPM, "rpm 2: third within a minute: KR_RPM");
    ok(retry > 0 && retry <= 61000, "... retry_ms %lld in (0, 61000]", (long long)retry);
    ok(retry >= 60000 - 20, "... about a minute (%lld ms)", (long long)retry);
    ok(!who.holds_slot && a->lim.in_flight == 0, "... no slot taken");
    is_int(a->refused[KR_RPM], 1, "... counted as rpm");
    int64_t r1 = retry;
    is_int(admit(&f, TOK_ALICE, &who, NOW + 20 + r1 - 1, &TODAY, &retry), KR_RPM, "... still refused 1 ms early");
    is_int(admit(&f, TOK_ALICE, &who, NOW + 20 + r1, &TODAY, &retry), KR__COUNT, "... admitted after retry_ms");
    keys_done(&who, 200);
    is_int(a->refused[KR_RPM], 2, "two rpm refusals");
    is_int(f.keys[1].state->refused[KR_RPM], 0, "bob's counters untouched");
    is_int(admit(&f, TOK_BOB, &who, NOW + 20, &TODAY, &retry), KR__COUNT, "bob (no rpm) admitted meanwhile");
    keys_done(&who, 200);
    fixture_unlink(&f);
}

static void test_concurrent(void)
{
    struct fixture f;
    struct principal p1, p2, p3;
    int64_t retry;
    fixture_init(&f, true, false);
    fixture_link(&f);
    struct key_state *a = f.keys[0].state;
    f.keys[0].max_concurrent = 2;

    is_int(admit(&f, TOK_ALICE, &p1, NOW, &TODAY, &retry), KR__COUNT, "max_concurrent 2: first admitted");
    ok(p1.holds_slot, "... holds a slot");
    is_int(admit(&f, TOK_ALICE, &p2, NOW, &TODAY, &retry), KR__COUNT, "second admitted");
    is_int(a->lim.in_flight, 2, "two in flight");
    is_int(admit(&f, TOK_ALICE, &p3, NOW, &TODAY, &retry), KR_CONCURRENT, "third: KR_CONCURRENT");
    is_int(retry, LIMIT_CONCURRENCY_RETRY_MS, "... retry LIMIT_CONCURRENCY_RETRY_MS");
    ok(!p3.holds_slot, "... no slot");
    is_int(a->lim.in_flight, 2, "... still two in flight");
    is_int(a->refused[KR_CONCURRENT], 1, "... counted as concurrent");
    keys_done(&p3, 429);
    is_int(a->lim.in_flight, 2, "keys_done of the refused one gives back nothing");
    is_int(a->by_class[4], 1, "... its 429 counted");
    keys_done(&p1, 200);
    ok(!p1.holds_slot, "keys_done clears holds_slot");
    is_int(a->lim.in_flight, 1, "... and frees the slot");
    keys_done(&p1, 200);
    is_int(a->lim.in_flight, 1, "a second keys_done frees nothing more");
    is_int(admit(&f, TOK_ALICE, &p3, NOW, &TODAY, &retry), KR__COUNT, "a freed slot admits the next");
    is_int(admit(&f, TOK_ALICE, &p1, NOW, &TODAY, &retry), KR_CONCURRENT, "... and only that one");
    is_int(a->refused[KR_CONCURRENT], 2, "two concurrency refusals");
    keys_done(&p2, 502);
    keys_done(&p3, 0);
    is_int(a->lim.in_flight, 0, "all slots back");
    is_int(a->by_class[5], 1, "a 5xx counted");
    is_int(a->by_class[0], 1, "status 0 (no answer) counted in [0]");
    is_int(a->by_class[2], 2, "two 2xx (the double keys_done counts twice)");
    /* Out-of-range statuses count as no answer. */
    struct principal q;
    is_int(admit(&f, TOK_ALICE, &q, NOW, &TODAY, &retry), KR__COUNT, "admitted");
    keys_done(&q, 99);
    keys_done(&q, 600);
    keys_done(&q, -1);
    keys_done(&q, 599);
    is_int(a->by_class[0], 4, "statuses 99, 600, -1 count in [0]");
    is_int(a->by_class[5], 2, "599 in [5]");
    /* The open gateway takes slots too (no limit). */
    fixture_unlink(&f);
    fixture_init(&f, false, false);
    fixture_link(&f);
    for (int i = 0; i < 100; i++)
        admit(&f, "x", &q, NOW, &TODAY, &retry);
    is_int(f.open->lim.in_flight, 100, "open gateway: 100 in flight, no limit");
    f.open->lim.in_flight = 0;
    fixture_unlink(&f);
    ok(key_states() == NULL, "every state freed");
}

static void test_no_state(void)
{
    struct fixture f;
    struct principal who;
    int64_t retry = -1;
    fixture_init(&f, true, false);   /* not linked: states NULL, as when out of memory */
    f.keys[0].max_concurrent = 1;
    f.keys[0].rpm = 1;
    is_int(admit(&f, TOK_ALICE, &who, NOW, &TODAY, &retry), KR__COUNT, "no state: admitted");
    ok(!who.holds_slot, "... without a slot");
    is_int(retry, 0, "... retry 0");
    keys_count(&who, NOW);
    keys_refused(&who, KR_MODEL);
    keys_done(&who, 200);
    f.keys[0].disabled = true;
    is_int(admit(&f, TOK_ALICE, &who, NOW, &TODAY, &retry), KR_DISABLED, "no state: disabled still refused");
}

/* ---------------- the allow-list ---------------- */

static void test_allows(void)
{
    struct fixture f;
    struct principal who;
    fixture_init(&f, true, true);
    fixture_link(&f);
    identify(&f, TOK_ALICE, &who);
    static const struct {
        const char *alias;
        bool want;
    } alice[] = {
        { "gpt-4o", true },          { "gpt-", true },           { "gpt", false },
        { "claude-3-5-sonnet", true }, { "claude-3-5-sonnet-x", false }, { "claude-3-opus", false },
        { "o4-mini", true },         { "mini", false },          { "", false },
        { "GPT-4o", false },
    };
    for (size_t i = 0; i < ARRAY_LEN(alice); i++)
        is_int(keys_allows(&who, alice[i].alias), alice[i].want, "alice (gpt-*, claude-3-5-sonnet, *-mini) %s \"%s\"",
               alice[i].want ? "may use" : "may not use", alice[i].alias);
    identify(&f, TOK_BOB, &who);
    ok(keys_allows(&who, "anything") && keys_allows(&who, ""), "bob (no models): every alias");
    identify(&f, TOK_LEGACY0, &who);
    ok(keys_allows(&who, "anything"), "a legacy key: every alias");
    static char *none[] = { "" };
    f.keys[1].models = none;
    f.keys[1].n_models = 1;
    identify(&f, TOK_BOB, &who);
    ok(!keys_allows(&who, "gpt-4o") && keys_allows(&who, ""), "models [\"\"]: only the empty alias");
    fixture_unlink(&f);

    fixture_init(&f, false, false);
    fixture_link(&f);
    identify(&f, "t", &who);
    ok(keys_allows(&who, "gpt-4o"), "open gateway: every alias");
    fixture_unlink(&f);
}

/* ---------------- the state table ---------------- */

static size_t n_states(void)
{
    size_t n = 0;
    for (struct key_state *k = key_states(); k; k = k->next)
        n++;
    return n;
}

static void test_refcount(void)
{
    ok(key_states() == NULL, "no states to start with");
    struct key_state *x1 = key_state_get("x");
    struct key_state *x2 = key_state_get("x");
    struct key_state *y = key_state_get("y");
    ok(x1 && x2 && y, "three gets");
    ok(x1 == x2, "the same name: the same state");
    ok(x1 != y, "another name: another state");
    is_str(x1->name, "x", "named x");
    is_int(x1->refs, 2, "x: two references");
    is_int(y->refs, 1, "y: one");
    is_int(n_states(), 2, "two states in the table");
    x1->refused[KR_RPM] = 7;
    key_state_put(x1);
    is_int(n_states(), 2, "one put: x still there");
    struct key_state *x3 = key_state_get("x");
    ok(x3 == x2 && x3->refused[KR_RPM] == 7, "got again: the same state, its counters kept");
    key_state_put(x3);
    key_state_put(x2);
    is_int(n_states(), 1, "last put of x: gone from the table");
    ok(key_states() == y, "... y remains");
    struct key_state *x4 = key_state_get("x");
    ok(x4 && x4->refs == 1 && x4->refused[KR_RPM] == 0, "x again: a fresh state");
    key_state_put(x4);
    key_state_put(y);
    ok(key_states() == NULL, "all put: the table is empty");
    key_state_put(NULL);
    ok(1, "key_state_put(NULL) is harmless");

    /* A reload that keeps a key keeps its state: the new config is linked
     * before the old one is let go. */
    struct fixture old, new;
    fixture_init(&old, true, true);
    fixture_link(&old);
    struct principal who;
    int64_t retry;
    old.keys[0].max_concurrent = 1;
    is_int(admit(&old, TOK_ALICE, &who, NOW, &TODAY, &retry), KR__COUNT, "old config: alice in flight");
    limit_tokens_charge(&old.keys[0].state->lim, DAY, 42);
    fixture_init(&new, true, false);
    new.keys[1].name = "carol";
    new.keys[0].max_concurrent = 1;
    fixture_link(&new);
    ok(new.keys[0].state == old.keys[0].state, "new config: alice's state is the same");
    ok(new.keys[1].state != old.keys[1].state, "carol (bob's token, new name) has a state of her own");
    is_int(n_states(), 5, "alice, bob, carol, api_keys[0], api_keys[1]");
    fixture_unlink(&old);
    is_int(n_states(), 2, "old config let go: bob and the legacy states freed");
    struct principal who2;
    is_int(admit(&new, TOK_ALICE, &who2, NOW, &TODAY, &retry), KR_CONCURRENT,
           "the request in flight from before the reload still holds its slot");
    is_int(limit_tokens_used(&new.keys[0].state->lim, DAY), 42, "... and the day's tokens are kept");
    keys_done(&who, 200);   /* the old request ends on the kept state */
    is_int(admit(&new, TOK_ALICE, &who2, NOW, &TODAY, &retry), KR__COUNT, "its end frees the slot");
    keys_done(&who2, 200);
    fixture_unlink(&new);
    ok(key_states() == NULL, "all freed");
}

static void test_refusal_names(void)
{
    static const char *const want[KR__COUNT] = {
        [KR_INVALID] = "invalid", [KR_EXPIRED] = "expired", [KR_DISABLED] = "disabled", [KR_RPM] = "rpm",
        [KR_CONCURRENT] = "concurrent", [KR_TOKENS] = "daily_tokens", [KR_MODEL] = "model",
    };
    for (int r = 0; r < KR__COUNT; r++)
        is_str(key_refusal_name((enum key_refusal)r), want[r], "refusal %d is named %s", r, want[r]);
    is_str(key_refusal_name(KR__COUNT), "?", "KR__COUNT: ?");
}

int main(void)
{
    test_glob();
    test_glob_pathological();
    test_identify();
    test_disabled_expired();
    test_tokens();
    test_rpm();
    test_concurrent();
    test_no_state();
    test_allows();
    test_refcount();
    test_refusal_names();
    return tap_done();
}
