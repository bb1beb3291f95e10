/*
 * virtio-blk end to end through the virtio-mmio transport, without KVM:
 * simulated guest memory, a temporary image file with a known pattern, the
 * test acting as the guest driver (feature negotiation, queue setup at
 * known addresses, DRIVER_OK, requests posted in the avail ring, kicks).
 * Every case runs for both engines: sync (preadv/pwritev on the kick) and
 * async (io_uring; completions arrive through the event loop).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio/blk.h"
#include "devices/virtio/blk_proto.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/virtio.h"
#include "core/event_loop.h"
#include "tests/unit/virtio_fixture.h"

#define MEM (4ULL << 20)
#define DESC_GPA 0x1000ULL
#define AVAIL_GPA 0x3000ULL
#define USED_GPA 0x4000ULL
#define IND_GPA 0x8000ULL
#define HDR_GPA(s) (0x10000ULL + 0x20ULL * (s))
#define STATUS_GPA(s) (0x18000ULL + 0x10ULL * (s))
#define DATA_GPA(s) (0x100000ULL + 0x10000ULL * (s)) /* 64 KiB per slot, 32 slots */

#define FILE_SIZE (1ULL << 20)
#define T_IN VIRTIO_BLK_T_IN
#define T_OUT VIRTIO_BLK_T_OUT
#define T_FLUSH VIRTIO_BLK_T_FLUSH
#define T_GET_ID VIRTIO_BLK_T_GET_ID
#define S_OK VIRTIO_BLK_S_OK
#define S_IOERR VIRTIO_BLK_S_IOERR
#define S_UNSUPP VIRTIO_BLK_S_UNSUPP

static struct event_loop loop;
static struct virtio_mmio m;
static struct virtio_blk *blk;
static char img[64];
static bool started;

static uint8_t pat(uint64_t off) { return (uint8_t)((off * 131) ^ (off >> 9)); }

/* Reset, then the driver's whole bring-up on a queue of vfx.q[0].size entries. */
static void driver_up(uint64_t features)
{
    vfx_wr(VIRTIO_MMIO_STATUS, 0);
    memset(g_at(0, 0x20000), 0, 0x20000); /* rings, tables, headers, status bytes */
    vfx_driver_up(features, 1);
}

static void make_image(uint64_t size)
{
    snprintf(img, sizeof(img), "/tmp/ember-blk-test-XXXXXX");
    int fd = mkstemp(img);
    cr_assert_geq(fd, 0);
    uint8_t *buf = malloc(size ? size : 1);
    cr_assert_not_null(buf);
    for (uint64_t i = 0; i < size; i++)
        buf[i] = pat(i);
    cr_assert_eq(write(fd, buf, size), (ssize_t)size);
    free(buf);
    close(fd);
}

static void blk_start_opts(enum blk_engine e, bool ro, uint64_t size, const char *id)
{
    vfx_ram_init(MEM);
    make_image(size);
    cr_assert_eq(evloop_init(&loop), 0);
    struct blk_config cfg = {.id = id, .path = img, .read_only = ro, .engine = e};
    struct errmsg err = {{0}};
    int rc = virtio_blk_create(&blk, &cfg, &err);
    cr_assert_eq(rc, 0, "virtio_blk_create: %s", err.text);
    cr_assert_eq(virtio_mmio_init(&m, "blk0", &virtio_blk_ops, blk, &vfx.gm, &loop, -1, 0xd0000000ULL, 5,
                                  vfx_irq_line(5)),
                 0);
    vfx.m = &m;
    started = true;
    vfx_queue_at(0, 64, DESC_GPA, AVAIL_GPA, USED_GPA);
    uint64_t f = BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_BLK_F_FLUSH);
    if (ro)
        f |= BIT64(VIRTIO_BLK_F_RO);
    driver_up(f);
}

static void blk_start(enum blk_engine e) { blk_start_opts(e, false, FILE_SIZE, "ember-disk-0"); }

