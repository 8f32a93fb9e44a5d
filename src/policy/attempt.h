/* attempt: the engine that judges a request's upstream attempts.
 *
 * In the style of BearSSL's engines: no sockets, no loop, no clock.  The
 * glue (proxy.c) owns the connections and the timer; it feeds the engine
 * what happened and executes what the engine decides:
 *
 *   events in:   att_start (an attempt begins), att_head, att_body (raw,
 *                de-chunked upstream body bytes), att_end (the body ended
 *                as framed), att_fail (transport error), att_timer (a
 *                deadline the engine asked for may have passed),
 *                att_client_gone, att_exhausted (no candidate is left),
 *                att_no_continuation (no candidate can continue a stream)
 *   actions out: att_next() returns them one by one until ACT_NONE:
 *                ACT_COMMIT (send the client's response head), ACT_SEND
 *                (bytes for the client), ACT_FINISH (the response is
 *                complete: end it), ACT_RETRY (start this candidate again
 *                after delay_ms), ACT_FAILOVER (start the next candidate,
 *                or call att_exhausted), ACT_CONTINUE (a committed stream
 *                broke: start a candidate that can continue it, or call
 *                att_no_continuation), ACT_ABORT (the client left).
 *
 * Every action that ends an attempt carries its outcome (success,
 * failure counting against health or not, cooldown, neutral) and the
 * tokens it used, for health, stats and accounting.  att_due() is when
 * the glue must call att_timer() next.  All state is inside struct
 * attempt; the end state is sticky (ACT_FINISH / ACT_ABORT come once).
 *
 * The failure table (README "Routing and failure semantics") is the
 * status table in attempt.c plus the transport and timer rules here;
 * tests/unit/test_attempt.c has one row per line of it.  Streams are read
 * ahead until their first content event (or ATT_PREREAD_MAX bytes): an
 * error, an end or a stall before it is a failover; after it the stream is
 * committed and passes event by event, bytes unchanged except "model" (and
 * the usage chunk the gateway asked for on its own).  A committed stream
 * that breaks is continued on another candidate when the text so far can
 * be handed on (prefill) or reproduced (replay), else it ends with an
 * error event in the client's dialect. */
#ifndef AUTOSWITCH_ATTEMPT_H
#define AUTOSWITCH_ATTEMPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "event.h"
#include "http_parse.h"
#include "sse.h"

#define ATT_PREREAD_MAX (64u * 1024)        /* stream bytes read ahead at most */
#define ATT_RESPONSE_MAX (64u << 20)        /* a non-stream answer larger than this fails */
#define ATT_ERROR_BODY_MAX 8192             /* bytes of a failover answer kept for the log */
#define ATT_HEAD_LINES_MAX 2048             /* upstream x-ratelimit-* lines kept for the client */
#define ATT_REASON_MAX 200
#define ATT_BACKOFF_MIN_MS 300              /* same-candidate retry: 300-600 ms, then 600-1000 */
#define ATT_BACKOFF_MAX_MS 1000
#define ATT_RETRY_AFTER_WAITS 2             /* short Retry-After waits per candidate */
#define ATT_BUSY_BACKOFFS 2                 /* all candidates busy (429/529): tries after a pause */
#define ATT_BUSY_BACKOFF_MIN_MS 500         /* never more than twice a second on one provider */

/* What the stream's end must show for the answer to be complete. */
enum att_end_rule {
    END_ANY,         /* any clean end (streams we cannot judge) */
    END_DONE,        /* OpenAI chat / completions: [DONE], or a finish_reason */
    END_FINISH,      /* Responses API, Anthropic: the finish event (or message_stop) */
};

/* How a candidate continues a stream that broke elsewhere (the
 * mapping's `continuation`). */
enum att_cont {
    CONT_NONE,               /* a fresh attempt / cannot continue */
    CONT_PREFILL,            /* the text so far as a final assistant message */
    CONT_PREFIX,             /* ... with "prefix": true (DeepSeek, Mistral) */
    CONT_CONTINUE_FINAL,     /* ... with continue_final_message (vLLM, SGLang) */
    CONT_REPLAY,             /* the original request; its text must reproduce what was sent */
};

