/* libFuzzer target: request heads (hp_parse_request, hp_request_framing)
 * and the chunked decoder on what follows the head.
 *
 * Input: see fuzz_common.h.  The control bytes choose the split sizes of
 * the body fed to hp_chunked_decode and the prefix lengths re-parsed.
 *
 * Checked: the answer is a length <= the input or an error code; every
 * view lies inside the head and obeys the grammar; the head re-parses to
 * the same result on its own, and so does a canonical re-serialisation of
 * it (same fields, same framing); any prefix is incomplete or gets the
 * same answer; the framing agrees with the fields present; the chunked
 * decoder hands out only bytes it consumed and gives the same result
 * however its input is split. */
#include "fuzz_http_common.h"

static struct hp_request req, req2;

static void check_request(const char *buf, int r)
{
    size_t used = (size_t)r;
    FUZZ_CHECK(req.method == buf || (req.method > buf && req.method < buf + used), "method outside");
    FUZZ_CHECK(req.method_len > 0 && fuzz_inside(req.method, req.method_len, buf, used), "method view");
    for (size_t i = 0; i < req.method_len; i++)
        FUZZ_CHECK(fz_tchar((unsigned char)req.method[i]), "method byte 0x%02x", (unsigned char)req.method[i]);
    FUZZ_CHECK(req.target_len > 0 && fuzz_inside(req.target, req.target_len, buf, used), "target view");
    FUZZ_CHECK(req.target == req.method + req.method_len + 1, "target does not follow method + SP");
    for (size_t i = 0; i < req.target_len; i++) {
        unsigned char c = (unsigned char)req.target[i];
        FUZZ_CHECK(c > ' ' && c < 0x7f, "target byte 0x%02x", c);
    }
    FUZZ_CHECK(req.minor_version == 0 || req.minor_version == 1, "minor version %d", req.minor_version);
    check_fields(req.headers, req.num_headers, buf, used);
    FUZZ_CHECK(buf[used - 1] == '\n', "head does not end with LF");
}

static void check_framing_vs_fields(int fr, const struct hp_framing *f)
{
    const struct hp_header *cl = hp_find(req.headers, req.num_headers, "Content-Length");
    const struct hp_header *te = hp_find(req.headers, req.num_headers, "transfer-encoding");
    if (fr < 0) {
        FUZZ_CHECK(fr == HP_ERROR, "request framing returned %d", fr);
        FUZZ_CHECK(cl || te, "framing error without Content-Length or Transfer-Encoding");
        return;
    }
    FUZZ_CHECK(fr == 0, "request framing returned %d", fr);
    switch (f->body) {
    case HP_BODY_NONE:
        FUZZ_CHECK(!cl && !te, "no body despite Content-Length / Transfer-Encoding");
        break;
    case HP_BODY_LENGTH:
        FUZZ_CHECK(cl && !te, "length body without a lone Content-Length");
        FUZZ_CHECK(f->length <= (uint64_t)INT64_MAX, "length %llu", (unsigned long long)f->length);
        break;
    case HP_BODY_CHUNKED:
        FUZZ_CHECK(te && !cl, "chunked body without a lone Transfer-Encoding");
        break;
    default:
        FUZZ_CHECK(0, "request body kind %d", (int)f->body);
    }
    if (f->expect_continue)
        FUZZ_CHECK(req.minor_version == 1 && hp_find(req.headers, req.num_headers, "expect"),
                   "expect_continue without HTTP/1.1 Expect");
    if (f->keep_alive && req.minor_version == 0)
        FUZZ_CHECK(hp_find(req.headers, req.num_headers, "connection"), "HTTP/1.0 kept alive without Connection");
    if (f->body == HP_BODY_CHUNKED && req.minor_version == 0)
        FUZZ_CHECK(!f->keep_alive, "HTTP/1.0 chunked kept alive");
}

/* "METHOD SP target SP HTTP/1.x" EOL, the fields, EOL; spelled as st says. */
static void serialize(struct fz_out *o, const struct head_style *st)
{
    out_leading(o, st);
    out_add(o, req.method, req.method_len);
    out_str(o, " ");
    out_add(o, req.target, req.target_len);
    out_str(o, req.minor_version ? " HTTP/1.1" : " HTTP/1.0");
    out_eol(o, st);
    out_fields(o, req.headers, req.num_headers, st);
}

