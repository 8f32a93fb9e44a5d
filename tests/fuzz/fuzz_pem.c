/* libFuzzer target: tls_trust_load_mem (PEM bundle -> trust anchors) and
 * tls_trust_free.  The whole input is the bundle.
 *
 * BearSSL itself comes from the system library (not instrumented): the
 * coverage guiding this target is that of src/transport/tls.c's PEM walk (the seeds
 * hold real CA certificates so the X.509 side is reached).  Checked: a
 * set has at least one anchor; without a set, the reason is a terminated,
 * non-empty message within the given capacity; the same bundle loads the
 * same way twice; no leak (LeakSanitizer) or bad access on any path. */
#include "fuzz_common.h"
#include "log.h"
#include "tls.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_stdout(0);      /* "n trust anchors, m skipped" lines */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
    char *pem = fuzz_dup(in, n);
    char err[160];
    size_t cap = n ? 1 + in[0] % sizeof err : sizeof err;
    memset(err, 0x55, sizeof err);
    struct tls_trust *t = tls_trust_load_mem(pem, n, err, cap);
    if (t) {
        size_t count = tls_trust_count(t);
        FUZZ_CHECK(count >= 1, "a trust set without anchors");
    } else {
        FUZZ_CHECK(memchr(err, '\0', cap) != NULL, "reason not terminated within cap %zu", cap);
        if (cap > 1)
            FUZZ_CHECK(err[0] != '\0', "no reason given");
    }
    /* Deterministic: a second load gives the same answer. */
    char err2[160];
    struct tls_trust *t2 = tls_trust_load_mem(pem, n, err2, sizeof err2);
    FUZZ_CHECK((t == NULL) == (t2 == NULL), "second load differs");
    if (t)
        FUZZ_CHECK(tls_trust_count(t) == tls_trust_count(t2), "second load: other count");
    tls_trust_free(t2);
    tls_trust_free(t);
    free(pem);
    return 0;
}
