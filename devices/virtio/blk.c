#include "devices/virtio/blk.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "devices/virtio/virtio.h"

#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_FLUSH 9

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2

#define SECTOR 512
#define HDR_LEN 16
#define ID_LEN 20
#define SEG_MAX 128
#define URING_DEPTH 128
/*
 * iovecs a slot keeps for its request: SQEs are now submitted in a batch
 * after the queue is walked, so each one's iovec array must outlive the walk.
 * Longer requests (rare) are submitted at once from the shared b->iov.
 */
#define SLOT_IOV 8
_Static_assert(URING_DEPTH <= 256, "slot numbers are kept in uint8_t");

struct inflight {
    bool used;
    uint16_t head;
    uint8_t *status;   /* host pointer to the status byte */
    uint32_t written;  /* bytes the device writes on success (data + status) */
    uint32_t expect;   /* bytes the I/O must transfer */
    uint8_t type;
    struct iovec iov[SLOT_IOV];
};

struct virtio_blk {
    struct blk_config cfg;
    char id[ID_LEN + 1];
    char *path;
    int fd;
    uint64_t size_bytes;
    struct virtio_mmio *m;  /* set at activate */
    struct io_uring ring;
    bool ring_ok;
    int ring_efd;
    struct inflight slots[URING_DEPTH];
    uint8_t free_slots[URING_DEPTH]; /* stack of unused slot numbers: O(1) allocation */
    unsigned nr_free;
    unsigned nr_inflight;            /* slots taken, submitted to the kernel or not yet */
    struct blk_counters ctr;
    struct iovec iov[VIRTQ_MAX_CHAIN];
    struct virtq_chain chain;
};

uint64_t virtio_blk_capacity_sectors(const struct virtio_blk *b) { return b->size_bytes / SECTOR; }
struct blk_counters virtio_blk_counters(const struct virtio_blk *b) { return b->ctr; }

