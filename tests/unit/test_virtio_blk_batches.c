/*
 * virtio-blk end to end, without KVM (virtio_blk_fixture.h): many requests
 * per kick, a ring wrapping many times, EVENT_IDX, a reset with I/O in
 * flight, and more requests than the async engine has slots. Most cases
 * run for both engines (sync and io_uring).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "tests/unit/virtio_blk_fixture.h"

/* ---- many requests, one ring ---- */

BOTH(batch_of_requests_one_kick)
{
    blk_start(e);
    uint16_t heads[16];
    for (int i = 0; i < 16; i++) {
        memset(g_at(DATA_GPA(i), 4096), 0, 4096);
        heads[i] = post_req(i, T_IN, 8ULL * (uint64_t)(i * 13 % 16), 4096);
    }
    kick_until(16);
    cr_assert_eq(used_idx(), 16);
    for (int i = 0; i < 16; i++) {
        cr_assert_eq(status_of(i), S_OK);
        cr_assert_eq(vfx_used_len_of(0, heads[i]), 4097);
        check_pattern(g_at(DATA_GPA(i), 4096), 4096ULL * (uint64_t)(i * 13 % 16), 4096);
    }
    cr_assert_eq(virtio_blk_counters(blkfx.blk).reads, 16);
}

BOTH(ring_wraps_many_times)
{
    blk_start(e);
    /* 300 requests through a 64-entry ring, 5 at a time. */
    uint16_t done = 0;
    for (int round = 0; round < 60; round++) {
        for (int i = 0; i < 5; i++)
            post_req(i, T_IN, (uint64_t)(round * 5 + i) % 2048, 512);
        done = (uint16_t)(done + 5);
        kick_until(done);
        cr_assert_eq(used_idx(), done);
        for (int i = 0; i < 5; i++) {
            cr_assert_eq(status_of(i), S_OK);
            check_pattern(g_at(DATA_GPA(i), 512), 512ULL * ((uint64_t)(round * 5 + i) % 2048), 512);
        }
    }
}

BOTH(event_idx_publishes_avail_event)
{
    blk_start(e);
    driver_up(BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_F_EVENT_IDX));
    for (int i = 0; i < 3; i++)
        post_req(i, T_IN, (uint64_t)i, 512);
    kick_until(3);
    cr_assert_eq(used_idx(), 3);
    cr_assert_eq(vfx_avail_event(0), 3, "avail_event: kick me at the next request");
    /* used_event 0 was crossed: one interrupt. Now ask for none until entry 10. */
    int before = vfx.pulses;
    cr_assert_geq(before, 1);
    vfx_set_used_event(0, 10);
    post_req(3, T_IN, 3, 512);
    kick_until(4);
    cr_assert_eq(status_of(3), S_OK);
    cr_assert_eq(vfx.pulses, before, "used_event 10 not reached: no interrupt");
}

