/*
 * virtio-blk end to end through the virtio-mmio transport, without KVM: the
 * test is the guest driver (virtio_blk_fixture.h). This file: one request at
 * a time, each type, and the ones the device must refuse (past the end,
 * read-only, partial sectors, malformed chains). Every case runs for both
 * engines: sync (preadv/pwritev on the kick) and async (io_uring;
 * completions arrive through the event loop).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "tests/unit/virtio_blk_fixture.h"

/* ---- requests ---- */

/* Posts one request in slot 0, runs it, and checks its status and the length the device says it used. */
static void one_req(uint32_t type, uint64_t sector, uint32_t len, uint8_t status, uint32_t used_len)
{
    uint16_t h = post_req(0, type, sector, len);
    kick_until(1);
    cr_assert_eq(status_of(0), status);
    cr_assert_eq(vfx_used_len_of(0, h), used_len);
}

BOTH(read_returns_file_bytes)
{
    blk_start(e);
    memset(g_at(DATA_GPA(0), 1024), 0xee, 1024);
    uint16_t h = post_req(0, T_IN, 3, 1024);
    kick_until(1);
    cr_assert_eq(used_idx(), 1);
    cr_assert_eq(status_of(0), S_OK);
    cr_assert_eq(vfx_used_len_of(0, h), 1024 + 1, "data + status byte written");
    check_pattern(g_at(DATA_GPA(0), 1024), 3 * 512, 1024);
    struct blk_counters c = virtio_blk_counters(blkfx.blk);
    cr_assert_eq(c.reads, 1);
    cr_assert_eq(c.bytes_read, 1024);
    cr_assert_geq(vfx.pulses, 1, "the driver wants an interrupt");
    cr_assert(vfx_rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_USED_RING);
}

BOTH(read_scattered_over_buffers_and_indirect)
{
    blk_start(e);
    /* Header and status in one table, data in 3 pieces of 512 + 1000 + 24 bytes. */
    put_hdr(1, T_IN, 100);
    struct vfx_seg s[5] = {{HDR_GPA(1), 16, false},
                           {DATA_GPA(1), 512, true},
                           {DATA_GPA(2), 1000, true},
                           {DATA_GPA(3), 24, true},
                           {STATUS_GPA(1), 1, true}};
    uint16_t h = vfx_post(0, s, 5, IND_GPA);
    kick_until(1);
    cr_assert_eq(status_of(1), S_OK);
    cr_assert_eq(vfx_used_len_of(0, h), 1536 + 1);
    check_pattern(g_at(DATA_GPA(1), 512), 100 * 512, 512);
    check_pattern(g_at(DATA_GPA(2), 1000), 100 * 512 + 512, 1000);
    check_pattern(g_at(DATA_GPA(3), 24), 100 * 512 + 1512, 24);

    /* Direct chain; the last data buffer also carries the status byte. */
    put_hdr(4, T_IN, 7);
    struct vfx_seg s2[3] = {{HDR_GPA(4), 16, false}, {DATA_GPA(4), 512, true}, {DATA_GPA(5), 512 + 1, true}};
    h = vfx_post(0, s2, 3, 0);
    kick_until(2);
    cr_assert_eq(*g_at(DATA_GPA(5) + 512, 1), S_OK);
    cr_assert_eq(vfx_used_len_of(0, h), 1024 + 1);
    check_pattern(g_at(DATA_GPA(4), 512), 7 * 512, 512);
    check_pattern(g_at(DATA_GPA(5), 512), 8 * 512, 512);
}

BOTH(write_lands_in_file)
{
    blk_start(e);
    uint8_t *d = g_at(DATA_GPA(0), 1536);
    for (int i = 0; i < 1536; i++)
        d[i] = (uint8_t)(0x5a ^ i);
    uint16_t h = post_req(0, T_OUT, 10, 1536);
    kick_until(1);
    cr_assert_eq(status_of(0), S_OK);
    cr_assert_eq(vfx_used_len_of(0, h), 1, "only the status byte is written for OUT");
    uint8_t back[2048];
    read_image(10 * 512 - 256, back, sizeof(back));
    check_pattern(back, 10 * 512 - 256, 256); /* the sector before is untouched */
    cr_assert_eq(memcmp(back + 256, d, 1536), 0);
    check_pattern(back + 256 + 1536, 13 * 512, 256); /* and the one after */
    cr_assert_eq(virtio_blk_counters(blkfx.blk).writes, 1);
    cr_assert_eq(virtio_blk_counters(blkfx.blk).bytes_written, 1536);

    /* Read it back through the device. */
    memset(g_at(DATA_GPA(1), 1536), 0, 1536);
    post_req(1, T_IN, 10, 1536);
    kick_until(2);
    cr_assert_eq(status_of(1), S_OK);
    cr_assert_eq(memcmp(g_at(DATA_GPA(1), 1536), d, 1536), 0);
}

