#include "devices/virtio/mmio.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/log.h"
#include "devices/virtio/virtio.h"

/* Register offsets (virtio 1.2, 4.2.2). */
#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_VENDOR_ID 0x00c
#define R_DEV_FEATURES 0x010
#define R_DEV_FEATURES_SEL 0x014
#define R_DRV_FEATURES 0x020
#define R_DRV_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_INT_STATUS 0x060
#define R_INT_ACK 0x064
#define R_STATUS 0x070
#define R_QUEUE_DESC_LO 0x080
#define R_QUEUE_DESC_HI 0x084
#define R_QUEUE_AVAIL_LO 0x090
#define R_QUEUE_AVAIL_HI 0x094
#define R_QUEUE_USED_LO 0x0a0
#define R_QUEUE_USED_HI 0x0a4
#define R_CONFIG_GEN 0x0fc
#define R_CONFIG 0x100

#define MAGIC_VIRT 0x74726976
#define VENDOR_EMBER 0x454d4252 /* "EMBR" */

static void on_notify(void *opaque, uint32_t events);

bool virtio_mmio_driver_ok(const struct virtio_mmio *m)
{
    return (m->status & VIRTIO_STATUS_DRIVER_OK) && !(m->status & VIRTIO_STATUS_NEEDS_RESET);
}

bool virtio_mmio_has_feature(const struct virtio_mmio *m, unsigned bit)
{
    return (m->driver_features & BIT64(bit)) != 0;
}

static void raise_irq(struct virtio_mmio *m, uint32_t bits)
{
    atomic_fetch_or(&m->int_status, bits);
    m->interrupts++;
    if (m->irq_fd >= 0) {
        uint64_t one = 1;
        if (write(m->irq_fd, &one, sizeof(one)) == sizeof(one))
            return;
    }
    irq_line_pulse(&m->irq);
}

void virtio_mmio_notify_used(struct virtio_mmio *m, uint16_t q)
{
    if (q < m->ops->num_queues && virtq_should_notify(&m->queues[q], m->gm))
        raise_irq(m, VIRTIO_INT_USED_RING);
}

void virtio_mmio_config_changed(struct virtio_mmio *m)
{
    m->config_generation++;
    if (m->status & VIRTIO_STATUS_DRIVER_OK)
        raise_irq(m, VIRTIO_INT_CONFIG);
}

void virtio_mmio_set_needs_reset(struct virtio_mmio *m, const char *why)
{
    if (!m->needs_reset_logged) {
        log_error("%s: %s; device stopped until the driver resets it (DEVICE_NEEDS_RESET)", m->name, why);
        m->needs_reset_logged = true;
    }
    m->status |= VIRTIO_STATUS_NEEDS_RESET;
    raise_irq(m, VIRTIO_INT_CONFIG);
}

void virtio_mmio_kick(struct virtio_mmio *m, uint16_t q)
{
    pthread_mutex_lock(&m->lock);
    m->notifies++;
    if (q < m->ops->num_queues && virtio_mmio_driver_ok(m) && m->queues[q].ready)
        m->ops->queue_notify(m->dev, m, q);
    pthread_mutex_unlock(&m->lock);
}

static void on_notify(void *opaque, uint32_t events)
{
    (void)events;
    struct virtio_mmio *m = opaque;
    for (uint16_t q = 0; q < m->ops->num_queues; q++) {
        uint64_t cnt;
        if (m->notify_fd[q] >= 0 && read(m->notify_fd[q], &cnt, sizeof(cnt)) == sizeof(cnt))
            virtio_mmio_kick(m, q);
    }
}

static void device_reset(struct virtio_mmio *m)
{
    if (m->status & VIRTIO_STATUS_DRIVER_OK)
        m->ops->reset(m->dev, m);
    m->status = 0;
    m->driver_features = 0;
    m->dev_features_sel = m->drv_features_sel = m->queue_sel = 0;
    atomic_store(&m->int_status, 0);
    m->needs_reset_logged = false;
    for (int i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++)
        virtq_reset(&m->queues[i]);
}

