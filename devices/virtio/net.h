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
#include "devices/virtio/virtio_dev.h"

struct net_config {
    const char *id;
    const char *tap; /* host interface name */
    uint8_t mac[6];
    bool has_mac;
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
};
struct net_counters virtio_net_counters(const struct virtio_net *n);

#endif
