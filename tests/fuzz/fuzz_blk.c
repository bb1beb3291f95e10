/*
 * virtio-blk request handling (devices/virtio/blk.c, sync engine) against a
 * guest that wrote every byte of its rings, descriptors, request headers and
 * buffers (fuzz_virtio.h: 2 header bytes, then guest RAM). Byte 0 bit 2 makes
 * the drive read-only; the image is a 64 KiB file in a temporary directory of
 * this process (in /dev/shm if it can), holding its pattern when each run
 * starts: read back after every run and rewritten when it changed.
 *
 * Invariants: the image keeps its size (no write beyond the capacity); a
 * read-only drive's image does not change; the queue returns what it takes;
 * the counters add up (no more bytes read or written than the disk holds per
 * request).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/virtio/blk.h"
#include "devices/virtio/blk_proto.h"
#include "tests/fuzz/fuzz_virtio.h"

#define IMG_SIZE (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], img[96];
static uint8_t pattern[IMG_SIZE];
static int img_fd = -1; /* the harness's own fd on the image, to check and restore it (the device opens its own) */

static void cleanup(void)
{
    if (img_fd >= 0)
        close(img_fd);
    unlink(img);
    rmdir(dir);
}

static void write_image(void)
{
    if (pwrite(img_fd, pattern, IMG_SIZE, 0) != IMG_SIZE || ftruncate(img_fd, IMG_SIZE)) {
        perror(img);
        abort();
    }
}

/* The per-process temporary directory and image, once. */
static int setup(void)
{
    if (dir[0])
        return 0;
    /* tmpfs if there is one: the guest's FLUSH requests become fdatasync() calls, free there. */
    const char *tmp = getenv("TMPDIR");
    if (access("/dev/shm", W_OK) == 0)
        tmp = "/dev/shm";
    snprintf(dir, sizeof(dir), "%s/ember-fuzz-blk-XXXXXX", tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(img, sizeof(img), "%s/disk.img", dir);
    atexit(cleanup);
    for (size_t i = 0; i < IMG_SIZE; i++)
        pattern[i] = (uint8_t)(i * 131 ^ i >> 9);
    img_fd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (img_fd < 0) {
        perror(img);
        abort();
    }
    write_image();
    fv_quiet_log();
    return 0;
}

/* The image after a run: its size must hold, a read-only one must be unchanged; a written one is restored. */
static void check_image(bool read_only)
{
    static uint8_t now[IMG_SIZE + 1];
    ssize_t n = pread(img_fd, now, sizeof(now), 0);
    if (n < 0) {
        perror(img);
        abort();
    }
    if (n != IMG_SIZE)
        fv_abort("the image changed size");
    if (memcmp(now, pattern, IMG_SIZE)) {
        if (read_only)
            fv_abort("a read-only drive's image was written");
        write_image();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    struct fuzz_guest g;
    if (fv_ram(&g, data, size))
        return 0;
    int fds = fv_count_fds();
    bool ro = data[0] & 4;
    struct virtio_blk *blk = NULL;
    struct errmsg err = {{0}};
    struct blk_config cfg = {.id = "fuzz-disk", .path = img, .read_only = ro, .engine = BLK_ENGINE_SYNC};
    if (virtio_blk_create(&blk, &cfg, &err)) {
        fprintf(stderr, "virtio_blk_create: %s\n", err.text);
        abort();
    }
    if (evloop_init(&g.loop))
        abort();
    if (virtio_mmio_init(&g.m, "blk", &virtio_blk_ops, blk, &g.gm, &g.loop, -1, 0xd0000000ULL, 5, fv_irq_line()))
        abort();
    uint64_t dev = BIT64(VIRTIO_BLK_F_FLUSH) | (data[0] & 8 ? BIT64(VIRTIO_BLK_F_SEG_MAX) : 0) |
                   (ro ? BIT64(VIRTIO_BLK_F_RO) : 0);
    if (fv_driver_up(&g, fv_features(data[0], dev), data[1], 1) == 0) {
        /* Twice: the second kick finds what EVENT_IDX or a rearm left, or a device that stopped. */
        for (int i = 0; i < 2; i++) {
            virtio_mmio_kick(&g.m, 0);
            evloop_run_once(&g.loop, 0);
        }
        if (!(fv_rd(&g, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET))
            fv_check_queue(&g, 0, 0);
        struct blk_counters c = virtio_blk_counters(blk);
        if (c.bytes_read > c.reads * IMG_SIZE || c.bytes_written > c.writes * IMG_SIZE)
            fv_abort("a request moved more bytes than the disk holds");
        if (ro && (c.writes || c.bytes_written))
            fv_abort("a read-only drive counted writes");
    }
    fv_teardown(&g);
    evloop_destroy(&g.loop);
    virtio_blk_free(blk);
    fv_ram_free(&g);
    check_image(ro);
    if (fv_count_fds() != fds)
        fv_abort("a file descriptor outlived the device");
    return 0;
}
