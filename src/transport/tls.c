/* tls: BearSSL client transport (see tls.h).
 *
 * One connection is one heap block: the xport header, BearSSL's client
 * and X.509 contexts and the record buffer.  BearSSL keeps pointers into
 * that block after br_ssl_client_reset(), so it is allocated once and
 * never moved.
 *
 * Every operation first "pumps": it moves records between the engine and
 * the socket in both directions until neither can progress without
 * waiting (EAGAIN), then answers from the engine state.  Nothing here
 * ever waits; events() tells the loop what the engine needs.
 *
 * Trust anchors are copied into memory owned by a tls_trust, which is
 * shared (reference counted) by the origins that verify against it; an
 * origin is shared by the connections to it and holds the session they
 * resume. */
#include "tls.h"

#include <arpa/inet.h>
#include <bearssl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "util.h"
#ifdef AUTOSWITCH_BUILTIN_CA
#include "ca_builtin.h"
#endif

/* Full duplex.  In half-duplex mode (BR_SSL_BUFSIZE_MONO) the one buffer
 * holds either outgoing or incoming records: while the tail of an upload
 * sits unsent in it, the engine cannot take in the upstream's early answer
 * (401, 413), and that upstream stops reading, so the unsent tail never
 * drains.  Request bodies go up to 32 MiB, so this case is real. */
#define TLS_IOBUF_SIZE BR_SSL_BUFSIZE_BIDI
#define TLS_SEED_BYTES 32        /* getrandom() bytes injected into each engine */
#define TLS_PUMP_ROUNDS 64       /* record moves per call: one busy peer cannot hold the loop */
#define TLS_CLOSE_SENDS 4        /* send() calls spent on close_notify when a connection is dropped */
#define TLS_HOST_MAX 255         /* BearSSL's server_name holds 255 characters and the NUL */
#define TLS_LEAF_MAX 16384       /* largest server certificate kept for the IP address check */
#define TRUST_FILE_MAX (16u << 20)  /* a "bundle" larger than this is a mistake */
#define TRUST_READ_CHUNK 4096

/* TLS record header: content type 20..23 (change_cipher_spec, alert,
 * handshake, application_data), then major version 3. */
#define REC_TYPE_FIRST 20
#define REC_TYPE_LAST 23
#define REC_MAJOR 3

/* DER tags used by the IP address check. */
#define DER_SEQUENCE 0x30
#define DER_OID 0x06
#define DER_BOOLEAN 0x01
#define DER_OCTET_STRING 0x04
#define DER_EXTENSIONS 0xa3      /* [3] EXPLICIT in TBSCertificate */
#define DER_SAN_IP 0x87          /* GeneralName iPAddress: [7] IMPLICIT OCTET STRING */

static const unsigned char OID_SAN[] = { 0x55, 0x1d, 0x11 };  /* 2.5.29.17 */

static const char *const system_bundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",  /* Debian, Ubuntu, Alpine, Arch */
    "/etc/pki/tls/certs/ca-bundle.crt",    /* Fedora, RHEL */
    "/etc/ssl/ca-bundle.pem",              /* openSUSE */
    "/etc/ssl/cert.pem",                   /* Alpine, macOS, BSDs */
};

/* ------------------------------------------------------------------ */
/* trust anchors                                                        */
/* ------------------------------------------------------------------ */

struct tls_trust {
    const br_x509_trust_anchor *ta;
    br_x509_trust_anchor *owned;   /* == ta unless compiled in */
    size_t n, cap;
    size_t skipped;                /* certificates that could not be used */
    unsigned refs;
    bool builtin;                  /* static data: never freed */
};

static struct tls_trust *trust_new(void)
{
    struct tls_trust *t = calloc(1, sizeof *t);
    if (t)
        t->refs = 1;
    return t;
}

/* One anchor: DN and key bytes copied into a single block, so the anchor
 * is freed with dn.data and owes nothing to the decoder's buffers. */
static int trust_add(struct tls_trust *t, const unsigned char *dn, size_t dn_len, const br_x509_pkey *pk)
{
    const unsigned char *k1, *k2 = NULL;
    size_t k1_len, k2_len = 0;
    if (pk->key_type == BR_KEYTYPE_RSA) {
        k1 = pk->key.rsa.n;
        k1_len = pk->key.rsa.nlen;
        k2 = pk->key.rsa.e;
        k2_len = pk->key.rsa.elen;
    } else if (pk->key_type == BR_KEYTYPE_EC) {
        k1 = pk->key.ec.q;
        k1_len = pk->key.ec.qlen;
    } else {
        t->skipped++;
        return 0;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        br_x509_trust_anchor *a = realloc(t->owned, cap * sizeof *a);
        if (!a)
            return -1;
        t->owned = a;
        t->ta = a;
        t->cap = cap;
    }
    unsigned char *block = malloc(dn_len + k1_len + k2_len + 1);
    if (!block)
        return -1;
    br_x509_trust_anchor *a = &t->owned[t->n];
    memset(a, 0, sizeof *a);
    if (dn_len)
        memcpy(block, dn, dn_len);
    a->dn.data = block;
    a->dn.len = dn_len;
    a->flags = BR_X509_TA_CA;
    a->pkey.key_type = pk->key_type;
    unsigned char *key = block + dn_len;
    memcpy(key, k1, k1_len);
    if (pk->key_type == BR_KEYTYPE_RSA) {
        memcpy(key + k1_len, k2, k2_len);
        a->pkey.key.rsa.n = key;
        a->pkey.key.rsa.nlen = k1_len;
        a->pkey.key.rsa.e = key + k1_len;
        a->pkey.key.rsa.elen = k2_len;
    } else {
        a->pkey.key.ec.curve = pk->key.ec.curve;
        a->pkey.key.ec.q = key;
        a->pkey.key.ec.qlen = k1_len;
    }
    t->n++;
    return 0;
}

