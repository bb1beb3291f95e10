#include "devices/virtio/virtio_dev.h"

#include <errno.h>
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

void virtio_dev_resume_restored(struct virtio_dev *vd)
{
    pthread_mutex_lock(&vd->lock);
    bool live = virtio_dev_driver_ok(vd);
    uint32_t pending = atomic_load(&vd->int_status);
    pthread_mutex_unlock(&vd->lock);
    if (!live)
        return;
    for (uint16_t q = 0; q < vd->ops->num_queues; q++)
        virtio_dev_kick(vd, q);
    if (pending) {
        pthread_mutex_lock(&vd->lock);
        raise_irq(vd, pending);
        pthread_mutex_unlock(&vd->lock);
    }
}

void virtio_dev_log_state(struct virtio_dev *vd)
{
    pthread_mutex_lock(&vd->lock);
    log_debug("%s: status %#x, interrupt status %#x, %llu notifies, %llu interrupts", vd->name, vd->status,
              atomic_load(&vd->int_status), (unsigned long long)vd->notifies, (unsigned long long)vd->interrupts);
    for (uint16_t q = 0; q < vd->ops->num_queues; q++) {
        char line[256];
        virtq_describe(&vd->queues[q], vd->gm, line, sizeof(line));
        log_debug("%s: queue %u: %s", vd->name, q, line);
    }
    pthread_mutex_unlock(&vd->lock);
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
    /*
     * DRIVER_OK and NEEDS_RESET are the device's to set, and FEATURES_OK ends
     * feature negotiation: only a reset clears them (a driver may not clear
     * status bits, spec 2.1.2). Were FEATURES_OK clearable, a driver could
     * drop it on a live device, write features never offered and leave a
     * state that no restore would accept.
     */
    const uint32_t sticky = VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FEATURES_OK;
    uint32_t kept = vd->status & sticky;
    vd->status = (v & ~(uint32_t)(VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET)) | kept;
    if ((added & VIRTIO_STATUS_DRIVER_OK) && (vd->status & VIRTIO_STATUS_FEATURES_OK))
        driver_ok(vd);
}

/* ---- save / restore ---- */

#define VIRTIO_DEV_STATE_VERSION 1
#define VIRTIO_DEV_SECTION "virtio-dev"
#define KNOWN_INT_BITS (VIRTIO_INT_USED_RING | VIRTIO_INT_CONFIG)

/* A decoded image, checked whole before it replaces the device's state. */
struct virtio_dev_image {
    uint32_t status, int_status, config_generation;
    uint64_t driver_features;
    struct virtq queues[VIRTIO_DEV_MAX_QUEUES];
};

int virtio_dev_save(struct virtio_dev *vd, struct state_writer *w)
{
    pthread_mutex_lock(&vd->lock);
    size_t mark = state_begin(w, VIRTIO_DEV_SECTION, VIRTIO_DEV_STATE_VERSION);
    state_put_u32(w, vd->ops->device_id);
    state_put_u16(w, vd->ops->num_queues);
    state_put_u32(w, vd->status);
    state_put_u64(w, vd->driver_features);
    state_put_u32(w, atomic_load(&vd->int_status));
    state_put_u32(w, vd->config_generation);
    for (uint16_t i = 0; i < vd->ops->num_queues; i++) {
        const struct virtq *q = &vd->queues[i];
        state_put_u16(w, q->size);
        state_put_u8(w, q->ready);
        state_put_u8(w, q->event_idx);
        state_put_u64(w, q->desc_gpa);
        state_put_u64(w, q->avail_gpa);
        state_put_u64(w, q->used_gpa);
        state_put_u16(w, q->last_avail);
        state_put_u16(w, q->used_idx);
        state_put_u16(w, q->signalled_used);
        state_put_u8(w, q->signalled_valid);
    }
    pthread_mutex_unlock(&vd->lock);
    return state_end(w, mark);
}

static bool is_bool(uint8_t v) { return v <= 1; }

/* One queue's fields; the checks that need the whole image come later. */
static void read_queue(struct state_reader *b, struct virtq *q, uint8_t flags[3])
{
    virtq_reset(q);
    q->size = state_get_u16(b);
    flags[0] = state_get_u8(b);
    flags[1] = state_get_u8(b);
    q->desc_gpa = state_get_u64(b);
    q->avail_gpa = state_get_u64(b);
    q->used_gpa = state_get_u64(b);
    q->last_avail = state_get_u16(b);
    q->used_idx = state_get_u16(b);
    q->signalled_used = state_get_u16(b);
    flags[2] = state_get_u8(b);
    q->ready = flags[0] == 1;
    q->event_idx = flags[1] == 1;
    q->signalled_valid = flags[2] == 1;
}

/*
 * Queue i of an image whose device is `live` (serving its queues): sizes as
 * the registers allow, a ready queue's size a power of two, and a live
 * queue's rings inside guest memory, mapped as DRIVER_OK would map them.
 */