BOTH(flush)
{
    blk_start(e);
    one_req(T_FLUSH, 0, 0, S_OK, 1);
    cr_assert_eq(virtio_blk_counters(blkfx.blk).flushes, 1);
    cr_assert(vfx_dev_features() & BIT64(VIRTIO_BLK_F_FLUSH));
}

BOTH(get_id)
{
    blk_start(e);
    memset(g_at(DATA_GPA(0), 32), 0xee, 32);
    one_req(T_GET_ID, 0, 20, S_OK, 21);
    const uint8_t *id = g_at(DATA_GPA(0), 32);
    cr_assert_eq(memcmp(id, "ember-disk-0", 12), 0);
    for (int i = 12; i < 20; i++)
        cr_assert_eq(id[i], 0, "id padded with NULs");
    cr_assert_eq(id[20], 0xee, "nothing written past the 20 bytes");
    cr_assert_eq(virtio_blk_counters(blkfx.blk).get_ids, 1);
}

BOTH(get_id_twenty_chars_no_terminator)
{
    blk_start_opts(e, false, FILE_SIZE, "abcdefghijklmnopqrstuvwxyz");
    memset(g_at(DATA_GPA(0), 32), 0xee, 32);
    post_req(0, T_GET_ID, 0, 20);
    kick_until(1);
    cr_assert_eq(status_of(0), S_OK);
    cr_assert_eq(memcmp(g_at(DATA_GPA(0), 21), "abcdefghijklmnopqrst\xee", 21), 0);
}

BOTH(unknown_type_unsupported)
{
    blk_start(e);
    memset(g_at(DATA_GPA(0), 512), 0xee, 512);
    one_req(99, 0, 512, S_UNSUPP, 1);
    cr_assert_eq(*g_at(DATA_GPA(0), 1), 0xee);
    cr_assert_eq(virtio_blk_counters(blkfx.blk).unsupported, 1);
}

BOTH(read_past_the_end)
{
    blk_start(e);
    uint64_t cap = FILE_SIZE / 512;
    memset(g_at(DATA_GPA(0), 1024), 0xee, 1024);
    one_req(T_IN, cap - 1, 1024, S_IOERR, 1); /* last sector + one more */
    for (int i = 0; i < 1024; i++)
        cr_assert_eq(*g_at(DATA_GPA(0) + i, 1), 0xee, "no data for a failed read");

    static const uint64_t bad_sectors[] = {UINT64_MAX, UINT64_MAX / 512 + 1, 1ULL << 63, FILE_SIZE / 512};
    for (int i = 0; i < 4; i++) {
        post_req(1 + i, T_IN, bad_sectors[i], 512);
        kick_until((uint16_t)(2 + i));
        cr_assert_eq(status_of(1 + i), S_IOERR, "sector %#llx", (unsigned long long)bad_sectors[i]);
    }
    /* The last sector itself is fine. */
    uint16_t h = post_req(6, T_IN, cap - 1, 512);
    kick_until(6);
    cr_assert_eq(status_of(6), S_OK);
    cr_assert_eq(vfx_used_len_of(0, h), 513);
    check_pattern(g_at(DATA_GPA(6), 512), FILE_SIZE - 512, 512);
    cr_assert(virtio_dev_driver_ok(&blkfx.m.vdev), "errors are per request, the device goes on");
}

BOTH(write_past_the_end)
{
    blk_start(e);
    post_req(0, T_OUT, FILE_SIZE / 512, 512);
    kick_until(1);
    cr_assert_eq(status_of(0), S_IOERR);
    int fd = open(blkfx.img, O_RDONLY);
    cr_assert_eq(lseek(fd, 0, SEEK_END), (off_t)FILE_SIZE, "the image did not grow");
    close(fd);
}

