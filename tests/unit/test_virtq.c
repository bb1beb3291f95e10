/*
 * virtqueue (split ring), device side, against simulated guest memory: the
 * test plays the driver, writing descriptor tables and rings itself in
 * little-endian, then checks what virtq_pop/push/... make of them. The
 * hostile cases must end in -EPROTO (or be handled) without a crash or an
 * out-of-bounds access (run under ASan+UBSan too).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "devices/virtio/queue.h"
#include "devices/virtio/virtio.h"
#include "tests/unit/virtio_fixture.h"

#define MEM (4ULL << 20)
#define DESC_GPA 0x1000ULL  /* 256 descriptors fit in 4 KiB */
#define AVAIL_GPA 0x3000ULL /* 4 + 2*256 + 2 bytes */
#define USED_GPA 0x4000ULL  /* 4 + 8*256 + 2 bytes */
#define IND_GPA 0x8000ULL   /* indirect tables */
#define DATA_GPA 0x100000ULL

#define F_NEXT VIRTQ_DESC_F_NEXT
#define F_WRITE VIRTQ_DESC_F_WRITE
#define F_INDIRECT VIRTQ_DESC_F_INDIRECT

static struct virtq q; /* the device side under test; the driver side is vfx.q[0] */
static struct virtq_chain ch;

static void desc(uint16_t idx, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    vfx_desc(DESC_GPA, idx, addr, len, flags, next);
}

static void avail_add(uint16_t head) { vfx_avail_add(0, head); }
static void avail_flags(uint16_t f) { vfx_set_avail_flags(0, f); }
static void used_event(uint16_t v) { vfx_set_used_event(0, v); }
static uint16_t avail_event(void) { return vfx_avail_event(0); }
static uint16_t used_idx(void) { return vfx_used_idx(0); }
static uint32_t used_id(uint16_t i) { return vfx_used_id(0, i); }
static uint32_t used_len(uint16_t i) { return vfx_used_len(0, i); }

static void queue_setup(uint16_t size)
{
    virtq_reset(&q);
    q.size = size;
    q.ready = true;
    q.desc_gpa = DESC_GPA;
    q.avail_gpa = AVAIL_GPA;
    q.used_gpa = USED_GPA;
    vfx_queue_at(0, size, DESC_GPA, AVAIL_GPA, USED_GPA);
    memset(g_at(0, 0x10000), 0, 0x10000); /* rings and indirect tables */
}

static void setup(void)
{
    vfx_ram_init(MEM);
    memset(&ch, 0, sizeof(ch));
    queue_setup(16);
}

static void teardown(void)
{
    vfx_ram_free();
}

TestSuite(virtq, .init = setup, .fini = teardown);

/* ---- normal chains ---- */

Test(virtq, empty_ring_and_not_ready)
{
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 0);
    cr_assert_not(virtq_has_avail(&q, &vfx.gm));
    desc(0, DATA_GPA, 64, 0, 0);
    avail_add(0);
    q.ready = false;
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 0, "a queue that is not ready is never read");
    cr_assert_not(virtq_has_avail(&q, &vfx.gm));
    q.ready = true;
    cr_assert(virtq_has_avail(&q, &vfx.gm));
}

Test(virtq, single_descriptor)
{
    desc(3, DATA_GPA, 100, 0, 0);
    avail_add(3);
    cr_assert(virtq_has_avail(&q, &vfx.gm));
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
    cr_assert_eq(ch.head, 3);
    cr_assert_eq(ch.nbufs, 1);
    cr_assert_eq(ch.bufs[0].gpa, DATA_GPA);
    cr_assert_eq(ch.bufs[0].len, 100);
    cr_assert_not(ch.bufs[0].device_writes);
    cr_assert_eq(ch.readable, 100);
    cr_assert_eq(ch.writable, 0);
    cr_assert_eq(q.last_avail, 1);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 0, "only one entry was made available");
    cr_assert_not(virtq_has_avail(&q, &vfx.gm));
}

Test(virtq, readable_then_writable_chain)
{
    /* A block-request shape: header (r), data (w), status (w), linked out of order. */
    desc(5, DATA_GPA, 16, F_NEXT, 2);
    desc(2, DATA_GPA + 0x1000, 4096, F_NEXT | F_WRITE, 9);
    desc(9, DATA_GPA + 0x3000, 1, F_WRITE, 0);
    avail_add(5);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
    cr_assert_eq(ch.head, 5);
    cr_assert_eq(ch.nbufs, 3);
    cr_assert_eq(ch.bufs[0].gpa, DATA_GPA);
    cr_assert_not(ch.bufs[0].device_writes);
    cr_assert_eq(ch.bufs[1].gpa, DATA_GPA + 0x1000);
    cr_assert_eq(ch.bufs[1].len, 4096);
    cr_assert(ch.bufs[1].device_writes);
    cr_assert_eq(ch.bufs[2].gpa, DATA_GPA + 0x3000);
    cr_assert(ch.bufs[2].device_writes);
    cr_assert_eq(ch.readable, 16);
    cr_assert_eq(ch.writable, 4097);
}

