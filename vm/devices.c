/*
 * The machine's devices: one table row per device type, realized in order
 * into the VM's instance list, which is what teardown, lookups (drive swap,
 * Ctrl-Alt-Del, console input) and metrics walk. Adding a device is its own
 * file under devices/ with a `struct device_ops`, plus one row here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/path_open.h"
#include "devices/cmos.h"
#include "devices/i8042.h"
#include "devices/serial.h"
#include "devices/sink.h"
#include "vm/virtio_devices.h"
#include "vm/vm_internal.h"

/* Configurations of a per-instance row: how many, and the i-th. */
struct row_configs {
    unsigned (*count)(const struct vm_config *cfg);
    const void *(*config)(const struct vm_config *cfg, unsigned i, const char **id);
};

static unsigned drive_count(const struct vm_config *cfg) { return cfg->nr_drives; }

/* The root drive first, so the guest names it /dev/vda; the rest keep their order. */
static const void *drive_config(const struct vm_config *cfg, unsigned i, const char **id)
{
    unsigned k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (unsigned j = 0; j < cfg->nr_drives; j++)
            if (cfg->drives[j].root == !pass && k++ == i) {
                *id = cfg->drives[j].id;
                return &cfg->drives[j];
            }
    return NULL;
}

static unsigned nic_count(const struct vm_config *cfg) { return cfg->nr_nets; }

static const void *nic_config(const struct vm_config *cfg, unsigned i, const char **id)
{
    *id = cfg->nets[i].id;
    return &cfg->nets[i];
}

static unsigned entropy_count(const struct vm_config *cfg) { return cfg->has_entropy ? 1 : 0; }

static const void *entropy_config(const struct vm_config *cfg, unsigned i, const char **id)
{
    (void)i;
    *id = "entropy";
    return &cfg->entropy;
}

static unsigned vsock_count(const struct vm_config *cfg) { return cfg->vsock.uds_path ? 1 : 0; }

static const void *vsock_config(const struct vm_config *cfg, unsigned i, const char **id)
{
    (void)i;
    *id = "vsock";
    return &cfg->vsock;
}

static unsigned balloon_count(const struct vm_config *cfg) { return cfg->has_balloon ? 1 : 0; }

static const void *balloon_config(const struct vm_config *cfg, unsigned i, const char **id)
{
    (void)i;
    *id = "balloon";
    return &cfg->balloon;
}

static const struct row_configs each_drive = {drive_count, drive_config};
static const struct row_configs each_nic = {nic_count, nic_config};
static const struct row_configs each_entropy = {entropy_count, entropy_config};
static const struct row_configs the_vsock = {vsock_count, vsock_config};
static const struct row_configs the_balloon = {balloon_count, balloon_config};

/* In realize order; a NULL `each` is one instance without configuration. */
static const struct device_row {
    const struct device_ops *ops;
    const struct row_configs *each;
} device_table[] = {
    {&serial_device_ops, NULL},
    {&i8042_device_ops, NULL},
    {&cmos_device_ops, NULL},
    {&post_code_device_ops, NULL},
    {&no_pci_device_ops, NULL},
    {&vm_virtio_balloon_device_ops, &the_balloon},
    {&vm_virtio_blk_device_ops, &each_drive},
    {&vm_virtio_net_device_ops, &each_nic},
    {&vm_virtio_rng_device_ops, &each_entropy},
    {&vm_virtio_vsock_device_ops, &the_vsock},
};

static void request_reset(void *ctx) { vm_request_end(ctx, VM_END_RESET, "guest requested a reset through the i8042"); }

static int cmdline_append(void *ctx, const char *arg)
{
    struct vm *vm = ctx;
    size_t len = strlen(vm->dev_cmdline);
    int n = snprintf(vm->dev_cmdline + len, sizeof(vm->dev_cmdline) - len, "%s%s", len ? " " : "", arg);
    if (n < 0 || (size_t)n >= sizeof(vm->dev_cmdline) - len) {
        vm->dev_cmdline[len] = '\0';
        return -E2BIG;
    }
    return 0;
}