/* Opens, locks and sizes an image; the one place these rules live. */
static int open_image(const char *id, const char *path, bool read_only, int *fd_out, uint64_t *size,
                      struct errmsg *err)
{
    int fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return err_set(err, -errno, "drive '%s': cannot open '%s'%s: %s", id, path, read_only ? "" : " read-write",
                       strerror(errno));
    /* Two VMs writing one image corrupt it: writers take it exclusively. */
    if (flock(fd, (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        return err_set(err, -e, "drive '%s': image '%s' is in use by another process (%s)", id, path,
                       e == EWOULDBLOCK ? "it holds a lock on it" : strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, -EINVAL, "drive '%s': '%s' is not a regular file", id, path);
    }
    *size = (uint64_t)st.st_size;
    if (*size % SECTOR)
        log_warn("drive '%s': size %llu is not a multiple of 512; the guest sees %llu sectors and the last %llu bytes are not reachable",
                 id, (unsigned long long)*size, (unsigned long long)(*size / SECTOR),
                 (unsigned long long)(*size % SECTOR));
    *fd_out = fd;
    return 0;
}

int virtio_blk_create(struct virtio_blk **out, const struct blk_config *cfg, struct errmsg *err)
{
    struct virtio_blk *b = calloc(1, sizeof(*b));
    if (!b)
        return err_set(err, -ENOMEM, "out of memory");
    b->cfg = *cfg;
    b->ring_efd = -1;
    snprintf(b->id, sizeof(b->id), "%s", cfg->id);
    b->fd = -1;
    int rc = open_image(cfg->id, cfg->path, cfg->read_only, &b->fd, &b->size_bytes, err);
    b->path = strdup(cfg->path);
    if (rc || !b->path) {
        virtio_blk_free(b);
        return rc ? rc : err_set(err, -ENOMEM, "out of memory");
    }
    if (cfg->engine == BLK_ENGINE_ASYNC) {
        rc = io_uring_queue_init(URING_DEPTH, &b->ring, 0);
        if (rc < 0) {
            virtio_blk_free(b);
            return err_set(err, rc, "drive '%s': io_uring unavailable (%s): use io_engine=sync", cfg->id, strerror(-rc));
        }
        b->ring_ok = true;
        for (unsigned i = 0; i < URING_DEPTH; i++)
            b->free_slots[i] = (uint8_t)(URING_DEPTH - 1 - i);
        b->nr_free = URING_DEPTH;
        b->ring_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (b->ring_efd < 0 || io_uring_register_eventfd(&b->ring, b->ring_efd) < 0) {
            virtio_blk_free(b);
            return err_set(err, -EIO, "drive '%s': cannot attach an eventfd to io_uring", cfg->id);
        }
    }
    *out = b;
    return 0;
}

void virtio_blk_free(struct virtio_blk *b)
{
    if (!b)
        return;
    if (b->ring_ok)
        io_uring_queue_exit(&b->ring);
    if (b->ring_efd >= 0)
        close(b->ring_efd);
    if (b->fd >= 0)
        close(b->fd);
    free(b->path);
    free(b);
}

static void complete(struct virtio_blk *b, uint16_t head, uint8_t *status, uint8_t s, uint32_t written);

/* Frees the slot a CQE names; NULL for a stale or foreign user_data. */
static struct inflight *slot_done(struct virtio_blk *b, uint64_t slot)
{
    if (slot >= URING_DEPTH || !b->slots[slot].used)
        return NULL;
    struct inflight *f = &b->slots[slot];
    f->used = false;
    b->free_slots[b->nr_free++] = (uint8_t)slot;
    b->nr_inflight--;
    return f;
}

/* Completes every CQE present to the guest (unless !deliver or the driver went away). */
static unsigned reap(struct virtio_blk *b, bool deliver)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&b->ring, head, cqe) {
        struct inflight *f = slot_done(b, io_uring_cqe_get_data64(cqe));
        int res = cqe->res;
        n++;
        if (!f || !deliver || !virtio_mmio_driver_ok(b->m))
            continue; /* reset while in flight: the driver no longer expects it */
        bool ok = res >= 0 && (f->type == T_FLUSH || (uint32_t)res == f->expect);
        if (ok && f->type == T_IN) {
            b->ctr.reads++;
            b->ctr.bytes_read += f->expect;
        } else if (ok && f->type == T_OUT) {
            b->ctr.writes++;
            b->ctr.bytes_written += f->expect;
        }
        complete(b, f->head, f->status, ok ? S_OK : S_IOERR, ok ? f->written : 1);
    }
    /* One CQ head update for the whole batch. */
    io_uring_cq_advance(&b->ring, n);
    return n;
}

/* Waits for in-flight io_uring requests; `deliver` completes them to the guest (not on reset). */
static void drain_inflight(struct virtio_blk *b, bool deliver)
{
    /* In-flight I/O still lands in guest memory the driver gave us; wait for it. */
    while (b->ring_ok && b->nr_inflight) {
        if (reap(b, deliver && b->m))
            continue;
        /* Also submits SQEs a failed batch left queued, or the wait would never end. */
        int rc = io_uring_submit_and_wait(&b->ring, 1);
        if (rc < 0 && rc != -EINTR)
            break;
    }
}

int virtio_blk_replace_backing(struct virtio_blk *b, const char *path, struct errmsg *err)
{
    int fd;
    uint64_t size;
    int rc = open_image(b->cfg.id, path, b->cfg.read_only, &fd, &size, err);
    if (rc)
        return rc;
    char *p = strdup(path);
    if (!p) {
        close(fd);
        return err_set(err, -ENOMEM, "out of memory");
    }
    drain_inflight(b, true);
    if (b->m && b->nr_inflight == 0)
        virtio_mmio_notify_used(b->m, 0);
    close(b->fd);
    free(b->path);
    b->fd = fd;
    b->path = p;
    b->size_bytes = size;
    return 0;
}

