#include "api/controller.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "api/balloon_api.h"
#include "api/mmds_api.h"
#include "core/log.h"
#include "core/path_open.h"
#include "devices/mmds/store.h"
#include "vm/runner.h"
#include "vm/vm.h"
#include "x86/loader.h"

#define METRICS_PERIOD_S 60 /* Firecracker flushes metrics every 60 s */

void ctl_init(struct controller *c, struct runner *r, struct vm *vm, const char *instance_id)
{
    memset(c, 0, sizeof(*c));
    c->runner = r;
    c->vm = vm;
    c->instance_id = instance_id;
    c->state = CTL_NOT_STARTED;
    vm_config_defaults(&c->cfg);
    c->metrics_fd = c->metrics_timer_fd = c->log_fd = -1;
}

static void drop_pending_metrics(struct controller *c)
{
    free(c->metrics_pending);
    c->metrics_pending = NULL;
    c->metrics_pending_off = c->metrics_pending_len = 0;
}

void ctl_finish(struct controller *c)
{
    if (c->metrics_fd >= 0) {
        struct errmsg e;
        ctl_flush_metrics(c, &e); /* the last figures, as the process ends */
        close(c->metrics_fd);
    }
    if (c->metrics_timer_fd >= 0) {
        evloop_remove(&c->runner->loop, c->metrics_timer_fd);
        close(c->metrics_timer_fd);
    }
    c->metrics_fd = c->metrics_timer_fd = -1;
    drop_pending_metrics(c); /* still cut short at the end: the reader's last line lacks its newline */
    if (c->log_fd >= 0) {
        log_set_output(-1, NULL, 0);
        close(c->log_fd);
        c->log_fd = -1;
    }
}

void ctl_destroy(struct controller *c)
{
    ctl_finish(c);
    vm_destroy(c->vm); /* before the description it was built from: it points into it */
    vm_config_release(&c->cfg);
    mmds_store_free(c->mmds); /* after the VM: its NICs read it */
    c->mmds = NULL;
    json_decref(c->metrics_properties);
    c->metrics_properties = NULL;
    free(c->metrics_path);
    free(c->log_path);
    c->metrics_path = c->log_path = NULL;
}

void ctl_take_config(struct controller *c, struct vm_config *cfg)
{
    vm_config_release(&c->cfg);
    c->cfg = *cfg;
    vm_config_defaults(cfg); /* its strings are c's now */
    c->configured = c->cfg.kernel_path || c->cfg.nr_drives || c->cfg.nr_nets;
    memset(&c->reported, 0, sizeof(c->reported));
    for (unsigned i = 0; i < c->cfg.nr_nets; i++) {
        const uint8_t *m = c->cfg.nets[i].mac;
        if (c->cfg.nets[i].has_mac)
            snprintf(c->reported.guest_mac[i], sizeof(c->reported.guest_mac[i]), "%02x:%02x:%02x:%02x:%02x:%02x", m[0],
                     m[1], m[2], m[3], m[4], m[5]);
    }
}

const char *ctl_state_name(const struct controller *c)
{
    static const char *const n[] =
        {[CTL_NOT_STARTED] = "Not started", [CTL_RUNNING] = "Running", [CTL_PAUSED] = "Paused"};
    return n[c->state];
}

int ctl_check_phase(const struct controller *c, enum ctl_phase phase, struct errmsg *err)
{
    if (phase == CTL_PRE_BOOT && c->state != CTL_NOT_STARTED)
        return err_set(err, -EINVAL, CTL_MSG_PRE_BOOT_ONLY);
    if (phase == CTL_POST_BOOT && c->state == CTL_NOT_STARTED)
        return err_set(err, -EINVAL, CTL_MSG_POST_BOOT_ONLY);
    return 0;
}

static int no_memory(struct errmsg *err) { return err_set(err, -ENOMEM, "out of memory"); }

/* ---- before boot ---- */

int ctl_set_machine(struct controller *c, unsigned vcpus, uint64_t mem_mib, bool smt, bool track_dirty_pages,
                    struct errmsg *err)
{
    int rc = ctl_check_phase(c, CTL_PRE_BOOT, err);
    if (rc)
        return rc;
    if (c->cfg.has_balloon && c->cfg.balloon.amount_mib > mem_mib) /* Firecracker's IncompatibleBalloonSize */
        return err_set(err, -EINVAL,
                       "The memory size (MiB) is smaller than the previously set balloon device target size: "
                       "mem_size_mib %llu is less than the balloon's amount_mib %u.",
                       (unsigned long long)mem_mib, c->cfg.balloon.amount_mib);
    c->configured = true;
    c->cfg.vcpus = vcpus;
    c->cfg.mem_mib = mem_mib;
    c->reported.smt = smt;
    c->cfg.track_dirty_pages = track_dirty_pages;
    return 0;
}

