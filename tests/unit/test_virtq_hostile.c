/*
 * virtqueue (split ring), device side: hostile chains and buffers. Each must
 * end in -EPROTO (or be handled) without a crash or an out-of-bounds access
 * (run under ASan+UBSan too). The test plays the driver (virtq_fixture.h).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

#include "devices/virtio/queue.h"
#include "tests/unit/virtq_fixture.h"

/* ---- hostile chains: -EPROTO, never a crash ---- */

static void expect_eproto(const char *what)
{
    int rc = virtq_pop(&vq, &vfx.gm, &vq_chain);
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
    vq_queue_setup(256);
    for (uint32_t i = 0; i < 256; i++)
        desc((uint16_t)i, DATA_GPA, 16, F_NEXT, (uint16_t)((i + 1) % 256));
    avail_add(0);
    expect_eproto("every descriptor chained into one ring");
}

Test(virtq, head_out_of_range)
{
    avail_add(16);
    expect_eproto("head == size");
    vq_queue_setup(16);
    avail_add(0xffff);
    expect_eproto("head 0xffff");
}

Test(virtq, next_out_of_range)
{
    desc(0, DATA_GPA, 16, F_NEXT, 16);
    avail_add(0);
    expect_eproto("next == size");
    vq_queue_setup(16);
    desc(0, DATA_GPA, 16, F_NEXT, 0xffff);
    avail_add(0);
    expect_eproto("next 0xffff");
}

Test(virtq, buffer_outside_guest_memory)
{
    desc(0, MEM, 16, 0, 0);
    avail_add(0);
    expect_eproto("addr == end of RAM");
    vq_queue_setup(16);
    desc(0, 0x7fffffff0000ULL, 1, 0, 0);
    avail_add(0);
    expect_eproto("far above RAM");
}

Test(virtq, buffer_wrapping_around_2_64)
{
    desc(0, 0xfffffffffffff000ULL, 0x2000, 0, 0);
    avail_add(0);
    expect_eproto("addr + len wraps to a small address");
    vq_queue_setup(16);
    desc(0, UINT64_MAX, 2, F_WRITE, 0);
    avail_add(0);
    expect_eproto("addr = 2^64 - 1");
}

Test(virtq, buffer_running_past_the_end_of_ram)
{
    desc(0, MEM - 16, 17, 0, 0);
    avail_add(0);
    expect_eproto("one byte past the end");
    vq_queue_setup(16);
    desc(0, DATA_GPA, 0xffffffffU, F_WRITE, 0);
    avail_add(0);
    expect_eproto("len 4 GiB - 1");
    /* Right up to the end is fine. */
    vq_queue_setup(16);
    desc(0, MEM - 16, 16, 0, 0);
    avail_add(0);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
}

Test(virtq, descriptor_table_outside_memory)
{
    /* Not validated (virtq_validate was skipped): every access is still checked. */
    vq.desc_gpa = MEM - 16;
    avail_add(1);
    expect_eproto("descriptor 1 lies past the end of RAM");
}

Test(virtq, rings_outside_memory_without_validation)
{
    vq.avail_gpa = MEM + 0x1000;
    vq.used_gpa = MEM + 0x2000;
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 0);
    cr_assert_not(virtq_has_avail(&vq, &vfx.gm));
    cr_assert_eq(virtq_push(&vq, &vfx.gm, 0, 0), -EPROTO);
    vq.event_idx = true;
    virtq_set_avail_event(&vq, &vfx.gm); /* must not write anywhere */
    (void)virtq_should_notify(&vq, &vfx.gm);
    (void)virtq_should_notify(&vq, &vfx.gm);
}

