/*
 * virtio-bench: device-model throughput without a guest kernel.
 *
 * Sets up guest memory, the virtio-mmio transport and a device exactly as
 * the unit tests do (no KVM: vm_fd = -1) and plays the guest driver on the
 * same thread: it fills the avail ring, kicks through the QueueNotify
 * register (which lands on the queue's eventfd, as an ioeventfd would),
 * serves the event loop like Ember's VMM thread does, and reaps the used
 * ring. Beside each device figure it measures the raw host figure for the
 * same work without the device.
 *
 *   blk: random 4 KiB reads at queue depth D, sync and async (io_uring)
 *        engines; raw: preadv (depth 1) and io_uring readv (depth D).
 *   net: 64- and 1500-byte frames through tx (guest -> fd) and rx
 *        (fd -> guest) over a SOCK_SEQPACKET socketpair, or a real tap
 *        (--tap NAME, root); raw: write()/read() of the same frames.
 *
 * Build (after `make`):
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -pthread \
 *       -o build/virtio-bench perf/virtio_bench.c build/libember.a -luring
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <liburing.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio/blk.h"
#include "devices/virtio/net.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/virtio.h"
#include "core/event_loop.h"
#include "core/guest_mem.h"
#include "core/log.h"

/* virtio-mmio registers the driver touches. */
#define R_DEV_FEATURES 0x010
#define R_DEV_FEATURES_SEL 0x014
#define R_DRV_FEATURES 0x020
#define R_DRV_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_INT_ACK 0x064
#define R_STATUS 0x070
#define R_QUEUE_DESC_LO 0x080
#define R_QUEUE_DESC_HI 0x084
#define R_QUEUE_AVAIL_LO 0x090
#define R_QUEUE_AVAIL_HI 0x094
#define R_QUEUE_USED_LO 0x0a0
#define R_QUEUE_USED_HI 0x0a4

#define D_NEXT 1
#define D_WRITE 2

#define BLK_F_FLUSH 9
#define NET_F_MRG_RXBUF 15
#define VNET_HDR 12
#define QSIZE 256
#define GUEST_RAM (64ULL << 20)
#define BS 4096

static struct {
    const char *file;
    uint64_t size_mib;
    unsigned depth;
    double secs;
    const char *tap;
    bool blk, net, json_only;
} opt = {NULL, 256, 32, 3.0, NULL, true, true, false};

struct result {
    char figure[40];
    char path[24];
    unsigned depth;
    uint64_t ops, bytes, errors, kicks, irqs;
    double secs;
    double cpu; /* process CPU seconds (user + system) while the figure ran */
};
static struct result results[32];
static int nres;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of the whole process: on a busy host it is steadier than wall time. */
static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec * 1e-6;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "virtio-bench: %s: %s\n", what, strerror(err));
    exit(1);
}

static struct result *add_result(const char *figure, const char *path, unsigned depth)
{
    if (nres == (int)(sizeof(results) / sizeof(results[0])))
        die("too many figures", ENOSPC);
    struct result *r = &results[nres++];
    memset(r, 0, sizeof(*r));
    snprintf(r->figure, sizeof(r->figure), "%s", figure);
    snprintf(r->path, sizeof(r->path), "%s", path);
    r->depth = depth;
    r->cpu = -cpu_now(); /* each figure starts timing right after this; it adds cpu_now() at its end */
    return r;
}

/* ---------------------------------------------------------------------------
 * The guest driver side of one split virtqueue.
 */
struct drv {
    struct virtio_mmio *m;
    uint16_t qi, size;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    uint8_t *desc;
    uint16_t *avail; /* flags, idx, ring[size], used_event */
    uint8_t *used;   /* flags, idx, {id, len}[size], avail_event */
    uint16_t avail_idx, kicked_idx, last_used;
    bool event_idx;
    uint64_t kicks;
};

static struct guest_mem gm;
static uint64_t irq_count;

static void irq_set(void *ctx, uint32_t gsi, int level)
{
    (void)ctx;
    (void)gsi;
    if (level)
        irq_count++;
}