static uint64_t blk_features(void *dev)
{
    struct virtio_blk *b = dev;
    uint64_t f = BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_F_EVENT_IDX) | BIT64(VIRTIO_F_INDIRECT_DESC) |
                 BIT64(VIRTIO_BLK_F_FLUSH) | BIT64(VIRTIO_BLK_F_SEG_MAX);
    if (b->cfg.read_only)
        f |= BIT64(VIRTIO_BLK_F_RO);
    return f;
}

static void blk_config_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
    struct virtio_blk *b = dev;
    uint8_t cfg[16] = {0};
    uint64_t cap = virtio_blk_capacity_sectors(b);
    uint32_t seg_max = SEG_MAX;
    memcpy(cfg, &cap, 8);           /* capacity */
    memcpy(cfg + 12, &seg_max, 4);  /* size_max at 8 stays 0, seg_max at 12 */
    for (uint32_t i = 0; i < len; i++)
        data[i] = off + i < sizeof(cfg) ? cfg[off + i] : 0;
}

/* Collects the data buffers of a request (header and status byte excluded) into b->iov. */
static int data_iov(struct virtio_blk *b, const struct virtq_chain *c, bool device_writes, uint64_t *total)
{
    uint64_t skip = device_writes ? 0 : HDR_LEN;  /* readable side starts with the header */
    uint64_t limit = device_writes ? c->writable - 1 : c->readable - HDR_LEN;
    int n = 0;
    *total = 0;
    for (unsigned i = 0; i < c->nbufs && *total < limit; i++) {
        const struct virtq_buf *buf = &c->bufs[i];
        if (buf->device_writes != device_writes)
            continue;
        uint64_t off = 0, len = buf->len;
        if (skip) {
            uint64_t s = skip < len ? skip : len;
            off = s, len -= s, skip -= s;
        }
        if (len > limit - *total)
            len = limit - *total;
        if (!len)
            continue;
        /* [off, off + len) lies inside the buffer, whose mapping virtq_pop checked. */
        b->iov[n].iov_base = buf->host + off;
        b->iov[n].iov_len = len;
        n++;
        *total += len;
    }
    return n;
}

static uint8_t *status_ptr(const struct virtq_chain *c)
{
    /* The status byte is the last byte of the last device-writable buffer. */
    for (unsigned i = c->nbufs; i-- > 0;)
        if (c->bufs[i].device_writes)
            return c->bufs[i].host + c->bufs[i].len - 1; /* mapping checked by virtq_pop */
    return NULL;
}

static void complete(struct virtio_blk *b, uint16_t head, uint8_t *status, uint8_t s, uint32_t written)
{
    *status = s;
    if (s == S_IOERR)
        b->ctr.errors++;
    if (virtq_push(&b->m->queues[0], b->m->gm, head, written))
        virtio_mmio_set_needs_reset(b->m, "used ring outside guest memory");
}

/* Hands every prepared SQE to the kernel in one io_uring_enter. */
static int flush_sq(struct virtio_blk *b)
{
    for (int tries = 0; io_uring_sq_ready(&b->ring) && tries < 8; tries++) {
        int rc = io_uring_submit(&b->ring);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN)
            return rc;
    }
    return io_uring_sq_ready(&b->ring) ? -EAGAIN : 0;
}

/* Prepares the request's SQE; process_queue submits the batch. -EAGAIN: every slot is taken. */
static int queue_async(struct virtio_blk *b, uint16_t head, uint8_t *status, uint8_t type, int niov,
                       uint64_t offset, uint64_t len, uint32_t written)
{
    /* SQ entries == slots and every unsubmitted SQE holds a slot, so a free slot means a free SQE. */
    struct io_uring_sqe *sqe = b->nr_free ? io_uring_get_sqe(&b->ring) : NULL;
    if (!sqe)
        return -EAGAIN;
    unsigned slot = b->free_slots[--b->nr_free];
    struct inflight *f = &b->slots[slot];
    f->used = true;
    f->head = head;
    f->status = status;
    f->written = written;
    f->expect = (uint32_t)len;
    f->type = type;
    const struct iovec *iov = b->iov;
    if (niov == 1) {
        f->iov[0] = b->iov[0]; /* the common one-segment request, without a memcpy call */
        iov = f->iov;
    } else if (niov <= SLOT_IOV) {
        memcpy(f->iov, b->iov, (size_t)niov * sizeof(*iov));
        iov = f->iov;
    }
    if (type == T_IN)
        io_uring_prep_readv(sqe, b->fd, iov, (unsigned)niov, offset);
    else if (type == T_OUT)
        io_uring_prep_writev(sqe, b->fd, iov, (unsigned)niov, offset);
    else
        io_uring_prep_fsync(sqe, b->fd, 0);
    io_uring_sqe_set_data64(sqe, (uint64_t)slot);
    b->nr_inflight++;
    /* readv/writev copy the iovec array at submit: a long one in b->iov goes now, before b->iov is reused. */
    if (niov > SLOT_IOV)
        return flush_sq(b) ? -EIO : 0;
    return 0;
}

