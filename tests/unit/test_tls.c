/* Unit tests of trust-anchor loading (tls_trust_*), the default bundle and
 * the origin cache.  No network: see test_tls_live.c for the transport.
 *
 * The fixtures are throwaway self-signed certificates made once with
 * openssl for this file: CAs with RSA-2048, EC P-256 and EC P-384 keys, a
 * CA with an Ed25519 key (which BearSSL cannot use), and a non-CA leaf. */
#include "log.h"
#include "tap.h"
#include "tls.h"
#ifdef AUTOSWITCH_BUILTIN_CA
#include "ca_builtin.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PEM_CA_RSA \
    "-----BEGIN CERTIFICATE-----\n" \
    "MIIC/jCCAeagAwIBAgIUIhLJJyE8PskKqtrE6DKP8ruX4RwwDQYJKoZIhvcNAQEL\n" \
    "BQAwFjEUMBIGA1UEAwwLRml4dHVyZSByc2EwIBcNMjYxMTI3MDE1NDQ1WhgPMjEy\n" \
    "NjExMDMwMTU0NDVaMBYxFDASBgNVBAMMC0ZpeHR1cmUgcnNhMIIBIjANBgkqhkiG\n" \
    "9w0BAQEFAAOCAQ8AMIIBCgKCAQEAt5P7gFG7nTC1pSAE1PmEV57UBsEWcyD76Owb\n" \
    "w1NtmdGeRCsQGAN0rFXWBeQYzqUGgKnkTgsSGWS9ZX2xH5uhnwvvl5PtX2QusDcf\n" \
    "wKLe1bqa+YEVz2NRZPUqDBBR51eBzsMTlu3CqQCp5HmIKP+eEpYCOGA5QR7/WzEx\n" \
    "slq+nmm7IN9wUjF+8ruD3E7+sa8q7HW4zYuY0N/SXBbQN4l0mG+335/vtau84KTB\n" \
    "A4Bkiy6ZQX0r7UEYDuHc4LununoWiN1+OTLHzG2A04HIPB8BkCdmAoJU5ZX9+x2E\n" \
    "L4WktTZ3yPYEo3LdelmwGWQ+1hE7iPuHxrN0/Q+q195Y+bIcJQIDAQABo0IwQDAP\n" \
    "BgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUCLVgftGY\n" \
    "CeGIioA8OpQktPtlcw4wDQYJKoZIhvcNAQELBQADggEBAFrLXJK3fg0i902Ofynb\n" \
    "CK8iHX5e8B1jjxU1y18QYRFPb8QEwoVW2zzEiYbxHaU0Fmh85ZIrgrK60BME/FIr\n" \
    "M+XC8d5J1w3FATDpEI+Is5Cyce8P0pFVe7L98zdI0pWlpulJIu6OD3t3vmXQ7++I\n" \
    "fvosleHJ2ecZ4DC11u5WRS1f8e1YQKxMFLu9GzISh9/ER2IVMruVkOGbP48oWxRP\n" \
    "gZ4P39npTi0WjYkRJ3GvrYfSVrVTt6KI5VCnnH73N0y2TCbdcdOhyB1UF9vUxITL\n" \
    "yKCXBqGQ7nQWmn9XrqRdr3eLnWnFE1sWj+wmcpaYcjugecFyV0utPmLOX3EF+Wif\n" \
    "ufw=\n" \
    "-----END CERTIFICATE-----\n"

#define PEM_CA_P256 \
    "-----BEGIN CERTIFICATE-----\n" \
    "MIIBdTCCARqgAwIBAgIUVqjAS9OqJ1P6HalUo7Z7lJ2sFIUwCgYIKoZIzj0EAwIw\n" \
    "FzEVMBMGA1UEAwwMRml4dHVyZSBwMjU2MCAXDTI2MTEyNzAxNTQ0NVoYDzIxMjYx\n" \
    "MTAzMDE1NDQ1WjAXMRUwEwYDVQQDDAxGaXh0dXJlIHAyNTYwWTATBgcqhkjOPQIB\n" \
    "BggqhkjOPQMBBwNCAARNyQ+WhKZGntjyRBS3slSmtM0HvtwDVdfgvmmHzY0lABK7\n" \
    "BlbgNFqYuVigLAbNlOBUl9V988GWh2nu7KgS022qo0IwQDAPBgNVHRMBAf8EBTAD\n" \
    "AQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUbBSVT6AABnCLydJVRdfuwDPq\n" \
    "7XEwCgYIKoZIzj0EAwIDSQAwRgIhAJi7HZrJ4a2OKxkB/PaOtZCnKo6SLkmU6wjR\n" \
    "KqjH171IAiEAmMrk3xebpOfS9gJStCrSyX4tcxcgS+9t2lydTxxOF3s=\n" \
    "-----END CERTIFICATE-----\n"

