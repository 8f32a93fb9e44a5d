/* gen_ca: turn a PEM CA bundle into ca_builtin.c (see src/ca_builtin.h).
 *
 * A build-time tool, run on the build host (it links the host's BearSSL):
 *     gen_ca BUNDLE.pem OUT.c
 * Each certificate is decoded here, once, and written out as its subject
 * DN, key type and key bytes, flagged as a CA anchor; the binary then
 * uses the table as it is.  The selection rules are those of tls.c: CA
 * certificates with an RSA or EC key; others are skipped and counted.
 * OUT.c is written to a temporary name and renamed, so a failed run never
 * leaves a half file that make would take as up to date.  Exit status 1
 * when the bundle cannot be read or yields no anchor. */
#include <bearssl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_CHUNK 4096
#define BYTES_PER_LINE 12
#define DN_MAX 4096        /* no real CA subject comes close */

struct gen {
    FILE *out;
    br_pem_decoder_context pem;
    br_x509_decoder_context x509;
    unsigned char dn[DN_MAX];
    size_t dn_len;
    bool dn_overflow;
    bool in_cert;
    size_t certs, anchors, skipped;
    unsigned char *types;  /* key type of each anchor written */
    int *curves;
    size_t cap;
    bool failed;
};

static void dn_collect(void *ctx, const void *p, size_t n)
{
    struct gen *g = ctx;
    if (n > sizeof g->dn - g->dn_len) {
        g->dn_overflow = true;
        return;
    }
    memcpy(g->dn + g->dn_len, p, n);
    g->dn_len += n;
}

static void der_to_x509(void *ctx, const void *p, size_t n)
{
    struct gen *g = ctx;
    br_x509_decoder_push(&g->x509, p, n);
}

static void emit_array(struct gen *g, const char *name, size_t idx, const unsigned char *p, size_t n)
{
    fprintf(g->out, "static const unsigned char %s%zu[%zu] = {", name, idx, n);
    for (size_t i = 0; i < n; i++)
        fprintf(g->out, "%s0x%02x,", i % BYTES_PER_LINE ? " " : "\n    ", p[i]);
    fprintf(g->out, "\n};\n");
}

static void cert_end(struct gen *g)
{
    const br_x509_pkey *pk = br_x509_decoder_get_pkey(&g->x509);
    if (!pk || !br_x509_decoder_isCA(&g->x509) || g->dn_overflow ||
        (pk->key_type != BR_KEYTYPE_RSA && pk->key_type != BR_KEYTYPE_EC)) {
        g->skipped++;
        return;
    }
    if (g->anchors == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        unsigned char *t = realloc(g->types, cap);
        if (t)
            g->types = t;
        int *c = realloc(g->curves, cap * sizeof *c);
        if (c)
            g->curves = c;
        if (!t || !c) {
            g->failed = true;
            return;
        }
        g->cap = cap;
    }
    size_t i = g->anchors++;
    fprintf(g->out, "\n/* anchor %zu */\n", i);
    emit_array(g, "dn", i, g->dn, g->dn_len);
    g->types[i] = pk->key_type;
    if (pk->key_type == BR_KEYTYPE_RSA) {
        emit_array(g, "rsa_n", i, pk->key.rsa.n, pk->key.rsa.nlen);
        emit_array(g, "rsa_e", i, pk->key.rsa.e, pk->key.rsa.elen);
    } else {
        g->curves[i] = pk->key.ec.curve;
        emit_array(g, "ec_q", i, pk->key.ec.q, pk->key.ec.qlen);
    }
}

/* BearSSL 0.6 keeps the trailing dashes of a CRLF-ended BEGIN line. */
static bool pem_is_cert(const char *name)
{
    size_t n = strlen(name);
    while (n > 0 && name[n - 1] == '-')
        n--;
    static const char *const names[] = { "CERTIFICATE", "X509 CERTIFICATE" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && memcmp(name, names[i], n) == 0)
            return true;
    return false;
}

