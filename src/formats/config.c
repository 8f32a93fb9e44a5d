/* config: openai_proxy.yaml -> struct config.
 *
 * The loader is a push parser over libyaml events.  An explicit stack of
 * frames stands for the open collections; each frame knows which schema
 * (top level, provider, model mapping) or which list it is filling, so
 * nothing here recurses and a hostile file cannot exhaust the C stack.
 * The schemas are tables of keys with the offset of the field they fill,
 * which keeps the per-key code down to a few hooks (name, base_url and
 * the checks run when a mapping closes).
 *
 * Every object is linked into the config as soon as it is allocated, so
 * on any error config_free() releases whatever was built so far. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "buf.h"
#include "netaddr.h"
#include "util.h"

#define MEMORY_NAME "<memory>"
#define DEFAULT_MAX_RETRIES 1
#define DEFAULT_MAX_FAILURES 3
#define DEFAULT_RECOVERY_INTERVAL 30
#define DEFAULT_HEALTH_CHECK_PERIOD 60
#define DEFAULT_MAX_BODY_BYTES ((uint64_t)32 << 20)
#define DEFAULT_MAX_CONNECTIONS 1024
#define DEFAULT_LOG_RING_LINES 2000
#define DEFAULT_LOG_MAX_BYTES ((uint64_t)10 << 20)
#define DEFAULT_STREAM_IDLE_TIMEOUT 120
#define DEFAULT_MAX_COOLDOWN 300
#define DEFAULT_PROBE_TIMEOUT 15
#define DEFAULT_MODEL_RETRIES 1
#define DEFAULT_RETRY_AFTER_MAX 5
#define DEFAULT_CONTINUATION_MAX_BYTES ((uint64_t)64 << 10)
#define DEFAULT_MAX_BUFFERED_BYTES ((uint64_t)64 << 20)
#define DEFAULT_RESOLV_CONF "/etc/resolv.conf"
#define DEFAULT_HOSTS_FILE "/etc/hosts"
#define DEFAULT_WEIGHT 1
#define DEFAULT_TIMEOUT 60

#define FRAME_KEY_MAX 64      /* key text kept per frame, for error paths */
#define PATH_MAX_LEN 256      /* longest key path printed in a message */
#define MSG_MAX 384           /* message text before "file:line:col: path: " */
#define LIST_MIN_CAP 4
#define READ_CHUNK 65536
#define ENV_SHOW_MAX 40       /* bytes of a bad ${...} quoted in a message */
#define ENV_NAME_MAX 256      /* longest variable name in ${...} */
#define NAME_TABLE_MIN 16     /* first size of the provider name table */
#define FNV_OFFSET 14695981039346656037ull
#define FNV_PRIME 1099511628211ull

static const unsigned char UTF8_BOM[] = { 0xef, 0xbb, 0xbf };

#define NO_SPAN (-1)
#define HEADER_VALUE_MAX 4096   /* a provider header's value */

/* ------------------------------------------------------------------ */
/* Parser state                                                        */

enum frame_kind {
    F_MAP,   /* a mapping filled by a schema                         */
    F_SEQ,   /* a list value: def says what its items are            */
    F_SMAP,  /* a mapping of strings (CFG_STRMAP): def says where     */
    F_SKIP,  /* inside the value of an unknown key                   */
};

struct frame {
    enum frame_kind kind;
    bool flow;                      /* [..] or {..}: its end event has width */
    void *obj;                      /* F_MAP: object filled; F_SEQ: owner */
    const struct cfg_schema *schema;
    const struct cfg_key *def;      /* F_SEQ / F_SMAP: the key; F_MAP: current key */
    bool want_value;                /* F_MAP / F_SMAP: a key was read */
    bool skipping;                  /* F_MAP: that key is unknown */
    uint64_t seen;                  /* F_MAP: keys already given */
    char *pending;                  /* F_SMAP: the name read, waiting for its value */
    char key[FRAME_KEY_MAX];        /* F_MAP: text of the current key */
    size_t index;                   /* F_SEQ: current item */
    size_t cap;                     /* F_SEQ: items allocated */
    yaml_mark_t start;
};

struct cfg_parser {
    const char *name;
    const char *text;
    size_t len;
    size_t bom;                     /* bytes libyaml skipped before index 0 */
    struct config *cfg;
    struct cfg_error *err;
    cfg_warn_fn warn;
    void *warn_ctx;
    struct frame stack[CFG_MAX_DEPTH];
    size_t depth;
    int docs;
    size_t last_end;                /* character index past the last value */
    int open_span;                  /* top-level key whose value is being read */
    size_t *name_slots;             /* provider index + 1 by name hash, 0 = free */
    size_t name_slots_cap;          /* a power of two */
    size_t *name_lines;             /* line of each provider's name */
    size_t cur_char, cur_byte;      /* character -> byte cursor */
    const yaml_mark_t *mark;        /* where the value a hook judges starts */
};

/* ------------------------------------------------------------------ */
/* Messages                                                            */

static void build_path(const struct cfg_parser *p, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < p->depth && n < cap; i++) {
        const struct frame *f = &p->stack[i];
        int w = 0;
        if (f->kind == F_MAP && f->want_value)
            w = snprintf(out + n, cap - n, "%s%s", n ? "." : "", f->key);
        else if (f->kind == F_SEQ)
            w = snprintf(out + n, cap - n, "[%zu]", f->index);
        if (w > 0)
            n += (size_t)w;
    }
}

/* "file:line:col: path: msg", without "path: " at the top level. */
static void format_at(const struct cfg_parser *p, char *out, size_t cap, const yaml_mark_t *m,
                      const char *msg)
{
    char path[PATH_MAX_LEN];
    build_path(p, path, sizeof path);
    snprintf(out, cap, "%s:%zu:%zu: %s%s%s", p->name, m->line + 1, m->column + 1, path,
             path[0] ? ": " : "", msg);
}

static int fail(struct cfg_parser *p, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct cfg_parser *p, const yaml_mark_t *m, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    format_at(p, p->err->msg, sizeof p->err->msg, m, msg);
    return -1;
}