static void trust_release(struct tls_trust *t)
{
    if (!t || t->builtin || --t->refs > 0)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->owned[i].dn.data);
    free(t->owned);
    free(t);
}

void tls_trust_free(struct tls_trust *t)
{
    trust_release(t);
}

size_t tls_trust_count(const struct tls_trust *t)
{
    return t ? t->n : 0;
}

/* The PEM -> X.509 decoding of a bundle, fed in chunks. */
struct pem_load {
    struct tls_trust *t;
    br_pem_decoder_context pem;
    br_x509_decoder_context x509;
    struct buf dn;          /* subject DN of the certificate being decoded */
    bool in_cert;           /* inside a CERTIFICATE object */
    bool oom;
    size_t certs;           /* CERTIFICATE objects seen */
};

static void dn_collect(void *ctx, const void *p, size_t n)
{
    struct pem_load *L = ctx;
    if (buf_append(&L->dn, p, n) < 0)
        L->oom = true;
}

static void der_to_x509(void *ctx, const void *p, size_t n)
{
    struct pem_load *L = ctx;
    /* Feed the decoder only while it still wants bytes: BearSSL 0.6 reads
     * through a NULL pointer when pushed to after it stopped (an error, or
     * bytes after a complete certificate - found by fuzzing).  "Truncated"
     * is its word for "not finished yet". */
    if (br_x509_decoder_last_error(&L->x509) == BR_ERR_X509_TRUNCATED)
        br_x509_decoder_push(&L->x509, p, n);
}

/* Whether a PEM object name is a certificate.  BearSSL 0.6 strips the
 * trailing dashes of a BEGIN line only when LF ends it: with CRLF they stay. */
static bool pem_is_cert(const char *name)
{
    size_t n = strlen(name);
    while (n > 0 && name[n - 1] == '-')
        n--;
    return mem_eq(name, n, "CERTIFICATE") || mem_eq(name, n, "X509 CERTIFICATE");
}

static void cert_begin(struct pem_load *L)
{
    L->in_cert = pem_is_cert(br_pem_decoder_name(&L->pem));
    if (!L->in_cert) {
        /* Keys, CRLs, "TRUSTED CERTIFICATE" (trailing OpenSSL data): not ours. */
        br_pem_decoder_setdest(&L->pem, NULL, NULL);
        return;
    }
    L->certs++;
    buf_clear(&L->dn);
    br_x509_decoder_init(&L->x509, dn_collect, L);
    br_pem_decoder_setdest(&L->pem, der_to_x509, L);
}

static void cert_end(struct pem_load *L)
{
    br_x509_pkey *pk = br_x509_decoder_get_pkey(&L->x509);
    /* Non-CA certificates would only be "direct trust" pins, which a CA
     * bundle does not mean to express; unknown key types (Ed25519, DSA)
     * and broken encodings cannot verify anything with BearSSL. */
    if (!pk || !br_x509_decoder_isCA(&L->x509)) {
        L->t->skipped++;
        return;
    }
    size_t dn_len = buf_len(&L->dn);
    if (trust_add(L->t, dn_len ? (const unsigned char *)buf_head(&L->dn) : NULL, dn_len, pk) < 0)
        L->oom = true;
}

static void pem_feed(struct pem_load *L, const char *p, size_t n)
{
    while (n > 0 && !L->oom) {
        size_t used = br_pem_decoder_push(&L->pem, p, n);
        p += used;
        n -= used;
        int ev = br_pem_decoder_event(&L->pem);
        if (ev == BR_PEM_BEGIN_OBJ) {
            cert_begin(L);
        } else if (ev == BR_PEM_END_OBJ) {
            if (L->in_cert)
                cert_end(L);
            L->in_cert = false;
        } else if (ev == BR_PEM_ERROR) {
            if (L->in_cert)
                L->t->skipped++;
            L->in_cert = false;
        } else if (used == 0) {
            break;  /* no progress and no event: cannot happen, but never spin */
        }
    }
}

static void pem_start(struct pem_load *L)
{
    memset(L, 0, sizeof *L);
    L->dn = (struct buf)BUF_INIT;
    br_pem_decoder_init(&L->pem);
}

/* Finish a bundle: the decoder acts on a line only at its newline, so a
 * file whose last line has none still ends its last object. */
static struct tls_trust *pem_finish(struct pem_load *L, const char *what, char *err, size_t cap)
{
    pem_feed(L, "\n", 1);
    if (L->in_cert)
        L->t->skipped++;  /* BEGIN without END */
    buf_free(&L->dn);
    struct tls_trust *t = L->t;
    L->t = NULL;
    if (L->oom) {
        snprintf(err, cap, "%s: out of memory", what);
    } else if (L->certs == 0) {
        snprintf(err, cap, "%s: no PEM certificate found", what);
    } else if (t->n == 0) {
        snprintf(err, cap, "%s: no usable CA certificate (%zu skipped)", what, t->skipped);
    } else {
        if (t->skipped)
            log_info("tls: %s: %zu trust anchors, %zu certificates skipped", what, t->n, t->skipped);
        else
            log_debug("tls: %s: %zu trust anchors", what, t->n);
        return t;
    }
    trust_release(t);
    return NULL;
}