Test(virtq, several_chains_in_order)
{
    desc(0, DATA_GPA, 10, F_NEXT, 1);
    desc(1, DATA_GPA + 10, 20, 0, 0);
    desc(2, DATA_GPA + 100, 30, F_WRITE, 0);
    avail_add(2);
    avail_add(0);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
    cr_assert_eq(ch.head, 2);
    cr_assert_eq(ch.writable, 30);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
    cr_assert_eq(ch.head, 0);
    cr_assert_eq(ch.nbufs, 2);
    cr_assert_eq(ch.readable, 30);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 0);
}

Test(virtq, chain_as_long_as_the_queue)
{
    queue_setup(8);
    for (uint16_t i = 0; i < 8; i++)
        desc(i, DATA_GPA + 64ULL * i, 64, i < 7 ? F_NEXT : 0, (uint16_t)(i + 1));
    avail_add(0);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1, "a chain using every descriptor once is legal");
    cr_assert_eq(ch.nbufs, 8);
    cr_assert_eq(ch.readable, 512);
}

Test(virtq, indirect_table)
{
    vfx_desc(IND_GPA, 0, DATA_GPA, 16, F_NEXT, 1);
    vfx_desc(IND_GPA, 1, DATA_GPA + 0x1000, 512, F_NEXT | F_WRITE, 2);
    vfx_desc(IND_GPA, 2, DATA_GPA + 0x2000, 1, F_WRITE, 0);
    desc(4, IND_GPA, 3 * 16, F_INDIRECT, 0);
    avail_add(4);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
    cr_assert_eq(ch.head, 4, "the used element names the head of the main table");
    cr_assert_eq(ch.nbufs, 3);
    cr_assert_eq(ch.bufs[0].gpa, DATA_GPA);
    cr_assert_eq(ch.bufs[1].gpa, DATA_GPA + 0x1000);
    cr_assert_eq(ch.bufs[2].gpa, DATA_GPA + 0x2000);
    cr_assert_eq(ch.readable, 16);
    cr_assert_eq(ch.writable, 513);
}

Test(virtq, indirect_after_direct_descriptors)
{
    /* Direct header, then an indirect descriptor ending the chain. */
    desc(0, DATA_GPA, 16, F_NEXT, 1);
    desc(1, IND_GPA, 32, F_INDIRECT, 0);
    vfx_desc(IND_GPA, 0, DATA_GPA + 0x100, 200, F_WRITE | F_NEXT, 1);
    vfx_desc(IND_GPA, 1, DATA_GPA + 0x200, 1, F_WRITE, 0);
    avail_add(0);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
    cr_assert_eq(ch.nbufs, 3);
    cr_assert_eq(ch.readable, 16);
    cr_assert_eq(ch.writable, 201);
}

Test(virtq, indirect_table_follows_next_links)
{
    /* Entries visited by `next`, not by position. */
    vfx_desc(IND_GPA, 0, DATA_GPA, 8, F_NEXT, 2);
    vfx_desc(IND_GPA, 1, DATA_GPA + 0x300, 8, F_WRITE, 0);
    vfx_desc(IND_GPA, 2, DATA_GPA + 0x200, 8, F_NEXT, 1);
    desc(0, IND_GPA, 48, F_INDIRECT, 0);
    avail_add(0);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
    cr_assert_eq(ch.nbufs, 3);
    cr_assert_eq(ch.bufs[1].gpa, DATA_GPA + 0x200);
    cr_assert_eq(ch.bufs[2].gpa, DATA_GPA + 0x300);
}

Test(virtq, push_fills_used_ring)
{
    cr_assert_eq(virtq_push(&q, &vfx.gm, 7, 513), 0);
    cr_assert_eq(used_idx(), 1);
    cr_assert_eq(used_id(0), 7);
    cr_assert_eq(used_len(0), 513);
    cr_assert_eq(virtq_push(&q, &vfx.gm, 2, 0), 0);
    cr_assert_eq(used_idx(), 2);
    cr_assert_eq(used_id(1), 2);
    cr_assert_eq(used_len(1), 0);
}