/* A re-serialisation of the request parses to the same request. */
static void check_respelled(const struct head_style *st, int fr, const struct hp_framing *fr1)
{
    struct fz_out o = { NULL, 0, 0 };
    serialize(&o, st);
    char *s = fuzz_dup(o.p, o.n);
    free(o.p);
    int r2 = hp_parse_request(s, o.n, &req2);
    FUZZ_CHECK(r2 == (int)o.n, "re-spelled head (lf %d ows %d leading %u): %d for %zu bytes", st->lf, st->ows,
               st->leading, r2, o.n);
    FUZZ_CHECK(req2.method_len == req.method_len && memcmp(req2.method, req.method, req.method_len) == 0,
               "re-spelled: method");
    FUZZ_CHECK(req2.target_len == req.target_len && memcmp(req2.target, req.target, req.target_len) == 0,
               "re-spelled: target");
    FUZZ_CHECK(req2.minor_version == req.minor_version, "re-spelled: version");
    check_same_fields(req.headers, req.num_headers, req2.headers, req2.num_headers);
    struct hp_framing fr2;
    int frc = hp_request_framing(&req2, &fr2);
    FUZZ_CHECK(frc == fr && (fr < 0 || same_framing(fr1, &fr2)), "re-spelled: framing differs");
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
    struct fuzz_input f = fuzz_split_input(in, n);
    char *buf = fuzz_dup(f.data, f.len);
    int r = hp_parse_request(buf, f.len, &req);
    FUZZ_CHECK(r == HP_ERROR || r == HP_INCOMPLETE || r == HP_TOO_MANY_HEADERS || (r > 0 && (size_t)r <= f.len),
               "hp_parse_request returned %d for %zu bytes", r, f.len);

    /* Prefixes: one byte short, and two lengths from the control bytes. */
    size_t ks[3] = { f.len ? f.len - 1 : 0, fuzz_ctl(&f, 0, 0) * 64u + fuzz_ctl(&f, 1, 0),
                     r > 0 ? (size_t)r - 1 : f.len / 2 };
    for (size_t i = 0; i < 3; i++) {
        size_t k = ks[i];
        if (k >= f.len)
            continue;
        char *pre = fuzz_dup(f.data, k);
        check_prefix_answer(r, hp_parse_request(pre, k, &req2), k);
        free(pre);
    }

    if (r > 0) {
        check_request(buf, r);
        struct hp_framing fr1;
        int fr = hp_request_framing(&req, &fr1);
        check_framing_vs_fields(fr, &fr1);

        /* The head alone, in a buffer of its own: the same answer. */
        char *head = fuzz_dup(buf, (size_t)r);
        FUZZ_CHECK(hp_parse_request(head, (size_t)r, &req2) == r, "head alone parses differently");
        FUZZ_CHECK(req2.method_len == req.method_len && req2.method - head == req.method - buf, "method moved");
        FUZZ_CHECK(req2.target_len == req.target_len && req2.target - head == req.target - buf, "target moved");
        check_same_fields(req.headers, req.num_headers, req2.headers, req2.num_headers);
        free(head);

        /* Rewrites of what was understood, canonical and in another
         * allowed spelling: the same request. */
        struct head_style canon = { false, false, 0 };
        struct head_style other = style_from(fuzz_ctl(&f, 3, 0x3f));
        check_respelled(&canon, fr, &fr1);
        check_respelled(&other, fr, &fr1);

        /* Lookups over every field must stay inside the values. */
        for (size_t i = 0; i < req.num_headers; i++) {
            const struct hp_header *h = &req.headers[i];
            (void)hp_has_token(h->value, h->value_len, "close");
            (void)hp_has_token(h->value, h->value_len, "");
            FUZZ_CHECK(hp_name_eq(h, "x") == (h->name_len == 1 && (h->name[0] | 0x20) == 'x'), "hp_name_eq");
        }
    }

    /* Whatever follows the head (or everything, when there is no head)
     * goes through the chunked decoder, chunked or not. */
    size_t body_off = r > 0 ? (size_t)r : 0;
    check_chunked(&f, f.data + body_off, f.len - body_off);
    free(buf);
    return 0;
}
