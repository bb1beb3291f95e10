/*
 * virtio-blk's io_uring engine: requests become SQEs, submitted in one batch
 * per pass over the avail ring; completions are signalled through an
 * eventfd the VMM thread's event loop watches.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/virtio/blk_engine.h"
#include "devices/virtio/blk_proto.h"

#define URING_DEPTH 128
/*
 * iovecs a slot keeps for its request: SQEs are submitted in a batch after
 * the queue is walked, so each one's iovec array must outlive the walk.
 * Longer requests (rare) are submitted at once from the caller's array.
 */
#define SLOT_IOV 8
_Static_assert(URING_DEPTH <= 256, "slot numbers are kept in uint8_t");

struct inflight {
    bool used;
    uint16_t head;
    uint8_t *status;  /* host pointer to the status byte */
    uint32_t written; /* bytes the device writes on success (data + status) */
    uint32_t expect;  /* bytes the I/O must transfer */
    uint8_t type;
    struct iovec iov[SLOT_IOV];
};

struct uring_engine {
    struct virtio_blk *b;
    struct io_uring ring;
    bool ring_ok;
    int efd;
    struct inflight slots[URING_DEPTH];
    uint8_t free_slots[URING_DEPTH]; /* stack of unused slot numbers: O(1) allocation */
    unsigned nr_free;
    unsigned nr_inflight; /* slots taken, submitted to the kernel or not yet */
};

static void uring_destroy(void *state)
{
    struct uring_engine *e = state;
    if (!e)
        return;
    if (e->ring_ok)
        io_uring_queue_exit(&e->ring);
    if (e->efd >= 0)
        close(e->efd);
    free(e);
}

static int uring_create(void **state, struct virtio_blk *b, const char *drive_id, struct errmsg *err)
{
    struct uring_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return err_set(err, -ENOMEM, "out of memory");
    e->b = b;
    e->efd = -1;
    int rc = io_uring_queue_init(URING_DEPTH, &e->ring, 0);
    if (rc < 0) {
        uring_destroy(e);
        return err_set(err, rc, "drive '%s': io_uring unavailable (%s): use io_engine=sync", drive_id, strerror(-rc));
    }
    e->ring_ok = true;
    for (unsigned i = 0; i < URING_DEPTH; i++)
        e->free_slots[i] = (uint8_t)(URING_DEPTH - 1 - i);
    e->nr_free = URING_DEPTH;
    e->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (e->efd < 0 || io_uring_register_eventfd(&e->ring, e->efd) < 0) {
        uring_destroy(e);
        return err_set(err, -EIO, "drive '%s': cannot attach an eventfd to io_uring", drive_id);
    }
    *state = e;
    return 0;
}

/* Frees the slot a CQE names; NULL for a stale or foreign user_data. */
static struct inflight *slot_done(struct uring_engine *e, uint64_t slot)
{
    if (slot >= URING_DEPTH || !e->slots[slot].used)
        return NULL;
    struct inflight *f = &e->slots[slot];
    f->used = false;
    e->free_slots[e->nr_free++] = (uint8_t)slot;
    e->nr_inflight--;
    return f;
}

/* Completes every CQE present to the guest (unless !deliver or the driver went away). */
static unsigned reap(struct uring_engine *e, bool deliver)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&e->ring, head, cqe)
    {
        struct inflight *f = slot_done(e, io_uring_cqe_get_data64(cqe));
        int res = cqe->res;
        n++;
        if (!f || !deliver || !blk_driver_ok(e->b))
            continue; /* reset while in flight: the driver no longer expects it */
        bool ok = res >= 0 && (f->type == VIRTIO_BLK_T_FLUSH || (uint32_t)res == f->expect);
        blk_complete_io(e->b, f->type, f->head, f->status, f->expect, f->written, ok);
    }
    /* One CQ head update for the whole batch. */
    io_uring_cq_advance(&e->ring, n);
    return n;
}

static unsigned uring_reap(void *state) { return reap(state, true); }