static void warn_at(struct cfg_parser *p, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void warn_at(struct cfg_parser *p, const yaml_mark_t *m, const char *fmt, ...)
{
    if (!p->warn)
        return;
    char msg[MSG_MAX], line[sizeof p->err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    format_at(p, line, sizeof line, m, msg);
    p->warn(p->warn_ctx, line);
}

static int fail_oom(struct cfg_parser *p, const yaml_mark_t *m)
{
    return fail(p, m, "out of memory");
}

/* Keys end up in messages and log lines: keep them on one printable line. */
static void copy_key(char *dst, const char *src, size_t len)
{
    size_t n = len < FRAME_KEY_MAX - 1 ? len : FRAME_KEY_MAX - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    dst[n] = '\0';
}

/* ------------------------------------------------------------------ */
/* Positions                                                           */

static size_t utf8_width(unsigned char lead)
{
    if (lead < 0x80)
        return 1;
    if ((lead & 0xe0) == 0xc0)
        return 2;
    if ((lead & 0xf0) == 0xe0)
        return 3;
    return 4;
}

/* libyaml's mark.index counts characters, the spans are byte offsets.
 * Spans are asked for in increasing order, so a cursor makes the whole
 * conversion one pass over the text. */
static size_t byte_offset(struct cfg_parser *p, size_t char_index)
{
    if (char_index < p->cur_char) {
        p->cur_char = 0;
        p->cur_byte = p->bom;
    }
    while (p->cur_char < char_index && p->cur_byte < p->len) {
        p->cur_byte += utf8_width((unsigned char)p->text[p->cur_byte]);
        p->cur_char++;
    }
    return p->cur_byte < p->len ? p->cur_byte : p->len;
}

/* Reader errors (bad UTF-8) come with a byte offset and no mark. */
static yaml_mark_t mark_of_byte(const struct cfg_parser *p, size_t off)
{
    yaml_mark_t m = { 0, 0, 0 };
    for (size_t i = 0; i < off && i < p->len; i++) {
        if (p->text[i] == '\n') {
            m.line++;
            m.column = 0;
        } else if (((unsigned char)p->text[i] & 0xc0) != 0x80) {
            m.column++;
        }
    }
    return m;
}

/* ------------------------------------------------------------------ */
/* ${VAR} and ${VAR:-default}                                          */

static bool is_name_start(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static bool is_name_char(char ch)
{
    return is_name_start(ch) || (ch >= '0' && ch <= '9');
}

/* Expand `in` into a new heap string ("$$" is a literal "$", so text
 * typed into the admin UI is never expanded).  ${VAR:-default} takes the default
 * when VAR is unset or empty, as the shell does.  The default is literal
 * text up to the first '}', so a nested ${ is refused rather than half
 * expanded. */
static int expand_env(struct cfg_parser *p, const yaml_mark_t *m, const char *in, char **out)
{
    struct buf b = BUF_INIT;
    const char *s = in;
    int rc = 0;
    for (;;) {
        const char *d = s;
        while ((d = strchr(d, '$')) && d[1] != '{' && d[1] != '$')
            d++;
        if (!d) {
            if (buf_append_str(&b, s) < 0)
                rc = fail_oom(p, m);
            break;
        }
        if (buf_append(&b, s, (size_t)(d - s) + (d[1] == '$')) < 0) {
            rc = fail_oom(p, m);
            break;
        }
        if (d[1] == '$') {   /* "$$" is a literal "$": what the admin API writes */
            s = d + 2;
            continue;
        }
        const char *name = d + 2;
        const char *close = strchr(name, '}');
        if (!close) {
            rc = fail(p, m, "unterminated \"${\" (missing '}')");
            break;
        }
        int show = close + 1 - d > ENV_SHOW_MAX ? ENV_SHOW_MAX : (int)(close + 1 - d);
        size_t n = 0;
        if (is_name_start(name[0]))
            while (is_name_char(name[n]))
                n++;
        const char *after = name + n;
        bool has_default = after[0] == ':' && after[1] == '-';
        if (n == 0 || (after != close && !has_default)) {
            rc = fail(p, m, "invalid variable reference \"%.*s\"", show, d);
            break;
        }
        char var[ENV_NAME_MAX];
        if (n >= sizeof var) {
            rc = fail(p, m, "variable name too long in \"%.*s\"", show, d);
            break;
        }
        memcpy(var, name, n);
        var[n] = '\0';
        const char *val = getenv(var);
        if (has_default) {
            const char *def = after + 2;
            size_t dlen = (size_t)(close - def);
            bool nested = false;
            for (size_t i = 0; i + 1 < dlen; i++)
                nested |= def[i] == '$' && def[i + 1] == '{';
            if (nested) {
                rc = fail(p, m, "nested \"${\" in a default is not supported");
                break;
            }
            rc = val && *val ? buf_append_str(&b, val) : buf_append(&b, def, dlen);
        } else if (!val) {
            rc = fail(p, m, "environment variable %s is not set", var);
            break;
        } else {
            rc = buf_append_str(&b, val);
        }
        if (rc < 0) {
            rc = fail_oom(p, m);
            break;
        }
        s = close + 1;
    }
    if (rc == 0 && !(*out = buf_steal_str(&b)))
        rc = fail_oom(p, m);
    buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Numbers                                                             */

enum num_rc { NUM_OK = 0, NUM_SYNTAX = -1, NUM_RANGE = -2, NUM_NEGATIVE = -3 };

/* Decimal with an optional sign, nothing else: "1.5", "12x", "0x10" and
 * " 1" are not integers. */
static enum num_rc parse_int32(const char *s, int *out)
{
    bool neg = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    if (!*s)
        return NUM_SYNTAX;
    long long v = 0;
    bool range = false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return NUM_SYNTAX;
        if (!range)
            v = v * 10 + (*s - '0');
        if (v > (long long)INT_MAX + 1)
            range = true;
    }
    if (range || (!neg && v > INT_MAX))
        return NUM_RANGE;
    *out = neg ? (int)-v : (int)v;
    return NUM_OK;
}

static enum num_rc parse_u64(const char *s, uint64_t *out)
{
    bool neg = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    if (!*s)
        return NUM_SYNTAX;
    uint64_t v = 0;
    bool range = false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return NUM_SYNTAX;
        unsigned digit = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - digit) / 10)
            range = true;
        else
            v = v * 10 + digit;
    }
    if (neg && (v > 0 || range))
        return NUM_NEGATIVE;
    if (range)
        return NUM_RANGE;
    *out = v;
    return NUM_OK;
}

/* ------------------------------------------------------------------ */
/* Field access                                                        */

static void *field(void *obj, size_t off)
{
    return (char *)obj + off;
}

/* Pointers are read and written through memcpy so that one generic path
 * serves char *, char ** and struct arrays without type punning. */
static void *get_ptr(void *obj, size_t off)
{
    void *v;
    memcpy(&v, field(obj, off), sizeof v);
    return v;
}

static void set_ptr(void *obj, size_t off, void *v)
{
    memcpy(field(obj, off), &v, sizeof v);
}

static void replace_str(void *obj, size_t off, char *s)
{
    free(get_ptr(obj, off));
    set_ptr(obj, off, s);
}

/* Append one zeroed item to the list `def` of `owner`; NULL when out of
 * memory.  The count grows first, so a half-filled item is still freed. */
static void *list_push(void *owner, const struct cfg_key *def, size_t *cap)
{
    size_t size = def->type == CFG_LIST ? def->item_size : def->type == CFG_STRMAP ? sizeof(struct cfg_pair) : sizeof(char *);
    size_t *count = field(owner, def->aux_off);
    char *arr = get_ptr(owner, def->off);
    if (*count == *cap) {
        size_t ncap = *cap ? *cap * 2 : LIST_MIN_CAP;
        if (ncap > SIZE_MAX / size)
            return NULL;
        char *grown = realloc(arr, ncap * size);
        if (!grown)
            return NULL;
        arr = grown;
        set_ptr(owner, def->off, arr);
        *cap = ncap;
    }
    char *item = arr + *count * size;
    memset(item, 0, size);
    (*count)++;
    return item;
}

/* ------------------------------------------------------------------ */
/* Hooks                                                               */

/* FNV-1a: provider names are short and the table only has to be fair. */
static uint64_t name_hash(const char *s)
{
    uint64_t h = FNV_OFFSET;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * FNV_PRIME;
    return h;
}

/* Slot of `name` in the open-addressing table: the one holding it, or
 * the empty one where it belongs. */
static size_t name_slot(const struct cfg_parser *p, const char *name)
{
    size_t mask = p->name_slots_cap - 1;
    size_t i = (size_t)name_hash(name) & mask;
    while (p->name_slots[i] && strcmp(p->cfg->providers[p->name_slots[i] - 1].name, name) != 0)
        i = (i + 1) & mask;
    return i;
}

