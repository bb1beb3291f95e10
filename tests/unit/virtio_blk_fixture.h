/*
 * The virtio-blk tests' shared setup, no Test() here: a virtio-blk device on
 * the virtio-mmio transport without KVM, over a temporary image file with a
 * known pattern, in a 4 MiB simulated guest whose driver is the test
 * (virtio_fixture.h). Requests use numbered slots: slot s has its header at
 * HDR_GPA(s), its status byte at STATUS_GPA(s) and 64 KiB of data at
 * DATA_GPA(s). The suites blk_sync, blk_async and blk (virtio_blk_fixture.c)
 * stop the device after every test.
 */
#ifndef EMBER_TEST_VIRTIO_BLK_FIXTURE_H
#define EMBER_TEST_VIRTIO_BLK_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/event_loop.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/blk_proto.h"
#include "devices/virtio/mmio.h"
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

/* The device under test and what it runs on. */
struct blkfx {
    struct event_loop loop;
    struct virtio_mmio m;
    struct virtio_blk *blk;
    char img[64]; /* the image file's path */
    bool started; /* blk_start ran: the suites' fini stops the device */
};
extern struct blkfx blkfx;

/* A test body run once per engine: sync (preadv/pwritev on the kick) and async (io_uring). */
#define BOTH(name)                                    \
    static void name(enum blk_engine e);              \
    Test(blk_sync, name) { name(BLK_ENGINE_SYNC); }   \
    Test(blk_async, name) { name(BLK_ENGINE_ASYNC); } \
    static void name(enum blk_engine e)

/* Creates a new image file of `size` pattern bytes; blkfx.img names it. */
void make_image(uint64_t size);
/* Guest, image, event loop and device, then the driver's bring-up on a 64-entry queue. */
void blk_start_opts(enum blk_engine e, bool ro, uint64_t size, const char *id);
/* blk_start_opts for a writable FILE_SIZE image with id "ember-disk-0". */
void blk_start(enum blk_engine e);
/* Reset, then the driver's whole bring-up on a queue of vfx.q[0].size entries. */
void driver_up(uint64_t features);

/* Writes slot's request header and sets its status byte to 0xff (not written yet). */
void put_hdr(int slot, uint32_t type, uint64_t sector);
/* The usual three-descriptor request (header, data, status; two without data); returns its head. */
uint16_t post_req(int slot, uint32_t type, uint64_t sector, uint32_t data_len);
/* Kicks, then serves the event loop until `want` used entries exist (or gives up). */
void kick_until(uint16_t want);
static inline uint16_t used_idx(void) { return vfx_used_idx(0); }
static inline uint8_t status_of(int slot) { return *g_at(STATUS_GPA(slot), 1); }

/* Asserts that p holds the image's pattern bytes from file_off on. */
void check_pattern(const uint8_t *p, uint64_t file_off, uint64_t len);
/* Reads the image file itself (not through the device). */
void read_image(uint64_t off, void *buf, size_t len);
/* Asserts the device stopped itself: DEVICE_NEEDS_RESET, config interrupt, not live. */
void expect_needs_reset(void);

#endif
