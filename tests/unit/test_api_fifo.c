/*
 * FIFOs (issues 15 and 16): log and metrics outputs on a FIFO nobody reads yet, a full FIFO dropping whole lines
 * and counting them, and FIFOs named as kernel, initrd or drive refused at once. Every test runs under alarm():
 * a regression that blocks on a FIFO fails (SIGALRM) instead of hanging the suite.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/api_fixture.h"
#include "api/config_file.h"
#include "core/log.h"
#include "devices/virtio/blk.h"

#define DEADLINE_S 20 /* far beyond what any of these takes; only a blocked open or write reaches it */

static char fifo_dir[64], fifo[128];

static void setup(void)
{
    alarm(DEADLINE_S);
    api_fx_setup();
    snprintf(fifo_dir, sizeof(fifo_dir), "/tmp/ember-fifo-unit-XXXXXX");
    cr_assert_not_null(mkdtemp(fifo_dir));
    snprintf(fifo, sizeof(fifo), "%s/fifo", fifo_dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0, "mkfifo: %s", strerror(errno));
}

static void teardown(void)
{
    api_fx_teardown(); /* closes the outputs (and writes the last metrics line) first */
    unlink(fifo);
    rmdir(fifo_dir);
    alarm(0);
}

TestSuite(api_fifo, .init = setup, .fini = teardown);

/* Everything the FIFO holds now, NUL-terminated (the caller frees). */
static char *drain(int rfd, size_t *out_len)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    cr_assert_not_null(buf);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            char *bigger = realloc(buf, cap + 1);
            cr_assert_not_null(bigger);
            buf = bigger;
        }
        ssize_t n = read(rfd, buf + len, cap - len);
        if (n <= 0) {
            cr_assert(n == 0 || errno == EAGAIN, "read: %s", strerror(errno));
            break;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out_len = len;
    return buf;
}

static int open_reader(void)
{
    int rfd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    cr_assert_geq(rfd, 0, "open the reader: %s", strerror(errno));
    return rfd;
}

static json_int_t logger_count(json_t *line, const char *key)
{
    json_t *logger = json_object_get(line, "logger");
    cr_assert(json_is_object(logger), "no logger object");
    return int_of(logger, key);
}

/* Splits text into lines: each must be a whole metrics object (it parses and ends with '\n'). Returns how many; the
 * last one parsed goes to *last (or NULL when none). */
static unsigned whole_metrics_lines(char *text, size_t len, json_t **last)
{
    unsigned n = 0;
    *last = NULL;
    cr_assert(len == 0 || text[len - 1] == '\n', "the FIFO ends inside a line");
    for (char *p = text, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
        *nl = '\0';
        json_error_t je;
        json_t *o = json_loads(p, 0, &je);
        cr_assert_not_null(o, "line %u is not a whole metrics object (%s): %.80s", n, je.text, p);
        cr_assert_not_null(json_object_get(o, "utc_timestamp_ms"), "line %u: %.80s", n, p);
        json_decref(*last);
        *last = o;
        n++;
    }
    return n;
}

Test(api_fifo, logger_without_reader_drops_whole_lines)
{
    expect_204("PUT", "/logger", fmt("{\"log_path\":\"%s\",\"level\":\"Info\"}", fifo));
    /* Far more than a pipe holds (64 KiB by default): must not block, and the rest is counted as missed. */
    enum { LINES = 3000, PAD = 200 };
    char pad[PAD + 1];
    memset(pad, 'x', PAD);
    pad[PAD] = '\0';
    unsigned long missed0 = log_missed_lines();
    for (int i = 0; i < LINES; i++)
        log_info("fifo-line %05d %s", i, pad);
    unsigned long missed = log_missed_lines() - missed0;
    cr_expect_gt(missed, 0, "a full FIFO must drop lines");
    cr_expect_lt(missed, LINES);

    int rfd = open_reader();
    size_t len;
    char *text = drain(rfd, &len);
    cr_assert(len > 0 && text[len - 1] == '\n', "the FIFO ends inside a line");
    unsigned whole = 0;
    int prev = -1;
    for (char *p = text, *nl; (nl = strchr(p, '\n')); p = nl + 1, whole++) {
        *nl = '\0';
        const char *tag = strstr(p, "] fifo-line ");
        cr_assert_not_null(tag, "line %u is not a log line: %.80s", whole, p);
        cr_assert(strstr(p, "[test-id:") != NULL, "line %u: %.80s", whole, p);
        int seq = (int)strtol(tag + 12, NULL, 10);
        cr_assert_gt(seq, prev, "lines out of order or repeated");
        prev = seq;
        cr_assert_eq(strlen(tag + 12), 6 + PAD, "line %u is cut: %.80s", whole, p);
    }
    cr_expect_eq(whole + missed, LINES, "every line is either read whole (%u) or counted missed (%lu)", whole, missed);
    free(text);

    /* Room again: lines flow, and the reader going away never blocks or kills the writer. */
    log_info("fifo-line %05d after", LINES);
    text = drain(rfd, &len);
    cr_expect(strstr(text, "fifo-line 03000 after\n") != NULL, "read after draining: %s", text);
    free(text);
    /* A message longer than a log line is cut, but its line still ends: the next one does not join it. */
    static char longer[3000];
    memset(longer, 'y', sizeof(longer) - 1);
    log_info("%s", longer);
    log_info("fifo-line %05d after the long one", LINES + 1);
    text = drain(rfd, &len);
    char *nl = strchr(text, '\n');
    cr_assert_not_null(nl);
    cr_expect(strncmp(nl + 1, "20", 2) == 0 && strstr(nl + 1, "] fifo-line 03001 after the long one\n"),
              "the long line did not end: %.120s", nl + 1);
    free(text);
    close(rfd);
    for (int i = 0; i < 1000; i++)
        log_info("fifo-line %05d %s", i, pad);
}