static int realize_one(struct vm *vm, const struct device_env *env, const struct device_ops *ops, const void *config,
                       const char *id, struct errmsg *err)
{
    if (vm->nr_devices == VM_MAX_DEVICES)
        return err_set(err, -ENOSPC, "%s: more devices than a VM holds (%d)", id, VM_MAX_DEVICES);
    struct device_instance *d = &vm->devices[vm->nr_devices];
    d->ops = ops;
    d->id = id;
    d->dev = NULL;
    int rc = ops->realize(env, config, &d->dev, err);
    vm->nr_devices++; /* counted even on failure so teardown releases what realize made */
    return rc;
}

int vm_devices_realize(struct vm *vm, struct errmsg *err)
{
    int out_fd = STDOUT_FILENO;
    if (vm->cfg.serial_out_path) {
        struct stat st;
        out_fd = path_open_noblock(vm->cfg.serial_out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, &st);
        if (out_fd < 0)
            return err_set(err, out_fd, "serial output '%s': %s", vm->cfg.serial_out_path, strerror(-out_fd));
        vm->serial_out_fd = out_fd;
    }
    const struct device_env env = {
        .alloc = &vm->alloc,
        .loop = vm->loop,
        .vm_fd = vm->vm_fd,
        .console_fd = out_fd,
        .ctx = vm,
        .irq_set = vm_irq_set,
        .request_reset = request_reset,
        .cmdline_append = cmdline_append,
    };
    for (size_t r = 0; r < sizeof(device_table) / sizeof(device_table[0]); r++) {
        const struct device_row *row = &device_table[r];
        unsigned n = row->each ? row->each->count(&vm->cfg) : 1;
        for (unsigned i = 0; i < n; i++) {
            const char *id = row->ops->name;
            const void *config = row->each ? row->each->config(&vm->cfg, i, &id) : NULL;
            int rc = realize_one(vm, &env, row->ops, config, id, err);
            if (rc)
                return rc;
        }
    }
    return 0;
}

void vm_devices_teardown(struct vm *vm)
{
    for (unsigned i = vm->nr_devices; i-- > 0;)
        vm->devices[i].ops->teardown(vm->devices[i].dev);
    vm->nr_devices = 0;
    if (vm->serial_out_fd >= 0)
        close(vm->serial_out_fd);
    vm->serial_out_fd = -1;
}

void *vm_device_find(struct vm *vm, const struct device_ops *ops, const char *id)
{
    for (unsigned i = 0; i < vm->nr_devices; i++) {
        const struct device_instance *d = &vm->devices[i];
        if (d->ops == ops && d->dev && (!id || strcmp(d->id, id) == 0))
            return d->dev;
    }
    return NULL;
}

