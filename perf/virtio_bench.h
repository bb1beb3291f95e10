/* virtio-bench (virtio_bench.c): what its parts share. */
#ifndef EMBER_PERF_VIRTIO_BENCH_H
#define EMBER_PERF_VIRTIO_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/guest_mem.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/mmio.h"

#define VNET_HDR VIRTIO_NET_HDR_LEN
#define QSIZE 256
#define GUEST_RAM (64ULL << 20)
#define BS 4096
#define BLK_MAX_DEPTH (QSIZE / 3)

struct bench_opt {
    const char *file;
    uint64_t size_mib;
    unsigned depth;
    double secs;
    const char *tap;
    bool blk, net, json_only, vsock;
    bool limits, balloon; /* --limits, --balloon: only those */
};
extern struct bench_opt opt;

struct result {
    char figure[40];
    char path[24];
    unsigned depth;
    uint64_t ops, bytes, errors, kicks, irqs;
    double secs;
    double cpu; /* process CPU seconds (user + system) while the figure ran */
};

/* The guest driver side of one split virtqueue. */
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

extern struct guest_mem gm;
extern uint64_t irq_count;

double now(void);
double cpu_now(void);
uint64_t rnd(void);
_Noreturn void die(const char *what, int err);
struct result *add_result(const char *figure, const char *path, unsigned depth);
void irq_set(void *ctx, uint32_t gsi, int level);
void *gpa_ptr(uint64_t gpa, uint64_t len);
void mmio_w(struct virtio_mmio *m, uint64_t off, uint32_t v);
uint32_t mmio_r(struct virtio_mmio *m, uint64_t off);
void drv_init(struct drv *d, struct virtio_mmio *m, uint16_t qi, uint64_t base);
void drv_desc(struct drv *d, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
void drv_add(struct drv *d, uint16_t head);
void drv_kick(struct drv *d);
bool drv_used(struct drv *d, uint32_t *id, uint32_t *len);
void drv_enable_cb(struct drv *d);
void transport_up(struct virtio_mmio *m, uint64_t want, struct drv *qs, int nq);
void check_device(struct virtio_mmio *m);

void run_blk(void);   /* virtio_bench_blk.c */
void run_net(void);   /* virtio_bench_net.c */
void run_vsock(void); /* virtio_bench_vsock.c */
/* virtio_bench_blk.c, for the limiter figures: */
struct rate_limiter_config;
void bench_blk(enum blk_engine engine, const char *path, unsigned depth, const struct rate_limiter_config *limit,
               const char *label);
/* virtio_bench_net.c: both queues limited alike when limit is set; label names the figure's path. */
void bench_net(bool tx, size_t len, const struct rate_limiter_config *limit, const char *label);
const char *prepare_image(void);
void set_blk_blocks(uint64_t blocks);
void remove_image(void);
void run_limits(void);  /* virtio_bench_limits.c */
void run_balloon(void); /* virtio_bench_balloon.c */

#endif
