#include "devices/virtio/mmio.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/log.h"
#include "devices/virtio/mmio_regs.h"
#include "devices/virtio/virtio.h"

/* The device raised an interrupt: through the irqfd, else a pulse on the line. */
static void signal_guest(void *transport)
{
    struct virtio_mmio *m = transport;
    if (m->irq_fd >= 0) {
        uint64_t one = 1;
        if (write(m->irq_fd, &one, sizeof(one)) == sizeof(one))
            return;
    }
    irq_line_pulse(&m->irq);
}

void virtio_mmio_config_changed(struct virtio_mmio *m) { virtio_dev_config_changed(&m->vdev); }

void virtio_mmio_kick(struct virtio_mmio *m, uint16_t q) { virtio_dev_kick(&m->vdev, q); }

static void on_notify(void *opaque, uint32_t events)
{
    (void)events;
    const struct virtio_mmio_notify *n = opaque;
    uint64_t cnt;
    if (read(n->m->notify_fd[n->q], &cnt, sizeof(cnt)) == sizeof(cnt))
        virtio_dev_kick(&n->m->vdev, n->q);
}

static void write_status(struct virtio_mmio *m, uint32_t v)
{
    if (v == 0)
        m->dev_features_sel = m->drv_features_sel = m->queue_sel = 0;
    virtio_dev_write_status(&m->vdev, v);
}

static uint32_t read_reg(struct virtio_mmio *m, uint64_t off)
{
    struct virtio_dev *vd = &m->vdev;
    struct virtq *q = virtio_dev_queue(vd, m->queue_sel);
    switch (off) {
    case VIRTIO_MMIO_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
    case VIRTIO_MMIO_VERSION: return VIRTIO_MMIO_VERSION_MODERN;
    case VIRTIO_MMIO_DEVICE_ID: return vd->ops->device_id;
    case VIRTIO_MMIO_VENDOR_ID: return VIRTIO_MMIO_VENDOR_EMBER;
    case VIRTIO_MMIO_DEVICE_FEATURES: {
        uint64_t f = virtio_dev_offered_features(vd);
        return m->dev_features_sel == 0 ? (uint32_t)f : m->dev_features_sel == 1 ? (uint32_t)(f >> 32) : 0;
    }
    case VIRTIO_MMIO_QUEUE_NUM_MAX: return q ? VIRTQ_MAX_SIZE : 0;
    case VIRTIO_MMIO_QUEUE_READY: return q ? q->ready : 0;
    case VIRTIO_MMIO_INTERRUPT_STATUS: return atomic_load(&vd->int_status);
    case VIRTIO_MMIO_STATUS: return vd->status;
    case VIRTIO_MMIO_CONFIG_GENERATION: return vd->config_generation;
    default: return 0; /* write-only or reserved */
    }
}

static void set_lo(uint64_t *v, uint32_t x) { *v = (*v & ~0xffffffffULL) | x; }
static void set_hi(uint64_t *v, uint32_t x) { *v = (*v & 0xffffffffULL) | (uint64_t)x << 32; }

