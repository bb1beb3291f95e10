/* What balloon.c and balloon_state.c share (and the unit tests use): the device's state and page helpers. */
#ifndef EMBER_VIRTIO_BALLOON_INTERNAL_H
#define EMBER_VIRTIO_BALLOON_INTERNAL_H

#include "devices/virtio/balloon.h"

/* The most statistics bytes read from one buffer: room for every tag twice, the rest is ignored. */
#define BALLOON_STATS_READ_MAX (2 * BALLOON_S_NR * BALLOON_STAT_SIZE)

struct virtio_balloon {
    struct virtio_dev *vd;     /* set when a transport attaches */
    struct balloon_config cfg; /* amount_mib and the interval follow PATCH requests */
    bool stats_offered;        /* the interval was not 0 when the device was made: STATS_VQ */
    uint32_t target_pages, actual_pages;
    struct balloon_stats last; /* the guest's last statistics (target/actual filled on demand) */
    bool stats_held;           /* the guest's statistics buffer is with the device */
    uint16_t stats_head;
    int timer_fd; /* statistics refreshes */
    struct event_loop *watched;
    /* One bit per page of each RAM region: inflated and not deflated. Made on the first inflate. */
    uint64_t *held[GUEST_MEM_MAX_REGIONS];
    uint64_t held_count;
    struct balloon_counters ctr;
    virtio_balloon_discard_fn discard;
    void *discard_ctx;
    struct virtq_chain chain;
};

uint8_t *balloon_page(const struct virtio_balloon *b, uint64_t pfn, int *region, uint64_t *index);
uint64_t *balloon_bitmap(struct virtio_balloon *b, int r);
void balloon_drop_held(struct virtio_balloon *b);
void balloon_arm_timer(struct virtio_balloon *b, uint64_t first_ns, uint32_t interval_s);
/* The statistics queue is in use: driver up, STATS_VQ negotiated, queue ready (lock held). */
bool balloon_stats_live(const struct virtio_balloon *b);
/* What the timer does (takes the lock): hands the held statistics buffer back for fresh numbers. */
void balloon_stats_refresh(struct virtio_balloon *b);

#endif
