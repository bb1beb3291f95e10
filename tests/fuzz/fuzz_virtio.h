/*
 * What the device fuzzers (blk, net_tx, vsock) share: a guest whose RAM starts
 * with the fuzzer's bytes, and a driver that brings a virtio-mmio device up on
 * it as a guest would, with rings the input placed.
 *
 * Input: 4 header bytes, then guest RAM from GPA 0 (at most FV_IMAGE bytes;
 * the rest of the FV_RAM bytes stays zero). Byte 0 chooses driver features
 * (bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bits 2..7 the device's choices),
 * byte 1 each queue's size (2 bits each: 2, 4, 8 or 16 entries), bytes 2
 * and 3 are the device harness's.
 * Queue q's rings sit at FV_DESC(q), FV_AVAIL(q), FV_USED(q); buffers
 * anywhere from FV_DATA on. The seeds (seeds.py) use this layout.
 */
#ifndef EMBER_FUZZ_VIRTIO_H
#define EMBER_FUZZ_VIRTIO_H

#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/event_loop.h"
#include "core/guest_mem.h"
#include "core/log.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/mmio_regs.h"
#include "devices/virtio/virtio.h"

#define FV_RAM (1u << 20)
#define FV_IMAGE (64u << 10)
#define FV_HDR 4
#define FV_DESC(q) (0x400ULL * (q))
#define FV_AVAIL(q) (0x400ULL * (q) + 0x100)
#define FV_USED(q) (0x400ULL * (q) + 0x200)
#define FV_DATA 0x1000ULL

struct fuzz_guest {
    uint8_t *ram; /* FV_RAM bytes, the same buffer every run: the input, then zeros (fv_ram, fv_ram_free) */
    struct guest_mem gm;
    struct event_loop loop;
    struct virtio_mmio m;
    uint16_t qsize[VIRTIO_DEV_MAX_QUEUES];
};

static inline void fv_abort(const char *what)
{
    fprintf(stderr, "fuzz invariant violated: %s\n", what);
    abort();
}

/* Device log lines would flood the fuzzer's output: they go to /dev/null, once per process. */
static inline void fv_quiet_log(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd >= 0)
        log_set_output(fd, "fuzz", 0);
    log_set_level(LOG_ERROR);
}

/* No interrupt controller: irq_line_set does nothing without a callback. */
static inline struct irq_line fv_irq_line(void) { return (struct irq_line){0}; }

static inline void fv_wr(struct fuzz_guest *g, uint64_t off, uint32_t v)
{
    virtio_mmio_io_ops.write(&g->m, off, (const uint8_t *)&v, 4);
}

static inline uint32_t fv_rd(struct fuzz_guest *g, uint64_t off)
{
    uint32_t v = 0;
    virtio_mmio_io_ops.read(&g->m, off, (uint8_t *)&v, 4);
    return v;
}

static uint8_t fv_ram_bytes[FV_RAM]; /* zero above FV_IMAGE whenever a run starts (fv_ram_free) */

/*
 * Guest RAM from the input: 0 if the input has a header and RAM could be laid out. Dirty tracking records
 * every page the device got a pointer to, so that fv_ram_free clears exactly what it may have written.
 */
static inline int fv_ram(struct fuzz_guest *g, const uint8_t *data, size_t size)
{
    if (size < FV_HDR)
        return -1;
    size_t n = size - FV_HDR < FV_IMAGE ? size - FV_HDR : FV_IMAGE;
    memset(fv_ram_bytes, 0, FV_IMAGE);
    memcpy(fv_ram_bytes, data + FV_HDR, n);
    g->ram = fv_ram_bytes;
    if (guest_mem_init_with(&g->gm, FV_RAM, fv_ram_bytes))
        return -1;
    if (guest_mem_track_dirty(&g->gm))
        abort();
    return 0;
}

/*
 * After a run: the pages the device had pointers to are cleared (the next run must start from the same RAM),
 * then the guest memory goes. Every 256th run checks all the rest is still zero: a device that wrote guest RAM
 * without a pointer from gm_ptr would also be missing from a Diff snapshot.
 */