#define PEM_CA_P384 \
    "-----BEGIN CERTIFICATE-----\n" \
    "MIIBsDCCATegAwIBAgIUNTyJavgnAvcxgAo3X4MjFz2xSG0wCgYIKoZIzj0EAwIw\n" \
    "FzEVMBMGA1UEAwwMRml4dHVyZSBwMzg0MCAXDTI2MTEyNzAxNTQ0NVoYDzIxMjYx\n" \
    "MTAzMDE1NDQ1WjAXMRUwEwYDVQQDDAxGaXh0dXJlIHAzODQwdjAQBgcqhkjOPQIB\n" \
    "BgUrgQQAIgNiAAQZ9bA4duY/JkWofpFANbjCJEo7qxKyfNu7w3g3gmaLevQFHvhi\n" \
    "aTpkUD2Z/qNkU/PePMKdFOvMGl5csHLZziOE/w7u9dJFTZwFpAZOumJqefmVwXWr\n" \
    "Y7NfBv6FHbeI+SyjQjBAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEG\n" \
    "MB0GA1UdDgQWBBRzrqcxNrgQoZRtYhc/8NRk2vrxPzAKBggqhkjOPQQDAgNnADBk\n" \
    "AjBviV/POJCxgO3s6w+D6tcAz2/o0wj0Wl9wv64kotLoeXNHuW324oWTxZgZAj6I\n" \
    "yHsCMFxIPnRRhK51o5Q+RaLxC4xdh9LIWTlb78RasAHRPTc/lW2I3I9mWxQI42aV\n" \
    "8Yj4cQ==\n" \
    "-----END CERTIFICATE-----\n"

#define PEM_CA_ED25519 \
    "-----BEGIN CERTIFICATE-----\n" \
    "MIIBLzCB4qADAgECAhR/sEZQyG+ruLlFMNaUQ9rKbQbTpTAFBgMrZXAwFTETMBEG\n" \
    "A1UEAwwKRml4dHVyZSBlZDAgFw0yNjExMjcwMTU0NDVaGA8yMTI2MTEwMzAxNTQ0\n" \
    "NVowFTETMBEGA1UEAwwKRml4dHVyZSBlZDAqMAUGAytlcAMhAEr5Htg6DtxyHARW\n" \
    "n2wwLHCDwFHNmu6145/wR7Q8SQF7o0IwQDAPBgNVHRMBAf8EBTADAQH/MA4GA1Ud\n" \
    "DwEB/wQEAwIBBjAdBgNVHQ4EFgQUA4C/JU3D/MoPEzzpR5rVlp8AXoUwBQYDK2Vw\n" \
    "A0EAt8zQeqQkXT600EU5cx/hxlUihwZawGt0kaZWFFkqoTBWVnJXZIwazpvZXVS1\n" \
    "OnuSCD7COL3ddXLGMhvDYen9Aw==\n" \
    "-----END CERTIFICATE-----\n"

#define PEM_LEAF \
    "-----BEGIN CERTIFICATE-----\n" \
    "MIIBfjCCASWgAwIBAgIBBzAKBggqhkjOPQQDAjAXMRUwEwYDVQQDDAxGaXh0dXJl\n" \
    "IHAyNTYwIBcNMjYxMTI3MDE1NDQ1WhgPMjEyNjExMDMwMTU0NDVaMBQxEjAQBgNV\n" \
    "BAMMCWxlYWYudGVzdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIp/Msjd+qt7\n" \
    "4wSR6LvWF72M4fG9xGXYNlEZkB6tbS+BEW5M6oXNDj3o5lSeFvSw6nFK8pobwI6m\n" \
    "T5DMix0wuIujYzBhMAkGA1UdEwQCMAAwFAYDVR0RBA0wC4IJbGVhZi50ZXN0MB0G\n" \
    "A1UdDgQWBBTTiVTkoNy0UVxa0gZRVjNd1yS0njAfBgNVHSMEGDAWgBRsFJVPoAAG\n" \
    "cIvJ0lVF1+7AM+rtcTAKBggqhkjOPQQDAgNHADBEAiB5AzgLB/+hiH8KFYQvsiWw\n" \
    "8NGGJ9shGyorpb9p9Ah4jgIgN9fzj7M5nU2/tSPpRdFAwRlJfKPHevLf4nnPEMFl\n" \
    "R28=\n" \
    "-----END CERTIFICATE-----\n"