Test(virtq, push_wraps_around_the_ring)
{
    queue_setup(4);
    for (uint32_t i = 0; i < 6; i++)
        cr_assert_eq(virtq_push(&q, &vfx.gm, (uint16_t)i, 100 + i), 0);
    cr_assert_eq(used_idx(), 6);
    /* Slots 0 and 1 were overwritten by pushes 4 and 5. */
    cr_assert_eq(used_id(4), 4);
    cr_assert_eq(used_len(4), 104);
    cr_assert_eq(used_id(5), 5);
    cr_assert_eq(used_id(2), 2);
    cr_assert_eq(used_id(3), 3);
}

Test(virtq, indices_wrap_at_65536)
{
    q.last_avail = 65534;
    q.used_idx = 65534;
    vfx.q[0].avail_idx = 65534;
    for (uint16_t i = 0; i < 4; i++) {
        desc(i, DATA_GPA + 16ULL * i, 16, 0, 0);
        avail_add(i);
    }
    cr_assert_eq(g_r16(AVAIL_GPA + 2), 2);
    for (uint16_t i = 0; i < 4; i++) {
        cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
        cr_assert_eq(ch.head, i);
        cr_assert_eq(virtq_push(&q, &vfx.gm, ch.head, 1), 0);
    }
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 0);
    cr_assert_eq(q.last_avail, 2);
    cr_assert_eq(used_idx(), 2);
}

Test(virtq, unpop_gives_the_chain_back)
{
    desc(1, DATA_GPA, 16, 0, 0);
    desc(2, DATA_GPA + 16, 16, 0, 0);
    avail_add(1);
    avail_add(2);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
    cr_assert_eq(ch.head, 1);
    virtq_unpop(&q);
    cr_assert(virtq_has_avail(&q, &vfx.gm));
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
    cr_assert_eq(ch.head, 1, "the same chain comes back");
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
    cr_assert_eq(ch.head, 2);
}

/* ---- notification suppression ---- */

Test(virtq, notify_without_event_idx_follows_no_interrupt)
{
    virtq_push(&q, &vfx.gm, 0, 0);
    cr_assert(virtq_should_notify(&q, &vfx.gm));
    avail_flags(1); /* VIRTQ_AVAIL_F_NO_INTERRUPT */
    virtq_push(&q, &vfx.gm, 0, 0);
    cr_assert_not(virtq_should_notify(&q, &vfx.gm));
    avail_flags(0);
    virtq_push(&q, &vfx.gm, 0, 0);
    cr_assert(virtq_should_notify(&q, &vfx.gm));
}

Test(virtq, notify_with_event_idx_when_used_event_is_crossed)
{
    q.event_idx = true;
    avail_flags(1); /* ignored with EVENT_IDX */
    used_event(0);
    virtq_push(&q, &vfx.gm, 0, 0); /* used 0 -> 1 */
    cr_assert(virtq_should_notify(&q, &vfx.gm), "first notification always goes out");

    used_event(3); /* driver: interrupt me when entry 3 is used (used idx goes past 3) */
    virtq_push(&q, &vfx.gm, 0, 0); /* 1 -> 2 */
    cr_assert_not(virtq_should_notify(&q, &vfx.gm));
    virtq_push(&q, &vfx.gm, 0, 0); /* 2 -> 3 */
    cr_assert_not(virtq_should_notify(&q, &vfx.gm));
    virtq_push(&q, &vfx.gm, 0, 0); /* 3 -> 4: crosses used_event */
    cr_assert(virtq_should_notify(&q, &vfx.gm));
    virtq_push(&q, &vfx.gm, 0, 0); /* 4 -> 5: used_event left behind */
    cr_assert_not(virtq_should_notify(&q, &vfx.gm));

    /* Crossed inside a batch: several pushes, one check. */
    used_event(6);
    virtq_push(&q, &vfx.gm, 0, 0);
    virtq_push(&q, &vfx.gm, 0, 0);
    virtq_push(&q, &vfx.gm, 0, 0); /* 5 -> 8 */
    cr_assert(virtq_should_notify(&q, &vfx.gm));
    /* Nothing new pushed: no second interrupt for the same entries. */
    cr_assert_not(virtq_should_notify(&q, &vfx.gm));
}

Test(virtq, notify_with_event_idx_across_index_wrap)
{
    q.event_idx = true;
    q.used_idx = 65534;
    virtq_push(&q, &vfx.gm, 0, 0);
    cr_assert(virtq_should_notify(&q, &vfx.gm)); /* arms signalled_used = 65535 */
    used_event(0);
    virtq_push(&q, &vfx.gm, 0, 0); /* 65535 -> 0 */
    cr_assert_not(virtq_should_notify(&q, &vfx.gm));
    virtq_push(&q, &vfx.gm, 0, 0); /* 0 -> 1 crosses used_event 0 */
    cr_assert(virtq_should_notify(&q, &vfx.gm));
}

