/*
 * virtio-mmio transport without KVM, a device at work: reset, interrupts,
 * the device configuration space, odd register accesses and kicks. The
 * device is a fake (virtio_mmio_fixture.h).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "tests/unit/virtio_mmio_fixture.h"

/* ---- reset ---- */

Test(vmmio, reset_clears_everything)
{
    bring_up();
    virtio_mmio_config_changed(&mmiofx.m); /* leaves an interrupt pending */
    vfx_wr(DEV_FEATURES_SEL, 1);
    vfx_wr(QUEUE_SEL, 1);
    cr_assert_neq(vfx_rd(INT_STATUS), 0);
    vfx_wr(STATUS, 0);
    cr_assert_eq(mmiofx.fake.reset_calls, 1);
    cr_assert(mmiofx.fake.lock_held_ok);
    cr_assert_eq(vfx_rd(STATUS), 0);
    cr_assert_eq(vfx_rd(INT_STATUS), 0);
    cr_assert_eq(mmiofx.m.vdev.driver_features, 0);
    cr_assert_eq(mmiofx.m.dev_features_sel, 0);
    cr_assert_eq(mmiofx.m.queue_sel, 0);
    for (int q = 0; q < 2; q++) {
        cr_assert_not(mmiofx.m.vdev.queues[q].ready);
        cr_assert_eq(mmiofx.m.vdev.queues[q].size, 0);
        cr_assert_eq(mmiofx.m.vdev.queues[q].desc_gpa, 0);
        cr_assert_eq(mmiofx.m.vdev.queues[q].avail_gpa, 0);
        cr_assert_eq(mmiofx.m.vdev.queues[q].used_gpa, 0);
        cr_assert_eq(mmiofx.m.vdev.queues[q].last_avail, 0);
        cr_assert_eq(mmiofx.m.vdev.queues[q].used_idx, 0);
    }
    cr_assert_not(virtio_dev_driver_ok(&mmiofx.m.vdev));
    virtio_mmio_kick(&mmiofx.m, 0);
    cr_assert_eq(mmiofx.fake.notify_calls[0], 0);

    /* The device can be brought up again from scratch. */
    cr_assert(bring_up() & S_DRIVER_OK);
    cr_assert_eq(mmiofx.fake.activate_calls, 2);
}

