#include "api/controller.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "vm/runner.h"
#include "vm/vm.h"

#define METRICS_PERIOD_S 60 /* Firecracker flushes metrics every 60 s */

void ctl_init(struct controller *c, struct runner *r, struct vm *vm, const char *instance_id)
{
    memset(c, 0, sizeof(*c));
    c->runner = r;
    c->vm = vm;
    c->instance_id = instance_id;
    c->state = CTL_NOT_STARTED;
    c->vcpu_count = 1;
    c->mem_mib = 128;
    c->metrics_fd = c->metrics_timer_fd = c->log_fd = -1;
    c->host_compat = HOST_COMPAT_AUTO;
    c->use_pvh = 1;
}

void ctl_destroy(struct controller *c)
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
    json_decref(c->metrics_properties);
    c->metrics_properties = NULL;
    if (c->log_fd >= 0) {
        log_set_output(-1, NULL, 0);
        close(c->log_fd);
        c->log_fd = -1;
    }
}

const char *ctl_state_name(const struct controller *c)
{
    static const char *const n[] = {"Not started", "Running", "Paused"};
    return n[c->state];
}

int ctl_from_cli(struct controller *c, const struct vm_config *cfg, struct errmsg *err)
{
    c->vcpu_count = cfg->vcpus;
    c->mem_mib = cfg->mem_mib;
    c->host_compat = cfg->host_compat;
    c->decompress = cfg->decompress;
    c->use_pvh = cfg->use_pvh;
    c->print_stats = cfg->print_stats;
    if (cfg->kernel_path) {
        c->boot_set = true;
        snprintf(c->kernel, sizeof(c->kernel), "%s", cfg->kernel_path);
    }
    if ((c->has_initrd = cfg->initrd_path != NULL))
        snprintf(c->initrd, sizeof(c->initrd), "%s", cfg->initrd_path);
    if ((c->has_boot_args = cfg->cmdline != NULL))
        snprintf(c->boot_args, sizeof(c->boot_args), "%s", cfg->cmdline);
    for (unsigned i = 0; i < cfg->nr_drives; i++) {
        struct ctl_drive *d = &c->drives[c->nr_drives++];
        memset(d, 0, sizeof(*d));
        snprintf(d->id, sizeof(d->id), "%s", cfg->drives[i].id);
        snprintf(d->path, sizeof(d->path), "%s", cfg->drives[i].path);
        d->root = cfg->drives[i].root;
        d->read_only = cfg->drives[i].read_only;
        d->engine = cfg->drives[i].engine;
        snprintf(d->cache_type, sizeof(d->cache_type), "Unsafe");
    }
    for (unsigned i = 0; i < cfg->nr_nets; i++) {
        struct ctl_net *n = &c->nets[c->nr_nets++];
        memset(n, 0, sizeof(*n));
        snprintf(n->id, sizeof(n->id), "%s", cfg->nets[i].id);
        snprintf(n->tap, sizeof(n->tap), "%s", cfg->nets[i].tap);
        if ((n->has_mac = cfg->nets[i].has_mac)) {
            memcpy(n->mac, cfg->nets[i].mac, 6);
            snprintf(n->mac_text, sizeof(n->mac_text), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
                     n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
        }
    }
    if (cfg->serial_out_path) {
        c->serial_set = true;
        snprintf(c->serial_out, sizeof(c->serial_out), "%s", cfg->serial_out_path);
    }
    (void)err;
    return 0;
}

int ctl_start(struct controller *c, struct errmsg *err)
{
    if (c->state != CTL_NOT_STARTED)
        return err_set(err, -EINVAL, "The requested operation is not supported after starting the microVM.");
    if (!c->boot_set)
        return err_set(err, -EINVAL, "Cannot start microvm without kernel configuration.");
    struct vm_config cfg;
    vm_config_defaults(&cfg);
    cfg.kernel_path = c->kernel;
    cfg.initrd_path = c->has_initrd ? c->initrd : NULL;
    cfg.cmdline = c->has_boot_args ? c->boot_args : NULL;
    cfg.vcpus = c->vcpu_count;
    cfg.mem_mib = c->mem_mib;
    cfg.host_compat = c->host_compat;
    cfg.decompress = c->decompress;
    cfg.use_pvh = c->use_pvh;
    cfg.print_stats = c->print_stats;
    cfg.serial_out_path = c->serial_set && c->serial_out[0] ? c->serial_out : NULL;
    for (unsigned i = 0; i < c->nr_drives; i++) {
        const struct ctl_drive *d = &c->drives[i];
        cfg.drives[cfg.nr_drives++] = (struct blk_config){.id = d->id, .path = d->path, .read_only = d->read_only,
                                                          .root = d->root, .engine = d->engine};
    }
    for (unsigned i = 0; i < c->nr_nets; i++) {
        const struct ctl_net *n = &c->nets[i];
        struct net_config *nc = &cfg.nets[cfg.nr_nets++];
        memset(nc, 0, sizeof(*nc));
        nc->id = n->id;
        nc->tap = n->tap;
        nc->has_mac = n->has_mac;
        memcpy(nc->mac, n->mac, 6);
    }
    int rc = vm_create(c->vm, &cfg, &c->runner->loop, err);
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

static json_t *block_metrics(struct blk_counters sum)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "read_count", (json_int_t)sum.reads, "write_count",
                     (json_int_t)sum.writes, "flush_count", (json_int_t)sum.flushes, "read_bytes",
                     (json_int_t)sum.bytes_read, "write_bytes", (json_int_t)sum.bytes_written, "execute_fails",
                     (json_int_t)sum.errors, "invalid_reqs_count", (json_int_t)sum.unsupported);
}

