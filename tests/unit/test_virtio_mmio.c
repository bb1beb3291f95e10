/*
 * virtio-mmio transport without KVM: vm_fd = -1 (no ioeventfd/irqfd), a fake
 * interrupt line that records pulses, and a tiny fake device model. The test
 * is the driver, speaking to the register file through virtio_mmio_io_ops.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/mmio.h"
#include "devices/virtio/virtio.h"
#include "core/event_loop.h"
#include "tests/unit/virtio_fixture.h"

/* Short names for the registers (mmio_regs.h) in this register-by-register test. */
enum {
    MAGIC = VIRTIO_MMIO_MAGIC_VALUE, VERSION = VIRTIO_MMIO_VERSION, DEVICE_ID = VIRTIO_MMIO_DEVICE_ID,
    VENDOR_ID = VIRTIO_MMIO_VENDOR_ID, DEV_FEATURES = VIRTIO_MMIO_DEVICE_FEATURES,
    DEV_FEATURES_SEL = VIRTIO_MMIO_DEVICE_FEATURES_SEL, DRV_FEATURES = VIRTIO_MMIO_DRIVER_FEATURES,
    DRV_FEATURES_SEL = VIRTIO_MMIO_DRIVER_FEATURES_SEL, QUEUE_SEL = VIRTIO_MMIO_QUEUE_SEL,
    QUEUE_NUM_MAX = VIRTIO_MMIO_QUEUE_NUM_MAX, QUEUE_NUM = VIRTIO_MMIO_QUEUE_NUM, QUEUE_READY = VIRTIO_MMIO_QUEUE_READY,
    QUEUE_NOTIFY = VIRTIO_MMIO_QUEUE_NOTIFY, INT_STATUS = VIRTIO_MMIO_INTERRUPT_STATUS,
    INT_ACK = VIRTIO_MMIO_INTERRUPT_ACK, STATUS = VIRTIO_MMIO_STATUS, CONFIG_GEN = VIRTIO_MMIO_CONFIG_GENERATION,
    CONFIG = VIRTIO_MMIO_CONFIG,
};

#define S_ACK VIRTIO_STATUS_ACKNOWLEDGE
#define S_DRIVER VIRTIO_STATUS_DRIVER
#define S_FEATURES_OK VIRTIO_STATUS_FEATURES_OK
#define S_DRIVER_OK VIRTIO_STATUS_DRIVER_OK
#define S_NEEDS_RESET VIRTIO_STATUS_NEEDS_RESET

#define MEM (1ULL << 20)
#define FAKE_ID 42
#define FAKE_FEATURES (BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_F_EVENT_IDX) | BIT64(3) | BIT64(40))
#define Q0_DESC 0x1000ULL
#define Q0_AVAIL 0x2000ULL
#define Q0_USED 0x3000ULL
#define Q1_DESC 0x5000ULL
#define Q1_AVAIL 0x6000ULL
#define Q1_USED 0x7000ULL

/* ---- the fake device model ---- */

struct fake_dev {
    uint64_t features;
    int activate_calls, activate_rc, reset_calls;
    int notify_calls[4];
    bool push_on_notify; /* complete every available chain when kicked */
    int popped;
    uint8_t cfg[16];
    int cfg_reads, cfg_writes;
    uint64_t cfg_wr_off;
    uint32_t cfg_wr_len;
    uint8_t cfg_wr_data[8];
    bool lock_held_ok;
};

static struct virtio_mmio m;
static struct fake_dev fake;
static struct virtq_chain chain;

static void check_locked(struct virtio_dev *mm)
{
    /* Calls into the device are made with the transport lock held. */
    if (pthread_mutex_trylock(&mm->lock) == 0) {
        fake.lock_held_ok = false;
        pthread_mutex_unlock(&mm->lock);
    }
}

static uint64_t fake_features(void *dev) { return ((struct fake_dev *)dev)->features; }

static void fake_config_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
    struct fake_dev *f = dev;
    f->cfg_reads++;
    for (uint32_t i = 0; i < len; i++)
        data[i] = off + i < sizeof(f->cfg) ? f->cfg[off + i] : 0;
}

static void fake_config_write(void *dev, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct fake_dev *f = dev;
    f->cfg_writes++;
    f->cfg_wr_off = off;
    f->cfg_wr_len = len;
    memcpy(f->cfg_wr_data, data, len < 8 ? len : 8);
}

