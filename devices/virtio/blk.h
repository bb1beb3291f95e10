/*
 * virtio-blk: a disk image file behind one request queue. Requests are
 * served on the VMM thread by one of two engines: synchronous
 * (preadv/pwritev) or io_uring (asynchronous, completions via eventfd).
 */
#ifndef EMBER_VIRTIO_BLK_H
#define EMBER_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "core/errmsg.h"
#include "devices/virtio/mmio.h"

enum blk_engine { BLK_ENGINE_SYNC, BLK_ENGINE_ASYNC };

struct blk_config {
    const char *id;        /* drive id, also reported by GET_ID */
    const char *path;
    bool read_only;
    bool root;
    enum blk_engine engine;
};

struct virtio_blk;

/* Opens and locks the image. Errors name the drive and the problem. */
int virtio_blk_create(struct virtio_blk **out, const struct blk_config *cfg, struct errmsg *err);
void virtio_blk_free(struct virtio_blk *b);
/* The transport glue: ops + the device pointer to hand to virtio_mmio_init. */
extern const struct virtio_dev_ops virtio_blk_ops;
uint64_t virtio_blk_capacity_sectors(const struct virtio_blk *b);
/* Swaps the image (transport lock held): in-flight I/O drains first; the new file is locked likewise. */
int virtio_blk_replace_backing(struct virtio_blk *b, const char *path, struct errmsg *err);
/* Requests served, by outcome (for tests and metrics). */
struct blk_counters {
    uint64_t reads, writes, flushes, get_ids, errors, unsupported, bytes_read, bytes_written;
};
struct blk_counters virtio_blk_counters(const struct virtio_blk *b);

#endif