/* Where a device type's named counter lands in struct vm_metrics. */
static const struct metric_slot {
    const char *type, *name;
    size_t offset;
} metric_slots[] = {
    {"serial", "write_count", offsetof(struct vm_metrics, serial_tx_bytes)},
    {"virtio-blk", "reads", offsetof(struct vm_metrics, blk.reads)},
    {"virtio-blk", "writes", offsetof(struct vm_metrics, blk.writes)},
    {"virtio-blk", "flushes", offsetof(struct vm_metrics, blk.flushes)},
    {"virtio-blk", "get_ids", offsetof(struct vm_metrics, blk.get_ids)},
    {"virtio-blk", "errors", offsetof(struct vm_metrics, blk.errors)},
    {"virtio-blk", "unsupported", offsetof(struct vm_metrics, blk.unsupported)},
    {"virtio-blk", "bytes_read", offsetof(struct vm_metrics, blk.bytes_read)},
    {"virtio-blk", "bytes_written", offsetof(struct vm_metrics, blk.bytes_written)},
    {"virtio-blk", "rate_limiter_throttled_events", offsetof(struct vm_metrics, blk.throttled)},
    {"virtio-blk", "rate_limiter_event_count", offsetof(struct vm_metrics, blk.limiter_wakeups)},
    {"virtio-net", "rx_packets", offsetof(struct vm_metrics, net.rx_packets)},
    {"virtio-net", "rx_bytes", offsetof(struct vm_metrics, net.rx_bytes)},
    {"virtio-net", "tx_packets", offsetof(struct vm_metrics, net.tx_packets)},
    {"virtio-net", "tx_bytes", offsetof(struct vm_metrics, net.tx_bytes)},
    {"virtio-net", "rx_waits", offsetof(struct vm_metrics, net.rx_waits)},
    {"virtio-net", "tx_waits", offsetof(struct vm_metrics, net.tx_waits)},
    {"virtio-net", "rx_rate_limiter_throttled", offsetof(struct vm_metrics, net.rx_throttled)},
    {"virtio-net", "tx_rate_limiter_throttled", offsetof(struct vm_metrics, net.tx_throttled)},
    {"virtio-net", "rx_event_rate_limiter_count", offsetof(struct vm_metrics, net.rx_limiter_wakeups)},
    {"virtio-net", "tx_rate_limiter_event_count", offsetof(struct vm_metrics, net.tx_limiter_wakeups)},
    {"virtio-net", "tap_read_fails", offsetof(struct vm_metrics, net.tap_read_fails)},
    {"virtio-net", "tap_write_fails", offsetof(struct vm_metrics, net.tap_write_fails)},
    {"virtio-rng", "entropy_event_count", offsetof(struct vm_metrics, rng.requests)},
    {"virtio-rng", "entropy_bytes", offsetof(struct vm_metrics, rng.bytes)},
    {"virtio-rng", "entropy_event_fails", offsetof(struct vm_metrics, rng.bad_requests)},
    {"virtio-rng", "host_rng_fails", offsetof(struct vm_metrics, rng.host_fails)},
    {"virtio-rng", "entropy_rate_limiter_throttled", offsetof(struct vm_metrics, rng.throttled)},
    {"virtio-rng", "rate_limiter_event_count", offsetof(struct vm_metrics, rng.limiter_wakeups)},
    {"virtio-vsock", "rx_packets", offsetof(struct vm_metrics, vsock.rx_packets)},
    {"virtio-vsock", "rx_bytes", offsetof(struct vm_metrics, vsock.rx_bytes)},
    {"virtio-vsock", "tx_packets", offsetof(struct vm_metrics, vsock.tx_packets)},
    {"virtio-vsock", "tx_bytes", offsetof(struct vm_metrics, vsock.tx_bytes)},
    {"virtio-vsock", "conns_opened", offsetof(struct vm_metrics, vsock.conns_opened)},
    {"virtio-vsock", "conns_refused", offsetof(struct vm_metrics, vsock.conns_refused)},
    {"virtio-vsock", "bad_packets", offsetof(struct vm_metrics, vsock.bad_packets)},
    {"virtio-balloon", "activate_fails", offsetof(struct vm_metrics, balloon.activate_fails)},
    {"virtio-balloon", "inflate_count", offsetof(struct vm_metrics, balloon.inflate_count)},
    {"virtio-balloon", "deflate_count", offsetof(struct vm_metrics, balloon.deflate_count)},
    {"virtio-balloon", "stats_updates_count", offsetof(struct vm_metrics, balloon.stats_updates)},
    {"virtio-balloon", "stats_update_fails", offsetof(struct vm_metrics, balloon.stats_fails)},
    {"virtio-balloon", "event_fails", offsetof(struct vm_metrics, balloon.event_fails)},
    {"virtio-balloon", "pages_inflated", offsetof(struct vm_metrics, balloon.pages_inflated)},
    {"virtio-balloon", "pages_deflated", offsetof(struct vm_metrics, balloon.pages_deflated)},
    {"virtio-balloon", "hostile_pfns", offsetof(struct vm_metrics, balloon.hostile_pfns)},
    {"virtio-balloon", "discard_fails", offsetof(struct vm_metrics, balloon.discard_fails)},
};

struct metric_sum {
    struct vm_metrics *m;
    const char *type;
};

static void add_metric(void *ctx, const char *name, uint64_t value)
{
    struct metric_sum *s = ctx;
    for (size_t i = 0; i < sizeof(metric_slots) / sizeof(metric_slots[0]); i++)
        if (!strcmp(metric_slots[i].type, s->type) && !strcmp(metric_slots[i].name, name))
            *(uint64_t *)((char *)s->m + metric_slots[i].offset) += value;
}

void vm_devices_metrics(struct vm *vm, struct vm_metrics *m)
{
    for (unsigned i = 0; i < vm->nr_devices; i++) {
        const struct device_instance *d = &vm->devices[i];
        struct metric_sum s = {m, d->ops->name};
        if (d->ops->metrics && d->dev)
            d->ops->metrics(d->dev, add_metric, &s);
    }
}
