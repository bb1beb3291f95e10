#include "vm/virtio_devices.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "devices/virtio/balloon.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/net.h"
#include "devices/virtio/rng.h"
#include "devices/virtio/vsock.h"

struct virtio_instance {
    struct virtio_mmio mmio;
    int mmio_made; /* virtio_mmio_init ran (even if it failed): teardown releases it */
    struct virtio_blk *blk;
    struct virtio_net *net;
    struct virtio_rng *rng;
    struct virtio_vsock *vsock;
    struct virtio_balloon *balloon;
};

/* Grants a 4 KiB MMIO slot routed to the transport and a GSI, sets the transport up, tells the guest. */
static int attach(const struct device_env *env, struct virtio_instance *vi, const char *name,
                  const struct virtio_dev_ops *ops, void *model, struct errmsg *err)
{
    uint64_t base;
    uint32_t gsi;
    /* Routed before the transport exists: nothing dispatches before the vCPUs start. */
    int rc = alloc_claim_mmio_slot(env->alloc, VIRTIO_MMIO_SIZE, name, &virtio_mmio_io_ops, &vi->mmio, &base);
    if (!rc)
        rc = alloc_gsi(env->alloc, name, &gsi);
    if (rc)
        return err_set(err, rc, "%s: no MMIO slot or IRQ line left for it", name);
    rc = virtio_mmio_init(&vi->mmio, name, ops, model, &env->alloc->mem, env->loop, env->vm_fd, base, gsi,
                          device_irq_line(env, gsi));
    vi->mmio_made = 1;
    if (rc)
        return err_set(err, rc, "%s: cannot set up its virtio-mmio transport: %s", name, strerror(-rc));
    char arg[64];
    snprintf(arg, sizeof(arg), "virtio_mmio.device=4K@%#llx:%u", (unsigned long long)base, gsi);
    rc = env->cmdline_append(env->ctx, arg);
    if (rc)
        return err_set(err, rc, "%s: no room left on the kernel command line to announce it", name);
    return 0;
}

static struct virtio_instance *instance_new(void **dev, struct errmsg *err)
{
    struct virtio_instance *vi = calloc(1, sizeof(*vi));
    *dev = vi;
    if (!vi)
        err_set(err, -ENOMEM, "out of memory");
    return vi;
}

static int blk_realize(const struct device_env *env, const void *config, void **dev, struct errmsg *err)
{
    const struct blk_config *d = config;
    struct virtio_instance *vi = instance_new(dev, err);
    if (!vi)
        return -ENOMEM;
    int rc = virtio_blk_create(&vi->blk, d, err);
    if (!rc)
        rc = attach(env, vi, d->id, &virtio_blk_ops, vi->blk, err);
    if (!rc && d->root) {
        rc = env->cmdline_append(env->ctx, d->read_only ? "root=/dev/vda ro" : "root=/dev/vda rw");
        if (rc)
            err_set(err, rc, "%s: no room left on the kernel command line for root=", d->id);
    }
    return rc;
}

static int net_realize(const struct device_env *env, const void *config, void **dev, struct errmsg *err)
{
    const struct net_config *n = config;
    struct virtio_instance *vi = instance_new(dev, err);
    if (!vi)
        return -ENOMEM;
    int rc = virtio_net_create(&vi->net, n, err);
    return rc ? rc : attach(env, vi, n->id, &virtio_net_ops, vi->net, err);
}

static int rng_realize(const struct device_env *env, const void *config, void **dev, struct errmsg *err)
{
    struct virtio_instance *vi = instance_new(dev, err);
    if (!vi)
        return -ENOMEM;
    int rc = virtio_rng_create(&vi->rng, config, err);
    return rc ? rc : attach(env, vi, "entropy", &virtio_rng_ops, vi->rng, err);
}

static int vsock_realize(const struct device_env *env, const void *config, void **dev, struct errmsg *err)
{
    const struct vsock_config *v = config;
    struct virtio_instance *vi = instance_new(dev, err);
    if (!vi)
        return -ENOMEM;
    int rc = virtio_vsock_create(&vi->vsock, v, err);
    return rc ? rc : attach(env, vi, "vsock", &virtio_vsock_ops, vi->vsock, err);
}

static int balloon_realize(const struct device_env *env, const void *config, void **dev, struct errmsg *err)
{
    struct virtio_instance *vi = instance_new(dev, err);
    if (!vi)
        return -ENOMEM;
    int rc = virtio_balloon_create(&vi->balloon, config, err);
    return rc ? rc : attach(env, vi, "balloon", &virtio_balloon_ops, vi->balloon, err);
}

