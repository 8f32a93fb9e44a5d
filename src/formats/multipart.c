#include "multipart.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 2046 5.1.1 bchars. */
static bool is_bchar(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || strchr("'()+_,-./:=? ", c);
}

/* The parameters of a header value after its first item: ";" name "="
 * (token / quoted-string), with optional whitespace.  next_param reads
 * one: its name, and its value decoded into val (cut at val_cap - 1,
 * *cut then says so); false at the end. */
struct param_cursor {
    const char *p, *end;
};

static bool next_param(struct param_cursor *c, char *name, size_t name_cap, char *val, size_t val_cap, bool *cut)
{
    while (c->p < c->end && (is_ows(*c->p) || *c->p == ';'))
        c->p++;
    if (c->p == c->end)
        return false;
    size_t nl = 0;
    while (c->p < c->end && *c->p != '=' && *c->p != ';' && !is_ows(*c->p)) {
        if (nl + 1 < name_cap)
            name[nl++] = *c->p;
        c->p++;
    }
    name[nl] = '\0';
    while (c->p < c->end && is_ows(*c->p))
        c->p++;
    size_t vl = 0;
    *cut = false;
    if (c->p < c->end && *c->p == '=') {
        c->p++;
        while (c->p < c->end && is_ows(*c->p))
            c->p++;
        bool quoted = c->p < c->end && *c->p == '"';
        if (quoted)
            c->p++;
        while (c->p < c->end) {
            char ch = *c->p;
            if (quoted && ch == '"') {
                c->p++;
                break;
            }
            if (!quoted && (ch == ';' || is_ows(ch)))
                break;
            if (quoted && ch == '\\' && c->p + 1 < c->end)
                ch = *++c->p;
            if (vl + 1 < val_cap)
                val[vl++] = ch;
            else
                *cut = true;
            c->p++;
        }
    }
    val[vl] = '\0';
    return true;
}

int multipart_boundary(const char *ctype, size_t n, char *out, size_t cap)
{
    const char *semi = memchr(ctype, ';', n);
    size_t tl = semi ? (size_t)(semi - ctype) : n;
    while (tl && is_ows(ctype[tl - 1]))
        tl--;
    size_t ts = 0;
    while (ts < tl && is_ows(ctype[ts]))
        ts++;
    if (!mem_ieq(ctype + ts, tl - ts, "multipart/form-data") || !semi || cap <= MP_BOUNDARY_MAX)
        return -1;
    struct param_cursor c = { semi, ctype + n };
    char name[16];
    bool cut;
    while (next_param(&c, name, sizeof name, out, cap, &cut)) {
        if (strcasecmp(name, "boundary") != 0)
            continue;
        size_t bl = strlen(out);
        if (cut || bl == 0 || bl > MP_BOUNDARY_MAX || out[bl - 1] == ' ')
            return -1;
        for (size_t i = 0; i < bl; i++)
            if (!is_bchar(out[i]))
                return -1;
        return 0;
    }
    return -1;
}

/* Whether "--" boundary at body[at] is a delimiter: followed by "--" (the
 * close delimiter) or by optional whitespace and CRLF.  *close says which;
 * *next is where the part (or the epilogue) begins. */
static bool delimiter_at(const char *body, size_t n, size_t at, const char *b, size_t bl, bool *close, size_t *next)
{
    if (n - at < 2 + bl || body[at] != '-' || body[at + 1] != '-' || memcmp(body + at + 2, b, bl) != 0)
        return false;
    size_t p = at + 2 + bl;
    if (n - p >= 2 && body[p] == '-' && body[p + 1] == '-') {
        *close = true;
        *next = p + 2;
        return true;
    }
    while (p < n && is_ows(body[p]))
        p++;
    if (n - p < 2 || body[p] != '\r' || body[p + 1] != '\n')
        return false;
    *close = false;
    *next = p + 2;
    return true;
}

/* The next delimiter at a line start at or after from: the offset of its
 * CRLF, or n when there is none. */
static size_t find_delimiter(const char *body, size_t n, size_t from, const char *b, size_t bl, bool *close,
                             size_t *next)
{
    while (from < n) {
        const char *hit = mem_find(body + from, n - from, "\r\n--", 4);
        if (!hit)
            return n;
        size_t at = (size_t)(hit - body);
        if (delimiter_at(body, n, at + 2, b, bl, close, next))
            return at;
        from = at + 2;
    }
    return n;
}

