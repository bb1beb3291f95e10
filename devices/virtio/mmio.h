/*
 * virtio-mmio transport, version 2 (modern). Register accesses arrive on
 * vCPU threads through the MMIO bus; queue notifications arrive as
 * ioeventfds on the VMM thread's event loop, so devices do their work off
 * the vCPU threads; interrupts go out through an irqfd.
 */
#ifndef EMBER_VIRTIO_MMIO_H
#define EMBER_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/event_loop.h"
#include "core/guest_mem.h"
#include "core/io.h"
#include "devices/virtio/queue.h"

#define VIRTIO_MMIO_SIZE 0x1000
#define VIRTIO_MMIO_MAX_QUEUES 2

struct virtio_mmio;

/* What a device model implements; all calls are made with the transport lock held. */
struct virtio_dev_ops {
    uint32_t device_id;
    uint16_t num_queues;
    uint64_t (*features)(void *dev);
    void (*config_read)(void *dev, uint64_t offset, uint8_t *data, uint32_t len);
    void (*config_write)(void *dev, uint64_t offset, const uint8_t *data, uint32_t len);
    /* The driver set DRIVER_OK: start serving (e.g. watch a tap). 0 or -errno. */
    int (*activate)(void *dev, struct virtio_mmio *m);
    /* The driver kicked queue q (VMM thread). */
    void (*queue_notify)(void *dev, struct virtio_mmio *m, uint16_t q);
    /* The driver reset the device: stop serving, drop in-flight state. */
    void (*reset)(void *dev, struct virtio_mmio *m);
};

struct virtio_mmio {
    pthread_mutex_t lock;
    const struct virtio_dev_ops *ops;
    void *dev;
    const char *name;
    const struct guest_mem *gm;
    struct event_loop *loop;
    int vm_fd;           /* -1 in unit tests: no ioeventfd/irqfd, plain paths */
    uint64_t base;
    uint32_t gsi;
    struct irq_line irq; /* used when irqfd is unavailable */

    uint32_t status;
    uint32_t dev_features_sel, drv_features_sel, queue_sel;
    uint64_t driver_features;
    atomic_uint int_status;
    uint32_t config_generation;
    bool needs_reset_logged;
    struct virtq queues[VIRTIO_MMIO_MAX_QUEUES];
    int notify_fd[VIRTIO_MMIO_MAX_QUEUES];
    bool ioeventfd_ok;
    int irq_fd;          /* irqfd eventfd, or -1 */
    uint64_t notifies, interrupts;
};

/* Sets up the transport; vm_fd < 0 skips ioeventfd/irqfd (tests). */
int virtio_mmio_init(struct virtio_mmio *m, const char *name, const struct virtio_dev_ops *ops, void *dev,
                     const struct guest_mem *gm, struct event_loop *loop, int vm_fd, uint64_t base,
                     uint32_t gsi, struct irq_line irq);
void virtio_mmio_destroy(struct virtio_mmio *m);

extern const struct io_ops virtio_mmio_io_ops;

/* For devices (lock held): raise the used-ring interrupt if the driver wants it. */
void virtio_mmio_notify_used(struct virtio_mmio *m, uint16_t q);
/* For devices (lock held): the configuration changed (e.g. disk resized). */
void virtio_mmio_config_changed(struct virtio_mmio *m);
/* For devices (lock held): the guest broke the virtqueue rules; stop until reset. */
void virtio_mmio_set_needs_reset(struct virtio_mmio *m, const char *why);
bool virtio_mmio_driver_ok(const struct virtio_mmio *m);
bool virtio_mmio_has_feature(const struct virtio_mmio *m, unsigned bit);
/* Runs the device's queue_notify for q with the lock held (used by the event loop and tests). */
void virtio_mmio_kick(struct virtio_mmio *m, uint16_t q);

#endif