/* Drops the image from the page cache, so that an io_uring read has to wait for the disk. */
static void evict_image(void)
{
    int fd = open(blkfx.img, O_RDONLY);
    cr_assert_geq(fd, 0);
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

BOTH(reset_with_request_in_flight)
{
    blk_start(e);
    memset(g_at(DATA_GPA(0), 4096), 0xee, 4096);
    /*
     * The async engine completes page-cache hits inside the kick; a read
     * that must go to the disk is still in flight when the kick returns.
     * (On a tmpfs /tmp nothing can be evicted: then only the rest is checked.)
     */
    evict_image();
    post_req(0, T_IN, 0, 4096);
    virtio_mmio_kick(&blkfx.m, 0);
    if (e == BLK_ENGINE_ASYNC && used_idx() == 0)
        cr_assert_eq(status_of(0), 0xff);
    else if (e == BLK_ENGINE_ASYNC)
        cr_log_warn("the read completed inside the kick: no request was in flight at the reset");
    driver_up(BIT64(VIRTIO_F_VERSION_1)); /* reset drains in-flight I/O and starts over */
    for (int i = 0; i < 5; i++)
        evloop_run_once(&blkfx.loop, 10);
    cr_assert_eq(used_idx(), 0, "nothing from before the reset is completed to the new driver");
    post_req(1, T_IN, 2, 512);
    kick_until(1);
    cr_assert_eq(used_idx(), 1);
    cr_assert_eq(status_of(1), S_OK);
    check_pattern(g_at(DATA_GPA(1), 512), 1024, 512);
}

BOTH(more_requests_than_engine_slots)
{
    /* 200 requests in flight at once: more than io_uring slots (128), so some wait and resume. */
    blk_start(e);
    vfx.q[0].size = 256;
    driver_up(BIT64(VIRTIO_F_VERSION_1));
    enum { N = 200 };
    for (int i = 0; i < N; i++) {
        put_hdr(i, T_IN, (uint64_t)i * 5);
        struct vfx_seg s[3] = {{HDR_GPA(i), 16, false},
                               {0x200000ULL + 512ULL * i, 512, true},
                               {STATUS_GPA(i), 1, true}};
        vfx_post(0, s, 3, IND_GPA + 64ULL * i);
    }
    kick_until(N);
    cr_assert_eq(used_idx(), N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(status_of(i), S_OK, "request %d", i);
        check_pattern(g_at(0x200000ULL + 512ULL * i, 512), 512ULL * 5 * i, 512);
    }
    cr_assert_eq(virtio_blk_counters(blkfx.blk).reads, N);
}

Test(blk_async, BUG_flush_counted_once_when_engine_full)
{
    /*
     * 130 flushes at once: the 129th finds every io_uring slot taken, is put
     * back (virtq_unpop) and retried after completions. It must be counted
     * once, not once per attempt.
     */
    blk_start(BLK_ENGINE_ASYNC);
    vfx.q[0].size = 256;
    driver_up(BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_BLK_F_FLUSH));
    enum { N = 130 };
    for (int i = 0; i < N; i++) {
        put_hdr(i, T_FLUSH, 0);
        struct vfx_seg s[2] = {{HDR_GPA(i), 16, false}, {STATUS_GPA(i), 1, true}};
        vfx_post(0, s, 2, IND_GPA + 64ULL * i);
    }
    kick_until(N);
    cr_assert_eq(used_idx(), N);
    for (int i = 0; i < N; i++)
        cr_assert_eq(status_of(i), S_OK, "request %d", i);
    cr_expect_eq(virtio_blk_counters(blkfx.blk).flushes, N, "flushes counted: %llu for %d requests",
                 (unsigned long long)virtio_blk_counters(blkfx.blk).flushes, N);
}

/* ---- batches: one kick, many requests ---- */

BOTH(batch_completes_under_one_interrupt)
{
    blk_start(e);
    uint16_t heads[12];
    for (int i = 0; i < 12; i++)
        heads[i] = post_req(i, T_IN, 8ULL * (uint64_t)i, 4096);
    int before = vfx.pulses;
    kick_until(12);
    cr_assert_eq(used_idx(), 12);
    for (int i = 0; i < 12; i++) {
        cr_assert_eq(status_of(i), S_OK);
        cr_assert_eq(vfx_used_count_of(0, heads[i]), 1, "request %d completed exactly once", i);
        check_pattern(g_at(DATA_GPA(i), 4096), 4096ULL * (uint64_t)i, 4096);
    }
    /* Page-cache reads: the async engine completes them all inside the kick too. */
    cr_assert_eq(vfx.pulses - before, 1, "one interrupt for the batch, got %d", vfx.pulses - before);
}

BOTH(errors_mid_batch_complete_each_request)
{
    blk_start(e);
    uint64_t cap = FILE_SIZE / 512;
    memset(g_at(DATA_GPA(1), 1024), 0xee, 1024);
    uint16_t h[7];
    h[0] = post_req(0, T_IN, 1, 512);        /* fine */
    h[1] = post_req(1, T_IN, cap - 1, 1024); /* runs past the end */
    h[2] = post_req(2, T_IN, 0, 1000);       /* not whole sectors */
    h[3] = post_req(3, 99, 0, 512);          /* unknown type */
    h[4] = post_req(4, T_GET_ID, 0, 20);     /* completed while the batch is taken */
    h[5] = post_req(5, T_FLUSH, 0, 0);
    h[6] = post_req(6, T_IN, 2, 512); /* fine, after all of them */
    kick_until(7);
    cr_assert_eq(used_idx(), 7);
    static const uint8_t want[7] = {S_OK, S_IOERR, S_IOERR, S_UNSUPP, S_OK, S_OK, S_OK};
    static const int64_t want_len[7] = {513, 1, 1, 1, 21, 1, 513};
    for (int i = 0; i < 7; i++) {
        cr_assert_eq(status_of(i), want[i], "request %d: status %u", i, status_of(i));
        cr_assert_eq(vfx_used_count_of(0, h[i]), 1, "request %d completed exactly once", i);
        cr_assert_eq(vfx_used_len_of(0, h[i]), want_len[i], "request %d: used len", i);
    }
    check_pattern(g_at(DATA_GPA(0), 512), 512, 512);
    check_pattern(g_at(DATA_GPA(6), 512), 1024, 512);
    cr_assert_eq(*g_at(DATA_GPA(1), 1), 0xee, "no data for the failed read");
    struct blk_counters c = virtio_blk_counters(blkfx.blk);
    cr_assert_eq(c.reads, 2);
    cr_assert_eq(c.errors, 2);
    cr_assert_eq(c.unsupported, 1);
    cr_assert_eq(c.get_ids, 1);
    cr_assert_eq(c.flushes, 1);
    cr_assert(virtio_dev_driver_ok(&blkfx.m.vdev));
}