BOTH(write_on_read_only_drive)
{
    blk_start_opts(e, true, FILE_SIZE, "ro");
    cr_assert(vfx_dev_features() & BIT64(VIRTIO_BLK_F_RO));
    memset(g_at(DATA_GPA(0), 512), 0x11, 512);
    one_req(T_OUT, 0, 512, S_IOERR, 1);
    uint8_t back[512];
    read_image(0, back, sizeof(back));
    check_pattern(back, 0, 512);
    /* Reads and flushes still work. */
    post_req(1, T_IN, 1, 512);
    post_req(2, T_FLUSH, 0, 0);
    kick_until(3);
    cr_assert_eq(status_of(1), S_OK);
    cr_assert_eq(status_of(2), S_OK);
    check_pattern(g_at(DATA_GPA(1), 512), 512, 512);
}

BOTH(length_not_a_multiple_of_512)
{
    blk_start(e);
    memset(g_at(DATA_GPA(0), 1000), 0xee, 1000);
    one_req(T_IN, 0, 1000, S_IOERR, 1);
    cr_assert_eq(*g_at(DATA_GPA(0), 1), 0xee);
    memset(g_at(DATA_GPA(1), 100), 0x22, 100);
    post_req(1, T_OUT, 0, 100);
    kick_until(2);
    cr_assert_eq(status_of(1), S_IOERR);
    uint8_t back[512];
    read_image(0, back, sizeof(back));
    check_pattern(back, 0, 512);
}

BOTH(request_without_status_byte)
{
    blk_start(e);
    put_hdr(0, T_OUT, 0);
    struct vfx_seg s[2] = {{HDR_GPA(0), 16, false}, {DATA_GPA(0), 512, false}};
    vfx_post(0, s, 2, 0);
    kick_until(1);
    expect_needs_reset();
    cr_assert_eq(used_idx(), 0);
    uint8_t back[512];
    read_image(0, back, sizeof(back));
    check_pattern(back, 0, 512);
    /* After a reset the device works again. */
    driver_up(BIT64(VIRTIO_F_VERSION_1));
    post_req(1, T_IN, 0, 512);
    kick_until(1);
    cr_assert_eq(status_of(1), S_OK);
}

BOTH(header_too_short)
{
    blk_start(e);
    put_hdr(0, T_IN, 0);
    struct vfx_seg s[3] = {{HDR_GPA(0), 8, false}, {DATA_GPA(0), 512, true}, {STATUS_GPA(0), 1, true}};
    vfx_post(0, s, 3, 0);
    kick_until(1);
    expect_needs_reset();
    cr_assert_eq(used_idx(), 0);
    cr_assert_eq(status_of(0), 0xff);
}

BOTH(header_split_over_two_buffers)
{
    blk_start(e);
    put_hdr(0, T_IN, 9);
    struct vfx_seg s[4] = {{HDR_GPA(0), 5, false},
                           {HDR_GPA(0) + 5, 11, false},
                           {DATA_GPA(0), 512, true},
                           {STATUS_GPA(0), 1, true}};
    vfx_post(0, s, 4, 0);
    kick_until(1);
    cr_assert_eq(status_of(0), S_OK);
    check_pattern(g_at(DATA_GPA(0), 512), 9 * 512, 512);
}

BOTH(malformed_chain_needs_reset)
{
    blk_start(e);
    put_hdr(0, T_IN, 0);
    struct vfx_seg s[3] = {{HDR_GPA(0), 16, false}, {MEM - 256, 512, true}, {STATUS_GPA(0), 1, true}};
    vfx_post(0, s, 3, 0); /* data buffer runs past the end of RAM */
    kick_until(1);
    expect_needs_reset();
    cr_assert_eq(used_idx(), 0);
}

BOTH(capacity_rounds_down)
{
    blk_start_opts(e, false, FILE_SIZE + 100, "odd");
    uint8_t c[8];
    virtio_mmio_io_ops.read(&blkfx.m, VIRTIO_MMIO_CONFIG, c, 8);
    uint64_t cap;
    memcpy(&cap, c, 8);
    cr_assert_eq(cap, FILE_SIZE / 512);
    cr_assert_eq(virtio_blk_capacity_sectors(blkfx.blk), FILE_SIZE / 512);
    cr_assert_eq(vfx_rd(VIRTIO_MMIO_CONFIG), (uint32_t)(FILE_SIZE / 512), "capacity low word");
    cr_assert_eq(vfx_rd(VIRTIO_MMIO_CONFIG + 4), 0, "capacity high word");
    cr_assert_eq(vfx_rd(VIRTIO_MMIO_CONFIG + 12), 128, "seg_max");
    /* The tail past the last whole sector is not reachable. */
    post_req(0, T_IN, FILE_SIZE / 512, 512);
    kick_until(1);
    cr_assert_eq(status_of(0), S_IOERR);
}