/* Handles one request; -EAGAIN when the async engine is full (retry later). */
static int handle_request(struct virtio_blk *b, struct virtq_chain *c)
{
    const struct guest_mem *gm = b->m->gm;
    uint8_t *status = status_ptr(c);
    if (!status || c->readable < HDR_LEN)
        return -EPROTO;
    uint8_t hdr[HDR_LEN];
    /* The header nearly always sits whole in the first buffer: skip the generic walk. */
    if (c->nbufs && !c->bufs[0].device_writes && c->bufs[0].len >= HDR_LEN)
        memcpy(hdr, c->bufs[0].host, HDR_LEN);
    else if (virtq_chain_read(c, gm, 0, hdr, HDR_LEN))
        return -EPROTO;
    uint32_t type;
    uint64_t sector;
    memcpy(&type, hdr, 4);
    memcpy(&sector, hdr + 8, 8);

    if (type == T_GET_ID) {
        char id[ID_LEN] = {0};
        memcpy(id, b->id, strnlen(b->id, ID_LEN));
        uint64_t n = c->writable - 1 < ID_LEN ? c->writable - 1 : ID_LEN;
        virtq_chain_write(c, gm, 0, id, n);
        b->ctr.get_ids++;
        complete(b, c->head, status, S_OK, (uint32_t)n + 1);
        return 0;
    }
    if (type == T_FLUSH) {
        if (b->cfg.engine == BLK_ENGINE_ASYNC && !b->cfg.read_only) {
            int rc = queue_async(b, c->head, status, T_FLUSH, 0, 0, 0, 1);
            if (rc == 0)
                b->ctr.flushes++; /* counted once, not again when a full engine makes us retry */
            return rc;
        }
        b->ctr.flushes++;
        int rc = b->cfg.read_only ? 0 : fdatasync(b->fd);
        complete(b, c->head, status, rc ? S_IOERR : S_OK, 1);
        return 0;
    }
    if (type != T_IN && type != T_OUT) {
        b->ctr.unsupported++;
        complete(b, c->head, status, S_UNSUPP, 1);
        return 0;
    }
    bool in = type == T_IN;
    uint64_t len;
    int niov = data_iov(b, c, in, &len);
    if (niov < 0)
        return -EPROTO;
    uint64_t cap = virtio_blk_capacity_sectors(b);
    /* Whole sectors only, inside the disk; writes refused on a read-only drive. */
    if ((!in && b->cfg.read_only) || len % SECTOR || sector > cap || len / SECTOR > cap - sector) {
        complete(b, c->head, status, S_IOERR, 1);
        return 0;
    }
    uint64_t offset = sector * SECTOR;
    uint32_t written = in ? (uint32_t)len + 1 : 1;
    if (b->cfg.engine == BLK_ENGINE_ASYNC)
        return niov ? queue_async(b, c->head, status, (uint8_t)type, niov, offset, len, written)
                    : (complete(b, c->head, status, S_OK, written), 0);
    ssize_t done = 0;
    if (niov)
        done = in ? preadv(b->fd, b->iov, niov, (off_t)offset) : pwritev(b->fd, b->iov, niov, (off_t)offset);
    if (done < 0 || (uint64_t)done != len) {
        complete(b, c->head, status, S_IOERR, 1);
        return 0;
    }
    if (in) {
        b->ctr.reads++;
        b->ctr.bytes_read += len;
    } else {
        b->ctr.writes++;
        b->ctr.bytes_written += len;
    }
    complete(b, c->head, status, S_OK, written);
    return 0;
}

