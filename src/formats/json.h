/* json: a small JSON reader (RFC 8259) working on the caller's bytes.
 *
 * Nothing is copied or allocated while reading: values are (type, start,
 * end) spans of offsets into the text.  Nesting is tracked with an explicit
 * bit stack, never recursion, so depth is capped by JSON_MAX_DEPTH and not
 * by the C stack.  Strings are checked for valid UTF-8 (no overlongs, no
 * UTF-16 surrogates encoded as UTF-8, nothing past U+10FFFF) and valid
 * escapes; a \u high surrogate must be followed by a \u low surrogate and
 * a lone low surrogate is an error. */
#ifndef AUTOSWITCH_JSON_H
#define AUTOSWITCH_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define JSON_MAX_DEPTH 512

enum json_type {
    JSON_INVALID = 0,
    JSON_OBJECT,
    JSON_ARRAY,
    JSON_STRING,
    JSON_NUMBER,
    JSON_TRUE,
    JSON_FALSE,
    JSON_NULL
};

/* A value: text[start, end).  For strings the span includes the quotes. */
struct json_val {
    enum json_type type;
    size_t start;
    size_t end;
};

struct json_error {
    size_t offset;       /* byte offset of the problem */
    const char *msg;     /* static text, e.g. "invalid escape in string" */
};

/* Validate a whole text: exactly one value, optional whitespace around it.
 * On success sets *root (may be NULL) and returns 0; else -1 and *err. */
int json_parse(const char *s, size_t n, struct json_val *root, struct json_error *err);

/* Iterate the members of an object or the elements of an array that was
 * already validated (as part of a json_parse'd text). */
struct json_iter {
    const char *s;
    size_t pos;          /* private */
    size_t end;          /* private */
    bool first;          /* private */
};
void json_iter_init(struct json_iter *it, const char *s, struct json_val container);
/* Object: 1 and the next member's key (a JSON_STRING span) and value; 0 at the end. */
int json_iter_member(struct json_iter *it, struct json_val *key, struct json_val *val);
/* Array: 1 and the next element; 0 at the end. */
int json_iter_elem(struct json_iter *it, struct json_val *val);

/* The value of the first member of obj whose decoded key equals `key`.
 * true if found. */
bool json_get(const char *s, struct json_val obj, const char *key, struct json_val *out);

/* The values of the first members of obj named in names[0, n), found in
 * one walk over obj (json_get walks it once per name); absent ones (and
 * all of them when obj is not an object) are JSON_INVALID. */
void json_members(const char *s, struct json_val obj, const char *const *names, size_t n, struct json_val *out);

/* Whether a JSON_STRING value decodes to exactly lit[0, len). */
bool json_str_eq(const char *s, struct json_val str, const char *lit, size_t len);

/* Decode a JSON_STRING into out (UTF-8, NUL-terminated, cut to cap - 1
 * bytes on a character boundary).  Returns the full decoded length, so a
 * result >= cap means it was cut. */
size_t json_str_decode(const char *s, struct json_val str, char *out, size_t cap);

/* Append s[0, n) as a JSON string literal, quotes included, escaping '"',
 * '\\' and control characters (\n, \t... or \u00XX).  Bytes >= 0x80 are
 * copied as they are; invalid UTF-8 is replaced by U+FFFD so the output is
 * always valid JSON.  0, or -1 when out of memory. */
int json_append_str(struct buf *out, const char *s, size_t n);

/* Whether the array is empty / the object has no members (cheap). */
bool json_is_empty(const char *s, struct json_val container);

#endif