int ctl_set_boot_source(struct controller *c, const char *kernel, const char *initrd, const char *boot_args,
                        struct errmsg *err)
{
    int rc = ctl_check_phase(c, CTL_PRE_BOOT, err);
    if (rc)
        return rc;
    const char *k = NULL, *i = NULL, *a = NULL; /* all three copied before any is replaced */
    if (vm_config_set_str(&k, kernel) || vm_config_set_str(&i, initrd) || vm_config_set_str(&a, boot_args)) {
        free((void *)k), free((void *)i), free((void *)a);
        return no_memory(err);
    }
    free((void *)c->cfg.kernel_path), free((void *)c->cfg.initrd_path), free((void *)c->cfg.cmdline);
    c->configured = true;
    c->cfg.kernel_path = k;
    c->cfg.initrd_path = i;
    c->cfg.cmdline = a;
    return 0;
}

int ctl_put_drive(struct controller *c, const struct blk_config *d, bool writeback, struct errmsg *err)
{
    int rc = ctl_check_phase(c, CTL_PRE_BOOT, err);
    if (rc)
        return rc;
    struct vm_config *cfg = &c->cfg;
    unsigned slot = cfg->nr_drives;
    for (unsigned i = 0; i < cfg->nr_drives; i++) {
        if (strcmp(cfg->drives[i].id, d->id) == 0)
            slot = i; /* PUT on an existing id replaces it */
        else if (d->root && cfg->drives[i].root)
            return err_set(err, -EINVAL, "A root block device already exists!");
    }
    if (slot == EMBER_MAX_DRIVES)
        return err_set(err, -EINVAL, "Too many drives: Ember supports %d.", EMBER_MAX_DRIVES);
    struct blk_config copy = *d;
    copy.id = copy.path = NULL;
    if (vm_config_set_str(&copy.id, d->id) || vm_config_set_str(&copy.path, d->path)) {
        free((void *)copy.id);
        return no_memory(err);
    }
    if (slot < cfg->nr_drives) {
        free((void *)cfg->drives[slot].id);
        free((void *)cfg->drives[slot].path);
    } else {
        cfg->nr_drives++;
    }
    cfg->drives[slot] = copy;
    c->reported.drive_writeback[slot] = writeback;
    c->configured = true;
    return 0;
}

int ctl_put_net(struct controller *c, const struct net_config *n, const char *mac_text, struct errmsg *err)
{
    int rc = ctl_check_phase(c, CTL_PRE_BOOT, err);
    if (rc)
        return rc;
    struct vm_config *cfg = &c->cfg;
    unsigned slot = cfg->nr_nets;
    for (unsigned i = 0; i < cfg->nr_nets; i++) {
        if (strcmp(cfg->nets[i].id, n->id) == 0) {
            slot = i; /* replaced: its tap and MAC do not count against the new one */
            continue;
        }
        if (strcmp(cfg->nets[i].tap, n->tap) == 0)
            return err_set(err, -EINVAL, "The host device name %s is already in use by another network interface.",
                           n->tap);
        if (n->has_mac && cfg->nets[i].has_mac && memcmp(cfg->nets[i].mac, n->mac, 6) == 0)
            return err_set(err, -EINVAL, "The MAC address %s is already in use by another network interface.",
                           mac_text);
    }
    if (slot == EMBER_MAX_NETS)
        return err_set(err, -EINVAL, "Too many network interfaces: Ember supports %d.", EMBER_MAX_NETS);
    struct net_config copy = *n;
    copy.id = copy.tap = NULL;
    if (vm_config_set_str(&copy.id, n->id) || vm_config_set_str(&copy.tap, n->tap)) {
        free((void *)copy.id);
        return no_memory(err);
    }
    if (slot < cfg->nr_nets) {
        free((void *)cfg->nets[slot].id);
        free((void *)cfg->nets[slot].tap);
    } else {
        cfg->nr_nets++;
    }
    cfg->nets[slot] = copy;
    snprintf(c->reported.guest_mac[slot], sizeof(c->reported.guest_mac[slot]), "%s", n->has_mac ? mac_text : "");
    c->configured = true;
    return 0;
}

