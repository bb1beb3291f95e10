/*
 * virtio-blk and virtio-net as registered devices: each instance is a model
 * behind its own virtio-mmio transport in a dynamic MMIO slot, announced to
 * the guest with virtio_mmio.device= (and root= for the root drive).
 * Adapters until the virtio models register themselves.
 */
#ifndef EMBER_VIRTIO_DEVICES_H
#define EMBER_VIRTIO_DEVICES_H

#include "core/device.h"
#include "core/rate_limiter.h"

struct virtio_balloon;

/* config: a struct blk_config; metrics: the drive's request counters. */
extern const struct device_ops vm_virtio_blk_device_ops;
/* config: a struct net_config; metrics: the NIC's packet counters. */
extern const struct device_ops vm_virtio_net_device_ops;
/* config: a struct vsock_config; metrics: packet, byte and connection counters. */
extern const struct device_ops vm_virtio_vsock_device_ops;

/* config: a struct rng_config; metrics: Firecracker's entropy counters. */
extern const struct device_ops vm_virtio_rng_device_ops;

/* config: a struct balloon_config; metrics: Firecracker's balloon counters and Ember's page counters. */
extern const struct device_ops vm_virtio_balloon_device_ops;
/* The balloon model of a vm_virtio_balloon_device_ops instance (NULL for NULL). */
struct virtio_balloon *vm_virtio_balloon(void *dev);

/* PATCH /drives on a vm_virtio_blk_device_ops instance: new backing file, the guest told of the new size. */
int vm_virtio_blk_replace(void *dev, const char *path, struct errmsg *err);
/* PATCH rate limiters on a vm_virtio_blk_device_ops / vm_virtio_net_device_ops instance (NULL: unchanged). */
void vm_virtio_blk_update_rate_limiter(void *dev, const struct rate_limiter_update *u);
void vm_virtio_net_update_rate_limiters(void *dev, const struct rate_limiter_update *rx,
                                        const struct rate_limiter_update *tx);
/* After a snapshot restore, with the irqchip restored: serve the queues once, re-raise a pending interrupt. */
void vm_virtio_resume_restored(void *dev);

#endif