/* Per request. */
struct att_policy {
    enum dialect dialect;
    bool stream;                  /* the client asked for a stream */
    enum att_end_rule end_rule;
    bool not_found_passes;        /* a 404 is the route's answer (count_tokens): returned as sent */
    uint64_t retry_after_max_ms;  /* a 429 asking for at most this is waited out */
    uint64_t cooldown_ms;         /* a 429 without Retry-After, a 529: cool down this long */
    uint64_t max_cooldown_ms;     /* cap of any cooldown */
    uint64_t deadline;            /* request_timeout: absolute ms until commit; 0 = none */
    uint64_t idle_ms;             /* streams: longest gap between bytes */
    size_t keep_text;             /* bytes of sent text kept for continuation; 0 = none */
    uint32_t seed;                /* jitter of backoffs */
};

/* Per attempt. */
struct att_target {
    int model_retries;            /* same-candidate retries of a transient failure */
    uint64_t timeout_ms;          /* a stream's head, or a whole answer */
    uint64_t first_token_ms;      /* streams: the first content event */
    const char *model;            /* "model" of answers and events becomes this (NULL: unchanged) */
    enum att_cont cont;           /* CONT_NONE, or how this attempt continues a broken stream */
    const char *provider;         /* for the resumed comment: "provider/upstream" (both must */
    const char *upstream;         /* stay valid until the request ends: the snapshot's names) */
    bool hide_usage_chunk;        /* the gateway asked for include_usage on its own: drop that chunk */
};

/* How the transport failed. */
enum att_xerr {
    XERR_CONNECT,    /* no exchange: DNS, connect, TLS handshake (next candidate at once) */
    XERR_LOST,       /* the connection broke after the request went out (transient) */
    XERR_PROTOCOL,   /* the answer broke HTTP (bad head, lying framing): next candidate */
    XERR_LOCAL,      /* the gateway's own resources ran out: next candidate, nobody's health */
};

enum att_out_kind {
    OUT_NONE,        /* the attempt has not ended */
    OUT_SUCCESS,
    OUT_FAILURE,     /* counts: against health; else only in the stats */
    OUT_COOLDOWN,    /* 429 / 529: cool down cooldown_ms, not a health failure */
    OUT_NEUTRAL,     /* the client left: nobody's fault */
};

struct att_outcome {
    enum att_out_kind kind;
    bool counts;
    int status;                    /* upstream status, 0 when none */
    uint64_t cooldown_ms;
    int64_t ttft_ms;               /* streams: start to first content, -1 when none */
    bool has_usage;
    struct tokens usage;           /* what this attempt's answer said it used */
    bool delivered;                /* bytes of this attempt reached the client */
    bool option_refused;           /* a 400 refused the stream_options the gateway added */
    char reason[ATT_REASON_MAX];
};

enum att_act_kind {
    ACT_NONE,
    ACT_COMMIT,
    ACT_SEND,
    ACT_FINISH,
    ACT_RETRY,
    ACT_FAILOVER,
    ACT_CONTINUE,
    ACT_ABORT,
};

/* Whose answer an ACT_COMMIT starts. */
enum att_origin {
    ORIGIN_UPSTREAM,   /* the running attempt's */
    ORIGIN_FALLBACK,   /* an earlier attempt's 400, kept while the rest were tried */
    ORIGIN_OWN,        /* the gateway's: every attempt failed (502), request_timeout (504) */
};

struct att_action {
    enum att_act_kind kind;
    /* ACT_COMMIT */
    enum att_origin origin;
    int status;
    const char *ctype;             /* Content-Type for the client */
    bool streaming;                /* length unknown (a stream) */
    int64_t length;                /* else the body's length */
    /* ACT_SEND: valid until the next call into the engine */
    const char *data;
    size_t len;
    /* ACT_RETRY */
    uint64_t delay_ms;
    /* ACT_FINISH, ACT_RETRY, ACT_FAILOVER, ACT_CONTINUE, ACT_ABORT */
    const struct att_outcome *outcome;   /* NULL when no attempt ended */
};

enum att_phase { PH_IDLE, PH_HEAD, PH_BUFFER, PH_RELAY, PH_ERROR_BODY, PH_STREAM, PH_OVER };

#define ATT_QUEUE 6

