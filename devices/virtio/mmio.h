/*
 * virtio-mmio transport, version 2 (modern). Register accesses arrive on
 * vCPU threads through the MMIO bus and are decoded into the embedded
 * struct virtio_dev; queue notifications arrive as ioeventfds on the VMM
 * thread's event loop, so devices do their work off the vCPU threads;
 * interrupts go out through an irqfd. Register offsets: mmio_regs.h.
 */
#ifndef EMBER_VIRTIO_MMIO_H
#define EMBER_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/event_loop.h"
#include "core/guest_mem.h"
#include "core/io.h"
#include "devices/virtio/virtio_dev.h"

#define VIRTIO_MMIO_SIZE 0x1000
#define VIRTIO_MMIO_MAX_QUEUES VIRTIO_DEV_MAX_QUEUES

struct virtio_mmio {
    struct virtio_dev vdev; /* the device state; models see only this */
    int vm_fd;              /* -1 in unit tests: no ioeventfd/irqfd, plain paths */
    uint64_t base;
    uint32_t gsi;
    struct irq_line irq; /* used when irqfd is unavailable */
    uint32_t dev_features_sel, drv_features_sel, queue_sel;
    int notify_fd[VIRTIO_DEV_MAX_QUEUES];
    /* What each notify fd's event-loop callback gets: it reads only its own queue's eventfd. */
    struct virtio_mmio_notify {
        struct virtio_mmio *m;
        uint16_t q;
    } notify_ctx[VIRTIO_DEV_MAX_QUEUES];
    bool ioeventfd_ok;
    int irq_fd; /* irqfd eventfd, or -1 */
};

/* Sets up the transport; vm_fd < 0 skips ioeventfd/irqfd (tests). */
int virtio_mmio_init(struct virtio_mmio *m, const char *name, const struct virtio_dev_ops *ops, void *dev,
                     const struct guest_mem *gm, struct event_loop *loop, int vm_fd, uint64_t base, uint32_t gsi,
                     struct irq_line irq);
void virtio_mmio_destroy(struct virtio_mmio *m);

extern const struct io_ops virtio_mmio_io_ops;

/* The transport-neutral device behind this transport (lock, name, model, queues). */
static inline struct virtio_dev *virtio_mmio_device(struct virtio_mmio *m) { return &m->vdev; }
/* The configuration changed (lock held): virtio_dev_config_changed on the device. */
void virtio_mmio_config_changed(struct virtio_mmio *m);
/* As if the queue's notify eventfd fired: runs the model's queue_notify with the lock held. */
void virtio_mmio_kick(struct virtio_mmio *m, uint16_t q);

/* The transport's selector registers ("virtio-mmio" section), then the device's (virtio_dev_save). */
int virtio_mmio_save(struct virtio_mmio *m, struct state_writer *w);
/* Both sections checked before anything changes (virtio_dev_restore); 0 or -errno with a message. */
int virtio_mmio_restore(struct virtio_mmio *m, struct state_reader *r, struct errmsg *err);

#endif