int ctl_put_vsock(struct controller *c, uint32_t guest_cid, const char *uds_path, struct errmsg *err)
{
    int rc = ctl_check_phase(c, CTL_PRE_BOOT, err);
    if (rc)
        return rc;
    if (vm_config_set_str(&c->cfg.vsock.uds_path, uds_path))
        return no_memory(err);
    c->cfg.vsock.guest_cid = guest_cid;
    c->configured = true;
    return 0;
}

int ctl_set_serial(struct controller *c, const char *path, struct errmsg *err)
{
    int rc = ctl_check_phase(c, CTL_PRE_BOOT, err);
    if (!rc && vm_config_set_str(&c->cfg.serial_out_path, path && *path ? path : NULL))
        rc = no_memory(err);
    return rc;
}

/*
 * Opens a log or metrics output. A FIFO is opened read-write and non-blocking, as Firecracker does: that works
 * before anyone reads it (write-only would fail with ENXIO); holding a read end ourselves, a reader that goes
 * away never turns writes into EPIPE; and a full FIFO fails a write with EAGAIN (the line is dropped and counted)
 * instead of blocking a thread. Anything else is appended to, created owner-only. The fd, or -errno.
 */
static int open_output(const char *path)
{
    struct stat st;
    int fd;
    if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
        fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    else
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600);
    return fd < 0 ? -errno : fd;
}

int ctl_set_logger(struct controller *c, const char *path, const char *level, bool show_level, bool show_origin,
                   struct errmsg *err)
{
    enum log_level lv;
    const char *spelling;
    int rc = ctl_check_phase(c, CTL_PRE_BOOT, err);
    if (rc)
        return rc;
    if (log_parse_api_level(level, &lv, &spelling))
        return err_set(err, -EINVAL, "Unknown log level '%s': use one of " LOG_API_LEVEL_NAMES ".", level);
    char *path_copy = path ? strdup(path) : NULL;
    if (path && !path_copy)
        return no_memory(err);
    int fd = -1;
    if (path) {
        fd = open_output(path);
        if (fd < 0) {
            rc = err_set(err, fd, "Cannot open the log file '%s': %s", path, strerror(-fd));
            free(path_copy);
            return rc;
        }
    }
    log_set_level(lv);
    if (fd >= 0) {
        log_set_output(fd, c->instance_id, show_level);
        if (c->log_fd >= 0)
            close(c->log_fd);
        c->log_fd = fd;
    }
    c->logger_set = true;
    free(c->log_path);
    c->log_path = path_copy;
    c->log_level = spelling;
    c->show_level = show_level;
    c->show_log_origin = show_origin;
    return 0;
}

static void on_metrics_timer(void *opaque, uint32_t events)
{
    (void)events;
    struct controller *c = opaque;
    uint64_t n;
    if (read(c->metrics_timer_fd, &n, sizeof(n)) > 0) {
        struct errmsg e;
        if (ctl_flush_metrics(c, &e))
            log_warn("metrics: %s", e.text);
    }
}

int ctl_set_metrics(struct controller *c, const char *path, bool emit_id, json_t *properties, struct errmsg *err)
{
    int rc = ctl_check_phase(c, CTL_PRE_BOOT, err);
    if (rc)
        return rc;
    char *path_copy = strdup(path);
    json_t *props = properties ? json_deep_copy(properties) : NULL;
    if (!path_copy || (properties && !props)) {
        free(path_copy);
        json_decref(props);
        return no_memory(err);
    }
    int fd = open_output(path);
    if (fd < 0) {
        rc = err_set(err, fd, "Cannot open the metrics file '%s': %s", path, strerror(-fd));
        free(path_copy);
        json_decref(props);
        return rc;
    }
    if (c->metrics_fd >= 0)
        close(c->metrics_fd);
    drop_pending_metrics(c); /* it belonged to the old output */
    c->metrics_fd = fd;
    free(c->metrics_path);
    c->metrics_path = path_copy;
    c->metrics_emit_id = emit_id;
    json_decref(c->metrics_properties);
    c->metrics_properties = props;
    if (c->metrics_timer_fd < 0) {
        c->metrics_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        struct itimerspec its = {{METRICS_PERIOD_S, 0}, {METRICS_PERIOD_S, 0}};
        if (c->metrics_timer_fd >= 0 && timerfd_settime(c->metrics_timer_fd, 0, &its, NULL) == 0)
            evloop_add(&c->runner->loop, c->metrics_timer_fd, EPOLLIN, on_metrics_timer, c);
    }
    return 0;
}

