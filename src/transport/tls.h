/* tls: BearSSL client transport for upstream HTTPS.
 *
 * The BearSSL engine does no I/O; this module moves its records between
 * the engine and a non-blocking socket from inside the loop.  TLS 1.2,
 * BearSSL's full client profile, SNI, chain and host name verification
 * against a trust-anchor set, and session resumption per origin so that a
 * reconnect skips the full handshake.  Entropy comes from getrandom()
 * (injected), so a static binary needs neither /dev/urandom nor RDRAND. */
#ifndef AUTOSWITCH_TLS_H
#define AUTOSWITCH_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "xport.h"

struct tls_trust;   /* a loaded, immutable set of trust anchors */
struct tls_origin;  /* per (host, port, trust): session cache */

/* Load a PEM bundle (certificates; non-CA and unusable ones skipped).
 * NULL and a reason in err when the file cannot be read or holds no
 * usable anchor. */
struct tls_trust *tls_trust_load_file(const char *path, char *err, size_t cap);
struct tls_trust *tls_trust_load_mem(const char *pem, size_t len, char *err, size_t cap);
/* The default set: the bundle compiled into the binary if there is one,
 * else the first existing of the usual system bundle paths.  Cached. */
struct tls_trust *tls_trust_default(char *err, size_t cap);
size_t tls_trust_count(const struct tls_trust *t);
void tls_trust_free(struct tls_trust *t);

/* The origin record for host:port whose certificates are verified
 * against the bundle ca_file (NULL: tls_trust_default()).  Created on
 * first use and kept, with its session for resumption; trust sets are
 * cached by path.  NULL and a reason in err when the anchors cannot be
 * loaded. */
struct tls_origin *tls_origin_get(const char *host, unsigned port, const char *ca_file,
                                  char *err, size_t cap);
/* Drop cached trust sets and origins no connection uses (config reload:
 * a changed bundle is read again on next use). */
void tls_forget(void);

/* A TLS client transport over a connecting or connected non-blocking
 * socket (the fd becomes the transport's).  host drives SNI and the name
 * check.  NULL when out of memory (fd then closed). */
struct xport *xport_tls(int fd, const char *host, struct tls_origin *origin);

/* Whether the last handshake on x resumed a session. */
bool tls_resumed(struct xport *x);

void tls_shutdown(void);

#endif