Test(api_fifo, metrics_without_reader_counts_missed)
{
    expect_204("PUT", "/metrics", fmt("{\"metrics_path\":\"%s\"}", fifo));
    struct errmsg e;
    for (int i = 0; i < 2000; i++) /* ~100 bytes a line: well past 64 KiB */
        cr_assert_eq(ctl_flush_metrics(&ctl, &e), 0, "a full FIFO is not an error: %s", e.text);
    cr_expect_gt(ctl.metrics_missed, 0);
    cr_expect_eq(ctl.metrics_fails, 0);
    uint64_t missed = ctl.metrics_missed;

    int rfd = open_reader();
    size_t len;
    char *text = drain(rfd, &len);
    json_t *last;
    unsigned whole = whole_metrics_lines(text, len, &last);
    cr_expect_eq(whole + missed, 2000);
    json_decref(last);
    free(text);

    /* The next line tells how many were missed, in Firecracker's names. */
    cr_assert_eq(ctl_flush_metrics(&ctl, &e), 0, "%s", e.text);
    text = drain(rfd, &len);
    cr_assert_eq(whole_metrics_lines(text, len, &last), 1);
    cr_expect_eq(logger_count(last, "missed_metrics_count"), (json_int_t)missed);
    cr_expect_eq(logger_count(last, "metrics_fails"), 0);
    cr_expect_geq(logger_count(last, "missed_log_count"), 0);
    cr_expect_geq(logger_count(last, "log_fails"), 0);
    json_decref(last);
    free(text);
    close(rfd);
}

/* A metrics line longer than PIPE_BUF may go out in part: its rest must come before anything else. */
Test(api_fifo, metrics_lines_over_pipe_buf_stay_whole)
{
    char big[PIPE_BUF * 2]; /* a line of 3 pipe pages: 16 pages hold 5 and a part */
    memset(big, 'p', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    static char body[sizeof(big) + 256]; /* more than fmt() holds */
    snprintf(body, sizeof(body), "{\"metrics_path\":\"%s\",\"properties\":{\"big\":\"%s\"}}", fifo, big);
    expect_204("PUT", "/metrics", body);
    int rfd = open_reader();
    struct errmsg e;
    unsigned read_whole = 0, cut_rounds = 0;
    json_t *last = NULL;
    /* Fill, drain, fill again: the cut happens at different places in the line each round. */
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < 40; i++)
            cr_assert_eq(ctl_flush_metrics(&ctl, &e), 0, "%s", e.text);
        cut_rounds += ctl.metrics_pending != NULL;
        size_t len;
        char *text = drain(rfd, &len);
        char *end = strrchr(text, '\n'); /* a cut line's rest is still to come: check up to the last newline */
        size_t whole_len = end ? (size_t)(end - text) + 1 : 0;
        char *rest = strdup(text + whole_len);
        text[whole_len] = '\0';
        json_decref(last);
        read_whole += whole_metrics_lines(text, whole_len, &last);
        free(text);
        /* The rest of the cut line, then nothing else, arrives with the next flush. */
        cr_assert_eq(ctl_flush_metrics(&ctl, &e), 0, "%s", e.text);
        text = drain(rfd, &len);
        char *joined = malloc(strlen(rest) + len + 1);
        cr_assert_not_null(joined);
        strcpy(joined, rest);
        strcat(joined, text);
        json_decref(last);
        read_whole += whole_metrics_lines(joined, strlen(joined), &last);
        free(joined);
        free(rest);
        free(text);
    }
    cr_expect_gt(ctl.metrics_missed, 0, "the FIFO filled up");
    cr_expect_gt(cut_rounds, 0, "no line was ever cut: the test did not test the rest being kept");
    cr_expect_eq(read_whole + ctl.metrics_missed, ctl.metrics_flushes, "each line read whole or counted missed");
    cr_expect_str_eq(str_of(json_object_get(last, "properties"), "big"), big);
    json_decref(last);
    close(rfd);
}