static void driver_ok(struct virtio_mmio *m)
{
    for (uint16_t q = 0; q < m->ops->num_queues; q++) {
        struct virtq *vq = &m->queues[q];
        vq->event_idx = virtio_mmio_has_feature(m, VIRTIO_F_EVENT_IDX);
        if (vq->ready && virtq_validate(vq, m->gm)) {
            m->status |= VIRTIO_STATUS_DRIVER_OK;
            virtio_mmio_set_needs_reset(m, "a queue's rings lie outside guest memory or are misaligned");
            return;
        }
    }
    m->status |= VIRTIO_STATUS_DRIVER_OK;
    int rc = m->ops->activate(m->dev, m);
    if (rc) {
        log_error("%s: cannot start: %s", m->name, strerror(-rc));
        m->status |= VIRTIO_STATUS_NEEDS_RESET;
    }
}

static void write_status(struct virtio_mmio *m, uint32_t v)
{
    if (v == 0) {
        device_reset(m);
        return;
    }
    uint32_t added = v & ~m->status;
    if (added & VIRTIO_STATUS_FEATURES_OK) {
        uint64_t offered = m->ops->features(m->dev);
        /* Accept only a subset of what was offered, and only modern drivers. */
        if ((m->driver_features & ~offered) || !(m->driver_features & BIT64(VIRTIO_F_VERSION_1)))
            v &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
    }
    uint32_t keep = m->status & VIRTIO_STATUS_NEEDS_RESET;
    m->status = (v & ~(uint32_t)(VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET)) | keep |
                (m->status & VIRTIO_STATUS_DRIVER_OK);
    if ((added & VIRTIO_STATUS_DRIVER_OK) && (m->status & VIRTIO_STATUS_FEATURES_OK))
        driver_ok(m);
}

static struct virtq *selected(struct virtio_mmio *m)
{
    return m->queue_sel < m->ops->num_queues ? &m->queues[m->queue_sel] : NULL;
}

static uint32_t read_reg(struct virtio_mmio *m, uint64_t off)
{
    struct virtq *q = selected(m);
    switch (off) {
    case R_MAGIC: return MAGIC_VIRT;
    case R_VERSION: return 2;
    case R_DEVICE_ID: return m->ops->device_id;
    case R_VENDOR_ID: return VENDOR_EMBER;
    case R_DEV_FEATURES: {
        uint64_t f = m->ops->features(m->dev);
        return m->dev_features_sel == 0 ? (uint32_t)f : m->dev_features_sel == 1 ? (uint32_t)(f >> 32) : 0;
    }
    case R_QUEUE_NUM_MAX: return q ? VIRTQ_MAX_SIZE : 0;
    case R_QUEUE_READY: return q ? q->ready : 0;
    case R_INT_STATUS: return atomic_load(&m->int_status);
    case R_STATUS: return m->status;
    case R_CONFIG_GEN: return m->config_generation;
    default: return 0; /* write-only or reserved */
    }
}

static void set_lo(uint64_t *v, uint32_t x) { *v = (*v & ~0xffffffffULL) | x; }
static void set_hi(uint64_t *v, uint32_t x) { *v = (*v & 0xffffffffULL) | (uint64_t)x << 32; }

static void write_reg(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
    struct virtq *q = selected(m);
    /* Queue layout may only change while the queue is not live (spec 4.2.3.2). */
    bool q_writable = q && !q->ready && !(m->status & VIRTIO_STATUS_DRIVER_OK);
    switch (off) {
    case R_DEV_FEATURES_SEL: m->dev_features_sel = v; break;
    case R_DRV_FEATURES_SEL: m->drv_features_sel = v; break;
    case R_DRV_FEATURES:
        if (!(m->status & VIRTIO_STATUS_FEATURES_OK)) {
            if (m->drv_features_sel == 0)
                set_lo(&m->driver_features, v);
            else if (m->drv_features_sel == 1)
                set_hi(&m->driver_features, v);
        }
        break;
    case R_QUEUE_SEL: m->queue_sel = v; break;
    case R_QUEUE_NUM:
        if (q_writable)
            q->size = (uint16_t)(v <= VIRTQ_MAX_SIZE ? v : 0);
        break;
    case R_QUEUE_READY:
        /* Queues go live only before DRIVER_OK, where driver_ok() validates them (no RING_RESET). */
        if (q && v == 1 && !q->ready && !(m->status & VIRTIO_STATUS_DRIVER_OK))
            q->ready = q->size != 0 && (q->size & (q->size - 1)) == 0;
        else if (q && v == 0)
            q->ready = false;
        break;
    case R_QUEUE_NOTIFY:
        if (v < m->ops->num_queues) {
            uint64_t one = 1;
            /* No ioeventfd: hand the kick to the event loop all the same. */
            if (m->notify_fd[v] < 0 || write(m->notify_fd[v], &one, sizeof(one)) != sizeof(one))
                log_warn("%s: queue %u notification lost", m->name, v);
        }
        break;
    case R_INT_ACK: atomic_fetch_and(&m->int_status, ~v); break;
    case R_STATUS: write_status(m, v); break;
    case R_QUEUE_DESC_LO: if (q_writable) set_lo(&q->desc_gpa, v); break;
    case R_QUEUE_DESC_HI: if (q_writable) set_hi(&q->desc_gpa, v); break;
    case R_QUEUE_AVAIL_LO: if (q_writable) set_lo(&q->avail_gpa, v); break;
    case R_QUEUE_AVAIL_HI: if (q_writable) set_hi(&q->avail_gpa, v); break;
    case R_QUEUE_USED_LO: if (q_writable) set_lo(&q->used_gpa, v); break;
    case R_QUEUE_USED_HI: if (q_writable) set_hi(&q->used_gpa, v); break;
    default: break;
    }
}