Test(virtq, set_avail_event)
{
    desc(0, DATA_GPA, 16, 0, 0);
    avail_add(0);
    avail_add(0);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
    g_w16(USED_GPA + 4 + 8ULL * q.size, 0xbeef);
    virtq_set_avail_event(&q, &vfx.gm);
    cr_assert_eq(avail_event(), 0xbeef, "without EVENT_IDX the field is left alone");
    q.event_idx = true;
    virtq_set_avail_event(&q, &vfx.gm);
    cr_assert_eq(avail_event(), 1);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
    virtq_set_avail_event(&q, &vfx.gm);
    cr_assert_eq(avail_event(), 2);
}

/* virtq_rearm: avail_event set at the first entry not taken, and a buffer already there is seen. */
Test(virtq, rearm_sets_avail_event_and_looks_again)
{
    q.event_idx = true;
    desc(0, DATA_GPA, 16, 0, 0);
    avail_add(0);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 0);
    cr_assert_not(virtq_rearm(&q, &vfx.gm), "nothing new: wait for a kick");
    cr_assert_eq(avail_event(), 1);
    avail_add(0); /* the driver adds one, as if between the empty pop and the store */
    cr_assert(virtq_rearm(&q, &vfx.gm), "the buffer added meanwhile is seen");
    cr_assert_eq(avail_event(), 1);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
}

/* ---- copying across buffers ---- */

Test(virtq, chain_read_and_write_across_buffers)
{
    uint8_t *d = g_at(DATA_GPA, 0x1000);
    for (int i = 0; i < 64; i++)
        d[i] = (uint8_t)i;
    /* Readable: [0,3) [3,8) [8,16); writable: 4 bytes at 0x800, 6 at 0x900. */
    desc(0, DATA_GPA, 3, F_NEXT, 1);
    desc(1, DATA_GPA + 3, 5, F_NEXT, 2);
    desc(2, DATA_GPA + 8, 8, F_NEXT, 3);
    desc(3, DATA_GPA + 0x800, 4, F_NEXT | F_WRITE, 4);
    desc(4, DATA_GPA + 0x900, 6, F_WRITE, 0);
    avail_add(0);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);

    uint8_t buf[16];
    memset(buf, 0xff, sizeof(buf));
    cr_assert_eq(virtq_chain_read(&ch, &vfx.gm, 2, buf, 10), 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(buf[i], 2 + i);
    cr_assert_eq(virtq_chain_read(&ch, &vfx.gm, 0, buf, 16), 0);
    cr_assert_eq(buf[15], 15);
    cr_assert_eq(virtq_chain_read(&ch, &vfx.gm, 8, buf, 9), -ENOSPC, "only 16 readable bytes");
    cr_assert_eq(virtq_chain_read(&ch, &vfx.gm, 16, buf, 0), 0);

    const uint8_t src[10] = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
    cr_assert_eq(virtq_chain_write(&ch, &vfx.gm, 1, src, 8), 0);
    cr_assert_eq(d[0x800], 0, "offset 1 skips the first writable byte");
    cr_assert_eq(d[0x801], 10);
    cr_assert_eq(d[0x803], 12);
    cr_assert_eq(d[0x900], 13);
    cr_assert_eq(d[0x904], 17);
    cr_assert_eq(d[0x905], 0);
    cr_assert_eq(d[16], 16, "readable buffers are never written");
    cr_assert_eq(virtq_chain_write(&ch, &vfx.gm, 0, src, 11), -ENOSPC, "only 10 writable bytes");
    cr_assert_eq(virtq_chain_write(&ch, &vfx.gm, 5, src, 5), 0);
    cr_assert_eq(d[0x905], 14);
}

/* ---- hostile chains: -EPROTO, never a crash ---- */

static void expect_eproto(const char *what)
{
    int rc = virtq_pop(&q, &vfx.gm, &ch);
    cr_assert_eq(rc, -EPROTO, "%s: virtq_pop returned %d", what, rc);
}

Test(virtq, cycle_of_two)
{
    desc(0, DATA_GPA, 16, F_NEXT, 1);
    desc(1, DATA_GPA, 16, F_NEXT, 0);
    avail_add(0);
    expect_eproto("0 -> 1 -> 0");
}

Test(virtq, self_loop)
{
    desc(0, DATA_GPA, 16, F_NEXT, 0);
    avail_add(0);
    expect_eproto("0 -> 0");
}

Test(virtq, self_loop_of_zero_length_descriptors)
{
    /* Zero-length entries add no buffer, so only the step bound stops this walk. */
    desc(0, DATA_GPA, 0, F_NEXT, 1);
    desc(1, DATA_GPA, 0, F_NEXT, 0);
    avail_add(0);
    expect_eproto("zero-length cycle");
}

