/* proxy: the glue between a client's request, the attempt engine
 * (attempt.h: every decision), and the upstream client (client.h: every
 * byte).  It plans the candidates, builds each attempt's request, feeds the
 * engine what the upstream and the client do, and carries out what the
 * engine decides; health, stats and logs hear of each attempt's end. */
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attempt.h"
#include "balance.h"
#include "billing.h"
#include "budget.h"
#include "client.h"
#include "counters.h"
#include "endpoint.h"
#include "fwd.h"
#include "health.h"
#include "log.h"
#include "probe.h"
#include "reply.h"
#include "reqbody.h"
#include "rewrite.h"
#include "upreq.h"
#include "util.h"

#define REQID_MAX 64

struct proxy {
    struct conn *client;          /* NULL once the client left */
    struct snapshot *snap;        /* pinned for the request's whole life */
    const struct alias_entry *alias;
    const struct endpoint *ep;
    struct reqbody rb;
    struct buf query;             /* "?..." of the client's target, or empty */
    char reqid[REQID_MAX + 1];
    uint16_t plan[BAL_MAX_ATTEMPTS];   /* the attempt order, as indexes into alias->cands */
    size_t nplan, next;
    const struct candidate *cur;  /* the candidate of the running (or last) attempt */
    struct health_entry *health;  /* ... its health for this route's class */
    bool trial;                   /* the attempt is a recovering model's trial (balance.h) */
    bool continued;               /* a continuation was started */
    bool streamed;                /* the client's answer is a stream */
    bool hide_usage;              /* this attempt asks for usage the client did not (billing.h) */
    struct bill bill;
    const struct candidate *first;   /* the candidate whose answer the client got first */
    struct upstream *up;
    struct attempt att;
    struct loop_timer timer;
    uint64_t timer_due;
    bool waiting_retry;           /* the timer starts the same candidate again */
    enum att_cont next_cont;      /* the continuation the next start makes */
    uint64_t t_attempt;
    uint64_t charged;             /* bytes of the engine's buffered answer counted in the budget */
    bool in_flight;
    bool finished;
    size_t alloc;                 /* block size from mem_get */
};

static void drive(struct proxy *p);

static const struct candidate *planned(const struct proxy *p, size_t i)
{
    return &p->alias->cands[p->plan[i]];
}
static void start_attempt(struct proxy *p, enum att_cont cont);

/* ---------------- lifetime ---------------- */

/* A whole answer being buffered counts against the budget like the bodies
 * clients send: past it, the clients reading slowest what is queued for
 * them are cut first; if that does not make room, this attempt fails as
 * the gateway's own shortage (503 when nothing else answers). */
static bool charge_answer(struct proxy *p)
{
    uint64_t held = att_held(&p->att);
    if (held <= p->charged) {
        budget_sub(p->charged - held);
        p->charged = held;
        return true;
    }
    uint64_t more = held - p->charged;
    if (!budget_allows(more))
        server_reclaim(more);
    budget_add(more);
    p->charged = held;
    return budget_used() <= budget_limit();
}

static void proxy_free_deferred(void *ctx)
{
    struct proxy *p = ctx;
    budget_sub(p->charged);
    reqbody_free(&p->rb);
    buf_free(&p->query);
    att_free(&p->att);
    snapshot_unref(p->snap);
    mem_put(p, p->alloc);
}

static void abort_upstream(struct proxy *p)
{
    if (p->up) {
        up_abort(p->up);
        p->up = NULL;
    }
}

static void proxy_finish(struct proxy *p)
{
    if (p->finished)
        return;
    p->finished = true;
    loop_timer_stop(&p->timer);
    abort_upstream(p);
    if (p->client)
        conn_set_hooks(p->client, NULL);
    p->client = NULL;
    loop_defer(proxy_free_deferred, p);
}

/* ---------------- what an attempt's end means for health ---------------- */