static void write_reg(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
    struct virtio_dev *vd = &m->vdev;
    struct virtq *q = virtio_dev_queue(vd, m->queue_sel);
    /* Queue layout may only change while the queue is not live (spec 4.2.3.2). */
    bool q_writable = q && !q->ready && !(vd->status & VIRTIO_STATUS_DRIVER_OK);
    switch (off) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL: m->dev_features_sel = v; break;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL: m->drv_features_sel = v; break;
    case VIRTIO_MMIO_DRIVER_FEATURES:
        if (!(vd->status & VIRTIO_STATUS_FEATURES_OK)) {
            if (m->drv_features_sel == 0)
                set_lo(&vd->driver_features, v);
            else if (m->drv_features_sel == 1)
                set_hi(&vd->driver_features, v);
        }
        break;
    case VIRTIO_MMIO_QUEUE_SEL: m->queue_sel = v; break;
    case VIRTIO_MMIO_QUEUE_NUM:
        if (q_writable)
            q->size = (uint16_t)(v <= VIRTQ_MAX_SIZE ? v : 0);
        break;
    case VIRTIO_MMIO_QUEUE_READY:
        /* Queues go live only before DRIVER_OK, where DRIVER_OK validates them (no RING_RESET). */
        if (q && v == 1 && !q->ready && !(vd->status & VIRTIO_STATUS_DRIVER_OK))
            q->ready = q->size != 0 && (q->size & (q->size - 1)) == 0;
        else if (q && v == 0)
            q->ready = false;
        break;
    case VIRTIO_MMIO_QUEUE_NOTIFY:
        if (v < vd->ops->num_queues) {
            uint64_t one = 1;
            /* No ioeventfd: hand the kick to the event loop all the same. */
            if (m->notify_fd[v] < 0 || write(m->notify_fd[v], &one, sizeof(one)) != sizeof(one))
                log_warn("%s: queue %u notification lost", vd->name, v);
        }
        break;
    case VIRTIO_MMIO_INTERRUPT_ACK: atomic_fetch_and(&vd->int_status, ~v); break;
    case VIRTIO_MMIO_STATUS: write_status(m, v); break;
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
        if (q_writable)
            set_lo(&q->desc_gpa, v);
        break;
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
        if (q_writable)
            set_hi(&q->desc_gpa, v);
        break;
    case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
        if (q_writable)
            set_lo(&q->avail_gpa, v);
        break;
    case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
        if (q_writable)
            set_hi(&q->avail_gpa, v);
        break;
    case VIRTIO_MMIO_QUEUE_USED_LOW:
        if (q_writable)
            set_lo(&q->used_gpa, v);
        break;
    case VIRTIO_MMIO_QUEUE_USED_HIGH:
        if (q_writable)
            set_hi(&q->used_gpa, v);
        break;
    default: break;
    }
}

static void mmio_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
    struct virtio_mmio *m = opaque;
    struct virtio_dev *vd = &m->vdev;
    memset(data, 0, len);
    pthread_mutex_lock(&vd->lock);
    if (off >= VIRTIO_MMIO_CONFIG) {
        vd->ops->config_read(vd->dev, off - VIRTIO_MMIO_CONFIG, data, len);
    } else if (len == 4 && !(off & 3)) {
        uint32_t v = read_reg(m, off);
        memcpy(data, &v, 4);
    }
    pthread_mutex_unlock(&vd->lock);
}

static void mmio_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct virtio_mmio *m = opaque;
    struct virtio_dev *vd = &m->vdev;
    pthread_mutex_lock(&vd->lock);
    if (off >= VIRTIO_MMIO_CONFIG) {
        if (vd->ops->config_write)
            vd->ops->config_write(vd->dev, off - VIRTIO_MMIO_CONFIG, data, len);
    } else if (len == 4 && !(off & 3)) {
        uint32_t v;
        memcpy(&v, data, 4);
        write_reg(m, off, v);
    }
    pthread_mutex_unlock(&vd->lock);
}

const struct io_ops virtio_mmio_io_ops = {.read = mmio_read, .write = mmio_write};

