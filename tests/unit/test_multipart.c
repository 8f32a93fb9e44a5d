/* Unit tests of multipart.c: the boundary of a Content-Type, and the
 * value spans of form fields in well-formed and broken bodies (what
 * curl, browsers and the SDKs send, and what they must not be confused
 * by: preambles, files holding boundary-like text, empty values, names
 * that only start alike, parts without headers). */
#include "multipart.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void test_boundary(void)
{
    struct { const char *ctype; const char *want; } cases[] = {
        { "multipart/form-data; boundary=abc", "abc" },
        { "Multipart/Form-Data;boundary=------------------------d74496d66958873e", "------------------------d74496d66958873e" },
        { "multipart/form-data; charset=utf-8; boundary=\"a b'c\"", "a b'c" },
        { "multipart/form-data ; BOUNDARY = x ", "x" },
        { "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW", "----WebKitFormBoundary7MA4YWxkTrZu0gW" },
        { "multipart/form-data", NULL },
        { "multipart/form-data; charset=utf-8", NULL },
        { "multipart/mixed; boundary=abc", NULL },
        { "application/json; boundary=abc", NULL },
        { "multipart/form-data; boundary=", NULL },
        { "multipart/form-data; boundary=\"ends with space \"", NULL },
        { "multipart/form-data; boundary=bad<char>", NULL },
        { "multipart/form-data; boundary=0123456789012345678901234567890123456789012345678901234567890123456789x",
          NULL },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char b[MP_BOUNDARY_MAX + 2] = "unset";
        int rc = multipart_boundary(cases[i].ctype, strlen(cases[i].ctype), b, sizeof b);
        if (cases[i].want)
            is_str(rc == 0 ? b : "(refused)", cases[i].want, "boundary of %s", cases[i].ctype);
        else
            is_int(rc, -1, "no boundary in %s", cases[i].ctype);
    }
    char small[8];
    is_int(multipart_boundary("multipart/form-data; boundary=abc", 33, small, sizeof small), -1,
           "a buffer too small for any boundary is refused");
}

static const char *const NAMES[] = { "model", "stream" };

/* Scan body (with boundary XX); the two fields as "model=<v>|stream=<v>"
 * ("-" when absent), or "error: <why>". */
static const char *scan(const char *body)
{
    static char out[256];
    struct mp_field f[2];
    const char *why = NULL;
    size_t n = strlen(body);
    if (multipart_scan(body, n, "XX", NAMES, 2, f, &why) < 0) {
        snprintf(out, sizeof out, "error: %s", why ? why : "(no reason)");
        return out;
    }
    size_t used = 0;
    for (int i = 0; i < 2; i++) {
        if (f[i].found && (f[i].start > f[i].end || f[i].end > n)) {
            snprintf(out, sizeof out, "error: span out of the body");
            return out;
        }
        used += (size_t)snprintf(out + used, sizeof out - used, "%s%s=", i ? "|" : "", NAMES[i]);
        if (f[i].found)
            used += (size_t)snprintf(out + used, sizeof out - used, "%.*s", (int)(f[i].end - f[i].start),
                                     body + f[i].start);
        else
            used += (size_t)snprintf(out + used, sizeof out - used, "-");
    }
    return out;
}