static void blk_stop(void)
{
    if (!started)
        return;
    started = false;
    vfx_wr(VIRTIO_MMIO_STATUS, 0); /* reset: in-flight I/O drained, uring eventfd unregistered */
    virtio_mmio_destroy(&m);
    virtio_blk_free(blk);
    evloop_destroy(&loop);
    unlink(img);
    vfx_ram_free();
}

TestSuite(blk_sync, .fini = blk_stop);
TestSuite(blk_async, .fini = blk_stop);
TestSuite(blk, .fini = blk_stop);

#define BOTH(name)                                          \
    static void name(enum blk_engine e);                    \
    Test(blk_sync, name) { name(BLK_ENGINE_SYNC); }         \
    Test(blk_async, name) { name(BLK_ENGINE_ASYNC); }       \
    static void name(enum blk_engine e)

static void put_hdr(int slot, uint32_t type, uint64_t sector)
{
    g_w32(HDR_GPA(slot), type);
    g_w32(HDR_GPA(slot) + 4, 0);
    g_w64(HDR_GPA(slot) + 8, sector);
    *g_at(STATUS_GPA(slot), 1) = 0xff;
}

/* The usual three-descriptor request: header, data, status. */
static uint16_t post_req(int slot, uint32_t type, uint64_t sector, uint32_t data_len)
{
    put_hdr(slot, type, sector);
    struct vfx_seg s[3] = {{HDR_GPA(slot), 16, false}, {DATA_GPA(slot), data_len, type != T_OUT},
                           {STATUS_GPA(slot), 1, true}};
    if (data_len == 0) {
        s[1] = s[2];
        return vfx_post(0, s, 2, 0);
    }
    return vfx_post(0, s, 3, 0);
}

static uint16_t used_idx(void) { return vfx_used_idx(0); }

/* Kicks, then serves the event loop until `want` used entries exist (or gives up). */
static void kick_until(uint16_t want)
{
    virtio_mmio_kick(&m, 0);
    for (int i = 0; i < 200 && (uint16_t)(used_idx() - want) > 0x8000; i++)
        evloop_run_once(&loop, 20);
}

static uint8_t status_of(int slot) { return *g_at(STATUS_GPA(slot), 1); }

static void check_pattern(const uint8_t *p, uint64_t file_off, uint64_t len)
{
    for (uint64_t i = 0; i < len; i++)
        if (p[i] != pat(file_off + i))
            cr_assert_fail("byte %llu of the read differs: %#x, file has %#x", (unsigned long long)i, p[i],
                           pat(file_off + i));
}

