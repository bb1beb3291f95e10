/*
 * Save/restore of the virtio devices' guest-visible state (virtio_mmio_save,
 * virtio_mmio_restore, and virtio_dev_* underneath): a live fake device with
 * requests processed round-trips into a fresh transport, which then carries
 * on where the first left off; hostile images are refused, device unchanged.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "tests/unit/state_check.h"
#include "tests/unit/virtio_mmio_fixture.h"

#define FEATURES (BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_F_EVENT_IDX) | BIT64(3))
#define BUF_GPA 0x80000ULL

static int save_hook(void *dev, struct state_writer *w) { return virtio_mmio_save(dev, w); }
static int restore_hook(void *dev, struct state_reader *r, struct errmsg *err)
{
    return virtio_mmio_restore(dev, r, err);
}
static const struct state_hooks hooks = {save_hook, restore_hook};

/* The fresh instance a snapshot is restored into: another transport, another fake model. */
static struct virtio_mmio m2;
static struct fake_dev f2;

static void start_second(void)
{
    memset(&f2, 0, sizeof(f2));
    f2.features = FAKE_FEATURES;
    f2.push_on_notify = true;
    f2.lock_held_ok = true;
    cr_assert_eq(virtio_mmio_init(&m2, "fake1", &fake_ops, &f2, &vfx.gm, NULL, -1, 0xd0001000ULL, 6, vfx_irq_line(6)),
                 0);
}

/* One device-readable buffer posted on queue q; returns its head. */
static uint16_t post_one(int q)
{
    const struct vfx_seg seg = {BUF_GPA, 64, false};
    return vfx_post(q, &seg, 1, 0);
}

/* Live device, both queues with EVENT_IDX, requests completed on both, selectors off their defaults. */
static void drive_busy(void)
{
    vfx_queue_at(0, 16, Q0_DESC, Q0_AVAIL, Q0_USED);
    vfx_queue_at(1, 8, Q1_DESC, Q1_AVAIL, Q1_USED);
    vfx_driver_up(FEATURES, 2);
    mmiofx.fake.push_on_notify = true;
    for (int i = 0; i < 3; i++) {
        post_one(0);
        virtio_mmio_kick(&mmiofx.m, 0);
    }
    post_one(1);
    virtio_mmio_kick(&mmiofx.m, 1);
    cr_assert_eq(vfx_used_idx(0), 3);
    cr_assert_eq(vfx_used_idx(1), 1);
    cr_assert_eq(mmiofx.fake.popped, 4);
    cr_assert_neq(vfx_rd(INT_STATUS), 0, "an interrupt is pending, not yet acknowledged");
    vfx_wr(DEV_FEATURES_SEL, 1);
    vfx_wr(DRV_FEATURES_SEL, 1);
    vfx_wr(QUEUE_SEL, 1);
}

Test(vmmio, state_round_trip_then_continues)
{
    drive_busy();
    start_second();
    state_check_round_trip(&hooks, &mmiofx.m, &m2);
    cr_assert_eq(f2.activate_calls, 1, "the restored live device started serving");
    cr_assert_eq(f2.reset_calls, 0);

    /* The driver sees the same registers on both. */
    static const uint64_t regs[] = {DEV_FEATURES, QUEUE_NUM_MAX, QUEUE_READY, INT_STATUS, STATUS, CONFIG_GEN};
    uint32_t before[6];
    for (int i = 0; i < 6; i++)
        before[i] = vfx_rd(regs[i]);
    vfx.m = &m2;
    for (int i = 0; i < 6; i++)
        cr_assert_eq(vfx_rd(regs[i]), before[i], "register %#llx", (unsigned long long)regs[i]);

    /* A request posted after the restore is taken by the restored instance; the used index goes on from 3. */
    uint16_t head = post_one(0);
    virtio_mmio_kick(&m2, 0);
    cr_assert_eq(f2.popped, 1);
    cr_assert_eq(vfx_used_idx(0), 4);
    cr_assert_eq(vfx_used_id(0, 3), head);
    cr_assert_eq(mmiofx.fake.popped, 4, "the original instance saw nothing of it");
    post_one(1);
    virtio_mmio_kick(&m2, 1);
    cr_assert_eq(vfx_used_idx(1), 2);
    cr_assert(f2.lock_held_ok);
    virtio_mmio_destroy(&m2);
}