static void report(struct proxy *p, const struct att_outcome *o)
{
    struct health_entry *h = p->health;
    struct stat_entry *st = p->cur->stat;
    const struct config *cfg = p->snap->cfg;
    bill_attempt(&p->bill, p->cur, o);
    if (p->in_flight && h->in_flight)
        h->in_flight--;
    p->in_flight = false;
    if (p->trial)
        h->trial_running = false;
    p->trial = false;
    uint64_t took = loop_clock() - p->t_attempt;
    switch (o->kind) {
    case OUT_SUCCESS:
        if (health_success(h, st, o->status, took, o->ttft_ms))
            probe_cancel(h);
        return;
    case OUT_COOLDOWN:
        health_cooldown(h, st, o->cooldown_ms, o->reason);
        break;
    case OUT_FAILURE:
        if (health_failure(h, st, o->status, o->counts, o->reason, (uint64_t)cfg->recovery_interval * 1000u))
            probe_schedule(h, (uint64_t)cfg->recovery_interval * 1000u,
                           (uint64_t)cfg->health_check_period * 1000u);
        break;
    default:
        return;
    }
    log_warn("[%s] %s #%zu %s/%s failed: %s (%llums)", p->reqid, p->alias->name, p->next, p->cur->prov->name,
             p->cur->map->upstream, o->reason, (unsigned long long)took);
}

/* ---------------- answering the client ---------------- */

/* Header values from the config: keep them to one line. */
static void header_value(struct buf *b, const char *s)
{
    for (; *s; s++)
        buf_append(b, (unsigned char)*s < 0x20 || *s == 0x7f ? "?" : s, 1);
}

static void log_note(struct proxy *p, bool served)
{
    if (!p->client)
        return;
    struct buf *note = &conn_request(p->client)->note;
    buf_clear(note);
    /* Appends, not printf: this runs for every request. */
    buf_append(note, "[", 1);
    buf_append_str(note, p->reqid);
    buf_append_str(note, "] ");
    buf_append_str(note, p->alias->name);
    if (served && p->cur) {
        buf_append_str(note, " #");
        buf_append_u64(note, p->next);
        buf_append_str(note, p->next > 1 ? "(retry)" : "");
        buf_append_str(note, p->rb.stream ? " stream -> " : " -> ");
        buf_append_str(note, p->cur->prov->name);
        buf_append(note, "/", 1);
        buf_append_str(note, p->cur->map->upstream);
    } else {
        buf_append_str(note, p->rb.stream ? " stream all " : " all ");
        buf_append_u64(note, p->next);
        buf_append_str(note, " attempts failed");
    }
}

