/*
 * virtio-blk under a rate limiter (virtio_blk_fixture.h), with a fake clock:
 * it serves exactly what the buckets allow, leaves the rest in the ring, and
 * never drops or fails a request; with the real clock its timer wakes it.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "core/rate_limiter.h"
#include "tests/unit/virtio_blk_fixture.h"

#define MS 1000000ULL

static uint64_t fake_ns;
static uint64_t fake_clock(void *ctx) { return *(uint64_t *)ctx; }

/* The drive's limiter on the fake clock, with these buckets (all zero: unlimited). */
static void limit(uint64_t bw_size, uint64_t bw_ms, uint64_t ops_size, uint64_t ops_ms)
{
    struct rate_limiter *rl = virtio_blk_rate_limiter(blkfx.blk);
    fake_ns = 1000 * MS;
    rate_limiter_set_clock(rl, fake_clock, &fake_ns);
    struct rate_limiter_update u = {.bandwidth_set = true,
                                    .ops_set = true,
                                    .cfg = {.bandwidth = {.size = bw_size, .refill_time_ms = bw_ms},
                                            .ops = {.size = ops_size, .refill_time_ms = ops_ms}}};
    virtio_blk_update_rate_limiter(blkfx.blk, &u);
}

/* Serves the loop a little (async completions, the limiter's timer) and says how many requests completed. */
static uint16_t settle(void)
{
    for (int i = 0; i < 5; i++)
        evloop_run_once(&blkfx.loop, 5);
    return used_idx();
}

BOTH(bandwidth_limit_serves_at_the_limited_rate)
{
    blk_start(e);
    limit(8192, 100, 0, 0); /* two 4 KiB reads per 100 ms */
    for (int i = 0; i < 16; i++)
        post_req(i, T_IN, 8ULL * (uint64_t)i, 4096);
    kick_until(2);
    cr_assert_eq(settle(), 2, "a full bucket lets two through, no more");
    for (uint16_t step = 2; step <= 8; step++) {
        fake_ns += 100 * MS;
        kick_until((uint16_t)(2 * step));
        cr_assert_eq(settle(), 2 * step);
    }
    for (int i = 0; i < 16; i++) {
        cr_assert_eq(status_of(i), S_OK, "request %d", i);
        check_pattern(g_at(DATA_GPA(i), 4096), 4096ULL * (uint64_t)i, 4096);
    }
    struct blk_counters c = virtio_blk_counters(blkfx.blk);
    cr_assert_eq(c.reads, 16);
    cr_assert_eq(c.errors, 0);
    cr_assert_geq(c.throttled, 7);
}

BOTH(ops_limit_counts_every_request_kind)
{
    blk_start(e);
    limit(0, 0, 3, 1000); /* 3 requests per second, whatever their size */
    post_req(0, T_FLUSH, 0, 0);
    post_req(1, T_GET_ID, 0, 20);
    post_req(2, T_OUT, 0, 512);
    post_req(3, T_IN, 0, 65536);
    post_req(4, T_IN, 0, 512);
    kick_until(3);
    cr_assert_eq(settle(), 3);
    fake_ns += 500 * MS; /* 1.5 tokens */
    kick_until(4);
    cr_assert_eq(settle(), 4);
    fake_ns += 500 * MS;
    kick_until(5);
    cr_assert_eq(settle(), 5);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(status_of(i), S_OK, "request %d", i);
}

BOTH(request_larger_than_the_bucket_still_passes)
{
    blk_start(e);
    limit(1024, 100, 0, 0); /* 1 KiB per 100 ms, requests of 4 KiB */
    post_req(0, T_IN, 0, 4096);
    post_req(1, T_IN, 8, 4096);
    kick_until(1);
    cr_assert_eq(settle(), 1, "passes on a full bucket");
    fake_ns += 300 * MS; /* the 3 KiB of debt repaid, the bucket still empty */
    virtio_mmio_kick(&blkfx.m, 0);
    cr_assert_eq(settle(), 1);
    fake_ns += 100 * MS;
    kick_until(2);
    cr_assert_eq(settle(), 2);
    cr_assert_eq(status_of(1), S_OK);
    check_pattern(g_at(DATA_GPA(1), 4096), 4096, 4096);
}

BOTH(update_of_a_live_limiter_takes_effect_at_once)
{
    blk_start(e);
    limit(0, 0, 1, 1000);
    for (int i = 0; i < 6; i++)
        post_req(i, T_IN, (uint64_t)i, 512);
    kick_until(1);
    cr_assert_eq(settle(), 1);
    /* Lifting the ops limit serves what waited, without a kick. */
    struct rate_limiter_update off = {.ops_set = true};
    virtio_blk_update_rate_limiter(blkfx.blk, &off);
    cr_assert_eq(settle(), 6);
}

static uint64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

BOTH(the_timer_wakes_a_throttled_queue)
{
    blk_start(e);
    struct rate_limiter_update u = {.ops_set = true, .cfg.ops = {.size = 2, .refill_time_ms = 20}};
    virtio_blk_update_rate_limiter(blkfx.blk, &u); /* real clock: 100 requests per second */
    uint64_t t0 = real_ms();
    for (int i = 0; i < 10; i++)
        post_req(i, T_IN, (uint64_t)i, 512);
    kick_until(10); /* one kick; the rest is the timer's doing */
    uint64_t took = real_ms() - t0;
    cr_assert_eq(used_idx(), 10);
    cr_assert_geq(took, 70, "8 requests past the first two need 80 ms, took %lu", (unsigned long)took);
    cr_assert_gt(virtio_blk_counters(blkfx.blk).limiter_wakeups, 0);
}