/* Keep the table at most half full; every provider before `idx` is in it. */
static int names_reserve(struct cfg_parser *p, size_t idx)
{
    if ((idx + 1) * 2 <= p->name_slots_cap)
        return 0;
    size_t ncap = p->name_slots_cap ? p->name_slots_cap : NAME_TABLE_MIN;
    while ((idx + 1) * 2 > ncap)
        ncap *= 2;
    size_t *slots = calloc(ncap, sizeof *slots);
    size_t *lines = realloc(p->name_lines, ncap / 2 * sizeof *lines);
    if (!slots || !lines) {
        free(slots);
        if (lines)
            p->name_lines = lines;
        return -1;
    }
    free(p->name_slots);
    p->name_slots = slots;
    p->name_slots_cap = ncap;
    p->name_lines = lines;
    for (size_t i = 0; i < idx; i++)
        p->name_slots[name_slot(p, p->cfg->providers[i].name)] = i + 1;
    return 0;
}

/* Names must be unique: they key the health state and the admin API.
 * A hash table keeps a file with thousands of providers linear. */
static int check_name(struct cfg_parser *p, void *obj)
{
    struct cfg_provider *prov = obj;
    size_t idx = (size_t)(prov - p->cfg->providers);
    if (names_reserve(p, idx) < 0)
        return fail_oom(p, p->mark);
    size_t slot = name_slot(p, prov->name);
    if (p->name_slots[slot]) {
        size_t first = p->name_slots[slot] - 1;
        return fail(p, p->mark, "duplicate provider name \"%s\" (first at line %zu)", prov->name,
                    p->name_lines[first]);
    }
    p->name_slots[slot] = idx + 1;
    p->name_lines[idx] = p->mark->line + 1;
    return 0;
}

static int check_url(struct cfg_parser *p, const char *url, struct cfg_url *out)
{
    char why[MSG_MAX];
    cfg_url_free(out);
    if (cfg_parse_url(url, out, why, sizeof why) < 0)
        return fail(p, p->mark, "%s", why);
    return 0;
}

static int check_base_url(struct cfg_parser *p, void *obj)
{
    struct cfg_provider *prov = obj;
    return check_url(p, prov->base_url, &prov->url);
}

static int check_anthropic_url(struct cfg_parser *p, void *obj)
{
    struct cfg_provider *prov = obj;
    return check_url(p, prov->anthropic_base_url, &prov->aurl);
}

/* RFC 9110 5.6.2: a header name is a token. */
static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return false;
    return true;
}

/* Headers the gateway writes itself, or that would let a config change
 * the framing of what it sends: never from the config. */
static bool reserved_header(const char *name)
{
    static const char *const reserved[] = {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer",
        "content-type", "expect",
    };
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return true;
    return false;
}

static int close_provider(struct cfg_parser *p, void *obj)
{
    struct cfg_provider *prov = obj;
    if (!prov->name)
        return fail(p, p->mark, "name is required");
    if (!prov->base_url && !prov->anthropic_base_url)
        return fail(p, p->mark, "base_url is required (or anthropic_base_url for an Anthropic-only provider)");
    if (!prov->api_key && !(prov->api_key = strdup("")))
        return fail_oom(p, p->mark);
    if (prov->weight == 0)
        prov->weight = DEFAULT_WEIGHT;
    if (prov->timeout <= 0)
        prov->timeout = DEFAULT_TIMEOUT;
    for (size_t i = 0; i < prov->n_headers; i++) {
        if (!is_token(prov->headers[i].name) || reserved_header(prov->headers[i].name))
            return fail(p, p->mark, "headers: %.60s cannot be set here", prov->headers[i].name);
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(prov->headers[i].name, prov->headers[j].name) == 0)
                return fail(p, p->mark, "headers: %.60s is given twice", prov->headers[i].name);
    }
    /* The same (upstream, alias) twice would share one health and stats
     * entry and count its weight twice: almost surely a copy-paste slip. */
    for (size_t i = 0; i < prov->n_mappings; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(prov->mappings[i].upstream, prov->mappings[j].upstream) == 0 &&
                strcmp(prov->mappings[i].alias, prov->mappings[j].alias) == 0)
                return fail(p, p->mark, "model_mappings[%zu] repeats model_mappings[%zu] (upstream \"%s\", alias \"%s\")",
                            i, j, prov->mappings[i].upstream, prov->mappings[i].alias);
    return 0;
}

static int close_mapping(struct cfg_parser *p, void *obj)
{
    struct cfg_mapping *map = obj;
    if (!map->upstream)
        return fail(p, p->mark, "upstream is required");
    if (!map->alias || !map->alias[0]) {
        free(map->alias);
        free(map->alias_raw);
        map->alias_raw = NULL;
        if (!(map->alias = strdup(map->upstream)))
            return fail_oom(p, p->mark);
    }
    if (map->weight == 0)
        map->weight = DEFAULT_WEIGHT;
    return 0;
}

static const char *check_prefix(const char *v)
{
    struct netaddr net;
    unsigned bits;
    return netaddr_prefix_parse(v, &net, &bits) < 0 ? "is not an IP address or prefix (10.0.0.0/8, fd00::/8)" : NULL;
}

static const char *check_header_name(const char *v)
{
    return is_token(v) && !reserved_header(v) ? NULL : "cannot be forwarded (not a header name, or set by the gateway)";
}

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

