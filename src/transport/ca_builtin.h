/* ca_builtin: trust anchors compiled into the binary (optional).
 *
 * scripts/gen_ca.c runs on the build host, decodes a PEM bundle with
 * BearSSL and writes ca_builtin.c: each CA's subject DN, key type and key
 * bytes as C arrays, so nothing is parsed at run time and a static binary
 * needs no bundle on the machine it runs on.  tls.c uses the table when
 * compiled with -DAUTOSWITCH_BUILTIN_CA.
 *
 * Which anchors verify a TLS upstream:
 *   1. the upstream's configured ca_file, when it has one;
 *   2. else this compiled-in set, when the build has one;
 *   3. else the first system bundle that exists, of
 *      /etc/ssl/certs/ca-certificates.crt, /etc/pki/tls/certs/ca-bundle.crt,
 *      /etc/ssl/ca-bundle.pem, /etc/ssl/cert.pem. */
#ifndef AUTOSWITCH_CA_BUILTIN_H
#define AUTOSWITCH_CA_BUILTIN_H

#include <stddef.h>

#include <bearssl.h>

extern const br_x509_trust_anchor ca_builtin_anchors[];
extern const size_t ca_builtin_count;

#endif