Test(virtq, chain_longer_than_the_queue)
{
    queue_setup(256);
    for (uint32_t i = 0; i < 256; i++)
        desc((uint16_t)i, DATA_GPA, 16, F_NEXT, (uint16_t)((i + 1) % 256));
    avail_add(0);
    expect_eproto("every descriptor chained into one ring");
}

Test(virtq, head_out_of_range)
{
    avail_add(16);
    expect_eproto("head == size");
    queue_setup(16);
    avail_add(0xffff);
    expect_eproto("head 0xffff");
}

Test(virtq, next_out_of_range)
{
    desc(0, DATA_GPA, 16, F_NEXT, 16);
    avail_add(0);
    expect_eproto("next == size");
    queue_setup(16);
    desc(0, DATA_GPA, 16, F_NEXT, 0xffff);
    avail_add(0);
    expect_eproto("next 0xffff");
}

Test(virtq, buffer_outside_guest_memory)
{
    desc(0, MEM, 16, 0, 0);
    avail_add(0);
    expect_eproto("addr == end of RAM");
    queue_setup(16);
    desc(0, 0x7fffffff0000ULL, 1, 0, 0);
    avail_add(0);
    expect_eproto("far above RAM");
}

Test(virtq, buffer_wrapping_around_2_64)
{
    desc(0, 0xfffffffffffff000ULL, 0x2000, 0, 0);
    avail_add(0);
    expect_eproto("addr + len wraps to a small address");
    queue_setup(16);
    desc(0, UINT64_MAX, 2, F_WRITE, 0);
    avail_add(0);
    expect_eproto("addr = 2^64 - 1");
}

Test(virtq, buffer_running_past_the_end_of_ram)
{
    desc(0, MEM - 16, 17, 0, 0);
    avail_add(0);
    expect_eproto("one byte past the end");
    queue_setup(16);
    desc(0, DATA_GPA, 0xffffffffU, F_WRITE, 0);
    avail_add(0);
    expect_eproto("len 4 GiB - 1");
    /* Right up to the end is fine. */
    queue_setup(16);
    desc(0, MEM - 16, 16, 0, 0);
    avail_add(0);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
}

Test(virtq, descriptor_table_outside_memory)
{
    /* Not validated (virtq_validate was skipped): every access is still checked. */
    q.desc_gpa = MEM - 16;
    avail_add(1);
    expect_eproto("descriptor 1 lies past the end of RAM");
}

Test(virtq, rings_outside_memory_without_validation)
{
    q.avail_gpa = MEM + 0x1000;
    q.used_gpa = MEM + 0x2000;
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 0);
    cr_assert_not(virtq_has_avail(&q, &vfx.gm));
    cr_assert_eq(virtq_push(&q, &vfx.gm, 0, 0), -EPROTO);
    q.event_idx = true;
    virtq_set_avail_event(&q, &vfx.gm); /* must not write anywhere */
    (void)virtq_should_notify(&q, &vfx.gm);
    (void)virtq_should_notify(&q, &vfx.gm);
}

Test(virtq, zero_length_descriptors_are_skipped)
{
    desc(0, DATA_GPA, 16, F_NEXT, 1);
    desc(1, 0xdead00000000ULL, 0, F_NEXT, 2); /* no bytes: its address is never used */
    desc(2, DATA_GPA + 0x100, 8, F_WRITE, 0);
    avail_add(0);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
    cr_assert_eq(ch.nbufs, 2);
    cr_assert_eq(ch.readable, 16);
    cr_assert_eq(ch.writable, 8);
    /* A chain of nothing but zero-length buffers: no data for the device to touch. */
    desc(3, DATA_GPA, 0, 0, 0);
    avail_add(3);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
    cr_assert_eq(ch.nbufs, 0);
    cr_assert_eq(ch.readable + ch.writable, 0);
    uint8_t b[4];
    cr_assert_eq(virtq_chain_read(&ch, &vfx.gm, 0, b, 1), -ENOSPC);
    cr_assert_eq(virtq_chain_write(&ch, &vfx.gm, 0, b, 1), -ENOSPC);
}

Test(virtq, readable_after_writable)
{
    desc(0, DATA_GPA, 16, F_WRITE | F_NEXT, 1);
    desc(1, DATA_GPA + 16, 16, 0, 0);
    avail_add(0);
    expect_eproto("readable after writable");
}

Test(virtq, readable_after_writable_inside_indirect)
{
    vfx_desc(IND_GPA, 0, DATA_GPA, 16, F_WRITE | F_NEXT, 1);
    vfx_desc(IND_GPA, 1, DATA_GPA + 16, 16, 0, 0);
    desc(0, IND_GPA, 32, F_INDIRECT, 0);
    avail_add(0);
    expect_eproto("readable after writable (indirect)");
}