static void read_file(uint64_t off, void *buf, size_t len)
{
    int fd = open(img, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

/* ---- requests ---- */

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
    struct blk_counters c = virtio_blk_counters(blk);
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
    read_file(10 * 512 - 256, back, sizeof(back));
    check_pattern(back, 10 * 512 - 256, 256); /* the sector before is untouched */
    cr_assert_eq(memcmp(back + 256, d, 1536), 0);
    check_pattern(back + 256 + 1536, 13 * 512, 256); /* and the one after */
    cr_assert_eq(virtio_blk_counters(blk).writes, 1);
    cr_assert_eq(virtio_blk_counters(blk).bytes_written, 1536);

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
    uint16_t h = post_req(0, T_FLUSH, 0, 0);
    kick_until(1);
    cr_assert_eq(status_of(0), S_OK);
    cr_assert_eq(vfx_used_len_of(0, h), 1);
    cr_assert_eq(virtio_blk_counters(blk).flushes, 1);
    cr_assert(vfx_dev_features() & BIT64(VIRTIO_BLK_F_FLUSH));
}

BOTH(get_id)
{
    blk_start(e);
    memset(g_at(DATA_GPA(0), 32), 0xee, 32);
    uint16_t h = post_req(0, T_GET_ID, 0, 20);
    kick_until(1);
    cr_assert_eq(status_of(0), S_OK);
    cr_assert_eq(vfx_used_len_of(0, h), 21);
    const uint8_t *id = g_at(DATA_GPA(0), 32);
    cr_assert_eq(memcmp(id, "ember-disk-0", 12), 0);
    for (int i = 12; i < 20; i++)
        cr_assert_eq(id[i], 0, "id padded with NULs");
    cr_assert_eq(id[20], 0xee, "nothing written past the 20 bytes");
    cr_assert_eq(virtio_blk_counters(blk).get_ids, 1);
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
    uint16_t h = post_req(0, 99, 0, 512);
    kick_until(1);
    cr_assert_eq(status_of(0), S_UNSUPP);
    cr_assert_eq(vfx_used_len_of(0, h), 1);
    cr_assert_eq(*g_at(DATA_GPA(0), 1), 0xee);
    cr_assert_eq(virtio_blk_counters(blk).unsupported, 1);
}

BOTH(read_past_the_end)
{
    blk_start(e);
    uint64_t cap = FILE_SIZE / 512;
    memset(g_at(DATA_GPA(0), 1024), 0xee, 1024);
    uint16_t h = post_req(0, T_IN, cap - 1, 1024); /* last sector + one more */
    kick_until(1);
    cr_assert_eq(status_of(0), S_IOERR);
    cr_assert_eq(vfx_used_len_of(0, h), 1);
    for (int i = 0; i < 1024; i++)
        cr_assert_eq(*g_at(DATA_GPA(0) + i, 1), 0xee, "no data for a failed read");

    static const uint64_t bad_sectors[] = {UINT64_MAX, UINT64_MAX / 512 + 1, 1ULL << 63, FILE_SIZE / 512};
    for (int i = 0; i < 4; i++) {
        post_req(1 + i, T_IN, bad_sectors[i], 512);
        kick_until((uint16_t)(2 + i));
        cr_assert_eq(status_of(1 + i), S_IOERR, "sector %#llx", (unsigned long long)bad_sectors[i]);
    }
    /* The last sector itself is fine. */
    h = post_req(6, T_IN, cap - 1, 512);
    kick_until(6);
    cr_assert_eq(status_of(6), S_OK);
    cr_assert_eq(vfx_used_len_of(0, h), 513);
    check_pattern(g_at(DATA_GPA(6), 512), FILE_SIZE - 512, 512);
    cr_assert(virtio_dev_driver_ok(&m.vdev), "errors are per request, the device goes on");
}

BOTH(write_past_the_end)
{
    blk_start(e);
    post_req(0, T_OUT, FILE_SIZE / 512, 512);
    kick_until(1);
    cr_assert_eq(status_of(0), S_IOERR);
    int fd = open(img, O_RDONLY);
    cr_assert_eq(lseek(fd, 0, SEEK_END), (off_t)FILE_SIZE, "the image did not grow");
    close(fd);
}

BOTH(write_on_read_only_drive)
{
    blk_start_opts(e, true, FILE_SIZE, "ro");
    cr_assert(vfx_dev_features() & BIT64(VIRTIO_BLK_F_RO));
    memset(g_at(DATA_GPA(0), 512), 0x11, 512);
    uint16_t h = post_req(0, T_OUT, 0, 512);
    kick_until(1);
    cr_assert_eq(status_of(0), S_IOERR);
    cr_assert_eq(vfx_used_len_of(0, h), 1);
    uint8_t back[512];
    read_file(0, back, sizeof(back));
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
    uint16_t h = post_req(0, T_IN, 0, 1000);
    kick_until(1);
    cr_assert_eq(status_of(0), S_IOERR);
    cr_assert_eq(vfx_used_len_of(0, h), 1);
    cr_assert_eq(*g_at(DATA_GPA(0), 1), 0xee);
    memset(g_at(DATA_GPA(1), 100), 0x22, 100);
    post_req(1, T_OUT, 0, 100);
    kick_until(2);
    cr_assert_eq(status_of(1), S_IOERR);
    uint8_t back[512];
    read_file(0, back, sizeof(back));
    check_pattern(back, 0, 512);
}

static void expect_needs_reset(void)
{
    cr_assert(vfx_rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    cr_assert(vfx_rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
    cr_assert_not(virtio_dev_driver_ok(&m.vdev));
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
    read_file(0, back, sizeof(back));
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
    struct vfx_seg s[4] = {{HDR_GPA(0), 5, false}, {HDR_GPA(0) + 5, 11, false}, {DATA_GPA(0), 512, true},
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
    virtio_mmio_io_ops.read(&m, VIRTIO_MMIO_CONFIG, c, 8);
    uint64_t cap;
    memcpy(&cap, c, 8);
    cr_assert_eq(cap, FILE_SIZE / 512);
    cr_assert_eq(virtio_blk_capacity_sectors(blk), FILE_SIZE / 512);
    cr_assert_eq(vfx_rd(VIRTIO_MMIO_CONFIG), (uint32_t)(FILE_SIZE / 512), "capacity low word");
    cr_assert_eq(vfx_rd(VIRTIO_MMIO_CONFIG + 4), 0, "capacity high word");
    cr_assert_eq(vfx_rd(VIRTIO_MMIO_CONFIG + 12), 128, "seg_max");
    /* The tail past the last whole sector is not reachable. */
    post_req(0, T_IN, FILE_SIZE / 512, 512);
    kick_until(1);
    cr_assert_eq(status_of(0), S_IOERR);
}

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
    cr_assert_eq(virtio_blk_counters(blk).reads, 16);
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
    int fd = open(img, O_RDONLY);
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
    virtio_mmio_kick(&m, 0);
    if (e == BLK_ENGINE_ASYNC && used_idx() == 0)
        cr_assert_eq(status_of(0), 0xff);
    else if (e == BLK_ENGINE_ASYNC)
        cr_log_warn("the read completed inside the kick: no request was in flight at the reset");
    driver_up(BIT64(VIRTIO_F_VERSION_1)); /* reset drains in-flight I/O and starts over */
    for (int i = 0; i < 5; i++)
        evloop_run_once(&loop, 10);
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
        struct vfx_seg s[3] = {{HDR_GPA(i), 16, false}, {0x200000ULL + 512ULL * i, 512, true}, {STATUS_GPA(i), 1, true}};
        vfx_post(0, s, 3, IND_GPA + 64ULL * i);
    }
    kick_until(N);
    cr_assert_eq(used_idx(), N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(status_of(i), S_OK, "request %d", i);
        check_pattern(g_at(0x200000ULL + 512ULL * i, 512), 512ULL * 5 * i, 512);
    }
    cr_assert_eq(virtio_blk_counters(blk).reads, N);
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
    cr_expect_eq(virtio_blk_counters(blk).flushes, N, "flushes counted: %llu for %d requests",
                 (unsigned long long)virtio_blk_counters(blk).flushes, N);
}

/* ---- the image lock ---- */

Test(blk, second_writer_refused_by_lock)
{
    make_image(4096);
    struct blk_config cfg = {.id = "d0", .path = img, .engine = BLK_ENGINE_SYNC};
    struct virtio_blk *a = NULL, *b = NULL;
    struct errmsg err = {{0}};
    cr_assert_eq(virtio_blk_create(&a, &cfg, &err), 0, "%s", err.text);
    cfg.id = "d1";
    int rc = virtio_blk_create(&b, &cfg, &err);
    cr_assert_lt(rc, 0);
    cr_assert_not_null(strstr(err.text, "lock"), "message: %s", err.text);
    cr_assert_not_null(strstr(err.text, "d1"), "the message names the drive: %s", err.text);
    /* A reader is refused too while a writer holds the image. */
    cfg.read_only = true;
    cr_assert_lt(virtio_blk_create(&b, &cfg, &err), 0);
    virtio_blk_free(a);
    /* Released with the device. */
    cfg.read_only = false;
    cr_assert_eq(virtio_blk_create(&b, &cfg, &err), 0, "%s", err.text);
    virtio_blk_free(b);
    unlink(img);
}

Test(blk, readers_share_the_image)
{
    make_image(4096);
    struct blk_config cfg = {.id = "r0", .path = img, .read_only = true, .engine = BLK_ENGINE_ASYNC};
    struct virtio_blk *a = NULL, *b = NULL, *c = NULL;
    struct errmsg err = {{0}};
    cr_assert_eq(virtio_blk_create(&a, &cfg, &err), 0, "%s", err.text);
    cfg.engine = BLK_ENGINE_SYNC;
    cr_assert_eq(virtio_blk_create(&b, &cfg, &err), 0, "%s", err.text);
    cfg.read_only = false;
    cr_assert_lt(virtio_blk_create(&c, &cfg, &err), 0, "a writer is refused while readers hold it");
    cr_assert_not_null(strstr(err.text, "lock"), "message: %s", err.text);
    virtio_blk_free(a);
    virtio_blk_free(b);
    unlink(img);
}

Test(blk, missing_image_named_in_error)
{
    struct blk_config cfg = {.id = "gone", .path = "/nonexistent/ember.img", .engine = BLK_ENGINE_SYNC};
    struct virtio_blk *b = NULL;
    struct errmsg err = {{0}};
    cr_assert_lt(virtio_blk_create(&b, &cfg, &err), 0);
    cr_assert_not_null(strstr(err.text, "/nonexistent/ember.img"), "%s", err.text);
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
    h[0] = post_req(0, T_IN, 1, 512);          /* fine */
    h[1] = post_req(1, T_IN, cap - 1, 1024);   /* runs past the end */
    h[2] = post_req(2, T_IN, 0, 1000);         /* not whole sectors */
    h[3] = post_req(3, 99, 0, 512);            /* unknown type */
    h[4] = post_req(4, T_GET_ID, 0, 20);       /* completed while the batch is taken */
    h[5] = post_req(5, T_FLUSH, 0, 0);
    h[6] = post_req(6, T_IN, 2, 512);          /* fine, after all of them */
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
    struct blk_counters c = virtio_blk_counters(blk);
    cr_assert_eq(c.reads, 2);
    cr_assert_eq(c.errors, 2);
    cr_assert_eq(c.unsupported, 1);
    cr_assert_eq(c.get_ids, 1);
    cr_assert_eq(c.flushes, 1);
    cr_assert(virtio_dev_driver_ok(&m.vdev));
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
    read_file(20 * 512, back, sizeof(back));
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
            struct vfx_seg s[3] = {{HDR_GPA(i), 16, false}, {0x200000ULL + 512ULL * i, 512, true}, {STATUS_GPA(i), 1, true}};
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
    cr_assert_eq(virtio_blk_counters(blk).reads, 450);
}

/* ---- drive swap ---- */

BOTH(swap_image_takes_the_lock_and_signals_config_change)
{
    blk_start(e);
    char first[sizeof(img)];
    memcpy(first, img, sizeof(img));
    make_image(2 * FILE_SIZE); /* img now names the new, larger image */
    uint32_t gen = vfx_rd(VIRTIO_MMIO_CONFIG_GENERATION);
    int before = vfx.pulses;
    struct errmsg err = {{0}};
    cr_assert_eq(virtio_blk_swap_image(blk, img, &err), 0, "%s", err.text);
    unlink(first);
    cr_assert_eq(virtio_blk_capacity_sectors(blk), 2 * FILE_SIZE / 512);
    cr_assert_neq(vfx_rd(VIRTIO_MMIO_CONFIG_GENERATION), gen, "the driver re-reads the capacity");
    cr_assert(vfx_rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
    cr_assert_gt(vfx.pulses, before);
    cr_assert_str_eq(virtio_blk_id(blk), "ember-disk-0");
    /* The lock was released, and the new image serves past the old end. */
    post_req(0, T_IN, FILE_SIZE / 512 + 1, 512);
    kick_until(1);
    cr_assert_eq(status_of(0), S_OK);
    check_pattern(g_at(DATA_GPA(0), 512), FILE_SIZE + 512, 512);

    cr_assert_lt(virtio_blk_swap_image(blk, "/nonexistent/ember.img", &err), 0);
    cr_assert_not_null(strstr(err.text, "/nonexistent/ember.img"), "%s", err.text);
    cr_assert_eq(virtio_blk_capacity_sectors(blk), 2 * FILE_SIZE / 512, "a failed swap keeps the image");
}
