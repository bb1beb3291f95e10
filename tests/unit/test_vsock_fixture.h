/*
 * A simulated guest driver for the vsock device (no Test() here): the device
 * on the virtio-mmio transport with an event loop, its uds_path in a fresh
 * temporary directory, rx buffers the driver keeps posted, packets sent on
 * the tx queue, and the host side as plain Unix sockets. One device per test
 * process (Criterion runs each test in its own).
 */
#ifndef EMBER_TEST_VSOCK_FIXTURE_H
#define EMBER_TEST_VSOCK_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/virtio/vsock.h"
#include "devices/virtio/vsock_proto.h"

/* The device's guest CID: 3 unless a test sets vsk.guest_cid before vsk_start (reserved CIDs work too). */
#define GUEST_CID (vsk.guest_cid)
#define RX_BUF_LEN (VSOCK_HDR_LEN + 4096)

struct vsk {
    uint32_t guest_cid;
    struct virtio_vsock *vs;
    char dir[64], uds[128];
    uint16_t rx_seen; /* used rx entries the test has consumed */
};
extern struct vsk vsk;

/* A packet the guest received: its header and payload (valid until the next vsk_recv). */
struct vsk_pkt {
    struct vsock_hdr h;
    const uint8_t *data;
};

/* Device up with `nrx` rx buffers posted (at most 64) and `nev` event buffers. */
void vsk_start(int nrx, int nev);
void vsk_stop(void);
/* Runs the event loop until nothing is ready (at most ~`ms` of waiting). */
void vsk_pump(int ms);
/* The next packet the device put in the rx queue (reposting its buffer), or false if none. */
bool vsk_recv(struct vsk_pkt *p);
/* A header from the guest (GUEST_CID) to the host, stream type. */
struct vsock_hdr vsk_hdr(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t flags, uint32_t len,
                         uint32_t buf_alloc, uint32_t fwd_cnt);
/* Sends a packet from the guest (src GUEST_CID to CID 2 unless changed via vsk_send_raw) and kicks tx. */
void vsk_send(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t flags, const void *data, uint32_t len,
              uint32_t buf_alloc, uint32_t fwd_cnt);
/* Any header (and `len` payload bytes, which may differ from hdr->len) in `nseg` descriptors. */
void vsk_send_raw(const struct vsock_hdr *h, const void *data, uint32_t len, int nseg);
/* As vsk_send, without the kick: several packets then one vsk_kick_tx, as a driver batches them. */
void vsk_post(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t flags, const void *data, uint32_t len,
              uint32_t buf_alloc, uint32_t fwd_cnt);
void vsk_kick_tx(void);
/* Interrupts the device raised so far. */
uint64_t vsk_interrupts(void);
/* A host client connected to uds_path (non-blocking), or a listener at <uds>_<port>. */
int vsk_host_client(void);
int vsk_host_listener(uint32_t port);
/* Reads from a non-blocking host fd, pumping the loop, until `len` bytes or EOF; returns bytes read. */
size_t vsk_host_read(int fd, void *buf, size_t len);
/*
 * Host-initiated connection to guest port `port`: CONNECT, the REQUEST seen
 * by the guest, RESPONSE (guest grants `buf_alloc`), "OK <port>" read.
 * Returns the host fd; *host_port the device's local port.
 */
int vsk_connect_from_host(uint32_t port, uint32_t guest_port, uint32_t buf_alloc, uint32_t *host_port);
/* Guest-initiated connection from guest port gp to host port hp (a listener): the accepted host fd. */
int vsk_connect_from_guest(int listener, uint32_t gp, uint32_t hp, uint32_t buf_alloc);
/* Saves the transport and queues, restores them into the same device as a snapshot load does, resumes. */
void vsk_snapshot_roundtrip(void);
/* Deterministic payload bytes. */
uint8_t vsk_pat(uint64_t i);

#endif