Test(virtq, avail_idx_jumps_past_the_ring)
{
    desc(0, DATA_GPA, 16, 0, 0);
    g_w16(AVAIL_GPA + 2, 17); /* 17 entries in a 16-entry ring */
    expect_eproto("avail idx + 17");
    g_w16(AVAIL_GPA + 2, 0x8000);
    expect_eproto("avail idx + 0x8000");
    g_w16(AVAIL_GPA + 2, 16); /* a full ring is legal */
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
}

Test(virtq, indirect_with_next)
{
    vfx_desc(IND_GPA, 0, DATA_GPA, 16, 0, 0);
    desc(0, IND_GPA, 16, F_INDIRECT | F_NEXT, 1);
    desc(1, DATA_GPA, 16, 0, 0);
    avail_add(0);
    expect_eproto("INDIRECT | NEXT");
}

Test(virtq, nested_indirect)
{
    vfx_desc(IND_GPA + 0x100, 0, DATA_GPA, 16, 0, 0);
    vfx_desc(IND_GPA, 0, IND_GPA + 0x100, 16, F_INDIRECT, 0);
    desc(0, IND_GPA, 16, F_INDIRECT, 0);
    avail_add(0);
    expect_eproto("indirect inside indirect");
}

Test(virtq, indirect_length_not_a_multiple_of_16)
{
    vfx_desc(IND_GPA, 0, DATA_GPA, 16, 0, 0);
    desc(0, IND_GPA, 24, F_INDIRECT, 0);
    avail_add(0);
    expect_eproto("indirect len 24");
    queue_setup(16);
    desc(0, IND_GPA, 0, F_INDIRECT, 0);
    avail_add(0);
    expect_eproto("indirect len 0");
    queue_setup(16);
    desc(0, IND_GPA, 15, F_INDIRECT, 0);
    avail_add(0);
    expect_eproto("indirect len 15");
}

Test(virtq, indirect_table_outside_memory)
{
    desc(0, MEM - 16, 32, F_INDIRECT, 0);
    avail_add(0);
    expect_eproto("table runs past the end of RAM");
    queue_setup(16);
    desc(0, 0xfffffffffffffff0ULL, 32, F_INDIRECT, 0);
    avail_add(0);
    expect_eproto("table wraps around 2^64");
    queue_setup(16);
    desc(0, 0x40000000ULL, 16, F_INDIRECT, 0);
    avail_add(0);
    expect_eproto("table above RAM");
}

Test(virtq, indirect_table_too_long)
{
    /* More entries than any chain may have: refused before it is walked. */
    uint32_t n = VIRTQ_MAX_CHAIN + 1;
    for (uint32_t i = 0; i < n; i++)
        vfx_desc(IND_GPA, i, DATA_GPA, 1, i + 1 < n ? F_NEXT : 0, (uint16_t)(i + 1));
    desc(0, IND_GPA, 16 * n, F_INDIRECT, 0);
    avail_add(0);
    expect_eproto("indirect table of VIRTQ_MAX_CHAIN + 1 entries");
}

Test(virtq, cycle_inside_indirect_table)
{
    vfx_desc(IND_GPA, 0, DATA_GPA, 16, F_NEXT, 1);
    vfx_desc(IND_GPA, 1, DATA_GPA, 16, F_NEXT, 2);
    vfx_desc(IND_GPA, 2, DATA_GPA, 16, F_NEXT, 0);
    desc(0, IND_GPA, 48, F_INDIRECT, 0);
    avail_add(0);
    expect_eproto("0 -> 1 -> 2 -> 0 inside the table");
    queue_setup(16);
    vfx_desc(IND_GPA, 0, DATA_GPA, 0, F_NEXT, 0); /* zero-length self loop */
    desc(0, IND_GPA, 16, F_INDIRECT, 0);
    avail_add(0);
    expect_eproto("zero-length self loop inside the table");
}

Test(virtq, indirect_next_out_of_range)
{
    vfx_desc(IND_GPA, 0, DATA_GPA, 16, F_NEXT, 2); /* the table has 2 entries */
    desc(0, IND_GPA, 32, F_INDIRECT, 0);
    avail_add(0);
    expect_eproto("next beyond the indirect table");
}