/* ---- the transitions and runtime operations ---- */

int ctl_check_kernel_file(const char *path, struct errmsg *err)
{
    struct stat st;
    int fd = path_open_noblock(path, O_RDONLY | O_CLOEXEC, &st);
    if (fd < 0)
        return err_set(err, fd, "kernel '%s': %s", path, strerror(-fd));
    uint8_t head[0x210]; /* up to the end of a bzImage's "HdrS" magic */
    ssize_t n = S_ISREG(st.st_mode) ? pread(fd, head, sizeof(head), 0) : 0;
    int read_errno = errno;
    close(fd);
    if (!S_ISREG(st.st_mode))
        return err_set(err, -EINVAL, "kernel '%s' is %s, not a regular file", path, path_kind(st.st_mode));
    if (n < 0)
        return err_set(err, -read_errno, "kernel '%s': %s", path, strerror(read_errno));
    if (n == 0)
        return err_set(err, -EINVAL, "kernel '%s' is empty", path);
    if (kernel_detect(head, (size_t)n) == KFMT_UNKNOWN)
        return err_set(err, -ENOEXEC, "kernel '%s' is neither an ELF vmlinux nor a bzImage", path);
    return 0;
}

int ctl_start(struct controller *c, struct errmsg *err)
{
    int rc = ctl_check_phase(c, CTL_PRE_BOOT, err);
    if (rc)
        return rc;
    if (!c->cfg.kernel_path)
        return err_set(err, -EINVAL, "Cannot start microvm without kernel configuration.");
    /* Before /dev/kvm and a VM: a bad image gets this error on any host, at no VM's cost. */
    rc = ctl_check_kernel_file(c->cfg.kernel_path, err);
    if (!rc)
        rc = vm_create(c->vm, &c->cfg, &c->runner->loop, err);
    if (!rc)
        rc = runner_start_vm(c->runner, c->vm, err);
    if (rc) {
        /* A failed start leaves nothing behind and the API usable. */
        vm_destroy(c->vm);
        return rc;
    }
    c->state = CTL_RUNNING;
    return 0;
}

uint64_t ctl_us_since(uint64_t t0_ns) { return (now_ns() - t0_ns) / 1000; }

int ctl_pause(struct controller *c, struct errmsg *err)
{
    uint64_t t0 = now_ns();
    int rc = ctl_check_phase(c, CTL_POST_BOOT, err);
    if (rc)
        return rc;
    vm_pause(c->vm);
    c->latencies.vmm_pause_vm = c->latencies.pause_vm = ctl_us_since(t0);
    c->state = CTL_PAUSED;
    return 0;
}

int ctl_resume(struct controller *c, struct errmsg *err)
{
    uint64_t t0 = now_ns();
    int rc = ctl_check_phase(c, CTL_POST_BOOT, err);
    if (rc)
        return rc;
    vm_resume(c->vm);
    c->latencies.vmm_resume_vm = c->latencies.resume_vm = ctl_us_since(t0);
    c->state = CTL_RUNNING;
    return 0;
}

int ctl_send_ctrl_alt_del(struct controller *c, struct errmsg *err)
{
    int rc = ctl_check_phase(c, CTL_POST_BOOT, err);
    if (!rc && (rc = vm_ctrl_alt_del(c->vm)))
        err_set(err, rc, "The keyboard controller's buffer is full; try again.");
    return rc;
}

int ctl_update_drive(struct controller *c, const char *id, const char *path, struct errmsg *err)
{
    int rc = ctl_check_phase(c, CTL_POST_BOOT, err);
    if (rc)
        return rc;
    struct blk_config *d = NULL;
    for (unsigned i = 0; i < c->cfg.nr_drives; i++)
        if (strcmp(c->cfg.drives[i].id, id) == 0)
            d = &c->cfg.drives[i];
    if (!d)
        return err_set(err, -EINVAL, "Invalid value for field `drive_id`: no drive '%s' is attached.", id);
    if (!path)
        return 0;
    char *copy = strdup(path);
    if (!copy)
        return no_memory(err);
    rc = vm_replace_drive(c->vm, id, path, err);
    if (rc) {
        free(copy);
        return rc;
    }
    /* The VM read the old path only while it was built (vm_create): it may go. */
    free((void *)d->path);
    d->path = copy;
    return 0;
}