static void *gpa_ptr(uint64_t gpa, uint64_t len)
{
    void *p = gm_ptr(&gm, gpa, len);
    if (!p)
        die("guest address outside RAM", EFAULT);
    return p;
}

static void mmio_w(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
    virtio_mmio_io_ops.write(m, off, (const uint8_t *)&v, 4);
}

static uint32_t mmio_r(struct virtio_mmio *m, uint64_t off)
{
    uint32_t v;
    virtio_mmio_io_ops.read(m, off, (uint8_t *)&v, 4);
    return v;
}

static void drv_init(struct drv *d, struct virtio_mmio *m, uint16_t qi, uint64_t base)
{
    memset(d, 0, sizeof(*d));
    d->m = m;
    d->qi = qi;
    d->size = QSIZE;
    d->desc_gpa = base;
    d->avail_gpa = base + 16ULL * QSIZE;
    d->used_gpa = (d->avail_gpa + 6 + 2ULL * QSIZE + 4095) & ~4095ULL;
    d->desc = gpa_ptr(d->desc_gpa, 16ULL * QSIZE);
    d->avail = gpa_ptr(d->avail_gpa, 6 + 2ULL * QSIZE);
    d->used = gpa_ptr(d->used_gpa, 6 + 8ULL * QSIZE);
    memset(d->desc, 0, 16ULL * QSIZE);
    memset(d->avail, 0, 6 + 2ULL * QSIZE);
    memset(d->used, 0, 6 + 8ULL * QSIZE);
}