static void teardown(void *dev)
{
    struct virtio_instance *vi = dev;
    if (!vi)
        return;
    /* Where each queue stood when the VM ended: what a stalled guest was waiting for. */
    if (vi->mmio_made && log_get_level() >= LOG_DEBUG)
        virtio_dev_log_state(&vi->mmio.vdev);
    if (vi->mmio_made)
        virtio_mmio_destroy(&vi->mmio);
    if (vi->blk)
        virtio_blk_free(vi->blk);
    if (vi->net)
        virtio_net_free(vi->net);
    if (vi->rng)
        virtio_rng_free(vi->rng);
    if (vi->vsock)
        virtio_vsock_free(vi->vsock);
    if (vi->balloon)
        virtio_balloon_free(vi->balloon);
    free(vi);
}

static void blk_metrics(void *dev, device_emit_fn *emit, void *ctx)
{
    struct virtio_instance *vi = dev;
    struct blk_counters c = virtio_blk_counters(vi->blk);
    emit(ctx, "reads", c.reads);
    emit(ctx, "writes", c.writes);
    emit(ctx, "flushes", c.flushes);
    emit(ctx, "get_ids", c.get_ids);
    emit(ctx, "errors", c.errors);
    emit(ctx, "unsupported", c.unsupported);
    emit(ctx, "bytes_read", c.bytes_read);
    emit(ctx, "bytes_written", c.bytes_written);
    emit(ctx, "rate_limiter_throttled_events", c.throttled);
    emit(ctx, "rate_limiter_event_count", c.limiter_wakeups);
}

static void net_metrics(void *dev, device_emit_fn *emit, void *ctx)
{
    struct virtio_instance *vi = dev;
    struct net_counters c = virtio_net_counters(vi->net);
    emit(ctx, "rx_packets", c.rx_packets);
    emit(ctx, "rx_bytes", c.rx_bytes);
    emit(ctx, "tx_packets", c.tx_packets);
    emit(ctx, "tx_bytes", c.tx_bytes);
    emit(ctx, "rx_waits", c.rx_waits);
    emit(ctx, "tx_waits", c.tx_waits);
    emit(ctx, "rx_rate_limiter_throttled", c.rx_throttled);
    emit(ctx, "tx_rate_limiter_throttled", c.tx_throttled);
    emit(ctx, "rx_event_rate_limiter_count", c.rx_limiter_wakeups);
    emit(ctx, "tx_rate_limiter_event_count", c.tx_limiter_wakeups);
    emit(ctx, "tap_read_fails", c.tap_read_fails);
    emit(ctx, "tap_write_fails", c.tap_write_fails);
}

static void rng_metrics(void *dev, device_emit_fn *emit, void *ctx)
{
    struct virtio_instance *vi = dev;
    struct rng_counters c = virtio_rng_counters(vi->rng);
    emit(ctx, "entropy_event_count", c.requests);
    emit(ctx, "entropy_bytes", c.bytes);
    emit(ctx, "entropy_event_fails", c.bad_requests);
    emit(ctx, "host_rng_fails", c.host_fails);
    emit(ctx, "entropy_rate_limiter_throttled", c.throttled);
    emit(ctx, "rate_limiter_event_count", c.limiter_wakeups);
}

/* A drive's state: its requests in flight completed first, then the transport and queues. */
static int blk_save(void *dev, struct state_writer *w)
{
    struct virtio_instance *vi = dev;
    virtio_blk_quiesce(vi->blk);
    return virtio_mmio_save(&vi->mmio, w);
}

/*
 * A NIC has no state beyond its queues: a frame the tap held at the snapshot is lost, as on a real wire.
 * Nor has the entropy device (requests are served whole); limiters restart full, as Firecracker's do.
 */
static int net_save(void *dev, struct state_writer *w)
{
    struct virtio_instance *vi = dev;
    return virtio_mmio_save(&vi->mmio, w);
}

static int virtio_restore(void *dev, struct state_reader *r, struct errmsg *err)
{
    struct virtio_instance *vi = dev;
    return virtio_mmio_restore(&vi->mmio, r, err);
}

static void vsock_metrics(void *dev, device_emit_fn *emit, void *ctx)
{
    struct virtio_instance *vi = dev;
    struct vsock_counters c = virtio_vsock_counters(vi->vsock);
    emit(ctx, "rx_packets", c.rx_packets);
    emit(ctx, "rx_bytes", c.rx_bytes);
    emit(ctx, "tx_packets", c.tx_packets);
    emit(ctx, "tx_bytes", c.tx_bytes);
    emit(ctx, "conns_opened", c.conns_opened);
    emit(ctx, "conns_refused", c.conns_refused);
    emit(ctx, "bad_packets", c.bad_packets);
}