#define PEM_PRIVATE_KEY \
    "-----BEGIN PRIVATE KEY-----\n" \
    "MC4CAQAwBQYDK2VwBCIEIGx0aGlzIGlzIG5vdCBhIHJlYWwga2V5IGF0IGFsbC4=\n" \
    "-----END PRIVATE KEY-----\n"

/* base64 that decodes, but to no certificate */
#define PEM_BROKEN_CERT \
    "-----BEGIN CERTIFICATE-----\n" \
    "aGVsbG8gd29ybGQsIHRoaXMgaXMgbm90IGEgY2VydGlmaWNhdGU=\n" \
    "-----END CERTIFICATE-----\n"

/* not even base64 */
#define PEM_GARBLED_CERT \
    "-----BEGIN CERTIFICATE-----\n" \
    "!!!! not base64 at all !!!!\n" \
    "-----END CERTIFICATE-----\n"

static const char bundle[] =
    "# a bundle as distributions ship them, with text between objects\n"
    "Fixture rsa\n=========\n" PEM_CA_RSA "\n"
    "junk line -----BEGIN nothing\n" PEM_CA_P256
    "\x01\x02 binary garbage\r\n" PEM_LEAF PEM_PRIVATE_KEY PEM_BROKEN_CERT PEM_CA_ED25519
    PEM_GARBLED_CERT PEM_CA_P384;

static char tmpdir[] = "/tmp/test_tls.XXXXXX";

static const char *write_tmp(const char *name, const char *data, size_t len)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        printf("Bail out! cannot write %s\n", path);
        exit(1);
    }
    return path;
}

/* A copy of s with every "\n" turned into "\r\n", and no final newline. */
static char *crlf_no_final_newline(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(2 * n + 1), *o = out;
    if (!out)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n')
            *o++ = '\r';
        *o++ = s[i];
    }
    while (o > out && (o[-1] == '\n' || o[-1] == '\r'))
        o--;
    *o = '\0';
    return out;
}

static void test_mem(void)
{
    char err[200] = "";
    struct tls_trust *t = tls_trust_load_mem(bundle, strlen(bundle), err, sizeof err);
    ok(t != NULL, "bundle with garbage, a leaf, a key and broken objects loads (%s)", err);
    is_int(tls_trust_count(t), 3, "the three usable CAs are anchors (RSA, P-256, P-384)");
    tls_trust_free(t);

    static const char one[] = PEM_CA_P256;
    t = tls_trust_load_mem(one, strlen(one), err, sizeof err);
    is_int(tls_trust_count(t), 1, "a single CA");
    tls_trust_free(t);

    char *crlf = crlf_no_final_newline(PEM_CA_RSA PEM_CA_P384);
    t = tls_trust_load_mem(crlf, strlen(crlf), err, sizeof err);
    is_int(tls_trust_count(t), 2, "CRLF lines, no newline after the last END line");
    tls_trust_free(t);
    free(crlf);

    t = tls_trust_load_mem("", 0, err, sizeof err);
    ok(t == NULL, "empty input is an error");
    ok(strstr(err, "no PEM certificate") != NULL, "  saying so: %s", err);

    static const char leaf_only[] = PEM_LEAF PEM_CA_ED25519;
    t = tls_trust_load_mem(leaf_only, strlen(leaf_only), err, sizeof err);
    ok(t == NULL, "only a leaf and an unusable CA: error");
    ok(strstr(err, "no usable CA certificate (2 skipped)") != NULL, "  with the count skipped: %s", err);

    static const char truncated[] = "-----BEGIN CERTIFICATE-----\nMIIB\n";
    t = tls_trust_load_mem(truncated, strlen(truncated), err, sizeof err);
    ok(t == NULL, "an object with no END line: error");

    ok(tls_trust_count(NULL) == 0, "count of NULL is 0");
    tls_trust_free(NULL);
}

static void test_file(void)
{
    char err[200] = "";
    const char *p = write_tmp("bundle.pem", bundle, strlen(bundle));
    struct tls_trust *t = tls_trust_load_file(p, err, sizeof err);
    ok(t != NULL, "bundle file loads (%s)", err);
    is_int(tls_trust_count(t), 3, "three anchors from the file");
    tls_trust_free(t);

    p = write_tmp("empty.pem", "", 0);
    t = tls_trust_load_file(p, err, sizeof err);
    ok(t == NULL, "an empty file is an error");
    ok(strstr(err, "empty.pem") && strstr(err, "no PEM certificate"), "  naming the file: %s", err);

    char missing[300];
    snprintf(missing, sizeof missing, "%s/missing.pem", tmpdir);
    t = tls_trust_load_file(missing, err, sizeof err);
    ok(t == NULL, "a missing file is an error");
    ok(strstr(err, "missing.pem: No such file") != NULL, "  with the reason: %s", err);

    t = tls_trust_load_file(tmpdir, err, sizeof err);
    ok(t == NULL, "a directory is an error");
    ok(strstr(err, "not a regular file") != NULL, "  with the reason: %s", err);
}

