/*
 * virtio-blk requests: parsing, validation, status and counters. The I/O
 * itself is the engine's (blk_engine.h): blk_sync.c or blk_uring.c.
 */
#include "devices/virtio/blk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "core/path_open.h"
#include "devices/virtio/blk_engine.h"
#include "devices/virtio/blk_proto.h"
#include "devices/virtio/virtio.h"

#define SECTOR VIRTIO_BLK_SECTOR_SIZE
#define HDR_LEN VIRTIO_BLK_REQ_HDR_LEN
#define ID_LEN VIRTIO_BLK_ID_BYTES
#define SEG_MAX 128

struct virtio_blk {
    struct blk_config cfg;
    char id[ID_LEN + 1];
    char *path;
    int fd;
    uint64_t size_bytes;
    struct virtio_dev *vd; /* set when a transport attaches */
    bool activated;        /* the driver has set DRIVER_OK at least once */
    const struct blk_engine_ops *engine;
    void *engine_state;
    struct blk_counters ctr;
    struct rate_limiter limiter;
    uint64_t cost_bytes; /* what the request being submitted took from the limiter */
    struct iovec iov[VIRTQ_MAX_CHAIN];
    struct virtq_chain chain;
};

uint64_t virtio_blk_capacity_sectors(const struct virtio_blk *b) { return b->size_bytes / SECTOR; }
struct blk_counters virtio_blk_counters(const struct virtio_blk *b)
{
    struct blk_counters c = b->ctr;
    c.throttled = b->limiter.throttled;
    c.limiter_wakeups = b->limiter.wakeups;
    return c;
}
struct rate_limiter *virtio_blk_rate_limiter(struct virtio_blk *b) { return &b->limiter; }
const char *virtio_blk_id(const struct virtio_blk *b) { return b->cfg.id; }

