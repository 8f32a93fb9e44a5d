/* multipart: the form fields of a multipart/form-data body (RFC 7578 on
 * RFC 2046 5.1), found where they are and never copied, so that the
 * proxy can replace one field's value as a byte-span edit and send every
 * other byte (an audio file, an image) exactly as the client did.
 *
 * Strict where it matters for safety: CRLF line ends, the delimiter only
 * at a line start, a close delimiter required, part headers bounded. */
#ifndef AUTOSWITCH_MULTIPART_H
#define AUTOSWITCH_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

#define MP_BOUNDARY_MAX 70        /* RFC 2046 5.1.1 */
#define MP_PART_HEAD_MAX 8192     /* headers of one part */

/* The boundary parameter of a Content-Type value, if it is
 * multipart/form-data: 0 and out (NUL-terminated; cap > MP_BOUNDARY_MAX),
 * or -1. */
int multipart_boundary(const char *ctype, size_t n, char *out, size_t cap);

/* A field's value: body[start, end). */
struct mp_field {
    bool found;
    size_t start, end;
    unsigned count;    /* parts with this name (files included) */
};

/* Walk every part of body.  For each names[i], out[i] gets the value of
 * the first part whose Content-Disposition is form-data with that name
 * and no filename, and how many parts have that name.  0 when the body is well-formed, else -1 and *why (a
 * static message). */
int multipart_scan(const char *body, size_t n, const char *boundary, const char *const *names, size_t n_names,
                   struct mp_field *out, const char **why);

#endif
