/*
 * virtio-vsock as the driver sees it (virtio 1.2, 5.10): queues, the packet
 * header every rx and tx buffer starts with, operations, shutdown flags, the
 * event the device sends and the configuration space. Shared by the device
 * model and the tests.
 */
#ifndef EMBER_VIRTIO_VSOCK_PROTO_H
#define EMBER_VIRTIO_VSOCK_PROTO_H

#include <stdint.h>

#define VIRTIO_ID_VSOCK 19

#define VIRTIO_VSOCK_RXQ 0
#define VIRTIO_VSOCK_TXQ 1
#define VIRTIO_VSOCK_EVENTQ 2
#define VIRTIO_VSOCK_NUM_QUEUES 3

/*
 * Well-known CIDs: the host is 2; vsock(7) reserves 0, 1, 2 and 2^32 - 1, so a
 * guest's is normally 3 to 2^32 - 2. Firecracker accepts any u32 as the guest's
 * CID (firecracker-containerd configures 0), and so does Ember: the device only
 * needs the guest's packets to carry the CID it was given.
 */
#define VSOCK_HOST_CID 2
#define VSOCK_MIN_GUEST_CID 3

static inline int vsock_guest_cid_usual(uint64_t cid) { return cid >= VSOCK_MIN_GUEST_CID && cid < UINT32_MAX; }

/*
 * struct virtio_vsock_hdr, little-endian and packed (44 bytes):
 * le64 src_cid, le64 dst_cid, le32 src_port, le32 dst_port, le32 len,
 * le16 type, le16 op, le32 flags, le32 buf_alloc, le32 fwd_cnt.
 */
#define VSOCK_HDR_LEN 44
#define VSOCK_HDR_SRC_CID 0
#define VSOCK_HDR_DST_CID 8
#define VSOCK_HDR_SRC_PORT 16
#define VSOCK_HDR_DST_PORT 20
#define VSOCK_HDR_LEN_OFF 24
#define VSOCK_HDR_TYPE 28
#define VSOCK_HDR_OP 30
#define VSOCK_HDR_FLAGS 32
#define VSOCK_HDR_BUF_ALLOC 36
#define VSOCK_HDR_FWD_CNT 40

#define VSOCK_TYPE_STREAM 1

#define VSOCK_OP_INVALID 0
#define VSOCK_OP_REQUEST 1
#define VSOCK_OP_RESPONSE 2
#define VSOCK_OP_RST 3
#define VSOCK_OP_SHUTDOWN 4
#define VSOCK_OP_RW 5
#define VSOCK_OP_CREDIT_UPDATE 6
#define VSOCK_OP_CREDIT_REQUEST 7

/* SHUTDOWN flags: the sender will receive no more / send no more. */
#define VSOCK_SHUTDOWN_RCV 1
#define VSOCK_SHUTDOWN_SEND 2

/* struct virtio_vsock_event { le32 id; } on the event queue. */
#define VSOCK_EVENT_LEN 4
#define VSOCK_EVENT_TRANSPORT_RESET 0

/* Configuration space: le64 guest_cid. */
#define VSOCK_CFG_GUEST_CID 0
#define VSOCK_CFG_LEN 8

/* The largest payload a packet may carry (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
#define VSOCK_MAX_PKT_PAYLOAD (64 * 1024)

/* A decoded header (host byte order). */
struct vsock_hdr {
    uint64_t src_cid, dst_cid;
    uint32_t src_port, dst_port, len;
    uint16_t type, op;
    uint32_t flags, buf_alloc, fwd_cnt;
};

static inline uint64_t vsock_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static inline void vsock_put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void vsock_hdr_decode(const uint8_t b[VSOCK_HDR_LEN], struct vsock_hdr *h)
{
    h->src_cid = vsock_le(b + VSOCK_HDR_SRC_CID, 8);
    h->dst_cid = vsock_le(b + VSOCK_HDR_DST_CID, 8);
    h->src_port = (uint32_t)vsock_le(b + VSOCK_HDR_SRC_PORT, 4);
    h->dst_port = (uint32_t)vsock_le(b + VSOCK_HDR_DST_PORT, 4);
    h->len = (uint32_t)vsock_le(b + VSOCK_HDR_LEN_OFF, 4);
    h->type = (uint16_t)vsock_le(b + VSOCK_HDR_TYPE, 2);
    h->op = (uint16_t)vsock_le(b + VSOCK_HDR_OP, 2);
    h->flags = (uint32_t)vsock_le(b + VSOCK_HDR_FLAGS, 4);
    h->buf_alloc = (uint32_t)vsock_le(b + VSOCK_HDR_BUF_ALLOC, 4);
    h->fwd_cnt = (uint32_t)vsock_le(b + VSOCK_HDR_FWD_CNT, 4);
}

static inline void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t b[VSOCK_HDR_LEN])
{
    vsock_put_le(b + VSOCK_HDR_SRC_CID, h->src_cid, 8);
    vsock_put_le(b + VSOCK_HDR_DST_CID, h->dst_cid, 8);
    vsock_put_le(b + VSOCK_HDR_SRC_PORT, h->src_port, 4);
    vsock_put_le(b + VSOCK_HDR_DST_PORT, h->dst_port, 4);
    vsock_put_le(b + VSOCK_HDR_LEN_OFF, h->len, 4);
    vsock_put_le(b + VSOCK_HDR_TYPE, h->type, 2);
    vsock_put_le(b + VSOCK_HDR_OP, h->op, 2);
    vsock_put_le(b + VSOCK_HDR_FLAGS, h->flags, 4);
    vsock_put_le(b + VSOCK_HDR_BUF_ALLOC, h->buf_alloc, 4);
    vsock_put_le(b + VSOCK_HDR_FWD_CNT, h->fwd_cnt, 4);
}

#endif
