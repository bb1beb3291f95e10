#include "core/log.h"
#include "core/errmsg.h"

#include <errno.h>
#include <limits.h>
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
static _Atomic unsigned long missed, failed; /* Firecracker's missed_log_count, log_fails */
static const char *out_id = "anonymous-instance";

void log_set_output(int fd, const char *instance_id, int show_level)
{
    if (instance_id)
        out_id = instance_id;
    atomic_store(&out_show_level, show_level);
    atomic_store(&out_fd, fd);
}

unsigned long log_missed_lines(void) { return atomic_load(&missed); }
unsigned long log_failed_lines(void) { return atomic_load(&failed); }

void log_set_level(enum log_level level) { atomic_store(&threshold, (int)level); }
enum log_level log_get_level(void) { return (enum log_level)atomic_load(&threshold); }

/* Every level name either parser takes; `name` is Firecracker's spelling where it has one. */
static const struct {
    const char *name;
    enum log_level level;
    unsigned char cli, api; /* taken by --log-level, by PUT /logger */
} level_names[] = {
    {"Error", LOG_ERROR, 1, 1}, {"Warn", LOG_WARN, 1, 0},   {"Warning", LOG_WARN, 1, 1}, {"Info", LOG_INFO, 1, 1},
    {"Debug", LOG_DEBUG, 1, 1}, {"Trace", LOG_DEBUG, 0, 1}, {"Off", LOG_ERROR, 0, 1}, /* errors still matter */
};

static int find_level(const char *name, int api, enum log_level *out, const char **spelling)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if ((api ? level_names[i].api : level_names[i].cli) && strcasecmp(name, level_names[i].name) == 0) {
            *out = level_names[i].level;
            if (spelling)
                *spelling = level_names[i].name;
            return 0;
        }
    }
    return -EINVAL;
}

int log_parse_level(const char *name, enum log_level *out) { return find_level(name, 0, out, NULL); }

int log_parse_api_level(const char *name, enum log_level *out, const char **spelling)
{
    return find_level(name, 1, out, spelling);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *const prefix[] = {"error", "warning", "info", "debug"};
    if ((int)level > atomic_load(&threshold))
        return;
    /* Build the line first so concurrent threads never interleave inside it. */
    static const char *const upper[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    char line[1024];
    /* Up to PIPE_BUF bytes, a write to a pipe is atomic: a line reaches a FIFO whole or not at all, and lines
     * written by several threads never interleave. */
    _Static_assert(sizeof(line) <= PIPE_BUF, "a log line must fit one atomic pipe write");
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
    /* One line whatever the message quotes: control bytes and invalid UTF-8 become \xNN (issue #16). */
    char msg[sizeof(line)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t mlen = strlen(msg);
    if (mlen && msg[mlen - 1] == '\n')
        mlen--;
    if (n > 0 && (size_t)n < sizeof(line))
        err_quote_n(line + n, sizeof(line) - (size_t)n, msg, mlen);
    size_t len = strlen(line);
    if (len > 0 && line[len - 1] != '\n') {
        if (len + 1 >= sizeof(line))
            len = sizeof(line) - 2; /* a message cut to fit still ends its line, or the next would join it */
        line[len] = '\n';
        line[len + 1] = '\0';
    }
    if (fd >= 0) {
        len = strlen(line);
        ssize_t w = write(fd, line, len);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            atomic_fetch_add(&missed, 1); /* a full FIFO: the line is dropped (never waited for), as Firecracker */
        else if (w != (ssize_t)len)
            atomic_fetch_add(&failed, 1); /* an error, or a file cut short (disk full) */
    } else {
        fputs(line, stderr);
    }
}
