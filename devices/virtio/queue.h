/*
 * Split virtqueue, device side. Everything in guest memory is untrusted:
 * addresses and lengths go through the checked accessor, chains are bounded,
 * indirect tables validated, indices range-checked. A violation returns
 * -EPROTO so the device can enter DEVICE_NEEDS_RESET.
 */
#ifndef EMBER_VIRTQ_H
#define EMBER_VIRTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/guest_mem.h"

#define VIRTQ_MAX_SIZE 256
/* Longest chain a request may use: bounds every walk (cycles included). */
#define VIRTQ_MAX_CHAIN 260

struct virtq {
    uint16_t size; /* negotiated QueueNum, power of two, <= VIRTQ_MAX_SIZE */
    bool ready;
    bool event_idx;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    uint16_t last_avail;     /* next avail entry the device will take */
    uint16_t used_idx;       /* next used entry the device will fill */
    uint16_t signalled_used; /* used_idx when the driver was last notified */
    bool signalled_valid;
    /*
     * Host mappings of the three rings, set by virtq_validate once each ring
     * was checked whole (the layout is frozen while the queue is live), so
     * ring accesses need no lookup; NULL: every access goes through gm_ptr.
     */
    uint8_t *desc_host, *avail_host, *used_host;
};

struct virtq_buf {
    uint64_t gpa;
    uint32_t len;
    bool device_writes; /* VIRTQ_DESC_F_WRITE */
    uint8_t *host;      /* gm_ptr(gpa, len), checked when the chain was popped */
};

struct virtq_chain {
    uint16_t head;
    unsigned nbufs;
    struct virtq_buf bufs[VIRTQ_MAX_CHAIN];
    uint64_t readable, writable; /* byte totals of each direction */
};

void virtq_reset(struct virtq *q);
/* Checks the rings' placement once the driver says the queue is ready; on success maps them. */
int virtq_validate(struct virtq *q, const struct guest_mem *gm);
/* 1: a chain was taken into *c; 0: ring empty; -EPROTO: the guest broke the rules. */
int virtq_pop(struct virtq *q, const struct guest_mem *gm, struct virtq_chain *c);
/* Puts back the last popped chain (the device could not process it yet). */
void virtq_unpop(struct virtq *q);
/* Returns a chain to the driver with `len` bytes written. */
int virtq_push(struct virtq *q, const struct guest_mem *gm, uint16_t head, uint32_t len);
/* Whether the driver wants an interrupt for what was pushed since the last one. */
bool virtq_should_notify(struct virtq *q, const struct guest_mem *gm);
/* Tells the driver (EVENT_IDX) at which avail index to notify next. */
void virtq_set_avail_event(struct virtq *q, const struct guest_mem *gm);
/* Whether the avail ring has entries the device has not taken. */
bool virtq_has_avail(const struct virtq *q, const struct guest_mem *gm);
/*
 * The ring looked empty: ask for the next kick (avail_event), then look once
 * more, so a buffer made available in between is not left waiting for a kick
 * the driver will not send. True if there is work after all.
 */
bool virtq_rearm(struct virtq *q, const struct guest_mem *gm);
/* One line on where device and driver are in the rings (for a stalled queue's diagnosis). */
int virtq_describe(const struct virtq *q, const struct guest_mem *gm, char *buf, size_t len);

/* Copy helpers across a chain's device-readable / device-writable buffers. */
int virtq_chain_read(const struct virtq_chain *c, const struct guest_mem *gm, uint64_t offset, void *dst, uint64_t len);
int virtq_chain_write(const struct virtq_chain *c, const struct guest_mem *gm, uint64_t offset, const void *src,
                      uint64_t len);

#endif