static unsigned uring_drain(void *state, bool deliver)
{
    struct uring_engine *e = state;
    /* In-flight I/O still lands in guest memory the driver gave us; wait for it. */
    while (e->nr_inflight) {
        if (reap(e, deliver))
            continue;
        /* Also submits SQEs a failed batch left queued, or the wait would never end. */
        int rc = io_uring_submit_and_wait(&e->ring, 1);
        if (rc < 0 && rc != -EINTR)
            break;
    }
    return e->nr_inflight;
}

/* Hands every prepared SQE to the kernel in one io_uring_enter. */
static int uring_submit_batch(void *state)
{
    struct uring_engine *e = state;
    for (int tries = 0; io_uring_sq_ready(&e->ring) && tries < 8; tries++) {
        int rc = io_uring_submit(&e->ring);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN)
            return rc;
    }
    return io_uring_sq_ready(&e->ring) ? -EAGAIN : 0;
}

/* Prepares the request's SQE; submit_batch hands the batch over. -EAGAIN: every slot is taken. */
static int uring_submit(void *state, const struct blk_io *io)
{
    struct uring_engine *e = state;
    if (io->type != VIRTIO_BLK_T_FLUSH && !io->niov) {
        /* Nothing to move: done at once (and, unlike a transfer, not counted as a read or write). */
        blk_complete(e->b, io->head, io->status, VIRTIO_BLK_S_OK, io->written);
        return 0;
    }
    /* SQ entries == slots and every unsubmitted SQE holds a slot, so a free slot means a free SQE. */
    struct io_uring_sqe *sqe = e->nr_free ? io_uring_get_sqe(&e->ring) : NULL;
    if (!sqe)
        return -EAGAIN;
    unsigned slot = e->free_slots[--e->nr_free];
    struct inflight *f = &e->slots[slot];
    f->used = true;
    f->head = io->head;
    f->status = io->status;
    f->written = io->written;
    f->expect = (uint32_t)io->len;
    f->type = io->type;
    const struct iovec *iov = io->iov;
    if (io->niov == 1) {
        f->iov[0] = io->iov[0]; /* the common one-segment request, without a memcpy call */
        iov = f->iov;
    } else if (io->niov > 1 && io->niov <= SLOT_IOV) {
        memcpy(f->iov, io->iov, (size_t)io->niov * sizeof(*iov));
        iov = f->iov;
    }
    if (io->type == VIRTIO_BLK_T_IN)
        io_uring_prep_readv(sqe, io->fd, iov, (unsigned)io->niov, io->offset);
    else if (io->type == VIRTIO_BLK_T_OUT)
        io_uring_prep_writev(sqe, io->fd, iov, (unsigned)io->niov, io->offset);
    else
        io_uring_prep_fsync(sqe, io->fd, 0);
    io_uring_sqe_set_data64(sqe, (uint64_t)slot);
    e->nr_inflight++;
    /* readv/writev copy the iovec array at submit: a long one in the caller's array goes now. */
    if (io->niov > SLOT_IOV)
        return uring_submit_batch(e) ? -EIO : 0;
    return 0;
}

static void on_completion(void *opaque, uint32_t events)
{
    (void)events;
    struct uring_engine *e = opaque;
    uint64_t cnt;
    if (read(e->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
        return;
    blk_completions_ready(e->b);
}

static int uring_activate(void *state, struct event_loop *loop)
{
    struct uring_engine *e = state;
    return loop ? evloop_add(loop, e->efd, EPOLLIN, on_completion, e) : 0;
}

static void uring_reset(void *state, struct event_loop *loop)
{
    struct uring_engine *e = state;
    uring_drain(e, false);
    if (loop)
        evloop_remove(loop, e->efd);
}

const struct blk_engine_ops blk_engine_uring = {
    .create = uring_create,
    .destroy = uring_destroy,
    .activate = uring_activate,
    .submit = uring_submit,
    .submit_batch = uring_submit_batch,
    .reap = uring_reap,
    .drain = uring_drain,
    .reset = uring_reset,
    .submit_failure = "io_uring submission failed",
};
