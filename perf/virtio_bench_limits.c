/*
 * virtio-bench --limits: what the rate limiter costs and how well it holds a rate.
 *
 *   overhead: blk random 4 KiB reads and net tx 64-byte frames with a limiter whose buckets never run
 *             dry vs no limiter, same workload, alternated so host load
 *             falls on both alike (issue #14 goal: ratio >= 0.97).
 *   tracking: the same reads under bandwidth limits of 1, 8 and 64 MiB/s and
 *             an ops limit, and 1500-byte tx frames at 8 MiB/s; the achieved
 *             rate beside the configured one.
 *
 * Buckets refill every 10 ms and hold 10 ms of tokens: the bucket starts full,
 * so a run of S seconds may exceed the rate by 0.01/S of it, no more.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/rate_limiter.h"
#include "devices/virtio/blk.h"
#include "perf/virtio_bench.h"

#define REFILL_MS 10

static struct rate_limiter_config bandwidth_limit(uint64_t bytes_per_sec)
{
    struct rate_limiter_config c;
    memset(&c, 0, sizeof(c));
    c.bandwidth.size = bytes_per_sec * REFILL_MS / 1000;
    c.bandwidth.refill_time_ms = REFILL_MS;
    return c;
}

static struct rate_limiter_config ops_limit(uint64_t ops_per_sec)
{
    struct rate_limiter_config c;
    memset(&c, 0, sizeof(c));
    c.ops.size = ops_per_sec * REFILL_MS / 1000;
    c.ops.refill_time_ms = REFILL_MS;
    return c;
}

/* Both buckets on, each refilling far faster than any device can go. */
static struct rate_limiter_config never_throttles(void)
{
    struct rate_limiter_config c;
    memset(&c, 0, sizeof(c));
    c.bandwidth = (struct token_bucket_config){.size = 1ULL << 50, .refill_time_ms = 1};
    c.ops = (struct token_bucket_config){.size = 1ULL << 40, .refill_time_ms = 1};
    return c;
}

static void overhead(const char *path, unsigned depth, int rounds)
{
    struct rate_limiter_config huge = never_throttles();
    for (int i = 0; i < rounds; i++) {
        bench_blk(BLK_ENGINE_ASYNC, path, depth, NULL, "limiter off");
        bench_blk(BLK_ENGINE_ASYNC, path, depth, &huge, "limiter never dry");
    }
    /* Small frames: the most requests per second, so the limiter's per-request cost shows most. */
    for (int i = 0; i < rounds - 1; i++) {
        bench_net(true, 64, NULL, "limiter off");
        bench_net(true, 64, &huge, "limiter never dry");
    }
}

static void tracking(const char *path, unsigned depth)
{
    static const unsigned mib[] = {1, 8, 64};
    char label[24];
    for (size_t i = 0; i < sizeof(mib) / sizeof(mib[0]); i++) {
        struct rate_limiter_config c = bandwidth_limit((uint64_t)mib[i] << 20);
        snprintf(label, sizeof(label), "limit %u MiB/s", mib[i]);
        bench_blk(BLK_ENGINE_ASYNC, path, depth, &c, label);
    }
    struct rate_limiter_config c = ops_limit(2000);
    bench_blk(BLK_ENGINE_ASYNC, path, depth, &c, "limit 2000 ops/s");
    c = bandwidth_limit(8ULL << 20);
    bench_net(true, 1500, &c, "limit 8 MiB/s");
}

void run_limits(void)
{
    const char *path = prepare_image();
    struct stat st;
    if (stat(path, &st) < 0)
        die(path, errno);
    set_blk_blocks((uint64_t)st.st_size / BS);
    unsigned depth = opt.depth > BLK_MAX_DEPTH ? BLK_MAX_DEPTH : opt.depth;
    if (!opt.json_only)
        fprintf(stderr, "limits: %s, depth %u, %.1f s per figure\n", path, depth, opt.secs);
    overhead(path, depth, opt.secs < 1 ? 2 : 3);
    tracking(path, depth);
    remove_image();
}
