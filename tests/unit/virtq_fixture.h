/*
 * The virtqueue (split ring) tests' shared setup, no Test() here: one
 * device-side queue under test (`vq`, the driver side is vfx.q[0]) with its
 * rings at fixed addresses in a 4 MiB guest, and the chain virtq_pop fills.
 * TestSuite(virtq) (virtq_fixture.c) gives every test a fresh 16-entry queue.
 */
#ifndef EMBER_TEST_VIRTQ_FIXTURE_H
#define EMBER_TEST_VIRTQ_FIXTURE_H

#include <stdint.h>

#include "devices/virtio/queue.h"
#include "devices/virtio/virtio.h"
#include "tests/unit/virtio_fixture.h"

#define MEM (4ULL << 20)
#define DESC_GPA 0x1000ULL  /* 256 descriptors fit in 4 KiB */
#define AVAIL_GPA 0x3000ULL /* 4 + 2*256 + 2 bytes */
#define USED_GPA 0x4000ULL  /* 4 + 8*256 + 2 bytes */
#define IND_GPA 0x8000ULL   /* indirect tables */
#define DATA_GPA 0x100000ULL

#define F_NEXT VIRTQ_DESC_F_NEXT
#define F_WRITE VIRTQ_DESC_F_WRITE
#define F_INDIRECT VIRTQ_DESC_F_INDIRECT

extern struct virtq vq;             /* the device side under test; the driver side is vfx.q[0] */
extern struct virtq_chain vq_chain; /* what virtq_pop last filled */

/* Starts queue vq (and the driver's vfx.q[0]) over with `size` entries and zeroed rings. */
void vq_queue_setup(uint16_t size);

/* The driver side of queue 0, in short. */
static inline void desc(uint16_t idx, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    vfx_desc(DESC_GPA, idx, addr, len, flags, next);
}
static inline void avail_add(uint16_t head) { vfx_avail_add(0, head); }
static inline void avail_flags(uint16_t f) { vfx_set_avail_flags(0, f); }
static inline void used_event(uint16_t v) { vfx_set_used_event(0, v); }
static inline uint16_t avail_event(void) { return vfx_avail_event(0); }
static inline uint16_t used_idx(void) { return vfx_used_idx(0); }
static inline uint32_t used_id(uint16_t i) { return vfx_used_id(0, i); }
static inline uint32_t used_len(uint16_t i) { return vfx_used_len(0, i); }

#endif
