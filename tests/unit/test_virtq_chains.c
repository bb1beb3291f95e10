/*
 * virtqueue (split ring), device side, against simulated guest memory: the
 * test plays the driver, writing descriptor tables and rings itself in
 * little-endian, then checks what virtq_pop/push/... make of them. This file:
 * well-formed chains (direct and indirect), the used ring, notification
 * suppression (EVENT_IDX or not) and copying across a chain's buffers.
 * Hostile chains: test_virtq_hostile.c; ring placement: test_virtq_rings.c.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "devices/virtio/queue.h"
#include "tests/unit/virtq_fixture.h"

/* ---- normal chains ---- */

Test(virtq, empty_ring_and_not_ready)
{
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 0);
    cr_assert_not(virtq_has_avail(&vq, &vfx.gm));
    desc(0, DATA_GPA, 64, 0, 0);
    avail_add(0);
    vq.ready = false;
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 0, "a queue that is not ready is never read");
    cr_assert_not(virtq_has_avail(&vq, &vfx.gm));
    vq.ready = true;
    cr_assert(virtq_has_avail(&vq, &vfx.gm));
}

Test(virtq, single_descriptor)
{
    desc(3, DATA_GPA, 100, 0, 0);
    avail_add(3);
    cr_assert(virtq_has_avail(&vq, &vfx.gm));
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
    cr_assert_eq(vq_chain.head, 3);
    cr_assert_eq(vq_chain.nbufs, 1);
    cr_assert_eq(vq_chain.bufs[0].gpa, DATA_GPA);
    cr_assert_eq(vq_chain.bufs[0].len, 100);
    cr_assert_not(vq_chain.bufs[0].device_writes);
    cr_assert_eq(vq_chain.readable, 100);
    cr_assert_eq(vq_chain.writable, 0);
    cr_assert_eq(vq.last_avail, 1);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 0, "only one entry was made available");
    cr_assert_not(virtq_has_avail(&vq, &vfx.gm));
}

Test(virtq, readable_then_writable_chain)
{
    /* A block-request shape: header (r), data (w), status (w), linked out of order. */
    desc(5, DATA_GPA, 16, F_NEXT, 2);
    desc(2, DATA_GPA + 0x1000, 4096, F_NEXT | F_WRITE, 9);
    desc(9, DATA_GPA + 0x3000, 1, F_WRITE, 0);
    avail_add(5);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
    cr_assert_eq(vq_chain.head, 5);
    cr_assert_eq(vq_chain.nbufs, 3);
    cr_assert_eq(vq_chain.bufs[0].gpa, DATA_GPA);
    cr_assert_not(vq_chain.bufs[0].device_writes);
    cr_assert_eq(vq_chain.bufs[1].gpa, DATA_GPA + 0x1000);
    cr_assert_eq(vq_chain.bufs[1].len, 4096);
    cr_assert(vq_chain.bufs[1].device_writes);
    cr_assert_eq(vq_chain.bufs[2].gpa, DATA_GPA + 0x3000);
    cr_assert(vq_chain.bufs[2].device_writes);
    cr_assert_eq(vq_chain.readable, 16);
    cr_assert_eq(vq_chain.writable, 4097);
}

Test(virtq, several_chains_in_order)
{
    desc(0, DATA_GPA, 10, F_NEXT, 1);
    desc(1, DATA_GPA + 10, 20, 0, 0);
    desc(2, DATA_GPA + 100, 30, F_WRITE, 0);
    avail_add(2);
    avail_add(0);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
    cr_assert_eq(vq_chain.head, 2);
    cr_assert_eq(vq_chain.writable, 30);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
    cr_assert_eq(vq_chain.head, 0);
    cr_assert_eq(vq_chain.nbufs, 2);
    cr_assert_eq(vq_chain.readable, 30);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 0);
}