Test(vmmio, reset_clears_needs_reset)
{
    bring_up();
    virtio_dev_set_needs_reset(&mmiofx.m.vdev, "test");
    cr_assert(vfx_rd(STATUS) & S_NEEDS_RESET);
    vfx_wr(STATUS, 0);
    cr_assert_eq(vfx_rd(STATUS), 0);
    cr_assert_eq(mmiofx.fake.reset_calls, 1);
    cr_assert_eq(bring_up(), S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

/* ---- interrupts ---- */

Test(vmmio, used_ring_interrupt_and_ack)
{
    bring_up();
    mmiofx.fake.push_on_notify = true;
    post_chain(Q0_DESC, Q0_AVAIL, 0);
    virtio_mmio_kick(&mmiofx.m, 0);
    cr_assert_eq(mmiofx.fake.notify_calls[0], 1);
    cr_assert_eq(mmiofx.fake.popped, 1);
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
    post_chain(Q0_DESC, Q0_AVAIL, 1);
    virtio_mmio_kick(&mmiofx.m, 0);
    cr_assert_eq(g_r16(Q0_USED + 2), 2);
    cr_assert_eq(vfx_rd(INT_STATUS), 0);
    cr_assert_eq(vfx.pulses, 1);
}

Test(vmmio, config_change_interrupt)
{
    uint32_t gen = vfx_rd(CONFIG_GEN);
    virtio_mmio_config_changed(&mmiofx.m);
    cr_assert_neq(vfx_rd(CONFIG_GEN), gen);
    cr_assert_eq(vfx.pulses, 0, "no interrupt before DRIVER_OK");
    bring_up();
    gen = vfx_rd(CONFIG_GEN);
    virtio_mmio_config_changed(&mmiofx.m);
    cr_assert_neq(vfx_rd(CONFIG_GEN), gen);
    cr_assert_eq(vfx_rd(INT_STATUS), VIRTIO_INT_CONFIG);
    cr_assert_eq(vfx.pulses, 1);
}

Test(vmmio, device_needs_reset)
{
    bring_up();
    mmiofx.fake.push_on_notify = true;
    g_w16(Q1_AVAIL + 4, 99); /* head 99 in a 16-entry queue */
    g_w16(Q1_AVAIL + 2, 1);
    virtio_mmio_kick(&mmiofx.m, 1);
    cr_assert(vfx_rd(STATUS) & S_NEEDS_RESET);
    cr_assert(vfx_rd(INT_STATUS) & VIRTIO_INT_CONFIG);
    cr_assert_eq(vfx.pulses, 1);
    virtio_mmio_kick(&mmiofx.m, 1);
    virtio_mmio_kick(&mmiofx.m, 0);
    cr_assert_eq(mmiofx.fake.notify_calls[1], 1, "a stopped device is not kicked again");
    cr_assert_eq(mmiofx.fake.notify_calls[0], 0);
}

/* ---- device configuration space ---- */

Test(vmmio, config_space_routed_to_device)
{
    uint8_t b[8];
    memset(b, 0, sizeof(b));
    virtio_mmio_io_ops.read(&mmiofx.m, CONFIG + 4, b, 4);
    cr_assert_eq(b[0], 0xa4);
    cr_assert_eq(b[3], 0xa7);
    virtio_mmio_io_ops.read(&mmiofx.m, CONFIG + 1, b, 1);
    cr_assert_eq(b[0], 0xa1, "config space takes byte accesses");
    virtio_mmio_io_ops.read(&mmiofx.m, CONFIG + 6, b, 2);
    cr_assert_eq(b[0], 0xa6);
    cr_assert_eq(b[1], 0xa7);
    virtio_mmio_io_ops.read(&mmiofx.m, CONFIG + 8, b, 8);
    cr_assert_eq(b[7], 0xaf);
    memset(b, 0x55, sizeof(b));
    virtio_mmio_io_ops.read(&mmiofx.m, CONFIG + 0x200, b, 4);
    cr_assert_eq(b[0], 0, "beyond the device's config: zeros");
    cr_assert_gt(mmiofx.fake.cfg_reads, 0);

    const uint8_t v[2] = {0x12, 0x34};
    virtio_mmio_io_ops.write(&mmiofx.m, CONFIG + 10, v, 2);
    cr_assert_eq(mmiofx.fake.cfg_writes, 1);
    cr_assert_eq(mmiofx.fake.cfg_wr_off, 10);
    cr_assert_eq(mmiofx.fake.cfg_wr_len, 2);
    cr_assert_eq(mmiofx.fake.cfg_wr_data[1], 0x34);
}

Test(vmmio, config_write_without_handler)
{
    static struct virtio_dev_ops ro_ops;
    ro_ops = fake_ops;
    ro_ops.config_write = NULL;
    virtio_mmio_destroy(&mmiofx.m);
    cr_assert_eq(virtio_mmio_init(&mmiofx.m, "fake-ro", &ro_ops, &mmiofx.fake, &vfx.gm, NULL, -1, 0, 5,
                                  (struct irq_line){0}),
                 0);
    const uint8_t v = 1;
    virtio_mmio_io_ops.write(&mmiofx.m, CONFIG, &v, 1); /* read-only config: dropped */
    cr_assert_eq(mmiofx.fake.cfg_writes, 0);
    bring_up(); /* irq_line without a setter: interrupts go nowhere, no crash */
    virtio_mmio_config_changed(&mmiofx.m);
}

/* ---- odd accesses ---- */

Test(vmmio, non_4_byte_register_accesses_ignored)
{
    uint8_t b[8];
    memset(b, 0xee, sizeof(b));
    virtio_mmio_io_ops.read(&mmiofx.m, MAGIC, b, 2);
    cr_assert_eq(b[0], 0);
    cr_assert_eq(b[1], 0);
    memset(b, 0xee, sizeof(b));
    virtio_mmio_io_ops.read(&mmiofx.m, MAGIC, b, 1);
    cr_assert_eq(b[0], 0);
    memset(b, 0xee, sizeof(b));
    virtio_mmio_io_ops.read(&mmiofx.m, MAGIC, b, 8);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(b[i], 0);
    memset(b, 0xee, sizeof(b));
    virtio_mmio_io_ops.read(&mmiofx.m, MAGIC + 1, b, 4); /* unaligned */
    cr_assert_eq(b[0], 0);

    const uint8_t one = S_ACK;
    virtio_mmio_io_ops.write(&mmiofx.m, STATUS, &one, 1);
    cr_assert_eq(vfx_rd(STATUS), 0);
    const uint8_t w2[2] = {S_ACK, 0};
    virtio_mmio_io_ops.write(&mmiofx.m, STATUS, w2, 2);
    cr_assert_eq(vfx_rd(STATUS), 0);
    const uint8_t w4[4] = {S_ACK, 0, 0, 0};
    virtio_mmio_io_ops.write(&mmiofx.m, STATUS + 1, w4, 4);
    cr_assert_eq(vfx_rd(STATUS), 0);
    const uint8_t w8[8] = {16, 0, 0, 0, 0, 0, 0, 0};
    virtio_mmio_io_ops.write(&mmiofx.m, QUEUE_NUM, w8, 8);
    cr_assert_eq(mmiofx.m.vdev.queues[0].size, 0);
    virtio_mmio_io_ops.write(&mmiofx.m, STATUS, w4, 4);
    cr_assert_eq(vfx_rd(STATUS), S_ACK);
    /* Reserved registers read as zero and ignore writes. */
    cr_assert_eq(vfx_rd(0x0f0), 0);
    vfx_wr(0x0f0, 0xffffffff);
    cr_assert_eq(vfx_rd(0x0f0), 0);
}

Test(vmmio, queue_notify_out_of_range_is_harmless)
{
    bring_up();
    mmiofx.fake.push_on_notify = true;
    vfx_wr(QUEUE_NOTIFY, 2);
    vfx_wr(QUEUE_NOTIFY, 0xffff);
    vfx_wr(QUEUE_NOTIFY, 0xffffffff);
    vfx_wr(QUEUE_NOTIFY, 0x10000); /* would alias queue 0 if truncated to 16 bits */
    virtio_mmio_kick(&mmiofx.m, 2);
    virtio_mmio_kick(&mmiofx.m, 0xffff);
    cr_assert_eq(mmiofx.fake.notify_calls[0] + mmiofx.fake.notify_calls[1] + mmiofx.fake.notify_calls[2] +
                     mmiofx.fake.notify_calls[3],
                 0);
    cr_assert_eq(vfx_rd(STATUS) & S_NEEDS_RESET, 0);
}

/* ---- kicks ---- */

Test(vmmio, kick_drives_queue_notify)
{
    virtio_mmio_kick(&mmiofx.m, 0);
    cr_assert_eq(mmiofx.fake.notify_calls[0], 0, "not before DRIVER_OK");
    vfx_negotiate(BIT64(VIRTIO_F_VERSION_1));
    vfx_queue_regs(0, 16, Q0_DESC, Q0_AVAIL, Q0_USED, true);
    vfx_queue_regs(1, 16, Q1_DESC, Q1_AVAIL, Q1_USED, false);
    vfx_wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    virtio_mmio_kick(&mmiofx.m, 0);
    virtio_mmio_kick(&mmiofx.m, 1);
    cr_assert_eq(mmiofx.fake.notify_calls[0], 1);
    cr_assert_eq(mmiofx.fake.notify_calls[1], 0, "queue 1 is not ready");
    cr_assert(mmiofx.fake.lock_held_ok);
}

Test(vmmio, queue_notify_register_through_event_loop)
{
    virtio_mmio_destroy(&mmiofx.m);
    cr_assert_eq(evloop_init(&mmiofx.loop), 0);
    mmiofx.loop_used = true;
    fake_mmio_start(&mmiofx.loop);
    bring_up();
    mmiofx.fake.push_on_notify = true;
    post_chain(Q1_DESC, Q1_AVAIL, 0);
    vfx_wr(QUEUE_NOTIFY, 1); /* without an ioeventfd the write lands on the eventfd */
    cr_assert_eq(mmiofx.fake.notify_calls[1], 0, "served on the event mmiofx.loop, not the vCPU thread");
    for (int i = 0; i < 10 && !mmiofx.fake.notify_calls[1]; i++)
        evloop_run_once(&mmiofx.loop, 100);
    cr_assert_eq(mmiofx.fake.notify_calls[1], 1);
    cr_assert_eq(mmiofx.fake.notify_calls[0], 0);
    cr_assert_eq(g_r16(Q1_USED + 2), 1);
    cr_assert_eq(vfx_rd(INT_STATUS), VIRTIO_INT_USED_RING);
    vfx_wr(QUEUE_NOTIFY, 7);
    cr_assert_eq(evloop_run_once(&mmiofx.loop, 0), 0, "nothing to do for a bogus queue");
}
