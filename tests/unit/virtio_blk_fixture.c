/* The virtio-blk tests' shared setup (virtio_blk_fixture.h); the tests are in test_virtio_blk_*.c. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "tests/unit/virtio_blk_fixture.h"

struct blkfx blkfx;

static uint8_t pat(uint64_t off) { return (uint8_t)((off * 131) ^ (off >> 9)); }

void driver_up(uint64_t features)
{
    vfx_wr(VIRTIO_MMIO_STATUS, 0);
    memset(g_at(0, 0x20000), 0, 0x20000); /* rings, tables, headers, status bytes */
    vfx_driver_up(features, 1);
}

void make_image(uint64_t size)
{
    snprintf(blkfx.img, sizeof(blkfx.img), "/tmp/ember-blk-test-XXXXXX");
    int fd = mkstemp(blkfx.img);
    cr_assert_geq(fd, 0);
    uint8_t *buf = malloc(size ? size : 1);
    cr_assert_not_null(buf);
    for (uint64_t i = 0; i < size; i++)
        buf[i] = pat(i);
    cr_assert_eq(write(fd, buf, size), (ssize_t)size);
    free(buf);
    close(fd);
}

void blk_start_opts(enum blk_engine e, bool ro, uint64_t size, const char *id)
{
    vfx_ram_init(MEM);
    make_image(size);
    cr_assert_eq(evloop_init(&blkfx.loop), 0);
    struct blk_config cfg = {.id = id, .path = blkfx.img, .read_only = ro, .engine = e};
    struct errmsg err = {{0}};
    int rc = virtio_blk_create(&blkfx.blk, &cfg, &err);
    cr_assert_eq(rc, 0, "virtio_blk_create: %s", err.text);
    cr_assert_eq(virtio_mmio_init(&blkfx.m, "blk0", &virtio_blk_ops, blkfx.blk, &vfx.gm, &blkfx.loop, -1, 0xd0000000ULL,
                                  5, vfx_irq_line(5)),
                 0);
    vfx.m = &blkfx.m;
    blkfx.started = true;
    vfx_queue_at(0, 64, DESC_GPA, AVAIL_GPA, USED_GPA);
    uint64_t f = BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_BLK_F_FLUSH);
    if (ro)
        f |= BIT64(VIRTIO_BLK_F_RO);
    driver_up(f);
}

void blk_start(enum blk_engine e) { blk_start_opts(e, false, FILE_SIZE, "ember-disk-0"); }

static void blk_stop(void)
{
    if (!blkfx.started)
        return;
    blkfx.started = false;
    vfx_wr(VIRTIO_MMIO_STATUS, 0); /* reset: in-flight I/O drained, uring eventfd unregistered */
    virtio_mmio_destroy(&blkfx.m);
    virtio_blk_free(blkfx.blk);
    evloop_destroy(&blkfx.loop);
    unlink(blkfx.img);
    vfx_ram_free();
}

/* One set of suites for every test_virtio_blk_*.c file: Criterion joins tests to their suite by name. */
TestSuite(blk_sync, .fini = blk_stop);
TestSuite(blk_async, .fini = blk_stop);
TestSuite(blk, .fini = blk_stop);

void put_hdr(int slot, uint32_t type, uint64_t sector)
{
    g_w32(HDR_GPA(slot), type);
    g_w32(HDR_GPA(slot) + 4, 0);
    g_w64(HDR_GPA(slot) + 8, sector);
    *g_at(STATUS_GPA(slot), 1) = 0xff;
}

uint16_t post_req(int slot, uint32_t type, uint64_t sector, uint32_t data_len)
{
    put_hdr(slot, type, sector);
    struct vfx_seg s[3] = {{HDR_GPA(slot), 16, false},
                           {DATA_GPA(slot), data_len, type != T_OUT},
                           {STATUS_GPA(slot), 1, true}};
    if (data_len == 0) {
        s[1] = s[2];
        return vfx_post(0, s, 2, 0);
    }
    return vfx_post(0, s, 3, 0);
}

void kick_until(uint16_t want)
{
    virtio_mmio_kick(&blkfx.m, 0);
    for (int i = 0; i < 200 && (uint16_t)(used_idx() - want) > 0x8000; i++)
        evloop_run_once(&blkfx.loop, 20);
}

void check_pattern(const uint8_t *p, uint64_t file_off, uint64_t len)
{
    for (uint64_t i = 0; i < len; i++)
        if (p[i] != pat(file_off + i))
            cr_assert_fail("byte %llu of the read differs: %#x, file has %#x", (unsigned long long)i, p[i],
                           pat(file_off + i));
}

void read_image(uint64_t off, void *buf, size_t len)
{
    int fd = open(blkfx.img, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

void expect_needs_reset(void)
{
    cr_assert(vfx_rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    cr_assert(vfx_rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
    cr_assert_not(virtio_dev_driver_ok(&blkfx.m.vdev));
}