static json_t *net_metrics(struct net_counters sum)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "rx_packets_count", (json_int_t)sum.rx_packets, "rx_bytes_count",
                     (json_int_t)sum.rx_bytes, "tx_packets_count", (json_int_t)sum.tx_packets, "tx_bytes_count",
                     (json_int_t)sum.tx_bytes, "no_rx_avail_buffer", (json_int_t)sum.rx_waits, "tap_write_agg",
                     (json_int_t)sum.tx_waits);
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
    json_object_set_new(m, "logger", json_pack("{s:I}", "missed_log_count", (json_int_t)log_missed_lines()));
    if (c->state != CTL_NOT_STARTED) {
        struct vm_metrics vm;
        vm_metrics(c->vm, &vm);
        struct exit_stats sum = vm.vcpu;
        json_object_set_new(m, "vcpu", json_pack("{s:I,s:I,s:I,s:I,s:I}", "exit_io", (json_int_t)sum.exits[EXIT_PIO],
                                                 "exit_mmio", (json_int_t)sum.exits[EXIT_MMIO], "exit_internal_error",
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
    }
    char *line = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    if (!line)
        return err_set(err, -ENOMEM, "out of memory");
    size_t len = strlen(line);
    line[len] = '\n'; /* json_dumps leaves room for the NUL: reuse it for the newline */
    ssize_t w = write(c->metrics_fd, line, len + 1);
    free(line);
    c->metrics_flushes++;
    if (w < 0 && errno != EAGAIN)
        return err_set(err, -errno, "Cannot write metrics: %s", strerror(errno));
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

int ctl_set_metrics(struct controller *c, const char *path, struct errmsg *err)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_set(err, -errno, "Cannot open the metrics file '%s': %s", path, strerror(errno));
    if (c->metrics_fd >= 0)
        close(c->metrics_fd);
    c->metrics_fd = fd;
    snprintf(c->metrics_path, sizeof(c->metrics_path), "%s", path);
    c->metrics_set = true;
    if (c->metrics_timer_fd < 0) {
        c->metrics_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        struct itimerspec its = {{METRICS_PERIOD_S, 0}, {METRICS_PERIOD_S, 0}};
        if (c->metrics_timer_fd >= 0 && timerfd_settime(c->metrics_timer_fd, 0, &its, NULL) == 0)
            evloop_add(&c->runner->loop, c->metrics_timer_fd, EPOLLIN, on_metrics_timer, c);
    }
    return 0;
}

int ctl_set_logger(struct controller *c, const char *path, const char *level, bool show_level, bool show_origin,
                   struct errmsg *err)
{
    int fd = -1;
    if (path) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600);
        if (fd < 0)
            return err_set(err, -errno, "Cannot open the log file '%s': %s", path, strerror(errno));
    }
    static const struct { const char *fc; int level; } levels[] = {
        {"Error", LOG_ERROR}, {"Warning", LOG_WARN}, {"Info", LOG_INFO}, {"Debug", LOG_DEBUG}, {"Trace", LOG_DEBUG}, {"Off", -1}};
    int lv = LOG_INFO;
    for (unsigned i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if (strcasecmp(level, levels[i].fc) == 0)
            lv = levels[i].level;
    if (lv < 0)
        lv = LOG_ERROR; /* "Off": errors still matter to the operator; they stay on */
    log_set_level((enum log_level)lv);
    if (fd >= 0) {
        log_set_output(fd, c->instance_id, show_level);
        if (c->log_fd >= 0)
            close(c->log_fd);
        c->log_fd = fd;
    }
    c->logger_set = true;
    snprintf(c->log_path, sizeof(c->log_path), "%s", path ? path : "");
    snprintf(c->log_level, sizeof(c->log_level), "%s", level);
    c->show_level = show_level;
    c->show_log_origin = show_origin;
    return 0;
}