Test(virtq, chain_total_bounded_by_max_chain)
{
    /* 255 direct buffers, then an indirect table of 16: more than a chain may hold. */
    queue_setup(256);
    for (uint32_t i = 0; i < 255; i++)
        desc((uint16_t)i, DATA_GPA + i, 1, F_NEXT, (uint16_t)(i + 1));
    desc(255, IND_GPA, 16 * 16, F_INDIRECT, 0);
    for (uint32_t i = 0; i < 16; i++)
        vfx_desc(IND_GPA, i, DATA_GPA, 1, i < 15 ? F_NEXT : 0, (uint16_t)(i + 1));
    avail_add(0);
    expect_eproto("255 + 16 buffers");
    cr_assert_leq(ch.nbufs, VIRTQ_MAX_CHAIN);
    /* 255 + 5 = VIRTQ_MAX_CHAIN exactly is accepted. */
    queue_setup(256);
    for (uint32_t i = 0; i < 255; i++)
        desc((uint16_t)i, DATA_GPA + i, 1, F_NEXT, (uint16_t)(i + 1));
    desc(255, IND_GPA, 16 * 5, F_INDIRECT, 0);
    for (uint32_t i = 0; i < 5; i++)
        vfx_desc(IND_GPA, i, DATA_GPA, 1, i < 4 ? F_NEXT : 0, (uint16_t)(i + 1));
    avail_add(0);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
    cr_assert_eq(ch.nbufs, VIRTQ_MAX_CHAIN);
}

Test(virtq, failed_pop_consumes_nothing)
{
    desc(0, MEM, 16, 0, 0);
    avail_add(0);
    expect_eproto("bad buffer");
    cr_assert_eq(q.last_avail, 0);
    expect_eproto("still the same bad buffer");
}

/* ---- the MMIO gap: RAM above 3 GiB moves to 4 GiB ---- */

Test(virtq, buffer_in_the_mmio_gap)
{
    uint64_t big = MMIO_GAP_START + (2ULL << 20); /* 3 GiB low + 2 MiB above 4 GiB */
    uint8_t *backing = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    cr_assert_neq(backing, MAP_FAILED);
    cr_assert_eq(guest_mem_init_with(&vfx.gm, big, backing), 0);
    cr_assert_eq(vfx.gm.nr_regions, 2);

    queue_setup(16);
    desc(0, MMIO_GAP_START + 0x1000, 16, 0, 0);
    avail_add(0);
    expect_eproto("buffer inside the gap");

    queue_setup(16);
    desc(0, MMIO_GAP_START - 0x1000, 0x2000, 0, 0);
    avail_add(0);
    expect_eproto("buffer running from low RAM into the gap");

    queue_setup(16);
    desc(0, MMIO_GAP_END - 0x10, 0x20, 0, 0);
    avail_add(0);
    expect_eproto("buffer running from the gap into high RAM");

    queue_setup(16);
    desc(0, MMIO_GAP_START - 0x1000, 0x1000, F_NEXT, 1);
    desc(1, MMIO_GAP_END, 0x1000, 0, 0);
    avail_add(0);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1, "both sides of the gap are RAM");
    cr_assert_eq(ch.readable, 0x2000);

    queue_setup(16);
    desc(0, MMIO_GAP_END, 16, F_INDIRECT, 0); /* an indirect table in high RAM is fine */
    vfx_desc(MMIO_GAP_END, 0, MMIO_GAP_START + 0x10, 16, 0, 0); /* ...its buffer is not */
    avail_add(0);
    expect_eproto("indirect entry pointing into the gap");

    struct virtq v = {.size = 16, .desc_gpa = MMIO_GAP_START, .avail_gpa = 0x3000, .used_gpa = 0x4000};
    cr_assert_neq(virtq_validate(&v, &vfx.gm), 0, "descriptor table in the gap");
    v.desc_gpa = MMIO_GAP_END;
    cr_assert_eq(virtq_validate(&v, &vfx.gm), 0);
    v.used_gpa = MMIO_GAP_START - 0x40; /* 134 bytes from 64 below the gap */
    cr_assert_neq(virtq_validate(&v, &vfx.gm), 0, "used ring straddling the gap");

    guest_mem_free(&vfx.gm);
    munmap(backing, big);
    cr_assert_eq(guest_mem_init_with(&vfx.gm, MEM, vfx.ram), 0);
}

/* ---- ring placement ---- */

