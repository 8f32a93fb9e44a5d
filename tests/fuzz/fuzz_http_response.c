/* libFuzzer target: response heads (hp_parse_response,
 * hp_response_framing) and the chunked decoder on what follows.
 *
 * Input: see fuzz_common.h.  Flag bit 0 (byte 0 & 0x10): the response
 * answers a HEAD request.  The control bytes choose the split sizes of
 * the body and the prefix lengths re-parsed.
 *
 * Checked as for requests: bounds and grammar of every view, re-parse of
 * the head alone and of a canonical rewrite, prefixes, framing against
 * the fields present, and split-invariance of the chunked decoder. */
#include "fuzz_http_common.h"

static struct hp_response res, res2;

static void check_response(const char *buf, int r)
{
    size_t used = (size_t)r;
    FUZZ_CHECK(res.minor_version == 0 || res.minor_version == 1, "minor version %d", res.minor_version);
    FUZZ_CHECK(res.status >= 100 && res.status <= 999, "status %d", res.status);
    FUZZ_CHECK(fuzz_inside(res.reason, res.reason_len, buf, used), "reason view");
    for (size_t i = 0; i < res.reason_len; i++) {
        unsigned char c = (unsigned char)res.reason[i];
        FUZZ_CHECK(fz_field_byte(c), "reason byte 0x%02x", c);
    }
    check_fields(res.headers, res.num_headers, buf, used);
    FUZZ_CHECK(buf[used - 1] == '\n', "head does not end with LF");
}

static void check_framing_vs_fields(int fr, bool head_req, const struct hp_framing *f)
{
    const struct hp_header *cl = hp_find(res.headers, res.num_headers, "content-length");
    const struct hp_header *te = hp_find(res.headers, res.num_headers, "Transfer-Encoding");
    bool no_body = head_req || res.status < 200 || res.status == 204 || res.status == 304;
    if (fr < 0) {
        FUZZ_CHECK(fr == HP_ERROR, "response framing returned %d", fr);
        FUZZ_CHECK(!no_body, "framing error for a response without a body");
        FUZZ_CHECK(cl || te, "framing error without Content-Length or Transfer-Encoding");
        return;
    }
    FUZZ_CHECK(fr == 0, "response framing returned %d", fr);
    if (no_body)
        FUZZ_CHECK(f->body == HP_BODY_NONE, "status %d (HEAD %d) with a body", res.status, head_req);
    switch (f->body) {
    case HP_BODY_NONE:
        FUZZ_CHECK(no_body, "no body for status %d", res.status);
        break;
    case HP_BODY_LENGTH:
        FUZZ_CHECK(cl && !te, "length body without a lone Content-Length");
        FUZZ_CHECK(f->length <= (uint64_t)INT64_MAX, "length %llu", (unsigned long long)f->length);
        break;
    case HP_BODY_CHUNKED:
        FUZZ_CHECK(te, "chunked body without Transfer-Encoding");
        if (cl || res.minor_version == 0)
            FUZZ_CHECK(!f->keep_alive, "chunked + Content-Length (or HTTP/1.0) kept alive");
        break;
    case HP_BODY_UNTIL_CLOSE:
        FUZZ_CHECK(!cl && !te && !f->keep_alive, "read-until-close with framing fields or keep-alive");
        break;
    default:
        FUZZ_CHECK(0, "response body kind %d", (int)f->body);
    }
    FUZZ_CHECK(!f->expect_continue, "expect_continue on a response");
    if (f->keep_alive && res.minor_version == 0)
        FUZZ_CHECK(hp_find(res.headers, res.num_headers, "connection"), "HTTP/1.0 kept alive without Connection");
}

/* "HTTP/1.x SSS reason" EOL, the fields, EOL; spelled as st says. */
static void serialize(struct fz_out *o, const struct head_style *st)
{
    char line[32];
    out_leading(o, st);
    snprintf(line, sizeof line, "HTTP/1.%d %03d ", res.minor_version, res.status);
    out_str(o, line);
    out_add(o, res.reason, res.reason_len);
    out_eol(o, st);
    out_fields(o, res.headers, res.num_headers, st);
}

static void check_respelled(const struct head_style *st, bool head_req, int fr, const struct hp_framing *fr1)
{
    struct fz_out o = { NULL, 0, 0 };
    serialize(&o, st);
    char *s = fuzz_dup(o.p, o.n);
    free(o.p);
    int r2 = hp_parse_response(s, o.n, &res2);
    FUZZ_CHECK(r2 == (int)o.n, "re-spelled head (lf %d ows %d leading %u): %d for %zu bytes", st->lf, st->ows,
               st->leading, r2, o.n);
    FUZZ_CHECK(res2.minor_version == res.minor_version && res2.status == res.status, "re-spelled: status line");
    FUZZ_CHECK(res2.reason_len == res.reason_len && memcmp(res2.reason, res.reason, res.reason_len) == 0,
               "re-spelled: reason");
    check_same_fields(res.headers, res.num_headers, res2.headers, res2.num_headers);
    struct hp_framing fr2;
    int frc = hp_response_framing(&res2, head_req, &fr2);
    FUZZ_CHECK(frc == fr && (fr < 0 || same_framing(fr1, &fr2)), "re-spelled: framing differs");
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
    struct fuzz_input f = fuzz_split_input(in, n);
    bool head_req = f.flags & 1;
    char *buf = fuzz_dup(f.data, f.len);
    int r = hp_parse_response(buf, f.len, &res);
    FUZZ_CHECK(r == HP_ERROR || r == HP_INCOMPLETE || r == HP_TOO_MANY_HEADERS || (r > 0 && (size_t)r <= f.len),
               "hp_parse_response returned %d for %zu bytes", r, f.len);

    size_t ks[3] = { f.len ? f.len - 1 : 0, fuzz_ctl(&f, 0, 0) * 64u + fuzz_ctl(&f, 1, 0),
                     r > 0 ? (size_t)r - 1 : f.len / 2 };
    for (size_t i = 0; i < 3; i++) {
        size_t k = ks[i];
        if (k >= f.len)
            continue;
        char *pre = fuzz_dup(f.data, k);
        check_prefix_answer(r, hp_parse_response(pre, k, &res2), k);
        free(pre);
    }

    if (r > 0) {
        check_response(buf, r);
        struct hp_framing fr1;
        int fr = hp_response_framing(&res, head_req, &fr1);
        check_framing_vs_fields(fr, head_req, &fr1);

        char *head = fuzz_dup(buf, (size_t)r);
        FUZZ_CHECK(hp_parse_response(head, (size_t)r, &res2) == r, "head alone parses differently");
        FUZZ_CHECK(res2.status == res.status && res2.reason_len == res.reason_len &&
                       res2.reason - head == res.reason - buf,
                   "status line differs");
        check_same_fields(res.headers, res.num_headers, res2.headers, res2.num_headers);
        free(head);

        struct head_style canon = { false, false, 0 };
        struct head_style other = style_from(fuzz_ctl(&f, 3, 0x3f));
        check_respelled(&canon, head_req, fr, &fr1);
        check_respelled(&other, head_req, fr, &fr1);
    }

    size_t body_off = r > 0 ? (size_t)r : 0;
    check_chunked(&f, f.data + body_off, f.len - body_off);
    free(buf);
    return 0;
}
