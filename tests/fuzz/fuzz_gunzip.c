/* libFuzzer target: gunzip (the inflater of the UI's gzip copies).
 *
 * Input: byte 0 sets the output's size (byte * 257 bytes, so 0..65535);
 * the rest is tried twice: as a whole gzip member, and as raw deflate
 * data behind a fixed gzip header (so the fuzzer reaches the block
 * decoders without having to find a header first; the CRC then almost
 * never matches, but every block is decoded before the trailer is read).
 *
 * Checked: every read and write stays in the heap blocks handed over
 * (exactly sized, so AddressSanitizer sees a byte past either end); on
 * success the length fits the output, the same input with an output of
 * exactly that length gives the same bytes, and one byte less is refused. */
#include "fuzz_common.h"
#include "gunzip.h"

static void try_member(const uint8_t *in, size_t n, size_t cap)
{
    uint8_t *copy = malloc(n ? n : 1), *out = malloc(cap ? cap : 1);
    memcpy(copy, in, n);
    size_t got = 0;
    if (gunzip(copy, n, out, cap, &got)) {
        FUZZ_CHECK(got <= cap, "%zu bytes out of %zu", got, cap);
        uint8_t *exact = malloc(got ? got : 1);
        size_t again = 0;
        FUZZ_CHECK(gunzip(copy, n, exact, got, &again) && again == got && memcmp(exact, out, got) == 0,
                   "an output of exactly %zu bytes gives other bytes", got);
        if (got)
            FUZZ_CHECK(!gunzip(copy, n, exact, got - 1, &again), "%zu bytes fit in %zu", got, got - 1);
        free(exact);
    }
    free(out);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cap = (size_t)data[0] * 257;
    try_member(data + 1, size - 1, cap);
    static const uint8_t header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    uint8_t *member = malloc(size - 1 + sizeof header);
    memcpy(member, header, sizeof header);
    memcpy(member + sizeof header, data + 1, size - 1);
    try_member(member, size - 1 + sizeof header, cap);
    free(member);
    return 0;
}
