/* libFuzzer target: multipart_boundary and multipart_scan.
 *
 * Input: a Content-Type value, "\n", then the body.  Checked: a boundary
 * handed out is 1-70 bytes of the allowed characters; every field span
 * lies in the body; and replacing a non-empty "model" value the way the
 * proxy does gives a body that still scans, with the new value found at
 * the same place and the other field unchanged. */
#include "fuzz_common.h"
#include "multipart.h"

#define NEW_MODEL "upstream-model/x"

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
    const uint8_t *nl = memchr(in, '\n', n < 200 ? n : 200);
    if (!nl)
        return 0;
    size_t cl = (size_t)(nl - in);
    char boundary[MP_BOUNDARY_MAX + 1];
    char *ctype = malloc(cl ? cl : 1);
    memcpy(ctype, in, cl);
    int rc = multipart_boundary(ctype, cl, boundary, sizeof boundary);
    free(ctype);
    if (rc < 0)
        return 0;
    size_t bl = strlen(boundary);
    FUZZ_CHECK(bl >= 1 && bl <= MP_BOUNDARY_MAX && boundary[bl - 1] != ' ', "boundary \"%s\"", boundary);

    size_t len = n - cl - 1;
    char *body = malloc(len ? len : 1);   /* exactly the body: ASan sees any overread */
    memcpy(body, nl + 1, len);
    static const char *const names[] = { "model", "stream" };
    struct mp_field f[2];
    const char *why = NULL;
    if (multipart_scan(body, len, boundary, names, 2, f, &why) < 0) {
        FUZZ_CHECK(why != NULL, "a refusal without a reason");
        free(body);
        return 0;
    }
    for (int i = 0; i < 2; i++)
        if (f[i].found)
            FUZZ_CHECK(f[i].start <= f[i].end && f[i].end <= len, "span %zu..%zu of %zu", f[i].start, f[i].end, len);

    if (f[0].found && f[0].end > f[0].start) {
        size_t vl = sizeof NEW_MODEL - 1;
        size_t n2 = len - (f[0].end - f[0].start) + vl;
        char *b2 = malloc(n2);
        memcpy(b2, body, f[0].start);
        memcpy(b2 + f[0].start, NEW_MODEL, vl);
        memcpy(b2 + f[0].start + vl, body + f[0].end, len - f[0].end);
        struct mp_field g[2];
        FUZZ_CHECK(multipart_scan(b2, n2, boundary, names, 2, g, &why) == 0, "rewritten body refused: %s", why);
        FUZZ_CHECK(g[0].found && g[0].start == f[0].start && g[0].end == f[0].start + vl,
                   "rewritten model not found where it was put");
        FUZZ_CHECK(g[1].found == f[1].found, "the stream field came or went");
        if (f[1].found) {
            size_t shift = f[1].start > f[0].start ? n2 - len : 0;
            FUZZ_CHECK(g[1].end - g[1].start == f[1].end - f[1].start && g[1].start == f[1].start + shift,
                       "the stream field moved or changed");
        }
        free(b2);
    }
    free(body);
    return 0;
}