static void drv_desc(struct drv *d, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *p = d->desc + 16ULL * i;
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

/* Puts a chain in the avail ring; drv_flush publishes the index. */
static void drv_add(struct drv *d, uint16_t head)
{
    d->avail[2 + d->avail_idx % d->size] = head;
    d->avail_idx++;
}

static void drv_flush(struct drv *d) { __atomic_store_n(&d->avail[1], d->avail_idx, __ATOMIC_RELEASE); }

/* virtqueue_kick_prepare(): with EVENT_IDX, only when avail_event was crossed. */
static void drv_kick(struct drv *d)
{
    drv_flush(d);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    bool need;
    if (d->event_idx) {
        uint16_t ev;
        memcpy(&ev, d->used + 4 + 8ULL * d->size, 2);
        need = (uint16_t)(d->avail_idx - ev - 1) < (uint16_t)(d->avail_idx - d->kicked_idx);
    } else {
        uint16_t flags;
        memcpy(&flags, d->used, 2);
        need = d->avail_idx != d->kicked_idx && !(flags & 1);
    }
    d->kicked_idx = d->avail_idx;
    if (need) {
        mmio_w(d->m, R_QUEUE_NOTIFY, d->qi); /* lands on the notify eventfd */
        d->kicks++;
    }
}

static bool drv_used(struct drv *d, uint32_t *id, uint32_t *len)
{
    uint16_t idx = __atomic_load_n((uint16_t *)(d->used + 2), __ATOMIC_ACQUIRE);
    if (idx == d->last_used)
        return false;
    const uint8_t *e = d->used + 4 + 8ULL * (d->last_used % d->size);
    memcpy(id, e, 4);
    memcpy(len, e + 4, 4);
    d->last_used++;
    return true;
}

/* virtqueue_enable_cb(): interrupt me at the next used entry. */
static void drv_enable_cb(struct drv *d) { d->avail[2 + d->size] = d->last_used; }

/* Status handshake, features, queues, DRIVER_OK. */
static void transport_up(struct virtio_mmio *m, uint64_t want, struct drv *qs, int nq)
{
    mmio_w(m, R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    mmio_w(m, R_DEV_FEATURES_SEL, 0);
    uint64_t offered = mmio_r(m, R_DEV_FEATURES);
    mmio_w(m, R_DEV_FEATURES_SEL, 1);
    offered |= (uint64_t)mmio_r(m, R_DEV_FEATURES) << 32;
    uint64_t f = want & offered;
    mmio_w(m, R_DRV_FEATURES_SEL, 0);
    mmio_w(m, R_DRV_FEATURES, (uint32_t)f);
    mmio_w(m, R_DRV_FEATURES_SEL, 1);
    mmio_w(m, R_DRV_FEATURES, (uint32_t)(f >> 32));
    mmio_w(m, R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    if (!(mmio_r(m, R_STATUS) & VIRTIO_STATUS_FEATURES_OK))
        die("device refused the features", EPROTO);
    for (int i = 0; i < nq; i++) {
        struct drv *d = &qs[i];
        d->event_idx = (f & BIT64(VIRTIO_F_EVENT_IDX)) != 0;
        mmio_w(m, R_QUEUE_SEL, d->qi);
        mmio_w(m, R_QUEUE_NUM, d->size);
        mmio_w(m, R_QUEUE_DESC_LO, (uint32_t)d->desc_gpa);
        mmio_w(m, R_QUEUE_DESC_HI, (uint32_t)(d->desc_gpa >> 32));
        mmio_w(m, R_QUEUE_AVAIL_LO, (uint32_t)d->avail_gpa);
        mmio_w(m, R_QUEUE_AVAIL_HI, (uint32_t)(d->avail_gpa >> 32));
        mmio_w(m, R_QUEUE_USED_LO, (uint32_t)d->used_gpa);
        mmio_w(m, R_QUEUE_USED_HI, (uint32_t)(d->used_gpa >> 32));
        mmio_w(m, R_QUEUE_READY, 1);
    }
    mmio_w(m, R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
                            VIRTIO_STATUS_DRIVER_OK);
    if (!virtio_dev_driver_ok(&m->vdev))
        die("device did not start", EPROTO);
}

static void check_device(struct virtio_mmio *m)
{
    if (mmio_r(m, R_STATUS) & VIRTIO_STATUS_NEEDS_RESET)
        die("device entered NEEDS_RESET", EPROTO);
}

/* ---------------------------------------------------------------------------
 * virtio-blk: random 4 KiB reads at depth D.
 */
#define BLK_RING_GPA 0x10000ULL
#define BLK_HDR_GPA 0x20000ULL
#define BLK_STATUS_GPA 0x28000ULL
#define BLK_DATA_GPA 0x100000ULL
#define BLK_MAX_DEPTH (QSIZE / 3)

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
    uint32_t type = 0; /* VIRTIO_BLK_T_IN */
    uint64_t sector = (rnd() % blk_blocks) * (BS / 512);
    memset(h, 0, 16);
    memcpy(h, &type, 4);
    memcpy(h + 8, &sector, 8);
    blk_status[slot] = 0xff;
    drv_add(d, (uint16_t)(3 * slot));
}

static void bench_blk(enum blk_engine engine, const char *path, unsigned depth)
{
    struct event_loop loop;
    struct virtio_mmio m;
    struct virtio_blk *b;
    struct errmsg err = {{0}};
    struct blk_config cfg = {.id = "bench", .path = path, .read_only = true, .engine = engine};
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
        drv_desc(&q, h, BLK_HDR_GPA + 16ULL * s, 16, D_NEXT, (uint16_t)(h + 1));
        drv_desc(&q, (uint16_t)(h + 1), BLK_DATA_GPA + (uint64_t)BS * s, BS, D_NEXT | D_WRITE, (uint16_t)(h + 2));
        drv_desc(&q, (uint16_t)(h + 2), BLK_STATUS_GPA + s, 1, D_WRITE, 0);
    }
    transport_up(&m, BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_F_EVENT_IDX) | BIT64(BLK_F_FLUSH), &q, 1);

    struct result *r = add_result("blk randread 4KiB", engine == BLK_ENGINE_SYNC ? "virtio sync" : "virtio async", depth);
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
            if (slot >= depth || blk_status[slot] != 0 || len != BS + 1)
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
        mmio_w(&m, R_INT_ACK, 3);
    }
    r->secs = now() - t0;
    r->cpu += cpu_now();
    r->ops = ops;
    r->bytes = ops * BS;
    r->errors = errors;
    r->kicks = q.kicks;
    r->irqs = irq_count;

    mmio_w(&m, R_STATUS, 0);
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

