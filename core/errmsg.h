/* A user-facing error message travelling with a negative errno. */
#ifndef EMBER_ERRMSG_H
#define EMBER_ERRMSG_H

#include <stddef.h>

struct errmsg {
    char text[512];
};

/* Formats into e (if non-NULL) and returns rc, for `return err_set(e, -EINVAL, ...)`. */
int err_set(struct errmsg *e, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
