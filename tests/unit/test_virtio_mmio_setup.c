/*
 * virtio-mmio transport without KVM, the driver's side of bringing a device
 * up: identification, feature windows and negotiation, the queue registers,
 * and DRIVER_OK with good and bad rings. The device is a fake (virtio_mmio_fixture.h).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "tests/unit/virtio_mmio_fixture.h"

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
    cr_assert_eq(mmiofx.m.vdev.driver_features, BIT64(3) | BIT64(32) | BIT64(40));
    cr_assert(virtio_dev_has_feature(&mmiofx.m.vdev, 40));
    cr_assert_not(virtio_dev_has_feature(&mmiofx.m.vdev, VIRTIO_F_EVENT_IDX));
    vfx_wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    cr_assert(vfx_rd(STATUS) & S_FEATURES_OK);
    /* After FEATURES_OK the negotiated set is frozen. */
    vfx_wr(DRV_FEATURES_SEL, 0);
    vfx_wr(DRV_FEATURES, 0xffffffff);
    cr_assert_eq(mmiofx.m.vdev.driver_features, BIT64(3) | BIT64(32) | BIT64(40));
    /* A status write without FEATURES_OK does not reopen negotiation: only a reset does. */
    vfx_wr(STATUS, S_ACK | S_DRIVER);
    cr_assert(vfx_rd(STATUS) & S_FEATURES_OK);
    vfx_wr(DRV_FEATURES, 0xffffffff);
    cr_assert_eq(mmiofx.m.vdev.driver_features, BIT64(3) | BIT64(32) | BIT64(40));
    vfx_wr(STATUS, 0);
    cr_assert_eq(vfx_rd(STATUS), 0);
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
    cr_assert_eq(mmiofx.fake.activate_calls, 0);
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
    cr_assert_eq(mmiofx.m.vdev.queues[0].size, 0);
    cr_assert_eq(mmiofx.m.vdev.queues[1].size, 0);
}

Test(vmmio, queue_registers_before_ready)
{
    vfx_negotiate(BIT64(VIRTIO_F_VERSION_1));
    vfx_queue_regs(1, 64, 0x123456789000ULL, 0xabcdef002ULL, 0x44444444ULL, false);
    cr_assert_eq(mmiofx.m.vdev.queues[1].size, 64);
    cr_assert_eq(mmiofx.m.vdev.queues[1].desc_gpa, 0x123456789000ULL);
    cr_assert_eq(mmiofx.m.vdev.queues[1].avail_gpa, 0xabcdef002ULL);
    cr_assert_eq(mmiofx.m.vdev.queues[1].used_gpa, 0x44444444ULL);
    cr_assert_eq(mmiofx.m.vdev.queues[0].size, 0, "QueueSel picked queue 1 only");
    vfx_wr(QUEUE_READY, 1);
    cr_assert_eq(vfx_rd(QUEUE_READY), 1);
    cr_assert(mmiofx.m.vdev.queues[1].ready);

    /* Live queue: its layout is frozen. */
    vfx_queue_regs(1, 8, Q1_DESC, Q1_AVAIL, Q1_USED, false);
    cr_assert_eq(mmiofx.m.vdev.queues[1].size, 64);
    cr_assert_eq(mmiofx.m.vdev.queues[1].desc_gpa, 0x123456789000ULL);
    cr_assert_eq(mmiofx.m.vdev.queues[1].avail_gpa, 0xabcdef002ULL);
    cr_assert_eq(mmiofx.m.vdev.queues[1].used_gpa, 0x44444444ULL);

    /* Not ready again: writable again (before DRIVER_OK). */
    vfx_wr(QUEUE_READY, 0);
    cr_assert_eq(vfx_rd(QUEUE_READY), 0);
    vfx_queue_regs(1, 8, Q1_DESC, Q1_AVAIL, Q1_USED, false);
    cr_assert_eq(mmiofx.m.vdev.queues[1].size, 8);
    cr_assert_eq(mmiofx.m.vdev.queues[1].desc_gpa, Q1_DESC);
}