static const char *prepare_image(void)
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

static void run_blk(void)
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
        fprintf(stderr, "virtio-bench: depth %u capped at %u (3 descriptors per request, %u-entry queue)\n",
                depth, BLK_MAX_DEPTH, QSIZE);
        depth = BLK_MAX_DEPTH;
    }
    if (!opt.json_only)
        fprintf(stderr, "blk: %s, %" PRIu64 " MiB, depth %u, %.1f s per figure\n", path,
                (uint64_t)st.st_size >> 20, depth, opt.secs);
    bench_blk(BLK_ENGINE_SYNC, path, depth);
    bench_blk(BLK_ENGINE_ASYNC, path, depth);
    bench_raw_preadv(path);
    bench_raw_uring(path, depth);
    if (tmp_image[0])
        unlink(tmp_image);
}

/* ---------------------------------------------------------------------------
 * virtio-net: frames through tx and rx.
 */
#define NET_RX_RING_GPA 0x10000ULL
#define NET_TX_RING_GPA 0x14000ULL
#define NET_RX_BUF_GPA 0x100000ULL
#define NET_TX_BUF_GPA 0x200000ULL
#define NET_BUF 2048

/* The "host side" of the link: a socketpair end, or a packet socket on the tap. */
struct link {
    int dev_fd;  /* handed to the device (or read/written raw) */
    int peer_fd; /* socketpair: the other end; tap: AF_PACKET socket bound to it */
    bool tap;
    int ifindex;
};

static int tap_open(const char *name)
{
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        die("/dev/net/tun", errno);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0)
        die("TUNSETIFF", errno);
    int hdr = VNET_HDR;
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0)
        die("TUNSETVNETHDRSZ", errno);
    return fd;
}