static int fake_activate(void *dev, struct virtio_dev *mm)
{
    struct fake_dev *f = dev;
    check_locked(mm);
    f->activate_calls++;
    return f->activate_rc;
}

static void fake_notify(void *dev, struct virtio_dev *mm, uint16_t q)
{
    struct fake_dev *f = dev;
    check_locked(mm);
    f->notify_calls[q < 4 ? q : 3]++;
    if (!f->push_on_notify)
        return;
    bool pushed = false;
    int rc;
    while ((rc = virtq_pop(&mm->queues[q], mm->gm, &chain)) == 1) {
        f->popped++;
        virtq_push(&mm->queues[q], mm->gm, chain.head, 0);
        pushed = true;
    }
    if (rc < 0)
        virtio_dev_set_needs_reset(mm, "fake: bad chain");
    else if (pushed)
        virtio_dev_notify_used(mm, q);
}

static void fake_reset(void *dev, struct virtio_dev *mm)
{
    struct fake_dev *f = dev;
    check_locked(mm);
    f->reset_calls++;
}

static const struct virtio_dev_ops fake_ops = {
    .device_id = FAKE_ID,
    .num_queues = 2,
    .features = fake_features,
    .config_read = fake_config_read,
    .config_write = fake_config_write,
    .activate = fake_activate,
    .queue_notify = fake_notify,
    .reset = fake_reset,
};

/* ---- guest memory and the driver side ---- */

static struct event_loop loop;
static bool loop_used;

static void start(struct event_loop *l)
{
    memset(&fake, 0, sizeof(fake));
    fake.features = FAKE_FEATURES;
    fake.lock_held_ok = true;
    for (int i = 0; i < 16; i++)
        fake.cfg[i] = (uint8_t)(0xa0 + i);
    cr_assert_eq(virtio_mmio_init(&m, "fake0", &fake_ops, &fake, &vfx.gm, l, -1, 0xd0000000ULL, 5, vfx_irq_line(5)),
                 0);
    vfx.m = &m;
}

static void setup(void)
{
    vfx_ram_init(MEM);
    loop_used = false;
    start(NULL);
}

static void teardown(void)
{
    virtio_mmio_destroy(&m);
    if (loop_used)
        evloop_destroy(&loop);
    vfx_ram_free();
}

TestSuite(vmmio, .init = setup, .fini = teardown);

/* The whole driver sequence with both queues valid; returns the final status. */
static uint32_t bring_up(void)
{
    cr_assert(vfx_negotiate(BIT64(VIRTIO_F_VERSION_1)) & S_FEATURES_OK);
    vfx_queue_regs(0, 16, Q0_DESC, Q0_AVAIL, Q0_USED, true);
    vfx_queue_regs(1, 16, Q1_DESC, Q1_AVAIL, Q1_USED, true);
    vfx_wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    return vfx_rd(STATUS);
}

/* One single-descriptor chain made available on queue q. */
static void post(uint64_t desc, uint64_t avail, uint16_t idx)
{
    vfx_desc(desc, 0, 0x80000, 64, 0, 0);
    g_w16(avail + 4 + 2ULL * (idx % 16), 0);
    g_w16(avail + 2, (uint16_t)(idx + 1));
}

/* ---- identification and features ---- */

Test(vmmio, identification)
{
    cr_assert_eq(vfx_rd(MAGIC), 0x74726976, "\"virt\"");
    cr_assert_eq(vfx_rd(VERSION), 2, "modern virtio-mmio");
    cr_assert_eq(vfx_rd(DEVICE_ID), FAKE_ID);
    cr_assert_neq(vfx_rd(VENDOR_ID), 0);
    cr_assert_eq(vfx_rd(STATUS), 0);
    cr_assert_eq(vfx_rd(INT_STATUS), 0);
    vfx_wr(MAGIC, 0);
    vfx_wr(DEVICE_ID, 7);
    cr_assert_eq(vfx_rd(MAGIC), 0x74726976, "read-only registers ignore writes");
    cr_assert_eq(vfx_rd(DEVICE_ID), FAKE_ID);
}