Test(virtq, chain_as_long_as_the_queue)
{
    vq_queue_setup(8);
    for (uint16_t i = 0; i < 8; i++)
        desc(i, DATA_GPA + 64ULL * i, 64, i < 7 ? F_NEXT : 0, (uint16_t)(i + 1));
    avail_add(0);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1, "a chain using every descriptor once is legal");
    cr_assert_eq(vq_chain.nbufs, 8);
    cr_assert_eq(vq_chain.readable, 512);
}

Test(virtq, indirect_table)
{
    vfx_desc(IND_GPA, 0, DATA_GPA, 16, F_NEXT, 1);
    vfx_desc(IND_GPA, 1, DATA_GPA + 0x1000, 512, F_NEXT | F_WRITE, 2);
    vfx_desc(IND_GPA, 2, DATA_GPA + 0x2000, 1, F_WRITE, 0);
    desc(4, IND_GPA, 3 * 16, F_INDIRECT, 0);
    avail_add(4);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
    cr_assert_eq(vq_chain.head, 4, "the used element names the head of the main table");
    cr_assert_eq(vq_chain.nbufs, 3);
    cr_assert_eq(vq_chain.bufs[0].gpa, DATA_GPA);
    cr_assert_eq(vq_chain.bufs[1].gpa, DATA_GPA + 0x1000);
    cr_assert_eq(vq_chain.bufs[2].gpa, DATA_GPA + 0x2000);
    cr_assert_eq(vq_chain.readable, 16);
    cr_assert_eq(vq_chain.writable, 513);
}

Test(virtq, indirect_after_direct_descriptors)
{
    /* Direct header, then an indirect descriptor ending the chain. */
    desc(0, DATA_GPA, 16, F_NEXT, 1);
    desc(1, IND_GPA, 32, F_INDIRECT, 0);
    vfx_desc(IND_GPA, 0, DATA_GPA + 0x100, 200, F_WRITE | F_NEXT, 1);
    vfx_desc(IND_GPA, 1, DATA_GPA + 0x200, 1, F_WRITE, 0);
    avail_add(0);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
    cr_assert_eq(vq_chain.nbufs, 3);
    cr_assert_eq(vq_chain.readable, 16);
    cr_assert_eq(vq_chain.writable, 201);
}

Test(virtq, indirect_table_follows_next_links)
{
    /* Entries visited by `next`, not by position. */
    vfx_desc(IND_GPA, 0, DATA_GPA, 8, F_NEXT, 2);
    vfx_desc(IND_GPA, 1, DATA_GPA + 0x300, 8, F_WRITE, 0);
    vfx_desc(IND_GPA, 2, DATA_GPA + 0x200, 8, F_NEXT, 1);
    desc(0, IND_GPA, 48, F_INDIRECT, 0);
    avail_add(0);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
    cr_assert_eq(vq_chain.nbufs, 3);
    cr_assert_eq(vq_chain.bufs[1].gpa, DATA_GPA + 0x200);
    cr_assert_eq(vq_chain.bufs[2].gpa, DATA_GPA + 0x300);
}

Test(virtq, push_fills_used_ring)
{
    cr_assert_eq(virtq_push(&vq, &vfx.gm, 7, 513), 0);
    cr_assert_eq(used_idx(), 1);
    cr_assert_eq(used_id(0), 7);
    cr_assert_eq(used_len(0), 513);
    cr_assert_eq(virtq_push(&vq, &vfx.gm, 2, 0), 0);
    cr_assert_eq(used_idx(), 2);
    cr_assert_eq(used_id(1), 2);
    cr_assert_eq(used_len(1), 0);
}

Test(virtq, push_wraps_around_the_ring)
{
    vq_queue_setup(4);
    for (uint32_t i = 0; i < 6; i++)
        cr_assert_eq(virtq_push(&vq, &vfx.gm, (uint16_t)i, 100 + i), 0);
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
    vq.last_avail = 65534;
    vq.used_idx = 65534;
    vfx.q[0].avail_idx = 65534;
    for (uint16_t i = 0; i < 4; i++) {
        desc(i, DATA_GPA + 16ULL * i, 16, 0, 0);
        avail_add(i);
    }
    cr_assert_eq(g_r16(AVAIL_GPA + 2), 2);
    for (uint16_t i = 0; i < 4; i++) {
        cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
        cr_assert_eq(vq_chain.head, i);
        cr_assert_eq(virtq_push(&vq, &vfx.gm, vq_chain.head, 1), 0);
    }
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 0);
    cr_assert_eq(vq.last_avail, 2);
    cr_assert_eq(used_idx(), 2);
}