BOTH(long_scatter_list_among_short_requests)
{
    /* 12 data segments: more than a slot keeps, so that request is submitted on its own. */
    blk_start(e);
    uint16_t a = post_req(0, T_IN, 16, 4096);
    put_hdr(1, T_IN, 40);
    struct vfx_seg s[14];
    s[0] = (struct vfx_seg){HDR_GPA(1), 16, false};
    for (int i = 0; i < 12; i++)
        s[1 + i] = (struct vfx_seg){DATA_GPA(2) + 0x1000ULL * (uint64_t)i, 512, true};
    s[13] = (struct vfx_seg){STATUS_GPA(1), 1, true};
    uint16_t b = vfx_post(0, s, 14, IND_GPA);
    uint16_t c = post_req(3, T_IN, 80, 2048);
    kick_until(3);
    cr_assert_eq(used_idx(), 3);
    cr_assert_eq(status_of(0), S_OK);
    cr_assert_eq(status_of(1), S_OK);
    cr_assert_eq(status_of(3), S_OK);
    cr_assert_eq(vfx_used_len_of(0, a), 4097);
    cr_assert_eq(vfx_used_len_of(0, b), 12 * 512 + 1);
    cr_assert_eq(vfx_used_len_of(0, c), 2049);
    check_pattern(g_at(DATA_GPA(0), 4096), 16 * 512, 4096);
    for (int i = 0; i < 12; i++)
        check_pattern(g_at(DATA_GPA(2) + 0x1000ULL * (uint64_t)i, 512), 40 * 512 + 512ULL * (uint64_t)i, 512);
    check_pattern(g_at(DATA_GPA(3), 2048), 80 * 512, 2048);
}

BOTH(malformed_chain_mid_batch_keeps_earlier_writes)
{
    blk_start(e);
    uint8_t *d = g_at(DATA_GPA(0), 512);
    memset(d, 0x5a, 512);
    post_req(0, T_OUT, 20, 512); /* taken before the bad chain: its write still happens */
    put_hdr(1, T_IN, 0);
    struct vfx_seg bad[3] = {{HDR_GPA(1), 16, false}, {MEM - 256, 512, true}, {STATUS_GPA(1), 1, true}};
    vfx_post(0, bad, 3, 0);
    kick_until(2);
    expect_needs_reset();
    driver_up(BIT64(VIRTIO_F_VERSION_1)); /* the reset waits for the write */
    uint8_t back[512];
    read_image(20 * 512, back, sizeof(back));
    cr_assert_eq(memcmp(back, d, 512), 0, "the write before the malformed chain reached the image");
    post_req(2, T_IN, 20, 512);
    kick_until(1);
    cr_assert_eq(status_of(2), S_OK);
    cr_assert_eq(memcmp(g_at(DATA_GPA(2), 512), d, 512), 0);
}

Test(blk_async, engine_full_resumes_within_the_kick_or_on_completion)
{
    /* 3 rounds of 150 reads, each more than the engine's 128 slots, through a 256-entry ring. */
    blk_start(BLK_ENGINE_ASYNC);
    vfx.q[0].size = 256;
    driver_up(BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_F_EVENT_IDX));
    uint16_t done = 0;
    for (int round = 0; round < 3; round++) {
        enum { N = 150 };
        for (int i = 0; i < N; i++) {
            put_hdr(i, T_IN, (uint64_t)(round * N + i) % 2048);
            *g_at(STATUS_GPA(i), 1) = 0xff;
            struct vfx_seg s[3] = {{HDR_GPA(i), 16, false},
                                   {0x200000ULL + 512ULL * i, 512, true},
                                   {STATUS_GPA(i), 1, true}};
            vfx_post(0, s, 3, IND_GPA + 64ULL * i);
        }
        done = (uint16_t)(done + N);
        kick_until(done);
        cr_assert_eq(used_idx(), done, "round %d", round);
        for (int i = 0; i < N; i++) {
            cr_assert_eq(status_of(i), S_OK, "round %d request %d", round, i);
            check_pattern(g_at(0x200000ULL + 512ULL * i, 512), 512ULL * ((uint64_t)(round * N + i) % 2048), 512);
        }
    }
    cr_assert_eq(virtio_blk_counters(blkfx.blk).reads, 450);
}