/* Connections are not saved (Firecracker's model): the host side of each is gone after a load. */
static int vsock_save(void *dev, struct state_writer *w)
{
    struct virtio_instance *vi = dev;
    return virtio_mmio_save(&vi->mmio, w);
}

/* The guest is told its connections are gone: TRANSPORT_RESET at the event-queue kick of the resume. */
static int vsock_restore(void *dev, struct state_reader *r, struct errmsg *err)
{
    struct virtio_instance *vi = dev;
    int rc = virtio_mmio_restore(&vi->mmio, r, err);
    if (!rc)
        virtio_vsock_restored(vi->vsock);
    return rc;
}

static void balloon_metrics(void *dev, device_emit_fn *emit, void *ctx)
{
    struct virtio_instance *vi = dev;
    struct balloon_counters c = virtio_balloon_counters(vi->balloon);
    emit(ctx, "activate_fails", c.activate_fails);
    emit(ctx, "inflate_count", c.inflate_count);
    emit(ctx, "deflate_count", c.deflate_count);
    emit(ctx, "stats_updates_count", c.stats_updates);
    emit(ctx, "stats_update_fails", c.stats_fails);
    emit(ctx, "event_fails", c.event_fails);
    emit(ctx, "pages_inflated", c.pages_inflated);
    emit(ctx, "pages_deflated", c.pages_deflated);
    emit(ctx, "hostile_pfns", c.hostile_pfns);
    emit(ctx, "discard_fails", c.discard_fails);
}

/* The transport and queues, then the balloon's own section (target, actual, statistics, inflated pages). */
static int balloon_save(void *dev, struct state_writer *w)
{
    struct virtio_instance *vi = dev;
    int rc = virtio_mmio_save(&vi->mmio, w);
    return rc ? rc : virtio_balloon_save(vi->balloon, w);
}

static int balloon_restore(void *dev, struct state_reader *r, struct errmsg *err)
{
    struct virtio_instance *vi = dev;
    int rc = virtio_mmio_restore(&vi->mmio, r, err);
    return rc ? rc : virtio_balloon_restore(vi->balloon, r, err);
}

struct virtio_balloon *vm_virtio_balloon(void *dev) { return dev ? ((struct virtio_instance *)dev)->balloon : NULL; }

void vm_virtio_resume_restored(void *dev)
{
    struct virtio_instance *vi = dev;
    virtio_dev_resume_restored(&vi->mmio.vdev);
}

int vm_virtio_blk_replace(void *dev, const char *path, struct errmsg *err)
{
    struct virtio_instance *vi = dev;
    return virtio_blk_swap_image(vi->blk, path, err); /* locks the device, tells the guest */
}

void vm_virtio_blk_update_rate_limiter(void *dev, const struct rate_limiter_update *u)
{
    struct virtio_instance *vi = dev;
    virtio_blk_update_rate_limiter(vi->blk, u); /* locks the device, serves what waited */
}

void vm_virtio_net_update_rate_limiters(void *dev, const struct rate_limiter_update *rx,
                                        const struct rate_limiter_update *tx)
{
    struct virtio_instance *vi = dev;
    virtio_net_update_rate_limiters(vi->net, rx, tx);
}

const struct device_ops vm_virtio_blk_device_ops = {.name = "virtio-blk",
                                                    .realize = blk_realize,
                                                    .save = blk_save,
                                                    .restore = virtio_restore,
                                                    .metrics = blk_metrics,
                                                    .teardown = teardown};
const struct device_ops vm_virtio_vsock_device_ops = {.name = "virtio-vsock",
                                                      .realize = vsock_realize,
                                                      .save = vsock_save,
                                                      .restore = vsock_restore,
                                                      .metrics = vsock_metrics,
                                                      .teardown = teardown};
const struct device_ops vm_virtio_net_device_ops = {.name = "virtio-net",
                                                    .realize = net_realize,
                                                    .save = net_save,
                                                    .restore = virtio_restore,
                                                    .metrics = net_metrics,
                                                    .teardown = teardown};
const struct device_ops vm_virtio_rng_device_ops = {.name = "virtio-rng",
                                                    .realize = rng_realize,
                                                    .save = net_save,
                                                    .restore = virtio_restore,
                                                    .metrics = rng_metrics,
                                                    .teardown = teardown};
const struct device_ops vm_virtio_balloon_device_ops = {.name = "virtio-balloon",
                                                        .realize = balloon_realize,
                                                        .save = balloon_save,
                                                        .restore = balloon_restore,
                                                        .metrics = balloon_metrics,
                                                        .teardown = teardown};