Test(vmmio, device_feature_windows)
{
    vfx_wr(DEV_FEATURES_SEL, 0);
    cr_assert_eq(vfx_rd(DEV_FEATURES), (uint32_t)FAKE_FEATURES);
    vfx_wr(DEV_FEATURES_SEL, 1);
    cr_assert_eq(vfx_rd(DEV_FEATURES), (uint32_t)(FAKE_FEATURES >> 32));
    cr_assert(vfx_rd(DEV_FEATURES) & 1, "VERSION_1 is bit 0 of the upper window");
    vfx_wr(DEV_FEATURES_SEL, 2);
    cr_assert_eq(vfx_rd(DEV_FEATURES), 0);
    vfx_wr(DEV_FEATURES_SEL, 0xffffffff);
    cr_assert_eq(vfx_rd(DEV_FEATURES), 0);
}

Test(vmmio, driver_feature_windows)
{
    vfx_wr(STATUS, S_ACK | S_DRIVER);
    vfx_wr(DRV_FEATURES_SEL, 0);
    vfx_wr(DRV_FEATURES, 1u << 3);
    vfx_wr(DRV_FEATURES_SEL, 1);
    vfx_wr(DRV_FEATURES, 1u | 1u << 8); /* VERSION_1, bit 40 */
    vfx_wr(DRV_FEATURES_SEL, 2);
    vfx_wr(DRV_FEATURES, 0xffffffff); /* no such window */
    cr_assert_eq(m.vdev.driver_features, BIT64(3) | BIT64(32) | BIT64(40));
    cr_assert(virtio_dev_has_feature(&m.vdev, 40));
    cr_assert_not(virtio_dev_has_feature(&m.vdev, VIRTIO_F_EVENT_IDX));
    vfx_wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    cr_assert(vfx_rd(STATUS) & S_FEATURES_OK);
    /* After FEATURES_OK the negotiated set is frozen. */
    vfx_wr(DRV_FEATURES_SEL, 0);
    vfx_wr(DRV_FEATURES, 0xffffffff);
    cr_assert_eq(m.vdev.driver_features, BIT64(3) | BIT64(32) | BIT64(40));
}

Test(vmmio, features_ok_refused_for_unoffered_feature)
{
    uint32_t st = vfx_negotiate(BIT64(VIRTIO_F_VERSION_1) | BIT64(4)); /* bit 4 not offered */
    cr_assert_not(st & S_FEATURES_OK);
    cr_assert_eq(st & (S_ACK | S_DRIVER), S_ACK | S_DRIVER);
    st = vfx_negotiate(BIT64(VIRTIO_F_VERSION_1) | BIT64(63));
    cr_assert_not(st & S_FEATURES_OK);
}

Test(vmmio, features_ok_refused_without_version_1)
{
    cr_assert_not(vfx_negotiate(BIT64(3)) & S_FEATURES_OK, "legacy drivers are not served");
    cr_assert_not(vfx_negotiate(0) & S_FEATURES_OK);
    cr_assert(vfx_negotiate(BIT64(VIRTIO_F_VERSION_1) | BIT64(3)) & S_FEATURES_OK);
}

Test(vmmio, driver_ok_needs_features_ok)
{
    vfx_wr(STATUS, S_ACK | S_DRIVER);
    vfx_queue_regs(0, 16, Q0_DESC, Q0_AVAIL, Q0_USED, true);
    vfx_wr(STATUS, S_ACK | S_DRIVER | S_DRIVER_OK);
    cr_assert_not(vfx_rd(STATUS) & S_DRIVER_OK);
    cr_assert_eq(fake.activate_calls, 0);
}

/* ---- queue registers ---- */

Test(vmmio, queue_num_max)
{
    vfx_wr(QUEUE_SEL, 0);
    cr_assert_eq(vfx_rd(QUEUE_NUM_MAX), VIRTQ_MAX_SIZE);
    vfx_wr(QUEUE_SEL, 1);
    cr_assert_eq(vfx_rd(QUEUE_NUM_MAX), VIRTQ_MAX_SIZE);
    vfx_wr(QUEUE_SEL, 2);
    cr_assert_eq(vfx_rd(QUEUE_NUM_MAX), 0, "the device has two queues");
    cr_assert_eq(vfx_rd(QUEUE_READY), 0);
    vfx_wr(QUEUE_SEL, 0xffffffff);
    cr_assert_eq(vfx_rd(QUEUE_NUM_MAX), 0);
    /* Writes to a queue that does not exist go nowhere. */
    vfx_queue_regs(0xffffffff, 16, Q0_DESC, Q0_AVAIL, Q0_USED, true);
    cr_assert_eq(vfx_rd(QUEUE_READY), 0);
    cr_assert_eq(m.vdev.queues[0].size, 0);
    cr_assert_eq(m.vdev.queues[1].size, 0);
}