static void commit(struct proxy *p, const struct att_action *act)
{
    bool served = act->origin == ORIGIN_UPSTREAM;
    struct buf h = BUF_INIT;
    p->streamed = act->streaming;
    if (act->streaming)
        buf_append_str(&h, "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
    buf_append_str(&h, "X-Request-Id: ");
    buf_append_str(&h, p->reqid);
    buf_append_str(&h, "\r\n");
    if (p->cur && served) {
        buf_append_str(&h, "X-Autoswitch-Provider: ");
        header_value(&h, p->cur->prov->name);
        buf_append_str(&h, "\r\nX-Autoswitch-Model: ");
        header_value(&h, p->cur->map->upstream);
        buf_append_str(&h, "\r\n");
        const struct buf *rl = att_head_lines(&p->att);
        buf_append(&h, buf_head(rl), buf_len(rl));
        p->first = p->cur;
    }
    buf_append_str(&h, "X-Autoswitch-Attempts: ");
    buf_append_u64(&h, p->next);
    buf_append_str(&h, "\r\n");
    log_note(p, served);
    if (act->origin == ORIGIN_OWN) {
        counters.exhausted++;
        log_error("[%s] %s: all providers failed after %zu attempts: %s", p->reqid, p->alias->name, p->next,
                  p->att.last_error);
    }
    conn_begin(p->client, act->status, act->ctype, buf_cstr(&h), act->streaming ? -1 : act->length);
    buf_free(&h);
}

static void send_bytes(struct proxy *p, const char *d, size_t n)
{
    counters.bytes_out += n;
    if (p->cur)
        p->cur->stat->bytes_out += n;
    conn_body(p->client, d, n);
    if (p->up && conn_pending(p->client) > SRV_OUT_HIGH)
        up_pause(p->up, true);
}

/* ---------------- carrying out the engine's decisions ---------------- */

static void arm(struct proxy *p, uint64_t due)
{
    /* A stream pushes its idle deadline forward with every event: rather
     * than move the heap entry each time, a timer that is already armed
     * earlier stays; on firing the engine re-checks and we re-arm. */
    if (!due) {
        loop_timer_stop(&p->timer);
        return;
    }
    if (loop_timer_armed(&p->timer) && p->timer_due <= due)
        return;
    uint64_t now = loop_now();
    p->timer_due = due;
    loop_timer_set(&p->timer, due > now ? due - now : 0);
}

static enum att_cont cont_of(enum cfg_continuation c)
{
    switch (c) {
    case CFG_CONT_PREFILL: return CONT_PREFILL;
    case CFG_CONT_PREFIX: return CONT_PREFIX;
    case CFG_CONT_CONTINUE_FINAL: return CONT_CONTINUE_FINAL;
    case CFG_CONT_REPLAY: return CONT_REPLAY;
    default: return CONT_NONE;
    }
}

/* The next candidate that can continue a broken stream, and how. */
static bool next_continuation(struct proxy *p, enum att_cont *how)
{
    while (p->ep->continuable && p->next < p->nplan) {
        *how = cont_of(planned(p, p->next)->map->continuation);
        if (*how != CONT_NONE)
            return true;
        p->next++;
    }
    return false;
}

static void on_ended_attempt(struct proxy *p, const struct att_action *act)
{
    abort_upstream(p);
    charge_answer(p);   /* the engine let go of what it held */
    if (act->outcome && p->cur)
        report(p, act->outcome);
}

static const char *cont_name(enum att_cont c)
{
    switch (c) {
    case CONT_PREFILL: return "prefill";
    case CONT_PREFIX: return "prefix";
    case CONT_CONTINUE_FINAL: return "continue_final_message";
    case CONT_REPLAY: return "replay";
    default: return "none";
    }
}

static void count_retry(struct proxy *p, const struct att_action *a)
{
    if (!a->outcome)
        counters.busy_backoffs++;
    else if (a->outcome->kind == OUT_COOLDOWN)
        counters.retry_after_waits++;
    else
        counters.retries++;
    if (p->cur)
        p->cur->stat->retries++;
}

static void count_finish(struct proxy *p, const struct att_action *a)
{
    bool ok = a->outcome && a->outcome->kind == OUT_SUCCESS;
    if (p->att.deadline_hit)
        counters.timeouts++;
    if (p->continued && ok)
        counters.continued_ok++;
    if (p->streamed && !ok)
        counters.stream_errors++;
}

/* The next candidate, or the engine's final answer when none is left.
 * false when an attempt was started (its callbacks drive on). */
static bool fail_over(struct proxy *p)
{
    if (p->next < p->nplan) {
        counters.failovers++;
        p->cur->stat->failovers++;
        start_attempt(p, CONT_NONE);
        return false;
    }
    att_exhausted(&p->att, loop_now());
    return true;
}

static bool act(struct proxy *p, const struct att_action *a)
{
    switch (a->kind) {
    case ACT_COMMIT: commit(p, a); return true;
    case ACT_SEND: send_bytes(p, a->data, a->len); return true;
    case ACT_FINISH:
        count_finish(p, a);
        on_ended_attempt(p, a);
        bill_note(&p->bill, &conn_request(p->client)->note);
        conn_end(p->client);
        proxy_finish(p);
        return false;
    case ACT_ABORT:
        on_ended_attempt(p, a);
        proxy_finish(p);
        return false;
    case ACT_RETRY:
        if (a->outcome && a->outcome->option_refused)
            bill_option_refused(p->cur->prov->name);
        on_ended_attempt(p, a);
        if (a->outcome && p->cur && !p->health->healthy) {
            /* It just left the rotation, or its recovery trial failed:
             * the next candidate, not the same one again. */
            att_decline_retry(&p->att);
            return fail_over(p);
        }
        count_retry(p, a);
        p->waiting_retry = true;
        loop_timer_stop(&p->timer);
        loop_timer_set(&p->timer, a->delay_ms);
        return false;
    case ACT_FAILOVER:
        on_ended_attempt(p, a);
        return fail_over(p);
    case ACT_CONTINUE: {
        on_ended_attempt(p, a);
        enum att_cont how;
        if (next_continuation(p, &how)) {
            counters.continuations++;
            p->continued = true;
            start_attempt(p, how);
            p->cur->stat->continuations++;
            log_warn("[%s] %s: stream broke after content; continuing on %s/%s (%s)", p->reqid, p->alias->name,
                     p->cur->prov->name, p->cur->map->upstream, cont_name(how));
            return false;
        }
        att_no_continuation(&p->att);
        return true;
    }
    default:
        return true;
    }
}

static void drive(struct proxy *p)
{
    struct att_action a;
    while (!p->finished && att_next(&p->att, &a))
        if (!act(p, &a))
            return;
    if (!p->finished && !p->waiting_retry)
        arm(p, att_due(&p->att));
}

/* ---------------- upstream callbacks ---------------- */

static int on_up_head(void *ctx, const struct hp_response *res)
{
    struct proxy *p = ctx;
    att_head(&p->att, res, loop_now(), time(NULL));
    drive(p);
    return p->up ? 0 : -1;
}

static int on_up_body(void *ctx, const char *d, size_t n)
{
    struct proxy *p = ctx;
    att_body(&p->att, d, n, loop_now());
    if (!charge_answer(p))
        att_fail(&p->att, XERR_LOCAL, "the gateway's buffer budget (max_buffered_bytes) is exhausted", loop_now());
    drive(p);
    return p->up ? 0 : -1;
}

static void on_up_done(void *ctx, bool clean)
{
    struct proxy *p = ctx;
    p->up = NULL;
    if (!clean && p->att.phase != PH_STREAM)
        att_fail(&p->att, XERR_LOST, "tls: the connection closed without close_notify: the answer may be cut",
                 loop_now());
    else
        att_end(&p->att, loop_now());
    drive(p);
}

static void on_up_fail(void *ctx, enum up_error kind, const char *reason)
{
    struct proxy *p = ctx;
    p->up = NULL;
    enum att_xerr x = kind == UP_ERR_CONNECT    ? XERR_CONNECT
                      : kind == UP_ERR_PROTOCOL ? XERR_PROTOCOL
                      : kind == UP_ERR_LOCAL    ? XERR_LOCAL
                                                : XERR_LOST;
    att_fail(&p->att, x, reason, loop_now());
    drive(p);
}

static const struct up_callbacks up_cbs = { on_up_head, on_up_body, on_up_done, on_up_fail };

static void on_timer(void *ctx)
{
    struct proxy *p = ctx;
    if (p->waiting_retry) {
        p->waiting_retry = false;
        p->next--;   /* the same candidate again */
        start_attempt(p, CONT_NONE);
        return;
    }
    att_timer(&p->att, loop_now());
    drive(p);
}

/* ---------------- client hooks ---------------- */

static void on_client_drained(void *ctx)
{
    struct proxy *p = ctx;
    if (p->up)
        up_pause(p->up, false);
}

static void on_client_aborted(void *ctx)
{
    struct proxy *p = ctx;
    p->client = NULL;
    counters.client_aborts++;
    log_info("[%s] %s: client disconnected%s; upstream %s/%s closed", p->reqid, p->alias->name,
             p->att.committed ? " mid-stream" : "", p->cur ? p->cur->prov->name : "-",
             p->cur ? p->cur->map->upstream : "-");
    att_client_gone(&p->att);
    drive(p);
    proxy_finish(p);
}

/* ---------------- starting an attempt ---------------- */

/* The body for the current candidate: the model replaced (and, for JSON,
 * the provider's exclude_params removed); every other byte as sent. */
static int build_body(struct proxy *p, enum att_cont cont, struct buf *out)
{
    const struct cfg_provider *prov = p->cur->prov;
    const char *b = buf_head(&p->rb.body);
    if (reqbody_is_form(&p->rb)) {
        if (buf_append(out, b, p->rb.form_model.start) < 0 || buf_append_str(out, p->cur->map->upstream) < 0 ||
            buf_append(out, b + p->rb.form_model.end, buf_len(&p->rb.body) - p->rb.form_model.end) < 0)
            return -1;
        return 0;
    }
    if ((cont == CONT_NONE || cont == CONT_REPLAY) && !p->hide_usage)
        return rewrite_request(b, p->rb.root, p->cur->map->upstream, prov->exclude_params, prov->n_exclude, out);
    struct buf plain = BUF_INIT;
    size_t tlen;
    const char *text = att_text(&p->att, &tlen);
    enum prefill_kind k = cont == CONT_PREFIX ? PREFILL_PREFIX
                          : cont == CONT_CONTINUE_FINAL ? PREFILL_CONTINUE_FINAL : PREFILL_PLAIN;
    int rc = rewrite_request(b, p->rb.root, p->cur->map->upstream, prov->exclude_params, prov->n_exclude, &plain);
    if (rc == 0 && p->hide_usage) {
        struct buf with = BUF_INIT;
        rc = rewrite_include_usage(buf_head(&plain), buf_len(&plain), &with);
        buf_free(&plain);
        plain = with;
    }
    if (rc == 0 && (cont == CONT_NONE || cont == CONT_REPLAY))
        rc = buf_append(out, buf_head(&plain), buf_len(&plain));
    else if (rc == 0)
        rc = rewrite_prefill(buf_head(&plain), buf_len(&plain), text, tlen, k, out);
    buf_free(&plain);
    return rc;
}

static int build_request(struct proxy *p, enum att_cont cont, struct buf *data)
{
    struct buf body = BUF_INIT, fwd = BUF_INIT;
    if (build_body(p, cont, &body) < 0) {
        buf_free(&body);
        return -1;
    }
    fwd_headers(&fwd, conn_request(p->client), p->ep->dialect, p->snap->cfg, p->cur->prov, p->rb.stream);
    struct upreq rq = {
        .method = "POST", .prov = p->cur->prov, .dialect = p->ep->dialect, .path = p->ep->path,
        .query = buf_head(&p->query), .query_len = buf_len(&p->query),
        .ctype = reqbody_is_form(&p->rb) ? buf_cstr(&p->rb.form_ctype) : "application/json",
        .body_len = buf_len(&body), .accept = p->rb.stream ? "text/event-stream" : NULL, .reqid = p->reqid,
        .extra = buf_head(&fwd), .extra_len = buf_len(&fwd),
    };
    int rc = upreq_head(data, &rq);
    if (rc == 0)
        rc = buf_append(data, buf_head(&body), buf_len(&body));
    buf_free(&body);
    buf_free(&fwd);
    return rc;
}

static void start_attempt(struct proxy *p, enum att_cont cont)
{
    p->cur = planned(p, p->next++);
    const struct cfg_provider *prov = p->cur->prov;
    const struct config *cfg = p->snap->cfg;
    /* response_model: the alias (the reference's way) or the upstream that
     * served; a continued stream keeps the first part's. */
    const struct candidate *named = cont != CONT_NONE && p->first ? p->first : p->cur;
    bool upstream = named->prov->response_model == CFG_MODEL_UPSTREAM;
    p->hide_usage = bill_inject_usage(p->ep, &p->rb, prov);
    struct att_target t = {
        .model_retries = prov->model_retries,
        .timeout_ms = (uint64_t)prov->timeout * 1000u,
        .first_token_ms = (uint64_t)p->cur->map->first_token_timeout * 1000u,
        .model = upstream ? named->map->upstream : p->alias->name,
        .cont = cont,
        .provider = prov->name,
        .upstream = p->cur->map->upstream,
        .hide_usage_chunk = p->hide_usage,
    };
    att_start(&p->att, &t, loop_now());
    p->t_attempt = loop_clock();
    p->health = snapshot_health(p->cur, p->ep->cls);
    if (!p->health)
        p->health = p->cur->health;
    p->health->in_flight++;
    p->trial = health_trial_due(p->health);   /* not an unhealthy model tried because nothing else is left */
    if (p->trial) {
        counters.trials++;
        p->health->trial_running = true;
        log_info("[%s] %s: trying %s/%s again after its recovery wait", p->reqid, p->alias->name, prov->name,
                 p->cur->map->upstream);
    }
    p->in_flight = true;
    counters.attempts++;
    struct up_request rq = { .url = p->cur->url, .ca_file = prov->ca_file ? prov->ca_file : cfg->ca_file };
    if (build_request(p, cont, &rq.data) < 0) {
        buf_free(&rq.data);
        att_fail(&p->att, XERR_CONNECT, "out of memory building the request", loop_now());
        drive(p);
        return;
    }
    p->up = up_start(&rq, &up_cbs, p);
    buf_free(&rq.data);
    if (!p->up) {
        att_fail(&p->att, XERR_CONNECT, "out of memory", loop_now());
        drive(p);
        return;
    }
    drive(p);
}

/* ---------------- the request ---------------- */

static void pick_request_id(struct proxy *p, const struct request *r)
{
    const struct hp_header *h = hp_find(r->hp.headers, r->hp.num_headers, "x-request-id");
    if (h && h->value_len > 0 && h->value_len <= REQID_MAX) {
        bool ok = true;
        for (size_t i = 0; i < h->value_len && ok; i++) {
            char ch = h->value[i];
            ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                 ch == '_' || ch == '.' || ch == ':';
        }
        if (ok) {
            memcpy(p->reqid, h->value, h->value_len);
            p->reqid[h->value_len] = '\0';
            return;
        }
    }
    random_hex(p->reqid, 8);
}

/* Text is kept for a continuation only when a stream could be continued:
 * the route has messages to prefill and some candidate says how. */
static size_t continuation_bytes(const struct proxy *p)
{
    if (!p->rb.stream || !p->ep->continuable || reqbody_is_form(&p->rb))
        return 0;
    for (size_t i = 1; i < p->nplan; i++)
        if (planned(p, i)->map->continuation != CFG_CONT_NONE)
            return (size_t)p->snap->cfg->continuation_max_bytes;
    return 0;
}

static void init_engine(struct proxy *p)
{
    const struct config *cfg = p->snap->cfg;
    uint32_t seed = random_u32();   /* backoff jitter: no getrandom() per request */
    struct att_policy pol = {
        .dialect = p->ep->dialect,
        .stream = p->rb.stream,
        .end_rule = p->ep->end_rule,
        .not_found_passes = p->ep->not_found_passes,
        .retry_after_max_ms = (uint64_t)cfg->retry_after_max * 1000u,
        .cooldown_ms = (uint64_t)cfg->recovery_interval * 1000u,
        .max_cooldown_ms = (uint64_t)cfg->max_cooldown * 1000u,
        .deadline = cfg->request_timeout > 0 ? loop_now() + (uint64_t)cfg->request_timeout * 1000u : 0,
        .idle_ms = (uint64_t)cfg->stream_idle_timeout * 1000u,
        .keep_text = continuation_bytes(p),
        .seed = seed,
    };
    att_init(&p->att, &pol);
}

void proxy_handle(struct conn *c, struct request *r, struct snapshot *s)
{
    const struct endpoint *ep = endpoint_find(r->path, r->path_len);
    size_t alloc;
    struct proxy *p = ep ? mem_get(sizeof *p, &alloc) : NULL;
    if (!p) {
        conn_respond(c, 503, "application/json", NULL, "{\"error\":{\"message\":\"out of memory\"}}\n", 37);
        return;
    }
    memset(p, 0, sizeof *p);
    p->alloc = alloc;
    p->ep = ep;
    p->snap = snapshot_ref(s);
    char model[MODEL_NAME_MAX + 1] = "";
    if (reqbody_read(&p->rb, c, r, ep, model) < 0) {
        proxy_free_deferred(p);
        return;
    }
    struct principal *who = r->who;
    if (who && !keys_allows(who, model)) {
        keys_refused(who, KR_MODEL);
        reply_api_error(c, ep->dialect, 403, "invalid_request_error", "model_not_allowed",
                        "This API key may not use the model `%s`.", model);
        proxy_free_deferred(p);
        return;
    }
    if (!(p->alias = snapshot_alias(s, ep->dialect, model, strlen(model)))) {
        reply_api_error(c, ep->dialect, 404, "invalid_request_error", "model_not_found",
                        "The model `%s` does not exist or you do not have access to it.", model);
        proxy_free_deferred(p);
        return;
    }
    if (who)
        keys_count(who, (int64_t)wall_ms());
    p->bill = (struct bill){ .who = who, .alias = p->alias->name, .dialect = ep->dialect };
    p->client = c;
    if (r->query) {
        buf_append(&p->query, "?", 1);
        buf_append(&p->query, r->query, r->query_len);
    }
    pick_request_id(p, r);
    loop_timer_init(&p->timer, on_timer, p);
    const struct candidate *order[BAL_MAX_ATTEMPTS];
    p->nplan = balance_plan(p->alias, ep->cls, s->cfg->max_retries, order, BAL_MAX_ATTEMPTS);
    for (size_t i = 0; i < p->nplan; i++)
        p->plan[i] = (uint16_t)(order[i] - p->alias->cands);
    init_engine(p);
    counters.proxied++;
    counters.bytes_in += buf_len(&p->rb.body);
    struct conn_hooks hooks = { on_client_drained, on_client_aborted, p };
    conn_set_hooks(c, &hooks);
    start_attempt(p, CONT_NONE);
}