int virtio_mmio_init(struct virtio_mmio *m, const char *name, const struct virtio_dev_ops *ops, void *dev,
                     const struct guest_mem *gm, struct event_loop *loop, int vm_fd, uint64_t base, uint32_t gsi,
                     struct irq_line irq)
{
    memset(m, 0, sizeof(*m));
    m->vm_fd = vm_fd;
    m->base = base;
    m->gsi = gsi;
    m->irq = irq;
    m->irq_fd = -1;
    m->ioeventfd_ok = true;
    for (int q = 0; q < VIRTIO_DEV_MAX_QUEUES; q++)
        m->notify_fd[q] = -1;
    int rc = virtio_dev_init(&m->vdev, name, ops, dev, gm, loop, signal_guest, m);
    if (rc)
        return rc;
    for (uint16_t q = 0; q < ops->num_queues && q < VIRTIO_DEV_MAX_QUEUES; q++) {
        m->notify_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->notify_fd[q] < 0)
            return -errno;
        if (vm_fd >= 0) {
            /* KVM signals the eventfd itself: a kick costs no exit to userspace. */
            struct kvm_ioeventfd ioe = {.datamatch = q,
                                        .addr = base + VIRTIO_MMIO_QUEUE_NOTIFY,
                                        .len = 4,
                                        .fd = m->notify_fd[q],
                                        .flags = KVM_IOEVENTFD_FLAG_DATAMATCH};
            if (ioctl(vm_fd, KVM_IOEVENTFD, &ioe) < 0)
                m->ioeventfd_ok = false;
        }
        if (loop) {
            m->notify_ctx[q] = (struct virtio_mmio_notify){m, q};
            rc = evloop_add(loop, m->notify_fd[q], EPOLLIN, on_notify, &m->notify_ctx[q]);
            if (rc)
                return rc;
        }
    }
    if (vm_fd >= 0) {
        m->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        struct kvm_irqfd irqfd = {.fd = (uint32_t)m->irq_fd, .gsi = gsi};
        if (m->irq_fd >= 0 && ioctl(vm_fd, KVM_IRQFD, &irqfd) < 0) {
            close(m->irq_fd);
            m->irq_fd = -1;
        }
    }
    log_info("%s: virtio-mmio at %#llx gsi %u, notify by %s, interrupt by %s", name, (unsigned long long)base, gsi,
             vm_fd >= 0 && m->ioeventfd_ok ? "ioeventfd" : "MMIO exit", m->irq_fd >= 0 ? "irqfd" : "KVM_IRQ_LINE");
    return 0;
}

void virtio_mmio_destroy(struct virtio_mmio *m)
{
    for (int q = 0; q < VIRTIO_DEV_MAX_QUEUES; q++) {
        if (m->notify_fd[q] >= 0) {
            if (m->vdev.loop)
                evloop_remove(m->vdev.loop, m->notify_fd[q]);
            close(m->notify_fd[q]);
            m->notify_fd[q] = -1;
        }
    }
    if (m->irq_fd >= 0)
        close(m->irq_fd);
    m->irq_fd = -1;
    virtio_dev_destroy(&m->vdev);
}

#define VIRTIO_MMIO_STATE_VERSION 1
#define VIRTIO_MMIO_SECTION "virtio-mmio"

int virtio_mmio_save(struct virtio_mmio *m, struct state_writer *w)
{
    pthread_mutex_lock(&m->vdev.lock);
    size_t mark = state_begin(w, VIRTIO_MMIO_SECTION, VIRTIO_MMIO_STATE_VERSION);
    state_put_u32(w, m->dev_features_sel);
    state_put_u32(w, m->drv_features_sel);
    state_put_u32(w, m->queue_sel);
    pthread_mutex_unlock(&m->vdev.lock);
    int rc = state_end(w, mark);
    return rc ? rc : virtio_dev_save(&m->vdev, w);
}

int virtio_mmio_restore(struct virtio_mmio *m, struct state_reader *r, struct errmsg *err)
{
    struct state_reader b;
    uint32_t version;
    int rc = state_open(r, VIRTIO_MMIO_SECTION, VIRTIO_MMIO_STATE_VERSION, &version, &b, err);
    if (rc)
        return rc;
    /* Any value is one the driver may have written: out-of-range selectors read as nothing. */
    uint32_t dev_sel = state_get_u32(&b), drv_sel = state_get_u32(&b), queue_sel = state_get_u32(&b);
    rc = state_close(&b, VIRTIO_MMIO_SECTION, err);
    if (rc)
        return rc;
    /* The last check: if the device's section is refused, nothing has changed. */
    rc = virtio_dev_restore(&m->vdev, r, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&m->vdev.lock);
    m->dev_features_sel = dev_sel;
    m->drv_features_sel = drv_sel;
    m->queue_sel = queue_sel;
    pthread_mutex_unlock(&m->vdev.lock);
    return 0;
}
