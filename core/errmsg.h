/* A user-facing error message travelling with a negative errno. */
#ifndef EMBER_ERRMSG_H
#define EMBER_ERRMSG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

struct errmsg {
    char text[512];
};

void err_vformat(struct errmsg *e, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/*
 * Formats into e (if non-NULL) and returns rc, for `return err_set(e, -EINVAL, ...)`.
 * The message is one line whatever it quotes: control bytes and invalid UTF-8 in
 * it (which only quoted input can bring) are written \xNN (err_quote).
 * Defined here so that static analysis sees that the caller's rc comes back.
 */
__attribute__((format(printf, 3, 4))) static inline int err_set(struct errmsg *e, int rc, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        err_vformat(e, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/*
 * Copies input (a path, an id, a field value, a method) into dst for quoting in a
 * one-line message: bytes below 0x20, 0x7f and bytes that are not well-formed UTF-8
 * become \xNN, so a quoted value can neither split the line nor forge another one,
 * and the result is valid UTF-8 (JSON-safe). Cut with "..." to fit cap bytes
 * (NUL included). Returns dst.
 */
const char *err_quote(char *dst, size_t cap, const char *src);
const char *err_quote_n(char *dst, size_t cap, const char *src, size_t len);
/* A buffer size for err_quote that holds any 64-byte input escaped, or a path cut at ~250 bytes. */
#define ERR_QUOTE_MAX 256

#endif