static int check_queue(const struct virtio_dev *vd, struct virtq *q, unsigned i, const uint8_t flags[3], bool live,
                       struct errmsg *err)
{
    if (!is_bool(flags[0]) || !is_bool(flags[1]) || !is_bool(flags[2]))
        return err_set(err, -EINVAL, "%s state: queue %u has a flag that is neither 0 nor 1", vd->name, i);
    if (q->size > VIRTQ_MAX_SIZE || (q->ready && (q->size == 0 || (q->size & (q->size - 1)))))
        return err_set(err, -EINVAL, "%s state: queue %u has size %u (a ready queue needs a power of two up to %u)",
                       vd->name, i, q->size, VIRTQ_MAX_SIZE);
    if (!q->ready)
        return 0;
    /* At most a ring's worth of chains can be taken and not yet returned. */
    if ((uint16_t)(q->last_avail - q->used_idx) > q->size)
        return err_set(err, -EINVAL, "%s state: queue %u has %u chains in flight in a ring of %u", vd->name, i,
                       (uint16_t)(q->last_avail - q->used_idx), q->size);
    if (live && virtq_validate(q, vd->gm))
        return err_set(err, -EINVAL,
                       "%s state: queue %u's rings (desc %#llx, avail %#llx, used %#llx, size %u) lie outside guest "
                       "memory or are misaligned",
                       vd->name, i, (unsigned long long)q->desc_gpa, (unsigned long long)q->avail_gpa,
                       (unsigned long long)q->used_gpa, q->size);
    return 0;
}

static int read_image(struct virtio_dev *vd, struct state_reader *r, struct virtio_dev_image *img, struct errmsg *err)
{
    struct state_reader b;
    uint32_t version;
    int rc = state_open(r, VIRTIO_DEV_SECTION, VIRTIO_DEV_STATE_VERSION, &version, &b, err);
    if (rc)
        return rc;
    uint32_t device_id = state_get_u32(&b);
    uint16_t nq = state_get_u16(&b);
    if (!b.err && (device_id != vd->ops->device_id || nq != vd->ops->num_queues))
        return err_set(err, -EINVAL, "%s state: saved from device type %u with %u queues, not type %u with %u",
                       vd->name, device_id, nq, vd->ops->device_id, vd->ops->num_queues);
    img->status = state_get_u32(&b);
    img->driver_features = state_get_u64(&b);
    img->int_status = state_get_u32(&b);
    img->config_generation = state_get_u32(&b);
    uint8_t flags[VIRTIO_DEV_MAX_QUEUES][3] = {{0}};
    for (uint16_t i = 0; i < VIRTIO_DEV_MAX_QUEUES; i++) {
        if (i < nq && !b.err)
            read_queue(&b, &img->queues[i], flags[i]);
        else
            virtq_reset(&img->queues[i]);
    }
    rc = state_close(&b, VIRTIO_DEV_SECTION, err);
    if (rc)
        return rc;

    if (img->int_status & ~(uint32_t)KNOWN_INT_BITS)
        return err_set(err, -EINVAL, "%s state: interrupt status %#x has bits no device raises", vd->name,
                       img->int_status);
    uint64_t offered = virtio_dev_offered_features(vd);
    bool accepted = img->status & (VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    if (accepted && ((img->driver_features & ~offered) || !(img->driver_features & BIT64(VIRTIO_F_VERSION_1))))
        return err_set(err, -EINVAL, "%s state: driver features %#llx were not offered (%#llx) or are not modern",
                       vd->name, (unsigned long long)img->driver_features, (unsigned long long)offered);
    /* Live queues are the ones the device reads and writes: their rings must be real guest memory. */
    bool live = (img->status & VIRTIO_STATUS_DRIVER_OK) && !(img->status & VIRTIO_STATUS_NEEDS_RESET);
    for (uint16_t i = 0; i < nq; i++) {
        rc = check_queue(vd, &img->queues[i], i, flags[i], live, err);
        if (rc)
            return rc;
    }
    return 0;
}

int virtio_dev_restore(struct virtio_dev *vd, struct state_reader *r, struct errmsg *err)
{
    struct virtio_dev_image img = {0};
    int rc = read_image(vd, r, &img, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&vd->lock);
    /* A model already serving stops first: what it served is replaced. */
    if (vd->status & VIRTIO_STATUS_DRIVER_OK)
        vd->ops->reset(vd->dev, vd);
    vd->status = img.status;
    vd->driver_features = img.driver_features;
    atomic_store(&vd->int_status, img.int_status);
    vd->config_generation = img.config_generation;
    vd->needs_reset_logged = (img.status & VIRTIO_STATUS_NEEDS_RESET) != 0;
    memcpy(vd->queues, img.queues, sizeof(vd->queues));
    if (virtio_dev_driver_ok(vd)) {
        rc = vd->ops->activate(vd->dev, vd);
        if (rc) {
            /* As at DRIVER_OK: logged, and the guest sees a device that needs a reset. */
            log_error("%s: restored, but cannot start: %s", vd->name, strerror(-rc));
            vd->status |= VIRTIO_STATUS_NEEDS_RESET;
            vd->needs_reset_logged = true;
        }
    }
    pthread_mutex_unlock(&vd->lock);
    return 0;
}