Test(virtq, unpop_gives_the_chain_back)
{
    desc(1, DATA_GPA, 16, 0, 0);
    desc(2, DATA_GPA + 16, 16, 0, 0);
    avail_add(1);
    avail_add(2);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
    cr_assert_eq(vq_chain.head, 1);
    virtq_unpop(&vq);
    cr_assert(virtq_has_avail(&vq, &vfx.gm));
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
    cr_assert_eq(vq_chain.head, 1, "the same chain comes back");
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
    cr_assert_eq(vq_chain.head, 2);
}

/* ---- notification suppression ---- */

Test(virtq, notify_without_event_idx_follows_no_interrupt)
{
    virtq_push(&vq, &vfx.gm, 0, 0);
    cr_assert(virtq_should_notify(&vq, &vfx.gm));
    avail_flags(1); /* VIRTQ_AVAIL_F_NO_INTERRUPT */
    virtq_push(&vq, &vfx.gm, 0, 0);
    cr_assert_not(virtq_should_notify(&vq, &vfx.gm));
    avail_flags(0);
    virtq_push(&vq, &vfx.gm, 0, 0);
    cr_assert(virtq_should_notify(&vq, &vfx.gm));
}

Test(virtq, notify_with_event_idx_when_used_event_is_crossed)
{
    vq.event_idx = true;
    avail_flags(1); /* ignored with EVENT_IDX */
    used_event(0);
    virtq_push(&vq, &vfx.gm, 0, 0); /* used 0 -> 1 */
    cr_assert(virtq_should_notify(&vq, &vfx.gm), "first notification always goes out");

    used_event(3);                  /* driver: interrupt me when entry 3 is used (used idx goes past 3) */
    virtq_push(&vq, &vfx.gm, 0, 0); /* 1 -> 2 */
    cr_assert_not(virtq_should_notify(&vq, &vfx.gm));
    virtq_push(&vq, &vfx.gm, 0, 0); /* 2 -> 3 */
    cr_assert_not(virtq_should_notify(&vq, &vfx.gm));
    virtq_push(&vq, &vfx.gm, 0, 0); /* 3 -> 4: crosses used_event */
    cr_assert(virtq_should_notify(&vq, &vfx.gm));
    virtq_push(&vq, &vfx.gm, 0, 0); /* 4 -> 5: used_event left behind */
    cr_assert_not(virtq_should_notify(&vq, &vfx.gm));

    /* Crossed inside a batch: several pushes, one check. */
    used_event(6);
    virtq_push(&vq, &vfx.gm, 0, 0);
    virtq_push(&vq, &vfx.gm, 0, 0);
    virtq_push(&vq, &vfx.gm, 0, 0); /* 5 -> 8 */
    cr_assert(virtq_should_notify(&vq, &vfx.gm));
    /* Nothing new pushed: no second interrupt for the same entries. */
    cr_assert_not(virtq_should_notify(&vq, &vfx.gm));
}

Test(virtq, notify_with_event_idx_across_index_wrap)
{
    vq.event_idx = true;
    vq.used_idx = 65534;
    virtq_push(&vq, &vfx.gm, 0, 0);
    cr_assert(virtq_should_notify(&vq, &vfx.gm)); /* arms signalled_used = 65535 */
    used_event(0);
    virtq_push(&vq, &vfx.gm, 0, 0); /* 65535 -> 0 */
    cr_assert_not(virtq_should_notify(&vq, &vfx.gm));
    virtq_push(&vq, &vfx.gm, 0, 0); /* 0 -> 1 crosses used_event 0 */
    cr_assert(virtq_should_notify(&vq, &vfx.gm));
}