/* Opens, locks and sizes an image; the one place these rules live. */
static int open_image(const char *id, const char *path, bool read_only, int *fd_out, uint64_t *size, struct errmsg *err)
{
    struct stat st;
    int fd = path_open_noblock(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC, &st); /* a FIFO must not hang us */
    if (fd < 0)
        return err_set(err, fd, "drive '%s': cannot open '%s'%s: %s", id, path, read_only ? "" : " read-write",
                       strerror(-fd));
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        close(fd);
        return err_set(err, -EINVAL, "drive '%s': '%s' is %s, not a regular file or a block device", id, path,
                       path_kind(st.st_mode));
    }
    /* Two VMs writing one image corrupt it: writers take it exclusively. */
    if (flock(fd, (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        return err_set(err, -e, "drive '%s': image '%s' is in use by another process (%s)", id, path,
                       e == EWOULDBLOCK ? "it holds a lock on it" : strerror(e));
    }
    /* A block device's st_size is 0: its end is where its size is (Firecracker sizes disks the same way). */
    off_t end = S_ISBLK(st.st_mode) ? lseek(fd, 0, SEEK_END) : st.st_size;
    if (end < 0) {
        int e = errno;
        close(fd);
        return err_set(err, -e, "drive '%s': cannot size '%s': %s", id, path, strerror(e));
    }
    *size = (uint64_t)end;
    if (*size % SECTOR)
        log_warn("drive '%s': size %llu is not a multiple of 512; the guest sees %llu sectors and the last %llu bytes "
                 "are not reachable",
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
    snprintf(b->id, sizeof(b->id), "%s", cfg->id);
    b->fd = -1;
    int rc = rate_limiter_init(&b->limiter, &cfg->rate_limiter);
    if (rc) {
        virtio_blk_free(b);
        return err_set(err, rc, "drive '%s': cannot create its rate limiter's timer: %s", cfg->id, strerror(-rc));
    }
    rc = open_image(cfg->id, cfg->path, cfg->read_only, &b->fd, &b->size_bytes, err);
    b->path = strdup(cfg->path);
    if (rc || !b->path) {
        virtio_blk_free(b);
        return rc ? rc : err_set(err, -ENOMEM, "out of memory");
    }
    const struct blk_engine_ops *e = cfg->engine == BLK_ENGINE_ASYNC ? &blk_engine_uring : &blk_engine_sync;
    rc = e->create(&b->engine_state, b, cfg->id, err);
    if (rc) {
        virtio_blk_free(b);
        return rc;
    }
    b->engine = e;
    *out = b;
    return 0;
}

void virtio_blk_free(struct virtio_blk *b)
{
    if (!b)
        return;
    if (b->engine && b->engine->destroy)
        b->engine->destroy(b->engine_state);
    if (b->fd >= 0)
        close(b->fd);
    rate_limiter_destroy(&b->limiter);
    free(b->path);
    free(b);
}

int virtio_blk_replace_backing(struct virtio_blk *b, const char *path, struct errmsg *err)
{
    int fd = -1;
    uint64_t size = 0;
    int rc = open_image(b->cfg.id, path, b->cfg.read_only, &fd, &size, err);
    if (rc)
        return rc;
    char *p = strdup(path);
    if (!p) {
        close(fd);
        return err_set(err, -ENOMEM, "out of memory");
    }
    unsigned left = b->engine->drain ? b->engine->drain(b->engine_state, true) : 0;
    if (b->activated && left == 0)
        virtio_dev_notify_used(b->vd, 0);
    close(b->fd);
    free(b->path);
    b->fd = fd;
    b->path = p;
    b->size_bytes = size;
    return 0;
}

int virtio_blk_swap_image(struct virtio_blk *b, const char *path, struct errmsg *err)
{
    struct virtio_dev *vd = b->vd;
    if (!vd)
        return virtio_blk_replace_backing(b, path, err); /* no transport: nothing to serialise with */
    virtio_dev_lock(vd);
    int rc = virtio_blk_replace_backing(b, path, err);
    if (!rc)
        virtio_dev_config_changed(vd); /* the guest re-reads the capacity */
    virtio_dev_unlock(vd);
    return rc;
}

void virtio_blk_quiesce(struct virtio_blk *b)
{
    if (!b->vd || !b->engine->drain)
        return;
    virtio_dev_lock(b->vd);
    unsigned left = b->engine->drain(b->engine_state, true);
    if (b->activated && left == 0)
        virtio_dev_notify_used(b->vd, 0);
    virtio_dev_unlock(b->vd);
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
    memcpy(cfg + VIRTIO_BLK_CFG_CAPACITY, &cap, 8);
    memcpy(cfg + VIRTIO_BLK_CFG_SEG_MAX, &seg_max, 4); /* size_max stays 0 */
    for (uint32_t i = 0; i < len; i++)
        data[i] = off + i < sizeof(cfg) ? cfg[off + i] : 0;
}

/* Collects the data buffers of a request (header and status byte excluded) into b->iov. */
static int data_iov(struct virtio_blk *b, const struct virtq_chain *c, bool device_writes, uint64_t *total)
{
    uint64_t skip = device_writes ? 0 : HDR_LEN; /* readable side starts with the header */
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

bool blk_driver_ok(const struct virtio_blk *b) { return virtio_dev_driver_ok(b->vd); }

void blk_complete(struct virtio_blk *b, uint16_t head, uint8_t *status, uint8_t s, uint32_t written)
{
    *status = s;
    if (s == VIRTIO_BLK_S_IOERR)
        b->ctr.errors++;
    if (virtq_push(&b->vd->queues[0], b->vd->gm, head, written))
        virtio_dev_set_needs_reset(b->vd, "used ring outside guest memory");
}

void blk_complete_io(struct virtio_blk *b, uint8_t type, uint16_t head, uint8_t *status, uint64_t len, uint32_t written,
                     bool ok)
{
    if (ok && type == VIRTIO_BLK_T_IN) {
        b->ctr.reads++;
        b->ctr.bytes_read += len;
    } else if (ok && type == VIRTIO_BLK_T_OUT) {
        b->ctr.writes++;
        b->ctr.bytes_written += len;
    }
    blk_complete(b, head, status, ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR, ok ? written : 1);
}

/* Handles one request; -EAGAIN when the engine is full (retry later). */
static int handle_request(struct virtio_blk *b, struct virtq_chain *c)
{
    uint8_t *status = status_ptr(c);
    if (!status || c->readable < HDR_LEN)
        return -EPROTO;
    uint8_t hdr[HDR_LEN];
    /* The header nearly always sits whole in the first buffer: skip the generic walk. */
    if (c->nbufs && !c->bufs[0].device_writes && c->bufs[0].len >= HDR_LEN)
        memcpy(hdr, c->bufs[0].host, HDR_LEN);
    else if (virtq_chain_read(c, b->vd->gm, 0, hdr, HDR_LEN))
        return -EPROTO;
    uint32_t type;
    uint64_t sector;
    memcpy(&type, hdr, 4);
    memcpy(&sector, hdr + 8, 8);
    /* Data bytes and one op, as Firecracker counts them; an empty bucket leaves the request in the ring. */
    b->cost_bytes = type == VIRTIO_BLK_T_IN ? c->writable - 1 : type == VIRTIO_BLK_T_OUT ? c->readable - HDR_LEN : 0;
    if (!rate_limiter_consume(&b->limiter, 1, b->cost_bytes))
        return -EBUSY;

    if (type == VIRTIO_BLK_T_GET_ID) {
        char id[ID_LEN] = {0};
        memcpy(id, b->id, strnlen(b->id, ID_LEN));
        uint64_t n = c->writable - 1 < ID_LEN ? c->writable - 1 : ID_LEN;
        virtq_chain_write(c, b->vd->gm, 0, id, n);
        b->ctr.get_ids++;
        blk_complete(b, c->head, status, VIRTIO_BLK_S_OK, (uint32_t)n + 1);
        return 0;
    }
    if (type == VIRTIO_BLK_T_FLUSH) {
        if (b->cfg.read_only) { /* nothing was written through this drive */
            b->ctr.flushes++;
            blk_complete(b, c->head, status, VIRTIO_BLK_S_OK, 1);
            return 0;
        }
        struct blk_io io = {.fd = b->fd, .type = VIRTIO_BLK_T_FLUSH, .head = c->head, .status = status, .written = 1};
        int rc = b->engine->submit(b->engine_state, &io);
        if (rc == 0)
            b->ctr.flushes++; /* counted once, not again when a full engine makes us retry */
        return rc;
    }
    if (type != VIRTIO_BLK_T_IN && type != VIRTIO_BLK_T_OUT) {
        b->ctr.unsupported++;
        blk_complete(b, c->head, status, VIRTIO_BLK_S_UNSUPP, 1);
        return 0;
    }
    bool in = type == VIRTIO_BLK_T_IN;
    uint64_t len;
    int niov = data_iov(b, c, in, &len);
    uint64_t cap = virtio_blk_capacity_sectors(b);
    /* Whole sectors only, inside the disk; writes refused on a read-only drive. */
    if ((!in && b->cfg.read_only) || len % SECTOR || sector > cap || len / SECTOR > cap - sector) {
        blk_complete(b, c->head, status, VIRTIO_BLK_S_IOERR, 1);
        return 0;
    }
    struct blk_io io = {.fd = b->fd,
                        .type = (uint8_t)type,
                        .head = c->head,
                        .status = status,
                        .iov = b->iov,
                        .niov = niov,
                        .offset = sector * SECTOR,
                        .len = len,
                        .written = in ? (uint32_t)len + 1 : 1};
    return b->engine->submit(b->engine_state, &io);
}

/*
 * Takes every available request; a batching engine gets its batch to the
 * kernel once per pass. One interrupt for everything completed since the
 * used index was `before`, if the driver wants one.
 */
static void process_queue(struct virtio_blk *b, uint16_t before)
{
    struct virtio_dev *vd = b->vd;
    const struct blk_engine_ops *e = b->engine;
    struct virtq *q = &vd->queues[0];
    const char *broken = NULL;
    for (;;) {
        bool full = false;
        for (;;) {
            int rc = virtq_pop(q, vd->gm, &b->chain);
            if (rc == 0) {
                if (!virtq_rearm(q, vd->gm))
                    break;
                continue;
            }
            if (rc < 0) {
                broken = "the guest handed over a malformed descriptor chain";
                break;
            }
            rc = handle_request(b, &b->chain);
            if (rc == -EBUSY) {
                virtq_unpop(q); /* rate limited: the limiter's timer resumes the queue */
                break;
            }
            if (rc == -EAGAIN) {
                virtq_unpop(q); /* engine full: completions will resume the queue */
                rate_limiter_refund(&b->limiter, 1, b->cost_bytes);
                full = true;
                break;
            }
            if (rc < 0) {
                broken = rc == -EPROTO ? "a request lacks its header or status byte" : e->submit_failure;
                break;
            }
        }
        /* Requests taken before a broken one are still submitted, as they were one by one. */
        if (e->submit_batch && e->submit_batch(b->engine_state) < 0 && !broken)
            broken = e->submit_failure;
        if (broken || !e->reap)
            break;
        /*
         * Reads served from the page cache complete inside the submit: deliver
         * them now, under this one interrupt, rather than after another trip
         * through the event loop for the engine's eventfd. Their signal then
         * finds nothing, so if the engine was full, go round again here.
         */
        unsigned got = e->reap(b->engine_state);
        if (!full || !got || !virtio_dev_driver_ok(vd))
            break;
    }
    if (broken) {
        virtio_dev_set_needs_reset(vd, broken);
        return;
    }
    if (q->used_idx != before)
        virtio_dev_notify_used(vd, 0);
}

void blk_completions_ready(struct virtio_blk *b)
{
    struct virtio_dev *vd = b->vd;
    virtio_dev_lock(vd);
    uint16_t before = vd->queues[0].used_idx;
    /* Requests may have waited for a free slot: take them too, then one interrupt for all. */
    if (b->engine->reap(b->engine_state) && virtio_dev_driver_ok(vd))
        process_queue(b, before);
    virtio_dev_unlock(vd);
}

/* The limiter's timer: tokens are back, take what it held in the ring. */
static void limiter_ready(void *opaque, uint32_t events)
{
    (void)events;
    struct virtio_blk *b = opaque;
    virtio_dev_lock(b->vd);
    rate_limiter_timer_event(&b->limiter);
    if (virtio_dev_driver_ok(b->vd))
        process_queue(b, b->vd->queues[0].used_idx);
    virtio_dev_unlock(b->vd);
}

void virtio_blk_update_rate_limiter(struct virtio_blk *b, const struct rate_limiter_update *u)
{
    if (!b->vd) {
        rate_limiter_update(&b->limiter, u);
        return;
    }
    virtio_dev_lock(b->vd);
    rate_limiter_update(&b->limiter, u);
    if (virtio_dev_driver_ok(b->vd))
        process_queue(b, b->vd->queues[0].used_idx);
    virtio_dev_unlock(b->vd);
}

static void blk_attach(void *dev, struct virtio_dev *vd) { ((struct virtio_blk *)dev)->vd = vd; }

static int blk_activate(void *dev, struct virtio_dev *vd)
{
    struct virtio_blk *b = dev;
    b->vd = vd;
    b->activated = true;
    int rc = rate_limiter_watch(&b->limiter, vd->loop, limiter_ready, b);
    if (rc)
        return rc;
    return b->engine->activate ? b->engine->activate(b->engine_state, vd->loop) : 0;
}

static void blk_notify(void *dev, struct virtio_dev *vd, uint16_t q)
{
    if (q == 0)
        process_queue(dev, vd->queues[0].used_idx);
}

static void blk_reset(void *dev, struct virtio_dev *vd)
{
    struct virtio_blk *b = dev;
    if (b->engine->reset)
        b->engine->reset(b->engine_state, vd->loop);
}

const struct virtio_dev_ops virtio_blk_ops = {
    .device_id = VIRTIO_ID_BLOCK,
    .num_queues = 1,
    .features = blk_features,
    .config_read = blk_config_read,
    .config_write = NULL,
    .attach = blk_attach,
    .activate = blk_activate,
    .queue_notify = blk_notify,
    .reset = blk_reset,
};
