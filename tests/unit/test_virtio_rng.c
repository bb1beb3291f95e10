/*
 * virtio-rng through the virtio-mmio transport, without KVM: the test is the
 * guest driver (virtio_fixture.h). Bytes land only in device-writable
 * buffers, at most 64 KiB per request; hostile chains stop the device, never
 * the host; a rate limiter holds requests in the ring.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "core/event_loop.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/rng.h"
#include "tests/unit/virtio_fixture.h"

#define MEM (4ULL << 20)
#define QSZ 16
#define BUF_GPA 0x100000ULL

static struct event_loop loop;
static struct virtio_mmio m;
static struct virtio_rng *rng;
static bool started;

static void rng_start(void)
{
    vfx_ram_init(MEM);
    cr_assert_eq(evloop_init(&loop), 0);
    struct rng_config cfg = {0};
    cr_assert_eq(virtio_rng_create(&rng, &cfg, NULL), 0);
    cr_assert_eq(virtio_mmio_init(&m, "rng", &virtio_rng_ops, rng, &vfx.gm, &loop, -1, 0xd0002000ULL, 7,
                                  vfx_irq_line(7)),
                 0);
    vfx.m = &m;
    started = true;
    vfx_queue_at(0, QSZ, 0x1000, 0x2000, 0x3000);
    vfx_driver_up(BIT64(VIRTIO_F_VERSION_1), 1);
}

static void rng_stop(void)
{
    if (!started)
        return;
    started = false;
    vfx_wr(VIRTIO_MMIO_STATUS, 0);
    virtio_mmio_destroy(&m);
    virtio_rng_free(rng);
    evloop_destroy(&loop);
    vfx_ram_free();
}

TestSuite(vrng, .fini = rng_stop);

static uint16_t post1(uint64_t gpa, uint32_t len, bool write)
{
    struct vfx_seg s = {gpa, len, write};
    return vfx_post(0, &s, 1, 0);
}

static bool all_bytes(const uint8_t *p, uint64_t len, uint8_t v)
{
    for (uint64_t i = 0; i < len; i++)
        if (p[i] != v)
            return false;
    return true;
}

Test(vrng, device_id_and_no_config)
{
    rng_start();
    cr_assert_eq(vfx_rd(VIRTIO_MMIO_DEVICE_ID), 4);
}

Test(vrng, fills_a_writable_buffer_with_random_bytes)
{
    rng_start();
    memset(g_at(BUF_GPA, 4096), 0, 4096);
    uint16_t h = post1(BUF_GPA, 4096, true);
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(vfx_used_idx(0), 1);
    cr_assert_eq(vfx_used_len_of(0, h), 4096);
    cr_assert_not(all_bytes(g_at(BUF_GPA, 4096), 4096, 0), "4 KiB of zeros from getrandom");
    struct rng_counters c = virtio_rng_counters(rng);
    cr_assert_eq(c.requests, 1);
    cr_assert_eq(c.bytes, 4096);
    cr_assert_gt(vfx.pulses, 0);
}

Test(vrng, read_only_buffers_are_never_written)
{
    rng_start();
    memset(g_at(BUF_GPA, 8192), 0xab, 8192);
    uint16_t h = post1(BUF_GPA, 4096, false);
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(vfx_used_len_of(0, h), 0);
    cr_assert(all_bytes(g_at(BUF_GPA, 4096), 4096, 0xab));
    /* Mixed: the readable part stays, the writable part is filled. */
    struct vfx_seg s[2] = {{BUF_GPA, 100, false}, {BUF_GPA + 4096, 100, true}};
    h = vfx_post(0, s, 2, 0);
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(vfx_used_len_of(0, h), 100);
    cr_assert(all_bytes(g_at(BUF_GPA, 100), 100, 0xab));
    cr_assert_eq(virtio_rng_counters(rng).bad_requests, 1);
}