Test(virtq, set_avail_event)
{
    desc(0, DATA_GPA, 16, 0, 0);
    avail_add(0);
    avail_add(0);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
    g_w16(USED_GPA + 4 + 8ULL * vq.size, 0xbeef);
    virtq_set_avail_event(&vq, &vfx.gm);
    cr_assert_eq(avail_event(), 0xbeef, "without EVENT_IDX the field is left alone");
    vq.event_idx = true;
    virtq_set_avail_event(&vq, &vfx.gm);
    cr_assert_eq(avail_event(), 1);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
    virtq_set_avail_event(&vq, &vfx.gm);
    cr_assert_eq(avail_event(), 2);
}

/* virtq_rearm: avail_event set at the first entry not taken, and a buffer already there is seen. */
Test(virtq, rearm_sets_avail_event_and_looks_again)
{
    vq.event_idx = true;
    desc(0, DATA_GPA, 16, 0, 0);
    avail_add(0);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 0);
    cr_assert_not(virtq_rearm(&vq, &vfx.gm), "nothing new: wait for a kick");
    cr_assert_eq(avail_event(), 1);
    avail_add(0); /* the driver adds one, as if between the empty pop and the store */
    cr_assert(virtq_rearm(&vq, &vfx.gm), "the buffer added meanwhile is seen");
    cr_assert_eq(avail_event(), 1);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
}

/* virtq_describe: the device's and the driver's ring positions, as a stalled queue is diagnosed. */
Test(virtq, describe_names_both_sides)
{
    char line[256];
    vq.event_idx = true;
    desc(0, DATA_GPA, 16, 0, 0);
    avail_add(0);
    avail_add(0);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
    cr_assert_eq(virtq_push(&vq, &vfx.gm, 0, 0), 0);
    virtq_set_avail_event(&vq, &vfx.gm);
    virtq_describe(&vq, &vfx.gm, line, sizeof(line));
    cr_assert(strstr(line, "device: next avail 1, next used 1, last interrupt at used 0 (none yet)"), "%s", line);
    cr_assert(strstr(line, "guest memory: avail idx 2 flags 0 used_event 0, used idx 1 avail_event 1"), "%s", line);
    vq.ready = false;
    virtq_describe(&vq, &vfx.gm, line, sizeof(line));
    cr_assert_str_eq(line, "not ready");
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
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);

    uint8_t buf[16];
    memset(buf, 0xff, sizeof(buf));
    cr_assert_eq(virtq_chain_read(&vq_chain, &vfx.gm, 2, buf, 10), 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(buf[i], 2 + i);
    cr_assert_eq(virtq_chain_read(&vq_chain, &vfx.gm, 0, buf, 16), 0);
    cr_assert_eq(buf[15], 15);
    cr_assert_eq(virtq_chain_read(&vq_chain, &vfx.gm, 8, buf, 9), -ENOSPC, "only 16 readable bytes");
    cr_assert_eq(virtq_chain_read(&vq_chain, &vfx.gm, 16, buf, 0), 0);

    const uint8_t src[10] = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
    cr_assert_eq(virtq_chain_write(&vq_chain, &vfx.gm, 1, src, 8), 0);
    cr_assert_eq(d[0x800], 0, "offset 1 skips the first writable byte");
    cr_assert_eq(d[0x801], 10);
    cr_assert_eq(d[0x803], 12);
    cr_assert_eq(d[0x900], 13);
    cr_assert_eq(d[0x904], 17);
    cr_assert_eq(d[0x905], 0);
    cr_assert_eq(d[16], 16, "readable buffers are never written");
    cr_assert_eq(virtq_chain_write(&vq_chain, &vfx.gm, 0, src, 11), -ENOSPC, "only 10 writable bytes");
    cr_assert_eq(virtq_chain_write(&vq_chain, &vfx.gm, 5, src, 5), 0);
    cr_assert_eq(d[0x905], 14);
}
