/*
 * virtio-balloon: the host asks the guest to hand back memory (the target,
 * in 4 KiB pages, in the configuration space); the guest's driver
 * allocates pages and names them on the inflate queue, and Ember drops them
 * from its own mapping of guest RAM (MADV_DONTNEED), so the VMM's RSS falls.
 * Page numbers are hostile input: each is checked against guest RAM and the
 * pages already inflated. Deflate is accounting only (the guest faults the
 * page back in). With statistics on, the guest's last statistics buffer is
 * held and handed back every stats_polling_interval_s seconds for fresh
 * numbers. Served on the VMM thread; see docs/resources.md.
 */
#ifndef EMBER_VIRTIO_BALLOON_H
#define EMBER_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

#include "core/errmsg.h"
#include "core/state.h"
#include "devices/virtio/balloon_proto.h"
#include "devices/virtio/virtio_dev.h"

struct balloon_config {
    uint32_t amount_mib;               /* target: how much the guest should give back */
    bool deflate_on_oom;               /* the guest may take pages back under memory pressure */
    uint32_t stats_polling_interval_s; /* 0: no statistics queue */
};

/*
 * The most page numbers one inflate or deflate request is served for (Linux's driver sends at most 256, its
 * VIRTIO_BALLOON_ARRAY_PFNS_MAX); the rest of a longer one are ignored and counted in hostile_pfns.
 */
#define BALLOON_MAX_PFNS_PER_REQUEST 256

/* The most seconds a polling interval may be (a u16, as Firecracker has it). */
#define BALLOON_MAX_STATS_INTERVAL_S 65535

/* The guest's last statistics (values[tag] valid when bit tag of `present` is set) and the device's sizes. */
struct balloon_stats {
    uint32_t target_pages, actual_pages;
    uint32_t present;
    uint64_t values[BALLOON_S_NR];
};

struct balloon_counters {
    uint64_t activate_fails; /* the device could not start (its timer) */
    uint64_t inflate_count;  /* inflate requests served */
    uint64_t deflate_count;  /* deflate requests served */
    uint64_t stats_updates;  /* statistics buffers received */
    uint64_t stats_fails;    /* statistics buffers without a whole statistic, or with a torn one */
    uint64_t event_fails;    /* malformed chains (the device then needs a reset) */
    uint64_t pages_inflated, pages_deflated;
    uint64_t hostile_pfns;  /* outside RAM, in the MMIO gap, inflated twice, deflated unheld, past the cap */
    uint64_t discard_fails; /* madvise refused (the page stays resident; the guest does not notice) */
};

struct virtio_balloon;

int virtio_balloon_create(struct virtio_balloon **out, const struct balloon_config *cfg, struct errmsg *err);
void virtio_balloon_free(struct virtio_balloon *b);
extern const struct virtio_dev_ops virtio_balloon_ops;

/* The rest take the device lock themselves. */
struct balloon_counters virtio_balloon_counters(struct virtio_balloon *b);
/* PATCH /balloon: a new target; the guest gets a configuration-change interrupt. */
void virtio_balloon_set_target(struct virtio_balloon *b, uint32_t amount_mib);
/*
 * PATCH /balloon/statistics: a new polling interval, the first refresh at
 * once. Statistics cannot be switched on or off once the device exists:
 * -EINVAL with Firecracker's message.
 */
int virtio_balloon_set_stats_interval(struct virtio_balloon *b, uint32_t secs, struct errmsg *err);
/* GET /balloon/statistics. */
void virtio_balloon_stats(struct virtio_balloon *b, struct balloon_stats *out);
/* Pages the host holds (inflated and not deflated). */
uint64_t virtio_balloon_held_pages(struct virtio_balloon *b);

/* Snapshot: target, actual, interval, last statistics, the held statistics buffer and the inflated pages. */
int virtio_balloon_save(struct virtio_balloon *b, struct state_writer *w);
/* Checked whole before anything changes; call after the transport's restore (the guest memory layout is known). */
int virtio_balloon_restore(struct virtio_balloon *b, struct state_reader *r, struct errmsg *err);

/* Parses a statistics buffer into *s (values and `present`); false if it held no whole statistic or a torn one. */
bool balloon_parse_stats(const uint8_t *buf, uint64_t len, struct balloon_stats *s);

/* Tests: how a page range is given back to the host (default madvise(MADV_DONTNEED)); 0 or -errno. */
typedef int (*virtio_balloon_discard_fn)(void *host, uint64_t len, void *ctx);
void virtio_balloon_set_discard(struct virtio_balloon *b, virtio_balloon_discard_fn fn, void *ctx);

#endif