Test(vrng, requests_are_capped_at_64_KiB)
{
    rng_start();
    memset(g_at(BUF_GPA, 1 << 20), 0, 1 << 20);
    struct vfx_seg s[2] = {{BUF_GPA, 60 * 1024, true}, {BUF_GPA + (512 << 10), 512 << 10, true}};
    uint16_t h = vfx_post(0, s, 2, 0);
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(vfx_used_len_of(0, h), VIRTIO_RNG_MAX_REQUEST);
    /* Past the cap: the rest of the second buffer is untouched. */
    cr_assert(all_bytes(g_at(BUF_GPA + (512 << 10) + 4096, (512 << 10) - 4096), (512 << 10) - 4096, 0));
}

Test(vrng, huge_or_outside_buffers_stop_the_device)
{
    rng_start();
    post1(MEM - 4096, 0xffffffffu, true); /* runs far past the end of guest RAM */
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(vfx_used_idx(0), 0);
    cr_assert(vfx_rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
}

static long failing_source(void *buf, uint64_t len, void *ctx)
{
    (void)buf, (void)len, (void)ctx;
    return -EIO;
}

Test(vrng, host_failure_completes_the_request_empty)
{
    rng_start();
    virtio_rng_set_source(rng, failing_source, NULL);
    uint16_t h = post1(BUF_GPA, 512, true);
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(vfx_used_len_of(0, h), 0);
    cr_assert_eq(virtio_rng_counters(rng).host_fails, 1);
}

static uint64_t fake_ns;
static uint64_t fake_clock(void *ctx) { return *(uint64_t *)ctx; }

Test(vrng, rate_limit_holds_requests_in_the_ring)
{
    rng_start();
    struct rate_limiter *rl = virtio_rng_rate_limiter(rng);
    fake_ns = 1000000000ULL;
    rate_limiter_set_clock(rl, fake_clock, &fake_ns);
    struct rate_limiter_update u = {.bandwidth_set = true, .cfg.bandwidth = {.size = 1024, .refill_time_ms = 1000}};
    rate_limiter_update(rl, &u);
    for (int i = 0; i < 4; i++)
        post1(BUF_GPA + 4096ULL * (uint64_t)i, 512, true);
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(vfx_used_idx(0), 2);
    fake_ns += 500000000ULL;
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(vfx_used_idx(0), 3);
    fake_ns += 500000000ULL;
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(vfx_used_idx(0), 4);
    cr_assert_eq(virtio_rng_counters(rng).bytes, 2048);
    cr_assert_geq(virtio_rng_counters(rng).throttled, 2);
}

Test(vrng, snapshot_round_trip_keeps_the_queue_going)
{
    rng_start();
    post1(BUF_GPA, 256, true);
    virtio_mmio_kick(&m, 0);
    cr_assert_eq(vfx_used_idx(0), 1);
    struct state_writer w;
    state_writer_init(&w);
    cr_assert_eq(virtio_mmio_save(&m, &w), 0);
    /* A fresh device restored from the image serves the next request where the old one stopped. */
    struct virtio_rng *rng2;
    struct virtio_mmio m2;
    struct rng_config cfg = {0};
    cr_assert_eq(virtio_rng_create(&rng2, &cfg, NULL), 0);
    cr_assert_eq(virtio_mmio_init(&m2, "rng2", &virtio_rng_ops, rng2, &vfx.gm, &loop, -1, 0xd0003000ULL, 8,
                                  vfx_irq_line(8)),
                 0);
    struct state_reader r;
    struct errmsg err = {{0}};
    state_reader_init(&r, w.buf, w.len);
    cr_assert_eq(virtio_mmio_restore(&m2, &r, &err), 0, "%s", err.text);
    vfx.m = &m2;
    post1(BUF_GPA + 4096, 256, true);
    virtio_mmio_kick(&m2, 0);
    cr_assert_eq(vfx_used_idx(0), 2);
    cr_assert_eq(virtio_rng_counters(rng2).bytes, 256);
    vfx.m = &m;
    vfx_wr(VIRTIO_MMIO_STATUS, 0);
    vfx.m = &m2;
    vfx_wr(VIRTIO_MMIO_STATUS, 0);
    vfx.m = &m;
    virtio_mmio_destroy(&m2);
    virtio_rng_free(rng2);
    state_writer_free(&w);
}
