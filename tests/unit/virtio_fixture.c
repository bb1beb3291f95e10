/* The driver-side virtio test fixture (virtio_fixture.h); it has no tests of its own. */
#include "tests/unit/virtio_fixture.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

struct vfx vfx;

void vfx_ram_init(uint64_t bytes)
{
    vfx.ram = calloc(1, bytes);
    cr_assert_not_null(vfx.ram);
    cr_assert_eq(guest_mem_init_with(&vfx.gm, bytes, vfx.ram), 0);
}

void vfx_ram_free(void)
{
    guest_mem_free(&vfx.gm);
    free(vfx.ram);
    vfx.ram = NULL;
}

uint8_t *g_at(uint64_t gpa, uint64_t len)
{
    uint8_t *p = gm_ptr(&vfx.gm, gpa, len);
    cr_assert_not_null(p, "test bug: gpa %#llx not in RAM", (unsigned long long)gpa);
    return p;
}

void g_w16(uint64_t gpa, uint16_t v)
{
    uint8_t *p = g_at(gpa, 2);
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void g_w32(uint64_t gpa, uint32_t v)
{
    uint8_t *p = g_at(gpa, 4);
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void g_w64(uint64_t gpa, uint64_t v)
{
    uint8_t *p = g_at(gpa, 8);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint16_t g_r16(uint64_t gpa)
{
    const uint8_t *p = g_at(gpa, 2);
    return (uint16_t)(p[0] | p[1] << 8);
}

uint32_t g_r32(uint64_t gpa)
{
    const uint8_t *p = g_at(gpa, 4);
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- split rings ---- */

static struct vfx_queue *queue(int q)
{
    cr_assert(q >= 0 && q < VIRTIO_DEV_MAX_QUEUES, "test bug: queue %d", q);
    return &vfx.q[q];
}

static void zero_rings(const struct vfx_queue *d)
{
    memset(g_at(d->desc, 16ULL * d->size), 0, 16ULL * d->size);
    memset(g_at(d->avail, 6 + 2ULL * d->size), 0, 6 + 2ULL * d->size);
    memset(g_at(d->used, 6 + 8ULL * d->size), 0, 6 + 8ULL * d->size);
}

void vfx_queue_at(int q, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
    struct vfx_queue *d = queue(q);
    *d = (struct vfx_queue){.desc = desc, .avail = avail, .used = used, .size = size};
    zero_rings(d);
}

void vfx_desc(uint64_t table, uint32_t idx, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint64_t e = table + 16ULL * idx;
    g_w64(e, addr);
    g_w32(e + 8, len);
    g_w16(e + 12, flags);
    g_w16(e + 14, next);
}

void vfx_avail_add(int q, uint16_t head)
{
    struct vfx_queue *d = queue(q);
    g_w16(d->avail + 4 + 2ULL * (d->avail_idx % d->size), head);
    d->avail_idx++;
    g_w16(d->avail + 2, d->avail_idx);
}

static uint16_t seg_flags(const struct vfx_seg *s, int i, int n)
{
    return (uint16_t)((i + 1 < n ? VIRTQ_DESC_F_NEXT : 0) | (s[i].write ? VIRTQ_DESC_F_WRITE : 0));
}

uint16_t vfx_post(int q, const struct vfx_seg *s, int n, uint64_t indirect)
{
    struct vfx_queue *d = queue(q);
    uint16_t head = d->next_desc;
    if (indirect) {
        for (int i = 0; i < n; i++)
            vfx_desc(indirect, (uint32_t)i, s[i].gpa, s[i].len, seg_flags(s, i, n), (uint16_t)(i + 1));
        vfx_desc(d->desc, head, indirect, 16U * (uint32_t)n, VIRTQ_DESC_F_INDIRECT, 0);
        d->next_desc = (uint16_t)((d->next_desc + 1) % d->size);
    } else {
        for (int i = 0; i < n; i++) {
            uint16_t idx = d->next_desc;
            d->next_desc = (uint16_t)((d->next_desc + 1) % d->size);
            vfx_desc(d->desc, idx, s[i].gpa, s[i].len, seg_flags(s, i, n), d->next_desc);
        }
    }
    vfx_avail_add(q, head);
    return head;
}

uint16_t vfx_used_idx(int q) { return g_r16(queue(q)->used + 2); }
uint32_t vfx_used_id(int q, uint16_t i) { return g_r32(queue(q)->used + 4 + 8ULL * (i % queue(q)->size)); }
uint32_t vfx_used_len(int q, uint16_t i) { return g_r32(queue(q)->used + 4 + 8ULL * (i % queue(q)->size) + 4); }

int64_t vfx_used_len_of(int q, uint16_t head)
{
    int64_t len = -1;
    for (uint16_t i = 0; i != vfx_used_idx(q); i++)
        if (vfx_used_id(q, i) == head)
            len = vfx_used_len(q, i);
    return len;
}

int vfx_used_count_of(int q, uint16_t head)
{
    int n = 0;
    for (uint16_t i = 0; i != vfx_used_idx(q); i++)
        n += vfx_used_id(q, i) == head;
    return n;
}

uint16_t vfx_avail_event(int q) { return g_r16(queue(q)->used + 4 + 8ULL * queue(q)->size); }
void vfx_set_used_event(int q, uint16_t v) { g_w16(queue(q)->avail + 4 + 2ULL * queue(q)->size, v); }
void vfx_set_avail_flags(int q, uint16_t flags) { g_w16(queue(q)->avail, flags); }

/* ---- the transport ---- */

static void irq_set(void *ctx, uint32_t gsi, int level)
{
    (void)ctx;
    if (level && !vfx.irq_level)
        vfx.pulses++;
    vfx.irq_level = level;
    vfx.irq_gsi = gsi;
}

struct irq_line vfx_irq_line(uint32_t gsi)
{
    vfx.pulses = vfx.irq_level = 0;
    return (struct irq_line){irq_set, NULL, gsi};
}

uint32_t vfx_rd(uint64_t off)
{
    uint32_t v;
    virtio_mmio_io_ops.read(vfx.m, off, (uint8_t *)&v, 4);
    return v;
}

void vfx_wr(uint64_t off, uint32_t v) { virtio_mmio_io_ops.write(vfx.m, off, (const uint8_t *)&v, 4); }

uint64_t vfx_dev_features(void)
{
    vfx_wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint64_t f = vfx_rd(VIRTIO_MMIO_DEVICE_FEATURES);
    vfx_wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    return f | (uint64_t)vfx_rd(VIRTIO_MMIO_DEVICE_FEATURES) << 32;
}

uint32_t vfx_negotiate(uint64_t features)
{
    vfx_wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    vfx_wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    vfx_wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    vfx_wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
    vfx_wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    vfx_wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
    vfx_wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    return vfx_rd(VIRTIO_MMIO_STATUS);
}

void vfx_queue_regs(uint32_t q, uint32_t num, uint64_t desc, uint64_t avail, uint64_t used, bool ready)
{
    vfx_wr(VIRTIO_MMIO_QUEUE_SEL, q);
    vfx_wr(VIRTIO_MMIO_QUEUE_NUM, num);
    vfx_wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
    vfx_wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
    vfx_wr(VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)avail);
    vfx_wr(VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(avail >> 32));
    vfx_wr(VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)used);
    vfx_wr(VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(used >> 32));
    if (ready)
        vfx_wr(VIRTIO_MMIO_QUEUE_READY, 1);
}

void vfx_driver_up(uint64_t features, int nq)
{
    vfx_wr(VIRTIO_MMIO_STATUS, 0);
    cr_assert_eq(features & ~vfx_dev_features(), 0, "test asks for a feature the device does not offer");
    cr_assert(vfx_negotiate(features) & VIRTIO_STATUS_FEATURES_OK);
    for (int q = 0; q < nq; q++) {
        struct vfx_queue *d = queue(q);
        d->avail_idx = d->next_desc = 0;
        zero_rings(d);
        vfx_queue_regs((uint32_t)q, d->size, d->desc, d->avail, d->used, true);
    }
    vfx_wr(VIRTIO_MMIO_STATUS,
           VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    cr_assert(virtio_dev_driver_ok(virtio_mmio_device(vfx.m)));
}