/* Brings the tap up (no IPv6 chatter) and binds a packet socket to it. */
static void tap_link(struct link *l, const char *name)
{
    char p[128];
    snprintf(p, sizeof(p), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
    int f = open(p, O_WRONLY | O_CLOEXEC);
    if (f >= 0) {
        if (write(f, "1", 1) < 0) { /* best effort */
        }
        close(f);
    }
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        die("SIOCGIFFLAGS", errno);
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        die("SIOCSIFFLAGS", errno);
    close(s);
    l->ifindex = (int)if_nametoindex(name);
    l->peer_fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->peer_fd < 0)
        die("AF_PACKET socket", errno);
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_ifindex = l->ifindex};
    if (bind(l->peer_fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
        die("binding the packet socket", errno);
}

static void link_open(struct link *l)
{
    memset(l, 0, sizeof(*l));
    if (opt.tap) {
        l->tap = true;
        l->dev_fd = tap_open(opt.tap);
        tap_link(l, opt.tap);
        return;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        die("socketpair", errno);
    l->dev_fd = sv[0];
    l->peer_fd = sv[1];
}

static void link_close(struct link *l, bool dev_fd_too)
{
    if (dev_fd_too)
        close(l->dev_fd);
    close(l->peer_fd);
}

/* A frame of `len` bytes (Ethernet header included) after a zero vnet header. */
static void make_frame(uint8_t *p, size_t len)
{
    static const uint8_t eth[14] = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xb5};
    memset(p, 0, VNET_HDR);
    memcpy(p + VNET_HDR, eth, sizeof(eth));
    for (size_t i = sizeof(eth); i < len; i++)
        p[VNET_HDR + i] = (uint8_t)i;
}

/* Host side sends up to n frames (the link's own framing); returns how many went. */
static unsigned peer_send(struct link *l, const uint8_t *frame, size_t len, unsigned n)
{
    unsigned sent = 0;
    for (; sent < n; sent++) {
        ssize_t w = l->tap ? send(l->peer_fd, frame + VNET_HDR, len, MSG_DONTWAIT)
                           : send(l->peer_fd, frame, VNET_HDR + len, MSG_DONTWAIT);
        if (w < 0)
            break;
    }
    return sent;
}

/* Host side drains what arrived (socketpair only; a tap hands frames to the kernel). */
static uint64_t peer_drain(struct link *l, size_t expect)
{
    static uint8_t buf[65536];
    uint64_t n = 0;
    ssize_t r;
    if (l->tap)
        return 0;
    while ((r = recv(l->peer_fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        if ((size_t)r == expect)
            n++;
    return n;
}

static void bench_net(bool tx, size_t len)
{
    struct event_loop loop;
    struct virtio_mmio m;
    struct virtio_net *n;
    struct link l;
    link_open(&l);
    if (evloop_init(&loop))
        die("epoll", errno);
    struct net_config cfg = {.id = "bench", .tap = opt.tap ? opt.tap : "socketpair"};
    if (virtio_net_create_fd(&n, &cfg, l.dev_fd, l.tap))
        die("virtio_net_create_fd", ENOMEM);
    virtio_mmio_init(&m, "bench-net", &virtio_net_ops, n, &gm, &loop, -1, 0xd0001000ULL, 6,
                     (struct irq_line){irq_set, NULL, 6});
    struct drv q[2];
    drv_init(&q[0], &m, 0, NET_RX_RING_GPA);
    drv_init(&q[1], &m, 1, NET_TX_RING_GPA);
    uint8_t frame[VNET_HDR + 1514];
    make_frame(frame, len);
    for (uint16_t i = 0; i < QSIZE; i++) {
        drv_desc(&q[0], i, NET_RX_BUF_GPA + (uint64_t)NET_BUF * i, NET_BUF, D_WRITE, 0);
        drv_desc(&q[1], i, NET_TX_BUF_GPA + (uint64_t)NET_BUF * i, (uint32_t)(VNET_HDR + len), 0, 0);
        memcpy(gpa_ptr(NET_TX_BUF_GPA + (uint64_t)NET_BUF * i, VNET_HDR + len), frame, VNET_HDR + len);
    }
    transport_up(&m, BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_F_EVENT_IDX) | BIT64(NET_F_MRG_RXBUF), q, 2);

    char fig[40];
    snprintf(fig, sizeof(fig), "net %s %zuB frames", tx ? "tx" : "rx", len);
    struct result *r = add_result(fig, l.tap ? "virtio tap" : "virtio", 0);
    struct drv *d = &q[tx ? 1 : 0];
    irq_count = 0;
    uint64_t frames = 0, errors = 0;
    struct net_counters c0 = virtio_net_counters(n);
    /* Every buffer in the ring from the start; each reaped one goes straight back. */
    for (uint16_t i = 0; i < QSIZE; i++)
        drv_add(d, i);
    drv_kick(d);
    double t0 = now(), end = t0 + opt.secs;
    unsigned iter = 0;
    do {
        if (!tx)
            peer_send(&l, frame, len, QSIZE);
        evloop_run_once(&loop, 0); /* kicks, fd readiness */
        if (tx)
            frames += peer_drain(&l, VNET_HDR + len);
        uint32_t id, ulen;
        while (drv_used(d, &id, &ulen)) {
            if (!tx) {
                uint16_t nb;
                memcpy(&nb, gpa_ptr(NET_RX_BUF_GPA + (uint64_t)NET_BUF * id + 10, 2), 2);
                if (ulen == VNET_HDR + len && nb == 1)
                    frames++;
                else
                    errors++;
            }
            drv_add(d, (uint16_t)id);
        }
        drv_kick(d);
        drv_enable_cb(d);
        mmio_w(&m, R_INT_ACK, 3);
        if ((++iter & 63) == 0)
            check_device(&m);
    } while (now() < end);
    r->secs = now() - t0;
    r->cpu += cpu_now();
    if (tx && l.tap)
        frames = virtio_net_counters(n).tx_packets - c0.tx_packets;
    r->ops = frames;
    r->bytes = frames * len;
    r->errors = errors;
    r->kicks = d->kicks;
    r->irqs = irq_count;

    mmio_w(&m, R_STATUS, 0);
    virtio_mmio_destroy(&m);
    virtio_net_free(n); /* closes dev_fd */
    link_close(&l, false);
    evloop_destroy(&loop);
}

/* The same frames written to / read from the same kind of fd, no device. */
static void bench_net_raw(bool tx, size_t len)
{
    struct link l;
    link_open(&l);
    uint8_t frame[VNET_HDR + 1514], buf[65536];
    make_frame(frame, len);
    char fig[40];
    snprintf(fig, sizeof(fig), "net %s %zuB frames", tx ? "tx" : "rx", len);
    struct result *r = add_result(fig, l.tap ? (tx ? "raw write tap" : "raw read tap") : (tx ? "raw write" : "raw read"), 0);
    uint64_t frames = 0, errors = 0;
    double t0 = now(), end = t0 + opt.secs;
    do {
        if (tx) {
            for (unsigned i = 0; i < QSIZE; i++) {
                ssize_t w = write(l.dev_fd, frame, VNET_HDR + len);
                if (w < 0)
                    break;
                if (l.tap)
                    frames++;
            }
            frames += peer_drain(&l, VNET_HDR + len);
        } else {
            peer_send(&l, frame, len, QSIZE);
            ssize_t got;
            while ((got = read(l.dev_fd, buf, sizeof(buf))) > 0) {
                if ((size_t)got == VNET_HDR + len)
                    frames++;
                else
                    errors++;
            }
        }
    } while (now() < end);
    r->secs = now() - t0;
    r->cpu += cpu_now();
    r->ops = frames;
    r->bytes = frames * len;
    r->errors = errors;
    link_close(&l, true);
}

static void run_net(void)
{
    if (!opt.json_only)
        fprintf(stderr, "net: %s, %.1f s per figure\n", opt.tap ? opt.tap : "SOCK_SEQPACKET socketpair", opt.secs);
    static const size_t sizes[] = {64, 1500};
    for (int t = 1; t >= 0; t--)
        for (int s = 0; s < 2; s++) {
            bench_net(t == 1, sizes[s]);
            bench_net_raw(t == 1, sizes[s]);
        }
}

/* ---------------------------------------------------------------------------
 * Output and main.
 */
static const struct result *raw_for(const struct result *r)
{
    /* The raw figure a device figure is compared with: same figure, same (or io_uring) depth. */
    for (int i = 0; i < nres; i++) {
        const struct result *x = &results[i];
        if (strcmp(x->figure, r->figure) || strncmp(x->path, "raw", 3))
            continue;
        if (!strncmp(r->figure, "blk", 3) && strcmp(x->path, "raw io_uring"))
            continue;
        return x;
    }
    return NULL;
}

static void print_results(void)
{
    if (!opt.json_only) {
        printf("\n%-22s %-14s %5s %12s %10s %8s %9s %9s %9s %8s\n", "figure", "path", "depth", "ops/s", "MiB/s",
               "vs raw", "kicks/op", "irqs/op", "cpu us/op", "cpu vs raw");
        for (int i = 0; i < nres; i++) {
            const struct result *r = &results[i];
            double rate = r->secs > 0 ? (double)r->ops / r->secs : 0;
            const struct result *raw = strncmp(r->path, "raw", 3) ? raw_for(r) : NULL;
            char vs[16] = "", depth[12] = "-", kicks[16] = "", irqs[16] = "", cpu[16] = "", cvs[16] = "";
            if (raw && raw->ops)
                snprintf(vs, sizeof(vs), "%.2fx", rate / ((double)raw->ops / raw->secs));
            /* The same ratio from CPU time per op: less disturbed by other load on the host. */
            if (r->ops)
                snprintf(cpu, sizeof(cpu), "%.3f", r->cpu * 1e6 / (double)r->ops);
            if (raw && raw->ops && r->ops && r->cpu > 0)
                snprintf(cvs, sizeof(cvs), "%.2fx", (raw->cpu / (double)raw->ops) / (r->cpu / (double)r->ops));
            if (r->depth)
                snprintf(depth, sizeof(depth), "%u", r->depth);
            if (!strncmp(r->path, "virtio", 6) && r->ops) {
                snprintf(kicks, sizeof(kicks), "%.3f", (double)r->kicks / (double)r->ops);
                snprintf(irqs, sizeof(irqs), "%.3f", (double)r->irqs / (double)r->ops);
            }
            printf("%-22s %-14s %5s %12.0f %10.1f %8s %9s %9s %9s %8s%s\n", r->figure, r->path, depth, rate,
                   (double)r->bytes / r->secs / (1 << 20), vs, kicks, irqs, cpu, cvs, r->errors ? "  ERRORS" : "");
        }
        printf("\n");
    }
    for (int i = 0; i < nres; i++) {
        const struct result *r = &results[i];
        printf("{\"figure\":\"%s\",\"path\":\"%s\",\"depth\":%u,\"ops\":%" PRIu64 ",\"seconds\":%.3f,"
               "\"ops_per_sec\":%.0f,\"mib_per_sec\":%.2f,\"errors\":%" PRIu64 ",\"kicks\":%" PRIu64
               ",\"irqs\":%" PRIu64 ",\"cpu_seconds\":%.3f}\n",
               r->figure, r->path, r->depth, r->ops, r->secs, (double)r->ops / r->secs,
               (double)r->bytes / r->secs / (1 << 20), r->errors, r->kicks, r->irqs, r->cpu);
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: virtio-bench [--blk|--net] [--file PATH] [--size-mib N] [--depth D] [--secs S]\n"
            "                    [--tap NAME] [--json]\n"
            "  --blk / --net   run only that device (default: both)\n"
            "  --file PATH     image for the blk figures (default: a temporary file of --size-mib MiB)\n"
            "  --size-mib N    size of the temporary image (default 256)\n"
            "  --depth D       requests in flight for blk and raw io_uring (default 32, max %d)\n"
            "  --secs S        seconds per figure (default 3)\n"
            "  --tap NAME      net through a real tap instead of a socketpair (root)\n"
            "  --json          only the JSON lines\n",
            BLK_MAX_DEPTH);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"file", required_argument, NULL, 'f'}, {"size-mib", required_argument, NULL, 'z'},
        {"depth", required_argument, NULL, 'd'}, {"secs", required_argument, NULL, 's'},
        {"tap", required_argument, NULL, 't'},  {"blk", no_argument, NULL, 'b'},
        {"net", no_argument, NULL, 'n'},        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    bool only_blk = false, only_net = false;
    int c;
    while ((c = getopt_long(argc, argv, "f:z:d:s:t:bnjh", lo, NULL)) != -1) {
        switch (c) {
        case 'f': opt.file = optarg; break;
        case 'z': opt.size_mib = strtoull(optarg, NULL, 0); break;
        case 'd': opt.depth = (unsigned)strtoul(optarg, NULL, 0); break;
        case 's': opt.secs = strtod(optarg, NULL); break;
        case 't': opt.tap = optarg; break;
        case 'b': only_blk = true; break;
        case 'n': only_net = true; break;
        case 'j': opt.json_only = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || !opt.depth || opt.secs <= 0 || !opt.size_mib) {
        usage(stderr);
        return 2;
    }
    if (only_blk || only_net) {
        opt.blk = only_blk;
        opt.net = only_net;
    }
    log_set_level(LOG_WARN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    rng_state ^= (uint64_t)getpid() << 32;
    if (guest_mem_init(&gm, GUEST_RAM))
        die("guest memory", ENOMEM);
    if (opt.blk)
        run_blk();
    if (opt.net)
        run_net();
    print_results();
    guest_mem_free(&gm);
    return 0;
}
