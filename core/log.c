#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

static _Atomic int threshold = LOG_WARN;
static _Atomic int out_fd = -1;
static _Atomic int out_show_level;
static _Atomic unsigned long missed;
static const char *out_id = "anonymous-instance";

void log_set_output(int fd, const char *instance_id, int show_level)
{
    if (instance_id)
        out_id = instance_id;
    atomic_store(&out_show_level, show_level);
    atomic_store(&out_fd, fd);
}

unsigned long log_missed_lines(void) { return atomic_load(&missed); }

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
    static const char *const upper[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    char line[1024];
    int fd = atomic_load(&out_fd);
    int n;
    if (fd >= 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        char thread[16] = "ember";
        pthread_getname_np(pthread_self(), thread, sizeof(thread));
        n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%09ld [%s:%s] %s%s%s", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec, out_id, thread,
                     atomic_load(&out_show_level) ? "[" : "", atomic_load(&out_show_level) ? upper[level] : "",
                     atomic_load(&out_show_level) ? "] " : "");
    } else {
        n = snprintf(line, sizeof(line), "ember: %s: ", prefix[level]);
    }
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
    if (fd >= 0) {
        if (write(fd, line, strlen(line)) < 0)
            atomic_fetch_add(&missed, 1); /* a full FIFO: Firecracker drops and counts too */
    } else {
        fputs(line, stderr);
    }
}