static void feed(struct gen *g, const char *p, size_t n)
{
    while (n > 0 && !g->failed) {
        size_t used = br_pem_decoder_push(&g->pem, p, n);
        p += used;
        n -= used;
        int ev = br_pem_decoder_event(&g->pem);
        if (ev == BR_PEM_BEGIN_OBJ) {
            g->in_cert = pem_is_cert(br_pem_decoder_name(&g->pem));
            if (g->in_cert) {
                g->certs++;
                g->dn_len = 0;
                g->dn_overflow = false;
                br_x509_decoder_init(&g->x509, dn_collect, g);
                br_pem_decoder_setdest(&g->pem, der_to_x509, g);
            } else {
                br_pem_decoder_setdest(&g->pem, NULL, NULL);
            }
        } else if (ev == BR_PEM_END_OBJ) {
            if (g->in_cert)
                cert_end(g);
            g->in_cert = false;
        } else if (ev == BR_PEM_ERROR) {
            if (g->in_cert)
                g->skipped++;
            g->in_cert = false;
        } else if (used == 0) {
            break;
        }
    }
}

static void emit_table(struct gen *g)
{
    fprintf(g->out, "\nconst br_x509_trust_anchor ca_builtin_anchors[] = {\n");
    for (size_t i = 0; i < g->anchors; i++) {
        fprintf(g->out, "    { { (unsigned char *)dn%zu, sizeof dn%zu }, BR_X509_TA_CA,\n", i, i);
        if (g->types[i] == BR_KEYTYPE_RSA)
            fprintf(g->out,
                    "      { BR_KEYTYPE_RSA, { .rsa = { (unsigned char *)rsa_n%zu, sizeof rsa_n%zu,"
                    " (unsigned char *)rsa_e%zu, sizeof rsa_e%zu } } } },\n",
                    i, i, i, i);
        else
            fprintf(g->out,
                    "      { BR_KEYTYPE_EC, { .ec = { %d, (unsigned char *)ec_q%zu, sizeof ec_q%zu } } } },\n",
                    g->curves[i], i, i);
    }
    fprintf(g->out, "};\n\nconst size_t ca_builtin_count = %zu;\n", g->anchors);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: gen_ca BUNDLE.pem OUT.c\n");
        return 2;
    }
    const char *in_path = argv[1], *out_path = argv[2];
    FILE *in = fopen(in_path, "rb");
    if (!in) {
        fprintf(stderr, "gen_ca: %s: %s\n", in_path, strerror(errno));
        return 1;
    }
    size_t tlen = strlen(out_path) + sizeof ".tmp";
    char *tmp = malloc(tlen);
    static struct gen g;
    if (!tmp) {
        fprintf(stderr, "gen_ca: out of memory\n");
        return 1;
    }
    snprintf(tmp, tlen, "%s.tmp", out_path);
    if (!(g.out = fopen(tmp, "w"))) {
        fprintf(stderr, "gen_ca: %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    fprintf(g.out, "/* Generated by scripts/gen_ca from %s - do not edit.\n"
                   " * Pre-decoded CA trust anchors; see src/ca_builtin.h. */\n"
                   "#include \"ca_builtin.h\"\n",
            in_path);
    br_pem_decoder_init(&g.pem);
    char chunk[READ_CHUNK];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, in)) > 0)
        feed(&g, chunk, n);
    bool read_err = ferror(in);
    fclose(in);
    feed(&g, "\n", 1);  /* the decoder acts on a line at its newline */
    if (g.in_cert)
        g.skipped++;
    emit_table(&g);
    bool write_err = ferror(g.out) != 0;
    write_err |= fclose(g.out) != 0;
    if (read_err || write_err || g.failed || g.anchors == 0) {
        fprintf(stderr, "gen_ca: %s: %s\n", in_path,
                read_err ? "read error" : write_err ? "write error" : g.failed ? "out of memory"
                                                                               : "no usable CA certificate");
        remove(tmp);
        return 1;
    }
    if (rename(tmp, out_path) < 0) {
        fprintf(stderr, "gen_ca: %s: %s\n", out_path, strerror(errno));
        remove(tmp);
        return 1;
    }
    fprintf(stderr, "gen_ca: %s: %zu anchors, %zu certificates skipped\n", in_path, g.anchors, g.skipped);
    free(tmp);
    free(g.types);
    free(g.curves);
    return 0;
}