/* A FIFO already being read: the log reaches the reader as it is written. */
Test(api_fifo, logger_with_reader)
{
    int rfd = open_reader();
    expect_204("PUT", "/logger", fmt("{\"log_path\":\"%s\",\"level\":\"Warning\",\"show_level\":true}", fifo));
    log_warn("hello %s", "fifo");
    size_t len;
    char *text = drain(rfd, &len);
    cr_expect(strstr(text, "[WARN] hello fifo\n") != NULL, "%s", text);
    free(text);
    close(rfd);
}

/* Issue 16: each answers 400 at once, naming the path and what it is; without alarm() these would hang. */
Test(api_fifo, fifo_paths_refused_without_blocking)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fault("PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\"}", fifo), fifo, "is a FIFO");
    fault("PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\",\"initrd_path\":\"%s\"}", kernel, fifo), fifo,
          "Initrd file");
    fault("PUT", "/drives/rootfs", drive_body("rootfs", true, fifo), fifo, "regular file or a block device");
    fault("PUT", "/drives/data", drive_body("data", false, fifo_dir), fifo_dir, "is a directory");
    fault("PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\"}", fifo_dir), fifo_dir, "is a directory");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_expect_lt(t1.tv_sec - t0.tv_sec, 5, "refusing took %ld s", (long)(t1.tv_sec - t0.tv_sec));
    /* Nothing was taken, and the API still answers. */
    json_t *c = get_json("/vm/config");
    cr_expect_eq(json_array_size(json_object_get(c, "drives")), 0);
    json_decref(c);
    /* A character device is no image either. */
    fault("PUT", "/drives/rootfs", drive_body("rootfs", true, "/dev/null"), "/dev/null", "a character device");
}

static int apply_text(const char *text, struct errmsg *e)
{
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    cr_assert_not_null(root, "test config is not JSON: %s (%s)", je.text, text);
    int rc = api_apply_config(&ctl, root, e);
    json_decref(root);
    return rc;
}

Test(api_fifo, config_file_fifo_paths_refused)
{
    struct errmsg e;
    cr_expect_eq(apply_text(fmt("{\"boot-source\":{\"kernel_image_path\":\"%s\"}}", fifo), &e), -EINVAL);
    cr_expect(strstr(e.text, "boot-source") && strstr(e.text, fifo) && strstr(e.text, "FIFO"), "%s", e.text);
    cr_expect_eq(apply_text(fmt("{\"boot-source\":{\"kernel_image_path\":\"%s\",\"initrd_path\":\"%s\"}}", kernel,
                                fifo),
                            &e),
                 -EINVAL);
    cr_expect(strstr(e.text, "Initrd file") && strstr(e.text, "FIFO"), "%s", e.text);
    cr_expect_eq(apply_text(fmt("{\"boot-source\":{\"kernel_image_path\":\"%s\"},\"drives\":[{\"drive_id\":\"rootfs\","
                                "\"path_on_host\":\"%s\",\"is_root_device\":true}]}",
                                kernel, fifo),
                            &e),
                 -EINVAL);
    cr_expect(strstr(e.text, "\"drives\"[0]") && strstr(e.text, fifo) && strstr(e.text, "FIFO"), "%s", e.text);
    /* Logger and metrics FIFOs are what a config file may name. */
    cr_expect_eq(apply_text(fmt("{\"logger\":{\"log_path\":\"%s\"},\"metrics\":{\"metrics_path\":\"%s\"}}", fifo, fifo),
                            &e),
                 0, "%s", e.text);
}

/* InstanceStart's own open (devices/virtio/blk.c) must not block on a FIFO either, read-only or read-write. */
Test(api_fifo, blk_image_fifo_refused)
{
    for (int ro = 0; ro < 2; ro++) {
        struct blk_config cfg = {.id = "rootfs", .path = fifo, .read_only = ro, .engine = BLK_ENGINE_SYNC};
        struct virtio_blk *b = NULL;
        struct errmsg e;
        cr_expect_eq(virtio_blk_create(&b, &cfg, &e), -EINVAL);
        cr_expect(strstr(e.text, fifo) && strstr(e.text, "a FIFO"), "%s", e.text);
        cr_expect_null(b);
    }
}
