/* A user-facing error message travelling with a negative errno. */
#ifndef EMBER_ERRMSG_H
#define EMBER_ERRMSG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

struct errmsg {
    char text[512];
};

/*
 * Formats into e (if non-NULL) and returns rc, for `return err_set(e, -EINVAL, ...)`.
 * Defined here so that static analysis sees that the caller's rc comes back.
 */
__attribute__((format(printf, 3, 4))) static inline int err_set(struct errmsg *e, int rc, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->text, sizeof(e->text), fmt, ap);
        va_end(ap);
    }
    return rc;
}

#endif
