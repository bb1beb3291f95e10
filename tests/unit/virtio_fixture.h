/*
 * The driver side of virtio for the unit tests (no Test() here): simulated
 * guest RAM with little-endian accessors, split-ring queues the test fills
 * and reads, the virtio-mmio register handshake, and an interrupt line that
 * counts pulses. One simulated guest per test process (Criterion runs every
 * test in its own process), kept in `vfx`. Accessors assert that what they
 * touch is guest RAM: a failure there is a bug in the test.
 */
#ifndef EMBER_TEST_VIRTIO_FIXTURE_H
#define EMBER_TEST_VIRTIO_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/guest_mem.h"
#include "core/io.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/mmio_regs.h"
#include "devices/virtio/virtio.h"

/* One split virtqueue as the driver keeps it. */
struct vfx_queue {
    uint64_t desc, avail, used; /* ring addresses */
    uint16_t size;
    uint16_t avail_idx; /* the driver's next avail index */
    uint16_t next_desc; /* next free descriptor (handed out round-robin) */
};

struct vfx {
    uint8_t *ram;
    struct guest_mem gm;
    struct virtio_mmio *m; /* the transport vfx_rd/vfx_wr talk to */
    struct vfx_queue q[VIRTIO_DEV_MAX_QUEUES];
    int pulses; /* rising edges on the interrupt line */
    int irq_level;
    uint32_t irq_gsi;
};
extern struct vfx vfx;

/* One buffer of a chain: guest address, length, device-writable or not. */
struct vfx_seg {
    uint64_t gpa;
    uint32_t len;
    bool write;
};

/* ---- guest RAM ---- */
void vfx_ram_init(uint64_t bytes);
void vfx_ram_free(void);
uint8_t *g_at(uint64_t gpa, uint64_t len);
void g_w16(uint64_t gpa, uint16_t v);
void g_w32(uint64_t gpa, uint32_t v);
void g_w64(uint64_t gpa, uint64_t v);
uint16_t g_r16(uint64_t gpa);
uint32_t g_r32(uint64_t gpa);

/* ---- split rings, driver side ---- */
/* Places queue q's rings, zeroes them and starts its indices over. */
void vfx_queue_at(int q, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used);
/* Writes descriptor idx of a table (the queue's, or an indirect one). */
void vfx_desc(uint64_t table, uint32_t idx, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
/* Makes the chain at `head` available (publishes the new avail index). */
void vfx_avail_add(int q, uint16_t head);
/*
 * Links segs into queue q's descriptor table (or, if `indirect` is not 0,
 * into an indirect table there behind one descriptor) and makes the chain
 * available; returns its head.
 */
uint16_t vfx_post(int q, const struct vfx_seg *s, int n, uint64_t indirect);
uint16_t vfx_used_idx(int q);
uint32_t vfx_used_id(int q, uint16_t i);
uint32_t vfx_used_len(int q, uint16_t i);
/* The used element for `head` (the last one if it was used several times): its len, or -1. */
int64_t vfx_used_len_of(int q, uint16_t head);
/* How many used entries name `head`. */
int vfx_used_count_of(int q, uint16_t head);
uint16_t vfx_avail_event(int q);            /* EVENT_IDX: the device's wish, after the used ring */
void vfx_set_used_event(int q, uint16_t v); /* EVENT_IDX: the driver's wish, after the avail ring */
void vfx_set_avail_flags(int q, uint16_t flags);

/* ---- the virtio-mmio transport ---- */
/* An interrupt line that counts rising edges in vfx.pulses. */
struct irq_line vfx_irq_line(uint32_t gsi);
uint32_t vfx_rd(uint64_t off);
void vfx_wr(uint64_t off, uint32_t v);
uint64_t vfx_dev_features(void);
/* ACKNOWLEDGE, DRIVER, driver features, FEATURES_OK; returns the status read back. */
uint32_t vfx_negotiate(uint64_t features);
/* Programs queue q's registers (QueueSel first), QueueReady if `ready`. */
void vfx_queue_regs(uint32_t q, uint32_t num, uint64_t desc, uint64_t avail, uint64_t used, bool ready);
/*
 * A driver bringing the device up from scratch: reset, rings of queues
 * 0..nq-1 (laid out by vfx_queue_at) zeroed, features (asserted accepted),
 * queues programmed and ready, DRIVER_OK (asserted live).
 */
void vfx_driver_up(uint64_t features, int nq);

#endif