Test(vmmio, queue_registers_before_ready)
{
    vfx_negotiate(BIT64(VIRTIO_F_VERSION_1));
    vfx_queue_regs(1, 64, 0x123456789000ULL, 0xabcdef002ULL, 0x44444444ULL, false);
    cr_assert_eq(m.vdev.queues[1].size, 64);
    cr_assert_eq(m.vdev.queues[1].desc_gpa, 0x123456789000ULL);
    cr_assert_eq(m.vdev.queues[1].avail_gpa, 0xabcdef002ULL);
    cr_assert_eq(m.vdev.queues[1].used_gpa, 0x44444444ULL);
    cr_assert_eq(m.vdev.queues[0].size, 0, "QueueSel picked queue 1 only");
    vfx_wr(QUEUE_READY, 1);
    cr_assert_eq(vfx_rd(QUEUE_READY), 1);
    cr_assert(m.vdev.queues[1].ready);

    /* Live queue: its layout is frozen. */
    vfx_queue_regs(1, 8, Q1_DESC, Q1_AVAIL, Q1_USED, false);
    cr_assert_eq(m.vdev.queues[1].size, 64);
    cr_assert_eq(m.vdev.queues[1].desc_gpa, 0x123456789000ULL);
    cr_assert_eq(m.vdev.queues[1].avail_gpa, 0xabcdef002ULL);
    cr_assert_eq(m.vdev.queues[1].used_gpa, 0x44444444ULL);

    /* Not ready again: writable again (before DRIVER_OK). */
    vfx_wr(QUEUE_READY, 0);
    cr_assert_eq(vfx_rd(QUEUE_READY), 0);
    vfx_queue_regs(1, 8, Q1_DESC, Q1_AVAIL, Q1_USED, false);
    cr_assert_eq(m.vdev.queues[1].size, 8);
    cr_assert_eq(m.vdev.queues[1].desc_gpa, Q1_DESC);
}

Test(vmmio, queue_registers_frozen_after_driver_ok)
{
    vfx_negotiate(BIT64(VIRTIO_F_VERSION_1));
    vfx_queue_regs(0, 16, Q0_DESC, Q0_AVAIL, Q0_USED, true);
    vfx_queue_regs(1, 16, Q1_DESC, Q1_AVAIL, Q1_USED, false); /* queue 1 left unused */
    vfx_wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    cr_assert(vfx_rd(STATUS) & S_DRIVER_OK);
    vfx_queue_regs(1, 32, 0x10000, 0x11000, 0x12000, false);
    cr_assert_eq(m.vdev.queues[1].size, 16, "after DRIVER_OK even an idle queue's layout is frozen");
    cr_assert_eq(m.vdev.queues[1].desc_gpa, Q1_DESC);
    cr_assert_eq(m.vdev.queues[1].avail_gpa, Q1_AVAIL);
    cr_assert_eq(m.vdev.queues[1].used_gpa, Q1_USED);
}

Test(vmmio, queue_ready_needs_a_power_of_two_size)
{
    vfx_negotiate(BIT64(VIRTIO_F_VERSION_1));
    vfx_queue_regs(0, 0, Q0_DESC, Q0_AVAIL, Q0_USED, true);
    cr_assert_eq(vfx_rd(QUEUE_READY), 0, "size 0");
    vfx_queue_regs(0, 24, Q0_DESC, Q0_AVAIL, Q0_USED, true);
    cr_assert_eq(vfx_rd(QUEUE_READY), 0, "size 24");
    vfx_queue_regs(0, 512, Q0_DESC, Q0_AVAIL, Q0_USED, true);
    cr_assert_eq(vfx_rd(QUEUE_READY), 0, "size above QueueNumMax");
    cr_assert_leq(m.vdev.queues[0].size, VIRTQ_MAX_SIZE);
    vfx_queue_regs(0, 0x10010, Q0_DESC, Q0_AVAIL, Q0_USED, true); /* truncates to 16 if taken as u16 */
    cr_assert_eq(vfx_rd(QUEUE_READY), 0, "size 0x10010");
    vfx_queue_regs(0, 256, Q0_DESC, Q0_AVAIL, Q0_USED, true);
    cr_assert_eq(vfx_rd(QUEUE_READY), 1);
}