/* One part's headers, body[from, to): the form-data name (cut to cap - 1,
 * *cut then set) and whether a filename is given.  -1 on a bad line. */
static int part_headers(const char *body, size_t from, size_t to, char *name, size_t cap, bool *cut,
                        bool *has_file, bool *is_form)
{
    name[0] = '\0';
    *cut = *has_file = *is_form = false;
    while (from < to) {
        const char *eol = mem_find(body + from, to - from, "\r\n", 2);
        size_t le = eol ? (size_t)(eol - body) : to;
        const char *colon = memchr(body + from, ':', le - from);
        if (!colon || colon == body + from || is_ows(body[from]))
            return -1;
        size_t nl = (size_t)(colon - (body + from));
        if (mem_ieq(body + from, nl, "content-disposition")) {
            const char *v = colon + 1, *ve = body + le;
            while (v < ve && is_ows(*v))
                v++;
            size_t vlen = ve > v ? (size_t)(ve - v) : 0;
            const char *semi = memchr(v, ';', vlen);
            const char *te = semi ? semi : v + vlen;
            while (te > v && is_ows(te[-1]))
                te--;
            *is_form = mem_ieq(v, (size_t)(te - v), "form-data");
            struct param_cursor c = { te, ve };
            char pname[16], pval[64];
            bool pcut;
            while (next_param(&c, pname, sizeof pname, pval, sizeof pval, &pcut)) {
                if (strcasecmp(pname, "name") == 0) {
                    snprintf(name, cap, "%s", pval);
                    *cut = pcut || strlen(pval) >= cap;
                } else if (strcasecmp(pname, "filename") == 0 || strcasecmp(pname, "filename*") == 0) {
                    *has_file = true;
                }
            }
        }
        from = le + 2;
    }
    return 0;
}

int multipart_scan(const char *body, size_t n, const char *boundary, const char *const *names, size_t n_names,
                   struct mp_field *out, const char **why)
{
    size_t bl = strlen(boundary);
    for (size_t i = 0; i < n_names; i++)
        out[i] = (struct mp_field){ false, 0, 0, 0 };
    bool close;
    size_t pos;
    /* The first delimiter may open the body; anything before it is a
     * preamble, to be ignored. */
    if (!delimiter_at(body, n, 0, boundary, bl, &close, &pos) &&
        find_delimiter(body, n, 0, boundary, bl, &close, &pos) == n) {
        *why = "multipart body without its boundary";
        return -1;
    }
    while (!close) {
        /* Headers end at an empty line; a part may have none. */
        size_t head_end;
        if (n - pos >= 2 && body[pos] == '\r' && body[pos + 1] == '\n') {
            head_end = pos;
        } else {
            size_t room = n - pos < MP_PART_HEAD_MAX ? n - pos : MP_PART_HEAD_MAX;
            const char *e = mem_find(body + pos, room, "\r\n\r\n", 4);
            if (!e) {
                *why = "multipart part headers too long or not ended";
                return -1;
            }
            head_end = (size_t)(e - body) + 2;
        }
        char name[64];
        bool cut, has_file, is_form;
        if (part_headers(body, pos, head_end, name, sizeof name, &cut, &has_file, &is_form) < 0) {
            *why = "bad multipart part header";
            return -1;
        }
        /* The value runs from after the blank line to the next delimiter;
         * a delimiter right at the blank line's CRLF means no value at all. */
        size_t end = find_delimiter(body, n, head_end, boundary, bl, &close, &pos);
        if (end == n) {
            *why = "multipart body without its closing boundary";
            return -1;
        }
        size_t content = end > head_end ? head_end + 2 : end;
        for (size_t i = 0; is_form && !cut && i < n_names; i++) {
            if (strcmp(name, names[i]) != 0)
                continue;
            out[i].count++;   /* every part of that name, a file too: a second one is ambiguous */
            if (!out[i].found && !has_file) {
                out[i].found = true;
                out[i].start = content;
                out[i].end = end;
            }
        }
    }
    return 0;
}
