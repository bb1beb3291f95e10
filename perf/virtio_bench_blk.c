/* virtio-bench, blk figures: random 4 KiB reads through virtio-blk (both engines) and raw. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/event_loop.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/blk_proto.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/mmio_regs.h"
#include "devices/virtio/virtio.h"
#include "perf/virtio_bench.h"

#define BLK_RING_GPA 0x10000ULL
#define BLK_HDR_GPA 0x20000ULL
#define BLK_STATUS_GPA 0x28000ULL
#define BLK_DATA_GPA 0x100000ULL

static uint64_t blk_blocks; /* 4 KiB blocks in the file */
/*
 * The driver's own view of its request headers and status bytes: a guest
 * writes its memory directly, so the bench looks these up once, not per
 * request (the device still checks every address it is handed).
 */
static uint8_t *blk_hdr, *blk_status;

static void blk_post(struct drv *d, unsigned slot)
{
    uint8_t *h = blk_hdr + 16ULL * slot;
    uint32_t type = VIRTIO_BLK_T_IN;
    uint64_t sector = (rnd() % blk_blocks) * (BS / VIRTIO_BLK_SECTOR_SIZE);
    memset(h, 0, 16);
    memcpy(h, &type, 4);
    memcpy(h + 8, &sector, 8);
    blk_status[slot] = 0xff;
    drv_add(d, (uint16_t)(3 * slot));
}

void bench_blk(enum blk_engine engine, const char *path, unsigned depth, const struct rate_limiter_config *limit,
               const char *label)
{
    struct event_loop loop;
    struct virtio_mmio m;
    struct virtio_blk *b;
    struct errmsg err = {{0}};
    struct blk_config cfg = {.id = "bench", .path = path, .read_only = true, .engine = engine};
    if (limit)
        cfg.rate_limiter = *limit;
    if (evloop_init(&loop))
        die("epoll", errno);
    int rc = virtio_blk_create(&b, &cfg, &err);
    if (rc) {
        fprintf(stderr, "virtio-bench: %s\n", err.text);
        exit(1);
    }
    virtio_mmio_init(&m, "bench-blk", &virtio_blk_ops, b, &gm, &loop, -1, 0xd0000000ULL, 5,
                     (struct irq_line){irq_set, NULL, 5});
    struct drv q;
    drv_init(&q, &m, 0, BLK_RING_GPA);
    blk_hdr = gpa_ptr(BLK_HDR_GPA, 16ULL * depth);
    blk_status = gpa_ptr(BLK_STATUS_GPA, depth);
    for (unsigned s = 0; s < depth; s++) {
        uint16_t h = (uint16_t)(3 * s);
        drv_desc(&q, h, BLK_HDR_GPA + 16ULL * s, VIRTIO_BLK_REQ_HDR_LEN, VIRTQ_DESC_F_NEXT, (uint16_t)(h + 1));
        drv_desc(&q, (uint16_t)(h + 1), BLK_DATA_GPA + (uint64_t)BS * s, BS, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE,
                 (uint16_t)(h + 2));
        drv_desc(&q, (uint16_t)(h + 2), BLK_STATUS_GPA + s, 1, VIRTQ_DESC_F_WRITE, 0);
    }
    transport_up(&m, BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_F_EVENT_IDX) | BIT64(VIRTIO_BLK_F_FLUSH), &q, 1);

    struct result *r = add_result("blk randread 4KiB",
                                  label                       ? label
                                  : engine == BLK_ENGINE_SYNC ? "virtio sync"
                                                              : "virtio async",
                                  depth);
    irq_count = 0;
    uint64_t ops = 0, errors = 0;
    unsigned inflight = depth;
    double t0 = now(), end = t0 + opt.secs;
    bool stopping = false;
    for (unsigned s = 0; s < depth; s++)
        blk_post(&q, s);
    drv_kick(&q);
    while (!stopping || inflight) {
        uint32_t id, len;
        while (drv_used(&q, &id, &len)) {
            unsigned slot = id / 3;
            if (slot >= depth || blk_status[slot] != VIRTIO_BLK_S_OK || len != BS + 1)
                errors++;
            ops++;
            if (stopping)
                inflight--;
            else
                blk_post(&q, slot);
        }
        drv_kick(&q);
        drv_enable_cb(&q);
        if (!stopping && (ops & 15) == 0 && now() >= end)
            stopping = true;
        if (stopping && !inflight)
            break;
        evloop_run_once(&loop, 1000); /* the VMM thread: kicks and completions */
        check_device(&m);
        mmio_w(&m, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_INT_USED_RING | VIRTIO_INT_CONFIG);
    }
    r->secs = now() - t0;
    r->cpu += cpu_now();
    r->ops = ops;
    r->bytes = ops * BS;
    r->errors = errors;
    r->kicks = q.kicks;
    r->irqs = irq_count;

    mmio_w(&m, VIRTIO_MMIO_STATUS, 0);
    virtio_mmio_destroy(&m);
    virtio_blk_free(b);
    evloop_destroy(&loop);
}

