/* virtio-blk's synchronous engine: the I/O is done on the VMM thread before submit returns. */
#include <unistd.h>

#include "devices/virtio/blk_engine.h"
#include "devices/virtio/blk_proto.h"

static int sync_create(void **state, struct virtio_blk *b, const char *drive_id, struct errmsg *err)
{
    (void)drive_id;
    (void)err;
    *state = b;
    return 0;
}

static int sync_submit(void *state, const struct blk_io *io)
{
    struct virtio_blk *b = state;
    if (io->type == VIRTIO_BLK_T_FLUSH) {
        blk_complete_io(b, io->type, io->head, io->status, 0, io->written, fdatasync(io->fd) == 0);
        return 0;
    }
    ssize_t done = 0;
    if (io->niov)
        done = io->type == VIRTIO_BLK_T_IN ? preadv(io->fd, io->iov, io->niov, (off_t)io->offset)
                                           : pwritev(io->fd, io->iov, io->niov, (off_t)io->offset);
    blk_complete_io(b, io->type, io->head, io->status, io->len, io->written, done >= 0 && (uint64_t)done == io->len);
    return 0;
}

const struct blk_engine_ops blk_engine_sync = {
    .create = sync_create,
    .submit = sync_submit,
    .submit_failure = "I/O submission failed",
};