Test(virtq, validate)
{
    struct virtq v = {.size = 256, .desc_gpa = DESC_GPA, .avail_gpa = AVAIL_GPA, .used_gpa = USED_GPA};
    cr_assert_eq(virtq_validate(&v, &vfx.gm), 0);
    v.size = 1;
    cr_assert_eq(virtq_validate(&v, &vfx.gm), 0);

    static const uint16_t bad_sizes[] = {0, 3, 6, 100, 255, 257, 512, 0x8000};
    for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
        v.size = bad_sizes[i];
        cr_assert_neq(virtq_validate(&v, &vfx.gm), 0, "size %u", bad_sizes[i]);
    }
    v.size = 16;

    struct virtq b = v;
    b.desc_gpa = DESC_GPA + 8;
    cr_assert_neq(virtq_validate(&b, &vfx.gm), 0, "descriptor table must be 16-byte aligned");
    b = v;
    b.avail_gpa = AVAIL_GPA + 1;
    cr_assert_neq(virtq_validate(&b, &vfx.gm), 0, "avail ring must be 2-byte aligned");
    b = v;
    b.used_gpa = USED_GPA + 2;
    cr_assert_neq(virtq_validate(&b, &vfx.gm), 0, "used ring must be 4-byte aligned");

    b = v;
    b.desc_gpa = MEM - 16 * 15; /* 16 entries, room for 15 */
    cr_assert_neq(virtq_validate(&b, &vfx.gm), 0, "descriptor table past the end");
    b.desc_gpa = MEM - 16 * 16;
    cr_assert_eq(virtq_validate(&b, &vfx.gm), 0, "descriptor table ending at the end of RAM");
    b = v;
    b.avail_gpa = MEM - (4 + 2 * 16 + 2) + 2; /* used_event would lie past the end */
    cr_assert_neq(virtq_validate(&b, &vfx.gm), 0, "avail ring (with used_event) past the end");
    b.avail_gpa = MEM - (4 + 2 * 16 + 2);
    cr_assert_eq(virtq_validate(&b, &vfx.gm), 0);
    b = v;
    b.used_gpa = MEM - 128; /* 4-aligned, 134 bytes needed: avail_event past the end */
    cr_assert_neq(virtq_validate(&b, &vfx.gm), 0, "used ring (with avail_event) past the end");
    b = v;
    b.used_gpa = 0xfffffffffffffff0ULL;
    cr_assert_neq(virtq_validate(&b, &vfx.gm), 0, "used ring wrapping around 2^64");
    b = v;
    b.desc_gpa = 0x100000000ULL; /* above 4 GiB, no high RAM in a 4 MiB guest */
    cr_assert_neq(virtq_validate(&b, &vfx.gm), 0);
}

/* ---- validated queues: rings mapped once ---- */

Test(virtq, validated_queue_maps_rings_and_buffers)
{
    cr_assert_eq(virtq_validate(&q, &vfx.gm), 0);
    cr_assert_eq(q.desc_host, gm_ptr(&vfx.gm, DESC_GPA, 16));
    cr_assert_eq(q.avail_host, gm_ptr(&vfx.gm, AVAIL_GPA, 2));
    cr_assert_eq(q.used_host, gm_ptr(&vfx.gm, USED_GPA, 2));
    /* Pops, pushes and the EVENT_IDX fields go through the mapping: same results as unmapped. */
    q.event_idx = true;
    for (int round = 0; round < 40; round++) { /* wraps the 16-entry ring */
        desc(0, DATA_GPA, 16, F_NEXT, 1);
        desc(1, DATA_GPA + 0x1000, 512, F_WRITE, 0);
        avail_add(0);
        cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), 1);
        cr_assert_eq(ch.nbufs, 2);
        cr_assert_eq(ch.bufs[0].host, gm_ptr(&vfx.gm, DATA_GPA, 16), "buffers carry their checked mapping");
        cr_assert_eq(ch.bufs[1].host, gm_ptr(&vfx.gm, DATA_GPA + 0x1000, 512));
        cr_assert_eq(virtq_push(&q, &vfx.gm, ch.head, 512), 0);
        cr_assert_eq(used_idx(), (uint16_t)(round + 1));
        cr_assert_eq(used_id((uint16_t)round), 0);
        cr_assert_eq(used_len((uint16_t)round), 512);
        virtq_set_avail_event(&q, &vfx.gm);
        cr_assert_eq(avail_event(), (uint16_t)(round + 1));
    }
    /* The descriptor's buffer is still checked on every pop, mapping or not. */
    desc(2, MEM - 8, 16, 0, 0);
    avail_add(2);
    cr_assert_eq(virtq_pop(&q, &vfx.gm, &ch), -EPROTO);
}

Test(virtq, failed_validation_leaves_rings_unmapped)
{
    cr_assert_eq(virtq_validate(&q, &vfx.gm), 0);
    q.used_gpa = MEM - 8; /* no room for the used ring, nor for its first element */
    cr_assert_neq(virtq_validate(&q, &vfx.gm), 0);
    cr_assert_null(q.desc_host);
    cr_assert_null(q.avail_host);
    cr_assert_null(q.used_host);
    cr_assert_eq(virtq_push(&q, &vfx.gm, 0, 0), -EPROTO, "each access checked again: the used ring is outside RAM");
    virtq_reset(&q);
    cr_assert_null(q.used_host, "reset forgets the mapping");
}