int ctl_update_net(struct controller *c, const char *id, struct errmsg *err)
{
    int rc = ctl_check_phase(c, CTL_POST_BOOT, err);
    if (rc)
        return rc;
    for (unsigned i = 0; i < c->cfg.nr_nets; i++)
        if (strcmp(c->cfg.nets[i].id, id) == 0)
            return 0;
    return err_set(err, -EINVAL, "Invalid value for field `iface_id`: no network interface '%s' is attached.", id);
}

static json_t *block_metrics(struct blk_counters sum)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "read_count", (json_int_t)sum.reads, "write_count",
                     (json_int_t)sum.writes, "flush_count", (json_int_t)sum.flushes, "read_bytes",
                     (json_int_t)sum.bytes_read, "write_bytes", (json_int_t)sum.bytes_written, "execute_fails",
                     (json_int_t)sum.errors, "invalid_reqs_count", (json_int_t)sum.unsupported,
                     "rate_limiter_throttled_events", (json_int_t)sum.throttled, "rate_limiter_event_count",
                     (json_int_t)sum.limiter_wakeups);
}

static json_t *net_metrics(struct net_counters sum)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "rx_packets_count",
                     (json_int_t)sum.rx_packets, "rx_bytes_count", (json_int_t)sum.rx_bytes, "tx_packets_count",
                     (json_int_t)sum.tx_packets, "tx_bytes_count", (json_int_t)sum.tx_bytes, "no_rx_avail_buffer",
                     (json_int_t)sum.rx_waits, "tap_write_agg", (json_int_t)sum.tx_waits, "rx_rate_limiter_throttled",
                     (json_int_t)sum.rx_throttled, "tx_rate_limiter_throttled", (json_int_t)sum.tx_throttled,
                     "rx_event_rate_limiter_count", (json_int_t)sum.rx_limiter_wakeups, "tx_rate_limiter_event_count",
                     (json_int_t)sum.tx_limiter_wakeups, "tap_read_fails", (json_int_t)sum.tap_read_fails,
                     "tap_write_fails", (json_int_t)sum.tap_write_fails);
}

static json_t *entropy_metrics(struct rng_counters sum)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "entropy_event_count", (json_int_t)sum.requests, "entropy_bytes",
                     (json_int_t)sum.bytes, "entropy_event_fails", (json_int_t)sum.bad_requests, "host_rng_fails",
                     (json_int_t)sum.host_fails, "entropy_rate_limiter_throttled", (json_int_t)sum.throttled,
                     "rate_limiter_event_count", (json_int_t)sum.limiter_wakeups);
}

/* Firecracker's vsock names where it has them (rx: to the guest); conns_refused and bad_packets are Ember's. */
static json_t *vsock_metrics(struct vsock_counters sum)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "rx_packets_count", (json_int_t)sum.rx_packets, "rx_bytes_count",
                     (json_int_t)sum.rx_bytes, "tx_packets_count", (json_int_t)sum.tx_packets, "tx_bytes_count",
                     (json_int_t)sum.tx_bytes, "conns_added", (json_int_t)sum.conns_opened, "conns_refused",
                     (json_int_t)sum.conns_refused, "bad_packets", (json_int_t)sum.bad_packets);
}

/* A failed write: a full output drops the line (counted, not an error), anything else is an error. */
static int metrics_write_failed(struct controller *c, int e, struct errmsg *err)
{
    if (e == EAGAIN || e == EWOULDBLOCK) {
        c->metrics_missed++;
        return 0;
    }
    c->metrics_fails++;
    return err_set(err, -e, "Cannot write metrics: %s", strerror(e));
}

/*
 * Writes line (taking it) whole or not at all, as the reader sees it. Up to PIPE_BUF bytes a write to a FIFO is
 * atomic; a longer line may go out in part when the FIFO fills. Its rest is kept and written first next time (the
 * VMM thread is the only writer), and a line that finds a rest still waiting is dropped: lines are never mixed.
 */
