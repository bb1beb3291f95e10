/* virtio-balloon's wire format (virtio 1.2, 5.5): feature bits, queues, configuration space, statistics tags. */
#ifndef EMBER_VIRTIO_BALLOON_PROTO_H
#define EMBER_VIRTIO_BALLOON_PROTO_H

#define VIRTIO_ID_BALLOON 5

/* Feature bits Ember offers (MUST_TELL_HOST, free page hinting and reporting are not). */
#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2

/* Queue indexes: the stats queue exists only with VIRTIO_BALLOON_F_STATS_VQ. */
#define BALLOON_Q_INFLATE 0
#define BALLOON_Q_DEFLATE 1
#define BALLOON_Q_STATS 2

/* Configuration space: two little-endian u32, the target (device writes) and what the guest holds (driver writes). */
#define BALLOON_CFG_NUM_PAGES 0
#define BALLOON_CFG_ACTUAL 4
#define BALLOON_CFG_SIZE 8

/* Page frame numbers in the inflate and deflate queues are little-endian u32 in 4 KiB units, whatever the guest's
 * page size. */
#define BALLOON_PFN_SHIFT 12
#define BALLOON_PAGES_PER_MIB (1U << (20 - BALLOON_PFN_SHIFT))

/* One statistic: le16 tag, le64 value, packed (10 bytes). */
#define BALLOON_STAT_SIZE 10
enum balloon_stat_tag {
    BALLOON_S_SWAP_IN = 0,
    BALLOON_S_SWAP_OUT,
    BALLOON_S_MAJFLT,
    BALLOON_S_MINFLT,
    BALLOON_S_MEMFREE,
    BALLOON_S_MEMTOT,
    BALLOON_S_AVAIL,
    BALLOON_S_CACHES,
    BALLOON_S_HTLB_PGALLOC,
    BALLOON_S_HTLB_PGFAIL,
    BALLOON_S_OOM_KILL,
    BALLOON_S_ALLOC_STALL,
    BALLOON_S_ASYNC_SCAN,
    BALLOON_S_DIRECT_SCAN,
    BALLOON_S_ASYNC_RECLAIM,
    BALLOON_S_DIRECT_RECLAIM,
    BALLOON_S_NR
};

#endif
