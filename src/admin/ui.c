#include "ui.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gunzip.h"
#include "log.h"
#include "ui_data.h"
#include "util.h"

#define UI_HEADERS                                                                                   \
    "Content-Security-Policy: default-src 'self'; img-src 'self' data:; frame-ancestors 'none'\r\n"  \
    "X-Content-Type-Options: nosniff\r\n"                                                            \
    "X-Frame-Options: DENY\r\n"                                                                      \
    "Referrer-Policy: no-referrer\r\n"                                                               \
    "Cache-Control: no-cache\r\n"

static bool etag_matches(const struct hp_header *h, const char *etag)
{
    /* If-None-Match: a list of entity tags, or "*" (RFC 9110 13.1.2);
     * weak comparison, so W/ prefixes are ignored. */
    const char *p = h->value, *end = h->value + h->value_len;
    size_t elen = strlen(etag);
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ',' || *p == '\t'))
            p++;
        if (p < end && *p == '*')
            return true;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/')
            p += 2;
        const char *q = p;
        while (q < end && *q != ',')
            q++;
        const char *t = q;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == elen && memcmp(p, etag, elen) == 0)
            return true;
        p = q;
    }
    return false;
}

bool ui_serve(struct conn *c, struct request *r)
{
    const struct ui_file *f = NULL;
    for (size_t i = 0; i < ui_nfiles; i++)
        if (mem_eq(r->path, r->path_len, ui_files[i].path) ||
            (mem_eq(r->path, r->path_len, "/index.html") && strcmp(ui_files[i].path, "/") == 0))
            f = &ui_files[i];
    if (!f)
        return false;
    char hdr[1024];
    const struct hp_header *inm = hp_find(r->hp.headers, r->hp.num_headers, "if-none-match");
    if (inm && etag_matches(inm, f->etag)) {
        snprintf(hdr, sizeof hdr, "ETag: %s\r\nVary: Accept-Encoding\r\n" UI_HEADERS, f->etag);
        conn_respond(c, 304, NULL, hdr, "", 0);
        return true;
    }
    const struct hp_header *ae = hp_find(r->hp.headers, r->hp.num_headers, "accept-encoding");
    bool gz = f->gz && ae && hp_has_token(ae->value, ae->value_len, "gzip");
    snprintf(hdr, sizeof hdr, "ETag: %s\r\nVary: Accept-Encoding\r\n%s" UI_HEADERS, f->etag,
             gz ? "Content-Encoding: gzip\r\n" : "");
    if (gz || f->data || r->is_head) {
        conn_respond(c, 200, f->type, hdr, gz ? f->gz : f->data, gz ? f->gz_len : f->len);
        return true;
    }
    /* Only the gzip copy is compiled in: inflated for this client, into
     * a buffer of the size the build recorded. */
    unsigned char *plain = malloc(f->len ? f->len : 1);
    size_t n = 0;
    if (!plain || !gunzip(f->gz, f->gz_len, plain, f->len, &n) || n != f->len) {
        log_msg(LOG_ERROR, "ui: %s could not be inflated", f->path);
        conn_respond(c, 500, "text/plain; charset=utf-8", NULL, "UI file unavailable\n", 20);
    } else {
        conn_respond(c, 200, f->type, hdr, plain, n);
    }
    free(plain);
    return true;
}