struct tls_trust *tls_trust_load_mem(const char *pem, size_t len, char *err, size_t cap)
{
    struct pem_load L;
    pem_start(&L);
    if (!(L.t = trust_new())) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    pem_feed(&L, pem, len);
    return pem_finish(&L, "PEM data", err, cap);
}

struct tls_trust *tls_trust_load_file(const char *path, char *err, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        return NULL;
    }
    /* A FIFO or device would block the loop or never end. */
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)TRUST_FILE_MAX) {
        snprintf(err, cap, "%s: not a regular file of at most %u bytes", path, TRUST_FILE_MAX);
        close(fd);
        return NULL;
    }
    struct pem_load L;
    pem_start(&L);
    if (!(L.t = trust_new())) {
        close(fd);
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    char chunk[TRUST_READ_CHUNK];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, cap, "%s: %s", path, strerror(errno));
            close(fd);
            buf_free(&L.dn);
            trust_release(L.t);
            return NULL;
        }
        if (r == 0)
            break;
        pem_feed(&L, chunk, (size_t)r);
    }
    close(fd);
    return pem_finish(&L, path, err, cap);
}

/* ---- caches: default set, sets by path, origins ---- */

struct trust_entry {
    struct trust_entry *next;
    char *path;
    struct tls_trust *t;   /* one reference */
};

struct tls_origin {
    struct tls_origin *next;     /* in the lookup list, unless detached */
    char *host;
    unsigned port;
    char *ca_file;               /* NULL: the default set */
    struct tls_trust *trust;     /* one reference */
    br_ssl_session_parameters session;
    bool has_session;
    unsigned users;              /* live connections */
    bool detached;               /* forgotten: freed by its last connection */
};

static struct tls_trust *default_trust;   /* one reference */
static struct trust_entry *trust_cache;
static struct tls_origin *origins;

#ifdef AUTOSWITCH_BUILTIN_CA
static struct tls_trust builtin_trust;
#endif

/* The compiled-in set, when this build has a non-empty one. */
static struct tls_trust *builtin_default(void)
{
#ifdef AUTOSWITCH_BUILTIN_CA
    if (ca_builtin_count > 0) {
        builtin_trust.ta = ca_builtin_anchors;
        builtin_trust.n = ca_builtin_count;
        builtin_trust.refs = 1;
        builtin_trust.builtin = true;
        return &builtin_trust;
    }
#endif
    return NULL;
}

struct tls_trust *tls_trust_default(char *err, size_t cap)
{
    if (default_trust)
        return default_trust;
    if ((default_trust = builtin_default()))
        return default_trust;
    for (size_t i = 0; i < ARRAY_LEN(system_bundles); i++) {
        struct stat st;
        if (stat(system_bundles[i], &st) == 0) {
            default_trust = tls_trust_load_file(system_bundles[i], err, cap);
            return default_trust;
        }
    }
    snprintf(err, cap, "no CA bundle found (looked for %s, %s, %s, %s)", system_bundles[0],
             system_bundles[1], system_bundles[2], system_bundles[3]);
    return NULL;
}

static struct tls_trust *trust_for_file(const char *path, char *err, size_t cap)
{
    for (struct trust_entry *e = trust_cache; e; e = e->next)
        if (strcmp(e->path, path) == 0)
            return e->t;
    struct trust_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->path = strdup(path))) {
        free(e);
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    if (!(e->t = tls_trust_load_file(path, err, cap))) {
        free(e->path);
        free(e);
        return NULL;
    }
    e->next = trust_cache;
    trust_cache = e;
    return e->t;
}

