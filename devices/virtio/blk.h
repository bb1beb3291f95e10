/*
 * virtio-blk: a disk image file behind one request queue. Requests are
 * served on the VMM thread by one of two engines (blk_engine.h): synchronous
 * (preadv/pwritev) or io_uring (asynchronous, completions via eventfd).
 * Wire constants: blk_proto.h.
 */
#ifndef EMBER_VIRTIO_BLK_H
#define EMBER_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "core/errmsg.h"
#include "core/rate_limiter.h"
#include "devices/virtio/virtio_dev.h"

enum blk_engine { BLK_ENGINE_SYNC, BLK_ENGINE_ASYNC };

struct blk_config {
    const char *id; /* drive id, also reported by GET_ID */
    const char *path;
    bool read_only;
    bool root;
    enum blk_engine engine;
    struct rate_limiter_config rate_limiter; /* all zero: unlimited */
};

struct virtio_blk;

/* Opens and locks the image. Errors name the drive and the problem. */
int virtio_blk_create(struct virtio_blk **out, const struct blk_config *cfg, struct errmsg *err);
void virtio_blk_free(struct virtio_blk *b);
/* The transport glue: ops + the device pointer to hand to a transport (virtio_mmio_init). */
extern const struct virtio_dev_ops virtio_blk_ops;
uint64_t virtio_blk_capacity_sectors(const struct virtio_blk *b);
/* The drive id it was created with. */
const char *virtio_blk_id(const struct virtio_blk *b);
/*
 * Drive swap from any thread: takes the device lock, lets in-flight I/O
 * drain, swaps the image (locked like the first one) and tells the driver
 * the capacity may have changed (config-change interrupt).
 */
int virtio_blk_swap_image(struct virtio_blk *b, const char *path, struct errmsg *err);
/*
 * The same swap for a caller that already holds the device lock and signals
 * the config change itself (vm/vm.c until it calls virtio_blk_swap_image).
 */
int virtio_blk_replace_backing(struct virtio_blk *b, const char *path, struct errmsg *err);
/*
 * Before a snapshot: takes the device lock, waits for the I/O in flight and
 * completes it to the guest (used ring, interrupt), so that the saved queue
 * positions account for every request the guest made.
 */
void virtio_blk_quiesce(struct virtio_blk *b);
/* Requests served, by outcome (for tests and metrics). */
struct blk_counters {
    uint64_t reads, writes, flushes, get_ids, errors, unsupported, bytes_read, bytes_written;
    uint64_t throttled, limiter_wakeups; /* requests the rate limiter held back; its timer's expiries */
};
struct blk_counters virtio_blk_counters(const struct virtio_blk *b);
/*
 * PATCH /drives rate_limiter from any thread: takes the device lock, replaces
 * the buckets the update names, and serves what the old limit held back.
 */
void virtio_blk_update_rate_limiter(struct virtio_blk *b, const struct rate_limiter_update *u);
/* The drive's limiter (tests set its clock). */
struct rate_limiter *virtio_blk_rate_limiter(struct virtio_blk *b);

#endif