static inline void fv_ram_free(struct fuzz_guest *g)
{
    static unsigned runs;
    uint64_t dirty[FV_RAM / GUEST_PAGE_SIZE / 64] = {0};
    if (g->gm.nr_regions != 1 || gm_dirty_words(&g->gm, 0) != sizeof(dirty) / sizeof(dirty[0]))
        fv_abort("guest RAM is not the one region fv_ram laid out");
    gm_take_dirty(&g->gm, 0, dirty);
    for (size_t p = FV_IMAGE / GUEST_PAGE_SIZE; p < FV_RAM / GUEST_PAGE_SIZE; p++)
        if (dirty[p / 64] & (1ULL << (p % 64)))
            memset(fv_ram_bytes + p * GUEST_PAGE_SIZE, 0, GUEST_PAGE_SIZE);
    if (++runs % 256 == 0)
        for (size_t i = FV_IMAGE; i < FV_RAM; i++)
            if (fv_ram_bytes[i])
                fv_abort("guest RAM changed on a page the device never got a pointer to");
    guest_mem_free(&g->gm);
}

static inline uint64_t fv_features(uint8_t b, uint64_t device_bits)
{
    uint64_t f = BIT64(VIRTIO_F_VERSION_1);
    if (b & 1)
        f |= BIT64(VIRTIO_F_EVENT_IDX);
    if (b & 2)
        f |= BIT64(VIRTIO_F_INDIRECT_DESC);
    return f | device_bits;
}

/*
 * The driver's bring-up of nq queues with features `want` (cut down to what the
 * device offers): 0 if the device went live, else -1 (the harness stops there).
 */
static inline int fv_driver_up(struct fuzz_guest *g, uint64_t want, uint8_t sizes, int nq)
{
    fv_wr(g, VIRTIO_MMIO_STATUS, 0);
    fv_wr(g, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint64_t offered = fv_rd(g, VIRTIO_MMIO_DEVICE_FEATURES);
    fv_wr(g, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    offered |= (uint64_t)fv_rd(g, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
    uint64_t f = want & offered;
    fv_wr(g, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    fv_wr(g, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    fv_wr(g, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    fv_wr(g, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
    fv_wr(g, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    fv_wr(g, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
    fv_wr(g, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    if (!(fv_rd(g, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK))
        return -1;
    for (int q = 0; q < nq; q++) {
        g->qsize[q] = (uint16_t)(2u << ((sizes >> (2 * q)) & 3)); /* 2, 4, 8 or 16 */
        fv_wr(g, VIRTIO_MMIO_QUEUE_SEL, (uint32_t)q);
        fv_wr(g, VIRTIO_MMIO_QUEUE_NUM, g->qsize[q]);
        fv_wr(g, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)FV_DESC(q));
        fv_wr(g, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
        fv_wr(g, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)FV_AVAIL(q));
        fv_wr(g, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 0);
        fv_wr(g, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)FV_USED(q));
        fv_wr(g, VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
        fv_wr(g, VIRTIO_MMIO_QUEUE_READY, 1);
    }
    fv_wr(g, VIRTIO_MMIO_STATUS,
          VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    return virtio_dev_driver_ok(virtio_mmio_device(&g->m)) ? 0 : -1;
}

/*
 * What every device must keep to, whatever the guest wrote (its rings may even
 * be overwritten by the device's own data, so the device's bookkeeping is
 * checked, not the rings): it returns no more chains than it took, and it
 * holds no more than a queue's worth at once (with the sync engine and these
 * devices, none after a run: `in_flight_max` allows what may wait).
 */
static inline void fv_check_queue(struct fuzz_guest *g, int q, uint16_t in_flight_max)
{
    const struct virtq *vq = &virtio_mmio_device(&g->m)->queues[q];
    uint16_t taken = vq->last_avail, returned = vq->used_idx;
    if ((uint16_t)(taken - returned) > in_flight_max)
        fv_abort("a queue returned more chains than it took, or holds more than it may");
}

/*
 * Open file descriptors of this process below FV_FD_SCAN: a device must close every one it opened. One poll()
 * of the few fds a leak could take (a closed fd reports POLLNVAL) instead of reading /proc/self/fd: the kernel
 * hands out the lowest free fd, and this process holds a handful.
 */
#define FV_FD_SCAN 128
static inline int fv_count_fds(void)
{
    static struct pollfd p[FV_FD_SCAN];
    for (int i = 0; i < FV_FD_SCAN; i++)
        p[i] = (struct pollfd){.fd = i, .events = 0};
    if (poll(p, FV_FD_SCAN, 0) < 0)
        return -1;
    int n = 0;
    for (int i = 0; i < FV_FD_SCAN; i++)
        n += !(p[i].revents & POLLNVAL);
    if (n == FV_FD_SCAN)
        fv_abort("every fd below FV_FD_SCAN is open: a leak would go unseen");
    return n;
}

/* Reset (the device drops what it holds), then the transport and event loop go. */
static inline void fv_teardown(struct fuzz_guest *g)
{
    fv_wr(g, VIRTIO_MMIO_STATUS, 0);
    virtio_mmio_destroy(&g->m);
}

#endif