/* ---- DRIVER_OK ---- */

Test(vmmio, driver_ok_activates)
{
    uint32_t st = bring_up();
    cr_assert_eq(st, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    cr_assert(virtio_dev_driver_ok(&m.vdev));
    cr_assert_eq(fake.activate_calls, 1);
    cr_assert(fake.lock_held_ok);
    cr_assert_eq(vfx.pulses, 0);
    /* Writing the same status again does not activate twice. */
    vfx_wr(STATUS, st);
    cr_assert_eq(fake.activate_calls, 1);
}

Test(vmmio, driver_ok_with_rings_outside_memory)
{
    vfx_negotiate(BIT64(VIRTIO_F_VERSION_1));
    vfx_queue_regs(0, 16, Q0_DESC, Q0_AVAIL, Q0_USED, true);
    vfx_queue_regs(1, 16, Q1_DESC, MEM - 8, Q1_USED, true); /* avail ring runs past the end */
    vfx_wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    uint32_t st = vfx_rd(STATUS);
    cr_assert(st & S_NEEDS_RESET);
    cr_assert_eq(fake.activate_calls, 0, "the device is not started on bad rings");
    cr_assert_not(virtio_dev_driver_ok(&m.vdev));
    cr_assert(vfx_rd(INT_STATUS) & VIRTIO_INT_CONFIG);
    cr_assert_eq(vfx.pulses, 1);
    cr_assert_eq(vfx.irq_gsi, 5);
    /* Kicks are not served until the driver resets. */
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(fake.notify_calls[0], 0);
    /* NEEDS_RESET cannot be cleared by the driver short of a reset. */
    vfx_wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    cr_assert(vfx_rd(STATUS) & S_NEEDS_RESET);
}

Test(vmmio, driver_ok_with_misaligned_or_far_rings)
{
    static const uint64_t bad[][3] = {
        {Q0_DESC + 8, Q0_AVAIL, Q0_USED},  /* descriptor table not 16-aligned */
        {Q0_DESC, Q0_AVAIL + 1, Q0_USED},  /* avail ring odd */
        {Q0_DESC, Q0_AVAIL, Q0_USED + 2},  /* used ring not 4-aligned */
        {0xc0000000ULL, Q0_AVAIL, Q0_USED}, /* in the MMIO gap */
        {Q0_DESC, Q0_AVAIL, 0xfffffffffffffff0ULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vfx_wr(STATUS, 0);
        vfx_negotiate(BIT64(VIRTIO_F_VERSION_1));
        vfx_queue_regs(0, 16, bad[i][0], bad[i][1], bad[i][2], true);
        vfx_wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
        cr_assert(vfx_rd(STATUS) & S_NEEDS_RESET, "case %zu", i);
        cr_assert_eq(fake.activate_calls, 0, "case %zu", i);
    }
}

Test(vmmio, activate_failure_needs_reset)
{
    fake.activate_rc = -EBUSY;
    uint32_t st = bring_up();
    cr_assert(st & S_NEEDS_RESET);
    cr_assert_not(virtio_dev_driver_ok(&m.vdev));
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(fake.notify_calls[0], 0);
}

Test(vmmio, BUG_queue_ready_after_driver_ok_skips_ring_validation)
{
    /*
     * Queue 1 is configured with an avail ring past the end of RAM but left
     * not ready, so DRIVER_OK validates only queue 0. Enabling queue 1
     * afterwards must not give the device a live queue whose rings were
     * never checked: either QueueReady is refused after DRIVER_OK (no
     * VIRTIO_F_RING_RESET is offered) or the rings are validated then.
     */
    vfx_negotiate(BIT64(VIRTIO_F_VERSION_1));
    vfx_queue_regs(0, 16, Q0_DESC, Q0_AVAIL, Q0_USED, true);
    vfx_queue_regs(1, 16, Q1_DESC, MEM - 8, Q1_USED + 2, false);
    vfx_wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    cr_assert(virtio_dev_driver_ok(&m.vdev));
    vfx_wr(QUEUE_SEL, 1);
    vfx_wr(QUEUE_READY, 1);
    bool live_unchecked = m.vdev.queues[1].ready && !(vfx_rd(STATUS) & S_NEEDS_RESET);
    cr_expect_not(live_unchecked, "queue 1 went live after DRIVER_OK with rings that were never validated");
    /* Whatever happens, serving it must stay inside guest memory. */
    fake.push_on_notify = true;
    virtio_mmio_kick(&m, 1);
}

/* ---- reset ---- */

Test(vmmio, reset_clears_everything)
{
    bring_up();
    virtio_mmio_config_changed(&m); /* leaves an interrupt pending */
    vfx_wr(DEV_FEATURES_SEL, 1);
    vfx_wr(QUEUE_SEL, 1);
    cr_assert_neq(vfx_rd(INT_STATUS), 0);
    vfx_wr(STATUS, 0);
    cr_assert_eq(fake.reset_calls, 1);
    cr_assert(fake.lock_held_ok);
    cr_assert_eq(vfx_rd(STATUS), 0);
    cr_assert_eq(vfx_rd(INT_STATUS), 0);
    cr_assert_eq(m.vdev.driver_features, 0);
    cr_assert_eq(m.dev_features_sel, 0);
    cr_assert_eq(m.queue_sel, 0);
    for (int q = 0; q < 2; q++) {
        cr_assert_not(m.vdev.queues[q].ready);
        cr_assert_eq(m.vdev.queues[q].size, 0);
        cr_assert_eq(m.vdev.queues[q].desc_gpa, 0);
        cr_assert_eq(m.vdev.queues[q].avail_gpa, 0);
        cr_assert_eq(m.vdev.queues[q].used_gpa, 0);
        cr_assert_eq(m.vdev.queues[q].last_avail, 0);
        cr_assert_eq(m.vdev.queues[q].used_idx, 0);
    }
    cr_assert_not(virtio_dev_driver_ok(&m.vdev));
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(fake.notify_calls[0], 0);

    /* The device can be brought up again from scratch. */
    cr_assert(bring_up() & S_DRIVER_OK);
    cr_assert_eq(fake.activate_calls, 2);
}

Test(vmmio, reset_clears_needs_reset)
{
    bring_up();
    virtio_dev_set_needs_reset(&m.vdev, "test");
    cr_assert(vfx_rd(STATUS) & S_NEEDS_RESET);
    vfx_wr(STATUS, 0);
    cr_assert_eq(vfx_rd(STATUS), 0);
    cr_assert_eq(fake.reset_calls, 1);
    cr_assert_eq(bring_up(), S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

/* ---- interrupts ---- */

Test(vmmio, used_ring_interrupt_and_ack)
{
    bring_up();
    fake.push_on_notify = true;
    post(Q0_DESC, Q0_AVAIL, 0);
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(fake.notify_calls[0], 1);
    cr_assert_eq(fake.popped, 1);
    cr_assert_eq(g_r16(Q0_USED + 2), 1);
    cr_assert_eq(vfx_rd(INT_STATUS), VIRTIO_INT_USED_RING);
    cr_assert_eq(vfx.pulses, 1);
    cr_assert_eq(vfx.irq_level, 0, "an edge: raised and lowered");
    vfx_wr(INT_ACK, VIRTIO_INT_CONFIG); /* acking the other bit changes nothing */
    cr_assert_eq(vfx_rd(INT_STATUS), VIRTIO_INT_USED_RING);
    vfx_wr(INT_ACK, VIRTIO_INT_USED_RING);
    cr_assert_eq(vfx_rd(INT_STATUS), 0);
    vfx_wr(INT_STATUS, 3); /* read-only */
    cr_assert_eq(vfx_rd(INT_STATUS), 0);

    /* The driver asks for no interrupts (VIRTQ_AVAIL_F_NO_INTERRUPT). */
    g_w16(Q0_AVAIL, 1);
    post(Q0_DESC, Q0_AVAIL, 1);
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(g_r16(Q0_USED + 2), 2);
    cr_assert_eq(vfx_rd(INT_STATUS), 0);
    cr_assert_eq(vfx.pulses, 1);
}

Test(vmmio, config_change_interrupt)
{
    uint32_t gen = vfx_rd(CONFIG_GEN);
    virtio_mmio_config_changed(&m);
    cr_assert_neq(vfx_rd(CONFIG_GEN), gen);
    cr_assert_eq(vfx.pulses, 0, "no interrupt before DRIVER_OK");
    bring_up();
    gen = vfx_rd(CONFIG_GEN);
    virtio_mmio_config_changed(&m);
    cr_assert_neq(vfx_rd(CONFIG_GEN), gen);
    cr_assert_eq(vfx_rd(INT_STATUS), VIRTIO_INT_CONFIG);
    cr_assert_eq(vfx.pulses, 1);
}

Test(vmmio, device_needs_reset)
{
    bring_up();
    fake.push_on_notify = true;
    g_w16(Q1_AVAIL + 4, 99); /* head 99 in a 16-entry queue */
    g_w16(Q1_AVAIL + 2, 1);
    virtio_mmio_kick(&m, 1);
    cr_assert(vfx_rd(STATUS) & S_NEEDS_RESET);
    cr_assert(vfx_rd(INT_STATUS) & VIRTIO_INT_CONFIG);
    cr_assert_eq(vfx.pulses, 1);
    virtio_mmio_kick(&m, 1);
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(fake.notify_calls[1], 1, "a stopped device is not kicked again");
    cr_assert_eq(fake.notify_calls[0], 0);
}

/* ---- device configuration space ---- */

Test(vmmio, config_space_routed_to_device)
{
    uint8_t b[8];
    memset(b, 0, sizeof(b));
    virtio_mmio_io_ops.read(&m, CONFIG + 4, b, 4);
    cr_assert_eq(b[0], 0xa4);
    cr_assert_eq(b[3], 0xa7);
    virtio_mmio_io_ops.read(&m, CONFIG + 1, b, 1);
    cr_assert_eq(b[0], 0xa1, "config space takes byte accesses");
    virtio_mmio_io_ops.read(&m, CONFIG + 6, b, 2);
    cr_assert_eq(b[0], 0xa6);
    cr_assert_eq(b[1], 0xa7);
    virtio_mmio_io_ops.read(&m, CONFIG + 8, b, 8);
    cr_assert_eq(b[7], 0xaf);
    memset(b, 0x55, sizeof(b));
    virtio_mmio_io_ops.read(&m, CONFIG + 0x200, b, 4);
    cr_assert_eq(b[0], 0, "beyond the device's config: zeros");
    cr_assert_gt(fake.cfg_reads, 0);

    const uint8_t v[2] = {0x12, 0x34};
    virtio_mmio_io_ops.write(&m, CONFIG + 10, v, 2);
    cr_assert_eq(fake.cfg_writes, 1);
    cr_assert_eq(fake.cfg_wr_off, 10);
    cr_assert_eq(fake.cfg_wr_len, 2);
    cr_assert_eq(fake.cfg_wr_data[1], 0x34);
}

Test(vmmio, config_write_without_handler)
{
    static struct virtio_dev_ops ro_ops;
    ro_ops = fake_ops;
    ro_ops.config_write = NULL;
    virtio_mmio_destroy(&m);
    cr_assert_eq(virtio_mmio_init(&m, "fake-ro", &ro_ops, &fake, &vfx.gm, NULL, -1, 0, 5, (struct irq_line){0}), 0);
    const uint8_t v = 1;
    virtio_mmio_io_ops.write(&m, CONFIG, &v, 1); /* read-only config: dropped */
    cr_assert_eq(fake.cfg_writes, 0);
    bring_up(); /* irq_line without a setter: interrupts go nowhere, no crash */
    virtio_mmio_config_changed(&m);
}

/* ---- odd accesses ---- */

Test(vmmio, non_4_byte_register_accesses_ignored)
{
    uint8_t b[8];
    memset(b, 0xee, sizeof(b));
    virtio_mmio_io_ops.read(&m, MAGIC, b, 2);
    cr_assert_eq(b[0], 0);
    cr_assert_eq(b[1], 0);
    memset(b, 0xee, sizeof(b));
    virtio_mmio_io_ops.read(&m, MAGIC, b, 1);
    cr_assert_eq(b[0], 0);
    memset(b, 0xee, sizeof(b));
    virtio_mmio_io_ops.read(&m, MAGIC, b, 8);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(b[i], 0);
    memset(b, 0xee, sizeof(b));
    virtio_mmio_io_ops.read(&m, MAGIC + 1, b, 4); /* unaligned */
    cr_assert_eq(b[0], 0);

    const uint8_t one = S_ACK;
    virtio_mmio_io_ops.write(&m, STATUS, &one, 1);
    cr_assert_eq(vfx_rd(STATUS), 0);
    const uint8_t w2[2] = {S_ACK, 0};
    virtio_mmio_io_ops.write(&m, STATUS, w2, 2);
    cr_assert_eq(vfx_rd(STATUS), 0);
    const uint8_t w4[4] = {S_ACK, 0, 0, 0};
    virtio_mmio_io_ops.write(&m, STATUS + 1, w4, 4);
    cr_assert_eq(vfx_rd(STATUS), 0);
    const uint8_t w8[8] = {16, 0, 0, 0, 0, 0, 0, 0};
    virtio_mmio_io_ops.write(&m, QUEUE_NUM, w8, 8);
    cr_assert_eq(m.vdev.queues[0].size, 0);
    virtio_mmio_io_ops.write(&m, STATUS, w4, 4);
    cr_assert_eq(vfx_rd(STATUS), S_ACK);
    /* Reserved registers read as zero and ignore writes. */
    cr_assert_eq(vfx_rd(0x0f0), 0);
    vfx_wr(0x0f0, 0xffffffff);
    cr_assert_eq(vfx_rd(0x0f0), 0);
}

Test(vmmio, queue_notify_out_of_range_is_harmless)
{
    bring_up();
    fake.push_on_notify = true;
    vfx_wr(QUEUE_NOTIFY, 2);
    vfx_wr(QUEUE_NOTIFY, 0xffff);
    vfx_wr(QUEUE_NOTIFY, 0xffffffff);
    vfx_wr(QUEUE_NOTIFY, 0x10000); /* would alias queue 0 if truncated to 16 bits */
    virtio_mmio_kick(&m, 2);
    virtio_mmio_kick(&m, 0xffff);
    cr_assert_eq(fake.notify_calls[0] + fake.notify_calls[1] + fake.notify_calls[2] + fake.notify_calls[3], 0);
    cr_assert_eq(vfx_rd(STATUS) & S_NEEDS_RESET, 0);
}

/* ---- kicks ---- */

Test(vmmio, kick_drives_queue_notify)
{
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(fake.notify_calls[0], 0, "not before DRIVER_OK");
    vfx_negotiate(BIT64(VIRTIO_F_VERSION_1));
    vfx_queue_regs(0, 16, Q0_DESC, Q0_AVAIL, Q0_USED, true);
    vfx_queue_regs(1, 16, Q1_DESC, Q1_AVAIL, Q1_USED, false);
    vfx_wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    virtio_mmio_kick(&m, 0);
    virtio_mmio_kick(&m, 1);
    cr_assert_eq(fake.notify_calls[0], 1);
    cr_assert_eq(fake.notify_calls[1], 0, "queue 1 is not ready");
    cr_assert(fake.lock_held_ok);
}

Test(vmmio, queue_notify_register_through_event_loop)
{
    virtio_mmio_destroy(&m);
    cr_assert_eq(evloop_init(&loop), 0);
    loop_used = true;
    start(&loop);
    bring_up();
    fake.push_on_notify = true;
    post(Q1_DESC, Q1_AVAIL, 0);
    vfx_wr(QUEUE_NOTIFY, 1); /* without an ioeventfd the write lands on the eventfd */
    cr_assert_eq(fake.notify_calls[1], 0, "served on the event loop, not the vCPU thread");
    for (int i = 0; i < 10 && !fake.notify_calls[1]; i++)
        evloop_run_once(&loop, 100);
    cr_assert_eq(fake.notify_calls[1], 1);
    cr_assert_eq(fake.notify_calls[0], 0);
    cr_assert_eq(g_r16(Q1_USED + 2), 1);
    cr_assert_eq(vfx_rd(INT_STATUS), VIRTIO_INT_USED_RING);
    vfx_wr(QUEUE_NOTIFY, 7);
    cr_assert_eq(evloop_run_once(&loop, 0), 0, "nothing to do for a bogus queue");
}
