#include "core/errmsg.h"

#include <stdarg.h>
#include <stdio.h>

int err_set(struct errmsg *e, int rc, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->text, sizeof(e->text), fmt, ap);
        va_end(ap);
    }
    return rc;
}