static bool same_ca_file(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

struct tls_origin *tls_origin_get(const char *host, unsigned port, const char *ca_file,
                                  char *err, size_t cap)
{
    if (ca_file && !ca_file[0])
        ca_file = NULL;
    for (struct tls_origin *o = origins; o; o = o->next)
        if (o->port == port && strcasecmp(o->host, host) == 0 && same_ca_file(o->ca_file, ca_file))
            return o;
    struct tls_trust *t = ca_file ? trust_for_file(ca_file, err, cap) : tls_trust_default(err, cap);
    if (!t)
        return NULL;
    struct tls_origin *o = calloc(1, sizeof *o);
    if (!o || !(o->host = strdup(host)) || (ca_file && !(o->ca_file = strdup(ca_file)))) {
        if (o)
            free(o->host);
        free(o);
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    o->port = port;
    o->trust = t;
    if (!t->builtin)
        t->refs++;
    o->next = origins;
    origins = o;
    return o;
}

static void origin_free(struct tls_origin *o)
{
    trust_release(o->trust);
    free(o->host);
    free(o->ca_file);
    explicit_bzero(&o->session, sizeof o->session);  /* holds a master secret */
    free(o);
}

void tls_forget(void)
{
    while (trust_cache) {
        struct trust_entry *e = trust_cache;
        trust_cache = e->next;
        trust_release(e->t);
        free(e->path);
        free(e);
    }
    trust_release(default_trust);
    default_trust = NULL;
    /* Origins in use keep their trust set alive until their last
     * connection ends; new connections get fresh origins. */
    while (origins) {
        struct tls_origin *o = origins;
        origins = o->next;
        o->next = NULL;
        if (o->users == 0)
            origin_free(o);
        else
            o->detached = true;
    }
}

void tls_shutdown(void)
{
    tls_forget();
}

/* ------------------------------------------------------------------ */
/* host name check for IP address literals                              */
/* ------------------------------------------------------------------ */

/* BearSSL sends whatever name it is given as SNI and matches it against
 * dNSName entries only.  RFC 6066 forbids an address in SNI, so for an IP
 * host the engine gets no name (no SNI, no name check of its own) and
 * this wrapper around the minimal X.509 engine requires the address in an
 * iPAddress entry of the server certificate's subjectAltName instead. */
struct ip_check {
    const br_x509_class *vtable;   /* first: BearSSL passes &vtable around */
    const br_x509_class **inner;
    unsigned char addr[16];
    size_t addr_len;
    unsigned char *leaf;           /* the end-entity certificate, DER */
    size_t leaf_len, leaf_want;
    unsigned certs;
    bool leaf_bad;
};

static struct ip_check *ipc_of(const br_x509_class **ctx)
{
    return (struct ip_check *)(void *)ctx;
}

/* One DER element at *p (single-byte tags, definite lengths).  On success
 * *val and *len are its contents and *p moves past it. */
static bool der_next(const unsigned char **p, const unsigned char *end, unsigned *tag,
                     const unsigned char **val, size_t *len)
{
    const unsigned char *q = *p;
    if (end - q < 2 || (q[0] & 0x1f) == 0x1f)
        return false;
    unsigned t = q[0];
    size_t l = q[1];
    q += 2;
    if (l & 0x80) {
        size_t nb = l & 0x7f;
        if (nb == 0 || nb > 3 || (size_t)(end - q) < nb)
            return false;
        l = 0;
        while (nb--)
            l = (l << 8) | *q++;
    }
    if ((size_t)(end - q) < l)
        return false;
    *tag = t;
    *val = q;
    *len = l;
    *p = q + l;
    return true;
}

/* Enter the element at *p if it has the given tag: [*p, *end) becomes its contents. */
static bool der_enter(const unsigned char **p, const unsigned char **end, unsigned want)
{
    unsigned tag;
    const unsigned char *v;
    size_t l;
    if (!der_next(p, *end, &tag, &v, &l) || tag != want)
        return false;
    *p = v;
    *end = v + l;
    return true;
}

/* Whether the subjectAltName extension value (GeneralNames) lists addr. */
static bool san_has_ip(const unsigned char *p, const unsigned char *end, const unsigned char *addr, size_t alen)
{
    if (!der_enter(&p, &end, DER_SEQUENCE))
        return false;
    while (p < end) {
        unsigned tag;
        const unsigned char *v;
        size_t l;
        if (!der_next(&p, end, &tag, &v, &l))
            return false;
        if (tag == DER_SAN_IP && l == alen && memcmp(v, addr, alen) == 0)
            return true;
    }
    return false;
}

static bool cert_has_ip(const unsigned char *der, size_t len, const unsigned char *addr, size_t alen)
{
    const unsigned char *p = der, *end = der + len;
    if (!der_enter(&p, &end, DER_SEQUENCE) || !der_enter(&p, &end, DER_SEQUENCE))
        return false;  /* Certificate, then TBSCertificate */
    unsigned tag;
    const unsigned char *v;
    size_t l;
    do {  /* version, serial, ..., subjectPublicKeyInfo, then [3] extensions */
        if (!der_next(&p, end, &tag, &v, &l))
            return false;
    } while (tag != DER_EXTENSIONS);
    p = v;
    end = v + l;
    if (!der_enter(&p, &end, DER_SEQUENCE))
        return false;
    while (p < end) {
        const unsigned char *ext, *ext_end;
        if (!der_next(&p, end, &tag, &ext, &l) || tag != DER_SEQUENCE)
            return false;
        ext_end = ext + l;
        if (!der_next(&ext, ext_end, &tag, &v, &l) || tag != DER_OID)
            return false;
        if (l != sizeof OID_SAN || memcmp(v, OID_SAN, l) != 0)
            continue;
        if (!der_next(&ext, ext_end, &tag, &v, &l))
            return false;
        if (tag == DER_BOOLEAN && !der_next(&ext, ext_end, &tag, &v, &l))
            return false;  /* "critical" */
        return tag == DER_OCTET_STRING && san_has_ip(v, v + l, addr, alen);
    }
    return false;
}

static void ipc_drop_leaf(struct ip_check *c)
{
    free(c->leaf);
    c->leaf = NULL;
    c->leaf_len = c->leaf_want = 0;
}

static void ipc_start_chain(const br_x509_class **ctx, const char *server_name)
{
    struct ip_check *c = ipc_of(ctx);
    ipc_drop_leaf(c);
    c->certs = 0;
    c->leaf_bad = false;
    (*c->inner)->start_chain(c->inner, server_name);
}

static void ipc_start_cert(const br_x509_class **ctx, uint32_t length)
{
    struct ip_check *c = ipc_of(ctx);
    if (c->certs++ == 0) {
        if (length == 0 || length > TLS_LEAF_MAX || !(c->leaf = malloc(length)))
            c->leaf_bad = true;
        else
            c->leaf_want = length;
    }
    (*c->inner)->start_cert(c->inner, length);
}

static void ipc_append(const br_x509_class **ctx, const unsigned char *p, size_t len)
{
    struct ip_check *c = ipc_of(ctx);
    if (c->certs == 1 && c->leaf && !c->leaf_bad) {
        if (len > c->leaf_want - c->leaf_len) {
            c->leaf_bad = true;
        } else {
            memcpy(c->leaf + c->leaf_len, p, len);
            c->leaf_len += len;
        }
    }
    (*c->inner)->append(c->inner, p, len);
}

static void ipc_end_cert(const br_x509_class **ctx)
{
    struct ip_check *c = ipc_of(ctx);
    (*c->inner)->end_cert(c->inner);
}

static unsigned ipc_end_chain(const br_x509_class **ctx)
{
    struct ip_check *c = ipc_of(ctx);
    unsigned r = (*c->inner)->end_chain(c->inner);
    if (r == 0 || r == BR_ERR_X509_OK) {
        bool ok = !c->leaf_bad && c->leaf && c->leaf_len == c->leaf_want &&
                  cert_has_ip(c->leaf, c->leaf_len, c->addr, c->addr_len);
        r = ok ? 0 : BR_ERR_X509_BAD_SERVER_NAME;
    }
    ipc_drop_leaf(c);
    return r;
}

static const br_x509_pkey *ipc_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
    const struct ip_check *c = (const struct ip_check *)(const void *)ctx;
    return (*c->inner)->get_pkey(c->inner, usages);
}

static const br_x509_class ip_check_vtable = {
    sizeof(struct ip_check), ipc_start_chain, ipc_start_cert, ipc_append,
    ipc_end_cert, ipc_end_chain, ipc_get_pkey,
};

/* Whether host is an IPv4 or IPv6 literal ("[::1]" and a "%zone" allowed);
 * the address bytes go to addr. */
static bool ip_literal(const char *host, unsigned char addr[16], size_t *alen)
{
    char tmp[INET6_ADDRSTRLEN + 1];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n >= sizeof tmp)
        return false;
    memcpy(tmp, host, n);
    tmp[n] = '\0';
    char *zone = strchr(tmp, '%');
    if (zone)
        *zone = '\0';
    if (inet_pton(AF_INET, tmp, addr) == 1) {
        *alen = 4;
        return true;
    }
    if (inet_pton(AF_INET6, tmp, addr) == 1) {
        *alen = 16;
        return true;
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* the transport                                                        */
/* ------------------------------------------------------------------ */

struct tls_conn {
    struct xport x;                /* first: an xport pointer is a tls_conn pointer */
    struct tls_origin *origin;
    br_ssl_client_context cc;
    br_x509_minimal_context xc;
    struct ip_check ipc;           /* in use for IP literal hosts only */
    br_ssl_session_parameters offered;  /* what we tried to resume */
    bool offered_session;
    bool hs_done;                  /* SENDAPP has appeared once */
    bool resumed;
    bool clean_close;            /* close_notify arrived */
    bool eof;                      /* recv() returned 0 */
    bool session_dropped;
    int recv_errno, send_errno;    /* first socket failure in each direction */
    int last_errno;                /* the most recent of them */
    unsigned char head[2];         /* first bytes received: a TLS record header? */
    size_t nhead;
    char local_err[64];            /* a failure before any I/O */
    char err[96];
    unsigned char iobuf[TLS_IOBUF_SIZE];
};

static const struct xport_ops tls_ops;

static br_ssl_engine_context *eng(struct tls_conn *t)
{
    return &t->cc.eng;
}

/* Whether the peer's first bytes cannot start a TLS record. */
static bool peer_not_tls(const struct tls_conn *t)
{
    if (t->nhead >= 1 && (t->head[0] < REC_TYPE_FIRST || t->head[0] > REC_TYPE_LAST))
        return true;
    return t->nhead >= 2 && t->head[1] != REC_MAJOR;
}

static void note_socket_error(struct tls_conn *t, int *slot, int e)
{
    if (!*slot)
        *slot = e;
    t->last_errno = e;
}

/* The first appearance of SENDAPP ends the initial handshake: keep its
 * session for the next connection to this origin. */
static void handshake_done(struct tls_conn *t)
{
    br_ssl_session_parameters now;
    t->hs_done = true;
    br_ssl_engine_get_session_parameters(eng(t), &now);
    /* A resumed session keeps its id and master secret; a full handshake
     * makes a new master secret even if a server reused the id. */
    t->resumed = t->offered_session && now.session_id_len == t->offered.session_id_len &&
                 memcmp(now.session_id, t->offered.session_id, now.session_id_len) == 0 &&
                 memcmp(now.master_secret, t->offered.master_secret, sizeof now.master_secret) == 0;
    struct tls_origin *o = t->origin;
    o->session = now;
    o->has_session = now.session_id_len > 0;
    explicit_bzero(&now, sizeof now);
}

/* A handshake that failed while resuming: do not offer that session again
 * (unless another connection has stored a newer one meanwhile). */
static void handshake_failed(struct tls_conn *t)
{
    struct tls_origin *o = t->origin;
    t->session_dropped = true;
    if (t->offered_session && o->has_session && o->session.session_id_len == t->offered.session_id_len &&
        memcmp(o->session.session_id, t->offered.session_id, t->offered.session_id_len) == 0)
        o->has_session = false;
}

static bool send_some(struct tls_conn *t)
{
    size_t len;
    unsigned char *b = br_ssl_engine_sendrec_buf(eng(t), &len);
    ssize_t r = send(t->x.fd, b, len, MSG_NOSIGNAL);
    if (r > 0) {
        br_ssl_engine_sendrec_ack(eng(t), (size_t)r);
        return true;
    }
    if (r < 0 && errno == EINTR)
        return true;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return false;
    note_socket_error(t, &t->send_errno, r < 0 ? errno : EPIPE);
    return false;
}

static bool recv_some(struct tls_conn *t)
{
    size_t len;
    unsigned char *b = br_ssl_engine_recvrec_buf(eng(t), &len);
    ssize_t r = recv(t->x.fd, b, len, 0);
    if (r > 0) {
        for (size_t i = 0; t->nhead < sizeof t->head && i < (size_t)r; i++)
            t->head[t->nhead++] = b[i];
        br_ssl_engine_recvrec_ack(eng(t), (size_t)r);
        return true;
    }
    if (r == 0) {
        t->eof = true;
        return false;
    }
    if (errno == EINTR)
        return true;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        note_socket_error(t, &t->recv_errno, errno);
    return false;
}

/* Move records both ways until neither direction can go on without
 * waiting (or the round budget is spent: poll() is level-triggered, so
 * what is left is picked up on the next wake). */
static void pump(struct tls_conn *t)
{
    if (t->local_err[0])
        return;
    for (int round = 0; round < TLS_PUMP_ROUNDS; round++) {
        unsigned st = br_ssl_engine_current_state(eng(t));
        if (st & BR_SSL_CLOSED)
            break;
        if (!t->hs_done && (st & BR_SSL_SENDAPP))
            handshake_done(t);
        bool moved = false;
        if ((st & BR_SSL_SENDREC) && !t->send_errno)
            moved |= send_some(t);
        st = br_ssl_engine_current_state(eng(t));
        if ((st & BR_SSL_RECVREC) && !t->eof && !t->recv_errno)
            moved |= recv_some(t);
        if (!moved)
            break;
    }
    unsigned st = br_ssl_engine_current_state(eng(t));
    if (!t->hs_done && (st & BR_SSL_SENDAPP))
        handshake_done(t);
    if (!t->hs_done && !t->session_dropped && (st & BR_SSL_CLOSED) && br_ssl_engine_last_error(eng(t)))
        handshake_failed(t);
}

/* Whether records can still come in / go out once the socket is ready. */
static bool can_recv(const struct tls_conn *t, unsigned st)
{
    return (st & BR_SSL_RECVREC) && !t->eof && !t->recv_errno;
}

static bool can_send(const struct tls_conn *t, unsigned st)
{
    return (st & BR_SSL_SENDREC) && !t->send_errno;
}

enum rstate { R_WAIT, R_DATA, R_EOF, R_FAIL };

/* What read() would report right now without touching the socket.
 * buffered() is "not R_WAIT", so the two can never disagree. */
static enum rstate read_state(struct tls_conn *t)
{
    if (t->local_err[0])
        return R_FAIL;
    unsigned st = br_ssl_engine_current_state(eng(t));
    if (st & BR_SSL_CLOSED) {
        if (br_ssl_engine_last_error(eng(t)) != BR_ERR_OK)
            return R_FAIL;
        t->clean_close = true;   /* the peer's close_notify */
        return R_EOF;
    }
    if (st & BR_SSL_RECVAPP)
        return R_DATA;
    if (t->recv_errno)
        return R_FAIL;
    /* Many servers skip close_notify: after the handshake a TCP end is an
     * orderly end, and HTTP framing judges whether the body was whole. */
    if (t->eof)
        return t->hs_done ? R_EOF : R_FAIL;
    if (!t->hs_done && t->send_errno)
        return R_FAIL;  /* the handshake cannot finish */
    /* Nothing can ever arrive: e.g. the peer's close_notify came and ours
     * cannot be sent.  After the handshake that is an end like any other. */
    if (!can_recv(t, st) && !can_send(t, st))
        return t->hs_done ? R_EOF : R_FAIL;
    return R_WAIT;
}

static int fail_errno(const struct tls_conn *t)
{
    unsigned st = br_ssl_engine_current_state(&t->cc.eng);
    if (t->local_err[0] || ((st & BR_SSL_CLOSED) && br_ssl_engine_last_error(&t->cc.eng)))
        return EPROTO;
    if (t->last_errno)
        return t->last_errno;
    return (st & BR_SSL_CLOSED) ? EPIPE : ECONNRESET;
}

static ssize_t tls_read(struct xport *x, void *p, size_t n)
{
    struct tls_conn *t = (struct tls_conn *)x;
    unsigned char *out = p;
    size_t got = 0;
    pump(t);
    while (got < n && !t->local_err[0]) {
        size_t len;
        unsigned char *b = br_ssl_engine_recvapp_buf(eng(t), &len);
        if (!b)
            break;
        if (len > n - got)
            len = n - got;
        memcpy(out + got, b, len);
        br_ssl_engine_recvapp_ack(eng(t), len);
        got += len;
        pump(t);  /* the input buffer is free again: take the next record */
    }
    if (got > 0)
        return (ssize_t)got;
    switch (read_state(t)) {
    case R_EOF:
        return 0;
    case R_FAIL:
        errno = fail_errno(t);
        return -1;
    default:
        errno = EAGAIN;
        return -1;
    }
}

/* Whether write() can never accept more data. */
static bool write_dead(struct tls_conn *t)
{
    if (t->local_err[0])
        return true;
    unsigned st = br_ssl_engine_current_state(eng(t));
    if ((st & BR_SSL_CLOSED) || t->send_errno)
        return true;
    if (!t->hs_done && (t->eof || t->recv_errno))
        return true;
    return !(st & BR_SSL_SENDAPP) && !can_send(t, st) && !can_recv(t, st);
}

static ssize_t tls_write(struct xport *x, const void *p, size_t n)
{
    struct tls_conn *t = (struct tls_conn *)x;
    const unsigned char *in = p;
    size_t put = 0;
    pump(t);
    while (put < n && !t->local_err[0]) {
        size_t len;
        unsigned char *b = br_ssl_engine_sendapp_buf(eng(t), &len);
        if (!b)
            break;
        if (len > n - put)
            len = n - put;
        memcpy(b, in + put, len);
        br_ssl_engine_sendapp_ack(eng(t), len);  /* a full record is sealed here */
        put += len;
        pump(t);
    }
    if (put > 0)
        return (ssize_t)put;
    errno = write_dead(t) ? fail_errno(t) : EAGAIN;
    return -1;
}

static int tls_flush(struct xport *x)
{
    struct tls_conn *t = (struct tls_conn *)x;
    pump(t);
    if (t->hs_done && !t->local_err[0])
        br_ssl_engine_flush(eng(t), 0);  /* seal the partial record; no-op when none */
    pump(t);
    if (write_dead(t)) {
        errno = fail_errno(t);
        return -1;
    }
    unsigned st = br_ssl_engine_current_state(eng(t));
    if (!t->hs_done || (st & BR_SSL_SENDREC)) {
        errno = EAGAIN;
        return -1;
    }
    return 0;
}

static short tls_events(struct xport *x, short want)
{
    struct tls_conn *t = (struct tls_conn *)x;
    pump(t);
    enum rstate rs = read_state(t);
    if (rs == R_FAIL || rs == R_EOF)
        return want;  /* buffered() is true: the caller learns it without waiting */
    unsigned st = br_ssl_engine_current_state(eng(t));
    short ev = 0;
    if (can_send(t, st))
        ev |= POLLOUT;
    /* Input is needed for the handshake, for the caller's read, or when
     * the engine takes no data to send until the peer has spoken. */
    if (can_recv(t, st) && (!t->hs_done || (want & POLLIN) || ((want & POLLOUT) && !(st & BR_SSL_SENDAPP))))
        ev |= POLLIN;
    if ((want & POLLOUT) && (st & BR_SSL_SENDAPP))
        ev |= POLLOUT;
    return ev;
}

static bool tls_buffered(struct xport *x)
{
    struct tls_conn *t = (struct tls_conn *)x;
    return read_state(t) != R_WAIT;
}

static void lower_first(char *s)
{
    if (s[0] >= 'A' && s[0] <= 'Z')
        s[0] = (char)(s[0] - 'A' + 'a');
}

static const char *cert_reason(int err)
{
    switch (err) {
    case BR_ERR_X509_NOT_TRUSTED:
    case BR_ERR_X509_DN_MISMATCH:
        return "";
    case BR_ERR_X509_NOT_CA:
        return " (an issuer is not a CA)";
    case BR_ERR_X509_BAD_SIGNATURE:
        return " (bad signature in the chain)";
    case BR_ERR_X509_WEAK_PUBLIC_KEY:
        return " (key too weak)";
    case BR_ERR_X509_FORBIDDEN_KEY_USAGE:
        return " (key usage forbids TLS)";
    case BR_ERR_X509_CRITICAL_EXTENSION:
        return " (unknown critical extension)";
    case BR_ERR_X509_EMPTY_CHAIN:
        return " (no certificate sent)";
    case BR_ERR_X509_TIME_UNKNOWN:
        return " (no clock to check validity)";
    default:
        return NULL;
    }
}

static bool record_layer_error(int err)
{
    return err == BR_ERR_BAD_LENGTH || err == BR_ERR_BAD_VERSION || err == BR_ERR_UNKNOWN_TYPE ||
           err == BR_ERR_TOO_LARGE;
}

static void describe_engine_error(struct tls_conn *t, int err)
{
    const char *why;
    if (err >= BR_ERR_RECV_FATAL_ALERT && err < BR_ERR_SEND_FATAL_ALERT)
        snprintf(t->err, sizeof t->err, "tls: alert %d", err - BR_ERR_RECV_FATAL_ALERT);
    else if (err == BR_ERR_X509_BAD_SERVER_NAME)
        snprintf(t->err, sizeof t->err, "tls: host name mismatch");
    else if (err == BR_ERR_X509_EXPIRED)
        snprintf(t->err, sizeof t->err, "tls: certificate expired");
    else if ((why = cert_reason(err)))
        snprintf(t->err, sizeof t->err, "tls: certificate not trusted%s", why);
    else if (!t->hs_done && (peer_not_tls(t) || record_layer_error(err)))
        snprintf(t->err, sizeof t->err, "tls: not a TLS server");
    else if (!t->hs_done && err == BR_ERR_UNSUPPORTED_VERSION)
        snprintf(t->err, sizeof t->err, "tls: server does not speak TLS 1.2");
    else if (!t->hs_done)
        snprintf(t->err, sizeof t->err, "tls: handshake failed (BearSSL error %d)", err);
    else
        snprintf(t->err, sizeof t->err, "tls: protocol error (BearSSL error %d)", err);
}

static const char *tls_error(struct xport *x)
{
    struct tls_conn *t = (struct tls_conn *)x;
    if (t->local_err[0])
        return t->local_err;
    unsigned st = br_ssl_engine_current_state(eng(t));
    int err = br_ssl_engine_last_error(eng(t));
    if ((st & BR_SSL_CLOSED) && err) {
        describe_engine_error(t, err);
    } else if (!t->hs_done && peer_not_tls(t)) {
        /* e.g. a plain HTTP server that answered and closed at once */
        snprintf(t->err, sizeof t->err, "tls: not a TLS server");
    } else if (t->last_errno) {
        strerror_r(t->last_errno, t->err, sizeof t->err);
        lower_first(t->err);
    } else if (!t->hs_done && t->eof) {
        snprintf(t->err, sizeof t->err, "tls: connection closed during handshake");
    } else {
        snprintf(t->err, sizeof t->err, "connection closed");
    }
    return t->err;
}

/* A TCP end without close_notify may be an attacker cutting the answer
 * (RFC 5246 7.2.1): the client judges, by how the body is framed. */
static unsigned tls_state(struct xport *x)
{
    struct tls_conn *t = (struct tls_conn *)x;
    return (t->hs_done ? XPORT_ESTABLISHED : 0) | (t->clean_close ? XPORT_CLEAN_END : 0);
}

static bool tls_resumed_op(struct xport *x)
{
    return ((struct tls_conn *)x)->resumed;
}

bool tls_resumed(struct xport *x)
{
    return x && x->ops == &tls_ops && tls_resumed_op(x);
}

/* Say goodbye if it costs no wait: queue close_notify and give it a few
 * non-blocking sends; servers do not depend on it. */
static void send_close_notify(struct tls_conn *t)
{
    unsigned st = br_ssl_engine_current_state(eng(t));
    if (t->local_err[0] || !t->hs_done || (st & BR_SSL_CLOSED) || t->send_errno)
        return;
    br_ssl_engine_close(eng(t));
    for (int i = 0; i < TLS_CLOSE_SENDS; i++) {
        st = br_ssl_engine_current_state(eng(t));
        if (!(st & BR_SSL_SENDREC) || t->send_errno || !send_some(t))
            break;
    }
}

static void tls_free(struct xport *x)
{
    struct tls_conn *t = (struct tls_conn *)x;
    send_close_notify(t);
    close(t->x.fd);
    ipc_drop_leaf(&t->ipc);
    struct tls_origin *o = t->origin;
    if (--o->users == 0 && o->detached)
        origin_free(o);
    /* Keys, the offered master secret, plaintext left in the buffer. */
    explicit_bzero(t, sizeof *t);
    free(t);
}

static const struct xport_ops tls_ops = {
    tls_read, tls_write, tls_flush, tls_events, tls_buffered, tls_error, tls_resumed_op, tls_state, tls_free,
};

/* Configure the engine and start the handshake (the ClientHello waits in
 * the engine until the first pump).  Failures land in local_err or in the
 * engine's error, both reported through the xport. */
static void tls_start(struct tls_conn *t, const char *host)
{
    struct tls_origin *o = t->origin;
    br_ssl_client_init_full(&t->cc, &t->xc, o->trust->ta, o->trust->n);
    br_ssl_engine_set_versions(eng(t), BR_TLS12, BR_TLS12);
    /* A server-initiated renegotiation could swap the certificate after we
     * verified it; HTTP/1.1 upstreams have no use for it. */
    br_ssl_engine_add_flags(eng(t), BR_OPT_NO_RENEGOTIATION);
    br_ssl_engine_set_buffer(eng(t), t->iobuf, sizeof t->iobuf, 1);

    /* BearSSL's own seeder finds getentropy() only on glibc builds. */
    unsigned char seed[TLS_SEED_BYTES];
    if (random_bytes(seed, sizeof seed) < 0) {
        snprintf(t->local_err, sizeof t->local_err, "tls: no entropy (getrandom failed)");
        return;
    }
    br_ssl_engine_inject_entropy(eng(t), seed, sizeof seed);
    explicit_bzero(seed, sizeof seed);

    const char *sni = host;
    if (ip_literal(host, t->ipc.addr, &t->ipc.addr_len)) {
        t->ipc.vtable = &ip_check_vtable;
        t->ipc.inner = &t->xc.vtable;
        br_ssl_engine_set_x509(eng(t), &t->ipc.vtable);
        sni = NULL;
    } else if (strlen(host) > TLS_HOST_MAX) {
        snprintf(t->local_err, sizeof t->local_err, "tls: host name too long");
        return;
    }
    int resume = 0;
    if (o->has_session) {
        t->offered = o->session;
        t->offered_session = true;
        br_ssl_engine_set_session_parameters(eng(t), &o->session);
        resume = 1;
    }
    br_ssl_client_reset(&t->cc, sni, resume);  /* 0: the engine holds the error */
}

struct xport *xport_tls(int fd, const char *host, struct tls_origin *origin)
{
    struct tls_conn *t = calloc(1, sizeof *t);
    if (!t) {
        close(fd);
        return NULL;
    }
    t->x.ops = &tls_ops;
    t->x.fd = fd;
    t->origin = origin;
    origin->users++;
    tls_start(t, host);
    return &t->x;
}
