/* gunzip: one gzip member (RFC 1952) inflated (RFC 1951) into a buffer.
 *
 * The admin UI is compiled in gzip-compressed only (a second, plain copy
 * would cost the binary ~90 KiB); browsers take it as it is and the few
 * clients that do not accept gzip get it inflated here, into a buffer of
 * the size the build recorded.  Whole input, whole output, no streaming:
 * the window is the output itself. */
#ifndef AUTOSWITCH_GUNZIP_H
#define AUTOSWITCH_GUNZIP_H

#include <stdbool.h>
#include <stddef.h>

/* Inflate the gzip member in[0, in_len) into out[0, out_cap).  true and
 * *out_len when it is exactly one well-formed member (nothing after it)
 * whose CRC-32 and length match what it inflated to; false otherwise,
 * also when the data would not fit in out_cap.  Never reads past in_len
 * nor writes past out_cap. */
bool gunzip(const unsigned char *in, size_t in_len, unsigned char *out, size_t out_cap,
            size_t *out_len);

#endif