Test(virtq, zero_length_descriptors_are_skipped)
{
    desc(0, DATA_GPA, 16, F_NEXT, 1);
    desc(1, 0xdead00000000ULL, 0, F_NEXT, 2); /* no bytes: its address is never used */
    desc(2, DATA_GPA + 0x100, 8, F_WRITE, 0);
    avail_add(0);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
    cr_assert_eq(vq_chain.nbufs, 2);
    cr_assert_eq(vq_chain.readable, 16);
    cr_assert_eq(vq_chain.writable, 8);
    /* A chain of nothing but zero-length buffers: no data for the device to touch. */
    desc(3, DATA_GPA, 0, 0, 0);
    avail_add(3);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
    cr_assert_eq(vq_chain.nbufs, 0);
    cr_assert_eq(vq_chain.readable + vq_chain.writable, 0);
    uint8_t b[4];
    cr_assert_eq(virtq_chain_read(&vq_chain, &vfx.gm, 0, b, 1), -ENOSPC);
    cr_assert_eq(virtq_chain_write(&vq_chain, &vfx.gm, 0, b, 1), -ENOSPC);
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
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
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
    vq_queue_setup(16);
    desc(0, IND_GPA, 0, F_INDIRECT, 0);
    avail_add(0);
    expect_eproto("indirect len 0");
    vq_queue_setup(16);
    desc(0, IND_GPA, 15, F_INDIRECT, 0);
    avail_add(0);
    expect_eproto("indirect len 15");
}

Test(virtq, indirect_table_outside_memory)
{
    desc(0, MEM - 16, 32, F_INDIRECT, 0);
    avail_add(0);
    expect_eproto("table runs past the end of RAM");
    vq_queue_setup(16);
    desc(0, 0xfffffffffffffff0ULL, 32, F_INDIRECT, 0);
    avail_add(0);
    expect_eproto("table wraps around 2^64");
    vq_queue_setup(16);
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
    vq_queue_setup(16);
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
    vq_queue_setup(256);
    for (uint32_t i = 0; i < 255; i++)
        desc((uint16_t)i, DATA_GPA + i, 1, F_NEXT, (uint16_t)(i + 1));
    desc(255, IND_GPA, 16 * 16, F_INDIRECT, 0);
    for (uint32_t i = 0; i < 16; i++)
        vfx_desc(IND_GPA, i, DATA_GPA, 1, i < 15 ? F_NEXT : 0, (uint16_t)(i + 1));
    avail_add(0);
    expect_eproto("255 + 16 buffers");
    cr_assert_leq(vq_chain.nbufs, VIRTQ_MAX_CHAIN);
    /* 255 + 5 = VIRTQ_MAX_CHAIN exactly is accepted. */
    vq_queue_setup(256);
    for (uint32_t i = 0; i < 255; i++)
        desc((uint16_t)i, DATA_GPA + i, 1, F_NEXT, (uint16_t)(i + 1));
    desc(255, IND_GPA, 16 * 5, F_INDIRECT, 0);
    for (uint32_t i = 0; i < 5; i++)
        vfx_desc(IND_GPA, i, DATA_GPA, 1, i < 4 ? F_NEXT : 0, (uint16_t)(i + 1));
    avail_add(0);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
    cr_assert_eq(vq_chain.nbufs, VIRTQ_MAX_CHAIN);
}

Test(virtq, failed_pop_consumes_nothing)
{
    desc(0, MEM, 16, 0, 0);
    avail_add(0);
    expect_eproto("bad buffer");
    cr_assert_eq(vq.last_avail, 0);
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

    vq_queue_setup(16);
    desc(0, MMIO_GAP_START + 0x1000, 16, 0, 0);
    avail_add(0);
    expect_eproto("buffer inside the gap");

    vq_queue_setup(16);
    desc(0, MMIO_GAP_START - 0x1000, 0x2000, 0, 0);
    avail_add(0);
    expect_eproto("buffer running from low RAM into the gap");

    vq_queue_setup(16);
    desc(0, MMIO_GAP_END - 0x10, 0x20, 0, 0);
    avail_add(0);
    expect_eproto("buffer running from the gap into high RAM");

    vq_queue_setup(16);
    desc(0, MMIO_GAP_START - 0x1000, 0x1000, F_NEXT, 1);
    desc(1, MMIO_GAP_END, 0x1000, 0, 0);
    avail_add(0);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1, "both sides of the gap are RAM");
    cr_assert_eq(vq_chain.readable, 0x2000);

    vq_queue_setup(16);
    desc(0, MMIO_GAP_END, 16, F_INDIRECT, 0);                   /* an indirect table in high RAM is fine */
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
