/*
 * virtqueue (split ring), device side: where the rings may lie (virtq_validate)
 * and the validated queue, whose rings are mapped once. The test plays the
 * driver (virtq_fixture.h).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "devices/virtio/queue.h"
#include "tests/unit/virtq_fixture.h"

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
    cr_assert_eq(virtq_validate(&vq, &vfx.gm), 0);
    cr_assert_eq(vq.desc_host, gm_ptr(&vfx.gm, DESC_GPA, 16));
    cr_assert_eq(vq.avail_host, gm_ptr(&vfx.gm, AVAIL_GPA, 2));
    cr_assert_eq(vq.used_host, gm_ptr(&vfx.gm, USED_GPA, 2));
    /* Pops, pushes and the EVENT_IDX fields go through the mapping: same results as unmapped. */
    vq.event_idx = true;
    for (int round = 0; round < 40; round++) { /* wraps the 16-entry ring */
        desc(0, DATA_GPA, 16, F_NEXT, 1);
        desc(1, DATA_GPA + 0x1000, 512, F_WRITE, 0);
        avail_add(0);
        cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), 1);
        cr_assert_eq(vq_chain.nbufs, 2);
        cr_assert_eq(vq_chain.bufs[0].host, gm_ptr(&vfx.gm, DATA_GPA, 16), "buffers carry their checked mapping");
        cr_assert_eq(vq_chain.bufs[1].host, gm_ptr(&vfx.gm, DATA_GPA + 0x1000, 512));
        cr_assert_eq(virtq_push(&vq, &vfx.gm, vq_chain.head, 512), 0);
        cr_assert_eq(used_idx(), (uint16_t)(round + 1));
        cr_assert_eq(used_id((uint16_t)round), 0);
        cr_assert_eq(used_len((uint16_t)round), 512);
        virtq_set_avail_event(&vq, &vfx.gm);
        cr_assert_eq(avail_event(), (uint16_t)(round + 1));
    }
    /* The descriptor's buffer is still checked on every pop, mapping or not. */
    desc(2, MEM - 8, 16, 0, 0);
    avail_add(2);
    cr_assert_eq(virtq_pop(&vq, &vfx.gm, &vq_chain), -EPROTO);
}

Test(virtq, failed_validation_leaves_rings_unmapped)
{
    cr_assert_eq(virtq_validate(&vq, &vfx.gm), 0);
    vq.used_gpa = MEM - 8; /* no room for the used ring, nor for its first element */
    cr_assert_neq(virtq_validate(&vq, &vfx.gm), 0);
    cr_assert_null(vq.desc_host);
    cr_assert_null(vq.avail_host);
    cr_assert_null(vq.used_host);
    cr_assert_eq(virtq_push(&vq, &vfx.gm, 0, 0), -EPROTO, "each access checked again: the used ring is outside RAM");
    virtq_reset(&vq);
    cr_assert_null(vq.used_host, "reset forgets the mapping");
}