static void test_default(void)
{
    char err[300] = "";
#ifdef AUTOSWITCH_BUILTIN_CA
    struct tls_trust *t = tls_trust_default(err, sizeof err);
    ok(t != NULL, "the compiled-in set is the default");
    is_int(tls_trust_count(t), ca_builtin_count, "with every compiled-in anchor");
    ok(tls_trust_default(err, sizeof err) == t, "and is cached");
#else
    static const char *const paths[] = {
        "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem",
    };
    const char *found = NULL;
    struct stat st;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0] && !found; i++)
        if (stat(paths[i], &st) == 0)
            found = paths[i];
    if (!found) {
        ok(tls_trust_default(err, sizeof err) == NULL, "no system bundle: default is an error");
        printf("ok %d # SKIP no system CA bundle on this machine\n", ++tap_n);
        printf("ok %d # SKIP no system CA bundle on this machine\n", ++tap_n);
        return;
    }
    struct tls_trust *t = tls_trust_default(err, sizeof err);
    ok(t != NULL, "default trust from the system bundle %s (%s)", found, err);
    struct tls_trust *direct = tls_trust_load_file(found, err, sizeof err);
    ok(tls_trust_count(t) > 0 && tls_trust_count(t) == tls_trust_count(direct),
       "same anchors as loading %s (%zu)", found, tls_trust_count(t));
    tls_trust_free(direct);
    ok(tls_trust_default(err, sizeof err) == t, "cached");
#endif
}

static void test_origins(void)
{
    char err[200] = "";
    const char *p = write_tmp("origin.pem", bundle, strlen(bundle));
    struct tls_origin *a = tls_origin_get("api.example", 443, p, err, sizeof err);
    ok(a != NULL, "origin with a ca_file (%s)", err);
    ok(tls_origin_get("API.example", 443, p, err, sizeof err) == a, "same host (any case), port, file: same origin");
    ok(tls_origin_get("api.example", 8443, p, err, sizeof err) != a, "another port: another origin");
    struct tls_origin *d = tls_origin_get("api.example", 443, NULL, err, sizeof err);
#ifndef AUTOSWITCH_BUILTIN_CA
    struct stat st;
    if (!d && stat("/etc/ssl/certs/ca-certificates.crt", &st) != 0) {
        printf("ok %d # SKIP no system CA bundle on this machine\n", ++tap_n);
        printf("ok %d # SKIP no system CA bundle on this machine\n", ++tap_n);
    } else
#endif
    {
        ok(d != NULL && d != a, "default trust: another origin");
        ok(tls_origin_get("api.example", 443, "", err, sizeof err) == d, "an empty ca_file means the default");
    }
    ok(tls_origin_get("x", 1, "/nonexistent.pem", err, sizeof err) == NULL, "unreadable ca_file: no origin");

    /* A changed bundle is read again after tls_forget. */
    static const char two[] = PEM_CA_RSA PEM_CA_P384;
    tls_forget();
    p = write_tmp("origin.pem", two, strlen(two));
    struct tls_origin *b = tls_origin_get("api.example", 443, p, err, sizeof err);
    ok(b != NULL, "origin after tls_forget");
    /* (a was freed by tls_forget; b may even reuse its address) */
    p = write_tmp("origin.pem", "", 0);
    ok(tls_origin_get("api.example", 443, p, err, sizeof err) == b, "cached until the next tls_forget");
    tls_forget();
    ok(tls_origin_get("api.example", 443, p, err, sizeof err) == NULL, "then the emptied file is read: error");
}

int main(void)
{
    log_set_stdout(0);
    if (!mkdtemp(tmpdir)) {
        printf("Bail out! mkdtemp failed\n");
        return 1;
    }
    test_mem();
    test_file();
    test_default();
    test_origins();
    tls_shutdown();

    static const char *const files[] = { "bundle.pem", "empty.pem", "origin.pem" };
    char path[300];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, files[i]);
        unlink(path);
    }
    rmdir(tmpdir);
    return tap_done();
}