struct attempt {
    struct att_policy pol;
    struct att_target tgt;
    enum att_phase phase;
    bool committed;                /* the client has its response head */
    bool over;                     /* sticky: FINISH or ABORT was queued */
    /* the current attempt */
    uint64_t started, last_byte;
    int status;
    char ctype[96];
    int64_t retry_after_ms;        /* -1: none */
    struct buf head_lines;         /* x-ratelimit-* lines of the answering upstream */
    struct buf body;               /* a buffered answer or the start of an error body */
    struct att_outcome out;
    /* streams */
    struct sse_splitter sse;
    struct buf ev;                 /* output, complete events first; a partial event at ev_start */
    size_t ev_start;
    bool ev_drop, ev_pass, in_long_line;
    bool saw_content, saw_done, saw_finish, mid_event;
    char stream_err[EV_MSG_MAX];
    bool error_first;              /* an error event before any content */
    bool stream_broken;            /* an error event after content */
    /* per candidate and per request */
    int same_retries, ra_waits, busy_backoffs;
    bool retry_pending;            /* the next att_start is the same candidate */
    uint32_t rng;
    char last_error[ATT_REASON_MAX];
    int last_status;
    bool last_busy;                /* the last failure was a 429 / 529 */
    bool last_local;               /* the last failure was the gateway's own (out of memory, descriptors) */
    bool deadline_hit;
    struct buf fallback;           /* a 400 to return when nothing better comes (context length) */
    int fallback_status;
    char fallback_ctype[96];
    /* continuation */
    struct buf text;               /* text the client has, decoded (the event being read may add
                                      to it: up to text_sent it is in complete, kept events) */
    size_t text_sent;
    bool text_lost;                /* more than keep_text, or not continuable */
    bool cont_forwarding;          /* a continuation's content has started */
    bool cont_bad;                 /* the continuation answered other than with text */
    bool diverged;                 /* CONT_REPLAY: its text differs from what was sent */
    size_t replay_pos;             /* CONT_REPLAY: bytes of text reproduced */
    int cont_block;                /* Anthropic: the continuation's text block index */
    struct buf first_id;           /* the first part's "id" and "created" (JSON text) */
    struct buf first_created;
    int text_index;                /* Anthropic: the client's text block index */
    bool cont_text_block;          /* Anthropic continuation: inside a text block */
    char broken_reason[ATT_REASON_MAX];
    /* the action queue */
    struct att_action q[ATT_QUEUE];
    size_t qhead, qlen;
    struct buf sendbuf;            /* bytes queued for the client by the current call */
    struct buf model_json;         /* tgt.model as a JSON string */
    struct buf scratch;            /* decoded text of one event */
};

void att_init(struct attempt *a, const struct att_policy *pol);
void att_free(struct attempt *a);

void att_start(struct attempt *a, const struct att_target *t, uint64_t now);
void att_head(struct attempt *a, const struct hp_response *res, uint64_t now, time_t wall);
void att_body(struct attempt *a, const char *p, size_t n, uint64_t now);
void att_end(struct attempt *a, uint64_t now);
void att_fail(struct attempt *a, enum att_xerr kind, const char *reason, uint64_t now);
void att_timer(struct attempt *a, uint64_t now);
void att_client_gone(struct attempt *a);
/* The glue will not run the retry an ACT_RETRY asked for (the candidate
 * left the rotation meanwhile): the next att_start is a new candidate. */
void att_decline_retry(struct attempt *a);
void att_exhausted(struct attempt *a, uint64_t now);
void att_no_continuation(struct attempt *a);

/* The next action; false (and ACT_NONE) when there is nothing to do. */
bool att_next(struct attempt *a, struct att_action *act);
/* When att_timer() is due (absolute ms), 0 for none. */
uint64_t att_due(const struct attempt *a);
/* Whether an attempt is running (between att_start and its end). */
bool att_running(const struct attempt *a);

/* Bytes of answer the engine holds now (a buffered answer), for the
 * caller's memory budget. */
size_t att_held(const struct attempt *a);
/* What a continuation needs: the text the client has (decoded UTF-8). */
const char *att_text(const struct attempt *a, size_t *len);
/* The upstream's x-ratelimit-* lines ("Name: value\r\n"...) for the
 * client's head. */
const struct buf *att_head_lines(const struct attempt *a);

/* Whether a 400 answer is the context-length error in one of its known
 * forms (the error code, or a message from the table in attempt.c). */
bool att_is_context_error(const char *body, size_t n);

#endif
