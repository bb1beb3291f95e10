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
 *   vsock: a 64 KiB-write stream host -> guest and guest -> host
 *        (virtio_bench_vsock.c); raw: the same over a Unix socketpair.
 *
 * Build: `make build/virtio-bench` (this file, virtio_bench_blk.c and
 * virtio_bench_net.c, linked with build/libember.a).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/guest_mem.h"
#include "core/log.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/mmio_regs.h"
#include "devices/virtio/virtio.h"
#include "perf/virtio_bench.h"

struct bench_opt opt = {NULL, 256, 32, 3.0, NULL, true, true, false, true};
static struct result results[32];
static int nres;

double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of the whole process: on a busy host it is steadier than wall time. */
double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec * 1e-6;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

_Noreturn void die(const char *what, int err)
{
    fprintf(stderr, "virtio-bench: %s: %s\n", what, strerror(err));
    exit(1);
}

struct result *add_result(const char *figure, const char *path, unsigned depth)
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

struct guest_mem gm;
uint64_t irq_count;

void irq_set(void *ctx, uint32_t gsi, int level)
{
    (void)ctx;
    (void)gsi;
    if (level)
        irq_count++;
}

void *gpa_ptr(uint64_t gpa, uint64_t len)
{
    void *p = gm_ptr(&gm, gpa, len);
    if (!p)
        die("guest address outside RAM", EFAULT);
    return p;
}

void mmio_w(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
    virtio_mmio_io_ops.write(m, off, (const uint8_t *)&v, 4);
}

uint32_t mmio_r(struct virtio_mmio *m, uint64_t off)
{
    uint32_t v;
    virtio_mmio_io_ops.read(m, off, (uint8_t *)&v, 4);
    return v;
}

void drv_init(struct drv *d, struct virtio_mmio *m, uint16_t qi, uint64_t base)
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

void drv_desc(struct drv *d, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *p = d->desc + 16ULL * i;
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

/* Puts a chain in the avail ring; drv_flush publishes the index. */
void drv_add(struct drv *d, uint16_t head)
{
    d->avail[2 + d->avail_idx % d->size] = head;
    d->avail_idx++;
}

static void drv_flush(struct drv *d) { __atomic_store_n(&d->avail[1], d->avail_idx, __ATOMIC_RELEASE); }

/* virtqueue_kick_prepare(): with EVENT_IDX, only when avail_event was crossed. */
void drv_kick(struct drv *d)
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
        need = d->avail_idx != d->kicked_idx && !(flags & VIRTQ_USED_F_NO_NOTIFY);
    }
    d->kicked_idx = d->avail_idx;
    if (need) {
        mmio_w(d->m, VIRTIO_MMIO_QUEUE_NOTIFY, d->qi); /* lands on the notify eventfd */
        d->kicks++;
    }
}

bool drv_used(struct drv *d, uint32_t *id, uint32_t *len)
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
void drv_enable_cb(struct drv *d) { d->avail[2 + d->size] = d->last_used; }

/* Status handshake, features, queues, DRIVER_OK. */
void transport_up(struct virtio_mmio *m, uint64_t want, struct drv *qs, int nq)
{
    mmio_w(m, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    mmio_w(m, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint64_t offered = mmio_r(m, VIRTIO_MMIO_DEVICE_FEATURES);
    mmio_w(m, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    offered |= (uint64_t)mmio_r(m, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
    uint64_t f = want & offered;
    mmio_w(m, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    mmio_w(m, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
    mmio_w(m, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    mmio_w(m, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
    mmio_w(m, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    if (!(mmio_r(m, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK))
        die("device refused the features", EPROTO);
    for (int i = 0; i < nq; i++) {
        struct drv *d = &qs[i];
        d->event_idx = (f & BIT64(VIRTIO_F_EVENT_IDX)) != 0;
        mmio_w(m, VIRTIO_MMIO_QUEUE_SEL, d->qi);
        mmio_w(m, VIRTIO_MMIO_QUEUE_NUM, d->size);
        mmio_w(m, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)d->desc_gpa);
        mmio_w(m, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(d->desc_gpa >> 32));
        mmio_w(m, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)d->avail_gpa);
        mmio_w(m, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(d->avail_gpa >> 32));
        mmio_w(m, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)d->used_gpa);
        mmio_w(m, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(d->used_gpa >> 32));
        mmio_w(m, VIRTIO_MMIO_QUEUE_READY, 1);
    }
    mmio_w(m, VIRTIO_MMIO_STATUS,
           VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    if (!virtio_dev_driver_ok(&m->vdev))
        die("device did not start", EPROTO);
}

void check_device(struct virtio_mmio *m)
{
    if (mmio_r(m, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET)
        die("device entered NEEDS_RESET", EPROTO);
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
            "usage: virtio-bench [--blk|--net|--vsock] [--file PATH] [--size-mib N] [--depth D] [--secs S]\n"
            "                    [--tap NAME] [--json]\n"
            "  --blk / --net / --vsock  run only that device (default: all)\n"
            "  --file PATH     image for the blk figures (default: a temporary file of --size-mib MiB)\n"
            "  --size-mib N    size of the temporary image (default 256)\n"
            "  --depth D       requests in flight for blk and raw io_uring (default 32, max %d)\n"
            "  --secs S        seconds per figure (default 3)\n"
            "  --tap NAME      net through a real tap instead of a socketpair (root)\n"
            "  --json          only the JSON lines\n"
            "  --limits        rate limiter: overhead when never dry, achieved vs configured rates\n"
            "  --balloon       balloon inflate MiB/s over touched guest memory, RSS before/after\n",
            BLK_MAX_DEPTH);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"file", required_argument, NULL, 'f'},
        {"size-mib", required_argument, NULL, 'z'},
        {"depth", required_argument, NULL, 'd'},
        {"secs", required_argument, NULL, 's'},
        {"tap", required_argument, NULL, 't'},
        {"blk", no_argument, NULL, 'b'},
        {"net", no_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"vsock", no_argument, NULL, 'v'},
        {"limits", no_argument, NULL, 'L'},
        {"balloon", no_argument, NULL, 'B'},
        {NULL, 0, NULL, 0},
    };
    bool only_blk = false, only_net = false, only_vsock = false;
    int c;
    while ((c = getopt_long(argc, argv, "f:z:d:s:t:bnvjh", lo, NULL)) != -1) {
        switch (c) {
        case 'f': opt.file = optarg; break;
        case 'z': opt.size_mib = strtoull(optarg, NULL, 0); break;
        case 'd': opt.depth = (unsigned)strtoul(optarg, NULL, 0); break;
        case 's': opt.secs = strtod(optarg, NULL); break;
        case 't': opt.tap = optarg; break;
        case 'b': only_blk = true; break;
        case 'n': only_net = true; break;
        case 'v': only_vsock = true; break;
        case 'j': opt.json_only = true; break;
        case 'L': opt.limits = true; break;
        case 'B': opt.balloon = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || !opt.depth || opt.secs <= 0 || !opt.size_mib) {
        usage(stderr);
        return 2;
    }
    if (only_blk || only_net || only_vsock || opt.limits || opt.balloon) {
        opt.blk = only_blk;
        opt.net = only_net;
        opt.vsock = only_vsock;
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
    if (opt.vsock)
        run_vsock();
    if (opt.limits)
        run_limits();
    if (opt.balloon)
        run_balloon();
    print_results();
    guest_mem_free(&gm);
    return 0;
}