static void mmio_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
    struct virtio_mmio *m = opaque;
    memset(data, 0, len);
    pthread_mutex_lock(&m->lock);
    if (off >= R_CONFIG) {
        m->ops->config_read(m->dev, off - R_CONFIG, data, len);
    } else if (len == 4 && !(off & 3)) {
        uint32_t v = read_reg(m, off);
        memcpy(data, &v, 4);
    }
    pthread_mutex_unlock(&m->lock);
}

static void mmio_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct virtio_mmio *m = opaque;
    pthread_mutex_lock(&m->lock);
    if (off >= R_CONFIG) {
        if (m->ops->config_write)
            m->ops->config_write(m->dev, off - R_CONFIG, data, len);
    } else if (len == 4 && !(off & 3)) {
        uint32_t v;
        memcpy(&v, data, 4);
        write_reg(m, off, v);
    }
    pthread_mutex_unlock(&m->lock);
}

const struct io_ops virtio_mmio_io_ops = {.read = mmio_read, .write = mmio_write};

int virtio_mmio_init(struct virtio_mmio *m, const char *name, const struct virtio_dev_ops *ops, void *dev,
                     const struct guest_mem *gm, struct event_loop *loop, int vm_fd, uint64_t base,
                     uint32_t gsi, struct irq_line irq)
{
    memset(m, 0, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    m->name = name;
    m->ops = ops;
    m->dev = dev;
    m->gm = gm;
    m->loop = loop;
    m->vm_fd = vm_fd;
    m->base = base;
    m->gsi = gsi;
    m->irq = irq;
    m->irq_fd = -1;
    m->ioeventfd_ok = true;
    for (int q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
        m->notify_fd[q] = -1;
    for (uint16_t q = 0; q < ops->num_queues && q < VIRTIO_MMIO_MAX_QUEUES; q++) {
        m->notify_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->notify_fd[q] < 0)
            return -errno;
        if (vm_fd >= 0) {
            /* KVM signals the eventfd itself: a kick costs no exit to userspace. */
            struct kvm_ioeventfd ioe = {.datamatch = q, .addr = base + R_QUEUE_NOTIFY, .len = 4,
                                        .fd = m->notify_fd[q], .flags = KVM_IOEVENTFD_FLAG_DATAMATCH};
            if (ioctl(vm_fd, KVM_IOEVENTFD, &ioe) < 0)
                m->ioeventfd_ok = false;
        }
        if (loop) {
            int rc = evloop_add(loop, m->notify_fd[q], EPOLLIN, on_notify, m);
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
    log_info("%s: virtio-mmio at %#llx gsi %u, notify by %s, interrupt by %s", name, (unsigned long long)base,
             gsi, vm_fd >= 0 && m->ioeventfd_ok ? "ioeventfd" : "MMIO exit", m->irq_fd >= 0 ? "irqfd" : "KVM_IRQ_LINE");
    return 0;
}

void virtio_mmio_destroy(struct virtio_mmio *m)
{
    for (int q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++) {
        if (m->notify_fd[q] >= 0) {
            if (m->loop)
                evloop_remove(m->loop, m->notify_fd[q]);
            close(m->notify_fd[q]);
            m->notify_fd[q] = -1;
        }
    }
    if (m->irq_fd >= 0)
        close(m->irq_fd);
    m->irq_fd = -1;
    pthread_mutex_destroy(&m->lock);
}