/*
 * Takes every available request; async ones reach the kernel in one
 * submission per pass. One interrupt for everything completed since the
 * used index was `before`, if the driver wants one.
 */
static void process_queue(struct virtio_blk *b, uint16_t before)
{
    struct virtio_mmio *m = b->m;
    struct virtq *q = &m->queues[0];
    const char *broken = NULL;
    for (;;) {
        bool full = false;
        for (;;) {
            int rc = virtq_pop(q, m->gm, &b->chain);
            if (rc == 0) {
                if (!virtq_rearm(q, m->gm))
                    break;
                continue;
            }
            if (rc < 0) {
                broken = "the guest handed over a malformed descriptor chain";
                break;
            }
            rc = handle_request(b, &b->chain);
            if (rc == -EAGAIN) {
                virtq_unpop(q); /* engine full: completions will resume the queue */
                full = true;
                break;
            }
            if (rc < 0) {
                broken = rc == -EPROTO ? "a request lacks its header or status byte" : "io_uring submission failed";
                break;
            }
        }
        if (!b->ring_ok)
            break;
        /* Requests taken before a broken one are still submitted, as they were one by one. */
        if (io_uring_sq_ready(&b->ring) && flush_sq(b) < 0 && !broken)
            broken = "io_uring submission failed";
        if (broken)
            break;
        /*
         * Reads served from the page cache complete inside the submit: deliver
         * them now, under this one interrupt, rather than after another trip
         * through the event loop for the ring's eventfd. Their eventfd signal
         * then finds nothing, so if the engine was full, go round again here.
         */
        unsigned got = reap(b, true);
        if (!full || !got || !virtio_mmio_driver_ok(m))
            break;
    }
    if (broken) {
        virtio_mmio_set_needs_reset(m, broken);
        return;
    }
    if (q->used_idx != before)
        virtio_mmio_notify_used(m, 0);
}

static void on_uring(void *opaque, uint32_t events)
{
    (void)events;
    struct virtio_blk *b = opaque;
    struct virtio_mmio *m = b->m;
    uint64_t cnt;
    if (read(b->ring_efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
        return;
    pthread_mutex_lock(&m->lock);
    uint16_t before = m->queues[0].used_idx;
    /* Requests may have waited for a free slot: take them too, then one interrupt for all. */
    if (reap(b, true) && virtio_mmio_driver_ok(m))
        process_queue(b, before);
    pthread_mutex_unlock(&m->lock);
}

static int blk_activate(void *dev, struct virtio_mmio *m)
{
    struct virtio_blk *b = dev;
    b->m = m;
    if (b->ring_ok && m->loop)
        return evloop_add(m->loop, b->ring_efd, EPOLLIN, on_uring, b);
    return 0;
}

static void blk_notify(void *dev, struct virtio_mmio *m, uint16_t q)
{
    struct virtio_blk *b = dev;
    b->m = m;
    if (q == 0)
        process_queue(b, m->queues[0].used_idx);
}

static void blk_reset(void *dev, struct virtio_mmio *m)
{
    struct virtio_blk *b = dev;
    (void)m;
    if (b->ring_ok) {
        drain_inflight(b, false);
        if (b->m && b->m->loop)
            evloop_remove(b->m->loop, b->ring_efd);
    }
}

const struct virtio_dev_ops virtio_blk_ops = {
    .device_id = VIRTIO_ID_BLOCK,
    .num_queues = 1,
    .features = blk_features,
    .config_read = blk_config_read,
    .config_write = NULL,
    .activate = blk_activate,
    .queue_notify = blk_notify,
    .reset = blk_reset,
};