static int check_sha256(struct cfg_parser *p, void *obj)
{
    struct cfg_client_key *k = obj;
    if (strlen(k->key_sha256) != 64)
        return fail(p, p->mark, "must be 64 hex digits (the SHA-256 of the key)");
    for (int i = 0; i < 32; i++) {
        int hi = hexval(k->key_sha256[2 * i]), lo = hexval(k->key_sha256[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return fail(p, p->mark, "must be 64 hex digits (the SHA-256 of the key)");
        k->digest[i] = (uint8_t)(hi * 16 + lo);
    }
    return 0;
}

static int check_expires(struct cfg_parser *p, void *obj)
{
    struct cfg_client_key *k = obj;
    if ((k->expires_day = date_days(k->expires, strlen(k->expires))) < 0)
        return fail(p, p->mark, "must be a date YYYY-MM-DD");
    return 0;
}

static int close_key(struct cfg_parser *p, void *obj)
{
    struct cfg_client_key *k = obj;
    if (!k->name)
        return fail(p, p->mark, "name is required");
    if (!k->key == !k->key_sha256)
        return fail(p, p->mark, "give key or key_sha256 (one of them)");
    if (k->key)
        sha256(k->key, strlen(k->key), k->digest);
    if (!k->expires)
        k->expires_day = -1;
    struct cfg_client_key *first = p->cfg->keys;
    for (struct cfg_client_key *o = first; o < k; o++) {
        if (strcmp(o->name, k->name) == 0)
            return fail(p, p->mark, "duplicate key name \"%s\"", k->name);
        if (memcmp(o->digest, k->digest, sizeof k->digest) == 0)
            return fail(p, p->mark, "the same key as \"%s\"", o->name);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Tables: the one schema (config_schema.h)                            */

static const char *const probe_names[] = {
    [CFG_PROBE_CHAT] = "chat",
    [CFG_PROBE_EMBEDDINGS] = "embeddings",
    [CFG_PROBE_MODELS] = "models",
    [CFG_PROBE_NONE] = "none",
    [CFG_PROBE_MESSAGES] = "messages",
};

static const char *const continuation_names[] = {
    [CFG_CONT_NONE] = "none",
    [CFG_CONT_PREFILL] = "prefill",
    [CFG_CONT_PREFIX] = "prefix",
    [CFG_CONT_CONTINUE_FINAL] = "continue_final_message",
    [CFG_CONT_REPLAY] = "replay",
};

static const char *const response_model_names[] = {
    [CFG_MODEL_ALIAS] = "alias",
    [CFG_MODEL_UPSTREAM] = "upstream",
};

static const char *const anthropic_auth_names[] = {
    [CFG_AUTH_X_API_KEY] = "x-api-key",
    [CFG_AUTH_BEARER] = "bearer",
};

_Static_assert(sizeof(enum cfg_probe) == sizeof(int) && sizeof(enum cfg_continuation) == sizeof(int) &&
                   sizeof(enum cfg_response_model) == sizeof(int) && sizeof(enum cfg_anthropic_auth) == sizeof(int),
               "enum fields are stored as int");

#define F(s, f) .off = offsetof(s, f), .aux_off = CFG_NO_FIELD
#define STR(s, f, r, fl) { .name = #f, .type = CFG_STR, .rule = (r), .flags = (fl), F(s, f) }
#define RAWSTR(s, f, r, fl) { .name = #f, .type = CFG_STR, .rule = (r), .flags = (fl), .off = offsetof(s, f), \
                              .aux_off = offsetof(s, f##_raw) }
#define INT(s, f, r, fl) { .name = #f, .type = CFG_INT, .rule = (r), .flags = (fl), F(s, f) }
#define U64(s, f, r, fl) { .name = #f, .type = CFG_U64, .rule = (r), .flags = (fl), F(s, f) }
#define BOOL(s, f, fl) { .name = #f, .type = CFG_BOOL, .flags = (fl), F(s, f) }
#define ENUM(s, f, n, fl) { .name = #f, .type = CFG_ENUM, .flags = (fl), F(s, f), .names = (n), \
                            .n_names = sizeof(n) / sizeof((n)[0]) }
#define STRLIST(s, f, cnt, r, fl) { .name = #f, .type = CFG_STRLIST, .rule = (r), .flags = (fl), \
                                    .off = offsetof(s, f), .aux_off = offsetof(s, cnt) }
#define A CFG_K_ADMIN
#define W CFG_K_WIRE
#define I CFG_K_INHERIT

static const struct cfg_key mapping_keys[] = {
    RAWSTR(struct cfg_mapping, upstream, CFG_NONEMPTY, A | W),
    RAWSTR(struct cfg_mapping, alias, CFG_ANY, A | W),
    INT(struct cfg_mapping, priority, CFG_ANY, A),
    INT(struct cfg_mapping, weight, CFG_NONNEG, A),
    INT(struct cfg_mapping, max_failures, CFG_NONNEG, A | I),
    ENUM(struct cfg_mapping, probe, probe_names, A | I),
    ENUM(struct cfg_mapping, continuation, continuation_names, A | I),
    INT(struct cfg_mapping, first_token_timeout, CFG_NONNEG, A | I),
};

const struct cfg_schema cfg_schema_mapping = {
    "model mapping", mapping_keys, sizeof mapping_keys / sizeof mapping_keys[0],
    offsetof(struct cfg_mapping, given), close_mapping,
};

static const struct cfg_key provider_keys[] = {
    { .name = "name", .type = CFG_STR, .rule = CFG_NONEMPTY, .flags = A, F(struct cfg_provider, name),
      .check = check_name },
    { .name = "base_url", .type = CFG_STR, .flags = A | W | CFG_K_URL, .off = offsetof(struct cfg_provider, base_url),
      .aux_off = offsetof(struct cfg_provider, base_url_raw), .check = check_base_url },
    { .name = "anthropic_base_url", .type = CFG_STR, .rule = CFG_EMPTY_NULL, .flags = A | W | CFG_K_URL,
      .off = offsetof(struct cfg_provider, anthropic_base_url),
      .aux_off = offsetof(struct cfg_provider, anthropic_base_url_raw), .check = check_anthropic_url },
    RAWSTR(struct cfg_provider, api_key, CFG_ANY, A | W | CFG_K_SECRET),
    ENUM(struct cfg_provider, anthropic_auth, anthropic_auth_names, A | I),
    INT(struct cfg_provider, weight, CFG_NONNEG, A),
    INT(struct cfg_provider, priority, CFG_ANY, A),
    INT(struct cfg_provider, timeout, CFG_ANY, A),
    STR(struct cfg_provider, ca_file, CFG_EMPTY_NULL, A),
    STRLIST(struct cfg_provider, exclude_params, n_exclude, CFG_ANY, A),
    { .name = "headers", .type = CFG_STRMAP, .flags = A | W | CFG_K_SECRET,
      .off = offsetof(struct cfg_provider, headers), .aux_off = offsetof(struct cfg_provider, n_headers) },
    { .name = "forward_headers", .type = CFG_STRLIST, .rule = CFG_NONEMPTY, .flags = A,
      .off = offsetof(struct cfg_provider, forward_headers), .aux_off = offsetof(struct cfg_provider, n_forward_headers),
      .check_item = check_header_name },
    INT(struct cfg_provider, model_retries, CFG_NONNEG, A | I),
    INT(struct cfg_provider, first_token_timeout, CFG_NONNEG, A | I),
    ENUM(struct cfg_provider, continuation, continuation_names, A | I),
    ENUM(struct cfg_provider, response_model, response_model_names, A | I),
    BOOL(struct cfg_provider, stream_usage, A | I),
    { .name = "model_mappings", .type = CFG_LIST, .flags = A, .off = offsetof(struct cfg_provider, mappings),
      .aux_off = offsetof(struct cfg_provider, n_mappings), .item_size = sizeof(struct cfg_mapping),
      .item = &cfg_schema_mapping },
};

const struct cfg_schema cfg_schema_provider = {
    "provider", provider_keys, sizeof provider_keys / sizeof provider_keys[0],
    offsetof(struct cfg_provider, given), close_provider,
};

static const struct cfg_key client_key_keys[] = {
    { .name = "name", .type = CFG_STR, .rule = CFG_NONEMPTY, .flags = A, F(struct cfg_client_key, name) },
    RAWSTR(struct cfg_client_key, key, CFG_EMPTY_NULL, A | CFG_K_SECRET),
    { .name = "key_sha256", .type = CFG_STR, .rule = CFG_EMPTY_NULL, .flags = A,
      F(struct cfg_client_key, key_sha256), .check = check_sha256 },
    STRLIST(struct cfg_client_key, models, n_models, CFG_NONEMPTY, A),
    INT(struct cfg_client_key, rpm, CFG_NONNEG, A),
    INT(struct cfg_client_key, max_concurrent, CFG_NONNEG, A),
    U64(struct cfg_client_key, daily_tokens, CFG_ANY, A),
    { .name = "expires", .type = CFG_STR, .rule = CFG_EMPTY_NULL, .flags = A, F(struct cfg_client_key, expires),
      .check = check_expires },
    BOOL(struct cfg_client_key, disabled, A),
};

const struct cfg_schema cfg_schema_client_key = {
    "client key", client_key_keys, sizeof client_key_keys / sizeof client_key_keys[0],
    offsetof(struct cfg_client_key, given), close_key,
};

static const struct cfg_key top_keys[] = {
    /* An empty client key would let "Bearer " through: refuse it. */
    STRLIST(struct config, api_keys, n_api_keys, CFG_NONEMPTY, 0),
    STR(struct config, admin_key, CFG_ANY, 0),
    INT(struct config, max_retries, CFG_ANY, A),
    INT(struct config, max_failures, CFG_ANY, A),
    INT(struct config, recovery_interval, CFG_ANY, A),
    INT(struct config, health_check_period, CFG_ANY, A),
    { .name = "providers", .type = CFG_LIST, .flags = A, .off = offsetof(struct config, providers),
      .aux_off = offsetof(struct config, n_providers), .item_size = sizeof(struct cfg_provider),
      .item = &cfg_schema_provider },
    INT(struct config, model_retries, CFG_NONNEG, A),
    INT(struct config, retry_after_max, CFG_NONNEG, A),
    INT(struct config, request_timeout, CFG_NONNEG, A),
    INT(struct config, first_token_timeout, CFG_NONNEG, A),
    U64(struct config, continuation_max_bytes, CFG_ANY, A),
    ENUM(struct config, response_model, response_model_names, A),
    { .name = "forward_headers", .type = CFG_STRLIST, .rule = CFG_NONEMPTY, .off = offsetof(struct config, forward_headers),
      .aux_off = offsetof(struct config, n_forward_headers), .check_item = check_header_name },
    { .name = "trusted_proxies", .type = CFG_STRLIST, .rule = CFG_NONEMPTY, .off = offsetof(struct config, trusted_proxies),
      .aux_off = offsetof(struct config, n_trusted_proxies), .check_item = check_prefix },
    U64(struct config, max_buffered_bytes, CFG_POSITIVE, 0),
    { .name = "keys", .type = CFG_LIST, .flags = A, .off = offsetof(struct config, keys),
      .aux_off = offsetof(struct config, n_keys), .item_size = sizeof(struct cfg_client_key),
      .item = &cfg_schema_client_key },
    STR(struct config, usage_file, CFG_EMPTY_NULL, 0),
    STR(struct config, listen, CFG_EMPTY_NULL, 0),
    U64(struct config, max_body_bytes, CFG_POSITIVE, 0),
    INT(struct config, max_connections, CFG_POSITIVE, 0),
    STR(struct config, log_file, CFG_EMPTY_NULL, 0),
    U64(struct config, log_max_bytes, CFG_POSITIVE, 0),
    INT(struct config, log_ring_lines, CFG_NONNEG, 0),
    INT(struct config, stream_idle_timeout, CFG_POSITIVE, 0),
    INT(struct config, max_cooldown, CFG_POSITIVE, 0),
    INT(struct config, probe_timeout, CFG_POSITIVE, 0),
    STR(struct config, ca_file, CFG_EMPTY_NULL, 0),
    STR(struct config, resolv_conf, CFG_EMPTY_NULL, 0),
    STR(struct config, hosts_file, CFG_EMPTY_NULL, 0),
};

/* No close hook: the top-level defaults are applied once the stream has
 * ended, because an empty file has no mapping to close (see finish()). */
const struct cfg_schema cfg_schema_top = {
    "config", top_keys, sizeof top_keys / sizeof top_keys[0], offsetof(struct config, given), NULL,
};

#undef A
#undef W
#undef I

_Static_assert(sizeof top_keys / sizeof top_keys[0] <= CFG_MAX_KEYS, "given is a uint64_t");
_Static_assert(sizeof provider_keys / sizeof provider_keys[0] <= CFG_MAX_KEYS, "given is a uint64_t");
_Static_assert(sizeof mapping_keys / sizeof mapping_keys[0] <= CFG_MAX_KEYS, "given is a uint64_t");

const char *cfg_probe_name(enum cfg_probe k)
{
    return (size_t)k < sizeof probe_names / sizeof probe_names[0] ? probe_names[k] : "?";
}

const struct cfg_key *cfg_key_find(const struct cfg_schema *s, const char *name)
{
    for (size_t i = 0; i < s->n_keys; i++)
        if (strcmp(s->keys[i].name, name) == 0)
            return &s->keys[i];
    return NULL;
}

bool cfg_key_given(const struct cfg_schema *s, const void *obj, const struct cfg_key *k)
{
    uint64_t given;
    memcpy(&given, (const char *)obj + s->given_off, sizeof given);
    return given & ((uint64_t)1 << (k - s->keys));
}

const char *cfg_enum_name(const struct cfg_key *k, int v)
{
    return v >= 0 && (size_t)v < k->n_names ? k->names[v] : "?";
}

const struct cfg_span *cfg_top_span(const struct config *c, const char *name)
{
    const struct cfg_key *k = cfg_key_find(&cfg_schema_top, name);
    return k ? &c->spans[k - cfg_schema_top.keys] : NULL;
}

/* ------------------------------------------------------------------ */
/* Events                                                              */

static struct frame *top(struct cfg_parser *p)
{
    return p->depth ? &p->stack[p->depth - 1] : NULL;
}

static bool is_start(const yaml_event_t *ev)
{
    return ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT;
}

/* Plain "", "~" and "null" are YAML's null: the key counts as absent. */
static bool is_null(const yaml_event_t *ev)
{
    if (ev->type != YAML_SCALAR_EVENT || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)ev->data.scalar.value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static const char *node_kind(const yaml_event_t *ev)
{
    if (ev->type == YAML_MAPPING_START_EVENT)
        return "a mapping";
    if (ev->type == YAML_SEQUENCE_START_EVENT)
        return "a sequence";
    return is_null(ev) ? "null" : "a scalar";
}

static bool has_anchor(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return ev->data.scalar.anchor != NULL;
    case YAML_SEQUENCE_START_EVENT:
        return ev->data.sequence_start.anchor != NULL;
    case YAML_MAPPING_START_EVENT:
        return ev->data.mapping_start.anchor != NULL;
    case YAML_ALIAS_EVENT:
        return true;
    default:
        return false;
    }
}

static struct frame *push(struct cfg_parser *p, const yaml_event_t *ev, enum frame_kind kind)
{
    if (p->depth == CFG_MAX_DEPTH) {
        fail(p, &ev->start_mark, "nesting deeper than %d levels", CFG_MAX_DEPTH);
        return NULL;
    }
    struct frame *f = &p->stack[p->depth++];
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->start = ev->start_mark;
    f->flow = ev->type == YAML_MAPPING_START_EVENT
                  ? ev->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE
                  : ev->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
    return f;
}

static int push_map(struct cfg_parser *p, const yaml_event_t *ev, const struct cfg_schema *s, void *obj)
{
    struct frame *f = push(p, ev, F_MAP);
    if (!f)
        return -1;
    f->schema = s;
    f->obj = obj;
    return 0;
}

/* The value of the top frame's current key, or its current item, is
 * complete. */
static void value_done(struct cfg_parser *p)
{
    struct frame *f = top(p);
    if (!f)
        return;
    if (f->kind == F_SEQ) {
        f->index++;
    } else if (f->kind == F_MAP) {
        f->want_value = false;
        f->skipping = false;
        f->def = NULL;
        if (p->depth == 1 && p->open_span != NO_SPAN) {
            struct cfg_span *sp = &p->cfg->spans[p->open_span];
            sp->end = byte_offset(p, p->last_end);
            sp->present = true;
            p->open_span = NO_SPAN;
        }
    }
}

/* The scalar's text, refused if it hides a NUL ("\0" in double quotes). */
static int scalar_text(struct cfg_parser *p, const yaml_event_t *ev, char **raw)
{
    const char *v = (const char *)ev->data.scalar.value;
    if (strlen(v) != ev->data.scalar.length)
        return fail(p, &ev->start_mark, "contains a NUL character");
    if (is_null(ev))
        v = "";
    if (!(*raw = strdup(v)))
        return fail_oom(p, &ev->start_mark);
    return 0;
}

/* A scalar's text expanded (${VAR}, $$), and refused when it is meant for
 * the wire and holds a control byte: a CR or LF in a key or a model name
 * would write a header line of its own into the upstream request. */
static int scalar_value(struct cfg_parser *p, const struct cfg_key *d, const yaml_event_t *ev, char **raw,
                        char **val)
{
    if (scalar_text(p, ev, raw) < 0)
        return -1;
    if (expand_env(p, &ev->start_mark, *raw, val) < 0) {
        free(*raw);
        return -1;
    }
    if (d->flags & CFG_K_WIRE) {
        for (const unsigned char *c = (const unsigned char *)*val; *c; c++) {
            if (*c < 0x20 || *c == 0x7f) {
                unsigned byte = *c;
                free(*raw);
                free(*val);
                return fail(p, &ev->start_mark, "contains a control character (byte 0x%02x): it would reach the "
                                                "upstream's wire", byte);
            }
        }
    }
    return 0;
}

static int check_int_rule(struct cfg_parser *p, const yaml_mark_t *m, enum cfg_rule rule, long long v)
{
    if (rule == CFG_NONNEG && v < 0)
        return fail(p, m, "must not be negative");
    if (rule == CFG_POSITIVE && v <= 0)
        return fail(p, m, "must be greater than 0");
    return 0;
}

static int num_error(struct cfg_parser *p, const yaml_mark_t *m, enum num_rc rc, const char *text)
{
    if (rc == NUM_RANGE)
        return fail(p, m, "integer out of range: \"%s\"", text);
    if (rc == NUM_NEGATIVE)
        return fail(p, m, "must be greater than 0");
    return fail(p, m, "expected an integer, got \"%s\"", text);
}

static int store_enum(struct cfg_parser *p, const struct cfg_key *d, void *obj, const yaml_mark_t *m, const char *val)
{
    for (size_t i = 0; i < d->n_names; i++) {
        if (d->names[i] && strcmp(val, d->names[i]) == 0) {
            int v = (int)i;
            memcpy(field(obj, d->off), &v, sizeof v);
            return 0;
        }
    }
    char list[MSG_MAX] = "";
    for (size_t i = 0, n = 0; i < d->n_names && n < sizeof list; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", d->names[i]);
    return fail(p, m, "must be one of %s (got \"%.60s\")", list, val);
}

static int store_bool(struct cfg_parser *p, const struct cfg_key *d, void *obj, const yaml_mark_t *m, const char *val)
{
    bool v;
    if (!strcmp(val, "true") || !strcmp(val, "True") || !strcmp(val, "TRUE"))
        v = true;
    else if (!strcmp(val, "false") || !strcmp(val, "False") || !strcmp(val, "FALSE"))
        v = false;
    else
        return fail(p, m, "must be true or false (got \"%.60s\")", val);
    memcpy(field(obj, d->off), &v, sizeof v);
    return 0;
}

/* Convert an expanded scalar into its field.  `val` is consumed. */
static int store_value(struct cfg_parser *p, const struct cfg_key *d, void *obj, const yaml_mark_t *m, char *val)
{
    int rc = 0;
    if (d->type == CFG_INT) {
        int v = 0;
        enum num_rc n = parse_int32(val, &v);
        if (n != NUM_OK)
            rc = num_error(p, m, n, val);
        else if ((rc = check_int_rule(p, m, d->rule, v)) == 0)
            memcpy(field(obj, d->off), &v, sizeof v);
    } else if (d->type == CFG_U64) {
        uint64_t v = 0;
        enum num_rc n = parse_u64(val, &v);
        if (n != NUM_OK)
            rc = num_error(p, m, n, val);
        else if (d->rule == CFG_POSITIVE && v == 0)
            rc = fail(p, m, "must be greater than 0");
        else
            memcpy(field(obj, d->off), &v, sizeof v);
    } else if (d->type == CFG_BOOL) {
        rc = store_bool(p, d, obj, m, val);
    } else {
        rc = store_enum(p, d, obj, m, val);
    }
    free(val);
    return rc;
}

/* A scalar value for a CFG_STR / CFG_INT / CFG_U64 / CFG_BOOL / CFG_ENUM key. */
static int on_scalar_value(struct cfg_parser *p, const struct cfg_key *d, void *obj, const yaml_event_t *ev)
{
    const yaml_mark_t *m = &ev->start_mark;
    char *raw = NULL, *val = NULL;
    if (scalar_value(p, d, ev, &raw, &val) < 0)
        return -1;
    if (d->type != CFG_STR) {
        free(raw);
        /* "${RETRIES:-}" that comes out empty leaves the default. */
        if (!*val) {
            free(val);
            return 0;
        }
        return store_value(p, d, obj, m, val);
    }
    if (!*val && d->rule == CFG_NONEMPTY) {
        free(raw);
        free(val);
        return fail(p, m, "must not be empty");
    }
    if (!*val && d->rule == CFG_EMPTY_NULL) {
        free(raw);
        free(val);
        return 0;
    }
    replace_str(obj, d->off, val);
    if (d->aux_off != CFG_NO_FIELD && strcmp(raw, val) != 0) {
        replace_str(obj, d->aux_off, raw);
        raw = NULL;
    }
    free(raw);
    p->mark = m;
    return d->check ? d->check(p, obj) : 0;
}

static int on_key(struct cfg_parser *p, struct frame *f, const yaml_event_t *ev)
{
    if (ev->type != YAML_SCALAR_EVENT)
        return fail(p, &ev->start_mark, "a mapping key must be a scalar, got %s", node_kind(ev));
    const char *k = (const char *)ev->data.scalar.value;
    size_t klen = ev->data.scalar.length;
    const struct cfg_key *d = NULL;
    for (size_t i = 0; i < f->schema->n_keys && !d; i++)
        if (strlen(f->schema->keys[i].name) == klen && memcmp(f->schema->keys[i].name, k, klen) == 0)
            d = &f->schema->keys[i];
    copy_key(f->key, k, klen);
    if (!d) {
        warn_at(p, &ev->start_mark, "unknown key \"%s\"", f->key);
        f->want_value = true;
        f->skipping = true;
        return 0;
    }
    f->want_value = true;
    uint64_t bit = (uint64_t)1 << (d - f->schema->keys);
    if (f->seen & bit)
        return fail(p, &ev->start_mark, "duplicate key");
    f->seen |= bit;
    f->def = d;
    if (p->depth == 1) {
        int idx = (int)(d - f->schema->keys);
        struct cfg_span *sp = &p->cfg->spans[idx];
        sp->start = byte_offset(p, ev->start_mark.index);
        sp->line = ev->start_mark.line + 1;
        p->open_span = idx;
    }
    return 0;
}

static const char *type_word(enum cfg_type t)
{
    switch (t) {
    case CFG_STR: return "a string";
    case CFG_INT:
    case CFG_U64: return "an integer";
    case CFG_STRMAP: return "a mapping of names to strings";
    default: return "a scalar";
    }
}

static int on_value(struct cfg_parser *p, struct frame *f, const yaml_event_t *ev)
{
    if (f->skipping) {
        if (is_start(ev))
            return push(p, ev, F_SKIP) ? 0 : -1;
        value_done(p);
        return 0;
    }
    const struct cfg_key *d = f->def;
    void *obj = f->obj;
    bool list = d->type == CFG_STRLIST || d->type == CFG_LIST;
    yaml_event_type_t want = list ? YAML_SEQUENCE_START_EVENT : YAML_MAPPING_START_EVENT;
    if (list || d->type == CFG_STRMAP) {
        if (ev->type == want) {
            struct frame *c = push(p, ev, list ? F_SEQ : F_SMAP);
            if (!c)
                return -1;
            c->def = d;
            c->obj = obj;
            return 0;
        }
        if (!is_null(ev))
            return fail(p, &ev->start_mark, "expected %s, got %s", list ? "a sequence" : type_word(d->type),
                        node_kind(ev));
    } else if (ev->type != YAML_SCALAR_EVENT) {
        return fail(p, &ev->start_mark, "expected %s, got %s", type_word(d->type), node_kind(ev));
    } else if (!is_null(ev) && on_scalar_value(p, d, obj, ev) < 0) {
        return -1;
    }
    value_done(p);
    return 0;
}

static int on_item(struct cfg_parser *p, struct frame *f, const yaml_event_t *ev)
{
    const struct cfg_key *d = f->def;
    if (d->type == CFG_LIST) {
        if (ev->type != YAML_MAPPING_START_EVENT)
            return fail(p, &ev->start_mark, "expected a mapping, got %s", node_kind(ev));
        void *item = list_push(f->obj, d, &f->cap);
        if (!item)
            return fail_oom(p, &ev->start_mark);
        return push_map(p, ev, d->item, item);
    }
    if (ev->type != YAML_SCALAR_EVENT)
        return fail(p, &ev->start_mark, "expected a string, got %s", node_kind(ev));
    char *raw = NULL, *val = NULL;
    if (scalar_value(p, d, ev, &raw, &val) < 0)
        return -1;
    free(raw);
    if (!*val && d->rule == CFG_NONEMPTY) {
        free(val);
        return fail(p, &ev->start_mark, "must not be empty");
    }
    const char *why = d->check_item ? d->check_item(val) : NULL;
    if (why) {
        int rc = fail(p, &ev->start_mark, "\"%.60s\" %s", val, why);
        free(val);
        return rc;
    }
    void *slot = list_push(f->obj, d, &f->cap);
    if (!slot) {
        free(val);
        return fail_oom(p, &ev->start_mark);
    }
    memcpy(slot, &val, sizeof val);
    value_done(p);
    return 0;
}

/* A name or a value of a CFG_STRMAP (provider headers). */
static int on_pair(struct cfg_parser *p, struct frame *f, const yaml_event_t *ev)
{
    if (ev->type != YAML_SCALAR_EVENT)
        return fail(p, &ev->start_mark, "expected a string, got %s", node_kind(ev));
    char *raw = NULL, *val = NULL;
    if (scalar_value(p, f->def, ev, &raw, &val) < 0)
        return -1;
    free(raw);
    if (!f->want_value) {
        copy_key(f->key, val, strlen(val));
        f->pending = val;
        f->want_value = true;
        return 0;
    }
    if (strlen(val) > HEADER_VALUE_MAX) {
        free(val);
        return fail(p, &ev->start_mark, "longer than %d bytes", HEADER_VALUE_MAX);
    }
    struct cfg_pair *slot = list_push(f->obj, f->def, &f->cap);
    if (!slot) {
        free(val);
        return fail_oom(p, &ev->start_mark);
    }
    slot->name = f->pending;
    slot->value = val;
    f->pending = NULL;
    f->want_value = false;
    return 0;
}

static int on_node(struct cfg_parser *p, const yaml_event_t *ev)
{
    struct frame *f = top(p);
    if (!f) {
        if (ev->type == YAML_MAPPING_START_EVENT)
            return push_map(p, ev, &cfg_schema_top, p->cfg);
        if (is_null(ev))
            return 0; /* "---" alone: an empty config */
        return fail(p, &ev->start_mark, "the top-level document must be a mapping");
    }
    switch (f->kind) {
    case F_SKIP:
        return is_start(ev) ? (push(p, ev, F_SKIP) ? 0 : -1) : 0;
    case F_SEQ:
        return on_item(p, f, ev);
    case F_SMAP:
        return on_pair(p, f, ev);
    case F_MAP:
        return f->want_value ? on_value(p, f, ev) : on_key(p, f, ev);
    }
    return 0;
}

static int on_end(struct cfg_parser *p, const yaml_event_t *ev)
{
    struct frame *f = top(p);
    if (!f)
        return 0;
    /* A block collection ends where the next token starts, after blank
     * lines and comments; its value really ended with its last scalar. */
    if (f->flow)
        p->last_end = ev->end_mark.index;
    if (f->kind == F_MAP) {
        memcpy(field(f->obj, f->schema->given_off), &f->seen, sizeof f->seen);
        p->mark = &f->start;
        if (f->schema->close && f->schema->close(p, f->obj) < 0)
            return -1;
    }
    free(f->pending);
    f->pending = NULL;
    p->depth--;
    value_done(p);
    return 0;
}

static int on_event(struct cfg_parser *p, const yaml_event_t *ev)
{
    if (has_anchor(ev))
        return fail(p, &ev->start_mark, "anchors and aliases are not supported");
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (p->docs++ > 0)
            return fail(p, &ev->start_mark, "only one YAML document is supported");
        return 0;
    case YAML_SCALAR_EVENT:
        p->last_end = ev->end_mark.index;
        return on_node(p, ev);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        return on_node(p, ev);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_end(p, ev);
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */

static int syntax_error(struct cfg_parser *p, const yaml_parser_t *yp)
{
    if (yp->error == YAML_MEMORY_ERROR) {
        snprintf(p->err->msg, sizeof p->err->msg, "%s: out of memory", p->name);
        return -1;
    }
    yaml_mark_t m = yp->problem_mark;
    if (yp->error == YAML_READER_ERROR)
        m = mark_of_byte(p, yp->problem_offset);
    snprintf(p->err->msg, sizeof p->err->msg, "%s:%zu:%zu: %s", p->name, m.line + 1, m.column + 1,
             yp->problem ? yp->problem : "invalid YAML");
    return -1;
}

static bool given(const struct cfg_schema *s, const void *obj, const char *key)
{
    return cfg_key_given(s, obj, cfg_key_find(s, key));
}

/* Keys a provider or mapping did not give take the level above's value
 * (the global one, or the provider's for a mapping). */
static void inherit(struct config *c, struct cfg_provider *pr)
{
    const struct cfg_schema *ps = &cfg_schema_provider, *ms = &cfg_schema_mapping;
    if (!given(ps, pr, "model_retries"))
        pr->model_retries = c->model_retries;
    if (!given(ps, pr, "first_token_timeout"))
        pr->first_token_timeout = c->first_token_timeout;
    if (pr->first_token_timeout <= 0)
        pr->first_token_timeout = pr->timeout;
    if (!given(ps, pr, "response_model"))
        pr->response_model = c->response_model;
    if (!given(ps, pr, "stream_usage"))
        pr->stream_usage = true;
    for (size_t m = 0; m < pr->n_mappings; m++) {
        struct cfg_mapping *map = &pr->mappings[m];
        if (!given(ms, map, "continuation"))
            map->continuation = pr->continuation;
        if (!given(ms, map, "first_token_timeout") || map->first_token_timeout <= 0)
            map->first_token_timeout = pr->first_token_timeout;
        /* A provider without an OpenAI base URL is probed the Anthropic way. */
        if (!given(ms, map, "probe") && !pr->base_url)
            map->probe = CFG_PROBE_MESSAGES;
    }
}

/* Defaults that depend on the whole file, and the reference's rule that
 * a value <= 0 means "use the default" for its four original keys. */
static int finish(struct cfg_parser *p)
{
    struct config *c = p->cfg;
    if (!given(&cfg_schema_top, c, "model_retries"))
        c->model_retries = DEFAULT_MODEL_RETRIES;
    for (size_t i = 0; i < c->n_providers; i++)
        inherit(c, &c->providers[i]);
    if (c->max_retries <= 0)
        c->max_retries = DEFAULT_MAX_RETRIES;
    if (c->max_failures <= 0)
        c->max_failures = DEFAULT_MAX_FAILURES;
    if (c->recovery_interval <= 0)
        c->recovery_interval = DEFAULT_RECOVERY_INTERVAL;
    if (c->health_check_period <= 0)
        c->health_check_period = DEFAULT_HEALTH_CHECK_PERIOD;
    if ((!c->resolv_conf && !(c->resolv_conf = strdup(DEFAULT_RESOLV_CONF))) ||
        (!c->hosts_file && !(c->hosts_file = strdup(DEFAULT_HOSTS_FILE)))) {
        snprintf(p->err->msg, sizeof p->err->msg, "%s: out of memory", p->name);
        return -1;
    }
    return 0;
}

static struct config *config_new(const char *path)
{
    struct config *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->max_body_bytes = DEFAULT_MAX_BODY_BYTES;
    c->max_connections = DEFAULT_MAX_CONNECTIONS;
    c->log_ring_lines = DEFAULT_LOG_RING_LINES;
    c->log_max_bytes = DEFAULT_LOG_MAX_BYTES;
    c->stream_idle_timeout = DEFAULT_STREAM_IDLE_TIMEOUT;
    c->max_cooldown = DEFAULT_MAX_COOLDOWN;
    c->probe_timeout = DEFAULT_PROBE_TIMEOUT;
    c->retry_after_max = DEFAULT_RETRY_AFTER_MAX;
    c->continuation_max_bytes = DEFAULT_CONTINUATION_MAX_BYTES;
    c->max_buffered_bytes = DEFAULT_MAX_BUFFERED_BYTES;
    if (!(c->path = strdup(path))) {
        free(c);
        return NULL;
    }
    return c;
}

static int parse_events(struct cfg_parser *p)
{
    yaml_parser_t yp;
    if (!yaml_parser_initialize(&yp)) {
        snprintf(p->err->msg, sizeof p->err->msg, "%s: out of memory", p->name);
        return -1;
    }
    yaml_parser_set_input_string(&yp, (const unsigned char *)p->text, p->len);
    int rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&yp, &ev)) {
            rc = syntax_error(p, &yp);
            break;
        }
        bool end = ev.type == YAML_STREAM_END_EVENT;
        rc = on_event(p, &ev);
        yaml_event_delete(&ev);
        if (rc < 0 || end)
            break;
    }
    yaml_parser_delete(&yp);
    return rc;
}

static int load(const char *text, size_t len, const char *name, const char *path,
                struct config **out, struct cfg_error *err, cfg_warn_fn warn, void *warn_ctx)
{
    struct cfg_error scratch;
    if (!err)
        err = &scratch;
    err->msg[0] = '\0';
    *out = NULL;
    if (len > CFG_MAX_FILE_BYTES) {
        snprintf(err->msg, sizeof err->msg, "%s: file is larger than %u bytes", name,
                 (unsigned)CFG_MAX_FILE_BYTES);
        return -1;
    }
    /* libyaml would decode UTF-16, and then its character positions no
     * longer map onto our bytes. */
    if (len >= 2 && (((unsigned char)text[0] == 0xff && (unsigned char)text[1] == 0xfe) ||
                     ((unsigned char)text[0] == 0xfe && (unsigned char)text[1] == 0xff))) {
        snprintf(err->msg, sizeof err->msg, "%s:1:1: only UTF-8 is supported", name);
        return -1;
    }
    struct cfg_parser p;
    memset(&p, 0, sizeof p);
    p.name = name;
    p.text = text;
    p.len = len;
    /* libyaml skips a UTF-8 byte order mark before counting positions. */
    if (len >= sizeof UTF8_BOM && memcmp(text, UTF8_BOM, sizeof UTF8_BOM) == 0)
        p.bom = sizeof UTF8_BOM;
    p.cur_byte = p.bom;
    p.err = err;
    p.warn = warn;
    p.warn_ctx = warn_ctx;
    p.open_span = NO_SPAN;
    if (!(p.cfg = config_new(path))) {
        snprintf(err->msg, sizeof err->msg, "%s: out of memory", name);
        return -1;
    }
    int rc = parse_events(&p);
    for (size_t i = 0; i < p.depth; i++)
        free(p.stack[i].pending);   /* a mapping of strings cut off by an error */
    if (rc == 0)
        rc = finish(&p);
    free(p.name_slots);
    free(p.name_lines);
    if (rc < 0) {
        config_free(p.cfg);
        return -1;
    }
    *out = p.cfg;
    return 0;
}

int config_load_mem(const char *text, size_t len, const char *name, struct config **out,
                    struct cfg_error *err, cfg_warn_fn warn, void *warn_ctx)
{
    return load(text ? text : "", text ? len : 0, name ? name : MEMORY_NAME, MEMORY_NAME, out, err,
                warn, warn_ctx);
}

/* Read at most CFG_MAX_FILE_BYTES + 1 bytes: enough to tell "too big"
 * without trusting st_size (a FIFO or /proc file has none). */
static int read_file(const char *path, struct buf *b, struct cfg_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err->msg, sizeof err->msg, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    while (buf_len(b) <= CFG_MAX_FILE_BYTES) {
        if (buf_reserve(b, READ_CHUNK) < 0) {
            snprintf(err->msg, sizeof err->msg, "%s: out of memory", path);
            rc = -1;
            break;
        }
        size_t n = fread(buf_tail(b), 1, READ_CHUNK, f);
        buf_commit(b, n);
        if (n < READ_CHUNK) {
            if (ferror(f)) {
                snprintf(err->msg, sizeof err->msg, "%s: cannot read: %s", path, strerror(errno));
                rc = -1;
            }
            break;
        }
    }
    fclose(f);
    if (rc == 0 && buf_len(b) > CFG_MAX_FILE_BYTES) {
        snprintf(err->msg, sizeof err->msg, "%s: file is larger than %u bytes", path,
                 (unsigned)CFG_MAX_FILE_BYTES);
        rc = -1;
    }
    return rc;
}

int config_load_file(const char *path, struct config **out, struct cfg_error *err,
                     cfg_warn_fn warn, void *warn_ctx)
{
    struct cfg_error scratch;
    if (!err)
        err = &scratch;
    *out = NULL;
    struct buf b = BUF_INIT;
    if (read_file(path, &b, err) < 0) {
        buf_free(&b);
        return -1;
    }
    int rc = load(buf_len(&b) ? buf_head(&b) : "", buf_len(&b), path, path, out, err, warn, warn_ctx);
    buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Freeing                                                             */

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void provider_free(struct cfg_provider *prov)
{
    free(prov->name);
    free(prov->base_url);
    free(prov->base_url_raw);
    free(prov->anthropic_base_url);
    free(prov->anthropic_base_url_raw);
    free(prov->api_key);
    free(prov->api_key_raw);
    free(prov->ca_file);
    free_strv(prov->exclude_params, prov->n_exclude);
    free_strv(prov->forward_headers, prov->n_forward_headers);
    for (size_t i = 0; i < prov->n_headers; i++) {
        free(prov->headers[i].name);
        free(prov->headers[i].value);
    }
    free(prov->headers);
    for (size_t i = 0; i < prov->n_mappings; i++) {
        free(prov->mappings[i].upstream);
        free(prov->mappings[i].upstream_raw);
        free(prov->mappings[i].alias);
        free(prov->mappings[i].alias_raw);
    }
    free(prov->mappings);
    cfg_url_free(&prov->url);
    cfg_url_free(&prov->aurl);
}

void config_free(struct config *c)
{
    if (!c)
        return;
    free(c->path);
    free_strv(c->api_keys, c->n_api_keys);
    free(c->admin_key);
    free(c->listen);
    free(c->log_file);
    free(c->ca_file);
    free(c->resolv_conf);
    free(c->hosts_file);
    free_strv(c->forward_headers, c->n_forward_headers);
    free_strv(c->trusted_proxies, c->n_trusted_proxies);
    for (size_t i = 0; i < c->n_keys; i++) {
        struct cfg_client_key *k = &c->keys[i];
        free(k->name);
        free(k->key);
        free(k->key_raw);
        free(k->key_sha256);
        free_strv(k->models, k->n_models);
        free(k->expires);
    }
    free(c->keys);
    free(c->usage_file);
    for (size_t i = 0; i < c->n_providers; i++)
        provider_free(&c->providers[i]);
    free(c->providers);
    free(c);
}