Test(vmmio, queue_registers_frozen_after_driver_ok)
{
    vfx_negotiate(BIT64(VIRTIO_F_VERSION_1));
    vfx_queue_regs(0, 16, Q0_DESC, Q0_AVAIL, Q0_USED, true);
    vfx_queue_regs(1, 16, Q1_DESC, Q1_AVAIL, Q1_USED, false); /* queue 1 left unused */
    vfx_wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    cr_assert(vfx_rd(STATUS) & S_DRIVER_OK);
    vfx_queue_regs(1, 32, 0x10000, 0x11000, 0x12000, false);
    cr_assert_eq(mmiofx.m.vdev.queues[1].size, 16, "after DRIVER_OK even an idle queue's layout is frozen");
    cr_assert_eq(mmiofx.m.vdev.queues[1].desc_gpa, Q1_DESC);
    cr_assert_eq(mmiofx.m.vdev.queues[1].avail_gpa, Q1_AVAIL);
    cr_assert_eq(mmiofx.m.vdev.queues[1].used_gpa, Q1_USED);
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
    cr_assert_leq(mmiofx.m.vdev.queues[0].size, VIRTQ_MAX_SIZE);
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
    cr_assert(virtio_dev_driver_ok(&mmiofx.m.vdev));
    cr_assert_eq(mmiofx.fake.activate_calls, 1);
    cr_assert(mmiofx.fake.lock_held_ok);
    cr_assert_eq(vfx.pulses, 0);
    /* Writing the same status again does not activate twice. */
    vfx_wr(STATUS, st);
    cr_assert_eq(mmiofx.fake.activate_calls, 1);
}

Test(vmmio, driver_ok_with_rings_outside_memory)
{
    vfx_negotiate(BIT64(VIRTIO_F_VERSION_1));
    vfx_queue_regs(0, 16, Q0_DESC, Q0_AVAIL, Q0_USED, true);
    vfx_queue_regs(1, 16, Q1_DESC, MEM - 8, Q1_USED, true); /* avail ring runs past the end */
    vfx_wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    uint32_t st = vfx_rd(STATUS);
    cr_assert(st & S_NEEDS_RESET);
    cr_assert_eq(mmiofx.fake.activate_calls, 0, "the device is not started on bad rings");
    cr_assert_not(virtio_dev_driver_ok(&mmiofx.m.vdev));
    cr_assert(vfx_rd(INT_STATUS) & VIRTIO_INT_CONFIG);
    cr_assert_eq(vfx.pulses, 1);
    cr_assert_eq(vfx.irq_gsi, 5);
    /* Kicks are not served until the driver resets. */
    virtio_mmio_kick(&mmiofx.m, 0);
    cr_assert_eq(mmiofx.fake.notify_calls[0], 0);
    /* NEEDS_RESET cannot be cleared by the driver short of a reset. */
    vfx_wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    cr_assert(vfx_rd(STATUS) & S_NEEDS_RESET);
}

Test(vmmio, driver_ok_with_misaligned_or_far_rings)
{
    static const uint64_t bad[][3] = {
        {Q0_DESC + 8, Q0_AVAIL, Q0_USED},   /* descriptor table not 16-aligned */
        {Q0_DESC, Q0_AVAIL + 1, Q0_USED},   /* avail ring odd */
        {Q0_DESC, Q0_AVAIL, Q0_USED + 2},   /* used ring not 4-aligned */
        {0xc0000000ULL, Q0_AVAIL, Q0_USED}, /* in the MMIO gap */
        {Q0_DESC, Q0_AVAIL, 0xfffffffffffffff0ULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vfx_wr(STATUS, 0);
        vfx_negotiate(BIT64(VIRTIO_F_VERSION_1));
        vfx_queue_regs(0, 16, bad[i][0], bad[i][1], bad[i][2], true);
        vfx_wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
        cr_assert(vfx_rd(STATUS) & S_NEEDS_RESET, "case %zu", i);
        cr_assert_eq(mmiofx.fake.activate_calls, 0, "case %zu", i);
    }
}

Test(vmmio, activate_failure_needs_reset)
{
    mmiofx.fake.activate_rc = -EBUSY;
    uint32_t st = bring_up();
    cr_assert(st & S_NEEDS_RESET);
    cr_assert_not(virtio_dev_driver_ok(&mmiofx.m.vdev));
    virtio_mmio_kick(&mmiofx.m, 0);
    cr_assert_eq(mmiofx.fake.notify_calls[0], 0);
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
    cr_assert(virtio_dev_driver_ok(&mmiofx.m.vdev));
    vfx_wr(QUEUE_SEL, 1);
    vfx_wr(QUEUE_READY, 1);
    bool live_unchecked = mmiofx.m.vdev.queues[1].ready && !(vfx_rd(STATUS) & S_NEEDS_RESET);
    cr_expect_not(live_unchecked, "queue 1 went live after DRIVER_OK with rings that were never validated");
    /* Whatever happens, serving it must stay inside guest memory. */
    mmiofx.fake.push_on_notify = true;
    virtio_mmio_kick(&mmiofx.m, 1);
}
