#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static _Atomic int threshold = LOG_WARN;

void log_set_level(enum log_level level) { atomic_store(&threshold, (int)level); }
enum log_level log_get_level(void) { return (enum log_level)atomic_load(&threshold); }

int log_parse_level(const char *name, enum log_level *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(name, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -22; /* -EINVAL */
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *const prefix[] = {"error", "warning", "info", "debug"};
    if ((int)level > atomic_load(&threshold))
        return;
    /* Build the line first so concurrent threads never interleave inside it. */
    char line[1024];
    int n = snprintf(line, sizeof(line), "ember: %s: ", prefix[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    if (len > 0 && line[len - 1] != '\n' && len + 1 < sizeof(line)) {
        line[len] = '\n';
        line[len + 1] = '\0';
    }
    fputs(line, stderr);
}
