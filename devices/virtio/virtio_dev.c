#include "devices/virtio/virtio_dev.h"

#include <string.h>

#include "core/log.h"
#include "devices/virtio/virtio.h"

int virtio_dev_init(struct virtio_dev *vd, const char *name, const struct virtio_dev_ops *ops, void *dev,
                    const struct guest_mem *gm, struct event_loop *loop, void (*signal)(void *transport),
                    void *transport)
{
    memset(vd, 0, sizeof(*vd));
    int rc = pthread_mutex_init(&vd->lock, NULL);
    if (rc)
        return -rc;
    vd->name = name;
    vd->ops = ops;
    vd->dev = dev;
    vd->gm = gm;
    vd->loop = loop;
    vd->signal = signal;
    vd->transport = transport;
    if (ops->attach)
        ops->attach(dev, vd);
    return 0;
}

void virtio_dev_destroy(struct virtio_dev *vd) { pthread_mutex_destroy(&vd->lock); }

void virtio_dev_lock(struct virtio_dev *vd) { pthread_mutex_lock(&vd->lock); }
void virtio_dev_unlock(struct virtio_dev *vd) { pthread_mutex_unlock(&vd->lock); }

bool virtio_dev_driver_ok(const struct virtio_dev *vd)
{
    return (vd->status & VIRTIO_STATUS_DRIVER_OK) && !(vd->status & VIRTIO_STATUS_NEEDS_RESET);
}

bool virtio_dev_has_feature(const struct virtio_dev *vd, unsigned bit)
{
    return (vd->driver_features & BIT64(bit)) != 0;
}

uint64_t virtio_dev_offered_features(const struct virtio_dev *vd) { return vd->ops->features(vd->dev); }

struct virtq *virtio_dev_queue(struct virtio_dev *vd, uint32_t q)
{
    return q < vd->ops->num_queues ? &vd->queues[q] : NULL;
}

static void raise_irq(struct virtio_dev *vd, uint32_t bits)
{
    atomic_fetch_or(&vd->int_status, bits);
    vd->interrupts++;
    vd->signal(vd->transport);
}

void virtio_dev_notify_used(struct virtio_dev *vd, uint16_t q)
{
    if (q < vd->ops->num_queues && virtq_should_notify(&vd->queues[q], vd->gm))
        raise_irq(vd, VIRTIO_INT_USED_RING);
}

void virtio_dev_config_changed(struct virtio_dev *vd)
{
    vd->config_generation++;
    if (vd->status & VIRTIO_STATUS_DRIVER_OK)
        raise_irq(vd, VIRTIO_INT_CONFIG);
}

void virtio_dev_set_needs_reset(struct virtio_dev *vd, const char *why)
{
    if (!vd->needs_reset_logged) {
        log_error("%s: %s; device stopped until the driver resets it (DEVICE_NEEDS_RESET)", vd->name, why);
        vd->needs_reset_logged = true;
    }
    vd->status |= VIRTIO_STATUS_NEEDS_RESET;
    raise_irq(vd, VIRTIO_INT_CONFIG);
}

void virtio_dev_kick(struct virtio_dev *vd, uint16_t q)
{
    pthread_mutex_lock(&vd->lock);
    vd->notifies++;
    if (q < vd->ops->num_queues && virtio_dev_driver_ok(vd) && vd->queues[q].ready)
        vd->ops->queue_notify(vd->dev, vd, q);
    pthread_mutex_unlock(&vd->lock);
}

static void device_reset(struct virtio_dev *vd)
{
    if (vd->status & VIRTIO_STATUS_DRIVER_OK)
        vd->ops->reset(vd->dev, vd);
    vd->status = 0;
    vd->driver_features = 0;
    atomic_store(&vd->int_status, 0);
    vd->needs_reset_logged = false;
    for (int i = 0; i < VIRTIO_DEV_MAX_QUEUES; i++)
        virtq_reset(&vd->queues[i]);
}

static void driver_ok(struct virtio_dev *vd)
{
    for (uint16_t q = 0; q < vd->ops->num_queues; q++) {
        struct virtq *vq = &vd->queues[q];
        vq->event_idx = virtio_dev_has_feature(vd, VIRTIO_F_EVENT_IDX);
        if (vq->ready && virtq_validate(vq, vd->gm)) {
            vd->status |= VIRTIO_STATUS_DRIVER_OK;
            virtio_dev_set_needs_reset(vd, "a queue's rings lie outside guest memory or are misaligned");
            return;
        }
    }
    vd->status |= VIRTIO_STATUS_DRIVER_OK;
    int rc = vd->ops->activate(vd->dev, vd);
    if (rc) {
        log_error("%s: cannot start: %s", vd->name, strerror(-rc));
        vd->status |= VIRTIO_STATUS_NEEDS_RESET;
    }
}

void virtio_dev_write_status(struct virtio_dev *vd, uint32_t v)
{
    if (v == 0) {
        device_reset(vd);
        return;
    }
    uint32_t added = v & ~vd->status;
    if (added & VIRTIO_STATUS_FEATURES_OK) {
        uint64_t offered = virtio_dev_offered_features(vd);
        /* Accept only a subset of what was offered, and only modern drivers. */
        if ((vd->driver_features & ~offered) || !(vd->driver_features & BIT64(VIRTIO_F_VERSION_1)))
            v &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
    }
    /* DRIVER_OK and NEEDS_RESET are the device's to set; only a reset clears them. */
    uint32_t kept = vd->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET);
    vd->status = (v & ~(uint32_t)(VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET)) | kept;
    if ((added & VIRTIO_STATUS_DRIVER_OK) && (vd->status & VIRTIO_STATUS_FEATURES_OK))
        driver_ok(vd);
}
