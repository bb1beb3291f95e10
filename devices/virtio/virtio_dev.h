/*
 * A virtio device as its model sees it, whatever the transport: queues,
 * guest memory, the event loop the model serves on, the lock, negotiated
 * features, device status and the ways to tell the driver something
 * (used-buffer and configuration-change interrupts, DEVICE_NEEDS_RESET).
 * A transport (virtio-mmio today) embeds one, decodes its registers into
 * it and says how an interrupt reaches the guest.
 */
#ifndef EMBER_VIRTIO_DEV_H
#define EMBER_VIRTIO_DEV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/errmsg.h"
#include "core/event_loop.h"
#include "core/guest_mem.h"
#include "core/state.h"
#include "devices/virtio/queue.h"

#define VIRTIO_DEV_MAX_QUEUES 3

struct virtio_dev;

/* What a device model implements; every call is made with the device lock held. */
struct virtio_dev_ops {
    uint32_t device_id;
    uint16_t num_queues;
    uint64_t (*features)(void *dev);
    void (*config_read)(void *dev, uint64_t offset, uint8_t *data, uint32_t len);
    void (*config_write)(void *dev, uint64_t offset, const uint8_t *data, uint32_t len); /* NULL: read-only */
    /* Optional, called once by virtio_dev_init (lock not held): the model learns which virtio_dev serves it. */
    void (*attach)(void *dev, struct virtio_dev *vd);
    /* The driver set DRIVER_OK: start serving (e.g. watch a tap). 0 or -errno. */
    int (*activate)(void *dev, struct virtio_dev *vd);
    /* The driver kicked queue q (VMM thread). */
    void (*queue_notify)(void *dev, struct virtio_dev *vd, uint16_t q);
    /* The driver reset the device: stop serving, drop in-flight state. */
    void (*reset)(void *dev, struct virtio_dev *vd);
};

struct virtio_dev {
    pthread_mutex_t lock; /* taken by the transport around every call into the model */
    const struct virtio_dev_ops *ops;
    void *dev; /* the device model */
    const char *name;
    const struct guest_mem *gm;
    struct event_loop *loop; /* NULL in some tests: nothing is watched */
    struct virtq queues[VIRTIO_DEV_MAX_QUEUES];
    uint32_t status; /* VIRTIO_STATUS_* */
    uint64_t driver_features;
    atomic_uint int_status; /* VIRTIO_INT_* not yet acknowledged by the driver */
    uint32_t config_generation;
    bool needs_reset_logged;
    uint64_t notifies, interrupts;
    /* The transport's way to interrupt the guest (int_status is already updated). */
    void (*signal)(void *transport);
    void *transport;
};

/* Sets up the device state and lets the model attach; `signal` delivers an interrupt. */
int virtio_dev_init(struct virtio_dev *vd, const char *name, const struct virtio_dev_ops *ops, void *dev,
                    const struct guest_mem *gm, struct event_loop *loop, void (*signal)(void *transport),
                    void *transport);
void virtio_dev_destroy(struct virtio_dev *vd);
/* Logs (debug) the device's status, interrupt counts and each queue's ring positions. */
void virtio_dev_log_state(struct virtio_dev *vd);

/* The model and the name the device was created with (for callers that hold only the virtio_dev). */
static inline void *virtio_dev_model(const struct virtio_dev *vd) { return vd->dev; }
static inline const char *virtio_dev_name(const struct virtio_dev *vd) { return vd->name; }
static inline uint32_t virtio_dev_device_id(const struct virtio_dev *vd) { return vd->ops->device_id; }

/* ---- for device models (lock held unless said otherwise) ---- */

void virtio_dev_lock(struct virtio_dev *vd);
void virtio_dev_unlock(struct virtio_dev *vd);
bool virtio_dev_driver_ok(const struct virtio_dev *vd);
bool virtio_dev_has_feature(const struct virtio_dev *vd, unsigned bit);
/* Raises the used-buffer interrupt for queue q if the driver wants one. */
void virtio_dev_notify_used(struct virtio_dev *vd, uint16_t q);
/* The configuration changed (e.g. disk resized): new generation, interrupt once the driver is up. */
void virtio_dev_config_changed(struct virtio_dev *vd);
/* The guest broke the virtqueue rules: stop until the driver resets the device. */
void virtio_dev_set_needs_reset(struct virtio_dev *vd, const char *why);

/* ---- for transports ---- */

/* Takes the lock and runs the model's queue_notify for q if the device is live (event loop, tests). */
void virtio_dev_kick(struct virtio_dev *vd, uint16_t q);
/* The driver wrote the device status (lock held): reset, feature acceptance, DRIVER_OK. */
void virtio_dev_write_status(struct virtio_dev *vd, uint32_t status);
/* The device's features as offered to the driver (lock held). */
uint64_t virtio_dev_offered_features(const struct virtio_dev *vd);
/* Queue q, or NULL if the device has no such queue. */
struct virtq *virtio_dev_queue(struct virtio_dev *vd, uint32_t q);

/*
 * The guest-visible device state as one "virtio-dev" section: status,
 * features, interrupt status, config generation and every queue's layout and
 * positions (the model's own state is its own section). Save takes the lock.
 */
int virtio_dev_save(struct virtio_dev *vd, struct state_writer *w);
/*
 * Reads and checks a "virtio-dev" section (hostile input: queue sizes, live
 * rings inside guest memory, features offered) before changing anything;
 * then replaces the state and, if the restored device is live, has the model
 * start serving (activate). 0, or -errno with a message; a refused image
 * leaves the device unchanged. The device's queues must not be in use.
 */
int virtio_dev_restore(struct virtio_dev *vd, struct state_reader *r, struct errmsg *err);
/*
 * After a restore, once the interrupt controllers hold their restored state:
 * serves every ready queue once (a notification the guest sent just before
 * the snapshot was taken may not have been served) and raises the interrupt
 * again if the saved interrupt status says one is pending (an interrupt in
 * flight at the snapshot is not in the saved IOAPIC; a spurious one is harmless).
 */
void virtio_dev_resume_restored(struct virtio_dev *vd);

#endif
