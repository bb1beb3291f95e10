/*
 * virtio-net over a host tap (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR): rx and tx
 * queues served on the VMM thread; checksum/TSO offloads and mergeable rx
 * buffers; no packet dropped under back-pressure (a full tap pauses tx, a
 * full rx ring pauses reading the tap).
 */
#ifndef EMBER_VIRTIO_NET_H
#define EMBER_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "core/errmsg.h"
#include "core/rate_limiter.h"
#include "devices/virtio/virtio_dev.h"

struct net_config {
    const char *id;
    const char *tap; /* host interface name */
    uint8_t mac[6];
    bool has_mac;
    struct rate_limiter_config rx_rate_limiter, tx_rate_limiter; /* all zero: unlimited */
    struct mmds_store *mmds; /* not owned; NULL: this NIC does not reach the MMDS (devices/mmds/) */
};

struct virtio_net;
struct mmds_store;

int virtio_net_create(struct virtio_net **out, const struct net_config *cfg, struct errmsg *err);
/* For tests: use an already open fd (a tap, or a socketpair end speaking vnet-hdr frames). */
int virtio_net_create_fd(struct virtio_net **out, const struct net_config *cfg, int fd, bool is_tap);
void virtio_net_free(struct virtio_net *n);
extern const struct virtio_dev_ops virtio_net_ops;

struct net_counters {
    uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, rx_waits, tx_waits;
    uint64_t rx_throttled, tx_throttled, rx_limiter_wakeups, tx_limiter_wakeups; /* the rate limiters */
    uint64_t tap_read_fails, tap_write_fails; /* a read that stopped the rx side; frames the tap refused */
};
struct net_counters virtio_net_counters(const struct virtio_net *n);
/*
 * PATCH /network-interfaces from any thread: takes the device lock, replaces
 * the buckets each update names (NULL: that direction unchanged) and serves
 * what the old limits held back.
 */
void virtio_net_update_rate_limiters(struct virtio_net *n, const struct rate_limiter_update *rx,
                                     const struct rate_limiter_update *tx);
/* A direction's limiter (tests set its clock): VIRTIO_NET_RXQ or VIRTIO_NET_TXQ. */
struct rate_limiter *virtio_net_rate_limiter(struct virtio_net *n, unsigned queue);

#endif