Test(vmmio, state_restore_into_live_device_stops_it_first)
{
    drive_busy();
    start_second();
    state_check_round_trip(&hooks, &mmiofx.m, &m2);
    state_check_round_trip(&hooks, &mmiofx.m, &m2);
    cr_assert_eq(f2.reset_calls, 1, "the serving model was stopped before its state was replaced");
    cr_assert_eq(f2.activate_calls, 2);
    virtio_mmio_destroy(&m2);
}

Test(vmmio, state_of_a_reset_device_round_trips)
{
    start_second();
    state_check_round_trip(&hooks, &mmiofx.m, &m2);
    cr_assert_eq(f2.activate_calls, 0, "nothing to serve");
    virtio_mmio_destroy(&m2);
}

/* Offsets in the image: the "virtio-mmio" section (header 20 + 12 bytes), then the "virtio-dev" header (19). */
#define DEV_BODY (20 + 12 + 19)
#define Q0 (DEV_BODY + 26) /* queue 0's fields; 35 bytes a queue */
#define Q1 (Q0 + 35)

Test(vmmio, state_restore_refuses_bad_images)
{
    drive_busy();
    size_t len;
    uint8_t *good = state_check_save(&hooks, &mmiofx.m, &len);
    cr_assert_eq(len, (size_t)Q1 + 35);
    start_second();
    struct state_reader r;
    struct errmsg err = {{0}};
    state_reader_init(&r, good, len);
    cr_assert_eq(virtio_mmio_restore(&m2, &r, &err), 0, "%s", err.text);

    const size_t at[] = {
        DEV_BODY + 0,  /* another device type */
        DEV_BODY + 4,  /* one queue, not two */
        DEV_BODY + 11, /* driver feature 8, never offered */
        DEV_BODY + 18, /* interrupt status bit 2 */
        Q0 + 0,        /* queue size 3 */
        Q0 + 0,        /* ready queue of size 0 */
        Q0 + 1,        /* queue size 0x210 > 256 */
        Q0 + 2,        /* ready flag 2 */
        Q0 + 4,        /* descriptor table misaligned */
        Q0 + 20 + 2,   /* used ring at 0xf03000, beyond the 1 MiB of RAM */
        Q0 + 12 + 4,   /* avail ring above 4 GiB */
        Q0 + 28,       /* last_avail 0x40: 61 chains in flight in a ring of 16 */
        Q1 + 4 + 3,    /* queue 1's descriptor table at 0xff005000 */
        Q1 + 34,       /* signalled_valid 7 */
    };
    const uint8_t val[] = {7, 1, 0x01, 0x04, 3, 0, 2, 2, 0x08, 0xf0, 1, 0x40, 0xff, 7};
    _Static_assert(sizeof(at) / sizeof(at[0]) == sizeof(val), "one value per offset");
    state_check_bad_images(&hooks, &m2, good, len, at, val, sizeof(val));

    /* Still the device it was: a good image restores and the queue goes on. */
    state_reader_init(&r, good, len);
    cr_assert_eq(virtio_mmio_restore(&m2, &r, &err), 0, "%s", err.text);
    vfx.m = &m2;
    post_one(0);
    virtio_mmio_kick(&m2, 0);
    cr_assert_eq(vfx_used_idx(0), 4);
    free(good);
    virtio_mmio_destroy(&m2);
}

Test(vmmio, state_keeps_a_stopped_device_with_bad_rings)
{
    /* DEVICE_NEEDS_RESET because the rings were outside RAM: not live, so restorable as it was. */
    cr_assert(vfx_negotiate(BIT64(VIRTIO_F_VERSION_1)) & S_FEATURES_OK);
    vfx_queue_regs(0, 16, MEM - 0x80, Q0_AVAIL, Q0_USED, true);
    vfx_wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    cr_assert(vfx_rd(STATUS) & S_NEEDS_RESET);
    start_second();
    state_check_round_trip(&hooks, &mmiofx.m, &m2);
    cr_assert_eq(f2.activate_calls, 0);
    virtio_mmio_destroy(&m2);
}
