/* The virtio-mmio transport tests' shared setup (virtio_mmio_fixture.h); tests: test_virtio_mmio_*.c. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "tests/unit/virtio_mmio_fixture.h"

struct mmiofx mmiofx;
static struct virtq_chain chain; /* what fake_notify pops */

/* ---- the fake device model ---- */

static void check_locked(struct virtio_dev *mm)
{
    /* Calls into the device are made with the transport lock held. */
    if (pthread_mutex_trylock(&mm->lock) == 0) {
        mmiofx.fake.lock_held_ok = false;
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

const struct virtio_dev_ops fake_ops = {
    .device_id = FAKE_ID,
    .num_queues = 2,
    .features = fake_features,
    .config_read = fake_config_read,
    .config_write = fake_config_write,
    .activate = fake_activate,
    .queue_notify = fake_notify,
    .reset = fake_reset,
};

void fake_mmio_start(struct event_loop *l)
{
    memset(&mmiofx.fake, 0, sizeof(mmiofx.fake));
    mmiofx.fake.features = FAKE_FEATURES;
    mmiofx.fake.lock_held_ok = true;
    for (int i = 0; i < 16; i++)
        mmiofx.fake.cfg[i] = (uint8_t)(0xa0 + i);
    cr_assert_eq(virtio_mmio_init(&mmiofx.m, "fake0", &fake_ops, &mmiofx.fake, &vfx.gm, l, -1, 0xd0000000ULL, 5,
                                  vfx_irq_line(5)),
                 0);
    vfx.m = &mmiofx.m;
}

static void setup(void)
{
    vfx_ram_init(MEM);
    mmiofx.loop_used = false;
    fake_mmio_start(NULL);
}

static void teardown(void)
{
    virtio_mmio_destroy(&mmiofx.m);
    if (mmiofx.loop_used)
        evloop_destroy(&mmiofx.loop);
    vfx_ram_free();
}

/* One suite for every test_virtio_mmio_*.c file: Criterion joins tests to their suite by name. */
TestSuite(vmmio, .init = setup, .fini = teardown);

/* ---- the driver side ---- */

uint32_t bring_up(void)
{
    cr_assert(vfx_negotiate(BIT64(VIRTIO_F_VERSION_1)) & S_FEATURES_OK);
    vfx_queue_regs(0, 16, Q0_DESC, Q0_AVAIL, Q0_USED, true);
    vfx_queue_regs(1, 16, Q1_DESC, Q1_AVAIL, Q1_USED, true);
    vfx_wr(STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    return vfx_rd(STATUS);
}

void post_chain(uint64_t desc, uint64_t avail, uint16_t idx)
{
    vfx_desc(desc, 0, 0x80000, 64, 0, 0);
    g_w16(avail + 4 + 2ULL * (idx % 16), 0);
    g_w16(avail + 2, (uint16_t)(idx + 1));
}