static void test_scan(void)
{
    struct { const char *body; const char *want; const char *what; } cases[] = {
        { "--XX\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--XX--\r\n",
          "model=whisper|stream=-", "one field" },
        { "--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\n"
          "Content-Type: audio/mpeg\r\n\r\n\x01\x02\r\n--XY\r\n-- XX\r\n\r\n--XXnot\r\n--XX\r\n"
          "Content-Disposition: form-data; name=\"model\"\r\n\r\nm1\r\n--XX\r\n"
          "content-disposition: FORM-DATA; name=stream\r\n\r\ntrue\r\n--XX--",
          "model=m1|stream=true", "a file holding boundary-like text, then the fields" },
        { "preamble text\r\n--XX\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--XX--",
          "model=m|stream=-", "a preamble is skipped" },
        { "--XX  \t\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--XX--epilogue",
          "model=m|stream=-", "whitespace after a delimiter, an epilogue" },
        { "--XX\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n\r\n--XX--",
          "model=|stream=-", "an empty value" },
        { "--XX\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n--XX--",
          "model=|stream=-", "a part with no value at all" },
        { "--XX\r\n\r\nno headers\r\n--XX\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--XX--",
          "model=m|stream=-", "a part without headers is skipped" },
        { "--XX\r\nContent-Disposition: form-data; name=\"model2\"\r\n\r\nno\r\n--XX\r\n"
          "Content-Disposition: form-data; name=\"mode\"\r\n\r\nno\r\n--XX--",
          "model=-|stream=-", "only the exact name counts" },
        { "--XX\r\nContent-Disposition: form-data; filename=\"m.txt\"; name=\"model\"\r\n\r\nfile\r\n--XX\r\n"
          "Content-Disposition: form-data; name=\"model\"\r\n\r\nfield\r\n--XX--",
          "model=field|stream=-", "a file named like the field is not the field" },
        { "--XX\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nfirst\r\n--XX\r\n"
          "Content-Disposition: form-data; name=\"model\"\r\n\r\nsecond\r\n--XX--",
          "model=first|stream=-", "the first of two same-named fields" },
        { "--XX\r\nContent-Disposition: attachment; name=\"model\"\r\n\r\nm\r\n--XX--",
          "model=-|stream=-", "not form-data: not a field" },
        { "--XX\r\nContent-Disposition: form-data; name=\"mo\\\"del\"\r\n\r\nm\r\n--XX--",
          "model=-|stream=-", "an escaped quote in a name" },
        { "--XX\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nline1\r\nline2\r\n--XX--",
          "model=line1\r\nline2|stream=-", "a value with a line break" },
        /* broken */
        { "", "error: multipart body without its boundary", "empty body" },
        { "{\"model\":\"x\"}", "error: multipart body without its boundary", "a JSON body" },
        { "--XX\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n",
          "error: multipart body without its closing boundary", "no close delimiter" },
        { "--XX\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--XX\r\n",
          "error: multipart part headers too long or not ended", "a delimiter and then nothing" },
        { "--XX\r\nContent-Disposition form-data\r\n\r\nm\r\n--XX--", "error: bad multipart part header",
          "a header without a colon" },
        { "--XX\r\n folded: x\r\n\r\nm\r\n--XX--", "error: bad multipart part header", "a folded header" },
        { "--XXjunk\r\nx", "error: multipart body without its boundary", "a boundary followed by junk" },
        { "--XX\nContent-Disposition: form-data; name=\"model\"\n\nm\n--XX--",
          "error: multipart body without its boundary", "bare LF line ends" },
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        is_str(scan(cases[i].body), cases[i].want, "%s", cases[i].what);

    /* Part headers are bounded. */
    size_t big = MP_PART_HEAD_MAX + 100;
    char *body = malloc(big + 64);
    strcpy(body, "--XX\r\nX-Pad: ");
    memset(body + 13, 'a', big);
    strcpy(body + 13 + big, "\r\n\r\nm\r\n--XX--");
    is_str(scan(body), "error: multipart part headers too long or not ended", "part headers over the limit");
    free(body);

    /* Every prefix of a good body is refused or scanned without reading past its end. */
    const char *good = "--XX\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--XX--";
    size_t gl = strlen(good);
    int bad = 0;
    for (size_t k = 0; k < gl; k++) {
        char *cut = malloc(k ? k : 1);
        memcpy(cut, good, k);
        struct mp_field f[2];
        const char *why;
        if (multipart_scan(cut, k, "XX", NAMES, 2, f, &why) == 0)
            bad++;
        free(cut);
    }
    is_int(bad, 0, "every strict prefix of a body is refused (no close delimiter)");
}

int main(void)
{
    test_boundary();
    test_scan();
    return tap_done();
}