static int write_metrics_line(struct controller *c, char *line, size_t len, struct errmsg *err)
{
    if (c->metrics_pending) {
        size_t left = c->metrics_pending_len - c->metrics_pending_off;
        ssize_t w = write(c->metrics_fd, c->metrics_pending + c->metrics_pending_off, left);
        int e = w < 0 ? errno : EAGAIN;
        if (w > 0)
            c->metrics_pending_off += (size_t)w;
        if (c->metrics_pending_off < c->metrics_pending_len) {
            free(line);
            return metrics_write_failed(c, e, err);
        }
        drop_pending_metrics(c); /* written out */
    }
    ssize_t w = write(c->metrics_fd, line, len);
    if (w == (ssize_t)len) {
        free(line);
        return 0;
    }
    if (w <= 0) {
        int e = w < 0 ? errno : EAGAIN;
        free(line);
        return metrics_write_failed(c, e, err);
    }
    c->metrics_pending = line;
    c->metrics_pending_off = (size_t)w;
    c->metrics_pending_len = len;
    return 0;
}

int ctl_flush_metrics(struct controller *c, struct errmsg *err)
{
    if (c->metrics_fd < 0)
        return err_set(err, -EINVAL, "Metrics system not initialized: configure it with PUT /metrics first.");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *m = json_object();
    if (c->metrics_emit_id)
        json_object_set_new(m, "id", json_string(c->instance_id));
    if (c->metrics_properties)
        json_object_set(m, "properties", c->metrics_properties);
    json_object_set_new(m, "utc_timestamp_ms", json_integer((json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000));
    json_object_set_new(m, "logger",
                        json_pack("{s:I,s:I,s:I,s:I}", "missed_metrics_count", (json_int_t)c->metrics_missed,
                                  "metrics_fails", (json_int_t)c->metrics_fails, "missed_log_count",
                                  (json_int_t)log_missed_lines(), "log_fails", (json_int_t)log_failed_lines()));
    if (c->state != CTL_NOT_STARTED) {
        struct vm_metrics vm;
        vm_metrics(c->vm, &vm);
        struct exit_stats sum = vm.vcpu;
        json_object_set_new(m, "vcpu",
                            json_pack("{s:I,s:I,s:I,s:I,s:I}", "exit_io", (json_int_t)sum.exits[EXIT_PIO], "exit_mmio",
                                      (json_int_t)sum.exits[EXIT_MMIO], "exit_internal_error",
                                      (json_int_t)sum.exits[EXIT_INTERNAL], "exit_unclaimed_io",
                                      (json_int_t)sum.exits[EXIT_UNCLAIMED_PIO], "exit_unclaimed_mmio",
                                      (json_int_t)sum.exits[EXIT_UNCLAIMED_MMIO]));
        json_t *interp = json_object();
        for (int k = 0; k < INSN_KINDS; k++)
            json_object_set_new(interp, interp_insn_name((enum interp_insn)k), json_integer((json_int_t)sum.insns[k]));
        json_object_set_new(m, "interpreter", interp);
        json_object_set_new(m, "uart", json_pack("{s:I}", "write_count", (json_int_t)vm.serial_tx_bytes));
        json_object_set_new(m, "block", block_metrics(vm.blk));
        json_object_set_new(m, "net", net_metrics(vm.net));
        json_object_set_new(m, "entropy", entropy_metrics(vm.rng));
        json_object_set_new(m, "vsock", vsock_metrics(vm.vsock));
        json_object_set_new(m, "balloon", api_balloon_metrics(&vm.balloon));
    }
    json_object_set_new(m, "mmds", api_mmds_metrics(c));
    const struct ctl_latencies *l = &c->latencies;
    json_object_set_new(m, "latencies_us",
                        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "full_create_snapshot",
                                  (json_int_t)l->full_create_snapshot, "diff_create_snapshot",
                                  (json_int_t)l->diff_create_snapshot, "load_snapshot", (json_int_t)l->load_snapshot,
                                  "pause_vm", (json_int_t)l->pause_vm, "resume_vm", (json_int_t)l->resume_vm,
                                  "vmm_full_create_snapshot", (json_int_t)l->vmm_full_create_snapshot,
                                  "vmm_diff_create_snapshot", (json_int_t)l->vmm_diff_create_snapshot,
                                  "vmm_load_snapshot", (json_int_t)l->vmm_load_snapshot, "vmm_pause_vm",
                                  (json_int_t)l->vmm_pause_vm, "vmm_resume_vm", (json_int_t)l->vmm_resume_vm));
    char *line = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    if (!line)
        return err_set(err, -ENOMEM, "out of memory");
    size_t len = strlen(line);
    line[len] = '\n'; /* json_dumps leaves room for the NUL: reuse it for the newline */
    c->metrics_flushes++;
    return write_metrics_line(c, line, len + 1, err);
}
