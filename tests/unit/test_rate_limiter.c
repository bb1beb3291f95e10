/* The rate limiter: both buckets or neither, the timerfd, throttled counts, a live update. */
#include <criterion/criterion.h>
#include <poll.h>
#include <stdint.h>

#include "core/rate_limiter.h"

#define MS 1000000ULL

static uint64_t fake_now(void *ctx) { return *(uint64_t *)ctx; }

static struct rate_limiter rl;
static uint64_t clock_ns;

static void start(uint64_t bw_size, uint64_t bw_ms, uint64_t ops_size, uint64_t ops_ms)
{
    struct rate_limiter_config c = {.bandwidth = {.size = bw_size, .refill_time_ms = bw_ms},
                                    .ops = {.size = ops_size, .refill_time_ms = ops_ms}};
    cr_assert_eq(rate_limiter_init(&rl, &c), 0);
    clock_ns = 1000 * MS;
    rate_limiter_set_clock(&rl, fake_now, &clock_ns);
}

static void stop(void) { rate_limiter_destroy(&rl); }

TestSuite(rate_limiter, .fini = stop);

Test(rate_limiter, unlimited_by_default)
{
    start(0, 0, 0, 0);
    cr_assert_not(rate_limiter_enabled(&rl));
    for (int i = 0; i < 1000; i++)
        cr_assert(rate_limiter_consume(&rl, 1, 1 << 20));
    cr_assert_eq(rl.throttled, 0);
}

Test(rate_limiter, both_buckets_or_neither)
{
    start(1000, 1000, 2, 1000);
    cr_assert(rate_limiter_consume(&rl, 1, 600));
    cr_assert_not(rate_limiter_consume(&rl, 1, 600), "bytes short");
    cr_assert_eq(rl.ops.budget, 1, "the op was not taken when bytes were short");
    cr_assert(rate_limiter_consume(&rl, 1, 400));
    cr_assert_not(rate_limiter_consume(&rl, 1, 0), "ops short");
    cr_assert_eq(rl.throttled, 2);
    cr_assert(rl.timer_armed);
}

Test(rate_limiter, timer_fires_when_tokens_are_back)
{
    start(1000, 10, 0, 0); /* real timer, 1000 bytes per 10 ms */
    cr_assert(rate_limiter_consume(&rl, 1, 1000));
    cr_assert_not(rate_limiter_consume(&rl, 1, 500));
    struct pollfd p = {.fd = rate_limiter_fd(&rl), .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 1000), 1, "the timerfd fires within the 5 ms it takes");
    rate_limiter_timer_event(&rl);
    cr_assert_not(rl.timer_armed);
    cr_assert_eq(rl.wakeups, 1);
    clock_ns += 5 * MS;
    cr_assert(rate_limiter_consume(&rl, 1, 500));
}

Test(rate_limiter, refund_returns_tokens)
{
    start(100, 1000, 1, 1000);
    cr_assert(rate_limiter_consume(&rl, 1, 100));
    rate_limiter_refund(&rl, 1, 100);
    cr_assert(rate_limiter_consume(&rl, 1, 100));
}

Test(rate_limiter, update_replaces_only_the_named_bucket)
{
    start(100, 1000, 5, 1000);
    cr_assert(rate_limiter_consume(&rl, 1, 100));
    cr_assert_not(rate_limiter_consume(&rl, 1, 100));
    struct rate_limiter_update u = {.bandwidth_set = true, .cfg.bandwidth = {.size = 1000, .refill_time_ms = 1000}};
    rate_limiter_update(&rl, &u);
    cr_assert_not(rl.timer_armed);
    cr_assert_eq(rl.ops.budget, 4, "ops bucket kept as it was");
    cr_assert(rate_limiter_consume(&rl, 1, 1000), "new bucket starts full");
    /* Turning a bucket off with size 0. */
    struct rate_limiter_update off = {.bandwidth_set = true};
    rate_limiter_update(&rl, &off);
    cr_assert(rate_limiter_consume(&rl, 1, UINT64_MAX));
    struct rate_limiter_config stored = {.ops = {.size = 5, .refill_time_ms = 1000}};
    rate_limiter_config_update(&stored, &u);
    cr_assert_eq(stored.bandwidth.size, 1000);
    cr_assert_eq(stored.ops.size, 5);
}

Test(rate_limiter, steady_rate_under_a_fake_clock)
{
    start(64 * 1024, 100, 0, 0); /* 640 KiB/s */
    uint64_t bytes = 0;
    for (int ms = 0; ms < 10000; ms++) {
        clock_ns += MS;
        while (rate_limiter_consume(&rl, 1, 4096))
            bytes += 4096;
    }
    uint64_t expect = 64 * 1024 + 640ULL * 1024 * 10; /* the first full bucket + 10 s of refill */
    cr_assert(bytes <= expect && bytes + 4096 >= expect, "got %lu, want %lu", (unsigned long)bytes,
              (unsigned long)expect);
}
