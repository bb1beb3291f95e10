/*
 * How virtio-blk moves data. blk.c parses and validates requests, keeps the
 * counters and writes status bytes and used entries; an engine only does
 * the I/O: blk_sync.c (preadv/pwritev/fdatasync on the VMM thread, done
 * when submit returns) or blk_uring.c (io_uring, completions signalled
 * through an eventfd on the event loop). Internal to devices/virtio/blk*.c.
 */
#ifndef EMBER_VIRTIO_BLK_ENGINE_H
#define EMBER_VIRTIO_BLK_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/errmsg.h"
#include "core/event_loop.h"

struct virtio_blk;

/* One validated request: a read or write of whole sectors inside the disk, or a flush. */
struct blk_io {
    int fd;
    uint8_t type;            /* VIRTIO_BLK_T_IN, _OUT or _FLUSH */
    uint16_t head;           /* the chain to return */
    uint8_t *status;         /* host pointer to the status byte */
    const struct iovec *iov; /* data buffers (none for a flush); valid only during submit */
    int niov;
    uint64_t offset, len; /* bytes on the disk */
    uint32_t written;     /* used length when the request succeeds */
};

/* Every call is made with the device lock held. NULL members: the engine has nothing to do there. */
struct blk_engine_ops {
    /* Per-drive state; err names the drive. */
    int (*create)(void **state, struct virtio_blk *b, const char *drive_id, struct errmsg *err);
    void (*destroy)(void *state);
    /* The driver set DRIVER_OK: watch for completions on `loop` (NULL: nothing to watch). */
    int (*activate)(void *state, struct event_loop *loop);
    /* 0: taken (perhaps completed already); -EAGAIN: full, retry after completions; other < 0: failed. */
    int (*submit)(void *state, const struct blk_io *io);
    /* After a pass over the avail ring: hands what submit batched to the kernel. */
    int (*submit_batch)(void *state);
    /* Completes what has finished; returns how many requests finished. */
    unsigned (*reap)(void *state);
    /* Waits for everything in flight, completing it to the guest if `deliver`; returns what is left. */
    unsigned (*drain)(void *state, bool deliver);
    /* The driver reset the device: wait for in-flight I/O without completing it, stop watching `loop`. */
    void (*reset)(void *state, struct event_loop *loop);
    const char *submit_failure; /* why the device stops when submit or submit_batch fails */
};

extern const struct blk_engine_ops blk_engine_sync;
extern const struct blk_engine_ops blk_engine_uring;

/* For engines: the request finished (ok: every byte moved); counts it, sets its status, returns the chain. */
void blk_complete_io(struct virtio_blk *b, uint8_t type, uint16_t head, uint8_t *status, uint64_t len, uint32_t written,
                     bool ok);
/* For engines: returns the chain with status byte `s` and `written` used bytes, counting only errors. */
void blk_complete(struct virtio_blk *b, uint16_t head, uint8_t *status, uint8_t s, uint32_t written);
/* For engines: whether the driver still expects completions (not reset, not stopped). */
bool blk_driver_ok(const struct virtio_blk *b);
/* For engines: completions arrived on the event loop (lock not held): deliver them, resume the queue. */
void blk_completions_ready(struct virtio_blk *b);

#endif
