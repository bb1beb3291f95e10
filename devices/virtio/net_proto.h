/*
 * virtio-net as the driver sees it (virtio 1.2, 5.1): feature bits, the
 * per-frame header and the configuration space layout. Shared by the device
 * model, the tests and the benchmark.
 */
#ifndef EMBER_VIRTIO_NET_PROTO_H
#define EMBER_VIRTIO_NET_PROTO_H

/* Feature bits. */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_MRG_RXBUF 15

#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1

/* struct virtio_net_hdr_v1 before every frame; num_buffers (le16) is always present (VERSION_1). */
#define VIRTIO_NET_HDR_LEN 12
#define VIRTIO_NET_HDR_NUM_BUFFERS 10

/* Configuration space offsets. */
#define VIRTIO_NET_CFG_MAC 0 /* 6 bytes */

#endif
