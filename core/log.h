/* Ember logging: one line per event on stderr, with a level prefix. */
#ifndef EMBER_LOG_H
#define EMBER_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* The process has one stderr, so the threshold is process-wide state. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/*
 * The level names, kept in one table (core/log.c). The command line takes
 * error|warn|warning|info|debug; Firecracker's logger (PUT /logger, config
 * files) takes Error|Warning|Info|Debug|Trace|Off, where Trace is Debug and
 * Off keeps errors on. Both compare without case. 0 or -EINVAL.
 */
#define LOG_CLI_LEVEL_NAMES "error, warn, info or debug"
#define LOG_API_LEVEL_NAMES "Error, Warning, Info, Debug, Trace, Off"
int log_parse_level(const char *name, enum log_level *out);
/* Firecracker's names; *spelling is the name in its documented spelling ("debug" gives "Debug"). */
int log_parse_api_level(const char *name, enum log_level *out, const char **spelling);
/*
 * Sends log lines to fd (a file or FIFO, non-blocking: a full FIFO loses
 * lines, counted) in Firecracker's shape "TIME [ID:THREAD] [LEVEL] msg";
 * fd < 0 goes back to stderr. The log is one per process, so is this.
 * A line is at most 1 KiB, so it reaches a FIFO whole or not at all.
 */
void log_set_output(int fd, const char *instance_id, int show_level);
/* Lines dropped because the output was full (missed_log_count), and lines a write error lost (log_fails). */
unsigned long log_missed_lines(void);
unsigned long log_failed_lines(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