static void bench_raw_preadv(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die(path, errno);
    void *buf = aligned_alloc(BS, BS);
    struct iovec iov = {buf, BS};
    struct result *r = add_result("blk randread 4KiB", "raw preadv", 1);
    uint64_t ops = 0, errors = 0;
    double t0 = now(), end = t0 + opt.secs;
    do {
        for (int i = 0; i < 64; i++, ops++)
            if (preadv(fd, &iov, 1, (off_t)((rnd() % blk_blocks) * BS)) != BS)
                errors++;
    } while (now() < end);
    r->secs = now() - t0;
    r->cpu += cpu_now();
    r->ops = ops;
    r->bytes = ops * BS;
    r->errors = errors;
    free(buf);
    close(fd);
}

static void bench_raw_uring(const char *path, unsigned depth)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die(path, errno);
    struct io_uring ring;
    int rc = io_uring_queue_init(depth, &ring, 0);
    if (rc < 0)
        die("io_uring_queue_init", -rc);
    struct iovec *iov = calloc(depth, sizeof(*iov));
    uint8_t *bufs = aligned_alloc(BS, (size_t)BS * depth);
    memset(bufs, 0, (size_t)BS * depth); /* the reads overwrite it; cleared so nothing is ever read uninitialised */
    struct result *r = add_result("blk randread 4KiB", "raw io_uring", depth);
    uint64_t ops = 0, errors = 0;
    unsigned inflight = 0;
    double t0 = now(), end = t0 + opt.secs;
    bool stopping = false;
    for (unsigned s = 0; s < depth; s++) {
        iov[s] = (struct iovec){bufs + (size_t)BS * s, BS};
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        io_uring_prep_readv(sqe, fd, &iov[s], 1, (rnd() % blk_blocks) * BS);
        io_uring_sqe_set_data64(sqe, s);
        inflight++;
    }
    io_uring_submit(&ring);
    while (inflight) {
        struct io_uring_cqe *cqe;
        if (io_uring_wait_cqe(&ring, &cqe) < 0)
            break;
        do {
            uint64_t s = io_uring_cqe_get_data64(cqe);
            if (cqe->res != BS)
                errors++;
            io_uring_cqe_seen(&ring, cqe);
            ops++;
            inflight--;
            if (!stopping) {
                struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
                io_uring_prep_readv(sqe, fd, &iov[s], 1, (rnd() % blk_blocks) * BS);
                io_uring_sqe_set_data64(sqe, s);
                inflight++;
            }
        } while (io_uring_peek_cqe(&ring, &cqe) == 0);
        if (!stopping && now() >= end)
            stopping = true;
        io_uring_submit(&ring);
    }
    r->secs = now() - t0;
    r->cpu += cpu_now();
    r->ops = ops;
    r->bytes = ops * BS;
    r->errors = errors;
    io_uring_queue_exit(&ring);
    free(bufs);
    free(iov);
    close(fd);
}

static char tmp_image[128];

const char *prepare_image(void)
{
    if (opt.file)
        return opt.file;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
    snprintf(tmp_image, sizeof(tmp_image), "%s/virtio-bench-XXXXXX", dir);
    int fd = mkstemp(tmp_image);
    if (fd < 0)
        die(tmp_image, errno);
    size_t chunk = 1 << 20;
    uint64_t *buf = malloc(chunk);
    for (uint64_t i = 0; i < opt.size_mib; i++) {
        for (size_t j = 0; j < chunk / 8; j++)
            buf[j] = rnd();
        if (write(fd, buf, chunk) != (ssize_t)chunk)
            die("writing the temporary image", errno);
    }
    free(buf);
    close(fd);
    return tmp_image;
}

void run_blk(void)
{
    const char *path = prepare_image();
    struct stat st;
    if (stat(path, &st) < 0)
        die(path, errno);
    blk_blocks = (uint64_t)st.st_size / BS;
    if (!blk_blocks)
        die("image smaller than 4 KiB", EINVAL);
    unsigned depth = opt.depth;
    if (depth > BLK_MAX_DEPTH) {
        fprintf(stderr, "virtio-bench: depth %u capped at %d (3 descriptors per request, %d-entry queue)\n", depth,
                BLK_MAX_DEPTH, QSIZE);
        depth = BLK_MAX_DEPTH;
    }
    if (!opt.json_only)
        fprintf(stderr, "blk: %s, %" PRIu64 " MiB, depth %u, %.1f s per figure\n", path, (uint64_t)st.st_size >> 20,
                depth, opt.secs);
    bench_blk(BLK_ENGINE_SYNC, path, depth, NULL, NULL);
    bench_blk(BLK_ENGINE_ASYNC, path, depth, NULL, NULL);
    bench_raw_preadv(path);
    bench_raw_uring(path, depth);
    remove_image();
}

void remove_image(void)
{
    if (tmp_image[0])
        unlink(tmp_image);
    tmp_image[0] = 0;
}

void set_blk_blocks(uint64_t blocks)
{
    if (!blocks)
        die("image smaller than 4 KiB", EINVAL);
    blk_blocks = blocks;
}
